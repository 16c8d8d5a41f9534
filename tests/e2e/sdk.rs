//! The SDK's newer forms (sample-tests/sdkforms): attribute tests, checks in `()` functions and
//! closures, layers with typed state; and that the SDK packages on its own.

use std::process::Command;

use crate::harness::{leakhost, normalise_times, repo, suite};

/// The 1-based line of `needle` in the sample's source, as the check macros report it.
fn line_of(needle: &str) -> usize {
    let source = std::fs::read_to_string(repo().join("sample-tests/sdkforms/src/lib.rs")).unwrap();
    let lines: Vec<usize> =
        source.lines().enumerate().filter(|(_, line)| line.contains(needle)).map(|(i, _)| i + 1).collect();
    assert_eq!(lines.len(), 1, "{needle:?} is not on exactly one line");
    lines[0]
}

fn reference() -> String {
    format!(
        "\
Running UnitTests tests:
  Set up UnitTests in N.NNN seconds.


Failure in test closure_check_fails
check failed: 2 * 2 == 5
  left: 4
 right: 5
at sdkforms/src/lib.rs:{closure}



Error in test state_outside_its_layer
the state of layer sdkforms.Cache is not set up: the test must be in that layer or one built on it



Failure in test unit_fn_check_fails
check failed: 1 + 1 == 3
  left: 2
 right: 3
at sdkforms/src/lib.rs:{unit_fn}



Failure in test helper_failure_reaches_the_test
the helper saw 7 at sdkforms/src/lib.rs:{helper}

  Ran 9 tests with 3 failures, 1 errors and 1 skipped in N.NNN seconds.
Running sdkforms.Database tests:
  Tear down UnitTests in N.NNN seconds.
  Set up sdkforms.Database in N.NNN seconds.
  Ran 4 tests with 0 failures, 0 errors and 0 skipped in N.NNN seconds.
Running sdkforms.Cache tests:
  Set up sdkforms.Cache in N.NNN seconds.
  Ran 1 tests with 0 failures, 0 errors and 0 skipped in N.NNN seconds.
Tearing down left over layers:
  Tear down sdkforms.Cache in N.NNN seconds.
  Tear down sdkforms.Database in N.NNN seconds.
Total: 14 tests, 3 failures, 1 errors and 1 skipped in N.NNN seconds.
",
        closure = line_of("check_eq!(2 * 2, 5)"),
        unit_fn = line_of("check_eq!(1 + 1, 3)"),
        helper = line_of("check!(value < 5"),
    )
}

/// Builder tests first, then attribute tests by module path and line; states' layers by zope's order.
const LISTING: &str = "\
Listing UnitTests tests:
  closure_check
  closure_check_fails
  state_outside_its_layer
  adds
  unit_fn_check_fails
  helper_failure_reaches_the_test
  skips_in_unit_fn
  custom name (sdkforms)
  nested::in_a_module
Listing sdkforms.Database tests:
  builder_reads_state
  starts_with_three_rows
  inserts_and_hook_restores
  hooks_see_the_state
Listing sdkforms.Cache tests:
  derived_sees_base
";

fn run(extra: &[&str]) -> crate::harness::Run {
    let wasm = suite("sdkforms");
    let mut args = vec!["run", wasm.to_str().unwrap()];
    args.extend_from_slice(extra);
    leakhost(args)
}

#[test]
fn attribute_tests_unit_checks_and_layer_state_report_as_expected() {
    let r = run(&[]);
    assert_eq!(r.status, 1, "{r:#?}");
    assert_eq!(r.stderr, "");
    assert_eq!(normalise_times(&r.stdout), reference());
}

#[test]
fn registration_order_is_declared_then_module_path_and_line() {
    let r = leakhost(["list".as_ref(), suite("sdkforms").as_os_str()]);
    assert_eq!(r.status, 0, "{r:#?}");
    assert_eq!(r.stdout, LISTING);
}

#[test]
fn a_skip_in_a_unit_function_keeps_its_reason() {
    let json = crate::harness::temp_file("sdkforms.json", b"");
    let r = run(&["--json", json.to_str().unwrap()]);
    assert_eq!(r.status, 1, "{r:#?}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let tests = &report["suites"][0]["layers"][0]["iterations"][0]["tests"];
    let skipped = tests.as_array().unwrap().iter().find(|t| t["name"] == "skips_in_unit_fn").unwrap();
    assert_eq!(skipped["outcome"], "skip");
    assert_eq!(skipped["message"], "not today");
}

/// State set up once per layer and restored by its per-test hook does not grow; the layers'
/// tear-downs check the state, so a wrong table or a skipped hook would be a layer error here.
#[test]
fn layer_state_is_leak_free_over_iterations_and_in_parallel() {
    let r = run(&["-N4", "-r"]);
    assert_eq!(r.status, 1, "{r:#?}");
    assert!(!r.stdout.contains("Leaks:"), "{}", r.stdout);
    assert!(!r.stdout.contains("Tear down sdkforms.Database failed"), "{}", r.stdout);
    assert_eq!(r.stdout.matches("Set up sdkforms.Database in").count(), 1, "{}", r.stdout);
    let parallel = run(&["-j2"]);
    assert_eq!(parallel.status, 1, "{parallel:#?}");
    let total = "Total: 14 tests, 3 failures, 1 errors and 1 skipped in N.NNN seconds.\n";
    assert!(normalise_times(&parallel.stdout).ends_with(total), "{}", parallel.stdout);
}

/// Issue 15: the SDK must package on its own, so suites anywhere can depend on it. The macros
/// crate is packaged in the same call, so cargo verifies the SDK against it without a registry.
#[test]
fn the_sdk_packages_on_its_own() {
    let target = std::env::temp_dir().join(format!("leakhost-e2e-{}-package", std::process::id()));
    let out = Command::new(env!("CARGO"))
        .args(["package", "--allow-dirty", "--offline", "-p", "leakhost-guest-macros", "-p", "leakhost-guest"])
        .arg("--target-dir")
        .arg(&target)
        .current_dir(repo())
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("cargo runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cargo package failed:\n{stderr}");
    assert!(stderr.contains("Verifying leakhost-guest v"), "{stderr}");
    for name in ["leakhost-guest-0.1.0.crate", "leakhost-guest-macros-0.1.0.crate"] {
        assert!(target.join("package").join(name).is_file(), "no {name}:\n{stderr}");
    }
}
