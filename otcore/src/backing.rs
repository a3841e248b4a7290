//! The deployments' backing directories, `ostree/deploy/OS/backing/CSUM.SERIAL`
//! (ostree 2025.3+): what is left there from an unlock is removed at boot.

#![forbid(unsafe_code)]

use crate::contract;
use crate::fs::{self, Removal};
use crate::path::PathBuf;
use crate::sys::{self, AsFd, BorrowedFd, EntryType, Errno, OFlags};

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK);

/// What an unlock leaves in a deployment's backing directory, none of it in
/// use before the deployment is booted: development or transient overlay
/// data, and discarded hotfixes.
pub const LEFTOVERS: [&[u8]; 3] = [
    contract::USR_TRANSIENT,
    contract::HOTFIX_DISCARDED[0],
    contract::HOTFIX_DISCARDED[1],
];

/// Whether any stateroot under `deploy_dir` (`SYSROOT/ostree/deploy`) has a
/// backing directory: most systems have none, and then there is nothing to
/// clean.
pub fn any(deploy_dir: &[u8]) -> bool {
    let Ok(deploy) = sys::open(deploy_dir, DIR_FLAGS, 0) else {
        return false;
    };
    let mut found = false;
    let _ = sys::for_each_entry(&deploy, |os| {
        found |= sys::lstat_at(&deploy, os.name).is_ok_and(|st| st.is_dir())
            && sys::lstat_at(&deploy, &join(os.name, contract::BACKING)).is_ok();
        !found
    });
    found
}

/// `a/b` as bytes, for a lookup relative to a directory (never a path
/// longer than a file name twice).
fn join(a: &[u8], b: &[u8]) -> heapless::Vec<u8, 512> {
    let mut v = heapless::Vec::new();
    let _ = v.extend_from_slice(a);
    let _ = v.push(b'/');
    let _ = v.extend_from_slice(b);
    v
}

/// Clean every stateroot's backing directory under `deploy_dir`: the
/// [`LEFTOVERS`] of every deployment, and the whole directory of a
/// deployment that no longer exists (libostree before 2025.3 leaves it when
/// it deletes the deployment). At any depth, never following a symlink
/// (`backing` itself included: a symlink there is left alone), never
/// crossing a mount; what cannot be removed is counted and the first such
/// entry named.
pub fn clean(deploy_dir: &[u8]) -> Removal {
    let mut r = Removal::default();
    let deploy = match sys::open(deploy_dir, DIR_FLAGS, 0) {
        Ok(d) => d,
        Err(Errno::NOENT) => return r,
        Err(e) => {
            r.leave("open directory", deploy_dir, e);
            return r;
        }
    };
    let shown = PathBuf::from_lossy(deploy_dir);
    let scan = sys::for_each_entry(&deploy, |os| {
        if is_dir(deploy.as_fd(), os.name, os.kind) {
            let at = shown.join(os.name).unwrap_or_else(|_| shown.clone());
            clean_stateroot(deploy.as_fd(), os.name, &at, &mut r);
        }
        true
    });
    if let Err(e) = scan {
        r.leave("read directory", deploy_dir, e);
    }
    r
}

fn is_dir(dir: BorrowedFd<'_>, name: &[u8], kind: EntryType) -> bool {
    match kind {
        EntryType::Dir => true,
        EntryType::Unknown => sys::lstat_at(dir, name).is_ok_and(|st| st.is_dir()),
        _ => false,
    }
}

