//! Reading the small text files a user or a suite directory hands leakhost: allowance
//! files (`leakhost.toml`, `--allow`), baselines (`--baseline`), `leakhost-c.toml`.
//!
//! Such a file may be planted: a `leakhost.toml` beside a suite that links to
//! `/proc/self/pagemap` read until memory ran out, and `--allow /dev/zero` or a FIFO
//! read forever or hung. So only a regular file is read, up to a size limit; the file is
//! checked by its path before it is opened (opening a device can act on it), opened
//! without blocking (a FIFO swapped in meanwhile cannot hang the open) and checked again
//! on the open descriptor, where no swap can reach. Errors quote at most
//! [`MAX_QUOTE`] characters of what the file says.

use std::borrow::Cow;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use thiserror::Error;

/// Default size limit of a file read with [`read_text`]: 1 MiB.
pub const DEFAULT_MAX_INPUT: u64 = 1 << 20;
/// Size limit of a baseline (`--baseline REPORT.json`), a whole `--json` report: 64 MiB,
/// whose parse takes a few hundred MB.
pub const MAX_BASELINE: u64 = 64 << 20;
/// Most characters of a file's contents an error message quotes.
pub const MAX_QUOTE: usize = 80;

/// Whether the last component of the path may be a symbolic link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Follow it: the user named the file.
    Follow,
    /// Refuse it: leakhost found the file where a suite's author could have planted it.
    Refuse,
}

/// Why a file was not read.
#[derive(Debug, Error)]
pub enum InputError {
    /// It does not exist or cannot be opened or examined.
    #[error("{0}")]
    Open(std::io::Error),
    /// It is a symbolic link where none is followed.
    #[error("it is a symbolic link, which leakhost does not follow for a file it finds by itself")]
    Link,
    /// It is not a regular file.
    #[error("it is {0}, not a regular file")]
    NotRegular(&'static str),
    /// It is on a pseudo file system (`/proc`, `/sys`), whose sizes say nothing of what a read returns.
    #[error("it is on the pseudo file system of /proc or /sys, not a regular file")]
    Pseudo,
    /// It is larger than the limit.
    #[error("it is larger than the limit of {} bytes", .0)]
    TooLarge(u64),
    /// It is not UTF-8.
    #[error("it is not UTF-8 text")]
    NotUtf8,
    /// Reading failed.
    #[error("{0}")]
    Read(std::io::Error),
}

/// What kind of file `meta` describes, for a refusal.
fn kind(file_type: std::fs::FileType) -> Option<&'static str> {
    match file_type {
        t if t.is_file() => None,
        t if t.is_dir() => Some("a directory"),
        t if t.is_fifo() => Some("a FIFO"),
        t if t.is_char_device() || t.is_block_device() => Some("a device"),
        t if t.is_socket() => Some("a socket"),
        t if t.is_symlink() => Some("a symbolic link"),
        _ => Some("not a file"),
    }
}

/// The text of the regular file at `path`, at most `max` bytes of UTF-8.
pub fn read_text(path: &Path, max: u64, links: Links) -> Result<String, InputError> {
    let meta = match links {
        Links::Follow => std::fs::metadata(path),
        Links::Refuse => std::fs::symlink_metadata(path),
    }
    .map_err(InputError::Open)?;
    if links == Links::Refuse && meta.file_type().is_symlink() {
        return Err(InputError::Link);
    }
    if let Some(kind) = kind(meta.file_type()) {
        return Err(InputError::NotRegular(kind));
    }
    let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY;
    if links == Links::Refuse {
        flags |= libc::O_NOFOLLOW;
    }
    let file =
        std::fs::OpenOptions::new().read(true).custom_flags(flags).open(path).map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) if links == Links::Refuse => InputError::Link,
            _ => InputError::Open(e),
        })?;
    // The path may have changed since it was checked; the descriptor cannot.
    let meta = file.metadata().map_err(InputError::Open)?;
    if let Some(kind) = kind(meta.file_type()) {
        return Err(InputError::NotRegular(kind));
    }
    if on_pseudo_file_system(&file) {
        return Err(InputError::Pseudo);
    }
    if meta.len() > max {
        return Err(InputError::TooLarge(max));
    }
    let mut bytes = Vec::new();
    // The file may grow while it is read: never more than one byte past the limit.
    file.take(max + 1).read_to_end(&mut bytes).map_err(InputError::Read)?;
    if bytes.len() as u64 > max {
        return Err(InputError::TooLarge(max));
    }
    String::from_utf8(bytes).map_err(|_| InputError::NotUtf8)
}

