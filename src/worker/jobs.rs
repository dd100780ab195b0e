//! Queued bulk jobs (zoho.job_queue, shown by zoho.jobs), run outside any
//! user's transaction by a second background worker, "zoho_fdw jobs", so
//! that a long export never holds up notifications and renewals in the
//! main worker. The main worker starts it when jobs are waiting; it runs
//! them one after another, each in a transaction of its own as the job's
//! owner, and exits when the queue is empty.
//!
//! A job left `running` by a crash or restart is queued again (the export
//! is newer-wins, so a second run is harmless); a server whose
//! `daily_credit_budget` is reached keeps its jobs queued.

use std::time::{Duration, Instant};

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, DynamicBackgroundWorker, SignalWakeFlags};
use pgrx::prelude::*;

use super::usage::budget_hold;
use super::{catchup, from_epoch_secs, in_transaction, spi, WarnOnce};
use crate::error::ZohoFdwError;
use crate::export::{export, Export};
use crate::privileges::{as_owner, Access, Limits};

const CHECK_EVERY: Duration = Duration::from_secs(1);
/// Runs of a job its runner does not survive before it stays failed.
const MAX_ATTEMPTS: i32 = 3;

#[derive(Default)]
pub struct Runner {
    checked: Option<Instant>,
    running: Option<DynamicBackgroundWorker>,
    unreadable: WarnOnce,
}

impl Runner {
    /// Starts the job runner when jobs wait and none runs.
    pub fn run_due(&mut self, db: &str) {
        if self.checked.is_some_and(|t| t.elapsed() < CHECK_EVERY) {
            return;
        }
        self.checked = Some(Instant::now());
        if self.running.as_ref().is_some_and(|w| w.pid().is_ok()) {
            return;
        }
        self.running = None;
        // Jobs whose runner died with them go back to the queue, up to
        // MAX_ATTEMPTS: a job that crashes its runner each time stays failed.
        let waiting = in_transaction(|| {
            spi(Spi::run_with_args(
                "UPDATE zoho.job_queue SET runner_pid = NULL,
                        state = CASE WHEN attempts >= $1 THEN 'failed' ELSE 'queued' END,
                        finished_at = CASE WHEN attempts >= $1 THEN now() END,
                        error = CASE WHEN attempts >= $1 THEN format('its runner stopped during each of %s attempts (a crash or a restart); not tried again', attempts) END
                  WHERE state = 'running'
                    AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = runner_pid AND a.backend_type = 'zoho_fdw jobs')",
                &[MAX_ATTEMPTS.into()],
            ))?;
            // Jobs held by the credit budget start no runner.
            spi(Spi::get_one::<bool>("SELECT EXISTS (SELECT 1 FROM zoho.job_queue WHERE state = 'queued' AND zoho.budget_hold(server) IS NULL)"))
        });
        match waiting {
            Ok(Some(true)) => {}
            Ok(_) => return,
            Err(e) => return self.unreadable.warn("cannot read zoho.job_queue", e),
        }
        self.unreadable.ok();
        let started = BackgroundWorkerBuilder::new("zoho_fdw jobs")
            .set_type("zoho_fdw jobs")
            .set_library("zoho_fdw")
            .set_function("zoho_fdw_jobs_main")
            .enable_spi_access()
            .set_extra(db)
            .set_notify_pid(unsafe { pg_sys::MyProcPid })
            .load_dynamic();
        match started {
            Ok(w) => self.running = Some(w),
            Err(e) => warning!("zoho_fdw worker: cannot start the job runner: {e:?}"),
        }
    }
}

struct Job {
    id: i64,
    kind: String,
    module: String,
    target: pg_sys::Oid,
    since: Option<chrono::DateTime<chrono::FixedOffset>>,
    mapping: Option<serde_json::Value>,
    server: Option<String>,
    owner: pg_sys::Oid,
}