/// Clean `OS/backing` under the open `deploy` directory (`shown`: `.../OS`).
fn clean_stateroot(deploy: BorrowedFd<'_>, os: &[u8], shown: &PathBuf, r: &mut Removal) {
    let Ok(stateroot) = sys::open_at(deploy, os, DIR_FLAGS, 0) else {
        return;
    };
    let backing_shown = shown
        .join(contract::BACKING)
        .unwrap_or_else(|_| shown.clone());
    let backing = match sys::open_at(&stateroot, contract::BACKING, DIR_FLAGS, 0) {
        Ok(b) => b,
        Err(Errno::NOENT) => return,
        // A symlink (ELOOP, or ENOTDIR with O_DIRECTORY) or a file.
        Err(e) => {
            r.leave(
                "open (a symlink or not a directory: left alone)",
                backing_shown.as_bytes(),
                e,
            );
            return;
        }
    };
    // Deployments that exist: `OS/deploy/CSUM.SERIAL` is a real directory.
    let deployments = sys::open_at(&stateroot, b"deploy", DIR_FLAGS, 0).ok();
    let scan = sys::for_each_entry(&backing, |d| {
        if !is_dir(backing.as_fd(), d.name, d.kind) {
            return true; // not ours: a symlink or a file is left alone
        }
        let at = backing_shown
            .join(d.name)
            .unwrap_or_else(|_| backing_shown.clone());
        let exists = deployments
            .as_ref()
            .is_some_and(|dep| sys::lstat_at(dep, d.name).is_ok_and(|st| st.is_dir()));
        if exists {
            if let Ok(dir) = sys::open_at(&backing, d.name, DIR_FLAGS, 0) {
                for name in LEFTOVERS {
                    fs::remove_tree_at(dir.as_fd(), name, at.as_bytes(), r);
                }
            }
        } else {
            fs::remove_tree_at(backing.as_fd(), d.name, at.as_bytes(), r);
        }
        true
    });
    if let Err(e) = scan {
        r.leave("read directory", backing_shown.as_bytes(), e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::path::Path;

    fn b(p: &Path) -> &[u8] {
        use std::os::unix::ffi::OsStrExt;
        p.as_os_str().as_bytes()
    }

    #[test]
    fn cleans_every_deployment_and_never_follows_links() {
        let root = std::env::temp_dir().join(std::format!("otcore-backing-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let deploy = root.join("ostree/deploy");
        let keep = root.join("outside");
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::write(keep.join("precious"), b"x").unwrap();
        // os: one deployment alive (with leftovers, and data of ostree's own
        // that stays), one gone (its backing goes whole), a symlinked entry.
        std::fs::create_dir_all(deploy.join("os/deploy/aaa.0")).unwrap();
        let alive = deploy.join("os/backing/aaa.0");
        std::fs::create_dir_all(alive.join("usr-transient/upper/deep/er")).unwrap();
        std::fs::write(alive.join("usr-transient/upper/deep/er/f"), b"x").unwrap();
        std::fs::create_dir_all(alive.join("hotfix-discarded-upper/etc")).unwrap();
        std::fs::create_dir_all(alive.join("ostree-own")).unwrap();
        symlink(&keep, alive.join("usr-transient/upper/link")).unwrap();
        std::fs::create_dir_all(deploy.join("os/backing/gone.0/usr-transient/x")).unwrap();
        symlink(&keep, deploy.join("os/backing/bbb.0")).unwrap();
        // other: its backing is a symlink to a directory outside: not followed.
        std::fs::create_dir_all(deploy.join("other/deploy")).unwrap();
        symlink(&keep, deploy.join("other/backing")).unwrap();

        assert!(any(b(&deploy)));
        let r = clean(b(&deploy));
        // The one entry left is the symlinked backing, named.
        assert_eq!(r.left, 1, "{r}");
        let first = r.first.as_ref().unwrap();
        assert!(first.path.as_bytes().ends_with(b"other/backing"), "{r}");
        assert!(!alive.join("usr-transient").exists());
        assert!(!alive.join("hotfix-discarded-upper").exists());
        assert!(
            alive.join("ostree-own").exists(),
            "data that is not an unlock's went"
        );
        assert!(!deploy.join("os/backing/gone.0").exists());
        assert!(deploy.join("os/backing/bbb.0").symlink_metadata().is_ok());
        assert!(keep.join("precious").exists(), "a symlink was followed");
        // Nothing left to remove: a second run removes nothing.
        assert_eq!(clean(b(&deploy)).removed, 0);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn nothing_to_clean() {
        let root =
            std::env::temp_dir().join(std::format!("otcore-backing-none-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("ostree/deploy/os/deploy/a.0")).unwrap();
        assert!(!any(b(&root.join("ostree/deploy"))));
        assert!(!any(b(&root.join("missing"))));
        let r = clean(b(&root.join("ostree/deploy")));
        assert!(r.is_complete() && r.removed == 0, "{r}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
