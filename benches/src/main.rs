//! `slabcache-bench`: workloads against slabcache.
//!
//! ```text
//! slabcache-bench [demo] [--seconds S] [--threads N] [--cache-mib M] [--keys K] [--zipf S] [--seed X]
//! slabcache-bench traces --format FORMAT --capacity N[,N...] [--runs N] [--json PATH] [--svg PATH] FILE...
//! slabcache-bench throughput [--quick] [--threads N[,N...]] [--json PATH] [--svg PATH]
//! slabcache-bench memory [--entries N] [--json PATH]
//! slabcache-bench stampede [--threads N[,N...]] [--seconds S] [--json PATH]
//! slabcache-bench showdown [--json PATH]
//! slabcache-bench help
//! ```
//!
//! `demo` (the default) runs a mixed, Zipf-skewed workload for a couple of seconds and prints
//! throughput, hit ratio and every statistic the cache keeps. `traces` replays recorded
//! traces through slabcache, peer caches, LRU and Belady's optimum and tabulates their hit
//! ratios. `throughput` and `memory` measure slabcache next to its peers; `stampede` lets a hot
//! key expire under concurrent reads with each caching strategy; `showdown` runs the quick
//! throughput set, memory, three shipped traces and a short stampede as one report (the
//! README's main command). New subcommands slot into [`main`]'s match.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use slabcache_bench::demo::{self, DemoConfig};
use slabcache_bench::peers::Peer;
use slabcache_bench::traces::{self, report};
use slabcache_bench::{memory, showdown, stampede, throughput};

const USAGE: &str = "\
usage: slabcache-bench [COMMAND] [OPTIONS]

commands:
  demo        run a mixed Zipf workload and print a report (default)
  traces      replay cache traces and tabulate hit ratios
  throughput  Mops/s and latency of slabcache and its peers
  memory      resident bytes per entry of slabcache and its peers
  stampede    a hot key expiring under load: loads and reader latency
  showdown    quick throughput, memory, hit ratio and stampede as one report
  help        print this message

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
  --runs N        replay slabcache N times (its hash seeds are random) and
                  report the median run, with the lowest and highest
  --json PATH     also write the results as JSON
  --svg PATH      also draw hit ratio against capacity as SVG
  FILE...         the traces; each is replayed at each capacity through
                  slabcache, moka, quick_cache, lru and opt (Belady)

throughput options: slabcache, moka, quick_cache, mini_moka, stretto and
locked_lru; Zipf 0.99 and uniform keys over 1M ids, 100k entries, read-only,
95/5, 50/50 and insert-only mixes, 1, 2 and 4 threads, median of 5 x 1 s
  --quick           Zipf only, 1 and 2 threads, median of 3 x 0.3 s
  --threads N,..    thread counts instead of the default
  --caches A,..     only these caches (names as above)
  --json PATH       also write the results as JSON
  --svg PATH        also draw Mops/s against threads as SVG

memory options: each cache filled with 16-byte keys and 64-byte values in a
child process of its own; resident bytes per entry and overhead past 80 bytes
  --entries N       entries per cache (default 1000000)
  --json PATH       also write the results as JSON

stampede options: one hot key, TTL 100 ms, read in a loop by every thread
over a source that takes 1 ms per load; cache-aside, get_or_load, Backed with
stale-while-revalidate, Backed with early expiry (XFetch) and moka's get_with;
then a get_or_load hit against a get hit
  --threads N,..    thread counts (default 2)
  --seconds S       seconds per strategy and thread count (default 2)
  --json PATH       also write the results as JSON

showdown options:
  --json PATH       also write every part's results as one JSON document
