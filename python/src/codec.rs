//! How Python keys and values become the engine's bytes, and come back.
//!
//! Keys are `str` or `bytes`. A `str` key is stored as its UTF-8, borrowed from the string
//! without a copy; a `bytes` key as the byte `0xFF` and its bytes. UTF-8 never contains
//! `0xFD` to `0xFF`, so those bytes tag what is not a `str`: `0xFF` a `bytes` key, `0xFE` a
//! decorated function's call, and `0xFD` alone the empty `str` (the engine takes no empty
//! key). So `"a"` and `b"a"` are different keys, as in a dict, and each comes back from
//! iteration with its own type.
//!
//! A stored value is one tag byte and a body:
//!
//! | tag | Python value | body | comes back as |
//! |---|---|---|---|
//! | `RAW` | `bytes`, `bytearray`, `memoryview` | the bytes | `bytes` |
//! | `STR` | `str` | UTF-8 | `str` |
//! | `COMPACT` | `None`, `bool`, `int`, `float`, and tuples, lists and dicts of these, `str` and `bytes` | the compact encoding below | equal objects of the same types |
//! | `SERIALIZED` | anything else | the serializer's `dumps` | the serializer's `loads` |
//!
//! The compact encoding is one item: a type byte, then `N` (None), `T`, `F`, `i` + 8 bytes
//! (an int that fits 64 bits), `I` + length + little-endian two's complement (a larger int),
//! `f` + 8 bytes, `s`/`b` + length + bytes, `t`/`l` + count + items, `d` + count + key, value
//! pairs. Lengths and counts are 4 bytes, little-endian. Only exact types take it (a subclass
//! of `int` or `dict` would not come back as itself), and at most [`MAX_DEPTH`] levels of
//! nesting; anything else goes to the serializer whole.
//!
//! The same encoding builds `@cached`'s keys from a call's arguments ([`encode_call`]).

use std::borrow::Cow;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{
    IntoPyDict, PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView,
    PyString, PyTuple,
};
use pyo3::{intern, PyTypeInfo};

use crate::errors;

/// First byte of a key given as `bytes`.
const KEY_BYTES: u8 = 0xFF;
/// First byte of a key built from a decorated function's arguments.
pub const KEY_CALL: u8 = 0xFE;
/// The whole key of the empty `str`.
const KEY_EMPTY_STR: u8 = 0xFD;

const RAW: u8 = 0;
const STR: u8 = 1;
const COMPACT: u8 = 2;
const SERIALIZED: u8 = 3;

/// The deepest nesting the compact encoding takes.
pub const MAX_DEPTH: usize = 32;

/// The engine's key for a Python key: a `str`'s UTF-8 borrowed from it, or bytes built here.
pub enum Key<'a> {
    /// Borrowed from the Python key, which outlives it.
    Borrowed(&'a [u8]),
    /// Built (a tagged `bytes` key, a decorator's key).
    Owned(Vec<u8>),
}

impl Key<'_> {
    /// An engine key that is already encoded (one that iteration or a decorator built).
    pub fn from_encoded(bytes: Vec<u8>) -> Key<'static> {
        Key::Owned(bytes)
    }

    /// The bytes the engine stores.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        match self {
            Key::Borrowed(bytes) => bytes,
            Key::Owned(bytes) => bytes,
        }
    }
}

/// The engine's key for `key`, which must be `str` or `bytes`.
#[inline]
pub fn encode_key<'a>(key: &'a Bound<'_, PyAny>) -> PyResult<Key<'a>> {
    let encoded = encode_any_key(key)?;
    // One limit for both types (a `bytes` key's tag takes one byte of the engine's), checked
    // here so that reads of a key too long say so too.
    let len = match encoded.bytes() {
        [KEY_BYTES, body @ ..] => body.len(),
        text => text.len(),
    };
    if len > errors::MAX_PY_KEY_LEN {
        return Err(errors::key_too_large(len));
    }
    Ok(encoded)
}

#[inline]
fn encode_any_key<'a>(key: &'a Bound<'_, PyAny>) -> PyResult<Key<'a>> {
    if let Ok(s) = key.cast::<PyString>() {
        return match s.to_cow()? {
            Cow::Borrowed("") => Ok(Key::Borrowed(&[KEY_EMPTY_STR])),
            Cow::Borrowed(text) => Ok(Key::Borrowed(text.as_bytes())),
            Cow::Owned(text) if text.is_empty() => Ok(Key::Borrowed(&[KEY_EMPTY_STR])),
            Cow::Owned(text) => Ok(Key::Owned(text.into_bytes())),
        };
    }
    if let Ok(b) = key.cast::<PyBytes>() {
        let body = b.as_bytes();
        let mut tagged = Vec::with_capacity(body.len() + 1);
        tagged.push(KEY_BYTES);
        tagged.extend_from_slice(body);
        return Ok(Key::Owned(tagged));
    }
    Err(PyTypeError::new_err(format!(
        "slabcache keys are str or bytes, not {}",
        type_name(key)
    )))
}

