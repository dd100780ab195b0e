//! Recording outcomes in the source table, after every API call is done
//! (so no row lock is held while Zoho is called). A row is updated only
//! while it is the version that was read: same table, ctid and xmin. A row
//! changed meanwhile no longer matches and stays pending.

use pgrx::prelude::*;
use pgrx::datum::DatumWithOid;
use pgrx::spi::SpiClient;

use super::read::RowRef;
use super::source::SourceTable;
use crate::error::ZohoFdwError;

/// Rows per statement: the push hands over MARK_BATCH at a time.
const BATCH: usize = 20_000;

#[derive(Default)]
pub struct Outcomes {
    /// With the record's id and the `Modified_Time` Zoho gave the write.
    pub synced: Vec<(RowRef, u64, Option<String>)>,
    pub rejected: Vec<(RowRef, String)>,
    /// Keys of the synced rows, and what was sent for each rejected one.
    pub synced_keys: Vec<String>,
    pub rejected_prints: Vec<(super::quarantine::Fingerprint, String)>,
}

impl Outcomes {
    pub fn len(&self) -> usize {
        self.synced.len() + self.rejected.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn extend(&mut self, o: Outcomes) {
        self.synced.extend(o.synced);
        self.rejected.extend(o.rejected);
        self.synced_keys.extend(o.synced_keys);
        self.rejected_prints.extend(o.rejected_prints);
    }
}

/// The versions as SQL parameters: table oids, ctids as a native `tid[]`
/// (no text to parse per row) and xmins as `int4[]` (`xid = int4` compares
/// the same 32 bits), then the lowest and highest ctid.
fn refs_args(refs: &[RowRef]) -> [DatumWithOid<'static>; 5] {
    let toids: Vec<pg_sys::Oid> = refs.iter().map(|r| pg_sys::Oid::from(r.table)).collect();
    let xmins: Vec<i32> = refs.iter().map(|r| r.xmin as i32).collect();
    let tid = |r: &RowRef| pg_sys::ItemPointerData {
        ip_blkid: pg_sys::BlockIdData { bi_hi: (r.block >> 16) as u16, bi_lo: r.block as u16 },
        ip_posid: r.offset,
    };
    let mut tids: Vec<pg_sys::ItemPointerData> = refs.iter().map(tid).collect();
    let lowest = refs.iter().min_by_key(|r| (r.block, r.offset)).map(tid);
    let highest = refs.iter().max_by_key(|r| (r.block, r.offset)).map(tid);
    let mut elems: Vec<pg_sys::Datum> = tids.iter_mut().map(|t| pg_sys::Datum::from(t as *mut pg_sys::ItemPointerData)).collect();
    // SAFETY: `elems` holds `refs.len()` pointers to live ItemPointerData,
    // tid's length (6), by-reference passing and short alignment given as
    // its catalog entry has them; the array is copied into the current
    // memory context before `tids` goes.
    let tid_array = unsafe { pg_sys::construct_array(elems.as_mut_ptr(), elems.len() as i32, pg_sys::TIDOID, 6, false, pg_sys::TYPALIGN_SHORT as std::ffi::c_char) };
    // SAFETY: a non-null tid[] built just above, given its array type.
    let tids = unsafe { DatumWithOid::new(pg_sys::Datum::from(tid_array), pg_sys::TIDARRAYOID) };
    [toids.into(), tids, xmins.into(), lowest.into(), highest.into()]
}

/// The join on row versions; `$1..$5` are [`refs_args`], `$6` a value per
/// row (`values`: its cast, and any further arrays).
///
/// `ctid = ANY` lets PostgreSQL fetch the rows by TID, but it prices every
/// TID as a random page read, so past a few hundred rows of a small table
/// it scans the whole table for each batch instead (14 ms a batch of 1,000
/// on 100,000 rows). The ctid range gives it a Tid Range Scan over just
/// the pages the batch spans, which it takes whenever the rows are close
/// together, as rows read in table order are.
fn matching_rows(src: &SourceTable, values: &str) -> String {
    format!(
        "FROM unnest($1::oid[], $2::tid[], $3::int4[], {values}) AS r(toid, tid, x, v, mt)
          WHERE t.ctid = ANY($2::tid[]) AND t.ctid >= $4 AND t.ctid <= $5
            AND t.ctid = r.tid AND t.tableoid = r.toid AND t.xmin = r.x AND NOT t.{}",
        src.sync.quoted()
    )
}

/// Marks the rows Zoho took as synced; returns how many still matched.
pub fn mark_synced(client: &mut SpiClient<'_>, src: &SourceTable, rows: &[(RowRef, u64, Option<String>)]) -> Result<u64, ZohoFdwError> {
    let mut sets = vec![format!("{} = true", src.sync.quoted())];
    if let Some(c) = &src.zoho_id {
        sets.push(format!("{} = CAST(r.v AS {})", c.quoted(), c.type_name));
    }
    if let Some(c) = &src.zoho_error {
        sets.push(format!("{} = NULL", c.quoted()));
    }
    if let Some(c) = &src.synced_at {
        sets.push(format!("{} = clock_timestamp()", c.quoted()));
    }
    // The row agrees with Zoho again: nothing changed here since.
    if let Some(c) = &src.changed_fields {
        sets.push(format!("{} = NULL", c.quoted()));
    }
    // A two-way table keeps the version it wrote: its notification coming
    // back is then no newer than the row.
    if let Some(c) = &src.version {
        sets.push(format!("{c} = coalesce(CAST(r.mt AS timestamptz), t.{c})", c = c.quoted()));
    }
    // Without a version column the versions are not passed (unnest pads).
    let values = if src.version.is_some() { "$6::int8[], $7::text[]" } else { "$6::int8[], NULL::text[]" };
    let sql = format!("UPDATE {} AS t SET {} {}", src.sql_name, sets.join(", "), matching_rows(src, values));
    // The version is Zoho's, not a local edit: the trigger must not take
    // its change for one.
    crate::sync::origin::from_zoho(src.oid, crate::sync::origin::FromZoho::AsWritten, || {
        let mut marked = 0;
        for chunk in rows.chunks(BATCH) {
            let refs: Vec<RowRef> = chunk.iter().map(|(r, _, _)| *r).collect();
            let ids: Vec<i64> = chunk.iter().map(|(_, id, _)| *id as i64).collect();
            let [toids, tids, xmins, lowest, highest] = refs_args(&refs);
            marked += if src.version.is_some() {
                let versions: Vec<Option<String>> = chunk.iter().map(|(_, _, v)| v.clone()).collect();
                run(client, &sql, [toids, tids, xmins, lowest, highest, ids.into(), versions.into()])?
            } else {
                run(client, &sql, [toids, tids, xmins, lowest, highest, ids.into()])?
            };
        }
        Ok(marked)
    })
}

/// Stores Zoho's reasons in `zoho_error` (when the table has it); the rows
/// stay pending.
pub fn record_rejections(client: &mut SpiClient<'_>, src: &SourceTable, rows: &[(RowRef, String)]) -> Result<u64, ZohoFdwError> {
    let Some(c) = &src.zoho_error else {
        return Ok(0);
    };
    let sql = format!("UPDATE {} AS t SET {} = r.v {}", src.sql_name, c.quoted(), matching_rows(src, "$6::text[], NULL::text[]"));
    let mut recorded = 0;
    for chunk in rows.chunks(BATCH) {
        let refs: Vec<RowRef> = chunk.iter().map(|(r, _)| *r).collect();
        let errors: Vec<String> = chunk.iter().map(|(_, e)| e.clone()).collect();
        let [toids, tids, xmins, lowest, highest] = refs_args(&refs);
        recorded += run(client, &sql, [toids, tids, xmins, lowest, highest, errors.into()])?;
    }
    Ok(recorded)
}

fn run<const N: usize>(client: &mut SpiClient<'_>, sql: &str, args: [DatumWithOid<'static>; N]) -> Result<u64, ZohoFdwError> {
    client
        .update(sql, None, &args)
        .map(|t| t.len() as u64)
        .map_err(|e| ZohoFdwError::Internal(format!("marking pushed rows: {e}")))
}
