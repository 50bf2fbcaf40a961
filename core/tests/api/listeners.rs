//! Listeners: every way an entry leaves (or has its value replaced) reported once, with its key,
//! value and cause, as the stats count it; listeners that call the cache or panic; the
//! maintenance thread of `build_shared`, which reports expirations without traffic and ends
//! with the cache. (The concurrent counterpart is in `tests/concurrency.rs`.)

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex, OnceLock, Weak};
use std::thread;
use std::time::Duration;

use slabcache::{Cache, CacheBuilder, Error, Event, ManualClock, RemovalCause, Version};

use crate::common::{
    hang_limited, is_pattern_value, pattern_value, small_builder, stats_departures, CauseCounts,
    Rng, SMALL_MAX_BYTES, SMALL_MAX_VALUE, SMALL_PAGE,
};
use crate::{key, SEC};

use RemovalCause::{Cleared, Evicted, Expired, Removed, Replaced, TagInvalidated};

type Seen = Arc<Mutex<Vec<Event>>>;

/// `builder` with a listener that records every event, and the record.
fn recording(builder: CacheBuilder) -> (CacheBuilder, Seen) {
    let seen = Seen::default();
    let builder = builder.listener({
        let seen = seen.clone();
        move |e: &Event| seen.lock().unwrap().push(e.clone())
    });
    (builder, seen)
}

/// The small cache on a manual clock, recording its events.
fn recorded_small_cache() -> (Cache, Arc<ManualClock>, Seen) {
    let clock = Arc::new(ManualClock::new());
    let (builder, seen) = recording(small_builder(&clock));
    (builder.build().unwrap(), clock, seen)
}

/// The events recorded since the last call.
fn take(seen: &Seen) -> Vec<Event> {
    std::mem::take(&mut *seen.lock().unwrap())
}

/// Events as (cause, key, value) tuples, for comparisons.
fn described(events: &[Event]) -> Vec<(RemovalCause, &[u8], &[u8])> {
    events
        .iter()
        .map(|e| (e.cause(), e.key(), e.value()))
        .collect()
}

#[track_caller]
fn assert_events_match_stats(events: &[Event], cache: &Cache) {
    assert_eq!(
        CauseCounts::of(events).departures(),
        stats_departures(&cache.stats()),
        "events (evicted, expired, removed + cleared, replaced) against stats (evictions, \
         expirations, removals, updates)"
    );
}

