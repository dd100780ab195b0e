//! Field values: validating what clients write (zoho-api.md §4.3 value
//! formats) and normalising it into the stored API shape.

use chrono::NaiveDate;
use serde_json::{json, Map, Value};

use crate::clock::{fmt_dt, parse_dt};
use crate::errors::error_obj;
use crate::schema::{DataType, FieldDef, ModuleDef};
use crate::state::{display_name, id_of, user_by_id, State};

/// A per-record error object (`{code,details,message,status}`).
pub type RecErr = Value;

pub fn invalid_type(f: &FieldDef, jp: &str) -> RecErr {
    error_obj(
        "INVALID_DATA",
        "invalid data",
        json!({"api_name": f.api_name, "expected_data_type": f.data_type.as_str(), "json_path": jp}),
    )
}

pub fn too_long(f: &FieldDef, jp: &str, max: usize) -> RecErr {
    error_obj("INVALID_DATA", "invalid data", json!({"api_name": f.api_name, "maximum_length": max.to_string(), "json_path": jp}))
}

pub fn mandatory(api_name: &str, jp: &str) -> RecErr {
    error_obj("MANDATORY_NOT_FOUND", "required field not found", json!({"api_name": api_name, "json_path": jp}))
}

pub fn is_blank(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    }
}

fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace())
}

fn max_len(f: &FieldDef) -> usize {
    f.length.map(|l| l as usize).unwrap_or(255)
}

/// Validates one value for `f` and returns it in stored form.
pub fn normalize_value(st: &State, f: &FieldDef, v: &Value, jp: &str, tz: chrono::FixedOffset) -> Result<Value, RecErr> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    let text = |v: &Value| -> Result<String, RecErr> {
        let s = v.as_str().ok_or_else(|| invalid_type(f, jp))?;
        if s.chars().count() > max_len(f) {
            return Err(too_long(f, jp, max_len(f)));
        }
        Ok(s.to_string())
    };
    match f.data_type {
        DataType::Text | DataType::Textarea | DataType::Picklist | DataType::Phone | DataType::Autonumber => Ok(Value::String(text(v)?)),
        DataType::Email => {
            let s = text(v)?;
            if !s.is_empty() && !valid_email(&s) {
                return Err(invalid_type(f, jp));
            }
            Ok(Value::String(s))
        }
        DataType::Website => {
            let s = text(v)?;
            if s.chars().any(|c| c.is_whitespace()) {
                return Err(invalid_type(f, jp));
            }
            Ok(Value::String(s))
        }
        DataType::Integer => match v.as_i64() {
            Some(n) if n.abs() <= 999_999_999 => Ok(json!(n)),
            _ => Err(invalid_type(f, jp)),
        },
        DataType::Bigint => match id_of(v) {
            Some(n) => Ok(Value::String(n.to_string())),
            None => Err(invalid_type(f, jp)),
        },
        DataType::Double | DataType::Currency | DataType::Percent => {
            if v.is_number() {
                Ok(v.clone())
            } else {
                Err(invalid_type(f, jp))
            }
        }
        DataType::Boolean => {
            if v.is_boolean() {
                Ok(v.clone())
            } else {
                Err(invalid_type(f, jp))
            }
        }
        DataType::Date => {
            let s = v.as_str().ok_or_else(|| invalid_type(f, jp))?;
            if s.len() != 10 || NaiveDate::parse_from_str(s, "%Y-%m-%d").is_err() {
                return Err(invalid_type(f, jp));
            }
            Ok(Value::String(s.to_string()))
        }
        DataType::Datetime => {
            let s = v.as_str().ok_or_else(|| invalid_type(f, jp))?;
            let t = parse_dt(s).ok_or_else(|| invalid_type(f, jp))?;
            Ok(Value::String(fmt_dt(t, tz)))
        }
        DataType::Multiselectpicklist => {
            let arr = v.as_array().ok_or_else(|| invalid_type(f, jp))?;
            let mut out = Vec::new();
            for item in arr {
                let s = item.as_str().ok_or_else(|| invalid_type(f, jp))?;
                out.push(Value::String(s.to_string()));
            }
            Ok(Value::Array(out))
        }
        DataType::Ownerlookup => {
            let id = lookup_id(v).ok_or_else(|| invalid_type(f, jp))?;
            let u = user_by_id(&id).ok_or_else(|| invalid_id(f, jp, &id))?;
            Ok(u.owner_json())
        }
        DataType::Lookup => {
            let id = lookup_id(v).ok_or_else(|| invalid_type(f, jp))?;
            let target = f.lookup_module.unwrap_or("");
            let n: i64 = id.parse().map_err(|_| invalid_id(f, jp, &id))?;
            let rec = st.store.get(target).and_then(|s| s.records.get(&n)).ok_or_else(|| invalid_id(f, jp, &id))?;
            Ok(json!({"id": id, "name": display_name(target, rec)}))
        }
        DataType::Formula => Err(invalid_type(f, jp)),
    }
}

