//! [`CacheBuilder`]: the settings of a [`Cache`], checked when it is built.
//!
//! `build` rejects every setting it cannot honour with [`Error::InvalidConfig`] and a message
//! naming the setting; a cache that builds never fails later for its configuration.
//! `build_shared` builds the same cache in an `Arc` and, with a listener, starts its
//! maintenance thread.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::{Cache, MAX_KEY_LEN, VERSION_STRIPES};
use crate::chunk;
use crate::error::Error;
use crate::events::{Event, Events, Listener};
use crate::hot::HotKeys;
use crate::index::Index;
use crate::load::Flights;
use crate::slab::Slab;
use crate::stats::Counters;
use crate::sync::{AtomicU64, CachePadded};
use crate::tags::Tags;
use crate::ticker::Ticker;
use crate::ttl::{Clock, SystemClock, TtlRules};

/// `max_value_bytes` unless set.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 1 << 20;
/// The largest `max_value_bytes` accepted.
const MAX_VALUE_BYTES_LIMIT: usize = 64 << 20;
/// Average entry size assumed when sizing the index without `max_entries`.
const ASSUMED_ENTRY_BYTES: u64 = 256;
/// `maintenance_interval` unless set.
const DEFAULT_MAINTENANCE_INTERVAL: Duration = Duration::from_secs(1);

/// Configures and builds a [`Cache`]; from [`Cache::builder`].
#[must_use]
pub struct CacheBuilder {
    max_bytes: Option<u64>,
    max_entries: Option<u64>,
    default_ttl: Option<Duration>,
    ttl_jitter: f64,
    max_value_bytes: usize,
    clock: Option<Arc<dyn Clock>>,
    listener: Option<Listener>,
    maintenance_interval: Duration,
    track_hot_keys: bool,
    policy_shards: Option<usize>,
}

impl CacheBuilder {
    /// Every setting at its default.
    pub(super) fn new() -> CacheBuilder {
        CacheBuilder {
            max_bytes: None,
            max_entries: None,
            default_ttl: None,
            ttl_jitter: 0.0,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            clock: None,
            listener: None,
            maintenance_interval: DEFAULT_MAINTENANCE_INTERVAL,
            track_hot_keys: false,
            policy_shards: None,
        }
    }

