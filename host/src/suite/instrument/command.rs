//! Exports that let the host run a libtest binary's tests one by one: the module's
//! constructors, its stack pointer, the test functions and libtest's wrapper closures
//! around them, found by name.
//!
//! Which functions are tests is only known once the binary has listed them, and that
//! needs the compiled module; so every function that looks like a test is exported,
//! and the host picks among them afterwards (`run::bare`). A `#[test] fn f` compiles
//! to `CRATE::PATH::f`, and libtest's harness wraps it in the closure
//! `CRATE::PATH::f::{{closure}}` (`{closure#0}` in v0 mangling), whose body calls
//! `test::assert_test_result` and returns `Result<(), String>` through a pointer.

use std::collections::HashMap;

use wasmparser::Operator;

use super::info::ModuleInfo;
use super::rewrite::{Additions, NewExport};
use crate::leak::stacks::demangle;

/// `__wasm_call_ctors`, exported.
pub const CTORS: &str = ":leakhost:ctors";
/// `__stack_pointer`, exported.
pub const STACK_POINTER: &str = ":leakhost:stack-pointer";
/// `core::ptr::drop_in_place::<String>`, exported: frees the message of a failed
/// `Result` test.
pub const DROP_STRING: &str = ":leakhost:drop-string";
/// Prefix of a test function's export (`() -> ()`), followed by its path.
pub const TEST_PREFIX: &str = ":leakhost:test:";
/// Prefix of libtest's wrapper closure of a test, followed by the test's path.
pub const WRAPPER_PREFIX: &str = ":leakhost:wrapper:";

/// What [`export`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CommandInfo {
    /// Paths of the functions exported under [`TEST_PREFIX`], sorted.
    pub tests: Vec<String>,
    /// Paths of the tests whose wrapper is exported under [`WRAPPER_PREFIX`], sorted.
    pub wrappers: Vec<String>,
    /// Whether [`CTORS`] is exported.
    pub ctors: bool,
    /// Whether [`STACK_POINTER`] is exported.
    pub stack_pointer: bool,
    /// Whether [`DROP_STRING`] is exported.
    pub drop_string: bool,
}

/// The suffixes a closure's demangled name ends with (legacy, then v0 mangling).
const CLOSURE_SUFFIXES: [&str; 2] = ["::{{closure}}", "::{closure#0}"];

/// A closure's last path segment in legacy mangling.
const LEGACY_CLOSURE: &str = "28_$u7b$$u7b$closure$u7d$$u7d$";

/// Crates whose closures are never tests.
const NOT_TESTS: [&str; 5] = ["std::", "core::", "alloc::", "test::", "hashbrown::"];

/// Whether `path` is a plain item path (no generics, no closure, no impl).
fn plain(path: &str) -> bool {
    !path.is_empty() && !path.contains(['<', '{', ' ', '>'])
}

/// A legacy-mangled name without its `17h<hash>E` suffix: two functions of the same
/// path have the same key. Demangling every name of a large binary costs more than the
/// rest of its instrumentation, so names are compared by key and only matches demangled.
fn legacy_key(name: &str) -> Option<&str> {
    let stem = name.strip_prefix("_ZN")?.strip_suffix('E')?;
    let (path, hash) = stem.split_at_checked(stem.len().checked_sub(19)?)?;
    let hex = hash.strip_prefix("17h").is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
    hex.then(|| &name[..3 + path.len()])
}

/// The defined functions' names, looked up by raw name, by legacy key, and (only when
/// a v0-mangled test needs it) by demangled path.
struct Names<'a> {
    raw: Vec<(u32, &'a str)>,
    by_key: HashMap<&'a str, Vec<u32>>,
    demangled: std::cell::OnceCell<HashMap<String, Vec<u32>>>,
}

