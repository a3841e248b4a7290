//! Mounting in the right place: the overlay must land in PID 1's mount
//! namespace whatever the propagation of `/` and `/usr` (ostree#2653), and
//! unlocking must work when `/sysroot` is mounted read-only (ostree#2262).

use std::ffi::CString;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::fsutil::{ensure_dir, io_err, last_os_error, Context, Result};

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

fn mount(
    src: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> std::io::Result<()> {
    let src = src.map(|s| CString::new(s).unwrap_or_default());
    let fstype = fstype.map(|s| CString::new(s).unwrap_or_default());
    let data = data.map(|s| CString::new(s).unwrap_or_default());
    let target = cpath(target);
    let p = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is NULL or a valid C string for the duration of the call.
    let r = unsafe { libc::mount(p(&src), target.as_ptr(), p(&fstype), flags, p(&data).cast()) };
    if r == 0 {
        Ok(())
    } else {
        Err(last_os_error())
    }
}

/// Detach the mount at `path` (lazily).
pub fn detach(path: &Path) -> Result<()> {
    let c = cpath(path);
    // SAFETY: `c` is a valid C string.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
        return Err(io_err("detach", path, last_os_error()));
    }
    Ok(())
}

/// Enter PID 1's mount namespace if we are not in it already, so that the
/// overlay is seen by PID 1 and everything it starts, whatever the propagation.
pub fn enter_pid1_namespace() -> Result<()> {
    let ours = fs::metadata("/proc/self/ns/mnt").ctx("stat", Path::new("/proc/self/ns/mnt"))?;
    let pid1 = fs::metadata("/proc/1/ns/mnt").ctx("stat", Path::new("/proc/1/ns/mnt"))?;
    if ours.ino() == pid1.ino() && ours.dev() == pid1.dev() {
        return Ok(());
    }
    let f = fs::File::open("/proc/1/ns/mnt").ctx("open", Path::new("/proc/1/ns/mnt"))?;
    // SAFETY: setns on an open namespace descriptor; we are single-threaded.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNS) } != 0 {
        return Err(io_err(
            "enter the mount namespace of",
            Path::new("/proc/1/ns/mnt"),
            last_os_error(),
        ));
    }
    Ok(())
}

/// A writable view of a directory that may be on a read-only mount (such as
/// `/sysroot` with `sysroot.readonly`): a bind mount of it, made writable, in
/// a private scratch directory. Detached when dropped.
pub struct WritableView {
    pub path: PathBuf,
}

/// Scratch mount points live here (mode 0000 directory, made by prepare-root).
const SCRATCH: &str = "/run/ostree/.private";

impl WritableView {
    /// Bind `dir` at a scratch point and clear its read-only flag. Fails with
    /// EROFS when the filesystem itself is read-only.
    pub fn of(dir: &Path, name: &str) -> Result<WritableView> {
        ensure_dir(Path::new("/run/ostree"), 0o755)?;
        ensure_dir(Path::new(SCRATCH), 0o000)?;
        let path = Path::new(SCRATCH).join(name);
        ensure_dir(&path, 0o700)?;
        mount(
            Some(&dir.to_string_lossy()),
            &path,
            None,
            libc::MS_BIND,
            None,
        )
        .map_err(|e| io_err(&format!("bind mount {} at", dir.display()), &path, e))?;
        let view = WritableView { path };
        mount(
            None,
            &view.path,
            None,
            libc::MS_BIND | libc::MS_REMOUNT,
            None,
        )
        .map_err(|e| io_err("make writable", &view.path, e))?;
        // The bind is writable now; if the filesystem itself is read-only
        // (kernel `ro`, a squashfs), statvfs still says so.
        let c = cpath(&view.path);
        // SAFETY: an all-zero statvfs is a valid value.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `c` is a valid C string and `st` a valid out-pointer.
        let r = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
        if r == 0 && st.f_flag & libc::ST_RDONLY != 0 {
            let erofs = std::io::Error::from_raw_os_error(libc::EROFS);
            return Err(io_err("write to", dir, erofs));
        }
        Ok(view)
    }

    /// The same view, without the mount: for offline use on a plain directory.
    pub fn plain(dir: &Path) -> WritableView {
        WritableView {
            path: dir.to_path_buf(),
        }
    }
}

impl Drop for WritableView {
    fn drop(&mut self) {
        if self.path.starts_with(SCRATCH) {
            let _ = detach(&self.path);
            let _ = fs::remove_dir(&self.path);
        }
    }
}

/// A tmpfs for overlay data when the deployment's filesystem cannot be
/// written. It lives as long as the overlay that uses it (the overlay keeps
/// its own reference), so its mount point is detached right away.
pub fn scratch_tmpfs(name: &str) -> Result<PathBuf> {
    ensure_dir(Path::new("/run/ostree"), 0o755)?;
    ensure_dir(Path::new(SCRATCH), 0o000)?;
    let path = Path::new(SCRATCH).join(name);
    ensure_dir(&path, 0o700)?;
    // No nosuid/nodev: setuid programs in the overlay's upper layer must work.
    mount(Some("tmpfs"), &path, Some("tmpfs"), 0, Some("mode=0755"))
        .map_err(|e| io_err("mount tmpfs on", &path, e))?;
    Ok(path)
}

/// Mount an overlay over `/usr` (read-only if `readonly`).
pub fn mount_usr_overlay(lower: &Path, upper: &Path, work: &Path, readonly: bool) -> Result<()> {
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    let flags = if readonly { libc::MS_RDONLY } else { 0 };
    mount(
        Some("overlay"),
        Path::new("/usr"),
        Some("overlay"),
        flags,
        Some(&data),
    )
    .map_err(|e| io_err(&format!("mount overlay ({data}) on"), Path::new("/usr"), e))
}

/// Whether `/usr` is currently an overlay (from /proc/self/mountinfo).
pub fn usr_is_overlay() -> bool {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    // The last mount listed for /usr is the visible one.
    info.lines()
        .rfind(|l| l.split(' ').nth(4) == Some("/usr"))
        .is_some_and(|l| {
            l.split(" - ")
                .nth(1)
                .is_some_and(|t| t.starts_with("overlay "))
        })
}
