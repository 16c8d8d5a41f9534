//! The ABI conformance check behind `leakhost inspect --check` (docs/abi.md §10): it drives a suite's
//! exports directly, outside any run, and says which rule of ABI v1 a suite breaks.
//!
//! It calls every hook of every layer (bases set up first, as a run would), the exports with indexes
//! out of range, and the counters snapshot twice in a row, and checks after every call that the return
//! code, the status record and the snapshot are what §3–§6 require. Test bodies are not run: what they
//! do is the suite's business, and `leakhost run` checks their status records the same way.

use leakhost_guest::abi::export;
use wasmtime::{Engine, InstancePre};

use super::instance::GuestInstance;
use crate::abi::{self, hook, outcome, Counters, Manifest};
use crate::sandbox::{self, Capture, GuestState, Policy};
use crate::suite::Suite;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The rule holds.
    Ok,
    /// Something the suite does that the ABI allows, worth knowing (a layer's set-up fails).
    Note,
    /// A SHOULD of the ABI is not met.
    Warning,
    /// A MUST of the ABI is broken: a run may reject the suite or misreport it.
    Fail,
}

/// One checked rule and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How serious.
    pub level: Level,
    /// The rule, e.g. `counters are stable`.
    pub check: String,
    /// What was found, empty when there is nothing to add.
    pub detail: String,
}

/// Every finding of one check, in the order the rules were checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conformance {
    /// The findings.
    pub findings: Vec<Finding>,
}

impl Conformance {
    /// Whether no MUST is broken.
    pub fn passed(&self) -> bool {
        self.findings.iter().all(|f| f.level != Level::Fail)
    }

    /// How many findings have `level`.
    pub fn count(&self, level: Level) -> usize {
        self.findings.iter().filter(|f| f.level == level).count()
    }

    fn push(&mut self, level: Level, check: impl Into<String>, detail: impl Into<String>) {
        self.findings.push(Finding { level, check: check.into(), detail: detail.into() });
    }

    /// Records `Ok` or `Fail` for one rule.
    fn rule(&mut self, check: &str, result: Result<(), String>) -> bool {
        let ok = result.is_ok();
        match result {
            Ok(()) => self.push(Level::Ok, check, ""),
            Err(why) => self.push(Level::Fail, check, why),
        }
        ok
    }
}

/// One instance driven by the check, through the same instance driver as a run (so the
/// same per-call limits are armed the same way before every call).
struct Probe {
    guest: GuestInstance,
    status_addr: u32,
}

/// How one call into the guest ended.
enum Call {
    Returned(u32),
    Trapped(String),
}

impl Probe {
    /// Instantiates and initialises; checks the version and the status address (rules 1–3).
    fn start(engine: &Engine, pre: &InstancePre<GuestState>, suite: &Suite, policy: &Policy) -> Result<Self, String> {
        let capture = Capture::for_policy(policy);
        // Starting checks the version and that the status record is in bounds.
        let startup = super::instance::Startup::Abi { has_initialize: suite.has_initialize };
        let guest = GuestInstance::start(engine, pre, policy, &capture, &startup, None)
            .map_err(|e| e.to_string().lines().next().unwrap_or_default().to_string())?;
        let mut probe = Probe { guest, status_addr: 0 };
        let version = probe.guest.call_export::<(), i32>(export::ABI_VERSION, ())?;
        if !abi::SUPPORTED_VERSIONS.contains(&(version as u32)) {
            return Err(format!("leakhost_abi_version returned {} on its second call, not 1 or 2", version as u32));
        }
        probe.status_addr = probe.call_status()?;
        let status = probe.status()?;
        if status.kind.is_some() {
            return Err(format!("the status record's initial kind is {}, not STATUS_NONE", status.kind.unwrap_or(0)));
        }
        Ok(probe)
    }

    /// Calls an export that returns an address and checks that it is 4-aligned.
    fn address(&mut self, name: &str) -> Result<u32, String> {
        let addr = self.guest.call_export::<(), i32>(name, ())? as u32;
        if !addr.is_multiple_of(4) {
            return Err(format!("{name} returned {addr:#x}, not a multiple of 4"));
        }
        Ok(addr)
    }

    fn call_status(&mut self) -> Result<u32, String> {
        self.address(export::STATUS)
    }

    fn status(&self) -> Result<abi::Status, String> {
        abi::decode_status(self.guest.memory_data(), self.status_addr).map_err(|e| e.to_string())
    }

