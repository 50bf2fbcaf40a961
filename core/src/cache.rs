//! The cache: the public API, and the read and write paths that tie index, slab and chunks
//! together. The life of a get and of an insert is told in `docs/design.md`; what this module
//! guarantees:
//!
//! - A get takes no lock and writes nothing shared for a hot key: it reads chunks through
//!   `Slab::read_optimistic` and retries a torn read; after `OPTIMISTIC_READS` tries it
//!   takes the bucket lock, under which the chunk cannot change.
//! - Every write decides under the key's bucket lock. An update whose value stays in the
//!   entry's size class rewrites the chunk in place (docs/design.md, "Why updates rewrite in
//!   place"); any other write fills a fresh chunk outside the lock, then checks its condition
//!   again under it before publishing.
//! - A key's versions come from one of `VERSION_STRIPES` counters, taken under the bucket
//!   lock, so they increase in the order its writes are published, for the life of the cache.
//! - No engine lock is taken while another is held: a class lock is released before a victim
//!   leaves the index (see `slab::evict`), and a bucket lock before a replaced chunk is
//!   released to its class.
//! - With a listener, every entry that leaves the index or has its value replaced is copied
//!   into an event while the lock that keeps it whole is held (its bucket lock, or its class
//!   lock once it is out of the index), counted by the same branch that counts it in the
//!   stats, and delivered at the end of the public call, holding no lock (see `events`).
//!   Without one, nothing is copied; the read path never looks.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::chunk::{self, EntryHead};
use crate::error::Error;
use crate::events::{Event, Events, RemovalCause};
use crate::hot::{self, HotKeys};
use crate::index::{chunk_of, Index, KeyHash};
use crate::load::Flights;
use crate::slab::{Allocated, Slab};
use crate::stats::Stats;
use crate::stats::{Counter, Counters};
use crate::sync::{self, AtomicBool, AtomicU64, CachePadded, Ordering};
use crate::tags::Tags;
use crate::ticker::Ticker;
use crate::ttl::Clock;
use crate::ttl::{Now, TtlRules};
use crate::version::Version;

mod builder;
mod hottest;
mod iter;
mod unpublish;

pub use builder::{CacheBuilder, DEFAULT_MAX_VALUE_BYTES};
pub use iter::{Iter, SharedIter};

/// The longest key, in bytes.
pub const MAX_KEY_LEN: usize = 65_535;
/// Lock-free attempts of a read before it takes the bucket lock.
const OPTIMISTIC_READS: usize = 4;
const VERSION_STRIPES: usize = 64;

/// A concurrent, memory-bounded cache of byte keys and byte values. `Send + Sync`: share it
/// by reference or in an `Arc`.
pub struct Cache {
    index: Index,
    slab: Slab,
    counters: Counters,
    /// Entries in the index (expired ones included until reclaimed).
    entries: AtomicU64,
    max_entries: Option<u64>,
    versions: Box<[CachePadded<AtomicU64>]>,
    ttl: TtlRules,
    clock: Arc<dyn Clock>,
    max_value_bytes: usize,
    max_bytes: u64,
    /// Loads in flight (`get_or_load`), whose leases every write and remove breaks.
    flights: Flights,
    /// Which entries carry which tags (`insert_tagged`).
    tags: Tags,
    /// The listener and its queue, when one is set. Boxed on a cache line of its own: writers
    /// write the queue, and readers, who never look at it, keep their lines unshared.
    events: Option<Box<CachePadded<Events>>>,
    /// The maintenance thread of a cache built by `build_shared` with a listener;
    /// `stop_maintenance` or dropping the cache stops it.
    ticker: OnceLock<Ticker>,
    /// The hot-key tracker, with `track_hot_keys(true)`; boxed so that a cache without one
    /// pays a null test on a get and a pointer's room.
    hot_keys: Option<Box<HotKeys>>,
}

/// The condition a write must meet, checked under the bucket lock.
#[derive(Clone, Copy)]
enum Condition<'a> {
    Always,
    Absent,
    Present,
    Version(Version),
    /// Unless this lease was broken: a load's store (see `load::flight`).
    Leased(&'a AtomicBool),
}

