//! The transport every endpoint goes through: auth header, timeouts,
//! concurrency limits, retries with backoff and jitter, cancel checks,
//! error envelopes and usage counters. Nothing else in the crate talks HTTP.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::auth::{TokenManager, TokenStore};
use crate::cancel::Cancel;
use crate::dc::Endpoints;
use crate::error::{Error, Result};
use crate::usage::{Usage, UsageSink};
use crate::Credentials;

/// The one endpoint under Zoho's 10-downloads-a-minute window.
const DOWNLOAD_ENDPOINT: &str = "bulk_read.download";

/// Bounded exponential backoff with jitter.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, including the first.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// The pause before attempt `attempt + 1`: half fixed, half random, so
    /// that many clients throttled together do not come back together.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(1u32 << attempt.min(16)).min(self.max_delay);
        let half = exp / 2;
        half + rand::thread_rng().gen_range(Duration::ZERO..=half)
    }
}

/// How long and how often to poll asynchronous bulk jobs.
#[derive(Debug, Clone)]
pub struct PollPolicy {
    pub initial: Duration,
    pub max_interval: Duration,
    /// Give up on a job after this long.
    pub timeout: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            initial: Duration::from_millis(100),
            max_interval: Duration::from_secs(30),
            timeout: Duration::from_secs(6 * 3600),
        }
    }
}

#[derive(Clone)]
pub struct ClientConfig {
    pub endpoints: Endpoints,
    /// Path segment of the API version, `v8`.
    pub api_version: String,
    /// Use the `api_domain` the token response names (right for real DCs,
    /// wrong when endpoints were overridden on purpose).
    pub prefer_token_api_domain: bool,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// Bulk result downloads can be large; they get their own limit.
    pub download_timeout: Duration,
    pub retry: RetryPolicy,
    pub poll: PollPolicy,
    /// Calls in flight at once (the edition's concurrency limit).
    pub max_concurrency: usize,
    /// Calls Zoho counts under its sub-concurrency limit of 10.
    pub sub_concurrency: usize,
    pub token_store: Option<Arc<dyn TokenStore>>,
    /// Key of this credential in the token store (default: derived from it).
    pub token_key: Option<String>,
    pub cancel: Cancel,
    /// Also count every call here (see [`UsageSink`]).
    pub usage_sink: Option<Arc<dyn UsageSink>>,
    /// Zoho's bulk-read download window: this many a window, no more.
    pub downloads_per_window: usize,
    pub download_window: Duration,
    /// Told when the client waits for one of Zoho's windows to open (the
    /// extension turns it into a NOTICE).
    pub on_wait: Option<Arc<dyn Fn(&str) + Send + Sync>>,
    /// The longest wait for the token refresh window (10 in 10 minutes)
    /// before failing with `RefreshRateLimited`.
    pub max_refresh_wait: Duration,
    /// Where bulk jobs may announce their end instead of being polled.
    pub job_callbacks: Option<Arc<dyn crate::job_wait::JobCallbacks>>,
}

impl ClientConfig {
    pub fn new(endpoints: Endpoints) -> ClientConfig {
        ClientConfig {
            endpoints,
            api_version: "v8".into(),
            prefer_token_api_domain: false,
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            download_timeout: Duration::from_secs(1800),
            retry: RetryPolicy::default(),
            poll: PollPolicy::default(),
            max_concurrency: 10,
            sub_concurrency: 10,
            token_store: None,
            token_key: None,
            cancel: Cancel::never(),
            usage_sink: None,
            downloads_per_window: 10,
            download_window: Duration::from_secs(60),
            on_wait: None,
            max_refresh_wait: Duration::from_secs(600),
            job_callbacks: None,
        }
    }
}

/// Which of Zoho's concurrency pools a call counts against (zoho-api.md §12.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    Normal,
    /// COQL, sorted/cvid lists, writes of more than 10 records.
    Sub,
}

#[derive(Debug, Clone)]
pub enum Target {
    /// A path on the API domain, e.g. `/crm/v8/Leads`.
    Api(String),
    /// A path on the upload host.
    Upload(String),
    /// A full URL (bulk-write result links) or a path (then on the API domain).
    Link(String),
}

