//! The counters of a [`Backed`](super::Backed) cache and their snapshot, [`BackedStats`].

use crate::sync::{AtomicU64, Ordering};

/// What a `Backed` counts.
#[derive(Clone, Copy)]
pub(crate) enum BackedCounter {
    Load,
    LoadFailure,
    Refresh,
    StaleServed,
    NegativeHit,
    Flushed,
    Coalesced,
    Retried,
    Failed,
}

const COUNTERS: usize = 9;

/// Plain shared counters: they count loads, refreshes and source writes, each far dearer
/// than the increment, and hits only on the stale and negative paths.
#[derive(Default)]
pub(crate) struct BackedCounters([AtomicU64; COUNTERS]);

impl BackedCounters {
    pub(crate) fn add(&self, counter: BackedCounter, n: u64) {
        self.0[counter as usize].fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn bump(&self, counter: BackedCounter) {
        self.add(counter, 1);
    }

    pub(crate) fn get(&self, counter: BackedCounter) -> u64 {
        self.0[counter as usize].load(Ordering::Relaxed)
    }
}

/// A snapshot of a `Backed`'s counters, from [`Backed::stats`](super::Backed::stats). The
/// cache's own counters are in `backed.cache().stats()`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackedStats {
    /// Loads from the source (for a miss, a refresh, or an expired entry).
    pub loads: u64,
    /// Loads that failed or panicked.
    pub load_failures: u64,
    /// Background refreshes run (refresh-ahead, early expiry, stale-while-revalidate).
    pub refreshes: u64,
    /// Reads answered with a stale value while a refresh ran.
    pub stale_served: u64,
    /// Reads answered "not found" from a remembered negative result, without the source.
    pub negative_hits: u64,
    /// Keys with a write-behind write not yet confirmed by the source.
    pub queue_depth: u64,
    /// Write-behind writes the source confirmed.
    pub flushed: u64,
    /// Write-behind writes folded into a queued write of the same key.
    pub coalesced: u64,
    /// Failed write-behind batch attempts that were retried.
    pub retried: u64,
    /// Write-behind writes given up with their batch after its last attempt (each one
    /// reported to the `on_write_error` callback).
    pub failed: u64,
}
