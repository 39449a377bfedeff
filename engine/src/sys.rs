//! The few libc calls std does not wrap: user/group names, device nodes, FIFOs, holes,
//! directory streams with `fstatat`.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

pub fn geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

pub fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: zeroed passwd is a valid out-parameter; buf outlives the call and its length is passed.
    unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        let r = libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out);
        if r != 0 || out.is_null() || pw.pw_name.is_null() {
            return None;
        }
        Some(CStr::from_ptr(pw.pw_name).to_string_lossy().into_owned())
    }
}

pub fn group_name(gid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: as in user_name.
    unsafe {
        let mut gr: libc::group = std::mem::zeroed();
        let mut out: *mut libc::group = std::ptr::null_mut();
        let r = libc::getgrgid_r(gid, &mut gr, buf.as_mut_ptr(), buf.len(), &mut out);
        if r != 0 || out.is_null() || gr.gr_name.is_null() {
            return None;
        }
        Some(CStr::from_ptr(gr.gr_name).to_string_lossy().into_owned())
    }
}

pub fn uid_by_name(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: as in user_name; c is a valid NUL-terminated string.
    unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        let r = libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut out);
        (r == 0 && !out.is_null()).then_some(pw.pw_uid)
    }
}

pub fn gid_by_name(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: as in uid_by_name.
    unsafe {
        let mut gr: libc::group = std::mem::zeroed();
        let mut out: *mut libc::group = std::ptr::null_mut();
        let r = libc::getgrnam_r(c.as_ptr(), &mut gr, buf.as_mut_ptr(), buf.len(), &mut out);
        (r == 0 && !out.is_null()).then_some(gr.gr_gid)
    }
}

/// Create a device node or FIFO (`mode` includes the file type bits).
pub fn mknod(path: &Path, mode: u32, rdev: u64) -> std::io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: c is a valid NUL-terminated path.
    let r = unsafe { libc::mknod(c.as_ptr(), mode as libc::mode_t, rdev as libc::dev_t) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Data extents of a file, via SEEK_DATA/SEEK_HOLE: (start, end) pairs.
pub fn data_extents(f: &std::fs::File, size: u64) -> std::io::Result<Vec<(u64, u64)>> {
    let fd = f.as_raw_fd();
    let mut out = Vec::new();
    let mut pos: i64 = 0;
    let size = size as i64;
    while pos < size {
        // SAFETY: lseek on a valid fd has no memory-safety preconditions.
        let start = unsafe { libc::lseek(fd, pos, libc::SEEK_DATA) };
        if start < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENXIO) {
                break; // no more data
            }
            return Err(e);
        }
        // SAFETY: as above.
        let end = unsafe { libc::lseek(fd, start, libc::SEEK_HOLE) };
        if end < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let end = end.min(size);
        if end > start {
            out.push((start as u64, end as u64));
        }
        pos = end.max(start + 1);
    }
    Ok(out)
}

/// Tell the kernel a range of a file will not be needed again (keeps a volume read from
/// evicting the page cache). Advisory: errors are ignored.
pub fn drop_cache(f: &std::fs::File, offset: u64, len: u64) {
    // SAFETY: posix_fadvise on a valid fd has no memory-safety preconditions.
    unsafe {
        libc::posix_fadvise(
            f.as_raw_fd(),
            offset as libc::off_t,
            len as libc::off_t,
            libc::POSIX_FADV_DONTNEED,
        );
    }
}

/// Tell the kernel a file is read front to back (a larger read-ahead). Advisory.
pub fn advise_sequential(f: &std::fs::File) {
    // SAFETY: posix_fadvise on a valid fd has no memory-safety preconditions.
    unsafe {
        libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_SEQUENTIAL);
    }
}

