//! A small, fast, thread-local pseudo-random generator (wyrand) and random seeds.
//!
//! Used for TTL jitter, for sampling in the expiry reaper and for sampling reads for the
//! hot-key tracker: statistical quality matters, unpredictability to an attacker does not.
//! The per-cache hash seed, which does have to be unpredictable, comes from [`random_seed`],
//! which draws on the OS-seeded `RandomState`.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use crate::sync::{AtomicU64, Ordering};

/// A fresh unpredictable 64-bit seed. Under loom and the fuzzers, a fixed one: a model must
/// take the same path every time loom replays it, and a fuzzer's finding must replay the same
/// evictions.
pub(crate) fn random_seed() -> u64 {
    if cfg!(any(slabcache_loom, fuzzing)) {
        return 0x5eed;
    }
    let mut h = RandomState::new().build_hasher();
    h.write_u64(0x5eed);
    h.finish()
}

thread_local! {
    static STATE: Cell<u64> = Cell::new(random_seed());
}

/// wyrand's step: its state advances by this odd constant.
const WEYL_STEP: u64 = 0xa076_1d64_78bd_642f;

/// Next pseudo-random 64-bit value of this thread's generator.
pub(crate) fn next_u64() -> u64 {
    STATE.with(|s| {
        let x = s.get().wrapping_add(WEYL_STEP);
        s.set(x);
        output(x)
    })
}

/// The `n`th value of the wyrand sequence that starts from state 0: a pseudo-random function
/// of a counter, for sampling events by their number without any state of its own.
#[inline]
pub(crate) fn nth(n: u64) -> u64 {
    output(n.wrapping_mul(WEYL_STEP))
}

/// wyrand's output function of its state.
#[inline]
fn output(state: u64) -> u64 {
    let t = u128::from(state) * u128::from(state ^ 0xe703_7ed1_a0b4_28db);
    ((t >> 64) as u64) ^ (t as u64)
}

/// Uniform in `[0, 1)`.
pub(crate) fn unit_f64() -> f64 {
    unit_of(next_u64())
}

fn unit_of(random: u64) -> f64 {
    (random >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A generator shared by threads, from a seed of the caller's choosing: the same seed and
/// the same sequence of calls give the same values (for reproducible randomized decisions,
/// such as early expiry in tests). Lock-free: each call takes the next state with one
/// `fetch_add`.
pub(crate) struct SharedRng(AtomicU64);

impl SharedRng {
    pub(crate) fn new(seed: u64) -> Self {
        SharedRng(AtomicU64::new(seed))
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit_f64(&self) -> f64 {
        let x = self
            .0
            .fetch_add(WEYL_STEP, Ordering::Relaxed)
            .wrapping_add(WEYL_STEP);
        unit_of(output(x))
    }
}

/// Uniform in `[0, n)`; `n` must be non-zero.
pub(crate) fn below(n: u64) -> u64 {
    ((u128::from(next_u64()) * u128::from(n)) >> 64) as u64
}
