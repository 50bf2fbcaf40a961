//! Trace readers: turn a trace file into the sequence of keys it requests.
//!
//! This module owns the on-disk formats (see [`Format`]) and the errors a malformed file
//! yields. Input may be gzip-compressed or plain: the first two bytes decide, so the files
//! are read as distributed. Every error names the file and where in it the problem is: the
//! line for the text formats, the byte offset (in the decompressed stream) for the binary one.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::str::FromStr;

use flate2::bufread::MultiGzDecoder;

/// The first two bytes of every gzip member.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// One `oracle-general` record: `u32` timestamp, `u64` key, `u32` size, `i64` next access.
const ORACLE_RECORD: usize = 24;
/// Where the key sits inside an `oracle-general` record.
const ORACLE_KEY: std::ops::Range<usize> = 4..12;
/// How much of an offending line an error message quotes.
const QUOTE_CHARS: usize = 40;

/// A trace file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One decimal key per line; blank lines and lines that are `*` are skipped.
    Lirs,
    /// One decimal unsigned 64-bit key per line: read exactly like [`Format::Lirs`].
    Keys,
    /// Lines `start count x y`, each the `count` consecutive keys from `start`; `x` and `y`
    /// are ignored. Blank lines are skipped.
    Arc,
    /// libCacheSim's binary format: little-endian 24-byte records `u32 timestamp, u64 key,
    /// u32 object size, i64 next access`. Only the key is used (entries are unit-size).
    OracleGeneral,
}

impl Format {
    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::Lirs => "lirs",
            Format::Keys => "keys",
            Format::Arc => "arc",
            Format::OracleGeneral => "oracle-general",
        }
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(name: &str) -> Result<Format, String> {
        [
            Format::Lirs,
            Format::Keys,
            Format::Arc,
            Format::OracleGeneral,
        ]
        .into_iter()
        .find(|format| format.name() == name)
        .ok_or_else(|| {
            format!("unknown trace format `{name}`: expected lirs, keys, arc or oracle-general")
        })
    }
}

/// Where in a trace a problem was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// The file as a whole (it could not be opened, or holds no request).
    File,
    /// A line of a text format, counted from 1.
    Line(u64),
    /// A byte offset into the decompressed content of a binary format.
    Byte(u64),
}

/// A trace that could not be read: the file, where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceError {
    /// The trace's path, as given.
    pub file: String,
    /// Where in the file the problem is.
    pub location: Location,
    /// What is wrong there.
    pub message: String,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Location::File => write!(f, "{}: {}", self.file, self.message),
            Location::Line(line) => write!(f, "{}: line {line}: {}", self.file, self.message),
            Location::Byte(offset) => write!(f, "{}: byte {offset}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for TraceError {}

/// Reads every request of the trace at `path`.
pub fn read_file(path: &Path, format: Format) -> Result<Vec<u64>, TraceError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|e| TraceError {
        file: name.clone(),
        location: Location::File,
        message: format!("cannot open: {e}"),
    })?;
    parse(file, format, &name)
}

/// Reads every request of a trace from `input`, gzip-compressed or not; `name` is the file
/// name errors report. A trace without a single request is an error.
pub fn parse(input: impl Read, format: Format, name: &str) -> Result<Vec<u64>, TraceError> {
    let fail = |location, message| TraceError {
        file: name.to_string(),
        location,
        message,
    };
    let mut raw = BufReader::new(input);
    let gzip = raw
        .fill_buf()
        .map_err(|e| fail(Location::File, format!("cannot read: {e}")))?
        .starts_with(&GZIP_MAGIC);
    let mut reader: Box<dyn BufRead> = if gzip {
        Box::new(BufReader::new(MultiGzDecoder::new(raw)))
    } else {
        Box::new(raw)
    };
    let keys = match format {
        Format::Lirs | Format::Keys => read_lines(&mut reader, parse_key_line),
        Format::Arc => read_lines(&mut reader, parse_arc_line),
        Format::OracleGeneral => read_oracle(&mut reader),
    }
    .map_err(|(location, message)| fail(location, message))?;
    if keys.is_empty() {
        return Err(fail(
            Location::File,
            format!("no requests: not a {} trace?", format.name()),
        ));
    }
    Ok(keys)
}

/// What a reader reports on failure, before the file name is attached.
type Failure = (Location, String);