/// Start reading a range of a file into the page cache in the background. Advisory.
pub fn prefetch(f: &std::fs::File, offset: u64, len: u64) {
    // SAFETY: as above; WILLNEED only starts asynchronous reads.
    unsafe {
        libc::posix_fadvise(
            f.as_raw_fd(),
            offset as libc::off_t,
            len as libc::off_t,
            libc::POSIX_FADV_WILLNEED,
        );
    }
}

/// The file system type magic of the file system holding `path` (statfs f_type).
pub fn fs_magic(path: &Path) -> std::io::Result<i64> {
    let c = CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: an all-zero statfs is a valid value to be overwritten.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid NUL-terminated path and st a valid out-pointer.
    let r = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    if r == 0 {
        Ok(st.f_type as i64)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Whether a process with this pid exists (signal 0).
pub fn process_alive(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Freezer's `--max-priority`: nice -19 and the best-effort I/O class's highest level for this
/// process. Returns whether each succeeded (raising the CPU priority needs root).
pub fn max_priority() -> (bool, bool) {
    // SAFETY: setpriority on this process has no memory preconditions.
    let cpu = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, -19) } == 0;
    // ioprio_set(IOPRIO_WHO_PROCESS = 1, this process, class BE (2) << 13 | level 0).
    // SAFETY: a plain system call with integer arguments.
    let io = unsafe { libc::syscall(libc::SYS_ioprio_set, 1, 0, 2 << 13) } == 0;
    (cpu, io)
}

/// An open directory stream (`opendir`), closed on drop; used by the thread that opened it.
pub struct DirStream(*mut libc::DIR);

impl DirStream {
    pub fn open(path: &Path) -> std::io::Result<DirStream> {
        let c = std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in a path"))?;
        // SAFETY: `c` is a valid NUL-terminated string; a null result is checked.
        let d = unsafe { libc::opendir(c.as_ptr()) };
        if d.is_null() {
            return Err(std::io::Error::last_os_error());
        }
        Ok(DirStream(d))
    }

    /// The entry names, without `.` and `..`.
    pub fn names(&mut self) -> std::io::Result<Vec<Vec<u8>>> {
        let mut v = Vec::new();
        loop {
            // readdir signals errors only through errno, so clear it first.
            // SAFETY: errno is thread-local; the stream is open and used by this thread only.
            unsafe { *libc::__errno_location() = 0 };
            let e = unsafe { libc::readdir64(self.0) };
            if e.is_null() {
                let err = std::io::Error::last_os_error();
                return match err.raw_os_error() {
                    Some(0) | None => Ok(v),
                    _ => Err(err),
                };
            }
            // SAFETY: readdir returned a valid entry whose d_name is NUL-terminated.
            let name = unsafe { std::ffi::CStr::from_ptr((*e).d_name.as_ptr()) }.to_bytes();
            if name != b"." && name != b".." {
                v.push(name.to_vec());
            }
        }
    }

    /// `lstat` of an entry, relative to the directory (`fstatat`, no path walk).
    pub fn lstat(&self, name: &[u8]) -> std::io::Result<libc::stat> {
        self.fstatat(name, libc::AT_SYMLINK_NOFOLLOW)
    }

    /// `stat` of an entry, following a symbolic link.
    pub fn stat(&self, name: &[u8]) -> std::io::Result<libc::stat> {
        self.fstatat(name, 0)
    }

    fn fstatat(&self, name: &[u8], flags: libc::c_int) -> std::io::Result<libc::stat> {
        // Names from readdir fit NAME_MAX (255): NUL-terminate on the stack, not the heap
        // (this runs once per file of every tree walked).
        let mut buf = [0u8; 256];
        let heap;
        let c: &std::ffi::CStr = if name.len() < buf.len() {
            buf[..name.len()].copy_from_slice(name);
            std::ffi::CStr::from_bytes_with_nul(&buf[..=name.len()])
        } else {
            heap = std::ffi::CString::new(name).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in a name")
            })?;
            Ok(heap.as_c_str())
        }
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in a name"))?;
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: the directory fd is open; `c` is NUL-terminated; `st` is written on success.
        let r = unsafe { libc::fstatat(libc::dirfd(self.0), c.as_ptr(), st.as_mut_ptr(), flags) };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fstatat succeeded, so `st` is initialised.
        Ok(unsafe { st.assume_init() })
    }
}

