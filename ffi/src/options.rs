//! A new cache's settings: `slabcache_options_t`, its versions (`args::Versioned`), its
//! defaults (`slabcache_options_init`), and the engine cache built from them.

use std::ffi::{c_int, c_void};
use std::mem::size_of;
use std::ptr;
use std::sync::Arc;
use std::time::Duration;

use slabcache::Cache;

use crate::args::Versioned;
use crate::guard::{catch, status_of};
use crate::listener::{slabcache_listener_fn, CListener};
use crate::{SLABCACHE_DEFAULT_MAX_VALUE_BYTES, SLABCACHE_TTL_NONE};

/// The settings of a new cache. Fill it with `slabcache_options_init`, then set what you need.
///
/// It begins with its own size so that later versions can add fields at the end: a program
/// built against this header passes this version's size, and a library that does not know
/// the size it is given refuses it (`SLABCACHE_INVALID_ARGUMENT`) rather than guess. This
/// library also takes the size of the version before `listener` was added (which ended with
/// `max_value_bytes`), and reads the fields added since as their defaults.
#[repr(C)]
pub struct slabcache_options {
    /// `sizeof(slabcache_options_t)`, set by `slabcache_options_init`.
    pub size: usize,
    /// The arena's size in bytes, a hard bound on the memory entries occupy. Required: at
    /// least one page (2 MiB with the default `max_value_bytes`).
    pub max_bytes: u64,
    /// The most entries the cache holds; 0 = no entry limit.
    pub max_entries: u64,
    /// The TTL of writes with `ttl_ms` 0, in milliseconds; 0 (or `SLABCACHE_TTL_NONE`) = no
    /// expiry.
    pub default_ttl_ms: u64,
    /// Stretches every TTL by a random fraction in [0, `ttl_jitter`] so that keys written
    /// together do not expire together: 0.0 to 1.0.
    pub ttl_jitter: f64,
    /// The longest value accepted, in bytes; 0 = `SLABCACHE_DEFAULT_MAX_VALUE_BYTES` (1 MiB);
    /// at most 64 MiB. It sets the arena's page size (2 MiB with the default, 128 KiB for
    /// values up to 4 KiB), and every size class in use holds at least one page: a cache of
    /// many value sizes wants `max_bytes` of 64 pages or more, or it evicts early.
    pub max_value_bytes: u32,
    /// Told about every entry that leaves the cache or has its value replaced (see
    /// `slabcache_listener_fn`); NULL (the default): no listener, and the cache copies and
    /// queues nothing for one. It is called with `listener_ctx` from any thread, so both must
    /// stay valid until the cache is freed: until `slabcache_free` has returned and every
    /// backed cache made over the cache has been freed. None is called after that.
    pub listener: slabcache_listener_fn,
    /// Passed to `listener`; the library never reads it. Ignored without a listener.
    pub listener_ctx: *mut c_void,
    /// With a listener, the cache runs a maintenance thread that calls
    /// `slabcache_run_pending_tasks` every this many milliseconds (real time), so that
    /// expired entries are reported without traffic; 0 (the default) = 1,000. Ignored
    /// without a listener. `slabcache_free` stops the thread at once, whatever the interval.
    pub maintenance_interval_ms: u64,
    /// Non-zero: the cache tracks its most read keys, for `slabcache_hottest` (about one get
    /// hit in 16 is sampled into a small tally, some 34 KiB). 0 (the default): it does not,
    /// a get pays nothing for the feature, and `slabcache_hottest` reports no key.
    pub track_hot_keys: u8,
}

impl Versioned for slabcache_options {
    // The version before the listener, whose last field was `max_value_bytes`.
    const EARLIER_ENDS: &'static [usize] =
        &[std::mem::offset_of!(slabcache_options, max_value_bytes) + size_of::<u32>()];
}

impl slabcache_options {
    /// What `slabcache_options_init` writes, and what an earlier version's struct lacks.
    pub(crate) fn defaults() -> Self {
        slabcache_options {
            size: size_of::<slabcache_options_t>(),
            max_bytes: 0,
            max_entries: 0,
            default_ttl_ms: 0,
            ttl_jitter: 0.0,
            max_value_bytes: 0,
            listener: None,
            listener_ctx: ptr::null_mut(),
            maintenance_interval_ms: 0,
            track_hot_keys: 0,
        }
    }
}

/// The settings of a new cache (see `struct slabcache_options`).
pub type slabcache_options_t = slabcache_options;

/// Fills `*opts` with the defaults (no entry limit, no expiry, no jitter, 1 MiB values, no
/// listener) and its `size`, leaving `max_bytes` 0 for the caller to set. NULL is a no-op.
///
/// # Safety
///
/// `opts` is NULL or points at a writable `slabcache_options_t`.
#[no_mangle]
pub unsafe extern "C" fn slabcache_options_init(opts: *mut slabcache_options_t) {
    catch((), || {
        if !opts.is_null() && opts.is_aligned() {
            // SAFETY: non-NULL and aligned; the caller promises a writable struct of this
            // header's layout.
            unsafe { opts.write(slabcache_options::defaults()) };
        }
    })
}

/// Builds the cache that `opts` describes, with its maintenance thread if it has a listener.
pub(crate) fn build(opts: &slabcache_options_t) -> Result<Arc<Cache>, c_int> {
    let max_value_bytes = match opts.max_value_bytes {
        0 => SLABCACHE_DEFAULT_MAX_VALUE_BYTES,
        bytes => bytes,
    } as usize;
    // The builder refuses a NaN or out-of-range jitter, a zero or too small `max_bytes` and a
    // `max_value_bytes` above its limit.
    let mut builder = Cache::builder()
        .max_bytes(opts.max_bytes)
        .ttl_jitter(opts.ttl_jitter)
        .max_value_bytes(max_value_bytes);
    if opts.max_entries > 0 {
        builder = builder.max_entries(opts.max_entries);
    }
    if !matches!(opts.default_ttl_ms, 0 | SLABCACHE_TTL_NONE) {
        builder = builder.default_ttl(Duration::from_millis(opts.default_ttl_ms));
    }
    if let Some(listener) = CListener::new(opts.listener, opts.listener_ctx) {
        builder = builder.listener(move |event| listener.call(event));
    }
    // 0 is the engine's default; any other number of milliseconds is a valid interval (the
    // largest, about 584 million years, only ever ends by `slabcache_free`).
    if opts.maintenance_interval_ms != 0 {
        builder = builder.maintenance_interval(Duration::from_millis(opts.maintenance_interval_ms));
    }
    builder
        .track_hot_keys(opts.track_hot_keys != 0)
        .build_shared()
        .map_err(|e| status_of(&e))
}
