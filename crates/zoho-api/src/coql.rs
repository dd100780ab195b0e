//! COQL (zoho-api.md §6): a typed query tree rendered to text, and a pager
//! that walks results by keyset instead of OFFSET.
//!
//! User values only ever enter the query as [`Literal`]s, which the renderer
//! quotes and escapes itself; a value it cannot represent safely is refused
//! (the caller then filters locally) rather than pasted in.

use chrono::{DateTime, FixedOffset, NaiveDate, SecondsFormat};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::client::ZohoClient;
use crate::error::{Error, Result};
use crate::http::{Call, Pool, Target};
use crate::records::{record_id, Record};
use crate::usage::coql_credits;

pub const MAX_LIMIT: usize = 2000;
/// Rows one query can reach through LIMIT/OFFSET.
pub const MAX_REACHABLE: usize = 100_000;
pub const MAX_CRITERIA: usize = 25;
pub const MAX_IN_VALUES: usize = 100;
pub const MAX_SELECT_FIELDS: usize = 500;

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Text(String),
    Int(i64),
    /// A decimal number, kept as text so no precision is lost.
    Decimal(String),
    Bool(bool),
    Date(NaiveDate),
    DateTime(DateTime<FixedOffset>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Cmp { field: String, op: CmpOp, value: Literal },
    In { field: String, values: Vec<Literal>, negated: bool },
    Between { field: String, low: Literal, high: Literal, negated: bool },
    IsNull { field: String, negated: bool },
    /// `%` is the only wildcard.
    Like { field: String, pattern: String, negated: bool },
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
}

impl Cond {
    pub fn cmp(field: &str, op: CmpOp, value: Literal) -> Cond {
        Cond::Cmp { field: field.into(), op, value }
    }

    pub fn and(self, other: Cond) -> Cond {
        Cond::And(Box::new(self), Box::new(other))
    }

    pub fn or(self, other: Cond) -> Cond {
        Cond::Or(Box::new(self), Box::new(other))
    }

    /// Folds conditions into COQL's pairwise nesting: `((a and b) and c)`.
    pub fn all(conds: impl IntoIterator<Item = Cond>) -> Option<Cond> {
        conds.into_iter().reduce(Cond::and)
    }

    pub fn any(conds: impl IntoIterator<Item = Cond>) -> Option<Cond> {
        conds.into_iter().reduce(Cond::or)
    }

    /// Criteria as Zoho counts them (limit 25), after `in` lists are split.
    pub fn criteria(&self) -> usize {
        match self {
            Cond::And(a, b) | Cond::Or(a, b) => a.criteria() + b.criteria(),
            Cond::In { values, .. } => values.len().div_ceil(MAX_IN_VALUES).max(1),
            _ => 1,
        }
    }

    fn render(&self, out: &mut String) -> Result<()> {
        match self {
            Cond::Cmp { field, op, value } => {
                push_ident(out, field)?;
                out.push(' ');
                out.push_str(op.as_str());
                out.push(' ');
                push_literal(out, value)?;
            }
            Cond::In { field, values, negated } => {
                if values.is_empty() {
                    return Err(Error::InvalidInput(format!("empty IN list for {field}")));
                }
                // Zoho takes 100 values per `in`; longer lists become an OR
                // (or, negated, an AND) of pairwise-nested chunks.
                let parts: Vec<Cond> = values
                    .chunks(MAX_IN_VALUES)
                    .map(|chunk| Cond::In { field: field.clone(), values: chunk.to_vec(), negated: *negated })
                    .collect();
                if parts.len() > 1 {
                    let joined = if *negated { Cond::all(parts) } else { Cond::any(parts) };
                    return joined.expect("non-empty").render(out);
                }
                push_ident(out, field)?;
                out.push_str(if *negated { " not in (" } else { " in (" });
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    push_literal(out, v)?;
                }
                out.push(')');
            }
            Cond::Between { field, low, high, negated } => {
                push_ident(out, field)?;
                out.push_str(if *negated { " not between " } else { " between " });
                push_literal(out, low)?;
                out.push_str(" and ");
                push_literal(out, high)?;
            }
            Cond::IsNull { field, negated } => {
                push_ident(out, field)?;
                out.push_str(if *negated { " is not null" } else { " is null" });
            }
            Cond::Like { field, pattern, negated } => {
                push_ident(out, field)?;
                out.push_str(if *negated { " not like " } else { " like " });
                push_literal(out, &Literal::Text(pattern.clone()))?;
            }
            Cond::And(a, b) | Cond::Or(a, b) => {
                out.push('(');
                a.render(out)?;
                out.push_str(if matches!(self, Cond::And(..)) { " and " } else { " or " });
                b.render(out)?;
                out.push(')');
            }
        }
        Ok(())
    }
}

