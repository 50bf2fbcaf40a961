//! Read-through from C: `slabcache_get_or_load`, the loader callback it runs on a miss, and
//! the sink through which a loader (or a backed cache's source, `backed.rs`) hands its value
//! to the library.
//!
//! The single flight is the engine's (`Cache::get_or_load`): every C loader fails with the
//! one error type [`CallbackError`], so all C callers of a key, whatever loader each passes,
//! share one load. A loader runs on the thread of the caller that leads the load, with no
//! lock of the library held, so it may call the library, except to load its own key
//! (`SLABCACHE_RECURSIVE_LOAD`). The engine catches a panic on the loader's path and hands
//! it to every caller as `LoadError::Panicked`, which is `SLABCACHE_PANIC` here; a C loader
//! cannot unwind (the header says so).

use std::ffi::{c_int, c_void};
use std::fmt;
use std::ptr;

use slabcache::{Cache, LoadError, LoadResult};

use crate::args::{
    bytes_arg, check_buffer, check_optional_out, check_out, deliver, handle, key_arg,
    write_optional,
};
use crate::guard::{run, status_of};
use crate::{
    slabcache_t, ttl_of, SLABCACHE_INVALID_ARGUMENT, SLABCACHE_LOAD_FAILED, SLABCACHE_NOT_FOUND,
    SLABCACHE_OK, SLABCACHE_PANIC, SLABCACHE_RECURSIVE_LOAD,
};

/// Where a loader puts the value it loaded: opaque, valid only during the loader's call.
/// Hand the value over with `slabcache_sink_value`.
pub struct slabcache_sink {
    value: Option<Vec<u8>>,
}

/// Where a loader puts the value it loaded (see `struct slabcache_sink`).
pub type slabcache_sink_t = slabcache_sink;

/// A loader, as `slabcache_get_or_load` calls it on a miss and a backed cache calls its
/// source's `load`: loads the value of `key` (`key_len` bytes, readable during the call) and
/// answers
/// - `SLABCACHE_OK`, having handed the value to `sink` with `slabcache_sink_value` (returning
///   `SLABCACHE_OK` without a value is a failed load whose code is `SLABCACHE_OK`);
/// - `SLABCACHE_NOT_FOUND`: the source has no such key; nothing is cached;
/// - anything else: an error code of its own, which every caller waiting for this load gets
///   as `SLABCACHE_LOAD_FAILED` with the code in its `out_load_error`; nothing is cached.
///
/// It gets the `ctx` it was registered with. It must return normally: no C++ exception, no
/// `longjmp` may leave it. It may call the library, except to load its own key on its own
/// thread (that call fails with `SLABCACHE_RECURSIVE_LOAD`).
pub type slabcache_loader_fn = Option<
    unsafe extern "C" fn(
        ctx: *mut c_void,
        key: *const u8,
        key_len: usize,
        sink: *mut slabcache_sink_t,
    ) -> c_int,
>;

/// A loader that is not NULL.
pub(crate) type Loader =
    unsafe extern "C" fn(*mut c_void, *const u8, usize, *mut slabcache_sink_t) -> c_int;

/// A C callback's own error code: a loader's, or a source's. The one error type of every C
/// load, so C callers of a key share their loads.
#[derive(Debug)]
pub(crate) struct CallbackError(pub(crate) c_int);

impl fmt::Display for CallbackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the callback returned {}", self.0)
    }
}

