//! TTL: expiry at the deadline, the default TTL, rewrites, zero TTLs and jitter.

use std::sync::Arc;
use std::time::Duration;

use slabcache::{Cache, Error, ManualClock};

use crate::common::{miri_or, small_builder, small_cache};
use crate::{assert_absent, assert_holds, iter_has, key, NS, SEC};

#[test]
fn ttl_expires_exactly_at_the_deadline() {
    let (cache, clock) = small_cache();
    clock.set(Duration::from_secs(1));
    let d = Duration::from_secs(10);
    let v = cache.insert_with_ttl(b"k", b"v", Some(d)).unwrap();
    let never = cache.insert_with_ttl(b"stay", b"s", None).unwrap();

    clock.set(Duration::from_secs(11) - NS);
    assert_holds(&cache, b"k", b"v", v);
    assert!(iter_has(&cache, b"k"));

    clock.advance(NS);
    assert_absent(&cache, b"k");
    assert!(!iter_has(&cache, b"k"));
    assert_holds(&cache, b"stay", b"s", never);

    clock.advance(Duration::from_secs(3600));
    assert_absent(&cache, b"k");
    assert_holds(&cache, b"stay", b"s", never);
}

#[test]
fn default_ttl_per_entry_ttl_and_no_ttl() {
    let clock = Arc::new(ManualClock::new());
    let cache = small_builder(&clock)
        .default_ttl(Duration::from_secs(5))
        .build()
        .unwrap();
    let vd = cache.insert(b"default", b"d").unwrap();
    let vl = cache
        .insert_with_ttl(b"longer", b"l", Some(Duration::from_secs(20)))
        .unwrap();
    let vs = cache
        .insert_with_ttl(b"shorter", b"s", Some(Duration::from_secs(2)))
        .unwrap();
    let vn = cache.insert_with_ttl(b"never", b"n", None).unwrap();

    clock.set(Duration::from_secs(2) - NS);
    assert_holds(&cache, b"shorter", b"s", vs);
    clock.set(Duration::from_secs(2));
    assert_absent(&cache, b"shorter");

    clock.set(Duration::from_secs(5) - NS);
    assert_holds(&cache, b"default", b"d", vd);
    clock.set(Duration::from_secs(5));
    assert_absent(&cache, b"default");
    assert_holds(&cache, b"longer", b"l", vl);

    clock.set(Duration::from_secs(20) - NS);
    assert_holds(&cache, b"longer", b"l", vl);
    clock.set(Duration::from_secs(20));
    assert_absent(&cache, b"longer");

    // `None` overrides the default TTL: still there a century on.
    clock.set(Duration::from_secs(100 * 365 * 24 * 3600));
    assert_holds(&cache, b"never", b"n", vn);
    let live: Vec<_> = cache.iter().map(|(k, _, _)| k).collect();
    assert_eq!(live, vec![b"never".to_vec()]);
}

#[test]
fn conditional_writes_take_a_ttl_of_their_own() {
    let clock = Arc::new(ManualClock::new());
    let cache = small_builder(&clock)
        .default_ttl(Duration::from_secs(5))
        .build()
        .unwrap();
    let va = cache
        .insert_if_absent_with_ttl(b"added", b"a", Some(Duration::from_secs(2)))
        .unwrap();
    assert_eq!(
        cache.insert_if_absent_with_ttl(b"added", b"b", None),
        Err(Error::Exists)
    );
    cache.insert(b"replaced", b"r0").unwrap();
    let vr = cache.replace_with_ttl(b"replaced", b"r1", None).unwrap();
    assert_eq!(
        cache.replace_with_ttl(b"absent", b"x", None),
        Err(Error::NotFound)
    );
    let v0 = cache.insert(b"swapped", b"s0").unwrap();
    let vs = cache
        .compare_and_swap_with_ttl(b"swapped", v0, b"s1", Some(Duration::from_secs(20)))
        .unwrap();
    assert_eq!(
        cache.compare_and_swap_with_ttl(b"swapped", v0, b"s2", None),
        Err(Error::VersionMismatch { current: vs })
    );

    clock.set(Duration::from_secs(2) - NS);
    assert_holds(&cache, b"added", b"a", va);
    clock.set(Duration::from_secs(2));
    assert_absent(&cache, b"added");
    clock.set(Duration::from_secs(5));
    assert_holds(&cache, b"replaced", b"r1", vr);
    assert_holds(&cache, b"swapped", b"s1", vs);
    clock.set(Duration::from_secs(20) - NS);
    assert_holds(&cache, b"swapped", b"s1", vs);
    clock.set(Duration::from_secs(20));
    assert_absent(&cache, b"swapped");
    clock.set(Duration::from_secs(100 * 365 * 24 * 3600));
    assert_holds(&cache, b"replaced", b"r1", vr);
}

