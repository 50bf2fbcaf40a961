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
//! A move, one class lock at a time and never with a bucket lock inside one:
//!
//! 1. Under the donor's lock: pick its page with the fewest live chunks and no chunk being
//!    written or claimed, claim every queued chunk of it (see `evict`), drop its free chunks
//!    from the free stack and the page from the class.
//! 2. Holding no lock: take the claimed entries out of the index.
//! 3. Under the donor's lock again: start re-cutting the page (its layout word goes odd), so
//!    that a `release` of one of its chunks, which checks the layout under that lock, finds
//!    the page gone; reset the chunk headers of the new layout.
//! 4. Under the recipient's lock: finish the layout and put the page's chunks on its free
//!    stack.

use super::{ClassState, Slab, Taking, Unpublish};
use crate::chunk::Chunk;
use crate::sync::{self, Ordering};
use crate::ttl::Now;

/// Evictions a class makes between two checks of whether it deserves another page (fewer
/// when its page holds fewer chunks: once per page's worth of turnover).
const EVICTIONS_PER_BALANCE_CHECK: u32 = 16;

impl Slab {
    pub(super) fn note_demand(&self, class: usize) {
        let bytes = self.classes[class].chunk_words as u64 * 8;
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
    pub(super) fn balance_due(&self, class: usize, state: &mut ClassState) -> bool {
        state.evictions_since_balance += 1;
        let period = EVICTIONS_PER_BALANCE_CHECK.min(self.classes[class].per_page as u32);
        if state.evictions_since_balance < period {
            return false;
        }
        state.evictions_since_balance = 0;
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

    /// Moves a page from a donor class to `recipient`; false when no page could be moved now.
    /// `any` accepts any donor with a page (the recipient has none at all). Takes and releases
    /// the class locks itself.
    pub(super) fn move_page_to(
        &self,
        recipient: usize,
        unpub: &dyn Unpublish,
        now: &Now<'_>,
        any: bool,
    ) -> bool {
        let Some(donor) = self.pick_donor(recipient, any) else {
            return false;
        };
        let Some((page, claimed)) = self.claim_page(&mut sync::lock(&self.states[donor]), donor)
        else {
            return false;
        };
        let view = self.view(donor);
        for &id in &claimed {
            unpub.unpublish(id, view.chunk(id), now, Taking::Evict);
        }
        {
            let _donor = sync::lock(&self.states[donor]);
            self.arena.begin_recut(page);
            let class = &self.classes[recipient];
            for index in 0..class.per_page {
                Chunk::new(self.arena.chunk_words(page, index, class.chunk_words)).reset();
            }
        }
        let mut state = sync::lock(&self.states[recipient]);
        self.add_page(&mut state, recipient, page);
        true
    }

    /// Takes the donor's page with the fewest live chunks off the class, claiming its queued
    /// chunks, which come back with it; `None` when every page has a chunk being written or
    /// claimed.
    fn claim_page(&self, state: &mut ClassState, donor: usize) -> Option<(u32, Vec<u32>)> {
        let view = self.view(donor);
        let mut candidates = state.pages.clone();
        candidates.sort_by_key(|&p| self.page_live[p as usize].load(Ordering::Relaxed));
        let page = candidates.into_iter().find(|&p| {
            self.page_ids(p, donor).all(|id| {
                let chunk = view.chunk(id);
                !chunk.is_being_written() && !chunk.is_claimed()
            })
        })?;
        let claimed: Vec<u32> = self
            .page_ids(page, donor)
            .filter(|&id| view.chunk(id).in_use())
            .collect();
        for &id in &claimed {
            state.queues.forget(&view, id);
            view.chunk(id).claim();
        }
        state.free.retain(|&id| self.page_of(id) != page);
        state.pages.retain(|&p| p != page);
        self.class_pages[donor].fetch_sub(1, Ordering::Relaxed);
        if self.page_live[page as usize].swap(0, Ordering::Relaxed) == 0 {
            self.class_empty_pages[donor].fetch_sub(1, Ordering::Relaxed);
            self.empty_pages.fetch_sub(1, Ordering::Relaxed);
        }
        Some((page, claimed))
    }
}
