//! The simulator's query engine: COQL (`POST /crm/v8/coql`, zoho-api.md §6)
//! and bulk-read criteria (§7.1). Pure functions over records stored in the
//! JSON shape the API returns; no state, no I/O.
//!
//! Decisions on points the Zoho docs leave open (each has a test):
//! - Text comparisons (`=`, `in`, `like`, bulk `contains`…) are
//!   case-insensitive. Clients that push such filters down must recheck
//!   locally, since a live org's behaviour is not pinned down.
//! - `from Leads#<cvid>` parses, but `execute` rejects it with INVALID_QUERY:
//!   the simulator has no custom views, and ignoring the id would silently
//!   return rows a live org would filter out.
//! - Aggregates (`COUNT(id)`, `MAX(Modified_Time)`…) run over the whole
//!   WHERE, one row keyed by the expression, without `id`; LIMIT and ORDER
//!   BY do not apply to it. With `group by` (up to 4 fields), one row per
//!   distinct combination of the fields' values as compared (text
//!   case-insensitively; null is a group of
//!   its own), in ascending order of the group fields unless ORDER BY (on
//!   group fields only) says otherwise; LIMIT and OFFSET page the groups.
//!   Selected fields must be group fields. Aliases (`as`) are rejected by
//!   `parse`. All with INVALID_QUERY.
//! - A date literal against a datetime field (or the reverse) is a type
//!   error, not "midnight UTC": a client that passes here also passes live.
//!   Datetime literals need an explicit `±HH:MM` offset and no milliseconds.
//! - Numbers and ids may be quoted (`No_of_Employees = '10'`); text,
//!   dates and datetimes must be quoted; booleans are `true`/`false`, bare
//!   or quoted.
//! - `not like` only accepts `'%x%'` patterns (the only form Zoho documents).
//! - Multi-select: the literal `'A;B'` is a set. `=`/`!=` compare sets
//!   (order and case ignored); `like` matches when any chosen value matches.
//! - Empty strings and empty multi-select arrays count as null.
//! - ORDER BY puts nulls first when ascending, last when descending; ties
//!   fall back to ascending id.
//! - Leads whose `Converted__s` is true are left out unless the WHERE clause
//!   names `Converted__s` (observed Zoho behaviour, §6).
//! - Dotted paths reach at most two lookups deep. `Owner.<x>` resolves
//!   against a small `users` module (id, name, first_name, last_name,
//!   full_name, email) through `lookup("users", id)`.

mod criteria;
mod eval;
mod exec;
mod lexer;
mod parser;
mod paths;
mod validate;

#[cfg(test)]
mod tests;

use serde_json::{json, Value};

use crate::schema::ModuleDef;

pub use criteria::criteria_from_json;
pub use eval::matches;
pub use exec::{execute, CoqlOutput};
pub use parser::parse;
pub use paths::LookupFn;

pub const DEFAULT_LIMIT: usize = 200;
pub const MAX_LIMIT: usize = 2_000;
/// Rows reachable through LIMIT/OFFSET for one query.
pub const MAX_REACHABLE: usize = 100_000;
pub const MAX_CRITERIA: usize = 25;
pub const MAX_IN_VALUES: usize = 100;
pub const MAX_SELECT_FIELDS: usize = 500;
pub const MAX_ORDER_BY: usize = 10;
pub const MAX_AGGREGATES: usize = 5;
pub const MAX_GROUP_BY: usize = 4;

#[derive(Debug, Clone, PartialEq)]
pub struct CoqlError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub details: Value,
}

impl CoqlError {
    pub fn new(code: &'static str, message: impl Into<String>, details: Value) -> Self {
        CoqlError {
            status: 400,
            code,
            message: message.into(),
            details,
        }
    }

    pub(crate) fn syntax(line: usize, column: usize, near: &str) -> Self {
        Self::new("SYNTAX_ERROR", "invalid query formed", json!({"line": line, "column": column, "near": near}))
    }

    pub(crate) fn clause(clause: &str) -> Self {
        Self::new("SYNTAX_ERROR", "invalid query formed", json!({"clause": clause}))
    }

    pub(crate) fn invalid(message: &str, details: Value) -> Self {
        Self::new("INVALID_QUERY", message, details)
    }