#[test]
fn every_removal_path_reports_its_entry_once_with_the_value_it_held() {
    let (cache, clock, seen) = recorded_small_cache();
    let mut all = Vec::new();
    let mut step = |what: &str, expected: &[(RemovalCause, &[u8], &[u8])]| {
        let mut events = take(&seen);
        events.sort_by(|a, b| a.key().cmp(b.key()));
        assert_eq!(described(&events), expected, "events of {what}");
        all.extend(events);
        assert_events_match_stats(&all, &cache);
    };
    let big = vec![7u8; SMALL_MAX_VALUE / 2];

    cache.insert(b"a", b"1").unwrap();
    step("an insert of a new key", &[]);
    cache.insert(b"a", b"2").unwrap();
    step("an update in place", &[(Replaced, b"a", b"1")]);
    cache.insert(b"a", &big).unwrap();
    step("an update into a larger class", &[(Replaced, b"a", b"2")]);
    let v = cache.replace(b"a", b"3").unwrap();
    step("a replace into a smaller class", &[(Replaced, b"a", &big)]);
    cache.compare_and_swap(b"a", v, b"4").unwrap();
    step("a compare_and_swap in place", &[(Replaced, b"a", b"3")]);
    assert!(matches!(
        cache.compare_and_swap(b"a", v, b"5"),
        Err(Error::VersionMismatch { .. })
    ));
    assert_eq!(cache.insert_if_absent(b"a", b"5"), Err(Error::Exists));
    assert_eq!(cache.replace(b"none", b"5"), Err(Error::NotFound));
    step("refused writes", &[]);
    assert!(cache.remove(b"a"));
    step("a remove", &[(Removed, b"a", b"4")]);
    assert!(!cache.remove(b"a"));
    step("a remove of an absent key", &[]);

    let v = cache.insert(b"b", b"bee").unwrap();
    cache.insert(b"other", b"o").unwrap();
    let newer = Version::new(v.get() + 1).unwrap();
    assert!(cache.remove_if_version(b"b", newer).is_err());
    cache.remove_if_version(b"b", v).unwrap();
    step("remove_if_version", &[(Removed, b"b", b"bee")]);

    cache.insert_with_ttl(b"c", b"cee", Some(SEC)).unwrap();
    cache.insert_with_ttl(b"d", b"dee", Some(SEC)).unwrap();
    cache.insert_with_ttl(b"e", b"eee", Some(SEC)).unwrap();
    clock.advance(SEC);
    assert_eq!(cache.get(b"c"), None);
    step("reads of expired entries", &[]);
    cache.insert(b"c", b"c2").unwrap();
    step(
        "an insert over an expired entry",
        &[(Expired, b"c", b"cee")],
    );
    assert!(!cache.remove(b"d"), "an expired entry is not removed");
    step("a remove of an expired entry", &[(Expired, b"d", b"dee")]);
    cache.insert_if_absent(b"e", b"e2").unwrap();
    step(
        "an insert_if_absent over an expired entry",
        &[(Expired, b"e", b"eee")],
    );

    cache.insert_tagged(b"t1", b"one", None, &[b"tag"]).unwrap();
    cache.insert_tagged(b"t2", b"two", None, &[b"tag"]).unwrap();
    cache
        .insert_tagged(b"t2", b"two'", None, &[b"tag"])
        .unwrap();
    step("tagged writes", &[(Replaced, b"t2", b"two")]);
    assert_eq!(cache.invalidate_tag(b"tag"), 2);
    step(
        "a tag invalidation",
        &[
            (TagInvalidated, b"t1", b"one"),
            (TagInvalidated, b"t2", b"two'"),
        ],
    );

    cache.clear();
    step(
        "clear",
        &[
            (Cleared, b"c", b"c2"),
            (Cleared, b"e", b"e2"),
            (Cleared, b"other", b"o"),
        ],
    );
    assert_eq!(cache.stats().listener_panics, 0);
}

hang_limited! {
    /// A listener told of what a tagged write replaced may invalidate that write's own tag:
    /// it hears of it once the write is done, so the invalidation does not wait for the write
    /// it was called from.
    fn a_listener_may_invalidate_the_tag_of_the_write_that_called_it() {
        let cache: Arc<OnceLock<Weak<Cache>>> = Arc::default();
        let invalidated = Arc::new(AtomicU64::new(0));
        let built = Arc::new(
            small_builder(&Arc::new(ManualClock::new()))
                .listener({
                    let (cache, invalidated) = (cache.clone(), invalidated.clone());
                    move |e: &Event| {
                        if e.cause() == Replaced {
                            let cache = cache.get().and_then(Weak::upgrade).unwrap();
                            invalidated.fetch_add(cache.invalidate_tag(b"tag"), Ordering::SeqCst);
                        }
                    }
                })
                .build()
                .unwrap(),
        );
        cache.set(Arc::downgrade(&built)).unwrap();
        built.insert_tagged(b"k", b"v1", None, &[b"tag"]).unwrap();
        built.insert_tagged(b"k", b"v2", None, &[b"tag"]).unwrap();
        assert_eq!(invalidated.load(Ordering::SeqCst), 1, "the second write's entry");
        assert_eq!(built.get(b"k"), None);
    }
}

