//! A development or transient unlock as a list of operations, carried out
//! with an undo record for each: a failure at any point (the runtime flag
//! cannot be written, the overlay cannot be mounted) leaves `/usr`, the
//! markers and the directories as they were.
//!
//! The flag is written before the overlay is mounted, so the last change is
//! the one a user sees; every change goes through [`Effects`], which the
//! tests replace by a model that fails at any chosen call.

use core::fmt;

use otcore::contract;
use otcore::path::PathBuf;
use otcore::sys::{self, MountFlags, UnmountFlags};

use crate::error::{Context, Result};
use crate::{fsutil, mounts};

/// Most operations of one unlock.
const MAX_OPS: usize = 16;

/// One change to the system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create a directory with exactly `mode`, owned by root, and (`label`)
    /// `/usr`'s SELinux label; an existing one is kept (and not removed on
    /// failure).
    MakeDir {
        path: PathBuf,
        mode: u32,
        label: bool,
    },
    /// Delete what an earlier unlock of this deployment left (not undone:
    /// it was stale, and the next boot would delete it too).
    RemoveStale { path: PathBuf },
    /// Write an empty runtime flag file.
    WriteFlag { path: PathBuf },
    /// Mount a tmpfs for the overlay's data (when the deployment's
    /// filesystem cannot be written).
    MountTmpfs { path: PathBuf },
    /// Mount the overlay on `/usr` with the data in `dir` (`upper`, `work`),
    /// read-only for a transient unlock, over the deployment's own `usr`
    /// directory (`deployment_usr`, on a composefs root) or the live `/usr`.
    MountOverlay {
        dir: PathBuf,
        readonly: bool,
        deployment_usr: bool,
    },
    /// Detach the tmpfs's mount point and remove it: the overlay keeps the
    /// tmpfs alive. The last operation; nothing after it can fail.
    ReleaseTmpfs { path: PathBuf },
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::MakeDir { path, mode, label } => write!(
                f,
                "mkdir {path} mode {mode:04o}{}",
                if *label { " with /usr's label" } else { "" }
            ),
            Op::RemoveStale { path } => write!(f, "remove {path} (left from before)"),
            Op::WriteFlag { path } => write!(f, "write {path}"),
            Op::MountTmpfs { path } => write!(f, "mount tmpfs {path}"),
            Op::MountOverlay {
                dir,
                readonly,
                deployment_usr,
            } => write!(
                f,
                "mount overlay /usr lower {} upper {dir}/upper work {dir}/work{}",
                if *deployment_usr {
                    "(the deployment's usr)"
                } else {
                    "/usr"
                },
                if *readonly { " ro" } else { "" }
            ),
            Op::ReleaseTmpfs { path } => write!(f, "detach {path}"),
        }
    }
}

pub type Ops = heapless::Vec<Op, MAX_OPS>;

