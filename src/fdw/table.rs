//! A foreign table as the FDW sees it: its module, and for each column the
//! Zoho field it reads, the Zoho type (when IMPORT FOREIGN SCHEMA recorded
//! it) and the PostgreSQL type it converts to.

use std::collections::HashMap;
use std::ffi::CStr;

use pgrx::{pg_sys, PgList, PgRelation};
use serde::{Deserialize, Serialize};

use crate::error::ZohoFdwError;

/// How values of a column compare and render in COQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    Int,
    Decimal,
    Bool,
    Date,
    DateTime,
    Text,
    /// Arrays, JSON and anything else: fetched, never filtered remotely.
    Other,
}

impl Kind {
    pub fn of(type_oid: pg_sys::Oid) -> Kind {
        match type_oid {
            pg_sys::INT2OID | pg_sys::INT4OID | pg_sys::INT8OID => Kind::Int,
            pg_sys::NUMERICOID | pg_sys::FLOAT4OID | pg_sys::FLOAT8OID => Kind::Decimal,
            pg_sys::BOOLOID => Kind::Bool,
            pg_sys::DATEOID => Kind::Date,
            pg_sys::TIMESTAMPTZOID => Kind::DateTime,
            pg_sys::TEXTOID | pg_sys::VARCHAROID | pg_sys::BPCHAROID => Kind::Text,
            _ => Kind::Other,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ColumnDef {
    /// 1-based attribute number.
    pub attnum: i16,
    pub name: String,
    /// The Zoho field: the `api_name` option, else the column name.
    pub api_name: String,
    /// Zoho's `data_type` (`zoho_type` option), when known.
    pub zoho_type: Option<String>,
    /// The API cannot write it (`read_only` option, or a system field).
    pub read_only: bool,
    pub type_oid: u32,
    pub typmod: i32,
    pub kind: Kind,
}

impl ColumnDef {
    /// Zoho's own type, or the one a PostgreSQL type suggests.
    fn zoho_kind(&self) -> &str {
        self.zoho_type.as_deref().unwrap_or(match self.kind {
            Kind::Int | Kind::Decimal => "double",
            Kind::Bool => "boolean",
            Kind::Date => "date",
            Kind::DateTime => "datetime",
            Kind::Text => "text",
            Kind::Other => "other",
        })
    }

    /// Zoho's own types for which COQL comparisons are exact: numbers,
    /// dates and ids. Text compares case-insensitively, so only conditions
    /// whose Zoho result is a superset of PostgreSQL's may be pushed.
    pub fn exact(&self) -> bool {
        matches!(self.kind, Kind::Int | Kind::Decimal | Kind::Date | Kind::DateTime)
            && !matches!(self.zoho_kind(), "lookup" | "ownerlookup" | "userlookup" | "textarea" | "multiselectpicklist")
    }

    /// A picklist: text from a fixed set of values.
    pub fn is_picklist(&self) -> bool {
        self.zoho_kind() == "picklist"
    }

    pub fn is_lookup(&self) -> bool {
        matches!(self.zoho_kind(), "lookup" | "ownerlookup" | "userlookup")
    }

    /// COQL cannot filter on these at all.
    pub fn unfilterable(&self) -> bool {
        self.kind == Kind::Other || matches!(self.zoho_kind(), "textarea" | "multiselectpicklist" | "fileupload" | "imageupload" | "subform" | "multiselectlookup")
    }
}

/// Fields Zoho sets itself on every record.
const SYSTEM_FIELDS: &[&str] = &["id", "Created_Time", "Modified_Time", "Created_By", "Modified_By"];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableDef {
    /// `schema.table`, for messages.
    pub relation: String,
    pub module: String,
    pub columns: Vec<ColumnDef>,
    /// Ask Zoho for a count at plan time (`use_remote_estimate`, on the
    /// table or else its server).
    #[serde(default)]
    pub remote_estimate: bool,
}

impl TableDef {
    pub fn column(&self, attnum: i16) -> Option<&ColumnDef> {
        self.columns.iter().find(|c| c.attnum == attnum)
    }

    /// The column holding the record id (`api_name 'id'`).
    pub fn id_column(&self) -> Option<&ColumnDef> {
        self.columns.iter().find(|c| c.api_name == "id")
    }

    /// Puts Zoho's complaints about a query in this table's terms.
    pub fn explain_error(&self, server: &str, e: zoho_api::Error) -> ZohoFdwError {
        if e.zoho_code() == Some("INVALID_QUERY") {
            if let zoho_api::Error::Api { details, .. } = &e {
                // A known column named with another reason (a value, an
                // operator, a data type) is not a missing field: Zoho's own
                // words say more than a guess would.
                let reason = details.get("reason").and_then(|v| v.as_str());
                let unknown_column = reason.is_none_or(|r| r.contains("invalid column")) || e.to_string().contains("column given seems to be invalid");
                if let Some(field) = details.get("column_name").and_then(|v| v.as_str()).filter(|_| unknown_column) {
                    if let Some(col) = self.columns.iter().find(|c| c.api_name == field) {
                        return ZohoFdwError::UnknownField { module: self.module.clone(), field: field.into(), column: col.name.clone(), table: self.relation.clone() };
                    }
                }
                if details.get("reason").and_then(|v| v.as_str()).is_some_and(|r| r.contains("module")) {
                    return ZohoFdwError::UnknownModule { module: self.module.clone(), table: format!("foreign table {}", self.relation) };
                }
            }
        }
        ZohoFdwError::api(server, e)
    }
}

/// A catalog object's options, name → value.
///
/// # Safety
/// `list` is NIL or a List of DefElem nodes (a catalog object's options).
pub(crate) unsafe fn options_of(list: *mut pg_sys::List) -> HashMap<String, String> {
    // SAFETY: the caller's contract above; each DefElem's name is NUL-terminated
    // and defGetString returns a palloc'd string.
    unsafe {
        PgList::<pg_sys::DefElem>::from_pg(list)
            .iter_ptr()
            .map(|d| {
                (
                    CStr::from_ptr((*d).defname).to_string_lossy().into_owned(),
                    CStr::from_ptr(pg_sys::defGetString(d)).to_string_lossy().into_owned(),
                )
            })
            .collect()
    }
}

/// Reads a foreign table's module and columns from the catalogs.
pub fn load(table_oid: pg_sys::Oid) -> Result<TableDef, ZohoFdwError> {
    // SAFETY: GetForeignTable raises an ERROR unless `table_oid` is a foreign
    // table. Opening it with NoLock assumes the caller holds a lock on it, as the
    // planner, executor, ANALYZE and zoho_refresh_foreign_table do; the lock
    // also keeps its namespace, so get_namespace_name is non-null.
    unsafe {
        let ft = pg_sys::GetForeignTable(table_oid);
        let opts = options_of((*ft).options);
        let rel = PgRelation::with_lock(table_oid, pg_sys::NoLock as i32);
        let module = opts
            .get("module")
            .cloned()
            .ok_or_else(|| ZohoFdwError::Internal(format!("foreign table {} has no module option", rel.name())))?;
        let mut columns = Vec::new();
        for (i, att) in rel.tuple_desc().iter().enumerate() {
            if att.is_dropped() {
                continue;
            }
            let attnum = (i + 1) as i16;
            let copts = options_of(pg_sys::GetForeignColumnOptions(table_oid, attnum));
            let name = att.name().to_string();
            columns.push(ColumnDef {
                attnum,
                api_name: copts.get("api_name").cloned().unwrap_or_else(|| if name == "id" { "id".into() } else { name.clone() }),
                zoho_type: copts.get("zoho_type").cloned(),
                read_only: copts.get("read_only").is_some_and(|v| v == "true")
                    || SYSTEM_FIELDS.contains(&copts.get("api_name").map(String::as_str).unwrap_or(name.as_str())),
                name,
                type_oid: u32::from(att.type_oid().value()),
                typmod: att.type_mod(),
                kind: Kind::of(att.type_oid().value()),
            });
        }
        let schema = CStr::from_ptr(pg_sys::get_namespace_name(pg_sys::get_rel_namespace(table_oid))).to_string_lossy().into_owned();
        let server_opts = options_of((*pg_sys::GetForeignServer((*ft).serverid)).options);
        let remote_estimate = opts.get("use_remote_estimate").or(server_opts.get("use_remote_estimate")).is_some_and(|v| v == "true");
        Ok(TableDef { relation: format!("{schema}.{}", rel.name()), module, columns, remote_estimate })
    }
}
