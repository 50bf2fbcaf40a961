//! Versions: their order, across updates, removal, expiry and eviction.

use std::sync::Arc;

use slabcache::{Cache, ManualClock, Version};

use crate::common::{
    hang_limited, miri_or, pattern_value, small_builder, small_cache, SMALL_MAX_BYTES,
    SMALL_MAX_VALUE,
};
use crate::{assert_absent, assert_holds, iter_has, key, SEC};

#[test]
fn version_constructor_and_order() {
    assert_eq!(Version::new(0), None);
    let one = Version::new(1).unwrap();
    let big = Version::new(u64::MAX).unwrap();
    assert_eq!(one.get(), 1);
    assert_eq!(big.get(), u64::MAX);
    assert!(one < big);
    assert_eq!(Version::new(42), Version::new(42));
}

#[test]
fn versions_increase_across_update_remove_and_reinsert() {
    let (cache, _clock) = small_cache();
    let mut last = cache.insert(b"k", b"0").unwrap();
    let mut step = |name: &str, v: Version| {
        assert!(
            v > last,
            "{name}: version {} not above {}",
            v.get(),
            last.get()
        );
        last = v;
    };
    step("update", cache.insert(b"k", b"1").unwrap());
    step("replace", cache.replace(b"k", b"2").unwrap());
    let cur = cache.get_versioned(b"k").unwrap().1;
    step("cas", cache.compare_and_swap(b"k", cur, b"3").unwrap());
    assert!(cache.remove(b"k"));
    step("reinsert", cache.insert(b"k", b"4").unwrap());
    assert!(cache.remove(b"k"));
    step(
        "insert_if_absent",
        cache.insert_if_absent(b"k", b"5").unwrap(),
    );
    let cur = cache.get_versioned(b"k").unwrap().1;
    cache.remove_if_version(b"k", cur).unwrap();
    step(
        "insert_with_ttl",
        cache.insert_with_ttl(b"k", b"6", Some(SEC)).unwrap(),
    );
    cache.clear();
    step("after clear", cache.insert(b"k", b"7").unwrap());
    assert_eq!(cache.get_versioned(b"k").unwrap(), (b"7".to_vec(), last));
    // Versions are never 0 (guaranteed by the type) and a write to another key does not
    // disturb this one's order.
    let other = cache.insert(b"other", b"x").unwrap();
    assert_ne!(other, last);
}

#[test]
fn versions_increase_across_expiry() {
    let (cache, clock) = small_cache();
    let v1 = cache.insert_with_ttl(b"k", b"a", Some(SEC)).unwrap();
    clock.advance(SEC);
    assert_absent(&cache, b"k");
    let v2 = cache.insert_with_ttl(b"k", b"b", Some(SEC)).unwrap();
    assert!(v2 > v1);
    clock.advance(2 * SEC);
    let v3 = cache.insert_if_absent(b"k", b"c").unwrap();
    assert!(v3 > v2);
    assert_holds(&cache, b"k", b"c", v3);
}

/// Checks, once `victim` (first written at `before`) has been evicted from `cache`, that
/// eviction was counted and that writing the key again gives a higher version.
fn check_reinsert_after_eviction(cache: &Cache, before: Version) {
    assert!(cache.stats().evictions > 0);
    let after = cache.insert(b"victim", b"back").unwrap();
    assert!(
        after > before,
        "reinsert after eviction got {} <= {}",
        after.get(),
        before.get()
    );
}

hang_limited! {
    fn versions_increase_across_eviction() {
        // Eviction forced by the entry bound (of 8 under Miri, where an insert at the bound takes
        // a fifth of a second: the victim goes within about 90 inserts there, not 370).
        let clock = Arc::new(ManualClock::new());
        let max_entries = miri_or(8, 32);
        let cache = small_builder(&clock)
            .max_entries(max_entries as u64)
            .build()
            .unwrap();
        let v1 = cache
            .insert(b"victim", &pattern_value(b"victim", 100))
            .unwrap();
        let mut evicted = false;
        for i in 0..max_entries * 64 {
            let k = key(i);
            cache.insert(&k, &pattern_value(&k, 100)).unwrap();
            assert!(cache.len() <= max_entries);
            if i % 8 == 7 && !iter_has(&cache, b"victim") {
                evicted = true;
                break;
            }
        }
        assert!(
            evicted,
            "an untouched entry survived {} inserts into a {max_entries}-entry cache",
            max_entries * 64
        );
        check_reinsert_after_eviction(&cache, v1);

        // Eviction forced by memory: three budgets' worth of same-size values. Miri copies values
        // in at about 8 KB a second, so there: one page of 128 KiB and 12 values of 16 KiB, one
        // and a half budgets (the page holds 7; the first eviction already takes the victim).
        let (budget, len, writes) = if cfg!(miri) {
            (128 << 10, 16 << 10, 12)
        } else {
            (SMALL_MAX_BYTES, 1000, 3 * SMALL_MAX_BYTES as usize / 1000)
        };
        let cache = small_builder(&clock)
            .max_bytes(budget)
            .max_value_bytes(SMALL_MAX_VALUE.max(len))
            .build()
            .unwrap();
        let v1 = cache
            .insert(b"victim", &pattern_value(b"victim", len))
            .unwrap();
        for i in 0..writes {
            let k = key(i);
            cache.insert(&k, &pattern_value(&k, len)).unwrap();
        }
        assert!(
            !cache.contains(b"victim"),
            "never-read entry survived {writes} writes of {len} bytes into a {budget}-byte cache"
        );
        check_reinsert_after_eviction(&cache, v1);
    }
}
