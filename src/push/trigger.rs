//! `zoho_mark_pending()`: a BEFORE INSERT OR UPDATE row trigger that sets the
//! sync column (trigger argument, default `synced`) to false on INSERT and
//! on any UPDATE that changes a column other than the bookkeeping ones. So
//! the UPDATE by which `zoho_upsert_pending` marks rows synced, which only
//! touches bookkeeping columns, is left as it is. A user's change also sets
//! `zoho_changed_at`, where the table has it (newest_wins compares it with
//! Zoho's `Modified_Time`). Rows the extension writes from Zoho are not
//! marked pending ([`crate::sync::origin`]).
//!
//! Written against the raw trigger API: it compares every column of OLD and
//! NEW by binary image (`datum_image_eq`, what HOT updates use), which
//! pgrx's typed tuple API cannot do without knowing each column's type.

use std::ffi::{c_int, CStr};

use pgrx::pg_sys;
use pgrx::prelude::*;

use super::{BOOKKEEPING, CHANGED_AT, CHANGED_FIELDS, DELETED_AT};
use crate::sync::origin::FromZoho;

extern "C-unwind" {
    /// utils/datum.h, which pgrx does not bind. Called through
    /// `pg_guard_ffi_boundary`: detoasting may raise an ERROR.
    fn datum_image_eq(value1: pg_sys::Datum, value2: pg_sys::Datum, typ_by_val: bool, typ_len: c_int) -> bool;
}

#[no_mangle]
pub extern "C" fn pg_finfo_zoho_mark_pending() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

extension_sql!(
    r#"
CREATE FUNCTION zoho_mark_pending() RETURNS trigger
  LANGUAGE c AS 'MODULE_PATHNAME', 'zoho_mark_pending';
COMMENT ON FUNCTION zoho_mark_pending() IS
  'BEFORE INSERT OR UPDATE row trigger: sets the sync column (argument, default synced) to false when a non-bookkeeping column changes';
"#,
    name = "mark_pending_trigger"
);

