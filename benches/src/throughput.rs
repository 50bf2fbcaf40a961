//! Throughput and latency of slabcache and its peers under concurrent load, behind
//! `slabcache-bench throughput`.
//!
//! Every cache holds 16-byte keys and 64-byte values ([`peers::key`], [`peers::value`]) drawn
//! from a universe of key ids larger than the cache (by default a million ids for 100,000
//! entries), so that the cache has to choose what to keep. Key popularity is either a Zipf law
//! (s = 0.99, the skew of real cache traffic) or uniform. Under Zipf the ranks go through a
//! fixed bijective scramble of the universe, so that the hot keys are scattered ids rather
//! than neighbours, which could share cache lines or hash buckets by accident.
//!
//! Each point (cache × workload × mix × threads) gets a fresh cache, prefilled with twice its
//! capacity of inserts from the workload's own distribution so that it holds the popular keys
//! when measuring starts; a short warm-up runs the mix, then the median of several timed runs
//! is reported in Mops/s (operations of all threads together). Next to the caches:
//!
//! - the floor: the same Zipf lookups on one thread in an unsynchronised `hashbrown` map that
//!   holds every key, copying the value out as slabcache does: what a lookup costs with no
//!   concurrency control and no eviction bookkeeping at all;
//! - latency percentiles of gets and inserts at 2 threads under Zipf 95/5.
//!
//! The worker loop is built so that the harness costs next to nothing next to a cache
//! operation, whose cost is the thing measured:
//!
//! - each thread walks its own precomputed array of key ids (about a million, drawn once per
//!   workload and thread and shared by every cache, so that all see the same keys), read
//!   sequentially, so no random numbers are made while measuring;
//! - whether an operation is a get or an insert depends only on its position in a short block
//!   of operations, looked up in a small table: no division and no branch the predictor
//!   cannot learn, and each block holds exactly the mix's stated proportion;
//! - the shared stop flag is read once per block, not per operation;
//! - a get that misses does nothing more (no insert on a miss), so a read-only mix stays
//!   read-only and a 95/5 mix stays 95/5;
//! - latency runs read the clock around one operation in 32 of each kind only, and are kept
//!   apart from the throughput runs, which never read the clock.

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::peers::{self, Contender, Key, Peer, VALUE_LEN};
use crate::rng::{mix64, Rng};
use crate::text::{
    json_string, panel_origin, polyline, svg_start, xml_escape, y_grid_line, BOTTOM, LEFT,
    PANEL_HEIGHT, PANEL_WIDTH, RIGHT, TOP,
};
use crate::zipf::Zipf;

/// The Zipf exponent of the skewed workload.
const ZIPF_EXPONENT: f64 = 0.99;
/// Latency is measured at this many threads, under Zipf 95/5.
const LATENCY_THREADS: usize = 2;
/// Operations between two reads of the stop flag; a multiple of every mix's period (20 for
/// 95/5) and of [`SAMPLE_EVERY`], so that every block holds exactly the mix's proportion.
const BLOCK: usize = 160;
/// Key ids per thread: about a million, a whole number of blocks. Large enough that the
/// walk does not replay a short pattern the CPU cache could learn, small enough to draw fast.
const STREAM_LEN: usize = (1 << 20) / BLOCK * BLOCK;
/// A latency run times one get in this many, and one insert in this many.
const SAMPLE_EVERY: u32 = 32;
/// Threads that prefill a cache. stretto's insert waits until its buffer has been applied,
/// tens of microseconds on an idle machine; several threads overlap those waits, which cuts
/// its prefill several times over and costs the other caches little.
const PREFILL_THREADS: usize = 4;
/// Seeds the key streams; fixed, so that runs are comparable.
const SEED: u64 = 0x7468_726f_7567_6870;

/// How the key of each operation is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Workload {
    /// Zipf, s = 0.99, over scrambled ids.
    Zipf,
    Uniform,
}

