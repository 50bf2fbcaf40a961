//! Loom models of the engine's concurrency protocols: every interleaving of a few threads,
//! up to a bound on preemptions, run against the engine's own code with loom's atomics and
//! locks (`sync` switches to them under `cfg(slabcache_loom)`).
//!
//! ```sh
//! RUSTFLAGS="--cfg slabcache_loom" LOOM_MAX_PREEMPTIONS=2 \
//!     cargo test -p slabcache --release --lib loom_models
//! ```
//!
//! (`scripts/loom.sh` runs exactly that.) Without `LOOM_MAX_PREEMPTIONS` the models use a
//! bound of 2. Each model names the protocol it checks:
//!
//! - the chunk seqlock: a writer rewriting an entry in place, two readers;
//! - a chunk retired and reused for another key, and a page re-cut for another size class,
//!   under a reader that holds the old chunk's offset;
//! - two writers racing `compare_and_swap` on one key through the whole write path;
//! - an insert racing a remove of the same key;
//! - the free lists: writers of new keys taking and freeing chunks of one class at its entry
//!   limit, each new key evicting the other's;
//! - the victim hand-off: a new key claiming a victim and reusing its chunk while the victim
//!   is removed or updated in place;
//! - two policy shards: a new key evicting the other shard's entry while it is removed;
//! - the delivery of removal events: threads queueing events while another delivers.
//!
//! What loom cannot express here: the real arena's pages are 128 KiB (a page must hold the
//! longest key), so the cache-level models build a one-page cache, and loom explores the
//! accesses of a few entries in it, not page moves between classes (a one-page cache has
//! none to make). The page re-cut protocol itself is modelled on a bare arena below, and the
//! concurrency tests in `tests/concurrency.rs` drive page moves with real threads.

use std::time::Duration;

use loom::sync::Arc;
use loom::thread;

use crate::arena::Arena;
use crate::cache::Cache;
use crate::chunk::{self, Chunk};
use crate::error::Error;
use crate::events::{Event, Events, RemovalCause};
use crate::sync::{AtomicU64, Ordering};
use crate::ttl::NEVER;

const KEY: &[u8] = b"key";
const OTHER_KEY: &[u8] = b"other";
const OLD: [u8; 16] = [1; 16];
const NEW: [u8; 16] = [2; 16];

/// Runs `f` under loom with `LOOM_MAX_PREEMPTIONS` (default 2).
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    // A write through the whole cache makes a few hundred atomic accesses (the default bound
    // is 1,000 per execution); a waiter that yields adds more.
    builder.max_branches = 20_000;
    builder.check(f);
}

fn words(n: usize) -> Arc<Vec<AtomicU64>> {
    Arc::new((0..n).map(|_| AtomicU64::new(0)).collect())
}

fn write_entry(chunk: Chunk<'_>, key: &[u8], value: &[u8], version: u64) {
    chunk.begin_write();
    chunk.fill(key, value, NEVER);
    chunk.end_write(version);
}

/// One optimistic read of `key` from `chunk`, as the get path does it: the value and version
/// if the read validated and the chunk held `key`.
fn read_once(chunk: Chunk<'_>, key: &[u8]) -> Option<(Vec<u8>, u64)> {
    let seq = chunk.read_begin()?;
    let head = chunk.head()?;
    let mut value = Vec::new();
    let matched = chunk.key_equals(&head, key);
    if matched {
        chunk.copy_value(&head, &mut value);
    }
    (chunk.read_end(seq) && matched).then_some((value, head.version))
}

fn entry_words() -> usize {
    chunk::bytes_needed(KEY.len(), OLD.len()) / 8
}

#[test]
fn loom_seqlock_readers_see_the_old_or_the_new_value_whole() {
    model(|| {
        let w = words(entry_words());
        write_entry(Chunk::new(&w), KEY, &OLD, 1);
        let writer = {
            let w = w.clone();
            thread::spawn(move || write_entry(Chunk::new(&w), KEY, &NEW, 2))
        };
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let w = w.clone();
                thread::spawn(move || read_once(Chunk::new(&w), KEY))
            })
            .collect();
        writer.join().unwrap();
        for reader in readers {
            if let Some((value, version)) = reader.join().unwrap() {
                assert!(
                    (value == OLD && version == 1) || (value == NEW && version == 2),
                    "a validated read returned {value:?} at version {version}"
                );
            }
        }
        assert_eq!(read_once(Chunk::new(&w), KEY), Some((NEW.to_vec(), 2)));
    });
}

