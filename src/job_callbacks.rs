//! Bulk jobs that announce their end: while the worker's webhook listener
//! runs, a backend waiting for a Bulk Read or Bulk Write job gives Zoho a
//! callback URL (`zoho_fdw.webhook_url` with `zoho_fdw_job=<nonce>`) and
//! waits for the listener to see it, instead of polling.
//!
//! The places are in shared memory, lock-free: the listener answers on its
//! own thread, which must not take PostgreSQL locks. A nonce is 64 random
//! bits; a callback naming no waiting job is refused. Its body is not read:
//! the waiter reads the job's status from Zoho, so a forged callback costs
//! one status read and nothing else.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use pgrx::atomics::PgAtomic;
use pgrx::prelude::*;
use pgrx::shmem::PGRXSharedMemory;
use pgrx::{pg_shmem_init, pg_sys};
use zoho_api::job_wait::{JobCallback, JobCallbacks};

/// Jobs waited for at once across the cluster; a job past them is polled.
const PLACES: usize = 64;
/// The query parameter naming a job's place.
pub const PARAM: &str = "zoho_fdw_job";

#[repr(C)]
pub struct Places {
    /// The listener is up (set by the worker that bound it).
    listening: AtomicU32,
    nonce: [AtomicU64; PLACES],
    arrived: [AtomicU32; PLACES],
}

impl Default for Places {
    fn default() -> Places {
        // SAFETY: atomics of integers; all zero is every place free and no
        // listener.
        unsafe { std::mem::zeroed() }
    }
}

// SAFETY: only atomics, valid at any address and in any process.
unsafe impl PGRXSharedMemory for Places {}

// SAFETY: the name is unique to this extension; the memory is attached by
// pgrx's shmem hooks before any backend uses it.
static PLACES_SHM: PgAtomic<Places> = unsafe { PgAtomic::new(c"zoho_fdw_job_callbacks") };
static SHARED: AtomicBool = AtomicBool::new(false);

/// Called from _PG_init: reserves the places when preloading.
pub fn init() {
    // SAFETY: a plain read of a flag PostgreSQL sets while preloading.
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        pg_shmem_init!(PLACES_SHM);
        SHARED.store(true, Ordering::SeqCst);
    }
}

fn places() -> Option<&'static Places> {
    SHARED.load(Ordering::SeqCst).then(|| PLACES_SHM.get())
}

/// The worker's listener came up (true) or went (false).
pub fn set_listening(up: bool) {
    if let Some(p) = places() {
        p.listening.store(u32::from(up), Ordering::SeqCst);
    }
}

/// The listener's side: a callback for `nonce` arrived. False when no job
/// waits under it.
pub fn arrived(nonce: u64) -> bool {
    let Some(p) = places() else { return false };
    if nonce == 0 {
        return false;
    }
    match p.nonce.iter().position(|n| n.load(Ordering::Acquire) == nonce) {
        Some(i) => {
            p.arrived[i].fetch_add(1, Ordering::AcqRel);
            true
        }
        None => false,
    }
}

/// The nonce in a request's query string, if it names one.
pub fn nonce_in(query: &str) -> Option<u64> {
    query.split('&').find_map(|kv| kv.strip_prefix(PARAM)?.strip_prefix('=')).and_then(|v| u64::from_str_radix(v, 16).ok())
}

/// The callbacks this backend's clients offer Zoho: None without a
/// listener URL or without shared memory.
pub fn source() -> Option<Arc<dyn JobCallbacks>> {
    places()?;
    Some(Arc::new(Source))
}

struct Source;

impl JobCallbacks for Source {
    fn register(&self) -> Option<Box<dyn JobCallback>> {
        let p = places()?;
        if p.listening.load(Ordering::SeqCst) == 0 {
            return None;
        }
        let base = crate::gucs::webhook_url()?;
        let nonce = loop {
            let n: u64 = rand::random();
            if n != 0 {
                break n;
            }
        };
        let i = (0..PLACES).find(|&i| p.nonce[i].compare_exchange(0, nonce, Ordering::AcqRel, Ordering::Relaxed).is_ok())?;
        let seen = p.arrived[i].load(Ordering::Acquire);
        let sep = if base.contains('?') { '&' } else { '?' };
        Some(Box::new(Place { index: i, seen: AtomicU32::new(seen), url: format!("{base}{sep}{PARAM}={nonce:016x}") }))
    }
}

struct Place {
    index: usize,
    seen: AtomicU32,
    url: String,
}

impl JobCallback for Place {
    fn url(&self) -> &str {
        &self.url
    }

    fn take(&self) -> bool {
        let Some(p) = places() else { return false };
        let now = p.arrived[self.index].load(Ordering::Acquire);
        self.seen.swap(now, Ordering::AcqRel) != now
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Some(p) = places() {
            p.nonce[self.index].store(0, Ordering::Release);
        }
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::*;

    #[pgrx::pg_test]
    fn nonces_are_read_from_the_query_string() {
        assert_eq!(nonce_in("zoho_fdw_job=00000000000000ff"), Some(255));
        assert_eq!(nonce_in("a=1&zoho_fdw_job=10"), Some(16));
        assert_eq!(nonce_in("zoho_fdw_jobx=10"), None);
        assert_eq!(nonce_in("zoho_fdw_job=zz"), None);
        assert!(!arrived(0), "nonce 0 is a free place, never a job");
    }
}