impl Workload {
    pub const ALL: [Workload; 2] = [Workload::Zipf, Workload::Uniform];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Zipf => "zipf",
            Workload::Uniform => "uniform",
        }
    }

    pub fn from_name(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }
}

/// The proportion of gets and inserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mix {
    /// Gets only, on a prefilled cache.
    Read,
    /// 95% gets, 5% inserts.
    Read95,
    /// Half gets, half inserts.
    Half,
    /// Inserts only.
    Write,
}

impl Mix {
    pub const ALL: [Mix; 4] = [Mix::Read, Mix::Read95, Mix::Half, Mix::Write];

    pub fn name(self) -> &'static str {
        match self {
            Mix::Read => "read",
            Mix::Read95 => "95/5",
            Mix::Half => "50/50",
            Mix::Write => "write",
        }
    }

    pub fn from_name(name: &str) -> Option<Mix> {
        Mix::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Which positions of a block are inserts: the last of every `period` operations, where
    /// the mix has one insert per `period` (or none, or all).
    fn pattern(self) -> [bool; BLOCK] {
        let period = match self {
            Mix::Read => return [false; BLOCK],
            Mix::Write => return [true; BLOCK],
            Mix::Read95 => 20,
            Mix::Half => 2,
        };
        std::array::from_fn(|i| i % period == period - 1)
    }
}

/// An operation whose latency is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Get,
    Insert,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Insert => "insert",
        }
    }
}

/// What a throughput run measures, and how long it takes.
#[derive(Debug, Clone)]
pub struct Config {
    pub peers: Vec<Peer>,
    pub workloads: Vec<Workload>,
    pub mixes: Vec<Mix>,
    /// Thread counts, each at least 1.
    pub threads: Vec<usize>,
    /// Distinct key ids, at least 1.
    pub universe: u32,
    /// Each cache's capacity in entries, at least 1.
    pub capacity: usize,
    /// Timed runs per point, at least 1; the median is reported.
    pub runs: usize,
    /// Length of one timed run, in seconds.
    pub run_secs: f64,
    /// Warm-up before the timed runs of a point, in seconds.
    pub warmup_secs: f64,
}

impl Config {
    /// Every cache, both workloads and all mixes at 1, 2 and 4 threads; 5 runs of 1 s.
    pub fn full() -> Config {
        Config {
            peers: Peer::ALL.to_vec(),
            workloads: Workload::ALL.to_vec(),
            mixes: Mix::ALL.to_vec(),
            threads: vec![1, 2, 4],
            universe: 1_000_000,
            capacity: 100_000,
            runs: 5,
            run_secs: 1.0,
            warmup_secs: 0.2,
        }
    }

    /// Every cache and all mixes, Zipf only, at 1 and 2 threads; 3 runs of 0.3 s.
    pub fn quick() -> Config {
        Config {
            workloads: vec![Workload::Zipf],
            threads: vec![1, 2],
            runs: 3,
            run_secs: 0.3,
            warmup_secs: 0.1,
            ..Config::full()
        }
    }

    fn check(&self) {
        assert!(self.universe >= 1, "the key universe needs at least one id");
        assert!(self.capacity >= 1, "a cache needs a capacity of at least 1");
        assert!(self.runs >= 1, "a point needs at least one run");
        assert!(
            self.threads.iter().all(|&t| t >= 1),
            "thread counts must be at least 1"
        );
        assert!(
            self.run_secs > 0.0 && self.warmup_secs >= 0.0,
            "run and warm-up times must be positive"
        );
    }
}

/// One throughput measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub cache: Peer,
    pub workload: Workload,
    pub mix: Mix,
    pub threads: usize,
    /// Operations of all threads together, in millions per second (median of the runs).
    pub mops: f64,
}

/// Latency percentiles of one operation of one cache, in nanoseconds (one clock read
/// included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latency {
    pub cache: Peer,
    pub op: Op,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
}

