//! Legacy → Zoho (Kaizen #123): `zoho_upsert_pending` pushes the rows of a
//! table whose sync column is false, matched on a unique Zoho field, by
//! whichever API costs fewer credits; `zoho_mark_pending` is the trigger
//! that sets the flag.
//!
//! The order of work is what keeps rows safe:
//! 1. check everything (columns, mapping, key, every value) before sending;
//! 2. take a per-table advisory lock, so two pushes never send one row;
//! 3. read pending rows with their versions and send them; nothing in the
//!    table is locked while Zoho is called, so legacy writes go on;
//! 4. mark synced only the rows still at the version that was sent.
//!
//! A failure before step 4 raises an ERROR and the transaction changes
//! nothing locally; records already written in Zoho are written again by
//! the next push, which is safe because every write is an upsert on the key.
//!
//! The worker runs a push in steps that each commit ([`crate::steps`]), so
//! each finished job's rows are marked synced at once, and a crash in the
//! third of four jobs sends only jobs 3 and 4 again.
//!
//! Layout: [`source`] reads the table's catalog entry, [`columns`] decides
//! what is sent as what, [`read`] reads and converts pending rows,
//! [`apply`] records outcomes, [`trigger`] is `zoho_mark_pending`.

mod apply;
mod columns;
mod quarantine;
mod read;
mod source;
mod trigger;

use std::ffi::CStr;
use std::time::Duration;

use pgrx::prelude::*;
use pgrx::JsonB;
use zoho_api::planner::{self, Mode};
use zoho_api::push::{Outcome, PushRow, PUSH_CALL_ROWS};

use crate::error::{raise, ZohoFdwError};
use crate::runtime::block_on;
use crate::server;
use crate::steps::{InCaller, Steps};
use apply::Outcomes;
use read::RowRef;
use source::SourceTable;

/// Columns a push maintains and never sends (besides the sync column).
pub const BOOKKEEPING: &[&str] = &["zoho_id", "zoho_error", "zoho_synced_at", CHANGED_AT, CHANGED_FIELDS, DELETED_AT];
/// When Zoho deleted the row's record (`timestamptz`), in a two-way table
/// that flags Zoho's deletes rather than applying them: such a row is
/// Zoho's no more, and its local edits stay local until this is cleared.
pub const DELETED_AT: &str = "zoho_deleted_at";
/// When a row last changed here, set by `zoho_mark_pending`.
pub const CHANGED_AT: &str = "zoho_changed_at";
/// The columns changed here since the row last agreed with Zoho, each with
/// the value it had then (`jsonb`: column → text form), set by
/// `zoho_mark_pending`: a two-way table then knows a conflict by field (a
/// three-way comparison), not by row.
pub const CHANGED_FIELDS: &str = "zoho_changed_fields";

/// Rows read from the table at a time while calls are in flight.
const READ_CHUNK: usize = 1_000;
/// Rows whose outcomes are marked in one statement (one step). Each
/// statement costs milliseconds of its own on top of its rows (measured:
/// 100,000 upserted rows took 960-1,130 ms of CPU to mark a thousand at a
/// time, 760-830 ms five thousand at a time), while marking five thousand
/// rows still takes far less than one call's latency, so the window stays
/// full meanwhile. A crash re-sends at most this many rows, as upserts.
const MARK_BATCH: usize = 5_000;
/// The same once every call has started.
const TAIL_MARK_BATCH: usize = 1_000;
/// Converted rows the pre-pass keeps for sending, so most pushes read each
/// row once; past this the rest are read again as they are sent.
const RETAIN_BYTES: usize = 64 << 20;
/// First key of the advisory lock that serialises pushes of one table.
const LOCK_SPACE: i32 = 0x5a4f_4850; // "ZOHP"

type PushResult = TableIterator<
    'static,
    (
        name!(mode, String),
        name!(pending, i64),
        name!(synced, i64),
        name!(failed, i64),
        name!(api_calls, i32),
        name!(credits, i32),
    ),
>;

#[pg_extern(
    volatile,
    sql = r#"