#[test]
fn rewriting_restarts_the_ttl() {
    let (cache, clock) = small_cache();
    let ttl = Some(Duration::from_secs(10));
    cache.insert_with_ttl(b"k", b"v1", ttl).unwrap();
    clock.set(Duration::from_secs(6));
    let v2 = cache.insert_with_ttl(b"k", b"v2", ttl).unwrap();
    clock.set(Duration::from_secs(16) - NS);
    assert_holds(&cache, b"k", b"v2", v2);
    clock.set(Duration::from_secs(16));
    assert_absent(&cache, b"k");

    // Rewriting with `None` makes a TTL entry permanent.
    cache.insert_with_ttl(b"p", b"1", ttl).unwrap();
    let vp = cache.insert_with_ttl(b"p", b"2", None).unwrap();
    clock.advance(Duration::from_secs(100));
    assert_holds(&cache, b"p", b"2", vp);
}

#[test]
fn zero_ttl_entry_is_immediately_expired() {
    let (cache, clock) = small_cache();
    clock.set(Duration::from_secs(3));
    let v1 = cache
        .insert_with_ttl(b"z", b"gone", Some(Duration::ZERO))
        .unwrap();
    assert_absent(&cache, b"z");
    assert!(!iter_has(&cache, b"z"));
    assert_eq!(cache.replace(b"z", b"x"), Err(Error::NotFound));
    let v2 = cache.insert_if_absent(b"z", b"here").unwrap();
    assert!(v2 > v1);
    assert_holds(&cache, b"z", b"here", v2);
}

/// Checks the jitter bounds for `n` keys written at time 0 with an effective base TTL `d` and
/// jitter 0.5: all visible just before `d`, some but not all at `1.25 d`, none at `1.5 d`.
fn check_jitter_spread(cache: &Cache, clock: &ManualClock, keys: &[Vec<u8>], d: Duration) {
    clock.set(d - NS);
    let visible = keys.iter().filter(|k| cache.contains(k)).count();
    assert_eq!(visible, keys.len(), "jitter must never shorten a TTL");

    clock.set(d.mul_f64(1.25));
    let visible = keys.iter().filter(|k| cache.contains(k)).count();
    assert!(
        visible > keys.len() / 5 && visible < keys.len() * 4 / 5,
        "with TTLs uniform in [d, 1.5d] about half should be visible at 1.25d; saw {visible} of {}",
        keys.len()
    );

    clock.set(d.mul_f64(1.5));
    let visible = keys.iter().filter(|k| cache.contains(k)).count();
    assert_eq!(
        visible, 0,
        "jitter must not extend a TTL beyond d * (1 + jitter)"
    );
}

#[test]
fn ttl_jitter_on_per_entry_ttls_stays_in_bounds() {
    let clock = Arc::new(ManualClock::new());
    let cache = small_builder(&clock).ttl_jitter(0.5).build().unwrap();
    let d = Duration::from_secs(100);
    let keys: Vec<_> = (0..miri_or(100, 1000)).map(key).collect();
    for k in &keys {
        cache.insert_with_ttl(k, b"v", Some(d)).unwrap();
    }
    cache.insert_with_ttl(b"forever", b"f", None).unwrap();
    check_jitter_spread(&cache, &clock, &keys, d);
    assert!(
        cache.contains(b"forever"),
        "jitter must not give a TTL to a `None` entry"
    );
}

#[test]
fn ttl_jitter_on_the_default_ttl_stays_in_bounds() {
    let clock = Arc::new(ManualClock::new());
    let d = Duration::from_secs(40);
    let cache = small_builder(&clock)
        .default_ttl(d)
        .ttl_jitter(0.5)
        .build()
        .unwrap();
    let keys: Vec<_> = (0..miri_or(100, 1000)).map(key).collect();
    for k in &keys {
        cache.insert(k, b"v").unwrap();
    }
    check_jitter_spread(&cache, &clock, &keys, d);
}

#[test]
fn zero_jitter_expires_everything_together() {
    let clock = Arc::new(ManualClock::new());
    let cache = small_builder(&clock).ttl_jitter(0.0).build().unwrap();
    let keys: Vec<_> = (0..miri_or(50, 200)).map(key).collect();
    for k in &keys {
        cache.insert_with_ttl(k, b"v", Some(SEC)).unwrap();
    }
    clock.set(SEC - NS);
    assert!(keys.iter().all(|k| cache.contains(k)));
    clock.set(SEC);
    assert!(keys.iter().all(|k| !cache.contains(k)));
}
