//! Differential fuzzing of the public API against a plain model.
//!
//! An arbitrary sequence of operations over a small key space runs on a small cache (a few
//! 128 KiB pages, sometimes a small `max_entries`, so it evicts) whose time moves only through
//! a `ManualClock`, and on a model: a map of key -> (value, version, deadline bounds).
//!
//! What the model may not know: only a write can evict (it allocates a chunk, which can take
//! another entry's chunk or a whole page of another size class), and it may evict any key,
//! its own included. So after every operation the cache's `iter` is compared with the model:
//! every entry it yields must be one the model holds, at the model's exact value and
//! version, and a live model key it no longer yields is forgotten, which only a write may
//! cause, and never to a key it stored. Before each operation the model therefore holds
//! exactly the cache's live entries, and every read, remove and refusal is checked exactly.
//! A conditional write whose own key is evicted while it takes its chunk answers `NotFound`;
//! that is accepted where the model expected success, and the key is forgotten.
//!
//! `get_or_load` is checked against the model too (a hit never runs the loader; a miss runs it
//! once, caches only a value, and refuses a loader's load of its own key), and so are tags
//! (`invalidate_tag` ends exactly the live entries whose last write carried the tag).
//!
//! With TTL jitter the model knows a deadline only within bounds; while the clock is between
//! them it asks `contains` (which changes nothing) and narrows the bounds by the answer.

#![no_main]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use slabcache::{Cache, Error, ManualClock, Stats, Version};

mod common;

/// Pages are 128 KiB with this value limit (a 64 KiB key and this value fit in one).
const MAX_VALUE_BYTES: usize = 16 << 10;
const PAGE_BYTES: u64 = 128 << 10;
/// Key lengths by key number: short and long keys, so the keys spread over size classes. The
/// longest key (64 KiB) is left to the `sizes` target: every read of it copies it byte by byte
/// under coverage instrumentation, which would take most of this target's time.
const KEY_LENGTHS: [usize; 12] = [1, 2, 7, 8, 9, 16, 24, 57, 200, 1500, 5000, 9000];
/// Longest `ValueSpec::Bytes` used, so that values stay short.
const SHORT_VALUE_MAX: usize = 32;
/// Lengths of `ValueSpec::Tier` values; a 128 KiB page holds 7 of the longest.
const VALUE_TIERS: [usize; 4] = [1000, 6000, 12_000, MAX_VALUE_BYTES];

