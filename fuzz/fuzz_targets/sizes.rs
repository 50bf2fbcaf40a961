//! Fuzzing of entry sizes and the cache's accounting.
//!
//! Keys of 1 to 65,535 bytes and values of 0 to `max_value_bytes`, drawn mostly at the edges
//! of the engine's size classes (an entry that exactly fills a class's chunk, one word less,
//! one word more) and at the limits, plus sizes just past the limits, which must be refused
//! without changing anything. The input is a series of phases, each gathering its entries
//! around another size class, so the mix of sizes shifts during a run and pages must move
//! between classes.
//!
//! After every step the cache's accounting is compared with what it holds: the arena within
//! `max_bytes`; `stats().entries`, `len()` and the number of entries `iter()` yields equal;
//! `stats().payload_bytes` equal to their key and value bytes; every entry holding the value
//! and version last written to its key, and reading back through `get`. There is no TTL, so
//! every count is exact: entries leave only by removal or eviction, and the evictions counted
//! must be exactly the keys that vanished.

#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use slabcache::{Cache, Error, Stats, Version, MAX_KEY_LEN};

mod common;

/// The engine's chunk header and smallest chunk, in bytes (core/src/chunk.rs, core/src/slab.rs).
const HEADER_BYTES: usize = 40;
const MIN_CHUNK_BYTES: usize = HEADER_BYTES + 8;
const KEY_WORDS_MAX: usize = MAX_KEY_LEN.div_ceil(8);

#[derive(Arbitrary, Debug)]
struct Input {
    limit: ValueLimit,
    /// Whole pages of arena, 1 to 4.
    pages: u8,
    /// Bytes of `max_bytes` beyond the whole pages (fewer than a page, so unused).
    spare: u32,
    /// `max_entries`, 1 to 256, if set.
    max_entries: Option<u8>,
    phases: Vec<Phase>,
}

/// `max_value_bytes`: small ones, and those that make the largest entry exactly fill a 128 KiB
/// page, just overflow it (256 KiB pages), or need 512 KiB pages.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum ValueLimit {
    Zero,
    One,
    Word,
    Hundred,
    FourKiB,
    FillsPage,
    OverPage,
    Large,
}

