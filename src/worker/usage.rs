//! The worker's share of usage accounting: it writes what every backend
//! counted in shared memory ([`crate::usage`]) to `zoho.api_usage_log`,
//! and tells scheduled work whether a server's `daily_credit_budget` is
//! reached.

use std::time::{Duration, Instant};

use pgrx::prelude::*;

use super::in_transaction;
use crate::error::ZohoFdwError;
use crate::usage;

const FLUSH_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Flusher {
    flushed: Option<Instant>,
    failing: super::WarnOnce,
    /// Servers whose daily_credit_budget was reached at the last flush.
    held: std::collections::BTreeSet<String>,
}

impl Flusher {
    /// Tells `LISTEN zoho_fdw_events` when a server's budget is reached
    /// (its scheduled work waits) and when it is not any more.
    fn announce_budgets(&mut self) {
        let now: Result<std::collections::BTreeSet<String>, String> = super::in_transaction(|| {
            Spi::connect(|spi| {
                spi.select("SELECT server::text FROM zoho.credit_budget WHERE reached", None, &[])?
                    .map(|r| r.get::<String>(1).map(Option::unwrap_or_default))
                    .collect::<Result<std::collections::BTreeSet<String>, _>>()
            })
            .map_err(ZohoFdwError::from)
        });
        let Ok(now) = now else { return };
        for (event, servers) in [("budget_reached", now.difference(&self.held)), ("budget_cleared", self.held.difference(&now))] {
            for server in servers {
                let _ = super::in_transaction(|| super::supervise::announce(event, "server", server, serde_json::json!({})));
            }
        }
        self.held = now;
    }

    pub fn run_due(&mut self) {
        if self.flushed.is_some_and(|t| t.elapsed() < FLUSH_EVERY) {
            return;
        }
        self.flush();
    }

    /// Adds the counters to the log; on failure they go back to shared
    /// memory (and the failure is said once).
    pub fn flush(&mut self) {
        self.flushed = Some(Instant::now());
        self.announce_budgets();
        match flush() {
            Ok(()) => self.failing.ok(),
            Err(e) => self.failing.warn("cannot record API usage (kept for the next try)", e),
        }
    }
}

fn flush() -> Result<(), String> {
    let pending = usage::drain();
    if pending.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&usage::Pending) -> u64| pending.iter().map(|p| f(p) as i64).collect::<Vec<i64>>();
    let written = in_transaction(|| {
        Spi::run_with_args(
            "INSERT INTO zoho.api_usage_log AS l (hour, server, endpoint, calls, credits, retries, errors)
             SELECT date_trunc('hour', now()), u.* FROM unnest($1::name[], $2::text[], $3::int8[], $4::int8[], $5::int8[], $6::int8[]) u
             ON CONFLICT (hour, server, endpoint) DO UPDATE
               SET calls = l.calls + EXCLUDED.calls, credits = l.credits + EXCLUDED.credits,
                   retries = l.retries + EXCLUDED.retries, errors = l.errors + EXCLUDED.errors",
            &[
                pending.iter().map(|p| p.server.clone()).collect::<Vec<String>>().into(),
                pending.iter().map(|p| p.endpoint.clone()).collect::<Vec<String>>().into(),
                column(|p| p.usage.calls).into(),
                column(|p| p.usage.credits).into(),
                column(|p| p.usage.retries).into(),
                column(|p| p.usage.errors).into(),
            ],
        )
        .map_err(ZohoFdwError::from)
    });
    if written.is_err() {
        usage::restore(&pending);
    }
    written
}

/// Why scheduled work on `server` (None: the only server) must wait, if
/// its budget is reached (as of the last flush).
pub fn budget_hold(server: Option<&str>) -> Result<Option<String>, ZohoFdwError> {
    Spi::get_one_with_args::<String>("SELECT zoho.budget_hold($1)", &[server.into()]).map_err(ZohoFdwError::from)
}
