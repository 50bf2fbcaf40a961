//! A loop of `Cache::get_into` hits, for counting the instructions of a get with callgrind:
//! `scripts/get-instructions.sh` runs it for 1 and for 3 rounds and divides the difference
//! by the 2 × 2^20 gets between them, which leaves out the setup.
//!
//! `get_instructions [ROUNDS [--track-hot-keys]]` (one round by default): 10,000 resident keys of 16 bytes with 64-byte
//! values, then ROUNDS rounds of 2^20 gets that stride through the keys (7,919 keys apart, so
//! consecutive gets land in unrelated index buckets); with `--track-hot-keys`, on a cache built
//! with `track_hot_keys(true)`.

use std::hint::black_box;

use slabcache::{Cache, Error};

const KEYS: usize = 10_000;
const STRIDE: usize = 7_919;
const LOOKUPS: usize = 1 << 20;

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    // Without arguments (as the test script runs every example): one round, no tracking.
    let rounds: usize = args.next().map_or(1, |r| {
        r.parse()
            .expect("usage: get_instructions [ROUNDS [--track-hot-keys]]")
    });
    let track = args.next().as_deref() == Some("--track-hot-keys");
    let cache = Cache::builder()
        .max_bytes(64 << 20)
        .track_hot_keys(track)
        .build()?;
    let keys: Vec<Vec<u8>> = (0..KEYS)
        .map(|i| format!("key-{i:012}").into_bytes())
        .collect();
    for key in &keys {
        cache.insert(key, &[7; 64])?;
    }
    let mut buf = Vec::with_capacity(256);
    let (mut next, mut checksum) = (0, 0u64);
    for _ in 0..rounds * LOOKUPS {
        let version = cache
            .get_into(black_box(&keys[next]), &mut buf)
            .expect("every key was inserted");
        checksum = checksum.wrapping_add(version.get());
        next = (next + STRIDE) % KEYS;
    }
    println!("{checksum}");
    Ok(())
}
