//! `-j N`: layers in parallel, output in layer order, equal to the serial run.

use crate::harness::{leakhost, normalise_times, suite};

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
