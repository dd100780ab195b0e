//! Retries, backoff, timeouts, cancel, malformed replies, concurrency and
//! usage counters, with faults injected by the simulator.
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use zoho_api::{Cancel, Error, WriteOptions, ZohoClient};
use zoho_sim::{Fault, SimConfig};

#[tokio::test]
async fn storms_of_429_and_5xx_and_dropped_connections_are_ridden_out() {
    let sim = sim(SimConfig::default()).await;
    let c = client(&sim);
    c.current_user().await.unwrap();
    for fault in [Fault::status(429, 3), Fault::status(503, 2), Fault::status(500, 1), Fault::reset(2)] {
        sim.inject(fault.on_path("/crm/v8/users"));
        let user = c.current_user().await.unwrap();
        assert!(!user.id.is_empty());
    }
    let usage = c.usage().snapshot();
    assert_eq!(usage["users"].calls, 5, "{usage:?}");
    assert_eq!(usage["users"].retries, 8, "{usage:?}");
}

#[tokio::test]
async fn a_storm_longer_than_the_retry_budget_is_reported_with_zohos_code() {
    let sim = sim(SimConfig::default()).await;
    let c = client(&sim);
    sim.inject(Fault::status(429, 50).on_path("/crm/v8/users"));
    let err = c.current_user().await.unwrap_err();
    assert!(matches!(err, Error::RetriesExhausted { attempts: 5, .. }), "{err:?}");
    assert_eq!(err.zoho_code(), Some("TOO_MANY_REQUESTS"));
}

#[tokio::test]
async fn slow_replies_time_out_and_are_retried() {
    let sim = sim(SimConfig::default()).await;
    let mut cfg = config(&sim);
    cfg.request_timeout = Duration::from_millis(300);
    let c = ZohoClient::new(cfg, credentials()).unwrap();
    c.current_user().await.unwrap();
    sim.inject(Fault::slow(3_000, 1).on_path("/crm/v8/users"));
    let started = Instant::now();
    c.current_user().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(c.usage().snapshot()["users"].retries, 1);
}

#[tokio::test]
async fn cancel_stops_a_slow_call_within_a_second() {
    let sim = sim(SimConfig::default()).await;
    let flag = Arc::new(AtomicBool::new(false));
    let mut cfg = config(&sim);
    let f = flag.clone();
    cfg.cancel = Cancel::new(Some(Arc::new(move || f.load(Ordering::SeqCst))));
    let c = ZohoClient::new(cfg, credentials()).unwrap();
    c.current_user().await.unwrap();
    sim.inject(Fault::slow(20_000, 3).on_path("/crm/v8/users"));
    let setter = flag.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        setter.store(true, Ordering::SeqCst);
    });
    let started = Instant::now();
    let err = c.current_user().await.unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_body_that_does_not_parse_fails_at_once() {
    let sim = sim(SimConfig::default()).await;
    let c = client(&sim);
    c.current_user().await.unwrap();
    let before = calls_to(&sim, "meta.users");
    sim.inject(Fault::malformed(10).on_path("/crm/v8/users"));
    let err = c.current_user().await.unwrap_err();
    let Error::Malformed { endpoint, reason } = &err else { panic!("{err:?}") };
    assert_eq!(endpoint, "users");
    assert!(reason.contains("not JSON") && !reason.contains("Gateway"), "the body is not quoted: {reason}");
    assert_eq!(calls_to(&sim, "meta.users") - before, 1, "the same bytes would come back: one call, no retry");
    assert_eq!(c.usage().total().retries, 0);
}

