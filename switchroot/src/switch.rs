//! Switching from the initramfs to the prepared root: carry the kernel
//! filesystems over, make the new root `/`, and free the initramfs's memory.

use otcore::fs;
use otcore::path::PathBuf;
use otcore::sys::{self, Fd, MountFlags, OFlags, UnmountFlags};
use otcore::{say, warn};

use crate::error::Error;

/// Kernel filesystems that move into the new root (`/run` carries the markers).
pub const API_MOUNTS: [&[u8]; 4] = [b"/dev", b"/proc", b"/sys", b"/run"];

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

/// `/` looks like an initramfs: a ramfs or tmpfs holding `/init` (a file, or
/// a symlink to one, as the kernel follows it too); a root-on-tmpfs system
/// has no `/init`. What PID 1 mode detection and the emptying below ask.
pub fn root_is_initramfs() -> bool {
    sys::fs_magic(b"/").is_ok_and(|m| m.is_memory())
        && sys::stat(b"/init").is_ok_and(|s| s.is_file())
}

/// Free the initramfs's memory: delete everything on `/`'s filesystem (never
/// crossing into another mount, never following a symlink). Only as PID 1 on
/// an initramfs; what cannot be removed is reported and the boot goes on.
fn empty_initramfs(old_root: Fd) {
    if sys::getpid() != 1 || !root_is_initramfs() {
        return;
    }
    let r = fs::empty_dir(old_root, b"/");
    if !r.is_complete() {
        warn!("ostree-prepare-root: warning: initramfs not fully emptied: {r}");
    }
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
            && sys::mount(Some(m), target.as_bytes(), None, MountFlags::MOVE, None).is_ok();
        if !moved {
            warn!(
                "ostree-prepare-root: cannot move {} to {target}; detaching it",
                otcore::path::Lossy(m)
            );
            let _ = sys::umount2(m, UnmountFlags::DETACH);
        }
    }

    let old_root = sys::open(b"/", OFlags::RDONLY | OFlags::DIRECTORY, 0)
        .map_err(|e| Error::sys("open", b"/", e))?;
    sys::chdir(new_root).map_err(|e| Error::sys("chdir", new_root, e))?;
    match sys::pivot_root(b".", b".") {
        Ok(()) => {
            // The old root now sits on top of the new one: detach it.
            sys::umount2(b".", UnmountFlags::DETACH)
                .map_err(|e| Error::sys("detach old root", b"/", e))?;
        }
        Err(_) => {
            // The initial rootfs cannot be pivoted (before Linux 7.0's nullfs):
            // free its memory first, then move the new root over it.
            empty_initramfs(old_root);
            sys::mount(Some(b"."), b"/", None, MountFlags::MOVE, None)
                .map_err(|e| Error::sys2("move mount", new_root, b"/", e))?;
            sys::chroot(b".").map_err(|e| Error::sys("chroot", new_root, e))?;
            say!("ostree-prepare-root: initramfs emptied, root moved over /");
        }
    }
    sys::chdir(b"/").map_err(|e| Error::sys("chdir", b"/", e))?;
    Ok(())
}
