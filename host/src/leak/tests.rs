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
    let names: Vec<&str> = d.types.iter().map(|t| t.name.raw()).collect();
    assert_eq!(names, ["B", "C"]);
    assert_eq!(d.types[0], TypeDelta { name: "B".into(), instances: 1, bytes: 8 });
    assert_eq!(d.counters, vec![("new".into(), 2)]);
    assert!(diff(&a, &a).is_zero());
}

#[test]
fn diff_adds_up_repeated_names_and_merges_rows_of_either_side() {
    // Rows come sorted by name; a suite may report one name twice.
    let a = snap(0, 0, 0, &[("A", 1), ("B", 1), ("B", 2), ("D", 4)], &[("x", 1), ("x", 1), ("z", 3)]);
    let b = snap(0, 0, 0, &[("B", 3), ("C", 5), ("D", 4), ("E", 1), ("E", 1)], &[("x", 2), ("y", 1)]);
    let d = diff(&a, &b);
    let types: Vec<(&str, i64)> = d.types.iter().map(|t| (t.name.raw(), t.instances)).collect();
    assert_eq!(types, [("A", -1), ("C", 5), ("E", 2)]);
    let counters: Vec<(&str, i64)> = d.counters.iter().map(|(n, v)| (n.raw(), *v)).collect();
    assert_eq!(counters, [("y", 1), ("z", -3)]);
}

#[test]
fn a_type_that_disappears_counts_as_a_decrease() {
    let d = diff(&snap(0, 0, 0, &[("A", 2)], &[]), &snap(0, 0, 0, &[], &[]));
    assert_eq!(d.types, vec![TypeDelta { name: "A".into(), instances: -2, bytes: -16 }]);
}

/// The shape of a series of block changes, one per counted iteration.
fn shape(blocks: &[i64]) -> Shape {
    shape_of(blocks).0
}

/// `n` iterations growing by 1 every `k`-th one, from iteration `k`.
fn every(k: usize, n: usize) -> Vec<i64> {
    (1..=n).map(|i| i64::from(i % k == 0)).collect()
}

#[test]
fn constant_growth_leaks_once_it_spans_the_horizon() {
    assert_eq!(shape(&[2; 3]), Shape::Undecided, "three iterations cannot tell a leak from a fill");
    assert_eq!(shape(&[2; HORIZON]), Shape::Leaks);
    assert_eq!(shape(&[2; 20]), Shape::Leaks);
}

#[test]
fn growth_every_kth_iteration_leaks_for_k_up_to_8() {
    for k in 1..=8 {
        // Decided by the time it has grown MIN_GROWTHS times over at least HORIZON iterations.
        let bound = (MIN_GROWTHS * k).max(HORIZON.div_ceil(k) * k + k);
        let decided = (1..=bound).find(|&m| shape(&every(k, m)) == Shape::Leaks);
        let m = decided.unwrap_or_else(|| panic!("every {k}: not a leak within {bound}: {:?}", every(k, bound)));
        assert_eq!(shape_of(&every(k, m)).1, k, "period of every {k}");
        // Never settled on the way there, nor after: each pause is shorter than settling needs.
        for m in 1..=bound + 3 * k {
            assert_ne!(shape(&every(k, m)), Shape::Settled, "every {k}, after {m}");
        }
    }
}

#[test]
fn growth_at_doubling_points_leaks_and_never_settles_on_the_way() {
    // A table that doubles: it grows at iterations 4, 8 and 16.
    let series: Vec<i64> = (1..=20).map(|i| i64::from([4, 8, 16].contains(&i))).collect();
    assert_eq!(shape(&series), Shape::Leaks);
    for m in 1..=20 {
        assert_ne!(shape(&series[..m]), Shape::Settled, "after {m}: {:?}", &series[..m]);
    }
}

#[test]
fn fill_then_flat_settles_after_staying_flat_as_long_as_the_horizon() {
    let fill = |grow: usize, flat: usize| [vec![1; grow], vec![0; flat]].concat();
    assert_eq!(shape(&fill(3, 1)), Shape::Undecided);
    assert_eq!(shape(&fill(3, HORIZON - 1)), Shape::Undecided);
    assert_eq!(shape(&fill(3, HORIZON)), Shape::Settled);
    assert_eq!(shape(&fill(5, HORIZON)), Shape::Settled);
    // A fill longer than the horizon must stay flat as long as it grew.
    assert_eq!(shape(&fill(10, 9)), Shape::Undecided);
    assert_eq!(shape(&fill(10, 10)), Shape::Settled);
}

#[test]
fn shrinking_and_flat_series_are_flat() {
    assert_eq!(shape(&[-1, -8, -1]), Shape::Flat);
    assert_eq!(shape(&[0; 12]), Shape::Flat);
    assert!(growth(&[Some(&delta(-1, -8)), Some(&delta(-1, -8))]).is_empty());
}

#[test]
fn one_spike_settles() {
    let mut series = vec![0; 12];
    series[1] = 50;
    assert_eq!(shape(&series[..4]), Shape::Undecided);
    assert_eq!(shape(&series), Shape::Settled);
}