impl ValueLimit {
    fn bytes(self) -> usize {
        match self {
            ValueLimit::Zero => 0,
            ValueLimit::One => 1,
            ValueLimit::Word => 8,
            ValueLimit::Hundred => 100,
            ValueLimit::FourKiB => 4096,
            ValueLimit::FillsPage => (128 << 10) - bytes_needed(MAX_KEY_LEN, 0),
            ValueLimit::OverPage => (128 << 10) - bytes_needed(MAX_KEY_LEN, 0) + 1,
            ValueLimit::Large => 200_000,
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Phase {
    /// The size class this phase's entries gather around.
    focus: u8,
    /// How many classes either side of the focus they spread over.
    spread: u8,
    steps: Vec<Step>,
}

#[derive(Arbitrary, Debug)]
enum Step {
    /// A key shaped by `shape` (new, or one of that length written before).
    Write(Shape),
    /// A key present in the model (by its rank), with a value shaped anew.
    Rewrite {
        which: u16,
        shape: Shape,
    },
    /// A key present in the model, by its rank.
    Remove {
        which: u16,
    },
    Limit(Limit),
    Clear,
}

/// An entry sized against one size class.
#[derive(Arbitrary, Debug)]
struct Shape {
    /// Class offset from the phase's focus, within its spread.
    class: i8,
    fit: Fit,
    /// The key's share of the entry's words, from the shortest key to the longest.
    key_share: u8,
    /// Bytes short of a whole last word, for the key and the value (taken modulo 8).
    key_slack: u8,
    value_slack: u8,
    /// Which of a few keys of the same length.
    id: u8,
}

#[derive(Arbitrary, Debug)]
enum Fit {
    /// Entry words fill the class's chunk.
    Exact,
    /// One word less.
    WordUnder,
    /// One word more: the next class.
    WordOver,
}

/// Sizes at and just past the limits.
#[derive(Arbitrary, Debug)]
enum Limit {
    EmptyKey {
        value_len: u16,
    },
    LongestKey {
        value_len: u16,
        id: u8,
    },
    KeyTooLarge {
        over: u8,
        value_len: u16,
    },
    LongestValue {
        key_len: u16,
        id: u8,
    },
    ValueTooLarge {
        key_len: u16,
        over: u16,
    },
    /// Reads and removes of an empty and an over-long key: they find nothing.
    ReadInvalidKeys,
}

/// One entry of the model.
struct Stored {
    value: Vec<u8>,
    version: Version,
}

impl common::Modelled for Stored {
    fn value(&self) -> &[u8] {
        &self.value
    }
    fn version(&self) -> Version {
        self.version
    }
}

/// Bytes of chunk an entry needs (core/src/chunk.rs `bytes_needed`).
fn bytes_needed(key_len: usize, value_len: usize) -> usize {
    HEADER_BYTES + key_len.div_ceil(8) * 8 + value_len.div_ceil(8) * 8
}

/// The chunk sizes of the size classes for pages of `page` bytes, computed as
/// core/src/slab.rs `size_classes` does. Should they drift apart, the sizes drawn here stop
/// landing exactly on the edges of the classes; the checks stay right.
fn class_sizes(page: usize, max_item: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut per_page = page / MIN_CHUNK_BYTES;
    loop {
        let bytes = (page / per_page) & !7;
        sizes.push(bytes);
        if bytes >= max_item {
            return sizes;
        }
        per_page = (per_page - 1).min(page.div_ceil(bytes + bytes / 4));
    }
}

/// Key `id` of `len` bytes: its first byte tells apart keys of one length.
fn key_bytes(len: usize, id: u8) -> Vec<u8> {
    let mut key = vec![(len as u8) ^ 0xa5; len];
    if let Some(first) = key.first_mut() {
        *first = id % 4;
    }
    key
}

/// A value of `len` bytes that differs from write to write (`seed` numbers the write).
fn value_bytes(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(31) ^ seed.wrapping_mul(0x9e37_79b9)).to_le_bytes()[0])
        .collect()
}

/// The errors an insert of these lengths may return (any of them when several apply), or
/// none if it must succeed.
fn size_errors(key_len: usize, value_len: usize, max_value: usize) -> Vec<Error> {
    let mut errors = Vec::new();
    if key_len == 0 {
        errors.push(Error::EmptyKey);
    }
    if key_len > MAX_KEY_LEN {
        errors.push(Error::KeyTooLarge {
            len: key_len,
            max: MAX_KEY_LEN,
        });
    }
    if value_len > max_value {
        errors.push(Error::ValueTooLarge {
            len: value_len,
            max: max_value,
        });
    }
    errors
}

struct Harness {
    cache: Cache,
    max_bytes: u64,
    max_value: usize,
    max_entries: Option<u64>,
    classes: Vec<usize>,
    /// Exactly the cache's entries, between steps.
    model: BTreeMap<Vec<u8>, Stored>,
    /// The last version written to each key, ever.
    last_version: BTreeMap<Vec<u8>, Version>,
    writes: u32,
}

impl Harness {
    fn new(input: &Input) -> Self {
        let max_value = input.limit.bytes();
        let max_item = bytes_needed(MAX_KEY_LEN, max_value);
        let page = max_item.next_power_of_two();
        let spare = u64::from(input.spare) % page as u64;
        let max_bytes = page as u64 * (1 + u64::from(input.pages % 4)) + spare;
        let max_entries = input.max_entries.map(|n| 1 + u64::from(n));
        let mut builder = Cache::builder()
            .max_bytes(max_bytes)
            .max_value_bytes(max_value);
        if let Some(max) = max_entries {
            builder = builder.max_entries(max);
        }
        Harness {
            cache: builder.build().expect("a valid configuration builds"),
            max_bytes,
            max_value,
            max_entries,
            classes: class_sizes(page, max_item),
            model: BTreeMap::new(),
            last_version: BTreeMap::new(),
            writes: 0,
        }
    }

