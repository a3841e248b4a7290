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
pub fn for_each_dir_entry(path: &[u8], f: impl FnMut(&[u8])) -> SysResult<()> {
    let fd = open(path, O_RDONLY | O_DIRECTORY, 0)?;
    for_each_entry_fd(&fd, f)
}

/// The entries of a NULL-terminated C string array (`argv`, `envp`), in order.
///
/// # Safety
/// `v` must be NULL or point to a NULL-terminated array of valid C strings
/// that live for the whole process (as `argv` and `envp` do).
pub unsafe fn c_strings(v: *const *const c_char) -> impl Iterator<Item = &'static core::ffi::CStr> {
    (0..).map_while(move |i| {
        if v.is_null() {
            return None;
        }
        // SAFETY: the array is NULL-terminated, so every index up to the NULL is valid.
        let p = unsafe { *v.add(i) };
        // SAFETY: each entry is a valid C string living for the whole process.
        (!p.is_null()).then(|| unsafe { core::ffi::CStr::from_ptr(p) })
    })
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
        libc::EAGAIN => "EAGAIN",
        libc::ESTALE => "ESTALE",
        libc::EUCLEAN => "EUCLEAN",
        libc::EOVERFLOW => "EOVERFLOW",
        libc::EDQUOT => "EDQUOT",
        libc::ENOTTY => "ENOTTY",
        libc::ETXTBSY => "ETXTBSY",
        libc::ENOMEDIUM => "ENOMEDIUM",
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
        *d = *s as u8;
    }
    Ok(&buf[..n])
}

