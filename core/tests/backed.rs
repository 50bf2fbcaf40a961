//! A cache in front of a source of truth (`Backed`): stale-while-revalidate, refresh-ahead,
//! early expiry, negative caching, and writes through, around and behind the cache, checked
//! against an in-memory source that counts, fails and stalls on demand.
//!
//! Time moves only through a `ManualClock`; a source load may move it too, standing for a
//! slow source. Where a test needs a background refresh to have run, it asks `settle`.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use slabcache::{
    Backed, BackedBuilder, BackedError, Cache, Clock, ManualClock, Retry, Source, WhenFull,
    WriteBehind, WriteMode,
};

use common::{hang_limited, miri_or, Rng};

const SEC: Duration = Duration::from_secs(1);

/// A gate threads wait at until it opens.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn closed() -> Self {
        Gate::default()
    }

    fn pass(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

/// An in-memory source that counts its calls, and on demand fails, stalls or takes clock
/// time.
struct Db {
    rows: Arc<Mutex<HashMap<Vec<u8>, Vec<u8>>>>,
    loads: AtomicU64,
    stores: AtomicU64,
    /// Loads of each key.
    loads_of: Mutex<HashMap<Vec<u8>, u64>>,
    /// Loads wait here when set.
    load_gate: Mutex<Option<Arc<Gate>>>,
    /// Write batches wait here when set.
    write_gate: Mutex<Option<Arc<Gate>>>,
    /// Each call of a write fails with this probability (a seeded draw).
    write_failure_rate: f64,
    draws: Mutex<Rng>,
    /// A load moves this clock by `load_time`.
    clock: Option<(Arc<ManualClock>, Duration)>,
}

impl Db {
    fn new() -> Self {
        Db {
            rows: Arc::default(),
            loads: AtomicU64::new(0),
            stores: AtomicU64::new(0),
            loads_of: Mutex::default(),
            load_gate: Mutex::new(None),
            write_gate: Mutex::new(None),
            write_failure_rate: 0.0,
            draws: Mutex::new(Rng::new(1)),
            clock: None,
        }
    }

    fn failing(rate: f64, seed: u64) -> Self {
        Db {
            write_failure_rate: rate,
            draws: Mutex::new(Rng::new(seed)),
            ..Db::new()
        }
    }

    fn slow(clock: &Arc<ManualClock>, load_time: Duration) -> Self {
        Db {
            clock: Some((Arc::clone(clock), load_time)),
            ..Db::new()
        }
    }

    fn with(rows: &[(&[u8], &[u8])]) -> Self {
        let db = Db::new();
        for (k, v) in rows {
            db.rows.lock().unwrap().insert(k.to_vec(), v.to_vec());
        }
        db
    }

    fn row(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.rows.lock().unwrap().get(key).cloned()
    }

    fn set_row(&self, key: &[u8], value: &[u8]) {
        self.rows
            .lock()
            .unwrap()
            .insert(key.to_vec(), value.to_vec());
    }

    fn loads_of(&self, key: &[u8]) -> u64 {
        self.loads_of.lock().unwrap().get(key).copied().unwrap_or(0)
    }

    fn gate_loads(&self) -> Arc<Gate> {
        let gate = Arc::new(Gate::closed());
        *self.load_gate.lock().unwrap() = Some(Arc::clone(&gate));
        gate
    }

    fn gate_writes(&self) -> Arc<Gate> {
        let gate = Arc::new(Gate::closed());
        *self.write_gate.lock().unwrap() = Some(Arc::clone(&gate));
        gate
    }

    /// Waits at the write gate, then fails at the configured rate.
    fn write_call(&self) -> Result<(), String> {
        let gate = self.write_gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            gate.pass();
        }
        let rate = self.write_failure_rate;
        if rate > 0.0 && (self.draws.lock().unwrap().below(1000) as f64) < rate * 1000.0 {
            return Err("the source is down".into());
        }
        Ok(())
    }
}

impl Source for Db {
    type Error = String;

