//! The call log: one entry per API call (admin calls are not logged).

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CallRecord {
    pub seq: u64,
    pub method: String,
    pub path: String,
    pub query: String,
    /// e.g. `records.list`, `coql`, `bulk_read.create`, `oauth.token`.
    pub endpoint: String,
    pub status: u16,
    pub credits: u32,
    /// What the call costs when answered (a refused or failed call is
    /// charged nothing): for counting what retries would have cost.
    pub list_credits: u32,
    /// Zoho error code of the answer, if it was an error.
    pub code: Option<String>,
    /// The request body when it was JSON.
    pub request_body: Option<Value>,
    /// The request's `Content-Type` header, if any.
    pub request_content_type: Option<String>,
    /// The answer's `Content-Type` header, if any.
    pub response_content_type: Option<String>,
    /// The answer's body when it was JSON and no larger than
    /// [`crate::MAX_CAPTURED_BODY`]; only with `SimConfig::capture_bodies`.
    pub response_body: Option<Value>,
    pub duration_ms: u64,
    /// When the call arrived and when it was answered, in microseconds
    /// since the simulator started: which calls were in flight together.
    pub started_us: u64,
    pub ended_us: u64,
}

#[derive(Debug, Default)]
pub struct CallLog {
    pub seq: u64,
    pub calls: Vec<CallRecord>,
}
