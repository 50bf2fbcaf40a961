//! Which entry of a size class leaves when the class needs room.
//!
//! The layout is W-TinyLFU's three regions (Einziger, Friedman, Manes, "TinyLFU: A Highly
//! Efficient Cache Admission Policy", 2017), each a FIFO ring with CLOCK second chances
//! instead of an LRU list:
//!
//! - **window** (1% of the class's capacity): new entries land here. When it overflows, its
//!   head moves to probation, or back to the window's tail if it was referenced meanwhile.
//! - **probation**: the victim is probation's first unreferenced entry. A referenced entry
//!   reaching the head is promoted to protected instead.
//! - **protected** (80% of the main region): when it overflows, its head is demoted to
//!   probation's tail.
//!
//! A hit only sets the entry's reference bit (when not already set), so the read path touches
//! no ring. Rings are reordered only here, under the class lock, as heads are examined, and
//! expired entries found at a head leave first, whatever their bit.
//!
//! # Handles, and why rings and not linked lists
//!
//! Rings hold *handles*, not chunk ids. A handle is a slot of the class's handle table:
//! `chunk id << 32 | generation << 2 | region`; the chunk stores its handle in its mark word.
//! Because an entry is rewritten into a fresh chunk, a handle is what makes an entry's place in
//! the queues survive its updates: an update of a key hands the old chunk's handle to the new
//! chunk ([`Queues::inherit`]), one table write, and the entry keeps its position, as an update
//! in an LRU would.
//!
//! An intrusive doubly linked list makes every unlink touch two neighbouring chunks, cache
//! misses scattered over the arena. Rings are appended and consumed at their ends only. An
//! entry that leaves from the middle (removed, evicted, its page moved) is not searched for:
//! its handle's generation moves on, which makes its ring slot stale, and stale slots are
//! skipped at the head or dropped when a ring compacts (when it holds more than twice its live
//! entries). A ring slot is `handle << 32 | generation << 2 | region` and is current while it
//! matches the handle's table entry, so ring work reads the compact handle table, never a
//! chunk, except the one chunk a victim search examines. Generations wrap after 2^30 reuses of
//! one handle; a stale slot cannot live that long, since rings compact long before.
//!
//! Every call does a bounded amount of work: `admit` moves at most a few window entries, and
//! `next_victim` gives each queued entry at most one second chance before it settles.
//! The admission duel between the window's candidate and probation's victim plugs in between
//! the window's overflow and probation's tail.

use std::collections::VecDeque;

use crate::sync::{AtomicU64, Ordering};

/// Window entries examined per admission at most, so admission stays O(1).
const WINDOW_STEPS_PER_ADMIT: usize = 4;
const REGION_MASK: u64 = 0b11;
const GENERATION_ONE: u64 = 1 << 2;
const GENERATION_MASK: u64 = 0xffff_fffc;

/// The ring an entry is on (the low bits of its handle's table entry).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Region {
    None = 0,
    Window = 1,
    Probation = 2,
    Protected = 3,
}

impl Region {
    fn of(entry: u64) -> Region {
        match entry & REGION_MASK {
            1 => Region::Window,
            2 => Region::Probation,
            3 => Region::Protected,
            _ => Region::None,
        }
    }
}

/// The chunks of one class, as the policy sees them (under the class lock).
pub(crate) trait ClassChunks {
    /// The handle stored in chunk `id` (0: none).
    fn handle(&self, id: u32) -> u32;
    fn set_handle(&self, id: u32, handle: u32);
    fn references(&self) -> &References;
    /// Starts loading chunk `id`'s header into the CPU cache.
    fn prefetch(&self, id: u32);
}

/// One reference bit per chunk id, set by readers on a hit, outside the arena so that readers
/// never write a chunk. A reader may set the bit of a chunk id that was just reused (it read
/// the chunk before it was freed); at worst that gives one entry an undeserved second chance.
pub(crate) struct References {
    bits: Box<[AtomicU64]>,
}

