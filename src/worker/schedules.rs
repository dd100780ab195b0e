//! Scheduled pushes (zoho.push_schedules): when rows become pending (the
//! trigger wakes the worker at commit), when a table's `max_wait` runs out,
//! and every 2 s, the worker looks at how many rows of each table are
//! pending (counting no further than `min_pending`) and pushes when
//! `min_pending` are waiting, or when any are and `max_wait` has passed
//! since the last run. A push runs as the
//! schedule's owner, as a call of zoho_upsert_pending would, but in steps
//! that each commit ([`crate::steps`]): no transaction is open while
//! Zoho is called, and each finished job's rows are marked synced at once.
//! A crash or restart in the middle leaves only the unfinished jobs' rows
//! pending, and the next run sends them again, safely (an upsert). A server whose
//! `daily_credit_budget` is reached gets no scheduled push until it is not.

use std::time::{Duration, Instant};

use pgrx::prelude::*;
use zoho_api::planner::Mode;

use super::{in_transaction, OwnTransactions};
use super::supervise::{self, Supervisor};
use super::usage::{budget_hold, Flusher};
use crate::error::ZohoFdwError;
use crate::local::quote_ident;
use crate::privileges::{as_owner, Access, Limits};

/// Rows that become pending wake the worker at commit ([`super::wake`]);
/// this poll is for `max_wait` and for writes that bypass the trigger.
const CHECK_EVERY: Duration = Duration::from_secs(2);

struct Schedule {
    source: pg_sys::Oid,
    module: String,
    key_field: Option<String>,
    sync_column: String,
    mode: Mode,
    mapping: Option<serde_json::Value>,
    server: Option<String>,
    owner: pg_sys::Oid,
    min_pending: i64,
    max_attempts: i32,
    /// Seconds since the last run (None: never ran) and the wait allowed.
    since_last: Option<f64>,
    max_wait: f64,
    /// The source is a two-way table (zoho_sync).
    two_way: bool,
}

#[derive(Default)]
pub struct Schedules {
    checked: Option<Instant>,
    /// When the first max_wait of a table with pending rows runs out.
    deadline: Option<Instant>,
    /// A table that keeps failing (locked, refused, Zoho down) costs a
    /// handful of attempts an hour, not thousands.
    supervisor: Supervisor,
}

fn load() -> Result<Vec<Schedule>, ZohoFdwError> {
    super::spi(Spi::connect(|spi| {
        let rows = spi.select(
            "SELECT source::oid, module, key_field, sync_column::text, mode, mapping, server::text, owner::oid, min_pending,
                    extract(epoch FROM now() - last_run)::float8, extract(epoch FROM max_wait)::float8, max_attempts,
                    EXISTS (SELECT FROM zoho.syncs y WHERE y.target = source)
               FROM zoho.push_schedules WHERE NOT paused",
            None,
            &[],
        )?;
        let mut out = Vec::new();
        for r in rows {
            out.push(Schedule {
                source: r.get::<pg_sys::Oid>(1)?.unwrap_or(pg_sys::InvalidOid),
                module: r.get::<String>(2)?.unwrap_or_default(),
                key_field: r.get::<String>(3)?,
                sync_column: r.get::<String>(4)?.unwrap_or_else(|| "synced".into()),
                mode: match r.get::<String>(5)?.as_deref() {
                    Some("upsert") => Mode::Upsert,
                    Some("bulk") => Mode::Bulk,
                    _ => Mode::Auto,
                },
                mapping: r.get::<pgrx::JsonB>(6)?.map(|j| j.0),
                server: r.get::<String>(7)?,
                owner: r.get::<pg_sys::Oid>(8)?.unwrap_or(pg_sys::InvalidOid),
                min_pending: r.get::<i32>(9)?.unwrap_or(100).into(),
                since_last: r.get::<f64>(10)?,
                max_wait: r.get::<f64>(11)?.unwrap_or(600.0),
                max_attempts: r.get::<i32>(12)?.unwrap_or(3),
                two_way: r.get::<bool>(13)?.unwrap_or(false),
            });
        }
        Ok(out)
    }))
}

/// The most pending rows a count reads: enough for any threshold and for
/// zoho.sync_status, without scanning a huge initial load every poll.
const COUNT_AT_MOST: i64 = 1_000_000;

/// Pending rows (up to [`COUNT_AT_MOST`]), counted as the schedule's owner
/// (the table may be a trap: a view, a trigger, a policy calling the
/// owner's functions), and kept for zoho.sync_status, which so runs no
/// user code for whoever reads it.
fn pending(s: &Schedule) -> Result<i64, ZohoFdwError> {
    let sql = format!(
        "SELECT count(*) FROM (SELECT 1 FROM {} WHERE NOT {} LIMIT {}) p",
        crate::push::qualified_name(s.source),
        quote_ident(&s.sync_column),
        COUNT_AT_MOST.max(s.min_pending)
    );
    // Held-back rows count too: only the push can tell a held row from one
    // that changed since, and it sends neither a call nor a credit for them.
    let n = as_owner(s.owner, Some((s.source, Access::Push)), Limits::glance(), || Spi::get_one::<i64>(&sql).map(|n| n.unwrap_or(0)).map_err(ZohoFdwError::from))?;
    Spi::run_with_args("UPDATE zoho.push_schedules SET rows_pending = $2, counted_at = now() WHERE source = $1", &[s.source.into(), n.into()])?;
    Ok(n)
}

