//! A user's ordinary mistakes (issue 27): each gets one `leakhost: error:` line that says what to
//! do, with the exit status README's table documents; a filter that matches nothing fails.

use crate::harness::{leakhost, suite, Run};

fn wasm(name: &str) -> String {
    suite(name).to_str().unwrap().to_string()
}

/// Asserts the exit status and that stderr is exactly `line` (one line); returns stdout.
fn one_line(r: &Run, status: i32, line: &str) -> String {
    assert_eq!(r.status, status, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    assert_eq!(r.stderr, format!("{line}\n"));
    r.stdout.clone()
}

#[test]
fn a_filter_that_matches_nothing_fails_and_names_the_nearest() {
    let samplelayers = wasm("samplelayers");
    let nearest = "nearest tests: test_1 (sampletests.test1.TestNotMuch), test_2 (sampletests.test1.TestNotMuch), \
                   test_3 (sampletests.test1.TestNotMuch)";
    let advice = "to allow that, add --no-tests=warn or --no-tests=pass";
    let expected = format!("leakhost: error: no tests matched -t nope; {nearest}; {advice}");
    for command in ["run", "list"] {
        let out = one_line(&leakhost([command, &samplelayers, "-t", "nope"]), 2, &expected);
        assert_eq!(out, "", "{command} printed before failing");
    }
    let r = leakhost(["run", &samplelayers, "--list-tests", "-t", "nope"]);
    one_line(&r, 2, &expected);

    // The issue's CI command: it used to pass with `Total: 0 tests`.
    let r = leakhost(["run", &samplelayers, "--layer", "Nope", "-N2", "-r", "--fail-on-leak"]);
    let layers = "nearest layers: UnitTests, samplelayers.Layer1, samplelayers.Layer11";
    one_line(&r, 2, &format!("leakhost: error: no tests matched --layer Nope; {layers}; {advice}"));

    let r = leakhost(["run", &samplelayers, "-t", "test_x7"]);
    let near = "nearest tests: test_x0 (sampletests.test1), test_x1 (sampletests.test1.TestA), \
                sampletests.txt (sampletests.test7)";
    one_line(&r, 2, &format!("leakhost: error: no tests matched -t test_x7; {near}; {advice}"));

    let r = leakhost(["list", &samplelayers, "-t", "Layer12", "-u"]);
    one_line(
        &r,
        2,
        &format!(
            "leakhost: error: no tests matched -t Layer12 -u (alone, -t Layer12 selects 0, -u selects 156); \
             -t selects tests, and Layer12 names layers: --layer Layer12; {advice}"
        ),
    );
}

#[test]
fn no_tests_may_warn_or_pass_when_asked() {
    let samplelayers = wasm("samplelayers");
    let total = "Total: 0 tests, 0 failures, 0 errors and 0 skipped in ";
    let warned = leakhost(["run", &samplelayers, "-t", "nope", "--no-tests=warn"]);
    let warning =
        "leakhost: warning: no tests matched -t nope; nearest tests: test_1 (sampletests.test1.TestNotMuch), \
                   test_2 (sampletests.test1.TestNotMuch), test_3 (sampletests.test1.TestNotMuch)";
    assert!(one_line(&warned, 0, warning).starts_with(total), "{}", warned.stdout);
    let passed = leakhost(["run", &samplelayers, "-t", "nope", "--no-tests", "pass"]);
    assert_eq!((passed.status, passed.stderr.as_str()), (0, ""), "{passed:#?}");
    assert!(passed.stdout.starts_with(total), "{}", passed.stdout);
    let listed = leakhost(["list", &samplelayers, "-t", "nope", "--no-tests=pass"]);
    assert_eq!((listed.status, listed.stdout.as_str(), listed.stderr.as_str()), (0, "", ""));
    // A selection that matches is not touched by the flag.
    let some = leakhost(["list", &samplelayers, "-t", "test_x1 \\(sampletests.test1\\.", "--no-tests=fail"]);
    assert_eq!(
        (some.status, some.stdout.as_str()),
        (0, "Listing UnitTests tests:\n  test_x1 (sampletests.test1.TestA)\n")
    );
}

/// Spellings from zope.testrunner, libtest, nextest and pytest that mean what a leakhost flag
/// means: accepted.
#[test]
fn spellings_from_other_runners_that_mean_the_same_are_accepted() {
    let samplelayers = wasm("samplelayers");
    let plain = leakhost(["run", &samplelayers, "-u", "-N2", "-r", "--show-output"]);
    assert_eq!(plain.status, 0, "{plain:#?}");
    for spelling in [
        ["--repeats", "2", "--report-leak", "--nocapture"],
        ["--repeat", "2", "--report-refcount", "--no-capture"],
        ["-N", "2", "--report-leaks", "--show-output"],
    ] {
        let r = leakhost(["run", &samplelayers, "-u"].into_iter().chain(spelling));
        assert_eq!(r.status, 0, "{spelling:?}: {r:#?}");
        assert_eq!(crate::harness::normalise_times(&r.stdout), crate::harness::normalise_times(&plain.stdout));
    }
}

/// Unknown flags and commands: clap's suggestion, or the leakhost flag to use, or the command line
/// that works.
#[test]
fn misspelt_flags_and_commands_say_what_to_write() {
    let s = wasm("samplelayers");
    let see = "(see `leakhost run --help`)";
    let cases: Vec<(Vec<&str>, String)> = vec![
        (vec!["run", &s, "--jsn", "r.json"], format!("unexpected argument '--jsn'; did you mean '--json'? {see}")),
        (vec!["run", &s, "--shufle"], format!("unexpected argument '--shufle'; did you mean '--shuffle'? {see}")),
        (vec!["runn", &s], "unknown command 'runn'; did you mean 'run'? (see `leakhost --help`)".into()),
        (vec![&s], format!("unknown command '{s}'; to run it as a suite: leakhost run {s} (see `leakhost --help`)")),
        (
            vec!["run", &s, "-n4"],
            format!(
                "leakhost has no -n; to repeat, use -N N (--repeat); to run layers in parallel, -j N (--jobs) {see}"
            ),
        ),
        (
            vec!["run", &s, "--test-threads=2"],
            format!(
                "leakhost has no --test-threads; leakhost runs layers in parallel, not tests: use -j N (--jobs) {see}"
            ),
        ),
        (
            vec!["run", &s, "--exact"],
            format!(
                "leakhost has no --exact; -t is a regular-expression search; to match one name exactly, use -t \
                 '^NAME$' {see}"
            ),
        ),
        (
            vec!["-N4", "run", &s, "-r"],
            format!(
                "-N is an option of `leakhost run`, not of leakhost itself; write it after the command: leakhost run \
                 {s} -r -N4 {see}"
            ),
        ),
        (
            vec!["--repeat", "4", "run", &s],
            format!(
                "--repeat is an option of `leakhost run`, not of leakhost itself; write it after the command: \
                 leakhost run {s} --repeat 4 {see}"
            ),
        ),
    ];
    for (args, line) in cases {
        one_line(&leakhost(&args), 2, &format!("leakhost: error: {line}"));
    }
}

/// README: "A flag that needs another says which" (every pair is walked in cli::usage's unit tests).
#[test]
fn a_flag_that_needs_another_says_which() {
    let s = wasm("samplelayers");
    let see = "(see `leakhost run --help`)";
    for flag in [&["--allow", "a.toml"][..], &["--baseline", "b.json"], &["--fail-on-leak"], &["--fail-on-undecided"]] {
        let r = leakhost(["run", &s, "-N4"].iter().chain(flag));
        one_line(&r, 2, &format!("leakhost: error: {} needs -r (--report-refcounts) {see}", flag[0]));
    }
    one_line(&leakhost(["run"]), 2, &format!("leakhost: error: `leakhost run` needs a TARGET {see}"));
    let r = leakhost(["run", &s, "-r"]);
    one_line(&r, 2, "leakhost: error: -r needs -N 2 or more: leaks show as growth between iterations");
}

/// Values that parse but cannot be used name the flag and what to give instead.
#[test]
fn bad_values_name_the_flag() {
    let s = wasm("samplelayers");
    let cases: [(&[&str], &str); 5] = [
        (&["--timeout", "-1"], "--timeout -1: expected a number of seconds, 0 or more"),
        (&["--max-stack", "1G"], "--max-stack 1G: more than the largest allowed, 256M"),
        (&["--dir", "/no/such/dir"], "--dir /no/such/dir: no such directory"),
        (
            &["--max-memory", "lots"],
            "invalid value 'lots' for '--max-memory <SIZE>': \"lots\": expected a size such as 4096, 64K, 256M or 1G \
             (see `leakhost run --help`)",
        ),
        (
            &["--color", "sometimes"],
            "invalid value 'sometimes' for '--color <WHEN>'; [possible values: auto, always, never] (see `leakhost run \
             --help`)",
        ),
    ];
    for (args, line) in cases {
        let r = leakhost(["run", s.as_str()].iter().chain(args));
        one_line(&r, 2, &format!("leakhost: error: {line}"));
    }
}

/// `--help` shows every default from the constant the code uses.
#[test]
fn help_shows_the_defaults_the_run_uses() {
    let help = leakhost(["run", "--help"]).stdout;
    let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for shown in [
        "--max-memory <SIZE> Linear-memory limit per instance, e.g. 64M or 1G [default: 256M]",
        "[default: 512K]",
        "[default: 64K]",
        "each hook, in seconds; 0 for none [default: 60]",
        "[default: 64M]",
        "[default: 50000]",
        "--no-tests <WHAT>",
        "- warn: A warning on stderr; the command goes on and succeeds",
        "- pass: Nothing is said; the command succeeds [default: fail]",
        "--warmup <K> Leading iterations not counted by the leak verdict [default: 1]",
        "[default: cranelift]",
    ] {
        assert!(flat.contains(shown), "run --help lacks {shown:?}:\n{help}");
    }
    let inspect = leakhost(["inspect", &wasm("samplelayers")]).stdout;
    for line in [
        "  memory limit: 256 MiB",
        "  time limit: 60 s per call",
        "  wasm stack: 512 KiB",
        "  output kept per test: 64 KiB",
    ] {
        assert!(inspect.contains(&format!("{line}\n")), "{inspect}");
    }
}
