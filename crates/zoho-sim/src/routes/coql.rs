//! `POST /crm/v8/coql` (zoho-api.md §6), over the engine in `crate::coql`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Map, Value};

use crate::coql;
use crate::errors::{json_response, no_content, ApiError, ApiResult, CreditOverride};
use crate::state::{user_by_id, App};
use crate::write;

fn coql_error(e: &coql::CoqlError) -> ApiError {
    ApiError { status: StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST), body: e.to_json() }
}

pub async fn query(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let is_json = headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("json"));
    if !is_json {
        return Err(ApiError::new(415, "MEDIA_TYPE_NOT_SUPPORTED", "The Content-Type header must be application/json", json!({})));
    }
    let v: Value = serde_json::from_slice(&body).map_err(|_| ApiError::invalid_data("invalid data", json!({"param": "body"})))?;
    let Some(select) = v.get("select_query").and_then(|s| s.as_str()) else {
        return Err(ApiError::bad("REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", json!({"param": "select_query"})));
    };
    let q = coql::parse(select).map_err(|e| coql_error(&e))?;
    let catalog = app.catalog();
    let m = coql::resolve_module(&q, &catalog).map_err(|e| coql_error(&e))?;
    let mut st = app.st();
    write::refresh_formulas(&app, &mut st, m.api_name);
    let empty = Default::default();
    let rows: Vec<&Map<String, Value>> = st.store.get(m.api_name).map(|s| &s.records).unwrap_or(&empty).values().collect();
    let lookup = |module: &str, id: &str| -> Option<Map<String, Value>> {
        if module.eq_ignore_ascii_case("users") {
            return user_by_id(id).map(|u| u.as_record());
        }
        let id: i64 = id.parse().ok()?;
        st.store.get(module)?.records.get(&id).cloned()
    };
    let out = coql::execute(&q, m, &rows, &lookup).map_err(|e| coql_error(&e))?;
    let credits = coql::credits_for_limit(q.limit);
    let mut resp = if out.rows.is_empty() {
        no_content()
    } else {
        let n = out.rows.len();
        json_response(StatusCode::OK, &json!({"data": out.rows, "info": {"count": n, "more_records": out.more_records}}))
    };
    resp.extensions_mut().insert(CreditOverride(credits));
    Ok(resp)
}
