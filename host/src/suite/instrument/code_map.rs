//! Where the code of an instrumented module was in the module it came from.
//!
//! DWARF line tables and the name section describe the module as the toolchain wrote
//! it. A rewrite keeps every function body at the same place relative to the code
//! section when it can (its trampolines are padded to the size of the bodies they
//! replace), but it may have to move bodies, and the code it adds or replaces has no
//! source at all. A [`CodeMap`] turns a module offset of the compiled (instrumented)
//! module, as wasmtime reports it in a backtrace, into the DWARF address of the same
//! instruction in the original module, or `None` for leakhost's own code.

use crate::leak::stacks::RawFrame;

/// A run of code that moved as a whole: `len` bytes at `new` (relative to the
/// instrumented module's code section) were at `old` (relative to the original's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Segment {
    new: u32,
    old: u32,
    len: u32,
}

/// Translates code offsets of an instrumented module to the original module's.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CodeMap {
    /// Where the compiled module's code section contents start, in the file.
    code_start: u32,
    /// Sorted by `new`, not overlapping. Empty: the module was not rewritten and every
    /// offset maps to itself.
    segments: Vec<Segment>,
    /// Whether the module was rewritten at all.
    rewritten: bool,
}

impl CodeMap {
    /// The map of a module that was not rewritten (or only outside its code section).
    pub fn identity() -> Self {
        CodeMap::default()
    }

    /// A map builder; `add` runs in code order.
    pub(super) fn builder() -> CodeMapBuilder {
        CodeMapBuilder { segments: Vec::new() }
    }

    /// The DWARF address (relative to the original code section's contents, as LLVM
    /// writes them) of the instruction at `module_offset` of the compiled module; `None`
    /// for code leakhost added or replaced, and for offsets outside the code section.
    pub fn dwarf_address(&self, module_offset: u32) -> Option<u32> {
        let relative = module_offset.checked_sub(self.code_start)?;
        if !self.rewritten {
            return Some(relative);
        }
        let at = self.segments.partition_point(|s| s.new <= relative).checked_sub(1)?;
        let segment = self.segments[at];
        let within = relative - segment.new;
        (within < segment.len).then_some(segment.old + within)
    }

    /// `frames` with their module offsets moved to where a symbolizer reading the
    /// original file's DWARF sections must look: that file's code section start
    /// (`file_code_start`) plus the DWARF address. Offsets in leakhost's own code
    /// become `None`, so those frames are named by the name section only.
    pub fn translate(&self, frames: &[RawFrame], file_code_start: u32) -> Vec<RawFrame> {
        frames
            .iter()
            .map(|frame| RawFrame {
                module_offset: frame
                    .module_offset
                    .and_then(|o| self.dwarf_address(o))
                    .and_then(|a| a.checked_add(file_code_start)),
                ..frame.clone()
            })
            .collect()
    }

    /// The same map for a module whose code section contents now start at `code_start`
    /// (a later rewrite changed only sections before the code).
    pub(super) fn at(mut self, code_start: u32) -> Self {
        self.code_start = code_start;
        self
    }
}

/// Collects a [`CodeMap`]'s segments in code order, merging runs that moved by the
/// same distance.
pub(super) struct CodeMapBuilder {
    segments: Vec<Segment>,
}

impl CodeMapBuilder {
    /// `len` bytes now at `new` were at `old` (both relative to their code sections).
    pub fn add(&mut self, new: u32, old: u32, len: u32) {
        if let Some(last) = self.segments.last_mut() {
            if last.new + last.len == new && last.old + last.len == old {
                last.len += len;
                return;
            }
        }
        if len > 0 {
            self.segments.push(Segment { new, old, len });
        }
    }

    /// The map, for a module whose code section contents start at `code_start`.
    pub fn finish(self, code_start: u32) -> CodeMap {
        CodeMap { code_start, segments: self.segments, rewritten: true }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_through_segments_and_added_code_has_none() {
        let mut builder = CodeMap::builder();
        builder.add(0, 0, 10);
        builder.add(10, 10, 5);
        // 15..20 was replaced; 20.. moved by 3.
        builder.add(20, 17, 100);
        let map = builder.finish(1000);
        assert_eq!(map.segments.len(), 2, "runs that moved alike merge");
        assert_eq!(map.dwarf_address(1000), Some(0));
        assert_eq!(map.dwarf_address(1014), Some(14));
        assert_eq!(map.dwarf_address(1016), None);
        assert_eq!(map.dwarf_address(1020), Some(17));
        assert_eq!(map.dwarf_address(1119), Some(116));
        assert_eq!(map.dwarf_address(1120), None);
        assert_eq!(map.dwarf_address(999), None);
        let frame = RawFrame { func_index: 1, name: None, module_offset: Some(1025) };
        assert_eq!(map.translate(std::slice::from_ref(&frame), 1000)[0].module_offset, Some(1022));
        // The file the DWARF is read from may have its code elsewhere (custom sections before it).
        assert_eq!(map.translate(&[frame], 40)[0].module_offset, Some(62));
    }

    #[test]
    fn a_module_that_was_not_rewritten_maps_to_itself() {
        let map = CodeMap::identity().at(50);
        assert_eq!(map.dwarf_address(70), Some(20));
    }
}