/// The keys of `events`, after checking that each has `cause`, a value as written (a
/// [`pattern_value`]), and a key of its own.
#[track_caller]
fn keys_once_each(events: &[Event], cause: RemovalCause) -> HashSet<&[u8]> {
    assert!(events.iter().all(|e| e.cause() == cause), "only {cause:?}");
    assert!(
        events.iter().all(|e| is_pattern_value(e.key(), e.value())),
        "the value of an entry that left"
    );
    let keys: HashSet<&[u8]> = events.iter().map(Event::key).collect();
    assert_eq!(keys.len(), events.len(), "an entry reported twice");
    keys
}

/// Checks that the events of a cache that was written `written` (each key once, with a
/// [`pattern_value`], no TTL, nothing removed) are evictions, one for each entry that is gone.
#[track_caller]
fn assert_one_eviction_per_entry_gone(cache: &Cache, events: &[Event], written: &[Vec<u8>]) {
    let evicted = keys_once_each(events, Evicted);
    let resident: HashSet<Vec<u8>> = cache.iter().map(|(k, _, _)| k).collect();
    for k in written {
        assert!(
            evicted.contains(&k[..]) != resident.contains(k),
            "{:?}: evicted {}, resident {}",
            String::from_utf8_lossy(k),
            evicted.contains(&k[..]),
            resident.contains(k)
        );
    }
    assert_eq!(evicted.len() + resident.len(), written.len());
    assert!(!events.is_empty(), "the cache had to evict");
    assert_events_match_stats(events, cache);
}

hang_limited! {
    #[cfg_attr(miri, ignore = "hundreds of evicting writes: minutes under Miri")]
    fn evictions_under_an_entry_limit_report_each_evicted_entry() {
        let clock = Arc::new(ManualClock::new());
        let (builder, seen) = recording(small_builder(&clock).max_entries(64));
        let cache = builder.build().unwrap();
        let written: Vec<_> = (0..1000)
            .map(|i| {
                let k = key(i);
                cache.insert(&k, &pattern_value(&k, i % 300)).unwrap();
                k
            })
            .collect();
        assert_one_eviction_per_entry_gone(&cache, &take(&seen), &written);
    }
}

hang_limited! {
    #[cfg_attr(
        miri,
        ignore = "writes 3x the budget in sizes that move pages between classes: many minutes under Miri"
    )]
    fn evictions_for_room_and_page_moves_report_each_evicted_entry() {
        let (cache, _clock, seen) = recorded_small_cache();
        let mut rng = Rng::new(13);
        let (mut written, mut bytes) = (Vec::new(), 0);
        while bytes < 3 * SMALL_MAX_BYTES {
            let k = key(written.len());
            let len = rng.log_uniform(1, 8192);
            cache.insert(&k, &pattern_value(&k, len)).unwrap();
            written.push(k);
            bytes += len as u64;
        }
        assert_one_eviction_per_entry_gone(&cache, &take(&seen), &written);
    }
}

/// Values this long put few chunks in a page, so that the sampling reaper, which picks chunks
/// at random, finds the expired ones in a few rounds.
const DENSE_VALUE: usize = SMALL_MAX_VALUE / 4;

/// Inserts two pages' worth of entries with `ttl` and values of [`DENSE_VALUE`] bytes; their
/// keys.
fn insert_dense(cache: &Cache, ttl: Duration) -> HashSet<Vec<u8>> {
    (0..2 * SMALL_PAGE as usize / DENSE_VALUE)
        .map(|i| {
            let k = key(i);
            cache
                .insert_with_ttl(&k, &pattern_value(&k, DENSE_VALUE), Some(ttl))
                .unwrap();
            k
        })
        .collect()
}

/// Checks that `events` are the expirations of the entries `keys`, once each.
#[track_caller]
fn assert_expired_once_each(events: &[Event], keys: &HashSet<Vec<u8>>) {
    let expired = keys_once_each(events, Expired);
    assert_eq!(expired, keys.iter().map(Vec::as_slice).collect());
}

