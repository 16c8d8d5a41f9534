//! Which compile units of a suite's DWARF are safe to hand to the (recursive) reader: each
//! unit's tree depth is checked iteratively, once, and only when a frame needs that unit,
//! so a clean run pays for the units its stacks touch, not for the whole (mostly std) DWARF.

use std::collections::HashMap;

use super::Reader;

/// The deepest DWARF tree accepted: real compilers nest a few dozen levels (namespaces and
/// inlined calls); a hostile module nests thousands to overflow a recursive reader.
pub const MAX_DWARF_DEPTH: isize = 256;

/// The units of one module's DWARF, by address range, and what is known of their depth.
pub struct UnitGuard<'a> {
    dwarf: gimli::Dwarf<Reader<'a>>,
    headers: Vec<gimli::UnitHeader<Reader<'a>>>,
    /// Address ranges, each with its unit's index in `headers`.
    ranges: Vec<(u64, u64, usize)>,
    /// Per unit checked: why it is refused, if it is.
    checked: HashMap<usize, Option<String>>,
}

fn malformed(e: gimli::Error) -> String {
    format!("its DWARF is malformed ({e})")
}

impl<'a> UnitGuard<'a> {
    /// Reads the units' headers and root ranges (no tree below a unit's root is read).
    pub fn new(dwarf: gimli::Dwarf<Reader<'a>>) -> Result<Self, String> {
        let (mut headers, mut ranges) = (Vec::new(), Vec::new());
        let mut units = dwarf.units();
        while let Some(header) = units.next().map_err(malformed)? {
            let unit = dwarf.unit(header).map_err(malformed)?;
            let mut unit_ranges = dwarf.unit_ranges(&unit).map_err(malformed)?;
            while let Some(range) = unit_ranges.next().map_err(malformed)? {
                ranges.push((range.begin, range.end, headers.len()));
            }
            headers.push(header);
        }
        Ok(UnitGuard { dwarf, headers, ranges, checked: HashMap::new() })
    }

    /// Whether every unit covering `address` is safe to read; `Err` says why one is not. An
    /// address no unit covers is not looked up at all.
    pub fn check(&mut self, address: u64) -> Result<bool, String> {
        let covering: Vec<usize> =
            self.ranges.iter().filter(|(begin, end, _)| (*begin..*end).contains(&address)).map(|r| r.2).collect();
        for unit in &covering {
            if !self.checked.contains_key(unit) {
                let verdict = self.scan(*unit).err();
                self.checked.insert(*unit, verdict);
            }
            if let Some(why) = &self.checked[unit] {
                return Err(why.clone());
            }
        }
        Ok(!covering.is_empty())
    }

    fn scan(&self, index: usize) -> Result<(), String> {
        let unit = self.dwarf.unit(self.headers[index]).map_err(malformed)?;
        let mut entries = unit.entries();
        while let Some(entry) = entries.next_dfs().map_err(malformed)? {
            if entry.depth() > MAX_DWARF_DEPTH {
                return Err(format!("its DWARF nests deeper than {MAX_DWARF_DEPTH} levels"));
            }
        }
        Ok(())
    }
}
