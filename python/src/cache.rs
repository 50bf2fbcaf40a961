//! `slabcache._native.Cache`: the engine as a Python object.
//!
//! The class is frozen (no `&mut self`, no Python-level lock): every method goes straight to
//! the lock-free engine, which is shared by an `Arc` with iterators, decorators, async loads
//! and source-backed caches. The pure-Python subclass `slabcache.Cache` adds the
//! `MutableMapping` mixins and `get_or_load_async`.
//!
//! Python code (serializers, loaders, the timer) only ever runs with no engine lock held:
//! values are encoded before a write and decoded after a read, the timer is read before an
//! operation starts, and loaders run inside the engine's single-flight protocol, which holds
//! no lock while a loader runs. Waiting for another caller's load happens with the GIL
//! released (see `load.rs`).

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::{PyKeyError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use slabcache::{ManualClock, SharedIter, Version};

use crate::codec::{self, encode_key, encode_value, Key, Serializer};
use crate::errors;
use crate::listener;
use crate::load::{self, AsyncLoad};
use crate::stats::Stats;

/// The engine behind a Python cache, with what its bindings need to talk to it.
pub struct Engine {
    /// The cache itself.
    pub cache: Arc<slabcache::Cache>,
    /// Turns values without an encoding of their own into bytes and back.
    pub serializer: Serializer,
    /// The caller's clock, when one was given (tests).
    pub timer: Option<Timer>,
    /// A Python listener was given: calls that may deliver events raise its exceptions.
    pub listens: bool,
}

/// A clock read from a Python callable before each operation: the engine's `ManualClock` is
/// moved forward to its reading (never backwards: a reading earlier than one already seen
/// leaves the clock where it is).
pub struct Timer {
    read: Py<PyAny>,
    origin: f64,
    clock: Arc<ManualClock>,
}

impl Timer {
    fn new(read: &Bound<'_, PyAny>) -> PyResult<(Timer, Arc<ManualClock>)> {
        if !read.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "timer must be a callable returning seconds, not {}",
                codec::type_name(read)
            )));
        }
        let origin = read_seconds(read)?;
        let clock = Arc::new(ManualClock::new());
        Ok((
            Timer {
                read: read.clone().unbind(),
                origin,
                clock: Arc::clone(&clock),
            },
            clock,
        ))
    }

    fn tick(&self, py: Python<'_>) -> PyResult<()> {
        let now = read_seconds(self.read.bind(py))?;
        let since = now - self.origin;
        if since > 0.0 {
            self.clock
                .advance_to(Duration::try_from_secs_f64(since).unwrap_or(Duration::MAX));
        }
        Ok(())
    }
}

fn read_seconds(read: &Bound<'_, PyAny>) -> PyResult<f64> {
    let reading = read.call0()?;
    let seconds: f64 = reading.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "timer() must return seconds as a float, not {}",
            codec::type_name(&reading)
        ))
    })?;
    if seconds.is_nan() {
        return Err(PyValueError::new_err("timer() returned NaN"));
    }
    Ok(seconds)
}

impl Engine {
    /// Reads the caller's timer, if any; call before every operation that reads the clock.
    #[inline]
    pub fn tick(&self, py: Python<'_>) -> PyResult<()> {
        match &self.timer {
            Some(timer) => timer.tick(py),
            None => Ok(()),
        }
    }

    /// `f` with `value` encoded into a reusable per-thread buffer.
    #[inline]
    pub fn with_encoded<R>(
        &self,
        value: &Bound<'_, PyAny>,
        f: impl FnOnce(&[u8]) -> PyResult<R>,
    ) -> PyResult<R> {
        with_buffer(|buf| {
            encode_value(value, &self.serializer, buf)?;
            f(buf)
        })
    }

    /// The decoded value of `key`, if present.
    #[inline]
    pub fn lookup<'py>(&self, py: Python<'py>, key: &Key) -> PyResult<Option<Bound<'py, PyAny>>> {
        with_buffer(|buf| match self.cache.get_into(key.bytes(), buf) {
            Some(_) => codec::decode_value(py, buf, &self.serializer).map(Some),
            None => Ok(None),
        })
    }

    /// `result`, or the listener's exception if one is waiting on this thread (see
    /// `listener.rs`); for calls that may deliver removal events.
    #[inline]
    pub fn delivered<T>(&self, result: PyResult<T>) -> PyResult<T> {
        if self.listens {
            result.and_then(|value| listener::raise_pending().map(|()| value))
        } else {
            result
        }
    }

    /// `value` as stored bytes, in a fresh vector (for a loader's answer).
    pub fn encode_owned(&self, value: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
        let mut out = Vec::new();
        encode_value(value, &self.serializer, &mut out)?;
        Ok(out)
    }
}

