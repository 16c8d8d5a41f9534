//! Allocation accounting by instrumentation (docs/abi.md §12): the allocator entry
//! points a module names (Rust's four shims, wasi-libc's malloc family) are wrapped so
//! that every successful call also reports to the host.
//!
//! Each wrapped function keeps its index: its body becomes a trampoline that calls a
//! new wrapper, and its old body moves to a new function the wrapper calls. So every
//! caller, direct or through a table, goes through the wrapper, and nothing is
//! renumbered. The wrapper reports through `call_indirect` into a table of its own
//! (the host puts its function there after instantiation; an import would shift every
//! function index), and only while a global the host sets is non-zero. A depth counter
//! keeps calls made inside another wrapped call (Rust's `__rust_alloc` calling
//! `malloc`, `realloc(NULL, n)` calling `malloc`) from being reported twice.

use super::info::{ModuleInfo, Sig};
use super::module::{write_leb, write_leb_padded, write_sleb};
use super::rewrite::{Additions, NewExport, NewFunc};
use crate::leak::stacks::demangle;

/// The table the host fills with its report function.
pub const HOOKS_TABLE: &str = ":leakhost:alloc:hooks";
/// The switch global of a module whose counts the host keeps from its first call.
pub const COUNT_SWITCH: &str = ":leakhost:alloc:count";
/// The switch global of a module that reports only while the host traces it.
pub const TRACE_SWITCH: &str = ":leakhost:alloc:trace";

/// Report kinds (the low bits are those of `leakhost.trace_alloc`, ABI v2).
pub mod kind {
    /// An allocation of `size` bytes at `ptr`.
    pub const ALLOC: u32 = 0;
    /// The block at `ptr` (of `size` bytes, or of the size the host remembers) was freed.
    pub const FREE: u32 = 1;
    /// The block at `old_ptr` (of `old_size` bytes, or remembered) is now `size` bytes at `ptr`.
    pub const REALLOC: u32 = 2;
    /// Set for the C family, whose `free` carries no size: the host remembers the
    /// size of each block it allocates.
    pub const UNSIZED: u32 = 0x100;
}

/// When the wrappers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Mode {
    /// From the module's first call: the host's counts are the module's counters.
    Count,
    /// Only while the host traces allocations (the suite counts by itself).
    Trace,
}

/// A value a wrapper passes to the report function.
#[derive(Debug, Clone, Copy)]
enum Arg {
    Zero,
    Param(u32),
    Result,
    /// `param a * param b` (calloc).
    Product(u32, u32),
    /// The pointer `posix_memalign` stored through its first parameter, if it succeeded.
    Stored,
}

/// One allocator entry point and what its wrapper reports.
struct Entry {
    name: &'static str,
    /// The C family, whose `free` carries no size; C SDK suites wrap it as `__wrap_NAME`.
    c: bool,
    params: usize,
    result: bool,
    kind: u32,
    /// (ptr, size, old_ptr, old_size)
    args: [Arg; 4],
}

const fn entry(name: &'static str, c: bool, params: usize, result: bool, kind: u32, args: [Arg; 4]) -> Entry {
    Entry { name, c, params, result, kind, args }
}

use Arg::{Param as P, Product, Result as R, Stored, Zero as Z};

/// Every entry point wrapped, by the names a module gives them.
const ENTRIES: [Entry; 10] = [
    entry("__rust_alloc", false, 2, true, kind::ALLOC, [R, P(0), Z, Z]),
    entry("__rust_alloc_zeroed", false, 2, true, kind::ALLOC, [R, P(0), Z, Z]),
    entry("__rust_dealloc", false, 3, false, kind::FREE, [P(0), P(1), Z, Z]),
    entry("__rust_realloc", false, 4, true, kind::REALLOC, [R, P(3), P(0), P(1)]),
    entry("malloc", true, 1, true, kind::ALLOC, [R, P(0), Z, Z]),
    entry("calloc", true, 2, true, kind::ALLOC, [R, Product(0, 1), Z, Z]),
    entry("realloc", true, 2, true, kind::REALLOC, [R, P(1), P(0), Z]),
    entry("free", true, 1, false, kind::FREE, [P(0), Z, Z, Z]),
    entry("aligned_alloc", true, 2, true, kind::ALLOC, [R, P(1), Z, Z]),
    entry("posix_memalign", true, 3, true, kind::ALLOC, [Stored, P(2), Z, Z]),
];