#[derive(Debug, Clone)]
pub enum Body {
    None,
    Json(Value),
    /// JSON already serialized (a push's records, written once without
    /// building a `Value` per record).
    JsonText(bytes::Bytes),
    /// A multipart upload of a file on disk, field `file`.
    File { path: PathBuf, file_name: String },
}

#[derive(Debug, Clone)]
pub struct Call {
    /// Label for counters and errors, e.g. `records.list`.
    pub endpoint: &'static str,
    pub method: Method,
    pub target: Target,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
    pub credits: u32,
    pub pool: Pool,
    /// Multi-record writes answer 207/400/202 with a result per record in
    /// `data[]` (or `watch[]`): those replies are results, not call errors.
    pub per_record: bool,
    /// Sending it twice does no harm (reads, updates, upserts, deletes).
    /// A call that creates something is sent again only when it surely did
    /// not reach Zoho.
    pub idempotent: bool,
}

impl Call {
    pub fn new(endpoint: &'static str, method: Method, target: Target) -> Call {
        Call {
            endpoint,
            method,
            target,
            query: Vec::new(),
            headers: Vec::new(),
            body: Body::None,
            credits: 1,
            pool: Pool::Normal,
            per_record: false,
            idempotent: true,
        }
    }

    /// Marks a call that creates something (records, jobs, channels).
    pub fn creates(mut self) -> Call {
        self.idempotent = false;
        self
    }

    pub fn per_record(mut self) -> Call {
        self.per_record = true;
        self
    }

    pub fn query(mut self, k: &str, v: impl ToString) -> Call {
        self.query.push((k.to_string(), v.to_string()));
        self
    }

    pub fn header(mut self, k: &'static str, v: impl Into<String>) -> Call {
        self.headers.push((k, v.into()));
        self
    }

    pub fn json(mut self, v: Value) -> Call {
        self.body = Body::Json(v);
        self
    }

    pub fn json_text(mut self, b: bytes::Bytes) -> Call {
        self.body = Body::JsonText(b);
        self
    }

    pub fn credits(mut self, c: u32) -> Call {
        self.credits = c;
        self
    }

    pub fn pool(mut self, p: Pool) -> Call {
        self.pool = p;
        self
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// 204 and 304 carry no body: "nothing" rather than an empty list.
    pub fn is_empty(&self) -> bool {
        self.status == 204 || self.status == 304 || self.body.iter().all(u8::is_ascii_whitespace)
    }

    /// The body as `T`, by the crate's one tolerance rule ([`crate::wire`]).
    pub fn json<T: DeserializeOwned>(&self, endpoint: &str) -> Result<T> {
        crate::wire::parse(endpoint, &self.body)
    }
}

pub struct Transport {
    pub(crate) config: ClientConfig,
    /// When the last bulk-read downloads started, for Zoho's window.
    downloads: std::sync::Mutex<std::collections::VecDeque<tokio::time::Instant>>,
    /// Zoho's clock minus this host's, in milliseconds, from the `Date`
    /// header of the last reply (`i64::MIN`: none seen yet).
    clock_offset_ms: std::sync::atomic::AtomicI64,
    http: reqwest::Client,
    tokens: TokenManager,
    normal: Semaphore,
    sub: Semaphore,
    pub(crate) usage: Usage,
}

impl Transport {
    pub fn new(config: ClientConfig, credentials: Credentials) -> Result<Transport> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("zoho_fdw/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::transport("client", e))?;
        let store = config.token_store.clone().unwrap_or_else(|| Arc::new(crate::auth::MemoryTokenStore::default()));
        let tokens = TokenManager::waiting(
            credentials,
            &config.endpoints,
            store,
            config.token_key.clone(),
            http.clone(),
            config.request_timeout,
            config.max_refresh_wait,
            config.on_wait.clone(),
        );
        Ok(Transport {
            normal: Semaphore::new(config.max_concurrency.max(1)),
            sub: Semaphore::new(config.sub_concurrency.clamp(1, 10)),
            http,
            tokens,
            usage: Usage::with_sink(config.usage_sink.clone()),
            downloads: std::sync::Mutex::new(std::collections::VecDeque::new()),
            clock_offset_ms: std::sync::atomic::AtomicI64::new(i64::MIN),
            config,
        })
    }