impl Schedules {
    /// `woken`: rows became pending since the last check.
    pub fn run_due(&mut self, woken: bool, usage: &mut Flusher) {
        let at_deadline = self.deadline.is_some_and(|d| Instant::now() >= d);
        if !woken && !at_deadline && self.checked.is_some_and(|t| t.elapsed() < CHECK_EVERY) {
            return;
        }
        self.checked = Some(Instant::now());
        self.deadline = None;
        let Ok(schedules) = in_transaction(load) else { return };
        if !schedules.is_empty() {
            usage.flush();
        }
        for s in schedules {
            if !self.supervisor.ready(u32::from(s.source).into()) {
                continue;
            }
            let due = in_transaction(|| {
                // A two-way table's local deletes go out with its push.
                let deletes = as_owner(s.owner, Some((s.source, Access::Push)), Limits::glance(), || crate::sync::deletes::waiting(s.source))?;
                let n = pending(&s)? + i64::from(deletes);
                if budget_hold(s.server.as_deref())?.is_some() {
                    return Ok(false);
                }
                let waited_enough = s.since_last.is_none_or(|t| t >= s.max_wait);
                if n > 0 && !waited_enough {
                    let left = Duration::from_secs_f64((s.max_wait - s.since_last.unwrap_or(0.0)).max(0.0));
                    let at = Instant::now() + left;
                    self.deadline = Some(self.deadline.map_or(at, |d| d.min(at)));
                }
                Ok(n >= s.min_pending || (n > 0 && waited_enough))
            });
            match due {
                Ok(false) => continue,
                Ok(true) => {}
                Err(e) => {
                    self.failed(&s, e);
                    continue;
                }
            }
            let req = crate::push::Request {
                source: s.source,
                module: &s.module,
                key_field: s.key_field.as_deref(),
                sync_column: &s.sync_column,
                mode: s.mode,
                mapping: s.mapping.as_ref(),
                server: s.server.as_deref(),
                max_attempts: s.max_attempts,
            };
            // An upsert sends every field of a row: what Zoho changed since
            // the last pull is merged into the pending rows first, or the
            // push would overwrite it with this table's older values.
            if s.two_way {
                if let Err(e) = super::pulls::before_push(s.source) {
                    log!("zoho_fdw worker: the pull before the push of {}: {e}", supervise::table_name(s.source));
                }
            }
            let mut steps = OwnTransactions { owner: s.owner, rel: Some((s.source, Access::Push)) };
            let pushed = crate::push::push_in_steps(&req, &mut steps)
                .and_then(|r| crate::sync::deletes::send(s.source, &s.module, s.server.as_deref(), &mut steps).map(|d| (r, d)))
                .map_err(|e| e.to_string());
            let result = pushed.and_then(|(r, deleted)| in_transaction(|| {
                let summary = serde_json::json!({"mode": r.mode, "pending": r.pending, "synced": r.synced, "failed": r.failed, "api_calls": r.api_calls, "credits": r.credits, "deleted": deleted});
                Spi::run_with_args(
                    "UPDATE zoho.push_schedules SET last_run = now(), last_success = now(), last_result = $2, last_error = NULL,
                            failures = 0, next_attempt = NULL WHERE source = $1",
                    &[s.source.into(), pgrx::JsonB(summary.clone()).into()],
                )
                .map_err(ZohoFdwError::from)?;
                // What is left, for zoho.sync_status.
                pending(&s)?;
                Ok(summary)
            }));
            match result {
                Ok(_) => supervise::record_recovery(self.supervisor.succeeded(u32::from(s.source).into()), "push", || supervise::table_name(s.source)),
                Err(e) => self.failed(&s, e),
            }
            usage.flush();
        }
    }

    /// Records a failure and when to try again; the log says it once, then
    /// again at 2, 4, 8, … failures in a row, with the count.
    fn failed(&mut self, s: &Schedule, e: String) {
        let f = self.supervisor.failed(u32::from(s.source).into());
        let table = supervise::table_name(s.source);
        if f.log {
            warning!("zoho_fdw worker: scheduled push of {table} failed ({} time(s) in a row; next try in {:.1}s): {e}", f.count, f.wait.as_secs_f64());
        }
        supervise::record_failure(&f, "push", &table, &e, || {
            Spi::run_with_args(
                "UPDATE zoho.push_schedules SET last_run = now(), last_error = $2, last_error_at = now(), failures = $3,
                        next_attempt = now() + make_interval(secs => $4) WHERE source = $1",
                &[s.source.into(), e.as_str().into(), (f.count as i32).into(), f.wait.as_secs_f64().into()],
            )
            .map_err(ZohoFdwError::from)
        });
    }
}