thread_local! {
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's value buffer, cleared; with a fresh one if the buffer is in
/// use already (a serializer or `__hash__` that calls back into a cache).
#[inline]
fn with_buffer<R>(f: impl FnOnce(&mut Vec<u8>) -> PyResult<R>) -> PyResult<R> {
    BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            let result = f(&mut buf);
            if buf.capacity() > 1 << 20 {
                *buf = Vec::new();
            }
            result
        }
        Err(_) => f(&mut Vec::new()),
    })
}

/// A TTL argument: `None` means the cache's default; a positive number of seconds; `math.inf`
/// means never expires.
pub fn ttl_arg(ttl: Option<f64>, default: Option<Duration>) -> PyResult<Option<Duration>> {
    match ttl {
        None => Ok(default),
        Some(t) if t == f64::INFINITY => Ok(None),
        Some(t) if t > 0.0 && t.is_finite() => Ok(Some(Duration::from_secs_f64(t))),
        Some(t) => Err(PyValueError::new_err(format!(
            "ttl must be a positive number of seconds (or math.inf for never), not {t}"
        ))),
    }
}

fn version_arg(version: u64) -> Option<Version> {
    Version::new(version)
}

/// The engine of `slabcache.Cache`, a `MutableMapping` of `str` or `bytes` keys.
#[pyclass(frozen, subclass, module = "slabcache._native")]
pub struct Cache {
    engine: Arc<Engine>,
}

impl Cache {
    /// The engine, shared with decorators, loads and source-backed caches.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    fn write(
        &self,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        ttl: Option<f64>,
        write: impl FnOnce(
            &slabcache::Cache,
            &[u8],
            &[u8],
            Option<Duration>,
        ) -> Result<Version, slabcache::Error>,
    ) -> PyResult<u64> {
        let engine = &*self.engine;
        engine.tick(key.py())?;
        let k = encode_key(key)?;
        let ttl = ttl_arg(ttl, engine.cache.default_ttl())?;
        engine.delivered(engine.with_encoded(value, |v| {
            write(&engine.cache, k.bytes(), v, ttl)
                .map(Version::get)
                .map_err(|e| errors::from_engine(e, Some(key)))
        }))
    }
}

