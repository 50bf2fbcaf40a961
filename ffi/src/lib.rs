//! The C ABI of slabcache: the functions, types and constants of `include/slabcache.h`, which
//! cbindgen generates from this crate (settings in `ffi/cbindgen.toml`; `tests/header.rs`
//! fails when the committed header differs from what the crate generates). This file holds
//! the cache itself: its handle, status codes, reads and writes; `options.rs` its settings
//! and how a cache is built from them, `stats.rs` its counters; `listener.rs` the
//! listener callback told of removals; `load.rs` the read-through with a loader callback,
//! `backed.rs` the cache in front of a source of callbacks.
//!
//! Every entry point
//! - runs its body under [`catch`], so a panic comes back as `SLABCACHE_PANIC` instead of
//!   unwinding into C;
//! - checks its arguments before it reads or writes through a pointer: a NULL handle, a NULL
//!   pointer with a non-zero length, a length no object can have, a misaligned or NULL
//!   required out-parameter and an options or stats struct of a size that is none of its
//!   versions (`args::Versioned`) are `SLABCACHE_INVALID_ARGUMENT`;
//! - writes its out-parameters last, and only as its documentation says.

// The types carry the names the C header gives them (`slabcache_t`, `slabcache_options_t`).
#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_int, CStr};
use std::slice;
use std::sync::Arc;
use std::time::Duration;

use slabcache::{Cache, Error, Version};

/// A snapshot struct of the engine (`Stats`, `BackedStats`) as its C struct, which begins
/// with its `size`. The one list of fields both destructures the engine's struct (without
/// `..`) and builds the C one, so a counter added to either fails the build until both have
/// it.
macro_rules! c_snapshot {
    ($snapshot:expr, $engine:ident => $c:ident { $($field:ident),* $(,)? }) => {{
        let $engine { $($field),* } = $snapshot;
        $c {
            size: std::mem::size_of::<$c>(),
            $($field),*
        }
    }};
}

mod args;
mod guard;
mod scratch;

// cbindgen writes the functions in the order it meets them, so the header shows the cache
// (this file), its options and stats, its listener, then read-through, backed caches, hot
// keys and tags.
mod options;

mod stats;

mod listener;

mod load;

mod backed;

mod hot;

mod tags;

use args::{
    check_buffer, check_key, check_optional_out, check_out, deliver, handle, key_arg, read_sized,
    tags_arg, value_arg, write_optional,
};
use guard::{catch, run, status_name, status_of, STATUS_PANIC};
use scratch::with_scratch;

pub use backed::*;
pub use listener::*;
pub use load::*;
pub use options::*;
pub use stats::*;

/// Success.
pub const SLABCACHE_OK: c_int = 0;
/// The key is absent: never written, removed, evicted or expired.
pub const SLABCACHE_NOT_FOUND: c_int = 1;
/// `slabcache_add` found the key present.
pub const SLABCACHE_EXISTS: c_int = 2;
/// `slabcache_cas` or `slabcache_delete_if_version` found another version than the expected one.
pub const SLABCACHE_VERSION_MISMATCH: c_int = 3;
/// `slabcache_get`: the value is longer than the caller's buffer; `*out_len` holds its length.
pub const SLABCACHE_BUFFER_TOO_SMALL: c_int = 4;
/// The key is longer than `SLABCACHE_MAX_KEY_LEN` bytes.
pub const SLABCACHE_KEY_TOO_LARGE: c_int = 5;
/// The value is longer than the cache's `max_value_bytes`.
pub const SLABCACHE_VALUE_TOO_LARGE: c_int = 6;
/// A NULL handle, a NULL pointer with a non-zero length, an empty key, a length no object can
/// have (above `PTRDIFF_MAX`), a NULL or misaligned required out-parameter, version 0, an
/// options or stats struct whose `size` is none this library knows, or an out-of-range
/// option.
pub const SLABCACHE_INVALID_ARGUMENT: c_int = 7;
/// The library panicked (a bug in slabcache). The cache may be inconsistent: free it.
pub const SLABCACHE_PANIC: c_int = 8;
/// A loader (`slabcache_get_or_load`) or a source's `load` (`slabcache_backed_get`) returned
/// an error code of its own; the call's `out_load_error` holds it. Every caller that waited
/// for that load gets the same status and code.
pub const SLABCACHE_LOAD_FAILED: c_int = 9;
/// A loader asked, on its own thread, to load the very key it is loading: waiting for itself
/// would never end. Nothing was loaded for that inner call.
pub const SLABCACHE_RECURSIVE_LOAD: c_int = 10;
/// A backed cache's write reached the source, whose `store` or `remove` returned an error
/// code of its own (write-through and write-around); the call's `out_source_error` holds it,
/// and the key was removed from the cache, since the source's state is not known.
pub const SLABCACHE_WRITE_FAILED: c_int = 11;
/// A write-behind write found the queue full, with `SLABCACHE_WHEN_FULL_ERROR` chosen: the
/// write was not made.
pub const SLABCACHE_QUEUE_FULL: c_int = 12;

