//! Carrying out a plan, and undoing it if any step fails.
//!
//! Each step that changes the system records how to reverse itself. On
//! failure the records are replayed newest first, so SYSROOT and `/run`
//! end up as they were and the same command can simply be run again.

use crate::error::Error;
use crate::plan::{Marker, Plan, Step};
use otcore::gvariant::{Value, VarDict};
use otcore::path::PathBuf;
use otcore::sys;
use otcore::sys::{Errno, MountFlags, OFlags, UnmountFlags};

/// How to reverse one completed step.
#[derive(Debug)]
enum Undo {
    Rmdir(PathBuf),
    Unmount(PathBuf),
    SetReadonly(PathBuf, bool),
    RemountFsRo(PathBuf),
    Unlink(PathBuf),
    Move { src: PathBuf, dst: PathBuf },
}

/// Options for running a plan.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Print each step before doing it.
    pub verbose: bool,
}

/// Build-and-run: a plan that did not fit is an error like any other.
pub fn run_built(plan: Result<Plan, crate::plan::PlanTooBig>, opts: Options) -> Result<(), Error> {
    run(&plan.map_err(|_| Error::PathTooLong)?, opts)
}

/// Run every step of `plan`; on failure, undo what was done and return the error.
pub fn run(plan: &Plan, opts: Options) -> Result<(), Error> {
    // Modes must be exactly what the plan says, whatever umask we inherited.
    sys::umask(0);
    let mut undo: heapless::Vec<Undo, { crate::plan::MAX_STEPS }> = heapless::Vec::new();
    for step in plan {
        if opts.verbose {
            otcore::say!("ostree-prepare-root: {step}");
        }
        match apply(step, &undo) {
            Ok(Some(u)) => {
                // The undo log has one slot per plan step, so this cannot fail.
                let _ = undo.push(u);
            }
            Ok(None) => {}
            Err(e) => {
                rollback(&mut undo);
                return Err(e);
            }
        }
    }
    Ok(())
}

fn rollback(undo: &mut heapless::Vec<Undo, { crate::plan::MAX_STEPS }>) {
    while let Some(u) = undo.pop() {
        let r = match &u {
            Undo::Rmdir(p) => {
                sys::rmdir(p.as_bytes()).map_err(|e| Error::sys("rmdir", p.as_bytes(), e))
            }
            Undo::Unmount(p) => sys::umount2(p.as_bytes(), UnmountFlags::DETACH)
                .map_err(|e| Error::sys("umount", p.as_bytes(), e)),
            Undo::SetReadonly(p, ro) => set_readonly(p.as_bytes(), *ro),
            Undo::RemountFsRo(p) => sys::mount(
                None,
                p.as_bytes(),
                None,
                MountFlags::REMOUNT | MountFlags::RDONLY | MountFlags::SILENT,
                None,
            )
            .map_err(|e| Error::sys("remount read-only", p.as_bytes(), e)),
            Undo::Unlink(p) => {
                sys::unlink(p.as_bytes()).map_err(|e| Error::sys("unlink", p.as_bytes(), e))
            }
            Undo::Move { src, dst } => move_mount(src.as_bytes(), dst.as_bytes()),
        };
        if let Err(e) = r {
            otcore::warn!("ostree-prepare-root: while undoing: {e}");
        }
    }
}

fn set_readonly(path: &[u8], readonly: bool) -> Result<(), Error> {
    let ro = if readonly {
        MountFlags::RDONLY
    } else {
        MountFlags::EMPTY
    };
    sys::mount(
        None,
        path,
        None,
        MountFlags::BIND | MountFlags::REMOUNT | MountFlags::SILENT | ro,
        None,
    )
    .map_err(|e| {
        Error::sys(
            if readonly {
                "remount read-only"
            } else {
                "remount read-write"
            },
            path,
            e,
        )
    })
}

