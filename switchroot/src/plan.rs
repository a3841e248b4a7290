//! From facts to a mount plan: which mounts, in which order, and which
//! markers. Pure: no system calls, so every decision is unit-tested.
//!
//! The tree is assembled on a staging mount point under `/run`, then swapped
//! in for SYSROOT at the very end. Until that swap nothing is visible at
//! SYSROOT, so a failure can be undone completely (see `exec`).

use core::fmt;

use otcore::contract;
use otcore::deploy::Deployment;
use otcore::path::{PathBuf, TooLong};

/// Most steps a plan can hold.
pub const MAX_STEPS: usize = 32;

/// Whether `/usr` gets the persistent hotfix overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hotfix {
    /// No markers: `/usr` is a read-only bind.
    Off,
    /// Both markers are real directories: `/usr` is an overlay.
    On,
    /// Markers are present but unusable, or disabled on the kernel command
    /// line; the deployment boots pristine and we say why.
    Ignored(&'static str),
}

/// Everything the planner needs, gathered by `inputs` (or a test).
#[derive(Debug, Clone)]
pub struct Facts {
    /// The physical root as mounted (`/sysroot`).
    pub sysroot: PathBuf,
    pub deployment: Deployment,
    /// `(st_dev, st_ino)` of the deployment directory.
    pub deployment_id: (u64, u64),
    /// `sysroot.readonly`: keep the physical root read-only after boot.
    pub readonly: bool,
    pub etc_transient: bool,
    pub hotfix: Hotfix,
    /// `SYSROOT/boot/loader` is a symlink (same-partition /boot).
    pub bind_boot: bool,
    /// Bind the stateroot's var at the deployment's /var.
    pub mount_var: bool,
    /// `/run/ostree/initramfs-mount-var` exists already (else we write it
    /// when we mount /var, so ostree's generator does not mount it again).
    pub var_marker_exists: bool,
    /// The filesystem at SYSROOT is mounted read-only right now (kernel `ro`).
    pub sysroot_fs_readonly: bool,
    /// Some stateroot has a backing directory: what unlocks left there (see
    /// [`otcore::backing`]), in every deployment's, is deleted at boot.
    pub clean_backing: bool,
    /// The root is a composefs (else a bind of the deployment directory).
    #[cfg(feature = "composefs")]
    pub composefs: Option<crate::composefs::Root>,
}

/// The content of a marker file (`P`: how its paths are held).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker<P> {
    /// `/run/ostree-booted`.
    OstreeBooted {
        sysroot_ro: bool,
        device_inode: (u64, u64),
        transient_etc: Option<P>,
        #[cfg(feature = "composefs")]
        composefs: Option<BootedComposefs<P>>,
    },
    /// An empty stamp file.
    Empty,
}

/// What `/run/ostree-booted` says of a composefs root.
#[cfg(feature = "composefs")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootedComposefs<P> {
    pub verity: bool,
    /// `signed`: the key file the signature was checked with.
    pub signed: Option<P>,
    /// `[root] transient` (or `transient-ro`), and `transient-ro`.
    pub transient: bool,
    pub transient_ro: bool,
}

/// One action on the system. `P` is how its paths are held: [`Span`]s into
/// the plan's pool when stored, [`PlanPath`]s when read, [`P`]s while
/// the plan is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<P> {
    /// Create a directory with exactly `mode`; an existing directory is kept.
    Mkdir { path: P, mode: u32 },
    /// Make every mount at and under `path` private, so moves are allowed and
    /// nothing we do propagates back into other namespaces.
    MakePrivate { path: P },
    /// Bind-mount `src` at `dst`.
    Bind { src: P, dst: P, recursive: bool },
    /// Set or clear the read-only flag of the mount at `path` only.
    SetReadonly { path: P, readonly: bool },
    /// Remount the filesystem (superblock) at `path` read-write.
    RemountFsRw { path: P },
    /// Mount an overlay at `dst`.
    Overlay { dst: P, lower: P, upper: P, work: P },
    /// Write a marker file atomically (temporary file, fsync, rename).
    WriteMarker { path: P, marker: Marker<P> },
    /// Lazily detach the mount at `path`; if a later step fails, the copy
    /// at `restore_from` is moved back to `path`.
    Detach { path: P, restore_from: P },
    /// Move the mount at `src` to `dst`.
    Move { src: P, dst: P },
    /// Remove an empty directory we no longer need.
    Rmdir { path: P },
    /// Mount a fresh tmpfs (mode 0755, nosuid, nodev) at `path`.
    Tmpfs { path: P },
    /// Delete what unlocks left in the backing directories under the
    /// `ostree/deploy` at `path` ([`otcore::backing::clean`]); best effort
    /// (a read-only root keeps it until a later boot), never fails the boot.
    CleanBacking { path: P },
    /// Lazily detach the mount at `path`, for good: a step past the point
    /// of no return (nothing after `PivotRoot` is undone).
    Unmount { path: P },
    /// Make `new_root` the root directory, the old root landing at `put_old`;
    /// then `chdir("/")`. The point of no return of the no-initramfs mode.
    PivotRoot { new_root: P, put_old: P },
    /// Mount the composefs `image` at `dst` (see [`crate::composefs::mount`]):
    /// its EROFS at `lower` meanwhile, `objects` as the data layer.
    #[cfg(feature = "composefs")]
    Composefs {
        image: P,
        dst: P,
        lower: P,
        objects: P,
        /// Upper and work directories of a transient root.
        upper: Option<(P, P)>,
        verity: bool,
        /// The fs-verity digest the image must have (`signed`): 32 bytes,
        /// kept in the pool like a path.
        digest: Option<P>,
        readonly: bool,
    },
    /// Point `link` at the block device of the filesystem at `root`
    /// ([`crate::composefs::mount::volatile_root_link`]).
    #[cfg(feature = "composefs")]
    VolatileRoot { root: P, link: P },
}

