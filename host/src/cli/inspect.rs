//! `leakhost inspect`: what a suite declares and the sandbox it would run in.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{engine_for, load_all, BuildArgs, CliError, SandboxArgs, EXIT_OK, EXIT_TESTS_FAILED};
use crate::abi::ABI_VERSION;
use crate::plan::Plan;
use crate::run::conformance::{self, Level};
use crate::sandbox::{human_bytes, EpochTicker, Policy};
use crate::suite::{self, Cache, Compilation};
use crate::text::GuestText;

/// Show a suite's ABI version, layers, test counts, exports and sandbox.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A suite: a .wasm file, or a Cargo package directory to build for wasm32-wasip1 (building runs
    /// the package's build scripts and proc-macros natively, outside the sandbox).
    #[arg(value_name = "TARGET")]
    pub target: PathBuf,

    /// Check the suite against ABI v1 instead (docs/abi.md §10): call every export, every hook of
    /// every layer and the counters, and say which rule is broken. Exit status 1 if one is.
    #[arg(long)]
    pub check: bool,

    #[command(flatten)]
    pub sandbox: SandboxArgs,

    #[command(flatten)]
    pub build: BuildArgs,
}

fn describe_policy(policy: &Policy, out: &mut String) {
    let _ = writeln!(out, "Sandbox:");
    let _ = writeln!(out, "  engine: {}", policy.engine);
    if policy.dirs.is_empty() {
        let _ = writeln!(out, "  directories: none");
    }
    for dir in &policy.dirs {
        let mode = if dir.writable { "read-write" } else { "read-only" };
        let _ = writeln!(out, "  directory: {} as {} ({mode})", dir.host.display(), dir.guest);
    }
    let env: Vec<&str> = policy.env.iter().map(|(k, _)| k.as_str()).collect();
    let _ = writeln!(out, "  environment: {}", if env.is_empty() { "none".to_string() } else { env.join(", ") });
    let _ = writeln!(out, "  network: none");
    let _ = writeln!(
        out,
        "  clocks and random numbers: {}",
        if policy.real_world { "the host's".to_string() } else { format!("deterministic (seed {})", policy.seed) }
    );
    let _ = writeln!(out, "  memory limit: {}", human_bytes(policy.max_memory as u64));
    let timeout = policy.timeout.map_or("none".to_string(), |t| format!("{} s per call", t.as_secs_f64()));
    let _ = writeln!(out, "  time limit: {timeout}");
    let _ = writeln!(out, "  fuel: {}", policy.fuel.map_or("unlimited".to_string(), |f| format!("{f} per call")));
    let _ = writeln!(out, "  wasm stack: {}", human_bytes(policy.max_stack as u64));
    let _ = writeln!(out, "  output kept per test: {}", human_bytes(policy.output_limit as u64));
}

fn describe_extern(ty: &wasmtime::ExternType) -> String {
    let list = |types: &mut dyn Iterator<Item = wasmtime::ValType>| {
        types.map(|t| t.to_string()).collect::<Vec<_>>().join(", ")
    };
    match ty {
        wasmtime::ExternType::Func(f) => format!("func ({}) -> ({})", list(&mut f.params()), list(&mut f.results())),
        wasmtime::ExternType::Memory(m) => format!("memory, {} pages at start", m.minimum()),
        wasmtime::ExternType::Global(_) => "global".to_string(),
        wasmtime::ExternType::Table(_) => "table".to_string(),
        _ => "other".to_string(),
    }
}

