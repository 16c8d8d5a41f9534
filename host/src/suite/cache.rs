//! The compiled-module cache: compile a suite once, load it in a fraction of a
//! millisecond afterwards.
//!
//! An entry is keyed by the module's content hash and a hash of everything else that
//! compiled code depends on (target, Cranelift flags, tunables, wasm features,
//! wasmtime's version, what instrumentation does), so a changed suite, engine setting
//! or wasmtime misses. It holds the compiled module and what the caller prepared with
//! it (instrumentation's findings), so a hit repeats neither. An entry is native code,
//! so it is authenticated before wasmtime sees it: a MAC (keyed blake3) over the
//! entry's own key, the caller's part and the payload, with a per-user secret
//! kept outside the cache directory (see [`secret`]). The payload comes first in the
//! file, so that wasmtime maps the entry instead of copying it (a hit reads no byte of
//! it into the heap: the copies cost a page fault per 4 KiB, a fifth of a small run's);
//! the caller's part, the MAC and the magic trail it. An entry copied from another key,
//! patched, truncated or written by someone without the secret is removed and rebuilt,
//! never loaded. A directory others can write is refused. Writers go through a freshly
//! created (`O_EXCL`) temporary file and an atomic rename, so concurrent runs can share
//! the cache and a planted symlink is never followed.

mod mapped;
mod secret;
mod stable_hash;

use std::fmt;
use std::fs::OpenOptions;
use std::hash::Hash;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub use stable_hash::StableHasher;
use thiserror::Error;
use wasmtime::{Engine, Module};

/// Environment variable that overrides the cache directory.
pub const CACHE_DIR_ENV: &str = "LEAKHOST_CACHE_DIR";
/// Environment variable that overrides the path of the secret key file.
pub const CACHE_KEY_ENV: &str = "LEAKHOST_CACHE_KEY";

/// Magic bytes at the end of every entry; bumped if the entry format changes.
const MAGIC: &[u8; 8] = b"LHCACHE4";
const MAC_LEN: usize = 32;
/// The trailer after the caller's part: its length, the MAC and the magic.
const TRAILER_LEN: usize = 4 + MAC_LEN + MAGIC.len();
/// Domain separation: this secret MACs nothing else.
const MAC_CONTEXT: &[u8] = b"leakhost compiled-module cache entry v4\0";
/// Entries larger than this are not mapped (a planted link to a device or a huge file).
const MAX_ENTRY_LEN: u64 = 1 << 30;

/// Why the cache cannot be used; the run goes on without it.
#[derive(Debug, Error)]
pub enum CacheError {
    /// The directory is not the user's alone.
    #[error("cache directory {}: {why}; running without the cache", dir.display())]
    Directory {
        /// The directory.
        dir: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The secret key cannot be read or created.
    #[error("cache key {}: {why}; running without the cache (set {CACHE_KEY_ENV} to use another file)", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// No key path is configured and the platform has no config directory.
    #[error("no config directory for the cache key; set {CACHE_KEY_ENV}; running without the cache")]
    NoKeyPath,
}

/// How a suite's module was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compilation {
    /// Compiled; the cache was off.
    Compiled,
    /// Compiled, and stored at this path (or storing failed, with the reason).
    CompiledAndCached(Result<PathBuf, String>),
    /// Loaded from this cache entry.
    FromCache(PathBuf),
}

/// An entry loaded from the cache.
pub struct CachedModule {
    /// The compiled module.
    pub module: Module,
    /// What the caller stored with it.
    pub prepared: Vec<u8>,
    /// The entry's file.
    pub path: PathBuf,
}

/// A directory of compiled modules, and the secret that authenticates them.
#[derive(Clone)]
pub struct Cache {
    dir: PathBuf,
    secret: [u8; secret::KEY_LEN],
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret stays out of every log.
        f.debug_struct("Cache").field("dir", &self.dir).finish_non_exhaustive()
    }
}

/// An entry's full key: the module's content hash and the engine's compatibility hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryKey(String);

impl EntryKey {
    /// The key of the module whose bytes hash to `content`, instrumented and compiled
    /// by `engine`.
    pub fn new(engine: &Engine, content: &blake3::Hash) -> Self {
        let mut engine_hash = StableHasher::new();
        engine.precompile_compatibility_hash().hash(&mut engine_hash);
        // What instrumentation adds is part of the compiled code.
        super::instrument::variant().hash(&mut engine_hash);
        EntryKey(format!("{}-{}", content.to_hex(), engine_hash.digest().to_hex()))
    }

