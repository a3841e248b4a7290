//! Finding the deployment named by `ostree=`, without ever leaving SYSROOT.
//!
//! `ostree=/ostree/boot.N/OS/BOOTCSUM/SERIAL` names a symlink inside SYSROOT
//! whose chain ends at `ostree/deploy/OS/deploy/CSUM.SERIAL`. We follow that
//! chain ourselves, component by component, with SYSROOT as the root: an
//! absolute symlink target (which the kernel would resolve against the
//! initramfs's `/`) or a `..` that climbs above SYSROOT is refused.

#![forbid(unsafe_code)]

use crate::path::{components, PathBuf, TooLong};
use crate::sys::{self, Errno};

/// Most symlinks followed while resolving one target (the kernel's limit).
const MAX_SYMLINKS: u32 = 40;
/// Longest intermediate path while resolving (target plus link texts).
const WORK_CAP: usize = 2048;

/// The kind of a filesystem object, as `lstat` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    Symlink,
    Other,
}

/// Read-only questions about the tree under SYSROOT, with paths relative to it.
/// [`RealSysroot`] asks the running system; tests use an in-memory tree.
pub trait SysrootFs {
    fn kind(&self, rel: &[u8]) -> Result<Kind, Errno>;
    fn readlink<'b>(&self, rel: &[u8], buf: &'b mut [u8]) -> Result<&'b [u8], Errno>;
    fn list_dir(&self, rel: &[u8], f: &mut dyn FnMut(&[u8])) -> Result<(), Errno>;
}

/// SYSROOT as seen through real system calls.
pub struct RealSysroot<'a> {
    pub root: &'a PathBuf,
}

impl SysrootFs for RealSysroot<'_> {
    fn kind(&self, rel: &[u8]) -> Result<Kind, Errno> {
        let p = self.root.join(rel).map_err(|_| Errno::NAMETOOLONG)?;
        let st = sys::lstat(p.as_bytes())?;
        Ok(if st.is_symlink() {
            Kind::Symlink
        } else if st.is_dir() {
            Kind::Dir
        } else {
            Kind::Other
        })
    }

    fn readlink<'b>(&self, rel: &[u8], buf: &'b mut [u8]) -> Result<&'b [u8], Errno> {
        let p = self.root.join(rel).map_err(|_| Errno::NAMETOOLONG)?;
        let n = sys::readlink(p.as_bytes(), buf)?;
        Ok(&buf[..n])
    }

    fn list_dir(&self, rel: &[u8], f: &mut dyn FnMut(&[u8])) -> Result<(), Errno> {
        let p = self.root.join(rel).map_err(|_| Errno::NAMETOOLONG)?;
        sys::for_each_dir_entry(p.as_bytes(), f)
    }
}

/// A resolved deployment: `ostree/deploy/OS/deploy/CSUM.SERIAL`, relative to SYSROOT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    rel: PathBuf,
}

impl Deployment {
    /// Accept `rel` only if it has exactly the shape of a deployment path.
    pub fn from_rel(rel: &[u8]) -> Option<Deployment> {
        let mut c = components(rel);
        let (ostree, deploy, os, deploy2, name) =
            (c.next()?, c.next()?, c.next()?, c.next()?, c.next()?);
        if c.next().is_some() || ostree != b"ostree" || deploy != b"deploy" || deploy2 != b"deploy"
        {
            return None;
        }
        if os.starts_with(b".") || !is_deployment_name(name) {
            return None;
        }
        let mut p = PathBuf::new();
        for part in [ostree, deploy, os, deploy2, name] {
            p.push(part).ok()?;
        }
        Some(Deployment { rel: p })
    }

    /// `ostree/deploy/OS/deploy/CSUM.SERIAL`.
    pub fn rel(&self) -> &PathBuf {
        &self.rel
    }

    /// The stateroot (`OS`).
    pub fn stateroot(&self) -> &[u8] {
        components(self.rel.as_bytes()).nth(2).unwrap_or(b"")
    }

    /// `CSUM.SERIAL`.
    pub fn name(&self) -> &[u8] {
        self.rel.file_name()
    }

    /// The stateroot's `var`, relative to SYSROOT: `ostree/deploy/OS/var`.
    pub fn stateroot_var(&self) -> Result<PathBuf, TooLong> {
        let mut p = PathBuf::from(b"ostree/deploy")?;
        p.push(self.stateroot())?;
        p.push(b"var")?;
        Ok(p)
    }
}

