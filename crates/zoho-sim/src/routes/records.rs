//! Records API (zoho-api.md §4): list, get, insert, update, upsert, delete,
//! deleted records, count.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

use crate::clock::parse_dt;
use crate::errors::{error_obj, json_response, no_content, ok_json, success_obj, ApiError, ApiResult};
use crate::notify;
use crate::schema::ModuleDef;
use crate::state::{api_user, id_of, App, PageToken, State as SimState};
use crate::values::{is_blank, normalize_value};
use crate::write::{self, find_by_value, Changes};

pub const MAX_FIELDS: usize = 50;
pub const MAX_PER_PAGE: usize = 200;
pub const DISCRETE_LIMIT: usize = 2_000;
pub const TOKEN_LIMIT: usize = 100_000;
pub const MAX_WRITE: usize = 100;

pub fn data_module(app: &App, name: &str) -> Result<crate::state::ModuleRef, ApiError> {
    app.data_module(name).ok_or_else(|| ApiError::invalid_module(name))
}

fn parse_fields(m: &ModuleDef, raw: &str) -> Result<Vec<String>, ApiError> {
    let fields: Vec<String> = raw.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    if fields.is_empty() {
        return Err(ApiError::required_param("fields"));
    }
    if fields.len() > MAX_FIELDS {
        return Err(ApiError::bad("LIMIT_EXCEEDED", "Max field limit exceeded", json!({"limit": MAX_FIELDS, "param": "fields"})));
    }
    for f in &fields {
        if m.field(f).is_none() {
            return Err(ApiError::invalid_data("invalid data", json!({"api_name": f, "param": "fields"})));
        }
    }
    Ok(fields)
}

fn project(rec: &Map<String, Value>, fields: Option<&[String]>) -> Value {
    match fields {
        None => Value::Object(rec.clone()),
        Some(fs) => {
            let mut out = Map::new();
            out.insert("id".into(), rec.get("id").cloned().unwrap_or(Value::Null));
            for f in fs {
                out.insert(f.clone(), rec.get(f).cloned().unwrap_or(Value::Null));
            }
            Value::Object(out)
        }
    }
}

fn time_of(rec: &Map<String, Value>, k: &str) -> i64 {
    rec.get(k).and_then(|v| v.as_str()).and_then(parse_dt).map(|t| t.timestamp()).unwrap_or(i64::MIN)
}

fn if_modified_since(headers: &HeaderMap) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(h) = headers.get("if-modified-since") else { return Ok(None) };
    let s = h.to_str().unwrap_or("");
    parse_dt(s)
        .or_else(|| DateTime::parse_from_rfc2822(s).ok().map(|d| d.with_timezone(&Utc)))
        .map(Some)
        .ok_or_else(|| ApiError::invalid_data("invalid data", json!({"param": "If-Modified-Since"})))
}

fn int_param(q: &HashMap<String, String>, k: &str) -> Result<Option<usize>, ApiError> {
    match q.get(k) {
        None => Ok(None),
        Some(v) => v.trim().parse::<usize>().ok().filter(|n| *n > 0).map(Some).ok_or_else(|| ApiError::invalid_data("invalid data", json!({"param": k}))),
    }
}

fn converted_filter(m: &ModuleDef, q: &HashMap<String, String>) -> Result<Option<bool>, ApiError> {
    if m.field("Converted__s").is_none() {
        return Ok(None);
    }
    match q.get("converted").map(String::as_str).unwrap_or("false") {
        "false" => Ok(Some(false)),
        "true" => Ok(Some(true)),
        "both" => Ok(None),
        _ => Err(ApiError::invalid_data("invalid data", json!({"param": "converted"}))),
    }
}

fn new_token(app: &App, st: &mut SimState) -> String {
    st.token_seq += 1;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(app.cfg.rng_seed.wrapping_add(st.token_seq.wrapping_mul(0x2545_F491_4F6C_DD1D)));
    format!("{:032x}{:08x}", rng.gen::<u128>() | (1u128 << 127), rng.gen::<u32>())
}

