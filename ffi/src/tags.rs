//! Tags in the C API: `slabcache_set_tagged` (a write that tags its entry) and
//! `slabcache_invalidate_tag`, whose body backed caches share.

use std::ffi::c_int;

use slabcache::Cache;

use crate::args::{bytes_arg, check_optional_out, handle, write_optional};
use crate::guard::run;
use crate::{slabcache_t, write_entry, Write};

/// `slabcache_set` that also tags the entry with each of the `tag_count` tags, the `i`th
/// `tag_lens[i]` bytes at `tags[i]` (any bytes; a tag may be NULL when its length is 0), so
/// that `slabcache_invalidate_tag` of any of them removes it. A later write of the key
/// without the tag ends its membership. With `tag_count` 0 it is `slabcache_set` (and
/// `tags` and `tag_lens` may be NULL).
///
/// A write racing an invalidation of one of its tags either lands before it, and is removed
/// by it, or loses, and the entry it wrote is removed before the invalidation returns.
///
/// Returns the statuses of `slabcache_set`, and `SLABCACHE_INVALID_ARGUMENT` for a NULL or
/// misaligned `tags` or `tag_lens` with `tag_count` above 0, or a NULL tag with a length
/// above 0 or a length above `PTRDIFF_MAX`.
///
/// # Safety
///
/// As `slabcache_set`; and `tags` and `tag_lens` are NULL or point at `tag_count` readable
/// elements each, each tag at its length of readable bytes, which nothing writes during the
/// call.
#[no_mangle]
pub unsafe extern "C" fn slabcache_set_tagged(
    cache: *const slabcache_t,
    key: *const u8,
    key_len: usize,
    val: *const u8,
    val_len: usize,
    ttl_ms: u64,
    tags: *const *const u8,
    tag_lens: *const usize,
    tag_count: usize,
    out_version: *mut u64,
) -> c_int {
    let tagged = Write::Tagged {
        tags,
        tag_lens,
        tag_count,
    };
    // SAFETY: the caller keeps `slabcache_set_tagged`'s contract, which is `write_entry`'s.
    unsafe {
        write_entry(
            tagged,
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

/// Removes every entry tagged with `tag` (`tag_len` bytes; NULL when `tag_len` is 0) by
/// `slabcache_set_tagged` and not written since without it, and stores how many it removed
/// in `*out_removed` when that is not NULL. Eager: they are gone, and counted out of the
/// stats, before it returns; entries tagged afterwards are unaffected.
///
/// Returns `SLABCACHE_OK`, or `SLABCACHE_INVALID_ARGUMENT` (nothing removed or written) for a
/// NULL `cache`, a NULL `tag` with `tag_len` above 0, `tag_len` above `PTRDIFF_MAX`, or a
/// misaligned `out_removed`.
///
/// # Safety
///
/// `cache` is NULL or a live cache; `tag` is NULL or points at `tag_len` readable bytes,
/// which nothing writes during the call; `out_removed` is NULL or points at a writable
/// `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn slabcache_invalidate_tag(
    cache: *const slabcache_t,
    tag: *const u8,
    tag_len: usize,
    out_removed: *mut u64,
) -> c_int {
    run(|| {
        // SAFETY: `cache` is NULL or a live cache (this function's contract).
        let cache = unsafe { handle(cache) }?;
        // SAFETY: the caller keeps this function's contract, which is `invalidate_tag`'s.
        unsafe { invalidate_tag(cache, tag, tag_len, out_removed) }
    })
}

/// The body of `slabcache_invalidate_tag` and `slabcache_backed_invalidate_tag`, once the
/// cache is known.
///
/// # Safety
///
/// `tag` and `out_removed` as `slabcache_invalidate_tag` says.
pub(crate) unsafe fn invalidate_tag(
    cache: &Cache,
    tag: *const u8,
    tag_len: usize,
    out_removed: *mut u64,
) -> Result<(), c_int> {
    // SAFETY: `tag` is NULL or `tag_len` readable, unchanging bytes (the caller's contract).
    let tag = unsafe { bytes_arg(tag, tag_len) }?;
    check_optional_out(out_removed)?;
    let removed = cache.invalidate_tag(tag);
    // SAFETY: `check_optional_out` saw `out_removed` NULL or aligned.
    unsafe { write_optional(out_removed, removed) };
    Ok(())
}
