//! Hot keys: which keys are read most, for [`Cache::hottest`](crate::Cache::hottest).
//!
//! The eviction policy's frequency sketch cannot answer this: a hit reaches it only when it
//! sets the entry's reference bit, so a hot key is counted about once per turn of the CLOCK
//! hand, and not at all while nothing is evicted. This module counts reads itself, on caches
//! built with `track_hot_keys(true)`. On other caches it does not exist (the cache holds
//! `None`), and a get pays one test of that: the cache runs a copy of its read path without
//! the tracker for them (`Cache::get_read`).
//!
//! What it owns:
//!
//! - **Sampling** ([`is_sampled`]). Every get hit has a number: the value of its thread's
//!   stripe of the hit counter when the hit is found, just before the hit is counted there.
//!   A hit is sampled when the wyrand output for its number ([`rng::nth`]) falls in the lowest
//!   1/[`SAMPLE_EVERY`] of its range: one hit in 16, as if by a coin toss per hit, for a
//!   load, two multiplies and a compare, with no state of its own and no thread-local (which
//!   in a shared library, as the C ABI is, costs a call). Pseudo-random rather than every
//!   16th hit, so that a workload cycling through keys in step with the period cannot have
//!   one key sampled every time and the others never. Threads that share a stripe share its
//!   numbers; two hits that read the same number are sampled together, which only blurs.
//! - **Buffering.** A sampled key hash goes into a striped, lossy [`ReadBuffer`], as hits do on
//!   their way to the eviction policy. The reader that fills its stripe, or finds it still
//!   full, folds the stripe into the tally if the tally's lock is free at that instant
//!   (`try_lock`): a reader never waits for this, and a stripe that could not be folded drops
//!   samples until a later sample of its thread folds it.
//! - **The tally** ([`Tally`]): a count-min sketch of sampled reads (4 rows of 4,096 `u16`
//!   counters, conservative update: only the counters at the key's minimum are raised) and
//!   the [`TRACKED`] keys with the highest estimates, sorted, highest first. Every
//!   [`HALVE_EVERY`] samples all counts are halved, so the counts are of recent reads: a key
//!   that cools down drops out, one that heats up rises within about a million reads.
//!
//! Invariants (the tally's lock held):
//!
//! - `top` is sorted by estimate, highest first, holds each hash at most once, and at most
//!   [`TRACKED`] of them.
//! - A tracked key's estimate in `top` is at most its current sketch estimate: counters only
//!   grow between halvings and a halving halves both (rounding down). So a key whose estimate
//!   is below the smallest tracked one is not tracked, and counting it needs no search.
//! - Counters never pass `2 * HALVE_EVERY - 1`, so a `u16` holds them: a halving leaves at
//!   most `HALVE_EVERY - 1`, and at most `HALVE_EVERY` increments come before the next.
//!
//! The tally's lock is a leaf: nothing is locked while it is held, and readers take it only
//! with `try_lock`, after their lookup has released any bucket lock. `hottest` takes it to
//! copy the tracked hashes, and looks their keys up in the index after releasing it.
//!
//! **Why a sketch and a top list, not Space-Saving.** Space-Saving (Metwally, Agrawal, El
//! Abbadi, 2005) with `k` counters gives an arriving untracked key the smallest counter plus
//! one, so with a long tail of cold keys that smallest counter climbs and fresh cold keys
//! enter with inflated counts that outrank real hot keys. Simulated over 3 million reads of
//! 100,000 keys, sampled one in 16, counts halved as here, and asking whether the top 10 held
//! at least 9 of the true top 10: with Zipf 0.99, Space-Saving did in 13 of 100 runs with 64
//! counters and 100 of 100 with 128; with Zipf 0.8, in 0 of 100 with 128 and 95 of 100 with
//! 256. This sketch and a top list of 64 did in 200 of 200 runs at both 0.99 and 0.8 (and 198
//! of 200 at 0.7), in 32 KiB. A cold key costs it four counter updates and one comparison
//! with the smallest tracked estimate.
//!
//! **Accuracy.** Estimates are sampled counts scaled by [`SAMPLE_EVERY`]; a key read `r`
//! times since the last halving has about `r / 16` samples, give or take `sqrt(r / 16)`, and
//! the sketch only ever adds to that, by collisions with other keys. Under uniform traffic
//! over 100,000 keys those collisions lift the highest estimates to about 9 samples a window,
//! so a key must take more than about one read in 3,000 to stand out of that noise.
//!
//! **Cost.** On a cache with the tracker a get pays the sampling decision, one hit in 16 a
//! buffer record, and one in 256 a fold of 16 samples into the tally (a few cache lines of the
//! sketch and, for keys at least as frequent as the tracked ones, a scan of the 64-entry top
//! list). Memory: about 34 KiB a cache. `docs/design.md` ("Hot keys") has the instruction
//! counts, measured with callgrind.

