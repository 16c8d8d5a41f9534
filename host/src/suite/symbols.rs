//! Naming the frames of captured stacks: function names from wasmtime (the module's
//! name section), and `file:line` plus inlined frames from the module's DWARF custom
//! sections when the suite carries them.
//!
//! The DWARF is the suite's, so it is untrusted: its tree depth is checked iteratively
//! before the (recursive) reader sees it, the reader runs on a thread of its own with a
//! large stack and a panic in it costs the lines, not the run; inlined frames per frame,
//! frames per stack, name lengths and the distinct text kept are all capped. One DWARF
//! context serves every stack of a run ([`Service`]), built after the first replay that
//! needs it, never inside an allocation hook.

mod guard;
mod names;
mod service;

use std::collections::HashMap;

use addr2line::Context;
use gimli::{EndianSlice, LittleEndian};

use crate::leak::stacks::{demangle, Frame, Origin, RawFrame};
use crate::text::GuestText;
use guard::UnitGuard;
pub use guard::MAX_DWARF_DEPTH;
use names::{capped, is_runtime_path, qualify, short_path, without_generics, Interner};
pub use service::Service;

type Reader<'a> = EndianSlice<'a, LittleEndian>;

/// Inlined frames kept per program point (the innermost first; the rest are cut).
pub const MAX_INLINED: usize = 32;
/// Frames kept per stack after inlined frames are expanded.
pub const MAX_FRAMES: usize = 64;
/// The stack of the thread that reads the DWARF.
const READER_STACK: usize = 64 << 20;

/// The parts of a wasm module the symbolizer reads.
struct Sections<'a> {
    /// Where the code section's contents start in the file: DWARF addresses count from here.
    code_start: Option<u32>,
    /// The custom sections, by name (`.debug_info`, ...).
    custom: HashMap<&'a str, &'a [u8]>,
}

fn leb_u32(bytes: &[u8], at: &mut usize) -> Option<u32> {
    let mut value: u64 = 0;
    for shift in (0..35).step_by(7) {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return u32::try_from(value).ok();
        }
    }
    None
}

/// Splits a module into its sections; `None` for bytes that are not a wasm module.
fn sections(wasm: &[u8]) -> Option<Sections<'_>> {
    if wasm.get(..4)? != b"\0asm" {
        return None;
    }
    let mut at = 8;
    let mut found = Sections { code_start: None, custom: HashMap::new() };
    while at < wasm.len() {
        let id = wasm[at];
        at += 1;
        let size = leb_u32(wasm, &mut at)? as usize;
        let content = wasm.get(at..at.checked_add(size)?)?;
        match id {
            10 => found.code_start = u32::try_from(at).ok(),
            0 => {
                let mut name_at = 0;
                let len = leb_u32(content, &mut name_at)? as usize;
                let name = std::str::from_utf8(content.get(name_at..name_at.checked_add(len)?)?).ok()?;
                found.custom.insert(name, &content[name_at + len..]);
            }
            _ => {}
        }
        at += size;
    }
    Some(found)
}

/// What a report's stacks are named with, and what limited it.
pub struct Symbolized {
    /// Per stack given, its frames, innermost first.
    pub stacks: Vec<Vec<Frame>>,
    /// Whether `file:line` came from DWARF line tables.
    pub has_lines: bool,
    /// What limited the naming (bad DWARF, a cap reached), one clause each.
    pub notes: Vec<String>,
}

/// Names every stack of `stacks` from the name section only (a suite without debug
/// sections), keeping at most `frame_text` bytes of distinct names; no DWARF is read, so
/// no reader thread is needed ([`Service`] names stacks with line tables).
pub fn names_only(stacks: &[Vec<RawFrame>], frame_text: usize) -> Symbolized {
    Symbolizer::names_only(frame_text).name(stacks)
}

/// Names frames for one module.
struct Symbolizer<'a> {
    /// The DWARF context, the guard of its units and the code section's start, when the
    /// module has line tables.
    dwarf: Option<Dwarf<'a>>,
    /// Why the module's DWARF is not used, when it has some.
    refused: Option<String>,
    /// Why the module's DWARF was refused when it was first read (the rest of `refused`
    /// comes from the units a request's frames touch).
    refused_at_start: Option<String>,
    /// Source directories of the SDK's crate, learnt from the functions the name section
    /// says are the SDK's: inlined frames from files under them are the SDK's too.
    sdk_roots: Vec<String>,
    texts: Interner,
    /// Names by function index: a name section's name is demangled and capped once.
    names: HashMap<u32, GuestText>,
    /// A cap was reached: inlined frames or frames per stack.
    cut: bool,
}

/// A module's DWARF, ready to read.
struct Dwarf<'a> {
    context: Context<Reader<'a>>,
    guard: UnitGuard<'a>,
    code_start: u32,
}

/// A frame found in DWARF, before it is classified.
struct Found {
    function: Option<String>,
    /// The full source path.
    path: Option<String>,
    line: Option<u32>,
}