hang_limited! {
    #[cfg_attr(miri, ignore = "the reaper samples for many rounds: minutes under Miri")]
    fn run_pending_tasks_reports_expirations_without_other_traffic() {
        let (cache, clock, seen) = recorded_small_cache();
        let keys = insert_dense(&cache, SEC);
        cache.run_pending_tasks();
        assert!(take(&seen).is_empty(), "nothing has expired yet");
        clock.advance(SEC);
        let mut events = Vec::new();
        while events.len() < keys.len() {
            cache.run_pending_tasks();
            events.extend(take(&seen));
        }
        assert_expired_once_each(&events, &keys);
        assert_events_match_stats(&events, &cache);
        assert_eq!(cache.len(), 0);
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "the reaper samples for many rounds: minutes under Miri"
)]
fn run_pending_tasks_reaps_without_a_listener() {
    let clock = Arc::new(ManualClock::new());
    let cache = small_builder(&clock).build_shared().unwrap();
    let keys = insert_dense(&cache, SEC);
    clock.advance(SEC);
    // One round is a bounded sample; it finds some of the expired entries, each class
    // being full of them.
    cache.run_pending_tasks();
    let s = cache.stats();
    assert!(s.expirations > 0, "the reaper found nothing: {s:?}");
    assert_eq!(s.entries, keys.len() as u64 - s.expirations);
    assert_eq!(s.listener_panics, 0);
}

hang_limited! {
    #[cfg_attr(miri, ignore = "500 writes with a listener writing per event: minutes under Miri")]
    fn a_listener_may_call_the_cache_and_is_never_reentered() {
        let clock = Arc::new(ManualClock::new());
        let handle: Arc<OnceLock<Weak<Cache>>> = Arc::default();
        let seen = Seen::default();
        // Listener calls in progress: more than one would be a nested or a parallel delivery.
        let delivering = Arc::new(AtomicU64::new(0));
        let cache = small_builder(&clock)
            .max_entries(32)
            // Asleep for the test: events are counted once the writes have returned, and a
            // maintenance round could be delivering some at that moment.
            .maintenance_interval(Duration::from_secs(3600))
            .listener({
                let (handle, seen, delivering) = (handle.clone(), seen.clone(), delivering.clone());
                move |e: &Event| {
                    assert_eq!(delivering.fetch_add(1, Ordering::SeqCst), 0, "nested delivery");
                    let events = {
                        let mut seen = seen.lock().unwrap();
                        seen.push(e.clone());
                        seen.len()
                    };
                    let cache = handle.get().and_then(Weak::upgrade).expect("the cache is alive");
                    // Each call takes locks the cache was holding when the event was made:
                    // a lock still held would hang here.
                    if !e.key().starts_with(b"echo:") {
                        let echo = [b"echo:", e.key()].concat();
                        cache.insert(&echo, e.value()).unwrap();
                        cache.get(&echo);
                        cache.remove(e.key());
                    }
                    cache.run_pending_tasks();
                    if events == 100 {
                        cache.clear();
                    }
                    delivering.fetch_sub(1, Ordering::SeqCst);
                }
            })
            .build_shared()
            .unwrap();
        handle.set(Arc::downgrade(&cache)).unwrap();
        for i in 0..500 {
            let k = key(i);
            cache.insert(&k, &pattern_value(&k, i % 100)).unwrap();
        }
        let events = take(&seen);
        assert_eq!(cache.stats().listener_panics, 0, "a listener call failed");
        assert!(events.len() > 100, "{} events", events.len());
        assert!(
            events.iter().any(|e| e.key().starts_with(b"echo:")),
            "the writes of the listener made events too"
        );
        assert!(events.iter().any(|e| e.cause() == Cleared), "the listener's clear");
        assert_events_match_stats(&events, &cache);
    }
}

