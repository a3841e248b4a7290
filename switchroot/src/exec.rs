//! Carrying out a plan, and undoing it if any step fails.
//!
//! Each step that changes the system records how to reverse itself. On
//! failure the records are replayed newest first, so SYSROOT and `/run`
//! end up as they were and the same command can simply be run again.
//!
//! Every change goes through [`Effects`]: [`RealSystem`] makes the system
//! calls; the unit tests give a model of the mount table and the files that
//! fails at any chosen call, and check that each failure is undone.

use otcore::contract;
use otcore::gvariant::{Value, VarDict};
use otcore::sys::{self, Errno, MountFlags, SysResult, UnmountFlags};

use crate::error::Error;
use crate::plan::{Marker, Plan, PlanPath, Step};

/// The changes a plan makes to the system, one method per kind of call.
pub trait Effects {
    /// Make a directory unless a real one is there (`Ok(false)`); anything
    /// else in its place is `EEXIST` (see [`otcore::fs::make_dir`]).
    fn make_dir(&mut self, path: &[u8], mode: u32) -> SysResult<bool>;
    fn rmdir(&mut self, path: &[u8]) -> SysResult<()>;
    fn mount(
        &mut self,
        source: Option<&[u8]>,
        target: &[u8],
        fstype: Option<&[u8]>,
        flags: MountFlags,
        data: Option<&[u8]>,
    ) -> SysResult<()>;
    fn umount(&mut self, target: &[u8], flags: UnmountFlags) -> SysResult<()>;
    fn is_readonly_fs(&mut self, path: &[u8]) -> SysResult<bool>;
    /// Replace the file at `path` atomically (write, fsync, rename).
    fn write_file(&mut self, path: &[u8], data: &[u8]) -> Result<(), Error>;
    fn unlink(&mut self, path: &[u8]) -> SysResult<()>;
    /// Delete unlock leftovers under `ostree/deploy` at `path`; what cannot
    /// be removed is only reported.
    fn clean_backing(&mut self, path: &[u8]);
    /// `chdir(new_root)`, `pivot_root(".", put_old)`, `chdir("/")`.
    fn pivot_root(&mut self, new_root: &[u8], put_old: &[u8]) -> Result<(), Error>;
    /// Before the first step.
    fn begin(&mut self) {}
    /// Mount a composefs ([`crate::composefs::mount::mount`]).
    #[cfg(feature = "composefs")]
    fn mount_composefs(&mut self, req: &crate::composefs::mount::Request<'_>) -> Result<(), Error>;
    /// Make systemd's volatile-root link; `Ok(false)` when nothing was made.
    #[cfg(feature = "composefs")]
    fn volatile_root(&mut self, root: &[u8], link: &[u8]) -> Result<bool, Error>;
}

/// The running system.
pub struct RealSystem;

impl Effects for RealSystem {
    fn begin(&mut self) {
        // Modes must be exactly what the plan says, whatever umask we inherited.
        sys::umask(0);
    }
    fn make_dir(&mut self, path: &[u8], mode: u32) -> SysResult<bool> {
        otcore::fs::make_dir(path, mode)
    }
    fn rmdir(&mut self, path: &[u8]) -> SysResult<()> {
        sys::rmdir(path)
    }
    fn mount(
        &mut self,
        source: Option<&[u8]>,
        target: &[u8],
        fstype: Option<&[u8]>,
        flags: MountFlags,
        data: Option<&[u8]>,
    ) -> SysResult<()> {
        // A new mount (bind, move, overlay, tmpfs) never lands through a
        // symlink: the kernel would follow it, out of the new root.
        if source.is_some() && sys::lstat(target)?.is_symlink() {
            return Err(Errno::LOOP);
        }
        sys::mount(source, target, fstype, flags, data)
    }
    fn umount(&mut self, target: &[u8], flags: UnmountFlags) -> SysResult<()> {
        sys::umount2(target, flags)
    }
    fn is_readonly_fs(&mut self, path: &[u8]) -> SysResult<bool> {
        sys::is_readonly_fs(path)
    }
    fn write_file(&mut self, path: &[u8], data: &[u8]) -> Result<(), Error> {
        Ok(otcore::fs::write_atomic(path, data, 0o644)?)
    }
    fn unlink(&mut self, path: &[u8]) -> SysResult<()> {
        sys::unlink(path)
    }
    fn clean_backing(&mut self, path: &[u8]) {
        let r = otcore::backing::clean(path);
        if !r.is_complete() {
            otcore::warn!(
                "ostree-prepare-root: warning: cannot remove all of {}: {r} (the next boot tries again)",
                otcore::path::Lossy(path)
            );
        }
    }
    #[cfg(feature = "composefs")]
    fn mount_composefs(&mut self, req: &crate::composefs::mount::Request<'_>) -> Result<(), Error> {
        // As every new mount: never through a symlink at the target.
        if sys::lstat(req.dst).is_ok_and(|st| st.is_symlink()) {
            return Err(Error::sys("mount composefs on", req.dst, Errno::LOOP));
        }
        crate::composefs::mount::mount(req)
    }
    #[cfg(feature = "composefs")]
    fn volatile_root(&mut self, root: &[u8], link: &[u8]) -> Result<bool, Error> {
        crate::composefs::mount::volatile_root_link(root, link)
    }
    fn pivot_root(&mut self, new_root: &[u8], put_old: &[u8]) -> Result<(), Error> {
        sys::chdir(new_root).map_err(|e| Error::sys("chdir", new_root, e))?;
        sys::pivot_root(b".", put_old)
            .map_err(|e| Error::sys2("pivot_root", new_root, put_old, e))?;
        sys::chdir(b"/").map_err(|e| Error::sys("chdir", b"/", e))
    }
}

/// How to reverse one completed step (its paths are the plan's).
#[derive(Debug, Clone, Copy)]
enum Undo<'a> {
    Rmdir(PlanPath<'a>),
    Unmount(PlanPath<'a>),
    SetReadonly(PlanPath<'a>, bool),
    RemountFsRo(PlanPath<'a>),
    Unlink(PlanPath<'a>),
    Move {
        src: PlanPath<'a>,
        dst: PlanPath<'a>,
    },
}

impl<'a> Undo<'a> {
    /// The path a record acts on (a move has two, and is not asked).
    fn path(&self) -> Option<PlanPath<'a>> {
        match *self {
            Undo::Rmdir(p)
            | Undo::Unmount(p)
            | Undo::SetReadonly(p, _)
            | Undo::RemountFsRo(p)
            | Undo::Unlink(p) => Some(p),
            Undo::Move { .. } => None,
        }
    }
}

type UndoLog<'a> = heapless::Vec<Undo<'a>, { crate::plan::MAX_STEPS }>;

/// Options for running a plan.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Print each step before doing it.
    pub verbose: bool,
}

/// Build-and-run: a plan that did not fit is an error like any other.
pub fn run_built(plan: Result<Plan, crate::plan::PlanTooBig>, opts: Options) -> Result<(), Error> {
    run(
        &mut RealSystem,
        &plan.map_err(|_| Error::PathTooLong)?,
        opts,
    )
}

/// Run every step of `plan`; on failure, undo what was done and return the error.
pub fn run(fx: &mut impl Effects, plan: &Plan, opts: Options) -> Result<(), Error> {
    fx.begin();
    let mut undo = UndoLog::new();
    for step in plan.iter() {
        if opts.verbose {
            otcore::say!("ostree-prepare-root: {step}");
        }
        match apply(fx, step, &undo) {
            // Past `pivot_root` the old paths no longer lead where they did:
            // nothing before it can be undone, and nothing after it is.
            Ok(None) if matches!(step, Step::PivotRoot { .. }) => undo.clear(),
            Ok(Some(u)) => {
                // The undo log has one slot per plan step, so this cannot fail.
                let _ = undo.push(u);
            }
            Ok(None) => {}
            Err(e) => {
                rollback(fx, &mut undo);
                return Err(e);
            }
        }
    }
    Ok(())
}

fn rollback(fx: &mut impl Effects, undo: &mut UndoLog<'_>) {
    while let Some(u) = undo.pop() {
        if let Undo::Move { src, dst } = u {
            move_back(fx, undo, src, dst);
        } else {
            undo_one(fx, u);
        }
    }
}

/// Move the mount at `src` back to `dst`. A move takes the mounts below
/// `src` along, so what the plan did below `src` is undone first, where it
/// is. Moved back, the mount at `src` stands in for the one the plan
/// detached from `dst`: the record that would unmount it goes.
fn move_back(fx: &mut impl Effects, undo: &mut UndoLog<'_>, src: PlanPath<'_>, dst: PlanPath<'_>) {
    let below = |p: PlanPath<'_>| {
        p.as_bytes()
            .strip_prefix(src.as_bytes())
            .is_some_and(|rest| rest.first() == Some(&b'/'))
    };
    let mut i = undo.len();
    while i > 0 {
        i -= 1;
        if undo[i].path().is_some_and(below) {
            let u = undo.remove(i);
            undo_one(fx, u);
        }
    }
    match move_mount(fx, src.as_bytes(), dst.as_bytes()) {
        Ok(()) => undo.retain(|u| !matches!(u, Undo::Unmount(p) if *p == src)),
        Err(e) => otcore::warn!("ostree-prepare-root: while undoing: {e}"),
    }
}

fn undo_one(fx: &mut impl Effects, u: Undo<'_>) {
    let r = match u {
        Undo::Rmdir(p) => fx
            .rmdir(p.as_bytes())
            .map_err(|e| Error::sys("rmdir", p.as_bytes(), e)),
        Undo::Unmount(p) => fx
            .umount(p.as_bytes(), UnmountFlags::DETACH)
            .map_err(|e| Error::sys("umount", p.as_bytes(), e)),
        Undo::SetReadonly(p, ro) => set_readonly(fx, p.as_bytes(), ro),
        Undo::RemountFsRo(p) => fx
            .mount(
                None,
                p.as_bytes(),
                None,
                MountFlags::REMOUNT | MountFlags::RDONLY | MountFlags::SILENT,
                None,
            )
            .map_err(|e| Error::sys("remount read-only", p.as_bytes(), e)),
        Undo::Unlink(p) => fx
            .unlink(p.as_bytes())
            .map_err(|e| Error::sys("unlink", p.as_bytes(), e)),
        Undo::Move { src, dst } => move_mount(fx, src.as_bytes(), dst.as_bytes()),
    };
    if let Err(e) = r {
        otcore::warn!("ostree-prepare-root: while undoing: {e}");
    }
}

fn set_readonly(fx: &mut impl Effects, path: &[u8], readonly: bool) -> Result<(), Error> {
    let (ro, op) = if readonly {
        (MountFlags::RDONLY, "remount read-only")
    } else {
        (MountFlags::EMPTY, "remount read-write")
    };
    let flags = MountFlags::BIND | MountFlags::REMOUNT | MountFlags::SILENT | ro;
    fx.mount(None, path, None, flags, None)
        .map_err(|e| Error::sys(op, path, e))
}

fn move_mount(fx: &mut impl Effects, src: &[u8], dst: &[u8]) -> Result<(), Error> {
    fx.mount(
        Some(src),
        dst,
        None,
        MountFlags::MOVE | MountFlags::SILENT,
        None,
    )
    .map_err(|e| Error::sys2("move mount", src, dst, e))
}

fn apply<'a>(
    fx: &mut impl Effects,
    step: Step<PlanPath<'a>>,
    done: &[Undo<'a>],
) -> Result<Option<Undo<'a>>, Error> {
    Ok(match step {
        // An existing directory is kept (a rerun, or made by another tool).
        Step::Mkdir { path, mode } => match fx.make_dir(path.as_bytes(), mode) {
            Ok(made) => made.then_some(Undo::Rmdir(path)),
            Err(e) => return Err(Error::sys(otcore::fs::make_dir_op(e), path.as_bytes(), e)),
        },
        Step::MakePrivate { path } => {
            let flags = MountFlags::REC | MountFlags::PRIVATE | MountFlags::SILENT;
            fx.mount(None, path.as_bytes(), None, flags, None)
                .map_err(|e| Error::sys("make mounts private under", path.as_bytes(), e))?;
            None
        }
        Step::Bind {
            src,
            dst,
            recursive,
        } => {
            let rec = if recursive {
                MountFlags::REC
            } else {
                MountFlags::EMPTY
            };
            let flags = MountFlags::BIND | rec | MountFlags::SILENT;
            fx.mount(Some(src.as_bytes()), dst.as_bytes(), None, flags, None)
                .map_err(|e| Error::sys2("bind mount", src.as_bytes(), dst.as_bytes(), e))?;
            Some(Undo::Unmount(dst))
        }
        Step::SetReadonly { path, readonly } => {
            // A mount this plan made goes away whole on failure; only a
            // mount that was there before needs its flag restored.
            let ours = done
                .iter()
                .any(|u| matches!(u, Undo::Unmount(p) if *p == path));
            let was = if ours {
                None
            } else {
                Some(
                    fx.is_readonly_fs(path.as_bytes())
                        .map_err(|e| Error::sys("statvfs", path.as_bytes(), e))?,
                )
            };
            set_readonly(fx, path.as_bytes(), readonly)?;
            was.map(|was| Undo::SetReadonly(path, was))
        }
        Step::RemountFsRw { path } => {
            fx.mount(
                None,
                path.as_bytes(),
                None,
                MountFlags::REMOUNT | MountFlags::SILENT,
                None,
            )
            .map_err(|e| Error::sys("remount filesystem read-write", path.as_bytes(), e))?;
            Some(Undo::RemountFsRo(path))
        }
        Step::Overlay {
            dst,
            lower,
            upper,
            work,
        } => {
            let data = otcore::overlay::OverlayData::new(
                lower.as_bytes(),
                upper.as_bytes(),
                work.as_bytes(),
            )?;
            fx.mount(
                Some(b"overlay"),
                dst.as_bytes(),
                Some(b"overlay"),
                MountFlags::SILENT,
                Some(data.as_bytes()),
            )
            .map_err(|e| Error::sys("mount overlay on", dst.as_bytes(), e))?;
            Some(Undo::Unmount(dst))
        }
        Step::WriteMarker { path, marker } => {
            let mut dict = VarDict::new();
            fx.write_file(path.as_bytes(), render_marker(&marker, &mut dict)?)?;
            Some(Undo::Unlink(path))
        }
        Step::Detach { path, restore_from } => {
            fx.umount(path.as_bytes(), UnmountFlags::DETACH)
                .map_err(|e| Error::sys("detach", path.as_bytes(), e))?;
            Some(Undo::Move {
                src: restore_from,
                dst: path,
            })
        }
        Step::Move { src, dst } => {
            move_mount(fx, src.as_bytes(), dst.as_bytes())?;
            Some(Undo::Move { src: dst, dst: src })
        }
        Step::Rmdir { path } => {
            fx.rmdir(path.as_bytes())
                .map_err(|e| Error::sys("rmdir", path.as_bytes(), e))?;
            None
        }
        Step::CleanBacking { path } => {
            fx.clean_backing(path.as_bytes());
            None
        }
        Step::Tmpfs { path } => {
            let flags = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::SILENT;
            fx.mount(
                Some(b"tmpfs"),
                path.as_bytes(),
                Some(b"tmpfs"),
                flags,
                Some(b"mode=0755"),
            )
            .map_err(|e| Error::sys("mount tmpfs on", path.as_bytes(), e))?;
            Some(Undo::Unmount(path))
        }
        Step::PivotRoot { new_root, put_old } => {
            fx.pivot_root(new_root.as_bytes(), put_old.as_bytes())?;
            None
        }
        Step::Unmount { path } => {
            fx.umount(path.as_bytes(), UnmountFlags::DETACH)
                .map_err(|e| Error::sys("detach", path.as_bytes(), e))?;
            None
        }
        #[cfg(feature = "composefs")]
        Step::Composefs {
            image,
            dst,
            lower,
            objects,
            upper,
            verity,
            digest,
            readonly,
        } => {
            let req = crate::composefs::mount::Request {
                image: image.as_bytes(),
                dst: dst.as_bytes(),
                lower: lower.as_bytes(),
                objects: objects.as_bytes(),
                verity,
                digest: digest.map(|d| d.as_bytes()),
                upper: upper.map(|(u, w)| (u.as_bytes(), w.as_bytes())),
                readonly,
            };
            fx.mount_composefs(&req)?;
            Some(Undo::Unmount(dst))
        }
        #[cfg(feature = "composefs")]
        Step::VolatileRoot { root, link } => fx
            .volatile_root(root.as_bytes(), link.as_bytes())?
            .then_some(Undo::Unlink(link)),
    })
}

/// Serialise a marker into `buf`, returning its bytes.
pub fn render_marker<'b>(
    marker: &Marker<PlanPath<'_>>,
    dict: &'b mut VarDict,
) -> Result<&'b [u8], Error> {
    let overflow = |_| Error::PathTooLong;
    match marker {
        Marker::Empty => dict.finish().map_err(overflow),
        Marker::OstreeBooted {
            sysroot_ro,
            device_inode,
            transient_etc,
            #[cfg(feature = "composefs")]
            composefs,
        } => {
            dict.insert(
                contract::booted_keys::BACKING_ROOT_DEVICE_INODE,
                Value::U64Pair(device_inode.0, device_inode.1),
            )
            .map_err(overflow)?;
            dict.insert(contract::booted_keys::SYSROOT_RO, Value::Bool(*sysroot_ro))
                .map_err(overflow)?;
            if let Some(t) = transient_etc {
                dict.insert(
                    contract::booted_keys::TRANSIENT_ETC,
                    Value::Str(t.as_bytes()),
                )
                .map_err(overflow)?;
            }
            // As ostree since 2024.1: the transient-root keys on every boot.
            #[cfg(feature = "composefs")]
            {
                use contract::booted_keys as k;
                let (transient, transient_ro) =
                    composefs.map_or((false, false), |c| (c.transient, c.transient_ro));
                dict.insert(k::ROOT_TRANSIENT, Value::Bool(transient))
                    .map_err(overflow)?;
                dict.insert(k::ROOT_TRANSIENT_RO, Value::Bool(transient_ro))
                    .map_err(overflow)?;
            }
            #[cfg(feature = "composefs")]
            if let Some(c) = composefs {
                use contract::booted_keys as k;
                dict.insert(k::COMPOSEFS, Value::Bool(true))
                    .map_err(overflow)?;
                dict.insert(k::COMPOSEFS_VERITY, Value::Bool(c.verity))
                    .map_err(overflow)?;
                if let Some(keypath) = c.signed {
                    dict.insert(k::COMPOSEFS_SIGNED, Value::Str(keypath.as_bytes()))
                        .map_err(overflow)?;
                }
            }
            dict.finish().map_err(overflow)
        }
    }
}

