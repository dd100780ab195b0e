//! Row estimates from what earlier scans in this backend saw, in place of
//! a fixed guess: a scan that read to the end records how many rows Zoho
//! returned for its table and its pushed conditions. The planner uses the
//! count for the same conditions when it has one, else the table's
//! unfiltered count times PostgreSQL's selectivity, else 1,000.

use std::cell::RefCell;
use std::collections::HashMap;

use super::pushdown::Filter;

thread_local! {
    static SEEN: RefCell<HashMap<(u32, String), f64>> = RefCell::new(HashMap::new());
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
