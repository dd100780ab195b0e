//! Schema drift of a mirror kept by a scheduled pull or a channel
//! (`schema_changes` of zoho.pull_schedules and zoho.watches): every
//! `zoho_fdw.schema_check_interval` the module's readable fields are
//! compared with those the last check saw.
//! - A field added in Zoho becomes a column (`follow`: the type IMPORT
//!   FOREIGN SCHEMA would give it), then a backfill job reads just that
//!   field into the rows there are (one Bulk Read of id and the field).
//! - A field removed keeps its column, which stops being filled: a note in
//!   `zoho.health` and the server log say so.
//! - A type change the column cannot hold pauses the flow, with the reason
//!   in `zoho.sync_status`; nothing is dropped or truncated. A paused
//!   channel applies nothing until resumed; its catch-up then reads what
//!   changed meanwhile.
//!
//! `hold` pauses the flow on any change; `ignore` never looks. The DDL
//! runs as the flow's owner, who must own the table (ALTER TABLE's rule).

use std::collections::BTreeMap;

use pgrx::prelude::*;
use serde_json::Value;
use zoho_api::metadata::FieldMeta;

use super::{in_transaction, spi};
use crate::error::ZohoFdwError;
use crate::local::{quote_ident, LocalColumn, LocalTable};
use crate::privileges::{as_owner, Access, Limits};
use crate::server;

/// Field API name → the type its values have.
type Schema = BTreeMap<String, String>;

/// Which flow keeps the table.
#[derive(Clone, Copy)]
pub enum Of {
    Pull,
    /// A channel, by id.
    Watch(i64),
}

/// A flow whose module's fields are checked.
pub struct Flow<'a> {
    pub of: Of,
    pub target: pg_sys::Oid,
    pub module: &'a str,
    pub server: Option<&'a str>,
    pub owner: pg_sys::Oid,
    pub mapping: Option<&'a Value>,
    /// follow, hold or ignore.
    pub schema_changes: &'a str,
    /// The fields the last check saw, and whether a check is due.
    pub schema: Option<&'a Value>,
    pub schema_due: bool,
    pub filter: Option<&'a str>,
}

impl Flow<'_> {
    fn name(&self) -> &'static str {
        match self.of {
            Of::Pull => "pull",
            Of::Watch(_) => "channel",
        }
    }

    /// The call that lets the flow go on, once its owner has acted.
    fn resume(&self, table: &str) -> String {
        match self.of {
            Of::Pull => format!("zoho_pause_pull({}, false)", crate::fdw::import::quote_literal(table)),
            Of::Watch(id) => format!("zoho_resume_watch('{id}')"),
        }
    }
}

/// A job reading `fields` (added in Zoho) into the rows of `f`'s table.
fn enqueue_backfill(f: &Flow<'_>, fields: &[String]) -> Result<(), ZohoFdwError> {
    spi(Spi::run_with_args(
        "INSERT INTO zoho.job_queue (kind, module, target, mapping, server, owner, fields, filter)
         VALUES ('backfill', $1, $2::oid::regclass, $3, $4, $5::oid::regrole, $6, $7)",
        &[f.module.into(), f.target.into(), f.mapping.cloned().map(pgrx::JsonB).into(), f.server.into(), f.owner.into(), fields.to_vec().into(), f.filter.into()],
    ))
}

/// Checks `p`'s module when due; false when the flow is now paused. With
/// `client`, the fields are read through it (so that its cache, which the
/// flow's writes plan with, holds them); else through the owner's shared one.
pub fn check(p: &Flow<'_>, client: Option<&zoho_api::ZohoClient>) -> Result<bool, String> {
    if p.schema_changes == "ignore" || !p.schema_due {
        return Ok(true);
    }
    let shared;
    let (name, client) = match client {
        Some(c) => (p.server.unwrap_or_default().to_string(), c),
        None => {
            let (name, c) = in_transaction(|| {
                as_owner(p.owner, Some((p.target, Access::Mirror)), Limits::glance(), || {
                    let ctx = server::resolve(p.server)?;
                    Ok((ctx.name.clone(), ctx.shared_client()?))
                })
            })?;
            shared = c;
            (name, &*shared)
        }
    };
    let ttl = std::time::Duration::from_secs(crate::gucs::SCHEMA_CHECK_INTERVAL.get().max(1) as u64);
    let fields = crate::runtime::block_on(client.fields_cached(p.module, ttl)).map_err(|e| ZohoFdwError::api(&name, e).to_string())?;
    let now: Schema = fields.iter().filter(|f| crate::fdw::import::readable(f)).map(|f| (f.api_name.clone(), f.value_type().to_string())).collect();
    let notes = in_transaction(|| {
        let Some(before) = p.schema.and_then(|v| serde_json::from_value::<Schema>(v.clone()).ok()) else {
            return save(p, &now, None, None).map(|_| (true, Vec::new()));
        };
        if before == now {
            return save(p, &now, None, None).map(|_| (true, Vec::new()));
        }
        let outcome = as_owner(p.owner, Some((p.target, Access::Mirror)), Limits::from_gucs(), || follow(p, &fields, &before, &now))?;
        if !outcome.backfill.is_empty() {
            enqueue_backfill(p, &outcome.backfill)?;
        }
        let notes = (!outcome.notes.is_empty()).then(|| outcome.notes.join("; "));
        save(p, &now, notes.as_deref(), outcome.hold.as_deref())?;
        let mut lines = outcome.notes;
        lines.extend(outcome.hold.iter().map(|h| format!("paused: {h}")));
        Ok((outcome.hold.is_none(), lines))
    })?;
    let (go_on, lines) = notes;
    for line in &lines {
        log!("zoho_fdw worker: {} of {} into {}: {line}", p.name(), p.module, super::supervise::table_name(p.target));
    }
    Ok(go_on)
}

