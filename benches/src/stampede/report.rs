//! What a stampede run found, and its renderings: Markdown and JSON.

use std::fmt::Write as _;

use super::{Config, Strategy};
use crate::text::json_string;

/// One strategy at one thread count.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// How the readers kept the key cached.
    pub strategy: Strategy,
    /// Threads reading the key.
    pub threads: usize,
    /// How long the run lasted, in seconds.
    pub secs: f64,
    /// Loads that reached the source.
    pub loads: u64,
    /// Reads of all threads together.
    pub reads: u64,
    /// Reads that found no value, fresh or stale, and waited for a load (their own or
    /// another reader's), as the cache counts them.
    pub misses: u64,
    /// Median read latency, in nanoseconds (two clock reads included).
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// The slowest read.
    pub max_ns: u64,
}

impl Row {
    /// Loads that reached the source, per second.
    pub fn loads_per_sec(&self) -> f64 {
        self.loads as f64 / self.secs
    }

    /// Loads per expiry of the key: per `ttl` of the run.
    pub fn loads_per_expiry(&self, ttl_secs: f64) -> f64 {
        self.loads as f64 / (self.secs / ttl_secs)
    }

    /// Millions of reads per second, all threads together.
    pub fn mreads_per_sec(&self) -> f64 {
        self.reads as f64 / self.secs / 1e6
    }

    /// Reads per second that missed and waited for a load.
    pub fn misses_per_sec(&self) -> f64 {
        self.misses as f64 / self.secs
    }
}

/// Nanoseconds per hit of a resident key on one thread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HitCost {
    /// `Cache::get` (median of the runs).
    pub get_ns: f64,
    /// `Cache::get_or_load` (median of the runs).
    pub get_or_load_ns: f64,
}

impl HitCost {
    /// `get_or_load`'s cost as a multiple of `get`'s.
    pub fn ratio(&self) -> f64 {
        self.get_or_load_ns / self.get_ns
    }
}

/// The outcome of [`run`](super::run).
#[derive(Debug, Clone)]
pub struct Report {
    /// The settings the run used.
    pub config: Config,
    /// For each thread count, each strategy in [`Strategy::ALL`] order.
    pub rows: Vec<Row>,
    /// What a `get_or_load` hit costs next to a `get` hit.
    pub hit_cost: HitCost,
}

