//! The background worker (`shared_preload_libraries = 'zoho_fdw'`): in the
//! database `zoho_fdw.database` it keeps every channel made by zoho_watch
//! alive and its table current.
//!
//! - [`listener`] receives Zoho's callbacks on `zoho_fdw.webhook_listen`,
//!   checks channel and token, and queues them;
//! - the main loop applies queued notifications (records re-read by id,
//!   100 a call, newer `Modified_Time` wins; deletes delete);
//! - [`channels`] renews channels before they expire (re-enabling lapsed
//!   ones) and catches up from each channel's `synced_until` after any gap
//!   (records modified since, and deleted records): at start, after a lapse,
//!   and every `zoho_fdw.catchup_interval`.
//!
//! - [`schedules`] runs scheduled pushes (zoho.push_schedules), [`pulls`]
//!   scheduled pulls, and [`drift`] follows the fields a pulled module
//!   gains, loses or retypes in Zoho.
//!
//! Every unit of work runs in its own transaction; a failure is logged and
//! recorded on the channel (`zoho.channels.last_error`) and retried, never
//! fatal. State lives in the catalog, so a restarted worker (after its own
//! crash or PostgreSQL's restart) picks up where it was.

pub(crate) mod apply;
mod catchup;
mod drift;
mod channels;
mod jobs;
mod listener;
mod metrics;
mod pulls;
mod schedules;
mod supervise;
pub(crate) mod strays;
mod usage;
mod verifies;
pub(crate) mod wake;

use std::time::Duration;

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::prelude::*;

use crate::error::ZohoFdwError;
use crate::gucs;

pub fn register() {
    // SAFETY: a plain read of a flag PostgreSQL sets while preloading.
    if unsafe { !pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    BackgroundWorkerBuilder::new("zoho_fdw worker")
        .set_type("zoho_fdw worker")
        .set_library("zoho_fdw")
        .set_function("zoho_fdw_worker_main")
        .enable_spi_access()
        .set_restart_time(Some(Duration::from_secs(2)))
        .load();
}

const fn libc_sigterm() -> i32 {
    15
}

extern "C-unwind" {
    /// PostgreSQL's SIGTERM handler for backends (tcop/postgres.c), as a
    /// plain C function: pgrx binds it only behind a Rust wrapper.
    #[link_name = "die"]
    fn backend_die(signal: std::ffi::c_int);
}

/// An SPI result as the worker's error.
pub(crate) fn spi<T>(r: Result<T, pgrx::spi::SpiError>) -> Result<T, ZohoFdwError> {
    Ok(r?)
}

/// Seconds since the epoch, as `to_timestamp()` takes and
/// `extract(epoch FROM …)` gives them.
pub(crate) fn epoch_secs(t: chrono::DateTime<chrono::Utc>) -> f64 {
    t.timestamp_micros() as f64 / 1e6
}

pub(crate) fn from_epoch_secs(secs: f64) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp_micros((secs * 1e6) as i64)
}

/// A failure that repeats every tick (e.g. the extension is not created
/// in the worker's database yet) is said once, until it changes.
#[derive(Default)]
pub(crate) struct WarnOnce(Option<String>);

impl WarnOnce {
    pub fn ok(&mut self) {
        self.0 = None;
    }

    pub fn warn(&mut self, what: &str, e: String) {
        if self.0.as_ref() != Some(&e) {
            warning!("zoho_fdw worker: {what}: {e}");
            self.0 = Some(e);
        }
    }
}

/// Runs `f` in a transaction of its own; any error (a PostgreSQL ERROR
/// included) rolls it back and comes back as text.
pub(crate) fn in_transaction<R>(f: impl FnOnce() -> Result<R, ZohoFdwError>) -> Result<R, String> {
    // SAFETY: only the background workers call this, between transactions: it
    // starts one, with a snapshot that the commit below pops (an abort drops it).
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    let result = PgTryBuilder::new(std::panic::AssertUnwindSafe(|| {
        // Before any statement: no database's or role's search_path applies.
        crate::privileges::pin_session();
        f().map_err(|e| e.to_string())
    }))
        .catch_others(|e| {
            Err(match e {
                pg_sys::panic::CaughtError::PostgresError(r) | pg_sys::panic::CaughtError::ErrorReport(r) | pg_sys::panic::CaughtError::RustPanic { ereport: r, .. } => r.message().to_string(),
            })
        })
        .execute();
    // SAFETY: ends the transaction started above: its snapshot popped before the
    // commit, or dropped by the abort.
    unsafe {
        match &result {
            Ok(_) => {
                pg_sys::PopActiveSnapshot();
                pg_sys::CommitTransactionCommand();
            }
            Err(_) => pg_sys::AbortCurrentTransaction(),
        }
    }
    result
}

