//! The caches the throughput and memory benchmarks compare, behind one interface.
//!
//! Every contender holds 16-byte keys and 64-byte values. The peers store a value as an
//! `Arc<[u8]>`, their natural form for shared bytes, so a hit clones a pointer; slabcache
//! copies the value out into the caller's buffer, as its API does. Each is built for a
//! capacity in entries (`stretto`: in cost units of 1 per entry).

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

/// Length of every benchmark key, in bytes.
pub const KEY_LEN: usize = 16;
/// Length of every benchmark value, in bytes.
pub const VALUE_LEN: usize = 64;
/// A benchmark key.
pub type Key = [u8; KEY_LEN];

/// Key number `id` as 16 bytes (its little-endian bytes, then a scrambled copy, so that no
/// cache can get away with hashing only half the key).
pub fn key(id: u64) -> Key {
    let mut key = [0u8; KEY_LEN];
    key[..8].copy_from_slice(&id.to_le_bytes());
    key[8..].copy_from_slice(&id.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
    key
}

/// The value stored under key number `id`.
pub fn value(id: u64) -> [u8; VALUE_LEN] {
    let mut value = [0u8; VALUE_LEN];
    for (i, chunk) in value.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&(id ^ i as u64).to_le_bytes());
    }
    value
}

/// One cache under test.
pub trait Contender: Send + Sync {
    /// Looks `key` up; true on a hit. `scratch` is the calling thread's buffer, for caches
    /// that copy the value out.
    fn get(&self, key: &Key, scratch: &mut Vec<u8>) -> bool;
    /// Stores `value` under `key`, evicting as the cache's policy decides.
    fn insert(&self, key: &Key, value: &[u8]);
    /// Runs maintenance the cache defers (applying buffered writes to its eviction policy), so
    /// that what it holds afterwards is its steady state. Caches that defer nothing need not.
    fn settle(&self) {}
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
/// The caches the benchmarks compare: slabcache and its peers.
pub enum Peer {
    /// slabcache itself.
    Slabcache,
    /// moka's `sync::Cache`.
    Moka,
    /// quick_cache's `sync::Cache`.
    QuickCache,
    /// mini-moka's `sync::Cache`.
    MiniMoka,
    /// stretto's `Cache`.
    Stretto,
    /// An `lru::LruCache` behind a `Mutex`: the simplest thread-safe cache.
    LockedLru,
}

impl Peer {
    /// slabcache first, then the peers.
    pub const ALL: [Peer; 6] = [
        Peer::Slabcache,
        Peer::Moka,
        Peer::QuickCache,
        Peer::MiniMoka,
        Peer::Stretto,
        Peer::LockedLru,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Peer::Slabcache => "slabcache",
            Peer::Moka => "moka",
            Peer::QuickCache => "quick_cache",
            Peer::MiniMoka => "mini_moka",
            Peer::Stretto => "stretto",
            Peer::LockedLru => "locked_lru",
        }
    }

    /// The peer called `name` ([`Peer::name`]), if any.
    pub fn from_name(name: &str) -> Option<Peer> {
        Peer::ALL.into_iter().find(|peer| peer.name() == name)
    }

    /// A cold cache of this kind that holds up to `capacity` entries.
    pub fn build(self, capacity: usize) -> Box<dyn Contender> {
        let entries = capacity.max(1);
        match self {
            Peer::Slabcache => Box::new(slabcache_for(entries)),
            Peer::Moka => Box::new(moka::sync::Cache::<Key, Arc<[u8]>>::new(entries as u64)),
            Peer::QuickCache => Box::new(quick_cache::sync::Cache::<Key, Arc<[u8]>>::new(entries)),
            Peer::MiniMoka => Box::new(mini_moka::sync::Cache::<Key, Arc<[u8]>>::new(
                entries as u64,
            )),
            Peer::Stretto => Box::new(
                // stretto's guidance: ten counters per entry the cache is expected to hold.
                // Without ignoring its internal cost, stretto charges every entry 56 units
                // of bookkeeping on top of the cost given, and a capacity of N holds N / 57.
                stretto::CacheBuilder::<Key, Arc<[u8]>>::new(entries * 10, entries as i64)
                    .set_ignore_internal_cost(true)
                    .finalize()
                    .expect("stretto accepts a positive capacity"),
            ),
            Peer::LockedLru => Box::new(Mutex::new(lru::LruCache::<Key, Arc<[u8]>>::new(
                NonZeroUsize::new(entries).expect("at least one entry"),
            ))),
        }
    }
}

