//! Moving pages between classes, so that memory follows the write mix.
//!
//! Each class counts the bytes it was asked for (halved whenever the total passes the arena's
//! size, so old traffic fades); its fair share of pages is that count's share of the total. A
//! class that needs room and holds fewer pages than its share takes one from the class
//! furthest above its share, instead of evicting its own entries. A class with no page at all
//! always takes one, and a page with no live chunk (after removals, expiry or `clear`) is
//! taken before anything is evicted. Giving each class pages in proportion to the bytes
//! written to it gives entries of every class about the same lifetime, the balance memcached's
//! age-based page mover aims for; memcached calls the failure this prevents "slab
//! calcification".
//!
//! A page's chunks are queued in the policy shards of the keys they hold, so a move gathers
//! them shard by shard, one lock at a time, never with a bucket lock inside one:
//!
//! 1. Under the donor's free lock: pick its page with the fewest live chunks, mark it
//!    *draining* (one page per class at a time), and take its free chunks off the free stack.
//!    From then on a chunk of the page that is freed is retired and left out of circulation.
//! 2. Shard by shard, under each shard lock: claim every chunk of the page queued there and
//!    not being written or claimed by another thread (see `evict`). Rounds repeat, holding no
//!    lock between them, until every chunk of the page is claimed by the mover or out of
//!    circulation: a chunk being written is published or abandoned soon, and another thread's
//!    claim ends soon.
//! 3. Holding no lock: take the claimed entries out of the index.
//! 4. Under the donor's free lock: start re-cutting the page (its layout word goes odd), reset
//!    the chunk headers of the new layout, and take the page off the class.
//! 5. Under the recipient's free lock: finish the layout and put the page's chunks on its free
//!    stack.
//!
//! A `release` of one of the page's chunks checks the page's layout under the chunk's shard
//! lock: until the mover claims the chunk under that lock, the page cannot be re-cut, and once
//! it has, `release` leaves the chunk to it.

use super::{queued, ClassFree, Slab, Taking, Unpublish};
use crate::chunk::Chunk;
use crate::sync::{self, Ordering};
use crate::ttl::Now;

/// Evictions a class makes between two checks of whether it deserves another page (fewer
/// when its page holds fewer chunks: once per page's worth of turnover).
const EVICTIONS_PER_BALANCE_CHECK: u32 = 16;
/// Allocations a shard counts before adding them to its class's demand: the demand counters
/// are shared by every writer, and a page's worth of turnover is what moves a page.
pub(super) const DEMAND_BATCH: u32 = 8;

