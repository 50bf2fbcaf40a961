//! A cache in front of a source of truth, from C: `slabcache_backed_t`, the engine's `Backed`
//! over a `slabcache_source_t`, a struct of C callbacks ([`CSource`]).
//!
//! The backed cache holds its own reference to the cache's `Arc` (see `slabcache_t`), so
//! the cache lives as long as either handle. The callbacks run on the threads of the
//! callers and on the backed cache's own threads (the write-behind flusher, the refresh
//! workers), until `slabcache_backed_free` returns: that is the contract that makes
//! [`CSource`] `Send` and `Sync`. Their error codes travel as [`CallbackError`], as a
//! loader's do (`load.rs`).

use std::ffi::{c_int, c_void};
use std::mem::size_of;
use std::sync::Arc;
use std::time::Duration;

use slabcache::{
    Backed, BackedError, BackedStats, Cache, Retry, Source, WhenFull, WriteBehind, WriteMode,
};

use crate::args::{
    bytes_arg, check_optional_out, check_out, handle, key_arg, read_sized, tags_arg,
    write_optional, write_sized, Versioned,
};
use crate::guard::{catch, run, status_of};
use crate::load::{call_loader, read_into, slabcache_loader_fn, CallbackError, Loader};
use crate::tags::invalidate_tag;
use crate::{
    slabcache_t, SLABCACHE_INVALID_ARGUMENT, SLABCACHE_OK, SLABCACHE_PANIC, SLABCACHE_QUEUE_FULL,
    SLABCACHE_WRITE_FAILED,
};

/// `write_mode`: a write goes to the source, then to the cache; it returns once both hold it.
pub const SLABCACHE_WRITE_THROUGH: u32 = 0;
/// `write_mode`: a write goes to the source, then the key is removed from the cache, and the
/// next read loads it.
pub const SLABCACHE_WRITE_AROUND: u32 = 1;
/// `write_mode`: a write goes to the cache and a queue, and returns; the backed cache's
/// flusher thread sends the queued writes to the source in batches, coalescing the writes of
/// a key and retrying failed batches with backoff.
pub const SLABCACHE_WRITE_BEHIND: u32 = 2;
/// `behind_when_full`: a write waits until the flusher makes room in the queue.
pub const SLABCACHE_WHEN_FULL_BLOCK: u32 = 0;
/// `behind_when_full`: a write returns `SLABCACHE_QUEUE_FULL` at once, unmade.
pub const SLABCACHE_WHEN_FULL_ERROR: u32 = 1;
/// The most refresh threads a backed cache may have.
pub const SLABCACHE_MAX_REFRESH_THREADS: usize = 64;
/// The longest refresh queue a backed cache may have (its slots are allocated up front).
pub const SLABCACHE_MAX_REFRESH_QUEUE: usize = 1 << 20;

/// A source's `store`: makes `value` (`value_len` bytes) the value of `key`. Returns
/// `SLABCACHE_OK`, or any other code as its error. Must be idempotent (a failed write-behind
/// batch is sent again whole), must return normally, and a store that returned
/// `SLABCACHE_OK` must be visible to every later `load`.
pub type slabcache_store_fn = Option<
    unsafe extern "C" fn(
        ctx: *mut c_void,
        key: *const u8,
        key_len: usize,
        value: *const u8,
        value_len: usize,
    ) -> c_int,
>;

/// A source's `remove`: removes `key`, succeeding when it is already absent. Returns
/// `SLABCACHE_OK`, or any other code as its error; as `slabcache_store_fn` otherwise.
pub type slabcache_remove_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, key: *const u8, key_len: usize) -> c_int>;

/// A source's optional `store_batch`: stores `count` entries at once, the `i`th key
/// `key_lens[i]` bytes at `keys[i]` and its value `value_lens[i]` bytes at `values[i]`.
/// Returns `SLABCACHE_OK` when all are stored, or any other code as its error (the whole
/// batch is then sent again, or given up).
pub type slabcache_store_batch_fn = Option<
    unsafe extern "C" fn(
        ctx: *mut c_void,
        keys: *const *const u8,
        key_lens: *const usize,
        values: *const *const u8,
        value_lens: *const usize,
        count: usize,
    ) -> c_int,
>;

/// A source's optional `remove_batch`: removes `count` keys at once, the `i`th
/// `key_lens[i]` bytes at `keys[i]`; as `slabcache_store_batch_fn` otherwise.
pub type slabcache_remove_batch_fn = Option<
    unsafe extern "C" fn(
        ctx: *mut c_void,
        keys: *const *const u8,
        key_lens: *const usize,
        count: usize,
    ) -> c_int,
>;

