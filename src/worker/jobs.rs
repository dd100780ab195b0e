//! Queued bulk jobs (zoho.job_queue, shown by zoho.jobs), run outside any
//! user's transaction by a second background worker, "zoho_fdw jobs", so
//! that a long export never holds up notifications and renewals in the
//! main worker. The main worker starts it when jobs are waiting; it runs
//! them one after another as the job's owner, and exits when the queue is
//! empty. A job runs in steps: each page is downloaded with no transaction
//! open, then written and committed with the job's place (see [`run`]).
//!
//! A job left `running` by a crash or restart, or failed, is queued again
//! and goes on from its last committed page (the export is newer-wins, so
//! writing a page twice is harmless), up to 3 attempts; a server whose
//! `daily_credit_budget` is reached keeps its jobs queued.

use std::time::{Duration, Instant};

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, DynamicBackgroundWorker, SignalWakeFlags};
use pgrx::prelude::*;

use super::usage::budget_hold;
use super::{from_epoch_secs, in_transaction, spi, OwnTransactions, WarnOnce};
use crate::error::ZohoFdwError;
use crate::export::{export_in_steps, Export, Resume};
use crate::privileges::Access;
use crate::steps::Steps;

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
            spi(Spi::get_one::<bool>("SELECT EXISTS (SELECT 1 FROM zoho.job_queue WHERE state = 'queued' AND (next_attempt IS NULL OR next_attempt <= now()) AND zoho.budget_hold(server) IS NULL)"))
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
            // SAFETY: a plain read of this process's pid.
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
    /// A backfill's fields.
    fields: Option<Vec<String>>,
    /// A filtered pull's condition.
    filter: Option<String>,
    /// Pages an earlier attempt committed, to go on from.
    resume: Resume,
    /// Attempts in a row that failed because Zoho did not answer.
    failures: i32,
}

/// The oldest queued job whose server has budget left, now `running`.
fn claim() -> Result<Option<Job>, ZohoFdwError> {
    let candidates: Vec<(i64, Option<String>)> = Spi::connect(|c| {
        c.select("SELECT id, server::text FROM zoho.job_queue WHERE state = 'queued' AND (next_attempt IS NULL OR next_attempt <= now()) ORDER BY id", None, &[])?
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
                // An attempt goes on from the pages an earlier one committed,
                // unless Zoho's token for the next page is about to expire;
                // it then keeps that attempt's start, which its sync point is.
                "WITH fresh AS (SELECT pages_done > 0 AND (next_page_token IS NULL OR page_token_at > now() - interval '23 hours') AS go_on
                                  FROM zoho.job_queue WHERE id = $1)
                 UPDATE zoho.job_queue SET state = 'running', attempts = attempts + 1, runner_pid = pg_backend_pid(), error = NULL,
                        started_at = CASE WHEN fresh.go_on THEN started_at ELSE now() END,
                        pages_done = CASE WHEN fresh.go_on THEN pages_done ELSE 0 END,
                        rows_written = CASE WHEN fresh.go_on THEN rows_written END,
                        next_page_token = CASE WHEN fresh.go_on THEN next_page_token END
                   FROM fresh
                  WHERE id = $1 AND state = 'queued'
                 RETURNING id, kind, module, target::oid, extract(epoch FROM since)::float8, mapping, server::text, owner::oid,
                           pages_done, coalesce(rows_written, 0), next_page_token, failures, extract(epoch FROM started_at)::float8, fields, filter",
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
                fields: r.get::<Vec<String>>(14)?,
                filter: r.get::<String>(15)?,
                resume: Resume {
                    pages: r.get::<i32>(9)?.unwrap_or(0),
                    written: r.get::<i64>(10)?.unwrap_or(0),
                    next_token: r.get::<String>(11)?,
                    started: r.get::<f64>(13)?.and_then(from_epoch_secs),
                },
                failures: r.get::<i32>(12)?.unwrap_or(0),
            }))
        }))?;
        if job.is_some() {
            return Ok(job);
        }
    }
    Ok(None)
}