/// A flow's steps ([`crate::steps`]), each in a transaction of its own as
/// the flow's owner, its privileges on `rel` checked again each time.
pub(crate) struct OwnTransactions {
    pub owner: pg_sys::Oid,
    pub rel: Option<(pg_sys::Oid, crate::privileges::Access)>,
}

impl crate::steps::Steps for OwnTransactions {
    fn step<R>(&mut self, f: impl FnOnce(&mut pgrx::spi::SpiClient<'_>) -> Result<R, ZohoFdwError>) -> Result<R, ZohoFdwError> {
        let (owner, rel) = (self.owner, self.rel);
        in_transaction(|| crate::privileges::as_owner(owner, rel, crate::privileges::Limits::from_gucs(), || Spi::connect_mut(f))).map_err(ZohoFdwError::Internal)
    }
    fn plain<R>(&mut self, f: impl FnOnce(&mut pgrx::spi::SpiClient<'_>) -> Result<R, ZohoFdwError>) -> Result<R, ZohoFdwError> {
        in_transaction(|| Spi::connect_mut(f)).map_err(ZohoFdwError::Internal)
    }
    fn commits(&self) -> bool {
        true
    }
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn zoho_fdw_worker_main(_arg: pg_sys::Datum) {
    crate::progress::on_backend_thread();
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP);
    // SIGTERM as in any backend: it sets ProcDiePending, which stops a
    // Zoho call within ~50 ms (the cancel hook reads it), and the next
    // CHECK_FOR_INTERRUPTS exits. Shutdown never waits on Zoho.
    // SAFETY: PostgreSQL's own SIGTERM handler for backends, installed as a
    // backend installs it, before this process does anything else.
    unsafe {
        pg_sys::pqsignal(libc_sigterm(), Some(backend_die));
    }
    let Some(db) = gucs::database() else {
        log!("zoho_fdw worker: zoho_fdw.database is not set; waiting");
        while BackgroundWorker::wait_latch(Some(Duration::from_secs(5))) {
            pg_sys::check_for_interrupts!();
            if BackgroundWorker::sighup_received() {
                // SAFETY: rereads the configuration after SIGHUP, between
                // transactions, as a backend's main loop does.
                unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
                if gucs::database().is_some() {
                    // Restarted by the postmaster, connected to it.
                    // SAFETY: exits the process (the postmaster restarts it);
                    // no Rust state needs unwinding.
                    unsafe { pg_sys::proc_exit(1) };
                }
            }
        }
        return;
    };
    BackgroundWorker::connect_worker_to_spi(Some(&db), None);
    wake::set_worker_latch();
    let mut worker = channels::Worker::start();
    let mut schedules = schedules::Schedules::default();
    let mut pulls = pulls::Pulls::default();
    let mut verifies = verifies::Verifies::default();
    let mut jobs = jobs::Runner::default();
    let mut usage = usage::Flusher::default();
    log!("zoho_fdw worker: started in database {db}{}", worker.listening().map(|a| format!(", webhook listener on {a}")).unwrap_or_default());
    while BackgroundWorker::wait_latch(Some(Duration::from_millis(50))) {
        pg_sys::check_for_interrupts!();
        if BackgroundWorker::sighup_received() {
            // SAFETY: rereads the configuration after SIGHUP, between
            // transactions, as a backend's main loop does.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
            if gucs::database().as_deref() != Some(db.as_str()) {
                log!("zoho_fdw worker: zoho_fdw.database changed; restarting");
                worker.stop_listening();
                // SAFETY: exits the process (the postmaster restarts it); the
                // listener was stopped just above.
                unsafe { pg_sys::proc_exit(1) };
            }
        }
        worker.tick();
        schedules.run_due(wake::take_pushes(), &mut usage);
        pulls.run_due(&mut usage);
        verifies.run_due(&mut usage);
        jobs.run_due(&db);
        usage.run_due();
    }
    worker.stop_listening();
    log!("zoho_fdw worker: stopping");
}

/// How far back a sync point is set from Zoho's time: `Date` has whole
/// seconds, and a write may land in Zoho a moment after its Modified_Time.
pub(crate) fn sync_overlap() -> chrono::Duration {
    chrono::Duration::seconds(5)
}
