//! A long, randomized run of every kind of operation from four threads, with its whole history
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
//! Four threads run random `get`, `get_into`, `get_versioned`, `insert`, `insert_if_absent`,
//! `replace`, `compare_and_swap` (the writes through their `_with_ttl` forms), `remove` and
//! `remove_if_version` on 64 data keys, CAS increments on 8 counter keys beside them, and now
//! and then `iter` and `clear`, in a cache far too small for them, so that eviction, both for
//! room in a size class and for the entry limit, and pages moving between classes go on
//! throughout. The run gives a third of its time to each of three shapes of that cache:
//! - crowded: 16 pages of 128 KiB, at most 48 entries;
//! - starved: 5 pages, at most 8 entries, where nearly every write takes a page from another
//!   class or evicts for the entry limit, so that the races between them, rare in the crowded
//!   shape, happen every second (a class losing its last page while another thread was about
//!   to evict from it was found this way);
//! - expiring: crowded, on a manual clock that the threads move forward, with half the writes
//!   to the main cache given a TTL of a few milliseconds of it, so that entries expire while
//!   they are read, rewritten, reaped and chosen as victims.
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

#[path = "../common/mod.rs"]
mod common;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use slabcache::{Cache, Error, ManualClock, Version};

use common::{hash64, mix64, within_unless, Rng, HANG_LIMIT};

const THREADS: usize = 4;
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
}

const SHAPES: [Shape; 3] = [
    Shape {
        name: "crowded",
        pages: 16,
        max_entries: 48,
        expiring: false,
    },
    Shape {
        name: "starved",
        pages: 5,
        max_entries: 8,
        expiring: false,
    },
    Shape {
        name: "expiring",
        pages: 16,
        max_entries: 48,
        expiring: true,
    },
];

/// In the expiring shape, each thread moves the clock by a tick once per this many operations,
/// so it moves once per 16 operations of the four threads together, and a data key is written
/// about once per 160, ten ticks...
const TICK_ONE_IN: u64 = 64;
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

// ----- keys and values -----

/// The caches under test, and the keys' bytes (with the way back, for `iter`).
struct Caches {
    /// The data keys and the evictable counters, in far too little room.
    main: Cache,
    shape: Shape,
    /// The main cache's clock, in the expiring shape.
    clock: Option<Arc<ManualClock>>,
    /// The pinned counters.
    pinned: Cache,
    keys: Vec<Vec<u8>>,
    numbers: HashMap<Vec<u8>, usize>,
}

impl Caches {
    fn new(shape: Shape) -> Caches {
        let clock = shape.expiring.then(|| Arc::new(ManualClock::new()));
        let mut main = Cache::builder()
            .max_bytes(shape.pages * PAGE_BYTES)
            .max_value_bytes(MAX_VALUE_BYTES)
            .max_entries(shape.max_entries);
        if let Some(clock) = &clock {
            main = main.clock(clock.clone());
        }
        let main = main.build().expect("the main cache's settings are valid");
        let pinned = Cache::builder()
            .max_bytes(PINNED_PAGES * PAGE_BYTES)
            .max_value_bytes(MAX_VALUE_BYTES)
            .build()
            .expect("the pinned counters' cache settings are valid");
        let keys: Vec<Vec<u8>> = (0..KEYS)
            .map(|key| {
                let mut k = if is_counter(key) {
                    format!("stress:counter:{key}:")
                } else {
                    format!("stress:data:{key}:")
                }
                .into_bytes();
                // Keys of several lengths, so that one value length maps to several classes.
                k.resize(k.len() + key % 11 * 3, b'~');
                k
            })
            .collect();
        let numbers = keys.iter().cloned().zip(0..).collect();
        Caches {
            main,
            shape,
            clock,
            pinned,
            keys,
            numbers,
        }
    }

    /// The cache that holds `key`.
    fn of(&self, key: usize) -> &Cache {
        if key >= FIRST_PINNED {
            &self.pinned
        } else {
            &self.main
        }
    }

    fn key(&self, key: usize) -> &[u8] {
        &self.keys[key]
    }

    fn number(&self, bytes: &[u8]) -> Option<usize> {
        self.numbers.get(bytes).copied()
    }
}

fn is_counter(key: usize) -> bool {
    key >= DATA_KEYS
}

/// The length data key `key` writes most of the time: spread log-uniformly over
/// `MIN_LEN..=MAX_LEN` across the keys.
fn home_len(key: usize) -> usize {
    let span = (MAX_LEN as f64 / MIN_LEN as f64).powf(key as f64 / (DATA_KEYS - 1) as f64);
    (MIN_LEN as f64 * span) as usize
}

/// A counter's value length: it changes with the count, so some increments change class.
fn counter_len(count: u64) -> usize {
    MIN_LEN + 8 * (count % 11) as usize + (count % 3) as usize
}

/// The write that produced a value: its writer thread and that thread's sequence number.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Stamp {
    writer: u8,
    seq: u64,
}

impl fmt::Debug for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "w{}#{}", self.writer, self.seq)
    }
}

