//! Waking the worker when rows become pending, at commit, so that a
//! near-real-time push does not wait for its next poll. A background
//! worker cannot LISTEN (it has no client connection to deliver NOTIFY
//! on), so the trigger registers a commit callback that sets a flag in
//! shared memory and the worker's latch.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use pgrx::atomics::PgAtomic;
use pgrx::prelude::*;
use pgrx::shmem::PGRXSharedMemory;
use pgrx::{pg_shmem_init, pg_sys, register_xact_callback, PgXactCallbackEvent};

#[derive(Default)]
#[repr(C)]
pub struct Wake {
    /// The worker's latch (shared memory: the same address in every backend).
    latch: AtomicUsize,
    pushes: AtomicBool,
}

// SAFETY: only atomics (the latch as an address), valid at any address and
// in any process.
unsafe impl PGRXSharedMemory for Wake {}

// SAFETY: the name is unique to this extension; the memory is attached by
// pgrx's shmem hooks before any backend uses it.
static WAKE: PgAtomic<Wake> = unsafe { PgAtomic::new(c"zoho_fdw_wake") };
static SHARED: AtomicBool = AtomicBool::new(false);

thread_local! {
    static REGISTERED: Cell<bool> = const { Cell::new(false) };
}

pub fn init() {
    // SAFETY: a plain read of a flag PostgreSQL sets while preloading.
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        pg_shmem_init!(WAKE);
        SHARED.store(true, Ordering::SeqCst);
    }
}

/// The worker says where its latch is.
pub(super) fn set_worker_latch() {
    if SHARED.load(Ordering::SeqCst) {
        // SAFETY: MyProc is this process's PGPROC (a background worker has one);
        // only its latch's address is taken.
        let latch = unsafe { &raw mut (*pg_sys::MyProc).procLatch };
        WAKE.get().latch.store(latch as usize, Ordering::Release);
    }
}

/// Takes the "rows became pending" flag.
pub(super) fn take_pushes() -> bool {
    SHARED.load(Ordering::SeqCst) && WAKE.get().pushes.swap(false, Ordering::AcqRel)
}

/// Rows became pending in this transaction: wake the worker if it commits.
pub(crate) fn pushes_at_commit() {
    if !SHARED.load(Ordering::SeqCst) || REGISTERED.get() {
        return;
    }
    REGISTERED.set(true);
    register_xact_callback(PgXactCallbackEvent::Commit, || {
        REGISTERED.set(false);
        let w = WAKE.get();
        w.pushes.store(true, Ordering::Release);
        let latch = w.latch.load(Ordering::Acquire);
        if latch != 0 {
            // SAFETY: `latch` is the worker's procLatch, in its PGPROC in
            // shared memory (the same address in every backend; a PGPROC
            // outlives its process, so a stale one at worst wakes another
            // process); SetLatch may be called from any process.
            unsafe { pg_sys::SetLatch(latch as *mut pg_sys::Latch) };
        }
    });
    register_xact_callback(PgXactCallbackEvent::Abort, || REGISTERED.set(false));
}