/// The outcome of [`run`].
#[derive(Debug, Clone)]
pub struct Report {
    pub config: Config,
    /// In the order measured: workload, mix, thread count, cache.
    pub results: Vec<Point>,
    /// Nanoseconds per lookup in the unsynchronised map (median of the runs).
    pub floor_ns: f64,
    /// Get, then insert, for each cache in turn.
    pub latency: Vec<Latency>,
}

/// Measures the floor, every point of `config`, then the latencies; `progress` gets a line
/// per step.
pub fn run(config: &Config, progress: &mut dyn FnMut(&str)) -> Report {
    config.check();
    let mut streams = Streams::new(config);

    progress("floor: hashbrown, zipf read, 1 thread");
    let floor_ns = 1e3 / measure_floor(config, streams.threads(Workload::Zipf, 1));

    let mut results = Vec::new();
    for &workload in &config.workloads {
        for &mix in &config.mixes {
            for &threads in &config.threads {
                for &cache in &config.peers {
                    progress(&format!(
                        "{} {} {} {threads} thread{}",
                        cache.name(),
                        workload.name(),
                        mix.name(),
                        if threads == 1 { "" } else { "s" }
                    ));
                    let point = Setup::new(config, &mut streams, cache, workload, mix, threads);
                    let mops = median(
                        (0..config.runs)
                            .map(|_| point.throughput(config.run_secs))
                            .collect(),
                    );
                    results.push(Point {
                        cache,
                        workload,
                        mix,
                        threads,
                        mops,
                    });
                }
            }
        }
    }

    let mut latency = Vec::new();
    for &cache in &config.peers {
        progress(&format!(
            "{} latency: zipf 95/5 {LATENCY_THREADS} threads",
            cache.name()
        ));
        let point = Setup::new(
            config,
            &mut streams,
            cache,
            Workload::Zipf,
            Mix::Read95,
            LATENCY_THREADS,
        );
        let [gets, inserts] = point.latencies(config.run_secs * config.runs as f64);
        for (op, mut samples) in [(Op::Get, gets), (Op::Insert, inserts)] {
            samples.sort_unstable();
            latency.push(Latency {
                cache,
                op,
                p50_ns: percentile(&samples, 0.5),
                p99_ns: percentile(&samples, 0.99),
                p999_ns: percentile(&samples, 0.999),
            });
        }
    }

    Report {
        config: config.clone(),
        results,
        floor_ns,
        latency,
    }
}

/// The key-id streams, drawn on first use and kept, so that every cache sees the same keys.
struct Streams {
    universe: u32,
    capacity: usize,
    zipf: Zipf,
    /// Per workload (indexed as [`Workload::ALL`]): one stream per thread so far.
    per_thread: [Vec<Vec<u32>>; 2],
    /// Per workload: the inserts that prefill a cache.
    prefill: [Vec<u32>; 2],
}

