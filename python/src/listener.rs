//! A Python listener: `Cache(listener=f)` calls `f(key, value, cause)` for every entry that
//! leaves the cache or has its value replaced (the engine's removal events).
//!
//! The engine delivers events outside its locks, on the thread that made them or on the one
//! delivering at the time, so the listener runs with the GIL taken for the call and no engine
//! lock held. An exception the listener raises cannot unwind through the engine: it is kept
//! for the thread that delivered the event, and the next cache call of that thread to finish
//! (the one whose write made the event, nearly always) raises it, after its own effect has
//! taken place. A second exception before the first is raised is reported as unraisable.

use std::cell::RefCell;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use slabcache::{Event, RemovalCause};

use crate::codec::{self, decode_key, decode_value, Serializer};

thread_local! {
    /// The listener's exception waiting to be raised on this thread.
    static PENDING: RefCell<Option<PyErr>> = const { RefCell::new(None) };
}

/// The name a cause has in Python.
fn cause_name(cause: RemovalCause) -> &'static str {
    match cause {
        RemovalCause::Evicted => "evicted",
        RemovalCause::Expired => "expired",
        RemovalCause::Removed => "removed",
        RemovalCause::Replaced => "replaced",
        RemovalCause::Cleared => "cleared",
        RemovalCause::TagInvalidated => "tag_invalidated",
        _ => "other",
    }
}

/// The engine listener that calls `listener` (which must be callable).
pub fn engine_listener(
    py: Python<'_>,
    listener: &Bound<'_, PyAny>,
    serializer: &Serializer,
) -> PyResult<impl Fn(&Event) + Send + Sync + 'static> {
    if !listener.is_callable() {
        return Err(PyTypeError::new_err(format!(
            "listener must be a callable (key, value, cause), not {}",
            codec::type_name(listener)
        )));
    }
    let listener = listener.clone().unbind();
    let serializer = serializer.clone_ref(py);
    Ok(move |event: &Event| {
        Python::attach(|py| {
            let call = || -> PyResult<()> {
                // A decorated function's entries have no Python key: not part of the mapping.
                let Some(key) = decode_key(py, event.key())? else {
                    return Ok(());
                };
                let value = decode_value(py, event.value(), &serializer)?;
                listener
                    .bind(py)
                    .call1((key, value, cause_name(event.cause())))?;
                Ok(())
            };
            if let Err(e) = call() {
                keep(py, e);
            }
        })
    })
}

fn keep(py: Python<'_>, e: PyErr) {
    PENDING.with(|pending| match pending.try_borrow_mut() {
        Ok(mut slot) if slot.is_none() => *slot = Some(e),
        _ => e.write_unraisable(py, None),
    });
}

/// Raises the listener's exception kept for this thread, if any.
#[inline]
pub fn raise_pending() -> PyResult<()> {
    match PENDING.with(|pending| pending.borrow_mut().take()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