use crate::policy::{ReadBuffer, Recorded};
use crate::rng;
use crate::sync::{self, Mutex};

/// Reads per sample, on average: a power of two.
pub(crate) const SAMPLE_EVERY: u32 = 16;
/// Keys tracked: the most [`Cache::hottest`](crate::Cache::hottest) can return.
pub(crate) const TRACKED: usize = 64;
/// Samples between two halvings of every count: about half a million reads. At most
/// 2<sup>15</sup>, so that the sketch's counters fit a `u16`.
const HALVE_EVERY: u32 = 1 << 15;
const SKETCH_ROWS: usize = 4;
const SKETCH_WIDTH: usize = 4096;

/// The hot-key tracker of one cache.
pub(crate) struct HotKeys {
    samples: ReadBuffer,
    tally: Mutex<Tally>,
}

/// A tracked key: its hash and its estimated sampled reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tracked {
    hash: u64,
    samples: u16,
}

impl HotKeys {
    pub(crate) fn new() -> HotKeys {
        HotKeys {
            samples: ReadBuffer::new(),
            tally: Mutex::new(Tally::new()),
        }
    }

    /// Bytes it occupies: the sketch, the top list, the buffer and the lock.
    pub(crate) fn bytes(&self) -> usize {
        std::mem::size_of::<HotKeys>()
            + SKETCH_ROWS * SKETCH_WIDTH * std::mem::size_of::<u16>()
            + TRACKED * std::mem::size_of::<Tracked>()
    }

    /// Counts a sampled get hit of the key with this hash: into the calling thread's stripe
    /// of the buffer, and when that stripe is full, from the stripe into the tally if no one
    /// holds the tally's lock.
    pub(crate) fn record_sample(&self, hash: u64) {
        if self.samples.record(hash) != Recorded::Kept {
            if let Some(mut tally) = sync::try_lock(&self.tally) {
                self.samples.drain(|h| tally.count(h));
            }
        }
    }

    /// The tracked keys' hashes with their estimated reads (sampled reads scaled by
    /// [`SAMPLE_EVERY`]), most read first. Folds the caller's own stripe first, so a thread
    /// sees its own samples.
    pub(crate) fn hottest(&self) -> Vec<(u64, u64)> {
        let mut tally = sync::lock(&self.tally);
        self.samples.drain(|h| tally.count(h));
        tally
            .top
            .iter()
            .map(|t| (t.hash, u64::from(t.samples) * u64::from(SAMPLE_EVERY)))
            .collect()
    }
}

/// Whether the get hit with this number is sampled: one number in [`SAMPLE_EVERY`], spread
/// pseudo-randomly.
#[inline]
pub(crate) fn is_sampled(hit_number: u64) -> bool {
    rng::nth(hit_number) >> (64 - SAMPLE_EVERY.trailing_zeros()) == 0
}

/// Sampled reads: a count-min sketch and the most frequent keys (see the module doc).
struct Tally {
    /// `SKETCH_ROWS` rows of `SKETCH_WIDTH` counters, row after row.
    sketch: Box<[u16]>,
    /// The most frequent keys, highest estimate first.
    top: Vec<Tracked>,
    /// Samples counted since the last halving.
    since_halving: u32,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            sketch: vec![0; SKETCH_ROWS * SKETCH_WIDTH].into_boxed_slice(),
            top: Vec::with_capacity(TRACKED),
            since_halving: 0,
        }
    }

    /// Counts one sampled read of the key with this hash.
    fn count(&mut self, hash: u64) {
        let cells = cells(hash);
        let estimate = 1 + cells.iter().map(|&c| self.sketch[c]).min().unwrap_or(0);
        for &c in &cells {
            self.sketch[c] = self.sketch[c].max(estimate);
        }
        self.track(hash, estimate);
        self.since_halving += 1;
        if self.since_halving == HALVE_EVERY {
            self.halve();
        }
    }

    /// Puts the key's new estimate into the top list, if it belongs there.
    fn track(&mut self, hash: u64, estimate: u16) {
        let full = self.top.len() == TRACKED;
        let smallest = self.top.last().map_or(0, |t| t.samples);
        // Below the smallest tracked estimate, the key is not tracked (see the invariants).
        if full && estimate < smallest {
            return;
        }
        let at = match self.top.iter().position(|t| t.hash == hash) {
            Some(at) => at,
            None if !full => {
                self.top.push(Tracked { hash, samples: 0 });
                self.top.len() - 1
            }
            // A tie keeps the tracked key: replacing on ties would churn the list's tail.
            None if estimate > smallest => TRACKED - 1,
            None => return,
        };
        self.top[at] = Tracked {
            hash,
            samples: estimate,
        };
        let to = self.top[..at].partition_point(|t| t.samples >= estimate);
        self.top[to..=at].rotate_right(1);
    }

    /// Halves every count, forgetting the keys whose count reaches 0.
    fn halve(&mut self) {
        self.sketch.iter_mut().for_each(|c| *c /= 2);
        self.top.iter_mut().for_each(|t| t.samples /= 2);
        self.top.retain(|t| t.samples > 0);
        self.since_halving = 0;
    }
}

