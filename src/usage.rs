//! API usage of every backend, counted in shared memory and written to
//! `zoho.api_usage_log` by the worker, so that usage is never written in a
//! user's transaction (a rolled-back push still spent its credits) and
//! the worker can hold scheduled work to `daily_credit_budget`.
//!
//! Calls are counted on the client's runtime threads, which must not take
//! PostgreSQL locks: the table is lock-free (atomics, open addressing on a
//! hash of server and endpoint). A slot unused for an hour of drains is
//! freed, so servers dropped or renamed do not fill the table for good.
//! Shared memory exists only when zoho_fdw is in shared_preload_libraries;
//! without it usage is not recorded.

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
/// Being freed by the drainer: writers look elsewhere.
const RETIRING: u32 = 3;
/// Drains (one a second) a slot may go unused before it is freed.
const IDLE_DRAINS: u64 = 3_600;

#[repr(C)]
struct Slot {
    state: AtomicU32,
    name_len: AtomicU32,
    key: AtomicU64,
    calls: AtomicU64,
    credits: AtomicU64,
    retries: AtomicU64,
    errors: AtomicU64,
    /// Writers between finding the slot and adding to it: the drainer frees
    /// a slot only when none is.
    writers: AtomicU32,
    /// The drain that last found counts in it.
    last_used: AtomicU64,
    /// `server` NUL `endpoint`.
    name: [AtomicU8; NAME_MAX],
}

#[repr(C)]
pub struct Counters {
    slots: [Slot; SLOTS],
    /// Drains so far: the drainer's clock.
    drains: AtomicU64,
}

impl Default for Counters {
    fn default() -> Counters {
        // SAFETY: atomics of integers; all-zero is every slot empty.
        unsafe { std::mem::zeroed() }
    }
}

// SAFETY: only atomics, valid at any address and in any process.
unsafe impl PGRXSharedMemory for Counters {}

// SAFETY: the name is unique to this extension; the memory is attached by
// pgrx's shmem hooks before any backend uses it.
static COUNTERS: PgAtomic<Counters> = unsafe { PgAtomic::new(c"zoho_fdw_usage") };
static SHARED: AtomicBool = AtomicBool::new(false);

/// Called from _PG_init: reserves the counters when preloading.
pub fn init() {
    // SAFETY: a plain read of a flag PostgreSQL sets while preloading.
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

    /// Its counts, leaving zero.
    fn take(&self) -> EndpointUsage {
        EndpointUsage {
            calls: self.calls.swap(0, Ordering::AcqRel),
            credits: self.credits.swap(0, Ordering::AcqRel),
            retries: self.retries.swap(0, Ordering::AcqRel),
            errors: self.errors.swap(0, Ordering::AcqRel),
        }
    }

    fn add(&self, d: &EndpointUsage) {
        self.calls.fetch_add(d.calls, Ordering::Relaxed);
        self.credits.fetch_add(d.credits, Ordering::Relaxed);
        self.retries.fetch_add(d.retries, Ordering::Relaxed);
        self.errors.fetch_add(d.errors, Ordering::Relaxed);
    }
}

/// A slot held for adding: the drainer does not free it meanwhile.
struct Held<'a>(&'a Slot);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.writers.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Counters {
    /// Adds `delta` to `name`'s slot; false when every slot is taken.
    fn add(&self, name: &[u8], delta: &EndpointUsage) -> bool {
        match self.slot(name) {
            Some(held) => {
                held.0.add(delta);
                true
            }
            None => false,
        }
    }

