//! Single-thread latency of the engine's hot paths, with 1,000,000 entries resident.
//!
//! Keys are 16 bytes and values 64 bytes. The cache is sized so every entry fits (512 MiB
//! arena, 128 KiB pages, no entry limit), and the bench checks that all of them are resident
//! before measuring anything: an eviction during loading would turn the "hit" benches into
//! something else.
//!
//! Each bench runs under two access patterns, each a precomputed array of positions walked
//! cyclically (read sequentially, so walking it costs next to nothing):
//!
//! - `uniform`: every resident key once, shuffled. Every operation lands on a cold bucket and
//!   a cold chunk: this measures the memory system (a dependent DRAM load costs 150-250 ns on
//!   the 2-vCPU machines this project runs on) more than the engine.
//! - `zipf-0.99`: keys drawn by a Zipf law of exponent 0.99 over the same million, the skew of
//!   real cache traffic and of the throughput figures in docs/performance.md. Hot keys are
//!   scattered over the index and the arena (the key array is shuffled), so the CPU cache
//!   helps only as much as the skew lets it.
//! - `hot-1k`: 1,024 resident keys in turn, everything they touch in the CPU cache: the
//!   engine's own cost per operation.

// `criterion_group!` defines a public function it gives no doc comment.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use slabcache::{Cache, Version};
use slabcache_bench::rng::Rng;
use slabcache_bench::zipf::Zipf;

const ENTRIES: usize = 1_000_000;
const VALUE_LEN: usize = 64;

/// `k:` and 14 digits: 16 bytes.
fn key(prefix: &[u8; 2], i: usize) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..2].copy_from_slice(prefix);
    let mut x = i;
    for d in k[2..].iter_mut().rev() {
        *d = b'0' + (x % 10) as u8;
        x /= 10;
    }
    k
}

fn value(i: usize, generation: u8) -> [u8; VALUE_LEN] {
    let mut v = [generation; VALUE_LEN];
    v[..8].copy_from_slice(&(i as u64).to_le_bytes());
    v
}

/// The resident keys in a shuffled order, with each key's current version alongside.
struct Resident {
    cache: Cache,
    keys: Vec<[u8; 16]>,
    versions: Vec<Version>,
}

fn load() -> Resident {
    let cache = Cache::builder()
        .max_bytes(512 << 20)
        .max_value_bytes(4096)
        .build()
        .expect("build the bench cache");
    let mut order: Vec<usize> = (0..ENTRIES).collect();
    Rng::new(0xbe_9c4).shuffle(&mut order);
    let keys: Vec<[u8; 16]> = order.iter().map(|&i| key(b"k:", i)).collect();
    let versions: Vec<Version> = order
        .iter()
        .zip(&keys)
        .map(|(&i, k)| cache.insert(k, &value(i, 0)).expect("insert while loading"))
        .collect();
    assert_eq!(
        cache.len(),
        ENTRIES,
        "every entry must be resident before measuring"
    );
    Resident {
        cache,
        keys,
        versions,
    }
}

/// The position after `i` in a cyclic walk of `n` (a compare, not a division: the loops
/// measured are a few nanoseconds long).
#[inline]
fn step(i: usize, n: usize) -> usize {
    if i + 1 == n {
        0
    } else {
        i + 1
    }
}

/// Samples per access pattern; the pattern array is walked cyclically and read sequentially.
const PATTERN_LEN: usize = 1 << 22;

/// Positions into the resident key array, in the order the measured loop visits them.
fn patterns() -> Vec<(&'static str, Vec<u32>)> {
    let mut uniform: Vec<u32> = (0..ENTRIES as u32).collect();
    Rng::new(0x0a11).shuffle(&mut uniform);
    // Zipf over ranks; the key array is already shuffled, so hot keys are scattered over the
    // index and the arena as they would be in a real cache.
    let zipf = Zipf::new(ENTRIES as u64, 0.99);
    let mut rng = Rng::new(0x21bf);
    let skewed = (0..PATTERN_LEN)
        .map(|_| (zipf.sample(&mut rng) - 1) as u32)
        .collect();
    // A thousand keys in turn: everything they touch stays in the CPU cache, so this is the
    // engine's own cost per operation, with the memory system out of the picture.
    let hot = uniform[..1024].to_vec();
    vec![("uniform", uniform), ("zipf-0.99", skewed), ("hot-1k", hot)]
}

fn engine(c: &mut Criterion) {
    let Resident {
        cache,
        keys,
        mut versions,
    } = load();

    for (pattern, order) in patterns() {
        let mut group = c.benchmark_group(format!("engine/{pattern}"));
        let n = order.len();
        let at = |i: usize| order[i] as usize;

        group.bench_function("get_hit_vec", |b| {
            let mut i = 0;
            b.iter(|| {
                let v = cache.get(black_box(&keys[at(i)]));
                i = step(i, n);
                black_box(v)
            })
        });

        // What read-through adds to a hit: the loader is never called.
        group.bench_function("get_or_load_hit", |b| {
            let mut i = 0;
            b.iter(|| {
                let v = cache.get_or_load(black_box(&keys[at(i)]), |_| {
                    Ok::<_, std::convert::Infallible>(None)
                });
                i = step(i, n);
                black_box(v)
            })
        });

        group.bench_function("get_hit_into", |b| {
            let mut buf = Vec::with_capacity(VALUE_LEN);
            let mut i = 0;
            b.iter(|| {
                let version = cache.get_into(black_box(&keys[at(i)]), &mut buf);
                i = step(i, n);
                black_box((version, buf.len()))
            })
        });

        // Absent keys, hashed like the resident ones: a miss still walks a real bucket.
        let absent: Vec<[u8; 16]> = (0..ENTRIES).map(|i| key(b"m:", i)).collect();
        group.bench_function("get_miss", |b| {
            let mut buf = Vec::with_capacity(VALUE_LEN);
            let mut i = 0;
            b.iter(|| {
                let version = cache.get_into(black_box(&absent[at(i)]), &mut buf);
                i = step(i, n);
                black_box(version)
            })
        });
        drop(absent);

        // Overwrites of resident keys: a fresh chunk of the same class each time, the old one
        // retired, so the cache stays at 1M entries and never evicts.
        let new_value = value(7, 1);
        group.bench_function("insert_update", |b| {
            let mut i = 0;
            b.iter(|| {
                let version = cache.insert(black_box(&keys[at(i)]), black_box(&new_value));
                i = step(i, n);
                black_box(version)
            })
        });

        // Versions changed under the insert bench; read them back before the CAS bench.
        for (k, v) in keys.iter().zip(versions.iter_mut()) {
            *v = cache.get_versioned(k).expect("still resident").1;
        }
        group.bench_function("compare_and_swap", |b| {
            let mut i = 0;
            b.iter(|| {
                let k = at(i);
                let next = cache
                    .compare_and_swap(black_box(&keys[k]), versions[k], black_box(&new_value))
                    .expect("the expected version is current");
                versions[k] = next;
                i = step(i, n);
            })
        });
        group.finish();
    }

    let stats = cache.stats();
    assert_eq!(stats.evictions, 0, "the bench must not evict: {stats:?}");
    assert_eq!(cache.len(), ENTRIES);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = engine
}
criterion_main!(benches);
