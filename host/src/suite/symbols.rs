//! Naming the frames of captured stacks: function names from wasmtime (the module's
//! name section), and `file:line` plus inlined frames from the module's DWARF custom
//! sections when the suite carries them. One DWARF context serves a whole report;
//! it is built once, after the replay, never inside an allocation hook.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;

use addr2line::Context;
use gimli::{EndianSlice, LittleEndian};

use crate::leak::stacks::{demangle, Frame, Origin, RawFrame};
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
    /// Source directories of the SDK's crate, learnt from the functions the name section
    /// says are the SDK's: inlined frames from files under them are the SDK's too.
    sdk_roots: RefCell<Vec<String>>,
}

/// A frame found in DWARF, before it is classified.
struct Found {
    function: Option<String>,
    /// The full source path.
    path: Option<String>,
    line: Option<u32>,
}

impl<'a> Symbolizer<'a> {
    /// A symbolizer over the module `wasm`; without DWARF it names functions only.
    pub fn new(wasm: &'a [u8]) -> Self {
        Symbolizer { dwarf: sections(wasm).and_then(Self::context), sdk_roots: RefCell::default() }
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
        let found: Vec<Vec<Found>> = raw.iter().map(|frame| self.lookup(frame)).collect();
        for (frame, chain) in raw.iter().zip(&found) {
            self.learn_sdk_root(frame, chain.last());
        }
        let mut frames: Vec<Frame> =
            raw.iter().zip(found).flat_map(|(frame, chain)| self.classify(frame, chain)).collect();
        qualify(&mut frames);
        frames
    }

    /// The DWARF frames at one program point, innermost first; empty without DWARF.
    fn lookup(&self, raw: &RawFrame) -> Vec<Found> {
        let (Some((context, code_start)), Some(offset)) = (&self.dwarf, raw.module_offset) else { return Vec::new() };
        let Some(address) = offset.checked_sub(*code_start) else { return Vec::new() };
        let mut frames = Vec::new();
        if let Ok(mut iter) = context.find_frames(u64::from(address)).skip_all_loads() {
            while let Ok(Some(found)) = iter.next() {
                let function = found.function.as_ref().and_then(|f| f.raw_name().ok()).map(|n| demangle(&n));
                let (path, line) = match &found.location {
                    Some(location) => (location.file.map(str::to_string), location.line),
                    None => (None, None),
                };
                frames.push(Found { function, path, line });
            }
        }
        frames
    }

    fn learn_sdk_root(&self, raw: &RawFrame, outer: Option<&Found>) {
        let name = raw.name.as_deref().map(demangle);
        let path = outer.and_then(|f| f.path.as_deref());
        if let (Some(Origin::Sdk), Some(path)) = (name.as_deref().map(Origin::of_name), path) {
            if let Some(at) = path.rfind("/src/") {
                let root = &path[..at + 1];
                let mut roots = self.sdk_roots.borrow_mut();
                if !roots.iter().any(|r| r == root) {
                    roots.push(root.to_string());
                }
            }
        }
    }

    fn origin_of_path(&self, path: &str) -> Option<Origin> {
        if STD_PATHS.iter().any(|p| path.contains(p)) {
            return Some(Origin::Std);
        }
        self.sdk_roots.borrow().iter().any(|root| path.starts_with(root.as_str())).then_some(Origin::Sdk)
    }

    fn classify(&self, raw: &RawFrame, chain: Vec<Found>) -> Vec<Frame> {
        let name_section = raw.name.as_deref().map(demangle);
        if chain.is_empty() {
            let function = name_section.unwrap_or_else(|| format!("<function {}>", raw.func_index));
            let origin = Origin::of_name(&function);
            return vec![Frame {
                function: function.into(),
                file: None,
                line: None,
                module_offset: raw.module_offset,
                origin,
            }];
        }
        let last = chain.len() - 1;
        chain
            .into_iter()
            .enumerate()
            .map(|(i, found)| {
                let short = found.function.as_deref().map(without_generics);
                // DWARF line tables name functions without their path; the name section
                // has the outer (not inlined) function's whole name.
                let function = match (i == last, &name_section, short) {
                    (true, Some(name), _) => name.clone(),
                    (_, _, Some(short)) => short.to_string(),
                    _ => "<unknown>".to_string(),
                };
                let origin = match found.path.as_deref().and_then(|p| self.origin_of_path(p)) {
                    Some(origin) => origin,
                    None => Origin::of_name(&function),
                };
                Frame {
                    function: GuestText::from(function),
                    file: found.path.as_deref().map(|p| GuestText::from(short_path(p).into_owned())),
                    line: found.line,
                    module_offset: raw.module_offset,
                    origin,
                }
            })
            .collect()
    }
}

/// Gives the suite's inlined frames, which line tables name without a path, the path
/// of a named frame of the same file: a closure that of the function around it
/// (`leak::helper::{closure#0}`), a function the module of its neighbours
/// (`leak::test_body`). Outermost first, so nested closures build on their parents.
fn qualify(frames: &mut [Frame]) {
    for i in (0..frames.len()).rev() {
        let frame = &frames[i];
        if frame.origin != Origin::User || frame.function.raw().contains("::") || frame.file.is_none() {
            continue;
        }
        let same_file =
            |f: &&Frame| f.file == frame.file && f.origin == Origin::User && f.function.raw().contains("::");
        let name = frame.function.raw();
        let qualified = if name.starts_with("{closure") {
            frames[i + 1..].iter().find(same_file).map(|outer| format!("{}::{name}", outer.function.raw()))
        } else {
            let outer = frames[i + 1..].iter().find(same_file).or_else(|| frames[..i].iter().rev().find(same_file));
            outer.and_then(|f| module_of(f.function.raw())).map(|module| format!("{module}::{name}"))
        };
        if let Some(qualified) = qualified {
            frames[i].function = GuestText::from(qualified);
        }
    }
}

/// `leak::helper` is in `leak`; `leak::helper::{closure#0}` too. `None` for a trait
/// impl (`<T as Trait>::f`), whose module the name does not say.
fn module_of(function: &str) -> Option<&str> {
    if function.starts_with('<') {
        return None;
    }
    let path = function.split("::{").next().unwrap_or(function);
    path.rsplit_once("::").map(|(module, _)| module)
}

/// Where the standard library's sources are: rustc remaps them to `/rustc/HASH/library/`,
/// and its dependencies (hashbrown, ...) to `/rust/deps/`.
const STD_PATHS: &[&str] = &["/rustc/", "/library/", "/rust/deps/"];

/// `new<[u8; 12]>` is `new`, `{closure#0}<i32, F>` is `{closure#0}`: line tables carry
/// the instance's arguments, which only make a frame longer.
fn without_generics(name: &str) -> &str {
    match name.find('<') {
        Some(0) | None => name,
        Some(at) => &name[..at],
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
        let raw = RawFrame {
            func_index: 3,
            name: Some("_ZN4leak6helper17h0123456789abcdefE".into()),
            module_offset: Some(9),
        };
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
