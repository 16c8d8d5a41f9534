//! The suite file as a run reads it: only what compiled code depends on.
//!
//! A suite built with line tables is mostly DWARF (2.3 MB of custom sections around
//! 105 KB of code for the sample suite). Compiled code never depends on custom
//! sections, except `name` (wasmtime's frame names), so the module leakhost compiles,
//! hashes for the cache key and keeps in memory is the file without the others: its
//! *lean* module. Their bytes are never read on a run that prints no stack; the
//! symbolizer reads the whole file again, and uses it only if its lean module hashes
//! to the one that was compiled ([`SourceFile::debug_file`]), so a file replaced
//! since the run started never lends its line tables to another module's code.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::instrument::read_leb as leb_u32;
use super::SuiteError;

/// What is read of a file to recognise it before its sections are walked: enough to
/// see past a licence header or a long comment in a text file.
const HEAD_LEN: usize = 64 * 1024;
/// The longest section header read: id, size and a custom section's name length (five
/// bytes each at most) and the name itself, as far as `name` needs.
const HEADER_LEN: usize = 1 + 5 + 5 + 4;
/// The one custom section compiled code depends on.
const NAME_SECTION: &[u8] = b"name";

/// Where a suite's module came from, and how to find its debug sections again.
#[derive(Debug, Clone)]
pub struct SourceFile {
    path: PathBuf,
    max_size: usize,
    lean_hash: blake3::Hash,
    code_start: Option<u32>,
    dropped: u64,
}

impl SourceFile {
    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the code section's contents start in the file (DWARF addresses count from there).
    pub fn code_start(&self) -> Option<u32> {
        self.code_start
    }

    /// The hash of the lean module: what the compiled module is made from.
    pub fn lean_hash(&self) -> blake3::Hash {
        self.lean_hash
    }

    /// How many bytes of custom sections the compiled module left out.
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped
    }

    /// The whole file, read again for its debug sections, if it still holds the module
    /// that was compiled; otherwise why not, as a clause for a note.
    pub fn debug_file(&self) -> Result<Vec<u8>, String> {
        let bytes =
            read_whole(&self.path, self.max_size).map_err(|e| format!("the suite file cannot be read again ({e})"))?;
        if blake3::hash(&lean_of_bytes(&bytes)) != self.lean_hash {
            return Err("the suite file changed after it was loaded".into());
        }
        Ok(bytes)
    }
}

/// A module file, recognised, its sections laid out and its lean module hashed: all a cache hit
/// needs. The lean module's bytes are read only to compile them ([`LeanModule::into_bytes`]).
pub struct LeanModule {
    /// Where it came from.
    pub source: SourceFile,
    file: File,
    contents: Contents,
}

/// What the lean module is made of.
enum Contents {
    /// The file's sections, of which those kept: all but custom sections other than `name`.
    Sections(Vec<Piece>),
    /// The whole file, when its sections do not parse (compiling it then says why).
    Whole(Vec<u8>),
}

impl LeanModule {
    /// The lean module's bytes, read from the file again, and its source. The source's hash
    /// becomes the hash of these bytes, so what is compiled and cached is what was hashed even
    /// if the file changed since [`read`].
    pub fn into_bytes(self) -> Result<(Vec<u8>, SourceFile), SuiteError> {
        let LeanModule { mut source, file, contents } = self;
        let bytes = match contents {
            Contents::Whole(bytes) => bytes,
            Contents::Sections(layout) => {
                let mut read_at = |at: u64, buf: &mut [u8]| read_fully_at(&file, buf, at);
                let read_error = |e| SuiteError::Read { path: source.path.clone(), source: e };
                assemble(&layout, &mut read_at).map_err(read_error)?
            }
        };
        source.lean_hash = blake3::hash(&bytes);
        Ok((bytes, source))
    }
}

