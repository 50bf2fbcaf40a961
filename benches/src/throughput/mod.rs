//! Throughput and latency of slabcache and its peers under concurrent load, behind
//! `slabcache-bench throughput`.
//!
//! Every cache holds 16-byte keys and 64-byte values ([`crate::peers::key`],
//! [`crate::peers::value`]) drawn from a universe of key ids larger than the cache (by default
//! a million ids for 100,000 entries), so that the cache has to choose what to keep. Key
//! popularity is either a Zipf law (s = 0.99, the skew of real cache traffic) or uniform.
//! Under Zipf the ranks go through a fixed bijective scramble of the universe, so that the hot
//! keys are scattered ids rather than neighbours, which could share cache lines or hash
//! buckets by accident.
//!
//! Each point (cache × workload × mix × threads) gets a fresh cache, prefilled with twice its
//! capacity of inserts from the workload's own distribution so that it holds the popular keys
//! when measuring starts; a short warm-up runs the mix, then the median of several timed runs
//! is reported in Mops/s (operations of all threads together). Next to the caches:
//!
//! - the floor: the same Zipf lookups on one thread in an unsynchronised `hashbrown` map that
//!   holds every key, copying the value out as slabcache does: what a lookup costs with no
//!   concurrency control and no eviction bookkeeping at all;
//! - latency percentiles of gets and inserts at 2 threads under Zipf 95/5.
//!
//! The worker loop is built so that the harness costs next to nothing next to a cache
//! operation, whose cost is the thing measured:
//!
//! - each thread walks its own precomputed array of key ids (about a million, drawn once per
//!   workload and thread and shared by every cache, so that all see the same keys), read
//!   sequentially, so no random numbers are made while measuring;
//! - whether an operation is a get or an insert depends only on its position in a short block
//!   of operations, looked up in a small table: no division and no branch the predictor
//!   cannot learn, and each block holds exactly the mix's stated proportion;
//! - the shared stop flag is read once per block, not per operation;
//! - a get that misses does nothing more (no insert on a miss), so a read-only mix stays
//!   read-only and a 95/5 mix stays 95/5;
//! - latency runs read the clock around one operation in 32 of each kind only, and are kept
//!   apart from the throughput runs, which never read the clock.

mod config;
pub(crate) mod harness;
mod report;

use config::LATENCY_THREADS;
use harness::{measure_floor, median, percentile, Setup, Streams};

pub use config::{Config, Mix, Op, Workload};
pub use report::{Latency, Point, Report};

/// Measures the floor, every point of `config`, then the latencies; `progress` gets a line
/// per step.
pub fn run(config: &Config, progress: &mut dyn FnMut(&str)) -> Report {
    config.check();
    let mut streams = Streams::new(config);

    progress("floor: hashbrown, zipf read, 1 thread");
    let floor_ns = 1e3 / measure_floor(config, streams.threads(Workload::Zipf, 1));

    let mut results = Vec::new();
    for &workload in &config.workloads {
        for &mix in &config.mixes {
            for &threads in &config.threads {
                for &cache in &config.peers {
                    progress(&format!(
                        "{} {} {} {threads} thread{}",
                        cache.name(),
                        workload.name(),
                        mix.name(),
                        if threads == 1 { "" } else { "s" }
                    ));
                    let point = Setup::new(config, &mut streams, cache, workload, mix, threads);
                    let mops = median(
                        (0..config.runs)
                            .map(|_| point.throughput(config.run_secs))
                            .collect(),
                    );
                    results.push(Point {
                        cache,
                        workload,
                        mix,
                        threads,
                        mops,
                    });
                }
            }
        }
    }

    let mut latency = Vec::new();
    for &cache in &config.peers {
        progress(&format!(
            "{} latency: zipf 95/5 {LATENCY_THREADS} threads",
            cache.name()
        ));
        let point = Setup::new(
            config,
            &mut streams,
            cache,
            Workload::Zipf,
            Mix::Read95,
            LATENCY_THREADS,
        );
        let [gets, inserts] = point.latencies(config.run_secs * config.runs as f64);
        for (op, mut samples) in [(Op::Get, gets), (Op::Insert, inserts)] {
            samples.sort_unstable();
            latency.push(Latency {
                cache,
                op,
                p50_ns: percentile(&samples, 0.5),
                p99_ns: percentile(&samples, 0.99),
                p999_ns: percentile(&samples, 0.999),
            });
        }
    }

    Report {
        config: config.clone(),
        results,
        floor_ns,
        latency,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::Peer;

    #[test]
    fn a_tiny_run_measures_every_point() {
        let config = Config {
            peers: vec![Peer::Slabcache, Peer::QuickCache],
            workloads: Workload::ALL.to_vec(),
            mixes: vec![Mix::Read, Mix::Read95],
            threads: vec![1],
            universe: 5_000,
            capacity: 500,
            runs: 1,
            run_secs: 0.02,
            warmup_secs: 0.005,
        };
        let mut lines = Vec::new();
        let report = run(&config, &mut |line| lines.push(line.to_string()));
        assert_eq!(report.results.len(), 2 * 2 * 2);
        assert!(report.results.iter().all(|p| p.mops > 0.0), "{report:?}");
        assert!(report.floor_ns > 0.0 && report.floor_ns.is_finite());
        assert_eq!(report.latency.len(), 2 * 2);
        assert!(report
            .latency
            .iter()
            .all(|l| l.p50_ns <= l.p99_ns && l.p99_ns <= l.p999_ns && l.p999_ns > 0));
        assert!(report
            .ratio_to_best_peer(Workload::Zipf, Mix::Read, 1)
            .is_some());
        assert!(lines.contains(&"quick_cache zipf 95/5 1 thread".to_string()));
        assert_eq!(lines.len(), 1 + 8 + 2);
    }
}
