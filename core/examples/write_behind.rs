//! Counters kept in a write-behind cache over a source that fails 30% of its calls: each
//! increment returns as soon as the cache and the write queue hold it, and a background
//! thread sends the queued writes to the source in batches, retrying failed ones. After a
//! `flush`, the source holds every increment.
//!
//! Each thread increments counters of its own (read, add one, write), so the counts are
//! exact; repeated writes of a counter waiting in the queue are coalesced into its latest.
//!
//! Run it with `cargo run -p slabcache --example write_behind`.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use slabcache::{Backed, Cache, Retry, Source, WriteBehind, WriteMode};

const THREADS: usize = 4;
const COUNTERS_PER_THREAD: usize = 4;
const INCREMENTS_PER_THREAD: u64 = 5_000;
const FAILURE_RATE: f64 = 0.3;

/// A store of counters whose every call fails with probability `FAILURE_RATE`, drawn from a
/// seeded generator.
struct FlakyStore {
    rows: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
    draws: Mutex<u64>,
}

impl FlakyStore {
    fn new(seed: u64) -> Self {
        FlakyStore {
            rows: Mutex::default(),
            draws: Mutex::new(seed),
        }
    }

    /// Fails this call with probability `FAILURE_RATE` (xorshift64* draws).
    fn call(&self) -> Result<(), String> {
        let mut x = self.draws.lock().unwrap();
        *x ^= *x >> 12;
        *x ^= *x << 25;
        *x ^= *x >> 27;
        let draw = x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        if (draw as f64) < FAILURE_RATE * (1u64 << 53) as f64 {
            Err("the store is down".into())
        } else {
            Ok(())
        }
    }
}

impl Source for FlakyStore {
    type Error = String;

    fn load(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        self.call()?;
        Ok(self.rows.lock().unwrap().get(key).cloned())
    }

    fn store(&self, key: &[u8], value: &[u8]) -> Result<(), String> {
        self.store_batch(&[(key.to_vec(), value.to_vec())])
    }

    fn delete(&self, key: &[u8]) -> Result<(), String> {
        self.delete_batch(&[key.to_vec()])
    }

    // A batch is one call: it fails or succeeds whole.
    fn store_batch(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> Result<(), String> {
        self.call()?;
        let mut rows = self.rows.lock().unwrap();
        for (key, value) in entries {
            rows.insert(key.clone(), value.clone());
        }
        Ok(())
    }

    fn delete_batch(&self, keys: &[Vec<u8>]) -> Result<(), String> {
        self.call()?;
        let mut rows = self.rows.lock().unwrap();
        for key in keys {
            rows.remove(key);
        }
        Ok(())
    }
}

fn parse(value: Option<Vec<u8>>) -> u64 {
    value.map_or(0, |v| String::from_utf8(v).unwrap().parse().unwrap())
}

fn main() -> ExitCode {
    let cache = Arc::new(Cache::builder().max_bytes(16 << 20).build().unwrap());
    let counters = Backed::builder(cache, FlakyStore::new(0x5eed))
        .write_mode(WriteMode::Behind(WriteBehind {
            max_delay: Duration::from_millis(2),
            retry: Retry {
                initial_backoff: Duration::from_millis(1),
                max_backoff: Duration::from_millis(20),
                max_attempts: None, // retry until the store takes it
            },
            ..WriteBehind::default()
        }))
        .build()
        .unwrap();

    thread::scope(|s| {
        for t in 0..THREADS {
            let counters = &counters;
            s.spawn(move || {
                for n in 0..INCREMENTS_PER_THREAD {
                    let key = format!("counter:{t}:{}", n as usize % COUNTERS_PER_THREAD);
                    // A counter's first read loads it from the store, which may fail: retry.
                    let count = loop {
                        if let Ok(value) = counters.get(key.as_bytes()) {
                            break parse(value);
                        }
                    };
                    let next = (count + 1).to_string();
                    counters.put(key.as_bytes(), next.as_bytes()).unwrap();
                }
            });
        }
    });
    counters.flush();

    let rows = counters.source().rows.lock().unwrap().clone();
    let stored: u64 = rows.into_values().map(|v| parse(Some(v))).sum();
    let made = THREADS as u64 * INCREMENTS_PER_THREAD;
    let stats = counters.stats();
    println!(
        "{made} increments over a store failing {:.0}% of its calls; the store's counters add \
         up to {stored}",
        FAILURE_RATE * 100.0
    );
    println!(
        "{} writes reached the store, {} were coalesced into a later write of their counter, \
         {} failed batch attempts were retried, {} writes given up",
        stats.flushed, stats.coalesced, stats.retried, stats.failed
    );
    if stored == made {
        println!("no increment was lost");
        ExitCode::SUCCESS
    } else {
        println!("{} increments were lost", made.abs_diff(stored));
        ExitCode::FAILURE
    }
}
