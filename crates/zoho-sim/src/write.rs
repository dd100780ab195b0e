//! Record writes shared by the records API, bulk write and the simulated UI:
//! insert, update, delete with duplicate checks, formulas and the change
//! set that notifications are built from.

use chrono::Utc;
use serde_json::{json, Map, Value};

use crate::errors::error_obj;
use crate::schema::{DataType, ModuleDef};
use crate::state::{display_name, App, DeletedEntry, State, User};
use crate::values::{apply_formulas, normalize_record, RecErr};

/// Writes made by one call, for notifications.
#[derive(Debug, Default)]
pub struct Changes {
    pub module: String,
    pub inserted: Vec<String>,
    /// (id, changed fields with their new values)
    pub updated: Vec<(String, Map<String, Value>)>,
    pub deleted: Vec<String>,
}

impl Changes {
    pub fn new(module: &str) -> Self {
        Changes { module: module.to_string(), ..Default::default() }
    }
}

/// The id of the first record (lowest id) whose `field` equals `value`,
/// case-insensitively, other than `exclude`.
pub fn find_by_value(st: &State, m: &ModuleDef, field: &str, value: &Value, exclude: Option<i64>) -> Option<i64> {
    if crate::values::is_blank(Some(value)) {
        return None;
    }
    let store = st.store.get(m.api_name)?;
    if field == "id" {
        let id = crate::state::id_of(value)?;
        return store.records.contains_key(&id).then_some(id);
    }
    store.find(field, value, exclude)
}

fn duplicate_error(st: &State, m: &ModuleDef, field: &str, jp: &str, dup: i64) -> RecErr {
    let owner = st
        .store
        .get(m.api_name)
        .and_then(|s| s.records.get(&dup))
        .and_then(|r| r.get("Owner").cloned())
        .unwrap_or(Value::Null);
    let mut dr = json!({"id": dup.to_string(), "module": {"api_name": m.api_name, "id": m.id.to_string()}});
    if owner.is_object() {
        dr["Owner"] = owner;
    }
    error_obj("DUPLICATE_DATA", "duplicate data", json!({"api_name": field, "json_path": format!("{jp}.{field}"), "duplicate_record": dr}))
}

/// User-defined unique fields may not repeat another record's value.
pub fn check_unique(st: &State, m: &ModuleDef, values: &Map<String, Value>, jp: &str, exclude: Option<i64>) -> Result<(), RecErr> {
    for f in m.fields.iter().filter(|f| f.unique) {
        if let Some(v) = values.get(f.api_name) {
            if let Some(dup) = find_by_value(st, m, f.api_name, v, exclude) {
                return Err(duplicate_error(st, m, f.api_name, jp, dup));
            }
        }
    }
    Ok(())
}

/// `details` of a successful write result.
pub fn success_details(rec: &Map<String, Value>) -> Value {
    let mini = |k: &str| {
        let v = rec.get(k).cloned().unwrap_or(Value::Null);
        json!({"id": v.get("id").cloned().unwrap_or(Value::Null), "name": v.get("name").cloned().unwrap_or(Value::Null)})
    };
    json!({
        "Modified_Time": rec.get("Modified_Time").cloned().unwrap_or(Value::Null),
        "Modified_By": mini("Modified_By"),
        "Created_Time": rec.get("Created_Time").cloned().unwrap_or(Value::Null),
        "id": rec.get("id").cloned().unwrap_or(Value::Null),
        "Created_By": mini("Created_By"),
    })
}

/// A new record's stored form: every field present (null / false when unset).
pub fn blank_record(m: &ModuleDef) -> Map<String, Value> {
    let mut rec = Map::new();
    for f in &m.fields {
        let v = if f.data_type == DataType::Boolean { Value::Bool(false) } else { Value::Null };
        rec.insert(f.api_name.to_string(), v);
    }
    rec
}

pub fn alloc_id(st: &mut State, m: &ModuleDef) -> i64 {
    let store = st.store.entry(m.api_name.to_string()).or_default();
    if store.next_id == 0 {
        store.next_id = module_id_base(m);
    }
    store.next_id += 1;
    store.next_id
}

/// 19-digit ids, increasing per module, distinct across modules.
pub fn module_id_base(m: &ModuleDef) -> i64 {
    let idx = (m.id % 1000).unsigned_abs() as i64;
    5_725_767_000_000_000_000 + idx * 1_000_000_000 + 1_000_000
}

/// Who makes a write and when: the owner lookup and the time every record
/// of one call (or one slice of a bulk job) is stamped with, built once.
pub struct Stamp {
    pub now: chrono::DateTime<Utc>,
    time: Value,
    owner: Value,
}

impl Stamp {
    pub fn new(app: &App, user: &User) -> Stamp {
        let now = app.now();
        Stamp { now, time: Value::String(app.fmt(now)), owner: user.owner_json() }
    }
}

/// Sets `key`, reusing the key already there (a stored record has every
/// field), so that no key is allocated per write.
fn set(rec: &mut Map<String, Value>, key: &str, v: Value) {
    match rec.get_mut(key) {
        Some(slot) => *slot = v,
        None => {
            rec.insert(key.to_string(), v);
        }
    }
}

