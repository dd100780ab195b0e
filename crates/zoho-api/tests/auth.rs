//! OAuth against the simulator: caching, expiry, INVALID_TOKEN, bad
//! credentials, and the shared refresh budget.
mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::*;
use zoho_api::{Credentials, Error, MemoryTokenStore, TokenStore, ZohoClient};
use zoho_sim::{Fault, SimConfig};

#[tokio::test]
async fn one_refresh_serves_many_calls_and_clients_sharing_a_store() {
    let sim = sim(SimConfig::default()).await;
    let store = Arc::new(MemoryTokenStore::default());
    let mut cfg = config(&sim);
    cfg.token_store = Some(store.clone());
    let a = ZohoClient::new(cfg.clone(), credentials()).unwrap();
    let b = ZohoClient::new(cfg, credentials()).unwrap();
    for _ in 0..3 {
        a.current_user().await.unwrap();
        b.modules().await.unwrap();
    }
    assert_eq!(calls_to(&sim, "oauth.token"), 1, "two clients, one token");
}

#[tokio::test]
async fn invalid_token_is_refreshed_once_and_retried() {
    let sim = sim(SimConfig::default()).await;
    let c = client(&sim);
    c.current_user().await.unwrap();
    sim.inject(Fault::token_expiry(1));
    c.current_user().await.unwrap();
    assert_eq!(calls_to(&sim, "oauth.token"), 2);
    // A token Zoho keeps refusing is an error, not a loop.
    sim.inject(Fault::token_expiry(5));
    let err = c.current_user().await.unwrap_err();
    assert_eq!(err.zoho_code(), Some("INVALID_TOKEN"), "{err}");
    assert_eq!(calls_to(&sim, "oauth.token"), 3);
}

#[tokio::test]
async fn expired_tokens_are_replaced_after_the_simulator_revokes_them() {
    let sim = sim(SimConfig::default()).await;
    let c = client(&sim);
    c.current_user().await.unwrap();
    sim.expire_tokens();
    c.current_user().await.unwrap();
    assert_eq!(calls_to(&sim, "oauth.token"), 2);
}

#[tokio::test]
async fn expires_in_is_honoured_by_refreshing_ahead_of_expiry() {
    let sim = sim(SimConfig::default().token_ttl_secs(2)).await;
    let c = client(&sim);
    c.current_user().await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    c.current_user().await.unwrap();
    assert_eq!(calls_to(&sim, "oauth.token"), 2);
    // No call was made with the stale token.
    assert!(sim.calls().iter().all(|call| call.code.as_deref() != Some("INVALID_TOKEN")));
}

#[tokio::test]
async fn wrong_secret_is_an_auth_error_that_does_not_echo_it() {
    let sim = sim(SimConfig::default()).await;
    let c = ZohoClient::new(config(&sim), Credentials::new("sim-client-id", "hunter2-secret", "sim-refresh-token")).unwrap();
    let err = c.current_user().await.unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    let text = format!("{err} {err:?}");
    assert!(text.contains("invalid_client"), "{text}");
    assert!(!text.contains("hunter2"), "secret leaked: {text}");

    let c = ZohoClient::new(config(&sim), Credentials::new("sim-client-id", "sim-client-secret", "1000.revoked-token")).unwrap();
    let err = c.current_user().await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains("1000.revoked-token"), "refresh token leaked: {text}");
}

#[tokio::test]
async fn exhausted_refresh_budget_stops_before_calling_zoho() {
    let sim = sim(SimConfig::default()).await;
    let store = Arc::new(MemoryTokenStore::default());
    let mut cfg = config(&sim);
    cfg.token_store = Some(store.clone());
    cfg.token_key = Some("shared".into());
    // The window opens in ten minutes: longer than this client may wait.
    cfg.max_refresh_wait = std::time::Duration::from_secs(1);
    let now = SystemTime::now();
    for _ in 0..10 {
        store.claim_refresh("shared", now).unwrap();
    }
    let c = ZohoClient::new(cfg, credentials()).unwrap();
    let err = c.current_user().await.unwrap_err();
    assert!(matches!(err, Error::RefreshRateLimited { .. }), "{err:?}");
    assert_eq!(calls_to(&sim, "oauth.token"), 0);
}

#[tokio::test]
async fn the_simulator_enforces_zohos_refresh_limit_too() {
    // Eleven clients with their own stores each refresh once: Zoho's side
    // of the limit answers the eleventh with an error on HTTP 200.
    let sim = sim(SimConfig::default()).await;
    let mut last = None;
    for _ in 0..11 {
        let c = client(&sim);
        last = Some(c.current_user().await);
    }
    let err = last.unwrap().unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    assert!(err.to_string().to_lowercase().contains("access denied") || err.to_string().contains("too many"), "{err}");
}

/// A store whose refresh window is full once, for `wait`.
struct FullOnce {
    inner: MemoryTokenStore,
    wait: std::time::Duration,
    refused: std::sync::atomic::AtomicBool,
}

impl zoho_api::TokenStore for FullOnce {
    fn get(&self, key: &str) -> Option<zoho_api::AccessToken> {
        self.inner.get(key)
    }
    fn put(&self, key: &str, token: &zoho_api::AccessToken) {
        self.inner.put(key, token)
    }
    fn discard(&self, key: &str, token: &zoho_api::Secret) {
        self.inner.discard(key, token)
    }
    fn claim_refresh(&self, key: &str, now: SystemTime) -> Result<(), std::time::Duration> {
        if !self.refused.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Err(self.wait);
        }
        self.inner.claim_refresh(key, now)
    }
}

#[tokio::test]
async fn a_full_refresh_window_is_waited_out_and_said() {
    let sim = sim(SimConfig::default()).await;
    let mut cfg = config(&sim);
    let wait = std::time::Duration::from_millis(400);
    cfg.token_store = Some(Arc::new(FullOnce { inner: MemoryTokenStore::default(), wait, refused: Default::default() }));
    let told = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = told.clone();
    cfg.on_wait = Some(Arc::new(move |m: &str| seen.lock().unwrap().push(m.to_string())));
    let c = ZohoClient::new(cfg, credentials()).unwrap();
    let started = std::time::Instant::now();
    c.current_user().await.expect("the call goes through once the window opens");
    assert!(started.elapsed() >= wait, "{:?}", started.elapsed());
    assert_eq!(calls_to(&sim, "oauth.token"), 1, "one refresh, after the wait");
    assert!(told.lock().unwrap()[0].contains("token refresh window"), "{:?}", told.lock().unwrap());
}
