//! Phrases more than one reporter prints: verdicts and changes, with guest names
//! escaped for a terminal. XML output sanitises these again, for what XML cannot carry.

use crate::leak::{Delta, Growth, Metric, Shape, Verdict};

fn metric_text(metric: &Metric) -> String {
    match metric {
        Metric::Blocks => "blocks".into(),
        Metric::Bytes => "bytes".into(),
        Metric::Type(name) => name.line().to_string(),
        Metric::Counter(name) => format!("counter \"{}\"", name.line()),
    }
}

/// One quantity in words a user can check: its rate and net change, and in how many
/// counted iterations it grew unless `shared` already said so.
fn growth_text(growth: &Growth, shared: bool) -> String {
    let rate = match growth.period {
        1 => format!("+{} per iteration", growth.per_iteration()),
        p => format!("+{} every {p} iterations", growth.per_iteration()),
    };
    let (metric, net) = (metric_text(&growth.metric), growth.net);
    match shared {
        true => format!("{metric} {rate} (net {net:+})"),
        false => format!("{metric} {rate} (grew in {} of {}, net {net:+})", growth.grew, growth.deltas.len()),
    }
}

/// Quantities in words; when they all grew in the same iterations, that is said once, first.
fn growths_text(growth: &[&Growth]) -> String {
    let shared = growth.windows(2).all(|w| w[0].deltas.len() == w[1].deltas.len() && w[0].grew == w[1].grew);
    let parts = growth.iter().map(|g| growth_text(g, shared)).collect::<Vec<_>>().join(", ");
    match (shared, growth.first()) {
        (true, Some(g)) => format!("grew in {} of {} counted iterations: {parts}", g.grew, g.deltas.len()),
        _ => parts,
    }
}

/// The same quantities at the same rates: a cause that explains its layer alone.
fn explains(cause: &[Growth], layer: &[&Growth]) -> bool {
    cause.len() == layer.len()
        && cause.iter().zip(layer).all(|(c, l)| c.metric == l.metric && c.per_iteration() == l.per_iteration())
}

/// One line for a verdict that is not clean: what grows and how (the quantities with
/// the layer's shape), and the tests or hooks that cause it.
pub fn verdict_text(verdict: &Verdict) -> String {
    let deciding: Vec<&Growth> = verdict.deciding().collect();
    let what = match verdict.shape {
        Shape::Leaks => "leaks",
        Shape::Undecided => "is undecided",
        Shape::Settled => "settled",
        Shape::Flat => "is flat",
    };
    let mut text = format!("{} {what}: {}", verdict.layer.line(), growths_text(&deciding));
    match verdict.tests.as_slice() {
        [] => {}
        [one] if explains(&one.growth, &deciding) => text.push_str(&format!("; caused by {}", one.test.line())),
        tests => {
            let tests: Vec<String> = tests
                .iter()
                .map(|t| format!("{} ({})", t.test.line(), growths_text(&t.growth.iter().collect::<Vec<_>>())))
                .collect();
            text.push_str(&format!("; caused by {}", tests.join("; ")));
        }
    }
    if verdict.shape == Shape::Settled {
        text.push_str(", then stayed flat: a cache that filled or a one-off allocation, not a leak");
    }
    text
}

/// One cause's share of a leaking verdict, for a report that gives each test its own
/// message: `LAYER leaks: caused by TEST (its own growth)`.
pub fn cause_text(verdict: &Verdict, cause: &crate::leak::LeakingTest) -> String {
    let growth: Vec<&Growth> = cause.growth.iter().collect();
    format!("{} leaks: caused by {} ({})", verdict.layer.line(), cause.test.line(), growths_text(&growth))
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