/// Bytes of path text one plan holds.
pub const POOL_CAP: usize = 4096;

/// A path in a plan's pool: where it starts and how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    start: u16,
    len: u16,
}

/// A path of a plan, as its steps are read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PlanPath<'a>(&'a [u8]);

impl<'a> PlanPath<'a> {
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
}

impl fmt::Display for PlanPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        otcore::path::Lossy(self.0).fmt(f)
    }
}

impl fmt::Debug for PlanPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// An ordered list of steps, their paths kept once in one pool: small to
/// hold and to pass around, whatever the paths.
#[derive(Clone)]
pub struct Plan {
    steps: heapless::Vec<Step<Span>, MAX_STEPS>,
    pool: heapless::Vec<u8, POOL_CAP>,
}

impl Plan {
    pub const fn new() -> Plan {
        Plan {
            steps: heapless::Vec::new(),
            pool: heapless::Vec::new(),
        }
    }

    /// The steps in order, their paths resolved.
    pub fn iter(&self) -> impl Iterator<Item = Step<PlanPath<'_>>> + '_ {
        self.steps.iter().map(|s| {
            let resolved: Result<_, core::convert::Infallible> = s.map(|p| Ok(self.path(p)));
            match resolved {
                Ok(step) => step,
                Err(never) => match never {},
            }
        })
    }

    fn path(&self, span: Span) -> PlanPath<'_> {
        let start = usize::from(span.start);
        PlanPath(&self.pool[start..start + usize::from(span.len)])
    }

    /// Keep `path` in the pool (once: a path already there is shared).
    fn intern(&mut self, path: &[u8]) -> Result<Span, PlanTooBig> {
        let len = u16::try_from(path.len()).map_err(|_| PlanTooBig)?;
        if let Some(start) = self.pool.windows(path.len().max(1)).position(|w| w == path) {
            if !path.is_empty() {
                return Ok(Span {
                    start: start as u16,
                    len,
                });
            }
        }
        let start = u16::try_from(self.pool.len()).map_err(|_| PlanTooBig)?;
        self.pool.extend_from_slice(path).map_err(|_| PlanTooBig)?;
        Ok(Span { start, len })
    }
}

impl Default for Plan {
    fn default() -> Self {
        Plan::new()
    }
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<P> Marker<P> {
    fn map<Q, E>(self, mut f: impl FnMut(P) -> Result<Q, E>) -> Result<Marker<Q>, E> {
        Ok(match self {
            Marker::OstreeBooted {
                sysroot_ro,
                device_inode,
                transient_etc,
                #[cfg(feature = "composefs")]
                composefs,
            } => Marker::OstreeBooted {
                sysroot_ro,
                device_inode,
                transient_etc: transient_etc.map(&mut f).transpose()?,
                #[cfg(feature = "composefs")]
                composefs: match composefs {
                    Some(c) => Some(BootedComposefs {
                        verity: c.verity,
                        signed: c.signed.map(&mut f).transpose()?,
                        transient: c.transient,
                        transient_ro: c.transient_ro,
                    }),
                    None => None,
                },
            },
            Marker::Empty => Marker::Empty,
        })
    }
}

impl<P> Step<P> {
    /// The same step with each path turned into another form.
    pub fn map<Q, E>(self, mut f: impl FnMut(P) -> Result<Q, E>) -> Result<Step<Q>, E> {
        Ok(match self {
            Step::Mkdir { path, mode } => Step::Mkdir {
                path: f(path)?,
                mode,
            },
            Step::MakePrivate { path } => Step::MakePrivate { path: f(path)? },
            Step::Bind {
                src,
                dst,
                recursive,
            } => Step::Bind {
                src: f(src)?,
                dst: f(dst)?,
                recursive,
            },
            Step::SetReadonly { path, readonly } => Step::SetReadonly {
                path: f(path)?,
                readonly,
            },
            Step::RemountFsRw { path } => Step::RemountFsRw { path: f(path)? },
            Step::Overlay {
                dst,
                lower,
                upper,
                work,
            } => Step::Overlay {
                dst: f(dst)?,
                lower: f(lower)?,
                upper: f(upper)?,
                work: f(work)?,
            },
            Step::WriteMarker { path, marker } => Step::WriteMarker {
                path: f(path)?,
                marker: marker.map(&mut f)?,
            },
            Step::Detach { path, restore_from } => Step::Detach {
                path: f(path)?,
                restore_from: f(restore_from)?,
            },
            Step::Move { src, dst } => Step::Move {
                src: f(src)?,
                dst: f(dst)?,
            },
            Step::Rmdir { path } => Step::Rmdir { path: f(path)? },
            Step::Tmpfs { path } => Step::Tmpfs { path: f(path)? },
            Step::Unmount { path } => Step::Unmount { path: f(path)? },
            Step::CleanBacking { path } => Step::CleanBacking { path: f(path)? },
            Step::PivotRoot { new_root, put_old } => Step::PivotRoot {
                new_root: f(new_root)?,
                put_old: f(put_old)?,
            },
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
            } => Step::Composefs {
                image: f(image)?,
                dst: f(dst)?,
                lower: f(lower)?,
                objects: f(objects)?,
                upper: match upper {
                    Some((u, w)) => Some((f(u)?, f(w)?)),
                    None => None,
                },
                verity,
                digest: digest.map(&mut f).transpose()?,
                readonly,
            },
            #[cfg(feature = "composefs")]
            Step::VolatileRoot { root, link } => Step::VolatileRoot {
                root: f(root)?,
                link: f(link)?,
            },
        })
    }
}