#[test]
fn loom_a_reader_of_a_retired_chunk_never_accepts_its_new_contents() {
    model(|| {
        let w = words(entry_words());
        write_entry(Chunk::new(&w), KEY, &OLD, 1);
        let reuser = {
            let w = w.clone();
            thread::spawn(move || {
                let chunk = Chunk::new(&w);
                chunk.retire();
                // Reused for the same key's later value: the nastiest case, since the key
                // comparison cannot tell the two apart; only the sequence word can.
                write_entry(chunk, KEY, &NEW, 7);
            })
        };
        let reader = {
            let w = w.clone();
            thread::spawn(move || read_once(Chunk::new(&w), KEY))
        };
        reuser.join().unwrap();
        if let Some(seen) = reader.join().unwrap() {
            assert!(
                seen == (OLD.to_vec(), 1) || seen == (NEW.to_vec(), 7),
                "a validated read returned {seen:?}"
            );
        }
    });
}

#[test]
fn loom_a_reader_across_a_page_recut_never_accepts_the_new_layout() {
    // One 128-byte page: first cut into two 8-word chunks (the entry lives in the second),
    // then re-cut into one 16-word chunk, whose value words overlay the old second chunk.
    const SMALL: usize = 8;
    const LARGE: usize = 16;
    let chunk_words = |class: usize| if class == 0 { SMALL } else { LARGE };
    model(move || {
        let arena = Arc::new(Arena::new(7, 1).expect("a one-page arena"));
        arena.assign(0, 0);
        write_entry(Chunk::new(arena.chunk_words(0, 1, SMALL)), KEY, &OLD, 1);
        let mover = {
            let arena = arena.clone();
            thread::spawn(move || {
                Chunk::new(arena.chunk_words(0, 1, SMALL)).retire();
                arena.begin_recut(0);
                let fresh = Chunk::new(arena.chunk_words(0, 0, LARGE));
                fresh.reset();
                arena.assign(0, 1);
                let value: Vec<u8> = (0..(LARGE - chunk::HEADER_WORDS - 1) * 8)
                    .map(|i| i as u8)
                    .collect();
                write_entry(fresh, OTHER_KEY, &value, 9);
            })
        };
        let reader = {
            let arena = arena.clone();
            thread::spawn(move || {
                // The get path's `Slab::locate`: the chunk's offset from the layout word.
                let layout = arena.layout(0);
                let words = chunk_words(layout.class()?);
                if (1 + 1) * words > LARGE {
                    return None;
                }
                let seen = read_once(Chunk::new(arena.chunk_words(0, 1, words)), KEY)?;
                arena.layout_unchanged(0, layout).then_some(seen)
            })
        };
        mover.join().unwrap();
        if let Some(seen) = reader.join().unwrap() {
            assert_eq!(
                seen,
                (OLD.to_vec(), 1),
                "a validated read crossed the re-cut"
            );
        }
    });
}

/// The smallest cache the builder accepts: one page (a page must hold the longest key).
fn one_page_cache(max_entries: Option<u64>) -> Cache {
    let builder = Cache::builder()
        .max_value_bytes(64)
        .max_bytes(128 << 10)
        .default_ttl(Duration::from_secs(3600));
    match max_entries {
        Some(n) => builder.max_entries(n),
        None => builder,
    }
    .build()
    .expect("a valid one-page cache")
}

#[test]
fn loom_racing_compare_and_swap_has_exactly_one_winner() {
    model(|| {
        let cache = Arc::new(one_page_cache(None));
        let start = cache.insert(KEY, &OLD).unwrap();
        let racers: Vec<_> = [[3u8; 16], [4u8; 16]]
            .into_iter()
            .map(|value| {
                let cache = cache.clone();
                thread::spawn(move || (value, cache.compare_and_swap(KEY, start, &value)))
            })
            .collect();
        let outcomes: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        let winners: Vec<_> = outcomes
            .iter()
            .filter_map(|(value, result)| result.as_ref().ok().map(|v| (value, *v)))
            .collect();
        assert_eq!(winners.len(), 1, "outcomes: {outcomes:?}");
        let (winning_value, winning_version) = winners[0];
        assert!(winning_version > start);
        for (_, result) in &outcomes {
            if let Err(e) = result {
                assert_eq!(
                    *e,
                    Error::VersionMismatch {
                        current: winning_version
                    }
                );
            }
        }
        assert_eq!(
            cache.get_versioned(KEY),
            Some((winning_value.to_vec(), winning_version))
        );
    });
}