/// Reads through `cache`: the value of `key` (`key_len` bytes), from the cache or, on a
/// miss, from `loader`, which is called with `loader_ctx` on this thread and whose value is
/// cached with `ttl_ms` (as in `slabcache_set`: 0 is the cache's default). Concurrent
/// callers that miss the same key run one loader between them, whichever loaders they pass:
/// the others wait for it (blocking their thread) and get its answer. A write or delete of
/// the key that lands while the loader runs wins: the loaded value is still returned, but
/// not cached over it. `buf` and `out_len` work as in `slabcache_get` (`buf` may overlap the
/// key); a loaded value that does not fit stays cached (if it fits the cache), so calling
/// again with a buffer that long usually hits.
///
/// Returns
/// - `SLABCACHE_OK`: the value is in `buf[0 .. *out_len]`;
/// - `SLABCACHE_BUFFER_TOO_SMALL`: the value is longer than `buf_len`; `*out_len` holds its
///   length, `buf` is untouched;
/// - `SLABCACHE_NOT_FOUND`: absent, and the loader answered `SLABCACHE_NOT_FOUND`;
/// - `SLABCACHE_LOAD_FAILED`: the loader (this caller's, or the one it waited for) returned
///   an error code of its own, which is in `*out_load_error` when that is not NULL;
/// - `SLABCACHE_RECURSIVE_LOAD`: called from a loader for the key that loader is loading;
/// - `SLABCACHE_PANIC`: the library panicked on the loader's path (a bug; the loader's
///   callers all get it, and nothing is cached);
/// - `SLABCACHE_KEY_TOO_LARGE`, or `SLABCACHE_INVALID_ARGUMENT` for a NULL `cache`, `key`,
///   `loader` or `out_len`, `key_len` 0, a NULL `buf` with `buf_len` above 0, `key_len` or
///   `buf_len` above `PTRDIFF_MAX`, or a misaligned `out_len` or `out_load_error`; then the
///   loader is not called.
///
/// Only `*out_len` (for `SLABCACHE_OK` and `SLABCACHE_BUFFER_TOO_SMALL`), `buf` (for
/// `SLABCACHE_OK`) and `*out_load_error` (for `SLABCACHE_LOAD_FAILED`) are ever written.
///
/// # Safety
///
/// As `slabcache_get`, with `out_load_error` NULL or pointing at a writable `int`; and
/// `loader` may be called with `loader_ctx` on this thread during the call. Nothing,
/// the loader included, writes the key during the call.
#[no_mangle]
pub unsafe extern "C" fn slabcache_get_or_load(
    cache: *const slabcache_t,
    key: *const u8,
    key_len: usize,
    ttl_ms: u64,
    loader: slabcache_loader_fn,
    loader_ctx: *mut c_void,
    buf: *mut u8,
    buf_len: usize,
    out_len: *mut usize,
    out_load_error: *mut c_int,
) -> c_int {
    run(|| {
        // SAFETY: `cache` is NULL or a live cache (this function's contract).
        let cache = unsafe { handle(cache) }?;
        let loader = loader.ok_or(SLABCACHE_INVALID_ARGUMENT)?;
        let read = |key: &[u8]| {
            read_through(cache, key, ttl_ms, |key| {
                // SAFETY: the caller registered `loader` with `loader_ctx` for a call on this
                // thread, which is where the engine runs a leader's loader.
                unsafe { call_loader(loader, loader_ctx, key) }
            })
        };
        // SAFETY: the key, buffer and out-parameters are as this function's contract says.
        unsafe { read_into(key, key_len, buf, buf_len, out_len, out_load_error, read) }
    })
}

/// The part of a read-through entry point (`slabcache_get_or_load`, `slabcache_backed_get`)
/// past its handle: checks the key, buffer and out-parameters, reads the key with `read`,
/// and hands the value over as `slabcache_get` does, or the status that says why there is
/// none.
///
/// # Safety
///
/// `key`, `buf`, `out_len` and `out_load_error` are as `slabcache_get_or_load` says.
pub(crate) unsafe fn read_into(
    key: *const u8,
    key_len: usize,
    buf: *mut u8,
    buf_len: usize,
    out_len: *mut usize,
    out_load_error: *mut c_int,
    read: impl FnOnce(&[u8]) -> LoadResult<CallbackError>,
) -> Result<(), c_int> {
    // SAFETY: `key` is NULL or `key_len` readable bytes that nothing writes during the call
    // (the caller's contract).
    let key = unsafe { key_arg(key, key_len) }?;
    check_buffer(buf, buf_len)?;
    check_out(out_len)?;
    check_optional_out(out_load_error)?;
    let loaded = read(key);
    // SAFETY: `check_optional_out` saw `out_load_error` NULL or aligned.
    let value = unsafe { take_loaded(loaded, out_load_error) }?;
    // `key` is not used past this point, so writing `buf` may overwrite it.
    // SAFETY: `buf` and `out_len` passed their checks and are writable (the caller's
    // contract); `value` is the library's own, so it does not overlap `buf`.
    unsafe { deliver(&value, buf, buf_len, out_len) }
}