/// A source of truth (a database, a service) as callbacks: what a backed cache reads
/// through to and writes to.
///
/// Every callback gets `ctx` first. They are called from the threads that call the backed
/// cache and from the backed cache's own threads (the write-behind flusher, the refresh
/// workers), several at once, from `slabcache_backed_new` until `slabcache_backed_free`
/// returns: `ctx` must stay valid, and the callbacks safe to call from any thread, until
/// then. Every key, value and array they are given is readable during their call only. They
/// must return normally (no C++ exception, no `longjmp`) and must not free the backed cache.
///
/// It begins with its size, like the options structs: set `size` to
/// `sizeof(slabcache_source_t)`, and zero the fields you do not set (a designated
/// initializer does), so that a later version's fields read as absent.
#[repr(C)]
pub struct slabcache_source {
    /// `sizeof(slabcache_source_t)`.
    pub size: usize,
    /// Passed to every callback; the library never reads it.
    pub ctx: *mut c_void,
    /// Required: loads a key missed by the cache (see `slabcache_loader_fn`). It runs on the
    /// thread of the reader that leads the load, or on a refresh thread.
    pub load: slabcache_loader_fn,
    /// Required: stores a written value (write-through and write-around on the writer's
    /// thread, write-behind on the flusher thread unless `store_batch` is set).
    pub store: slabcache_store_fn,
    /// Required: removes a deleted key (as `store`, unless `remove_batch` is set).
    pub remove: slabcache_remove_fn,
    /// Optional (NULL: `store` for each entry, stopping at the first error): stores a
    /// write-behind batch.
    pub store_batch: slabcache_store_batch_fn,
    /// Optional (NULL: `remove` for each key, stopping at the first error): removes a
    /// write-behind batch.
    pub remove_batch: slabcache_remove_batch_fn,
}

/// A source of truth as callbacks (see `struct slabcache_source`).
pub type slabcache_source_t = slabcache_source;

impl Versioned for slabcache_source {}

impl slabcache_source {
    /// No callbacks: what a later version's fields read as when an earlier one lacks them.
    fn absent() -> Self {
        slabcache_source {
            size: size_of::<slabcache_source_t>(),
            ctx: std::ptr::null_mut(),
            load: None,
            store: None,
            remove: None,
            store_batch: None,
            remove_batch: None,
        }
    }
}

/// The settings of a backed cache. Fill it with `slabcache_backed_options_init`, then set
/// what you need. It begins with its own size, as `slabcache_options_t` does.
#[repr(C)]
pub struct slabcache_backed_options {
    /// `sizeof(slabcache_backed_options_t)`, set by `slabcache_backed_options_init`.
    pub size: usize,
    /// `SLABCACHE_WRITE_THROUGH` (the default), `SLABCACHE_WRITE_AROUND` or
    /// `SLABCACHE_WRITE_BEHIND`.
    pub write_mode: u32,
    /// How long a loaded or written value is fresh, in milliseconds: 0 (the default) is the
    /// cache's `default_ttl_ms` (none if it has none); `SLABCACHE_TTL_NONE`: fresh until
    /// evicted or written, and the refresh rules below never fire.
    pub ttl_ms: u64,
    /// Past its fresh time and for this many milliseconds more, a read gets the stale value
    /// at once while one background refresh runs; 0 (the default): off. Needs a TTL.
    pub stale_while_revalidate_ms: u64,
    /// A read of an entry older than this fraction of its TTL, strictly between 0 and 1,
    /// starts one background refresh and is served the current value; 0 (the default): off.
    /// Needs a TTL.
    pub refresh_ahead: f64,
    /// Probabilistic early expiry (XFetch): a read refreshes the entry in the background
    /// when `now - delta * beta * ln(rand()) >= expiry`, `delta` being how long its load
    /// took; 1.0 is the paper's choice, larger refreshes earlier; finite and above 0, or 0
    /// (the default): off. Needs a TTL.
    pub early_expiry_beta: f64,
    /// Remember "not found" from the source for this many milliseconds, so that lookups of
    /// missing keys stop reaching it (a write of the key ends it at once); 0 (the default):
    /// off.
    pub negative_ttl_ms: u64,
    /// Threads that run background refreshes, started only when a refresh rule is set: 1 to
    /// `SLABCACHE_MAX_REFRESH_THREADS`; default 2.
    pub refresh_threads: usize,
    /// Refreshes that may wait for those threads (one asked for when the queue is full is
    /// skipped): 1 to `SLABCACHE_MAX_REFRESH_QUEUE`; default 1,024.
    pub refresh_queue: usize,
    /// The seed of early expiry's random draws, for reproducible runs; 0 (the default):
    /// drawn at random.
    pub random_seed: u64,
    /// Write-behind: most writes sent to the source in one batch, at least 1; default 64.
    pub behind_batch_size: usize,
    /// Write-behind: longest an acknowledged write waits before its batch is sent, when
    /// fewer than `behind_batch_size` are queued, in milliseconds; default 50.
    pub behind_max_delay_ms: u64,
    /// Write-behind: most keys with a write the source has not confirmed, at least 1;
    /// default 65,536.
    pub behind_queue_capacity: usize,
    /// Write-behind: `SLABCACHE_WHEN_FULL_BLOCK` (the default) or `SLABCACHE_WHEN_FULL_ERROR`.
    pub behind_when_full: u32,
    /// Write-behind: the wait after a batch's first failure, in milliseconds, doubling up to
    /// `behind_max_backoff_ms`, each wait drawn from its upper half; default 10.
    pub behind_initial_backoff_ms: u64,
    /// Write-behind: the longest wait between attempts, in milliseconds; default 1,000.
    pub behind_max_backoff_ms: u64,
    /// Write-behind: attempts before a batch is given up (counted in `failed`); 0 (the
    /// default): retry until the source takes it.
    pub behind_max_attempts: u32,
}

