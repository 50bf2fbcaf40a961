//! When a hit of a [`Backed`](super::Backed) cache should refresh its entry in the
//! background, and the pool of threads that runs those refreshes.
//!
//! Three rules, each optional, decide on every hit ([`Freshness::judge`]):
//! - **stale-while-revalidate**: past its fresh time (and within the window, which is how long
//!   the cache keeps the entry), the stale value is served at once and a refresh starts;
//! - **refresh-ahead**: once an entry is older than a fraction of its TTL, a hit starts a
//!   refresh and is served the current value;
//! - **early expiry** (XFetch; Vattani, Chierichetti and Lowenstein, "Optimal Probabilistic
//!   Cache Stampede Prevention", VLDB 2015): a hit at `now` starts a refresh when
//!   `now - delta * beta * ln(u) >= fresh_until`, `u` uniform in (0, 1] and `delta` how long the
//!   entry's load took. Keys that are slow to load and read often refresh earlier; a key
//!   nobody reads is never refreshed. The paper recomputes in the reader's own thread; here
//!   the reader is served the current value and the refresh runs in the pool, so no reader
//!   ever waits for it.
//!
//! Refreshes are deduplicated per key three times over: a key already queued is not queued
//! again; a refresh runs only if the entry whose read asked for it is still the cached one
//! (a read that judged it just before an earlier refresh replaced it asks again, too late);
//! and a refresh runs as a flight (`load::flight`), so it never overlaps a load of the same
//! key, and a write that lands meanwhile wins over it. The queue is bounded: when it is
//! full, the hit is served and no refresh is queued (a later hit asks again).

use std::collections::HashSet;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::frame::Frame;
use crate::rng::SharedRng;
use crate::ttl::duration_nanos;
use crate::version::Version;

/// What a hit of an entry calls for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Serve it.
    Fresh,
    /// Serve it and refresh it in the background.
    RefreshAhead,
    /// Past its fresh time: serve it (stale) and refresh it in the background.
    Stale,
}

/// The refresh rules of one `Backed`.
pub(crate) struct Freshness {
    pub(crate) ttl: Option<Duration>,
    pub(crate) refresh_ahead: Option<f64>,
    pub(crate) early_expiry_beta: Option<f64>,
    pub(crate) rng: SharedRng,
}

impl Freshness {
    /// Whether any rule can ask for a background refresh (and a pool is needed).
    pub(crate) fn refreshes(&self, stale_window: Option<Duration>) -> bool {
        stale_window.is_some() || self.refresh_ahead.is_some() || self.early_expiry_beta.is_some()
    }

    pub(crate) fn judge(&self, frame: &Frame<'_>, now: u64) -> Verdict {
        if now >= frame.fresh_until {
            return Verdict::Stale;
        }
        let Some(ttl) = self.ttl.map(duration_nanos) else {
            return Verdict::Fresh;
        };
        if let Some(fraction) = self.refresh_ahead {
            let loaded_at = frame.fresh_until.saturating_sub(ttl);
            if now >= loaded_at.saturating_add((ttl as f64 * fraction) as u64) {
                return Verdict::RefreshAhead;
            }
        }
        if let Some(beta) = self.early_expiry_beta {
            // 1 - u is uniform in (0, 1], so its logarithm is finite.
            let draw = -(1.0 - self.rng.unit_f64()).ln();
            let delta = duration_nanos(frame.load_time) as f64;
            if now.saturating_add((delta * beta * draw) as u64) >= frame.fresh_until {
                return Verdict::RefreshAhead;
            }
        }
        Verdict::Fresh
    }
}

/// A queued refresh: the key, and the version of the entry whose read asked for it.
type Request = (Vec<u8>, Version);

/// The threads that run refreshes, fed by a bounded queue of keys.
pub(crate) struct Pool {
    queue: Mutex<Option<SyncSender<Request>>>,
    queued: Arc<Queued>,
}

/// The keys queued or being refreshed, and a condvar told when none is left.
#[derive(Default)]
struct Queued {
    keys: Mutex<HashSet<Vec<u8>>>,
    none_left: Condvar,
}