    pub(crate) fn invalid_column(column: &str) -> Self {
        Self::invalid(
            "column given seems to be invalid",
            json!({"column_name": column, "reason": "invalid column given"}),
        )
    }

    pub(crate) fn limit(message: &str, details: Value) -> Self {
        Self::new("LIMIT_EXCEEDED", message, details)
    }

    /// The error body as the API sends it.
    pub fn to_json(&self) -> Value {
        json!({"status": "error", "code": self.code, "message": self.message, "details": self.details})
    }
}

impl std::fmt::Display for CoqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} {}", self.code, self.message, self.details)
    }
}

impl std::error::Error for CoqlError {}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub select: Vec<SelectItem>,
    pub module: String,
    /// The custom view of `from Module#<cvid>`; `execute` rejects it.
    pub cvid: Option<String>,
    pub filter: Cond,
    pub order_by: Vec<OrderItem>,
    pub group_by: Vec<String>,
    pub limit: usize,
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    /// A field API name, possibly dotted through lookups.
    Field(String),
    Aggregate {
        func: String,
        field: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderItem {
    pub field: String,
    pub ascending: bool,
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
    pub fn as_str(self) -> &'static str {
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

/// A value as written in the query, typed only once the field is known.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    /// The number's source text, so that big ids keep every digit.
    Num(String),
    Bool(bool),
}

/// A `like` pattern: literal parts separated by `%` wildcards. Built from
/// COQL text or from bulk `contains`/`starts_with`/`ends_with`, where a `%`
/// in the value stays literal.
#[derive(Debug, Clone, PartialEq)]
pub struct LikePattern {
    /// As written, for error details.
    pub source: String,
    /// Lowercased; an empty first/last part means the pattern is open there.
    parts: Vec<String>,
}

impl LikePattern {
    pub fn parse(source: &str) -> Self {
        LikePattern {
            source: source.to_string(),
            parts: source.to_lowercase().split('%').map(str::to_string).collect(),
        }
    }

    pub fn contains(x: &str) -> Self {
        Self::from_parts(format!("%{x}%"), vec![String::new(), x.to_lowercase(), String::new()])
    }

    pub fn starts_with(x: &str) -> Self {
        Self::from_parts(format!("{x}%"), vec![x.to_lowercase(), String::new()])
    }

    pub fn ends_with(x: &str) -> Self {
        Self::from_parts(format!("%{x}"), vec![String::new(), x.to_lowercase()])
    }

    fn from_parts(source: String, parts: Vec<String>) -> Self {
        LikePattern { source, parts }
    }

    /// Whether this is the `'%x%'` form, the only one `not like` takes.
    pub fn is_contains(&self) -> bool {
        self.parts.len() >= 3 && self.parts[0].is_empty() && self.parts[self.parts.len() - 1].is_empty()
    }

    /// Case-insensitive match of the whole text.
    pub fn matches(&self, text: &str) -> bool {
        let text = text.to_lowercase();
        let parts = &self.parts;
        if parts.len() == 1 {
            return text == parts[0];
        }
        let (first, last) = (&parts[0], &parts[parts.len() - 1]);
        let Some(rest) = text.strip_prefix(first.as_str()) else { return false };
        // The anchored ends must not overlap, hence strip the suffix from
        // what is left after the prefix.
        let Some(mut rest) = rest.strip_suffix(last.as_str()) else { return false };
        for mid in &parts[1..parts.len() - 1] {
            match rest.find(mid.as_str()) {
                Some(i) => rest = &rest[i + mid.len()..],
                None => return false,
            }
        }
        true
    }
}

/// A typed predicate tree. `And`/`Or` are binary, as COQL requires.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Cmp {
        field: String,
        op: CmpOp,
        value: Literal,
    },
    In {
        field: String,
        values: Vec<Literal>,
        negated: bool,
    },
    Between {
        field: String,
        low: Literal,
        high: Literal,
        negated: bool,
    },
    /// `is null`, or `is not null` when negated.
    Null {
        field: String,
        negated: bool,
    },
    Like {
        field: String,
        pattern: LikePattern,
        negated: bool,
    },
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
}

impl Cond {
    /// The number of leaf conditions (what the 25-criteria cap counts).
    pub fn criteria_count(&self) -> usize {
        match self {
            Cond::And(a, b) | Cond::Or(a, b) => a.criteria_count() + b.criteria_count(),
            _ => 1,
        }
    }

