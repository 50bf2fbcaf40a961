//! A long, randomized run of every kind of operation from eight threads, with its whole history
//! checked afterwards. Ignored by default (it runs for a minute); `scripts/stress.sh` runs it,
//! in release and under the sanitizers, or by hand:
//!
//! ```text
//! SLABCACHE_STRESS_SECS=60 cargo test --release -p slabcache --test stress -- --ignored --nocapture
//! ```
//!
//! Environment:
//! - `SLABCACHE_STRESS_SECS`: how long the threads run, in seconds (default 60). Checking the
//!   last round adds well under a second.
//! - `SLABCACHE_STRESS_SEED`: the seed of the threads' operation streams (default: drawn from
//!   the clock). It is printed at the start and in every failure; it repeats a run's mix of
//!   operations, not its interleaving.
//!
//! Eight threads run random `get`, `get_into`, `get_versioned`, `insert`, `insert_if_absent`,
//! `replace`, `compare_and_swap` (the writes through their `_with_ttl` forms), `remove` and
//! `remove_if_version` on 64 data keys, CAS increments on 8 counter keys beside them, and now
//! and then `iter` and `clear`, in a cache far too small for them, so that eviction, both for
//! room in a size class and for the entry limit, and pages moving between classes go on
//! throughout. The run gives a quarter of its time to each of four shapes of that cache:
//! - crowded: 16 pages of 128 KiB, at most 48 entries;
//! - starved: 5 pages, at most 8 entries, where nearly every write takes a page from another
//!   class or evicts for the entry limit, so that the races between them, rare in the crowded
//!   shape, happen every second (a class losing its last page while another thread was about
//!   to evict from it was found this way);
//! - expiring: crowded, on a manual clock that the threads move forward, with half the writes
//!   to the main cache given a TTL of a few milliseconds of it, so that entries expire while
//!   they are read, rewritten, reaped and chosen as victims;
//! - sharded: expiring, with 8 policy shards per size class instead of 1, so that victims are
//!   taken from other shards, page moves gather their chunks shard by shard, and the reaper
//!   claims under each chunk's shard lock, while eight threads race them.
//!
//! Each data key writes values near a length of its own most of the time, so most of its
//! updates stay in their size class and rewrite the entry in place, and any length otherwise,
//! so the rest move it to a chunk of another class; counters change length with their count.
//! Two more counters live in a second cache with room to spare, which never evicts them: their
//! final counts must equal every increment of the run.
//!
//! Every value names its key, its writer and the writer's sequence number, and carries a
//! checksum; a read re-creates the value from those and compares every byte, so a torn or
//! mixed value cannot pass. Each thread logs, in its own order, every value it read (with the
//! version, where the operation reports one), every miss, and every write it attempted with
//! the outcome. The run is cut into rounds of about a second: at the end of one the threads
//! stop, the logs are checked, the cache at rest is checked against them, and only what the
//! next round can still observe is carried over (the entry each key holds, the counters' live
//! epochs, each thread's last version per key), so memory stays bounded however long it runs.
//!
//! The checks, for every round:
//! - (a) every value read is whole, and is the value of a write to that key that succeeded;
//! - (b) per thread and per key, versions never go backwards: each read's version is at least
//!   the last one the thread saw, a write's version is above it, and after the thread saw the
//!   key gone (a miss, a removal, a `NotFound`, a `clear`), only a newer write can show up.
//!   One `iter` call hands a chain's entries out in another order than it read them, so each
//!   of its entries is checked against what the thread knew when it began, and it must never
//!   yield a key twice (the stale and the new entry of a key removed and written again while
//!   it read the chain; this test found that, and `iter` now keeps the newest);
//! - (c) a version identifies one write: no two successful writes of a key returned the same
//!   version, and a read that reports version v returns exactly the value of the write that
//!   returned v (a `get` without a version is placed by the version its value's write got);
//! - (d) counters lose no increment. A counter is created by `insert_if_absent` at count 0 and
//!   raised by `compare_and_swap` of count + 1; eviction or `clear` may drop it, and the next
//!   increment creates it anew, so each creation starts an epoch, named by the write that
//!   created it. Within an epoch the successful increments must raise the count to 1, 2, 3...
//!   each exactly once (two reaching the same count is a lost increment), and a counter at
//!   rest must hold exactly as many increments as its epoch had. The two pinned counters must
//!   each have had one epoch, so they hold every increment of the run;
//! - (e) at rest, each key holds the last write that succeeded on it (or nothing); `iter`,
//!   `len` and `stats` agree with that (`len` and `stats` also count the expired entries not
//!   reclaimed yet, which are resident); the arena and entry limits hold.
//!
//! Here, the run and its rounds; in `keys_and_values`, the caches, keys and self-describing
//! values; in `threads`, what each thread does and logs; in `checks`, (a) to (e).

#[path = "../common/mod.rs"]
mod common;

mod checks;
mod keys_and_values;
mod threads;

use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use checks::Checker;
use common::{mix64, within_unless, HANG_LIMIT};
use keys_and_values::Caches;
use threads::Worker;

const THREADS: usize = 8;
const DATA_KEYS: usize = 64;
/// Counters in the main cache, where eviction and `clear` drop them now and then.
const EVICTABLE_COUNTERS: usize = 8;
/// Counters in a cache of their own with room to spare: one epoch each for the whole run.
const PINNED_COUNTERS: usize = 2;
const FIRST_PINNED: usize = DATA_KEYS + EVICTABLE_COUNTERS;
const KEYS: usize = FIRST_PINNED + PINNED_COUNTERS;

