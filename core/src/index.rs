//! The index: key hash → chunk id, in buckets of atomic words.
//!
//! A bucket is one cache line of 8 `AtomicU64`: a header (bit 0: the writers' lock; in a
//! chain's main bucket, bits 1..32: how many of the chain's entries are in its overflow
//! buckets; bits 32..64: overflow link, `overflow index + 1`, 0 for none) and 7 slots. A slot is 0 when
//! empty, else `OCCUPIED | tag << 32 | chunk id`, the tag being 16 hash bits the bucket index
//! does not use, so a reader dereferences a chunk only for a likely match. Keys are hashed with
//! xxh3 under a random per-cache seed, so nobody can aim keys at one bucket without knowing it.
//!
//! Readers take no lock: they scan the chain's slots with acquire loads and validate any match
//! against the chunk itself (key comparison under the chunk's seqlock). Writers lock the chain
//! by the main bucket's lock bit, and change slots only while holding it.
//!
//! Invariants:
//! - A live slot is never moved: an update stores the new chunk id into the slot that held the
//!   old one, so a scan that misses a concurrent update still meets the key exactly once.
//! - A full chain grows by an overflow bucket, which is never unlinked or freed before the
//!   index is: a reader following a link can never land in reused memory. An adversary who
//!   aims keys at one bucket gets a long chain (slower inserts into that bucket), bounded by the
//!   number of entries the cache can hold.
//! - A scan follows a chain's overflow link only while the main bucket counts entries in the
//!   overflow buckets. A chain overflows only when its main bucket is full, which a hash
//!   spread at five entries a bucket makes rare at any moment but, over a long run, common at
//!   some moment: most chains end up with an overflow bucket that is empty nearly all the time.
//!   Without the count every miss and every new key paid a cache miss to look into it. An entry
//!   present in an overflow bucket for the whole of a scan is counted for the whole of it, so
//!   the scan still meets it; one arriving or leaving during the scan is concurrent with it.

use std::ptr;

use crate::mapping::{Zeroable, ZeroedMap};
use crate::sync::{self, AtomicPtr, AtomicU64, Mutex, Ordering};

const SLOTS: usize = 7;
const LOCKED: u64 = 1;
/// One entry in the chain's overflow buckets, counted in the main bucket's header.
const OVERFLOW_ONE: u64 = 2;
const OVERFLOW_COUNT_MASK: u64 = 0xffff_fffe;
const LINK_SHIFT: u32 = 32;
const OCCUPIED: u64 = 1 << 63;
const TAG_SHIFT: u32 = 32;
/// Buckets in the first overflow segment; segment `k` holds `OVERFLOW_BASE << k`.
const OVERFLOW_BASE: usize = 64;
const OVERFLOW_SEGMENTS: usize = 26;

#[repr(C, align(64))]
#[derive(Default)]
struct Bucket {
    header: AtomicU64,
    slots: [AtomicU64; SLOTS],
}

// SAFETY: a bucket is eight atomic integers; all zero is an unlocked bucket of empty slots.
unsafe impl Zeroable for Bucket {}

/// A key's hash: the low bits pick the bucket, the top 16 are the tag.
#[derive(Clone, Copy)]
pub(crate) struct KeyHash(u64);

impl KeyHash {
    fn tag(self) -> u64 {
        self.0 >> 48
    }

    /// The hash itself (the eviction policy's and the hot-key tracker's key for frequency
    /// counts).
    pub(crate) fn value(self) -> u64 {
        self.0
    }

    /// The hash whose [`value`](KeyHash::value) this is.
    pub(crate) fn from_value(value: u64) -> KeyHash {
        KeyHash(value)
    }

    /// A value in `0..n` (`n` a power of two) that is the same for every write of one key.
    pub(crate) fn stripe(self, n: usize) -> usize {
        self.0 as usize & (n - 1)
    }
}

pub(crate) struct Index {
    buckets: ZeroedMap<Bucket>,
    mask: usize,
    seed: u64,
    overflow: Overflow,
}

impl Index {
    /// An index sized for about `expected_entries` at 5 per bucket.
    pub(crate) fn new(expected_entries: u64, seed: u64) -> std::io::Result<Self> {
        let buckets = (expected_entries / 5)
            .clamp(64, 1 << 40)
            .next_power_of_two() as usize;
        Ok(Index {
            buckets: ZeroedMap::new(buckets)?,
            mask: buckets - 1,
            seed,
            overflow: Overflow::new(),
        })
    }

    /// Bytes of buckets: the main table, plus the overflow buckets allocated so far (at most
    /// one per 7 entries the cache has held at once).
    pub(crate) fn overhead_bytes(&self) -> usize {
        self.buckets.bytes() + self.overflow.allocated() * std::mem::size_of::<Bucket>()
    }

