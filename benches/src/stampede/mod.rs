//! A cache stampede, behind `slabcache-bench stampede`: one hot key with a short TTL, read in
//! a loop by every thread, in front of a source whose load takes a millisecond (a sleep).
//!
//! Each strategy ([`Strategy`]) gets a fresh cache and source; the key is loaded once before
//! measuring starts. Every read is timed (two clock reads): the tally keeps the count, the
//! slowest, and one read in 32 for the percentiles (the throughput harness's sampling,
//! [`crate::throughput`]). The source counts the loads that reach it, and each cache the
//! misses: reads that found no value, fresh or stale, and so waited for a load (their own or
//! another reader's). Misses are counted by the caches, not inferred from slow reads, which
//! on a busy machine are mostly reads whose thread was preempted.
//!
//! Where the cache lets every reader that misses load (cache-aside), the source sees several
//! loads per expiry and the readers wait for them; single-flight cuts the loads to one per
//! expiry, but its readers still miss and wait for it; stale-while-revalidate and early
//! expiry (XFetch) refresh in the background, so readers do not miss.
//!
//! Next to it, the cost of a `get_or_load` hit against a plain `get` hit of the same key on
//! one thread: what read-through adds to a hit.

mod report;

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use slabcache::{Backed, Cache, Source};

use crate::peers::{self, Key};
use crate::throughput::harness::{median, nanos, percentile, run_threads, sampled};

pub use report::{HitCost, Report, Row};

/// The id of the hot key and its value ([`peers::key`], [`peers::value`]).
const HOT_ID: u64 = 1;
/// Seeds early expiry's draws, so that runs are comparable.
const SEED: u64 = 0x7374_616d_7065_6465;
/// Early expiry's beta: the paper's choice.
const XFETCH_BETA: f64 = 1.0;

/// How the readers keep the hot key cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// `Cache::get`; on a miss, load from the source and `insert_with_ttl`: every reader that
    /// misses loads (the thundering herd).
    CacheAside,
    /// `Cache::get_or_load_with_ttl`: one load per miss, the other readers wait for it.
    SingleFlight,
    /// A `Backed` with stale-while-revalidate: past its TTL the stale value is served while
    /// one background refresh runs.
    StaleWhileRevalidate,
    /// A `Backed` with early expiry (XFetch, beta 1): a read shortly before expiry starts a
    /// background refresh.
    EarlyExpiry,
    /// moka's `sync::Cache::get_with` (its single-flight), with a `time_to_live`.
    MokaGetWith,
}

impl Strategy {
    /// Every strategy, in report order.
    pub const ALL: [Strategy; 5] = [
        Strategy::CacheAside,
        Strategy::SingleFlight,
        Strategy::StaleWhileRevalidate,
        Strategy::EarlyExpiry,
        Strategy::MokaGetWith,
    ];

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::CacheAside => "cache-aside",
            Strategy::SingleFlight => "get_or_load",
            Strategy::StaleWhileRevalidate => "backed swr",
            Strategy::EarlyExpiry => "backed xfetch",
            Strategy::MokaGetWith => "moka get_with",
        }
    }
}

/// What a stampede run measures, and how long it takes.
#[derive(Debug, Clone)]
pub struct Config {
    /// Thread counts, each at least 1; every strategy runs at each.
    pub threads: Vec<usize>,
    /// Seconds each strategy runs at each thread count.
    pub run_secs: f64,
    /// The hot key's TTL.
    pub ttl: Duration,
    /// How long the source takes to load it.
    pub load_time: Duration,
    /// Stale-while-revalidate's window past the TTL.
    pub stale_window: Duration,
    /// Timed runs of the hit cost; the median is reported.
    pub hit_runs: usize,
    /// Operations of each kind per hit-cost run.
    pub hit_iterations: u64,
}

impl Config {
    /// Two threads, a 100 ms TTL, a 1 ms load, 2 s per strategy.
    pub fn standard() -> Config {
        Config {
            threads: vec![2],
            run_secs: 2.0,
            ttl: Duration::from_millis(100),
            load_time: Duration::from_millis(1),
            stale_window: Duration::from_secs(1),
            hit_runs: 5,
            hit_iterations: 1_000_000,
        }
    }

