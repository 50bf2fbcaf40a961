//! Write-behind: writes acknowledged once they are in the cache and in this queue, and sent to
//! the source in batches by one flusher thread.
//!
//! Invariants:
//! - The queue holds at most one operation per key (a store of its latest value, or a
//!   delete): a newer write of a key replaces the older one (coalescing), so a delete after a
//!   store leaves the delete, and a store after a delete the store.
//! - Only one flusher sends batches, one at a time, and a key's operation stays "in flight"
//!   until its batch is confirmed: a newer operation of the same key waits in the queue until
//!   then, so the source sees each key's writes in the order they were made.
//! - Nothing is dropped: a full queue blocks the writer or refuses the write (as configured);
//!   a failed batch is retried with exponential backoff and jitter, reported on each failure,
//!   and given up only after `max_attempts` (unlimited by default), which is counted and
//!   reported too.
//! - A reader that misses the cache asks the queue first ([`Queue::pending`]), so a key
//!   whose write was evicted from the cache before it reached the source still reads as
//!   written.
//! - `flush` waits until every write acknowledged before it began has reached the source
//!   (or been given up): each operation remembers the sequence number of the oldest write it
//!   stands for.

use std::collections::{HashMap, VecDeque};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::source::Source;
use super::stats::{BackedCounter, BackedCounters};
use super::BackedError;
use crate::rng;

/// Settings of write-behind (`WriteMode::Behind`).
#[derive(Clone, Debug)]
pub struct WriteBehind {
    /// Most operations sent to the source in one batch (at least 1).
    pub batch_size: usize,
    /// Longest an acknowledged write waits before its batch is sent, when fewer than
    /// `batch_size` are queued.
    pub max_delay: Duration,
    /// Most keys with a write not yet confirmed by the source (at least 1).
    pub queue_capacity: usize,
    /// What a write does when the queue is full.
    pub when_full: WhenFull,
    /// How failed batches are retried.
    pub retry: Retry,
}

impl Default for WriteBehind {
    fn default() -> Self {
        WriteBehind {
            batch_size: 64,
            max_delay: Duration::from_millis(50),
            queue_capacity: 65_536,
            when_full: WhenFull::Block,
            retry: Retry::default(),
        }
    }
}

/// What a write-behind write does when the queue is full. Either way, nothing is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenFull {
    /// Wait until the flusher makes room.
    Block,
    /// Return [`BackedError::QueueFull`] at once (the write is not made).
    Error,
}

/// How a failed write-behind batch is retried: after `initial_backoff`, doubling up to
/// `max_backoff`, each wait drawn uniformly from its upper half (jitter).
#[derive(Clone, Debug)]
pub struct Retry {
    /// The wait after the first failure.
    pub initial_backoff: Duration,
    /// The longest wait.
    pub max_backoff: Duration,
    /// Attempts before a batch is given up (counted in `failed` and reported); `None`:
    /// retry until the source takes it.
    pub max_attempts: Option<u32>,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(1),
            max_attempts: None,
        }
    }
}

/// A failed attempt to send a batch, as the `on_write_error` callback sees it.
#[derive(Debug)]
pub struct WriteFailure<'a, E> {
    /// The keys of the batch.
    pub keys: &'a [Vec<u8>],
    /// The source's error; `None` when the source panicked.
    pub error: Option<&'a E>,
    /// The error's text, or the panic's message.
    pub message: String,
    /// Which attempt failed, from 1.
    pub attempt: u32,
    /// Whether the batch is given up (`max_attempts` reached): its writes will not reach the
    /// source.
    pub gave_up: bool,
}

/// One key's write not yet confirmed by the source.
#[derive(Clone)]
pub(crate) enum Op {
    Store(Vec<u8>),
    Delete,
}

struct Queued {
    op: Op,
    /// Sequence number of the oldest acknowledged write this operation stands for.
    since: u64,
}