/// Where the overlay's data goes.
pub enum Data<'a> {
    /// `DIR/usr-transient` in the deployment's backing directory, reached
    /// through `backing` (a writable view of it).
    Backing { backing: &'a PathBuf },
    /// A tmpfs mounted at `scratch`.
    Tmpfs { scratch: &'a PathBuf },
}

/// The operations of a development (or, `transient`, read-only) unlock:
/// the overlay's directories with `/usr`'s `mode`, the runtime `flag` in
/// `state_dir`, then the overlay (over the deployment's own usr if
/// `deployment_usr`, see [`Op::MountOverlay`]).
pub fn plan(
    data: Data<'_>,
    mode: u32,
    state_dir: &PathBuf,
    flag: &[u8],
    transient: bool,
    deployment_usr: bool,
) -> Result<Ops> {
    let mut ops = Ops::new();
    let mut add = |op: Op| ops.push(op).map_err(|_| crate::err!("too many operations"));
    let dir = match data {
        Data::Backing { backing } => {
            add(Op::MakeDir {
                path: PathBuf::from(fsutil::parent(backing.as_bytes()))?,
                mode: 0o700,
                label: false,
            })?;
            add(Op::MakeDir {
                path: backing.clone(),
                mode: 0o700,
                label: false,
            })?;
            let dir = backing.join(contract::USR_TRANSIENT)?;
            add(Op::RemoveStale { path: dir.clone() })?;
            add(Op::MakeDir {
                path: dir.clone(),
                mode,
                label: true,
            })?;
            dir
        }
        Data::Tmpfs { scratch } => {
            add(Op::MakeDir {
                path: scratch.clone(),
                mode: 0o700,
                label: false,
            })?;
            add(Op::MountTmpfs {
                path: scratch.clone(),
            })?;
            scratch.clone()
        }
    };
    add(Op::MakeDir {
        path: dir.join(b"upper")?,
        mode,
        label: true,
    })?;
    add(Op::MakeDir {
        path: dir.join(b"work")?,
        mode,
        label: true,
    })?;
    add(Op::MakeDir {
        path: PathBuf::from(contract::DEPLOYMENT_STATE)?,
        mode: 0o755,
        label: false,
    })?;
    add(Op::MakeDir {
        path: state_dir.clone(),
        mode: 0o755,
        label: false,
    })?;
    add(Op::WriteFlag {
        path: state_dir.join(flag)?,
    })?;
    add(Op::MountOverlay {
        dir,
        readonly: transient,
        deployment_usr,
    })?;
    if let Data::Tmpfs { scratch } = data {
        add(Op::ReleaseTmpfs {
            path: scratch.clone(),
        })?;
    }
    Ok(ops)
}

/// The changes [`run`] makes, one method per kind.
pub trait Effects {
    /// Create a directory (mode and owner exact, and `/usr`'s SELinux label
    /// if `label`); `Ok(false)` if a real directory was there already.
    fn make_dir(&mut self, path: &[u8], mode: u32, label: bool) -> Result<bool>;
    fn remove_dir(&mut self, path: &[u8]) -> Result<()>;
    fn remove_tree(&mut self, path: &[u8]) -> Result<()>;
    fn write_file(&mut self, path: &[u8]) -> Result<()>;
    fn remove_file(&mut self, path: &[u8]) -> Result<()>;
    fn mount_tmpfs(&mut self, path: &[u8]) -> Result<()>;
    /// The overlay on `/usr` (see [`Op::MountOverlay`]).
    fn mount_usr_overlay(
        &mut self,
        upper: &[u8],
        work: &[u8],
        deployment_usr: bool,
        readonly: bool,
    ) -> Result<()>;
    fn detach(&mut self, path: &[u8]) -> Result<()>;
}

/// The running system (in PID 1's mount namespace, entered before).
pub struct RealSystem<'a> {
    /// The SELinux label of the deployment's `/usr`, if it has one.
    pub usr_label: Option<fsutil::Label>,
    /// The writable view of the sysroot's `ostree/deploy`: a path under it
    /// (the backing directories) is changed through descriptors walked from
    /// it, never followed through a symlink ([`fsutil::Tree`]); other paths
    /// (the runtime flags in `/run`, the scratch tmpfs) by path.
    pub tree: Option<&'a fsutil::Tree>,
    /// The deployment's `usr` directory, opened (walked from the sysroot)
    /// before anything changed: the lower layer on a composefs root.
    pub deployment_usr: Option<&'a fsutil::Tree>,
}

impl RealSystem<'_> {
    /// `path` relative to the view, if it is under it.
    fn in_tree<'p>(&self, path: &'p [u8]) -> Option<(&fsutil::Tree, &'p [u8])> {
        let tree = self.tree?;
        let rel = path
            .strip_prefix(tree.path.as_bytes())?
            .strip_prefix(b"/")?;
        (!rel.is_empty()).then_some((tree, rel))
    }
}

impl RealSystem<'_> {
    /// Open directory `path`: walked from the view when under it, else
    /// with `O_NOFOLLOW` on its last component (the scratch tmpfs in `/run`).
    fn open_dir(&self, path: &[u8]) -> Result<sys::Fd> {
        let dir = sys::OFlags::RDONLY | sys::OFlags::DIRECTORY;
        if let Some((tree, rel)) = self.in_tree(path) {
            return tree
                .open_raw(rel, dir, 0)
                .map_err(|e| tree.fail("open directory", rel, e));
        }
        sys::open(path, dir | sys::OFlags::NOFOLLOW, 0).ctx("open directory", path)
    }
}

