//! Single-flight loads from Python: `get_or_load` for threads and the native half of
//! `get_or_load_async` for asyncio tasks. Both join the engine's flights, so a thread and a
//! task that miss the same key share one load, whoever leads it.
//!
//! Threads: a hit is a plain read. A miss releases the GIL and enters the engine's
//! `get_or_load`; the leader takes the GIL back only to run the loader and encode its answer
//! (no engine lock is held meanwhile), and followers wait with the GIL released.
//!
//! Tasks: [`AsyncLoad`] wraps the engine's `get_or_load_async` future, and the Python driver
//! (`slabcache/_load.py`) polls it. A poll answers one of three things: done (with the value
//! or the error), "run the loader" (this task leads: the driver awaits the loader and hands
//! its answer back with `answer` or `fail`), or "wait" (the driver awaits an asyncio future
//! that the waker resolves). The engine wakes followers from whichever thread lands the load,
//! while it holds the flight's listener lock, so a waker must never wait for the GIL: it
//! hands the wake to one background thread ([`waker_thread`]), which takes the GIL and calls
//! `loop.call_soon_threadsafe`.

use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use slabcache::{LoadError, LoadResult};

use crate::cache::{ttl_arg, Engine};
use crate::codec::{decode_value, encode_key, Key};
use crate::errors;

/// `Cache.get_or_load`: the value of `key`, loading it with `loader(key)` on a miss, one
/// loader at a time per key across threads and tasks.
pub fn get_or_load<'py>(
    engine: &Engine,
    key: &Bound<'py, PyAny>,
    loader: &Bound<'py, PyAny>,
    ttl: Option<f64>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = key.py();
    engine.tick(py)?;
    let k = encode_key(key)?;
    if let Some(value) = engine.lookup(py, &k)? {
        return Ok(value);
    }
    let ttl = ttl_arg(ttl, engine.cache.default_ttl())?;
    let (loader, key_object) = (loader.clone().unbind(), key.clone().unbind());
    let result = load_blocking(py, engine, &k, ttl, move |py| {
        let value = loader.bind(py).call1((key_object.bind(py),))?;
        refuse_awaitable(&value, "the loader")?;
        engine.encode_owned(&value).map(Some)
    });
    finish(py, engine, result, key)
}

/// Runs the engine's blocking single-flight load of `k` with the GIL released; `load` runs
/// (taking the GIL back) only if this thread leads, and no engine lock is held meanwhile.
pub fn load_blocking(
    py: Python<'_>,
    engine: &Engine,
    k: &Key,
    ttl: Option<Duration>,
    load: impl FnOnce(Python<'_>) -> PyResult<Option<Vec<u8>>> + Send,
) -> LoadResult<PyErr> {
    py.detach(|| {
        engine
            .cache
            .get_or_load_with_ttl(k.bytes(), ttl, |_| Python::attach(load))
    })
}

/// A load's result as Python sees it.
pub fn finish<'py>(
    py: Python<'py>,
    engine: &Engine,
    result: LoadResult<PyErr>,
    key: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    match result {
        Ok(Some(stored)) => decode_value(py, &stored, &engine.serializer),
        Ok(None) => Err(pyo3::exceptions::PyKeyError::new_err(key.clone().unbind())),
        Err(e) => Err(load_error(py, e, Some(key))),
    }
}

/// The Python exception for a failed load: the loader's own exception, the same object for
/// every caller that shared the load.
pub fn load_error(py: Python<'_>, e: LoadError<PyErr>, key: Option<&Bound<'_, PyAny>>) -> PyErr {
    match e {
        LoadError::Failed(e) => e.clone_ref(py),
        LoadError::Recursive => errors::recursive_load(),
        LoadError::Panicked(message) => errors::error(format!("the loader panicked: {message}")),
        LoadError::Cache(e) => errors::from_engine(e, key),
        other => errors::error(other.to_string()),
    }
}

type LoadFuture = Pin<Box<dyn Future<Output = LoadResult<PyErr>> + Send>>;

/// The loader's answer, handed from the Python driver to the engine's future.
#[derive(Default)]
struct Answer {
    /// The engine asked for the loader to run (this task leads) and has no answer yet.
    asked: bool,
    answer: Option<Result<Option<Vec<u8>>, PyErr>>,
}

/// The future the engine awaits as its loader: ready once the driver answered.
struct AwaitAnswer(Arc<Mutex<Answer>>);

impl Future for AwaitAnswer {
    type Output = Result<Option<Vec<u8>>, PyErr>;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        // No waker is kept: the driver polls again as soon as it has answered.
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.answer.take() {
            Some(answer) => Poll::Ready(answer),
            None => {
                slot.asked = true;
                Poll::Pending
            }
        }
    }
}