/// `CSUM.SERIAL`: a non-empty checksum, a dot, a decimal serial.
fn is_deployment_name(name: &[u8]) -> bool {
    let Some(dot) = name.iter().rposition(|&b| b == b'.') else {
        return false;
    };
    let (csum, serial) = (&name[..dot], &name[dot + 1..]);
    !csum.is_empty()
        && csum.iter().all(u8::is_ascii_alphanumeric)
        && !serial.is_empty()
        && serial.iter().all(u8::is_ascii_digit)
}

/// Why `ostree=` could not be turned into a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetError {
    /// The path (relative to SYSROOT) does not exist; `errno` says how.
    Missing { path: PathBuf, errno: Errno },
    /// `ostree=` itself is not a symlink.
    NotSymlink { path: PathBuf },
    /// A symlink is absolute or climbs above SYSROOT.
    Escapes { link: PathBuf },
    /// Too many symlinks.
    Loop,
    /// Resolves inside SYSROOT, but not to a deployment directory.
    NotDeployment { resolved: PathBuf },
    /// A path grew beyond our fixed buffers.
    TooLong,
}

impl From<TooLong> for TargetError {
    fn from(_: TooLong) -> Self {
        TargetError::TooLong
    }
}

/// Resolve the `ostree=` value `target` inside SYSROOT.
pub fn resolve(fs: &dyn SysrootFs, target: &[u8]) -> Result<Deployment, TargetError> {
    let target = crate::path::trim_leading_slashes(target);
    let (parent, last) = match target.iter().rposition(|&b| b == b'/') {
        Some(i) => (&target[..i], &target[i + 1..]),
        None => (&b""[..], target),
    };
    let mut resolved = PathBuf::new();
    let mut hops = 0;
    // The directory holding the link, resolved inside SYSROOT first, so that
    // even the check of the link itself never goes through an outside symlink.
    follow(fs, &mut resolved, parent, &mut hops)?;

    let mut link = resolved.clone();
    link.push(last)?;
    match fs.kind(link.as_bytes()) {
        Ok(Kind::Symlink) if last != b"." && last != b".." => {}
        Ok(_) => return Err(TargetError::NotSymlink { path: link }),
        Err(errno) => return Err(TargetError::Missing { path: link, errno }),
    }
    let kind = follow(fs, &mut resolved, last, &mut hops)?;

    match (Deployment::from_rel(resolved.as_bytes()), kind) {
        (Some(d), Some(Kind::Dir)) => Ok(d),
        _ => Err(TargetError::NotDeployment { resolved }),
    }
}

/// Walk `path` from `resolved` (a symlink-free path relative to SYSROOT),
/// following symlinks with SYSROOT as the root. Returns the kind of the last
/// object reached (`None` if the walk ended with `.` or `..`).
fn follow(
    fs: &dyn SysrootFs,
    resolved: &mut PathBuf,
    path: &[u8],
    hops: &mut u32,
) -> Result<Option<Kind>, TargetError> {
    let mut pending: heapless::Vec<u8, WORK_CAP> =
        heapless::Vec::from_slice(path).map_err(|_| TargetError::TooLong)?;
    let mut link_buf = [0u8; 1024];
    let mut last_kind = None;
    // The symlink whose text we are walking, to name it if it escapes.
    let mut via = PathBuf::new();

    while let Some((comp, rest_at)) = next_component(&pending) {
        let mut next: heapless::Vec<u8, WORK_CAP> = heapless::Vec::new();
        last_kind = None;
        match comp {
            b"." => {}
            b".." => {
                if resolved.is_empty() {
                    return Err(TargetError::Escapes { link: via });
                }
                resolved.pop();
            }
            name => {
                let before = resolved.len();
                resolved.push(name)?;
                match fs.kind(resolved.as_bytes()) {
                    Ok(Kind::Symlink) => {
                        *hops += 1;
                        if *hops > MAX_SYMLINKS {
                            return Err(TargetError::Loop);
                        }
                        let link =
                            fs.readlink(resolved.as_bytes(), &mut link_buf)
                                .map_err(|errno| TargetError::Missing {
                                    path: resolved.clone(),
                                    errno,
                                })?;
                        if link.first() == Some(&b'/') {
                            return Err(TargetError::Escapes {
                                link: resolved.clone(),
                            });
                        }
                        via = resolved.clone();
                        resolved.truncate(before);
                        // The link's text replaces its name in what is left to walk.
                        next.extend_from_slice(link)
                            .and_then(|_| next.extend_from_slice(b"/"))
                            .map_err(|_| TargetError::TooLong)?;
                    }
                    Ok(kind) => last_kind = Some(kind),
                    Err(errno) => {
                        return Err(TargetError::Missing {
                            path: resolved.clone(),
                            errno,
                        })
                    }
                }
            }
        }
        next.extend_from_slice(&pending[rest_at..])
            .map_err(|_| TargetError::TooLong)?;
        pending = next;
    }
    Ok(last_kind)
}

