//! Simulator configuration: what the CLI flags and the in-process builder set.

use std::collections::BTreeMap;

/// Everything that shapes one simulator instance. `Default` gives an empty
/// org (no seeded records) with Zoho's documented limits.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// TCP port on 127.0.0.1; 0 picks an ephemeral port.
    pub port: u16,
    /// Records to seed per module API name.
    pub seeds: BTreeMap<String, usize>,
    /// Seed of the deterministic generator behind seeded data.
    pub rng_seed: u64,
    /// Added to every data call while it holds its concurrency slot.
    pub latency_ms: u64,
    /// Calls in flight at once (Zoho: 5..25 by edition).
    pub concurrency: usize,
    /// The sub-concurrency pool (COQL, sorted lists, writes of > 10 records).
    pub sub_concurrency: usize,
    /// Credits per rolling 24 h window.
    pub daily_credits: u64,
    /// Rows per bulk-read job page.
    pub bulk_page_size: usize,
    /// Access-token lifetime in seconds.
    pub token_ttl_secs: u64,
    /// Delay between bulk job state transitions.
    pub bulk_step_ms: u64,
    /// The window of Zoho's 10 bulk-read downloads (a minute; shorter in tests).
    pub download_window_secs: u64,
    /// Zoho's clock against this host's, in seconds (negative: behind).
    pub clock_skew_secs: i64,
    /// Offset datetimes are rendered in (the API user's time zone).
    pub time_zone_offset: String,
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    /// The org's `zgid` (the bulk-write upload's `X-CRM-ORG` header).
    pub zgid: String,
    /// Keep each JSON response body (up to [`crate::MAX_CAPTURED_BODY`]
    /// bytes) in the call log's `response_body`. Off by default: it costs a
    /// copy of every answer.
    pub capture_bodies: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            port: 0,
            seeds: BTreeMap::new(),
            rng_seed: 42,
            latency_ms: 0,
            concurrency: 10,
            sub_concurrency: 10,
            daily_credits: 50_000,
            bulk_page_size: 200_000,
            token_ttl_secs: 3600,
            bulk_step_ms: 100,
            download_window_secs: 60,
            clock_skew_secs: 0,
            time_zone_offset: "+05:30".into(),
            client_id: "sim-client-id".into(),
            client_secret: "sim-client-secret".into(),
            refresh_token: "sim-refresh-token".into(),
            zgid: "60031234567".into(),
            capture_bodies: false,
        }
    }
}

impl SimConfig {
    pub fn seed(mut self, module: &str, n: usize) -> Self {
        self.seeds.insert(module.to_string(), n);
        self
    }
    pub fn rng_seed(mut self, s: u64) -> Self {
        self.rng_seed = s;
        self
    }
    pub fn latency_ms(mut self, ms: u64) -> Self {
        self.latency_ms = ms;
        self
    }
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }
    pub fn sub_concurrency(mut self, n: usize) -> Self {
        self.sub_concurrency = n;
        self
    }
    pub fn daily_credits(mut self, n: u64) -> Self {
        self.daily_credits = n;
        self
    }
    pub fn bulk_page_size(mut self, n: usize) -> Self {
        self.bulk_page_size = n.max(1);
        self
    }
    pub fn token_ttl_secs(mut self, n: u64) -> Self {
        self.token_ttl_secs = n;
        self
    }
    pub fn bulk_step_ms(mut self, ms: u64) -> Self {
        self.bulk_step_ms = ms;
        self
    }
    pub fn clock_skew_secs(mut self, secs: i64) -> Self {
        self.clock_skew_secs = secs;
        self
    }
    pub fn download_window_secs(mut self, secs: u64) -> Self {
        self.download_window_secs = secs;
        self
    }
    pub fn port(mut self, p: u16) -> Self {
        self.port = p;
        self
    }
    pub fn time_zone_offset(mut self, off: &str) -> Self {
        self.time_zone_offset = off.to_string();
        self
    }
    /// Record JSON response bodies in the call log (see `CallRecord::response_body`).
    pub fn capture_bodies(mut self, on: bool) -> Self {
        self.capture_bodies = on;
        self
    }
    pub fn credentials(mut self, client_id: &str, client_secret: &str, refresh_token: &str) -> Self {
        self.client_id = client_id.into();
        self.client_secret = client_secret.into();
        self.refresh_token = refresh_token.into();
        self
    }
}
