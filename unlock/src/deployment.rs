//! Which deployment to act on, and its unlock state, read the way libostree
//! reads them.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use switchroot::deploy::{self, Deployment};
use switchroot::inputs::RealSysroot;
use switchroot::plan::markers;

use crate::fsutil::{msg, Context, Result};

/// A deployment and where its sysroot is.
#[derive(Debug, Clone)]
pub struct Target {
    /// The physical root (`/sysroot` when live).
    pub sysroot: PathBuf,
    pub stateroot: String,
    /// `CSUM.SERIAL`.
    pub name: String,
    /// Acting on the running system (mounts, runtime flags) or on a sysroot at rest.
    pub live: bool,
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Target {
    fn from_deployment(sysroot: &Path, d: &Deployment, live: bool) -> Target {
        Target {
            sysroot: sysroot.to_path_buf(),
            stateroot: s(d.stateroot()),
            name: s(d.name()),
            live,
        }
    }

    /// `SYSROOT/ostree/deploy/OS/deploy/CSUM.SERIAL`.
    pub fn dir(&self) -> PathBuf {
        self.sysroot
            .join("ostree/deploy")
            .join(&self.stateroot)
            .join("deploy")
            .join(&self.name)
    }

    /// Path of the deployment relative to `ostree/deploy` (for writable views).
    pub fn rel_in_deploy(&self) -> PathBuf {
        Path::new(&self.stateroot).join("deploy").join(&self.name)
    }

    /// `OS/backing/CSUM.SERIAL`, relative to `ostree/deploy`.
    pub fn rel_backing(&self) -> PathBuf {
        Path::new(&self.stateroot)
            .join(s(markers::BACKING))
            .join(&self.name)
    }

    pub fn origin_rel(&self) -> PathBuf {
        Path::new(&self.stateroot)
            .join("deploy")
            .join(format!("{}.origin", self.name))
    }

    /// `/run/ostree/deployment-state/CSUM.SERIAL`.
    pub fn state_dir(&self) -> PathBuf {
        Path::new(std::ffi::OsStr::from_bytes(markers::DEPLOYMENT_STATE)).join(&self.name)
    }
}

/// Every deployment directory under `sysroot`, as (stateroot, name).
fn all_deployments(sysroot: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(roots) = fs::read_dir(sysroot.join("ostree/deploy")) else {
        return out;
    };
    for os in roots.flatten() {
        let Ok(deps) = fs::read_dir(os.path().join("deploy")) else {
            continue;
        };
        for d in deps.flatten() {
            if d.file_type().is_ok_and(|t| t.is_dir())
                && !d.file_name().as_bytes().starts_with(b".")
            {
                out.push((
                    os.file_name().to_string_lossy().into_owned(),
                    d.file_name().to_string_lossy().into_owned(),
                ));
            }
        }
    }
    out.sort_unstable();
    out
}

/// The booted deployment: the one whose directory has the device and inode
/// recorded in `/run/ostree-booted` (or, as libostree falls back, those of `/`).
pub fn booted(sysroot: &Path) -> Result<Target> {
    let booted = Path::new("/run/ostree-booted");
    let data = match fs::read(booted) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(msg("not booted into an OSTree deployment (no /run/ostree-booted); use --sysroot DIR for a sysroot at rest"))
        }
        Err(e) => return Err(crate::fsutil::io_err("read", booted, e)),
    };
    let id = match switchroot::gvariant::lookup_u64_pair(&data, "backing-root-device-inode") {
        Some(id) => id,
        None => {
            let md = fs::metadata("/").ctx("stat", Path::new("/"))?;
            (md.dev(), md.ino())
        }
    };
    for (os, name) in all_deployments(sysroot) {
        let dir = sysroot
            .join("ostree/deploy")
            .join(&os)
            .join("deploy")
            .join(&name);
        if let Ok(md) = fs::symlink_metadata(&dir) {
            if (md.dev(), md.ino()) == id {
                return Ok(Target {
                    sysroot: sysroot.to_path_buf(),
                    stateroot: os,
                    name,
                    live: true,
                });
            }
        }
    }
    Err(msg(format!(
        "no deployment under {} matches the booted one (device {}, inode {})",
        sysroot.join("ostree/deploy").display(),
        id.0,
        id.1
    )))
}

/// A named deployment (`CSUM.SERIAL`, or `OS/CSUM.SERIAL`) of an offline sysroot.
pub fn named(sysroot: &Path, name: &str, live: bool) -> Result<Target> {
    let (want_os, want_name) = match name.split_once('/') {
        Some((os, n)) => (Some(os), n),
        None => (None, name),
    };
    let found: Vec<_> = all_deployments(sysroot)
        .into_iter()
        .filter(|(os, n)| n == want_name && want_os.map_or(true, |w| w == os))
        .collect();
    match found.as_slice() {
        [(os, n)] => Ok(Target {
            sysroot: sysroot.to_path_buf(),
            stateroot: os.clone(),
            name: n.clone(),
            live,
        }),
        [] => Err(msg(format!(
            "no deployment {name} under {}; existing: {}",
            sysroot.join("ostree/deploy").display(),
            listing(sysroot)
        ))),
        _ => Err(msg(format!(
            "deployment {name} exists in several stateroots; say OS/{name}"
        ))),
    }
}

