//! Bulk write (zoho-api.md §8): zip upload, jobs that import a CSV with
//! insert / update / upsert, job status and the result file.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde_json::{json, Map, Value};

use crate::clock::fmt_dt;
use crate::errors::{error_obj, json_response, ok_json, ApiError, ApiResult};
use crate::notify;
use crate::schema::{DataType, FieldDef, ModuleDef};
use crate::state::{api_user, id_of, Advanced, App, BulkWriteJob, JobState, State as SimState, UploadedFile, WriteCounts, USERS};
use crate::values::normalize_value;
use crate::write::{self, check_unique, find_by_value, Changes, Stamp};
use crate::ziputil::{first_csv, zip_one};

pub const MAX_ZIP_BYTES: usize = 25 * 1024 * 1024;
pub const MAX_ROWS: usize = 25_000;
pub const MAX_COLUMNS: usize = 200;

fn header_error() -> ApiError {
    ApiError::new(
        400,
        "INVALID_REQUEST",
        "check if headers [feature, X-CRM-ORG] are present and valid",
        json!({}),
    )
    .with_extra(json!({"ERROR_CODE": 400, "ERROR_MESSAGE": "Bad Request", "x-error": "check if headers [feature, X-CRM-ORG] are present and valid",
        "info": "Forbidden", "x-info": "Link not valid", "http_status": "400"}))
}

impl ApiError {
    fn with_extra(mut self, extra: Value) -> Self {
        if let (Some(b), Some(e)) = (self.body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
            b.remove("code");
            b.remove("message");
            b.remove("details");
        }
        self
    }
}

/// `POST /crm/v8/upload` (multipart `file`; headers `feature: bulk-write`, `X-CRM-ORG`).
pub async fn upload(State(app): State<Arc<App>>, headers: HeaderMap, mut mp: Multipart) -> ApiResult {
    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    if h("feature") != "bulk-write" || h("x-crm-org") != app.cfg.zgid {
        return Err(header_error());
    }
    let mut file: Option<Bytes> = None;
    while let Ok(Some(field)) = mp.next_field().await {
        if field.name() == Some("file") {
            match field.bytes().await {
                Ok(b) => file = Some(b),
                Err(_) => return Err(ApiError::new(413, "FILE_TOO_LARGE", "File size too large to process", json!({}))),
            }
        }
    }
    let Some(file) = file else {
        return Err(ApiError::bad("MANDATORY_NOT_FOUND", "required field not found", json!({"api_name": "file", "json_path": "$.file"})));
    };
    if file.len() > MAX_ZIP_BYTES {
        return Err(ApiError::new(413, "FILE_TOO_LARGE", "File size too large to process", json!({})));
    }
    let Some((csv_name, csv)) = first_csv(&file) else {
        return Err(ApiError::bad("INVALID_FILE_FORMAT", "invalid file format. only zip format is supported", json!({})));
    };
    let now = app.now();
    let mut st = app.st();
    let file_id = app.next_job_id(&mut st);
    let up = UploadedFile { file_id: file_id.clone(), csv_name, csv: Bytes::from(csv), created_time: app.fmt(now) };
    let body = json!({"status": "success", "code": "FILE_UPLOAD_SUCCESS", "message": "file uploaded.",
        "details": {"file_id": file_id, "created_time": up.created_time}});
    st.uploads.insert(file_id, up);
    Ok(ok_json(&body))
}

/// One column mapping of a job.
#[derive(Debug, Clone)]
struct Mapping {
    api_name: String,
    /// `$.<api_name>`, for the checks' errors.
    json_path: String,
    index: Option<usize>,
    format: Option<String>,
    find_by: Option<String>,
    default: Option<String>,
}

fn detect_delimiter(csv: &[u8]) -> u8 {
    let first = csv.split(|b| *b == b'\n').next().unwrap_or(&[]);
    let mut best = (0usize, b',');
    for d in [b',', b';', b'|', b':'] {
        let n = first.iter().filter(|b| **b == d).count();
        if n > best.0 {
            best = (n, d);
        }
    }
    best.1
}

