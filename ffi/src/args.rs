//! The checks of the caller's arguments, made before anything is read or written through a
//! pointer: handles, keys, values, tags, buffers, out-parameters and the structs that begin
//! with their size; and the writes of out-parameters and buffers.

use std::ffi::c_int;
use std::mem::size_of;
use std::ptr::{self, addr_of};
use std::slice;

use slabcache::Cache;

use crate::{
    slabcache_t, SLABCACHE_BUFFER_TOO_SMALL, SLABCACHE_INVALID_ARGUMENT, SLABCACHE_KEY_TOO_LARGE,
    SLABCACHE_MAX_KEY_LEN, SLABCACHE_VALUE_TOO_LARGE,
};

/// The cache behind a handle.
///
/// # Safety
///
/// `cache` is NULL or a live cache from `slabcache_new`, which stays live for `'a`.
#[inline(always)]
pub(crate) unsafe fn handle<'a>(cache: *const slabcache_t) -> Result<&'a Cache, c_int> {
    // SAFETY: a non-NULL `cache` points at the `Cache` of a live `Arc` from `slabcache_new`
    // (caller's contract), whose reference only `slabcache_free` gives back, never during
    // another call.
    unsafe { cache.as_ref() }.ok_or(SLABCACHE_INVALID_ARGUMENT)
}

/// The status for a key or value longer than the cache takes: `too_large`, unless no object
/// can have that length (above `PTRDIFF_MAX`), a caller's bug such as a negative number
/// converted to `size_t`, which is `SLABCACHE_INVALID_ARGUMENT`. Asked only once a length is
/// known to be too long, so that it costs the hot path nothing.
pub(crate) fn too_long(len: usize, too_large: c_int) -> c_int {
    if len > isize::MAX as usize {
        SLABCACHE_INVALID_ARGUMENT
    } else {
        too_large
    }
}

/// A key must be non-NULL, 1 to `SLABCACHE_MAX_KEY_LEN` bytes long.
pub(crate) fn check_key(key: *const u8, key_len: usize) -> Result<(), c_int> {
    if key.is_null() || key_len == 0 {
        return Err(SLABCACHE_INVALID_ARGUMENT);
    }
    if key_len > SLABCACHE_MAX_KEY_LEN {
        return Err(too_long(key_len, SLABCACHE_KEY_TOO_LARGE));
    }
    Ok(())
}

/// The caller's key, after the checks that make the slice valid to form.
///
/// # Safety
///
/// `key` is NULL or points at `key_len` readable bytes that nothing writes during `'a`.
pub(crate) unsafe fn key_arg<'a>(key: *const u8, key_len: usize) -> Result<&'a [u8], c_int> {
    check_key(key, key_len)?;
    // SAFETY: non-NULL (u8 needs no alignment), at most SLABCACHE_MAX_KEY_LEN bytes (far below
    // isize::MAX), readable and unchanging by the caller's contract.
    Ok(unsafe { slice::from_raw_parts(key, key_len) })
}

/// The caller's value, after the checks that make the slice valid to form: its length is
/// checked against the cache's limit before any of its bytes is looked at.
///
/// # Safety
///
/// `val` is NULL or points at `val_len` readable bytes that nothing writes during `'a`.
pub(crate) unsafe fn value_arg<'a>(
    cache: &Cache,
    val: *const u8,
    val_len: usize,
) -> Result<&'a [u8], c_int> {
    if !val.is_null() && val_len > cache.max_value_bytes() {
        return Err(too_long(val_len, SLABCACHE_VALUE_TOO_LARGE));
    }
    // SAFETY: the caller's contract is `bytes_arg`'s.
    unsafe { bytes_arg(val, val_len) }
}

/// Bytes of any length an object can have (a value for a source, a tag): NULL only when
/// `len` is 0, and `len` at most `PTRDIFF_MAX`.
///
/// # Safety
///
/// `ptr` is NULL or points at `len` readable bytes that nothing writes during `'a`.
pub(crate) unsafe fn bytes_arg<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], c_int> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() || len > isize::MAX as usize {
        return Err(SLABCACHE_INVALID_ARGUMENT);
    }
    // SAFETY: non-NULL (u8 needs no alignment), at most isize::MAX bytes, readable and
    // unchanging by the caller's contract.
    Ok(unsafe { slice::from_raw_parts(ptr, len) })
}

