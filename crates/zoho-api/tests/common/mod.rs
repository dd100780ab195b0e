//! Shared helpers: an in-process simulator and a client pointed at it with
//! fast retries and polls, so error paths run in milliseconds.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use zoho_api::http::{ClientConfig, PollPolicy, RetryPolicy};
use zoho_api::{Credentials, Endpoints, MemoryTokenStore, ZohoClient};
use zoho_sim::{Sim, SimConfig};

pub mod fixture;

pub async fn sim(cfg: SimConfig) -> Sim {
    Sim::start(cfg.bulk_step_ms(20)).await.expect("simulator starts")
}

pub fn config(sim: &Sim) -> ClientConfig {
    let url = sim.base_url();
    let mut c = ClientConfig::new(Endpoints::custom(&url, &url, None).unwrap());
    c.retry = RetryPolicy { max_attempts: 5, base_delay: Duration::from_millis(10), max_delay: Duration::from_millis(100) };
    c.poll = PollPolicy { initial: Duration::from_millis(10), max_interval: Duration::from_millis(50), timeout: Duration::from_secs(60) };
    c.request_timeout = Duration::from_secs(10);
    // Zoho's minute-long download window, shortened.
    c.download_window = Duration::from_millis(200);
    c.token_store = Some(Arc::new(MemoryTokenStore::default()));
    c
}

pub fn credentials() -> Credentials {
    Credentials::new("sim-client-id", "sim-client-secret", "sim-refresh-token")
}

pub fn client(sim: &Sim) -> ZohoClient {
    ZohoClient::new(config(sim), credentials()).unwrap()
}

pub fn calls_to(sim: &Sim, endpoint: &str) -> usize {
    sim.calls().iter().filter(|c| c.endpoint == endpoint).count()
}

pub fn rec(v: serde_json::Value) -> zoho_api::Record {
    v.as_object().expect("object").clone()
}
