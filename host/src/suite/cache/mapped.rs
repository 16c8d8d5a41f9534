//! A read-only view of a whole file through a private mapping: reading an entry to
//! authenticate it touches the page cache's pages, with no copy into the heap.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;

/// A file mapped read-only; unmapped on drop.
pub struct Mapped {
    ptr: NonNull<libc::c_void>,
    len: usize,
}

impl Mapped {
    /// Maps the first `len` bytes of `file` (its length, as its metadata said), which must not be 0.
    pub fn of(file: &File, len: u64) -> io::Result<Mapped> {
        let len = usize::try_from(len).map_err(io::Error::other)?;
        if len == 0 {
            return Err(io::Error::other("an empty file cannot be mapped"));
        }
        // SAFETY: a fresh read-only private mapping of an open descriptor aliases nothing
        // in this process; its address and length are only used while it lives.
        let ptr =
            unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_PRIVATE, file.as_raw_fd(), 0) };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Mapped { ptr, len })
    }

    /// The file's bytes as mapped. A file shrunk meanwhile by someone who may write it
    /// would fault on access: only files nobody else can change are mapped (`open_entry`).
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is `len` readable bytes and lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<u8>(), self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `of`, which no slice outlives.
        unsafe { libc::munmap(self.ptr.as_ptr(), self.len) };
    }
}
