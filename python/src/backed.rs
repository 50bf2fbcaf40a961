//! `slabcache.Backed`: a cache in front of a Python source (any object with `load`, `store`
//! and `delete`), over the engine's source-backed layer: read-through with single-flight,
//! write-through, write-around and write-behind, refresh-ahead, stale-while-revalidate,
//! XFetch early expiry and negative caching.
//!
//! The source is called from the caller's thread (reads, write-through) and from the layer's
//! own threads (the write-behind flusher, the refresh workers), always with the GIL taken
//! just for the call and no engine lock held. Every method that can wait (for a load, a
//! flush, the threads to stop) releases the GIL first, so those threads can run the source
//! meanwhile. The source sees keys as the caller gave them (`str` or `bytes`) and values as
//! the cache returns them (copies, decoded).

use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::{PyKeyError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use slabcache::{BackedError, Retry, Source, WhenFull, WriteBehind, WriteMode};

use crate::cache::{Cache, Engine};
use crate::codec::{decode_key, decode_value, encode_key, encode_tag, encode_tags, type_name};
use crate::errors;
use crate::load::load_error;

/// A Python object with `load(key)`, `store(key, value)` and `delete(key)`; `load` says "no
/// such key" by raising `KeyError`.
struct PySource {
    source: Py<PyAny>,
    engine: Arc<Engine>,
}

impl PySource {
    /// Runs `f` with the GIL, the source and the Python form of `key`.
    fn with_key<R>(
        &self,
        key: &[u8],
        f: impl FnOnce(Python<'_>, &Bound<'_, PyAny>, Bound<'_, PyAny>) -> PyResult<R>,
    ) -> PyResult<R> {
        Python::attach(|py| {
            let key = decode_key(py, key)?.ok_or_else(|| errors::error("not a Python key"))?;
            f(py, self.source.bind(py), key)
        })
    }
}

impl Source for PySource {
    type Error = PyErr;

    fn load(&self, key: &[u8]) -> Result<Option<Vec<u8>>, PyErr> {
        self.with_key(key, |py, source, key| {
            match source.call_method1(intern!(py, "load"), (key,)) {
                Ok(value) => self.engine.encode_owned(&value).map(Some),
                // The source has no such key.
                Err(e) if e.is_instance_of::<PyKeyError>(py) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    fn store(&self, key: &[u8], value: &[u8]) -> Result<(), PyErr> {
        self.with_key(key, |py, source, key| {
            let value = decode_value(py, value, &self.engine.serializer)?;
            source.call_method1(intern!(py, "store"), (key, value))?;
            Ok(())
        })
    }

    fn delete(&self, key: &[u8]) -> Result<(), PyErr> {
        self.with_key(key, |py, source, key| {
            source.call_method1(intern!(py, "delete"), (key,))?;
            Ok(())
        })
    }
}

fn seconds(name: &str, value: Option<f64>) -> PyResult<Option<Duration>> {
    match value {
        None => Ok(None),
        Some(s) if s > 0.0 && s.is_finite() => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => Err(PyValueError::new_err(format!(
            "{name} must be a positive number of seconds, not {s}"
        ))),
    }
}

/// The engine of `slabcache.Backed`.
#[pyclass(frozen, subclass, module = "slabcache._native")]
pub struct Backed {
    backed: Option<slabcache::Backed<PySource>>,
    engine: Arc<Engine>,
    cache: Py<Cache>,
    source: Py<PyAny>,
}

impl Backed {
    fn inner(&self) -> &slabcache::Backed<PySource> {
        self.backed
            .as_ref()
            .expect("a Backed holds its engine until it is dropped")
    }
}

fn backed_error(e: BackedError<PyErr>, key: &Bound<'_, PyAny>) -> PyErr {
    match e {
        BackedError::Source(e) => e,
        BackedError::Panicked(message) => errors::error(format!("the source panicked: {message}")),
        BackedError::Cache(e) => errors::from_engine(e, Some(key)),
        BackedError::QueueFull => errors::error("the write-behind queue is full"),
        BackedError::Closed => errors::error("this Backed is closed: it takes no more writes"),
        other => errors::error(other.to_string()),
    }
}

#[pymethods]
impl Backed {
    #[new]
    #[pyo3(signature = (cache, source, write_mode = "through", ttl = None,
                        stale_while_revalidate = None, refresh_ahead = None, early_expiry = None,
                        negative_ttl = None, refresh_workers = 2,
                        max_delay = 0.05, queue_capacity = 65536, when_full = "block",
                        max_attempts = None, initial_backoff = 0.01, max_backoff = 1.0,
                        on_write_error = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        cache: &Bound<'_, Cache>,
        source: &Bound<'_, PyAny>,
        write_mode: &str,
        ttl: Option<f64>,
        stale_while_revalidate: Option<f64>,
        refresh_ahead: Option<f64>,
        early_expiry: Option<f64>,
        negative_ttl: Option<f64>,
        refresh_workers: usize,
        max_delay: f64,
        queue_capacity: usize,
        when_full: &str,
        max_attempts: Option<u32>,
        initial_backoff: f64,
        max_backoff: f64,
        on_write_error: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        for method in ["load", "store", "delete"] {
            if !source.hasattr(method)? {
                return Err(PyTypeError::new_err(format!(
                    "the source needs load, store and delete methods; {} has no {method}",
                    type_name(source)
                )));
            }
        }
        let engine = Arc::clone(cache.get().engine());
        let write_mode = match write_mode {
            "through" => WriteMode::Through,
            "around" => WriteMode::Around,
            "behind" => WriteMode::Behind(WriteBehind {
                // One store per attempt: a Python source has no batch method, and a retry
                // then repeats only the write that failed (a batch is retried whole, which a
                // source failing at random would rarely take in one go).
                batch_size: 1,
                max_delay: seconds("max_delay", Some(max_delay))?.unwrap_or_default(),
                queue_capacity,
                when_full: match when_full {
                    "block" => WhenFull::Block,
                    "error" => WhenFull::Error,
                    other => {
                        return Err(PyValueError::new_err(format!(
                            "when_full is \"block\" or \"error\", not {other:?}"
                        )))
                    }
                },
                retry: Retry {
                    initial_backoff: seconds("initial_backoff", Some(initial_backoff))?
                        .unwrap_or_default(),
                    max_backoff: seconds("max_backoff", Some(max_backoff))?.unwrap_or_default(),
                    max_attempts,
                },
            }),
            other => {
                return Err(PyValueError::new_err(format!(
                    "write_mode is \"through\", \"around\" or \"behind\", not {other:?}"
                )))
            }
        };
        let mut builder = slabcache::Backed::builder(
            Arc::clone(&engine.cache),
            PySource {
                source: source.clone().unbind(),
                engine: Arc::clone(&engine),
            },
        )
        .write_mode(write_mode)
        .refresh_workers(refresh_workers, 1024);
        if let Some(ttl) = ttl {
            builder = builder.ttl(seconds("ttl", Some(ttl))?.unwrap_or_default());
        }
        if let Some(window) = seconds("stale_while_revalidate", stale_while_revalidate)? {
            builder = builder.stale_while_revalidate(window);
        }
        if let Some(fraction) = refresh_ahead {
            builder = builder.refresh_ahead(fraction);
        }
        if let Some(beta) = early_expiry {
            builder = builder.early_expiry(beta);
        }
        if let Some(ttl) = seconds("negative_ttl", negative_ttl)? {
            builder = builder.negative_ttl(ttl);
        }
        if let Some(report) = on_write_error {
            let report = report.clone().unbind();
            builder = builder.on_write_error(move |failure| {
                Python::attach(|py| {
                    let call = || -> PyResult<()> {
                        let keys = PyList::empty(py);
                        for key in failure.keys {
                            if let Some(key) = decode_key(py, key)? {
                                keys.append(key)?;
                            }
                        }
                        let error = match failure.error {
                            Some(e) => e.clone_ref(py).into_value(py).into_any(),
                            None => errors::error(failure.message.clone())
                                .into_value(py)
                                .into_any(),
                        };
                        let kwargs = PyDict::new(py);
                        kwargs.set_item("attempt", failure.attempt)?;
                        kwargs.set_item("gave_up", failure.gave_up)?;
                        report.bind(py).call((keys, error), Some(&kwargs))?;
                        Ok(())
                    };
                    if let Err(e) = call() {
                        e.write_unraisable(py, None);
                    }
                })
            });
        }
        let backed = builder.build().map_err(|e| errors::from_engine(e, None))?;
        Ok(Backed {
            backed: Some(backed),
            engine,
            cache: cache.clone().unbind(),
            source: source.clone().unbind(),
        })
    }

    /// The value of `key`, loading it from the source on a miss; `default` (if given, else
    /// `KeyError`) when the source has no such key.
    #[pyo3(signature = (key, *default))]
    fn get<'py>(
        &self,
        key: &Bound<'py, PyAny>,
        default: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = key.py();
        if default.len() > 1 {
            return Err(PyTypeError::new_err(format!(
                "get takes a key and at most one default, not {} defaults",
                default.len()
            )));
        }
        self.engine.tick(py)?;
        let k = encode_key(key)?;
        let inner = self.inner();
        match py.detach(|| inner.get(k.bytes())) {
            Ok(Some(stored)) => decode_value(py, &stored, &self.engine.serializer),
            Ok(None) => match default.get_item(0) {
                Ok(default) => Ok(default),
                Err(_) => Err(PyKeyError::new_err(key.clone().unbind())),
            },
            Err(e) => Err(load_error(py, e, Some(key))),
        }
    }

    /// Writes `value` as `key`'s value, as the write mode says.
    fn put(&self, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = key.py();
        self.engine.tick(py)?;
        let k = encode_key(key)?;
        let v = self.engine.encode_owned(value)?;
        let inner = self.inner();
        py.detach(|| inner.put(k.bytes(), &v))
            .map_err(|e| backed_error(e, key))
    }

    /// [`put`](Backed::put), tagging the cached entry with each of `tags` (str or bytes):
    /// `invalidate_tag` of any of them drops it from the cache, and the next read loads it
    /// again. In write-around mode nothing is cached, so there is nothing to tag.
    fn put_tagged(
        &self,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        tags: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = key.py();
        self.engine.tick(py)?;
        let k = encode_key(key)?;
        let v = self.engine.encode_owned(value)?;
        let tags = encode_tags(tags)?;
        let tag_bytes: Vec<&[u8]> = tags.iter().map(Vec::as_slice).collect();
        let inner = self.inner();
        py.detach(|| inner.put_tagged(k.bytes(), &v, &tag_bytes))
            .map_err(|e| backed_error(e, key))
    }

    /// Drops every cached entry tagged with `tag` (the source keeps them); returns how many.
    fn invalidate_tag(&self, tag: &Bound<'_, PyAny>) -> PyResult<u64> {
        let py = tag.py();
        let tag = encode_tag(tag)?;
        let inner = self.inner();
        Ok(py.detach(|| inner.invalidate_tag(tag.bytes())))
    }

    /// Deletes `key` from the source and the cache, as the write mode says.
    fn delete(&self, key: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = key.py();
        self.engine.tick(py)?;
        let k = encode_key(key)?;
        let inner = self.inner();
        py.detach(|| inner.delete(k.bytes()))
            .map_err(|e| backed_error(e, key))
    }

    /// Blocks until the write-behind writes made before the call are in the source (or
    /// given up after `max_attempts`).
    fn flush(&self, py: Python<'_>) {
        let inner = self.inner();
        py.detach(|| inner.flush());
    }

    /// Blocks until the background refreshes queued before the call have run.
    fn settle(&self, py: Python<'_>) {
        let inner = self.inner();
        py.detach(|| inner.settle());
    }

    /// Flushes, then stops the background threads; later writes raise `slabcache.Error`.
    fn close(&self, py: Python<'_>) {
        let inner = self.inner();
        py.detach(|| inner.close());
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner().stats();
        let dict = PyDict::new(py);
        for (name, value) in [
            ("loads", s.loads),
            ("load_failures", s.load_failures),
            ("refreshes", s.refreshes),
            ("stale_served", s.stale_served),
            ("negative_hits", s.negative_hits),
            ("queue_depth", s.queue_depth),
            ("flushed", s.flushed),
            ("coalesced", s.coalesced),
            ("retried", s.retried),
            ("failed", s.failed),
        ] {
            dict.set_item(name, value)?;
        }
        Ok(dict)
    }

    /// The cache in front of the source.
    #[getter]
    fn cache(&self, py: Python<'_>) -> Py<Cache> {
        self.cache.clone_ref(py)
    }

    /// The source.
    #[getter]
    fn source(&self, py: Python<'_>) -> Py<PyAny> {
        self.source.clone_ref(py)
    }
}

impl Drop for Backed {
    fn drop(&mut self) {
        // Dropping the engine's Backed joins its threads, which may be waiting for the GIL
        // to call the source: release it meanwhile.
        if let Some(backed) = self.backed.take() {
            Python::attach(|py| py.detach(move || drop(backed)));
        }
    }
}
