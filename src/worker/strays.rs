//! Channels enabled in Zoho by a zoho_watch whose transaction then rolled
//! back: Zoho would post to the listener (and be refused) until they
//! expire. The aborting backend leaves them here, in shared memory, and
//! the worker disables them with the same server and user mapping. (Only a
//! top-level abort: a zoho_watch rolled back to a savepoint in a transaction
//! that commits leaves its channel until it expires.)

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};

use pgrx::atomics::PgAtomic;
use pgrx::prelude::*;
use pgrx::shmem::PGRXSharedMemory;
use pgrx::{pg_shmem_init, register_xact_callback, PgXactCallbackEvent};

const SLOTS: usize = 64;
const EMPTY: u32 = 0;
const CLAIMING: u32 = 1;
const READY: u32 = 2;

#[repr(C)]
struct Slot {
    state: AtomicU32,
    database: AtomicU32,
    server: AtomicU32,
    owner: AtomicU32,
    channel: AtomicI64,
}

#[repr(C)]
pub struct Strays {
    slots: [Slot; SLOTS],
}

impl Default for Strays {
    fn default() -> Strays {
        // SAFETY: atomics of integers; all-zero is every slot empty.
        unsafe { std::mem::zeroed() }
    }
}

// SAFETY: only atomics, valid at any address and in any process.
unsafe impl PGRXSharedMemory for Strays {}

// SAFETY: the name is unique to this extension; the memory is attached by
// pgrx's shmem hooks before any backend uses it.
static STRAYS: PgAtomic<Strays> = unsafe { PgAtomic::new(c"zoho_fdw_strays") };
static SHARED: AtomicBool = AtomicBool::new(false);

pub fn init() {
    // SAFETY: a plain read of a flag PostgreSQL sets while preloading.
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        pg_shmem_init!(STRAYS);
        SHARED.store(true, Ordering::SeqCst);
    }
}

/// If this transaction aborts, the channel is to be disabled.
pub(crate) fn disable_on_abort(server: pg_sys::Oid, owner: pg_sys::Oid, channel: i64) {
    if !SHARED.load(Ordering::SeqCst) {
        return;
    }
    register_xact_callback(PgXactCallbackEvent::Abort, move || {
        for s in &STRAYS.get().slots {
            if s.state.compare_exchange(EMPTY, CLAIMING, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                // SAFETY: a plain read of this backend's database oid.
                s.database.store(unsafe { pg_sys::MyDatabaseId }.into(), Ordering::Relaxed);
                s.server.store(server.into(), Ordering::Relaxed);
                s.owner.store(owner.into(), Ordering::Relaxed);
                s.channel.store(channel, Ordering::Relaxed);
                s.state.store(READY, Ordering::Release);
                return;
            }
        }
        // All slots taken: the channel lapses at its expiry instead.
    });
}

/// (server, owner, channel) of every stray left since the last call. The
/// worker works in one database; strays of others (whose server it cannot
/// see) are logged and left to expire.
pub(super) fn take() -> Vec<(pg_sys::Oid, pg_sys::Oid, i64)> {
    if !SHARED.load(Ordering::SeqCst) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for s in &STRAYS.get().slots {
        if s.state.load(Ordering::Acquire) == READY {
            let channel = s.channel.load(Ordering::Relaxed);
            // SAFETY: a plain read of this backend's database oid.
            if s.database.load(Ordering::Relaxed) == u32::from(unsafe { pg_sys::MyDatabaseId }) {
                out.push((s.server.load(Ordering::Relaxed).into(), s.owner.load(Ordering::Relaxed).into(), channel));
            } else {
                log!("zoho_fdw worker: channel {channel} of a rolled-back zoho_watch in another database stays until it expires");
            }
            s.state.store(EMPTY, Ordering::Release);
        }
    }
    out
}
