//! The cost of a get hit from Rust: `Cache::get_into` of a 16-byte key and a 64-byte value,
//! on the cache, keys and lookup order that `ffi/bench/get_hit.c` uses through the C API; the
//! difference between the two is the C API's overhead. `scripts/ffi-test.sh --bench` runs
//! both (this one with `cargo run --release -p slabcache-ffi --example get_hit`).
//!
//! Prints one line: the median, min and max ns per get over `RUNS` runs.

use std::hint::black_box;
use std::time::Instant;

use slabcache::{Cache, Error};

// Keep these as in ffi/bench/get_hit.c.
const KEYS: u32 = 10_000;
const VALUE_LEN: u32 = 64;
const LOOKUPS: usize = 1 << 20;
const RUNS: usize = 11;

fn main() -> Result<(), Error> {
    let cache = Cache::builder().max_bytes(64 << 20).build()?;
    // Laid out as in C: the keys side by side, the order as 32-bit indices.
    let keys: Vec<[u8; 16]> = (0..KEYS)
        .map(|i| {
            format!("key-{i:012}")
                .into_bytes()
                .try_into()
                .expect("16 bytes")
        })
        .collect();
    for (i, key) in (0..KEYS).zip(&keys) {
        let value: Vec<u8> = (0..VALUE_LEN).map(|j| (i + j) as u8).collect();
        cache.insert(key, &value)?;
    }
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let order: Vec<u32> = (0..LOOKUPS)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % u64::from(KEYS)) as u32
        })
        .collect();

    let mut buf = Vec::with_capacity(256);
    let mut checksum = 0u64;
    // Run 0 warms up.
    let mut per_get: Vec<f64> = (0..=RUNS)
        .map(|_| {
            let start = Instant::now();
            for &i in &order {
                let version = cache
                    .get_into(black_box(&keys[i as usize]), &mut buf)
                    .expect("every key was inserted");
                checksum += buf.len() as u64 + version.get() + u64::from(buf[0]);
            }
            start.elapsed().as_nanos() as f64 / LOOKUPS as f64
        })
        .collect();
    per_get.remove(0);
    per_get.sort_by(f64::total_cmp);
    println!(
        "Rust Cache::get_into: median {:.1} ns/get (min {:.1}, max {:.1}; {RUNS} runs of \
         {LOOKUPS}; checksum {checksum})",
        per_get[RUNS / 2],
        per_get[0],
        per_get[RUNS - 1],
    );
    Ok(())
}
