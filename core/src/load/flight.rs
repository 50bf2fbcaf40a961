//! The flight table: at most one load per key (and loader error type) at a time, and the
//! lease that tells a load whether a write of its key landed while it ran.
//!
//! A caller that misses registers a [`Flight`] for the key and leads it; callers that miss the
//! same key while it is registered follow it: they block (a thread, on a condvar) or are woken
//! (a task, through `event-listener`) when the leader lands its [`Outcome`], and take a copy.
//! Nobody spins.
//!
//! Invariants:
//! - A flight is registered under the key's bucket lock ([`Cache::with_key_locked`]), and only
//!   when the key has no live entry. Every write and remove of a key takes the same bucket lock
//!   and, if any flight is registered, breaks the leases of the key's flights before letting
//!   it go ([`Flights::break_leases`]). So a write that lands after a registration always
//!   sees it, and the leader's store, which checks its lease under the bucket lock
//!   ([`Cache::insert_leased`]), never puts an older value over a newer write or brings back a
//!   removed key (memcache's leases; docs/design.md, "Single-flight loads").
//! - A caller joins only a flight whose lease is unbroken; once a write or remove of the key
//!   broke it, the flight is superseded: callers that miss afterwards lead a new load (at
//!   most one at a time, the new flight being unbroken until the next write), so a read that
//!   starts after a write returned never gets a value loaded before it. The superseded
//!   flight still lands for the callers that joined it before the write, which overlapped it.
//! - The leader stores its value before it unregisters the flight. A caller that misses after
//!   the unregistration therefore finds the value, or (after a failure, or a store a broken
//!   lease refused) leads a load of its own.
//! - No engine lock is held while a loader runs or while a follower waits; the table's shard
//!   locks are taken inside bucket locks (registration, writes) or alone, and never around
//!   anything else.
//! - Flights are keyed by key and by the loader's error type, so a follower can always receive
//!   its leader's error as its own type; callers with different error types load separately.
//! - Besides loads of missed keys, the source-backed layer (`backed`) runs two other kinds of
//!   flight ([`Purpose`]): background refreshes of a live entry (which a miss may follow, and
//!   which never start while a load of the key is in flight), and write-through's leases
//!   (which nobody follows: they only learn whether another write of the key landed between
//!   the write's store to the source and its store to the cache).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::cache::Cache;
use crate::index::KeyHash;
use crate::sync::{AtomicBool, AtomicU64, Ordering};

const SHARDS: usize = 64;

/// Every key's loads in flight. The shards are std mutexes: a follower blocks on the flight's
/// condvar, which needs one, and none of them is ever part of a loom model (the loads run no
/// engine protocol of their own; the lease check they rely on is the bucket lock's).
pub(crate) struct Flights {
    /// Flights registered: writers look here first, so a cache with no load in flight pays one
    /// load of a shared word per write.
    registered: AtomicU64,
    shards: Box<[Mutex<Shard>]>,
}

/// A shard of the table: each key's flights, one per loader error type.
type Shard = HashMap<Vec<u8>, Vec<Arc<Flight>>>;

/// How a load ended, as every caller of the flight receives it.
#[derive(Clone)]
pub(crate) enum Outcome {
    /// The source's answer: a value, or none for this key.
    Loaded(Option<Vec<u8>>),
    /// The loader's error, of the flight's error type.
    Failed(Arc<dyn Any + Send + Sync>),
    /// The loader panicked, with this message.
    Panicked(String),
    /// The leader went away without an answer (an async load whose future was dropped):
    /// followers start over.
    Abandoned,
}

/// One load in flight.
pub(crate) struct Flight {
    /// The loader's error type; `None` for a write's lease, which nobody follows.
    error_type: Option<TypeId>,
    /// The leading thread's [`sync::thread_token`]; `None` for an async leader, whose task may
    /// move between threads and share its thread with followers.
    leader: Option<usize>,
    /// Broken by a write or remove of the key since the flight was registered.
    lease: AtomicBool,
    outcome: Mutex<Option<Outcome>>,
    landed: Condvar,
    #[cfg(feature = "async")]
    landed_async: event_listener::Event,
}

/// Why a flight is being joined, which decides what an existing entry or flight means.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A caller that missed: a live entry means there is nothing to load, and a load in
    /// flight is one to wait for.
    Miss,
    /// A refresh of an entry that may still be live: only a load already in flight stops it.
    Refresh,
    /// A write to the source (write-through) that wants to know whether any other write of
    /// the key lands before its own store to the cache. Nobody waits for it, and it never
    /// waits: it always leads a flight of its own.
    Write,
}

/// What a caller that missed is to do.
pub(crate) enum Role<'a> {
    /// The key got a live entry meanwhile: read it again.
    Present,
    /// Load it, then [`Lead::land`] the outcome.
    Lead(Lead<'a>),
    /// Wait for this flight's outcome.
    Follow(Arc<Flight>),
    /// The calling thread leads this very flight: waiting for it would never end.
    Recursive,
}

/// The leader's hold on a flight. Dropping it without landing an outcome lands
/// `on_drop` (a panic past the loader, or an async leader whose future was dropped).
pub(crate) struct Lead<'a> {
    flights: &'a Flights,
    hash: KeyHash,
    key: Vec<u8>,
    flight: Arc<Flight>,
    on_drop: Outcome,
}