/// `GET /crm/v8/{module}`.
pub async fn list(State(app): State<Arc<App>>, Path(module): Path<String>, Query(q): Query<HashMap<String, String>>, headers: HeaderMap) -> ApiResult {
    let m = data_module(&app, &module)?;
    let fields = parse_fields(&m, q.get("fields").map(String::as_str).unwrap_or(""))?;
    let per_page = int_param(&q, "per_page")?.unwrap_or(MAX_PER_PAGE).min(MAX_PER_PAGE);
    let page = int_param(&q, "page")?;
    let page_token = q.get("page_token").filter(|s| !s.is_empty()).cloned();
    if page.is_some() && page_token.is_some() {
        return Err(ApiError::bad("AMBIGUITY_DURING_PROCESSING", "page and page_token cannot be given together", json!({"param_names": ["page", "page_token"]})));
    }
    let sort_by = q.get("sort_by").cloned().unwrap_or_else(|| "id".into());
    if !["id", "Created_Time", "Modified_Time"].contains(&sort_by.as_str()) {
        return Err(ApiError::invalid_data("invalid data", json!({"param": "sort_by", "supported_values": ["id", "Created_Time", "Modified_Time"]})));
    }
    let sort_order = q.get("sort_order").cloned().unwrap_or_else(|| "desc".into());
    if sort_order != "asc" && sort_order != "desc" {
        return Err(ApiError::invalid_data("invalid data", json!({"param": "sort_order", "supported_values": ["asc", "desc"]})));
    }
    if let Some(cvid) = q.get("cvid") {
        if q.contains_key("sort_by") {
            return Err(ApiError::bad("AMBIGUITY_DURING_PROCESSING", "cvid and sort_by cannot be given together", json!({"param_names": ["cvid", "sort_by"]})));
        }
        return Err(ApiError::invalid_data("Customview not accessible", json!({"param": "cvid", "value": cvid})));
    }
    let converted = converted_filter(&m, &q)?;
    let ids: Option<Vec<i64>> = match q.get("ids") {
        None => None,
        Some(s) => Some(
            s.split(',')
                .filter(|x| !x.trim().is_empty())
                .map(|x| x.trim().parse::<i64>().map_err(|_| ApiError::invalid_data("invalid data", json!({"param": "ids"}))))
                .collect::<Result<_, _>>()?,
        ),
    };
    let since = if_modified_since(&headers)?;
    let binding = format!(
        "{}|{}|{}|{}|{}|{:?}|{:?}|{:?}",
        m.api_name,
        fields.join(","),
        sort_by,
        sort_order,
        per_page,
        converted,
        q.get("ids"),
        since.map(|t| t.timestamp())
    );

    let now = app.now();
    let mut st = app.st();
    let offset = if let Some(tok) = &page_token {
        let Some(t) = st.page_tokens.get(tok).cloned() else {
            return Err(ApiError::invalid_data("invalid data", json!({"param": "page_token"})));
        };
        if t.expires_at <= now {
            return Err(ApiError::bad("EXPIRED_VALUE", "the page token has expired", json!({"param": "page_token"})));
        }
        if t.binding != binding {
            return Err(ApiError::bad("TOKEN_BOUND_DATA_MISMATCH", "the page token does not belong to the given parameters", json!({"param": "page_token"})));
        }
        if t.offset >= TOKEN_LIMIT {
            return Err(ApiError::bad("PAGINATION_LIMIT_EXCEEDED", "pagination limit exceeded", json!({"limit": TOKEN_LIMIT})));
        }
        t.offset
    } else {
        let p = page.unwrap_or(1);
        if p * per_page > DISCRETE_LIMIT {
            return Err(ApiError::bad(
                "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
                "Records beyond 2000 cannot be fetched with page; use page_token",
                json!({"limit": DISCRETE_LIMIT}),
            ));
        }
        (p - 1) * per_page
    };

    write::refresh_formulas(&app, &mut st, m.api_name);
    let empty = Default::default();
    let store = st.store.get(m.api_name).map(|s| &s.records).unwrap_or(&empty);
    let mut rows: Vec<(i64, i64, &Map<String, Value>)> = store
        .iter()
        .filter(|(id, rec)| {
            if let Some(ids) = &ids {
                if !ids.contains(id) {
                    return false;
                }
            }
            if let Some(c) = converted {
                if rec.get("Converted__s").and_then(|v| v.as_bool()).unwrap_or(false) != c {
                    return false;
                }
            }
            if let Some(since) = since {
                if time_of(rec, "Modified_Time") <= since.timestamp() {
                    return false;
                }
            }
            true
        })
        .map(|(id, rec)| {
            let key = if sort_by == "id" { *id } else { time_of(rec, &sort_by) };
            (key, *id, rec)
        })
        .collect();
    rows.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    if sort_order == "desc" {
        rows.reverse();
    }
    let total = rows.len();
    if total == 0 && since.is_some() {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let data: Vec<Value> = rows.iter().skip(offset).take(per_page).map(|(_, _, r)| project(r, Some(&fields))).collect();
    if data.is_empty() {
        return Ok(no_content());
    }
    let more = total > offset + per_page;
    let mut info = json!({
        "per_page": per_page,
        "count": data.len(),
        "page": offset / per_page + 1,
        "sort_by": sort_by,
        "sort_order": sort_order,
        "more_records": more,
        "call": false,
        "email": false,
    });
    drop(st);
    if more {
        let mut st = app.st();
        let tok = new_token(&app, &mut st);
        let expires_at = now + Duration::hours(24);
        st.page_tokens.insert(tok.clone(), PageToken { binding, offset: offset + per_page, expires_at });
        info["next_page_token"] = json!(tok);
        info["page_token_expiry"] = json!(app.fmt(expires_at));
    }
    if let Some(t) = page_token {
        info["previous_page_token"] = json!(t);
    }
    Ok(ok_json(&json!({"data": data, "info": info})))
}

/// `GET /crm/v8/{module}/{id}`.
pub async fn get_one(State(app): State<Arc<App>>, Path((module, id)): Path<(String, String)>, Query(q): Query<HashMap<String, String>>, headers: HeaderMap) -> ApiResult {
    let m = data_module(&app, &module)?;
    let fields = match q.get("fields") {
        Some(f) if !f.trim().is_empty() => Some(parse_fields(&m, f)?),
        _ => None,
    };
    let id: i64 = id.parse().map_err(|_| ApiError::invalid_data("the id given seems to be invalid", json!({"param": "id"})))?;
    let since = if_modified_since(&headers)?;
    let mut st = app.st();
    write::refresh_formulas(&app, &mut st, m.api_name);
    let Some(rec) = st.store.get(m.api_name).and_then(|s| s.records.get(&id)) else {
        return Ok(no_content());
    };
    if let Some(since) = since {
        if time_of(rec, "Modified_Time") <= since.timestamp() {
            return Ok(StatusCode::NOT_MODIFIED.into_response());
        }
    }
    Ok(ok_json(&json!({"data": [project(rec, fields.as_deref())]})))
}

fn write_body(body: &Bytes) -> Result<(Value, Vec<Value>), ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|_| ApiError::invalid_data("invalid data", json!({"param": "body"})))?;
    let data = v.get("data").and_then(|d| d.as_array()).cloned();
    let Some(data) = data.filter(|d| !d.is_empty()) else {
        return Err(ApiError::bad("MANDATORY_NOT_FOUND", "required field not found", json!({"api_name": "data", "json_path": "$.data"})));
    };
    if data.len() > MAX_WRITE {
        return Err(ApiError::bad("LIMIT_EXCEEDED", "Record count exceeded", json!({"limit": MAX_WRITE, "api_name": "data", "json_path": "$.data"})));
    }
    Ok((v, data))
}

