//! Intrusive doubly linked lists of chunks: the free lists and the policy queues.
//!
//! The links live in the chunks themselves (header word 4) and each chunk records which list
//! it is on (its `Region`), so push, pop and unlink are O(1), need no allocation, and a chunk
//! can be taken off whatever list holds it without searching.
//!
//! Invariants: a chunk is on at most one list, its region names that list, and every list of
//! a size class is touched only under that class's lock.

use crate::chunk::Region;
use crate::slab::Slab;

/// The "no chunk" id in links.
pub(crate) const NIL: u32 = u32::MAX;

pub(crate) struct ChunkList {
    head: u32,
    tail: u32,
    len: u64,
    region: Region,
}

impl ChunkList {
    pub(crate) fn new(region: Region) -> Self {
        ChunkList { head: NIL, tail: NIL, len: 0, region }
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn front(&self) -> Option<u32> {
        (self.head != NIL).then_some(self.head)
    }

    pub(crate) fn push_back(&mut self, slab: &Slab, id: u32) {
        let chunk = slab.chunk(id);
        debug_assert_eq!(chunk.region(), Region::None);
        chunk.set_links(self.tail, NIL);
        chunk.set_region(self.region);
        if self.tail == NIL {
            self.head = id;
        } else {
            let tail = slab.chunk(self.tail);
            tail.set_links(tail.links().0, id);
        }
        self.tail = id;
        self.len += 1;
    }

    pub(crate) fn pop_front(&mut self, slab: &Slab) -> Option<u32> {
        let id = self.front()?;
        self.unlink(slab, id);
        Some(id)
    }

    /// Takes `id`, which must be on this list, off it.
    pub(crate) fn unlink(&mut self, slab: &Slab, id: u32) {
        let chunk = slab.chunk(id);
        debug_assert_eq!(chunk.region(), self.region);
        let (prev, next) = chunk.links();
        if prev == NIL {
            self.head = next;
        } else {
            let p = slab.chunk(prev);
            p.set_links(p.links().0, next);
        }
        if next == NIL {
            self.tail = prev;
        } else {
            let n = slab.chunk(next);
            n.set_links(prev, n.links().1);
        }
        chunk.set_region(Region::None);
        self.len -= 1;
    }

    /// Moves `id` from this list to the back of `to` (which may be this list).
    pub(crate) fn move_to_back(&mut self, slab: &Slab, id: u32, to: Option<&mut ChunkList>) {
        self.unlink(slab, id);
        match to {
            Some(other) => other.push_back(slab, id),
            None => self.push_back(slab, id),
        }
    }
}