impl Flights {
    pub(crate) fn new() -> Self {
        Flights {
            registered: AtomicU64::new(0),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    fn shard(&self, hash: KeyHash) -> MutexGuard<'_, Shard> {
        // Nothing runs under a shard lock that can panic halfway through a change.
        self.shards[hash.stripe(SHARDS)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Decides the role of a caller of `key`: registers a flight it leads, or finds the one to
    /// follow (see [`Purpose`]). `leader` is the caller's thread token (`None` for an async
    /// caller).
    pub(crate) fn join<E: Any>(
        &self,
        cache: &Cache,
        key: &[u8],
        leader: Option<usize>,
        purpose: Purpose,
    ) -> Role<'_> {
        let error_type = (purpose != Purpose::Write).then(TypeId::of::<E>);
        cache.with_key_locked(key, |hash, live| {
            if live && purpose == Purpose::Miss {
                return Role::Present;
            }
            let mut shard = self.shard(hash);
            let flights = shard.entry(key.to_vec()).or_default();
            let running = flights
                .iter()
                .filter(|f| error_type.is_some() && f.error_type == error_type);
            for flight in running {
                if leader.is_some() && flight.leader == leader {
                    return Role::Recursive;
                }
                // A broken lease means a write or remove landed after the load began: its
                // loader may have read the source before that write, so a caller arriving
                // now must not get its answer.
                if !flight.lease.load(Ordering::Relaxed) {
                    return Role::Follow(Arc::clone(flight));
                }
            }
            let flight = Arc::new(Flight {
                error_type,
                leader,
                lease: AtomicBool::new(false),
                outcome: Mutex::new(None),
                landed: Condvar::new(),
                #[cfg(feature = "async")]
                landed_async: event_listener::Event::new(),
            });
            flights.push(Arc::clone(&flight));
            self.registered.fetch_add(1, Ordering::Relaxed);
            Role::Lead(Lead {
                flights: self,
                hash,
                key: key.to_vec(),
                flight,
                on_drop: if leader.is_some() {
                    Outcome::Panicked("the loading thread panicked".into())
                } else {
                    Outcome::Abandoned
                },
            })
        })
    }

    /// Breaks the lease of every flight of `key`. Called by every write and remove of the key,
    /// under its bucket lock (which orders this against registrations and leased stores).
    #[inline]
    pub(crate) fn break_leases(&self, hash: KeyHash, key: &[u8]) {
        if self.registered.load(Ordering::Relaxed) == 0 {
            return;
        }
        if let Some(flights) = self.shard(hash).get(key) {
            flights
                .iter()
                .for_each(|f| f.lease.store(true, Ordering::Relaxed));
        }
    }

    /// Breaks every lease (for `clear`).
    pub(crate) fn break_all_leases(&self) {
        if self.registered.load(Ordering::Relaxed) == 0 {
            return;
        }
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            shard
                .values()
                .flatten()
                .for_each(|f| f.lease.store(true, Ordering::Relaxed));
        }
    }

    fn unregister(&self, hash: KeyHash, key: &[u8], flight: &Arc<Flight>) {
        let mut shard = self.shard(hash);
        if let Some(flights) = shard.get_mut(key) {
            flights.retain(|f| !Arc::ptr_eq(f, flight));
            if flights.is_empty() {
                shard.remove(key);
            }
        }
        self.registered.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Flight {
    fn outcome(&self) -> MutexGuard<'_, Option<Outcome>> {
        // Only whole outcomes are ever stored under this lock.
        self.outcome.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Blocks the calling thread until the leader lands an outcome.
    pub(crate) fn wait(&self) -> Outcome {
        let landed = self
            .landed
            .wait_while(self.outcome(), |o| o.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        landed.clone().expect("waited until an outcome landed")
    }

    /// Waits, without blocking the thread, until the leader lands an outcome.
    #[cfg(feature = "async")]
    pub(crate) async fn landed(&self) -> Outcome {
        loop {
            // Listen before looking, so a landing in between still wakes us.
            let listener = self.landed_async.listen();
            if let Some(outcome) = self.outcome().clone() {
                return outcome;
            }
            listener.await;
        }
    }
}

impl Lead<'_> {
    /// The flag a leased store checks: set once a write or remove of the key landed after the
    /// flight was registered.
    pub(crate) fn lease(&self) -> &AtomicBool {
        &self.flight.lease
    }

    /// Hands `outcome` to every follower and unregisters the flight. The leader stores its
    /// value (if any) before calling this.
    pub(crate) fn land(mut self, outcome: Outcome) {
        self.publish(outcome);
    }

    fn publish(&mut self, outcome: Outcome) {
        *self.flight.outcome() = Some(outcome);
        self.flight.landed.notify_all();
        #[cfg(feature = "async")]
        self.flight.landed_async.notify(usize::MAX);
        self.flights.unregister(self.hash, &self.key, &self.flight);
    }
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        if self.flight.outcome().is_none() {
            let outcome = std::mem::replace(&mut self.on_drop, Outcome::Abandoned);
            self.publish(outcome);
        }
    }
}