/// Plan building failed only if a path or the plan outgrew its buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanTooBig;

impl From<TooLong> for PlanTooBig {
    fn from(_: TooLong) -> Self {
        PlanTooBig
    }
}

struct Builder {
    plan: Plan,
}

impl Builder {
    /// Keep `path` in the plan's pool.
    fn p(&mut self, path: &[u8]) -> Result<Span, PlanTooBig> {
        self.plan.intern(path)
    }
    fn push(&mut self, step: Step<Span>) -> Result<(), PlanTooBig> {
        self.plan.steps.push(step).map_err(|_| PlanTooBig)
    }
    fn mkdir(&mut self, path: &[u8], mode: u32) -> Result<(), PlanTooBig> {
        let step = Step::Mkdir {
            path: self.p(path)?,
            mode,
        };
        self.push(step)
    }
    fn bind(&mut self, src: &PathBuf, dst: &PathBuf) -> Result<(), PlanTooBig> {
        let step = Step::Bind {
            src: self.p(src.as_bytes())?,
            dst: self.p(dst.as_bytes())?,
            recursive: false,
        };
        self.push(step)
    }
    fn set_readonly(&mut self, path: &PathBuf, readonly: bool) -> Result<(), PlanTooBig> {
        let step = Step::SetReadonly {
            path: self.p(path.as_bytes())?,
            readonly,
        };
        self.push(step)
    }
}

/// Where the deployment's own directory is, beside the root being assembled.
struct Physical<'a> {
    /// The deployment directory: its `etc` and hotfix directories (the same
    /// as the root, unless the root is a composefs).
    deploy: &'a PathBuf,
    /// The mount it is on, whose read-only flag a hotfix changes.
    mount: &'a PathBuf,
    /// The root is a composefs: `/usr` is read-only already, and `/etc`
    /// is the deployment's own, bound writable.
    composefs: bool,
}

/// Mounts inside the deployment, assembled at `root`: `/boot` (from
/// `boot_src`), `/etc` and `/usr`. `run` is where `/run` is now.
/// Returns the transient /etc directory as the booted system will see it.
fn deployment_mounts(
    b: &mut Builder,
    f: &Facts,
    root: &PathBuf,
    phys: &Physical<'_>,
    boot_src: &PathBuf,
    run: &PathBuf,
) -> Result<Option<PathBuf>, PlanTooBig> {
    use contract::*;
    let usr = root.join(b"usr")?;
    let etc = root.join(b"etc")?;
    if f.bind_boot {
        b.bind(boot_src, &root.join(b"boot")?)?;
    }

    let mut transient_etc = None;
    if f.etc_transient {
        let dir = run.join(b"ostree/transient-etc")?;
        b.mkdir(dir.as_bytes(), 0o700)?;
        b.mkdir(dir.join(b"upper")?.as_bytes(), 0o755)?;
        b.mkdir(dir.join(b"work")?.as_bytes(), 0o755)?;
        let step = Step::Overlay {
            dst: b.p(etc.as_bytes())?,
            lower: b.p(root.join(b"usr/etc")?.as_bytes())?,
            upper: b.p(dir.join(b"upper")?.as_bytes())?,
            work: b.p(dir.join(b"work")?.as_bytes())?,
        };
        b.push(step)?;
        transient_etc = Some(PathBuf::from(TRANSIENT_ETC)?);
    } else if f.readonly || phys.composefs {
        // /etc must stay writable when the physical root becomes read-only,
        // and is the deployment's own, writable, over a composefs.
        b.bind(&phys.deploy.join(b"etc")?, &etc)?;
        b.set_readonly(&etc, false)?;
    }

    if f.hotfix == Hotfix::On {
        // The overlay's upper directory must be on a writable filesystem.
        // If the kernel mounted the root read-only, make the filesystem
        // writable but keep the deployment's own mount read-only, so only
        // /usr (the hotfix) is writable, as the kernel's `ro` intends.
        if f.sysroot_fs_readonly {
            let step = Step::RemountFsRw {
                path: b.p(phys.mount.as_bytes())?,
            };
            b.push(step)?;
        }
        let step = Step::Overlay {
            dst: b.p(usr.as_bytes())?,
            lower: b.p(usr.as_bytes())?,
            upper: b.p(phys.deploy.join(USR_OVL_UPPER)?.as_bytes())?,
            work: b.p(phys.deploy.join(USR_OVL_WORK)?.as_bytes())?,
        };
        b.push(step)?;
        if f.sysroot_fs_readonly {
            b.set_readonly(phys.mount, true)?;
        }
    } else if !phys.composefs {
        b.bind(&usr, &usr)?;
        b.set_readonly(&usr, true)?;
    }
    Ok(transient_etc)
}

