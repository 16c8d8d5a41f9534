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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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

/// Whether `path` is a plain item path (no generics, no closure, no impl).
fn plain(path: &str) -> bool {
    !path.is_empty() && !path.contains(['<', '{', ' ', '>'])
}

/// Adds the exports of a libtest binary's candidate tests to `additions`.
pub fn export(info: &ModuleInfo<'_>, additions: &mut Additions) -> CommandInfo {
    let defined = |index: &u32| *index >= info.imported_funcs;
    let names: Vec<(u32, String)> =
        info.func_names.iter().filter(|(i, _)| defined(i)).map(|(&i, n)| (i, demangle(n))).collect();
    let by_name = index_by_name(&names);
    let unique = |name: &str| by_name.get(name).filter(|v| v.len() == 1).map(|v| v[0]);
    let mut found = CommandInfo::default();
    if let Some(ctors) = unique("__wasm_call_ctors").filter(|&i| info.func_sig(i).is_some_and(|s| s.is_i32s(0, 0))) {
        additions.exports.push(NewExport::Func(CTORS.into(), ctors));
        found.ctors = true;
    }
    let drop = ["core::ptr::drop_in_place<alloc::string::String>", "core::ptr::drop_in_place::<alloc::string::String>"]
        .into_iter()
        .find_map(&unique)
        .filter(|&i| info.func_sig(i).is_some_and(|s| s.is_i32s(1, 0)));
    if let Some(drop) = drop {
        additions.exports.push(NewExport::Func(DROP_STRING.into(), drop));
        found.drop_string = true;
    }
    if let Some(sp) = stack_pointer(info) {
        additions.exports.push(NewExport::Global(STACK_POINTER.into(), sp));
        found.stack_pointer = true;
    }
    let wrappers = wrappers(info, &names);
    for (path, index) in &wrappers {
        let index = *index;
        additions.exports.push(NewExport::Func(format!("{WRAPPER_PREFIX}{path}"), index));
        found.wrappers.push(path.clone());
        if let Some(test) = unique(path).filter(|&i| info.func_sig(i).is_some_and(|s| s.is_i32s(0, 0))) {
            additions.exports.push(NewExport::Func(format!("{TEST_PREFIX}{path}"), test));
            found.tests.push(path.clone());
        }
    }
    found.tests.sort();
    found.wrappers.sort();
    found
}

fn index_by_name(names: &[(u32, String)]) -> HashMap<&str, Vec<u32>> {
    let mut map: HashMap<&str, Vec<u32>> = HashMap::with_capacity(names.len());
    for (index, name) in names {
        map.entry(name.as_str()).or_default().push(*index);
    }
    map
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
/// when none does, as after inlining), by path.
fn wrappers(info: &ModuleInfo<'_>, names: &[(u32, String)]) -> Vec<(String, u32)> {
    let asserts: Vec<u32> =
        names.iter().filter(|(_, n)| n.starts_with("test::assert_test_result")).map(|(i, _)| *i).collect();
    let mut candidates: HashMap<&str, Vec<u32>> = HashMap::new();
    for (index, name) in names {
        let Some(path) = CLOSURE_SUFFIXES.iter().find_map(|s| name.strip_suffix(s)) else { continue };
        if plain(path) && info.func_sig(*index).is_some_and(|s| s.is_i32s(2, 0)) {
            candidates.entry(path).or_default().push(*index);
        }
    }
    let mut out: Vec<(String, u32)> = candidates
        .into_iter()
        .filter_map(|(path, closures)| {
            let calling: Vec<u32> = closures.iter().copied().filter(|&c| calls_any(info, c, &asserts)).collect();
            match (calling.as_slice(), closures.as_slice()) {
                ([one], _) | ([], [one]) => Some((path.to_string(), *one)),
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
    let body =
        wasmparser::FunctionBody::new(wasmparser::BinaryReader::new(&info.bytes[start..start + size as usize], start));
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