CREATE FUNCTION zoho_upsert_pending(
    source regclass, module text, key_field text DEFAULT NULL, sync_column name DEFAULT 'synced',
    mode text DEFAULT 'auto', mapping jsonb DEFAULT NULL, server name DEFAULT NULL, max_attempts int DEFAULT 3)
  RETURNS TABLE(mode text, pending bigint, synced bigint, failed bigint, api_calls int, credits int)
  VOLATILE LANGUAGE c AS 'MODULE_PATHNAME', 'zoho_upsert_pending_wrapper';
COMMENT ON FUNCTION zoho_upsert_pending(regclass, text, text, name, text, jsonb, name, int) IS
  'Push the rows of source whose sync column is false to a Zoho module, matched on key_field; marks them synced. A row Zoho rejects max_attempts times with the same values is not sent again until it changes or zoho_requeue(source)';
"#,
    requires = ["schedule_catalog"]
)]
fn zoho_upsert_pending(
    source: Option<pg_sys::Oid>,
    module: Option<&str>,
    key_field: Option<&str>,
    sync_column: Option<&CStr>,
    mode: Option<&str>,
    mapping: Option<JsonB>,
    server: Option<&CStr>,
    max_attempts: Option<i32>,
) -> PushResult {
    let required = |what: &str| ZohoFdwError::BadArgument { what: format!("{what} must not be NULL"), hint: None };
    let source = source.unwrap_or_else(|| raise(required("source")));
    let module = module.unwrap_or_else(|| raise(required("module")));
    let mode = match mode.unwrap_or("auto") {
        "auto" => Mode::Auto,
        "upsert" => Mode::Upsert,
        "bulk" => Mode::Bulk,
        other => raise(ZohoFdwError::BadArgument { what: format!("mode must be auto, upsert or bulk, not \"{other}\""), hint: None }),
    };
    let sync_column = sync_column.map(|c| c.to_string_lossy().into_owned()).unwrap_or_else(|| "synced".into());
    let server = server.map(|c| c.to_string_lossy().into_owned());
    let max_attempts = max_attempts.unwrap_or(3);
    if max_attempts < 1 {
        raise(ZohoFdwError::BadArgument { what: format!("max_attempts must be at least 1, not {max_attempts}"), hint: None });
    }
    let report = push(source, module, key_field, &sync_column, mode, mapping.as_ref().map(|j| &j.0), server.as_deref(), max_attempts).unwrap_or_else(|e| raise(e));
    TableIterator::once((report.mode, report.pending, report.synced, report.failed, report.api_calls, report.credits))
}

pub(crate) struct Report {
    pub mode: String,
    pub pending: i64,
    pub synced: i64,
    pub failed: i64,
    pub api_calls: i32,
    pub credits: i32,
}

/// A push's arguments: zoho_upsert_pending's, or a schedule's.
pub(crate) struct Request<'a> {
    pub source: pg_sys::Oid,
    pub module: &'a str,
    pub key_field: Option<&'a str>,
    pub sync_column: &'a str,
    pub mode: Mode,
    pub mapping: Option<&'a serde_json::Value>,
    pub server: Option<&'a str>,
    pub max_attempts: i32,
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn push(
    source: pg_sys::Oid,
    module: &str,
    key_field: Option<&str>,
    sync_column: &str,
    mode: Mode,
    mapping: Option<&serde_json::Value>,
    server: Option<&str>,
    max_attempts: i32,
) -> Result<Report, ZohoFdwError> {
    let req = Request { source, module, key_field, sync_column, mode, mapping, server, max_attempts };
    push_in_steps(&req, &mut InCaller)
}