/// `ttl_ms` for an entry that never expires, whatever the cache's default TTL.
pub const SLABCACHE_TTL_NONE: u64 = u64::MAX;
/// The longest key, in bytes. Keys are 1 to `SLABCACHE_MAX_KEY_LEN` bytes long.
pub const SLABCACHE_MAX_KEY_LEN: usize = 65_535;
/// The longest value when `max_value_bytes` is 0: 1 MiB.
pub const SLABCACHE_DEFAULT_MAX_VALUE_BYTES: u32 = 1 << 20;

// The header needs these as literals (cbindgen does not evaluate another crate's constants);
// the build fails if they drift from the engine's.
const _: () = assert!(SLABCACHE_MAX_KEY_LEN == slabcache::MAX_KEY_LEN);
const _: () =
    assert!(SLABCACHE_DEFAULT_MAX_VALUE_BYTES as usize == slabcache::DEFAULT_MAX_VALUE_BYTES);

/// A cache: what a `slabcache_t *` points at, the engine's `Cache` inside an `Arc`, from
/// `slabcache_new` to `slabcache_free`. The pointer is the `Arc`'s own (`Arc::into_raw`), so
/// a call reaches the cache as through a `Box`, and a backed cache shares it by taking a
/// reference of its own.
///
/// The header declares `slabcache_t` itself (see `cbindgen.toml`), as an opaque struct
/// whose tag differs between C and C++.
pub type slabcache_t = Cache;

/// Makes a cache with the settings `*opts` and stores it in `*out`, owned by the caller
/// until `slabcache_free`. `opts` is only read during the call; with a listener, it starts
/// the cache's maintenance thread.
///
/// Returns `SLABCACHE_OK`, or `SLABCACHE_INVALID_ARGUMENT` (`*out` untouched) for a NULL
/// `opts` or `out`, an `opts->size` that is neither `sizeof(slabcache_options_t)` nor an
/// earlier version's, `max_bytes` 0 or less than one page, NaN or out-of-range
/// `ttl_jitter`, `max_value_bytes` above 64 MiB, an arena the system cannot map, or a
/// maintenance thread it cannot start.
///
/// # Safety
///
/// `opts` is NULL or points at an initialised `size_t` (its `size`), and at a whole readable
/// struct of the version that `size` names (this one's, or an earlier one's) when it names
/// one. A listener is a function of its declared type, which may be called with
/// `listener_ctx` as `slabcache_listener_fn` says. `out` is NULL or points at a writable
/// `slabcache_t *`.
#[no_mangle]
pub unsafe extern "C" fn slabcache_new(
    opts: *const slabcache_options_t,
    out: *mut *mut slabcache_t,
) -> c_int {
    run(|| {
        check_out(out)?;
        // SAFETY: `opts` is NULL or begins with an initialised `size`, followed by the rest of
        // its version's struct when that size names one (this function's contract); its
        // fields are integers, a float, a raw pointer and a nullable function pointer.
        let opts = unsafe { read_sized(opts, slabcache_options::defaults()) }?;
        let cache = build(&opts)?;
        // SAFETY: `check_out` saw `out` non-NULL and aligned; the caller promises it writable.
        unsafe { out.write(Arc::into_raw(cache).cast_mut()) };
        Ok(())
    })
}

