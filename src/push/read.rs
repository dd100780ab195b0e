//! Reading pending rows: each with the version it was read at (table oid,
//! ctid, xmin), so the row is marked synced only if nobody changed it while
//! its push was in flight, and its values converted to Zoho's JSON.

use pgrx::pg_sys;
use zoho_api::push::PushRow;

use super::columns::PushColumns;
use super::source::SourceTable;
use crate::error::ZohoFdwError;

/// Where a row version lives: it matches only while the row is unchanged.
#[derive(Debug, Clone, Copy)]
pub struct RowRef {
    pub table: u32,
    pub block: u32,
    pub offset: u16,
    pub xmin: u32,
}

impl RowRef {
    pub fn tid_text(&self) -> String {
        format!("({},{})", self.block, self.offset)
    }
}

/// `SELECT tableoid, ctid, xmin, key::text, <columns> FROM t WHERE NOT sync`
/// and the key is not in `$1`: the rows this push has already read, which
/// may still be pending (rejected, held back, or changed in flight) and
/// must not be read twice.
pub fn pending_query(src: &SourceTable, cols: &PushColumns) -> String {
    let exprs: Vec<String> = cols.columns.iter().map(|c| c.select_expr()).collect();
    let key = cols.columns[0].local.quoted();
    format!(
        "SELECT tableoid, ctid, xmin, {key}::text, {} FROM {} WHERE NOT {} AND {key}::text <> ALL($1::text[])",
        exprs.join(", "),
        src.sql_name,
        src.sync.quoted()
    )
}

/// A pending row as read: where its version is, its key as text, its values.
pub struct Pending {
    pub at: RowRef,
    pub key: String,
    pub values: PushRow,
}

impl Pending {
    /// About how many bytes the row takes in memory.
    pub fn size(&self) -> usize {
        fn value(v: &serde_json::Value) -> usize {
            std::mem::size_of::<serde_json::Value>()
                + match v {
                    serde_json::Value::String(s) => s.len(),
                    serde_json::Value::Number(_) => 24,
                    serde_json::Value::Array(a) => a.iter().map(value).sum(),
                    serde_json::Value::Object(m) => m.iter().map(|(k, v)| k.len() + value(v)).sum(),
                    _ => 0,
                }
        }
        std::mem::size_of::<Pending>() + self.key.len() + self.values.iter().map(value).sum::<usize>()
    }
}

/// A cursor over pending rows, read through SPI's C API: pgrx's typed
/// tuples check each value's Rust type, and these go straight to the FDW's
/// datum → JSON conversion. Valid while the caller's SPI connection is.
pub struct Cursor {
    portal: pg_sys::Portal,
}

impl Cursor {
    /// Opens [`pending_query`], leaving out the rows whose keys are in `read`.
    pub fn open(sql: &str, read: &[String]) -> Result<Cursor, ZohoFdwError> {
        let c = std::ffi::CString::new(sql).map_err(|_| ZohoFdwError::Internal("query contains a NUL byte".into()))?;
        let keys = pgrx::IntoDatum::into_datum(read.to_vec()).expect("an array is never NULL");
        let mut types = [pg_sys::TEXTARRAYOID];
        let mut values = [keys];
        // SAFETY: one parameter, its type, value and (non-)null flag given;
        // the array datum lives in the current memory context, which
        // outlives the call (the portal copies its parameters).
        let portal = unsafe { pg_sys::SPI_cursor_open_with_args(std::ptr::null(), c.as_ptr(), 1, types.as_mut_ptr(), values.as_mut_ptr(), c" ".as_ptr(), false, 0) };
        if portal.is_null() {
            return Err(ZohoFdwError::Internal("cannot open a cursor over the pending rows".into()));
        }
        Ok(Cursor { portal })
    }

    /// On an ERROR the transaction's end closes the portal instead.
    pub fn close(self) {
        // SAFETY: the portal `open` opened, closed once here; callers keep a
        // Cursor within the SPI connection it was opened under.
        unsafe { pg_sys::SPI_cursor_close(self.portal) }
    }

