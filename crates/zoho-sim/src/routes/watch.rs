//! Notifications management (zoho-api.md §9.1–§9.4): `/crm/v8/actions/watch`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

use crate::clock::parse_dt;
use crate::errors::{error_obj, json_response, no_content, ok_json, success_obj, ApiError, ApiResult};
use crate::notify::{purge_expired, resource_uri};
use crate::state::{App, Channel};

pub const MAX_TOKEN_LEN: usize = 50;

fn channel_key(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn events_json(app: &App, c: &Channel) -> Vec<Value> {
    let mut modules: Vec<String> = Vec::new();
    for e in &c.events {
        let m = e.split('.').next().unwrap_or("").to_string();
        if !modules.contains(&m) {
            modules.push(m);
        }
    }
    modules
        .iter()
        .map(|m| {
            let id = app.module(m).map(|d| d.id.to_string()).unwrap_or_default();
            // Ids go back as strings, whatever type the client sent.
            json!({"channel_id": c.channel_id, "resource_name": m, "resource_id": id, "resource_uri": resource_uri(m),
                   "channel_expiry": app.fmt(c.channel_expiry)})
        })
        .collect()
}

/// Parses `events`; each must be `<Module>.<create|edit|delete|all>` on a
/// module the API serves.
fn parse_events(app: &App, v: Option<&Value>, jp: &str) -> Result<Vec<String>, Value> {
    let Some(arr) = v.and_then(|v| v.as_array()).filter(|a| !a.is_empty()) else {
        return Err(error_obj("MANDATORY_NOT_FOUND", "required field not found", json!({"api_name": "events", "json_path": format!("{jp}.events")})));
    };
    let mut out = Vec::new();
    for (i, e) in arr.iter().enumerate() {
        let s = e.as_str().unwrap_or("");
        let ok = s.split_once('.').is_some_and(|(m, op)| app.data_module(m).is_some() && ["create", "edit", "delete", "all"].contains(&op));
        if !ok {
            return Err(error_obj("INVALID_DATA", "invalid data", json!({"api_name": "events", "json_path": format!("{jp}.events[{i}]")})));
        }
        let (m, op) = s.split_once('.').expect("checked");
        let canonical = format!("{}.{op}", app.data_module(m).expect("checked").api_name);
        if !out.contains(&canonical) {
            out.push(canonical);
        }
    }
    Ok(out)
}

fn parse_expiry(app: &App, v: Option<&Value>, jp: &str) -> Result<DateTime<Utc>, Value> {
    let now = app.now();
    let default = now + Duration::hours(1);
    let Some(s) = v.and_then(|v| v.as_str()) else { return Ok(default) };
    let Some(t) = parse_dt(s) else {
        return Err(error_obj("INVALID_DATA", "invalid data", json!({"api_name": "channel_expiry", "json_path": format!("{jp}.channel_expiry")})));
    };
    if t <= now {
        return Err(error_obj("INVALID_DATA", "invalid data", json!({"api_name": "channel_expiry", "json_path": format!("{jp}.channel_expiry")})));
    }
    // Past the 7-day maximum, Zoho silently uses the 1-hour default.
    Ok(if t > now + Duration::days(7) { default } else { t })
}

fn parse_token(v: Option<&Value>, jp: &str) -> Result<Option<String>, Value> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= MAX_TOKEN_LEN => Ok(Some(s.clone())),
        Some(_) => Err(error_obj("INVALID_DATA", "invalid data", json!({"api_name": "token", "json_path": format!("{jp}.token"), "maximum_length": MAX_TOKEN_LEN.to_string()}))),
    }
}

fn items(body: &Bytes) -> Result<Vec<Value>, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|_| ApiError::invalid_data("invalid data", json!({"param": "body"})))?;
    v.get("watch")
        .and_then(|w| w.as_array())
        .filter(|a| !a.is_empty())
        .cloned()
        .ok_or_else(|| ApiError::bad("MANDATORY_NOT_FOUND", "required field not found", json!({"api_name": "watch", "json_path": "$.watch"})))
}

fn finish(results: Vec<Value>, ok: StatusCode) -> ApiResult {
    let all_ok = results.iter().all(|r| r["status"] == "success");
    Ok(json_response(if all_ok { ok } else { StatusCode::ACCEPTED }, &json!({"watch": results})))
}

