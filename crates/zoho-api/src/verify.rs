//! What proving a mirror equal to Zoho needs from Zoho (zoho_verify): the
//! count and the latest `Modified_Time` of the records modified within a
//! span, in one COQL aggregate call; the `(id, Modified_Time)` of each such
//! record, by keyset; and the comparison of two sides' versions.
//!
//! A span's count and bounds agreeing prove little (a record whose version
//! moved within the span keeps them), so a caller halves spans down to
//! what one COQL page holds and reads those record by record, or down to
//! a day, whose agreement it takes as proof; a span empty on both sides
//! needs nothing more.

use std::collections::HashMap;

use chrono::{DateTime, FixedOffset, Utc};
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use crate::client::ZohoClient;
use crate::coql::{CmpOp, CoqlCursor, Cond, KeyField, Keyset, Literal, Query};
use crate::error::{Error, Result};
use crate::http::{Call, Pool, Target};
use crate::records::record_id;
use crate::usage::coql_credits;
use crate::wire;

/// `[from, to)` of `Modified_Time`, in whole seconds (Zoho's resolution).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Span {
    /// The span from the first second of `from` to just after `to`.
    pub fn covering(from: DateTime<Utc>, to: DateTime<Utc>) -> Span {
        let second = |t: DateTime<Utc>| DateTime::from_timestamp(t.timestamp(), 0).expect("in range");
        Span { from: second(from), to: second(to) + chrono::Duration::seconds(1) }
    }

    pub fn seconds(&self) -> i64 {
        (self.to - self.from).num_seconds()
    }

    /// Two halves on a second boundary; None for a span of one second.
    pub fn halves(&self) -> Option<(Span, Span)> {
        let n = self.seconds();
        if n < 2 {
            return None;
        }
        let mid = self.from + chrono::Duration::seconds(n / 2);
        Some((Span { from: self.from, to: mid }, Span { from: mid, to: self.to }))
    }

    fn cond(&self) -> Cond {
        let at = |t: DateTime<Utc>| Literal::DateTime(t.fixed_offset());
        Cond::cmp("Modified_Time", CmpOp::Ge, at(self.from)).and(Cond::cmp("Modified_Time", CmpOp::Lt, at(self.to)))
    }
}

/// What one side holds within a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bucket {
    pub count: u64,
    pub earliest: Option<DateTime<Utc>>,
    pub latest: Option<DateTime<Utc>>,
}

impl Bucket {
    /// Equal counts and latest times (the earliest is for finding the span).
    pub fn agrees(&self, other: &Bucket) -> bool {
        self.count == other.count && self.latest == other.latest
    }
}

/// One record's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub id: i64,
    pub modified: DateTime<Utc>,
}

/// How a mirror's versions differ from Zoho's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Differences {
    /// In Zoho, not in the mirror.
    pub missing: Vec<i64>,
    /// In the mirror, not in Zoho (deleted there, or in another span:
    /// [`compare`] is given both sides of the same span).
    pub extra: Vec<i64>,
    /// In both, the mirror's version older.
    pub stale: Vec<i64>,
}

impl Differences {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && self.stale.is_empty()
    }

    pub fn extend(&mut self, other: Differences) {
        self.missing.extend(other.missing);
        self.extra.extend(other.extra);
        self.stale.extend(other.stale);
    }
}

/// The differences between the versions two sides hold in one span. A
/// record whose time moved out of the span on one side shows as missing
/// on one side and extra on the other; [`reconcile`] pairs them up.
pub fn compare(mirror: &[Version], zoho: &[Version]) -> Differences {
    let ours: HashMap<i64, DateTime<Utc>> = mirror.iter().map(|v| (v.id, v.modified)).collect();
    let theirs: HashMap<i64, DateTime<Utc>> = zoho.iter().map(|v| (v.id, v.modified)).collect();
    let mut d = Differences::default();
    for v in zoho {
        match ours.get(&v.id) {
            None => d.missing.push(v.id),
            Some(m) if *m < v.modified => d.stale.push(v.id),
            Some(_) => {}
        }
    }
    d.extra = mirror.iter().filter(|v| !theirs.contains_key(&v.id)).map(|v| v.id).collect();
    d.missing.sort_unstable();
    d.extra.sort_unstable();
    d.stale.sort_unstable();
    d
}

/// Differences gathered span by span, made whole: an id extra in one span
/// and missing in another is one record whose version differs, stale when
/// Zoho's is newer. (A mirror version newer than Zoho's cannot be repaired
/// from Zoho and is left out.)
pub fn reconcile(mut d: Differences, zoho_time: impl Fn(i64) -> Option<DateTime<Utc>>, mirror_time: impl Fn(i64) -> Option<DateTime<Utc>>) -> Differences {
    let missing: std::collections::HashSet<i64> = d.missing.iter().copied().collect();
    let moved: Vec<i64> = d.extra.iter().copied().filter(|id| missing.contains(id)).collect();
    d.extra.retain(|id| !missing.contains(id));
    d.missing.retain(|id| !moved.contains(id));
    for id in moved {
        if let (Some(z), Some(m)) = (zoho_time(id), mirror_time(id)) {
            if m < z {
                d.stale.push(id);
            }
        }
    }
    d.stale.sort_unstable();
    d.stale.dedup();
    d
}

#[derive(Deserialize)]
struct BucketRow {
    #[serde(rename = "COUNT(id)", default, deserialize_with = "wire::num_or_default")]
    count: u64,
    #[serde(rename = "MIN(Modified_Time)", default, deserialize_with = "wire::opt")]
    earliest: Option<DateTime<FixedOffset>>,
    #[serde(rename = "MAX(Modified_Time)", default, deserialize_with = "wire::opt")]
    latest: Option<DateTime<FixedOffset>>,
}