#[cfg(test)]
mod tests {
    //! Every failure is undone: a model of the mount table, the directories
    //! and the files fails at call k, for every k, every plan shape and
    //! every combination of facts, and must end as it started.

    use super::*;
    use crate::plan::{self, Facts, Hotfix};
    use otcore::deploy::Deployment;
    use otcore::path::PathBuf;
    use otcore::sys::Errno;
    use std::collections::{BTreeMap, BTreeSet};
    use std::string::{String, ToString};
    use std::vec::Vec;

    #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
    struct Mount {
        target: String,
        /// What is mounted: a filesystem and the directory of it shown here.
        source: String,
        ro: bool,
    }

    /// What the plan can change, and the failure to inject.
    #[derive(Debug, Clone, Default)]
    struct World {
        dirs: BTreeSet<String>,
        files: BTreeMap<String, Vec<u8>>,
        /// In mount order; the last at a target is the one seen.
        mounts: Vec<Mount>,
        /// Filesystems remounted read-only or read-write as a whole.
        fs_ro: BTreeMap<String, bool>,
        pivoted: bool,
        calls: usize,
        fail_at: Option<usize>,
        failed: bool,
    }

    fn text(p: &[u8]) -> String {
        String::from_utf8(p.to_vec()).unwrap()
    }

