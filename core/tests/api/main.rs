//! The public API, call by call: results, errors, TTL rules, versions, stats, iteration and
//! configuration checks. Single-threaded; time moves only through a `ManualClock`.

#[path = "../common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use slabcache::{Cache, Error, ManualClock, Stats, Version, DEFAULT_MAX_VALUE_BYTES, MAX_KEY_LEN};

use common::{
    miri_or, padded_key, pattern_value, small_builder, small_cache, within, Rng, HANG_LIMIT,
    SMALL_MAX_BYTES, SMALL_MAX_VALUE, SMALL_PAGE,
};

// `Cache` must be shareable between threads; this fails to compile otherwise.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Cache>();
    send_sync::<Error>();
    send_sync::<Version>();
};

const SEC: Duration = Duration::from_secs(1);
const NS: Duration = Duration::from_nanos(1);

fn key(i: usize) -> Vec<u8> {
    format!("key:{i}").into_bytes()
}

/// Asserts that every read path sees `k` as absent.
#[track_caller]
fn assert_absent(cache: &Cache, k: &[u8]) {
    assert_eq!(cache.get(k), None, "get should miss");
    assert!(!cache.contains(k), "contains should be false");
    assert_eq!(cache.get_versioned(k), None, "get_versioned should miss");
    let mut buf = Vec::new();
    assert_eq!(cache.get_into(k, &mut buf), None, "get_into should miss");
}

/// A short description of a read result, for failure messages (values can be large).
fn describe(got: Option<&[u8]>) -> String {
    match got {
        None => "absent".into(),
        Some(v) => format!("{} bytes starting {:?}", v.len(), &v[..v.len().min(8)]),
    }
}

/// Asserts that every read path sees `k` holding `value` at `version`.
#[track_caller]
fn assert_holds(cache: &Cache, k: &[u8], value: &[u8], version: Version) {
    let what = || format!("key of {} bytes, value of {} bytes", k.len(), value.len());
    let got = cache.get(k);
    assert!(
        got.as_deref() == Some(value),
        "get: {} for {}",
        describe(got.as_deref()),
        what()
    );
    assert!(cache.contains(k), "contains: false for {}", what());
    match cache.get_versioned(k) {
        Some((got, v)) => {
            assert!(
                got == value,
                "get_versioned: {} for {}",
                describe(Some(&got)),
                what()
            );
            assert_eq!(v, version, "get_versioned version for {}", what());
        }
        None => panic!("get_versioned: absent for {}", what()),
    }
    let mut buf = b"left over".to_vec();
    assert_eq!(
        cache.get_into(k, &mut buf),
        Some(version),
        "get_into version for {}",
        what()
    );
    assert!(
        buf == value,
        "get_into: {} for {}",
        describe(Some(&buf)),
        what()
    );
}

/// Whether `iter()` currently yields `k` (reading through `iter` does not count as an access).
fn iter_has(cache: &Cache, k: &[u8]) -> bool {
    cache.iter().any(|(ik, _, _)| ik == k)
}

// ---------------------------------------------------------------------------------------------
// Reads and writes
// ---------------------------------------------------------------------------------------------

#[test]
fn insert_then_read_through_every_read_path() {
    let (cache, _clock) = small_cache();
    assert!(cache.is_empty());
    assert_eq!(cache.len(), 0);
    assert_absent(&cache, b"alpha");

    let v1 = cache.insert(b"alpha", b"one").unwrap();
    assert_holds(&cache, b"alpha", b"one", v1);
    assert_eq!(cache.len(), 1);
    assert!(!cache.is_empty());

    let v2 = cache.insert(b"beta", b"two").unwrap();
    assert_holds(&cache, b"beta", b"two", v2);
    assert_holds(&cache, b"alpha", b"one", v1);
    assert_eq!(cache.len(), 2);

    // Overwrite: same key, new value, new version, count unchanged.
    let v3 = cache.insert(b"alpha", b"uno, longer than before").unwrap();
    assert!(v3 > v1);
    assert_holds(&cache, b"alpha", b"uno, longer than before", v3);
    assert_eq!(cache.len(), 2);

    // Keys are compared byte for byte: prefixes and case are different keys.
    assert_absent(&cache, b"alph");
    assert_absent(&cache, b"alphaa");
    assert_absent(&cache, b"ALPHA");
}

#[test]
fn get_into_replaces_buffer_content() {
    let (cache, _clock) = small_cache();
    let v = cache.insert(b"k", b"short").unwrap();
    let mut buf = vec![0xAA; 10_000];
    assert_eq!(cache.get_into(b"k", &mut buf), Some(v));
    assert_eq!(buf, b"short");

    let long = pattern_value(b"k", SMALL_MAX_VALUE.min(5_000));
    let v2 = cache.insert(b"k", &long).unwrap();
    let mut buf = b"xy".to_vec();
    assert_eq!(cache.get_into(b"k", &mut buf), Some(v2));
    assert!(buf == long, "get_into: {}", describe(Some(&buf)));

    let v3 = cache.insert(b"k", b"").unwrap();
    assert_eq!(cache.get_into(b"k", &mut buf), Some(v3));
    assert!(
        buf.is_empty(),
        "get_into must clear the buffer before copying"
    );
}