/// The first component of `path` and the index just past it.
fn next_component(path: &[u8]) -> Option<(&[u8], usize)> {
    let start = path.iter().position(|&b| b != b'/')?;
    let len = path[start..]
        .iter()
        .position(|&b| b == b'/')
        .unwrap_or(path.len() - start);
    Some((&path[start..start + len], start + len))
}

/// Space-separated `OS/CSUM.SERIAL` names of existing deployments.
pub type Listing = heapless::Vec<u8, 384>;

/// The deployments that exist under SYSROOT, for error messages (as many
/// as fit; a trailing `...` says some were left out).
pub fn list_deployments(fs: &dyn SysrootFs) -> Listing {
    let mut out = Listing::new();
    let mut full = false;
    let mut stateroots: heapless::Vec<PathBuf, 4> = heapless::Vec::new();
    let _ = fs.list_dir(b"ostree/deploy", &mut |os| {
        if let Ok(p) = PathBuf::from(os) {
            let _ = stateroots.push(p);
        }
    });
    for os in &stateroots {
        let Ok(dir) = PathBuf::from(b"ostree/deploy")
            .and_then(|p| p.join(os.as_bytes()))
            .and_then(|p| p.join(b"deploy"))
        else {
            continue;
        };
        let _ = fs.list_dir(dir.as_bytes(), &mut |name| {
            if !is_deployment_name(name) || full {
                return;
            }
            let before = out.len();
            let sep: &[u8] = if out.is_empty() { b"" } else { b" " };
            let fits = out.extend_from_slice(sep).is_ok()
                && out.extend_from_slice(os.as_bytes()).is_ok()
                && out.extend_from_slice(b"/").is_ok()
                && out.extend_from_slice(name).is_ok();
            if !fits {
                out.truncate(before);
                let _ = out.extend_from_slice(b" ...");
                full = true;
            }
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// An in-memory tree: path (relative) → None for a dir, Some(target) for a symlink.
    pub struct FakeFs(pub BTreeMap<String, Option<String>>);

    impl FakeFs {
        pub fn ostree() -> FakeFs {
            let mut m = BTreeMap::new();
            for d in [
                "ostree",
                "ostree/deploy",
                "ostree/deploy/os",
                "ostree/deploy/os/deploy",
                "ostree/deploy/os/deploy/abc.0",
                "ostree/deploy/os/deploy/def.1",
                "ostree/boot.1.1",
                "ostree/boot.1.1/os",
                "ostree/boot.1.1/os/bc",
                "ostree/repo",
                "ostree/deploy/os/var",
            ] {
                m.insert(d.to_string(), None);
            }
            let links = [
                ("ostree/boot.1", "boot.1.1"),
                ("ostree/boot.1.1/os/bc/0", "../../../deploy/os/deploy/abc.0"),
                ("ostree/boot.1.1/os/bc/1", "../../../deploy/os/deploy/def.1"),
                (
                    "ostree/boot.1.1/os/bc/abs",
                    "/ostree/deploy/os/deploy/abc.0",
                ),
                ("ostree/boot.1.1/os/bc/up", "../../../../../../etc"),
                ("ostree/boot.1.1/os/bc/repo", "../../../repo"),
                ("ostree/boot.1.1/os/bc/loop", "loop"),
                (
                    "ostree/boot.1.1/os/bc/dangling",
                    "../../../deploy/os/deploy/zzz.9",
                ),
                (
                    "ostree/boot.1.1/os/bc/dot",
                    "./../.././../deploy/os/./deploy/abc.0/",
                ),
            ];
            for (l, t) in links {
                m.insert(l.to_string(), Some(t.to_string()));
            }
            FakeFs(m)
        }
    }

    impl SysrootFs for FakeFs {
        fn kind(&self, rel: &[u8]) -> Result<Kind, Errno> {
            let rel = std::str::from_utf8(rel).unwrap().trim_end_matches('/');
            match self.0.get(rel) {
                Some(None) => Ok(Kind::Dir),
                Some(Some(_)) => Ok(Kind::Symlink),
                None => Err(Errno::NOENT),
            }
        }
        fn readlink<'b>(&self, rel: &[u8], buf: &'b mut [u8]) -> Result<&'b [u8], Errno> {
            let rel = std::str::from_utf8(rel).unwrap();
            let t = self.0.get(rel).cloned().flatten().ok_or(Errno::INVAL)?;
            buf[..t.len()].copy_from_slice(t.as_bytes());
            Ok(&buf[..t.len()])
        }
        fn list_dir(&self, rel: &[u8], f: &mut dyn FnMut(&[u8])) -> Result<(), Errno> {
            let prefix = format!("{}/", std::str::from_utf8(rel).unwrap());
            for k in self.0.keys() {
                if let Some(name) = k.strip_prefix(&prefix) {
                    if !name.contains('/') {
                        f(name.as_bytes());
                    }
                }
            }
            Ok(())
        }
    }

    #[test]
    fn resolves_real_chains() {
        let fs = FakeFs::ostree();
        for (target, want) in [
            ("/ostree/boot.1/os/bc/0", "ostree/deploy/os/deploy/abc.0"),
            ("/ostree/boot.1/os/bc/1", "ostree/deploy/os/deploy/def.1"),
            ("ostree/boot.1/os/bc/0", "ostree/deploy/os/deploy/abc.0"),
            ("//ostree/boot.1/os/bc/dot", "ostree/deploy/os/deploy/abc.0"),
        ] {
            let d = resolve(&fs, target.as_bytes()).unwrap();
            assert_eq!(d.rel().as_bytes(), want.as_bytes(), "{target}");
        }
        let d = resolve(&fs, b"/ostree/boot.1/os/bc/1").unwrap();
        assert_eq!(d.stateroot(), b"os");
        assert_eq!(d.name(), b"def.1");
        assert_eq!(
            d.stateroot_var().unwrap().as_bytes(),
            b"ostree/deploy/os/var"
        );
    }

    #[test]
    fn refusals() {
        let fs = FakeFs::ostree();
        let r = |t: &str| resolve(&fs, t.as_bytes()).unwrap_err();
        assert!(matches!(
            r("/ostree/boot.1/os/bc/nope"),
            TargetError::Missing { .. }
        ));
        assert!(matches!(
            r("/ostree/deploy/os/deploy/abc.0"),
            TargetError::NotSymlink { .. }
        ));
        assert!(matches!(
            r("/ostree/boot.1/os/bc/abs"),
            TargetError::Escapes { .. }
        ));
        assert!(matches!(
            r("/ostree/boot.1/os/bc/up"),
            TargetError::Escapes { .. }
        ));
        assert!(matches!(
            r("/ostree/boot.1/os/bc/repo"),
            TargetError::NotDeployment { .. }
        ));
        assert!(matches!(r("/ostree/boot.1/os/bc/loop"), TargetError::Loop));
        assert!(matches!(
            r("/ostree/boot.1/os/bc/dangling"),
            TargetError::Missing { .. }
        ));
        assert!(matches!(
            r(""),
            TargetError::NotSymlink { .. } | TargetError::Missing { .. }
        ));
    }

    #[test]
    fn deployment_shape() {
        for ok in [
            "ostree/deploy/os/deploy/abc.0",
            "ostree/deploy/fedora/deploy/0123abcdef.12",
        ] {
            assert!(Deployment::from_rel(ok.as_bytes()).is_some(), "{ok}");
        }
        for bad in [
            "ostree/deploy/os/deploy/abc",
            "ostree/deploy/os/deploy/abc.",
            "ostree/deploy/os/deploy/.0",
            "ostree/deploy/os/deploy/abc.0/usr",
            "ostree/deploy/os/var",
            "ostree/repo",
            "ostree/deploy/../deploy/abc.0",
            "ostree/deploy/os/deploy/a-b.0",
        ] {
            assert!(Deployment::from_rel(bad.as_bytes()).is_none(), "{bad}");
        }
    }

    #[test]
    fn lists_existing_deployments() {
        let names = list_deployments(&FakeFs::ostree());
        assert_eq!(names.as_slice(), b"os/abc.0 os/def.1");
    }
}
