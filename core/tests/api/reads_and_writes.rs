//! Reads and writes: every read path, empty and maximal keys and values, every value length.

use std::sync::Arc;

use slabcache::{Cache, Error, ManualClock, DEFAULT_MAX_VALUE_BYTES, MAX_KEY_LEN};

use crate::common::{
    hang_limited, miri_or, padded_key, pattern_value, small_builder, small_cache, SMALL_MAX_VALUE,
    SMALL_PAGE,
};
use crate::{assert_absent, assert_holds, describe, iter_has, SEC};

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

hang_limited! {
    /// Value lengths at and around every plausible size-class boundary round-trip exactly: every
    /// length up to 2 KiB, then ±8 bytes around a geometric series of ratio 1.25 up to the maximum.
    /// Under Miri, every length up to 16 (each tail length of a word, twice over), then the series
    /// itself.
    fn every_value_length_round_trips() {
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
}