    pub fn tokens(&self) -> &TokenManager {
        &self.tokens
    }

    pub fn cancel(&self) -> &Cancel {
        &self.config.cancel
    }

    /// How far Zoho's clock is ahead of this host's (behind when negative),
    /// as its last reply's `Date` header said; whole seconds, so within one.
    pub fn clock_offset(&self) -> Option<chrono::Duration> {
        match self.clock_offset_ms.load(std::sync::atomic::Ordering::Relaxed) {
            i64::MIN => None,
            ms => Some(chrono::Duration::milliseconds(ms)),
        }
    }

    /// This host's `at` on Zoho's clock, less `overlap`: a point every change
    /// Zoho made before `at` (by its own clock) comes after, even if the two
    /// clocks disagree.
    pub fn zoho_time(&self, at: chrono::DateTime<chrono::Utc>, overlap: chrono::Duration) -> chrono::DateTime<chrono::Utc> {
        at + self.clock_offset().unwrap_or_else(chrono::Duration::zero) - overlap
    }

    /// Sends `call`, retrying what is worth retrying, and returns a 2xx/304 reply.
    pub async fn send(&self, call: &Call) -> Result<Reply> {
        self.with_retries(call, |c| async move {
            self.attempt(c).await?.read(self, c.endpoint).await
        })
        .await
    }

    /// Sends `call` and parses its JSON body; `None` for 204/304. A body that
    /// does not parse is an error at once: asking again returns the same.
    pub async fn send_json<T: DeserializeOwned>(&self, call: &Call) -> Result<Option<T>> {
        self.with_retries(call, |c| async move {
            let reply = self.attempt(c).await?.read(self, c.endpoint).await?;
            if reply.is_empty() {
                return Ok(None);
            }
            reply.json(c.endpoint).map(Some)
        })
        .await
    }

    /// Streams the body of `call` into `file` (rewritten on each attempt)
    /// and returns the number of bytes written.
    pub async fn download(&self, call: &Call, file: &std::fs::File) -> Result<u64> {
        if call.endpoint == DOWNLOAD_ENDPOINT {
            self.download_slot().await?;
        }
        self.with_retries(call, |c| async move {
            let Outcome::Unread(mut resp, _permits) = self.attempt(c).await? else {
                return Err(Error::malformed(c.endpoint, "expected a file, got per-record results"));
            };
            let stream = async {
                let mut out = file;
                out.set_len(0)?;
                std::io::Seek::rewind(&mut out)?;
                let mut written = 0u64;
                while let Some(chunk) = resp.chunk().await.map_err(|e| Error::transport(c.endpoint, e))? {
                    out.write_all(&chunk)?;
                    written += chunk.len() as u64;
                }
                out.flush()?;
                Ok::<_, Error>(written)
            };
            self.config.cancel.run(c.endpoint, self.config.download_timeout, stream).await?
        })
        .await
    }

    /// Waits, if need be, until Zoho's download window has room, and takes
    /// a place in it: waiting is cheaper than a 429 that closes the window.
    async fn download_slot(&self) -> Result<()> {
        let (limit, per) = (self.config.downloads_per_window.max(1), self.config.download_window);
        loop {
            let wait = {
                let mut used = self.downloads.lock().unwrap();
                let now = tokio::time::Instant::now();
                while used.front().is_some_and(|t| now.duration_since(*t) >= per) {
                    used.pop_front();
                }
                if used.len() < limit {
                    used.push_back(now);
                    return Ok(());
                }
                per - now.duration_since(*used.front().expect("full"))
            };
            self.waiting(&format!("waiting {}s for Zoho's bulk download window ({limit} a {}s)", wait.as_secs().max(1), per.as_secs()));
            self.config.cancel.sleep(wait).await?;
        }
    }

    fn waiting(&self, what: &str) {
        if let Some(hook) = &self.config.on_wait {
            hook(what);
        }
    }

