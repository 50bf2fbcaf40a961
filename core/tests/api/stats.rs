//! Stats: the counters, entries and payload, evictions and expirations.

use slabcache::{Error, Stats};

use crate::common::{
    hang_limited, pattern_value, small_cache, Rng, SMALL_MAX_BYTES, SMALL_MAX_VALUE,
};
use crate::{assert_holds, key, SEC};

/// The counters of `s` as a tuple, for compact comparisons:
/// (hits, misses, inserts, updates, removals, cas_failures).
fn ops(s: &Stats) -> (u64, u64, u64, u64, u64, u64) {
    (
        s.hits,
        s.misses,
        s.inserts,
        s.updates,
        s.removals,
        s.cas_failures,
    )
}

#[test]
fn fresh_cache_stats() {
    let (cache, _clock) = small_cache();
    let s = cache.stats();
    assert_eq!(ops(&s), (0, 0, 0, 0, 0, 0));
    assert_eq!(
        (s.evictions, s.expirations, s.entries, s.payload_bytes),
        (0, 0, 0, 0)
    );
    assert_eq!(s.max_bytes, SMALL_MAX_BYTES);
    assert!(s.arena_bytes_used <= s.max_bytes);
    assert!(
        s.fixed_overhead_bytes > 0,
        "the index and tables take some memory"
    );
    assert_eq!(s.hit_ratio(), 0.0);
}

#[test]
fn stats_counters_follow_operations() {
    let (cache, clock) = small_cache();
    // (hits, misses, inserts, updates, removals, cas_failures)
    let mut e = (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let check = |e: (u64, u64, u64, u64, u64, u64), what: &str| {
        assert_eq!(
            ops(&cache.stats()),
            e,
            "after {what}: (hits, misses, inserts, updates, removals, cas_failures)"
        );
    };

    let va1 = cache.insert(b"a", b"1").unwrap();
    e.2 += 1;
    check(e, "insert new");
    let va2 = cache.insert(b"a", b"2").unwrap();
    e.3 += 1;
    check(e, "insert existing");
    cache.insert_if_absent(b"b", b"1").unwrap();
    e.2 += 1;
    check(e, "insert_if_absent new");
    assert_eq!(cache.insert_if_absent(b"b", b"2"), Err(Error::Exists));
    check(e, "insert_if_absent existing");
    let va3 = cache.replace(b"a", b"3").unwrap();
    e.3 += 1;
    check(e, "replace");
    assert_eq!(cache.replace(b"zz", b"3"), Err(Error::NotFound));
    check(e, "replace missing");
    let va4 = cache.compare_and_swap(b"a", va3, b"4").unwrap();
    e.3 += 1;
    check(e, "cas ok");
    assert_eq!(
        cache.compare_and_swap(b"a", va2, b"5"),
        Err(Error::VersionMismatch { current: va4 })
    );
    e.5 += 1;
    check(e, "cas stale");
    assert_eq!(
        cache.compare_and_swap(b"zz", va1, b"5"),
        Err(Error::NotFound)
    );
    check(e, "cas missing");
    cache.insert_with_ttl(b"c", b"1", None).unwrap();
    e.2 += 1;
    check(e, "insert_with_ttl new");

    assert!(cache.get(b"a").is_some());
    e.0 += 1;
    check(e, "get hit");
    assert!(cache.get(b"zz").is_none());
    e.1 += 1;
    check(e, "get miss");
    assert!(cache.get_versioned(b"b").is_some());
    e.0 += 1;
    check(e, "get_versioned hit");
    assert!(cache.get_versioned(b"zz").is_none());
    e.1 += 1;
    check(e, "get_versioned miss");
    let mut buf = Vec::new();
    assert!(cache.get_into(b"c", &mut buf).is_some());
    e.0 += 1;
    check(e, "get_into hit");
    assert!(cache.get_into(b"zz", &mut buf).is_none());
    e.1 += 1;
    check(e, "get_into miss");

    assert_eq!(
        cache.remove_if_version(b"a", va3),
        Err(Error::VersionMismatch { current: va4 })
    );
    e.5 += 1;
    check(e, "remove_if_version stale");
    assert_eq!(cache.remove_if_version(b"zz", va3), Err(Error::NotFound));
    check(e, "remove_if_version missing");
    cache.remove_if_version(b"a", va4).unwrap();
    e.4 += 1;
    check(e, "remove_if_version ok");
    assert!(cache.remove(b"b"));
    e.4 += 1;
    check(e, "remove");
    assert!(!cache.remove(b"b"));
    check(e, "remove missing");

    for i in 0..5 {
        cache.insert(&key(i), b"x").unwrap();
    }
    e.2 += 5;
    check(e, "5 inserts");
    assert_eq!(cache.len(), 6);
    cache.clear();
    e.4 += 6;
    check(e, "clear of 6 entries");

    // A read of an expired entry is a miss.
    cache.insert_with_ttl(b"t", b"1", Some(SEC)).unwrap();
    e.2 += 1;
    check(e, "insert with ttl");
    assert!(cache.get(b"t").is_some());
    e.0 += 1;
    check(e, "get before expiry");
    clock.advance(SEC);
    assert!(cache.get(b"t").is_none());
    e.1 += 1;
    check(e, "get after expiry");

    let s = cache.stats();
    assert_eq!((s.hits, s.misses), (4, 4));
    assert!((s.hit_ratio() - 0.5).abs() < 1e-12);
    assert_eq!(s.evictions, 0);
}

#[test]
fn stats_entries_and_payload_track_resident_data() {
    let (cache, _clock) = small_cache();
    let check = |entries: u64, payload: u64| {
        let s = cache.stats();
        assert_eq!(
            (s.entries, s.payload_bytes),
            (entries, payload),
            "(entries, payload_bytes)"
        );
        assert_eq!(cache.len() as u64, entries);
        assert!(s.arena_bytes_used <= s.max_bytes);
        assert!(
            s.payload_bytes <= s.arena_bytes_used,
            "payload lives in the arena"
        );
    };
    check(0, 0);
    cache.insert(b"abc", &[1; 10]).unwrap();
    check(1, 13);
    cache.insert(b"abc", &[2; 100]).unwrap();
    check(1, 103);
    let long = SMALL_MAX_VALUE.min(5000);
    cache.insert(b"de", &vec![3; long]).unwrap();
    check(2, 105 + long as u64);
    cache.replace(b"de", b"").unwrap();
    check(2, 105);
    cache.insert(b"f", &[4; SMALL_MAX_VALUE]).unwrap();
    check(3, 105 + 1 + SMALL_MAX_VALUE as u64);
    assert!(cache.remove(b"abc"));
    check(2, 2 + 1 + SMALL_MAX_VALUE as u64);
    cache.clear();
    check(0, 0);
}

hang_limited! {
    #[cfg_attr(
        miri,
        ignore = "writes 3x the budget in sizes that move pages between classes: many minutes under Miri"
    )]
    fn stats_count_evictions_after_overfilling() {
        let (cache, _clock) = small_cache();
        let mut rng = Rng::new(1);
        let mut written = 0u64;
        let mut i = 0;
        while written < 3 * SMALL_MAX_BYTES {
            let k = key(i);
            let len = rng.range(1, 8192);
            cache.insert(&k, &pattern_value(&k, len)).unwrap();
            written += (k.len() + len) as u64;
            i += 1;
            let s = cache.stats();
            assert!(s.arena_bytes_used <= SMALL_MAX_BYTES);
            assert!(s.payload_bytes <= s.arena_bytes_used);
        }
        let s = cache.stats();
        assert!(
            s.evictions > 0,
            "3x the budget written but no eviction counted"
        );
        assert_eq!(s.inserts, i as u64);
        assert_eq!(
            s.entries,
            s.inserts - s.evictions,
            "entries = inserts - evictions here"
        );
        assert_eq!(s.entries, cache.len() as u64);
        assert_eq!(s.removals, 0, "evictions are not removals");
    }
}

