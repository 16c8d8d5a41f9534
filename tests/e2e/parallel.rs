//! `-j N`: layers in parallel, output in layer order, equal to the serial run.

use crate::harness::{leakhost, leakhost_with_stack_limit, normalise_times, suite};

fn run(name: &str, extra: &[&str]) -> crate::harness::Run {
    let wasm = suite(name);
    let mut args = vec!["run", wasm.to_str().unwrap()];
    args.extend_from_slice(extra);
    leakhost(args)
}

/// Hides what legitimately differs under -j: times, and the absolute heap sizes of -r
/// (each layer starts from a fresh heap); the changes stay.
fn comparable(stdout: &str) -> String {
    normalise_times(stdout)
        .lines()
        .map(|line| match line.strip_prefix("  live blocks=") {
            Some(_) => {
                let changes: Vec<&str> = line.split_whitespace().filter(|w| w.starts_with("change=")).collect();
                format!("  live blocks=? live bytes=? {}", changes.join(" "))
            }
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn parallel_output_equals_the_serial_run() {
    for (name, flags) in [
        ("samplelayers", &["-N3", "-r", "-vv"][..]),
        ("failures", &["-N2", "-v"][..]),
        ("leak", &["-N4", "-r", "-v"][..]),
    ] {
        let serial = run(name, flags);
        for jobs in ["-j2", "-j4"] {
            let parallel = run(name, &[flags, &[jobs]].concat());
            assert_eq!(parallel.status, serial.status, "{name} {jobs}");
            assert_eq!(comparable(&parallel.stdout), comparable(&serial.stdout), "{name} {jobs}");
        }
    }
}

#[test]
fn parallel_runs_agree_with_each_other_exactly() {
    // Every layer starts from a fresh instance whatever N is, so even the absolute
    // heap sizes agree between any two -j runs.
    let two = normalise_times(&run("leak", &["-N3", "-r", "-j2"]).stdout);
    let three = normalise_times(&run("leak", &["-N3", "-r", "-j3"]).stdout);
    assert_eq!(two, three);
}

#[test]
fn parallel_leak_verdicts_match_serial() {
    let serial = run("leak", &["-N4", "-r"]);
    let parallel = run("leak", &["-N4", "-r", "-j2"]);
    let leaks = |out: &str| out[out.find("\nLeaks:\n").expect("leaks listed")..].to_string();
    assert_eq!(normalise_times(&leaks(&parallel.stdout)), normalise_times(&leaks(&serial.stdout)));
}

/// A trap in setUp or tearDown, or a layer that cannot be torn down, loses the instance
/// and every layer in it: the next layer sets its shared base up again. `-j` must print
/// exactly that, because it walks the same layer state machine as the serial run.
#[test]
fn parallel_equals_serial_where_layer_switches_lose_the_instance() {
    for flags in [&["-v"][..], &["-N2", "-r", "-vv"][..], &["-x"][..]] {
        let serial = run("layertraps", flags);
        let again = |base: &str| serial.stdout.matches(&format!("  Set up layertraps.{base}_Base in ")).count();
        if flags == ["-v"] {
            for base in ["A", "B", "C"] {
                assert_eq!(again(base), 2, "{base}_Base is set up again in the fresh instance:\n{}", serial.stdout);
            }
            // A1's setUp, B1's tearDown, D1's test and E's recursion trap.
            assert_eq!(serial.stdout.matches("Continuing in a fresh instance after").count(), 4, "{}", serial.stdout);
        }
        for jobs in ["-j2", "-j4"] {
            let parallel = run("layertraps", &[flags, &[jobs]].concat());
            assert_eq!(parallel.status, serial.status, "{flags:?} {jobs}");
            let (s, p) = (comparable(&serial.stdout), comparable(&parallel.stdout));
            for (line, (a, b)) in s.lines().zip(p.lines()).enumerate() {
                assert_eq!(a, b, "{flags:?} {jobs}: line {} differs\nserial:\n{s}\nparallel:\n{p}", line + 1);
            }
            assert_eq!(s.lines().count(), p.lines().count(), "{flags:?} {jobs}\nserial:\n{s}\nparallel:\n{p}");
        }
    }
}

#[test]
fn every_layer_passes_in_its_own_instance_under_j() {
    let r = run("layertraps", &["-j2"]);
    // Only the deliberate errors: every *_Next test found its base set up.
    assert!(r.stdout.contains("Total: 9 tests, 0 failures, 6 errors and 0 skipped"), "{}", r.stdout);
}

/// `layertraps` recurses until the wasm stack overflows; a worker thread must hold a
/// `--max-stack` that a serial run holds, or the whole process aborts (it did, exit 134).
#[test]
fn workers_hold_a_large_wasm_stack() {
    for stack in ["2040K", "8M"] {
        let serial = run("layertraps", &["--max-stack", stack]);
        let parallel = run("layertraps", &["--max-stack", stack, "-j", "2"]);
        assert_eq!(parallel.status, 1, "{stack}: {}", parallel.stderr);
        assert_eq!(comparable(&parallel.stdout), comparable(&serial.stdout), "{stack}");
        assert!(parallel.stdout.contains("Error in test test_e_recurses"), "{}", parallel.stdout);
    }
    let r = run("layertraps", &["--max-stack", "2040K", "-j", "2", "-t", "recurses"]);
    assert!(r.stdout.contains("overflowed the wasm stack of 2040 KiB (--max-stack)"), "{}", r.stdout);
}

/// A serial run calls wasm on the main thread when its stack limit holds `--max-stack` and the host
/// margin, else on a thread of that size. `deepstack` needs about 14 MB of native stack: with a 64 MiB
/// limit the main thread's stack grows past the usual 8 MiB to hold it, with an 8 MiB limit a thread
/// does, and under `-j` a worker; with 4M it is the overflow Error, never a crash.
#[test]
fn the_stack_that_runs_wasm_holds_the_whole_max_stack() {
    let wasm = suite("deepstack");
    let wasm = wasm.to_str().unwrap();
    for (limit, jobs) in [(64 << 20, "1"), (8 << 20, "1"), (8 << 20, "2")] {
        let case = format!("limit {} MiB, -j {jobs}", limit >> 20);
        let r = leakhost_with_stack_limit(limit, ["run", wasm, "--max-stack", "32M", "-j", jobs]);
        assert_eq!(r.status, 0, "{case}: {}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains("Ran 1 tests with 0 failures, 0 errors and 0 skipped"), "{case}: {}", r.stdout);
        let r = leakhost_with_stack_limit(limit, ["run", wasm, "--max-stack", "4M", "-j", jobs]);
        assert_eq!(r.status, 1, "{case}: {}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains("overflowed the wasm stack of 4 MiB (--max-stack)"), "{case}: {}", r.stdout);
    }
}