impl Effects for RealSystem<'_> {
    fn make_dir(&mut self, path: &[u8], mode: u32, label: bool) -> Result<bool> {
        let label = if label { self.usr_label.as_ref() } else { None };
        if let Some((tree, rel)) = self.in_tree(path) {
            return Ok(tree.ensure_dir(rel, mode, label)?.1);
        }
        let existed = fsutil::is_real_dir(path);
        fsutil::ensure_dir_labelled(path, mode, label)?;
        Ok(!existed)
    }
    fn remove_dir(&mut self, path: &[u8]) -> Result<()> {
        if let Some((tree, rel)) = self.in_tree(path) {
            return tree.remove(rel, sys::RemoveKind::Dir);
        }
        sys::rmdir(path).ctx("remove", path)
    }
    fn remove_tree(&mut self, path: &[u8]) -> Result<()> {
        if let Some((tree, rel)) = self.in_tree(path) {
            return tree.remove_tree(rel);
        }
        fsutil::remove_tree(path)
    }
    fn write_file(&mut self, path: &[u8]) -> Result<()> {
        if let Some((tree, rel)) = self.in_tree(path) {
            return tree.write_atomic(rel, b"", 0o644);
        }
        fsutil::write_atomic(path, b"", 0o644)
    }
    fn remove_file(&mut self, path: &[u8]) -> Result<()> {
        if let Some((tree, rel)) = self.in_tree(path) {
            return tree.remove(rel, sys::RemoveKind::NonDir);
        }
        sys::unlink(path).ctx("remove", path)
    }
    fn mount_tmpfs(&mut self, path: &[u8]) -> Result<()> {
        // No nosuid/nodev: setuid programs in the overlay's upper layer must work.
        sys::mount(
            Some(b"tmpfs"),
            path,
            Some(b"tmpfs"),
            MountFlags::EMPTY,
            Some(b"mode=0755"),
        )
        .ctx("mount tmpfs on", path)
    }
    fn mount_usr_overlay(
        &mut self,
        upper: &[u8],
        work: &[u8],
        deployment_usr: bool,
        readonly: bool,
    ) -> Result<()> {
        let (up, wk) = (self.open_dir(upper)?, self.open_dir(work)?);
        let lower = match (deployment_usr, self.deployment_usr) {
            (false, _) => None,
            (true, Some(usr)) => Some(usr.fd()),
            (true, None) => return Err(crate::err!("the deployment's usr was not opened")),
        };
        mounts::mount_usr_overlay(&up, &wk, lower, upper, readonly)
    }
    fn detach(&mut self, path: &[u8]) -> Result<()> {
        sys::umount2(path, UnmountFlags::DETACH).ctx("detach", path)
    }
}