impl Slab {
    /// Adds `chunks` allocations of `class` to its demand.
    pub(super) fn note_demand(&self, class: usize, chunks: u32) {
        let bytes = self.classes[class].chunk_words as u64 * 8 * u64::from(chunks);
        self.demand[class].fetch_add(bytes, Ordering::Relaxed);
        let total = self.demand_total.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let horizon = u64::from(self.arena.page_count()) * self.arena.page_bytes() as u64;
        if total > horizon
            && self
                .demand_total
                .compare_exchange(total, total / 2, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            for d in self.demand.iter() {
                let _ = d.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v / 2));
            }
        }
    }

    /// Pages `class` deserves by its share of recent demand.
    fn fair_pages(&self, class: usize) -> f64 {
        let total = self.demand_total.load(Ordering::Relaxed).max(1) as f64;
        self.demand[class].load(Ordering::Relaxed) as f64 / total
            * f64::from(self.arena.page_count())
    }

    /// Whether the class should take a page from another instead of evicting its own entries.
    /// Checked once per few evictions, since it reads every class's counters.
    fn balance_due(&self, class: usize, free: &mut ClassFree) -> bool {
        free.evictions_since_balance += 1;
        let period = EVICTIONS_PER_BALANCE_CHECK.min(self.classes[class].per_page as u32);
        if free.evictions_since_balance < period {
            return false;
        }
        free.evictions_since_balance = 0;
        f64::from(self.class_pages[class].load(Ordering::Relaxed)) + 1.0 <= self.fair_pages(class)
    }

    /// A class other than `recipient` with an empty page (moving it evicts nothing), else the
    /// class furthest above its fair share of pages (at least one page above, unless `any`).
    fn pick_donor(&self, recipient: usize, any: bool) -> Option<usize> {
        let with_empty_page = (0..self.classes.len())
            .find(|&c| c != recipient && self.class_empty_pages[c].load(Ordering::Relaxed) > 0);
        if with_empty_page.is_some() {
            return with_empty_page;
        }
        (0..self.classes.len())
            .filter(|&c| c != recipient && self.class_pages[c].load(Ordering::Relaxed) > 0)
            .map(|c| {
                (
                    c,
                    f64::from(self.class_pages[c].load(Ordering::Relaxed)) - self.fair_pages(c),
                )
            })
            .filter(|&(_, surplus)| any || surplus >= 1.0)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(c, _)| c)
    }

    /// For a class with no free chunk and no fresh page left: takes a page from another class
    /// when that is due (the class has none, some class has an empty page, or the class is
    /// below its fair share). True when a page was moved in.
    pub(super) fn make_room_in_pages(
        &self,
        class: usize,
        unpub: &dyn Unpublish,
        now: &Now<'_>,
    ) -> bool {
        let starving = {
            let mut free = sync::lock(&self.frees[class]);
            let starving = free.pages.is_empty();
            if !(self.empty_pages.load(Ordering::Relaxed) > 0
                || starving
                || self.balance_due(class, &mut free))
            {
                return false;
            }
            starving
        };
        self.move_page_to(class, unpub, now, starving)
    }

    /// Moves a page from a donor class to `recipient`; false when no page could be moved now.
    /// `any` accepts any donor with a page (the recipient has none at all). Takes and releases
    /// the locks itself.
    fn move_page_to(
        &self,
        recipient: usize,
        unpub: &dyn Unpublish,
        now: &Now<'_>,
        any: bool,
    ) -> bool {
        let Some(donor) = self.pick_donor(recipient, any) else {
            return false;
        };
        let Some(page) = self.start_draining(donor) else {
            return false;
        };
        self.gather_page(donor, page, unpub, now);
        {
            let mut free = sync::lock(&self.frees[donor]);
            self.arena.begin_recut(page);
            let class = &self.classes[recipient];
            for index in 0..class.per_page {
                Chunk::new(self.arena.chunk_words(page, index, class.chunk_words)).reset();
            }
            free.pages.retain(|&p| p != page);
            free.draining = None;
            self.class_pages[donor].fetch_sub(1, Ordering::Relaxed);
            if self.page_live[page as usize].swap(0, Ordering::Relaxed) == 0 {
                self.class_empty_pages[donor].fetch_sub(1, Ordering::Relaxed);
                self.empty_pages.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let mut free = sync::lock(&self.frees[recipient]);
        self.add_page(&mut free, recipient, page);
        true
    }

    /// Marks the donor's page with the fewest live chunks as draining and takes its free chunks
    /// off the free stack; `None` when the donor has no page or is already moving one.
    fn start_draining(&self, donor: usize) -> Option<u32> {
        let mut free = sync::lock(&self.frees[donor]);
        if free.draining.is_some() {
            return None;
        }
        let page = *free
            .pages
            .iter()
            .min_by_key(|&&p| self.page_live[p as usize].load(Ordering::Relaxed))?;
        free.draining = Some(page);
        free.free.retain(|&id| self.page_of(id) != page);
        Some(page)
    }

    /// Claims every chunk of the draining `page` that is queued in one of the donor's shards
    /// and takes its entry out of the index, round after round, until no chunk of the page is
    /// queued, being written or claimed by another thread. Each round's entries leave the index
    /// before the next round waits, so a writer that needs room under the entry limit to
    /// publish a chunk of this page finds it.
    fn gather_page(&self, donor: usize, page: u32, unpub: &dyn Unpublish, now: &Now<'_>) {
        let per_page = self.classes[donor].per_page;
        let mut mine = vec![false; per_page];
        let mut round = 0;
        loop {
            let mut claimed = Vec::new();
            for shard in 0..self.shard_count {
                let mut state = sync::lock(self.shard(donor, shard));
                let view = self.view(donor, shard);
                for (index, id) in self.page_ids(page, donor).enumerate() {
                    let chunk = view.chunk(id);
                    let mark = chunk.mark();
                    if queued(mark)
                        && self.owner(mark) == shard
                        && !chunk.is_claimed()
                        && !chunk.is_being_written()
                    {
                        state.queues.forget(&view, id);
                        chunk.claim();
                        mine[index] = true;
                        claimed.push(id);
                    }
                }
            }
            let view = self.view(donor, 0);
            for &id in &claimed {
                unpub.unpublish(id, view.chunk(id), None, now, Taking::Evict);
            }
            // Settled: every chunk is this mover's, or free and out of circulation.
            let settled = self.page_ids(page, donor).enumerate().all(|(index, id)| {
                let chunk = view.chunk(id);
                mine[index] || !(chunk.is_claimed() || queued(chunk.mark()) || chunk.in_use())
            });
            if settled {
                return;
            }
            sync::spin_hint(round);
            round += 1;
        }
    }
}