/// The engine's form of a tag (as a key's: tags are `str` or `bytes`).
pub fn encode_tag<'a>(tag: &'a Bound<'_, PyAny>) -> PyResult<Key<'a>> {
    encode_key(tag)
        .map_err(|_| PyTypeError::new_err(format!("tags are str or bytes, not {}", type_name(tag))))
}

/// The engine's forms of a collection of tags (a bare `str` or `bytes` is refused: it would
/// read as a collection of one-letter tags).
pub fn encode_tags(tags: &Bound<'_, PyAny>) -> PyResult<Vec<Vec<u8>>> {
    if tags.is_instance_of::<PyString>() || tags.is_instance_of::<PyBytes>() {
        return Err(PyTypeError::new_err(
            "tags is a collection of str or bytes tags; wrap a single tag in a list",
        ));
    }
    tags.try_iter()?
        .map(|tag| Ok(encode_tag(&tag?)?.bytes().to_vec()))
        .collect()
}

/// The Python key an engine key was made from (`None` for a decorator's key, which has no
/// Python form).
pub fn decode_key<'py>(py: Python<'py>, key: &[u8]) -> PyResult<Option<Bound<'py, PyAny>>> {
    match key {
        [KEY_BYTES, bytes @ ..] => Ok(Some(PyBytes::new(py, bytes).into_any())),
        [KEY_CALL, ..] => Ok(None),
        [KEY_EMPTY_STR] => Ok(Some(PyString::new(py, "").into_any())),
        text => Ok(Some(PyString::from_bytes(py, text)?.into_any())),
    }
}

/// The name of `obj`'s type, for error messages.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_owned())
}

/// How values that have no encoding of their own are turned into bytes: an object with
/// `dumps` and `loads` (pickle by default).
pub struct Serializer {
    dumps: Py<PyAny>,
    loads: Py<PyAny>,
}

impl Serializer {
    /// Another handle to the same `dumps` and `loads`.
    pub fn clone_ref(&self, py: Python<'_>) -> Serializer {
        Serializer {
            dumps: self.dumps.clone_ref(py),
            loads: self.loads.clone_ref(py),
        }
    }

    /// `serializer`'s `dumps` and `loads`, or pickle's (protocol 5) when it is `None`.
    pub fn new(py: Python<'_>, serializer: Option<&Bound<'_, PyAny>>) -> PyResult<Serializer> {
        match serializer {
            Some(s) => {
                let dumps = s.getattr("dumps").map_err(|_| {
                    PyValueError::new_err(
                        "serializer: needs dumps(obj) -> bytes and loads(bytes) -> obj",
                    )
                })?;
                let loads = s.getattr("loads").map_err(|_| {
                    PyValueError::new_err(
                        "serializer: needs dumps(obj) -> bytes and loads(bytes) -> obj",
                    )
                })?;
                Ok(Serializer {
                    dumps: dumps.unbind(),
                    loads: loads.unbind(),
                })
            }
            None => {
                let pickle = py.import("pickle")?;
                let functools = py.import("functools")?;
                let dumps = functools.getattr("partial")?.call(
                    (pickle.getattr("dumps")?,),
                    Some(&[("protocol", 5)].into_py_dict(py)?),
                )?;
                Ok(Serializer {
                    dumps: dumps.unbind(),
                    loads: pickle.getattr("loads")?.unbind(),
                })
            }
        }
    }
}

/// Appends `value`'s stored form to `out` (which is empty).
pub fn encode_value(
    value: &Bound<'_, PyAny>,
    serializer: &Serializer,
    out: &mut Vec<u8>,
) -> PyResult<()> {
    if let Ok(b) = value.cast_exact::<PyBytes>() {
        out.push(RAW);
        out.extend_from_slice(b.as_bytes());
        return Ok(());
    }
    if let Ok(s) = value.cast_exact::<PyString>() {
        out.push(STR);
        out.extend_from_slice(s.to_cow()?.as_bytes());
        return Ok(());
    }
    if let Ok(b) = value.cast_exact::<PyByteArray>() {
        out.push(RAW);
        out.extend_from_slice(&b.to_vec());
        return Ok(());
    }
    if value.cast_exact::<PyMemoryView>().is_ok() {
        let bytes = value.call_method0(intern!(value.py(), "tobytes"))?;
        out.push(RAW);
        out.extend_from_slice(bytes.cast::<PyBytes>()?.as_bytes());
        return Ok(());
    }
    out.push(COMPACT);
    if encode_item(value, 0, out)? {
        return Ok(());
    }
    out.clear();
    out.push(SERIALIZED);
    let dumped = serializer.dumps.bind(value.py()).call1((value,))?;
    match dumped.cast::<PyBytes>() {
        Ok(b) => out.extend_from_slice(b.as_bytes()),
        Err(_) => {
            return Err(PyTypeError::new_err(format!(
                "the serializer's dumps returned {}, not bytes",
                type_name(&dumped)
            )))
        }
    }
    Ok(())
}

