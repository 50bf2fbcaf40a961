//! The policies a trace is replayed through, behind one small trait, and the replay loop.
//!
//! Every policy is a cache of unit-size entries started cold: slabcache itself, two peer
//! crates (moka and quick_cache), the exact [`Lru`] and Belady's [`Opt`]. A request is a
//! read; on a miss the key is inserted (cache-aside), and the policy decides what to evict
//! (or, for those with an admission filter, whether to keep the new key at all). After every
//! request the loop checks that the policy holds no more keys than its capacity.

use std::collections::hash_map::DefaultHasher;
use std::hash::BuildHasherDefault;

use super::lru::Lru;
use super::opt::Opt;
use super::{Error, Trace};

/// The value stored under every key: the replay measures which keys stay, not values.
const VALUE: &[u8] = b"trace-value";
/// How often (in requests) the replay loop reports progress.
const PROGRESS_EVERY: usize = 1 << 16;
/// The arena never binds before the entry limit does: 512 bytes per entry is several times
/// what an entry of an 8-byte key and [`VALUE`] occupies (a 40-byte header plus 24 bytes).
const ARENA_BYTES_PER_ENTRY: u64 = 512;
const MIN_ARENA_BYTES: u64 = 64 << 20;
/// slabcache's longest value: small, so pages are small (128 KiB) and plentiful.
const MAX_VALUE_BYTES: usize = 4096;

/// A hasher with fixed keys for the peer caches, whose admission sketches and shard choice
/// hash the keys: a per-run random seed would make their figures differ from run to run.
type FixedHasher = BuildHasherDefault<DefaultHasher>;

/// One cache under test.
pub trait Policy {
    /// Serves one request for `key`: true on a hit; on a miss the key is offered for
    /// insertion.
    fn access(&mut self, key: u64) -> bool;
    /// Keys held now, deferred maintenance included.
    fn entries(&self) -> u64;
}

/// The policies `traces` compares, in the order reports show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// slabcache, built for the capacity.
    Slabcache,
    /// moka.
    Moka,
    /// quick_cache.
    QuickCache,
    /// An exact LRU: the baseline every policy should beat.
    Lru,
    /// Belady's OPT: the optimum, which knows every future request.
    Opt,
}

impl PolicyKind {
    /// Every policy, in report order; OPT, the ceiling, last.
    pub const ALL: [PolicyKind; 5] = [
        PolicyKind::Slabcache,
        PolicyKind::Moka,
        PolicyKind::QuickCache,
        PolicyKind::Lru,
        PolicyKind::Opt,
    ];

    /// Whether replays of one trace can differ: slabcache draws its hash seed at random per
    /// cache; the peers here hash with fixed keys, and LRU and OPT hash nothing.
    pub fn varies(self) -> bool {
        self == PolicyKind::Slabcache
    }

    /// The name reports use.
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::Slabcache => "slabcache",
            PolicyKind::Moka => "moka",
            PolicyKind::QuickCache => "quick_cache",
            PolicyKind::Lru => "lru",
            PolicyKind::Opt => "opt",
        }
    }
}

/// Replays all of `trace` through a cold `kind` cache of `capacity` keys and returns its
/// hits. `progress` is told the requests served so far every few thousand requests.
pub fn replay(
    trace: &Trace,
    capacity: usize,
    kind: PolicyKind,
    mut progress: impl FnMut(usize),
) -> Result<u64, Error> {
    let mut policy = build(trace, capacity, kind)?;
    let mut hits = 0;
    for (i, &key) in trace.keys().iter().enumerate() {
        hits += u64::from(policy.access(key));
        let entries = policy.entries();
        if entries > capacity as u64 {
            return Err(Error::OverCapacity {
                trace: trace.name().to_string(),
                policy: kind,
                capacity,
                entries,
                request: i,
            });
        }
        if i % PROGRESS_EVERY == 0 {
            progress(i);
        }
    }
    Ok(hits)
}

fn build(trace: &Trace, capacity: usize, kind: PolicyKind) -> Result<Box<dyn Policy + '_>, Error> {
    Ok(match kind {
        PolicyKind::Slabcache => {
            Box::new(Engine::new(capacity).map_err(|error| Error::Engine {
                trace: trace.name().to_string(),
                capacity,
                error,
            })?)
        }
        PolicyKind::Moka => Box::new(
            moka::sync::Cache::builder()
                .max_capacity(capacity as u64)
                .build_with_hasher(FixedHasher::default()),
        ),
        PolicyKind::QuickCache => Box::new(quick_cache_with(capacity)),
        PolicyKind::Lru => Box::new(Lru::new(capacity)),
        PolicyKind::Opt => Box::new(Opt::new(capacity, trace.next_uses())),
    })
}

