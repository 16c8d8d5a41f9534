//! The per-test growth table (with a row per kind of per-test hook) and the type table of a layer.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::name;
use crate::leak::{Delta, Snapshot};
use crate::report::model::LayerReport;
use crate::run::TestId;
use crate::text::GuestText;

/// One row: a cause's (blocks, bytes) in each iteration, `None` where it was not measured.
struct Row {
    name: GuestText,
    cells: Vec<Option<(i64, i64)>>,
}

fn pair(delta: &Delta) -> (i64, i64) {
    (delta.blocks, delta.bytes)
}

fn add(cell: &mut Option<(i64, i64)>, delta: &Delta) {
    let (blocks, bytes) = cell.get_or_insert((0, 0));
    *blocks += delta.blocks;
    *bytes += delta.bytes;
}

/// The name a hook row goes by: the cause the verdict names for it, if it names one.
fn hook_name(layer: &LayerReport, kind: &str) -> GuestText {
    let prefix = format!("{kind} of ");
    let named = layer.verdict.iter().flat_map(|v| &v.tests).find(|t| t.test.raw().starts_with(&prefix));
    named.map_or_else(|| GuestText::from(format!("{kind} hooks")), |t| t.test.clone())
}

/// Per test (by id, in first-run order): its own change in each iteration, the body's when
/// the change was split by phase; then the testSetUp and testTearDown shares summed over
/// each iteration's tests, as the verdict judges them.
fn rows(layer: &LayerReport) -> Vec<Row> {
    let n = layer.iterations.len();
    let mut tests: Vec<(TestId, Row)> = Vec::new();
    let mut hooks = [
        Row { name: hook_name(layer, "testSetUp"), cells: vec![None; n] },
        Row { name: hook_name(layer, "testTearDown"), cells: vec![None; n] },
    ];
    for (i, it) in layer.iterations.iter().enumerate() {
        for test in &it.tests {
            let at = match tests.iter().position(|(id, _)| *id == test.id) {
                Some(at) => at,
                None => {
                    tests.push((test.id, Row { name: test.name.clone(), cells: vec![None; n] }));
                    tests.len() - 1
                }
            };
            let cell = match &test.phases {
                Some(phases) => {
                    add(&mut hooks[0].cells[i], &phases.test_set_up);
                    add(&mut hooks[1].cells[i], &phases.test_tear_down);
                    Some(pair(&phases.body))
                }
                None => test.delta.as_ref().map(|d| d.blocks_bytes()),
            };
            tests[at].1.cells[i] = cell;
        }
    }
    let mut rows: Vec<Row> = tests.into_iter().map(|(_, row)| row).collect();
    rows.extend(hooks.into_iter().filter(|h| h.cells.iter().any(Option::is_some)));
    rows
}

/// The per-test growth table, when any test was measured.
pub(super) fn tests_table(out: &mut String, layer: &LayerReport) {
    let rows = rows(layer);
    if !rows.iter().any(|r| r.cells.iter().any(Option::is_some)) {
        return;
    }
    let leaking: Vec<&GuestText> = layer.verdict.iter().flat_map(|v| v.tests.iter().map(|t| &t.test)).collect();
    out.push_str("<h3>Per-test growth</h3><table class=\"tests\"><tr><th>test or hook</th>");
    out.push_str("<th>blocks per iteration</th><th>bytes per iteration</th><th>verdict</th></tr>");
    for row in &rows {
        let column = |pick: fn(&(i64, i64)) -> i64| {
            let cells = row.cells.iter().map(|d| d.as_ref().map_or("–".to_string(), |d| format!("{:+}", pick(d))));
            cells.collect::<Vec<_>>().join(" ")
        };
        let leaks = leaking.contains(&&row.name);
        let _ = write!(
            out,
            "<tr class=\"{}\"><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            if leaks { "leaks" } else { "" },
            name(&row.name),
            column(|d| d.0),
            column(|d| d.1),
            if leaks { "leaks" } else { "" }
        );
    }
    out.push_str("</table><p class=\"note\">– : not measured in that iteration (the run measures each test where the verdict needs it)</p>");
}

/// Each tracked type's instances and bytes at the end, and their change since the first iteration's end.
pub(super) fn types_table(out: &mut String, layer: &LayerReport) {
    let snapshots: Vec<&Snapshot> = layer.iterations.iter().filter_map(|i| i.snapshot.as_ref()).collect();
    let (Some(first), Some(last)) = (snapshots.first(), snapshots.last()) else { return };
    if last.types.is_empty() && first.types.is_empty() {
        return;
    }
    let mut rows: BTreeMap<&str, [i64; 4]> = BTreeMap::new();
    for t in &first.types {
        let row = rows.entry(&t.name).or_default();
        row[2] -= t.instances;
        row[3] -= t.bytes;
    }
    for t in &last.types {
        let row = rows.entry(&t.name).or_default();
        row[0] = t.instances;
        row[1] = t.bytes;
        row[2] += t.instances;
        row[3] += t.bytes;
    }
    out.push_str("<h3>Types</h3><table class=\"types\"><tr><th>type</th><th>instances</th><th>bytes</th>");
    out.push_str("<th>instances since iteration 1</th><th>bytes since iteration 1</th></tr>");
    for (type_name, [instances, bytes, d_instances, d_bytes]) in rows {
        let _ = write!(
            out,
            "<tr class=\"{}\"><td>{}</td><td class=\"num\">{instances}</td><td class=\"num\">{bytes}</td>\
             <td class=\"num\">{d_instances:+}</td><td class=\"num\">{d_bytes:+}</td></tr>",
            if d_instances > 0 { "grows" } else { "" },
            name(&GuestText::from(type_name))
        );
    }
    out.push_str("</table>");
}