#[test]
fn zero_length_values_are_stored() {
    let (cache, _clock) = small_cache();
    let v = cache.insert(b"empty", b"").unwrap();
    assert_holds(&cache, b"empty", b"", v);
    assert_eq!(cache.len(), 1);

    // Empty to non-empty and back.
    let v2 = cache.replace(b"empty", b"full").unwrap();
    assert_holds(&cache, b"empty", b"full", v2);
    let v3 = cache.compare_and_swap(b"empty", v2, b"").unwrap();
    assert_holds(&cache, b"empty", b"", v3);
    let v4 = cache.insert_if_absent(b"other", b"").unwrap();
    assert_holds(&cache, b"other", b"", v4);
    let mut seen: Vec<_> = cache.iter().collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (b"empty".to_vec(), vec![], v3),
            (b"other".to_vec(), vec![], v4)
        ]
    );
    assert_eq!(
        cache.stats().payload_bytes,
        (b"empty".len() + b"other".len()) as u64
    );
}

#[test]
fn empty_key_is_rejected_by_every_write() {
    let (cache, _clock) = small_cache();
    let some = cache.insert(b"k", b"v").unwrap();
    assert_eq!(cache.insert(b"", b"v"), Err(Error::EmptyKey));
    assert_eq!(
        cache.insert_with_ttl(b"", b"v", Some(SEC)),
        Err(Error::EmptyKey)
    );
    assert_eq!(cache.insert_with_ttl(b"", b"v", None), Err(Error::EmptyKey));
    assert_eq!(cache.insert_if_absent(b"", b"v"), Err(Error::EmptyKey));
    assert_eq!(cache.replace(b"", b"v"), Err(Error::EmptyKey));
    assert_eq!(
        cache.compare_and_swap(b"", some, b"v"),
        Err(Error::EmptyKey)
    );
    assert!(matches!(
        cache.remove_if_version(b"", some),
        Err(Error::EmptyKey | Error::NotFound)
    ));
    assert_absent(&cache, b"");
    assert!(!cache.remove(b""));
    assert_eq!(cache.len(), 1);
    assert_eq!(cache.stats().inserts, 1);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "hashes and compares a 65,535-byte key a dozen times, ~10 s each under Miri"
)]
fn key_of_max_len_works_and_one_more_is_rejected() {
    let (cache, _clock) = small_cache();
    let max_key = padded_key("max-key:", MAX_KEY_LEN);
    let v = cache.insert(&max_key, b"value").unwrap();
    assert_holds(&cache, &max_key, b"value", v);

    // A max key with a max value: the page is sized for exactly this.
    let big = pattern_value(&max_key, SMALL_MAX_VALUE);
    let v2 = cache.insert(&max_key, &big).unwrap();
    assert!(v2 > v);
    assert_holds(&cache, &max_key, &big, v2);
    assert!(iter_has(&cache, &max_key));

    let too_long = padded_key("too-long:", MAX_KEY_LEN + 1);
    let err = Error::KeyTooLarge {
        len: MAX_KEY_LEN + 1,
        max: MAX_KEY_LEN,
    };
    assert_eq!(cache.insert(&too_long, b"v"), Err(err.clone()));
    assert_eq!(
        cache.insert_with_ttl(&too_long, b"v", None),
        Err(err.clone())
    );
    assert_eq!(cache.insert_if_absent(&too_long, b"v"), Err(err.clone()));
    assert_eq!(cache.replace(&too_long, b"v"), Err(err.clone()));
    assert_eq!(
        cache.compare_and_swap(&too_long, v2, b"v"),
        Err(err.clone())
    );
    assert!(matches!(
        cache.remove_if_version(&too_long, v2),
        Err(Error::KeyTooLarge { .. } | Error::NotFound)
    ));
    assert_absent(&cache, &too_long);
    assert!(!cache.remove(&too_long));
    // An even longer key reports its own length.
    let huge = vec![b'x'; 200_000];
    assert_eq!(
        cache.insert(&huge, b"v"),
        Err(Error::KeyTooLarge {
            len: 200_000,
            max: MAX_KEY_LEN
        })
    );

    assert!(cache.remove(&max_key));
    assert_absent(&cache, &max_key);
    assert!(cache.is_empty());
}