/// What a change of fields did.
#[derive(Default)]
struct Outcome {
    notes: Vec<String>,
    /// Fields to read into the columns just added.
    backfill: Vec<String>,
    /// Why the flow pauses.
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

fn follow(p: &Flow<'_>, fields: &[FieldMeta], before: &Schema, now: &Schema) -> Result<Outcome, ZohoFdwError> {
    let table = LocalTable::load(p.target, "a mirror is a local table")?;
    let mapping = p.mapping;
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
                "field {field} of {} changed type from {} to {ty}, which column {} ({}) cannot hold: ALTER the column to {pg}, then {}",
                p.module,
                before[field],
                c.name,
                c.type_name,
                p.resume(&table.display)
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
            "field(s) {} added in Zoho, and the {}'s owner does not own {} to add their columns: add them (or set schema_changes => 'ignore'), then {}",
            added.join(", "),
            p.name(),
            table.display,
            p.resume(&table.display)
        ));
        return Ok(out);
    }
    let two_way = spi(Spi::get_one_with_args::<bool>("SELECT EXISTS (SELECT FROM zoho.syncs WHERE target = $1::oid::regclass)", &[p.target.into()]))?.unwrap_or(false);
    for (field, _) in to_add {
        let Some(meta) = fields.iter().find(|f| f.api_name == field) else { continue };
        let name = field.to_lowercase();
        let pg = crate::fdw::import::pg_type(meta);
        spi(Spi::run(&format!("ALTER TABLE {} ADD COLUMN {} {pg}", table.sql_name, quote_ident(&name))))?;
        if two_way {
            // Until the backfill, the column is NULL here: a push would
            // clear the field in Zoho. It comes one way until zoho_sync runs
            // again (which plans the field both ways).
            spi(Spi::run_with_args(
                "UPDATE zoho.push_schedules SET mapping = coalesce(mapping, '{}') || jsonb_build_object($2::text, NULL) WHERE source = $1::oid::regclass",
                &[p.target.into(), name.as_str().into()],
            ))?;
            out.notes.push(format!("field {field} added in Zoho became column {name} ({pg}), filled from Zoho only until zoho_sync is run again"));
        } else {
            out.notes.push(format!("field {field} added in Zoho became column {name} ({pg})"));
        }
        out.backfill.push(field);
    }
    Ok(out)
}

/// Records what was seen, and pauses the flow when it must wait.
fn save(p: &Flow<'_>, now: &Schema, notes: Option<&str>, hold: Option<&str>) -> Result<(), ZohoFdwError> {
    let schema = pgrx::JsonB(serde_json::to_value(now).map_err(|e| ZohoFdwError::Internal(e.to_string()))?);
    match p.of {
        Of::Pull => spi(Spi::run_with_args(
            "UPDATE zoho.pull_schedules SET schema = $2, schema_checked = now(), schema_notes = coalesce($3, schema_notes),
                    paused = paused OR $4 IS NOT NULL, held_reason = coalesce($4, held_reason)
              WHERE target = $1::oid::regclass",
            &[p.target.into(), schema.into(), notes.into(), hold.into()],
        )),
        Of::Watch(id) => spi(Spi::run_with_args(
            "UPDATE zoho.watches SET schema = $2, schema_checked = now(), schema_notes = coalesce($3, schema_notes),
                    held_reason = coalesce($4, held_reason)
              WHERE channel_id = $1",
            &[id.into(), schema.into(), notes.into(), hold.into()],
        )),
    }
}