/// The settings of a backed cache (see `struct slabcache_backed_options`).
pub type slabcache_backed_options_t = slabcache_backed_options;

impl Versioned for slabcache_backed_options {}

impl slabcache_backed_options {
    /// What `slabcache_backed_options_init` writes, and what an earlier version's struct
    /// lacks.
    fn defaults() -> Self {
        let behind = WriteBehind::default();
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        slabcache_backed_options {
            size: size_of::<slabcache_backed_options_t>(),
            write_mode: SLABCACHE_WRITE_THROUGH,
            ttl_ms: 0,
            stale_while_revalidate_ms: 0,
            refresh_ahead: 0.0,
            early_expiry_beta: 0.0,
            negative_ttl_ms: 0,
            // The engine's defaults (`Backed::builder`).
            refresh_threads: 2,
            refresh_queue: 1024,
            random_seed: 0,
            behind_batch_size: behind.batch_size,
            behind_max_delay_ms: millis(behind.max_delay),
            behind_queue_capacity: behind.queue_capacity,
            behind_when_full: SLABCACHE_WHEN_FULL_BLOCK,
            behind_initial_backoff_ms: millis(behind.retry.initial_backoff),
            behind_max_backoff_ms: millis(behind.retry.max_backoff),
            behind_max_attempts: behind.retry.max_attempts.unwrap_or(0),
        }
    }
}

/// A snapshot of a backed cache's counters, from `slabcache_backed_stats`; the cache's own
/// are in `slabcache_stats`. Set `size` to `sizeof(slabcache_backed_stats_t)` before the
/// call.
#[repr(C)]
pub struct slabcache_backed_stats {
    /// `sizeof(slabcache_backed_stats_t)`, set by the caller.
    pub size: usize,
    /// Loads from the source (for a miss, a refresh, or an expired entry).
    pub loads: u64,
    /// Loads that failed.
    pub load_failures: u64,
    /// Background refreshes run (refresh-ahead, early expiry, stale-while-revalidate).
    pub refreshes: u64,
    /// Reads answered with a stale value while a refresh ran.
    pub stale_served: u64,
    /// Reads answered "not found" from a remembered negative result, without the source.
    pub negative_hits: u64,
    /// Keys with a write-behind write the source has not confirmed yet.
    pub queue_depth: u64,
    /// Write-behind writes the source confirmed.
    pub flushed: u64,
    /// Write-behind writes folded into a queued write of the same key.
    pub coalesced: u64,
    /// Failed write-behind batch attempts that were retried.
    pub retried: u64,
    /// Write-behind writes given up with their batch after its last attempt.
    pub failed: u64,
}

/// A snapshot of a backed cache's counters (see `struct slabcache_backed_stats`).
pub type slabcache_backed_stats_t = slabcache_backed_stats;

impl Versioned for slabcache_backed_stats {}

/// A cache in front of a source: opaque; made by `slabcache_backed_new`, owned by the caller
/// until `slabcache_backed_free`.
pub struct slabcache_backed(Backed<CSource>);

/// A cache in front of a source (see `struct slabcache_backed`).
pub type slabcache_backed_t = slabcache_backed;

type Store = unsafe extern "C" fn(*mut c_void, *const u8, usize, *const u8, usize) -> c_int;
type Remove = unsafe extern "C" fn(*mut c_void, *const u8, usize) -> c_int;
type StoreBatch = unsafe extern "C" fn(
    *mut c_void,
    *const *const u8,
    *const usize,
    *const *const u8,
    *const usize,
    usize,
) -> c_int;
type RemoveBatch =
    unsafe extern "C" fn(*mut c_void, *const *const u8, *const usize, usize) -> c_int;