    /// Key and value lengths for `shape` in a phase centred on class `focus`.
    fn lengths(&self, shape: &Shape, focus: u8, spread: u8) -> (usize, usize) {
        let classes = self.classes.len() as i64;
        let spread = i64::from(spread) % 4;
        let offset = i64::from(shape.class).rem_euclid(2 * spread + 1) - spread;
        let class = (i64::from(focus) % classes + offset).clamp(0, classes - 1) as usize;
        let class_words = self.classes[class] / 8;
        // Header words aside; at least one word, for the key (the smallest class has no
        // smaller entry).
        let words = match shape.fit {
            Fit::Exact => class_words,
            Fit::WordUnder => class_words - 1,
            Fit::WordOver => class_words + 1,
        }
        .saturating_sub(HEADER_BYTES / 8)
        .max(1);
        // Enough key words that the value fits the limit, where the key can take them.
        let key_min = words.saturating_sub(self.max_value / 8).max(1);
        let key_max = words.min(KEY_WORDS_MAX);
        let key_words = if key_min >= key_max {
            key_max
        } else {
            key_min + (key_max - key_min) * usize::from(shape.key_share) / 255
        };
        let value_words = words - key_words;
        let key_len = (key_words * 8).saturating_sub(usize::from(shape.key_slack % 8));
        let value_len = (value_words * 8).saturating_sub(usize::from(shape.value_slack % 8));
        (key_len.max(1), value_len)
    }

    /// Inserts `key` with a fresh value of `value_len` bytes and checks the outcome; returns
    /// whether the insert succeeded.
    fn insert(&mut self, key: Vec<u8>, value_len: usize) -> bool {
        self.writes += 1;
        let value = value_bytes(value_len, self.writes);
        let before = self.cache.stats();
        let result = self.cache.insert(&key, &value);
        let errors = size_errors(key.len(), value.len(), self.max_value);
        let version = match result {
            Ok(version) => version,
            Err(e) => {
                assert!(
                    errors.contains(&e),
                    "insert of a {}-byte key and a {}-byte value refused with {e:?}; \
                     acceptable: {errors:?}",
                    key.len(),
                    value.len()
                );
                assert_eq!(
                    self.cache.stats(),
                    before,
                    "a refused insert changed the stats"
                );
                return false;
            }
        };
        assert!(
            errors.is_empty(),
            "insert of a {}-byte key and a {}-byte value succeeded; expected one of {errors:?}",
            key.len(),
            value.len()
        );
        if let Some(last) = self.last_version.insert(key.clone(), version) {
            assert!(
                version > last,
                "a write returned {version:?}, not above the key's earlier {last:?}"
            );
        }
        let was_present = self.model.contains_key(&key);
        let after = self.cache.stats();
        let (inserts, updates) = (
            after.inserts - before.inserts,
            after.updates - before.updates,
        );
        assert_eq!(inserts + updates, 1, "a write counts one insert or update");
        assert!(was_present || inserts == 1, "a new key counts as an insert");
        // An update that had to move its key to another class may evict the key itself
        // while taking the new chunk; the write then stores it anew, as an insert.
        let self_evicted = u64::from(was_present && inserts == 1);
        self.model.insert(key.clone(), Stored { value, version });
        self.reconcile(Some(&key), &before, self_evicted);
        true
    }

    fn nth_key(&self, which: u16) -> Option<Vec<u8>> {
        match self.model.len() {
            0 => None,
            n => self.model.keys().nth(usize::from(which) % n).cloned(),
        }
    }

    fn step(&mut self, step: &Step, focus: u8, spread: u8) {
        match step {
            Step::Write(shape) => {
                let (key_len, value_len) = self.lengths(shape, focus, spread);
                self.insert(key_bytes(key_len, shape.id), value_len);
            }
            Step::Rewrite { which, shape } => {
                if let Some(key) = self.nth_key(*which) {
                    let (_, value_len) = self.lengths(shape, focus, spread);
                    self.insert(key, value_len.min(self.max_value));
                }
            }
            Step::Remove { which } => {
                if let Some(key) = self.nth_key(*which) {
                    let before = self.cache.stats();
                    assert!(self.cache.remove(&key), "remove of a present key");
                    self.model.remove(&key);
                    self.reconcile(None, &before, 0);
                }
            }
            Step::Limit(limit) => self.limit(limit),
            Step::Clear => {
                let before = self.cache.stats();
                self.cache.clear();
                self.model.clear();
                self.reconcile(None, &before, 0);
            }
        }
    }

