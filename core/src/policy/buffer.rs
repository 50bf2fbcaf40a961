//! Hits on their way to a frequency count: lossy, striped read buffers.
//!
//! A reader that hits records its key's hash in its thread's stripe with a plain store and
//! takes no lock; the count is updated later, in bulk, by a thread that holds the lock guarding
//! it. For the eviction policy that is the class lock, held by a writer or won with a
//! `try_lock` by a reader that filled its stripe; the hot-key tracker (`hot`) drains the same
//! way into its tally. A full stripe drops further records until it is drained: a frequency
//! count loses nothing important by missing a few hits of a hot key, and a reader never waits
//! for policy work.
//!
//! Two threads that share a stripe can overwrite each other's record, and a record written
//! while its stripe is drained can be counted twice; both only blur the estimates slightly.

use crate::sync::{self, AtomicU32, AtomicU64, CachePadded, Ordering};

const STRIPES: usize = 8;
const SLOTS: usize = 16;

/// What [`ReadBuffer::record`] did with a hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// Kept, and the stripe has room for more.
    Kept,
    /// Kept, and that filled the stripe: the caller should try to drain it.
    Filled,
    /// Dropped: the stripe was already full, waiting for a drain.
    Dropped,
}

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

    /// Records a hit in the calling thread's stripe, if it has room.
    #[inline]
    pub(crate) fn record(&self, hash: u64) -> Recorded {
        let stripe = &self.stripes[sync::thread_stripe() % STRIPES];
        let len = stripe.len.load(Ordering::Relaxed) as usize;
        if len >= SLOTS {
            return Recorded::Dropped;
        }
        stripe.hashes[len].store(hash, Ordering::Relaxed);
        stripe.len.store(len as u32 + 1, Ordering::Release);
        if len + 1 == SLOTS {
            Recorded::Filled
        } else {
            Recorded::Kept
        }
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
        let recorded: Vec<Recorded> = (0..SLOTS as u64).map(|h| buffer.record(h)).collect();
        assert!(
            recorded[..SLOTS - 1].iter().all(|&r| r == Recorded::Kept),
            "{recorded:?}"
        );
        assert_eq!(
            recorded[SLOTS - 1],
            Recorded::Filled,
            "exactly the last record fills it"
        );
        assert_eq!(buffer.record(999), Recorded::Dropped, "a full stripe drops");
        let mut seen = Vec::new();
        buffer.drain(|h| seen.push(h));
        assert_eq!(seen, (0..SLOTS as u64).collect::<Vec<_>>());
        let mut again = Vec::new();
        buffer.drain(|h| again.push(h));
        assert!(again.is_empty());
        assert_eq!(buffer.record(5), Recorded::Kept);
    }
}
