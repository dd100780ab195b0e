//! A local table as the push and the export see it: its name for messages
//! and for SQL, and its columns with their types.

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
    /// Equal values have equal text: the column has no collation, or a
    /// deterministic one (a case-insensitive ICU one is not).
    pub deterministic: bool,
}

impl LocalColumn {
    pub fn quoted(&self) -> String {
        quote_ident(&self.name)
    }
}

pub struct LocalTable {
    pub oid: pg_sys::Oid,
    /// `schema.table` for messages.
    pub display: String,
    /// Quoted `"schema"."table"` for SQL.
    pub sql_name: String,
    pub columns: Vec<LocalColumn>,
}

pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

impl LocalTable {
    /// Reads a plain or partitioned table's columns; `role` says in the
    /// error what the table was wanted for.
    pub fn load(oid: pg_sys::Oid, role: &str) -> Result<LocalTable, ZohoFdwError> {
        // SAFETY: catalog lookups on an oid checked to name a relation, which
        // is then held open with a lock for as long as its descriptor is read.
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
                return Err(ZohoFdwError::BadArgument { what: format!("{display} is not a table: {role}"), hint: None });
            }
            let mut columns = Vec::new();
            for (i, att) in rel.tuple_desc().iter().enumerate() {
                if att.is_dropped() {
                    continue;
                }
                let type_oid = att.type_oid().value();
                let type_name = CStr::from_ptr(pg_sys::format_type_with_typemod(type_oid, att.type_mod())).to_string_lossy().into_owned();
                let deterministic = att.attcollation == pg_sys::InvalidOid || pg_sys::get_collation_isdeterministic(att.attcollation);
                columns.push(LocalColumn { attnum: (i + 1) as i16, name: att.name().to_string(), type_oid, typmod: att.type_mod(), type_name, deterministic });
            }
            Ok(LocalTable { oid, sql_name: format!("{}.{}", quote_ident(&schema), quote_ident(&name)), display, columns })
        }
    }

    pub fn column(&self, name: &str) -> Option<&LocalColumn> {
        self.columns.iter().find(|c| c.name == name)
    }
}
