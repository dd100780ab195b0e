//! The local table a push reads: its columns, its sync column and the
//! optional bookkeeping columns, from the catalogs.

use pgrx::pg_sys;

pub use crate::local::LocalColumn;
use crate::local::{quote_ident, LocalTable};
use crate::error::ZohoFdwError;

pub struct SourceTable {
    pub oid: pg_sys::Oid,
    /// `schema.table` for messages.
    pub display: String,
    /// Quoted `"schema"."table"` for SQL.
    pub sql_name: String,
    pub columns: Vec<LocalColumn>,
    pub sync: LocalColumn,
    pub zoho_id: Option<LocalColumn>,
    pub zoho_error: Option<LocalColumn>,
    pub synced_at: Option<LocalColumn>,
    /// A two-way table's column of Zoho's `Modified_Time`.
    pub version: Option<LocalColumn>,
    /// The columns changed since the row last agreed with Zoho (`jsonb`).
    pub changed_fields: Option<LocalColumn>,
}

impl SourceTable {
    pub fn load(oid: pg_sys::Oid, sync_column: &str) -> Result<SourceTable, ZohoFdwError> {
        let LocalTable { oid, display, sql_name, columns } = LocalTable::load(oid, "pending rows are read from, and marked in, a local table")?;
        let find = |n: &str| columns.iter().find(|c| c.name == n).cloned();
        let sync = find(sync_column).ok_or_else(|| ZohoFdwError::NoColumn {
            table: display.clone(),
            column: sync_column.to_string(),
            hint: format!(
                "Add the sync column (ALTER TABLE {display} ADD COLUMN {} boolean NOT NULL DEFAULT false) and a zoho_mark_pending() trigger, or pass sync_column => '…'.",
                quote_ident(sync_column)
            ),
        })?;
        if sync.type_oid != pg_sys::BOOLOID {
            return Err(ZohoFdwError::BadArgument {
                what: format!("sync column \"{}\" of {display} is {}, not boolean", sync.name, sync.type_name),
                hint: Some("The sync column is a boolean: false while a row waits to be pushed.".into()),
            });
        }
        let zoho_error = find("zoho_error");
        if let Some(c) = &zoho_error {
            if !matches!(c.type_oid, pg_sys::TEXTOID | pg_sys::VARCHAROID) {
                return Err(ZohoFdwError::BadArgument { what: format!("column zoho_error of {display} is {}, not text", c.type_name), hint: None });
            }
        }
        let synced_at = find("zoho_synced_at");
        if let Some(c) = &synced_at {
            if !matches!(c.type_oid, pg_sys::TIMESTAMPTZOID | pg_sys::TIMESTAMPOID) {
                return Err(ZohoFdwError::BadArgument { what: format!("column zoho_synced_at of {display} is {}, not a timestamp", c.type_name), hint: None });
            }
        }
        let version = crate::sync::version_column(oid, &columns)?;
        Ok(SourceTable {
            version,
            changed_fields: find(super::CHANGED_FIELDS).filter(|c| c.type_oid == pg_sys::JSONBOID),
            oid,
            sql_name,
            display,
            zoho_id: find("zoho_id"),
            zoho_error,
            synced_at,
            sync,
            columns,
        })
    }

    /// Columns whose values go to Zoho: all but the bookkeeping ones.
    pub fn data_columns(&self) -> Vec<&LocalColumn> {
        self.columns.iter().filter(|c| c.name != self.sync.name && !super::BOOKKEEPING.contains(&c.name.as_str())).collect()
    }
}