    async fn with_retries<'s, T, F, Fut>(&'s self, call: &'s Call, mut f: F) -> Result<T>
    where
        F: FnMut(&'s Call) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let cancel = &self.config.cancel;
        let mut token_retried = false;
        let mut windows_waited = 0u32;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let result = f(call).await;
            // Any answer from Zoho, an error included, means it is up.
            let answered = match &result {
                Ok(_) => true,
                Err(e) => !e.is_transient() || e.http_status() == Some(429),
            };
            if answered {
                self.set_unreachable(false);
            }
            match result {
                Ok(v) => {
                    self.usage.call(call.endpoint, call.credits);
                    return Ok(v);
                }
                Err(Error::Api { ref code, status: 401, .. }) if code == "INVALID_TOKEN" && !token_retried => {
                    // The cached token was revoked or expired early: refresh once.
                    token_retried = true;
                    self.usage.retry(call.endpoint);
                    attempt -= 1;
                }
                // Downloads used elsewhere filled Zoho's window: a 429 closes
                // it for the rest of the minute, so wait a window, not seconds.
                Err(e) if call.endpoint == DOWNLOAD_ENDPOINT && e.http_status() == Some(429) && windows_waited < 2 => {
                    windows_waited += 1;
                    self.usage.retry(call.endpoint);
                    let per = self.config.download_window;
                    self.waiting(&format!("Zoho's bulk download window is full; waiting {}s for it to open", per.as_secs()));
                    cancel.sleep(per).await?;
                    attempt -= 1;
                }
                Err(e) if !call.idempotent && e.may_have_reached_zoho() => {
                    self.usage.error(call.endpoint);
                    return Err(Error::OutcomeUnknown { endpoint: call.endpoint.to_string(), reason: e.to_string() });
                }
                Err(e) if e.is_transient() && !self.out_of_credits(&e) && attempt < self.config.retry.max_attempts && (answered || !self.is_unreachable()) => {
                    self.usage.retry(call.endpoint);
                    cancel.sleep(self.config.retry.delay(attempt - 1)).await?;
                }
                Err(e) => {
                    if !answered {
                        self.set_unreachable(true);
                    }
                    self.usage.error(call.endpoint);
                    return Err(if attempt > 1 && e.is_transient() {
                        Error::RetriesExhausted {
                            endpoint: call.endpoint.to_string(),
                            attempts: attempt,
                            last: Box::new(e),
                        }
                    } else {
                        e
                    });
                }
            }
        }
    }

    fn url(&self, endpoint: &str, target: &Target, api_domain: &str) -> Result<String> {
        Ok(match target {
            Target::Api(path) => format!("{api_domain}{path}"),
            Target::Upload(path) => format!("{}{path}", self.config.endpoints.upload_url),
            Target::Link(link) if link.starts_with("http://") || link.starts_with("https://") => {
                if !self.config.endpoints.trusts(link) {
                    let host = url::Url::parse(link).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
                    return Err(Error::malformed(endpoint, format!("a link points to {host}, which is not a host of this server's data centre: the access token is not sent there")));
                }
                link.clone()
            }
            Target::Link(path) => format!("{api_domain}/{}", path.trim_start_matches('/')),
        })
    }

