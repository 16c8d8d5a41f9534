use super::*;

fn snap(blocks: u64, bytes: u64, pages: u64, types: &[(&str, i64)], user: &[(&str, i64)]) -> Snapshot {
    Snapshot {
        live_blocks: blocks,
        live_bytes: bytes,
        total_allocs: 0,
        memory_bytes: pages * PAGE_SIZE,
        types: types.iter().map(|(n, i)| TypeCount { name: (*n).into(), instances: *i, bytes: i * 8 }).collect(),
        user: user.iter().map(|(n, v)| ((*n).into(), *v)).collect(),
    }
}

fn delta(blocks: i64, bytes: i64) -> Delta {
    Delta { blocks, bytes, ..Delta::default() }
}

fn metrics(g: &[Growth]) -> Vec<String> {
    g.iter().map(|g| g.metric.to_string()).collect()
}

#[test]
fn diff_subtracts_and_leaves_out_zero_rows() {
    let a = snap(10, 100, 2, &[("A", 1), ("B", 2)], &[("open", 1)]);
    let b = snap(12, 90, 3, &[("A", 1), ("B", 3), ("C", 1)], &[("open", 1), ("new", 2)]);
    let d = diff(&a, &b);
    assert_eq!((d.blocks, d.bytes, d.pages), (2, -10, 1));
    let names: Vec<&str> = d.types.iter().map(|t| &*t.name).collect();
    assert_eq!(names, ["B", "C"]);
    assert_eq!(d.types[0], TypeDelta { name: "B".into(), instances: 1, bytes: 8 });
    assert_eq!(d.counters, vec![("new".into(), 2)]);
    assert!(diff(&a, &a).is_zero());
}

#[test]
fn a_type_that_disappears_counts_as_a_decrease() {
    let d = diff(&snap(0, 0, 0, &[("A", 2)], &[]), &snap(0, 0, 0, &[], &[]));
    assert_eq!(d.types, vec![TypeDelta { name: "A".into(), instances: -2, bytes: -16 }]);
}

#[test]
fn constant_growth_leaks() {
    let (a, b, c) = (delta(2, 64), delta(2, 64), delta(2, 64));
    let g = growth(&[Some(&a), Some(&b), Some(&c)]);
    assert_eq!(metrics(&g), ["blocks", "bytes"]);
    assert_eq!(g[0].per_iteration(), 2);
}

#[test]
fn noisy_series_with_a_zero_does_not_leak() {
    let (a, b, c) = (delta(3, 10), delta(0, 0), delta(1, 5));
    assert!(growth(&[Some(&a), Some(&b), Some(&c)]).is_empty());
}

#[test]
fn shrinking_series_does_not_leak() {
    let (a, b) = (delta(-1, -8), delta(-1, -8));
    assert!(growth(&[Some(&a), Some(&b)]).is_empty());
}

#[test]
fn single_spike_does_not_leak() {
    let (a, b, c) = (delta(0, 0), delta(50, 4096), delta(0, 0));
    assert!(growth(&[Some(&a), Some(&b), Some(&c)]).is_empty());
}

#[test]
fn type_and_counter_growth_is_named() {
    let mut a = delta(0, 0);
    a.types.push(TypeDelta { name: "leak::Leakable".into(), instances: 1, bytes: 8 });
    a.counters.push(("open handles".into(), 1));
    let g = growth(&[Some(&a), Some(&a)]);
    assert_eq!(metrics(&g), ["leak::Leakable instances", "counter \"open handles\""]);
}

#[test]
fn a_type_missing_from_one_delta_did_not_grow_there() {
    let mut a = delta(0, 0);
    a.types.push(TypeDelta { name: "T".into(), instances: 1, bytes: 8 });
    let b = delta(0, 0);
    assert!(growth(&[Some(&a), Some(&b)]).is_empty());
}

#[test]
fn broken_iterations_are_not_counted() {
    let a = delta(1, 1);
    let g = growth(&[Some(&a), None, Some(&a)]);
    assert_eq!(g[0].deltas, vec![1, 1]);
    assert!(growth(&[None, None]).is_empty());
}

#[test]
fn counting_skips_warmup_and_the_iteration_after_a_fresh_instance() {
    assert_eq!(counted_iterations(4, 1, &[false; 4]), [false, true, true, true]);
    assert_eq!(counted_iterations(4, 2, &[false; 4]), [false, false, true, true]);
    assert_eq!(counted_iterations(4, 0, &[false; 4]), [true, true, true, true]);
    assert_eq!(counted_iterations(5, 1, &[false, true, false, false, false]), [false, false, false, true, true]);
}

#[test]
fn a_series_stops_growing_at_its_first_flat_delta() {
    let (up, flat) = (delta(1, 8), delta(0, 0));
    assert!(still_growing(&[]));
    assert!(still_growing(&[None]));
    assert!(still_growing(&[Some(up.clone()), None, Some(up.clone())]));
    assert!(!still_growing(&[Some(up.clone()), Some(flat.clone())]));
    // Blocks grow one time and bytes the other: no single quantity grows every time.
    assert!(!still_growing(&[Some(delta(1, 0)), Some(delta(0, 1))]));
}