/// A `slabcache_source_t` whose required callbacks are present: the engine's `Source`.
pub(crate) struct CSource {
    ctx: *mut c_void,
    load: Loader,
    store: Store,
    remove: Remove,
    store_batch: Option<StoreBatch>,
    remove_batch: Option<RemoveBatch>,
}

// SAFETY: `slabcache_backed_new`'s contract: the callbacks may be called with `ctx` from any
// thread, several at once, until `slabcache_backed_free` returns, which drops the `CSource`
// (the backed cache's threads are joined before it).
unsafe impl Send for CSource {}
// SAFETY: as for `Send`; the struct itself is never written after it is made.
unsafe impl Sync for CSource {}

/// A source callback's answer: `SLABCACHE_OK`, or its error code.
fn answer(code: c_int) -> Result<(), CallbackError> {
    if code == SLABCACHE_OK {
        Ok(())
    } else {
        Err(CallbackError(code))
    }
}

/// Each byte string's pointer and length, as the batch callbacks take them.
fn split<'a>(items: impl Iterator<Item = &'a [u8]>) -> (Vec<*const u8>, Vec<usize>) {
    items.map(|bytes| (bytes.as_ptr(), bytes.len())).unzip()
}

impl Source for CSource {
    type Error = CallbackError;

    fn load(&self, key: &[u8]) -> Result<Option<Vec<u8>>, CallbackError> {
        // SAFETY: the callbacks may be called with `ctx` on any thread (see `Send` above).
        unsafe { call_loader(self.load, self.ctx, key) }
    }

    fn store(&self, key: &[u8], value: &[u8]) -> Result<(), CallbackError> {
        // SAFETY: as in `load`; the key and value are readable during the call.
        answer(unsafe {
            (self.store)(
                self.ctx,
                key.as_ptr(),
                key.len(),
                value.as_ptr(),
                value.len(),
            )
        })
    }

    fn delete(&self, key: &[u8]) -> Result<(), CallbackError> {
        // SAFETY: as in `load`; the key is readable during the call.
        answer(unsafe { (self.remove)(self.ctx, key.as_ptr(), key.len()) })
    }

    fn store_batch(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> Result<(), CallbackError> {
        let Some(store_batch) = self.store_batch else {
            return entries.iter().try_for_each(|(k, v)| self.store(k, v));
        };
        let (keys, key_lens) = split(entries.iter().map(|(k, _)| &k[..]));
        let (values, value_lens) = split(entries.iter().map(|(_, v)| &v[..]));
        // SAFETY: as in `load`; the four arrays hold `entries.len()` elements, and the bytes
        // they point at are `entries`', all readable during the call.
        answer(unsafe {
            store_batch(
                self.ctx,
                keys.as_ptr(),
                key_lens.as_ptr(),
                values.as_ptr(),
                value_lens.as_ptr(),
                entries.len(),
            )
        })
    }

    fn delete_batch(&self, keys: &[Vec<u8>]) -> Result<(), CallbackError> {
        let Some(remove_batch) = self.remove_batch else {
            return keys.iter().try_for_each(|k| self.delete(k));
        };
        let (pointers, lens) = split(keys.iter().map(|k| &k[..]));
        // SAFETY: as in `store_batch`.
        answer(unsafe { remove_batch(self.ctx, pointers.as_ptr(), lens.as_ptr(), keys.len()) })
    }
}

/// The backed cache behind a handle.
///
/// # Safety
///
/// `backed` is NULL or a live backed cache from `slabcache_backed_new`, which stays live for
/// `'a`.
unsafe fn backed_handle<'a>(
    backed: *const slabcache_backed_t,
) -> Result<&'a Backed<CSource>, c_int> {
    // SAFETY: a non-NULL `backed` is a live `Box` from `slabcache_backed_new` (caller's
    // contract), which only `slabcache_backed_free` ends, never during another call.
    let backed = unsafe { backed.as_ref() }.ok_or(SLABCACHE_INVALID_ARGUMENT)?;
    Ok(&backed.0)
}

/// Fills `*opts` with the defaults (each field's documentation gives its own) and its
/// `size`. NULL is a no-op.
///
/// # Safety
///
/// `opts` is NULL or points at a writable `slabcache_backed_options_t`.
#[no_mangle]
pub unsafe extern "C" fn slabcache_backed_options_init(opts: *mut slabcache_backed_options_t) {
    catch((), || {
        if check_out(opts).is_err() {
            return;
        }
        // SAFETY: non-NULL and aligned; the caller promises a writable struct of this header's
        // layout.
        unsafe { opts.write(slabcache_backed_options::defaults()) };
    })
}

