//! Supervision of the worker's flows: a flow that fails waits longer before
//! each new attempt ([`delay`]: 2 s doubling to 10 minutes, with jitter),
//! says so in
//! the log once per doubling rather than once per attempt, and announces
//! `failing` and `recovered` on `NOTIFY zoho_fdw_events`, which a DBA can
//! LISTEN to. A success resets it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use pgrx::prelude::*;

use crate::error::ZohoFdwError;

/// The wait after the `n`th failure in a row: `zoho_fdw.failure_first_wait`
/// (2 s) doubling up to `zoho_fdw.failure_max_wait` (10 minutes), less up to
/// a quarter at random so that flows failing together spread out.
pub fn delay(n: u32) -> Duration {
    let ms = |g: &pgrx::guc::GucSetting<i32>| Duration::from_millis(g.get().max(1) as u64);
    let (first, max) = (ms(&crate::gucs::FAILURE_FIRST_WAIT), ms(&crate::gucs::FAILURE_MAX_WAIT));
    let base = first.saturating_mul(1 << n.saturating_sub(1).min(20)).min(max.max(first));
    base.mul_f64(1.0 - rand::random::<f64>() * 0.25)
}

/// What a failure or a recovery means for the flow's bookkeeping.
pub struct Failure {
    /// Failures in a row, this one included.
    pub count: u32,
    pub wait: Duration,
    /// Whether to write it to the log (1, 2, 4, 8, … in a row).
    pub log: bool,
}

/// The flows of one kind (channels, pulls, pushes), by their key.
#[derive(Default)]
pub struct Supervisor {
    failing: HashMap<i64, (u32, Instant)>,
}

impl Supervisor {
    /// Whether the flow may run now.
    pub fn ready(&self, key: i64) -> bool {
        self.failing.get(&key).is_none_or(|(_, next)| Instant::now() >= *next)
    }

    pub fn failed(&mut self, key: i64) -> Failure {
        let count = self.failing.get(&key).map_or(1, |(n, _)| n + 1);
        let wait = delay(count);
        self.failing.insert(key, (count, Instant::now() + wait));
        Failure { count, wait, log: count.is_power_of_two() }
    }

    /// Failures in a row so far (0: none).
    pub fn count(&self, key: i64) -> u32 {
        self.failing.get(&key).map_or(0, |(n, _)| *n)
    }

    /// Records a success; the failures in a row it ends (0: none).
    pub fn succeeded(&mut self, key: i64) -> u32 {
        self.failing.remove(&key).map_or(0, |(n, _)| n)
    }
}

/// Sends an event to `LISTEN zoho_fdw_events` when the current transaction
/// commits: `{"event", "flow", "target", …}` as JSON.
pub fn announce(event: &str, flow: &str, target: &str, extra: serde_json::Value) -> Result<(), ZohoFdwError> {
    let mut payload = serde_json::json!({"event": event, "flow": flow, "target": target});
    if let (Some(p), Some(x)) = (payload.as_object_mut(), extra.as_object()) {
        p.extend(x.clone());
    }
    // NOTIFY payloads stop at 8000 bytes: keep errors short.
    let mut text = payload.to_string();
    if text.len() > 7_900 {
        payload["error"] = serde_json::Value::String("(too long: see the flow's last_error)".into());
        text = payload.to_string();
    }
    Spi::run_with_args("SELECT pg_catalog.pg_notify('zoho_fdw_events', $1)", &[text.as_str().into()]).map_err(ZohoFdwError::from)
}

/// Announces a failure that starts a run of them, in its own transaction
/// with the flow's bookkeeping `record` (which writes last_error).
pub fn record_failure(f: &Failure, flow: &str, target: &str, error: &str, record: impl FnOnce() -> Result<(), ZohoFdwError>) {
    let _ = super::in_transaction(|| {
        record()?;
        if f.count == 1 {
            announce("failing", flow, target, serde_json::json!({"error": error}))?;
        }
        Ok(())
    });
}

/// Announces the end of a run of failures (`target` is named only then).
pub fn record_recovery(ended: u32, flow: &str, target: impl FnOnce() -> String) {
    if ended > 0 {
        let target = target();
        let _ = super::in_transaction(|| announce("recovered", flow, &target, serde_json::json!({"failures": ended})));
    }
}

/// A table's qualified name for logs and events (its oid once dropped),
/// read in a transaction of its own: call it between the worker's
/// transactions, never inside one.
pub fn table_name(rel: pg_sys::Oid) -> String {
    // regclass output with search_path = pg_catalog: schema-qualified,
    // quoted only where needed (`public.orders`).
    super::in_transaction(|| Spi::get_one_with_args::<String>("SELECT $1::pg_catalog.regclass::pg_catalog.text", &[rel.into()]).map_err(ZohoFdwError::from))
        .ok()
        .flatten()
        .unwrap_or_else(|| format!("oid {}", u32::from(rel)))
}
