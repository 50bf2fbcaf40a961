//! One entry = one chunk: its word layout and its seqlock protocol.
//!
//! ```text
//! word 0  seq       even: stable; odd: being written. +1 to start a write, +1 to end it.
//! word 1  meta      key_len:16 | value_len:32 | region:3
//! word 2  version   the entry's version (valid once the write has ended)
//! word 3  deadline  absolute expiry in clock nanoseconds, or ttl::NEVER
//! word 4  links     prev:32 | next:32 chunk ids of the list the chunk is on (class lock only)
//! word 5… key bytes, zero-padded to a word, then value bytes, zero-padded to a word
//! ```
//!
//! Invariants:
//! - A chunk is never rewritten in place while the index points at it: a new value goes into
//!   a fresh chunk, and the old one is retired (made free) only after the index stopped
//!   pointing at it. So a reader that validates its copy got one entry's data, whole.
//! - The key length is 0 exactly when the chunk holds no entry (keys are never empty).
//! - `region` in `meta` is changed by read-modify-write only (under the class lock), so it
//!   never clobbers the lengths; the lengths change only while `seq` is odd.
//! - Readers never write a chunk. (Reference bits live beside the arena, in the slab, because a
//!   reader that stalls can wake up after its chunk's page was re-cut for another class: a
//!   write through its stale offset would land in the middle of someone else's entry.)
//! - Readers copy with relaxed atomic loads, then `fence(Acquire)`, then re-load `seq`
//!   (H.-J. Boehm, "Can seqlocks get along with programming language memory models?", 2012).

use crate::sync::{fence, AtomicU64, Ordering};

pub(crate) const HEADER_WORDS: usize = 5;
pub(crate) const HEADER_BYTES: usize = HEADER_WORDS * 8;

const KEY_LEN_MASK: u64 = 0xffff;
const VALUE_LEN_SHIFT: u32 = 16;
const LENS_MASK: u64 = (1 << 48) - 1;
const REGION_SHIFT: u32 = 48;
const REGION_MASK: u64 = 0b111 << REGION_SHIFT;

/// Bytes of chunk needed for an entry with these lengths.
pub(crate) fn bytes_needed(key_len: usize, value_len: usize) -> usize {
    HEADER_BYTES + words_for(key_len) * 8 + words_for(value_len) * 8
}

#[inline]
fn words_for(bytes: usize) -> usize {
    bytes.div_ceil(8)
}

/// Which list a chunk is on; kept in the chunk so that unlinking needs no search.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(crate) enum Region {
    None = 0,
    Free = 1,
    Window = 2,
    Probation = 3,
    Protected = 4,
}

/// The stable facts of an entry, read under the seqlock.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EntryHead {
    pub(crate) key_len: usize,
    pub(crate) value_len: usize,
    pub(crate) version: u64,
    pub(crate) deadline: u64,
}

/// A view of one chunk's words.
#[derive(Clone, Copy)]
pub(crate) struct Chunk<'a> {
    w: &'a [AtomicU64],
}

impl<'a> Chunk<'a> {
    #[inline]
    pub(crate) fn new(w: &'a [AtomicU64]) -> Self {
        debug_assert!(w.len() > HEADER_WORDS);
        Chunk { w }
    }

    // ----- reader side -----

    /// Starts an optimistic read: the sequence number, or `None` while a write is under way.
    #[inline]
    pub(crate) fn read_begin(&self) -> Option<u64> {
        let seq = self.w[0].load(Ordering::Acquire);
        (seq & 1 == 0).then_some(seq)
    }

    /// Ends an optimistic read: true when nothing was written since `read_begin` returned
    /// `seq`, so everything loaded in between is one consistent snapshot.
    #[inline]
    pub(crate) fn read_end(&self, seq: u64) -> bool {
        fence(Ordering::Acquire);
        self.w[0].load(Ordering::Relaxed) == seq
    }

    /// The entry's header, if the lengths are plausible for this chunk. Torn reads can
    /// produce any lengths; bounding them here keeps the copies inside the chunk.
    #[inline]
    pub(crate) fn head(&self) -> Option<EntryHead> {
        let meta = self.w[1].load(Ordering::Relaxed);
        let key_len = (meta & KEY_LEN_MASK) as usize;
        let value_len = ((meta & LENS_MASK) >> VALUE_LEN_SHIFT) as usize;
        if key_len == 0 || HEADER_WORDS + words_for(key_len) + words_for(value_len) > self.w.len() {
            return None;
        }
        Some(EntryHead {
            key_len,
            value_len,
            version: self.w[2].load(Ordering::Relaxed),
            deadline: self.w[3].load(Ordering::Relaxed),
        })
    }

    /// Whether the stored key (of `head.key_len` bytes) equals `key`.
    #[inline]
    pub(crate) fn key_equals(&self, head: &EntryHead, key: &[u8]) -> bool {
        if head.key_len != key.len() {
            return false;
        }
        let words = &self.w[HEADER_WORDS..HEADER_WORDS + words_for(key.len())];
        let mut parts = key.chunks(8);
        words.iter().all(|w| {
            let part = parts.next().unwrap_or_default();
            w.load(Ordering::Relaxed) == pack_word(part)
        })
    }

    /// Appends the stored key to `out`.
    pub(crate) fn copy_key(&self, head: &EntryHead, out: &mut Vec<u8>) {
        copy_out(&self.w[HEADER_WORDS..], head.key_len, out);
    }