#[test]
fn value_of_max_len_works_and_one_more_is_rejected() {
    let (cache, _clock) = small_cache();
    let max = pattern_value(b"v", SMALL_MAX_VALUE);
    let v = cache.insert(b"v", &max).unwrap();
    assert_holds(&cache, b"v", &max, v);

    let over = vec![7u8; SMALL_MAX_VALUE + 1];
    let err = Error::ValueTooLarge {
        len: SMALL_MAX_VALUE + 1,
        max: SMALL_MAX_VALUE,
    };
    assert_eq!(cache.insert(b"v", &over), Err(err.clone()));
    assert_eq!(cache.insert(b"new", &over), Err(err.clone()));
    assert_eq!(
        cache.insert_with_ttl(b"v", &over, Some(SEC)),
        Err(err.clone())
    );
    assert_eq!(cache.insert_if_absent(b"new", &over), Err(err.clone()));
    assert_eq!(cache.replace(b"v", &over), Err(err.clone()));
    assert_eq!(cache.compare_and_swap(b"v", v, &over), Err(err.clone()));

    // Refused writes change nothing.
    assert_holds(&cache, b"v", &max, v);
    assert_absent(&cache, b"new");
    assert_eq!(cache.len(), 1);
    let s = cache.stats();
    assert_eq!((s.inserts, s.updates, s.cas_failures), (1, 0, 0));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "reads 1 MiB values back: tens of minutes under Miri, which reads ~2 KB a second"
)]
fn default_max_value_bytes_is_one_mib() {
    assert_eq!(DEFAULT_MAX_VALUE_BYTES, 1 << 20);
    assert_eq!(MAX_KEY_LEN, 65_535);
    // Default max_value_bytes: pages of 2 MiB, so 8 MiB is four pages.
    let cache = Cache::builder()
        .max_bytes(8 << 20)
        .clock(Arc::new(ManualClock::new()))
        .build()
        .unwrap();
    let max = pattern_value(b"big", DEFAULT_MAX_VALUE_BYTES);
    let v = cache.insert(b"big", &max).unwrap();
    assert_holds(&cache, b"big", &max, v);
    let max_key = padded_key("k", MAX_KEY_LEN);
    let v2 = cache.insert(&max_key, &max).unwrap();
    assert_holds(&cache, &max_key, &max, v2);
    assert_eq!(
        cache.insert(b"big", &vec![0; DEFAULT_MAX_VALUE_BYTES + 1]),
        Err(Error::ValueTooLarge {
            len: DEFAULT_MAX_VALUE_BYTES + 1,
            max: DEFAULT_MAX_VALUE_BYTES
        })
    );
    assert!(cache.stats().arena_bytes_used <= 8 << 20);
}

/// Value lengths at and around every plausible size-class boundary round-trip exactly: every
/// length up to 2 KiB, then ±8 bytes around a geometric series of ratio 1.25 up to the maximum.
/// Under Miri, every length up to 16 (each tail length of a word, twice over), then the series
/// itself.
#[test]
fn every_value_length_round_trips() {
    within(HANG_LIMIT, every_value_length_round_trips_body);
}

fn every_value_length_round_trips_body() {
    let clock = Arc::new(ManualClock::new());
    let max_bytes = miri_or(64, 256) as u64 * SMALL_PAGE;
    let cache = small_builder(&clock).max_bytes(max_bytes).build().unwrap();

    let (every_up_to, around) = (miri_or(16, 2048), miri_or(0, 8));
    let mut lengths: Vec<usize> = (0..=every_up_to).collect();
    let mut g = every_up_to as f64;
    while g <= SMALL_MAX_VALUE as f64 {
        let c = g.round() as usize;
        lengths.extend(c.saturating_sub(around)..=(c + around).min(SMALL_MAX_VALUE));
        g *= 1.25;
    }
    lengths.extend(SMALL_MAX_VALUE - around..=SMALL_MAX_VALUE);
    lengths.sort_unstable();
    lengths.dedup();

    let mut written = Vec::with_capacity(lengths.len());
    for (i, &len) in lengths.iter().enumerate() {
        let prefix = format!("{i}:");
        let key_len = match i % 97 {
            0 => 4096,
            1 => 700,
            _ => prefix.len() + (i * 7) % 61,
        };
        let k = padded_key(&prefix, key_len);
        let value = pattern_value(&k, len);
        let v = cache.insert(&k, &value).unwrap();
        let got = cache.get_versioned(&k);
        assert!(
            got == Some((value, v)),
            "value of {len} bytes (key of {key_len} bytes) did not round-trip: {}",
            describe(got.as_ref().map(|g| &g.0[..]))
        );
        written.push((k, len, v));
    }
    // Nothing was under memory pressure (about 8 MiB of payload in 64 MiB; under Miri, about
    // 15 KB in 8 MiB, a page for each size class): all still there.
    for (k, len, v) in &written {
        let (got, gv) = cache
            .get_versioned(k)
            .unwrap_or_else(|| panic!("{len}-byte value lost"));
        assert!(got == pattern_value(k, *len), "{len}-byte value corrupted");
        assert_eq!(gv, *v);
    }
    // Very short keys too.
    for (i, k) in [&b"a"[..], b"bc", b"def"].iter().enumerate() {
        let value = pattern_value(k, 100 * i);
        let v = cache.insert(k, &value).unwrap();
        assert_holds(&cache, k, &value, v);
    }
    assert_eq!(cache.len(), written.len() + 3);
    let s = cache.stats();
    let payload: usize = written
        .iter()
        .map(|(k, len, _)| k.len() + len)
        .sum::<usize>()
        + 6
        + 300;
    assert_eq!(s.payload_bytes, payload as u64);
    assert!(s.arena_bytes_used <= max_bytes);
}

