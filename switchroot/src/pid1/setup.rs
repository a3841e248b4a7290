//! The first phase of PID 1: kernel filesystems, standard streams and the
//! kernel log, kernel modules.

use otcore::cmdline::Cmdline;
use otcore::sys::{self, Errno, MountFlags, OFlags};
use otcore::warn;

use crate::error::Error;
use crate::modules::{self, Loader};
use crate::{plan, switch};

/// Mount `fstype` at `target` unless something is mounted there already.
pub(super) fn mount_api(fstype: &[u8], target: &[u8], data: Option<&[u8]>) -> Result<(), Error> {
    mount_point_dir(target)?;
    if switch::is_mountpoint(target) {
        return Ok(());
    }
    let flags = MountFlags::NOSUID
        | if fstype == b"devtmpfs" {
            MountFlags::EMPTY
        } else {
            MountFlags::NODEV
        };
    sys::mount(Some(fstype), target, Some(fstype), flags, data)
        .map_err(|e| Error::sys("mount", target, e))
}

/// Standard streams on the console where the kernel did not open them (it
/// opens none when the initramfs has no /dev/console), and messages to the
/// kernel log.
pub(super) fn setup_logging() {
    sys::fill_std_fds(b"/dev/console");
    sys::fill_std_fds(b"/dev/null");
    if let Ok(kmsg) = sys::open(b"/dev/kmsg", OFlags::WRONLY, 0) {
        otcore::out::use_kmsg(kmsg.leak());
    }
}

/// Load the modules the initramfs lists (a missing one is fatal: the image
/// is broken) and those on the command line (a missing one is a warning).
/// `root` holds the module tree (`/`, or the deployment's `/usr`); `list_file`
/// is the initramfs's module list (none without an initramfs).
pub(super) fn load_modules(
    cmdline: &Cmdline,
    root: &[u8],
    list_file: Option<&[u8]>,
) -> Result<u32, Error> {
    let mut list_buf = [0u8; 4096];
    let list = match list_file.map(|f| (f, sys::read_file(f, &mut list_buf))) {
        None | Some((_, Err(Errno::NOENT))) => &[][..],
        Some((_, Ok(n))) => &list_buf[..n],
        Some((f, Err(e))) => return Err(Error::sys("read", f, e)),
    };
    let mut loader: Option<Loader> = None;
    let mut result = Ok(());
    modules::requested(list, cmdline, |name, from_list| {
        if result.is_err() {
            return;
        }
        let r = match &loader {
            Some(l) => l.load(name),
            None => Loader::new(cmdline, root).and_then(|l| loader.insert(l).load(name)),
        };
        match r {
            Ok(()) => {}
            Err(e) if !from_list => warn!("ostree-prepare-root: warning: {e}"),
            Err(e) => result = Err(e),
        }
    });
    result.map(|()| loader.map_or(0, |l| l.loaded()))
}

/// Load the modules of the filesystems this boot mounts that the kernel
/// does not know yet, from `root`'s module tree: overlayfs for a hotfix, a
/// transient /etc or a composefs; EROFS and loop devices for a composefs
/// (loop only matters before Linux 6.12, so it is loaded only when there is
/// no /dev/loop-control, and its absence is reported by the mount itself).
pub(super) fn ensure_filesystems(facts: &plan::Facts, cmdline: &Cmdline, root: &[u8]) {
    #[cfg(feature = "composefs")]
    let composefs = facts.composefs.is_some();
    #[cfg(not(feature = "composefs"))]
    let composefs = false;
    let overlay = facts.hotfix == plan::Hotfix::On || facts.etc_transient || composefs;
    let wanted: [(&[u8], bool); 3] = [
        (
            b"overlay",
            overlay && !modules::filesystem_known(b"overlay"),
        ),
        (b"erofs", composefs && !modules::filesystem_known(b"erofs")),
        (
            b"loop",
            composefs && otcore::sys::lstat(b"/dev/loop-control").is_err(),
        ),
    ];
    // One loader (it maps the module tree's indexes) for all of them.
    let mut loader: Option<Loader> = None;
    for (module, _) in wanted.iter().filter(|(_, load)| *load) {
        let r = match &loader {
            Some(l) => l.load(module),
            None => Loader::new(cmdline, root).and_then(|l| loader.insert(l).load(module)),
        };
        match r {
            // Not needed where EROFS mounts files; the mount says when it is.
            Err(_) if *module == b"loop" => {}
            Err(e) => warn!("ostree-prepare-root: warning: {e}"),
            Ok(()) => {}
        }
    }
}

/// Make sure the directory `path` (a mount point) exists.
pub(super) fn mount_point_dir(path: &[u8]) -> Result<(), Error> {
    match otcore::fs::make_dir(path, 0o755) {
        Ok(_) => Ok(()),
        Err(e) => Err(Error::sys(otcore::fs::make_dir_op(e), path, e)),
    }
}
