//! Large zero-filled tables backed by anonymous memory mappings.
//!
//! The arena and the index's main table are big, long-lived and randomly accessed. Mapping them
//! anonymously gives memory the OS zero-fills and commits lazily, page by page as it is first
//! written, and lets us ask for transparent huge pages: one TLB entry per 2 MiB instead of per
//! 4 KiB, which matters when every lookup lands on a random cache line of a gigabyte.
//!
//! Under `cfg(slabcache_loom)` the atomics are loom's, which are not plain integers in memory,
//! so the table is an ordinary boxed slice of default values instead.

#[cfg(not(slabcache_loom))]
use std::marker::PhantomData;

#[cfg(all(not(slabcache_loom), not(miri)))]
use memmap2::Advice;
#[cfg(not(slabcache_loom))]
use memmap2::MmapMut;

/// Types for which all-zero bytes are a valid value that may be shared across threads by
/// reference.
///
/// # Safety
/// Implementors must be valid when all their bytes are zero, contain no pointers that need
/// dropping, and be `Sync`.
pub(crate) unsafe trait Zeroable: Sync {}

// SAFETY: an atomic integer is a plain integer in memory; zero is a valid value.
unsafe impl Zeroable for crate::sync::AtomicU64 {}

/// `len` zero-initialised `T`s in an anonymous mapping.
#[cfg(not(slabcache_loom))]
pub(crate) struct ZeroedMap<T: Zeroable> {
    /// Owns the mapping; all access goes through `ptr`.
    _map: MmapMut,
    ptr: *const T,
    len: usize,
    _items: PhantomData<T>,
}

// SAFETY: the mapping is owned and only ever accessed as `&[T]`, and `T: Sync`.
#[cfg(not(slabcache_loom))]
unsafe impl<T: Zeroable> Send for ZeroedMap<T> {}
// SAFETY: as above.
#[cfg(not(slabcache_loom))]
unsafe impl<T: Zeroable> Sync for ZeroedMap<T> {}

#[cfg(not(slabcache_loom))]
impl<T: Zeroable> ZeroedMap<T> {
    pub(crate) fn new(len: usize) -> std::io::Result<Self> {
        let bytes = len
            .checked_mul(std::mem::size_of::<T>())
            .ok_or(std::io::ErrorKind::OutOfMemory)?;
        let mut map = MmapMut::map_anon(bytes.max(1))?;
        // Only a hint: without transparent huge pages the mapping works the same, slower.
        // Miri emulates anonymous mappings but not `madvise`.
        #[cfg(not(miri))]
        let _ = map.advise(Advice::HugePage);
        // Derived from `&mut [u8]`, not `&[u8]`: a pointer taken from a shared borrow of plain
        // bytes may only read them, and the `T`s are written through their atomics.
        let ptr = map.as_mut_ptr().cast::<T>().cast_const();
        assert!(ptr.is_aligned(), "anonymous mappings are page-aligned");
        Ok(ZeroedMap {
            _map: map,
            ptr,
            len,
            _items: PhantomData,
        })
    }

    #[inline]
    pub(crate) fn as_slice(&self) -> &[T] {
        // The mapping holds `len` `T`s' worth of bytes, lives as long as `self`, and is only
        // accessed through shared references to `T`, whose interior mutability is atomic.
        // SAFETY: page-aligned (checked in `new`), zero-filled: a valid `T` by `Zeroable`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    pub(crate) fn bytes(&self) -> usize {
        self.len * std::mem::size_of::<T>()
    }
}

/// `len` default (zero) `T`s, for loom's models.
#[cfg(slabcache_loom)]
pub(crate) struct ZeroedMap<T: Zeroable> {
    items: Box<[T]>,
}

#[cfg(slabcache_loom)]
impl<T: Zeroable + Default> ZeroedMap<T> {
    pub(crate) fn new(len: usize) -> std::io::Result<Self> {
        Ok(ZeroedMap {
            items: (0..len).map(|_| T::default()).collect(),
        })
    }

    pub(crate) fn as_slice(&self) -> &[T] {
        &self.items
    }

    pub(crate) fn bytes(&self) -> usize {
        self.items.len() * std::mem::size_of::<T>()
    }
}
