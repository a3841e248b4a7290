//! Which deployment to act on, and its unlock state, read the way libostree
//! reads them.

use core::fmt;

use otcore::contract;
use otcore::deploy::Deployment;
use otcore::path::{Lossy, PathBuf};
use otcore::sys::{self, Errno};

use crate::err;
use crate::error::{read_error, Context, Error, Result};
use crate::fsutil::{exists, read_small, Tree};

/// Largest origin file and `/run/ostree-booted` read (both are a few lines).
pub const SMALL_FILE_MAX: usize = 16 * 1024;
/// Most deployments looked at under one sysroot (ostree keeps a handful).
const MAX_DEPLOYMENTS: usize = 64;

/// A deployment and where its sysroot is, with the paths every command
/// needs, built once (a path too long is an error here, not later).
#[derive(Debug, Clone)]
pub struct Target {
    /// The physical root (`/sysroot` when live).
    pub sysroot: PathBuf,
    pub stateroot: PathBuf,
    /// `CSUM.SERIAL`.
    pub name: PathBuf,
    /// Acting on the running system (mounts, runtime flags) or on a sysroot at rest.
    pub live: bool,
    /// `SYSROOT/ostree/deploy`.
    pub deploy: PathBuf,
    /// `SYSROOT/ostree/deploy/OS/deploy/CSUM.SERIAL`.
    pub dir: PathBuf,
    /// The deployment relative to `ostree/deploy` (for writable views).
    pub rel_in_deploy: PathBuf,
    /// `OS/backing/CSUM.SERIAL`, relative to `ostree/deploy`.
    pub rel_backing: PathBuf,
    /// `OS/deploy/CSUM.SERIAL.origin`, relative to `ostree/deploy`.
    pub origin_rel: PathBuf,
    /// `/run/ostree/deployment-state/CSUM.SERIAL`.
    pub state_dir: PathBuf,
    /// The booted root is a composefs (from `/run/ostree-booted`; live only).
    pub composefs: Option<Composefs>,
}

/// A composefs root, as `ostree-prepare-root` recorded it in
/// `/run/ostree-booted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Composefs {
    /// Every file's fs-verity digest is checked (`composefs.verity`).
    pub verity: bool,
    /// The image is that of a signed commit (`composefs.signed`).
    pub signed: bool,
}

impl Composefs {
    /// From the `a{sv}` of `/run/ostree-booted`: `None` unless `composefs`
    /// is true.
    pub fn from_booted(data: &[u8]) -> Option<Composefs> {
        use contract::booted_keys as k;
        if otcore::gvariant::lookup_bool(data, k::COMPOSEFS) != Some(true) {
            return None;
        }
        Some(Composefs {
            verity: otcore::gvariant::lookup_bool(data, k::COMPOSEFS_VERITY) == Some(true),
            signed: otcore::gvariant::lookup(data, k::COMPOSEFS_SIGNED).is_some(),
        })
    }
}

/// `composefs`, then `, verity` and `, signed` when they apply.
impl fmt::Display for Composefs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("composefs")?;
        if self.verity {
            f.write_str(", verity")?;
        }
        if self.signed {
            f.write_str(", signed")?;
        }
        Ok(())
    }
}

/// Where a deployment's `prepare-root.conf` may be, relative to it: the
/// first that exists is the one (as `ostree-prepare-root` reads them).
pub const PREPARE_ROOT_CONFS: [&[u8]; 2] = [
    b"etc/ostree/prepare-root.conf",
    b"usr/lib/ostree/prepare-root.conf",
];

/// Whether the `prepare-root.conf` `text` says `[composefs] enabled =
/// signed` (the last such key counts, as GKeyFile reads it); a malformed
/// file is an error naming its line.
pub fn conf_says_signed(text: &[u8]) -> core::result::Result<bool, otcore::keyfile::SyntaxError> {
    let mut signed = false;
    otcore::keyfile::parse(text, |e| {
        if e.group == b"composefs" && e.key == b"enabled" {
            signed = e.value == b"signed";
        }
        Ok(())
    })?;
    Ok(signed)
}