/// Hands the loaded value (`value_len` bytes at `value`, which may be NULL when `value_len`
/// is 0) to the library; it is copied. Call it from a loader, with the sink the loader was
/// given, before the loader returns `SLABCACHE_OK`. A second call replaces the value of the
/// first. The value may be longer than the cache's `max_value_bytes`: it is then returned
/// to the callers without being cached.
///
/// Returns `SLABCACHE_OK`, or `SLABCACHE_INVALID_ARGUMENT` for a NULL or misaligned `sink`, a
/// NULL `value` with `value_len` above 0, or `value_len` above `PTRDIFF_MAX`.
///
/// # Safety
///
/// `sink` is NULL or the sink of a loader call that has not returned yet, used by no other
/// thread during this call; `value` is NULL or points at `value_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn slabcache_sink_value(
    sink: *mut slabcache_sink_t,
    value: *const u8,
    value_len: usize,
) -> c_int {
    run(|| {
        check_out(sink)?;
        // SAFETY: `value` is NULL or `value_len` readable bytes (this function's contract).
        let value = unsafe { bytes_arg(value, value_len) }?;
        // SAFETY: `check_out` saw `sink` non-NULL and aligned; the caller passes the sink of a
        // running loader call, which `call_loader` made and does not touch until the loader
        // returns, and nobody else uses it meanwhile.
        unsafe { (*sink).value = Some(value.to_vec()) };
        Ok(())
    })
}

/// Runs a C loader for `key` and turns its answer into the engine's.
///
/// # Safety
///
/// `load` and `ctx` are a loader and its context as the caller of the library registered
/// them, to be called now, on this thread.
pub(crate) unsafe fn call_loader(
    load: Loader,
    ctx: *mut c_void,
    key: &[u8],
) -> Result<Option<Vec<u8>>, CallbackError> {
    let mut sink = slabcache_sink { value: None };
    // SAFETY: the caller registered `load` with `ctx` for this; the key is readable for the
    // call, and the sink lives until it returns (`slabcache_sink_value`'s contract ends
    // there).
    let code = unsafe { load(ctx, key.as_ptr(), key.len(), ptr::addr_of_mut!(sink)) };
    match code {
        SLABCACHE_OK => sink.value.map(Some).ok_or(CallbackError(SLABCACHE_OK)),
        SLABCACHE_NOT_FOUND => Ok(None),
        code => Err(CallbackError(code)),
    }
}

/// The engine's read-through with a loader of the C error type.
fn read_through(
    cache: &Cache,
    key: &[u8],
    ttl_ms: u64,
    load: impl FnOnce(&[u8]) -> Result<Option<Vec<u8>>, CallbackError>,
) -> LoadResult<CallbackError> {
    cache.get_or_load_with_ttl(key, ttl_of(cache, ttl_ms), load)
}