#[pymethods]
impl Cache {
    #[new]
    #[pyo3(signature = (max_bytes = 64 << 20, max_entries = None, ttl = None, ttl_jitter = 0.0,
                        serializer = None, timer = None, track_hot_keys = false,
                        listener = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        max_bytes: i64,
        max_entries: Option<i64>,
        ttl: Option<f64>,
        ttl_jitter: f64,
        serializer: Option<&Bound<'_, PyAny>>,
        timer: Option<&Bound<'_, PyAny>>,
        track_hot_keys: bool,
        listener: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let max_bytes = u64::try_from(max_bytes).map_err(|_| {
            PyValueError::new_err(format!(
                "max_bytes must be a positive size, not {max_bytes}"
            ))
        })?;
        let mut builder = slabcache::Cache::builder()
            .max_bytes(max_bytes)
            .track_hot_keys(track_hot_keys);
        if let Some(entries) = max_entries {
            if entries < 1 {
                return Err(PyValueError::new_err(format!(
                    "max_entries must be at least 1 (or None for no limit), not {entries}"
                )));
            }
            builder = builder.max_entries(entries as u64);
        }
        if let Some(ttl) = ttl_arg(ttl, None)? {
            builder = builder.default_ttl(ttl);
        }
        if !(0.0..1.0).contains(&ttl_jitter) {
            return Err(PyValueError::new_err(format!(
                "ttl_jitter must be a fraction in [0, 1), not {ttl_jitter}"
            )));
        }
        if ttl_jitter > 0.0 {
            builder = builder.ttl_jitter(ttl_jitter);
        }
        let timer = match timer {
            Some(read) => {
                let (timer, clock) = Timer::new(read)?;
                builder = builder.clock(clock);
                Some(timer)
            }
            None => None,
        };
        let serializer = Serializer::new(py, serializer)?;
        if let Some(listener) = listener {
            builder = builder.listener(listener::engine_listener(py, listener, &serializer)?);
        }
        let cache = builder.build().map_err(|e| errors::from_engine(e, None))?;
        Ok(Cache {
            engine: Arc::new(Engine {
                cache: Arc::new(cache),
                serializer,
                timer,
                listens: listener.is_some(),
            }),
        })
    }

    fn __getitem__<'py>(&self, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = key.py();
        self.engine.tick(py)?;
        let k = encode_key(key)?;
        match self.engine.lookup(py, &k)? {
            Some(value) => Ok(value),
            None => Err(PyKeyError::new_err(key.clone().unbind())),
        }
    }

    fn __setitem__(&self, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.write(key, value, None, |c, k, v, ttl| {
            c.insert_with_ttl(k, v, ttl)
        })
        .map(drop)
    }

    fn __delitem__(&self, key: &Bound<'_, PyAny>) -> PyResult<()> {
        self.engine.tick(key.py())?;
        let k = encode_key(key)?;
        let removed = self.engine.cache.remove(k.bytes());
        self.engine.delivered(if removed {
            Ok(())
        } else {
            Err(PyKeyError::new_err(key.clone().unbind()))
        })
    }

    fn __contains__(&self, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.engine.tick(key.py())?;
        match encode_key(key) {
            Ok(k) => Ok(self.engine.cache.contains(k.bytes())),
            // As a dict answers for an unhashable key: one that can never be stored (of
            // another type, too long, a str that is not valid Unicode) is not in.
            Err(_) => Ok(false),
        }
    }

    fn __len__(&self) -> usize {
        self.engine.cache.len()
    }

    fn __iter__(&self) -> KeyIter {
        KeyIter::new(&self.engine, Yield::Keys)
    }

    /// `(key, value)` pairs, each read once (for `items()`).
    fn _iter_items(&self) -> KeyIter {
        KeyIter::new(&self.engine, Yield::Items)
    }

    /// Values, each read once (for `values()`).
    fn _iter_values(&self) -> KeyIter {
        KeyIter::new(&self.engine, Yield::Values)
    }

    #[pyo3(signature = (key, default = None))]
    fn get<'py>(
        &self,
        key: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = key.py();
        self.engine.tick(py)?;
        let k = encode_key(key)?;
        match self.engine.lookup(py, &k)? {
            Some(value) => Ok(value),
            None => Ok(default.unwrap_or_else(|| py.None().into_bound(py))),
        }
    }

    #[pyo3(signature = (key, value, ttl = None))]
    fn set(
        &self,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        ttl: Option<f64>,
    ) -> PyResult<u64> {
        self.write(key, value, ttl, |c, k, v, ttl| c.insert_with_ttl(k, v, ttl))
    }

    #[pyo3(signature = (key, value, ttl = None))]
    fn add(
        &self,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        ttl: Option<f64>,
    ) -> PyResult<u64> {
        self.write(key, value, ttl, |c, k, v, ttl| {
            c.insert_if_absent_with_ttl(k, v, ttl)
        })
    }

    #[pyo3(signature = (key, value, ttl = None))]
    fn replace(
        &self,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        ttl: Option<f64>,
    ) -> PyResult<u64> {
        self.write(key, value, ttl, |c, k, v, ttl| {
            c.replace_with_ttl(k, v, ttl)
        })
    }

    fn get_versioned<'py>(&self, key: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let py = key.py();
        self.engine.tick(py)?;
        let k = encode_key(key)?;
        let engine = &self.engine;
        with_buffer(|buf| match engine.cache.get_into(k.bytes(), buf) {
            Some(version) => {
                let value = codec::decode_value(py, buf, &engine.serializer)?;
                Ok(Some(PyTuple::new(
                    py,
                    [value, version.get().into_pyobject(py)?.into_any()],
                )?))
            }
            None => Ok(None),
        })
    }

    #[pyo3(signature = (key, expected_version, value, ttl = None))]
    fn compare_and_swap(
        &self,
        key: &Bound<'_, PyAny>,
        expected_version: u64,
        value: &Bound<'_, PyAny>,
        ttl: Option<f64>,
    ) -> PyResult<u64> {
        self.write(key, value, ttl, |c, k, v, ttl| {
            match version_arg(expected_version) {
                Some(expected) => c.compare_and_swap_with_ttl(k, expected, v, ttl),
                // No entry ever has version 0: a mismatch with whatever is there, or absence.
                None => match c.get_versioned(k) {
                    Some((_, current)) => Err(slabcache::Error::VersionMismatch { current }),
                    None => Err(slabcache::Error::NotFound),
                },
            }
        })
    }

    fn delete_if_version(&self, key: &Bound<'_, PyAny>, version: u64) -> PyResult<bool> {
        self.engine.tick(key.py())?;
        let k = encode_key(key)?;
        let removed = match version_arg(version) {
            Some(expected) => self
                .engine
                .cache
                .remove_if_version(k.bytes(), expected)
                .is_ok(),
            None => false,
        };
        self.engine.delivered(Ok(removed))
    }

    #[pyo3(signature = (key, value, tags, ttl = None))]
    fn set_tagged(
        &self,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        tags: &Bound<'_, PyAny>,
        ttl: Option<f64>,
    ) -> PyResult<u64> {
        let tags = codec::encode_tags(tags)?;
        let tag_bytes: Vec<&[u8]> = tags.iter().map(Vec::as_slice).collect();
        self.write(key, value, ttl, |c, k, v, ttl| {
            c.insert_tagged(k, v, ttl, &tag_bytes)
        })
    }

    fn invalidate_tag(&self, py: Python<'_>, tag: &Bound<'_, PyAny>) -> PyResult<u64> {
        self.engine.tick(py)?;
        let tag = codec::encode_tag(tag)?;
        let removed = self.engine.cache.invalidate_tag(tag.bytes());
        self.engine.delivered(Ok(removed))
    }

    fn hottest<'py>(&self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyList>> {
        let mut out = Vec::new();
        for (key, count) in self.engine.cache.hottest(n) {
            if let Some(key) = codec::decode_key(py, &key)? {
                out.push((key, count));
            }
        }
        PyList::new(py, out)
    }

    #[pyo3(signature = (key, loader, ttl = None))]
    fn get_or_load<'py>(
        &self,
        key: &Bound<'py, PyAny>,
        loader: &Bound<'py, PyAny>,
        ttl: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.engine
            .delivered(load::get_or_load(&self.engine, key, loader, ttl))
    }

    /// The native half of `get_or_load_async` (see `slabcache/_load.py`).
    #[pyo3(signature = (key, ttl = None))]
    fn _load_async(&self, key: &Bound<'_, PyAny>, ttl: Option<f64>) -> PyResult<AsyncLoad> {
        self.engine.tick(key.py())?;
        let k = encode_key(key)?.bytes().to_vec();
        let ttl = ttl_arg(ttl, self.engine.cache.default_ttl())?;
        Ok(AsyncLoad::new(&self.engine, k, key, ttl))
    }

    /// `get` of an engine key a decorator built (`CachedFunction._call_key`).
    fn _get_raw<'py>(
        &self,
        key: &Bound<'py, PyBytes>,
        default: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = key.py();
        self.engine.tick(py)?;
        let k = Key::Borrowed(key.as_bytes());
        Ok(self.engine.lookup(py, &k)?.unwrap_or(default))
    }

    /// `_load_async` of an engine key a decorator built.
    fn _load_async_raw(&self, key: &Bound<'_, PyBytes>, ttl: f64) -> PyResult<AsyncLoad> {
        self.engine.tick(key.py())?;
        let ttl = ttl_arg(Some(ttl), None)?;
        Ok(AsyncLoad::new(
            &self.engine,
            key.as_bytes().to_vec(),
            key.as_any(),
            ttl,
        ))
    }

    fn stats(&self) -> Stats {
        Stats::from(self.engine.cache.stats())
    }

    fn clear(&self, py: Python<'_>) -> PyResult<()> {
        let cache = &self.engine.cache;
        py.detach(|| cache.clear());
        self.engine.delivered(Ok(()))
    }

    #[getter]
    fn max_bytes(&self) -> u64 {
        self.engine.cache.stats().max_bytes
    }

    fn __repr__(&self) -> String {
        let stats = self.engine.cache.stats();
        format!(
            "slabcache.Cache(entries={}, max_bytes={})",
            stats.entries, stats.max_bytes
        )
    }
}

