//! Hot keys in the C API: `slabcache_hottest`, over a cache made with `track_hot_keys`.

use std::ffi::{c_int, c_void};

use crate::args::{check_optional_out, handle, write_optional};
use crate::guard::run;
use crate::slabcache_t;

/// Called by `slabcache_hottest` once for each key it reports, most read first: `ctx` as
/// given, the key (`key_len` bytes, valid only during the call), and its estimated count of
/// recent reads. It runs on the calling thread with no lock of the library held, so it may
/// call the library; it must return normally (no C++ exception, no `longjmp`).
pub type slabcache_hot_key_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, key: *const u8, key_len: usize, reads: u64)>;

/// Reports the keys read most often lately, most read first, at most `n` of them (and at
/// most the 64 the cache tracks): calls `visit(ctx, key, key_len, reads)` for each, then
/// stores how many it reported in `*out_count` when that is not NULL. `reads` estimates the
/// key's recent get hits from a sample (about one in 16), with counts halved about every half
/// million hits, so a key that cools down drops out. Only live keys are reported. A cache
/// made without `track_hot_keys` reports none; so does `n` 0. `visit` may be NULL, to count
/// only.
///
/// Returns `SLABCACHE_OK`, or `SLABCACHE_INVALID_ARGUMENT` (nothing called or written) for a
/// NULL `cache` or a misaligned `out_count`.
///
/// # Safety
///
/// `cache` is NULL or a live cache; `visit` is NULL or a function that keeps the contract of
/// `slabcache_hot_key_fn` with `ctx`; `out_count` is NULL or points at a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn slabcache_hottest(
    cache: *const slabcache_t,
    n: usize,
    visit: slabcache_hot_key_fn,
    ctx: *mut c_void,
    out_count: *mut usize,
) -> c_int {
    run(|| {
        // SAFETY: `cache` is NULL or a live cache (this function's contract).
        let cache = unsafe { handle(cache) }?;
        check_optional_out(out_count)?;
        let hottest = cache.hottest(n);
        if let Some(visit) = visit {
            for (key, reads) in &hottest {
                // SAFETY: `visit` keeps `slabcache_hot_key_fn`'s contract with `ctx` (this
                // function's contract); `key` is alive for the call.
                unsafe { visit(ctx, key.as_ptr(), key.len(), *reads) };
            }
        }
        // SAFETY: `out_count` is NULL or aligned (checked above) and writable (the contract).
        unsafe { write_optional(out_count, hottest.len()) };
        Ok(())
    })
}
