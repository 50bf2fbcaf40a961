//! The checks of the caller's arguments, made before anything is read or written through a
//! pointer: handles, keys, values, tags, buffers, out-parameters and the structs that begin
//! with their size; and the writes of out-parameters and buffers.

use std::ffi::c_int;
use std::mem::{align_of, size_of};
use std::ptr;
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

/// A C struct that begins with its own `size` (the options, source and stats structs), and the
/// versions of it this library takes: its own, and the earlier ones, which lack the fields
/// added at the end since. A program built against an older header passes the size of the
/// struct it knows; reading such a struct fills the fields it lacks with defaults, writing one
/// writes only the fields it has, and a size that is no version's is refused.
pub(crate) trait Versioned: Sized {
    /// Where each earlier version's fields end (the offset of the end of its last field),
    /// oldest first, each past `size`. That version's `size` is this end rounded up to the
    /// struct's alignment, as a C compiler lays it out; so a field added at the end must not
    /// be more aligned than the struct already is.
    const EARLIER_ENDS: &'static [usize] = &[];
}

/// The size a C compiler gives a version of `T` whose fields end at `end`.
const fn size_of_version<T>(end: usize) -> usize {
    end.next_multiple_of(align_of::<T>())
}

/// How many bytes of a versioned struct the caller's holds: all of `T` for this library's
/// version, or up to the end of an earlier version's last field (none of the caller's
/// trailing padding, which may lie where a later field begins). Reads only the `size` field.
///
/// # Safety
///
/// `ptr` is NULL or points at an initialised `size_t` that begins a `T` of some version.
unsafe fn fields_end<T: Versioned>(ptr: *const T) -> Result<usize, c_int> {
    check_out(ptr.cast_mut())?;
    // SAFETY: non-NULL and aligned for `T`, whose first field is a `usize` at offset 0 (the
    // structs are `repr(C)` and begin with `size`); the caller promises it initialised.
    let size = unsafe { ptr.cast::<usize>().read() };
    if size == size_of::<T>() {
        return Ok(size);
    }
    T::EARLIER_ENDS
        .iter()
        .copied()
        .find(|&end| size_of_version::<T>(end) == size)
        .ok_or(SLABCACHE_INVALID_ARGUMENT)
}

/// Reads a struct that begins with its size: its version's fields over `defaults`, which
/// stand for the fields an earlier version lacks.
///
/// # Safety
///
/// `ptr` is NULL or points at an initialised `size_t` that begins a `T`, and at a whole
/// readable struct of the version that size names when it names one. Every bit pattern of
/// its fields is a valid value of them (integers, floats, raw pointers, nullable function
/// pointers).
pub(crate) unsafe fn read_sized<T: Versioned>(ptr: *const T, defaults: T) -> Result<T, c_int> {
    // SAFETY: `ptr` is NULL or begins with its `size` (this function's contract).
    let end = unsafe { fields_end(ptr) }?;
    let mut value = defaults;
    // SAFETY: the caller's struct holds `end` readable bytes, which end at a field boundary of
    // `T` (`fields_end`), and every bit pattern of those fields is valid (the caller's
    // contract); `value` is a whole `T`, at least `end` bytes, and a local, so no overlap.
    unsafe {
        ptr::copy_nonoverlapping(ptr.cast::<u8>(), ptr::addr_of_mut!(value).cast::<u8>(), end)
    };
    Ok(value)
}

