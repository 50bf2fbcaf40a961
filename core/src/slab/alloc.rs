//! Taking a chunk for a new entry, and giving chunks back to their class's free stack.
//!
//! A new entry's chunk comes, in this order of preference, from: a victim of its own class
//! when the cache is at its entry limit (the new entry takes the victim's place, and its
//! chunk); the class's free stack; a fresh page; a page moved from another class (see
//! `pages`); a victim of its own class (see `evict`). Whichever it is, the chunk is queued
//! for the new entry in the critical section that takes it, so it is never unaccounted for,
//! and the class lock is held only for those decisions: a victim is taken out of the index,
//! and a page moved, after the lock is released.
//!
//! A chunk goes back to the free stack when its entry left the index (`release`, by whoever
//! unpublished it), when its write is abandoned (`abandon`), or when an evictor frees a victim
//! it cannot reuse. Releasing is a no-op for a chunk someone else freed or claimed first.

use super::{ClassState, Published, Slab, Taking, Unpublish, Unpublished};
use crate::sync::{self, MutexGuard, Ordering};
use crate::ttl::Now;

/// A chunk taken for a new entry, its write begun.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Allocated {
    pub(crate) id: u32,
    /// Whether the chunk's victim handed its place under the entry limit to the new entry
    /// (`Taking::Replace`): the entry count already counts the new entry, and the caller must
    /// give the place back (decrement the count) if the new entry does not become one.
    pub(crate) holds_place: bool,
}

impl Slab {
    /// Takes a chunk of `class` for a new entry whose key has hash `hash`, and starts its
    /// write; it is queued at once, so it is never unaccounted for. `at_limit`: the cache is
    /// at its entry limit, so the new entry replaces a victim of its class (when the class
    /// has one). `now` is the instant for expiry decisions. Holds the class lock only while
    /// deciding; a victim whose chunk is reused is taken out of the index after that.
    pub(crate) fn allocate(
        &self,
        class: usize,
        hash: u64,
        unpub: &dyn Unpublish,
        now: &Now<'_>,
        at_limit: bool,
    ) -> Allocated {
        self.note_demand(class);
        let mut state = sync::lock(&self.states[class]);
        self.drain_hits(&mut state, class);
        let (mut at_limit, mut round) = (at_limit, 0);
        loop {
            if !at_limit {
                if let Some(id) = state.free.pop() {
                    self.take_free(&mut state, class, id, hash);
                    return Allocated {
                        id,
                        holds_place: false,
                    };
                }
                if let Some(page) = self.arena.take_fresh_page() {
                    self.add_page(&mut state, class, page);
                    continue;
                }
                let starving = state.pages.is_empty();
                if self.empty_pages.load(Ordering::Relaxed) > 0
                    || starving
                    || self.balance_due(class, &mut state)
                {
                    drop(state);
                    let moved = self.move_page_to(class, unpub, now, starving);
                    state = sync::lock(&self.states[class]);
                    if moved {
                        continue;
                    }
                }
            }
            if self.reap_due(&mut state) {
                drop(state);
                let reaped = self.reap(class, unpub, now);
                state = sync::lock(&self.states[class]);
                if reaped > 0 {
                    // Expired entries made room: a free chunk instead of a live victim.
                    at_limit = false;
                    continue;
                }
            }
            // At the limit the new entry is counted in the window before the duel, as if it
            // had been admitted first (see `Queues::next_victim`); making room for bytes,
            // the victim leaves before the new entry is counted.
            let incoming = u64::from(at_limit);
            if let Some(victim) = self.claim_victim(&mut state, class, incoming, now) {
                return self.hand_over(state, class, victim, hash, unpub, now);
            }
            if at_limit {
                // The class has no entry to give up; the entry limit is met when the new entry
                // is published, by evicting from another class (`evict_any`).
                at_limit = false;
                continue;
            }
            // Everything this class could give up is being written by other threads.
            drop(state);
            sync::spin_hint(round);
            round += 1;
            state = sync::lock(&self.states[class]);
        }
    }

    /// Takes free chunk `id`, just popped off the free stack, for a new entry with key hash
    /// `hash`: its write begins and it is queued.
    fn take_free(&self, state: &mut ClassState, class: usize, id: u32, hash: u64) {
        if self.page_live[self.page_of(id) as usize].fetch_add(1, Ordering::Relaxed) == 0 {
            self.class_empty_pages[class].fetch_sub(1, Ordering::Relaxed);
            self.empty_pages.fetch_sub(1, Ordering::Relaxed);
        }
        self.view(class).chunk(id).begin_write();
        self.admit(state, class, id, hash);
    }

