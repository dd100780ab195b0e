//! One access token per (server, credential) for every backend and the
//! worker, with Zoho's refresh budget counted across all of them
//! (zoho-api.md §2.4): a table in shared memory behind an LWLock.
//!
//! Shared memory exists only when zoho_fdw is in shared_preload_libraries;
//! without it each backend keeps its own token (and its own budget count),
//! which works but refreshes more often.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pgrx::lwlock::PgLwLock;
use pgrx::shmem::PGRXSharedMemory;
use pgrx::prelude::*;
use pgrx::{pg_shmem_init, pg_sys};
use zoho_api::{AccessToken, MemoryTokenStore, RefreshBudget, Secret, TokenStore};

const SLOTS: usize = 64;
const TOKEN_MAX: usize = 1024;
const DOMAIN_MAX: usize = 256;
/// A zgid is a number of about eleven digits.
const ZGID_MAX: usize = 32;

#[derive(Clone, Copy)]
#[repr(C)]
struct Slot {
    key: u64,
    used: bool,
    has_token: bool,
    token_len: u16,
    domain_len: u16,
    obtained: i64,
    expires: i64,
    /// Unix seconds of recent refreshes; 0 is empty.
    refreshes: [i64; RefreshBudget::LIMIT],
    token: [u8; TOKEN_MAX],
    domain: [u8; DOMAIN_MAX],
    /// The org's zgid (0 bytes: not read yet); it outlives the token.
    zgid_len: u8,
    zgid: [u8; ZGID_MAX],
}

#[derive(Clone, Copy)]
#[repr(C)]
pub struct Table {
    slots: [Slot; SLOTS],
}

impl Default for Table {
    fn default() -> Table {
        // SAFETY: every field is an integer, a bool or a byte array: all-zero is
        // "empty".
        unsafe { std::mem::zeroed() }
    }
}

// SAFETY: integers, bools and byte arrays, no pointers: valid at any address
// and in any process; every access holds the LWLock.
unsafe impl PGRXSharedMemory for Table {}

// SAFETY: the name is unique to this extension; the lock and memory are
// attached by pgrx's shmem hooks before any backend uses them.
static TOKENS: PgLwLock<Table> = unsafe { PgLwLock::new(c"zoho_fdw_tokens") };
static SHARED: AtomicBool = AtomicBool::new(false);

/// Called from _PG_init: reserves the table when preloading.
pub fn init() {
    // SAFETY: a plain read of a flag PostgreSQL sets while preloading.
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        pg_shmem_init!(TOKENS);
        SHARED.store(true, Ordering::SeqCst);
    }
}

fn secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn time(s: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(s.max(0) as u64)
}

fn hash(key: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    h.finish().max(1)
}

impl Table {
    fn find(&self, key: u64) -> Option<usize> {
        self.slots.iter().position(|s| s.used && s.key == key)
    }

    /// The slot for `key`, taking a free one or the one expiring first.
    fn slot_for(&mut self, key: u64) -> &mut Slot {
        let i = self.find(key).unwrap_or_else(|| {
            self.slots.iter().position(|s| !s.used).unwrap_or_else(|| {
                (0..SLOTS).min_by_key(|&i| self.slots[i].expires).expect("slots")
            })
        });
        let slot = &mut self.slots[i];
        if !(slot.used && slot.key == key) {
            // SAFETY: every field of Slot is an integer, a bool or a byte
            // array: all-zero is an empty slot.
            *slot = unsafe { std::mem::zeroed() };
            slot.used = true;
            slot.key = key;
        }
        slot
    }
}

pub struct SharedTokenStore;

impl TokenStore for SharedTokenStore {
    fn get(&self, key: &str) -> Option<AccessToken> {
        let table = TOKENS.share();
        let s = &table.slots[table.find(hash(key))?];
        if !s.has_token {
            return None;
        }
        Some(AccessToken {
            token: Secret::new(String::from_utf8_lossy(&s.token[..s.token_len as usize]).into_owned()),
            obtained_at: time(s.obtained),
            expires_at: time(s.expires),
            api_domain: (s.domain_len > 0).then(|| String::from_utf8_lossy(&s.domain[..s.domain_len as usize]).into_owned()),
        })
    }

    fn put(&self, key: &str, token: &AccessToken) {
        let value = token.token.expose().as_bytes();
        let domain = token.api_domain.as_deref().unwrap_or("").as_bytes();
        if value.len() > TOKEN_MAX || domain.len() > DOMAIN_MAX {
            return; // not shareable; the caller keeps using its own copy
        }
        let mut table = TOKENS.exclusive();
        let s = table.slot_for(hash(key));
        s.token[..value.len()].copy_from_slice(value);
        s.token_len = value.len() as u16;
        s.domain[..domain.len()].copy_from_slice(domain);
        s.domain_len = domain.len() as u16;
        s.obtained = secs(token.obtained_at);
        s.expires = secs(token.expires_at);
        s.has_token = true;
    }

    fn discard(&self, key: &str, token: &Secret) {
        let mut table = TOKENS.exclusive();
        if let Some(i) = table.find(hash(key)) {
            let s = &mut table.slots[i];
            if s.has_token && &s.token[..s.token_len as usize] == token.expose().as_bytes() {
                s.has_token = false;
                s.token = [0; TOKEN_MAX];
            }
        }
    }

    fn org_zgid(&self, key: &str) -> Option<String> {
        let table = TOKENS.share();
        let s = &table.slots[table.find(hash(key))?];
        (s.zgid_len > 0).then(|| String::from_utf8_lossy(&s.zgid[..s.zgid_len as usize]).into_owned())
    }

    fn put_org_zgid(&self, key: &str, zgid: &str) {
        let value = zgid.as_bytes();
        if value.is_empty() || value.len() > ZGID_MAX {
            return; // each client reads its own
        }
        let mut table = TOKENS.exclusive();
        let s = table.slot_for(hash(key));
        s.zgid[..value.len()].copy_from_slice(value);
        s.zgid_len = value.len() as u8;
    }

    fn claim_refresh(&self, key: &str, now: SystemTime) -> Result<(), Duration> {
        let mut table = TOKENS.exclusive();
        let s = table.slot_for(hash(key));
        let mut budget = RefreshBudget::from_times(s.refreshes.iter().filter(|&&t| t > 0).map(|&t| time(t)));
        let claimed = budget.claim(now);
        s.refreshes = [0; RefreshBudget::LIMIT];
        for (slot, t) in s.refreshes.iter_mut().zip(budget.times()) {
            *slot = secs(*t);
        }
        claimed
    }
}

/// The store this backend uses.
pub fn store() -> Arc<dyn TokenStore> {
    static LOCAL: OnceLock<Arc<MemoryTokenStore>> = OnceLock::new();
    if SHARED.load(Ordering::SeqCst) {
        Arc::new(SharedTokenStore)
    } else {
        LOCAL.get_or_init(|| Arc::new(MemoryTokenStore::default())).clone()
    }
}
