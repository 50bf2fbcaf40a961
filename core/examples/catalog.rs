//! A product catalog cached in front of its database: several threads update prices while
//! others read them, once with write-through and once with delete-on-write (write-around).
//!
//! What "no stale read" means here, and what the example checks:
//! - after an update returns, a read of that product by the thread that made it sees its own
//!   price or one the database took later (never an older one);
//! - at the end, every product the cache holds has the database's price.
//!
//! Run it with `cargo run -p slabcache --example catalog`.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use slabcache::{Backed, Cache, Source, WriteMode};

const PRODUCTS: usize = 20;
const UPDATERS: usize = 4;
const READERS: usize = 4;
const UPDATES_PER_THREAD: usize = 2_000;

/// The database: every price each product has had, in the order it took them.
#[derive(Default)]
struct Database(Mutex<HashMap<Vec<u8>, Vec<Vec<u8>>>>);

impl Database {
    /// Where `price` stands in the history of `product` (later is newer).
    fn position(&self, product: &[u8], price: &[u8]) -> Option<usize> {
        let rows = self.0.lock().unwrap();
        rows.get(product)?.iter().position(|p| p == price)
    }
}

impl Source for Database {
    type Error = String;

    fn load(&self, product: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let rows = self.0.lock().unwrap();
        Ok(rows
            .get(product)
            .and_then(|history| history.last().cloned()))
    }

    fn store(&self, product: &[u8], price: &[u8]) -> Result<(), String> {
        let mut rows = self.0.lock().unwrap();
        rows.entry(product.to_vec())
            .or_default()
            .push(price.to_vec());
        Ok(())
    }

    fn delete(&self, product: &[u8]) -> Result<(), String> {
        self.0.lock().unwrap().remove(product);
        Ok(())
    }
}

fn product(i: usize) -> Vec<u8> {
    format!("product:{i:02}").into_bytes()
}

/// Runs the scenario in one write mode; returns the stale reads found.
fn run(mode: WriteMode) -> u64 {
    let cache = Arc::new(Cache::builder().max_bytes(16 << 20).build().unwrap());
    let catalog = Backed::builder(cache, Database::default())
        .write_mode(mode.clone())
        .ttl(Duration::from_secs(60))
        .build()
        .unwrap();
    for i in 0..PRODUCTS {
        catalog.put(&product(i), b"1000 (opening price)").unwrap();
    }
    let stale = AtomicU64::new(0);
    let reads = AtomicU64::new(0);
    let updating = AtomicBool::new(true);
    thread::scope(|s| {
        for r in 0..READERS {
            let (catalog, reads, updating) = (&catalog, &reads, &updating);
            s.spawn(move || {
                let mut i = r;
                while updating.load(Ordering::Relaxed) {
                    catalog.get(&product(i % PRODUCTS)).unwrap();
                    reads.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            });
        }
        let updaters: Vec<_> = (0..UPDATERS)
            .map(|t| {
                let (catalog, stale) = (&catalog, &stale);
                s.spawn(move || {
                    for n in 0..UPDATES_PER_THREAD {
                        let key = product((t * 7 + n * 3) % PRODUCTS);
                        // Unique, so that its place in the database's history is known.
                        let price = format!("{} (updater {t}, update {n})", 900 + n % 200);
                        catalog.put(&key, price.as_bytes()).unwrap();
                        let seen = catalog.get(&key).unwrap().expect("the product exists");
                        let db = catalog.source();
                        if db.position(&key, &seen) < db.position(&key, price.as_bytes()) {
                            stale.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for updater in updaters {
            updater.join().unwrap();
        }
        updating.store(false, Ordering::Relaxed);
    });
    let mut cached = 0;
    for i in 0..PRODUCTS {
        let key = product(i);
        if catalog.cache().contains(&key) {
            cached += 1;
            let in_cache = catalog.get(&key).unwrap();
            if in_cache != catalog.source().load(&key).unwrap() {
                stale.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    let stale = stale.into_inner();
    println!(
        "{mode:?}: {} updates and {} reads; {stale} stale reads; {cached} of {PRODUCTS} products \
         cached at the end, each {} the database",
        UPDATERS * UPDATES_PER_THREAD,
        reads.into_inner(),
        if stale == 0 {
            "agreeing with"
        } else {
            "checked against"
        }
    );
    stale
}

fn main() -> ExitCode {
    let stale = run(WriteMode::Through) + run(WriteMode::Around);
    if stale == 0 {
        println!("no stale read");
        ExitCode::SUCCESS
    } else {
        println!("stale reads found");
        ExitCode::FAILURE
    }
}
