//! The backend's async runtime. Postgres backends are single-threaded and
//! forked from the postmaster, so the runtime is created lazily in the
//! backend (never before fork) and every wait runs on the backend thread,
//! where the cancel hook may read Postgres' interrupt flags.
//!
//! One worker thread drives the sockets: a call handed to a connection
//! goes out and its answer comes in while the backend thread does SPI work
//! between waits (a push marks rows while its next calls are in flight).
//! The futures themselves, token reads included, are only ever polled on
//! the backend thread, inside [`block_on`]. The worker never calls into
//! Postgres and blocks every signal, so they all reach the backend thread.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use pgrx::pg_sys;
use zoho_api::CancelHook;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("zoho-fdw-io")
            .on_thread_start(block_signals)
            .enable_all()
            .build()
            .expect("zoho_fdw: cannot start the async runtime")
    })
}

/// Postgres' handlers expect to run on the backend thread.
fn block_signals() {
    // SAFETY: a zeroed sigset_t is valid storage that sigfillset fills;
    // pthread_sigmask changes only the calling (new, runtime) thread.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
    }
}

/// Runs `fut` to completion on the backend thread. Meanwhile the backend
/// shows in pg_stat_activity as waiting (wait_event_type `Extension`), as
/// postgres_fdw's do on their remote server.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    /// pgstat_report_wait_start / _end, which are inline in C: the event
    /// goes into the word my_wait_event_info points to. The word before is
    /// put back on the way out, also when the future unwinds.
    struct Waiting(u32);
    impl Drop for Waiting {
        fn drop(&mut self) {
            // SAFETY: my_wait_event_info always points to a valid word (this
            // backend's PGPROC entry, or a local one before it has one).
            unsafe { std::ptr::write_volatile(pg_sys::my_wait_event_info, self.0) };
        }
    }
    // SAFETY: as in Drop above; only the backend thread runs block_on.
    let _waiting = unsafe {
        let before = std::ptr::read_volatile(pg_sys::my_wait_event_info);
        std::ptr::write_volatile(pg_sys::my_wait_event_info, pg_sys::PG_WAIT_EXTENSION);
        Waiting(before)
    };
    runtime().block_on(fut)
}

/// True once the user cancelled, `statement_timeout` fired or the backend
/// is asked to exit; the client then stops waiting within ~50 ms and the
/// caller lets Postgres raise its own error.
pub fn cancel_hook() -> CancelHook {
    // SAFETY: plain reads of two flags PostgreSQL's signal handlers set; the hook
    // is polled by futures that block_on runs on the backend thread.
    Arc::new(|| unsafe { pg_sys::QueryCancelPending != 0 || pg_sys::ProcDiePending != 0 })
}
