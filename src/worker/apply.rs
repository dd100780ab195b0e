//! Writing Zoho records into a watched table, newer `Modified_Time` winning,
//! and deleting rows Zoho deleted. Shared by notifications and catch-ups.
//! An equal `Modified_Time` with other values is applied too: Zoho's has
//! one-second resolution, so a second edit within the same second looks no
//! newer. The same version again, or an older one, changes nothing. Rows
//! written here are not marked pending ([`crate::sync::origin`]); a two-way
//! table's go through [`crate::sync::resolve`].

use pgrx::prelude::*;
use serde_json::{Map, Value};
use zoho_api::Record;

use crate::error::ZohoFdwError;
use crate::export::Target;
use crate::sync::origin::{from_zoho, FromZoho};

fn spi_err(e: pgrx::spi::SpiError) -> ZohoFdwError {
    ZohoFdwError::Internal(format!("applying changes: {e}"))
}

/// A record as a row keyed by local column names: lookups by their id,
/// everything else as the API sent it (PostgreSQL's JSON → row conversion
/// reads numbers, booleans, ISO dates and arrays itself).
fn row(target: &Target, rec: &Record) -> Value {
    let mut out = Map::new();
    for (col, field) in &target.columns {
        let v = match rec.get(&field.api_name) {
            Some(Value::Object(o)) => o.get("id").cloned().unwrap_or(Value::Null),
            // A `timestamp` column holds UTC wall time, as an export writes it
            // (PostgreSQL's own cast would keep Zoho's zone and drop the offset).
            Some(Value::String(s)) if col.type_oid == pgrx::pg_sys::TIMESTAMPOID => {
                zoho_api::values::utc_wall_time(s).map(Value::String).unwrap_or_else(|| Value::String(s.clone()))
            }
            Some(v) => v.clone(),
            None => continue,
        };
        out.insert(col.name.clone(), v);
    }
    Value::Object(out)
}

/// Zoho's clock less ours, as its replies said (zero before the first).
pub fn clock_offset(client: &zoho_api::ZohoClient) -> chrono::Duration {
    client.transport().clock_offset().unwrap_or_else(chrono::Duration::zero)
}

/// Upserts `records`; returns how many rows changed. A two-way table's go
/// through its conflict rules; `clock_offset` is Zoho's clock less ours.
pub fn upsert(target: &Target, records: &[Record], clock_offset: chrono::Duration) -> Result<u64, ZohoFdwError> {
    if records.is_empty() {
        return Ok(0);
    }
    if let Some(two) = &target.sync {
        let rows = Value::Array(records.iter().map(|r| row(target, r)).collect());
        return crate::sync::resolve::apply(target, two, crate::sync::resolve::Incoming::Json(rows), clock_offset);
    }
    let t = &target.table;
    let cols: Vec<String> = target.columns.iter().map(|(c, _)| c.quoted()).collect();
    let sql = format!(
        "INSERT INTO {t} AS t ({cols}) SELECT {cols} FROM jsonb_populate_recordset(NULL::{t}, $1::jsonb)
         ON CONFLICT ({id}) DO UPDATE SET {sets} WHERE {newer}",
        t = t.sql_name,
        cols = cols.join(", "),
        id = cols[0],
        sets = cols.iter().skip(1).map(|c| format!("{c} = EXCLUDED.{c}")).collect::<Vec<_>>().join(", "),
        newer = crate::export::newer_wins(&cols, "EXCLUDED"),
    );
    let rows = Value::Array(records.iter().map(|r| row(target, r)).collect());
    from_zoho(t.oid, FromZoho::Synced, || Spi::connect_mut(|spi| spi.update(sql.as_str(), None, &[pgrx::JsonB(rows).into()]).map(|t| t.len() as u64).map_err(spi_err)))
}

/// Deletes the rows of these record ids; returns how many there were.
pub fn delete(target: &Target, ids: &[i64]) -> Result<u64, ZohoFdwError> {
    if ids.is_empty() {
        return Ok(0);
    }
    if target.sync.as_ref().is_some_and(|s| !s.takes_zoho_deletes()) {
        return Ok(0);
    }
    let sql = match target.sync.as_ref().and_then(|s| s.flags().map(|f| (f, &s.sync))) {
        // Kept, and flagged: what references the row still finds it. A
        // local edit it had waiting stays here (the record is gone).
        Some((flag, sync)) => format!(
            "UPDATE {t} SET {f} = now(), {s} = true WHERE {id} = ANY($1) AND {f} IS NULL",
            t = target.table.sql_name,
            f = flag.quoted(),
            s = sync.quoted(),
            id = target.columns[0].0.quoted()
        ),
        None => format!("DELETE FROM {} WHERE {} = ANY($1)", target.table.sql_name, target.columns[0].0.quoted()),
    };
    // Not a local delete: a two-way table does not send it back to Zoho.
    from_zoho(target.table.oid, FromZoho::Synced, || Spi::connect_mut(|spi| spi.update(sql.as_str(), None, &[ids.to_vec().into()]).map(|t| t.len() as u64).map_err(spi_err)))
}
