//! Switching from the initramfs to the prepared root: carry the kernel
//! filesystems over, make the new root `/`, and free the initramfs's memory.

use crate::error::Error;
use crate::path::PathBuf;
use crate::sys::{self, Fd, MNT_DETACH, MS_MOVE};
use crate::{say, warn};

/// Kernel filesystems that move into the new root (`/run` carries the markers).
pub const API_MOUNTS: [&[u8]; 4] = [b"/dev", b"/proc", b"/sys", b"/run"];
/// Deepest directory nesting deleted from the initramfs.
const MAX_DEPTH: u32 = 16;

/// Whether `path` is a mount point: its device differs from its parent's.
pub fn is_mountpoint(path: &[u8]) -> bool {
    let parent = match path.iter().rposition(|&b| b == b'/') {
        Some(0) => &b"/"[..],
        Some(i) => &path[..i],
        None => return false,
    };
    match (sys::stat(path), sys::stat(parent)) {
        (Ok(a), Ok(b)) => a.dev != b.dev || a.ino == b.ino,
        _ => false,
    }
}

/// `/` is an initramfs we may empty: we are PID 1, it is a ramfs or tmpfs,
/// and it holds `/init` (a root-on-tmpfs system would not); `/init` may be a
/// symlink, as the kernel follows it too.
pub fn root_is_initramfs() -> bool {
    sys::getpid() == 1
        && matches!(sys::fs_magic(b"/"), Ok(sys::TMPFS_MAGIC | sys::RAMFS_MAGIC))
        && sys::stat(b"/init").is_ok_and(|s| s.mode & sys::S_IFMT == libc::S_IFREG)
}

/// Delete everything under the open directory `dir` that lives on device
/// `dev`, never crossing into another filesystem and never following symlinks.
pub fn delete_contents(dir: &Fd, dev: u64, depth: u32) {
    let _ = sys::for_each_entry_fd(dir, |name| {
        let Ok(st) = sys::lstat_at(dir, name) else {
            return;
        };
        if st.dev != dev {
            return;
        }
        if st.is_dir() {
            if depth < MAX_DEPTH {
                if let Ok(sub) = sys::open_dir_at(dir, name) {
                    delete_contents(&sub, dev, depth + 1);
                }
            }
            let _ = sys::unlink_at(dir, name, true);
        } else {
            let _ = sys::unlink_at(dir, name, false);
        }
    });
}

/// Make `new_root` the root filesystem. The mounts in [`API_MOUNTS`] move into
/// it; `pivot_root` is used where the kernel allows it, otherwise (the initial
/// rootfs) the initramfs is emptied and the new root moved over `/`.
pub fn switch_root(new_root: &[u8]) -> Result<(), Error> {
    let root = PathBuf::from(new_root)?;
    for m in API_MOUNTS {
        if !is_mountpoint(m) {
            continue;
        }
        let target = root.join(m)?;
        let moved = sys::stat(target.as_bytes()).is_ok_and(|s| s.is_dir())
            && sys::mount(Some(m), target.as_bytes(), None, MS_MOVE, None).is_ok();
        if !moved {
            warn!(
                "ostree-prepare-root: cannot move {} to {target}; detaching it",
                crate::path::Lossy(m)
            );
            let _ = sys::umount2(m, MNT_DETACH);
        }
    }

    let old_root = sys::open(b"/", sys::O_RDONLY | sys::O_DIRECTORY, 0)
        .map_err(|e| Error::sys("open", b"/", e))?;
    let old_dev = sys::stat(b"/")
        .map_err(|e| Error::sys("stat", b"/", e))?
        .dev;
    sys::chdir(new_root).map_err(|e| Error::sys("chdir", new_root, e))?;
    match sys::pivot_root(b".", b".") {
        Ok(()) => {
            // The old root now sits on top of the new one: detach it.
            sys::umount2(b".", MNT_DETACH).map_err(|e| Error::sys("detach old root", b"/", e))?;
        }
        Err(_) => {
            // The initial rootfs cannot be pivoted (before Linux 7.0's nullfs):
            // free its memory first, then move the new root over it.
            if root_is_initramfs() {
                delete_contents(&old_root, old_dev, 0);
            }
            sys::mount(Some(b"."), b"/", None, MS_MOVE, None)
                .map_err(|e| Error::sys2("move mount", new_root, b"/", e))?;
            sys::chroot(b".").map_err(|e| Error::sys("chroot", new_root, e))?;
            say!("ostree-prepare-root: initramfs emptied, root moved over /");
        }
    }
    sys::chdir(b"/").map_err(|e| Error::sys("chdir", b"/", e))?;
    Ok(())
}
