//! zoho-sim: a Zoho CRM v8 simulator (see README.md for the contract).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let sim = zoho_sim::Sim::start(zoho_sim::SimConfig::default().seed("Leads", 500)).await?;
//! let url = sim.base_url();
//! sim.inject(zoho_sim::Fault::status(429, 3));
//! # Ok(()) }
//! ```

pub mod coql;
pub mod host;
pub mod schema;

mod admin;
mod calllog;
mod clock;
mod config;
mod credits;
mod errors;
mod faults;
mod limits;
mod middleware;
mod notify;
mod routes;
mod seed;
mod state;
mod values;
mod write;
mod ziputil;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{Map, Value};

pub use calllog::CallRecord;
pub use config::SimConfig;
pub use credits::{CreditSummary, EndpointUsage};
pub use faults::{Fault, FaultKind};
pub use middleware::MAX_CAPTURED_BODY;
pub use state::Delivery;

use state::App;

/// A running simulator. Dropping it stops the server.
pub struct Sim {
    app: Arc<App>,
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Sim {
    /// Starts a simulator on 127.0.0.1 (port 0 = ephemeral) inside the
    /// current Tokio runtime.
    pub async fn start(cfg: SimConfig) -> std::io::Result<Sim> {
        let tz = clock::parse_offset(&cfg.time_zone_offset)
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("bad time zone offset {:?}", cfg.time_zone_offset)))?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", cfg.port)).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().map_err(std::io::Error::other)?;
        let app = Arc::new(App {
            catalog: std::sync::RwLock::new(Arc::new(schema::catalog())),
            clock: clock::Clock::skewed(cfg.clock_skew_secs),
            tz,
            base_url: OnceLock::new(),
            st: Mutex::new(state::State::default()),
            calls: Mutex::new(Default::default()),
            faults: Mutex::new(Default::default()),
            credits: Mutex::new(credits::Credits::new(cfg.daily_credits)),
            limits: Default::default(),
            http,
            notify_tx: tx,
            started: std::time::Instant::now(),
            cfg,
        });
        let _ = app.base_url.set(format!("http://{addr}"));
        {
            let mut st = app.st();
            seed::seed_all(&app, &mut st);
        }
        tokio::spawn(notify::run_notifier(app.clone(), rx));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let router = routes::router(app.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stop_rx.await;
                })
                .await;
        });
        Ok(Sim { app, addr, shutdown: Some(stop_tx), runtime: None })
    }

    /// Starts a simulator on its own runtime, for tests that are not async.
    /// Must not be called from inside a Tokio runtime.
    pub fn start_blocking(cfg: SimConfig) -> std::io::Result<Sim> {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().thread_name("zoho-sim").build()?;
        let mut sim = rt.block_on(Sim::start(cfg))?;
        sim.runtime = Some(rt);
        Ok(sim)
    }

    /// `http://127.0.0.1:<port>`: the api_domain, accounts URL and upload host.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    pub fn config(&self) -> &SimConfig {
        &self.app.cfg
    }
    /// Every API call so far (admin calls are not logged).
    pub fn calls(&self) -> Vec<CallRecord> {
        admin::calls(&self.app)
    }
    pub fn clear_calls(&self) {
        admin::clear_calls(&self.app)
    }
    pub fn credits(&self) -> CreditSummary {
        admin::credits(&self.app)
    }
    /// Queues a fault for the next matching calls (or the next bulk job).
    pub fn inject(&self, fault: Fault) {
        admin::inject(&self.app, fault)
    }
    pub fn clear_faults(&self) {
        admin::clear_faults(&self.app)
    }
    /// All live records of a module, in id order, as the API shows them.
    pub fn records(&self, module: &str) -> Vec<Map<String, Value>> {
        admin::records(&self.app, module)
    }
    /// Creates a record as a UI user; fires notifications. Err is Zoho's
    /// per-record error object.
    pub fn ui_create(&self, module: &str, fields: Value) -> Result<String, Value> {
        admin::ui_create(&self.app, module, &fields)
    }
    pub fn ui_edit(&self, module: &str, id: &str, fields: Value) -> Result<(), Value> {
        admin::ui_edit(&self.app, module, id, &fields)
    }
    pub fn ui_delete(&self, module: &str, id: &str) -> Result<(), Value> {
        admin::ui_delete(&self.app, module, id)
    }
    /// An admin adds a field of `data_type` (Zoho's name: text, integer, …).
    pub fn add_field(&self, module: &str, api_name: &str, data_type: &str) -> Result<(), Value> {
        admin::add_field(&self.app, module, api_name, data_type)
    }
    /// An admin deletes a field, and its values with it.
    pub fn remove_field(&self, module: &str, api_name: &str) -> Result<(), Value> {
        admin::remove_field(&self.app, module, api_name)
    }
    /// An admin changes a field's type.
    pub fn retype_field(&self, module: &str, api_name: &str, data_type: &str) -> Result<(), Value> {
        admin::retype_field(&self.app, module, api_name, data_type)
    }
    /// Moves the simulator's clock forward.
    pub fn advance_clock(&self, d: Duration) {
        admin::advance_clock(&self.app, d)
    }
    /// Expires every access token now.
    pub fn expire_tokens(&self) {
        admin::expire_tokens(&self.app)
    }
    /// Live notification channels (as `GET /__sim/channels` lists them).
    pub fn channels(&self) -> Vec<Value> {
        admin::channels(&self.app)
    }
    /// Every notification callback queued so far, with its outcome
    /// (`status` / `error` both `None` while in flight).
    pub fn deliveries(&self) -> Vec<Delivery> {
        admin::deliveries(&self.app)
    }
    /// The org's zgid (the bulk-write `X-CRM-ORG` header).
    pub fn zgid(&self) -> String {
        self.app.cfg.zgid.clone()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
