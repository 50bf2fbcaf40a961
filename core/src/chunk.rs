//! One entry = one chunk: its word layout and its seqlock protocol.
//!
//! ```text
//! word 0  seq       even: stable; odd: being written. +1 to start a write, +1 to end it.
//! word 1  lengths   key_len:16 | value_len:32
//! word 2  version   the entry's version (valid once the write has ended)
//! word 3  deadline  absolute expiry in clock nanoseconds, or ttl::NEVER
//! word 4  mark      the eviction policy's ring mark (shard lock only; see `policy`), and
//!                   the claim bit of an evictor that owns the chunk (see `slab::evict`)
//! word 5… key bytes, zero-padded to a word, then value bytes, zero-padded to a word
//! ```
//!
//! Invariants:
//! - A published chunk (one the index points at) is rewritten only by a writer holding the
//!   bucket lock of the slot that points at it, for the same key, inside `begin_write` /
//!   `end_write`: an update whose value fits the same size class. Any other new value goes
//!   into a fresh chunk, and the old one is retired (made free) only after the index stopped
//!   pointing at it. Either way a reader that validates its copy got one entry's data, whole,
//!   and the key of a published chunk never changes.
//! - The key length is 0 exactly when the chunk holds no entry (keys are never empty); the
//!   lengths change only while `seq` is odd.
//! - Readers never write a chunk. (Reference bits live beside the arena, in the slab, because a
//!   reader that stalls can wake up after its chunk's page was re-cut for another class: a
//!   write through its stale offset would land in the middle of someone else's entry.)
//! - The mark word belongs to the eviction policy: read and written only under the class
//!   lock, never by readers or by the entry's writer. The one exception is the claim bit: set
//!   under the shard lock, it is cleared by the thread that holds the claim, without the lock
//!   (nobody else writes the mark of a claimed chunk).
//! - Readers copy with relaxed atomic loads, then `fence(Acquire)`, then re-load `seq`
//!   (H.-J. Boehm, "Can seqlocks get along with programming language memory models?", 2012).

use crate::sync::{fence, AtomicU64, Ordering};

pub(crate) const HEADER_WORDS: usize = 5;
pub(crate) const HEADER_BYTES: usize = HEADER_WORDS * 8;

const KEY_LEN_MASK: u64 = 0xffff;
/// The mark word's claim bit, above any policy handle.
const CLAIMED: u64 = 1 << 63;
const VALUE_LEN_SHIFT: u32 = 16;

/// Bytes of chunk needed for an entry with these lengths.
pub(crate) fn bytes_needed(key_len: usize, value_len: usize) -> usize {
    HEADER_BYTES + words_for(key_len) * 8 + words_for(value_len) * 8
}

#[inline]
fn words_for(bytes: usize) -> usize {
    bytes.div_ceil(8)
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
        let lengths = self.w[1].load(Ordering::Relaxed);
        let key_len = (lengths & KEY_LEN_MASK) as usize;
        let value_len = (lengths >> VALUE_LEN_SHIFT) as usize;
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
        copy_out(
            &self.w[HEADER_WORDS + words_for(head.key_len)..],
            head.value_len,
            out,
        );
    }

    // ----- writer side (the caller owns the chunk) -----

    /// Starts writing a chunk the caller owns (a free one, or a published one under its
    /// bucket lock): readers that hold its id now fail validation until `end_write`.
    pub(crate) fn begin_write(&self) {
        let seq = self.w[0].load(Ordering::Relaxed);
        debug_assert!(seq & 1 == 0, "chunk already being written");
        self.w[0].store(seq + 1, Ordering::Relaxed);
        fence(Ordering::Release);
    }

    /// Writes an entry's lengths, deadline, key and value (inside `begin_write`/`end_write`).
    pub(crate) fn fill(&self, key: &[u8], value: &[u8], deadline: u64) {
        self.w[1].store(
            key.len() as u64 | (value.len() as u64) << VALUE_LEN_SHIFT,
            Ordering::Relaxed,
        );
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
        self.w[1].store(0, Ordering::Relaxed);
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

    /// Starts loading the header into the CPU cache, for a chunk the caller will read soon.
    #[inline]
    pub(crate) fn prefetch(&self) {
        crate::mapping::prefetch(&self.w[0]);
    }

    /// The policy's mark (under its shard lock), without the claim bit.
    pub(crate) fn mark(&self) -> u64 {
        self.w[4].load(Ordering::Relaxed) & !CLAIMED
    }

    /// Sets the policy's mark (under its shard lock), dropping any claim.
    pub(crate) fn set_mark(&self, mark: u64) {
        self.w[4].store(mark, Ordering::Relaxed);
    }

    /// Claims the chunk for the caller (under its shard lock): the victim search, the reaper
    /// and page moves pass it over, and releasing it is left to the claim's holder.
    pub(crate) fn claim(&self) {
        self.w[4].fetch_or(CLAIMED, Ordering::Relaxed);
    }

    /// Whether some thread holds a claim on the chunk (under its shard lock).
    pub(crate) fn is_claimed(&self) -> bool {
        // Acquire: pairs with `end_claim`, so a caller that sees the claim ended also sees the
        // `begin_write` that came before it.
        self.w[4].load(Ordering::Acquire) & CLAIMED != 0
    }

    /// Ends the caller's claim, without the shard lock; the chunk is being written by then,
    /// which keeps it from the victim search from now on.
    pub(crate) fn end_claim(&self) {
        self.w[4].fetch_and(!CLAIMED, Ordering::Release);
    }

    /// Whether the chunk holds an entry or is being written (else it is free). The lengths
    /// are read after an acquire load of `seq`, so a caller that sees the sequence a writer's
    /// `end_write` left also sees the lengths it wrote (loom found an evictor seeing the new
    /// sequence and the old, zero, lengths: a queued entry taken for free, and evicted forever).
    pub(crate) fn in_use(&self) -> bool {
        self.is_being_written() || self.w[1].load(Ordering::Relaxed) != 0
    }

    /// Whether a writer is filling the chunk right now: a chunk allocated but not yet
    /// published, or, for the length of one copy, a published one being updated in place.
    pub(crate) fn is_being_written(&self) -> bool {
        // Acquire: pairs with `end_write`'s release, so that what the caller reads next (the
        // header, the key) is at least as new as the write it saw end.
        self.w[0].load(Ordering::Acquire) & 1 == 1
    }
}

