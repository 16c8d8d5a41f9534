//! The same numbers on every engine: each sample suite's JSON report is byte-identical
//! under Cranelift and Pulley, follows `--seed` and nothing else, and ignores the
//! user's environment (docs/determinism.md). tests/cross-arch.sh repeats the
//! comparison on aarch64.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{cache_dir, suite};

const ENGINES: [&str; 2] = ["cranelift", "pulley"];

/// A fresh directory for this test's files.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("leakhost-e2e-determinism-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `leakhost` with `args` and extra environment; returns (status, stdout).
fn leakhost_with_env(args: &[&str], env: &[(&str, &Path)]) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_leakhost"));
    command.args(args).env_remove("CARGO_TARGET_DIR").env_remove("WASMTIME_BACKTRACE_DETAILS").env("NO_COLOR", "1");
    command.env("LEAKHOST_CACHE_DIR", cache_dir());
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command.output().expect("leakhost runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One run of a suite: exit status, stdout and the JSON report.
struct Report {
    status: i32,
    stdout: String,
    json: String,
}

/// Runs suite `name` with `flags`, writing its JSON report to `json`.
fn report(name: &str, flags: &[&str], json: &Path, env: &[(&str, &Path)]) -> Report {
    let wasm = suite(name);
    let mut args = vec!["run", wasm.to_str().unwrap(), "--no-timings", "--json", json.to_str().unwrap()];
    args.extend_from_slice(flags);
    let (status, stdout) = leakhost_with_env(&args, env);
    let text = std::fs::read_to_string(json).unwrap_or_else(|e| panic!("{name} {flags:?}: no report ({e}):\n{stdout}"));
    Report { status, stdout, json: text }
}

/// Every sample suite, with flags that exercise repeats and leak reports where the suite has them.
/// The faults suite's endless loop ends on fuel, the deterministic limit; `--timeout` would not be.
const SUITES: [(&str, &[&str]); 13] = [
    ("samplelayers", &["-N3", "-r"]),
    ("failures", &["-N2"]),
    ("leak", &["-N4", "-r"]),
    ("faults", &["--timeout", "0", "--fuel", "100000000", "--max-memory", "32M"]),
    ("determinism", &["-N3", "-r"]),
    ("layertraps", &["-N2", "-r"]),
    ("hostile", &["-N2", "-r"]),
    ("sdkforms", &["-N3", "-r"]),
    ("verdicts", &["-N4", "-r"]),
    ("leakstacks", &["-N4", "-r"]),
    ("inventory_leaks", &["-N4", "-r"]),
    ("snapshots", &["-N2"]),
    ("deepstack", &["--max-stack", "32M"]),
];

#[test]
fn both_engines_write_byte_identical_reports_for_every_suite() {
    let dir = scratch("engines");
    for (name, flags) in SUITES {
        let [cranelift, pulley] = ENGINES.map(|engine| {
            let json = dir.join(format!("{name}-{engine}.json"));
            report(name, &[flags, &["--engine", engine]].concat(), &json, &[])
        });
        assert_eq!(cranelift.status, pulley.status, "{name}: exit status");
        assert!(cranelift.json == pulley.json, "{name}: the reports differ; see {}", dir.display());
    }
    // Not vacuous: the reports hold the values the determinism suite prints.
    let text = std::fs::read_to_string(dir.join("determinism-pulley.json")).unwrap();
    for seen in
        ["random bytes: ", "f64 0/0: 0x7ff8000000000000", "i32x4.relaxed_trunc_f32x4_s: [00000000", "nan bits f64"]
    {
        assert!(text.contains(seen), "{seen:?} missing from the report");
    }
}

/// The members of the sample-tests workspace, read from its Cargo.toml.
fn sample_suites() -> Vec<String> {
    let manifest = std::fs::read_to_string(crate::harness::repo().join("sample-tests/Cargo.toml")).unwrap();
    let list = manifest.split_once("members = [").and_then(|(_, rest)| rest.split_once(']')).expect("a members list").0;
    list.split(',').map(|m| m.trim().trim_matches('"').to_string()).filter(|m| !m.is_empty()).collect()
}

#[test]
fn every_sample_suite_is_compared() {
    // A suite added to sample-tests must join SUITES (with flags that make it finish on fuel, not time).
    let compared: Vec<&str> = SUITES.iter().map(|(name, _)| *name).collect();
    let members = sample_suites();
    assert!(members.iter().any(|m| m == "determinism"), "members not read: {members:?}");
    for member in members {
        // A member that builds no module is a library the suites use (inventory).
        let module = member.replace('-', "_");
        if !crate::harness::suite_dir().join(format!("{module}.wasm")).is_file() {
            continue;
        }
        assert!(compared.contains(&module.as_str()), "sample suite {member} is not in SUITES of {}", file!());
    }
}

/// The output the determinism suite's test `test` printed in the first iteration.
fn first_output<'a>(report: &'a str, test: &str) -> &'a str {
    let at = report.find(&format!("\"name\": \"{test}\"")).unwrap_or_else(|| panic!("{test} not in the report"));
    let rest = &report[at..];
    let start = rest.find("\"output\": \"").map(|i| i + 11).expect("the test printed something");
    &rest[start..start + rest[start..].find('"').unwrap()]
}