/// What the allocator instrumentation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AllocInfo {
    /// The names of the wrapped functions, in [`ENTRIES`] order; empty when the
    /// allocator was not found.
    pub wrapped: Vec<String>,
    /// When the wrappers report; `None` when nothing was wrapped.
    pub mode: Option<Mode>,
}

/// The function that implements `entry` in the module, and its index: `__wrap_NAME`
/// before `NAME` for the C family (the C SDK links its counting wrappers so), and the
/// v0-mangled `__rustc::NAME` for Rust's shims. `None` when absent, ambiguous, or not
/// of the entry point's type.
fn find(info: &ModuleInfo<'_>, names: &[(u32, String)], entry: &Entry) -> Option<(u32, String)> {
    let wanted: Vec<String> = match entry.c {
        true => vec![format!("__wrap_{}", entry.name), entry.name.to_string()],
        false => vec![entry.name.to_string(), format!("__rustc::{}", entry.name)],
    };
    for want in &wanted {
        let mut found = names.iter().filter(|(_, name)| name == want);
        if let (Some((index, name)), None) = (found.next(), found.next()) {
            let sig = info.func_sig(*index)?;
            let results = usize::from(entry.result);
            return sig.is_i32s(entry.params, results).then(|| (*index, name.clone()));
        }
    }
    None
}

/// The defined functions' names as the entry points are looked up: C names as they
/// are, Rust's allocator shims demangled (the others are not needed).
fn candidate_names(info: &ModuleInfo<'_>) -> Vec<(u32, String)> {
    let mut names: Vec<(u32, String)> = info
        .func_names
        .iter()
        .filter(|(&index, _)| index >= info.imported_funcs)
        .filter(|(_, name)| {
            name.contains("__rust_") || ENTRIES.iter().any(|e| name.strip_prefix("__wrap_").unwrap_or(name) == e.name)
        })
        .map(|(&index, name)| (index, if name.contains("__rust_") { demangle(name) } else { name.to_string() }))
        .collect();
    names.sort();
    names
}

/// Plans the wrapping of every allocator entry point `info` names; `additions` gets
/// the wrappers, the moved bodies, the trampolines, the table, the two globals and
/// their exports. Nothing is added when no entry point is found.
pub fn wrap(info: &ModuleInfo<'_>, mode: Mode, additions: &mut Additions) -> AllocInfo {
    // The wrappers load posix_memalign's result from memory 0.
    if info.memories == 0 {
        return AllocInfo::default();
    }
    let names = candidate_names(info);
    let found: Vec<(&Entry, u32, String)> =
        ENTRIES.iter().filter_map(|e| find(info, &names, e).map(|(index, name)| (e, index, name))).collect();
    if found.is_empty() {
        return AllocInfo::default();
    }
    let report_type = additions.next_type(info);
    additions.types.push(Sig { params: vec![wasmparser::ValType::I32; 5], results: vec![] });
    let table = additions.next_table(info);
    additions.tables.push(1);
    let switch = additions.next_global(info);
    let depth = switch + 1;
    additions.globals.extend([0, 0]);
    let switch_name = match mode {
        Mode::Count => COUNT_SWITCH,
        Mode::Trace => TRACE_SWITCH,
    };
    additions.exports.push(NewExport::Table(HOOKS_TABLE.into(), table));
    additions.exports.push(NewExport::Global(switch_name.into(), switch));
    let ids = Ids { report_type, table, switch, depth };
    let mut wrapped = Vec::new();
    for (entry, index, name) in found {
        let Some(body) = info.bodies.get((index - info.imported_funcs) as usize) else { continue };
        let ty = info.func_types[(index - info.imported_funcs) as usize];
        let moved = additions.next_func(info);
        let wrapper = moved + 1;
        // The original body, its size stripped (it is written again on append).
        let entry_bytes = &info.bytes[body.clone()];
        let (_, size_len) = super::module::read_leb(entry_bytes).unwrap_or((0, 0));
        let original = entry_bytes[size_len..].to_vec();
        // A C SDK suite's `__wrap_malloc` is shown as `malloc`: it is the allocator to a reader.
        let shown = name.strip_prefix("__wrap_").unwrap_or(&name).to_string();
        additions.funcs.push(NewFunc { ty, body: original, name: info.func_names[&index].to_string() });
        additions.funcs.push(NewFunc { ty, body: wrapper_body(entry, moved, ids), name: shown.clone() });
        additions.replaced.insert(index, trampoline(entry.params as u32, wrapper));
        if shown != name {
            additions.renames.insert(index, shown);
        }
        wrapped.push(name);
    }
    AllocInfo { wrapped, mode: Some(mode) }
}