/// The epoch a counter creation starts: named by the creating write, never 0.
fn epoch_of(creation: Stamp) -> u64 {
    (u64::from(creation.writer) + 1) << 56 | creation.seq
}

/// What a value says about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Content {
    stamp: Stamp,
    len: u32,
    /// The counter epoch, or 0 for a data value.
    epoch: u64,
    count: u64,
}

/// The one value the write `content.stamp` writes to `key`.
fn encode(key: usize, content: Content) -> Vec<u8> {
    let len = content.len as usize;
    let mut value = Vec::with_capacity(len + 8);
    let header = [
        0,
        key as u64,
        u64::from(content.stamp.writer),
        content.stamp.seq,
        content.epoch,
        content.count,
    ];
    for word in header {
        value.extend_from_slice(&word.to_le_bytes());
    }
    let filler = mix64(content.stamp.seq ^ u64::from(content.stamp.writer) << 56);
    let mut i = 0;
    while value.len() < len {
        value.extend_from_slice(&mix64(filler.wrapping_add(i)).to_le_bytes());
        i += 1;
    }
    value.truncate(len);
    let checksum = hash64(key as u64, &value[8..]);
    value[..8].copy_from_slice(&checksum.to_le_bytes());
    value
}

fn word(value: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(value[i * 8..i * 8 + 8].try_into().expect("8 bytes"))
}

/// Reads a value back from `key`: what it says about itself if it is whole and is exactly
/// what its header's write wrote, else a description of what was seen.
fn decode(key: usize, value: &[u8]) -> Result<Content, String> {
    if value.len() < MIN_LEN {
        return Err(format!(
            "a {}-byte value, shorter than any written ({MIN_LEN}): {value:02x?}",
            value.len()
        ));
    }
    let header: Vec<String> = (0..HEADER_WORDS)
        .map(|i| format!("{:#x}", word(value, i)))
        .collect();
    let checksum = hash64(key as u64, &value[8..]);
    if word(value, 0) != checksum {
        return Err(format!(
            "a torn or foreign {}-byte value: checksum {:#x}, but the bytes hash to {checksum:#x} \
             for this key (header words {header:?})",
            value.len(),
            word(value, 0)
        ));
    }
    let (named_key, writer) = (word(value, 1), word(value, 2));
    if named_key != key as u64 || writer >= THREADS as u64 {
        return Err(format!(
            "a value naming key {named_key}, writer {writer} (header words {header:?})"
        ));
    }
    let content = Content {
        stamp: Stamp {
            writer: writer as u8,
            seq: word(value, 3),
        },
        len: value.len() as u32,
        epoch: word(value, 4),
        count: word(value, 5),
    };
    let expected = encode(key, content);
    match expected.iter().zip(value).position(|(a, b)| a != b) {
        None => Ok(content),
        Some(at) => Err(format!(
            "a {}-byte value whose checksum holds but whose byte {at} differs from what write \
             {:?} wrote (header words {header:?})",
            value.len(),
            content.stamp
        )),
    }
}

