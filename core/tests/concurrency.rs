//! Concurrent correctness: exact CAS counting, no torn reads, versions that never go back,
//! values that were really written (in order), iteration beside writers, and a listener told
//! of every departure once.
//! Every test runs a bounded number of writes; readers run until the writers finish.
//!
//! Under Miri (`scripts/miri.sh`), whose data-race detector and weak-memory emulation watch
//! every access, each test keeps its threads but does a few dozen operations a thread, on fewer
//! keys and short values (Miri copies a value out at a few KB a second), in caches with no
//! more size classes in use than pages, or with few chunks to a page, since moving a page
//! costs it about a second.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use slabcache::{Cache, Clock, Error, Event, ManualClock, Version};

use common::{
    hang_limited, is_pattern_value, is_sealed_for, miri_or, mix64, pattern_value, scaled,
    sealed_value, small_builder, small_cache, stats_departures, CauseCounts, Rng, SEAL,
    SMALL_MAX_VALUE, SMALL_PAGE,
};

/// Reads each reader makes at least, even if the writers are done before it starts.
const MIN_READS: u64 = if cfg!(miri) { 20 } else { 1000 };
/// Reads between two passes of `iter` by a reader of `readers_never_see_torn_values`. A pass
/// copies every value out, seconds under Miri.
const ITER_EVERY: u64 = if cfg!(miri) { 15 } else { 500 };
/// Writes of each writer under Miri, in the tests whose native counts are in the thousands.
const MIRI_WRITES: usize = 40;
/// Under Miri, the shortest and longest values written into the caches whose size classes
/// compete for four pages: 7 size classes, each cut in at most 712 chunks a page.
const MIRI_CONTESTED_VALUES: (usize, usize) = (128, 512);

/// Counts live writers; dropping a ticket (also while unwinding from a panic) signs one off,
/// so readers never spin forever behind a failed writer.
struct Writers(AtomicUsize);

struct Ticket<'a>(&'a Writers);

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        (self.0).0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Writers {
    fn running(&self) -> bool {
        self.0.load(Ordering::SeqCst) > 0
    }
}

/// Runs `writers` writer threads and `readers` reader threads at once. Each writer runs
/// `writer(id)` to completion; each reader runs `reader(id, &writers)` and should loop while
/// `writers.running()`. Returns their results in id order.
fn run_threads<WO: Send, RO: Send>(
    writers: usize,
    readers: usize,
    writer: impl Fn(usize) -> WO + Sync,
    reader: impl Fn(usize, &Writers) -> RO + Sync,
) -> (Vec<WO>, Vec<RO>) {
    let live = Writers(AtomicUsize::new(writers));
    thread::scope(|s| {
        let (writer, reader, live) = (&writer, &reader, &live);
        let w: Vec<_> = (0..writers)
            .map(|id| {
                s.spawn(move || {
                    let _ticket = Ticket(live);
                    writer(id)
                })
            })
            .collect();
        let r: Vec<_> = (0..readers)
            .map(|id| s.spawn(move || reader(id, live)))
            .collect();
        let w = w
            .into_iter()
            .map(|h| h.join().expect("writer thread panicked"))
            .collect();
        let r = r
            .into_iter()
            .map(|h| h.join().expect("reader thread panicked"))
            .collect();
        (w, r)
    })
}

fn counter_key(c: usize) -> Vec<u8> {
    format!("counter:{c}").into_bytes()
}

fn parse_counter(bytes: &[u8]) -> u64 {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "counter holds {:?}, not a number",
                String::from_utf8_lossy(bytes)
            )
        })
}