impl Drop for DirStream {
    fn drop(&mut self) {
        // SAFETY: the stream was opened by opendir and is closed once.
        unsafe { libc::closedir(self.0) };
    }
}

/// Types for which every byte being zero is a valid value, so they can live in fresh pages.
///
/// # Safety
/// An all-zero bit pattern must be a valid value of the type.
pub unsafe trait ZeroValid: Copy {}

// SAFETY: an Argon2 block is 128 plain u64 words.
unsafe impl ZeroValid for argon2::Block {}

/// A zero-filled array of `T` in its own anonymous mapping, aligned to a 2 MiB boundary and
/// offered transparent huge pages (`MADV_HUGEPAGE`).
///
/// Why: a large working buffer that is touched once in full (Argon2's memory) costs a `memset`
/// and one page fault per 4 KiB when taken from the heap. An anonymous mapping is already zero,
/// and huge pages turn thousands of faults into a few dozen. Where the kernel declines huge
/// pages the mapping works as ordinary memory. Unmapped on drop; the kernel zeroes the pages
/// before any other mapping can see them.
pub struct ZeroedPages<T: ZeroValid> {
    base: *mut libc::c_void,
    map_len: usize,
    start: *mut T,
    count: usize,
}

const HUGE_PAGE: usize = 2 << 20;

impl<T: ZeroValid> ZeroedPages<T> {
    pub fn new(count: usize) -> ZeroedPages<T> {
        let len = count
            .checked_mul(std::mem::size_of::<T>())
            .expect("mapping size overflows");
        let map_len = len + HUGE_PAGE; // slack to align the start
                                       // SAFETY: an anonymous private mapping without an address hint; failure is checked.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            // As fatal as a failed heap allocation of the same size.
            std::alloc::handle_alloc_error(
                std::alloc::Layout::from_size_align(len.max(1), HUGE_PAGE).expect("layout"),
            );
        }
        let start = (base as usize).next_multiple_of(HUGE_PAGE);
        assert!(std::mem::align_of::<T>() <= HUGE_PAGE);
        // SAFETY: [start, start + len) lies inside the mapping. madvise is a hint: its failure
        // (a kernel without transparent huge pages) changes only the speed.
        unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_HUGEPAGE) };
        ZeroedPages {
            base,
            map_len,
            start: start as *mut T,
            count,
        }
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: `start` is aligned for T, the memory is mapped, zero-filled (a valid T by
        // ZeroValid) or written only through this slice, and owned by self for its lifetime.
        unsafe { std::slice::from_raw_parts_mut(self.start, self.count) }
    }
}

impl<T: ZeroValid> Drop for ZeroedPages<T> {
    fn drop(&mut self) {
        // SAFETY: base and map_len are exactly what mmap returned and was given.
        unsafe { libc::munmap(self.base, self.map_len) };
    }
}

/// Bytes an unprivileged user may still write on the file system holding `path` (`statvfs`'s
/// `f_bavail`), or `None` when it cannot be asked.
pub fn free_bytes(path: &Path) -> Option<u64> {
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a valid out-pointer.
    let r = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (r == 0).then(|| (st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// Write out everything cached for the file system holding `path` and report what the kernel
/// could not write (`syncfs`: since Linux 5.8 it returns writeback errors, such as a thin
/// volume or a network file system that ran out of space after the writes were accepted).
pub fn syncfs(path: &Path) -> std::io::Result<()> {
    let dir = std::fs::File::open(path)?;
    // SAFETY: `dir` is an open file descriptor for the duration of the call.
    let r = unsafe { libc::syncfs(dir.as_raw_fd()) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