fn not_object(jp: &str) -> Value {
    error_obj("INVALID_DATA", "invalid data", json!({"expected_data_type": "jsonobject", "json_path": jp}))
}

/// HTTP status of a multi-record write: all ok → `ok`, mixed → 207, all failed → 400.
fn write_status(results: &[Value], ok: StatusCode) -> StatusCode {
    let n_ok = results.iter().filter(|r| r.get("status").and_then(|s| s.as_str()) == Some("success")).count();
    if n_ok == results.len() {
        ok
    } else if n_ok == 0 {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::MULTI_STATUS
    }
}

fn respond(results: Vec<Value>, ok: StatusCode) -> Response {
    let status = write_status(&results, ok);
    let mut resp = json_response(status, &json!({"data": results}));
    if status == StatusCode::BAD_REQUEST {
        if let Some(code) = results.first().and_then(|r| r.get("code")).and_then(|c| c.as_str()) {
            resp.extensions_mut().insert(crate::errors::ZCode(code.to_string()));
        }
    }
    resp
}

/// `POST /crm/v8/{module}`.
pub async fn insert(State(app): State<Arc<App>>, Path(module): Path<String>, body: Bytes) -> ApiResult {
    let m = data_module(&app, &module)?;
    let (_, data) = write_body(&body)?;
    let mut st = app.st();
    let mut ch = Changes::new(m.api_name);
    let mut results = Vec::new();
    for (i, item) in data.iter().enumerate() {
        let jp = format!("$.data[{i}]");
        let r = match item.as_object() {
            None => Err(not_object(&jp)),
            Some(obj) => write::insert(&app, &mut st, &m, obj, &jp, api_user(), &mut ch),
        };
        results.push(match r {
            Ok(rec) => {
                // Inserts also say where the record stands in approval.
                let mut details = write::success_details(&rec);
                details["$approval_state"] = json!("approved");
                success_obj("record added", details)
            }
            Err(e) => e,
        });
    }
    notify::fire(&app, &mut st, &ch);
    Ok(respond(results, StatusCode::CREATED))
}