    /// Holds `s` for adding if it is ready and `name`'s. Announcing the
    /// writer first, then checking the state, pairs with the drainer's
    /// setting RETIRING, then checking for writers: one of them sees the
    /// other.
    fn hold<'a>(&self, s: &'a Slot, k: u64, name: &[u8]) -> Option<Held<'a>> {
        s.writers.fetch_add(1, Ordering::SeqCst);
        let held = Held(s);
        (s.state.load(Ordering::SeqCst) == READY && s.key.load(Ordering::Acquire) == k && s.name() == name).then_some(held)
    }

    /// The slot for `name`, claiming an empty one; None when all are taken.
    fn slot(&self, name: &[u8]) -> Option<Held<'_>> {
        let k = key(name);
        for i in 0..SLOTS {
            let s = &self.slots[(k as usize + i) % SLOTS];
            if s.state.compare_exchange(EMPTY, CLAIMING, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                for (dst, src) in s.name.iter().zip(name) {
                    dst.store(*src, Ordering::Relaxed);
                }
                s.name_len.store(name.len() as u32, Ordering::Release);
                s.key.store(k, Ordering::Release);
                s.last_used.store(self.drains.load(Ordering::Relaxed), Ordering::Relaxed);
                s.writers.fetch_add(1, Ordering::SeqCst);
                s.state.store(READY, Ordering::SeqCst);
                return Some(Held(s));
            }
            // A slot being claimed (for a few stores) may be ours: wait for
            // it, but not forever, as its claimer may have died.
            for _ in 0..1000 {
                if s.state.load(Ordering::Acquire) == READY {
                    break;
                }
                std::hint::spin_loop();
            }
            if let Some(held) = self.hold(s, k, name) {
                return Some(held);
            }
        }
        None
    }

    /// Takes every counter's value (leaving zero), and frees the slots
    /// unused for [`IDLE_DRAINS`] drains.
    fn drain(&self) -> Vec<Pending> {
        let now = self.drains.fetch_add(1, Ordering::Relaxed) + 1;
        let mut out: Vec<Pending> = Vec::new();
        for s in &self.slots {
            if s.state.load(Ordering::Acquire) != READY {
                continue;
            }
            // Read before the slot may be freed (and claimed for another name).
            let named = s.name();
            let mut usage = s.take();
            if usage != EndpointUsage::default() {
                s.last_used.store(now, Ordering::Relaxed);
            } else if now.saturating_sub(s.last_used.load(Ordering::Relaxed)) >= IDLE_DRAINS
                && s.state.compare_exchange(READY, RETIRING, Ordering::SeqCst, Ordering::SeqCst).is_ok()
            {
                if s.writers.load(Ordering::SeqCst) == 0 {
                    // Whatever was added since the take above.
                    usage = s.take();
                    s.state.store(EMPTY, Ordering::SeqCst);
                } else {
                    s.state.store(READY, Ordering::SeqCst);
                }
            }
            if usage == EndpointUsage::default() {
                continue;
            }
            let name = named;
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
    COUNTERS.get().drain()
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
        // All slots taken (hundreds of names in an hour): not counted.
        COUNTERS.get().add(&name, delta);
    }
}

/// The sink for a server's clients, when shared memory exists.
pub fn sink(server: &str) -> Option<Arc<dyn UsageSink>> {
    SHARED.load(Ordering::SeqCst).then(|| Arc::new(Sink { server: server.to_string() }) as Arc<dyn UsageSink>)
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use super::*;

    fn counters() -> Box<Counters> {
        Box::new(Counters::default())
    }

    fn one() -> EndpointUsage {
        EndpointUsage { calls: 1, credits: 2, retries: 0, errors: 0 }
    }

    #[pg_test]
    fn slots_unused_for_an_hour_of_drains_are_freed_for_other_names() {
        let c = counters();
        // Twice as many names as slots, a slot's worth an hour apart.
        for round in 0..2 {
            for i in 0..SLOTS {
                let name = format!("server{round}\0endpoint{i}");
                assert!(c.add(name.as_bytes(), &one()), "no slot for {name}");
            }
            let drained = c.drain();
            assert_eq!(drained.len(), SLOTS);
            assert!(drained.iter().all(|p| p.usage == one() && p.server == format!("server{round}")));
            for _ in 0..IDLE_DRAINS {
                assert!(c.drain().is_empty());
            }
        }
        assert!(c.slots.iter().all(|s| s.state.load(Ordering::SeqCst) == EMPTY));
    }

    #[pg_test]
    fn a_slot_in_use_is_kept_and_a_held_one_is_not_freed() {
        let c = counters();
        assert!(c.add(b"a\0x", &one()));
        for _ in 0..IDLE_DRAINS - 1 {
            c.drain();
        }
        // Used again just in time: kept, its count intact.
        assert!(c.add(b"a\0x", &one()));
        for _ in 0..IDLE_DRAINS - 1 {
            let d = c.drain();
            assert!(d.is_empty() || d[0].usage == one());
        }
        assert!(c.slots.iter().any(|s| s.state.load(Ordering::SeqCst) == READY));
        // A writer between finding the slot and adding keeps it.
        let held = c.slot(b"a\0x").unwrap();
        for _ in 0..IDLE_DRAINS + 1 {
            c.drain();
        }
        held.0.add(&one());
        drop(held);
        let d = c.drain();
        assert_eq!((d.len(), d[0].usage.clone()), (1, one()), "the held slot's count arrives");
    }
}