#[tokio::test]
async fn the_client_limits_its_own_concurrency() {
    // The simulator allows 2 in flight and answers 429 beyond; a client
    // limited to 2 never meets a 429 even when 12 calls are started at once.
    let sim = sim(SimConfig::default().concurrency(2).latency_ms(40)).await;
    let mut cfg = config(&sim);
    cfg.max_concurrency = 2;
    let c = ZohoClient::new(cfg, credentials()).unwrap();
    c.current_user().await.unwrap();
    let started = Instant::now();
    let results = futures_util::future::join_all((0..12).map(|_| c.current_user())).await;
    assert!(results.iter().all(Result::is_ok));
    assert!(sim.calls().iter().all(|call| call.status != 429), "a 429 reached the client");
    // 12 calls, 2 at a time, 40 ms each: at least 6 rounds.
    assert!(started.elapsed() >= Duration::from_millis(240), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_client_allowed_more_than_zoho_recovers_from_429s() {
    let sim = sim(SimConfig::default().concurrency(2).latency_ms(30)).await;
    let mut cfg = config(&sim);
    cfg.max_concurrency = 8;
    cfg.retry.max_attempts = 20;
    let c = ZohoClient::new(cfg, credentials()).unwrap();
    c.current_user().await.unwrap();
    let results = futures_util::future::join_all((0..8).map(|_| c.current_user())).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(sim.calls().iter().any(|call| call.status == 429), "the simulator never throttled");
}

#[tokio::test]
async fn exhausted_daily_credits_are_not_retried() {
    let sim = sim(SimConfig::default().daily_credits(3)).await;
    let c = client(&sim);
    for _ in 0..3 {
        c.current_user().await.unwrap();
    }
    let err = c.current_user().await.unwrap_err();
    assert_eq!(err.http_status(), Some(429), "{err:?}");
    assert!(!matches!(err, Error::RetriesExhausted { .. }), "credit exhaustion must not be retried: {err:?}");
}

#[tokio::test]
async fn usage_counts_calls_and_credits_like_the_simulator() {
    let sim = sim(SimConfig::default().seed("Leads", 300)).await;
    let c = client(&sim);
    let rows = c.list("Leads", zoho_api::records::ListOptions {
        fields: vec!["Last_Name".into()],
        converted: Some("both".into()),
        ..Default::default()
    }).unwrap().collect_all().await.unwrap();
    assert_eq!(rows.len(), 300);
    let ours = c.usage().total();
    let theirs = sim.credits();
    assert_eq!(ours.credits, theirs.used, "client {ours:?} vs simulator {theirs:?}");
    assert_eq!(c.usage().snapshot()["records.list"].calls, 2);
}

#[tokio::test]
async fn an_insert_that_times_out_is_not_sent_again() {
    let sim = sim(SimConfig::default()).await;
    let mut cfg = config(&sim);
    cfg.request_timeout = Duration::from_millis(400);
    let c = ZohoClient::new(cfg, credentials()).unwrap();
    c.current_user().await.unwrap();
    let named = |sim: &zoho_sim::Sim, name: &str| sim.records("Leads").iter().filter(|r| r["Last_Name"] == name).count();
    // Zoho applies the insert, but answers after the client gave up.
    sim.inject(Fault::slow_reply(1_000, 1).on_path("/crm/v8/Leads"));
    let err = c.insert("Leads", &[rec(json!({"Last_Name": "Sent once", "Company": "X"}))], &WriteOptions::default()).await.unwrap_err();
    let Error::OutcomeUnknown { endpoint, reason } = &err else { panic!("{err:?}") };
    assert_eq!(endpoint, "records.insert");
    assert!(reason.contains("timed out"), "{reason}");
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(named(&sim, "Sent once"), 1, "one INSERT, one record");
    // An upsert is retried after a timeout: the same key twice is one record.
    sim.inject(Fault::slow_reply(1_000, 1).on_path("/crm/v8/Leads/upsert"));
    let opts = WriteOptions { trigger: None, duplicate_check_fields: Some(vec!["Email".into()]) };
    let r = c.upsert("Leads", &[rec(json!({"Last_Name": "Upserted", "Email": "once@example.com", "Company": "X"}))], &opts).await.unwrap();
    assert!(r[0].outcome.is_ok());
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(named(&sim, "Upserted"), 1);
}

/// Once a call has run out of retries because Zoho did not answer, later
/// calls try once each until Zoho answers again: the worker's backoff is
/// then the only retry loop, and an outage costs one call per attempt.
#[tokio::test]
async fn after_zoho_stops_answering_each_call_tries_once_until_it_answers_again() {
    let sim = sim(SimConfig::default()).await;
    let c = client(&sim);
    c.current_user().await.unwrap();
    // Every HTTP attempt: answered, retried or failed.
    let users = |c: &ZohoClient| c.usage().snapshot().get("users").map_or(0, |u| u.calls + u.retries + u.errors);
    sim.inject(Fault::status(503, 1_000).on_path("/crm/v8/users"));
    let before = users(&c);
    assert!(matches!(c.current_user().await.unwrap_err(), Error::RetriesExhausted { .. }));
    let first = users(&c) - before;
    assert_eq!(first, 5, "the first failing call is retried as usual");
    assert!(c.transport().is_unreachable());
    for _ in 0..3 {
        let e = c.current_user().await.unwrap_err();
        assert_eq!(e.http_status(), Some(503), "{e:?}");
    }
    assert_eq!(users(&c) - before, first + 3, "one try per call while Zoho does not answer");
    // Zoho answers again: the flag clears, and a later blip is retried.
    sim.clear_faults();
    c.current_user().await.unwrap();
    assert!(!c.transport().is_unreachable());
    sim.inject(Fault::status(503, 2).on_path("/crm/v8/users"));
    c.current_user().await.unwrap();
    // A 429 is an answer (Zoho is up, only busy): it never sets the flag.
    sim.inject(Fault::status(429, 50).on_path("/crm/v8/users"));
    assert!(c.current_user().await.is_err());
    assert!(!c.transport().is_unreachable());
}