#[derive(Default)]
struct State {
    waiting: HashMap<Vec<u8>, Queued>,
    /// Keys in the order they started waiting (a key may appear after it stopped waiting:
    /// such entries are skipped).
    order: VecDeque<Vec<u8>>,
    in_flight: HashMap<Vec<u8>, Queued>,
    /// When the oldest waiting write was acknowledged.
    oldest: Option<Instant>,
    next_seq: u64,
    /// Flushes asked for: the flusher sends at once, whatever the batch size.
    flushes: usize,
    closing: bool,
}

pub(crate) type FailureHook<E> = Box<dyn Fn(&WriteFailure<'_, E>) + Send + Sync>;

/// The queue between writers and the flusher.
pub(crate) struct Queue<E> {
    settings: WriteBehind,
    state: Mutex<State>,
    /// The flusher waits here for work.
    work: Condvar,
    /// Writers wait here for room, and `flush` for its writes to land.
    progress: Condvar,
    on_failure: Option<FailureHook<E>>,
}

impl<E: std::fmt::Display> Queue<E> {
    pub(crate) fn new(settings: WriteBehind, on_failure: Option<FailureHook<E>>) -> Self {
        Queue {
            settings,
            state: Mutex::default(),
            work: Condvar::new(),
            progress: Condvar::new(),
            on_failure,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // No user code runs under this lock, and every change to the state is whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, on: &Condvar, state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        on.wait(state).unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `op` for `key`, acknowledged once this returns `Ok`.
    pub(crate) fn push(
        &self,
        key: &[u8],
        op: Op,
        counters: &BackedCounters,
    ) -> Result<(), BackedError<E>> {
        let mut state = self.state();
        loop {
            if state.closing {
                return Err(BackedError::Closed);
            }
            let seq = state.next_seq;
            if let Some(queued) = state.waiting.get_mut(key) {
                queued.op = op;
                counters.bump(BackedCounter::Coalesced);
                state.next_seq += 1;
                return Ok(());
            }
            if state.waiting.len() + state.in_flight.len() < self.settings.queue_capacity {
                state
                    .waiting
                    .insert(key.to_vec(), Queued { op, since: seq });
                state.order.push_back(key.to_vec());
                state.oldest.get_or_insert_with(Instant::now);
                state.next_seq += 1;
                self.work.notify_one();
                return Ok(());
            }
            match self.settings.when_full {
                WhenFull::Error => return Err(BackedError::QueueFull),
                WhenFull::Block => state = self.wait(&self.progress, state),
            }
        }
    }

    /// The write of `key` not yet confirmed by the source, if any: `Some(Some(value))` for a
    /// store, `Some(None)` for a delete.
    pub(crate) fn pending(&self, key: &[u8]) -> Option<Option<Vec<u8>>> {
        let state = self.state();
        let queued = state
            .waiting
            .get(key)
            .or_else(|| state.in_flight.get(key))?;
        Some(match &queued.op {
            Op::Store(value) => Some(value.clone()),
            Op::Delete => None,
        })
    }

    /// Keys with a write not yet confirmed by the source.
    pub(crate) fn depth(&self) -> usize {
        let state = self.state();
        state.waiting.len() + state.in_flight.len()
    }

    /// Blocks until every write acknowledged before the call has reached the source or been
    /// given up.
    pub(crate) fn flush(&self) {
        let mut state = self.state();
        let target = state.next_seq;
        state.flushes += 1;
        self.work.notify_one();
        while state
            .waiting
            .values()
            .chain(state.in_flight.values())
            .any(|q| q.since < target)
        {
            state = self.wait(&self.progress, state);
        }
        state.flushes -= 1;
    }

    /// Refuses further writes and lets the flusher finish what is queued and stop.
    pub(crate) fn close(&self) {
        self.state().closing = true;
        self.work.notify_all();
        self.progress.notify_all();
    }

    /// The flusher thread's body: sends batches until closed and drained.
    pub(crate) fn run_flusher<S: Source<Error = E>>(&self, source: &S, counters: &BackedCounters) {
        while let Some(batch) = self.next_batch() {
            self.send(source, counters, &batch);
            let mut state = self.state();
            for key in &batch {
                state.in_flight.remove(key);
            }
            drop(state);
            self.progress.notify_all();
        }
    }

    /// Waits for a batch to send and moves it in flight; `None` once closed and drained.
    fn next_batch(&self) -> Option<Vec<Vec<u8>>> {
        let mut state = self.state();
        loop {
            if state.waiting.is_empty() {
                if state.closing {
                    return None;
                }
                state = self.wait(&self.work, state);
                continue;
            }
            let due = state.waiting.len() >= self.settings.batch_size
                || state.flushes > 0
                || state.closing
                || state
                    .oldest
                    .is_some_and(|t| t.elapsed() >= self.settings.max_delay);
            if due {
                break;
            }
            let left = state.oldest.map_or(self.settings.max_delay, |t| {
                self.settings.max_delay.saturating_sub(t.elapsed())
            });
            state = self
                .work
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        // The previous batch has landed (one flusher, one batch at a time), so no key of this
        // one is still in flight: the source sees each key's writes in order.
        let mut batch = Vec::new();
        while batch.len() < self.settings.batch_size {
            let Some(key) = state.order.pop_front() else {
                break;
            };
            if let Some(queued) = state.waiting.remove(&key) {
                state.in_flight.insert(key.clone(), queued);
                batch.push(key);
            }
        }
        state.oldest = (!state.waiting.is_empty()).then(Instant::now);
        Some(batch)
    }

    /// Sends one batch until the source takes it or its attempts run out.
    fn send<S: Source<Error = E>>(&self, source: &S, counters: &BackedCounters, keys: &[Vec<u8>]) {
        let (stores, deletes) = {
            let state = self.state();
            let mut stores = Vec::new();
            let mut deletes = Vec::new();
            for key in keys {
                match &state.in_flight[key].op {
                    Op::Store(value) => stores.push((key.clone(), value.clone())),
                    Op::Delete => deletes.push(key.clone()),
                }
            }
            (stores, deletes)
        };
        let mut backoff = self.settings.retry.initial_backoff;
        for attempt in 1.. {
            let sent = panic::catch_unwind(AssertUnwindSafe(|| {
                if !stores.is_empty() {
                    source.store_batch(&stores)?;
                }
                if !deletes.is_empty() {
                    source.delete_batch(&deletes)?;
                }
                Ok::<(), E>(())
            }));
            let (error, message) = match &sent {
                Ok(Ok(())) => {
                    counters.add(BackedCounter::Flushed, keys.len() as u64);
                    return;
                }
                Ok(Err(e)) => (Some(e), e.to_string()),
                Err(panic) => (None, crate::load::panic_message(&**panic)),
            };
            let gave_up = self
                .settings
                .retry
                .max_attempts
                .is_some_and(|max| attempt >= max);
            if gave_up {
                counters.add(BackedCounter::Failed, keys.len() as u64);
            } else {
                counters.bump(BackedCounter::Retried);
            }
            if let Some(report) = &self.on_failure {
                let failure = WriteFailure {
                    keys,
                    error,
                    message,
                    attempt,
                    gave_up,
                };
                // A panicking report is the caller's bug; the batch still follows its course.
                let _ = panic::catch_unwind(AssertUnwindSafe(|| report(&failure)));
            }
            if gave_up {
                return;
            }
            // Jitter: a wait drawn from the upper half of the backoff, so that writers who
            // failed together do not retry together.
            let half = backoff / 2;
            std::thread::sleep(half + half.mul_f64(rng::unit_f64()));
            backoff = (backoff * 2).min(self.settings.retry.max_backoff);
        }
    }
}
