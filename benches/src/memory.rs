//! `slabcache-bench memory`: what each cache costs in resident memory per entry.
//!
//! Each cache, in a process of its own, is built to hold N entries ([`DEFAULT_ENTRIES`] by
//! default) of a 16-byte key and a 64-byte value, and filled with that many. The growth of the
//! process's resident set from before the cache was built to after it was filled, over the
//! entries it then holds, is its bytes per entry; that less the 80 payload bytes is its
//! overhead per entry.
//!
//! A process per cache, because a process never gives all its memory back: the allocator keeps
//! freed blocks for reuse, and pages once touched stay resident. Measured one after another in
//! one process, a cache could move into the memory its predecessor left behind and look free,
//! or find the heap fragmented by it and look dear. The parent ([`run`]) re-runs its own
//! executable as `slabcache-bench memory-child CACHE ENTRIES` ([`CHILD_COMMAND`]), which calls
//! [`child_main`] and prints one line of JSON.
//!
//! Caveats. The resident set counts memory that was touched, not memory that was reserved:
//! slabcache maps its whole arena up front but the OS commits it page by page as entries are
//! written, so the figure is what the entries occupy, not the configured `max_bytes`; likewise
//! for any cache's table allocated but not yet written. It does count what a cache's allocator
//! retains after the cache's own growth (a hash table's old, smaller copies), which the
//! process pays for all the same. With transparent huge pages, slabcache's mappings are
//! committed 2 MiB at a time, a rounding of at most a few bytes per entry at a million
//! entries. The resident set is read from `/proc/self/status`, so this runs on Linux only.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use crate::peers::{self, Peer, KEY_LEN, VALUE_LEN};
use crate::text::json_string;

/// Entries each cache is filled with, unless the caller asks for another number.
pub const DEFAULT_ENTRIES: u64 = 1_000_000;
/// The hidden subcommand that measures one cache: `memory-child CACHE ENTRIES`.
pub const CHILD_COMMAND: &str = "memory-child";
/// Key and value bytes of one entry: what any cache must store at least.
pub const PAYLOAD_BYTES: f64 = (KEY_LEN + VALUE_LEN) as f64;

/// One cache's measurement, as its child process reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measurement {
    /// The cache measured.
    pub peer: Peer,
    /// Entries inserted, and how many of them the cache held afterwards.
    pub inserted: u64,
    /// Entries the cache held after the inserts.
    pub held: u64,
    /// The process's resident set, in bytes, before the cache was built and after it was
    /// filled.
    pub rss_before: u64,
    /// The resident set after the cache was filled, in bytes.
    pub rss_after: u64,
}

impl Measurement {
    /// Resident bytes the cache added per entry it holds.
    pub fn bytes_per_entry(&self) -> f64 {
        (self.rss_after as f64 - self.rss_before as f64) / self.held.max(1) as f64
    }

    /// Resident bytes per entry beyond the entry's key and value.
    pub fn overhead_per_entry(&self) -> f64 {
        self.bytes_per_entry() - PAYLOAD_BYTES
    }

    /// Whether the cache held under 99% of the entries, though sized for all of them.
    pub fn held_few(&self) -> bool {
        self.held < self.inserted - self.inserted / 100
    }
}

/// The results of a `memory` run, slabcache first, then the peers in [`Peer::ALL`]'s order.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// One measurement per cache.
    pub results: Vec<Measurement>,
}

impl Report {
    /// `{"results":[{"cache":…,"entries":…,"bytes_per_entry":…,"overhead_per_entry":…}, …]}`,
    /// `entries` being the entries held and the figures in bytes to one decimal.
    pub fn json(&self) -> String {
        let mut out = String::from("{\"results\":[");
        for (i, m) in self.results.iter().enumerate() {
            let _ = write!(
                out,
                "{}\n  {{\"cache\":{},\"entries\":{},\"bytes_per_entry\":{:.1},\"overhead_per_entry\":{:.1}}}",
                if i == 0 { "" } else { "," },
                json_string(m.peer.name()),
                m.held,
                m.bytes_per_entry(),
                m.overhead_per_entry()
            );
        }
        out.push_str("\n]}\n");
        out
    }

