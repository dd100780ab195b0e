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
    // SAFETY: the contract above; context is checked to be TriggerData, whose
    // relation, descriptor and trigger are valid, tgargs has tgnargs entries, and
    // whose tuples are rows of that descriptor (OLD's jsonb column: see below).
    unsafe {
        let td = (*fcinfo).context as *mut pg_sys::TriggerData;
        if td.is_null() || (*td).type_ != pg_sys::NodeTag::T_TriggerData {
            fail("zoho_mark_pending() must be called as a trigger".into(), "CREATE TRIGGER … BEFORE INSERT OR UPDATE ON t FOR EACH ROW EXECUTE FUNCTION zoho_mark_pending('synced')");
        }
        let event = (*td).tg_event;
        let before_row = event & pg_sys::TRIGGER_EVENT_TIMINGMASK == pg_sys::TRIGGER_EVENT_BEFORE && event & pg_sys::TRIGGER_EVENT_ROW != 0;
        let op = event & pg_sys::TRIGGER_EVENT_OPMASK;
        let rel = (*td).tg_relation;
        // Only an error names the table: this runs for every row written.
        let relname = || CStr::from_ptr((*(*rel).rd_rel).relname.data.as_ptr()).to_string_lossy().into_owned();
        if !before_row || !(op == pg_sys::TRIGGER_EVENT_INSERT || op == pg_sys::TRIGGER_EVENT_UPDATE) {
            fail(
                format!("zoho_mark_pending() on {} must be a BEFORE INSERT OR UPDATE … FOR EACH ROW trigger", relname()),
                "CREATE TRIGGER … BEFORE INSERT OR UPDATE ON t FOR EACH ROW EXECUTE FUNCTION zoho_mark_pending('synced')",
            );
        }
        let new = if op == pg_sys::TRIGGER_EVENT_INSERT { (*td).tg_trigtuple } else { (*td).tg_newtuple };
        let origin = crate::sync::origin::current((*rel).rd_id, (*(*rel).rd_rel).relispartition);
        // The extension's own statement sets the sync column itself (a push
        // marking rows synced, a two-way table's conflicts): nothing to decide.
        if origin == Some(FromZoho::AsWritten) {
            return pg_sys::Datum::from(new);
        }
        let trigger = (*td).tg_trigger;
        let sync_name: &[u8] = if (*trigger).tgnargs > 0 { CStr::from_ptr(*(*trigger).tgargs).to_bytes() } else { b"synced" };
        let desc = (*rel).rd_att;
        let natts = (*desc).natts as usize;
        let attrs = (*desc).attrs.as_slice(natts);
        let name_of = |a: &pg_sys::FormData_pg_attribute| CStr::from_ptr(a.attname.data.as_ptr()).to_string_lossy().into_owned();
        // Compared in place, without a copy.
        let named = |a: &pg_sys::FormData_pg_attribute, name: &[u8]| CStr::from_ptr(a.attname.data.as_ptr()).to_bytes() == name;
        let Some(sync_idx) = attrs.iter().position(|a| !a.attisdropped && named(a, sync_name)) else {
            fail(
                format!("zoho_mark_pending(): table {} has no sync column \"{}\"", relname(), String::from_utf8_lossy(sync_name)),
                "Add it (ALTER TABLE … ADD COLUMN synced boolean NOT NULL DEFAULT false) or pass the column's name as the trigger's argument.",
            );
        };
        if attrs[sync_idx].atttypid != pg_sys::BOOLOID {
            fail(format!("zoho_mark_pending(): sync column \"{}\" of {} is not boolean", String::from_utf8_lossy(sync_name), relname()), "The sync column must be boolean.");
        }
        // Every column of NEW (and OLD), taken apart once: heap_getattr walks
        // the tuple from its start for each column after a NULL or a varlena.
        let deform = |tuple: *mut pg_sys::HeapTupleData| {
            let (mut values, mut nulls) = (vec![pg_sys::Datum::from(0); natts], vec![false; natts]);
            pg_sys::heap_deform_tuple(tuple, desc, values.as_mut_ptr(), nulls.as_mut_ptr());
            (values, nulls)
        };
        let new_cells = deform(new);
        let old = (op == pg_sys::TRIGGER_EVENT_UPDATE).then(|| (*td).tg_trigtuple);
        let old_cells = old.map(deform);
        // A table that tracks which columns changed needs them all; any other
        // only whether one did.
        let fields_idx = attrs.iter().position(|a| !a.attisdropped && a.atttypid == pg_sys::JSONBOID && named(a, CHANGED_FIELDS.as_bytes()));
        let changed_columns: Vec<usize> = match &old_cells {
            None => Vec::new(),
            Some((v1, n1)) => (0..natts)
                .filter(|&i| {
                    let a = &attrs[i];
                    if a.attisdropped || i == sync_idx || BOOKKEEPING.iter().any(|b| named(a, b.as_bytes())) {
                        return false;
                    }
                    match (n1[i], new_cells.1[i]) {
                        (true, true) => false,
                        (false, false) => {
                            let (x, y) = (v1[i], new_cells.0[i]);
                            !pg_sys::ffi::pg_guard_ffi_boundary(|| datum_image_eq(x, y, a.attbyval, a.attlen.into()))
                        }
                        _ => true,
                    }
                })
                .take(if fields_idx.is_some() { usize::MAX } else { 1 })
                .collect(),
        };
        // A row flagged as deleted in Zoho is not sent; clearing the flag sends
        // it again (its record is made anew).
        let deleted_idx = attrs.iter().position(|a| !a.attisdropped && a.atttypid == pg_sys::TIMESTAMPTZOID && named(a, DELETED_AT.as_bytes()));
        let flagged = old.is_some() && deleted_idx.is_some_and(|i| !new_cells.1[i]);
        let revived = !flagged && deleted_idx.is_some_and(|i| old_cells.as_ref().is_some_and(|(_, n)| !n[i]));
        let changed = old.is_none() || !changed_columns.is_empty() || revived;
        if !changed {
            return pg_sys::Datum::from(new);
        }
        let (mut cols, mut values): (Vec<c_int>, Vec<pg_sys::Datum>) = (Vec::new(), Vec::new());
        let by_user = origin.is_none();
        match origin {
            Some(FromZoho::AsWritten) => unreachable!("returned above"),
            // The row now holds what Zoho holds.
            Some(FromZoho::Synced) => {
                cols.push(sync_idx as c_int + 1);
                values.push(pg_sys::Datum::from(true));
            }
            None if flagged => return pg_sys::Datum::from(new),
            None => {
                crate::worker::wake::pushes_at_commit();
                let (current, isnull) = (new_cells.0[sync_idx], new_cells.1[sync_idx]);
                if isnull || current.value() != 0 {
                    cols.push(sync_idx as c_int + 1);
                    values.push(pg_sys::Datum::from(false));
                }
                // When it changed here, for newest_wins (a two-way table's).
                if let Some(i) = attrs.iter().position(|a| !a.attisdropped && a.atttypid == pg_sys::TIMESTAMPTZOID && named(a, CHANGED_AT.as_bytes())) {
                    cols.push(i as c_int + 1);
                    values.push(pg_sys::Datum::from(pg_sys::GetCurrentTimestamp()));
                }
                // What changed here since the row last agreed with Zoho, with
                // the value each column had then (its text form): OLD's object,
                // and this update's columns not yet in it. A new row has none:
                // all of it is local.
                if let (Some(i), Some((old_values, old_nulls))) = (fields_idx, &old_cells) {
                    let (before, isnull) = (old_values[i], old_nulls[i]);
                    // SAFETY: attribute i of OLD is a jsonb (checked above), read with its null flag.
                    let mut agreed = match pgrx::JsonB::from_datum(before, isnull) {
                        Some(pgrx::JsonB(serde_json::Value::Object(m))) => m,
                        _ => serde_json::Map::new(),
                    };
                    for c in changed_columns {
                        let name = name_of(&attrs[c]);
                        if agreed.contains_key(&name) {
                            continue;
                        }
                        let (v, isnull) = (old_values[c], old_nulls[c]);
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
            if let Some(i) = attrs.iter().position(|a| !a.attisdropped && named(a, b"zoho_id")) {
                cols.push(i as c_int + 1);
                values.push(pg_sys::Datum::from(0));
                nulls.push(true);
            }
        }
        let modified = pg_sys::heap_modify_tuple_by_cols(new, desc, cols.len() as c_int, cols.as_mut_ptr(), values.as_mut_ptr(), nulls.as_mut_ptr());
        pg_sys::Datum::from(modified)
    }
}
