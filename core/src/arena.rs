//! The arena: one anonymous memory mapping of the whole byte budget, cut into pages.
//!
//! The mapping is reserved once at build time and touched lazily by the OS as pages are first
//! written, so an empty cache costs address space, not memory. Pages are handed to size classes
//! in address order ([`Arena::take_fresh_page`]) and never returned to the OS; afterwards they
//! only move from one class to another (see `slab`).
//!
//! Every byte of the arena is accessed as an `AtomicU64` word. Chunks are read optimistically
//! under seqlocks while writers may be changing them, and a plain read racing a write is
//! undefined behaviour in Rust even when the value is thrown away; relaxed atomic loads and
//! stores compile to plain moves and make the race defined.
//!
//! # Page layout words
//!
//! Each page has a layout word: `generation << 8 | (class + 1)`, `class + 1 == 0` meaning "not
//! yet handed out". The generation is a seqlock of the page's chunk boundaries: it is odd while
//! the page is being re-cut for another class. A reader that computes a chunk's offset from the
//! layout word re-checks the word after reading the chunk; a reader that raced a re-cut sees a
//! different word and retries. This is why no epoch-based reclamation is needed here: memory is
//! never unmapped under a reader, and chunk boundaries never change under a reader unnoticed.
//!
//! Invariant: a page's layout word changes only while the page has no live entry, and only by
//! the thread that owns the page at that moment (the one that took it fresh, or the one moving
//! it between classes under the donor class's lock).

use crate::error::Error;
use crate::mapping::ZeroedMap;
use crate::sync::{fence, AtomicU32, AtomicU64, Ordering};

const CLASS_BITS: u32 = 8;
const CLASS_MASK: u64 = (1 << CLASS_BITS) - 1;
const GEN_ONE: u64 = 1 << CLASS_BITS;

pub(crate) struct Arena {
    words: ZeroedMap<AtomicU64>,
    page_shift: u32,
    page_count: u32,
    layouts: Box<[AtomicU64]>,
    next_fresh: AtomicU32,
}

/// A snapshot of a page's layout word.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Layout(u64);

impl Layout {
    /// The class the page is cut for, or `None` while it is unassigned or being re-cut.
    pub(crate) fn class(self) -> Option<usize> {
        if (self.0 >> CLASS_BITS) & 1 == 1 {
            return None;
        }
        (self.0 & CLASS_MASK).checked_sub(1).map(|c| c as usize)
    }
}

impl Arena {
    /// Maps `page_count` pages of `1 << page_shift` bytes.
    pub(crate) fn new(page_shift: u32, page_count: u32) -> Result<Arena, Error> {
        let bytes = (page_count as usize) << page_shift;
        let words = ZeroedMap::new(bytes / 8).map_err(|e| {
            Error::InvalidConfig(format!("max_bytes: cannot map {bytes} bytes of arena: {e}"))
        })?;
        Ok(Arena {
            words,
            page_shift,
            page_count,
            layouts: (0..page_count).map(|_| AtomicU64::new(0)).collect(),
            next_fresh: AtomicU32::new(0),
        })
    }

    /// The words of chunk `index` of `chunk_words` words each on `page`.
    #[inline]
    pub(crate) fn chunk_words(&self, page: u32, index: usize, chunk_words: usize) -> &[AtomicU64] {
        let start = ((page as usize) << (self.page_shift - 3)) + index * chunk_words;
        self.words.slice(start..start + chunk_words)
    }

    pub(crate) fn page_bytes(&self) -> usize {
        1 << self.page_shift
    }

    pub(crate) fn page_count(&self) -> u32 {
        self.page_count
    }

    /// Pages handed out to classes so far.
    pub(crate) fn pages_in_use(&self) -> u32 {
        self.next_fresh.load(Ordering::Relaxed).min(self.page_count)
    }

    /// A page never used before, or `None` once all have been handed out. The caller owns it
    /// and must [`assign`](Arena::assign) it before publishing any chunk in it.
    pub(crate) fn take_fresh_page(&self) -> Option<u32> {
        if self.next_fresh.load(Ordering::Relaxed) >= self.page_count {
            return None;
        }
        let page = self.next_fresh.fetch_add(1, Ordering::Relaxed);
        (page < self.page_count).then_some(page)
    }

    /// Reads a page's layout word, for a reader about to compute a chunk offset.
    #[inline]
    pub(crate) fn layout(&self, page: u32) -> Layout {
        Layout(self.layouts[page as usize].load(Ordering::Acquire))
    }

    /// Re-reads a page's layout word after a chunk read (the chunk's seqlock check has already
    /// issued the acquire fence that orders this load after the chunk's words).
    #[inline]
    pub(crate) fn layout_unchanged(&self, page: u32, seen: Layout) -> bool {
        self.layouts[page as usize].load(Ordering::Relaxed) == seen.0
    }

    /// Starts re-cutting an owned page: readers that compute offsets from now on, or that
    /// read across this moment, fail their layout check.
    pub(crate) fn begin_recut(&self, page: u32) {
        let word = &self.layouts[page as usize];
        let old = word.load(Ordering::Relaxed);
        word.store((old & !CLASS_MASK) + GEN_ONE, Ordering::Relaxed);
        fence(Ordering::Release);
    }

    /// Finishes cutting an owned page for `class` (fresh pages skip `begin_recut`).
    pub(crate) fn assign(&self, page: u32, class: usize) {
        let word = &self.layouts[page as usize];
        let old = word.load(Ordering::Relaxed);
        let generation = (old >> CLASS_BITS | 1) + 1;
        word.store(
            generation << CLASS_BITS | (class as u64 + 1),
            Ordering::Release,
        );
    }
}