/// The sketch cells of a key, one per row, from disjoint 10-bit fields of a multiplicative
/// rehash (its high bits depend on every bit of the hash, so keys that share an index bucket,
/// and with it the hash's low bits, still land in unrelated cells).
fn cells(hash: u64) -> [usize; SKETCH_ROWS] {
    const FIELD_BITS: u32 = SKETCH_WIDTH.trailing_zeros();
    let mixed = hash.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    std::array::from_fn(|row| {
        let field = (mixed >> (64 - FIELD_BITS * (row as u32 + 1))) as usize & (SKETCH_WIDTH - 1);
        row * SKETCH_WIDTH + field
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(i: u64) -> u64 {
        i.wrapping_mul(0xd6e8_feb8_6659_fd93) ^ (i << 17)
    }

    /// The tally's top list as (key number, samples), for keys `0..keys`.
    fn top(tally: &Tally, keys: u64) -> Vec<(u64, u16)> {
        tally
            .top
            .iter()
            .map(|t| {
                let key = (0..keys).find(|&i| hash(i) == t.hash).expect("a known key");
                (key, t.samples)
            })
            .collect()
    }

    #[test]
    fn counts_each_key_and_orders_by_count() {
        let mut tally = Tally::new();
        for (key, reads) in [(1, 3), (2, 7), (3, 5)] {
            for _ in 0..reads {
                tally.count(hash(key));
            }
        }
        assert_eq!(top(&tally, 4), [(2, 7), (3, 5), (1, 3)]);
        tally.count(hash(1));
        tally.count(hash(1));
        tally.count(hash(1));
        assert_eq!(top(&tally, 4), [(2, 7), (1, 6), (3, 5)], "1 overtook 3");
    }

    #[test]
    fn cells_fall_in_their_rows_and_differ_for_neighbouring_hashes() {
        for i in 0..200 {
            let c = cells(hash(i));
            for (row, &cell) in c.iter().enumerate() {
                assert_eq!(cell / SKETCH_WIDTH, row);
            }
        }
        // Hashes that share their low 32 bits (one index bucket) still spread over the rows.
        let spread: std::collections::HashSet<usize> =
            (0..64u64).map(|i| cells(i << 32 | 5)[0]).collect();
        assert!(spread.len() > 32, "{} distinct cells", spread.len());
    }

    /// A full list replaces its smallest entry with a key whose estimate passes it, never
    /// with one that only ties it.
    #[test]
    fn a_full_list_replaces_its_minimum_only_when_passed() {
        let mut tally = Tally::new();
        // Key 0 counted twice, key 1 three times, the others four times.
        for key in 0..TRACKED as u64 {
            for _ in 0..2 + key.min(2) {
                tally.count(hash(key));
            }
        }
        assert_eq!(tally.top.len(), TRACKED);
        assert_eq!(tally.top.last().unwrap().hash, hash(0));
        assert_eq!(tally.top.last().unwrap().samples, 2);
        let newcomer = 1_000;
        tally.count(hash(newcomer));
        tally.count(hash(newcomer));
        assert!(
            !tally.top.iter().any(|t| t.hash == hash(newcomer)),
            "a tie does not replace"
        );
        tally.count(hash(newcomer));
        assert_eq!(tally.top.len(), TRACKED);
        let last_two: Vec<(u64, u16)> = top(&tally, newcomer + 1)[TRACKED - 2..].to_vec();
        assert_eq!(
            last_two,
            [(1, 3), (newcomer, 3)],
            "0 gave way to the newcomer"
        );
        assert!(!tally.top.iter().any(|t| t.hash == hash(0)));
        assert!(tally.top.windows(2).all(|w| w[0].samples >= w[1].samples));
    }

    #[test]
    fn halving_halves_every_count_and_forgets_the_ones() {
        let mut tally = Tally::new();
        for _ in 0..9 {
            tally.count(hash(1));
        }
        tally.count(hash(3));
        for _ in 0..40 {
            tally.count(hash(2));
        }
        assert_eq!(top(&tally, 4), [(2, 40), (1, 9), (3, 1)]);
        // Skip ahead to the last sample of the period, rather than count thousands of samples.
        tally.since_halving = HALVE_EVERY - 1;
        tally.count(hash(1));
        assert_eq!(tally.since_halving, 0, "halved");
        assert_eq!(
            top(&tally, 4),
            [(2, 20), (1, 5)],
            "halved, and 3 forgotten at 0"
        );
        let highest = tally.sketch.iter().max().copied();
        assert_eq!(highest, Some(20), "the sketch halved too");
        tally.count(hash(3));
        assert_eq!(top(&tally, 4), [(2, 20), (1, 5), (3, 1)], "3 counts afresh");
    }

    /// Whatever order the samples arrive in, the list ends holding keys with the highest
    /// counts, each with its count: with a few hundred keys in the sketch no key collides with
    /// others in all four rows, so estimates are exact.
    #[test]
    fn any_arrival_order_ends_with_the_top_counts() {
        // More keys than are tracked, and under Miri, where a count costs milliseconds, fewer.
        let (keys, scale) = if cfg!(miri) {
            (100u64, 150)
        } else {
            (300, 600)
        };
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        // Key `k` is sampled `1 + scale / (k + 1)` times, in a shuffled order.
        let exact = |k: u64| 1 + scale / (k as u16 + 1);
        let mut stream: Vec<u64> = (0..keys)
            .flat_map(|k| std::iter::repeat(k).take(usize::from(exact(k))))
            .collect();
        for i in (1..stream.len()).rev() {
            stream.swap(i, next(i as u64 + 1) as usize);
        }
        let mut tally = Tally::new();
        for &k in &stream {
            tally.count(hash(k));
        }
        let tracked = top(&tally, keys);
        assert_eq!(tracked.len(), TRACKED);
        for &(k, samples) in &tracked {
            assert_eq!(samples, exact(k), "key {k}");
        }
        let mut counts: Vec<u16> = (0..keys).map(exact).collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let tracked_counts: Vec<u16> = tracked.iter().map(|&(_, s)| s).collect();
        assert_eq!(
            tracked_counts,
            counts[..TRACKED],
            "the highest counts, in order"
        );
    }

    /// Samples reach the tally in batches, when a stripe fills; `hottest` folds its caller's
    /// stripe first, so one thread sees every read it sampled.
    #[test]
    fn every_sample_of_a_thread_reaches_the_tally() {
        let hot = HotKeys::new();
        let reads = if cfg!(miri) { 400 } else { 20_000 };
        let sampled = (0..reads).filter(|&n| is_sampled(n)).count() as u64;
        for _ in 0..sampled {
            hot.record_sample(hash(7));
        }
        assert_eq!(
            hot.hottest(),
            [(hash(7), sampled * u64::from(SAMPLE_EVERY))]
        );
        // One in 16: over 20,000 reads the number sampled is 1,250, with a standard deviation
        // of 34.
        let expected = reads / u64::from(SAMPLE_EVERY);
        if !cfg!(miri) {
            assert!(
                (expected * 9 / 10..=expected * 11 / 10).contains(&sampled),
                "{sampled} of {reads} sampled"
            );
        }
    }

    /// Hits whose numbers follow a cycle are sampled evenly, whatever the cycle's length: a
    /// key read once per cycle is sampled about one time in 16, not always or never.
    #[test]
    #[cfg_attr(
        miri,
        ignore = "56,000 samplings, all arithmetic: nothing for Miri to check, minutes of its time"
    )]
    fn sampling_has_no_period() {
        let cycles = 4_000;
        for period in [2u64, 3, 16, 32, 89, 144, 1000] {
            for offset in [0, period / 2] {
                let sampled = (0..cycles)
                    .filter(|&c| is_sampled(c * period + offset))
                    .count();
                // 250 expected, standard deviation 15.
                assert!(
                    (175..=325).contains(&sampled),
                    "period {period}, offset {offset}: {sampled} of {cycles}"
                );
            }
        }
    }
}