/// Whether `function` is the SDK crate's own (`leakhost_guest::…`, `<leakhost_guest::… as …>`).
fn is_sdk_crate(function: &str) -> bool {
    function.trim_start_matches('<').starts_with("leakhost_guest::")
}

impl<'a> Symbolizer<'a> {
    fn names_only(frame_text: usize) -> Self {
        Symbolizer {
            dwarf: None,
            refused: None,
            refused_at_start: None,
            sdk_roots: Vec::new(),
            texts: Interner::new(frame_text),
            names: HashMap::new(),
            cut: false,
        }
    }

    /// A symbolizer over the module `wasm`; without (usable) DWARF it names functions only.
    fn new(wasm: &'a [u8], frame_text: usize) -> Self {
        let mut symbolizer = Symbolizer::names_only(frame_text);
        match sections(wasm).map(Self::context) {
            Some(Ok(dwarf)) => symbolizer.dwarf = dwarf,
            Some(Err(why)) => symbolizer.refused_at_start = Some(why),
            None => {}
        }
        symbolizer.refused = symbolizer.refused_at_start.clone();
        symbolizer
    }

    /// Forgets everything but the DWARF context, for a request of its own: a fresh text
    /// budget of `frame_text` bytes, no names, no learnt SDK paths, no cuts.
    fn begin(&mut self, frame_text: usize) {
        self.texts = Interner::new(frame_text);
        self.names.clear();
        self.sdk_roots.clear();
        self.refused = self.refused_at_start.clone();
        self.cut = false;
    }

    fn context(sections: Sections<'a>) -> Result<Option<Dwarf<'a>>, String> {
        let (Some(code_start), Some(_)) = (sections.code_start, sections.custom.get(".debug_info")) else {
            return Ok(None);
        };
        let load = || {
            gimli::Dwarf::load(|id| -> Result<Reader<'a>, gimli::Error> {
                let data = sections.custom.get(id.name()).copied().unwrap_or(&[]);
                Ok(EndianSlice::new(data, LittleEndian))
            })
            .map_err(|e| format!("its DWARF is malformed ({e})"))
        };
        let guard = UnitGuard::new(load()?)?;
        let context = Context::from_dwarf(load()?).map_err(|e| format!("its DWARF is malformed ({e})"))?;
        Ok(Some(Dwarf { context, guard, code_start }))
    }

    fn name(&mut self, stacks: &[Vec<RawFrame>]) -> Symbolized {
        let stacks = stacks.iter().map(|raw| self.frames(raw)).collect();
        let mut notes = Vec::new();
        if let Some(why) = &self.refused {
            notes.push(format!("names only: {why}, so its line tables are not read"));
        }
        if self.cut {
            notes.push(format!(
                "long stacks are cut: at most {MAX_INLINED} inlined frames per call and {MAX_FRAMES} frames per stack"
            ));
        }
        if self.texts.spent {
            notes.push("frame names past the frame text budget are not shown (--max-frame-text)".into());
        }
        Symbolized { stacks, has_lines: self.dwarf.is_some(), notes }
    }

    /// The frames of one captured stack, innermost first: a raw frame becomes its inlined
    /// calls (innermost first) and then its own function.
    fn frames(&mut self, raw: &[RawFrame]) -> Vec<Frame> {
        let found: Vec<(Vec<Found>, Option<String>)> = raw.iter().map(|frame| self.lookup(frame)).collect();
        for (frame, (chain, _)) in raw.iter().zip(&found) {
            self.learn_sdk_root(frame, chain.last());
        }
        let mut frames = Vec::new();
        for (frame, (chain, comp_dir)) in raw.iter().zip(found) {
            frames.extend(self.classify(frame, chain, comp_dir.as_deref()));
        }
        if frames.len() > MAX_FRAMES {
            frames.truncate(MAX_FRAMES);
            self.cut = true;
        }
        qualify(&mut frames);
        frames
    }

    /// The DWARF frames at one program point, innermost first, and the directory its
    /// compile unit was built in; empty without DWARF.
    fn lookup(&mut self, raw: &RawFrame) -> (Vec<Found>, Option<String>) {
        let (Some(dwarf), Some(offset)) = (&mut self.dwarf, raw.module_offset) else {
            return (Vec::new(), None);
        };
        let Some(address) = offset.checked_sub(dwarf.code_start).map(u64::from) else { return (Vec::new(), None) };
        match dwarf.guard.check(address) {
            Ok(true) => {}
            Ok(false) => return (Vec::new(), None),
            Err(why) => {
                self.refused.get_or_insert(why);
                return (Vec::new(), None);
            }
        }
        let context = &dwarf.context;
        let comp_dir = context
            .find_dwarf_and_unit(address)
            .skip_all_loads()
            .and_then(|unit| unit.comp_dir.map(|d| String::from_utf8_lossy(d.slice()).into_owned()));
        let mut frames = Vec::new();
        if let Ok(mut iter) = context.find_frames(address).skip_all_loads() {
            while let Ok(Some(found)) = iter.next() {
                if frames.len() == MAX_INLINED {
                    self.cut = true;
                    break;
                }
                let function = found.function.as_ref().and_then(|f| f.raw_name().ok()).map(|n| demangle(&n));
                let (path, line) = match &found.location {
                    Some(location) => (location.file.map(str::to_string), location.line),
                    None => (None, None),
                };
                frames.push(Found { function, path, line });
            }
        }
        (frames, comp_dir)
    }