/// Frees a cache made by `slabcache_new`, with all its entries. NULL is a no-op.
///
/// It first stops the cache's maintenance thread, waiting for the listener call that thread
/// may be making.
///
/// A backed cache made over it (`slabcache_backed_new`) holds a reference of its own: the
/// cache's memory then goes when the last of them is freed, and the backed cache goes on
/// working meanwhile, without the maintenance thread (its calls still deliver events to the
/// listener).
///
/// # Safety
///
/// `cache` is NULL or a cache from `slabcache_new` that was not freed yet, and no other call
/// on it runs now or later; nor is it called from the cache's listener.
#[no_mangle]
pub unsafe extern "C" fn slabcache_free(cache: *mut slabcache_t) {
    catch((), || {
        if !cache.is_null() {
            // SAFETY: `cache` came from `Arc::into_raw` in `slabcache_new` and, by the caller's
            // contract, its reference is given back once, with no other call using it.
            let cache = unsafe { Arc::from_raw(cache) };
            // A round of the maintenance thread holds a reference of its own, so dropping this
            // one would not wait for the listener call it may be making.
            cache.stop_maintenance();
            drop(cache);
        }
    })
}

/// Copies the value of `key` into `buf` and stores its length in `*out_len` and, when
/// `out_version` is not NULL, its version in `*out_version`.
///
/// Returns
/// - `SLABCACHE_OK`: the value is in `buf[0 .. *out_len]`;
/// - `SLABCACHE_BUFFER_TOO_SMALL`: the value is longer than `buf_len`; `*out_len` holds its
///   length, `buf` and `*out_version` are untouched (call again with a buffer that long; a
///   NULL `buf` with `buf_len` 0 asks for the length only);
/// - `SLABCACHE_NOT_FOUND`: absent or expired; nothing written;
/// - `SLABCACHE_KEY_TOO_LARGE`, or `SLABCACHE_INVALID_ARGUMENT` for a NULL `cache`, `key` or
///   `out_len`, `key_len` 0, a NULL `buf` with `buf_len` above 0, `key_len` or `buf_len`
///   above `PTRDIFF_MAX`, or a misaligned `out_len` or `out_version`.
///
/// # Safety
///
/// `cache` is NULL or a live cache. `key` is NULL or points at `key_len` readable bytes;
/// `buf` is NULL or points at `buf_len` writable bytes; `out_len` and `out_version` are NULL
/// or point at a writable `size_t` and `uint64_t`. Nothing else writes these during the call.
#[no_mangle]
pub unsafe extern "C" fn slabcache_get(
    cache: *const slabcache_t,
    key: *const u8,
    key_len: usize,
    buf: *mut u8,
    buf_len: usize,
    out_len: *mut usize,
    out_version: *mut u64,
) -> c_int {
    run(|| {
        // SAFETY: `cache` is NULL or a live cache (this function's contract).
        let cache = unsafe { handle(cache) }?;
        check_key(key, key_len)?;
        check_buffer(buf, buf_len)?;
        check_out(out_len)?;
        check_optional_out(out_version)?;
        // The closure holds the key as a raw pointer, and its slice ends before `buf` is
        // written, so `buf` may overlap the key: a slice captured by the closure would stay
        // borrowed for the whole call.
        with_scratch(|value| {
            // SAFETY: `check_key` saw `key` non-NULL and `key_len` at most
            // SLABCACHE_MAX_KEY_LEN; the caller promises that many readable, unchanging bytes.
            let key = unsafe { slice::from_raw_parts(key, key_len) };
            let version = cache.get_into(key, value).ok_or(SLABCACHE_NOT_FOUND)?;
            // SAFETY: `buf` and `out_len` passed their checks and are writable (the caller's
            // contract); `value` is this thread's own buffer, so it does not overlap `buf`.
            unsafe { deliver(value, buf, buf_len, out_len) }?;
            // SAFETY: `check_optional_out` saw `out_version` NULL or aligned.
            unsafe { write_optional(out_version, version.get()) };
            Ok(())
        })
    })
}