/// API names: letters, digits, `_`, and up to two dots for lookup paths.
fn push_ident(out: &mut String, name: &str) -> Result<()> {
    let valid_part = |p: &str| {
        let mut chars = p.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '$') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() > 3 || !parts.iter().all(|p| valid_part(p)) {
        return Err(Error::InvalidInput(format!("\"{name}\" is not a Zoho field API name")));
    }
    out.push_str(name);
    Ok(())
}

fn push_literal(out: &mut String, v: &Literal) -> Result<()> {
    match v {
        Literal::Text(s) => {
            // Doubling quotes is the one escape COQL is known to accept;
            // backslashes and control characters have no known safe form.
            if s.chars().any(|c| c == '\\' || c.is_control()) {
                return Err(Error::InvalidInput(format!(
                    "the value {s:?} contains a backslash or control character, which COQL cannot express safely"
                )));
            }
            out.push('\'');
            out.push_str(&s.replace('\'', "''"));
            out.push('\'');
        }
        Literal::Int(i) => out.push_str(&i.to_string()),
        Literal::Decimal(d) => {
            let ok = !d.is_empty() && d.parse::<f64>().is_ok() && d.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'));
            if !ok {
                return Err(Error::InvalidInput(format!("\"{d}\" is not a number")));
            }
            out.push_str(d);
        }
        Literal::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Literal::Date(d) => {
            out.push('\'');
            out.push_str(&d.format("%Y-%m-%d").to_string());
            out.push('\'');
        }
        Literal::DateTime(t) => {
            // COQL takes no fractional seconds.
            out.push('\'');
            out.push_str(&t.to_rfc3339_opts(SecondsFormat::Secs, false));
            out.push('\'');
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub select: Vec<String>,
    pub module: String,
    pub filter: Option<Cond>,
    pub order_by: Vec<(String, Order)>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

impl Query {
    pub fn new(module: &str, select: impl IntoIterator<Item = impl Into<String>>) -> Query {
        Query {
            select: select.into_iter().map(Into::into).collect(),
            module: module.to_string(),
            filter: None,
            order_by: Vec::new(),
            limit: None,
            offset: None,
        }
    }

    pub fn filter(mut self, c: Cond) -> Query {
        self.filter = Some(match self.filter.take() {
            Some(prev) => prev.and(c),
            None => c,
        });
        self
    }

    pub fn order_by(mut self, field: &str, order: Order) -> Query {
        self.order_by.push((field.to_string(), order));
        self
    }

    pub fn limit(mut self, n: usize) -> Query {
        self.limit = Some(n);
        self
    }

    pub fn offset(mut self, n: usize) -> Query {
        self.offset = Some(n);
        self
    }

    /// The COQL text, or why this query cannot be sent.
    pub fn render(&self) -> Result<String> {
        if self.select.is_empty() || self.select.len() > MAX_SELECT_FIELDS {
            return Err(Error::InvalidInput(format!("COQL selects 1 to {MAX_SELECT_FIELDS} fields, not {}", self.select.len())));
        }
        let mut out = String::from("select ");
        for (i, f) in self.select.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            push_ident(&mut out, f)?;
        }
        out.push_str(" from ");
        push_ident(&mut out, &self.module)?;
        // WHERE is mandatory in COQL.
        out.push_str(" where ");
        match &self.filter {
            Some(c) => {
                if c.criteria() > MAX_CRITERIA {
                    return Err(Error::InvalidInput(format!("{} criteria exceed COQL's limit of {MAX_CRITERIA}", c.criteria())));
                }
                c.render(&mut out)?;
            }
            None => out.push_str("id is not null"),
        }
        if !self.order_by.is_empty() {
            out.push_str(" order by ");
            for (i, (f, o)) in self.order_by.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                push_ident(&mut out, f)?;
                out.push_str(if *o == Order::Asc { " asc" } else { " desc" });
            }
        }
        let limit = self.limit.unwrap_or(200);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(Error::InvalidInput(format!("COQL LIMIT must be 1 to {MAX_LIMIT}, not {limit}")));
        }
        let offset = self.offset.unwrap_or(0);
        if offset + limit > MAX_REACHABLE {
            return Err(Error::InvalidInput(format!("COQL reaches only {MAX_REACHABLE} rows by OFFSET; page by keyset instead")));
        }
        out.push_str(&format!(" limit {limit}"));
        if offset > 0 {
            out.push_str(&format!(" offset {offset}"));
        }
        Ok(out)
    }
}