/// The oldest queued job whose server has budget left, now `running`.
fn claim() -> Result<Option<Job>, ZohoFdwError> {
    let candidates: Vec<(i64, Option<String>)> = Spi::connect(|c| {
        c.select("SELECT id, server::text FROM zoho.job_queue WHERE state = 'queued' ORDER BY id", None, &[])?
            .map(|r| Ok((r.get::<i64>(1)?.unwrap_or_default(), r.get::<String>(2)?)))
            .collect::<Result<Vec<_>, pgrx::spi::SpiError>>()
    })
    .map_err(ZohoFdwError::from)?;
    for (id, server) in candidates {
        if budget_hold(server.as_deref())?.is_some() {
            continue;
        }
        let job = spi(Spi::connect_mut(|c| {
            let rows = c.update(
                "UPDATE zoho.job_queue SET state = 'running', started_at = now(), attempts = attempts + 1, runner_pid = pg_backend_pid(), error = NULL
                  WHERE id = $1 AND state = 'queued'
                 RETURNING id, kind, module, target::oid, extract(epoch FROM since)::float8, mapping, server::text, owner::oid",
                None,
                &[id.into()],
            )?;
            let Some(r) = rows.into_iter().next() else { return Ok(None) };
            Ok(Some(Job {
                id: r.get::<i64>(1)?.unwrap_or_default(),
                kind: r.get::<String>(2)?.unwrap_or_default(),
                module: r.get::<String>(3)?.unwrap_or_default(),
                target: r.get::<pg_sys::Oid>(4)?.unwrap_or(pg_sys::InvalidOid),
                since: r.get::<f64>(5)?.and_then(from_epoch_secs).map(|t| t.fixed_offset()),
                mapping: r.get::<pgrx::JsonB>(6)?.map(|j| j.0),
                server: r.get::<String>(7)?,
                owner: r.get::<pg_sys::Oid>(8)?.unwrap_or(pg_sys::InvalidOid),
            }))
        }))?;
        if job.is_some() {
            return Ok(job);
        }
    }
    Ok(None)
}

fn run(job: &Job) -> Result<i64, ZohoFdwError> {
    let spec = Export {
        module: &job.module,
        target: job.target,
        since: job.since,
        mapping: job.mapping.as_ref(),
        server: job.server.as_deref(),
        formulas_only: job.kind == "refresh",
    };
    // An export or a refresh writes rows; a pull or catch-up also deletes.
    let access = if matches!(job.kind.as_str(), "export" | "refresh") { Access::Export } else { Access::Mirror };
    let mut zoho_offset = 0.0f64;
    let rows = as_owner(job.owner, Some((job.target, access)), Limits::from_gucs(), || -> Result<i64, ZohoFdwError> {
        let rows = export(&spec)?;
        // Sync points below are on Zoho's clock (the export's client saw it).
        let ctx = crate::server::resolve(job.server.as_deref())?;
        let started = chrono::Utc::now();
        zoho_offset = (ctx.shared_client()?.transport().zoho_time(started, super::sync_overlap()) - started).num_milliseconds() as f64 / 1000.0;
        // A catch-up's deletes, which Bulk Read does not return.
        if let (Some(since), "pull" | "catchup") = (job.since, job.kind.as_str()) {
            let ctx = crate::server::resolve(job.server.as_deref())?;
            let client = ctx.shared_client()?;
            let target = catchup::target(&client, &ctx.name, &job.module, job.target, job.mapping.as_ref(), &format!("job {}", job.id))?;
            catchup::apply_deletes(&client, &ctx.name, &job.module, &target, since)?;
        }
        Ok(rows)
    })?;
    spi(Spi::run_with_args(
        "UPDATE zoho.job_queue SET state = 'done', finished_at = now(), rows_written = $2, runner_pid = NULL WHERE id = $1 AND state = 'running'",
        &[job.id.into(), rows.into()],
    ))?;
    if job.kind == "catchup" {
        spi(Spi::run_with_args(
            "UPDATE zoho.watches w SET synced_until = greatest(w.synced_until, j.started_at + make_interval(secs => $2)), last_catchup = now(), last_error = NULL
               FROM zoho.job_queue j WHERE j.id = $1 AND w.channel_id = j.channel_id AND w.owner::oid = j.owner::oid",
            &[job.id.into(), zoho_offset.into()],
        ))?;
    }
    if job.kind == "pull" {
        // Everything up to the job's start is now in the target.
        spi(Spi::run_with_args(
            "UPDATE zoho.pull_schedules p SET synced_until = j.started_at + make_interval(secs => $3), last_success = now(), last_error = NULL,
                    failures = 0, next_attempt = NULL,
                    last_result = jsonb_build_object('job', j.id, 'rows_written', $2::bigint)
               FROM zoho.job_queue j
              WHERE j.id = $1 AND p.target::oid = j.target::oid AND p.owner::oid = j.owner::oid AND p.module = j.module
                AND p.mapping IS NOT DISTINCT FROM j.mapping",
            &[job.id.into(), rows.into(), zoho_offset.into()],
        ))?;
    }
    Ok(rows)
}

