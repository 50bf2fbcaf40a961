//! The measuring machinery: the key streams, the prefilled caches, the worker loop, the
//! threads released together, and the statistics of the runs.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use super::config::{
    Config, Mix, Workload, BLOCK, PREFILL_THREADS, SAMPLE_EVERY, SEED, STREAM_LEN, ZIPF_EXPONENT,
};
use crate::peers::{self, Contender, Key, Peer, VALUE_LEN};
use crate::rng::{mix64, Rng};
use crate::zipf::Zipf;

/// The key-id streams, drawn on first use and kept, so that every cache sees the same keys.
pub(super) struct Streams {
    universe: u32,
    capacity: usize,
    zipf: Zipf,
    /// Per workload (indexed as [`Workload::ALL`]): one stream per thread so far.
    per_thread: [Vec<Vec<u32>>; 2],
    /// Per workload: the inserts that prefill a cache.
    prefill: [Vec<u32>; 2],
}

impl Streams {
    pub(super) fn new(config: &Config) -> Streams {
        Streams {
            universe: config.universe,
            capacity: config.capacity,
            zipf: Zipf::new(config.universe.into(), ZIPF_EXPONENT),
            per_thread: Default::default(),
            prefill: Default::default(),
        }
    }

    /// `len` ids of `workload`, from a stream fixed by `stream`.
    fn draw(&self, workload: Workload, stream: u64, len: usize) -> Vec<u32> {
        let mut rng = Rng::new(mix64(SEED ^ (stream << 8) ^ workload as u64));
        let n = u64::from(self.universe);
        (0..len)
            .map(|_| {
                let id = match workload {
                    Workload::Zipf => scramble(self.zipf.sample(&mut rng) - 1, n),
                    Workload::Uniform => rng.below(n),
                };
                // The universe is a u32, so every id below it is too.
                id as u32
            })
            .collect()
    }

    /// The streams of the first `threads` threads under `workload`.
    pub(super) fn threads(&mut self, workload: Workload, threads: usize) -> &[Vec<u32>] {
        let w = workload as usize;
        while self.per_thread[w].len() < threads {
            let stream = self.per_thread[w].len() as u64 + 1;
            let ids = self.draw(workload, stream, STREAM_LEN);
            self.per_thread[w].push(ids);
        }
        &self.per_thread[w][..threads]
    }

    fn prefill(&mut self, workload: Workload) -> &[u32] {
        let w = workload as usize;
        if self.prefill[w].is_empty() {
            self.prefill[w] = self.draw(workload, 0, 2 * self.capacity);
        }
        &self.prefill[w]
    }
}

/// A fixed bijection of `0..n` (`n` up to 2^32) that scatters neighbouring ids: an
/// invertible mix of the smallest power-of-two range holding `n`, applied again until the
/// result falls below `n` (cycle walking, which keeps it a bijection of `0..n`; fewer than
/// two steps are expected, since the range is less than twice `n`).
fn scramble(id: u64, n: u64) -> u64 {
    debug_assert!(id < n && n <= 1 << 32);
    let bits = u64::BITS - (n - 1).leading_zeros();
    let mask = (1u64 << bits) - 1;
    let shift = (bits / 2).max(1);
    let mut x = id;
    loop {
        // Multiplying by an odd number and xor-ing in a right shift are each invertible
        // modulo 2^bits.
        x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15) & mask;
        x ^= x >> shift;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9) & mask;
        x ^= x >> shift;
        if x < n {
            return x;
        }
    }
}

/// A prefilled cache and everything a timed run of one point needs.
pub(super) struct Setup<'a> {
    cache: Box<dyn Contender>,
    streams: &'a [Vec<u32>],
    pattern: [bool; BLOCK],
}