    fn load(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        *self
            .loads_of
            .lock()
            .unwrap()
            .entry(key.to_vec())
            .or_default() += 1;
        let gate = self.load_gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            gate.pass();
        }
        if let Some((clock, load_time)) = &self.clock {
            clock.advance(*load_time);
        }
        Ok(self.row(key))
    }

    fn store(&self, key: &[u8], value: &[u8]) -> Result<(), String> {
        self.store_batch(&[(key.to_vec(), value.to_vec())])
    }

    fn delete(&self, key: &[u8]) -> Result<(), String> {
        self.delete_batch(&[key.to_vec()])
    }

    fn store_batch(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> Result<(), String> {
        self.write_call()?;
        let mut rows = self.rows.lock().unwrap();
        for (k, v) in entries {
            self.stores.fetch_add(1, Ordering::SeqCst);
            rows.insert(k.clone(), v.clone());
        }
        Ok(())
    }

    fn delete_batch(&self, keys: &[Vec<u8>]) -> Result<(), String> {
        self.write_call()?;
        let mut rows = self.rows.lock().unwrap();
        for k in keys {
            rows.remove(k);
        }
        Ok(())
    }
}

fn cache_on(clock: &Arc<ManualClock>) -> Arc<Cache> {
    Arc::new(
        Cache::builder()
            .max_bytes(8 << 20)
            .clock(clock.clone())
            .build()
            .expect("config"),
    )
}

fn plain_cache() -> Arc<Cache> {
    Arc::new(Cache::builder().max_bytes(8 << 20).build().expect("config"))
}

fn behind(settings: WriteBehind) -> WriteMode {
    WriteMode::Behind(settings)
}

/// Write-behind that retries fast, for tests.
fn quick_retries() -> WriteBehind {
    WriteBehind {
        batch_size: 16,
        max_delay: Duration::from_millis(1),
        retry: Retry {
            initial_backoff: Duration::from_micros(200),
            max_backoff: Duration::from_millis(2),
            max_attempts: None,
        },
        ..WriteBehind::default()
    }
}