/// The deployment's own `prepare-root.conf` (walked, never through a
/// symlink) if it asks for a signed composefs image.
pub fn signed_by_conf(t: &Target) -> Result<Option<PathBuf>> {
    let dir = t.dir_tree()?;
    let mut buf = [0u8; SMALL_FILE_MAX];
    for rel in PREPARE_ROOT_CONFS {
        let text = match dir.read_small(rel, &mut buf) {
            Ok(text) => text,
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(dir.read_error(rel, e, SMALL_FILE_MAX)),
        };
        let path = dir.shown(rel);
        return match conf_says_signed(text) {
            Ok(true) => Ok(Some(path)),
            Ok(false) => Ok(None),
            Err(e) => Err(err!("{path}: line {} {}", e.line, e.what)),
        };
    }
    Ok(None)
}

impl Target {
    pub fn new(sysroot: &[u8], stateroot: &[u8], name: &[u8], live: bool) -> Result<Target> {
        let sysroot = PathBuf::from(sysroot)?;
        let deploy = sysroot.join(b"ostree/deploy")?;
        let os = PathBuf::from(stateroot)?;
        let rel_in_deploy = os.join(b"deploy")?.join(name)?;
        let mut origin_rel = rel_in_deploy.clone();
        origin_rel.push_raw(b".origin")?;
        Ok(Target {
            dir: deploy.join(rel_in_deploy.as_bytes())?,
            rel_backing: os.join(contract::BACKING)?.join(name)?,
            state_dir: PathBuf::from(contract::DEPLOYMENT_STATE)?.join(name)?,
            name: PathBuf::from(name)?,
            stateroot: os,
            sysroot,
            live,
            deploy,
            rel_in_deploy,
            origin_rel,
            composefs: None,
        })
    }

    fn from_deployment(sysroot: &[u8], d: &Deployment, live: bool) -> Result<Target> {
        Target::new(sysroot, d.stateroot(), d.name(), live)
    }

    /// The sysroot, opened: the top of every walk (see [`Tree`]).
    pub fn root(&self) -> Result<Tree> {
        Tree::open(self.sysroot.as_bytes())
    }

    /// `ostree/deploy`, walked from the sysroot.
    pub fn deploy_tree(&self) -> Result<Tree> {
        self.root()?.sub(b"ostree/deploy")
    }

    /// The deployment's directory, walked from the sysroot.
    pub fn dir_tree(&self) -> Result<Tree> {
        self.deploy_tree()?.sub(self.rel_in_deploy.as_bytes())
    }

    /// The boot directory holding `loader/entries`: the running system's
    /// `/boot` when live, the sysroot's `boot` (walked) offline; `None` if
    /// there is none.
    pub fn boot_tree(&self) -> Result<Option<Tree>> {
        if self.live {
            match Tree::open(b"/boot") {
                Ok(t) => Ok(Some(t)),
                Err(Error::Sys {
                    errno: Errno::NOENT,
                    ..
                }) => Ok(None),
                Err(e) => Err(e),
            }
        } else {
            self.root()?.try_sub(b"boot")
        }
    }

    /// ostree's boot entries (see [`crate::entries::list`]).
    pub fn entries(&self) -> Result<crate::entries::Entries> {
        crate::entries::list(self.boot_tree()?.as_ref())
    }

