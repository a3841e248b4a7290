//! Creating, removing, renaming and changing the attributes of files.

use core::ffi::c_int;

use linux_raw_sys::general as g;

use super::{check, check_size, flags, with_cstr, AsFd, Errno, SysResult};

/// `mkdir(2)` with an exact mode (callers set the umask to 0 first).
pub fn mkdir(path: &[u8], mode: u32) -> SysResult<()> {
    with_cstr(path, |p| {
        // SAFETY: `p` is a valid C string for the duration of the call.
        check(unsafe { libc::mkdir(p, mode) }).map(drop)
    })
}

/// `mkdirat(2)`.
pub fn mkdir_at(dir: impl AsFd, name: &[u8], mode: u32) -> SysResult<()> {
    with_cstr(name, |p| {
        // SAFETY: `dir` is open and `p` a valid C string.
        check(unsafe { libc::mkdirat(dir.as_fd().raw(), p, mode) }).map(drop)
    })
}

pub fn rmdir(path: &[u8]) -> SysResult<()> {
    with_cstr(path, |p| {
        // SAFETY: `p` is a valid C string for the duration of the call.
        check(unsafe { libc::rmdir(p) }).map(drop)
    })
}

pub fn unlink(path: &[u8]) -> SysResult<()> {
    with_cstr(path, |p| {
        // SAFETY: `p` is a valid C string for the duration of the call.
        check(unsafe { libc::unlink(p) }).map(drop)
    })
}

/// What [`unlink_at`] removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveKind {
    /// Anything but a directory (`unlink`).
    NonDir,
    /// An empty directory (`rmdir`).
    Dir,
}

/// `unlinkat(2)`.
pub fn unlink_at(dir: impl AsFd, name: &[u8], kind: RemoveKind) -> SysResult<()> {
    let flags = match kind {
        RemoveKind::NonDir => 0,
        RemoveKind::Dir => g::AT_REMOVEDIR as c_int,
    };
    with_cstr(name, |p| {
        // SAFETY: `dir` is open and `p` a valid C string.
        check(unsafe { libc::unlinkat(dir.as_fd().raw(), p, flags) }).map(drop)
    })
}

pub fn rename(from: &[u8], to: &[u8]) -> SysResult<()> {
    with_cstr(from, |f| {
        with_cstr(to, |t| {
            // SAFETY: both are valid C strings for the duration of the call.
            check(unsafe { libc::rename(f, t) }).map(drop)
        })
    })
}

/// `renameat(2)` within one directory.
pub fn rename_at(dir: impl AsFd, from: &[u8], to: &[u8]) -> SysResult<()> {
    let dir = dir.as_fd().raw();
    with_cstr(from, |f| {
        with_cstr(to, |t| {
            // SAFETY: `dir` is open; both are valid C strings.
            check(unsafe { libc::renameat(dir, f, dir, t) }).map(drop)
        })
    })
}

/// `renameat(2)` from one directory to another.
pub fn rename_between(
    from_dir: impl AsFd,
    from: &[u8],
    to_dir: impl AsFd,
    to: &[u8],
) -> SysResult<()> {
    let (fd, td) = (from_dir.as_fd().raw(), to_dir.as_fd().raw());
    with_cstr(from, |f| {
        with_cstr(to, |t| {
            // SAFETY: both directories are open; both are valid C strings.
            check(unsafe { libc::renameat(fd, f, td, t) }).map(drop)
        })
    })
}

/// `symlinkat(2)`: a symlink `name` in `dir` that points to `target`.
pub fn symlink_at(target: &[u8], dir: impl AsFd, name: &[u8]) -> SysResult<()> {
    let dir = dir.as_fd().raw();
    with_cstr(target, |t| {
        with_cstr(name, |n| {
            // SAFETY: `dir` is open; both are valid C strings.
            check(unsafe { libc::symlinkat(t, dir, n) }).map(drop)
        })
    })
}

/// `readlink(2)`; returns the target's length in `buf`.
pub fn readlink(path: &[u8], buf: &mut [u8]) -> SysResult<usize> {
    with_cstr(path, |p| {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        let n = check_size(unsafe { libc::readlink(p, buf.as_mut_ptr().cast(), buf.len()) })?;
        if n == buf.len() {
            Err(Errno::NAMETOOLONG)
        } else {
            Ok(n)
        }
    })
}

/// `readlinkat(2)` of `name` in `dir`; returns the target's length in `buf`.
pub fn readlink_at(dir: impl AsFd, name: &[u8], buf: &mut [u8]) -> SysResult<usize> {
    let dir = dir.as_fd().raw();
    with_cstr(name, |p| {
        // SAFETY: `dir` is open; `buf` is valid for writes of `buf.len()` bytes.
        let n =
            check_size(unsafe { libc::readlinkat(dir, p, buf.as_mut_ptr().cast(), buf.len()) })?;
        if n == buf.len() {
            Err(Errno::NAMETOOLONG)
        } else {
            Ok(n)
        }
    })
}

