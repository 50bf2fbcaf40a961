//! The public API, call by call: results, errors, TTL rules, versions, stats, iteration,
//! hot keys, listeners and configuration checks. Single-threaded (but for the maintenance
//! thread the listener tests start); time moves only through a `ManualClock`.
//!
//! A module for each part of the API; the helpers below serve them all.

#[path = "../common/mod.rs"]
mod common;

mod conditional_writes;
mod config_and_errors;
mod eviction;
mod hot_keys;
mod iteration_and_bounds;
mod listeners;
mod reads_and_writes;
mod stats;
mod ttl;
mod versions;

use std::time::Duration;

use slabcache::{Cache, Error, Event, RemovalCause, Version};

// `Cache` must be shareable between threads; this fails to compile otherwise.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Cache>();
    send_sync::<Error>();
    send_sync::<Version>();
    send_sync::<Event>();
    send_sync::<RemovalCause>();
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
