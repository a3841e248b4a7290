//! The new mount API (`fsopen`, `fsconfig`, `fsmount`, `move_mount`, Linux
//! 5.2+) and read-only loop devices: what a composefs mount is made of.
//!
//! Through `syscall()`: musl has no wrappers for them.

use core::ffi::{c_char, c_int, c_long};
use core::ptr;

use linux_raw_sys::general as g;
use linux_raw_sys::loop_device as lo;

use super::{check_size, with_cstr, AsFd, Errno, Fd, OFlags, SysResult};

/// A filesystem context being configured (`fsopen(2)`).
pub struct FsContext(Fd);

/// `fsopen(fstype)`: `ENODEV` when the kernel knows no such filesystem,
/// `ENOSYS` before Linux 5.2.
pub fn fsopen(fstype: &[u8]) -> SysResult<FsContext> {
    with_cstr(fstype, |t| {
        // SAFETY: `t` is a valid C string; FSOPEN_CLOEXEC is a valid flag.
        let fd = unsafe { libc::syscall(g::__NR_fsopen as c_long, t, g::FSOPEN_CLOEXEC) };
        check_size(fd as isize).map(|fd| FsContext(Fd::from_raw(fd as c_int)))
    })
}

impl FsContext {
    fn config(&self, cmd: u32, key: Option<&[u8]>, value: Option<&[u8]>) -> SysResult<()> {
        let call = |k: *const c_char, v: *const c_char| {
            // SAFETY: `k` and `v` are NULL or valid C strings for the call;
            // the descriptor is a filesystem context.
            let r = unsafe {
                libc::syscall(
                    g::__NR_fsconfig as c_long,
                    self.0.as_fd().raw(),
                    cmd as c_int,
                    k,
                    v,
                    0 as c_int,
                )
            };
            check_size(r as isize).map(drop)
        };
        match (key, value) {
            (Some(k), Some(v)) => with_cstr(k, |k| with_cstr(v, |v| call(k, v))),
            (Some(k), None) => with_cstr(k, |k| call(k, ptr::null())),
            _ => call(ptr::null(), ptr::null()),
        }
    }

    /// `FSCONFIG_SET_STRING key=value`.
    pub fn set(&self, key: &[u8], value: &[u8]) -> SysResult<()> {
        self.config(
            g::fsconfig_command::FSCONFIG_SET_STRING as u32,
            Some(key),
            Some(value),
        )
    }

    /// `FSCONFIG_SET_FLAG key`.
    pub fn set_flag(&self, key: &[u8]) -> SysResult<()> {
        self.config(
            g::fsconfig_command::FSCONFIG_SET_FLAG as u32,
            Some(key),
            None,
        )
    }

    /// `FSCONFIG_CMD_CREATE`: make the superblock.
    pub fn create(&self) -> SysResult<()> {
        self.config(g::fsconfig_command::FSCONFIG_CMD_CREATE as u32, None, None)
    }

    /// `fsmount(2)`: a detached mount of the created superblock.
    pub fn mount(&self, readonly: bool) -> SysResult<Fd> {
        let attrs = if readonly { g::MOUNT_ATTR_RDONLY } else { 0 };
        // SAFETY: plain integers; the descriptor is a filesystem context.
        let fd = unsafe {
            libc::syscall(
                g::__NR_fsmount as c_long,
                self.0.as_fd().raw(),
                g::FSMOUNT_CLOEXEC,
                attrs,
            )
        };
        check_size(fd as isize).map(|fd| Fd::from_raw(fd as c_int))
    }
}

/// Attach the detached mount `mnt` (from [`FsContext::mount`]) at `target`.
pub fn move_mount_to(mnt: impl AsFd, target: &[u8]) -> SysResult<()> {
    with_cstr(target, |t| {
        // SAFETY: "" and `t` are valid C strings; F_EMPTY_PATH makes the
        // kernel take the descriptor itself as the source.
        let r = unsafe {
            libc::syscall(
                g::__NR_move_mount as c_long,
                mnt.as_fd().raw(),
                c"".as_ptr(),
                libc::AT_FDCWD,
                t,
                g::MOVE_MOUNT_F_EMPTY_PATH,
            )
        };
        check_size(r as isize).map(drop)
    })
}

/// A loop device number (`/dev/loopN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopNumber(pub u32);

/// Attach the open file `backing` to a free loop device, read-only, with
/// direct I/O and 4 KiB blocks, cleared automatically when its last user
/// goes (`LOOP_CONFIGURE`, Linux 5.8). Returns the device, open, and its
/// number; the device must stay open until it is mounted.
pub fn loop_attach_readonly(backing: impl AsFd, name: &[u8]) -> SysResult<(Fd, LoopNumber)> {
    let control = super::open(b"/dev/loop-control", OFlags::RDWR, 0)?;
    // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a number.
    let n = unsafe { libc::ioctl(control.as_fd().raw(), lo::LOOP_CTL_GET_FREE as _) };
    let n = u32::try_from(check_size(n as isize)?).map_err(|_| Errno::RANGE)?;
    let mut path = heapless::String::<24>::new();
    let _ = core::fmt::Write::write_fmt(&mut path, format_args!("/dev/loop{n}"));
    let dev = super::open(path.as_bytes(), OFlags::RDWR, 0)?;

    // SAFETY: loop_config is plain data; all-zero is its empty value.
    let mut config: lo::loop_config = unsafe { core::mem::zeroed() };
    config.fd = backing.as_fd().raw() as u32;
    config.block_size = 4096;
    config.info.lo_flags = lo::LO_FLAGS_READ_ONLY as u32
        | lo::LO_FLAGS_DIRECT_IO as u32
        | lo::LO_FLAGS_AUTOCLEAR as u32;
    let keep = name.len().min(config.info.lo_file_name.len() - 1);
    config.info.lo_file_name[..keep].copy_from_slice(&name[..keep]);
    // SAFETY: LOOP_CONFIGURE reads one loop_config, which outlives the call.
    let r = unsafe { libc::ioctl(dev.as_fd().raw(), lo::LOOP_CONFIGURE as _, &config) };
    check_size(r as isize)?;
    Ok((dev, LoopNumber(n)))
}