/// An entry found under the bucket lock.
struct Current<'a> {
    slot: &'a AtomicU64,
    id: u32,
    head: EntryHead,
}

/// What one consistent optimistic look at a chunk found ([`Slab::read_optimistic`]).
enum Probe {
    /// An entry with the wanted key.
    Hit(EntryHead),
    /// Something else (another key, or a free chunk).
    Other,
}

impl Cache {
    /// A builder with every setting at its default; `max_bytes` must be set before `build`.
    pub fn builder() -> CacheBuilder {
        CacheBuilder::new()
    }

    /// A copy of the value of `key`, if present and not expired.
    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let mut value = Vec::new();
        self.get_read(key, &mut value).map(|_| value)
    }

    /// Copies the value of `key` into `buf` (replacing its contents, reusing its capacity) and
    /// returns its version; `None` if absent or expired.
    pub fn get_into(&self, key: &[u8], buf: &mut Vec<u8>) -> Option<Version> {
        self.get_read(key, buf)
    }

    /// A copy of the value of `key` and its version.
    pub fn get_versioned(&self, key: &[u8]) -> Option<(Vec<u8>, Version)> {
        let mut value = Vec::new();
        self.get_read(key, &mut value).map(|v| (value, v))
    }

    /// Whether `key` is present and not expired. Copies nothing, counts no hit or miss, and
    /// does not count as a use of the entry for eviction.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.version_of(key).is_some()
    }

    /// Stores `value` under `key` with the default TTL; returns the new version.
    pub fn insert(&self, key: &[u8], value: &[u8]) -> Result<Version, Error> {
        self.write(key, value, self.ttl.default_ttl, Condition::Always)
    }

    /// Stores `value` under `key` with `ttl` (`None`: never expires, whatever the default).
    pub fn insert_with_ttl(
        &self,
        key: &[u8],
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<Version, Error> {
        self.write(key, value, ttl, Condition::Always)
    }

    /// Stores `value` only if `key` is absent (or expired); else [`Error::Exists`].
    pub fn insert_if_absent(&self, key: &[u8], value: &[u8]) -> Result<Version, Error> {
        self.write(key, value, self.ttl.default_ttl, Condition::Absent)
    }

    /// [`insert_if_absent`](Cache::insert_if_absent) with `ttl` in place of the default
    /// (`None`: never expires).
    pub fn insert_if_absent_with_ttl(
        &self,
        key: &[u8],
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<Version, Error> {
        self.write(key, value, ttl, Condition::Absent)
    }

    /// Stores `value` only if `key` is present; else [`Error::NotFound`].
    pub fn replace(&self, key: &[u8], value: &[u8]) -> Result<Version, Error> {
        self.write(key, value, self.ttl.default_ttl, Condition::Present)
    }

    /// [`replace`](Cache::replace) with `ttl` in place of the default (`None`: never expires).
    pub fn replace_with_ttl(
        &self,
        key: &[u8],
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<Version, Error> {
        self.write(key, value, ttl, Condition::Present)
    }

    /// Stores `value` only if `key`'s current version is `expected`; else
    /// [`Error::VersionMismatch`] with the current version, or [`Error::NotFound`].
    pub fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Version,
        value: &[u8],
    ) -> Result<Version, Error> {
        self.write(
            key,
            value,
            self.ttl.default_ttl,
            Condition::Version(expected),
        )
    }

    /// [`compare_and_swap`](Cache::compare_and_swap) with `ttl` in place of the default
    /// (`None`: never expires).
    pub fn compare_and_swap_with_ttl(
        &self,
        key: &[u8],
        expected: Version,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<Version, Error> {
        self.write(key, value, ttl, Condition::Version(expected))
    }

    /// Removes `key`; true if a live entry was removed.
    pub fn remove(&self, key: &[u8]) -> bool {
        self.remove_where(key, None).is_ok()
    }

    /// Removes `key` only if its version is `expected`.
    pub fn remove_if_version(&self, key: &[u8], expected: Version) -> Result<(), Error> {
        self.remove_where(key, Some(expected))
    }

    /// Removes every entry. Entries written concurrently may survive.
    pub fn clear(&self) {
        self.flights.break_all_leases();
        self.clear_chains();
        self.deliver_events();
    }

    /// One round of maintenance: reaps expired entries (a bounded sample of each size class,
    /// as the eviction path's reaper does) and delivers the listener's pending events. The
    /// maintenance thread of [`CacheBuilder::build_shared`] runs this every
    /// `maintenance_interval`; call it by hand on a cache from [`CacheBuilder::build`], or to
    /// have expirations noticed without traffic at a time of your choosing.
    pub fn run_pending_tasks(&self) {
        self.slab.reap_every_class(self, &Now::new(&*self.clock));
        self.deliver_events();
    }

    /// Stops the maintenance thread that [`CacheBuilder::build_shared`] started for a
    /// listener, and waits for the round in progress, if any, to end: once it returns, that
    /// thread calls the listener no more. Expired entries are then found only by traffic and
    /// [`run_pending_tasks`](Cache::run_pending_tasks). Dropping the cache does the same;
    /// this is for an owner that must know the listener is done with what it uses before the
    /// last reference goes (a round holds one while it runs). Does nothing for a cache
    /// without that thread, or once stopped; from the listener on the maintenance thread
    /// itself, it stops the thread without waiting.
    pub fn stop_maintenance(&self) {
        if let Some(ticker) = self.ticker.get() {
            ticker.stop();
        }
    }

    fn clear_chains(&self) {
        let mut freed = Vec::new();
        for chain in 0..self.index.chain_count() {
            if self.index.chain_slots(chain).next().is_none() {
                continue;
            }
            let locked = self.index.lock_chain_at(chain);
            for (slot, word) in locked.matching() {
                let id = chunk_of(word);
                let head = self
                    .slab
                    .chunk(id)
                    .head()
                    .expect("a slot points at a published chunk");
                self.notify(id, &head, RemovalCause::Cleared);
                locked.clear(slot);
                freed.push(self.slab.published(id));
                self.account_removed(&head);
                self.counters.bump(Counter::Removal);
            }
            drop(locked);
            freed.drain(..).for_each(|p| self.slab.release(p));
        }
    }

    /// Entries resident, including expired ones not yet reclaimed.
    pub fn len(&self) -> usize {
        self.entries.load(Ordering::Relaxed) as usize
    }

    /// Whether no entry is resident (expired ones not yet reclaimed count as resident).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The TTL of the writes that name none (`insert`, `insert_if_absent`, `replace`,
    /// `compare_and_swap`); `None`: those never expire.
    pub fn default_ttl(&self) -> Option<Duration> {
        self.ttl.default_ttl
    }

    /// The longest value the cache accepts, in bytes.
    pub fn max_value_bytes(&self) -> usize {
        self.max_value_bytes
    }

    /// A snapshot of the counters, summed over their stripes; see [`Stats`].
    pub fn stats(&self) -> Stats {
        let c = |counter| self.counters.sum(counter);
        Stats {
            hits: c(Counter::Hit),
            misses: c(Counter::Miss),
            inserts: c(Counter::Insert),
            updates: c(Counter::Update),
            removals: c(Counter::Removal),
            evictions: c(Counter::Eviction),
            expirations: c(Counter::Expiration),
            cas_failures: c(Counter::CasFailure),
            entries: self.entries.load(Ordering::Relaxed),
            payload_bytes: c(Counter::PayloadBytes),
            arena_bytes_used: self.slab.arena_bytes_used(),
            max_bytes: self.max_bytes,
            fixed_overhead_bytes: (self.index.overhead_bytes()
                + self.slab.overhead_bytes()
                + self.hot_keys.as_ref().map_or(0, |hot| hot.bytes()))
                as u64,
            loads: c(Counter::Load),
            load_waits: c(Counter::LoadWait),
            listener_panics: self.events.as_ref().map_or(0, |events| events.panics()),
        }
    }

    // ----- for the load layer (`load/`) -----

    /// The policy shard of `key`'s entries (the loom models pick keys of different shards).
    #[cfg(all(test, slabcache_loom))]
    pub(crate) fn shard_of_key(&self, key: &[u8]) -> usize {
        self.slab.shard_of(self.index.hash(key).value())
    }

    pub(crate) fn flights(&self) -> &Flights {
        &self.flights
    }

    pub(crate) fn tags(&self) -> &Tags {
        &self.tags
    }

    /// The version of `key`'s live entry, read without counting a hit or a miss.
    pub(crate) fn version_of(&self, key: &[u8]) -> Option<Version> {
        self.read::<false>(key, None, false)
    }

    /// Removes `key` if it still has the `version` it was tagged with (a tag invalidation).
    /// Queues the listener's event without delivering it: the caller delivers once done.
    pub(crate) fn remove_tagged_out(&self, key: &[u8], version: Version) -> Result<(), Error> {
        self.remove_entry(key, Some(version), RemovalCause::TagInvalidated)
    }

    /// The clock the cache judges expiry by.
    pub(crate) fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    pub(crate) fn count(&self, counter: Counter) {
        self.counters.bump(counter);
    }

    /// Refuses a key the cache could never hold, as a write would.
    pub(crate) fn check_key(&self, key: &[u8]) -> Result<(), Error> {
        self.check_sizes(key, &[])
    }

    /// Runs `f` under the key's bucket lock, with the key's hash and whether it has a live
    /// entry. Every write of the key is ordered before or after `f` by that lock: how a load
    /// registers so that any later write breaks its lease.
    pub(crate) fn with_key_locked<R>(&self, key: &[u8], f: impl FnOnce(KeyHash, bool) -> R) -> R {
        let hash = self.index.hash(key);
        let now = Now::new(&*self.clock);
        let locked = self.index.lock(hash);
        let live = self
            .find_locked(&locked, key)
            .is_some_and(|c| !now.expired(c.head.deadline));
        f(hash, live)
    }

    /// Stores a loaded value unless `lease` was broken (a write or remove of the key landed
    /// since the load was registered); then [`Error::Exists`].
    pub(crate) fn insert_leased(
        &self,
        key: &[u8],
        value: &[u8],
        ttl: Option<Duration>,
        lease: &AtomicBool,
    ) -> Result<Version, Error> {
        self.write(key, value, ttl, Condition::Leased(lease))
    }

    // ----- reads -----

    /// A get's read: copies the value into `out` and counts a hit or a miss. A cache that
    /// tracks hot keys runs its own copy of the read path, which also offers hits to the
    /// tracker, so that the test here is all a cache without the tracker pays for it.
    #[inline]
    fn get_read(&self, key: &[u8], out: &mut Vec<u8>) -> Option<Version> {
        if self.hot_keys.is_some() {
            self.read::<true>(key, Some(out), true)
        } else {
            self.read::<false>(key, Some(out), true)
        }
    }

    /// Reads `key`, copying its value into `out` if given; with `record`, counts a hit or a
    /// miss, and with `TRACK_HOT` offers a hit to the hot-key tracker.
    fn read<const TRACK_HOT: bool>(
        &self,
        key: &[u8],
        mut out: Option<&mut Vec<u8>>,
        record: bool,
    ) -> Option<Version> {
        let found = if !key_fits(key) {
            None
        } else {
            let hash = self.index.hash(key);
            let now = Now::new(&*self.clock);
            let found = (0..=OPTIMISTIC_READS).find_map(|attempt| {
                // The last attempt holds the bucket lock, under which nothing it reads can
                // change, so it always settles.
                let _locked = (attempt == OPTIMISTIC_READS).then(|| self.index.lock(hash));
                self.lookup(hash, key, out.as_deref_mut(), &now)
            })?;
            if TRACK_HOT && record && found.is_some() {
                self.offer_hot_read(hash);
            }
            found
        };
        if record {
            self.counters.bump(if found.is_some() {
                Counter::Hit
            } else {
                Counter::Miss
            });
        }
        found
    }

    /// Hands a get hit to the hot-key tracker if the sample takes it. The hit's number is the
    /// value of its stripe of the hit counter, just before the hit is counted there.
    fn offer_hot_read(&self, hash: KeyHash) {
        let hit_number = self
            .counters
            .own_stripe(Counter::Hit)
            .load(Ordering::Relaxed);
        // Sampling first: the tracker is looked at for one hit in 16 only.
        if hot::is_sampled(hit_number) {
            if let Some(hot) = &self.hot_keys {
                hot.record_sample(hash.value());
            }
        }
    }

    /// One pass over the key's candidates: `Some(found)` when settled, `None` to retry.
    #[inline]
    fn lookup(
        &self,
        hash: KeyHash,
        key: &[u8],
        mut out: Option<&mut Vec<u8>>,
        now: &Now<'_>,
    ) -> Option<Option<Version>> {
        for (slot, word) in self.index.candidates(hash) {
            let id = chunk_of(word);
            let probe = self.slab.read_optimistic(id, |chunk, head| match head {
                Some(head) if chunk.key_equals(&head, key) => {
                    if !now.expired(head.deadline) {
                        if let Some(out) = out.as_deref_mut() {
                            chunk.copy_value(&head, out);
                        }
                    }
                    Probe::Hit(head)
                }
                _ => Probe::Other,
            });
            match probe {
                Some((Probe::Hit(head), _)) if now.expired(head.deadline) => return Some(None),
                Some((Probe::Hit(head), class)) => {
                    if out.is_some() {
                        self.slab.record_hit(id, class, hash.value());
                    }
                    return Some(Version::new(head.version));
                }
                // The slot moved on while we looked: the key may now be in it.
                Some((Probe::Other, _)) if slot.load(Ordering::Relaxed) != word => return None,
                Some((Probe::Other, _)) => {}
                // Torn: the chunk or its page changed while being read.
                None => return None,
            }
        }
        Some(None)
    }

    // ----- writes -----

    fn check_sizes(&self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        if key.is_empty() {
            return Err(Error::EmptyKey);
        }
        if key.len() > MAX_KEY_LEN {
            return Err(Error::KeyTooLarge {
                len: key.len(),
                max: MAX_KEY_LEN,
            });
        }
        if value.len() > self.max_value_bytes {
            return Err(Error::ValueTooLarge {
                len: value.len(),
                max: self.max_value_bytes,
            });
        }
        Ok(())
    }

    fn write(
        &self,
        key: &[u8],
        value: &[u8],
        ttl: Option<Duration>,
        condition: Condition<'_>,
    ) -> Result<Version, Error> {
        let written = self.write_entry(key, value, ttl, condition);
        self.deliver_events();
        written
    }

    fn write_entry(
        &self,
        key: &[u8],
        value: &[u8],
        ttl: Option<Duration>,
        condition: Condition,
    ) -> Result<Version, Error> {
        self.check_sizes(key, value)?;
        let hash = self.index.hash(key);
        let now = Now::new(&*self.clock);
        let class = self
            .slab
            .class_for(chunk::bytes_needed(key.len(), value.len()))
            .expect("sizes within limits fit the largest class");
        let deadline = self.ttl.deadline(&now, ttl);
        if deadline != crate::ttl::NEVER {
            self.slab.note_deadline();
        }
        // The chunk taken for the new value, once one is needed.
        let mut fresh: Option<Allocated> = None;
        loop {
            let locked = self.index.lock(hash);
            let current = self.find_locked(&locked, key);
            let live = current.as_ref().filter(|c| !now.expired(c.head.deadline));
            if let Err(e) =
                self.check_condition(condition, live.and_then(|c| Version::new(c.head.version)))
            {
                drop(locked);
                self.abandon(fresh);
                return Err(e);
            }
            if let Some(live) = live {
                if self.slab.class_of(live.id) == Some(class) {
                    let version = self.rewrite(&locked, live, hash, key, value, deadline);
                    self.flights.break_leases(hash, key);
                    drop(locked);
                    self.abandon(fresh);
                    self.slab.record_hit(live.id, class, hash.value());
                    return Ok(version);
                }
            }
            let Some(Allocated { id, holds_place }) = fresh else {
                drop(locked);
                // A new key in a cache at its entry limit takes a victim's place, and its
                // chunk; that saves the second trip through the class lock that
                // `reserve_entry` failing below would cost, and the two updates of the entry
                // count (out and in) that every thread's new keys would share.
                let at_limit = current.is_none()
                    && self
                        .max_entries
                        .is_some_and(|max| self.entries.load(Ordering::Relaxed) >= max);
                let allocated = self
                    .slab
                    .allocate(class, hash.value(), self, &now, at_limit);
                self.slab.chunk(allocated.id).fill(key, value, deadline);
                fresh = Some(allocated);
                continue;
            };
            if current.is_none() && !holds_place && !self.reserve_entry() {
                drop(locked);
                self.evict_for_entry_limit(class, hash, &now);
                continue;
            }
            let version = self.next_version(hash);
            self.slab.chunk(id).end_write(version.get());
            let slot = current.as_ref().map_or_else(|| locked.vacant(), |c| c.slot);
            locked.set(slot, id);
            self.flights.break_leases(hash, key);
            let replaced = current.map(|c| {
                let expired = now.expired(c.head.deadline);
                // Copied now, under the bucket lock: once it is released, an evictor can free
                // the old chunk (finding it out of the index) and another key can take it.
                self.notify(c.id, &c.head, cause(expired, RemovalCause::Replaced));
                (self.slab.published(c.id), c.head, expired)
            });
            drop(locked);
            if holds_place && replaced.is_some() {
                // The key was present after all: the new value replaced it, not a new entry.
                self.entries.fetch_sub(1, Ordering::Relaxed);
            }
            self.counters
                .add_signed(Counter::PayloadBytes, (key.len() + value.len()) as i64);
            match replaced {
                Some((old, head, expired)) => {
                    self.counters
                        .add_signed(Counter::PayloadBytes, -payload(&head));
                    if expired {
                        self.counters.bump(Counter::Expiration);
                        self.counters.bump(Counter::Insert);
                    } else {
                        self.counters.bump(Counter::Update);
                    }
                    self.slab.release(old);
                }
                None => self.counters.bump(Counter::Insert),
            }
            return Ok(version);
        }
    }

    /// Gives back a chunk taken for a write that will not publish it, and the place under the
    /// entry limit its victim handed over, if any.
    fn abandon(&self, fresh: Option<Allocated>) {
        if let Some(allocated) = fresh {
            self.slab.abandon(allocated.id);
            if allocated.holds_place {
                self.entries.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Updates a live entry whose new value stays in its chunk's size class by rewriting the
    /// chunk in place, under the chunk's seqlock and the bucket lock the caller holds. This
    /// takes no class lock: a fresh chunk would cost one trip through the lock every writer of
    /// the class shares to allocate it and another to free the old one.
    fn rewrite(
        &self,
        _locked: &crate::index::Locked<'_>,
        live: &Current<'_>,
        hash: KeyHash,
        key: &[u8],
        value: &[u8],
        deadline: u64,
    ) -> Version {
        self.notify(live.id, &live.head, RemovalCause::Replaced);
        let chunk = self.slab.chunk(live.id);
        chunk.begin_write();
        chunk.fill(key, value, deadline);
        let version = self.next_version(hash);
        chunk.end_write(version.get());
        self.counters.add_signed(
            Counter::PayloadBytes,
            value.len() as i64 - live.head.value_len as i64,
        );
        self.counters.bump(Counter::Update);
        version
    }

    fn check_condition(
        &self,
        condition: Condition<'_>,
        current: Option<Version>,
    ) -> Result<(), Error> {
        match (condition, current) {
            // Whoever broke the lease wrote or removed the key after the load began: theirs
            // is the newer state. Reported as the key being taken; the loader ignores why.
            (Condition::Leased(broken), _) if broken.load(Ordering::Relaxed) => Err(Error::Exists),
            (Condition::Absent, Some(_)) => Err(Error::Exists),
            (Condition::Present | Condition::Version(_), None) => Err(Error::NotFound),
            (Condition::Version(expected), Some(current)) if expected != current => {
                self.counters.bump(Counter::CasFailure);
                Err(Error::VersionMismatch { current })
            }
            _ => Ok(()),
        }
    }

    /// The entry for `key` in a locked chain (expired or not).
    fn find_locked<'a>(
        &self,
        locked: &crate::index::Locked<'a>,
        key: &[u8],
    ) -> Option<Current<'a>> {
        locked.matching().find_map(|(slot, word)| {
            let id = chunk_of(word);
            let chunk = self.slab.chunk(id);
            let head = chunk.head().expect("a slot points at a published chunk");
            chunk
                .key_equals(&head, key)
                .then_some(Current { slot, id, head })
        })
    }

    fn remove_where(&self, key: &[u8], expected: Option<Version>) -> Result<(), Error> {
        let removed = self.remove_entry(key, expected, RemovalCause::Removed);
        self.deliver_events();
        removed
    }

    /// Removes `key` (if at version `expected`), telling the listener `why`; delivers nothing.
    fn remove_entry(
        &self,
        key: &[u8],
        expected: Option<Version>,
        why: RemovalCause,
    ) -> Result<(), Error> {
        if !key_fits(key) {
            return Err(Error::NotFound);
        }
        let hash = self.index.hash(key);
        let locked = self.index.lock(hash);
        // Even a remove that finds nothing ends a load begun before it: the caller is
        // invalidating what that load may have read.
        self.flights.break_leases(hash, key);
        let Some(current) = self.find_locked(&locked, key) else {
            return Err(Error::NotFound);
        };
        let expired = Now::new(&*self.clock).expired(current.head.deadline);
        if !expired {
            self.check_condition(
                expected.map_or(Condition::Present, Condition::Version),
                Version::new(current.head.version),
            )?;
        }
        self.notify(current.id, &current.head, cause(expired, why));
        locked.clear(current.slot);
        let old = self.slab.published(current.id);
        drop(locked);
        self.account_removed(&current.head);
        self.slab.release(old);
        if expired {
            self.counters.bump(Counter::Expiration);
            return Err(Error::NotFound);
        }
        self.counters.bump(Counter::Removal);
        Ok(())
    }

    /// Queues an event for the entry in chunk `id`, if a listener wants one: a copy of its key
    /// and value, taken while the caller holds what keeps them from changing (the entry's
    /// bucket lock, or the claim on its chunk once the entry is out of the index).
    fn notify(&self, id: u32, head: &EntryHead, cause: RemovalCause) {
        if let Some(events) = &self.events {
            let chunk = self.slab.chunk(id);
            let mut key = Vec::with_capacity(head.key_len);
            chunk.copy_key(head, &mut key);
            let mut value = Vec::new();
            chunk.copy_value(head, &mut value);
            events.push(Event::new(key, value, cause));
        }
    }

    /// Calls the listener with the events queued so far, at the end of a public call, holding
    /// no lock.
    pub(crate) fn deliver_events(&self) {
        if let Some(events) = &self.events {
            events.deliver();
        }
    }

    /// Counts an entry out of the index (the caller counts why).
    fn account_removed(&self, head: &EntryHead) {
        self.entries.fetch_sub(1, Ordering::Relaxed);
        self.counters
            .add_signed(Counter::PayloadBytes, -payload(head));
    }

    /// Claims room for one more entry under `max_entries`; false when the cache is full.
    fn reserve_entry(&self) -> bool {
        match self.max_entries {
            None => {
                self.entries.fetch_add(1, Ordering::Relaxed);
                true
            }
            Some(max) => self
                .entries
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    (n < max).then_some(n + 1)
                })
                .is_ok(),
        }
    }

    /// Evicts one entry to make room under `max_entries`.
    fn evict_for_entry_limit(&self, class: usize, hash: KeyHash, now: &Now<'_>) {
        if !self.slab.evict_any(class, hash.value(), self, now) {
            // Every candidate is being written by another thread; it will be published soon.
            sync::spin_hint(0);
        }
    }

    fn next_version(&self, hash: KeyHash) -> Version {
        let stripe = &self.versions[hash.stripe(VERSION_STRIPES)];
        let raw = stripe.fetch_add(1, Ordering::Relaxed) + 1;
        Version::new(raw).expect("a version counter starting at 0 and incremented first is never 0")
    }
}

/// Whether a key has a length the cache can hold (reads and removes of others find nothing).
fn key_fits(key: &[u8]) -> bool {
    (1..=MAX_KEY_LEN).contains(&key.len())
}

/// Why an entry leaves: `Expired` if it was, else `otherwise`.
fn cause(expired: bool, otherwise: RemovalCause) -> RemovalCause {
    if expired {
        RemovalCause::Expired
    } else {
        otherwise
    }
}

fn payload(head: &EntryHead) -> i64 {
    (head.key_len + head.value_len) as i64
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("max_entries", &self.max_entries)
            .field("max_value_bytes", &self.max_value_bytes)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
