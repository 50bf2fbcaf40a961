//! `slabcache-bench showdown`: slabcache next to its peers on throughput, memory, hit ratio
//! and a cache stampede, measured in one run on this machine and printed as one report.
//!
//! It runs the quick throughput set ([`throughput::Config::quick`]), the memory measurement
//! (each cache in a child process), the hit ratio on three small recorded traces shipped in
//! `benches/traces/` (glimpse, multi1 and OLTP) and a short stampede
//! ([`stampede::Config::quick`], a few seconds), then opens the report with a summary: for
//! each headline figure, slabcache's value, the best peer's, and their ratio. Everything is measured
//! here and now, never copied from an earlier run, so the ratios hold for this machine.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::memory;
use crate::python;
use crate::stampede::{self, Strategy};
use crate::throughput::{self, Mix, Workload};
use crate::traces::{self, format::Format, replay::PolicyKind, report, Measurement};

/// The traces the showdown replays, all in `benches/traces/`, with their capacities.
const TRACES: [(&str, Format, &[usize]); 3] = [
    ("gli.trace.gz", Format::Lirs, &[250, 500, 1000, 2000]),
    ("multi1.trace.gz", Format::Lirs, &[250, 500, 1000, 2000]),
    ("OLTP.lis.gz", Format::Arc, &[500, 1000, 2000, 5000]),
];
/// Threads of the summary's throughput figures (the quick set measures 1 and 2).
const SUMMARY_THREADS: usize = 2;

/// What the showdown measures.
pub struct Config {
    /// This executable, re-run as the memory measurement's child.
    pub exe: PathBuf,
    /// Where the shipped traces are.
    pub traces_dir: PathBuf,
    /// The throughput part.
    pub throughput: throughput::Config,
    /// Entries each cache is filled with in the memory part.
    pub memory_entries: u64,
    /// The stampede part.
    pub stampede: stampede::Config,
}

impl Config {
    /// The showdown as the README runs it.
    pub fn standard(exe: PathBuf) -> Config {
        Config {
            exe,
            traces_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("traces"),
            throughput: throughput::Config::quick(),
            memory_entries: memory::DEFAULT_ENTRIES,
            stampede: stampede::Config::quick(),
        }
    }
}

/// The outcome of the showdown: its four parts.
pub struct Report {
    /// Throughput of every cache.
    pub throughput: throughput::Report,
    /// Resident memory of every cache.
    pub memory: memory::Report,
    /// Hit ratios over the shipped traces.
    pub hit_ratio: Vec<Measurement>,
    /// A hot key expiring under load, with each caching strategy.
    pub stampede: stampede::Report,
    /// The Python module's get hit next to the Python caches, or why it was not measured.
    pub python: Result<python::GetHit, String>,
}

/// Runs the four parts in turn; `progress` hears of each step.
pub fn run(config: &Config, progress: &mut dyn FnMut(&str)) -> Result<Report, String> {
    progress("throughput (quick set)");
    let throughput = throughput::run(&config.throughput, progress);
    progress("memory");
    let memory = memory::run(&config.exe, config.memory_entries, progress)?;
    let mut hit_ratio = Vec::new();
    for (file, format, capacities) in TRACES {
        progress(&format!("hit ratio: {file}"));
        let trace_config = traces::Config {
            format,
            capacities: capacities.to_vec(),
            files: vec![config.traces_dir.join(file)],
            runs: 1,
        };
        hit_ratio.extend(traces::run(&trace_config).map_err(|e| e.to_string())?);
    }
    let stampede = stampede::run(&config.stampede, progress);
    progress("Python get hit (if the module is installed)");
    let python = python::measure(&repository_root());
    Ok(Report {
        throughput,
        memory,
        hit_ratio,
        stampede,
        python,
    })
}

/// One summary row: what is compared, slabcache's figure, the best peer's, and the ratio in
/// the direction where above 1 means slabcache is better.
struct Headline {
    what: String,
    ours: String,
    best: String,
    ratio: Option<f64>,
}