    fn under(path: &str, dir: &str) -> bool {
        path == dir || dir == "/" || path.starts_with(&std::format!("{dir}/"))
    }

    impl World {
        /// What a comparison looks at: the state, in a canonical order.
        /// A mount counts as read-only by its own flag or its filesystem's:
        /// the rollback restores what each mount lets through (a restored
        /// `ro` may come back as the mount's flag where it was the
        /// filesystem's; statvfs cannot tell them apart).
        fn state(&self) -> impl PartialEq + core::fmt::Debug {
            let mut mounts: Vec<Mount> = self
                .mounts
                .iter()
                .map(|m| Mount {
                    ro: m.ro || self.fs_ro.get(&World::filesystem(&m.source)) == Some(&true),
                    ..m.clone()
                })
                .collect();
            mounts.sort();
            (
                self.dirs.clone(),
                self.files.clone(),
                mounts,
                self.fs_ro.clone(),
                self.pivoted,
            )
        }

        /// Count a call; fail it if it is the chosen one.
        fn call(&mut self) -> SysResult<()> {
            self.calls += 1;
            if self.fail_at == Some(self.calls - 1) {
                self.failed = true;
                return Err(Errno::IO);
            }
            Ok(())
        }

        /// The mount `path` is on (the last mounted at the longest prefix).
        fn mount_of(&self, path: &str) -> Option<usize> {
            let best = self
                .mounts
                .iter()
                .filter(|m| under(path, &m.target))
                .map(|m| m.target.len())
                .max()?;
            self.mounts
                .iter()
                .rposition(|m| m.target.len() == best && under(path, &m.target))
        }

