//! How big the window should be: a climber on the hit-ratio curve, steered by ghost hits.
//!
//! A 1% window suits frequency-biased traffic; recency-biased traffic (a key read again soon
//! after it is first written, then never) wants a window of most of the cache, where W-TinyLFU
//! degenerates into LRU. The right size is where one more window entry would gain as many hits
//! as one fewer main entry loses, and two short ghost lists (key hashes only) measure both
//! sides of that directly:
//!
//! - **rejected**: the window candidates that lost the admission duel and left. A miss on one
//!   of them is a hit that a window a few entries larger would have had: the window grows by
//!   one entry.
//! - **evicted**: the main region's victims. A miss on one of them is a hit that a main region
//!   a few entries larger would have had: the window shrinks by one entry.
//!
//! Each ghost remembers the last 6.25% of capacity, so only what a small step would have
//! saved counts. A rejected key the sketch already knows (estimate above 2) does not count:
//! it lost the duel on frequency to main entries at least as popular, and keeping it longer
//! would have displaced one of them. This is what keeps a loop slightly larger than the cache
//! at the smallest window: there every rejected key comes back, and every one is familiar.
//!
//! # Why not Caffeine's sampled hill climber
//!
//! Caffeine steps the window every `10 x capacity` requests in whichever direction last raised
//! the hit ratio (Einziger, Eytan, Friedman, Manes, "Adaptive Software Cache Management",
//! Middleware 2018). slabcache shipped that climber first. On the recorded traces of
//! `benches/traces` it moved on noise: the whole-cache hit ratio of one sample against the
//! previous one mixes the effect of the window with the warm-up and the phases of the
//! workload. It grew the window while a cold cache filled, oscillated between 2% and 20% on
//! corda (which needs 20%), and on loops kept stepping away from the optimum. Ghost hits are
//! a measurement of the step itself, one per request, and unaffected by what the rest of the
//! workload does. Replayed over 59 (trace, size) pairs (5 runs each), the mean gap to Belady's
//! optimum went from 6.25 to 5.48 points, and corda moved from 2.4-4.3 points below LRU to
//! within 0.1.
//!
//! The window's size is kept as a fraction of capacity, so it follows the class as pages come
//! and go.

use std::collections::hash_map::HashMap;
use std::collections::VecDeque;
use std::hash::{BuildHasherDefault, Hasher};

/// The window starts at 1% of capacity and never takes everything.
const INITIAL_WINDOW: f64 = 0.01;
const MAX_WINDOW: f64 = 0.99;
/// Each ghost's length, as a share of capacity.
const GHOST_SHARE: f64 = 0.0625;
/// A rejected key with a higher estimate than this is familiar: its return is no evidence for
/// a larger window.
const FAMILIAR: u8 = 2;

pub(super) struct Climber {
    /// The window's share of capacity.
    window: f64,
    rejected: Ghost,
    evicted: Ghost,
}

impl Climber {
    pub(super) fn new() -> Climber {
        Climber {
            window: INITIAL_WINDOW,
            rejected: Ghost::default(),
            evicted: Ghost::default(),
        }
    }

    /// The window's share of capacity.
    pub(super) fn window(&self) -> f64 {
        self.window
    }

    /// A window candidate with key hash `hash` lost the admission duel and left; `capacity`
    /// is the class's entry capacity.
    pub(super) fn rejected(&mut self, hash: u32, capacity: u64) {
        self.rejected.remember(hash, ghost_length(capacity));
    }

    /// A main-region entry with key hash `hash` was evicted to make room.
    pub(super) fn evicted(&mut self, hash: u32, capacity: u64) {
        self.evicted.remember(hash, ghost_length(capacity));
    }

    /// A miss on the key with hash `hash`, whose sketch estimate before this request is
    /// `estimate()` (asked only for a ghost, since it costs a cache miss): moves the window by
    /// one entry if the key is a ghost.
    pub(super) fn missed(&mut self, hash: u32, estimate: impl FnOnce() -> u8, capacity: u64) {
        let entry = 1.0 / capacity.max(1) as f64;
        if self.rejected.holds(hash) && estimate() <= FAMILIAR {
            self.window = (self.window + entry).min(MAX_WINDOW);
        } else if self.evicted.holds(hash) {
            self.window = (self.window - entry).max(0.0);
        }
    }

    /// Bytes held by the ghosts.
    pub(super) fn bytes(&self) -> usize {
        self.rejected.bytes() + self.evicted.bytes()
    }

    #[cfg(test)]
    pub(super) fn set_window(&mut self, window: f64) {
        self.window = window;
    }
}

fn ghost_length(capacity: u64) -> usize {
    ((capacity as f64 * GHOST_SHARE) as usize).max(1)
}