#[test]
fn type_and_counter_growth_is_named() {
    let mut a = delta(0, 0);
    a.types.push(TypeDelta { name: "leak::Leakable".into(), instances: 1, bytes: 8 });
    a.counters.push(("open handles".into(), 1));
    let series = vec![Some(&a); HORIZON];
    let g = growth(&series);
    assert_eq!(metrics(&g), ["leak::Leakable instances", "counter \"open handles\""]);
    assert!(g.iter().all(|g| g.shape == Shape::Leaks && g.grew == HORIZON && g.net == HORIZON as i64));
}

#[test]
fn broken_iterations_are_not_counted() {
    let a = delta(1, 1);
    let g = growth(&[Some(&a), None, Some(&a)]);
    assert_eq!(g[0].deltas, vec![1, 1]);
    assert!(growth(&[None, None]).is_empty());
}

#[test]
fn a_broken_iteration_does_not_hide_a_leak() {
    let a = delta(1, 16);
    let mut series: Vec<Option<&Delta>> = vec![Some(&a); HORIZON + 2];
    series[3] = None;
    series[4] = None;
    assert!(growth(&series).iter().all(|g| g.shape == Shape::Leaks));
}

#[test]
fn counting_skips_warmup_and_the_iteration_after_a_fresh_instance() {
    assert_eq!(counted_iterations(4, 1, &[false; 4]), [false, true, true, true]);
    assert_eq!(counted_iterations(4, 2, &[false; 4]), [false, false, true, true]);
    assert_eq!(counted_iterations(4, 0, &[false; 4]), [true, true, true, true]);
    assert_eq!(counted_iterations(5, 1, &[false, true, false, false, false]), [false, false, false, true, true]);
}

#[test]
fn levels_are_the_running_sum_and_only_new_maxima_grow() {
    assert_eq!(levels_of(&[1, 1, 1, -3, 1, 1, 1, -3]), [1, 2, 3, 0, 1, 2, 3, 0]);
    // A flushing batch grows only until its first maximum.
    let batch: Vec<i64> = (1..=12).map(|i| if i % 4 == 0 { -3 } else { 1 }).collect();
    let g = Growth::from_deltas(Metric::Blocks, batch);
    assert_eq!((g.grew, g.net, g.shape), (3, 0, Shape::Settled), "{g:?}");
    // A first drop must be made up before anything counts as growth.
    assert_eq!(shape(&[-5, 1, 1, 1, 1, 1]), Shape::Flat);
    assert_eq!(shape(&[53, 53, -106, 53, 53, -106, 53, 53, -106, 53, 53, -106]), Shape::Settled);
}

#[test]
fn rate_and_net_come_from_the_levels() {
    // +2 then -1: the level's maximum rises by 1 every 2 iterations.
    let g = Growth::from_deltas(Metric::Blocks, [2, -1].repeat(6));
    assert_eq!((g.per_iteration(), g.period, g.grew, g.net, g.shape), (1, 2, 6, 6, Shape::Leaks), "{g:?}");
    assert_eq!(g.levels, [2, 1, 3, 2, 4, 3, 5, 4, 6, 5, 7, 6]);
    // A drop to a floor that rises: +1 +1 +1 -2.
    let g = Growth::from_deltas(Metric::Blocks, [1, 1, 1, -2].repeat(5));
    assert_eq!((g.per_iteration(), g.period, g.shape), (1, 4, Shape::Leaks), "{g:?}");
}

#[test]
fn pages_are_judged_only_while_the_heap_is_quiet() {
    let page = Delta { pages: 1, ..Delta::default() };
    let g = growth(&[Some(&page); HORIZON]);
    assert_eq!(metrics(&g), ["pages"]);
    assert_eq!(g[0].shape, Shape::Leaks);
    let both = Delta { blocks: 1, bytes: 70_000, pages: 1, ..Delta::default() };
    assert_eq!(metrics(&growth(&[Some(&both); HORIZON])), ["blocks", "bytes"]);
}

#[test]
fn bytes_growing_at_doubling_spacings_with_no_new_block_is_capacity_growth() {
    let at = |points: &[usize], blocks: i64| -> Vec<Delta> {
        (1..=20).map(|i| if points.contains(&i) { delta(blocks, 100 * i as i64) } else { delta(0, 0) }).collect()
    };
    let judged = |series: &[Delta]| growth(&series.iter().map(Some).collect::<Vec<_>>());
    let bytes = |g: Vec<Growth>| g.into_iter().find(|g| g.metric == Metric::Bytes).unwrap();
    assert!(bytes(judged(&at(&[1, 2, 4, 8, 16], 0))).capacity);
    assert!(bytes(judged(&at(&[3, 7, 14], 0))).capacity, "a hash table's 4, 7, 14");
    assert!(!bytes(judged(&at(&[1, 2, 4, 8, 16], 1))).capacity, "a new block each time is not capacity");
    assert!(!bytes(judged(&at(&[3, 6, 9, 12, 15], 0))).capacity, "even spacing is a periodic leak");
    assert!(!bytes(judged(&at(&[1, 2], 0))).capacity, "two growths tell no spacing");
}