    /// [`standard`](Config::standard) at 0.5 s per strategy, 3 hit-cost runs: the showdown's
    /// share, about three seconds.
    pub fn quick() -> Config {
        Config {
            run_secs: 0.5,
            hit_runs: 3,
            ..Config::standard()
        }
    }

    fn check(&self) {
        assert!(
            self.threads.iter().all(|&t| t >= 1),
            "thread counts must be at least 1"
        );
        assert!(self.run_secs > 0.0, "a run must last");
        assert!(!self.ttl.is_zero(), "the hot key needs a TTL");
        assert!(
            self.hit_runs >= 1 && self.hit_iterations >= 1,
            "the hit cost needs a run"
        );
    }
}

/// Measures every strategy at every thread count, then the hit cost; `progress` gets a line
/// per step.
pub fn run(config: &Config, progress: &mut dyn FnMut(&str)) -> Report {
    config.check();
    let mut rows = Vec::new();
    for &threads in &config.threads {
        for strategy in Strategy::ALL {
            progress(&format!(
                "stampede: {} {threads} thread{}",
                strategy.name(),
                if threads == 1 { "" } else { "s" }
            ));
            rows.push(measure(config, strategy, threads));
        }
    }
    progress("stampede: get_or_load hit against get hit");
    let hit_cost = measure_hit_cost(config.hit_runs, config.hit_iterations);
    Report {
        config: config.clone(),
        rows,
        hit_cost,
    }
}

/// The source of truth: it sleeps for its load time and counts the loads it starts.
struct SlowSource {
    load_time: Duration,
    loads: AtomicU64,
}

impl SlowSource {
    fn new(load_time: Duration) -> SlowSource {
        SlowSource {
            load_time,
            loads: AtomicU64::new(0),
        }
    }

    /// The hot key's value, after the load time.
    fn fetch(&self) -> Vec<u8> {
        // Counted as it starts, so that a load still running when the run ends is counted.
        self.loads.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(self.load_time);
        peers::value(HOT_ID).to_vec()
    }
}

impl Source for SlowSource {
    type Error = Infallible;

    fn load(&self, _: &[u8]) -> Result<Option<Vec<u8>>, Infallible> {
        Ok(Some(self.fetch()))
    }

    // The stampede only reads.
    fn store(&self, _: &[u8], _: &[u8]) -> Result<(), Infallible> {
        Ok(())
    }

    fn delete(&self, _: &[u8]) -> Result<(), Infallible> {
        Ok(())
    }
}

/// A slabcache large enough for the one key.
fn small_cache() -> Cache {
    Cache::builder()
        .max_bytes(16 << 20)
        .build()
        .expect("a valid slabcache configuration")
}

/// A strategy's cache in front of its source.
enum Reader {
    /// Cache-aside, or `get_or_load` when `single_flight`.
    Plain {
        // Boxed as the `Backed`'s cache is (behind an `Arc`): the variants stay small.
        cache: Box<Cache>,
        source: SlowSource,
        ttl: Duration,
        single_flight: bool,
    },
    Backed(Backed<SlowSource>),
    /// moka counts no misses: the reader does.
    Moka {
        cache: moka::sync::Cache<Key, Arc<[u8]>>,
        source: SlowSource,
        misses: AtomicU64,
    },
}

impl Reader {
    fn new(strategy: Strategy, config: &Config) -> Reader {
        let source = SlowSource::new(config.load_time);
        let ttl = config.ttl;
        let backed = |source| Backed::builder(Arc::new(small_cache()), source).ttl(ttl);
        let built = |backed: slabcache::BackedBuilder<SlowSource>| {
            Reader::Backed(backed.build().expect("a valid Backed configuration"))
        };
        match strategy {
            Strategy::CacheAside | Strategy::SingleFlight => Reader::Plain {
                cache: Box::new(small_cache()),
                source,
                ttl,
                single_flight: strategy == Strategy::SingleFlight,
            },
            Strategy::StaleWhileRevalidate => {
                built(backed(source).stale_while_revalidate(config.stale_window))
            }
            Strategy::EarlyExpiry => {
                built(backed(source).early_expiry(XFETCH_BETA).random_seed(SEED))
            }
            Strategy::MokaGetWith => Reader::Moka {
                cache: moka::sync::Cache::builder()
                    .max_capacity(16)
                    .time_to_live(ttl)
                    .build(),
                source,
                misses: AtomicU64::new(0),
            },
        }
    }

