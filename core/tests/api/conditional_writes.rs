//! Conditional writes and removal: `insert_if_absent`, `replace`, `compare_and_swap`,
//! `remove_if_version` and `remove`, and expired entries as absent.

use std::time::Duration;

use slabcache::{Error, Version};

use crate::common::small_cache;
use crate::{assert_absent, assert_holds, NS};

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