    fn manifest(&mut self) -> Result<Manifest, String> {
        let addr = self.address(export::MANIFEST)?;
        abi::decode_manifest(self.guest.memory_data(), addr).map_err(|e| e.to_string())
    }

    fn counters(&mut self) -> Result<(Counters, usize), String> {
        let addr = self.address(export::COUNTERS)?;
        let memory = self.guest.memory_data();
        Ok((abi::decode_counters(memory, addr).map_err(|e| e.to_string())?, memory.len()))
    }

    fn hook(&mut self, layer: u32, code: u32) -> Call {
        match self.guest.call_export::<(i32, i32), i32>(export::LAYER_HOOK, (layer as i32, code as i32)) {
            Ok(rc) => Call::Returned(rc as u32),
            Err(why) => Call::Trapped(why),
        }
    }

    fn test(&mut self, index: u32) -> Call {
        match self.guest.call_export::<i32, i32>(export::RUN_TEST, index as i32) {
            Ok(rc) => Call::Returned(rc as u32),
            Err(why) => Call::Trapped(why),
        }
    }

    /// The status protocol of §3 after a call that returned `rc`: the outcome, or what is wrong.
    fn check_status(&self, what: &str, rc: u32) -> Result<abi::Status, String> {
        if rc > outcome::SKIP {
            return Err(format!("{what} returned {rc}, not an outcome code (0-3)"));
        }
        let status = self.status().map_err(|e| format!("after {what}: {e}"))?;
        match (rc, status.kind) {
            (outcome::PASS, None) => Ok(status),
            (outcome::PASS, Some(kind)) => {
                Err(format!("{what} returned PASS but left the status kind at {kind}, not STATUS_NONE"))
            }
            (rc, Some(kind)) if kind == rc => Ok(status),
            (rc, kind) => Err(format!(
                "{what} returned {rc} but the status kind is {}",
                kind.map_or("STATUS_NONE".to_string(), |k| k.to_string())
            )),
        }
    }
}

const HOOK_NAMES: [&str; 4] = ["setUp", "tearDown", "testSetUp", "testTearDown"];

/// Bases first, depth-first in declared order, each layer once, ending with `layer` (§1).
fn set_up_order(manifest: &Manifest, layer: usize) -> Vec<usize> {
    fn visit(manifest: &Manifest, layer: usize, out: &mut Vec<usize>) {
        for &base in &manifest.layers[layer].bases {
            visit(manifest, base, out);
        }
        if !out.contains(&layer) {
            out.push(layer);
        }
    }
    let mut out = Vec::new();
    visit(manifest, layer, &mut out);
    out
}

fn has_hook(flags: &abi::LayerFlags, code: u32) -> bool {
    match code {
        hook::SET_UP => flags.set_up,
        hook::TEAR_DOWN => flags.tear_down && !flags.no_tear_down,
        hook::TEST_SET_UP => flags.test_set_up,
        _ => flags.test_tear_down,
    }
}