#[test]
fn loom_an_insert_racing_a_remove_ends_in_one_of_their_orders() {
    for present_before in [false, true] {
        model(move || {
            let cache = Arc::new(one_page_cache(None));
            if present_before {
                cache.insert(KEY, &OLD).unwrap();
            }
            let inserter = {
                let cache = cache.clone();
                thread::spawn(move || cache.insert(KEY, &NEW).unwrap())
            };
            let remover = {
                let cache = cache.clone();
                thread::spawn(move || cache.remove(KEY))
            };
            let version = inserter.join().unwrap();
            let removed = remover.join().unwrap();
            let after = cache.get_versioned(KEY);
            match &after {
                // The remove came first (it removed the old entry, if any), then the insert.
                Some(found) => {
                    assert_eq!(*found, (NEW.to_vec(), version));
                    assert_eq!(removed, present_before);
                }
                // The insert came first and the remove took its entry.
                None => assert!(removed, "the key is gone but the remove removed nothing"),
            }
            assert_eq!(cache.len(), usize::from(after.is_some()));
            assert_eq!(cache.stats().entries, cache.len() as u64);
        });
    }
}

#[test]
fn loom_new_keys_at_the_entry_limit_share_the_free_list_soundly() {
    model(|| {
        let cache = Arc::new(one_page_cache(Some(1)));
        cache.insert(OTHER_KEY, &OLD).unwrap();
        let writers: Vec<_> = [(&b"a"[..], [5u8; 16]), (&b"b"[..], [6u8; 16])]
            .into_iter()
            .map(|(key, value)| {
                let cache = cache.clone();
                thread::spawn(move || {
                    let version = cache.insert(key, &value).unwrap();
                    (key, value, version)
                })
            })
            .collect();
        let written: Vec<_> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        assert!(cache.get(OTHER_KEY).is_none(), "the limit is one entry");
        let resident: Vec<_> = written
            .iter()
            .filter_map(|(key, value, version)| {
                cache.get_versioned(key).map(|found| {
                    assert_eq!(found, (value.to_vec(), *version), "a chunk was shared");
                    key
                })
            })
            .collect();
        assert_eq!(resident.len(), 1, "exactly one of the new keys stays");
        let stats = cache.stats();
        assert_eq!((stats.entries, cache.len()), (1, 1));
        assert_eq!(stats.evictions, 2);
        assert_eq!(stats.payload_bytes, (1 + OLD.len()) as u64);
    });
}

/// A new key at the entry limit claims the one resident entry as its victim and reuses its
/// chunk, while another thread removes that entry or rewrites it in place. Whatever the order,
/// the chunk has one owner: the remover leaves a claimed chunk to its evictor, the evictor
/// takes an entry out of the index only if it is still there, and an in-place update that
/// lands first is evicted with the entry. (Planting a bug: with `Slab::release` freeing a
/// claimed chunk, the remover frees the chunk the new key is being written into, and the model
/// fails at once, with neither key left in the cache.)
#[test]
fn loom_a_claimed_victim_racing_its_removal_or_update_has_one_owner() {
    for update in [false, true] {
        model(move || {
            let cache = Arc::new(one_page_cache(Some(1)));
            cache.insert(OTHER_KEY, &OLD).unwrap();
            let inserter = {
                let cache = cache.clone();
                thread::spawn(move || cache.insert(KEY, &NEW).unwrap())
            };
            // The updater's version, or `None` for the remover.
            let other = {
                let cache = cache.clone();
                thread::spawn(move || {
                    if update {
                        Some(cache.insert(OTHER_KEY, &[7; 16]).unwrap())
                    } else {
                        cache.remove(OTHER_KEY);
                        None
                    }
                })
            };
            let version = inserter.join().unwrap();
            let other_version = other.join().unwrap();
            let stats = cache.stats();
            assert_eq!(
                (stats.entries, cache.len()),
                (1, 1),
                "the limit is one entry"
            );
            let left = stats.evictions + stats.removals;
            match (cache.get_versioned(KEY), cache.get_versioned(OTHER_KEY)) {
                // The old entry left once, evicted or removed; or, updated after it was
                // evicted, it came back as a new key and the inserter evicted it again.
                (Some(found), None) => {
                    assert_eq!(found, (NEW.to_vec(), version));
                    let expected = if update { 1..=2 } else { 1..=1 };
                    assert!(expected.contains(&left), "{stats:?}");
                    assert_eq!(stats.payload_bytes, (KEY.len() + NEW.len()) as u64);
                }
                // Only an update can come back, as a new key that evicted the inserter's.
                (None, Some(found)) => {
                    assert_eq!(Some(found), other_version.map(|v| ([7; 16].to_vec(), v)));
                    assert_eq!(stats.evictions, 2, "{stats:?}");
                    assert_eq!(stats.payload_bytes, (OTHER_KEY.len() + 16) as u64);
                }
                outcome => panic!("one of the two keys stays, not {outcome:?}"),
            }
        });
    }
}