/// The Python value of a stored value.
pub fn decode_value<'py>(
    py: Python<'py>,
    stored: &[u8],
    serializer: &Serializer,
) -> PyResult<Bound<'py, PyAny>> {
    match stored.split_first() {
        Some((&RAW, body)) => Ok(PyBytes::new(py, body).into_any()),
        Some((&STR, body)) => Ok(PyString::from_bytes(py, body)?.into_any()),
        Some((&COMPACT, body)) => {
            let mut reader = Reader { rest: body };
            let value = reader.item(py)?;
            if reader.rest.is_empty() {
                Ok(value)
            } else {
                Err(corrupt())
            }
        }
        Some((&SERIALIZED, body)) => serializer.loads.bind(py).call1((PyBytes::new(py, body),)),
        _ => Err(corrupt()),
    }
}

fn corrupt() -> PyErr {
    errors::error("a stored value is not in slabcache's encoding")
}

/// Appends the compact encoding of `value`; `Ok(false)` (with `out` in any state) when
/// `value` has none.
fn encode_item(value: &Bound<'_, PyAny>, depth: usize, out: &mut Vec<u8>) -> PyResult<bool> {
    let py = value.py();
    if value.is_none() {
        out.push(b'N');
    } else if let Ok(b) = value.cast_exact::<PyBool>() {
        out.push(if b.is_true() { b'T' } else { b'F' });
    } else if let Ok(i) = value.cast_exact::<PyInt>() {
        match i.extract::<i64>() {
            Ok(n) => {
                out.push(b'i');
                out.extend_from_slice(&n.to_le_bytes());
            }
            Err(_) => {
                let bits: usize = i.call_method0(intern!(py, "bit_length"))?.extract()?;
                let kwargs = [("signed", true)].into_py_dict(py)?;
                let bytes = i.call_method(
                    intern!(py, "to_bytes"),
                    (bits / 8 + 1, intern!(py, "little")),
                    Some(&kwargs),
                )?;
                out.push(b'I');
                push_bytes(out, bytes.cast::<PyBytes>()?.as_bytes());
            }
        }
    } else if let Ok(f) = value.cast_exact::<PyFloat>() {
        out.push(b'f');
        out.extend_from_slice(&f.value().to_le_bytes());
    } else if let Ok(s) = value.cast_exact::<PyString>() {
        out.push(b's');
        push_bytes(out, s.to_cow()?.as_bytes());
    } else if let Ok(b) = value.cast_exact::<PyBytes>() {
        out.push(b'b');
        push_bytes(out, b.as_bytes());
    } else if depth >= MAX_DEPTH {
        return Ok(false);
    } else if let Ok(t) = value.cast_exact::<PyTuple>() {
        out.push(b't');
        push_len(out, t.len());
        for item in t.iter() {
            if !encode_item(&item, depth + 1, out)? {
                return Ok(false);
            }
        }
    } else if let Ok(l) = value.cast_exact::<PyList>() {
        out.push(b'l');
        let start = out.len();
        push_len(out, l.len());
        let mut count = 0;
        // A list may change length while it is read (another thread, or an item's hook):
        // the count written is the number of items actually encoded.
        for item in l.iter() {
            if !encode_item(&item, depth + 1, out)? {
                return Ok(false);
            }
            count += 1;
        }
        out[start..start + 4].copy_from_slice(&(count as u32).to_le_bytes());
    } else if let Ok(d) = value.cast_exact::<PyDict>() {
        out.push(b'd');
        let start = out.len();
        push_len(out, d.len());
        let mut count = 0;
        for (k, v) in d.iter() {
            if !encode_item(&k, depth + 1, out)? || !encode_item(&v, depth + 1, out)? {
                return Ok(false);
            }
            count += 1;
        }
        out[start..start + 4].copy_from_slice(&(count as u32).to_le_bytes());
    } else {
        return Ok(false);
    }
    Ok(true)
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&(len as u32).to_le_bytes());
}