    /// Reads the hot key as the strategy does; the length of its value.
    fn read(&self) -> usize {
        let key = peers::key(HOT_ID);
        match self {
            Reader::Plain {
                cache,
                source,
                ttl,
                single_flight: false,
            } => match cache.get(&key) {
                Some(value) => value.len(),
                None => {
                    let value = source.fetch();
                    // The value fits: a refusal cannot happen, and would only mean a miss.
                    let _ = cache.insert_with_ttl(&key, &value, Some(*ttl));
                    value.len()
                }
            },
            Reader::Plain {
                cache,
                source,
                ttl,
                single_flight: true,
            } => cache
                .get_or_load_with_ttl(&key, Some(*ttl), |_| {
                    Ok::<_, Infallible>(Some(source.fetch()))
                })
                .expect("the source never fails")
                .map_or(0, |value| value.len()),
            Reader::Backed(backed) => backed
                .get(&key)
                .expect("the source never fails")
                .map_or(0, |value| value.len()),
            // `get_with` looks the key up first too; the miss is counted on the way.
            Reader::Moka {
                cache,
                source,
                misses,
            } => match cache.get(&key) {
                Some(value) => value.len(),
                None => {
                    misses.fetch_add(1, Ordering::Relaxed);
                    cache.get_with(key, || Arc::from(source.fetch())).len()
                }
            },
        }
    }

    fn source(&self) -> &SlowSource {
        match self {
            Reader::Plain { source, .. } | Reader::Moka { source, .. } => source,
            Reader::Backed(backed) => backed.source(),
        }
    }

    /// Reads so far that found no value and waited for a load.
    fn misses(&self) -> u64 {
        match self {
            Reader::Plain { cache, .. } => cache.stats().misses,
            Reader::Backed(backed) => backed.cache().stats().misses,
            Reader::Moka { misses, .. } => misses.load(Ordering::Relaxed),
        }
    }
}

/// One thread's reads.
#[derive(Default)]
struct Tally {
    reads: u64,
    max_ns: u64,
    samples: Vec<u64>,
}

/// Reads until `stop` is set (at least once), timing each read.
fn read_until(reader: &Reader, stop: &AtomicBool) -> Tally {
    let mut tally = Tally::default();
    let mut count = 0;
    loop {
        let began = Instant::now();
        black_box(reader.read());
        let ns = nanos(began.elapsed());
        tally.reads += 1;
        tally.max_ns = tally.max_ns.max(ns);
        if sampled(&mut count) {
            tally.samples.push(ns);
        }
        if stop.load(Ordering::Relaxed) {
            return tally;
        }
    }
}

/// One strategy at one thread count.
fn measure(config: &Config, strategy: Strategy, threads: usize) -> Row {
    let reader = Reader::new(strategy, config);
    // The first load, before measuring: the run sees only expiries.
    reader.read();
    // The loads counted start inside `began..began + secs`, so no strategy can be credited
    // with fewer loads than it made, nor charged with one made outside the run.
    let began = Instant::now();
    let loads_before = reader.source().loads.load(Ordering::Relaxed);
    let misses_before = reader.misses();
    let (tallies, _) = run_threads(threads, config.run_secs, |_, stop| {
        read_until(&reader, stop)
    });
    let misses = reader.misses() - misses_before;
    let loads = reader.source().loads.load(Ordering::Relaxed) - loads_before;
    let secs = began.elapsed().as_secs_f64();
    let mut all = Tally::default();
    for tally in tallies {
        all.reads += tally.reads;
        all.max_ns = all.max_ns.max(tally.max_ns);
        all.samples.extend(tally.samples);
    }
    all.samples.sort_unstable();
    Row {
        strategy,
        threads,
        secs,
        loads,
        reads: all.reads,
        misses,
        p50_ns: percentile(&all.samples, 0.5),
        p99_ns: percentile(&all.samples, 0.99),
        p999_ns: percentile(&all.samples, 0.999),
        max_ns: all.max_ns,
    }
}