    /// The next `n` rows, converted. A value Zoho cannot take is an error
    /// naming the row's key, the column and the value.
    pub fn fetch(&mut self, n: usize, src: &SourceTable, cols: &PushColumns) -> Result<Vec<Pending>, ZohoFdwError> {
        // SAFETY: `portal` is open (see `close`); SPI_tuptable then holds
        // SPI_processed rows of pending_query: tableoid, ctid, xmin, the key as
        // text, then `cols`, whose types are checked against the descriptor
        // before any datum is read as one.
        unsafe {
            pg_sys::SPI_cursor_fetch(self.portal, true, n as std::ffi::c_long);
            let table = pg_sys::SPI_tuptable;
            if table.is_null() {
                return Ok(Vec::new());
            }
            let count = pg_sys::SPI_processed as usize;
            let desc = (*table).tupdesc;
            let natts = (*desc).natts as usize;
            // The columns were typed from the catalog, maybe in an earlier
            // transaction (a worker's step): an ALTER COLUMN ... TYPE since
            // then would have each value read as the wrong type.
            let typed = |j: usize| (*(*desc).attrs.as_ptr().add(4 + j)).atttypid.to_u32() == cols.columns[j].def.type_oid;
            if natts != 4 + cols.columns.len() || !(0..cols.columns.len()).all(typed) {
                return Err(ZohoFdwError::BadArgument {
                    what: format!("the columns of {} changed while its pending rows were read", src.display),
                    hint: Some("Push again: the next run reads the table as it is now.".into()),
                });
            }
            // Each row taken apart once: heap_getattr walks a tuple from its
            // start for every column after a varlena.
            let (mut datums, mut nulls) = (vec![pg_sys::Datum::from(0); natts], vec![false; natts]);
            let mut out = Vec::with_capacity(count);
            for i in 0..count {
                let tuple = *(*table).vals.add(i);
                pg_sys::heap_deform_tuple(tuple, desc, datums.as_mut_ptr(), nulls.as_mut_ptr());
                let get = |attnum: usize| (datums[attnum - 1], nulls[attnum - 1]);
                let (toid, _) = get(1);
                let (tid, _) = get(2);
                let (xmin, _) = get(3);
                let ip = tid.cast_mut_ptr::<pg_sys::ItemPointerData>();
                let r = RowRef {
                    table: toid.value() as u32,
                    block: (u32::from((*ip).ip_blkid.bi_hi) << 16) | u32::from((*ip).ip_blkid.bi_lo),
                    offset: (*ip).ip_posid,
                    xmin: xmin.value() as u32,
                };
                let (key, null) = get(4);
                let key: String = pgrx::FromDatum::from_datum(key, null).unwrap_or_default();
                let mut values = Vec::with_capacity(cols.columns.len());
                for (j, c) in cols.columns.iter().enumerate() {
                    let (d, null) = get(5 + j);
                    match crate::fdw::convert::to_json(d, null, &c.def) {
                        Ok(v) => values.push(v),
                        Err(reason) => return Err(bad_value(src, cols, &values, r, j, reason)),
                    }
                }
                if values[0].is_null() {
                    return Err(ZohoFdwError::BadRow {
                        table: src.display.clone(),
                        what: format!("row at {} has no value in key column {} ({}), so Zoho cannot match it", r.tid_text(), cols.columns[0].local.name, cols.spec.fields[0].api_name),
                    });
                }
                out.push(Pending { at: r, key, values });
            }
            pg_sys::SPI_freetuptable(table);
            Ok(out)
        }
    }
}

fn bad_value(src: &SourceTable, cols: &PushColumns, values: &[serde_json::Value], r: RowRef, j: usize, reason: String) -> ZohoFdwError {
    let key = values.first().and_then(zoho_api::push::cell).unwrap_or_else(|| "?".into());
    let c = &cols.columns[j];
    ZohoFdwError::BadRow {
        table: src.display.clone(),
        what: format!(
            "row with {} = '{key}' at {}: column {} cannot be sent to Zoho field {} ({}): {reason}",
            cols.columns[0].local.name,
            r.tid_text(),
            c.local.name,
            c.field.api_name,
            c.field.value_type()
        ),
    }
}
