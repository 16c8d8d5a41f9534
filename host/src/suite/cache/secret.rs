//! The cache's trust anchors: the per-user secret that authenticates entries, and the
//! checks that a cache directory belongs to the user alone.
//!
//! The secret lives outside the cache directory (by default
//! `$XDG_CONFIG_HOME/leakhost/cache.key`), readable by its owner only, so that whoever
//! can write the cache — a CI cache restored from another branch, a shared directory —
//! still cannot make an entry the host will load.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Bytes of the secret key.
pub const KEY_LEN: usize = 32;

/// Permission bits that let anyone but the owner change a file or directory.
const WRITABLE_BY_OTHERS: u32 = 0o022;
/// Permission bits that let anyone but the owner read or change the key.
const ACCESSIBLE_BY_OTHERS: u32 = 0o077;

/// The effective user id of this process.
fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Why `meta` may not be trusted, or `None` if it belongs to the user and only the
/// user may change it (`forbidden` are the mode bits others must not have).
fn untrusted_because(meta: &fs::Metadata, forbidden: u32) -> Option<String> {
    if meta.uid() != current_uid() {
        return Some(format!("owned by uid {}, not by this user (uid {})", meta.uid(), current_uid()));
    }
    let mode = meta.permissions().mode() & 0o777;
    (mode & forbidden != 0).then(|| format!("mode {mode:03o} lets other users in; chmod go-rwx it"))
}

/// Why the file of `meta` may not be trusted to stay as it was read (someone else
/// owns it or may write it), or `None`.
pub fn untrusted_file(meta: &fs::Metadata) -> Option<String> {
    untrusted_because(meta, WRITABLE_BY_OTHERS)
}

/// Creates `dir` (owner-only) if needed and checks that only the user can write it.
pub fn check_dir(dir: &Path) -> Result<(), String> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| format!("cannot create it: {e}"))?;
    let meta = fs::metadata(dir).map_err(|e| format!("cannot read its metadata: {e}"))?;
    if !meta.is_dir() {
        return Err("not a directory".into());
    }
    match untrusted_because(&meta, WRITABLE_BY_OTHERS) {
        Some(why) => Err(why),
        None => Ok(()),
    }
}

/// Reads the secret at `path`, creating it (owner-only, random) if it does not exist.
pub fn load_or_create(path: &Path) -> Result<[u8; KEY_LEN], String> {
    match read_key(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => create_key(path).map_err(|e| format!("cannot create it: {e}")),
        result => result.map_err(|e| e.to_string())?,
    }
}

/// The key, or the reason it is not trusted; the outer error is I/O.
fn read_key(path: &Path) -> io::Result<Result<[u8; KEY_LEN], String>> {
    // O_NOFOLLOW: the key itself must not be a link someone else could redirect.
    let mut file = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(Err("not a regular file".into()));
    }
    if let Some(why) = untrusted_because(&meta, ACCESSIBLE_BY_OTHERS) {
        return Ok(Err(why));
    }
    let mut key = [0u8; KEY_LEN];
    let mut rest = Vec::new();
    file.read_exact(&mut key).map_err(|_| io::Error::other("shorter than 32 bytes; delete it to make a new key"))?;
    if file.take(1).read_to_end(&mut rest)? != 0 {
        return Ok(Err("longer than 32 bytes; delete it to make a new key".into()));
    }
    Ok(Ok(key))
}

/// Writes a fresh random key to a private temporary file and links it into place, so a
/// concurrent run sees either no key or a whole one, and the first writer wins.
fn create_key(path: &Path) -> io::Result<[u8; KEY_LEN]> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(parent)?;
    }
    let mut key = [0u8; KEY_LEN];
    getrandom::fill(&mut key).map_err(|e| io::Error::other(format!("no system randomness: {e}")))?;
    let temp = unique_sibling(path, "new");
    let mut file = create_exclusive(&temp, 0o600)?;
    let written = file.write_all(&key).and_then(|()| file.sync_all());
    let linked = written.and_then(|()| fs::hard_link(&temp, path));
    let _ = fs::remove_file(&temp);
    match linked {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match read_key(path)? {
            Ok(key) => Ok(key),
            Err(why) => Err(io::Error::other(why)),
        },
        Err(e) => Err(e),
    }
}