/// The stateroot's var: kept writable on a read-only sysroot, and bound
/// at the deployment's /var when asked. `var` is where it is now.
fn var_mounts(b: &mut Builder, f: &Facts, var: &PathBuf, root: &PathBuf) -> Result<(), PlanTooBig> {
    if f.readonly {
        b.bind(var, var)?;
        b.set_readonly(var, false)?;
    }
    if f.mount_var {
        b.bind(var, &root.join(b"var")?)?;
    }
    Ok(())
}

/// The markers in `/run` (`run` is where it is now).
fn marker_steps(
    b: &mut Builder,
    f: &Facts,
    run: &PathBuf,
    transient_etc: Option<PathBuf>,
) -> Result<(), PlanTooBig> {
    let transient_etc = match transient_etc {
        Some(t) => Some(b.p(t.as_bytes())?),
        None => None,
    };
    let step = Step::WriteMarker {
        path: b.p(run.join(b"ostree-booted")?.as_bytes())?,
        marker: Marker::OstreeBooted {
            sysroot_ro: f.readonly,
            device_inode: f.deployment_id,
            transient_etc,
            #[cfg(feature = "composefs")]
            composefs: match &f.composefs {
                Some(c) => Some(BootedComposefs {
                    verity: c.verity,
                    signed: match &c.signed {
                        Some(s) => Some(b.p(s.keypath.as_bytes())?),
                        None => None,
                    },
                    transient: c.transient_ro.is_some(),
                    transient_ro: c.transient_ro == Some(true),
                }),
                None => None,
            },
        },
    };
    b.push(step)?;
    if f.readonly {
        let step = Step::WriteMarker {
            path: b.p(run.join(b"ostree-sysroot-ro.stamp")?.as_bytes())?,
            marker: Marker::Empty,
        };
        b.push(step)?;
    }
    if f.mount_var && !f.var_marker_exists {
        let step = Step::WriteMarker {
            path: b.p(run.join(b"ostree/initramfs-mount-var")?.as_bytes())?,
            marker: Marker::Empty,
        };
        b.push(step)?;
    }
    Ok(())
}

/// Delete unlock leftovers; `deploy_dir` is `ostree/deploy` as seen now.
fn stale_steps(b: &mut Builder, f: &Facts, deploy_dir: &PathBuf) -> Result<(), PlanTooBig> {
    if f.clean_backing {
        let step = Step::CleanBacking {
            path: b.p(deploy_dir.as_bytes())?,
        };
        b.push(step)?;
    }
    Ok(())
}

/// `/run/ostree` (0755) and `/run/ostree/.private` (0000), under `run`.
fn run_dirs(b: &mut Builder, run: &PathBuf) -> Result<(), PlanTooBig> {
    b.mkdir(run.join(b"ostree")?.as_bytes(), 0o755)?;
    b.mkdir(run.join(b"ostree/.private")?.as_bytes(), 0o000)
}

/// Build the plan of the service mode: turn SYSROOT (the physical root) into
/// the deployment, with the physical root at SYSROOT/sysroot.
pub fn service_plan(f: &Facts) -> Result<Plan, PlanTooBig> {
    let mut b = Builder { plan: Plan::new() };
    let sysroot = &f.sysroot;
    let deploy = sysroot.join(f.deployment.rel().as_bytes())?;
    let run = PathBuf::from(b"/run")?;
    let stage = PathBuf::from(contract::STAGING)?;
    let stage_sysroot = stage.join(b"sysroot")?;

    run_dirs(&mut b, &run)?;
    b.mkdir(contract::STAGING, 0o755)?;
    let step = Step::MakePrivate { path: b.p(b"/")? };
    b.push(step)?;
    let private = run.join(b"ostree/.private")?;
    let objects = sysroot.join(b"ostree/repo/objects")?;
    let phys = if composefs_root(&mut b, f, &deploy, &stage, &private, &objects)? {
        volatile_root(&mut b, f, sysroot.as_bytes(), &run)?;
        Physical {
            deploy: &deploy,
            mount: sysroot,
            composefs: true,
        }
    } else {
        b.bind(&deploy, &stage)?;
        Physical {
            deploy: &stage,
            mount: &stage,
            composefs: false,
        }
    };
    let transient_etc = deployment_mounts(&mut b, f, &stage, &phys, &sysroot.join(b"boot")?, &run)?;

    // The physical root, reached through the deployment. A recursive bind keeps
    // anything already mounted below SYSROOT (a separate /boot, say).
    let step = Step::Bind {
        src: b.p(sysroot.as_bytes())?,
        dst: b.p(stage_sysroot.as_bytes())?,
        recursive: true,
    };
    b.push(step)?;
    let var = stage_sysroot.join(f.deployment.stateroot_var()?.as_bytes())?;
    var_mounts(&mut b, f, &var, &stage)?;
    stale_steps(&mut b, f, &stage_sysroot.join(b"ostree/deploy")?)?;
    marker_steps(&mut b, f, &run, transient_etc)?;

    // The swap: SYSROOT's original mount goes, the staged tree takes its place.
    let step = Step::Detach {
        path: b.p(sysroot.as_bytes())?,
        restore_from: b.p(stage_sysroot.as_bytes())?,
    };
    b.push(step)?;
    let step = Step::Move {
        src: b.p(stage.as_bytes())?,
        dst: b.p(sysroot.as_bytes())?,
    };
    b.push(step)?;
    if f.readonly {
        b.set_readonly(&sysroot.join(b"sysroot")?, true)?;
    }
    let step = Step::Rmdir {
        path: b.p(contract::STAGING)?,
    };
    b.push(step)?;
    Ok(b.plan)
}