hang_limited! {
    fn cas_increments_from_four_threads_sum_exactly() {
        // Under Miri, 4 counters, so that its few increments still collide.
        const COUNTERS: usize = if cfg!(miri) { 4 } else { 64 };
        const THREADS: usize = 4;
        let (cache, _clock) = small_cache();
        for c in 0..COUNTERS {
            cache.insert(&counter_key(c), b"0").unwrap();
        }
        let per_thread = miri_or(25, scaled(10_000, 50_000));

        let (results, _) = run_threads(
            THREADS,
            0,
            |t| {
                let mut rng = Rng::new(t as u64);
                let mut mine = [0u64; COUNTERS];
                let mut mismatches = 0u64;
                for _ in 0..per_thread {
                    let c = rng.below(COUNTERS as u64) as usize;
                    let k = counter_key(c);
                    loop {
                        let (bytes, seen) = cache.get_versioned(&k).expect("a counter vanished");
                        let next = (parse_counter(&bytes) + 1).to_string();
                        match cache.compare_and_swap(&k, seen, next.as_bytes()) {
                            Ok(new) => {
                                assert!(
                                    new > seen,
                                    "CAS gave version {} after {}",
                                    new.get(),
                                    seen.get()
                                );
                                break;
                            }
                            Err(Error::VersionMismatch { current }) => {
                                assert!(current > seen, "a mismatch must report a newer version");
                                mismatches += 1;
                            }
                            Err(e) => panic!("unexpected CAS error {e:?}"),
                        }
                    }
                    mine[c] += 1;
                }
                (mine, mismatches)
            },
            |_, _| (),
        );

        let mut total = 0;
        for c in 0..COUNTERS {
            let expected: u64 = results.iter().map(|(mine, _)| mine[c]).sum();
            let got = parse_counter(&cache.get(&counter_key(c)).unwrap());
            assert_eq!(got, expected, "counter {c}: lost or duplicated increments");
            total += got;
        }
        assert_eq!(total, (THREADS * per_thread) as u64);
        let s = cache.stats();
        let mismatches: u64 = results.iter().map(|(_, m)| m).sum();
        assert_eq!(
            s.cas_failures, mismatches,
            "every refused CAS is counted once"
        );
        assert_eq!(s.updates, total, "every successful CAS is one update");
        assert_eq!(
            (s.inserts, s.evictions, s.entries),
            (COUNTERS as u64, 0, COUNTERS as u64)
        );
    }
}

hang_limited! {
    fn readers_never_see_torn_values() {
        // Under Miri 32 keys, so that a pass of `iter` copies few values.
        const KEYS: u64 = if cfg!(miri) { 32 } else { 256 };
        let clock = Arc::new(ManualClock::new());
        // Four pages: values of every size class compete for them, so chunks and pages are reused
        // (for other keys, other classes) while readers copy out of them.
        let cache = small_builder(&clock)
            .max_bytes(4 * SMALL_PAGE)
            .build()
            .unwrap();
        let key = |i: u64| format!("torn:{i}").into_bytes();
        let writes = miri_or(MIRI_WRITES, scaled(2_000, 20_000));
        let (shortest, longest) = if cfg!(miri) {
            MIRI_CONTESTED_VALUES
        } else {
            (SEAL, SMALL_MAX_VALUE)
        };

        let (_, reads) = run_threads(
            2,
            2,
            |w| {
                let mut rng = Rng::new(100 + w as u64);
                for seq in 0..writes {
                    let k = key(rng.below(KEYS));
                    let len = rng.log_uniform(shortest, longest);
                    let tag = [w as u8, (seq % 251) as u8];
                    let value = sealed_value(&k, &tag, len, rng.next_u64());
                    match rng.below(10) {
                        0 => {
                            cache.remove(&k);
                        }
                        1 => {
                            if let Some((old, v)) = cache.get_versioned(&k) {
                                assert!(is_sealed_for(&k, &old), "writer read a torn value");
                                let _ = cache.compare_and_swap(&k, v, &value);
                            }
                        }
                        2 => {
                            let _ = cache.replace(&k, &value);
                        }
                        _ => {
                            cache.insert(&k, &value).unwrap();
                        }
                    }
                }
            },
            |r, writers| {
                let mut rng = Rng::new(200 + r as u64);
                let mut buf = Vec::new();
                let (mut hits, mut reads) = (0u64, 0u64);
                while writers.running() || reads < MIN_READS {
                    reads += 1;
                    let k = key(rng.below(KEYS));
                    let got = match reads % 3 {
                        0 => cache.get(&k),
                        1 => cache.get_into(&k, &mut buf).map(|_| buf.clone()),
                        _ => cache.get_versioned(&k).map(|(v, _)| v),
                    };
                    if let Some(value) = got {
                        hits += 1;
                        assert!(
                            is_sealed_for(&k, &value),
                            "torn or foreign value for {:?}: {} bytes",
                            String::from_utf8_lossy(&k),
                            value.len()
                        );
                    }
                    if reads % ITER_EVERY == 0 {
                        for (ik, iv, _) in cache.iter() {
                            assert!(is_sealed_for(&ik, &iv), "iter yielded a torn value");
                        }
                    }
                }
                hits
            },
        );
        assert!(
            reads.iter().all(|&hits| hits > 0),
            "readers never hit: {reads:?}"
        );
        let s = cache.stats();
        assert!(s.arena_bytes_used <= 4 * SMALL_PAGE);
        for (k, v, _) in cache.iter() {
            assert!(is_sealed_for(&k, &v));
        }
    }
}

