//! Loading kernel modules without modprobe: the names come from the
//! initramfs's module list and the kernel command line, the files and their
//! dependencies from `modules.dep`, soft dependencies from `modules.softdep`
//! (`softdep ext4 pre: crc32c`), names that are aliases through
//! `modules.alias` (`alias crypto-crc32c crc32c_generic`), as modprobe does;
//! `finit_module(2)` loads them.

use crate::error::Error;
use otcore::cmdline::Cmdline;
use otcore::path::{Lossy, PathBuf};
use otcore::sys::{Errno, ModuleFlags, OFlags};
use otcore::{sys, warn};

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

/// Whether `a` and `b` name the same module or alias (`-` and `_` alike).
fn same_name(a: &[u8], b: &[u8]) -> bool {
    let norm = |c: u8| if c == b'-' { b'_' } else { c };
    a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| norm(x) == norm(y))
}

/// Whether `name` matches the glob `pattern` of `modules.alias` (`*` and
/// `?`, as modprobe's fnmatch; `-` and `_` alike). Iterative, with one
/// backtracking point: linear in practice, never recursive.
pub fn alias_matches(pattern: &[u8], name: &[u8]) -> bool {
    let norm = |c: u8| if c == b'-' { b'_' } else { c };
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || norm(c) == norm(name[n]) => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

/// The words of each line of `text`, for the line-oriented module tables.
fn lines_of_words<'a>(text: &'a [u8], mut f: impl FnMut(&mut dyn Iterator<Item = &'a [u8]>)) {
    for line in text.split(|&b| b == b'\n') {
        f(&mut line
            .split(|&b| b == b' ' || b == b'\t')
            .filter(|w| !w.is_empty()));
    }
}

/// Call `f` with each module `name` is an alias of, from the text of
/// `modules.alias` (lines `alias PATTERN MODULE`).
pub fn alias_targets<'a>(aliases: &'a [u8], name: &[u8], mut f: impl FnMut(&'a [u8])) {
    lines_of_words(aliases, |w| {
        if let (Some(b"alias"), Some(pattern), Some(module)) = (w.next(), w.next(), w.next()) {
            if alias_matches(pattern, name) {
                f(module);
            }
        }
    });
}

/// Which soft dependencies: loaded before the module, or after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Soft {
    Pre,
    Post,
}

/// Call `f` with each soft dependency of module `name` of kind `kind`, from
/// the text of `modules.softdep` (lines `softdep MODULE pre: A B post: C`;
/// names before any `pre:` or `post:` mean nothing, as for modprobe).
pub fn softdeps<'a>(softdep: &'a [u8], name: &[u8], kind: Soft, mut f: impl FnMut(&'a [u8])) {
    lines_of_words(softdep, |w| {
        if w.next() != Some(b"softdep") || !w.next().is_some_and(|m| same_name(m, name)) {
            return;
        }
        let mut mode = None;
        for word in w {
            match word {
                b"pre:" => mode = Some(Soft::Pre),
                b"post:" => mode = Some(Soft::Post),
                _ if mode == Some(kind) => f(word),
                _ => {}
            }
        }
    });
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

/// How deep soft dependencies and aliases are followed (a soft dependency
/// of a soft dependency...): enough for real kernels, and no loop can run away.
const MAX_DEPTH: u32 = 4;

/// Loads modules from `/lib/modules/$(uname -r)`.
pub struct Loader<'c> {
    base: PathBuf,
    dep: Option<sys::Mapping>,
    softdep: Option<sys::Mapping>,
    alias: Option<sys::Mapping>,
    cmdline: &'c Cmdline<'c>,
    /// How many module files were loaded (a Cell: the tables are borrowed
    /// while modules load).
    loaded: core::cell::Cell<u32>,
}