/// Makes a backed cache: `cache` in front of the source `*source`, with the settings
/// `*opts`, and stores it in `*out`, owned by the caller until `slabcache_backed_free`. It
/// starts the backed cache's threads: a flusher for write-behind, and refresh workers when
/// a refresh rule is set. `source` and `opts` are copied; `source->ctx` is kept, and the
/// callbacks called with it, until `slabcache_backed_free` returns.
///
/// The backed cache holds a reference of its own to `cache`: `slabcache_free(cache)` may come
/// first, and the cache's memory goes with the last of the two. The cache should serve this
/// backed cache only: its entries hold each value behind a 13-byte header (so a value longer
/// than `max_value_bytes - 13` is served from the source without being cached), and an
/// entry written with `slabcache_set` is not understood (it is dropped and loaded again).
///
/// Returns `SLABCACHE_OK`, or `SLABCACHE_INVALID_ARGUMENT` (`*out` untouched, no callback
/// called) for a NULL `cache`, `source`, `opts` or `out`, a `size` that is not this
/// library's, a NULL `load`, `store` or `remove`, an unknown `write_mode` or
/// `behind_when_full`, a refresh rule without a TTL, out-of-range settings (each field says
/// its range), or a thread the system cannot start.
///
/// # Safety
///
/// `cache` is NULL or a live cache. `source` and `opts` are NULL or point at an initialised
/// `size_t` (their `size`), and at a whole readable struct when that `size` is this
/// library's. The source's callbacks are functions of the types they are declared with,
/// which may be called as `slabcache_source_t` says. `out` is NULL or points at a writable
/// `slabcache_backed_t *`.
#[no_mangle]
pub unsafe extern "C" fn slabcache_backed_new(
    cache: *const slabcache_t,
    source: *const slabcache_source_t,
    opts: *const slabcache_backed_options_t,
    out: *mut *mut slabcache_backed_t,
) -> c_int {
    run(|| {
        check_out(out)?;
        // SAFETY: `cache` is NULL or a live cache (this function's contract).
        unsafe { handle(cache) }?;
        // SAFETY: NULL, or a struct that begins with its size (this function's contract);
        // its fields are integers, a raw pointer and nullable function pointers.
        let source = unsafe { read_sized(source, slabcache_source::absent()) }?;
        // SAFETY: as for `source`; integers and floats.
        let opts = unsafe { read_sized(opts, slabcache_backed_options::defaults()) }?;
        let source = CSource {
            ctx: source.ctx,
            load: source.load.ok_or(SLABCACHE_INVALID_ARGUMENT)?,
            store: source.store.ok_or(SLABCACHE_INVALID_ARGUMENT)?,
            remove: source.remove.ok_or(SLABCACHE_INVALID_ARGUMENT)?,
            store_batch: source.store_batch,
            remove_batch: source.remove_batch,
        };
        // SAFETY: `handle` saw `cache` non-NULL: it is the pointer of a live `Arc` from
        // `slabcache_new` (`Arc::into_raw`), and this adds the backed cache's own reference,
        // which `from_raw` takes over.
        let cache = unsafe {
            Arc::increment_strong_count(cache);
            Arc::from_raw(cache)
        };
        let backed = build(cache, source, &opts)?;
        // SAFETY: `check_out` saw `out` non-NULL and aligned; the caller promises it writable.
        unsafe { out.write(Box::into_raw(Box::new(slabcache_backed(backed)))) };
        Ok(())
    })
}