    /// Refuse, before anything is read or written, a sysroot where a path
    /// this tool reads or writes is a symlink: every directory on the way to
    /// the deployment, its origin file, its hotfix markers, its backing
    /// directory, the pristine links' directory, `boot` and
    /// `boot/loader/entries` (`boot/loader` may only be libostree's link to
    /// `loader.0` or `loader.1`). Every later access walks without
    /// following symlinks anyway ([`Tree`]); this check makes a planted
    /// link a clear error before the first change, rather than a failure
    /// halfway (or a warning, for the best-effort pristine entry).
    pub fn check_confined(&self) -> Result<()> {
        let deploy = self.deploy_tree()?;
        deploy.sub(self.rel_in_deploy.as_bytes())?;
        let absent_or = |rel: &[u8], dir: bool| match deploy.lstat(rel) {
            Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(deploy.fail("lstat", rel, e)),
            Ok(st) if st.is_symlink() => Err(deploy.fail("lstat", rel, Errno::LOOP)),
            Ok(st) if st.is_dir() != dir => Err(err!(
                "{}: not a {}, refusing",
                deploy.shown(rel),
                if dir { "directory" } else { "regular file" }
            )),
            Ok(_) => Ok(()),
        };
        absent_or(self.origin_rel.as_bytes(), false)?;
        for m in [contract::USR_OVL_UPPER, contract::USR_OVL_WORK] {
            absent_or(self.rel_in_deploy.join(m)?.as_bytes(), true)?;
        }
        absent_or(self.stateroot.join(contract::BACKING)?.as_bytes(), true)?;
        absent_or(self.rel_backing.as_bytes(), true)?;
        absent_or(
            self.stateroot.join(contract::PRISTINE_LINKS)?.as_bytes(),
            true,
        )?;
        self.entries()?;
        Ok(())
    }
}

/// `OS/CSUM.SERIAL`.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.stateroot, self.name)
    }
}

/// Deployments as `OS/CSUM.SERIAL`, sorted.
pub type Deployments = heapless::Vec<PathBuf, MAX_DEPLOYMENTS>;

/// `OS/CSUM.SERIAL` split into its stateroot and name.
pub fn split(d: &PathBuf) -> (&[u8], &[u8]) {
    let b = d.as_bytes();
    match b.iter().position(|&c| c == b'/') {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, b""),
    }
}

/// Every deployment directory under `sysroot` (walked: a symlinked
/// `ostree/deploy`, stateroot or deployment is never followed).
fn all_deployments(sysroot: &[u8]) -> Result<Deployments> {
    let deploy = match Tree::open(sysroot)?.sub(b"ostree/deploy") {
        Ok(d) => d,
        Err(Error::Sys {
            errno: Errno::NOENT,
            ..
        }) => return Ok(Deployments::new()),
        Err(e) => return Err(e),
    };
    let mut out = Deployments::new();
    let mut full = false;
    // Unreadable directories have no deployments; names too long for our
    // paths cannot be acted on and are left out.
    let _ = deploy.for_each_name(b".", |os| {
        let Ok(dir) = PathBuf::from(os).and_then(|p| p.join(b"deploy")) else {
            return;
        };
        let _ = deploy.for_each_name(dir.as_bytes(), |name| {
            let real = dir
                .join(name)
                .is_ok_and(|p| deploy.is_real_dir(p.as_bytes()));
            if name.starts_with(b".") || !real {
                return;
            }
            let Ok(d) = PathBuf::from(os).and_then(|p| p.join(name)) else {
                return;
            };
            full |= out.push(d).is_err();
        });
    });
    if full {
        return Err(err!(
            "more than {MAX_DEPLOYMENTS} deployments under {}, refusing",
            deploy.path
        ));
    }
    out.sort_unstable_by(|a, b| split(a).cmp(&split(b)));
    Ok(out)
}

