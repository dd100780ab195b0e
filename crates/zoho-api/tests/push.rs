//! Pushing rows on a key field, by upsert and by bulk job, against the
//! simulator: outcomes per row, no duplicates on re-push, and a failed job
//! falling back to the Upsert API.
mod common;

use std::collections::HashSet;

use common::*;
use serde_json::{json, Value};
use zoho_api::push::{Outcome, PushField, PushRow, PushSpec};
use zoho_sim::{Fault, SimConfig};

fn spec() -> PushSpec {
    let f = |a: &str, t: &str| PushField { api_name: a.into(), data_type: t.into() };
    PushSpec {
        module: "Orders".into(),
        fields: vec![
            f("parent_id", "text"),
            f("Name", "text"),
            f("Amount", "currency"),
            f("Order_Date", "date"),
            f("Shipped_At", "datetime"),
            f("Paid", "boolean"),
            f("Quantity", "integer"),
        ],
    }
}

fn rows(range: std::ops::Range<usize>, tag: &str) -> Vec<PushRow> {
    range
        .map(|i| {
            vec![
                json!(format!("ORD-{i}")),
                json!(format!("Order {i} {tag}")),
                json!(10.5 + i as f64),
                json!("2026-03-04"),
                json!("2026-03-04T10:20:30+00:00"),
                json!(i % 2 == 0),
                json!(i as i64),
            ]
        })
        .collect()
}

fn ids(outcomes: &[Outcome]) -> Vec<String> {
    outcomes
        .iter()
        .map(|o| match o {
            Outcome::Synced { id, .. } => id.clone(),
            Outcome::Rejected(e) => panic!("rejected: {e}"),
        })
        .collect()
}

fn stored(sim: &zoho_sim::Sim, key: &str) -> serde_json::Map<String, Value> {
    sim.records("Orders").into_iter().find(|r| r["parent_id"] == json!(key)).unwrap_or_else(|| panic!("no record {key}"))
}

#[tokio::test]
async fn upsert_sends_100_a_call_and_a_repush_updates_in_place() {
    let sim = sim(SimConfig::default()).await;
    let c = client(&sim);
    let first = ids(&c.push_upsert(&spec(), &rows(0..250, "a")).await.unwrap());
    assert_eq!(calls_to(&sim, "records.upsert"), 3);
    assert_eq!(c.usage().snapshot()["records.upsert"].credits, 25);
    assert_eq!(first.iter().collect::<HashSet<_>>().len(), 250);
    let again = ids(&c.push_upsert(&spec(), &rows(0..250, "b")).await.unwrap());
    assert_eq!(first, again, "matched on parent_id, so the same records");
    assert_eq!(sim.records("Orders").len(), 250);
    assert_eq!(stored(&sim, "ORD-7")["Name"], json!("Order 7 b"));
    let body = sim.calls().into_iter().find(|c| c.endpoint == "records.upsert").unwrap().request_body.unwrap();
    assert_eq!(body["duplicate_check_fields"], json!(["parent_id"]));
}

#[tokio::test]
async fn a_bulk_job_writes_what_the_upsert_api_would() {
    let sim = sim(SimConfig::default()).await;
    let c = client(&sim);
    let (outcomes, report) = c.push_bulk(&spec(), &rows(0..3_000, "bulk"), &mut |_| {}).await.unwrap();
    assert_eq!(ids(&outcomes).len(), 3_000);
    assert_eq!((report.job_ids.len(), report.fell_back, report.resent), (1, false, 0));
    assert_eq!(calls_to(&sim, "bulk_write.create"), 1);
    assert_eq!(calls_to(&sim, "records.upsert"), 0);
    // The same values by upsert leave the record as the bulk job did.
    let via_bulk = stored(&sim, "ORD-42");
    c.push_upsert(&spec(), &rows(42..43, "bulk")).await.unwrap();
    let via_upsert = stored(&sim, "ORD-42");
    for k in ["Name", "Amount", "Order_Date", "Shipped_At", "Paid", "Quantity"] {
        assert_eq!(via_bulk[k], via_upsert[k], "{k}");
    }
    assert_eq!(via_bulk["id"], json!(ids(&outcomes)[42]));
}

