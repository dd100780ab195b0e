//! Schema drift of a scheduled pull (zoho.pull_schedules.schema_changes):
//! every `zoho_fdw.schema_check_interval` the module's readable fields are
//! compared with those the last check saw.
//! - A field added in Zoho becomes a column (`follow`: the type IMPORT
//!   FOREIGN SCHEMA would give it), then a backfill job reads just that
//!   field into the rows there are (one Bulk Read of id and the field).
//! - A field removed keeps its column, which stops being filled: a note in
//!   `zoho.health` and the server log say so.
//! - A type change the column cannot hold pauses the pull, with the reason
//!   in `zoho.sync_status`; nothing is dropped or truncated.
//!
//! `hold` pauses the pull on any change; `ignore` never looks. The DDL
//! runs as the flow's owner, who must own the table (ALTER TABLE's rule).

use std::collections::BTreeMap;

use pgrx::prelude::*;
use serde_json::Value;
use zoho_api::metadata::FieldMeta;

use super::pulls::Pull;
use super::{in_transaction, spi};
use crate::error::ZohoFdwError;
use crate::local::{quote_ident, LocalColumn, LocalTable};
use crate::privileges::{as_owner, Access, Limits};
use crate::server;

/// Field API name → the type its values have.
type Schema = BTreeMap<String, String>;

/// Checks `p`'s module when due; false when the pull is now paused.
pub fn check(p: &Pull) -> Result<bool, String> {
    if p.schema_changes == "ignore" || !p.schema_due {
        return Ok(true);
    }
    let (name, client) = in_transaction(|| {
        as_owner(p.owner, Some((p.target, Access::Mirror)), Limits::glance(), || {
            let ctx = server::resolve(p.server.as_deref())?;
            Ok((ctx.name.clone(), ctx.shared_client()?))
        })
    })?;
    let ttl = std::time::Duration::from_secs(crate::gucs::SCHEMA_CHECK_INTERVAL.get().max(1) as u64);
    let fields = crate::runtime::block_on(client.fields_cached(&p.module, ttl)).map_err(|e| ZohoFdwError::api(&name, e).to_string())?;
    let now: Schema = fields.iter().filter(|f| crate::fdw::import::readable(f)).map(|f| (f.api_name.clone(), f.value_type().to_string())).collect();
    let notes = in_transaction(|| {
        let Some(before) = p.schema.as_ref().and_then(|v| serde_json::from_value::<Schema>(v.clone()).ok()) else {
            return save(p, &now, None, None).map(|_| (true, Vec::new()));
        };
        if before == now {
            return save(p, &now, None, None).map(|_| (true, Vec::new()));
        }
        let outcome = as_owner(p.owner, Some((p.target, Access::Mirror)), Limits::from_gucs(), || follow(p, &fields, &before, &now))?;
        if !outcome.backfill.is_empty() {
            super::pulls::enqueue_backfill(p, &outcome.backfill)?;
        }
        let notes = (!outcome.notes.is_empty()).then(|| outcome.notes.join("; "));
        save(p, &now, notes.as_deref(), outcome.hold.as_deref())?;
        let mut lines = outcome.notes;
        lines.extend(outcome.hold.iter().map(|h| format!("paused: {h}")));
        Ok((outcome.hold.is_none(), lines))
    })?;
    let (go_on, lines) = notes;
    for line in &lines {
        log!("zoho_fdw worker: pull of {} into {}: {line}", p.module, super::supervise::table_name(p.target));
    }
    Ok(go_on)
}

/// What a change of fields did.
#[derive(Default)]
struct Outcome {
    notes: Vec<String>,
    /// Fields to read into the columns just added.
    backfill: Vec<String>,
    /// Why the pull pauses.
    hold: Option<String>,
}

/// The column that holds `field`: named in the mapping, else by its name.
fn column_of<'t>(table: &'t LocalTable, mapping: Option<&Value>, field: &str) -> Option<&'t LocalColumn> {
    let mapped = |c: &LocalColumn| mapping.and_then(|m| m.get(&c.name));
    table.columns.iter().find(|c| matches!(mapped(c), Some(Value::String(f)) if f.eq_ignore_ascii_case(field))).or_else(|| {
        table.columns.iter().find(|c| mapped(c).is_none() && c.name.eq_ignore_ascii_case(field))
    })
}

/// Whether a column of this type holds values of a field of `pg` type
/// (a name from [`crate::fdw::import::pg_type`]).
fn holds(c: &LocalColumn, pg: &str) -> bool {
    match c.type_oid {
        pg_sys::TEXTOID | pg_sys::VARCHAROID | pg_sys::BPCHAROID | pg_sys::JSONOID | pg_sys::JSONBOID => true,
        pg_sys::NUMERICOID | pg_sys::FLOAT8OID => matches!(pg, "numeric" | "bigint"),
        pg_sys::INT8OID => pg == "bigint",
        pg_sys::TIMESTAMPTZOID | pg_sys::TIMESTAMPOID => pg == "timestamptz",
        pg_sys::DATEOID => pg == "date",
        pg_sys::BOOLOID => pg == "boolean",
        pg_sys::TEXTARRAYOID | pg_sys::VARCHARARRAYOID => pg == "text[]",
        _ => false,
    }
}

