//! Memory bounds: the arena never exceeds `max_bytes`, content survives heavy churn intact, and
//! pages follow the size mix when it shifts (no calcification in old size classes).
//!
//! Every test here must write several times the cache's budget, which takes Miri (tens of
//! milliseconds an insert, seconds a page moved between classes) from minutes to hours even at
//! its 1 MiB, so `scripts/miri.sh` leaves them to the native runs. The paths they drive
//! (eviction, page moves, reaping) run under Miri in the concurrency tests.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use slabcache::{Cache, Stats};

use common::{
    hang_limited, is_pattern_value, padded_key, pattern_value, scaled, small_cache, Rng,
    SMALL_MAX_BYTES, SMALL_MAX_VALUE,
};

/// The invariants that hold after every operation on a cache without TTLs.
fn check_bounds(cache: &Cache, when: &str) -> Stats {
    let s = cache.stats();
    assert!(
        s.arena_bytes_used <= s.max_bytes,
        "{when}: arena_bytes_used {} > max_bytes {}",
        s.arena_bytes_used,
        s.max_bytes
    );
    assert!(
        s.payload_bytes <= s.arena_bytes_used,
        "{when}: payload_bytes {} > arena_bytes_used {}",
        s.payload_bytes,
        s.arena_bytes_used
    );
    s
}

/// Reads `key` and checks that, if present, it holds the value written for it.
fn read_checked(cache: &Cache, key: &[u8]) -> Option<usize> {
    let value = cache.get(key)?;
    assert!(
        is_pattern_value(key, &value),
        "key {:?}: {} bytes read back with the wrong content",
        String::from_utf8_lossy(&key[..key.len().min(24)]),
        value.len()
    );
    Some(value.len())
}

/// Every entry yielded by `iter` holds the value written for it; returns the payload bytes
/// (key + value) per phase tag, the tag being the key's first byte.
fn audit(cache: &Cache) -> [u64; 256] {
    let mut per_tag = [0u64; 256];
    let mut total = 0u64;
    for (k, v, _) in cache.iter() {
        assert!(
            is_pattern_value(&k, &v),
            "iter yielded a corrupted value ({} bytes)",
            v.len()
        );
        per_tag[k[0] as usize] += (k.len() + v.len()) as u64;
        total += (k.len() + v.len()) as u64;
    }
    assert_eq!(
        total,
        cache.stats().payload_bytes,
        "payload_bytes disagrees with iter"
    );
    per_tag
}

/// A key for write `i` of phase `tag`: short, or with `long_keys` now and then long (up to the
/// max key).
fn phase_key(tag: u8, i: usize, rng: &mut Rng, long_keys: bool) -> Vec<u8> {
    let prefix = format!("{}{i}:", tag as char);
    let len = if long_keys && rng.one_in(50) {
        rng.log_uniform(1024, slabcache::MAX_KEY_LEN)
    } else {
        prefix.len() + rng.range(0, 24)
    };
    padded_key(&prefix, len.max(prefix.len()))
}