/// Builds the backed cache that `opts` describes. The engine refuses the settings that make
/// no sense together, or are out of its ranges.
fn build(
    cache: Arc<Cache>,
    source: CSource,
    opts: &slabcache_backed_options_t,
) -> Result<Backed<CSource>, c_int> {
    let millis = Duration::from_millis;
    let when_full = match opts.behind_when_full {
        SLABCACHE_WHEN_FULL_BLOCK => WhenFull::Block,
        SLABCACHE_WHEN_FULL_ERROR => WhenFull::Error,
        _ => return Err(SLABCACHE_INVALID_ARGUMENT),
    };
    let write_mode = match opts.write_mode {
        SLABCACHE_WRITE_THROUGH => WriteMode::Through,
        SLABCACHE_WRITE_AROUND => WriteMode::Around,
        SLABCACHE_WRITE_BEHIND => WriteMode::Behind(WriteBehind {
            batch_size: opts.behind_batch_size,
            max_delay: millis(opts.behind_max_delay_ms),
            queue_capacity: opts.behind_queue_capacity,
            when_full,
            retry: Retry {
                initial_backoff: millis(opts.behind_initial_backoff_ms),
                max_backoff: millis(opts.behind_max_backoff_ms),
                max_attempts: (opts.behind_max_attempts > 0).then_some(opts.behind_max_attempts),
            },
        }),
        _ => return Err(SLABCACHE_INVALID_ARGUMENT),
    };
    // The engine takes any number; these bound what the pool allocates and starts up front.
    if opts.refresh_threads > SLABCACHE_MAX_REFRESH_THREADS
        || opts.refresh_queue > SLABCACHE_MAX_REFRESH_QUEUE
    {
        return Err(SLABCACHE_INVALID_ARGUMENT);
    }
    let mut builder = Backed::builder(cache, source)
        .write_mode(write_mode)
        .refresh_workers(opts.refresh_threads, opts.refresh_queue);
    // `SLABCACHE_TTL_NONE` ms is 584 million years: fresh for good, as the header says.
    if opts.ttl_ms != 0 {
        builder = builder.ttl(millis(opts.ttl_ms));
    }
    if opts.stale_while_revalidate_ms != 0 {
        builder = builder.stale_while_revalidate(millis(opts.stale_while_revalidate_ms));
    }
    // A NaN is not 0, and reaches the engine's range checks, which refuse it.
    if opts.refresh_ahead != 0.0 {
        builder = builder.refresh_ahead(opts.refresh_ahead);
    }
    if opts.early_expiry_beta != 0.0 {
        builder = builder.early_expiry(opts.early_expiry_beta);
    }
    if opts.negative_ttl_ms != 0 {
        builder = builder.negative_ttl(millis(opts.negative_ttl_ms));
    }
    if opts.random_seed != 0 {
        builder = builder.random_seed(opts.random_seed);
    }
    builder.build().map_err(|e| status_of(&e))
}

/// Frees a backed cache: flushes its write-behind queue (calling the source's callbacks;
/// with a source that keeps failing and no `behind_max_attempts`, this waits until it takes
/// the writes), stops its threads, and drops its reference to the cache. No callback runs
/// after it returns. NULL is a no-op.
///
/// # Safety
///
/// `backed` is NULL or a backed cache from `slabcache_backed_new` that was not freed yet, no
/// other call on it runs now or later, and none of its callbacks is running on this thread.
#[no_mangle]
pub unsafe extern "C" fn slabcache_backed_free(backed: *mut slabcache_backed_t) {
    catch((), || {
        if !backed.is_null() {
            // SAFETY: `backed` came from `Box::into_raw` in `slabcache_backed_new` and, by the
            // caller's contract, is given back once, with no other call using it.
            drop(unsafe { Box::from_raw(backed) });
        }
    })
}

/// The value of `key`: from the cache, else from the source's `load` (one load however many
/// callers miss the key at once; the others wait for it). A stale, refresh-due or
/// early-expiring entry is served at once and refreshed in the background. `buf` and
/// `out_len` work as in `slabcache_get`.
///
/// Returns `SLABCACHE_OK`, `SLABCACHE_BUFFER_TOO_SMALL`, `SLABCACHE_NOT_FOUND` (the source
/// has no such key), `SLABCACHE_LOAD_FAILED` (the load's code in `*out_load_error` when that
/// is not NULL), `SLABCACHE_RECURSIVE_LOAD`, `SLABCACHE_PANIC`, `SLABCACHE_KEY_TOO_LARGE`
/// and `SLABCACHE_INVALID_ARGUMENT` as `slabcache_get_or_load` does, `backed` standing for
/// `cache` and `loader`.
///
/// # Safety
///
/// As `slabcache_get_or_load`, with `backed` NULL or a live backed cache.
#[no_mangle]
pub unsafe extern "C" fn slabcache_backed_get(
    backed: *const slabcache_backed_t,
    key: *const u8,
    key_len: usize,
    buf: *mut u8,
    buf_len: usize,
    out_len: *mut usize,
    out_load_error: *mut c_int,
) -> c_int {
    run(|| {
        // SAFETY: `backed` is NULL or a live backed cache (this function's contract).
        let backed = unsafe { backed_handle(backed) }?;
        let read = |key: &[u8]| backed.get(key);
        // SAFETY: the key, buffer and out-parameters are as this function's contract says.
        unsafe { read_into(key, key_len, buf, buf_len, out_len, out_load_error, read) }
    })
}