/// How a [`CoqlPages`] walks past one call's 2,000 rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyset {
    /// `id > last` ordered by id: any query without an ORDER BY of its own.
    Id,
    /// `(Modified_Time, id) > (last_ts, last_id)`: incremental reads.
    ModifiedTime,
}

/// Pages of a COQL query. With a keyset, the caller's query must not have
/// its own ORDER BY or OFFSET; its LIMIT caps the total. Without one, the
/// query runs as written, paged by OFFSET up to Zoho's 100,000 rows.
pub struct CoqlPages<'c> {
    client: &'c ZohoClient,
    base: Query,
    keyset: Option<Keyset>,
    page_size: usize,
    remaining: Option<usize>,
    after: Option<(Option<String>, i64)>,
    offset: usize,
    done: bool,
}

#[derive(Deserialize)]
struct CoqlReply {
    #[serde(default)]
    data: Vec<Record>,
    #[serde(default)]
    info: Option<CoqlInfo>,
}

#[derive(Deserialize)]
struct CoqlInfo {
    #[serde(default)]
    more_records: bool,
}

impl<'c> CoqlPages<'c> {
    /// The query this pager sends next (for EXPLAIN and logs).
    pub fn next_query(&self) -> Result<Query> {
        let mut q = self.base.clone();
        let want = self.remaining.map_or(self.page_size, |r| r.min(self.page_size)).max(1);
        q.limit = Some(want);
        match self.keyset {
            Some(k) => {
                q.order_by = match k {
                    Keyset::Id => vec![("id".into(), Order::Asc)],
                    Keyset::ModifiedTime => vec![("Modified_Time".into(), Order::Asc), ("id".into(), Order::Asc)],
                };
                q.offset = None;
                if let Some((ts, id)) = &self.after {
                    let after_id = Cond::cmp("id", CmpOp::Gt, Literal::Int(*id));
                    let cond = match (k, ts) {
                        (Keyset::ModifiedTime, Some(ts)) => {
                            let ts = DateTime::parse_from_rfc3339(ts)
                                .map_err(|e| Error::malformed("coql", format!("Modified_Time {ts:?}: {e}")))?;
                            let at = |op| Cond::cmp("Modified_Time", op, Literal::DateTime(ts));
                            at(CmpOp::Ge).and(at(CmpOp::Gt).or(after_id))
                        }
                        _ => after_id,
                    };
                    q.filter = Some(match q.filter.take() {
                        Some(f) => f.and(cond),
                        None => cond,
                    });
                }
            }
            None => q.offset = Some(self.base.offset.unwrap_or(0) + self.offset),
        }
        Ok(q)
    }

    pub async fn next_page(&mut self) -> Result<Option<Vec<Record>>> {
        if self.done || self.remaining == Some(0) {
            return Ok(None);
        }
        let q = self.next_query()?;
        let limit = q.limit.unwrap_or(200);
        let text = q.render()?;
        let call = Call::new("coql", Method::POST, Target::Api(self.client.path("coql")))
            .json(json!({ "select_query": text }))
            .credits(coql_credits(limit))
            .pool(Pool::Sub);
        let reply: Option<CoqlReply> = self.client.t.send_json(&call).await?;
        let Some(reply) = reply else {
            self.done = true;
            return Ok(None);
        };
        let rows = reply.data;
        let more = reply.info.is_some_and(|i| i.more_records);
        if let Some(r) = self.remaining.as_mut() {
            *r = r.saturating_sub(rows.len());
        }
        self.offset += rows.len();
        if let (Some(k), Some(last)) = (self.keyset, rows.last()) {
            let id = record_id(last)
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(|| Error::malformed("coql", "keyset paging needs id in every row"))?;
            let ts = match k {
                Keyset::ModifiedTime => Some(
                    last.get("Modified_Time")
                        .and_then(Value::as_str)
                        .ok_or_else(|| Error::malformed("coql", "keyset paging needs Modified_Time in every row"))?
                        .to_string(),
                ),
                Keyset::Id => None,
            };
            self.after = Some((ts, id));
        }
        if !more || rows.len() < limit {
            self.done = true;
        }
        if self.keyset.is_none() && self.offset + self.base.offset.unwrap_or(0) >= MAX_REACHABLE {
            self.done = true;
        }
        Ok(Some(rows))
    }
}

