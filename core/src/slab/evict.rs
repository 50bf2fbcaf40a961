//! Victims: choosing them under a shard lock, and the claim that lets their evictor take
//! them out of the index after releasing it.
//!
//! Evicting an entry means taking it out of the index, under its bucket lock. Doing that while
//! holding the shard lock would nest the two and keep every writer of the shard waiting on
//! another key's bucket, so eviction is split in two:
//!
//! 1. Under the shard lock, the policy names the victim; it is taken off the queues and
//!    *claimed*: the claim bit in its mark word says one thread owns it.
//! 2. With the shard lock released, the owner takes the entry out of the index (if it is still
//!    there), then either reuses the chunk for its own new entry, begun at once, or frees it.
//!
//! While a chunk is claimed, nobody else changes what it is: the victim search, the reaper and
//! page moves pass it over as they pass over a chunk being written, and `release`, called by a
//! remove or a write that took the entry out of the index first, leaves it to the owner.
//! Readers are unaffected: the entry stays readable until it leaves the index, and its chunk
//! is rewritten only after that, under its seqlock, so a reader holding the old id fails its
//! validation. An in-place update of the victim may still land before it leaves the index; the
//! update is then evicted with it.

use super::{ShardState, Slab, Taking, Unpublish};
use crate::policy::Candidate;
use crate::sync;
use crate::ttl::Now;

impl Slab {
    /// The next victim of the shard, taken off its queues and claimed for the caller; `None`
    /// when the shard has no entry that may leave now (none queued, or all being written or
    /// claimed). `incoming`: 1 when a new entry takes the victim's place (see
    /// `Queues::next_victim`).
    pub(super) fn claim_victim(
        &self,
        state: &mut ShardState,
        class: usize,
        shard: usize,
        incoming: u64,
        now: &Now<'_>,
    ) -> Option<u32> {
        let capacity = self.capacity(class);
        let view = self.view(class, shard);
        let examine = |id| {
            let chunk = view.chunk(id);
            if chunk.is_claimed() || chunk.is_being_written() {
                Candidate::BeingWritten
            } else if chunk.head().is_some_and(|h| now.expired(h.deadline)) {
                Candidate::Expired
            } else {
                Candidate::Live
            }
        };
        let victim = state
            .queues
            .next_victim(&view, capacity, incoming, examine)?;
        state.queues.forget(&view, victim);
        view.chunk(victim).claim();
        Some(victim)
    }

    /// Evicts one entry to make room under an entry limit: from the shard of `hash` in `class`
    /// if it has one to give, else from the class's other shards, else from the other classes,
    /// fullest shard first. False when every queued entry is being written or claimed.
    pub(crate) fn evict_any(
        &self,
        class: usize,
        hash: u64,
        unpub: &dyn Unpublish,
        now: &Now<'_>,
    ) -> bool {
        let evict_from = |c: usize, s: usize| {
            let victim = self.claim_victim(&mut sync::lock(self.shard(c, s)), c, s, 0, now);
            let Some(victim) = victim else {
                return false;
            };
            unpub.unpublish(
                victim,
                self.view(c, s).chunk(victim),
                None,
                now,
                Taking::Evict,
            );
            self.dequeue(&mut sync::lock(self.shard(c, s)), c, s, victim);
            self.push_free(c, victim);
            true
        };
        let own = self.shard_of(hash);
        if evict_from(class, own) {
            return true;
        }
        let mut others: Vec<(u64, usize, usize)> = (0..self.classes.len())
            .flat_map(|c| (0..self.shard_count).map(move |s| (c, s)))
            .filter(|&(c, s)| (c, s) != (class, own))
            .map(|(c, s)| (sync::lock(self.shard(c, s)).queues.len(), c, s))
            .filter(|&(queued, ..)| queued > 0)
            .collect();
        // The class's own shards first, then the fullest.
        others.sort_unstable_by_key(|&(queued, c, _)| (c != class, std::cmp::Reverse(queued)));
        others.into_iter().any(|(_, c, s)| evict_from(c, s))
    }
}
