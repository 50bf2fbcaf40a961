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
//! ## Where to read on
//!
//! [`Cache`] is the whole API. How it works (the layers, the life of a get and of an insert,
//! the invariants and the lock order) is described once, in `docs/design.md` in the
//! repository; each module's doc says what it owns and links there for the rest.

// The README's Rust example runs with the doc tests, so it cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExamples;

// So do the examples of docs/patterns.md (one of which needs the `async` feature).
#[cfg(all(doctest, feature = "async"))]
#[doc = include_str!("../../docs/patterns.md")]
struct PatternExamples;

mod arena;
mod backed;
mod cache;
mod chunk;
mod error;
mod events;
mod hot;
mod index;
mod load;
#[cfg(all(test, slabcache_loom))]
mod loom_models;
mod mapping;
mod policy;
mod rng;
mod slab;
mod stats;
mod sync;
mod tags;
mod ticker;
mod ttl;
mod version;

pub use backed::{
    Backed, BackedBuilder, BackedError, BackedStats, Retry, Source, WhenFull, WriteBehind,
    WriteFailure, WriteMode,
};
pub use cache::{Cache, CacheBuilder, Iter, SharedIter, DEFAULT_MAX_VALUE_BYTES, MAX_KEY_LEN};
pub use error::Error;
pub use events::{Event, RemovalCause};
pub use load::{LoadError, LoadResult};
pub use stats::Stats;
pub use ttl::{Clock, ManualClock, SystemClock};
pub use version::Version;