/// Runs a job in steps ([`crate::steps`]), each committed as the job's
/// owner, with no transaction open while Zoho is called. Each page's rows
/// and the job's place are committed together, so a restart goes on from
/// the next page. Then, in a transaction of its own, the job is marked done
/// and its flow's sync point moves.
fn run(job: &Job) -> Result<i64, JobError> {
    let spec = Export {
        module: &job.module,
        target: job.target,
        since: job.since,
        mapping: job.mapping.as_ref(),
        server: job.server.as_deref(),
        formulas_only: job.kind == "refresh",
        fields_only: if job.kind == "backfill" { job.fields.as_deref() } else { None },
        filter: job.filter.as_deref(),
    };
    // An export, a refresh or a backfill writes rows; a pull or catch-up
    // also deletes.
    let access = if matches!(job.kind.as_str(), "export" | "refresh" | "backfill") { Access::Export } else { Access::Mirror };
    let mut steps = OwnTransactions { owner: job.owner, rel: Some((job.target, access)) };
    let mut checkpoint = |_: &mut pgrx::spi::SpiClient<'_>, at: &Resume| -> Result<(), ZohoFdwError> {
        // The catalog is the extension's, not the owner's to write.
        crate::privileges::as_superuser(|| {
            Spi::run_with_args(
                "UPDATE zoho.job_queue SET pages_done = $2, rows_written = $3, next_page_token = $4, page_token_at = now() WHERE id = $1 AND state = 'running'",
                &[job.id.into(), at.pages.into(), at.written.into(), at.next_token.clone().into()],
            )
        })
        .map_err(ZohoFdwError::from)
    };
    if job.failures > 0 {
        // Zoho did not answer the last attempt: this one is a probe, one
        // try per call, as in the process that saw it fail.
        steps.step(|_| Ok(crate::server::resolve(job.server.as_deref())?.shared_client()?.transport().assume_unreachable()))?;
    }
    let rows = export_in_steps(&spec, &mut steps, job.resume.clone(), Some(&mut checkpoint))?;
    // Sync points below are on Zoho's clock (the export's client saw it).
    let (ctx, client) = steps
        .step(|_| {
            let ctx = crate::server::resolve(job.server.as_deref())?;
            let client = ctx.shared_client()?;
            Ok((ctx, client))
        })?;
    let started = chrono::Utc::now();
    let zoho_offset = (client.transport().zoho_time(started, super::sync_overlap()) - started).num_milliseconds() as f64 / 1000.0;
    // A catch-up's deletes, which Bulk Read does not return: read from
    // Zoho, then applied in a step.
    if let (Some(since), "pull" | "catchup") = (job.since, job.kind.as_str()) {
        let context = format!("job {}", job.id);
        let fields = ctx.module_fields(&client, &job.module, &context)?;
        let deleted = crate::runtime::block_on(client.deleted(&job.module, Some(since))).map_err(|e| ZohoFdwError::api(&ctx.name, e))?;
        let ids: Vec<i64> = deleted.iter().filter_map(|d| d.id.parse().ok()).collect();
        steps
            .step(|_| {
                let target = crate::export::plan_target(job.target, &job.module, &fields, job.mapping.as_ref())?;
                super::apply::delete(&target, &ids)
            })?;
    }
    // A filtered pull read only matching records; rows of records that
    // stopped matching (or a narrower filter left out) go now, by every id
    // that matches, read after the load.
    if let (Some(filter), "pull" | "catchup") = (job.filter.as_deref(), job.kind.as_str()) {
        let fields = ctx.module_fields(&client, &job.module, &format!("job {}", job.id))?;
        let filter = crate::filter::parse(&job.module, filter, &fields)?;
        let matching = crate::runtime::block_on(client.matching_ids(&job.module, &filter)).map_err(|e| ZohoFdwError::api(&ctx.name, e))?;
        let left = steps.step(|_| {
            let target = crate::export::plan_target(job.target, &job.module, &fields, job.mapping.as_ref())?;
            crate::filter::keep_only(&target, &matching)
        })?;
        if left > 0 {
            log!("zoho_fdw jobs: job {}: {left} row(s) of {} no longer match the filter and were removed", job.id, job.module);
        }
    }
    in_transaction(|| finish(job, rows, zoho_offset)).map_err(|message| JobError { message, zoho_unavailable: false })
}

/// Why an attempt failed, and whether only because Zoho did not answer.
struct JobError {
    message: String,
    zoho_unavailable: bool,
}

impl From<ZohoFdwError> for JobError {
    fn from(e: ZohoFdwError) -> JobError {
        let zoho_unavailable = matches!(&e, ZohoFdwError::Api { source, .. } if source.is_transient() || matches!(source, zoho_api::Error::RetriesExhausted { .. }));
        JobError { message: e.to_string(), zoho_unavailable }
    }
}

