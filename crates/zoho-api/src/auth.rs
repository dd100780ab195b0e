//! OAuth refresh-token flow (zoho-api.md §2).
//!
//! Zoho allows 10 token refreshes per 10 minutes and 10 live access tokens
//! per refresh token, so the token lives in a [`TokenStore`] that the
//! extension backs with shared memory: every backend and the worker use one
//! token, and the refresh budget is counted across all of them.

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::cancel::Cancel;
use crate::dc::Endpoints;
use crate::error::{Error, Result};
use crate::wire;

/// A string that never prints: client secrets, refresh and access tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The only way to read the value: grep for it when auditing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Clone, Debug)]
pub struct Credentials {
    pub client_id: String,
    pub client_secret: Secret,
    pub refresh_token: Secret,
}

impl Credentials {
    pub fn new(client_id: &str, client_secret: &str, refresh_token: &str) -> Credentials {
        Credentials {
            client_id: client_id.to_string(),
            client_secret: Secret::new(client_secret),
            refresh_token: Secret::new(refresh_token),
        }
    }

    /// A store key that identifies the whole credential without revealing
    /// it: a changed secret or refresh token must not reuse a token minted
    /// under the old one.
    pub fn store_key(&self, endpoints: &Endpoints) -> String {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.client_secret.expose().hash(&mut h);
        self.refresh_token.expose().hash(&mut h);
        format!("{}|{}|{:016x}", endpoints.accounts_url, self.client_id, h.finish())
    }
}

#[derive(Clone, Debug)]
pub struct AccessToken {
    pub token: Secret,
    pub obtained_at: SystemTime,
    pub expires_at: SystemTime,
    /// The authoritative API host for this org (zoho-api.md §1).
    pub api_domain: Option<String>,
}

impl AccessToken {
    /// Refresh ahead of expiry: 5 minutes early for Zoho's 1-hour tokens,
    /// proportionally earlier-but-not-sooner for short-lived ones.
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        let lifetime = self.expires_at.duration_since(self.obtained_at).unwrap_or_default();
        let margin = (lifetime / 10).min(Duration::from_secs(300));
        now + margin < self.expires_at
    }
}

/// Zoho's refresh budget: 10 per rolling 10 minutes per refresh token.
#[derive(Clone, Debug, Default)]
pub struct RefreshBudget {
    recent: Vec<SystemTime>,
}

impl RefreshBudget {
    pub const LIMIT: usize = 10;
    pub const WINDOW: Duration = Duration::from_secs(600);

    /// Rebuilds a budget from stored refresh times (e.g. shared memory).
    pub fn from_times(times: impl IntoIterator<Item = SystemTime>) -> RefreshBudget {
        RefreshBudget { recent: times.into_iter().collect() }
    }

    /// The refresh times still inside the window, at most [`Self::LIMIT`].
    pub fn times(&self) -> &[SystemTime] {
        &self.recent
    }

    /// Records a refresh at `now`, or says how long until one is allowed.
    pub fn claim(&mut self, now: SystemTime) -> std::result::Result<(), Duration> {
        self.recent.retain(|t| now.duration_since(*t).map(|age| age < Self::WINDOW).unwrap_or(true));
        if self.recent.len() >= Self::LIMIT {
            let oldest = *self.recent.iter().min().expect("non-empty");
            let wait = (oldest + Self::WINDOW).duration_since(now).unwrap_or_default();
            return Err(wait.max(Duration::from_secs(1)));
        }
        self.recent.push(now);
        Ok(())
    }
}

/// Where access tokens and the refresh budget live. Implementations must be
/// safe to share between threads; the extension's is shared between
/// processes too.
pub trait TokenStore: Send + Sync {
    fn get(&self, key: &str) -> Option<AccessToken>;
    fn put(&self, key: &str, token: &AccessToken);
    /// Forgets `token` if it is still the one cached under `key` (another
    /// process may already have replaced it).
    fn discard(&self, key: &str, token: &Secret);
    /// Claims one refresh from the budget of `key`.
    fn claim_refresh(&self, key: &str, now: SystemTime) -> std::result::Result<(), Duration>;
    /// The `zgid` of the credential's org, once any client read it: it
    /// never changes, and every bulk upload needs it.
    fn org_zgid(&self, _key: &str) -> Option<String> {
        None
    }
    fn put_org_zgid(&self, _key: &str, _zgid: &str) {}
}

/// A per-process store: enough for tools, tests and a single backend.
#[derive(Default)]
pub struct MemoryTokenStore {
    inner: Mutex<HashMap<String, (Option<AccessToken>, RefreshBudget)>>,
    zgids: Mutex<HashMap<String, String>>,
}

impl TokenStore for MemoryTokenStore {
    fn get(&self, key: &str) -> Option<AccessToken> {
        self.inner.lock().unwrap().get(key).and_then(|(t, _)| t.clone())
    }

    fn put(&self, key: &str, token: &AccessToken) {
        self.inner.lock().unwrap().entry(key.to_string()).or_default().0 = Some(token.clone());
    }

