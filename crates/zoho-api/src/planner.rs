//! The credit planner: how to push N records for the fewest credits
//! (Kaizen #123's table). Upsert costs 1 credit per 10 records, 100 records
//! a call; a bulk-write job costs 500 credits for up to 25,000 records, plus
//! the calls every job needs besides its creation: the upload, at least one
//! status read and the result download, 1 credit each (zoho-api.md §12.1:
//! "1 unless listed"). So a job costs at least 503.
//!
//! For `b` bulk jobs the rest goes by upsert, so the cost is
//! `503·b + ⌈(n − 25,000·b)⁺ / 10⌉`, minimised over `b`. Ties go to fewer
//! bulk jobs: upserts answer at once, bulk jobs take minutes.

use crate::usage::BULK_WRITE_JOB_CREDITS;

/// Upload, one status read and the download of a bulk-write job.
pub const BULK_JOB_SIDE_CREDITS: u64 = 3;
/// The least a bulk-write job can cost.
pub const BULK_JOB_CREDITS: u64 = BULK_WRITE_JOB_CREDITS as u64 + BULK_JOB_SIDE_CREDITS;

pub const UPSERT_BATCH: u64 = 100;
pub const RECORDS_PER_CREDIT: u64 = 10;
pub const BULK_BATCH: u64 = 25_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Whichever costs fewer credits.
    Auto,
    /// Upsert calls only: immediate per-record results.
    Upsert,
    /// Bulk jobs only: for initial loads.
    Bulk,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub bulk_jobs: u64,
    pub bulk_records: u64,
    pub upsert_calls: u64,
    pub upsert_records: u64,
    pub credits: u64,
}

impl Plan {
    fn with_jobs(n: u64, jobs: u64) -> Plan {
        let bulk_records = n.min(jobs * BULK_BATCH);
        let upsert_records = n - bulk_records;
        Plan {
            bulk_jobs: jobs,
            bulk_records,
            upsert_calls: upsert_records.div_ceil(UPSERT_BATCH),
            upsert_records,
            credits: jobs * BULK_JOB_CREDITS + upsert_records.div_ceil(RECORDS_PER_CREDIT),
        }
    }

    pub fn api_calls(&self) -> u64 {
        self.bulk_jobs + self.upsert_calls
    }
}

/// The cheapest plan for `n` records in `mode`.
pub fn plan(n: u64, mode: Mode) -> Plan {
    let max_jobs = n.div_ceil(BULK_BATCH);
    match mode {
        Mode::Upsert => Plan::with_jobs(n, 0),
        Mode::Bulk => Plan::with_jobs(n, max_jobs),
        Mode::Auto => (0..=max_jobs)
            .map(|b| Plan::with_jobs(n, b))
            .min_by_key(|p| (p.credits, p.bulk_jobs))
            .expect("at least one candidate"),
    }
}

/// The true optimum over every way to cut `n` records into upsert calls
/// (≤ 100 records, ⌈k/10⌉ credits) and bulk jobs (≤ 25,000, 500 credits),
/// computed independently of the formula above: dynamic programming with
/// a sliding-window minimum for the bulk transitions.
pub fn optimum_table(max_n: usize) -> Vec<u64> {
    let mut best = vec![0u64; max_n + 1];
    let mut window: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
    for n in 1..=max_n {
        // Bulk: best[n - k] + 500 for k in 1..=25,000.
        while window.back().is_some_and(|&j| best[j] >= best[n - 1]) {
            window.pop_back();
        }
        window.push_back(n - 1);
        while window.front().is_some_and(|&j| j + (BULK_BATCH as usize) < n) {
            window.pop_front();
        }
        let mut b = best[*window.front().unwrap()] + BULK_JOB_CREDITS;
        for k in 1..=(UPSERT_BATCH as usize).min(n) {
            b = b.min(best[n - k] + (k as u64).div_ceil(RECORDS_PER_CREDIT));
        }
        best[n] = b;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn seed_table() {
        let p = plan(100, Mode::Auto);
        assert_eq!((p.upsert_calls, p.credits, p.bulk_jobs), (1, 10, 0));
        let p = plan(2_000, Mode::Auto);
        assert_eq!((p.upsert_calls, p.credits, p.bulk_jobs), (20, 200, 0));
        // 5,000: 50 calls / 500 credits, 3 fewer than one bulk job.
        let p = plan(5_000, Mode::Auto);
        assert_eq!((p.upsert_calls, p.credits, p.bulk_jobs), (50, 500, 0));
        assert_eq!(plan(5_000, Mode::Bulk).credits, 503);
        // Break-even: 5,030 records by upsert cost 503, the same as a job;
        // the tie goes to upsert.
        assert_eq!(plan(5_030, Mode::Auto).bulk_jobs, 0);
        assert_eq!(plan(5_031, Mode::Auto).bulk_jobs, 1);
        let p = plan(25_000, Mode::Auto);
        assert_eq!((p.bulk_jobs, p.credits, p.upsert_calls), (1, 503, 0));
        assert_eq!(plan(25_000, Mode::Upsert).credits, 2_500);
    }

    #[test]
    fn mixed_plans() {
        // 30,000 = one job (503) + 5,000 by upsert (500) = 1,003 credits.
        let p = plan(30_000, Mode::Auto);
        assert_eq!((p.bulk_jobs, p.upsert_records, p.credits), (1, 5_000, 1_003));
        // 30,031: a second job is cheaper than 5,031 upserts.
        let p = plan(30_031, Mode::Auto);
        assert_eq!((p.bulk_jobs, p.upsert_records, p.credits), (2, 0, 1_006));
        assert_eq!(plan(0, Mode::Auto).credits, 0);
    }

    #[test]
    fn plan_is_minimal_for_every_n_up_to_200000() {
        let best = optimum_table(200_000);
        for (n, &opt) in best.iter().enumerate() {
            let p = plan(n as u64, Mode::Auto);
            assert_eq!(p.credits, opt, "n = {n}: plan {p:?} vs optimum {opt}");
            assert_eq!(p.bulk_records + p.upsert_records, n as u64);
        }
    }

    proptest! {
        #[test]
        fn forced_modes_never_beat_auto(n in 0u64..2_000_000) {
            let auto = plan(n, Mode::Auto);
            prop_assert!(auto.credits <= plan(n, Mode::Upsert).credits);
            prop_assert!(auto.credits <= plan(n, Mode::Bulk).credits);
            prop_assert!(auto.bulk_records <= auto.bulk_jobs * BULK_BATCH);
            prop_assert_eq!(auto.bulk_records + auto.upsert_records, n);
        }
    }
}