fn invalid_id(f: &FieldDef, jp: &str, id: &str) -> RecErr {
    error_obj("INVALID_DATA", "the id given seems to be invalid", json!({"api_name": f.api_name, "json_path": jp, "id": id}))
}

fn lookup_id(v: &Value) -> Option<String> {
    match v {
        Value::Object(o) => o.get("id").and_then(id_of).map(|n| n.to_string()),
        Value::String(_) | Value::Number(_) => id_of(v).map(|n| n.to_string()),
        _ => None,
    }
}

/// Validates a record body (`$.data[i]` at `jp`): unknown keys are
/// INVALID_DATA, read-only fields are ignored, `$`-keys and `id` skipped.
/// On create, mandatory fields must be present and non-blank; on update, a
/// mandatory field may not be blanked.
pub fn normalize_record(st: &State, m: &ModuleDef, input: &Map<String, Value>, jp: &str, create: bool, tz: chrono::FixedOffset) -> Result<Map<String, Value>, RecErr> {
    if create {
        for f in m.fields.iter().filter(|f| f.mandatory) {
            if is_blank(input.get(f.api_name)) {
                return Err(mandatory(f.api_name, &format!("{jp}.{}", f.api_name)));
            }
        }
    }
    let mut out = Map::new();
    for (k, v) in input {
        if k == "id" || k.starts_with('$') || k == "Layout" || k == "Tag" {
            continue;
        }
        let path = format!("{jp}.{k}");
        let Some(f) = m.field(k) else {
            return Err(error_obj("INVALID_DATA", "invalid data", json!({"api_name": k, "json_path": path})));
        };
        if f.read_only {
            continue;
        }
        if f.mandatory && is_blank(Some(v)) {
            return Err(mandatory(f.api_name, &path));
        }
        out.insert(k.clone(), normalize_value(st, f, v, &path, tz)?);
    }
    Ok(out)
}

/// Case-insensitive value equality as duplicate checks compare; the value
/// index (`state::ModuleStore::find`) must agree with it.
#[cfg(test)]
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.trim().eq_ignore_ascii_case(y.trim()),
        (Value::Null, _) | (_, Value::Null) => false,
        (Value::Object(x), Value::Object(y)) => x.get("id") == y.get("id"),
        _ => a == b,
    }
}

/// Recomputes formula fields of a record.
pub fn apply_formulas(module: &str, rec: &mut Map<String, Value>, now: chrono::DateTime<chrono::Utc>) {
    if module == "Deals" {
        let amount = rec.get("Amount").and_then(|v| v.as_f64());
        let prob = rec.get("Probability").and_then(|v| v.as_f64());
        let ev = match (amount, prob) {
            (Some(a), Some(p)) => json!(((a * p / 100.0) * 100.0).round() / 100.0),
            _ => Value::Null,
        };
        rec.insert("Expected_Revenue".into(), ev);
    }
    if module == "Leads" {
        let days = rec
            .get("Created_Time")
            .and_then(|v| v.as_str())
            .and_then(parse_dt)
            .map(|c| json!(((now - c).num_seconds().max(0) / 86_400) as f64))
            .unwrap_or(Value::Null);
        rec.insert("Days_Open".into(), days);
    }
}
