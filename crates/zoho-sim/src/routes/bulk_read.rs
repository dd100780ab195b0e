//! Bulk read (zoho-api.md §7): jobs that export a module to a zipped CSV.

use std::borrow::Cow;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Duration as CDuration;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

use crate::coql;
use crate::errors::{json_response, ok_json, ApiError, ApiResult};
use crate::schema::{DataType, ModuleDef};
use crate::state::{api_user, user_by_id, Advanced, App, BulkReadCursor, BulkReadJob, JobState, State as SimState};
use crate::ziputil::zip_one;

pub const DOWNLOADS_PER_MINUTE: usize = 10;
const USER_FIELDS: &[&str] = &["id", "name", "first_name", "last_name", "full_name", "email"];

fn bad(code: &str, message: &str, details: Value) -> ApiError {
    ApiError::bad(code, message, details)
}

/// Checks a requested export column: a field, or `lookup.field`.
fn check_field(app: &App, m: &ModuleDef, f: &str) -> Result<(), ApiError> {
    let missing = || bad("FIELD_NOT_AVAILABLE", "The given field is not available", json!({"api_name": f}));
    match f.split_once('.') {
        None => m.field(f).map(|_| ()).ok_or_else(missing),
        Some((head, tail)) => {
            let def = m.field(head).ok_or_else(missing)?;
            match (def.data_type, def.lookup_module) {
                (DataType::Ownerlookup, _) => USER_FIELDS.contains(&tail).then_some(()).ok_or_else(missing),
                (DataType::Lookup, Some(target)) => {
                    let tm = app.module(target).ok_or_else(missing)?;
                    tm.field(tail).map(|_| ()).ok_or_else(missing)
                }
                _ => Err(missing()),
            }
        }
    }
}

pub async fn create(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let is_json = headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("application/json"));
    if !is_json {
        return Err(ApiError::new(415, "MEDIA_TYPE_NOT_SUPPORTED", "The Content-Type header must be application/json", json!({})));
    }
    if body.is_empty() {
        return Err(bad("REQUEST_BODY_IS_EMPTY", "The request body is empty", json!({})));
    }
    let v: Value = serde_json::from_slice(&body).map_err(|_| bad("REQUEST_BODY_NOT_READABLE", "The request body is not readable", json!({})))?;
    let Some(query) = v.get("query").and_then(|q| q.as_object()) else {
        return Err(ApiError::bad("MANDATORY_NOT_FOUND", "required field not found", json!({"api_name": "query", "json_path": "$.query"})));
    };
    if v.get("file_type").and_then(|f| f.as_str()).is_some_and(|f| f != "csv") {
        return Err(bad("NOT_SUPPORTED_FEATURE", "only csv exports are simulated", json!({"api_name": "file_type"})));
    }
    let callback = v.get("callback").filter(|c| c.is_object()).cloned();
    let now = app.now();
    let mut st = app.st();
    let (module, fields, criteria, cvid, page, after_id, rows_before, used_token) = if let Some(tok) = query.get("page_token").and_then(|t| t.as_str()) {
        let Some(c) = st.bulk_read_cursors.get(tok).cloned() else {
            return Err(bad("INVALID_REQUEST", "invalid page token", json!({"api_name": "page_token", "json_path": "$.query.page_token"})));
        };
        if c.expires_at <= now {
            return Err(bad("INVALID_REQUEST", "the page token has expired", json!({"api_name": "page_token", "json_path": "$.query.page_token"})));
        }
        (c.module, c.fields, c.criteria, c.cvid, c.page, c.after_id, c.rows_before, Some(tok.to_string()))
    } else {
        let name = query.get("module").and_then(|m| m.get("api_name")).and_then(|n| n.as_str()).unwrap_or("");
        if name.is_empty() {
            return Err(ApiError::bad("MANDATORY_NOT_FOUND", "required field not found", json!({"api_name": "module", "json_path": "$.query.module"})));
        }
        let catalog = app.catalog();
        let m = match catalog.iter().find(|m| m.api_name.eq_ignore_ascii_case(name)) {
            None => return Err(bad("MODULE_NOT_AVAILABLE", "The given module is not available", json!({"api_name": name}))),
            Some(m) if !(m.api_supported && m.data_access) => return Err(bad("MODULE_NOT_SUPPORTED", "The given module is not supported for bulk read", json!({"api_name": m.api_name}))),
            Some(m) => m,
        };
        if let Some(cvid) = query.get("cvid").filter(|c| !c.is_null()) {
            return Err(bad("CVID_NOT_SUPPORTED", "The given custom view is not supported", json!({"cvid": cvid})));
        }
        let fields = match query.get("fields") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => {
                let mut out = Vec::new();
                for f in a {
                    let f = f.as_str().unwrap_or("");
                    check_field(&app, m, f)?;
                    if f != "id" && !out.iter().any(|x: &String| x == f) {
                        out.push(f.to_string());
                    }
                }
                Some(out)
            }
            Some(_) => return Err(bad("INVALID_REQUEST", "fields must be an array", json!({"api_name": "fields"}))),
        };
        let criteria = query.get("criteria").filter(|c| !c.is_null()).cloned();
        if let Some(c) = &criteria {
            coql::criteria_from_json(c, m).map_err(|e| ApiError { status: StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST), body: e.to_json() })?;
        }
        let page = query.get("page").and_then(|p| p.as_u64()).unwrap_or(1).max(1) as u32;
        let before = (page as usize - 1) * app.cfg.bulk_page_size;
        (m.api_name.to_string(), fields, criteria, None, page, 0, before, None)
    };
    let id = app.next_job_id(&mut st);
    let fail = if st.pending_job_failures > 0 {
        st.pending_job_failures -= 1;
        true
    } else {
        false
    };
    let job = BulkReadJob {
        id: id.clone(),
        module,
        fields,
        criteria,
        cvid,
        page,
        after_id,
        rows_before,
        state: JobState::Added,
        created_time: now,
        callback,
        fail,
        count: 0,
        more_records: false,
        next_page_token: None,
        zip: None,
        used_page_token: used_token,
    };
    st.bulk_reads.insert(id.clone(), job);
    drop(st);
    tokio::spawn(run_job(app.clone(), id.clone()));
    let body = json!({"data": [{"status": "success", "code": "ADDED_SUCCESSFULLY", "message": "Added successfully.",
        "details": {"id": id, "operation": "read", "state": "ADDED", "created_by": api_user().minified(), "created_time": app.fmt(now)}}],
        "info": {}});
    Ok(json_response(StatusCode::CREATED, &body))
}

