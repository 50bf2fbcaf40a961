//! Removal events: the [`Event`] a listener is told about, the queue the engine fills under its
//! locks, and the delivery that calls the listener outside them (`docs/design.md`, "Removal
//! events" tells the whole story).
//!
//! Invariants:
//! - The queue's lock comes last in the lock order (class lock, bucket lock, queue lock) and is
//!   never held while the listener runs or while another lock is taken.
//! - At most one thread delivers at a time (the `delivering` flag). A thread that finds the
//!   flag set leaves what it queued to the deliverer, which takes batches until the queue is
//!   empty, clears the flag, then looks at the queue once more under its lock: an event queued
//!   while the flag was still set is delivered by this deliverer or the next, never left behind.
//!   A listener that calls the cache re-enters [`Events::deliver`] on the delivering thread,
//!   finds the flag set, and so only queues.
//! - A panic of the listener is caught per event and counted; the flag is cleared and the
//!   remaining events are delivered as if it had returned.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::sync::{self, AtomicBool, AtomicU64, Mutex, Ordering};

/// Why an entry left the cache, or had its value replaced.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RemovalCause {
    /// Dropped to make room: for a new entry, under `max_entries`, or to move its page to
    /// another size class. Counted in [`Stats::evictions`](crate::Stats::evictions).
    Evicted,
    /// Its TTL ran out; found by a write over its key, a `remove`, the eviction hands or the
    /// reaper. Counted in [`Stats::expirations`](crate::Stats::expirations).
    Expired,
    /// Removed by [`Cache::remove`](crate::Cache::remove) or
    /// [`Cache::remove_if_version`](crate::Cache::remove_if_version). Counted in
    /// [`Stats::removals`](crate::Stats::removals).
    Removed,
    /// Its value was replaced by a write to its key; the event carries the old value. Counted
    /// in [`Stats::updates`](crate::Stats::updates).
    Replaced,
    /// Removed by [`Cache::clear`](crate::Cache::clear). Counted in
    /// [`Stats::removals`](crate::Stats::removals).
    Cleared,
    /// Removed by [`Cache::invalidate_tag`](crate::Cache::invalidate_tag) of one of its tags.
    /// Counted in [`Stats::removals`](crate::Stats::removals).
    TagInvalidated,
}

/// An entry that left the cache or whose value was replaced, as the listener set with
/// [`CacheBuilder::listener`](crate::CacheBuilder::listener) is told about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    key: Vec<u8>,
    value: Vec<u8>,
    cause: RemovalCause,
}

impl Event {
    pub(crate) fn new(key: Vec<u8>, value: Vec<u8>, cause: RemovalCause) -> Self {
        Event { key, value, cause }
    }

    /// The entry's key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The value the entry held when it left (for [`RemovalCause::Replaced`]: the value
    /// before the write that replaced it).
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// Why the entry left or was replaced.
    pub fn cause(&self) -> RemovalCause {
        self.cause
    }
}

thread_local! {
    /// How many [`held`] scopes the thread is in.
    static HELD: Cell<u32> = const { Cell::new(0) };
}

/// Runs `f` with this thread's deliveries held back: the events it queues wait for the next
/// delivery after `f` (another thread's, or the caller's). For a protocol whose steps a
/// listener must not run between: a tagged write counts itself in flight on its tags until it
/// is done, and a listener that invalidated one of them there would wait for the write it was
/// called from.
pub(crate) fn held<R>(f: impl FnOnce() -> R) -> R {
    let add = |n: i32| {
        // A thread whose thread-locals are gone holds nothing back; nothing it calls needs to.
        let _ = HELD.try_with(|held| held.set(held.get().wrapping_add_signed(n)));
    };
    add(1);
    // Restored on unwinding too, so a panic does not leave the thread holding forever.
    struct Release<F: Fn(i32)>(F);
    impl<F: Fn(i32)> Drop for Release<F> {
        fn drop(&mut self) {
            (self.0)(-1);
        }
    }
    let _release = Release(add);
    f()
}

fn is_held() -> bool {
    HELD.try_with(|held| held.get() > 0).unwrap_or(false)
}

/// The listener a cache calls with each event.
pub(crate) type Listener = Box<dyn Fn(&Event) + Send + Sync>;

