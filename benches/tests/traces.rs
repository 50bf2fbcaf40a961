//! Trace replay on the real traces kept in `benches/traces/` (see its README): the readers
//! and the LRU must reproduce the published LRU figures, and slabcache must reach its
//! targets. Runs without the shared trace collection.

use std::path::PathBuf;

use slabcache_bench::traces::format::Format;
use slabcache_bench::traces::replay::{replay, PolicyKind};
use slabcache_bench::traces::Trace;

fn load(file: &str, format: Format) -> Trace {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "traces", file]
        .iter()
        .collect();
    Trace::load(&path, format).unwrap_or_else(|e| panic!("{e}"))
}

/// The hit ratio in percent.
fn hit_ratio(trace: &Trace, capacity: usize, policy: PolicyKind) -> f64 {
    let hits = replay(trace, capacity, policy, |_| {}).unwrap_or_else(|e| panic!("{e}"));
    100.0 * hits as f64 / trace.keys().len() as f64
}

#[test]
fn lru_reproduces_the_published_lru_figures() {
    // Printed to the hundredth, as the references are.
    let oltp = load("OLTP.lis.gz", Format::Arc);
    assert_eq!(oltp.keys().len(), 914_145);
    let lru = hit_ratio(&oltp, 1_000, PolicyKind::Lru);
    assert_eq!(format!("{lru:.2}"), "32.83");

    let glimpse = load("gli.trace.gz", Format::Lirs);
    assert_eq!(glimpse.keys().len(), 6_015);
    let lru = hit_ratio(&glimpse, 1_000, PolicyKind::Lru);
    assert_eq!(format!("{lru:.2}"), "11.21");
}

#[test]
fn slabcache_reaches_45_percent_on_glimpse_at_1000() {
    let glimpse = load("gli.trace.gz", Format::Lirs);
    let ratio = hit_ratio(&glimpse, 1_000, PolicyKind::Slabcache);
    assert!(ratio >= 45.0, "glimpse at 1,000 entries: {ratio:.2}% < 45%");
}

#[test]
fn slabcache_reaches_20_percent_on_cs_at_400() {
    let cs = load("cs.trace.gz", Format::Lirs);
    let ratio = hit_ratio(&cs, 400, PolicyKind::Slabcache);
    assert!(ratio >= 20.0, "cs at 400 entries: {ratio:.2}% < 20%");
}

/// `--runs`: slabcache, whose hash seed is random, is replayed that many times and reported by
/// its median run with the lowest and highest; the others, replayed once, have no spread.
#[test]
fn repeated_runs_report_the_median_and_the_spread_of_slabcache_alone() {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "traces", "gli.trace.gz"]
        .iter()
        .collect();
    let config = slabcache_bench::traces::Config {
        format: Format::Lirs,
        capacities: vec![250],
        files: vec![path],
        runs: 5,
    };
    let results = slabcache_bench::traces::run(&config).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(results.len(), PolicyKind::ALL.len());
    for m in &results {
        assert!(m.hits_min <= m.hits && m.hits <= m.hits_max, "{m:?}");
        if m.policy == PolicyKind::Slabcache {
            assert_eq!(m.runs, 5);
        } else {
            assert_eq!(
                (m.runs, m.hits_min, m.hits_max),
                (1, m.hits, m.hits),
                "{m:?}"
            );
        }
    }
    let table = slabcache_bench::traces::report::markdown(&results);
    assert!(table.contains("the median of 5 runs"), "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with("| gli.trace.gz"))
        .unwrap();
    let slabcache_cell = row.split('|').nth(3).unwrap();
    assert!(
        slabcache_cell.contains('[') && slabcache_cell.contains('-'),
        "{row}"
    );
    let lru_cell = row.split('|').nth(6).unwrap();
    assert!(!lru_cell.contains('['), "{row}");
}
