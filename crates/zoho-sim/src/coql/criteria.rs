//! Bulk-read criteria JSON (zoho-api.md §7.1) to a `Cond`, with the error
//! codes of `bulk_read.json`. The caps (25 conditions, 100 values) are not
//! published for bulk read; the simulator borrows COQL's.

use serde_json::{json, Map, Value};

use super::validate::{allowed_ops, check_leaf, LeafError, OpKind};
use super::{CmpOp, Cond, CoqlError, LikePattern, Literal, MAX_CRITERIA, MAX_IN_VALUES};
use crate::schema::ModuleDef;

/// Zoho's spelling of "empty" in a criteria value.
const EMPTY: &str = "${EMPTY}";
/// Longest text value a criterion takes.
const MAX_TEXT: usize = 255;

fn err(code: &'static str, message: &str, details: Value) -> CoqlError {
    CoqlError::new(code, message, details)
}

fn invalid(details: Value) -> CoqlError {
    err("INVALID_CRITERIA", "invalid criteria specified", details)
}

/// Converts and validates a criteria object against `module`. Groups with
/// more than two members fold left: `[a, b, c]` is `((a op b) op c)`.
pub fn criteria_from_json(v: &Value, module: &ModuleDef) -> Result<Cond, CoqlError> {
    let cond = build(v, module)?;
    if cond.criteria_count() > MAX_CRITERIA {
        return Err(err(
            "CRITERIA_LIMIT_EXCEEDED",
            "the number of criteria exceeds the limit",
            json!({"limit": MAX_CRITERIA}),
        ));
    }
    Ok(cond)
}

fn build(v: &Value, module: &ModuleDef) -> Result<Cond, CoqlError> {
    let Some(obj) = v.as_object() else {
        return Err(invalid(json!({"reason": "criteria must be an object"})));
    };
    let is_group = obj.contains_key("group") || obj.contains_key("group_operator");
    let is_leaf = obj.contains_key("field") || obj.contains_key("comparator");
    match (is_group, is_leaf) {
        (true, true) => Err(err("AMBIGUOUS_CRITERIA", "criteria has both a condition and a group", json!({}))),
        (true, false) => group(obj, module),
        (false, true) => leaf(obj, module),
        (false, false) => Err(invalid(json!({"reason": "criteria has neither a condition nor a group"}))),
    }
}

fn group(obj: &Map<String, Value>, module: &ModuleDef) -> Result<Cond, CoqlError> {
    let op = obj.get("group_operator").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
    if op != "and" && op != "or" {
        return Err(err(
            "GROUP_OPERATOR_NOT_SUPPORTED",
            "the group operator is not supported",
            json!({"group_operator": obj.get("group_operator")}),
        ));
    }
    let members = match obj.get("group") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        _ => return Err(invalid(json!({"reason": "group must be a non-empty array"}))),
    };
    let mut conds = members.iter().map(|m| build(m, module));
    let mut acc = conds.next().expect("non-empty")?;
    for c in conds {
        let c = Box::new(c?);
        acc = if op == "and" {
            Cond::And(Box::new(acc), c)
        } else {
            Cond::Or(Box::new(acc), c)
        };
    }
    Ok(acc)
}

fn literal(v: &Value, api_name: &str, comparator: &str) -> Result<Literal, CoqlError> {
    let bad = || {
        err(
            "COMPARATOR_AND_VALUE_IN_CRITERIA_NOT_COMPATIBLE",
            "the value does not fit the comparator",
            json!({"api_name": api_name, "comparator": comparator}),
        )
    };
    match v {
        Value::String(s) if s == EMPTY => Err(bad()),
        Value::String(s) if s.chars().count() > MAX_TEXT => Err(err(
            "VALUE_IN_CRITERIA_NOT_SUPPORTED",
            "the value is too long",
            json!({"api_name": api_name, "maximum_length": MAX_TEXT}),
        )),
        Value::String(s) => Ok(Literal::Str(s.clone())),
        Value::Number(n) => Ok(Literal::Num(n.to_string())),
        Value::Bool(b) => Ok(Literal::Bool(*b)),
        _ => Err(bad()),
    }
}

fn text(v: &Value, api_name: &str, comparator: &str) -> Result<String, CoqlError> {
    match literal(v, api_name, comparator)? {
        Literal::Str(s) | Literal::Num(s) => Ok(s),
        Literal::Bool(b) => Ok(b.to_string()),
    }
}