    #[inline]
    pub(crate) fn hash(&self, key: &[u8]) -> KeyHash {
        KeyHash(xxhash_rust::xxh3::xxh3_64_with_seed(key, self.seed))
    }

    /// The chain `hash`'s key lives in.
    #[inline]
    pub(crate) fn chain_of(&self, hash: KeyHash) -> usize {
        hash.0 as usize & self.mask
    }

    /// Slot words of `hash`'s chain whose tag matches, for a lock-free reader. Each comes with
    /// its slot, so the reader can tell whether the slot changed under it.
    #[inline]
    pub(crate) fn candidates(&self, hash: KeyHash) -> Candidates<'_> {
        Candidates {
            index: self,
            bucket: self.buckets.get(self.chain_of(hash)),
            slot: 0,
            tag: hash.tag(),
            at_head: true,
        }
    }

    /// Starts loading `hash`'s main bucket into the CPU cache, for a lock or scan soon after.
    pub(crate) fn prefetch(&self, hash: KeyHash) {
        crate::mapping::prefetch(self.buckets.get(self.chain_of(hash)));
    }

    /// Locks `hash`'s chain for writing.
    pub(crate) fn lock(&self, hash: KeyHash) -> Locked<'_> {
        self.lock_chain(self.chain_of(hash), Some(hash.tag()))
    }

    /// Number of chains, for visiting every slot (`clear`, iteration).
    pub(crate) fn chain_count(&self) -> usize {
        self.mask + 1
    }

    /// Occupied slot words of chain `chain`, read without a lock (weakly consistent).
    pub(crate) fn chain_slots(&self, chain: usize) -> impl Iterator<Item = (&AtomicU64, u64)> + '_ {
        Candidates {
            index: self,
            bucket: self.buckets.get(chain),
            slot: 0,
            tag: ANY_TAG,
            at_head: true,
        }
    }

    /// Locks chain `chain` for writing, matching every occupied slot.
    pub(crate) fn lock_chain_at(&self, chain: usize) -> Locked<'_> {
        self.lock_chain(chain, None)
    }

    fn lock_chain(&self, chain: usize, tag: Option<u64>) -> Locked<'_> {
        let head = self.buckets.get(chain);
        let mut round = 0;
        loop {
            let header = head.header.load(Ordering::Relaxed);
            if header & LOCKED == 0
                && head
                    .header
                    .compare_exchange_weak(
                        header,
                        header | LOCKED,
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    )
                    .is_ok()
            {
                return Locked {
                    index: self,
                    head,
                    tag: tag.unwrap_or(ANY_TAG),
                };
            }
            sync::spin_hint(round);
            round += 1;
        }
    }

    fn next_in_chain(&self, bucket: &Bucket) -> Option<&Bucket> {
        let link = bucket.header.load(Ordering::Acquire) >> LINK_SHIFT;
        (link != 0).then(|| self.overflow.get(link as usize - 1))
    }
}

/// Matches every occupied slot (tags are 16 bits, so this value is never a tag).
const ANY_TAG: u64 = u64::MAX;

#[inline]
fn slot_matches(word: u64, tag: u64) -> bool {
    word & OCCUPIED != 0 && (tag == ANY_TAG || (word >> TAG_SHIFT) & 0xffff == tag)
}

/// The chunk id a slot word points at.
#[inline]
pub(crate) fn chunk_of(word: u64) -> u32 {
    word as u32
}

pub(crate) struct Candidates<'a> {
    index: &'a Index,
    bucket: &'a Bucket,
    slot: usize,
    tag: u64,
    /// Whether `bucket` is the chain's main bucket, whose header counts the overflow.
    at_head: bool,
}

impl<'a> Iterator for Candidates<'a> {
    type Item = (&'a AtomicU64, u64);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            while self.slot < SLOTS {
                let slot = &self.bucket.slots[self.slot];
                self.slot += 1;
                let word = slot.load(Ordering::Acquire);
                if slot_matches(word, self.tag) {
                    return Some((slot, word));
                }
            }
            if self.at_head {
                self.at_head = false;
                if self.bucket.header.load(Ordering::Acquire) & OVERFLOW_COUNT_MASK == 0 {
                    return None;
                }
            }
            self.bucket = self.index.next_in_chain(self.bucket)?;
            self.slot = 0;
        }
    }
}

/// A locked chain. Unlocks on drop.
pub(crate) struct Locked<'a> {
    index: &'a Index,
    head: &'a Bucket,
    tag: u64,
}