pub(crate) fn push_in_steps(req: &Request<'_>, steps: &mut impl Steps) -> Result<Report, ZohoFdwError> {
    let (src, ctx, client) = steps.step(|_| {
        let src = SourceTable::load(req.source, req.sync_column)?;
        let ctx = server::resolve(req.server)?;
        let client = ctx.shared_client()?;
        Ok((src, ctx, client))
    })?;
    // The result's figures count the metadata read too.
    let before = client.usage().total();
    let fields = ctx.module_fields(&client, req.module, &format!("pushing {}", src.display))?;
    let session_lock = steps.commits();
    let cols = steps.step(|spi| {
        let cols = columns::build(&src, req.module, &fields, req.key_field, req.mapping)?;
        lock(spi, &src, session_lock)?;
        Ok(cols)
    })?;
    let result = send_pending(req, steps, &src, &ctx, &client, &cols, before);
    if session_lock {
        // Outside the owner's rights, which may be what failed the push: a
        // session lock left behind would block every later push of the table.
        let key = u32::from(src.oid) as i32;
        let unlocked = steps.plain(|spi| spi.update("SELECT pg_advisory_unlock($1, $2)", None, &[LOCK_SPACE.into(), key.into()]).map(|_| ()).map_err(spi_error));
        if let Err(e) = unlocked {
            warning!("zoho_fdw: releasing the push lock of {} failed ({e}); releasing every advisory lock of this session", src.display);
            steps.plain(|spi| spi.update("SELECT pg_advisory_unlock_all()", None, &[]).map(|_| ()).map_err(spi_error))?;
        }
    }
    result
}

