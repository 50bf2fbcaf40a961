//! The source of truth a [`Backed`](super::Backed) cache reads from and writes to.

use std::fmt;

/// A source of truth: a database, a service, a file store. Every method may be called from
/// several threads at once, and from the `Backed`'s own worker threads.
///
/// Stores and deletes must be idempotent (a failed batch is retried whole), and a store or
/// delete that returns `Ok` must be visible to every later `load`.
pub trait Source: Send + Sync + 'static {
    /// What the source reports when it fails.
    type Error: fmt::Display + fmt::Debug + Send + Sync + 'static;

    /// The value of `key`, or `None` when the source has no such key.
    fn load(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Self::Error>;

    /// Makes `value` the value of `key`.
    fn store(&self, key: &[u8], value: &[u8]) -> Result<(), Self::Error>;

    /// Removes `key` (succeeding when it is already absent).
    fn delete(&self, key: &[u8]) -> Result<(), Self::Error>;

    /// Stores several entries; the write-behind worker calls this with a batch. The default
    /// stores them one by one, stopping at the first error. Override it where the source has
    /// a cheaper bulk write.
    fn store_batch(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> Result<(), Self::Error> {
        entries.iter().try_for_each(|(k, v)| self.store(k, v))
    }

    /// Deletes several keys; the default deletes them one by one, stopping at the first
    /// error.
    fn delete_batch(&self, keys: &[Vec<u8>]) -> Result<(), Self::Error> {
        keys.iter().try_for_each(|k| self.delete(k))
    }
}
