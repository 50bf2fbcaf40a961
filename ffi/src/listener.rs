//! Removal events from C: the listener callback of `slabcache_options_t`, the causes it is
//! told, and `slabcache_run_pending_tasks`.
//!
//! The engine calls the listener (`CacheBuilder::listener`) at the end of a public call,
//! holding none of its locks, one event at a time, and contains a panic on its path. Here the
//! listener is a C function and its context, which the engine's closure calls through
//! [`CListener`]: `Send` and `Sync` by the contract of `slabcache_options_t.listener`, under
//! which the function may be called with its context from any thread until the cache is
//! freed. `slabcache_free` stops the maintenance thread, waiting for its round in progress,
//! before it lets go of the cache, so that no call comes from that thread once it returns.

use std::ffi::{c_int, c_void};

use slabcache::{Event, RemovalCause};

use crate::args::handle;
use crate::guard::run;
use crate::slabcache_t;

/// `cause`: the entry was dropped to make room (for a new entry, under `max_entries`, or to
/// give its memory to entries of another size). Counted in `slabcache_stats_t.evictions`.
pub const SLABCACHE_CAUSE_EVICTED: c_int = 1;
/// `cause`: the entry's TTL ran out, and a write of its key, a delete, the eviction or the
/// maintenance (`slabcache_run_pending_tasks`, the maintenance thread) found it. Counted in
/// `expirations`.
pub const SLABCACHE_CAUSE_EXPIRED: c_int = 2;
/// `cause`: removed by `slabcache_delete` or `slabcache_delete_if_version`. Counted in
/// `removals`.
pub const SLABCACHE_CAUSE_REMOVED: c_int = 3;
/// `cause`: a write replaced the entry's value; the event carries the value it replaced.
/// Counted in `updates`.
pub const SLABCACHE_CAUSE_REPLACED: c_int = 4;
/// `cause`: removed by `slabcache_clear`. Counted in `removals`.
pub const SLABCACHE_CAUSE_CLEARED: c_int = 5;
/// `cause`: removed by `slabcache_invalidate_tag` (or `slabcache_backed_invalidate_tag`) of
/// one of its tags. Counted in `removals`.
pub const SLABCACHE_CAUSE_TAG_INVALIDATED: c_int = 6;

/// A listener: told about every entry that leaves the cache or has its value replaced, with
/// its key (`key_len` bytes), the value it held (`value_len` bytes; for
/// `SLABCACHE_CAUSE_REPLACED`, the value before the write) and why (`cause`, one of the
/// `SLABCACHE_CAUSE_*` codes). Each entry is reported once per cause, as `slabcache_stats`
/// counts it.
///
/// - **When and where.** It is called with no lock of the library held, at the end of the
///   call that made the event, on that call's thread; or on another thread that is
///   delivering events at the time (a writer of the same cache, a backed cache's thread), or
///   on the cache's maintenance thread (see `maintenance_interval_ms`). Never two calls at
///   once: events are delivered one at a time, in the order they were queued.
/// - **Calling back.** It may call the library, this cache included: read, write, delete,
///   even writes that evict or replace entries. The events those cause are queued and
///   delivered after it returns, by the same loop, never by a nested call, and nothing
///   deadlocks. It must not free the cache, and it delays the call it runs at the end of:
///   keep it short.
/// - **Pointers.** `key` and `value` are readable during the call only; copy what you keep.
///   `ctx` is the options' `listener_ctx`.
/// - **Returning.** It must return normally: no C++ exception and no `longjmp` may leave it
///   (the C++ wrapper's trampoline catches exceptions). A panic inside the library on the
///   listener's path is contained and counted in `slabcache_stats_t.listener_panics`.
pub type slabcache_listener_fn = Option<
    unsafe extern "C" fn(
        ctx: *mut c_void,
        key: *const u8,
        key_len: usize,
        value: *const u8,
        value_len: usize,
        cause: c_int,
    ),
>;

/// A listener that is not NULL.
type Listener = unsafe extern "C" fn(*mut c_void, *const u8, usize, *const u8, usize, c_int);

/// A C listener and its context, as the engine's listener calls them.
pub(crate) struct CListener {
    listener: Listener,
    ctx: *mut c_void,
}

// SAFETY: `slabcache_options_t.listener`'s contract: the listener may be called with its
// context from any thread until the cache is freed (`slabcache_free` returned, and every
// backed cache over it was freed), and only the engine's listener, owned by the cache, holds
// a `CListener`.
unsafe impl Send for CListener {}
// SAFETY: as for `Send`; the struct is never written after it is made, and the engine calls
// its listener once at a time.
unsafe impl Sync for CListener {}