fn follow(p: &Pull, fields: &[FieldMeta], before: &Schema, now: &Schema) -> Result<Outcome, ZohoFdwError> {
    let table = LocalTable::load(p.target, "a pull writes into a local table")?;
    let mapping = p.mapping.as_ref();
    let mut out = Outcome::default();
    let mut holds_back = Vec::new();
    let mut to_add = Vec::new();
    for (field, ty) in now.iter().filter(|(f, _)| !before.contains_key(*f)) {
        match column_of(&table, mapping, field) {
            // A column was waiting for it (or mapped away): filled from now on.
            Some(c) => out.notes.push(format!("field {field} added in Zoho fills column {}", c.name)),
            None => to_add.push((field.clone(), ty.clone())),
        }
    }
    for field in before.keys().filter(|f| !now.contains_key(*f)) {
        if let Some(c) = column_of(&table, mapping, field) {
            out.notes.push(format!("field {field} was removed in Zoho: column {} keeps its values and is no longer filled", c.name));
        }
    }
    for (field, ty) in now.iter().filter(|(f, t)| before.get(*f).is_some_and(|old| old != *t)) {
        let Some(c) = column_of(&table, mapping, field) else { continue };
        let Some(meta) = fields.iter().find(|f| &f.api_name == field) else { continue };
        let pg = crate::fdw::import::pg_type(meta);
        if holds(c, pg) {
            out.notes.push(format!("field {field} changed type from {} to {ty}; column {} ({}) still holds it", before[field], c.name, c.type_name));
        } else {
            holds_back.push(format!(
                "field {field} of {} changed type from {} to {ty}, which column {} ({}) cannot hold: ALTER the column to {pg}, then zoho_pause_pull({}, false)",
                p.module, before[field], c.name, c.type_name, crate::fdw::import::quote_literal(&table.display)
            ));
        }
    }
    if p.schema_changes == "hold" {
        let mut changes: Vec<String> = to_add.iter().map(|(f, _)| format!("field {f} added")).collect();
        changes.extend(holds_back);
        changes.extend(out.notes.drain(..));
        out.hold = Some(format!("fields of {} changed in Zoho (schema_changes => hold): {}", p.module, changes.join("; ")));
        return Ok(out);
    }
    if !holds_back.is_empty() {
        out.hold = Some(holds_back.join("; "));
        return Ok(out);
    }
    if to_add.is_empty() {
        return Ok(out);
    }
    // ALTER TABLE is the owner's (checked here, so that a flow whose owner
    // only writes the table waits with a reason rather than failing).
    let owns = spi(Spi::get_one_with_args::<bool>("SELECT pg_catalog.pg_has_role(current_user, relowner, 'USAGE') FROM pg_catalog.pg_class WHERE oid = $1", &[p.target.into()]))?.unwrap_or(false);
    if !owns {
        let added: Vec<&str> = to_add.iter().map(|(f, _)| f.as_str()).collect();
        out.hold = Some(format!(
            "field(s) {} added in Zoho, and the pull's owner does not own {} to add their columns: add them (or set schema_changes => 'ignore'), then zoho_pause_pull({}, false)",
            added.join(", "),
            table.display,
            crate::fdw::import::quote_literal(&table.display)
        ));
        return Ok(out);
    }
    for (field, _) in to_add {
        let Some(meta) = fields.iter().find(|f| f.api_name == field) else { continue };
        let name = field.to_lowercase();
        let pg = crate::fdw::import::pg_type(meta);
        spi(Spi::run(&format!("ALTER TABLE {} ADD COLUMN {} {pg}", table.sql_name, quote_ident(&name))))?;
        out.notes.push(format!("field {field} added in Zoho became column {name} ({pg})"));
        out.backfill.push(field);
    }
    Ok(out)
}

/// Records what was seen, and pauses the pull when it must wait.
fn save(p: &Pull, now: &Schema, notes: Option<&str>, hold: Option<&str>) -> Result<(), ZohoFdwError> {
    let schema = serde_json::to_value(now).map_err(|e| ZohoFdwError::Internal(e.to_string()))?;
    spi(Spi::run_with_args(
        "UPDATE zoho.pull_schedules SET schema = $2, schema_checked = now(), schema_notes = coalesce($3, schema_notes),
                paused = paused OR $4 IS NOT NULL, held_reason = coalesce($4, held_reason)
          WHERE target = $1::oid::regclass",
        &[p.target.into(), pgrx::JsonB(schema).into(), notes.into(), hold.into()],
    ))
}
