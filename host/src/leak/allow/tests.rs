use super::*;
use crate::leak::stacks::{Frame, Origin, StackGroup};
use crate::leak::LeakingTest;
use crate::leak::Shape;

fn growth(metric: Metric, per_iteration: i64) -> Growth {
    Growth::from_deltas(metric, vec![per_iteration, per_iteration + 1])
}

/// leak.Mixed as the sample suite leaks: one test, one block and 40 bytes per iteration.
fn mixed() -> Verdict {
    let growth = vec![growth(Metric::Blocks, 1), growth(Metric::Bytes, 40)];
    Verdict {
        shape: Shape::Leaks,
        layer: "leak.Mixed".into(),
        counted: 2,
        growth: growth.clone(),
        tests: vec![LeakingTest { test: "test_13 (leak.Mixed)".into(), growth }],
        evidence: Default::default(),
    }
}

fn unit() -> Verdict {
    Verdict {
        shape: Shape::Leaks,
        layer: "UnitTests".into(),
        counted: 2,
        growth: vec![growth(Metric::Blocks, 1)],
        tests: Vec::new(),
        evidence: Default::default(),
    }
}

fn clean() -> Verdict {
    Verdict {
        shape: Shape::Flat,
        layer: "clean".into(),
        counted: 2,
        growth: Vec::new(),
        tests: Vec::new(),
        evidence: Default::default(),
    }
}

/// Allowed by the entries at `lines` of leakhost.toml, for `reasons`.
fn allowed(lines: &[usize], reasons: &[&str]) -> Status {
    Status::Allowed {
        places: lines.iter().map(|l| format!("leakhost.toml:{l}")).collect(),
        reasons: reasons.iter().map(|r| r.to_string()).collect(),
    }
}

fn parse(text: &str) -> Result<Allowances, AllowError> {
    Allowances::parse(Path::new("leakhost.toml"), text)
}

/// Judges `verdicts` without stacks, as with `--no-stacks`.
fn judge(allow: &Allowances, verdicts: &[Verdict]) -> Judgement {
    let leaks: Vec<Leak<'_>> = verdicts.iter().map(|verdict| Leak { verdict, stacks: None }).collect();
    allow.judge(&leaks)
}

#[test]
fn a_test_entry_excuses_its_test_and_a_layer_entry_its_layer() {
    let allow = parse(
        "[[allow]]\ntest = 'test_13'\nreason = 'bounded cache'\n\n[[allow]]\nlayer = '^UnitTests$'\nreason = 'known'\n",
    )
    .unwrap();
    let judgement = judge(&allow, &[mixed(), clean(), unit()]);
    assert_eq!(judgement.leaks.len(), 2, "clean layers are not judged");
    assert_eq!(judgement.leaks[0].status, allowed(&[1], &["bounded cache"]));
    assert_eq!(judgement.leaks[1].status, allowed(&[5], &["known"]));
    assert!(judgement.stale.is_empty());
    assert_eq!(judgement.failing().count(), 0);
}

#[test]
fn growth_beyond_the_bound_fails_and_within_it_does_not() {
    let over = judge(&parse("[[allow]]\nlayer = 'Mixed'\nmax_bytes = 39\nreason = 'r'\n").unwrap(), &[mixed()]);
    let Status::OverBound { metric, grew, bound, place, .. } = &over.leaks[0].status else { panic!("{over:?}") };
    assert_eq!((metric.as_str(), *grew, *bound, place.as_str()), ("bytes", 40, 39, "leakhost.toml:1"));
    assert_eq!(over.failing().count(), 1);
    let within = parse("[[allow]]\nlayer = 'Mixed'\nmax_bytes = 40\nmax_blocks = 1\nreason = 'r'\n").unwrap();
    assert_eq!(judge(&within, &[mixed()]).failing().count(), 0);
}

#[test]
fn an_entry_that_matches_nothing_is_stale_and_excuses_nothing() {
    let allow = parse("[[allow]]\ntest = 'test_99'\nreason = 'fixed long ago'\n").unwrap();
    let judgement = judge(&allow, &[mixed(), unit()]);
    assert_eq!(judgement.stale.len(), 1);
    assert_eq!(judgement.stale[0].reason, "fixed long ago");
    assert_eq!(judgement.failing().count(), 2);
    // A test entry cannot excuse a layer whose growth no test explains.
    let unit_only = judge(&parse("[[allow]]\ntest = '.'\nreason = 'r'\n").unwrap(), &[unit()]);
    assert_eq!(unit_only.leaks[0].status, Status::NotAllowed);
}

