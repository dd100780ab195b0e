//! COQL against the simulator: keyset paging, literal escaping, and
//! errors surfacing with Zoho's codes.
mod common;

use std::collections::HashSet;

use chrono::DateTime;
use common::*;
use serde_json::json;
use zoho_api::coql::{CmpOp, Cond, Keyset, Literal, Query};
use zoho_api::records::WriteOptions;
use zoho_sim::SimConfig;

async fn drain(mut pages: zoho_api::coql::CoqlPages<'_>) -> Vec<zoho_api::Record> {
    let mut out = Vec::new();
    while let Some(p) = pages.next_page().await.unwrap() {
        out.extend(p);
    }
    out
}

#[tokio::test]
async fn keyset_paging_reads_every_row_once_in_expected_calls() {
    let sim = sim(SimConfig::default().seed("Accounts", 4_500)).await;
    let c = client(&sim);
    let q = Query::new("Accounts", ["Account_Name"]);
    let rows = drain(c.coql(q, Some(Keyset::Id), 2000).unwrap()).await;
    assert_eq!(rows.len(), 4_500);
    let ids: HashSet<_> = rows.iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 4_500);
    assert_eq!(calls_to(&sim, "coql"), 3);
    // LIMIT 2000 costs 3 credits a call.
    assert_eq!(c.usage().snapshot()["coql"].credits, 9);
    let bodies: Vec<String> = sim.calls().iter().filter_map(|c| c.request_body.as_ref()?.get("select_query")?.as_str().map(str::to_string)).collect();
    assert!(bodies[1].contains("id > "), "{}", bodies[1]);
    assert!(!bodies.iter().any(|b| b.contains("offset")), "keyset paging must not use OFFSET");
}

#[tokio::test]
async fn modified_time_keyset_handles_ties() {
    let sim = sim(SimConfig::default().seed("Deals", 700)).await;
    let c = client(&sim);
    let rows = drain(c.coql(Query::new("Deals", ["Deal_Name"]), Some(Keyset::ModifiedTime), 200).unwrap()).await;
    assert_eq!(rows.len(), 700);
    let ids: HashSet<_> = rows.iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 700);
    let times: Vec<_> = rows.iter().map(|r| DateTime::parse_from_rfc3339(r["Modified_Time"].as_str().unwrap()).unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "not in Modified_Time order");
}

#[tokio::test]
async fn a_limit_asks_for_no_more_than_it_needs() {
    let sim = sim(SimConfig::default().seed("Leads", 3_000)).await;
    let c = client(&sim);
    let rows = drain(c.coql(Query::new("Leads", ["Last_Name"]).limit(5), Some(Keyset::Id), 2000).unwrap()).await;
    assert_eq!(rows.len(), 5);
    let calls: Vec<_> = sim.calls().into_iter().filter(|c| c.endpoint == "coql").collect();
    assert_eq!(calls.len(), 1);
    let q = calls[0].request_body.as_ref().unwrap()["select_query"].as_str().unwrap().to_string();
    assert!(q.ends_with("limit 5"), "{q}");
    assert_eq!(calls[0].credits, 1);
}

#[tokio::test]
async fn quotes_and_injection_attempts_stay_literal_values() {
    let sim = sim(SimConfig::default().seed("Leads", 50)).await;
    let c = client(&sim);
    let names = ["Zq O'Brien", "'); drop table Leads; --", "x' or '1'='1"];
    let recs: Vec<_> = names.iter().map(|n| rec(json!({"Last_Name": n}))).collect();
    let res = c.insert("Leads", &recs, &WriteOptions::default()).await.unwrap();
    assert!(res.iter().all(|r| r.outcome.is_ok()));
    for name in names {
        let q = Query::new("Leads", ["Last_Name"]).filter(Cond::cmp("Last_Name", CmpOp::Eq, Literal::Text(name.into())));
        let rows = drain(c.coql(q, None, 200).unwrap()).await;
        assert_eq!(rows.len(), 1, "{name}");
        assert_eq!(rows[0]["Last_Name"], json!(name));
    }
    assert_eq!(sim.records("Leads").len(), 53, "nothing was dropped");
}