impl Report {
    /// The row of `strategy` at `threads`, if it was measured.
    pub fn row(&self, strategy: Strategy, threads: usize) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.strategy == strategy && r.threads == threads)
    }

    fn ttl_secs(&self) -> f64 {
        self.config.ttl.as_secs_f64()
    }

    /// A table with a row per strategy and thread count, then the hit cost.
    pub fn markdown(&self) -> String {
        let c = &self.config;
        let mut out = format!(
            "One hot key with a TTL of {} ms, read in a loop by every thread, over a source \
             that takes {} ms per load; {} s per strategy. Every read timed (two clock reads \
             included), one in 32 kept for the percentiles; misses are reads that found no value, \
             fresh or stale, and waited for a load. Stale-while-revalidate's window: {} s.\n\n\
             | strategy | threads | loads/s | loads/expiry | Mreads/s | misses/s | \
             p50 ns | p99 ns | p99.9 ns | max ns |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
            c.ttl.as_millis(),
            c.load_time.as_secs_f64() * 1e3,
            c.run_secs,
            c.stale_window.as_secs_f64()
        );
        for r in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} | {:.2} | {:.2} | {:.1} | {} | {} | {} | {} |",
                r.strategy.name(),
                r.threads,
                r.loads_per_sec(),
                r.loads_per_expiry(self.ttl_secs()),
                r.mreads_per_sec(),
                r.misses_per_sec(),
                r.p50_ns,
                r.p99_ns,
                r.p999_ns,
                r.max_ns
            );
        }
        let h = &self.hit_cost;
        let _ = writeln!(
            out,
            "\nA hit of one resident key on one thread (median of {} runs of {}): get {:.1} ns, \
             get_or_load {:.1} ns, {:.2}x.",
            c.hit_runs,
            c.hit_iterations,
            h.get_ns,
            h.get_or_load_ns,
            h.ratio()
        );
        out
    }

    /// `{"ttl_ms","load_ms","results":[{"strategy","threads","seconds","loads",
    /// "loads_per_sec","loads_per_expiry","reads_per_sec","misses","p50_ns","p99_ns",
    /// "p999_ns","max_ns"}, …],"hit_cost":{"get_ns","get_or_load_ns","ratio"}}`.
    pub fn json(&self) -> String {
        let mut out = format!(
            "{{\"ttl_ms\":{},\"load_ms\":{},\"results\":[",
            self.config.ttl.as_secs_f64() * 1e3,
            self.config.load_time.as_secs_f64() * 1e3
        );
        for (i, r) in self.rows.iter().enumerate() {
            let _ = write!(
                out,
                "{}\n  {{\"strategy\":{},\"threads\":{},\"seconds\":{:.3},\"loads\":{},\
                 \"loads_per_sec\":{:.2},\"loads_per_expiry\":{:.3},\"reads_per_sec\":{:.0},\
                 \"misses\":{},\"p50_ns\":{},\"p99_ns\":{},\"p999_ns\":{},\"max_ns\":{}}}",
                if i == 0 { "" } else { "," },
                json_string(r.strategy.name()),
                r.threads,
                r.secs,
                r.loads,
                r.loads_per_sec(),
                r.loads_per_expiry(self.ttl_secs()),
                r.reads as f64 / r.secs,
                r.misses,
                r.p50_ns,
                r.p99_ns,
                r.p999_ns,
                r.max_ns
            );
        }
        let h = &self.hit_cost;
        let _ = writeln!(
            out,
            "\n],\"hit_cost\":{{\"get_ns\":{:.2},\"get_or_load_ns\":{:.2},\"ratio\":{:.3}}}}}",
            h.get_ns,
            h.get_or_load_ns,
            h.ratio()
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_report() -> Report {
        let row = |strategy, loads| Row {
            strategy,
            threads: 2,
            secs: 2.0,
            loads,
            reads: 10_000_000,
            misses: 2 * loads,
            p50_ns: 80,
            p99_ns: 200,
            p999_ns: 900,
            max_ns: 1_200_000,
        };
        Report {
            config: Config::standard(),
            rows: vec![
                row(Strategy::CacheAside, 40),
                row(Strategy::StaleWhileRevalidate, 20),
            ],
            hit_cost: HitCost {
                get_ns: 40.0,
                get_or_load_ns: 42.0,
            },
        }
    }

    #[test]
    fn rates_are_per_second_and_per_expiry() {
        let report = sample_report();
        let row = report.row(Strategy::CacheAside, 2).unwrap();
        assert_eq!(row.loads_per_sec(), 20.0);
        assert!((row.loads_per_expiry(0.1) - 2.0).abs() < 1e-9);
        assert_eq!(row.mreads_per_sec(), 5.0);
        assert_eq!(row.misses_per_sec(), 40.0);
        assert!(report.row(Strategy::CacheAside, 4).is_none());
        assert_eq!(report.hit_cost.ratio(), 1.05);
    }

    #[test]
    fn markdown_has_a_row_per_strategy_and_the_hit_cost() {
        let text = sample_report().markdown();
        assert!(text.contains("TTL of 100 ms") && text.contains("takes 1 ms per load"));
        assert!(text.contains(
            "| cache-aside | 2 | 20.0 | 2.00 | 5.00 | 40.0 | 80 | 200 | 900 | 1200000 |"
        ));
        assert!(text.contains("| backed swr | 2 | 10.0 | 1.00 |"));
        assert!(text.contains("get 40.0 ns, get_or_load 42.0 ns, 1.05x."));
    }

    #[test]
    fn json_has_exactly_the_documented_keys() {
        let mut report = sample_report();
        report.rows.truncate(1);
        assert_eq!(
            report.json(),
            "{\"ttl_ms\":100,\"load_ms\":1,\"results\":[\n  \
             {\"strategy\":\"cache-aside\",\"threads\":2,\"seconds\":2.000,\"loads\":40,\
             \"loads_per_sec\":20.00,\"loads_per_expiry\":2.000,\"reads_per_sec\":5000000,\
             \"misses\":80,\"p50_ns\":80,\"p99_ns\":200,\"p999_ns\":900,\"max_ns\":1200000}\n\
             ],\"hit_cost\":{\"get_ns\":40.00,\"get_or_load_ns\":42.00,\"ratio\":1.050}}\n"
        );
    }
}