/// Validates and inserts one record.
pub fn insert(app: &App, st: &mut State, m: &ModuleDef, input: &Map<String, Value>, jp: &str, user: &User, ch: &mut Changes) -> Result<Map<String, Value>, RecErr> {
    let values = normalize_record(st, m, input, jp, true, app.tz)?;
    check_unique(st, m, &values, jp, None)?;
    let id = insert_normalized(st, m, blank_record(m), values, &Stamp::new(app, user), ch);
    Ok(stored(st, m, id))
}

/// Record `id` as stored, for a response.
fn stored(st: &State, m: &ModuleDef, id: i64) -> Map<String, Value> {
    st.store.get(m.api_name).and_then(|s| s.records.get(&id)).cloned().expect("just written")
}

/// Inserts checked values over `blank` (the module's [`blank_record`],
/// which a bulk job builds once and clones); the new record's id.
pub fn insert_normalized(st: &mut State, m: &ModuleDef, blank: Map<String, Value>, values: Map<String, Value>, stamp: &Stamp, ch: &mut Changes) -> i64 {
    let id = alloc_id(st, m);
    let mut rec = blank;
    set(&mut rec, "id", Value::String(id.to_string()));
    set(&mut rec, "Owner", stamp.owner.clone());
    // An owned key allocates nothing more: insert keeps the key it finds.
    for (k, v) in values {
        rec.insert(k, v);
    }
    set(&mut rec, "Created_Time", stamp.time.clone());
    set(&mut rec, "Modified_Time", stamp.time.clone());
    set(&mut rec, "Created_By", stamp.owner.clone());
    set(&mut rec, "Modified_By", stamp.owner.clone());
    apply_formulas(m.api_name, &mut rec, stamp.now);
    match st.store.get_mut(m.api_name) {
        Some(store) => store.insert(id, rec),
        None => st.store.entry(m.api_name.to_string()).or_default().insert(id, rec),
    }
    ch.inserted.push(id.to_string());
    id
}

/// Validates and applies an update to record `id`.
pub fn update(app: &App, st: &mut State, m: &ModuleDef, id: i64, input: &Map<String, Value>, jp: &str, user: &User, ch: &mut Changes) -> Result<Map<String, Value>, RecErr> {
    if !st.store.get(m.api_name).is_some_and(|s| s.records.contains_key(&id)) {
        return Err(error_obj("INVALID_DATA", "the id given seems to be invalid", json!({"api_name": "id", "json_path": format!("{jp}.id")})));
    }
    let values = normalize_record(st, m, input, jp, false, app.tz)?;
    check_unique(st, m, &values, jp, Some(id))?;
    update_normalized(st, m, id, values, &Stamp::new(app, user), ch);
    Ok(stored(st, m, id))
}

/// Applies checked values to record `id`, which exists.
pub fn update_normalized(st: &mut State, m: &ModuleDef, id: i64, values: Map<String, Value>, stamp: &Stamp, ch: &mut Changes) {
    let store = st.store.get_mut(m.api_name).expect("record checked above");
    let changed = store
        .update(id, |rec| {
            let mut changed = Map::new();
            for (k, v) in values {
                if rec.get(&k) != Some(&v) {
                    changed.insert(k.clone(), v.clone());
                }
                rec.insert(k, v);
            }
            set(rec, "Modified_Time", stamp.time.clone());
            set(rec, "Modified_By", stamp.owner.clone());
            apply_formulas(m.api_name, rec, stamp.now);
            changed
        })
        .expect("record checked above");
    ch.updated.push((id.to_string(), changed));
}

/// Deletes record `id` (to the recycle bin). Already-deleted or unknown ids
/// give INVALID_DATA.
pub fn delete(app: &App, st: &mut State, m: &ModuleDef, id: i64, user: &User, ch: &mut Changes) -> Result<(), RecErr> {
    let removed = st.store.get_mut(m.api_name).and_then(|s| s.remove(id));
    let Some(rec) = removed else {
        let was_deleted = st.deleted.iter().any(|d| d.module == m.api_name && d.id == id);
        let msg = if was_deleted { "record not deleted" } else { "the id given seems to be invalid" };
        return Err(error_obj("INVALID_DATA", msg, json!({"id": id.to_string()})));
    };
    let mini = |v: Option<&Value>| {
        let v = v.cloned().unwrap_or(Value::Null);
        json!({"id": v.get("id").cloned().unwrap_or(Value::Null), "name": v.get("name").cloned().unwrap_or(Value::Null)})
    };
    st.deleted.push(DeletedEntry {
        module: m.api_name.to_string(),
        id,
        display_name: display_name(m.api_name, &rec),
        created_by: mini(rec.get("Created_By")),
        deleted_by: user.minified(),
        deleted_time: app.now().with_timezone(&Utc),
    });
    ch.deleted.push(id.to_string());
    Ok(())
}

/// Refreshes Days_Open of a module once per sim day (formulas change
/// without touching Modified_Time, as in Zoho).
pub fn refresh_formulas(app: &App, st: &mut State, module: &str) {
    if module != "Leads" {
        return;
    }
    let now = app.now();
    let day = now.timestamp().div_euclid(86_400);
    if st.formula_day.get(module) == Some(&day) {
        return;
    }
    st.formula_day.insert(module.to_string(), day);
    if let Some(store) = st.store.get_mut(module) {
        for rec in store.records.values_mut() {
            apply_formulas(module, rec, now);
        }
    }
}
