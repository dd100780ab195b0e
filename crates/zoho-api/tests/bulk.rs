//! Bulk read and bulk write jobs against the simulator, including failed
//! jobs, throttled downloads and token expiry in the middle of a job.
mod common;

use std::collections::{HashMap, HashSet};

use common::*;
use serde_json::json;
use zoho_api::bulk_read::{BulkReadQuery, Criteria};
use zoho_api::bulk_write::{BulkWriteSpec, Column, RowStatus};
use zoho_api::{Error, WriteOp};
use zoho_sim::{Fault, SimConfig};

#[tokio::test]
async fn export_follows_every_page_and_streams_all_rows() {
    let sim = sim(SimConfig::default().seed("Leads", 4_500).bulk_page_size(2_000)).await;
    let c = client(&sim);
    let mut export = c.bulk_export(BulkReadQuery { module: "Leads".into(), fields: vec!["Last_Name".into(), "Email".into(), "Owner".into()], ..Default::default() });
    let mut ids = HashSet::new();
    let mut polls = 0;
    let mut pages = 0;
    while let Some((job, rows)) = export.next_page(&mut |_| polls += 1).await.unwrap() {
        pages += 1;
        assert_eq!(job.state, "COMPLETED");
        let id_col = rows.column("id").expect("an Id column");
        let owner_col = rows.column("Owner").unwrap();
        for row in rows {
            let row = row.unwrap();
            ids.insert(row[id_col].to_string());
            assert!(row[owner_col].chars().all(|c| c.is_ascii_digit()), "lookups are bare ids in CSV: {:?}", &row[owner_col]);
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(ids.len(), 4_500);
    let expected: HashSet<String> = sim.records("Leads").iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, expected);
    assert!(polls >= 3);
    // Follow-up jobs carry only the page token.
    let creates: Vec<_> = sim.calls().into_iter().filter(|c| c.endpoint == "bulk_read.create").collect();
    assert_eq!(creates.len(), 3);
    assert!(creates[1].request_body.as_ref().unwrap()["query"].get("module").is_none());
    assert!(creates[1].request_body.as_ref().unwrap()["query"]["page_token"].is_string());
    assert_eq!(c.usage().snapshot()["bulk_read.create"].credits, 150);
}

#[tokio::test]
async fn criteria_filter_the_export() {
    let sim = sim(SimConfig::default().seed("Leads", 800)).await;
    let c = client(&sim);
    let q = BulkReadQuery {
        module: "Leads".into(),
        fields: vec!["Lead_Status".into()],
        criteria: Some(Criteria::condition("Lead_Status", "equal", json!("Contacted"))),
        ..Default::default()
    };
    let mut export = c.bulk_export(q);
    let (_, rows) = export.next_page(&mut |_| {}).await.unwrap().unwrap();
    let col = rows.column("Lead_Status").unwrap();
    let got: Vec<_> = rows.map(|r| r.unwrap()[col].to_string()).collect();
    let expected = sim.records("Leads").iter().filter(|r| r["Lead_Status"] == json!("Contacted")).count();
    assert!(expected > 0);
    assert_eq!(got.len(), expected);
    assert!(got.iter().all(|s| s == "Contacted"));
}

#[tokio::test]
async fn a_failed_read_job_is_an_error_with_zohos_reason() {
    let sim = sim(SimConfig::default().seed("Leads", 10)).await;
    let c = client(&sim);
    sim.inject(Fault::job_failed());
    let mut export = c.bulk_export(BulkReadQuery { module: "Leads".into(), ..Default::default() });
    let err = export.next_page(&mut |_| {}).await.unwrap_err();
    assert!(matches!(err, Error::JobFailed { kind: "read", .. }), "{err:?}");
}

#[tokio::test]
async fn token_expiry_and_throttled_downloads_mid_job_are_survived() {
    let sim = sim(SimConfig::default().seed("Deals", 300)).await;
    let c = client(&sim);
    let q = BulkReadQuery { module: "Deals".into(), ..Default::default() };
    let id = c.bulk_read_create(&q, None).await.unwrap();
    sim.expire_tokens();
    sim.inject(Fault::status(429, 2).on_path(&format!("/crm/bulk/v8/read/{id}/result")));
    let job = c.bulk_read_wait(&id, &mut |_| {}).await.unwrap();
    let rows = c.bulk_read_download(&job).await.unwrap();
    assert!(rows.headers().len() > 5, "every field is exported when none are named");
    assert_eq!(rows.count(), 300);
    assert_eq!(calls_to(&sim, "oauth.token"), 2);
    assert_eq!(c.usage().snapshot()["bulk_read.download"].retries, 2);
}

fn order_spec(op: WriteOp) -> BulkWriteSpec {
    BulkWriteSpec {
        module: "Orders".into(),
        operation: op,
        find_by: Some("parent_id".into()),
        columns: vec![
            Column::new("parent_id"),
            Column::new("Name"),
            Column::new("Quantity"),
            Column::with_format("Order_Date", "yyyy-MM-dd"),
        ],
        ignore_empty: true,
    }
}

fn order_rows(n: usize, qty: &str) -> Vec<zoho_api::Result<Vec<Option<String>>>> {
    (0..n).map(|i| Ok(vec![Some(format!("LEG-{i:05}")), Some(format!("Order {i}")), Some(qty.to_string()), Some("2025-03-04".into())])).collect()
}

#[tokio::test]
async fn bulk_upsert_matches_every_result_to_its_row() {
    let sim = sim(SimConfig::default()).await;
    let c = client(&sim);
    let mut rows = order_rows(600, "2");
    rows[17] = Ok(vec![Some("LEG-00017".into()), Some("Order 17".into()), Some("not-a-number".into()), Some("2025-03-04".into())]);
    let mut reports = Vec::new();
    let sent = c
        .bulk_write(&order_spec(WriteOp::Upsert), &mut rows.into_iter(), &mut |_| {}, &mut |r| {
            reports.push(r);
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(sent, 600);
    let results: Vec<_> = reports.into_iter().flat_map(|r| r.results).collect();
    assert_eq!(results.len(), 600);
    for (i, r) in results.iter().enumerate() {
        assert_eq!((r.index, r.key.as_str()), (i, format!("LEG-{i:05}").as_str()));
    }
    let bad = &results[17];
    assert_eq!(bad.status, RowStatus::Skipped);
    assert_eq!(bad.errors[0].code, "INVALID_DATA");
    assert_eq!(bad.errors[0].columns, vec!["Quantity".to_string()]);
    assert_eq!(results.iter().filter(|r| r.status == RowStatus::Added).count(), 599);
    let stored: HashMap<String, serde_json::Value> = sim.records("Orders").into_iter().map(|o| (o["parent_id"].as_str().unwrap().to_string(), serde_json::Value::Object(o))).collect();
    assert_eq!(stored.len(), 599);
    assert_eq!(stored["LEG-00001"]["Order_Date"], json!("2025-03-04"));
    for r in results.iter().filter(|r| r.is_ok()) {
        assert_eq!(stored[&r.key]["id"], json!(r.record_id.clone().unwrap()), "RECORD_ID matches the record");
    }

    // Sending again updates the same records; nothing new is created.
    let mut again = order_rows(600, "3").into_iter();
    let mut statuses = Vec::new();
    c.bulk_write(&order_spec(WriteOp::Upsert), &mut again, &mut |_| {}, &mut |r| {
        statuses.extend(r.results.into_iter().map(|x| x.status));
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(statuses.iter().filter(|s| **s == RowStatus::Updated).count(), 599);
    assert_eq!(statuses.iter().filter(|s| **s == RowStatus::Added).count(), 1, "the row fixed this time is added");
    assert_eq!(sim.records("Orders").len(), 600);
    assert_eq!(c.usage().snapshot()["bulk_write.create"].credits, 1000);
}

#[tokio::test]
async fn skipped_rows_failed_jobs_and_expired_tokens() {
    let sim = sim(SimConfig::default()).await;
    let c = client(&sim);
    sim.inject(Fault::skip_rows(3));
    let mut results = Vec::new();
    c.bulk_write(&order_spec(WriteOp::Upsert), &mut order_rows(50, "1").into_iter(), &mut |_| {}, &mut |r| {
        results.extend(r.results);
        Ok(())
    })
    .await
    .unwrap();
    let skipped: Vec<_> = results.iter().filter(|r| !r.is_ok()).collect();
    assert_eq!(skipped.len(), 3);
    assert!(skipped.iter().all(|r| !r.errors.is_empty()));

    sim.inject(Fault::job_failed());
    let err = c.bulk_write(&order_spec(WriteOp::Upsert), &mut order_rows(5, "1").into_iter(), &mut |_| {}, &mut |_| Ok(())).await.unwrap_err();
    assert!(matches!(err, Error::JobFailed { kind: "write", .. }), "{err:?}");

    // The token dies between upload and job status: refreshed, job still read.
    sim.inject(Fault::token_expiry(1).on_path("/crm/bulk/v8/write/"));
    let mut n = 0;
    c.bulk_write(&order_spec(WriteOp::Upsert), &mut order_rows(20, "4").into_iter(), &mut |_| {}, &mut |r| {
        n += r.results.iter().filter(|x| x.is_ok()).count();
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(n, 20);
}

#[tokio::test]
async fn update_without_a_key_is_refused_locally() {
    let sim = sim(SimConfig::default()).await;
    let c = client(&sim);
    let mut spec = order_spec(WriteOp::Update);
    spec.find_by = None;
    let err = c.bulk_write(&spec, &mut order_rows(1, "1").into_iter(), &mut |_| {}, &mut |_| Ok(())).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    assert!(sim.calls().is_empty(), "nothing may be sent");
}

/// Exports every page of 120 Leads in pages of 10 (12 downloads) and
/// returns the rows and the downloads Zoho answered 429.
async fn twelve_downloads(sim: &zoho_sim::Sim, per_window: usize, waits: &std::sync::Arc<std::sync::Mutex<Vec<String>>>) -> (usize, usize) {
    let mut cfg = config(sim);
    cfg.downloads_per_window = per_window;
    cfg.download_window = std::time::Duration::from_secs(2);
    let seen = waits.clone();
    cfg.on_wait = Some(std::sync::Arc::new(move |m: &str| seen.lock().unwrap().push(m.to_string())));
    let c = zoho_api::ZohoClient::new(cfg, credentials()).unwrap();
    let mut export = c.bulk_export(BulkReadQuery { module: "Leads".into(), fields: vec!["Last_Name".into()], ..Default::default() });
    let mut rows = 0;
    while let Some((_, page)) = export.next_page(&mut |_| {}).await.unwrap() {
        rows += page.count();
    }
    let throttled = sim.calls().iter().filter(|c| c.endpoint == "bulk_read.download" && c.status == 429).count();
    (rows, throttled)
}

#[tokio::test]
async fn the_download_window_is_waited_out_not_failed() {
    // Zoho allows 10 downloads a window (a minute; 2 s here).
    let sim = sim(SimConfig::default().seed("Leads", 120).bulk_page_size(10).download_window_secs(2)).await;
    let waits = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let started = std::time::Instant::now();
    let (rows, throttled) = twelve_downloads(&sim, 10, &waits).await;
    assert_eq!((rows, throttled), (120, 0), "the client keeps to the window: no 429 at all");
    assert!(started.elapsed() >= std::time::Duration::from_millis(1_500), "{:?}", started.elapsed());
    assert!(waits.lock().unwrap().iter().any(|w| w.contains("download window")), "the wait is told");

    // Another client filled the window: the 429 is waited out, once.
    let sim = sim_again(120).await;
    let waits = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (rows, throttled) = twelve_downloads(&sim, 1_000, &waits).await;
    assert_eq!((rows, throttled), (120, 1));
    assert!(waits.lock().unwrap().iter().any(|w| w.contains("window is full")));
}

async fn sim_again(n: usize) -> zoho_sim::Sim {
    sim(SimConfig::default().seed("Leads", n).bulk_page_size(10).download_window_secs(2)).await
}
