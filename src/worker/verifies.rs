//! Scheduled verification (zoho.verify_schedules): every `every`, the
//! target is compared with its module bucket by bucket ([`crate::verify`])
//! as its owner, in steps with no transaction open while Zoho is called,
//! and with `repair` what differs is fixed. A server whose
//! daily_credit_budget is reached gets no run until it is not. Differences
//! found are announced on `zoho_fdw_events` (`verify_differences`).

use std::time::{Duration, Instant};

use pgrx::prelude::*;

use super::supervise::{self, Supervisor};
use super::usage::{budget_hold, Flusher};
use super::{in_transaction, spi, OwnTransactions, WarnOnce};
use crate::error::ZohoFdwError;
use crate::privileges::Access;
use crate::verify::Flow;

const CHECK_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Verifies {
    checked: Option<Instant>,
    unreadable: WarnOnce,
    supervisor: Supervisor,
}

struct Due {
    target: pg_sys::Oid,
    owner: pg_sys::Oid,
    repair: bool,
    flow: Flow,
}

fn load() -> Result<Vec<Due>, ZohoFdwError> {
    spi(Spi::connect(|c| {
        c.select(
            "SELECT target::oid, owner::oid, repair, module, mapping, server::text FROM zoho.verify_schedules
              WHERE NOT paused AND (last_run IS NULL OR last_run + every <= now())",
            None,
            &[],
        )?
        .map(|r| {
            Ok(Due {
                target: r.get::<pg_sys::Oid>(1)?.unwrap_or(pg_sys::InvalidOid),
                owner: r.get::<pg_sys::Oid>(2)?.unwrap_or(pg_sys::InvalidOid),
                repair: r.get::<bool>(3)?.unwrap_or(true),
                flow: Flow { module: r.get::<String>(4)?.unwrap_or_default(), mapping: r.get::<pgrx::JsonB>(5)?.map(|j| j.0), server: r.get::<String>(6)? },
            })
        })
        .collect()
    }))
}

impl Verifies {
    pub fn run_due(&mut self, usage: &mut Flusher) {
        if self.checked.is_some_and(|t| t.elapsed() < CHECK_EVERY) {
            return;
        }
        self.checked = Some(Instant::now());
        let due = match in_transaction(load) {
            Ok(d) => d,
            Err(e) => return self.unreadable.warn("cannot read zoho.verify_schedules", e),
        };
        self.unreadable.ok();
        for d in due {
            if !self.supervisor.ready(u32::from(d.target).into()) {
                continue;
            }
            usage.flush();
            let table = supervise::table_name(d.target);
            match in_transaction(|| budget_hold(d.flow.server.as_deref())) {
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(e) => return self.unreadable.warn("cannot read zoho.credit_budget", e),
            }
            // In steps, each a short transaction as the owner; none is open
            // while Zoho is called.
            let mut steps = OwnTransactions { owner: d.owner, rel: Some((d.target, Access::Mirror)) };
            let verified = crate::verify::verify(d.target, &d.flow, d.repair, &mut steps).map_err(|e| e.to_string());
            let result = verified.and_then(|v| {
                in_transaction(|| {
                    let result = v.summary();
                    spi(Spi::run_with_args(
                        "UPDATE zoho.verify_schedules SET last_run = now(), last_success = now(), last_result = $2, last_error = NULL,
                                failures = 0, next_attempt = NULL WHERE target = $1::oid::regclass",
                        &[d.target.into(), pgrx::JsonB(result.clone()).into()],
                    ))?;
                    if !v.rows.is_empty() {
                        supervise::announce("verify_differences", "verify", &table, result)?;
                    }
                    Ok(())
                })
            });
            match result {
                Ok(_) => supervise::record_recovery(self.supervisor.succeeded(u32::from(d.target).into()), "verify", || table),
                Err(e) => self.failed(&d, &table, e),
            }
            usage.flush();
        }
    }

    fn failed(&mut self, d: &Due, table: &str, e: String) {
        let f = self.supervisor.failed(u32::from(d.target).into());
        if f.log {
            warning!("zoho_fdw worker: verification of {table} failed ({} time(s) in a row; next try in {:.1}s): {e}", f.count, f.wait.as_secs_f64());
        }
        supervise::record_failure(&f, "verify", table, &e, || {
            Spi::run_with_args(
                // last_run is left alone: the run stays due, at the pace of
                // the backoff rather than of `every`.
                "UPDATE zoho.verify_schedules SET last_error = $2, last_error_at = now(), failures = $3,
                        next_attempt = now() + make_interval(secs => $4) WHERE target = $1::oid::regclass",
                &[d.target.into(), e.as_str().into(), (f.count as i32).into(), f.wait.as_secs_f64().into()],
            )
            .map_err(ZohoFdwError::from)
        });
    }
}
