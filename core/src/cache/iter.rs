//! [`Cache::iter`]: a weakly consistent walk over the cache, one index chain at a time.
//!
//! Each chain is copied whole (lock-free, or under the chain's lock if it keeps changing)
//! before its entries are yielded, so an entry is never yielded twice and a writer waits at
//! most for one chain's copy.

use std::sync::Arc;

use super::{Cache, Probe, OPTIMISTIC_READS};
use crate::index::chunk_of;
use crate::ttl::Now;
use crate::version::Version;

impl Cache {
    /// A weakly consistent iterator of `(key, value, version)` copies: every entry present
    /// for the whole iteration is yielded exactly once; entries written or removed meanwhile
    /// may or may not be; no key is yielded twice. It never blocks writers for longer than one
    /// bucket read.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            cache: self,
            cursor: Cursor::default(),
        }
    }

    /// [`iter`](Cache::iter) for an iterator that owns a handle to the cache, so that it can
    /// be kept beyond the caller's borrow (by a binding whose iterators outlive any call).
    pub fn iter_shared(self: &Arc<Self>) -> SharedIter {
        SharedIter {
            cache: Arc::clone(self),
            cursor: Cursor::default(),
        }
    }

    /// Copies every entry of one chain (lock-free, or under its lock if it keeps changing).
    fn snapshot_chain(&self, chain: usize, out: &mut Vec<(Vec<u8>, Vec<u8>, Version)>) {
        let now = Now::new(&*self.clock);
        for attempt in 0..=OPTIMISTIC_READS {
            let _locked = (attempt == OPTIMISTIC_READS).then(|| self.index.lock_chain_at(chain));
            out.clear();
            let complete = self.index.chain_slots(chain).all(|(_, word)| {
                let (mut key, mut value) = (Vec::new(), Vec::new());
                let probe = self
                    .slab
                    .read_optimistic(chunk_of(word), |chunk, head| match head {
                        Some(head) => {
                            chunk.copy_key(&head, &mut key);
                            chunk.copy_value(&head, &mut value);
                            Probe::Hit(head)
                        }
                        None => Probe::Other,
                    });
                match probe {
                    // A slot read before its entry was removed can lead to the chunk after it
                    // was reused for a key of another chain: that entry is yielded with its
                    // own chain, not here.
                    Some((Probe::Hit(_), _))
                        if self.index.chain_of(self.index.hash(&key)) != chain =>
                    {
                        true
                    }
                    Some((Probe::Hit(head), _)) => {
                        if let (false, Some(version)) =
                            (now.expired(head.deadline), Version::new(head.version))
                        {
                            out.push((key, value, version));
                        }
                        true
                    }
                    Some((Probe::Other, _)) | None => false,
                }
            });
            if complete {
                // A key removed and written again further along the chain while it was read
                // can be here twice: keep its newest entry only, so that an iteration never
                // yields a key twice, nor an older value after a newer one.
                out.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.2.cmp(&a.2)));
                out.dedup_by(|later, earlier| later.0 == earlier.0);
                return;
            }
        }
    }
}

/// An entry as iteration yields it: key, value and version, copied.
type Entry = (Vec<u8>, Vec<u8>, Version);

/// Iterator returned by [`Cache::iter`].
pub struct Iter<'a> {
    cache: &'a Cache,
    cursor: Cursor,
}

/// Iterator returned by [`Cache::iter_shared`].
pub struct SharedIter {
    cache: Arc<Cache>,
    cursor: Cursor,
}

/// Where an iteration stands: the next chain to copy, and the entries of the last one copied
/// not yet yielded.
#[derive(Default)]
struct Cursor {
    chain: usize,
    ready: Vec<Entry>,
}

impl Cursor {
    fn next(&mut self, cache: &Cache) -> Option<Entry> {
        loop {
            if let Some(entry) = self.ready.pop() {
                return Some(entry);
            }
            if self.chain == cache.index.chain_count() {
                return None;
            }
            cache.snapshot_chain(self.chain, &mut self.ready);
            self.chain += 1;
        }
    }
}

impl Iterator for Iter<'_> {
    type Item = Entry;

    fn next(&mut self) -> Option<Self::Item> {
        self.cursor.next(self.cache)
    }
}

impl Iterator for SharedIter {
    type Item = Entry;

    fn next(&mut self) -> Option<Self::Item> {
        self.cursor.next(&self.cache)
    }
}
