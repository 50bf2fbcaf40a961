//! `slabcache._native`: the Python module's native half, over the `slabcache` engine.
//!
//! The pure-Python package `slabcache` (in `python/slabcache/`) re-exports these classes and
//! adds the thin parts that read better in Python: the `MutableMapping` mixins, the asyncio
//! driver of `get_or_load_async`, and the `@cached` decorator's wrapper of async functions.
//! docs/python.md is the user's guide; docs/design.md ("Python") says how it fits the engine.

mod backed;
mod cache;
mod cached;
mod codec;
mod errors;
mod listener;
mod load;
mod stats;

use pyo3::prelude::*;

/// The module. Sound without the GIL: every class is frozen, and their shared state is the
/// engine (lock-free) or behind a `Mutex` (iterators, async loads).
#[pymodule(gil_used = false)]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<cache::Cache>()?;
    m.add_class::<cache::KeyIter>()?;
    m.add_class::<load::AsyncLoad>()?;
    m.add_class::<stats::Stats>()?;
    m.add_class::<cached::CachedFunction>()?;
    m.add_class::<backed::Backed>()?;
    m.add("MAX_KEY_LEN", errors::MAX_PY_KEY_LEN)?;
    Ok(())
}