#[test]
fn a_panicking_listener_is_contained_and_counted() {
    let clock = Arc::new(ManualClock::new());
    let seen = Seen::default();
    let cache = small_builder(&clock)
        .listener({
            let seen = seen.clone();
            move |e: &Event| {
                assert!(!e.key().starts_with(b"boom"), "the listener panics on boom");
                seen.lock().unwrap().push(e.clone());
            }
        })
        .build()
        .unwrap();
    cache.insert(b"boom", b"1").unwrap();
    cache.insert(b"boom", b"2").unwrap();
    assert_eq!(cache.stats().listener_panics, 1);
    assert!(take(&seen).is_empty());

    // In one batch, the events after a panicking one are still delivered.
    for k in [&b"a"[..], b"boom2", b"c"] {
        cache.insert(k, b"v").unwrap();
    }
    cache.clear();
    assert_eq!(cache.stats().listener_panics, 3, "boom and boom2 cleared");
    let mut keys: Vec<_> = take(&seen).iter().map(|e| e.key().to_vec()).collect();
    keys.sort();
    assert_eq!(keys, [b"a".to_vec(), b"c".to_vec()]);

    // The cache works on, and so does its listener.
    let v = cache.insert(b"d", b"1").unwrap();
    assert_eq!(cache.get_versioned(b"d"), Some((b"1".to_vec(), v)));
    cache.remove(b"d");
    assert_eq!(described(&take(&seen)), [(Removed, &b"d"[..], &b"1"[..])]);
    assert_eq!(cache.stats().listener_panics, 3);
}

thread_local! {
    /// Sets its flag when the thread that holds it exits.
    static EXIT_WATCH: RefCell<Option<SetOnDrop>> = const { RefCell::new(None) };
}

struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// From a listener: if it runs on the maintenance thread, `ended` is set when that thread
/// exits (by its thread-local's destructor); true if it does.
fn watch_maintenance_thread(ended: &Arc<AtomicBool>) -> bool {
    let on_it = thread::current().name() == Some("slabcache-maintenance");
    if on_it {
        EXIT_WATCH.with(|w| {
            w.borrow_mut()
                .get_or_insert_with(|| SetOnDrop(ended.clone()));
        });
    }
    on_it
}

/// Waits, polling, until `flag` is set (the test is hang-limited).
fn wait_for(flag: impl Fn() -> bool) {
    while !flag() {
        thread::sleep(Duration::from_millis(1));
    }
}

hang_limited! {
    #[cfg_attr(miri, ignore = "the reaper samples for many rounds: minutes under Miri")]
    fn the_maintenance_thread_reports_expirations_and_ends_with_the_cache() {
        let clock = Arc::new(ManualClock::new());
        let ended = Arc::new(AtomicBool::new(false));
        let (seen, off_thread) = (Seen::default(), Arc::new(AtomicU64::new(0)));
        let cache = small_builder(&clock)
            .maintenance_interval(Duration::from_millis(1))
            .listener({
                let (seen, ended, off_thread) = (seen.clone(), ended.clone(), off_thread.clone());
                move |e: &Event| {
                    if !watch_maintenance_thread(&ended) {
                        off_thread.fetch_add(1, Ordering::SeqCst);
                    }
                    seen.lock().unwrap().push(e.clone());
                }
            })
            .build_shared()
            .unwrap();
        let keys = insert_dense(&cache, SEC);
        clock.advance(SEC);
        // No more traffic: the maintenance thread finds them.
        wait_for(|| seen.lock().unwrap().len() >= keys.len());
        let events = take(&seen);
        assert_expired_once_each(&events, &keys);
        assert_events_match_stats(&events, &cache);
        assert_eq!(off_thread.load(Ordering::SeqCst), 0, "delivered by the maintenance thread");

        assert!(!ended.load(Ordering::SeqCst), "the thread runs while the cache lives");
        let weak = Arc::downgrade(&cache);
        drop(cache);
        assert!(weak.upgrade().is_none());
        wait_for(|| ended.load(Ordering::SeqCst));
    }
}