#[tokio::test]
async fn clients_sharing_a_token_store_read_the_org_once_for_their_uploads() {
    let sim = sim(SimConfig::default()).await;
    let mut cfg = config(&sim);
    cfg.token_store = Some(std::sync::Arc::new(zoho_api::MemoryTokenStore::default()));
    let a = zoho_api::ZohoClient::new(cfg.clone(), credentials()).unwrap();
    let b = zoho_api::ZohoClient::new(cfg, credentials()).unwrap();
    a.push_bulk(&spec(), &rows(0..10, "a"), &mut |_| {}).await.unwrap();
    assert_eq!(calls_to(&sim, "meta.org"), 1);
    // The simulator refuses an upload whose X-CRM-ORG is not the org's.
    let (outcomes, _) = b.push_bulk(&spec(), &rows(10..20, "b"), &mut |_| {}).await.unwrap();
    assert_eq!(ids(&outcomes).len(), 10);
    assert_eq!(calls_to(&sim, "meta.org"), 1, "the second client took the zgid from the store");
    assert_eq!(b.zgid().await.unwrap(), a.org().await.unwrap().zgid);
    // A client with a store of its own reads the org for itself.
    client(&sim).push_bulk(&spec(), &rows(20..30, "c"), &mut |_| {}).await.unwrap();
    assert_eq!(calls_to(&sim, "meta.org"), 2);
    assert_eq!(calls_to(&sim, "bulk_write.upload"), 3);
}

#[tokio::test]
async fn rows_zoho_skips_are_rejected_with_the_reason() {
    let sim = sim(SimConfig::default()).await;
    let c = client(&sim);
    let mut input = rows(0..50, "x");
    for i in [3, 17, 40] {
        input[i][1] = Value::Null; // Name is mandatory
    }
    let (bulk, _) = c.push_bulk(&spec(), &input, &mut |_| {}).await.unwrap();
    let upsert = c.push_upsert(&spec(), &rows(100..101, "x").into_iter().map(|mut r| { r[1] = Value::Null; r }).collect::<Vec<_>>()).await.unwrap();
    let rejected: Vec<usize> = bulk.iter().enumerate().filter(|(_, o)| matches!(o, Outcome::Rejected(_))).map(|(i, _)| i).collect();
    assert_eq!(rejected, vec![3, 17, 40]);
    assert_eq!(bulk[3], Outcome::Rejected("MANDATORY_NOT_FOUND Name".into()));
    match &upsert[0] {
        Outcome::Rejected(e) => assert!(e.starts_with("MANDATORY_NOT_FOUND") && e.contains("Name"), "{e}"),
        o => panic!("{o:?}"),
    }
    assert_eq!(sim.records("Orders").len(), 47);
}

#[tokio::test]
async fn a_failed_job_falls_back_to_upserts_without_duplicates() {
    let sim = sim(SimConfig::default()).await;
    let c = client(&sim);
    c.push_upsert(&spec(), &rows(0..100, "old")).await.unwrap();
    sim.inject(Fault::job_failed());
    let (outcomes, report) = c.push_bulk(&spec(), &rows(0..300, "new"), &mut |_| {}).await.unwrap();
    assert!(report.fell_back);
    assert_eq!(ids(&outcomes).len(), 300);
    assert_eq!(sim.records("Orders").len(), 300);
    assert_eq!(stored(&sim, "ORD-5")["Name"], json!("Order 5 new"));
    assert_eq!(calls_to(&sim, "records.upsert"), 1 + 3);
}

#[tokio::test]
async fn rows_a_job_skips_stay_rejected_and_nothing_is_resent() {
    let sim = sim(SimConfig::default()).await;
    let c = client(&sim);
    sim.inject(Fault::skip_rows(7));
    let (outcomes, report) = c.push_bulk(&spec(), &rows(0..500, "n"), &mut |_| {}).await.unwrap();
    assert_eq!(report.resent, 0);
    let rejected = outcomes.iter().filter(|o| **o == Outcome::Rejected("INVALID_DATA parent_id".into())).count();
    assert_eq!(rejected, 7);
    assert_eq!(sim.records("Orders").len(), 493);
    assert_eq!(calls_to(&sim, "records.upsert"), 0);
}
