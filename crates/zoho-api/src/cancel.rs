//! Waiting that the caller can interrupt. Postgres checks for query cancel
//! and `statement_timeout` only when we let it, so every wait in this crate
//! polls the caller's hook often enough to stop within about a second.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};

/// Returns true when the caller wants the current operation abandoned.
pub type CancelHook = Arc<dyn Fn() -> bool + Send + Sync>;

/// How often a wait looks at the cancel hook.
const POLL: Duration = Duration::from_millis(50);

#[derive(Clone, Default)]
pub struct Cancel(Option<CancelHook>);

impl Cancel {
    pub fn new(hook: Option<CancelHook>) -> Cancel {
        Cancel(hook)
    }

    pub fn never() -> Cancel {
        Cancel(None)
    }

    pub fn requested(&self) -> bool {
        self.0.as_ref().is_some_and(|h| h())
    }

    pub fn check(&self) -> Result<()> {
        if self.requested() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Runs `fut` until it finishes, `timeout` passes, or cancel is requested.
    pub async fn run<F: Future>(&self, endpoint: &str, timeout: Duration, fut: F) -> Result<F::Output> {
        self.check()?;
        let deadline = tokio::time::Instant::now() + timeout;
        tokio::pin!(fut);
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                out = &mut fut => return Ok(out),
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(Error::Timeout { endpoint: endpoint.to_string(), after: timeout });
                }
                _ = tick.tick() => self.check()?,
            }
        }
    }

    /// Sleeps for `d` unless cancelled first.
    pub async fn sleep(&self, d: Duration) -> Result<()> {
        match self.run("wait", d + Duration::from_secs(1), tokio::time::sleep(d)).await {
            Ok(()) => Ok(()),
            Err(Error::Timeout { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Cancel(hook)" } else { "Cancel(never)" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;

    #[tokio::test]
    async fn cancel_interrupts_a_long_wait_quickly() {
        let flag = Arc::new(AtomicBool::new(false));
        let f2 = flag.clone();
        let cancel = Cancel::new(Some(Arc::new(move || f2.load(Ordering::SeqCst))));
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            flag.store(true, Ordering::SeqCst);
        });
        let start = Instant::now();
        let err = cancel.sleep(Duration::from_secs(30)).await.unwrap_err();
        assert!(matches!(err, Error::Cancelled));
        assert!(start.elapsed() < Duration::from_secs(1), "{:?}", start.elapsed());
    }

    #[tokio::test]
    async fn run_times_out() {
        let err = Cancel::never()
            .run("x", Duration::from_millis(50), tokio::time::sleep(Duration::from_secs(5)))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
    }
}