impl<'a> Setup<'a> {
    /// Builds and prefills the cache, then warms it up with the mix.
    pub(super) fn new(
        config: &Config,
        streams: &'a mut Streams,
        cache: Peer,
        workload: Workload,
        mix: Mix,
        threads: usize,
    ) -> Setup<'a> {
        let cache = cache.build(config.capacity);
        prefill(&*cache, streams.prefill(workload));
        let setup = Setup {
            cache,
            streams: streams.threads(workload, threads),
            pattern: mix.pattern(),
        };
        if config.warmup_secs > 0.0 {
            setup.throughput(config.warmup_secs);
        }
        setup
    }

    /// One timed run: Mops/s of all threads together.
    pub(super) fn throughput(&self, secs: f64) -> f64 {
        let (ops, elapsed) = run_threads(self.streams.len(), secs, |t, stop| {
            drive::<false>(&*self.cache, &self.streams[t], &self.pattern, stop).0
        });
        mops(ops.iter().sum(), elapsed)
    }

    /// Timed gets and timed inserts, in nanoseconds, of all threads over `secs`.
    pub(super) fn latencies(&self, secs: f64) -> [Vec<u64>; 2] {
        let (samples, _) = run_threads(self.streams.len(), secs, |t, stop| {
            drive::<true>(&*self.cache, &self.streams[t], &self.pattern, stop).1
        });
        samples.into_iter().fold(
            [Vec::new(), Vec::new()],
            |[mut gets, mut inserts], [g, i]| {
                gets.extend(g);
                inserts.extend(i);
                [gets, inserts]
            },
        )
    }
}

/// Offers every id of `ids` to `cache`, from [`PREFILL_THREADS`] threads taking turns.
fn prefill(cache: &dyn Contender, ids: &[u32]) {
    std::thread::scope(|scope| {
        for t in 0..PREFILL_THREADS {
            scope.spawn(move || {
                for &id in ids.iter().skip(t).step_by(PREFILL_THREADS) {
                    cache.insert(&peers::key(id.into()), &peers::value(id.into()));
                }
            });
        }
    });
}

/// One thread's work: walks `ids` cyclically, a get or an insert at each position as
/// `pattern` says, until `stop` is set. Returns the operations made and, when `TIMED`, the
/// sampled latencies of gets and of inserts in nanoseconds.
fn drive<const TIMED: bool>(
    cache: &dyn Contender,
    ids: &[u32],
    pattern: &[bool; BLOCK],
    stop: &AtomicBool,
) -> (u64, [Vec<u64>; 2]) {
    let mut scratch = Vec::with_capacity(VALUE_LEN);
    let mut samples = [Vec::new(), Vec::new()];
    let mut counts = [0u32; 2];
    let mut blocks = 0u64;
    // A stream shorter than a block would never reach the stop check.
    assert!(ids.len() >= BLOCK, "a key stream needs at least one block");
    loop {
        for block in ids.chunks_exact(BLOCK) {
            for (&id, &insert) in block.iter().zip(pattern) {
                let key = peers::key(id.into());
                let kind = usize::from(insert);
                let began = (TIMED && sampled(&mut counts[kind])).then(Instant::now);
                if insert {
                    cache.insert(&key, &peers::value(id.into()));
                } else {
                    black_box(cache.get(&key, &mut scratch));
                }
                if let Some(began) = began {
                    samples[kind].push(nanos(began.elapsed()));
                }
            }
            blocks += 1;
            if stop.load(Ordering::Relaxed) {
                return (blocks * BLOCK as u64, samples);
            }
        }
    }
}

/// Counts one operation of a kind; true for the first of every [`SAMPLE_EVERY`], so that
/// every latency run has at least one sample of each kind it makes.
pub(crate) fn sampled(count: &mut u32) -> bool {
    let due = *count % SAMPLE_EVERY == 0;
    *count = count.wrapping_add(1);
    due
}

/// The floor: Mops/s of Zipf lookups on one thread in an unsynchronised map holding every
/// key, each copying its value out (median of the runs, after the warm-up).
pub(super) fn measure_floor(config: &Config, streams: &[Vec<u32>]) -> f64 {
    let map: hashbrown::HashMap<Key, [u8; VALUE_LEN]> = (0..config.universe)
        .map(|id| (peers::key(id.into()), peers::value(id.into())))
        .collect();
    let ids = &streams[0];
    let lookups = |_: usize, stop: &AtomicBool| {
        let mut scratch = Vec::with_capacity(VALUE_LEN);
        let mut blocks = 0u64;
        loop {
            for block in ids.chunks_exact(BLOCK) {
                for &id in block {
                    if let Some(value) = map.get(&peers::key(id.into())) {
                        scratch.clear();
                        scratch.extend_from_slice(value);
                    }
                    black_box(&mut scratch);
                }
                blocks += 1;
                if stop.load(Ordering::Relaxed) {
                    return blocks * BLOCK as u64;
                }
            }
        }
    };
    if config.warmup_secs > 0.0 {
        run_threads(1, config.warmup_secs, lookups);
    }
    median(
        (0..config.runs)
            .map(|_| {
                let (ops, elapsed) = run_threads(1, config.run_secs, lookups);
                mops(ops[0], elapsed)
            })
            .collect(),
    )
}