/// Whether `file` is on procfs or sysfs, whose files claim a size of 0 or 4096 whatever
/// they hold (`/proc/self/pagemap` reads for gigabytes).
#[cfg(target_os = "linux")]
fn on_pseudo_file_system(file: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    const SYSFS_MAGIC: i64 = 0x6265_6572;
    let mut stat = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: the descriptor is open for the call, and `stat` is a statfs to fill in.
    let ok = unsafe { libc::fstatfs(file.as_raw_fd(), stat.as_mut_ptr()) } == 0;
    // SAFETY: fstatfs filled it in when it returned 0 (and it started zeroed).
    // f_type is an i64 on x86_64 and aarch64, narrower elsewhere (the cross-arch tests).
    #[allow(clippy::unnecessary_cast)]
    let kind = unsafe { stat.assume_init() }.f_type as i64;
    ok && (kind == PROC_SUPER_MAGIC || kind == SYSFS_MAGIC)
}

#[cfg(not(target_os = "linux"))]
fn on_pseudo_file_system(_file: &std::fs::File) -> bool {
    false
}

/// `text` with every run between backticks or double quotes cut to [`MAX_QUOTE`]
/// characters (`…` marks a cut), and the whole to a few lines' worth: parser messages
/// quote the input (an unknown key, a bad value), which may be a megabyte long.
pub fn clip_quotes(text: &str) -> Cow<'_, str> {
    const MAX_MESSAGE: usize = 6 * MAX_QUOTE;
    let mut out = String::with_capacity(text.len().min(MAX_MESSAGE + 8));
    let (mut quote, mut run, mut cut, mut written) = (None::<char>, 0usize, false, 0usize);
    for c in text.chars() {
        if written >= MAX_MESSAGE {
            out.push('…');
            return Cow::Owned(out);
        }
        let keep = match quote {
            Some(q) if c == q => {
                quote = None;
                true
            }
            Some(_) if run >= MAX_QUOTE => {
                if !std::mem::replace(&mut cut, true) {
                    out.push('…');
                }
                false
            }
            Some(_) => {
                run += 1;
                true
            }
            None => {
                if matches!(c, '`' | '"') {
                    (quote, run, cut) = (Some(c), 0, false);
                }
                true
            }
        };
        if keep {
            out.push(c);
            written += 1;
        }
    }
    if out == text {
        return Cow::Borrowed(text);
    }
    Cow::Owned(out)
}

/// `text` as a quoted string of at most [`MAX_QUOTE`] characters, `…` marking a cut.
pub fn quote(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTE) {
        None => format!("{text:?}"),
        Some((at, _)) => format!("{:?}…", &text[..at]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("leakhost-input-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_regular_file_is_read_and_others_are_refused() {
        let dir = dir("kinds");
        let file = dir.join("allow.toml");
        std::fs::write(&file, "text").unwrap();
        assert_eq!(read_text(&file, 4, Links::Refuse).unwrap(), "text");
        assert!(matches!(read_text(&file, 3, Links::Follow), Err(InputError::TooLarge(3))));
        assert!(matches!(read_text(&dir, 100, Links::Follow), Err(InputError::NotRegular("a directory"))));
        assert!(matches!(
            read_text(Path::new("/dev/zero"), 100, Links::Follow),
            Err(InputError::NotRegular("a device"))
        ));
        let fifo = dir.join("fifo");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid, NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        assert!(matches!(read_text(&fifo, 100, Links::Follow), Err(InputError::NotRegular("a FIFO"))));
        let link = dir.join("link");
        std::os::unix::fs::symlink("/proc/self/pagemap", &link).unwrap();
        assert!(matches!(read_text(&link, 100, Links::Refuse), Err(InputError::Link)));
        assert!(matches!(read_text(&link, 100, Links::Follow), Err(InputError::Pseudo)));
        std::fs::write(&file, b"\xff").unwrap();
        assert!(matches!(read_text(&file, 100, Links::Follow), Err(InputError::NotUtf8)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn quotes_in_messages_are_cut() {
        let long = "k".repeat(1000);
        let message = format!("unknown field `{long}`, expected `layer`");
        let clipped = clip_quotes(&message);
        assert_eq!(clipped, format!("unknown field `{}…`, expected `layer`", "k".repeat(MAX_QUOTE)));
        assert!(matches!(clip_quotes("unknown field `x`"), Cow::Borrowed(_)));
        assert!(clip_quotes(&"word ".repeat(1000)).chars().count() <= 6 * MAX_QUOTE + 1);
        assert_eq!(quote(&"é".repeat(100)), format!("{:?}…", "é".repeat(MAX_QUOTE)));
        assert_eq!(quote("short"), "\"short\"");
    }
}
