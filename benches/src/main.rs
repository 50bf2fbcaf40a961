//! `slabcache-bench`: workloads against slabcache.
//!
//! ```text
//! slabcache-bench [demo] [--seconds S] [--threads N] [--cache-mib M] [--keys K] [--zipf S] [--seed X]
//! slabcache-bench help
//! ```
//!
//! `demo` (the default) runs a mixed, Zipf-skewed workload for a couple of seconds and prints
//! throughput, hit ratio and every statistic the cache keeps. New subcommands slot into
//! [`main`]'s match.

use std::process::ExitCode;
use std::time::Duration;

use slabcache_bench::demo::{self, DemoConfig};

const USAGE: &str = "\
usage: slabcache-bench [COMMAND] [OPTIONS]

commands:
  demo    run a mixed Zipf workload and print a report (default)
  help    print this message

demo options:
  --seconds S     how long to run            (default 2)
  --threads N     worker threads             (default 2)
  --cache-mib M   cache size in MiB          (default 64)
  --keys K        distinct keys              (default 4000000)
  --zipf S        Zipf exponent, > 0         (default 0.99)
  --seed X        workload seed              (default fixed)
";

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let command = match args.first() {
        Some(first) if !first.starts_with('-') => args.remove(0),
        _ => "demo".to_string(),
    };
    let result = match command.as_str() {
        "demo" => run_demo(&args),
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
