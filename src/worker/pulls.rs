//! Scheduled pulls (zoho.pull_schedules): every `every`, what changed in
//! the module since `synced_until` (and what was deleted) is applied to
//! the target, as a channel's catch-up does. The first pull, and a gap too
//! large for the records list, become a Bulk Read job instead; so does
//! each formula refresh on its cron schedule (zoho.cron_next).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use pgrx::prelude::*;

use super::supervise::{self, Supervisor};
use super::usage::{budget_hold, Flusher};
use super::{catchup, epoch_secs, from_epoch_secs, in_transaction, spi, WarnOnce};
use crate::error::ZohoFdwError;
use crate::export::Target;
use crate::privileges::{as_owner, Access, Limits};
use crate::server;

const CHECK_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Pulls {
    checked: Option<Instant>,
    unreadable: WarnOnce,
    /// A failing pull waits longer before each new attempt.
    supervisor: Supervisor,
}

pub struct Pull {
    pub target: pg_sys::Oid,
    pub module: String,
    pub server: Option<String>,
    pub owner: pg_sys::Oid,
    pub mapping: Option<serde_json::Value>,
    /// follow, hold or ignore ([`super::drift`]).
    pub schema_changes: String,
    /// The fields the last check saw, and whether a check is due.
    pub schema: Option<serde_json::Value>,
    pub schema_due: bool,
    /// Only records this COQL condition matches are kept.
    pub filter: Option<String>,
    synced_until: Option<DateTime<Utc>>,
    due: bool,
    refresh_due: bool,
    /// A job of this pull is queued or running.
    busy: bool,
    /// Seconds since the pull last ran.
    since_run: Option<f64>,
}

impl Pull {
    fn drift(&self) -> super::drift::Flow<'_> {
        super::drift::Flow {
            of: super::drift::Of::Pull,
            target: self.target,
            module: &self.module,
            server: self.server.as_deref(),
            owner: self.owner,
            mapping: self.mapping.as_ref(),
            schema_changes: &self.schema_changes,
            schema: self.schema.as_ref(),
            schema_due: self.schema_due,
            filter: self.filter.as_deref(),
        }
    }
}

fn load() -> Result<Vec<Pull>, ZohoFdwError> {
    spi(Spi::connect(|c| {
        let rows = c.select(
            "SELECT p.target::oid, p.module, p.server::text, p.owner::oid, p.mapping, extract(epoch FROM p.synced_until)::float8,
                    p.last_run IS NULL OR p.last_run + p.every <= now(),
                    p.refresh_formulas IS NOT NULL AND zoho.cron_next(p.refresh_formulas, coalesce(p.last_refresh, p.created_at)) <= now(),
                    EXISTS (SELECT 1 FROM zoho.job_queue j WHERE j.target = p.target AND j.kind IN ('pull', 'refresh', 'backfill') AND j.state IN ('queued', 'running')),
                    p.schema_changes, p.schema, p.schema_checked IS NULL OR p.schema_checked <= now() - make_interval(secs => $1),
                    p.filter, extract(epoch FROM now() - p.last_run)::float8
               FROM zoho.pull_schedules p WHERE NOT p.paused",
            None,
            &[(crate::gucs::SCHEMA_CHECK_INTERVAL.get() as f64).into()],
        )?;
        rows.map(|r| {
            Ok(Pull {
                target: r.get::<pg_sys::Oid>(1)?.unwrap_or(pg_sys::InvalidOid),
                module: r.get::<String>(2)?.unwrap_or_default(),
                server: r.get::<String>(3)?,
                owner: r.get::<pg_sys::Oid>(4)?.unwrap_or(pg_sys::InvalidOid),
                mapping: r.get::<pgrx::JsonB>(5)?.map(|j| j.0),
                synced_until: r.get::<f64>(6)?.and_then(from_epoch_secs),
                due: r.get::<bool>(7)?.unwrap_or(false),
                refresh_due: r.get::<bool>(8)?.unwrap_or(false),
                busy: r.get::<bool>(9)?.unwrap_or(false),
                schema_changes: r.get::<String>(10)?.unwrap_or_default(),
                schema: r.get::<pgrx::JsonB>(11)?.map(|j| j.0),
                schema_due: r.get::<bool>(12)?.unwrap_or(false),
                filter: r.get::<String>(13)?,
                since_run: r.get::<f64>(14)?,
            })
        })
        .collect()
    }))
}

