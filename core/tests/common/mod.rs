//! Helpers shared by the integration tests: a deterministic PRNG, a byte hash, values whose
//! content can be verified from the key alone, and the small cache configuration most tests use.
//!
//! Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use slabcache::{Cache, CacheBuilder, Event, ManualClock, RemovalCause, Stats};

// Under Miri, which interprets every step (an insert costs it tens of milliseconds, reading a
// 1000-byte value back half a second), the small cache is smaller: building, clearing and
// iterating a cache cost time in proportion to its size there.

/// `max_bytes` of the small test cache: 32 pages (8 MiB), or 8 (1 MiB) under Miri.
pub const SMALL_MAX_BYTES: u64 = if cfg!(miri) { 8 } else { 32 } * SMALL_PAGE;
/// `max_value_bytes` of the small test cache: 64 KiB, or 1 KiB under Miri.
pub const SMALL_MAX_VALUE: usize = if cfg!(miri) { 1 << 10 } else { 64 << 10 };
/// Page size that follows from [`SMALL_MAX_VALUE`]: 256 KiB (128 KiB under Miri), the smallest
/// power of two that holds a 40-byte chunk header, the longest key padded to 65,536 bytes and
/// the longest value.
pub const SMALL_PAGE: u64 = (40 + 65_536 + SMALL_MAX_VALUE).next_power_of_two() as u64;

/// `debug` iterations in debug builds, `release` iterations in optimised builds.
pub fn scaled(debug: usize, release: usize) -> usize {
    if cfg!(debug_assertions) {
        debug
    } else {
        release
    }
}

/// `miri` iterations under Miri, `native` otherwise: Miri runs the engine thousands of times
/// slower, so its runs keep only as many operations as the property needs.
pub fn miri_or(miri: usize, native: usize) -> usize {
    if cfg!(miri) {
        miri
    } else {
        native
    }
}

/// Runs `body` on its own thread and fails the test if it has not finished within `limit`, so
/// that an engine that livelocks or deadlocks fails the test instead of hanging the run (the
/// stuck thread is left behind; the test process ends with the run).
pub fn within(limit: Duration, body: impl FnOnce() + Send + 'static) {
    within_unless(limit, || false, body);
}

/// [`within`], also giving up as soon as `failed` says the body can no longer pass (checked
/// every [`FAILURE_POLL`]): a thread of it that panicked inside the cache can leave the others
/// stuck there, and the panic, not the hang, is what the test reports.
pub fn within_unless(
    limit: Duration,
    failed: impl Fn() -> bool,
    body: impl FnOnce() + Send + 'static,
) {
    let (done, finished) = mpsc::channel();
    let handle = thread::Builder::new()
        .name("test body".into())
        .spawn(move || {
            body();
            let _ = done.send(());
        })
        .expect("spawn the test body");
    let deadline = Instant::now() + limit;
    loop {
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .min(FAILURE_POLL);
        match finished.recv_timeout(wait) {
            Ok(()) => return handle.join().expect("body finished"),
            Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(()) => unreachable!("the body sends before it returns"),
            },
            Err(mpsc::RecvTimeoutError::Timeout) if failed() => {
                panic!("gave up waiting: the test body has failed")
            }
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() >= deadline => {
                panic!("did not finish within {limit:?}: the cache hangs (livelock or deadlock)")
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
    }
}

/// How often [`within_unless`] asks whether the body has failed.
const FAILURE_POLL: Duration = Duration::from_millis(100);

/// The limit for [`within`]: far above the seconds a healthy run takes, even in debug builds.
/// Miri's clock advances with the code it interprets, at roughly its real pace, and a test
/// there may take a few minutes of it: ten is far above what the Miri run's budget allows.
pub const HANG_LIMIT: Duration = Duration::from_secs(if cfg!(miri) { 600 } else { 120 });

/// Defines a `#[test]` whose body runs through [`within`] with [`HANG_LIMIT`]: on a thread of
/// its own, failing the test if it has not finished by then. The tests that drive the cache
/// hard (eviction, pages moving between classes, several threads) are hang-limited, so that
/// a cache that livelocks or deadlocks fails the test that found it, with a message that says
/// so, instead of hanging the whole run with no sign of where.
///
/// The test keeps its name, attributes and doc comment:
///
/// ```ignore
/// hang_limited! {
///     /// What the test checks.
///     #[cfg_attr(miri, ignore = "why it is too slow there")]
///     fn name_of_the_test() {
///         // the body, as in any test
///     }
/// }
/// ```
///
/// It expects this module at the crate root as `common`, as every test target declares it.
/// rustfmt leaves what stands inside a macro's braces alone: keep the body formatted by hand.
// Like the rest of this module, unused by some test targets (the stress test sets its own
// limit).
#[allow(unused_macros)]
macro_rules! hang_limited {
    ($(#[$attribute:meta])* fn $name:ident() $body:block) => {
        $(#[$attribute])*
        #[test]
        fn $name() {
            $crate::common::within($crate::common::HANG_LIMIT, || $body);
        }
    };
}
#[allow(unused_imports)]
pub(crate) use hang_limited;

/// A builder for the small cache ([`SMALL_MAX_BYTES`], values up to [`SMALL_MAX_VALUE`]) on a
/// manual clock.
pub fn small_builder(clock: &Arc<ManualClock>) -> CacheBuilder {
    Cache::builder()
        .max_bytes(SMALL_MAX_BYTES)
        .max_value_bytes(SMALL_MAX_VALUE)
        .clock(clock.clone())
}

/// A small cache on a fresh manual clock, with the clock.
pub fn small_cache() -> (Cache, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let cache = small_builder(&clock)
        .build()
        .expect("small cache config is valid");
    (cache, clock)
}

/// A listener's events counted by cause, to be compared with the stats counters that count
/// the same departures.
#[derive(Default)]
pub struct CauseCounts {
    evicted: AtomicU64,
    expired: AtomicU64,
    removed: AtomicU64,
    replaced: AtomicU64,
    cleared: AtomicU64,
    tag_invalidated: AtomicU64,
}

impl CauseCounts {
    /// Counts one event (callable from a listener, on any thread).
    pub fn count(&self, event: &Event) {
        let counter = match event.cause() {
            RemovalCause::Evicted => &self.evicted,
            RemovalCause::Expired => &self.expired,
            RemovalCause::Removed => &self.removed,
            RemovalCause::Replaced => &self.replaced,
            RemovalCause::Cleared => &self.cleared,
            RemovalCause::TagInvalidated => &self.tag_invalidated,
            other => panic!("a cause the tests do not know: {other:?}"),
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }

    /// The counts of `events`.
    pub fn of<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        let counts = Self::default();
        events.into_iter().for_each(|e| counts.count(e));
        counts
    }

    /// (evicted, expired, removed + cleared + tag-invalidated, replaced): what
    /// [`stats_departures`] gives when every departure was reported once.
    pub fn departures(&self) -> (u64, u64, u64, u64) {
        let get = |c: &AtomicU64| c.load(Ordering::SeqCst);
        (
            get(&self.evicted),
            get(&self.expired),
            get(&self.removed) + get(&self.cleared) + get(&self.tag_invalidated),
            get(&self.replaced),
        )
    }
}

/// (evictions, expirations, removals, updates): the stats counters that listener events match.
pub fn stats_departures(s: &Stats) -> (u64, u64, u64, u64) {
    (s.evictions, s.expirations, s.removals, s.updates)
}

/// SplitMix64: a tiny deterministic generator, good enough to drive workloads.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x243f_6a88_85a3_08d3)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.0)
    }

    /// Uniform in `[0, n)`; `n` must be non-zero.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[lo, hi]`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below((hi - lo) as u64 + 1) as usize
    }

    /// Log-uniform in `[lo, hi]` (`lo >= 1`): every power-of-two band is equally likely.
    pub fn log_uniform(&mut self, lo: usize, hi: usize) -> usize {
        let (l, h) = ((lo as f64).ln(), ((hi + 1) as f64).ln());
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((l + (h - l) * unit).exp() as usize).clamp(lo, hi)
    }

    /// True with probability `1 / n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

/// The SplitMix64 finaliser: a bijective 64-bit mix.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A 64-bit hash of `data` under `seed` (FNV-1a over 8-byte words, then mixed).
pub fn hash64(seed: u64, data: &[u8]) -> u64 {
    let mut h = mix64(seed ^ data.len() as u64) ^ 0xcbf2_9ce4_8422_2325;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        h = (h ^ u64::from_le_bytes(w.try_into().unwrap())).wrapping_mul(0x0000_0100_0000_01b3);
        h = h.rotate_left(29);
    }
    for &b in words.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix64(h)
}

