//! IMPORT FOREIGN SCHEMA: one foreign table per module the API can read,
//! named and typed from Zoho's live metadata (DESIGN.md's type mapping).

use std::collections::HashSet;
use std::ffi::{CStr, CString};

use pgrx::prelude::*;
use pgrx::{pg_sys, PgList};
use zoho_api::metadata::FieldMeta;

use crate::error::{raise, ZohoFdwError};
use crate::runtime::block_on;
use crate::server;

/// Field types a list or COQL read never returns.
const UNREADABLE_TYPES: &[&str] = &["fileupload", "imageupload", "multiselectlookup", "multiuserlookup", "subform"];

/// Whether a list, COQL or Bulk Read call returns the field at all.
pub fn readable(field: &FieldMeta) -> bool {
    !UNREADABLE_TYPES.contains(&field.data_type.as_str()) && !field.virtual_field
}

/// The PostgreSQL type for a field (formulas by their return type).
pub fn pg_type(field: &FieldMeta) -> &'static str {
    if field.api_name == "id" {
        return "bigint";
    }
    match field.value_type() {
        "bigint" | "lookup" | "ownerlookup" | "userlookup" | "integer" => "bigint",
        "datetime" => "timestamptz",
        "date" => "date",
        "currency" | "double" | "decimal" | "percent" => "numeric",
        "boolean" => "boolean",
        "multiselectpicklist" => "text[]",
        _ => "text",
    }
}

fn quote_ident(s: &str) -> String {
    let c = CString::new(s).expect("identifier without NUL");
    // SAFETY: `c` is NUL-terminated and outlives the call; quote_identifier
    // returns it or a palloc'd quoted copy, read before `c` is dropped.
    unsafe { CStr::from_ptr(pg_sys::quote_identifier(c.as_ptr())).to_string_lossy().into_owned() }
}

pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The CREATE FOREIGN TABLE statement for one module.
pub fn create_table(schema: &str, server: &str, module: &str, fields: &[FieldMeta]) -> (String, Vec<String>) {
    let mut seen = HashSet::new();
    let mut skipped = Vec::new();
    let mut cols = Vec::new();
    // `id` first: it is the key every other operation uses.
    let mut ordered: Vec<&FieldMeta> = fields.iter().filter(|f| f.api_name == "id").collect();
    ordered.extend(fields.iter().filter(|f| f.api_name != "id"));
    for f in ordered {
        let name = f.api_name.to_lowercase();
        if !readable(f) {
            skipped.push(format!("{} ({})", f.api_name, f.data_type));
            continue;
        }
        if !seen.insert(name.clone()) {
            skipped.push(format!("{} (name clash with another field)", f.api_name));
            continue;
        }
        cols.push(format!(
            "  {} {} OPTIONS (api_name {}, zoho_type {}{})",
            quote_ident(&name),
            pg_type(f),
            quote_literal(&f.api_name),
            quote_literal(f.value_type()),
            if f.writable() { "" } else { ", read_only 'true'" }
        ));
    }
    let sql = format!(
        "CREATE FOREIGN TABLE {}.{} (\n{}\n) SERVER {} OPTIONS (module {})",
        quote_ident(schema),
        quote_ident(&module.to_lowercase()),
        cols.join(",\n"),
        quote_ident(server),
        quote_literal(module)
    );
    (sql, skipped)
}

/// # Safety
/// PostgreSQL's ImportForeignSchema: a valid statement, for one of our servers.
#[pg_guard]
pub unsafe extern "C-unwind" fn import_foreign_schema(stmt: *mut pg_sys::ImportForeignSchemaStmt, server_oid: pg_sys::Oid) -> *mut pg_sys::List {
    // SAFETY: the contract above: local_schema and each RangeVar's relname are
    // NUL-terminated; the commands are palloc'd in the current memory context.
    unsafe {
        let ctx = server::resolve_oid(server_oid).unwrap_or_else(|e| raise(e));
        let client = ctx.client().unwrap_or_else(|e| raise(e));
        let schema = CStr::from_ptr((*stmt).local_schema).to_string_lossy().into_owned();
        let listed: Vec<String> = PgList::<pg_sys::RangeVar>::from_pg((*stmt).table_list)
            .iter_ptr()
            .map(|rv| CStr::from_ptr((*rv).relname).to_string_lossy().into_owned())
            .collect();
        let list_type = (*stmt).list_type;
        let wanted = |table: &str| match list_type {
            pg_sys::ImportForeignSchemaType::FDW_IMPORT_SCHEMA_LIMIT_TO => listed.iter().any(|l| l == table),
            pg_sys::ImportForeignSchemaType::FDW_IMPORT_SCHEMA_EXCEPT => !listed.iter().any(|l| l == table),
            _ => true,
        };
        let modules = block_on(client.modules()).unwrap_or_else(|e| raise(ZohoFdwError::api(&ctx.name, e)));
        let mut commands = PgList::<std::ffi::c_char>::new();
        let mut found = HashSet::new();
        for m in &modules {
            let table = m.api_name.to_lowercase();
            if !wanted(&table) {
                continue;
            }
            found.insert(table.clone());
            if let Some(reason) = m.unreadable_reason() {
                if list_type != pg_sys::ImportForeignSchemaType::FDW_IMPORT_SCHEMA_ALL || m.api_supported {
                    notice!("zoho_fdw: skipping module {}: {}", m.api_name, reason);
                }
                continue;
            }
            let fields = block_on(client.fields(&m.api_name)).unwrap_or_else(|e| raise(ZohoFdwError::api(&ctx.name, e)));
            if fields.is_empty() {
                notice!("zoho_fdw: skipping module {}: Zoho lists no fields this user can read", m.api_name);
                continue;
            }
            let (sql, skipped) = create_table(&schema, &ctx.name, &m.api_name, &fields);
            if !skipped.is_empty() {
                notice!("zoho_fdw: {}: not imported, as list reads cannot return them: {}", m.api_name, skipped.join(", "));
            }
            let c = CString::new(sql).expect("no NUL in generated SQL");
            commands.push(pg_sys::pstrdup(c.as_ptr()));
        }
        if list_type == pg_sys::ImportForeignSchemaType::FDW_IMPORT_SCHEMA_LIMIT_TO {
            for l in listed.iter().filter(|l| !found.contains(*l)) {
                notice!("zoho_fdw: no Zoho module is named {l} (LIMIT TO uses lower-case API names, e.g. leads)");
            }
        }
        commands.into_pg()
    }
}