    /// The key as text (also the entry's file stem).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Cache {
    /// The cache in `$LEAKHOST_CACHE_DIR`, else in the user's cache directory, with the
    /// key in `$LEAKHOST_CACHE_KEY`, else `leakhost/cache.key` in the user's config
    /// directory. `None` when there is no such directory or it cannot be trusted; the
    /// reason is printed as one line on stderr.
    pub fn default_location() -> Option<Cache> {
        let dir = std::env::var_os(CACHE_DIR_ENV)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| dirs::cache_dir().map(|d| d.join("leakhost")))?;
        let opened = Cache::default_key_path().ok_or(CacheError::NoKeyPath).and_then(|key| Cache::open(dir, &key));
        opened.inspect_err(|e| eprintln!("leakhost: warning: {e}")).ok()
    }

    /// Where the secret key is kept: `$LEAKHOST_CACHE_KEY`, else
    /// `$XDG_CONFIG_HOME/leakhost/cache.key` (the platform's config directory).
    pub fn default_key_path() -> Option<PathBuf> {
        std::env::var_os(CACHE_KEY_ENV)
            .filter(|k| !k.is_empty())
            .map(PathBuf::from)
            .or_else(|| dirs::config_dir().map(|d| d.join("leakhost").join("cache.key")))
    }

    /// The cache in `dir`, authenticated with the key in `key_path` (created if absent).
    /// Refuses a directory not owned by the user or writable by others, and a key inside
    /// the cache directory or readable by others.
    pub fn open(dir: impl Into<PathBuf>, key_path: &Path) -> Result<Cache, CacheError> {
        let dir = dir.into();
        secret::check_dir(&dir).map_err(|why| CacheError::Directory { dir: dir.clone(), why })?;
        let key_error = |why: String| CacheError::Key { path: key_path.to_path_buf(), why };
        if let (Ok(d), Some(k)) = (dir.canonicalize(), resolved(key_path)) {
            if k.starts_with(&d) {
                return Err(key_error("inside the cache directory; keep it elsewhere".into()));
            }
        }
        let secret = secret::load_or_create(key_path).map_err(key_error)?;
        Ok(Cache { dir, secret })
    }

    /// The entry path for the module whose bytes hash to `content`, compiled by `engine`.
    pub fn entry_path(&self, engine: &Engine, content: &blake3::Hash) -> PathBuf {
        self.path_of(&EntryKey::new(engine, content))
    }

    fn path_of(&self, key: &EntryKey) -> PathBuf {
        self.dir.join(format!("{}.cwasm", key.as_str()))
    }

    /// The MAC of an entry: its key, the caller's part and the payload under the user's
    /// secret. Both lengths are MAC'd, so no byte can move from one part to the other.
    fn mac(&self, key: &EntryKey, prepared: &[u8], payload: &[u8]) -> blake3::Hash {
        let mut mac = blake3::Hasher::new_keyed(&self.secret);
        mac.update(MAC_CONTEXT);
        for part in [key.as_str().as_bytes(), prepared, payload] {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part);
        }
        mac.finalize()
    }

    /// Loads the entry of the module whose bytes hash to `content`: the compiled module,
    /// the part the caller stored with it, and the entry's path; `None` if there is none
    /// or it cannot be trusted (a bad entry is removed so that the next store replaces it).
    pub fn load(&self, engine: &Engine, content: &blake3::Hash) -> Option<CachedModule> {
        let key = EntryKey::new(engine, content);
        let path = self.path_of(&key);
        let (file, len) = match open_entry(&path) {
            Ok(opened) => opened,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(_) => {
                let _ = std::fs::remove_file(&path);
                return None;
            }
        };
        match self.load_open(engine, &key, file, len) {
            Some((module, prepared)) => Some(CachedModule { module, prepared, path }),
            None => {
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// The module and caller's part of the open entry `file` of `len` bytes, if it is authentic.
    fn load_open(&self, engine: &Engine, key: &EntryKey, file: std::fs::File, len: u64) -> Option<(Module, Vec<u8>)> {
        let prepared = {
            let map = mapped::Mapped::of(&file, len).ok()?;
            let (prepared, payload) = self.authentic_parts(key, map.bytes())?;
            wasmtime_artifact(payload).then(|| prepared.to_vec())?
        };
        // SAFETY: the file's bytes are exactly what `Module::serialize` produced for this
        // key (module bytes and engine compatibility hash), followed by the trailer: its
        // MAC, under a secret only this user can read, covers both. Only this user can
        // change the file (`open_entry`), and entries are replaced by rename, never
        // written in place, so the mapping wasmtime makes of it holds the bytes that
        // were authenticated. wasmtime also rejects artifacts from an incompatible engine
        // or version.
        let module = unsafe { Module::deserialize_open_file(engine, file) }.ok()?;
        Some((module, prepared))
    }

    /// Stores `module`, compiled from the module whose bytes hash to `content`, with
    /// `prepared` (what the caller needs again on a hit), and returns the entry's path.
    pub fn store(
        &self,
        engine: &Engine,
        content: &blake3::Hash,
        prepared: &[u8],
        module: &Module,
    ) -> io::Result<PathBuf> {
        let key = EntryKey::new(engine, content);
        let path = self.path_of(&key);
        let payload = module.serialize().map_err(|e| io::Error::other(e.to_string()))?;
        let prepared_len = u32::try_from(prepared.len()).map_err(|_| io::Error::other("prepared part too large"))?;
        let mut data = payload;
        let mac = self.mac(&key, prepared, &data);
        data.extend_from_slice(prepared);
        data.extend_from_slice(&prepared_len.to_le_bytes());
        data.extend_from_slice(mac.as_bytes());
        data.extend_from_slice(MAGIC);
        write_atomically(&path, &secret::unique_sibling(&path, "tmp"), &data)?;
        Ok(path)
    }

    /// The caller's part and the payload of an entry whose magic is right and whose
    /// MAC matches `key`.
    fn authentic_parts<'d>(&self, key: &EntryKey, data: &'d [u8]) -> Option<(&'d [u8], &'d [u8])> {
        let rest = data.strip_suffix(MAGIC.as_slice())?;
        let (rest, mac) = rest.split_at_checked(rest.len().checked_sub(MAC_LEN)?)?;
        let (rest, len) = rest.split_at_checked(rest.len().checked_sub(4)?)?;
        let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
        let (payload, prepared) = rest.split_at_checked(rest.len().checked_sub(len)?)?;
        // blake3::Hash compares in constant time.
        (self.mac(key, prepared, payload) == blake3::Hash::from_bytes(mac.try_into().ok()?))
            .then_some((prepared, payload))
    }
}

/// Whether `payload` starts as wasmtime's artifacts do (an ELF header): wasmtime maps
/// the whole file and parses it from its first byte, so an authentic entry whose payload
/// is not there would be a bug of this module, refused rather than handed over.
fn wasmtime_artifact(payload: &[u8]) -> bool {
    payload.starts_with(b"\x7fELF")
}

/// `path` with its longest existing prefix resolved, so that a key path whose
/// directories do not exist yet still compares with the cache directory.
fn resolved(path: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(path).ok()?;
    let existing = absolute.ancestors().find(|a| a.exists())?;
    let rest = absolute.strip_prefix(existing).ok()?;
    Some(existing.canonicalize().ok()?.join(rest))
}

/// Opens an entry to map it: a regular file of a plausible size, not through a final
/// symlink, that only this user can change (a mapping shows later writes to the file, so
/// nobody else may be able to make any).
fn open_entry(path: &Path) -> io::Result<(std::fs::File, u64)> {
    let file = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.len() > MAX_ENTRY_LEN || (meta.len() as usize) < TRAILER_LEN {
        return Err(io::Error::other("not a regular file of a plausible size"));
    }
    if let Some(why) = secret::untrusted_file(&meta) {
        return Err(io::Error::other(why));
    }
    Ok((file, meta.len()))
}

/// Writes to `temp`, which must not exist yet (`O_EXCL`: nothing planted there is
/// followed), then renames it onto `path`, so a reader sees either no entry or a whole one.
fn write_atomically(path: &Path, temp: &Path, data: &[u8]) -> io::Result<()> {
    let mut file = secret::create_exclusive(temp, 0o600)?;
    let result = file.write_all(data).and_then(|()| std::fs::rename(temp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(temp);
    }
    result
}

#[cfg(test)]
mod tests;