    fn discard(&self, key: &str, token: &Secret) {
        if let Some((slot, _)) = self.inner.lock().unwrap().get_mut(key) {
            if slot.as_ref().is_some_and(|t| &t.token == token) {
                *slot = None;
            }
        }
    }

    fn claim_refresh(&self, key: &str, now: SystemTime) -> std::result::Result<(), Duration> {
        self.inner.lock().unwrap().entry(key.to_string()).or_default().1.claim(now)
    }

    fn org_zgid(&self, key: &str) -> Option<String> {
        self.zgids.lock().unwrap().get(key).cloned()
    }

    fn put_org_zgid(&self, key: &str, zgid: &str) {
        self.zgids.lock().unwrap().insert(key.to_string(), zgid.to_string());
    }
}

/// What the accounts server answers, success or refusal (both on HTTP
/// 200). `scope` and `token_type` may come or not; a refresh carries no new
/// refresh token.
#[derive(Deserialize, Serialize)]
pub struct TokenResponse {
    #[serde(default, deserialize_with = "wire::opt", skip_serializing)]
    pub access_token: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_num")]
    pub expires_in: Option<u64>,
    /// When present, `expires_in` is in milliseconds (older responses).
    #[serde(default, deserialize_with = "wire::opt_num")]
    pub expires_in_sec: Option<u64>,
    #[serde(default, deserialize_with = "wire::opt")]
    pub api_domain: Option<String>,
    #[serde(default, deserialize_with = "wire::opt")]
    pub scope: Option<String>,
    #[serde(default, deserialize_with = "wire::opt")]
    pub error: Option<String>,
    #[serde(default, deserialize_with = "wire::opt")]
    pub error_description: Option<String>,
}

impl TokenResponse {
    /// How long the token lives.
    pub fn lifetime(&self) -> Duration {
        match (self.expires_in, self.expires_in_sec) {
            (_, Some(secs)) => Duration::from_secs(secs),
            (Some(ms), None) if ms > 100_000 => Duration::from_millis(ms),
            (Some(secs), None) => Duration::from_secs(secs),
            (None, None) => Duration::from_secs(3600),
        }
    }
}

/// Hands out access tokens, refreshing through the store's budget.
pub struct TokenManager {
    credentials: Credentials,
    token_url: String,
    key: String,
    store: Arc<dyn TokenStore>,
    http: reqwest::Client,
    timeout: Duration,
    /// One refresh at a time within this process.
    refreshing: tokio::sync::Mutex<()>,
    /// How long a refresh may wait for Zoho's 10-in-10-minutes window, and
    /// who is told about the wait.
    max_wait: Duration,
    on_wait: Option<Arc<dyn Fn(&str) + Send + Sync>>,
}

impl TokenManager {
    pub fn new(credentials: Credentials, endpoints: &Endpoints, store: Arc<dyn TokenStore>, key: Option<String>, http: reqwest::Client, timeout: Duration) -> TokenManager {
        TokenManager::waiting(credentials, endpoints, store, key, http, timeout, Duration::ZERO, None)
    }

    /// As [`TokenManager::new`], waiting up to `max_wait` for the refresh
    /// window when it is full (cancel and statement_timeout still apply).
    #[allow(clippy::too_many_arguments)]
    pub fn waiting(
        credentials: Credentials,
        endpoints: &Endpoints,
        store: Arc<dyn TokenStore>,
        key: Option<String>,
        http: reqwest::Client,
        timeout: Duration,
        max_wait: Duration,
        on_wait: Option<Arc<dyn Fn(&str) + Send + Sync>>,
    ) -> TokenManager {
        TokenManager {
            key: key.unwrap_or_else(|| credentials.store_key(endpoints)),
            token_url: endpoints.token_url(),
            credentials,
            store,
            http,
            timeout,
            refreshing: tokio::sync::Mutex::new(()),
            max_wait,
            on_wait,
        }
    }

    /// A token that is good for a while yet.
    pub async fn token(&self, cancel: &Cancel) -> Result<AccessToken> {
        if let Some(t) = self.store.get(&self.key).filter(|t| t.is_fresh(SystemTime::now())) {
            return Ok(t);
        }
        let _guard = cancel.run("oauth/token", self.timeout, self.refreshing.lock()).await?;
        // Someone else may have refreshed while we waited.
        if let Some(t) = self.store.get(&self.key).filter(|t| t.is_fresh(SystemTime::now())) {
            return Ok(t);
        }
        match self.refresh(cancel).await {
            // Zoho's window is full: wait for it to open rather than fail.
            Err(Error::RefreshRateLimited { retry_after }) if retry_after <= self.max_wait => {
                if let Some(hook) = &self.on_wait {
                    hook(&format!("waiting {}s for Zoho's token refresh window (10 refreshes in 10 minutes)", retry_after.as_secs().max(1)));
                }
                cancel.sleep(retry_after).await?;
                if let Some(t) = self.store.get(&self.key).filter(|t| t.is_fresh(SystemTime::now())) {
                    return Ok(t);
                }
                self.refresh(cancel).await
            }
            other => other,
        }
    }

