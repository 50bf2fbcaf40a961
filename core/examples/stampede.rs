//! A hot key expiring under load: four threads read one key with a 100 ms TTL, in front of a
//! source that takes 1 ms per load, three ways:
//! - cache-aside (`get`, then load and `insert_with_ttl` on a miss): every reader that misses
//!   loads, so each expiry sends a herd of loads to the source;
//! - a `Backed` cache without stale-while-revalidate: one load per expiry (single-flight), but
//!   the readers wait for it;
//! - a `Backed` cache with stale-while-revalidate: one background load per expiry, and the
//!   readers are served the stale value meanwhile.
//!
//! Prints, for each, the loads per second that reached the source and the reads that missed
//! the cache and so waited for a load.
//! `slabcache-bench stampede` measures the same and more, with latency percentiles.
//!
//! Run it with `cargo run -p slabcache --example stampede`.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use slabcache::{Backed, Cache, Source};

const READERS: usize = 4;
const RUN: Duration = Duration::from_secs(1);
const TTL: Duration = Duration::from_millis(100);
const LOAD_TIME: Duration = Duration::from_millis(1);

/// A slow source of one hot value, counting the loads that reach it.
#[derive(Default)]
struct Slow {
    loads: AtomicU64,
}

impl Source for Slow {
    type Error = Infallible;

    fn load(&self, _: &[u8]) -> Result<Option<Vec<u8>>, Infallible> {
        self.loads.fetch_add(1, Ordering::Relaxed);
        thread::sleep(LOAD_TIME);
        Ok(Some(b"the hot value".to_vec()))
    }

    // Only reads happen here.
    fn store(&self, _: &[u8], _: &[u8]) -> Result<(), Infallible> {
        Ok(())
    }

    fn delete(&self, _: &[u8]) -> Result<(), Infallible> {
        Ok(())
    }
}

fn new_cache() -> Arc<Cache> {
    Arc::new(Cache::builder().max_bytes(16 << 20).build().unwrap())
}

/// Runs `read` on every reader thread for `RUN`; prints the loads per second that reached
/// the source, and how many reads missed `cache` and so waited for a load.
fn measure(what: &str, cache: &Cache, loads: &AtomicU64, read: impl Fn() + Sync) {
    read(); // the first load, before measuring
    let (loads_before, misses_before) = (loads.load(Ordering::Relaxed), cache.stats().misses);
    let started = Instant::now();
    thread::scope(|s| {
        for _ in 0..READERS {
            s.spawn(|| {
                while started.elapsed() < RUN {
                    read();
                }
            });
        }
    });
    let loads = loads.load(Ordering::Relaxed) - loads_before;
    println!(
        "{what:<36} {:>5.1} loads/s reached the source; {:>3} reads waited for one",
        loads as f64 / started.elapsed().as_secs_f64(),
        cache.stats().misses - misses_before
    );
}

fn main() {
    println!(
        "{READERS} threads reading one key, TTL {} ms, {} ms per load, {} s each:",
        TTL.as_millis(),
        LOAD_TIME.as_millis(),
        RUN.as_secs()
    );

    let (aside, source) = (new_cache(), Slow::default());
    measure(
        "cache-aside (get, insert on a miss)",
        &aside,
        &source.loads,
        || {
            if aside.get(b"hot").is_none() {
                let value = source.load(b"hot").unwrap().unwrap();
                aside.insert_with_ttl(b"hot", &value, Some(TTL)).unwrap();
            }
        },
    );

    let backed = Backed::builder(new_cache(), Slow::default())
        .ttl(TTL)
        .build()
        .unwrap();
    let (cache, loads) = (backed.cache(), &backed.source().loads);
    measure("Backed, no stale-while-revalidate", cache, loads, || {
        backed.get(b"hot").unwrap();
    });

    let backed = Backed::builder(new_cache(), Slow::default())
        .ttl(TTL)
        .stale_while_revalidate(Duration::from_secs(1))
        .build()
        .unwrap();
    let (cache, loads) = (backed.cache(), &backed.source().loads);
    measure("Backed, stale-while-revalidate", cache, loads, || {
        backed.get(b"hot").unwrap();
    });
    println!(
        "{:>36} ({} reads served stale while a background load ran)",
        "",
        backed.stats().stale_served
    );
}