impl Report {
    /// The whole report as Markdown: the summary first, then each part's tables.
    pub fn markdown(&self) -> String {
        let mut out = String::from("# slabcache showdown\n\n");
        let _ = writeln!(out, "Machine: {}.\n", machine());
        out.push_str(
            "## Summary\n\nRatio: slabcache against the best peer on each line; above 1 \
             means slabcache is ahead, and the figures that fall short are marked.\n\n",
        );
        out.push_str("| measure | slabcache | best peer | ratio |\n|---|---:|---:|---:|\n");
        for row in self.headlines() {
            let ratio = match row.ratio {
                Some(r) if r >= 1.0 => format!("**{r:.2}x**"),
                Some(r) => format!("{r:.2}x (behind)"),
                None => "-".to_string(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {ratio} |",
                row.what, row.ours, row.best
            );
        }
        if let Err(why) = &self.python {
            let _ = writeln!(out, "\nPython: not measured: {why}.");
        }
        out.push_str("\n## Throughput\n\n");
        out.push_str(&self.throughput.markdown());
        out.push_str("\n## Memory\n\n");
        out.push_str(&self.memory.markdown());
        out.push_str("\n## Hit ratio\n\n");
        out.push_str(&report::markdown(&self.hit_ratio));
        out.push_str("\n## Stampede\n\n");
        out.push_str(&self.stampede.markdown());
        out
    }

    /// `{"throughput":…,"memory":…,"hit_ratio":…,"stampede":…}`, each part in its own
    /// subcommand's JSON.
    pub fn json(&self) -> String {
        format!(
            "{{\"throughput\":{},\"memory\":{},\"hit_ratio\":{},\"stampede\":{}}}\n",
            self.throughput.json().trim_end(),
            self.memory.json().trim_end(),
            report::json(&self.hit_ratio).trim_end(),
            self.stampede.json().trim_end()
        )
    }

    fn headlines(&self) -> Vec<Headline> {
        let mut rows = Vec::new();
        for mix in Mix::ALL {
            let ours = self.throughput.mops(
                crate::peers::Peer::Slabcache,
                Workload::Zipf,
                mix,
                SUMMARY_THREADS,
            );
            let ratio = self
                .throughput
                .ratio_to_best_peer(Workload::Zipf, mix, SUMMARY_THREADS);
            rows.push(Headline {
                what: format!(
                    "throughput, Zipf {}, {SUMMARY_THREADS} threads (Mops/s)",
                    mix.name()
                ),
                ours: ours.map_or("-".into(), |v| format!("{v:.2}")),
                best: self
                    .throughput
                    .best_peer_mops(Workload::Zipf, mix, SUMMARY_THREADS)
                    .map_or("-".into(), |v| format!("{v:.2}")),
                ratio,
            });
        }
        if let (Some(ns), Some(multiple)) = (
            self.throughput.slabcache_get_ns(),
            self.throughput.floor_multiple(),
        ) {
            rows.push(Headline {
                what: "get, 1 thread, vs an unsynchronised hashbrown map (ns)".into(),
                ours: format!("{ns:.1}"),
                best: format!("{:.1}", self.throughput.floor_ns),
                ratio: Some(1.0 / multiple),
            });
        }
        if let (Some(ours), Some(best)) =
            (self.memory.slabcache_overhead(), self.memory.best_peer())
        {
            rows.push(Headline {
                what: format!(
                    "memory overhead per entry (bytes; best peer {})",
                    best.peer.name()
                ),
                ours: format!("{ours:.1}"),
                best: format!("{:.1}", best.overhead_per_entry()),
                ratio: Some(best.overhead_per_entry() / ours),
            });
        }
        if let Some((ours, best_name, best)) = mean_gaps(&self.hit_ratio) {
            rows.push(Headline {
                what: format!(
                    "hit ratio, mean distance to OPT over {} runs (points; best peer {best_name})",
                    self.hit_ratio
                        .iter()
                        .filter(|m| m.policy == PolicyKind::Opt)
                        .count()
                ),
                ours: format!("{ours:.2}"),
                best: format!("{best:.2}"),
                ratio: Some(best / ours),
            });
        }
        let stampede = |strategy| self.stampede.row(strategy, SUMMARY_THREADS);
        if let (Some(ours), Some(moka)) = (
            stampede(Strategy::StaleWhileRevalidate),
            stampede(Strategy::MokaGetWith),
        ) {
            rows.push(Headline {
                what: format!(
                    "stampede, {SUMMARY_THREADS} threads reading a key that expires every {} ms: \
                     reads (M/s; slabcache with stale-while-revalidate, moka get_with)",
                    self.stampede.config.ttl.as_millis()
                ),
                ours: format!("{:.2}", ours.mreads_per_sec()),
                best: format!("{:.2}", moka.mreads_per_sec()),
                ratio: Some(ours.mreads_per_sec() / moka.mreads_per_sec()),
            });
        }
        if let Ok(get_hit) = &self.python {
            if let (Some(ours), Some((best_name, best))) =
                (get_hit.slabcache(), get_hit.best_peer())
            {
                rows.push(Headline {
                    what: format!(
                        "Python get hit, 1 thread, 100k str keys, Zipf 0.99 (ns; best peer \
                         {best_name})"
                    ),
                    ours: format!("{ours:.1}"),
                    best: format!("{best:.1}"),
                    ratio: Some(best / ours),
                });
            }
        }
        rows
    }
}

/// The repository this crate was built in.
fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the bench crate lives in the repository")
        .to_path_buf()
}

