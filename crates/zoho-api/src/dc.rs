//! Data centres and endpoint overrides (zoho-api.md §1).
//!
//! A DC is data, not a closed set of behaviours: the token response's
//! `api_domain` is authoritative, and every host can be overridden (the
//! simulator, a sandbox, or a DC this table does not know yet).

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataCenter {
    Us,
    Eu,
    In,
    Au,
    Jp,
    Ca,
    Cn,
    Sa,
}

/// Production, sandbox or developer org: same accounts server, other API host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Environment {
    #[default]
    Production,
    Sandbox,
    Developer,
}

impl DataCenter {
    pub const ALL: [DataCenter; 8] = [
        DataCenter::Us,
        DataCenter::Eu,
        DataCenter::In,
        DataCenter::Au,
        DataCenter::Jp,
        DataCenter::Ca,
        DataCenter::Cn,
        DataCenter::Sa,
    ];

    pub fn code(self) -> &'static str {
        match self {
            DataCenter::Us => "us",
            DataCenter::Eu => "eu",
            DataCenter::In => "in",
            DataCenter::Au => "au",
            DataCenter::Jp => "jp",
            DataCenter::Ca => "ca",
            DataCenter::Cn => "cn",
            DataCenter::Sa => "sa",
        }
    }

    /// The host suffix of `www.zohoapis.<tld>`.
    fn api_tld(self) -> &'static str {
        match self {
            DataCenter::Us => "com",
            DataCenter::Eu => "eu",
            DataCenter::In => "in",
            DataCenter::Au => "com.au",
            DataCenter::Jp => "jp",
            DataCenter::Ca => "ca",
            DataCenter::Cn => "com.cn",
            DataCenter::Sa => "sa",
        }
    }

    pub fn accounts_url(self) -> &'static str {
        match self {
            DataCenter::Us => "https://accounts.zoho.com",
            DataCenter::Eu => "https://accounts.zoho.eu",
            DataCenter::In => "https://accounts.zoho.in",
            DataCenter::Au => "https://accounts.zoho.com.au",
            DataCenter::Jp => "https://accounts.zoho.jp",
            DataCenter::Ca => "https://accounts.zohocloud.ca",
            DataCenter::Cn => "https://accounts.zoho.com.cn",
            DataCenter::Sa => "https://accounts.zoho.sa",
        }
    }

    /// Bulk-write upload host, per Zoho's SDK (zoho-api.md §1).
    pub fn upload_url(self) -> &'static str {
        match self {
            DataCenter::Ca => "https://upload.zohocloud.ca",
            DataCenter::Sa => "https://files.zoho.sa",
            _ => "",
        }
    }

    pub fn api_domain(self, env: Environment) -> String {
        let prefix = match env {
            Environment::Production => "www",
            Environment::Sandbox => "sandbox",
            Environment::Developer => "developer",
        };
        format!("https://{prefix}.zohoapis.{}", self.api_tld())
    }

    pub fn endpoints(self, env: Environment) -> Endpoints {
        let upload = match self.upload_url() {
            "" => format!("https://content.zohoapis.{}", self.api_tld()),
            fixed => fixed.to_string(),
        };
        Endpoints {
            api_domain: self.api_domain(env),
            accounts_url: self.accounts_url().to_string(),
            upload_url: upload,
        }
    }
}

impl FromStr for DataCenter {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let lower = s.trim().to_ascii_lowercase();
        DataCenter::ALL
            .into_iter()
            .find(|dc| dc.code() == lower)
            .ok_or_else(|| {
                Error::InvalidInput(format!(
                    "unknown Zoho data centre \"{s}\"; valid: {}",
                    DataCenter::ALL.map(|d| d.code()).join(", ")
                ))
            })
    }
}

impl fmt::Display for DataCenter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The three hosts a client talks to. No trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// `https://www.zohoapis.<tld>`: every CRM call.
    pub api_domain: String,
    /// `https://accounts.zoho.<tld>`: OAuth.
    pub accounts_url: String,
    /// Bulk-write file upload host.
    pub upload_url: String,
}