fn update_many(app: &App, m: &ModuleDef, data: &[Value], path_id: Option<&str>) -> Response {
    let mut st = app.st();
    let mut ch = Changes::new(m.api_name);
    let mut results = Vec::new();
    for (i, item) in data.iter().enumerate() {
        let jp = format!("$.data[{i}]");
        let r = (|| {
            let obj = item.as_object().ok_or_else(|| not_object(&jp))?;
            let raw_id = match path_id {
                Some(p) => Value::String(p.to_string()),
                None => obj.get("id").cloned().unwrap_or(Value::Null),
            };
            if is_blank(Some(&raw_id)) {
                return Err(crate::values::mandatory("id", &format!("{jp}.id")));
            }
            let id = id_of(&raw_id).ok_or_else(|| error_obj("INVALID_DATA", "the id given seems to be invalid", json!({"api_name": "id", "json_path": format!("{jp}.id")})))?;
            write::update(app, &mut st, m, id, obj, &jp, api_user(), &mut ch)
        })();
        results.push(match r {
            Ok(rec) => success_obj("record updated", write::success_details(&rec)),
            Err(e) => e,
        });
    }
    notify::fire(app, &mut st, &ch);
    respond(results, StatusCode::OK)
}

/// `PUT /crm/v8/{module}`.
pub async fn update(State(app): State<Arc<App>>, Path(module): Path<String>, body: Bytes) -> ApiResult {
    let m = data_module(&app, &module)?;
    let (_, data) = write_body(&body)?;
    Ok(update_many(&app, &m, &data, None))
}

/// `PUT /crm/v8/{module}/{id}`.
pub async fn update_one(State(app): State<Arc<App>>, Path((module, id)): Path<(String, String)>, body: Bytes) -> ApiResult {
    let m = data_module(&app, &module)?;
    let (_, data) = write_body(&body)?;
    Ok(update_many(&app, &m, &data[..1], Some(&id)))
}