#[tokio::test]
async fn zoho_query_errors_come_back_with_their_codes() {
    let sim = sim(SimConfig::default().seed("Leads", 5)).await;
    let c = client(&sim);
    let q = Query::new("Leads", ["No_Such_Field"]);
    let err = c.coql(q, None, 200).unwrap().next_page().await.unwrap_err();
    assert_eq!(err.zoho_code(), Some("INVALID_QUERY"), "{err}");
    // Textarea fields cannot be filtered in COQL.
    let q = Query::new("Leads", ["Last_Name"]).filter(Cond::cmp("Description", CmpOp::Eq, Literal::Text("x".into())));
    let err = c.coql(q, None, 200).unwrap().next_page().await.unwrap_err();
    assert_eq!(err.zoho_code(), Some("INVALID_QUERY"), "{err}");
    // An empty result is a 204: no rows, no error.
    let q = Query::new("Leads", ["Last_Name"]).filter(Cond::cmp("Last_Name", CmpOp::Eq, Literal::Text("nobody-has-this-name".into())));
    assert!(drain(c.coql(q, None, 200).unwrap()).await.is_empty());
}

/// A flow's filter means the same records to both of Zoho's engines: the
/// COQL a catch-up asks and the Bulk Read criteria a full load sends.
#[tokio::test]
async fn a_filter_selects_the_same_records_by_coql_and_by_bulk_read() {
    let sim = sim(SimConfig::default().seed("Accounts", 900)).await;
    let c = client(&sim);
    let fields = c.fields("Accounts").await.unwrap();
    let f = zoho_api::filter::parse("(Industry in ('Technology', 'Retail') or Account_Name like 'S%') and Annual_Revenue >= 1000", &fields).unwrap();
    let by_coql: HashSet<String> = drain(c.coql(Query::new("Accounts", ["id"]).filter(f.cond.clone()), Some(Keyset::Id), 200).unwrap())
        .await
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let q = zoho_api::bulk_read::BulkReadQuery { module: "Accounts".into(), fields: vec!["Account_Name".into()], criteria: Some(f.criteria()), ..Default::default() };
    let mut export = c.bulk_export(q);
    let (_, rows) = export.next_page(&mut |_| {}).await.unwrap().unwrap();
    let id = rows.column("Id").unwrap();
    let by_bulk: HashSet<String> = rows.map(|r| r.unwrap()[id].to_string()).collect();
    let expected: HashSet<String> = sim
        .records("Accounts")
        .iter()
        .filter(|r| {
            let industry = r["Industry"].as_str().unwrap_or_default();
            let name = r["Account_Name"].as_str().unwrap_or_default();
            let revenue = r["Annual_Revenue"].as_f64();
            (industry == "Technology" || industry == "Retail" || name.starts_with('S')) && revenue.is_some_and(|v| v >= 1000.0)
        })
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert!(expected.len() > 20 && expected.len() < 900, "{} of 900 match: the test needs both kinds", expected.len());
    assert_eq!(by_coql, expected);
    let walked: HashSet<String> = c.matching_ids("Accounts", &f).await.unwrap().iter().map(i64::to_string).collect();
    assert_eq!(walked, expected);
    // Membership of 250 ids, one call per 100.
    let some: Vec<i64> = sim.records("Accounts").iter().take(250).map(|r| r["id"].as_str().unwrap().parse().unwrap()).collect();
    let before = calls_to(&sim, "coql");
    let members = c.matching_of("Accounts", &f, &some).await.unwrap();
    assert_eq!(calls_to(&sim, "coql") - before, 3);
    let want: HashSet<i64> = some.iter().copied().filter(|i| expected.contains(&i.to_string())).collect();
    assert!(!want.is_empty() && want.len() < 250);
    assert_eq!(members, want);
    assert_eq!(by_bulk.len(), expected.len(), "bulk read: {:?}", by_bulk.symmetric_difference(&expected).take(3).collect::<Vec<_>>());
    assert_eq!(by_bulk, expected);
}
