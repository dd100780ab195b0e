//! [`ZohoClient`]: one org, one credential. The endpoint modules add their
//! methods to it in `impl ZohoClient` blocks of their own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use crate::error::Result;
use crate::http::{ClientConfig, Transport};
use crate::metadata::{FieldMeta, Org};
use crate::usage::Usage;
use crate::Credentials;

pub struct ZohoClient {
    pub(crate) t: Transport,
    org: OnceCell<Org>,
    fields: Mutex<HashMap<String, (Instant, Arc<Vec<FieldMeta>>)>>,
}

impl ZohoClient {
    pub fn new(config: ClientConfig, credentials: Credentials) -> Result<ZohoClient> {
        Ok(ZohoClient {
            t: Transport::new(config, credentials)?,
            org: OnceCell::new(),
            fields: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.t.config
    }

    pub fn usage(&self) -> &Usage {
        &self.t.usage
    }

    pub fn transport(&self) -> &Transport {
        &self.t
    }

    /// `/crm/v8/<rest>`
    pub(crate) fn path(&self, rest: &str) -> String {
        format!("/crm/{}/{}", self.t.config.api_version, rest.trim_start_matches('/'))
    }

    /// `/crm/bulk/v8/<rest>`
    pub(crate) fn bulk_path(&self, rest: &str) -> String {
        format!("/crm/bulk/{}/{}", self.t.config.api_version, rest.trim_start_matches('/'))
    }

    /// The org, fetched once.
    pub async fn org(&self) -> Result<&Org> {
        self.org
            .get_or_try_init(|| async {
                let org = self.fetch_org().await?;
                self.t.tokens().put_org_zgid(&org.zgid);
                Ok(org)
            })
            .await
    }

    /// The org's `zgid`, which every bulk-write upload names: kept in the
    /// token store, so only the first client of a credential (in any
    /// backend, when the store is shared) reads the org for it.
    pub async fn zgid(&self) -> Result<String> {
        if let Some(org) = self.org.get() {
            return Ok(org.zgid.clone());
        }
        if let Some(zgid) = self.t.tokens().org_zgid() {
            return Ok(zgid);
        }
        Ok(self.org().await?.zgid.clone())
    }

    /// A module's fields, fetched again only when the copy is older than
    /// `max_age`: a push every few minutes should not pay a metadata call
    /// each time, and fields change rarely.
    pub async fn fields_cached(&self, module: &str, max_age: Duration) -> Result<Arc<Vec<FieldMeta>>> {
        if let Some((at, f)) = self.fields.lock().unwrap().get(module) {
            if at.elapsed() < max_age {
                return Ok(f.clone());
            }
        }
        let f = Arc::new(self.fields(module).await?);
        self.fields.lock().unwrap().insert(module.to_string(), (Instant::now(), f.clone()));
        Ok(f)
    }
}