fn fail(msg: String, hint: &str) -> ! {
    pgrx::pg_sys::panic::ErrorReport::new(PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, msg, "")
        .set_hint(hint)
        .report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// # Safety
/// Called by PostgreSQL's trigger manager with a valid `fcinfo`.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn zoho_mark_pending(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    let td = (*fcinfo).context as *mut pg_sys::TriggerData;
    if td.is_null() || (*td).type_ != pg_sys::NodeTag::T_TriggerData {
        fail("zoho_mark_pending() must be called as a trigger".into(), "CREATE TRIGGER … BEFORE INSERT OR UPDATE ON t FOR EACH ROW EXECUTE FUNCTION zoho_mark_pending('synced')");
    }
    let event = (*td).tg_event;
    let before_row = event & pg_sys::TRIGGER_EVENT_TIMINGMASK == pg_sys::TRIGGER_EVENT_BEFORE && event & pg_sys::TRIGGER_EVENT_ROW != 0;
    let op = event & pg_sys::TRIGGER_EVENT_OPMASK;
    let rel = (*td).tg_relation;
    let relname = CStr::from_ptr((*(*rel).rd_rel).relname.data.as_ptr()).to_string_lossy().into_owned();
    if !before_row || !(op == pg_sys::TRIGGER_EVENT_INSERT || op == pg_sys::TRIGGER_EVENT_UPDATE) {
        fail(
            format!("zoho_mark_pending() on {relname} must be a BEFORE INSERT OR UPDATE … FOR EACH ROW trigger"),
            "CREATE TRIGGER … BEFORE INSERT OR UPDATE ON t FOR EACH ROW EXECUTE FUNCTION zoho_mark_pending('synced')",
        );
    }
    let trigger = (*td).tg_trigger;
    let sync_name = if (*trigger).tgnargs > 0 {
        CStr::from_ptr(*(*trigger).tgargs).to_string_lossy().into_owned()
    } else {
        "synced".to_string()
    };
    let desc = (*rel).rd_att;
    let natts = (*desc).natts as usize;
    let attrs = (*desc).attrs.as_slice(natts);
    let name_of = |a: &pg_sys::FormData_pg_attribute| CStr::from_ptr(a.attname.data.as_ptr()).to_string_lossy().into_owned();
    // Compared in place: this runs for every column of every row written.
    let named = |a: &pg_sys::FormData_pg_attribute, name: &str| CStr::from_ptr(a.attname.data.as_ptr()).to_bytes() == name.as_bytes();
    let Some(sync_idx) = attrs.iter().position(|a| !a.attisdropped && named(a, &sync_name)) else {
        fail(
            format!("zoho_mark_pending(): table {relname} has no sync column \"{sync_name}\""),
            "Add it (ALTER TABLE … ADD COLUMN synced boolean NOT NULL DEFAULT false) or pass the column's name as the trigger's argument.",
        );
    };
    if attrs[sync_idx].atttypid != pg_sys::BOOLOID {
        fail(format!("zoho_mark_pending(): sync column \"{sync_name}\" of {relname} is not boolean"), "The sync column must be boolean.");
    }
    let new = if op == pg_sys::TRIGGER_EVENT_INSERT { (*td).tg_trigtuple } else { (*td).tg_newtuple };
    let old = (op == pg_sys::TRIGGER_EVENT_UPDATE).then(|| (*td).tg_trigtuple);
    // A table that tracks which columns changed needs them all; any other
    // only whether one did.
    let fields_idx = attrs.iter().position(|a| !a.attisdropped && a.atttypid == pg_sys::JSONBOID && named(a, CHANGED_FIELDS));
    let changed_columns: Vec<(usize, String)> = match old {
        None => Vec::new(),
        Some(old) => attrs
            .iter()
            .enumerate()
            .filter(|(i, a)| {
                if a.attisdropped || *i == sync_idx || BOOKKEEPING.iter().any(|b| named(a, b)) {
                    return false;
                }
                let (mut n1, mut n2) = (false, false);
                let v1 = pg_sys::heap_getattr(old, *i as i32 + 1, desc, &mut n1);
                let v2 = pg_sys::heap_getattr(new, *i as i32 + 1, desc, &mut n2);
                match (n1, n2) {
                    (true, true) => false,
                    (false, false) => !pg_sys::ffi::pg_guard_ffi_boundary(|| datum_image_eq(v1, v2, a.attbyval, a.attlen.into())),
                    _ => true,
                }
            })
            .map(|(i, a)| (i, name_of(a)))
            .take(if fields_idx.is_some() { usize::MAX } else { 1 })
            .collect(),
    };
    // A row flagged as deleted in Zoho is not sent; clearing the flag sends
    // it again (its record is made anew).
    let deleted_idx = attrs.iter().position(|a| !a.attisdropped && a.atttypid == pg_sys::TIMESTAMPTZOID && named(a, DELETED_AT));
    let flag_set = |tuple: *mut pg_sys::HeapTupleData, i: usize| {
        let mut isnull = false;
        pg_sys::heap_getattr(tuple, i as i32 + 1, desc, &mut isnull);
        !isnull
    };
    let flagged = old.is_some() && deleted_idx.is_some_and(|i| flag_set(new, i));
    let revived = !flagged && deleted_idx.is_some_and(|i| old.is_some_and(|o| flag_set(o, i)));
    let changed = old.is_none() || !changed_columns.is_empty() || revived;
    if !changed {
        return pg_sys::Datum::from(new);
    }
    let (mut cols, mut values): (Vec<c_int>, Vec<pg_sys::Datum>) = (Vec::new(), Vec::new());
    let origin = crate::sync::origin::current((*rel).rd_id, (*(*rel).rd_rel).relispartition);
    let by_user = origin.is_none();
    match origin {
        // The statement sets the sync column itself.
        Some(FromZoho::AsWritten) => return pg_sys::Datum::from(new),
        // The row now holds what Zoho holds.
        Some(FromZoho::Synced) => {
            cols.push(sync_idx as c_int + 1);
            values.push(pg_sys::Datum::from(true));
        }
        None if flagged => return pg_sys::Datum::from(new),
        None => {
            crate::worker::wake::pushes_at_commit();
            let mut isnull = false;
            let current = pg_sys::heap_getattr(new, sync_idx as i32 + 1, desc, &mut isnull);
            if isnull || current.value() != 0 {
                cols.push(sync_idx as c_int + 1);
                values.push(pg_sys::Datum::from(false));
            }
            // When it changed here, for newest_wins (a two-way table's).
            if let Some(i) = attrs.iter().position(|a| !a.attisdropped && a.atttypid == pg_sys::TIMESTAMPTZOID && named(a, CHANGED_AT)) {
                cols.push(i as c_int + 1);
                values.push(pg_sys::Datum::from(pg_sys::GetCurrentTimestamp()));
            }
            // What changed here since the row last agreed with Zoho, with
            // the value each column had then (its text form): OLD's object,
            // and this update's columns not yet in it. A new row has none:
            // all of it is local.
            if let (Some(i), Some(old)) = (fields_idx, old) {
                let mut isnull = false;
                let before = pg_sys::heap_getattr(old, i as i32 + 1, desc, &mut isnull);
                // SAFETY: attribute i of OLD is a jsonb (checked above), read with its null flag.
                let mut agreed = match unsafe { pgrx::JsonB::from_datum(before, isnull) } {
                    Some(pgrx::JsonB(serde_json::Value::Object(m))) => m,
                    _ => serde_json::Map::new(),
                };
                for (c, name) in changed_columns {
                    if agreed.contains_key(&name) {
                        continue;
                    }
                    let mut isnull = false;
                    let v = pg_sys::heap_getattr(old, c as i32 + 1, desc, &mut isnull);
                    let text = (!isnull).then(|| {
                        let (mut out, mut varlena) = (pg_sys::InvalidOid, false);
                        pg_sys::getTypeOutputInfo(attrs[c].atttypid, &mut out, &mut varlena);
                        let p = pg_sys::OidOutputFunctionCall(out, v);
                        CStr::from_ptr(p).to_string_lossy().into_owned()
                    });
                    agreed.insert(name, text.map_or(serde_json::Value::Null, serde_json::Value::String));
                }
                if let Some(d) = pgrx::JsonB(serde_json::Value::Object(agreed)).into_datum() {
                    cols.push(i as c_int + 1);
                    values.push(d);
                }
            }
        }
    }
    if cols.is_empty() {
        return pg_sys::Datum::from(new);
    }
    let mut nulls = vec![false; cols.len()];
    // A row whose flag was cleared is sent as new: the id it held is a
    // deleted record's (which a later pull's list of deletes would flag
    // again), and the push writes the id of the record it makes.
    if revived && by_user {
        if let Some(i) = attrs.iter().position(|a| !a.attisdropped && named(a, "zoho_id")) {
            cols.push(i as c_int + 1);
            values.push(pg_sys::Datum::from(0));
            nulls.push(true);
        }
    }
    let modified = pg_sys::heap_modify_tuple_by_cols(new, desc, cols.len() as c_int, cols.as_mut_ptr(), values.as_mut_ptr(), nulls.as_mut_ptr());
    pg_sys::Datum::from(modified)
}
