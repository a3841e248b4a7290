//! File descriptors: owned and borrowed, and the reads and writes on them.

use core::ffi::c_int;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicI32, Ordering};

use linux_raw_sys::general as g;

use super::{check, check_size, flags, with_cstr, Errno, SysResult};

flags! {
    /// `open(2)` flags. `O_CLOEXEC` is always added by [`open`] and [`open_at`].
    OFlags: c_int {
        RDONLY = g::O_RDONLY;
        WRONLY = g::O_WRONLY;
        RDWR = g::O_RDWR;
        CREAT = g::O_CREAT;
        EXCL = g::O_EXCL;
        TRUNC = g::O_TRUNC;
        NOCTTY = g::O_NOCTTY;
        NONBLOCK = g::O_NONBLOCK;
        DIRECTORY = g::O_DIRECTORY;
        NOFOLLOW = g::O_NOFOLLOW;
        CLOEXEC = g::O_CLOEXEC;
        PATH = g::O_PATH;
    }
}

/// An open file descriptor, closed on drop.
#[derive(Debug)]
pub struct Fd(c_int);

/// A descriptor borrowed from an [`Fd`] (or one of the standard streams).
#[derive(Debug, Clone, Copy)]
pub struct BorrowedFd<'a>(c_int, PhantomData<&'a Fd>);

pub const STDIN: BorrowedFd<'static> = BorrowedFd(0, PhantomData);
pub const STDOUT: BorrowedFd<'static> = BorrowedFd(1, PhantomData);
pub const STDERR: BorrowedFd<'static> = BorrowedFd(2, PhantomData);

/// Anything that lends a descriptor for the duration of a call.
pub trait AsFd {
    fn as_fd(&self) -> BorrowedFd<'_>;
}

impl AsFd for Fd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        BorrowedFd(self.0, PhantomData)
    }
}

impl AsFd for BorrowedFd<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        *self
    }
}

impl<T: AsFd> AsFd for &T {
    fn as_fd(&self) -> BorrowedFd<'_> {
        (**self).as_fd()
    }
}

impl BorrowedFd<'_> {
    pub(super) fn raw(self) -> c_int {
        self.0
    }
}

impl Fd {
    pub(super) fn from_raw(fd: c_int) -> Fd {
        Fd(fd)
    }

    /// Keep the descriptor open for the rest of the process (the kernel log,
    /// a standard stream filled at start-up).
    pub fn leak(self) -> BorrowedFd<'static> {
        let raw = self.0;
        core::mem::forget(self);
        BorrowedFd(raw, PhantomData)
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: we own this descriptor and nothing else closes it.
        unsafe { libc::close(self.0) };
    }
}

/// A process-wide slot for a leaked descriptor (such as `/dev/kmsg`).
pub struct FdCell(AtomicI32);

impl FdCell {
    pub const fn empty() -> FdCell {
        FdCell(AtomicI32::new(-1))
    }
    pub fn set(&self, fd: BorrowedFd<'static>) {
        self.0.store(fd.0, Ordering::Relaxed);
    }
    pub fn get(&self) -> Option<BorrowedFd<'static>> {
        let fd = self.0.load(Ordering::Relaxed);
        (fd >= 0).then_some(BorrowedFd(fd, PhantomData))
    }
}

/// `openat(AT_FDCWD, path)`, always with `O_CLOEXEC`. Called as a system
/// call: musl's `open()` adds an `fcntl` per call for pre-2.6.23 kernels.
pub fn open(path: &[u8], flags: OFlags, mode: u32) -> SysResult<Fd> {
    openat_raw(libc::AT_FDCWD, path, flags, mode)
}

/// `openat(dir, name)`, always with `O_CLOEXEC`.
pub fn open_at(dir: impl AsFd, name: &[u8], flags: OFlags, mode: u32) -> SysResult<Fd> {
    openat_raw(dir.as_fd().raw(), name, flags, mode)
}

fn openat_raw(dir: c_int, path: &[u8], flags: OFlags, mode: u32) -> SysResult<Fd> {
    with_cstr(path, |p| {
        let flags = flags | OFlags::CLOEXEC;
        // SAFETY: `p` is a valid NUL-terminated string for the duration of the call.
        let fd = unsafe { libc::syscall(libc::SYS_openat, dir, p, flags.bits(), mode) };
        check_size(fd as isize).map(|fd| Fd(fd as c_int))
    })
}