/// Describes a read error (of the file, or of the gzip stream inside it).
fn read_failure(location: Location, error: &io::Error) -> Failure {
    let message = match error.kind() {
        io::ErrorKind::UnexpectedEof => "truncated: the compressed stream ends early".to_string(),
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => {
            format!("corrupt gzip data: {error}")
        }
        _ => format!("cannot read: {error}"),
    };
    (location, message)
}

/// Reads a text trace line by line; `parse_line` appends the keys of one (trimmed, non-blank)
/// line or says what is wrong with it.
fn read_lines(
    reader: &mut dyn BufRead,
    parse_line: fn(&str, &mut Vec<u64>) -> Result<(), String>,
) -> Result<Vec<u64>, Failure> {
    let mut keys = Vec::new();
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        number += 1;
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => return Ok(keys),
            Ok(_) => {}
            Err(e) => return Err(read_failure(Location::Line(number), &e)),
        }
        let text = std::str::from_utf8(&line)
            .map_err(|_| {
                (
                    Location::Line(number),
                    "not text (invalid UTF-8)".to_string(),
                )
            })?
            .trim();
        if !text.is_empty() {
            parse_line(text, &mut keys).map_err(|message| (Location::Line(number), message))?;
        }
    }
}

/// A `lirs` or `keys` line: one decimal key, or `*` (a separator, skipped).
fn parse_key_line(text: &str, keys: &mut Vec<u64>) -> Result<(), String> {
    if text != "*" {
        keys.push(parse_u64(text, "key")?);
    }
    Ok(())
}

/// An `arc` line: `start count x y`, the keys `start .. start + count`.
fn parse_arc_line(text: &str, keys: &mut Vec<u64>) -> Result<(), String> {
    let fields: Vec<&str> = text.split_ascii_whitespace().collect();
    let [start, count, _, _] = fields[..] else {
        return Err(format!(
            "expected 4 fields `start count x y`, found {} in `{}`",
            fields.len(),
            quote(text)
        ));
    };
    let start = parse_u64(start, "start")?;
    let count = parse_u64(count, "count")?;
    if count > 0 && start.checked_add(count - 1).is_none() {
        return Err(format!(
            "start {start} + count {count} runs past the largest key"
        ));
    }
    keys.extend((0..count).map(|i| start + i));
    Ok(())
}

fn parse_u64(field: &str, what: &str) -> Result<u64, String> {
    field.parse().map_err(|_| {
        format!(
            "expected a decimal unsigned 64-bit {what}, found `{}`",
            quote(field)
        )
    })
}

/// The start of `text`, short enough for an error message.
fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