fn leaf(obj: &Map<String, Value>, module: &ModuleDef) -> Result<Cond, CoqlError> {
    let Some(api_name) = obj.get("field").and_then(|f| f.get("api_name")).and_then(Value::as_str) else {
        return Err(invalid(json!({"reason": "field.api_name is required"})));
    };
    let Some(comparator) = obj.get("comparator").and_then(Value::as_str) else {
        return Err(invalid(json!({"api_name": api_name, "reason": "comparator is required"})));
    };
    // Lookups through dots are for `fields`, not for criteria.
    if api_name.contains('.') {
        return Err(err(
            "FIELD_IN_CRITERIA_NOT_SUPPORTED",
            "the field cannot be used in criteria",
            json!({"api_name": api_name}),
        ));
    }
    let value = obj.get("value").unwrap_or(&Value::Null);
    let field = api_name.to_string();
    let is_empty = value.as_str() == Some(EMPTY);
    let list = |want: Option<usize>| -> Result<Vec<Literal>, CoqlError> {
        let items = match value {
            Value::Array(a) => a.clone(),
            // A lone value is a one-element list.
            v if want.is_none() && !v.is_null() => vec![v.clone()],
            _ => vec![],
        };
        if items.is_empty() || want.is_some_and(|n| items.len() != n) {
            return Err(err(
                "COMPARATOR_AND_VALUE_IN_CRITERIA_NOT_COMPATIBLE",
                "the value does not fit the comparator",
                json!({"api_name": api_name, "comparator": comparator}),
            ));
        }
        if items.len() > MAX_IN_VALUES {
            return Err(err(
                "VALUE_LIMIT_EXCEEDED_IN_CRITERIA",
                "too many values in criteria",
                json!({"api_name": api_name, "limit": MAX_IN_VALUES}),
            ));
        }
        items.iter().map(|i| literal(i, api_name, comparator)).collect()
    };
    let cmp = |op| -> Result<Cond, CoqlError> {
        Ok(Cond::Cmp {
            field: field.clone(),
            op,
            value: literal(value, api_name, comparator)?,
        })
    };
    let like = |make: fn(&str) -> LikePattern, negated| -> Result<Cond, CoqlError> {
        Ok(Cond::Like {
            field: field.clone(),
            pattern: make(&text(value, api_name, comparator)?),
            negated,
        })
    };
    let cond = match comparator {
        "equal" | "not_equal" if is_empty => Cond::Null {
            field: field.clone(),
            negated: comparator == "not_equal",
        },
        "equal" => cmp(CmpOp::Eq)?,
        "not_equal" => cmp(CmpOp::Ne)?,
        "less_than" => cmp(CmpOp::Lt)?,
        "less_equal" => cmp(CmpOp::Le)?,
        "greater_than" => cmp(CmpOp::Gt)?,
        "greater_equal" => cmp(CmpOp::Ge)?,
        "in" | "not_in" => Cond::In {
            field: field.clone(),
            values: list(None)?,
            negated: comparator == "not_in",
        },
        "between" | "not_between" => {
            let mut pair = list(Some(2))?.into_iter();
            let (low, high) = (pair.next().expect("two"), pair.next().expect("two"));
            Cond::Between {
                field: field.clone(),
                low,
                high,
                negated: comparator == "not_between",
            }
        }
        "contains" => like(LikePattern::contains, false)?,
        "not_contains" => like(LikePattern::contains, true)?,
        "starts_with" => like(LikePattern::starts_with, false)?,
        "ends_with" => like(LikePattern::ends_with, false)?,
        _ => return Err(invalid(json!({"api_name": api_name, "comparator": comparator, "reason": "unknown comparator"}))),
    };
    check_leaf(module, &cond).map_err(|e| match e {
        LeafError::UnknownField => err(
            "FIELD_IN_CRITERIA_NOT_AVAILABLE",
            "the field in criteria is not available",
            json!({"api_name": api_name, "module": module.api_name}),
        ),
        LeafError::NotFilterable(_) => err(
            "FIELD_IN_CRITERIA_NOT_SUPPORTED",
            "the field cannot be used in criteria",
            json!({"api_name": api_name}),
        ),
        LeafError::Operator(dt) => err(
            "FIELD_AND_COMPARATOR_IN_CRITERIA_NOT_COMPATIBLE",
            "the comparator does not fit the field",
            json!({"api_name": api_name, "comparator": comparator, "supported": supported(dt)}),
        ),
        LeafError::Value { expected, .. } => err(
            "FIELD_AND_VALUE_IN_CRITERIA_NOT_COMPATIBLE",
            "the value does not fit the field",
            json!({"api_name": api_name, "expected_data_type": expected}),
        ),
        // Bulk comparators only build `%x%` negations.
        LeafError::NotLikeShape => invalid(json!({"api_name": api_name, "comparator": comparator})),
    })?;
    Ok(cond)
}

/// The bulk comparators a type takes, for error details.
fn supported(dt: crate::schema::DataType) -> Vec<&'static str> {
    allowed_ops(dt)
        .iter()
        .flat_map(|k| -> &'static [&'static str] {
            match k {
                OpKind::Eq => &["equal"],
                OpKind::Ne => &["not_equal"],
                OpKind::Order => &["less_than", "less_equal", "greater_than", "greater_equal"],
                OpKind::In => &["in", "not_in"],
                OpKind::Between => &["between", "not_between"],
                OpKind::Like => &["contains", "not_contains", "starts_with", "ends_with"],
                OpKind::Null => &[],
            }
        })
        .copied()
        .collect()
}
