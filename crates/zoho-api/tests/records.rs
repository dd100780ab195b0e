//! The records API against the simulator: paging past 2,000 rows, wide
//! modules, writes with per-record results, upsert matching, deletes.
mod common;

use std::collections::HashSet;

use common::*;
use serde_json::json;
use zoho_api::records::{ListOptions, SortBy, WriteOptions};
use zoho_sim::SimConfig;

fn ids(rows: &[zoho_api::Record]) -> HashSet<String> {
    rows.iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn lists_past_2000_rows_with_page_tokens() {
    let sim = sim(SimConfig::default().seed("Leads", 4_500)).await;
    let c = client(&sim);
    let opts = ListOptions { fields: vec!["Last_Name".into(), "Email".into()], converted: Some("both".into()), ..Default::default() };
    let rows = c.list("Leads", opts).unwrap().collect_all().await.unwrap();
    assert_eq!(rows.len(), 4_500);
    assert_eq!(ids(&rows).len(), 4_500, "duplicates across pages");
    assert_eq!(ids(&rows), ids(&sim.records("Leads")));
    assert_eq!(calls_to(&sim, "records.list"), 23);
    // Every page after the first used page_token, never page.
    let lists: Vec<_> = sim.calls().into_iter().filter(|c| c.endpoint == "records.list").collect();
    let keys = |q: &str| q.split('&').map(|kv| kv.split('=').next().unwrap().to_string()).collect::<Vec<_>>();
    assert!(lists[1..].iter().all(|c| keys(&c.query).contains(&"page_token".into()) && !keys(&c.query).contains(&"page".into())), "{:?}", lists[1].query);
}

#[tokio::test]
async fn sorted_lists_use_the_sub_concurrency_pool_and_keep_order() {
    let sim = sim(SimConfig::default().seed("Accounts", 450)).await;
    let c = client(&sim);
    let opts = ListOptions { fields: vec!["Account_Name".into()], sort_by: Some(SortBy::Id), ascending: Some(true), ..Default::default() };
    let rows = c.list("Accounts", opts).unwrap().collect_all().await.unwrap();
    let got: Vec<i64> = rows.iter().map(|r| r["id"].as_str().unwrap().parse().unwrap()).collect();
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(got, sorted);
    assert_eq!(got.len(), 450);
}

#[tokio::test]
async fn more_than_50_fields_are_fetched_in_parts_and_merged_by_id() {
    let sim = sim(SimConfig::default()).await;
    let c = client(&sim);
    let surveys: Vec<_> = (0..150)
        .map(|i| {
            let mut r = rec(json!({ "Name": format!("Survey {i}") }));
            for q in 1..=60 {
                r.insert(format!("Answer_{q:02}"), json!(format!("s{i}-a{q}")));
            }
            r
        })
        .collect();
    let results = c.insert("Surveys", &surveys, &WriteOptions::default()).await.unwrap();
    assert!(results.iter().all(|r| r.outcome.is_ok()), "{:?}", results.iter().find(|r| r.outcome.is_err()));
    sim.clear_calls();
    let fields: Vec<String> = std::iter::once("Name".to_string()).chain((1..=60).map(|q| format!("Answer_{q:02}"))).collect();
    let rows = c.list("Surveys", ListOptions { fields: fields.clone(), ..Default::default() }).unwrap().collect_all().await.unwrap();
    assert_eq!(rows.len(), 150);
    for row in &rows {
        let name = row["Name"].as_str().unwrap();
        let i: usize = name.trim_start_matches("Survey ").parse().unwrap();
        assert_eq!(row["Answer_60"], json!(format!("s{i}-a60")), "{name}");
        assert_eq!(row["Answer_01"], json!(format!("s{i}-a1")), "{name}");
    }
    // Each call named at most 50 fields: 1 page listed, the rest by ids.
    for call in sim.calls() {
        let fields = call.query.split('&').find_map(|kv| kv.strip_prefix("fields=")).unwrap_or_default();
        let n = urlencoding_count(fields);
        assert!(n <= 50, "{} fields in {}", n, call.query);
    }
    assert_eq!(calls_to(&sim, "records.list"), 1 + 2, "one list page plus one by-ids call per extra chunk (ids ≤ 100 → 2 calls)");
}

fn urlencoding_count(fields: &str) -> usize {
    fields.split("%2C").flat_map(|s| s.split(',')).filter(|s| !s.is_empty()).count()
}

#[tokio::test]
async fn writes_give_one_result_per_record_in_input_order() {
    let sim = sim(SimConfig::default()).await;
    let c = client(&sim);
    let mut leads: Vec<_> = (0..250).map(|i| rec(json!({"Last_Name": format!("Lead {i}"), "Company": "Zylker", "Email": format!("lead{i}@zylker.test")}))).collect();
    leads[7].remove("Last_Name");
    leads[120].insert("No_of_Employees".into(), json!("many"));
    let results = c.insert("Leads", &leads, &WriteOptions { trigger: Some(vec![]), ..Default::default() }).await.unwrap();
    assert_eq!(results.len(), 250);
    assert!(results.iter().enumerate().all(|(i, r)| r.index == i));
    let e7 = results[7].outcome.as_ref().unwrap_err();
    assert_eq!((e7.code.as_str(), e7.field()), ("MANDATORY_NOT_FOUND", Some("Last_Name")));
    let e120 = results[120].outcome.as_ref().unwrap_err();
    assert_eq!((e120.code.as_str(), e120.field()), ("INVALID_DATA", Some("No_of_Employees")));
    assert_eq!(results.iter().filter(|r| r.outcome.is_ok()).count(), 248);
    assert_eq!(calls_to(&sim, "records.insert"), 3);
    assert_eq!(sim.records("Leads").len(), 248);
    // 100 + 100 + 50 records: 10 + 10 + 5 credits.
    assert_eq!(c.usage().snapshot()["records.insert"].credits, 25);

    // Update two of them; one id does not exist.
    let id0 = results[0].outcome.as_ref().unwrap().id.clone();
    let upd = vec![rec(json!({"id": id0, "Lead_Status": "Contacted"})), rec(json!({"id": "1234", "Lead_Status": "Contacted"}))];
    let r = c.update("Leads", &upd, &WriteOptions::default()).await.unwrap();
    assert!(r[0].outcome.is_ok());
    assert_eq!(r[1].outcome.as_ref().unwrap_err().code, "INVALID_DATA");
    let stored = sim.records("Leads").into_iter().find(|l| l["id"] == json!(id0)).unwrap();
    assert_eq!(stored["Lead_Status"], "Contacted");
}

#[tokio::test]
async fn upsert_matches_orders_on_the_user_unique_parent_id() {
    let sim = sim(SimConfig::default()).await;
    let c = client(&sim);
    let opts = WriteOptions { duplicate_check_fields: Some(vec!["parent_id".into()]), ..Default::default() };
    let batch = |qty: i64| -> Vec<_> {
        (0..30).map(|i| rec(json!({"Name": format!("Order {i}"), "parent_id": format!("LEGACY-{i}"), "Quantity": qty}))).collect()
    };
    let first = c.upsert("Orders", &batch(1), &opts).await.unwrap();
    assert!(first.iter().all(|r| r.outcome.as_ref().unwrap().action.as_deref() == Some("insert")));
    let second = c.upsert("Orders", &batch(2), &opts).await.unwrap();
    for (a, b) in first.iter().zip(&second) {
        let (a, b) = (a.outcome.as_ref().unwrap(), b.outcome.as_ref().unwrap());
        assert_eq!(b.action.as_deref(), Some("update"));
        assert_eq!(b.duplicate_field.as_deref(), Some("parent_id"));
        assert_eq!(a.id, b.id, "re-sending must update the same record");
    }
    let orders = sim.records("Orders");
    assert_eq!(orders.len(), 30);
    assert!(orders.iter().all(|o| o["Quantity"] == json!(2)));
    // A plain insert of an existing parent_id is a duplicate.
    let dup = c.insert("Orders", &batch(3)[..1], &WriteOptions::default()).await.unwrap();
    assert_eq!(dup[0].outcome.as_ref().unwrap_err().code, "DUPLICATE_DATA");
}

#[tokio::test]
async fn get_by_ids_delete_deleted_and_count() {
    let sim = sim(SimConfig::default().seed("Contacts", 250)).await;
    let c = client(&sim);
    let all: Vec<String> = sim.records("Contacts").iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    let got = c.get_by_ids("Contacts", &all[..150], &["Last_Name".into(), "Email".into()]).await.unwrap();
    assert_eq!(ids(&got), all[..150].iter().cloned().collect());
    assert!(got.iter().all(|r| r.contains_key("Last_Name")));
    let one = c.get_record("Contacts", &all[0]).await.unwrap().unwrap();
    assert_eq!(one["id"], json!(all[0]));
    assert!(c.get_record("Contacts", "1").await.unwrap().is_none(), "204 means no such record");

    let deleted = c.delete("Contacts", &all[..120], false).await.unwrap();
    assert!(deleted.iter().all(|r| r.outcome.is_ok()));
    assert_eq!(calls_to(&sim, "records.delete"), 2);
    let again = c.delete("Contacts", &all[..1], false).await.unwrap();
    assert_eq!(again[0].outcome.as_ref().unwrap_err().code, "INVALID_DATA");
    let gone = c.deleted("Contacts", None).await.unwrap();
    assert_eq!(gone.iter().map(|d| d.id.clone()).collect::<HashSet<_>>(), all[..120].iter().cloned().collect());
    assert_eq!(c.count("Contacts").await.unwrap(), 130);
}

#[tokio::test]
async fn unknown_modules_and_fields_are_zoho_errors_with_codes() {
    let sim = sim(SimConfig::default().seed("Leads", 5)).await;
    let c = client(&sim);
    let err = c.list("Nope", ListOptions { fields: vec!["Name".into()], ..Default::default() }).unwrap().next_page().await.unwrap_err();
    assert_eq!(err.zoho_code(), Some("INVALID_MODULE"), "{err}");
    let err = c.list("Leads", ListOptions { fields: vec!["No_Such_Field".into()], ..Default::default() }).unwrap().next_page().await.unwrap_err();
    assert_eq!(err.http_status(), Some(400), "{err}");
}