impl Queued {
    fn keys(&self) -> MutexGuard<'_, HashSet<Vec<u8>>> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Pool {
    /// Starts `threads` threads that run `refresh` for each queued key (with the version its
    /// request carries); at most `capacity` keys wait.
    pub(crate) fn start(
        threads: usize,
        capacity: usize,
        refresh: impl Fn(&[u8], Version) + Send + Sync + 'static,
    ) -> (Pool, Vec<JoinHandle<()>>) {
        let (sender, receiver) = mpsc::sync_channel::<Request>(capacity);
        let receiver = Arc::new(Mutex::new(receiver));
        let queued = Arc::new(Queued::default());
        let refresh = Arc::new(refresh);
        let handles = (0..threads)
            .map(|i| {
                let (receiver, queued, refresh) = (
                    Arc::clone(&receiver),
                    Arc::clone(&queued),
                    Arc::clone(&refresh),
                );
                thread::Builder::new()
                    .name(format!("slabcache-refresh-{i}"))
                    .spawn(move || work(&receiver, &queued, &*refresh))
                    .expect("spawn a refresh thread")
            })
            .collect();
        let pool = Pool {
            queue: Mutex::new(Some(sender)),
            queued,
        };
        (pool, handles)
    }

    /// Queues a refresh of `key`, asked for by a read of its entry at version `judged`,
    /// unless one is queued or running already, or the queue is full or closed.
    pub(crate) fn request(&self, key: &[u8], judged: Version) {
        let queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(sender) = queue.as_ref() else {
            return;
        };
        let mut queued = self.queued.keys();
        if !queued.insert(key.to_vec()) {
            return;
        }
        match sender.try_send((key.to_vec(), judged)) {
            Ok(()) => {}
            Err(TrySendError::Full((key, _)) | TrySendError::Disconnected((key, _))) => {
                queued.remove(&key);
            }
        }
    }

    /// Blocks until every refresh queued before the call has run.
    pub(crate) fn settle(&self) {
        let mut queued = self.queued.keys();
        while !queued.is_empty() {
            queued = self
                .queued
                .none_left
                .wait(queued)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Stops taking refreshes; the threads finish the queued ones and end.
    pub(crate) fn close(&self) {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}

fn work(
    receiver: &Mutex<Receiver<Request>>,
    queued: &Queued,
    refresh: &(dyn Fn(&[u8], Version) + Send + Sync),
) {
    loop {
        let next = receiver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv();
        let Ok((key, judged)) = next else {
            return;
        };
        refresh(&key, judged);
        let mut keys = queued.keys();
        keys.remove(&key);
        if keys.is_empty() {
            queued.none_left.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(fresh_until: u64, load_time: Duration) -> Frame<'static> {
        Frame {
            fresh_until,
            load_time,
            value: Some(b"v"),
        }
    }

    fn rules(refresh_ahead: Option<f64>, beta: Option<f64>) -> Freshness {
        Freshness {
            ttl: Some(Duration::from_nanos(1000)),
            refresh_ahead,
            early_expiry_beta: beta,
            rng: SharedRng::new(7),
        }
    }

    #[test]
    fn past_its_fresh_time_an_entry_is_stale() {
        let rules = rules(None, None);
        assert_eq!(
            rules.judge(&frame(2000, Duration::ZERO), 1999),
            Verdict::Fresh
        );
        assert_eq!(
            rules.judge(&frame(2000, Duration::ZERO), 2000),
            Verdict::Stale
        );
    }

    #[test]
    fn refresh_ahead_starts_at_its_fraction_of_the_ttl() {
        // Loaded at 1000, fresh until 2000: 80% of the TTL is 1800.
        let rules = rules(Some(0.8), None);
        assert_eq!(
            rules.judge(&frame(2000, Duration::ZERO), 1799),
            Verdict::Fresh
        );
        assert_eq!(
            rules.judge(&frame(2000, Duration::ZERO), 1800),
            Verdict::RefreshAhead
        );
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "30,000 draws of plain arithmetic: nothing for Miri to check"
    )]
    fn early_expiry_grows_likelier_near_the_end_and_with_slow_loads() {
        let rules = rules(None, Some(1.0));
        let share = |now: u64, load: u64| {
            let frame = frame(2000, Duration::from_nanos(load));
            (0..10_000)
                .filter(|_| rules.judge(&frame, now) == Verdict::RefreshAhead)
                .count()
        };
        // P(refresh) = exp(-gap / (delta * beta)).
        assert_eq!(share(1000, 0), 0, "an instant load never refreshes early");
        let (early, late) = (share(1000, 100), share(1900, 100));
        assert!(
            early < 10,
            "gap of 10 deltas: e^-10 of 10,000 is 0.5 ({early})"
        );
        assert!(
            (3300..4000).contains(&late),
            "gap of 1 delta: e^-1 is 37% ({late})"
        );
        let slow = share(1000, 1000);
        assert!(
            (3300..4000).contains(&slow),
            "a slower load: 37% already ({slow})"
        );
    }
}
