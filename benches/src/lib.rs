//! Workloads for slabcache: the pieces shared by the `slabcache-bench` binary and tests.
//!
//! - [`rng`]: a seedable SplitMix64 generator.
//! - [`zipf`]: a Zipf sampler by rejection-inversion, for skewed key popularity.
//! - [`demo`]: the demo workload behind `slabcache-bench demo`.

pub mod demo;
pub mod rng;
pub mod zipf;

/// The README's Rust examples, compiled and run by `cargo test --workspace` as doctests, so
/// the README can never show code that does not build against the current API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
