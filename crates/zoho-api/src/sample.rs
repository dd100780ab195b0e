//! A sample of a module for ANALYZE, within a credit cap: COQL has no
//! random sampling, so the sample is a set of windows spread evenly over
//! the id range (ids grow with creation time), each read in one call.

use crate::coql::{CmpOp, Cond, Literal, Order, Query, MAX_LIMIT};
use crate::usage::coql_credits;

/// The module's record count and id range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub count: u64,
    pub min_id: i64,
    pub max_id: i64,
}

impl Extent {
    /// The three 1-credit calls that measure it: `COUNT(id)`, then the
    /// first and last id (MIN and MAX do not take the id field).
    pub const CREDITS: u32 = 3;

    pub fn queries(module: &str) -> [Query; 3] {
        [
            Query::new(module, ["COUNT(id)"]).limit(1),
            Query::new(module, ["id"]).order_by("id", Order::Asc).limit(1),
            Query::new(module, ["id"]).order_by("id", Order::Desc).limit(1),
        ]
    }
}

/// The windows to read: where each starts, and how many rows it takes.
/// Every window is one call; the calls and the extent's together cost at
/// most `max_credits`.
pub fn windows(extent: Extent, target_rows: usize, max_credits: u32) -> Vec<(i64, usize)> {
    if extent.count == 0 || target_rows == 0 || max_credits <= Extent::CREDITS {
        return Vec::new();
    }
    let budget = max_credits - Extent::CREDITS;
    let wanted = target_rows.min(extent.count as usize);
    // Fewest calls first: full pages while credits last, else 1-credit ones.
    let (size, calls) = if wanted <= 200 {
        (wanted, 1)
    } else {
        let full = wanted.div_ceil(MAX_LIMIT) as u32;
        if full * coql_credits(MAX_LIMIT) <= budget {
            (wanted.div_ceil(full as usize), full)
        } else {
            // Within the cap: as many 2,000-row windows as it pays for.
            let n = (budget / coql_credits(MAX_LIMIT)).max(1);
            if n * coql_credits(MAX_LIMIT) <= budget {
                (MAX_LIMIT, n)
            } else {
                (200, budget)
            }
        }
    };
    let span = (extent.max_id - extent.min_id).max(0) as i128;
    (0..calls).map(|i| (extent.min_id + (span * i as i128 / calls as i128) as i64, size)).collect()
}

/// The query of one window over `select`, keyset by id from `start`.
pub fn window_query(module: &str, select: Vec<String>, start: i64, rows: usize) -> Query {
    Query::new(module, select).filter(Cond::cmp("id", CmpOp::Ge, Literal::Int(start))).order_by("id", Order::Asc).limit(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credits(w: &[(i64, usize)]) -> u32 {
        Extent::CREDITS + w.iter().map(|(_, n)| coql_credits(*n)).sum::<u32>()
    }

    #[test]
    fn windows_spread_over_the_ids_within_the_cap() {
        let e = Extent { count: 500_000, min_id: 1_000, max_id: 1_000_000 };
        let w = windows(e, 30_000, 33);
        assert_eq!(w.len(), 10);
        assert!(w.iter().all(|(_, n)| *n == 2000));
        assert_eq!(w[0].0, 1_000);
        assert!(w.windows(2).all(|p| p[1].0 - p[0].0 == 99_900), "{w:?}");
        assert!(credits(&w) <= 33);
        // Enough credits: the whole target in full pages.
        let w = windows(e, 30_000, 100);
        assert_eq!((w.len(), w.iter().map(|x| x.1).sum::<usize>()), (15, 30_000));
        // A small module: one call for all of it.
        let w = windows(Extent { count: 150, min_id: 5, max_id: 900 }, 30_000, 10);
        assert_eq!(w, vec![(5, 150)]);
        // A tight cap: 1-credit windows.
        let w = windows(e, 30_000, 5);
        assert_eq!(w, vec![(1_000, 200), (500_500, 200)]);
        assert!(windows(e, 30_000, 3).is_empty() && windows(Extent { count: 0, ..e }, 10, 30).is_empty());
    }

    #[test]
    fn a_window_is_a_keyset_read() {
        let q = window_query("Leads", vec!["id".into(), "Last_Name".into()], 42, 2000);
        assert_eq!(q.render().unwrap(), "select id, Last_Name from Leads where id >= 42 order by id asc limit 2000");
    }
}