/// Keeps the highest version seen per key and checks that nothing older shows up.
#[derive(Default)]
struct VersionFloor(HashMap<Vec<u8>, Version>);

impl VersionFloor {
    /// Records a read of `v`: it may repeat the floor but never go under it.
    fn read(&mut self, k: &[u8], v: Version, who: &str) {
        let floor = self.0.entry(k.to_vec()).or_insert(v);
        assert!(
            v >= *floor,
            "{who}: read version {} after {}",
            v.get(),
            floor.get()
        );
        *floor = v;
    }

    /// Records a write that produced `v`: it must be above everything known before.
    fn wrote(&mut self, k: &[u8], v: Version, who: &str) {
        if let Some(floor) = self.0.get(k) {
            assert!(
                v > *floor,
                "{who}: wrote version {} after seeing {}",
                v.get(),
                floor.get()
            );
        }
        self.0.insert(k.to_vec(), v);
    }
}

hang_limited! {
    fn versions_never_go_backwards_for_any_thread() {
        const HOT: u64 = 8;
        let clock = Arc::new(ManualClock::new());
        // Few entries allowed, so the filler writes evict hot keys now and then.
        let cache = small_builder(&clock).max_entries(24).build().unwrap();
        let hot = |i: u64| format!("hot:{i}").into_bytes();
        let ops = miri_or(MIRI_WRITES, scaled(20_000, 100_000));

        let (floors, _) = run_threads(
            3,
            2,
            |w| {
                let who = format!("writer {w}");
                let mut rng = Rng::new(300 + w as u64);
                let mut floor = VersionFloor::default();
                for i in 0..ops {
                    if w == 2 {
                        // Pressure and time: fillers that evict, and a clock that expires.
                        let k = format!("filler:{}", rng.below(1000)).into_bytes();
                        cache.insert(&k, &[w as u8; 100]).unwrap();
                        if i % 16 == 0 {
                            clock.advance(Duration::from_millis(1));
                        }
                        continue;
                    }
                    let k = hot(rng.below(HOT));
                    let value = [w as u8; 40];
                    let result = match rng.below(8) {
                        0 => cache.insert(&k, &value).map(Some),
                        1 => cache
                            .insert_with_ttl(&k, &value, Some(Duration::from_millis(rng.below(5))))
                            .map(Some),
                        2 => {
                            cache.remove(&k);
                            Ok(None)
                        }
                        3 => cache.insert_if_absent(&k, &value).map(Some),
                        4 => cache.replace(&k, &value).map(Some),
                        5 => match cache.get_versioned(&k) {
                            Some((_, v)) => {
                                floor.read(&k, v, &who);
                                cache.compare_and_swap(&k, v, &value).map(Some)
                            }
                            None => Ok(None),
                        },
                        6 => match cache.get_versioned(&k) {
                            Some((_, v)) => {
                                floor.read(&k, v, &who);
                                cache.remove_if_version(&k, v).map(|()| None)
                            }
                            None => Ok(None),
                        },
                        _ => cache.insert_with_ttl(&k, &value, None).map(Some),
                    };
                    match result {
                        Ok(Some(v)) => floor.wrote(&k, v, &who),
                        Ok(None) | Err(Error::Exists | Error::NotFound) => {}
                        Err(Error::VersionMismatch { current }) => floor.read(&k, current, &who),
                        Err(e) => panic!("{who}: unexpected error {e:?}"),
                    }
                }
                floor
            },
            |r, writers| {
                let who = format!("reader {r}");
                let mut rng = Rng::new(400 + r as u64);
                let mut floor = VersionFloor::default();
                let mut buf = Vec::new();
                let mut reads = 0u64;
                while writers.running() || reads < MIN_READS {
                    reads += 1;
                    let k = hot(rng.below(HOT));
                    let seen = if reads % 2 == 0 {
                        cache.get_versioned(&k).map(|(_, v)| v)
                    } else {
                        cache.get_into(&k, &mut buf)
                    };
                    if let Some(v) = seen {
                        floor.read(&k, v, &who);
                    }
                }
                floor
            },
        );
        assert!(cache.len() <= 24);
        assert!(
            cache.stats().evictions > 0,
            "the fillers were meant to force evictions"
        );
        // The last write of each key tops every version anyone saw of it, and a new write tops
        // that.
        for i in 0..HOT {
            let k = hot(i);
            let Some(highest) = floors.iter().filter_map(|f| f.0.get(&k)).max().copied() else {
                continue;
            };
            if let Some((_, now)) = cache.get_versioned(&k) {
                assert!(
                    now >= highest,
                    "final version {} below {} seen",
                    now.get(),
                    highest.get()
                );
            }
            let v = cache.insert(&k, b"last").unwrap();
            assert!(
                v > highest,
                "new write {} not above {} seen before",
                v.get(),
                highest.get()
            );
        }
    }
}