fn send_pending(
    req: &Request<'_>,
    steps: &mut impl Steps,
    src: &SourceTable,
    ctx: &server::ServerContext,
    client: &zoho_api::ZohoClient,
    cols: &columns::PushColumns,
    before: zoho_api::usage::EndpointUsage,
) -> Result<Report, ZohoFdwError> {
    let (module, max_attempts) = (req.module, req.max_attempts);
    let query = read::pending_query(src, cols);
    let started = std::time::Instant::now();
    let (held, remembered, n, kept, complete, prepass) = steps.step(|spi| {
        let held = quarantine::load(spi, src.oid, max_attempts)?;
        let remembered = quarantine::any(spi, src.oid)?;
        // Every value is converted before the first row is sent, so a bad
        // one stops the push with nothing sent. The converted rows are
        // kept, up to RETAIN_BYTES, so that most pushes read each row once;
        // when all of them fit, they are also the count.
        let mut cursor = read::Cursor::open(&query, &[])?;
        let (mut kept, mut bytes, mut complete, mut read) = (Vec::new(), 0, true, 0u64);
        loop {
            // The keys' check names the rows a missing key stops.
            let rows = cursor.fetch(10_000, src, cols).map_err(|e| check_keys(spi, src, cols).err().unwrap_or(e))?;
            if rows.is_empty() {
                break;
            }
            read += rows.len() as u64;
            if bytes < RETAIN_BYTES {
                bytes += rows.iter().map(read::Pending::size).sum::<usize>();
                kept.extend(rows);
            } else {
                complete = false;
            }
        }
        cursor.close();
        let n = read.saturating_sub(held.len() as u64);
        // Keys the pre-pass read in full are checked as they are, in memory;
        // SQL checks the rest, and names the rows either way.
        if !(complete && text_keyed(cols) && unique_keys(&kept)) {
            check_keys(spi, src, cols)?;
        }
        Ok((held, remembered, n, kept, complete, started.elapsed()))
    })?;
    let plan = planner::plan(n, req.mode);
    // The rows pending when the push began, held ones included: rows that
    // become pending while it runs (each step sees them) wait for the next
    // push, so a busy table cannot keep one push going, past its plan.
    let limit = n as usize + held.len();
    if n > 0 {
        notice!(
            "zoho_fdw: pushing {n} pending row(s) of {} to {module}: {} bulk job(s) for {} row(s), {} upsert call(s) for {} row(s), at least {} credits",
            src.display,
            plan.bulk_jobs,
            plan.bulk_records,
            plan.upsert_calls,
            plan.upsert_records,
            plan.credits
        );
    }
    let mut rows = Source::new(&query, limit, &held, kept, complete);
    // Time waiting on Zoho, for the benchmark's local rows/s: the time
    // blocked on the calls less the CPU the futures took meanwhile on this
    // thread (building CSV and bodies, reading answers), which is local work.
    let mut remote = Duration::ZERO;
    let mut marking = Duration::ZERO;
    // Building and zipping the bulk jobs' CSV, inside their futures.
    let mut csv = Duration::ZERO;
    // CPU the backend's thread spent, beside the wall times: the gap is
    // time it waited for a core (the I/O thread, or a simulator on the
    // same machine) rather than work of its own.
    let (cpu_started, mut marking_cpu) = (thread_cpu(), Duration::ZERO);
    // Synced rows' keys are needed only to forget earlier rejections: a
    // row rejected by this push is not sent again by it.
    let mut tally = Tally { forget_synced: remembered, ..Tally::default() };
    let mut sent = 0u64;
    let mut used_bulk = false;
    let mut used_upsert = false;
    // One event loop for both APIs. Bulk jobs run one after another, each
    // marked as soon as it ends. Upsert calls run beside them as a sliding
    // window: a call starts as soon as any one ends, rows are read and
    // converted while calls are in flight, and outcomes are marked every
    // MARK_BATCH rows. The upsert part takes its share of the plan while
    // jobs are still to start, then whatever is left.
    let window = client.config().max_concurrency.max(1);
    let spec = &cols.spec;
    let mut flight: futures_util::stream::FuturesUnordered<std::pin::Pin<Box<dyn std::future::Future<Output = Done> + '_>>> = Default::default();
    let mut queue: std::collections::VecDeque<read::Pending> = std::collections::VecDeque::new();
    let mut answered = Outcomes::default();
    // A bulk job's outcomes, marked once the next job is on its way.
    let mut job_done: Option<Outcomes> = None;
    // Calls that ended while new ones were being sent.
    let mut ready: std::collections::VecDeque<Done> = std::collections::VecDeque::new();
    let mut failed: Option<ZohoFdwError> = None;
    let mut drained = false;
    let mut reported = 0u64;
    let (mut jobs_started, mut job_running, mut bulk_left) = (0u64, false, plan.bulk_records);
    let mut upsert_taken = 0u64;
    let mut upserts_in_flight = 0usize;
    if plan.bulk_jobs > 0 {
        // A failed read is the upload's to report: it reads again.
        flight.push(Box::pin(async move {
            let _ = client.zgid().await;
            Done::Warmed
        }));
        if let Some(done) = kick(&mut flight) {
            ready.push_back(done);
        }
    }
    loop {
        if failed.is_none() && !job_running && jobs_started < plan.bulk_jobs {
            let take = bulk_left.min(planner::BULK_BATCH);
            bulk_left -= take;
            jobs_started += 1;
            match rows.take(steps, take as usize, src, cols) {
                Ok(Some(batch)) if !batch.is_empty() => {
                    used_bulk = true;
                    job_running = true;
                    sent += batch.len() as u64;
                    let (refs, values) = split(batch);
                    let label = format!("{module} bulk job {jobs_started}/{} ({} rows)", plan.bulk_jobs, refs.len());
                    flight.push(Box::pin(async move {
                        let mut notices = crate::progress::JobNotices::new(label);
                        let mut progress = |j: &zoho_api::bulk_write::BulkWriteJob| notices.seen(&j.id, &j.status, matches!(j.status.as_str(), "COMPLETED" | "FAILED" | "FAILURE"));
                        let got = client.push_bulk(spec, &values, &mut progress).await;
                        Done::Bulk(refs, values, got)
                    }));
                }
                Ok(_) => {}
                Err(e) => failed = Some(e),
            }
        }
        // While a job is to run or running, one place stays free for its
        // calls (upload, create, status, download): they share the
        // transport's limit, and each one kept waiting for a place would
        // hold the job back by a whole upsert call.
        let places = if window > 1 && (job_running || jobs_started < plan.bulk_jobs) { window - 1 } else { window };
        while failed.is_none() && upserts_in_flight < places {
            let share = if jobs_started < plan.bulk_jobs { plan.upsert_records.saturating_sub(upsert_taken) } else { u64::MAX };
            if queue.len() < PUSH_CALL_ROWS && !drained && share > 0 {
                match rows.take(steps, READ_CHUNK.min(share.try_into().unwrap_or(usize::MAX)), src, cols) {
                    Ok(Some(more)) => {
                        upsert_taken += more.len() as u64;
                        queue.extend(more);
                    }
                    Ok(None) => drained = true,
                    Err(e) => failed = Some(e),
                }
                continue;
            }
            if queue.is_empty() {
                break;
            }
            let batch: Vec<read::Pending> = queue.drain(..queue.len().min(PUSH_CALL_ROWS)).collect();
            used_upsert = true;
            sent += batch.len() as u64;
            upserts_in_flight += 1;
            let (refs, values) = split(batch);
            flight.push(Box::pin(async move {
                let got = client.upsert_call(spec, &values).await;
                Done::Upsert(refs, values, got)
            }));
        }
        // Marking comes after the window is full again, and the new calls
        // are on their way first: their latency overlaps the SPI work.
        // Once no call is left to start, outcomes are marked a thousand at
        // a time beside the last calls, so little is left for after them.
        let tail = (drained || rows.exhausted()) && queue.is_empty();
        let mark_due = answered.len() >= MARK_BATCH || (tail && answered.len() >= TAIL_MARK_BATCH) || (upserts_in_flight == 0 && !answered.is_empty());
        if mark_due || job_done.is_some() {
            while let Some(done) = kick(&mut flight) {
                ready.push_back(done);
            }
            let (t, c) = (std::time::Instant::now(), thread_cpu());
            if let Some(outcomes) = job_done.take() {
                steps.step(|spi| tally.apply(spi, src, outcomes, max_attempts))?;
            }
            if mark_due {
                steps.step(|spi| tally.apply(spi, src, std::mem::take(&mut answered), max_attempts))?;
                if sent >= reported + 10_000 {
                    reported = sent - sent % 10_000;
                    notice!("zoho_fdw: {module}: {sent} of {n} row(s) sent");
                }
            }
            marking += t.elapsed();
            marking_cpu += thread_cpu().saturating_sub(c);
        }
        let done = match ready.pop_front() {
            Some(done) => done,
            None if flight.is_empty() => break,
            None => {
                let (t, c) = (std::time::Instant::now(), thread_cpu());
                let done = block_on(futures_util::StreamExt::next(&mut flight)).expect("a call is in flight");
                remote += t.elapsed().saturating_sub(thread_cpu().saturating_sub(c));
                done
            }
        };
        // The calls Zoho answered are recorded even when another failed
        // (when steps commit, they stay synced).
        match done {
            Done::Upsert(refs, values, got) => {
                upserts_in_flight -= 1;
                match got {
                    Ok(results) => answered.extend(outcomes_of(refs, &values, results, tally.forget_synced)?),
                    Err(e) => failed = failed.or(Some(ZohoFdwError::api(&ctx.name, e))),
                }
            }
            Done::Bulk(refs, values, got) => {
                job_running = false;
                match got {
                    Ok((results, report)) => {
                        csv += report.csv_time;
                        if report.fell_back {
                            notice!("zoho_fdw: {module} bulk job {} failed; its rows went through the Upsert API instead", report.job_ids.join(", "));
                            used_upsert = true;
                        }
                        job_done = Some(outcomes_of(refs, &values, results, tally.forget_synced)?);
                    }
                    Err(e) => failed = failed.or(Some(ZohoFdwError::api(&ctx.name, e))),
                }
            }
            Done::Warmed => {}
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    if tally.held > 0 {
        notice!(
            "zoho_fdw: {} row(s) of {} were rejected {max_attempts} time(s) with the same values and are not sent again until they change (zoho_requeue sends them again)",
            tally.held,
            src.display
        );
    }
    if tally.moved > 0 {
        notice!("zoho_fdw: {} row(s) of {} changed while their push was in flight; they stay pending and go out with the next push", tally.moved, src.display);
    }
    if let Some(first) = &tally.first_rejection {
        notice!(
            "zoho_fdw: Zoho rejected {} row(s) of {}; they stay pending{} (first: {first})",
            tally.rejected,
            src.display,
            if src.zoho_error.is_some() { " with the reason in zoho_error" } else { "" }
        );
    }
    let total = started.elapsed();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    debug1!(
        "zoho_fdw: push timing: rows={sent} local_ms={:.1} zoho_ms={:.1} checks_ms={:.1} mark_ms={:.1} csv_ms={:.1} cpu_ms={:.1} mark_cpu_ms={:.1}",
        ms(total.saturating_sub(remote)),
        ms(remote),
        ms(prepass),
        ms(marking),
        ms(csv),
        ms(thread_cpu().saturating_sub(cpu_started)),
        ms(marking_cpu)
    );
    let after = client.usage().total();
    Ok(Report {
        mode: match (used_bulk, used_upsert) {
            (true, true) => "bulk+upsert",
            (true, false) => "bulk",
            (false, true) => "upsert",
            (false, false) => "none",
        }
        .into(),
        pending: sent as i64,
        synced: tally.synced as i64,
        failed: tally.rejected as i64,
        // Every HTTP call made: retried and failed ones too.
        api_calls: ((after.calls + after.retries + after.errors) - (before.calls + before.retries + before.errors)) as i32,
        credits: (after.credits - before.credits) as i32,
    })
}

/// A call or job of a push, ended: its rows, their values and Zoho's answer.
enum Done {
    Upsert(Vec<RowRef>, Vec<PushRow>, Result<Vec<Outcome>, zoho_api::Error>),
    Bulk(Vec<RowRef>, Vec<PushRow>, Result<(Vec<Outcome>, zoho_api::push::BulkPushReport), zoho_api::Error>),
    /// The org read a bulk upload needs, made while the job's rows are read.
    Warmed,
}

/// The pending rows a push sends, each once: first the ones its pre-pass
/// kept, then (when it could not keep them all, or had none) the rest,
/// read from the table; held rows left out.
struct Source<'a> {
    query: &'a str,
    limit: usize,
    held: &'a std::collections::HashSet<quarantine::Fingerprint>,
    kept: std::vec::IntoIter<read::Pending>,
    /// Every pending row is among the kept ones.
    complete: bool,
    /// Rows taken so far.
    taken: usize,
    /// Their keys, which a read of the table skips (kept only when the
    /// table is read again).
    read_keys: Vec<String>,
}

impl<'a> Source<'a> {
    fn new(query: &'a str, limit: usize, held: &'a std::collections::HashSet<quarantine::Fingerprint>, kept: Vec<read::Pending>, complete: bool) -> Source<'a> {
        Source { query, limit, held, kept: kept.into_iter(), complete, taken: 0, read_keys: Vec::new() }
    }

    /// Every row the push set out to send has been taken.
    fn exhausted(&self) -> bool {
        self.taken >= self.limit
    }

    /// The next `take` rows (in a step of their own when read from the
    /// table); None when no pending row is left.
    fn take(&mut self, steps: &mut impl Steps, take: usize, src: &SourceTable, cols: &columns::PushColumns) -> Result<Option<Vec<read::Pending>>, ZohoFdwError> {
        let take = take.min(self.limit.saturating_sub(self.taken));
        if take == 0 {
            return Ok(None);
        }
        let mut rows: Vec<read::Pending> = self.kept.by_ref().take(take).collect();
        if rows.len() < take && !self.complete {
            let (query, read_keys, want) = (self.query, &self.read_keys, take - rows.len());
            let more = steps.step(|_| {
                let mut cursor = read::Cursor::open(query, read_keys)?;
                let rows = cursor.fetch(want, src, cols)?;
                cursor.close();
                Ok(rows)
            })?;
            rows.extend(more);
        }
        if rows.is_empty() {
            return Ok(None);
        }
        self.taken += rows.len();
        if !self.complete {
            self.read_keys.extend(rows.iter().map(|r| r.key.clone()));
        }
        Ok(Some(unheld(rows, self.held)))
    }
}