/// Writes `value` to a caller's struct that begins with its size, as far as its version
/// goes: the fields after `size`, which stays as the caller set it.
///
/// # Safety
///
/// `out` is NULL or points at an initialised `size_t` that begins a `T`, and at a whole
/// writable struct of the version that size names when it names one.
pub(crate) unsafe fn write_sized<T: Versioned>(out: *mut T, value: &T) -> Result<(), c_int> {
    // SAFETY: `out` is NULL or begins with its `size` (this function's contract).
    let end = unsafe { fields_end(out) }?;
    let start = size_of::<usize>();
    // SAFETY: the caller's struct has `end` writable bytes (its version's), `end` is past
    // `size` (`Versioned::EARLIER_ENDS`) and at most `size_of::<T>()`, the length of `value`,
    // which is the library's own and so does not overlap it.
    unsafe {
        ptr::copy_nonoverlapping(
            ptr::from_ref(value).cast::<u8>().add(start),
            out.cast::<u8>().add(start),
            end - start,
        )
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, MaybeUninit};

    /// A struct of three versions: the first ends at `first`, whose trailing padding is where
    /// `second` lies now; the second ends at `third`.
    #[derive(Clone, Copy, Debug, PartialEq)]
    #[repr(C)]
    struct Grown {
        size: usize,
        first: u32,
        second: u16,
        third: u64,
        fourth: u8,
    }

    const FIRST_END: usize = offset_of!(Grown, first) + size_of::<u32>();
    const SECOND_END: usize = offset_of!(Grown, third) + size_of::<u64>();

    impl Versioned for Grown {
        const EARLIER_ENDS: &'static [usize] = &[FIRST_END, SECOND_END];
    }

    /// The first version, as a program built against it lays it out.
    #[repr(C)]
    struct First {
        size: usize,
        first: u32,
    }

    /// The second version.
    #[repr(C)]
    struct Second {
        size: usize,
        first: u32,
        second: u16,
        third: u64,
    }

    const DEFAULTS: Grown = Grown {
        size: 0,
        first: 1,
        second: 2,
        third: 3,
        fourth: 4,
    };

    /// Checks a struct's versions: each earlier one ends past `size`, and the sizes of all,
    /// oldest first, strictly increase up to the struct's own, so each names one version.
    fn assert_versions_are_distinct<T: Versioned>() {
        let mut sizes: Vec<usize> = T::EARLIER_ENDS
            .iter()
            .map(|&end| {
                assert!(end > size_of::<usize>(), "a version ends past its size");
                size_of_version::<T>(end)
            })
            .collect();
        sizes.push(size_of::<T>());
        assert!(sizes.windows(2).all(|w| w[0] < w[1]), "sizes {sizes:?}");
    }

    #[test]
    fn the_versions_of_every_c_struct_have_distinct_sizes() {
        assert_versions_are_distinct::<crate::slabcache_options_t>();
        assert_versions_are_distinct::<crate::slabcache_stats_t>();
        assert_versions_are_distinct::<crate::slabcache_source_t>();
        assert_versions_are_distinct::<crate::slabcache_backed_options_t>();
        assert_versions_are_distinct::<crate::slabcache_backed_stats_t>();
    }

    #[test]
    fn the_test_structs_versions_are_what_a_compiler_lays_out() {
        assert_versions_are_distinct::<Grown>();
        assert_eq!(size_of_version::<Grown>(FIRST_END), size_of::<First>());
        assert_eq!(size_of_version::<Grown>(SECOND_END), size_of::<Second>());
    }

    /// An earlier version is read up to the end of its fields, and no further: under Miri,
    /// copying the first version's padding (uninitialised) into `second`, or reading past
    /// the struct, fails the test.
    #[test]
    fn reading_an_earlier_version_fills_what_it_lacks_with_the_defaults() {
        let mut first = MaybeUninit::<First>::uninit();
        // SAFETY: fields written in place, the padding left uninitialised as C may leave it.
        let first = unsafe {
            let p = first.as_mut_ptr();
            ptr::addr_of_mut!((*p).size).write(size_of::<First>());
            ptr::addr_of_mut!((*p).first).write(10);
            first.assume_init_ref()
        };
        // SAFETY: a struct of the first version, which its size names.
        let read = unsafe { read_sized(ptr::from_ref(first).cast::<Grown>(), DEFAULTS) };
        let expected = Grown {
            size: size_of::<First>(),
            first: 10,
            ..DEFAULTS
        };
        assert_eq!(read, Ok(expected));

        let second = Second {
            size: size_of::<Second>(),
            first: 10,
            second: 20,
            third: 30,
        };
        // SAFETY: a struct of the second version, which its size names.
        let read = unsafe { read_sized(ptr::from_ref(&second).cast::<Grown>(), DEFAULTS) };
        let expected = Grown {
            size: size_of::<Second>(),
            first: 10,
            second: 20,
            third: 30,
            ..DEFAULTS
        };
        assert_eq!(read, Ok(expected));

        let whole = Grown {
            size: size_of::<Grown>(),
            ..DEFAULTS
        };
        // SAFETY: a whole struct.
        assert_eq!(unsafe { read_sized(&whole, DEFAULTS) }, Ok(whole));
    }

    /// An earlier version is written up to the end of its fields, its `size` untouched: under
    /// Miri, writing past the struct fails the test.
    #[test]
    fn writing_an_earlier_version_writes_only_its_fields() {
        let value = Grown {
            size: size_of::<Grown>(),
            first: 10,
            second: 20,
            third: 30,
            fourth: 40,
        };
        let mut first = First {
            size: size_of::<First>(),
            first: 0,
        };
        // SAFETY: a struct of the first version, which its size names.
        let written = unsafe { write_sized(ptr::from_mut(&mut first).cast::<Grown>(), &value) };
        assert_eq!(written, Ok(()));
        assert_eq!((first.size, first.first), (size_of::<First>(), 10));

        // A second version inside a whole struct: the bytes past it are left alone.
        let mut whole = Grown {
            size: size_of::<Second>(),
            ..DEFAULTS
        };
        // SAFETY: at least the second version's bytes, which its size names.
        assert_eq!(unsafe { write_sized(&mut whole, &value) }, Ok(()));
        let expected = Grown {
            size: size_of::<Second>(),
            fourth: DEFAULTS.fourth,
            ..value
        };
        assert_eq!(whole, expected);

        whole.size = size_of::<Grown>();
        // SAFETY: a whole struct.
        assert_eq!(unsafe { write_sized(&mut whole, &value) }, Ok(()));
        assert_eq!(whole, value);
    }

    /// A size that is no version's is refused, with nothing read but the size, or written: the
    /// size alone is all there is (Miri checks), and the struct keeps its bytes.
    #[test]
    fn sizes_of_no_version_are_refused() {
        for size in [
            0,
            size_of::<usize>(),
            FIRST_END,
            SECOND_END + 1,
            size_of::<Grown>() + 8,
            usize::MAX,
        ] {
            // SAFETY: a lone `size_t`, which is all a refused size lets them touch.
            unsafe {
                let mut lone = size;
                let lone = ptr::from_mut(&mut lone).cast::<Grown>();
                assert_eq!(read_sized(lone, DEFAULTS), Err(SLABCACHE_INVALID_ARGUMENT));
                let written = write_sized(lone, &DEFAULTS);
                assert_eq!(written, Err(SLABCACHE_INVALID_ARGUMENT));
                assert_eq!(lone.cast::<usize>().read(), size);
            }
        }
        // SAFETY: NULL is refused before anything is read.
        let null = unsafe { read_sized(ptr::null::<Grown>(), DEFAULTS) };
        assert_eq!(null, Err(SLABCACHE_INVALID_ARGUMENT));
    }
}
