//! The options each catalog object accepts (DESIGN.md, "The SQL surface"),
//! and their checks. The validator and the code that builds a client both
//! read them from here, so the two cannot disagree.

use std::collections::HashMap;

use zoho_api::{DataCenter, Endpoints};

use crate::error::ZohoFdwError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Catalog {
    Wrapper,
    Server,
    UserMapping,
    Table,
    Column,
}

impl Catalog {
    pub fn describe(self) -> &'static str {
        match self {
            Catalog::Wrapper => "foreign-data wrapper",
            Catalog::Server => "server",
            Catalog::UserMapping => "user mapping",
            Catalog::Table => "foreign table",
            Catalog::Column => "foreign table column",
        }
    }

    /// Every option this object accepts.
    pub fn valid(self) -> &'static [&'static str] {
        match self {
            Catalog::Wrapper => &[],
            Catalog::Server => &["data_center", "api_domain", "accounts_url", "upload_url", "api_version", "timeout_ms", "max_concurrency", "daily_credit_budget", "use_remote_estimate"],
            Catalog::UserMapping => &["client_id", "client_secret", "refresh_token"],
            Catalog::Table => &["module", "use_remote_estimate"],
            Catalog::Column => &["api_name", "zoho_type", "read_only"],
        }
    }

    pub fn required(self) -> &'static [&'static str] {
        match self {
            Catalog::UserMapping => &["client_id", "client_secret", "refresh_token"],
            Catalog::Table => &["module"],
            _ => &[],
        }
    }
}

/// Splits PostgreSQL's `name=value` option strings.
pub fn parse_pairs(raw: impl IntoIterator<Item = String>) -> HashMap<String, String> {
    raw.into_iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (s, String::new()),
        })
        .collect()
}

/// Checks names, required options and values of one catalog object.
pub fn validate(catalog: Catalog, opts: &HashMap<String, String>) -> Result<(), ZohoFdwError> {
    let valid = catalog.valid();
    let mut names: Vec<&String> = opts.keys().collect();
    names.sort();
    for name in names {
        if !valid.contains(&name.as_str()) {
            return Err(ZohoFdwError::UnknownOption {
                catalog: catalog.describe(),
                name: name.clone(),
                valid: if valid.is_empty() { "none".into() } else { valid.join(", ") },
            });
        }
    }
    let missing: Vec<&str> = catalog.required().iter().copied().filter(|r| !opts.contains_key(*r)).collect();
    if !missing.is_empty() {
        return Err(ZohoFdwError::MissingOption {
            catalog: catalog.describe(),
            missing: missing.join(", "),
            required: catalog.required().join(", "),
        });
    }
    for (name, value) in opts {
        if value.trim().is_empty() {
            return Err(bad(catalog, name, "must not be empty"));
        }
    }
    if let Some(v) = opts.get("use_remote_estimate") {
        if v != "true" && v != "false" {
            return Err(bad(catalog, "use_remote_estimate", "must be true or false"));
        }
    }
    match catalog {
        Catalog::Server => {
            server_endpoints(opts)?;
            if let Some(v) = opts.get("api_version") {
                if !v.starts_with('v') || v[1..].parse::<f32>().is_err() {
                    return Err(bad(catalog, "api_version", "must look like v8"));
                }
            }
            positive(opts, "timeout_ms", 100, 3_600_000)?;
            positive(opts, "max_concurrency", 1, 25)?;
            positive(opts, "daily_credit_budget", 1, 1_000_000_000)?;
        }
        Catalog::Table => {
            let m = &opts["module"];
            if !m.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(bad(catalog, "module", "must be a Zoho module API name such as Leads or Orders"));
            }
        }
        Catalog::Column => {
            if let Some(v) = opts.get("read_only") {
                if v != "true" && v != "false" {
                    return Err(bad(catalog, "read_only", "must be true or false"));
                }
            }
            if let Some(f) = opts.get("api_name") {
                if !f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '$') {
                    return Err(bad(catalog, "api_name", "must be a Zoho field API name such as Last_Name"));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn bad(catalog: Catalog, name: &str, why: &str) -> ZohoFdwError {
    ZohoFdwError::BadOption { catalog: catalog.describe(), name: name.to_string(), why: why.to_string() }
}

fn positive(opts: &HashMap<String, String>, name: &str, min: u64, max: u64) -> Result<Option<u64>, ZohoFdwError> {
    let Some(v) = opts.get(name) else { return Ok(None) };
    match v.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(bad(Catalog::Server, name, &format!("must be a whole number from {min} to {max}"))),
    }
}

/// The hosts a server names: `data_center` (default `us`), or explicit
/// `api_domain` + `accounts_url` (+ `upload_url`). Returns whether the
/// token's `api_domain` should be trusted (only for a real data centre).
pub fn server_endpoints(opts: &HashMap<String, String>) -> Result<(Endpoints, bool), ZohoFdwError> {
    let explicit = ["api_domain", "accounts_url", "upload_url"].iter().any(|k| opts.contains_key(*k));
    if explicit {
        if opts.contains_key("data_center") {
            return Err(bad(Catalog::Server, "data_center", "cannot be combined with api_domain/accounts_url/upload_url"));
        }
        let (Some(api), Some(accounts)) = (opts.get("api_domain"), opts.get("accounts_url")) else {
            let missing = if opts.contains_key("api_domain") { "accounts_url" } else { "api_domain" };
            return Err(ZohoFdwError::MissingOption {
                catalog: Catalog::Server.describe(),
                missing: missing.into(),
                required: "api_domain and accounts_url, when either of them or upload_url is set".into(),
            });
        };
        let e = Endpoints::custom(api, accounts, opts.get("upload_url").map(String::as_str))
            .map_err(|e| bad(Catalog::Server, "api_domain", &e.to_string()))?;
        return Ok((e, false));
    }
    let dc: DataCenter = opts
        .get("data_center")
        .map(|s| s.parse())
        .transpose()
        .map_err(|e: zoho_api::Error| bad(Catalog::Server, "data_center", &e.to_string()))?
        .unwrap_or(DataCenter::Us);
    Ok((dc.endpoints(zoho_api::Environment::Production), true))
}

pub fn timeout_ms(opts: &HashMap<String, String>) -> Option<u64> {
    positive(opts, "timeout_ms", 100, 3_600_000).ok().flatten()
}

pub fn max_concurrency(opts: &HashMap<String, String>) -> Option<u64> {
    positive(opts, "max_concurrency", 1, 25).ok().flatten()
}