/// With values of at most 16 KiB, pages are 128 KiB (a 65,535-byte key must fit too).
const MAX_VALUE_BYTES: usize = 16 << 10;
const PAGE_BYTES: u64 = 128 << 10;

/// The main cache's shape. Every shape has fewer pages than the size classes the values fall
/// into, so classes take pages from each other all the time, and fewer entries than keys, so
/// the entry limit evicts too.
#[derive(Clone, Copy, Debug)]
struct Shape {
    name: &'static str,
    pages: u64,
    max_entries: u64,
    /// Whether writes to the main cache may carry a TTL, on a clock the threads move.
    expiring: bool,
    /// Policy shards per size class.
    shards: usize,
}

const SHAPES: [Shape; 4] = [
    Shape {
        name: "crowded",
        pages: 16,
        max_entries: 48,
        expiring: false,
        shards: 1,
    },
    Shape {
        name: "starved",
        pages: 5,
        max_entries: 8,
        expiring: false,
        shards: 1,
    },
    Shape {
        name: "expiring",
        pages: 16,
        max_entries: 48,
        expiring: true,
        shards: 1,
    },
    Shape {
        name: "sharded",
        pages: 16,
        max_entries: 48,
        expiring: true,
        shards: 8,
    },
];

/// In the expiring shape, each thread moves the clock by a tick once per this many operations,
/// so it moves once per 16 operations of the eight threads together, and a data key is written
/// about once per 160, ten ticks...
const TICK_ONE_IN: u64 = 128;
const TICK: Duration = Duration::from_millis(1);
/// ... while half the writes get a TTL of 1 to this many ticks: most of those run out before
/// the key's next write.
const MAX_TTL_TICKS: u64 = 8;
/// The pinned counters' cache: a page for every size class their values fall into, and more.
const PINNED_PAGES: u64 = 8;

/// Value header words: checksum, key, writer, sequence, counter epoch, counter count.
const HEADER_WORDS: usize = 6;
const MIN_LEN: usize = HEADER_WORDS * 8;
const MAX_LEN: usize = 6000;

/// The length of a round; the threads stop and everything is checked after each.
const ROUND: Duration = Duration::from_secs(1);
/// Bounds a round's logs (a few hundred bytes per operation at most, all told).
const MAX_OPS_PER_ROUND: usize = 300_000;
/// Threads look at the clock once per this many operations.
const OPS_PER_CLOCK_CHECK: usize = 64;
const ITER_ONE_IN: u64 = 2_000;
/// Thread 0 clears the cache once per this many operations, on average.
const CLEAR_ONE_IN: u64 = 50_000;
/// Problems kept for the failure message; the rest are only counted.
const PROBLEMS_SHOWN: usize = 25;

const DEFAULT_SECS: u64 = 60;

#[test]
#[ignore = "a long run: scripts/stress.sh runs it, for SLABCACHE_STRESS_SECS seconds"]
fn randomized_history_is_consistent() {
    let secs = env_u64("SLABCACHE_STRESS_SECS").unwrap_or(DEFAULT_SECS);
    let seed = env_u64("SLABCACHE_STRESS_SEED").unwrap_or_else(clock_seed);
    println!("stress: {secs} s, {THREADS} threads, seed {seed} (SLABCACHE_STRESS_SEED)");
    let run = Duration::from_secs(secs);
    // A cache that hangs fails the test instead of stalling the run; checking the last round
    // takes a fraction of the hang limit.
    let outcome = std::panic::catch_unwind(|| {
        let panicked = || FIRST_WORKER_PANIC.get().is_some();
        within_unless(run + HANG_LIMIT, panicked, move || {
            let share = run / SHAPES.len() as u32;
            for shape in SHAPES {
                stress_run(shape, share, seed);
            }
        });
    });
    if let Err(failure) = outcome {
        // A worker that panics inside the cache can leave it wedged (a write it never ended),
        // and the others then hang in it: the panic is the cause to report, not the hang.
        if let Some(first) = FIRST_WORKER_PANIC.get() {
            panic!("{first} (seed {seed}); the test failed after it");
        }
        std::panic::resume_unwind(failure);
    }
}

/// The first panic of a worker thread, as "worker N panicked: message".
static FIRST_WORKER_PANIC: OnceLock<String> = OnceLock::new();

/// Runs a worker's round, noting its panic (if any) in [`FIRST_WORKER_PANIC`] before passing
/// it on.
fn run_noting_panic(worker: &mut Worker, caches: &Caches, round_end: Instant) {
    let id = worker.id;
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        worker.run_round(caches, round_end);
    }));
    if let Err(panic) = ran {
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("a panic without a message");
        let _ = FIRST_WORKER_PANIC.set(format!("worker {id} panicked: {message}"));
        std::panic::resume_unwind(panic);
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    Some(
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a whole number")),
    )
}

fn clock_seed() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    mix64(since_epoch.as_nanos() as u64)
}

fn stress_run(shape: Shape, run: Duration, seed: u64) {
    println!("stress: {run:?} in the {} shape: {shape:?}", shape.name);
    let caches = Caches::new(shape);
    let mut workers: Vec<Worker> = (0..THREADS).map(|id| Worker::new(id as u8, seed)).collect();
    let mut checker = Checker::new(seed);
    let end = Instant::now() + run;
    loop {
        let round_end = (Instant::now() + ROUND).min(end);
        thread::scope(|s| {
            for worker in &mut workers {
                let caches = &caches;
                s.spawn(move || run_noting_panic(worker, caches, round_end));
            }
        });
        checker.check_round(&caches, &workers);
        if Instant::now() >= end {
            break;
        }
    }
    checker.finish(&caches);
}
