//! The extension's one error type, and how each case reaches the user: a
//! SQLSTATE, a message naming the server/module/field, and a hint. Nothing
//! here ever formats a credential: zoho-api's errors carry none, and user
//! mapping options are only read, never echoed.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::PgSqlErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum ZohoFdwError {
    #[error("invalid option \"{name}\" for a {catalog}")]
    UnknownOption { catalog: &'static str, name: String, valid: String },
    #[error("{catalog} is missing option(s): {missing}")]
    MissingOption { catalog: &'static str, missing: String, required: String },
    #[error("invalid value for option \"{name}\" of a {catalog}: {why}")]
    BadOption { catalog: &'static str, name: String, why: String },
    #[error("{0}")]
    NoServer(String),
    #[error("server \"{server}\": {source}")]
    Api {
        server: String,
        #[source]
        source: zoho_api::Error,
    },
    #[error("{0}")]
    NotSupported(String),
    #[error("cannot read {what} from Zoho value {value:?}: {reason}")]
    Conversion { what: String, value: String, reason: String },
    #[error("{0}")]
    Planning(String),
    #[error("{}", if code.is_some() { format!("Zoho rejected row {row} of the {verb} on {table}: {what}") } else { format!("row {row} of the {verb} on {table} cannot be sent to Zoho: {what}") })]
    WriteRejected { verb: &'static str, table: String, row: usize, what: String, code: Option<String>, written: usize, ids: Vec<String> },
    #[error("Zoho has no module \"{module}\" ({table})")]
    UnknownModule { module: String, table: String },
    #[error("Zoho module {module} has no field \"{field}\" (column {column} of foreign table {table})")]
    UnknownField { module: String, field: String, column: String, table: String },
    #[error("table {table} has no column \"{column}\"")]
    NoColumn { table: String, column: String, hint: String },
    #[error("{what}")]
    BadArgument { what: String, hint: Option<String> },
    /// The acting role lacks a privilege, or does not own the flow.
    #[error("{what}")]
    Denied { what: String, hint: Option<String> },
    /// A view, a foreign table or another kind where a table must be.
    #[error("{what}")]
    WrongObject { what: String, hint: Option<String> },
    /// A local row that cannot go to Zoho as it is; nothing was sent.
    #[error("{table}: {what}")]
    BadRow { table: String, what: String },
    /// A value from Zoho that a local column cannot hold; nothing was written.
    #[error("{table}: {what}")]
    BadValue { table: String, what: String },
    #[error("{0}")]
    Internal(String),
}

impl ZohoFdwError {
    pub fn api(server: &str, source: zoho_api::Error) -> ZohoFdwError {
        ZohoFdwError::Api { server: server.to_string(), source }
    }

    fn code_and_hint(&self) -> (PgSqlErrorCode, Option<String>) {
        use PgSqlErrorCode::*;
        match self {
            ZohoFdwError::UnknownOption { valid, .. } => (ERRCODE_FDW_INVALID_OPTION_NAME, Some(format!("Valid options here: {valid}."))),
            ZohoFdwError::MissingOption { required, .. } => (ERRCODE_FDW_OPTION_NAME_NOT_FOUND, Some(format!("Required options here: {required}."))),
            ZohoFdwError::BadOption { .. } => (ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE, None),
            ZohoFdwError::NoServer(_) => (
                ERRCODE_UNDEFINED_OBJECT,
                Some("CREATE SERVER zoho FOREIGN DATA WRAPPER zoho_fdw OPTIONS (data_center 'us'), or pass the server's name.".into()),
            ),
            ZohoFdwError::NotSupported(_) => (ERRCODE_FEATURE_NOT_SUPPORTED, None),
            ZohoFdwError::Conversion { .. } => (
                ERRCODE_FDW_INVALID_DATA_TYPE,
                Some("Declare the column with a type that fits the Zoho field (IMPORT FOREIGN SCHEMA picks one), or as text.".into()),
            ),
            ZohoFdwError::Planning(_) => (ERRCODE_FDW_ERROR, None),
            ZohoFdwError::WriteRejected { code, .. } => match code.as_deref() {
                Some("MANDATORY_NOT_FOUND") => (ERRCODE_NOT_NULL_VIOLATION, Some("Give the field a value: Zoho requires it.".into())),
                Some("DUPLICATE_DATA") => (ERRCODE_UNIQUE_VIOLATION, Some("A record with this unique value exists already: update it instead.".into())),
                Some("INVALID_DATA") => (ERRCODE_DATA_EXCEPTION, Some("Check the value's type, length and format against the Zoho field.".into())),
                Some(_) => (ERRCODE_FDW_ERROR, None),
                None => (ERRCODE_INVALID_PARAMETER_VALUE, None),
            },
            ZohoFdwError::UnknownModule { .. } => (
                ERRCODE_UNDEFINED_TABLE,
                Some("Set the table's module option to the module's API name (e.g. Leads); IMPORT FOREIGN SCHEMA creates tables with the right names.".into()),
            ),
            ZohoFdwError::UnknownField { .. } => (
                ERRCODE_UNDEFINED_COLUMN,
                Some("Set the column's api_name option to the field's API name (they are case-sensitive), or re-run IMPORT FOREIGN SCHEMA.".into()),
            ),
            ZohoFdwError::NoColumn { hint, .. } => (ERRCODE_UNDEFINED_COLUMN, Some(hint.clone())),
            ZohoFdwError::BadArgument { hint, .. } => (ERRCODE_INVALID_PARAMETER_VALUE, hint.clone()),
            ZohoFdwError::Denied { hint, .. } => (ERRCODE_INSUFFICIENT_PRIVILEGE, hint.clone()),
            ZohoFdwError::WrongObject { hint, .. } => (ERRCODE_WRONG_OBJECT_TYPE, hint.clone()),
            ZohoFdwError::BadRow { .. } => (
                ERRCODE_DATA_EXCEPTION,
                Some("Fix the row (or map the column elsewhere with the mapping argument) and push again; nothing was sent and no row changed.".into()),
            ),
            ZohoFdwError::BadValue { .. } => (
                ERRCODE_DATA_EXCEPTION,
                Some("Give the column a type that fits the Zoho field (zoho_create_mirror picks one), or leave it out with the mapping argument; nothing was written.".into()),
            ),
            ZohoFdwError::Internal(_) => (ERRCODE_INTERNAL_ERROR, None),
            ZohoFdwError::Api { source, .. } => api_code_and_hint(source),
        }
    }
}

fn api_code_and_hint(e: &zoho_api::Error) -> (PgSqlErrorCode, Option<String>) {
    use zoho_api::Error as E;
    use PgSqlErrorCode::*;
    let hint = |s: &str| Some(s.to_string());
    match e {
        E::Auth { hint: h, .. } => (
            ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
            h.clone().or_else(|| hint("Check client_id, client_secret and refresh_token in the user mapping.")),
        ),
        E::RefreshRateLimited { .. } => (
            ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
            hint("Zoho allows 10 token refreshes per 10 minutes per refresh token; wait, and avoid sharing one refresh token between many servers."),
        ),
        E::Cancelled => (ERRCODE_QUERY_CANCELED, None),
        E::OutcomeUnknown { .. } => (
            ERRCODE_TRANSACTION_RESOLUTION_UNKNOWN,
            hint("Look in Zoho for what this call creates (the records, the job or the channel) before running it again: sending it twice would create it twice."),
        ),
        E::Timeout { .. } => (
            ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION,
            hint("Raise the server's timeout_ms option, or check the network path to Zoho."),
        ),
        E::Transport { .. } => (
            ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION,
            hint("Check the server's data_center or api_domain/accounts_url options and the network."),
        ),
        E::RetriesExhausted { last, .. } => {
            let (code, h) = api_code_and_hint(last);
            (code, h.or_else(|| hint("Zoho kept failing; try again later.")))
        }
        E::Api { status, code, .. } => match (status, code.as_str()) {
            (401, "OAUTH_SCOPE_MISMATCH") => (
                ERRCODE_INSUFFICIENT_PRIVILEGE,
                hint("The refresh token lacks a scope; generate it again with the scopes listed in the README."),
            ),
            (401, _) => (ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION, hint("Check the user mapping's credentials.")),
            (403, _) | (_, "NO_PERMISSION") => (ERRCODE_INSUFFICIENT_PRIVILEGE, hint("The Zoho user's profile lacks this permission.")),
            (429, _) => (
                ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
                hint("Zoho's concurrency limit or the org's daily API credits were exceeded; lower the server's max_concurrency, or wait."),
            ),
            (_, "INVALID_MODULE") => (ERRCODE_UNDEFINED_TABLE, hint("Check the module's API name in Zoho (Setup > Developer Space > APIs).")),
            (_, "INVALID_DATA" | "MANDATORY_NOT_FOUND" | "DUPLICATE_DATA") => (ERRCODE_DATA_EXCEPTION, None),
            _ => (ERRCODE_FDW_ERROR, None),
        },
        E::Malformed { .. } => (
            ERRCODE_FDW_INVALID_DATA_TYPE,
            hint("Zoho sent a body zoho_fdw cannot read (the message names the key); it was not retried, as the same answer would come back."),
        ),
        E::JobFailed { .. } => (ERRCODE_FDW_ERROR, None),
        E::InvalidInput(_) => (ERRCODE_INVALID_PARAMETER_VALUE, None),
        E::Io(_) | E::Csv(_) | E::Zip(_) => (ERRCODE_IO_ERROR, None),
    }
}

/// An SPI failure in the extension's own SQL (its catalog, its queries).
impl From<pgrx::spi::SpiError> for ZohoFdwError {
    fn from(e: pgrx::spi::SpiError) -> ZohoFdwError {
        ZohoFdwError::Internal(e.to_string())
    }
}

impl From<ZohoFdwError> for ErrorReport {
    fn from(e: ZohoFdwError) -> ErrorReport {
        let (code, hint) = e.code_and_hint();
        let detail = match &e {
            ZohoFdwError::WriteRejected { written: 0, .. } => Some("Nothing was written to Zoho by this statement.".to_string()),
            ZohoFdwError::WriteRejected { written, ids, .. } => Some(format!(
                "{written} row(s) this statement wrote to Zoho before the error stay written, as remote writes cannot be rolled back (ids {}{}).",
                ids.join(", "),
                if *written > ids.len() { ", …" } else { "" }
            )),
            ZohoFdwError::Api { source: zoho_api::Error::Api { details, .. }, .. } if !details.is_null() => {
                Some(format!("Zoho details: {details}"))
            }
            _ => None,
        };
        let mut report = ErrorReport::new(code, format!("zoho_fdw: {e}"), "");
        if let Some(d) = detail {
            report = report.set_detail(d);
        }
        if let Some(h) = hint {
            report = report.set_hint(h);
        }
        report
    }
}

/// Raises `e` as a PostgreSQL error. A cancel is turned into Postgres' own
/// cancel error (with its usual message) by letting it process interrupts.
pub fn raise(e: ZohoFdwError) -> ! {
    if matches!(&e, ZohoFdwError::Api { source: zoho_api::Error::Cancelled, .. }) {
        pgrx::check_for_interrupts!();
    }
    let report: ErrorReport = e.into();
    report.report(pgrx::PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}
