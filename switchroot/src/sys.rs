//! The only place that talks to the kernel: thin, safe wrappers over `libc`.
//!
//! Every wrapper takes byte-string paths, converts them to C strings in a stack
//! buffer (no heap), and returns `Err(errno)` on failure. Callers attach the
//! operation and path to the errno (see [`crate::error::Error::sys`]).
#![allow(unsafe_code)]

use core::ffi::{c_char, c_int, c_ulong, c_void};

/// A raw errno value from a failed system call.
pub type Errno = c_int;
pub type SysResult<T> = Result<T, Errno>;

/// Longest path we hand to the kernel (PATH_MAX).
const PATH_MAX: usize = 4096;

pub use libc::{
    MNT_DETACH, MS_BIND, MS_MOVE, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT, MS_SILENT, O_CLOEXEC,
    O_CREAT, O_DIRECTORY, O_NOFOLLOW, O_RDONLY, O_TRUNC, O_WRONLY, S_IFDIR, S_IFLNK, S_IFMT,
};

fn errno() -> Errno {
    // SAFETY: musl and glibc both provide a thread-local errno location that
    // is always valid to read.
    unsafe { *libc::__errno_location() }
}

/// Turn a `-1`-on-error return value into a `Result`.
fn check(ret: c_int) -> SysResult<c_int> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret)
    }
}

fn check_size(ret: isize) -> SysResult<usize> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret as usize)
    }
}

/// Call `f` with `path` as a NUL-terminated C string held on the stack.
fn with_cstr<T>(path: &[u8], f: impl FnOnce(*const c_char) -> SysResult<T>) -> SysResult<T> {
    if path.len() >= PATH_MAX {
        return Err(libc::ENAMETOOLONG);
    }
    if path.contains(&0) {
        return Err(libc::EINVAL);
    }
    let mut buf = [0u8; PATH_MAX];
    buf[..path.len()].copy_from_slice(path);
    f(buf.as_ptr().cast())
}

/// Like [`with_cstr`] for an optional string (`None` becomes a NULL pointer).
fn with_opt_cstr<T>(
    s: Option<&[u8]>,
    f: impl FnOnce(*const c_char) -> SysResult<T>,
) -> SysResult<T> {
    match s {
        Some(s) => with_cstr(s, f),
        None => f(core::ptr::null()),
    }
}

/// An open file descriptor, closed on drop.
#[derive(Debug)]
pub struct Fd(c_int);

impl Fd {
    pub fn raw(&self) -> c_int {
        self.0
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: we own this descriptor and nothing else closes it.
        unsafe { libc::close(self.0) };
    }
}

/// `openat(AT_FDCWD, ...)`; `O_CLOEXEC` is always added. Called directly:
/// musl's `open()` adds an `fcntl` per call to support pre-2.6.23 kernels.
pub fn open(path: &[u8], flags: c_int, mode: u32) -> SysResult<Fd> {
    with_cstr(path, |p| {
        // SAFETY: `p` is a valid NUL-terminated string for the duration of the call.
        let fd =
            unsafe { libc::syscall(libc::SYS_openat, libc::AT_FDCWD, p, flags | O_CLOEXEC, mode) };
        check_size(fd as isize).map(|fd| Fd(fd as c_int))
    })
}

/// `read(2)` into `buf`, retrying on EINTR.
pub fn read(fd: &Fd, buf: &mut [u8]) -> SysResult<usize> {
    loop {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        let r = check_size(unsafe { libc::read(fd.0, buf.as_mut_ptr().cast(), buf.len()) });
        if r != Err(libc::EINTR) {
            return r;
        }
    }
}