    /// A Markdown table, a row per cache, and slabcache's overhead against the best peer's.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "Resident memory per entry held, {KEY_LEN}-byte keys and {VALUE_LEN}-byte values, each \
             cache in a fresh process and sized to hold every entry inserted; overhead is what \
             an entry costs beyond its {PAYLOAD_BYTES} payload bytes.\n\n\
             | cache | entries held | bytes/entry | overhead/entry |\n|---|---:|---:|---:|\n"
        );
        for m in &self.results {
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} | {:.1} |",
                m.peer.name(),
                m.held,
                m.bytes_per_entry(),
                m.overhead_per_entry()
            );
        }
        for m in self.results.iter().filter(|m| m.held_few()) {
            let _ = writeln!(
                out,
                "\n{} held only {} of the {} entries inserted: its fixed costs are spread over \
                 those few, and its figures are not comparable with the others'.",
                m.peer.name(),
                m.held,
                m.inserted
            );
        }
        if let (Some(ours), Some(best)) = (self.slabcache_overhead(), self.best_peer()) {
            let theirs = best.overhead_per_entry();
            let ratio = if theirs > 0.0 {
                format!("{:.2}x", ours / theirs)
            } else {
                "n/a".to_string()
            };
            let _ = writeln!(
                out,
                "\nslabcache's overhead per entry is {ratio} the lowest peer's ({}, {theirs:.1} bytes).",
                best.peer.name()
            );
        }
        out
    }

    /// slabcache's overhead per entry, if it was measured.
    pub fn slabcache_overhead(&self) -> Option<f64> {
        self.results
            .iter()
            .find(|m| m.peer == Peer::Slabcache)
            .map(Measurement::overhead_per_entry)
    }

    /// The peer (not slabcache) with the lowest overhead per entry.
    pub fn best_peer(&self) -> Option<&Measurement> {
        self.results
            .iter()
            .filter(|m| m.peer != Peer::Slabcache)
            .min_by(|a, b| a.overhead_per_entry().total_cmp(&b.overhead_per_entry()))
    }
}

/// Measures every cache of [`Peer::ALL`], each in a child process running `exe`
/// [`CHILD_COMMAND`]; `progress` hears of each cache as its measurement starts.
pub fn run(exe: &Path, entries: u64, progress: &mut dyn FnMut(&str)) -> Result<Report, String> {
    let mut results = Vec::new();
    for peer in Peer::ALL {
        progress(&format!("{}: {entries} entries", peer.name()));
        let output = Command::new(exe)
            .args([CHILD_COMMAND, peer.name(), &entries.to_string()])
            .output()
            .map_err(|e| format!("cannot run {} for {}: {e}", exe.display(), peer.name()))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            return Err(format!(
                "measuring {} failed ({}): {}",
                peer.name(),
                output.status,
                stderr.trim()
            ));
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout.lines().rev().find(|l| !l.trim().is_empty());
        let measurement = line.and_then(parse_child_line).ok_or_else(|| {
            format!(
                "measuring {}: unreadable report `{}`",
                peer.name(),
                stdout.trim()
            )
        })?;
        if measurement.peer != peer {
            return Err(format!(
                "measuring {}: the child reported on {}",
                peer.name(),
                measurement.peer.name()
            ));
        }
        results.push(measurement);
    }
    Ok(Report { results })
}

/// The child's side: builds the cache named `peer_name` for `entries` entries, fills it, and
/// returns its [`Measurement`] as one line of JSON for the parent.
pub fn child_main(peer_name: &str, entries: u64) -> Result<String, String> {
    let peer = Peer::from_name(peer_name).ok_or_else(|| format!("unknown cache `{peer_name}`"))?;
    let capacity = usize::try_from(entries)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("bad entry count {entries}"))?;
    let rss_before = resident_bytes()?;
    let cache = peer.build(capacity);
    for id in 0..entries {
        cache.insert(&peers::key(id), &peers::value(id));
    }
    cache.settle();
    let rss_after = resident_bytes()?;
    // Counted after the second reading, so that what lookups allocate or touch (read buffers,
    // the scratch value) is not charged to the entries.
    let mut scratch = Vec::new();
    let held = (0..entries)
        .filter(|&id| cache.get(&peers::key(id), &mut scratch))
        .count() as u64;
    drop(cache);
    if held == 0 {
        return Err(format!("{peer_name} held none of the {entries} entries"));
    }
    Ok(child_line(&Measurement {
        peer,
        inserted: entries,
        held,
        rss_before,
        rss_after,
    }))
}

fn child_line(m: &Measurement) -> String {
    format!(
        "{{\"cache\":{},\"inserted\":{},\"held\":{},\"rss_before\":{},\"rss_after\":{}}}",
        json_string(m.peer.name()),
        m.inserted,
        m.held,
        m.rss_before,
        m.rss_after
    )
}

/// Reads a line made by [`child_line`].
fn parse_child_line(line: &str) -> Option<Measurement> {
    let number = |field: &str| -> Option<u64> {
        let rest = &line[line.find(&format!("\"{field}\":"))? + field.len() + 3..];
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        rest[..end].parse().ok()
    };
    // Cache names are plain identifiers: no escapes to undo.
    let name = line.split("\"cache\":\"").nth(1)?.split('"').next()?;
    Some(Measurement {
        peer: Peer::from_name(name)?,
        inserted: number("inserted")?,
        held: number("held")?,
        rss_before: number("rss_before")?,
        rss_after: number("rss_after")?,
    })
}

/// This process's resident set in bytes.
fn resident_bytes() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status (Linux only): {e}"))?;
    vm_rss(&status).ok_or_else(|| "no VmRSS line in /proc/self/status".to_string())
}

