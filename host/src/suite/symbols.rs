//! Naming the frames of captured stacks: function names from wasmtime (the module's
//! name section), and `file:line` plus inlined frames from the module's DWARF custom
//! sections when the suite carries them. One DWARF context serves a whole report;
//! it is built once, after the replay, never inside an allocation hook.

use std::borrow::Cow;
use std::collections::HashMap;

use addr2line::Context;
use gimli::{EndianSlice, LittleEndian};

use crate::leak::stacks::{demangle, Frame, RawFrame};
use crate::text::GuestText;

type Reader<'a> = EndianSlice<'a, LittleEndian>;

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

/// Names frames for one module.
pub struct Symbolizer<'a> {
    /// The DWARF context and the code section's start, when the module has line tables.
    dwarf: Option<(Context<Reader<'a>>, u32)>,
}

impl<'a> Symbolizer<'a> {
    /// A symbolizer over the module `wasm`; without DWARF it names functions only.
    pub fn new(wasm: &'a [u8]) -> Self {
        Symbolizer { dwarf: sections(wasm).and_then(Self::context) }
    }

    fn context(sections: Sections<'a>) -> Option<(Context<Reader<'a>>, u32)> {
        let code_start = sections.code_start?;
        sections.custom.get(".debug_info")?;
        let dwarf = gimli::Dwarf::load(|id| -> Result<Reader<'a>, gimli::Error> {
            let data = sections.custom.get(id.name()).copied().unwrap_or(&[]);
            Ok(EndianSlice::new(data, LittleEndian))
        })
        .ok()?;
        Context::from_dwarf(dwarf).ok().map(|context| (context, code_start))
    }

    /// Whether `file:line` is available.
    pub fn has_lines(&self) -> bool {
        self.dwarf.is_some()
    }

    /// The frames of one captured stack, innermost first: a raw frame becomes its
    /// inlined calls (innermost first) and then its own function.
    pub fn frames(&self, raw: &[RawFrame]) -> Vec<Frame> {
        raw.iter().flat_map(|frame| self.frame(frame)).collect()
    }

    fn frame(&self, raw: &RawFrame) -> Vec<Frame> {
        let name_section = raw.name.as_deref().map(demangle);
        let fallback = || Frame {
            function: GuestText::from(name_section.clone().unwrap_or_else(|| format!("<function {}>", raw.func_index))),
            file: None,
            line: None,
            module_offset: raw.module_offset,
        };
        let (Some((context, code_start)), Some(offset)) = (&self.dwarf, raw.module_offset) else {
            return vec![fallback()];
        };
        let Some(address) = offset.checked_sub(*code_start) else { return vec![fallback()] };
        let mut frames = Vec::new();
        if let Ok(mut iter) = context.find_frames(u64::from(address)).skip_all_loads() {
            while let Ok(Some(found)) = iter.next() {
                let function = found.function.as_ref().and_then(|f| f.raw_name().ok()).map(|n| demangle(&n));
                let (file, line) = match &found.location {
                    Some(location) => (location.file.map(short_path), location.line),
                    None => (None, None),
                };
                frames.push(Frame {
                    function: GuestText::from(function.unwrap_or_else(|| "<unknown>".into())),
                    file: file.map(|f| GuestText::from(f.into_owned())),
                    line,
                    module_offset: raw.module_offset,
                });
            }
        }
        match frames.last_mut() {
            None => vec![fallback()],
            Some(outer) => {
                // DWARF may name the function without its path; the name section has it whole.
                if let Some(name) = name_section.filter(|_| !outer.function.raw().contains("::")) {
                    outer.function = GuestText::from(name);
                }
                frames
            }
        }
    }
}

/// A source path as reports show it: relative to the package (`src/lib.rs`) when it
/// is under one, and a standard library path from `library/` on.
fn short_path(path: &str) -> Cow<'_, str> {
    for marker in ["/library/", "/src/"] {
        if let Some(at) = path.rfind(marker) {
            return Cow::Borrowed(&path[at + 1..]);
        }
    }
    Cow::Borrowed(path)
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
    fn without_dwarf_frames_carry_the_demangled_name() {
        let symbolizer = Symbolizer::new(b"\0asm\x01\0\0\0");
        assert!(!symbolizer.has_lines());
        let raw = RawFrame { func_index: 3, name: Some("_ZN4leak6helper17h0123456789abcdefE".into()), module_offset: Some(9) };
        let frames = symbolizer.frames(&[raw, RawFrame { func_index: 4, name: None, module_offset: None }]);
        assert_eq!(frames[0].text(), "leak::helper");
        assert_eq!(frames[1].text(), "<function 4>");
    }

    #[test]
    fn paths_are_shortened_to_the_package() {
        assert_eq!(short_path("/work/sample-tests/leakstacks/src/lib.rs"), "src/lib.rs");
        assert_eq!(short_path("/rustc/abc/library/alloc/src/vec/mod.rs"), "library/alloc/src/vec/mod.rs");
        assert_eq!(short_path("lib.rs"), "lib.rs");
    }
}
