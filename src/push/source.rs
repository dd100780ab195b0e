//! The local table a push reads: its columns, its sync column and the
//! optional bookkeeping columns, from the catalogs.

use std::ffi::CStr;

use pgrx::pg_sys;
use pgrx::PgRelation;

use crate::error::ZohoFdwError;

#[derive(Debug, Clone)]
pub struct LocalColumn {
    pub attnum: i16,
    pub name: String,
    pub type_oid: pg_sys::Oid,
    pub typmod: i32,
    /// `format_type` of the column, for casts in generated SQL.
    pub type_name: String,
}

impl LocalColumn {
    pub fn quoted(&self) -> String {
        quote_ident(&self.name)
    }
}

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
}

pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

impl SourceTable {
    pub fn load(oid: pg_sys::Oid, sync_column: &str) -> Result<SourceTable, ZohoFdwError> {
        unsafe {
            if pg_sys::get_rel_name(oid).is_null() {
                return Err(ZohoFdwError::BadArgument { what: format!("no table has oid {}", u32::from(oid)), hint: None });
            }
            let rel = PgRelation::with_lock(oid, pg_sys::AccessShareLock as i32);
            let schema = CStr::from_ptr(pg_sys::get_namespace_name(pg_sys::get_rel_namespace(oid))).to_string_lossy().into_owned();
            let name = rel.name().to_string();
            let display = format!("{schema}.{name}");
            let kind = (*rel.rd_rel).relkind as u8;
            if kind != pg_sys::RELKIND_RELATION && kind != pg_sys::RELKIND_PARTITIONED_TABLE {
                return Err(ZohoFdwError::BadArgument {
                    what: format!("{display} is not a table: pending rows are read from, and marked in, a local table"),
                    hint: None,
                });
            }
            let mut columns = Vec::new();
            for (i, att) in rel.tuple_desc().iter().enumerate() {
                if att.is_dropped() {
                    continue;
                }
                let type_oid = att.type_oid().value();
                let type_name = CStr::from_ptr(pg_sys::format_type_with_typemod(type_oid, att.type_mod())).to_string_lossy().into_owned();
                columns.push(LocalColumn { attnum: (i + 1) as i16, name: att.name().to_string(), type_oid, typmod: att.type_mod(), type_name });
            }
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
            Ok(SourceTable {
                oid,
                sql_name: format!("{}.{}", quote_ident(&schema), quote_ident(&name)),
                display,
                zoho_id: find("zoho_id"),
                zoho_error,
                synced_at,
                sync,
                columns,
            })
        }
    }

    /// Columns whose values go to Zoho: all but the bookkeeping ones.
    pub fn data_columns(&self) -> Vec<&LocalColumn> {
        self.columns.iter().filter(|c| c.name != self.sync.name && !super::BOOKKEEPING.contains(&c.name.as_str())).collect()
    }
}
