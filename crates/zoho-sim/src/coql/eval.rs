//! Evaluating a `Cond` over stored records, with SQL null semantics: a null
//! never satisfies a comparison, `in`, `between` or `like`, nor their
//! negations; only `is null` matches it.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use chrono::{DateTime, FixedOffset, NaiveDate};
use serde_json::{Map, Value};

use super::paths::{field_at, lookup_id, value_at, LookupFn};
use super::{CmpOp, Cond, LikePattern, Literal};
use crate::schema::{DataType, ModuleDef};

/// A value reduced to what it is compared as.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    /// Ids and lookups (by target id): exact, as i64.
    Int(i64),
    Num(f64),
    /// Lowercased: text compares case-insensitively.
    Text(String),
    Bool(bool),
    Date(NaiveDate),
    /// Compared as instants, whatever the offset.
    Dt(DateTime<FixedOffset>),
    /// A multi-select's values, lowercased.
    Set(BTreeSet<String>),
}

impl Scalar {
    fn cmp_same(&self, other: &Scalar) -> Option<Ordering> {
        match (self, other) {
            (Scalar::Int(a), Scalar::Int(b)) => Some(a.cmp(b)),
            (Scalar::Num(a), Scalar::Num(b)) => a.partial_cmp(b),
            (Scalar::Text(a), Scalar::Text(b)) => Some(a.cmp(b)),
            (Scalar::Bool(a), Scalar::Bool(b)) => Some(a.cmp(b)),
            (Scalar::Date(a), Scalar::Date(b)) => Some(a.cmp(b)),
            (Scalar::Dt(a), Scalar::Dt(b)) => Some(a.cmp(b)),
            (Scalar::Set(a), Scalar::Set(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    fn like(&self, p: &LikePattern) -> bool {
        match self {
            Scalar::Text(t) => p.matches(t),
            Scalar::Set(s) => s.iter().any(|t| p.matches(t)),
            _ => false,
        }
    }
}

/// Sort order for ORDER BY: nulls before every value.
pub(crate) fn sort_cmp(a: &Option<Scalar>, b: &Option<Scalar>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => x.cmp_same(y).unwrap_or(Ordering::Equal),
    }
}

fn num_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn set_of(items: impl Iterator<Item = String>) -> Option<Scalar> {
    let set: BTreeSet<String> = items.map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty()).collect();
    (!set.is_empty()).then_some(Scalar::Set(set))
}

/// A stored value as a scalar of type `vt`; None for null, empty, or a
/// value that does not fit the type.
pub(crate) fn stored_scalar(vt: DataType, v: &Value) -> Option<Scalar> {
    use DataType::*;
    match vt {
        Bigint | Lookup | Ownerlookup => lookup_id(v)?.parse().ok().map(Scalar::Int),
        Integer | Double | Currency | Percent => num_of(v).map(Scalar::Num),
        Boolean => match v {
            Value::Bool(b) => Some(Scalar::Bool(*b)),
            Value::String(s) => s.parse().ok().map(Scalar::Bool),
            _ => None,
        },
        Date => NaiveDate::parse_from_str(v.as_str()?, "%Y-%m-%d").ok().map(Scalar::Date),
        Datetime => DateTime::parse_from_rfc3339(v.as_str()?).ok().map(Scalar::Dt),
        Multiselectpicklist => match v {
            Value::Array(a) => set_of(a.iter().filter_map(|x| x.as_str().map(str::to_string))),
            Value::String(s) => set_of(s.split(';').map(str::to_string)),
            _ => None,
        },
        Text | Email | Phone | Website | Picklist | Textarea | Autonumber | Formula => match v {
            Value::String(s) if !s.is_empty() => Some(Scalar::Text(s.to_lowercase())),
            Value::Number(n) => Some(Scalar::Text(n.to_string())),
            Value::Bool(b) => Some(Scalar::Text(b.to_string())),
            _ => None,
        },
    }
}

fn is_int_text(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `yyyy-MM-ddTHH:mm:ss±HH:MM`, nothing more or less.
fn is_zoho_datetime(s: &str) -> bool {
    let b = s.as_bytes();
    let digit_at = |i: &[usize]| i.iter().all(|&i| b[i].is_ascii_digit());
    b.len() == 25
        && digit_at(&[0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 23, 24])
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && (b[19] == b'+' || b[19] == b'-')
        && b[22] == b':'
}

fn is_zoho_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10 && b[4] == b'-' && b[7] == b'-' && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// A query literal as a scalar of type `vt`, or the type it should have
/// been (for INVALID_QUERY's `expected_data_type`).
pub(crate) fn literal_scalar(vt: DataType, lit: &Literal) -> Result<Scalar, &'static str> {
    use DataType::*;
    match (vt, lit) {
        (Bigint | Lookup | Ownerlookup, Literal::Str(s) | Literal::Num(s)) if is_int_text(s) => s.parse().map(Scalar::Int).map_err(|_| "bigint"),
        (Bigint | Lookup | Ownerlookup, _) => Err("bigint"),
        (Integer, Literal::Str(s) | Literal::Num(s)) if is_int_text(s.trim()) => s.trim().parse::<f64>().map(Scalar::Num).map_err(|_| "integer"),
        (Integer, _) => Err("integer"),
        (Double | Currency | Percent, Literal::Str(s) | Literal::Num(s)) => match s.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(Scalar::Num(n)),
            _ => Err("double"),
        },
        (Double | Currency | Percent, _) => Err("double"),
        (Boolean, Literal::Bool(b)) => Ok(Scalar::Bool(*b)),
        (Boolean, Literal::Str(s)) if s.eq_ignore_ascii_case("true") => Ok(Scalar::Bool(true)),
        (Boolean, Literal::Str(s)) if s.eq_ignore_ascii_case("false") => Ok(Scalar::Bool(false)),
        (Boolean, _) => Err("boolean"),
        (Date, Literal::Str(s)) if is_zoho_date(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d").map(Scalar::Date).map_err(|_| "date"),
        (Date, _) => Err("date"),
        (Datetime, Literal::Str(s)) if is_zoho_datetime(s) => DateTime::parse_from_rfc3339(s).map(Scalar::Dt).map_err(|_| "datetime"),
        (Datetime, _) => Err("datetime"),
        (Multiselectpicklist, Literal::Str(s)) => set_of(s.split(';').map(str::to_string)).ok_or("multiselectpicklist"),
        (Multiselectpicklist, _) => Err("multiselectpicklist"),
        (_, Literal::Str(s)) => Ok(Scalar::Text(s.to_lowercase())),
        _ => Err("text"),
    }
}

/// Whether `record` satisfies `cond`. Dotted paths evaluate to null here,
/// since no resolver is given; `execute` resolves them.
pub fn matches(cond: &Cond, module: &ModuleDef, record: &Map<String, Value>) -> bool {
    eval(cond, module, record, None)
}

pub(crate) fn eval(cond: &Cond, module: &ModuleDef, record: &Map<String, Value>, lookup: Option<LookupFn<'_>>) -> bool {
    let field = match cond {
        Cond::And(a, b) => return eval(a, module, record, lookup) && eval(b, module, record, lookup),
        Cond::Or(a, b) => return eval(a, module, record, lookup) || eval(b, module, record, lookup),
        leaf => leaf.field().unwrap_or_default(),
    };
    let Some(def) = field_at(module, field) else { return false };
    let vt = def.value_type();
    let v = stored_scalar(vt, &value_at(module, record, field, lookup));
    if let Cond::Null { negated, .. } = cond {
        return v.is_some() == *negated;
    }
    // Null semantics: from here on a null value matches nothing.
    let Some(v) = v else { return false };
    let lit = |l: &Literal| literal_scalar(vt, l).ok();
    match cond {
        Cond::Cmp { op, value, .. } => {
            let Some(ord) = lit(value).and_then(|x| v.cmp_same(&x)) else { return false };
            match op {
                CmpOp::Eq => ord.is_eq(),
                CmpOp::Ne => ord.is_ne(),
                CmpOp::Lt => ord.is_lt(),
                CmpOp::Le => ord.is_le(),
                CmpOp::Gt => ord.is_gt(),
                CmpOp::Ge => ord.is_ge(),
            }
        }
        Cond::In { values, negated, .. } => values.iter().any(|l| lit(l).is_some_and(|x| v.cmp_same(&x) == Some(Ordering::Equal))) != *negated,
        Cond::Between { low, high, negated, .. } => {
            let (Some(lo), Some(hi)) = (lit(low), lit(high)) else { return false };
            let inside = v.cmp_same(&lo).is_some_and(Ordering::is_ge) && v.cmp_same(&hi).is_some_and(Ordering::is_le);
            inside != *negated
        }
        Cond::Like { pattern, negated, .. } => v.like(pattern) != *negated,
        Cond::Null { .. } | Cond::And(..) | Cond::Or(..) => unreachable!("handled above"),
    }
}
