//! The growth plot: one quantity of one layer over its iterations, as inline SVG.
//!
//! Drawn by hand rather than with a plotting crate: the picture is a polyline, a few
//! rectangles and labels, and writing them directly keeps the output byte-stable
//! (no floating-point formatting a crate might change) and adds no dependency.

use std::fmt::Write;

use super::escape;

const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 34.0;

/// How an iteration counts, which the plot shows by shading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The end of set-up, before the first iteration (x = 0).
    SetUp,
    /// A warm-up iteration, not counted by the verdict.
    Warmup,
    /// An iteration of `-N`.
    Planned,
    /// An iteration added after `-N` to decide the verdict.
    Added,
    /// A fresh instance started during it, so its value does not continue the line.
    Broken,
}

/// One point of the plot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    /// The iteration, from 1 (0 for the end of set-up).
    pub iteration: u32,
    /// The value at its end.
    pub value: u64,
    /// How it counts.
    pub kind: Kind,
}

/// An SVG plot of `points` titled `title`, captioned with `verdict` (already plain text).
pub fn svg(metric: &str, title: &str, points: &[Point], verdict: &str, leaks: bool) -> String {
    let mut out = String::new();
    let label = format!("{title}: {verdict}");
    let _ = write!(
        out,
        r#"<svg class="plot" data-metric="{metric}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}">"#,
        escape(&label)
    );
    let _ = write!(out, r#"<text class="title" x="{LEFT}" y="16">{}</text>"#, escape(title));
    if points.is_empty() {
        let _ = write!(out, r#"<text class="empty" x="{LEFT}" y="{}">not measured</text></svg>"#, HEIGHT / 2.0);
        return out;
    }
    // Points come in iteration order; min and max keep a guest that breaks it from underflowing.
    let first = points.iter().map(|p| p.iteration).min().unwrap_or(0);
    let last = points.iter().map(|p| p.iteration).max().unwrap_or(0);
    let span = f64::from((last - first).max(1));
    let x = |iteration: u32| LEFT + f64::from(iteration - first) / span * (WIDTH - LEFT - RIGHT);
    let min = points.iter().map(|p| p.value).min().unwrap_or(0);
    let max = points.iter().map(|p| p.value).max().unwrap_or(0).max(min.saturating_add(1));
    let y = |value: u64| TOP + (max - value) as f64 / (max - min).max(1) as f64 * (HEIGHT - TOP - BOTTOM);
    let step = (WIDTH - LEFT - RIGHT) / span;
    for p in points {
        let class = match p.kind {
            Kind::Warmup => "warmup",
            Kind::Added => "added",
            Kind::Broken => "broken",
            Kind::SetUp | Kind::Planned => continue,
        };
        // Shade the iteration's share of the x axis, kept inside the plot area.
        let left = (x(p.iteration) - step / 2.0).max(LEFT);
        let right = (x(p.iteration) + step / 2.0).min(WIDTH - RIGHT);
        let _ = write!(
            out,
            r#"<rect class="{class}" x="{left:.1}" y="{TOP}" width="{:.1}" height="{:.1}"><title>iteration {} ({class})</title></rect>"#,
            right - left,
            HEIGHT - TOP - BOTTOM,
            p.iteration
        );
        let label = match p.kind {
            Kind::Warmup => "warm-up",
            Kind::Added => "added",
            _ if right - left >= 90.0 => "fresh instance",
            _ => "fresh",
        };
        let _ = write!(
            out,
            r#"<text class="shade-label" x="{:.1}" y="{}" text-anchor="middle">{label}</text>"#,
            (left + right) / 2.0,
            TOP + 12.0
        );
    }
    axes(&mut out, min, max, first, last, &x, &y);
    let line: Vec<String> = points.iter().map(|p| format!("{:.1},{:.1}", x(p.iteration), y(p.value))).collect();
    let class = if leaks { "series leaks" } else { "series" };
    let _ = write!(out, r#"<polyline class="{class}" points="{}"/>"#, line.join(" "));
    for p in points {
        let _ = write!(
            out,
            r#"<circle class="point" data-iteration="{}" cx="{:.1}" cy="{:.1}" r="3"><title>iteration {}: {}</title></circle>"#,
            p.iteration,
            x(p.iteration),
            y(p.value),
            p.iteration,
            p.value
        );
    }
    let class = if leaks { "verdict leaks" } else { "verdict" };
    let _ = write!(
        out,
        r#"<text class="{class}" x="{}" y="16" text-anchor="end">{}</text>"#,
        WIDTH - RIGHT,
        escape(verdict)
    );
    out.push_str("</svg>");
    out
}

/// The axes with their tick labels: the lowest, middle and highest value, and up to ten iterations.
fn axes(out: &mut String, min: u64, max: u64, first: u32, last: u32, x: &dyn Fn(u32) -> f64, y: &dyn Fn(u64) -> f64) {
    let bottom = HEIGHT - BOTTOM;
    let _ = write!(out, r#"<path class="axis" d="M{LEFT},{TOP} V{bottom} H{}"/>"#, WIDTH - RIGHT);
    for value in [min, min + (max - min) / 2, max] {
        let _ = write!(
            out,
            r#"<text class="tick" x="{}" y="{:.1}" text-anchor="end">{value}</text>"#,
            LEFT - 6.0,
            y(value) + 4.0
        );
    }
    let every = (last - first).div_ceil(10).max(1);
    for iteration in (first..=last).step_by(every as usize) {
        let label = if iteration == 0 { "set-up".to_string() } else { iteration.to_string() };
        let _ = write!(
            out,
            r#"<text class="tick" x="{:.1}" y="{}" text-anchor="middle">{label}</text>"#,
            x(iteration),
            bottom + 16.0
        );
    }
    let _ = write!(
        out,
        r#"<text class="axis-label" x="{}" y="{}" text-anchor="middle">iteration</text>"#,
        (LEFT + WIDTH - RIGHT) / 2.0,
        HEIGHT - 2.0
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points() -> Vec<Point> {
        vec![
            Point { iteration: 0, value: 10, kind: Kind::SetUp },
            Point { iteration: 1, value: 12, kind: Kind::Warmup },
            Point { iteration: 2, value: 13, kind: Kind::Planned },
            Point { iteration: 3, value: 14, kind: Kind::Added },
        ]
    }

    #[test]
    fn every_point_is_drawn_and_warmup_and_added_iterations_are_shaded() {
        let svg = svg("blocks", "live blocks", &points(), "leaks: blocks +1", true);
        assert_eq!(svg.matches("<circle class=\"point\"").count(), 4);
        assert_eq!(svg.matches("<rect class=\"warmup\"").count(), 1);
        assert_eq!(svg.matches("<rect class=\"added\"").count(), 1);
        assert!(svg.contains(r#"<polyline class="series leaks" points="70.0,166.0 "#), "{svg}");
        assert!(svg.contains(">leaks: blocks +1</text>"));
        assert!(svg.contains(">set-up</text>"));
    }

    #[test]
    fn a_flat_series_and_no_series_still_draw() {
        let flat: Vec<Point> = (1..=3).map(|iteration| Point { iteration, value: 5, kind: Kind::Planned }).collect();
        assert!(svg("bytes", "live bytes", &flat, "no leak", false).contains("<polyline class=\"series\""));
        assert!(svg("bytes", "live bytes", &[], "", false).contains("not measured"));
    }
}
