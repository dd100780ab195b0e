//! Counters of calls and credits by endpoint, so callers (EXPLAIN, the
//! `zoho.api_usage` view, benchmarks) can say what a piece of work cost.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointUsage {
    pub calls: u64,
    pub credits: u64,
    /// Attempts that were retried (429, 5xx, dropped connections, token refresh).
    pub retries: u64,
    pub errors: u64,
}

/// Somewhere else every call is also counted (the extension's shared
/// memory, so usage survives the client and is seen by every backend).
/// Called on the thread that made the call: it must not block.
pub trait UsageSink: Send + Sync {
    fn record(&self, endpoint: &str, delta: &EndpointUsage);
}

#[derive(Default)]
pub struct Usage {
    by_endpoint: Mutex<BTreeMap<String, EndpointUsage>>,
    /// `X-API-CREDITS-REMAINING`, which Zoho sends once half the budget is used.
    credits_remaining: Mutex<Option<u64>>,
    sink: Option<Arc<dyn UsageSink>>,
}

impl std::fmt::Debug for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Usage").field("by_endpoint", &self.by_endpoint).finish_non_exhaustive()
    }
}

impl Usage {
    pub fn with_sink(sink: Option<Arc<dyn UsageSink>>) -> Usage {
        Usage { sink, ..Usage::default() }
    }

    fn add(&self, endpoint: &str, delta: EndpointUsage) {
        {
            let mut map = self.by_endpoint.lock().unwrap();
            let e = map.entry(endpoint.to_string()).or_default();
            e.calls += delta.calls;
            e.credits += delta.credits;
            e.retries += delta.retries;
            e.errors += delta.errors;
        }
        if let Some(sink) = &self.sink {
            sink.record(endpoint, &delta);
        }
    }

    pub(crate) fn call(&self, endpoint: &str, credits: u32) {
        self.add(endpoint, EndpointUsage { calls: 1, credits: u64::from(credits), ..Default::default() });
    }

    pub(crate) fn retry(&self, endpoint: &str) {
        self.add(endpoint, EndpointUsage { retries: 1, ..Default::default() });
    }

    pub(crate) fn error(&self, endpoint: &str) {
        self.add(endpoint, EndpointUsage { errors: 1, ..Default::default() });
    }

    pub(crate) fn set_remaining(&self, remaining: u64) {
        *self.credits_remaining.lock().unwrap() = Some(remaining);
    }

    pub fn snapshot(&self) -> BTreeMap<String, EndpointUsage> {
        self.by_endpoint.lock().unwrap().clone()
    }

    pub fn total(&self) -> EndpointUsage {
        self.snapshot().values().fold(EndpointUsage::default(), |mut acc, e| {
            acc.calls += e.calls;
            acc.credits += e.credits;
            acc.retries += e.retries;
            acc.errors += e.errors;
            acc
        })
    }

    pub fn credits_remaining(&self) -> Option<u64> {
        *self.credits_remaining.lock().unwrap()
    }

    pub fn reset(&self) {
        self.by_endpoint.lock().unwrap().clear();
    }
}

/// Credits for a write of `records` records: 1 per 10 (zoho-api.md §12.1).
pub fn write_credits(records: usize) -> u32 {
    records.div_ceil(10).max(1) as u32
}

/// Credits for a COQL call by its LIMIT.
pub fn coql_credits(limit: usize) -> u32 {
    match limit {
        0..=200 => 1,
        201..=1000 => 2,
        _ => 3,
    }
}

pub const BULK_READ_JOB_CREDITS: u32 = 50;
pub const BULK_WRITE_JOB_CREDITS: u32 = 500;
pub const DELETED_RECORDS_CREDITS: u32 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_table() {
        assert_eq!(write_credits(1), 1);
        assert_eq!(write_credits(10), 1);
        assert_eq!(write_credits(11), 2);
        assert_eq!(write_credits(100), 10);
        assert_eq!((coql_credits(200), coql_credits(201), coql_credits(1000), coql_credits(2000)), (1, 2, 2, 3));
    }

    #[test]
    fn counts_by_endpoint() {
        let u = Usage::default();
        u.call("coql", 3);
        u.call("coql", 1);
        u.retry("coql");
        u.call("records.insert", 10);
        let s = u.snapshot();
        assert_eq!(s["coql"], EndpointUsage { calls: 2, credits: 4, retries: 1, errors: 0 });
        assert_eq!(u.total().credits, 14);
    }

    #[test]
    fn forwards_every_count_to_the_sink() {
        #[derive(Default)]
        struct Seen(Mutex<Vec<(String, EndpointUsage)>>);
        impl UsageSink for Seen {
            fn record(&self, endpoint: &str, delta: &EndpointUsage) {
                self.0.lock().unwrap().push((endpoint.into(), delta.clone()));
            }
        }
        let seen = Arc::new(Seen::default());
        let u = Usage::with_sink(Some(seen.clone()));
        u.call("coql", 2);
        u.error("coql");
        let seen = seen.0.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0], ("coql".to_string(), EndpointUsage { calls: 1, credits: 2, retries: 0, errors: 0 }));
        assert_eq!(seen[1].1.errors, 1);
    }
}
