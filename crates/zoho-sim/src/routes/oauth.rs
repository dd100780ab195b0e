//! `POST /oauth/v2/token` (zoho-api.md §2): refresh-token grant, params from
//! the form body or the query string; errors as HTTP 200 `{"error":…}`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use chrono::Duration;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::errors::ok_json;
use crate::state::{AccessToken, App};

pub const MAX_LIVE_TOKENS: usize = 10;
pub const MAX_REFRESHES: usize = 10;

fn params(query: Option<String>, body: &Bytes) -> HashMap<String, String> {
    let mut p: HashMap<String, String> = HashMap::new();
    if let Some(q) = query {
        if let Ok(v) = serde_urlencoded::from_str::<Vec<(String, String)>>(&q) {
            p.extend(v);
        }
    }
    if let Ok(s) = std::str::from_utf8(body) {
        if let Ok(v) = serde_urlencoded::from_str::<Vec<(String, String)>>(s) {
            for (k, val) in v {
                p.entry(k).or_insert(val);
            }
        }
    }
    p
}

pub async fn token(State(app): State<Arc<App>>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    let p = params(query, &body);
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    let cfg = &app.cfg;
    if get("client_id") != cfg.client_id || get("client_secret") != cfg.client_secret {
        return ok_json(&json!({"error": "invalid_client"}));
    }
    match get("grant_type") {
        "refresh_token" => {}
        "" => return ok_json(&json!({"error": "invalid_request"})),
        _ => return ok_json(&json!({"error": "unsupported_grant_type"})),
    }
    let refresh = get("refresh_token").to_string();
    if refresh != cfg.refresh_token {
        return ok_json(&json!({"error": "invalid_code"}));
    }
    let now = app.now();
    let mut st = app.st();
    let window = st.tokens.refreshes.entry(refresh.clone()).or_default();
    while window.front().is_some_and(|t| now - *t >= Duration::minutes(10)) {
        window.pop_front();
    }
    if window.len() >= MAX_REFRESHES {
        return ok_json(&json!({
            "error": "Access Denied",
            "error_description": "You have made too many requests continuously. Please try again after some time."
        }));
    }
    window.push_back(now);
    st.tokens.seq += 1;
    let seq = st.tokens.seq;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(app.cfg.rng_seed ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ now.timestamp() as u64);
    let access = format!("1000.{:032x}.{:032x}", rng.gen::<u128>(), rng.gen::<u128>());
    // Drop expired tokens, then revoke the oldest live ones beyond the cap.
    st.tokens.access.retain(|_, t| t.expires_at > now);
    let mut live: Vec<(u64, String)> = st
        .tokens
        .access
        .iter()
        .filter(|(_, t)| t.refresh_token == refresh)
        .map(|(k, t)| (t.issued_seq, k.clone()))
        .collect();
    live.sort();
    while live.len() >= MAX_LIVE_TOKENS {
        let (_, k) = live.remove(0);
        st.tokens.access.remove(&k);
    }
    let ttl = app.cfg.token_ttl_secs;
    st.tokens.access.insert(access.clone(), AccessToken { refresh_token: refresh, expires_at: now + Duration::seconds(ttl as i64), issued_seq: seq });
    ok_json(&json!({
        "access_token": access,
        "scope": "ZohoCRM.modules.ALL ZohoCRM.settings.ALL ZohoCRM.coql.READ ZohoCRM.bulk.ALL ZohoCRM.notifications.ALL ZohoCRM.org.READ ZohoCRM.users.READ ZohoFiles.files.ALL",
        "api_domain": app.base_url(),
        "token_type": "Bearer",
        "expires_in": ttl,
    }))
}

/// `POST /oauth/v2/token/revoke?token=<refresh or access token>`.
pub async fn revoke(State(app): State<Arc<App>>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    let p = params(query, &body);
    let tok = p.get("token").cloned().unwrap_or_default();
    let mut st = app.st();
    st.tokens.access.remove(&tok);
    st.tokens.access.retain(|_, t| t.refresh_token != tok);
    ok_json(&json!({"status": "success"}))
}