// ---------------------------------------------------------------------------------------------
// TTL
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Versions
// ---------------------------------------------------------------------------------------------

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

#[test]
fn versions_increase_across_eviction() {
    within(HANG_LIMIT, versions_increase_across_eviction_body);
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

fn versions_increase_across_eviction_body() {
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

// ---------------------------------------------------------------------------------------------
// Conditional writes and removal
// ---------------------------------------------------------------------------------------------

#[test]
fn insert_if_absent_semantics() {
    let (cache, _clock) = small_cache();
    let v1 = cache.insert_if_absent(b"k", b"first").unwrap();
    assert_holds(&cache, b"k", b"first", v1);
    assert_eq!(cache.insert_if_absent(b"k", b"second"), Err(Error::Exists));
    assert_holds(&cache, b"k", b"first", v1);
    assert!(cache.remove(b"k"));
    let v2 = cache.insert_if_absent(b"k", b"third").unwrap();
    assert!(v2 > v1);
    assert_holds(&cache, b"k", b"third", v2);
    assert_eq!(cache.len(), 1);
}

#[test]
fn replace_semantics() {
    let (cache, _clock) = small_cache();
    assert_eq!(cache.replace(b"k", b"x"), Err(Error::NotFound));
    assert_absent(&cache, b"k");
    let v1 = cache.insert(b"k", b"a").unwrap();
    let v2 = cache.replace(b"k", b"b").unwrap();
    assert!(v2 > v1);
    assert_holds(&cache, b"k", b"b", v2);
    assert!(cache.remove(b"k"));
    assert_eq!(cache.replace(b"k", b"c"), Err(Error::NotFound));
    assert_absent(&cache, b"k");
    assert!(cache.is_empty());
}

#[test]
fn compare_and_swap_semantics() {
    let (cache, _clock) = small_cache();
    let arbitrary = Version::new(1).unwrap();
    assert_eq!(
        cache.compare_and_swap(b"k", arbitrary, b"x"),
        Err(Error::NotFound)
    );
    assert_absent(&cache, b"k");

    let v1 = cache.insert(b"k", b"a").unwrap();
    let v2 = cache.compare_and_swap(b"k", v1, b"b").unwrap();
    assert!(v2 > v1);
    assert_holds(&cache, b"k", b"b", v2);

    // A stale version is refused and reports the current one; nothing changes.
    assert_eq!(
        cache.compare_and_swap(b"k", v1, b"c"),
        Err(Error::VersionMismatch { current: v2 })
    );
    let future = Version::new(v2.get() + 1_000_000).unwrap();
    assert_eq!(
        cache.compare_and_swap(b"k", future, b"c"),
        Err(Error::VersionMismatch { current: v2 })
    );
    assert_holds(&cache, b"k", b"b", v2);

    // A version from before a remove/reinsert does not match the new incarnation.
    assert!(cache.remove(b"k"));
    assert_eq!(cache.compare_and_swap(b"k", v2, b"d"), Err(Error::NotFound));
    let v3 = cache.insert(b"k", b"e").unwrap();
    assert_eq!(
        cache.compare_and_swap(b"k", v2, b"f"),
        Err(Error::VersionMismatch { current: v3 })
    );
    let v4 = cache.compare_and_swap(b"k", v3, b"g").unwrap();
    assert!(v4 > v3);
    assert_holds(&cache, b"k", b"g", v4);
}

#[test]
fn remove_if_version_semantics() {
    let (cache, _clock) = small_cache();
    let arbitrary = Version::new(7).unwrap();
    assert_eq!(
        cache.remove_if_version(b"k", arbitrary),
        Err(Error::NotFound)
    );

    let v1 = cache.insert(b"k", b"a").unwrap();
    let v2 = cache.insert(b"k", b"b").unwrap();
    assert_eq!(
        cache.remove_if_version(b"k", v1),
        Err(Error::VersionMismatch { current: v2 })
    );
    assert_holds(&cache, b"k", b"b", v2);
    assert_eq!(cache.remove_if_version(b"k", v2), Ok(()));
    assert_absent(&cache, b"k");
    assert_eq!(cache.remove_if_version(b"k", v2), Err(Error::NotFound));
    assert!(cache.is_empty());
}

#[test]
fn remove_semantics() {
    let (cache, _clock) = small_cache();
    assert!(!cache.remove(b"k"));
    cache.insert(b"k", b"v").unwrap();
    cache.insert(b"j", b"w").unwrap();
    assert!(cache.remove(b"k"));
    assert!(!cache.remove(b"k"));
    assert_absent(&cache, b"k");
    assert!(cache.contains(b"j"));
    assert_eq!(cache.len(), 1);
}

#[test]
fn conditional_writes_treat_expired_entries_as_absent() {
    let (cache, clock) = small_cache();
    let ttl = Some(Duration::from_secs(5));
    let va = cache.insert_with_ttl(b"a", b"1", ttl).unwrap();
    let vb = cache.insert_with_ttl(b"b", b"1", ttl).unwrap();
    let vc = cache.insert_with_ttl(b"c", b"1", ttl).unwrap();
    let vd = cache.insert_with_ttl(b"d", b"1", ttl).unwrap();

    // Just before the deadline they are all present.
    clock.set(Duration::from_secs(5) - NS);
    assert_eq!(cache.insert_if_absent(b"a", b"x"), Err(Error::Exists));
    assert_holds(&cache, b"a", b"1", va);

    // At the deadline, expired counts as absent for every conditional write.
    clock.set(Duration::from_secs(5));
    let va2 = cache.insert_if_absent(b"a", b"2").unwrap();
    assert!(va2 > va);
    assert_holds(&cache, b"a", b"2", va2);
    assert_eq!(cache.replace(b"b", b"2"), Err(Error::NotFound));
    assert_absent(&cache, b"b");
    assert_eq!(cache.compare_and_swap(b"c", vc, b"2"), Err(Error::NotFound));
    assert_absent(&cache, b"c");
    assert_eq!(cache.remove_if_version(b"d", vd), Err(Error::NotFound));
    assert_absent(&cache, b"d");
    assert_eq!(
        cache.stats().cas_failures,
        0,
        "NotFound is not a version mismatch"
    );

    // The expired keys can be written afresh with higher versions.
    assert!(cache.insert(b"b", b"3").unwrap() > vb);
    assert!(cache.insert(b"c", b"3").unwrap() > vc);
    assert!(cache.insert(b"d", b"3").unwrap() > vd);
}

// ---------------------------------------------------------------------------------------------
// Stats
// ---------------------------------------------------------------------------------------------

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

#[test]
#[cfg_attr(
    miri,
    ignore = "writes 3x the budget in sizes that move pages between classes: many minutes under Miri"
)]
fn stats_count_evictions_after_overfilling() {
    within(HANG_LIMIT, stats_count_evictions_after_overfilling_body);
}