hang_limited! {
    #[cfg_attr(miri, ignore = "the reaper samples for many rounds: minutes under Miri")]
    fn a_cache_dropped_on_its_maintenance_thread_stops_it() {
        let clock = Arc::new(ManualClock::new());
        let ended = Arc::new(AtomicBool::new(false));
        // The listener's first call, on the maintenance thread, waits at the barriers while the
        // test drops its reference: the thread's own is then the last.
        let (entered, release) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
        let first = Arc::new(AtomicBool::new(true));
        let cache = small_builder(&clock)
            .maintenance_interval(Duration::from_millis(1))
            .listener({
                let (ended, entered, release, first) =
                    (ended.clone(), entered.clone(), release.clone(), first.clone());
                move |_: &Event| {
                    if watch_maintenance_thread(&ended) && first.swap(false, Ordering::SeqCst) {
                        entered.wait();
                        release.wait();
                    }
                }
            })
            .build_shared()
            .unwrap();
        insert_dense(&cache, SEC);
        clock.advance(SEC);
        entered.wait();
        let weak = Arc::downgrade(&cache);
        drop(cache);
        assert!(weak.upgrade().is_some(), "the maintenance thread holds the cache in its round");
        release.wait();
        wait_for(|| ended.load(Ordering::SeqCst));
        assert!(weak.upgrade().is_none());
    }
}

hang_limited! {
    #[cfg_attr(miri, ignore = "the reaper samples for many rounds: minutes under Miri")]
    fn stop_maintenance_waits_for_the_round_in_progress() {
        let clock = Arc::new(ManualClock::new());
        let ended = Arc::new(AtomicBool::new(false));
        // The listener's first call on the maintenance thread waits at the barriers, and then
        // looks whether the stopper, started meanwhile, has returned: it must not have.
        let (entered, release) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
        let (first, stopped) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicBool::new(false)));
        let stopped_during_the_round = Arc::new(AtomicBool::new(false));
        let cache = small_builder(&clock)
            .maintenance_interval(Duration::from_millis(1))
            .listener({
                let (ended, entered, release) = (ended.clone(), entered.clone(), release.clone());
                let (first, stopped, during) =
                    (first.clone(), stopped.clone(), stopped_during_the_round.clone());
                move |_: &Event| {
                    if watch_maintenance_thread(&ended) && first.swap(false, Ordering::SeqCst) {
                        entered.wait();
                        release.wait();
                        during.store(stopped.load(Ordering::SeqCst), Ordering::SeqCst);
                    }
                }
            })
            .build_shared()
            .unwrap();
        insert_dense(&cache, SEC);
        clock.advance(SEC);
        entered.wait();
        let stopper = thread::spawn({
            let (cache, stopped) = (cache.clone(), stopped.clone());
            move || {
                cache.stop_maintenance();
                stopped.store(true, Ordering::SeqCst);
            }
        });
        // Time for the stopper to reach its wait; a stop that did not wait would return in it.
        thread::sleep(Duration::from_millis(50));
        release.wait();
        stopper.join().unwrap();
        assert!(
            !stopped_during_the_round.load(Ordering::SeqCst),
            "stop_maintenance returned while the listener ran on the maintenance thread"
        );
        assert!(ended.load(Ordering::SeqCst), "the thread has ended when stop returns");
        // A second stop does nothing, and the cache goes on without the thread.
        cache.stop_maintenance();
        cache.insert(b"after", b"v").unwrap();
        assert_eq!(cache.get(b"after").as_deref(), Some(&b"v"[..]));
    }
}

#[test]
fn a_zero_maintenance_interval_is_refused() {
    let clock = Arc::new(ManualClock::new());
    let zero = || small_builder(&clock).maintenance_interval(Duration::ZERO);
    for built in [zero().build().map(Arc::new), zero().build_shared()] {
        match built {
            Err(Error::InvalidConfig(why)) => {
                assert!(why.contains("maintenance_interval"), "{why}")
            }
            other => panic!("a zero maintenance_interval: {other:?}"),
        }
    }
    assert!(small_builder(&clock)
        .maintenance_interval(Duration::from_nanos(1))
        .build_shared()
        .is_ok());
}