    /// Queues chunk `id`, just taken for a new entry, in the class's policy.
    fn admit(&self, state: &mut ClassState, class: usize, id: u32, hash: u64) {
        let capacity = self.capacity(class, state);
        state.queues.admit(&self.view(class), id, hash, capacity);
    }

    /// Gives the claimed `victim`'s chunk to the new entry with key hash `hash`: queued for
    /// it under the class lock, which is then released; the victim is taken out of the index,
    /// handing its place under the entry limit to the new entry, and the chunk's write begins.
    fn hand_over(
        &self,
        mut state: MutexGuard<'_, ClassState>,
        class: usize,
        victim: u32,
        hash: u64,
        unpub: &dyn Unpublish,
        now: &Now<'_>,
    ) -> Allocated {
        self.admit(&mut state, class, victim, hash);
        let chunk = self.view(class).chunk(victim);
        // Queuing set the chunk's mark, which dropped the claim; it holds until the write
        // begins, so no release or victim search takes the chunk from under this thread.
        chunk.claim();
        drop(state);
        let unpublished = unpub.unpublish(victim, chunk, now, Taking::Replace);
        chunk.begin_write();
        chunk.end_claim();
        Allocated {
            id: victim,
            holds_place: unpublished == Unpublished::Taken,
        }
    }

    /// Abandons a chunk whose write will not be published (a failed conditional write).
    pub(crate) fn abandon(&self, id: u32) {
        let layout = self.arena.layout(self.page_of(id));
        let class = layout
            .class()
            .expect("a chunk being written pins its page's layout");
        let mut state = sync::lock(&self.states[class]);
        self.free_chunk(&mut state, class, id);
    }

    /// Frees a chunk the index no longer points at. Whoever unpublished it calls this; it is a
    /// no-op when an evictor or a page move freed the chunk first (its layout or sequence
    /// moved on), or holds a claim on it (the claim's holder finds it out of the index and
    /// keeps it).
    pub(crate) fn release(&self, chunk: Published) {
        let Some(class) = chunk.layout.class() else {
            return;
        };
        let state = &mut sync::lock(&self.states[class]);
        if !self.layout_unchanged(chunk.id, chunk.layout) {
            return;
        }
        let view = self.view(class);
        let current = view.chunk(chunk.id);
        if !current.is_claimed() && current.seq() == chunk.seq {
            self.free_chunk(state, class, chunk.id);
        }
    }

    /// Where published chunk `id` is, for releasing it once it leaves the index; read while
    /// the chunk cannot move (its index slot's bucket lock is held).
    pub(crate) fn published(&self, id: u32) -> Published {
        Published {
            id,
            layout: self.arena.layout(self.page_of(id)),
            seq: self.chunk(id).seq(),
        }
    }

    /// Takes chunk `id` out of the class's queues (if queued) and puts it on the free stack,
    /// holding no entry.
    pub(super) fn free_chunk(&self, state: &mut ClassState, class: usize, id: u32) {
        let view = self.view(class);
        state.queues.forget(&view, id);
        let chunk = view.chunk(id);
        // Forgetting clears the mark of a queued chunk; this clears a claim's too.
        chunk.set_mark(0);
        chunk.retire();
        state.free.push(id);
        if self.page_live[self.page_of(id) as usize].fetch_sub(1, Ordering::Relaxed) == 1 {
            self.class_empty_pages[class].fetch_add(1, Ordering::Relaxed);
            self.empty_pages.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The number of entries a class can hold now, for sizing its policy regions.
    pub(super) fn capacity(&self, class: usize, state: &ClassState) -> u64 {
        let chunks = state.pages.len() as u64 * self.classes[class].per_page as u64;
        chunks.min(self.entry_limit)
    }

    /// Gives `page`, owned by the caller, to `class`: all its chunks are free.
    pub(super) fn add_page(&self, state: &mut ClassState, class: usize, page: u32) {
        self.arena.assign(page, class);
        // In reverse, so that chunks are used in address order; pushing ids touches nothing
        // in the page, which the OS maps in only when the chunks are first written.
        let ids: Vec<u32> = self.page_ids(page, class).collect();
        state.free.extend(ids.into_iter().rev());
        state.pages.push(page);
        self.class_pages[class].fetch_add(1, Ordering::Relaxed);
        self.class_empty_pages[class].fetch_add(1, Ordering::Relaxed);
        self.empty_pages.fetch_add(1, Ordering::Relaxed);
    }
}