    /// Replaces `out`'s contents with the stored value.
    #[inline]
    pub(crate) fn copy_value(&self, head: &EntryHead, out: &mut Vec<u8>) {
        out.clear();
        copy_out(&self.w[HEADER_WORDS + words_for(head.key_len)..], head.value_len, out);
    }

    // ----- writer side (the caller owns the chunk) -----

    /// Starts writing a free chunk: readers that still hold its id now fail validation.
    pub(crate) fn begin_write(&self) {
        let seq = self.w[0].load(Ordering::Relaxed);
        debug_assert!(seq & 1 == 0, "chunk already being written");
        self.w[0].store(seq + 1, Ordering::Relaxed);
        fence(Ordering::Release);
    }

    /// Writes an entry's lengths, deadline, key and value (inside `begin_write`/`end_write`).
    pub(crate) fn fill(&self, key: &[u8], value: &[u8], deadline: u64) {
        debug_assert!(self.w[1].load(Ordering::Relaxed) & LENS_MASK == 0);
        self.w[1].fetch_or(key.len() as u64 | (value.len() as u64) << VALUE_LEN_SHIFT, Ordering::Relaxed);
        self.w[3].store(deadline, Ordering::Relaxed);
        let key_words = words_for(key.len());
        copy_in(&self.w[HEADER_WORDS..], key);
        copy_in(&self.w[HEADER_WORDS + key_words..], value);
    }

    /// Stamps the version and ends the write, publishing the chunk's contents to readers.
    pub(crate) fn end_write(&self, version: u64) {
        self.w[2].store(version, Ordering::Relaxed);
        let seq = self.w[0].load(Ordering::Relaxed);
        debug_assert!(seq & 1 == 1);
        self.w[0].store(seq + 1, Ordering::Release);
    }

    /// Makes the chunk hold no entry, whether it was published or abandoned mid-write.
    pub(crate) fn retire(&self) {
        let seq = self.w[0].load(Ordering::Relaxed);
        let odd = seq | 1;
        if seq != odd {
            self.w[0].store(odd, Ordering::Relaxed);
            fence(Ordering::Release);
        }
        self.w[1].fetch_and(!LENS_MASK, Ordering::Relaxed);
        self.w[0].store(odd + 1, Ordering::Release);
    }

    /// The current sequence word (writers use it to recognise "the chunk I published").
    pub(crate) fn seq(&self) -> u64 {
        self.w[0].load(Ordering::Relaxed)
    }

    /// Zeroes a chunk's header in a page that is being re-cut (no reader can validate it).
    pub(crate) fn reset(&self) {
        for w in &self.w[..HEADER_WORDS] {
            w.store(0, Ordering::Relaxed);
        }
    }

    // ----- policy side (under the class lock) -----

    pub(crate) fn region(&self) -> Region {
        match (self.w[1].load(Ordering::Relaxed) & REGION_MASK) >> REGION_SHIFT {
            1 => Region::Free,
            2 => Region::Window,
            3 => Region::Probation,
            4 => Region::Protected,
            _ => Region::None,
        }
    }

    pub(crate) fn set_region(&self, region: Region) {
        let bits = (region as u64) << REGION_SHIFT;
        self.w[1].fetch_and(!REGION_MASK, Ordering::Relaxed);
        self.w[1].fetch_or(bits, Ordering::Relaxed);
    }

    /// `(prev, next)` chunk ids.
    pub(crate) fn links(&self) -> (u32, u32) {
        let w = self.w[4].load(Ordering::Relaxed);
        ((w >> 32) as u32, w as u32)
    }

    pub(crate) fn set_links(&self, prev: u32, next: u32) {
        self.w[4].store(u64::from(prev) << 32 | u64::from(next), Ordering::Relaxed);
    }

    /// Whether a writer is filling the chunk right now (it is allocated but not published).
    pub(crate) fn is_being_written(&self) -> bool {
        self.w[0].load(Ordering::Relaxed) & 1 == 1
    }
}

/// Little-endian word of up to 8 bytes, zero-padded: the stored form of key and value bytes.
#[inline]
fn pack_word(part: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    bytes[..part.len()].copy_from_slice(part);
    u64::from_le_bytes(bytes)
}

fn copy_in(words: &[AtomicU64], bytes: &[u8]) {
    for (w, part) in words.iter().zip(bytes.chunks(8)) {
        w.store(pack_word(part), Ordering::Relaxed);
    }
}

/// Appends `len` bytes stored in `words` to `out`.
#[inline]
fn copy_out(words: &[AtomicU64], len: usize, out: &mut Vec<u8>) {
    out.reserve(len);
    let start = out.len();
    let full = len / 8;
    let dst = out.spare_capacity_mut();
    for (i, w) in words[..full].iter().enumerate() {
        let bytes = w.load(Ordering::Relaxed).to_le_bytes();
        for (d, b) in dst[i * 8..i * 8 + 8].iter_mut().zip(bytes) {
            d.write(b);
        }
    }
    let tail = len - full * 8;
    if tail > 0 {
        let bytes = words[full].load(Ordering::Relaxed).to_le_bytes();
        for (d, b) in dst[full * 8..len].iter_mut().zip(&bytes[..tail]) {
            d.write(*b);
        }
    }
    // SAFETY: the loops above initialised exactly `len` bytes after the old length, inside
    // the capacity reserved at the top.
    unsafe { out.set_len(start + len) };
}
