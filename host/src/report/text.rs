//! Phrases more than one reporter prints: verdicts and changes, with guest names
//! escaped for a terminal. XML output sanitises these again, for what XML cannot carry.

use crate::leak::{Delta, Growth, Metric, Verdict};

fn growth_text(growth: &Growth) -> String {
    let n = growth.per_iteration();
    match &growth.metric {
        Metric::Blocks => format!("blocks +{n}"),
        Metric::Bytes => format!("bytes +{n}"),
        Metric::Type(name) => format!("{} +{n}", name.line()),
        Metric::Counter(name) => format!("counter \"{}\" +{n}", name.line()),
    }
}

fn growths_text(growth: &[Growth]) -> String {
    growth.iter().map(growth_text).collect::<Vec<_>>().join(", ")
}

/// One line: what grows in every counted iteration (at least by how much), and which tests cause it.
pub fn verdict_text(verdict: &Verdict) -> String {
    let mut text = format!("{} grows in each of {} counted iterations", verdict.layer.line(), verdict.counted);
    if !verdict.growth.is_empty() {
        text.push_str(": ");
        text.push_str(&growths_text(&verdict.growth));
    }
    match verdict.tests.as_slice() {
        [] => {}
        [one] if one.growth == verdict.growth => text.push_str(&format!("; caused by {}", one.test.line())),
        tests => {
            let tests: Vec<String> =
                tests.iter().map(|t| format!("{} ({})", t.test.line(), growths_text(&t.growth))).collect();
            text.push_str(&format!("; caused by {}", tests.join("; ")));
        }
    }
    text
}

/// A delta on one line: blocks and bytes always, then pages, types and counters that changed.
pub fn delta_text(delta: &Delta) -> String {
    let mut parts = vec![format!("blocks {:+}", delta.blocks), format!("bytes {:+}", delta.bytes)];
    if delta.pages != 0 {
        parts.push(format!("pages {:+}", delta.pages));
    }
    parts.extend(delta.types.iter().map(|t| format!("{} {:+}", t.name.line(), t.instances)));
    parts.extend(delta.counters.iter().map(|(n, v)| format!("\"{}\" {v:+}", n.line())));
    parts.join(", ")
}