/// An asyncio task's load of one key (see the module doc).
#[pyclass(frozen, module = "slabcache._native")]
pub struct AsyncLoad {
    engine: Arc<Engine>,
    key: Py<PyAny>,
    future: Mutex<Option<LoadFuture>>,
    answer: Arc<Mutex<Answer>>,
}

/// What a poll tells the driver.
const DONE: u8 = 0;
const RUN_LOADER: u8 = 1;
const WAIT: u8 = 2;

impl AsyncLoad {
    /// A load of the engine key `k` (already missed; `key` is its Python form) with `ttl` for
    /// the value it stores.
    pub fn new(
        engine: &Arc<Engine>,
        k: Vec<u8>,
        key: &Bound<'_, PyAny>,
        ttl: Option<Duration>,
    ) -> Self {
        let answer = Arc::new(Mutex::new(Answer::default()));
        let future: LoadFuture = {
            let engine = Arc::clone(engine);
            let answer = Arc::clone(&answer);
            Box::pin(async move {
                engine
                    .cache
                    .get_or_load_async_with_ttl(&k, ttl, move |_| AwaitAnswer(answer))
                    .await
            })
        };
        AsyncLoad {
            engine: Arc::clone(engine),
            key: key.clone().unbind(),
            future: Mutex::new(Some(future)),
            answer,
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Answer> {
        self.answer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[pymethods]
impl AsyncLoad {
    /// Advances the load: `(0, value)` when done, `(1, None)` to run the loader, `(2, None)`
    /// to wait until `wake()` is called. Raises the load's error when it failed.
    fn poll<'py>(&self, py: Python<'py>, wake: Py<PyAny>) -> PyResult<(u8, Bound<'py, PyAny>)> {
        let mut future = self.future.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(running) = future.as_mut() else {
            return Err(PyRuntimeError::new_err("this load has already finished"));
        };
        let waker = Waker::from(Arc::new(PyWake(wake)));
        let polled = running.as_mut().poll(&mut Context::from_waker(&waker));
        match polled {
            Poll::Ready(result) => {
                *future = None;
                drop(future);
                let value = finish(py, &self.engine, result, self.key.bind(py))?;
                Ok((DONE, value))
            }
            Poll::Pending => {
                let mut slot = self.slot();
                if std::mem::take(&mut slot.asked) {
                    Ok((RUN_LOADER, py.None().into_bound(py)))
                } else {
                    Ok((WAIT, py.None().into_bound(py)))
                }
            }
        }
    }

    /// Hands the loader's value to the load.
    fn answer(&self, value: &Bound<'_, PyAny>) {
        let encoded = refuse_awaitable(value, "the awaited loader")
            .and_then(|()| self.engine.encode_owned(value))
            .map(Some);
        self.slot().answer = Some(encoded);
    }

    /// Hands the loader's exception to the load (every waiter gets it; nothing is cached).
    fn fail(&self, error: &Bound<'_, PyAny>) {
        self.slot().answer = Some(Err(PyErr::from_value(error.clone())));
    }

    /// Drops the load unfinished (the task was cancelled): if it led, the tasks and threads
    /// waiting for it start over.
    fn cancel(&self, py: Python<'_>) {
        let dropped = self
            .future
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        py.detach(move || drop(dropped));
    }
}

/// Wakes an asyncio task: the callable (`loop.call_soon_threadsafe` bound to the task's
/// future) is called by the waker thread.
struct PyWake(Py<PyAny>);

impl Wake for PyWake {
    fn wake(self: Arc<Self>) {
        // Never blocks: see the module doc. If the waker thread is gone (the interpreter is
        // shutting down) there is nobody left to wake.
        let _ = waker_thread().send(self);
    }
}

/// The thread that calls wake callables with the GIL held, started on first use.
fn waker_thread() -> &'static Sender<Arc<PyWake>> {
    static WAKER: OnceLock<Sender<Arc<PyWake>>> = OnceLock::new();
    WAKER.get_or_init(|| {
        let (send, receive) = mpsc::channel::<Arc<PyWake>>();
        std::thread::Builder::new()
            .name("slabcache-asyncio-waker".into())
            .spawn(move || {
                for wake in receive {
                    Python::attach(|py| {
                        if let Err(e) = wake.0.call0(py) {
                            // The task's loop is closed: its task can never run again.
                            e.write_unraisable(py, None);
                        }
                        drop(wake);
                    });
                }
            })
            .expect("the asyncio waker thread starts");
        send
    })
}

/// Makes sure `obj` is not an awaitable handed to a blocking API.
pub fn refuse_awaitable(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<()> {
    if obj.hasattr(pyo3::intern!(obj.py(), "__await__"))? {
        return Err(PyTypeError::new_err(format!(
            "{what} returned an awaitable; use the async variant for an async loader"
        )));
    }
    Ok(())
}