/// The booted deployment: the one whose directory has the device and inode
/// recorded in `/run/ostree-booted` (or, as libostree falls back, those of `/`).
pub fn booted(sysroot: &[u8]) -> Result<Target> {
    const BOOTED: &[u8] = contract::OSTREE_BOOTED;
    let mut buf = [0u8; SMALL_FILE_MAX];
    let data = match read_small(BOOTED, &mut buf) {
        Ok(d) => d,
        Err(Errno::NOENT) => {
            return Err(err!("not booted into an OSTree deployment (no /run/ostree-booted); use --sysroot DIR for a sysroot at rest"))
        }
        Err(e) => return Err(read_error(BOOTED, e, SMALL_FILE_MAX)),
    };
    let composefs = Composefs::from_booted(data);
    let id = match otcore::gvariant::lookup_u64_pair(data, "backing-root-device-inode") {
        Some(id) => id,
        None => {
            let st = sys::stat(b"/").ctx("stat", b"/")?;
            (st.dev, st.ino)
        }
    };
    let deploy = PathBuf::from(sysroot)?.join(b"ostree/deploy")?;
    let tree = Tree::open(sysroot)?.sub(b"ostree/deploy")?;
    for d in &all_deployments(sysroot)? {
        let (os, name) = split(d);
        let dir = PathBuf::from(os)?.join(b"deploy")?.join(name)?;
        if tree
            .lstat(dir.as_bytes())
            .is_ok_and(|st| (st.dev, st.ino) == id)
        {
            let mut t = Target::new(sysroot, os, name, true)?;
            t.composefs = composefs;
            return Ok(t);
        }
    }
    Err(err!(
        "no deployment under {deploy} matches the booted one (device {}, inode {})",
        id.0,
        id.1
    ))
}

/// A named deployment (`CSUM.SERIAL`, or `OS/CSUM.SERIAL`) of an offline sysroot.
pub fn named(sysroot: &[u8], name: &[u8], live: bool) -> Result<Target> {
    let (want_os, want_name) = match name.iter().position(|&b| b == b'/') {
        Some(i) => (Some(&name[..i]), &name[i + 1..]),
        None => (None, name),
    };
    let all = all_deployments(sysroot)?;
    let mut found = all
        .iter()
        .map(split)
        .filter(|&(os, n)| n == want_name && want_os.map_or(true, |w| w == os));
    match (found.next(), found.next()) {
        (Some((os, n)), None) => Target::new(sysroot, os, n, live),
        (None, _) => {
            // One line each: any number of deployments, none cut from a
            // message of bounded length.
            let deploy = PathBuf::from(sysroot)?.join(b"ostree/deploy")?;
            if all.is_empty() {
                return Err(err!(
                    "no deployment {} under {deploy}: there is none",
                    Lossy(name)
                ));
            }
            otcore::warn!("ostree-unlock: the deployments under {deploy}:");
            for d in all.iter() {
                otcore::warn!("  {d}");
            }
            Err(err!(
                "no deployment {} under {deploy} (the deployments are listed above)",
                Lossy(name)
            ))
        }
        _ => Err(err!(
            "deployment {0} exists in several stateroots; say OS/{0}",
            Lossy(name)
        )),
    }
}

