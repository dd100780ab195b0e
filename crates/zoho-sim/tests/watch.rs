mod common;

use std::sync::{Arc, Mutex};

use axum::routing::post;
use axum::Json;
use common::*;
use serde_json::{json, Value};
use zoho_sim::SimConfig;

/// A local webhook receiver that stores every JSON body it gets.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |Json(v): Json<Value>| {
            let g = g.clone();
            async move {
                g.lock().unwrap().push(v);
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook?tenant=42", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, got)
}

#[tokio::test]
async fn enable_get_patch_delete_and_per_item_errors() {
    let ctx = Ctx::new(SimConfig::default()).await;
    assert_eq!(ctx.get("/crm/v8/actions/watch").await.status(), 204);
    let far = (chrono::Utc::now() + chrono::Duration::days(30)).format("%Y-%m-%dT%H:%M:%S+00:00").to_string();
    let body = json!({"watch": [
        {"channel_id": 1000000068001_i64, "events": ["Leads.create", "Leads.edit", "Deals.all"], "notify_url": "http://127.0.0.1:9/x", "token": "t1", "channel_expiry": far},
        {"channel_id": 1000000068002_i64, "events": ["Leads.create"], "notify_url": "http://127.0.0.1:9/x", "token": "x".repeat(51)},
        {"events": ["Leads.create"], "notify_url": "http://127.0.0.1:9/x"},
        {"channel_id": "3", "events": ["Nope.create"], "notify_url": "http://127.0.0.1:9/x"}
    ]});
    let (s, v) = sj(ctx.post("/crm/v8/actions/watch", &body).await).await;
    assert_eq!(s, 202);
    let w = &v["watch"];
    assert_eq!(w[0]["code"], "SUCCESS");
    let ev = w[0]["details"]["events"].as_array().unwrap();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0]["resource_name"], "Leads");
    assert_eq!(ev[0]["resource_uri"], "https://www.zohoapis.com/crm/v2/Leads");
    assert_eq!(ev[0]["channel_id"], "1000000068001", "sent as a number, answered as a string");
    // Beyond the 7-day maximum the expiry silently becomes one hour.
    let exp = chrono::DateTime::parse_from_rfc3339(ev[0]["channel_expiry"].as_str().unwrap()).unwrap();
    let delta = exp.signed_duration_since(chrono::Utc::now()).num_minutes();
    assert!((58..=61).contains(&delta), "{delta}");
    assert_eq!((w[1]["code"].as_str(), w[1]["details"]["api_name"].as_str()), (Some("INVALID_DATA"), Some("token")));
    assert_eq!((w[2]["code"].as_str(), w[2]["details"]["api_name"].as_str()), (Some("MANDATORY_NOT_FOUND"), Some("channel_id")));
    assert_eq!((w[3]["code"].as_str(), w[3]["details"]["api_name"].as_str()), (Some("INVALID_DATA"), Some("events")));

    let (s, v) = sj(ctx.get("/crm/v8/actions/watch").await).await;
    assert_eq!(s, 200);
    assert_eq!(v["watch"].as_array().unwrap().len(), 1);
    assert_eq!(v["watch"][0]["events"], json!(["Leads.create", "Leads.edit", "Deals.all"]));
    assert_eq!(v["info"]["count"], 1);

    let (s, v) = sj(ctx.send(reqwest::Method::PATCH, "/crm/v8/actions/watch", &json!({"watch": [{"channel_id": "1000000068001", "events": ["Leads.edit"], "_delete_events": true}]})).await).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(ctx.sim.channels()[0]["events"], json!(["Leads.create", "Deals.all"]));
    let (s, v) = sj(ctx.send(reqwest::Method::PATCH, "/crm/v8/actions/watch", &json!({"watch": [{"channel_id": "77", "events": ["Leads.edit"]}]})).await).await;
    assert_eq!((s.as_u16(), v["watch"][0]["code"].as_str()), (202, Some("NOT_SUBSCRIBED")));
    // PUT replaces: keys left out are dropped.
    let (s, _) = sj(ctx.put("/crm/v8/actions/watch", &json!({"watch": [{"channel_id": 1000000068001_i64, "events": ["Contacts.delete"], "notify_url": "http://127.0.0.1:9/y"}]})).await).await;
    assert_eq!(s, 200);
    let ch = &ctx.sim.channels()[0];
    assert_eq!((ch["events"].clone(), ch["token"].clone(), ch["notify_url"].clone()), (json!(["Contacts.delete"]), Value::Null, json!("http://127.0.0.1:9/y")));
    let (s, v) = sj(ctx.delete("/crm/v8/actions/watch?channel_ids=1000000068001").await).await;
    assert_eq!((s.as_u16(), v["watch"][0]["message"].as_str()), (200, Some("Successfully un-subscribed from actions-watch")));
    assert!(ctx.sim.channels().is_empty());
}

