//! Mounting in the right place: the overlay must land in PID 1's mount
//! namespace whatever the propagation of `/` and `/usr` (ostree#2653), and
//! unlocking must work when `/sysroot` is mounted read-only (ostree#2262).

use otcore::contract;
use otcore::overlay::OverlayData;
use otcore::path::{Lossy, PathBuf};
use otcore::sys::{self, BorrowedFd, Errno, Fd, MountFlags, Namespace, OFlags, UnmountFlags};

use crate::err;
use crate::error::{Context, Error, Result};
use crate::fsutil::{ensure_dir, for_each_file_line, Tree};

/// Detach the mount at `path` (lazily).
pub fn detach(path: &[u8]) -> Result<()> {
    sys::umount2(path, UnmountFlags::DETACH).ctx("detach", path)
}

/// Enter PID 1's mount namespace if we are not in it already, so that the
/// overlay is seen by PID 1 and everything it starts, whatever the propagation.
pub fn enter_pid1_namespace() -> Result<()> {
    const OURS: &[u8] = b"/proc/self/ns/mnt";
    const PID1: &[u8] = b"/proc/1/ns/mnt";
    let ours = sys::stat(OURS).ctx("stat", OURS)?;
    let pid1 = sys::stat(PID1).ctx("stat", PID1)?;
    if ours.ino == pid1.ino && ours.dev == pid1.dev {
        return Ok(());
    }
    let fd = sys::open(PID1, OFlags::RDONLY, 0).ctx("open", PID1)?;
    sys::setns(&fd, Namespace::Mount).ctx("enter the mount namespace of", PID1)
}

/// Scratch mount points live here (mode 0000 directory, made by prepare-root).
const SCRATCH: &[u8] = contract::RUN_OSTREE_PRIVATE;

/// `SCRATCH/name`, its parents made (as a booted system has them); the
/// directory itself is the caller's to make.
pub fn scratch_path(name: &[u8]) -> Result<PathBuf> {
    ensure_dir(contract::RUN_OSTREE, 0o755)?;
    ensure_dir(SCRATCH, 0o000)?;
    Ok(PathBuf::from(SCRATCH)?.join(name)?)
}

/// `SCRATCH/name`, created (mode 0700) with its parents.
fn scratch_dir(name: &[u8]) -> Result<PathBuf> {
    let path = scratch_path(name)?;
    ensure_dir(path.as_bytes(), 0o700)?;
    Ok(path)
}

/// A writable view of a directory that may be on a read-only mount (such as
/// `/sysroot` with `sysroot.readonly`): a bind mount of it, made writable, in
/// a private scratch directory, detached when dropped; offline, the
/// directory itself. Everything is done through `tree`, opened on it.
pub struct WritableView {
    /// Where the view is, for messages and for the programs we run.
    pub path: PathBuf,
    /// The view's directory, the top of every walk in it.
    pub tree: Tree,
    /// A bind mount of ours (detached on drop), or the directory itself.
    mounted: bool,
}

impl WritableView {
    /// Bind the directory open as `dir` (its descriptor, never its path
    /// again) at a scratch point and clear its read-only flag. Fails with
    /// EROFS when the filesystem itself is read-only.
    pub fn of(dir: &Tree, name: &[u8]) -> Result<WritableView> {
        let path = scratch_dir(name)?;
        let p = path.as_bytes();
        sys::bind_mount_fd(dir.fd(), p)
            .map_err(|e| err!("bind mount {} at {}: {}", dir.path, Lossy(p), e))?;
        // Detached on every way out from here.
        struct Mounted<'a>(&'a [u8]);
        impl Drop for Mounted<'_> {
            fn drop(&mut self) {
                let _ = detach(self.0);
                let _ = sys::rmdir(self.0);
            }
        }
        let guard = Mounted(p);
        sys::mount(None, p, None, MountFlags::BIND | MountFlags::REMOUNT, None)
            .ctx("make writable", p)?;
        // The bind is writable now; if the filesystem itself is read-only
        // (kernel `ro`, a squashfs), statvfs still says so.
        if sys::is_readonly_fs(p) == Ok(true) {
            return Err(Error::sys("write to", dir.path.as_bytes(), Errno::ROFS));
        }
        let tree = Tree::open(p)?;
        core::mem::forget(guard);
        Ok(WritableView {
            path,
            tree,
            mounted: true,
        })
    }

    /// The directory itself, without a mount: for offline use.
    pub fn plain(dir: Tree) -> WritableView {
        WritableView {
            path: dir.path.clone(),
            tree: dir,
            mounted: false,
        }
    }

    /// `self.path/rel`.
    pub fn join(&self, rel: &[u8]) -> Result<PathBuf> {
        Ok(self.path.join(rel)?)
    }
}

