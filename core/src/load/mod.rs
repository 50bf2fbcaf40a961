//! Read-through with single-flight: [`Cache::get_or_load`] and its variants.
//!
//! A hit is a plain `get`. A miss joins the key's flight ([`flight`]): the first caller runs
//! its loader with no engine lock held, stores the value under a lease that any write or
//! remove of the key landing meanwhile breaks, and hands the outcome to every caller that
//! missed the key while it ran. Those callers wait without spinning. What each outcome does:
//!
//! | loader returns | cached | every caller gets |
//! |---|---|---|
//! | `Ok(Some(v))` | `v`, unless a write or remove of the key landed during the load | `Ok(Some(v))` |
//! | `Ok(None)` | nothing | `Ok(None)` |
//! | `Err(e)` | nothing | `Err(LoadError::Failed(e))`, `e` shared in an `Arc` |
//! | panics | nothing | `Err(LoadError::Panicked(message))` |
//!
//! A value the cache cannot hold (longer than `max_value_bytes`) is returned uncached.
//! Negative caching, refresh and stale-while-revalidate live in the source-backed layer
//! (`backed`), which runs its loads through the same flights.
//!
//! Why a lease rather than `insert_if_absent`: a key removed during the load (the classic
//! "update the database, then delete the cache entry" invalidation) is absent again when the
//! loader stores, and `insert_if_absent` would bring back the value read before the update.
//! Memcache's leases and docs/design.md ("Single-flight loads") tell the same story.

use std::any::Any;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::cache::Cache;
use crate::error::Error;
use crate::stats::Counter;
use crate::sync;

#[cfg(feature = "async")]
mod async_load;
pub(crate) mod flight;

pub(crate) use flight::Flights;
pub(crate) use flight::{Lead, Outcome, Purpose, Role};

/// Why `get_or_load` has no value to return.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadError<E> {
    /// The loader returned this error: this caller's loader, or the one it waited for (all
    /// the callers of one load share the error).
    Failed(Arc<E>),
    /// The loader panicked; the panic's message. The cache stays usable and caches nothing.
    Panicked(String),
    /// The loader called `get_or_load` for the key it is loading, on its own thread: waiting
    /// for itself would never end.
    Recursive,
    /// The cache refused the key (empty, or longer than [`MAX_KEY_LEN`](crate::MAX_KEY_LEN));
    /// the loader was not called.
    Cache(Error),
}

impl<E: fmt::Display> fmt::Display for LoadError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Failed(e) => write!(f, "the loader failed: {e}"),
            LoadError::Panicked(message) => write!(f, "the loader panicked: {message}"),
            LoadError::Recursive => f.write_str("the loader asked to load its own key"),
            LoadError::Cache(e) => write!(f, "{e}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for LoadError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Failed(e) => Some(&**e),
            LoadError::Cache(e) => Some(e),
            LoadError::Panicked(_) | LoadError::Recursive => None,
        }
    }
}

/// What `get_or_load` returns.
pub type LoadResult<E> = Result<Option<Vec<u8>>, LoadError<E>>;

impl Cache {
    /// The value of `key`; on a miss, the value `load` returns for it, stored with the
    /// default TTL. `load` gets the key and answers `Ok(Some(value))`, `Ok(None)` (the source
    /// has no such key; nothing is cached) or an error.
    ///
    /// Concurrent callers that miss the same key run one loader between them; the others
    /// wait for it (blocking their thread, without spinning) and get its answer, error or
    /// panic included. A write or remove of the key that lands while the loader runs wins:
    /// the loaded value is still returned, but not stored over it. No lock of the cache is
    /// held while `load` runs, so it may use the cache, except to load its own key
    /// ([`LoadError::Recursive`]). Callers whose error types differ do not share loads.
    ///
    /// ```
    /// use slabcache::Cache;
    ///
    /// let cache = Cache::builder().max_bytes(64 << 20).build()?;
    /// let load = |key: &[u8]| Ok::<_, std::io::Error>(Some(key.to_ascii_uppercase()));
    /// assert_eq!(cache.get_or_load(b"abc", load).unwrap().as_deref(), Some(&b"ABC"[..]));
    /// assert_eq!(cache.get(b"abc").as_deref(), Some(&b"ABC"[..])); // now cached
    /// # Ok::<(), slabcache::Error>(())
    /// ```
    #[inline]
    pub fn get_or_load<E, F>(&self, key: &[u8], load: F) -> LoadResult<E>
    where
        E: Send + Sync + 'static,
        F: FnOnce(&[u8]) -> Result<Option<Vec<u8>>, E>,
    {
        match self.get(key) {
            Some(value) => Ok(Some(value)),
            None => self.load_missing(key, self.default_ttl(), load),
        }
    }