    /// The arena's size in bytes: a hard bound on the memory entries occupy. Required.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes);
        self
    }

    /// An optional bound on the number of entries. It also sizes the index (about 13 bytes
    /// per entry); without it the index is sized for `max_bytes / 256` entries, and more still
    /// fit, in overflow buckets, a little slower to reach.
    pub fn max_entries(mut self, entries: u64) -> Self {
        self.max_entries = Some(entries);
        self
    }

    /// The TTL of entries written by [`Cache::insert`] and the other writes without a TTL
    /// argument. Without it they never expire.
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = Some(ttl);
        self
    }

    /// Stretches every TTL by a random fraction in `[0, fraction]` so that keys written
    /// together do not expire together. `0.0` (the default) to `1.0`.
    pub fn ttl_jitter(mut self, fraction: f64) -> Self {
        self.ttl_jitter = fraction;
        self
    }

    /// The longest value accepted (default 1 MiB, at most 64 MiB). It sets the page size: the
    /// smallest power of two holding a chunk header (40 bytes), the longest key (65,535 bytes,
    /// padded to 65,536) and the longest value (padded to a multiple of 8). With the default,
    /// pages are 2 MiB; with 64 KiB, 256 KiB. Every size class in use holds at least one page,
    /// so a cache serving many sizes wants many pages: 64 or more is a good rule.
    pub fn max_value_bytes(mut self, bytes: usize) -> Self {
        self.max_value_bytes = bytes;
        self
    }

    /// The clock for TTLs (default: [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// A callback told about every entry that leaves the cache or whose value is replaced:
    /// its key, the value it held, and the [`RemovalCause`](crate::RemovalCause). Each entry
    /// is reported once per cause, as the [`Stats`](crate::Stats) count it (evictions,
    /// expirations, removals, updates).
    ///
    /// The listener runs on the thread whose call made the events, at the end of that call,
    /// holding none of the cache's locks, possibly with the events of other calls in a batch;
    /// while one thread is delivering, others leave their events to it. It may call the cache
    /// (its own events are then delivered after the current ones, by the same loop), but it
    /// delays the writer it runs on: keep it short. A listener that panics is contained: the
    /// panic is counted in [`Stats::listener_panics`](crate::Stats::listener_panics) and the
    /// next event still delivered. Expired entries are found by later traffic, by
    /// [`Cache::run_pending_tasks`], or every `maintenance_interval` by the thread
    /// [`build_shared`](CacheBuilder::build_shared) starts. Without a listener, the cache
    /// copies nothing and queues nothing.
    ///
    /// A listener that must reach the cache should hold a `Weak` to it: an `Arc` inside its
    /// own listener keeps a shared cache (and its thread) alive forever.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use slabcache::{Cache, RemovalCause};
    ///
    /// let heard = Arc::new(Mutex::new(Vec::new()));
    /// let cache = Cache::builder()
    ///     .max_bytes(8 << 20)
    ///     .listener({
    ///         let heard = heard.clone();
    ///         move |event| heard.lock().unwrap().push((event.value().to_vec(), event.cause()))
    ///     })
    ///     .build()?;
    /// cache.insert(b"k", b"v1")?;
    /// cache.insert(b"k", b"v2")?;
    /// cache.remove(b"k");
    /// assert_eq!(
    ///     *heard.lock().unwrap(),
    ///     [(b"v1".to_vec(), RemovalCause::Replaced), (b"v2".to_vec(), RemovalCause::Removed)]
    /// );
    /// # Ok::<(), slabcache::Error>(())
    /// ```
    pub fn listener(mut self, listener: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.listener = Some(Box::new(listener));
        self
    }

    /// How often the maintenance thread of a cache from
    /// [`build_shared`](CacheBuilder::build_shared) with a listener runs
    /// [`Cache::run_pending_tasks`] (default 1 s; must not be zero). Real time, not the
    /// cache's [`clock`](CacheBuilder::clock).
    pub fn maintenance_interval(mut self, interval: Duration) -> Self {
        self.maintenance_interval = interval;
        self
    }

    /// [`build`](CacheBuilder::build), in an `Arc`. With a listener, it also starts a thread
    /// (named `slabcache-maintenance`) that runs [`Cache::run_pending_tasks`] every
    /// `maintenance_interval`, so that expired entries are reported without traffic. The
    /// thread holds only a `Weak` to the cache; dropping the cache stops it without waiting
    /// out the interval. [`Error::InvalidConfig`] also when the thread cannot be started.
    pub fn build_shared(self) -> Result<Arc<Cache>, Error> {
        let interval = self.maintenance_interval;
        let cache = Arc::new(self.build()?);
        if cache.events.is_some() {
            let ticker =
                Ticker::start(&cache, interval, Cache::run_pending_tasks).map_err(|e| {
                    Error::InvalidConfig(format!("cannot start the maintenance thread: {e}"))
                })?;
            if cache.ticker.set(ticker).is_err() {
                unreachable!("the cache was built just now, without a ticker");
            }
        }
        Ok(cache)
    }

    /// Whether the cache tracks its most read keys, for [`Cache::hottest`] (default: no).
    ///
    /// Tracking samples about one get hit in 16 into a small frequency tally (about 34 KiB a
    /// cache), which adds about 4% to the instructions of a get (`docs/design.md`, "Hot
    /// keys", has the figures). Without it a get pays one always-predicted branch for the
    /// feature, and [`Cache::hottest`] always returns an empty `Vec`.
    pub fn track_hot_keys(mut self, track: bool) -> Self {
        self.track_hot_keys = track;
        self
    }

    /// The number of policy shards per size class: a power of two from 1 to 256. Each shard
    /// has its own lock, queues and frequency sketch for the keys that hash to it, so writers
    /// of new keys in different shards do not wait for each other; but each shard judges its
    /// keys on a fraction of the traffic, which costs hit ratio in a small cache. By default,
    /// a power of two up to four per core, with at least 4,096 entries each (`max_entries`, or
    /// `max_bytes / 256`): 1 for a cache of fewer than 8,192 entries.
    pub fn policy_shards(mut self, shards: usize) -> Self {
        self.policy_shards = Some(shards);
        self
    }

    /// Checks the settings and maps the arena (address space only; memory is touched lazily).
    pub fn build(self) -> Result<Cache, Error> {
        let invalid = |why: String| Err(Error::InvalidConfig(why));
        let Some(max_bytes) = self.max_bytes else {
            return invalid("max_bytes is required: the arena's size in bytes".into());
        };
        if self.max_value_bytes > MAX_VALUE_BYTES_LIMIT {
            return invalid(format!(
                "max_value_bytes is {}; the largest supported is {MAX_VALUE_BYTES_LIMIT}",
                self.max_value_bytes
            ));
        }
        if self.max_entries == Some(0) {
            return invalid("max_entries is 0; a cache must be able to hold an entry".into());
        }
        if !(0.0..=1.0).contains(&self.ttl_jitter) {
            return invalid(format!(
                "ttl_jitter is {}; it must be within 0.0..=1.0",
                self.ttl_jitter
            ));
        }
        if self.default_ttl == Some(Duration::ZERO) {
            return invalid(
                "default_ttl is zero; every entry would expire as it is written".into(),
            );
        }
        if self.maintenance_interval.is_zero() {
            return invalid(
                "maintenance_interval is zero; the maintenance thread would never rest".into(),
            );
        }
        if let Some(shards) = self.policy_shards {
            if !shards.is_power_of_two() || shards > crate::slab::MAX_SHARDS {
                return invalid(format!(
                    "policy_shards is {shards}; it must be a power of two from 1 to {}",
                    crate::slab::MAX_SHARDS
                ));
            }
        }
        let max_item = chunk::bytes_needed(MAX_KEY_LEN, self.max_value_bytes);
        let page_bytes = max_item.next_power_of_two();
        let page_count = max_bytes / page_bytes as u64;
        if page_count == 0 {
            return invalid(format!(
                "max_bytes is {max_bytes}, less than one page of {page_bytes} bytes (the page must \
                 hold a {MAX_KEY_LEN}-byte key and a max_value_bytes value of {}); raise max_bytes \
                 or lower max_value_bytes",
                self.max_value_bytes
            ));
        }
        let page_count = u32::try_from(page_count).map_err(|_| {
            Error::InvalidConfig(format!(
                "max_bytes is {max_bytes}: more pages than can be addressed"
            ))
        })?;
        let entry_limit = self.max_entries.unwrap_or(u64::MAX);
        let expected_entries = self.max_entries.unwrap_or(max_bytes / ASSUMED_ENTRY_BYTES);
        let slab = Slab::new(
            page_bytes.trailing_zeros(),
            page_count,
            max_item,
            entry_limit,
            self.policy_shards
                .unwrap_or_else(|| shard_count(expected_entries)),
        )?;
        let index = Index::new(expected_entries, crate::rng::random_seed())
            .map_err(|e| Error::InvalidConfig(format!("max_entries: cannot map the index: {e}")))?;
        Ok(Cache {
            index,
            slab,
            counters: Counters::new(),
            entries: AtomicU64::new(0),
            max_entries: self.max_entries,
            versions: (0..VERSION_STRIPES)
                .map(|_| CachePadded(AtomicU64::new(0)))
                .collect(),
            ttl: TtlRules {
                default_ttl: self.default_ttl,
                jitter: self.ttl_jitter,
            },
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock::new())),
            max_value_bytes: self.max_value_bytes,
            max_bytes,
            flights: Flights::new(),
            tags: Tags::new(),
            events: self
                .listener
                .map(|listener| Box::new(CachePadded(Events::new(listener)))),
            ticker: OnceLock::new(),
            hot_keys: self.track_hot_keys.then(|| Box::new(HotKeys::new())),
        })
    }
}

/// Entries a policy shard is given at least: below a few thousand, splitting the policy costs
/// hit ratio (each shard's sketch and window see a fraction of the traffic) for no gain.
const MIN_SHARD_ENTRIES: u64 = 4096;

/// Policy shards per size class for a cache of about `expected_entries`: a power of two up to
/// four per core, each with at least `MIN_SHARD_ENTRIES`; 1 for a small cache, whose hit ratio
/// is then exactly an unsharded policy's.
fn shard_count(expected_entries: u64) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let by_size = (expected_entries / MIN_SHARD_ENTRIES).max(1);
    let shards = by_size
        .min(4 * cores as u64)
        .min(crate::slab::MAX_SHARDS as u64);
    1 << shards.ilog2()
}