/// What an iterator yields.
#[derive(Clone, Copy)]
enum Yield {
    Keys,
    Values,
    Items,
}

/// A weakly consistent iterator over a cache: it owns a handle to the engine, so it outlives
/// `clear()` and the cache object itself.
#[pyclass(module = "slabcache._native")]
pub struct KeyIter {
    engine: Arc<Engine>,
    entries: std::sync::Mutex<SharedIter>,
    yields: Yield,
}

impl KeyIter {
    fn new(engine: &Arc<Engine>, yields: Yield) -> KeyIter {
        KeyIter {
            engine: Arc::clone(engine),
            entries: std::sync::Mutex::new(engine.cache.iter_shared()),
            yields,
        }
    }
}

#[pymethods]
impl KeyIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        loop {
            let next = {
                let mut entries = self
                    .entries
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                entries.next()
            };
            let Some((key, value, _)) = next else {
                return Ok(None);
            };
            // Entries of decorated functions share a cache with plain keys but have no
            // Python key: they are not part of the mapping.
            let Some(key) = codec::decode_key(py, &key)? else {
                continue;
            };
            return Ok(Some(match self.yields {
                Yield::Keys => key,
                Yield::Values => codec::decode_value(py, &value, &self.engine.serializer)?,
                Yield::Items => {
                    let value = codec::decode_value(py, &value, &self.engine.serializer)?;
                    PyTuple::new(py, [key, value])?.into_any()
                }
            }));
        }
    }
}