/// How to reverse one completed operation.
enum Undo<'a> {
    RemoveDir(&'a PathBuf),
    RemoveFile(&'a PathBuf),
    Detach(&'a [u8]),
}

/// Carry out `ops` in order; on failure undo what was done, newest first,
/// and return the error.
pub fn run(fx: &mut impl Effects, ops: &Ops) -> Result<()> {
    let mut undo: heapless::Vec<Undo<'_>, MAX_OPS> = heapless::Vec::new();
    for op in ops {
        match apply(fx, op) {
            Ok(u) => {
                if let Some(u) = u {
                    // One slot per operation: this cannot fail.
                    let _ = undo.push(u);
                }
            }
            Err(e) => {
                while let Some(u) = undo.pop() {
                    let r = match u {
                        Undo::RemoveDir(p) => fx.remove_dir(p.as_bytes()),
                        Undo::RemoveFile(p) => fx.remove_file(p.as_bytes()),
                        Undo::Detach(p) => fx.detach(p),
                    };
                    if let Err(e) = r {
                        otcore::warn!("ostree-unlock: while undoing: {e}");
                    }
                }
                return Err(e);
            }
        }
    }
    Ok(())
}

fn apply<'a>(fx: &mut impl Effects, op: &'a Op) -> Result<Option<Undo<'a>>> {
    Ok(match op {
        Op::MakeDir { path, mode, label } => fx
            .make_dir(path.as_bytes(), *mode, *label)?
            .then_some(Undo::RemoveDir(path)),
        Op::RemoveStale { path } => {
            fx.remove_tree(path.as_bytes())?;
            None
        }
        Op::WriteFlag { path } => {
            fx.write_file(path.as_bytes())?;
            Some(Undo::RemoveFile(path))
        }
        Op::MountTmpfs { path } => {
            fx.mount_tmpfs(path.as_bytes())?;
            Some(Undo::Detach(path.as_bytes()))
        }
        Op::MountOverlay {
            dir,
            readonly,
            deployment_usr,
        } => {
            let (upper, work) = (dir.join(b"upper")?, dir.join(b"work")?);
            fx.mount_usr_overlay(
                upper.as_bytes(),
                work.as_bytes(),
                *deployment_usr,
                *readonly,
            )?;
            Some(Undo::Detach(b"/usr"))
        }
        Op::ReleaseTmpfs { path } => {
            fx.detach(path.as_bytes())?;
            // The mount point is empty now; a failure to remove it is harmless.
            if let Err(e) = fx.remove_dir(path.as_bytes()) {
                otcore::warn!("ostree-unlock: note: {e}");
            }
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use otcore::sys::Errno;

    /// A failed call in the model, an error like a real one.
    fn failed(op: &'static str, path: &[u8]) -> Error {
        Error::sys(op, path, Errno::IO)
    }
    use std::collections::BTreeSet;
    use std::string::{String, ToString};
    use std::vec::Vec;

    /// Directories, files and mounts, and the call to fail.
    #[derive(Debug, Clone, Default)]
    struct World {
        dirs: BTreeSet<String>,
        files: BTreeSet<String>,
        /// Mount points, in mount order.
        mounts: Vec<String>,
        calls: usize,
        fail_at: Option<usize>,
    }

    fn text(p: &[u8]) -> String {
        String::from_utf8(p.to_vec()).unwrap()
    }

    impl World {
        fn state(&self) -> (BTreeSet<String>, BTreeSet<String>, Vec<String>) {
            (self.dirs.clone(), self.files.clone(), self.mounts.clone())
        }
        fn call(&mut self, op: &'static str, path: &[u8]) -> Result<()> {
            self.calls += 1;
            if self.fail_at == Some(self.calls - 1) {
                return Err(failed(op, path));
            }
            Ok(())
        }
    }

    impl Effects for World {
        fn make_dir(&mut self, path: &[u8], _mode: u32, _label: bool) -> Result<bool> {
            self.call("mkdir", path)?;
            Ok(self.dirs.insert(text(path)))
        }
        fn remove_dir(&mut self, path: &[u8]) -> Result<()> {
            self.call("rmdir", path)?;
            let p = text(path);
            let busy = self.mounts.contains(&p);
            let full = self
                .dirs
                .iter()
                .chain(&self.files)
                .any(|d| d.starts_with(&std::format!("{p}/")));
            if busy || full || !self.dirs.remove(&p) {
                return Err(Error::sys("rmdir", path, Errno::NOTEMPTY));
            }
            Ok(())
        }
        fn remove_tree(&mut self, path: &[u8]) -> Result<()> {
            self.call("remove", path)?;
            let p = text(path);
            self.dirs
                .retain(|d| *d != p && !d.starts_with(&std::format!("{p}/")));
            Ok(())
        }
        fn write_file(&mut self, path: &[u8]) -> Result<()> {
            self.call("write", path)?;
            self.files.insert(text(path));
            Ok(())
        }
        fn remove_file(&mut self, path: &[u8]) -> Result<()> {
            self.call("unlink", path)?;
            self.files
                .remove(&text(path))
                .then_some(())
                .ok_or_else(|| failed("unlink", path))
        }
        fn mount_tmpfs(&mut self, path: &[u8]) -> Result<()> {
            self.call("mount tmpfs", path)?;
            self.mounts.push(text(path));
            Ok(())
        }
        fn mount_usr_overlay(
            &mut self,
            upper: &[u8],
            _work: &[u8],
            _deployment_usr: bool,
            _ro: bool,
        ) -> Result<()> {
            self.call("mount overlay", upper)?;
            self.mounts.push("/usr".into());
            Ok(())
        }
        fn detach(&mut self, path: &[u8]) -> Result<()> {
            self.call("detach", path)?;
            let p = text(path);
            let i = self
                .mounts
                .iter()
                .rposition(|m| *m == p)
                .ok_or_else(|| failed("detach", path))?;
            self.mounts.remove(i);
            // What was made on the mount goes with it (a tmpfs).
            let inside = std::format!("{p}/");
            self.dirs.retain(|d| !d.starts_with(&inside));
            self.files.retain(|f| !f.starts_with(&inside));
            Ok(())
        }
    }

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s.as_bytes()).unwrap()
    }

    /// Every failure, at every call, of both kinds of unlock, with and
    /// without directories left from an earlier unlock, is undone.
    #[test]
    fn every_failure_is_undone() {
        let backing = p("/run/ostree/.private/unlock-deploy/os/backing/abc.0");
        let scratch = p("/run/ostree/.private/usr-transient");
        let state = p("/run/ostree/deployment-state/abc.0");
        let mut checked = 0;
        for b in 0..16 {
            let (tmpfs, transient, earlier) = (b & 1 != 0, b & 2 != 0, b & 4 != 0);
            // Over the live /usr, or the deployment's usr (composefs).
            let deployment_usr = b & 8 != 0;
            let data = if tmpfs {
                Data::Tmpfs { scratch: &scratch }
            } else {
                Data::Backing { backing: &backing }
            };
            let flag = if transient {
                contract::UNLOCKED_TRANSIENT
            } else {
                contract::UNLOCKED_DEVELOPMENT
            };
            let ops = plan(data, 0o755, &state, flag, transient, deployment_usr).unwrap();
            let mut start = World::default();
            start
                .dirs
                .insert("/run/ostree/.private/unlock-deploy/os".into());
            if earlier {
                start.dirs.insert("/run/ostree/deployment-state".into());
                start
                    .dirs
                    .insert("/run/ostree/.private/unlock-deploy/os/backing".into());
                start.dirs.insert(backing.to_string());
            }
            let mut whole = start.clone();
            run(&mut whole, &ops).unwrap();
            assert!(whole.mounts.contains(&"/usr".into()));
            assert!(whole
                .files
                .iter()
                .any(|f| f.ends_with(core::str::from_utf8(flag).unwrap())));
            for k in 0.. {
                let mut w = start.clone();
                w.fail_at = Some(k);
                if run(&mut w, &ops).is_ok() {
                    assert!(k >= ops.len(), "call {k} failed unseen");
                    break;
                }
                assert_eq!(
                    w.state(),
                    start.state(),
                    "failure at call {k} not undone: {ops:#?}"
                );
                checked += 1;
            }
        }
        assert!(checked > 120, "{checked}");
    }

    #[test]
    fn the_flag_comes_before_the_overlay() {
        let state = p("/run/ostree/deployment-state/abc.0");
        let backing = p("/b/os/backing/abc.0");
        let ops = plan(
            Data::Backing { backing: &backing },
            0o755,
            &state,
            b"unlocked-development",
            false,
            false,
        )
        .unwrap();
        let shown: Vec<String> = ops.iter().map(|o| std::format!("{o}")).collect();
        let flag = shown.iter().position(|s| s.starts_with("write ")).unwrap();
        let overlay = shown
            .iter()
            .position(|s| s.starts_with("mount overlay"))
            .unwrap();
        assert_eq!(overlay, shown.len() - 1);
        assert!(flag < overlay, "{shown:#?}");
        assert!(shown[overlay].starts_with("mount overlay /usr lower /usr upper "));
    }

    #[test]
    fn composefs_lower_is_the_deployments_usr() {
        let state = p("/run/ostree/deployment-state/abc.0");
        let backing = p("/b/os/backing/abc.0");
        let ops = plan(
            Data::Backing { backing: &backing },
            0o755,
            &state,
            b"unlocked-transient",
            true,
            true,
        )
        .unwrap();
        let last = std::format!("{}", ops.last().unwrap());
        assert_eq!(
            last,
            "mount overlay /usr lower (the deployment's usr) upper /b/os/backing/abc.0/usr-transient/upper work /b/os/backing/abc.0/usr-transient/work ro"
        );
    }
}
