//! API usage of every backend, counted in shared memory and written to
//! `zoho.api_usage_log` by the worker, so that usage is never written in a
//! user's transaction (a rolled-back push still spent its credits) and
//! the worker can hold scheduled work to `daily_credit_budget`.
//!
//! Calls are counted on the client's runtime threads, which must not take
//! PostgreSQL locks: the table is lock-free (atomics, open addressing on a
//! hash of server and endpoint). Shared memory exists only when zoho_fdw
//! is in shared_preload_libraries; without it usage is not recorded.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use pgrx::atomics::PgAtomic;
use pgrx::prelude::*;
use pgrx::shmem::PGRXSharedMemory;
use pgrx::{pg_shmem_init, pg_sys};
use zoho_api::usage::{EndpointUsage, UsageSink};

const SLOTS: usize = 256;
const NAME_MAX: usize = 160;
const EMPTY: u32 = 0;
const CLAIMING: u32 = 1;
const READY: u32 = 2;

#[repr(C)]
struct Slot {
    state: AtomicU32,
    name_len: AtomicU32,
    key: AtomicU64,
    calls: AtomicU64,
    credits: AtomicU64,
    retries: AtomicU64,
    errors: AtomicU64,
    /// `server` NUL `endpoint`.
    name: [AtomicU8; NAME_MAX],
}

#[repr(C)]
pub struct Counters {
    slots: [Slot; SLOTS],
}

impl Default for Counters {
    fn default() -> Counters {
        // Atomics of integers: all-zero is every slot empty.
        unsafe { std::mem::zeroed() }
    }
}

unsafe impl PGRXSharedMemory for Counters {}

static COUNTERS: PgAtomic<Counters> = unsafe { PgAtomic::new(c"zoho_fdw_usage") };
static SHARED: AtomicBool = AtomicBool::new(false);

/// Called from _PG_init: reserves the counters when preloading.
pub fn init() {
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        pg_shmem_init!(COUNTERS);
        SHARED.store(true, Ordering::SeqCst);
    }
}

fn key(name: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    h.finish()
}

impl Slot {
    fn name(&self) -> Vec<u8> {
        let n = (self.name_len.load(Ordering::Acquire) as usize).min(NAME_MAX);
        self.name[..n].iter().map(|b| b.load(Ordering::Relaxed)).collect()
    }

    fn add(&self, d: &EndpointUsage) {
        self.calls.fetch_add(d.calls, Ordering::Relaxed);
        self.credits.fetch_add(d.credits, Ordering::Relaxed);
        self.retries.fetch_add(d.retries, Ordering::Relaxed);
        self.errors.fetch_add(d.errors, Ordering::Relaxed);
    }
}

impl Counters {
    /// The slot for `name`, claiming an empty one; None when all are taken.
    fn slot(&self, name: &[u8]) -> Option<&Slot> {
        let k = key(name);
        for i in 0..SLOTS {
            let s = &self.slots[(k as usize + i) % SLOTS];
            if s.state.compare_exchange(EMPTY, CLAIMING, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                for (dst, src) in s.name.iter().zip(name) {
                    dst.store(*src, Ordering::Relaxed);
                }
                s.name_len.store(name.len() as u32, Ordering::Release);
                s.key.store(k, Ordering::Release);
                s.state.store(READY, Ordering::Release);
                return Some(s);
            }
            // A slot being claimed (for a few stores) may be ours: wait for
            // it, but not forever, as its claimer may have died.
            for _ in 0..1000 {
                if s.state.load(Ordering::Acquire) == READY {
                    break;
                }
                std::hint::spin_loop();
            }
            if s.state.load(Ordering::Acquire) == READY && s.key.load(Ordering::Acquire) == k && s.name() == name {
                return Some(s);
            }
        }
        None
    }
}

/// One row of usage not yet written to the catalog.
pub struct Pending {
    pub server: String,
    pub endpoint: String,
    pub usage: EndpointUsage,
}

/// Takes every counter's value (leaving zero), for the worker to write.
pub fn drain() -> Vec<Pending> {
    if !SHARED.load(Ordering::SeqCst) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for s in &COUNTERS.get().slots {
        if s.state.load(Ordering::Acquire) != READY {
            continue;
        }
        let usage = EndpointUsage {
            calls: s.calls.swap(0, Ordering::AcqRel),
            credits: s.credits.swap(0, Ordering::AcqRel),
            retries: s.retries.swap(0, Ordering::AcqRel),
            errors: s.errors.swap(0, Ordering::AcqRel),
        };
        if usage == EndpointUsage::default() {
            continue;
        }
        let name = s.name();
        let mut parts = name.splitn(2, |b| *b == 0);
        let server = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
        let endpoint = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
        // Two backends racing for a slot may have claimed two for one name.
        match out.iter_mut().find(|p: &&mut Pending| p.server == server && p.endpoint == endpoint) {
            Some(p) => {
                p.usage.calls += usage.calls;
                p.usage.credits += usage.credits;
                p.usage.retries += usage.retries;
                p.usage.errors += usage.errors;
            }
            None => out.push(Pending { server, endpoint, usage }),
        }
    }
    out
}

/// Puts drained counts back (their write failed).
pub fn restore(pending: &[Pending]) {
    for p in pending {
        Sink { server: p.server.clone() }.record(&p.endpoint, &p.usage);
    }
}

/// Counts a server's calls into shared memory.
pub struct Sink {
    server: String,
}

impl UsageSink for Sink {
    fn record(&self, endpoint: &str, delta: &EndpointUsage) {
        let mut name = Vec::with_capacity(self.server.len() + 1 + endpoint.len());
        name.extend_from_slice(self.server.as_bytes());
        name.push(0);
        name.extend_from_slice(endpoint.as_bytes());
        name.truncate(NAME_MAX);
        if let Some(slot) = COUNTERS.get().slot(&name) {
            slot.add(delta);
        }
    }
}

/// The sink for a server's clients, when shared memory exists.
pub fn sink(server: &str) -> Option<Arc<dyn UsageSink>> {
    SHARED.load(Ordering::SeqCst).then(|| Arc::new(Sink { server: server.to_string() }) as Arc<dyn UsageSink>)
}