/// Stores `val` under `key`, whether or not the key is present, and its new version in
/// `*out_version` when that is not NULL.
///
/// `ttl_ms`: the entry's time to live in milliseconds; 0 = the cache's `default_ttl_ms`;
/// `SLABCACHE_TTL_NONE` = never expires. `val` may be NULL when `val_len` is 0.
///
/// Returns `SLABCACHE_OK`, `SLABCACHE_KEY_TOO_LARGE`, `SLABCACHE_VALUE_TOO_LARGE`, or
/// `SLABCACHE_INVALID_ARGUMENT` (a NULL `cache` or `key`, `key_len` 0, a NULL `val` with
/// `val_len` above 0, `key_len` or `val_len` above `PTRDIFF_MAX`, a misaligned
/// `out_version`).
///
/// # Safety
///
/// `cache` is NULL or a live cache. `key` and `val` are NULL or point at `key_len` and
/// `val_len` readable bytes, which nothing writes during the call. `out_version` is NULL or
/// points at a writable `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn slabcache_set(
    cache: *const slabcache_t,
    key: *const u8,
    key_len: usize,
    val: *const u8,
    val_len: usize,
    ttl_ms: u64,
    out_version: *mut u64,
) -> c_int {
    // SAFETY: the caller keeps `slabcache_set`'s contract, which is `write_entry`'s.
    unsafe {
        write_entry(
            Write::Set,
            cache,
            key,
            key_len,
            val,
            val_len,
            ttl_ms,
            out_version,
        )
    }
}

/// `slabcache_set` only if `key` is absent (or expired); `SLABCACHE_EXISTS` if it is present,
/// with nothing written.
///
/// # Safety
///
/// As `slabcache_set`.
#[no_mangle]
pub unsafe extern "C" fn slabcache_add(
    cache: *const slabcache_t,
    key: *const u8,
    key_len: usize,
    val: *const u8,
    val_len: usize,
    ttl_ms: u64,
    out_version: *mut u64,
) -> c_int {
    // SAFETY: the caller keeps `slabcache_set`'s contract, which is `write_entry`'s.
    unsafe {
        write_entry(
            Write::Add,
            cache,
            key,
            key_len,
            val,
            val_len,
            ttl_ms,
            out_version,
        )
    }
}

/// `slabcache_set` only if `key` is present; `SLABCACHE_NOT_FOUND` if it is absent, with
/// nothing written.
///
/// # Safety
///
/// As `slabcache_set`.
#[no_mangle]
pub unsafe extern "C" fn slabcache_replace(
    cache: *const slabcache_t,
    key: *const u8,
    key_len: usize,
    val: *const u8,
    val_len: usize,
    ttl_ms: u64,
    out_version: *mut u64,
) -> c_int {
    // SAFETY: the caller keeps `slabcache_set`'s contract, which is `write_entry`'s.
    unsafe {
        write_entry(
            Write::Replace,
            cache,
            key,
            key_len,
            val,
            val_len,
            ttl_ms,
            out_version,
        )
    }
}

