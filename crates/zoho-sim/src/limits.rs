//! Concurrency and sub-concurrency limits (zoho-api.md §12.2): counters of
//! calls in flight; a call over either limit is answered 429.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Debug, Default)]
pub struct Limits {
    pub in_flight: AtomicUsize,
    pub sub_in_flight: AtomicUsize,
}

/// Holds a slot until dropped.
pub struct Slot {
    limits: Arc<crate::state::App>,
    sub: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.limits.limits.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.sub {
            self.limits.limits.sub_in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Takes a slot, or `None` when the concurrency (or, for `sub` calls, the
/// sub-concurrency) limit is already reached.
pub fn acquire(app: &Arc<crate::state::App>, sub: bool) -> Option<Slot> {
    let l = &app.limits;
    if l.in_flight.fetch_add(1, Ordering::SeqCst) >= app.cfg.concurrency {
        l.in_flight.fetch_sub(1, Ordering::SeqCst);
        return None;
    }
    if sub && l.sub_in_flight.fetch_add(1, Ordering::SeqCst) >= app.cfg.sub_concurrency {
        l.sub_in_flight.fetch_sub(1, Ordering::SeqCst);
        l.in_flight.fetch_sub(1, Ordering::SeqCst);
        return None;
    }
    Some(Slot { limits: app.clone(), sub })
}