fn listing(sysroot: &Path) -> String {
    let all: Vec<String> = all_deployments(sysroot)
        .into_iter()
        .map(|(os, n)| format!("{os}/{n}"))
        .collect();
    if all.is_empty() {
        "none".into()
    } else {
        all.join(" ")
    }
}

/// One Boot Loader Specification entry of ostree's.
#[derive(Debug, Clone)]
pub struct BootEntry {
    pub path: PathBuf,
    pub version: u64,
    pub text: String,
}

impl BootEntry {
    pub fn key(&self, key: &str) -> Option<&str> {
        self.text.lines().find_map(|l| {
            l.strip_prefix(key)
                .filter(|r| r.starts_with(' '))
                .map(str::trim)
        })
    }

    /// The deployment its `ostree=` argument leads to.
    pub fn deployment(&self, sysroot: &Path) -> Option<Deployment> {
        let options = self.key("options")?;
        let cmdline = switchroot::cmdline::Cmdline::new(options.as_bytes());
        let target = cmdline.value(b"ostree")?;
        let root = switchroot::path::PathBuf::from(sysroot.as_os_str().as_bytes()).ok()?;
        deploy::resolve(&RealSysroot { root: &root }, target).ok()
    }
}

/// ostree's boot entries in `boot_dir/loader/entries`, newest (default) first.
/// Entries this tool added (pristine boots, `pristine-*.conf`) are left out.
pub fn boot_entries(boot_dir: &Path) -> Vec<BootEntry> {
    let mut out = Vec::new();
    let Ok(dir) = fs::read_dir(boot_dir.join("loader/entries")) else {
        return out;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // libostree's own entries only: it reads ostree-*.conf, nothing else.
        if !name.starts_with("ostree-") || !name.ends_with(".conf") {
            continue;
        }
        let Ok(text) = fs::read_to_string(e.path()) else {
            continue;
        };
        let mut entry = BootEntry {
            path: e.path(),
            version: 0,
            text,
        };
        entry.version = entry
            .key("version")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        out.push(entry);
    }
    out.sort_unstable_by(|a, b| b.version.cmp(&a.version).then(a.path.cmp(&b.path)));
    out
}

/// The default deployment of a sysroot at rest: the one of its newest boot entry.
pub fn default(sysroot: &Path) -> Result<Target> {
    let entries = boot_entries(&sysroot.join("boot"));
    let d = entries
        .iter()
        .find_map(|e| e.deployment(sysroot))
        .ok_or_else(|| {
            msg(format!(
                "no boot entry in {} leads to a deployment; give --deployment",
                sysroot.join("boot/loader/entries").display()
            ))
        })?;
    Ok(Target::from_deployment(sysroot, &d, false))
}

/// The unlock state, with libostree's precedence: the runtime flags
/// (development, then transient) before the origin's `unlocked=hotfix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlocked {
    None,
    Development,
    Transient,
    Hotfix,
}

impl Unlocked {
    pub fn name(self) -> &'static str {
        match self {
            Unlocked::None => "none",
            Unlocked::Development => "development",
            Unlocked::Transient => "transient",
            Unlocked::Hotfix => "hotfix",
        }
    }
}

/// Read the unlock state of `t`.
pub fn state(t: &Target) -> Unlocked {
    if t.live {
        let dir = t.state_dir();
        if fs::symlink_metadata(dir.join(s(markers::UNLOCKED_DEVELOPMENT))).is_ok() {
            return Unlocked::Development;
        }
        if fs::symlink_metadata(dir.join(s(markers::UNLOCKED_TRANSIENT))).is_ok() {
            return Unlocked::Transient;
        }
    }
    let origin = t.sysroot.join("ostree/deploy").join(t.origin_rel());
    let text = fs::read_to_string(origin).unwrap_or_default();
    if crate::origin::get(&text, markers::ORIGIN_UNLOCKED_KEY).as_deref() == Some("hotfix") {
        return Unlocked::Hotfix;
    }
    Unlocked::None
}

/// Both hotfix markers exist as real directories.
pub fn hotfix_markers(t: &Target) -> bool {
    let d = t.dir();
    crate::fsutil::is_real_dir(&d.join(s(markers::USR_OVL_UPPER)))
        && crate::fsutil::is_real_dir(&d.join(s(markers::USR_OVL_WORK)))
}
