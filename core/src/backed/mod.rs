//! A cache in front of a source of truth: [`Backed`] reads through the cache to a [`Source`]
//! and writes through, around or behind it, with stale-while-revalidate, refresh-ahead,
//! early expiry (XFetch) and negative caching. docs/patterns.md shows each pattern.
//!
//! What it owns: the framing of its entries in the cache (`frame`: fresh time, load time,
//! "not found"), the refresh rules and their thread pool (`refresh`), the write-behind queue
//! and its flusher thread (`behind`), and its counters (`stats`). Loads, refreshes and
//! write-through's cache stores all run as flights of `load::flight`, so:
//! - concurrent misses of a key share one load; a refresh never overlaps a load of its key;
//! - a write or delete of a key that lands while a load or refresh of it runs wins over it;
//! - two write-throughs of one key racing each other never leave the older value cached:
//!   each registers a lease before it writes the source, and stores in the cache only if no
//!   other write of the key landed since; otherwise it removes the key, and the next read
//!   loads what the source holds.
//!
//! No lock of the cache is held while the source runs. The `Backed` owns its threads (a
//! flusher for write-behind, a few refresh workers when a refresh rule is set); `close`, or
//! dropping it, flushes what is queued and stops them.
//!
//! The cache should belong to the `Backed`: its values carry a 13-byte header, so a value of
//! more than `max_value_bytes - 13` bytes is served from the source without being cached, and
//! a value written to the cache directly is not understood (it is dropped and reloaded).

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::cache::Cache;
use crate::error::Error;
use crate::load::{self, LoadError, LoadResult, Outcome, Purpose, Role};
use crate::rng::{self, SharedRng};
use crate::sync::{self, AtomicBool, Ordering};
use crate::ttl::duration_nanos;
use crate::version::Version;

mod behind;
mod frame;
mod refresh;
mod source;
mod stats;

pub use behind::{Retry, WhenFull, WriteBehind, WriteFailure};
pub use source::Source;
pub use stats::BackedStats;

use behind::{FailureHook, Op, Queue};
use refresh::{Freshness, Pool, Verdict};
use stats::{BackedCounter, BackedCounters};

/// How writes reach the source.
#[derive(Clone, Debug)]
pub enum WriteMode {
    /// The source first, then the cache: a write returns once both hold it.
    Through,
    /// The source, then the key is removed from the cache (delete-on-write): the next read
    /// loads it.
    Around,
    /// The cache and a queue: a write returns at once, and a background thread sends the
    /// queued writes to the source in batches (see [`WriteBehind`]).
    Behind(WriteBehind),
}

/// Why a `Backed` write failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum BackedError<E> {
    /// The source refused the write (write-through and write-around); the key was removed
    /// from the cache, since the source's state is not known.
    Source(E),
    /// The source panicked; its message. Handled as `Source`.
    Panicked(String),
    /// The cache refused the key (empty, or too long).
    Cache(Error),
    /// Write-behind's queue is full and `WhenFull::Error` was chosen: the write was not made.
    QueueFull,
    /// The `Backed` was closed: it takes no more writes.
    Closed,
}

impl<E: fmt::Display> fmt::Display for BackedError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackedError::Source(e) => write!(f, "the source refused the write: {e}"),
            BackedError::Panicked(message) => write!(f, "the source panicked: {message}"),
            BackedError::Cache(e) => write!(f, "{e}"),
            BackedError::QueueFull => f.write_str("the write-behind queue is full"),
            BackedError::Closed => f.write_str("the backed cache is closed"),
        }
    }
}

impl<E: fmt::Display + fmt::Debug> std::error::Error for BackedError<E> {}