/// Read until `buf` is full or end of file; returns the number of bytes read.
pub fn read_all(fd: &Fd, buf: &mut [u8]) -> SysResult<usize> {
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

/// `write(2)` of the whole buffer to a raw descriptor, retrying on EINTR and short writes.
pub fn write_all_raw(fd: c_int, mut buf: &[u8]) -> SysResult<()> {
    while !buf.is_empty() {
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
        match check_size(unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) }) {
            Ok(n) => buf = &buf[n..],
            Err(libc::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub fn write_all(fd: &Fd, buf: &[u8]) -> SysResult<()> {
    write_all_raw(fd.0, buf)
}

/// `fsync(2)`.
pub fn fsync(fd: &Fd) -> SysResult<()> {
    // SAFETY: plain syscall on an owned descriptor.
    check(unsafe { libc::fsync(fd.0) }).map(drop)
}

/// Read a whole (small) file into `buf`. A file that fills `buf` is an error
/// (`EFBIG`): we never act on a silently truncated input.
pub fn read_file(path: &[u8], buf: &mut [u8]) -> SysResult<usize> {
    let fd = open(path, O_RDONLY, 0)?;
    let n = read_all(&fd, buf)?;
    if n == buf.len() {
        return Err(libc::EFBIG);
    }
    Ok(n)
}

/// What `lstat`/`stat` tell us about a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub mode: u32,
    pub dev: u64,
    pub ino: u64,
    pub uid: u32,
}

impl Stat {
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }
    pub fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }
}

fn to_stat(st: &libc::stat) -> Stat {
    Stat {
        mode: st.st_mode,
        dev: st.st_dev,
        ino: st.st_ino,
        uid: st.st_uid,
    }
}

/// `lstat(2)`: does not follow a final symlink.
pub fn lstat(path: &[u8]) -> SysResult<Stat> {
    with_cstr(path, |p| {
        // SAFETY: an all-zero `struct stat` is a valid value.
        let mut st: libc::stat = unsafe { core::mem::zeroed() };
        // SAFETY: `p` is a valid C string and `st` a valid out-pointer.
        check(unsafe { libc::lstat(p, &mut st) })?;
        Ok(to_stat(&st))
    })
}

/// `stat(2)`: follows symlinks.
pub fn stat(path: &[u8]) -> SysResult<Stat> {
    with_cstr(path, |p| {
        // SAFETY: an all-zero `struct stat` is a valid value.
        let mut st: libc::stat = unsafe { core::mem::zeroed() };
        // SAFETY: `p` is a valid C string and `st` a valid out-pointer.
        check(unsafe { libc::stat(p, &mut st) })?;
        Ok(to_stat(&st))
    })
}

/// Whether the filesystem holding `path` is mounted read-only (`statvfs(2)` `ST_RDONLY`).
pub fn is_readonly_fs(path: &[u8]) -> SysResult<bool> {
    with_cstr(path, |p| {
        // SAFETY: an all-zero `struct statvfs` is a valid value.
        let mut st: libc::statvfs = unsafe { core::mem::zeroed() };
        // SAFETY: `p` is a valid C string and `st` a valid out-pointer.
        check(unsafe { libc::statvfs(p, &mut st) })?;
        Ok(st.f_flag & libc::ST_RDONLY != 0)
    })
}

/// `readlink(2)`; returns the target's length in `buf`.
pub fn readlink(path: &[u8], buf: &mut [u8]) -> SysResult<usize> {
    with_cstr(path, |p| {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        let n = check_size(unsafe { libc::readlink(p, buf.as_mut_ptr().cast(), buf.len()) })?;
        if n == buf.len() {
            Err(libc::ENAMETOOLONG)
        } else {
            Ok(n)
        }
    })
}

/// `mkdir(2)` with an exact mode (callers set the umask to 0 first).
pub fn mkdir(path: &[u8], mode: u32) -> SysResult<()> {
    with_cstr(path, |p| {
        // SAFETY: `p` is a valid C string for the duration of the call.
        let r = unsafe { libc::mkdir(p, mode) };
        check(r).map(drop)
    })
}

pub fn rmdir(path: &[u8]) -> SysResult<()> {
    with_cstr(path, |p| {
        // SAFETY: `p` is a valid C string for the duration of the call.
        let r = unsafe { libc::rmdir(p) };
        check(r).map(drop)
    })
}

