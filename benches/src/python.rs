//! The Python module's get hit next to the Python caches, for the showdown's summary.
//!
//! Runs `python/benchmarks/bench.py --summary` with the interpreter of the virtual environment
//! that `scripts/python-test.sh` builds the module into (`target/python-venv`). Where that
//! environment or the module is missing, the showdown says so and leaves the row out: the
//! showdown itself needs only a Rust toolchain.

use std::path::Path;
use std::process::Command;

/// The get hit of each Python cache, ns per op, as `bench.py --summary` measured them.
pub struct GetHit {
    /// `(cache, ns per op)`, in the order measured.
    pub rows: Vec<(String, f64)>,
}

/// The caches that are not a peer to beat: the plain dict is the floor (it never evicts).
const FLOORS: [&str; 1] = ["dict"];

impl GetHit {
    /// slabcache's figure.
    pub fn slabcache(&self) -> Option<f64> {
        self.rows
            .iter()
            .find(|(name, _)| name == "slabcache")
            .map(|row| row.1)
    }

    /// The fastest peer (a cache other than slabcache and the dict floor), with its name.
    pub fn best_peer(&self) -> Option<(&str, f64)> {
        self.rows
            .iter()
            .filter(|(name, _)| name != "slabcache" && !FLOORS.contains(&name.as_str()))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(name, ns)| (name.as_str(), *ns))
    }
}

/// Measures, or says why it cannot: `Err` names what is missing or what failed.
pub fn measure(root: &Path) -> Result<GetHit, String> {
    let python = root.join("target/python-venv/bin/python");
    if !python.exists() {
        return Err(
            "the Python module is not installed (bash scripts/python-test.sh builds it \
                    into target/python-venv)"
                .into(),
        );
    }
    let output = Command::new(&python)
        .arg(root.join("python/benchmarks/bench.py"))
        .arg("--summary")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("no message");
        return Err(format!("bench.py --summary failed: {last}"));
    }
    let rows: Vec<(String, f64)> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next(), words.next()) {
                (Some("summary"), Some("get_hit"), Some(name), Some(ns)) => {
                    Some((name.to_string(), ns.parse().ok()?))
                }
                _ => None,
            }
        })
        .collect();
    let get_hit = GetHit { rows };
    if get_hit.slabcache().is_none() || get_hit.best_peer().is_none() {
        return Err(
            "bench.py --summary measured no peer to compare with (scripts/showdown.sh installs \
             python/benchmarks/requirements.txt into target/python-venv)"
                .into(),
        );
    }
    Ok(get_hit)
}
