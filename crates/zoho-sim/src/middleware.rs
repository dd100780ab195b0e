//! The layer every non-admin call passes through: body capture, fault
//! injection, auth, concurrency, credits, latency, and the call log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::calllog::CallRecord;
use crate::credits::for_records;
use crate::errors::{ApiError, CreditOverride, ZCode};
use crate::faults::FaultKind;
use crate::limits::acquire;
use crate::state::App;

/// Largest request body read (the bulk-write upload limit plus headroom).
pub const MAX_BODY: usize = 26 * 1024 * 1024;

/// Largest response body kept in the call log (`SimConfig::capture_bodies`).
pub const MAX_CAPTURED_BODY: usize = 4 * 1024 * 1024;

/// Marker panicked with to drop a connection (fault `reset`).
pub struct SimReset;

pub struct Class {
    pub endpoint: &'static str,
    pub credits: u32,
    /// Counts against the sub-concurrency pool.
    pub sub: bool,
}

fn query_has(query: &str, key: &str) -> bool {
    query.split('&').any(|kv| kv.split('=').next() == Some(key))
}

/// Names the endpoint of a call and its default credit cost (zoho-api.md §12.1).
pub fn classify(method: &Method, path: &str, query: &str, body: Option<&Value>) -> Class {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let n_records = body.and_then(|b| b.get("data")).and_then(|d| d.as_array()).map(|a| a.len()).unwrap_or(1);
    let c = |endpoint, credits| Class { endpoint, credits, sub: false };
    match (method.as_str(), segs.as_slice()) {
        ("POST", ["oauth", "v2", "token"]) => c("oauth.token", 0),
        ("POST", ["oauth", "v2", "token", "revoke"]) => c("oauth.revoke", 0),
        (_, ["crm", "v8", "coql"]) => Class { endpoint: "coql", credits: 1, sub: true },
        (_, ["crm", "v8", "org"]) => c("meta.org", 1),
        (_, ["crm", "v8", "users"]) => c("meta.users", 1),
        (_, ["crm", "v8", "settings", "modules", ..]) => c("meta.modules", 1),
        (_, ["crm", "v8", "settings", "fields", ..]) => c("meta.fields", 1),
        ("GET", ["crm", "v8", "actions", "watch"]) => c("watch.get", 1),
        ("POST", ["crm", "v8", "actions", "watch"]) => c("watch.enable", 1),
        ("PUT", ["crm", "v8", "actions", "watch"]) => c("watch.update", 1),
        ("PATCH", ["crm", "v8", "actions", "watch"]) => c("watch.patch", 1),
        ("DELETE", ["crm", "v8", "actions", "watch"]) => c("watch.disable", 1),
        ("POST", ["crm", "v8", "upload"]) => c("bulk_write.upload", 1),
        ("POST", ["crm", "bulk", "v8", "read"]) => c("bulk_read.create", 50),
        ("GET", ["crm", "bulk", "v8", "read", _]) => c("bulk_read.status", 1),
        ("GET", ["crm", "bulk", "v8", "read", _, "result"]) => c("bulk_read.download", 1),
        ("POST", ["crm", "bulk", "v8", "write"]) => c("bulk_write.create", 500),
        ("GET", ["crm", "bulk", "v8", "write", _]) => c("bulk_write.status", 1),
        ("GET", ["v8", "crm", _, "bulk-write", ..]) => c("bulk_write.download", 1),
        ("GET", ["crm", "v8", _, "deleted"]) => c("records.deleted", 2),
        ("GET", ["crm", "v8", _, "actions", "count"]) => c("records.count", 1),
        ("POST", ["crm", "v8", _, "upsert"]) => Class { endpoint: "records.upsert", credits: for_records(n_records), sub: n_records > 10 },
        ("GET", ["crm", "v8", _]) => Class {
            endpoint: "records.list",
            credits: 1,
            sub: query_has(query, "sort_by") || query_has(query, "cvid"),
        },
        ("POST", ["crm", "v8", _]) => Class { endpoint: "records.insert", credits: for_records(n_records), sub: n_records > 10 },
        ("PUT", ["crm", "v8", _]) => Class { endpoint: "records.update", credits: for_records(n_records), sub: n_records > 10 },
        ("DELETE", ["crm", "v8", _]) => c("records.delete", 1),
        ("GET", ["crm", "v8", _, _]) => c("records.get", 1),
        ("PUT", ["crm", "v8", _, _]) => c("records.update", 1),
        ("DELETE", ["crm", "v8", _, _]) => c("records.delete", 1),
        _ => c("other", 1),
    }
}