/// The file's header and its rows, each handed to `row`; the file is
/// refused past MAX_ROWS rows.
fn read_csv(csv: &[u8], mut row: impl FnMut(&csv::StringRecord)) -> Result<Vec<String>, ApiError> {
    let mut r = csv::ReaderBuilder::new().delimiter(detect_delimiter(csv)).flexible(true).has_headers(true).from_reader(csv);
    let bad = || ApiError::bad("INVALID_FILE_FORMAT", "File not supported for bulk write", json!({}));
    let header: Vec<String> = r.headers().map_err(|_| bad())?.iter().map(|s| s.trim_start_matches('\u{feff}').to_string()).collect();
    let (mut rec, mut n) = (csv::StringRecord::new(), 0);
    while r.read_record(&mut rec).map_err(|_| bad())? {
        n += 1;
        if n > MAX_ROWS {
            return Err(ApiError::bad("LIMIT_EXCEEDED", "Record count exceeded", json!({"limit": MAX_ROWS})));
        }
        row(&rec);
    }
    Ok(header)
}

fn parse_csv(csv: &[u8]) -> Result<(Vec<String>, Vec<csv::StringRecord>), ApiError> {
    let mut rows = Vec::new();
    let header = read_csv(csv, |r| rows.push(r.clone()))?;
    Ok((header, rows))
}

fn job_mappings(m: &ModuleDef, header: &[String], given: Option<&Vec<Value>>) -> Result<Vec<Mapping>, ApiError> {
    let invalid = |name: &str| ApiError::bad("INVALID_FIELD", &format!("invalid mapping. invalid api_name {name}."), json!({"api_name": name}));
    let mut out = Vec::new();
    match given {
        Some(list) => {
            if list.len() > MAX_COLUMNS {
                return Err(ApiError::bad("HEADER_LIMIT_EXCEEDED", "too many mapped fields", json!({"limit": MAX_COLUMNS})));
            }
            for (i, mv) in list.iter().enumerate() {
                let name = mv.get("api_name").and_then(|v| v.as_str()).unwrap_or("").to_string();
                if m.field(&name).is_none() {
                    return Err(invalid(&name));
                }
                let index = mv.get("index").and_then(|v| v.as_u64()).map(|v| v as usize);
                let default = mv.get("default_value").and_then(|d| d.get("value")).map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
                if let Some(ix) = index {
                    if ix >= header.len() {
                        return Err(ApiError::bad("COLUMN_INDEX_NOT_FOUND", "column index not found in the file", json!({"api_name": name, "index": ix, "json_path": format!("$.resource[0].field_mappings[{i}].index")})));
                    }
                } else if default.is_none() {
                    return Err(ApiError::bad("MISSING_REQUIRED_KEY", &format!("required key index for field {name} is not found in request body."), json!({"api_name": name})));
                }
                out.push(Mapping {
                    json_path: format!("$.{name}"),
                    api_name: name,
                    index,
                    format: mv.get("format").and_then(|v| v.as_str()).map(String::from),
                    find_by: mv.get("find_by").and_then(|v| v.as_str()).map(String::from),
                    default,
                });
            }
        }
        None => {
            if header.len() > MAX_COLUMNS {
                return Err(ApiError::bad("HEADER_LIMIT_EXCEEDED", "too many columns", json!({"limit": MAX_COLUMNS})));
            }
            for (i, h) in header.iter().enumerate() {
                let (name, find_by) = match h.split_once('.') {
                    Some((a, b)) => (a.to_string(), Some(b.to_string())),
                    None => (h.clone(), None),
                };
                if m.field(&name).is_none() {
                    return Err(invalid(h));
                }
                out.push(Mapping { json_path: format!("$.{name}"), api_name: name, index: Some(i), format: None, find_by, default: None });
            }
        }
    }
    Ok(out)
}