/// `read(2)` into `buf`, retrying on `EINTR`.
pub fn read(fd: impl AsFd, buf: &mut [u8]) -> SysResult<usize> {
    let fd = fd.as_fd().raw();
    loop {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        let r = check_size(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) });
        if r != Err(Errno::INTR) {
            return r;
        }
    }
}

/// Read until `buf` is full or end of file; returns the number of bytes read.
pub fn read_all(fd: impl AsFd, buf: &mut [u8]) -> SysResult<usize> {
    let fd = fd.as_fd();
    let mut len = 0;
    while len < buf.len() {
        let n = read(fd, &mut buf[len..])?;
        if n == 0 {
            break;
        }
        len += n;
    }
    Ok(len)
}

/// Read up to `buf.len()` bytes at `offset` of an open file.
pub fn pread(fd: impl AsFd, buf: &mut [u8], offset: u64) -> SysResult<usize> {
    let fd = fd.as_fd().raw();
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    check_size(unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), offset as i64) })
}

/// `write(2)` of the whole buffer, retrying on `EINTR` and short writes.
pub fn write_all(fd: impl AsFd, mut buf: &[u8]) -> SysResult<()> {
    let fd = fd.as_fd().raw();
    while !buf.is_empty() {
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
        match check_size(unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) }) {
            Ok(n) => buf = &buf[n..],
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `fsync(2)`.
pub fn fsync(fd: impl AsFd) -> SysResult<()> {
    // SAFETY: plain system call on a borrowed descriptor.
    check(unsafe { libc::fsync(fd.as_fd().raw()) }).map(drop)
}

/// Read a whole (small) regular file into `buf`. A file that fills `buf` is
/// an error (`EFBIG`): we never act on a silently truncated input. Anything
/// but a regular file is `EINVAL` (`EISDIR` for a directory), found without
/// blocking: a FIFO or a device planted where a file belongs never hangs
/// the caller.
pub fn read_file(path: &[u8], buf: &mut [u8]) -> SysResult<usize> {
    let fd = open(path, OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY, 0)?;
    let st = super::fstat(&fd)?;
    if !st.is_file() {
        return Err(if st.is_dir() {
            Errno::ISDIR
        } else {
            Errno::INVAL
        });
    }
    let n = read_all(&fd, buf)?;
    if n == buf.len() {
        return Err(Errno::FBIG);
    }
    Ok(n)
}

/// `dup2(2)`: make `to` a copy of `from`.
pub fn dup2(from: impl AsFd, to: BorrowedFd<'static>) -> SysResult<()> {
    // SAFETY: plain system call; `from` is open.
    check(unsafe { libc::dup2(from.as_fd().raw(), to.0) }).map(drop)
}

fn is_open(fd: c_int) -> bool {
    // A direct system call: musl's fcntl() brings code for commands never
    // used here.
    // SAFETY: F_GETFD only queries the descriptor table.
    unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_GETFD) >= 0 }
}

/// Open `path` on whichever of descriptors 0, 1 and 2 is closed. A process
/// started with one of them closed would otherwise get it from its next
/// `open()`, and write its messages into that file.
pub fn fill_std_fds(path: &[u8]) {
    for std in [STDIN, STDOUT, STDERR] {
        if is_open(std.0) {
            continue;
        }
        if let Ok(f) = open(path, OFlags::RDWR | OFlags::NOCTTY, 0) {
            if f.0 == std.0 {
                f.leak();
            } else {
                let _ = dup2(&f, std);
            }
        }
    }
}

/// Move an open file (or directory listing) back to its start.
pub fn seek_start(fd: impl AsFd) -> SysResult<()> {
    // SAFETY: plain system call on a borrowed descriptor.
    let r = unsafe { libc::lseek(fd.as_fd().raw(), 0, libc::SEEK_SET) };
    check_size(r as isize).map(drop)
}

/// The size of an open file or block device (`lseek` to its end; `fstat`
/// says 0 for a block device).
pub fn file_size(fd: impl AsFd) -> SysResult<u64> {
    // SAFETY: plain system call on a borrowed descriptor.
    let r = unsafe { libc::lseek(fd.as_fd().raw(), 0, libc::SEEK_END) };
    check_size(r as isize).map(|n| n as u64)
}