/// Prints the report.
pub fn inspect(args: &InspectArgs, cache: Option<&Cache>) -> Result<ExitCode, CliError> {
    let (policy, engine) = engine_for(&args.sandbox, 0, false)?;
    let _ticker = policy.timeout.map(|_| EpochTicker::start(&engine));
    if args.check {
        return check(&args.target, &engine, &policy, cache, &args.build);
    }
    let loaded = load_all(&engine, std::slice::from_ref(&args.target), &policy, cache, &args.build)?.remove(0);
    let manifest = loaded.session.manifest();
    let plan = Plan::new(manifest);
    let mut out = String::new();
    let _ = writeln!(out, "Suite: {}", loaded.suite.path.display());
    let bare = loaded.suite.instrumentation.command.is_some();
    match bare {
        true => out.push_str("ABI version: none (a libtest test binary, run without the SDK)\n"),
        false => writeln!(out, "ABI version: {}", loaded.session.abi_version()).unwrap_or(()),
    }
    let kind = match (bare, loaded.suite.has_initialize) {
        (true, _) => "WASI command (libtest)",
        (false, true) => "reactor (_initialize)",
        (false, false) => "command-export module",
    };
    let _ = writeln!(out, "Module: {kind}");
    let compiled = match &loaded.suite.compilation {
        Compilation::Compiled => "compiled (cache off)".to_string(),
        Compilation::CompiledAndCached(Ok(path)) => format!("compiled, cached at {}", path.display()),
        Compilation::CompiledAndCached(Err(e)) => format!("compiled; caching failed: {e}"),
        Compilation::FromCache(path) => format!("loaded from cache {}", path.display()),
    };
    let _ = writeln!(out, "Compilation: {compiled}");
    let _ = writeln!(out, "Tests: {} in {} layers", manifest.tests.len(), plan.layers.len());
    let _ = writeln!(out, "Layers, in run order:");
    for planned in &plan.layers {
        let node = &plan.graph.layers[planned.layer];
        let bases: Vec<String> = node.bases.iter().map(|&b| plan.graph.name(b).line().to_string()).collect();
        let mut hooks: Vec<&str> = Vec::new();
        for (present, name) in [
            (node.flags.set_up, "setUp"),
            (node.flags.tear_down, "tearDown"),
            (node.flags.test_set_up, "testSetUp"),
            (node.flags.test_tear_down, "testTearDown"),
        ] {
            if present {
                hooks.push(name);
            }
        }
        let _ = write!(out, "  {}: {} tests", node.name.line(), planned.tests.len());
        if !bases.is_empty() {
            let _ = write!(out, "; bases {}", bases.join(", "));
        }
        if !hooks.is_empty() {
            let _ = write!(out, "; hooks {}", hooks.join(", "));
        }
        if node.flags.no_tear_down {
            let _ = write!(out, "; cannot be torn down");
        }
        let _ = writeln!(out);
    }
    let without_tests: Vec<String> = (0..plan.graph.layers.len())
        .filter(|l| !plan.layers.iter().any(|p| p.layer == *l) && *l != plan.graph.unit())
        .map(|l| plan.graph.name(l).line().to_string())
        .collect();
    if !without_tests.is_empty() {
        let _ = writeln!(out, "Layers without tests (bases only): {}", without_tests.join(", "));
    }
    let _ = writeln!(out, "Exports:");
    // The exports instrumentation added are leakhost's, not the suite's.
    let own = |e: &wasmtime::ExportType<'_>| !crate::suite::instrument::is_leakhost_export(e.name());
    for export in loaded.suite.module.exports().filter(own) {
        let name = GuestText::from(export.name());
        let _ = writeln!(out, "  {}: {}", name.line(), describe_extern(&export.ty()));
    }
    describe_policy(&policy, &mut out);
    print!("{out}");
    Ok(ExitCode::from(EXIT_OK))
}

/// `inspect --check`: the conformance report, one line per rule.
fn check(
    target: &std::path::Path,
    engine: &wasmtime::Engine,
    policy: &Policy,
    cache: Option<&Cache>,
    build: &BuildArgs,
) -> Result<ExitCode, CliError> {
    let mut out = format!("Conformance of {} to ABI v1/v{ABI_VERSION}:\n", target.display());
    let loaded = suite::resolve(target, &build.options())
        .and_then(|path| suite::load(engine, &path, cache, &policy.module_limits));
    let report = match loaded {
        Ok(suite) => conformance::check(engine, &suite, policy),
        Err(e) => {
            // A module that fails the static checks of §7.1-2 is the first finding, and the last.
            let e = GuestText::from(e.to_string());
            let _ = writeln!(out, "  FAIL  the module exports the ABI and imports only WASI: {}", e.line());
            print!("{out}");
            return Ok(ExitCode::from(EXIT_TESTS_FAILED));
        }
    };
    for finding in &report.findings {
        let label = match finding.level {
            Level::Ok => "ok   ",
            Level::Note => "note ",
            Level::Warning => "warn ",
            Level::Fail => "FAIL ",
        };
        // Names and messages come from the guest: no control character reaches the terminal.
        let _ = write!(out, "  {label} {}", GuestText::from(finding.check.as_str()).line());
        if !finding.detail.is_empty() {
            let _ = write!(out, ": {}", GuestText::from(finding.detail.replace('\n', " ")).line());
        }
        out.push('\n');
    }
    let verdict = if report.passed() { "conforms" } else { "does not conform" };
    let _ = writeln!(
        out,
        "Result: {verdict} ({} checks, {} failed, {} warnings, {} notes).",
        report.findings.len(),
        report.count(Level::Fail),
        report.count(Level::Warning),
        report.count(Level::Note)
    );
    print!("{out}");
    Ok(ExitCode::from(if report.passed() { EXIT_OK } else { EXIT_TESTS_FAILED }))
}