/// The indexes a wrapper refers to.
#[derive(Debug, Clone, Copy)]
struct Ids {
    report_type: u32,
    table: u32,
    switch: u32,
    depth: u32,
}

/// `local.get 0 .. local.get n-1; call wrapper` (its `end` and padding are the
/// rewrite's); the call's index is padded to five bytes, as linkers write them.
fn trampoline(params: u32, wrapper: u32) -> Vec<u8> {
    let mut code = vec![0x00];
    for i in 0..params {
        code.push(0x20);
        write_leb(&mut code, i);
    }
    code.push(0x10);
    write_leb_padded(&mut code, wrapper, 5);
    code
}

/// The wrapper of `entry`: count the depth up, call the moved original, count it down,
/// and report when the switch is on and this is the outermost wrapped call.
fn wrapper_body(entry: &Entry, original: u32, ids: Ids) -> Vec<u8> {
    let result_local = entry.params as u32;
    let mut b = Vec::new();
    // One local: the result.
    b.extend_from_slice(if entry.result { &[0x01, 0x01, 0x7f] } else { &[0x00] });
    let global_add = |b: &mut Vec<u8>, delta: i32| {
        b.push(0x23);
        write_leb(b, ids.depth);
        b.push(0x41);
        write_sleb(b, delta);
        b.push(0x6a);
        b.push(0x24);
        write_leb(b, ids.depth);
    };
    global_add(&mut b, 1);
    for i in 0..entry.params as u32 {
        b.push(0x20);
        write_leb(&mut b, i);
    }
    b.push(0x10);
    write_leb(&mut b, original);
    if entry.result {
        b.push(0x21);
        write_leb(&mut b, result_local);
    }
    global_add(&mut b, -1);
    // block; if !switch or depth: break
    b.extend_from_slice(&[0x02, 0x40, 0x23]);
    write_leb(&mut b, ids.switch);
    b.extend_from_slice(&[0x45, 0x0d, 0x00, 0x23]);
    write_leb(&mut b, ids.depth);
    b.extend_from_slice(&[0x0d, 0x00, 0x41]);
    write_sleb(&mut b, (entry.kind | if entry.c { kind::UNSIZED } else { 0 }) as i32);
    for arg in entry.args {
        push_arg(&mut b, arg, result_local);
    }
    b.extend_from_slice(&[0x41, 0x00, 0x11]);
    write_leb(&mut b, ids.report_type);
    write_leb(&mut b, ids.table);
    b.push(0x0b);
    if entry.result {
        b.push(0x20);
        write_leb(&mut b, result_local);
    }
    b.push(0x0b);
    b
}

fn push_arg(b: &mut Vec<u8>, arg: Arg, result_local: u32) {
    let get = |b: &mut Vec<u8>, local: u32| {
        b.push(0x20);
        write_leb(b, local);
    };
    match arg {
        Arg::Zero => b.extend_from_slice(&[0x41, 0x00]),
        Arg::Param(i) => get(b, i),
        Arg::Result => get(b, result_local),
        Arg::Product(x, y) => {
            get(b, x);
            get(b, y);
            b.push(0x6c);
        }
        Arg::Stored => {
            // result == 0 ? i32.load(param 0) : 0
            get(b, result_local);
            b.extend_from_slice(&[0x45, 0x04, 0x7f]);
            get(b, 0);
            b.extend_from_slice(&[0x28, 0x02, 0x00, 0x05, 0x41, 0x00, 0x0b]);
        }
    }
}