fn fail(job: &Job, e: &str) {
    warning!("zoho_fdw jobs: job {} ({} of {}): {e}", job.id, job.kind, job.module);
    let _ = in_transaction(|| {
        // A job cancelled by zoho_cancel_job is already marked so.
        spi(Spi::run_with_args(
            "UPDATE zoho.job_queue SET state = 'failed', finished_at = now(), error = $2, runner_pid = NULL WHERE id = $1 AND state = 'running'",
            &[job.id.into(), e.into()],
        ))?;
        let msg = format!("job {}: {e}", job.id);
        match job.kind.as_str() {
            // The pull runs again after its interval (last_run), not at once.
            "pull" | "refresh" => spi(Spi::run_with_args(
                "UPDATE zoho.pull_schedules p SET last_run = now(), last_error = $2, last_error_at = now()
                   FROM zoho.job_queue j WHERE j.id = $1 AND p.target::oid = j.target::oid AND p.owner::oid = j.owner::oid",
                &[job.id.into(), msg.as_str().into()],
            )),
            "catchup" => spi(Spi::run_with_args(
                "UPDATE zoho.watches w SET last_error = $2, last_error_at = now()
                   FROM zoho.job_queue j WHERE j.id = $1 AND w.channel_id = j.channel_id AND w.owner::oid = j.owner::oid",
                &[job.id.into(), msg.as_str().into()],
            )),
            _ => Ok(()),
        }
    });
}

extern "C-unwind" {
    /// PostgreSQL's SIGINT handler for backends (tcop/postgres.c).
    #[link_name = "StatementCancelHandler"]
    fn statement_cancel(signal: std::ffi::c_int);
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn zoho_fdw_jobs_main(_arg: pg_sys::Datum) {
    crate::progress::on_backend_thread();
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP);
    unsafe {
        pg_sys::pqsignal(super::libc_sigterm(), Some(super::backend_die));
        // A cancel (zoho_cancel_job) interrupts the job's Zoho calls and
        // its COPY, as in any backend.
        pg_sys::pqsignal(2, Some(statement_cancel));
    }
    let db = BackgroundWorker::get_extra().to_string();
    BackgroundWorker::connect_worker_to_spi(Some(&db), None);
    // One runner at a time (a restarted main worker may start a second):
    // the one with the lowest pid runs. Not an advisory lock, which any
    // role could take first and so stop every job.
    let sole = in_transaction(|| {
        crate::privileges::pin_session();
        spi(Spi::get_one::<bool>(
            "SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a
                                 WHERE a.backend_type OPERATOR(pg_catalog.=) 'zoho_fdw jobs' AND a.pid OPERATOR(pg_catalog.<) pg_catalog.pg_backend_pid())",
        ))
    });
    if !matches!(sole, Ok(Some(true))) {
        return;
    }
    crate::progress::report_activity(true);
    loop {
        pg_sys::check_for_interrupts!();
        let job = match in_transaction(claim) {
            Ok(Some(job)) => job,
            Ok(None) => break,
            Err(e) => {
                warning!("zoho_fdw jobs: cannot read zoho.job_queue: {e}");
                break;
            }
        };
        crate::progress::activity(&format!("job {}: {} of {} starting", job.id, job.kind, job.module));
        match in_transaction(|| run(&job)) {
            Ok(rows) => log!("zoho_fdw jobs: job {} ({} of {}) done: {rows} row(s) written", job.id, job.kind, job.module),
            Err(e) => {
                // A cancel (zoho_cancel_job) ends this job, not the runner.
                unsafe { pg_sys::QueryCancelPending = 0 };
                fail(&job, &e);
            }
        }
        // Usage counted while the job ran is written by the main worker.
        unsafe { pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_IDLE, std::ptr::null()) };
    }
}

