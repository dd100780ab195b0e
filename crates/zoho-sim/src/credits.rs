//! API credits over a rolling 24 h window (zoho-api.md §12.1).

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct EndpointUsage {
    pub calls: u64,
    pub credits: u64,
}

/// What `GET /__sim/credits` and `Sim::credits()` report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CreditSummary {
    /// Credits charged inside the current 24 h window.
    pub used: u64,
    pub remaining: u64,
    pub daily_limit: u64,
    /// Every charged call since start (or the last reset), by endpoint.
    pub by_endpoint: BTreeMap<String, EndpointUsage>,
}

#[derive(Debug)]
pub struct Credits {
    pub daily_limit: u64,
    window: VecDeque<(DateTime<Utc>, u64)>,
    by_endpoint: BTreeMap<String, EndpointUsage>,
}

impl Credits {
    pub fn new(daily_limit: u64) -> Self {
        Credits { daily_limit, window: VecDeque::new(), by_endpoint: BTreeMap::new() }
    }
    fn prune(&mut self, now: DateTime<Utc>) {
        while let Some((t, _)) = self.window.front() {
            if now - *t >= Duration::hours(24) {
                self.window.pop_front();
            } else {
                break;
            }
        }
    }
    pub fn used(&mut self, now: DateTime<Utc>) -> u64 {
        self.prune(now);
        self.window.iter().map(|(_, c)| c).sum()
    }
    pub fn remaining(&mut self, now: DateTime<Utc>) -> u64 {
        self.daily_limit.saturating_sub(self.used(now))
    }
    pub fn charge(&mut self, now: DateTime<Utc>, endpoint: &str, credits: u64) {
        self.prune(now);
        if credits > 0 {
            self.window.push_back((now, credits));
        }
        let e = self.by_endpoint.entry(endpoint.to_string()).or_default();
        e.calls += 1;
        e.credits += credits;
    }
    pub fn summary(&mut self, now: DateTime<Utc>) -> CreditSummary {
        let used = self.used(now);
        CreditSummary { used, remaining: self.daily_limit.saturating_sub(used), daily_limit: self.daily_limit, by_endpoint: self.by_endpoint.clone() }
    }
}

/// Credits for an insert / update / upsert of `n` records: 1 per 10.
pub fn for_records(n: usize) -> u32 {
    (n.max(1) as u32).div_ceil(10)
}
