//! The demo workload: a few seconds of cache-shaped traffic from several threads.
//!
//! Key popularity follows a Zipf law over a key space several times larger than the cache, as
//! web and database caches see it: a few keys are very hot, most are cold, and the cache has
//! to choose what to keep. Each thread loops over a mix of
//!
//! - reads (`get_into` into a reused buffer); on a miss the thread fills the key
//!   (cache-aside), as an application would after loading from its database;
//! - writes (`insert_with_ttl`); a quarter of the keys behave like sessions and always carry a
//!   TTL of 0.2–1.2 s, so entries expire during the run;
//! - removes (invalidations);
//! - increments of a few shared counters with `compare_and_swap`, retried on conflict.
//!
//! Every value records the key it was written for, and every hit is checked against its key,
//! so a torn or misdirected read would show up as a mismatch. At the end the counters are
//! summed and compared with the increments the threads made.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use slabcache::{Cache, Error, Stats};

use crate::rng::{mix64, Rng};
use crate::zipf::Zipf;

/// Percent of operations that are reads, writes and removes; the rest are CAS increments.
const READ_PCT: u64 = 78;
const WRITE_PCT: u64 = 15;
const REMOVE_PCT: u64 = 2;

/// Shortest and longest value, before the per-key jitter of up to 31 bytes.
const MIN_VALUE: usize = 32;
const VALUE_SIZE_STEPS: u64 = 5; // 32, 64, 128, 256, 512
const MAX_VALUE: usize = (MIN_VALUE << (VALUE_SIZE_STEPS - 1)) + 31;

/// How the demo runs.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Worker threads.
    pub threads: usize,
    /// How long the workload runs.
    pub duration: Duration,
    /// The cache's `max_bytes`.
    pub max_bytes: u64,
    /// Distinct keys the workload draws from.
    pub key_space: u64,
    /// Zipf exponent of key popularity (0.99 is a common model of web traffic).
    pub zipf_exponent: f64,
    /// Shared counters incremented with `compare_and_swap`.
    pub counters: u64,
    /// Seed of the workload's random streams.
    pub seed: u64,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            threads: 2,
            duration: Duration::from_secs(2),
            max_bytes: 64 << 20,
            key_space: 4_000_000,
            zipf_exponent: 0.99,
            counters: 8,
            seed: 0x5eed_cafe,
        }
    }
}

/// What the worker threads did, counted on the client side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// Every call into the cache API.
    pub calls: u64,
    /// Reads made (`get_into`).
    pub reads: u64,
    /// Reads that found the key.
    pub read_hits: u64,
    /// Reads that found nothing.
    pub read_misses: u64,
    /// Inserts after a read miss.
    pub fills: u64,
    /// Inserts not prompted by a miss.
    pub writes: u64,
    /// Fills and writes that carried a TTL.
    pub ttl_writes: u64,
    /// Removals made.
    pub removes: u64,
    /// Counter increments that succeeded.
    pub increments: u64,
    /// Increment attempts that lost a race (version mismatch) and were retried.
    pub cas_conflicts: u64,
    /// Hits whose value did not belong to the key read: must be 0.
    pub bad_values: u64,
    /// Calls that returned an error the workload never provokes: must be 0.
    pub errors: u64,
}

impl OpCounts {
    fn merge(&mut self, o: &OpCounts) {
        self.calls += o.calls;
        self.reads += o.reads;
        self.read_hits += o.read_hits;
        self.read_misses += o.read_misses;
        self.fills += o.fills;
        self.writes += o.writes;
        self.ttl_writes += o.ttl_writes;
        self.removes += o.removes;
        self.increments += o.increments;
        self.cas_conflicts += o.cas_conflicts;
        self.bad_values += o.bad_values;
        self.errors += o.errors;
    }
}

/// The outcome of a demo run.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// The settings the run used.
    pub config: DemoConfig,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// What the worker threads did.
    pub ops: OpCounts,
    /// The cache's own counters at the end.
    pub stats: Stats,
    /// Sum of the counters' final values, and how many counters were missing at the end.
    pub counter_sum: u64,
    /// Counters absent from the cache at the end (evicted or expired).
    pub counters_missing: u64,
    /// The first unexpected error, if any.
    pub first_error: Option<String>,
}

/// Builds the demo's cache.
pub fn build_cache(config: &DemoConfig) -> Result<Cache, Error> {
    Cache::builder()
        .max_bytes(config.max_bytes)
        // Values stay under 4 KiB, which keeps pages at 128 KiB: many pages to share
        // between size classes.
        .max_value_bytes(4096)
        .ttl_jitter(0.1)
        .build()
}