fn enqueue(p: &Pull, kind: &str, since: Option<DateTime<Utc>>) -> Result<(), ZohoFdwError> {
    spi(Spi::run_with_args(
        "INSERT INTO zoho.job_queue (kind, module, target, since, mapping, server, owner, filter)
         VALUES ($1, $2, $3::oid::regclass, to_timestamp($4), $5, $6, $7::oid::regrole, $8)",
        &[
            kind.into(),
            p.module.as_str().into(),
            p.target.into(),
            since.map(epoch_secs).into(),
            p.mapping.clone().map(pgrx::JsonB).into(),
            p.server.as_deref().into(),
            p.owner.into(),
            p.filter.as_deref().into(),
        ],
    ))
}

/// What a due pull read from Zoho, with no transaction open, as the
/// schedule's owner: the target as records land in it, and the changes.
/// None for a first pull, which only queues a job.
type Fetched = Option<(DateTime<Utc>, Target, catchup::Fetched)>;

fn fetch(p: &Pull) -> Result<Fetched, String> {
    let Some(since) = p.synced_until else { return Ok(None) };
    let started = Utc::now();
    // The owner's user mapping makes the client.
    let (name, client) = in_transaction(|| {
        as_owner(p.owner, Some((p.target, Access::Mirror)), Limits::glance(), || {
            let ctx = server::resolve(p.server.as_deref())?;
            Ok((ctx.name.clone(), ctx.shared_client()?))
        })
    })?;
    let target = catchup::target_as(p.owner, &client, &name, &p.module, p.target, p.mapping.as_ref(), "scheduled pull")?;
    let filter = catchup::filter_as(&client, &name, &p.module, p.filter.as_deref(), "scheduled pull")?;
    let changes = catchup::fetch_changes(&client, &name, &p.module, &target, since, Some(catchup::max_list_pages()), filter.as_ref()).map_err(|e| e.to_string())?;
    // The next pull starts from Zoho's clock, not this host's.
    Ok(Some((client.transport().zoho_time(started, super::sync_overlap()), target, changes)))
}

/// One due pull: what changed since the last one applied, or a job for it.
fn pull(p: &Pull, fetched: &Fetched) -> Result<serde_json::Value, ZohoFdwError> {
    let (Some(since), Some((started, target, changes))) = (p.synced_until, fetched) else {
        enqueue(p, "pull", None)?;
        spi(Spi::run_with_args("UPDATE zoho.pull_schedules SET last_run = now(), failures = 0, next_attempt = NULL WHERE target = $1::oid::regclass", &[p.target.into()]))?;
        return Ok(serde_json::json!({"queued": "full load"}));
    };
    let started = *started;
    let r = as_owner(p.owner, Some((p.target, Access::Mirror)), Limits::from_gucs(), || changes.apply(target))?;
    if r.incomplete {
        // Kept: what was applied. The job reads the rest, then the deletes
        // since the same time, and moves synced_until.
        enqueue(p, "pull", Some(since - chrono::Duration::seconds(1)))?;
        spi(Spi::run_with_args("UPDATE zoho.pull_schedules SET last_run = now(), failures = 0, next_attempt = NULL WHERE target = $1::oid::regclass", &[p.target.into()]))?;
        return Ok(serde_json::json!({"changed": r.changed, "queued": "bulk read of the rest"}));
    }
    let result = serde_json::json!({"changed": r.changed, "deleted": r.removed, "left_filter": r.left});
    spi(Spi::run_with_args(
        "UPDATE zoho.pull_schedules SET synced_until = to_timestamp($2), last_run = now(), last_success = now(), last_result = $3, last_error = NULL,
                failures = 0, next_attempt = NULL
          WHERE target = $1::oid::regclass",
        &[p.target.into(), epoch_secs(started).into(), pgrx::JsonB(result.clone()).into()],
    ))?;
    Ok(result)
}

/// A pull this recent already holds what Zoho changed before a push.
const FRESH_ENOUGH: f64 = 2.0;

/// A two-way table's pull, run now, just before its push: Zoho's changes
/// since the last pull are merged into the pending rows (three ways, with
/// zoho_changed_fields), so that the push, which sends whole rows, does not
/// undo them. Nothing when the pull ran in the last [`FRESH_ENOUGH`]
/// seconds, is paused or busy with a job, or has not loaded the table yet.
pub fn before_push(target: pg_sys::Oid) -> Result<(), String> {
    let stale = |p: &Pull| p.since_run.is_none_or(|s| s >= FRESH_ENOUGH);
    let Some(p) = in_transaction(load)?.into_iter().find(|p| p.target == target && !p.busy && p.synced_until.is_some() && stale(p)) else { return Ok(()) };
    let fetched = fetch(&p)?;
    in_transaction(|| pull(&p, &fetched).map(|_| ()))
}

