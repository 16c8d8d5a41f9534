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
    let band = |iteration: u32| ((x(iteration) - step / 2.0).max(LEFT), (x(iteration) + step / 2.0).min(WIDTH - RIGHT));
    for p in points {
        let Some(class) = shade_class(p.kind) else { continue };
        // Shade the iteration's share of the x axis, kept inside the plot area.
        let (left, right) = band(p.iteration);
        let _ = write!(
            out,
            r#"<rect class="{class}" x="{left:.1}" y="{TOP}" width="{:.1}" height="{:.1}"><title>iteration {} ({class})</title></rect>"#,
            right - left,
            HEIGHT - TOP - BOTTOM,
            p.iteration
        );
        if let Some((label, centre)) = shade_label(points, p, &band) {
            let _ = write!(
                out,
                r#"<text class="shade-label" x="{centre:.1}" y="{}" text-anchor="middle">{label}</text>"#,
                TOP + 12.0
            );
        }
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

/// The shading of an iteration of `kind`, if it has one.
fn shade_class(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Warmup => Some("warmup"),
        Kind::Added => Some("added"),
        Kind::Broken => Some("broken"),
        Kind::SetUp | Kind::Planned => None,
    }
}

/// Width of a shade label's characters (11 px text, generously): a label is drawn only where
/// its whole width fits its shading, so no two labels overlap.
const LABEL_CHAR_WIDTH: f64 = 7.0;

/// The label of a run of consecutive iterations shaded alike, and its centre: one label per
/// run, written after the run's last iteration; none when no wording fits the run's width
/// (each iteration's rectangle still says what it is in its title).
fn shade_label(points: &[Point], p: &Point, band: &dyn Fn(u32) -> (f64, f64)) -> Option<(&'static str, f64)> {
    let at = points.iter().position(|q| q.iteration == p.iteration)?;
    let same = |q: &Point| shade_class(q.kind) == shade_class(p.kind);
    if points.get(at + 1).is_some_and(|next| same(next) && next.iteration == p.iteration + 1) {
        return None;
    }
    let mut start = at;
    while start > 0 && same(&points[start - 1]) && points[start - 1].iteration + 1 == points[start].iteration {
        start -= 1;
    }
    let (left, right) = (band(points[start].iteration).0, band(p.iteration).1);
    let wordings: &[&'static str] = match p.kind {
        Kind::Warmup => &["warm-up"],
        Kind::Added => &["added"],
        _ => &["fresh instance", "fresh"],
    };
    let fits = wordings.iter().find(|w| w.len() as f64 * LABEL_CHAR_WIDTH <= right - left)?;
    Some((fits, (left + right) / 2.0))
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

    /// The (left, right) extent of every shade label, as the plot estimates its width.
    fn label_extents(svg: &str) -> Vec<(f64, f64)> {
        svg.split(r#"<text class="shade-label" x=""#)
            .skip(1)
            .map(|rest| {
                let centre: f64 = rest[..rest.find('"').unwrap()].parse().unwrap();
                let text = &rest[rest.find('>').unwrap() + 1..rest.find("</text>").unwrap()];
                let half = text.len() as f64 * LABEL_CHAR_WIDTH / 2.0;
                (centre - half, centre + half)
            })
            .collect()
    }

    #[test]
    fn many_added_iterations_share_one_label_and_no_labels_overlap() {
        // Issue 27: 4 iterations of -N, then 28 added, then two fresh instances in a row.
        let mut points = vec![Point { iteration: 0, value: 1, kind: Kind::SetUp }];
        points.push(Point { iteration: 1, value: 2, kind: Kind::Warmup });
        points.extend((2..=4).map(|iteration| Point { iteration, value: 3, kind: Kind::Planned }));
        points.extend((5..=32).map(|iteration| Point { iteration, value: 4, kind: Kind::Added }));
        points.extend((33..=34).map(|iteration| Point { iteration, value: 5, kind: Kind::Broken }));
        let svg = svg("blocks", "live blocks", &points, "undecided", false);
        assert_eq!(svg.matches("<rect class=\"added\"").count(), 28, "every iteration is still shaded");
        assert_eq!(svg.matches(">added</text>").count(), 1, "{svg}");
        let extents = label_extents(&svg);
        for (i, a) in extents.iter().enumerate() {
            assert!(a.0 >= LEFT && a.1 <= WIDTH - RIGHT, "{a:?} leaves the plot");
            for b in &extents[i + 1..] {
                assert!(a.1 <= b.0 || b.1 <= a.0, "labels {a:?} and {b:?} overlap:\n{svg}");
            }
        }
    }

    #[test]
    fn runs_of_different_kinds_each_get_their_label() {
        let kinds = [Kind::SetUp, Kind::Warmup, Kind::Planned, Kind::Added, Kind::Added, Kind::Broken];
        let points: Vec<Point> =
            kinds.iter().enumerate().map(|(i, &kind)| Point { iteration: i as u32, value: i as u64, kind }).collect();
        let svg = svg("bytes", "live bytes", &points, "no leak", false);
        // The last iteration's band is cut at the plot's edge: the short wording fits it.
        for label in [">warm-up</text>", ">added</text>", ">fresh</text>"] {
            assert_eq!(svg.matches(label).count(), 1, "{label}: {svg}");
        }
    }

    #[test]
    fn a_flat_series_and_no_series_still_draw() {
        let flat: Vec<Point> = (1..=3).map(|iteration| Point { iteration, value: 5, kind: Kind::Planned }).collect();
        assert!(svg("bytes", "live bytes", &flat, "no leak", false).contains("<polyline class=\"series\""));
        assert!(svg("bytes", "live bytes", &[], "", false).contains("not measured"));
    }
}