hang_limited! {
    /// An update whose value stays in the entry's size class rewrites the entry's chunk, so it
    /// needs no free chunk: in a full arena it must not evict another entry to make room.
    #[cfg_attr(
        miri,
        ignore = "fills the cache, then reads every entry back 12 times: many minutes under Miri"
    )]
    fn updates_of_a_full_cache_evict_nothing() {
        let (cache, _clock) = small_cache();
        let value_len = 100;
        let mut i = 0;
        while cache.stats().evictions == 0 {
            let k = key(i);
            cache.insert(&k, &pattern_value(&k, value_len)).unwrap();
            i += 1;
        }
        let resident: Vec<Vec<u8>> = (0..i).map(key).filter(|k| cache.contains(k)).collect();
        let before = cache.stats();
        for round in 1..=3u8 {
            for k in &resident {
                let mut value = pattern_value(k, value_len - usize::from(round));
                value[0] = round;
                let version = cache.insert(k, &value).unwrap();
                assert_holds(&cache, k, &value, version);
            }
        }
        let after = cache.stats();
        assert_eq!(
            after.evictions, before.evictions,
            "an update evicted an entry"
        );
        assert_eq!(after.updates - before.updates, 3 * resident.len() as u64);
        assert_eq!(after.entries, before.entries);
        assert_eq!(
            after.payload_bytes,
            before.payload_bytes - 3 * resident.len() as u64,
            "each round shortened every value by one byte"
        );
        assert!(resident.iter().all(|k| cache.contains(k)));
    }
}

hang_limited! {
    #[cfg_attr(
        miri,
        ignore = "writes 2,000 entries then 3x the budget: many minutes under Miri, ~20 ms an insert"
    )]
    fn stats_count_expirations_reclaimed_under_pressure() {
        let (cache, clock) = small_cache();
        let ttl = Some(SEC);
        let mut old = Vec::new();
        for i in 0..2000 {
            let k = format!("ttl:{i}").into_bytes();
            old.push((
                cache
                    .insert_with_ttl(&k, &pattern_value(&k, 1000), ttl)
                    .unwrap(),
                k,
            ));
        }
        clock.advance(2 * SEC);
        // Fill three budgets' worth of same-size values: the expired entries' memory must be
        // reused.
        for i in 0..3 * SMALL_MAX_BYTES as usize / 1000 {
            let k = key(i);
            cache.insert(&k, &pattern_value(&k, 1000)).unwrap();
        }
        let s = cache.stats();
        assert!(
            s.expirations > 0,
            "expired entries were reclaimed but none counted: {s:?}"
        );
        assert!(s.expirations <= 2000);
        assert!(s.arena_bytes_used <= SMALL_MAX_BYTES);
        for (v, k) in &old {
            assert!(!cache.contains(k));
            assert!(cache.insert(k, b"again").unwrap() > *v);
        }
    }
}
