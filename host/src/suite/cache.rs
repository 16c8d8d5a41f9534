//! The compiled-module cache: compile a suite once, load it in a fraction of a
//! millisecond afterwards.
//!
//! An entry is keyed by the module's content hash and a hash of everything in the
//! engine that compiled code depends on (target, Cranelift flags, tunables, wasm
//! features, wasmtime's version), so a changed suite, engine setting or wasmtime
//! misses. An entry is native code, so it is authenticated before wasmtime sees it:
//! a MAC (keyed blake3) over the entry's own key and payload, with a per-user secret
//! kept outside the cache directory (see [`secret`]). An entry copied from another key,
//! patched, truncated or written by someone without the secret is removed and rebuilt,
//! never loaded. A directory others can write is refused. Writers go through a freshly
//! created (`O_EXCL`) temporary file and an atomic rename, so concurrent runs can share
//! the cache and a planted symlink is never followed.

mod secret;
mod stable_hash;

use std::fmt;
use std::fs::OpenOptions;
use std::hash::Hash;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub use stable_hash::StableHasher;
use thiserror::Error;
use wasmtime::{Engine, Module};

/// Environment variable that overrides the cache directory.
pub const CACHE_DIR_ENV: &str = "LEAKHOST_CACHE_DIR";
/// Environment variable that overrides the path of the secret key file.
pub const CACHE_KEY_ENV: &str = "LEAKHOST_CACHE_KEY";

/// Magic bytes at the start of every entry; bumped if the entry format changes.
const MAGIC: &[u8; 8] = b"LHCACHE2";
const MAC_LEN: usize = 32;
/// Domain separation: this secret MACs nothing else.
const MAC_CONTEXT: &[u8] = b"leakhost compiled-module cache entry v2\0";
/// Entries larger than this are not read (a planted link to a device or a huge file).
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
    /// The key of `bytes` compiled by `engine`.
    pub fn new(engine: &Engine, bytes: &[u8]) -> Self {
        let mut engine_hash = StableHasher::new();
        engine.precompile_compatibility_hash().hash(&mut engine_hash);
        // What instrumentation adds is part of the compiled code.
        super::instrument::VERSION.hash(&mut engine_hash);
        EntryKey(format!("{}-{}", blake3::hash(bytes).to_hex(), engine_hash.digest().to_hex()))
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

    /// The entry path for `bytes` compiled by `engine`.
    pub fn entry_path(&self, engine: &Engine, bytes: &[u8]) -> PathBuf {
        self.path_of(&EntryKey::new(engine, bytes))
    }

    fn path_of(&self, key: &EntryKey) -> PathBuf {
        self.dir.join(format!("{}.cwasm", key.as_str()))
    }

    /// The MAC of an entry: its key and payload under the user's secret.
    fn mac(&self, key: &EntryKey, payload: &[u8]) -> blake3::Hash {
        let mut mac = blake3::Hasher::new_keyed(&self.secret);
        mac.update(MAC_CONTEXT);
        mac.update(&(key.as_str().len() as u64).to_le_bytes());
        mac.update(key.as_str().as_bytes());
        mac.update(payload);
        mac.finalize()
    }

    /// Loads the entry for `bytes`, or `None` if there is none or it cannot be trusted
    /// (a bad entry is removed so that the next store replaces it).
    pub fn load(&self, engine: &Engine, bytes: &[u8]) -> Option<(Module, PathBuf)> {
        let key = EntryKey::new(engine, bytes);
        let path = self.path_of(&key);
        let data = match read_entry(&path) {
            Ok(data) => data,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(_) => {
                let _ = std::fs::remove_file(&path);
                return None;
            }
        };
        let module = self.authentic_payload(&key, &data).and_then(|payload| {
            // SAFETY: the payload is exactly what `Module::serialize` produced for this
            // key (module bytes and engine compatibility hash): its MAC, under a secret
            // only this user can read, covers both. wasmtime also rejects artifacts from
            // an incompatible engine or version.
            unsafe { Module::deserialize(engine, payload) }.ok()
        });
        if module.is_none() {
            let _ = std::fs::remove_file(&path);
        }
        module.map(|module| (module, path))
    }

    /// Stores `module` (compiled from `bytes`) and returns the entry's path.
    pub fn store(&self, engine: &Engine, bytes: &[u8], module: &Module) -> io::Result<PathBuf> {
        let key = EntryKey::new(engine, bytes);
        let path = self.path_of(&key);
        let payload = module.serialize().map_err(|e| io::Error::other(e.to_string()))?;
        let mut data = Vec::with_capacity(MAGIC.len() + MAC_LEN + payload.len());
        data.extend_from_slice(MAGIC);
        data.extend_from_slice(self.mac(&key, &payload).as_bytes());
        data.extend_from_slice(&payload);
        write_atomically(&path, &secret::unique_sibling(&path, "tmp"), &data)?;
        Ok(path)
    }

    /// The payload of an entry whose magic is right and whose MAC matches `key`.
    fn authentic_payload<'d>(&self, key: &EntryKey, data: &'d [u8]) -> Option<&'d [u8]> {
        let rest = data.strip_prefix(MAGIC.as_slice())?;
        let (mac, payload) = rest.split_at_checked(MAC_LEN)?;
        // blake3::Hash compares in constant time.
        (self.mac(key, payload) == blake3::Hash::from_bytes(mac.try_into().ok()?)).then_some(payload)
    }
}

/// `path` with its longest existing prefix resolved, so that a key path whose
/// directories do not exist yet still compares with the cache directory.
fn resolved(path: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(path).ok()?;
    let existing = absolute.ancestors().find(|a| a.exists())?;
    let rest = absolute.strip_prefix(existing).ok()?;
    Some(existing.canonicalize().ok()?.join(rest))
}

/// Reads a regular file, not following a final symlink and not past [`MAX_ENTRY_LEN`].
fn read_entry(path: &Path) -> io::Result<Vec<u8>> {
    let file = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.len() > MAX_ENTRY_LEN {
        return Err(io::Error::other("not a regular file of a plausible size"));
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_ENTRY_LEN).read_to_end(&mut data)?;
    Ok(data)
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
