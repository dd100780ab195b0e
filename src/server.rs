//! From a server name to a ready [`ZohoClient`]: the server's options, the
//! current user's mapping, and the token store shared by this backend.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::time::Duration;

use pgrx::prelude::*;
use pgrx::{pg_sys, PgList};
use zoho_api::{ClientConfig, Credentials, ZohoClient};

use crate::error::ZohoFdwError;
use crate::options::{self, Catalog};

/// A server, its options, and the current user's mapping for it.
pub struct ServerContext {
    pub name: String,
    pub oid: pg_sys::Oid,
    pub options: HashMap<String, String>,
}

unsafe fn def_elems(list: *mut pg_sys::List) -> HashMap<String, String> {
    // SAFETY: callers pass a catalog object's options: NIL or a List of DefElem,
    // each with a NUL-terminated name; defGetString returns a palloc'd string.
    unsafe {
        PgList::<pg_sys::DefElem>::from_pg(list)
            .iter_ptr()
            .map(|d| {
                let name = CStr::from_ptr((*d).defname).to_string_lossy().into_owned();
                let value = CStr::from_ptr(pg_sys::defGetString(d)).to_string_lossy().into_owned();
                (name, value)
            })
            .collect()
    }
}

/// The named server, or the only zoho_fdw server when `name` is None.
pub fn resolve(name: Option<&str>) -> Result<ServerContext, ZohoFdwError> {
    let name = match name {
        Some(n) => n.to_string(),
        None => {
            let names: Vec<String> = Spi::connect(|client| {
                client
                    .select(
                        "SELECT s.srvname::text FROM pg_foreign_server s \
                         JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw \
                         WHERE w.fdwname = 'zoho_fdw' ORDER BY 1",
                        None,
                        &[],
                    )?
                    .map(|row| row.get::<String>(1).map(Option::unwrap_or_default))
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|e| ZohoFdwError::Internal(format!("cannot list zoho_fdw servers: {e}")))?;
            match names.as_slice() {
                [only] => only.clone(),
                [] => return Err(ZohoFdwError::NoServer("no zoho_fdw server exists".into())),
                many => {
                    return Err(ZohoFdwError::NoServer(format!(
                        "{} zoho_fdw servers exist ({}); name the one to use",
                        many.len(),
                        many.join(", ")
                    )))
                }
            }
        }
    };
    let cname = CString::new(name.clone()).map_err(|_| ZohoFdwError::NoServer("server name contains a NUL byte".into()))?;
    // SAFETY: `cname` is NUL-terminated; the server (checked non-null) and its
    // wrapper are palloc'd catalog copies with NUL-terminated names.
    unsafe {
        let server = pg_sys::GetForeignServerByName(cname.as_ptr(), true);
        if server.is_null() {
            return Err(ZohoFdwError::NoServer(format!("server \"{name}\" does not exist")));
        }
        let fdw = pg_sys::GetForeignDataWrapper((*server).fdwid);
        let fdw_name = CStr::from_ptr((*fdw).fdwname).to_string_lossy();
        if fdw_name != "zoho_fdw" {
            return Err(ZohoFdwError::NoServer(format!("server \"{name}\" belongs to {fdw_name}, not zoho_fdw")));
        }
        Ok(ServerContext { name, oid: (*server).serverid, options: def_elems((*server).options) })
    }
}

/// The server with this oid.
pub fn resolve_oid(oid: pg_sys::Oid) -> Result<ServerContext, ZohoFdwError> {
    // SAFETY: GetForeignServer raises an ERROR for an unknown oid, else returns
    // a palloc'd copy with a NUL-terminated name and its options list.
    unsafe {
        let server = pg_sys::GetForeignServer(oid);
        Ok(ServerContext {
            name: CStr::from_ptr((*server).servername).to_string_lossy().into_owned(),
            oid,
            options: def_elems((*server).options),
        })
    }
}

impl ServerContext {
    /// The current user's mapping (or PUBLIC's). Postgres raises its own
    /// error, naming server and user, when there is none.
    fn credentials(&self) -> Result<Credentials, ZohoFdwError> {
        // SAFETY: a plain read of the session's current user.
        self.credentials_of(unsafe { pg_sys::GetUserId() })
    }

    fn credentials_of(&self, user: pg_sys::Oid) -> Result<Credentials, ZohoFdwError> {
        crate::privileges::check_server_usage(self.oid, &self.name, user)?;
        // SAFETY: GetUserMapping raises an ERROR when neither `user` nor PUBLIC
        // has a mapping for the server, else returns one with its options list.
        let opts = unsafe {
            let um = pg_sys::GetUserMapping(user, self.oid);
            def_elems((*um).options)
        };
        options::validate(Catalog::UserMapping, &opts)?;
        Ok(Credentials::new(&opts["client_id"], &opts["client_secret"], &opts["refresh_token"]))
    }

    pub fn client(&self) -> Result<ZohoClient, ZohoFdwError> {
        let credentials = self.credentials()?;
        self.client_with(credentials)
    }

    /// This backend's long-lived client for the server and the current
    /// user's mapping: its org and field metadata stay cached between
    /// calls, so a push every few minutes pays no metadata calls. Any
    /// change to the server's or mapping's options makes a new one.
    pub fn shared_client(&self) -> Result<Rc<ZohoClient>, ZohoFdwError> {
        thread_local! {
            static CLIENTS: RefCell<HashMap<u64, Rc<ZohoClient>>> = RefCell::new(HashMap::new());
        }
        crate::privileges::check_server_usage(self.oid, &self.name, crate::privileges::current_user())?;
        // SAFETY: GetUserMapping raises an ERROR when neither the current user
        // nor PUBLIC has a mapping for the server, else returns one with its
        // options.
        let um = unsafe {
            let um = pg_sys::GetUserMapping(pg_sys::GetUserId(), self.oid);
            def_elems((*um).options)
        };
        let mut h = std::collections::hash_map::DefaultHasher::new();
        u32::from(self.oid).hash(&mut h);
        let mut all: Vec<_> = self.options.iter().map(|(k, v)| ("s", k, v)).chain(um.iter().map(|(k, v)| ("u", k, v))).collect();
        all.sort();
        all.hash(&mut h);
        let key = h.finish();
        if let Some(c) = CLIENTS.with(|m| m.borrow().get(&key).cloned()) {
            return Ok(c);
        }
        let client = Rc::new(self.client()?);
        CLIENTS.with(|m| m.borrow_mut().insert(key, client.clone()));
        Ok(client)
    }

    /// A module's fields (cached by the client for ten minutes). `context`
    /// says in the error what wanted them; an unknown module, or one with
    /// no fields, is an error naming it.
    pub fn module_fields(&self, client: &ZohoClient, module: &str, context: &str) -> Result<std::sync::Arc<Vec<zoho_api::metadata::FieldMeta>>, ZohoFdwError> {
        fields_of(client, &self.name, module, context)
    }
}

/// A module's fields, from the client's cache (10 minutes) or Zoho; needs
/// no transaction, so the worker reads them with none open.
pub fn fields_of(client: &ZohoClient, server: &str, module: &str, context: &str) -> Result<std::sync::Arc<Vec<zoho_api::metadata::FieldMeta>>, ZohoFdwError> {
    fields_within(client, server, module, context, Duration::from_secs(600))
}

/// [`fields_of`], read again from Zoho if the cache is older than `max_age`.
pub fn fields_within(client: &ZohoClient, server: &str, module: &str, context: &str, max_age: Duration) -> Result<std::sync::Arc<Vec<zoho_api::metadata::FieldMeta>>, ZohoFdwError> {
    let fields = crate::runtime::block_on(client.fields_cached(module, max_age)).map_err(|e| match e.zoho_code() {
        Some("INVALID_MODULE") => ZohoFdwError::UnknownModule { module: module.into(), table: context.into() },
        _ => ZohoFdwError::api(server, e),
    })?;
    if fields.is_empty() {
        return Err(ZohoFdwError::BadArgument { what: format!("module {module} has no fields the API can use"), hint: None });
    }
    Ok(fields)
}

impl ServerContext {

    /// A client with `user`'s mapping: the worker acts for the role that
    /// set a channel up.
    pub fn client_for(&self, user: pg_sys::Oid) -> Result<ZohoClient, ZohoFdwError> {
        self.client_with(self.credentials_of(user)?)
    }

    fn client_with(&self, credentials: Credentials) -> Result<ZohoClient, ZohoFdwError> {
        let (endpoints, trust_token_domain) = options::server_endpoints(&self.options)?;
        let mut config = ClientConfig::new(endpoints);
        config.prefer_token_api_domain = trust_token_domain;
        if let Some(v) = self.options.get("api_version") {
            config.api_version = v.clone();
        }
        if let Some(ms) = options::timeout_ms(&self.options) {
            config.request_timeout = Duration::from_millis(ms);
        }
        if let Some(n) = options::max_concurrency(&self.options) {
            config.max_concurrency = n as usize;
        }
        config.token_store = Some(crate::tokens::store());
        // One token per (server, user mapping credential).
        config.token_key = Some(format!("{}:{}", u32::from(self.oid), credentials.store_key(&config.endpoints)));
        config.cancel = zoho_api::Cancel::new(Some(crate::runtime::cancel_hook()));
        config.usage_sink = crate::usage::sink(&self.name);
        config.on_wait = Some(std::sync::Arc::new(crate::progress::waiting));
        config.job_callbacks = crate::job_callbacks::source();
        ZohoClient::new(config, credentials).map_err(|e| ZohoFdwError::api(&self.name, e))
    }
}
