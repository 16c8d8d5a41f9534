//! Applying what instrumentation adds to a module: types, functions, a table, globals
//! and exports appended at the end of their index spaces (so no existing index
//! changes), function bodies replaced in place, and names for the new functions.
//!
//! Appending never renumbers anything the module refers to, so its code is copied
//! byte for byte; a replaced body is padded to its old size when it fits, so nothing
//! after it moves. The [`CodeMap`] records where code ended up either way.

use std::collections::{BTreeMap, HashMap};

use super::code_map::CodeMap;
use super::info::{ModuleInfo, Sig};
use super::module::{append_entries, read_leb, rebuild, write_leb, write_leb_padded, write_name, write_sleb};

/// The `end` opcode, which closes a function body.
const END: u8 = 0x0b;
/// The `nop` opcode, which pads a replaced body to its old size.
const NOP: u8 = 0x01;

/// A function to append.
pub struct NewFunc {
    /// Its type index.
    pub ty: u32,
    /// Its body: local declarations and instructions, ending with `end`.
    pub body: Vec<u8>,
    /// Its name in the name section.
    pub name: String,
}

/// An export to add.
pub enum NewExport {
    /// A function.
    Func(String, u32),
    /// A table.
    Table(String, u32),
    /// A global.
    Global(String, u32),
}

/// Everything a rewrite adds or replaces.
#[derive(Default)]
pub struct Additions {
    /// Types to append.
    pub types: Vec<Sig>,
    /// Functions to append.
    pub funcs: Vec<NewFunc>,
    /// Bodies to replace, by function index: local declarations and instructions,
    /// without the final `end` (padding goes before it).
    pub replaced: HashMap<u32, Vec<u8>>,
    /// Function names to change.
    pub renames: HashMap<u32, String>,
    /// Mutable i32 globals to append, by initial value.
    pub globals: Vec<i32>,
    /// Funcref tables to append, by size.
    pub tables: Vec<u32>,
    /// Exports to add.
    pub exports: Vec<NewExport>,
}

impl Additions {
    /// The index the next appended type gets.
    pub fn next_type(&self, info: &ModuleInfo<'_>) -> u32 {
        (info.types.len() + self.types.len()) as u32
    }

    /// The index the next appended function gets.
    pub fn next_func(&self, info: &ModuleInfo<'_>) -> u32 {
        info.func_count() + self.funcs.len() as u32
    }

    /// The index the next appended global gets.
    pub fn next_global(&self, info: &ModuleInfo<'_>) -> u32 {
        info.imported_globals + (info.defined_globals.len() + self.globals.len()) as u32
    }

    /// The index the next appended table gets.
    pub fn next_table(&self, info: &ModuleInfo<'_>) -> u32 {
        info.imported_tables + info.defined_tables + self.tables.len() as u32
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.funcs.is_empty() && self.replaced.is_empty() && self.exports.is_empty() && self.globals.is_empty()
    }
}

fn encode_types(types: &[Sig]) -> Vec<u8> {
    let mut out = Vec::new();
    for sig in types {
        out.push(0x60);
        for list in [&sig.params, &sig.results] {
            write_leb(&mut out, list.len() as u32);
            // Instrumentation only ever declares i32 signatures.
            out.extend(list.iter().map(|_| 0x7f));
        }
    }
    out
}

fn encode_exports(exports: &[NewExport]) -> Vec<u8> {
    let mut out = Vec::new();
    for export in exports {
        let (name, kind, index) = match export {
            NewExport::Func(name, index) => (name, 0, *index),
            NewExport::Table(name, index) => (name, 1, *index),
            NewExport::Global(name, index) => (name, 3, *index),
        };
        write_name(&mut out, name);
        out.push(kind);
        write_leb(&mut out, index);
    }
    out
}

/// Applies `additions` to the module `bytes` described by `info`; returns the new
/// module and where its code came from.
pub fn apply(bytes: &[u8], info: &ModuleInfo<'_>, additions: &Additions) -> (Vec<u8>, CodeMap) {
    let mut map = None;
    let n = |len: usize| len as u32;
    let types = encode_types(&additions.types);
    let mut funcs = Vec::new();
    additions.funcs.iter().for_each(|f| write_leb(&mut funcs, f.ty));
    let mut tables = Vec::new();
    for &size in &additions.tables {
        tables.extend_from_slice(&[0x70, 0x01]);
        write_leb(&mut tables, size);
        write_leb(&mut tables, size);
    }
    let mut globals = Vec::new();
    for &init in &additions.globals {
        globals.extend_from_slice(&[0x7f, 0x01, 0x41]);
        write_sleb(&mut globals, init);
        globals.push(END);
    }
    let exports = encode_exports(&additions.exports);
    let section = |content: &[u8], added: usize, entries: &[u8]| append_entries(Some(content), n(added), entries);
    let new = |added: usize, entries: &[u8]| append_entries(None, n(added), entries);
    let replace = |s: &super::module::Section| -> Option<Vec<u8>> {
        let content = &bytes[s.content.clone()];
        match s.id {
            1 if !additions.types.is_empty() => Some(section(content, additions.types.len(), &types)),
            3 if !additions.funcs.is_empty() => Some(section(content, additions.funcs.len(), &funcs)),
            4 if !additions.tables.is_empty() => Some(section(content, additions.tables.len(), &tables)),
            6 if !additions.globals.is_empty() => Some(section(content, additions.globals.len(), &globals)),
            7 if !additions.exports.is_empty() => Some(section(content, additions.exports.len(), &exports)),
            10 => {
                let (content, built) = code_section(bytes, info, additions);
                map = Some(built);
                Some(content)
            }
            0 if custom_name(content) == Some("name") => Some(name_section(content, info, additions)),
            _ => None,
        }
    };
    let mut inserts = vec![
        (1, new(additions.types.len(), &types)),
        (3, new(additions.funcs.len(), &funcs)),
        (4, new(additions.tables.len(), &tables)),
        (6, new(additions.globals.len(), &globals)),
        (7, new(additions.exports.len(), &exports)),
    ];
    inserts.retain(|(_, content)| content.first() != Some(&0));
    let mut out = rebuild(bytes, &info.sections, replace, inserts);
    if info.sections.list.iter().all(|s| s.id != 0 || custom_name(&bytes[s.content.clone()]) != Some("name")) {
        append_name_section(&mut out, info, additions);
    }
    let code_start = super::code_start(&out).unwrap_or(0);
    (out, map.map_or_else(CodeMap::identity, |m: super::code_map::CodeMapBuilder| m.finish(code_start)))
}