impl<'a> Locked<'a> {
    /// Occupied slots with the chain's tag (every occupied slot for `lock_chain_at`).
    pub(crate) fn matching(&self) -> Candidates<'a> {
        Candidates {
            index: self.index,
            bucket: self.head,
            slot: 0,
            tag: self.tag,
            at_head: true,
        }
    }

    /// Points `slot` (of this chain) at chunk `id`.
    pub(crate) fn set(&self, slot: &AtomicU64, id: u32) {
        debug_assert_ne!(
            self.tag, ANY_TAG,
            "set through a chain locked without a key"
        );
        if slot.load(Ordering::Relaxed) == 0 && self.in_overflow(slot) {
            // Counted before the slot is filled, so a scan that can see the entry follows
            // the link to it.
            self.head.header.fetch_add(OVERFLOW_ONE, Ordering::Relaxed);
        }
        slot.store(
            OCCUPIED | self.tag << TAG_SHIFT | u64::from(id),
            Ordering::Release,
        );
    }

    /// Empties `slot` (of this chain).
    pub(crate) fn clear(&self, slot: &AtomicU64) {
        slot.store(0, Ordering::Release);
        if self.in_overflow(slot) {
            self.head.header.fetch_sub(OVERFLOW_ONE, Ordering::Relaxed);
        }
    }

    /// Whether `slot` lies in one of the chain's overflow buckets rather than its main one.
    fn in_overflow(&self, slot: &AtomicU64) -> bool {
        !self
            .head
            .slots
            .as_ptr_range()
            .contains(&std::ptr::from_ref(slot))
    }

    /// An empty slot of the chain, growing the chain by an overflow bucket when it is full.
    pub(crate) fn vacant(&self) -> &'a AtomicU64 {
        let mut bucket = self.head;
        loop {
            if let Some(slot) = bucket.slots.iter().find(|s| s.load(Ordering::Relaxed) == 0) {
                return slot;
            }
            match self.index.next_in_chain(bucket) {
                Some(next) => bucket = next,
                None => {
                    let (link, fresh) = self.index.overflow.allocate();
                    // `bucket` is this chain's tail; the chain's lock (held) guards its header.
                    bucket
                        .header
                        .fetch_or((link as u64 + 1) << LINK_SHIFT, Ordering::Release);
                    return &fresh.slots[0];
                }
            }
        }
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.head.header.fetch_and(!LOCKED, Ordering::Release);
    }
}

/// Overflow buckets: segments of doubling size, allocated on demand, freed with the index.
struct Overflow {
    segments: [AtomicPtr<Bucket>; OVERFLOW_SEGMENTS],
    used: Mutex<usize>,
}

impl Overflow {
    fn new() -> Self {
        Overflow {
            segments: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            used: Mutex::new(0),
        }
    }

    /// Buckets allocated, in whole segments.
    fn allocated(&self) -> usize {
        let used = *sync::lock(&self.used);
        if used == 0 {
            return 0;
        }
        (0..=Self::locate(used - 1).0).map(Self::segment_len).sum()
    }

    fn segment_len(segment: usize) -> usize {
        OVERFLOW_BASE << segment
    }

    /// (segment, offset) of overflow bucket `n`.
    fn locate(n: usize) -> (usize, usize) {
        let segment = (n / OVERFLOW_BASE + 1).ilog2() as usize;
        (segment, n - OVERFLOW_BASE * ((1 << segment) - 1))
    }

    fn get(&self, n: usize) -> &Bucket {
        let (segment, offset) = Self::locate(n);
        let base = self.segments[segment].load(Ordering::Acquire);
        assert!(!base.is_null(), "overflow link to an unallocated segment");
        // SAFETY: a link to bucket `n` is published (release) only after its segment pointer
        // was stored (release, under `used`), and segments live until the index is dropped;
        // `offset < segment_len(segment)` by construction of `locate`.
        unsafe { &*base.add(offset) }
    }

    /// A fresh, empty overflow bucket and its number.
    fn allocate(&self) -> (usize, &Bucket) {
        let mut used = sync::lock(&self.used);
        let n = *used;
        let (segment, _) = Self::locate(n);
        assert!(segment < OVERFLOW_SEGMENTS, "index overflow exhausted");
        if self.segments[segment].load(Ordering::Relaxed).is_null() {
            let buckets: Box<[Bucket]> = (0..Self::segment_len(segment))
                .map(|_| Bucket::default())
                .collect();
            self.segments[segment]
                .store(Box::into_raw(buckets).cast::<Bucket>(), Ordering::Release);
        }
        *used += 1;
        (n, self.get(n))
    }
}