/// `base/name` mapped, or `None` when there is no such file.
fn map_optional(base: &PathBuf, name: &[u8]) -> Result<Option<sys::Mapping>, Error> {
    let path = base.join(name)?;
    match sys::map_file(path.as_bytes()) {
        Ok(m) => Ok(Some(m)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(Error::sys("read", path.as_bytes(), e)),
    }
}

fn text(m: &Option<sys::Mapping>) -> &[u8] {
    m.as_ref().map_or(&[][..], |m| m.bytes())
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
        Ok(Loader {
            dep: map_optional(&base, b"modules.dep")?,
            softdep: map_optional(&base, b"modules.softdep")?,
            alias: map_optional(&base, b"modules.alias")?,
            base,
            cmdline,
            loaded: core::cell::Cell::new(0),
        })
    }

    /// How many module files were loaded.
    pub fn loaded(&self) -> u32 {
        self.loaded.get()
    }

    /// Load `name` (a module or an alias of modules) with its dependencies
    /// and soft dependencies. A module that is built in or already loaded
    /// (`/sys/module/NAME` exists) is fine.
    pub fn load(&self, name: &[u8]) -> Result<(), Error> {
        self.load_name(name, 0)
    }

    fn load_name(&self, name: &[u8], depth: u32) -> Result<(), Error> {
        match find(text(&self.dep), name) {
            Some(line) => self.load_line(line, depth),
            None => self.load_builtin_or_alias(name, depth),
        }
    }

    fn load_builtin_or_alias(&self, name: &[u8], depth: u32) -> Result<(), Error> {
        let mut sysfs = PathBuf::from(b"/sys/module")?;
        sysfs.push(&normalize(name))?;
        if sys::lstat(sysfs.as_bytes()).is_ok() {
            return Ok(());
        }
        // An alias: every module it names, as modprobe loads them.
        let mut found = false;
        let mut r = Ok(());
        if depth < MAX_DEPTH {
            alias_targets(text(&self.alias), name, |target| {
                found = true;
                r = core::mem::replace(&mut r, Ok(())).and(self.load_name(target, depth + 1));
            });
        }
        if found {
            r
        } else {
            Err(Error::module_missing(name, &self.base))
        }
    }

    /// A module of `modules.dep` and its dependencies, in load order.
    fn load_line(&self, line: DepLine, depth: u32) -> Result<(), Error> {
        for dep in line.deps_in_load_order() {
            self.load_file(dep, depth)?;
        }
        self.load_file(line.path, depth)
    }

    /// One module file, between its soft dependencies (`pre:` first). A soft
    /// dependency that cannot be loaded is a warning that names it.
    fn load_file(&self, rel: &[u8], depth: u32) -> Result<(), Error> {
        let name = name_of_path(rel);
        self.load_soft(&name, Soft::Pre, depth);
        let new = load_file(&self.base, self.cmdline, rel)?;
        self.loaded.set(self.loaded.get() + new as u32);
        self.load_soft(&name, Soft::Post, depth);
        Ok(())
    }

    fn load_soft(&self, name: &[u8], kind: Soft, depth: u32) {
        if depth >= MAX_DEPTH {
            return;
        }
        softdeps(text(&self.softdep), name, kind, |soft| {
            if let Err(e) = self.load_name(soft, depth + 1) {
                warn!(
                    "ostree-prepare-root: warning: soft dependency {} of {}: {}",
                    Lossy(soft),
                    Lossy(name),
                    e
                );
            }
        });
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
        // The module has nothing to drive here (no such device, a CPU
        // without the instructions it needs: crc32c_intel without SSE4.2),
        // as modprobe reports it for modules loaded on the off chance.
        Err(Errno::NODEV) => {
            warn!(
                "ostree-prepare-root: warning: module {}: nothing for it on this machine (ENODEV), skipped",
                Lossy(&name_of_path(rel))
            );
            Ok(false)
        }
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

    const ALIAS: &[u8] = b"# Aliases extracted from modules themselves.\n\
        alias crypto-crc32c crc32c_generic\n\
        alias crypto-crc32c crc32c_intel\n\
        alias fs-ext4 ext4\n\
        alias pci:v00001AF4d00001001sv*sd*bc*sc*i* virtio_blk\n";
    const SOFTDEP: &[u8] = b"# Soft dependencies extracted from modules themselves.\n\
        softdep ext4 pre: crypto-crc32c\n\
        softdep cifs gcm\n\
        softdep nfsd pre: crypto-md5 crypto-sha256 post: nfs_acl\n\
        softdep virtio-blk post: crypto-crc32c\n";

    #[test]
    fn aliases() {
        let targets = |name: &[u8]| {
            let mut v = Vec::new();
            alias_targets(ALIAS, name, |t| v.push(t));
            v
        };
        assert_eq!(
            targets(b"crypto_crc32c"),
            vec![&b"crc32c_generic"[..], b"crc32c_intel"]
        );
        assert_eq!(targets(b"fs-ext4"), vec![&b"ext4"[..]]);
        assert!(targets(b"crypto-crc32").is_empty());
        assert!(targets(b"ext4").is_empty());
        let pci = b"pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00";
        assert_eq!(targets(pci), vec![&b"virtio_blk"[..]]);
        for (pattern, name, want) in [
            (&b"a*b"[..], &b"ab"[..], true),
            (b"a*b", b"axxbxb", true),
            (b"a*b", b"axxbx", false),
            (b"a?c", b"abc", true),
            (b"*", b"", true),
            (b"", b"x", false),
            (b"x-y", b"x_y", true),
            (b"**a", b"ba", true),
        ] {
            assert_eq!(alias_matches(pattern, name), want, "{pattern:?} {name:?}");
        }
    }

    #[test]
    fn soft_dependencies() {
        let get = |m: &[u8], kind| {
            let mut v = Vec::new();
            softdeps(SOFTDEP, m, kind, |d| v.push(d));
            v
        };
        let pre = |m: &[u8]| get(m, Soft::Pre);
        let post = |m: &[u8]| get(m, Soft::Post);
        assert_eq!(pre(b"ext4"), vec![&b"crypto-crc32c"[..]]);
        assert!(post(b"ext4").is_empty());
        assert_eq!(pre(b"nfsd"), vec![&b"crypto-md5"[..], b"crypto-sha256"]);
        assert_eq!(post(b"nfsd"), vec![&b"nfs_acl"[..]]);
        // Names before pre:/post: mean nothing; - and _ are alike.
        assert!(pre(b"cifs").is_empty() && post(b"cifs").is_empty());
        assert_eq!(post(b"virtio_blk"), vec![&b"crypto-crc32c"[..]]);
        assert!(pre(b"ext").is_empty());
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