    /// [`get_or_load`](Cache::get_or_load), storing a loaded value with `ttl` (`None`: never
    /// expires) in place of the default.
    #[inline]
    pub fn get_or_load_with_ttl<E, F>(
        &self,
        key: &[u8],
        ttl: Option<Duration>,
        load: F,
    ) -> LoadResult<E>
    where
        E: Send + Sync + 'static,
        F: FnOnce(&[u8]) -> Result<Option<Vec<u8>>, E>,
    {
        match self.get(key) {
            Some(value) => Ok(Some(value)),
            None => self.load_missing(key, ttl, load),
        }
    }

    /// A miss of `get_or_load`: out of line, so that a hit is a `get` and little more.
    #[inline(never)]
    fn load_missing<E, F>(&self, key: &[u8], ttl: Option<Duration>, load: F) -> LoadResult<E>
    where
        E: Send + Sync + 'static,
        F: FnOnce(&[u8]) -> Result<Option<Vec<u8>>, E>,
    {
        self.check_key(key).map_err(LoadError::Cache)?;
        let mut load = Some(load);
        loop {
            let outcome =
                match self
                    .flights()
                    .join::<E>(self, key, sync::thread_token(), Purpose::Miss)
                {
                    Role::Present => match self.get(key) {
                        Some(value) => return Ok(Some(value)),
                        None => continue,
                    },
                    Role::Recursive => return Err(LoadError::Recursive),
                    Role::Follow(flight) => {
                        self.count(Counter::LoadWait);
                        flight.wait()
                    }
                    Role::Lead(lead) => {
                        let load = load.take().expect("a caller leads at most one flight");
                        self.count(Counter::Load);
                        let answer = panic::catch_unwind(AssertUnwindSafe(|| load(key)));
                        self.store_and_land(lead, key, ttl, answer)
                    }
                };
            if let Some(result) = finished(outcome) {
                return result;
            }
        }
    }

    /// Lands the leader's answer, storing a loaded value under the flight's lease first.
    fn store_and_land<E: Send + Sync + 'static>(
        &self,
        lead: Lead<'_>,
        key: &[u8],
        ttl: Option<Duration>,
        answer: thread::Result<Result<Option<Vec<u8>>, E>>,
    ) -> Outcome {
        land_answer(lead, answer, |value, lease| {
            if let Some(value) = value {
                // Refused when the lease broke (a newer write won) or the value is too long
                // to cache; the callers get the value either way.
                let _ = self.insert_leased(key, value, ttl, lease);
            }
        })
    }
}

/// Turns a leader's loader's answer into the outcome every caller of its flight gets: for an
/// answer from the source (a value or "not found"), `store` first puts it in the cache under
/// the flight's lease; then the outcome lands (in that order: see `flight`).
pub(crate) fn land_answer<E: Send + Sync + 'static>(
    lead: Lead<'_>,
    answer: thread::Result<Result<Option<Vec<u8>>, E>>,
    store: impl FnOnce(Option<&[u8]>, &sync::AtomicBool),
) -> Outcome {
    let outcome = match answer {
        Ok(Ok(value)) => {
            store(value.as_deref(), lead.lease());
            Outcome::Loaded(value)
        }
        Ok(Err(e)) => Outcome::Failed(Arc::new(e)),
        Err(panic) => Outcome::Panicked(panic_message(&*panic)),
    };
    lead.land(outcome.clone());
    outcome
}

/// The caller's result once its flight landed (the flight's error type is the caller's);
/// `None` when the flight was abandoned and the caller must start over.
pub(crate) fn finished<E: Send + Sync + 'static>(outcome: Outcome) -> Option<LoadResult<E>> {
    Some(match outcome {
        Outcome::Loaded(value) => Ok(value),
        Outcome::Failed(e) => Err(LoadError::Failed(
            e.downcast::<E>()
                .expect("a flight is shared only by callers of one error type"),
        )),
        Outcome::Panicked(message) => Err(LoadError::Panicked(message)),
        Outcome::Abandoned => return None,
    })
}

/// The message of a caught panic.
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a payload that is not a string".to_owned()
    }
}