/// slabcache limited to `entries` entries, with an arena large enough that the entry limit
/// binds first (a 16-byte key and a 64-byte value fill a 128-byte chunk; the arena gets four
/// times that, so that every size class can have pages of its own).
fn slabcache_for(entries: usize) -> slabcache::Cache {
    let bytes = (entries as u64 * 4 * 128).max(64 << 20);
    slabcache::Cache::builder()
        .max_entries(entries as u64)
        .max_bytes(bytes)
        .build()
        .expect("a valid slabcache configuration")
}

impl Contender for slabcache::Cache {
    fn get(&self, key: &Key, scratch: &mut Vec<u8>) -> bool {
        self.get_into(key, scratch).is_some()
    }

    fn insert(&self, key: &Key, value: &[u8]) {
        // A refusal (the value is larger than the cache's limit) cannot happen with these
        // sizes; a cache that refused would only score fewer hits.
        let _ = slabcache::Cache::insert(self, key, value);
    }
}

impl Contender for moka::sync::Cache<Key, Arc<[u8]>> {
    fn get(&self, key: &Key, _: &mut Vec<u8>) -> bool {
        moka::sync::Cache::get(self, key).is_some()
    }

    fn insert(&self, key: &Key, value: &[u8]) {
        moka::sync::Cache::insert(self, *key, Arc::from(value));
    }

    fn settle(&self) {
        self.run_pending_tasks();
    }
}

impl Contender for quick_cache::sync::Cache<Key, Arc<[u8]>> {
    fn get(&self, key: &Key, _: &mut Vec<u8>) -> bool {
        quick_cache::sync::Cache::get(self, key).is_some()
    }

    fn insert(&self, key: &Key, value: &[u8]) {
        quick_cache::sync::Cache::insert(self, *key, Arc::from(value));
    }
}

impl Contender for mini_moka::sync::Cache<Key, Arc<[u8]>> {
    fn get(&self, key: &Key, _: &mut Vec<u8>) -> bool {
        mini_moka::sync::Cache::get(self, key).is_some()
    }

    fn insert(&self, key: &Key, value: &[u8]) {
        mini_moka::sync::Cache::insert(self, *key, Arc::from(value));
    }

    fn settle(&self) {
        mini_moka::sync::ConcurrentCacheExt::sync(self);
    }
}

impl Contender for stretto::Cache<Key, Arc<[u8]>> {
    fn get(&self, key: &Key, _: &mut Vec<u8>) -> bool {
        stretto::Cache::get(self, key).is_some()
    }

    /// Inserts and waits for stretto's buffered insert to be applied, so that it holds what
    /// it reports, as every other cache here does.
    fn insert(&self, key: &Key, value: &[u8]) {
        stretto::Cache::insert(self, *key, Arc::from(value), 1);
        // An error means the cache is closed, which never happens while it is measured.
        let _ = self.wait();
    }
}

impl Contender for Mutex<lru::LruCache<Key, Arc<[u8]>>> {
    fn get(&self, key: &Key, _: &mut Vec<u8>) -> bool {
        self.lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(key)
            .is_some()
    }

    fn insert(&self, key: &Key, value: &[u8]) {
        self.lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .put(*key, Arc::from(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contender_returns_what_it_was_given_and_respects_its_capacity() {
        for peer in Peer::ALL {
            let cache = peer.build(1000);
            let mut scratch = Vec::new();
            assert!(!cache.get(&key(1), &mut scratch), "{}", peer.name());
            cache.insert(&key(1), &value(1));
            assert!(cache.get(&key(1), &mut scratch), "{}", peer.name());
            for id in 0..20_000 {
                cache.insert(&key(id), &value(id));
            }
            let held = (0..20_000)
                .filter(|&id| cache.get(&key(id), &mut scratch))
                .count();
            assert!(
                (1..=1100).contains(&held),
                "{} holds {held} of 20000 keys at a capacity of 1000",
                peer.name()
            );
        }
    }

    #[test]
    fn names_round_trip() {
        for peer in Peer::ALL {
            assert_eq!(Peer::from_name(peer.name()), Some(peer));
        }
        assert_eq!(Peer::from_name("memcached"), None);
    }

    #[test]
    fn keys_and_values_differ_by_id() {
        assert_ne!(key(1), key(2));
        assert_ne!(value(1), value(2));
        assert_eq!(key(7), key(7));
    }
}
