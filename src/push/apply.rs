//! Recording outcomes in the source table, after every API call is done
//! (so no row lock is held while Zoho is called). A row is updated only
//! while it is the version that was read: same table, ctid and xmin. A row
//! changed meanwhile no longer matches and stays pending.

use pgrx::prelude::*;
use pgrx::spi::SpiClient;

use super::read::RowRef;
use super::source::SourceTable;
use crate::error::ZohoFdwError;

const BATCH: usize = 20_000;

#[derive(Default)]
pub struct Outcomes {
    pub synced: Vec<(RowRef, u64)>,
    pub rejected: Vec<(RowRef, String)>,
    /// Keys of the synced rows, and what was sent for each rejected one.
    pub synced_keys: Vec<String>,
    pub rejected_prints: Vec<(super::quarantine::Fingerprint, String)>,
}

fn refs_sql(refs: &[RowRef]) -> (Vec<i64>, Vec<String>, Vec<String>) {
    (
        refs.iter().map(|r| i64::from(r.table)).collect(),
        refs.iter().map(RowRef::tid_text).collect(),
        refs.iter().map(|r| r.xmin.to_string()).collect(),
    )
}

/// The join on row versions; `$1..$3` are the table oids, ctids and xmins.
/// `ctid = ANY` lets PostgreSQL fetch the rows by TID instead of scanning.
fn matching_rows(src: &SourceTable) -> String {
    format!(
        "FROM unnest($1::int8[], $2::text[]::tid[], $3::text[]::xid[], $4) AS r(toid, tid, x, v)
          WHERE t.ctid = ANY($2::text[]::tid[]) AND t.ctid = r.tid AND t.tableoid = r.toid::oid AND t.xmin = r.x
            AND NOT t.{}",
        src.sync.quoted()
    )
}

/// Marks the rows Zoho took as synced; returns how many still matched.
pub fn mark_synced(client: &mut SpiClient<'_>, src: &SourceTable, rows: &[(RowRef, u64)]) -> Result<u64, ZohoFdwError> {
    let mut sets = vec![format!("{} = true", src.sync.quoted())];
    if let Some(c) = &src.zoho_id {
        sets.push(format!("{} = CAST(r.v AS {})", c.quoted(), c.type_name));
    }
    if let Some(c) = &src.zoho_error {
        sets.push(format!("{} = NULL", c.quoted()));
    }
    if let Some(c) = &src.synced_at {
        sets.push(format!("{} = now()", c.quoted()));
    }
    let sql = format!("UPDATE {} AS t SET {} {}", src.sql_name, sets.join(", "), matching_rows(src).replace("$4", "$4::int8[]"));
    let mut marked = 0;
    for chunk in rows.chunks(BATCH) {
        let refs: Vec<RowRef> = chunk.iter().map(|(r, _)| *r).collect();
        let (toids, tids, xmins) = refs_sql(&refs);
        let ids: Vec<i64> = chunk.iter().map(|(_, id)| *id as i64).collect();
        marked += run(client, &sql, toids, tids, xmins, ids)?;
    }
    Ok(marked)
}

/// Stores Zoho's reasons in `zoho_error` (when the table has it); the rows
/// stay pending.
pub fn record_rejections(client: &mut SpiClient<'_>, src: &SourceTable, rows: &[(RowRef, String)]) -> Result<u64, ZohoFdwError> {
    let Some(c) = &src.zoho_error else {
        return Ok(0);
    };
    let sql = format!("UPDATE {} AS t SET {} = r.v {}", src.sql_name, c.quoted(), matching_rows(src).replace("$4", "$4::text[]"));
    let mut recorded = 0;
    for chunk in rows.chunks(BATCH) {
        let refs: Vec<RowRef> = chunk.iter().map(|(r, _)| *r).collect();
        let (toids, tids, xmins) = refs_sql(&refs);
        let errors: Vec<String> = chunk.iter().map(|(_, e)| e.clone()).collect();
        recorded += run(client, &sql, toids, tids, xmins, errors)?;
    }
    Ok(recorded)
}

fn run<V: IntoDatum>(client: &mut SpiClient<'_>, sql: &str, toids: Vec<i64>, tids: Vec<String>, xmins: Vec<String>, values: V) -> Result<u64, ZohoFdwError> {
    let args = [toids.into(), tids.into(), xmins.into(), values.into()];
    client
        .update(sql, None, &args)
        .map(|t| t.len() as u64)
        .map_err(|e| ZohoFdwError::Internal(format!("marking pushed rows: {e}")))
}