pub fn unlink(path: &[u8]) -> SysResult<()> {
    with_cstr(path, |p| {
        // SAFETY: `p` is a valid C string for the duration of the call.
        let r = unsafe { libc::unlink(p) };
        check(r).map(drop)
    })
}

pub fn rename(from: &[u8], to: &[u8]) -> SysResult<()> {
    with_cstr(from, |f| {
        with_cstr(to, |t| {
            // SAFETY: both are valid C strings for the duration of the call.
            let r = unsafe { libc::rename(f, t) };
            check(r).map(drop)
        })
    })
}

pub fn chdir(path: &[u8]) -> SysResult<()> {
    with_cstr(path, |p| {
        // SAFETY: `p` is a valid C string for the duration of the call.
        let r = unsafe { libc::chdir(p) };
        check(r).map(drop)
    })
}

/// Set the process umask; returns the previous one.
pub fn umask(mask: u32) -> u32 {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(mask) }
}

/// `mount(2)`.
pub fn mount(
    source: Option<&[u8]>,
    target: &[u8],
    fstype: Option<&[u8]>,
    flags: c_ulong,
    data: Option<&[u8]>,
) -> SysResult<()> {
    with_opt_cstr(source, |src| {
        with_cstr(target, |tgt| {
            with_opt_cstr(fstype, |fst| {
                with_opt_cstr(data, |dat| {
                    // SAFETY: every pointer is NULL or a valid C string.
                    check(unsafe { libc::mount(src, tgt, fst, flags, dat as *const c_void) })
                        .map(drop)
                })
            })
        })
    })
}

/// `umount2(2)`.
pub fn umount2(target: &[u8], flags: c_int) -> SysResult<()> {
    with_cstr(target, |p| {
        // SAFETY: `p` is a valid C string for the duration of the call.
        let r = unsafe { libc::umount2(p, flags) };
        check(r).map(drop)
    })
}

/// Call `f` with the name of every entry of directory `path` (except `.` and `..`).
pub fn for_each_dir_entry(path: &[u8], mut f: impl FnMut(&[u8])) -> SysResult<()> {
    let fd = open(path, O_RDONLY | O_DIRECTORY, 0)?;
    let mut buf = [0u8; 2048];
    loop {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                fd.0,
                buf.as_mut_ptr().cast::<c_void>(),
                buf.len(),
            )
        };
        if n < 0 {
            return Err(errno());
        }
        if n == 0 {
            return Ok(());
        }
        let mut off = 0usize;
        while off + 19 < n as usize {
            // linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, char name[]
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            if reclen == 0 {
                break;
            }
            let name = &buf[off + 19..off + reclen];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            if name != b"." && name != b".." {
                f(name);
            }
            off += reclen;
        }
    }
}

/// `getpid(2)`.
pub fn getpid() -> i32 {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() }
}

/// Process exit without running any destructors (there are none to run).
pub fn exit(code: c_int) -> ! {
    // SAFETY: terminating the process is always sound.
    unsafe { libc::_exit(code) }
}

/// Short symbolic name of an errno, for messages that must be greppable.
pub fn errno_name(e: Errno) -> &'static str {
    match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::E2BIG => "E2BIG",
        libc::EBADF => "EBADF",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENODEV => "ENODEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::EFBIG => "EFBIG",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::EMLINK => "EMLINK",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ELOOP => "ELOOP",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ENOTBLK => "ENOTBLK",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ENOEXEC => "ENOEXEC",
        _ => "errno",
    }
}

/// Human-readable text of an errno (`strerror`), without allocating.
pub fn errno_text(e: Errno) -> &'static [u8] {
    // SAFETY: strerror returns a pointer to a static, NUL-terminated string
    // for any input (musl never returns NULL); we only read it.
    unsafe {
        let p = libc::strerror(e);
        if p.is_null() {
            return b"unknown error";
        }
        core::ffi::CStr::from_ptr(p).to_bytes()
    }
}
