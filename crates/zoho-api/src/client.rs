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

    /// The org, fetched once: bulk-write uploads need its `zgid`.
    pub async fn org(&self) -> Result<&Org> {
        self.org.get_or_try_init(|| self.fetch_org()).await
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
