//! Progress NOTICEs for bulk jobs: the job's creation, its end, and while
//! it runs a line a minute, so a DBA waiting on a long job sees it move
//! without a line per poll (and test output does not depend on timing).

use std::cell::Cell;
use std::ffi::CString;
use std::time::{Duration, Instant};

use pgrx::prelude::*;

thread_local! {
    static REPORTING: Cell<bool> = const { Cell::new(false) };
    /// Set on the backend's own thread, the only one that may ereport.
    static BACKEND_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calling thread as the backend's (from _PG_init and the
/// workers' entry points).
pub fn on_backend_thread() {
    BACKEND_THREAD.set(true);
}

/// A wait for one of Zoho's windows, as a NOTICE (the client calls this
/// from the backend thread, where the async runtime runs).
pub fn waiting(what: &str) {
    if BACKEND_THREAD.get() {
        notice!("zoho_fdw: {what}");
        activity(&format!("zoho_fdw: {what}"));
    }
}

/// Progress also goes to this backend's pg_stat_activity entry (the
/// worker's job runner, whose jobs zoho.jobs shows); a user's backend
/// keeps showing the user's statement.
pub fn report_activity(on: bool) {
    REPORTING.set(on);
}

pub fn activity(text: &str) {
    if REPORTING.get() {
        if let Ok(c) = CString::new(text) {
            // SAFETY: `c` is NUL-terminated and outlives the call, which copies
            // it into this backend's pg_stat_activity entry; REPORTING is set
            // on the backend thread only.
            unsafe { pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_RUNNING, c.as_ptr()) };
        }
    }
}

const EVERY: Duration = Duration::from_secs(60);

pub struct JobNotices {
    label: String,
    started: Instant,
    last: Option<Instant>,
}

impl JobNotices {
    pub fn new(label: String) -> JobNotices {
        JobNotices { label, started: Instant::now(), last: None }
    }

    /// Call with each status read.
    pub fn seen(&mut self, job_id: &str, state: &str, finished: bool) {
        activity(&format!("{}: Zoho job {job_id} {state} after {} s", self.label, self.started.elapsed().as_secs()));
        if self.last.is_none() {
            notice!("zoho_fdw: {}: job {job_id} created", self.label);
            self.last = Some(Instant::now());
        }
        if finished {
            notice!("zoho_fdw: {}: job {job_id} {state}", self.label);
        } else if self.last.is_some_and(|t| t.elapsed() >= EVERY) {
            notice!("zoho_fdw: {}: job {job_id} {state} after {} s", self.label, self.started.elapsed().as_secs());
            self.last = Some(Instant::now());
        }
    }
}
