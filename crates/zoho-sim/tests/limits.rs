mod common;

use common::*;
use serde_json::json;
use zoho_sim::{Fault, SimConfig};

#[tokio::test]
async fn credits_follow_zohos_table() {
    let ctx = Ctx::new(SimConfig::default().seed("Leads", 30).bulk_step_ms(10)).await;
    assert_eq!(ctx.get("/crm/v8/Leads?fields=Last_Name").await.status(), 200);
    let recs: Vec<_> = (0..15).map(|i| json!({"Last_Name": format!("L{i}")})).collect();
    assert_eq!(ctx.post("/crm/v8/Leads", &json!({"data": recs})).await.status(), 201);
    assert_eq!(ctx.coql("select Last_Name from Leads where id is not null limit 1000").await.status(), 200);
    assert_eq!(ctx.coql("select Last_Name from Leads where id is not null limit 5").await.status(), 200);
    assert_eq!(ctx.post("/crm/bulk/v8/read", &json!({"query": {"module": {"api_name": "Leads"}}})).await.status(), 201);
    assert_eq!(ctx.get("/crm/v8/Leads/deleted").await.status(), 204);
    let c = ctx.sim.credits();
    assert_eq!(c.by_endpoint["records.list"].credits, 1);
    assert_eq!(c.by_endpoint["records.insert"].credits, 2);
    assert_eq!(c.by_endpoint["coql"].credits, 3);
    assert_eq!(c.by_endpoint["coql"].calls, 2);
    assert_eq!(c.by_endpoint["bulk_read.create"].credits, 50);
    assert_eq!(c.by_endpoint["records.deleted"].credits, 2);
    assert_eq!(c.used, 58);
    assert_eq!(c.remaining, 50_000 - 58);
    let calls = ctx.sim.calls();
    let coql = calls.iter().find(|c| c.endpoint == "coql").unwrap();
    assert_eq!((coql.credits, coql.status), (2, 200));
    assert_eq!(coql.request_body.as_ref().unwrap()["select_query"], "select Last_Name from Leads where id is not null limit 1000");
    assert!(calls.iter().any(|c| c.endpoint == "oauth.token" && c.request_body.is_none()));
    ctx.sim.clear_calls();
    assert!(ctx.sim.calls().is_empty());
}

#[tokio::test]
async fn exhausted_credits_answer_429_until_the_window_rolls() {
    let ctx = Ctx::new(SimConfig::default().seed("Leads", 3).daily_credits(3)).await;
    for _ in 0..3 {
        assert_eq!(ctx.get("/crm/v8/Leads?fields=Last_Name").await.status(), 200);
    }
    let (s, v) = sj(ctx.get("/crm/v8/Leads?fields=Last_Name").await).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (429, Some("TOO_MANY_REQUESTS")));
    assert_eq!(ctx.sim.credits().used, 3);
    ctx.sim.advance_clock(std::time::Duration::from_secs(24 * 3600));
    let t = fetch_token(&ctx.http, &ctx.sim.base_url()).await;
    let r = ctx.http.get(ctx.url("/crm/v8/Leads?fields=Last_Name")).header("Authorization", format!("Zoho-oauthtoken {t}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn concurrency_and_sub_concurrency_limits() {
    let ctx = Ctx::new(SimConfig::default().seed("Leads", 5).concurrency(3).latency_ms(300)).await;
    let futs: Vec<_> = (0..6).map(|_| ctx.get("/crm/v8/Leads?fields=Last_Name")).collect();
    let statuses: Vec<u16> = futures_join(futs).await;
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 3);

    let ctx = Ctx::new(SimConfig::default().seed("Leads", 5).concurrency(10).sub_concurrency(2).latency_ms(300)).await;
    let futs: Vec<_> = (0..4).map(|_| ctx.coql("select Last_Name from Leads where id is not null")).collect();
    let statuses = futures_join(futs).await;
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 2, "{statuses:?}");
}

async fn futures_join(futs: Vec<impl std::future::Future<Output = reqwest::Response>>) -> Vec<u16> {
    let handles: Vec<_> = futs.into_iter().map(|f| async move { f.await.status().as_u16() }).collect();
    let mut out = Vec::new();
    // Drive all at once.
    let joined = futures_all(handles).await;
    out.extend(joined);
    out
}

async fn futures_all<F: std::future::Future<Output = u16>>(fs: Vec<F>) -> Vec<u16> {
    let mut set = Vec::new();
    for f in fs {
        set.push(Box::pin(f));
    }
    let mut results = vec![0u16; set.len()];
    let mut pending: Vec<usize> = (0..set.len()).collect();
    std::future::poll_fn(|cx| {
        pending.retain(|&i| match set[i].as_mut().poll(cx) {
            std::task::Poll::Ready(s) => {
                results[i] = s;
                false
            }
            std::task::Poll::Pending => true,
        });
        if pending.is_empty() { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
    })
    .await;
    results
}

#[tokio::test]
async fn every_fault_kind() {
    let ctx = Ctx::new(SimConfig::default().seed("Leads", 3)).await;
    let list = "/crm/v8/Leads?fields=Last_Name";

    ctx.sim.inject(Fault::status(503, 2).on_path("/crm/v8/Leads"));
    assert_eq!(ctx.coql("select Last_Name from Leads where id is not null").await.status(), 200, "other paths untouched");
    let (s, v) = sj(ctx.get(list).await).await;
    assert_eq!((s.as_u16(), v["code"].as_str(), v["status"].as_str()), (503, Some("INTERNAL_ERROR"), Some("error")));
    assert_eq!(ctx.get(list).await.status(), 503);
    assert_eq!(ctx.get(list).await.status(), 200, "count used up");

    ctx.sim.inject(Fault::status(429, 1));
    let (s, v) = sj(ctx.get(list).await).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (429, Some("TOO_MANY_REQUESTS")));

    ctx.sim.inject(Fault::token_expiry(1));
    let (s, v) = sj(ctx.get(list).await).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (401, Some("INVALID_TOKEN")));

    ctx.sim.inject(Fault::malformed(1));
    let r = ctx.get(list).await;
    assert_eq!(r.status(), 200);
    assert!(serde_json::from_slice::<serde_json::Value>(&r.bytes().await.unwrap()).is_err());

    ctx.sim.inject(Fault::reset(1));
    let err = ctx.http.get(ctx.url(list)).header("Authorization", ctx.auth()).send().await;
    assert!(err.is_err(), "connection dropped");
    assert_eq!(ctx.get(list).await.status(), 200);

    ctx.sim.inject(Fault::slow(300, 1));
    let t = std::time::Instant::now();
    assert_eq!(ctx.get(list).await.status(), 200);
    assert!(t.elapsed() >= std::time::Duration::from_millis(300));

    ctx.sim.inject(Fault::status(500, 5));
    ctx.sim.clear_faults();
    assert_eq!(ctx.get(list).await.status(), 200);
    let codes: Vec<Option<String>> = ctx.sim.calls().iter().map(|c| c.code.clone()).collect();
    assert!(codes.contains(&Some("RESET".into())) && codes.contains(&Some("MALFORMED".into())));

    // The admin HTTP API queues the same faults.
    let r = ctx.http.post(ctx.url("/__sim/faults")).json(&json!({"kind": "status", "status": 500, "count": 1, "path_prefix": "/crm/v8/Leads"})).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(ctx.get(list).await.status(), 500);
}
