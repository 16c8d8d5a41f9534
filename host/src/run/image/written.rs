//! Which pages of a linear memory were written since a point, from the kernel, so that
//! resetting an instance compares only those with the snapshot instead of all of memory.
//!
//! On Linux 6.7 and later a userfaultfd registered for asynchronous write protection
//! (`UFFD_FEATURE_WP_ASYNC`) makes the kernel note every write to a protected page, by the
//! guest's code, the host or the kernel itself, without a fault reaching user space;
//! `PAGEMAP_SCAN` lists the written pages. Nothing about the memory's contents or mapping
//! changes. Where any of it is missing (an older kernel, another OS, qemu-user, a seccomp
//! filter) [`WrittenPages::track`] returns `None` and the reset compares every page, as it
//! always may: both give the same memory.

use std::ops::Range;

/// Environment variable that turns tracking off (`LEAKHOST_NO_WRITE_TRACKING=1`): every
/// reset compares all of memory. For testing that both agree.
pub const NO_TRACKING_ENV: &str = "LEAKHOST_NO_WRITE_TRACKING";

/// The page size tracking works in (and the snapshot's chunk size).
pub const PAGE: usize = 4096;

pub use imp::WrittenPages;

#[cfg(target_os = "linux")]
mod imp {
    use std::fs::File;
    use std::ops::Range;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::sync::OnceLock;

    // From linux/userfaultfd.h and linux/fs.h (6.7); Debian's headers predate PAGEMAP_SCAN.
    const UFFD_API: u64 = 0xAA;
    const UFFD_USER_MODE_ONLY: libc::c_int = 1;
    const UFFD_FEATURE_WP_HUGETLBFS_SHMEM: u64 = 1 << 12;
    const UFFD_FEATURE_WP_UNPOPULATED: u64 = 1 << 13;
    const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;
    const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;
    const UFFDIO_WRITEPROTECT_MODE_WP: u64 = 1 << 0;
    const UFFDIO_API: libc::c_ulong = 0xC018_AA3F;
    const UFFDIO_REGISTER: libc::c_ulong = 0xC020_AA00;
    const UFFDIO_WRITEPROTECT: libc::c_ulong = 0xC018_AA06;
    const PAGEMAP_SCAN: libc::c_ulong = 0xC060_6610;
    const PAGE_IS_WRITTEN: u64 = 1 << 1;
    const PM_SCAN_CHECK_WPASYNC: u64 = 1 << 1;

    #[repr(C)]
    struct UffdioApi {
        api: u64,
        features: u64,
        ioctls: u64,
    }

    #[repr(C)]
    struct UffdioRange {
        start: u64,
        len: u64,
    }

    #[repr(C)]
    struct UffdioRegister {
        range: UffdioRange,
        mode: u64,
        ioctls: u64,
    }

    #[repr(C)]
    struct UffdioWriteprotect {
        range: UffdioRange,
        mode: u64,
    }

    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct PageRegion {
        start: u64,
        end: u64,
        categories: u64,
    }

    #[repr(C)]
    struct PmScanArg {
        size: u64,
        flags: u64,
        start: u64,
        end: u64,
        walk_end: u64,
        vec: u64,
        vec_len: u64,
        max_pages: u64,
        category_inverted: u64,
        category_mask: u64,
        category_anyof_mask: u64,
        return_mask: u64,
    }

    /// A memory range whose writes the kernel notes.
    pub struct WrittenPages {
        uffd: OwnedFd,
        start: usize,
        len: usize,
    }

