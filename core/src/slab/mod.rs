//! Size classes: the geometry of chunks in pages, and the state each class keeps under its
//! lock. What happens to that state lives in the files below, one mechanism each:
//!
//! - [`alloc`]: taking a chunk for a new entry and giving chunks back (the free stack);
//! - [`evict`]: choosing victims and the claim that hands a victim's chunk to its evictor;
//! - [`pages`]: moving pages between classes, so memory follows the write mix;
//! - [`reaper`]: sampling a class for expired entries.
//!
//! Arena pages are cut into equal chunks, one size class per page. Class chunk sizes grow by
//! about 1.25x from the smallest entry to the largest, each enlarged to the largest multiple
//! of 8 that still fits the same number of chunks in a page, so no page has a wasted tail.
//! Chunk ids are `page << index_bits | index`; a reader turns one into an offset through the
//! page's layout word (see `arena`).
//!
//! Each class has a *free lock* over its pages and its free stack (a leaf lock, held for a push
//! or a pop), and `shard_count` *policy shards*, each with a *shard lock* over the eviction
//! policy of the keys that hash to it (`docs/design.md`, "Policy shards", says why and how
//! many). A chunk's mark word names the shard that queues it. Every chunk of a class's pages
//! is in exactly one of these states:
//!
//! - **free**: on the free stack, holding no entry;
//! - **taken**: popped by a writer, its write begun, about to be queued in its key's shard;
//! - **queued**: in one shard's queues, being written or holding an entry;
//! - **claimed**: owned by one thread that took it out of the bookkeeping under a shard lock
//!   (an evictor, the reaper, a page move) and finishes with it holding no lock (see
//!   [`evict`]).
//!
//! Lock order: no engine lock is taken while a free lock is held; a shard lock is never held
//! while a bucket lock is taken, nor two class locks at once. Whatever must happen in the
//! index (taking a victim out) happens after the shard lock is released, on a claimed chunk.

use crate::arena::{Arena, Layout};
use crate::chunk::{self, Chunk, EntryHead};
use crate::error::Error;
use crate::policy::{ClassChunks, Queues, ReadBuffer, Recorded, References};
use crate::sync::{self, AtomicBool, AtomicU32, AtomicU64, Mutex, Ordering};
use crate::ttl::Now;

mod alloc;
mod evict;

pub(crate) use alloc::Allocated;
mod pages;
mod reaper;

/// Smallest chunk: a header, a one-word key, an empty value.
const MIN_CHUNK_BYTES: usize = chunk::HEADER_BYTES + 8;
/// The most policy shards a class can have: a chunk's mark word names its shard in 8 bits.
pub(crate) const MAX_SHARDS: usize = 256;
/// Where a chunk's mark word keeps the shard whose policy queues it, above its handle.
const OWNER_SHIFT: u32 = 32;

/// What [`Unpublish::unpublish`] does with the entry of a claimed chunk.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Taking {
    /// Takes it out of the index, live or expired.
    Evict,
    /// Takes it out of the index and hands its place under the entry limit to the caller's
    /// new entry: the entry count stays as it is, and the caller holds that place.
    Replace,
    /// Takes it out only if it is expired (an in-place update may have refreshed it since the
    /// caller looked).
    IfExpired,
}

/// What [`Unpublish::unpublish`] found.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Unpublished {
    /// The entry was in the index, and this call took it out.
    Taken,
    /// The index no longer pointed at the chunk (a remove or a write took the entry out).
    Absent,
    /// The entry was live, and `Taking::IfExpired` left it in the index.
    Stayed,
}

/// Takes an entry out of the index on the slab's behalf (the slab knows no keys or hashes).
pub(crate) trait Unpublish {
    /// Hashes the key of the entry in claimed chunk `chunk` and starts loading its index
    /// bucket into the CPU cache, so that the miss overlaps the work before `unpublish`; the
    /// hash is for `unpublish`. `None` when the chunk holds no entry.
    fn prefetch_entry(&self, chunk: Chunk<'_>) -> Option<u64>;

    /// Takes the entry held in chunk `id` (whose key hashes to `hash`, when the caller knows
    /// it) out of the index, as `taking` says, if the index still points at it, and accounts
    /// for it as evicted or expired (as it is at `now`). Called holding no shard or free lock,
    /// on a chunk the caller claimed; the entry's bucket lock, taken inside, is what keeps an
    /// in-place update from changing the entry while it is judged. Only `Stayed` leaves the
    /// chunk published.
    fn unpublish(
        &self,
        id: u32,
        chunk: Chunk<'_>,
        hash: Option<u64>,
        now: &Now<'_>,
        taking: Taking,
    ) -> Unpublished;
}

/// Where a published chunk was, for releasing it after it left the index.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Published {
    pub(crate) id: u32,
    pub(crate) layout: Layout,
    pub(crate) seq: u64,
}