/// `POST /crm/v8/{module}/upsert`.
pub async fn upsert(State(app): State<Arc<App>>, Path(module): Path<String>, body: Bytes) -> ApiResult {
    let m = data_module(&app, &module)?;
    let (whole, data) = write_body(&body)?;
    let check_fields: Vec<String> = match whole.get("duplicate_check_fields") {
        Some(Value::Array(a)) if !a.is_empty() => {
            let allowed = m.duplicate_check_fields();
            let mut out = Vec::new();
            for (i, f) in a.iter().enumerate() {
                let name = f.as_str().unwrap_or("");
                if !allowed.contains(&name) {
                    return Err(ApiError::invalid_data("invalid data", json!({"api_name": name, "json_path": format!("$.duplicate_check_fields[{i}]")})));
                }
                out.push(name.to_string());
            }
            out
        }
        _ => m.duplicate_check_fields().into_iter().map(String::from).collect(),
    };
    let mut st = app.st();
    let mut ch = Changes::new(m.api_name);
    let mut results = Vec::new();
    for (i, item) in data.iter().enumerate() {
        let jp = format!("$.data[{i}]");
        let r = (|| {
            let obj = item.as_object().ok_or_else(|| not_object(&jp))?;
            let mut matched = None;
            for f in &check_fields {
                let Some(raw) = obj.get(f).filter(|v| !is_blank(Some(v))) else { continue };
                let def = m.field(f).expect("checked against the catalog");
                let v = normalize_value(&st, def, raw, &format!("{jp}.{f}"), app.tz)?;
                if let Some(id) = find_by_value(&st, &m, f, &v, None) {
                    matched = Some((id, f.clone()));
                    break;
                }
            }
            match matched {
                Some((id, field)) => {
                    let rec = write::update(&app, &mut st, &m, id, obj, &jp, api_user(), &mut ch)?;
                    let mut s = success_obj("record updated", write::success_details(&rec));
                    s["action"] = json!("update");
                    s["duplicate_field"] = json!(field);
                    Ok(s)
                }
                None => {
                    let rec = write::insert(&app, &mut st, &m, obj, &jp, api_user(), &mut ch)?;
                    let mut s = success_obj("record added", write::success_details(&rec));
                    s["action"] = json!("insert");
                    s["duplicate_field"] = Value::Null;
                    Ok(s)
                }
            }
        })();
        results.push(r.unwrap_or_else(|e| e));
    }
    notify::fire(&app, &mut st, &ch);
    Ok(respond(results, StatusCode::OK))
}

fn delete_ids(app: &App, m: &ModuleDef, ids: &[String]) -> Response {
    let mut st = app.st();
    let mut ch = Changes::new(m.api_name);
    let mut results = Vec::new();
    for raw in ids {
        let r = match raw.trim().parse::<i64>() {
            Ok(id) => write::delete(app, &mut st, m, id, api_user(), &mut ch).map(|_| id),
            Err(_) => Err(error_obj("INVALID_DATA", "the id given seems to be invalid", json!({"id": raw}))),
        };
        results.push(match r {
            Ok(id) => success_obj("record deleted", json!({"id": id.to_string()})),
            Err(e) => e,
        });
    }
    notify::fire(app, &mut st, &ch);
    respond(results, StatusCode::OK)
}

/// `DELETE /crm/v8/{module}?ids=`.
pub async fn delete(State(app): State<Arc<App>>, Path(module): Path<String>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let m = data_module(&app, &module)?;
    let ids: Vec<String> = q.get("ids").map(|s| s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect()).unwrap_or_default();
    if ids.is_empty() {
        return Err(ApiError::required_param("ids"));
    }
    if ids.len() > MAX_WRITE {
        return Err(ApiError::bad("LIMIT_EXCEEDED", "Record count exceeded", json!({"limit": MAX_WRITE, "param": "ids"})));
    }
    Ok(delete_ids(&app, &m, &ids))
}

/// `DELETE /crm/v8/{module}/{id}`.
pub async fn delete_one(State(app): State<Arc<App>>, Path((module, id)): Path<(String, String)>) -> ApiResult {
    let m = data_module(&app, &module)?;
    Ok(delete_ids(&app, &m, &[id]))
}