";

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let command = match args.first() {
        Some(first) if !first.starts_with('-') => args.remove(0),
        _ => "demo".to_string(),
    };
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let result = match command.as_str() {
        "demo" => run_demo(&args),
        "traces" => run_traces(&args),
        "throughput" => run_throughput(&args),
        "memory" => run_memory(&args),
        memory::CHILD_COMMAND => run_memory_child(&args),
        "stampede" => run_stampede(&args),
        "showdown" => run_showdown(&args),
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
    let mut runs = 1;
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
            "--capacity" => {
                capacities = Some(parse_list(
                    value,
                    "--capacity (sizes are entries, from 1 to 2147483648)",
                    |n: &usize| (1..=1 << 31).contains(n),
                )?)
            }
            "--json" => json = Some(PathBuf::from(value)),
            "--svg" => svg = Some(PathBuf::from(value)),
            "--runs" => {
                runs = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or("--runs needs a number of runs from 1 to 1000")?
            }
            _ => return Err(format!("unknown option `{arg}`")),
        }
    }
    let config = traces::Config {
        format: format.ok_or("traces needs --format")?,
        capacities: capacities.ok_or("traces needs --capacity")?,
        files,
        runs,
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

/// Writes `text` to `path`, or says why it could not.
fn write_file(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The options every measuring subcommand parses: `--json`, `--svg` and its own; `own`
/// handles a flag and its value and says whether it knew the flag.
fn parse_options(
    args: &[String],
    mut own: impl FnMut(&str, &str) -> Result<bool, String>,
    mut flag: impl FnMut(&str) -> bool,
) -> Result<(Option<PathBuf>, Option<PathBuf>), String> {
    let (mut json, mut svg) = (None, None);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if flag(arg) {
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--json" => json = Some(PathBuf::from(value)),
            "--svg" => svg = Some(PathBuf::from(value)),
            _ if own(arg, value)? => {}
            _ => return Err(format!("unknown option `{arg}`")),
        }
    }
    Ok((json, svg))
}

/// Prints a progress line on stderr.
fn progress(line: &str) {
    eprintln!("  {line}");
}

fn run_throughput(args: &[String]) -> Result<ExitCode, String> {
    let mut quick = false;
    let mut threads = None;
    let mut caches = None;
    let (json, svg) = parse_options(
        args,
        |flag, value| {
            match flag {
                "--threads" => threads = Some(parse_list(value, "--threads", |n: &usize| *n >= 1)?),
                "--caches" => {
                    caches = Some(
                        value
                            .split(',')
                            .map(|name| {
                                Peer::from_name(name.trim())
                                    .ok_or_else(|| format!("unknown cache `{name}` in --caches"))
                            })
                            .collect::<Result<Vec<_>, _>>()?,
                    )
                }
                _ => return Ok(false),
            }
            Ok(true)
        },
        |flag| {
            let known = flag == "--quick";
            quick |= known;
            known
        },
    )?;
    let mut config = if quick {
        throughput::Config::quick()
    } else {
        throughput::Config::full()
    };
    if let Some(threads) = threads {
        config.threads = threads;
    }
    if let Some(caches) = caches {
        config.peers = caches;
    }
    eprintln!("throughput on {}", showdown::machine());
    let report = throughput::run(&config, &mut progress);
    print!("{}", report.markdown());
    if let Some(path) = json {
        write_file(&path, &report.json())?;
    }
    if let Some(path) = svg {
        write_file(&path, &report.svg())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn run_memory(args: &[String]) -> Result<ExitCode, String> {
    let mut entries = memory::DEFAULT_ENTRIES;
    let (json, svg) = parse_options(
        args,
        |flag, value| {
            if flag != "--entries" {
                return Ok(false);
            }
            entries = parse_number(value, "--entries", |n: &u64| (1..=1 << 32).contains(n))?;
            Ok(true)
        },
        |_| false,
    )?;
    if svg.is_some() {
        return Err("memory draws no chart; --svg is not an option of it".to_string());
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let report = memory::run(&exe, entries, &mut progress)?;
    print!("{}", report.markdown());
    if let Some(path) = json {
        write_file(&path, &report.json())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The hidden child of `memory`: `memory-child CACHE ENTRIES`.
fn run_memory_child(args: &[String]) -> Result<ExitCode, String> {
    let [cache, entries] = args else {
        return Err(format!("{} needs CACHE ENTRIES", memory::CHILD_COMMAND));
    };
    let entries = entries
        .parse()
        .map_err(|_| format!("bad entry count `{entries}`"))?;
    println!("{}", memory::child_main(cache, entries)?);
    Ok(ExitCode::SUCCESS)
}

fn run_stampede(args: &[String]) -> Result<ExitCode, String> {
    let mut config = stampede::Config::standard();
    let (json, svg) = parse_options(
        args,
        |flag, value| {
            match flag {
                "--threads" => {
                    config.threads = parse_list(value, "--threads", |n: &usize| *n >= 1)?
                }
                "--seconds" => {
                    config.run_secs =
                        parse_number(value, "--seconds", |s: &f64| *s > 0.0 && *s <= 3600.0)?
                }
                _ => return Ok(false),
            }
            Ok(true)
        },
        |_| false,
    )?;
    if svg.is_some() {
        return Err("stampede draws no chart; --svg is not an option of it".to_string());
    }
    eprintln!("stampede on {}", showdown::machine());
    let report = stampede::run(&config, &mut progress);
    print!("{}", report.markdown());
    if let Some(path) = json {
        write_file(&path, &report.json())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn run_showdown(args: &[String]) -> Result<ExitCode, String> {
    let (json, svg) = parse_options(args, |_, _| Ok(false), |_| false)?;
    if svg.is_some() {
        return Err("showdown draws no chart; --svg is an option of throughput".to_string());
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let started = std::time::Instant::now();
    eprintln!("showdown on {}", showdown::machine());
    let report = showdown::run(&showdown::Config::standard(exe), &mut progress)?;
    print!("{}", report.markdown());
    println!(
        "
Measured in {:.0} s on this machine.",
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = json {
        write_file(&path, &report.json())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `N[,N...]` of numbers that satisfy `valid`.
fn parse_list<T: std::str::FromStr>(
    list: &str,
    flag: &str,
    valid: impl Fn(&T) -> bool,
) -> Result<Vec<T>, String> {
    list.split(',')
        .map(|item| parse_number(item, flag, &valid))
        .collect()
}

/// One number that satisfies `valid`.
fn parse_number<T: std::str::FromStr>(
    item: &str,
    flag: &str,
    valid: impl Fn(&T) -> bool,
) -> Result<T, String> {
    item.trim()
        .parse::<T>()
        .ok()
        .filter(|n| valid(n))
        .ok_or_else(|| format!("bad value `{item}` in {flag}"))
}