fn stats_count_evictions_after_overfilling_body() {
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

#[test]
#[cfg_attr(
    miri,
    ignore = "fills the cache, then reads every entry back 12 times: many minutes under Miri"
)]
fn updates_of_a_full_cache_evict_nothing() {
    within(HANG_LIMIT, updates_of_a_full_cache_evict_nothing_body);
}

/// An update whose value stays in the entry's size class rewrites the entry's chunk, so it
/// needs no free chunk: in a full arena it must not evict another entry to make room.
fn updates_of_a_full_cache_evict_nothing_body() {
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

#[test]
#[cfg_attr(
    miri,
    ignore = "writes 2,000 entries then 3x the budget: many minutes under Miri, ~20 ms an insert"
)]
fn stats_count_expirations_reclaimed_under_pressure() {
    within(
        HANG_LIMIT,
        stats_count_expirations_reclaimed_under_pressure_body,
    );
}

fn stats_count_expirations_reclaimed_under_pressure_body() {
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
    // Fill three budgets' worth of same-size values: the expired entries' memory must be reused.
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

// ---------------------------------------------------------------------------------------------
// Iteration, clear, len, bounds
// ---------------------------------------------------------------------------------------------

#[test]
fn iter_yields_each_live_entry_once() {
    let (cache, clock) = small_cache();
    // Under Miri fewer and shorter values: 8 size classes, one for each of its 8 pages.
    let (n, longest) = (miri_or(40, 400), miri_or(100, 3000));
    let mut model: HashMap<Vec<u8>, (Vec<u8>, Version)> = HashMap::new();
    for i in 0..n {
        let k = key(i);
        let val = pattern_value(&k, i * 13 % longest);
        let v = cache.insert(&k, &val).unwrap();
        model.insert(k, (val, v));
    }
    for i in (0..n).step_by(7) {
        assert!(cache.remove(&key(i)));
        model.remove(&key(i));
    }
    for i in (1..n).step_by(5) {
        let k = key(i);
        let val = pattern_value(&k, i % 50);
        if let Ok(v) = cache.replace(&k, &val) {
            model.insert(k, (val, v));
        }
    }
    // Entries with a TTL that passes before iterating are not yielded.
    for i in 0..miri_or(10, 50) {
        cache
            .insert_with_ttl(format!("short:{i}").as_bytes(), b"s", Some(SEC))
            .unwrap();
    }
    clock.advance(SEC);

    let mut seen: HashMap<Vec<u8>, (Vec<u8>, Version)> = HashMap::new();
    for (k, val, v) in cache.iter() {
        assert!(!k.starts_with(b"short:"), "expired entry yielded");
        let prev = seen.insert(k.clone(), (val, v));
        assert!(
            prev.is_none(),
            "key {:?} yielded twice",
            String::from_utf8_lossy(&k)
        );
    }
    assert_eq!(seen.len(), model.len());
    for (k, (val, v)) in &model {
        let name = String::from_utf8_lossy(k);
        let (got, gv) = seen
            .get(k)
            .unwrap_or_else(|| panic!("live key {name} not yielded"));
        assert!(got == val, "key {name}: yielded {}", describe(Some(got)));
        assert_eq!(gv, v, "key {name}: yielded version");
    }

    cache.clear();
    assert_eq!(cache.iter().count(), 0);
}

#[test]
fn clear_empties_the_cache() {
    let (cache, _clock) = small_cache();
    // Under Miri fewer and shorter values: 8 size classes, one for each of its 8 pages.
    let (n, longest) = (miri_or(40, 300), miri_or(100, 9000));
    let mut versions = Vec::new();
    for i in 0..n {
        let k = key(i);
        versions.push(
            cache
                .insert(&k, &pattern_value(&k, i * 31 % longest))
                .unwrap(),
        );
    }
    assert_eq!(cache.len(), n);
    cache.clear();
    assert_eq!(cache.len(), 0);
    assert!(cache.is_empty());
    for i in 0..n {
        assert_absent(&cache, &key(i));
    }
    let s = cache.stats();
    assert_eq!((s.entries, s.payload_bytes, s.removals), (0, 0, n as u64));
    assert_eq!(cache.iter().count(), 0);
    cache.clear();
    assert_eq!(
        cache.stats().removals,
        n as u64,
        "clearing an empty cache removes nothing"
    );

    // Usable afterwards, with versions still above the old ones.
    for (i, old) in versions.iter().enumerate() {
        let k = key(i);
        let v = cache.insert(&k, b"new").unwrap();
        assert!(v > *old);
    }
    assert_eq!(cache.len(), n);
}

#[test]
fn len_and_contains_follow_writes() {
    let (cache, _clock) = small_cache();
    let n = miri_or(40, 100);
    for i in 0..n {
        cache.insert(&key(i), b"v").unwrap();
        assert_eq!(cache.len(), i + 1);
        assert!(cache.contains(&key(i)));
    }
    for i in 0..n {
        cache.insert(&key(i), b"w").unwrap();
    }
    assert_eq!(cache.len(), n);
    for i in (0..n).step_by(2) {
        assert!(cache.remove(&key(i)));
    }
    assert_eq!(cache.len(), n / 2);
    for i in 0..n {
        assert_eq!(cache.contains(&key(i)), i % 2 == 1);
    }
}

#[test]
fn max_entries_bounds_len_after_every_write() {
    within(HANG_LIMIT, || {
        // Under Miri fewer writes, of values in fewer size classes than the cache has pages
        // (moving a page costs seconds there), against a lower bound.
        let (max_entries, writes, longest) =
            (miri_or(20, 100), miri_or(60, 2000), miri_or(100, 20_000));
        let clock = Arc::new(ManualClock::new());
        let cache = small_builder(&clock)
            .max_entries(max_entries as u64)
            .build()
            .unwrap();
        let mut rng = Rng::new(2);
        for i in 0..writes {
            let k = key(rng.below(3000) as usize);
            let val = pattern_value(&k, rng.log_uniform(1, longest));
            if i % 4 == 0 {
                let _ = cache.insert_if_absent(&k, &val);
            } else {
                let v = cache.insert(&k, &val).unwrap();
                assert!(
                    cache.get_versioned(&k) == Some((val, v)),
                    "fresh write {i} lost"
                );
            }
            assert!(
                cache.len() <= max_entries,
                "len {} above max_entries after write {i}",
                cache.len()
            );
            assert!(cache.stats().entries <= max_entries as u64);
        }
        assert!(cache.stats().evictions > 0);
    });
}

#[test]
fn max_entries_one_keeps_only_the_latest_entry() {
    within(HANG_LIMIT, || {
        let clock = Arc::new(ManualClock::new());
        let cache = small_builder(&clock).max_entries(1).build().unwrap();
        for i in 0..50 {
            // Reading the entry (a hit marks it referenced) must not stop its eviction.
            let v = cache.insert(&key(i), b"only").unwrap();
            assert_eq!(cache.len(), 1);
            assert_holds(&cache, &key(i), b"only", v);
        }
        assert_eq!(cache.stats().evictions, 49);
    });
}

#[test]
#[cfg_attr(
    miri,
    ignore = "hashes and compares a 65,535-byte key six times, ~10 s each under Miri"
)]
fn one_page_cache_holds_a_maximal_entry() {
    within(HANG_LIMIT, one_page_cache_holds_a_maximal_entry_body);
}

