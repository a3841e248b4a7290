//! Loading kernel modules without modprobe: the names come from the
//! initramfs's module list and the kernel command line, the files and their
//! dependencies from `modules.dep`, and `finit_module(2)` loads them.

use crate::error::Error;
use otcore::cmdline::Cmdline;
use otcore::path::PathBuf;
use otcore::sys;
use otcore::sys::{Errno, ModuleFlags, OFlags};

/// The initramfs's list of modules to load at boot: one name per line, `#`
/// starts a comment. Written by `qemu initramfs` (and by integrators).
pub const MODULE_LIST: &[u8] = b"/etc/initramfs-modules";

/// Longest module name we handle.
pub type ModName = heapless::Vec<u8, 64>;

/// A module name with `-` spelled `_`, as the kernel names modules.
pub fn normalize(name: &[u8]) -> ModName {
    let mut n = ModName::new();
    for &b in name.iter().take(64) {
        let _ = n.push(if b == b'-' { b'_' } else { b });
    }
    n
}

/// The module name of a `modules.dep` path (`kernel/fs/overlayfs/overlay.ko.xz` → `overlay`).
pub fn name_of_path(path: &[u8]) -> ModName {
    let base = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    let end = base
        .windows(3)
        .position(|w| w == b".ko")
        .unwrap_or(base.len());
    normalize(&base[..end])
}

/// Whether a module file is compressed (and must be decompressed by the kernel).
pub fn is_compressed(path: &[u8]) -> bool {
    !path.ends_with(b".ko")
}

/// Whether the running kernel knows filesystem `fstype` already (built in or
/// loaded), from `/proc/filesystems` (lines `[nodev]\tNAME`).
pub fn filesystem_known(fstype: &[u8]) -> bool {
    let mut buf = [0u8; 2048];
    let Ok(n) = sys::read_file(b"/proc/filesystems", &mut buf) else {
        return false;
    };
    buf[..n]
        .split(|&b| b == b'\n')
        .any(|l| l.rsplit(|&b| b == b'\t').next() == Some(fstype))
}

/// One line of `modules.dep`: the module's path and its dependencies (all of
/// them, transitively, in the order modprobe would unload them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepLine<'a> {
    pub path: &'a [u8],
    pub deps: &'a [u8],
}

impl<'a> DepLine<'a> {
    /// Dependencies in load order (the file lists them last-loaded first).
    pub fn deps_in_load_order(&self) -> impl Iterator<Item = &'a [u8]> {
        self.deps.rsplit(|&b| b == b' ').filter(|d| !d.is_empty())
    }
}

/// Find module `name` (normalised) in the text of `modules.dep`.
pub fn find<'a>(modules_dep: &'a [u8], name: &[u8]) -> Option<DepLine<'a>> {
    let want = normalize(name);
    modules_dep.split(|&b| b == b'\n').find_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        let path = &line[..colon];
        (name_of_path(path) == want).then(|| DepLine {
            path,
            deps: trim(&line[colon + 1..]),
        })
    })
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end]
}

/// Every module name the boot asks for: the initramfs's list, then
/// `rd.modules-load=` and `modules-load=` (comma-separated; `_` and `-` alike).
pub fn requested<'a>(list: &'a [u8], cmdline: &Cmdline<'a>, mut f: impl FnMut(&'a [u8], bool)) {
    for line in list.split(|&b| b == b'\n') {
        let line = trim(line);
        if !line.is_empty() && line[0] != b'#' {
            f(line, true);
        }
    }
    for p in cmdline.params() {
        let key = normalize(p.key);
        if key.as_slice() == b"rd.modules_load" || key.as_slice() == b"modules_load" {
            for name in p.value.unwrap_or(b"").split(|&b| b == b',') {
                if !name.is_empty() {
                    f(name, false);
                }
            }
        }
    }
}

/// Module parameters from the command line: `name.param=value` for `name`.
pub fn params_for(cmdline: &Cmdline, name: &[u8], out: &mut heapless::Vec<u8, 256>) {
    let want = normalize(name);
    for p in cmdline.params() {
        let Some(dot) = p.key.iter().position(|&b| b == b'.') else {
            continue;
        };
        if normalize(&p.key[..dot]) != want {
            continue;
        }
        if !out.is_empty() {
            let _ = out.push(b' ');
        }
        let _ = out.extend_from_slice(&p.key[dot + 1..]);
        if let Some(v) = p.value {
            let _ = out.push(b'=');
            let _ = out.extend_from_slice(v);
        }
    }
}

/// Loads modules from `/lib/modules/$(uname -r)`.
pub struct Loader<'c> {
    base: PathBuf,
    dep: Option<sys::Mapping>,
    cmdline: &'c Cmdline<'c>,
    pub loaded: u32,
}