fn status_fault_body(status: u16) -> ApiError {
    match status {
        429 => ApiError::too_many("API credits limit for the 24 hour period is exceeded or the concurrency limit of the user for the app is exceeded"),
        401 => ApiError::new(401, "INVALID_TOKEN", "invalid oauth token", json!({})),
        s if s >= 500 => ApiError::new(s, "INTERNAL_ERROR", "Internal server error occurred.", json!({})),
        s => ApiError::new(s, "INVALID_DATA", "invalid data", json!({})),
    }
}

fn check_auth(app: &App, req: &Request) -> Result<(), ApiError> {
    let Some(h) = req.headers().get("authorization") else {
        return Err(ApiError::new(401, "AUTHENTICATION_FAILURE", "Authentication failed", json!({})));
    };
    let h = h.to_str().unwrap_or("");
    let Some(tok) = h.strip_prefix("Zoho-oauthtoken ") else {
        return Err(ApiError::new(401, "AUTHENTICATION_FAILURE", "Authentication failed", json!({})));
    };
    let now = app.now();
    let st = app.st();
    match st.tokens.access.get(tok.trim()) {
        Some(t) if t.expires_at > now => Ok(()),
        _ => Err(ApiError::new(401, "INVALID_TOKEN", "invalid oauth token", json!({}))),
    }
}

pub async fn layer(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if path.starts_with("/__sim") {
        return next.run(req).await;
    }
    let start = Instant::now();
    let method = req.method().clone();
    let query = req.uri().query().unwrap_or("").to_string();
    let request_content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
    let is_json = request_content_type.as_deref().is_some_and(|v| v.contains("json"));
    let (parts, body) = req.into_parts();
    let (bytes, too_large) = match to_bytes(body, MAX_BODY).await {
        Ok(b) => (b, false),
        Err(_) => (bytes::Bytes::new(), true),
    };
    let body_json: Option<Value> = if is_json { serde_json::from_slice(&bytes).ok() } else { None };
    let class = classify(&method, &path, &query, body_json.as_ref());
    let req = Request::from_parts(parts, Body::from(bytes));

    let mut reset = false;
    let mut charged = 0u32;
    let resp = if too_large {
        ApiError::new(413, "FILE_TOO_LARGE", "File size too large to process", json!({})).into_response()
    } else {
        run(&app, req, next, &path, &class, &mut reset, &mut charged).await
    };

    // The Date header tells Zoho's clock, as a real server's does.
    let mut resp = resp;
    if let Ok(v) = HeaderValue::from_str(&app.clock.now().format("%a, %d %b %Y %H:%M:%S GMT").to_string()) {
        resp.headers_mut().insert("date", v);
    }
    let code = resp.extensions().get::<ZCode>().map(|c| c.0.clone());
    let status = resp.status().as_u16();
    let response_content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
    let (resp, response_body) = if app.cfg.capture_bodies && !reset && response_content_type.as_deref().is_some_and(|v| v.contains("json")) {
        capture(resp).await
    } else {
        (resp, None)
    };
    {
        let mut log = app.calls.lock().unwrap_or_else(|e| e.into_inner());
        log.seq += 1;
        let seq = log.seq;
        let request_body = if class.endpoint.starts_with("oauth") { None } else { body_json };
        log.calls.push(CallRecord {
            seq,
            method: method.to_string(),
            path: path.clone(),
            query,
            endpoint: class.endpoint.to_string(),
            status: if reset { 0 } else { status },
            credits: charged,
            list_credits: class.credits,
            code: if reset { Some("RESET".into()) } else { code },
            request_body,
            request_content_type,
            response_content_type,
            response_body,
            duration_ms: start.elapsed().as_millis() as u64,
            started_us: start.duration_since(app.started).as_micros() as u64,
            ended_us: app.started.elapsed().as_micros() as u64,
        });
    }
    if reset {
        // Unwinding out of the connection task drops the connection without
        // an answer; resume_unwind skips the panic hook, so nothing is printed.
        std::panic::resume_unwind(Box::new(SimReset));
    }
    resp
}

