//! The one error type of zoho-api. It keeps Zoho's own codes and never holds
//! a secret: request URLs carry no credentials (tokens travel in headers and
//! form bodies), and transport errors are rendered without their URL.

use std::time::Duration;

use serde_json::Value;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Zoho answered with its error envelope `{code, details, message, status}`.
    #[error("Zoho {endpoint} failed with {code} (HTTP {status}): {message}")]
    Api {
        endpoint: String,
        status: u16,
        code: String,
        message: String,
        details: Value,
    },
    /// The accounts server refused to mint a token (`{"error": …}`, often on HTTP 200).
    #[error("Zoho OAuth refused the credentials: {code}")]
    Auth { code: String, hint: Option<String> },
    /// Zoho allows 10 token refreshes per 10 minutes per refresh token.
    #[error("Zoho token refresh budget exhausted (10 per 10 minutes); next refresh possible in {}s", retry_after.as_secs())]
    RefreshRateLimited { retry_after: Duration },
    #[error("Zoho {endpoint} timed out after {}ms", after.as_millis())]
    Timeout { endpoint: String, after: Duration },
    #[error("Zoho request cancelled")]
    Cancelled,
    #[error("cannot reach Zoho {endpoint}: {reason}")]
    Transport {
        endpoint: String,
        reason: String,
        /// The connection was never made: nothing reached Zoho.
        unsent: bool,
    },
    /// A call that creates something failed after the request may have
    /// reached Zoho; sending it again could create it twice.
    #[error("Zoho {endpoint} may or may not have been applied ({reason}); it was not sent again")]
    OutcomeUnknown { endpoint: String, reason: String },
    #[error("unexpected response from Zoho {endpoint}: {reason}")]
    Malformed { endpoint: String, reason: String },
    #[error("Zoho {endpoint} still failing after {attempts} attempts: {last}")]
    RetriesExhausted {
        endpoint: String,
        attempts: u32,
        last: Box<Error>,
    },
    #[error("Zoho bulk {kind} job {job_id} failed: {message}")]
    JobFailed {
        kind: &'static str,
        job_id: String,
        message: String,
    },
    /// The caller asked for something the API cannot express.
    #[error("{0}")]
    InvalidInput(String),
    #[error("local file error: {0}")]
    Io(#[from] std::io::Error),
    #[error("CSV error: {0}")]
    Csv(#[from] csv::Error),
    #[error("zip error: {0}")]
    Zip(#[from] zip::result::ZipError),
}

impl Error {
    /// Zoho's code (`INVALID_TOKEN`, `DUPLICATE_DATA`, …) when Zoho gave one.
    pub fn zoho_code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } | Error::Auth { code, .. } => Some(code),
            Error::RetriesExhausted { last, .. } => last.zoho_code(),
            _ => None,
        }
    }

    pub fn http_status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            Error::RetriesExhausted { last, .. } => last.http_status(),
            _ => None,
        }
    }

    /// Worth another attempt after a pause: throttling, server errors,
    /// dropped connections and timeouts. Not a body that does not parse:
    /// Zoho sends the same bytes again.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Api { status, .. } => *status == 429 || *status >= 500,
            Error::Transport { .. } | Error::Timeout { .. } => true,
            _ => false,
        }
    }

    /// Whether the request may have reached Zoho before this error: a
    /// timeout, a dropped connection or a server error may follow a write
    /// Zoho applied; a refused connection or a 429 did not.
    pub fn may_have_reached_zoho(&self) -> bool {
        match self {
            Error::Transport { unsent, .. } => !unsent,
            Error::Timeout { .. } => true,
            Error::Api { status, .. } => *status >= 500,
            _ => false,
        }
    }

    pub(crate) fn transport(endpoint: &str, err: reqwest::Error) -> Error {
        let timeout = err.is_timeout();
        let unsent = err.is_connect();
        // Display of reqwest errors names the URL; drop it to keep messages short.
        let err = err.without_url();
        let mut reason = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            reason.push_str(": ");
            reason.push_str(&s.to_string());
            source = s.source();
        }
        if timeout {
            reason.push_str(" (timed out)");
        }
        Error::Transport {
            endpoint: endpoint.to_string(),
            reason,
            unsent,
        }
    }

    pub(crate) fn malformed(endpoint: &str, reason: impl Into<String>) -> Error {
        Error::Malformed {
            endpoint: endpoint.to_string(),
            reason: reason.into(),
        }
    }
}