impl<'c> Loader<'c> {
    /// Modules of the running kernel under `root` (`/` in an initramfs; the
    /// deployment's `/usr` with no initramfs): `root/lib/modules/$(uname -r)`.
    pub fn new(cmdline: &'c Cmdline<'c>, root: &[u8]) -> Result<Self, Error> {
        let mut rel = [0u8; 65];
        let release = sys::kernel_release(&mut rel).map_err(|e| Error::sys("uname", b"", e))?;
        let mut base = PathBuf::from(root)?;
        base.push(b"lib/modules")?;
        base.push(release)?;
        let dep_path = base.join(b"modules.dep")?;
        let dep = match sys::map_file(dep_path.as_bytes()) {
            Ok(m) => Some(m),
            Err(Errno::NOENT) => None,
            Err(e) => return Err(Error::sys("read", dep_path.as_bytes(), e)),
        };
        Ok(Loader {
            base,
            dep,
            cmdline,
            loaded: 0,
        })
    }

    /// Load `name` and its dependencies. A module that is built in or
    /// already loaded (`/sys/module/NAME` exists) is fine.
    pub fn load(&mut self, name: &[u8]) -> Result<(), Error> {
        let text = self.dep.as_ref().map_or(&[][..], |m| m.bytes());
        let Some(line) = find(text, name) else {
            let mut sysfs = PathBuf::from(b"/sys/module")?;
            sysfs.push(&normalize(name))?;
            if sys::lstat(sysfs.as_bytes()).is_ok() {
                return Ok(());
            }
            return Err(Error::module_missing(name, &self.base));
        };
        for dep in line.deps_in_load_order() {
            self.loaded += load_file(&self.base, self.cmdline, dep)? as u32;
        }
        self.loaded += load_file(&self.base, self.cmdline, line.path)? as u32;
        Ok(())
    }
}

/// Load one module file; `Ok(false)` if it was already loaded.
fn load_file(base: &PathBuf, cmdline: &Cmdline, rel: &[u8]) -> Result<bool, Error> {
    let path = base.join(rel)?;
    let fd = sys::open(path.as_bytes(), OFlags::RDONLY, 0)
        .map_err(|e| Error::sys("open module", path.as_bytes(), e))?;
    let mut params = heapless::Vec::<u8, 256>::new();
    params_for(cmdline, &name_of_path(rel), &mut params);
    let compressed = is_compressed(rel);
    let flags = if compressed {
        ModuleFlags::COMPRESSED_FILE
    } else {
        ModuleFlags::EMPTY
    };
    match sys::finit_module(&fd, &params, flags) {
        Ok(()) => Ok(true),
        Err(Errno::EXIST) => Ok(false),
        // EOPNOTSUPP: built without CONFIG_MODULE_DECOMPRESS (or without this
        // format); EINVAL: a kernel older than 5.17, which lacks the flag.
        Err(errno @ (Errno::OPNOTSUPP | Errno::INVAL)) if compressed => {
            Err(Error::ModuleCompressed { path, errno })
        }
        Err(e) => Err(Error::sys("load module", path.as_bytes(), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &[u8] = b"kernel/fs/overlayfs/overlay.ko:\n\
        kernel/drivers/block/virtio_blk.ko.xz: kernel/drivers/virtio/virtio_ring.ko.xz kernel/drivers/virtio/virtio.ko.xz\n\
        kernel/fs/fat/vfat.ko: kernel/fs/fat/fat.ko\n";

    #[test]
    fn names_and_lookup() {
        assert_eq!(
            name_of_path(b"kernel/a/virtio-blk.ko.zst").as_slice(),
            b"virtio_blk"
        );
        assert_eq!(name_of_path(b"overlay.ko").as_slice(), b"overlay");
        assert!(is_compressed(b"x.ko.xz") && !is_compressed(b"x.ko"));
        let l = find(DEP, b"overlay").unwrap();
        assert_eq!(l.path, b"kernel/fs/overlayfs/overlay.ko");
        assert_eq!(l.deps_in_load_order().count(), 0);
        let l = find(DEP, b"virtio-blk").unwrap();
        let deps: Vec<_> = l.deps_in_load_order().collect();
        assert_eq!(
            deps,
            vec![
                &b"kernel/drivers/virtio/virtio.ko.xz"[..],
                b"kernel/drivers/virtio/virtio_ring.ko.xz"
            ]
        );
        assert!(find(DEP, b"fat_x").is_none());
        assert!(find(DEP, b"ring").is_none());
        assert!(find(b"", b"overlay").is_none());
    }

    #[test]
    fn requested_names() {
        let cmdline = Cmdline::new(b"rd.modules-load=a,b-c modules_load=d quiet rd.modules_load=");
        let mut got = Vec::new();
        requested(
            b"# comment\noverlay\n\n  erofs  \n",
            &cmdline,
            |n, from_list| got.push((n.to_vec(), from_list)),
        );
        let want: Vec<(Vec<u8>, bool)> = vec![
            (b"overlay".to_vec(), true),
            (b"erofs".to_vec(), true),
            (b"a".to_vec(), false),
            (b"b-c".to_vec(), false),
            (b"d".to_vec(), false),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn module_params() {
        let c = Cmdline::new(b"overlay.redirect_dir=on foo.x=1 overlay.metacopy quiet");
        let mut p = heapless::Vec::new();
        params_for(&c, b"overlay", &mut p);
        assert_eq!(p.as_slice(), b"redirect_dir=on metacopy");
    }
}