/// quick_cache of `capacity` keys in one shard. With several shards the capacity is split
/// between them and each share rounded up, so the whole could hold more keys than the others
/// are allowed; and the default shard count follows the machine's core count, which would
/// make the figures depend on the machine. One shard costs nothing here: the replay is
/// single-threaded.
fn quick_cache_with(capacity: usize) -> QuickCache {
    let options = quick_cache::OptionsBuilder::new()
        .estimated_items_capacity(capacity)
        .weight_capacity(capacity as u64)
        .shards(1)
        .build()
        .expect("a positive capacity in one shard is a valid quick_cache configuration");
    QuickCache::with_options(
        options,
        quick_cache::UnitWeighter,
        FixedHasher::default(),
        quick_cache::sync::DefaultLifecycle::default(),
    )
}

/// slabcache with an entry limit of the capacity and an arena that never binds first.
struct Engine {
    cache: slabcache::Cache,
    buf: Vec<u8>,
}

impl Engine {
    fn new(capacity: usize) -> Result<Engine, slabcache::Error> {
        let entries = capacity as u64;
        let cache = slabcache::Cache::builder()
            .max_entries(entries)
            .max_bytes(MIN_ARENA_BYTES.max(entries.saturating_mul(ARENA_BYTES_PER_ENTRY)))
            .max_value_bytes(MAX_VALUE_BYTES)
            .build()?;
        Ok(Engine {
            cache,
            buf: Vec::with_capacity(VALUE.len()),
        })
    }
}

impl Policy for Engine {
    fn access(&mut self, key: u64) -> bool {
        let key = key.to_le_bytes();
        if self.cache.get_into(&key, &mut self.buf).is_some() {
            return true;
        }
        self.cache
            .insert(&key, VALUE)
            .expect("an 8-byte key and a short value are always accepted");
        false
    }

    fn entries(&self) -> u64 {
        self.cache.len() as u64
    }
}

type Moka = moka::sync::Cache<u64, &'static [u8], FixedHasher>;

impl Policy for Moka {
    fn access(&mut self, key: u64) -> bool {
        if self.get(&key).is_some() {
            return true;
        }
        self.insert(key, VALUE);
        // Apply the insert (and any eviction it calls for) now, so the entry count obeys
        // the capacity after every request, as every other policy's does.
        self.run_pending_tasks();
        false
    }

    fn entries(&self) -> u64 {
        self.entry_count()
    }
}

type QuickCache =
    quick_cache::sync::Cache<u64, &'static [u8], quick_cache::UnitWeighter, FixedHasher>;

impl Policy for QuickCache {
    fn access(&mut self, key: u64) -> bool {
        if self.get(&key).is_some() {
            return true;
        }
        self.insert(key, VALUE);
        false
    }

    fn entries(&self) -> u64 {
        self.len() as u64
    }
}

impl Policy for Lru {
    fn access(&mut self, key: u64) -> bool {
        Lru::access(self, key)
    }

    fn entries(&self) -> u64 {
        self.len() as u64
    }
}

impl Policy for Opt<'_> {
    /// OPT knows the key from the trace position it keeps.
    fn access(&mut self, _key: u64) -> bool {
        Opt::access(self)
    }

    fn entries(&self) -> u64 {
        self.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small trace with reuse at several distances.
    fn sample() -> Trace {
        let keys = (0..5_000u64).map(|i| (i * i) % 331 + i % 7).collect();
        Trace::new("sample".to_string(), keys)
    }

    #[test]
    fn every_policy_obeys_its_capacity_and_lru_does_not_beat_opt() {
        let trace = sample();
        for capacity in [1, 16, 100] {
            let opt = replay(&trace, capacity, PolicyKind::Opt, |_| {}).unwrap();
            let lru = replay(&trace, capacity, PolicyKind::Lru, |_| {}).unwrap();
            assert!(lru <= opt, "at {capacity}: LRU {lru} hits, OPT {opt}");
            // `replay` fails if a cache ever holds more than its capacity. (Caches with an
            // admission filter may beat OPT, which admits every key: see the `opt` module.)
            for kind in PolicyKind::ALL {
                replay(&trace, capacity, kind, |_| {}).unwrap();
            }
        }
    }

    #[test]
    fn a_cache_that_holds_everything_misses_only_once_per_key() {
        let trace = sample();
        let distinct = trace
            .keys()
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len() as u64;
        for kind in PolicyKind::ALL {
            let hits = replay(&trace, 1_000, kind, |_| {}).unwrap();
            assert_eq!(
                hits,
                trace.keys().len() as u64 - distinct,
                "{}",
                kind.name()
            );
        }
    }

    #[test]
    fn progress_is_reported() {
        let keys = vec![1; PROGRESS_EVERY * 2 + 1];
        let mut seen = Vec::new();
        replay(
            &Trace::new("t".to_string(), keys),
            1,
            PolicyKind::Lru,
            |i| seen.push(i),
        )
        .unwrap();
        assert_eq!(seen, [0, PROGRESS_EVERY, PROGRESS_EVERY * 2]);
    }
}
