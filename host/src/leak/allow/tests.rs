use super::*;
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
    }
}

fn unit() -> Verdict {
    Verdict {
        shape: Shape::Leaks,
        layer: "UnitTests".into(),
        counted: 2,
        growth: vec![growth(Metric::Blocks, 1)],
        tests: Vec::new(),
    }
}

fn clean() -> Verdict {
    Verdict { shape: Shape::Flat, layer: "clean".into(), counted: 2, growth: Vec::new(), tests: Vec::new() }
}

fn parse(text: &str) -> Result<Allowances, AllowError> {
    Allowances::parse(Path::new("leakhost.toml"), text)
}

#[test]
fn a_test_entry_excuses_its_test_and_a_layer_entry_its_layer() {
    let allow = parse(
        "[[allow]]\ntest = 'test_13'\nreason = 'bounded cache'\n\n[[allow]]\nlayer = '^UnitTests$'\nreason = 'known'\n",
    )
    .unwrap();
    let judgement = allow.judge(&[mixed(), clean(), unit()]);
    assert_eq!(judgement.leaks.len(), 2, "clean layers are not judged");
    assert_eq!(judgement.leaks[0].status, Status::Allowed { reasons: vec!["bounded cache".into()] });
    assert_eq!(judgement.leaks[1].status, Status::Allowed { reasons: vec!["known".into()] });
    assert!(judgement.stale.is_empty());
    assert_eq!(judgement.failing().count(), 0);
}

#[test]
fn growth_beyond_the_bound_fails_and_within_it_does_not() {
    let over = parse("[[allow]]\nlayer = 'Mixed'\nmax_bytes = 39\nreason = 'r'\n").unwrap().judge(&[mixed()]);
    let Status::OverBound { metric, grew, bound, place, .. } = &over.leaks[0].status else { panic!("{over:?}") };
    assert_eq!((metric.as_str(), *grew, *bound, place.as_str()), ("bytes", 40, 39, "leakhost.toml:1"));
    assert_eq!(over.failing().count(), 1);
    let within = parse("[[allow]]\nlayer = 'Mixed'\nmax_bytes = 40\nmax_blocks = 1\nreason = 'r'\n").unwrap();
    assert_eq!(within.judge(&[mixed()]).failing().count(), 0);
}

#[test]
fn an_entry_that_matches_nothing_is_stale_and_excuses_nothing() {
    let allow = parse("[[allow]]\ntest = 'test_99'\nreason = 'fixed long ago'\n").unwrap();
    let judgement = allow.judge(&[mixed(), unit()]);
    assert_eq!(judgement.stale.len(), 1);
    assert_eq!(judgement.stale[0].reason, "fixed long ago");
    assert_eq!(judgement.failing().count(), 2);
    // A test entry cannot excuse a layer whose growth no test explains.
    let unit_only = parse("[[allow]]\ntest = '.'\nreason = 'r'\n").unwrap().judge(&[unit()]);
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
    assert!(parse("[[allow]]\nreason = 'r'\n").unwrap_err().message.contains("`layer` or a `test`"));
    assert!(parse("").unwrap().is_empty());
}
