//! Preparing a suite for snapshots: one extra export per mutable global, so that the
//! host can read and restore the globals of an initialised instance (`run::image`), and
//! the check that a module's code leaves nothing a snapshot cannot carry.

use std::ops::Range;

use wasmparser::{Operator, Parser, Payload};

use super::module::{read_leb, write_leb};

/// Names of the extra exports; `:` cannot start a Rust or C symbol, so a suite's own
/// exports never collide with them.
pub const GLOBAL_EXPORT_PREFIX: &str = ":leakhost:global:";

/// Adds an export for every mutable global of a binary module; returns the module and
/// whether every mutable global is exported (none holds a reference). Bytes that do
/// not parse are returned unchanged (compiling them reports the error). The code is
/// not read here: [`code_allows_snapshots`] does that, once per compilation (the cache keeps its answer).
pub fn export_globals(bytes: Vec<u8>) -> (Vec<u8>, bool) {
    match scan(&bytes) {
        Ok(Some(scan)) => (scan.rewrite(&bytes), true),
        Ok(None) | Err(_) => (bytes, false),
    }
}

/// Whether no function of the module changes a table or re-initialises memory from a
/// segment. Reads every instruction (about 4 ms per MB of code), so it runs only when the
/// module is compiled; the cache keeps its answer with the compiled code.
pub fn code_allows_snapshots(bytes: &[u8]) -> bool {
    let scan = || -> wasmparser::Result<bool> {
        for payload in Parser::new(0).parse_all(bytes) {
            if let Payload::CodeSectionEntry(body) = payload? {
                let mut ops = body.get_operators_reader()?;
                while !ops.eof() {
                    if changes_tables_or_segments(&ops.read()?) {
                        return Ok(false);
                    }
                }
            }
        }
        Ok(true)
    };
    scan().unwrap_or(false)
}

/// What [`instrument`] needs to know about a module.
struct Scan {
    /// Indexes of the mutable numeric globals.
    globals: Vec<u32>,
    /// The export section's contents.
    exports: Range<usize>,
}

/// `Ok(None)` when the module cannot be snapshotted.
fn scan(bytes: &[u8]) -> wasmparser::Result<Option<Scan>> {
    let (mut globals, mut imported_globals, mut exports) = (Vec::new(), 0u32, None);
    for payload in Parser::new(0).parse_all(bytes) {
        match payload? {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    imported_globals += u32::from(matches!(import?.ty, wasmparser::TypeRef::Global(_)));
                }
            }
            Payload::GlobalSection(reader) => {
                for (i, global) in reader.into_iter().enumerate() {
                    let ty = global?.ty;
                    if ty.mutable {
                        // A reference belongs to one instance and cannot be carried over.
                        if ty.content_type.is_reference_type() {
                            return Ok(None);
                        }
                        globals.push(imported_globals + i as u32);
                    }
                }
            }
            Payload::ExportSection(reader) => {
                let range = reader.range();
                exports = Some(range.start..range.end);
            }
            _ => {}
        }
    }
    // A suite always exports its ABI functions; imported globals are never linked.
    Ok(exports.filter(|_| imported_globals == 0).map(|exports| Scan { globals, exports }))
}

fn changes_tables_or_segments(op: &Operator<'_>) -> bool {
    matches!(
        op,
        Operator::TableSet { .. }
            | Operator::TableGrow { .. }
            | Operator::TableFill { .. }
            | Operator::TableCopy { .. }
            | Operator::TableInit { .. }
            | Operator::ElemDrop { .. }
            | Operator::MemoryInit { .. }
            | Operator::DataDrop { .. }
    )
}

impl Scan {
    /// The module with its export section replaced by one that also exports the globals.
    fn rewrite(&self, bytes: &[u8]) -> Vec<u8> {
        let content = &bytes[self.exports.clone()];
        let (count, count_len) = read_leb(content).unwrap_or((0, 0));
        let mut section = Vec::with_capacity(content.len() + self.globals.len() * 24);
        write_leb(&mut section, count + self.globals.len() as u32);
        section.extend_from_slice(&content[count_len..]);
        for &index in &self.globals {
            let name = format!("{GLOBAL_EXPORT_PREFIX}{index}");
            write_leb(&mut section, name.len() as u32);
            section.extend_from_slice(name.as_bytes());
            section.push(0x03); // a global
            write_leb(&mut section, index);
        }
        let start = section_start(bytes, self.exports.start, content.len());
        let mut out = Vec::with_capacity(bytes.len() + section.len() - content.len());
        out.extend_from_slice(&bytes[..start]);
        out.push(7); // the export section's id
        write_leb(&mut out, section.len() as u32);
        out.extend_from_slice(&section);
        out.extend_from_slice(&bytes[self.exports.end..]);
        out
    }
}

/// Where the header of the section whose contents start at `content` begins: its id
/// byte, then its size, which producers may pad to up to five bytes.
fn section_start(bytes: &[u8], content: usize, len: usize) -> usize {
    (1..=5)
        .filter_map(|k| content.checked_sub(k + 1))
        .find(|&start| read_leb(&bytes[start + 1..content]) == Some((len as u32, content - start - 1)))
        .expect("wasmparser found a section here")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutable_globals_gain_exports_and_the_module_stays_valid() {
        let wasm = wat::parse_str(
            r#"(module (memory (export "memory") 1)
                (global $sp (mut i32) (i32.const 1024)) (global i64 (i64.const 5)) (global $n (mut i64) (i64.const 0))
                (func (export "f") (global.set $n (i64.const 1))))"#,
        )
        .unwrap();
        let (out, exported) = export_globals(wasm);
        assert!(exported && code_allows_snapshots(&out));
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, &out).unwrap();
        let names: Vec<_> = module.exports().map(|e| e.name().to_string()).collect();
        assert_eq!(names, ["memory", "f", ":leakhost:global:0", ":leakhost:global:2"]);
    }

    #[test]
    fn code_that_changes_tables_is_not_snapshotted() {
        let wasm = wat::parse_str(
            r#"(module (table 1 funcref) (memory (export "memory") 1)
                (func (export "f") (drop (table.grow (ref.null func) (i32.const 1)))))"#,
        )
        .unwrap();
        assert!(!code_allows_snapshots(&export_globals(wasm).0));
    }

    #[test]
    fn padded_section_sizes_are_found() {
        let mut bytes = vec![0u8; 3];
        bytes.extend_from_slice(&[7, 0x82, 0x80, 0x80, 0x80, 0x00, 0xaa, 0xbb]);
        assert_eq!(section_start(&bytes, 9, 2), 3);
    }
}
