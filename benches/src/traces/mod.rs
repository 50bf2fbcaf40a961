//! Trace replay: the hit ratio of slabcache, two peer caches, LRU and Belady's optimum on
//! recorded access sequences, behind `slabcache-bench traces`.
//!
//! Every request is one key and every entry counts as one (capacity = number of entries);
//! each cache starts cold, and hit ratio = hits / all requests. This module owns the run as
//! a whole ([`run`]: load every trace, replay each at each capacity through each policy) and
//! the types shared by its parts:
//!
//! - [`format`](mod@format): the trace file formats and their readers;
//! - [`lru`]: an exact LRU, the baseline;
//! - [`opt`]: Belady's optimal policy, the ceiling;
//! - [`replay`]: the policies behind one trait, and the replay loop that checks capacities;
//! - [`report`]: the results as a Markdown table, JSON and an SVG chart;
//! - `progress`: the progress line on a terminal.

pub mod format;
pub mod lru;
pub mod opt;
mod progress;
pub mod replay;
pub mod report;

use std::cell::OnceCell;
use std::fmt;
use std::path::{Path, PathBuf};

use format::{Format, TraceError};
use progress::Progress;
use replay::PolicyKind;

/// What `slabcache-bench traces` replays.
#[derive(Debug, Clone)]
pub struct Config {
    /// How the files are written.
    pub format: Format,
    /// Cache sizes in entries, each at least 1.
    pub capacities: Vec<usize>,
    /// The trace files to replay.
    pub files: Vec<PathBuf>,
    /// Replays of each trace and capacity through a policy whose figures vary from run to
    /// run ([`PolicyKind::varies`]); at least 1. The others are replayed once.
    pub runs: usize,
}

/// A trace in memory: its name and requests, and for OPT the next use of every request.
#[derive(Debug)]
pub struct Trace {
    name: String,
    keys: Vec<u64>,
    next_uses: OnceCell<Vec<usize>>,
}

impl Trace {
    /// A trace of `keys` (at least one), called `name` in reports and errors.
    pub fn new(name: String, keys: Vec<u64>) -> Trace {
        assert!(!keys.is_empty(), "a trace needs at least one request");
        Trace {
            name,
            keys,
            next_uses: OnceCell::new(),
        }
    }

    /// Reads the trace at `path`; it is named by its file name.
    pub fn load(path: &Path, format: Format) -> Result<Trace, TraceError> {
        let keys = format::read_file(path, format)?;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Ok(Trace::new(name, keys))
    }

    /// The trace's name in reports and errors.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The requested keys, in order.
    pub fn keys(&self) -> &[u64] {
        &self.keys
    }

    /// [`opt::next_uses`] of the trace, computed on first use and kept for every capacity.
    fn next_uses(&self) -> &[usize] {
        self.next_uses.get_or_init(|| opt::next_uses(&self.keys))
    }
}

/// The outcome of one replay: one policy at one capacity over one trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measurement {
    /// The trace's file name.
    pub trace: String,
    /// The cache size, in entries.
    pub capacity: usize,
    /// The policy replayed.
    pub policy: PolicyKind,
    /// Requests that hit: the median of the runs (the middle one; of an even number, the
    /// upper of the two middle ones).
    pub hits: u64,
    /// The fewest hits of the runs (`hits` after one run).
    pub hits_min: u64,
    /// The most hits of the runs (`hits` after one run).
    pub hits_max: u64,
    /// Replays measured.
    pub runs: usize,
    /// Requests replayed.
    pub requests: u64,
}

impl Measurement {
    /// A measurement for tests of the reports built on these.
    #[cfg(test)]
    pub(crate) fn of(
        trace: &str,
        capacity: usize,
        policy: PolicyKind,
        hits: u64,
        requests: u64,
    ) -> Measurement {
        Measurement {
            trace: trace.to_string(),
            capacity,
            policy,
            hits,
            hits_min: hits,
            hits_max: hits,
            runs: 1,
            requests,
        }
    }