        fn top_at(&self, target: &str) -> Option<usize> {
            self.mounts.iter().rposition(|m| m.target == target)
        }

        /// What a bind of `path` shows: its filesystem and directory.
        fn source_of(&self, path: &str) -> String {
            match self.mount_of(path) {
                Some(i) => {
                    let m = &self.mounts[i];
                    let rest = &path[m.target.len().min(path.len())..];
                    std::format!("{}{}", m.source, rest.trim_start_matches('/'))
                }
                None => std::format!("rootfs{path}"),
            }
        }

        fn filesystem(source: &str) -> String {
            source.split('/').next().unwrap_or("").to_string()
        }
    }

    impl Effects for World {
        fn make_dir(&mut self, path: &[u8], _mode: u32) -> SysResult<bool> {
            self.call()?;
            Ok(self.dirs.insert(text(path)))
        }
        fn rmdir(&mut self, path: &[u8]) -> SysResult<()> {
            self.call()?;
            let p = text(path);
            if self.top_at(&p).is_some() {
                return Err(Errno::BUSY);
            }
            if !self.dirs.remove(&p) {
                return Err(Errno::NOENT);
            }
            Ok(())
        }
        fn mount(
            &mut self,
            source: Option<&[u8]>,
            target: &[u8],
            fstype: Option<&[u8]>,
            flags: MountFlags,
            data: Option<&[u8]>,
        ) -> SysResult<()> {
            self.call()?;
            let t = text(target);
            if flags.contains(MountFlags::PRIVATE) {
                return Ok(());
            }
            if flags.contains(MountFlags::REMOUNT) {
                let i = self.top_at(&t).ok_or(Errno::INVAL)?;
                let ro = flags.contains(MountFlags::RDONLY);
                if flags.contains(MountFlags::BIND) {
                    self.mounts[i].ro = ro;
                } else {
                    let fs = World::filesystem(&self.mounts[i].source);
                    self.fs_ro.insert(fs, ro);
                }
                return Ok(());
            }
            if flags.contains(MountFlags::MOVE) {
                let src = text(source.unwrap());
                self.top_at(&src).ok_or(Errno::INVAL)?;
                for m in &mut self.mounts {
                    if under(&m.target, &src) {
                        m.target = std::format!("{t}{}", &m.target[src.len()..]);
                    }
                }
                return Ok(());
            }
            if flags.contains(MountFlags::BIND) {
                let src = text(source.unwrap());
                let mut new = std::vec![Mount {
                    target: t.clone(),
                    source: self.source_of(&src),
                    ro: false
                }];
                if flags.contains(MountFlags::REC) {
                    for m in &self.mounts {
                        if m.target != src && under(&m.target, &src) {
                            let target = std::format!("{t}{}", &m.target[src.len()..]);
                            new.push(Mount {
                                target,
                                ..m.clone()
                            });
                        }
                    }
                }
                self.mounts.extend(new);
                return Ok(());
            }
            let what = std::format!(
                "{}:{}",
                text(fstype.unwrap_or(b"")),
                text(data.unwrap_or(b""))
            );
            self.mounts.push(Mount {
                target: t,
                source: what,
                ro: false,
            });
            Ok(())
        }
        fn umount(&mut self, target: &[u8], _flags: UnmountFlags) -> SysResult<()> {
            self.call()?;
            let t = text(target);
            let i = self.top_at(&t).ok_or(Errno::INVAL)?;
            self.mounts.remove(i);
            // A lazy detach takes the mounts below it along.
            let covered = self.top_at(&t).is_some();
            if !covered {
                self.mounts.retain(|m| !under(&m.target, &t));
            }
            Ok(())
        }
        fn is_readonly_fs(&mut self, path: &[u8]) -> SysResult<bool> {
            self.call()?;
            let m = &self.mounts[self.mount_of(&text(path)).ok_or(Errno::NOENT)?];
            Ok(m.ro || self.fs_ro.get(&World::filesystem(&m.source)) == Some(&true))
        }
        fn write_file(&mut self, path: &[u8], data: &[u8]) -> Result<(), Error> {
            self.call().map_err(|e| Error::sys("write", path, e))?;
            self.files.insert(text(path), data.to_vec());
            Ok(())
        }
        fn unlink(&mut self, path: &[u8]) -> SysResult<()> {
            self.call()?;
            self.files.remove(&text(path)).map(drop).ok_or(Errno::NOENT)
        }
        #[cfg(feature = "composefs")]
        fn mount_composefs(
            &mut self,
            req: &crate::composefs::mount::Request<'_>,
        ) -> Result<(), Error> {
            self.call()
                .map_err(|e| Error::sys("mount composefs on", req.dst, e))?;
            self.mounts.push(Mount {
                target: text(req.dst),
                source: "composefs/".into(),
                ro: req.readonly,
            });
            Ok(())
        }
        #[cfg(feature = "composefs")]
        fn volatile_root(&mut self, _root: &[u8], link: &[u8]) -> Result<bool, Error> {
            self.call().map_err(|e| Error::sys("symlink", link, e))?;
            self.files.insert(text(link), b"/dev/block/8:1".to_vec());
            Ok(true)
        }
        /// Removing stale data is not undone (it is stale: the next boot
        /// would remove it again), so the model leaves it out of the state.
        fn clean_backing(&mut self, _path: &[u8]) {}
        fn pivot_root(&mut self, new_root: &[u8], put_old: &[u8]) -> Result<(), Error> {
            self.call()
                .map_err(|e| Error::sys("pivot_root", new_root, e))?;
            let (new, old) = (text(new_root), text(put_old));
            let old_in_new = &old[new.len()..];
            for m in &mut self.mounts {
                m.target = if under(&m.target, &new) {
                    std::format!("/{}", m.target[new.len()..].trim_start_matches('/'))
                } else {
                    std::format!(
                        "{old_in_new}{}",
                        if m.target == "/" { "" } else { &m.target }
                    )
                };
            }
            self.pivoted = true;
            Ok(())
        }
    }

