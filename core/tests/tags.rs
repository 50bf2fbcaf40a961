//! Tags: `invalidate_tag` ends exactly the entries that carry the tag when it runs, and a
//! tagged write racing it either lands before it (and is ended) or loses.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use slabcache::{Cache, Version};

use common::{hang_limited, miri_or, Rng};

/// When each (key, version) was written: a tick of the test's clock taken after its
/// `insert_tagged` returned.
type Finished = HashMap<(Vec<u8>, Version), u64>;

/// Keys the racing writers write.
const KEYS: u64 = 128;

fn cache() -> Cache {
    Cache::builder().max_bytes(8 << 20).build().expect("config")
}

#[test]
fn invalidation_ends_exactly_the_tagged_entries() {
    let cache = cache();
    cache
        .insert_tagged(b"p1", b"a", None, &[b"product:1", b"page"])
        .unwrap();
    cache
        .insert_tagged(b"p2", b"b", None, &[b"product:2", b"page"])
        .unwrap();
    cache
        .insert_tagged(b"p3", b"c", None, &[b"product:1"])
        .unwrap();
    cache.insert(b"plain", b"d").unwrap();
    cache
        .insert_tagged(b"rewritten", b"e", None, &[b"product:1"])
        .unwrap();
    cache.insert(b"rewritten", b"untagged now").unwrap();

    assert_eq!(cache.invalidate_tag(b"product:1"), 2, "p1 and p3");
    for gone in [&b"p1"[..], b"p3"] {
        assert_eq!(cache.get(gone), None);
    }
    for kept in [&b"p2"[..], b"plain", b"rewritten"] {
        assert!(
            cache.get(kept).is_some(),
            "{}",
            String::from_utf8_lossy(kept)
        );
    }
    assert_eq!(cache.len(), 3, "counted out at once");
    assert_eq!(cache.stats().removals, 2);

    assert_eq!(cache.invalidate_tag(b"product:1"), 0, "nothing left to end");
    assert_eq!(cache.invalidate_tag(b"never used"), 0);
    cache
        .insert_tagged(b"p1", b"again", None, &[b"product:1"])
        .unwrap();
    assert_eq!(
        cache.get(b"p1").as_deref(),
        Some(&b"again"[..]),
        "tagged afterwards: kept"
    );
    assert_eq!(
        cache.invalidate_tag(b"page"),
        1,
        "p2; p1 was ended with its old tags"
    );
    assert_eq!(cache.get(b"p2"), None);
    assert!(cache.get(b"p1").is_some());
}

#[test]
fn duplicate_tags_count_once_and_entries_keep_their_ttl() {
    let clock = Arc::new(slabcache::ManualClock::new());
    let cache = Cache::builder()
        .max_bytes(8 << 20)
        .clock(clock.clone())
        .build()
        .unwrap();
    let ttl = std::time::Duration::from_secs(5);
    cache
        .insert_tagged(b"k", b"v", Some(ttl), &[b"t", b"t"])
        .unwrap();
    clock.advance(ttl);
    assert_eq!(cache.get(b"k"), None, "expired");
    assert_eq!(
        cache.invalidate_tag(b"t"),
        0,
        "an expired entry is not counted"
    );
}

hang_limited! {
    /// Writers tag entries while invalidations run: after each invalidation returns, no entry
    /// whose tagged write had finished before the invalidation began is still readable.
    fn no_entry_tagged_before_an_invalidation_survives_it() {
        let rounds = miri_or(5, 3000);
        let cache = Arc::new(cache());
        let finished: Arc<Mutex<Finished>> = Arc::default();
        let clock = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..2u64)
            .map(|w| {
                let (cache, finished, clock, stop) =
                    (Arc::clone(&cache), Arc::clone(&finished), Arc::clone(&clock), Arc::clone(&stop));
                thread::spawn(move || {
                    let mut rng = Rng::new(w + 1);
                    let mut writes = 0u64;
                    while !stop.load(Ordering::SeqCst) || writes < 100 {
                        let key = format!("k{}", rng.below(KEYS)).into_bytes();
                        let version = cache.insert_tagged(&key, b"v", None, &[b"hot"]).unwrap();
                        let at = clock.fetch_add(1, Ordering::SeqCst);
                        finished.lock().unwrap().insert((key, version), at);
                        writes += 1;
                    }
                })
            })
            .collect();
        for _ in 0..rounds {
            let began = clock.fetch_add(1, Ordering::SeqCst);
            cache.invalidate_tag(b"hot");
            for k in 0..KEYS {
                let key = format!("k{k}").into_bytes();
                let Some((_, version)) = cache.get_versioned(&key) else {
                    continue;
                };
                if let Some(&at) = finished.lock().unwrap().get(&(key.clone(), version)) {
                    assert!(
                        at > began,
                        "{} at version {version:?}, tagged at tick {at}, survived an invalidation begun at tick {began}",
                        String::from_utf8_lossy(&key)
                    );
                }
            }
        }
        stop.store(true, Ordering::SeqCst);
        writers.into_iter().for_each(|w| w.join().unwrap());
        let resident = cache.len() as u64;
        assert_eq!(cache.invalidate_tag(b"hot"), resident, "every entry is tagged");
        assert!(cache.is_empty());
    }
}