/// The value a read-through found or loaded, or the status that says why there is none;
/// for `SLABCACHE_LOAD_FAILED`, the loader's code goes to `*out_load_error` if it is not
/// NULL.
///
/// # Safety
///
/// `out_load_error` is NULL, or aligned and writable.
unsafe fn take_loaded(
    loaded: LoadResult<CallbackError>,
    out_load_error: *mut c_int,
) -> Result<Vec<u8>, c_int> {
    match loaded {
        Ok(Some(value)) => Ok(value),
        Ok(None) => Err(SLABCACHE_NOT_FOUND),
        Err(LoadError::Failed(error)) => {
            // SAFETY: NULL, or aligned and writable (this function's contract).
            unsafe { write_optional(out_load_error, error.0) };
            Err(SLABCACHE_LOAD_FAILED)
        }
        Err(LoadError::Recursive) => Err(SLABCACHE_RECURSIVE_LOAD),
        Err(LoadError::Panicked(_)) => Err(SLABCACHE_PANIC),
        Err(LoadError::Cache(error)) => Err(status_of(&error)),
        // `LoadError` is non-exhaustive: a reason the engine gains needs a status here, and
        // until it has one the caller hears SLABCACHE_PANIC with this message on stderr.
        Err(other) => panic!("slabcache-ffi has no status for the load error {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::new_cache;
    use crate::{slabcache_free, slabcache_stats, slabcache_stats_t};

    /// A panic on the loader's path (here in the Rust loader itself) comes back to the caller
    /// as `SLABCACHE_PANIC`, nothing is cached, and the cache goes on.
    #[test]
    fn a_panic_while_loading_is_the_panic_status() {
        let cache = new_cache(0);
        // SAFETY: a live cache from `new_cache`, freed at the end.
        let engine = unsafe { handle(cache) }.unwrap();
        let loaded = read_through(engine, b"k", 0, |_| panic!("on purpose"));
        // SAFETY: NULL asks for no code.
        let status = unsafe { take_loaded(loaded, ptr::null_mut()) };
        assert_eq!(status, Err(SLABCACHE_PANIC));
        assert_eq!(engine.get(b"k"), None);
        let loaded = read_through(engine, b"k", 0, |_| Ok(Some(b"v".to_vec())));
        // SAFETY: as above.
        let value = unsafe { take_loaded(loaded, ptr::null_mut()) };
        assert_eq!(value, Ok(b"v".to_vec()));
        // SAFETY: a live cache, a stats struct of this library's size.
        unsafe {
            let mut stats: slabcache_stats_t = std::mem::zeroed();
            stats.size = std::mem::size_of::<slabcache_stats_t>();
            assert_eq!(slabcache_stats(cache, &mut stats), SLABCACHE_OK);
            assert_eq!(stats.loads, 2);
            slabcache_free(cache);
        }
    }

    /// What the test loader answers: its code, and the value it sinks first, if any.
    type Answer = (c_int, Option<&'static [u8]>);

    /// What `call_loader` makes of it, the error as its code.
    type LoadAnswer = Result<Option<Vec<u8>>, c_int>;

    /// A code no case uses: the sink refused a value.
    const SINK_REFUSED: c_int = -1;

    unsafe extern "C" fn answer(
        ctx: *mut c_void,
        _key: *const u8,
        _key_len: usize,
        sink: *mut slabcache_sink_t,
    ) -> c_int {
        // SAFETY: the tests pass a pointer to a live `Answer`.
        let (code, value) = unsafe { *ctx.cast::<Answer>() };
        if let Some(value) = value {
            // SAFETY: the loader's own sink, during its call.
            let sunk = unsafe { slabcache_sink_value(sink, value.as_ptr(), value.len()) };
            if sunk != SLABCACHE_OK {
                return SINK_REFUSED;
            }
        }
        code
    }

    /// What a loader answers decides the result: a value, "not found", its own code, and
    /// `SLABCACHE_OK` without a value is a failure whose code is `SLABCACHE_OK`.
    #[test]
    fn a_loaders_answer_becomes_the_engines() {
        let cases: [(Answer, LoadAnswer); 5] = [
            ((SLABCACHE_OK, Some(b"v")), Ok(Some(b"v".to_vec()))),
            ((SLABCACHE_OK, Some(b"")), Ok(Some(Vec::new()))),
            ((SLABCACHE_NOT_FOUND, Some(b"ignored")), Ok(None)),
            ((42, Some(b"ignored")), Err(42)),
            ((SLABCACHE_OK, None), Err(SLABCACHE_OK)),
        ];
        for (mut answer_of, expected) in cases {
            let ctx = ptr::addr_of_mut!(answer_of).cast();
            // SAFETY: `answer` reads `ctx` as the pair it is, on this thread.
            let got = unsafe { call_loader(answer, ctx, b"k") }.map_err(|e| e.0);
            assert_eq!(got, expected);
        }
    }
}
