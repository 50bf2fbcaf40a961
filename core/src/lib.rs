//! # slabcache
//!
//! An in-process, memory-bounded, concurrent cache of byte keys and byte values.
//!
//! ```
//! use slabcache::{Cache, Error};
//!
//! let cache = Cache::builder().max_bytes(64 << 20).build()?;
//! let v1 = cache.insert(b"user:42", b"Ada")?;
//! assert_eq!(cache.get(b"user:42").as_deref(), Some(&b"Ada"[..]));
//!
//! // Optimistic concurrency: write only if nobody wrote since we read.
//! let v2 = cache.compare_and_swap(b"user:42", v1, b"Ada Lovelace")?;
//! assert!(v2 > v1);
//! assert_eq!(
//!     cache.compare_and_swap(b"user:42", v1, b"stale"),
//!     Err(Error::VersionMismatch { current: v2 })
//! );
//! # Ok::<(), Error>(())
//! ```
//!
//! ## Layers
//!
//! - `arena`: one anonymous mapping of `max_bytes`, cut into pages, each with a layout seqlock.
//! - `slab`: pages carved into chunks of size classes; free stacks; pages move between classes.
//! - `chunk`: one entry per chunk, read under a seqlock; rewritten in place only by an update
//!   under its bucket lock.
//! - `index`: hash buckets of atomic words; lock-free reads, a lock bit per bucket for writers.
//! - `policy`: per-class window / probation / protected rings with CLOCK second chances.
//! - `mapping`, `ttl`, `stats`, `rng`, `sync`: zeroed mappings, time, counters, randomness,
//!   and the one source of atomics.
//! - `cache`: the public API and the read and write paths that tie the layers together.

mod arena;
mod cache;
mod chunk;
mod error;
mod index;
#[cfg(all(test, slabcache_loom))]
mod loom_models;
mod mapping;
mod policy;
mod rng;
mod slab;
mod stats;
mod sync;
mod ttl;
mod version;

pub use cache::{Cache, CacheBuilder, Iter, DEFAULT_MAX_VALUE_BYTES, MAX_KEY_LEN};
pub use error::Error;
pub use stats::Stats;
pub use ttl::{Clock, ManualClock, SystemClock};
pub use version::Version;
