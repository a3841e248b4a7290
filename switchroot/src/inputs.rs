//! Reading the facts the planner needs from the running system: the kernel
//! command line, configuration files, and what is on disk under SYSROOT.
//! Nothing here changes the system (except briefly mounting /proc when it is
//! missing, as ostree's C tool does).

use crate::config::{self, PrepareRootConf, PREPARE_ROOT_CONF_PATHS, REPO_CONFIG};
use crate::error::Error;
use crate::plan::{Facts, Hotfix};
use otcore::cmdline::{Cmdline, CMDLINE_MAX};
use otcore::contract;
use otcore::deploy;
use otcore::path::PathBuf;
use otcore::sys;
use otcore::sys::{Errno, MountFlags, UnmountFlags};

/// Largest configuration file we read.
pub(crate) const CONF_MAX: usize = 16 * 1024;

/// Buffer for the kernel command line (one spare byte detects overlong input).
pub type CmdlineBuf = [u8; CMDLINE_MAX + 1];

/// Read `/proc/cmdline`. If /proc is not mounted (PID 1 without an
/// initramfs), mount it just for this read, unless `may_mount` is false.
pub fn read_proc_cmdline(buf: &mut CmdlineBuf, may_mount: bool) -> Result<usize, Error> {
    const PATH: &[u8] = b"/proc/cmdline";
    match sys::read_file(PATH, buf) {
        Ok(n) => Ok(n),
        Err(Errno::FBIG) => Err(Error::CmdlineTooLong),
        Err(Errno::NOENT) if may_mount => {
            sys::mount(
                Some(b"proc"),
                b"/proc",
                Some(b"proc"),
                MountFlags::EMPTY,
                None,
            )
            .map_err(|e| Error::sys("mount proc on", b"/proc", e))?;
            let r = sys::read_file(PATH, buf);
            let _ = sys::umount2(b"/proc", UnmountFlags::EMPTY);
            match r {
                Err(Errno::FBIG) => Err(Error::CmdlineTooLong),
                r => r.map_err(|e| Error::sys("read", PATH, e)),
            }
        }
        Err(e) => Err(Error::sys("read", PATH, e)),
    }
}

/// Read a small file; `Ok(None)` if it does not exist.
fn read_optional<'b>(path: &[u8], buf: &'b mut [u8]) -> Result<Option<&'b [u8]>, Error> {
    match sys::read_file(path, buf) {
        Ok(n) => Ok(Some(&buf[..n])),
        Err(Errno::NOENT) => Ok(None),
        Err(e @ Errno::INVAL) => Err(Error::sys("read (not a regular file)", path, e)),
        Err(e) => Err(Error::sys("read", path, e)),
    }
}

/// Where `prepare-root.conf` is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfFrom {
    /// The initramfs's own `/` (service and initramfs modes, as upstream).
    Root,
    /// The deployment being booted (the no-initramfs mode: there is no initramfs).
    Deployment,
}

/// Load `prepare-root.conf` from `root`: the first file of
/// [`PREPARE_ROOT_CONF_PATHS`] that exists, or defaults.
pub fn load_prepare_root_conf(root: &PathBuf) -> Result<(PrepareRootConf, Option<PathBuf>), Error> {
    let mut buf = [0u8; CONF_MAX];
    for path in PREPARE_ROOT_CONF_PATHS {
        let file = root.join(path)?;
        if let Some(text) = read_optional(file.as_bytes(), &mut buf)? {
            let conf = PrepareRootConf::parse(text).map_err(|err| Error::Config {
                file: file.clone(),
                err,
            })?;
            return Ok((conf, Some(file)));
        }
    }
    Ok((PrepareRootConf::default(), None))
}

/// Is `path` a real directory (not a symlink to one)?
fn lstat_kind(path: &[u8]) -> Result<Option<sys::Stat>, Error> {
    match sys::lstat(path) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(Error::sys("lstat", path, e)),
    }
}

/// Decide whether the hotfix overlay can be used for `deploy`.
fn hotfix_state(deploy: &PathBuf, cmdline: &Cmdline) -> Result<Hotfix, Error> {
    let upper = lstat_kind(deploy.join(contract::USR_OVL_UPPER)?.as_bytes())?;
    let work = lstat_kind(deploy.join(contract::USR_OVL_WORK)?.as_bytes())?;
    let state = match (upper, work) {
        (None, None) => return Ok(Hotfix::Off),
        (Some(u), Some(w)) if u.is_dir() && w.is_dir() => Hotfix::On,
        (Some(u), _) if !u.is_dir() => Hotfix::Ignored(
            ".usr-ovl-upper is not a directory (a symlink?), refusing the hotfix overlay",
        ),
        (_, Some(w)) if !w.is_dir() => Hotfix::Ignored(
            ".usr-ovl-work is not a directory (a symlink?), refusing the hotfix overlay",
        ),
        (None, _) => Hotfix::Ignored(".usr-ovl-work exists but .usr-ovl-upper is missing"),
        (_, None) => Hotfix::Ignored(".usr-ovl-upper exists but .usr-ovl-work is missing"),
        (Some(_), Some(_)) => Hotfix::On,
    };
    if state == Hotfix::On
        && matches!(
            cmdline.value(contract::HOTFIX_KARG),
            Some(b"0" | b"no" | b"false" | b"off")
        )
    {
        return Ok(Hotfix::Ignored(
            "hotfix overlay disabled for this boot by ostree.prepare-root.hotfix=0",
        ));
    }
    Ok(state)
}

/// Everything gathered for one run: the facts and where settings came from.
#[derive(Debug, Clone)]
pub struct Gathered {
    pub facts: Facts,
    pub conf_file: Option<PathBuf>,
}

