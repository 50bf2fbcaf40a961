//! The expiry reaper: reclaims expired entries that the eviction hands have not reached yet.
//!
//! Expired entries are invisible at once, but their chunks are reclaimed only when something
//! looks at them: the victim search (an expired entry at a ring's head leaves first), a write
//! of the same key, or this reaper. Every `EVICTIONS_PER_REAP` evictions of a class, and once
//! per class on every `Cache::run_pending_tasks`, it samples `REAP_SAMPLE` random chunks of the
//! class and frees the expired ones, repeating while more than a quarter of a sample was
//! expired (Redis's active expiry), for at most `REAP_MAX_ROUNDS` rounds. A cache that has
//! never been given a deadline has nothing to reap, and never samples.
//!
//! A round claims its expired chunks, each under the lock of the shard that queues it (they
//! stay queued), takes them out
//! of the index holding no lock, then frees them under the shard locks again. An entry that an
//! in-place update refreshed meanwhile is found live under its bucket lock, stays in the
//! index, and only loses the claim.

use super::{queued, ShardState, Slab, Taking, Unpublish, Unpublished};
use crate::rng;
use crate::sync::{self, fence, Ordering};
use crate::ttl::Now;

/// Evictions a shard makes between two sampling passes of the reaper.
const EVICTIONS_PER_REAP: u32 = 32;
const REAP_SAMPLE: usize = 16;
const REAP_MAX_ROUNDS: u32 = 8;

impl Slab {
    /// Counts an eviction the shard is about to make; true when the reaper is due first.
    /// Never in a cache that has not seen a deadline.
    pub(super) fn reap_due(&self, state: &mut ShardState) -> bool {
        if !self.expiring.load(Ordering::Relaxed) {
            return false;
        }
        state.evictions_since_reap += 1;
        if state.evictions_since_reap < EVICTIONS_PER_REAP {
            return false;
        }
        state.evictions_since_reap = 0;
        true
    }

    /// Runs the reaper over `class`, taking and releasing its locks; returns how many expired
    /// entries it freed.
    pub(super) fn reap(&self, class: usize, unpub: &dyn Unpublish, now: &Now<'_>) -> u32 {
        let mut freed = 0;
        for _ in 0..REAP_MAX_ROUNDS {
            let claimed = self.claim_expired(class, now);
            let view = self.view(class, 0);
            for &(id, shard) in &claimed {
                let unpublished = unpub.unpublish(id, view.chunk(id), None, now, Taking::IfExpired);
                let mut state = sync::lock(self.shard(class, shard));
                if unpublished == Unpublished::Stayed {
                    view.chunk(id).end_claim();
                } else {
                    self.dequeue(&mut state, class, shard, id);
                    drop(state);
                    self.push_free(class, id);
                    freed += 1;
                }
            }
            if claimed.len() * 4 <= REAP_SAMPLE {
                break;
            }
        }
        freed
    }

    /// Samples `REAP_SAMPLE` random chunks of the class and claims the expired ones (which stay
    /// queued), each under the lock of the shard that queues it; returns them with their
    /// shards.
    fn claim_expired(&self, class: usize, now: &Now<'_>) -> Vec<(u32, usize)> {
        let pages = sync::lock(&self.frees[class]).pages.clone();
        // A class can lose its last page to a move; with no page it holds no entry.
        if pages.is_empty() {
            return Vec::new();
        }
        let per_page = self.classes[class].per_page as u64;
        let mut claimed = Vec::new();
        for _ in 0..REAP_SAMPLE {
            let page = pages[rng::below(pages.len() as u64) as usize];
            let id = page << self.index_bits | rng::below(per_page) as u32;
            let view = self.view(class, 0);
            let shard = self.owner(view.chunk(id).mark());
            let _state = sync::lock(self.shard(class, shard));
            // The page may have left the class since the list was copied. Reads that the
            // layout check after them finds unchanged read this chunk, and a chunk they found
            // queued in this shard keeps its page while the shard lock is held (a page move
            // claims every queued chunk first).
            let layout = self.arena.layout(page);
            if layout.class() != Some(class) {
                continue;
            }
            let chunk = view.chunk(id);
            let mark = chunk.mark();
            let candidate = queued(mark)
                && self.owner(mark) == shard
                && !chunk.is_claimed()
                && !chunk.is_being_written()
                && chunk.head().is_some_and(|h| now.expired(h.deadline));
            fence(Ordering::Acquire);
            if candidate && self.layout_unchanged(id, layout) {
                chunk.claim();
                claimed.push((id, shard));
            }
        }
        claimed
    }

    /// Runs the reaper once over each class that has pages, one class at a time: expired
    /// entries are reclaimed without waiting for evictions to call it.
    pub(crate) fn reap_every_class(&self, unpub: &dyn Unpublish, now: &Now<'_>) {
        if !self.expiring.load(Ordering::Relaxed) {
            return;
        }
        for class in 0..self.classes.len() {
            if !sync::lock(&self.frees[class]).pages.is_empty() {
                self.reap(class, unpub, now);
            }
        }
    }
}