hang_limited! {
    #[cfg_attr(
        miri,
        ignore = "writes 10x the budget and reads every insert back: most of an hour under Miri"
    )]
    fn arena_stays_within_budget_under_random_sizes() {
        let (cache, _clock) = small_cache();
        let mut rng = Rng::new(0xA11CE);
        let mut keys: Vec<Vec<u8>> = Vec::new();
        let mut written = 0u64;
        let mut op = 0;
        while written < 10 * SMALL_MAX_BYTES {
            let roll = rng.below(100);
            if roll < 80 || keys.is_empty() {
                let k = phase_key(b'r', keys.len(), &mut rng, true);
                let len = rng.log_uniform(1, SMALL_MAX_VALUE);
                cache.insert(&k, &pattern_value(&k, len)).unwrap();
                assert_eq!(
                    read_checked(&cache, &k),
                    Some(len),
                    "a fresh insert must be readable"
                );
                written += (k.len() + len) as u64;
                keys.push(k);
            } else {
                let k = &keys[rng.below(keys.len() as u64) as usize];
                match roll {
                    80..=89 => {
                        read_checked(&cache, k);
                    }
                    90..=94 => {
                        let len = rng.log_uniform(1, SMALL_MAX_VALUE);
                        cache.insert(k, &pattern_value(k, len)).unwrap();
                        written += (k.len() + len) as u64;
                    }
                    _ => {
                        cache.remove(k);
                        assert_eq!(cache.get(k), None);
                    }
                }
            }
            let s = check_bounds(&cache, &format!("op {op}"));
            assert_eq!(s.entries, cache.len() as u64);
            op += 1;
        }
        let s = cache.stats();
        assert!(s.evictions > 0, "10x the budget written without eviction");
        audit(&cache);
        // Everything still resident reads back whole.
        let resident = keys.iter().filter_map(|k| read_checked(&cache, k)).count();
        assert_eq!(resident as u64, cache.stats().entries);
        assert!(resident > 0);
    }
}

/// Writes `volume` bytes of phase `tag` with value lengths uniform in `lens`; returns the keys
/// in write order.
fn run_phase(
    cache: &Cache,
    rng: &mut Rng,
    tag: u8,
    lens: (usize, usize),
    volume: u64,
) -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let mut written = 0u64;
    while written < volume {
        let k = phase_key(tag, keys.len(), rng, false);
        let len = rng.range(lens.0, lens.1);
        cache.insert(&k, &pattern_value(&k, len)).unwrap();
        written += (k.len() + len) as u64;
        check_bounds(
            cache,
            &format!("phase {} write {}", tag as char, keys.len()),
        );
        // Re-read a few recent keys, as a workload with locality would.
        if keys.len() > 8 && rng.one_in(4) {
            let recent = keys.len() - 1 - rng.below(8) as usize;
            read_checked(cache, &keys[recent]);
        }
        keys.push(k);
    }
    keys
}

/// After a phase: most of its last 50 keys are readable, and its entries hold at least
/// `min_share` of the budget (a calcified cache keeps the pages in the previous phase's classes).
/// "Most" is 30 of 50, not all: a scan-resistant policy rightly evicts new, never-read entries
/// before older ones that were read again.
fn check_phase_took_over(cache: &Cache, tag: u8, keys: &[Vec<u8>], min_share: f64) {
    let last = &keys[keys.len() - 50..];
    let readable = last
        .iter()
        .filter(|k| read_checked(cache, k).is_some())
        .count();
    assert!(
        readable >= 30,
        "phase {}: only {readable} of the last 50 keys readable",
        tag as char
    );
    let per_tag = audit(cache);
    let share = per_tag[tag as usize] as f64 / SMALL_MAX_BYTES as f64;
    assert!(
        share >= min_share,
        "phase {}: its entries hold {:.1}% of max_bytes, want >= {:.0}%; {:?}",
        tag as char,
        share * 100.0,
        min_share * 100.0,
        cache.stats()
    );
}

hang_limited! {
    #[cfg_attr(
        miri,
        ignore = "writes 10x the budget in five phases of sizes: most of an hour under Miri"
    )]
    fn size_mix_shifts_move_pages_to_the_new_sizes() {
        let (cache, _clock) = small_cache();
        let mut rng = Rng::new(0x5417);
        let volume = scaled(2, 4) as u64 * SMALL_MAX_BYTES;

        let small = run_phase(&cache, &mut rng, b's', (1, 256), volume);
        check_phase_took_over(&cache, b's', &small, 0.25);

        let large = run_phase(&cache, &mut rng, b'L', (16 << 10, SMALL_MAX_VALUE), volume);
        check_phase_took_over(&cache, b'L', &large, 0.40);

        let tiny = run_phase(&cache, &mut rng, b't', (1, 256), volume);
        check_phase_took_over(&cache, b't', &tiny, 0.25);

        let medium = run_phase(&cache, &mut rng, b'm', (1024, 4096), volume);
        check_phase_took_over(&cache, b'm', &medium, 0.40);

        let giant = run_phase(&cache, &mut rng, b'G', (16 << 10, SMALL_MAX_VALUE), volume);
        check_phase_took_over(&cache, b'G', &giant, 0.40);
    }
}