/// The caller's tags: `count` byte strings, the `i`th `lens[i]` bytes at `tags[i]` (NULL
/// only when its length is 0). With `count` 0 the arrays are not read and may be NULL.
///
/// # Safety
///
/// `tags` and `lens` are NULL or point at `count` readable elements each, and each tag as
/// `bytes_arg` says; nothing writes any of them during `'a`.
pub(crate) unsafe fn tags_arg<'a>(
    tags: *const *const u8,
    lens: *const usize,
    count: usize,
) -> Result<Vec<&'a [u8]>, c_int> {
    if count == 0 {
        return Ok(Vec::new());
    }
    check_out(tags.cast_mut())?;
    check_out(lens.cast_mut())?;
    if count > isize::MAX as usize / size_of::<usize>() {
        return Err(SLABCACHE_INVALID_ARGUMENT);
    }
    // SAFETY: non-NULL and aligned (checked above), `count` elements (at most isize::MAX
    // bytes: pointers and lengths are the size of a `usize`), readable by the caller's
    // contract.
    let (tags, lens) = unsafe {
        (
            slice::from_raw_parts(tags, count),
            slice::from_raw_parts(lens, count),
        )
    };
    tags.iter()
        .zip(lens)
        // SAFETY: each tag points at its length of readable bytes (the caller's contract).
        .map(|(&tag, &len)| unsafe { bytes_arg(tag, len) })
        .collect()
}

/// A caller's buffer: NULL only when its length is 0, and its length at most `PTRDIFF_MAX`.
#[inline(always)]
pub(crate) fn check_buffer(buf: *mut u8, buf_len: usize) -> Result<(), c_int> {
    if (buf.is_null() && buf_len > 0) || buf_len > isize::MAX as usize {
        return Err(SLABCACHE_INVALID_ARGUMENT);
    }
    Ok(())
}

/// Hands `value` to a reader: its length into `*out_len`, and, if it fits, its bytes into
/// `buf`; else `SLABCACHE_BUFFER_TOO_SMALL` with `buf` untouched.
///
/// # Safety
///
/// `buf` and `buf_len` passed `check_buffer`, and `buf` is writable for `buf_len` bytes and
/// does not overlap `value`; `out_len` passed `check_out` and is writable.
#[inline(always)]
pub(crate) unsafe fn deliver(
    value: &[u8],
    buf: *mut u8,
    buf_len: usize,
    out_len: *mut usize,
) -> Result<(), c_int> {
    // SAFETY: `check_out` saw `out_len` non-NULL and aligned; the caller promises it writable.
    unsafe { out_len.write(value.len()) };
    if value.len() > buf_len {
        return Err(SLABCACHE_BUFFER_TOO_SMALL);
    }
    if !value.is_empty() {
        // SAFETY: `buf` is non-NULL (buf_len >= value.len() > 0) and the caller promises
        // `buf_len` writable bytes there that do not overlap `value`.
        unsafe { ptr::copy_nonoverlapping(value.as_ptr(), buf, value.len()) };
    }
    Ok(())
}

/// A required out-parameter must be non-NULL and aligned.
pub(crate) fn check_out<T>(out: *mut T) -> Result<(), c_int> {
    if out.is_null() || !out.is_aligned() {
        return Err(SLABCACHE_INVALID_ARGUMENT);
    }
    Ok(())
}

/// An optional out-parameter must be NULL or aligned.
pub(crate) fn check_optional_out<T>(out: *mut T) -> Result<(), c_int> {
    if out.is_null() {
        Ok(())
    } else {
        check_out(out)
    }
}

/// Writes `value` to an optional out-parameter, if there is one.
///
/// # Safety
///
/// `out` is NULL, or aligned and valid for a write of a `T`.
pub(crate) unsafe fn write_optional<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: non-NULL, so aligned and writable by the caller's contract.
        unsafe { out.write(value) };
    }
}

/// A struct that begins with its own size (the options, source and stats structs):
/// `Ok` when `ptr` is non-NULL, aligned, and its `size` is this library's `size_of::<T>()`.
/// Only the `size` field is read before that is known.
///
/// # Safety
///
/// `ptr` is NULL or points at an initialised `size_t` that begins a `T`, and at a whole
/// readable `T` if that `size_t` is `size_of::<T>()`.
pub(crate) unsafe fn check_size<T: Sized>(ptr: *const T) -> Result<(), c_int> {
    check_out(ptr.cast_mut())?;
    // SAFETY: non-NULL and aligned for `T`, whose first field is a `usize` at offset 0 (both
    // structs are `repr(C)` and begin with `size`); the caller promises it initialised.
    let size = unsafe { ptr.cast::<usize>().read() };
    if size == size_of::<T>() {
        Ok(())
    } else {
        Err(SLABCACHE_INVALID_ARGUMENT)
    }
}

/// Reads a struct that begins with its size once that size is checked.
///
/// # Safety
///
/// As [`check_size`]; and every bit pattern is a valid `T` (integers, floats, raw pointers,
/// nullable function pointers).
pub(crate) unsafe fn read_sized<T>(ptr: *const T) -> Result<T, c_int> {
    // SAFETY: `check_size`'s contract is this function's.
    unsafe { check_size(ptr) }?;
    // SAFETY: `check_size` saw a non-NULL, aligned pointer whose `size` says a whole struct
    // is there; every bit pattern is a valid value of its fields (the caller's contract).
    Ok(unsafe { addr_of!(*ptr).read() })
}