/// A CSV cell for a stored value (text borrowed, the rest formatted).
pub fn cell(v: &Value) -> Cow<'_, str> {
    match v {
        Value::Null => Cow::Borrowed(""),
        Value::String(s) => Cow::Borrowed(s),
        Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        // Numbers keep their text (arbitrary_precision): borrowed too.
        Value::Number(n) => Cow::Borrowed(n.as_str()),
        Value::Array(a) => Cow::Owned(a.iter().map(cell).collect::<Vec<_>>().join(";")),
        Value::Object(o) => o.get("id").map(cell).unwrap_or_default(),
    }
}

fn dotted<'a>(st: &SimState, m: &ModuleDef, rec: &'a Map<String, Value>, f: &str) -> Cow<'a, str> {
    let Some((head, tail)) = f.split_once('.') else {
        return cell(rec.get(f).unwrap_or(&Value::Null));
    };
    let Some(id) = rec.get(head).and_then(|v| v.get("id")).and_then(|v| v.as_str()) else { return Cow::Borrowed("") };
    let def = m.field(head);
    let target = match def.map(|d| d.data_type) {
        Some(DataType::Ownerlookup) => user_by_id(id).map(|u| u.as_record()),
        _ => def
            .and_then(|d| d.lookup_module)
            .and_then(|t| st.store.get(t))
            .and_then(|s| s.records.get(&id.parse::<i64>().ok()?))
            .cloned(),
    };
    Cow::Owned(target.and_then(|t| t.get(tail).map(|v| cell(v).into_owned())).unwrap_or_default())
}

/// Rows written per hold of the simulator's lock.
const SLICE: usize = 10_000;