/// Reads the lean module of the file at `path`, refusing a file over `max_size` bytes
/// and bytes that are not a core wasm module.
pub fn read(path: &Path, max_size: usize) -> Result<LeanModule, SuiteError> {
    let read_error = |source| SuiteError::Read { path: path.to_path_buf(), source };
    let file = File::open(path).map_err(read_error)?;
    let len = file.metadata().map_err(read_error)?.len();
    if len > max_size as u64 {
        return Err(SuiteError::TooLarge { path: path.to_path_buf(), limit: max_size });
    }
    // A module is recognised by its first 8 bytes; only a file that is not one is read further,
    // to say what it is instead.
    let mut magic = [0u8; 8];
    let got = read_fully_at(&file, &mut magic, 0).map_err(read_error)?;
    if super::not_wasm_reason(&magic[..got]).is_some() {
        let mut head = vec![0; len.min(HEAD_LEN as u64) as usize];
        let got = read_fully_at(&file, &mut head, 0).map_err(read_error)?;
        head.truncate(got);
        let why = super::not_wasm_reason(&head).unwrap_or_else(|| "it changed while it was read".into());
        return Err(SuiteError::NotWasm { path: path.to_path_buf(), why });
    }
    let mut read_at = |at: u64, buf: &mut [u8]| read_fully_at(&file, buf, at);
    let (contents, lean_hash) = match layout(len, &mut read_at).map_err(read_error)? {
        Some(layout) => {
            let hash = hash_kept(&layout, &mut read_at).map_err(read_error)?;
            (Contents::Sections(layout), hash)
        }
        // Sections that do not parse: compile the file as it is, to say what is wrong.
        None => {
            let bytes = read_whole(path, max_size).map_err(|e| match e {
                WholeError::Io(source) => read_error(source),
                WholeError::TooLarge => SuiteError::TooLarge { path: path.to_path_buf(), limit: max_size },
            })?;
            let hash = blake3::hash(&bytes);
            (Contents::Whole(bytes), hash)
        }
    };
    let (code_start, dropped) = match &contents {
        Contents::Sections(layout) => kept_facts(layout),
        Contents::Whole(_) => (None, 0),
    };
    let source = SourceFile { path: path.to_path_buf(), max_size, lean_hash, code_start, dropped };
    Ok(LeanModule { source, file, contents })
}

/// The hash of the lean module `layout` describes, read through a small buffer: a cache hit
/// never holds the module's bytes (they are read again to compile them).
fn hash_kept(layout: &[Piece], read_at: &mut ReadAt<'_>) -> io::Result<blake3::Hash> {
    // Filled across sections before it is hashed: blake3 hashes 16 KiB at a time at its widest,
    // and one small section at a time at its slowest.
    let mut buf = [0u8; 16 * 1024];
    let mut hasher = blake3::Hasher::new();
    let mut filled = read_exactly(read_at, 0, &mut buf[..8])?;
    for piece in layout.iter().filter(|p| p.keep) {
        let mut at = piece.range.start;
        while at < piece.range.end {
            let len = ((piece.range.end - at) as usize).min(buf.len() - filled);
            filled += read_exactly(read_at, at, &mut buf[filled..filled + len])?;
            at += len as u64;
            if filled == buf.len() {
                hasher.update(&buf);
                filled = 0;
            }
        }
    }
    hasher.update(&buf[..filled]);
    Ok(hasher.finalize())
}

/// Where the code section's contents start, and how many bytes the lean module leaves out.
fn kept_facts(layout: &[Piece]) -> (Option<u32>, u64) {
    let code_start = layout.iter().find(|p| p.keep && p.id == 10).and_then(|p| u32::try_from(p.content_start).ok());
    let dropped = layout.iter().filter(|p| !p.keep).map(|p| p.range.end - p.range.start).sum();
    (code_start, dropped)
}

/// One section of a file: its whole extent (header included), where its contents
/// start, and whether the lean module keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Piece {
    id: u8,
    range: Range<u64>,
    content_start: u64,
    keep: bool,
}

