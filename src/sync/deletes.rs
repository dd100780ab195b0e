//! Local deletes of a two-way table going to Zoho (`deletes => 'both'`).
//! The `zoho_record_delete` trigger keeps the record id of each row a user
//! deletes in `zoho.sync_deletes` (not the rows the extension deletes
//! because Zoho did); the table's push then deletes those records in Zoho,
//! 100 a call, and forgets each one Zoho deleted or no longer has.

use pgrx::prelude::*;

use crate::error::ZohoFdwError;
use crate::runtime::block_on;
use crate::steps::Steps;

/// Record ids a push reads and deletes at a time.
const BATCH: i64 = 10_000;

/// Whether `target` has local deletes waiting to go to Zoho.
pub fn waiting(target: pg_sys::Oid) -> Result<bool, ZohoFdwError> {
    Ok(Spi::get_one_with_args::<bool>("SELECT EXISTS (SELECT 1 FROM zoho.sync_deletes WHERE target = $1)", &[target.into()])?.unwrap_or(false))
}

/// Deletes in Zoho the records of rows deleted here; returns how many.
pub fn send(target: pg_sys::Oid, module: &str, server: Option<&str>, steps: &mut impl Steps) -> Result<u64, ZohoFdwError> {
    let mut sent = 0;
    loop {
        let (ctx, client, ids) = steps.step(|spi| {
            let ctx = crate::server::resolve(server)?;
            let client = ctx.shared_client()?;
            let ids: Vec<i64> = spi
                .select("SELECT record_id FROM zoho.sync_deletes WHERE target = $1 ORDER BY deleted_at, record_id LIMIT $2", None, &[target.into(), BATCH.into()])?
                .map(|r| r.get::<i64>(1).map(Option::unwrap_or_default))
                .collect::<Result<_, _>>()?;
            Ok((ctx, client, ids))
        })?;
        if ids.is_empty() {
            return Ok(sent);
        }
        let text: Vec<String> = ids.iter().map(i64::to_string).collect();
        let results = block_on(client.delete(module, &text, false)).map_err(|e| ZohoFdwError::api(&ctx.name, e))?;
        // Deleted, or not there to delete (deleted in Zoho too, or never
        // there): either way nothing is left to do for it.
        let done: Vec<i64> = results
            .iter()
            .filter(|r| r.outcome.as_ref().map_or_else(|e| e.code == "INVALID_DATA", |_| true))
            .filter_map(|r| ids.get(r.index).copied())
            .collect();
        let refused: Vec<String> = results.iter().filter_map(|r| r.outcome.as_ref().err().map(|e| format!("{}: {}", ids.get(r.index).copied().unwrap_or_default(), e))).filter(|e| !e.contains("INVALID_DATA")).collect();
        steps.step(|spi| {
            spi.update("DELETE FROM zoho.sync_deletes WHERE target = $1 AND record_id = ANY($2)", None, &[target.into(), done.clone().into()])?;
            Ok(())
        })?;
        sent += done.len() as u64;
        if !refused.is_empty() {
            return Err(ZohoFdwError::BadArgument {
                what: format!("Zoho refused to delete {} record(s) of {module} deleted here: {}", refused.len(), refused.join("; ")),
                hint: Some("They stay in zoho.sync_deletes and are tried again at the next push.".into()),
            });
        }
        if (ids.len() as i64) < BATCH {
            return Ok(sent);
        }
    }
}

/// `zoho.writing_from_zoho(rel)`: whether the current statement writes
/// `rel` from Zoho, for the delete trigger (it reads, never sets, the flag).
#[pg_extern(
    stable,
    sql = r#"
CREATE FUNCTION zoho.writing_from_zoho(rel regclass) RETURNS boolean
  STABLE STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'writing_from_zoho_wrapper';
COMMENT ON FUNCTION zoho.writing_from_zoho(regclass) IS
  'Whether the current statement writes rel from Zoho (zoho_fdw''s own writes), for the delete trigger of two-way tables';
"#,
    requires = ["export_catalog"]
)]
fn writing_from_zoho(rel: pg_sys::Oid) -> bool {
    // SAFETY: a lookup in the syscache; false for an oid that is no relation.
    let is_partition = unsafe { pg_sys::get_rel_relispartition(rel) };
    super::origin::current(rel, is_partition).is_some()
}
