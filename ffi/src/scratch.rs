//! The per-thread buffer that reads copy values through on their way to the caller's buffer.

use std::cell::RefCell;

/// Values are copied by the engine into a `Vec`, then into the caller's buffer. Each thread
/// keeps its `Vec` between calls, so a read of a value that fits allocates nothing; one grown
/// past this many bytes by a large value is freed after the call instead of kept.
pub(crate) const SCRATCH_KEEP_BYTES: usize = 64 << 10;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `read` with this thread's scratch buffer, which it keeps for the next call unless a
/// large value grew it. A panic in `read` leaves the buffer's `RefCell` unborrowed as it
/// unwinds; a thread whose thread-locals are already gone (a call from a C thread's TLS
/// destructor) reads into a fresh buffer.
pub(crate) fn with_scratch<R>(read: impl Fn(&mut Vec<u8>) -> R) -> R {
    SCRATCH
        .try_with(|cell| {
            let mut scratch = cell.borrow_mut();
            let result = read(&mut scratch);
            if scratch.capacity() > SCRATCH_KEEP_BYTES {
                *scratch = Vec::new();
            }
            result
        })
        .unwrap_or_else(|_| read(&mut Vec::new()))
}