/// A cache in front of a [`Source`]; see the module documentation.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
/// use slabcache::{Backed, Cache, Source, WriteMode};
///
/// #[derive(Default)]
/// struct Db(Mutex<HashMap<Vec<u8>, Vec<u8>>>);
///
/// impl Source for Db {
///     type Error = String;
///     fn load(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
///         Ok(self.0.lock().unwrap().get(key).cloned())
///     }
///     fn store(&self, key: &[u8], value: &[u8]) -> Result<(), String> {
///         self.0.lock().unwrap().insert(key.to_vec(), value.to_vec());
///         Ok(())
///     }
///     fn delete(&self, key: &[u8]) -> Result<(), String> {
///         self.0.lock().unwrap().remove(key);
///         Ok(())
///     }
/// }
///
/// let cache = Arc::new(Cache::builder().max_bytes(64 << 20).build()?);
/// let users = Backed::builder(cache, Db::default())
///     .write_mode(WriteMode::Through)
///     .ttl(Duration::from_secs(60))
///     .build()?;
/// users.put(b"user:1", b"Ada").unwrap();
/// assert_eq!(users.get(b"user:1").unwrap().as_deref(), Some(&b"Ada"[..]));
/// assert_eq!(users.source().load(b"user:1").unwrap().as_deref(), Some(&b"Ada"[..]));
/// # Ok::<(), slabcache::Error>(())
/// ```
pub struct Backed<S: Source> {
    shared: Arc<Shared<S>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// What the `Backed` and its threads share.
struct Shared<S: Source> {
    cache: Arc<Cache>,
    source: S,
    mode: Mode,
    stale_window: Option<Duration>,
    negative_ttl: Option<Duration>,
    freshness: Freshness,
    behind: Option<Queue<S::Error>>,
    refresher: Option<Pool>,
    counters: BackedCounters,
    closed: AtomicBool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Through,
    Around,
    Behind,
}

/// Settings of a [`Backed`]; from [`Backed::builder`].
pub struct BackedBuilder<S: Source> {
    cache: Arc<Cache>,
    source: S,
    write_mode: WriteMode,
    ttl: Option<Duration>,
    stale_window: Option<Duration>,
    refresh_ahead: Option<f64>,
    early_expiry_beta: Option<f64>,
    negative_ttl: Option<Duration>,
    refresh_threads: usize,
    refresh_queue: usize,
    seed: Option<u64>,
    on_write_error: Option<FailureHook<S::Error>>,
}

impl<S: Source> BackedBuilder<S> {
    /// How writes reach the source (default: [`WriteMode::Through`]).
    pub fn write_mode(mut self, mode: WriteMode) -> Self {
        self.write_mode = mode;
        self
    }

    /// How long a loaded or written value is fresh (default: the cache's default TTL; none
    /// means values stay fresh until evicted or written).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Past its fresh TTL and for `window` more, a read gets the stale value at once while one
    /// background refresh runs; past that, reads wait for a load. Needs a TTL.
    pub fn stale_while_revalidate(mut self, window: Duration) -> Self {
        self.stale_window = Some(window);
        self
    }

    /// A read of an entry older than `fraction` (in (0, 1)) of its TTL starts one background
    /// refresh and is served the current value. Needs a TTL.
    pub fn refresh_ahead(mut self, fraction: f64) -> Self {
        self.refresh_ahead = Some(fraction);
        self
    }

    /// Probabilistic early expiry (XFetch): a read refreshes the entry in the background when
    /// `now - delta * beta * ln(rand()) >= expiry`, `delta` being how long its load took. 1.0
    /// is the paper's choice; larger refreshes earlier. Needs a TTL.
    pub fn early_expiry(mut self, beta: f64) -> Self {
        self.early_expiry_beta = Some(beta);
        self
    }

    /// Remember "not found" from the source for `ttl`, so that lookups of missing keys stop
    /// reaching it; a write of the key ends it at once.
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = Some(ttl);
        self
    }

    /// Threads that run background refreshes (default 2), and how many refreshes may wait for
    /// them (default 1,024; a refresh asked for when the queue is full is skipped).
    pub fn refresh_workers(mut self, threads: usize, queue: usize) -> Self {
        self.refresh_threads = threads;
        self.refresh_queue = queue;
        self
    }

