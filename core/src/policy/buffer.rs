//! Hits on their way to the frequency sketch: lossy, striped read buffers.
//!
//! A reader that hits records its key's hash in its thread's stripe with a plain store and
//! takes no lock; the sketch is updated later, in bulk, when that thread holds the class lock
//! (as a writer, or as a reader that found its stripe full and won a `try_lock`). A full stripe
//! drops further records until it is drained: a frequency sketch loses nothing important by
//! missing a few hits of a hot key, and a reader never waits for policy work.
//!
//! Two threads that share a stripe can overwrite each other's record, and a record written
//! while its stripe is drained can be counted twice; both only blur the estimates slightly.

use crate::sync::{self, AtomicU32, AtomicU64, CachePadded, Ordering};

const STRIPES: usize = 8;
const SLOTS: usize = 16;

#[derive(Default)]
struct Stripe {
    len: AtomicU32,
    hashes: [AtomicU64; SLOTS],
}

pub(crate) struct ReadBuffer {
    stripes: [CachePadded<Stripe>; STRIPES],
}

impl ReadBuffer {
    pub(crate) fn new() -> Self {
        ReadBuffer {
            stripes: std::array::from_fn(|_| CachePadded::default()),
        }
    }

    /// Records a hit; true when this filled the stripe, so the caller should try to drain.
    #[inline]
    pub(crate) fn record(&self, hash: u64) -> bool {
        let stripe = &self.stripes[sync::thread_stripe() % STRIPES];
        let len = stripe.len.load(Ordering::Relaxed) as usize;
        if len >= SLOTS {
            return false;
        }
        stripe.hashes[len].store(hash, Ordering::Relaxed);
        stripe.len.store(len as u32 + 1, Ordering::Release);
        len + 1 == SLOTS
    }

    /// Hands the hashes recorded in the calling thread's stripe to `sink` and empties it
    /// (under the class lock). Only that stripe, so that the lock is held for at most
    /// [`SLOTS`] sketch updates: every thread drains its own stripe when it fills it or
    /// writes, and a stripe that waits meanwhile only drops records.
    pub(crate) fn drain(&self, mut sink: impl FnMut(u64)) {
        let stripe = &self.stripes[sync::thread_stripe() % STRIPES];
        let len = (stripe.len.load(Ordering::Acquire) as usize).min(SLOTS);
        stripe.hashes[..len]
            .iter()
            .for_each(|h| sink(h.load(Ordering::Relaxed)));
        stripe.len.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_until_full_then_drops_until_drained() {
        let buffer = ReadBuffer::new();
        let filled: Vec<bool> = (0..SLOTS as u64).map(|h| buffer.record(h)).collect();
        assert_eq!(
            filled.iter().filter(|&&f| f).count(),
            1,
            "exactly the last record fills it"
        );
        assert!(filled[SLOTS - 1]);
        assert!(!buffer.record(999), "a full stripe drops");
        let mut seen = Vec::new();
        buffer.drain(|h| seen.push(h));
        assert_eq!(seen, (0..SLOTS as u64).collect::<Vec<_>>());
        let mut again = Vec::new();
        buffer.drain(|h| again.push(h));
        assert!(again.is_empty());
        assert!(!buffer.record(5));
    }
}