/// The runner of a running job the caller can see (zoho.job_queue shows a
/// role only its own jobs and those of roles it is a member of).
fn visible_runner(job: i64) -> Option<i32> {
    Spi::get_one_with_args::<i32>("SELECT runner_pid FROM zoho.job_queue WHERE id = $1 AND state = 'running'", &[job.into()]).ok().flatten()
}

#[pg_extern(
    stable,
    sql = r#"
CREATE FUNCTION zoho.job_progress(job bigint) RETURNS TABLE (activity text, page_rows bigint)
  STABLE STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'job_progress_wrapper';
COMMENT ON FUNCTION zoho.job_progress(bigint) IS
  'What the runner of a running job the caller can see is doing: its activity and the rows its COPY has written';
"#,
    requires = ["usage_catalog"]
)]
fn job_progress(job: i64) -> TableIterator<'static, (name!(activity, Option<String>), name!(page_rows, Option<i64>))> {
    let Some(pid) = visible_runner(job) else { return TableIterator::new(std::iter::empty()) };
    // pg_stat_activity hides a superuser backend's activity from others.
    let row = crate::privileges::as_superuser(|| {
        Spi::connect(|spi| {
            let r = spi.select(
                "SELECT a.query, p.tuples_processed FROM pg_catalog.pg_stat_activity a
                   LEFT JOIN pg_catalog.pg_stat_progress_copy p ON p.pid OPERATOR(pg_catalog.=) a.pid
                  WHERE a.pid OPERATOR(pg_catalog.=) $1 AND a.backend_type OPERATOR(pg_catalog.=) 'zoho_fdw jobs'",
                None,
                &[pid.into()],
            )?;
            r.first().get_two::<String, i64>()
        })
    });
    match row {
        Ok((activity, rows)) if activity.is_some() || rows.is_some() => TableIterator::once((activity, rows)),
        _ => TableIterator::new(std::iter::empty()),
    }
}

#[pg_extern(
    volatile,
    sql = r#"
CREATE FUNCTION zoho_cancel_job(id bigint) RETURNS boolean VOLATILE STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'zoho_cancel_job_wrapper';
COMMENT ON FUNCTION zoho_cancel_job(bigint) IS
  'Cancel a queued job, or interrupt a running one (its export rolls back); false when the caller has no such job';
"#,
    requires = ["jobs_catalog"]
)]
fn zoho_cancel_job(id: i64) -> bool {
    // Row-level security limits this to jobs the caller may manage.
    let cancelled = Spi::get_two_with_args::<String, i32>(
        "WITH old AS (SELECT state, runner_pid FROM zoho.job_queue WHERE id = $1 AND state IN ('queued', 'running') FOR UPDATE)
         UPDATE zoho.job_queue q SET state = 'cancelled', finished_at = now(), error = 'cancelled by ' || current_user
           FROM old WHERE q.id = $1 RETURNING old.state, old.runner_pid",
        &[id.into()],
    );
    let (state, pid) = match cancelled {
        Ok(row) => row,
        Err(pgrx::spi::SpiError::InvalidPosition) => return false,
        Err(e) => crate::error::raise(ZohoFdwError::from(e)),
    };
    let Some(state) = state else { return false };
    if let (Some(pid), "running") = (pid, state.as_str()) {
        // The runner is a superuser backend: only a superuser may signal it.
        let _ = crate::privileges::as_superuser(|| {
            Spi::get_one_with_args::<bool>(
                "SELECT pg_catalog.pg_cancel_backend(a.pid) FROM pg_catalog.pg_stat_activity a
                  WHERE a.pid OPERATOR(pg_catalog.=) $1 AND a.backend_type OPERATOR(pg_catalog.=) 'zoho_fdw jobs'",
                &[pid.into()],
            )
        });
    }
    true
}
