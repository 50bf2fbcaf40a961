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
//! A round claims its expired chunks under the class lock (they stay queued), takes them out
//! of the index holding no lock, then frees them under the class lock again. An entry that an
//! in-place update refreshed meanwhile is found live under its bucket lock, stays in the
//! index, and only loses the claim.

use super::{ClassState, Slab, Taking, Unpublish, Unpublished};
use crate::rng;
use crate::sync::{self, Ordering};
use crate::ttl::Now;

/// Evictions a class makes between two sampling passes of the reaper.
const EVICTIONS_PER_REAP: u32 = 32;
const REAP_SAMPLE: usize = 16;
const REAP_MAX_ROUNDS: u32 = 8;

impl Slab {
    /// Counts an eviction the class is about to make; true when the reaper is due first.
    /// Never in a cache that has not seen a deadline.
    pub(super) fn reap_due(&self, state: &mut ClassState) -> bool {
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

    /// Runs the reaper over `class`, taking and releasing its lock; returns how many expired
    /// entries it freed.
    pub(super) fn reap(&self, class: usize, unpub: &dyn Unpublish, now: &Now<'_>) -> u32 {
        let mut freed = 0;
        for _ in 0..REAP_MAX_ROUNDS {
            let claimed = self.claim_expired(&mut sync::lock(&self.states[class]), class, now);
            let view = self.view(class);
            let gone: Vec<bool> = claimed
                .iter()
                .map(|&id| {
                    unpub.unpublish(id, view.chunk(id), now, Taking::IfExpired)
                        != Unpublished::Stayed
                })
                .collect();
            let mut state = sync::lock(&self.states[class]);
            for (&id, gone) in claimed.iter().zip(gone) {
                if gone {
                    self.free_chunk(&mut state, class, id);
                    freed += 1;
                } else {
                    view.chunk(id).end_claim();
                }
            }
            drop(state);
            if claimed.len() * 4 <= REAP_SAMPLE {
                break;
            }
        }
        freed
    }

    /// Samples `REAP_SAMPLE` random chunks of the class and claims the expired ones (which stay
    /// queued).
    fn claim_expired(&self, state: &mut ClassState, class: usize, now: &Now<'_>) -> Vec<u32> {
        // A class can lose its last page to a move; with no page it holds no entry.
        if state.pages.is_empty() {
            return Vec::new();
        }
        let per_page = self.classes[class].per_page as u64;
        let view = self.view(class);
        let mut claimed = Vec::new();
        for _ in 0..REAP_SAMPLE {
            let page = state.pages[rng::below(state.pages.len() as u64) as usize];
            let id = page << self.index_bits | rng::below(per_page) as u32;
            let chunk = view.chunk(id);
            // A chunk with an entry whose write has ended is published and queued.
            if !chunk.is_claimed()
                && !chunk.is_being_written()
                && chunk.head().is_some_and(|h| now.expired(h.deadline))
            {
                chunk.claim();
                claimed.push(id);
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
            if !sync::lock(&self.states[class]).pages.is_empty() {
                self.reap(class, unpub, now);
            }
        }
    }
}