fn move_mount(src: &[u8], dst: &[u8]) -> Result<(), Error> {
    sys::mount(
        Some(src),
        dst,
        None,
        MountFlags::MOVE | MountFlags::SILENT,
        None,
    )
    .map_err(|e| Error::sys2("move mount", src, dst, e))
}

fn apply(step: &Step, done: &[Undo]) -> Result<Option<Undo>, Error> {
    Ok(match step {
        Step::Mkdir { path, mode } => match sys::mkdir(path.as_bytes(), *mode) {
            Ok(()) => Some(Undo::Rmdir(path.clone())),
            Err(Errno::EXIST) => match sys::lstat(path.as_bytes()) {
                // An existing directory is fine (a rerun, or made by another tool);
                // a symlink or file in its place is not.
                Ok(st) if st.is_dir() => None,
                Ok(_) => {
                    return Err(Error::sys(
                        "mkdir (exists, not a directory)",
                        path.as_bytes(),
                        Errno::EXIST,
                    ))
                }
                Err(e) => return Err(Error::sys("lstat", path.as_bytes(), e)),
            },
            Err(e) => return Err(Error::sys("mkdir", path.as_bytes(), e)),
        },
        Step::MakePrivate { path } => {
            sys::mount(
                None,
                path.as_bytes(),
                None,
                MountFlags::REC | MountFlags::PRIVATE | MountFlags::SILENT,
                None,
            )
            .map_err(|e| Error::sys("make mounts private under", path.as_bytes(), e))?;
            None
        }
        Step::Bind {
            src,
            dst,
            recursive,
        } => {
            let rec = if *recursive {
                MountFlags::REC
            } else {
                MountFlags::EMPTY
            };
            sys::mount(
                Some(src.as_bytes()),
                dst.as_bytes(),
                None,
                MountFlags::BIND | rec | MountFlags::SILENT,
                None,
            )
            .map_err(|e| Error::sys2("bind mount", src.as_bytes(), dst.as_bytes(), e))?;
            Some(Undo::Unmount(dst.clone()))
        }
        Step::SetReadonly { path, readonly } => {
            // A mount this plan made goes away whole on failure; only a
            // mount that was there before needs its flag restored.
            let ours = done
                .iter()
                .any(|u| matches!(u, Undo::Unmount(p) if p == path));
            let was = if ours {
                None
            } else {
                Some(
                    sys::is_readonly_fs(path.as_bytes())
                        .map_err(|e| Error::sys("statvfs", path.as_bytes(), e))?,
                )
            };
            set_readonly(path.as_bytes(), *readonly)?;
            was.map(|was| Undo::SetReadonly(path.clone(), was))
        }
        Step::RemountFsRw { path } => {
            sys::mount(
                None,
                path.as_bytes(),
                None,
                MountFlags::REMOUNT | MountFlags::SILENT,
                None,
            )
            .map_err(|e| Error::sys("remount filesystem read-write", path.as_bytes(), e))?;
            Some(Undo::RemountFsRo(path.clone()))
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
            sys::mount(
                Some(b"overlay"),
                dst.as_bytes(),
                Some(b"overlay"),
                MountFlags::SILENT,
                Some(data.as_bytes()),
            )
            .map_err(|e| Error::sys("mount overlay on", dst.as_bytes(), e))?;
            Some(Undo::Unmount(dst.clone()))
        }
        Step::WriteMarker { path, marker } => {
            write_marker(path.as_bytes(), marker)?;
            Some(Undo::Unlink(path.clone()))
        }
        Step::Detach { path, restore_from } => {
            sys::umount2(path.as_bytes(), UnmountFlags::DETACH)
                .map_err(|e| Error::sys("detach", path.as_bytes(), e))?;
            Some(Undo::Move {
                src: restore_from.clone(),
                dst: path.clone(),
            })
        }
        Step::Move { src, dst } => {
            move_mount(src.as_bytes(), dst.as_bytes())?;
            Some(Undo::Move {
                src: dst.clone(),
                dst: src.clone(),
            })
        }
        Step::Rmdir { path } => {
            sys::rmdir(path.as_bytes()).map_err(|e| Error::sys("rmdir", path.as_bytes(), e))?;
            None
        }
        Step::RemoveStale { path } => {
            remove_stale(path.as_bytes());
            None
        }
        Step::Tmpfs { path } => {
            let flags = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::SILENT;
            sys::mount(
                Some(b"tmpfs"),
                path.as_bytes(),
                Some(b"tmpfs"),
                flags,
                Some(b"mode=0755"),
            )
            .map_err(|e| Error::sys("mount tmpfs on", path.as_bytes(), e))?;
            Some(Undo::Unmount(path.clone()))
        }
        Step::PivotRoot { new_root, put_old } => {
            sys::chdir(new_root.as_bytes())
                .map_err(|e| Error::sys("chdir", new_root.as_bytes(), e))?;
            sys::pivot_root(b".", put_old.as_bytes()).map_err(|e| {
                Error::sys2("pivot_root", new_root.as_bytes(), put_old.as_bytes(), e)
            })?;
            sys::chdir(b"/").map_err(|e| Error::sys("chdir", b"/", e))?;
            None
        }
    })
}