/// `GET /crm/v8/{module}/deleted`.
pub async fn deleted(State(app): State<Arc<App>>, Path(module): Path<String>, Query(q): Query<HashMap<String, String>>, headers: HeaderMap) -> ApiResult {
    let m = data_module(&app, &module)?;
    let kind = q.get("type").cloned().unwrap_or_else(|| "all".into());
    if !["all", "recycle", "permanent"].contains(&kind.as_str()) {
        return Err(ApiError::invalid_data("invalid data", json!({"param": "type", "supported_values": ["all", "recycle", "permanent"]})));
    }
    let per_page = int_param(&q, "per_page")?.unwrap_or(MAX_PER_PAGE).min(MAX_PER_PAGE);
    let page = int_param(&q, "page")?.unwrap_or(1);
    let since = if_modified_since(&headers)?;
    let st = app.st();
    let mut rows: Vec<_> = st
        .deleted
        .iter()
        .filter(|d| d.module == m.api_name && kind != "permanent")
        .filter(|d| since.is_none_or(|s| d.deleted_time > s))
        .collect();
    rows.sort_by(|a, b| (b.deleted_time, b.id).cmp(&(a.deleted_time, a.id)));
    let offset = (page - 1) * per_page;
    let data: Vec<Value> = rows
        .iter()
        .skip(offset)
        .take(per_page)
        .map(|d| {
            json!({"deleted_by": d.deleted_by, "id": d.id.to_string(), "display_name": d.display_name, "type": "recycle",
                "created_by": d.created_by, "deleted_time": app.fmt(d.deleted_time)})
        })
        .collect();
    if data.is_empty() {
        return Ok(no_content());
    }
    let info = json!({"per_page": per_page, "count": data.len(), "page": page, "more_records": rows.len() > offset + per_page});
    Ok(ok_json(&json!({"data": data, "info": info})))
}

/// `GET /crm/v8/{module}/actions/count`.
pub async fn count(State(app): State<Arc<App>>, Path(module): Path<String>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let m = data_module(&app, &module)?;
    let search: Vec<&str> = ["criteria", "email", "phone", "word"].into_iter().filter(|k| q.contains_key(*k)).collect();
    if q.contains_key("cvid") && !search.is_empty() {
        return Err(ApiError::bad("AMBIGUITY_DURING_PROCESSING", "cvid cannot be combined with a search parameter", json!({"param_names": ["cvid", search[0]]})));
    }
    if q.contains_key("cvid") {
        return Err(ApiError::invalid_data("Customview not accessible", json!({"param": "cvid"})));
    }
    if q.contains_key("criteria") {
        return Err(ApiError::new(400, "NOT_SUPPORTED", "criteria is not supported by the simulator's count", json!({"param": "criteria"})));
    }
    let st = app.st();
    let n = st
        .store
        .get(m.api_name)
        .map(|s| {
            s.records
                .values()
                .filter(|r| !r.get("Converted__s").and_then(|v| v.as_bool()).unwrap_or(false))
                .filter(|r| {
                    let has = |dt: crate::schema::DataType, needle: &str, exact: bool| {
                        m.fields.iter().filter(|f| f.data_type == dt || dt == crate::schema::DataType::Text).any(|f| {
                            r.get(f.api_name).and_then(|v| v.as_str()).is_some_and(|v| {
                                if exact {
                                    v.eq_ignore_ascii_case(needle)
                                } else {
                                    v.to_lowercase().contains(&needle.to_lowercase())
                                }
                            })
                        })
                    };
                    q.get("email").is_none_or(|e| has(crate::schema::DataType::Email, e, true))
                        && q.get("phone").is_none_or(|p| has(crate::schema::DataType::Phone, p, true))
                        && q.get("word").is_none_or(|w| has(crate::schema::DataType::Text, w, false))
                })
                .count()
        })
        .unwrap_or(0);
    Ok(ok_json(&json!({"count": n})))
}
