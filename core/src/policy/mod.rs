//! Which entry of a size class leaves when the class needs room.
//!
//! The layout is W-TinyLFU's three regions (Einziger, Friedman, Manes, "TinyLFU: A Highly
//! Efficient Cache Admission Policy", 2017), each a FIFO queue with CLOCK second chances
//! instead of an LRU list:
//!
//! - **window** (1% of the class's capacity): new entries land here. When it overflows, its
//!   head moves to probation, or back to the window's tail if it was referenced meanwhile.
//! - **probation**: the victim is probation's first unreferenced entry. A referenced entry
//!   reaching the head is promoted to protected instead.
//! - **protected** (80% of the main region): when it overflows, its head is demoted to
//!   probation's tail.
//!
//! A hit only sets the entry's reference bit (when not already set), so the read path writes
//! no queue. Queues are reordered only here, under the class lock, as heads are examined.
//! Expired entries found at a head leave first, whatever their bit.
//!
//! Every call does a bounded amount of work: `admit` moves at most a few window entries, and
//! `next_victim` gives each queued entry at most one second chance before it settles.
//! The admission duel between the window's candidate and probation's victim plugs in between
//! the window's overflow and probation's tail.

use crate::chunk::{Chunk, Region};
use crate::list::ChunkList;
use crate::slab::Slab;

/// Window entries examined per admission at most, so admission stays O(1).
const WINDOW_STEPS_PER_ADMIT: usize = 4;

pub(crate) struct Queues {
    window: ChunkList,
    probation: ChunkList,
    protected: ChunkList,
}

struct Capacity {
    window: u64,
    protected: u64,
}

impl Capacity {
    fn of(entries: u64) -> Capacity {
        let window = (entries / 100).max(1);
        Capacity { window, protected: entries.saturating_sub(window) * 8 / 10 }
    }
}

impl Queues {
    pub(crate) fn new() -> Self {
        Queues {
            window: ChunkList::new(Region::Window),
            probation: ChunkList::new(Region::Probation),
            protected: ChunkList::new(Region::Protected),
        }
    }

    pub(crate) fn len(&self) -> u64 {
        self.window.len() + self.probation.len() + self.protected.len()
    }

    /// Queues a chunk just taken for a new entry; `capacity` is the class's entry capacity.
    pub(crate) fn admit(&mut self, slab: &Slab, id: u32, capacity: u64) {
        self.window.push_back(slab, id);
        let cap = Capacity::of(capacity);
        for _ in 0..WINDOW_STEPS_PER_ADMIT {
            if self.window.len() <= cap.window {
                break;
            }
            let Some(head) = self.window.front() else { break };
            let chunk = slab.chunk(head);
            if chunk.is_being_written() || slab.take_referenced(head) {
                self.window.move_to_back(slab, head, None);
            } else {
                self.window.move_to_back(slab, head, Some(&mut self.probation));
            }
        }
    }

    /// Takes a chunk off whichever queue holds it.
    pub(crate) fn remove(&mut self, slab: &Slab, id: u32) {
        match slab.chunk(id).region() {
            Region::Window => self.window.unlink(slab, id),
            Region::Probation => self.probation.unlink(slab, id),
            Region::Protected => self.protected.unlink(slab, id),
            Region::None | Region::Free => {}
        }
    }

    /// The entry to evict next (still queued), or `None` when every queued chunk is still
    /// being written. `expired` says whether an entry's deadline has passed.
    pub(crate) fn next_victim(
        &mut self,
        slab: &Slab,
        capacity: u64,
        expired: impl Fn(&Chunk<'_>) -> bool,
    ) -> Option<u32> {
        let cap = Capacity::of(capacity);
        let mut budget = 2 * self.len() + 8;
        while budget > 0 {
            budget -= 1;
            let (source, id) = self.head_to_examine()?;
            let chunk = slab.chunk(id);
            if chunk.is_being_written() {
                self.queue_mut(source).move_to_back(slab, id, None);
                continue;
            }
            if expired(&chunk) {
                return Some(id);
            }
            if !slab.take_referenced(id) {
                return Some(id);
            }
            if source == Region::Probation {
                self.probation.move_to_back(slab, id, Some(&mut self.protected));
                if self.protected.len() > cap.protected {
                    if let Some(demoted) = self.protected.front() {
                        self.protected.move_to_back(slab, demoted, Some(&mut self.probation));
                    }
                }
            } else {
                self.queue_mut(source).move_to_back(slab, id, None);
            }
        }
        // Every entry has had its second chance: settle for the first one not being written.
        [Region::Probation, Region::Protected, Region::Window].into_iter().find_map(|r| {
            let queue = self.queue_mut(r);
            let first = queue.front()?;
            (!slab.chunk(first).is_being_written()).then_some(first)
        })
    }

    /// Probation's head, else protected's, else the window's.
    fn head_to_examine(&self) -> Option<(Region, u32)> {
        [(&self.probation, Region::Probation), (&self.protected, Region::Protected), (&self.window, Region::Window)]
            .into_iter()
            .find_map(|(queue, region)| queue.front().map(|id| (region, id)))
    }

    fn queue_mut(&mut self, region: Region) -> &mut ChunkList {
        match region {
            Region::Probation => &mut self.probation,
            Region::Protected => &mut self.protected,
            _ => &mut self.window,
        }
    }
}
