//! Keys and values: the caches under test and their keys, and the values the threads write,
//! which name their write and carry a checksum.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use slabcache::{Cache, ManualClock};

use crate::common::{hash64, mix64};
use crate::{
    Shape, DATA_KEYS, FIRST_PINNED, HEADER_WORDS, KEYS, MAX_LEN, MAX_VALUE_BYTES, MIN_LEN,
    PAGE_BYTES, PINNED_PAGES, THREADS,
};

/// The caches under test, and the keys' bytes (with the way back, for `iter`).
pub(crate) struct Caches {
    /// The data keys and the evictable counters, in far too little room.
    pub(crate) main: Cache,
    pub(crate) shape: Shape,
    /// The main cache's clock, in the expiring shape.
    pub(crate) clock: Option<Arc<ManualClock>>,
    /// The pinned counters.
    pub(crate) pinned: Cache,
    keys: Vec<Vec<u8>>,
    numbers: HashMap<Vec<u8>, usize>,
}

impl Caches {
    pub(crate) fn new(shape: Shape) -> Caches {
        let clock = shape.expiring.then(|| Arc::new(ManualClock::new()));
        let mut main = Cache::builder()
            .max_bytes(shape.pages * PAGE_BYTES)
            .max_value_bytes(MAX_VALUE_BYTES)
            .max_entries(shape.max_entries)
            .policy_shards(shape.shards);
        if let Some(clock) = &clock {
            main = main.clock(clock.clone());
        }
        let main = main.build().expect("the main cache's settings are valid");
        let pinned = Cache::builder()
            .max_bytes(PINNED_PAGES * PAGE_BYTES)
            .max_value_bytes(MAX_VALUE_BYTES)
            .build()
            .expect("the pinned counters' cache settings are valid");
        let keys: Vec<Vec<u8>> = (0..KEYS)
            .map(|key| {
                let mut k = if is_counter(key) {
                    format!("stress:counter:{key}:")
                } else {
                    format!("stress:data:{key}:")
                }
                .into_bytes();
                // Keys of several lengths, so that one value length maps to several classes.
                k.resize(k.len() + key % 11 * 3, b'~');
                k
            })
            .collect();
        let numbers = keys.iter().cloned().zip(0..).collect();
        Caches {
            main,
            shape,
            clock,
            pinned,
            keys,
            numbers,
        }
    }

    /// The cache that holds `key`.
    pub(crate) fn of(&self, key: usize) -> &Cache {
        if key >= FIRST_PINNED {
            &self.pinned
        } else {
            &self.main
        }
    }

    pub(crate) fn key(&self, key: usize) -> &[u8] {
        &self.keys[key]
    }

    pub(crate) fn number(&self, bytes: &[u8]) -> Option<usize> {
        self.numbers.get(bytes).copied()
    }
}

pub(crate) fn is_counter(key: usize) -> bool {
    key >= DATA_KEYS
}

/// The length data key `key` writes most of the time: spread log-uniformly over
/// `MIN_LEN..=MAX_LEN` across the keys.
pub(crate) fn home_len(key: usize) -> usize {
    let span = (MAX_LEN as f64 / MIN_LEN as f64).powf(key as f64 / (DATA_KEYS - 1) as f64);
    (MIN_LEN as f64 * span) as usize
}

/// A counter's value length: it changes with the count, so some increments change class.
pub(crate) fn counter_len(count: u64) -> usize {
    MIN_LEN + 8 * (count % 11) as usize + (count % 3) as usize
}

/// The write that produced a value: its writer thread and that thread's sequence number.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Stamp {
    pub(crate) writer: u8,
    pub(crate) seq: u64,
}

impl fmt::Debug for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "w{}#{}", self.writer, self.seq)
    }
}

/// The epoch a counter creation starts: named by the creating write, never 0.
pub(crate) fn epoch_of(creation: Stamp) -> u64 {
    (u64::from(creation.writer) + 1) << 56 | creation.seq
}

/// What a value says about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Content {
    pub(crate) stamp: Stamp,
    pub(crate) len: u32,
    /// The counter epoch, or 0 for a data value.
    pub(crate) epoch: u64,
    pub(crate) count: u64,
}

/// The one value the write `content.stamp` writes to `key`.
pub(crate) fn encode(key: usize, content: Content) -> Vec<u8> {
    let len = content.len as usize;
    let mut value = Vec::with_capacity(len + 8);
    let header = [
        0,
        key as u64,
        u64::from(content.stamp.writer),
        content.stamp.seq,
        content.epoch,
        content.count,
    ];
    for word in header {
        value.extend_from_slice(&word.to_le_bytes());
    }
    let filler = mix64(content.stamp.seq ^ u64::from(content.stamp.writer) << 56);
    let mut i = 0;
    while value.len() < len {
        value.extend_from_slice(&mix64(filler.wrapping_add(i)).to_le_bytes());
        i += 1;
    }
    value.truncate(len);
    let checksum = hash64(key as u64, &value[8..]);
    value[..8].copy_from_slice(&checksum.to_le_bytes());
    value
}

fn word(value: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(value[i * 8..i * 8 + 8].try_into().expect("8 bytes"))
}

/// Reads a value back from `key`: what it says about itself if it is whole and is exactly
/// what its header's write wrote, else a description of what was seen.
pub(crate) fn decode(key: usize, value: &[u8]) -> Result<Content, String> {
    if value.len() < MIN_LEN {
        return Err(format!(
            "a {}-byte value, shorter than any written ({MIN_LEN}): {value:02x?}",
            value.len()
        ));
    }
    let header: Vec<String> = (0..HEADER_WORDS)
        .map(|i| format!("{:#x}", word(value, i)))
        .collect();
    let checksum = hash64(key as u64, &value[8..]);
    if word(value, 0) != checksum {
        return Err(format!(
            "a torn or foreign {}-byte value: checksum {:#x}, but the bytes hash to {checksum:#x} \
             for this key (header words {header:?})",
            value.len(),
            word(value, 0)
        ));
    }
    let (named_key, writer) = (word(value, 1), word(value, 2));
    if named_key != key as u64 || writer >= THREADS as u64 {
        return Err(format!(
            "a value naming key {named_key}, writer {writer} (header words {header:?})"
        ));
    }
    let content = Content {
        stamp: Stamp {
            writer: writer as u8,
            seq: word(value, 3),
        },
        len: value.len() as u32,
        epoch: word(value, 4),
        count: word(value, 5),
    };
    let expected = encode(key, content);
    match expected.iter().zip(value).position(|(a, b)| a != b) {
        None => Ok(content),
        Some(at) => Err(format!(
            "a {}-byte value whose checksum holds but whose byte {at} differs from what write \
             {:?} wrote (header words {header:?})",
            value.len(),
            content.stamp
        )),
    }
}