impl CListener {
    /// The listener of `slabcache_options_t`, if it has one; its context goes with it.
    pub(crate) fn new(listener: slabcache_listener_fn, ctx: *mut c_void) -> Option<CListener> {
        listener.map(|listener| CListener { listener, ctx })
    }

    /// Tells the C listener about `event`.
    pub(crate) fn call(&self, event: &Event) {
        let (key, value) = (event.key(), event.value());
        let cause = cause_code(event.cause());
        // SAFETY: the caller of `slabcache_new` registered the listener with its context for
        // calls from any thread while the cache lives (see `Send` above); the key and value
        // are the event's, readable during the call.
        unsafe {
            (self.listener)(
                self.ctx,
                key.as_ptr(),
                key.len(),
                value.as_ptr(),
                value.len(),
                cause,
            )
        }
    }
}

/// The `SLABCACHE_CAUSE_*` code of a cause.
fn cause_code(cause: RemovalCause) -> c_int {
    match cause {
        RemovalCause::Evicted => SLABCACHE_CAUSE_EVICTED,
        RemovalCause::Expired => SLABCACHE_CAUSE_EXPIRED,
        RemovalCause::Removed => SLABCACHE_CAUSE_REMOVED,
        RemovalCause::Replaced => SLABCACHE_CAUSE_REPLACED,
        RemovalCause::Cleared => SLABCACHE_CAUSE_CLEARED,
        RemovalCause::TagInvalidated => SLABCACHE_CAUSE_TAG_INVALIDATED,
        // `RemovalCause` is non-exhaustive: a cause the engine gains needs a code here, and
        // until it has one its events panic here, contained and counted in listener_panics.
        other => panic!("slabcache-ffi has no code for the removal cause {other:?}"),
    }
}

