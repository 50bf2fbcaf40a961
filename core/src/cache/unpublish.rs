//! Taking entries out of the index for the slab (`slab::Unpublish`): an evictor, the reaper
//! or a page move holds a claim on the entry's chunk and asks the cache, which knows keys and
//! hashes, to unpublish it under its bucket lock, count it and tell the listener.

use std::cell::Cell;

use super::{cause, payload, Cache};
use crate::chunk::Chunk;
use crate::events::RemovalCause;
use crate::index::{chunk_of, KeyHash};
use crate::slab::{Taking, Unpublish, Unpublished};
use crate::stats::Counter;
use crate::ttl::Now;

thread_local! {
    /// Scratch space for keys read back from chunks being evicted (to hash them). Taken out
    /// while in use rather than borrowed, so no borrow spans the atomic loads in between:
    /// loom runs its model threads on one OS thread, where such a borrow would be shared.
    static KEY_SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

impl Cache {
    /// The hash of the key in a chunk that holds an entry (`None` for one that does not). The
    /// key never changes while the chunk is published (an in-place update keeps it), so it
    /// can be read for hashing before the bucket lock is held.
    fn hash_entry(&self, chunk: Chunk<'_>) -> Option<KeyHash> {
        let head = chunk.head()?;
        let hash_key = |key: &mut Vec<u8>| {
            key.clear();
            chunk.copy_key(&head, key);
            self.index.hash(key)
        };
        // A thread whose thread-locals are already destroyed (the cache used from another
        // thread-local's destructor) hashes from a fresh buffer: a panic here, in a writer
        // that holds a chunk claimed or being written, would wedge the threads that meet it.
        Some(
            KEY_SCRATCH
                .try_with(|scratch| {
                    let mut key = scratch.take();
                    let hash = hash_key(&mut key);
                    scratch.set(key);
                    hash
                })
                .unwrap_or_else(|_| hash_key(&mut Vec::new())),
        )
    }
}

impl Unpublish for Cache {
    fn prefetch_entry(&self, chunk: Chunk<'_>) -> Option<u64> {
        let hash = self.hash_entry(chunk)?;
        self.index.prefetch(hash);
        Some(hash.value())
    }

    fn unpublish(
        &self,
        id: u32,
        chunk: Chunk<'_>,
        hash: Option<u64>,
        now: &Now<'_>,
        taking: Taking,
    ) -> Unpublished {
        let Some(hash) = hash
            .map(KeyHash::from_value)
            .or_else(|| self.hash_entry(chunk))
        else {
            return Unpublished::Absent;
        };
        let locked = self.index.lock(hash);
        let Some((slot, _)) = locked.matching().find(|&(_, word)| chunk_of(word) == id) else {
            return Unpublished::Absent;
        };
        // Read again under the lock: an in-place update may have changed the value's length
        // and deadline since.
        let head = chunk.head().expect("a slot points at a published chunk");
        let expired = now.expired(head.deadline);
        if taking == Taking::IfExpired && !expired {
            return Unpublished::Stayed;
        }
        locked.clear(slot);
        drop(locked);
        if taking == Taking::Replace {
            // The entry's place under the limit passes to the caller's new entry.
            self.counters
                .add_signed(Counter::PayloadBytes, -payload(&head));
        } else {
            self.account_removed(&head);
        }
        self.counters.bump(if expired {
            Counter::Expiration
        } else {
            Counter::Eviction
        });
        // Out of the index, the chunk stays as it is while the caller holds its claim.
        self.notify(id, &head, cause(expired, RemovalCause::Evicted));
        Unpublished::Taken
    }
}