impl<'a> Names<'a> {
    fn new(info: &ModuleInfo<'a>) -> Self {
        let mut raw: Vec<(u32, &'a str)> =
            info.func_names.iter().filter(|(&i, _)| i >= info.imported_funcs).map(|(&i, &n)| (i, n)).collect();
        raw.sort();
        let mut by_key: HashMap<&'a str, Vec<u32>> = HashMap::new();
        for (index, name) in &raw {
            if let Some(key) = legacy_key(name) {
                by_key.entry(key).or_default().push(*index);
            }
        }
        Names { raw, by_key, demangled: std::cell::OnceCell::new() }
    }

    /// The only function named exactly `name`.
    fn unique_raw(&self, name: &str) -> Option<u32> {
        let mut found = self.raw.iter().filter(|(_, n)| *n == name);
        match (found.next(), found.next()) {
            (Some((index, _)), None) => Some(*index),
            _ => None,
        }
    }

    /// The functions whose raw name contains every one of `parts` and whose demangled
    /// name passes `keep`.
    fn demangled_matching(&self, parts: &[&str], keep: impl Fn(&str) -> bool) -> Vec<u32> {
        let candidates = self.raw.iter().filter(|(_, n)| parts.iter().all(|p| n.contains(p)));
        candidates.filter(|(_, n)| keep(&demangle(n))).map(|(i, _)| *i).collect()
    }

    /// The only function whose demangled path is `path` (v0 names, demangled once).
    fn unique_demangled(&self, path: &str) -> Option<u32> {
        let map = self.demangled.get_or_init(|| {
            let mut map: HashMap<String, Vec<u32>> = HashMap::new();
            for (index, name) in self.raw.iter().filter(|(_, n)| n.starts_with("_R")) {
                map.entry(demangle(name)).or_default().push(*index);
            }
            map
        });
        map.get(path).filter(|v| v.len() == 1).map(|v| v[0])
    }

    /// The test function of the closure `closure` (named `name`) whose path is `path`.
    fn parent(&self, name: &str, path: &str) -> Option<u32> {
        match legacy_key(name).and_then(|k| k.strip_suffix(LEGACY_CLOSURE)) {
            Some(key) => self.by_key.get(key).filter(|v| v.len() == 1).map(|v| v[0]),
            None => self.unique_demangled(path),
        }
    }
}

/// Adds the exports of a libtest binary's candidate tests to `additions`.
pub fn export(info: &ModuleInfo<'_>, additions: &mut Additions) -> CommandInfo {
    let names = Names::new(info);
    let typed = |index: &u32, params, results| info.func_sig(*index).is_some_and(|s| s.is_i32s(params, results));
    let mut found = CommandInfo::default();
    if let Some(ctors) = names.unique_raw("__wasm_call_ctors").filter(|i| typed(i, 0, 0)) {
        additions.exports.push(NewExport::Func(CTORS.into(), ctors));
        found.ctors = true;
    }
    // Legacy (the test crate's own instance) first, then v0 (std's): any one will do.
    let strings =
        ["core::ptr::drop_in_place<alloc::string::String>", "core::ptr::drop_in_place::<alloc::string::String>"];
    let drop = strings.iter().find_map(|string| {
        match names.demangled_matching(&["drop_in_place", "String"], |d| d == *string)[..] {
            [one] => Some(one).filter(|i| typed(i, 1, 0)),
            _ => None,
        }
    });
    if let Some(drop) = drop {
        additions.exports.push(NewExport::Func(DROP_STRING.into(), drop));
        found.drop_string = true;
    }
    if let Some(sp) = stack_pointer(info) {
        additions.exports.push(NewExport::Global(STACK_POINTER.into(), sp));
        found.stack_pointer = true;
    }
    let asserts = names.demangled_matching(&["assert_test_result"], |d| d.starts_with("test::assert_test_result"));
    for (path, closure, name) in wrappers(info, &names, &asserts) {
        additions.exports.push(NewExport::Func(format!("{WRAPPER_PREFIX}{path}"), closure));
        if let Some(test) = names.parent(name, &path).filter(|i| typed(i, 0, 0)) {
            additions.exports.push(NewExport::Func(format!("{TEST_PREFIX}{path}"), test));
            found.tests.push(path.clone());
        }
        found.wrappers.push(path);
    }
    found.tests.sort();
    found.wrappers.sort();
    found
}

/// The mutable i32 global named `__stack_pointer`, else global 0 if it is one (the
/// linker's convention).
fn stack_pointer(info: &ModuleInfo<'_>) -> Option<u32> {
    let mutable_i32 = |index: u32| {
        index.checked_sub(info.imported_globals).and_then(|d| info.defined_globals.get(d as usize)) == Some(&true)
    };
    let named = info.global_names.iter().find(|(_, name)| **name == "__stack_pointer").map(|(&i, _)| i);
    named.or(Some(0)).filter(|&i| mutable_i32(i))
}

/// libtest's wrapper closure of every test-like path: a `PATH::{{closure}}` of type
/// `(i32, i32) -> ()` that calls `test::assert_test_result` (or the only such closure
/// when none does, as after inlining); (path, closure, the closure's raw name), by path.
fn wrappers<'a>(info: &ModuleInfo<'_>, names: &Names<'a>, asserts: &[u32]) -> Vec<(String, u32, &'a str)> {
    let closures = names.raw.iter().filter(|(_, n)| n.contains("closure") || n.starts_with("_RNC"));
    let mut candidates: HashMap<String, Vec<(u32, &'a str)>> = HashMap::new();
    for &(index, name) in closures {
        if !info.func_sig(index).is_some_and(|s| s.is_i32s(2, 0)) {
            continue;
        }
        let demangled = demangle(name);
        let Some(path) = CLOSURE_SUFFIXES.iter().find_map(|s| demangled.strip_suffix(s)) else { continue };
        if plain(path) && !NOT_TESTS.iter().any(|c| path.starts_with(c)) {
            candidates.entry(path.to_string()).or_default().push((index, name));
        }
    }
    let mut out: Vec<(String, u32, &'a str)> = candidates
        .into_iter()
        .filter_map(|(path, closures)| {
            let calling: Vec<(u32, &str)> =
                closures.iter().copied().filter(|&(c, _)| calls_any(info, c, asserts)).collect();
            match (calling.as_slice(), closures.as_slice()) {
                ([one], _) | ([], [one]) => Some((path, one.0, one.1)),
                _ => None,
            }
        })
        .collect();
    out.sort();
    out
}

/// Whether the body of function `index` calls one of `targets` directly.
fn calls_any(info: &ModuleInfo<'_>, index: u32, targets: &[u32]) -> bool {
    let Some(entry) = info.bodies.get((index - info.imported_funcs) as usize) else { return false };
    let Some((size, size_len)) = super::module::read_leb(&info.bytes[entry.clone()]) else { return false };
    let start = entry.start + size_len;
    let Some(bytes) = info.bytes.get(start..start + size as usize) else { return false };
    let body = wasmparser::FunctionBody::new(wasmparser::BinaryReader::new(bytes, start));
    let Ok(mut ops) = body.get_operators_reader() else { return false };
    while !ops.eof() {
        match ops.read() {
            Ok(Operator::Call { function_index }) if targets.contains(&function_index) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}