/// Runs the conformance check of `suite` (already loaded, so its exports and imports passed §7.1–2).
pub fn check(engine: &Engine, suite: &Suite, policy: &Policy) -> Conformance {
    let mut report = Conformance::default();
    if suite.instrumentation.command.is_some() {
        let why = "a WASI command (it exports _start) without any leakhost_* export; `leakhost run` runs a libtest test binary so, but it does not speak the ABI";
        report.push(Level::Fail, "the module exports the ABI and imports only WASI", why);
        return report;
    }
    let pre = match sandbox::linker(engine)
        .and_then(|l| l.instantiate_pre(&suite.module).map_err(|e| sandbox::SandboxError::Linker(format!("{e:#}"))))
    {
        Ok(pre) => pre,
        Err(e) => {
            report.push(Level::Fail, "the module links against WASI preview 1", e.to_string());
            return report;
        }
    };
    module_kind(suite, &mut report);
    let mut probe = match Probe::start(engine, &pre, suite, policy) {
        Ok(probe) => {
            report
                .rule("an instance starts; leakhost_abi_version returns 1 or 2; the status record is in place", Ok(()));
            probe
        }
        Err(why) => {
            report.rule(
                "an instance starts; leakhost_abi_version returns 1 or 2; the status record is in place",
                Err(why),
            );
            return report;
        }
    };
    let manifest = match probe.manifest() {
        Ok(m) => m,
        Err(why) => {
            report.rule("the manifest is valid (§7)", Err(why));
            return report;
        }
    };
    report.rule("the manifest is valid (§7)", Ok(()));
    let again = probe.manifest();
    report.rule(
        "the manifest is the same on a second call",
        again.and_then(|m| {
            if m == manifest {
                Ok(())
            } else {
                Err("the second call declared a different manifest".into())
            }
        }),
    );
    let second = Probe::start(engine, &pre, suite, policy).and_then(|mut p| p.manifest());
    report.rule(
        "the manifest is the same in a second instance",
        second.and_then(|m| if m == manifest { Ok(()) } else { Err(manifest_difference(&manifest, &m)) }),
    );
    report.rule("counters are readable and stable", counters_stable(&mut probe));
    invalid_indexes(&mut probe, &manifest, &mut report);
    let fixed = probe.call_status().and_then(|a| {
        if a == probe.status_addr {
            Ok(())
        } else {
            Err(format!("it moved from {:#x} to {a:#x}", probe.status_addr))
        }
    });
    report.rule("leakhost_status returns the same address on every call", fixed);
    for layer in 0..manifest.layers.len() {
        match Probe::start(engine, &pre, suite, policy) {
            Ok(mut probe) => layer_hooks(&mut probe, &manifest, layer, &mut report),
            Err(why) => {
                report.rule(&format!("hooks of {}", manifest.layers[layer].name.raw()), Err(why));
            }
        }
    }
    report
}

fn module_kind(suite: &Suite, report: &mut Conformance) {
    if suite.has_initialize {
        return report.push(Level::Ok, "a reactor: _initialize runs constructors once", "");
    }
    let command = suite.module.get_export("_start").is_some();
    let detail = if command {
        "it exports _start: wasm-ld runs constructors and destructors around every export call, so state \
         they set up is rebuilt (and atexit handlers run) on each call; build a reactor \
         (clang -mexec-model=reactor)"
    } else {
        "no _initialize: the host calls the exports directly; this works only if re-running constructors \
         around each call is harmless"
    };
    report.push(Level::Warning, "a reactor: _initialize runs constructors once", detail);
}

fn manifest_difference(first: &Manifest, second: &Manifest) -> String {
    if first.layers.len() != second.layers.len() || first.tests.len() != second.tests.len() {
        return format!(
            "the first declared {} layers and {} tests, the second {} and {}",
            first.layers.len(),
            first.tests.len(),
            second.layers.len(),
            second.tests.len()
        );
    }
    if let Some((a, b)) = first.layers.iter().zip(&second.layers).find(|(a, b)| a != b) {
        return format!("layer {:?} differs from {:?}", a.name, b.name);
    }
    match first.tests.iter().zip(&second.tests).find(|(a, b)| a != b) {
        Some((a, b)) => format!("test {:?} differs from {:?}", a.name, b.name),
        None => "the manifests differ".into(),
    }
}

fn counters_stable(probe: &mut Probe) -> Result<(), String> {
    let (first, pages) = probe.counters()?;
    let (second, pages_again) = probe.counters()?;
    if first != second {
        return Err(format!(
            "two snapshots in a row differ (live blocks {} then {}, live bytes {} then {}, allocations {} then {}, \
             or a row); taking a snapshot must not change what it measures",
            first.live_blocks,
            second.live_blocks,
            first.live_bytes,
            second.live_bytes,
            first.total_allocs,
            second.total_allocs
        ));
    }
    if pages != pages_again {
        return Err(format!("taking a snapshot grew memory from {pages} to {pages_again} bytes"));
    }
    Ok(())
}

/// §3: out-of-range indexes SHOULD give ERROR with a message, and MUST follow the status protocol.
fn invalid_indexes(probe: &mut Probe, manifest: &Manifest, report: &mut Conformance) {
    let layers = manifest.layers.len() as u32;
    let mut calls = vec![(format!("leakhost_run_test({})", manifest.tests.len()), None)];
    calls.push((format!("leakhost_layer_hook({layers}, 0)"), Some((layers, hook::SET_UP))));
    if layers > 0 {
        calls.push(("leakhost_layer_hook(0, 4)".into(), Some((0, 4))));
    }
    for (what, hook_call) in calls {
        let call = match hook_call {
            Some((layer, code)) => probe.hook(layer, code),
            None => probe.test(manifest.tests.len() as u32),
        };
        let check = format!("{what}, out of range, returns ERROR with a message");
        match call {
            Call::Trapped(why) => {
                report.push(Level::Warning, check, format!("it trapped: {why}"));
                return; // The instance is gone.
            }
            Call::Returned(rc) => match probe.check_status(&what, rc) {
                Err(why) => report.push(Level::Fail, check, why),
                Ok(_) if rc != outcome::ERROR => report.push(Level::Warning, check, format!("it returned {rc}")),
                Ok(status) if status.message.is_empty() => report.push(Level::Warning, check, "the message is empty"),
                Ok(_) => report.push(Level::Ok, check, ""),
            },
        }
    }
}