/// A write (`Some(value)`, tagged with the raw tags) or delete (`None`) through a backed
/// cache: the body of its write entry points.
///
/// # Safety
///
/// The contract of `slabcache_backed_put_tagged`.
unsafe fn write(
    backed: *const slabcache_backed_t,
    key: *const u8,
    key_len: usize,
    value: Option<(*const u8, usize)>,
    tags: (*const *const u8, *const usize, usize),
    out_source_error: *mut c_int,
) -> c_int {
    run(|| {
        // SAFETY: `backed` is NULL or a live backed cache (this function's contract).
        let backed = unsafe { backed_handle(backed) }?;
        // SAFETY: `key` is NULL or `key_len` readable, unchanging bytes (this function's
        // contract).
        let key = unsafe { key_arg(key, key_len) }?;
        let value = match value {
            // SAFETY: `val` is NULL or `val_len` readable, unchanging bytes (this function's
            // contract).
            Some((val, val_len)) => Some(unsafe { bytes_arg(val, val_len) }?),
            None => None,
        };
        // SAFETY: the tag arrays and tags are as `slabcache_backed_put_tagged` promises.
        let tags = unsafe { tags_arg(tags.0, tags.1, tags.2) }?;
        check_optional_out(out_source_error)?;
        let written = match value {
            Some(value) => backed.put_tagged(key, value, &tags),
            None => backed.delete(key),
        };
        match written {
            Ok(()) => Ok(()),
            Err(BackedError::Source(error)) => {
                // SAFETY: `check_optional_out` saw `out_source_error` NULL or aligned.
                unsafe { write_optional(out_source_error, error.0) };
                Err(SLABCACHE_WRITE_FAILED)
            }
            Err(BackedError::QueueFull) => Err(SLABCACHE_QUEUE_FULL),
            Err(BackedError::Panicked(_)) => Err(SLABCACHE_PANIC),
            Err(BackedError::Cache(error)) => Err(status_of(&error)),
            // Only a backed cache that was closed refuses writes, and only
            // `slabcache_backed_free` closes it, after which the handle is not used again.
            Err(BackedError::Closed) => Err(SLABCACHE_INVALID_ARGUMENT),
            // `BackedError` is non-exhaustive: a failure the engine gains needs a status here,
            // and until it has one the caller hears SLABCACHE_PANIC with this message.
            Err(other) => panic!("slabcache-ffi has no status for the write error {other:?}"),
        }
    })
}

/// Writes `val` (`val_len` bytes; NULL when `val_len` is 0; any length the source takes) as
/// the value of `key`, as the write mode says: through the source to the cache, around the
/// cache (the source, then the key is removed from the cache), or behind it (the cache and
/// the queue; the flusher sends it later). The source's `store` runs on this thread for
/// write-through and write-around.
///
/// Returns
/// - `SLABCACHE_OK`: written (for write-behind: in the cache and the queue);
/// - `SLABCACHE_WRITE_FAILED`: the source's `store` returned an error code, which is in
///   `*out_source_error` when that is not NULL; the key was removed from the cache;
/// - `SLABCACHE_QUEUE_FULL`: write-behind with `SLABCACHE_WHEN_FULL_ERROR`, and the queue is
///   full: nothing written;
/// - `SLABCACHE_PANIC`, `SLABCACHE_KEY_TOO_LARGE`, or `SLABCACHE_INVALID_ARGUMENT` for a NULL
///   `backed` or `key`, `key_len` 0, a NULL `val` with `val_len` above 0, `key_len` or
///   `val_len` above `PTRDIFF_MAX`, or a misaligned `out_source_error`.
///
/// # Safety
///
/// `backed` is NULL or a live backed cache. `key` and `val` are NULL or point at `key_len`
/// and `val_len` readable bytes, which nothing writes during the call. `out_source_error` is
/// NULL or points at a writable `int`.
#[no_mangle]
pub unsafe extern "C" fn slabcache_backed_put(
    backed: *const slabcache_backed_t,
    key: *const u8,
    key_len: usize,
    val: *const u8,
    val_len: usize,
    out_source_error: *mut c_int,
) -> c_int {
    let no_tags = (std::ptr::null(), std::ptr::null(), 0);
    // SAFETY: the caller keeps `slabcache_backed_put`'s contract, which is `write`'s without
    // tags.
    unsafe {
        write(
            backed,
            key,
            key_len,
            Some((val, val_len)),
            no_tags,
            out_source_error,
        )
    }
}