#[test]
fn a_malformed_file_names_its_line() {
    let missing_reason = parse("# known leaks\n\n[[allow]]\nlayer = 'x'\n").unwrap_err();
    assert_eq!(missing_reason.line, 3);
    assert!(missing_reason.to_string().starts_with("leakhost.toml:3: an allowance needs a `reason`"));
    let bad_regex = parse("[[allow]]\nreason = 'r'\ntest = '('\n").unwrap_err();
    assert_eq!(bad_regex.line, 1);
    assert!(bad_regex.message.starts_with("test: \"(\" is not a valid pattern"), "{bad_regex}");
    let typo = parse("[[allow]]\nreason = 'r'\nlayer = 'x'\nmax_blockz = 3\n").unwrap_err();
    assert_eq!(typo.line, 4, "{typo}");
    let syntax = parse("[[allow]]\nreason = 'r'\nlayer = \n").unwrap_err();
    assert_eq!(syntax.line, 3, "{syntax}");
    assert!(parse("[[allow]]\nreason = 'r'\n").unwrap_err().message.contains("a `layer`, a `test` or a `frame`"));
    assert!(parse("").unwrap().is_empty());
}

/// leakstacks.Visits as the sample suite leaks: two tests through one helper.
fn visits() -> Verdict {
    let test = |name: &str| LeakingTest { test: name.into(), growth: vec![growth(Metric::Blocks, 1)] };
    Verdict {
        shape: Shape::Leaks,
        layer: "leakstacks.Visits".into(),
        counted: 8,
        growth: vec![growth(Metric::Blocks, 2), growth(Metric::Bytes, 38)],
        tests: vec![test("test_visit_a"), test("test_visit_b")],
        evidence: Default::default(),
    }
}

/// Its stacks: the visits themselves (both tests), and the vector that holds them growing.
fn visit_stacks() -> LeakStacks {
    let frame = |function: &str, line| Frame {
        function: function.into(),
        file: Some("src/lib.rs".into()),
        path: None,
        line: Some(line),
        module_offsets: vec![1],
        origin: Origin::User,
    };
    let group = |blocks, bytes, tests: &[&str], frames| StackGroup {
        blocks,
        bytes,
        iterations: 3,
        tests: tests.iter().map(|&t| t.into()).collect(),
        frames,
        user_frames: true,
    };
    LeakStacks {
        groups: vec![
            group(
                6,
                72,
                &["test_visit_a", "test_visit_b"],
                vec![frame("leakstacks::record_visit", 144), frame("leakstacks::test_visit", 150)],
            ),
            group(
                1,
                32,
                &["test_visit_a"],
                vec![
                    frame("leakstacks::record_visit::{closure#0}", 145),
                    frame("leakstacks::record_visit", 145),
                    frame("leakstacks::test_visit", 150),
                ],
            ),
        ],
        notes: Vec::new(),
        partial: false,
    }
}

/// What the allowances `toml` make of leakstacks.Visits with `stacks`.
fn judge_with(toml: &str, stacks: Option<&LeakStacks>) -> Judgement {
    parse(toml).unwrap().judge(&[Leak { verdict: &visits(), stacks }])
}

#[test]
fn a_frame_entry_excuses_a_layer_whose_every_stack_has_a_matching_frame() {
    let stacks = visit_stacks();
    let judgement =
        judge_with("[[allow]]\nframe = '^leakstacks::record_visit$'\nreason = 'visits are kept'\n", Some(&stacks));
    assert_eq!(judgement.leaks[0].status, allowed(&[1], &["visits are kept"]));
    assert!(judgement.stale.is_empty() && judgement.unchecked.is_empty());
    // Each stack by a frame entry of its own, one of them by `file:line`.
    let two = "[[allow]]\nframe = 'src/lib\\.rs:144$'\nreason = 'a'\n\n[[allow]]\nframe = 'closure'\nreason = 'b'\n";
    assert_eq!(judge_with(two, Some(&stacks)).leaks[0].status, allowed(&[1, 5], &["a", "b"]));
    // The first matching entry takes a stack; one that matches none after it is stale.
    let shadowed = "[[allow]]\nframe = 'record_visit'\nreason = 'a'\n\n[[allow]]\nframe = 'closure'\nreason = 'b'\n";
    let judgement = judge_with(shadowed, Some(&stacks));
    assert_eq!(judgement.leaks[0].status, allowed(&[1], &["a"]));
    assert_eq!(judgement.stale.iter().map(|e| e.place.as_str()).collect::<Vec<_>>(), ["leakhost.toml:5"]);
}

#[test]
fn a_frame_entry_that_matches_no_stack_excuses_nothing_and_is_stale() {
    let stacks = visit_stacks();
    let judgement = judge_with("[[allow]]\nframe = 'describe'\nreason = 'r'\n", Some(&stacks));
    assert_eq!(judgement.leaks[0].status, Status::NotAllowed);
    assert_eq!(judgement.stale.len(), 1);
    // Nor does one whose layer pattern leaves the layer out, whatever its frames.
    let other_layer = judge_with("[[allow]]\nlayer = 'Fixture'\nframe = 'record_visit'\nreason = 'r'\n", Some(&stacks));
    assert_eq!(other_layer.leaks[0].status, Status::NotAllowed);
    assert_eq!(other_layer.stale.len(), 1);
    // A run without leaks leaves every frame entry stale.
    assert_eq!(parse("[[allow]]\nframe = 'x'\nreason = 'r'\n").unwrap().judge(&[]).stale.len(), 1);
}

