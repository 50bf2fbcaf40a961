//! The native half of `@slabcache.cached`: a memoized function whose keys are built in Rust
//! from the call's arguments (see `codec::encode_call`), with single-flight misses.
//!
//! A call hashes nothing in Python: the arguments are encoded straight into the engine key,
//! looked up, and on a hit decoded; a miss runs the function through the engine's blocking
//! single-flight load with the GIL released while waiting. Async functions are wrapped in
//! Python (`slabcache/_cached.py`), over [`CachedFunction::_call_key`] and the cache's async
//! loads.
//!
//! A decorated function's key starts with its module and qualified name and a generation
//! number: functions sharing a cache never see each other's entries, and `cache_clear` on a
//! shared cache moves to a new generation (the old entries are never read again and age out),
//! while on a cache of its own it clears the cache.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyTuple, PyType};

use crate::cache::{ttl_arg, Cache, Engine};
use crate::codec::{encode_call, Key, Serializer};
use crate::load::{finish, load_blocking, refuse_awaitable};

/// A function memoized in a slabcache `Cache`.
#[pyclass(frozen, dict, module = "slabcache._native")]
pub struct CachedFunction {
    func: Py<PyAny>,
    /// The `slabcache.Cache` behind it (`f.cache`).
    cache: Py<Cache>,
    engine: Arc<Engine>,
    /// The function's module and qualified name, which start its keys.
    name: Vec<u8>,
    /// The cache belongs to this function alone (so `cache_clear` may clear it).
    owns_cache: bool,
    generation: AtomicU64,
    key_fn: Option<Py<PyAny>>,
    ttl: Option<Duration>,
    /// Pickle, for arguments the compact encoding does not take.
    fallback: Serializer,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl CachedFunction {
    fn key(
        &self,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Key<'static>> {
        let generation = self.generation.load(Ordering::Relaxed);
        match &self.key_fn {
            None => encode_call(&self.name, generation, args, kwargs, &self.fallback),
            Some(key_fn) => {
                let py = args.py();
                let key = key_fn.bind(py).call(args, kwargs)?;
                let args = PyTuple::new(py, [key])?;
                encode_call(&self.name, generation, &args, None, &self.fallback)
            }
        }
    }
}

#[pymethods]
impl CachedFunction {
    #[new]
    #[pyo3(signature = (func, cache, owns_cache, ttl = None, key = None))]
    fn new(
        func: &Bound<'_, PyAny>,
        cache: &Bound<'_, Cache>,
        owns_cache: bool,
        ttl: Option<f64>,
        key: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let py = func.py();
        if !func.is_callable() {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "@cached decorates a callable",
            ));
        }
        let engine = Arc::clone(cache.get().engine());
        let module: String = func
            .getattr("__module__")
            .and_then(|m| m.extract())
            .unwrap_or_default();
        let qualname: String = func
            .getattr("__qualname__")
            .and_then(|m| m.extract())
            .unwrap_or_else(|_| format!("{:x}", func.as_ptr() as usize));
        Ok(CachedFunction {
            func: func.clone().unbind(),
            cache: cache.clone().unbind(),
            ttl: ttl_arg(ttl, engine.cache.default_ttl())?,
            engine,
            name: format!("{module}.{qualname}").into_bytes(),
            owns_cache,
            generation: AtomicU64::new(0),
            key_fn: key.map(|k| k.clone().unbind()),
            fallback: Serializer::new(py, None)?,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn __call__<'py>(
        &self,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = args.py();
        self.engine.tick(py)?;
        let key = self.key(args, kwargs)?;
        if let Some(value) = self.engine.lookup(py, &key)? {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(value);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let func = self.func.clone_ref(py);
        let (call_args, call_kwargs) = (args.clone().unbind(), kwargs.map(|k| k.clone().unbind()));
        let engine = &*self.engine;
        let result = load_blocking(py, engine, &key, self.ttl, move |py| {
            let value = func
                .bind(py)
                .call(call_args.bind(py), call_kwargs.as_ref().map(|k| k.bind(py)))?;
            refuse_awaitable(&value, "the decorated function")?;
            engine.encode_owned(&value).map(Some)
        });
        finish(py, engine, result, args.as_any())
    }

    /// Binds the function to `obj` when it is looked up as a method: `self` is then the first
    /// argument, and enters the key like any other.
    fn __get__<'py>(
        slf: &Bound<'py, Self>,
        obj: Option<&Bound<'py, PyAny>>,
        _owner: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match obj {
            None => Ok(slf.clone().into_any()),
            Some(obj) => {
                static METHOD: PyOnceLock<Py<PyType>> = PyOnceLock::new();
                let method = METHOD.import(slf.py(), "types", "MethodType")?;
                method.call1((slf, obj))
            }
        }
    }

    /// `CacheInfo(hits, misses, maxsize, currsize)`, as functools gives: `maxsize` is the
    /// cache's byte budget and `currsize` its entry count.
    fn cache_info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        static CACHE_INFO: PyOnceLock<Py<PyType>> = PyOnceLock::new();
        let info = CACHE_INFO.import(py, "slabcache._cached", "CacheInfo")?;
        let stats = self.engine.cache.stats();
        info.call1((
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
            stats.max_bytes,
            self.engine.cache.len(),
        ))
    }

    /// Forgets every result and zeroes the counts.
    fn cache_clear(&self, py: Python<'_>) {
        if self.owns_cache {
            let cache = &self.engine.cache;
            py.detach(|| cache.clear());
        } else {
            self.generation.fetch_add(1, Ordering::Relaxed);
        }
        self.hits.store(0, Ordering::Relaxed);
        self.misses.store(0, Ordering::Relaxed);
    }

    /// The `slabcache.Cache` behind the function.
    #[getter]
    fn cache(&self, py: Python<'_>) -> Py<Cache> {
        self.cache.clone_ref(py)
    }

    /// The undecorated function.
    #[getter]
    fn _func(&self, py: Python<'_>) -> Py<PyAny> {
        self.func.clone_ref(py)
    }

    /// The engine key of a call (for the async wrapper).
    #[pyo3(signature = (*args, **kwargs))]
    fn _call_key<'py>(
        &self,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(args.py(), self.key(args, kwargs)?.bytes()))
    }

    /// Counts a hit or a miss of the async wrapper.
    fn _count(&self, hit: bool) {
        let counter = if hit { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The TTL the function's results are stored with, in seconds (`math.inf`: never).
    #[getter]
    fn _ttl(&self) -> f64 {
        self.ttl.map_or(f64::INFINITY, |t| t.as_secs_f64())
    }
}