/// The one value writer `w` writes with sequence number `seq`, and the key index it goes to.
fn history_write(w: u64, seq: u64, keys: u64) -> (u64, usize) {
    let h = mix64((w << 40) ^ seq);
    let spread = miri_or(200, 3000);
    (h % keys, SEAL + 16 + (h >> 32) as usize % spread)
}

fn history_key(i: u64) -> Vec<u8> {
    format!("hist:{i}").into_bytes()
}

fn history_value(w: u64, seq: u64, keys: u64) -> Vec<u8> {
    let (i, len) = history_write(w, seq, keys);
    let mut tag = [0u8; 16];
    tag[..8].copy_from_slice(&w.to_le_bytes());
    tag[8..].copy_from_slice(&seq.to_le_bytes());
    sealed_value(&history_key(i), &tag, len, mix64(seq ^ w))
}

hang_limited! {
    fn reads_return_written_values_in_each_writers_order() {
        const KEYS: u64 = 16;
        const WRITERS: usize = 2;
        let (cache, _clock) = small_cache();
        let writes = miri_or(MIRI_WRITES, scaled(10_000, 50_000)) as u64;
        // started[w]: sequence numbers below it may have been written by writer w.
        let started: Vec<AtomicU64> = (0..WRITERS).map(|_| AtomicU64::new(0)).collect();
        // Writes that reported failure: they must never be read.
        let refused: Mutex<HashSet<(u64, u64)>> = Mutex::default();

        let (_, observed) = run_threads(
            WRITERS,
            2,
            |w| {
                let w = w as u64;
                let mut rng = Rng::new(500 + w);
                for seq in 0..writes {
                    let (i, _) = history_write(w, seq, KEYS);
                    let k = history_key(i);
                    let value = history_value(w, seq, KEYS);
                    started[w as usize].store(seq + 1, Ordering::SeqCst);
                    let ok = match rng.below(10) {
                        0 => {
                            cache.remove(&k);
                            false
                        }
                        1 => cache.replace(&k, &value).is_ok(),
                        2 => cache.insert_if_absent(&k, &value).is_ok(),
                        _ => cache.insert(&k, &value).is_ok(),
                    };
                    if !ok {
                        refused.lock().unwrap().insert((w, seq));
                    }
                }
            },
            |r, writers| {
                let mut rng = Rng::new(600 + r as u64);
                // last[w][i]: the highest sequence of writer w read from key i.
                let mut last = vec![[None::<u64>; KEYS as usize]; WRITERS];
                let mut seen = HashSet::new();
                let mut reads = 0u64;
                while writers.running() || reads < MIN_READS {
                    reads += 1;
                    let i = rng.below(KEYS);
                    let k = history_key(i);
                    let Some(value) = cache.get(&k) else { continue };
                    assert!(is_sealed_for(&k, &value), "torn or foreign value under {i}");
                    let w = u64::from_le_bytes(value[SEAL..SEAL + 8].try_into().unwrap());
                    let seq = u64::from_le_bytes(value[SEAL + 8..SEAL + 16].try_into().unwrap());
                    assert!((w as usize) < WRITERS, "value names writer {w}");
                    assert!(
                        seq < started[w as usize].load(Ordering::SeqCst),
                        "read a future write"
                    );
                    assert_eq!(
                        history_write(w, seq, KEYS).0,
                        i,
                        "write ({w},{seq}) went to another key"
                    );
                    assert_eq!(
                        value,
                        history_value(w, seq, KEYS),
                        "value differs from write ({w},{seq})"
                    );
                    if let Some(prev) = last[w as usize][i as usize].replace(seq) {
                        assert!(
                            prev <= seq,
                            "reader {r}: key {i} showed writer {w}'s write {seq} after its write {prev}"
                        );
                    }
                    seen.insert((w, seq));
                }
                seen
            },
        );
        let refused = refused.into_inner().unwrap();
        for seen in &observed {
            assert!(!seen.is_empty(), "a reader never hit");
            let bad: Vec<_> = seen.intersection(&refused).collect();
            assert!(bad.is_empty(), "refused writes were read: {bad:?}");
        }
    }
}

