//! Row estimates, in place of a fixed guess:
//! - with `use_remote_estimate`, a COQL count at plan time, once per
//!   statement for each table and set of conditions;
//! - else what earlier scans in this backend saw: a scan that read to the
//!   end (or a pushed count) records how many rows Zoho returned for its
//!   table and its pushed conditions. The planner uses the count for the
//!   same conditions when it has one, else the table's unfiltered count
//!   times PostgreSQL's selectivity, else 1,000.

use std::cell::RefCell;
use std::collections::HashMap;

use super::pushdown::Filter;

/// Row counts by (table, pushed conditions).
type Counts = HashMap<(u32, String), f64>;

thread_local! {
    static SEEN: RefCell<Counts> = RefCell::new(HashMap::new());
    /// Remote counts of the current statement (by its start time).
    static COUNTED: RefCell<(i64, Counts)> = RefCell::new((0, HashMap::new()));
}

/// The remote count of `filters` on `table` for the statement that started
/// at `statement`, asking `count` only the first time.
pub fn remote(table: u32, filters: &[Filter], statement: i64, count: impl FnOnce() -> Option<f64>) -> Option<f64> {
    let k = (table, key(filters));
    let cached = COUNTED.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != statement {
            *c = (statement, HashMap::new());
        }
        c.1.get(&k).copied()
    });
    if cached.is_some() {
        return cached;
    }
    let n = count()?;
    COUNTED.with(|c| c.borrow_mut().1.insert(k, n));
    Some(n)
}

/// The pushed conditions as a key (parameters by position, not value).
pub fn key(filters: &[Filter]) -> String {
    serde_json::to_string(filters).unwrap_or_default()
}

pub fn record(table: u32, filters: &[Filter], rows: u64) {
    SEEN.with(|s| s.borrow_mut().insert((table, key(filters)), rows as f64));
}

/// Rows for `filters` on `table`: seen for the same conditions, or the
/// unfiltered count scaled by `selectivity`.
pub fn rows(table: u32, filters: &[Filter], selectivity: f64) -> Option<f64> {
    SEEN.with(|s| {
        let s = s.borrow();
        s.get(&(table, key(filters))).copied().or_else(|| s.get(&(table, key(&[]))).map(|all| all * selectivity))
    })
}