fn build_channel(app: &App, item: &Map<String, Value>, jp: &str) -> Result<Channel, Value> {
    let cid_json = item.get("channel_id").cloned().unwrap_or(Value::Null);
    let Some(cid) = channel_key(&cid_json) else {
        return Err(error_obj("MANDATORY_NOT_FOUND", "required field not found", json!({"api_name": "channel_id", "json_path": format!("{jp}.channel_id")})));
    };
    let events = parse_events(app, item.get("events"), jp)?;
    let Some(url) = item.get("notify_url").and_then(|u| u.as_str()).filter(|u| !u.is_empty()) else {
        return Err(error_obj("MANDATORY_NOT_FOUND", "required field not found", json!({"api_name": "notify_url", "json_path": format!("{jp}.notify_url")})));
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(error_obj("INVALID_DATA", "invalid data", json!({"api_name": "notify_url", "json_path": format!("{jp}.notify_url")})));
    }
    Ok(Channel {
        channel_id: cid,
        events,
        notify_url: url.to_string(),
        token: parse_token(item.get("token"), jp)?,
        channel_expiry: parse_expiry(app, item.get("channel_expiry"), jp)?,
        return_affected_field_values: item.get("return_affected_field_values").and_then(|v| v.as_bool()).unwrap_or(false),
        notify_on_related_action: item.get("notify_on_related_action").and_then(|v| v.as_bool()).unwrap_or(true),
        notification_condition: item.get("notification_condition").cloned().unwrap_or(Value::Null),
    })
}

/// `POST /crm/v8/actions/watch`: enable (or re-enable) channels.
pub async fn enable(State(app): State<Arc<App>>, body: Bytes) -> ApiResult {
    let list = items(&body)?;
    let mut st = app.st();
    purge_expired(&app, &mut st);
    let mut results = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let jp = format!("$.watch[{i}]");
        let r = item.as_object().ok_or_else(|| error_obj("INVALID_DATA", "invalid data", json!({"json_path": jp}))).and_then(|o| build_channel(&app, o, &jp));
        results.push(match r {
            Ok(c) => {
                let ev = events_json(&app, &c);
                st.channels.insert(c.channel_id.clone(), c);
                success_obj("Successfully subscribed for actions-watch of the given module", json!({"events": ev}))
            }
            Err(e) => e,
        });
    }
    finish(results, StatusCode::CREATED)
}

fn not_subscribed(jp: &str) -> Value {
    error_obj("NOT_SUBSCRIBED", "Not subscribed for actions-watch of the given module", json!({"api_name": "channel_id", "json_path": format!("{jp}.channel_id")}))
}

/// `PUT /crm/v8/actions/watch`: replace a channel's configuration.
pub async fn replace(State(app): State<Arc<App>>, body: Bytes) -> ApiResult {
    let list = items(&body)?;
    let mut st = app.st();
    purge_expired(&app, &mut st);
    let mut results = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let jp = format!("$.watch[{i}]");
        let r = (|| {
            let o = item.as_object().ok_or_else(|| error_obj("INVALID_DATA", "invalid data", json!({"json_path": jp})))?;
            let c = build_channel(&app, o, &jp)?;
            if !st.channels.contains_key(&c.channel_id) {
                return Err(not_subscribed(&jp));
            }
            let ev = events_json(&app, &c);
            st.channels.insert(c.channel_id.clone(), c);
            Ok(success_obj("Successfully subscribed for actions-watch of the given module", json!({"events": ev})))
        })();
        results.push(r.unwrap_or_else(|e| e));
    }
    finish(results, StatusCode::OK)
}

