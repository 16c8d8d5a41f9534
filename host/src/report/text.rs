//! Phrases more than one reporter prints: verdicts and changes, with guest names
//! escaped for a terminal. XML output sanitises these again, for what XML cannot carry.

use crate::leak::{Delta, Evidence, Growth, Metric, Shape, Verdict};

fn metric_text(metric: &Metric) -> String {
    match metric {
        Metric::Blocks => "blocks".into(),
        Metric::Bytes => "bytes".into(),
        Metric::Pages => "pages".into(),
        Metric::Type(name) => name.line().to_string(),
        Metric::Counter(name) => format!("counter \"{}\"", name.line()),
    }
}

/// How fast it grew: `+2 per iteration`, or `+64 every 8 iterations` for periodic growth.
fn rate_text(growth: &Growth) -> String {
    match growth.period {
        1 => format!("+{} per iteration", growth.per_iteration()),
        p => format!("+{} every {p} iterations", growth.per_iteration()),
    }
}

/// One quantity in words a user can check: its rate and net change (read from its
/// levels), in how many counted iterations it reached a new maximum unless `shared`
/// already said so, and what kind of growth it is when that is not the heap's.
fn growth_text(growth: &Growth, shared: bool) -> String {
    let (metric, net) = (metric_text(&growth.metric), growth.net);
    let mut notes = Vec::new();
    if growth.metric == Metric::Pages {
        notes.push("memory.grow".to_string());
    }
    if !shared {
        notes.push(format!("grew in {} of {}", growth.grew, growth.deltas.len()));
    }
    notes.push(format!("net {net:+}"));
    if growth.capacity {
        notes.push("capacity doubling: no new block, spacing doubles".to_string());
    }
    format!("{metric} {} ({})", rate_text(growth), notes.join(", "))
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

/// What leaks, when only linear-memory pages do: memory taken with `memory.grow`
/// outside the allocator, as `leaks outside the allocator: pages +1 per iteration
/// (memory.grow), grew in 8 of 8 counted iterations, net +8`.
fn pages_text(pages: &Growth) -> String {
    format!(
        "leaks outside the allocator: pages {} (memory.grow), grew in {} of {} counted iterations, net {:+}",
        rate_text(pages),
        pages.grew,
        pages.deltas.len(),
        pages.net
    )
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
    let mut text = match deciding.as_slice() {
        [pages] if verdict.shape == Shape::Leaks && pages.metric == Metric::Pages => {
            format!("{} {}", verdict.layer.line(), pages_text(pages))
        }
        _ => format!("{} {what}: {}", verdict.layer.line(), growths_text(&deciding)),
    };
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
    match verdict.evidence {
        Evidence::Replay { blocks, bytes } => text.push_str(&format!(
            "; its traced replay found {blocks} {} ({bytes} bytes) of them still live",
            if blocks == 1 { "block" } else { "blocks" }
        )),
        Evidence::Cleared => text.push_str(
            "; but its traced replay found nothing its tests allocated in counted iterations still live, so the heap does not leak",
        ),
        Evidence::Series if verdict.shape == Shape::Settled => {
            text.push_str(", then stayed flat: a cache that filled or a one-off allocation, not a leak")
        }
        Evidence::Series => {}
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leak::LeakingTest;

    fn verdict(shape: Shape, growth: Vec<Growth>, cause: &str) -> Verdict {
        let tests = vec![LeakingTest { test: cause.into(), growth: growth.clone() }];
        Verdict {
            layer: "L".into(),
            shape,
            counted: growth[0].deltas.len(),
            growth,
            tests,
            evidence: Default::default(),
        }
    }

    #[test]
    fn the_line_says_which_evidence_decided() {
        let growth = vec![Growth::from_deltas(Metric::Blocks, vec![1; 8])];
        let mut leak = verdict(Shape::Leaks, growth, "t");
        leak.evidence = Evidence::Replay { blocks: 8, bytes: 128 };
        assert!(verdict_text(&leak)
            .ends_with("caused by t; its traced replay found 8 blocks (128 bytes) of them still live"));
        let cleared = leak.witnessed(crate::leak::Witness { blocks: 0, bytes: 0, others: false });
        let text = verdict_text(&cleared);
        assert!(text.starts_with("L settled: "), "{text}");
        assert!(text.ends_with("so the heap does not leak") && !text.contains("a cache that filled"), "{text}");
    }

    #[test]
    fn a_page_leak_is_memory_outside_the_allocator() {
        let pages = Growth::from_deltas(Metric::Pages, vec![1; 8]);
        assert_eq!(
            verdict_text(&verdict(Shape::Leaks, vec![pages], "t")),
            "L leaks outside the allocator: pages +1 per iteration (memory.grow), grew in 8 of 8 counted iterations, \
             net +8; caused by t"
        );
    }

    #[test]
    fn rate_and_net_are_read_from_the_levels() {
        let blocks = Growth::from_deltas(Metric::Blocks, [2, -1].repeat(6));
        assert_eq!(
            verdict_text(&verdict(Shape::Leaks, vec![blocks], "t")),
            "L leaks: grew in 6 of 12 counted iterations: blocks +1 every 2 iterations (net +6); caused by t"
        );
        let mut bytes = Growth::from_deltas(Metric::Bytes, vec![0, 100, 200, 0, 400, 0, 0, 0, 800]);
        bytes.capacity = true;
        let text = verdict_text(&verdict(bytes.shape, vec![bytes], "t"));
        assert!(text.ends_with("(net +1500, capacity doubling: no new block, spacing doubles); caused by t"), "{text}");
    }
}