/// What a push's steps have recorded so far.
#[derive(Default)]
struct Tally {
    synced: u64,
    moved: u64,
    rejected: u64,
    held: i64,
    first_rejection: Option<String>,
    /// The table had rejections on record when the push began.
    forget_synced: bool,
}

impl Tally {
    /// Records one step's outcomes: synced rows marked, rejections stored,
    /// the quarantine brought up to date.
    fn apply(&mut self, spi: &mut pgrx::spi::SpiClient<'_>, src: &SourceTable, o: Outcomes, max_attempts: i32) -> Result<(), ZohoFdwError> {
        let synced = apply::mark_synced(spi, src, &o.synced)?;
        apply::record_rejections(spi, src, &o.rejected)?;
        self.held += quarantine::record(spi, src.oid, &o.rejected_prints, max_attempts)?;
        if self.forget_synced {
            quarantine::forget(spi, src.oid, &o.synced_keys)?;
        }
        self.synced += synced;
        self.moved += o.synced.len() as u64 - synced;
        self.rejected += o.rejected.len() as u64;
        if self.first_rejection.is_none() {
            self.first_rejection = o.rejected.first().map(|(_, e)| e.clone());
        }
        Ok(())
    }
}

/// Polls the calls once, which hands the new ones to their connections
/// (the runtime's worker sends them from there); a call found ended is
/// returned, to be taken before waiting again.
fn kick<'a>(flight: &mut futures_util::stream::FuturesUnordered<std::pin::Pin<Box<dyn std::future::Future<Output = Done> + 'a>>>) -> Option<Done> {
    use futures_util::StreamExt;
    block_on(std::future::poll_fn(|cx| std::task::Poll::Ready(match flight.poll_next_unpin(cx) {
        std::task::Poll::Ready(done) => done,
        std::task::Poll::Pending => None,
    })))
}

