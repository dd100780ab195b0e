//! The foreign-data wrapper: handler and validator, registered through
//! supabase-wrappers. Scans and writes land with the foreign-table work
//! (issue 3); until then a scan says so plainly instead of returning nothing.

use std::collections::HashMap;

use pgrx::pg_sys;
use supabase_wrappers::prelude::*;

use crate::error::ZohoFdwError;
use crate::options::{self, Catalog};

#[wrappers_fdw(
    version = "0.1.0",
    author = "zoho_fdw developers",
    website = "https://github.com/zoho-fdw/zoho_fdw",
    error_type = "ZohoFdwError"
)]
pub struct ZohoFdw {
    server: String,
}

fn catalog_of(oid: Option<pg_sys::Oid>) -> Catalog {
    match oid {
        Some(o) if o == FOREIGN_SERVER_RELATION_ID => Catalog::Server,
        Some(o) if o == pg_sys::UserMappingRelationId => Catalog::UserMapping,
        Some(o) if o == FOREIGN_TABLE_RELATION_ID => Catalog::Table,
        Some(o) if o == pg_sys::AttributeRelationId => Catalog::Column,
        _ => Catalog::Wrapper,
    }
}

impl ForeignDataWrapper<ZohoFdwError> for ZohoFdw {
    fn new(server: ForeignServer) -> Result<Self, ZohoFdwError> {
        Ok(ZohoFdw { server: server.server_name })
    }

    fn begin_scan(&mut self, _quals: &[Qual], _columns: &[Column], _sorts: &[Sort], _limit: &Option<Limit>, options: &HashMap<String, String>) -> Result<(), ZohoFdwError> {
        Err(ZohoFdwError::NotSupported(format!(
            "reading foreign table (module {}) through server \"{}\" is not available in this version of zoho_fdw",
            options.get("module").map(String::as_str).unwrap_or("?"),
            self.server
        )))
    }

    fn iter_scan(&mut self, _row: &mut Row) -> Result<Option<()>, ZohoFdwError> {
        Ok(None)
    }

    fn end_scan(&mut self) -> Result<(), ZohoFdwError> {
        Ok(())
    }

    fn validator(opts: Vec<Option<String>>, catalog: Option<pg_sys::Oid>) -> Result<(), ZohoFdwError> {
        let pairs = options::parse_pairs(opts.into_iter().flatten());
        options::validate(catalog_of(catalog), &pairs)
    }
}