impl References {
    pub(crate) fn new(ids: usize) -> Self {
        References {
            bits: (0..ids.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bits.len() * 8
    }

    /// Records a hit, writing only when the bit is not set yet, so that a hot key's word stays
    /// shared between cores.
    #[inline]
    pub(crate) fn touch(&self, id: u32) {
        let (word, bit) = self.bit(id);
        if word.load(Ordering::Relaxed) & bit == 0 {
            word.fetch_or(bit, Ordering::Relaxed);
        }
    }

    /// Clears the bit, returning whether it was set.
    fn take(&self, id: u32) -> bool {
        let (word, bit) = self.bit(id);
        word.load(Ordering::Relaxed) & bit != 0
            && word.fetch_and(!bit, Ordering::Relaxed) & bit != 0
    }

    #[inline]
    fn bit(&self, id: u32) -> (&AtomicU64, u64) {
        (&self.bits[id as usize >> 6], 1 << (id & 63))
    }
}

/// A class's handles: `chunk id << 32 | generation << 2 | region` each. Handle 0 is never
/// used, so that a chunk's mark word of 0 means "no handle".
struct Handles {
    entries: Vec<u64>,
    free: Vec<u32>,
}

impl Handles {
    fn new() -> Self {
        Handles {
            entries: vec![0],
            free: Vec::new(),
        }
    }

    fn take(&mut self, id: u32, region: Region) -> u32 {
        let handle = self.free.pop().unwrap_or_else(|| {
            self.entries.push(0);
            (self.entries.len() - 1) as u32
        });
        let generation = self.entries[handle as usize] & GENERATION_MASK;
        self.entries[handle as usize] = u64::from(id) << 32 | generation | region as u64;
        handle
    }

    /// Frees a handle; its generation moves on, so every ring slot of it goes stale.
    fn release(&mut self, handle: u32) {
        let entry = &mut self.entries[handle as usize];
        *entry = (*entry & GENERATION_MASK).wrapping_add(GENERATION_ONE) & GENERATION_MASK;
        self.free.push(handle);
    }

    fn chunk(&self, handle: u32) -> u32 {
        (self.entries[handle as usize] >> 32) as u32
    }

    fn region(&self, handle: u32) -> Region {
        Region::of(self.entries[handle as usize])
    }

    /// Moves the handle to `region`, returning the ring slot that now names it.
    fn set_region(&mut self, handle: u32, region: Region) -> u64 {
        let entry = &mut self.entries[handle as usize];
        *entry = *entry & !REGION_MASK | region as u64;
        self.slot(handle)
    }

    fn set_chunk(&mut self, handle: u32, id: u32) {
        let entry = &mut self.entries[handle as usize];
        *entry = *entry & 0xffff_ffff | u64::from(id) << 32;
    }

    fn slot(&self, handle: u32) -> u64 {
        u64::from(handle) << 32 | self.entries[handle as usize] & 0xffff_ffff
    }

    fn is_current(&self, slot: u64) -> bool {
        self.slot((slot >> 32) as u32) == slot
    }
}

/// A FIFO of handle slots; `live` counts the current ones.
struct Ring {
    slots: VecDeque<u64>,
    live: u64,
}

impl Ring {
    fn new() -> Self {
        Ring {
            slots: VecDeque::new(),
            live: 0,
        }
    }

    fn push(&mut self, handles: &Handles, slot: u64) {
        if self.slots.len() as u64 > 2 * self.live + 64 {
            self.slots.retain(|&s| handles.is_current(s));
        }
        self.slots.push_back(slot);
        self.live += 1;
    }

    /// Takes the first current slot off the ring (dropping stale ones), returning its handle.
    fn pop(&mut self, handles: &Handles) -> Option<u32> {
        while let Some(slot) = self.slots.pop_front() {
            if handles.is_current(slot) {
                self.live -= 1;
                return Some((slot >> 32) as u32);
            }
        }
        None
    }

    /// Puts back a handle just popped, at the head.
    fn unpop(&mut self, handles: &Handles, handle: u32) {
        self.slots.push_front(handles.slot(handle));
        self.live += 1;
    }

    /// The chunk the next `pop` will most likely return.
    fn head_chunk(&self, handles: &Handles) -> Option<u32> {
        self.slots
            .front()
            .map(|&slot| handles.chunk((slot >> 32) as u32))
    }
}

/// How the victim search sees a queued entry.
pub(crate) enum Candidate {
    /// Taken for a write that has not been published yet: cannot leave now.
    BeingWritten,
    /// Past its deadline: leaves first.
    Expired,
    Live,
}

pub(crate) struct Queues {
    handles: Handles,
    /// Indexed by `Region`; the ring at `Region::None` stays empty.
    rings: [Ring; 4],
}

struct Capacity {
    window: u64,
    protected: u64,
}

impl Capacity {
    fn of(entries: u64) -> Capacity {
        let window = (entries / 100).max(1);
        Capacity {
            window,
            protected: entries.saturating_sub(window) * 8 / 10,
        }
    }
}

impl Queues {
    pub(crate) fn new() -> Self {
        Queues {
            handles: Handles::new(),
            rings: std::array::from_fn(|_| Ring::new()),
        }
    }

    /// Live entries queued.
    pub(crate) fn len(&self) -> u64 {
        self.rings.iter().map(|r| r.live).sum()
    }

    /// Bytes held by the handle table and the rings.
    pub(crate) fn bytes(&self) -> usize {
        let slots: usize = self.rings.iter().map(|r| r.slots.capacity()).sum();
        (self.handles.entries.capacity() + slots) * 8 + self.handles.free.capacity() * 4
    }

    /// Queues a chunk just taken for a new entry; `capacity` is the class's entry capacity.
    pub(crate) fn admit(&mut self, chunks: &impl ClassChunks, id: u32, capacity: u64) {
        chunks.references().take(id);
        let handle = self.handles.take(id, Region::Window);
        chunks.set_handle(id, handle);
        self.requeue(handle, Region::Window);
        let cap = Capacity::of(capacity);
        for _ in 0..WINDOW_STEPS_PER_ADMIT {
            let window = &mut self.rings[Region::Window as usize];
            if window.live <= cap.window {
                break;
            }
            let Some(head) = window.pop(&self.handles) else {
                break;
            };
            let referenced = chunks.references().take(self.handles.chunk(head));
            self.requeue(
                head,
                if referenced {
                    Region::Window
                } else {
                    Region::Probation
                },
            );
        }
    }

    /// Forgets a chunk that is being freed, wherever it is queued.
    pub(crate) fn forget(&mut self, chunks: &impl ClassChunks, id: u32) {
        let handle = chunks.handle(id);
        if handle == 0 {
            return;
        }
        self.rings[self.handles.region(handle) as usize].live -= 1;
        self.handles.release(handle);
        chunks.set_handle(id, 0);
    }

    /// Gives the place of `old`'s entry in the queues to `new`, which replaces it: an update
    /// counts as a use of the entry, not as a new one. `new` was admitted when it was taken.
    pub(crate) fn inherit(&mut self, chunks: &impl ClassChunks, old: u32, new: u32) {
        let handle = chunks.handle(old);
        if handle == 0 {
            return;
        }
        self.forget(chunks, new);
        self.handles.set_chunk(handle, new);
        chunks.set_handle(new, handle);
        chunks.set_handle(old, 0);
        chunks.references().touch(new);
    }

    /// The entry to evict next (still queued), or `None` when every queued chunk is being
    /// written. `examine` reads a candidate's chunk.
    pub(crate) fn next_victim(
        &mut self,
        chunks: &impl ClassChunks,
        capacity: u64,
        examine: impl Fn(u32) -> Candidate,
    ) -> Option<u32> {
        let cap = Capacity::of(capacity);
        let mut budget = 2 * self.len() + 8;
        // Entries of each ring seen being written in this call; a ring whose live entries are
        // all being written is passed over.
        let mut busy = [0u64; 4];
        while budget > 0 {
            budget -= 1;
            let region = self.region_to_examine(&busy)?;
            let handle = self.rings[region as usize].pop(&self.handles)?;
            let id = self.handles.chunk(handle);
            match examine(id) {
                Candidate::BeingWritten => {
                    self.requeue(handle, region);
                    busy[region as usize] += 1;
                    continue;
                }
                Candidate::Expired => {}
                // Out of budget: every entry has had its second chance; settle for this one.
                Candidate::Live if !chunks.references().take(id) || budget == 0 => {}
                Candidate::Live => {
                    if region == Region::Probation {
                        self.requeue(handle, Region::Protected);
                        let protected = &mut self.rings[Region::Protected as usize];
                        if protected.live > cap.protected {
                            if let Some(demoted) = protected.pop(&self.handles) {
                                self.requeue(demoted, Region::Probation);
                            }
                        }
                    } else {
                        self.requeue(handle, region);
                    }
                    continue;
                }
            }
            self.rings[region as usize].unpop(&self.handles, handle);
            // The next search starts at the entry behind this one.
            if let Some(next) = self.rings[Region::Probation as usize].head_chunk(&self.handles) {
                chunks.prefetch(next);
            }
            return Some(id);
        }
        None
    }

    /// Appends a handle (new, or just popped) to the ring of `region`.
    fn requeue(&mut self, handle: u32, region: Region) {
        let slot = self.handles.set_region(handle, region);
        self.rings[region as usize].push(&self.handles, slot);
    }

    /// Probation if it has live entries not all seen `busy`, else protected, else the window.
    fn region_to_examine(&self, busy: &[u64; 4]) -> Option<Region> {
        [Region::Probation, Region::Protected, Region::Window]
            .into_iter()
            .find(|&region| self.rings[region as usize].live > busy[region as usize])
    }
}