/// The lean module of a file already in memory.
fn lean_of_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut read_at = |at: u64, buf: &mut [u8]| {
        let start = (at as usize).min(bytes.len());
        let n = buf.len().min(bytes.len() - start);
        buf[..n].copy_from_slice(&bytes[start..start + n]);
        Ok(n)
    };
    match layout(bytes.len() as u64, &mut read_at) {
        Ok(Some(layout)) => assemble(&layout, &mut read_at).unwrap_or_else(|_| bytes.to_vec()),
        _ => bytes.to_vec(),
    }
}

type ReadAt<'a> = dyn FnMut(u64, &mut [u8]) -> io::Result<usize> + 'a;

/// The sections of a file of `len` bytes, reading only their headers; `None` when they
/// do not add up to a module.
fn layout(len: u64, read_at: &mut ReadAt<'_>) -> io::Result<Option<Vec<Piece>>> {
    let mut pieces = Vec::new();
    let mut at = 8;
    let mut header = [0u8; HEADER_LEN];
    while at < len {
        let got = read_at(at, &mut header)?;
        let header = &header[..got];
        let Some((id, header_len, size)) = section_header(header) else { return Ok(None) };
        let content_start = at + header_len as u64;
        let Some(end) = content_start.checked_add(size).filter(|&end| end <= len) else { return Ok(None) };
        let keep = id != 0 || custom_name_is(&header[header_len..], size);
        pieces.push(Piece { id, range: at..end, content_start, keep });
        at = end;
    }
    Ok(Some(pieces))
}

/// A section's id, where its contents start (from the section's start) and their size.
fn section_header(header: &[u8]) -> Option<(u8, usize, u64)> {
    let (&id, rest) = header.split_first()?;
    let (size, len) = leb_u32(rest)?;
    Some((id, 1 + len, u64::from(size)))
}

/// Whether a custom section whose contents (of `size` bytes) start with `content` is `name`.
fn custom_name_is(content: &[u8], size: u64) -> bool {
    let Some((name_len, len)) = leb_u32(content) else { return false };
    name_len as usize == NAME_SECTION.len()
        && (len + NAME_SECTION.len()) as u64 <= size
        && content.get(len..len + NAME_SECTION.len()) == Some(NAME_SECTION)
}

/// Reads the kept sections after the module header.
fn assemble(layout: &[Piece], read_at: &mut ReadAt<'_>) -> io::Result<Vec<u8>> {
    let kept: u64 = layout.iter().filter(|p| p.keep).map(|p| p.range.end - p.range.start).sum();
    let mut bytes = vec![0u8; 8 + kept as usize];
    let mut at = read_exactly(read_at, 0, &mut bytes[..8])?;
    for piece in layout.iter().filter(|p| p.keep) {
        let len = (piece.range.end - piece.range.start) as usize;
        at += read_exactly(read_at, piece.range.start, &mut bytes[at..at + len])?;
    }
    Ok(bytes)
}

fn read_exactly(read_at: &mut ReadAt<'_>, at: u64, buf: &mut [u8]) -> io::Result<usize> {
    match read_at(at, buf)? {
        n if n == buf.len() => Ok(n),
        _ => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file became shorter while it was read")),
    }
}

/// Fills as much of `buf` as the file has from `at`; returns how much.
fn read_fully_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], at + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

enum WholeError {
    Io(io::Error),
    TooLarge,
}

impl std::fmt::Display for WholeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WholeError::Io(e) => e.fmt(f),
            WholeError::TooLarge => f.write_str("it is now larger than the module size limit"),
        }
    }
}

/// The whole file, never reading more than one byte past `max_size`.
fn read_whole(path: &Path, max_size: usize) -> Result<Vec<u8>, WholeError> {
    use std::io::Read;
    let file = File::open(path).map_err(WholeError::Io)?;
    let mut bytes = Vec::new();
    file.take(max_size as u64 + 1).read_to_end(&mut bytes).map_err(WholeError::Io)?;
    if bytes.len() > max_size {
        return Err(WholeError::TooLarge);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests;
