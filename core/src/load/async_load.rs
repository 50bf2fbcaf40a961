//! `get_or_load_async` (cargo feature `async`): single-flight loads for async callers, on any
//! runtime. Followers are woken through `event-listener` when their leader lands, never
//! polled in a loop; a leader whose future is dropped before it lands (its task cancelled)
//! abandons the flight, and its followers start over, one of them leading the next load.
//!
//! Recursion is not detected here: a task that awaits a load of its own key from inside that
//! load's loader waits forever, as it would awaiting itself any other way. (Thread identity
//! cannot tell, since tasks share threads and move between them.)

use std::any::Any;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::flight::{Purpose, Role};
use super::{finished, LoadError, LoadResult};
use crate::cache::Cache;
use crate::stats::Counter;

impl Cache {
    /// [`get_or_load`](Cache::get_or_load) for async code: on a miss, the future `load(key)`
    /// returns is awaited by one caller while the others await its outcome. Works on any
    /// runtime. Same guarantees as the blocking version, except that a loader awaiting a load
    /// of its own key is not detected (it never finishes).
    ///
    /// Dropping the returned future while it leads a load abandons that load: nothing is
    /// cached, and the callers waiting for it start over.
    pub async fn get_or_load_async<E, F, Fut>(&self, key: &[u8], load: F) -> LoadResult<E>
    where
        E: Send + Sync + 'static,
        F: FnOnce(Vec<u8>) -> Fut,
        Fut: Future<Output = Result<Option<Vec<u8>>, E>>,
    {
        self.get_or_load_async_with_ttl(key, self.default_ttl(), load)
            .await
    }

    /// [`get_or_load_async`](Cache::get_or_load_async), storing a loaded value with `ttl`
    /// (`None`: never expires) in place of the default.
    pub async fn get_or_load_async_with_ttl<E, F, Fut>(
        &self,
        key: &[u8],
        ttl: Option<Duration>,
        load: F,
    ) -> LoadResult<E>
    where
        E: Send + Sync + 'static,
        F: FnOnce(Vec<u8>) -> Fut,
        Fut: Future<Output = Result<Option<Vec<u8>>, E>>,
    {
        if let Some(value) = self.get(key) {
            return Ok(Some(value));
        }
        self.check_key(key).map_err(LoadError::Cache)?;
        let mut load = Some(load);
        loop {
            let outcome = match self.flights().join::<E>(self, key, None, Purpose::Miss) {
                Role::Present => match self.get(key) {
                    Some(value) => return Ok(Some(value)),
                    None => continue,
                },
                Role::Recursive => unreachable!("a caller without a thread token never leads"),
                Role::Follow(flight) => {
                    self.count(Counter::LoadWait);
                    flight.landed().await
                }
                Role::Lead(lead) => {
                    let load = load.take().expect("a caller leads at most one flight");
                    self.count(Counter::Load);
                    let answer = CatchUnwind::new(|| load(key.to_vec())).await;
                    self.store_and_land(lead, key, ttl, answer)
                }
            };
            if let Some(result) = finished(outcome) {
                return result;
            }
        }
    }
}

/// A loader's future with its panics caught, as `catch_unwind` catches a closure's: the call
/// that makes the future, and each of its polls.
enum CatchUnwind<Fut> {
    Running(Pin<Box<Fut>>),
    Panicked(Option<Box<dyn Any + Send>>),
}

impl<Fut: Future> CatchUnwind<Fut> {
    fn new(start: impl FnOnce() -> Fut) -> Self {
        match panic::catch_unwind(AssertUnwindSafe(start)) {
            Ok(future) => CatchUnwind::Running(Box::pin(future)),
            Err(panic) => CatchUnwind::Panicked(Some(panic)),
        }
    }
}

impl<Fut: Future> Future for CatchUnwind<Fut> {
    type Output = Result<Fut::Output, Box<dyn Any + Send>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Both variants are Unpin (the loader's future is boxed), so this is too.
        match self.get_mut() {
            CatchUnwind::Running(future) => {
                match panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
                    Ok(Poll::Pending) => Poll::Pending,
                    Ok(Poll::Ready(answer)) => Poll::Ready(Ok(answer)),
                    Err(panic) => Poll::Ready(Err(panic)),
                }
            }
            CatchUnwind::Panicked(panic) => Poll::Ready(Err(panic
                .take()
                .expect("a finished future is not polled again"))),
        }
    }
}