/// A cache's listener, the events queued for it, and the state of their delivery.
pub(crate) struct Events {
    listener: Listener,
    queue: Mutex<Vec<Event>>,
    /// Whether the queue holds an event: set and cleared under the queue's lock, read without
    /// it so that an operation that queued nothing skips delivery at the cost of one load.
    queued: AtomicBool,
    /// Set while a thread delivers.
    delivering: AtomicBool,
    panics: AtomicU64,
}

impl Events {
    pub(crate) fn new(listener: Listener) -> Self {
        Events {
            listener,
            queue: Mutex::new(Vec::new()),
            queued: AtomicBool::new(false),
            delivering: AtomicBool::new(false),
            panics: AtomicU64::new(0),
        }
    }

    /// Queues an event for the next delivery. Callable under the engine's locks: the queue's
    /// lock is the last in their order and is held only for the push.
    pub(crate) fn push(&self, event: Event) {
        let mut queue = sync::lock(&self.queue);
        queue.push(event);
        self.queued.store(true, Ordering::Relaxed);
    }

    /// Calls the listener with every queued event, unless another thread (or this one, further
    /// up its stack) is delivering already: that one delivers them; or unless this thread is
    /// inside [`held`]: its caller delivers when it is done. Call it holding no lock.
    pub(crate) fn deliver(&self) {
        // The events this thread queued are seen here (they were stored by this thread), unless
        // a deliverer took them already.
        if !self.queued.load(Ordering::Relaxed) || is_held() {
            return;
        }
        let mut batch = Vec::new();
        loop {
            // A compare-exchange, not a swap, though either would do: loom 0.7 lets a store
            // fall between the read and the write of a swap (tokio-rs/loom#254), and then
            // reports this loop losing events that it does not lose.
            if self
                .delivering
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                return;
            }
            while self.take_into(&mut batch) {
                for event in batch.drain(..) {
                    self.call(&event);
                }
            }
            self.delivering.store(false, Ordering::Release);
            // An event queued after the last batch was taken, by a thread that then found the
            // flag still set, is ours to deliver. Its push precedes this look in the queue
            // lock's order, or else this thread's clearing of the flag precedes its look at the
            // flag, and it delivers for itself.
            if !self.queued_under_lock() {
                return;
            }
        }
    }

    /// The number of listener calls that panicked.
    pub(crate) fn panics(&self) -> u64 {
        self.panics.load(Ordering::Relaxed)
    }

    /// Moves the queued events into `batch` (empty, its capacity handed to the queue); false
    /// when there were none.
    fn take_into(&self, batch: &mut Vec<Event>) -> bool {
        let mut queue = sync::lock(&self.queue);
        std::mem::swap(&mut *queue, batch);
        self.queued.store(false, Ordering::Relaxed);
        !batch.is_empty()
    }

    fn queued_under_lock(&self) -> bool {
        !sync::lock(&self.queue).is_empty()
    }

    /// Calls the listener, containing a panic: the cache must stay usable, and the events after
    /// this one must still be delivered.
    fn call(&self, event: &Event) {
        // The listener is the caller's code: whatever it left half-done when it panicked is its
        // own state, which the cache never looks at.
        if catch_unwind(AssertUnwindSafe(|| (self.listener)(event))).is_err() {
            self.panics.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(all(test, not(slabcache_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn event(n: u8) -> Event {
        Event::new(vec![n], vec![n, n], RemovalCause::Removed)
    }

    #[test]
    fn delivers_in_queue_order_and_only_once() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let events = Events::new(Box::new({
            let seen = seen.clone();
            move |e: &Event| seen.lock().unwrap().push(e.key()[0])
        }));
        events.deliver();
        (0..3).for_each(|n| events.push(event(n)));
        events.deliver();
        events.deliver();
        assert_eq!(*seen.lock().unwrap(), [0, 1, 2]);
    }

    #[test]
    fn a_panicking_listener_is_counted_and_the_rest_still_delivered() {
        let seen = Arc::new(AtomicU64::new(0));
        let events = Events::new(Box::new({
            let seen = seen.clone();
            move |e: &Event| {
                seen.fetch_add(1, Ordering::Relaxed);
                assert!(e.key()[0] != 1, "the listener panics on event 1");
            }
        }));
        (0..4).for_each(|n| events.push(event(n)));
        events.deliver();
        assert_eq!(seen.load(Ordering::Relaxed), 4);
        assert_eq!(events.panics(), 1);
        events.push(event(5));
        events.deliver();
        assert_eq!(
            seen.load(Ordering::Relaxed),
            5,
            "delivery goes on after a panic"
        );
    }
}
