//! A cache's counters as C sees them: `slabcache_stats_t`, its versions
//! (`args::Versioned`) and `slabcache_stats`.

use std::ffi::c_int;
use std::mem::size_of;

use slabcache::Stats;

use crate::args::{handle, write_sized, Versioned};
use crate::guard::run;
use crate::slabcache_t;

/// A snapshot of a cache's counters and sizes, from `slabcache_stats`.
///
/// It begins with its own size, like `slabcache_options_t`: set `size` to
/// `sizeof(slabcache_stats_t)` before the call. This library also takes the size of the
/// version before `loads` was added (which ended with `fixed_overhead_bytes`), and writes only
/// the fields that version has.
#[repr(C)]
pub struct slabcache_stats {
    /// `sizeof(slabcache_stats_t)`, set by the caller.
    pub size: usize,
    /// Reads that found a live entry (including `SLABCACHE_BUFFER_TOO_SMALL` ones).
    pub hits: u64,
    /// Reads that found nothing (absent or expired).
    pub misses: u64,
    /// Writes that created an entry.
    pub inserts: u64,
    /// Writes that replaced an entry.
    pub updates: u64,
    /// Entries removed by `slabcache_delete`, `slabcache_delete_if_version` or
    /// `slabcache_clear`.
    pub removals: u64,
    /// Entries dropped to make room.
    pub evictions: u64,
    /// Expired entries whose memory was reclaimed.
    pub expirations: u64,
    /// Conditional writes and deletes refused for a version mismatch.
    pub cas_failures: u64,
    /// Entries resident now, including expired ones not yet reclaimed.
    pub entries: u64,
    /// Key and value bytes of the resident entries.
    pub payload_bytes: u64,
    /// Arena bytes handed to size classes (pages in use); never above `max_bytes`.
    pub arena_bytes_used: u64,
    /// The arena budget the cache was built with.
    pub max_bytes: u64,
    /// Memory outside the arena: the index, the page table, the eviction policy's tables.
    pub fixed_overhead_bytes: u64,
    /// Loaders run by the single-flight read-through (one per load, however many callers
    /// shared it).
    pub loads: u64,
    /// Read-through callers that waited for another caller's loader instead of running
    /// their own.
    pub load_waits: u64,
    /// Events whose delivery to the listener panicked inside the library (a bug; 0 unless
    /// there is one): contained, and the next event still delivered. A C listener must not
    /// unwind, so it never adds to this.
    pub listener_panics: u64,
}

impl Versioned for slabcache_stats {
    // The version before the read-through counters, whose last field was
    // `fixed_overhead_bytes`.
    const EARLIER_ENDS: &'static [usize] =
        &[std::mem::offset_of!(slabcache_stats, fixed_overhead_bytes) + size_of::<u64>()];
}

/// A snapshot of a cache's counters (see `struct slabcache_stats`).
pub type slabcache_stats_t = slabcache_stats;

/// Fills `*out` with a snapshot of the cache's counters. Set `out->size` to
/// `sizeof(slabcache_stats_t)` first (a program built against an earlier header passes its
/// version's size, and gets that version's fields). Each counter is exact; under concurrent
/// traffic they are not all read at the same instant.
///
/// Returns `SLABCACHE_OK`, or `SLABCACHE_INVALID_ARGUMENT` (nothing written) for a NULL
/// `cache` or `out`, or an `out->size` that is neither `sizeof(slabcache_stats_t)` nor an
/// earlier version's.
///
/// # Safety
///
/// `cache` is NULL or a live cache; `out` is NULL or points at an initialised `size_t` (its
/// `size`), and at a whole writable struct of the version that `size` names when it names
/// one.
#[no_mangle]
pub unsafe extern "C" fn slabcache_stats(
    cache: *const slabcache_t,
    out: *mut slabcache_stats_t,
) -> c_int {
    run(|| {
        // SAFETY: `cache` is NULL or a live cache (this function's contract).
        let cache = unsafe { handle(cache) }?;
        let stats = c_snapshot!(cache.stats(), Stats => slabcache_stats {
            hits,
            misses,
            inserts,
            updates,
            removals,
            evictions,
            expirations,
            cas_failures,
            entries,
            payload_bytes,
            arena_bytes_used,
            max_bytes,
            fixed_overhead_bytes,
            loads,
            load_waits,
            listener_panics,
        });
        // SAFETY: `out` is NULL or begins with an initialised `size`, followed by the rest of
        // its version's struct when that size names one (this function's contract).
        unsafe { write_sized(out, &stats) }
    })
}
