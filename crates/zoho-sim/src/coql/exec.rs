//! Running a parsed query: validate against the module, filter, sort, page,
//! project.

use std::cmp::Ordering;

use serde_json::{json, Map, Value};

use super::eval::{eval, sort_cmp, stored_scalar};
use super::paths::{field_at, lookup_id, value_at, LookupFn};
use super::validate::{check_leaf, op_name, LeafError};
use super::{check_shape, CoqlError, Query, SelectItem};
use crate::schema::{DataType, ModuleDef};

#[derive(Debug, Clone, PartialEq)]
pub struct CoqlOutput {
    pub rows: Vec<Map<String, Value>>,
    /// Rows exist past `offset + limit`.
    pub more_records: bool,
}

/// Validates `q` against `module` and runs it over `rows` (all live records
/// of the module). `lookup(target_module, id)` resolves dotted paths; owner
/// lookups ask for module `users`.
pub fn execute(q: &Query, module: &ModuleDef, rows: &[&Map<String, Value>], lookup: LookupFn<'_>) -> Result<CoqlOutput, CoqlError> {
    validate(q, module)?;
    let names_converted = q.filter.leaves().iter().any(|l| l.field() == Some("Converted__s"));
    let hide_converted = module.field("Converted__s").is_some() && !names_converted;

    let mut hits: Vec<&Map<String, Value>> = rows
        .iter()
        .copied()
        .filter(|r| !(hide_converted && r.get("Converted__s") == Some(&Value::Bool(true))))
        .filter(|r| eval(&q.filter, module, r, Some(lookup)))
        .collect();

    let id_of = |r: &Map<String, Value>| stored_scalar(DataType::Bigint, r.get("id").unwrap_or(&Value::Null));
    hits.sort_by(|a, b| sort_cmp(&id_of(a), &id_of(b)));
    if !q.order_by.is_empty() {
        // Keys computed once per row: dotted keys may call the resolver.
        let mut keyed: Vec<_> = hits
            .into_iter()
            .map(|r| {
                let keys: Vec<_> = q
                    .order_by
                    .iter()
                    .map(|o| field_at(module, &o.field).and_then(|f| stored_scalar(f.value_type(), &value_at(module, r, &o.field, Some(lookup)))))
                    .collect();
                (keys, r)
            })
            .collect();
        // Stable sort: equal keys keep the ascending-id order from above.
        keyed.sort_by(|(ka, _), (kb, _)| {
            q.order_by
                .iter()
                .zip(ka.iter().zip(kb))
                .map(|(o, (a, b))| if o.ascending { sort_cmp(a, b) } else { sort_cmp(b, a) })
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        });
        hits = keyed.into_iter().map(|(_, r)| r).collect();
    }

    let end = q.offset.saturating_add(q.limit);
    let more_records = hits.len() > end;
    let rows = hits.iter().skip(q.offset).take(q.limit).map(|r| project(q, module, r, lookup)).collect();
    Ok(CoqlOutput { rows, more_records })
}

fn validate(q: &Query, module: &ModuleDef) -> Result<(), CoqlError> {
    check_shape(q)?;
    if let Some(cvid) = &q.cvid {
        return Err(CoqlError::invalid(
            "invalid query formed",
            json!({"module": format!("{}#{cvid}", q.module), "reason": "custom view not found"}),
        ));
    }
    for item in &q.select {
        match item {
            SelectItem::Field(f) => {
                field_at(module, f).ok_or_else(|| CoqlError::invalid_column(f))?;
            }
            SelectItem::Aggregate { func, field } => {
                return Err(CoqlError::invalid(
                    "invalid query formed",
                    json!({"column_name": format!("{func}({field})"), "reason": "aggregate functions are not supported by the simulator"}),
                ));
            }
        }
    }
    for leaf in q.filter.leaves() {
        let column = leaf.field().unwrap_or_default();
        let operator = op_name(leaf);
        check_leaf(module, leaf).map_err(|e| match e {
            LeafError::UnknownField => CoqlError::invalid_column(column),
            LeafError::NotFilterable(dt) => CoqlError::invalid(
                "data type not supported",
                json!({"column_name": column, "operator": operator, "data_type": dt.as_str(), "reason": "column cannot be used in criteria"}),
            ),
            LeafError::Operator(dt) => CoqlError::invalid(
                "invalid query formed",
                json!({"column_name": column, "operator": operator, "data_type": dt.as_str(), "reason": "invalid operator found"}),
            ),
            LeafError::NotLikeShape => CoqlError::invalid(
                "invalid query formed",
                json!({"column_name": column, "operator": operator, "reason": "not like supports only the '%value%' form"}),
            ),
            LeafError::Value { data_type, expected } => CoqlError::invalid(
                "value given seems to be invalid for the column",
                json!({"column_name": column, "operator": operator, "data_type": data_type.as_str(), "expected_data_type": expected, "reason": "invalid value given"}),
            ),
        })?;
    }
    for o in &q.order_by {
        field_at(module, &o.field).ok_or_else(|| CoqlError::invalid_column(&o.field))?;
    }
    Ok(())
}

/// A lookup as COQL returns it: `{"id","name"}`.
fn lookup_out(v: &Value) -> Value {
    let Some(id) = lookup_id(v) else { return Value::Null };
    let name = v.get("name").cloned().unwrap_or(Value::Null);
    json!({"id": id, "name": name})
}

fn project(q: &Query, module: &ModuleDef, r: &Map<String, Value>, lookup: LookupFn<'_>) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("id".into(), r.get("id").cloned().unwrap_or(Value::Null));
    for item in &q.select {
        let SelectItem::Field(path) = item else { continue };
        let v = value_at(module, r, path, Some(lookup));
        let v = match field_at(module, path).map(|f| f.data_type) {
            Some(DataType::Lookup | DataType::Ownerlookup) => lookup_out(&v),
            _ => v,
        };
        out.insert(path.clone(), v);
    }
    out
}