    /// Learns where the SDK's sources are from a function of its own crate (not from the
    /// glue its macros put in the suite's crate, whose files are the suite's).
    fn learn_sdk_root(&mut self, raw: &RawFrame, outer: Option<&Found>) {
        let name = raw.name.as_deref().map(demangle);
        let path = outer.and_then(|f| f.path.as_deref());
        if let (Some(true), Some(path)) = (name.as_deref().map(is_sdk_crate), path) {
            if let Some(at) = path.rfind("/src/") {
                let root = &path[..at + 1];
                if !self.sdk_roots.iter().any(|r| r == root) {
                    self.sdk_roots.push(root.to_string());
                }
            }
        }
    }

    fn origin_of_path(&self, path: &str) -> Option<Origin> {
        if is_runtime_path(path) {
            return Some(Origin::Std);
        }
        self.sdk_roots.iter().any(|root| path.starts_with(root.as_str())).then_some(Origin::Sdk)
    }

    /// The name section's name of `raw`'s function, demangled and capped once per function.
    fn section_name(&mut self, raw: &RawFrame) -> Option<GuestText> {
        if let Some(name) = self.names.get(&raw.func_index) {
            return Some(name.clone());
        }
        let name = raw.name.as_deref().map(|n| self.texts.text(&capped(&demangle(n))))?;
        self.names.insert(raw.func_index, name.clone());
        Some(name)
    }

    fn classify(&mut self, raw: &RawFrame, chain: Vec<Found>, comp_dir: Option<&str>) -> Vec<Frame> {
        let name_section = self.section_name(raw);
        let offsets: Vec<u32> = raw.module_offset.into_iter().collect();
        if chain.is_empty() {
            let function = name_section.unwrap_or_else(|| GuestText::from(format!("<function {}>", raw.func_index)));
            let origin = Origin::of_name(function.raw());
            return vec![Frame { function, file: None, path: None, line: None, module_offsets: offsets, origin }];
        }
        let last = chain.len() - 1;
        let mut frames = Vec::with_capacity(chain.len());
        for (i, found) in chain.into_iter().enumerate() {
            // A build with linkage names gives every inlined frame its whole path; line
            // tables alone give short names, and the name section names the outer one.
            let dwarf_name = found.function.as_deref().map(|f| if f.contains("::") { f } else { without_generics(f) });
            let function = match (i == last, &name_section, dwarf_name) {
                (true, Some(name), _) => name.clone(),
                (_, _, Some(name)) => self.texts.text(&capped(name)),
                _ => GuestText::from("<unknown>"),
            };
            let origin = found
                .path
                .as_deref()
                .and_then(|p| self.origin_of_path(p))
                .unwrap_or_else(|| Origin::of_name(function.raw()));
            let file = found.path.as_deref().map(|p| self.texts.text(&capped(&short_path(p, comp_dir))));
            let path = found.path.as_deref().map(|p| self.texts.text(&capped(p)));
            frames.push(Frame { function, file, path, line: found.line, module_offsets: offsets.clone(), origin });
        }
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_found_and_bad_bytes_refused() {
        // header, a custom section "x" with body "ab", an empty code section.
        let wasm = b"\0asm\x01\0\0\0\x00\x04\x01xab\x0a\x01\x00";
        let found = sections(wasm).expect("a module");
        assert_eq!(found.custom.get("x"), Some(&&b"ab"[..]));
        assert_eq!(found.code_start, Some(16));
        assert!(sections(b"not wasm").is_none());
        assert!(sections(b"\0asm\x01\0\0\0\x00\xff").is_none());
    }

    #[test]
    fn without_dwarf_frames_carry_the_demangled_capped_name() {
        let long = format!("_ZN4leak{}{}17h0123456789abcdefE", 2000, "x".repeat(2000));
        let raw = |index, name: Option<&str>| RawFrame {
            func_index: index,
            name: name.map(Into::into),
            module_offset: Some(9),
        };
        let symbolized = names_only(
            &[vec![raw(3, Some("_ZN4leak6helper17h0123456789abcdefE")), raw(4, None), raw(5, Some(&long))]],
            1 << 20,
        );
        assert!(!symbolized.has_lines);
        let frames = &symbolized.stacks[0];
        assert_eq!(frames[0].text(), "leak::helper");
        assert_eq!(frames[1].text(), "<function 4>");
        assert!(frames[2].function.raw().len() < 600 && frames[2].function.raw().contains('…'));
        assert_eq!(frames[0].module_offsets, vec![9]);
    }
}
