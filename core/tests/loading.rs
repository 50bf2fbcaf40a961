//! Read-through with single-flight (`get_or_load` and its async twin): one loader per key
//! however many callers miss it, every caller gets the loader's outcome, failures and panics
//! cache nothing, and writes that land during a load win over it.
//!
//! The tests never rely on timing: a loader that must still be running while something else
//! happens waits for the cache's own counters (`loads`, `load_waits`) to show that it has.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::Duration;

use slabcache::{Cache, Error, LoadError, ManualClock};

use common::{hang_limited, miri_or};

fn cache() -> Arc<Cache> {
    Arc::new(
        Cache::builder()
            .max_bytes(4 << 20)
            .build()
            .expect("a valid config"),
    )
}

/// Blocks until `n` callers are waiting for another caller's load.
fn until_waiting(cache: &Cache, n: u64) {
    while cache.stats().load_waits < n {
        thread::sleep(Duration::from_millis(1));
    }
}

/// Blocks until `cache` has started more than `loads` loaders.
fn until_loading(cache: &Cache, loads: u64) {
    while cache.stats().loads <= loads {
        thread::sleep(Duration::from_millis(1));
    }
}

/// Runs `callers` threads that all call `call` at once; returns their results in order.
fn at_once<T: Send + 'static>(
    callers: usize,
    call: impl Fn(usize) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let start = Arc::new(Barrier::new(callers));
    let call = Arc::new(call);
    let threads: Vec<_> = (0..callers)
        .map(|i| {
            let (start, call) = (Arc::clone(&start), Arc::clone(&call));
            thread::spawn(move || {
                start.wait();
                call(i)
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("caller thread"))
        .collect()
}

hang_limited! {
    /// 64 threads miss one key at once: one loader runs, and all 64 get its value.
    fn callers_missing_one_key_share_one_loader() {
        let callers = miri_or(4, 64);
        let cache = cache();
        let runs = Arc::new(AtomicUsize::new(0));
        let results = at_once(callers, {
            let (cache, runs) = (Arc::clone(&cache), Arc::clone(&runs));
            move |_| {
                cache.get_or_load(b"hot", |key| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    // Every other caller is waiting for this load before it lands.
                    until_waiting(&cache, callers as u64 - 1);
                    Ok::<_, String>(Some([key, b"=loaded"].concat()))
                })
            }
        });
        assert_eq!(runs.load(Ordering::SeqCst), 1, "the loader ran once");
        for result in results {
            assert_eq!(result.expect("loaded").as_deref(), Some(&b"hot=loaded"[..]));
        }
        assert_eq!(cache.get(b"hot").as_deref(), Some(&b"hot=loaded"[..]));
        let stats = cache.stats();
        assert_eq!((stats.loads, stats.load_waits), (1, callers as u64 - 1));
    }
}

hang_limited! {
    /// A loader's error reaches every caller that waited for it, nothing is cached, and the
    /// next call loads again.
    fn a_failed_load_fails_every_waiter_and_caches_nothing() {
        let callers = miri_or(3, 8);
        let cache = cache();
        let results = at_once(callers, {
            let cache = Arc::clone(&cache);
            move |_| {
                cache.get_or_load(b"k", |_| {
                    until_waiting(&cache, callers as u64 - 1);
                    Err::<Option<Vec<u8>>, _>(std::io::Error::other("source down"))
                })
            }
        });
        let errors: Vec<Arc<std::io::Error>> = results
            .into_iter()
            .map(|r| match r {
                Err(LoadError::Failed(e)) => e,
                other => panic!("expected the loader's error, got {other:?}"),
            })
            .collect();
        assert!(errors.iter().all(|e| Arc::ptr_eq(e, &errors[0])), "one error, shared");
        assert_eq!(errors[0].to_string(), "source down");
        assert_eq!(cache.get(b"k"), None, "nothing cached");
        let again = cache.get_or_load(b"k", |_| Ok::<_, String>(Some(b"v".to_vec())));
        assert_eq!(again.expect("loads").as_deref(), Some(&b"v"[..]));
        assert_eq!(cache.stats().loads, 2, "the next call loaded again");
    }
}

hang_limited! {
    /// A loader that panics: every waiter gets `Panicked` with its message, nothing is cached,
    /// and the cache keeps working.
    fn a_panicking_load_fails_every_waiter_and_the_cache_stays_usable() {
        let callers = miri_or(3, 8);
        let cache = cache();
        let results = at_once(callers, {
            let cache = Arc::clone(&cache);
            move |_| {
                cache.get_or_load(b"k", |_| -> Result<Option<Vec<u8>>, String> {
                    until_waiting(&cache, callers as u64 - 1);
                    panic!("loader bug");
                })
            }
        });
        for result in results {
            match result {
                Err(LoadError::Panicked(message)) => assert_eq!(message, "loader bug"),
                other => panic!("expected a panic report, got {other:?}"),
            }
        }
        assert_eq!(cache.get(b"k"), None);
        cache.insert(b"other", b"x").expect("the cache still writes");
        let again = cache.get_or_load(b"k", |_| Ok::<_, String>(Some(b"v".to_vec())));
        assert_eq!(again.expect("loads").as_deref(), Some(&b"v"[..]));
    }
}

/// Runs a load of `key` that blocks until `during` has run on this thread, and returns what
/// the load returned.
fn load_around(cache: &Arc<Cache>, key: &'static [u8], during: impl FnOnce()) -> Option<Vec<u8>> {
    let (release, released) = mpsc::channel::<()>();
    let loads_before = cache.stats().loads;
    let loader = thread::spawn({
        let cache = Arc::clone(cache);
        move || {
            cache.get_or_load(key, move |_| {
                released.recv().expect("released");
                Ok::<_, String>(Some(b"loaded (old)".to_vec()))
            })
        }
    });
    until_loading(cache, loads_before);
    during();
    release.send(()).expect("loader waiting");
    loader
        .join()
        .expect("loader thread")
        .expect("the load succeeds")
}

hang_limited! {
    /// A write that lands while the load runs wins: the caller gets the loaded value, the
    /// cache keeps the write.
    fn a_write_during_a_load_wins() {
        let cache = cache();
        let loaded = load_around(&cache, b"k", || {
            cache.insert(b"k", b"written (new)").expect("insert");
        });
        assert_eq!(loaded.as_deref(), Some(&b"loaded (old)"[..]));
        assert_eq!(cache.get(b"k").as_deref(), Some(&b"written (new)"[..]));
    }
}

hang_limited! {
    /// A remove that lands while the load runs wins, even though the key was absent all
    /// along: it is how a writer invalidates what the load may have read before its update.
    fn a_remove_during_a_load_wins() {
        let cache = cache();
        let loaded = load_around(&cache, b"k", || {
            assert!(!cache.remove(b"k"), "nothing to remove yet");
        });
        assert_eq!(loaded.as_deref(), Some(&b"loaded (old)"[..]));
        assert_eq!(cache.get(b"k"), None, "the loaded value was not stored");

        let loaded = load_around(&cache, b"j", || {
            cache.insert(b"j", b"new").expect("insert");
            assert!(cache.remove(b"j"));
        });
        assert_eq!(loaded.as_deref(), Some(&b"loaded (old)"[..]));
        assert_eq!(cache.get(b"j"), None, "write then remove: still not stored");
    }
}

hang_limited! {
    /// A caller that misses after a remove broke a load's lease does not wait for that load,
    /// which may have read the source before the update the remove stands for: it loads again
    /// and gets what the source holds now (read-your-writes for write-around).
    fn a_miss_after_a_remove_does_not_follow_the_superseded_load() {
        let cache = cache();
        let mut reader = None;
        let loaded = load_around(&cache, b"k", || {
            assert!(!cache.remove(b"k"));
            let before = cache.stats();
            reader = Some(thread::spawn({
                let cache = Arc::clone(&cache);
                move || cache.get_or_load(b"k", |_| Ok::<_, String>(Some(b"loaded (new)".to_vec())))
            }));
            // The reader either leads a load or waits for the old one: let it choose before
            // the old one lands.
            loop {
                let now = cache.stats();
                if now.loads > before.loads || now.load_waits > before.load_waits {
                    break;
                }
                thread::sleep(Duration::from_millis(1));
            }
        });
        assert_eq!(loaded.as_deref(), Some(&b"loaded (old)"[..]));
        let read = reader.expect("spawned").join().expect("reader thread");
        assert_eq!(read.expect("loads").as_deref(), Some(&b"loaded (new)"[..]));
        assert_eq!(cache.get(b"k").as_deref(), Some(&b"loaded (new)"[..]));
    }
}

hang_limited! {
    /// `clear` during a load also ends it.
    fn a_clear_during_a_load_wins() {
        let cache = cache();
        let loaded = load_around(&cache, b"k", || cache.clear());
        assert_eq!(loaded.as_deref(), Some(&b"loaded (old)"[..]));
        assert_eq!(cache.get(b"k"), None);
    }
}

hang_limited! {
    /// Writes of other keys during a load do not stop it from being stored.
    fn writes_of_other_keys_leave_a_load_alone() {
        let cache = cache();
        load_around(&cache, b"k", || {
            cache.insert(b"other", b"x").expect("insert");
            cache.remove(b"another");
        });
        assert_eq!(cache.get(b"k").as_deref(), Some(&b"loaded (old)"[..]));
    }
}

hang_limited! {
    /// A loader may use the cache: read and write other keys, load other keys, read its own
    /// key. Loading its own key is refused at once instead of waiting for itself.
    fn loaders_may_use_the_cache_but_not_load_their_own_key() {
        let cache = cache();
        let value = cache.get_or_load(b"a", |_| {
            assert_eq!(cache.get(b"a"), None);
            cache.insert(b"side", b"written by the loader").expect("insert");
            let inner = cache.get_or_load(b"b", |_| Ok::<_, String>(Some(b"B".to_vec())));
            assert_eq!(inner.expect("b loads").as_deref(), Some(&b"B"[..]));
            match cache.get_or_load(b"a", |_| Ok::<_, String>(Some(b"again".to_vec()))) {
                Err(LoadError::Recursive) => {}
                other => panic!("expected Recursive, got {other:?}"),
            }
            Ok::<_, String>(Some(b"A".to_vec()))
        });
        assert_eq!(value.expect("a loads").as_deref(), Some(&b"A"[..]));
        for (k, v) in [(&b"a"[..], &b"A"[..]), (b"b", b"B"), (b"side", b"written by the loader")] {
            assert_eq!(cache.get(k).as_deref(), Some(v));
        }
    }
}

#[test]
fn a_hit_does_not_call_the_loader() {
    let cache = cache();
    cache.insert(b"k", b"cached").expect("insert");
    let got = cache.get_or_load(b"k", |_| -> Result<Option<Vec<u8>>, String> {
        panic!("the loader must not run on a hit")
    });
    assert_eq!(got.expect("hit").as_deref(), Some(&b"cached"[..]));
    assert_eq!(cache.stats().loads, 0);
}

#[test]
fn not_found_is_returned_and_not_cached() {
    let cache = cache();
    let got = cache.get_or_load(b"missing", |_| Ok::<_, String>(None));
    assert_eq!(got.expect("no error"), None);
    assert_eq!(cache.len(), 0);
    cache
        .get_or_load(b"missing", |_| Ok::<_, String>(None))
        .expect("no error");
    assert_eq!(cache.stats().loads, 2, "each miss asks the source again");
}

#[test]
fn keys_the_cache_cannot_hold_are_refused_before_loading() {
    let cache = cache();
    let never = |_: &[u8]| -> Result<Option<Vec<u8>>, String> { panic!("must not load") };
    assert!(matches!(
        cache.get_or_load(b"", never),
        Err(LoadError::Cache(Error::EmptyKey))
    ));
    let long = vec![b'k'; slabcache::MAX_KEY_LEN + 1];
    assert!(matches!(
        cache.get_or_load(&long, never),
        Err(LoadError::Cache(Error::KeyTooLarge { .. }))
    ));
}

#[test]
fn a_value_too_large_to_cache_is_returned_uncached() {
    let cache = Cache::builder()
        .max_bytes(1 << 20)
        .max_value_bytes(16)
        .build()
        .expect("config");
    let big = vec![7u8; 17];
    let got = cache.get_or_load(b"k", |_| Ok::<_, String>(Some(big.clone())));
    assert_eq!(got.expect("loaded"), Some(big));
    assert_eq!(cache.get(b"k"), None);
}

#[test]
fn loaded_values_take_the_given_ttl() {
    let clock = Arc::new(ManualClock::new());
    let cache = Cache::builder()
        .max_bytes(4 << 20)
        .default_ttl(Duration::from_secs(100))
        .clock(clock.clone())
        .build()
        .expect("config");
    let value = || Ok::<_, String>(Some(b"v".to_vec()));
    cache
        .get_or_load_with_ttl(b"short", Some(Duration::from_secs(5)), |_| value())
        .expect("loads");
    cache.get_or_load(b"default", |_| value()).expect("loads");
    clock.advance(Duration::from_secs(6));
    assert_eq!(cache.get(b"short"), None, "expired after its own TTL");
    assert!(cache.get(b"default").is_some(), "the default TTL is longer");
    clock.advance(Duration::from_secs(100));
    assert_eq!(cache.get(b"default"), None);
}

#[test]
fn load_errors_read_well() {
    let failed: LoadError<std::io::Error> =
        LoadError::Failed(Arc::new(std::io::Error::other("timeout")));
    assert_eq!(failed.to_string(), "the loader failed: timeout");
    assert!(std::error::Error::source(&failed).is_some());
    let refused: LoadError<std::io::Error> = LoadError::Cache(Error::EmptyKey);
    assert_eq!(refused.to_string(), Error::EmptyKey.to_string());
}

#[cfg(feature = "async")]
mod in_async_code {
    use super::*;

    /// Awaits until `n` callers are waiting for another caller's load.
    async fn until_waiting_async(cache: &Cache, n: u64) {
        while cache.stats().load_waits < n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[cfg_attr(miri, ignore = "tokio's runtime is too slow under Miri")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_thousand_tasks_missing_one_key_share_one_loader() {
        const TASKS: usize = 1000;
        let cache = cache();
        let runs = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (cache, runs) = (Arc::clone(&cache), Arc::clone(&runs));
                tokio::spawn(async move {
                    let loader_cache = Arc::clone(&cache);
                    cache
                        .get_or_load_async(b"hot", |key| async move {
                            runs.fetch_add(1, Ordering::SeqCst);
                            until_waiting_async(&loader_cache, TASKS as u64 - 1).await;
                            Ok::<_, String>(Some([&key[..], b"=loaded"].concat()))
                        })
                        .await
                })
            })
            .collect();
        for task in tasks {
            let value = task.await.expect("task").expect("loaded");
            assert_eq!(value.as_deref(), Some(&b"hot=loaded"[..]));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(cache.stats().load_waits, TASKS as u64 - 1);
    }

    #[cfg_attr(miri, ignore = "tokio's runtime is too slow under Miri")]
    #[tokio::test(flavor = "current_thread")]
    async fn a_cancelled_leader_hands_the_load_to_a_waiter() {
        let cache = cache();
        let (started, on_start) = tokio::sync::oneshot::channel::<()>();
        let leader = tokio::spawn({
            let cache = Arc::clone(&cache);
            async move {
                cache
                    .get_or_load_async(b"k", |_| async move {
                        let _ = started.send(());
                        std::future::pending::<Result<Option<Vec<u8>>, String>>().await
                    })
                    .await
            }
        });
        on_start.await.expect("the leader started loading");
        let follower = tokio::spawn({
            let cache = Arc::clone(&cache);
            async move {
                cache
                    .get_or_load_async(b"k", |_| async { Ok::<_, String>(Some(b"v".to_vec())) })
                    .await
            }
        });
        until_waiting_async(&cache, 1).await;
        leader.abort();
        let value = follower.await.expect("task").expect("loaded");
        assert_eq!(value.as_deref(), Some(&b"v"[..]));
        assert_eq!(cache.stats().loads, 2, "the follower led the second load");
        assert_eq!(cache.get(b"k").as_deref(), Some(&b"v"[..]));
    }

    #[cfg_attr(miri, ignore = "tokio's runtime is too slow under Miri")]
    #[tokio::test(flavor = "current_thread")]
    async fn an_async_loader_that_panics_is_reported() {
        let cache = cache();
        let got = cache
            .get_or_load_async(b"k", |_| async {
                if true {
                    panic!("async loader bug");
                }
                Ok::<Option<Vec<u8>>, String>(None)
            })
            .await;
        match got {
            Err(LoadError::Panicked(message)) => assert_eq!(message, "async loader bug"),
            other => panic!("expected a panic report, got {other:?}"),
        }
        assert_eq!(cache.get(b"k"), None);
    }
}
