//! COQL (zoho-api.md §6): a typed query tree rendered to text, and a pager
//! that walks results by keyset instead of OFFSET.
//!
//! User values only ever enter the query as [`Literal`]s, which the renderer
//! quotes and escapes itself; a value it cannot represent safely is refused
//! (the caller then filters locally) rather than pasted in.

use chrono::{DateTime, FixedOffset, NaiveDate, SecondsFormat};
use reqwest::Method;
use serde::{Deserialize, Serialize};
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
pub const MAX_GROUP_BY: usize = 4;
pub const MAX_AGGREGATES: usize = 5;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Literal {
    Text(String),
    Int(i64),
    /// A decimal number, kept as text so no precision is lost.
    Decimal(String),
    Bool(bool),
    Date(NaiveDate),
    DateTime(DateTime<FixedOffset>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

    /// The condition alone as COQL WHERE text.
    pub fn to_coql(&self) -> Result<String> {
        let mut out = String::new();
        self.render(&mut out)?;
        Ok(out)
    }

    fn render(&self, out: &mut String) -> Result<()> {
        match self {
            Cond::Cmp { field, op, value } => {
                push_field(out, field)?;
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
                push_field(out, field)?;
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
                push_field(out, field)?;
                out.push_str(if *negated { " not between " } else { " between " });
                push_literal(out, low)?;
                out.push_str(" and ");
                push_literal(out, high)?;
            }
            Cond::IsNull { field, negated } => {
                push_field(out, field)?;
                out.push_str(if *negated { " is not null" } else { " is null" });
            }
            Cond::Like { field, pattern, negated } => {
                push_field(out, field)?;
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
/// COQL's aggregate functions, upper case only.
const AGGREGATES: &[&str] = &["COUNT", "SUM", "MIN", "MAX", "AVG"];

/// A field name, or an aggregate of one (`COUNT(id)`).
fn push_ident(out: &mut String, name: &str) -> Result<()> {
    if let Some((func, field)) = name.strip_suffix(')').and_then(|n| n.split_once('(')) {
        if !AGGREGATES.contains(&func) {
            return Err(Error::InvalidInput(format!("\"{func}\" is not a COQL aggregate function")));
        }
        out.push_str(func);
        out.push('(');
        push_field(out, field)?;
        out.push(')');
        return Ok(());
    }
    push_field(out, name)
}

fn push_field(out: &mut String, name: &str) -> Result<()> {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Order {
    Asc,
    Desc,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Query {
    pub select: Vec<String>,
    pub module: String,
    pub filter: Option<Cond>,
    /// `GROUP BY` fields; the select list then holds only these and
    /// aggregates.
    #[serde(default)]
    pub group_by: Vec<String>,
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
            group_by: Vec::new(),
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

    pub fn group_by(mut self, field: &str) -> Query {
        self.group_by.push(field.to_string());
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
        push_field(&mut out, &self.module)?;
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
        let aggregates = self.select.iter().filter(|f| f.ends_with(')')).count();
        if aggregates > MAX_AGGREGATES {
            return Err(Error::InvalidInput(format!("COQL takes at most {MAX_AGGREGATES} aggregate columns, not {aggregates}")));
        }
        if self.group_by.len() > MAX_GROUP_BY {
            return Err(Error::InvalidInput(format!("COQL groups by at most {MAX_GROUP_BY} fields, not {}", self.group_by.len())));
        }
        if !self.group_by.is_empty() {
            out.push_str(" group by ");
            for (i, f) in self.group_by.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                push_field(&mut out, f)?;
            }
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

/// The order a keyset walks: `id`, or `(field, id)`. `Modified_Time` and
/// `Created_Time` (for incremental reads) are never null, so Zoho's order
/// and PostgreSQL's agree; any other field may be, and the caller reads
/// its null group with a query of its own (see [`Keyset::non_null`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyField {
    Id,
    ModifiedTime,
    CreatedTime,
    /// A number, date or datetime field. Text is never a key: Zoho sorts it
    /// by its own collation, not PostgreSQL's.
    Value { name: String, kind: ValueKind },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ValueKind {
    Number,
    Date,
    DateTime,
}

impl KeyField {
    pub fn api_name(&self) -> &str {
        match self {
            KeyField::Id => "id",
            KeyField::ModifiedTime => "Modified_Time",
            KeyField::CreatedTime => "Created_Time",
            KeyField::Value { name, .. } => name,
        }
    }

    fn kind(&self) -> ValueKind {
        match self {
            KeyField::Id => ValueKind::Number,
            KeyField::ModifiedTime | KeyField::CreatedTime => ValueKind::DateTime,
            KeyField::Value { kind, .. } => *kind,
        }
    }

    /// The COQL literal of a returned key value.
    fn literal(&self, v: &Value) -> Result<Literal> {
        let bad = || Error::malformed("coql", format!("keyset paging needs {} in every row, got {v}", self.api_name()));
        Ok(match (self.kind(), v) {
            (ValueKind::Number, Value::Number(n)) => Literal::Decimal(n.to_string()),
            (ValueKind::Number, Value::String(s)) => Literal::Decimal(s.clone()),
            (ValueKind::Date, Value::String(s)) => Literal::Date(NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad())?),
            (ValueKind::DateTime, Value::String(s)) => Literal::DateTime(DateTime::parse_from_rfc3339(s).map_err(|_| bad())?),
            _ => return Err(bad()),
        })
    }
}

/// How a [`CoqlCursor`] walks past one call's 2,000 rows without OFFSET
/// (which stops at 100,000).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keyset {
    pub field: KeyField,
    pub descending: bool,
}

impl Keyset {
    #[allow(non_upper_case_globals)]
    pub const Id: Keyset = Keyset { field: KeyField::Id, descending: false };
    #[allow(non_upper_case_globals)]
    pub const ModifiedTime: Keyset = Keyset { field: KeyField::ModifiedTime, descending: false };

    fn order(&self) -> Order {
        if self.descending {
            Order::Desc
        } else {
            Order::Asc
        }
    }

    /// Criteria the paging predicate adds from the second page on, which a
    /// query's own conditions must leave room for within [`MAX_CRITERIA`]
    /// (with the null split of a nullable key).
    pub fn criteria(&self) -> usize {
        match self.field {
            KeyField::Id => 1,
            KeyField::Value { .. } => 4,
            _ => 3,
        }
    }

    /// Whether the key may be null, so that its null group needs a query
    /// of its own (COQL's null ordering is not PostgreSQL's).
    pub fn nullable(&self) -> bool {
        matches!(self.field, KeyField::Value { .. })
    }

    /// The condition of the non-null part of a nullable key, or of its
    /// null group (`negated`).
    pub fn non_null(&self, negated: bool) -> Cond {
        Cond::IsNull { field: self.field.api_name().to_string(), negated: !negated }
    }

    /// The same order by id alone (for a null group, where the key ties).
    pub fn by_id(&self) -> Keyset {
        Keyset { field: KeyField::Id, descending: self.descending }
    }

    /// Rows strictly after `(key, id)` in this keyset's order.
    fn after(&self, key: Option<&Value>, id: i64) -> Result<Cond> {
        let (past, past_or_at) = if self.descending { (CmpOp::Lt, CmpOp::Le) } else { (CmpOp::Gt, CmpOp::Ge) };
        let after_id = Cond::cmp("id", past, Literal::Int(id));
        Ok(match (&self.field, key) {
            (KeyField::Id, _) | (_, None) => after_id,
            (field, Some(v)) => {
                let lit = field.literal(v)?;
                let at = |op| Cond::cmp(field.api_name(), op, lit.clone());
                at(past_or_at).and(at(past).or(after_id))
            }
        })
    }
}

/// Where a paged COQL read stands. With a keyset, the query must not have
/// its own ORDER BY or OFFSET, and its LIMIT caps the total; without one,
/// the query runs as written, paged by OFFSET up to Zoho's 100,000 rows.
/// It holds no client, so a caller can keep it beside one.
#[derive(Debug, Clone)]
pub struct CoqlCursor {
    base: Query,
    keyset: Option<Keyset>,
    page_size: usize,
    /// A smaller first page when few rows are expected (COQL credits go
    /// by LIMIT tier: 200 rows cost 1, 2,000 cost 3).
    first_page: Option<usize>,
    remaining: Option<usize>,
    after: Option<(Option<Value>, i64)>,
    offset: usize,
    done: bool,
    calls: u32,
}

/// A COQL reply: rows keyed by the select expressions as written
/// (`Account_Name.Parent_Account`, `SUM(Annual_Revenue)`; aggregate rows
/// have no `id`), and an `info` with `count` and `more_records` only.
pub type CoqlReply = crate::records::ListReply<Record>;

impl CoqlCursor {
    /// With `keyset`, the select list gains `id` (and the key field) when
    /// missing, and `query.limit` caps the total.
    pub fn new(mut query: Query, keyset: Option<Keyset>, page_size: usize) -> Result<CoqlCursor> {
        if keyset.is_some() && (!query.order_by.is_empty() || query.offset.is_some()) {
            return Err(Error::InvalidInput("keyset paging cannot be combined with ORDER BY or OFFSET".into()));
        }
        if let Some(k) = &keyset {
            for f in ["id", k.field.api_name()] {
                if !query.select.iter().any(|s| s == f) {
                    query.select.push(f.to_string());
                }
            }
        }
        let remaining = if keyset.is_some() { query.limit.take() } else { query.limit };
        Ok(CoqlCursor {
            page_size: page_size.clamp(1, MAX_LIMIT),
            first_page: None,
            remaining,
            base: query,
            keyset,
            after: None,
            offset: 0,
            done: false,
            calls: 0,
        })
    }

    /// Asks for `n` rows on the first call only.
    pub fn first_page(mut self, n: usize) -> CoqlCursor {
        self.first_page = Some(n.clamp(1, MAX_LIMIT));
        self
    }

    /// The query this cursor sends next (for EXPLAIN and logs).
    pub fn next_query(&self) -> Result<Query> {
        let mut q = self.base.clone();
        let size = match self.first_page {
            Some(n) if self.calls == 0 => n,
            _ => self.page_size,
        };
        let want = self.remaining.map_or(size, |r| r.min(size)).max(1);
        q.limit = Some(want);
        match &self.keyset {
            Some(k) => {
                q.order_by = vec![(k.field.api_name().to_string(), k.order())];
                if k.field != KeyField::Id {
                    q.order_by.push(("id".into(), k.order()));
                }
                q.offset = None;
                if let Some((key, id)) = &self.after {
                    let cond = k.after(key.as_ref(), *id)?;
                    q.filter = Some(match q.filter.take() {
                        Some(f) => f.and(cond),
                        None => cond,
                    });
                }
            }
            None => q.offset = Some(self.base.offset.unwrap_or(0) + self.offset).filter(|&o| o > 0),
        }
        Ok(q)
    }

    /// Calls made so far.
    pub fn calls(&self) -> u32 {
        self.calls
    }

    pub fn is_done(&self) -> bool {
        self.done || self.remaining == Some(0)
    }

    /// Fetches the next page through `client`; `None` once exhausted.
    pub async fn next_page(&mut self, client: &ZohoClient) -> Result<Option<Vec<Record>>> {
        if self.is_done() {
            return Ok(None);
        }
        let q = self.next_query()?;
        let limit = q.limit.unwrap_or(200);
        let text = q.render()?;
        let call = Call::new("coql", Method::POST, Target::Api(client.path("coql")))
            .json(json!({ "select_query": text }))
            .credits(coql_credits(limit))
            .pool(Pool::Sub);
        self.calls += 1;
        let reply: Option<CoqlReply> = client.t.send_json(&call).await?;
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
        if let (Some(k), Some(last)) = (&self.keyset, rows.last()) {
            let id = record_id(last)
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(|| Error::malformed("coql", "keyset paging needs id in every row"))?;
            let key = match &k.field {
                KeyField::Id => None,
                f => {
                    let v = last.get(f.api_name()).cloned().unwrap_or(Value::Null);
                    // Checked now, so a bad key fails here and not mid-query.
                    f.literal(&v)?;
                    Some(v)
                }
            };
            self.after = Some((key, id));
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

/// A [`CoqlCursor`] bound to a client.
pub struct CoqlPages<'c> {
    client: &'c ZohoClient,
    cursor: CoqlCursor,
}

impl CoqlPages<'_> {
    pub fn next_query(&self) -> Result<Query> {
        self.cursor.next_query()
    }

    /// See [`CoqlCursor::first_page`].
    pub fn first_page(mut self, n: usize) -> Self {
        self.cursor = self.cursor.first_page(n);
        self
    }

    pub fn is_done(&self) -> bool {
        self.cursor.is_done()
    }

    pub async fn next_page(&mut self) -> Result<Option<Vec<Record>>> {
        self.cursor.next_page(self.client).await
    }
}

impl ZohoClient {
    /// Pages through `query` (see [`CoqlCursor::new`]).
    pub fn coql(&self, query: Query, keyset: Option<Keyset>, page_size: usize) -> Result<CoqlPages<'_>> {
        Ok(CoqlPages { client: self, cursor: CoqlCursor::new(query, keyset, page_size)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keysets_paging_predicate_has_the_criteria_it_reserves() {
        for k in [Keyset::Id, Keyset::ModifiedTime, Keyset { field: KeyField::CreatedTime, descending: true }] {
            let cond = k.after(Some(&json!("2026-01-01T00:00:00+00:00")), 5).unwrap();
            assert_eq!(cond.criteria(), k.criteria(), "{k:?}");
        }
        // A nullable key also reserves its null split.
        let k = Keyset { field: KeyField::Value { name: "Amount".into(), kind: ValueKind::Number }, descending: true };
        assert_eq!(k.after(Some(&json!(12.5)), 5).unwrap().criteria() + k.non_null(false).criteria(), k.criteria());
    }

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
    fn aggregates_group_by_and_their_limits() {
        let q = Query::new("Leads", ["Lead_Status", "COUNT(id)", "SUM(Annual_Revenue)"]).filter(Cond::cmp("Annual_Revenue", CmpOp::Ge, Literal::Int(1000))).group_by("Lead_Status").limit(2000);
        assert_eq!(
            q.render().unwrap(),
            "select Lead_Status, COUNT(id), SUM(Annual_Revenue) from Leads where Annual_Revenue >= 1000 group by Lead_Status limit 2000"
        );
        // Zoho's documented sample parses back to the same shape.
        let sample = Query::new("Leads", ["SUM(Annual_Revenue)", "Company", "Last_Name"])
            .filter(Cond::cmp("Annual_Revenue", CmpOp::Ge, Literal::Int(1000)))
            .group_by("Company")
            .group_by("Last_Name");
        assert!(sample.render().unwrap().contains("where Annual_Revenue >= 1000 group by Company, Last_Name"));
        let six = Query::new("Leads", ["COUNT(id)", "SUM(A)", "MIN(A)", "MAX(A)", "AVG(A)", "COUNT(A)"]);
        assert!(six.render().is_err());
        let wide = ["A", "B", "C", "D", "E"].iter().fold(Query::new("Leads", ["COUNT(id)"]), |q, f| q.group_by(f));
        assert!(wide.render().is_err());
        assert!(Query::new("Leads", ["COUNT(id)"]).group_by("x; drop").render().is_err());
        assert!(Query::new("Leads", ["DROP(id)"]).render().is_err());
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

    #[test]
    fn keyset_queries_in_both_directions() {
        let q = Query::new("Leads", ["Last_Name"]);
        let mut c = CoqlCursor::new(q.clone(), Some(Keyset { field: KeyField::ModifiedTime, descending: true }), 500).unwrap();
        assert_eq!(
            c.next_query().unwrap().render().unwrap(),
            "select Last_Name, id, Modified_Time from Leads where id is not null order by Modified_Time desc, id desc limit 500"
        );
        c.after = Some((Some(json!("2025-01-02T03:04:05+05:30")), 42));
        assert_eq!(
            c.next_query().unwrap().render().unwrap(),
            "select Last_Name, id, Modified_Time from Leads where (Modified_Time <= '2025-01-02T03:04:05+05:30' and (Modified_Time < '2025-01-02T03:04:05+05:30' or id < 42)) order by Modified_Time desc, id desc limit 500"
        );
        let mut c = CoqlCursor::new(q.clone(), Some(Keyset::Id), 2000).unwrap().first_page(200);
        assert!(c.next_query().unwrap().render().unwrap().ends_with("limit 200"));
        c.calls = 1;
        assert!(c.next_query().unwrap().render().unwrap().ends_with("limit 2000"));
        let mut c = CoqlCursor::new(q.limit(30), Some(Keyset::Id), 2000).unwrap();
        c.after = Some((None, 7));
        assert_eq!(c.next_query().unwrap().render().unwrap(), "select Last_Name, id from Leads where id > 7 order by id asc limit 30");
        assert!(CoqlCursor::new(Query::new("Leads", ["id"]).order_by("id", Order::Asc), Some(Keyset::Id), 10).is_err());
    }

    #[test]
    fn a_value_keyset_pages_by_value_then_id_with_numbers_as_zoho_sends_them() {
        let k = Keyset { field: KeyField::Value { name: "Annual_Revenue".into(), kind: ValueKind::Number }, descending: true };
        let q = Query::new("Leads", ["Last_Name"]).filter(k.non_null(false));
        let mut c = CoqlCursor::new(q, Some(k.clone()), 2000).unwrap().first_page(5);
        assert_eq!(
            c.next_query().unwrap().render().unwrap(),
            "select Last_Name, id, Annual_Revenue from Leads where Annual_Revenue is not null order by Annual_Revenue desc, id desc limit 5"
        );
        for key in [json!(1000.5), json!("1000.5")] {
            c.after = Some((Some(key), 42));
            c.calls = 1;
            assert_eq!(
                c.next_query().unwrap().render().unwrap(),
                "select Last_Name, id, Annual_Revenue from Leads where (Annual_Revenue is not null and (Annual_Revenue <= 1000.5 and (Annual_Revenue < 1000.5 or id < 42))) order by Annual_Revenue desc, id desc limit 2000"
            );
        }
        let d = KeyField::Value { name: "Closing_Date".into(), kind: ValueKind::Date };
        assert_eq!(d.literal(&json!("2025-03-01")).unwrap(), Literal::Date(NaiveDate::from_ymd_opt(2025, 3, 1).unwrap()));
        assert!(d.literal(&Value::Null).is_err() && d.literal(&json!("soon")).is_err());
        assert_eq!(k.non_null(true), Cond::IsNull { field: "Annual_Revenue".into(), negated: false });
    }
}
