//! Waiting for a bulk job to finish (zoho-api.md §7.2, §8.4). Zoho POSTs
//! a job's details to its `callback` URL when it ends; when the caller can
//! receive that ([`JobCallbacks`]), the wait ends on it and the status is
//! read once. Otherwise status reads follow a schedule that starts fast and
//! grows with the time waited, so a job ending at T is seen by about
//! T + 10 %. A callback only wakes the wait: its body is never trusted (the
//! status read says whether the job is done and where its result is).

use std::time::Duration;

use crate::cancel::Cancel;
use crate::error::Result;
use crate::http::PollPolicy;

/// Where Zoho may announce that a job ended.
pub trait JobCallbacks: Send + Sync {
    /// A callback for one job, or None when none can be received now (no
    /// listener, or every place taken).
    fn register(&self) -> Option<Box<dyn JobCallback>>;
}

/// One job's callback; dropping it gives its place back.
pub trait JobCallback: Send {
    /// The URL to put in the job's `callback`.
    fn url(&self) -> &str;
    /// True once for each callback that arrived since the last call.
    fn take(&self) -> bool;
}

/// How often a waiting job is polled while its callback is also awaited: a
/// lost callback costs at most a slower wait, not a stuck one.
const SAFETY_NET: Duration = Duration::from_secs(5);
/// How often an awaited callback is looked for.
const CALLBACK_TICK: Duration = Duration::from_millis(5);
/// How often a wait without status reads tells its caller it goes on.
const STILL_WAITING: Duration = Duration::from_secs(1);

/// The state a job's progress shows while its callback is awaited (no
/// status is read then, so Zoho's own state is not known).
pub const AWAITING_CALLBACK: &str = "awaiting its callback";

impl PollPolicy {
    /// The wait before the next status read, `elapsed` after the job was
    /// created: a tenth of the time waited, between `initial` and
    /// `max_interval`; with a callback, a safety net that doubles.
    pub fn next_wait(&self, elapsed: Duration, with_callback: bool) -> Duration {
        let wait = if with_callback { SAFETY_NET.max(elapsed) } else { self.initial.max(elapsed / 10) };
        wait.min(self.max_interval)
    }
}

/// Sleeps `d`, or less when the callback arrives first; `waiting` is told
/// at once and every second while a callback is awaited.
pub(crate) async fn sleep_or_callback(cancel: &Cancel, d: Duration, callback: Option<&dyn JobCallback>, waiting: &mut dyn FnMut()) -> Result<()> {
    let Some(cb) = callback else { return cancel.sleep(d).await };
    let until = tokio::time::Instant::now() + d;
    let mut told: Option<tokio::time::Instant> = None;
    loop {
        if cb.take() {
            return Ok(());
        }
        let now = tokio::time::Instant::now();
        if now >= until {
            return Ok(());
        }
        if told.is_none_or(|t| now - t >= STILL_WAITING) {
            waiting();
            told = Some(now);
        }
        cancel.sleep(CALLBACK_TICK.min(until - now)).await?;
    }
}

/// The job's `callback` member for a create body.
pub(crate) fn callback_json(callback: Option<&dyn JobCallback>) -> Option<serde_json::Value> {
    callback.map(|cb| serde_json::json!({ "url": cb.url(), "method": "post" }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_grow_with_the_wait_so_the_end_is_seen_within_a_tenth() {
        let p = PollPolicy { initial: Duration::from_millis(100), max_interval: Duration::from_secs(30), timeout: Duration::from_secs(3600) };
        assert_eq!(p.next_wait(Duration::ZERO, false), Duration::from_millis(100));
        assert_eq!(p.next_wait(Duration::from_secs(10), false), Duration::from_secs(1));
        assert_eq!(p.next_wait(Duration::from_secs(3000), false), Duration::from_secs(30));
        // A job ending at any T between polls is seen by 1.1 T (past the floor).
        let mut t = Duration::ZERO;
        let mut polls = vec![];
        while t < Duration::from_secs(120) {
            t += p.next_wait(t, false);
            polls.push(t);
        }
        for w in polls.windows(2).filter(|w| w[0] >= Duration::from_secs(1)) {
            assert!(w[1].as_secs_f64() <= w[0].as_secs_f64() * 1.1 + 1e-9, "{:?} then {:?}", w[0], w[1]);
        }
        // With a callback the polls are a sparse safety net.
        assert_eq!(p.next_wait(Duration::ZERO, true), Duration::from_secs(5));
        assert_eq!(p.next_wait(Duration::from_secs(8), true), Duration::from_secs(8));
    }

    struct Once(std::sync::atomic::AtomicBool);
    impl JobCallback for Once {
        fn url(&self) -> &str {
            "http://listener/zoho?zoho_fdw_job=1"
        }
        fn take(&self) -> bool {
            self.0.swap(false, std::sync::atomic::Ordering::SeqCst)
        }
    }

    #[tokio::test]
    async fn a_callback_ends_the_sleep_early_and_only_once() {
        let cb = Once(std::sync::atomic::AtomicBool::new(true));
        let started = tokio::time::Instant::now();
        let mut told = 0;
        sleep_or_callback(&Cancel::never(), Duration::from_secs(5), Some(&cb), &mut || told += 1).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(told, 0, "arrived before anything was awaited");
        let started = tokio::time::Instant::now();
        sleep_or_callback(&Cancel::never(), Duration::from_millis(1_100), Some(&cb), &mut || told += 1).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(1_100), "taken once: the second sleep runs its length");
        assert_eq!(told, 2, "told at once and after a second");
        assert_eq!(callback_json(Some(&cb)).unwrap(), serde_json::json!({"url": "http://listener/zoho?zoho_fdw_job=1", "method": "post"}));
    }
}