/// Fills the cache with small entries, empties it with `empty`, then writes large entries
/// worth 40% of the budget: the freed pages must serve them, so every one is kept.
fn refill_after_emptying(empty: impl Fn(&Cache, &[Vec<u8>])) {
    let (cache, _clock) = small_cache();
    let mut rng = Rng::new(0xC1EA);
    let small = run_phase(&cache, &mut rng, b's', (1, 256), 2 * SMALL_MAX_BYTES);
    empty(&cache, &small);
    let s = check_bounds(&cache, "after emptying");
    assert_eq!((s.entries, s.payload_bytes), (0, 0));
    assert!(cache.is_empty());

    let large = run_phase(
        &cache,
        &mut rng,
        b'L',
        (16 << 10, SMALL_MAX_VALUE),
        SMALL_MAX_BYTES * 2 / 5,
    );
    let kept = large
        .iter()
        .filter(|k| read_checked(&cache, k).is_some())
        .count();
    assert_eq!(
        kept,
        large.len(),
        "after emptying, {} large entries (40% of the budget) did not all fit: {:?}",
        large.len(),
        cache.stats()
    );
}

hang_limited! {
    #[cfg_attr(
        miri,
        ignore = "fills 2x the budget with small entries: several minutes under Miri"
    )]
    fn clear_frees_pages_for_other_sizes() {
        refill_after_emptying(|cache, _| cache.clear());
    }
}

hang_limited! {
    #[cfg_attr(
        miri,
        ignore = "fills 2x the budget with small entries: several minutes under Miri"
    )]
    fn removing_everything_frees_pages_for_other_sizes() {
        refill_after_emptying(|cache, keys| {
            for k in keys {
                cache.remove(k);
            }
        });
    }
}

hang_limited! {
    #[cfg_attr(
        miri,
        ignore = "6,000 inserts, some with keys of up to 64 KiB: tens of minutes under Miri"
    )]
    fn ttl_churn_stays_within_budget_and_never_serves_expired() {
        let (cache, clock) = small_cache();
        let mut rng = Rng::new(0x77);
        // Each key's deadline in clock nanoseconds, `u64::MAX` for none.
        let mut deadlines: Vec<(Vec<u8>, u64)> = Vec::new();
        let mut deadline_of: HashMap<Vec<u8>, u64> = HashMap::new();
        let mut now = 0u64;
        for i in 0..scaled(6_000, 30_000) {
            let k = phase_key(b't', i, &mut rng, true);
            let len = rng.log_uniform(1, SMALL_MAX_VALUE);
            let ttl_ms = rng.range(0, 2000) as u64;
            let ttl = (ttl_ms < 1900).then(|| Duration::from_millis(ttl_ms));
            cache
                .insert_with_ttl(&k, &pattern_value(&k, len), ttl)
                .unwrap();
            let deadline = ttl.map_or(u64::MAX, |t| now + t.as_nanos() as u64);
            deadline_of.insert(k.clone(), deadline);
            deadlines.push((k, deadline));

            let step = rng.range(0, 3_000_000) as u64;
            clock.advance(Duration::from_nanos(step));
            now += step;
            check_bounds(&cache, &format!("ttl write {i}"));

            for _ in 0..2 {
                let (k, deadline) = &deadlines[rng.below(deadlines.len() as u64) as usize];
                let got = read_checked(&cache, k);
                assert!(
                    got.is_none() || now < *deadline,
                    "entry served at {now} ns, its deadline was {deadline} ns"
                );
            }
        }
        let s = cache.stats();
        assert!(s.expirations + s.evictions > 0);
        for (k, _, _) in cache.iter() {
            assert!(now < deadline_of[&k], "iter yielded an expired entry");
        }
    }
}