fn split(rows: Vec<read::Pending>) -> (Vec<RowRef>, Vec<PushRow>) {
    rows.into_iter().map(|r| (r.at, r.values)).unzip()
}

/// `"schema"."table"` of a table, for SQL. A relation that no longer
/// exists (a dropped table, a made-up regclass) reads as its OID, as
/// regclass prints it.
pub(crate) fn qualified_name(oid: pg_sys::Oid) -> String {
    let Some(name) = crate::privileges::rel_name(oid) else { return oid.to_u32().to_string() };
    // SAFETY: a catalog lookup returning a palloc'd name, or NULL when the
    // schema is gone (checked before reading).
    let schema = unsafe { pg_sys::get_namespace_name(pg_sys::get_rel_namespace(oid)) };
    if schema.is_null() {
        return oid.to_u32().to_string();
    }
    // SAFETY: non-null (checked) and NUL-terminated.
    let schema = unsafe { CStr::from_ptr(schema) }.to_string_lossy().into_owned();
    format!("{}.{}", crate::local::quote_ident(&schema), crate::local::quote_ident(&name))
}

fn spi_error(e: pgrx::spi::SpiError) -> ZohoFdwError {
    ZohoFdwError::Internal(format!("reading pending rows: {e}"))
}

/// Fingerprints are taken only of rejected rows; a synced row needs its key.
fn outcomes_of(refs: Vec<RowRef>, values: &[PushRow], results: Vec<Outcome>, keys: bool) -> Result<Outcomes, ZohoFdwError> {
    let mut outcomes = Outcomes::default();
    for ((r, row), o) in refs.into_iter().zip(values).zip(results) {
        match o {
            Outcome::Synced { id, modified_time } => {
                let id: u64 = id.parse().map_err(|_| ZohoFdwError::Internal(format!("Zoho returned record id {id:?}, which is not a number")))?;
                outcomes.synced.push((r, id, modified_time));
                if keys {
                    outcomes.synced_keys.push(quarantine::key_of(row));
                }
            }
            Outcome::Rejected(e) => {
                outcomes.rejected_prints.push((quarantine::fingerprint(row), e.clone()));
                outcomes.rejected.push((r, e));
            }
        }
    }
    Ok(outcomes)
}

