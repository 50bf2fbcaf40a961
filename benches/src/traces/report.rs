//! The results of a `traces` run as text: a Markdown table, JSON, and an SVG chart.
//!
//! Each takes the measurements in [`run`](super::run)'s order (trace, then capacity, then
//! policy); consecutive measurements of one trace and capacity make a table row, and
//! consecutive measurements of one trace make a chart panel.

use std::fmt::Write;

use super::replay::PolicyKind;
use super::Measurement;
use crate::text::{
    json_string, panel_origin, polyline, svg_start, xml_escape, y_grid_line, BOTTOM, LEFT,
    PANEL_HEIGHT, PANEL_WIDTH, RIGHT, TOP,
};

/// The Markdown table: a row per trace and capacity, a column per policy. Each cell is the
/// hit ratio in percent and, in parentheses, its gap to OPT in points; for a policy replayed
/// more than once, the median run's, with the lowest and highest of the runs in brackets.
pub fn markdown(results: &[Measurement]) -> String {
    let mut out = String::from(
        "Hit ratio in %; in parentheses, the difference to OPT (Belady's optimum) in points.\n",
    );
    if let Some(runs) = results.iter().map(|m| m.runs).max().filter(|&r| r > 1) {
        let _ = writeln!(
            out,
            "Policies whose figures vary from run to run: the median of {runs} runs, and in \
             brackets the lowest and the highest."
        );
    }
    out.push('\n');
    out.push_str("| trace | capacity |");
    for policy in PolicyKind::ALL {
        let _ = write!(out, " {} |", policy.name());
    }
    out.push_str("\n|---|---:|");
    out.push_str(&"---:|".repeat(PolicyKind::ALL.len()));
    out.push('\n');
    for row in results.chunk_by(|a, b| a.trace == b.trace && a.capacity == b.capacity) {
        let opt = find(row, PolicyKind::Opt).map(|m| hundredths(m.hit_ratio()));
        let _ = write!(out, "| {} | {} |", row[0].trace, row[0].capacity);
        for policy in PolicyKind::ALL {
            let cell = match (find(row, policy), opt) {
                (None, _) => "n/a".to_string(),
                (Some(m), Some(opt)) if policy != PolicyKind::Opt => {
                    let ratio = hundredths(m.hit_ratio());
                    let mut cell = format!("{} ({})", percent(ratio), gap(opt - ratio));
                    if m.runs > 1 {
                        let (low, high) = m.hit_ratio_range();
                        let (low, high) = (percent(hundredths(low)), percent(hundredths(high)));
                        let _ = write!(cell, " [{low}-{high}]");
                    }
                    cell
                }
                (Some(m), _) => percent(hundredths(m.hit_ratio())),
            };
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }
    out
}

/// `{"results":[{"trace":…,"capacity":…,"policy":…,"hit_ratio":…,"runs":…,
/// "hit_ratio_min":…,"hit_ratio_max":…}, …]}`, hit ratios in percent at full precision
/// (`hit_ratio` the median run's).
pub fn json(results: &[Measurement]) -> String {
    let mut out = String::from("{\"results\":[");
    for (i, m) in results.iter().enumerate() {
        let (low, high) = m.hit_ratio_range();
        let _ = write!(
            out,
            "{}\n  {{\"trace\":{},\"capacity\":{},\"policy\":\"{}\",\"hit_ratio\":{},\
             \"runs\":{},\"hit_ratio_min\":{low},\"hit_ratio_max\":{high}}}",
            if i == 0 { "" } else { "," },
            json_string(&m.trace),
            m.capacity,
            m.policy.name(),
            m.hit_ratio(),
            m.runs,
        );
    }
    out.push_str("\n]}\n");
    out
}

/// A hit ratio in hundredths of a percent, rounded as `{:.2}` (and C's `%.2f`, which made
/// the reference tables) round it: a ratio that lies exactly halfway in decimal is stored as a
/// binary fraction a little off it, and that decides the way it rounds.
fn hundredths(ratio: f64) -> i64 {
    format!("{ratio:.2}")
        .replace('.', "")
        .parse()
        .expect("a hit ratio prints as a plain decimal")
}

fn percent(hundredths: i64) -> String {
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

fn gap(below: i64) -> String {
    match below {
        0 => "0.00".to_string(),
        b if b > 0 => format!("-{}", percent(b)),
        b => format!("+{}", percent(-b)),
    }
}

fn find(row: &[Measurement], policy: PolicyKind) -> Option<&Measurement> {
    row.iter().find(|m| m.policy == policy)
}

// ----- SVG -----

const PANELS_PER_ROW: usize = 3;
/// Capacities spanning at least this factor get a logarithmic x axis.
const LOG_SPAN: f64 = 10.0;
/// Roughly the width of a digit of an axis label, and the least room between two labels,
/// in pixels: an x label that would crowd the previous one is left out.
const DIGIT_WIDTH: f64 = 7.0;
const LABEL_SPACE: f64 = 8.0;

/// How a policy is drawn: colour and dash pattern.
fn style(policy: PolicyKind) -> (&'static str, &'static str) {
    match policy {
        PolicyKind::Slabcache => ("#d62728", ""),
        PolicyKind::Moka => ("#1f77b4", ""),
        PolicyKind::QuickCache => ("#2ca02c", ""),
        PolicyKind::Lru => ("#7f7f7f", ""),
        PolicyKind::Opt => ("#000000", " stroke-dasharray=\"6 4\""),
    }
}

/// Hit ratio against capacity, a line per policy, a panel per trace.
pub fn svg(results: &[Measurement]) -> String {
    let panels: Vec<&[Measurement]> = results.chunk_by(|a, b| a.trace == b.trace).collect();
    let mut out = svg_start(panels.len(), PANELS_PER_ROW);
    legend(&mut out);
    for (i, panel) in panels.iter().enumerate() {
        let (x, y) = panel_origin(i, PANELS_PER_ROW);
        draw_panel(&mut out, panel, x, y);
    }
    out.push_str("</svg>\n");
    out
}

fn legend(out: &mut String) {
    let mut x = 16.0;
    for policy in PolicyKind::ALL {
        let (colour, dash) = style(policy);
        let _ = writeln!(
            out,
            "<line x1=\"{x}\" y1=\"17\" x2=\"{}\" y2=\"17\" stroke=\"{colour}\" stroke-width=\"2\"{dash}/>\
             <text x=\"{}\" y=\"21\">{}</text>",
            x + 24.0,
            x + 30.0,
            policy.name()
        );
        x += 40.0 + 7.0 * policy.name().len() as f64;
    }
}

/// One trace's panel with its top-left corner at (`x0`, `y0`).
fn draw_panel(out: &mut String, panel: &[Measurement], x0: f64, y0: f64) {
    let (left, right) = (x0 + LEFT, x0 + PANEL_WIDTH - RIGHT);
    let (top, bottom) = (y0 + TOP, y0 + PANEL_HEIGHT - BOTTOM);

    let mut capacities: Vec<usize> = panel.iter().map(|m| m.capacity).collect();
    capacities.sort_unstable();
    capacities.dedup();
    let (low, high) = (
        capacities[0] as f64,
        capacities[capacities.len() - 1] as f64,
    );
    let log = high / low >= LOG_SPAN;
    let scale = |c: f64| if log { c.ln() } else { c };
    let x_of = |capacity: usize| {
        if capacities.len() == 1 {
            (left + right) / 2.0
        } else {
            left + (scale(capacity as f64) - scale(low)) / (scale(high) - scale(low))
                * (right - left)
        }
    };

    let ratios = panel.iter().map(Measurement::hit_ratio);
    let floor = (ratios.clone().fold(f64::INFINITY, f64::min) / 10.0).floor() * 10.0;
    let ceiling = (ratios.fold(f64::NEG_INFINITY, f64::max) / 10.0).ceil() * 10.0;
    let y_low = floor.clamp(0.0, 90.0);
    let y_high = ceiling.clamp(y_low + 10.0, 100.0);
    let y_of = |ratio: f64| bottom - (ratio - y_low) / (y_high - y_low) * (bottom - top);

    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">{}</text>",
        (left + right) / 2.0,
        y0 + 20.0,
        xml_escape(&panel[0].trace)
    );
    // Horizontal grid lines with the hit ratio they mark.
    let step = match y_high - y_low {
        r if r > 40.0 => 10.0,
        r if r > 10.0 => 5.0,
        _ => 2.0,
    };
    let mut ratio = y_low;
    while ratio <= y_high + 1e-9 {
        y_grid_line(out, left, right, y_of(ratio), &ratio.to_string());
        ratio += step;
    }
    // The capacities, where the labels do not crowd each other: a label's right half and the
    // next one's left half must fit between their centres.
    let mut last_label: Option<(f64, usize)> = None;
    for &capacity in &capacities {
        let x = x_of(capacity);
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{bottom}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#000\"/>",
            bottom + 4.0
        );
        let label = capacity.to_string();
        let fits = last_label.map_or(true, |(last_x, last_len)| {
            x - last_x >= DIGIT_WIDTH * (last_len + label.len()) as f64 / 2.0 + LABEL_SPACE
        });
        if fits {
            let _ = writeln!(
                out,
                "<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{label}</text>",
                bottom + 16.0
            );
            last_label = Some((x, label.len()));
        }
    }
    let _ = writeln!(
        out,
        "<rect x=\"{left}\" y=\"{top}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#000\"/>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">capacity (entries{})</text>\n\
         <text transform=\"translate({},{}) rotate(-90)\" text-anchor=\"middle\">hit ratio %</text>",
        right - left,
        bottom - top,
        (left + right) / 2.0,
        bottom + 34.0,
        if log { ", log scale" } else { "" },
        x0 + 14.0,
        (top + bottom) / 2.0
    );
    for policy in PolicyKind::ALL {
        let mut points: Vec<(f64, f64)> = panel
            .iter()
            .filter(|m| m.policy == policy)
            .map(|m| (x_of(m.capacity), y_of(m.hit_ratio())))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (colour, dash) = style(policy);
        polyline(out, &points, colour, 2.0, dash, 2.5);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measurement(trace: &str, capacity: usize, policy: PolicyKind, hits: u64) -> Measurement {
        Measurement::of(trace, capacity, policy, hits, 10_000)
    }

    /// Two traces at two capacities; hit counts out of 10,000 (so 4512 hits is 45.12%).
    fn sample() -> Vec<Measurement> {
        let mut results = Vec::new();
        for (trace, base) in [("a.trace.gz", 0), ("b\"<&>.gz", 1000)] {
            for capacity in [100, 2000] {
                for (policy, hits) in PolicyKind::ALL
                    .into_iter()
                    .zip([4512, 4000, 3000, 2000, 5313])
                {
                    results.push(measurement(trace, capacity, policy, hits + base));
                }
            }
        }
        results
    }

    #[test]
    fn markdown_has_a_row_per_trace_and_capacity_with_gaps_to_opt() {
        let table = markdown(&sample());
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[2],
            "| trace | capacity | slabcache | moka | quick_cache | lru | opt |"
        );
        assert_eq!(lines[3], "|---|---:|---:|---:|---:|---:|---:|");
        assert_eq!(
            lines[4],
            "| a.trace.gz | 100 | 45.12 (-8.01) | 40.00 (-13.13) | 30.00 (-23.13) | 20.00 (-33.13) | 53.13 |"
        );
        assert_eq!(lines.len(), 4 + 4);
        assert!(lines[7].starts_with("| b\"<&>.gz | 2000 | 55.12 (-8.01) |"));
    }

    /// A policy replayed several times shows its median with the range of its runs, and the
    /// header says how many runs the medians are of.
    #[test]
    fn markdown_shows_the_range_of_repeated_runs() {
        let mut results = sample();
        results[0].runs = 3;
        results[0].hits_min = 4401;
        results[0].hits_max = 4620;
        let table = markdown(&results);
        assert!(table.contains("the median of 3 runs"), "{table}");
        assert!(
            table.contains("| a.trace.gz | 100 | 45.12 (-8.01) [44.01-46.20] | 40.00 (-13.13) |"),
            "{table}"
        );
        assert!(!markdown(&sample()).contains("median"));
        assert!(
            json(&results).contains("\"runs\":3,\"hit_ratio_min\":44.01,\"hit_ratio_max\":46.2")
        );
    }

    #[test]
    fn ratios_round_as_printf_does() {
        // 62,845 hits of 100,000 requests is stored as 62.84499..., which printf("%.2f")
        // shows as 62.84, as the references do (2_pools at 500 entries under OPT); 62,825
        // is stored as 62.82500...1 and shows as 62.83.
        assert_eq!(hundredths(100.0 * 62_845.0 / 100_000.0), 6284);
        assert_eq!(hundredths(100.0 * 62_825.0 / 100_000.0), 6283);
        assert_eq!(hundredths(0.0), 0);
        assert_eq!(hundredths(100.0), 10_000);
    }

    #[test]
    fn gaps_are_signed_and_zero_is_plain() {
        assert_eq!(gap(801), "-8.01");
        assert_eq!(gap(0), "0.00");
        assert_eq!(gap(-5), "+0.05");
    }

    #[test]
    fn json_lists_every_measurement() {
        let text = json(&sample()[..2]);
        assert_eq!(
            text,
            "{\"results\":[\n  \
             {\"trace\":\"a.trace.gz\",\"capacity\":100,\"policy\":\"slabcache\",\"hit_ratio\":45.12,\
             \"runs\":1,\"hit_ratio_min\":45.12,\"hit_ratio_max\":45.12},\n  \
             {\"trace\":\"a.trace.gz\",\"capacity\":100,\"policy\":\"moka\",\"hit_ratio\":40,\
             \"runs\":1,\"hit_ratio_min\":40,\"hit_ratio_max\":40}\n]}\n"
        );
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }

    #[test]
    fn svg_has_a_panel_per_trace_and_a_line_per_policy() {
        let chart = svg(&sample());
        assert!(chart.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(chart.ends_with("</svg>\n"));
        assert_eq!(
            chart.matches("<polyline").count(),
            2 * PolicyKind::ALL.len()
        );
        assert_eq!(chart.matches("<circle").count(), sample().len());
        assert!(chart.contains(">a.trace.gz</text>"));
        assert!(chart.contains(">b&quot;&lt;&amp;&gt;.gz</text>"));
        // 100 to 2000 spans more than a factor of 10: a log axis.
        assert!(chart.contains("capacity (entries, log scale)"));
    }

    #[test]
    fn svg_draws_a_single_capacity_and_a_flat_line() {
        let all_hits: Vec<Measurement> = PolicyKind::ALL
            .into_iter()
            .map(|policy| measurement("t", 10, policy, 10_000))
            .collect();
        let chart = svg(&all_hits);
        assert_eq!(chart.matches("<circle").count(), PolicyKind::ALL.len());
        assert!(chart.contains("capacity (entries)"));
        assert!(!chart.contains("NaN") && !chart.contains("inf"));
    }
}