/// Buffers a JSON answer to log a copy of it; the client gets the same bytes.
async fn capture(resp: Response) -> (Response, Option<Value>) {
    let (parts, body) = resp.into_parts();
    match to_bytes(body, MAX_BODY).await {
        Ok(bytes) => {
            let v = if bytes.len() <= MAX_CAPTURED_BODY { serde_json::from_slice(&bytes).ok() } else { None };
            (Response::from_parts(parts, Body::from(bytes)), v)
        }
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR.into_response(), None),
    }
}

async fn run(app: &Arc<App>, req: Request, next: Next, path: &str, class: &Class, reset: &mut bool, charged: &mut u32) -> Response {
    // Fault injection first: it stands in for whatever Zoho might do.
    let fault = app.faults.lock().unwrap_or_else(|e| e.into_inner()).take(path);
    match fault {
        Some(FaultKind::TokenExpiry) => return ApiError::new(401, "INVALID_TOKEN", "invalid oauth token", json!({})).into_response(),
        Some(FaultKind::Status(s)) => return status_fault_body(s).into_response(),
        Some(FaultKind::Reset) => {
            *reset = true;
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        Some(FaultKind::Malformed) => {
            let mut r = (StatusCode::OK, "<html><body>Gateway hiccup {\"data\": [").into_response();
            r.headers_mut().insert("content-type", HeaderValue::from_static("application/json;charset=UTF-8"));
            r.extensions_mut().insert(ZCode("MALFORMED".into()));
            return r;
        }
        Some(FaultKind::Slow(ms)) => tokio::time::sleep(Duration::from_millis(ms)).await,
        _ => {}
    }
    // The work is done first; the answer comes late, or never if the client
    // gives up meanwhile.
    let answer_late = match fault {
        Some(FaultKind::SlowReply(ms)) => Some(Duration::from_millis(ms)),
        _ => None,
    };
    if class.endpoint.starts_with("oauth") {
        return next.run(req).await;
    }
    if let Err(e) = check_auth(app, &req) {
        return e.into_response();
    }
    let Some(_slot) = acquire(app, class.sub) else {
        return ApiError::too_many("The concurrency limit of the user for the app is exceeded").into_response();
    };
    let now = app.now();
    let remaining = app.credits.lock().unwrap_or_else(|e| e.into_inner()).remaining(now);
    if remaining == 0 {
        // Zoho reports the remaining credits once half are used: here, none.
        let mut r = ApiError::too_many("API credits limit for the 24 hour period is exceeded").into_response();
        r.headers_mut().insert("X-API-CREDITS-REMAINING", HeaderValue::from_static("0"));
        return r;
    }
    if app.cfg.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(app.cfg.latency_ms)).await;
    }
    let mut resp = next.run(req).await;
    let st = resp.status().as_u16();
    if st < 500 && st != 429 && st != 401 {
        let credits = resp.extensions().get::<CreditOverride>().map(|c| c.0).unwrap_or(class.credits);
        let mut cr = app.credits.lock().unwrap_or_else(|e| e.into_inner());
        cr.charge(app.now(), class.endpoint, credits as u64);
        *charged = credits;
        let used = cr.used(app.now());
        if used * 2 > cr.daily_limit {
            let left = cr.daily_limit.saturating_sub(used);
            if let Ok(v) = HeaderValue::from_str(&left.to_string()) {
                resp.headers_mut().insert("X-API-CREDITS-REMAINING", v);
            }
        }
    }
    if let Some(d) = answer_late {
        tokio::time::sleep(d).await;
    }
    resp
}
