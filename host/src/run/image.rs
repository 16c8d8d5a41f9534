//! Snapshots of an initialised instance, so that fresh instances skip the guest's
//! start-up (`_initialize`, the suite's `declare`, the first manifest read).
//!
//! wasmtime only lets the host see exported globals, so a suite is loaded with one
//! extra export per mutable global ([`instrument`]); nothing else about the module
//! changes. After the first instance has started and its manifest was read, its linear
//! memory, its mutable globals (the stack pointer among them) and its WASI world (fake
//! clock, random stream positions) are copied into an [`InitImage`]. A fresh instance
//! is then instantiated without calling anything in it, and given the image: the pages
//! that differ from a just-instantiated memory, the grown pages, the globals and the
//! world. The suite cannot tell it from one that ran its own start-up.
//!
//! Modules whose code can change a table or re-initialise memory from a segment
//! (`table.set`/`grow`/`fill`/`copy`/`init`, `elem.drop`, `memory.init`, `data.drop`)
//! are not snapshotted: a table holds functions of one instance that cannot be carried
//! into another. Neither are runs with `--dir` (descriptors opened during start-up live
//! in the host) or `--real-world`. Those suites start every instance the slow way.

use std::ops::Range;
use std::sync::OnceLock;

use wasmparser::{Operator, Parser, Payload};
use wasmtime::{Instance, Memory, Store, Val};

use crate::sandbox::{GuestState, WorldState};

/// Names of the extra exports; `:` cannot start a Rust or C symbol, so a suite's own
/// exports never collide with them.
pub const GLOBAL_EXPORT_PREFIX: &str = ":leakhost:global:";

/// Environment variable that turns snapshots off (`LEAKHOST_NO_SNAPSHOT=1`): every
/// fresh instance runs the guest's start-up again. For testing that both agree.
pub const NO_SNAPSHOT_ENV: &str = "LEAKHOST_NO_SNAPSHOT";

/// A wasm page.
const PAGE: usize = 64 * 1024;
/// The granularity at which a snapshot's memory is compared with a fresh one.
const CHUNK: usize = 4096;

/// A module ready to load.
pub struct Instrumented {
    /// The module's bytes with the global exports added (or unchanged when not possible).
    pub bytes: Vec<u8>,
    /// Whether every mutable global is exported (none holds a reference).
    pub globals_exported: bool,
}

/// Adds an export for every mutable global of a binary module. Bytes that do not parse
/// are returned unchanged (compiling them reports the error). The code is not read
/// here: [`code_allows_snapshots`] does that, once a fresh instance is needed.
pub fn instrument(bytes: &[u8]) -> Instrumented {
    match scan(bytes) {
        Ok(Some(scan)) => Instrumented { bytes: scan.rewrite(bytes), globals_exported: true },
        Ok(None) | Err(_) => Instrumented { bytes: bytes.to_vec(), globals_exported: false },
    }
}

/// Whether no function of the module changes a table or re-initialises memory from a
/// segment. Reads every instruction (about 4 ms per MB of code), so it runs only when a
/// fresh instance is first needed.
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

fn read_leb(bytes: &[u8]) -> Option<(u32, usize)> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(5) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return u32::try_from(value).ok().map(|v| (v, i + 1));
        }
    }
    None
}