impl Endpoints {
    /// Explicit hosts, e.g. the simulator: `upload_url` defaults to `api_domain`.
    pub fn custom(api_domain: &str, accounts_url: &str, upload_url: Option<&str>) -> Result<Endpoints, Error> {
        let check = |what: &str, v: &str| -> Result<String, Error> {
            let parsed = url::Url::parse(v)
                .map_err(|e| Error::InvalidInput(format!("{what} \"{v}\" is not a URL: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(Error::InvalidInput(format!("{what} \"{v}\" must be an http(s) URL with a host")));
            }
            Ok(v.trim_end_matches('/').to_string())
        };
        let api_domain = check("api_domain", api_domain)?;
        Ok(Endpoints {
            accounts_url: check("accounts_url", accounts_url)?,
            upload_url: match upload_url {
                Some(u) => check("upload_url", u)?,
                None => api_domain.clone(),
            },
            api_domain,
        })
    }

    pub fn token_url(&self) -> String {
        format!("{}/oauth/v2/token", self.accounts_url)
    }

    /// Whether the access token may go to `url`: a host of these endpoints,
    /// or, for a Zoho data centre, one of its own API and download hosts
    /// (bulk-write results come from `download-accl.zoho.<tld>`). A link in
    /// a reply is data from the network; the token goes nowhere else.
    pub fn trusts(&self, url: &str) -> bool {
        let Ok(u) = url::Url::parse(url) else { return false };
        let same = |base: &str| url::Url::parse(base).is_ok_and(|b| b.scheme() == u.scheme() && b.host_str() == u.host_str() && b.port_or_known_default() == u.port_or_known_default());
        if same(&self.api_domain) || same(&self.upload_url) {
            return true;
        }
        let (Ok(api), Some(host)) = (url::Url::parse(&self.api_domain), u.host_str()) else { return false };
        let Some(tld) = api.host_str().and_then(|h| h.split_once(".zohoapis.")).map(|(_, t)| t.to_string()) else { return false };
        u.scheme() == "https"
            && [format!(".zohoapis.{tld}"), format!(".zoho.{tld}"), ".zohocloud.ca".to_string()]
                .iter()
                .any(|suffix| host.ends_with(suffix.as_str()) && (suffix != ".zohocloud.ca" || tld == "ca"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dc_has_www_api_host_and_its_accounts_server() {
        let expected = [
            ("us", "https://www.zohoapis.com", "https://accounts.zoho.com", "https://content.zohoapis.com"),
            ("eu", "https://www.zohoapis.eu", "https://accounts.zoho.eu", "https://content.zohoapis.eu"),
            ("in", "https://www.zohoapis.in", "https://accounts.zoho.in", "https://content.zohoapis.in"),
            ("au", "https://www.zohoapis.com.au", "https://accounts.zoho.com.au", "https://content.zohoapis.com.au"),
            ("jp", "https://www.zohoapis.jp", "https://accounts.zoho.jp", "https://content.zohoapis.jp"),
            ("ca", "https://www.zohoapis.ca", "https://accounts.zohocloud.ca", "https://upload.zohocloud.ca"),
            ("cn", "https://www.zohoapis.com.cn", "https://accounts.zoho.com.cn", "https://content.zohoapis.com.cn"),
            ("sa", "https://www.zohoapis.sa", "https://accounts.zoho.sa", "https://files.zoho.sa"),
        ];
        for (code, api, accounts, upload) in expected {
            let e = code.parse::<DataCenter>().unwrap().endpoints(Environment::Production);
            assert_eq!((e.api_domain.as_str(), e.accounts_url.as_str(), e.upload_url.as_str()), (api, accounts, upload), "{code}");
        }
        assert_eq!(DataCenter::ALL.len(), 8);
    }

    #[test]
    fn sandbox_and_developer_hosts() {
        assert_eq!(DataCenter::Eu.api_domain(Environment::Sandbox), "https://sandbox.zohoapis.eu");
        assert_eq!(DataCenter::Jp.api_domain(Environment::Developer), "https://developer.zohoapis.jp");
    }

    #[test]
    fn unknown_dc_lists_valid_ones() {
        let err = "uk".parse::<DataCenter>().unwrap_err().to_string();
        assert!(err.contains("us, eu, in, au, jp, ca, cn, sa"), "{err}");
        assert_eq!("EU".parse::<DataCenter>().unwrap(), DataCenter::Eu);
    }

    #[test]
    fn the_token_goes_to_the_data_centres_hosts_only() {
        let eu = DataCenter::Eu.endpoints(Environment::Production);
        assert!(eu.trusts("https://www.zohoapis.eu/crm/bulk/v8/read/1/result"));
        assert!(eu.trusts("https://download-accl.zoho.eu/v2/crm/org1/bulk-write/1/1.zip"));
        assert!(eu.trusts("https://content.zohoapis.eu/crm/v8/upload"));
        assert!(!eu.trusts("https://download-accl.zoho.com/v2/crm/org1/bulk-write/1/1.zip"), "another data centre");
        assert!(!eu.trusts("https://evil.example/zoho.eu"));
        assert!(!eu.trusts("https://www.zohoapis.eu.evil.example/x"));
        assert!(!eu.trusts("http://download-accl.zoho.eu/x"), "not over plain HTTP");
        let ca = DataCenter::Ca.endpoints(Environment::Production);
        assert!(ca.trusts("https://download.zohocloud.ca/x") && !eu.trusts("https://download.zohocloud.ca/x"));
        let sim = Endpoints::custom("http://127.0.0.1:8089", "http://127.0.0.1:8089", None).unwrap();
        assert!(sim.trusts("http://127.0.0.1:8089/v8/crm/1/bulk-write/1/1.zip"));
        assert!(!sim.trusts("http://127.0.0.1:8090/x"), "another port");
    }

    #[test]
    fn custom_endpoints_validate_and_default_upload() {
        let e = Endpoints::custom("http://127.0.0.1:8089/", "http://127.0.0.1:8089", None).unwrap();
        assert_eq!(e.upload_url, "http://127.0.0.1:8089");
        assert_eq!(e.token_url(), "http://127.0.0.1:8089/oauth/v2/token");
        assert!(Endpoints::custom("ftp://x", "http://a", None).is_err());
        assert!(Endpoints::custom("not a url", "http://a", None).is_err());
    }
}
