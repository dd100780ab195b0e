//! Two-way tables: one table is a push source and a pull target at once
//! (`zoho_sync`). Four things keep the two sides from undoing each other:
//! - [`origin`]: rows written from Zoho are not marked pending, so nothing
//!   received is sent back;
//! - the mappings [`plan`] derives: the push never sends a field Zoho owns,
//!   the pull never writes a field the table owns;
//! - [`resolve`]: a row Zoho changed while it was pending here is a
//!   conflict, settled field by field by the table's rules and logged in
//!   `zoho.conflicts`; the notification of a push's own write (Zoho's
//!   `Modified_Time` no later than the push) is an echo, not a change;
//! - [`deletes`]: a row deleted here deletes its record in Zoho, when the
//!   table says so, and a row deleted because Zoho did is not sent back.

pub mod deletes;
pub mod origin;
mod plan;
pub mod resolve;

use pgrx::prelude::*;
use zoho_api::conflict::Rules;

use crate::error::ZohoFdwError;
use crate::local::{LocalColumn, LocalTable};

extension_sql_file!("../../sql/sync.sql", name = "sync_catalog", requires = ["schedule_catalog", "jobs_catalog", sync_plan, "record_delete_trigger"]);

/// A two-way table's rules and the bookkeeping columns they read.
#[derive(Clone)]
pub struct TwoWay {
    pub rules: Rules,
    pub key_field: String,
    /// The pull's mapping, which every write from Zoho into the table uses.
    pub pull_mapping: serde_json::Value,
    pub sync: LocalColumn,
    /// When a row was last pushed: a notification no newer is the push's own.
    pub synced_at: LocalColumn,
    /// When a row last changed here (newest_wins).
    pub changed_at: Option<LocalColumn>,
    /// Which columns changed here since the row last agreed with Zoho, and
    /// their values then: a field changed on one side only is no conflict.
    pub changed_fields: Option<LocalColumn>,
    /// both, from_zoho, flag or none: whether Zoho's deletes remove rows,
    /// or flag them in `deleted_at`.
    pub deletes: String,
    pub deleted_at: Option<LocalColumn>,
}

impl TwoWay {
    /// Whether a record Zoho deleted takes its row with it.
    pub fn takes_zoho_deletes(&self) -> bool {
        self.deletes != "none"
    }

    /// The column that flags rows whose records Zoho deleted (or that left
    /// the filter), when the table keeps them.
    pub fn flags(&self) -> Option<&LocalColumn> {
        self.deleted_at.as_ref().filter(|_| self.deletes == "flag")
    }
}

/// The columns a two-way table needs besides its data.
pub(crate) fn bookkeeping(table: &LocalTable, sync_column: &str, rules: &Rules) -> Result<TwoWay, ZohoFdwError> {
    let column = |name: &str, type_oid: pg_sys::Oid, ddl: &str| -> Result<LocalColumn, ZohoFdwError> {
        match table.column(name) {
            Some(c) if c.type_oid == type_oid => Ok(c.clone()),
            Some(c) => Err(ZohoFdwError::BadArgument { what: format!("column {name} of {} is {}, not {ddl}", table.display, c.type_name), hint: None }),
            None => Err(ZohoFdwError::BadArgument {
                what: format!("{} has no column {name}, which a two-way table needs", table.display),
                hint: Some(format!("ALTER TABLE {} ADD COLUMN {} {ddl}", table.display, crate::local::quote_ident(name))),
            }),
        }
    };
    let sync = column(sync_column, pg_sys::BOOLOID, "boolean NOT NULL DEFAULT false")?;
    let synced_at = column("zoho_synced_at", pg_sys::TIMESTAMPTZOID, "timestamptz")?;
    let changed_at = if rules.needs_change_time() {
        Some(column(crate::push::CHANGED_AT, pg_sys::TIMESTAMPTZOID, "timestamptz").map_err(|e| match e {
            ZohoFdwError::BadArgument { what, hint } => ZohoFdwError::BadArgument { what: format!("{what} (newest_wins compares it with Modified_Time)"), hint },
            e => e,
        })?)
    } else {
        table.column(crate::push::CHANGED_AT).filter(|c| c.type_oid == pg_sys::TIMESTAMPTZOID).cloned()
    };
    let changed_fields = match table.column(crate::push::CHANGED_FIELDS) {
        Some(_) => Some(column(crate::push::CHANGED_FIELDS, pg_sys::JSONBOID, "jsonb")?),
        None => None,
    };
    let deleted_at = match table.column(crate::push::DELETED_AT) {
        Some(_) => Some(column(crate::push::DELETED_AT, pg_sys::TIMESTAMPTZOID, "timestamptz")?),
        None => None,
    };
    Ok(TwoWay { rules: rules.clone(), key_field: String::new(), pull_mapping: serde_json::Value::Null, sync, synced_at, changed_at, changed_fields, deletes: "from_zoho".into(), deleted_at })
}

/// The rules of `table` if it is synced both ways (as the current user,
/// who sees them when they may write the table).
pub(crate) fn two_way(table: &LocalTable) -> Result<Option<TwoWay>, ZohoFdwError> {
    type Row = (String, Option<pgrx::JsonB>, String, String, Option<pgrx::JsonB>, String);
    let row = Spi::connect(|spi| -> Result<Option<Row>, pgrx::spi::SpiError> {
        let rows = spi.select("SELECT policy, fields, sync_column::text, key_field, pull_mapping, deletes FROM zoho.syncs WHERE target = $1", None, &[table.oid.into()])?;
        let Some(r) = rows.into_iter().next() else { return Ok(None) };
        Ok(Some((r.get(1)?.unwrap_or_default(), r.get(2)?, r.get(3)?.unwrap_or_default(), r.get(4)?.unwrap_or_default(), r.get(5)?, r.get(6)?.unwrap_or_default())))
    })
    .map_err(|e| ZohoFdwError::Internal(format!("reading the sync rules of {}: {e}", table.display)))?;
    let Some((policy, fields, sync_column, key_field, pull_mapping, deletes)) = row else { return Ok(None) };
    let rules = Rules::parse(&policy, fields.as_ref().map(|j| &j.0)).map_err(|e| ZohoFdwError::BadArgument { what: format!("the sync rules of {}: {e}", table.display), hint: None })?;
    let mut two = bookkeeping(table, &sync_column, &rules)?;
    two.key_field = key_field;
    two.pull_mapping = pull_mapping.map(|j| j.0).unwrap_or_default();
    two.deletes = deletes;
    Ok(Some(two))
}

/// The column of a two-way table that holds Zoho's `Modified_Time` (None
/// for any other table): the push writes into it the version Zoho gave
/// its write.
pub(crate) fn version_column(oid: pg_sys::Oid, columns: &[LocalColumn]) -> Result<Option<LocalColumn>, ZohoFdwError> {
    let mapping = Spi::get_one_with_args::<pgrx::JsonB>("SELECT (SELECT pull_mapping FROM zoho.syncs WHERE target = $1)", &[oid.into()])
        .map_err(|e| ZohoFdwError::Internal(format!("reading the sync rules of table {}: {e}", u32::from(oid))))?;
    let Some(pgrx::JsonB(mapping)) = mapping else { return Ok(None) };
    let holds = |c: &LocalColumn| match mapping.get(&c.name) {
        Some(serde_json::Value::String(f)) => f.eq_ignore_ascii_case("Modified_Time"),
        Some(_) => false,
        None => c.name.eq_ignore_ascii_case("Modified_Time"),
    };
    Ok(columns.iter().find(|c| c.type_oid == pg_sys::TIMESTAMPTZOID && holds(c)).cloned())
}
