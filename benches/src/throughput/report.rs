//! What a throughput run found, and its renderings: the text table, Markdown, JSON and SVG.

use std::fmt::Write as _;

use super::config::{Config, Mix, Op, Workload, LATENCY_THREADS, SAMPLE_EVERY, ZIPF_EXPONENT};
use crate::peers::Peer;
use crate::text::{
    json_string, panel_origin, polyline, svg_start, xml_escape, y_grid_line, BOTTOM, LEFT,
    PANEL_HEIGHT, PANEL_WIDTH, RIGHT, TOP,
};

/// One throughput measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The cache measured.
    pub cache: Peer,
    /// How its keys were chosen.
    pub workload: Workload,
    /// Its get / insert mix.
    pub mix: Mix,
    /// Threads running the mix at once.
    pub threads: usize,
    /// Operations of all threads together, in millions per second (median of the runs).
    pub mops: f64,
}

/// Latency percentiles of one operation of one cache, in nanoseconds (one clock read
/// included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latency {
    /// The cache measured.
    pub cache: Peer,
    /// The operation timed.
    pub op: Op,
    /// Median latency.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
}

/// The outcome of [`run`].
#[derive(Debug, Clone)]
pub struct Report {
    /// The settings the run used.
    pub config: Config,
    /// In the order measured: workload, mix, thread count, cache.
    pub results: Vec<Point>,
    /// Nanoseconds per lookup in the unsynchronised map (median of the runs).
    pub floor_ns: f64,
    /// Get, then insert, for each cache in turn.
    pub latency: Vec<Latency>,
}

impl Report {
    /// The measured Mops/s of `cache` at a point, if it was measured.
    pub fn mops(&self, cache: Peer, workload: Workload, mix: Mix, threads: usize) -> Option<f64> {
        self.results
            .iter()
            .find(|p| {
                p.cache == cache && p.workload == workload && p.mix == mix && p.threads == threads
            })
            .map(|p| p.mops)
    }

    /// slabcache's throughput divided by the best peer's at a point (above 1: slabcache is
    /// ahead); `None` unless slabcache and at least one peer were measured there.
    pub fn ratio_to_best_peer(&self, workload: Workload, mix: Mix, threads: usize) -> Option<f64> {
        let ours = self.mops(Peer::Slabcache, workload, mix, threads)?;
        Some(ours / self.best_peer_mops(workload, mix, threads)?)
    }

    /// The highest Mops/s of a peer (not slabcache) at a point, if any peer was measured.
    pub fn best_peer_mops(&self, workload: Workload, mix: Mix, threads: usize) -> Option<f64> {
        self.config
            .peers
            .iter()
            .filter(|&&peer| peer != Peer::Slabcache)
            .filter_map(|&peer| self.mops(peer, workload, mix, threads))
            .reduce(f64::max)
    }

    /// Nanoseconds per get of slabcache on one thread, Zipf read-only, if measured.
    pub fn slabcache_get_ns(&self) -> Option<f64> {
        self.mops(Peer::Slabcache, Workload::Zipf, Mix::Read, 1)
            .map(|mops| 1e3 / mops)
    }

    /// [`slabcache_get_ns`](Self::slabcache_get_ns) as a multiple of the floor.
    pub fn floor_multiple(&self) -> Option<f64> {
        self.slabcache_get_ns().map(|ns| ns / self.floor_ns)
    }

    /// `{"results":[{"cache","workload","mix","threads","mops"}, …],"floor_ns":…,
    /// "latency":[{"cache","op","p50_ns","p99_ns","p999_ns"}, …]}`.
    pub fn json(&self) -> String {
        let mut out = String::from("{\"results\":[");
        for (i, p) in self.results.iter().enumerate() {
            let _ = write!(
                out,
                "{}\n  {{\"cache\":{},\"workload\":{},\"mix\":{},\"threads\":{},\"mops\":{:.3}}}",
                if i == 0 { "" } else { "," },
                json_string(p.cache.name()),
                json_string(p.workload.name()),
                json_string(p.mix.name()),
                p.threads,
                p.mops
            );
        }
        let _ = write!(out, "\n],\"floor_ns\":{:.2},\"latency\":[", self.floor_ns);
        for (i, l) in self.latency.iter().enumerate() {
            let _ = write!(
                out,
                "{}\n  {{\"cache\":{},\"op\":{},\"p50_ns\":{},\"p99_ns\":{},\"p999_ns\":{}}}",
                if i == 0 { "" } else { "," },
                json_string(l.cache.name()),
                json_string(l.op.name()),
                l.p50_ns,
                l.p99_ns,
                l.p999_ns
            );
        }
        out.push_str("\n]}\n");
        out
    }