    /// The seed of early expiry's random draws, for reproducible runs (default: random).
    pub fn random_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Called, on the flusher thread, for each failed attempt to send a write-behind batch,
    /// including the last one of a batch that is given up. A panic in it is ignored.
    pub fn on_write_error(
        mut self,
        report: impl Fn(&WriteFailure<'_, S::Error>) + Send + Sync + 'static,
    ) -> Self {
        self.on_write_error = Some(Box::new(report));
        self
    }

    /// Checks the settings and starts the `Backed`'s threads.
    pub fn build(self) -> Result<Backed<S>, Error> {
        self.check()?;
        let (mode, behind) = match self.write_mode {
            WriteMode::Through => (Mode::Through, None),
            WriteMode::Around => (Mode::Around, None),
            WriteMode::Behind(settings) => (
                Mode::Behind,
                Some(Queue::new(settings, self.on_write_error)),
            ),
        };
        let freshness = Freshness {
            ttl: self.ttl,
            refresh_ahead: self.refresh_ahead,
            early_expiry_beta: self.early_expiry_beta,
            rng: SharedRng::new(self.seed.unwrap_or_else(rng::random_seed)),
        };
        let refreshes = freshness.refreshes(self.stale_window);
        let (refresh_threads, refresh_queue) = (self.refresh_threads, self.refresh_queue);
        let mut threads = Vec::new();
        let shared = Arc::new_cyclic(|weak: &Weak<Shared<S>>| {
            // The refresh threads hold the `Backed`'s state weakly: they end when it closes.
            let refresher = refreshes.then(|| {
                let weak = weak.clone();
                let (pool, handles) =
                    Pool::start(refresh_threads, refresh_queue, move |key, judged| {
                        if let Some(shared) = weak.upgrade() {
                            shared.refresh(key, judged);
                        }
                    });
                threads = handles;
                pool
            });
            Shared {
                cache: self.cache,
                source: self.source,
                mode,
                stale_window: self.stale_window,
                negative_ttl: self.negative_ttl,
                freshness,
                behind,
                refresher,
                counters: BackedCounters::default(),
                closed: AtomicBool::new(false),
            }
        });
        if shared.behind.is_some() {
            let flusher = Arc::clone(&shared);
            threads.push(
                thread::Builder::new()
                    .name("slabcache-write-behind".into())
                    .spawn(move || {
                        let queue = flusher.behind.as_ref().expect("a write-behind queue");
                        queue.run_flusher(&flusher.source, &flusher.counters);
                    })
                    .map_err(|e| Error::InvalidConfig(format!("cannot start the flusher: {e}")))?,
            );
        }
        Ok(Backed {
            shared,
            threads: Mutex::new(threads),
        })
    }

    fn check(&self) -> Result<(), Error> {
        let invalid = |what: &str| Err(Error::InvalidConfig(what.to_owned()));
        let needs_ttl = self.stale_window.is_some()
            || self.refresh_ahead.is_some()
            || self.early_expiry_beta.is_some();
        if needs_ttl && self.ttl.is_none() {
            return invalid("stale_while_revalidate, refresh_ahead and early_expiry need a ttl");
        }
        if self.ttl.is_some_and(|t| t.is_zero()) {
            return invalid("ttl must be above zero");
        }
        if self.negative_ttl.is_some_and(|t| t.is_zero()) {
            return invalid("negative_ttl must be above zero");
        }
        if self.refresh_ahead.is_some_and(|f| !(f > 0.0 && f < 1.0)) {
            return invalid("refresh_ahead must be a fraction strictly between 0 and 1");
        }
        if self
            .early_expiry_beta
            .is_some_and(|b| !(b.is_finite() && b > 0.0))
        {
            return invalid("early_expiry's beta must be a finite number above zero");
        }
        if self.refresh_threads == 0 || self.refresh_queue == 0 {
            return invalid("refresh_workers needs at least one thread and a queue of one");
        }
        if let WriteMode::Behind(settings) = &self.write_mode {
            if settings.batch_size == 0 || settings.queue_capacity == 0 {
                return invalid("write-behind's batch_size and queue_capacity must be at least 1");
            }
            if settings.retry.max_attempts == Some(0) {
                return invalid("write-behind's retry.max_attempts must be at least 1");
            }
        }
        Ok(())
    }
}

impl<S: Source> Backed<S> {
    /// A builder for a `Backed` over `cache` and `source`.
    pub fn builder(cache: Arc<Cache>, source: S) -> BackedBuilder<S> {
        let ttl = cache.default_ttl();
        BackedBuilder {
            cache,
            source,
            write_mode: WriteMode::Through,
            ttl,
            stale_window: None,
            refresh_ahead: None,
            early_expiry_beta: None,
            negative_ttl: None,
            refresh_threads: 2,
            refresh_queue: 1024,
            seed: None,
            on_write_error: None,
        }
    }

