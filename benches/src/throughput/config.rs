//! What a throughput run measures: the workloads, mixes and operations, the settings of a
//! run, and the fixed parameters of the harness.

use crate::peers::Peer;

/// The Zipf exponent of the skewed workload.
pub(super) const ZIPF_EXPONENT: f64 = 0.99;
/// Latency is measured at this many threads, under Zipf 95/5.
pub(super) const LATENCY_THREADS: usize = 2;
/// Operations between two reads of the stop flag; a multiple of every mix's period (20 for
/// 95/5) and of [`SAMPLE_EVERY`], so that every block holds exactly the mix's proportion.
pub(super) const BLOCK: usize = 160;
/// Key ids per thread: about a million, a whole number of blocks. Large enough that the
/// walk does not replay a short pattern the CPU cache could learn, small enough to draw fast.
pub(super) const STREAM_LEN: usize = (1 << 20) / BLOCK * BLOCK;
/// A latency run times one get in this many, and one insert in this many.
pub(super) const SAMPLE_EVERY: u32 = 32;
/// Threads that prefill a cache. stretto's insert waits until its buffer has been applied,
/// tens of microseconds on an idle machine; several threads overlap those waits, which cuts
/// its prefill several times over and costs the other caches little.
pub(super) const PREFILL_THREADS: usize = 4;
/// Seeds the key streams; fixed, so that runs are comparable.
pub(super) const SEED: u64 = 0x7468_726f_7567_6870;

/// How the key of each operation is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Workload {
    /// Zipf, s = 0.99, over scrambled ids.
    Zipf,
    /// Every key id equally likely.
    Uniform,
}

impl Workload {
    /// Every workload, in report order.
    pub const ALL: [Workload; 2] = [Workload::Zipf, Workload::Uniform];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Zipf => "zipf",
            Workload::Uniform => "uniform",
        }
    }

    /// The workload called `name` ([`Workload::name`]), if any.
    pub fn from_name(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }
}

/// The proportion of gets and inserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mix {
    /// Gets only, on a prefilled cache.
    Read,
    /// 95% gets, 5% inserts.
    Read95,
    /// Half gets, half inserts.
    Half,
    /// Inserts only.
    Write,
}

impl Mix {
    /// Every mix, in report order.
    pub const ALL: [Mix; 4] = [Mix::Read, Mix::Read95, Mix::Half, Mix::Write];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Mix::Read => "read",
            Mix::Read95 => "95/5",
            Mix::Half => "50/50",
            Mix::Write => "write",
        }
    }

    /// The mix called `name` ([`Mix::name`]), if any.
    pub fn from_name(name: &str) -> Option<Mix> {
        Mix::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Which positions of a block are inserts: the last of every `period` operations, where
    /// the mix has one insert per `period` (or none, or all).
    pub(super) fn pattern(self) -> [bool; BLOCK] {
        let period = match self {
            Mix::Read => return [false; BLOCK],
            Mix::Write => return [true; BLOCK],
            Mix::Read95 => 20,
            Mix::Half => 2,
        };
        std::array::from_fn(|i| i % period == period - 1)
    }
}

/// An operation whose latency is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `Contender::get`.
    Get,
    /// `Contender::insert`.
    Insert,
}

impl Op {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Insert => "insert",
        }
    }
}

/// What a throughput run measures, and how long it takes.
#[derive(Debug, Clone)]
pub struct Config {
    /// The caches measured.
    pub peers: Vec<Peer>,
    /// The key distributions.
    pub workloads: Vec<Workload>,
    /// The get / insert mixes.
    pub mixes: Vec<Mix>,
    /// Thread counts, each at least 1.
    pub threads: Vec<usize>,
    /// Distinct key ids, at least 1.
    pub universe: u32,
    /// Each cache's capacity in entries, at least 1.
    pub capacity: usize,
    /// Timed runs per point, at least 1; the median is reported.
    pub runs: usize,
    /// Length of one timed run, in seconds.
    pub run_secs: f64,
    /// Warm-up before the timed runs of a point, in seconds.
    pub warmup_secs: f64,
}

impl Config {
    /// Every cache, both workloads and all mixes at 1, 2 and 4 threads; 5 runs of 1 s.
    pub fn full() -> Config {
        Config {
            peers: Peer::ALL.to_vec(),
            workloads: Workload::ALL.to_vec(),
            mixes: Mix::ALL.to_vec(),
            threads: vec![1, 2, 4],
            universe: 1_000_000,
            capacity: 100_000,
            runs: 5,
            run_secs: 1.0,
            warmup_secs: 0.2,
        }
    }

    /// Every cache and all mixes, Zipf only, at 1 and 2 threads; 3 runs of 0.3 s.
    pub fn quick() -> Config {
        Config {
            workloads: vec![Workload::Zipf],
            threads: vec![1, 2],
            runs: 3,
            run_secs: 0.3,
            warmup_secs: 0.1,
            ..Config::full()
        }
    }

    pub(super) fn check(&self) {
        assert!(self.universe >= 1, "the key universe needs at least one id");
        assert!(self.capacity >= 1, "a cache needs a capacity of at least 1");
        assert!(self.runs >= 1, "a point needs at least one run");
        assert!(
            self.threads.iter().all(|&t| t >= 1),
            "thread counts must be at least 1"
        );
        assert!(
            self.run_secs > 0.0 && self.warmup_secs >= 0.0,
            "run and warm-up times must be positive"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for w in Workload::ALL {
            assert_eq!(Workload::from_name(w.name()), Some(w));
        }
        for m in Mix::ALL {
            assert_eq!(Mix::from_name(m.name()), Some(m));
        }
        assert_eq!(Mix::from_name("90/10"), None);
    }

    #[test]
    fn mixes_have_their_stated_proportions_in_every_block() {
        let inserts = |mix: Mix| mix.pattern().iter().filter(|&&i| i).count();
        assert_eq!(inserts(Mix::Read), 0);
        assert_eq!(inserts(Mix::Read95) * 20, BLOCK);
        assert_eq!(inserts(Mix::Half) * 2, BLOCK);
        assert_eq!(inserts(Mix::Write), BLOCK);
        // Inserts are spread out, not bunched at one end of the block.
        let read95 = Mix::Read95.pattern();
        for window in read95.chunks_exact(20) {
            assert_eq!(window.iter().filter(|&&i| i).count(), 1);
        }
        assert_eq!(STREAM_LEN % BLOCK, 0);
        assert_eq!(BLOCK % SAMPLE_EVERY as usize, 0);
    }
}