/// Runs the workload against a fresh cache and reports what happened.
pub fn run(config: &DemoConfig) -> Result<DemoReport, Error> {
    assert!(config.threads >= 1, "the demo needs at least one thread");
    assert!(config.counters >= 1, "the demo needs at least one counter");
    let cache = build_cache(config)?;
    let zipf = Zipf::new(config.key_space, config.zipf_exponent);
    let stop = AtomicBool::new(false);
    let start = Barrier::new(config.threads + 1);

    let (elapsed, results) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..config.threads)
            .map(|t| {
                let (cache, zipf, stop, start) = (&cache, &zipf, &stop, &start);
                let seed = config.seed ^ mix64(t as u64 + 1);
                scope.spawn(move || {
                    start.wait();
                    worker(cache, zipf, config.counters, seed, stop)
                })
            })
            .collect();
        start.wait();
        let began = Instant::now();
        std::thread::sleep(config.duration);
        stop.store(true, Ordering::Relaxed);
        let results: Vec<_> = workers
            .into_iter()
            .map(|w| w.join().expect("a demo worker panicked"))
            .collect();
        (began.elapsed(), results)
    });

    let mut ops = OpCounts::default();
    let mut first_error = None;
    for (counts, error) in &results {
        ops.merge(counts);
        if first_error.is_none() {
            first_error.clone_from(error);
        }
    }

    let mut counter_sum = 0;
    let mut counters_missing = 0;
    for c in 0..config.counters {
        let mut key = [0u8; 16];
        match cache.get(counter_key(c, &mut key)) {
            Some(v) => counter_sum += decode_counter(&v),
            None => counters_missing += 1,
        }
    }

    Ok(DemoReport {
        config: config.clone(),
        elapsed,
        ops,
        stats: cache.stats(),
        counter_sum,
        counters_missing,
        first_error,
    })
}

