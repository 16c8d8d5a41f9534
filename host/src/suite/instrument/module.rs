//! The pieces a rewrite of a module is made of: its sections as raw byte ranges, in
//! the order the binary format requires, and the LEB128 encodings of their contents.
//! Sections that a rewrite does not change are copied byte for byte.

use std::ops::Range;

/// Section ids in the order a module must list them (custom sections aside).
const ORDER: [u8; 13] = [1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11];

/// Where a section id goes in [`ORDER`]; custom sections (0) sort after everything.
fn rank(id: u8) -> usize {
    ORDER.iter().position(|&o| o == id).unwrap_or(ORDER.len())
}

/// One section of a module.
#[derive(Debug, Clone)]
pub struct Section {
    /// Its id (0 for a custom section).
    pub id: u8,
    /// Its contents (after the id and size).
    pub content: Range<usize>,
}

/// A module as a header and a list of sections.
#[derive(Debug, Clone)]
pub struct Sections {
    /// The sections, in file order.
    pub list: Vec<Section>,
}

impl Sections {
    /// Splits `bytes`; `None` when they are not a well-formed sequence of sections.
    pub fn split(bytes: &[u8]) -> Option<Sections> {
        if bytes.get(..8)? != b"\0asm\x01\0\0\0" {
            return None;
        }
        let mut at = 8;
        let mut list = Vec::new();
        while at < bytes.len() {
            let id = bytes[at];
            let (size, len) = read_leb(&bytes[at + 1..])?;
            let start = at + 1 + len;
            let end = start.checked_add(size as usize).filter(|&end| end <= bytes.len())?;
            list.push(Section { id, content: start..end });
            at = end;
        }
        Some(Sections { list })
    }

    /// The first section with `id`.
    pub fn find(&self, id: u8) -> Option<&Section> {
        self.list.iter().find(|s| s.id == id)
    }
}

/// Rebuilds a module: every section of `sections` copied from `bytes`, except those
/// `replace` gives new contents for (`Some(contents)`), plus the sections of
/// `insert` whose id the module lacks, each at its place in the required order.
pub fn rebuild(
    bytes: &[u8],
    sections: &Sections,
    mut replace: impl FnMut(&Section) -> Option<Vec<u8>>,
    insert: Vec<(u8, Vec<u8>)>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 4096);
    out.extend_from_slice(&bytes[..8]);
    let mut pending: Vec<(u8, Vec<u8>)> = insert.into_iter().filter(|(id, _)| sections.find(*id).is_none()).collect();
    pending.sort_by_key(|(id, _)| rank(*id));
    let mut pending = pending.into_iter().peekable();
    for section in &sections.list {
        // A new section goes before the first known section that must follow it;
        // custom sections stay where they were.
        if section.id != 0 {
            while let Some((id, content)) = pending.next_if(|(id, _)| rank(*id) < rank(section.id)) {
                write_section(&mut out, id, &content);
            }
        }
        match replace(section) {
            Some(content) => write_section(&mut out, section.id, &content),
            None => {
                write_section_header(&mut out, section.id, section.content.len());
                out.extend_from_slice(&bytes[section.content.clone()]);
            }
        }
    }
    for (id, content) in pending {
        write_section(&mut out, id, &content);
    }
    out
}

fn write_section_header(out: &mut Vec<u8>, id: u8, len: usize) {
    out.push(id);
    write_leb(out, len as u32);
}

/// Appends a section with `content`.
pub fn write_section(out: &mut Vec<u8>, id: u8, content: &[u8]) {
    write_section_header(out, id, content.len());
    out.extend_from_slice(content);
}

/// The contents of a vector section (a count, then entries) with `added` entries
/// appended: `old` is the section's contents, or `None` for a section to create.
pub fn append_entries(old: Option<&[u8]>, added: u32, entries: &[u8]) -> Vec<u8> {
    let (count, rest) = match old.and_then(|c| read_leb(c).map(|(n, len)| (n, &c[len..]))) {
        Some((count, rest)) => (count, rest),
        None => (0, &[][..]),
    };
    let mut out = Vec::with_capacity(5 + rest.len() + entries.len());
    write_leb(&mut out, count + added);
    out.extend_from_slice(rest);
    out.extend_from_slice(entries);
    out
}

/// Reads an unsigned LEB128 u32; returns it and its length in bytes.
pub fn read_leb(bytes: &[u8]) -> Option<(u32, usize)> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(5) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return u32::try_from(value).ok().map(|v| (v, i + 1));
        }
    }
    None
}

/// Writes `value` as the shortest unsigned LEB128.
pub fn write_leb(out: &mut Vec<u8>, mut value: u32) {
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

/// Writes `value` as an unsigned LEB128 of exactly `len` bytes (1 to 5), padded with
/// continuation bytes; `false` (and nothing written) when it does not fit.
pub fn write_leb_padded(out: &mut Vec<u8>, value: u32, len: usize) -> bool {
    if !(1..=5).contains(&len) || (len < 5 && u64::from(value) >= 1u64 << (7 * len)) {
        return false;
    }
    for i in 0..len {
        let byte = ((value >> (7 * i)) & 0x7f) as u8;
        out.push(if i + 1 < len { byte | 0x80 } else { byte });
    }
    true
}

/// Writes `value` as a signed LEB128 (for `i32.const`).
pub fn write_sleb(out: &mut Vec<u8>, mut value: i32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        let done = (value == 0 && byte & 0x40 == 0) || (value == -1 && byte & 0x40 != 0);
        out.push(if done { byte } else { byte | 0x80 });
        if done {
            return;
        }
    }
}

/// Writes a name (length, then UTF-8).
pub fn write_name(out: &mut Vec<u8>, name: &str) {
    write_leb(out, name.len() as u32);
    out.extend_from_slice(name.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lebs_round_trip_and_pad() {
        for value in [0, 1, 127, 128, 16_383, 16_384, u32::MAX] {
            let mut out = Vec::new();
            write_leb(&mut out, value);
            assert_eq!(read_leb(&out), Some((value, out.len())));
            let mut padded = Vec::new();
            assert!(write_leb_padded(&mut padded, value, 5));
            assert_eq!(read_leb(&padded), Some((value, 5)));
        }
        assert!(!write_leb_padded(&mut Vec::new(), 128, 1));
        let mut sleb = Vec::new();
        write_sleb(&mut sleb, -1);
        write_sleb(&mut sleb, 64);
        assert_eq!(sleb, [0x7f, 0xc0, 0x00]);
    }

    #[test]
    fn new_sections_go_in_the_required_order() {
        // type, function, code: a table (4) and globals (6) go between function and code.
        let wasm = wat::parse_str(r#"(module (func (export "f")))"#).unwrap();
        let sections = Sections::split(&wasm).unwrap();
        let out = rebuild(&wasm, &sections, |_| None, vec![(6, vec![0]), (4, vec![0])]);
        let ids: Vec<u8> = Sections::split(&out).unwrap().list.iter().map(|s| s.id).collect();
        assert_eq!(ids, [1, 3, 4, 6, 7, 10]);
        wasmparser::Validator::new().validate_all(&out).unwrap();
    }
}