    /// A table per workload and mix (a row per cache, a column per thread count, and a last
    /// row with slabcache's ratio to the best peer), the floor, and the latency table.
    pub fn markdown(&self) -> String {
        let c = &self.config;
        let mut out = format!(
            "Throughput in Mops/s, all threads together: median of {} run{} of {} s after {} s \
             of warm-up, on a fresh cache of {} entries prefilled with {} inserts. {} key ids, \
             16-byte keys, 64-byte values; Zipf s = {ZIPF_EXPONENT} over scrambled ids, or \
             uniform.\n",
            c.runs,
            if c.runs == 1 { "" } else { "s" },
            c.run_secs,
            c.warmup_secs,
            c.capacity,
            2 * c.capacity,
            c.universe
        );
        for &workload in &c.workloads {
            for &mix in &c.mixes {
                let _ = write!(out, "\n### {} {}\n\n| cache |", workload.name(), mix.name());
                for &threads in &c.threads {
                    let _ = write!(
                        out,
                        " {threads} thread{} |",
                        if threads == 1 { "" } else { "s" }
                    );
                }
                out.push_str("\n|---|");
                out.push_str(&"---:|".repeat(c.threads.len()));
                out.push('\n');
                for &cache in &c.peers {
                    let _ = write!(out, "| {} |", cache.name());
                    for &threads in &c.threads {
                        let cell = self
                            .mops(cache, workload, mix, threads)
                            .map_or("n/a".to_string(), |m| format!("{m:.2}"));
                        let _ = write!(out, " {cell} |");
                    }
                    out.push('\n');
                }
                out.push_str("| slabcache / best peer |");
                for &threads in &c.threads {
                    let cell = self
                        .ratio_to_best_peer(workload, mix, threads)
                        .map_or("n/a".to_string(), |r| format!("{r:.2}×"));
                    let _ = write!(out, " **{cell}** |");
                }
                out.push('\n');
            }
        }

        let _ = write!(
            out,
            "\nFloor: an unsynchronised hashbrown map holding every key, Zipf lookups on one \
             thread copying the value out: {:.1} ns per lookup.",
            self.floor_ns
        );
        if let (Some(ns), Some(multiple)) = (self.slabcache_get_ns(), self.floor_multiple()) {
            let _ = write!(
                out,
                " slabcache's get on one thread (Zipf, read-only): {ns:.1} ns, \
                 {multiple:.2}× the floor."
            );
        }
        out.push('\n');

        let _ = write!(
            out,
            "\n### Latency, zipf 95/5 at {LATENCY_THREADS} threads\n\nNanoseconds; one \
             operation in {SAMPLE_EVERY} of each kind timed, one clock read included.\n\n\
             | cache | get p50 | get p99 | get p99.9 | insert p50 | insert p99 | insert p99.9 |\n\
             |---|---:|---:|---:|---:|---:|---:|\n"
        );
        for row in self.latency.chunk_by(|a, b| a.cache == b.cache) {
            let _ = write!(out, "| {} |", row[0].cache.name());
            for op in [Op::Get, Op::Insert] {
                match row.iter().find(|l| l.op == op) {
                    Some(l) => {
                        let _ = write!(out, " {} | {} | {} |", l.p50_ns, l.p99_ns, l.p999_ns);
                    }
                    None => out.push_str(" n/a | n/a | n/a |"),
                }
            }
            out.push('\n');
        }
        out
    }

    /// Mops/s against thread count, a line per cache, a panel per mix, Zipf workload.
    pub fn svg(&self) -> String {
        let mixes: Vec<Mix> = self
            .config
            .mixes
            .iter()
            .copied()
            .filter(|&mix| {
                self.results
                    .iter()
                    .any(|p| p.workload == Workload::Zipf && p.mix == mix)
            })
            .collect();
        let mut out = svg_start(mixes.len(), PANELS_PER_ROW);
        let mut x = 16.0;
        for &cache in &self.config.peers {
            let (colour, stroke) = style(cache);
            let _ = writeln!(
                out,
                "<line x1=\"{x}\" y1=\"17\" x2=\"{}\" y2=\"17\" stroke=\"{colour}\" \
                 stroke-width=\"{stroke}\"/><text x=\"{}\" y=\"21\">{}</text>",
                x + 24.0,
                x + 30.0,
                xml_escape(cache.name())
            );
            x += 40.0 + 7.0 * cache.name().len() as f64;
        }
        for (i, &mix) in mixes.iter().enumerate() {
            let (x0, y0) = panel_origin(i, PANELS_PER_ROW);
            self.draw_panel(&mut out, mix, x0, y0);
        }
        out.push_str("</svg>\n");
        out
    }