    /// Called after Zoho said INVALID_TOKEN for `token`.
    pub fn discard(&self, token: &Secret) {
        self.store.discard(&self.key, token);
    }

    /// The org's `zgid` as the store has it for this credential.
    pub fn org_zgid(&self) -> Option<String> {
        self.store.org_zgid(&self.key)
    }

    pub fn put_org_zgid(&self, zgid: &str) {
        self.store.put_org_zgid(&self.key, zgid);
    }

    async fn refresh(&self, cancel: &Cancel) -> Result<AccessToken> {
        let now = SystemTime::now();
        self.store
            .claim_refresh(&self.key, now)
            .map_err(|retry_after| Error::RefreshRateLimited { retry_after })?;
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", self.credentials.client_id.as_str()),
            ("client_secret", self.credentials.client_secret.expose()),
            ("refresh_token", self.credentials.refresh_token.expose()),
        ];
        let endpoint = "oauth/token";
        let send = self.http.post(&self.token_url).form(&form).send();
        let resp = cancel.run(endpoint, self.timeout, send).await?.map_err(|e| Error::transport(endpoint, e))?;
        let status = resp.status().as_u16();
        let body = cancel.run(endpoint, self.timeout, resp.bytes()).await?.map_err(|e| Error::transport(endpoint, e))?;
        if status >= 500 || status == 429 {
            return Err(Error::Api {
                endpoint: endpoint.into(),
                status,
                code: "ACCOUNTS_UNAVAILABLE".into(),
                message: "Zoho accounts server is unavailable".into(),
                details: serde_json::Value::Null,
            });
        }
        // Zoho reports token errors with HTTP 200: decide by the body.
        let parsed: TokenResponse = wire::parse(endpoint, &body)?;
        let lifetime = parsed.lifetime();
        let Some(access) = parsed.access_token else {
            let code = parsed.error.unwrap_or_else(|| format!("HTTP {status} without access_token"));
            return Err(Error::Auth { hint: auth_hint(&code, parsed.error_description.as_deref()), code });
        };
        let token = AccessToken {
            token: Secret::new(access),
            obtained_at: now,
            expires_at: now + lifetime,
            api_domain: parsed.api_domain,
        };
        self.store.put(&self.key, &token);
        Ok(token)
    }
}

fn auth_hint(code: &str, description: Option<&str>) -> Option<String> {
    let hint = match code {
        "invalid_client" => "Check client_id and client_secret, and that the client belongs to this data centre.",
        "invalid_code" => "The refresh token is invalid or revoked: generate a new one from a self client.",
        "invalid_client_secret" => "Check client_secret.",
        _ if description.is_some_and(|d| d.contains("too many requests")) => {
            "Zoho allows 10 token requests per 10 minutes; wait and retry."
        }
        _ => return description.map(str::to_string),
    };
    Some(hint.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_format() {
        let c = Credentials::new("id", "s3cret", "1000.refresh");
        let shown = format!("{c:?} {}", c.client_secret);
        assert!(!shown.contains("s3cret") && !shown.contains("1000.refresh"), "{shown}");
        let e = Endpoints::custom("http://a", "http://b", None).unwrap();
        let key = c.store_key(&e);
        assert!(!key.contains("1000.refresh") && !key.contains("s3cret"), "{key}");
        assert_ne!(key, Credentials::new("id", "other", "1000.refresh").store_key(&e), "a new secret is a new credential");
    }

    #[test]
    fn budget_allows_ten_per_ten_minutes() {
        let mut b = RefreshBudget::default();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        for i in 0..10 {
            b.claim(t0 + Duration::from_secs(i)).unwrap();
        }
        let wait = b.claim(t0 + Duration::from_secs(60)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(540));
        // The first claim ages out after ten minutes.
        b.claim(t0 + Duration::from_secs(600)).unwrap();
        assert!(b.claim(t0 + Duration::from_secs(600)).is_err());
    }

    #[test]
    fn freshness_margin() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let hour = AccessToken { token: Secret::new("t"), obtained_at: t0, expires_at: t0 + Duration::from_secs(3600), api_domain: None };
        assert!(hour.is_fresh(t0 + Duration::from_secs(3000)));
        assert!(!hour.is_fresh(t0 + Duration::from_secs(3301)));
        let short = AccessToken { expires_at: t0 + Duration::from_secs(10), ..hour };
        assert!(short.is_fresh(t0 + Duration::from_secs(8)));
        assert!(!short.is_fresh(t0 + Duration::from_secs(9)));
    }

    #[test]
    fn store_discards_only_the_stale_token() {
        let s = MemoryTokenStore::default();
        let t0 = SystemTime::now();
        let tok = |v: &str| AccessToken { token: Secret::new(v), obtained_at: t0, expires_at: t0 + Duration::from_secs(60), api_domain: None };
        s.put("k", &tok("new"));
        s.discard("k", &Secret::new("old"));
        assert!(s.get("k").is_some());
        s.discard("k", &Secret::new("new"));
        assert!(s.get("k").is_none());
    }
}
