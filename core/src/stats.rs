//! Operation counters and the [`Stats`] snapshot.
//!
//! Counters are striped: each thread adds to the stripe it was assigned on first use, each
//! stripe on its own cache line, so a hot get never writes a cache line another core is
//! writing. A snapshot sums the stripes; under concurrent traffic it is a consistent-enough
//! view (each counter exact, the set of counters not taken at one instant).

use crate::sync::{self, AtomicU64, CachePadded, Ordering};

/// The events the cache counts.
#[derive(Clone, Copy)]
pub(crate) enum Counter {
    Hit,
    Miss,
    Insert,
    Update,
    Removal,
    Eviction,
    Expiration,
    CasFailure,
    /// Key + value bytes resident; a wrapping sum of signed changes.
    PayloadBytes,
    Load,
    LoadWait,
}

const COUNTERS: usize = 11;
const STRIPES: usize = 16;

pub(crate) struct Counters {
    stripes: Box<[CachePadded<[AtomicU64; COUNTERS]>]>,
}

impl Counters {
    pub(crate) fn new() -> Self {
        Counters {
            stripes: (0..STRIPES)
                .map(|_| CachePadded(Default::default()))
                .collect(),
        }
    }

    #[inline]
    pub(crate) fn add(&self, counter: Counter, n: u64) {
        self.own_stripe(counter).fetch_add(n, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn bump(&self, counter: Counter) {
        self.add(counter, 1);
    }

    /// The calling thread's stripe of `counter`. Read just before a bump, its value numbers
    /// the event, nearly always uniquely (another thread of the stripe may read the same value
    /// before either bumps): the hot-key tracker samples hits by that number.
    #[inline]
    pub(crate) fn own_stripe(&self, counter: Counter) -> &AtomicU64 {
        &self.stripes[sync::thread_stripe() % STRIPES].0[counter as usize]
    }

    /// Adds a signed amount, for gauges such as [`Counter::PayloadBytes`].
    pub(crate) fn add_signed(&self, counter: Counter, delta: i64) {
        self.add(counter, delta as u64);
    }

    pub(crate) fn sum(&self, counter: Counter) -> u64 {
        self.stripes.iter().fold(0u64, |acc, s| {
            acc.wrapping_add(s.0[counter as usize].load(Ordering::Relaxed))
        })
    }
}

/// A snapshot of a cache's counters and sizes, from [`Cache::stats`](crate::Cache::stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Reads that found a live entry.
    pub hits: u64,
    /// Reads that found nothing (absent or expired).
    pub misses: u64,
    /// Writes that created an entry.
    pub inserts: u64,
    /// Writes that replaced an entry.
    pub updates: u64,
    /// Entries removed by `remove`, `remove_if_version` or `clear`.
    pub removals: u64,
    /// Entries dropped to make room.
    pub evictions: u64,
    /// Expired entries whose memory was reclaimed.
    pub expirations: u64,
    /// Conditional writes (`compare_and_swap`, `remove_if_version`) refused for a version mismatch.
    pub cas_failures: u64,
    /// Entries resident now, including expired ones not yet reclaimed.
    pub entries: u64,
    /// Key and value bytes of the resident entries.
    pub payload_bytes: u64,
    /// Arena bytes handed to size classes (pages in use); never above `max_bytes`.
    pub arena_bytes_used: u64,
    /// The arena budget the cache was built with.
    pub max_bytes: u64,
    /// Memory outside the arena: the index's main table, the page table, the reference bits
    /// and the class table (fixed at build time), plus what grows with the entries: the
    /// index's overflow buckets (at most one 64-byte bucket per 7 entries, kept until the cache
    /// is dropped) and the eviction policy's handle tables, rings and frequency sketches (a
    /// handle of 8 bytes and a ring slot of 4 per entry, plus 8 sketch bytes per entry of a
    /// class's capacity).
    pub fixed_overhead_bytes: u64,
    /// Loaders run by `get_or_load` and its variants (one per flight, however many callers
    /// shared it).
    pub loads: u64,
    /// Callers of `get_or_load` that waited for another caller's loader instead of running
    /// their own.
    pub load_waits: u64,
    /// Calls of the listener ([`CacheBuilder::listener`](crate::CacheBuilder::listener)) that
    /// panicked; each panic was caught and the event after it still delivered.
    pub listener_panics: u64,
}

impl Stats {
    /// `hits / (hits + misses)`, or 0 before the first read.
    pub fn hit_ratio(&self) -> f64 {
        let reads = self.hits + self.misses;
        if reads == 0 {
            0.0
        } else {
            self.hits as f64 / reads as f64
        }
    }
}