struct SizeClass {
    chunk_words: usize,
    per_page: usize,
}

/// What a class keeps under its *free lock*: its pages and its free chunks. A leaf lock,
/// held for a push or a pop: nothing else is locked while it is held.
struct ClassFree {
    /// Free chunk ids, used last-in first-out: the chunk freed last is the likeliest to be
    /// in the CPU cache still.
    free: Vec<u32>,
    pages: Vec<u32>,
    /// The page being moved to another class, if any: its chunks leave circulation as they
    /// are freed (see `pages`).
    draining: Option<u32>,
    evictions_since_balance: u32,
}

/// What one policy shard of a class keeps under its *shard lock*: the eviction policy of the
/// entries whose keys hash to the shard.
struct ShardState {
    queues: Queues,
    evictions_since_reap: u32,
    /// Allocations not yet added to the class's demand (see `pages`).
    pending_demand: u32,
}

pub(crate) struct Slab {
    arena: Arena,
    classes: Box<[SizeClass]>,
    frees: Box<[Mutex<ClassFree>]>,
    /// The policy shards, `shard_count` per class: class `c`'s shard `s` at
    /// `c * shard_count + s`.
    shards: Box<[Mutex<ShardState>]>,
    shard_count: usize,
    /// Pages per class, and pages with no live chunk per class and in all, readable without
    /// the free locks (for choosing donors).
    class_pages: Box<[AtomicU32]>,
    class_empty_pages: Box<[AtomicU32]>,
    empty_pages: AtomicU32,
    /// Decayed bytes requested per class, and their total.
    demand: Box<[AtomicU64]>,
    demand_total: AtomicU64,
    /// Chunks not free, per page (changed under the owning class's free lock).
    page_live: Box<[AtomicU32]>,
    /// The policy's per-chunk-id reference bits, and per shard, hits on their way to its
    /// frequency sketch.
    references: References,
    read_buffers: Box<[ReadBuffer]>,
    /// Whether any entry was ever written with a deadline: until then nothing can expire, and
    /// the reaper has nothing to look for.
    expiring: AtomicBool,
    index_bits: u32,
    /// Each shard's share of the entry limit.
    entry_limit: u64,
}

impl Slab {
    /// A slab of `page_count` pages of `1 << page_shift` bytes whose largest class holds
    /// `max_item_bytes`, with `shard_count` policy shards per class (a power of two);
    /// `entry_limit` caps the entries of each class.
    pub(crate) fn new(
        page_shift: u32,
        page_count: u32,
        max_item_bytes: usize,
        entry_limit: u64,
        shard_count: usize,
    ) -> Result<Slab, Error> {
        assert!(shard_count.is_power_of_two() && shard_count <= MAX_SHARDS);
        let page_bytes = 1usize << page_shift;
        let index_bits = (page_bytes / MIN_CHUNK_BYTES)
            .next_power_of_two()
            .trailing_zeros();
        if (u64::from(page_count) << index_bits) > 1 << 32 {
            return Err(Error::InvalidConfig(format!(
                "max_bytes: at most {} pages of {page_bytes} bytes are addressable",
                (u64::from(u32::MAX) >> index_bits)
            )));
        }
        let classes = size_classes(page_bytes, max_item_bytes);
        let class_count = classes.len();
        Ok(Slab {
            arena: Arena::new(page_shift, page_count)?,
            frees: (0..class_count)
                .map(|_| {
                    Mutex::new(ClassFree {
                        free: Vec::new(),
                        pages: Vec::new(),
                        draining: None,
                        evictions_since_balance: 0,
                    })
                })
                .collect(),
            shards: (0..class_count * shard_count)
                .map(|_| {
                    Mutex::new(ShardState {
                        queues: Queues::new(),
                        evictions_since_reap: 0,
                        pending_demand: 0,
                    })
                })
                .collect(),
            shard_count,
            class_pages: (0..class_count).map(|_| AtomicU32::new(0)).collect(),
            class_empty_pages: (0..class_count).map(|_| AtomicU32::new(0)).collect(),
            empty_pages: AtomicU32::new(0),
            demand: (0..class_count).map(|_| AtomicU64::new(0)).collect(),
            demand_total: AtomicU64::new(0),
            page_live: (0..page_count).map(|_| AtomicU32::new(0)).collect(),
            references: References::new((page_count as usize) << index_bits),
            read_buffers: (0..class_count * shard_count)
                .map(|_| ReadBuffer::new())
                .collect(),
            expiring: AtomicBool::new(false),
            classes: classes.into(),
            index_bits,
            entry_limit: entry_limit.div_ceil(shard_count as u64),
        })
    }