fn one_page_cache_holds_a_maximal_entry_body() {
    let clock = Arc::new(ManualClock::new());
    let cache = small_builder(&clock).max_bytes(SMALL_PAGE).build().unwrap();
    // First some small entries, so the only page may belong to a small size class.
    for i in 0..100 {
        cache.insert(&key(i), b"small").unwrap();
    }
    let max_key = padded_key("max:", MAX_KEY_LEN);
    let max_val = pattern_value(&max_key, SMALL_MAX_VALUE);
    let v = cache.insert(&max_key, &max_val).unwrap();
    assert_holds(&cache, &max_key, &max_val, v);
    assert!(cache.stats().arena_bytes_used <= SMALL_PAGE);
    // And back to small entries.
    let v2 = cache.insert(b"tiny", b"t").unwrap();
    assert_holds(&cache, b"tiny", b"t", v2);
    assert!(cache.stats().arena_bytes_used <= SMALL_PAGE);
}

// ---------------------------------------------------------------------------------------------
// Configuration and errors
// ---------------------------------------------------------------------------------------------

fn assert_invalid(result: Result<Cache, Error>, what: &str) {
    match result {
        Err(Error::InvalidConfig(why)) => assert!(!why.is_empty(), "{what}: empty message"),
        Err(other) => panic!("{what}: expected InvalidConfig, got {other:?}"),
        Ok(_) => panic!("{what}: expected InvalidConfig, built a cache"),
    }
}

