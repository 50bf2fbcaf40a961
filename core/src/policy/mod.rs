//! Which entry of a size class leaves when the class needs room.
//!
//! The layout is W-TinyLFU's three regions (Einziger, Friedman, Manes, "TinyLFU: A Highly
//! Efficient Cache Admission Policy", 2017), each a FIFO ring of chunk ids with CLOCK second
//! chances instead of an LRU list:
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
//! # Why rings of ids and not linked lists
//!
//! An intrusive doubly linked list makes every unlink touch two neighbouring chunks, cache
//! misses scattered over the arena. Rings are appended and consumed at their ends only. An
//! entry that leaves from the middle (removed, replaced, evicted by a page move) is not
//! searched for: its chunk's mark (a chunk header word only this module uses) moves on, which
//! makes its ring slot stale, and stale slots are skipped at the head or dropped when a ring
//! compacts (when it holds more than twice its live entries).
//!
//! A mark is `ticket << 2 | region`, the ticket a per-class admission counter. A ring slot
//! holds `chunk id << 32 | mark`, and is current when the chunk's page still belongs to the
//! class and the chunk's mark equals the slot's. Tickets wrap after 2^30 admissions to one
//! class; a stale slot cannot live that long, since rings compact long before.
//!
//! Every call does a bounded amount of work: `admit` moves at most a few window entries, and
//! `next_victim` gives each queued entry at most one second chance before it settles.
//! The admission duel between the window's candidate and probation's victim plugs in between
//! the window's overflow and probation's tail.

use std::collections::VecDeque;

use crate::sync::{AtomicU64, Ordering};

/// Window entries examined per admission at most, so admission stays O(1).
const WINDOW_STEPS_PER_ADMIT: usize = 4;
const REGION_BITS: u32 = 2;
const REGION_MASK: u32 = (1 << REGION_BITS) - 1;

/// The ring a chunk's live entry is on (the low bits of its mark).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Region {
    None = 0,
    Window = 1,
    Probation = 2,
    Protected = 3,
}

impl Region {
    fn of(mark: u32) -> Region {
        match mark & REGION_MASK {
            1 => Region::Window,
            2 => Region::Probation,
            3 => Region::Protected,
            _ => Region::None,
        }
    }
}

/// The chunks of one class, as the policy sees them (under the class lock).
pub(crate) trait ClassChunks {
    /// The mark of chunk `id`, or `None` when its page no longer belongs to the class.
    fn mark(&self, id: u32) -> Option<u32>;
    fn set_mark(&self, id: u32, mark: u32);
    fn references(&self) -> &References;
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

/// A FIFO of `(chunk id, mark)` slots; `live` counts the slots that are current.
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

    /// Appends chunk `id`, whose mark is `mark`.
    fn push(&mut self, chunks: &impl ClassChunks, id: u32, mark: u32) {
        if self.slots.len() as u64 > 2 * self.live + 64 {
            self.slots.retain(|&slot| is_current(chunks, slot));
        }
        self.slots.push_back(slot(id, mark));
        self.live += 1;
    }

    /// Takes the first current slot off the ring, dropping stale ones on the way.
    fn pop(&mut self, chunks: &impl ClassChunks) -> Option<u32> {
        while let Some(slot) = self.slots.pop_front() {
            if is_current(chunks, slot) {
                self.live -= 1;
                return Some((slot >> 32) as u32);
            }
        }
        None
    }

    /// Puts back a slot just popped, at the head.
    fn unpop(&mut self, id: u32, mark: u32) {
        self.slots.push_front(slot(id, mark));
        self.live += 1;
    }
}

fn slot(id: u32, mark: u32) -> u64 {
    u64::from(id) << 32 | u64::from(mark)
}

fn is_current(chunks: &impl ClassChunks, slot: u64) -> bool {
    chunks.mark((slot >> 32) as u32) == Some(slot as u32)
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
    window: Ring,
    probation: Ring,
    protected: Ring,
    /// Tickets handed out to admitted chunks (wrapping at 2^30).
    admissions: u32,
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
            window: Ring::new(),
            probation: Ring::new(),
            protected: Ring::new(),
            admissions: 0,
        }
    }

    /// Live entries queued.
    pub(crate) fn len(&self) -> u64 {
        self.window.live + self.probation.live + self.protected.live
    }

    /// Queues a chunk just taken for a new entry; `capacity` is the class's entry capacity.
    pub(crate) fn admit(&mut self, chunks: &impl ClassChunks, id: u32, capacity: u64) {
        chunks.references().take(id);
        self.admissions = self.admissions.wrapping_add(1) & (u32::MAX >> REGION_BITS);
        let mark = self.admissions << REGION_BITS | Region::Window as u32;
        chunks.set_mark(id, mark);
        self.window.push(chunks, id, mark);
        let cap = Capacity::of(capacity);
        for _ in 0..WINDOW_STEPS_PER_ADMIT {
            if self.window.live <= cap.window {
                break;
            }
            let Some(head) = self.window.pop(chunks) else {
                break;
            };
            let region = if chunks.references().take(head) {
                Region::Window
            } else {
                Region::Probation
            };
            self.requeue(chunks, head, region);
        }
    }

    /// Forgets a chunk that is being freed, wherever it is queued.
    pub(crate) fn forget(&mut self, chunks: &impl ClassChunks, id: u32) {
        let Some(mark) = chunks.mark(id) else { return };
        match Region::of(mark) {
            Region::Window => self.window.live -= 1,
            Region::Probation => self.probation.live -= 1,
            Region::Protected => self.protected.live -= 1,
            Region::None => return,
        }
        chunks.set_mark(id, Region::None as u32);
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
            let id = self.ring(region).pop(chunks)?;
            match examine(id) {
                Candidate::BeingWritten => {
                    self.requeue(chunks, id, region);
                    busy[region as usize] += 1;
                    continue;
                }
                // Out of budget: every entry has had its second chance; settle for this one.
                Candidate::Expired => {}
                Candidate::Live if !chunks.references().take(id) || budget == 0 => {}
                Candidate::Live => {
                    if region == Region::Probation {
                        self.requeue(chunks, id, Region::Protected);
                        if self.protected.live > cap.protected {
                            if let Some(demoted) = self.protected.pop(chunks) {
                                self.requeue(chunks, demoted, Region::Probation);
                            }
                        }
                    } else {
                        self.requeue(chunks, id, region);
                    }
                    continue;
                }
            }
            let mark = chunks
                .mark(id)
                .expect("a chunk just popped belongs to the class");
            self.ring(region).unpop(id, mark);
            return Some(id);
        }
        None
    }

    /// Appends a chunk just popped to the ring of `region`, keeping its ticket.
    fn requeue(&mut self, chunks: &impl ClassChunks, id: u32, region: Region) {
        let old = chunks
            .mark(id)
            .expect("a chunk just popped belongs to the class");
        let mark = old & !REGION_MASK | region as u32;
        chunks.set_mark(id, mark);
        self.ring(region).push(chunks, id, mark);
    }

    /// Probation if it has live entries not all seen `busy`, else protected, else the window.
    fn region_to_examine(&self, busy: &[u64; 4]) -> Option<Region> {
        [
            (&self.probation, Region::Probation),
            (&self.protected, Region::Protected),
            (&self.window, Region::Window),
        ]
        .into_iter()
        .find_map(|(ring, region)| (ring.live > busy[region as usize]).then_some(region))
    }

    fn ring(&mut self, region: Region) -> &mut Ring {
        match region {
            Region::Probation => &mut self.probation,
            Region::Protected => &mut self.protected,
            _ => &mut self.window,
        }
    }
}