    const DEPLOYMENT: &[u8] = b"ostree/deploy/os/deploy/abc.0";

    /// Every combination of the facts that shape a plan.
    fn all_facts() -> Vec<Facts> {
        let mut all = Vec::new();
        for bits in 0u32..(1 << 9) {
            let bit = |i: u32| bits & (1 << i) != 0;
            all.push(Facts {
                sysroot: PathBuf::from(b"/sysroot").unwrap(),
                deployment: Deployment::from_rel(DEPLOYMENT).unwrap(),
                deployment_id: (2049, 42),
                readonly: bit(0),
                etc_transient: bit(1),
                hotfix: match (bit(2), bit(3)) {
                    (false, false) => Hotfix::Off,
                    (true, false) => Hotfix::On,
                    (_, true) => Hotfix::Ignored("disabled on the kernel command line"),
                },
                bind_boot: bit(4),
                mount_var: bit(5),
                var_marker_exists: bit(6),
                sysroot_fs_readonly: bit(7),
                clean_backing: bit(8),
                #[cfg(feature = "composefs")]
                composefs: None,
            });
        }
        all
    }

    /// The system as the initramfs (or the kernel, without one) leaves it.
    fn start(f: &Facts, pivot: bool) -> World {
        let mut w = World::default();
        let root = if pivot { "" } else { "/sysroot" };
        let d = std::format!("{root}/{}", text(DEPLOYMENT));
        for dir in ["/run", "/proc", "/dev"] {
            w.dirs.insert(dir.to_string());
        }
        for sub in [
            "",
            "/usr",
            "/etc",
            "/boot",
            "/sysroot",
            "/var",
            "/run",
            "/.usr-ovl-upper",
            "/.usr-ovl-work",
        ] {
            w.dirs.insert(std::format!("{d}{sub}"));
        }
        w.dirs.insert(std::format!("{root}/ostree/deploy/os/var"));
        w.dirs.insert(std::format!(
            "{root}/ostree/deploy/os/backing/abc.0/usr-transient"
        ));
        w.mounts.push(Mount {
            target: "/".into(),
            source: "initramfs/".into(),
            ro: false,
        });
        if pivot {
            w.mounts[0].source = "physroot/".into();
            w.mounts.push(Mount {
                target: "/proc".into(),
                source: "proc/".into(),
                ro: false,
            });
        } else {
            w.mounts.push(Mount {
                target: "/sysroot".into(),
                source: "physroot/".into(),
                ro: false,
            });
            // A separate /boot below SYSROOT: the recursive bind must keep it.
            w.mounts.push(Mount {
                target: "/sysroot/boot".into(),
                source: "bootfs/".into(),
                ro: false,
            });
        }
        w.fs_ro.insert("physroot".into(), f.sysroot_fs_readonly);
        if f.var_marker_exists {
            w.files
                .insert(text(contract::INITRAMFS_MOUNT_VAR), Vec::new());
        }
        w
    }