/// Compare-and-swap: stores `val` under `key` only if the key's current version is
/// `expected_version`, with `ttl_ms` as in `slabcache_set`.
///
/// Returns
/// - `SLABCACHE_OK`: stored; the new version is in `*out_new_version`;
/// - `SLABCACHE_VERSION_MISMATCH`: the key holds another version, which is in
///   `*out_new_version`; nothing stored;
/// - `SLABCACHE_NOT_FOUND`: the key is absent or expired; nothing written;
/// - the argument errors of `slabcache_set`, and `SLABCACHE_INVALID_ARGUMENT` for an
///   `expected_version` of 0, which is never a version.
///
/// `out_new_version` may be NULL.
///
/// # Safety
///
/// As `slabcache_set`, with `out_new_version` for `out_version`.
#[no_mangle]
pub unsafe extern "C" fn slabcache_cas(
    cache: *const slabcache_t,
    key: *const u8,
    key_len: usize,
    val: *const u8,
    val_len: usize,
    expected_version: u64,
    ttl_ms: u64,
    out_new_version: *mut u64,
) -> c_int {
    let Some(expected) = Version::new(expected_version) else {
        return SLABCACHE_INVALID_ARGUMENT;
    };
    // SAFETY: the caller keeps `slabcache_set`'s contract, which is `write_entry`'s.
    unsafe {
        write_entry(
            Write::Cas(expected),
            cache,
            key,
            key_len,
            val,
            val_len,
            ttl_ms,
            out_new_version,
        )
    }
}

/// Removes `key`. Returns `SLABCACHE_OK`, `SLABCACHE_NOT_FOUND` (absent or expired),
/// `SLABCACHE_KEY_TOO_LARGE`, or `SLABCACHE_INVALID_ARGUMENT` (a NULL `cache` or `key`,
/// `key_len` 0 or above `PTRDIFF_MAX`).
///
/// # Safety
///
/// `cache` is NULL or a live cache; `key` is NULL or points at `key_len` readable bytes,
/// which nothing writes during the call.
#[no_mangle]
pub unsafe extern "C" fn slabcache_delete(
    cache: *const slabcache_t,
    key: *const u8,
    key_len: usize,
) -> c_int {
    run(|| {
        // SAFETY: `cache` is NULL or a live cache (this function's contract).
        let cache = unsafe { handle(cache) }?;
        // SAFETY: `key` is NULL or `key_len` readable, unchanging bytes (this function's
        // contract).
        let key = unsafe { key_arg(key, key_len) }?;
        if cache.remove(key) {
            Ok(())
        } else {
            Err(SLABCACHE_NOT_FOUND)
        }
    })
}

/// Removes `key` only if its current version is `version`. Returns `SLABCACHE_OK`,
/// `SLABCACHE_VERSION_MISMATCH` (nothing removed), `SLABCACHE_NOT_FOUND`, or the argument
/// errors of `slabcache_delete`, and `SLABCACHE_INVALID_ARGUMENT` for a `version` of 0.
///
/// # Safety
///
/// As `slabcache_delete`.
#[no_mangle]
pub unsafe extern "C" fn slabcache_delete_if_version(
    cache: *const slabcache_t,
    key: *const u8,
    key_len: usize,
    version: u64,
) -> c_int {
    run(|| {
        // SAFETY: `cache` is NULL or a live cache (this function's contract).
        let cache = unsafe { handle(cache) }?;
        // SAFETY: `key` is NULL or `key_len` readable, unchanging bytes (this function's
        // contract).
        let key = unsafe { key_arg(key, key_len) }?;
        let expected = Version::new(version).ok_or(SLABCACHE_INVALID_ARGUMENT)?;
        cache
            .remove_if_version(key, expected)
            .map_err(|e| status_of(&e))
    })
}

/// Removes every entry. Entries written by other threads meanwhile may survive. NULL is a
/// no-op.
///
/// # Safety
///
/// `cache` is NULL or a live cache.
#[no_mangle]
pub unsafe extern "C" fn slabcache_clear(cache: *const slabcache_t) {
    catch((), || {
        // SAFETY: `cache` is NULL or a live cache (this function's contract).
        if let Ok(cache) = unsafe { handle(cache) } {
            cache.clear();
        }
    })
}