/// Runs `work(thread, stop)` on `threads` threads released together, sets `stop` after
/// `secs`, and returns what each returned and the time from the release until the last one
/// finished (which covers every operation counted).
pub(crate) fn run_threads<R: Send>(
    threads: usize,
    secs: f64,
    work: impl Fn(usize, &AtomicBool) -> R + Sync,
) -> (Vec<R>, Duration) {
    let stop = AtomicBool::new(false);
    let start = Barrier::new(threads + 1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (work, stop, start) = (&work, &stop, &start);
                scope.spawn(move || {
                    start.wait();
                    work(t, stop)
                })
            })
            .collect();
        start.wait();
        let began = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
        let results = workers
            .into_iter()
            .map(|w| w.join().expect("a benchmark worker panicked"))
            .collect();
        (results, began.elapsed())
    })
}

fn mops(ops: u64, elapsed: Duration) -> f64 {
    ops as f64 / elapsed.as_secs_f64() / 1e6
}

pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The median of `values` (at least one); the mean of the middle two for an even count.
pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    assert!(!values.is_empty(), "the median of nothing");
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// The nearest-rank percentile `p` (in `0..=1`) of `sorted` (ascending, at least one).
pub(crate) fn percentile(sorted: &[u64], p: f64) -> u64 {
    assert!(!sorted.is_empty(), "a percentile of nothing");
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_takes_the_middle_or_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(vec![7.0]), 7.0);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&sorted, 0.5), 500);
        assert_eq!(percentile(&sorted, 0.99), 990);
        assert_eq!(percentile(&sorted, 0.999), 999);
        assert_eq!(percentile(&sorted, 1.0), 1000);
        assert_eq!(percentile(&sorted, 0.0), 1);
        assert_eq!(percentile(&[42], 0.999), 42);
    }

    #[test]
    fn drive_makes_the_mix_it_is_given() {
        /// Counts the calls it gets.
        #[derive(Default)]
        struct Counter {
            gets: std::sync::atomic::AtomicU64,
            inserts: std::sync::atomic::AtomicU64,
        }
        impl Contender for Counter {
            fn get(&self, _: &Key, _: &mut Vec<u8>) -> bool {
                self.gets.fetch_add(1, Ordering::Relaxed);
                false
            }
            fn insert(&self, _: &Key, _: &[u8]) {
                self.inserts.fetch_add(1, Ordering::Relaxed);
            }
        }
        let ids: Vec<u32> = (0..4 * BLOCK as u32).collect();
        let stop = AtomicBool::new(true);
        let counter = Counter::default();
        let (ops, [gets, inserts]) = drive::<true>(&counter, &ids, &Mix::Read95.pattern(), &stop);
        assert_eq!(ops, BLOCK as u64);
        assert_eq!(counter.gets.into_inner(), 152);
        assert_eq!(counter.inserts.into_inner(), 8);
        // The first of each kind is timed, then one in 32.
        assert_eq!(gets.len(), 152usize.div_ceil(32));
        assert_eq!(inserts.len(), 1);
    }

    #[test]
    fn scramble_is_a_bijection_that_scatters_neighbours() {
        for n in [1u64, 2, 3, 7, 64, 1000, 4097] {
            let mut seen = vec![false; n as usize];
            for id in 0..n {
                let x = scramble(id, n);
                assert!(x < n, "n={n}: {id} -> {x}");
                assert!(!seen[x as usize], "n={n}: {x} reached twice");
                seen[x as usize] = true;
            }
        }
        let hot: Vec<u64> = (0..10).map(|id| scramble(id, 1_000_000)).collect();
        assert!(
            hot.windows(2).all(|w| w[0].abs_diff(w[1]) > 1),
            "hot ids stay neighbours: {hot:?}"
        );
    }
}