impl Drop for WritableView {
    fn drop(&mut self) {
        if self.mounted {
            let _ = detach(self.path.as_bytes());
            let _ = sys::rmdir(self.path.as_bytes());
        }
    }
}

/// Mount an overlay over `/usr` (read-only if `readonly`) with the
/// directories open as `upper` and `work` (named `shown` in messages), on
/// top of `lower` (the live `/usr` when `None`): overlayfs gets their
/// `/proc/self/fd/N`, so the layers are exactly the directories opened
/// (walked without following symlinks), whatever their paths lead to by now.
pub fn mount_usr_overlay(
    upper: &Fd,
    work: &Fd,
    lower: Option<BorrowedFd<'_>>,
    shown: &[u8],
    readonly: bool,
) -> Result<()> {
    let (up, wk) = (sys::fd_proc_path(upper), sys::fd_proc_path(work));
    let low = lower.map(sys::fd_proc_path);
    let low = low.as_ref().map_or(&b"/usr"[..], |l| l.as_bytes());
    let data = OverlayData::new(low, up.as_bytes(), wk.as_bytes())
        .map_err(|_| err!("mount overlay on /usr: the options are longer than a page"))?;
    let flags = if readonly {
        MountFlags::RDONLY
    } else {
        MountFlags::EMPTY
    };
    sys::mount(
        Some(b"overlay"),
        b"/usr",
        Some(b"overlay"),
        flags,
        Some(data.as_bytes()),
    )
    .map_err(|e| {
        err!(
            "mount overlay ({data}; upper {}) on /usr: {}",
            Lossy(shown),
            e
        )
    })
}

/// Longest `/proc/self/mountinfo` line looked at in full (longer ones are
/// judged by their start, which holds the fields we read).
const MOUNTINFO_LINE: usize = 8192;

/// Whether `/usr` is currently an overlay (from /proc/self/mountinfo).
pub fn usr_is_overlay() -> bool {
    // The last mount listed for /usr is the visible one.
    let mut last = false;
    let r = for_each_file_line::<MOUNTINFO_LINE>(b"/proc/self/mountinfo", |line| {
        if let Some(overlay) = usr_mount(line) {
            last = overlay;
        }
    });
    r.is_ok() && last
}

/// For a mountinfo line of a mount on `/usr`: whether it is an overlay.
/// `None` for mounts elsewhere.
pub fn usr_mount(line: &[u8]) -> Option<bool> {
    if line.split(|&b| b == b' ').nth(4) != Some(b"/usr") {
        return None;
    }
    let fs = line
        .windows(3)
        .position(|w| w == b" - ")
        .map(|i| &line[i + 3..]);
    Some(fs.is_some_and(|t| t.starts_with(b"overlay ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines() {
        let bind = b"61 60 8:2 /ostree/deploy/os/deploy/abc.0/usr /usr ro,relatime shared:1 - ext4 /dev/sda2 rw";
        let ovl = b"70 61 0:40 / /usr rw,relatime - overlay overlay rw,lowerdir=/usr,upperdir=/x";
        let other = b"62 60 0:5 / /usr/local rw - overlay overlay rw";
        assert_eq!(usr_mount(bind), Some(false));
        assert_eq!(usr_mount(ovl), Some(true));
        assert_eq!(usr_mount(other), None);
        assert_eq!(usr_mount(b""), None);
    }
}