// ----- the threads and their logs -----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadOp {
    Get,
    GetInto,
    GetVersioned,
    Iter,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WriteOp {
    Insert,
    InsertIfAbsent,
    Replace,
    CompareAndSwap,
    /// `insert_if_absent` of a counter at count 0.
    NewCounter,
    /// `compare_and_swap` of a counter to its count + 1.
    Increment,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RemoveOp {
    Remove,
    RemoveIfVersion,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    /// Succeeded: with the new version for a write, the removed one for `remove_if_version`.
    Done(Option<u64>),
    Mismatch {
        current: u64,
    },
    NotFound,
    Exists,
    /// Any other error, which no operation here should return.
    Failed(Box<str>),
}

impl Outcome {
    fn of_write(result: Result<Version, Error>) -> Outcome {
        match result {
            Ok(version) => Outcome::Done(Some(version.get())),
            Err(e) => Outcome::of_error(e),
        }
    }

    fn of_error(e: Error) -> Outcome {
        match e {
            Error::VersionMismatch { current } => Outcome::Mismatch {
                current: current.get(),
            },
            Error::NotFound => Outcome::NotFound,
            Error::Exists => Outcome::Exists,
            other => Outcome::Failed(format!("{other:?}").into()),
        }
    }
}

/// One thing a thread did, in its own order.
#[derive(Clone, Debug)]
enum Event {
    Read {
        key: u8,
        op: ReadOp,
        content: Content,
        version: Option<u64>,
    },
    /// The start of an `iter` call; its entries follow as `Read`s.
    IterBegin,
    /// A read that returned something no write wrote whole.
    Garbled {
        op: ReadOp,
        what: Box<str>,
    },
    Miss {
        key: u8,
        op: ReadOp,
    },
    Write {
        key: u8,
        op: WriteOp,
        content: Content,
        outcome: Outcome,
    },
    Remove {
        key: u8,
        op: RemoveOp,
        outcome: Outcome,
    },
    Clear,
}

/// What a write puts in its value besides its stamp: a data value's length, or a counter.
enum Body {
    Data { len: usize },
    NewCounter,
    Increment { epoch: u64, count: u64 },
}

/// One thread's state, kept across rounds: its random stream and its next sequence number.
struct Worker {
    id: u8,
    rng: Rng,
    next_seq: u64,
    events: Vec<Event>,
    buf: Vec<u8>,
}

impl Worker {
    fn new(id: u8, seed: u64) -> Worker {
        Worker {
            id,
            rng: Rng::new(mix64(seed ^ u64::from(id))),
            next_seq: 0,
            events: Vec::new(),
            buf: Vec::new(),
        }
    }

    fn run_round(&mut self, caches: &Caches, until: Instant) {
        self.events.clear();
        for op in 0..MAX_OPS_PER_ROUND {
            if op % OPS_PER_CLOCK_CHECK == 0 && Instant::now() >= until {
                break;
            }
            self.step(caches);
        }
    }

    fn step(&mut self, caches: &Caches) {
        if let Some(clock) = &caches.clock {
            if self.rng.one_in(TICK_ONE_IN) {
                clock.advance(TICK);
            }
        }
        if self.id == 0 && self.rng.one_in(CLEAR_ONE_IN) {
            caches.main.clear();
            self.events.push(Event::Clear);
            return;
        }
        if self.rng.one_in(ITER_ONE_IN) {
            self.events.push(Event::IterBegin);
            for (k, value, version) in caches.main.iter() {
                match caches.number(&k) {
                    Some(key) => self.observe(key, ReadOp::Iter, &value, Some(version)),
                    None => self.events.push(Event::Garbled {
                        op: ReadOp::Iter,
                        what: format!("iter yielded an unknown key {k:02x?}").into(),
                    }),
                }
            }
            return;
        }
        let roll = self.rng.below(1000);
        if roll < 150 {
            let key = if roll < 90 {
                DATA_KEYS + self.rng.below(EVICTABLE_COUNTERS as u64) as usize
            } else {
                FIRST_PINNED + self.rng.below(PINNED_COUNTERS as u64) as usize
            };
            self.increment(caches, key);
            return;
        }
        let key = self.rng.below(DATA_KEYS as u64) as usize;
        let (cache, k) = (caches.of(key), caches.key(key));
        match roll {
            150..=279 => {
                let found = cache.get(k);
                self.log_read(key, ReadOp::Get, found.as_deref(), None);
            }
            280..=329 => {
                let mut buf = std::mem::take(&mut self.buf);
                let version = cache.get_into(k, &mut buf);
                self.log_read(key, ReadOp::GetInto, version.map(|_| &buf[..]), version);
                self.buf = buf;
            }
            330..=449 => {
                self.get_versioned(caches, key);
            }
            450..=599 => self.write(caches, key, WriteOp::Insert, None),
            600..=669 => self.write(caches, key, WriteOp::InsertIfAbsent, None),
            670..=739 => self.write(caches, key, WriteOp::Replace, None),
            740..=839 => {
                if let Some((_, version)) = self.get_versioned(caches, key) {
                    self.write(caches, key, WriteOp::CompareAndSwap, Some(version));
                }
            }
            840..=899 => {
                let outcome = if cache.remove(k) {
                    Outcome::Done(None)
                } else {
                    Outcome::NotFound
                };
                self.events.push(Event::Remove {
                    key: key as u8,
                    op: RemoveOp::Remove,
                    outcome,
                });
            }
            _ => {
                if let Some((_, version)) = self.get_versioned(caches, key) {
                    let outcome = match cache.remove_if_version(k, version) {
                        Ok(()) => Outcome::Done(Some(version.get())),
                        Err(e) => Outcome::of_error(e),
                    };
                    self.events.push(Event::Remove {
                        key: key as u8,
                        op: RemoveOp::RemoveIfVersion,
                        outcome,
                    });
                }
            }
        }
    }

    /// Reads a counter and raises it by one, creating it (at 0) if it is absent.
    fn increment(&mut self, caches: &Caches, key: usize) {
        match self.get_versioned(caches, key) {
            None => self.write_body(caches, key, WriteOp::NewCounter, Body::NewCounter, None),
            Some((value, version)) => {
                // A value that does not decode is logged already; there is nothing to raise.
                if let Ok(seen) = decode(key, &value) {
                    let body = Body::Increment {
                        epoch: seen.epoch,
                        count: seen.count + 1,
                    };
                    self.write_body(caches, key, WriteOp::Increment, body, Some(version));
                }
            }
        }
    }

    fn get_versioned(&mut self, caches: &Caches, key: usize) -> Option<(Vec<u8>, Version)> {
        let found = caches.of(key).get_versioned(caches.key(key));
        match &found {
            Some((value, version)) => {
                self.observe(key, ReadOp::GetVersioned, value, Some(*version));
            }
            None => self.events.push(Event::Miss {
                key: key as u8,
                op: ReadOp::GetVersioned,
            }),
        }
        found
    }

    fn log_read(&mut self, key: usize, op: ReadOp, value: Option<&[u8]>, version: Option<Version>) {
        match value {
            Some(value) => self.observe(key, op, value, version),
            None => self.events.push(Event::Miss { key: key as u8, op }),
        }
    }

    fn observe(&mut self, key: usize, op: ReadOp, value: &[u8], version: Option<Version>) {
        let event = match decode(key, value) {
            Ok(content) => Event::Read {
                key: key as u8,
                op,
                content,
                version: version.map(Version::get),
            },
            Err(what) => Event::Garbled {
                op,
                what: format!("key {key}, version {:?}: {what}", version.map(Version::get)).into(),
            },
        };
        self.events.push(event);
    }

    /// A data write of a random length: near the key's own length six times in ten (an update
    /// that stays in its class), any length otherwise.
    fn write(&mut self, caches: &Caches, key: usize, op: WriteOp, expected: Option<Version>) {
        let home = home_len(key);
        let len = if self.rng.below(10) < 6 {
            home + self.rng.below(home as u64 / 16 + 1) as usize
        } else {
            self.rng.log_uniform(MIN_LEN, MAX_LEN)
        };
        self.write_body(caches, key, op, Body::Data { len }, expected);
    }

    fn write_body(
        &mut self,
        caches: &Caches,
        key: usize,
        op: WriteOp,
        body: Body,
        expected: Option<Version>,
    ) {
        let stamp = Stamp {
            writer: self.id,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        let (len, epoch, count) = match body {
            Body::Data { len } => (len, 0, 0),
            Body::NewCounter => (counter_len(0), epoch_of(stamp), 0),
            Body::Increment { epoch, count } => (counter_len(count), epoch, count),
        };
        let content = Content {
            stamp,
            len: len as u32,
            epoch,
            count,
        };
        let value = encode(key, content);
        let (cache, k) = (caches.of(key), caches.key(key));
        let expires = caches.clock.is_some() && key < FIRST_PINNED && self.rng.one_in(2);
        let ttl = expires.then(|| TICK * (1 + self.rng.below(MAX_TTL_TICKS)) as u32);
        let result = match (op, expected) {
            (WriteOp::Insert, _) => cache.insert_with_ttl(k, &value, ttl),
            (WriteOp::InsertIfAbsent | WriteOp::NewCounter, _) => {
                cache.insert_if_absent_with_ttl(k, &value, ttl)
            }
            (WriteOp::Replace, _) => cache.replace_with_ttl(k, &value, ttl),
            (WriteOp::CompareAndSwap | WriteOp::Increment, Some(expected)) => {
                cache.compare_and_swap_with_ttl(k, expected, &value, ttl)
            }
            (WriteOp::CompareAndSwap | WriteOp::Increment, None) => {
                unreachable!("a compare-and-swap always has the version it read")
            }
        };
        self.events.push(Event::Write {
            key: key as u8,
            op,
            content,
            outcome: Outcome::of_write(result),
        });
    }
}

// ----- the checks -----

/// A write as the checker knows it.
#[derive(Clone, Copy, Debug)]
struct Known {
    key: usize,
    op: WriteOp,
    content: Content,
    /// The version it returned; `None` if it was refused.
    version: Option<u64>,
}

/// Where a thread's knowledge of a key came from: an event of a round, or the cache at rest
/// after a round.
#[derive(Clone, Copy, Debug)]
enum Source {
    Event { round: u32, index: u32 },
    AtRest { round: u32 },
}

/// The last version of a key one thread saw, and whether it has seen the key gone since.
#[derive(Clone, Copy, Debug)]
struct Floor {
    version: u64,
    seen_at: Option<Source>,
    /// Set when the thread saw the key absent after `version`: only a newer version may show.
    gone_at: Option<Source>,
}

impl Floor {
    const NONE: Floor = Floor {
        version: 0,
        seen_at: None,
        gone_at: None,
    };

    /// Whether a read of `version` is allowed now.
    fn admits_read(&self, version: u64) -> bool {
        version > self.version || (version == self.version && self.gone_at.is_none())
    }

    fn saw(&mut self, version: u64, at: Source) {
        if version >= self.version {
            *self = Floor {
                version,
                seen_at: Some(at),
                gone_at: None,
            };
        }
    }

    fn saw_gone(&mut self, at: Source) {
        self.gone_at = Some(at);
    }
}

struct Epoch {
    key: usize,
    increments: u64,
}

#[derive(Default, Debug)]
struct Totals {
    rounds: u32,
    ops: u64,
    /// Per read operation (get, get_into, get_versioned, iter): hits, misses.
    reads: [[u64; 2]; 4],
    writes: u64,
    refused: u64,
    mismatches: u64,
    removals: u64,
    clears: u64,
    iters: u64,
    increments: u64,
    epochs_started: u64,
    /// Counter epochs that ended (evicted or cleared) and the increments they held.
    epochs_ended: u64,
    increments_ended: u64,
}

struct Checker {
    seed: u64,
    round: u32,
    /// Per key, the write whose value the cache held at rest after the last round.
    present: Vec<Option<(Stamp, Known)>>,
    /// Per thread, per key.
    floors: Vec<Vec<Floor>>,
    /// The counter epochs alive at rest after the last round.
    epochs: HashMap<u64, Epoch>,
    /// Per key, over the whole run: counter epochs created, successful increments.
    created: Vec<u64>,
    raised: Vec<u64>,
    problems: Vec<String>,
    problem_count: usize,
    totals: Totals,
}

impl Checker {
    fn new(seed: u64) -> Checker {
        Checker {
            seed,
            round: 0,
            present: vec![None; KEYS],
            floors: vec![vec![Floor::NONE; KEYS]; THREADS],
            epochs: HashMap::new(),
            created: vec![0; KEYS],
            raised: vec![0; KEYS],
            problems: Vec::new(),
            problem_count: 0,
            totals: Totals::default(),
        }
    }

    fn problem(&mut self, what: String) {
        self.problem_count += 1;
        if self.problems.len() < PROBLEMS_SHOWN {
            self.problems.push(format!("round {}: {what}", self.round));
        }
    }

    fn check_round(&mut self, caches: &Caches, workers: &[Worker]) {
        self.round += 1;
        self.totals.rounds += 1;
        // Every write that could have been read this round: this round's, and those whose
        // values the cache held at the start of it.
        let mut known: HashMap<Stamp, Known> = self.present.iter().flatten().copied().collect();
        let mut by_version: HashMap<(usize, u64), Stamp> = HashMap::new();
        let mut last_version = vec![0u64; KEYS];
        for (stamp, write) in self.present.iter().flatten() {
            let version = write.version.expect("a value at rest was written");
            by_version.insert((write.key, version), *stamp);
            last_version[write.key] = version;
        }
        for worker in workers {
            for event in &worker.events {
                let Event::Write {
                    key,
                    op,
                    content,
                    outcome,
                } = event
                else {
                    continue;
                };
                let key = usize::from(*key);
                let version = match outcome {
                    Outcome::Done(version) => *version,
                    _ => None,
                };
                known.insert(
                    content.stamp,
                    Known {
                        key,
                        op: *op,
                        content: *content,
                        version,
                    },
                );
                if let Some(version) = version {
                    if let Some(other) = by_version.insert((key, version), content.stamp) {
                        self.problem(format!(
                            "(c) key {key}: writes {other:?} and {:?} both returned version \
                             {version}",
                            content.stamp
                        ));
                    }
                    last_version[key] = last_version[key].max(version);
                }
            }
        }
        for worker in workers {
            self.check_history(worker, &known, &by_version);
        }
        self.check_counters(workers);
        self.check_at_rest(caches, &known, &last_version);
    }

    /// Checks one thread's events in its order: (a), (b), (c), and that each operation
    /// answered something it may answer.
    fn check_history(
        &mut self,
        worker: &Worker,
        known: &HashMap<Stamp, Known>,
        by_version: &HashMap<(usize, u64), Stamp>,
    ) {
        let t = usize::from(worker.id);
        let events = &worker.events;
        self.totals.ops += events.len() as u64;
        // Within one `iter` call, the order entries come out in is not the order they were
        // read in (a chain's entries are read together, then handed out last first), so each
        // is checked against what the thread knew when the call began, and the thread's floor
        // rises to the newest of them.
        let mut before_iter = Vec::new();
        let mut yielded = [false; KEYS];
        for (index, event) in events.iter().enumerate() {
            let at = Source::Event {
                round: self.round,
                index: index as u32,
            };
            let here = || format!("thread {t}, event {index} {event:?}");
            match event {
                Event::Read {
                    key,
                    op,
                    content,
                    version,
                } => {
                    let key = usize::from(*key);
                    self.totals.reads[*op as usize][0] += 1;
                    let Some(write) = known.get(&content.stamp) else {
                        self.problem(format!(
                            "(a) {}: read the value of write {:?}, which no thread attempted \
                             this round and the cache did not hold at the start of it",
                            here(),
                            content.stamp
                        ));
                        continue;
                    };
                    if write.key != key || write.content != *content {
                        self.problem(format!(
                            "(a) {}: read a value that differs from what write {:?} wrote \
                             ({write:?})",
                            here(),
                            content.stamp
                        ));
                        continue;
                    }
                    let Some(written) = write.version else {
                        self.problem(format!(
                            "(a) {}: read the value of write {:?}, which was refused ({:?})",
                            here(),
                            content.stamp,
                            write.op
                        ));
                        continue;
                    };
                    if let Some(read) = *version {
                        if read != written {
                            self.problem(format!(
                                "(c) {}: version {read} came with the value of write {:?}, \
                                 which returned version {written}; version {read} belongs to \
                                 {:?}",
                                here(),
                                content.stamp,
                                by_version.get(&(key, read))
                            ));
                        }
                    }
                    let version = version.unwrap_or(written);
                    if *op == ReadOp::Iter {
                        if std::mem::replace(&mut yielded[key], true) {
                            self.problem(format!(
                                "{}: one iteration yielded the key twice",
                                here()
                            ));
                        }
                        self.check_read(before_iter[key], version, &here, events);
                    } else {
                        self.check_read(self.floors[t][key], version, &here, events);
                    }
                    self.floors[t][key].saw(version, at);
                }
                Event::IterBegin => {
                    self.totals.iters += 1;
                    before_iter.clone_from(&self.floors[t]);
                    yielded = [false; KEYS];
                }
                Event::Garbled { op, what } => {
                    self.problem(format!(
                        "(a) thread {t}, event {index}: {op:?} returned {what}"
                    ));
                }
                Event::Miss { key, op } => {
                    self.totals.reads[*op as usize][1] += 1;
                    self.gone(t, usize::from(*key), at, &here, events);
                }
                Event::Write {
                    key, op, outcome, ..
                } => {
                    let key = usize::from(*key);
                    self.totals.writes += 1;
                    match (op, outcome) {
                        (_, Outcome::Done(Some(version))) => {
                            let floor = self.floors[t][key];
                            if *version <= floor.version {
                                self.problem(format!(
                                    "(b) {}: a write returned version {version}, not above \
                                     version {} the thread had seen ({})",
                                    here(),
                                    floor.version,
                                    describe(floor.seen_at, self.round, events)
                                ));
                            }
                            self.floors[t][key].saw(*version, at);
                        }
                        (
                            WriteOp::CompareAndSwap | WriteOp::Increment,
                            Outcome::Mismatch { current },
                        ) => {
                            self.totals.refused += 1;
                            self.totals.mismatches += 1;
                            if !by_version.contains_key(&(key, *current)) {
                                self.problem(format!(
                                    "(c) {}: the mismatch names version {current}, which no \
                                     write of this key returned",
                                    here()
                                ));
                            }
                            self.check_read(self.floors[t][key], *current, &here, events);
                            self.floors[t][key].saw(*current, at);
                        }
                        (
                            WriteOp::Replace | WriteOp::CompareAndSwap | WriteOp::Increment,
                            Outcome::NotFound,
                        ) => {
                            self.totals.refused += 1;
                            self.gone(t, key, at, &here, events);
                        }
                        (WriteOp::InsertIfAbsent | WriteOp::NewCounter, Outcome::Exists) => {
                            self.totals.refused += 1;
                        }
                        _ => self.problem(format!("{}: an answer this write cannot give", here())),
                    }
                }
                Event::Remove { key, op, outcome } => {
                    let key = usize::from(*key);
                    match (op, outcome) {
                        (RemoveOp::Remove, Outcome::Done(None)) => self.totals.removals += 1,
                        (RemoveOp::RemoveIfVersion, Outcome::Done(Some(_))) => {
                            self.totals.removals += 1;
                        }
                        (RemoveOp::RemoveIfVersion, Outcome::Mismatch { current }) => {
                            self.totals.mismatches += 1;
                            self.check_read(self.floors[t][key], *current, &here, events);
                            self.floors[t][key].saw(*current, at);
                            continue;
                        }
                        (_, Outcome::NotFound) => {}
                        _ => {
                            self.problem(format!("{}: an answer this removal cannot give", here()));
                            continue;
                        }
                    }
                    // Removed, or found absent: whatever the thread saw of it is gone.
                    self.floors[t][key].saw_gone(at);
                }
                Event::Clear => {
                    self.totals.clears += 1;
                    // `clear` empties the main cache; the pinned counters live elsewhere.
                    for floor in &mut self.floors[t][..FIRST_PINNED] {
                        floor.saw_gone(at);
                    }
                }
            }
        }
    }

    /// (b): thread `t` saw `key` absent. Nothing removes a pinned counter and its cache never
    /// evicts, so once the thread saw one it must never find it gone: a read that raced an
    /// update and reported a miss instead of retrying shows up here.
    fn gone(
        &mut self,
        t: usize,
        key: usize,
        at: Source,
        here: &dyn Fn() -> String,
        events: &[Event],
    ) {
        let floor = self.floors[t][key];
        if key >= FIRST_PINNED && floor.seen_at.is_some() {
            self.problem(format!(
                "(b) {}: pinned counter {key} was absent after the thread saw version {} ({})",
                here(),
                floor.version,
                describe(floor.seen_at, self.round, events)
            ));
        }
        self.floors[t][key].saw_gone(at);
    }

    /// (b): a read of `version` must not be older than `floor`, what the thread knew of the
    /// key when it read it.
    fn check_read(
        &mut self,
        floor: Floor,
        version: u64,
        here: &dyn Fn() -> String,
        events: &[Event],
    ) {
        if floor.admits_read(version) {
            return;
        }
        let why = match floor.gone_at {
            Some(gone) if version == floor.version => format!(
                "version {version} again after the thread saw it gone ({})",
                describe(Some(gone), self.round, events)
            ),
            _ => format!(
                "version {version} after version {} ({})",
                floor.version,
                describe(floor.seen_at, self.round, events)
            ),
        };
        self.problem(format!("(b) {}: went back in time: {why}", here()));
    }

    /// (d): within each counter epoch, successful increments reach each count exactly once.
    fn check_counters(&mut self, workers: &[Worker]) {
        let mut raised: HashMap<u64, Vec<(u64, Stamp, u64)>> = HashMap::new();
        for worker in workers {
            for event in &worker.events {
                let Event::Write {
                    key,
                    op,
                    content,
                    outcome: Outcome::Done(Some(version)),
                } = event
                else {
                    continue;
                };
                match op {
                    WriteOp::NewCounter => {
                        self.totals.epochs_started += 1;
                        self.created[usize::from(*key)] += 1;
                        let epoch = Epoch {
                            key: usize::from(*key),
                            increments: 0,
                        };
                        if self.epochs.insert(content.epoch, epoch).is_some() {
                            self.problem(format!(
                                "(d) counter epoch {:#x} was created twice",
                                content.epoch
                            ));
                        }
                    }
                    WriteOp::Increment => raised.entry(content.epoch).or_default().push((
                        content.count,
                        content.stamp,
                        *version,
                    )),
                    _ => {}
                }
            }
        }
        for (epoch, mut increments) in raised {
            increments.sort_unstable_by_key(|&(count, _, version)| (count, version));
            let Some(before) = self.epochs.get(&epoch).map(|e| e.increments) else {
                self.problem(format!(
                    "(d) {} increments of counter epoch {epoch:#x}, which was never created or \
                     had ended before this round: {increments:?}",
                    increments.len()
                ));
                continue;
            };
            let mut next = before + 1;
            for pair in increments.windows(2) {
                let ((count, a, va), (count_b, b, vb)) = (pair[0], pair[1]);
                if count == count_b {
                    self.problem(format!(
                        "(d) counter epoch {epoch:#x}: writes {a:?} (version {va}) and {b:?} \
                         (version {vb}) both raised the count to {count}: an increment was lost"
                    ));
                }
            }
            for &(count, stamp, version) in &increments {
                if count > next {
                    self.problem(format!(
                        "(d) counter epoch {epoch:#x}: write {stamp:?} (version {version}) \
                         raised the count to {count}, but no increment reached {next}"
                    ));
                }
                next = next.max(count + 1);
            }
            self.totals.increments += increments.len() as u64;
            if let Some(state) = self.epochs.get_mut(&epoch) {
                state.increments += increments.len() as u64;
                self.raised[state.key] += increments.len() as u64;
            }
        }
    }

    /// (e), with the threads stopped: what each key holds, against the logs; then carries
    /// over what the next round can observe.
    fn check_at_rest(
        &mut self,
        caches: &Caches,
        known: &HashMap<Stamp, Known>,
        last_version: &[u64],
    ) {
        let mut present: Vec<Option<(Stamp, Known)>> = vec![None; KEYS];
        for (key, held) in present.iter_mut().enumerate() {
            let Some((value, version)) = caches.of(key).get_versioned(caches.key(key)) else {
                continue;
            };
            let version = version.get();
            let content = match decode(key, &value) {
                Ok(content) => content,
                Err(what) => {
                    self.problem(format!(
                        "(a) at rest, key {key} (version {version}): {what}"
                    ));
                    continue;
                }
            };
            let write = known
                .get(&content.stamp)
                .filter(|w| w.key == key && w.content == content && w.version == Some(version));
            let Some(write) = write else {
                self.problem(format!(
                    "(c) at rest, key {key} holds version {version} with {content:?}, which is \
                     not what any write that returned that version wrote ({:?})",
                    known.get(&content.stamp)
                ));
                continue;
            };
            if version != last_version[key] {
                self.problem(format!(
                    "(e) at rest, key {key} holds version {version} (write {:?}), but a later \
                     write of it returned version {}: that write was lost",
                    content.stamp, last_version[key]
                ));
            }
            *held = Some((content.stamp, *write));
        }
        self.check_counters_at_rest(&present);
        self.check_iter_at_rest(
            &caches.main,
            caches,
            0,
            &present[..FIRST_PINNED],
            caches.shape.max_entries,
            caches.shape.expiring,
        );
        let pinned = &present[FIRST_PINNED..];
        let most = PINNED_COUNTERS as u64;
        self.check_iter_at_rest(&caches.pinned, caches, FIRST_PINNED, pinned, most, false);
        let mut behind = Vec::new();
        for (t, floors) in self.floors.iter_mut().enumerate() {
            for (key, floor) in floors.iter_mut().enumerate() {
                let at = Source::AtRest { round: self.round };
                match present[key].and_then(|(_, w)| w.version) {
                    Some(version) => {
                        if !floor.admits_read(version) {
                            behind.push(format!(
                                "(b) at rest, key {key} holds version {version}, older than what \
                                 thread {t} saw: {floor:?}"
                            ));
                        }
                        floor.saw(version, at);
                    }
                    None => floor.saw_gone(at),
                }
            }
        }
        for what in behind {
            self.problem(what);
        }
        self.present = present;
    }

    fn check_counters_at_rest(&mut self, present: &[Option<(Stamp, Known)>]) {
        let mut live = HashSet::new();
        for (key, held) in present
            .iter()
            .enumerate()
            .filter(|&(key, _)| is_counter(key))
        {
            let Some((_, write)) = held else { continue };
            let content = write.content;
            live.insert(content.epoch);
            match self.epochs.get(&content.epoch) {
                None => self.problem(format!(
                    "(d) at rest, counter key {key} holds {content:?}, of an epoch never created"
                )),
                Some(epoch) if epoch.key != key || epoch.increments != content.count => {
                    let (epoch_key, increments) = (epoch.key, epoch.increments);
                    self.problem(format!(
                        "(d) at rest, counter key {key} holds count {} of epoch {:#x} (key \
                         {epoch_key}), but that epoch had {increments} successful increments",
                        content.count, content.epoch
                    ));
                }
                Some(_) => {}
            }
        }
        let ended: Vec<u64> = self
            .epochs
            .keys()
            .filter(|e| !live.contains(*e))
            .copied()
            .collect();
        for epoch in ended {
            let gone = self.epochs.remove(&epoch).expect("listed above");
            self.totals.epochs_ended += 1;
            self.totals.increments_ended += gone.increments;
        }
    }

    /// Checks what `iter`, `len` and `stats` of `cache` say at rest against `present`: what
    /// get_versioned found of each key, for the keys the cache holds, numbered from `first`.
    /// With `expiring`, expired entries not reclaimed yet count in `len` and `stats` (they are
    /// resident) but not in `present` or `iter`.
    fn check_iter_at_rest(
        &mut self,
        cache: &Cache,
        caches: &Caches,
        first: usize,
        present: &[Option<(Stamp, Known)>],
        max_entries: u64,
        expiring: bool,
    ) {
        let mut yielded = HashSet::new();
        for (k, value, version) in cache.iter() {
            let Some(key) = caches
                .number(&k)
                .filter(|key| (first..first + present.len()).contains(key))
            else {
                self.problem(format!("(e) at rest, iter yielded a foreign key {k:02x?}"));
                continue;
            };
            if !yielded.insert(key) {
                self.problem(format!("(e) at rest, iter yielded key {key} twice"));
            }
            let held = present[key - first];
            let matches = held.is_some_and(|(stamp, write)| {
                write.version == Some(version.get())
                    && decode(key, &value).is_ok_and(|c| c.stamp == stamp)
            });
            if !matches {
                self.problem(format!(
                    "(e) at rest, iter yielded key {key} at version {} ({:?}), but \
                     get_versioned found {held:?}",
                    version.get(),
                    decode(key, &value),
                ));
            }
        }
        let held = present.iter().flatten().count() as u64;
        let (resident, stats) = (cache.len() as u64, cache.stats());
        let agree = yielded.len() as u64 == held
            && resident == stats.entries
            && (resident == held || expiring && resident > held);
        if !agree {
            self.problem(format!(
                "(e) at rest, {held} keys are present, but iter yielded {}, len is {resident} \
                 and stats count {} entries: {stats:?}",
                yielded.len(),
                stats.entries
            ));
        }
        if resident > max_entries || stats.arena_bytes_used > stats.max_bytes {
            self.problem(format!(
                "(e) at rest, over a limit: {resident} entries (at most {max_entries}), {stats:?}"
            ));
        }
    }

    /// Fails with every problem found, or checks that the run did what it is meant to.
    fn finish(&mut self, caches: &Caches) {
        for key in FIRST_PINNED..KEYS {
            let count = self.present[key].map(|(_, write)| write.content.count);
            if self.created[key] != 1 || count != Some(self.raised[key]) {
                self.problem(format!(
                    "(d) pinned counter {key} was created {} times (its cache has room: it should \
                     be once), holds count {count:?}, and {} increments of it succeeded",
                    self.created[key], self.raised[key]
                ));
            }
        }
        let (main, pinned) = (caches.main.stats(), caches.pinned.stats());
        if pinned.evictions != 0 {
            self.problem(format!(
                "the pinned counters' cache evicted, with room to spare: {pinned:?}"
            ));
        }
        println!("stress: {:?}", self.totals);
        println!("stress: main cache {main:?}");
        println!("stress: pinned counters' cache {pinned:?}");
        assert!(
            self.problems.is_empty(),
            "{} problems in the {} shape (seed {}; the first {} below)\n{}\ntotals: {:?}\n\
             main cache: {main:?}",
            self.problem_count,
            caches.shape.name,
            self.seed,
            self.problems.len(),
            self.problems.join("\n"),
            self.totals
        );
        assert!(
            main.evictions > 0
                && main.hits > 0
                && (main.expirations > 0 || !caches.shape.expiring)
                && self.raised[FIRST_PINNED..].iter().all(|&n| n > 0),
            "the run in the {} shape was meant to evict, hit and count (seed {}): {:?} {main:?}",
            caches.shape.name,
            self.seed,
            self.totals
        );
    }
}

/// Names where a thread learned something, showing the event when it is in `round`.
fn describe(source: Option<Source>, round: u32, events: &[Event]) -> String {
    match source {
        None => "nothing before".into(),
        Some(Source::Event { round: r, index }) if r == round => {
            format!("event {index} {:?}", events[index as usize])
        }
        Some(Source::Event { round: r, index }) => format!("round {r}, event {index}"),
        Some(Source::AtRest { round: r }) => format!("the cache at rest after round {r}"),
    }
}