/// `finit_module(2)`: load a kernel module from an open file.
pub fn finit_module(fd: &Fd, params: &[u8], flags: c_int) -> SysResult<()> {
    with_cstr(params, |p| {
        // SAFETY: `fd` is open and `p` a valid C string for the duration of the call.
        let r = unsafe { libc::syscall(libc::SYS_finit_module, fd.0, p, flags) };
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

/// Map a whole file read-only.
pub fn map_file(path: &[u8]) -> SysResult<Mapping> {
    let fd = open(path, O_RDONLY, 0)?;
    // SAFETY: an all-zero `struct stat` is a valid value.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: `fd` is open and `st` a valid out-pointer.
    check(unsafe { libc::fstat(fd.0, &mut st) })?;
    let len = st.st_size as usize;
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
            fd.0,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(errno());
    }
    Ok(Mapping { ptr, len })
}

/// Microseconds on `CLOCK_MONOTONIC` (or `CLOCK_REALTIME`).
pub fn clock_us(realtime: bool) -> u64 {
    let clock = if realtime {
        libc::CLOCK_REALTIME
    } else {
        libc::CLOCK_MONOTONIC
    };
    // SAFETY: an all-zero timespec is valid.
    let mut ts: libc::timespec = unsafe { core::mem::zeroed() };
    // SAFETY: `ts` is a valid out-pointer; these clocks always exist.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

/// Sleep for `ms` milliseconds.
pub fn sleep_ms(ms: u64) {
    let ts = libc::timespec {
        tv_sec: (ms / 1000) as _,
        tv_nsec: ((ms % 1000) * 1_000_000) as _,
    };
    // SAFETY: `ts` is valid; an interrupted sleep just returns early.
    unsafe { libc::nanosleep(&ts, core::ptr::null_mut()) };
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

pub fn chroot(path: &[u8]) -> SysResult<()> {
    with_cstr(path, |p| {
        // SAFETY: `p` is a valid C string for the duration of the call.
        let r = unsafe { libc::chroot(p) };
        check(r).map(drop)
    })
}

/// Filesystem magic of the filesystem holding `path` (`statfs(2)` `f_type`).
pub fn fs_magic(path: &[u8]) -> SysResult<i64> {
    with_cstr(path, |p| {
        // SAFETY: an all-zero `struct statfs` is a valid value.
        let mut st: libc::statfs = unsafe { core::mem::zeroed() };
        // SAFETY: `p` is a valid C string and `st` a valid out-pointer.
        check(unsafe { libc::statfs(p, &mut st) })?;
        Ok(st.f_type as i64)
    })
}

pub const TMPFS_MAGIC: i64 = 0x0102_1994;
pub const RAMFS_MAGIC: i64 = 0x8584_58f6;

/// `fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW)`.
pub fn lstat_at(dir: &Fd, name: &[u8]) -> SysResult<Stat> {
    with_cstr(name, |p| {
        // SAFETY: an all-zero `struct stat` is a valid value.
        let mut st: libc::stat = unsafe { core::mem::zeroed() };
        // SAFETY: `dir` is open, `p` a valid C string, `st` a valid out-pointer.
        check(unsafe { libc::fstatat(dir.0, p, &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
        Ok(to_stat(&st))
    })
}

/// `openat(dirfd, name, O_DIRECTORY|O_NOFOLLOW)`.
pub fn open_dir_at(dir: &Fd, name: &[u8]) -> SysResult<Fd> {
    with_cstr(name, |p| {
        let flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
        // SAFETY: `dir` is open and `p` a valid C string.
        check(unsafe { libc::openat(dir.0, p, flags) }).map(Fd)
    })
}

/// `unlinkat(2)`; `dir_entry` removes a directory.
pub fn unlink_at(dir: &Fd, name: &[u8], dir_entry: bool) -> SysResult<()> {
    let flags = if dir_entry { libc::AT_REMOVEDIR } else { 0 };
    with_cstr(name, |p| {
        // SAFETY: `dir` is open and `p` a valid C string.
        check(unsafe { libc::unlinkat(dir.0, p, flags) }).map(drop)
    })
}

/// Call `f` for every entry of the open directory `dir`.
pub fn for_each_entry_fd(dir: &Fd, mut f: impl FnMut(&[u8])) -> SysResult<()> {
    let mut buf = [0u8; 2048];
    loop {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir.0,
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

/// Whether file descriptor `fd` is open.
pub fn fd_is_open(fd: c_int) -> bool {
    // SAFETY: F_GETFD only queries the descriptor table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Open `path` on whichever of descriptors 0, 1 and 2 is closed. A process
/// started with one of them closed would otherwise get it from its next
/// `open()`, and write its messages into that file.
pub fn fill_std_fds(path: &[u8]) {
    for fd in 0..3 {
        if fd_is_open(fd) {
            continue;
        }
        if let Ok(f) = open(path, libc::O_RDWR | libc::O_NOCTTY, 0) {
            if f.0 == fd {
                leak(f);
            } else {
                let _ = dup2(&f, fd);
            }
        }
    }
}

/// `dup2(2)`.
pub fn dup2(from: &Fd, to: c_int) -> SysResult<()> {
    // SAFETY: plain syscall; `from` is open.
    check(unsafe { libc::dup2(from.0, to) }).map(drop)
}

/// Give up ownership of a descriptor (it stays open for the process).
pub fn leak(fd: Fd) -> c_int {
    let raw = fd.0;
    core::mem::forget(fd);
    raw
}

/// `execve(2)`: only returns on failure.
///
/// `argv` and `envp` must be NULL-terminated arrays of pointers to
/// NUL-terminated strings; the caller builds them from `CStr`s it owns.
pub fn execve(path: &core::ffi::CStr, argv: &[*const c_char], envp: &[*const c_char]) -> Errno {
    if argv.last() != Some(&core::ptr::null()) || envp.last() != Some(&core::ptr::null()) {
        return libc::EINVAL;
    }
    // SAFETY: `path` is a C string; `argv`/`envp` are NULL-terminated arrays of
    // valid C strings (checked terminators above; contents are the caller's CStrs).
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    errno()
}

/// What to do with the machine at the end of an emergency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    Reboot,
    PowerOff,
    Halt,
}

/// `reboot(2)` after `sync()`; returns only on failure.
pub fn reboot(how: Power) -> Errno {
    let cmd = match how {
        Power::Reboot => libc::RB_AUTOBOOT,
        Power::PowerOff => libc::RB_POWER_OFF,
        Power::Halt => libc::RB_HALT_SYSTEM,
    };
    // SAFETY: sync and reboot take no pointers.
    unsafe {
        libc::sync();
        libc::reboot(cmd);
    }
    errno()
}

/// Wait forever (PID 1 must never exit).
pub fn pause_forever() -> ! {
    loop {
        // SAFETY: pause takes no arguments.
        unsafe { libc::pause() };
    }
}

/// A socket that receives the kernel's device events (uevents).
pub fn uevent_socket() -> SysResult<Fd> {
    // SAFETY: plain syscall.
    let fd = check(unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            libc::NETLINK_KOBJECT_UEVENT,
        )
    })
    .map(Fd)?;
    // SAFETY: an all-zero sockaddr_nl is valid; we then fill in family and groups.
    let mut addr: libc::sockaddr_nl = unsafe { core::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as u16;
    addr.nl_groups = 1; // the kernel's uevent multicast group
                        // SAFETY: `addr` is a valid sockaddr_nl of the size given.
    check(unsafe {
        libc::bind(
            fd.0,
            (&addr as *const libc::sockaddr_nl).cast(),
            core::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    })?;
    Ok(fd)
}

/// Wait up to `timeout_ms` for `fd` to become readable; true if it did.
pub fn poll_readable(fd: &Fd, timeout_ms: i32) -> SysResult<bool> {
    let mut p = libc::pollfd {
        fd: fd.0,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is one valid pollfd.
    match check(unsafe { libc::poll(&mut p, 1, timeout_ms) }) {
        Ok(n) => Ok(n > 0),
        Err(libc::EINTR) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Read and discard everything queued on a non-blocking socket; returns
/// whether any message mentioned a block device being added.
pub fn drain_uevents(fd: &Fd) -> bool {
    let mut buf = [0u8; 4096];
    let mut block_added = false;
    loop {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        let n = unsafe { libc::recv(fd.0, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n <= 0 {
            return block_added;
        }
        let msg = &buf[..n as usize];
        // "add@/devices/.../block/..." followed by NUL-separated KEY=VALUE pairs.
        if msg.starts_with(b"add@") && msg.split(|&b| b == 0).any(|f| f == b"SUBSYSTEM=block") {
            block_added = true;
        }
    }
}

/// Read up to `buf.len()` bytes at `offset` of an open file.
pub fn pread(fd: &Fd, buf: &mut [u8], offset: u64) -> SysResult<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    check_size(unsafe { libc::pread(fd.0, buf.as_mut_ptr().cast(), buf.len(), offset as i64) })
}

/// `geteuid(2)`.
pub fn geteuid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// `setns(2)`: join the namespace open at `fd` (of type `nstype`, such as
/// `CLONE_NEWNS`). Only sound in a single-threaded process, as ours are.
pub fn setns(fd: &Fd, nstype: c_int) -> SysResult<()> {
    // SAFETY: plain syscall on an owned descriptor.
    check(unsafe { libc::setns(fd.0, nstype) }).map(drop)
}

/// Set the access and modification times of `path` to now (`utimensat(2)`).
pub fn touch(path: &[u8]) -> SysResult<()> {
    with_cstr(path, |p| {
        // SAFETY: `p` is a valid C string; NULL times means "now".
        check(unsafe { libc::utimensat(libc::AT_FDCWD, p, core::ptr::null(), 0) }).map(drop)
    })
}

/// `lchown(2)`: does not follow a final symlink.
pub fn lchown(path: &[u8], uid: u32, gid: u32) -> SysResult<()> {
    with_cstr(path, |p| {
        // SAFETY: `p` is a valid C string for the duration of the call.
        check(unsafe { libc::lchown(p, uid, gid) }).map(drop)
    })
}

/// `chmod(2)`.
pub fn chmod(path: &[u8], mode: u32) -> SysResult<()> {
    with_cstr(path, |p| {
        // SAFETY: `p` is a valid C string for the duration of the call.
        check(unsafe { libc::chmod(p, mode) }).map(drop)
    })
}

/// `fchmod(2)`.
pub fn fchmod(fd: &Fd, mode: u32) -> SysResult<()> {
    // SAFETY: plain syscall on an owned descriptor.
    check(unsafe { libc::fchmod(fd.0, mode) }).map(drop)
}

/// The inode flags of an open file (`FS_IOC_GETFLAGS`, as `lsattr`).
pub fn inode_flags(fd: &Fd) -> SysResult<c_int> {
    // The kernel reads and writes an int, whatever the ioctl's name says.
    let mut flags: c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one int into `flags`, a valid out-pointer.
    check(unsafe { libc::ioctl(fd.0, libc::FS_IOC_GETFLAGS, &mut flags) })?;
    Ok(flags)
}

/// Set the inode flags of an open file (`FS_IOC_SETFLAGS`, as `chattr`).
pub fn set_inode_flags(fd: &Fd, flags: c_int) -> SysResult<()> {
    // SAFETY: FS_IOC_SETFLAGS reads one int from `flags`, which outlives the call.
    check(unsafe { libc::ioctl(fd.0, libc::FS_IOC_SETFLAGS, &flags) }).map(drop)
}

/// `FS_IMMUTABLE_FL` of [`inode_flags`] (`chattr +i`).
pub const FS_IMMUTABLE_FL: c_int = 0x10;