fn push_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    push_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// Reads the compact encoding back.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> PyResult<&'a [u8]> {
        if self.rest.len() < n {
            return Err(corrupt());
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn eight(&mut self) -> PyResult<[u8; 8]> {
        Ok(self.take(8)?.try_into().expect("took 8 bytes"))
    }

    fn len(&mut self) -> PyResult<usize> {
        let bytes: [u8; 4] = self.take(4)?.try_into().expect("took 4 bytes");
        Ok(u32::from_le_bytes(bytes) as usize)
    }

    fn item<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let tag = self.take(1)?[0];
        Ok(match tag {
            b'N' => py.None().into_bound(py),
            b'T' => PyBool::new(py, true).to_owned().into_any(),
            b'F' => PyBool::new(py, false).to_owned().into_any(),
            b'i' => i64::from_le_bytes(self.eight()?)
                .into_pyobject(py)?
                .into_any(),
            b'I' => {
                let len = self.len()?;
                let bytes = PyBytes::new(py, self.take(len)?);
                let kwargs = [("signed", true)].into_py_dict(py)?;
                PyInt::type_object(py).call_method(
                    intern!(py, "from_bytes"),
                    (bytes, intern!(py, "little")),
                    Some(&kwargs),
                )?
            }
            b'f' => PyFloat::new(py, f64::from_le_bytes(self.eight()?)).into_any(),
            b's' => {
                let len = self.len()?;
                PyString::from_bytes(py, self.take(len)?)?.into_any()
            }
            b'b' => {
                let len = self.len()?;
                PyBytes::new(py, self.take(len)?).into_any()
            }
            b't' | b'l' => {
                let count = self.len()?;
                let mut items = Vec::with_capacity(count.min(self.rest.len()));
                for _ in 0..count {
                    items.push(self.item(py)?);
                }
                if tag == b't' {
                    PyTuple::new(py, items)?.into_any()
                } else {
                    PyList::new(py, items)?.into_any()
                }
            }
            b'd' => {
                let count = self.len()?;
                let dict = PyDict::new(py);
                for _ in 0..count {
                    let k = self.item(py)?;
                    let v = self.item(py)?;
                    dict.set_item(k, v)?;
                }
                dict.into_any()
            }
            _ => return Err(corrupt()),
        })
    }
}

/// The key of a call of a decorated function: the function's name and its cache's generation
/// (see `cached.rs`), then the compact encodings of the positional arguments and of the
/// keyword arguments sorted by name. An argument with no compact encoding goes through
/// `fallback` (pickle), tagged `P`; one that `fallback` cannot take is a `TypeError` naming
/// its type.
pub fn encode_call(
    function: &[u8],
    generation: u64,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
    fallback: &Serializer,
) -> PyResult<Key<'static>> {
    let mut out = Vec::with_capacity(function.len() + 10 + 16 * (args.len() + 1));
    out.push(KEY_CALL);
    out.extend_from_slice(function);
    out.push(0);
    out.extend_from_slice(&generation.to_le_bytes());
    push_len(&mut out, args.len());
    for arg in args.iter() {
        encode_argument(&arg, fallback, &mut out)?;
    }
    if let Some(kwargs) = kwargs.filter(|k| !k.is_empty()) {
        let mut named: Vec<(String, Bound<'_, PyAny>)> = kwargs
            .iter()
            .map(|(k, v)| Ok((k.extract::<String>()?, v)))
            .collect::<PyResult<_>>()?;
        named.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, value) in named {
            push_bytes(&mut out, name.as_bytes());
            encode_argument(&value, fallback, &mut out)?;
        }
    }
    Ok(Key::from_encoded(out))
}

fn encode_argument(
    arg: &Bound<'_, PyAny>,
    fallback: &Serializer,
    out: &mut Vec<u8>,
) -> PyResult<()> {
    let start = out.len();
    if encode_item(arg, 0, out)? {
        return Ok(());
    }
    out.truncate(start);
    if arg.hash().is_err() {
        return Err(PyTypeError::new_err(format!(
            "unhashable argument of type {} cannot be part of a cache key",
            type_name(arg)
        )));
    }
    let dumped = fallback.dumps.bind(arg.py()).call1((arg,)).map_err(|e| {
        PyTypeError::new_err(format!(
            "argument of type {} cannot be part of a cache key: it is neither str, bytes, \
             int, float, bool, None nor a tuple of these, and pickling it failed ({e}); \
             pass key= to @cached",
            type_name(arg)
        ))
    })?;
    out.push(b'P');
    push_bytes(out, dumped.cast::<PyBytes>()?.as_bytes());
    Ok(())
}
