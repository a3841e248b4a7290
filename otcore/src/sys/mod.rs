//! The only place that talks to the kernel: thin, safe, typed wrappers.
//!
//! Functions are called through the C library (musl, linked statically);
//! constants and structure layouts come from `linux-raw-sys`, generated from
//! the kernel's own headers for each architecture, never copied by hand.
//!
//! Conventions, in every room of this module:
//! - paths are byte strings, turned into C strings in a stack buffer (no heap);
//! - a failure is `Err(Errno)`; callers attach the operation and the path;
//! - descriptors are owned by [`Fd`] (closed on drop) or borrowed as
//!   [`BorrowedFd`]; no raw descriptor number leaves this module;
//! - flags are types ([`OFlags`], [`MountFlags`], [`UnmountFlags`]).
//!
//! This is the only module of the workspace allowed to hold `unsafe` code;
//! every other module and crate forbids it.
//!
//! Why `libc` and not `rustix` (linux_raw backend, no_std, no heap), as
//! measured on this project's build flags with rustix 1.1.6: for the same
//! calls rustix alone is about 1 KiB smaller and costs the same per extra
//! call (about 40 bytes), but musl stays linked for its start-up code, so a
//! partial switch adds 0.5 to 1 KiB (rustix's helpers beside musl's
//! wrappers) to a binary held to 64 KiB. Moving to it means moving this
//! whole layer at once, and adding rustix and bitflags.
#![allow(unsafe_code)]

mod beneath;
mod dir;
mod entry;
mod errno;
mod fd;
mod fsmount;
mod inode;
mod kernel;
mod mount;
mod process;
mod spawn;
mod stat;
mod verity;

pub use beneath::{open_beneath, open_beneath_walk};
pub use dir::{for_each_dir_entry, for_each_entry, DirEntry, EntryType};
pub use entry::{panic_exit, Args, MAX_ARGS};
pub use errno::{Errno, SysResult};
pub use fd::{
    dup2, file_size, fill_std_fds, fsync, open, open_at, pread, read, read_all, read_file,
    seek_start, write_all, AsFd, BorrowedFd, Fd, FdCell, OFlags, STDERR, STDIN, STDOUT,
};
pub use fsmount::{fsopen, loop_attach_readonly, move_mount_to, FsContext, LoopNumber};
pub use inode::{
    fchmod, fchown, fgetxattr, fsetxattr, inode_flags, lgetxattr, mkdir, mkdir_at, readlink,
    readlink_at, rename, rename_at, rename_between, rmdir, set_inode_flags, symlink_at, touch,
    touch_fd, unlink, unlink_at, InodeFlags, RemoveKind,
};
pub use kernel::{
    finit_module, kernel_release, map_fd, map_file, poll_readable, recv, uevent_socket, Mapping,
    ModuleFlags,
};
pub use mount::{
    bind_mount_fd, chroot, fd_proc_path, mount, pivot_root, setns, umount2, MountFlags, Namespace,
    UnmountFlags,
};
pub use process::{
    c_strings, chdir, clock_us, execve, exit, finishes_within, geteuid, getpid, kill_child,
    pause_forever, reboot, sleep_ms, spawn, umask, wait_child, Power,
};
pub use spawn::{spawn_wait, ExitStatus, SPAWN_MAX_ARGS, SPAWN_MAX_ARG_BYTES};
pub use stat::{
    fs_magic, fstat, is_mount_root_at, is_readonly_fs, lstat, lstat_at, major_minor, stat, FsMagic,
    Stat,
};
pub use verity::{
    measure_verity, VerityDigest, FS_VERITY_HASH_ALG_SHA256, FS_VERITY_HASH_ALG_SHA512,
    VERITY_MAX_DIGEST,
};

use core::ffi::c_char;

/// Longest path we hand to the kernel (`PATH_MAX`, with its NUL).
pub const PATH_MAX: usize = linux_raw_sys::general::PATH_MAX as usize;

/// Turn a `-1`-on-error return value into a `Result`.
fn check(ret: core::ffi::c_int) -> SysResult<core::ffi::c_int> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

/// Like [`check`] for calls returning a size (or `syscall()`'s `long`).
fn check_size(ret: isize) -> SysResult<usize> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret as usize)
    }
}

/// Call `f` with `path` as a NUL-terminated C string held on the stack.
fn with_cstr<T>(path: &[u8], f: impl FnOnce(*const c_char) -> SysResult<T>) -> SysResult<T> {
    if path.len() >= PATH_MAX {
        return Err(Errno::NAMETOOLONG);
    }
    if path.contains(&0) {
        return Err(Errno::INVAL);
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

/// Define a bit-set type over a kernel flag word: constants, `|`, `contains`.
macro_rules! flags {
    ($(#[$m:meta])* $name:ident: $int:ty { $($(#[$fm:meta])* $flag:ident = $value:expr;)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name($int);

        impl $name {
            pub const EMPTY: $name = $name(0);
            $($(#[$fm])* pub const $flag: $name = $name($value as $int);)*

            /// The flags as the kernel takes them.
            pub const fn bits(self) -> $int {
                self.0
            }
            pub const fn contains(self, other: $name) -> bool {
                self.0 & other.0 == other.0
            }
            pub const fn union(self, other: $name) -> $name {
                $name(self.0 | other.0)
            }
            pub const fn without(self, other: $name) -> $name {
                $name(self.0 & !other.0)
            }
            pub const fn is_empty(self) -> bool {
                self.0 == 0
            }
        }

        impl core::ops::BitOr for $name {
            type Output = $name;
            fn bitor(self, other: $name) -> $name {
                self.union(other)
            }
        }

        impl core::ops::BitOrAssign for $name {
            fn bitor_assign(&mut self, other: $name) {
                *self = self.union(other);
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                let mut first = true;
                $(
                    if $value as $int != 0 && self.contains($name::$flag) {
                        if !first {
                            f.write_str("|")?;
                        }
                        first = false;
                        f.write_str(stringify!($flag))?;
                    }
                )*
                if first {
                    f.write_str("0")?;
                }
                Ok(())
            }
        }
    };
}
pub(crate) use flags;