#[tokio::test]
async fn callbacks_are_delivered_for_api_and_ui_writes_and_stop_at_expiry() {
    let (url, got) = receiver().await;
    let ctx = Ctx::new(SimConfig::default().seed("Leads", 3)).await;
    let body = json!({"watch": [{"channel_id": "555", "events": ["Leads.all"], "notify_url": url, "token": "secret-token", "return_affected_field_values": true}]});
    let (s, _) = sj(ctx.post("/crm/v8/actions/watch", &body).await).await;
    assert_eq!(s, 201);
    let (_, v) = sj(ctx.post("/crm/v8/Leads", &json!({"data": [{"Last_Name": "One"}, {"Last_Name": "Two"}]})).await).await;
    let new_ids: Vec<String> = v["data"].as_array().unwrap().iter().map(|r| r["details"]["id"].as_str().unwrap().to_string()).collect();
    let first = wait_for(|| async { got.lock().unwrap().first().cloned() }).await;
    assert_eq!(first["operation"], "insert");
    assert_eq!(first["module"], "Leads");
    assert_eq!(first["ids"], json!(new_ids), "one callback carries every id of the call");
    assert_eq!(first["channel_id"], "555");
    assert_eq!(first["token"], "secret-token");
    assert_eq!(first["query_params"], json!({"tenant": "42"}));
    assert_eq!(first["affected_fields"], json!([]));
    assert!(first["server_time"].as_i64().unwrap() > 1_600_000_000_000);

    ctx.sim.ui_edit("Leads", &new_ids[0], json!({"Company": "Zylker"})).unwrap();
    let upd = wait_for(|| async { got.lock().unwrap().get(1).cloned() }).await;
    assert_eq!(upd["operation"], "update");
    assert_eq!(upd["affected_fields"], json!([{ new_ids[0].clone(): ["Company"] }]));
    assert_eq!(upd["affected_values"], json!([{"record_id": new_ids[0], "values": {"Company": "Zylker"}}]));
    let (_, _) = sj(ctx.delete(&format!("/crm/v8/Leads?ids={}", new_ids[1])).await).await;
    let del = wait_for(|| async { got.lock().unwrap().get(2).cloned() }).await;
    assert_eq!((del["operation"].as_str(), del["ids"].clone()), (Some("delete"), json!([new_ids[1]])));
    let logged = wait_for(|| async { let d = ctx.sim.deliveries(); (d.len() == 3 && d.iter().all(|x| x.status.is_some())).then_some(d) }).await;
    assert!(logged.iter().all(|d| d.status == Some(200)));

    // After expiry (sim clock) nothing is delivered and the channel is gone.
    ctx.sim.advance_clock(std::time::Duration::from_secs(3601));
    ctx.sim.ui_create("Leads", json!({"Last_Name": "Late"})).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(got.lock().unwrap().len(), 3);
    assert!(ctx.sim.channels().is_empty());
    assert_eq!(ctx.sim.deliveries().len(), 3);
}