/// Gather the facts for preparing `sysroot` according to `cmdline`.
pub fn gather(
    sysroot: &PathBuf,
    cmdline: &Cmdline,
    force_mount_var: bool,
    conf_from: ConfFrom,
) -> Result<Gathered, Error> {
    let target = cmdline
        .value(b"ostree")
        .filter(|t| !t.is_empty())
        .ok_or(Error::NoTarget)?;
    let fs = deploy::RealSysroot { root: sysroot };
    let deployment = deploy::resolve(&fs, target).map_err(|why| {
        report_deployments(sysroot, &fs);
        Error::target(sysroot, target, &why)
    })?;
    let deploy_path = sysroot.join(deployment.rel().as_bytes())?;

    let conf_root = match conf_from {
        ConfFrom::Root => PathBuf::from(b"/")?,
        ConfFrom::Deployment => deploy_path.clone(),
    };
    let (conf, conf_file) = load_prepare_root_conf(&conf_root)?;
    let policy = match config::effective_composefs(&conf, cmdline)
        .and_then(|p| config::check_supported(&conf, p, cfg!(feature = "composefs")).map(|()| p))
    {
        Ok(p) => p,
        Err(why) => return Err(unsupported_error(why, conf_file)),
    };
    #[cfg(feature = "composefs")]
    let composefs = crate::composefs::decide(
        policy,
        &conf,
        conf_file.as_ref(),
        sysroot,
        &deploy_path,
        deployment.name(),
    )?;

    let st = sys::lstat(deploy_path.as_bytes())
        .map_err(|e| Error::sys("lstat", deploy_path.as_bytes(), e))?;

    // composefs makes the physical root read-only unless the file says.
    let composefs_yes = policy.enabled == config::Use::Yes;
    let mut readonly = conf.sysroot_readonly.unwrap_or(composefs_yes);
    if !readonly && !composefs_yes {
        // The repository's config is shared by every deployment and edited
        // at run time: one that cannot be read is a warning, as in ostree's
        // own tool, never a boot that fails whatever deployment is chosen.
        let mut buf = [0u8; CONF_MAX];
        let repo_config = sysroot.join(REPO_CONFIG)?;
        match read_optional(repo_config.as_bytes(), &mut buf) {
            Ok(Some(text)) => match config::repo_config_readonly(text) {
                Ok(ro) => readonly = ro,
                Err(err) => otcore::warn!(
                    "ostree-prepare-root: warning: {repo_config}: line {}: {}; ignored (sysroot not read-only)",
                    err.line,
                    err.what
                ),
            },
            Ok(None) => {}
            Err(e) => otcore::warn!("ostree-prepare-root: warning: {e}; ignored (sysroot not read-only)"),
        }
    }

    // Leftovers of unlocks: development data, discarded hotfixes, and the
    // backing directories of deployments that are gone.
    let clean_backing = otcore::backing::any(sysroot.join(b"ostree/deploy")?.as_bytes());

    let boot_loader = lstat_kind(sysroot.join(b"boot/loader")?.as_bytes())?;
    let deploy_boot = lstat_kind(deploy_path.join(b"boot")?.as_bytes())?;
    let bind_boot =
        boot_loader.is_some_and(|s| s.is_symlink()) && deploy_boot.is_some_and(|s| s.is_dir());

    let var_marker_exists = lstat_kind(contract::INITRAMFS_MOUNT_VAR)?.is_some();
    let mount_var = force_mount_var || var_marker_exists;
    let sysroot_fs_readonly = sys::is_readonly_fs(sysroot.as_bytes())
        .map_err(|e| Error::sys("statvfs", sysroot.as_bytes(), e))?;

    let hotfix = hotfix_state(&deploy_path, cmdline)?;
    // A writable /usr over a signed image would void the signature.
    #[cfg(feature = "composefs")]
    let hotfix = match &composefs {
        Some(c) if c.signed.is_some() && hotfix == Hotfix::On => {
            Hotfix::Ignored("the hotfix overlay is not used over a signed composefs image")
        }
        _ => hotfix,
    };

    Ok(Gathered {
        facts: Facts {
            sysroot: sysroot.clone(),
            deployment,
            deployment_id: (st.dev, st.ino),
            readonly,
            etc_transient: conf.etc_transient,
            hotfix,
            bind_boot,
            mount_var,
            var_marker_exists,
            sysroot_fs_readonly,
            clean_backing,
            #[cfg(feature = "composefs")]
            composefs,
        },
        conf_file,
    })
}

#[inline(never)]
fn unsupported_error(why: config::Unsupported, file: Option<PathBuf>) -> Error {
    Error::Unsupported { why, file }
}

/// Say that the hotfix overlay is not used this boot, and why.
pub fn warn_ignored_hotfix(facts: &Facts) {
    if let Hotfix::Ignored(why) = facts.hotfix {
        otcore::warn!(
            "ostree-prepare-root: warning: {}: {why}; booting the pristine /usr",
            facts.deployment.rel()
        );
    }
}

/// Say which deployments exist, for a wrong `ostree=` (a line of its own,
/// so that a long list is never cut from the error).
fn report_deployments(sysroot: &PathBuf, fs: &deploy::RealSysroot<'_>) {
    let existing = deploy::list_deployments(fs);
    let sep = if sysroot.as_bytes().ends_with(b"/") {
        ""
    } else {
        "/"
    };
    if existing.is_empty() {
        otcore::warn!("ostree-prepare-root: no deployments under {sysroot}{sep}ostree/deploy");
    } else {
        otcore::warn!(
            "ostree-prepare-root: existing deployments in {sysroot}: {}",
            otcore::path::Lossy(&existing)
        );
    }
}