impl Pulls {
    pub fn run_due(&mut self, usage: &mut Flusher) {
        if self.checked.is_some_and(|t| t.elapsed() < CHECK_EVERY) {
            return;
        }
        self.checked = Some(Instant::now());
        let pulls = match in_transaction(load) {
            Ok(p) => p,
            Err(e) => return self.unreadable.warn("cannot read zoho.pull_schedules", e),
        };
        self.unreadable.ok();
        let due: Vec<Pull> = pulls.into_iter().filter(|p| !p.busy && (p.due || p.refresh_due) && self.supervisor.ready(u32::from(p.target).into())).collect();
        for p in due {
            usage.flush();
            match in_transaction(|| budget_hold(p.server.as_deref())) {
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(e) => return self.unreadable.warn("cannot read zoho.credit_budget", e),
            }
            // A pull paused for a change of fields waits for its owner.
            let go_on = if p.due { super::drift::check(&p.drift(), None) } else { Ok(true) };
            if matches!(go_on, Ok(false)) {
                continue;
            }
            let fetched = go_on.and_then(|_| if p.due { fetch(&p) } else { Ok(None) });
            let done = fetched.and_then(|fetched| in_transaction(|| {
                if p.refresh_due {
                    enqueue(&p, "refresh", None)?;
                    spi(Spi::run_with_args("UPDATE zoho.pull_schedules SET last_refresh = now() WHERE target = $1::oid::regclass", &[p.target.into()]))?;
                }
                if p.due {
                    pull(&p, &fetched)?;
                }
                Ok(())
            }));
            match done {
                Ok(()) => supervise::record_recovery(self.supervisor.succeeded(u32::from(p.target).into()), "pull", || supervise::table_name(p.target)),
                Err(e) => {
                    let target = supervise::table_name(p.target);
                    let f = self.supervisor.failed(u32::from(p.target).into());
                    if f.log {
                        warning!("zoho_fdw worker: scheduled pull of {} into {target} ({} time(s) in a row; next try in {:.1}s): {e}", p.module, f.count, f.wait.as_secs_f64());
                    }
                    supervise::record_failure(&f, "pull", &target, &e, || {
                        spi(Spi::run_with_args(
                            "UPDATE zoho.pull_schedules SET last_run = now(), last_error = $2, last_error_at = now(), failures = $3,
                                    next_attempt = now() + make_interval(secs => $4) WHERE target = $1::oid::regclass",
                            &[p.target.into(), e.as_str().into(), (f.count as i32).into(), f.wait.as_secs_f64().into()],
                        ))
                    });
                }
            }
        }
    }
}

#[pg_extern(
    stable,
    sql = r#"
CREATE FUNCTION zoho.cron_next(schedule text, after timestamptz) RETURNS timestamptz
  STABLE STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'cron_next_wrapper';
COMMENT ON FUNCTION zoho.cron_next(text, timestamptz) IS
  'The first time after "after" that a cron schedule ([second] minute hour day month weekday, UTC) names';
"#,
    requires = ["export_catalog"]
)]
fn cron_next(schedule: &str, after: pgrx::datum::TimestampWithTimeZone) -> pgrx::datum::TimestampWithTimeZone {
    let bad = |why: String| -> ! {
        crate::error::raise(ZohoFdwError::BadArgument {
            what: format!("refresh schedule \"{schedule}\" is not a cron schedule: {why}"),
            hint: Some("Five fields, minute hour day-of-month month day-of-week, in UTC (or six, seconds first): '0 3 * * *' is every day at 03:00.".into()),
        })
    };
    let cron = croner::Cron::new(schedule).with_seconds_optional().parse().unwrap_or_else(|e| bad(e.to_string()));
    let after = crate::timestamps::to_chrono(after, "after").unwrap_or_else(|e| crate::error::raise(e));
    let next = cron.find_next_occurrence(&after, false).unwrap_or_else(|e| bad(e.to_string()));
    crate::timestamps::from_chrono(next).unwrap_or_else(|| bad(format!("its next time after {after} is past PostgreSQL's range")))
}