hang_limited! {
    fn iter_beside_writers_yields_stable_entries_exactly_once() {
        const STABLE: u64 = if cfg!(miri) { 20 } else { 300 };
        const CHURN: u64 = if cfg!(miri) { 10 } else { 200 };
        // Under Miri, whose iteration costs time in proportion to the cache's size, 8 pages, and
        // values short enough to need no more size classes than that.
        let (stable_spread, churn_longest) = if cfg!(miri) {
            (64, 64)
        } else {
            (5000, 16 << 10)
        };
        let clock = Arc::new(ManualClock::new());
        // Roomy: the churn never evicts, so the stable entries stay present throughout.
        let cache = small_builder(&clock)
            .max_bytes(miri_or(8, 256) as u64 * SMALL_PAGE)
            .build()
            .unwrap();
        let stable_key = |i: u64| format!("stable:{i}").into_bytes();
        let churn_key = |i: u64| format!("churn:{i}").into_bytes();
        let mut stable = HashMap::new();
        for i in 0..STABLE {
            let k = stable_key(i);
            let value = sealed_value(&k, b"stable", SEAL + (i as usize * 97) % stable_spread, i);
            let v = cache.insert(&k, &value).unwrap();
            stable.insert(k, (value, v));
        }
        let writes = miri_or(MIRI_WRITES / 2, scaled(3_000, 30_000));

        let (_, passes) = run_threads(
            2,
            2,
            |w| {
                let mut rng = Rng::new(700 + w as u64);
                for _ in 0..writes {
                    let k = churn_key(rng.below(CHURN));
                    if rng.one_in(3) {
                        cache.remove(&k);
                    } else {
                        let len = rng.log_uniform(SEAL, churn_longest);
                        cache
                            .insert(&k, &sealed_value(&k, b"churn", len, rng.next_u64()))
                            .unwrap();
                    }
                }
            },
            |_, writers| {
                let mut passes = 0;
                while writers.running() || passes < 3 {
                    passes += 1;
                    let mut yielded: HashMap<Vec<u8>, usize> = HashMap::new();
                    for (k, value, v) in cache.iter() {
                        assert!(is_sealed_for(&k, &value), "iter yielded a torn value");
                        if let Some((want, want_v)) = stable.get(&k) {
                            assert_eq!((&value, v), (want, *want_v), "stable entry changed");
                        } else {
                            assert!(k.starts_with(b"churn:"), "iter yielded an unknown key");
                        }
                        *yielded.entry(k).or_default() += 1;
                    }
                    if let Some((k, n)) = yielded.iter().find(|&(_, &n)| n > 1) {
                        panic!(
                            "one iteration yielded {:?} {n} times",
                            String::from_utf8_lossy(k)
                        );
                    }
                    for k in stable.keys() {
                        assert_eq!(
                            yielded.get(k).copied().unwrap_or(0),
                            1,
                            "stable key {:?} not yielded exactly once (evictions so far: {})",
                            String::from_utf8_lossy(k),
                            cache.stats().evictions
                        );
                    }
                }
                passes
            },
        );
        assert!(passes.iter().all(|&p| p >= 3));
        assert_eq!(cache.stats().evictions, 0);
    }
}

/// The shortest and longest values of the churn tests.
const CHURN_VALUES: (usize, usize) = if cfg!(miri) {
    MIRI_CONTESTED_VALUES
} else {
    (1, 16 << 10)
};
/// Writes of the first writer of a churn test between two `clear`s.
const CHURN_CLEAR_EVERY: usize = if cfg!(miri) { MIRI_WRITES / 2 } else { 1500 };

