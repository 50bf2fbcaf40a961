//! Time: the [`Clock`] the cache reads, and the rules that turn a TTL into a deadline.
//!
//! Deadlines are absolute nanoseconds on the cache's clock. An entry written at `t` with TTL
//! `d` is visible while `now < t + d` and expired from `now >= t + d` on: the boundary instant
//! itself is already expired. With jitter `j`, the TTL actually used is drawn uniformly from
//! `[d, d * (1 + j)]`, so keys written together do not expire together. Jitter applies to every
//! TTL, the default one and the per-entry ones alike.
//!
//! Entries without a TTL carry the deadline [`NEVER`] and the read path skips the clock for
//! them, so a cache without TTLs never pays for reading time.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::rng;
use crate::sync::{AtomicU64, Ordering};

/// Deadline of an entry that never expires.
pub(crate) const NEVER: u64 = u64::MAX;

/// A monotonic source of time for one cache.
///
/// `now` returns the time elapsed since an origin of the clock's choosing; it must never go
/// backwards. Tests inject a [`ManualClock`] so that expiry is checked without sleeping.
pub trait Clock: Send + Sync {
    /// Time elapsed since this clock's origin.
    fn now(&self) -> Duration;
}

/// The default clock: `std::time::Instant`, with its origin at the clock's creation.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock reading zero now.
    pub fn new() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that moves only when told to; starts at zero.
///
/// ```
/// use std::{sync::Arc, time::Duration};
/// use slabcache::{Cache, ManualClock};
///
/// let clock = Arc::new(ManualClock::new());
/// let cache = Cache::builder().max_bytes(8 << 20).clock(clock.clone()).build()?;
/// cache.insert_with_ttl(b"k", b"v", Some(Duration::from_secs(10)))?;
/// clock.advance(Duration::from_secs(10));
/// assert_eq!(cache.get(b"k"), None); // expired exactly at the deadline
/// # Ok::<(), slabcache::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    /// A clock standing at zero until it is moved.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.nanos.fetch_add(duration_nanos(by), Ordering::SeqCst);
    }

    /// Moves the clock forward to `to`; does nothing if it already reads `to` or later. For
    /// a clock that follows another time source read by several threads, whose readings may
    /// reach it out of order.
    pub fn advance_to(&self, to: Duration) {
        self.nanos.fetch_max(duration_nanos(to), Ordering::SeqCst);
    }

    /// Sets the clock to `to`. Panics if that would move it backwards: a [`Clock`] is monotonic.
    pub fn set(&self, to: Duration) {
        let to = duration_nanos(to);
        let before = self.nanos.fetch_max(to, Ordering::SeqCst);
        assert!(before <= to, "ManualClock::set would move time backwards");
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

/// Saturating conversion to nanoseconds; `u64` nanoseconds cover 584 years.
pub(crate) fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The TTL rules of one cache: its default TTL and jitter fraction.
pub(crate) struct TtlRules {
    pub(crate) default_ttl: Option<Duration>,
    /// Jitter as a fraction of the TTL, in `[0, 1]`.
    pub(crate) jitter: f64,
}

impl TtlRules {
    /// The absolute deadline for an entry written `now` with `ttl` (`None`: never expires).
    pub(crate) fn deadline(&self, now: &Now<'_>, ttl: Option<Duration>) -> u64 {
        let Some(ttl) = ttl else { return NEVER };
        let now = now.get();
        let base = duration_nanos(ttl);
        let extra = if self.jitter > 0.0 {
            // Uniform in [0, base * jitter]; the float rounding stays well inside the bound.
            (base as f64 * self.jitter * rng::unit_f64()) as u64
        } else {
            0
        };
        now.saturating_add(base.saturating_add(extra))
            .min(NEVER - 1)
    }
}

/// One instant of an operation, read from the clock the first time it is needed and never
/// again: an operation that meets no deadline never reads the clock at all.
pub(crate) struct Now<'a> {
    clock: &'a dyn Clock,
    read: Cell<Option<u64>>,
}

impl<'a> Now<'a> {
    pub(crate) fn new(clock: &'a dyn Clock) -> Self {
        Now {
            clock,
            read: Cell::new(None),
        }
    }

    pub(crate) fn get(&self) -> u64 {
        if let Some(now) = self.read.get() {
            return now;
        }
        let now = duration_nanos(self.clock.now());
        self.read.set(Some(now));
        now
    }

    /// Whether `deadline` has passed (the boundary instant counts as passed).
    #[inline]
    pub(crate) fn expired(&self, deadline: u64) -> bool {
        deadline != NEVER && self.get() >= deadline
    }
}