impl Drop for Overflow {
    fn drop(&mut self) {
        for (segment, ptr) in self.segments.iter().enumerate() {
            let base = ptr.load(Ordering::Relaxed);
            if !base.is_null() {
                let slice = ptr::slice_from_raw_parts_mut(base, Self::segment_len(segment));
                // SAFETY: `base` came from `Box::into_raw` of a boxed slice of exactly
                // `segment_len(segment)` buckets, and no reference into it outlives `&self`.
                drop(unsafe { Box::from_raw(slice) });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Publishes `count` ids for distinct keys into an index of 64 buckets, so chains must grow
    /// far beyond one bucket, then finds every one again by key hash and tag.
    #[test]
    fn full_buckets_grow_overflow_chains_and_lose_nothing() {
        let index = Index::new(0, 7).unwrap();
        assert_eq!(index.chain_count(), 64);
        let count = if cfg!(miri) { 300 } else { 20_000 };
        let keys: Vec<Vec<u8>> = (0..count).map(|i: u32| i.to_le_bytes().to_vec()).collect();
        for (id, key) in keys.iter().enumerate() {
            let locked = index.lock(index.hash(key));
            let slot = locked.vacant();
            locked.set(slot, id as u32);
        }
        for (id, key) in keys.iter().enumerate() {
            let found = index
                .candidates(index.hash(key))
                .filter(|&(_, w)| chunk_of(w) == id as u32)
                .count();
            assert_eq!(found, 1, "key {id}");
        }
        let total: usize = (0..index.chain_count())
            .map(|c| index.chain_slots(c).count())
            .sum();
        assert_eq!(total, count as usize);
    }

    /// One chain holding every key (the adversary's case): slower, never lossy.
    #[test]
    fn one_chain_holds_any_number_of_entries() {
        let index = Index::new(0, 1).unwrap();
        let hash = index.hash(b"same bucket");
        let count = if cfg!(miri) { 100 } else { 3_000 };
        for id in 0..count {
            let locked = index.lock(hash);
            let slot = locked.vacant();
            locked.set(slot, id);
        }
        let mut seen: Vec<u32> = index.candidates(hash).map(|(_, w)| chunk_of(w)).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..count).collect::<Vec<_>>());
        // Emptied slots are reused before the chain grows again.
        let locked = index.lock(hash);
        let (slot, _) = locked.matching().next().unwrap();
        locked.clear(slot);
        assert!(std::ptr::eq(locked.vacant(), slot));
    }

    /// The main bucket counts the entries in the chain's overflow buckets, so scans skip an
    /// overflow bucket that has emptied, and find what is in one that has not.
    #[test]
    fn the_main_bucket_counts_the_overflow() {
        let index = Index::new(0, 1).unwrap();
        let hash = index.hash(b"same bucket");
        let head = index.buckets.get(index.chain_of(hash));
        let overflow =
            || (head.header.load(Ordering::Relaxed) & OVERFLOW_COUNT_MASK) / OVERFLOW_ONE;
        let mut slots = Vec::new();
        for id in 0..10 {
            let locked = index.lock(hash);
            let slot = locked.vacant();
            locked.set(slot, id);
            slots.push(slot);
        }
        assert_eq!(overflow(), 3);
        // An update of an overflow entry counts nothing new.
        index.lock(hash).set(slots[9], 99);
        assert_eq!(overflow(), 3);
        for &slot in &slots[7..] {
            index.lock(hash).clear(slot);
        }
        assert_eq!(overflow(), 0);
        assert_eq!(index.candidates(hash).count(), 7, "main bucket only");
        let locked = index.lock(hash);
        locked.clear(slots[0]);
        assert!(std::ptr::eq(locked.vacant(), slots[0]), "main bucket first");
        drop(locked);
        // Overflow in use again: a scan follows the link to it.
        let locked = index.lock(hash);
        let slot = locked.vacant();
        locked.set(slot, 100);
        let slot = locked.vacant();
        locked.set(slot, 101);
        drop(locked);
        assert_eq!(overflow(), 1);
        let found: Vec<u32> = index.candidates(hash).map(|(_, w)| chunk_of(w)).collect();
        assert!(found.contains(&101), "{found:?}");
    }

    #[test]
    fn overflow_numbers_map_to_segments() {
        assert_eq!(Overflow::locate(0), (0, 0));
        assert_eq!(Overflow::locate(OVERFLOW_BASE - 1), (0, OVERFLOW_BASE - 1));
        assert_eq!(Overflow::locate(OVERFLOW_BASE), (1, 0));
        assert_eq!(
            Overflow::locate(3 * OVERFLOW_BASE - 1),
            (1, 2 * OVERFLOW_BASE - 1)
        );
        assert_eq!(Overflow::locate(3 * OVERFLOW_BASE), (2, 0));
    }
}