    /// The process's page map, opened once for every tracked memory; `None` when tracking
    /// is off (the environment, the page size) or the file cannot be opened.
    fn pagemap() -> Option<&'static File> {
        static PAGEMAP: OnceLock<Option<File>> = OnceLock::new();
        PAGEMAP
            .get_or_init(|| {
                let off = std::env::var_os(super::NO_TRACKING_ENV).is_some_and(|v| !v.is_empty() && v != "0");
                // SAFETY: sysconf has no preconditions.
                let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
                if off || page != super::PAGE as libc::c_long {
                    return None;
                }
                File::open("/proc/self/pagemap").ok()
            })
            .as_ref()
    }

    impl WrittenPages {
        /// Starts noting writes to `memory` (whole pages); `None` where the kernel cannot.
        pub fn track(memory: &[u8]) -> Option<Self> {
            let (start, len) = (memory.as_ptr() as usize, memory.len());
            pagemap()?;
            if len == 0 || !start.is_multiple_of(super::PAGE) || !len.is_multiple_of(super::PAGE) {
                return None;
            }
            let flags = libc::O_CLOEXEC | libc::O_NONBLOCK | UFFD_USER_MODE_ONLY;
            // SAFETY: userfaultfd takes flags and returns a new descriptor or -1.
            let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, flags) };
            if fd < 0 {
                return None;
            }
            // SAFETY: fd was just returned to us and is owned by nothing else.
            let uffd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
            let wanted = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED | UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
            let mut api = UffdioApi { api: UFFD_API, features: wanted, ioctls: 0 };
            let range = || UffdioRange { start: start as u64, len: len as u64 };
            let mut register = UffdioRegister { range: range(), mode: UFFDIO_REGISTER_MODE_WP, ioctls: 0 };
            // SAFETY: each ioctl gets the structure its number names, which outlives the call.
            let ok = unsafe {
                libc::ioctl(uffd.as_raw_fd(), UFFDIO_API, &mut api) == 0
                    && api.features & wanted == wanted
                    && libc::ioctl(uffd.as_raw_fd(), UFFDIO_REGISTER, &mut register) == 0
            };
            let tracker = WrittenPages { uffd, start, len };
            (ok && tracker.protect()).then_some(tracker)
        }

        /// Whether this tracks exactly `memory` (a memory that moved or grew is not).
        pub fn covers(&self, memory: &[u8]) -> bool {
            memory.as_ptr() as usize == self.start && memory.len() == self.len
        }

        /// Replaces `out` with the byte ranges (offsets, whole pages) written since the last
        /// [`Self::protect`]; false when the kernel would not say.
        pub fn written(&self, out: &mut Vec<Range<usize>>) -> bool {
            out.clear();
            let Some(pagemap) = pagemap() else { return false };
            let mut regions = [PageRegion::default(); 64];
            let mut from = self.start as u64;
            let end = (self.start + self.len) as u64;
            while from < end {
                let mut arg = PmScanArg {
                    size: std::mem::size_of::<PmScanArg>() as u64,
                    flags: PM_SCAN_CHECK_WPASYNC,
                    start: from,
                    end,
                    walk_end: 0,
                    vec: regions.as_mut_ptr() as u64,
                    vec_len: regions.len() as u64,
                    max_pages: 0,
                    category_inverted: 0,
                    category_mask: PAGE_IS_WRITTEN,
                    category_anyof_mask: 0,
                    return_mask: PAGE_IS_WRITTEN,
                };
                // SAFETY: arg describes `regions`, which outlives the call; the range is ours.
                let found = unsafe { libc::ioctl(pagemap.as_raw_fd(), PAGEMAP_SCAN, &mut arg) };
                if found < 0 || arg.walk_end <= from || arg.walk_end > end {
                    return false;
                }
                for region in &regions[..found as usize] {
                    let (Some(a), Some(b)) =
                        (region.start.checked_sub(self.start as u64), region.end.checked_sub(self.start as u64))
                    else {
                        return false;
                    };
                    if b as usize > self.len || a >= b {
                        return false;
                    }
                    out.push(a as usize..b as usize);
                }
                from = arg.walk_end;
            }
            true
        }

        /// Forgets every write so far: from now on only new ones are listed.
        pub fn protect(&self) -> bool {
            let range = UffdioRange { start: self.start as u64, len: self.len as u64 };
            let mut protect = UffdioWriteprotect { range, mode: UFFDIO_WRITEPROTECT_MODE_WP };
            // SAFETY: the structure is the one UFFDIO_WRITEPROTECT takes, and outlives the call.
            unsafe { libc::ioctl(self.uffd.as_raw_fd(), UFFDIO_WRITEPROTECT, &mut protect) == 0 }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::ops::Range;

    /// Never made off Linux: every reset compares all of memory.
    pub struct WrittenPages(());

    impl WrittenPages {
        /// `None`: no kernel support.
        pub fn track(_: &[u8]) -> Option<Self> {
            None
        }

        /// Unreachable.
        pub fn covers(&self, _: &[u8]) -> bool {
            false
        }

        /// Unreachable.
        pub fn written(&self, _: &mut Vec<Range<usize>>) -> bool {
            false
        }

        /// Unreachable.
        pub fn protect(&self) -> bool {
            false
        }
    }
}

/// The chunks (`PAGE`-sized, by index) that `ranges` cover.
pub fn pages(ranges: &[Range<usize>]) -> impl Iterator<Item = usize> + '_ {
    ranges.iter().flat_map(|r| r.start / PAGE..r.end.div_ceil(PAGE))
}