/// The rows not held back by [`quarantine`].
fn unheld(rows: Vec<read::Pending>, held: &std::collections::HashSet<quarantine::Fingerprint>) -> Vec<read::Pending> {
    if held.is_empty() {
        return rows;
    }
    rows.into_iter().filter(|r| !held.contains(&quarantine::fingerprint(&r.values))).collect()
}

/// One push per table at a time. A second waits for the first to commit
/// and then sees its rows synced. Under REPEATABLE READ it could not see
/// them, and would send them again, so there it gives up instead of waiting.
/// A push whose steps commit holds the lock for its session, until it ends.
fn lock(spi: &mut pgrx::spi::SpiClient<'_>, src: &SourceTable, session: bool) -> Result<(), ZohoFdwError> {
    let key = u32::from(src.oid) as i32;
    let (try_lock, wait) = if session {
        ("SELECT pg_try_advisory_lock($1, $2)", "SELECT pg_advisory_lock($1, $2)")
    } else {
        ("SELECT pg_try_advisory_xact_lock($1, $2)", "SELECT pg_advisory_xact_lock($1, $2)")
    };
    let got = spi
        .select(try_lock, None, &[LOCK_SPACE.into(), key.into()])
        .and_then(|t| t.first().get_one::<bool>())
        .map_err(spi_error)?
        .unwrap_or(false);
    if got {
        return Ok(());
    }
    // SAFETY: a plain read of the transaction's isolation level.
    if unsafe { pg_sys::XactIsoLevel } >= pg_sys::XACT_REPEATABLE_READ as i32 {
        return Err(ZohoFdwError::BadArgument {
            what: format!("another zoho_upsert_pending is pushing {} now", src.display),
            hint: Some("Retry when it has finished; in READ COMMITTED a push waits for the other instead.".into()),
        });
    }
    notice!("zoho_fdw: waiting for another zoho_upsert_pending on {} to finish", src.display);
    spi.update(wait, None, &[LOCK_SPACE.into(), key.into()]).map_err(spi_error)?;
    Ok(())
}

