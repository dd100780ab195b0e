//! Tuning for a process that hosts simulators.

/// Puts every thread of this process on glibc's main malloc arena. Each
/// thread otherwise gets an arena of its own, and a thread arena grows by
/// one `mprotect` per page with no padding: a bulk job storing 25,000
/// records then spends a third of its CPU in the kernel. The main arena
/// grows by `brk` with padding, as in a PostgreSQL backend, which has one
/// thread. Call it first in `main`, before threads start; elsewhere it
/// does nothing.
pub fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable of glibc's allocator; arenas made
    // before the call stay valid.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