    /// The policy shard of keys with hash `hash`. Bits the index, the versions' stripes and
    /// the sketch do not use.
    #[inline]
    pub(crate) fn shard_of(&self, hash: u64) -> usize {
        (hash >> 40) as usize & (self.shard_count - 1)
    }

    /// The shard whose policy queues a chunk, from its mark word (meaningful while it is
    /// queued; any mark gives a shard that exists).
    fn owner(&self, mark: u64) -> usize {
        (mark >> OWNER_SHIFT) as usize & (self.shard_count - 1)
    }

    /// Class `class`'s shard `shard`.
    fn shard(&self, class: usize, shard: usize) -> &Mutex<ShardState> {
        &self.shards[class * self.shard_count + shard]
    }

    /// Bytes of bookkeeping outside the arena: the page and class tables and reference bits,
    /// fixed at build time, and the policies' handle tables, rings and sketches, which grow
    /// with the entries.
    pub(crate) fn overhead_bytes(&self) -> usize {
        let per_page = std::mem::size_of::<AtomicU64>() + std::mem::size_of::<AtomicU32>();
        let per_class = std::mem::size_of::<SizeClass>()
            + std::mem::size_of::<Mutex<ClassFree>>()
            + std::mem::size_of::<AtomicU32>()
            + std::mem::size_of::<AtomicU64>();
        let per_shard =
            std::mem::size_of::<Mutex<ShardState>>() + std::mem::size_of::<ReadBuffer>();
        let policies: usize = self
            .shards
            .iter()
            .map(|s| sync::lock(s).queues.bytes())
            .sum();
        self.arena.page_count() as usize * per_page
            + self.classes.len() * per_class
            + self.shards.len() * per_shard
            + self.references.bytes()
            + policies
    }

    pub(crate) fn arena_bytes_used(&self) -> u64 {
        u64::from(self.arena.pages_in_use()) * self.arena.page_bytes() as u64
    }

    /// The class whose chunks hold `bytes`, if any does.
    pub(crate) fn class_for(&self, bytes: usize) -> Option<usize> {
        let class = self.classes.partition_point(|c| c.chunk_words * 8 < bytes);
        (class < self.classes.len()).then_some(class)
    }

    fn page_of(&self, id: u32) -> u32 {
        id >> self.index_bits
    }

    /// Locates chunk `id` for a lock-free reader: the chunk, the layout it was computed from
    /// and that layout's size class, or `None` when the id does not fit the page's current
    /// layout. The reader must confirm with [`Slab::layout_unchanged`] after its seqlock check.
    // Always inlined into its two lock-free callers (a read and its prefetch): outlined, it
    // returned its three results through memory, some 8 instructions more per get.
    #[inline(always)]
    fn locate(&self, id: u32) -> Option<(Chunk<'_>, Layout, usize)> {
        let page = self.page_of(id);
        if page >= self.arena.page_count() {
            return None;
        }
        let layout = self.arena.layout(page);
        let class = layout.class()?;
        let geometry = &self.classes[class];
        let index = (id & ((1 << self.index_bits) - 1)) as usize;
        if index >= geometry.per_page {
            return None;
        }
        Some((
            Chunk::new(self.arena.chunk_words(page, index, geometry.chunk_words)),
            layout,
            class,
        ))
    }

    #[inline]
    fn layout_unchanged(&self, id: u32, layout: Layout) -> bool {
        self.arena.layout_unchanged(self.page_of(id), layout)
    }

    /// Reads chunk `id` without a lock: `read` sees the chunk and its header (if it holds an
    /// entry). Its result counts only if neither the chunk (its seqlock) nor its page (the
    /// page's layout word: the page may have been re-cut for another class) changed
    /// meanwhile; then it comes back with the chunk's size class. `None`: torn, read again.
    #[inline]
    pub(crate) fn read_optimistic<R>(
        &self,
        id: u32,
        read: impl FnOnce(Chunk<'_>, Option<EntryHead>) -> R,
    ) -> Option<(R, usize)> {
        let (chunk, layout, class) = self.locate(id)?;
        let seq = chunk.read_begin()?;
        let result = read(chunk, chunk.head());
        (chunk.read_end(seq) && self.layout_unchanged(id, layout)).then_some((result, class))
    }

    /// The size class of a published chunk, read while the chunk cannot move (its index
    /// slot's bucket lock is held).
    pub(crate) fn class_of(&self, id: u32) -> Option<usize> {
        self.arena.layout(self.page_of(id)).class()
    }

    /// Notes that an entry with a deadline is being written, so the reaper has work from now
    /// on. Written once: later calls only read the flag, so writers keep its line shared.
    #[inline]
    pub(crate) fn note_deadline(&self) {
        if !self.expiring.load(Ordering::Relaxed) {
            self.expiring.store(true, Ordering::Relaxed);
        }
    }

    /// The chunks of `class` as its shard `shard` sees them.
    fn view(&self, class: usize, shard: usize) -> ClassView<'_> {
        ClassView {
            slab: self,
            chunk_words: self.classes[class].chunk_words,
            shard,
        }
    }