/// Reads `oracle-general` records to the end; a partial last record is an error.
fn read_oracle(reader: &mut dyn BufRead) -> Result<Vec<u64>, Failure> {
    let mut keys = Vec::new();
    let mut record = [0u8; ORACLE_RECORD];
    let mut offset = 0u64;
    loop {
        let mut filled = 0;
        while filled < ORACLE_RECORD {
            match reader.read(&mut record[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(read_failure(Location::Byte(offset + filled as u64), &e)),
            }
        }
        match filled {
            0 => return Ok(keys),
            ORACLE_RECORD => {}
            _ => {
                return Err((
                    Location::Byte(offset),
                    format!("truncated record: {filled} of {ORACLE_RECORD} bytes"),
                ))
            }
        }
        let key = record[ORACLE_KEY]
            .try_into()
            .expect("the key field is 8 bytes");
        keys.push(u64::from_le_bytes(key));
        offset += ORACLE_RECORD as u64;
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::write::GzEncoder;
    use flate2::Compression;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn oracle_record(key: u64) -> Vec<u8> {
        let mut record = Vec::new();
        record.extend_from_slice(&7u32.to_le_bytes());
        record.extend_from_slice(&key.to_le_bytes());
        record.extend_from_slice(&512u32.to_le_bytes());
        record.extend_from_slice(&(-1i64).to_le_bytes());
        record
    }

    fn error(input: &[u8], format: Format) -> TraceError {
        parse(input, format, "sample").unwrap_err()
    }

    #[test]
    fn formats_by_name() {
        for name in ["lirs", "keys", "arc", "oracle-general"] {
            assert_eq!(name.parse::<Format>().unwrap().name(), name);
        }
        let e = "csv".parse::<Format>().unwrap_err();
        assert!(e.contains("unknown trace format `csv`"), "{e}");
    }

    #[test]
    fn lirs_skips_blanks_and_stars() {
        let text = b"5\n*\n\n  7 \r\n18446744073709551615";
        assert_eq!(
            parse(&text[..], Format::Lirs, "t").unwrap(),
            [5, 7, u64::MAX]
        );
        assert_eq!(
            parse(&text[..], Format::Keys, "t").unwrap(),
            [5, 7, u64::MAX]
        );
    }

    #[test]
    fn lirs_reports_the_bad_line() {
        let e = error(b"1\n2\nx3\n", Format::Lirs);
        assert_eq!(e.location, Location::Line(3));
        assert_eq!(
            e.to_string(),
            "sample: line 3: expected a decimal unsigned 64-bit key, found `x3`"
        );
        assert_eq!(error(b"1\n-4\n", Format::Keys).location, Location::Line(2));
        assert_eq!(
            error(b"1\n\xff\n", Format::Keys).location,
            Location::Line(2)
        );
    }

    #[test]
    fn arc_expands_runs() {
        let text = b"10 3 0 0\n\n2 1 0 0\n4 0 0 0\n";
        assert_eq!(parse(&text[..], Format::Arc, "t").unwrap(), [10, 11, 12, 2]);
        let e = error(b"1 1 0 0\n1 2\n", Format::Arc);
        assert_eq!(e.location, Location::Line(2));
        assert!(e.message.contains("expected 4 fields"), "{e}");
        let e = error(b"18446744073709551615 2 0 0\n", Format::Arc);
        assert_eq!(e.location, Location::Line(1));
        assert!(e.message.contains("past the largest key"), "{e}");
    }

    #[test]
    fn oracle_reads_keys_and_rejects_a_partial_record() {
        let mut data = oracle_record(42);
        data.extend(oracle_record(u64::MAX - 1));
        assert_eq!(
            parse(&data[..], Format::OracleGeneral, "t").unwrap(),
            [42, u64::MAX - 1]
        );
        data.truncate(24 + 10);
        let e = error(&data, Format::OracleGeneral);
        assert_eq!(e.location, Location::Byte(24));
        assert_eq!(
            e.to_string(),
            "sample: byte 24: truncated record: 10 of 24 bytes"
        );
    }

    #[test]
    fn gzip_is_read_directly() {
        let text = b"1\n2\n3\n";
        assert_eq!(
            parse(&gzip(text)[..], Format::Lirs, "t").unwrap(),
            [1, 2, 3]
        );
        let binary: Vec<u8> = [3, 1, 4].into_iter().flat_map(oracle_record).collect();
        assert_eq!(
            parse(&gzip(&binary)[..], Format::OracleGeneral, "t").unwrap(),
            [3, 1, 4]
        );
        // Concatenated members, as `cat a.gz b.gz` makes, are one stream.
        let mut two = gzip(b"1\n2\n");
        two.extend(gzip(b"3\n"));
        assert_eq!(parse(&two[..], Format::Keys, "t").unwrap(), [1, 2, 3]);
    }

    #[test]
    fn truncated_gzip_is_an_error_at_the_line_it_cuts() {
        let text: String = (0..20_000).map(|i| format!("{i}\n")).collect();
        let compressed = gzip(text.as_bytes());
        let e = error(&compressed[..compressed.len() / 2], Format::Lirs);
        let Location::Line(line) = e.location else {
            panic!("expected a line, got {e}");
        };
        assert!(line > 1 && line <= 20_000, "{e}");
        assert!(e.message.contains("truncated"), "{e}");
    }

    #[test]
    fn corrupt_gzip_is_an_error() {
        // A wrong checksum in the trailer: the data decode, then the check fails at the end.
        let mut compressed = gzip(b"1\n2\n3\n");
        let crc = compressed.len() - 8;
        compressed[crc] ^= 0xff;
        let e = error(&compressed, Format::Lirs);
        assert_eq!(e.location, Location::Line(4));
        assert!(e.message.starts_with("corrupt gzip data:"), "{e}");
        // A gzip header followed by no valid deflate data.
        let e = error(b"\x1f\x8b\x08\x00garbagegarbage", Format::Keys);
        assert_eq!(e.location, Location::Line(1));
        assert!(e.message.starts_with("corrupt gzip data:"), "{e}");
    }

    #[test]
    fn an_empty_trace_is_an_error() {
        let e = error(b"*\n\n", Format::Lirs);
        assert_eq!(e.location, Location::File);
        assert_eq!(e.to_string(), "sample: no requests: not a lirs trace?");
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let e = read_file(Path::new("/nonexistent/t.gz"), Format::Lirs).unwrap_err();
        assert!(
            e.to_string().starts_with("/nonexistent/t.gz: cannot open:"),
            "{e}"
        );
    }
}
