//! What the kernel says about a file or a filesystem.

use linux_raw_sys::general as g;

use super::{check, with_cstr, AsFd, SysResult};

/// What `lstat`/`stat` tell us about a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub mode: u32,
    pub dev: u64,
    pub ino: u64,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
}

impl Stat {
    fn file_type(&self) -> u32 {
        self.mode & g::S_IFMT
    }
    pub fn is_dir(&self) -> bool {
        self.file_type() == g::S_IFDIR
    }
    pub fn is_symlink(&self) -> bool {
        self.file_type() == g::S_IFLNK
    }
    pub fn is_file(&self) -> bool {
        self.file_type() == g::S_IFREG
    }
    /// The permission bits (with setuid, setgid, sticky).
    pub fn permissions(&self) -> u32 {
        self.mode & 0o7777
    }
    /// `(st_dev, st_ino)`: what identifies a file on a running system.
    pub fn id(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }
}

fn to_stat(st: &libc::stat) -> Stat {
    Stat {
        mode: st.st_mode,
        dev: st.st_dev,
        ino: st.st_ino,
        uid: st.st_uid,
        gid: st.st_gid,
        size: st.st_size as u64,
    }
}

fn zeroed_stat() -> libc::stat {
    // SAFETY: an all-zero `struct stat` is a valid value.
    unsafe { core::mem::zeroed() }
}

/// `lstat(2)`: does not follow a final symlink.
pub fn lstat(path: &[u8]) -> SysResult<Stat> {
    with_cstr(path, |p| {
        let mut st = zeroed_stat();
        // SAFETY: `p` is a valid C string and `st` a valid out-pointer.
        check(unsafe { libc::lstat(p, &mut st) })?;
        Ok(to_stat(&st))
    })
}

/// `stat(2)`: follows symlinks.
pub fn stat(path: &[u8]) -> SysResult<Stat> {
    with_cstr(path, |p| {
        let mut st = zeroed_stat();
        // SAFETY: `p` is a valid C string and `st` a valid out-pointer.
        check(unsafe { libc::stat(p, &mut st) })?;
        Ok(to_stat(&st))
    })
}

/// `fstat(2)` of an open file.
pub fn fstat(fd: impl AsFd) -> SysResult<Stat> {
    let mut st = zeroed_stat();
    // SAFETY: `fd` is open and `st` a valid out-pointer.
    check(unsafe { libc::fstat(fd.as_fd().raw(), &mut st) })?;
    Ok(to_stat(&st))
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`.
pub fn lstat_at(dir: impl AsFd, name: &[u8]) -> SysResult<Stat> {
    with_cstr(name, |p| {
        let mut st = zeroed_stat();
        let flags = g::AT_SYMLINK_NOFOLLOW as i32;
        // SAFETY: `dir` is open, `p` a valid C string, `st` a valid out-pointer.
        check(unsafe { libc::fstatat(dir.as_fd().raw(), p, &mut st, flags) })?;
        Ok(to_stat(&st))
    })
}

/// Whether `name` in `dir` is the root of a mount (`statx`'s
/// `STATX_ATTR_MOUNT_ROOT`, Linux 5.8+); `None` when the kernel cannot say.
/// A bind mount of a directory of the same filesystem has the same `st_dev`,
/// so comparing devices alone does not find it.
pub fn is_mount_root_at(dir: impl AsFd, name: &[u8]) -> Option<bool> {
    with_cstr(name, |p| {
        // SAFETY: an all-zero `struct statx` is a valid value.
        let mut stx: g::statx = unsafe { core::mem::zeroed() };
        let flags = (g::AT_SYMLINK_NOFOLLOW | g::AT_STATX_DONT_SYNC) as libc::c_long;
        // SAFETY: `dir` is open, `p` a valid C string, `stx` a valid out-pointer
        // of the layout the kernel writes.
        let r = unsafe {
            libc::syscall(
                libc::SYS_statx,
                dir.as_fd().raw(),
                p,
                flags,
                g::STATX_BASIC_STATS as libc::c_long,
                &mut stx as *mut g::statx,
            )
        };
        super::check_size(r as isize)?;
        let known = stx.stx_attributes_mask & g::STATX_ATTR_MOUNT_ROOT as u64 != 0;
        Ok(known.then_some(stx.stx_attributes & g::STATX_ATTR_MOUNT_ROOT as u64 != 0))
    })
    .unwrap_or(None)
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

/// A filesystem type, as `statfs(2)` reports it in `f_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsMagic(u64);

impl FsMagic {
    pub const TMPFS: FsMagic = FsMagic(g::TMPFS_MAGIC as u64);
    pub const RAMFS: FsMagic = FsMagic(g::RAMFS_MAGIC as u64);

    /// A ramfs or tmpfs: memory, such as the initial rootfs.
    pub fn is_memory(self) -> bool {
        self == FsMagic::TMPFS || self == FsMagic::RAMFS
    }
}

/// The type of the filesystem holding `path`.
pub fn fs_magic(path: &[u8]) -> SysResult<FsMagic> {
    with_cstr(path, |p| {
        // SAFETY: an all-zero `struct statfs` is a valid value.
        let mut st: libc::statfs = unsafe { core::mem::zeroed() };
        // SAFETY: `p` is a valid C string and `st` a valid out-pointer.
        check(unsafe { libc::statfs(p, &mut st) })?;
        // f_type is a signed word on some architectures: keep its low 32 bits,
        // where every magic number lives.
        Ok(FsMagic(st.f_type as u64 & 0xffff_ffff))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::Errno;

    #[test]
    fn stat_types() {
        let st = lstat(b"/").unwrap();
        assert!(st.is_dir() && !st.is_symlink() && !st.is_file());
        assert_eq!(lstat(b"/nonexistent-otcore").unwrap_err(), Errno::NOENT);
    }
}