/// The `VmRSS:` line of a `/proc/PID/status` text, in bytes (the kernel writes kB).
fn vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measurement(peer: Peer, held: u64, growth: u64) -> Measurement {
        Measurement {
            peer,
            inserted: 1000,
            held,
            rss_before: 5 << 20,
            rss_after: (5 << 20) + growth,
        }
    }

    fn sample() -> Report {
        Report {
            results: vec![
                measurement(Peer::Slabcache, 1000, 150_000),
                measurement(Peer::Moka, 1000, 250_000),
                measurement(Peer::QuickCache, 990, 118_800),
            ],
        }
    }

    #[test]
    fn vm_rss_is_read_in_bytes() {
        let status = "Name:\tslabcache-bench\nVmPeak:\t  20000 kB\nVmRSS:\t    4312 kB\nRssAnon:\t 1000 kB\n";
        assert_eq!(vm_rss(status), Some(4312 * 1024));
        assert_eq!(vm_rss("Name:\tx\nVmHWM:\t 12 kB\n"), None);
        assert_eq!(vm_rss("VmRSS:\t12 MB\n"), None);
    }

    #[test]
    fn child_lines_round_trip() {
        let m = measurement(Peer::MiniMoka, 997, 123_456);
        let line = child_line(&m);
        assert_eq!(
            line,
            "{\"cache\":\"mini_moka\",\"inserted\":1000,\"held\":997,\"rss_before\":5242880,\"rss_after\":5366336}"
        );
        assert_eq!(parse_child_line(&line), Some(m));
        assert_eq!(
            parse_child_line("{\"cache\":\"memcached\",\"inserted\":1}"),
            None
        );
        assert_eq!(parse_child_line(&line.replace("\"held\":997,", "")), None);
    }

    #[test]
    fn per_entry_figures_are_over_the_entries_held() {
        let m = measurement(Peer::QuickCache, 990, 118_800);
        assert_eq!(m.bytes_per_entry(), 120.0);
        assert_eq!(m.overhead_per_entry(), 40.0);
    }

    #[test]
    fn json_has_the_documented_shape() {
        assert_eq!(
            sample().json(),
            "{\"results\":[\n  \
             {\"cache\":\"slabcache\",\"entries\":1000,\"bytes_per_entry\":150.0,\"overhead_per_entry\":70.0},\n  \
             {\"cache\":\"moka\",\"entries\":1000,\"bytes_per_entry\":250.0,\"overhead_per_entry\":170.0},\n  \
             {\"cache\":\"quick_cache\",\"entries\":990,\"bytes_per_entry\":120.0,\"overhead_per_entry\":40.0}\n]}\n"
        );
    }

    #[test]
    fn markdown_compares_slabcache_with_the_lowest_peer() {
        let report = sample();
        assert_eq!(report.slabcache_overhead(), Some(70.0));
        assert_eq!(report.best_peer().map(|m| m.peer), Some(Peer::QuickCache));
        let table = report.markdown();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[2],
            "| cache | entries held | bytes/entry | overhead/entry |"
        );
        assert_eq!(lines[5], "| moka | 1000 | 250.0 | 170.0 |");
        assert!(
            table.ends_with("is 1.75x the lowest peer's (quick_cache, 40.0 bytes).\n"),
            "{table}"
        );
        assert!(!table.contains("held only"), "{table}");
    }

    #[test]
    fn markdown_flags_a_cache_that_held_few_entries() {
        let mut report = sample();
        report.results.push(measurement(Peer::Stretto, 15, 90_000));
        let table = report.markdown();
        assert!(
            table.contains("\nstretto held only 15 of the 1000 entries inserted:"),
            "{table}"
        );
        assert!(
            !table.contains("quick_cache held only"),
            "990 of 1000 is enough"
        );
    }

    #[test]
    fn a_bad_child_request_is_an_error() {
        assert!(child_main("memcached", 10)
            .unwrap_err()
            .contains("memcached"));
        assert!(child_main("slabcache", 0).is_err());
    }

    #[test]
    fn a_failing_child_is_an_error_naming_the_cache_and_its_stderr() {
        let mut heard = Vec::new();
        // sh takes `memory-child` for a script to run, and says it cannot open it.
        let error = run(Path::new("/bin/sh"), 10, &mut |m| heard.push(m.to_string())).unwrap_err();
        assert!(error.starts_with("measuring slabcache failed"), "{error}");
        assert!(error.contains("memory-child"), "{error}");
        assert_eq!(heard, ["slabcache: 10 entries"]);
        let error = run(Path::new("/nonexistent/bench"), 10, &mut |_| {}).unwrap_err();
        assert!(
            error.starts_with("cannot run /nonexistent/bench for slabcache"),
            "{error}"
        );
    }

    /// The real thing, in this process (the other tests' memory may blur it, so the bounds are
    /// loose): slabcache's 200,000 entries must cost at least their payload, and less than a
    /// kilobyte each.
    #[test]
    fn slabcache_costs_at_least_its_payload() {
        let line = child_main("slabcache", 200_000).unwrap();
        let m = parse_child_line(&line).unwrap();
        assert_eq!(
            (m.peer, m.inserted, m.held),
            (Peer::Slabcache, 200_000, 200_000)
        );
        let bytes = m.bytes_per_entry();
        assert!(
            bytes > PAYLOAD_BYTES && bytes < 1024.0,
            "{bytes} bytes per entry"
        );
    }
}