/// The name of a status code and what it means, e.g. `"SLABCACHE_NOT_FOUND: the key is not
/// present"`; for a number that is no status, `"SLABCACHE_UNKNOWN_STATUS"`. A static string,
/// never NULL; do not free it.
#[no_mangle]
pub extern "C" fn slabcache_status_str(status: c_int) -> *const c_char {
    catch(STATUS_PANIC.as_ptr(), || status_name(status).as_ptr())
}

/// The library's version, e.g. `"0.1.0"`. A static string, never NULL; do not free it.
#[no_mangle]
pub extern "C" fn slabcache_version() -> *const c_char {
    catch(VERSION.as_ptr(), || VERSION.as_ptr())
}

/// Panics inside the entry points' panic guard, so that the C tests can check that a panic
/// comes back as `SLABCACHE_PANIC` (and does not abort the process) in the libraries as
/// built. Exported only with the `test-hooks` feature; not in the header.
#[cfg(feature = "test-hooks")]
#[no_mangle]
pub extern "C" fn slabcache_test_panic() -> c_int {
    run(|| panic!("slabcache_test_panic: a panic on purpose, for the tests"))
}

// ----- the shared parts of the entry points -----

const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(version) => version,
        Err(_) => panic!("the package version contains a NUL byte"),
    };

/// The writes, which differ only in their condition, or in the tags they give the entry.
#[derive(Clone, Copy)]
pub(crate) enum Write {
    Set,
    Add,
    Replace,
    Cas(Version),
    /// `slabcache_set_tagged`'s tags, as the caller passed them (checked in `write_entry`).
    Tagged {
        tags: *const *const u8,
        tag_lens: *const usize,
        tag_count: usize,
    },
}

/// The TTL that a `ttl_ms` argument stands for: 0 is the cache's default TTL,
/// `SLABCACHE_TTL_NONE` never expires.
fn ttl_of(cache: &Cache, ttl_ms: u64) -> Option<Duration> {
    match ttl_ms {
        0 => cache.default_ttl(),
        SLABCACHE_TTL_NONE => None,
        ms => Some(Duration::from_millis(ms)),
    }
}

