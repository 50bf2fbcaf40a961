//! The one error type of the crate.
//!
//! Every fallible call returns [`Error`]. Input errors (`EmptyKey`, `KeyTooLarge`,
//! `ValueTooLarge`) are reported before anything is changed; outcome errors (`Exists`,
//! `NotFound`, `VersionMismatch`) are the "no" answers of the conditional writes.

use std::fmt;

use crate::version::Version;

/// Why an operation or a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Keys must be at least one byte long.
    EmptyKey,
    /// The key is longer than [`MAX_KEY_LEN`](crate::MAX_KEY_LEN).
    KeyTooLarge {
        /// The key's length in bytes.
        len: usize,
        /// The longest key accepted.
        max: usize,
    },
    /// The value is longer than the cache's `max_value_bytes`.
    ValueTooLarge {
        /// The value's length in bytes.
        len: usize,
        /// The longest value this cache accepts.
        max: usize,
    },
    /// `insert_if_absent` found the key present.
    Exists,
    /// The key is absent (never written, removed, evicted or expired).
    NotFound,
    /// A conditional write expected another version; `current` is the version found.
    VersionMismatch {
        /// The key's version when the write was refused.
        current: Version,
    },
    /// A builder setting is out of range; the message names the setting and why.
    InvalidConfig(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::EmptyKey => write!(f, "key is empty; keys must be at least 1 byte"),
            Error::KeyTooLarge { len, max } => {
                write!(f, "key is {len} bytes; the maximum is {max}")
            }
            Error::ValueTooLarge { len, max } => {
                write!(
                    f,
                    "value is {len} bytes; this cache's max_value_bytes is {max}"
                )
            }
            Error::Exists => write!(f, "key is already present"),
            Error::NotFound => write!(f, "key is not present"),
            Error::VersionMismatch { current } => {
                write!(
                    f,
                    "version mismatch: the current version is {}",
                    current.get()
                )
            }
            Error::InvalidConfig(why) => write!(f, "invalid configuration: {why}"),
        }
    }
}

impl std::error::Error for Error {}