/// Little-endian word of up to 8 bytes, zero-padded: the stored form of key and value bytes.
#[inline]
fn pack_word(part: &[u8]) -> u64 {
    match <[u8; 8]>::try_from(part) {
        Ok(full) => u64::from_le_bytes(full),
        Err(_) => {
            let mut bytes = [0u8; 8];
            bytes[..part.len()].copy_from_slice(part);
            u64::from_le_bytes(bytes)
        }
    }
}

fn copy_in(words: &[AtomicU64], bytes: &[u8]) {
    for (w, part) in words.iter().zip(bytes.chunks(8)) {
        w.store(pack_word(part), Ordering::Relaxed);
    }
}

/// Appends `len` bytes stored in `words` to `out`: one 8-byte store per word, the last word
/// included whole (its padding lands in `out`'s spare capacity, past the new length).
#[inline]
fn copy_out(words: &[AtomicU64], len: usize, out: &mut Vec<u8>) {
    let word_count = words_for(len);
    let words = &words[..word_count];
    out.reserve(word_count * 8);
    let start = out.len();
    let dst = out.spare_capacity_mut().as_mut_ptr().cast::<u8>();
    for (i, w) in words.iter().enumerate() {
        let bytes = w.load(Ordering::Relaxed).to_le_bytes();
        // SAFETY: `reserve` made room for `word_count * 8` bytes past the old length, so the
        // 8 bytes at `i * 8` (for `i < word_count`) lie in the spare capacity; an unaligned
        // write of a byte array to it is valid whatever the alignment.
        unsafe { dst.add(i * 8).cast::<[u8; 8]>().write_unaligned(bytes) };
    }
    // SAFETY: the loop initialised the `word_count * 8 >= len` bytes after the old length,
    // inside the capacity reserved above.
    unsafe { out.set_len(start + len) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(n: usize) -> Vec<AtomicU64> {
        (0..n).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn a_filled_chunk_reads_back_whole() {
        for (key_len, value_len) in [(1, 0), (7, 9), (8, 8), (9, 17), (300, 1000)] {
            let w = words(bytes_needed(key_len, value_len) / 8);
            let chunk = Chunk::new(&w);
            let key: Vec<u8> = (0..key_len).map(|i| i as u8 ^ 0x5a).collect();
            let value: Vec<u8> = (0..value_len).map(|i| (i * 7) as u8).collect();
            chunk.begin_write();
            chunk.fill(&key, &value, 1234);
            assert!(
                chunk.read_begin().is_none(),
                "readers wait while a write is under way"
            );
            chunk.end_write(42);
            let seq = chunk.read_begin().unwrap();
            let head = chunk.head().unwrap();
            assert_eq!(
                (head.key_len, head.value_len, head.version, head.deadline),
                (key_len, value_len, 42, 1234)
            );
            assert!(chunk.key_equals(&head, &key));
            let mut other = key.clone();
            other[key_len - 1] ^= 1;
            assert!(!chunk.key_equals(&head, &other));
            let (mut k, mut v) = (Vec::new(), vec![9; 3]);
            chunk.copy_key(&head, &mut k);
            chunk.copy_value(&head, &mut v);
            assert_eq!((k, v), (key, value));
            assert!(chunk.read_end(seq));
        }
    }

    #[test]
    fn retiring_invalidates_readers_and_empties_the_chunk() {
        let w = words(8);
        let chunk = Chunk::new(&w);
        chunk.begin_write();
        chunk.fill(b"k", b"v", NEVER_FOR_TEST);
        chunk.end_write(1);
        let seq = chunk.read_begin().unwrap();
        chunk.retire();
        assert!(!chunk.read_end(seq));
        assert!(chunk.head().is_none());
        // An abandoned write (never ended) retires too.
        chunk.begin_write();
        chunk.fill(b"k", b"v", NEVER_FOR_TEST);
        chunk.retire();
        assert!(chunk.read_begin().is_some());
        assert!(chunk.head().is_none());
    }

    #[test]
    fn implausible_lengths_are_rejected() {
        let w = words(6);
        let chunk = Chunk::new(&w);
        w[1].store(8 | 64 << VALUE_LEN_SHIFT, Ordering::Relaxed);
        assert!(
            chunk.head().is_none(),
            "a value longer than the chunk is a torn read"
        );
    }

    const NEVER_FOR_TEST: u64 = u64::MAX;
}
