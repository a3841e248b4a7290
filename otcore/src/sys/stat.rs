//! What the kernel says about a file or a filesystem.

use linux_raw_sys::general as g;

use super::{with_cstr, AsFd, SysResult};

/// What `lstat`/`stat` tell us about a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub mode: u32,
    pub dev: u64,
    pub ino: u64,
    /// The device a device node stands for (makedev form).
    pub rdev: u64,
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

/// `statx(2)` as the bare system call, behind every stat here: one call
/// for all four forms, none of libc's conversions (and the same on every
/// architecture, where some have no `newfstatat`).
fn statx(dir: i32, path: *const libc::c_char, flags: u32) -> SysResult<g::statx> {
    // SAFETY: an all-zero `struct statx` is a valid value.
    let mut stx: g::statx = unsafe { core::mem::zeroed() };
    // SAFETY: `path` is a valid C string, `stx` a valid out-pointer of the
    // layout the kernel writes.
    let r = unsafe {
        libc::syscall(
            libc::SYS_statx,
            dir,
            path,
            (flags | g::AT_STATX_DONT_SYNC) as libc::c_long,
            g::STATX_BASIC_STATS as libc::c_long,
            &mut stx as *mut g::statx,
        )
    };
    super::check_size(r as isize)?;
    Ok(stx)
}

impl From<g::statx> for Stat {
    fn from(stx: g::statx) -> Stat {
        // st_dev as libc encodes it (makedev), so that it compares with
        // what other programs and std report.
        Stat {
            mode: stx.stx_mode as u32,
            dev: makedev(stx.stx_dev_major, stx.stx_dev_minor),
            rdev: makedev(stx.stx_rdev_major, stx.stx_rdev_minor),
            ino: stx.stx_ino,
            uid: stx.stx_uid,
            gid: stx.stx_gid,
            size: stx.stx_size,
        }
    }
}

/// A device number as libc encodes it (`makedev`).
fn makedev(major: u32, minor: u32) -> u64 {
    let (major, minor) = (major as u64, minor as u64);
    ((major & 0xffff_f000) << 32)
        | ((major & 0xfff) << 8)
        | ((minor & 0xffff_ff00) << 12)
        | (minor & 0xff)
}

/// Major and minor of a device number in libc's encoding.
pub fn major_minor(dev: u64) -> (u32, u32) {
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0xff);
    (major as u32, minor as u32)
}

const CWD: i32 = g::AT_FDCWD;

/// `lstat(2)`: does not follow a final symlink.
pub fn lstat(path: &[u8]) -> SysResult<Stat> {
    with_cstr(path, |p| {
        statx(CWD, p, g::AT_SYMLINK_NOFOLLOW).map(Stat::from)
    })
}

/// `stat(2)`: follows symlinks.
pub fn stat(path: &[u8]) -> SysResult<Stat> {
    with_cstr(path, |p| statx(CWD, p, 0).map(Stat::from))
}

/// `fstat(2)` of an open file.
pub fn fstat(fd: impl AsFd) -> SysResult<Stat> {
    statx(fd.as_fd().raw(), c"".as_ptr(), g::AT_EMPTY_PATH).map(Stat::from)
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`.
pub fn lstat_at(dir: impl AsFd, name: &[u8]) -> SysResult<Stat> {
    let dir = dir.as_fd().raw();
    with_cstr(name, |p| {
        statx(dir, p, g::AT_SYMLINK_NOFOLLOW).map(Stat::from)
    })
}

/// Whether `name` in `dir` is the root of a mount (`statx`'s
/// `STATX_ATTR_MOUNT_ROOT`, Linux 5.8+); `None` when the kernel cannot say.
/// A bind mount of a directory of the same filesystem has the same `st_dev`,
/// so comparing devices alone does not find it.
pub fn is_mount_root_at(dir: impl AsFd, name: &[u8]) -> Option<bool> {
    let dir = dir.as_fd().raw();
    with_cstr(name, |p| {
        let stx = statx(dir, p, g::AT_SYMLINK_NOFOLLOW)?;
        let known = stx.stx_attributes_mask & g::STATX_ATTR_MOUNT_ROOT as u64 != 0;
        Ok(known.then_some(stx.stx_attributes & g::STATX_ATTR_MOUNT_ROOT as u64 != 0))
    })
    .unwrap_or(None)
}

/// `statfs(2)` of the filesystem holding `path`, as the bare system call
/// (the kernel's layout, the same for every libc): `(f_type, f_flags)`,
/// the flags in libc's type for them, that of `ST_RDONLY` (32 bits on 32-bit
/// targets, where the kernel's `statfs64` has 32-bit words).
fn statfs(path: &[u8]) -> SysResult<(u64, libc::c_ulong)> {
    with_cstr(path, |p| {
        // SAFETY: an all-zero `struct statfs64` is a valid value.
        let mut st: g::statfs64 = unsafe { core::mem::zeroed() };
        // SAFETY: `p` is a valid C string and `st` a valid out-pointer of the
        // layout the kernel writes (statfs64 where words are 32 bits).
        #[cfg(target_pointer_width = "64")]
        let r = unsafe { libc::syscall(libc::SYS_statfs, p, &mut st as *mut g::statfs64) };
        #[cfg(target_pointer_width = "32")]
        // SAFETY: as above, with the size of the structure the kernel fills.
        let r = unsafe {
            let size = core::mem::size_of::<g::statfs64>();
            libc::syscall(libc::SYS_statfs64, p, size, &mut st as *mut g::statfs64)
        };
        super::check_size(r as isize)?;
        Ok((st.f_type as u64, st.f_flags as libc::c_ulong))
    })
}

/// Whether the filesystem holding `path` is mounted read-only (`ST_RDONLY`
/// in `statfs(2)`'s mount flags).
pub fn is_readonly_fs(path: &[u8]) -> SysResult<bool> {
    Ok(statfs(path)?.1 & libc::ST_RDONLY != 0)
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
    // f_type is a signed word on some architectures: keep its low 32 bits,
    // where every magic number lives.
    Ok(FsMagic(statfs(path)?.0 & 0xffff_ffff))
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

    #[test]
    fn same_numbers_as_std() {
        use std::os::unix::fs::MetadataExt;
        for path in ["/", "/proc/self", "/dev/null"] {
            let ours = lstat(path.as_bytes()).unwrap();
            let std = std::fs::symlink_metadata(path).unwrap();
            assert_eq!(
                (ours.dev, ours.ino, ours.mode, ours.uid, ours.gid, ours.size),
                (
                    std.dev(),
                    std.ino(),
                    std.mode(),
                    std.uid(),
                    std.gid(),
                    std.size()
                ),
                "{path}"
            );
        }
        let followed = stat(b"/proc/self").unwrap();
        assert!(followed.is_dir());
        let file = std::fs::File::open("/proc/self/status").unwrap();
        let fd = crate::sys::open(b"/proc/self/status", crate::sys::OFlags::RDONLY, 0).unwrap();
        let std = file.metadata().unwrap();
        assert_eq!(fstat(&fd).unwrap().id(), (std.dev(), std.ino()));
        assert_eq!(fs_magic(b"/proc").unwrap(), FsMagic(0x9fa0));
        assert!(!is_readonly_fs(b"/proc").unwrap());
    }
}
