//! Who is writing: a user, or the extension applying what Zoho holds. The
//! `zoho_mark_pending` trigger asks, so a row written from Zoho is not
//! marked pending and pushed back (an echo that burns credits).
//!
//! A backend-local flag, set only around the extension's own statements
//! and naming the table they write: no GUC or SQL a user can write reaches
//! it, and a user's trigger cascading into another table is a user's write.

use std::cell::Cell;

use pgrx::pg_sys;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FromZoho {
    /// The rows now hold what Zoho holds: the trigger marks them synced.
    Synced,
    /// The statement sets the sync column itself (a two-way table's
    /// conflicts): the trigger leaves the row alone.
    AsWritten,
}

extern "C-unwind" {
    /// catalog/partition.h, which pgrx does not bind: the partitioned
    /// tables above a partition, nearest first.
    fn get_partition_ancestors(relid: pg_sys::Oid) -> *mut pg_sys::List;
}

thread_local! {
    static WRITER: Cell<Option<(pg_sys::Oid, FromZoho)>> = const { Cell::new(None) };
    /// The last partition asked about: (partition, target, whether it is
    /// one of target's), so a COPY into a partitioned table walks the
    /// catalog once per partition and statement, not once per row.
    static PARTITION_OF: Cell<Option<(pg_sys::Oid, pg_sys::Oid, bool)>> = const { Cell::new(None) };
}

/// How a row of `rel` is being written from Zoho, for the trigger; None
/// for a user's write. A partition of the table written counts as it.
pub fn current(rel: pg_sys::Oid, is_partition: bool) -> Option<FromZoho> {
    let (target, how) = WRITER.with(Cell::get)?;
    if rel == target {
        return Some(how);
    }
    if !is_partition {
        return None;
    }
    let under = match PARTITION_OF.with(Cell::get) {
        Some((r, t, under)) if r == rel && t == target => under,
        _ => {
            let under = partition_ancestors(rel).contains(&target);
            PARTITION_OF.with(|p| p.set(Some((rel, target, under))));
            under
        }
    };
    under.then_some(how)
}

/// The partitioned tables above partition `rel`, nearest first.
pub(crate) fn partition_ancestors(rel: pg_sys::Oid) -> Vec<pg_sys::Oid> {
    // SAFETY: `rel` is an open relation of the caller's, so its catalog rows
    // exist; the list is allocated in the current memory context and only
    // read here.
    let ancestors = unsafe { pgrx::PgList::<pg_sys::Oid>::from_pg(pg_sys::ffi::pg_guard_ffi_boundary(|| get_partition_ancestors(rel))) };
    ancestors.iter_oid().collect()
}

/// Runs `f`, whose writes into `target` come from Zoho; the flag is
/// restored however `f` ends (an ERROR unwinds through here as a panic).
pub fn from_zoho<R>(target: pg_sys::Oid, how: FromZoho, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<(pg_sys::Oid, FromZoho)>);
    impl Drop for Restore {
        fn drop(&mut self) {
            WRITER.with(|w| w.set(self.0));
        }
    }
    // Partitions may have been attached or detached since the last write.
    PARTITION_OF.with(|p| p.set(None));
    let _restore = Restore(WRITER.with(|w| w.replace(Some((target, how)))));
    f()
}