    /// The value of `key`: from the cache, else from the source (one load however many
    /// callers miss it at once, as `Cache::get_or_load`). `Ok(None)`: the source has no such
    /// key. A stale, refresh-due or early-expiring entry is served at once and refreshed in
    /// the background.
    pub fn get(&self, key: &[u8]) -> LoadResult<S::Error> {
        self.shared.get(key)
    }

    /// Writes `value` as the value of `key`, as the write mode says.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<(), BackedError<S::Error>> {
        self.shared.put(key, Some(value), &[])
    }

    /// [`put`](Backed::put), tagging the cached entry with `tags` (see
    /// [`Cache::insert_tagged`]): [`invalidate_tag`](Backed::invalidate_tag) of any of them
    /// drops it from the cache, and the next read loads it again. In write-around mode
    /// nothing is cached, so the tags have nothing to mark.
    pub fn put_tagged(
        &self,
        key: &[u8],
        value: &[u8],
        tags: &[&[u8]],
    ) -> Result<(), BackedError<S::Error>> {
        self.shared.put(key, Some(value), tags)
    }

    /// Drops every cached entry tagged with `tag` (the source keeps them); returns how many.
    pub fn invalidate_tag(&self, tag: &[u8]) -> u64 {
        self.shared.cache.invalidate_tag(tag)
    }

    /// Deletes `key` from the source and the cache, as the write mode says.
    pub fn delete(&self, key: &[u8]) -> Result<(), BackedError<S::Error>> {
        self.shared.put(key, None, &[])
    }

    /// Blocks until every write-behind write acknowledged before the call is in the source
    /// (or given up after its last attempt). Returns at once in the other modes.
    pub fn flush(&self) {
        if let Some(queue) = &self.shared.behind {
            queue.flush();
        }
    }

    /// Blocks until the background refreshes queued before the call have run (for tests, and
    /// for programs that want a refreshed value before they go on).
    pub fn settle(&self) {
        if let Some(pool) = &self.shared.refresher {
            pool.settle();
        }
    }

    /// Flushes, then stops the background threads; later writes fail with
    /// [`BackedError::Closed`], reads still work (without background refreshes). Dropping the
    /// `Backed` closes it. With a source that keeps failing and no `max_attempts`, this waits
    /// until the source takes the queued writes.
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        if let Some(queue) = &self.shared.behind {
            queue.close();
        }
        if let Some(pool) = &self.shared.refresher {
            pool.close();
        }
        let threads =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        for thread in threads {
            // The threads catch the panics of the source and callbacks they run.
            let _ = thread.join();
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> BackedStats {
        let c = |counter| self.shared.counters.get(counter);
        BackedStats {
            loads: c(BackedCounter::Load),
            load_failures: c(BackedCounter::LoadFailure),
            refreshes: c(BackedCounter::Refresh),
            stale_served: c(BackedCounter::StaleServed),
            negative_hits: c(BackedCounter::NegativeHit),
            queue_depth: self.shared.behind.as_ref().map_or(0, |q| q.depth() as u64),
            flushed: c(BackedCounter::Flushed),
            coalesced: c(BackedCounter::Coalesced),
            retried: c(BackedCounter::Retried),
            failed: c(BackedCounter::Failed),
        }
    }

    /// The cache in front of the source.
    pub fn cache(&self) -> &Arc<Cache> {
        &self.shared.cache
    }

    /// The source behind the cache.
    pub fn source(&self) -> &S {
        &self.shared.source
    }
}

impl<S: Source> Drop for Backed<S> {
    fn drop(&mut self) {
        self.close();
    }
}

impl<S: Source> fmt::Debug for Backed<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backed")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<S: Source> Shared<S> {
    fn now(&self) -> u64 {
        duration_nanos(self.cache.clock().now())
    }