/// `POST /crm/bulk/v8/write`.
pub async fn create(State(app): State<Arc<App>>, body: Bytes) -> ApiResult {
    let v: Value = serde_json::from_slice(&body).map_err(|_| ApiError::bad("INVALID_DATA", "invalid data", json!({"param": "body"})))?;
    let op = v.get("operation").and_then(|o| o.as_str()).unwrap_or("");
    if op.is_empty() {
        return Err(ApiError::bad("MISSING_REQUIRED_KEY", "required key operation is not found in request body.", json!({"api_name": "operation"})));
    }
    if !["insert", "update", "upsert"].contains(&op) {
        return Err(ApiError::bad("INVALID_DATA", "invalid data", json!({"api_name": "operation", "json_path": "$.operation"})));
    }
    if let Some(cb) = v.get("callback").filter(|c| !c.is_null()) {
        let method = cb.get("method").and_then(|m| m.as_str()).unwrap_or("post");
        if method != "post" {
            return Err(ApiError::bad("INVALID_CALLBACK_METHOD", "invalid callback method", json!({"supported_callback_methods": ["post"]})));
        }
    }
    let Some(res) = v.get("resource").and_then(|r| r.as_array()).and_then(|r| r.first()) else {
        return Err(ApiError::bad("MANDATORY_NOT_FOUND", "required field not found", json!({"api_name": "resource", "json_path": "$.resource"})));
    };
    let name = res.get("module").and_then(|m| m.get("api_name")).and_then(|n| n.as_str()).unwrap_or("");
    let Some(m) = app.data_module(name) else {
        return Err(ApiError::bad("MODULE_NOT_AVAILABLE", &format!("Requested module '{name}' is not available."), json!({"api_name": name})));
    };
    let file_id = res.get("file_id").map(|f| match f {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let file = file_id.as_ref().and_then(|id| app.st().uploads.get(id).cloned());
    let Some(file) = file else {
        return Err(ApiError::bad("INVALID_FILE_ID", "improper file id", json!({"api_name": "file_id", "json_path": "$.resource[0].file_id"})));
    };
    let find_by = res.get("find_by").and_then(|f| f.as_str()).filter(|s| !s.is_empty()).map(String::from);
    if op != "insert" && find_by.is_none() {
        return Err(ApiError::bad("MANDATORY_NOT_FOUND", "Required key find_by is not available", json!({"api_name": "find_by", "json_path": "$.resource[0].find_by"})));
    }
    if let Some(fb) = &find_by {
        if fb != "id" && !m.duplicate_check_fields().contains(&fb.as_str()) {
            return Err(ApiError::bad("INVALID_DATA", "invalid data", json!({"api_name": "find_by", "json_path": "$.resource[0].find_by"})));
        }
    }
    // Checked whole now, parsed again when the job runs.
    let header = read_csv(&file.csv, |_| {})?;
    let mappings = job_mappings(&m, &header, res.get("field_mappings").and_then(|f| f.as_array()))?;
    if op != "update" {
        let mapped = |f: &str| mappings.iter().any(|mp| mp.api_name == f);
        if m.fields.iter().any(|f| f.mandatory && !mapped(f.api_name)) {
            return Err(ApiError::bad("MANDATORY_FIELDS_NOT_MAPPED", "All mandatory fields are not mapped for the layout", json!({})));
        }
    }
    if let Some(fb) = &find_by {
        if !mappings.iter().any(|mp| &mp.api_name == fb) {
            return Err(ApiError::bad("MANDATORY_NOT_FOUND", "the find_by field is not mapped", json!({"api_name": fb, "json_path": "$.resource[0].field_mappings"})));
        }
    }
    let now = app.now();
    let mut st = app.st();
    let id = app.next_job_id(&mut st);
    let fail = if st.pending_job_failures > 0 {
        st.pending_job_failures -= 1;
        true
    } else {
        false
    };
    let skip_rows = std::mem::take(&mut st.pending_skip_rows);
    st.bulk_writes.insert(
        id.clone(),
        BulkWriteJob {
            id: id.clone(),
            operation: op.to_string(),
            module: m.api_name.to_string(),
            request: v.clone(),
            file,
            state: JobState::Added,
            created_time: now,
            counts: WriteCounts::default(),
            fail,
            skip_rows,
            result_zip: None,
            callback: v.get("callback").filter(|c| c.is_object()).cloned(),
        },
    );
    drop(st);
    tokio::spawn(run_job(app.clone(), id.clone()));
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"status": "success", "code": "SUCCESS", "message": "success", "details": {"id": id, "created_by": api_user().minified()}}),
    ))
}

