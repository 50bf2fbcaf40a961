//! Configuration and errors: what the builder refuses, page sizing and how errors display;
//! last, that the read paths agree on values of random sizes.

use std::sync::Arc;
use std::time::Duration;

use slabcache::{Cache, Error, ManualClock, Version, DEFAULT_MAX_VALUE_BYTES, MAX_KEY_LEN};

use crate::common::{
    hang_limited, miri_or, padded_key, pattern_value, small_builder, Rng, SMALL_MAX_BYTES,
    SMALL_MAX_VALUE, SMALL_PAGE,
};
use crate::{assert_holds, key, NS};

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
    for shards in [0, 3, 512] {
        assert_invalid(
            Cache::builder()
                .max_bytes(4 << 20)
                .policy_shards(shards)
                .build(),
            &format!("policy_shards {shards}"),
        );
    }
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

hang_limited! {
    #[cfg_attr(
        miri,
        ignore = "2,000 inserts of every size over 4 pages, moving pages between classes: many minutes under Miri"
    )]
    fn usable_arena_is_rounded_down_to_whole_pages() {
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