/// Converted leads are left out of COQL unless the WHERE names
/// `Converted__s`; a mirror from Bulk Read holds them.
fn with_converted(c: Cond, has_converted: bool) -> Cond {
    if !has_converted {
        return c;
    }
    // A boolean takes = and != only, and is never null in Zoho.
    let any = Cond::cmp(crate::records::CONVERTED, CmpOp::Eq, Literal::Bool(true)).or(Cond::cmp(crate::records::CONVERTED, CmpOp::Eq, Literal::Bool(false)));
    c.and(any)
}

impl ZohoClient {
    /// The count, earliest and latest `Modified_Time` of `module`'s records
    /// within `span` (all records when None): one COQL call, 1 credit.
    /// `has_converted`: the module has `Converted__s` (Leads).
    pub async fn bucket(&self, module: &str, span: Option<Span>, has_converted: bool) -> Result<Bucket> {
        let filter = match span {
            Some(s) => s.cond(),
            None => Cond::IsNull { field: "id".into(), negated: true },
        };
        let query = Query::new(module, ["COUNT(id)", "MIN(Modified_Time)", "MAX(Modified_Time)"]).filter(with_converted(filter, has_converted)).limit(1);
        let call = Call::new("coql", Method::POST, Target::Api(self.path("coql")))
            .json(json!({ "select_query": query.render()? }))
            .credits(coql_credits(1))
            .pool(Pool::Sub);
        // No content: nothing in the span.
        let Some(reply) = self.t.send_json::<crate::records::ListReply<BucketRow>>(&call).await? else {
            return Ok(Bucket::default());
        };
        let Some(row) = reply.data.into_iter().next() else { return Ok(Bucket::default()) };
        let utc = |t: Option<DateTime<FixedOffset>>| t.map(|t| t.with_timezone(&Utc));
        Ok(Bucket { count: row.count, earliest: utc(row.earliest), latest: utc(row.latest) })
    }

    /// The versions of `module`'s records within `span`, 2,000 a call.
    pub async fn versions(&self, module: &str, span: Span, has_converted: bool) -> Result<Vec<Version>> {
        let query = Query::new(module, ["Modified_Time"]).filter(with_converted(span.cond(), has_converted));
        let mut cursor = CoqlCursor::new(query, Some(Keyset { field: KeyField::ModifiedTime, descending: false }), crate::coql::MAX_LIMIT)?;
        let mut out = Vec::new();
        while let Some(rows) = cursor.next_page(self).await? {
            for r in rows {
                let id = record_id(&r).and_then(|s| s.parse::<i64>().ok()).ok_or_else(|| Error::malformed("coql", "a record without a numeric id"))?;
                let modified = r
                    .get("Modified_Time")
                    .and_then(|v| v.as_str())
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                    .ok_or_else(|| Error::malformed("coql", format!("record {id} has no Modified_Time")))?;
                out.push(Version { id, modified: modified.with_timezone(&Utc) });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn v(id: i64, s: &str) -> Version {
        Version { id, modified: t(s) }
    }

    #[test]
    fn spans_halve_on_whole_seconds_down_to_one() {
        let s = Span::covering(t("2026-01-01T00:00:00.400Z"), t("2026-01-01T00:00:04.900Z"));
        assert_eq!((s.from, s.to, s.seconds()), (t("2026-01-01T00:00:00Z"), t("2026-01-01T00:00:05Z"), 5));
        let (a, b) = s.halves().unwrap();
        assert_eq!((a.to, b.from, a.seconds() + b.seconds()), (t("2026-01-01T00:00:02Z"), t("2026-01-01T00:00:02Z"), 5));
        assert_eq!(Span::covering(t("2026-01-01T00:00:00Z"), t("2026-01-01T00:00:00Z")).halves(), None);
    }

    #[test]
    fn compare_finds_missing_extra_and_stale_and_reconcile_pairs_moved_records() {
        let mirror = [v(1, "2026-01-01T00:00:00Z"), v(2, "2026-01-01T00:00:00Z"), v(4, "2026-01-01T00:00:00Z")];
        let zoho = [v(1, "2026-01-01T00:00:00Z"), v(2, "2026-01-01T00:00:01Z"), v(3, "2026-01-01T00:00:00Z")];
        let d = compare(&mirror, &zoho);
        assert_eq!(d, Differences { missing: vec![3], extra: vec![4], stale: vec![2] });
        // Record 4 moved to a later span in Zoho: missing there, extra here.
        let later = compare(&[], &[v(4, "2026-02-01T00:00:00Z")]);
        let mut all = d.clone();
        all.extend(later);
        let whole = reconcile(all, |id| (id == 4).then(|| t("2026-02-01T00:00:00Z")), |id| (id == 4).then(|| t("2026-01-01T00:00:00Z")));
        assert_eq!(whole, Differences { missing: vec![3], extra: vec![], stale: vec![2, 4] });
    }

    #[test]
    fn an_aggregate_row_reads_counts_as_numbers_or_strings_and_nothing_as_empty() {
        let row: BucketRow = wire::parse("coql", br#"{"COUNT(id)": "12", "MAX(Modified_Time)": "2026-01-01T05:30:00+05:30", "MIN(Modified_Time)": null}"#).unwrap();
        assert_eq!((row.count, row.latest.map(|t| t.with_timezone(&Utc)), row.earliest), (12, Some(t("2026-01-01T00:00:00Z")), None));
        let row: BucketRow = wire::parse("coql", br#"{"unknown": {}}"#).unwrap();
        assert_eq!(row.count, 0);
    }
}
