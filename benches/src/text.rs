//! What the subcommands' reports share: JSON and SVG escaping, and the frame of the SVG
//! charts (a grid of equal panels under a legend).

use std::fmt::Write as _;

/// `text` as a JSON string literal, quotes included.
pub fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `text` safe inside an SVG (XML) element or attribute.
pub fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A chart panel's size in pixels.
pub const PANEL_WIDTH: f64 = 420.0;
/// A chart panel's height in pixels.
pub const PANEL_HEIGHT: f64 = 300.0;
/// The strip above the panels that holds the legend.
pub const LEGEND_HEIGHT: f64 = 34.0;
/// The plot area inside a panel: margins left (y labels), right, top (title), bottom.
pub const LEFT: f64 = 52.0;
/// The plot area's right margin.
pub const RIGHT: f64 = 16.0;
/// The plot area's top margin (room for the title).
pub const TOP: f64 = 34.0;
/// The plot area's bottom margin (room for the x labels).
pub const BOTTOM: f64 = 44.0;

/// The opening of an SVG document for `panels` panels, `per_row` to a row, under the legend
/// strip, on a white background; the caller draws into it and closes it with `</svg>`.
pub fn svg_start(panels: usize, per_row: usize) -> String {
    let columns = panels.clamp(1, per_row);
    let rows = panels.div_ceil(per_row).max(1);
    let width = columns as f64 * PANEL_WIDTH;
    let height = LEGEND_HEIGHT + rows as f64 * PANEL_HEIGHT;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    )
}

/// The top-left corner of panel `index` in a grid of `per_row` panels to a row.
pub fn panel_origin(index: usize, per_row: usize) -> (f64, f64) {
    (
        (index % per_row) as f64 * PANEL_WIDTH,
        LEGEND_HEIGHT + (index / per_row) as f64 * PANEL_HEIGHT,
    )
}

/// A data line: the points joined, and a dot of radius `dot` on each. `extra` is appended to
/// the line's attributes (a dash pattern, say).
pub fn polyline(
    out: &mut String,
    points: &[(f64, f64)],
    colour: &str,
    width: f64,
    extra: &str,
    dot: f64,
) {
    let path: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect();
    let _ = writeln!(
        out,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"{width}\"{extra}/>",
        path.join(" ")
    );
    for (x, y) in points {
        let _ = writeln!(
            out,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{dot}\" fill=\"{colour}\"/>"
        );
    }
}

/// A horizontal grid line across a plot, from `left` to `right` at height `y`, labelled at
/// its left end.
pub fn y_grid_line(out: &mut String, left: f64, right: f64, y: f64, label: &str) {
    let _ = writeln!(
        out,
        "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{right}\" y2=\"{y:.1}\" stroke=\"#e0e0e0\"/>\
         <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
        left - 6.0,
        y + 4.0,
        xml_escape(label)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_escape_quotes_backslashes_and_controls() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }

    #[test]
    fn the_frame_fits_its_panels() {
        let start = svg_start(3, 2);
        assert!(start.contains("width=\"840\" height=\"634\""), "{start}");
        assert_eq!(panel_origin(2, 2), (0.0, LEGEND_HEIGHT + PANEL_HEIGHT));
    }

    #[test]
    fn xml_escapes_markup() {
        assert_eq!(xml_escape("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
    }
}