    /// Records a hit on chunk `id` (of size class `class`), whose key has hash `hash`, for the
    /// eviction policy: sets the chunk's reference bit and, only when that bit was clear, adds
    /// the key to the read buffer for the frequency sketch. So the sketch counts a resident
    /// entry's hits once per visit of the CLOCK hand, not every one: the hits in between tell
    /// the policy nothing the set bit does not (the entry gets its second chance either way),
    /// and skipping them makes a hot key's reads cost no policy work at all. Replayed over
    /// the recorded traces this changes no hit ratio measurably (mean gap to OPT over 67
    /// pairs, 8 runs: 6.19 counting every hit, 6.12 this way), and it takes the sketch off the
    /// get path: a cache-resident get fell from 50 to 37 ns, the cost before the sketch.
    /// When the hit fills its read buffer and the shard lock is free, drains the buffer into
    /// the class's sketch; a reader never waits for that.
    #[inline]
    pub(crate) fn record_hit(&self, id: u32, class: usize, hash: u64) {
        if !self.references.touch(id) {
            return;
        }
        let shard = self.shard_of(hash);
        let buffer = class * self.shard_count + shard;
        if self.read_buffers[buffer].record(hash) == Recorded::Filled {
            if let Some(mut state) = sync::try_lock(self.shard(class, shard)) {
                self.drain_hits(&mut state, class, shard);
            }
        }
    }

    fn drain_hits(&self, state: &mut ShardState, class: usize, shard: usize) {
        self.read_buffers[class * self.shard_count + shard]
            .drain(|hash| state.queues.record_hit(hash));
    }

    /// The chunk ids of `page`, a page of `class`.
    fn page_ids(&self, page: u32, class: usize) -> impl DoubleEndedIterator<Item = u32> {
        let shift = self.index_bits;
        (0..self.classes[class].per_page as u32).map(move |i| page << shift | i)
    }

    /// Chunk `id` of a page whose layout cannot change meanwhile: the caller holds a claim on
    /// it, or the bucket lock of an index slot that points at it, or it is being written.
    pub(crate) fn chunk(&self, id: u32) -> Chunk<'_> {
        match self.locate(id) {
            Some((chunk, ..)) => chunk,
            None => unreachable!("chunk {id} addressed without its page's layout held stable"),
        }
    }
}

/// The chunks of one class, for code holding one of its locks or a claim on the chunk, under
/// which the chunk's page keeps its layout: a chunk is found from its id and the class's
/// geometry alone, without the layout word a lock-free reader must check. As the policy of
/// shard `shard` sees them, the mark word holds the chunk's handle in that shard's table and
/// the shard's number.
struct ClassView<'a> {
    slab: &'a Slab,
    chunk_words: usize,
    shard: usize,
}

impl<'a> ClassView<'a> {
    /// Chunk `id`, of a page of this class.
    #[inline]
    fn chunk(&self, id: u32) -> Chunk<'a> {
        let slab = self.slab;
        let page = slab.page_of(id);
        let index = (id & ((1 << slab.index_bits) - 1)) as usize;
        Chunk::new(slab.arena.chunk_words(page, index, self.chunk_words))
    }
}

impl ClassChunks for ClassView<'_> {
    fn handle(&self, id: u32) -> u32 {
        self.chunk(id).mark() as u32
    }

    fn set_handle(&self, id: u32, handle: u32) {
        let owner = if handle == 0 { 0 } else { self.shard as u64 };
        self.chunk(id)
            .set_mark(owner << OWNER_SHIFT | u64::from(handle));
    }

    fn references(&self) -> &References {
        &self.slab.references
    }

    fn prefetch(&self, id: u32) {
        self.chunk(id).prefetch();
    }
}

/// Whether a chunk's mark word says it is queued (it has a handle).
fn queued(mark: u64) -> bool {
    mark as u32 != 0
}

