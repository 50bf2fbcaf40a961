//! [`Cache::hottest`]: the hot-key tracker's hashes (`crate::hot`) read back as keys.
//!
//! The tracker knows keys by their 64-bit hash only. Each hash is looked up in the index
//! under its bucket lock, where no chunk of the chain can change: the entry whose key hashes
//! to the same 64 bits, if one is resident and not expired, is the key. A key removed, evicted
//! or expired since it was read is skipped. The tracker's lock is released before the first
//! bucket lock is taken, so `hottest` never holds two locks.

use super::Cache;
use crate::index::{chunk_of, KeyHash};
use crate::ttl::Now;

impl Cache {
    /// The `n` keys read most often recently, each with its estimated number of recent reads,
    /// most read first. Empty unless the cache was built with
    /// [`track_hot_keys(true)`](crate::CacheBuilder::track_hot_keys): a cache that does not
    /// track hot keys always returns an empty `Vec`.
    ///
    /// - **What counts**: get hits (`get`, `get_into`, `get_versioned`). Misses, `contains`
    ///   and writes do not.
    /// - **Recently**: counts are halved every 2<sup>15</sup> samples, about half a million
    ///   get hits of the whole cache, so a count covers roughly the cache's last half million
    ///   to million hits, and a key that stops being read fades out of the list.
    /// - **Estimated**: reads are sampled, about one in 16, and the counts scaled back up; a
    ///   key read `r` times recently shows about `r`, give or take `4 * sqrt(r)`. Other keys
    ///   can only add to that, through collisions in the tally; a key must take more than
    ///   about one read in 3,000 to stand out of that noise. Under heavy concurrency a few
    ///   samples are dropped rather than waited for, which lowers all counts about alike.
    /// - **At most 64** keys are tracked, so at most 64 come back whatever `n` is. Tracked
    ///   keys that are no longer resident (removed, evicted or expired) are skipped, so fewer
    ///   than `n` may come back.
    ///
    /// Meant for an operator watching for a key that is about to overload its shard: it locks
    /// the tracker once and the index bucket of each tracked key briefly, and copies their keys.
    pub fn hottest(&self, n: usize) -> Vec<(Vec<u8>, u64)> {
        let Some(hot) = self.hot_keys.as_ref().filter(|_| n > 0) else {
            return Vec::new();
        };
        let now = Now::new(&*self.clock);
        hot.hottest()
            .into_iter()
            .filter_map(|(hash, reads)| Some((self.resident_key(hash, &now)?, reads)))
            .take(n)
            .collect()
    }

    /// The resident, unexpired key whose hash is `hash`, if any.
    fn resident_key(&self, hash: u64, now: &Now<'_>) -> Option<Vec<u8>> {
        let hash = KeyHash::from_value(hash);
        let mut key = Vec::new();
        let locked = self.index.lock(hash);
        let found = locked.matching().any(|(_, word)| {
            let chunk = self.slab.chunk(chunk_of(word));
            let head = chunk.head().expect("a slot points at a published chunk");
            key.clear();
            chunk.copy_key(&head, &mut key);
            self.index.hash(&key).value() == hash.value() && !now.expired(head.deadline)
        });
        drop(locked);
        found.then_some(key)
    }
}