    /// Run `plan` failing at call 0, 1, 2... until it succeeds; every
    /// failure before `pivot_root` must leave the world as it started.
    fn fail_at_every_call(f: &Facts, plan: &Plan, pivot: bool) -> usize {
        let begin = start(f, pivot);
        let mut whole = begin.clone();
        run(&mut whole, plan, Options::default()).unwrap_or_else(|e| panic!("{e} in {plan:#?}"));
        assert!(whole.state() != begin.state(), "the plan changed nothing");
        for k in 0.. {
            let mut w = begin.clone();
            w.fail_at = Some(k);
            match run(&mut w, plan, Options::default()) {
                Ok(()) => {
                    assert!(!w.failed, "call {k} failed and the run succeeded");
                    assert!(w.state() == whole.state());
                    return k;
                }
                Err(_) if w.pivoted => {} // the point of no return
                Err(e) => assert!(
                    w.state() == begin.state(),
                    "failure at call {k} ({e}) not undone:\n{:#?}\nstarted as\n{:#?}\nfacts {f:?}\nplan {plan:#?}",
                    w.state(),
                    begin.state()
                ),
            }
        }
        unreachable!()
    }

    /// The composefs roots a service plan can mount: read-only with verity,
    /// signed, and transient (writable or read-only).
    #[cfg(feature = "composefs")]
    fn composefs_roots() -> Vec<crate::composefs::Root> {
        use crate::composefs::{Root, Signed};
        let signed = Signed {
            keypath: PathBuf::from(b"/etc/ostree/initramfs-root-binding.key").unwrap(),
            digest: [7; 32],
        };
        std::vec![
            Root {
                verity: true,
                signed: None,
                transient_ro: None,
            },
            Root {
                verity: true,
                signed: Some(signed),
                transient_ro: None,
            },
            Root {
                verity: false,
                signed: None,
                transient_ro: Some(false),
            },
            Root {
                verity: false,
                signed: None,
                transient_ro: Some(true),
            },
        ]
    }