    fn limit(&mut self, limit: &Limit) {
        let max_value = self.max_value;
        let len_up_to = |len: u16| usize::from(len) % (max_value + 1);
        match limit {
            Limit::EmptyKey { value_len } => {
                self.insert(Vec::new(), len_up_to(*value_len));
            }
            Limit::LongestKey { value_len, id } => {
                self.insert(key_bytes(MAX_KEY_LEN, *id), len_up_to(*value_len));
            }
            Limit::KeyTooLarge { over, value_len } => {
                let key = key_bytes(MAX_KEY_LEN + 1 + usize::from(*over % 8), 0);
                self.insert(key, len_up_to(*value_len));
            }
            Limit::LongestValue { key_len, id } => {
                let key = key_bytes(usize::from(*key_len).max(1), *id);
                self.insert(key, max_value);
            }
            Limit::ValueTooLarge { key_len, over } => {
                let key = key_bytes(usize::from(*key_len).max(1), 0);
                self.insert(key, max_value + 1 + usize::from(*over % 64));
            }
            Limit::ReadInvalidKeys => {
                let before = self.cache.stats();
                for key in [Vec::new(), key_bytes(MAX_KEY_LEN + 1, 0)] {
                    assert_eq!(
                        self.cache.get(&key),
                        None,
                        "get of a {}-byte key",
                        key.len()
                    );
                    assert!(
                        !self.cache.contains(&key),
                        "contains a {}-byte key",
                        key.len()
                    );
                    assert!(
                        !self.cache.remove(&key),
                        "remove of a {}-byte key",
                        key.len()
                    );
                    let one = Version::new(1).expect("1 is a version");
                    assert_eq!(
                        self.cache.remove_if_version(&key, one),
                        Err(Error::NotFound),
                        "remove_if_version of a {}-byte key",
                        key.len()
                    );
                }
                let after = self.cache.stats();
                assert_eq!(after.misses - before.misses, 2, "misses of the two gets");
                assert_eq!(
                    Stats {
                        misses: before.misses,
                        ..after
                    },
                    before,
                    "reads of invalid keys changed the stats"
                );
            }
        }
    }

    /// Compares the cache with the model after a step that wrote `wrote` (if any): entries,
    /// values, versions and every count. Keys the cache no longer holds must have been
    /// evicted by that write (besides `self_evicted` evictions of the written key itself).
    fn reconcile(&mut self, wrote: Option<&[u8]>, before: &Stats, self_evicted: u64) {
        let yielded = common::check_iter(&self.cache, &self.model, |key| {
            format!("a {}-byte key", key.len())
        });
        let vanished = common::vanished(&self.model, &yielded);
        for key in &vanished {
            assert!(
                wrote.is_some(),
                "a {}-byte key vanished in a step that writes nothing",
                key.len()
            );
            assert!(
                wrote != Some(key.as_slice()),
                "the {}-byte key just written vanished",
                key.len()
            );
            self.model.remove(key);
        }
        let stats = self.cache.stats();
        common::check_bounds(&self.cache, &stats, self.max_bytes, self.max_entries);
        // No TTL here: every entry the cache counts is one `iter` yields.
        assert_eq!(
            stats.entries,
            yielded.keys.len() as u64,
            "stats.entries against the entries iter yields"
        );
        assert_eq!(
            stats.payload_bytes, yielded.payload,
            "stats.payload_bytes against iter"
        );
        assert_eq!(
            stats.evictions - before.evictions,
            vanished.len() as u64 + self_evicted,
            "evictions counted against keys gone"
        );
        for (key, stored) in &self.model {
            let got = self.cache.get(key);
            assert!(
                got.as_deref() == Some(stored.value.as_slice()),
                "get of a present {}-byte key: {:?} bytes, last written {} bytes",
                key.len(),
                got.map(|v| v.len()),
                stored.value.len()
            );
        }
    }
}

fuzz_target!(|input: Input| {
    let mut harness = Harness::new(&input);
    for phase in &input.phases {
        for step in &phase.steps {
            harness.step(step, phase.focus, phase.spread);
        }
    }
});