#[test]
fn the_seed_changes_exactly_the_random_parts() {
    let dir = scratch("seed");
    let run = |seed: &str, engine: &str| {
        let json = dir.join(format!("seed{seed}-{engine}.json"));
        report("determinism", &["--seed", seed, "--engine", engine], &json, &[]).json
    };
    let (one, two) = (run("1", "cranelift"), run("2", "cranelift"));
    assert!(one != two, "--seed changed nothing");
    assert_ne!(first_output(&one, "test_random"), first_output(&two, "test_random"));
    assert_ne!(first_output(&one, "test_hash_order"), first_output(&two, "test_hash_order"));
    for test in ["test_clocks", "test_nan_bits", "test_relaxed_simd", "test_world_is_empty"] {
        assert_eq!(first_output(&one, test), first_output(&two, test), "{test} depends on the seed");
    }
    assert!(two == run("2", "pulley"), "the same seed gave another report on Pulley");
    assert!(two == run("2", "cranelift"), "the same seed gave another report on a second run");
}

#[test]
fn a_fuel_limited_run_stops_at_the_same_point_on_both_engines() {
    let dir = scratch("fuel");
    // The flood prints 200 000 lines; this budget ends it part-way, so where it stopped shows in its output.
    let flags = ["-t", "test_stdout_flood", "--fuel", "20000000", "--timeout", "0", "--max-output", "4M", "-vv"];
    let [cranelift, pulley] = ENGINES.map(|engine| {
        report("faults", &[&flags[..], &["--engine", engine]].concat(), &dir.join(format!("{engine}.json")), &[])
    });
    assert_eq!(cranelift.status, 1, "{}", cranelift.stdout);
    assert!(cranelift.json == pulley.json, "the fuel-limited reports differ; see {}", dir.display());
    let error = crate::harness::block(&pulley.stdout, "Error in test test_stdout_flood");
    assert!(error.starts_with("ran out of fuel: used the budget of 20000000 (--fuel)"), "{error}");
    let printed = cranelift.stdout.matches("\nline ").count();
    assert!(printed > 1000 && printed < 200_000, "the budget should end the flood part-way, not after {printed} lines");
    assert_eq!(printed, pulley.stdout.matches("\nline ").count(), "the engines stopped at different lines");
}

#[test]
fn inspect_names_the_engine_and_the_cache_keeps_them_apart() {
    let dir = scratch("cache");
    let cache = dir.join("cache");
    let wasm = suite("leak");
    let inspect = |engine: &str, env: &[(&str, &Path)]| {
        let env = [&[("LEAKHOST_CACHE_DIR", cache.as_path())][..], env].concat();
        let (status, stdout) = leakhost_with_env(&["inspect", wasm.to_str().unwrap(), "--engine", engine], &env);
        assert_eq!(status, 0, "{stdout}");
        assert!(stdout.contains(&format!("\n  engine: {engine}\n")), "{stdout}");
        let line = stdout.lines().find(|l| l.starts_with("Compilation: ")).expect("a compilation line").to_string();
        line
    };
    let cranelift = inspect("cranelift", &[]);
    let pulley = inspect("pulley", &[]);
    assert!(cranelift.starts_with("Compilation: compiled, cached at "), "{cranelift}");
    assert!(pulley.starts_with("Compilation: compiled, cached at "), "{pulley}");
    let entry = |line: &str| line.rsplit(' ').next().unwrap().to_string();
    assert_ne!(entry(&cranelift), entry(&pulley), "both engines share a cache entry");
    for (engine, first) in [("cranelift", &cranelift), ("pulley", &pulley)] {
        assert_eq!(inspect(engine, &[]), format!("Compilation: loaded from cache {}", entry(first)));
        // wasmtime's Config::new() reads this variable; the engine must not change with it.
        let details = inspect(engine, &[("WASMTIME_BACKTRACE_DETAILS", Path::new("1"))]);
        assert_eq!(details, format!("Compilation: loaded from cache {}", entry(first)), "{engine}");
    }
}

#[test]
fn the_users_environment_does_not_change_a_report() {
    let dir = scratch("environment");
    let plain = report("faults", SUITES[3].1, &dir.join("plain.json"), &[]).json;
    let details = Path::new("1");
    let with_details =
        report("faults", SUITES[3].1, &dir.join("details.json"), &[("WASMTIME_BACKTRACE_DETAILS", details)]).json;
    assert!(plain.contains("wasm backtrace"), "the faults suite's traps carry backtraces");
    assert!(plain == with_details, "WASMTIME_BACKTRACE_DETAILS changed the report; see {}", dir.display());
}

#[test]
fn parallel_reports_agree_across_engines_and_job_counts() {
    // Under -j every layer starts in its own instance, whatever N is: output is collected and
    // written in layer order, so neither the schedule nor the engine shows in the report.
    let dir = scratch("jobs");
    let two = report("samplelayers", &["-N3", "-r", "-j2", "--engine", "pulley"], &dir.join("j2.json"), &[]);
    let three = report("samplelayers", &["-N3", "-r", "-j3", "--engine", "cranelift"], &dir.join("j3.json"), &[]);
    assert_eq!(two.status, three.status);
    assert!(two.json == three.json, "-j2 on Pulley and -j3 on Cranelift differ; see {}", dir.display());
}