/// Reaps expired entries (a bounded sample of each size class) and delivers the events
/// waiting for the listener, on this thread: what the maintenance thread does every
/// `maintenance_interval_ms`, for a caller who wants expirations found at a time of its
/// choosing, or found at all on a cache without a listener (they are otherwise found by
/// traffic). A sparse cache may take several calls to give up all its expired entries.
///
/// Returns `SLABCACHE_OK`, or `SLABCACHE_INVALID_ARGUMENT` for a NULL `cache`.
///
/// # Safety
///
/// `cache` is NULL or a live cache.
#[no_mangle]
pub unsafe extern "C" fn slabcache_run_pending_tasks(cache: *const slabcache_t) -> c_int {
    run(|| {
        // SAFETY: `cache` is NULL or a live cache (this function's contract).
        unsafe { handle(cache) }?.run_pending_tasks();
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tags::{slabcache_invalidate_tag, slabcache_set_tagged};
    use crate::{
        slabcache_clear, slabcache_delete, slabcache_free, slabcache_new, slabcache_options_init,
        slabcache_options_t, slabcache_set, slabcache_stats, slabcache_stats_t, SLABCACHE_OK,
    };
    use std::mem::{size_of, MaybeUninit};
    use std::ptr;
    use std::slice;
    use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
    use std::sync::Mutex;

    /// An event as the test listener heard it: key, value, cause.
    type HeardEvent = (Vec<u8>, Vec<u8>, c_int);

    /// What the test listener heard.
    #[derive(Default)]
    struct Heard {
        cache: AtomicPtr<slabcache_t>,
        events: Mutex<Vec<HeardEvent>>,
        in_call: AtomicBool,
        nested: AtomicBool,
    }

    /// Records each event; told that `a` was removed, it writes `b` twice, from inside the
    /// call.
    unsafe extern "C" fn record(
        ctx: *mut c_void,
        key: *const u8,
        key_len: usize,
        value: *const u8,
        value_len: usize,
        cause: c_int,
    ) {
        // SAFETY: the test passes a `Heard` that outlives the cache; the key and value are
        // readable for their lengths during the call.
        let (heard, key, value) = unsafe {
            (
                &*ctx.cast::<Heard>(),
                slice::from_raw_parts(key, key_len),
                slice::from_raw_parts(value, value_len),
            )
        };
        if heard.in_call.swap(true, Ordering::SeqCst) {
            heard.nested.store(true, Ordering::SeqCst);
        }
        heard
            .events
            .lock()
            .unwrap()
            .push((key.to_vec(), value.to_vec(), cause));
        if key == b"a" && cause == SLABCACHE_CAUSE_REMOVED {
            let cache = heard.cache.load(Ordering::SeqCst);
            for value in [b"1", b"2"] {
                // SAFETY: the live cache this listener belongs to; valid key and value.
                let status = unsafe {
                    slabcache_set(
                        cache,
                        b"b".as_ptr(),
                        1,
                        value.as_ptr(),
                        1,
                        0,
                        ptr::null_mut(),
                    )
                };
                assert_eq!(status, SLABCACHE_OK);
            }
        }
        heard.in_call.store(false, Ordering::SeqCst);
    }

    /// Every cause a C caller can bring about reaches the listener with the key and the value
    /// the entry held, in order; the events of the writes the listener makes come after its
    /// call, never inside it; the stats count them.
    #[test]
    fn the_listener_hears_each_removal_and_may_write_from_inside() {
        let heard = Heard::default();
        let mut opts = MaybeUninit::<slabcache_options_t>::uninit();
        // SAFETY: init fills every field of a writable struct.
        let mut opts = unsafe {
            slabcache_options_init(opts.as_mut_ptr());
            opts.assume_init()
        };
        opts.max_bytes = 8 << 20;
        opts.max_value_bytes = 4096;
        opts.listener = Some(record);
        opts.listener_ctx = ptr::from_ref(&heard).cast_mut().cast();
        // The maintenance thread never wakes by itself: only the test's calls deliver.
        opts.maintenance_interval_ms = u64::MAX;
        let mut cache = ptr::null_mut();
        // SAFETY: valid options and out-parameter; `heard` outlives the cache.
        assert_eq!(unsafe { slabcache_new(&opts, &mut cache) }, SLABCACHE_OK);
        heard.cache.store(cache, Ordering::SeqCst);
        let tag = b"t".as_ptr();
        let mut stats: slabcache_stats_t;
        // SAFETY: a live cache, valid keys, values and tags.
        unsafe {
            let set = |key: &[u8], value: &[u8]| {
                slabcache_set(
                    cache,
                    key.as_ptr(),
                    key.len(),
                    value.as_ptr(),
                    value.len(),
                    0,
                    ptr::null_mut(),
                )
            };
            assert_eq!(set(b"a", b"1"), SLABCACHE_OK);
            assert_eq!(set(b"a", b""), SLABCACHE_OK);
            assert_eq!(slabcache_delete(cache, b"a".as_ptr(), 1), SLABCACHE_OK);
            let status = slabcache_set_tagged(
                cache,
                b"c".as_ptr(),
                1,
                b"3".as_ptr(),
                1,
                0,
                &tag,
                &1,
                1,
                ptr::null_mut(),
            );
            assert_eq!(status, SLABCACHE_OK);
            assert_eq!(
                slabcache_invalidate_tag(cache, tag, 1, ptr::null_mut()),
                SLABCACHE_OK
            );
            slabcache_clear(cache);
            stats = std::mem::zeroed();
            stats.size = size_of::<slabcache_stats_t>();
            assert_eq!(slabcache_stats(cache, &mut stats), SLABCACHE_OK);
            slabcache_free(cache);
        }
        let event = |key: &[u8], value: &[u8], cause| (key.to_vec(), value.to_vec(), cause);
        assert_eq!(
            *heard.events.lock().unwrap(),
            [
                event(b"a", b"1", SLABCACHE_CAUSE_REPLACED),
                event(b"a", b"", SLABCACHE_CAUSE_REMOVED),
                event(b"b", b"1", SLABCACHE_CAUSE_REPLACED),
                event(b"c", b"3", SLABCACHE_CAUSE_TAG_INVALIDATED),
                event(b"b", b"2", SLABCACHE_CAUSE_CLEARED),
            ]
        );
        assert!(
            !heard.nested.load(Ordering::SeqCst),
            "a listener call inside another"
        );
        assert_eq!(
            (stats.updates, stats.removals, stats.listener_panics),
            (2, 3, 0)
        );
    }

    /// Every cause has a code of its own, and none is 0 (which a caller may keep for "none").
    #[test]
    fn every_cause_has_a_distinct_nonzero_code() {
        let causes = [
            RemovalCause::Evicted,
            RemovalCause::Expired,
            RemovalCause::Removed,
            RemovalCause::Replaced,
            RemovalCause::Cleared,
            RemovalCause::TagInvalidated,
        ];
        let mut codes: Vec<c_int> = causes.into_iter().map(cause_code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes, (1..=6).collect::<Vec<_>>());
    }
}