#[test]
fn a_cache_reports_its_default_ttl_and_value_limit() {
    let clock = Arc::new(ManualClock::new());
    let plain = small_builder(&clock).build().unwrap();
    assert_eq!(plain.default_ttl(), None);
    assert_eq!(plain.max_value_bytes(), SMALL_MAX_VALUE);
    let ttl = Duration::from_secs(90);
    let set = small_builder(&clock)
        .default_ttl(ttl)
        .max_value_bytes(SMALL_MAX_VALUE / 2)
        .build()
        .unwrap();
    assert_eq!(set.default_ttl(), Some(ttl));
    assert_eq!(set.max_value_bytes(), SMALL_MAX_VALUE / 2);
    let defaults = Cache::builder().max_bytes(4 << 20).build().unwrap();
    assert_eq!(defaults.max_value_bytes(), DEFAULT_MAX_VALUE_BYTES);
}

#[test]
fn invalid_configurations_are_refused() {
    const MIB: u64 = 1 << 20;
    assert_invalid(Cache::builder().build(), "missing max_bytes");
    assert_invalid(
        Cache::builder().max_value_bytes(1024).build(),
        "missing max_bytes",
    );
    // Default max_value_bytes (1 MiB): pages of 2 MiB.
    assert_invalid(Cache::builder().max_bytes(0).build(), "max_bytes 0");
    assert_invalid(
        Cache::builder().max_bytes(MIB).build(),
        "max_bytes below a page",
    );
    assert_invalid(
        Cache::builder().max_bytes(2 * MIB - 1).build(),
        "max_bytes one short of a page",
    );
    assert!(
        Cache::builder().max_bytes(2 * MIB).build().is_ok(),
        "one 2 MiB page"
    );

    let ok = || {
        Cache::builder()
            .max_bytes(SMALL_MAX_BYTES)
            .max_value_bytes(SMALL_MAX_VALUE)
    };
    assert_invalid(ok().max_entries(0).build(), "max_entries 0");
    assert!(ok().max_entries(1).build().is_ok());
    for j in [
        f64::NAN,
        -0.01,
        1.01,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -1.0,
        2.0,
    ] {
        assert_invalid(ok().ttl_jitter(j).build(), &format!("ttl_jitter {j}"));
    }
    for j in [0.0, 0.5, 1.0] {
        assert!(
            ok().ttl_jitter(j).build().is_ok(),
            "ttl_jitter {j} is valid"
        );
    }
    assert_invalid(ok().default_ttl(Duration::ZERO).build(), "default_ttl 0");
    assert!(ok().default_ttl(NS).build().is_ok());

    // max_value_bytes up to 64 MiB; its page is then 128 MiB.
    let big = 64 * MIB as usize;
    assert_invalid(
        Cache::builder()
            .max_bytes(1 << 30)
            .max_value_bytes(big + 1)
            .build(),
        "max_value_bytes above 64 MiB",
    );
    assert_invalid(
        Cache::builder()
            .max_bytes(128 * MIB - 1)
            .max_value_bytes(big)
            .build(),
        "max_bytes below a 128 MiB page",
    );
    let c = Cache::builder()
        .max_bytes(128 * MIB)
        .max_value_bytes(big)
        .build()
        .unwrap();
    assert_eq!(c.stats().max_bytes, 128 * MIB);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "reads a 65,496-byte value four times with a 65,535-byte key: minutes under Miri"
)]
fn page_size_is_the_next_power_of_two_above_max_entry() {
    // 40-byte header + 65,536-byte padded key + 65,496 value bytes = 131,072: pages of 128 KiB.
    let exact = Cache::builder()
        .max_bytes(128 << 10)
        .max_value_bytes(65_496)
        .build();
    assert!(exact.is_ok(), "{:?}", exact.err());
    let cache = exact.unwrap();
    let max_key = padded_key("k", MAX_KEY_LEN);
    let max_val = pattern_value(&max_key, 65_496);
    let v = cache.insert(&max_key, &max_val).unwrap();
    assert_holds(&cache, &max_key, &max_val, v);
    assert_eq!(
        cache.insert(b"k", &vec![0; 65_497]),
        Err(Error::ValueTooLarge {
            len: 65_497,
            max: 65_496
        })
    );
    // One more byte of value: pages of 256 KiB, so 128 KiB is too small.
    assert_invalid(
        Cache::builder()
            .max_bytes(128 << 10)
            .max_value_bytes(65_497)
            .build(),
        "max_bytes below a 256 KiB page",
    );
    assert!(Cache::builder()
        .max_bytes(256 << 10)
        .max_value_bytes(65_497)
        .build()
        .is_ok());
    // The small test config: 256 KiB pages.
    let clock = Arc::new(ManualClock::new());
    assert_invalid(
        small_builder(&clock).max_bytes(SMALL_PAGE - 1).build(),
        "below one page",
    );
    assert!(small_builder(&clock).max_bytes(SMALL_PAGE).build().is_ok());
}

