//! Zoho's error bodies: the top-level `{code,details,message,status:"error"}`
//! object (OAS `API_Exception`) and the per-record result objects of writes.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// The Zoho error code of a response, attached as a response extension so
/// that the call log can record it without re-reading the body.
#[derive(Debug, Clone)]
pub struct ZCode(pub String);

/// Credits a handler wants charged instead of the endpoint's default
/// (e.g. COQL, whose cost depends on the parsed LIMIT).
#[derive(Debug, Clone, Copy)]
pub struct CreditOverride(pub u32);

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: Value,
}

impl ApiError {
    pub fn new(status: u16, code: &str, message: &str, details: Value) -> Self {
        ApiError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            body: error_obj(code, message, details),
        }
    }
    pub fn bad(code: &str, message: &str, details: Value) -> Self {
        Self::new(400, code, message, details)
    }
    pub fn invalid_module(module: &str) -> Self {
        let _ = module;
        Self::bad("INVALID_MODULE", "The module name given seems to be invalid", json!({}))
    }
    pub fn required_param(param: &str) -> Self {
        Self::bad("REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", json!({"param": param}))
    }
    pub fn invalid_data(message: &str, details: Value) -> Self {
        Self::bad("INVALID_DATA", message, details)
    }
    pub fn too_many(message: &str) -> Self {
        Self::new(429, "TOO_MANY_REQUESTS", message, json!({}))
    }
    pub fn code(&self) -> Option<String> {
        self.body.get("code").and_then(|c| c.as_str()).map(String::from)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        let mut resp = json_response(self.status, &self.body);
        if let Some(c) = code {
            resp.extensions_mut().insert(ZCode(c));
        }
        resp
    }
}

pub type ApiResult = Result<Response, ApiError>;

/// `{code, details, message, status:"error"}`.
pub fn error_obj(code: &str, message: &str, details: Value) -> Value {
    json!({"code": code, "details": details, "message": message, "status": "error"})
}

/// `{code:"SUCCESS", details, message, status:"success"}`.
pub fn success_obj(message: &str, details: Value) -> Value {
    json!({"code": "SUCCESS", "details": details, "message": message, "status": "success"})
}

pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = (status, bytes).into_response();
    resp.headers_mut().insert("content-type", HeaderValue::from_static("application/json;charset=UTF-8"));
    resp
}

pub fn ok_json(body: &Value) -> Response {
    json_response(StatusCode::OK, body)
}

/// 204 with an empty body, as Zoho answers "nothing".
pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}