/// The composefs of the deployment at `deploy`, mounted at `dst`, if the
/// root is one (`Ok(true)`). `private` is the `/run/ostree/.private` of
/// this mount (the EROFS image's mount point, a transient root's layers);
/// `objects` the repository's objects as reached now.
#[cfg(feature = "composefs")]
fn composefs_root(
    b: &mut Builder,
    f: &Facts,
    deploy: &PathBuf,
    dst: &PathBuf,
    private: &PathBuf,
    objects: &PathBuf,
) -> Result<bool, PlanTooBig> {
    use crate::composefs::IMAGE;
    let Some(c) = &f.composefs else {
        return Ok(false);
    };
    let lower = private.join(b"cfsroot-lower")?;
    b.mkdir(lower.as_bytes(), 0o700)?;
    let upper = match c.transient_ro {
        Some(_) => {
            let dir = private.join(b"root")?;
            b.mkdir(dir.as_bytes(), 0o755)?;
            b.mkdir(dir.join(b"upper")?.as_bytes(), 0o755)?;
            b.mkdir(dir.join(b"work")?.as_bytes(), 0o700)?;
            Some((
                b.p(dir.join(b"upper")?.as_bytes())?,
                b.p(dir.join(b"work")?.as_bytes())?,
            ))
        }
        None => None,
    };
    let step = Step::Composefs {
        image: b.p(deploy.join(IMAGE)?.as_bytes())?,
        dst: b.p(dst.as_bytes())?,
        lower: b.p(lower.as_bytes())?,
        objects: b.p(objects.as_bytes())?,
        upper,
        verity: c.verity,
        digest: match &c.signed {
            Some(s) => Some(b.p(&s.digest)?),
            None => None,
        },
        readonly: c.transient_ro != Some(false),
    };
    b.push(step)?;
    Ok(true)
}

#[cfg(not(feature = "composefs"))]
fn composefs_root(
    _: &mut Builder,
    _: &Facts,
    _: &PathBuf,
    _: &PathBuf,
    _: &PathBuf,
    _: &PathBuf,
) -> Result<bool, PlanTooBig> {
    Ok(false)
}

/// systemd's link to the physical root's device, in `run`, for a composefs
/// root (`root`: the physical root as reached now).
fn volatile_root(b: &mut Builder, f: &Facts, root: &[u8], run: &PathBuf) -> Result<(), PlanTooBig> {
    if !is_composefs(f) {
        return Ok(());
    }
    #[cfg(feature = "composefs")]
    {
        let step = Step::VolatileRoot {
            root: b.p(root)?,
            link: b.p(run.join(b"systemd/volatile-root")?.as_bytes())?,
        };
        b.push(step)?;
    }
    #[cfg(not(feature = "composefs"))]
    let _ = (b, root, run);
    Ok(())
}

/// Build the plan of the no-initramfs mode (PID 1 as `init=`): the physical root
/// is `/`, as the kernel mounted it (perhaps read-only). Nothing is written to
/// it: the deployment is bound onto itself, completed in place, given a tmpfs
/// `/run` holding the markers, and `pivot_root` makes it `/` with the physical
/// root at `/sysroot`. `api_mounts` are the kernel filesystems mounted now
/// (`/proc`, `/dev`, `/sys`), moved into the new root.
pub fn pivot_plan(f: &Facts, api_mounts: &[&[u8]]) -> Result<Plan, PlanTooBig> {
    let mut b = Builder { plan: Plan::new() };
    let slash = PathBuf::from(b"/")?;
    let deploy = slash.join(f.deployment.rel().as_bytes())?;

    let step = Step::MakePrivate { path: b.p(b"/")? };
    b.push(step)?;

    // A composefs root is assembled on a tmpfs mounted over the deployment's
    // own /run (`hold`): no other place can be written before the switch.
    let hold = deploy.join(b"run")?;
    let private = hold.join(b"ostree/.private")?;
    let composefs = is_composefs(f);
    let (root, phys) = if composefs {
        let root = private.join(b"composefs")?;
        let step = Step::Tmpfs {
            path: b.p(hold.as_bytes())?,
        };
        b.push(step)?;
        run_dirs(&mut b, &hold)?;
        b.mkdir(root.as_bytes(), 0o755)?;
        let objects = PathBuf::from(b"/ostree/repo/objects")?;
        composefs_root(&mut b, f, &deploy, &root, &private, &objects)?;
        let phys = Physical {
            deploy: &deploy,
            mount: &slash,
            composefs: true,
        };
        (root, phys)
    } else {
        b.bind(&deploy, &deploy)?;
        let phys = Physical {
            deploy: &deploy,
            mount: &deploy,
            composefs: false,
        };
        (deploy.clone(), phys)
    };
    let run = root.join(b"run")?;
    let step = Step::Tmpfs {
        path: b.p(run.as_bytes())?,
    };
    b.push(step)?;
    run_dirs(&mut b, &run)?;
    let transient_etc =
        deployment_mounts(&mut b, f, &root, &phys, &PathBuf::from(b"/boot")?, &run)?;
    let var = slash.join(f.deployment.stateroot_var()?.as_bytes())?;
    var_mounts(&mut b, f, &var, &root)?;
    stale_steps(&mut b, f, &PathBuf::from(b"/ostree/deploy")?)?;
    marker_steps(&mut b, f, &run, transient_etc)?;
    volatile_root(&mut b, f, b"/", &run)?;
    for m in api_mounts {
        let step = Step::Move {
            src: b.p(m)?,
            dst: b.p(root.join(m)?.as_bytes())?,
        };
        b.push(step)?;
    }
    let step = Step::PivotRoot {
        new_root: b.p(root.as_bytes())?,
        put_old: b.p(root.join(b"sysroot")?.as_bytes())?,
    };
    b.push(step)?;
    if f.readonly {
        b.set_readonly(&PathBuf::from(b"/sysroot")?, true)?;
    }
    // The tmpfs the composefs was assembled on goes, unless a transient
    // root keeps its layers there.
    if composefs && !transient_root(f) {
        let step = Step::Unmount {
            path: b.p(PathBuf::from(b"/sysroot")?
                .join(hold.as_bytes())?
                .as_bytes())?,
        };
        b.push(step)?;
    }
    Ok(b.plan)
}

