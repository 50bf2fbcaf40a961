//! Large zero-filled tables backed by anonymous memory mappings, and [`prefetch`] for the
//! random accesses into them.
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
use std::ops::Range;

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

// SAFETY: the mapping is owned and only ever accessed through shared references to its `T`s,
// and `T: Sync`.
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

    /// The `T`s at `range`; panics when it is out of bounds, as slicing does.
    ///
    /// Callers take the few `T`s they need, never a slice of the whole table: a reference
    /// covers only its own bytes, which is what Miri's aliasing model checks each time one is
    /// made (a whole-table slice per lookup made that check as slow as the table is large).
    #[inline]
    pub(crate) fn slice(&self, range: Range<usize>) -> &[T] {
        assert!(
            range.start <= range.end && range.end <= self.len,
            "range {range:?} out of a table of {}",
            self.len
        );
        // The mapping's `len` `T`s live as long as `self`, are aligned (checked in `new`) and
        // valid (zero-filled at first, a valid `T` by `Zeroable`), and are only ever reached
        // through shared references to `T`, whose interior mutability is atomic.
        // SAFETY: `range` lies within those `len` `T`s (checked above).
        unsafe { std::slice::from_raw_parts(self.ptr.add(range.start), range.len()) }
    }

    /// The `T` at `index`; panics when it is out of bounds. See [`ZeroedMap::slice`].
    #[inline]
    pub(crate) fn get(&self, index: usize) -> &T {
        assert!(
            index < self.len,
            "index {index} out of a table of {}",
            self.len
        );
        // SAFETY: as in `slice`, for the one `T` at `index`, which is in bounds.
        unsafe { &*self.ptr.add(index) }
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

    pub(crate) fn slice(&self, range: Range<usize>) -> &[T] {
        &self.items[range]
    }

    pub(crate) fn get(&self, index: usize) -> &T {
        &self.items[index]
    }

    pub(crate) fn bytes(&self) -> usize {
        self.items.len() * std::mem::size_of::<T>()
    }
}

/// Starts loading the cache line of `target` into the CPU cache, for memory the caller will
/// read or write soon, so that the miss overlaps the work in between.
#[inline]
pub(crate) fn prefetch<T>(target: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of the x86_64 baseline, and a prefetch never faults or changes
    // memory, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            std::ptr::from_ref(target).cast(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = target;
}
