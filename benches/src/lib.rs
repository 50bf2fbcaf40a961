//! Workloads for slabcache: the pieces shared by the `slabcache-bench` binary and tests.
//!
//! - [`rng`]: a seedable SplitMix64 generator.
//! - [`zipf`]: a Zipf sampler by rejection-inversion, for skewed key popularity.
//! - [`demo`]: the demo workload behind `slabcache-bench demo`.
//! - [`memory`]: resident memory per entry of each cache, behind `slabcache-bench memory`.
//! - [`peers`]: slabcache and the peer caches behind one interface, for the throughput and
//!   memory benchmarks.
//! - [`showdown`]: throughput, memory, hit ratio and the stampede in one report,
//!   `slabcache-bench showdown`.
//! - [`stampede`]: a hot key expiring under concurrent reads, behind `slabcache-bench
//!   stampede`: loads reaching the source and reader latency per caching strategy.
//! - [`text`]: JSON and SVG escaping shared by the reports.
//! - [`traces`]: trace replay behind `slabcache-bench traces`: hit ratios of slabcache, peer
//!   caches, LRU and Belady's optimum on recorded access sequences.
//! - [`throughput`]: concurrent throughput and latency of slabcache and its peers.

pub mod demo;
pub mod memory;
pub mod peers;
pub mod python;
pub mod rng;
pub mod showdown;
pub mod stampede;
pub mod text;
pub mod throughput;
pub mod traces;
pub mod zipf;
