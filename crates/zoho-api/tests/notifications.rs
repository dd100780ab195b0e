//! Notification channels against the simulator, with a real receiver for
//! the callbacks it POSTs.
mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::*;
use serde_json::json;
use zoho_api::notifications::{Channel, Operation, WebhookPayload};
use zoho_api::records::WriteOptions;
use zoho_sim::SimConfig;

async fn receiver() -> (String, Arc<Mutex<Vec<WebhookPayload>>>) {
    let got: Arc<Mutex<Vec<WebhookPayload>>> = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(WebhookPayload::parse(&body).expect("callback parses"));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook?tenant=42"), got)
}

async fn wait_for(got: &Arc<Mutex<Vec<WebhookPayload>>>, n: usize) -> Vec<WebhookPayload> {
    for _ in 0..100 {
        if got.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    got.lock().unwrap().clone()
}

fn channel(url: &str, expiry: Option<DateTime<Utc>>) -> Channel {
    Channel {
        channel_id: 1_000_000_068_001,
        events: vec!["Leads.all".into()],
        notify_url: url.into(),
        token: Some("s3cret-channel-token".into()),
        channel_expiry: expiry.map(|e| e.fixed_offset()),
        return_affected_field_values: true,
        notify_on_related_action: false,
    }
}

#[tokio::test]
async fn callbacks_arrive_for_api_writes_and_ui_edits() {
    let sim = sim(SimConfig::default()).await;
    let c = client(&sim);
    let (url, got) = receiver().await;
    let res = c.watch_enable(&[channel(&url, Some(Utc::now() + chrono::Duration::days(2)))]).await.unwrap();
    let subs = res[0].outcome.as_ref().unwrap();
    assert_eq!(subs[0].resource_name.as_deref(), Some("Leads"));

    let leads: Vec<_> = (0..3).map(|i| rec(json!({"Last_Name": format!("Hooked {i}")}))).collect();
    let ins = c.insert("Leads", &leads, &WriteOptions::default()).await.unwrap();
    let ids: Vec<String> = ins.iter().map(|r| r.outcome.as_ref().unwrap().id.clone()).collect();
    let calls = wait_for(&got, 1).await;
    assert_eq!(calls[0].operation, Operation::Insert);
    assert_eq!(calls[0].ids, ids, "one callback carries every id of the call");
    assert!(calls[0].token_matches("s3cret-channel-token"));
    assert_eq!(calls[0].query_params["tenant"], json!("42"));

    sim.ui_edit("Leads", &ids[1], json!({"Phone": "555-0101"})).unwrap();
    let calls = wait_for(&got, 2).await;
    assert_eq!(calls[1].operation, Operation::Update);
    assert_eq!(calls[1].fields_changed(&ids[1]), Some(vec!["Phone".to_string()]));
    assert_eq!(calls[1].values_of(&ids[1]).unwrap()["Phone"], json!("555-0101"));

    sim.ui_delete("Leads", &ids[2]).unwrap();
    let calls = wait_for(&got, 3).await;
    assert_eq!((calls[2].operation, calls[2].ids.clone()), (Operation::Delete, vec![ids[2].clone()]));
}

#[tokio::test]
async fn channels_are_listed_renewed_trimmed_and_disabled() {
    let sim = sim(SimConfig::default()).await;
    let c = client(&sim);
    let (url, _got) = receiver().await;
    // Past the 7-day maximum Zoho silently uses one hour.
    let res = c.watch_enable(&[channel(&url, Some(Utc::now() + chrono::Duration::days(30)))]).await.unwrap();
    let expiry = DateTime::parse_from_rfc3339(res[0].outcome.as_ref().unwrap()[0].channel_expiry.as_deref().unwrap()).unwrap();
    let ahead = expiry.with_timezone(&Utc) - Utc::now();
    assert!(ahead <= chrono::Duration::minutes(61) && ahead >= chrono::Duration::minutes(59), "{ahead}");

    let listed = c.watch_list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].channel_id, "1000000068001");

    let later = Utc::now() + chrono::Duration::days(6);
    let res = c.watch_update(&[channel(&url, Some(later))]).await.unwrap();
    assert!(res[0].outcome.is_ok(), "{res:?}");
    let listed = c.watch_list().await.unwrap();
    let renewed = DateTime::parse_from_rfc3339(listed[0].channel_expiry.as_deref().unwrap()).unwrap();
    assert!((renewed.with_timezone(&Utc) - later).num_seconds().abs() <= 1);

    c.watch_remove_events(1_000_000_068_001, &["Leads.all".into()]).await.unwrap();

    // Once expired, a renewal answers NOT_SUBSCRIBED: enable it again.
    sim.advance_clock(Duration::from_secs(8 * 86_400));
    let res = c.watch_update(&[channel(&url, None)]).await.unwrap();
    assert_eq!(res[0].outcome.as_ref().unwrap_err().code, "NOT_SUBSCRIBED");
    assert!(c.watch_list().await.unwrap().is_empty(), "204 means no channels");
    c.watch_enable(&[channel(&url, None)]).await.unwrap();
    let res = c.watch_disable(&[1_000_000_068_001]).await.unwrap();
    assert!(res[0].outcome.is_ok(), "{res:?}");
    assert!(c.watch_list().await.unwrap().is_empty());
}

#[tokio::test]
async fn bad_channels_fail_per_item() {
    let sim = sim(SimConfig::default()).await;
    let c = client(&sim);
    let mut bad = channel("http://127.0.0.1:9/hook", None);
    bad.events = vec!["Nope.create".into()];
    let res = c.watch_enable(&[bad]).await.unwrap();
    assert!(res[0].outcome.is_err(), "{res:?}");
}