#[test]
fn one_stack_matched_and_another_not_is_not_allowed() {
    let stacks = visit_stacks();
    let judgement = judge_with("[[allow]]\nframe = 'closure'\nreason = 'r'\n", Some(&stacks));
    let first = GuestText::from("leakstacks::record_visit  src/lib.rs:144");
    assert_eq!(judgement.leaks[0].status, Status::StacksUnmatched { unmatched: 1, of: 2, first });
    assert_eq!(judgement.failing().count(), 1);
    assert!(judgement.stale.is_empty(), "it matched a stack");
    // An entry naming a test excuses only blocks every allocating test of which it names.
    let scoped = "[[allow]]\ntest = '^test_visit_a$'\nframe = 'record_visit'\nreason = 'r'\n";
    let Status::StacksUnmatched { unmatched: 1, .. } = judge_with(scoped, Some(&stacks)).leaks[0].status else {
        panic!("the stack test_visit_b shares is not excused")
    };
}

#[test]
fn a_frame_entry_bounds_the_blocks_and_bytes_it_excuses_per_iteration() {
    let stacks = visit_stacks();
    // 7 blocks and 104 bytes in 3 counted iterations: 3 blocks and 35 bytes each, rounded up.
    let over = judge_with("[[allow]]\nframe = 'record_visit'\nmax_blocks = 2\nreason = 'r'\n", Some(&stacks));
    let Status::OverBound { what, metric, grew, bound, place, .. } = &over.leaks[0].status else { panic!("{over:?}") };
    assert_eq!(what.raw(), "the leak at frame \"record_visit\"");
    assert_eq!((metric.as_str(), *grew, *bound, place.as_str()), ("blocks", 3, 2, "leakhost.toml:1"));
    let within = "[[allow]]\nframe = 'record_visit'\nmax_blocks = 3\nmax_bytes = 35\nreason = 'r'\n";
    assert_eq!(judge_with(within, Some(&stacks)).failing().count(), 0);
    let bytes = judge_with(&within.replace("35", "34"), Some(&stacks));
    let Status::OverBound { grew: 35, bound: 34, .. } = bytes.leaks[0].status else { panic!("{bytes:?}") };
}

#[test]
fn without_stacks_a_frame_entry_is_unchecked_not_stale_and_excuses_nothing() {
    let toml = "[[allow]]\nframe = 'record_visit'\nreason = 'r'\n";
    let judgement = judge_with(toml, None);
    let Status::NeedsStacks { why } = &judgement.leaks[0].status else { panic!("{judgement:?}") };
    assert!(why.raw().contains("--no-stacks"), "{why:?}");
    assert!(judgement.stale.is_empty());
    assert_eq!(judgement.unchecked.len(), 1);
    assert_eq!(judgement.failing().count(), 1);
    // A suite that cannot trace: the note says why.
    let v1 = LeakStacks::unavailable("no allocation stacks: the suite speaks ABI v1".into());
    let Status::NeedsStacks { why } = &judge_with(toml, Some(&v1)).leaks[0].status else { panic!() };
    assert_eq!(why.raw(), "no allocation stacks: the suite speaks ABI v1");
    // Stacks that may miss leaked blocks cannot excuse the whole leak.
    let mut partial = visit_stacks();
    partial.partial = true;
    partial.notes.push("1 blocks (16 bytes) have no captured stack".into());
    let Status::NeedsStacks { why } = &judge_with(toml, Some(&partial)).leaks[0].status else { panic!() };
    assert_eq!(why.raw(), "not every leaked block has one: 1 blocks (16 bytes) have no captured stack");
    // Layer and test entries need no stacks.
    let named = judge_with(
        "[[allow]]\nframe = 'record_visit'\nreason = 'r'\n\n[[allow]]\ntest = 'visit'\nreason = 'n'\n",
        None,
    );
    assert_eq!(named.leaks[0].status, allowed(&[5], &["n"]));
}

#[test]
fn a_frame_entry_needs_a_valid_pattern_and_nothing_else() {
    let only_frame = parse("[[allow]]\nframe = 'leakstacks::audit'\nreason = 'r'\n").unwrap();
    assert!(!only_frame.is_empty());
    let bad = parse("# frames\n[[allow]]\nreason = 'r'\nframe = 'audit('\n").unwrap_err();
    assert_eq!(bad.line, 2);
    assert!(bad.to_string().starts_with("leakhost.toml:2: frame: \"audit(\" is not a valid pattern"), "{bad}");
    let negated = parse("[[allow]]\nreason = 'r'\nframe = '!audit'\n").unwrap_err();
    assert_eq!(negated.to_string(), "leakhost.toml:1: frame: a frame pattern cannot be negated with `!`");
}