/// Nanoseconds per `get` hit and per `get_or_load` hit of one resident key on one thread:
/// the median of `runs` runs of `iterations` each, the two kinds alternating run by run.
fn measure_hit_cost(runs: usize, iterations: u64) -> HitCost {
    let cache = small_cache();
    let key = peers::key(HOT_ID);
    cache
        .insert(&key, &peers::value(HOT_ID))
        .expect("the hot key fits");
    let ns_per_op = |op: &dyn Fn() -> bool| {
        let began = Instant::now();
        for _ in 0..iterations {
            assert!(op(), "the key is resident");
        }
        began.elapsed().as_nanos() as f64 / iterations as f64
    };
    let get = || black_box(cache.get(black_box(&key))).is_some();
    let get_or_load = || {
        let loaded = cache.get_or_load(black_box(&key), |_| Ok::<_, Infallible>(None));
        matches!(black_box(loaded), Ok(Some(_)))
    };
    // Warm-up.
    ns_per_op(&get);
    ns_per_op(&get_or_load);
    let (mut gets, mut loads) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        gets.push(ns_per_op(&get));
        loads.push(ns_per_op(&get_or_load));
    }
    HitCost {
        get_ns: median(gets),
        get_or_load_ns: median(loads),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_stampede_reports_every_strategy_and_the_counts_each_strategy_guarantees() {
        let config = Config {
            threads: vec![1, 2],
            run_secs: 0.15,
            ttl: Duration::from_millis(20),
            load_time: Duration::from_millis(1),
            // Longer than the run: the entry never leaves the cache, only goes stale.
            stale_window: Duration::from_secs(60),
            hit_runs: 1,
            hit_iterations: 1_000,
        };
        let mut lines = Vec::new();
        let report = run(&config, &mut |line| lines.push(line.to_string()));
        assert_eq!(lines.len(), 2 * Strategy::ALL.len() + 1);
        let measured: Vec<(Strategy, usize)> = report
            .rows
            .iter()
            .map(|r| (r.strategy, r.threads))
            .collect();
        let expected: Vec<(Strategy, usize)> = [1, 2]
            .into_iter()
            .flat_map(|t| Strategy::ALL.map(|s| (s, t)))
            .collect();
        assert_eq!(measured, expected);
        for row in &report.rows {
            // Every thread reads at least once.
            assert!(row.reads >= row.threads as u64, "{row:?}");
            assert!(row.misses <= row.reads, "{row:?}");
            assert!(
                row.p50_ns <= row.p99_ns && row.p99_ns <= row.p999_ns && row.p999_ns <= row.max_ns,
                "{row:?}"
            );
            // What holds whatever the timing. Cache-aside: every miss loads, and nothing else
            // does. Single-flight: every load has a reader that missed, and the others wait.
            // Stale-while-revalidate: the entry never leaves the cache, so no read misses.
            match row.strategy {
                Strategy::CacheAside => assert_eq!(row.misses, row.loads, "{row:?}"),
                Strategy::SingleFlight | Strategy::MokaGetWith => {
                    assert!(row.misses >= row.loads, "{row:?}")
                }
                Strategy::StaleWhileRevalidate => assert_eq!(row.misses, 0, "{row:?}"),
                Strategy::EarlyExpiry => {}
            }
            // A single-flight load stores the value for a TTL before the next can start, and a
            // refresh runs only while the entry whose staleness asked for it is still cached:
            // loads start at least a TTL apart.
            if matches!(
                row.strategy,
                Strategy::SingleFlight | Strategy::StaleWhileRevalidate
            ) {
                let most = row.secs / config.ttl.as_secs_f64() + 1.0;
                assert!(row.loads as f64 <= most, "{row:?}: more than {most} loads");
            }
        }
        assert!(report.hit_cost.get_ns > 0.0 && report.hit_cost.get_or_load_ns > 0.0);
    }
}