/// With two policy shards: a new key whose shard holds nothing while the cache is at its entry
/// limit evicts the other shard's entry, which another thread removes at the same time. The
/// remove's release, the evictor's claim and the free stack must agree on one owner for the
/// old entry's chunk, whichever shard's lock each takes when. (Planting a bug: with `release`
/// dequeuing the chunk under shard 0's lock whatever shard queues it, the model fails at once:
/// the chunk's handle is looked up in the wrong shard's table, and the threads never finish.)
#[test]
fn loom_a_new_key_evicting_from_another_shard_races_a_remove() {
    model(|| {
        let cache = Arc::new(
            Cache::builder()
                .max_value_bytes(64)
                .max_bytes(128 << 10)
                .max_entries(1)
                .policy_shards(2)
                .build()
                .expect("a valid one-page cache"),
        );
        let keys: Vec<[u8; 1]> = (b'a'..=b'z').map(|c| [c]).collect();
        let resident = keys[0];
        let newcomer = *keys
            .iter()
            .find(|k| cache.shard_of_key(&k[..]) != cache.shard_of_key(&resident))
            .expect("two of 26 keys land in different shards");
        cache.insert(&resident, &OLD).unwrap();
        let inserter = {
            let cache = cache.clone();
            thread::spawn(move || cache.insert(&newcomer, &NEW).unwrap())
        };
        let remover = {
            let cache = cache.clone();
            thread::spawn(move || cache.remove(&resident))
        };
        let version = inserter.join().unwrap();
        remover.join().unwrap();
        let stats = cache.stats();
        assert_eq!(
            cache.get_versioned(&newcomer),
            Some((NEW.to_vec(), version))
        );
        assert_eq!(cache.get(&resident), None);
        assert_eq!((stats.entries, cache.len()), (1, 1), "{stats:?}");
        assert_eq!(stats.evictions + stats.removals, 1, "{stats:?}");
        assert_eq!(stats.payload_bytes, 1 + NEW.len() as u64);
        // The old chunk went back to the free stack once: two more new keys take two chunks.
        for key in [&keys[24], &keys[25]] {
            let v = cache.insert(key, &OLD).unwrap();
            assert_eq!(cache.get_versioned(key), Some((OLD.to_vec(), v)));
        }
    });
}

/// Two threads each queue an event and deliver. By the time both have returned, both events
/// were delivered, once each: a thread that finds the other delivering leaves its event to it,
/// and a deliverer looks at the queue again after clearing its flag, so an event queued between
/// its last batch and the clearing is not left behind.
#[test]
fn loom_every_queued_event_is_delivered_once_before_the_callers_return() {
    model(|| {
        let delivered = Arc::new(AtomicU64::new(0));
        let events = Arc::new(Events::new(Box::new({
            let delivered = delivered.clone();
            move |_: &Event| {
                delivered.fetch_add(1, Ordering::Relaxed);
            }
        })));
        let threads: Vec<_> = (0..2u8)
            .map(|n| {
                let events = events.clone();
                thread::spawn(move || {
                    events.push(Event::new(vec![n], Vec::new(), RemovalCause::Removed));
                    events.deliver();
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(events.panics(), 0, "panics");
        assert_eq!(delivered.load(Ordering::Relaxed), 2);
    });
}
