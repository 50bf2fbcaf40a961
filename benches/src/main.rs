//! `slabcache-bench`: workloads against slabcache.
//!
//! ```text
//! slabcache-bench [demo] [--seconds S] [--threads N] [--cache-mib M] [--keys K] [--zipf S] [--seed X]
//! slabcache-bench traces --format FORMAT --capacity N[,N...] [--json PATH] [--svg PATH] FILE...
//! slabcache-bench help
//! ```
//!
//! `demo` (the default) runs a mixed, Zipf-skewed workload for a couple of seconds and prints
//! throughput, hit ratio and every statistic the cache keeps. `traces` replays recorded
//! traces through slabcache, peer caches, LRU and Belady's optimum and tabulates their hit
//! ratios. New subcommands slot into [`main`]'s match.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use slabcache_bench::demo::{self, DemoConfig};
use slabcache_bench::traces::{self, report};

const USAGE: &str = "\
usage: slabcache-bench [COMMAND] [OPTIONS]

commands:
  demo    run a mixed Zipf workload and print a report (default)
  traces  replay cache traces and tabulate hit ratios
  help    print this message

demo options:
  --seconds S     how long to run            (default 2)
  --threads N     worker threads             (default 2)
  --cache-mib M   cache size in MiB          (default 64)
  --keys K        distinct keys              (default 4000000)
  --zipf S        Zipf exponent, > 0         (default 0.99)
  --seed X        workload seed              (default fixed)

traces options: slabcache-bench traces --format FORMAT --capacity N[,N...] FILE...
  --format F      lirs, keys, arc or oracle-general (gzip or plain)
  --capacity N,.. cache sizes in entries, comma-separated
  --json PATH     also write the results as JSON
  --svg PATH      also draw hit ratio against capacity as SVG
  FILE...         the traces; each is replayed at each capacity through
                  slabcache, moka, quick_cache, lru and opt (Belady)
";

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let command = match args.first() {
        Some(first) if !first.starts_with('-') => args.remove(0),
        _ => "demo".to_string(),
    };
    let result = match command.as_str() {
        "demo" => run_demo(&args),
        "traces" => run_traces(&args),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => Err(format!("unknown command `{other}`")),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("slabcache-bench: {message}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run_demo(args: &[String]) -> Result<ExitCode, String> {
    let mut config = DemoConfig::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            print!("{USAGE}");
            return Ok(ExitCode::SUCCESS);
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = || format!("bad value `{value}` for {flag}");
        match flag.as_str() {
            "--seconds" => {
                let s: f64 = value.parse().map_err(|_| bad())?;
                if !(s > 0.0 && s <= 3600.0) {
                    return Err(format!("--seconds must be in (0, 3600], not {value}"));
                }
                config.duration = Duration::from_secs_f64(s);
            }
            "--threads" => {
                config.threads = value.parse().map_err(|_| bad())?;
                if config.threads == 0 {
                    return Err("--threads must be at least 1".to_string());
                }
            }
            "--cache-mib" => {
                let mib: u64 = value.parse().map_err(|_| bad())?;
                config.max_bytes = mib.checked_mul(1 << 20).ok_or("--cache-mib is too large")?;
            }
            "--keys" => {
                config.key_space = value.parse().map_err(|_| bad())?;
                if config.key_space == 0 || config.key_space >= 100_000_000_000 {
                    return Err("--keys must be in 1..100000000000".to_string());
                }
            }
            "--zipf" => {
                config.zipf_exponent = value.parse().map_err(|_| bad())?;
                if !(config.zipf_exponent > 0.0 && config.zipf_exponent.is_finite()) {
                    return Err("--zipf must be a positive number".to_string());
                }
            }
            "--seed" => config.seed = value.parse().map_err(|_| bad())?,
            _ => return Err(format!("unknown option `{flag}`")),
        }
    }

    let report = demo::run(&config).map_err(|e| format!("could not build the cache: {e}"))?;
    print!("{}", report.render());
    Ok(if report.checks_passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Exit status of a trace that cannot be read, as of a bad argument.
const EXIT_BAD_INPUT: u8 = 2;

/// Renders results as the text of an output file.
type Render = fn(&[traces::Measurement]) -> String;

fn run_traces(args: &[String]) -> Result<ExitCode, String> {
    let mut format = None;
    let mut capacities = None;
    let mut json = None;
    let mut svg = None;
    let mut files = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--help" || arg == "-h" {
            print!("{USAGE}");
            return Ok(ExitCode::SUCCESS);
        }
        if !arg.starts_with("--") {
            files.push(PathBuf::from(arg));
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--format" => format = Some(value.parse()?),
            "--capacity" => capacities = Some(parse_capacities(value)?),
            "--json" => json = Some(PathBuf::from(value)),
            "--svg" => svg = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown option `{arg}`")),
        }
    }
    let config = traces::Config {
        format: format.ok_or("traces needs --format")?,
        capacities: capacities.ok_or("traces needs --capacity")?,
        files,
    };
    if config.files.is_empty() {
        return Err("traces needs at least one trace file".to_string());
    }

    let results = match traces::run(&config) {
        Ok(results) => results,
        Err(e) => {
            eprintln!("slabcache-bench: {e}");
            return Ok(ExitCode::from(match e {
                traces::Error::Trace(_) => EXIT_BAD_INPUT,
                _ => 1,
            }));
        }
    };
    print!("{}", report::markdown(&results));
    for (path, render) in [(json, report::json as Render), (svg, report::svg)] {
        let Some(path) = path else { continue };
        if let Err(e) = std::fs::write(&path, render(&results)) {
            eprintln!("slabcache-bench: cannot write {}: {e}", path.display());
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `N[,N...]`: cache sizes in entries, each from 1 to 2^31.
fn parse_capacities(list: &str) -> Result<Vec<usize>, String> {
    list.split(',')
        .map(|item| match item.trim().parse::<usize>() {
            Ok(n) if (1..=1 << 31).contains(&n) => Ok(n),
            _ => Err(format!(
                "bad capacity `{item}` in --capacity: sizes are entries, from 1 to 2147483648"
            )),
        })
        .collect()
}
