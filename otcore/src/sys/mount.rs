//! Mounts and namespaces.

use core::ffi::{c_int, c_ulong, c_void};

use linux_raw_sys::general as g;

use super::{check, check_size, flags, with_cstr, with_opt_cstr, AsFd, SysResult};

flags! {
    /// `mount(2)` flags.
    MountFlags: c_ulong {
        RDONLY = g::MS_RDONLY;
        NOSUID = g::MS_NOSUID;
        NODEV = g::MS_NODEV;
        NOEXEC = g::MS_NOEXEC;
        SYNCHRONOUS = g::MS_SYNCHRONOUS;
        REMOUNT = g::MS_REMOUNT;
        DIRSYNC = g::MS_DIRSYNC;
        NOATIME = g::MS_NOATIME;
        NODIRATIME = g::MS_NODIRATIME;
        BIND = g::MS_BIND;
        MOVE = g::MS_MOVE;
        REC = g::MS_REC;
        SILENT = g::MS_SILENT;
        PRIVATE = g::MS_PRIVATE;
        SLAVE = g::MS_SLAVE;
        SHARED = g::MS_SHARED;
        RELATIME = g::MS_RELATIME;
        STRICTATIME = g::MS_STRICTATIME;
    }
}

flags! {
    /// `umount2(2)` flags.
    UnmountFlags: c_int {
        DETACH = g::MNT_DETACH;
    }
}

/// `/proc/self/fd/N` of an open file: a path that names that very file
/// whatever its path has become (the kernel follows this magic link to the
/// open file itself; `/proc` must be mounted). For system calls that take
/// only paths, such as `mount(2)` and overlayfs's layer options.
pub fn fd_proc_path(fd: impl AsFd) -> heapless::String<32> {
    let mut p = heapless::String::new();
    // "/proc/self/fd/" and at most 10 digits: always fits.
    let _ = core::fmt::Write::write_fmt(&mut p, format_args!("/proc/self/fd/{}", fd.as_fd().raw()));
    p
}

/// Bind-mount the directory open as `dir` at `target` (through
/// [`fd_proc_path`], never its path again).
pub fn bind_mount_fd(dir: impl AsFd, target: &[u8]) -> SysResult<()> {
    let src = fd_proc_path(dir);
    mount(Some(src.as_bytes()), target, None, MountFlags::BIND, None)
}

/// `mount(2)`.
pub fn mount(
    source: Option<&[u8]>,
    target: &[u8],
    fstype: Option<&[u8]>,
    flags: MountFlags,
    data: Option<&[u8]>,
) -> SysResult<()> {
    with_opt_cstr(source, |src| {
        with_cstr(target, |tgt| {
            with_opt_cstr(fstype, |fst| {
                with_opt_cstr(data, |dat| {
                    // SAFETY: every pointer is NULL or a valid C string.
                    check(unsafe { libc::mount(src, tgt, fst, flags.bits(), dat as *const c_void) })
                        .map(drop)
                })
            })
        })
    })
}

/// `umount2(2)`.
pub fn umount2(target: &[u8], flags: UnmountFlags) -> SysResult<()> {
    with_cstr(target, |p| {
        // SAFETY: `p` is a valid C string for the duration of the call.
        check(unsafe { libc::umount2(p, flags.bits()) }).map(drop)
    })
}

/// `pivot_root(2)`.
pub fn pivot_root(new_root: &[u8], put_old: &[u8]) -> SysResult<()> {
    with_cstr(new_root, |n| {
        with_cstr(put_old, |o| {
            // SAFETY: both are valid C strings for the duration of the call.
            let r = unsafe { libc::syscall(libc::SYS_pivot_root, n, o) };
            check_size(r as isize).map(drop)
        })
    })
}

/// `chroot(2)`.
pub fn chroot(path: &[u8]) -> SysResult<()> {
    with_cstr(path, |p| {
        // SAFETY: `p` is a valid C string for the duration of the call.
        check(unsafe { libc::chroot(p) }).map(drop)
    })
}

/// A kind of namespace, for [`setns`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    Mount,
}

/// `setns(2)`: join the namespace open at `fd`. Only sound in a
/// single-threaded process, as ours are.
pub fn setns(fd: impl AsFd, kind: Namespace) -> SysResult<()> {
    let nstype = match kind {
        Namespace::Mount => g::CLONE_NEWNS as c_int,
    };
    // SAFETY: plain system call on a borrowed descriptor.
    check(unsafe { libc::setns(fd.as_fd().raw(), nstype) }).map(drop)
}
