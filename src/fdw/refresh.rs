//! `zoho_refresh_foreign_table(regclass)`: a foreign table brought up to
//! date with its module's fields as Zoho has them now. Fields added in Zoho
//! become columns (named and typed as IMPORT FOREIGN SCHEMA would); columns
//! whose field is gone are dropped; `zoho_type` and `read_only` follow
//! Zoho. What the user chose stays: column names, `api_name` options, and
//! column types (a type that no longer fits is reported, never altered).
//!
//! The DDL runs as the caller, so PostgreSQL's own ownership check applies;
//! a column other objects depend on is not dropped (RESTRICT's error).

use pgrx::prelude::*;
use zoho_api::metadata::FieldMeta;

use super::import::{pg_type, quote_literal, readable};
use super::table::{self, ColumnDef};
use crate::error::{raise, ZohoFdwError};
use crate::local::quote_ident;
use crate::runtime::block_on;
use crate::server;

type Change = (String, String, String, String);

#[pg_extern(
    volatile,
    sql = r#"
CREATE FUNCTION zoho_refresh_foreign_table(target regclass)
  RETURNS TABLE(action text, column_name text, field text, detail text)
  VOLATILE STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'zoho_refresh_foreign_table_wrapper';
COMMENT ON FUNCTION zoho_refresh_foreign_table(regclass) IS
  'Re-read a Zoho foreign table''s module metadata: add columns for new fields, drop those of removed fields, update zoho_type and read_only; reports each change';
"#
)]
fn zoho_refresh_foreign_table(target: pg_sys::Oid) -> TableIterator<'static, (name!(action, String), name!(column_name, String), name!(field, String), name!(detail, String))> {
    TableIterator::new(refresh(target).unwrap_or_else(|e| raise(e)))
}

fn refresh(oid: pg_sys::Oid) -> Result<Vec<Change>, ZohoFdwError> {
    let info = Spi::get_two_with_args::<String, bool>(
        "SELECT c.oid::regclass::text, pg_catalog.pg_has_role(current_user, c.relowner, 'USAGE')
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_foreign_table f ON f.ftrelid = c.oid
           JOIN pg_catalog.pg_foreign_server s ON s.oid = f.ftserver
           JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw AND w.fdwname = 'zoho_fdw'
          WHERE c.oid = $1",
        &[oid.into()],
    );
    let Ok((Some(name), Some(owner))) = info else {
        return Err(ZohoFdwError::WrongObject { what: format!("relation {} is not a foreign table of a zoho_fdw server", u32::from(oid)), hint: Some("IMPORT FOREIGN SCHEMA makes one per module.".into()) });
    };
    if !owner {
        return Err(ZohoFdwError::Denied { what: format!("must be owner of foreign table {name} to refresh it"), hint: Some("Run it as the table's owner, or a member of that role.".into()) });
    }
    // Held to the end of the transaction, so the table is not dropped or
    // altered under the catalog reads below. Self-conflicting, so two
    // refreshes of one table take turns; readers are not blocked until the
    // ALTERs. Taken only after the owner check: others may not lock it.
    // SAFETY: a plain lock request on an OID; it raises an ERROR on deadlock.
    unsafe { pg_sys::LockRelationOid(oid, pg_sys::ShareUpdateExclusiveLock as pg_sys::LOCKMODE) };
    if crate::privileges::rel_name(oid).is_none() {
        return Err(ZohoFdwError::WrongObject { what: format!("foreign table {name} was dropped while waiting to refresh it"), hint: None });
    }
    let def = table::load(oid)?;
    // SAFETY: `oid` is a foreign table (checked above), locked.
    let server_oid = unsafe { (*pg_sys::GetForeignTable(oid)).serverid };
    let ctx = server::resolve_oid(server_oid)?;
    let client = ctx.client()?;
    // Fresh, not the cache: the point is to see what changed.
    let fields = block_on(client.fields(&def.module)).map_err(|e| ZohoFdwError::api(&ctx.name, e))?;
    let plan = diff(&def.columns, &fields);
    for (sql, _) in &plan {
        if let Some(sql) = sql {
            Spi::run(&format!("ALTER FOREIGN TABLE {name} {sql}")).map_err(|e| ZohoFdwError::Internal(format!("refreshing {name}: {e}")))?;
        }
    }
    let changes: Vec<Change> = plan.into_iter().map(|(_, c)| c).collect();
    for (action, column, field, detail) in &changes {
        notice!("zoho_fdw: {name}: {action} {column} ({field}){}", if detail.is_empty() { String::new() } else { format!(": {detail}") });
    }
    Ok(changes)
}