#[derive(Arbitrary, Debug)]
struct Input {
    config: Config,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
struct Config {
    /// Arena pages, 1 to 4.
    pages: u8,
    /// `max_entries`, 1 to 16, if set.
    max_entries: Option<u8>,
    /// The default TTL in milliseconds (0 is refused by the builder, so it means 1).
    default_ttl_ms: Option<u16>,
    /// TTL jitter in quarters, 0 to 4.
    jitter_quarters: u8,
    /// Size of the key space, 1 to 24.
    keys: u8,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Insert {
        key: u8,
        value: ValueSpec,
    },
    InsertWithTtl {
        key: u8,
        value: ValueSpec,
        ttl: Ttl,
    },
    InsertIfAbsent {
        key: u8,
        value: ValueSpec,
    },
    Replace {
        key: u8,
        value: ValueSpec,
    },
    Get {
        key: u8,
    },
    GetVersioned {
        key: u8,
    },
    GetInto {
        key: u8,
    },
    Contains {
        key: u8,
    },
    CompareAndSwap {
        key: u8,
        expected: Expected,
        value: ValueSpec,
    },
    Remove {
        key: u8,
    },
    RemoveIfVersion {
        key: u8,
        expected: Expected,
    },
    Clear,
    Advance {
        millis: u16,
    },
    /// `get_or_load`; on a miss the loader answers this.
    GetOrLoad {
        key: u8,
        answer: LoadAnswer,
    },
    /// `insert_tagged` with the default TTL and the tags whose bits are set (of `TAGS`).
    InsertTagged {
        key: u8,
        value: ValueSpec,
        tags: u8,
    },
    InvalidateTag {
        tag: u8,
    },
}

/// The tags `InsertTagged` and `InvalidateTag` use.
const TAGS: [&[u8]; 4] = [b"red", b"green", b"blue", b""];

/// What a `get_or_load` loader answers.
#[derive(Arbitrary, Debug)]
enum LoadAnswer {
    Value(ValueSpec),
    NotFound,
    Fails,
    /// It first asks `get_or_load` for its own key (refused at once), then answers this value.
    LoadsItself(ValueSpec),
}

#[derive(Arbitrary, Debug)]
enum ValueSpec {
    /// These bytes, cut to `SHORT_VALUE_MAX`.
    Bytes(Vec<u8>),
    /// `len % (MAX_VALUE_BYTES + 1)` copies of `byte`: values of every size class.
    Filled { len: u16, byte: u8 },
    /// A value of one of a few lengths, `VALUE_TIERS[tier % len]` copies of `byte`: entries
    /// with short keys then share a size class and fill its pages, so the class must evict
    /// its own entries or take a page from another.
    Tier { tier: u8, byte: u8 },
}

#[derive(Arbitrary, Debug)]
enum Ttl {
    Never,
    Millis(u16),
    /// `Duration::MAX`: a deadline past the end of the clock.
    Max,
}

/// The version a conditional operation expects.
#[derive(Arbitrary, Debug)]
enum Expected {
    /// The model's current version of the key (else the last it had, else 1).
    Current,
    /// An older version the key had, counted back from the newest.
    Older(u8),
    /// Any number (0 means 1).
    Raw(u64),
}

/// One live entry of the model.
struct Entry {
    value: Vec<u8>,
    version: Version,
    /// Bits of the `TAGS` its write tagged it with.
    tags: u8,
    /// The deadline lies in `earliest..=latest` (clock nanoseconds; `u64::MAX`: none).
    earliest: u64,
    latest: u64,
}

impl common::Modelled for Entry {
    fn value(&self) -> &[u8] {
        &self.value
    }
    fn version(&self) -> Version {
        self.version
    }
}

struct Harness {
    cache: Cache,
    clock: Arc<ManualClock>,
    /// The clock's reading, in nanoseconds.
    now: u64,
    default_ttl: Option<Duration>,
    jitter: f64,
    max_entries: Option<u64>,
    max_bytes: u64,
    key_space: u8,
    /// Exactly the cache's live entries, between operations.
    model: BTreeMap<Vec<u8>, Entry>,
    /// Every version a write of each key returned, oldest first.
    history: BTreeMap<Vec<u8>, Vec<Version>>,
    /// Reused across `get_into` calls, so that a stale value left in it would show.
    buffer: Vec<u8>,
}

/// What an operation may have done to entries other than those the harness tracks exactly.
struct Outcome {
    /// It wrote (allocated a chunk), so it may have evicted any key.
    may_evict: bool,
    /// A key it wrote, which must still be present (unless already expired).
    wrote: Option<Vec<u8>>,
    /// Live keys it reported gone (a refused write whose key it evicted), already forgotten.
    gone: u64,
}

impl Outcome {
    fn nothing_stored() -> Self {
        Outcome {
            may_evict: false,
            wrote: None,
            gone: 0,
        }
    }
}

fn key_bytes(id: u8) -> Vec<u8> {
    let len = KEY_LENGTHS[usize::from(id) % KEY_LENGTHS.len()];
    // The first byte tells keys apart; the rest is a pattern of the key's number.
    let mut key = vec![id ^ 0x5a; len];
    key[0] = id;
    key
}

fn value_bytes(spec: &ValueSpec) -> Vec<u8> {
    match spec {
        ValueSpec::Bytes(bytes) => bytes[..bytes.len().min(SHORT_VALUE_MAX)].to_vec(),
        ValueSpec::Filled { len, byte } => vec![*byte; usize::from(*len) % (MAX_VALUE_BYTES + 1)],
        ValueSpec::Tier { tier, byte } => {
            vec![*byte; VALUE_TIERS[usize::from(*tier) % VALUE_TIERS.len()]]
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A key for messages: its number and length (keys can be 64 KiB long).
fn describe(key: &[u8]) -> String {
    format!("key #{} ({} bytes)", key[0], key.len())
}

impl Harness {
    fn new(config: &Config) -> Self {
        let clock = Arc::new(ManualClock::new());
        let max_bytes = PAGE_BYTES * (1 + u64::from(config.pages % 4));
        let max_entries = config.max_entries.map(|n| 1 + u64::from(n % 16));
        let default_ttl = config
            .default_ttl_ms
            .map(|ms| Duration::from_millis(u64::from(ms.max(1))));
        let jitter = f64::from(config.jitter_quarters % 5) / 4.0;
        let mut builder = Cache::builder()
            .max_bytes(max_bytes)
            .max_value_bytes(MAX_VALUE_BYTES)
            .ttl_jitter(jitter)
            .clock(clock.clone());
        if let Some(max) = max_entries {
            builder = builder.max_entries(max);
        }
        if let Some(ttl) = default_ttl {
            builder = builder.default_ttl(ttl);
        }
        Harness {
            cache: builder.build().expect("a valid configuration builds"),
            clock,
            now: 0,
            default_ttl,
            jitter,
            max_entries,
            max_bytes,
            key_space: 1 + config.keys % 24,
            model: BTreeMap::new(),
            history: BTreeMap::new(),
            buffer: Vec::new(),
        }
    }

    fn key(&self, id: u8) -> Vec<u8> {
        key_bytes(id % self.key_space)
    }

    /// The bounds of the deadline of an entry written now with `ttl`: the TTL used is drawn
    /// from `[d, d * (1 + jitter)]`, and the entry is expired from the deadline on.
    fn deadline_bounds(&self, ttl: Option<Duration>) -> (u64, u64) {
        let Some(ttl) = ttl else {
            return (u64::MAX, u64::MAX);
        };
        let base = nanos(ttl);
        let extra = (base as f64 * self.jitter) as u64;
        // A deadline past the clock's range is clamped below "never"; the clock never gets
        // there in a run, so only the order matters.
        let clamp = |t: u64| t.min(u64::MAX - 1);
        (
            clamp(self.now.saturating_add(base)),
            clamp(self.now.saturating_add(base).saturating_add(extra)),
        )
    }

    /// Forgets the entries that have expired; for those whose deadline the clock may have
    /// reached, asks the cache and narrows the bounds by its answer.
    fn settle_expiry(&mut self) {
        let (now, cache) = (self.now, &self.cache);
        self.model.retain(|key, entry| {
            if now < entry.earliest {
                true
            } else if now >= entry.latest {
                false
            } else if cache.contains(key) {
                entry.earliest = now + 1;
                true
            } else {
                entry.latest = now;
                false
            }
        });
    }

    fn expected_version(&self, key: &[u8], expected: &Expected) -> Version {
        let history = self.history.get(key).map(Vec::as_slice).unwrap_or_default();
        let one = Version::new(1).expect("1 is a version");
        match expected {
            Expected::Current => self
                .model
                .get(key)
                .map(|e| e.version)
                .or(history.last().copied())
                .unwrap_or(one),
            Expected::Older(back) => match history.len() {
                0 => one,
                n => history[n - 1 - usize::from(*back) % n],
            },
            Expected::Raw(raw) => Version::new(*raw).unwrap_or(one),
        }
    }

    /// Checks a write's new version against every earlier one of the key, records the entry,
    /// and returns the outcome of a write that stored it.
    fn wrote(
        &mut self,
        key: Vec<u8>,
        value: Vec<u8>,
        version: Version,
        ttl: Option<Duration>,
    ) -> Outcome {
        let history = self.history.entry(key.clone()).or_default();
        if let Some(last) = history.last() {
            assert!(
                version > *last,
                "{}: a write returned {version:?}, not above the earlier {last:?}",
                describe(&key)
            );
        }
        history.push(version);
        let (earliest, latest) = self.deadline_bounds(ttl);
        self.model.insert(
            key.clone(),
            Entry {
                value,
                version,
                tags: 0,
                earliest,
                latest,
            },
        );
        Outcome {
            may_evict: true,
            wrote: Some(key),
            gone: 0,
        }
    }

    /// A write that replaces only a live entry (`replace`, `compare_and_swap`) and passed its
    /// check against the model: it succeeds, or reports the key gone if its allocation
    /// evicted the key.
    fn conditional_write(
        &mut self,
        key: &[u8],
        value: Vec<u8>,
        result: Result<Version, Error>,
        what: &str,
    ) -> Outcome {
        let ttl = self.default_ttl;
        match result {
            Ok(version) => self.wrote(key.to_vec(), value, version, ttl),
            Err(Error::NotFound) => {
                self.model.remove(key);
                Outcome {
                    may_evict: true,
                    wrote: None,
                    gone: 1,
                }
            }
            Err(e) => panic!("{what} of live {}: {e:?}", describe(key)),
        }
    }

    /// A read that counts a hit or a miss: checks the result against the model and the count.
    fn check_read(&self, key: &[u8], got: Option<(&[u8], Option<Version>)>, before: &Stats) {
        let expected = self.model.get(key);
        match (got, expected) {
            (None, None) => {}
            (Some((value, version)), Some(entry)) => {
                assert!(
                    value == entry.value.as_slice(),
                    "{}: read {} bytes, the model holds {} bytes of {:?}",
                    describe(key),
                    value.len(),
                    entry.value.len(),
                    entry.version
                );
                if let Some(version) = version {
                    assert_eq!(version, entry.version, "{}: version read", describe(key));
                }
            }
            (None, Some(entry)) => panic!(
                "{}: read nothing, the model holds {:?} (no write since could evict it)",
                describe(key),
                entry.version
            ),
            (Some((value, version)), None) => panic!(
                "{}: read {} bytes at {version:?}, the model holds nothing (removed, expired or \
                 evicted)",
                describe(key),
                value.len()
            ),
        }
        let after = self.cache.stats();
        let (hits, misses) = if got.is_some() { (1, 0) } else { (0, 1) };
        assert_eq!(after.hits - before.hits, hits, "hits counted by a read");
        assert_eq!(
            after.misses - before.misses,
            misses,
            "misses counted by a read"
        );
    }

    fn apply(&mut self, op: &Op, before: &Stats) -> Outcome {
        match op {
            Op::Insert { key, value } => {
                let (key, value) = (self.key(*key), value_bytes(value));
                let version = self
                    .cache
                    .insert(&key, &value)
                    .unwrap_or_else(|e| panic!("insert of {}: {e:?}", describe(&key)));
                let ttl = self.default_ttl;
                self.wrote(key, value, version, ttl)
            }
            Op::InsertWithTtl { key, value, ttl } => {
                let (key, value) = (self.key(*key), value_bytes(value));
                let ttl = match ttl {
                    Ttl::Never => None,
                    Ttl::Millis(ms) => Some(Duration::from_millis(u64::from(*ms))),
                    Ttl::Max => Some(Duration::MAX),
                };
                let version = self
                    .cache
                    .insert_with_ttl(&key, &value, ttl)
                    .unwrap_or_else(|e| panic!("insert_with_ttl of {}: {e:?}", describe(&key)));
                self.wrote(key, value, version, ttl)
            }
            Op::InsertIfAbsent { key, value } => {
                let (key, value) = (self.key(*key), value_bytes(value));
                let result = self.cache.insert_if_absent(&key, &value);
                if self.model.contains_key(&key) {
                    assert_eq!(result, Err(Error::Exists), "insert_if_absent of a live key");
                    return Outcome::nothing_stored();
                }
                let version = result.unwrap_or_else(|e| {
                    panic!("insert_if_absent of absent {}: {e:?}", describe(&key))
                });
                let ttl = self.default_ttl;
                self.wrote(key, value, version, ttl)
            }
            Op::Replace { key, value } => {
                let (key, value) = (self.key(*key), value_bytes(value));
                let result = self.cache.replace(&key, &value);
                if !self.model.contains_key(&key) {
                    assert_eq!(result, Err(Error::NotFound), "replace of an absent key");
                    return Outcome::nothing_stored();
                }
                self.conditional_write(&key, value, result, "replace")
            }
            Op::Get { key } => {
                let key = self.key(*key);
                let got = self.cache.get(&key);
                self.check_read(&key, got.as_deref().map(|v| (v, None)), before);
                Outcome::nothing_stored()
            }
            Op::GetVersioned { key } => {
                let key = self.key(*key);
                let got = self.cache.get_versioned(&key);
                let got = got
                    .as_ref()
                    .map(|(v, version)| (v.as_slice(), Some(*version)));
                self.check_read(&key, got, before);
                Outcome::nothing_stored()
            }
            Op::GetInto { key } => {
                let key = self.key(*key);
                let mut buffer = std::mem::take(&mut self.buffer);
                let got = self.cache.get_into(&key, &mut buffer);
                self.check_read(&key, got.map(|v| (buffer.as_slice(), Some(v))), before);
                self.buffer = buffer;
                Outcome::nothing_stored()
            }
            Op::Contains { key } => {
                let key = self.key(*key);
                assert_eq!(
                    self.cache.contains(&key),
                    self.model.contains_key(&key),
                    "contains {}",
                    describe(&key)
                );
                let after = self.cache.stats();
                assert_eq!(
                    (after.hits, after.misses),
                    (before.hits, before.misses),
                    "contains counts no hit or miss"
                );
                Outcome::nothing_stored()
            }
            Op::CompareAndSwap {
                key,
                expected,
                value,
            } => {
                let (key, value) = (self.key(*key), value_bytes(value));
                let expected = self.expected_version(&key, expected);
                let result = self.cache.compare_and_swap(&key, expected, &value);
                match self.model.get(&key) {
                    None => {
                        assert_eq!(
                            result,
                            Err(Error::NotFound),
                            "compare_and_swap of absent key"
                        );
                        Outcome::nothing_stored()
                    }
                    Some(entry) if entry.version != expected => {
                        assert_eq!(
                            result,
                            Err(Error::VersionMismatch {
                                current: entry.version
                            }),
                            "compare_and_swap of {} expecting {expected:?}",
                            describe(&key)
                        );
                        Outcome::nothing_stored()
                    }
                    Some(_) => self.conditional_write(&key, value, result, "compare_and_swap"),
                }
            }
            Op::Remove { key } => {
                let key = self.key(*key);
                let removed = self.cache.remove(&key);
                assert_eq!(
                    removed,
                    self.model.remove(&key).is_some(),
                    "remove {}",
                    describe(&key)
                );
                Outcome::nothing_stored()
            }
            Op::RemoveIfVersion { key, expected } => {
                let key = self.key(*key);
                let expected = self.expected_version(&key, expected);
                let result = self.cache.remove_if_version(&key, expected);
                let want = match self.model.get(&key) {
                    None => Err(Error::NotFound),
                    Some(entry) if entry.version != expected => Err(Error::VersionMismatch {
                        current: entry.version,
                    }),
                    Some(_) => Ok(()),
                };
                assert_eq!(
                    result,
                    want,
                    "remove_if_version {} expecting {expected:?}",
                    describe(&key)
                );
                if want.is_ok() {
                    self.model.remove(&key);
                }
                Outcome::nothing_stored()
            }
            Op::Clear => {
                self.cache.clear();
                self.model.clear();
                let stats = self.cache.stats();
                assert_eq!(stats.entries, 0, "entries after clear");
                assert_eq!(stats.payload_bytes, 0, "payload bytes after clear");
                Outcome::nothing_stored()
            }
            Op::GetOrLoad { key, answer } => {
                let key = self.key(*key);
                let mut called = false;
                let result = self.cache.get_or_load(&key, |k| {
                    called = true;
                    assert_eq!(k, key.as_slice(), "the loader gets the key");
                    match answer {
                        LoadAnswer::Value(value) => Ok(Some(value_bytes(value))),
                        LoadAnswer::NotFound => Ok(None),
                        LoadAnswer::Fails => Err("the source failed"),
                        LoadAnswer::LoadsItself(value) => {
                            let inner = self.cache.get_or_load(k, |_| Ok::<_, &str>(None));
                            assert!(
                                matches!(inner, Err(slabcache::LoadError::Recursive)),
                                "a loader loading its own key: {inner:?}"
                            );
                            Ok(Some(value_bytes(value)))
                        }
                    }
                });
                if let Some(entry) = self.model.get(&key) {
                    assert!(!called, "the loader ran for live {}", describe(&key));
                    let got = result.expect("a hit").expect("a value");
                    assert!(got == entry.value, "get_or_load of live {}", describe(&key));
                    return Outcome::nothing_stored();
                }
                assert!(called, "a miss of {} runs the loader", describe(&key));
                match (answer, result) {
                    (LoadAnswer::Value(value) | LoadAnswer::LoadsItself(value), Ok(Some(got))) => {
                        let value = value_bytes(value);
                        assert!(got == value, "get_or_load returns the loaded value");
                        // Stored with the default TTL: its version is the one iter shows.
                        let version = self
                            .cache
                            .iter()
                            .find(|(k, _, _)| *k == key)
                            .map(|(_, _, v)| v)
                            .expect("a loaded value is stored");
                        let ttl = self.default_ttl;
                        self.wrote(key, value, version, ttl)
                    }
                    (LoadAnswer::NotFound, Ok(None)) => Outcome::nothing_stored(),
                    (LoadAnswer::Fails, Err(slabcache::LoadError::Failed(e))) => {
                        assert_eq!(*e, "the source failed");
                        Outcome::nothing_stored()
                    }
                    (answer, result) => panic!("loader answered {answer:?}, got {result:?}"),
                }
            }
            Op::InsertTagged { key, value, tags } => {
                let (key, value) = (self.key(*key), value_bytes(value));
                let names: Vec<&[u8]> = (0..TAGS.len())
                    .filter(|bit| tags & (1 << bit) != 0)
                    .map(|bit| TAGS[bit])
                    .collect();
                let ttl = self.default_ttl;
                let version = self
                    .cache
                    .insert_tagged(&key, &value, ttl, &names)
                    .unwrap_or_else(|e| panic!("insert_tagged of {}: {e:?}", describe(&key)));
                let outcome = self.wrote(key.clone(), value, version, ttl);
                if let Some(entry) = self.model.get_mut(&key) {
                    entry.tags = tags & ((1 << TAGS.len()) - 1);
                }
                outcome
            }
            Op::InvalidateTag { tag } => {
                let bit = 1 << (usize::from(*tag) % TAGS.len());
                let tagged: Vec<Vec<u8>> = self
                    .model
                    .iter()
                    .filter(|(_, e)| e.tags & bit != 0)
                    .map(|(k, _)| k.clone())
                    .collect();
                let removed = self
                    .cache
                    .invalidate_tag(TAGS[usize::from(*tag) % TAGS.len()]);
                assert_eq!(
                    removed,
                    tagged.len() as u64,
                    "entries the invalidation ended"
                );
                for key in &tagged {
                    self.model.remove(key);
                }
                Outcome::nothing_stored()
            }
            Op::Advance { millis } => {
                let by = Duration::from_millis(u64::from(*millis));
                self.clock.advance(by);
                self.now += nanos(by);
                Outcome::nothing_stored()
            }
        }
    }

    /// Compares the cache's entries with the model after an operation, and its accounting.
    fn reconcile(&mut self, outcome: Outcome, before: &Stats) {
        self.settle_expiry();
        let yielded = common::check_iter(&self.cache, &self.model, describe);
        let vanished = common::vanished(&self.model, &yielded);
        for key in &vanished {
            assert!(
                outcome.may_evict,
                "{} vanished in an operation that cannot evict",
                describe(key)
            );
            assert!(
                outcome.wrote.as_ref() != Some(key),
                "{} vanished in the write that stored it",
                describe(key)
            );
            self.model.remove(key);
        }
        let stats = self.cache.stats();
        common::check_bounds(&self.cache, &stats, self.max_bytes, self.max_entries);
        // Expired entries not yet reclaimed count as resident but are not yielded.
        assert!(
            stats.entries >= yielded.keys.len() as u64,
            "{} entries counted, {} yielded",
            stats.entries,
            yielded.keys.len()
        );
        assert!(
            stats.payload_bytes >= yielded.payload,
            "{} payload bytes counted, {} yielded",
            stats.payload_bytes,
            yielded.payload
        );
        let evicted = stats.evictions - before.evictions;
        let lost = vanished.len() as u64 + outcome.gone;
        if outcome.may_evict {
            assert!(
                evicted >= lost,
                "{lost} live keys gone, {evicted} evictions counted"
            );
        } else {
            assert_eq!(
                evicted, 0,
                "evictions counted by an operation that writes nothing"
            );
        }
    }
}

fuzz_target!(|input: Input| {
    let mut harness = Harness::new(&input.config);
    for op in &input.ops {
        let before = harness.cache.stats();
        let outcome = harness.apply(op, &before);
        harness.reconcile(outcome, &before);
    }
});
