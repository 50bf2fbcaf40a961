//! `slabcache.Stats`: a snapshot of a cache's counters, with the Rust `Stats` fields.

use pyo3::prelude::*;

macro_rules! stats_class {
    ($($field:ident),* $(,)?) => {
        /// A snapshot of a cache's counters and sizes (see the Rust `slabcache::Stats`).
        #[pyclass(frozen, get_all, module = "slabcache._native")]
        pub struct Stats {
            $($field: u64,)*
            hit_ratio: f64,
        }

        impl From<slabcache::Stats> for Stats {
            fn from(s: slabcache::Stats) -> Self {
                let hit_ratio = s.hit_ratio();
                // Every field named, no `..`: a counter added to the engine's `Stats` fails
                // the build until it is here too.
                let slabcache::Stats { $($field),* } = s;
                Stats { $($field,)* hit_ratio }
            }
        }

        #[pymethods]
        impl Stats {
            fn __repr__(&self) -> String {
                let mut out = String::from("slabcache.Stats(");
                $(out.push_str(&format!("{}={}, ", stringify!($field), self.$field));)*
                out.push_str(&format!("hit_ratio={:.4})", self.hit_ratio));
                out
            }

        }
    };
}

stats_class!(
    hits,
    misses,
    inserts,
    updates,
    removals,
    evictions,
    expirations,
    cas_failures,
    entries,
    payload_bytes,
    arena_bytes_used,
    max_bytes,
    fixed_overhead_bytes,
    loads,
    load_waits,
    listener_panics,
);