/// Creates `path` only if nothing, not even a dangling symlink, is there (O_EXCL).
pub fn create_exclusive(path: &Path, mode: u32) -> io::Result<fs::File> {
    OpenOptions::new().write(true).create_new(true).mode(mode).open(path)
}

/// A fresh name beside `path` that no other process or thread would pick.
pub fn unique_sibling(path: &Path, tag: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // Unpredictable too, so a name cannot be planted in advance; O_EXCL covers the rest.
    let noise = getrandom::u64().unwrap_or(0);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{tag}-{}-{n}-{noise:016x}", std::process::id()));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("leakhost-secret-test-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_new_key_is_private_random_and_read_back() {
        let dir = fresh("new");
        let path = dir.join("sub/cache.key");
        let key = load_or_create(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(load_or_create(&path).unwrap(), key);
        assert_ne!(load_or_create(&dir.join("other.key")).unwrap(), key);
        assert_eq!(fs::read_dir(dir.join("sub")).unwrap().count(), 1, "no temporary file is left");
    }

    #[test]
    fn a_key_others_can_read_or_a_linked_key_is_refused() {
        let dir = fresh("perms");
        let path = dir.join("cache.key");
        load_or_create(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load_or_create(&path).unwrap_err().contains("other users"));
        let link = dir.join("link.key");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(load_or_create(&link).is_err(), "a symlinked key is not followed");
        fs::write(dir.join("short.key"), b"abc").unwrap();
        fs::set_permissions(dir.join("short.key"), fs::Permissions::from_mode(0o600)).unwrap();
        assert!(load_or_create(&dir.join("short.key")).unwrap_err().contains("shorter"));
    }

    #[test]
    fn directories_writable_by_others_are_refused() {
        let dir = fresh("dir");
        let cache = dir.join("cache");
        check_dir(&cache).unwrap();
        assert_eq!(fs::metadata(&cache).unwrap().permissions().mode() & 0o777, 0o700);
        for mode in [0o777, 0o770, 0o702] {
            fs::set_permissions(&cache, fs::Permissions::from_mode(mode)).unwrap();
            assert!(check_dir(&cache).unwrap_err().contains("other users"), "{mode:o}");
        }
        fs::set_permissions(&cache, fs::Permissions::from_mode(0o755)).unwrap();
        check_dir(&cache).unwrap();
    }

    #[test]
    fn a_directory_owned_by_another_user_is_refused() {
        let dir = fresh("owner").join("cache");
        check_dir(&dir).unwrap();
        let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
        let other = current_uid().wrapping_add(1);
        // SAFETY: a valid NUL-terminated path; chown changes nothing else.
        if unsafe { libc::chown(path.as_ptr(), other, u32::MAX) } != 0 {
            // Only root can give a directory away; elsewhere the owner check is the uid compare below.
            assert_eq!(fs::metadata(&dir).unwrap().uid(), current_uid());
            return;
        }
        let why = check_dir(&dir).unwrap_err();
        assert!(why.contains(&format!("owned by uid {other}")), "{why}");
    }

    #[test]
    fn exclusive_creation_never_follows_a_planted_symlink() {
        let dir = fresh("excl");
        let victim = dir.join("victim");
        fs::write(&victim, b"precious").unwrap();
        let planted = dir.join("planted");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let err = create_exclusive(&planted, 0o600).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        std::os::unix::fs::symlink(dir.join("nowhere"), dir.join("dangling")).unwrap();
        assert!(create_exclusive(&dir.join("dangling"), 0o600).is_err());
        assert!(!dir.join("nowhere").exists());
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
    }
}