#[test]
#[cfg_attr(
    miri,
    ignore = "2,000 inserts of every size over 4 pages, moving pages between classes: many minutes under Miri"
)]
fn usable_arena_is_rounded_down_to_whole_pages() {
    within(HANG_LIMIT, usable_arena_is_rounded_down_to_whole_pages_body);
}

fn usable_arena_is_rounded_down_to_whole_pages_body() {
    let clock = Arc::new(ManualClock::new());
    let max_bytes = 4 * SMALL_PAGE + SMALL_PAGE / 2;
    let cache = small_builder(&clock).max_bytes(max_bytes).build().unwrap();
    for i in 0..2000 {
        let k = key(i);
        cache
            .insert(&k, &pattern_value(&k, 1 + i * 37 % SMALL_MAX_VALUE))
            .unwrap();
        let s = cache.stats();
        assert!(
            s.arena_bytes_used <= 4 * SMALL_PAGE,
            "{} > 4 pages",
            s.arena_bytes_used
        );
        assert_eq!(
            s.arena_bytes_used % SMALL_PAGE,
            0,
            "arena use is counted in whole pages"
        );
    }
}

#[test]
fn errors_display_and_are_std_errors() {
    let v = Version::new(9).unwrap();
    let all = [
        Error::EmptyKey,
        Error::KeyTooLarge {
            len: 70_000,
            max: MAX_KEY_LEN,
        },
        Error::ValueTooLarge {
            len: 2 << 20,
            max: 1 << 20,
        },
        Error::Exists,
        Error::NotFound,
        Error::VersionMismatch { current: v },
        Error::InvalidConfig("max_bytes is required".into()),
    ];
    let mut messages = Vec::new();
    for e in &all {
        let msg = e.to_string();
        assert!(!msg.trim().is_empty(), "{e:?} displays as empty");
        let as_std: &dyn std::error::Error = e;
        assert_eq!(as_std.to_string(), msg);
        messages.push(msg);
    }
    messages.sort();
    messages.dedup();
    assert_eq!(messages.len(), all.len(), "every error has its own message");
    assert!(all[1].to_string().contains("70000"));
    assert!(all[5].to_string().contains('9'));
    // A real refused config renders too.
    let Err(err) = Cache::builder().build() else {
        panic!("missing max_bytes is refused");
    };
    assert!(!err.to_string().is_empty());
}

#[test]
fn read_paths_agree_on_random_sizes() {
    // 256 pages (24 under Miri): enough for a page per size class, so nothing needs evicting.
    let clock = Arc::new(ManualClock::new());
    let cache = small_builder(&clock)
        .max_bytes(miri_or(24, 256) as u64 * SMALL_PAGE)
        .build()
        .unwrap();
    let mut rng = Rng::new(3);
    let mut written = Vec::new();
    for i in 0..miri_or(10, 400) {
        let k = key(i);
        let val = pattern_value(&k, rng.log_uniform(1, SMALL_MAX_VALUE));
        let v = cache.insert(&k, &val).unwrap();
        assert!(
            cache.contains(&k),
            "write {i} ({} bytes) not readable right after insert; {:?}",
            val.len(),
            cache.stats()
        );
        assert_holds(&cache, &k, &val, v);
        written.push((k, val, v));
    }
    // About 2.5 MB of payload in 64 MiB (1.5 KB in 3 MiB under Miri): all still there.
    for (k, val, v) in &written {
        assert_holds(&cache, k, val, *v);
    }
}