/// One write of the churn tests' mix to `k`, with `ttl`: insert 40%, remove 15%, replace 10%,
/// insert_if_absent 10%, compare_and_swap of the current version 10%, remove_if_version of it
/// 15%.
fn churn_write(cache: &Cache, rng: &mut Rng, k: &[u8], value: &[u8], ttl: Option<Duration>) {
    let current = || cache.get_versioned(k).map(|(_, v)| v);
    match rng.below(100) {
        0..=39 => drop(cache.insert_with_ttl(k, value, ttl).unwrap()),
        40..=54 => drop(cache.remove(k)),
        55..=64 => drop(cache.replace_with_ttl(k, value, ttl)),
        65..=74 => drop(cache.insert_if_absent_with_ttl(k, value, ttl)),
        75..=84 => {
            if let Some(v) = current() {
                drop(cache.compare_and_swap_with_ttl(k, v, value, ttl));
            }
        }
        _ => {
            if let Some(v) = current() {
                drop(cache.remove_if_version(k, v));
            }
        }
    }
}

hang_limited! {
    fn accounting_is_exact_after_concurrent_churn() {
        // Under Miri 40 keys, so that the final audit copies few values.
        const KEYS: u64 = if cfg!(miri) { 40 } else { 300 };
        let clock = Arc::new(ManualClock::new());
        // Four pages under every kind of write, so eviction and page moves race the writers.
        let cache = small_builder(&clock)
            .max_bytes(4 * SMALL_PAGE)
            .build()
            .unwrap();
        let key = |i: u64| format!("acct:{i}").into_bytes();
        let ops = miri_or(MIRI_WRITES * 3 / 4, scaled(3_000, 30_000));
        let (shortest, longest) = CHURN_VALUES;

        run_threads(
            3,
            1,
            |w| {
                let mut rng = Rng::new(800 + w as u64);
                for i in 0..ops {
                    let k = key(rng.below(KEYS));
                    let value = pattern_value(&k, rng.log_uniform(shortest, longest) - 1);
                    churn_write(&cache, &mut rng, &k, &value, None);
                    if w == 0 && i % CHURN_CLEAR_EVERY == CHURN_CLEAR_EVERY - 1 {
                        cache.clear();
                    }
                }
            },
            |_, writers| {
                let mut rng = Rng::new(900);
                while writers.running() {
                    let s = cache.stats();
                    assert!(
                        s.arena_bytes_used <= s.max_bytes,
                        "arena over budget: {s:?}"
                    );
                    let k = key(rng.below(KEYS));
                    if let Some(v) = cache.get(&k) {
                        assert!(is_pattern_value(&k, &v), "wrong content under churn");
                    }
                }
            },
        );

        let s = cache.stats();
        let (mut count, mut payload) = (0u64, 0u64);
        for (k, v, _) in cache.iter() {
            assert!(is_pattern_value(&k, &v), "iter: wrong content after churn");
            count += 1;
            payload += (k.len() + v.len()) as u64;
        }
        assert_eq!(s.expirations, 0, "nothing had a TTL");
        assert_eq!(
            (s.entries, cache.len() as u64, s.payload_bytes),
            (count, count, payload),
            "(entries, len, payload_bytes) disagree with iter after concurrent churn: {s:?}"
        );
        assert_eq!(
            s.inserts - s.removals - s.evictions,
            s.entries,
            "inserts - removals - evictions must equal entries: {s:?}"
        );
    }
}

