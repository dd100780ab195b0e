//! Local deletes of a two-way table going to Zoho (`deletes => 'both'`).
//! The `zoho_record_delete` trigger keeps the record id and key of each row
//! a user deletes in `zoho.sync_deletes` (not the rows the extension
//! deletes because Zoho did); the table's push then deletes those records
//! in Zoho, 100 a call, once each is seen to still hold that key, and
//! forgets them.

use std::ffi::{c_int, CStr};

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

#[no_mangle]
pub extern "C" fn pg_finfo_zoho_record_delete() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

extension_sql!(
    r#"
CREATE FUNCTION zoho_record_delete() RETURNS trigger
  LANGUAGE c AS 'MODULE_PATHNAME', 'zoho_record_delete';
COMMENT ON FUNCTION zoho_record_delete() IS
  'AFTER DELETE row trigger of a two-way table (argument: the key column): records the Zoho id and key of each row deleted here, for the push to delete in Zoho';
"#,
    name = "record_delete_trigger"
);

fn fail(msg: &str) -> ! {
    pgrx::pg_sys::panic::ErrorReport::new(PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, msg.to_string(), "")
        .set_hint("zoho_sync creates it: AFTER DELETE … FOR EACH ROW EXECUTE FUNCTION zoho_record_delete('key_column')")
        .report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// The text of column `name` of `tuple`, by its type's output function.
///
/// # Safety
/// `tuple` is a valid heap tuple of `desc`.
unsafe fn column_text(tuple: pg_sys::HeapTuple, desc: pg_sys::TupleDesc, name: &str) -> Option<String> {
    // SAFETY: the caller's contract above: attribute i (among desc's natts) is
    // read with its null flag and printed by its own type's output function.
    unsafe {
        let natts = (*desc).natts as usize;
        let attrs = (*desc).attrs.as_slice(natts);
        let i = attrs.iter().position(|a| !a.attisdropped && CStr::from_ptr(a.attname.data.as_ptr()).to_str() == Ok(name))?;
        let mut null = false;
        let value = pg_sys::heap_getattr(tuple, i as c_int + 1, desc, &mut null);
        if null {
            return None;
        }
        let (mut output, mut varlena) = (pg_sys::InvalidOid, false);
        pg_sys::getTypeOutputInfo(attrs[i].atttypid, &mut output, &mut varlena);
        let text = pg_sys::OidOutputFunctionCall(output, value);
        Some(CStr::from_ptr(text).to_string_lossy().into_owned())
    }
}

/// `zoho_record_delete()`: a user's delete of a row of a table synced with
/// `deletes => 'both'` is kept in `zoho.sync_deletes` for the push. Written
/// in the catalog as the extension (no role may write it, or it could name
/// any record for the owner's push to delete), after checking that the
/// current user may delete from the table; rows the extension deletes
/// because Zoho did are not kept.
///
/// # Safety
/// Called by PostgreSQL's trigger manager with a valid `fcinfo`.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn zoho_record_delete(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: the contract above; context is checked to be TriggerData for an
    // AFTER DELETE row event, so tg_trigtuple is a row of tg_relation, and tgargs
    // holds the one argument checked for.
    unsafe {
        let td = (*fcinfo).context as *mut pg_sys::TriggerData;
        if td.is_null() || (*td).type_ != pg_sys::NodeTag::T_TriggerData {
            fail("zoho_record_delete() must be called as a trigger");
        }
        let event = (*td).tg_event;
        let after_row_delete = event & pg_sys::TRIGGER_EVENT_TIMINGMASK == pg_sys::TRIGGER_EVENT_AFTER
            && event & pg_sys::TRIGGER_EVENT_ROW != 0
            && event & pg_sys::TRIGGER_EVENT_OPMASK == pg_sys::TRIGGER_EVENT_DELETE;
        let trigger = (*td).tg_trigger;
        if !after_row_delete || (*trigger).tgnargs != 1 {
            fail("zoho_record_delete() must be an AFTER DELETE … FOR EACH ROW trigger with the key column as its argument");
        }
        let rel = (*td).tg_relation;
        let (relid, is_partition) = ((*rel).rd_id, (*(*rel).rd_rel).relispartition);
        if super::origin::current(relid, is_partition).is_some() {
            return pg_sys::Datum::from(0);
        }
        let key_column = CStr::from_ptr(*(*trigger).tgargs).to_string_lossy().into_owned();
        let (old, desc) = ((*td).tg_trigtuple, (*rel).rd_att);
        let (Some(record), Some(key)) = (column_text(old, desc, zoho_api::mapping::ZOHO_ID), column_text(old, desc, &key_column)) else {
            return pg_sys::Datum::from(0);
        };
        let Ok(record) = record.parse::<i64>() else { return pg_sys::Datum::from(0) };
        // The table flows are registered on: a partition's topmost parent.
        let root = if is_partition { super::origin::partition_ancestors(relid).last().copied().unwrap_or(relid) } else { relid };
        let may = Spi::get_one_with_args::<bool>("SELECT pg_catalog.has_table_privilege($1, 'DELETE')", &[root.into()]).ok().flatten().unwrap_or(false);
        if !may {
            return pg_sys::Datum::from(0);
        }
        let kept = crate::privileges::as_superuser(|| {
            Spi::run_with_args(
                "INSERT INTO zoho.sync_deletes (target, record_id, row_key)
                 SELECT s.target, $2, $3 FROM zoho.syncs s WHERE s.target = $1 AND s.deletes = 'both'
                 ON CONFLICT (target, record_id) DO UPDATE SET row_key = EXCLUDED.row_key, deleted_at = EXCLUDED.deleted_at",
                &[root.into(), record.into(), key.as_str().into()],
            )
        });
        if let Err(e) = kept {
            crate::error::raise(ZohoFdwError::Internal(format!("recording a delete for Zoho: {e}")));
        }
        pg_sys::Datum::from(0)
    }
}