/// `slabcache_backed_put` that also tags the cached entry with each of the `tag_count` tags
/// (passed as to `slabcache_set_tagged`): `slabcache_backed_invalidate_tag` of any of them
/// drops it from the cache, and the next read loads it again. In write-around mode nothing
/// is cached, so the tags mark nothing.
///
/// Returns the statuses of `slabcache_backed_put`, and those of `slabcache_set_tagged` for
/// the tags.
///
/// # Safety
///
/// As `slabcache_backed_put`, with the tags as `slabcache_set_tagged` says.
#[no_mangle]
pub unsafe extern "C" fn slabcache_backed_put_tagged(
    backed: *const slabcache_backed_t,
    key: *const u8,
    key_len: usize,
    val: *const u8,
    val_len: usize,
    tags: *const *const u8,
    tag_lens: *const usize,
    tag_count: usize,
    out_source_error: *mut c_int,
) -> c_int {
    // SAFETY: the caller keeps `slabcache_backed_put_tagged`'s contract, which is `write`'s.
    unsafe {
        write(
            backed,
            key,
            key_len,
            Some((val, val_len)),
            (tags, tag_lens, tag_count),
            out_source_error,
        )
    }
}

/// Deletes `key` from the source and the cache, as the write mode says (write-behind queues
/// the source's `remove`). Succeeds whether or not the key was present.
///
/// Returns the statuses of `slabcache_backed_put`, `SLABCACHE_WRITE_FAILED` standing for a
/// failed `remove`.
///
/// # Safety
///
/// As `slabcache_backed_put`, without a value.
#[no_mangle]
pub unsafe extern "C" fn slabcache_backed_delete(
    backed: *const slabcache_backed_t,
    key: *const u8,
    key_len: usize,
    out_source_error: *mut c_int,
) -> c_int {
    let no_tags = (std::ptr::null(), std::ptr::null(), 0);
    // SAFETY: the caller keeps `slabcache_backed_delete`'s contract, which is `write`'s
    // without a value or tags.
    unsafe { write(backed, key, key_len, None, no_tags, out_source_error) }
}

/// Blocks until every write-behind write acknowledged before the call is in the source, or
/// given up after its last attempt (with a source that keeps failing and no
/// `behind_max_attempts`, until the source takes them). Returns at once in the other
/// modes.
///
/// Returns `SLABCACHE_OK`, or `SLABCACHE_INVALID_ARGUMENT` for a NULL `backed`.
///
/// # Safety
///
/// `backed` is NULL or a live backed cache. Not from the flusher's own callbacks (it would
/// wait for itself).
#[no_mangle]
pub unsafe extern "C" fn slabcache_backed_flush(backed: *const slabcache_backed_t) -> c_int {
    run(|| {
        // SAFETY: `backed` is NULL or a live backed cache (this function's contract).
        unsafe { backed_handle(backed) }?.flush();
        Ok(())
    })
}

/// Fills `*out` with a snapshot of the backed cache's counters. Set `out->size` to
/// `sizeof(slabcache_backed_stats_t)` first.
///
/// Returns `SLABCACHE_OK`, or `SLABCACHE_INVALID_ARGUMENT` (nothing written) for a NULL
/// `backed` or `out`, or an `out->size` that is not `sizeof(slabcache_backed_stats_t)`.
///
/// # Safety
///
/// `backed` is NULL or a live backed cache; `out` is as in `slabcache_stats`, for a
/// `slabcache_backed_stats_t`.
#[no_mangle]
pub unsafe extern "C" fn slabcache_backed_stats(
    backed: *const slabcache_backed_t,
    out: *mut slabcache_backed_stats_t,
) -> c_int {
    run(|| {
        // SAFETY: `backed` is NULL or a live backed cache (this function's contract).
        let backed = unsafe { backed_handle(backed) }?;
        let stats = c_snapshot!(backed.stats(), BackedStats => slabcache_backed_stats {
            loads,
            load_failures,
            refreshes,
            stale_served,
            negative_hits,
            queue_depth,
            flushed,
            coalesced,
            retried,
            failed,
        });
        // SAFETY: `out` is NULL or begins with an initialised `size`, followed by the rest of
        // its version's struct when that size names one (this function's contract).
        unsafe { write_sized(out, &stats) }
    })
}

/// Drops every cached entry tagged with `tag` (by `slabcache_backed_put_tagged`) from the
/// cache; the source keeps them, and the next read of each loads it again. As
/// `slabcache_invalidate_tag`, with `backed` for `cache`.
///
/// # Safety
///
/// As `slabcache_invalidate_tag`, with `backed` NULL or a live backed cache.
#[no_mangle]
pub unsafe extern "C" fn slabcache_backed_invalidate_tag(
    backed: *const slabcache_backed_t,
    tag: *const u8,
    tag_len: usize,
    out_removed: *mut u64,
) -> c_int {
    run(|| {
        // SAFETY: `backed` is NULL or a live backed cache (this function's contract).
        let backed = unsafe { backed_handle(backed) }?;
        // SAFETY: the caller keeps this function's contract, which is `invalidate_tag`'s.
        unsafe { invalidate_tag(backed.cache(), tag, tag_len, out_removed) }
    })
}
