//! Running a parsed query: validate against the module, filter, sort, page,
//! project.

use std::cmp::Ordering;

use serde_json::{json, Map, Value};

use super::eval::{eval, sort_cmp, stored_scalar, Scalar};
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

    if !q.group_by.is_empty() {
        return Ok(grouped(q, module, &hits, lookup));
    }
    if q.select.iter().any(|i| matches!(i, SelectItem::Aggregate { .. })) {
        return Ok(CoqlOutput { rows: vec![aggregate(q, module, &hits, lookup)], more_records: false });
    }
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
    // Without GROUP BY, fields and aggregates cannot be mixed; with it,
    // every selected field is a group field, and so is every ORDER BY.
    let aggregates = q.select.iter().filter(|i| matches!(i, SelectItem::Aggregate { .. })).count();
    if q.group_by.is_empty() && aggregates > 0 && aggregates < q.select.len() {
        return Err(CoqlError::invalid("invalid query formed", json!({"clause": "select", "reason": "fields next to aggregate functions need a group by clause"})));
    }
    for g in &q.group_by {
        let f = field_at(module, g).ok_or_else(|| CoqlError::invalid_column(g))?;
        if matches!(f.data_type, DataType::Textarea | DataType::Multiselectpicklist) {
            return Err(CoqlError::invalid("invalid query formed", json!({"column_name": g, "clause": "group by", "reason": "column cannot be grouped"})));
        }
    }
    let ungrouped = q.select.iter().find_map(|i| match i {
        SelectItem::Field(f) if !q.group_by.is_empty() && !q.group_by.contains(f) => Some(f.clone()),
        _ => None,
    });
    let ungrouped = ungrouped.or_else(|| q.order_by.iter().find(|o| !q.group_by.is_empty() && !q.group_by.contains(&o.field)).map(|o| o.field.clone()));
    if let Some(f) = ungrouped {
        return Err(CoqlError::invalid("invalid query formed", json!({"column_name": f, "clause": "group by", "reason": "column is not in the group by clause"})));
    }
    if aggregates > super::MAX_AGGREGATES {
        return Err(CoqlError::limit("too many aggregate columns", json!({"clause": "select", "limit": super::MAX_AGGREGATES})));
    }
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
                let column = format!("{func}({field})");
                let f = field_at(module, field).ok_or_else(|| CoqlError::invalid_column(field))?;
                let numeric = matches!(f.value_type(), DataType::Integer | DataType::Double | DataType::Currency | DataType::Percent);
                let ordered = numeric || matches!(f.value_type(), DataType::Date | DataType::Datetime);
                let fits = match func.as_str() {
                    "COUNT" => true,
                    "MIN" | "MAX" => ordered,
                    _ => numeric,
                };
                if !fits {
                    return Err(CoqlError::invalid("invalid query formed", json!({"column_name": column, "reason": "invalid aggregate function for the column's data type"})));
                }
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

/// One row per group: the group fields as a plain query returns them, and
/// the aggregates over the group's hits.
fn grouped(q: &Query, module: &ModuleDef, hits: &[&Map<String, Value>], lookup: LookupFn<'_>) -> CoqlOutput {
    let key_of = |r: &Map<String, Value>| -> Vec<Option<Scalar>> {
        q.group_by
            .iter()
            .map(|g| field_at(module, g).and_then(|f| stored_scalar(f.value_type(), &value_at(module, r, g, Some(lookup)))))
            .collect()
    };
    let mut groups: Vec<(Vec<Option<Scalar>>, Vec<&Map<String, Value>>)> = Vec::new();
    for r in hits {
        let key = key_of(r);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(r),
            None => groups.push((key, vec![r])),
        }
    }
    let order: Vec<(usize, bool)> = if q.order_by.is_empty() {
        (0..q.group_by.len()).map(|i| (i, true)).collect()
    } else {
        q.order_by.iter().filter_map(|o| q.group_by.iter().position(|g| *g == o.field).map(|i| (i, o.ascending))).collect()
    };
    groups.sort_by(|(a, _), (b, _)| {
        order
            .iter()
            .map(|&(i, asc)| if asc { sort_cmp(&a[i], &b[i]) } else { sort_cmp(&b[i], &a[i]) })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    });
    let end = q.offset.saturating_add(q.limit);
    let more_records = groups.len() > end;
    let rows = groups
        .iter()
        .skip(q.offset)
        .take(q.limit)
        .map(|(_, members)| {
            let mut row = project(q, module, members[0], lookup);
            row.remove("id");
            row.extend(aggregate(q, module, members, lookup));
            row
        })
        .collect();
    CoqlOutput { rows, more_records }
}

/// One row of `FUNC(field)` keys over every hit (no `id`): COUNT counts
/// values that are not null, MIN and MAX return the stored value, SUM and
/// AVG a JSON number (AVG null over no values).
fn aggregate(q: &Query, module: &ModuleDef, hits: &[&Map<String, Value>], lookup: LookupFn<'_>) -> Map<String, Value> {
    let mut out = Map::new();
    for item in &q.select {
        let SelectItem::Aggregate { func, field } = item else { continue };
        let vt = field_at(module, field).map(|f| f.value_type()).unwrap_or(DataType::Text);
        let values: Vec<(Value, Scalar)> = hits
            .iter()
            .filter_map(|r| {
                let v = value_at(module, r, field, Some(lookup));
                stored_scalar(vt, &v).map(|s| (v, s))
            })
            .collect();
        let num = |s: &Scalar| match s {
            Scalar::Num(n) => *n,
            Scalar::Int(i) => *i as f64,
            _ => 0.0,
        };
        let pick = |want: Ordering| values.iter().reduce(|a, b| if sort_cmp(&Some(b.1.clone()), &Some(a.1.clone())) == want { b } else { a }).map(|(v, _)| v.clone());
        let v = match func.as_str() {
            "COUNT" => json!(values.len()),
            "MAX" => pick(Ordering::Greater).unwrap_or(Value::Null),
            "MIN" => pick(Ordering::Less).unwrap_or(Value::Null),
            "SUM" => json!(values.iter().map(|(_, s)| num(s)).sum::<f64>()),
            _ if values.is_empty() => Value::Null,
            _ => json!(values.iter().map(|(_, s)| num(s)).sum::<f64>() / values.len() as f64),
        };
        out.insert(format!("{func}({field})"), v);
    }
    out
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