/// One worker's loop; returns its counts and its first unexpected error.
fn worker(
    cache: &Cache,
    zipf: &Zipf,
    counters: u64,
    seed: u64,
    stop: &AtomicBool,
) -> (OpCounts, Option<String>) {
    let mut rng = Rng::new(seed);
    let mut n = OpCounts::default();
    let mut first_error: Option<String> = None;
    let mut key = [0u8; 16];
    let mut read_buf = Vec::with_capacity(MAX_VALUE);
    let mut value = vec![0xA5u8; MAX_VALUE];
    let mut writes_made = 0u64;
    let mut error = |e: Error, n: &mut OpCounts| {
        n.errors += 1;
        first_error.get_or_insert_with(|| e.to_string());
    };

    loop {
        for _ in 0..64 {
            let roll = rng.below(100);
            if roll < READ_PCT + WRITE_PCT + REMOVE_PCT {
                let rank = zipf.sample(&mut rng);
                let key = user_key(rank, &mut key);
                n.calls += 1;
                if roll < READ_PCT {
                    n.reads += 1;
                    if cache.get_into(key, &mut read_buf).is_some() {
                        n.read_hits += 1;
                        if !value_belongs_to(&read_buf, rank) {
                            n.bad_values += 1;
                        }
                        continue;
                    }
                    n.read_misses += 1;
                    n.fills += 1;
                } else if roll < READ_PCT + WRITE_PCT {
                    n.writes += 1;
                } else {
                    n.removes += 1;
                    cache.remove(key);
                    continue;
                }
                // A fill after a miss, or a plain write.
                writes_made += 1;
                let ttl = session_ttl(rank, &mut rng);
                n.ttl_writes += ttl.is_some() as u64;
                n.calls += (roll < READ_PCT) as u64; // the fill is a second call
                let v = fill_value(&mut value, rank, writes_made);
                if let Err(e) = cache.insert_with_ttl(key, v, ttl) {
                    error(e, &mut n);
                }
            } else {
                let c = rng.below(counters);
                increment(
                    cache,
                    counter_key(c, &mut key),
                    &mut read_buf,
                    &mut n,
                    &mut error,
                );
            }
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    (n, first_error)
}

/// Adds one to a shared counter: read it with its version, write the successor only if the
/// version is unchanged, retry on a lost race.
fn increment(
    cache: &Cache,
    key: &[u8],
    buf: &mut Vec<u8>,
    n: &mut OpCounts,
    error: &mut impl FnMut(Error, &mut OpCounts),
) {
    loop {
        n.calls += 2;
        let outcome = match cache.get_into(key, buf) {
            Some(version) => {
                let next = decode_counter(buf) + 1;
                cache
                    .compare_and_swap(key, version, &next.to_le_bytes())
                    .map(drop)
            }
            None => cache.insert_if_absent(key, &1u64.to_le_bytes()).map(drop),
        };
        match outcome {
            Ok(()) => {
                n.increments += 1;
                return;
            }
            // Another thread wrote (or created, or dropped) the counter since we read it.
            Err(Error::VersionMismatch { .. } | Error::Exists | Error::NotFound) => {
                n.cas_conflicts += 1;
            }
            Err(e) => {
                error(e, n);
                return;
            }
        }
    }
}

/// `user:` and the rank in 11 digits: 16 bytes.
fn user_key(rank: u64, buf: &mut [u8; 16]) -> &[u8] {
    buf[..5].copy_from_slice(b"user:");
    write_digits(rank, &mut buf[5..]);
    &buf[..]
}

/// `counter:` and the counter's number in 8 digits: 16 bytes.
fn counter_key(c: u64, buf: &mut [u8; 16]) -> &[u8] {
    buf[..8].copy_from_slice(b"counter:");
    write_digits(c, &mut buf[8..]);
    &buf[..]
}

/// Writes `x` in decimal, zero-padded to fill `out` (higher digits are dropped).
fn write_digits(mut x: u64, out: &mut [u8]) {
    for d in out.iter_mut().rev() {
        *d = b'0' + (x % 10) as u8;
        x /= 10;
    }
}

fn decode_counter(v: &[u8]) -> u64 {
    v.try_into().map(u64::from_le_bytes).unwrap_or(0)
}

/// Each key's value length is fixed by the key: 32 to 543 bytes, spread over several size
/// classes with more small values than large ones in bytes-per-class terms.
fn value_len(rank: u64) -> usize {
    let h = mix64(rank);
    (MIN_VALUE << (h % VALUE_SIZE_STEPS)) + (h >> 32) as usize % 32
}

/// Fills `buf` with a value for `rank`: the rank in the first 8 bytes, a write serial in the
/// next 8, and a tag derived from the rank in the last byte.
fn fill_value(buf: &mut [u8], rank: u64, serial: u64) -> &[u8] {
    let len = value_len(rank);
    buf[..8].copy_from_slice(&rank.to_le_bytes());
    buf[8..16].copy_from_slice(&serial.to_le_bytes());
    buf[len - 1] = tail_tag(rank);
    &buf[..len]
}

fn value_belongs_to(v: &[u8], rank: u64) -> bool {
    v.len() == value_len(rank) && v[..8] == rank.to_le_bytes() && v[v.len() - 1] == tail_tag(rank)
}

fn tail_tag(rank: u64) -> u8 {
    (mix64(!rank) >> 56) as u8
}

/// A quarter of the keys are sessions, written with a TTL of 0.2 to 1.2 s.
fn session_ttl(rank: u64, rng: &mut Rng) -> Option<Duration> {
    (rank % 4 == 0).then(|| Duration::from_millis(200 + rng.below(1000)))
}

impl DemoReport {
    /// The report as a printable table.
    pub fn render(&self) -> String {
        let c = &self.config;
        let o = &self.ops;
        let s = &self.stats;
        let secs = self.elapsed.as_secs_f64();
        let per_sec = |x: u64| format!("{:>10.3} M/s", x as f64 / secs / 1e6);
        let mut t = Table::default();

        t.title(&format!(
            "slabcache demo: {} thread{}, {:.2} s, {} cache, {} keys (Zipf s = {}), values {}-{} B",
            c.threads,
            if c.threads == 1 { "" } else { "s" },
            secs,
            bytes(c.max_bytes),
            group(c.key_space),
            c.zipf_exponent,
            MIN_VALUE,
            MAX_VALUE,
        ));
        t.head("workload (client side)", "count", "rate");
        t.row("cache calls", group(o.calls), per_sec(o.calls));
        t.row("  reads (get_into)", group(o.reads), per_sec(o.reads));
        t.row("    hits", group(o.read_hits), String::new());
        t.row("    misses", group(o.read_misses), String::new());
        t.row(
            "  fills after a miss (insert)",
            group(o.fills),
            per_sec(o.fills),
        );
        t.row("  writes (insert)", group(o.writes), per_sec(o.writes));
        t.row(
            "  fills + writes with a TTL",
            group(o.ttl_writes),
            String::new(),
        );
        t.row("  removes", group(o.removes), per_sec(o.removes));
        t.row(
            "  counter increments (CAS)",
            group(o.increments),
            per_sec(o.increments),
        );
        t.row(
            "  CAS conflicts, retried",
            group(o.cas_conflicts),
            String::new(),
        );
        t.row(
            "throughput",
            format!("{:.2} Mops/s", o.calls as f64 / secs / 1e6),
            String::new(),
        );
        t.row(
            "hit ratio of reads",
            percent(o.read_hits, o.reads),
            String::new(),
        );

        t.head("cache.stats()", "value", "");
        t.row("hits", group(s.hits), String::new());
        t.row("misses", group(s.misses), String::new());
        t.row(
            "hit_ratio()",
            format!("{:.2} %", s.hit_ratio() * 100.0),
            String::new(),
        );
        t.row("inserts", group(s.inserts), String::new());
        t.row("updates", group(s.updates), String::new());
        t.row("removals", group(s.removals), String::new());
        t.row("evictions", group(s.evictions), String::new());
        t.row("expirations", group(s.expirations), String::new());
        t.row("cas_failures", group(s.cas_failures), String::new());
        t.row("entries", group(s.entries), String::new());
        t.row(
            "payload_bytes",
            group(s.payload_bytes),
            bytes(s.payload_bytes),
        );
        t.row(
            "arena_bytes_used",
            group(s.arena_bytes_used),
            bytes(s.arena_bytes_used),
        );
        t.row("max_bytes", group(s.max_bytes), bytes(s.max_bytes));
        t.row(
            "fixed_overhead_bytes",
            group(s.fixed_overhead_bytes),
            bytes(s.fixed_overhead_bytes),
        );

        t.head("checks", "result", "");
        t.row(
            "hits with a value of another key",
            group(o.bad_values),
            ok(o.bad_values == 0),
        );
        t.row("unexpected errors", group(o.errors), ok(o.errors == 0));
        let counters_ok = self.counter_sum == o.increments;
        t.row(
            "sum of counters in the cache",
            group(self.counter_sum),
            String::new(),
        );
        t.row(
            "  = increments made",
            group(o.increments),
            if counters_ok {
                ok(true)
            } else if self.counters_missing > 0 {
                format!("{} counter(s) evicted", self.counters_missing)
            } else {
                ok(false)
            },
        );
        let mut out = t.finish();
        if let Some(e) = &self.first_error {
            out.push_str(&format!("first unexpected error: {e}\n"));
        }
        out
    }

    /// Whether the run showed no wrong value, no unexpected error and no lost increment.
    pub fn checks_passed(&self) -> bool {
        self.ops.bad_values == 0
            && self.ops.errors == 0
            && (self.counter_sum == self.ops.increments || self.counters_missing > 0)
    }
}

/// A three-column text table: label, right-aligned value, right-aligned note.
#[derive(Default)]
struct Table {
    out: String,
}

impl Table {
    const LABEL: usize = 34;
    const VALUE: usize = 16;
    const NOTE: usize = 16;

    fn title(&mut self, title: &str) {
        self.out.push_str(title);
        self.out.push('\n');
    }

    fn head(&mut self, label: &str, value: &str, note: &str) {
        let width = Self::LABEL + Self::VALUE + Self::NOTE + 2;
        self.out.push('\n');
        self.line(label, value, note);
        self.out.push_str(&"-".repeat(width));
        self.out.push('\n');
    }

    fn row(&mut self, label: &str, value: String, note: String) {
        self.line(label, &value, &note);
    }

    fn line(&mut self, label: &str, value: &str, note: &str) {
        let line = format!(
            "{label:<lw$} {value:>vw$} {note:>nw$}",
            lw = Self::LABEL,
            vw = Self::VALUE,
            nw = Self::NOTE
        );
        self.out.push_str(line.trim_end());
        self.out.push('\n');
    }

    fn finish(self) -> String {
        self.out
    }
}

/// `1234567` as `1,234,567`.
fn group(x: u64) -> String {
    let digits = x.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn bytes(x: u64) -> String {
    if x >= 1 << 20 {
        format!("{:.1} MiB", x as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.1} KiB", x as f64 / 1024.0)
    }
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".to_string()
    } else {
        format!("{:.2} %", part as f64 * 100.0 / whole as f64)
    }
}

fn ok(good: bool) -> String {
    if good { "ok" } else { "FAILED" }.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_16_bytes() {
        let mut buf = [0u8; 16];
        assert_eq!(user_key(42, &mut buf), b"user:00000000042");
        assert_eq!(counter_key(7, &mut buf), b"counter:00000007");
    }

    #[test]
    fn values_identify_their_key() {
        let mut buf = vec![0u8; MAX_VALUE];
        for rank in 1..2000 {
            let len = value_len(rank);
            assert!((MIN_VALUE..=MAX_VALUE).contains(&len));
            let v = fill_value(&mut buf, rank, 9).to_vec();
            assert!(value_belongs_to(&v, rank));
            assert!(!value_belongs_to(&v, rank + 1));
        }
    }

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1234567), "1,234,567");
    }
}