    fn get(&self, key: &[u8]) -> LoadResult<S::Error> {
        self.cache.check_key(key).map_err(LoadError::Cache)?;
        loop {
            if let Some((bytes, version)) = self.cache.get_versioned(key) {
                match frame::decode(&bytes) {
                    Some(entry) => return Ok(self.serve(key, &entry, version)),
                    None => {
                        self.cache.remove(key);
                        continue;
                    }
                }
            }
            if let Some(result) = self.load(key) {
                return result;
            }
        }
    }

    /// The answer a hit of the entry at `version` gives, starting a background refresh if one
    /// is due.
    fn serve(&self, key: &[u8], entry: &frame::Frame<'_>, version: Version) -> Option<Vec<u8>> {
        let Some(value) = entry.value else {
            self.counters.bump(BackedCounter::NegativeHit);
            return None;
        };
        if let Some(pool) = &self.refresher {
            match self.freshness.judge(entry, self.now()) {
                Verdict::Fresh => {}
                Verdict::RefreshAhead => pool.request(key, version),
                Verdict::Stale => {
                    self.counters.bump(BackedCounter::StaleServed);
                    pool.request(key, version);
                }
            }
        }
        Some(value.to_vec())
    }

    /// Loads a missed key through its flight; `None` when an entry appeared meanwhile (read
    /// it again).
    fn load(&self, key: &[u8]) -> Option<LoadResult<S::Error>> {
        loop {
            let role = self.cache.flights().join::<S::Error>(
                &self.cache,
                key,
                sync::thread_token(),
                Purpose::Miss,
            );
            let outcome = match role {
                Role::Present => return None,
                Role::Recursive => return Some(Err(LoadError::Recursive)),
                Role::Follow(flight) => flight.wait(),
                Role::Lead(lead) => self.fetch(lead, key),
            };
            if let Some(result) = load::finished(outcome) {
                return Some(result);
            }
        }
    }

    /// Runs a background refresh of `key`, asked for by a read of its entry at version
    /// `judged`, unless that entry is gone or was replaced meanwhile, or a load of the key is
    /// in flight. A read that judged the entry just before an earlier refresh replaced it asks
    /// again once that refresh is done; without the check, that would load a fresh entry
    /// again (under a stampede, thousands of stale reads race the end of each refresh). The
    /// check reads the version only: no copy, and no hit counted.
    fn refresh(&self, key: &[u8], judged: Version) {
        if self.cache.version_of(key) != Some(judged) {
            return;
        }
        let role = self.cache.flights().join::<S::Error>(
            &self.cache,
            key,
            sync::thread_token(),
            Purpose::Refresh,
        );
        if let Role::Lead(lead) = role {
            self.counters.bump(BackedCounter::Refresh);
            self.fetch(lead, key);
        }
    }

    /// The leader's part of a load or refresh: the newest value of `key` (a write-behind
    /// write still queued, else the source's), cached under the flight's lease.
    fn fetch(&self, lead: load::Lead<'_>, key: &[u8]) -> Outcome {
        let queued = self.behind.as_ref().and_then(|q| q.pending(key));
        // On the cache's clock, as the freshness it feeds (and so a test clock can stand for
        // a slow source).
        let started = self.now();
        let answer = match queued {
            Some(value) => Ok(Ok(value)),
            None => {
                self.counters.bump(BackedCounter::Load);
                panic::catch_unwind(AssertUnwindSafe(|| self.source.load(key)))
            }
        };
        let load_time = Duration::from_nanos(self.now().saturating_sub(started));
        let outcome = load::land_answer(lead, answer, |value, lease| {
            let _ = self.store(key, value, load_time, Some(lease));
        });
        if matches!(outcome, Outcome::Failed(_) | Outcome::Panicked(_)) {
            self.counters.bump(BackedCounter::LoadFailure);
        }
        outcome
    }

