//! The Python exceptions the module raises. They are defined in Python
//! (`slabcache/_errors.py`, where multiple bases and `VersionMismatch.current` read plainly)
//! and looked up once.

use pyo3::exceptions::{PyKeyError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// The engine's key limit as the Python caller sees it: one byte goes to the type tag.
pub const MAX_PY_KEY_LEN: usize = slabcache::MAX_KEY_LEN - 1;

fn class<'py>(py: Python<'py>, name: &'static str) -> PyResult<Bound<'py, PyType>> {
    static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    let module = MODULE.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("slabcache._errors")?.unbind())
    })?;
    Ok(module.bind(py).getattr(name)?.cast_into::<PyType>()?)
}

fn raise<A: for<'py> pyo3::call::PyCallArgs<'py>>(name: &'static str, args: A) -> PyErr {
    Python::attach(|py| match class(py, name) {
        Ok(cls) => match cls.call1(args) {
            Ok(exc) => PyErr::from_value(exc),
            Err(e) => e,
        },
        Err(e) => e,
    })
}

/// `slabcache.Error(message)`.
pub fn error(message: impl Into<String>) -> PyErr {
    raise("Error", (message.into(),))
}

/// `slabcache.KeyTooLarge` for a key of `len` bytes.
pub fn key_too_large(len: usize) -> PyErr {
    raise(
        "KeyTooLarge",
        (format!(
            "key is {len} bytes; the maximum is {MAX_PY_KEY_LEN}"
        ),),
    )
}

/// `slabcache.Exists`.
pub fn exists() -> PyErr {
    raise("Exists", ("key is already present",))
}

/// `slabcache.VersionMismatch(current)`.
pub fn version_mismatch(current: u64) -> PyErr {
    raise("VersionMismatch", (current,))
}

/// `slabcache.RecursiveLoad`.
pub fn recursive_load() -> PyErr {
    raise(
        "RecursiveLoad",
        ("a loader asked to load the key it is loading; waiting for itself would never end",),
    )
}

/// The Python exception for an engine error on `key`.
pub fn from_engine(e: slabcache::Error, key: Option<&Bound<'_, PyAny>>) -> PyErr {
    match e {
        slabcache::Error::KeyTooLarge { len, .. } => key_too_large(len - 1),
        slabcache::Error::ValueTooLarge { len, max } => raise(
            "ValueTooLarge",
            (format!(
                "value is {len} bytes once encoded; this cache's largest value is {max} bytes"
            ),),
        ),
        slabcache::Error::Exists => exists(),
        slabcache::Error::VersionMismatch { current } => version_mismatch(current.get()),
        slabcache::Error::NotFound => match key {
            Some(key) => PyKeyError::new_err(key.clone().unbind()),
            None => PyKeyError::new_err("key is not present"),
        },
        slabcache::Error::InvalidConfig(why) => PyValueError::new_err(why),
        other => error(other.to_string()),
    }
}