fn write_leb(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// An initialised instance's state, from which fresh instances start.
pub struct InitImage {
    memory: Vec<u8>,
    /// The mutable globals' export names and values.
    globals: Vec<(String, Val)>,
    world: Option<WorldState>,
    /// The parts of `memory` that differ from a just-instantiated instance's,
    /// found by the first restore.
    dirty: OnceLock<Vec<Range<usize>>>,
}

impl InitImage {
    /// Copies the state of `instance`.
    pub fn capture(store: &mut Store<GuestState>, instance: &Instance, memory: Memory) -> Self {
        let names: Vec<String> = instance
            .exports(&mut *store)
            .map(|export| export.name())
            .filter(|name| name.starts_with(GLOBAL_EXPORT_PREFIX))
            .map(str::to_string)
            .collect();
        let mut globals = Vec::with_capacity(names.len());
        for name in names {
            if let Some(global) = instance.get_global(&mut *store, &name) {
                globals.push((name, global.get(&mut *store)));
            }
        }
        InitImage {
            memory: memory.data(&*store).to_vec(),
            globals,
            world: store.data().world(),
            dirty: OnceLock::new(),
        }
    }

    /// Gives a just-instantiated `instance` this image's state.
    pub fn restore(&self, store: &mut Store<GuestState>, instance: &Instance, memory: Memory) -> Result<(), String> {
        let have = memory.data_size(&*store);
        if self.memory.len() < have {
            return Err("a fresh instance's memory is larger than the snapshot's".into());
        }
        let dirty = self.dirty.get_or_init(|| dirty_chunks(&self.memory, memory.data(&*store)));
        if self.memory.len() > have {
            memory.grow(&mut *store, ((self.memory.len() - have) / PAGE) as u64).map_err(|e| format!("{e:#}"))?;
        }
        let data = memory.data_mut(&mut *store);
        for range in dirty {
            data[range.clone()].copy_from_slice(&self.memory[range.clone()]);
        }
        self.set_globals_and_world(store, instance)
    }

    /// Puts an instance of the snapshot's module, whose calls may have changed anything
    /// but its tables, back into this image's state, in place; `false` when its memory
    /// has grown since (a memory cannot shrink, so only a fresh instance will do).
    pub fn reset(&self, store: &mut Store<GuestState>, instance: &Instance, memory: Memory) -> Result<bool, String> {
        let data = memory.data_mut(&mut *store);
        if data.len() != self.memory.len() {
            return Ok(false);
        }
        // A test touches few pages; comparing is much cheaper than copying everything.
        for (now, then) in data.chunks_mut(CHUNK).zip(self.memory.chunks(CHUNK)) {
            if now != then {
                now.copy_from_slice(then);
            }
        }
        self.set_globals_and_world(store, instance)?;
        Ok(true)
    }

    fn set_globals_and_world(&self, store: &mut Store<GuestState>, instance: &Instance) -> Result<(), String> {
        for (name, value) in &self.globals {
            let global = instance.get_global(&mut *store, name).ok_or_else(|| format!("no export {name}"))?;
            global.set(&mut *store, *value).map_err(|e| format!("{name}: {e:#}"))?;
        }
        if let Some(world) = &self.world {
            store.data_mut().restore_world(world);
        }
        Ok(())
    }
}

/// The chunks of `snapshot` that differ from `fresh` (zero past its end), merged into runs.
fn dirty_chunks(snapshot: &[u8], fresh: &[u8]) -> Vec<Range<usize>> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    for start in (0..snapshot.len()).step_by(CHUNK) {
        let end = (start + CHUNK).min(snapshot.len());
        let chunk = &snapshot[start..end];
        let same = match fresh.get(start..end) {
            Some(old) => old == chunk,
            None => chunk.iter().all(|&b| b == 0),
        };
        if same {
            continue;
        }
        match runs.last_mut() {
            Some(last) if last.end == start => last.end = end,
            _ => runs.push(start..end),
        }
    }
    runs
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
        let out = instrument(&wasm);
        assert!(out.globals_exported && code_allows_snapshots(&out.bytes));
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, &out.bytes).unwrap();
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
        assert!(!code_allows_snapshots(&instrument(&wasm).bytes));
    }

    #[test]
    fn dirty_chunks_cover_every_difference_and_grown_memory() {
        let fresh = vec![0u8; 4 * CHUNK];
        let mut snap = vec![0u8; 6 * CHUNK];
        snap[CHUNK + 5] = 1;
        snap[2 * CHUNK] = 2;
        snap[5 * CHUNK + 1] = 3;
        assert_eq!(dirty_chunks(&snap, &fresh), [CHUNK..3 * CHUNK, 5 * CHUNK..6 * CHUNK]);
    }

    #[test]
    fn padded_section_sizes_are_found() {
        let mut bytes = vec![0u8; 3];
        bytes.extend_from_slice(&[7, 0x82, 0x80, 0x80, 0x80, 0x00, 0xaa, 0xbb]);
        assert_eq!(section_start(&bytes, 9, 2), 3);
    }
}