    /// One mix's panel with its top-left corner at (`x0`, `y0`). Thread counts are evenly
    /// spaced whatever their values, so that 1, 2, 4, 8, 16 read as a doubling axis, and
    /// kept off the frame, so that the end points stay visible.
    fn draw_panel(&self, out: &mut String, mix: Mix, x0: f64, y0: f64) {
        let (left, right) = (x0 + LEFT, x0 + PANEL_WIDTH - RIGHT);
        let (first_x, last_x) = (left + INSET, right - INSET);
        let (top, bottom) = (y0 + TOP, y0 + PANEL_HEIGHT - BOTTOM);
        let points: Vec<&Point> = self
            .results
            .iter()
            .filter(|p| p.workload == Workload::Zipf && p.mix == mix)
            .collect();
        let mut threads: Vec<usize> = points.iter().map(|p| p.threads).collect();
        threads.sort_unstable();
        threads.dedup();
        let x_of = |t: usize| {
            let i = threads.iter().position(|&x| x == t).unwrap_or(0);
            if threads.len() == 1 {
                (left + right) / 2.0
            } else {
                first_x + i as f64 / (threads.len() - 1) as f64 * (last_x - first_x)
            }
        };
        let highest = points.iter().map(|p| p.mops).fold(0.0, f64::max);
        let step = nice_step(highest);
        let y_high = ((highest / step).ceil() * step).max(step);
        let y_of = |mops: f64| bottom - mops / y_high * (bottom - top);
        let decimals = (-step.log10().floor()).max(0.0) as usize;

        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"13\" \
             font-weight=\"bold\">zipf {}</text>",
            (left + right) / 2.0,
            y0 + 20.0,
            xml_escape(mix.name())
        );
        let ticks = (y_high / step).round() as usize;
        for k in 0..=ticks {
            let mops = k as f64 * step;
            y_grid_line(out, left, right, y_of(mops), &format!("{mops:.decimals$}"));
        }
        for &t in &threads {
            let x = x_of(t);
            let _ = writeln!(
                out,
                "<line x1=\"{x:.1}\" y1=\"{bottom}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#000\"/>\
                 <text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{t}</text>",
                bottom + 4.0,
                bottom + 16.0
            );
        }
        let _ = writeln!(
            out,
            "<rect x=\"{left}\" y=\"{top}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#000\"/>\n\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">threads</text>\n\
             <text transform=\"translate({},{}) rotate(-90)\" text-anchor=\"middle\">Mops/s</text>",
            right - left,
            bottom - top,
            (left + right) / 2.0,
            bottom + 34.0,
            x0 + 14.0,
            (top + bottom) / 2.0
        );
        // slabcache last, so that it is drawn over the peers.
        let order = self
            .config
            .peers
            .iter()
            .filter(|&&c| c != Peer::Slabcache)
            .chain(self.config.peers.iter().filter(|&&c| c == Peer::Slabcache));
        for &cache in order {
            let mut line: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| p.cache == cache)
                .map(|p| (x_of(p.threads), y_of(p.mops)))
                .collect();
            line.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (colour, stroke) = style(cache);
            polyline(out, &line, colour, stroke, "", stroke + 1.0);
        }
    }
}

// ----- SVG layout -----

const PANELS_PER_ROW: usize = 2;
/// Room between the frame and the first and last thread count.
const INSET: f64 = 24.0;

/// Colour and stroke width of a cache's line: slabcache thick, the peers thin.
fn style(cache: Peer) -> (&'static str, f64) {
    match cache {
        Peer::Slabcache => ("#d62728", 3.5),
        Peer::Moka => ("#1f77b4", 1.5),
        Peer::QuickCache => ("#2ca02c", 1.5),
        Peer::MiniMoka => ("#9467bd", 1.5),
        Peer::Stretto => ("#ff7f0e", 1.5),
        Peer::LockedLru => ("#7f7f7f", 1.5),
    }
}