    /// Caches `value` (`None`: "not found", cached only with a negative TTL; then `None`) as
    /// fresh from now, under `lease` if given. An error means it was not cached (a broken
    /// lease, or too large).
    fn store(
        &self,
        key: &[u8],
        value: Option<&[u8]>,
        load_time: Duration,
        lease: Option<&AtomicBool>,
    ) -> Result<Option<Version>, Error> {
        let now = self.now();
        let (fresh_for, keep_for) = match value {
            Some(_) => (
                self.freshness.ttl,
                self.freshness
                    .ttl
                    .map(|t| t.saturating_add(self.stale_window.unwrap_or_default())),
            ),
            None => match self.negative_ttl {
                Some(ttl) => (Some(ttl), Some(ttl)),
                None => return Ok(None),
            },
        };
        let fresh_until = fresh_for.map_or(u64::MAX, |t| now.saturating_add(duration_nanos(t)));
        let bytes = frame::encode(fresh_until, load_time, value);
        match lease {
            Some(lease) => self.cache.insert_leased(key, &bytes, keep_for, lease),
            None => self.cache.insert_with_ttl(key, &bytes, keep_for),
        }
        .map(Some)
    }

    /// A write (`Some(value)`, tagged with `tags`) or delete (`None`) of `key`, as the write
    /// mode says.
    fn put(
        &self,
        key: &[u8],
        value: Option<&[u8]>,
        tags: &[&[u8]],
    ) -> Result<(), BackedError<S::Error>> {
        self.cache.check_key(key).map_err(BackedError::Cache)?;
        if self.closed.load(Ordering::SeqCst) {
            return Err(BackedError::Closed);
        }
        match self.mode {
            Mode::Behind => {
                let queue = self.behind.as_ref().expect("write-behind has a queue");
                // Queued before the cache is written: a reader that misses the cache after
                // the write landed there finds it in the queue (or the source).
                let op = value.map_or(Op::Delete, |v| Op::Store(v.to_vec()));
                queue.push(key, op, &self.counters)?;
                self.cache_write(key, value, tags, None);
                Ok(())
            }
            Mode::Around => {
                let sent = self.send(key, value);
                self.cache.remove(key);
                sent
            }
            Mode::Through => {
                // The lease tells whether another write of the key lands between this one's
                // store to the source and its store to the cache.
                let role =
                    self.cache
                        .flights()
                        .join::<S::Error>(&self.cache, key, None, Purpose::Write);
                let Role::Lead(lease) = role else {
                    unreachable!("a write always leads a flight of its own")
                };
                let sent = self.send(key, value);
                if sent.is_ok() {
                    self.cache_write(key, value, tags, Some(lease.lease()));
                } else {
                    self.cache.remove(key);
                }
                lease.land(Outcome::Abandoned);
                sent
            }
        }
    }

    /// Puts a write in the cache (a delete removes the key), tagged with `tags`; where the
    /// cache cannot take it, or `lease` broke, the key is removed instead, so no older value
    /// stays.
    fn cache_write(
        &self,
        key: &[u8],
        value: Option<&[u8]>,
        tags: &[&[u8]],
        lease: Option<&AtomicBool>,
    ) {
        let stored = value.is_some_and(|v| {
            let store = || {
                self.store(key, Some(v), Duration::ZERO, lease)
                    .map(|version| version.expect("a value is always stored"))
            };
            match tags {
                [] => store().is_ok(),
                tags => self.cache.tagged(key, tags, store).is_ok(),
            }
        });
        if !stored {
            self.cache.remove(key);
        }
    }

    /// Sends a write or delete to the source.
    fn send(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), BackedError<S::Error>> {
        let sent = panic::catch_unwind(AssertUnwindSafe(|| match value {
            Some(value) => self.source.store(key, value),
            None => self.source.delete(key),
        }));
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(BackedError::Source(e)),
            Err(panic) => Err(BackedError::Panicked(load::panic_message(&*panic))),
        }
    }
}