    #[test]
    fn every_failure_of_the_service_plan_is_undone() {
        let mut checked = 0;
        for f in all_facts() {
            let plan = plan::service_plan(&f).unwrap();
            checked += fail_at_every_call(&f, &plan, false);
        }
        assert!(checked > 512 * 10, "{checked}");
    }

    #[cfg(feature = "composefs")]
    #[test]
    fn every_failure_of_a_composefs_plan_is_undone() {
        let mut checked = 0;
        for f in all_facts() {
            for root in composefs_roots() {
                let f = Facts {
                    composefs: Some(root),
                    ..f.clone()
                };
                let plan = plan::service_plan(&f).unwrap();
                checked += fail_at_every_call(&f, &plan, false);
            }
        }
        assert!(checked > 4 * 512 * 10, "{checked}");
    }

    #[test]
    fn every_failure_before_pivot_root_is_undone() {
        let mut checked = 0;
        for f in all_facts() {
            let plan = plan::pivot_plan(&f, &[b"/proc"]).unwrap();
            checked += fail_at_every_call(&f, &plan, true);
        }
        assert!(checked > 512 * 10, "{checked}");
    }

    #[cfg(feature = "composefs")]
    #[test]
    fn every_failure_before_pivot_root_of_a_composefs_plan_is_undone() {
        let mut checked = 0;
        for f in all_facts() {
            // A read-only root and a transient one (which keeps the tmpfs
            // it was assembled on).
            for root in composefs_roots().into_iter().step_by(2) {
                let f = Facts {
                    composefs: Some(root),
                    ..f.clone()
                };
                let plan = plan::pivot_plan(&f, &[b"/proc"]).unwrap();
                checked += fail_at_every_call(&f, &plan, true);
            }
        }
        assert!(checked > 2 * 512 * 10, "{checked}");
    }
}
