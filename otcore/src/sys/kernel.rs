//! Kernel interfaces: its release, modules, device events, file mappings.

use core::ffi::{c_int, c_void};

use linux_raw_sys::netlink as nl;

use super::{check, check_size, flags, open, with_cstr, AsFd, Errno, Fd, OFlags, SysResult};

/// The running kernel's release (`uname -r`), into `buf`.
pub fn kernel_release(buf: &mut [u8; 65]) -> SysResult<&[u8]> {
    // SAFETY: an all-zero `struct utsname` is a valid value.
    let mut uts: libc::utsname = unsafe { core::mem::zeroed() };
    // SAFETY: `uts` is a valid out-pointer.
    check(unsafe { libc::uname(&mut uts) })?;
    let rel = &uts.release;
    let n = rel
        .iter()
        .position(|&c| c == 0)
        .unwrap_or(rel.len())
        .min(64);
    for (d, s) in buf.iter_mut().zip(&rel[..n]) {
        // c_char is i8 on some architectures and u8 on others.
        *d = u8::from_ne_bytes(s.to_ne_bytes());
    }
    Ok(&buf[..n])
}

/// From the kernel's `uapi/linux/module.h` (Linux 6.2); `linux-raw-sys`
/// does not generate that header.
const MODULE_INIT_COMPRESSED_FILE: u32 = 4;

flags! {
    /// `finit_module(2)` flags.
    ModuleFlags: c_int {
        /// The file is compressed; the kernel decompresses it (Linux 6.2+).
        COMPRESSED_FILE = MODULE_INIT_COMPRESSED_FILE;
    }
}

/// `finit_module(2)`: load a kernel module from an open file.
pub fn finit_module(fd: impl AsFd, params: &[u8], flags: ModuleFlags) -> SysResult<()> {
    with_cstr(params, |p| {
        let fd = fd.as_fd().raw();
        // SAFETY: `fd` is open and `p` a valid C string for the duration of the call.
        let r = unsafe { libc::syscall(libc::SYS_finit_module, fd, p, flags.bits()) };
        check_size(r as isize).map(drop)
    })
}

/// A read-only, private file mapping (not heap: it is backed by the file).
pub struct Mapping {
    ptr: *mut c_void,
    len: usize,
}

impl Mapping {
    pub fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `ptr` maps `len` readable bytes for as long as `self` lives.
        unsafe { core::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if self.len != 0 {
            // SAFETY: we own this mapping; nothing borrows it past `self`.
            unsafe { libc::munmap(self.ptr, self.len) };
        }
    }
}

/// Map a whole regular file read-only.
pub fn map_file(path: &[u8]) -> SysResult<Mapping> {
    map_fd(open(path, OFlags::RDONLY | OFlags::NONBLOCK, 0)?)
}

/// Map the whole of an open regular file read-only (anything else is
/// `EINVAL`).
pub fn map_fd(fd: impl AsFd) -> SysResult<Mapping> {
    let fd = fd.as_fd();
    let st = super::fstat(fd)?;
    if !st.is_file() {
        return Err(Errno::INVAL);
    }
    let len = usize::try_from(st.size).map_err(|_| Errno::FBIG)?;
    if len == 0 {
        return Ok(Mapping {
            ptr: core::ptr::null_mut(),
            len: 0,
        });
    }
    // SAFETY: mapping an open file read-only with a length from fstat.
    let ptr = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            fd.raw(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(Errno::last());
    }
    Ok(Mapping { ptr, len })
}

/// A non-blocking socket that receives the kernel's device events (uevents).
pub fn uevent_socket() -> SysResult<Fd> {
    let kind = libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
    // SAFETY: plain system call (the bare one: libc's retries without the
    // flags for kernels older than ours).
    let fd = unsafe {
        libc::syscall(
            libc::SYS_socket,
            libc::AF_NETLINK,
            kind,
            nl::NETLINK_KOBJECT_UEVENT as c_int,
        )
    };
    let fd = check(fd as c_int).map(Fd::from_raw)?;
    // SAFETY: an all-zero sockaddr_nl is valid; we then fill in family and groups.
    let mut addr: libc::sockaddr_nl = unsafe { core::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as u16;
    // The kernel's uevent multicast group (udev's "kernel" source).
    addr.nl_groups = 1;
    // SAFETY: `addr` is a valid sockaddr_nl of the size given.
    check(unsafe {
        libc::bind(
            fd.as_fd().raw(),
            (&addr as *const libc::sockaddr_nl).cast(),
            core::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    })?;
    Ok(fd)
}

/// `recv(2)` of one message from a non-blocking socket; `Ok(None)` when
/// nothing is queued.
pub fn recv(fd: impl AsFd, buf: &mut [u8]) -> SysResult<Option<usize>> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    let n = unsafe { libc::recv(fd.as_fd().raw(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    match check_size(n) {
        Ok(n) => Ok(Some(n)),
        Err(Errno::AGAIN) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Wait up to `timeout_ms` for `fd` to become readable; true if it did.
pub fn poll_readable(fd: impl AsFd, timeout_ms: i32) -> SysResult<bool> {
    let mut p = libc::pollfd {
        fd: fd.as_fd().raw(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is one valid pollfd.
    match check(unsafe { libc::poll(&mut p, 1, timeout_ms) }) {
        Ok(n) => Ok(n > 0),
        Err(Errno::INTR) => Ok(false),
        Err(e) => Err(e),
    }
}