/// Java-style date pattern → chrono format.
fn chrono_format(pat: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = pat.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                out.push(chars[i]);
                i += 1;
            }
            i += 1;
            continue;
        }
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        let tok = match (c, n) {
            ('y', 4) | ('y', 1) => "%Y".to_string(),
            ('y', 2) => "%y".to_string(),
            ('M', 2) | ('M', 1) => "%m".to_string(),
            ('M', 3) => "%b".to_string(),
            ('d', _) => "%d".to_string(),
            ('H', _) => "%H".to_string(),
            ('h', _) => "%I".to_string(),
            ('m', _) => "%M".to_string(),
            ('s', _) => "%S".to_string(),
            ('S', _) => "%3f".to_string(),
            ('a', _) => "%p".to_string(),
            ('X', _) | ('x', _) => "%:z".to_string(),
            ('Z', _) => "%z".to_string(),
            (other, n) => std::iter::repeat_n(other, n).collect(),
        };
        out.push_str(&tok);
        i += n;
    }
    out
}

fn parse_date(s: &str, format: Option<&str>) -> Option<String> {
    let f = chrono_format(format.unwrap_or("MM/dd/yyyy"));
    NaiveDate::parse_from_str(s.trim(), &f).ok().map(|d| d.format("%Y-%m-%d").to_string())
}

fn parse_datetime(s: &str, format: Option<&str>, tz: chrono::FixedOffset) -> Option<String> {
    let f = chrono_format(format.unwrap_or("MM/dd/yyyy HH:mm:ss"));
    let s = s.trim();
    if f.contains("%:z") || f.contains("%z") {
        let fixed = if let Some(stripped) = s.strip_suffix('Z') { format!("{stripped}+00:00") } else { s.to_string() };
        let t = DateTime::parse_from_str(&fixed, &f).ok()?;
        return Some(fmt_dt(t.with_timezone(&Utc), tz));
    }
    let naive = NaiveDateTime::parse_from_str(s, &f).ok()?;
    let t = tz.from_local_datetime(&naive).single()?;
    Some(fmt_dt(t.with_timezone(&Utc), tz))
}

/// Converts one CSV cell into the JSON value the records API would take.
fn cell_value(st: &SimState, f: &FieldDef, mp: &Mapping, raw: &str, tz: chrono::FixedOffset) -> Result<Value, ()> {
    let v = match f.data_type {
        DataType::Integer => json!(raw.trim().parse::<i64>().map_err(|_| ())?),
        DataType::Double | DataType::Currency | DataType::Percent => {
            let x: f64 = raw.trim().parse().map_err(|_| ())?;
            serde_json::Number::from_f64(x).map(Value::Number).ok_or(())?
        }
        DataType::Boolean => match raw.trim().to_ascii_lowercase().as_str() {
            "true" => json!(true),
            "false" => json!(false),
            _ => return Err(()),
        },
        DataType::Date => json!(parse_date(raw, mp.format.as_deref()).ok_or(())?),
        DataType::Datetime => json!(parse_datetime(raw, mp.format.as_deref(), tz).ok_or(())?),
        DataType::Multiselectpicklist => Value::Array(raw.split(';').map(|s| json!(s.trim())).filter(|v| v != "").collect()),
        DataType::Ownerlookup => {
            let u = USERS.iter().find(|u| u.id == raw.trim() || u.email.eq_ignore_ascii_case(raw.trim())).ok_or(())?;
            json!({"id": u.id})
        }
        DataType::Lookup => {
            let by = mp.find_by.as_deref().unwrap_or("id");
            if by == "id" {
                json!({"id": raw.trim()})
            } else {
                let target = f.lookup_module.ok_or(())?;
                let store = st.store.get(target).ok_or(())?;
                let id = store.records.iter().find(|(_, r)| r.get(by).and_then(|v| v.as_str()).is_some_and(|v| v.eq_ignore_ascii_case(raw.trim()))).map(|(id, _)| *id).ok_or(())?;
                json!({"id": id.to_string()})
            }
        }
        DataType::Bigint => json!(raw.trim()),
        _ => json!(raw),
    };
    Ok(v)
}