fn is_composefs(f: &Facts) -> bool {
    #[cfg(feature = "composefs")]
    return f.composefs.is_some();
    #[cfg(not(feature = "composefs"))]
    {
        let _ = f;
        false
    }
}

fn transient_root(f: &Facts) -> bool {
    #[cfg(feature = "composefs")]
    return f
        .composefs
        .as_ref()
        .is_some_and(|c| c.transient_ro.is_some());
    #[cfg(not(feature = "composefs"))]
    {
        let _ = f;
        false
    }
}

impl fmt::Display for Step<PlanPath<'_>> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Mkdir { path, mode } => write!(f, "mkdir {path} mode {mode:04o} (existing kept)"),
            Step::MakePrivate { path } => write!(f, "make-rprivate {path}"),
            Step::Bind {
                src,
                dst,
                recursive,
            } => {
                write!(
                    f,
                    "bind{} {src} -> {dst}",
                    if *recursive { " --recursive" } else { "" }
                )
            }
            Step::SetReadonly { path, readonly } => {
                write!(
                    f,
                    "remount-bind {path} {}",
                    if *readonly { "ro" } else { "rw" }
                )
            }
            Step::RemountFsRw { path } => write!(f, "remount-fs {path} rw"),
            Step::Overlay {
                dst,
                lower,
                upper,
                work,
            } => match otcore::overlay::OverlayData::new(
                lower.as_bytes(),
                upper.as_bytes(),
                work.as_bytes(),
            ) {
                Ok(data) => write!(f, "overlay {dst} {data}"),
                Err(TooLong) => write!(f, "overlay {dst} (options longer than a page)"),
            },
            Step::WriteMarker {
                path,
                marker: Marker::Empty,
            } => write!(f, "write {path} (empty)"),
            Step::WriteMarker {
                path,
                marker:
                    Marker::OstreeBooted {
                        sysroot_ro,
                        device_inode,
                        transient_etc,
                        #[cfg(feature = "composefs")]
                        composefs,
                    },
            } => {
                write!(
                    f,
                    "write {path} a{{sv}} sysroot-ro={sysroot_ro} backing-root-device-inode=({},{})",
                    device_inode.0, device_inode.1
                )?;
                if let Some(t) = transient_etc {
                    write!(f, " transient-etc={t}")?;
                }
                #[cfg(feature = "composefs")]
                if let Some(c) = composefs {
                    write!(
                        f,
                        " composefs=true composefs.verity={} root.transient={} root.transient-ro={}",
                        c.verity, c.transient, c.transient_ro
                    )?;
                    if let Some(k) = c.signed {
                        write!(f, " composefs.signed={k}")?;
                    }
                }
                Ok(())
            }
            Step::Detach { path, restore_from } => {
                write!(f, "detach {path} (restored from {restore_from} on failure)")
            }
            Step::Move { src, dst } => write!(f, "move {src} -> {dst}"),
            Step::Rmdir { path } => write!(f, "rmdir {path}"),
            Step::Tmpfs { path } => write!(f, "mount tmpfs {path} mode 0755"),
            Step::Unmount { path } => write!(f, "detach {path}"),
            Step::CleanBacking { path } => {
                write!(
                    f,
                    "clean {path}/*/backing (unlock leftovers, deployments gone)"
                )
            }
            Step::PivotRoot { new_root, put_old } => {
                write!(f, "pivot-root {new_root} (old root -> {put_old})")
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
                write!(
                    f,
                    "mount composefs {image} -> {dst} (erofs at {lower}, data {objects}"
                )?;
                if let Some((u, w)) = upper {
                    write!(f, ", upper {u}, work {w}")?;
                }
                if *verity {
                    f.write_str(", verity=require")?;
                }
                if let Some(d) = digest {
                    f.write_str(", image digest ")?;
                    for byte in d.as_bytes() {
                        write!(f, "{byte:02x}")?;
                    }
                }
                f.write_str(if *readonly { ", ro)" } else { ", rw)" })
            }
            #[cfg(feature = "composefs")]
            Step::VolatileRoot { root, link } => {
                write!(f, "symlink {link} -> /dev/block/MAJ:MIN of {root}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            sysroot: PathBuf::from(b"/sysroot").unwrap(),
            deployment: Deployment::from_rel(b"ostree/deploy/os/deploy/abc.0").unwrap(),
            deployment_id: (2049, 42),
            readonly: false,
            etc_transient: false,
            hotfix: Hotfix::Off,
            bind_boot: true,
            mount_var: false,
            var_marker_exists: false,
            sysroot_fs_readonly: false,
            clean_backing: false,
            #[cfg(feature = "composefs")]
            composefs: None,
        }
    }

    fn render(plan: &Plan) -> Vec<String> {
        plan.iter().map(|s| s.to_string()).collect()
    }

    const S: &str = "/run/ostree/.private/staging";

    #[test]
    fn plain_plan() {
        let got = render(&service_plan(&facts()).unwrap());
        let want = [
            "mkdir /run/ostree mode 0755 (existing kept)".to_string(),
            "mkdir /run/ostree/.private mode 0000 (existing kept)".into(),
            format!("mkdir {S} mode 0755 (existing kept)"),
            "make-rprivate /".into(),
            format!("bind /sysroot/ostree/deploy/os/deploy/abc.0 -> {S}"),
            format!("bind /sysroot/boot -> {S}/boot"),
            format!("bind {S}/usr -> {S}/usr"),
            format!("remount-bind {S}/usr ro"),
            format!("bind --recursive /sysroot -> {S}/sysroot"),
            "write /run/ostree-booted a{sv} sysroot-ro=false backing-root-device-inode=(2049,42)"
                .into(),
            format!("detach /sysroot (restored from {S}/sysroot on failure)"),
            format!("move {S} -> /sysroot"),
            format!("rmdir {S}"),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn readonly_plan_keeps_etc_and_var_writable() {
        let f = Facts {
            readonly: true,
            bind_boot: false,
            ..facts()
        };
        let got = render(&service_plan(&f).unwrap());
        let var = format!("{S}/sysroot/ostree/deploy/os/var");
        for want in [
            format!("bind {S}/etc -> {S}/etc"),
            format!("remount-bind {S}/etc rw"),
            format!("bind {var} -> {var}"),
            format!("remount-bind {var} rw"),
            "write /run/ostree-sysroot-ro.stamp (empty)".into(),
            "remount-bind /sysroot/sysroot ro".into(),
        ] {
            assert!(got.contains(&want), "missing {want:?} in {got:#?}");
        }
        assert!(!got.iter().any(|s| s.contains("/boot")));
        // The physical root becomes read-only only after the swap.
        let ro = got
            .iter()
            .position(|s| s == "remount-bind /sysroot/sysroot ro")
            .unwrap();
        let mv = got.iter().position(|s| s.starts_with("move ")).unwrap();
        assert!(ro > mv);
    }

    #[test]
    fn hotfix_plan() {
        let f = Facts {
            hotfix: Hotfix::On,
            ..facts()
        };
        let got = render(&service_plan(&f).unwrap());
        assert!(got.contains(&format!(
            "overlay {S}/usr lowerdir={S}/usr,upperdir={S}/.usr-ovl-upper,workdir={S}/.usr-ovl-work"
        )));
        assert!(!got
            .iter()
            .any(|s| s.contains("remount-bind") && s.contains("/usr")));
        assert!(!got.iter().any(|s| s.starts_with("remount-fs")));

        let f = Facts {
            hotfix: Hotfix::On,
            sysroot_fs_readonly: true,
            ..facts()
        };
        let got = render(&service_plan(&f).unwrap());
        let rw = got
            .iter()
            .position(|s| *s == format!("remount-fs {S} rw"))
            .unwrap();
        let ovl = got.iter().position(|s| s.starts_with("overlay")).unwrap();
        let ro = got
            .iter()
            .position(|s| *s == format!("remount-bind {S} ro"))
            .unwrap();
        assert!(rw < ovl && ovl < ro);

        let f = Facts {
            hotfix: Hotfix::Ignored("x"),
            ..facts()
        };
        let got = render(&service_plan(&f).unwrap());
        assert!(got.contains(&format!("remount-bind {S}/usr ro")));
    }

    #[cfg(feature = "composefs")]
    fn composefs_facts(transient_ro: Option<bool>, signed: bool) -> Facts {
        use crate::composefs::{Root, Signed};
        Facts {
            readonly: true,
            composefs: Some(Root {
                verity: signed,
                signed: signed.then(|| Signed {
                    keypath: PathBuf::from(b"/etc/ostree/k.pub").unwrap(),
                    digest: [0xab; 32],
                }),
                transient_ro,
            }),
            ..facts()
        }
    }

    #[cfg(feature = "composefs")]
    #[test]
    fn composefs_service_plan() {
        let got = render(&service_plan(&composefs_facts(None, true)).unwrap());
        let d = "/sysroot/ostree/deploy/os/deploy/abc.0";
        let digest = "ab".repeat(32);
        let want = [
            "mkdir /run/ostree mode 0755 (existing kept)".to_string(),
            "mkdir /run/ostree/.private mode 0000 (existing kept)".into(),
            format!("mkdir {S} mode 0755 (existing kept)"),
            "make-rprivate /".into(),
            "mkdir /run/ostree/.private/cfsroot-lower mode 0700 (existing kept)".into(),
            format!("mount composefs {d}/.ostree.cfs -> {S} (erofs at /run/ostree/.private/cfsroot-lower, data /sysroot/ostree/repo/objects, verity=require, image digest {digest}, ro)"),
            "symlink /run/systemd/volatile-root -> /dev/block/MAJ:MIN of /sysroot".into(),
            format!("bind /sysroot/boot -> {S}/boot"),
            // The deployment's own /etc, writable; no /usr bind.
            format!("bind {d}/etc -> {S}/etc"),
            format!("remount-bind {S}/etc rw"),
            format!("bind --recursive /sysroot -> {S}/sysroot"),
            format!("bind {S}/sysroot/ostree/deploy/os/var -> {S}/sysroot/ostree/deploy/os/var"),
            format!("remount-bind {S}/sysroot/ostree/deploy/os/var rw"),
            "write /run/ostree-booted a{sv} sysroot-ro=true backing-root-device-inode=(2049,42) composefs=true composefs.verity=true root.transient=false root.transient-ro=false composefs.signed=/etc/ostree/k.pub".into(),
            "write /run/ostree-sysroot-ro.stamp (empty)".into(),
            format!("detach /sysroot (restored from {S}/sysroot on failure)"),
            format!("move {S} -> /sysroot"),
            "remount-bind /sysroot/sysroot ro".into(),
            format!("rmdir {S}"),
        ];
        assert_eq!(got, want);

        // A transient root: its layers in /run; a hotfix over the composefs
        // /usr takes the physical deployment's upper and work directories.
        let f = Facts {
            hotfix: Hotfix::On,
            sysroot_fs_readonly: true,
            ..composefs_facts(Some(false), false)
        };
        let got = render(&service_plan(&f).unwrap());
        for want in [
            "mkdir /run/ostree/.private/root/work mode 0700 (existing kept)".to_string(),
            format!("mount composefs {d}/.ostree.cfs -> {S} (erofs at /run/ostree/.private/cfsroot-lower, data /sysroot/ostree/repo/objects, upper /run/ostree/.private/root/upper, work /run/ostree/.private/root/work, rw)"),
            "remount-fs /sysroot rw".into(),
            format!("overlay {S}/usr lowerdir={S}/usr,upperdir={d}/.usr-ovl-upper,workdir={d}/.usr-ovl-work"),
            "remount-bind /sysroot ro".into(),
        ] {
            assert!(got.contains(&want), "missing {want:?} in {got:#?}");
        }
    }

    #[cfg(feature = "composefs")]
    #[test]
    fn composefs_pivot_plan() {
        let got = render(&pivot_plan(&composefs_facts(None, false), &[b"/proc"]).unwrap());
        let d = "/ostree/deploy/os/deploy/abc.0";
        let r = format!("{d}/run/ostree/.private/composefs");
        for want in [
            format!("mount tmpfs {d}/run mode 0755"),
            format!("mount composefs {d}/.ostree.cfs -> {r} (erofs at {d}/run/ostree/.private/cfsroot-lower, data /ostree/repo/objects, ro)"),
            format!("mount tmpfs {r}/run mode 0755"),
            format!("bind {d}/etc -> {r}/etc"),
            format!("symlink {r}/run/systemd/volatile-root -> /dev/block/MAJ:MIN of /"),
            format!("move /proc -> {r}/proc"),
            format!("pivot-root {r} (old root -> {r}/sysroot)"),
            format!("detach /sysroot{d}/run"),
        ] {
            assert!(got.contains(&want), "missing {want:?} in {got:#?}");
        }
        assert!(!got.iter().any(|s| s.contains(&format!("bind {d} -> {d}"))));
        // A transient root keeps the tmpfs that holds its layers.
        let got = render(&pivot_plan(&composefs_facts(Some(true), false), &[]).unwrap());
        assert!(!got.iter().any(|s| s.starts_with("detach ")), "{got:#?}");
    }

    #[test]
    fn transient_etc_and_mount_var() {
        let f = Facts {
            etc_transient: true,
            mount_var: true,
            readonly: true,
            ..facts()
        };
        let got = render(&service_plan(&f).unwrap());
        assert!(
            got.contains(&"mkdir /run/ostree/transient-etc mode 0700 (existing kept)".to_string())
        );
        assert!(got.contains(&format!(
            "overlay {S}/etc lowerdir={S}/usr/etc,upperdir=/run/ostree/transient-etc/upper,workdir=/run/ostree/transient-etc/work"
        )));
        // A transient /etc replaces the writable bind.
        assert!(!got.contains(&format!("bind {S}/etc -> {S}/etc")));
        assert!(got.contains(&format!("bind {S}/sysroot/ostree/deploy/os/var -> {S}/var")));
        assert!(got
            .iter()
            .any(|s| s.contains("transient-etc=/run/ostree/transient-etc")));
    }
}
