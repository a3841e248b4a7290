//! The few system calls std does not wrap: mount, reboot, statvfs, clocks,
//! fs-verity.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::ErrorKind::InvalidInput.into())
}

/// `mount(2)` of a kernel filesystem (no source device).
pub fn mount_fs(fstype: &str, target: &str, flags: libc::c_ulong) -> io::Result<()> {
    let (src, ty, tgt) = (
        cstr(Path::new(fstype))?,
        cstr(Path::new(fstype))?,
        cstr(Path::new(target))?,
    );
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call;
    // a null data pointer is allowed.
    let r = unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            ty.as_ptr(),
            flags,
            std::ptr::null(),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether the filesystem holding `path` is mounted read-only (`ST_RDONLY`).
pub fn is_readonly_mount(path: &str) -> io::Result<bool> {
    let p = cstr(Path::new(path))?;
    // SAFETY: statvfs is plain old data; zeroed is a valid value to overwrite.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `p` is a valid C string and `st` a valid, writable statvfs.
    if unsafe { libc::statvfs(p.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.f_flag & libc::ST_RDONLY != 0)
}

/// `CLOCK_MONOTONIC` in microseconds (systemd's `RD_TIMESTAMP` clock).
pub fn monotonic_us() -> u64 {
    // SAFETY: timespec is plain old data.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

/// Flush every filesystem, then power the machine off. Never returns: PID 1
/// must not exit (the kernel would panic), so if the power-off fails we wait.
pub fn sync_and_power_off() -> ! {
    // SAFETY: sync and reboot take no pointers; RB_POWER_OFF ends the VM.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
    }
    loop {
        // SAFETY: pause() takes no arguments; it only waits for a signal.
        unsafe { libc::pause() };
    }
}

/// `struct fsverity_enable_arg` of `<linux/fsverity.h>`.
#[repr(C)]
struct FsverityEnableArg {
    version: u32,
    hash_algorithm: u32,
    block_size: u32,
    salt_size: u32,
    salt_ptr: u64,
    sig_size: u32,
    reserved1: u32,
    sig_ptr: u64,
    reserved2: [u64; 11],
}

/// `FS_IOC_ENABLE_VERITY`: `_IOW('f', 133, struct fsverity_enable_arg)`.
const FS_IOC_ENABLE_VERITY: libc::c_ulong = 0x4080_6685;

/// Enable fs-verity on the file at `path` with SHA-256 and 4096-byte
/// Merkle tree blocks (what composefs digests assume). `Ok(false)` when
/// the file already has it.
pub fn enable_verity(path: &Path) -> io::Result<bool> {
    let f = std::fs::File::open(path)?;
    let arg = FsverityEnableArg {
        version: 1,
        hash_algorithm: 1, // FS_VERITY_HASH_ALG_SHA256
        block_size: 4096,
        salt_size: 0,
        salt_ptr: 0,
        sig_size: 0,
        reserved1: 0,
        sig_ptr: 0,
        reserved2: [0; 11],
    };
    // SAFETY: the fd is open for the call; `arg` is a valid
    // fsverity_enable_arg (128 bytes) that outlives it.
    let r = unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&f),
            FS_IOC_ENABLE_VERITY as _,
            &arg,
        )
    };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EEXIST) {
        Ok(false)
    } else {
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn enable_arg_is_the_kernels_size() {
        assert_eq!(std::mem::size_of::<super::FsverityEnableArg>(), 128);
    }
}