/// The body of the write entry points.
///
/// # Safety
///
/// The contract of `slabcache_set`, and for `Write::Tagged`, `slabcache_set_tagged`'s.
#[allow(clippy::too_many_arguments)] // the C signature's arguments, passed through
pub(crate) unsafe fn write_entry(
    write: Write,
    cache: *const slabcache_t,
    key: *const u8,
    key_len: usize,
    val: *const u8,
    val_len: usize,
    ttl_ms: u64,
    out_version: *mut u64,
) -> c_int {
    run(|| {
        // SAFETY: `cache` is NULL or a live cache (this function's contract).
        let cache = unsafe { handle(cache) }?;
        // SAFETY: `key` is NULL or `key_len` readable, unchanging bytes (this function's
        // contract).
        let key = unsafe { key_arg(key, key_len) }?;
        // SAFETY: `val` is NULL or `val_len` readable, unchanging bytes (this function's
        // contract).
        let value = unsafe { value_arg(cache, val, val_len) }?;
        check_optional_out(out_version)?;
        let ttl = ttl_of(cache, ttl_ms);
        let written = match write {
            Write::Set => cache.insert_with_ttl(key, value, ttl),
            Write::Add => cache.insert_if_absent_with_ttl(key, value, ttl),
            Write::Replace => cache.replace_with_ttl(key, value, ttl),
            Write::Cas(expected) => cache.compare_and_swap_with_ttl(key, expected, value, ttl),
            Write::Tagged {
                tags,
                tag_lens,
                tag_count,
            } => {
                // SAFETY: the arrays and tags are as `slabcache_set_tagged` promises.
                let tags = unsafe { tags_arg(tags, tag_lens, tag_count) }?;
                cache.insert_tagged(key, value, ttl, &tags)
            }
        };
        let (version, result) = match written {
            Ok(version) => (version, Ok(())),
            // The one failure that reports a version: the current one.
            Err(Error::VersionMismatch { current }) => (current, Err(SLABCACHE_VERSION_MISMATCH)),
            Err(e) => return Err(status_of(&e)),
        };
        // SAFETY: `check_optional_out` saw `out_version` NULL or aligned.
        unsafe { write_optional(out_version, version.get()) };
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::SCRATCH_KEEP_BYTES;
    use std::ptr;

    pub(crate) fn new_cache(max_value_bytes: u32) -> *mut slabcache_t {
        let mut opts = std::mem::MaybeUninit::<slabcache_options_t>::uninit();
        // SAFETY: a writable options struct; init fills every field.
        let mut opts = unsafe {
            slabcache_options_init(opts.as_mut_ptr());
            opts.assume_init()
        };
        opts.max_bytes = 8 << 20;
        opts.max_value_bytes = max_value_bytes;
        let mut cache = ptr::null_mut();
        // SAFETY: valid options and out-parameter.
        assert_eq!(unsafe { slabcache_new(&opts, &mut cache) }, SLABCACHE_OK);
        cache
    }

    #[test]
    fn a_panic_comes_back_as_the_panic_status() {
        assert_eq!(run(|| panic!("on purpose")), SLABCACHE_PANIC);
        assert_eq!(run(|| Err(SLABCACHE_EXISTS)), SLABCACHE_EXISTS);
        assert_eq!(run(|| Ok(())), SLABCACHE_OK);
    }

    #[test]
    fn engine_errors_map_to_their_statuses() {
        let current = Version::new(7).unwrap();
        let cases = [
            (Error::EmptyKey, SLABCACHE_INVALID_ARGUMENT),
            (
                Error::KeyTooLarge { len: 9, max: 8 },
                SLABCACHE_KEY_TOO_LARGE,
            ),
            (
                Error::ValueTooLarge { len: 9, max: 8 },
                SLABCACHE_VALUE_TOO_LARGE,
            ),
            (Error::Exists, SLABCACHE_EXISTS),
            (Error::NotFound, SLABCACHE_NOT_FOUND),
            (
                Error::VersionMismatch { current },
                SLABCACHE_VERSION_MISMATCH,
            ),
            (Error::InvalidConfig("x".into()), SLABCACHE_INVALID_ARGUMENT),
        ];
        for (error, status) in cases {
            assert_eq!(status_of(&error), status, "{error:?}");
        }
    }

    /// A struct shorter than this library's is refused after reading its `size` alone: under
    /// Miri, reading any further would be an out-of-bounds read.
    #[test]
    fn a_short_options_struct_is_refused_having_read_only_its_size() {
        let short = size_of::<usize>();
        let mut cache = ptr::null_mut();
        // SAFETY: `short` is an initialised size_t, which is all a wrong size lets it read.
        let status = unsafe { slabcache_new(ptr::from_ref(&short).cast(), &mut cache) };
        assert_eq!(status, SLABCACHE_INVALID_ARGUMENT);
        assert!(cache.is_null());
    }

    /// `slabcache_options_t` as a program built against the header before the listener
    /// lays it out.
    #[repr(C)]
    struct OptionsBeforeListener {
        size: usize,
        max_bytes: u64,
        max_entries: u64,
        default_ttl_ms: u64,
        ttl_jitter: f64,
        max_value_bytes: u32,
    }

    /// `slabcache_stats_t` as a program built against the header before `loads` lays it out:
    /// 13 counters after its size.
    #[repr(C)]
    struct StatsBeforeLoads {
        size: usize,
        counters: [u64; 13],
    }

    /// The earlier versions' sizes are taken: the options' fields are read (under Miri, no
    /// further than the struct), and the stats' written (no further either).
    #[test]
    fn the_structs_of_the_previous_header_are_taken() {
        let old = OptionsBeforeListener {
            size: size_of::<OptionsBeforeListener>(),
            max_bytes: 8 << 20,
            max_entries: 2,
            default_ttl_ms: 0,
            ttl_jitter: 0.0,
            max_value_bytes: 4096,
        };
        let mut cache = ptr::null_mut();
        // SAFETY: a whole struct of the earlier version, which its size names.
        let status = unsafe { slabcache_new(ptr::from_ref(&old).cast(), &mut cache) };
        assert_eq!(status, SLABCACHE_OK);
        let mut stats = StatsBeforeLoads {
            size: size_of::<StatsBeforeLoads>(),
            counters: [u64::MAX; 13],
        };
        // SAFETY: a live cache; valid keys and values; a whole struct of the earlier version.
        unsafe {
            for key in [&b"a"[..], b"b", b"c"] {
                let status =
                    slabcache_set(cache, key.as_ptr(), 1, key.as_ptr(), 1, 0, ptr::null_mut());
                assert_eq!(status, SLABCACHE_OK);
            }
            let status = slabcache_stats(cache, ptr::from_mut(&mut stats).cast());
            assert_eq!(status, SLABCACHE_OK);
            slabcache_free(cache);
        }
        assert_eq!(stats.size, size_of::<StatsBeforeLoads>());
        let [_hits, _misses, inserts, _updates, _removals, evictions, .., max_bytes, _fixed] =
            stats.counters;
        // `max_entries` and `max_bytes` were read from the old struct, and the counters written.
        assert_eq!((inserts, evictions, max_bytes), (3, 1, 8 << 20));
        assert!(
            stats.counters.iter().all(|&c| c != u64::MAX),
            "{:?}",
            stats.counters
        );
    }

    /// The value is copied out through a buffer that overlaps the key: the key is done with
    /// before the buffer is written.
    #[test]
    fn get_into_the_buffer_that_holds_the_key() {
        let cache = new_cache(0);
        let mut version = 0;
        // SAFETY: a live cache, valid slices and out-parameters here and below.
        unsafe {
            assert_eq!(
                slabcache_set(
                    cache,
                    b"key".as_ptr(),
                    3,
                    b"value".as_ptr(),
                    5,
                    0,
                    &mut version
                ),
                SLABCACHE_OK
            );
            let mut buf = *b"key.....";
            let (mut len, mut read_version) = (0, 0);
            let buf_ptr = buf.as_mut_ptr();
            let status = slabcache_get(cache, buf_ptr, 3, buf_ptr, 8, &mut len, &mut read_version);
            assert_eq!(status, SLABCACHE_OK);
            assert_eq!(&buf[..len], b"value");
            assert_eq!(read_version, version);
            slabcache_free(cache);
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "slow under Miri: a 128 KiB value through the atomics")]
    fn a_value_larger_than_the_kept_scratch_is_read_whole_twice() {
        let cache = new_cache(4 * SCRATCH_KEEP_BYTES as u32);
        let value: Vec<u8> = (0..2 * SCRATCH_KEEP_BYTES).map(|i| i as u8).collect();
        let mut buf = vec![0u8; value.len()];
        // SAFETY: a live cache, valid slices and out-parameters.
        unsafe {
            let status = slabcache_set(
                cache,
                b"big".as_ptr(),
                3,
                value.as_ptr(),
                value.len(),
                0,
                ptr::null_mut(),
            );
            assert_eq!(status, SLABCACHE_OK);
            for _ in 0..2 {
                buf.fill(0);
                let mut len = 0;
                let status = slabcache_get(
                    cache,
                    b"big".as_ptr(),
                    3,
                    buf.as_mut_ptr(),
                    buf.len(),
                    &mut len,
                    ptr::null_mut(),
                );
                assert_eq!(status, SLABCACHE_OK);
                assert_eq!(buf, value);
            }
            slabcache_free(cache);
        }
    }
}
