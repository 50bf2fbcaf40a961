//! How a [`Backed`](super::Backed) cache keeps an entry in its [`Cache`](crate::Cache): the
//! value behind a 13-byte header that says until when it is fresh, how long its load took
//! (XFetch's delta), and whether it stands for "the source has no such key" (negative
//! caching).
//!
//! ```text
//! byte 0       kind: 1 value, 2 not found
//! bytes 1..9   fresh_until: clock nanoseconds, little-endian (u64::MAX: always fresh)
//! bytes 9..13  load time in microseconds, little-endian (saturating)
//! bytes 13..   the value (empty for "not found")
//! ```
//!
//! The cache's own TTL of such an entry is its fresh time plus the stale-while-revalidate
//! window, so a cache entry past `fresh_until` is stale but servable. An entry that does not
//! decode (written to the cache by someone else) is dropped and loaded again.

use std::time::Duration;

const HEADER: usize = 13;
const VALUE: u8 = 1;
const NOT_FOUND: u8 = 2;

/// A decoded entry.
pub(crate) struct Frame<'a> {
    /// Clock nanoseconds from which the entry is stale.
    pub(crate) fresh_until: u64,
    /// How long the load that produced it took.
    pub(crate) load_time: Duration,
    /// The value; `None` for a remembered "not found".
    pub(crate) value: Option<&'a [u8]>,
}

/// The bytes stored in the cache for `value` (`None`: not found).
pub(crate) fn encode(fresh_until: u64, load_time: Duration, value: Option<&[u8]>) -> Vec<u8> {
    let body = value.unwrap_or_default();
    let mut bytes = Vec::with_capacity(HEADER + body.len());
    bytes.push(if value.is_some() { VALUE } else { NOT_FOUND });
    bytes.extend_from_slice(&fresh_until.to_le_bytes());
    let micros = u32::try_from(load_time.as_micros()).unwrap_or(u32::MAX);
    bytes.extend_from_slice(&micros.to_le_bytes());
    bytes.extend_from_slice(body);
    bytes
}

/// The entry `bytes` holds, or `None` if they are not an encoded entry.
pub(crate) fn decode(bytes: &[u8]) -> Option<Frame<'_>> {
    let (header, body) = bytes.split_at_checked(HEADER)?;
    let fresh_until = u64::from_le_bytes(header[1..9].try_into().ok()?);
    let micros = u32::from_le_bytes(header[9..13].try_into().ok()?);
    let value = match header[0] {
        VALUE => Some(body),
        NOT_FOUND if body.is_empty() => None,
        _ => return None,
    };
    Some(Frame {
        fresh_until,
        load_time: Duration::from_micros(u64::from(micros)),
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_not_found_round_trip() {
        let bytes = encode(42, Duration::from_micros(7), Some(b"value"));
        assert_eq!(bytes.len(), HEADER + 5);
        let frame = decode(&bytes).expect("decodes");
        assert_eq!(frame.fresh_until, 42);
        assert_eq!(frame.load_time, Duration::from_micros(7));
        assert_eq!(frame.value, Some(&b"value"[..]));

        let bytes = encode(u64::MAX, Duration::from_secs(1 << 40), None);
        let frame = decode(&bytes).expect("decodes");
        assert_eq!(frame.fresh_until, u64::MAX);
        assert_eq!(frame.load_time, Duration::from_micros(u64::from(u32::MAX)));
        assert_eq!(frame.value, None);
    }

    #[test]
    fn bytes_that_are_no_frame_do_not_decode() {
        assert!(decode(b"short").is_none());
        assert!(decode(&[0u8; 20]).is_none(), "unknown kind");
        let mut not_found_with_body = encode(1, Duration::ZERO, None);
        not_found_with_body.push(1);
        assert!(decode(&not_found_with_body).is_none());
    }
}
