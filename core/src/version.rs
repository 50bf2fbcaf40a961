//! [`Version`]: the number every write returns, and what compare-and-swap compares.
//!
//! The cache takes versions from striped counters under the key's bucket lock (see
//! [`docs/design.md`](../../docs/design.md)); this module only owns the type and its rule: a
//! version is never 0.

use std::num::NonZeroU64;

/// The version of a stored value: never 0, and strictly increasing for each key over the life
/// of the cache, across removal, eviction, expiry and reinsertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(NonZeroU64);

impl Version {
    /// `None` for 0, which is never a version.
    pub fn new(raw: u64) -> Option<Version> {
        NonZeroU64::new(raw).map(Version)
    }

    /// The raw number, for storage or for crossing an FFI boundary.
    pub fn get(self) -> u64 {
        self.0.get()
    }
}