/// A grid step of 1, 2 or 5 times a power of ten giving about five lines up to `highest`.
fn nice_step(highest: f64) -> f64 {
    if highest <= 0.0 || !highest.is_finite() {
        return 1.0;
    }
    let raw = highest / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&step| step >= raw)
        .unwrap_or(10.0 * magnitude)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_report() -> Report {
        let config = Config {
            peers: vec![Peer::Slabcache, Peer::Moka, Peer::QuickCache],
            mixes: vec![Mix::Read, Mix::Write],
            ..Config::quick()
        };
        let mut results = Vec::new();
        for mix in [Mix::Read, Mix::Write] {
            for threads in [1, 2] {
                for (cache, mops) in [
                    (Peer::Slabcache, 10.0),
                    (Peer::Moka, 4.0),
                    (Peer::QuickCache, 8.0),
                ] {
                    results.push(Point {
                        cache,
                        workload: Workload::Zipf,
                        mix,
                        threads,
                        mops: mops * threads as f64,
                    });
                }
            }
        }
        let latency = [Peer::Slabcache, Peer::Moka, Peer::QuickCache]
            .into_iter()
            .flat_map(|cache| {
                [Op::Get, Op::Insert].map(|op| Latency {
                    cache,
                    op,
                    p50_ns: 50,
                    p99_ns: 99,
                    p999_ns: 999,
                })
            })
            .collect();
        Report {
            config,
            results,
            floor_ns: 25.0,
            latency,
        }
    }

    #[test]
    fn ratios_compare_slabcache_with_the_best_peer() {
        let report = sample_report();
        assert_eq!(
            report.ratio_to_best_peer(Workload::Zipf, Mix::Read, 2),
            Some(1.25)
        );
        assert_eq!(
            report.ratio_to_best_peer(Workload::Uniform, Mix::Read, 2),
            None
        );
        assert_eq!(report.slabcache_get_ns(), Some(100.0));
        assert_eq!(report.floor_multiple(), Some(4.0));
    }

    #[test]
    fn json_has_exactly_the_documented_keys() {
        let mut report = sample_report();
        report.results.truncate(1);
        report.latency.truncate(1);
        assert_eq!(
            report.json(),
            "{\"results\":[\n  \
             {\"cache\":\"slabcache\",\"workload\":\"zipf\",\"mix\":\"read\",\"threads\":1,\"mops\":10.000}\n\
             ],\"floor_ns\":25.00,\"latency\":[\n  \
             {\"cache\":\"slabcache\",\"op\":\"get\",\"p50_ns\":50,\"p99_ns\":99,\"p999_ns\":999}\n]}\n"
        );
    }

    #[test]
    fn markdown_has_a_table_per_mix_with_the_ratio_row() {
        let text = sample_report().markdown();
        let lines: Vec<&str> = text.lines().collect();
        let at = lines.iter().position(|l| *l == "### zipf read").unwrap();
        assert_eq!(lines[at + 2], "| cache | 1 thread | 2 threads |");
        assert_eq!(lines[at + 3], "|---|---:|---:|");
        assert_eq!(lines[at + 4], "| slabcache | 10.00 | 20.00 |");
        assert_eq!(lines[at + 6], "| quick_cache | 8.00 | 16.00 |");
        assert_eq!(
            lines[at + 7],
            "| slabcache / best peer | **1.25×** | **1.25×** |"
        );
        assert!(text.contains("### zipf write"));
        assert!(text.contains("25.0 ns per lookup"));
        assert!(text.contains("100.0 ns, 4.00× the floor"));
        assert!(text.contains("| moka | 50 | 99 | 999 | 50 | 99 | 999 |"));
    }

    #[test]
    fn svg_has_a_panel_per_mix_and_a_line_per_cache() {
        let chart = sample_report().svg();
        assert!(chart.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(chart.ends_with("</svg>\n"));
        assert_eq!(chart.matches("<polyline").count(), 2 * 3);
        assert_eq!(chart.matches("<circle").count(), 2 * 3 * 2);
        assert!(chart.contains(">zipf read</text>") && chart.contains(">zipf write</text>"));
        assert!(chart.contains("stroke=\"#d62728\" stroke-width=\"3.5\""));
        assert!(!chart.contains("NaN") && !chart.contains("inf"));
    }

    #[test]
    fn grid_steps_are_round() {
        assert_eq!(nice_step(10.0), 2.0);
        assert_eq!(nice_step(42.0), 10.0);
        assert_eq!(nice_step(0.3), 0.1);
        assert_eq!(nice_step(0.0), 1.0);
    }
}