    /// Leaves in order, left to right.
    pub fn leaves(&self) -> Vec<&Cond> {
        let mut out = Vec::new();
        fn walk<'a>(c: &'a Cond, out: &mut Vec<&'a Cond>) {
            match c {
                Cond::And(a, b) | Cond::Or(a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                leaf => out.push(leaf),
            }
        }
        walk(self, &mut out);
        out
    }

    /// The field a leaf tests; None for `And`/`Or`.
    pub fn field(&self) -> Option<&str> {
        match self {
            Cond::Cmp { field, .. } | Cond::In { field, .. } | Cond::Between { field, .. } | Cond::Null { field, .. } | Cond::Like { field, .. } => Some(field),
            Cond::And(..) | Cond::Or(..) => None,
        }
    }
}

/// Credits a COQL call costs, by its LIMIT (zoho-api.md §6 limits table).
pub fn credits_for_limit(limit: usize) -> u32 {
    match limit {
        0..=200 => 1,
        201..=1000 => 2,
        _ => 3,
    }
}

/// Finds the module a query names among `catalog`; unknown modules and
/// modules that no data API serves give INVALID_QUERY. Module names match
/// case-insensitively (field names do not).
pub fn resolve_module<'a>(q: &Query, catalog: &'a [ModuleDef]) -> Result<&'a ModuleDef, CoqlError> {
    catalog
        .iter()
        .find(|m| m.api_name.eq_ignore_ascii_case(&q.module) && m.api_supported && m.data_access)
        .ok_or_else(|| CoqlError::invalid("invalid query formed", json!({"module": q.module, "reason": "invalid module given"})))
}

/// Checks that need no module: the numeric caps and repeated columns. Run
/// by `parse` (to fail early, as Zoho does) and again by `execute` (so a
/// hand-built `Query` is held to the same rules).
pub(crate) fn check_shape(q: &Query) -> Result<(), CoqlError> {
    if q.limit == 0 {
        return Err(CoqlError::invalid(
            "invalid query formed",
            json!({"clause": "limit", "reason": "limit should be at least 1"}),
        ));
    }
    if q.limit > MAX_LIMIT {
        return Err(CoqlError::limit(
            "Given limit exceeds the maximum limit",
            json!({"clause": "limit", "limit": MAX_LIMIT}),
        ));
    }
    if q.offset.saturating_add(q.limit) > MAX_REACHABLE {
        return Err(CoqlError::limit(
            "offset and limit exceed the maximum rows reachable",
            json!({"clause": "offset", "limit": MAX_REACHABLE}),
        ));
    }
    if q.select.len() > MAX_SELECT_FIELDS {
        return Err(CoqlError::limit(
            "too many fields in select",
            json!({"clause": "select", "limit": MAX_SELECT_FIELDS}),
        ));
    }
    if q.order_by.len() > MAX_ORDER_BY {
        return Err(CoqlError::limit(
            "too many fields in order by",
            json!({"clause": "order by", "limit": MAX_ORDER_BY}),
        ));
    }
    if q.group_by.len() > MAX_GROUP_BY {
        return Err(CoqlError::limit(
            "too many fields in group by",
            json!({"clause": "group by", "limit": MAX_GROUP_BY}),
        ));
    }
    if q.filter.criteria_count() > MAX_CRITERIA {
        return Err(CoqlError::limit(
            "too many criteria in where",
            json!({"clause": "where", "limit": MAX_CRITERIA}),
        ));
    }
    for leaf in q.filter.leaves() {
        if let Cond::In { field, values, negated } = leaf {
            if values.len() > MAX_IN_VALUES {
                let op = if *negated { "not in" } else { "in" };
                return Err(CoqlError::limit(
                    "too many values in criteria",
                    json!({"column_name": field, "operator": op, "limit": MAX_IN_VALUES}),
                ));
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    for item in &q.select {
        let key = match item {
            SelectItem::Field(f) => f.clone(),
            SelectItem::Aggregate { func, field } => format!("{func}({field})"),
        };
        if !seen.insert(key.clone()) {
            return Err(CoqlError::new("DUPLICATE_DATA", "duplicate column given", json!({"column_name": key})));
        }
    }
    Ok(())
}