fn matches(c: &ColumnDef, f: &FieldMeta) -> bool {
    c.api_name == f.api_name
}

fn find<'f>(fields: &'f [FieldMeta], c: &ColumnDef) -> Option<&'f FieldMeta> {
    fields.iter().find(|f| matches(c, f)).or_else(|| fields.iter().find(|f| f.api_name.eq_ignore_ascii_case(&c.api_name)))
}

/// The ALTER clauses (None: only reported) and the changes as reported.
fn diff(columns: &[ColumnDef], fields: &[FieldMeta]) -> Vec<(Option<String>, Change)> {
    let mut out = Vec::new();
    let change = |a: &str, c: &str, f: &str, d: String| (a.to_string(), c.to_string(), f.to_string(), d);
    for c in columns {
        let col = quote_ident(&c.name);
        let Some(f) = find(fields, c) else {
            out.push((Some(format!("DROP COLUMN {col}")), change("dropped", &c.name, &c.api_name, "the field is gone from Zoho".into())));
            continue;
        };
        let want_type = f.value_type().to_string();
        let mut opts = Vec::new();
        match &c.zoho_type {
            Some(t) if *t == want_type => {}
            Some(t) => opts.push((format!("SET zoho_type {}", quote_literal(&want_type)), format!("zoho_type {t} → {want_type}"))),
            None => opts.push((format!("ADD zoho_type {}", quote_literal(&want_type)), format!("zoho_type {want_type}"))),
        }
        if !f.writable() && !c.read_only {
            opts.push(("ADD read_only 'true'".into(), "read-only in Zoho now".into()));
        }
        if f.writable() && c.read_only && !matches!(f.api_name.as_str(), "id" | "Created_Time" | "Modified_Time" | "Created_By" | "Modified_By") {
            opts.push(("DROP read_only".into(), "writable in Zoho now".into()));
        }
        if !opts.is_empty() {
            let sql = format!("ALTER COLUMN {col} OPTIONS ({})", opts.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>().join(", "));
            let detail = opts.into_iter().map(|(_, d)| d).collect::<Vec<_>>().join("; ");
            out.push((Some(sql), change("updated", &c.name, &f.api_name, detail)));
        }
        let pg = pg_type(f);
        if !same_type(c, pg) {
            out.push((None, change("type_differs", &c.name, &f.api_name, format!("the column is {}, the field now maps to {pg}; the column was left as it is", type_name(c)))));
        }
    }
    for f in fields.iter().filter(|f| readable(f) && !columns.iter().any(|c| find(std::slice::from_ref(*f), c).is_some())) {
        let name = f.api_name.to_lowercase();
        if columns.iter().any(|c| c.name == name) {
            out.push((None, change("skipped", &name, &f.api_name, "a column of that name holds another field".into())));
            continue;
        }
        let read_only = if f.writable() { "" } else { ", read_only 'true'" };
        let sql = format!(
            "ADD COLUMN {} {} OPTIONS (api_name {}, zoho_type {}{read_only})",
            quote_ident(&name),
            pg_type(f),
            quote_literal(&f.api_name),
            quote_literal(f.value_type())
        );
        out.push((Some(sql), change("added", &name, &f.api_name, pg_type(f).to_string())));
    }
    out
}

fn type_name(c: &ColumnDef) -> String {
    // SAFETY: a type oid read from the catalog with its typmod.
    unsafe { std::ffi::CStr::from_ptr(pg_sys::format_type_with_typemod(pg_sys::Oid::from(c.type_oid), c.typmod)).to_string_lossy().into_owned() }
}

/// Whether the column's type is the one `pg` (a name from [`pg_type`]) names.
fn same_type(c: &ColumnDef, pg: &str) -> bool {
    let oid = match pg {
        "bigint" => pg_sys::INT8OID,
        "timestamptz" => pg_sys::TIMESTAMPTZOID,
        "date" => pg_sys::DATEOID,
        "numeric" => pg_sys::NUMERICOID,
        "boolean" => pg_sys::BOOLOID,
        "text[]" => pg_sys::TEXTARRAYOID,
        _ => pg_sys::TEXTOID,
    };
    pg_sys::Oid::from(c.type_oid) == oid
}