/// Sets `layer` up (bases first), runs its test hooks once, tears it down, checking every call.
fn layer_hooks(probe: &mut Probe, manifest: &Manifest, layer: usize, report: &mut Conformance) {
    let name = manifest.layers[layer].name.raw();
    let check = format!("hooks of {name} follow the status protocol");
    let order = set_up_order(manifest, layer);
    let mut sequence: Vec<(usize, u32)> = order.iter().map(|&l| (l, hook::SET_UP)).collect();
    sequence.extend(order.iter().map(|&l| (l, hook::TEST_SET_UP)));
    sequence.extend(order.iter().rev().map(|&l| (l, hook::TEST_TEAR_DOWN)));
    sequence.extend(order.iter().rev().map(|&l| (l, hook::TEAR_DOWN)));
    let mut calls = 0;
    for (l, code) in sequence {
        let flags = manifest.layers[l].flags;
        if code == hook::TEAR_DOWN && flags.no_tear_down {
            continue; // The host never calls it (§4.7).
        }
        let what = format!("{} of {}", HOOK_NAMES[code as usize], manifest.layers[l].name.raw());
        calls += 1;
        let status = match probe.hook(l as u32, code) {
            Call::Trapped(why) => match probe.status() {
                Ok(_) => {
                    report.push(Level::Note, check, format!("{what} trapped ({why}); the status record is readable"));
                    return;
                }
                Err(e) => return report.push(Level::Fail, check, format!("after {what} trapped: {e}")),
            },
            Call::Returned(rc) => match probe.check_status(&what, rc) {
                Ok(status) if rc != outcome::PASS && !has_hook(&flags, code) => {
                    return report.push(
                        Level::Fail,
                        check,
                        format!(
                            "{what} is not declared (its flag is clear) but returned {rc}, not PASS: {}",
                            status.message
                        ),
                    )
                }
                Ok(status) => (rc, status),
                Err(why) => return report.push(Level::Fail, check, why),
            },
        };
        if status.0 != outcome::PASS {
            let detail = format!(
                "{what} returned {}: {}; the rest of this layer's hooks were not called",
                status.0, status.1.message
            );
            return report.push(Level::Note, check, detail);
        }
    }
    if let Err(why) = counters_stable(probe) {
        return report.push(Level::Fail, format!("counters after the hooks of {name}"), why);
    }
    report.push(Level::Ok, check, format!("{calls} calls"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{LayerDecl, LayerFlags};

    fn layer(name: &str, bases: &[usize]) -> LayerDecl {
        LayerDecl { name: name.into(), bases: bases.to_vec(), flags: LayerFlags::default() }
    }

    #[test]
    fn set_up_order_is_bases_first_depth_first_each_once() {
        // 3 has bases 1 and 2, which share base 0: a diamond.
        let manifest = Manifest {
            layers: vec![layer("A", &[]), layer("B", &[0]), layer("C", &[0]), layer("D", &[1, 2])],
            tests: Vec::new(),
        };
        assert_eq!(set_up_order(&manifest, 3), [0, 1, 2, 3]);
        assert_eq!(set_up_order(&manifest, 2), [0, 2]);
        assert_eq!(set_up_order(&manifest, 0), [0]);
    }

    #[test]
    fn a_tear_down_counts_only_for_layers_that_can_be_torn_down() {
        let flags = LayerFlags { tear_down: true, no_tear_down: true, ..LayerFlags::default() };
        assert!(!has_hook(&flags, hook::TEAR_DOWN));
        assert!(has_hook(&LayerFlags { tear_down: true, ..LayerFlags::default() }, hook::TEAR_DOWN));
        assert!(!has_hook(&LayerFlags::default(), hook::TEST_SET_UP));
    }
}