    /// Hits as a percentage of all requests (the median run's).
    pub fn hit_ratio(&self) -> f64 {
        self.percent(self.hits)
    }

    /// The lowest and the highest hit ratio of the runs, in percent.
    pub fn hit_ratio_range(&self) -> (f64, f64) {
        (self.percent(self.hits_min), self.percent(self.hits_max))
    }

    fn percent(&self, hits: u64) -> f64 {
        100.0 * hits as f64 / self.requests as f64
    }
}

/// Why a run stopped.
#[derive(Debug)]
pub enum Error {
    /// A trace could not be read.
    Trace(TraceError),
    /// slabcache refused the configuration for a capacity.
    Engine {
        /// The trace's file name.
        trace: String,
        /// The capacity slabcache was asked to build for.
        capacity: usize,
        /// What slabcache said.
        error: slabcache::Error,
    },
    /// A cache held more keys than its capacity after a request: a broken bound.
    OverCapacity {
        /// The trace's file name.
        trace: String,
        /// The policy that overflowed.
        policy: PolicyKind,
        /// Its capacity, in entries.
        capacity: usize,
        /// Entries it held.
        entries: u64,
        /// The request after which it did, counted from 0.
        request: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Trace(e) => e.fmt(f),
            Error::Engine {
                trace,
                capacity,
                error,
            } => write!(
                f,
                "{trace}: cannot build slabcache for {capacity} entries: {error}"
            ),
            Error::OverCapacity {
                trace,
                policy,
                capacity,
                entries,
                request,
            } => write!(
                f,
                "{trace}: {} holds {entries} entries after request {request}, over its capacity \
                 of {capacity}",
                policy.name()
            ),
        }
    }
}

impl std::error::Error for Error {}

impl From<TraceError> for Error {
    fn from(e: TraceError) -> Error {
        Error::Trace(e)
    }
}

/// Loads every trace (so a bad file stops the run before any replay), then replays each at
/// each capacity through every policy, `config.runs` times for a policy whose figures vary.
/// Results come in file order, then capacity order, then [`PolicyKind::ALL`] order. Shows
/// progress on stderr when it is a terminal.
pub fn run(config: &Config) -> Result<Vec<Measurement>, Error> {
    assert!(config.runs >= 1, "at least one run");
    let traces = config
        .files
        .iter()
        .map(|path| Trace::load(path, config.format))
        .collect::<Result<Vec<_>, _>>()?;
    let replays_per_size: usize = PolicyKind::ALL
        .iter()
        .map(|p| if p.varies() { config.runs } else { 1 })
        .sum();
    let mut progress =
        Progress::on_stderr(traces.len() * config.capacities.len() * replays_per_size);
    let mut results = Vec::new();
    for trace in &traces {
        let requests = trace.keys().len();
        for &capacity in &config.capacities {
            for policy in PolicyKind::ALL {
                let runs = if policy.varies() { config.runs } else { 1 };
                let mut hits = Vec::with_capacity(runs);
                for run in 1..=runs {
                    let label = if runs > 1 {
                        format!(" run {run}/{runs}")
                    } else {
                        String::new()
                    };
                    progress.begin(format!(
                        "{} @ {capacity} {}{label}",
                        trace.name(),
                        policy.name()
                    ));
                    let replayed = replay::replay(trace, capacity, policy, |done| {
                        progress.update(done as f64 / requests as f64)
                    });
                    match replayed {
                        Ok(h) => hits.push(h),
                        Err(e) => {
                            progress.finish();
                            return Err(e);
                        }
                    }
                }
                hits.sort_unstable();
                results.push(Measurement {
                    trace: trace.name().to_string(),
                    capacity,
                    policy,
                    hits: hits[runs / 2],
                    hits_min: hits[0],
                    hits_max: hits[runs - 1],
                    runs,
                    requests: requests as u64,
                });
            }
        }
    }
    progress.finish();
    Ok(results)
}
