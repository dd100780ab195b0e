//! Local deletes of a two-way table going to Zoho (`deletes => 'both'`).
//! The `zoho_record_delete` trigger keeps the record id and key of each row
//! a user deletes in `zoho.sync_deletes` (not the rows the extension
//! deletes because Zoho did); the table's push then deletes those records
//! in Zoho, 100 a call, once each is seen to still hold that key, and
//! forgets them.

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
/// A record goes only while it still holds the deleted row's key: the
/// record id came from a column users may write, and the owner's push
/// must not delete a record the table never held.
pub fn send(target: pg_sys::Oid, module: &str, server: Option<&str>, steps: &mut impl Steps) -> Result<u64, ZohoFdwError> {
    let mut sent = 0;
    loop {
        let batch = steps.step(|spi| {
            let sync = spi.select("SELECT key_field FROM zoho.syncs WHERE target = $1 AND deletes = 'both'", None, &[target.into()])?;
            let Some(key_field) = sync.into_iter().next().map(|r| r.get::<String>(1)).transpose()?.flatten() else {
                return Ok(None);
            };
            let ctx = crate::server::resolve(server)?;
            let client = ctx.shared_client()?;
            let rows: Vec<(i64, String)> = spi
                .select("SELECT record_id, row_key FROM zoho.sync_deletes WHERE target = $1 ORDER BY deleted_at, record_id LIMIT $2", None, &[target.into(), BATCH.into()])?
                .map(|r| Ok((r.get::<i64>(1)?.unwrap_or_default(), r.get::<String>(2)?.unwrap_or_default())))
                .collect::<Result<_, pgrx::spi::SpiError>>()?;
            Ok(Some((key_field, ctx, client, rows)))
        })?;
        let Some((key_field, ctx, client, rows)) = batch else { return Ok(sent) };
        if rows.is_empty() {
            return Ok(sent);
        }
        let api = |e| ZohoFdwError::api(&ctx.name, e);
        let ids: Vec<String> = rows.iter().map(|(id, _)| id.to_string()).collect();
        let held = block_on(client.get_by_ids(module, &ids, std::slice::from_ref(&key_field))).map_err(api)?;
        let key_of = |id: &str| held.iter().find(|r| zoho_api::records::record_id(r).as_deref() == Some(id)).map(|r| r.get(&key_field).and_then(|v| zoho_api::values::cell_text(v, zoho_api::values::Column { text: true, ..Default::default() })));
        let (mut go, mut refused) = (Vec::new(), Vec::new());
        for ((id, key), text) in rows.iter().zip(&ids) {
            match key_of(text) {
                Some(Some(k)) if k == *key => go.push(text.clone()),
                // Gone from Zoho already: nothing to do.
                None => {}
                Some(other) => refused.push(format!("record {id} holds {key_field} {:?}, not the deleted row's {key:?}", other.unwrap_or_default())),
            }
        }
        let results = if go.is_empty() { Vec::new() } else { block_on(client.delete(module, &go, false)).map_err(api)? };
        // Deleted, or not there to delete: either way nothing is left to do.
        for r in &results {
            if let Err(e) = &r.outcome {
                if e.code != "INVALID_DATA" {
                    refused.push(format!("record {}: {e}", go.get(r.index).cloned().unwrap_or_default()));
                }
            }
        }
        let done: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
        steps.step(|spi| {
            spi.update("DELETE FROM zoho.sync_deletes WHERE target = $1 AND record_id = ANY($2)", None, &[target.into(), done.clone().into()])?;
            Ok(())
        })?;
        sent += results.iter().filter(|r| r.outcome.is_ok()).count() as u64;
        if !refused.is_empty() {
            warning!("zoho_fdw: {} record(s) of {module} deleted here were not deleted in Zoho: {}", refused.len(), refused.join("; "));
        }
        if (rows.len() as i64) < BATCH {
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
