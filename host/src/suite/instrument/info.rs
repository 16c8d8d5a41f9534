//! What a rewrite needs to know about a module, read in one pass: its index spaces,
//! the types of its functions, its exports, where each function body lies, and the
//! names its name section gives functions and globals.

use std::collections::HashMap;
use std::ops::Range;

use wasmparser::{ExternalKind, KnownCustom, Name, Parser, Payload, TypeRef, ValType};

use super::module::{read_leb, Sections};

/// A function type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sig {
    /// Parameter types.
    pub params: Vec<ValType>,
    /// Result types.
    pub results: Vec<ValType>,
}

impl Sig {
    /// Whether it is `(i32 × params) -> (i32 × results)`.
    pub fn is_i32s(&self, params: usize, results: usize) -> bool {
        self.params.len() == params
            && self.results.len() == results
            && self.params.iter().chain(&self.results).all(|t| *t == ValType::I32)
    }
}

/// A module's layout, as far as a rewrite is concerned.
pub struct ModuleInfo<'a> {
    /// The module's bytes.
    pub bytes: &'a [u8],
    /// The raw sections.
    pub sections: Sections,
    /// Every type index's function type (`None` for a type that is not a function).
    pub types: Vec<Option<Sig>>,
    /// Imported functions (they come first in the function index space).
    pub imported_funcs: u32,
    /// Imported tables.
    pub imported_tables: u32,
    /// Imported globals.
    pub imported_globals: u32,
    /// Imported or defined memories.
    pub memories: u32,
    /// The type index of each defined function.
    pub func_types: Vec<u32>,
    /// Defined tables.
    pub defined_tables: u32,
    /// Defined globals, and whether each is a mutable i32.
    pub defined_globals: Vec<bool>,
    /// The exports, in order.
    pub exports: Vec<(&'a str, ExternalKind, u32)>,
    /// The code section's contents and the length of its count.
    pub code: Option<(Range<usize>, usize)>,
    /// Each defined function's code entry: from its size to the end of its body.
    pub bodies: Vec<Range<usize>>,
    /// Function names from the name section, by function index.
    pub func_names: HashMap<u32, &'a str>,
    /// Global names from the name section, by global index.
    pub global_names: HashMap<u32, &'a str>,
    /// Whether the module has a start function (code that runs at instantiation).
    pub has_start: bool,
}

impl<'a> ModuleInfo<'a> {
    /// Reads `bytes`; `None` when they do not parse.
    pub fn read(bytes: &'a [u8]) -> Option<ModuleInfo<'a>> {
        read(bytes).ok().flatten()
    }

    /// The type of function `index` (imported or defined).
    pub fn func_sig(&self, index: u32) -> Option<&Sig> {
        let defined = index.checked_sub(self.imported_funcs)?;
        let ty = *self.func_types.get(defined as usize)?;
        self.types.get(ty as usize)?.as_ref()
    }

    /// Every function index in the module (imports first).
    pub fn func_count(&self) -> u32 {
        self.imported_funcs + self.func_types.len() as u32
    }

    /// Whether the module exports `name`.
    pub fn exports_name(&self, name: &str) -> bool {
        self.exports.iter().any(|(n, _, _)| *n == name)
    }
}

fn read(bytes: &[u8]) -> wasmparser::Result<Option<ModuleInfo<'_>>> {
    let Some(sections) = Sections::split(bytes) else { return Ok(None) };
    let mut info = ModuleInfo {
        bytes,
        sections,
        types: Vec::new(),
        imported_funcs: 0,
        imported_tables: 0,
        imported_globals: 0,
        memories: 0,
        func_types: Vec::new(),
        defined_tables: 0,
        defined_globals: Vec::new(),
        exports: Vec::new(),
        code: None,
        bodies: Vec::new(),
        func_names: HashMap::new(),
        global_names: HashMap::new(),
        has_start: false,
    };
    for payload in Parser::new(0).parse_all(bytes) {
        match payload? {
            Payload::TypeSection(reader) => {
                for group in reader {
                    for sub in group?.types() {
                        info.types.push(match &sub.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => {
                                Some(Sig { params: f.params().to_vec(), results: f.results().to_vec() })
                            }
                            _ => None,
                        });
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    match import?.ty {
                        TypeRef::Func(_) | TypeRef::FuncExact(_) => info.imported_funcs += 1,
                        TypeRef::Table(_) => info.imported_tables += 1,
                        TypeRef::Global(_) => info.imported_globals += 1,
                        TypeRef::Memory(_) => info.memories += 1,
                        TypeRef::Tag(_) => {}
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                for ty in reader {
                    info.func_types.push(ty?);
                }
            }
            Payload::TableSection(reader) => info.defined_tables = reader.count(),
            Payload::MemorySection(reader) => info.memories += reader.count(),
            Payload::GlobalSection(reader) => {
                for global in reader {
                    let ty = global?.ty;
                    info.defined_globals.push(ty.mutable && ty.content_type == ValType::I32);
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export?;
                    info.exports.push((export.name, export.kind, export.index));
                }
            }
            Payload::StartSection { .. } => info.has_start = true,
            Payload::CodeSectionStart { range, .. } => {
                let count_len = read_leb(&bytes[range.clone()]).map_or(0, |(_, len)| len);
                info.code = Some((range, count_len));
            }
            Payload::CodeSectionEntry(body) => {
                let body_range = body.range();
                // The body's size precedes it; its encoding may be padded.
                let Some(size_start) = entry_start(bytes, body_range.start, body_range.len()) else { return Ok(None) };
                info.bodies.push(size_start..body_range.end);
            }
            Payload::CustomSection(custom) => {
                if let KnownCustom::Name(reader) = custom.as_known() {
                    read_names(reader, &mut info);
                }
            }
            _ => {}
        }
    }
    Ok(Some(info))
}

/// Where the size of a body of `len` bytes at `body` starts (1 to 5 bytes before it).
fn entry_start(bytes: &[u8], body: usize, len: usize) -> Option<usize> {
    (1..=5)
        .filter_map(|k| body.checked_sub(k))
        .find(|&start| bytes.get(start..body).and_then(read_leb) == Some((len as u32, body - start)))
}

/// Function and global names; a malformed name section only costs names.
fn read_names<'a>(reader: wasmparser::NameSectionReader<'a>, info: &mut ModuleInfo<'a>) {
    for name in reader {
        let (map, into) = match name {
            Ok(Name::Function(map)) => (map, &mut info.func_names),
            Ok(Name::Global(map)) => (map, &mut info.global_names),
            _ => continue,
        };
        for naming in map.into_iter().map_while(Result::ok) {
            into.insert(naming.index, naming.name);
        }
    }
}