/// The code section: bodies copied, replaced ones padded to their old size, new ones
/// at the end; and where each copied body went.
fn code_section(
    bytes: &[u8],
    info: &ModuleInfo<'_>,
    additions: &Additions,
) -> (Vec<u8>, super::code_map::CodeMapBuilder) {
    let mut map = CodeMap::builder();
    let Some((range, count_len)) = info.code.clone() else { return (bytes.to_vec(), map) };
    let old_start = range.start;
    let mut out = Vec::with_capacity(range.len() + additions.funcs.iter().map(|f| f.body.len() + 5).sum::<usize>());
    let count = (info.bodies.len() + additions.funcs.len()) as u32;
    // The same count width keeps every body where the DWARF says it is.
    if !write_leb_padded(&mut out, count, count_len) {
        write_leb(&mut out, count);
    }
    for (i, entry) in info.bodies.iter().enumerate() {
        let index = info.imported_funcs + i as u32;
        let new_at = out.len() as u32;
        match additions.replaced.get(&index) {
            Some(code) => {
                let (old_len, size_len) = read_leb(&bytes[entry.clone()]).unwrap_or((0, 0));
                let fits = code.len() < old_len as usize;
                if fits {
                    out.extend_from_slice(&bytes[entry.start..entry.start + size_len]);
                    out.extend_from_slice(code);
                    out.resize(out.len() + old_len as usize - code.len() - 1, NOP);
                } else {
                    write_leb(&mut out, code.len() as u32 + 1);
                    out.extend_from_slice(code);
                }
                out.push(END);
            }
            None => {
                out.extend_from_slice(&bytes[entry.clone()]);
                map.add(new_at, (entry.start - old_start) as u32, entry.len() as u32);
            }
        }
    }
    for func in &additions.funcs {
        write_leb(&mut out, func.body.len() as u32);
        out.extend_from_slice(&func.body);
    }
    (out, map)
}

/// The name of a custom section, from its contents.
fn custom_name(content: &[u8]) -> Option<&str> {
    let (len, at) = read_leb(content)?;
    std::str::from_utf8(content.get(at..at + len as usize)?).ok()
}

/// Function names: the module's, renamed and extended as `additions` says, by index.
fn function_names(info: &ModuleInfo<'_>, additions: &Additions) -> Vec<u8> {
    let mut names: BTreeMap<u32, &str> = info.func_names.iter().map(|(&i, &n)| (i, n)).collect();
    for (&index, name) in &additions.renames {
        names.insert(index, name);
    }
    let first = info.func_count();
    for (i, func) in additions.funcs.iter().enumerate() {
        names.insert(first + i as u32, &func.name);
    }
    let mut out = Vec::new();
    write_leb(&mut out, names.len() as u32);
    for (index, name) in names {
        write_leb(&mut out, index);
        write_name(&mut out, name);
    }
    out
}

/// The name section with its function names subsection rebuilt; other subsections
/// are copied.
fn name_section(content: &[u8], info: &ModuleInfo<'_>, additions: &Additions) -> Vec<u8> {
    let (len, at) = read_leb(content).unwrap_or((0, 0));
    let mut at = at + len as usize;
    // wasmparser read the section's name; anything else is left as it was.
    let Some(name) = content.get(..at) else { return content.to_vec() };
    let mut out = name.to_vec();
    let mut wrote_functions = false;
    while at < content.len() {
        let id = content[at];
        let Some((size, size_len)) = read_leb(&content[at + 1..]) else { break };
        let body = at + 1 + size_len..(at + 1 + size_len + size as usize).min(content.len());
        // Subsections are ordered by id: functions (1) come after the module's name (0).
        if id >= 1 && !wrote_functions {
            subsection(&mut out, 1, &function_names(info, additions));
            wrote_functions = true;
        }
        if id != 1 {
            subsection(&mut out, id, &content[body.clone()]);
        }
        at = body.end;
    }
    if !wrote_functions {
        subsection(&mut out, 1, &function_names(info, additions));
    }
    out
}

fn append_name_section(out: &mut Vec<u8>, info: &ModuleInfo<'_>, additions: &Additions) {
    if additions.funcs.is_empty() {
        return;
    }
    let mut content = Vec::new();
    write_name(&mut content, "name");
    subsection(&mut content, 1, &function_names(info, additions));
    super::module::write_section(out, 0, &content);
}

fn subsection(out: &mut Vec<u8>, id: u8, body: &[u8]) {
    out.push(id);
    write_leb(out, body.len() as u32);
    out.extend_from_slice(body);
}