    /// One try: auth header, limits, timeout. Returns the response with its
    /// body unread when the status is 2xx/304, else Zoho's error.
    async fn attempt(&self, call: &Call) -> Result<Outcome<'_>> {
        let cancel = &self.config.cancel;
        let timeout = self.config.request_timeout;
        // Zoho counts a call in flight until its body is read: the permits
        // travel with the unread response.
        let normal = cancel.run(call.endpoint, timeout, self.normal.acquire()).await?.expect("semaphore never closed");
        let sub = match call.pool {
            Pool::Sub => Some(cancel.run(call.endpoint, timeout, self.sub.acquire()).await?.expect("semaphore never closed")),
            Pool::Normal => None,
        };
        let token = self.tokens.token(cancel).await?;
        // The token response names the API host; one outside the data
        // centre is not believed.
        let api_domain = match (&token.api_domain, self.config.prefer_token_api_domain) {
            (Some(d), true) if self.config.endpoints.trusts(d) => d.trim_end_matches('/').to_string(),
            _ => self.config.endpoints.api_domain.clone(),
        };
        let url = self.url(call.endpoint, &call.target, &api_domain)?;
        let mut req = self
            .http
            .request(call.method.clone(), url)
            .header("Authorization", format!("Zoho-oauthtoken {}", token.token.expose()))
            .query(&call.query);
        for (k, v) in &call.headers {
            req = req.header(*k, v);
        }
        req = match &call.body {
            Body::None => req,
            Body::Json(v) => req.json(v),
            Body::JsonText(b) => req.header(reqwest::header::CONTENT_TYPE, "application/json").body(b.clone()),
            Body::File { path, file_name } => {
                let bytes = tokio::fs::read(path).await?;
                let part = reqwest::multipart::Part::bytes(bytes)
                    .file_name(file_name.clone())
                    .mime_str("application/zip")
                    .expect("static mime");
                req.multipart(reqwest::multipart::Form::new().part("file", part))
            }
        };
        let endpoint = call.endpoint;
        let resp = cancel.run(endpoint, timeout, req.send()).await?.map_err(|e| Error::transport(endpoint, e))?;
        if let Some(rem) = resp.headers().get("X-API-CREDITS-REMAINING").and_then(|v| v.to_str().ok()?.parse().ok()) {
            self.usage.set_remaining(rem);
        }
        if let Some(zoho) = resp.headers().get("date").and_then(|v| chrono::DateTime::parse_from_rfc2822(v.to_str().ok()?).ok()) {
            let offset = zoho.timestamp_millis() - chrono::Utc::now().timestamp_millis();
            self.clock_offset_ms.store(offset, std::sync::atomic::Ordering::Relaxed);
        }
        let status = resp.status().as_u16();
        if (200..300).contains(&status) || status == 304 {
            return Ok(Outcome::Unread(resp, (normal, sub)));
        }
        let reply = self.read(endpoint, resp).await?;
        if call.per_record && status < 500 && status != 429 && is_per_record_envelope(&reply) {
            return Ok(Outcome::Read(reply));
        }
        let err = api_error(endpoint, &reply);
        if matches!(&err, Error::Api { code, .. } if code == "INVALID_TOKEN") {
            self.tokens.discard(&token.token);
        }
        Err(err)
    }
}

impl Transport {
    /// A 429 once the daily credits are gone: retrying only burns time.
    /// Zoho's message is the same for throttling and exhaustion, so the
    /// `X-API-CREDITS-REMAINING` header decides.
    /// Takes Zoho as not answering until it does: for a new process that
    /// goes on with work that failed so (a job tried again after Zoho was
    /// down), whose first call should not be retried six times either.
    pub fn assume_unreachable(&self) {
        self.set_unreachable(true);
    }

    /// Zoho did not answer the last call that ran out of retries, and has
    /// not answered since.
    pub fn is_unreachable(&self) -> bool {
        unreachable_hosts().lock().is_ok_and(|h| h.get(&self.config.endpoints.api_domain).is_some_and(|at| at.elapsed() < UNREACHABLE_FOR))
    }

    fn set_unreachable(&self, down: bool) {
        let Ok(mut hosts) = unreachable_hosts().lock() else { return };
        if down {
            hosts.insert(self.config.endpoints.api_domain.clone(), std::time::Instant::now());
        } else if !hosts.is_empty() {
            hosts.remove(&self.config.endpoints.api_domain);
        }
    }

    fn out_of_credits(&self, e: &Error) -> bool {
        e.http_status() == Some(429) && self.usage.credits_remaining() == Some(0)
    }
}

/// API hosts whose last call that ran out of retries got no answer (a 5xx,
/// a timeout, no connection), and that have not answered since. Calls to
/// them are tried once: whoever calls (the worker's supervisor) is already
/// backing off, and six tries per attempt would multiply what an outage
/// costs. Per host, for every client of this process, with when Zoho last
/// failed to answer: after [`UNREACHABLE_FOR`] without a call (longer than
/// the worker's longest backoff), a call is retried as usual again.
fn unreachable_hosts() -> &'static std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>> {
    static HOSTS: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>> = std::sync::OnceLock::new();
    HOSTS.get_or_init(Default::default)
}

