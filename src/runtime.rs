//! The backend's async runtime. Postgres backends are single-threaded and
//! forked from the postmaster, so the runtime is created lazily in the
//! backend (never before fork) and every wait runs on the backend thread,
//! where the cancel hook may read Postgres' interrupt flags.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use pgrx::pg_sys;
use zoho_api::CancelHook;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("zoho_fdw: cannot start the async runtime")
    })
}

/// Runs `fut` to completion on the backend thread.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    runtime().block_on(fut)
}

/// True once the user cancelled, `statement_timeout` fired or the backend
/// is asked to exit; the client then stops waiting within ~50 ms and the
/// caller lets Postgres raise its own error.
pub fn cancel_hook() -> CancelHook {
    Arc::new(|| unsafe { pg_sys::QueryCancelPending != 0 || pg_sys::ProcDiePending != 0 })
}
