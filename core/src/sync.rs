//! The one place the crate takes its atomics and locks from.
//!
//! Under `cfg(slabcache_loom)` every type here is loom's model-checked twin, so the seqlock,
//! the bucket lock and the free lists can be explored by loom without touching the code that
//! uses them. Nothing else in the crate may import `std::sync::atomic` directly.

#[cfg(not(slabcache_loom))]
pub(crate) use std::sync::atomic::{fence, AtomicPtr, AtomicU32, AtomicU64, Ordering};
#[cfg(not(slabcache_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

#[cfg(slabcache_loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicPtr, AtomicU32, AtomicU64, Ordering};
#[cfg(slabcache_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

/// Spin-wait hint for short waits (a bucket lock, a page being reformatted).
#[inline]
pub(crate) fn spin_hint(round: u32) {
    if round < 64 {
        std::hint::spin_loop();
    } else {
        #[cfg(not(slabcache_loom))]
        std::thread::yield_now();
        #[cfg(slabcache_loom)]
        loom::thread::yield_now();
    }
}

/// Locks a mutex, ignoring poison: every critical section in the crate leaves its data
/// consistent before anything that can panic, so a poisoned lock holds valid state.
#[inline]
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Locks a mutex if it is free right now (ignoring poison, as [`lock`] does).
#[inline]
pub(crate) fn try_lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match m.try_lock() {
        Ok(guard) => Some(guard),
        Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

/// Pads a value to its own cache line so that counters written by different threads never
/// share one (false sharing would turn every hit into cross-core traffic).
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct CachePadded<T>(pub(crate) T);

impl<T> std::ops::Deref for CachePadded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

thread_local! {
    /// A hash of this thread's id: spreads threads over striped structures.
    static THREAD_STRIPE: usize = {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        std::thread::current().id().hash(&mut hasher);
        hasher.finish() as usize
    };
}

/// A number fixed for the calling thread and spread across threads, for picking stripes
/// (`thread_stripe() % stripes`) so that threads mostly write different cache lines.
#[inline]
pub(crate) fn thread_stripe() -> usize {
    THREAD_STRIPE.with(|s| *s)
}