const UNREACHABLE_FOR: Duration = Duration::from_secs(15 * 60);

type Permits<'t> = (tokio::sync::SemaphorePermit<'t>, Option<tokio::sync::SemaphorePermit<'t>>);

enum Outcome<'t> {
    Unread(reqwest::Response, Permits<'t>),
    Read(Reply),
}

impl Outcome<'_> {
    async fn read(self, t: &Transport, endpoint: &str) -> Result<Reply> {
        match self {
            Outcome::Unread(resp, _permits) => t.read(endpoint, resp).await,
            Outcome::Read(reply) => Ok(reply),
        }
    }
}

fn is_per_record_envelope(reply: &Reply) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(&reply.body) else { return false };
    ["data", "watch"].iter().any(|k| {
        v.get(*k)
            .and_then(Value::as_array)
            .is_some_and(|items| !items.is_empty() && items.iter().all(|i| i.get("status").is_some()))
    })
}

impl Transport {
    /// Reads a whole (small) body within the request timeout.
    async fn read(&self, endpoint: &str, resp: reqwest::Response) -> Result<Reply> {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = self
            .config
            .cancel
            .run(endpoint, self.config.request_timeout, resp.bytes())
            .await?
            .map_err(|e| Error::transport(endpoint, e))?;
        Ok(Reply { status, headers, body })
    }
}

/// Zoho's error envelope `{code, details, message, status}`, or the best
/// description we can give of a body that is not one.
pub(crate) fn api_error(endpoint: &str, reply: &Reply) -> Error {
    #[derive(serde::Deserialize)]
    struct Envelope {
        code: Option<String>,
        message: Option<String>,
        #[serde(default)]
        details: Value,
    }
    let parsed: Option<Envelope> = serde_json::from_slice(&reply.body).ok();
    // Some endpoints wrap the error in a one-element `data` array.
    let parsed = parsed.filter(|e| e.code.is_some()).or_else(|| {
        let v: Value = serde_json::from_slice(&reply.body).ok()?;
        let first = v.get("data").or_else(|| v.get("watch"))?.get(0)?.clone();
        serde_json::from_value(first).ok()
    });
    match parsed {
        Some(Envelope { code: Some(code), message, details }) => Error::Api {
            endpoint: endpoint.to_string(),
            status: reply.status,
            code,
            message: message.unwrap_or_default(),
            details,
        },
        _ => Error::Api {
            endpoint: endpoint.to_string(),
            status: reply.status,
            code: format!("HTTP_{}", reply.status),
            message: String::from_utf8_lossy(&reply.body).chars().take(200).collect(),
            details: Value::Null,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_and_jittered() {
        let p = RetryPolicy { max_attempts: 10, base_delay: Duration::from_millis(100), max_delay: Duration::from_secs(2) };
        for attempt in 0..20 {
            let d = p.delay(attempt);
            let cap = (Duration::from_millis(100) * 2u32.pow(attempt.min(16))).min(Duration::from_secs(2));
            assert!(d >= cap / 2 && d <= cap, "attempt {attempt}: {d:?} vs cap {cap:?}");
        }
        let samples: std::collections::HashSet<_> = (0..20).map(|_| p.delay(5)).collect();
        assert!(samples.len() > 1, "no jitter");
    }

    #[test]
    fn error_envelopes() {
        let reply = |status, body: &str| Reply { status, headers: HeaderMap::new(), body: Bytes::from(body.to_string()) };
        let e = api_error("coql", &reply(400, r#"{"code":"SYNTAX_ERROR","details":{"near":"and"},"message":"error in query","status":"error"}"#));
        assert_eq!(e.zoho_code(), Some("SYNTAX_ERROR"));
        let e = api_error("records.insert", &reply(400, r#"{"data":[{"code":"LIMIT_EXCEEDED","details":{},"message":"too many","status":"error"}]}"#));
        assert_eq!(e.zoho_code(), Some("LIMIT_EXCEEDED"));
        let e = api_error("x", &reply(502, "<html>bad gateway</html>"));
        assert_eq!(e.zoho_code(), Some("HTTP_502"));
        assert!(e.is_transient());
    }
}
