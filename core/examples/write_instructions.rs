//! Loops of writes, for counting the instructions of an insert with callgrind:
//! `scripts/get-instructions.sh` runs it for 1 and for 3 rounds and divides the difference
//! by the 2 × 2^18 writes between them, which leaves out the setup.
//!
//! `write_instructions [ROUNDS [new|update]]` (one round of new keys by default): a cache
//! limited to 10,000 entries of 16-byte keys and 64-byte values, filled; then ROUNDS rounds
//! of 2^18 writes. `new`: every write is a key never seen before, so each one takes a chunk,
//! admits the key and evicts a victim. `update`: the writes stride through the resident keys
//! (7,919 apart), each an in-place update.

use std::hint::black_box;

use slabcache::{Cache, Error};

const KEYS: u64 = 10_000;
const STRIDE: u64 = 7_919;
const WRITES: u64 = 1 << 18;

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let rounds: u64 = args.next().map_or(1, |r| {
        r.parse()
            .expect("usage: write_instructions [ROUNDS [new|update]]")
    });
    let update = match args.next().as_deref() {
        None | Some("new") => false,
        Some("update") => true,
        Some(other) => panic!("unknown mode {other}: new or update"),
    };
    let cache = Cache::builder()
        .max_bytes(64 << 20)
        .max_entries(KEYS)
        .build()?;
    // 16-byte keys built without allocating, so the loop counts the cache's work alone.
    let key = |i: u64| {
        let mut key = *b"key-\0\0\0\0\0\0\0\0\0\0\0\0";
        key[4..12].copy_from_slice(&i.to_le_bytes());
        key
    };
    for i in 0..KEYS {
        cache.insert(&key(i), &[7; 64])?;
    }
    let (mut next, mut checksum) = (0, 0u64);
    for i in 0..rounds * WRITES {
        let id = if update {
            next = (next + STRIDE) % KEYS;
            next
        } else {
            KEYS + i
        };
        let version = cache.insert(black_box(&key(id)), &[9; 64])?;
        checksum = checksum.wrapping_add(version.get());
    }
    println!("{checksum}");
    Ok(())
}