impl ZohoClient {
    /// Pages through `query`. With `keyset`, the select list gains `id`
    /// (and `Modified_Time`) if missing, and `query.limit` caps the total.
    pub fn coql<'c>(&'c self, mut query: Query, keyset: Option<Keyset>, page_size: usize) -> Result<CoqlPages<'c>> {
        if keyset.is_some() && (!query.order_by.is_empty() || query.offset.is_some()) {
            return Err(Error::InvalidInput("keyset paging cannot be combined with ORDER BY or OFFSET".into()));
        }
        let mut needed = vec!["id"];
        if keyset == Some(Keyset::ModifiedTime) {
            needed.push("Modified_Time");
        }
        for f in needed {
            if !query.select.iter().any(|s| s == f) {
                query.select.push(f.to_string());
            }
        }
        let remaining = if keyset.is_some() { query.limit.take() } else { query.limit };
        Ok(CoqlPages {
            client: self,
            page_size: page_size.clamp(1, MAX_LIMIT),
            remaining,
            base: query,
            keyset,
            after: None,
            offset: 0,
            done: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Literal {
        Literal::Text(s.into())
    }

    #[test]
    fn renders_pairwise_nesting_and_defaults() {
        let q = Query::new("Leads", ["Last_Name", "Email"])
            .filter(Cond::cmp("Lead_Status", CmpOp::Eq, text("Contacted")))
            .filter(Cond::cmp("No_of_Employees", CmpOp::Ge, Literal::Int(10)))
            .filter(Cond::IsNull { field: "Email".into(), negated: true });
        assert_eq!(
            q.render().unwrap(),
            "select Last_Name, Email from Leads where ((Lead_Status = 'Contacted' and No_of_Employees >= 10) and Email is not null) limit 200"
        );
        assert_eq!(Query::new("Leads", ["id"]).render().unwrap(), "select id from Leads where id is not null limit 200");
    }

    #[test]
    fn quotes_are_doubled_and_injection_stays_a_literal() {
        let q = Query::new("Leads", ["id"]).filter(Cond::cmp("Last_Name", CmpOp::Eq, text("O'Brien')); drop")));
        assert_eq!(q.render().unwrap(), "select id from Leads where Last_Name = 'O''Brien'')); drop' limit 200");
        for bad in ["a\\b", "line\nbreak", "nul\0"] {
            let q = Query::new("Leads", ["id"]).filter(Cond::cmp("Last_Name", CmpOp::Eq, text(bad)));
            assert!(q.render().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn identifiers_are_validated() {
        for bad in ["Last Name", "x;drop", "a.b.c.d", "1abc", ""] {
            assert!(Query::new("Leads", [bad]).render().is_err(), "{bad}");
        }
        assert!(Query::new("Contacts", ["Account_Name.Account_Name"]).render().is_ok());
        assert!(Query::new("Leads; drop", ["id"]).render().is_err());
    }

    #[test]
    fn literals_render_typed() {
        let dt = DateTime::parse_from_rfc3339("2025-01-02T03:04:05.678+05:30").unwrap();
        let q = Query::new("Deals", ["id"]).filter(
            Cond::Between { field: "Amount".into(), low: Literal::Decimal("10.5".into()), high: Literal::Decimal("99".into()), negated: false }
                .and(Cond::cmp("Modified_Time", CmpOp::Gt, Literal::DateTime(dt)))
                .and(Cond::cmp("Closing_Date", CmpOp::Lt, Literal::Date(NaiveDate::from_ymd_opt(2025, 3, 1).unwrap())))
                .or(Cond::Like { field: "Deal_Name".into(), pattern: "%big%".into(), negated: false }),
        );
        assert_eq!(
            q.render().unwrap(),
            "select id from Deals where (((Amount between 10.5 and 99 and Modified_Time > '2025-01-02T03:04:05+05:30') and Closing_Date < '2025-03-01') or Deal_Name like '%big%') limit 200"
        );
        let bad = Query::new("Deals", ["id"]).filter(Cond::cmp("Amount", CmpOp::Eq, Literal::Decimal("1; drop".into())));
        assert!(bad.render().is_err());
    }

    #[test]
    fn long_in_lists_split_into_hundreds() {
        let values: Vec<Literal> = (0..250).map(Literal::Int).collect();
        let c = Cond::In { field: "id".into(), values, negated: false };
        assert_eq!(c.criteria(), 3);
        let q = Query::new("Leads", ["id"]).filter(c).render().unwrap();
        assert_eq!(q.matches(" in (").count(), 3);
        assert!(q.contains(") or id in ("));
    }

    #[test]
    fn limits_are_enforced() {
        assert!(Query::new("Leads", ["id"]).limit(2001).render().is_err());
        assert!(Query::new("Leads", ["id"]).limit(2000).offset(98_001).render().is_err());
        let many = Cond::all((0..26).map(|i| Cond::cmp("id", CmpOp::Ne, Literal::Int(i)))).unwrap();
        assert!(Query::new("Leads", ["id"]).filter(many).render().is_err());
    }
}