/// slabcache's mean distance to OPT in points over every (trace, capacity), and the best
/// peer's (moka or quick_cache), with its name.
fn mean_gaps(results: &[Measurement]) -> Option<(f64, &'static str, f64)> {
    let mean_gap = |policy: PolicyKind| -> Option<f64> {
        let gaps: Vec<f64> = results
            .iter()
            .filter(|m| m.policy == policy)
            .filter_map(|m| {
                results
                    .iter()
                    .find(|o| {
                        o.policy == PolicyKind::Opt
                            && o.trace == m.trace
                            && o.capacity == m.capacity
                    })
                    .map(|opt| opt.hit_ratio() - m.hit_ratio())
            })
            .collect();
        (!gaps.is_empty()).then(|| gaps.iter().sum::<f64>() / gaps.len() as f64)
    };
    let ours = mean_gap(PolicyKind::Slabcache)?;
    let (name, best) = [PolicyKind::Moka, PolicyKind::QuickCache]
        .into_iter()
        .filter_map(|p| mean_gap(p).map(|g| (p.name(), g)))
        .min_by(|a, b| a.1.total_cmp(&b.1))?;
    Some((ours, name, best))
}

/// The CPU model and core count, from /proc/cpuinfo where there is one.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    format!("{model}, {cores} cores available")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measurement(trace: &str, capacity: usize, policy: PolicyKind, hits: u64) -> Measurement {
        Measurement::of(trace, capacity, policy, hits, 100)
    }

    #[test]
    fn mean_gaps_compare_slabcache_with_the_closest_peer_to_opt() {
        let results = [
            measurement("a", 10, PolicyKind::Slabcache, 40),
            measurement("a", 10, PolicyKind::Moka, 30),
            measurement("a", 10, PolicyKind::QuickCache, 35),
            measurement("a", 10, PolicyKind::Opt, 50),
            measurement("a", 20, PolicyKind::Slabcache, 60),
            measurement("a", 20, PolicyKind::Moka, 50),
            measurement("a", 20, PolicyKind::QuickCache, 55),
            measurement("a", 20, PolicyKind::Opt, 70),
        ];
        let (ours, name, best) = mean_gaps(&results).unwrap();
        assert!((ours - 10.0).abs() < 1e-9, "{ours}");
        assert_eq!(name, "quick_cache");
        assert!((best - 15.0).abs() < 1e-9, "{best}");
    }

    #[test]
    fn the_shipped_traces_exist() {
        let config = Config::standard(PathBuf::from("unused"));
        for (file, _, _) in TRACES {
            assert!(config.traces_dir.join(file).is_file(), "{file} is missing");
        }
    }

    #[test]
    fn the_machine_line_names_the_core_count() {
        assert!(machine().contains("cores available"));
    }
}
