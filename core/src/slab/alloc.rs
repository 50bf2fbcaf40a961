//! Taking a chunk for a new entry, and giving chunks back to their class's free stack.
//!
//! A new entry's chunk comes, in this order of preference, from: a victim of its key's shard
//! when the cache is at its entry limit (the new entry takes the victim's place, and its
//! chunk); the class's free stack; a fresh page; a page moved from another class (see
//! `pages`); a victim of its key's shard (see `evict`). A free chunk is popped under the
//! class's free lock with its write begun, then queued for the new entry under the shard
//! lock; a victim's chunk is queued for the new entry in the critical section that chooses
//! the victim. Neither lock is held while the other is taken, and neither while a victim is
//! taken out of the index or a page is moved.
//!
//! A chunk goes back to the free stack when its entry left the index (`release`, by whoever
//! unpublished it), when its write is abandoned (`abandon`), or when an evictor frees a victim
//! it cannot reuse: it leaves its shard's queues under the shard lock, then is retired and
//! pushed under the free lock. Releasing is a no-op for a chunk someone else freed or claimed
//! first.

use super::pages::DEMAND_BATCH;
use super::{queued, ClassFree, Published, ShardState, Slab, Taking, Unpublish, Unpublished};
use crate::sync::{self, fence, MutexGuard, Ordering};
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
    /// write; it is queued in the key's shard. `at_limit`: the cache is at its entry limit,
    /// so the new entry replaces a victim of its shard (when the shard has one). `now` is the
    /// instant for expiry decisions.
    pub(crate) fn allocate(
        &self,
        class: usize,
        hash: u64,
        unpub: &dyn Unpublish,
        now: &Now<'_>,
        at_limit: bool,
    ) -> Allocated {
        let shard = self.shard_of(hash);
        let (mut at_limit, mut round) = (at_limit, 0);
        loop {
            if !at_limit {
                if let Some(id) = self.take_free(class) {
                    let mut state = sync::lock(self.shard(class, shard));
                    self.drain_hits(&mut state, class, shard);
                    self.admit(&mut state, class, shard, id, hash);
                    return Allocated {
                        id,
                        holds_place: false,
                    };
                }
                if self.make_room_in_pages(class, unpub, now) {
                    continue;
                }
            }
            let mut state = sync::lock(self.shard(class, shard));
            self.drain_hits(&mut state, class, shard);
            if self.reap_due(&mut state) {
                drop(state);
                if self.reap(class, unpub, now) > 0 {
                    // Expired entries made room: a free chunk instead of a live victim.
                    at_limit = false;
                }
                continue;
            }
            // At the limit the new entry is counted in the window before the duel, as if it
            // had been admitted first (see `Queues::next_victim`); making room for bytes,
            // the victim leaves before the new entry is counted.
            let incoming = u64::from(at_limit);
            if let Some(victim) = self.claim_victim(&mut state, class, shard, incoming, now) {
                return self.hand_over(state, class, shard, victim, hash, unpub, now);
            }
            drop(state);
            if at_limit {
                // The shard has no entry of this class to give up; the entry limit is met
                // when the new entry is published, by evicting from elsewhere (`evict_any`).
                at_limit = false;
                continue;
            }
            // The shard holds none of the class's memory it could give up: another shard's
            // victim makes the room (a shard whose keys are rare holds few entries).
            if let Some(victim) = self.steal_victim(class, shard, now) {
                let state = sync::lock(self.shard(class, shard));
                return self.hand_over(state, class, shard, victim, hash, unpub, now);
            }
            // Everything the class could give up is being written or claimed by other threads.
            sync::spin_hint(round);
            round += 1;
        }
    }

    /// A victim of another shard of `class` than `shard`, claimed for the caller.
    fn steal_victim(&self, class: usize, shard: usize, now: &Now<'_>) -> Option<u32> {
        (1..self.shard_count)
            .map(|step| (shard + step) % self.shard_count)
            .find_map(|other| {
                let mut state = sync::lock(self.shard(class, other));
                self.claim_victim(&mut state, class, other, 0, now)
            })
    }

    /// Pops a free chunk of `class`, its write begun; `None` when the free stack is empty and
    /// no fresh page is left.
    fn take_free(&self, class: usize) -> Option<u32> {
        let mut free = sync::lock(&self.frees[class]);
        let id = match free.free.pop() {
            Some(id) => id,
            None => {
                let page = self.arena.take_fresh_page()?;
                self.add_page(&mut free, class, page);
                free.free.pop()?
            }
        };
        if self.page_live[self.page_of(id) as usize].fetch_add(1, Ordering::Relaxed) == 0 {
            self.class_empty_pages[class].fetch_sub(1, Ordering::Relaxed);
            self.empty_pages.fetch_sub(1, Ordering::Relaxed);
        }
        // Begun before the free lock is released, so that a page move sees the chunk in use.
        self.view(class, 0).chunk(id).begin_write();
        Some(id)
    }

    /// Queues chunk `id`, taken for a new entry with key hash `hash`, in the shard's policy.
    fn admit(&self, state: &mut ShardState, class: usize, shard: usize, id: u32, hash: u64) {
        state.pending_demand += 1;
        if state.pending_demand >= DEMAND_BATCH {
            self.note_demand(class, state.pending_demand);
            state.pending_demand = 0;
        }
        let capacity = self.capacity(class);
        state
            .queues
            .admit(&self.view(class, shard), id, hash, capacity);
    }

    /// Gives the claimed `victim`'s chunk (a victim of any shard of the class, taken off its
    /// queues) to the new entry with key hash `hash`: queued for it under the lock of the
    /// entry's shard, which is then released; the victim is taken out of the index,
    /// handing its place under the entry limit to the new entry, and the chunk's write begins.
    #[allow(clippy::too_many_arguments)]
    fn hand_over(
        &self,
        mut state: MutexGuard<'_, ShardState>,
        class: usize,
        shard: usize,
        victim: u32,
        hash: u64,
        unpub: &dyn Unpublish,
        now: &Now<'_>,
    ) -> Allocated {
        let chunk = self.view(class, shard).chunk(victim);
        // The victim's bucket loads while the new entry is admitted.
        let victim_hash = unpub.prefetch_entry(chunk);
        self.admit(&mut state, class, shard, victim, hash);
        // Queuing set the chunk's mark, which dropped the claim; it holds until the write
        // begins, so no release or victim search takes the chunk from under this thread.
        chunk.claim();
        drop(state);
        let unpublished = unpub.unpublish(victim, chunk, victim_hash, now, Taking::Replace);
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
        let shard = self.owner(self.view(class, 0).chunk(id).mark());
        let dequeued = {
            let mut state = sync::lock(self.shard(class, shard));
            self.dequeue(&mut state, class, shard, id)
        };
        debug_assert!(dequeued, "a chunk being written is queued in its shard");
        self.push_free(class, id);
    }

    /// Frees a chunk the index no longer points at. Whoever unpublished it calls this; it is a
    /// no-op when an evictor or a page move freed the chunk first (its layout or sequence
    /// moved on), or holds a claim on it (the claim's holder finds it out of the index and
    /// keeps it).
    pub(crate) fn release(&self, chunk: Published) {
        let Some(class) = chunk.layout.class() else {
            return;
        };
        let view = self.view(class, 0);
        // The chunk's shard, read before its lock is held; checked again under it.
        let shard = self.owner(view.chunk(chunk.id).mark());
        let dequeued = {
            let mut state = sync::lock(self.shard(class, shard));
            let current = view.chunk(chunk.id);
            let (claimed, seq, mark) = (current.is_claimed(), current.seq(), current.mark());
            // The page may have been re-cut before those reads; if it was not re-cut by the
            // layout check after them, they read this chunk. And a chunk they found queued in
            // this shard, unclaimed, keeps its page while the shard lock is held: a page move
            // claims every queued chunk, under its shard's lock, before re-cutting.
            fence(Ordering::Acquire);
            self.layout_unchanged(chunk.id, chunk.layout)
                && !claimed
                && seq == chunk.seq
                && queued(mark)
                && self.owner(mark) == shard
                && self.dequeue(&mut state, class, shard, chunk.id)
        };
        if dequeued {
            self.push_free(class, chunk.id);
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

    /// Takes chunk `id` out of the shard's queues (false if it is not queued there), dropping
    /// any claim on it; the caller then gives it to [`Slab::push_free`].
    pub(super) fn dequeue(
        &self,
        state: &mut ShardState,
        class: usize,
        shard: usize,
        id: u32,
    ) -> bool {
        let view = self.view(class, shard);
        let chunk = view.chunk(id);
        let mark = chunk.mark();
        if queued(mark) && self.owner(mark) != shard {
            return false;
        }
        state.queues.forget(&view, id);
        chunk.set_mark(0);
        true
    }

    /// Retires chunk `id`, out of every queue and owned by the caller, and puts it on its
    /// class's free stack; or, when its page is being moved to another class, leaves it out of
    /// circulation for the move.
    pub(super) fn push_free(&self, class: usize, id: u32) {
        let mut free = sync::lock(&self.frees[class]);
        // Retired under the free lock: a page move waiting for this chunk sees it out of use
        // only once this section ends, after the test of `draining` below, and re-cuts the page
        // under this lock.
        self.view(class, 0).chunk(id).retire();
        if free.draining != Some(self.page_of(id)) {
            free.free.push(id);
        }
        if self.page_live[self.page_of(id) as usize].fetch_sub(1, Ordering::Relaxed) == 1 {
            self.class_empty_pages[class].fetch_add(1, Ordering::Relaxed);
            self.empty_pages.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The number of entries a shard of `class` can hold now, for sizing its policy regions:
    /// its share of the class's chunks, at most its share of the entry limit.
    pub(super) fn capacity(&self, class: usize) -> u64 {
        let chunks = u64::from(self.class_pages[class].load(Ordering::Relaxed))
            * self.classes[class].per_page as u64;
        chunks
            .div_ceil(self.shard_count as u64)
            .min(self.entry_limit)
    }

    /// Gives `page`, owned by the caller, to `class`: all its chunks are free.
    pub(super) fn add_page(&self, free: &mut ClassFree, class: usize, page: u32) {
        self.arena.assign(page, class);
        // In reverse, so that chunks are used in address order; pushing ids touches nothing
        // in the page, which the OS maps in only when the chunks are first written.
        free.free.extend(self.page_ids(page, class).rev());
        free.pages.push(page);
        self.class_pages[class].fetch_add(1, Ordering::Relaxed);
        self.class_empty_pages[class].fetch_add(1, Ordering::Relaxed);
        self.empty_pages.fetch_add(1, Ordering::Relaxed);
    }
}