/// The default deployment of a sysroot at rest: the one of its newest boot entry.
pub fn default(sysroot: &[u8]) -> Result<Target> {
    let root = PathBuf::from(sysroot)?;
    let entries = crate::entries::list(Tree::open(sysroot)?.try_sub(b"boot")?.as_ref())?;
    // The newest: highest version, then the first name (as libostree sorts).
    let mut best: Option<(u64, PathBuf, Deployment)> = None;
    entries.each(|e, text| {
        if let Some(d) = crate::entries::deployment(text, &root) {
            let newer = best.as_ref().map_or(true, |(v, n, _)| {
                e.version > *v || (e.version == *v && e.name.as_bytes() < n.as_bytes())
            });
            if newer {
                best = Some((e.version, e.name.clone(), d));
            }
        }
        false
    });
    match best {
        Some((_, _, d)) => Target::from_deployment(sysroot, &d, false),
        None => Err(err!(
            "no boot entry in {} leads to a deployment; give --deployment",
            entries.dir
        )),
    }
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

/// Read the unlock state of `t`. An unreadable origin has no `unlocked=`
/// (as libostree reads it); only one too large to read is an error.
pub fn state(t: &Target) -> Result<Unlocked> {
    if t.live {
        if exists(t.state_dir.join(contract::UNLOCKED_DEVELOPMENT)?.as_bytes()) {
            return Ok(Unlocked::Development);
        }
        if exists(t.state_dir.join(contract::UNLOCKED_TRANSIENT)?.as_bytes()) {
            return Ok(Unlocked::Transient);
        }
    }
    let deploy = t.deploy_tree()?;
    let origin = t.origin_rel.as_bytes();
    let mut buf = [0u8; SMALL_FILE_MAX];
    let text = match deploy.read_small(origin, &mut buf) {
        Ok(d) => core::str::from_utf8(d).unwrap_or(""),
        Err(e @ (Errno::FBIG | Errno::LOOP)) => {
            return Err(deploy.read_error(origin, e, SMALL_FILE_MAX))
        }
        Err(_) => "",
    };
    if crate::origin::get(text, contract::ORIGIN_UNLOCKED_KEY) == Some("hotfix") {
        return Ok(Unlocked::Hotfix);
    }
    Ok(Unlocked::None)
}

/// Both hotfix markers exist as real directories.
pub fn hotfix_markers(t: &Target) -> bool {
    let Ok(dir) = t.dir_tree() else {
        return false;
    };
    let real = |m: &[u8]| dir.is_real_dir(m);
    real(contract::USR_OVL_UPPER) && real(contract::USR_OVL_WORK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_paths() {
        let t = Target::new(b"/sysroot", b"os", b"abc.0", true).unwrap();
        assert_eq!(t.dir.as_bytes(), b"/sysroot/ostree/deploy/os/deploy/abc.0");
        assert_eq!(t.rel_in_deploy.as_bytes(), b"os/deploy/abc.0");
        assert_eq!(t.rel_backing.as_bytes(), b"os/backing/abc.0");
        assert_eq!(t.origin_rel.as_bytes(), b"os/deploy/abc.0.origin");
        assert_eq!(
            t.state_dir.as_bytes(),
            b"/run/ostree/deployment-state/abc.0"
        );
        assert_eq!(t.to_string(), "os/abc.0");
    }

    #[test]
    fn signed_conf() {
        let yes = |t: &str| conf_says_signed(t.as_bytes()).unwrap();
        assert!(yes("[composefs]\nenabled = signed\n"));
        assert!(yes(
            "# x\n[etc]\ntransient=true\n[composefs]\nenabled=signed\nkeypath=/k\n"
        ));
        assert!(!yes("[composefs]\nenabled = yes\n"));
        assert!(!yes("[composefs]\nenabled = signed\nenabled = verity\n"));
        assert!(!yes("[other]\nenabled = signed\n"));
        assert!(!yes(""));
        assert_eq!(conf_says_signed(b"[composefs]\nbad\n").unwrap_err().line, 2);
    }

    #[test]
    fn composefs_from_booted() {
        use otcore::gvariant::{Value, VarDict};
        let mut d = VarDict::new();
        d.insert("composefs", Value::Bool(true)).unwrap();
        d.insert("composefs.verity", Value::Bool(true)).unwrap();
        d.insert("composefs.signed", Value::Str(b"/etc/k")).unwrap();
        let c = Composefs::from_booted(d.finish().unwrap()).unwrap();
        assert_eq!(c.to_string(), "composefs, verity, signed");
        let mut d = VarDict::new();
        d.insert("composefs", Value::Bool(true)).unwrap();
        d.insert("composefs.verity", Value::Bool(false)).unwrap();
        let c = Composefs::from_booted(d.finish().unwrap()).unwrap();
        assert_eq!((c.verity, c.signed), (false, false));
        let mut d = VarDict::new();
        d.insert("composefs", Value::Bool(false)).unwrap();
        assert_eq!(Composefs::from_booted(d.finish().unwrap()), None);
    }

    #[test]
    fn split_names() {
        let mut v = Deployments::new();
        v.push(PathBuf::from(b"os/a.0").unwrap()).unwrap();
        assert_eq!(split(&v[0]), (&b"os"[..], &b"a.0"[..]));
    }
}
