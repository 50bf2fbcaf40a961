//! The panic guard every entry point runs under, and the mapping from the engine's errors
//! to the C status codes.

use std::ffi::{c_int, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use slabcache::Error;

use crate::{
    SLABCACHE_BUFFER_TOO_SMALL, SLABCACHE_EXISTS, SLABCACHE_INVALID_ARGUMENT,
    SLABCACHE_KEY_TOO_LARGE, SLABCACHE_LOAD_FAILED, SLABCACHE_NOT_FOUND, SLABCACHE_OK,
    SLABCACHE_PANIC, SLABCACHE_QUEUE_FULL, SLABCACHE_RECURSIVE_LOAD, SLABCACHE_VALUE_TOO_LARGE,
    SLABCACHE_VERSION_MISMATCH, SLABCACHE_WRITE_FAILED,
};

pub(crate) const STATUS_PANIC: &CStr =
    c"SLABCACHE_PANIC: slabcache panicked (a bug); free the cache";

pub(crate) fn status_name(status: c_int) -> &'static CStr {
    match status {
        SLABCACHE_OK => c"SLABCACHE_OK: success",
        SLABCACHE_NOT_FOUND => c"SLABCACHE_NOT_FOUND: the key is not present",
        SLABCACHE_EXISTS => c"SLABCACHE_EXISTS: the key is already present",
        SLABCACHE_VERSION_MISMATCH => {
            c"SLABCACHE_VERSION_MISMATCH: the key holds another version than the expected one"
        }
        SLABCACHE_BUFFER_TOO_SMALL => {
            c"SLABCACHE_BUFFER_TOO_SMALL: the value is longer than the buffer"
        }
        SLABCACHE_KEY_TOO_LARGE => c"SLABCACHE_KEY_TOO_LARGE: the key is longer than 65535 bytes",
        SLABCACHE_VALUE_TOO_LARGE => {
            c"SLABCACHE_VALUE_TOO_LARGE: the value is longer than the cache's max_value_bytes"
        }
        SLABCACHE_INVALID_ARGUMENT => {
            c"SLABCACHE_INVALID_ARGUMENT: a NULL, empty, misaligned or out-of-range argument"
        }
        SLABCACHE_PANIC => STATUS_PANIC,
        SLABCACHE_LOAD_FAILED => {
            c"SLABCACHE_LOAD_FAILED: the loader or the source's load reported an error"
        }
        SLABCACHE_RECURSIVE_LOAD => {
            c"SLABCACHE_RECURSIVE_LOAD: a loader asked to load the key it is loading"
        }
        SLABCACHE_WRITE_FAILED => {
            c"SLABCACHE_WRITE_FAILED: the source's store or remove reported an error"
        }
        SLABCACHE_QUEUE_FULL => c"SLABCACHE_QUEUE_FULL: the write-behind queue is full",
        _ => c"SLABCACHE_UNKNOWN_STATUS",
    }
}

/// Runs `body`, returning `on_panic` if it panics: a panic must not unwind into C, where it
/// is undefined behaviour (Rust before 1.81) or aborts the process (since).
///
/// `AssertUnwindSafe`: after a panic the caller is told `SLABCACHE_PANIC`, whose
/// documentation says the cache may be inconsistent and should be freed.
pub(crate) fn catch<T>(on_panic: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(on_panic)
}

/// Runs an entry point's body under [`catch`] and returns its status.
pub(crate) fn run(body: impl FnOnce() -> Result<(), c_int>) -> c_int {
    catch(SLABCACHE_PANIC, || match body() {
        Ok(()) => SLABCACHE_OK,
        Err(status) => status,
    })
}

/// The status for an error of the engine.
pub(crate) fn status_of(error: &Error) -> c_int {
    match error {
        Error::EmptyKey | Error::InvalidConfig(_) => SLABCACHE_INVALID_ARGUMENT,
        Error::KeyTooLarge { .. } => SLABCACHE_KEY_TOO_LARGE,
        Error::ValueTooLarge { .. } => SLABCACHE_VALUE_TOO_LARGE,
        Error::Exists => SLABCACHE_EXISTS,
        Error::NotFound => SLABCACHE_NOT_FOUND,
        Error::VersionMismatch { .. } => SLABCACHE_VERSION_MISMATCH,
        // `Error` is non-exhaustive: an error the engine gains needs a status here, and until
        // it has one the caller hears SLABCACHE_PANIC with this message on stderr.
        other => panic!("slabcache-ffi has no status for the engine's error {other:?}"),
    }
}
