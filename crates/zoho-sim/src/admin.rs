//! Operations behind the admin API (`/__sim/…`) and the in-process `Sim`
//! methods: call log, credits, faults, simulated UI edits, clock, tokens,
//! channels.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::calllog::CallRecord;
use crate::credits::CreditSummary;
use crate::errors::error_obj;
use crate::faults::{Fault, FaultKind};
use crate::notify::{self, purge_expired};
use crate::schema::{DataType, FieldDef};
use crate::state::{id_of, ui_user, App, Delivery};
use crate::write::{self, Changes};

pub fn calls(app: &App) -> Vec<CallRecord> {
    app.calls.lock().unwrap_or_else(|e| e.into_inner()).calls.clone()
}

pub fn clear_calls(app: &App) {
    app.calls.lock().unwrap_or_else(|e| e.into_inner()).calls.clear();
}

pub fn credits(app: &App) -> CreditSummary {
    let now = app.now();
    app.credits.lock().unwrap_or_else(|e| e.into_inner()).summary(now)
}

pub fn inject(app: &App, f: Fault) {
    match f.kind {
        FaultKind::JobFailed => app.st().pending_job_failures += f.count.max(1),
        FaultKind::SkipRows(n) => app.st().pending_skip_rows += n,
        _ => app.faults.lock().unwrap_or_else(|e| e.into_inner()).queue.push(f),
    }
}

pub fn clear_faults(app: &App) {
    app.faults.lock().unwrap_or_else(|e| e.into_inner()).queue.clear();
    let mut st = app.st();
    st.pending_job_failures = 0;
    st.pending_skip_rows = 0;
}

pub fn records(app: &App, module: &str) -> Vec<Map<String, Value>> {
    let Some(m) = app.data_module(module) else { return vec![] };
    let mut st = app.st();
    write::refresh_formulas(app, &mut st, m.api_name);
    st.store.get(m.api_name).map(|s| s.records.values().cloned().collect()).unwrap_or_default()
}

fn bad_module(module: &str) -> Value {
    error_obj("INVALID_MODULE", "The module name given seems to be invalid", json!({"module": module}))
}

/// Creates a record as a UI user would (fires notifications); returns its id.
pub fn ui_create(app: &App, module: &str, fields: &Value) -> Result<String, Value> {
    let m = app.data_module(module).ok_or_else(|| bad_module(module))?;
    let obj = fields.as_object().ok_or_else(|| error_obj("INVALID_DATA", "invalid data", json!({"expected_data_type": "jsonobject"})))?;
    let mut st = app.st();
    let mut ch = Changes::new(m.api_name);
    let rec = write::insert(app, &mut st, &m, obj, "$", ui_user(), &mut ch)?;
    notify::fire(app, &mut st, &ch);
    Ok(rec["id"].as_str().unwrap_or("").to_string())
}

pub fn ui_edit(app: &App, module: &str, id: &str, fields: &Value) -> Result<(), Value> {
    let m = app.data_module(module).ok_or_else(|| bad_module(module))?;
    let obj = fields.as_object().ok_or_else(|| error_obj("INVALID_DATA", "invalid data", json!({"expected_data_type": "jsonobject"})))?;
    let id = id_of(&json!(id)).ok_or_else(|| error_obj("INVALID_DATA", "the id given seems to be invalid", json!({"id": id})))?;
    let mut st = app.st();
    let mut ch = Changes::new(m.api_name);
    write::update(app, &mut st, &m, id, obj, "$", ui_user(), &mut ch)?;
    notify::fire(app, &mut st, &ch);
    Ok(())
}

pub fn ui_delete(app: &App, module: &str, id: &str) -> Result<(), Value> {
    let m = app.data_module(module).ok_or_else(|| bad_module(module))?;
    let id = id_of(&json!(id)).ok_or_else(|| error_obj("INVALID_DATA", "the id given seems to be invalid", json!({"id": id})))?;
    let mut st = app.st();
    let mut ch = Changes::new(m.api_name);
    write::delete(app, &mut st, &m, id, ui_user(), &mut ch)?;
    notify::fire(app, &mut st, &ch);
    Ok(())
}

pub fn advance_clock(app: &App, d: std::time::Duration) {
    app.clock.advance(d);
}

pub fn expire_tokens(app: &App) {
    let now = app.now();
    for t in app.st().tokens.access.values_mut() {
        t.expires_at = now;
    }
}

/// Live channels as JSON (expired ones are dropped first).
pub fn channels(app: &App) -> Vec<Value> {
    let mut st = app.st();
    purge_expired(app, &mut st);
    st.channels
        .values()
        .map(|c| {
            json!({"channel_id": c.channel_id, "events": c.events, "notify_url": c.notify_url, "token": c.token,
                   "channel_expiry": app.fmt(c.channel_expiry), "return_affected_field_values": c.return_affected_field_values,
                   "notify_on_related_action": c.notify_on_related_action})
        })
        .collect()
}

pub fn deliveries(app: &App) -> Vec<Delivery> {
    app.st().deliveries.clone()
}

pub mod routes {
    //! `/__sim/…` HTTP handlers.
    use super::*;
    use axum::extract::{Path, State};
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use axum::Json;

    type S = State<Arc<App>>;

    fn err(status: StatusCode, body: Value) -> Response {
        (status, Json(body)).into_response()
    }

