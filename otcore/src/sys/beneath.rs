//! Opening a path beneath a directory without following any symlink and
//! without leaving that directory: `openat2(2)` with `RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`, or, where the kernel has no
//! `openat2` (before 5.6, or a seccomp filter that refuses it), the same
//! walked one component at a time with `openat(O_NOFOLLOW)`.
//!
//! Both forms give the same answers: a symlink anywhere on the path (in the
//! middle, at the end, absolute or relative) is `ELOOP`; an absolute path
//! and any `..` component are `EXDEV`, refused before the kernel is asked;
//! an empty path is `ENOENT`. `.` components and repeated slashes are
//! skipped, and a path of only those opens the directory itself.

use core::ffi::c_int;
use core::sync::atomic::{AtomicBool, Ordering};

use linux_raw_sys::general as g;

use super::{
    check_size, lstat_at, open_at, with_cstr, AsFd, BorrowedFd, Errno, Fd, OFlags, SysResult,
};

/// Set once the kernel said it has no `openat2` (`ENOSYS`): every later
/// call walks at once.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// The `resolve` flags of every `openat2` here.
const RESOLVE: u64 =
    (g::RESOLVE_BENEATH | g::RESOLVE_NO_SYMLINKS | g::RESOLVE_NO_MAGICLINKS) as u64;

/// Open `path`, relative to `dir`, never following a symlink and never
/// leaving `dir` (see the module's documentation for the errors). `flags`
/// and `mode` are `openat`'s (`O_CLOEXEC` is always added; `O_CREAT`,
/// `O_EXCL` and `O_DIRECTORY` apply to the last component).
pub fn open_beneath(dir: impl AsFd, path: &[u8], flags: OFlags, mode: u32) -> SysResult<Fd> {
    check_relative(path)?;
    let dir = dir.as_fd();
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        match openat2_beneath(dir, path, flags, mode) {
            Err(Errno::NOSYS) => NO_OPENAT2.store(true, Ordering::Relaxed),
            // A seccomp filter may answer EPERM for a system call it does
            // not know; a real EPERM (an immutable directory) comes back
            // from the walk as well.
            Err(Errno::PERM) => {}
            r => return r,
        }
    }
    open_beneath_walk(dir, path, flags, mode)
}

/// The `openat2(2)` form of [`open_beneath`] (`path` already checked).
fn openat2_beneath(dir: BorrowedFd<'_>, path: &[u8], flags: OFlags, mode: u32) -> SysResult<Fd> {
    // Without O_NOFOLLOW a symlink at the end meets RESOLVE_NO_SYMLINKS
    // (ELOOP); with it, O_DIRECTORY would say ENOTDIR instead. An O_PATH
    // open with O_NOFOLLOW keeps it: it opens the link itself.
    let flags = if flags.contains(OFlags::PATH) {
        flags
    } else {
        flags.without(OFlags::NOFOLLOW)
    } | OFlags::CLOEXEC;
    // openat2 refuses a mode without O_CREAT.
    let mode = if flags.contains(OFlags::CREAT) {
        mode
    } else {
        0
    };
    let how = g::open_how {
        flags: flags.bits() as u32 as u64,
        mode: mode as u64,
        resolve: RESOLVE,
    };
    with_cstr(path, |p| {
        // SAFETY: `p` is a valid C string and `how` a valid `struct
        // open_how` of the size passed, both alive for the call.
        let fd = unsafe {
            libc::syscall(
                g::__NR_openat2 as libc::c_long,
                dir.raw(),
                p,
                &how as *const g::open_how,
                core::mem::size_of::<g::open_how>(),
            )
        };
        check_size(fd as isize).map(|fd| Fd::from_raw(fd as c_int))
    })
}

/// The component-by-component form of [`open_beneath`], used where
/// `openat2` is missing (public so that it can be tested everywhere): every
/// directory on the way is opened with `O_NOFOLLOW | O_DIRECTORY`, the last
/// component with `O_NOFOLLOW`.
pub fn open_beneath_walk(dir: impl AsFd, path: &[u8], flags: OFlags, mode: u32) -> SysResult<Fd> {
    check_relative(path)?;
    let dir = dir.as_fd();
    let mut parts = path
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .peekable();
    let Some(mut name) = parts.next() else {
        return open_at(dir, b".", flags.without(OFlags::CREAT | OFlags::EXCL), 0);
    };
    let mut held: Option<Fd> = None;
    loop {
        let here = match &held {
            Some(fd) => fd.as_fd(),
            None => dir,
        };
        let Some(&next) = parts.peek() else {
            let last = if flags.contains(OFlags::PATH) {
                flags
            } else {
                flags | OFlags::NOFOLLOW
            };
            return open_at(here, name, last, mode).map_err(|e| symlink_is_loop(here, name, e));
        };
        let step = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW;
        let fd = open_at(here, name, step, 0).map_err(|e| symlink_is_loop(here, name, e))?;
        held = Some(fd);
        parts.next();
        name = next;
    }
}

/// `O_NOFOLLOW | O_DIRECTORY` on a symlink is `ENOTDIR`: say `ELOOP` for a
/// symlink, as `openat2` does.
fn symlink_is_loop(dir: BorrowedFd<'_>, name: &[u8], e: Errno) -> Errno {
    if e == Errno::NOTDIR && lstat_at(dir, name).is_ok_and(|st| st.is_symlink()) {
        Errno::LOOP
    } else {
        e
    }
}

