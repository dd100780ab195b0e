//! Progress NOTICEs for bulk jobs: the job's creation, its end, and while
//! it runs a line a minute, so a DBA waiting on a long job sees it move
//! without a line per poll (and test output does not depend on timing).

use std::time::{Duration, Instant};

use pgrx::prelude::*;

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