hang_limited! {
    fn a_listener_hears_of_every_departure_once_under_concurrent_writers() {
        const KEYS: u64 = if cfg!(miri) { 40 } else { 1000 };
        let clock = Arc::new(ManualClock::new());
        let counts = Arc::new(CauseCounts::default());
        let wrong_values = Arc::new(AtomicU64::new(0));
        // Four pages and an entry limit: evictions for room, for the limit and for page moves
        // race the writers, the reaper and `clear`.
        let cache = small_builder(&clock)
            .max_bytes(4 * SMALL_PAGE)
            .max_entries(KEYS / 4)
            .listener({
                let (counts, wrong_values) = (counts.clone(), wrong_values.clone());
                move |e: &Event| {
                    counts.count(e);
                    if !is_pattern_value(e.key(), e.value()) {
                        wrong_values.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
            .build()
            .unwrap();
        let key = |i: u64| format!("gone:{i}").into_bytes();
        let ops = miri_or(MIRI_WRITES, scaled(3_000, 30_000));
        let (shortest, longest) = CHURN_VALUES;

        run_threads(
            4,
            0,
            |w| {
                let mut rng = Rng::new(1200 + w as u64);
                for i in 0..ops {
                    let k = key(rng.below(KEYS));
                    let value = pattern_value(&k, rng.log_uniform(shortest, longest) - 1);
                    let ttl = rng
                        .one_in(4)
                        .then(|| Duration::from_micros(rng.range(1, 50) as u64));
                    churn_write(&cache, &mut rng, &k, &value, ttl);
                    match w {
                        0 if i % CHURN_CLEAR_EVERY == CHURN_CLEAR_EVERY - 1 => cache.clear(),
                        1 => clock.advance(Duration::from_micros(1)),
                        2 if i % 100 == 99 => cache.run_pending_tasks(),
                        _ => {}
                    }
                }
            },
            |_, _| {},
        );

        assert_eq!(wrong_values.load(Ordering::SeqCst), 0, "events with a wrong value");
        // Every call delivered its events before it returned, or left them to a thread that
        // was delivering, which did not return before the queue was empty.
        assert_eq!(
            counts.departures(),
            stats_departures(&cache.stats()),
            "events (evicted, expired, removed + cleared, replaced) against stats after the \
             writers returned"
        );
        clock.advance(Duration::from_secs(1));
        cache.run_pending_tasks();
        let (evicted, expired, removed, replaced) = counts.departures();
        assert_eq!(
            (evicted, expired, removed, replaced),
            stats_departures(&cache.stats()),
            "after a last round of maintenance"
        );
        if !cfg!(miri) {
            assert!(
                evicted > 0 && expired > 0 && removed > 0 && replaced > 0,
                "every cause occurred: {:?}",
                (evicted, expired, removed, replaced)
            );
        }
        assert_eq!(cache.stats().listener_panics, 0);
    }
}

hang_limited! {
    /// Readers sample hits into the hot-key tracker while a writer removes and reinserts keys
    /// and another thread asks for the hottest keys: nothing waits on anything for good, every
    /// answer is well formed, and the key read most comes out first.
    fn hottest_beside_readers_and_writers() {
        const KEYS: u64 = if cfg!(miri) { 8 } else { 200 };
        let clock = Arc::new(ManualClock::new());
        let cache = small_builder(&clock).track_hot_keys(true).build().unwrap();
        let key = |i: u64| format!("hot:{i}").into_bytes();
        let hot = key(0);
        for i in 0..KEYS {
            cache.insert(&key(i), b"v").unwrap();
        }
        let reads = miri_or(MIRI_WRITES, scaled(20_000, 100_000));
        run_threads(
            4,
            1,
            |w| {
                let mut rng = Rng::new(1_000 + w as u64);
                let mut buf = Vec::new();
                for _ in 0..reads {
                    if w == 3 {
                        // Churn every key but the hot one: hottest must skip removed keys.
                        let k = key(1 + rng.below(KEYS - 1));
                        if !cache.remove(&k) {
                            cache.insert(&k, b"v").unwrap();
                        }
                    } else if rng.one_in(2) {
                        assert!(cache.get_into(&hot, &mut buf).is_some());
                    } else {
                        cache.get_into(&key(rng.below(KEYS)), &mut buf);
                    }
                }
            },
            |_, writers| loop {
                let running = writers.running();
                let hottest = cache.hottest(10);
                assert!(hottest.len() <= 10);
                assert!(
                    hottest.windows(2).all(|w| w[0].1 >= w[1].1),
                    "counts out of order"
                );
                for (k, _) in &hottest {
                    assert!(k.starts_with(b"hot:"), "not a key: {k:?}");
                }
                if !running {
                    break;
                }
            },
        );
        if !cfg!(miri) {
            // The hot key takes half of 3 threads' reads: thousands of samples.
            let hottest = cache.hottest(1);
            assert_eq!(hottest.first().map(|(k, _)| k), Some(&hot));
        }
    }
}

hang_limited! {
    fn reads_never_return_entries_past_their_deadline() {
        const KEYS: u64 = 64;
        let (cache, clock) = small_cache();
        let key = |i: u64| format!("ttl:{i}").into_bytes();
        let writes = miri_or(MIRI_WRITES, scaled(20_000, 100_000));

        // Two writers write with TTLs of a few microseconds and move the clock on by a microsecond
        // after each write, so entries expire while readers look at them. Each writer returns, per
        // (key, version) it wrote, an upper bound of the deadline: the clock after the write
        // returned, plus the TTL.
        let (bounds, observations) = run_threads(
            2,
            2,
            |w| {
                let mut rng = Rng::new(1000 + w as u64);
                let mut upper = HashMap::new();
                for _ in 0..writes {
                    let i = rng.below(KEYS);
                    let ttl = Duration::from_micros(rng.range(1, 40) as u64);
                    let v = cache
                        .insert_with_ttl(&key(i), &[w as u8; 24], Some(ttl))
                        .unwrap();
                    upper.insert((i, v), clock.now() + ttl);
                    clock.advance(Duration::from_micros(1));
                }
                upper
            },
            |r, writers| {
                let mut rng = Rng::new(1100 + r as u64);
                let mut buf = Vec::new();
                let mut seen = Vec::new();
                while writers.running() && seen.len() < 1_000_000 {
                    let i = rng.below(KEYS);
                    let before = clock.now();
                    let got = if rng.one_in(2) {
                        cache.get_versioned(&key(i)).map(|(_, v)| v)
                    } else {
                        cache.get_into(&key(i), &mut buf)
                    };
                    if let Some(v) = got {
                        seen.push((i, v, before));
                    }
                }
                seen
            },
        );
        let upper: HashMap<(u64, Version), Duration> = bounds.into_iter().flatten().collect();
        let mut hits = 0;
        for (i, v, before) in observations.into_iter().flatten() {
            let deadline = upper.get(&(i, v)).unwrap_or_else(|| {
                panic!("key {i}: read version {} that no write returned", v.get())
            });
            assert!(
                before < *deadline,
                "key {i} version {}: read with the clock at {before:?} or later, but its deadline \
                 was at most {deadline:?}",
                v.get()
            );
            hits += 1;
        }
        assert!(hits > 0, "readers never hit a live entry");
    }
}

thread_local! {
    /// A thread-local that writes to a cache when the thread ends: see
    /// `writes_work_from_a_thread_local_destructor`.
    static WRITES_ON_EXIT: std::cell::RefCell<Option<WritesOnDrop>> =
        const { std::cell::RefCell::new(None) };
}

/// On drop, writes `keys` new keys into a cache at its entry limit, so each write evicts,
/// and reads each back.
struct WritesOnDrop {
    cache: Arc<slabcache::Cache>,
    keys: usize,
}

impl Drop for WritesOnDrop {
    fn drop(&mut self) {
        for i in 0..self.keys {
            let (key, value) = numbered_entry("on-exit", i);
            self.cache
                .insert(&key, &value)
                .expect("a write from a thread-local's destructor succeeds");
            assert_eq!(self.cache.get(&key), Some(value));
        }
    }
}

/// Key `prefix:i` and its 64-byte pattern value.
fn numbered_entry(prefix: &str, i: usize) -> (Vec<u8>, Vec<u8>) {
    let key = format!("{prefix}:{i}").into_bytes();
    let value = pattern_value(&key, 64);
    (key, value)
}

/// A program may use the cache from a thread-local's destructor (a C program's thread-exit
/// handler, a Rust thread-local that flushes on drop), which can run after the engine's own
/// thread-locals are gone. Writes that evict still work there, and leave the cache usable.
#[test]
fn writes_work_from_a_thread_local_destructor() {
    const ENTRIES: u64 = 4;
    const KEYS: usize = 12;
    let clock = Arc::new(ManualClock::new());
    let cache = Arc::new(small_builder(&clock).max_entries(ENTRIES).build().unwrap());
    let shared = Arc::clone(&cache);
    thread::spawn(move || {
        // Set first, so destroyed last: thread-locals are destroyed in the reverse order of
        // their first use, and the writes below are the engine's first use of its own.
        WRITES_ON_EXIT.with(|slot| {
            *slot.borrow_mut() = Some(WritesOnDrop {
                cache: Arc::clone(&shared),
                keys: KEYS,
            });
        });
        for i in 0..KEYS {
            let (key, value) = numbered_entry("in-thread", i);
            shared.insert(&key, &value).unwrap();
        }
    })
    .join()
    .expect("the thread and its thread-locals' destructors ran to the end");
    let (last, value) = numbered_entry("on-exit", KEYS - 1);
    assert_eq!(cache.get(&last), Some(value));
    assert_eq!(cache.len() as u64, ENTRIES);
    // Each of the 2 × KEYS new keys past the first ENTRIES evicted exactly one entry.
    assert_eq!(cache.stats().evictions, 2 * KEYS as u64 - ENTRIES);
    cache.insert(b"after", b"the cache still works").unwrap();
    assert_eq!(
        cache.get(b"after").as_deref(),
        Some(&b"the cache still works"[..])
    );
}