/// `PATCH /crm/v8/actions/watch`: merge keys, or remove events with `_delete_events`.
pub async fn patch(State(app): State<Arc<App>>, body: Bytes) -> ApiResult {
    let list = items(&body)?;
    let mut st = app.st();
    purge_expired(&app, &mut st);
    let mut results = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let jp = format!("$.watch[{i}]");
        let r = (|| {
            let o = item.as_object().ok_or_else(|| error_obj("INVALID_DATA", "invalid data", json!({"json_path": jp})))?;
            let Some(cid) = o.get("channel_id").and_then(channel_key) else {
                return Err(error_obj("MANDATORY_NOT_FOUND", "required field not found", json!({"api_name": "channel_id", "json_path": format!("{jp}.channel_id")})));
            };
            let Some(mut c) = st.channels.get(&cid).cloned() else { return Err(not_subscribed(&jp)) };
            let delete = o.get("_delete_events").and_then(|v| v.as_bool()).unwrap_or(false);
            if o.contains_key("events") {
                let events = parse_events(&app, o.get("events"), &jp)?;
                if delete {
                    c.events.retain(|e| !events.contains(e));
                } else {
                    for e in events {
                        if !c.events.contains(&e) {
                            c.events.push(e);
                        }
                    }
                }
            }
            if let Some(u) = o.get("notify_url").and_then(|u| u.as_str()) {
                c.notify_url = u.to_string();
            }
            if o.contains_key("token") {
                c.token = parse_token(o.get("token"), &jp)?;
            }
            if o.contains_key("channel_expiry") {
                c.channel_expiry = parse_expiry(&app, o.get("channel_expiry"), &jp)?;
            }
            if let Some(b) = o.get("return_affected_field_values").and_then(|v| v.as_bool()) {
                c.return_affected_field_values = b;
            }
            if let Some(b) = o.get("notify_on_related_action").and_then(|v| v.as_bool()) {
                c.notify_on_related_action = b;
            }
            if let Some(n) = o.get("notification_condition") {
                c.notification_condition = n.clone();
            }
            let ev = events_json(&app, &c);
            if c.events.is_empty() {
                st.channels.remove(&cid);
                return Ok(success_obj("Successfully un-subscribed from actions-watch", json!({"events": ev})));
            }
            st.channels.insert(cid, c);
            let message = if delete { "Successfully removed the subscribe details" } else { "Successfully updated the subscribe details" };
            Ok(success_obj(message, json!({"events": ev})))
        })();
        results.push(r.unwrap_or_else(|e| e));
    }
    finish(results, StatusCode::OK)
}

/// `GET /crm/v8/actions/watch`.
pub async fn get(State(app): State<Arc<App>>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let mut st = app.st();
    purge_expired(&app, &mut st);
    let per_page: usize = q.get("per_page").and_then(|p| p.parse().ok()).unwrap_or(200).clamp(1, 200);
    let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1).max(1);
    let rows: Vec<&Channel> = st
        .channels
        .values()
        .filter(|c| q.get("channel_id").is_none_or(|id| &c.channel_id == id))
        .filter(|c| q.get("module").is_none_or(|m| c.events.iter().any(|e| e.split('.').next().is_some_and(|x| x.eq_ignore_ascii_case(m)))))
        .collect();
    let data: Vec<Value> = rows
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|c| {
            let first = c.events.first().and_then(|e| e.split('.').next()).unwrap_or("").to_string();
            let mut v = json!({
                "channel_id": c.channel_id, "events": c.events, "notify_url": c.notify_url, "token": c.token,
                "channel_expiry": app.fmt(c.channel_expiry), "resource_name": first,
                "resource_id": app.module(&first).map(|m| m.id.to_string()), "resource_uri": resource_uri(&first),
                "return_affected_field_values": c.return_affected_field_values, "notify_on_related_action": c.notify_on_related_action,
                "fields": Value::Null,
            });
            // notifications.json types `notification_condition` as an
            // array (not nullable): a channel without one leaves it out.
            if !c.notification_condition.is_null() {
                v["notification_condition"] = c.notification_condition.clone();
            }
            v
        })
        .collect();
    if data.is_empty() {
        return Ok(no_content());
    }
    let info = json!({"page": page, "per_page": per_page, "count": data.len(), "more_records": rows.len() > page * per_page});
    Ok(ok_json(&json!({"watch": data, "info": info})))
}

/// `DELETE /crm/v8/actions/watch?channel_ids=`.
pub async fn disable(State(app): State<Arc<App>>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let ids: Vec<String> = q.get("channel_ids").map(|s| s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect()).unwrap_or_default();
    if ids.is_empty() {
        return Err(ApiError::required_param("channel_ids"));
    }
    let mut st = app.st();
    purge_expired(&app, &mut st);
    let mut results = Vec::new();
    for id in ids {
        match st.channels.remove(&id) {
            // One entry per module of the channel, its details flat.
            Some(c) => results.extend(events_json(&app, &c).into_iter().map(|mut e| {
                if let Some(o) = e.as_object_mut() {
                    o.retain(|k, _| matches!(k.as_str(), "resource_uri" | "resource_id" | "channel_id"));
                }
                success_obj("Successfully un-subscribed from actions-watch", e)
            })),
            None => results.push(error_obj("NOT_SUBSCRIBED", "Not subscribed for actions-watch of the given module", json!({"channel_id": id}))),
        }
    }
    finish(results, StatusCode::OK)
}