/// Delete a leftover directory tree (at any depth, never following a
/// symlink, never crossing a mount); what cannot be removed is reported and
/// the boot goes on (the next boot tries again).
fn remove_stale(path: &[u8]) {
    let r = otcore::fs::remove_tree(path);
    if !r.is_complete() {
        otcore::warn!(
            "ostree-prepare-root: warning: cannot remove all of {}: {r} (the next boot tries again)",
            otcore::path::Lossy(path)
        );
    }
}

/// Serialise a marker into `buf`, returning its bytes.
pub fn render_marker<'b>(marker: &Marker, dict: &'b mut VarDict) -> Result<&'b [u8], Error> {
    let overflow = |_| Error::PathTooLong;
    match marker {
        Marker::Empty => dict.finish().map_err(overflow),
        Marker::OstreeBooted {
            sysroot_ro,
            device_inode,
            transient_etc,
        } => {
            dict.insert(
                "backing-root-device-inode",
                Value::U64Pair(device_inode.0, device_inode.1),
            )
            .map_err(overflow)?;
            dict.insert("sysroot-ro", Value::Bool(*sysroot_ro))
                .map_err(overflow)?;
            if let Some(t) = transient_etc {
                dict.insert("transient-etc", Value::Str(t.as_bytes()))
                    .map_err(overflow)?;
            }
            dict.finish().map_err(overflow)
        }
    }
}

/// Write `path` atomically: a temporary file beside it, fsync, rename.
fn write_marker(path: &[u8], marker: &Marker) -> Result<(), Error> {
    let mut dict = VarDict::new();
    let bytes = render_marker(marker, &mut dict)?;
    let mut tmp = PathBuf::from(path)?;
    tmp.push_raw(b".tmp")?;
    let write = || -> Result<(), Error> {
        let fd = sys::open(
            tmp.as_bytes(),
            OFlags::WRONLY | OFlags::CREAT | OFlags::TRUNC | OFlags::NOFOLLOW,
            0o644,
        )
        .map_err(|e| Error::sys("create", tmp.as_bytes(), e))?;
        sys::write_all(&fd, bytes).map_err(|e| Error::sys("write", tmp.as_bytes(), e))?;
        sys::fsync(&fd).map_err(|e| Error::sys("fsync", tmp.as_bytes(), e))?;
        sys::rename(tmp.as_bytes(), path)
            .map_err(|e| Error::sys2("rename", tmp.as_bytes(), path, e))
    };
    let r = write();
    if r.is_err() {
        let _ = sys::unlink(tmp.as_bytes());
    }
    r
}