/// Refuse what would leave the directory before any lookup: an absolute
/// path, a `..` component (`EXDEV`, as `RESOLVE_BENEATH` says), an empty path.
fn check_relative(path: &[u8]) -> SysResult<()> {
    if path.is_empty() {
        return Err(Errno::NOENT);
    }
    if path[0] == b'/' || path.split(|&b| b == b'/').any(|c| c == b"..") {
        return Err(Errno::XDEV);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::symlink;

    type Opener = fn(BorrowedFd<'_>, &[u8], OFlags, u32) -> SysResult<Fd>;

    /// A tree with symlinks everywhere, and a directory outside it.
    fn tree(name: &str) -> (std::path::PathBuf, Fd) {
        let d =
            std::env::temp_dir().join(std::format!("otcore-beneath-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("root/a/b")).unwrap();
        std::fs::create_dir_all(d.join("outside")).unwrap();
        std::fs::write(d.join("root/a/b/file"), b"in").unwrap();
        std::fs::write(d.join("outside/file"), b"out").unwrap();
        symlink("b", d.join("root/a/rel")).unwrap();
        symlink(d.join("outside"), d.join("root/a/abs")).unwrap();
        symlink("file", d.join("root/a/b/last")).unwrap();
        symlink("../../../outside/file", d.join("root/a/b/up")).unwrap();
        let root = crate::sys::open(
            d.join("root").as_os_str().as_bytes(),
            OFlags::RDONLY | OFlags::DIRECTORY,
            0,
        )
        .unwrap();
        (d, root)
    }

    fn read(fd: &Fd) -> std::vec::Vec<u8> {
        let mut buf = [0u8; 16];
        let n = crate::sys::read(fd, &mut buf).unwrap();
        buf[..n].to_vec()
    }

    fn check(open: Opener, name: &str) {
        let (d, root) = tree(name);
        let r = root.as_fd();
        let rd = OFlags::RDONLY;
        let dirf = OFlags::RDONLY | OFlags::DIRECTORY;
        // A plain path works, with or without the caller's O_NOFOLLOW.
        assert_eq!(read(&open(r, b"a/b/file", rd, 0).unwrap()), b"in");
        assert_eq!(
            read(&open(r, b"./a//b/./file", rd | OFlags::NOFOLLOW, 0).unwrap()),
            b"in"
        );
        assert!(open(r, b"a/b", dirf | OFlags::NOFOLLOW, 0).is_ok());
        assert!(open(r, b".", dirf, 0).is_ok());
        // A symlink in the middle, relative or absolute.
        assert_eq!(open(r, b"a/rel/file", rd, 0).unwrap_err(), Errno::LOOP);
        assert_eq!(open(r, b"a/abs/file", rd, 0).unwrap_err(), Errno::LOOP);
        // At the end: to a file, to a directory, out of the tree.
        assert_eq!(open(r, b"a/b/last", rd, 0).unwrap_err(), Errno::LOOP);
        assert_eq!(open(r, b"a/b/up", rd, 0).unwrap_err(), Errno::LOOP);
        assert_eq!(open(r, b"a/rel", dirf, 0).unwrap_err(), Errno::LOOP);
        assert_eq!(
            open(r, b"a/abs", dirf | OFlags::NOFOLLOW, 0).unwrap_err(),
            Errno::LOOP
        );
        // `..`, even one that stays inside, and absolute paths.
        assert_eq!(open(r, b"a/../a/b/file", rd, 0).unwrap_err(), Errno::XDEV);
        assert_eq!(open(r, b"..", dirf, 0).unwrap_err(), Errno::XDEV);
        assert_eq!(open(r, b"/etc", dirf, 0).unwrap_err(), Errno::XDEV);
        assert_eq!(open(r, b"", rd, 0).unwrap_err(), Errno::NOENT);
        assert_eq!(open(r, b"a/none/x", rd, 0).unwrap_err(), Errno::NOENT);
        // Creating: beside real directories only, never through a link.
        let create = OFlags::WRONLY | OFlags::CREAT | OFlags::EXCL;
        open(r, b"a/b/new", create, 0o600).unwrap();
        assert!(d.join("root/a/b/new").is_file());
        assert_eq!(
            open(r, b"a/abs/new", create, 0o600).unwrap_err(),
            Errno::LOOP
        );
        assert_eq!(
            open(r, b"a/b/up", OFlags::WRONLY | OFlags::CREAT, 0o600).unwrap_err(),
            Errno::LOOP
        );
        assert!(!d.join("outside/new").exists());
        assert_eq!(std::fs::read(d.join("outside/file")).unwrap(), b"out");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_walk_follows_no_symlink() {
        check(|d, p, f, m| open_beneath_walk(d, p, f, m), "walk");
    }

    #[test]
    fn openat2_follows_no_symlink() {
        let (d, root) = tree("probe");
        let probe = openat2_beneath(root.as_fd(), b"a", OFlags::RDONLY, 0);
        std::fs::remove_dir_all(&d).unwrap();
        if matches!(probe, Err(Errno::NOSYS | Errno::PERM)) {
            std::eprintln!("openat2 unavailable here ({probe:?}): only the walk is tested");
            return;
        }
        check(
            |d, p, f, m| check_relative(p).and_then(|()| openat2_beneath(d, p, f, m)),
            "openat2",
        );
        check(|d, p, f, m| open_beneath(d, p, f, m), "either");
    }
}