/// Fills `out` with bytes that depend only on `seed` and the position.
fn fill_pattern(seed: u64, out: &mut [u8]) {
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let word = mix64(seed.wrapping_add(i as u64)).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}

/// A value of `len` bytes whose content is a function of `key` and `len`, so that a read can
/// be checked knowing only the key and the length it returned.
pub fn pattern_value(key: &[u8], len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    fill_pattern(hash64(len as u64, key), &mut v);
    v
}

/// Whether `value` is exactly `pattern_value(key, value.len())`.
pub fn is_pattern_value(key: &[u8], value: &[u8]) -> bool {
    value == pattern_value(key, value.len()).as_slice()
}

/// A key of exactly `len` bytes (`len >= prefix.len()`), unique per `prefix`, padded with a
/// filler derived from the prefix.
pub fn padded_key(prefix: &str, len: usize) -> Vec<u8> {
    let mut k = prefix.as_bytes().to_vec();
    assert!(
        len >= k.len(),
        "key length {len} shorter than prefix {prefix:?}"
    );
    let start = k.len();
    k.resize(len, 0);
    fill_pattern(hash64(7, prefix.as_bytes()), &mut k[start..]);
    k
}

/// Length of the self-checking header of a sealed value.
pub const SEAL: usize = 8;

/// A self-checking value of `len >= SEAL` bytes: the first 8 bytes are a hash of the key and
/// of the rest, the rest starts with `tag` (as much of it as fits) followed by a pattern.
pub fn sealed_value(key: &[u8], tag: &[u8], len: usize, salt: u64) -> Vec<u8> {
    assert!(len >= SEAL);
    let mut v = vec![0; len];
    let body = &mut v[SEAL..];
    let n = tag.len().min(body.len());
    body[..n].copy_from_slice(&tag[..n]);
    fill_pattern(salt, &mut body[n..]);
    let h = hash64(hash64(0x5ea1, key), &v[SEAL..]);
    v[..SEAL].copy_from_slice(&h.to_le_bytes());
    v
}

/// Whether `value` is a sealed value written for `key` and arrived whole.
pub fn is_sealed_for(key: &[u8], value: &[u8]) -> bool {
    value.len() >= SEAL
        && value[..SEAL] == hash64(hash64(0x5ea1, key), &value[SEAL..]).to_le_bytes()
}