/// The key hashes of the last few entries that left one way, oldest first, with a count per
/// hash for membership (a hash can be in the queue twice).
#[derive(Default)]
struct Ghost {
    order: VecDeque<u32>,
    counts: HashMap<u32, u32, BuildHasherDefault<SpreadHasher>>,
}

impl Ghost {
    fn remember(&mut self, hash: u32, length: usize) {
        self.order.push_back(hash);
        *self.counts.entry(hash).or_insert(0) += 1;
        while self.order.len() > length {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(count) = self.counts.get_mut(&oldest) {
                *count -= 1;
                if *count == 0 {
                    self.counts.remove(&oldest);
                }
            }
        }
    }

    fn bytes(&self) -> usize {
        // A table slot: the key, the count and a control byte.
        self.order.capacity() * 4 + self.counts.capacity() * 9
    }

    fn holds(&self, hash: u32) -> bool {
        self.counts.contains_key(&hash)
    }
}

/// The ghosts' keys are bits of a key hash already; this only spreads them over the 64 bits
/// the table's probing uses (its control bytes come from the top bits).
#[derive(Default)]
struct SpreadHasher(u64);

impl Hasher for SpreadHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 << 8 | u64::from(byte)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, value: u32) {
        self.0 = u64::from(value).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPACITY: u64 = 1000;
    /// 1000 x 6.25%.
    const GHOST_LENGTH: u32 = 62;

    #[test]
    fn a_returning_rejected_candidate_grows_the_window_and_a_returning_victim_shrinks_it() {
        let mut climber = Climber::new();
        let entry = 1.0 / CAPACITY as f64;
        climber.rejected(7, CAPACITY);
        climber.missed(7, || 1, CAPACITY);
        let grown = climber.window();
        assert!((grown - (INITIAL_WINDOW + entry)).abs() < 1e-12, "{grown}");
        climber.evicted(8, CAPACITY);
        climber.missed(8, || 9, CAPACITY);
        assert!(
            (climber.window() - INITIAL_WINDOW).abs() < 1e-12,
            "turned back"
        );
        climber.missed(8, || 9, CAPACITY);
        assert!(climber.window() < INITIAL_WINDOW, "and keeps shrinking");
    }

    #[test]
    fn a_familiar_rejected_key_is_no_evidence() {
        let mut climber = Climber::new();
        climber.rejected(7, CAPACITY);
        climber.missed(7, || FAMILIAR + 1, CAPACITY);
        assert_eq!(climber.window(), INITIAL_WINDOW);
        climber.missed(7, || FAMILIAR, CAPACITY);
        assert!(climber.window() > INITIAL_WINDOW);
    }

    #[test]
    fn strangers_leave_the_window_alone() {
        let mut climber = Climber::new();
        climber.rejected(1, CAPACITY);
        climber.evicted(2, CAPACITY);
        climber.missed(3, || 0, CAPACITY);
        assert_eq!(climber.window(), INITIAL_WINDOW);
    }

    #[test]
    fn ghosts_remember_only_the_last_share_of_capacity() {
        let mut climber = Climber::new();
        for hash in 0..=GHOST_LENGTH {
            climber.rejected(hash, CAPACITY);
        }
        climber.missed(0, || 0, CAPACITY);
        assert_eq!(climber.window(), INITIAL_WINDOW, "0 was forgotten");
        climber.missed(1, || 0, CAPACITY);
        assert!(climber.window() > INITIAL_WINDOW, "1 was not");
    }

    #[test]
    fn a_hash_remembered_twice_stays_until_both_are_forgotten() {
        let mut ghost = Ghost::default();
        ghost.remember(5, 3);
        ghost.remember(5, 3);
        ghost.remember(6, 3);
        ghost.remember(7, 3);
        assert!(ghost.holds(5), "its second record is still in the queue");
        ghost.remember(8, 3);
        assert!(!ghost.holds(5));
        assert_eq!(ghost.counts.len(), 3);
    }

    #[test]
    fn the_window_stays_within_bounds() {
        // At a capacity of 10 each ghost hit moves the window by 0.1, so 100 steps cross the
        // whole range. Under Miri a step takes milliseconds: three crossings' worth there.
        let steps = if cfg!(miri) { 300 } else { 5000 };
        let mut climber = Climber::new();
        for hash in 0..steps {
            climber.rejected(hash, 10);
            climber.missed(hash, || 0, 10);
        }
        assert_eq!(climber.window(), MAX_WINDOW);
        for hash in 0..steps {
            climber.evicted(hash, 10);
            climber.missed(hash, || 9, 10);
        }
        assert_eq!(climber.window(), 0.0);
    }
}
