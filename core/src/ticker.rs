//! The maintenance thread of a shared cache: every interval it runs one round of maintenance
//! on the cache, which it holds only through a `Weak` (`docs/design.md`, "Removal events").
//!
//! Invariants:
//! - The thread holds a strong reference only for the length of one round, so it never keeps
//!   the cache alive; when the round's reference was the last, the cache is dropped on this
//!   thread, which then stops.
//! - Stopping the [`Ticker`] ([`Ticker::stop`], or dropping it) stops the thread at once (it
//!   waits on a condvar, not a sleep) and, from any thread but a maintenance thread, joins it,
//!   so a round in progress has ended when it returns. The join cannot wait on the cache: a
//!   cache is dropped only when no strong reference is left, so the thread is waiting, or
//!   failing to upgrade its `Weak`, never inside a round.

use std::cell::Cell;
use std::io;
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// The name of every maintenance thread.
pub(crate) const THREAD_NAME: &str = "slabcache-maintenance";

thread_local! {
    /// Whether this thread is a maintenance thread, which must not join itself (and need not
    /// join another: a stopped one ends on its own).
    static IS_MAINTENANCE_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// A running maintenance thread; stopping or dropping it stops the thread.
pub(crate) struct Ticker {
    control: Arc<Control>,
    /// Taken by the first stop that joins it. std's lock, not `sync`'s, as for [`Control`].
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// What the owner and the thread share. std's lock and condvar, not `sync`'s: this is a
/// blocking wait with a timeout, which loom need not model (no model starts the thread).
struct Control {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Ticker {
    /// Starts a thread that calls `round` on `target` every `interval`, for as long as
    /// `target` lives and the ticker is not dropped.
    pub(crate) fn start<T: Send + Sync + 'static>(
        target: &Arc<T>,
        interval: Duration,
        round: fn(&T),
    ) -> io::Result<Ticker> {
        let control = Arc::new(Control {
            stopped: Mutex::new(false),
            wake: Condvar::new(),
        });
        let target = Arc::downgrade(target);
        let thread = thread::Builder::new().name(THREAD_NAME.into()).spawn({
            let control = control.clone();
            move || {
                IS_MAINTENANCE_THREAD.with(|is| is.set(true));
                run(&target, &control, interval, round);
            }
        })?;
        Ok(Ticker {
            control,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Stops the thread and, unless called on a maintenance thread, waits for it to end: a
    /// round in progress has then ended. Later calls do nothing.
    pub(crate) fn stop(&self) {
        self.control.stop();
        // `try_with` fails only in a thread-local's destructor, which no maintenance thread
        // runs while it can drop a cache.
        let on_maintenance_thread = IS_MAINTENANCE_THREAD.try_with(Cell::get).unwrap_or(false);
        if on_maintenance_thread {
            return;
        }
        // Held through the join, so that a concurrent stop returns after it too. Nothing
        // panics while holding it, so a poisoned one still holds the handle.
        let mut handle = self.thread.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(thread) = handle.take() {
            // The thread contains the listener's panics; should it end by a panic anyway,
            // there is nothing left to stop.
            let _ = thread.join();
        }
    }
}

fn run<T>(target: &Weak<T>, control: &Control, interval: Duration, round: fn(&T)) {
    while control.wait(interval) {
        let Some(target) = target.upgrade() else {
            return;
        };
        round(&target);
    }
}

impl Control {
    /// Waits out `interval` unless stopped meanwhile; false once stopped.
    fn wait(&self, interval: Duration) -> bool {
        // Nothing panics while holding this lock, so a poisoned one still holds a valid flag.
        let stopped = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        let (stopped, _) = self
            .wake
            .wait_timeout_while(stopped, interval, |stopped| !*stopped)
            .unwrap_or_else(PoisonError::into_inner);
        !*stopped
    }

    fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.wake.notify_all();
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(all(test, not(slabcache_loom)))]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn dropping_the_ticker_joins_its_thread_without_waiting_out_the_interval() {
        let target = Arc::new(());
        let ticker = Ticker::start(&target, Duration::from_secs(3600), |_| {}).unwrap();
        assert_eq!(Arc::weak_count(&target), 1, "the thread holds a Weak");
        // Dropped on a thread of its own, so that a drop that waits out the hour fails the
        // test instead of hanging it.
        let (dropped, done) = mpsc::channel();
        thread::spawn(move || {
            drop(ticker);
            let _ = dropped.send(());
        });
        done.recv_timeout(Duration::from_secs(120))
            .expect("dropping the ticker waited for its interval");
        // Joined: the thread has ended, and its `Weak` with it.
        assert_eq!(Arc::weak_count(&target), 0);
    }
}