fn scramble(id: i64) -> u64 {
    let mut x = id as u64 ^ 0x9E37_79B9_7F4A_7C15;
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

async fn run_job(app: Arc<App>, id: String) {
    let (job, deadline) = match app.advance_job(&id, |st| &mut st.bulk_reads).await {
        Advanced::Run(job, deadline) => (job, deadline),
        Advanced::Failed => return callback(&app, &id).await,
        Advanced::Gone => return,
    };
    let page_size = app.cfg.bulk_page_size;
    let m = app.data_module(&job.module).expect("validated at creation");
    let all_fields: Vec<String> = match &job.fields {
        Some(f) => f.clone(),
        None => m.fields.iter().filter(|f| f.api_name != "id").map(|f| f.api_name.to_string()).collect(),
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["Id".to_string()];
    header.extend(all_fields.iter().cloned());
    let _ = w.write_record(&header);
    // The page is written a slice at a time under the lock, which is let go
    // between slices so that downloads and other calls are served while a
    // large job runs (as Zoho's API stays up while its jobs do).
    let cond = job.criteria.as_ref().and_then(|c| coql::criteria_from_json(c, &m).ok());
    // Plain fields by name, to walk each record's keys (in the same order)
    // once instead of searching it for every column.
    let mut plain: Vec<(&str, usize)> = all_fields.iter().enumerate().filter(|(_, f)| !f.contains('.')).map(|(i, f)| (f.as_str(), i)).collect();
    plain.sort_unstable();
    let lookups: Vec<usize> = all_fields.iter().enumerate().filter(|(_, f)| f.contains('.')).map(|(i, _)| i).collect();
    let (mut count, mut last_id, mut skip) = (0usize, job.after_id, if job.after_id == 0 { job.rows_before } else { 0 });
    let more = loop {
        // Some(more) once the page is full or the rows have run out.
        let done = {
            let mut st = app.st();
            if count == 0 {
                crate::write::refresh_formulas(&app, &mut st, m.api_name);
            }
            let empty = Default::default();
            let store = st.store.get(m.api_name).map(|s| &s.records).unwrap_or(&empty);
            let mut it = store.range(last_id + 1..).filter(|(_, r)| cond.as_ref().is_none_or(|c| coql::matches(c, &m, r))).skip(std::mem::take(&mut skip));
            let want = SLICE.min(page_size - count);
            let mut slice: Vec<(i64, &Map<String, Value>)> = it.by_ref().take(want).map(|(k, r)| (*k, r)).collect();
            last_id = slice.last().map_or(last_id, |(k, _)| *k);
            count += slice.len();
            // Zoho does not document the row order: a deterministic shuffle.
            slice.sort_by_key(|(k, _)| scramble(*k));
            let mut cells: Vec<Cow<str>> = vec![Cow::Borrowed(""); all_fields.len()];
            for (k, r) in &slice {
                cells.fill(Cow::Borrowed(""));
                let mut keys = r.iter().peekable();
                for &(f, i) in &plain {
                    while keys.next_if(|(k, _)| k.as_str() < f).is_some() {}
                    // Peeked, not taken, so a repeated name would match too.
                    if let Some((_, v)) = keys.peek().filter(|(k, _)| k.as_str() == f) {
                        cells[i] = cell(v);
                    }
                }
                for &i in &lookups {
                    cells[i] = dotted(&st, &m, r, &all_fields[i]);
                }
                let _ = w.write_field(k.to_string());
                for c in &cells {
                    let _ = w.write_field(c.as_bytes());
                }
                let _ = w.write_record(None::<&[u8]>);
            }
            if slice.len() < want {
                Some(false)
            } else if count == page_size {
                Some(it.next().is_some())
            } else {
                None
            }
        };
        if let Some(more) = done {
            break more;
        }
        tokio::task::yield_now().await;
    };
    let data = w.into_inner().unwrap_or_default();
    let zip = zip_one(&format!("{id}.csv"), &data);
    tokio::time::sleep_until(deadline).await;
    {
        let now = app.now();
        let mut st = app.st();
        let next = if more {
            st.token_seq += 1;
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(app.cfg.rng_seed ^ st.token_seq.wrapping_mul(0x51_7CC1_B727_220A));
            let tok = format!("{:032x}", rng.gen::<u128>());
            st.bulk_read_cursors.insert(
                tok.clone(),
                BulkReadCursor {
                    module: job.module.clone(),
                    fields: job.fields.clone(),
                    criteria: job.criteria.clone(),
                    cvid: job.cvid.clone(),
                    page: job.page + 1,
                    after_id: last_id,
                    rows_before: job.rows_before + count,
                    expires_at: now + CDuration::hours(24),
                },
            );
            Some(tok)
        } else {
            None
        };
        if let Some(j) = st.bulk_reads.get_mut(&id) {
            j.state = JobState::Completed;
            j.count = count;
            j.more_records = more;
            j.next_page_token = next;
            j.zip = Some(zip);
        }
    }
    callback(&app, &id).await;
}

async fn callback(app: &Arc<App>, id: &str) {
    let Some(j) = app.st().bulk_reads.get(id).cloned() else { return };
    app.post_job_callback(j.callback.as_ref(), || json!({"data": [job_json(app, &j)]})).await;
}

fn job_json(app: &App, j: &BulkReadJob) -> Value {
    let m = app.module(&j.module);
    let m = m.as_deref();
    let fields: Vec<String> = match &j.fields {
        Some(f) => f.clone(),
        None => m.map(|m| m.fields.iter().filter(|f| f.api_name != "id").map(|f| f.api_name.to_string()).collect()).unwrap_or_default(),
    };
    let mut query = json!({
        "module": {"api_name": j.module, "id": m.map(|m| m.id.to_string())},
        "cvid": j.cvid,
        "fields": fields,
        "page": j.page,
    });
    if let (Some(c), Some(m)) = (&j.criteria, m) {
        let mut c = c.clone();
        with_field_ids(&mut c, m);
        query["criteria"] = c;
    }
    if let Some(t) = &j.used_page_token {
        query["page_token"] = json!(t);
    }
    let mut out = json!({
        "id": j.id,
        "operation": "read",
        "state": j.state.read_str(),
        "query": query,
        "created_by": api_user().minified(),
        "created_time": app.fmt(j.created_time),
        "file_type": "csv",
    });
    match j.state {
        JobState::Completed => {
            out["result"] = json!({
                "page": j.page,
                "per_page": app.cfg.bulk_page_size,
                "count": j.count,
                "download_url": format!("/crm/bulk/v8/read/{}/result", j.id),
                "more_records": j.more_records,
                "next_page_token": j.next_page_token,
            });
        }
        JobState::Failed => {
            out["result"] = json!({
                "error_message": {"status": "error", "code": "INTERNAL_ERROR", "message": "The bulk read job failed", "details": {}}
            });
        }
        _ => {}
    }
    out
}

/// Echoed criteria name each field as `{api_name, id}`, as Zoho does.
fn with_field_ids(v: &mut Value, m: &ModuleDef) {
    match v {
        Value::Object(o) => {
            if let Some(Value::Object(f)) = o.get_mut("field") {
                let id = f.get("api_name").and_then(|a| a.as_str()).and_then(|a| m.field(a.split('.').next().unwrap_or(a))).map(|d| d.id.to_string());
                if let Some(id) = id {
                    f.insert("id".into(), Value::String(id));
                }
            }
            for (_, x) in o.iter_mut() {
                with_field_ids(x, m);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| with_field_ids(x, m)),
        _ => {}
    }
}

fn not_found(id: &str, status: u16) -> ApiError {
    ApiError::new(status, "RESOURCE_NOT_FOUND", "The requested resource doesn't exist.", json!({"resource": id}))
}

pub async fn status(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult {
    let st = app.st();
    let j = st.bulk_reads.get(&id).ok_or_else(|| not_found(&id, 404))?;
    Ok(ok_json(&json!({"data": [job_json(&app, j)]})))
}

pub async fn download(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult {
    let now = app.now();
    let mut st = app.st();
    if !st.bulk_reads.contains_key(&id) {
        return Err(not_found(&id, 404));
    }
    let window = CDuration::seconds(app.cfg.download_window_secs as i64);
    while st.downloads.front().is_some_and(|t| now - *t >= window) {
        st.downloads.pop_front();
    }
    if st.downloads.len() >= DOWNLOADS_PER_MINUTE {
        return Err(ApiError::too_many("Download limit of 10 per minute exceeded"));
    }
    st.downloads.push_back(now);
    let j = &st.bulk_reads[&id];
    let Some(zip) = j.zip.clone() else {
        return Err(not_found(&id, 400));
    };
    let mut resp: Response = (StatusCode::OK, zip).into_response();
    resp.headers_mut().insert("content-type", HeaderValue::from_static("application/x-download"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{id}.zip\"")) {
        resp.headers_mut().insert("content-disposition", v);
    }
    Ok(resp)
}