/// `fchmod(2)`, the bare system call (libc's adds a detour through
/// `/proc/self/fd` for `O_PATH` descriptors, which we never pass: an
/// `O_PATH` descriptor here fails with `EBADF`).
pub fn fchmod(fd: impl AsFd, mode: u32) -> SysResult<()> {
    // SAFETY: plain system call on a borrowed descriptor.
    let r = unsafe { libc::syscall(libc::SYS_fchmod, fd.as_fd().raw(), mode) };
    check(r as c_int).map(drop)
}

/// `fchown(2)`.
pub fn fchown(fd: impl AsFd, uid: u32, gid: u32) -> SysResult<()> {
    // SAFETY: plain system call on a borrowed descriptor.
    check(unsafe { libc::fchown(fd.as_fd().raw(), uid, gid) }).map(drop)
}

/// Set the access and modification times of `path` to now (`utimensat(2)`).
pub fn touch(path: &[u8]) -> SysResult<()> {
    with_cstr(path, |p| {
        // SAFETY: `p` is a valid C string; NULL times means "now".
        check(unsafe { libc::utimensat(libc::AT_FDCWD, p, core::ptr::null(), 0) }).map(drop)
    })
}

/// Set the access and modification times of an open file to now (`futimens(3)`).
pub fn touch_fd(fd: impl AsFd) -> SysResult<()> {
    // SAFETY: plain call on a borrowed descriptor; NULL times means "now".
    check(unsafe { libc::futimens(fd.as_fd().raw(), core::ptr::null()) }).map(drop)
}

/// `fgetxattr(2)`: the value of extended attribute `name` of an open file,
/// into `buf`; returns its length.
pub fn fgetxattr(fd: impl AsFd, name: &[u8], buf: &mut [u8]) -> SysResult<usize> {
    let fd = fd.as_fd().raw();
    with_cstr(name, |n| {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        check_size(unsafe { libc::fgetxattr(fd, n, buf.as_mut_ptr().cast(), buf.len()) })
    })
}

/// `lgetxattr(2)`: the value of extended attribute `name` (a C-string-safe
/// name such as `security.selinux`) of `path` itself (not following a final
/// symlink), into `buf`; returns its length.
pub fn lgetxattr(path: &[u8], name: &[u8], buf: &mut [u8]) -> SysResult<usize> {
    with_cstr(path, |p| {
        with_cstr(name, |n| {
            // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
            let r = unsafe { libc::lgetxattr(p, n, buf.as_mut_ptr().cast(), buf.len()) };
            check_size(r)
        })
    })
}

/// `fsetxattr(2)`: set extended attribute `name` of an open file.
pub fn fsetxattr(fd: impl AsFd, name: &[u8], value: &[u8]) -> SysResult<()> {
    let fd = fd.as_fd().raw();
    with_cstr(name, |n| {
        // SAFETY: `value` is valid for reads of `value.len()` bytes.
        check(unsafe { libc::fsetxattr(fd, n, value.as_ptr().cast(), value.len(), 0) }).map(drop)
    })
}

flags! {
    /// Inode attributes (`lsattr`/`chattr`).
    InodeFlags: c_int {
        IMMUTABLE = g::FS_IMMUTABLE_FL;
    }
}

/// The inode attributes of an open file (`FS_IOC_GETFLAGS`).
pub fn inode_flags(fd: impl AsFd) -> SysResult<InodeFlags> {
    // The kernel reads and writes an int, whatever the ioctl's name says.
    let mut flags: c_int = 0;
    let req = linux_raw_sys::ioctl::FS_IOC_GETFLAGS;
    // SAFETY: FS_IOC_GETFLAGS writes one int into `flags`, a valid out-pointer.
    check(unsafe { libc::ioctl(fd.as_fd().raw(), req as _, &mut flags) })?;
    Ok(InodeFlags(flags))
}

/// Set the inode attributes of an open file (`FS_IOC_SETFLAGS`).
pub fn set_inode_flags(fd: impl AsFd, flags: InodeFlags) -> SysResult<()> {
    let req = linux_raw_sys::ioctl::FS_IOC_SETFLAGS;
    let value: c_int = flags.bits();
    // SAFETY: FS_IOC_SETFLAGS reads one int from `value`, which outlives the call.
    check(unsafe { libc::ioctl(fd.as_fd().raw(), req as _, &value) }).map(drop)
}