/// Marks a job done and moves its flow's sync point.
fn finish(job: &Job, rows: i64, zoho_offset: f64) -> Result<i64, ZohoFdwError> {
    spi(Spi::run_with_args(
        "UPDATE zoho.job_queue SET state = 'done', finished_at = now(), rows_written = $2, runner_pid = NULL, failures = 0, next_attempt = NULL WHERE id = $1 AND state = 'running'",
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
                AND p.mapping IS NOT DISTINCT FROM j.mapping AND p.filter IS NOT DISTINCT FROM j.filter",
            &[job.id.into(), rows.into(), zoho_offset.into()],
        ))?;
    }
    Ok(rows)
}

/// A failed attempt: queued again, going on from its last committed page.
/// Zoho not answering is waited out like any flow's failure (the backoff
/// of [`super::supervise::delay`], without limit, and the attempt is not
/// counted); any other failure counts, waits 1 then 2 minutes (with
/// jitter), and after MAX_ATTEMPTS the job stays failed with the reason.
fn fail(job: &Job, e: &JobError) {
    let jitter = 0.75 + rand::random::<f64>() / 2.0;
    let wait = if e.zoho_unavailable { super::supervise::delay(job.failures as u32 + 1).as_secs_f64() } else { jitter * 60.0 };
    let e_text = e.message.as_str();
    let _ = in_transaction(|| {
        // A job cancelled by zoho_cancel_job is already marked so.
        let state = match Spi::get_one_with_args::<String>(
            "UPDATE zoho.job_queue SET error = $2, runner_pid = NULL,
                    attempts = attempts - CASE WHEN $5 THEN 1 ELSE 0 END,
                    failures = CASE WHEN $5 THEN failures + 1 ELSE 0 END,
                    state = CASE WHEN attempts >= $3 AND NOT $5 THEN 'failed' ELSE 'queued' END,
                    finished_at = CASE WHEN attempts >= $3 AND NOT $5 THEN now() END,
                    next_attempt = CASE WHEN attempts < $3 OR $5 THEN now() + make_interval(secs => $4 * CASE WHEN $5 THEN 1 ELSE 2 ^ (attempts - 1) END) END
              WHERE id = $1 AND state = 'running' RETURNING state",
            &[job.id.into(), e_text.into(), MAX_ATTEMPTS.into(), wait.into(), e.zoho_unavailable.into()],
        ) {
            Err(pgrx::spi::SpiError::InvalidPosition) => None,
            other => spi(other)?,
        };
        // Said once per doubling of the wait, as flows do.
        let count = job.failures as u32 + 1;
        match state.as_deref() {
            Some("queued") if e.zoho_unavailable && !count.is_power_of_two() => {}
            Some("queued") => warning!("zoho_fdw jobs: job {} ({} of {}) failed ({count} time(s) in a row) and is tried again later: {e_text}", job.id, job.kind, job.module),
            _ => warning!("zoho_fdw jobs: job {} ({} of {}): {e_text}", job.id, job.kind, job.module),
        }
        let msg = format!("job {}: {e_text}", job.id);
        match job.kind.as_str() {
            // The pull runs again after its interval (last_run), not at once.
            "pull" | "refresh" | "backfill" => spi(Spi::run_with_args(
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
    // SAFETY: PostgreSQL's own SIGTERM and SIGINT handlers for backends,
    // installed as a backend installs them, before this process does anything
    // else.
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
        match run(&job) {
            Ok(rows) => log!("zoho_fdw jobs: job {} ({} of {}) done: {rows} row(s) written", job.id, job.kind, job.module),
            Err(e) => {
                // A cancel (zoho_cancel_job) ends this job, not the runner.
                // SAFETY: a plain write of the backend's cancel flag, between
                // jobs and transactions; only this thread and its signal
                // handlers touch it.
                unsafe { pg_sys::QueryCancelPending = 0 };
                fail(&job, &e);
            }
        }
        // Usage counted while the job ran is written by the main worker.
        // SAFETY: this backend's own pg_stat_activity entry; a NULL text is
        // allowed for STATE_IDLE.
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
  'Cancel a queued job, or interrupt a running one (the page being written rolls back; pages already written stay); false when the caller has no such job';
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