#[test]
fn write_through_reads_and_deletes() {
    let users = Backed::builder(plain_cache(), Db::with(&[(b"old", b"row")]))
        .build()
        .expect("config");
    assert_eq!(users.get(b"old").unwrap().as_deref(), Some(&b"row"[..]));
    users.put(b"k", b"v").unwrap();
    assert_eq!(users.source().row(b"k").as_deref(), Some(&b"v"[..]));
    assert_eq!(users.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(
        users.source().loads.load(Ordering::SeqCst),
        1,
        "the put filled the cache"
    );
    users.delete(b"k").unwrap();
    assert_eq!(users.source().row(b"k"), None);
    assert_eq!(users.get(b"k").unwrap(), None);
    assert_eq!(users.get(b"nope").unwrap(), None);
}

#[test]
fn write_around_invalidates_and_the_next_read_loads() {
    let users = Backed::builder(plain_cache(), Db::new())
        .write_mode(WriteMode::Around)
        .build()
        .expect("config");
    users.put(b"k", b"v1").unwrap();
    assert!(!users.cache().contains(b"k"), "written around the cache");
    assert_eq!(users.get(b"k").unwrap().as_deref(), Some(&b"v1"[..]));
    users.put(b"k", b"v2").unwrap();
    assert!(
        !users.cache().contains(b"k"),
        "the write removed the cached value"
    );
    assert_eq!(users.get(b"k").unwrap().as_deref(), Some(&b"v2"[..]));
    assert_eq!(users.source().loads.load(Ordering::SeqCst), 2);
}

#[test]
fn a_refused_write_through_reports_the_source_error_and_leaves_nothing_cached() {
    let users = Backed::builder(plain_cache(), Db::failing(1.0, 3))
        .build()
        .expect("config");
    match users.put(b"k", b"v") {
        Err(BackedError::Source(e)) => assert_eq!(e, "the source is down"),
        other => panic!("expected the source's error, got {other:?}"),
    }
    assert!(!users.cache().contains(b"k"));
    assert!(matches!(users.put(b"", b"v"), Err(BackedError::Cache(_))));
}

#[test]
fn settings_that_make_no_sense_are_refused() {
    let build = |b: BackedBuilder<Db>| b.build().map(drop);
    let base = || Backed::builder(plain_cache(), Db::new());
    assert!(
        build(base().stale_while_revalidate(SEC)).is_err(),
        "SWR without a ttl"
    );
    assert!(build(base().ttl(SEC).refresh_ahead(1.0)).is_err());
    assert!(build(base().ttl(SEC).refresh_ahead(0.0)).is_err());
    assert!(build(base().ttl(SEC).early_expiry(f64::NAN)).is_err());
    assert!(build(base().ttl(Duration::ZERO)).is_err());
    assert!(build(base().negative_ttl(Duration::ZERO)).is_err());
    assert!(build(base().ttl(SEC).refresh_ahead(0.5).refresh_workers(0, 8)).is_err());
    let zero_batch = WriteBehind {
        batch_size: 0,
        ..WriteBehind::default()
    };
    assert!(build(base().write_mode(behind(zero_batch))).is_err());
    assert!(build(
        base()
            .ttl(SEC)
            .stale_while_revalidate(SEC)
            .early_expiry(1.0)
    )
    .is_ok());
}

/// What `readers` threads starting at once read of `key`.
fn read_at_once(
    backed: &Arc<Backed<Db>>,
    key: &'static [u8],
    readers: usize,
) -> Vec<Option<Vec<u8>>> {
    let start = Arc::new(Barrier::new(readers));
    let threads: Vec<_> = (0..readers)
        .map(|_| {
            let (backed, start) = (Arc::clone(backed), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                backed.get(key).unwrap()
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

hang_limited! {
    /// Past the fresh TTL, concurrent readers get the stale value at once while exactly one
    /// refresh reaches the source; past the stale window, they wait for one load.
    fn stale_while_revalidate_serves_stale_and_refreshes_once() {
        let readers = miri_or(4, 32);
        let clock = Arc::new(ManualClock::new());
        let users = Arc::new(
            Backed::builder(cache_on(&clock), Db::with(&[(b"k", b"v1")]))
                .ttl(10 * SEC)
                .stale_while_revalidate(10 * SEC)
                .build()
                .expect("config"),
        );
        assert_eq!(users.get(b"k").unwrap().as_deref(), Some(&b"v1"[..]));
        users.source().set_row(b"k", b"v2");
        clock.advance(15 * SEC);
        // The refresh stalls in the source until every reader has been served.
        let gate = users.source().gate_loads();
        for value in read_at_once(&users, b"k", readers) {
            assert_eq!(value.as_deref(), Some(&b"v1"[..]), "stale, at once");
        }
        gate.open();
        users.settle();
        let stats = users.stats();
        assert_eq!(users.source().loads.load(Ordering::SeqCst), 2, "one refresh");
        assert_eq!((stats.refreshes, stats.stale_served), (1, readers as u64));
        assert_eq!(users.get(b"k").unwrap().as_deref(), Some(&b"v2"[..]), "refreshed");

        // Past fresh TTL and window of the refreshed entry: readers wait for one load.
        users.source().set_row(b"k", b"v3");
        clock.advance(25 * SEC);
        for value in read_at_once(&users, b"k", readers) {
            assert_eq!(value.as_deref(), Some(&b"v3"[..]), "freshly loaded");
        }
        assert_eq!(users.source().loads.load(Ordering::SeqCst), 3, "one load for all");
    }
}

hang_limited! {
    /// A refresh asked for by a read of an entry that was replaced before the refresh ran
    /// (here by a write; under a stampede, by the refresh before it) does not reach the
    /// source: only the entry that was judged stale is refreshed.
    fn a_refresh_of_an_entry_replaced_meanwhile_is_skipped() {
        let clock = Arc::new(ManualClock::new());
        let users = Backed::builder(cache_on(&clock), Db::with(&[(b"a", b"1"), (b"k", b"1")]))
            .ttl(10 * SEC)
            .stale_while_revalidate(10 * SEC)
            .refresh_workers(1, 16)
            .build()
            .expect("config");
        users.get(b"a").unwrap();
        users.get(b"k").unwrap();
        clock.advance(15 * SEC);
        // The one refresh worker stalls in the source, refreshing `a`.
        let gate = users.source().gate_loads();
        users.get(b"a").unwrap();
        while users.source().loads.load(Ordering::SeqCst) < 3 {
            thread::sleep(Duration::from_millis(1));
        }
        // `k`'s refresh waits in the queue while a write replaces the stale entry.
        assert_eq!(users.get(b"k").unwrap().as_deref(), Some(&b"1"[..]), "stale");
        users.put(b"k", b"2").unwrap();
        gate.open();
        users.settle();
        assert_eq!(users.source().loads_of(b"k"), 1, "no refresh of the written entry");
        assert_eq!(users.stats().refreshes, 1);
        assert_eq!(users.get(b"k").unwrap().as_deref(), Some(&b"2"[..]));
    }
}

/// Reads `key` once a second from a fresh load until it expires (`ttl` of 100 s); whether a
/// refresh reached the source before the loaded value's fresh time ran out.
fn refreshed_before_expiry(
    configure: impl Fn(BackedBuilder<Db>) -> BackedBuilder<Db>,
    seed: u64,
) -> bool {
    let clock = Arc::new(ManualClock::new());
    let db = Db::slow(&clock, 5 * SEC);
    db.set_row(b"hot", b"v");
    db.set_row(b"cold", b"v");
    let backed = configure(Backed::builder(cache_on(&clock), db).ttl(100 * SEC))
        .random_seed(seed)
        .build()
        .expect("config");
    backed.get(b"cold").unwrap();
    backed.get(b"hot").unwrap();
    let expires = clock.now() + 100 * SEC;
    let mut refreshed = false;
    while clock.now() < expires && !refreshed {
        clock.advance(SEC);
        backed.get(b"hot").unwrap();
        backed.settle();
        refreshed = backed.source().loads_of(b"hot") > 1;
    }
    clock.advance(200 * SEC);
    backed.get(b"hot").unwrap();
    backed.settle();
    assert_eq!(
        backed.source().loads_of(b"cold"),
        1,
        "a key nobody reads is never refreshed"
    );
    refreshed
}

hang_limited! {
    /// Refresh-ahead keeps a steadily read key fresh: refreshed before it expires, in every
    /// trial.
    fn refresh_ahead_refreshes_before_expiry() {
        let trials = miri_or(3, 100);
        let refreshed = (0..trials)
            .filter(|&seed| refreshed_before_expiry(|b| b.refresh_ahead(0.8), seed as u64))
            .count();
        assert!(refreshed * 100 >= trials * 95, "{refreshed} of {trials}");
    }
}

hang_limited! {
    /// Early expiry (XFetch, seeded): a steadily read key whose load takes 5 s is refreshed
    /// before it expires in at least 95 of 100 trials.
    fn early_expiry_refreshes_before_expiry() {
        let trials = miri_or(3, 100);
        let refreshed = (0..trials)
            .filter(|&seed| refreshed_before_expiry(|b| b.early_expiry(1.0), seed as u64))
            .count();
        assert!(refreshed * 100 >= trials * 95, "{refreshed} of {trials}");
    }
}

#[test]
fn negative_caching_asks_the_source_once_per_negative_ttl() {
    let clock = Arc::new(ManualClock::new());
    let backed = Backed::builder(cache_on(&clock), Db::new())
        .negative_ttl(SEC)
        .build()
        .expect("config");
    let reads = miri_or(100, 10_000);
    for _ in 0..reads {
        assert_eq!(backed.get(b"missing").unwrap(), None);
        clock.advance(Duration::from_millis(1));
    }
    let windows = (reads as u64).div_ceil(1000);
    assert_eq!(backed.source().loads_of(b"missing"), windows);
    assert_eq!(backed.stats().negative_hits, reads as u64 - windows);
    backed.put(b"missing", b"now here").unwrap();
    assert_eq!(
        backed.get(b"missing").unwrap().as_deref(),
        Some(&b"now here"[..]),
        "a write ends it"
    );
}

hang_limited! {
    /// Write-behind over a source that fails half of its calls: after `flush`, the source holds
    /// exactly the last acknowledged value of every key, from 4 writers making random writes
    /// and deletes; every failure was retried and reported.
    fn write_behind_loses_nothing_over_a_failing_source() {
        let writers = 4;
        let ops = miri_or(40, 10_000) / writers;
        let failures = Arc::new(AtomicU64::new(0));
        let backed = Arc::new(
            Backed::builder(plain_cache(), Db::failing(0.5, 42))
                .write_mode(behind(quick_retries()))
                .on_write_error({
                    let failures = Arc::clone(&failures);
                    move |f| {
                        assert!(!f.gave_up && f.error.is_some());
                        failures.fetch_add(1, Ordering::SeqCst);
                    }
                })
                .build()
                .expect("config"),
        );
        let models: Vec<HashMap<Vec<u8>, Option<Vec<u8>>>> = (0..writers)
            .map(|w| {
                let backed = Arc::clone(&backed);
                thread::spawn(move || {
                    let mut rng = Rng::new(w as u64 + 7);
                    let mut model = HashMap::new();
                    for i in 0..ops {
                        let key = format!("w{w}:k{}", rng.below(50)).into_bytes();
                        if rng.one_in(4) {
                            backed.delete(&key).unwrap();
                            model.insert(key, None);
                        } else {
                            let value = format!("w{w}:v{i}").into_bytes();
                            backed.put(&key, &value).unwrap();
                            model.insert(key, Some(value));
                        }
                    }
                    model
                })
            })
            .map(|t| t.join().unwrap())
            .collect();
        backed.flush();
        for (key, value) in models.iter().flatten() {
            assert_eq!(backed.source().row(key), *value, "key {}", String::from_utf8_lossy(key));
        }
        let stats = backed.stats();
        assert_eq!(stats.queue_depth, 0);
        assert_eq!(stats.failed, 0);
        assert!(stats.retried > 0, "half the calls failed: {stats:?}");
        assert_eq!(stats.retried, failures.load(Ordering::SeqCst), "each failure reported");
    }
}

hang_limited! {
    /// Repeated writes of one key are coalesced into far fewer stores.
    fn write_behind_coalesces_repeated_writes() {
        let writes = miri_or(50, 1000);
        let settings = WriteBehind {
            max_delay: 3600 * SEC,
            batch_size: 64,
            ..WriteBehind::default()
        };
        let backed = Backed::builder(plain_cache(), Db::new())
            .write_mode(behind(settings))
            .build()
            .expect("config");
        for i in 0..writes {
            backed.put(b"counter", i.to_string().as_bytes()).unwrap();
        }
        backed.flush();
        let last = (writes - 1).to_string();
        assert_eq!(backed.source().row(b"counter").as_deref(), Some(last.as_bytes()));
        let stores = backed.source().stores.load(Ordering::SeqCst);
        assert!(stores * 10 < writes as u64, "{stores} stores for {writes} writes");
        assert_eq!(backed.stats().coalesced + stores, writes as u64);
    }
}

hang_limited! {
    /// A full queue refuses writes when told to, and blocks them otherwise; nothing is dropped.
    fn a_full_write_behind_queue_errors_or_blocks_and_never_drops() {
        for when_full in [WhenFull::Error, WhenFull::Block] {
            let settings = WriteBehind {
                queue_capacity: 2,
                batch_size: 1,
                max_delay: Duration::ZERO,
                when_full,
                ..WriteBehind::default()
            };
            let db = Db::new();
            let gate = db.gate_writes();
            let backed = Arc::new(
                Backed::builder(plain_cache(), db)
                    .write_mode(behind(settings))
                    .build()
                    .expect("config"),
            );
            backed.put(b"a", b"1").unwrap();
            backed.put(b"b", b"2").unwrap();
            let third = thread::spawn({
                let backed = Arc::clone(&backed);
                move || backed.put(b"c", b"3")
            });
            let blocked = Arc::new(AtomicBool::new(true));
            if when_full == WhenFull::Error {
                assert!(matches!(third.join().unwrap(), Err(BackedError::QueueFull)));
                assert_eq!(backed.stats().queue_depth, 2);
                gate.open();
                backed.flush();
                backed.put(b"c", b"3").unwrap();
            } else {
                thread::sleep(Duration::from_millis(50));
                blocked.store(!third.is_finished(), Ordering::SeqCst);
                assert!(blocked.load(Ordering::SeqCst), "the third write waits for room");
                gate.open();
                third.join().unwrap().unwrap();
            }
            backed.flush();
            for (k, v) in [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")] {
                assert_eq!(backed.source().row(k).as_deref(), Some(&v[..]));
            }
        }
    }
}

#[test]
fn dropping_a_write_behind_cache_flushes_it() {
    let settings = WriteBehind {
        max_delay: 3600 * SEC,
        ..WriteBehind::default()
    };
    let source = Db::new();
    let rows = Arc::clone(&source.rows);
    let backed = Backed::builder(plain_cache(), source)
        .write_mode(behind(settings))
        .build()
        .expect("config");
    for i in 0..100u32 {
        backed.put(&i.to_be_bytes(), b"v").unwrap();
    }
    assert!(
        backed.stats().queue_depth > 0,
        "still queued: the delay is an hour"
    );
    drop(backed);
    assert_eq!(rows.lock().unwrap().len(), 100);
}

#[test]
fn a_closed_cache_takes_no_writes_but_still_reads() {
    let backed = Backed::builder(plain_cache(), Db::with(&[(b"k", b"v")]))
        .write_mode(behind(WriteBehind::default()))
        .build()
        .expect("config");
    backed.put(b"j", b"w").unwrap();
    backed.close();
    assert_eq!(
        backed.source().row(b"j").as_deref(),
        Some(&b"w"[..]),
        "close flushed"
    );
    assert!(matches!(
        backed.put(b"late", b"v"),
        Err(BackedError::Closed)
    ));
    assert!(matches!(backed.delete(b"k"), Err(BackedError::Closed)));
    assert_eq!(backed.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    backed.close();
}

hang_limited! {
    /// A key whose write is queued reads as written even after the cache evicted it.
    fn a_queued_write_reads_back_after_eviction() {
        let settings = WriteBehind {
            max_delay: 3600 * SEC,
            ..WriteBehind::default()
        };
        let db = Db::new();
        let gate = db.gate_writes();
        let backed = Backed::builder(plain_cache(), db)
            .write_mode(behind(settings))
            .build()
            .expect("config");
        backed.put(b"k", b"queued").unwrap();
        backed.cache().remove(b"k");
        assert_eq!(backed.get(b"k").unwrap().as_deref(), Some(&b"queued"[..]));
        assert_eq!(backed.source().loads.load(Ordering::SeqCst), 0, "not asked");
        backed.delete(b"k").unwrap();
        backed.cache().remove(b"k");
        assert_eq!(backed.get(b"k").unwrap(), None, "a queued delete reads as deleted");
        gate.open();
    }
}

/// Writers racing on one key through `mode`, with readers loading it meanwhile: at the end
/// the cache holds the source's value or nothing, never an older one.
fn racing_writers_leave_no_older_value(mode: WriteMode) {
    let rounds = miri_or(2, 200);
    for round in 0..rounds {
        let backed = Arc::new(
            Backed::builder(plain_cache(), Db::new())
                .write_mode(mode.clone())
                .build()
                .expect("config"),
        );
        let start = Arc::new(Barrier::new(4));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (backed, start) = (Arc::clone(&backed), Arc::clone(&start));
                thread::spawn(move || {
                    start.wait();
                    for i in 0..5 {
                        if t < 2 {
                            let value = format!("round {round} writer {t} write {i}");
                            backed.put(b"k", value.as_bytes()).unwrap();
                        } else {
                            backed.get(b"k").unwrap();
                        }
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let cached = backed.cache().get(b"k").map(|_| backed.get(b"k").unwrap());
        if let Some(cached) = cached {
            assert_eq!(
                cached,
                backed.source().row(b"k"),
                "round {round}: an older value is cached"
            );
        }
    }
}

hang_limited! {
    fn write_through_racing_writers_leave_no_older_value_cached() {
        racing_writers_leave_no_older_value(WriteMode::Through);
    }
}

hang_limited! {
    fn write_around_racing_writers_leave_no_older_value_cached() {
        racing_writers_leave_no_older_value(WriteMode::Around);
    }
}

#[test]
fn tagged_puts_are_dropped_from_the_cache_by_their_tag_and_reload() {
    for mode in [WriteMode::Through, behind(WriteBehind::default())] {
        let backed = Backed::builder(plain_cache(), Db::new())
            .write_mode(mode)
            .build()
            .expect("config");
        backed.put_tagged(b"a", b"1", &[b"group"]).unwrap();
        backed
            .put_tagged(b"b", b"2", &[b"group", b"other"])
            .unwrap();
        backed.put(b"c", b"3").unwrap();
        backed.flush();
        assert_eq!(backed.invalidate_tag(b"group"), 2);
        assert!(!backed.cache().contains(b"a") && !backed.cache().contains(b"b"));
        assert!(backed.cache().contains(b"c"));
        assert_eq!(
            backed.get(b"a").unwrap().as_deref(),
            Some(&b"1"[..]),
            "reloaded"
        );
        assert_eq!(backed.source().loads_of(b"a"), 1);
    }
}