/// Chunk sizes from the smallest entry up to one holding `max_item_bytes`, growing by at most
/// ~1.25x (or by one chunk fewer per page, near the top where that is the smallest step), each
/// the largest multiple of 8 that fits its number of chunks in a page.
fn size_classes(page_bytes: usize, max_item_bytes: usize) -> Vec<SizeClass> {
    let mut classes = Vec::new();
    let mut per_page = page_bytes / MIN_CHUNK_BYTES;
    loop {
        let bytes = (page_bytes / per_page) & !7;
        classes.push(SizeClass {
            chunk_words: bytes / 8,
            per_page: page_bytes / bytes,
        });
        if bytes >= max_item_bytes {
            return classes;
        }
        // The next class has fewer chunks per page, but no bigger than a quarter more.
        per_page = (per_page - 1).min(page_bytes.div_ceil(bytes + bytes / 4));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes_grow_by_about_a_quarter_and_fill_their_pages() {
        let page = 1 << 17;
        let max_item = chunk::bytes_needed(crate::MAX_KEY_LEN, 4096);
        let classes = size_classes(page, max_item);
        assert_eq!(classes[0].chunk_words * 8 / MIN_CHUNK_BYTES, 1);
        assert!(classes.last().unwrap().chunk_words * 8 >= max_item);
        for pair in classes.windows(2) {
            let (a, b) = (pair[0].chunk_words * 8, pair[1].chunk_words * 8);
            assert!(b > a, "classes strictly grow");
            // Near the top, a page holds a handful of chunks and one chunk fewer is the
            // smallest step there is.
            let one_chunk_fewer = pair[1].per_page + 1 == pair[0].per_page;
            assert!(
                b <= a + a / 4 + 8 || one_chunk_fewer,
                "{a} -> {b} grows too fast"
            );
        }
        for c in &classes {
            let bytes = c.chunk_words * 8;
            assert_eq!(c.per_page, page / bytes);
            assert!(
                page - c.per_page * bytes < c.per_page * 8 + 8,
                "a page of {bytes}-byte chunks wastes its tail"
            );
        }
    }

    #[test]
    fn every_entry_size_has_a_class_that_holds_it() {
        let slab = Slab::new(
            17,
            2,
            chunk::bytes_needed(crate::MAX_KEY_LEN, 4096),
            u64::MAX,
            1,
        )
        .unwrap();
        let largest = chunk::bytes_needed(crate::MAX_KEY_LEN, 4096);
        for bytes in (MIN_CHUNK_BYTES..=largest).step_by(97).chain([largest]) {
            let class = slab.class_for(bytes).unwrap();
            assert!(slab.classes[class].chunk_words * 8 >= bytes);
            assert!(
                class == 0 || slab.classes[class - 1].chunk_words * 8 < bytes,
                "smallest class that fits"
            );
        }
        assert_eq!(slab.class_for((1 << 17) + 1), None);
    }

    /// Frees whatever it is asked to: no chunk here is ever published.
    struct NoIndex;

    impl Unpublish for NoIndex {
        fn prefetch_entry(&self, _: Chunk<'_>) -> Option<u64> {
            None
        }

        fn unpublish(
            &self,
            _: u32,
            _: Chunk<'_>,
            _: Option<u64>,
            _: &Now<'_>,
            _: Taking,
        ) -> Unpublished {
            Unpublished::Absent
        }
    }

    /// `evict_any` lists the classes with queued entries, then locks them one by one; a class
    /// can lose its last page to a move in between. Asking it for a victim then must find
    /// none, however often, and the reaper it runs every `EVICTIONS_PER_REAP` evictions must
    /// find nothing to sample (it indexed an empty page list once, and the panic left a chunk
    /// of the panicking writer's marked as being written forever, wedging the cache).
    #[test]
    fn a_class_without_pages_has_no_room_to_make() {
        let slab = Slab::new(17, 2, chunk::bytes_needed(16, 64), u64::MAX, 1).unwrap();
        let clock = crate::ttl::SystemClock::new();
        let now = Now::new(&clock);
        slab.note_deadline();
        assert!(sync::lock(&slab.frees[0]).pages.is_empty());
        for call in 0..64 {
            let mut state = sync::lock(slab.shard(0, 0));
            assert_eq!(
                slab.claim_victim(&mut state, 0, 0, 0, &now),
                None,
                "call {call} found a victim in a class with no page"
            );
            if slab.reap_due(&mut state) {
                drop(state);
                assert_eq!(slab.reap(0, &NoIndex, &now), 0);
            }
        }
    }
}