/// CPU time of the calling thread so far.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant
    // every Linux kernel knows.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Key columns whose text form is equal exactly when their values are.
fn text_keyed(cols: &columns::PushColumns) -> bool {
    let key = &cols.columns[0].local;
    key.deterministic && matches!(key.type_oid, pg_sys::TEXTOID | pg_sys::VARCHAROID | pg_sys::INT2OID | pg_sys::INT4OID | pg_sys::INT8OID | pg_sys::UUIDOID)
}

fn unique_keys(rows: &[read::Pending]) -> bool {
    let mut seen = std::collections::HashSet::with_capacity(rows.len());
    rows.iter().all(|r| seen.insert(r.key.as_str()))
}

/// Zoho matches rows on the key: two pending rows with one key would write
/// one record twice, and a row without a key cannot be matched at all.
fn check_keys(spi: &mut pgrx::spi::SpiClient<'_>, src: &SourceTable, cols: &columns::PushColumns) -> Result<(), ZohoFdwError> {
    let key = &cols.columns[0].local;
    let sql = format!(
        "SELECT {k}::text, count(*) FROM {t} WHERE NOT {s} GROUP BY {k} HAVING count(*) > 1 OR {k} IS NULL LIMIT 1",
        k = key.quoted(),
        t = src.sql_name,
        s = src.sync.quoted()
    );
    let row = spi.select(sql.as_str(), None, &[]).map_err(spi_error)?;
    if row.is_empty() {
        return Ok(());
    }
    let (value, count) = row.first().get_two::<String, i64>().map_err(spi_error)?;
    let what = match value {
        None => format!("{} pending row(s) have no value in key column {} ({}), so Zoho cannot match them", count.unwrap_or(0), key.name, cols.spec.fields[0].api_name),
        Some(v) => format!("{} pending rows share the key {} = '{v}'; Zoho would write one record twice", count.unwrap_or(0), key.name),
    };
    Err(ZohoFdwError::BadRow { table: src.display.clone(), what })
}