struct RowOutcome {
    status: &'static str,
    record_id: String,
    errors: Vec<(&'static str, String)>,
}

fn errors_text(errs: &[(&'static str, String)]) -> String {
    let mut groups: Vec<(&str, Vec<String>)> = Vec::new();
    for (code, col) in errs {
        match groups.iter_mut().find(|(c, _)| c == code) {
            Some((_, cols)) => {
                if !cols.contains(col) {
                    cols.push(col.clone())
                }
            }
            None => groups.push((code, vec![col.clone()])),
        }
    }
    groups.iter().map(|(c, cols)| format!("{c}-{}", cols.join(","))).collect::<Vec<_>>().join(":")
}

#[allow(clippy::too_many_arguments)]
fn process_row(app: &App, st: &mut SimState, m: &ModuleDef, blank: &Map<String, Value>, op: &str, find_by: Option<&str>, ignore_empty: bool, mappings: &[Mapping], row: &csv::StringRecord, stamp: &Stamp, ch: &mut Changes) -> RowOutcome {
    let skipped = |errors| RowOutcome { status: "SKIPPED", record_id: String::new(), errors };
    let mut values = Map::new();
    let mut errors = Vec::new();
    let mut key_value: Option<Value> = None;
    for mp in mappings {
        let f = m.field(&mp.api_name).expect("validated");
        let mut raw = mp.index.and_then(|i| row.get(i)).unwrap_or("");
        if raw.is_empty() {
            raw = mp.default.as_deref().unwrap_or("");
        }
        let value = if raw.is_empty() {
            if ignore_empty {
                continue;
            }
            Value::Null
        } else {
            match cell_value(st, f, mp, raw, app.tz) {
                Ok(v) => v,
                Err(()) => {
                    errors.push(("INVALID_DATA", mp.api_name.clone()));
                    continue;
                }
            }
        };
        if Some(mp.api_name.as_str()) == find_by {
            key_value = Some(value.clone());
        }
        if f.read_only {
            continue;
        }
        match normalize_value(st, f, &value, &mp.json_path, app.tz) {
            Ok(v) => {
                values.insert(mp.api_name.clone(), v);
            }
            Err(_) => errors.push(("INVALID_DATA", mp.api_name.clone())),
        }
    }
    if !errors.is_empty() {
        return skipped(errors);
    }
    let existing = match (find_by, &key_value) {
        (Some(fb), Some(v)) => {
            if fb == "id" {
                id_of(v).filter(|id| st.store.get(m.api_name).is_some_and(|s| s.records.contains_key(id)))
            } else {
                find_by_value(st, m, fb, v, None)
            }
        }
        _ => None,
    };
    let insert = |st: &mut SimState, values: Map<String, Value>, ch: &mut Changes| -> RowOutcome {
        let missing: Vec<(&'static str, String)> = m
            .fields
            .iter()
            .filter(|f| f.mandatory && crate::values::is_blank(values.get(f.api_name)))
            .map(|f| ("MANDATORY_NOT_FOUND", f.api_name.to_string()))
            .collect();
        if !missing.is_empty() {
            return skipped(missing);
        }
        if let Err(e) = check_unique(st, m, &values, "$", None) {
            let col = e["details"]["api_name"].as_str().unwrap_or("").to_string();
            return skipped(vec![("DUPLICATE_DATA", col)]);
        }
        let id = write::insert_normalized(st, m, blank.clone(), values, stamp, ch);
        RowOutcome { status: "ADDED", record_id: id.to_string(), errors: vec![] }
    };
    let update = |st: &mut SimState, id: i64, values: Map<String, Value>, ch: &mut Changes| -> RowOutcome {
        if values.iter().any(|(k, v)| m.field(k).is_some_and(|f| f.mandatory) && crate::values::is_blank(Some(v))) {
            let cols = values.iter().filter(|(k, v)| m.field(k).is_some_and(|f| f.mandatory) && crate::values::is_blank(Some(v))).map(|(k, _)| ("MANDATORY_NOT_FOUND", k.clone())).collect();
            return skipped(cols);
        }
        if let Err(e) = check_unique(st, m, &values, "$", Some(id)) {
            let col = e["details"]["api_name"].as_str().unwrap_or("").to_string();
            return skipped(vec![("DUPLICATE_DATA", col)]);
        }
        write::update_normalized(st, m, id, values, stamp, ch);
        RowOutcome { status: "UPDATED", record_id: id.to_string(), errors: vec![] }
    };
    match (op, existing) {
        ("insert", Some(_)) => skipped(vec![("DUPLICATE_DATA", find_by.unwrap_or("id").to_string())]),
        ("insert", None) | ("upsert", None) => insert(st, values, ch),
        ("update", None) => skipped(vec![("RESOURCE_NOT_FOUND", find_by.unwrap_or("id").to_string())]),
        (_, Some(id)) => update(st, id, values, ch),
        _ => skipped(vec![]),
    }
}

/// Rows processed per hold of the simulator's lock.
const SLICE: usize = 2_000;

async fn run_job(app: Arc<App>, id: String) {
    let (job, deadline) = match app.advance_job(&id, |st| &mut st.bulk_writes).await {
        Advanced::Run(job, deadline) => (job, deadline),
        Advanced::Failed => return callback(&app, &id).await,
        Advanced::Gone => return,
    };
    let m = app.data_module(&job.module).expect("validated");
    let res = &job.request["resource"][0];
    let (header, rows) = parse_csv(&job.file.csv).unwrap_or_default();
    let mappings = job_mappings(&m, &header, res.get("field_mappings").and_then(|f| f.as_array())).unwrap_or_default();
    let find_by = res.get("find_by").and_then(|f| f.as_str()).filter(|s| !s.is_empty());
    let ignore_empty = job.request.get("ignore_empty").and_then(|v| v.as_bool()).unwrap_or(false);
    let echo: Vec<usize> = {
        let mut seen = Vec::new();
        for mp in &mappings {
            if let Some(i) = mp.index {
                if !seen.contains(&i) && seen.len() < 3 {
                    seen.push(i);
                }
            }
        }
        seen
    };
    let mut counts = WriteCounts { total: rows.len(), ..Default::default() };
    let mut out = csv::Writer::from_writer(Vec::new());
    let head = echo.iter().map(|i| header.get(*i).map_or("", String::as_str)).chain(["STATUS", "RECORD_ID", "ERRORS"]);
    let _ = out.write_record(head);
    // A slice of rows per hold of the lock, so that other calls are served
    // while a large job runs; the job's notifications go out at its end.
    let mut ch = Changes::new(m.api_name);
    let blank = write::blank_record(&m);
    for (first, slice) in rows.chunks(SLICE).enumerate().map(|(n, s)| (n * SLICE, s)) {
        {
            let mut st = app.st();
            let stamp = Stamp::new(&app, api_user());
            for (i, row) in (first..).zip(slice) {
                let outcome = if i < job.skip_rows {
                    let col = mappings.first().map(|m| m.api_name.clone()).unwrap_or_default();
                    RowOutcome { status: "SKIPPED", record_id: String::new(), errors: vec![("INVALID_DATA", col)] }
                } else {
                    process_row(&app, &mut st, &m, &blank, &job.operation, find_by, ignore_empty, &mappings, row, &stamp, &mut ch)
                };
                match outcome.status {
                    "ADDED" => counts.added += 1,
                    "UPDATED" => counts.updated += 1,
                    _ => counts.skipped += 1,
                }
                for i in &echo {
                    let _ = out.write_field(row.get(*i).unwrap_or(""));
                }
                let _ = out.write_field(outcome.status);
                let _ = out.write_field(&outcome.record_id);
                let _ = out.write_field(errors_text(&outcome.errors));
                let _ = out.write_record(None::<&[u8]>);
            }
        }
        tokio::task::yield_now().await;
    }
    notify::fire(&app, &mut app.st(), &ch);
    let data = out.into_inner().unwrap_or_default();
    let zip = zip_one(&format!("{}-{}", m.api_name, job.file.csv_name), &data);
    tokio::time::sleep_until(deadline).await;
    if let Some(j) = app.st().bulk_writes.get_mut(&id) {
        j.state = JobState::Completed;
        j.counts = counts;
        j.result_zip = Some(zip);
    }
    callback(&app, &id).await;
}

async fn callback(app: &Arc<App>, id: &str) {
    let Some(j) = app.st().bulk_writes.get(id).cloned() else { return };
    app.post_job_callback(j.callback.as_ref(), || job_json(app, &j)).await;
}

pub fn download_url(app: &App, id: &str) -> String {
    format!("{}/v8/crm/{}/bulk-write/{id}/{id}.zip", app.base_url(), app.cfg.zgid)
}

fn job_json(app: &App, j: &BulkWriteJob) -> Value {
    let m = app.module(&j.module);
    let res = &j.request["resource"][0];
    let status = j.state.write_str();
    let mut resource = json!({
        "status": status,
        "code": j.state.write_code(),
        "type": "data",
        "module": {"api_name": j.module, "id": m.map(|m| m.id.to_string())},
        "find_by": res.get("find_by").cloned().unwrap_or(Value::Null),
        "file_id": j.file.file_id,
        "field_mappings": res.get("field_mappings").cloned().unwrap_or(json!([])),
        "file": {"status": status, "name": j.file.csv_name, "added_count": j.counts.added, "updated_count": j.counts.updated,
                 "skipped_count": j.counts.skipped, "total_count": j.counts.total},
    });
    if let Some(ie) = j.request.get("ignore_empty").and_then(|v| v.as_bool()) {
        resource["ignore_empty"] = json!(ie);
    }
    let mut out = json!({
        "id": j.id,
        "status": status,
        "operation": j.operation,
        "character_encoding": j.request.get("character_encoding").and_then(|v| v.as_str()).unwrap_or("UTF-8"),
        "created_by": api_user().minified(),
        "created_time": app.fmt(j.created_time),
        "resource": [resource],
    });
    if let Some(cb) = &j.callback {
        out["callback"] = json!({"url": cb.get("url").cloned().unwrap_or(Value::Null), "method": "post"});
    }
    if j.state == JobState::Completed {
        out["result"] = json!({"download_url": download_url(app, &j.id)});
    }
    out
}

/// `GET /crm/bulk/v8/write/{id}` (no `data` wrapper).
pub async fn status(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult {
    let st = app.st();
    let j = st
        .bulk_writes
        .get(&id)
        .ok_or_else(|| ApiError::new(404, "RESOURCE_NOT_FOUND", "The requested resource doesn't exist.", json!({"resource": id})))?;
    Ok(ok_json(&job_json(&app, j)))
}

/// `GET /v8/crm/{zgid}/bulk-write/{job}/{file}`: the result zip.
pub async fn download(State(app): State<Arc<App>>, Path((zgid, job, _file)): Path<(String, String, String)>) -> ApiResult {
    let st = app.st();
    let zip = st.bulk_writes.get(&job).filter(|_| zgid == app.cfg.zgid).and_then(|j| j.result_zip.clone());
    let Some(zip) = zip else {
        return Err(ApiError::new(404, "RESOURCE_NOT_FOUND", "The requested resource doesn't exist.", json!({"resource": job})));
    };
    let mut resp: Response = (StatusCode::OK, zip).into_response();
    resp.headers_mut().insert("content-type", HeaderValue::from_static("application/octet-stream"));
    let _ = error_obj;
    Ok(resp)
}