    pub async fn get_calls(State(app): S) -> Response {
        Json(json!(calls(&app))).into_response()
    }
    pub async fn delete_calls(State(app): S) -> Response {
        clear_calls(&app);
        StatusCode::NO_CONTENT.into_response()
    }
    pub async fn get_credits(State(app): S) -> Response {
        Json(json!(credits(&app))).into_response()
    }
    pub async fn get_records(State(app): S, Path(module): Path<String>) -> Response {
        if app.data_module(&module).is_none() {
            return err(StatusCode::NOT_FOUND, bad_module(&module));
        }
        Json(json!(records(&app, &module))).into_response()
    }
    pub async fn post_fault(State(app): S, Json(spec): Json<crate::faults::FaultSpec>) -> Response {
        match spec.into_fault() {
            Ok(f) => {
                inject(&app, f);
                StatusCode::NO_CONTENT.into_response()
            }
            Err(e) => err(StatusCode::BAD_REQUEST, json!({"error": e})),
        }
    }
    pub async fn delete_faults(State(app): S) -> Response {
        clear_faults(&app);
        StatusCode::NO_CONTENT.into_response()
    }
    pub async fn ui_post(State(app): S, Path(module): Path<String>, Json(body): Json<Value>) -> Response {
        match ui_create(&app, &module, &body) {
            Ok(id) => (StatusCode::CREATED, Json(json!({"id": id}))).into_response(),
            Err(e) => err(StatusCode::BAD_REQUEST, e),
        }
    }
    pub async fn ui_patch(State(app): S, Path((module, id)): Path<(String, String)>, Json(body): Json<Value>) -> Response {
        match ui_edit(&app, &module, &id, &body) {
            Ok(()) => Json(json!({"id": id})).into_response(),
            Err(e) => err(StatusCode::BAD_REQUEST, e),
        }
    }
    pub async fn ui_del(State(app): S, Path((module, id)): Path<(String, String)>) -> Response {
        match ui_delete(&app, &module, &id) {
            Ok(()) => Json(json!({"id": id})).into_response(),
            Err(e) => err(StatusCode::BAD_REQUEST, e),
        }
    }
    pub async fn clock_advance(State(app): S, Json(body): Json<Value>) -> Response {
        let Some(secs) = body.get("seconds").and_then(|s| s.as_f64()).filter(|s| *s >= 0.0) else {
            return err(StatusCode::BAD_REQUEST, json!({"error": "body needs a non-negative \"seconds\""}));
        };
        advance_clock(&app, std::time::Duration::from_secs_f64(secs));
        Json(json!({"now": app.now_str()})).into_response()
    }
    pub async fn tokens_expire(State(app): S) -> Response {
        expire_tokens(&app);
        StatusCode::NO_CONTENT.into_response()
    }
    pub async fn get_channels(State(app): S) -> Response {
        Json(json!({"channels": channels(&app), "deliveries": deliveries(&app)})).into_response()
    }
}

/// An admin adds a custom field (Setup → Modules and Fields): it appears in
/// the metadata and may be read and written from then on.
pub fn add_field(app: &App, module: &str, api_name: &str, data_type: &str) -> Result<(), Value> {
    let ty = DataType::parse(data_type).ok_or_else(|| error_obj("INVALID_DATA", "unknown data type", json!({"data_type": data_type})))?;
    let mut clash = false;
    let found = app.edit_module(module, |m| {
        if m.fields.iter().any(|f| f.api_name.eq_ignore_ascii_case(api_name)) {
            clash = true;
            return;
        }
        let name: &'static str = Box::leak(api_name.to_string().into_boxed_str());
        let id = m.fields.iter().map(|f| f.id).max().unwrap_or(m.id) + 1;
        m.fields.push(FieldDef::plain(name, name, ty, id));
    });
    match (found, clash) {
        (false, _) => Err(bad_module(module)),
        (true, true) => Err(error_obj("DUPLICATE_DATA", "a field of that name exists", json!({"api_name": api_name}))),
        (true, false) => Ok(()),
    }
}

/// An admin deletes a field: it leaves the metadata, and its values go.
pub fn remove_field(app: &App, module: &str, api_name: &str) -> Result<(), Value> {
    edit_field(app, module, api_name, |m| m.fields.retain(|f| f.api_name != api_name), |r| {
        r.remove(api_name);
    })
}

/// An admin changes a field's type; values that the new type cannot hold
/// become empty, as Zoho's conversion leaves them.
pub fn retype_field(app: &App, module: &str, api_name: &str, data_type: &str) -> Result<(), Value> {
    let ty = DataType::parse(data_type).ok_or_else(|| error_obj("INVALID_DATA", "unknown data type", json!({"data_type": data_type})))?;
    let retype = |m: &mut crate::schema::ModuleDef| {
        if let Some(f) = m.fields.iter_mut().find(|f| f.api_name == api_name) {
            f.data_type = ty;
        }
    };
    edit_field(app, module, api_name, retype, |r| {
        if let Some(v) = r.get_mut(api_name) {
            let keep = match ty.json_type() {
                "integer" | "double" => v.is_number() || v.as_str().is_some_and(|s| s.parse::<f64>().is_ok()),
                "boolean" => v.is_boolean(),
                _ => true,
            };
            if !keep {
                *v = Value::Null;
            }
        }
    })
}

/// Changes field `api_name` of a module's definition, then every record.
fn edit_field(
    app: &App,
    module: &str,
    api_name: &str,
    def: impl FnOnce(&mut crate::schema::ModuleDef),
    record: impl Fn(&mut Map<String, Value>),
) -> Result<(), Value> {
    let mut had = false;
    let found = app.edit_module(module, |m| {
        had = m.fields.iter().any(|f| f.api_name == api_name);
        if had {
            def(m);
        }
    });
    if !found {
        return Err(bad_module(module));
    }
    if !had {
        return Err(error_obj("INVALID_DATA", "no such field", json!({"api_name": api_name})));
    }
    let name = app.module_name(module);
    if let Some(store) = app.st().store.get_mut(&name) {
        store.records.values_mut().for_each(record);
    }
    Ok(())
}