impl Streams {
    fn new(config: &Config) -> Streams {
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
    fn threads(&mut self, workload: Workload, threads: usize) -> &[Vec<u32>] {
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
struct Setup<'a> {
    cache: Box<dyn Contender>,
    streams: &'a [Vec<u32>],
    pattern: [bool; BLOCK],
}

impl<'a> Setup<'a> {
    /// Builds and prefills the cache, then warms it up with the mix.
    fn new(
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
    fn throughput(&self, secs: f64) -> f64 {
        let (ops, elapsed) = run_threads(self.streams.len(), secs, |t, stop| {
            drive::<false>(&*self.cache, &self.streams[t], &self.pattern, stop).0
        });
        mops(ops.iter().sum(), elapsed)
    }

    /// Timed gets and timed inserts, in nanoseconds, of all threads over `secs`.
    fn latencies(&self, secs: f64) -> [Vec<u64>; 2] {
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
fn sampled(count: &mut u32) -> bool {
    let due = *count % SAMPLE_EVERY == 0;
    *count = count.wrapping_add(1);
    due
}

/// The floor: Mops/s of Zipf lookups on one thread in an unsynchronised map holding every
/// key, each copying its value out (median of the runs, after the warm-up).
fn measure_floor(config: &Config, streams: &[Vec<u32>]) -> f64 {
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
fn run_threads<R: Send>(
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
            .map(|w| w.join().expect("a throughput worker panicked"))
            .collect();
        (results, began.elapsed())
    })
}

fn mops(ops: u64, elapsed: Duration) -> f64 {
    ops as f64 / elapsed.as_secs_f64() / 1e6
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The median of `values` (at least one); the mean of the middle two for an even count.
fn median(mut values: Vec<f64>) -> f64 {
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
fn percentile(sorted: &[u64], p: f64) -> u64 {
    assert!(!sorted.is_empty(), "a percentile of nothing");
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Report {
    /// The measured Mops/s of `cache` at a point, if it was measured.
    pub fn mops(&self, cache: Peer, workload: Workload, mix: Mix, threads: usize) -> Option<f64> {
        self.results
            .iter()
            .find(|p| {
                p.cache == cache && p.workload == workload && p.mix == mix && p.threads == threads
            })
            .map(|p| p.mops)
    }

    /// slabcache's throughput divided by the best peer's at a point (above 1: slabcache is
    /// ahead); `None` unless slabcache and at least one peer were measured there.
    pub fn ratio_to_best_peer(&self, workload: Workload, mix: Mix, threads: usize) -> Option<f64> {
        let ours = self.mops(Peer::Slabcache, workload, mix, threads)?;
        Some(ours / self.best_peer_mops(workload, mix, threads)?)
    }

    /// The highest Mops/s of a peer (not slabcache) at a point, if any peer was measured.
    pub fn best_peer_mops(&self, workload: Workload, mix: Mix, threads: usize) -> Option<f64> {
        self.config
            .peers
            .iter()
            .filter(|&&peer| peer != Peer::Slabcache)
            .filter_map(|&peer| self.mops(peer, workload, mix, threads))
            .reduce(f64::max)
    }

    /// Nanoseconds per get of slabcache on one thread, Zipf read-only, if measured.
    pub fn slabcache_get_ns(&self) -> Option<f64> {
        self.mops(Peer::Slabcache, Workload::Zipf, Mix::Read, 1)
            .map(|mops| 1e3 / mops)
    }

    /// [`slabcache_get_ns`](Self::slabcache_get_ns) as a multiple of the floor.
    pub fn floor_multiple(&self) -> Option<f64> {
        self.slabcache_get_ns().map(|ns| ns / self.floor_ns)
    }

    /// `{"results":[{"cache","workload","mix","threads","mops"}, …],"floor_ns":…,
    /// "latency":[{"cache","op","p50_ns","p99_ns","p999_ns"}, …]}`.
    pub fn json(&self) -> String {
        let mut out = String::from("{\"results\":[");
        for (i, p) in self.results.iter().enumerate() {
            let _ = write!(
                out,
                "{}\n  {{\"cache\":{},\"workload\":{},\"mix\":{},\"threads\":{},\"mops\":{:.3}}}",
                if i == 0 { "" } else { "," },
                json_string(p.cache.name()),
                json_string(p.workload.name()),
                json_string(p.mix.name()),
                p.threads,
                p.mops
            );
        }
        let _ = write!(out, "\n],\"floor_ns\":{:.2},\"latency\":[", self.floor_ns);
        for (i, l) in self.latency.iter().enumerate() {
            let _ = write!(
                out,
                "{}\n  {{\"cache\":{},\"op\":{},\"p50_ns\":{},\"p99_ns\":{},\"p999_ns\":{}}}",
                if i == 0 { "" } else { "," },
                json_string(l.cache.name()),
                json_string(l.op.name()),
                l.p50_ns,
                l.p99_ns,
                l.p999_ns
            );
        }
        out.push_str("\n]}\n");
        out
    }

    /// A table per workload and mix (a row per cache, a column per thread count, and a last
    /// row with slabcache's ratio to the best peer), the floor, and the latency table.
    pub fn markdown(&self) -> String {
        let c = &self.config;
        let mut out = format!(
            "Throughput in Mops/s, all threads together: median of {} run{} of {} s after {} s \
             of warm-up, on a fresh cache of {} entries prefilled with {} inserts. {} key ids, \
             16-byte keys, 64-byte values; Zipf s = {ZIPF_EXPONENT} over scrambled ids, or \
             uniform.\n",
            c.runs,
            if c.runs == 1 { "" } else { "s" },
            c.run_secs,
            c.warmup_secs,
            c.capacity,
            2 * c.capacity,
            c.universe
        );
        for &workload in &c.workloads {
            for &mix in &c.mixes {
                let _ = write!(out, "\n### {} {}\n\n| cache |", workload.name(), mix.name());
                for &threads in &c.threads {
                    let _ = write!(
                        out,
                        " {threads} thread{} |",
                        if threads == 1 { "" } else { "s" }
                    );
                }
                out.push_str("\n|---|");
                out.push_str(&"---:|".repeat(c.threads.len()));
                out.push('\n');
                for &cache in &c.peers {
                    let _ = write!(out, "| {} |", cache.name());
                    for &threads in &c.threads {
                        let cell = self
                            .mops(cache, workload, mix, threads)
                            .map_or("n/a".to_string(), |m| format!("{m:.2}"));
                        let _ = write!(out, " {cell} |");
                    }
                    out.push('\n');
                }
                out.push_str("| slabcache / best peer |");
                for &threads in &c.threads {
                    let cell = self
                        .ratio_to_best_peer(workload, mix, threads)
                        .map_or("n/a".to_string(), |r| format!("{r:.2}×"));
                    let _ = write!(out, " **{cell}** |");
                }
                out.push('\n');
            }
        }

        let _ = write!(
            out,
            "\nFloor: an unsynchronised hashbrown map holding every key, Zipf lookups on one \
             thread copying the value out: {:.1} ns per lookup.",
            self.floor_ns
        );
        if let (Some(ns), Some(multiple)) = (self.slabcache_get_ns(), self.floor_multiple()) {
            let _ = write!(
                out,
                " slabcache's get on one thread (Zipf, read-only): {ns:.1} ns, \
                 {multiple:.2}× the floor."
            );
        }
        out.push('\n');

        let _ = write!(
            out,
            "\n### Latency, zipf 95/5 at {LATENCY_THREADS} threads\n\nNanoseconds; one \
             operation in {SAMPLE_EVERY} of each kind timed, one clock read included.\n\n\
             | cache | get p50 | get p99 | get p99.9 | insert p50 | insert p99 | insert p99.9 |\n\
             |---|---:|---:|---:|---:|---:|---:|\n"
        );
        for row in self.latency.chunk_by(|a, b| a.cache == b.cache) {
            let _ = write!(out, "| {} |", row[0].cache.name());
            for op in [Op::Get, Op::Insert] {
                match row.iter().find(|l| l.op == op) {
                    Some(l) => {
                        let _ = write!(out, " {} | {} | {} |", l.p50_ns, l.p99_ns, l.p999_ns);
                    }
                    None => out.push_str(" n/a | n/a | n/a |"),
                }
            }
            out.push('\n');
        }
        out
    }

    /// Mops/s against thread count, a line per cache, a panel per mix, Zipf workload.
    pub fn svg(&self) -> String {
        let mixes: Vec<Mix> = self
            .config
            .mixes
            .iter()
            .copied()
            .filter(|&mix| {
                self.results
                    .iter()
                    .any(|p| p.workload == Workload::Zipf && p.mix == mix)
            })
            .collect();
        let mut out = svg_start(mixes.len(), PANELS_PER_ROW);
        let mut x = 16.0;
        for &cache in &self.config.peers {
            let (colour, stroke) = style(cache);
            let _ = writeln!(
                out,
                "<line x1=\"{x}\" y1=\"17\" x2=\"{}\" y2=\"17\" stroke=\"{colour}\" \
                 stroke-width=\"{stroke}\"/><text x=\"{}\" y=\"21\">{}</text>",
                x + 24.0,
                x + 30.0,
                xml_escape(cache.name())
            );
            x += 40.0 + 7.0 * cache.name().len() as f64;
        }
        for (i, &mix) in mixes.iter().enumerate() {
            let (x0, y0) = panel_origin(i, PANELS_PER_ROW);
            self.draw_panel(&mut out, mix, x0, y0);
        }
        out.push_str("</svg>\n");
        out
    }

    /// One mix's panel with its top-left corner at (`x0`, `y0`). Thread counts are evenly
    /// spaced whatever their values, so that 1, 2, 4, 8, 16 read as a doubling axis, and
    /// kept off the frame, so that the end points stay visible.
    fn draw_panel(&self, out: &mut String, mix: Mix, x0: f64, y0: f64) {
        let (left, right) = (x0 + LEFT, x0 + PANEL_WIDTH - RIGHT);
        let (first_x, last_x) = (left + INSET, right - INSET);
        let (top, bottom) = (y0 + TOP, y0 + PANEL_HEIGHT - BOTTOM);
        let points: Vec<&Point> = self
            .results
            .iter()
            .filter(|p| p.workload == Workload::Zipf && p.mix == mix)
            .collect();
        let mut threads: Vec<usize> = points.iter().map(|p| p.threads).collect();
        threads.sort_unstable();
        threads.dedup();
        let x_of = |t: usize| {
            let i = threads.iter().position(|&x| x == t).unwrap_or(0);
            if threads.len() == 1 {
                (left + right) / 2.0
            } else {
                first_x + i as f64 / (threads.len() - 1) as f64 * (last_x - first_x)
            }
        };
        let highest = points.iter().map(|p| p.mops).fold(0.0, f64::max);
        let step = nice_step(highest);
        let y_high = ((highest / step).ceil() * step).max(step);
        let y_of = |mops: f64| bottom - mops / y_high * (bottom - top);
        let decimals = (-step.log10().floor()).max(0.0) as usize;

        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"13\" \
             font-weight=\"bold\">zipf {}</text>",
            (left + right) / 2.0,
            y0 + 20.0,
            xml_escape(mix.name())
        );
        let ticks = (y_high / step).round() as usize;
        for k in 0..=ticks {
            let mops = k as f64 * step;
            y_grid_line(out, left, right, y_of(mops), &format!("{mops:.decimals$}"));
        }
        for &t in &threads {
            let x = x_of(t);
            let _ = writeln!(
                out,
                "<line x1=\"{x:.1}\" y1=\"{bottom}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#000\"/>\
                 <text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{t}</text>",
                bottom + 4.0,
                bottom + 16.0
            );
        }
        let _ = writeln!(
            out,
            "<rect x=\"{left}\" y=\"{top}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#000\"/>\n\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">threads</text>\n\
             <text transform=\"translate({},{}) rotate(-90)\" text-anchor=\"middle\">Mops/s</text>",
            right - left,
            bottom - top,
            (left + right) / 2.0,
            bottom + 34.0,
            x0 + 14.0,
            (top + bottom) / 2.0
        );
        // slabcache last, so that it is drawn over the peers.
        let order = self
            .config
            .peers
            .iter()
            .filter(|&&c| c != Peer::Slabcache)
            .chain(self.config.peers.iter().filter(|&&c| c == Peer::Slabcache));
        for &cache in order {
            let mut line: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| p.cache == cache)
                .map(|p| (x_of(p.threads), y_of(p.mops)))
                .collect();
            line.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (colour, stroke) = style(cache);
            polyline(out, &line, colour, stroke, "", stroke + 1.0);
        }
    }
}

// ----- SVG layout -----

const PANELS_PER_ROW: usize = 2;
/// Room between the frame and the first and last thread count.
const INSET: f64 = 24.0;

/// Colour and stroke width of a cache's line: slabcache thick, the peers thin.
fn style(cache: Peer) -> (&'static str, f64) {
    match cache {
        Peer::Slabcache => ("#d62728", 3.5),
        Peer::Moka => ("#1f77b4", 1.5),
        Peer::QuickCache => ("#2ca02c", 1.5),
        Peer::MiniMoka => ("#9467bd", 1.5),
        Peer::Stretto => ("#ff7f0e", 1.5),
        Peer::LockedLru => ("#7f7f7f", 1.5),
    }
}

/// A grid step of 1, 2 or 5 times a power of ten giving about five lines up to `highest`.
fn nice_step(highest: f64) -> f64 {
    if highest <= 0.0 || !highest.is_finite() {
        return 1.0;
    }
    let raw = highest / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&step| step >= raw)
        .unwrap_or(10.0 * magnitude)
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
    fn mixes_have_their_stated_proportions_in_every_block() {
        let inserts = |mix: Mix| mix.pattern().iter().filter(|&&i| i).count();
        assert_eq!(inserts(Mix::Read), 0);
        assert_eq!(inserts(Mix::Read95) * 20, BLOCK);
        assert_eq!(inserts(Mix::Half) * 2, BLOCK);
        assert_eq!(inserts(Mix::Write), BLOCK);
        // Inserts are spread out, not bunched at one end of the block.
        let read95 = Mix::Read95.pattern();
        for window in read95.chunks_exact(20) {
            assert_eq!(window.iter().filter(|&&i| i).count(), 1);
        }
        assert_eq!(STREAM_LEN % BLOCK, 0);
        assert_eq!(BLOCK % SAMPLE_EVERY as usize, 0);
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

    #[test]
    fn names_round_trip() {
        for w in Workload::ALL {
            assert_eq!(Workload::from_name(w.name()), Some(w));
        }
        for m in Mix::ALL {
            assert_eq!(Mix::from_name(m.name()), Some(m));
        }
        assert_eq!(Mix::from_name("90/10"), None);
    }

    fn sample_report() -> Report {
        let config = Config {
            peers: vec![Peer::Slabcache, Peer::Moka, Peer::QuickCache],
            mixes: vec![Mix::Read, Mix::Write],
            ..Config::quick()
        };
        let mut results = Vec::new();
        for mix in [Mix::Read, Mix::Write] {
            for threads in [1, 2] {
                for (cache, mops) in [
                    (Peer::Slabcache, 10.0),
                    (Peer::Moka, 4.0),
                    (Peer::QuickCache, 8.0),
                ] {
                    results.push(Point {
                        cache,
                        workload: Workload::Zipf,
                        mix,
                        threads,
                        mops: mops * threads as f64,
                    });
                }
            }
        }
        let latency = [Peer::Slabcache, Peer::Moka, Peer::QuickCache]
            .into_iter()
            .flat_map(|cache| {
                [Op::Get, Op::Insert].map(|op| Latency {
                    cache,
                    op,
                    p50_ns: 50,
                    p99_ns: 99,
                    p999_ns: 999,
                })
            })
            .collect();
        Report {
            config,
            results,
            floor_ns: 25.0,
            latency,
        }
    }

    #[test]
    fn ratios_compare_slabcache_with_the_best_peer() {
        let report = sample_report();
        assert_eq!(
            report.ratio_to_best_peer(Workload::Zipf, Mix::Read, 2),
            Some(1.25)
        );
        assert_eq!(
            report.ratio_to_best_peer(Workload::Uniform, Mix::Read, 2),
            None
        );
        assert_eq!(report.slabcache_get_ns(), Some(100.0));
        assert_eq!(report.floor_multiple(), Some(4.0));
    }

    #[test]
    fn json_has_exactly_the_documented_keys() {
        let mut report = sample_report();
        report.results.truncate(1);
        report.latency.truncate(1);
        assert_eq!(
            report.json(),
            "{\"results\":[\n  \
             {\"cache\":\"slabcache\",\"workload\":\"zipf\",\"mix\":\"read\",\"threads\":1,\"mops\":10.000}\n\
             ],\"floor_ns\":25.00,\"latency\":[\n  \
             {\"cache\":\"slabcache\",\"op\":\"get\",\"p50_ns\":50,\"p99_ns\":99,\"p999_ns\":999}\n]}\n"
        );
    }

    #[test]
    fn markdown_has_a_table_per_mix_with_the_ratio_row() {
        let text = sample_report().markdown();
        let lines: Vec<&str> = text.lines().collect();
        let at = lines.iter().position(|l| *l == "### zipf read").unwrap();
        assert_eq!(lines[at + 2], "| cache | 1 thread | 2 threads |");
        assert_eq!(lines[at + 3], "|---|---:|---:|");
        assert_eq!(lines[at + 4], "| slabcache | 10.00 | 20.00 |");
        assert_eq!(lines[at + 6], "| quick_cache | 8.00 | 16.00 |");
        assert_eq!(
            lines[at + 7],
            "| slabcache / best peer | **1.25×** | **1.25×** |"
        );
        assert!(text.contains("### zipf write"));
        assert!(text.contains("25.0 ns per lookup"));
        assert!(text.contains("100.0 ns, 4.00× the floor"));
        assert!(text.contains("| moka | 50 | 99 | 999 | 50 | 99 | 999 |"));
    }

    #[test]
    fn svg_has_a_panel_per_mix_and_a_line_per_cache() {
        let chart = sample_report().svg();
        assert!(chart.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(chart.ends_with("</svg>\n"));
        assert_eq!(chart.matches("<polyline").count(), 2 * 3);
        assert_eq!(chart.matches("<circle").count(), 2 * 3 * 2);
        assert!(chart.contains(">zipf read</text>") && chart.contains(">zipf write</text>"));
        assert!(chart.contains("stroke=\"#d62728\" stroke-width=\"3.5\""));
        assert!(!chart.contains("NaN") && !chart.contains("inf"));
    }

    #[test]
    fn grid_steps_are_round() {
        assert_eq!(nice_step(10.0), 2.0);
        assert_eq!(nice_step(42.0), 10.0);
        assert_eq!(nice_step(0.3), 0.1);
        assert_eq!(nice_step(0.0), 1.0);
    }

    #[test]
    fn a_tiny_run_measures_every_point() {
        let config = Config {
            peers: vec![Peer::Slabcache, Peer::QuickCache],
            workloads: Workload::ALL.to_vec(),
            mixes: vec![Mix::Read, Mix::Read95],
            threads: vec![1],
            universe: 5_000,
            capacity: 500,
            runs: 1,
            run_secs: 0.02,
            warmup_secs: 0.005,
        };
        let mut lines = Vec::new();
        let report = run(&config, &mut |line| lines.push(line.to_string()));
        assert_eq!(report.results.len(), 2 * 2 * 2);
        assert!(report.results.iter().all(|p| p.mops > 0.0), "{report:?}");
        assert!(report.floor_ns > 0.0 && report.floor_ns.is_finite());
        assert_eq!(report.latency.len(), 2 * 2);
        assert!(report
            .latency
            .iter()
            .all(|l| l.p50_ns <= l.p99_ns && l.p99_ns <= l.p999_ns && l.p999_ns > 0));
        assert!(report
            .ratio_to_best_peer(Workload::Zipf, Mix::Read, 1)
            .is_some());
        assert!(lines.contains(&"quick_cache zipf 95/5 1 thread".to_string()));
        assert_eq!(lines.len(), 1 + 8 + 2);
    }
}
