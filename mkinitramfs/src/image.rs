//! What goes into the image, and the image's bytes.
//!
//! Every entry is collected first, keyed by its path, and written sorted:
//! parents before their contents, the same order whatever the order of the
//! options, fixed modes, owner 0, mtime 0, so that the same inputs give the
//! same bytes.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::compress::{self, Compress};
use crate::cpio::Archive;
use crate::modtree::{self, ModTree};

/// The list `/init` reads: the modules to load at boot, one a line.
pub const MODULE_LIST: &str = "etc/initramfs-modules";
/// Where `/init` reads `prepare-root.conf` first.
pub const CONFIG: &str = "etc/ostree/prepare-root.conf";
/// The directories `/init` mounts on or creates files in.
pub const DIRS: &[&str] = &["dev", "etc", "proc", "run", "sys", "sysroot"];

/// What the image is made of.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The kernel's module tree (`lib/modules/KVER` or `usr/lib/modules/KVER`).
    pub modules_dir: PathBuf,
    /// The `KVER` of `/lib/modules/KVER` in the image (what `uname -r`
    /// will say at boot).
    pub version: String,
    /// Module names or aliases to load at boot.
    pub modules: Vec<String>,
    /// The static `ostree-prepare-root` that becomes `/init`.
    pub init: PathBuf,
    /// A `prepare-root.conf` for `/etc/ostree/prepare-root.conf`.
    pub config: Option<PathBuf>,
    /// Other files: (source, path in the image); the source's permissions.
    pub extras: Vec<(PathBuf, String)>,
}

/// Where an entry's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    Bytes(Vec<u8>),
    /// A file copied as it is, with its size when planned.
    File(PathBuf, u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir,
    /// Character device (major, minor).
    Char(u32, u32),
    File(Data),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub node: Node,
    pub perm: u32,
}

impl Entry {
    pub fn size(&self) -> u64 {
        match &self.node {
            Node::File(Data::Bytes(b)) => b.len() as u64,
            Node::File(Data::File(_, n)) => *n,
            _ => 0,
        }
    }
}

/// The planned image: its entries by path (relative, no leading `/`), the
/// modules in load order, and what was worth a warning.
#[derive(Debug, Clone, Default)]
pub struct Image {
    pub entries: BTreeMap<String, Entry>,
    pub load_order: Vec<String>,
    pub builtin: Vec<String>,
    pub warnings: Vec<String>,
}

#[derive(Debug)]
pub enum Error {
    Io(PathBuf, io::Error),
    Modules(modtree::Error),
    Compress(compress::Error),
    /// Something wrong with an input, said in full.
    Input(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Io(p, e) => write!(f, "{}: {e}", p.display()),
            Error::Modules(e) => e.fmt(f),
            Error::Compress(e) => e.fmt(f),
            Error::Input(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for Error {}

impl From<modtree::Error> for Error {
    fn from(e: modtree::Error) -> Self {
        Error::Modules(e)
    }
}

fn size_of(p: &Path) -> Result<u64, Error> {
    let md = fs::metadata(p).map_err(|e| Error::Io(p.to_path_buf(), e))?;
    if !md.is_file() {
        return Err(Error::Input(format!("{}: not a regular file", p.display())));
    }
    Ok(md.len())
}

/// Whether `bytes` is an ELF executable without a program interpreter
/// (`PT_INTERP`): static, so it runs alone in an initramfs. `Err` says why not.
pub fn check_static_elf(bytes: &[u8]) -> Result<(), &'static str> {
    if !bytes.starts_with(b"\x7fELF") || bytes.len() < 64 {
        return Err("is not an ELF program");
    }
    let little = bytes[5] == 1;
    let wide = bytes[4] == 2;
    let rd = |o: usize, n: usize| -> Option<u64> {
        let s = bytes.get(o..o + n)?;
        let mut v = 0u64;
        for (i, &b) in s.iter().enumerate() {
            let shift = if little { 8 * i } else { 8 * (n - 1 - i) };
            v |= u64::from(b) << shift;
        }
        Some(v)
    };
    let (phoff, phentsize, phnum) = if wide {
        (rd(0x20, 8), rd(0x36, 2), rd(0x38, 2))
    } else {
        (rd(0x1c, 4), rd(0x2a, 2), rd(0x2c, 2))
    };
    let (Some(phoff), Some(phentsize), Some(phnum)) = (phoff, phentsize, phnum) else {
        return Err("is a truncated ELF file");
    };
    for i in 0..phnum {
        let Some(t) = rd((phoff + i * phentsize) as usize, 4) else {
            return Err("is a truncated ELF file");
        };
        if t == 3 {
            return Err("is dynamically linked (it needs a program interpreter and shared libraries the image does not have)");
        }
    }
    Ok(())
}

/// Check a `prepare-root.conf` with the parser `/init` uses: a file it
/// would refuse at boot is refused now.
/// `init` is the `/init` binary: a configuration asking for signed
/// composefs needs a build with signature checks (the `signed` feature),
/// recognised by the metadata key only that code names.
pub fn check_config(path: &Path, text: &[u8], init: &[u8]) -> Result<bool, Error> {
    use switchroot::config::{check_supported, ComposefsPolicy, PrepareRootConf, Unsupported};
    let conf = PrepareRootConf::parse(text)
        .map_err(|e| Error::Input(format!("{}: line {}: {}", path.display(), e.line, e.what)))?;
    let policy = ComposefsPolicy::from(conf.composefs);
    // The /init this tool packs is the default build, which has composefs.
    check_supported(&conf, policy, true).map_err(|u| {
        Error::Input(match u {
            Unsupported::Composefs(c) => format!(
                "{}: [composefs] enabled={} needs composefs, which this ostree-prepare-root is built without (use no or maybe)",
                path.display(),
                c.name()
            ),
            Unsupported::RootTransient => format!(
                "{}: [root] transient needs composefs ([composefs] enabled)",
                path.display()
            ),
            Unsupported::BadComposefsKarg => format!("{}: unsupported composefs setting", path.display()),
        })
    })?;
    if policy.signed && !contains(init, b"ostree.sign.ed25519") {
        return Err(Error::Input(format!(
            "{}: [composefs] enabled=signed, but this ostree-prepare-root has no signature checks: build it with the signed feature (make signed)",
            path.display()
        )));
    }
    Ok(policy.enabled != switchroot::config::Use::No)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The modules a composefs root needs: EROFS for the image, overlayfs, and
/// loop devices where EROFS cannot mount a file (before Linux 6.12).
const COMPOSEFS_MODULES: [&str; 3] = ["erofs", "overlay", "loop"];

impl Image {
    fn dir(&mut self, path: &str) {
        let mut at = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            if !at.is_empty() {
                at.push('/');
            }
            at.push_str(part);
            self.entries.entry(at.clone()).or_insert(Entry {
                node: Node::Dir,
                perm: 0o755,
            });
        }
    }

    fn add(&mut self, path: &str, perm: u32, node: Node) -> Result<(), Error> {
        let path = path.trim_matches('/').to_string();
        if path.is_empty()
            || path
                .split('/')
                .any(|p| p == ".." || p == "." || p.is_empty())
        {
            return Err(Error::Input(format!("bad path in the image: /{path}")));
        }
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
        match self.entries.get(&path) {
            Some(e) if e.node != Node::Dir || node != Node::Dir => {
                return Err(Error::Input(format!("/{path} is in the image twice")));
            }
            _ => {}
        }
        self.entries.insert(path, Entry { node, perm });
        Ok(())
    }

    /// Plan the image of `spec`: read the module tree, resolve the modules,
    /// check `/init` and the configuration. Module files are read only by
    /// [`Image::archive`].
    pub fn plan(spec: &Spec) -> Result<Image, Error> {
        let mut img = Image::default();
        for d in DIRS {
            img.dir(d);
        }
        img.add("dev/console", 0o600, Node::Char(5, 1))?;

        let init = fs::read(&spec.init).map_err(|e| Error::Io(spec.init.clone(), e))?;
        check_static_elf(&init).map_err(|why| {
            Error::Input(format!(
                "{} {why}: /init must be the static ostree-prepare-root of ostree-switchroot (--prepare-root PATH)",
                spec.init.display()
            ))
        })?;
        let mut composefs = false;
        if let Some(conf) = &spec.config {
            let text = fs::read(conf).map_err(|e| Error::Io(conf.clone(), e))?;
            composefs = check_config(conf, &text, &init)?;
            img.add(CONFIG, 0o644, Node::File(Data::Bytes(text)))?;
        }
        img.add("init", 0o755, Node::File(Data::Bytes(init)))?;

        if !spec.modules.is_empty() {
            img.add_modules(spec, composefs)?;
        }

        for (src, dst) in &spec.extras {
            let md = fs::metadata(src).map_err(|e| Error::Io(src.clone(), e))?;
            if !md.is_file() {
                return Err(Error::Input(format!(
                    "{}: not a regular file",
                    src.display()
                )));
            }
            let perm = std::os::unix::fs::PermissionsExt::mode(&md.permissions()) & 0o7777;
            img.add(dst, perm, Node::File(Data::File(src.clone(), md.len())))?;
        }
        Ok(img)
    }

    /// The modules of `spec`, and those a composefs root needs when the
    /// configuration asks for one (those the kernel lacks are left out: its
    /// absence is reported at boot, naming the feature).
    fn add_modules(&mut self, spec: &Spec, composefs: bool) -> Result<(), Error> {
        let tree = ModTree::open(&spec.modules_dir)?;
        let mut wanted = spec.modules.clone();
        if composefs {
            for m in COMPOSEFS_MODULES {
                if !wanted.iter().any(|w| w == m) && tree.lookup(m) != modtree::Found::Missing {
                    wanted.push(m.to_string());
                }
            }
        }
        let plan = tree.plan(&wanted)?;
        let base = format!("lib/modules/{}", spec.version);
        for &i in &plan.order {
            let rel = &tree.lines[i].path;
            if rel.starts_with('/') {
                return Err(Error::Input(format!(
                    "{}/modules.dep names {rel} by an absolute path: run depmod again",
                    spec.modules_dir.display()
                )));
            }
            let src = spec.modules_dir.join(rel);
            let size = size_of(&src)?;
            self.add(
                &format!("{base}/{rel}"),
                0o644,
                Node::File(Data::File(src, size)),
            )?;
        }
        let lines = |v: Vec<&str>| v.iter().map(|l| format!("{l}\n")).collect::<String>();
        self.add(
            &format!("{base}/modules.dep"),
            0o644,
            Node::File(Data::Bytes(lines(tree.dep_subset(&plan)).into_bytes())),
        )?;
        let softdep = tree.softdep_subset(&plan);
        if !softdep.is_empty() {
            let text = lines(softdep.iter().map(String::as_str).collect());
            self.add(
                &format!("{base}/modules.softdep"),
                0o644,
                Node::File(Data::Bytes(text.into_bytes())),
            )?;
        }
        let alias = tree.alias_subset(&plan);
        if !alias.is_empty() {
            self.add(
                &format!("{base}/modules.alias"),
                0o644,
                Node::File(Data::Bytes(lines(alias).into_bytes())),
            )?;
        }
        self.load_order = plan
            .order
            .iter()
            .map(|&i| tree.lines[i].name.clone())
            .collect();
        let mut list = String::from(
            "# The modules /init loads, in this order (written by ostree-mkinitramfs:\n\
             # the modules asked for, their dependencies and soft dependencies).\n",
        );
        for n in &self.load_order {
            list += n;
            list.push('\n');
        }
        self.add(
            MODULE_LIST,
            0o644,
            Node::File(Data::Bytes(list.into_bytes())),
        )?;
        self.builtin = plan.builtin;
        self.warnings = plan.warnings;
        Ok(())
    }

    /// The uncompressed newc archive.
    pub fn archive(&self) -> Result<Vec<u8>, Error> {
        let mut a = Archive::new();
        for (path, e) in &self.entries {
            match &e.node {
                Node::Dir => a.dir(path, e.perm),
                Node::Char(maj, min) => a.char_dev(path, e.perm, *maj, *min),
                Node::File(Data::Bytes(b)) => a.file(path, e.perm, b),
                Node::File(Data::File(src, size)) => {
                    let b = fs::read(src).map_err(|err| Error::Io(src.clone(), err))?;
                    if b.len() as u64 != *size {
                        return Err(Error::Input(format!(
                            "{} changed while the image was made",
                            src.display()
                        )));
                    }
                    a.file(path, e.perm, &b)
                }
            }
        }
        Ok(a.finish())
    }

    /// The compressed image.
    pub fn bytes(&self, how: Compress) -> Result<Vec<u8>, Error> {
        compress::compress(&self.archive()?, how).map_err(Error::Compress)
    }

    /// One line per entry: type (`d`, `c`, `f`), mode, size, path.
    pub fn listing(&self) -> String {
        let mut s = String::new();
        for (path, e) in &self.entries {
            let t = match e.node {
                Node::Dir => 'd',
                Node::Char(..) => 'c',
                Node::File(_) => 'f',
            };
            s += &format!("{t} {:04o} {:>9} /{path}\n", e.perm, e.size());
        }
        s
    }
}

/// Write `bytes` to `out` through a temporary file in the same directory,
/// renamed into place: a reader never sees half an image.
pub fn write_atomically(out: &Path, bytes: &[u8]) -> Result<(), Error> {
    let name = out
        .file_name()
        .ok_or_else(|| Error::Input(format!("{}: not a file name", out.display())))?;
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let r = (|| {
        let mut f = fs::File::create(&tmp)?;
        io::Write::write_all(&mut f, bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, out)
    })();
    if let Err(e) = r {
        let _ = fs::remove_file(&tmp);
        return Err(Error::Io(out.to_path_buf(), e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpio::read::parse;

    /// A scratch directory, removed when dropped.
    struct Scratch(PathBuf);
    impl Scratch {
        fn new(tag: &str) -> Scratch {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let d = std::env::temp_dir().join(format!(
                "mkinitramfs-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&d);
            fs::create_dir_all(&d).unwrap();
            Scratch(d)
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn write(p: &Path, data: &[u8]) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, data).unwrap();
    }

    /// The smallest ELF64 header: no program headers, so no interpreter.
    fn static_elf() -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..6].copy_from_slice(b"\x7fELF\x02\x01");
        b
    }

    /// A kernel tree in `layout` (`lib/modules` or `usr/lib/modules`)
    /// under `root`, modules compressed as `ext` says, with an `.ko.xz`
    /// ext4 needing crc16 and, softly, `crypto-crc32c`.
    fn kernel_tree(root: &Path, layout: &str, ext: &str) -> PathBuf {
        let dir = root.join(layout).join("6.12.0-1-arm64");
        let m = |n: &str| format!("kernel/{n}.ko{ext}");
        for n in [
            "fs/ext4/ext4",
            "lib/crc16",
            "crypto/crc32c_generic",
            "fs/overlayfs/overlay",
            "fs/unused",
        ] {
            write(&dir.join(m(n)), format!("module {n}").as_bytes());
        }
        write(
            &dir.join("modules.dep"),
            format!(
                "{}: {}\n{}:\n{}:\n{}:\n{}:\n",
                m("fs/ext4/ext4"),
                m("lib/crc16"),
                m("lib/crc16"),
                m("crypto/crc32c_generic"),
                m("fs/overlayfs/overlay"),
                m("fs/unused")
            )
            .as_bytes(),
        );
        write(&dir.join("modules.alias"), b"alias crypto-crc32c crc32c_generic\nalias fs-overlay overlay\nalias unused-alias unused\n");
        write(
            &dir.join("modules.softdep"),
            b"softdep ext4 pre: crypto-crc32c\n",
        );
        dir
    }

    fn spec(root: &Path, modules_dir: PathBuf, modules: &[&str]) -> Spec {
        let init = root.join("prepare-root");
        write(&init, &static_elf());
        Spec {
            modules_dir,
            version: "6.12.0-1-arm64".into(),
            modules: modules.iter().map(|s| s.to_string()).collect(),
            init,
            config: None,
            extras: vec![],
        }
    }

    fn file<'a>(entries: &'a [crate::cpio::read::Entry], name: &str) -> &'a [u8] {
        &entries
            .iter()
            .find(|e| e.0 == name)
            .unwrap_or_else(|| panic!("no {name}"))
            .3
    }

    #[test]
    fn both_layouts_and_compressed_names() {
        for (layout, ext) in [
            ("lib/modules", ""),
            ("usr/lib/modules", ".xz"),
            ("lib/modules", ".zst"),
            ("usr/lib/modules", ".gz"),
        ] {
            let s = Scratch::new("layout");
            let dir = kernel_tree(&s.0, layout, ext);
            assert_eq!(
                crate::cli::find_modules_dir(&s.0, "6.12.0-1-arm64").unwrap(),
                dir
            );
            let img = Image::plan(&spec(&s.0, dir, &["ext4", "fs-overlay"])).unwrap();
            assert!(img.warnings.is_empty(), "{:?}", img.warnings);
            assert_eq!(
                img.load_order,
                ["crc16", "crc32c_generic", "ext4", "overlay"]
            );
            let e = parse(&img.archive().unwrap());
            let names: Vec<&str> = e.iter().map(|x| x.0.as_str()).collect();
            let k = "lib/modules/6.12.0-1-arm64";
            // Sorted, parents first; modules kept under their own (compressed) names.
            assert_eq!(
                names,
                [
                    "dev".to_string(),
                    "dev/console".into(),
                    "etc".into(),
                    "etc/initramfs-modules".into(),
                    "init".into(),
                    "lib".into(),
                    "lib/modules".into(),
                    k.into(),
                    format!("{k}/kernel"),
                    format!("{k}/kernel/crypto"),
                    format!("{k}/kernel/crypto/crc32c_generic.ko{ext}"),
                    format!("{k}/kernel/fs"),
                    format!("{k}/kernel/fs/ext4"),
                    format!("{k}/kernel/fs/ext4/ext4.ko{ext}"),
                    format!("{k}/kernel/fs/overlayfs"),
                    format!("{k}/kernel/fs/overlayfs/overlay.ko{ext}"),
                    format!("{k}/kernel/lib"),
                    format!("{k}/kernel/lib/crc16.ko{ext}"),
                    format!("{k}/modules.alias"),
                    format!("{k}/modules.dep"),
                    format!("{k}/modules.softdep"),
                    "proc".into(),
                    "run".into(),
                    "sys".into(),
                    "sysroot".into(),
                ]
            );
            assert_eq!(
                file(&e, &format!("{k}/kernel/fs/ext4/ext4.ko{ext}")),
                b"module fs/ext4/ext4"
            );
            let list = String::from_utf8(file(&e, "etc/initramfs-modules").to_vec()).unwrap();
            let names: Vec<&str> = list.lines().filter(|l| !l.starts_with('#')).collect();
            assert_eq!(names, ["crc16", "crc32c_generic", "ext4", "overlay"]);
            let dep = String::from_utf8(file(&e, &format!("{k}/modules.dep")).to_vec()).unwrap();
            assert_eq!(dep.lines().count(), 4, "{dep}");
            assert!(!dep.contains("unused"), "{dep}");
            assert_eq!(
                file(&e, &format!("{k}/modules.softdep")),
                b"softdep ext4 pre: crypto-crc32c\n"
            );
            assert_eq!(
                file(&e, &format!("{k}/modules.alias")),
                b"alias crypto-crc32c crc32c_generic\nalias fs-overlay overlay\n"
            );
            let console = e.iter().find(|x| x.0 == "dev/console").unwrap();
            assert_eq!((console.1, console.2), (0o020600, (5, 1)));
            assert_eq!(e.iter().find(|x| x.0 == "init").unwrap().1, 0o100755);
        }
    }

    #[test]
    fn reproducible_whatever_the_order_of_the_options() {
        let s = Scratch::new("repro");
        let dir = kernel_tree(&s.0, "lib/modules", ".xz");
        let conf = s.0.join("prepare-root.conf");
        write(&conf, b"[sysroot]\nreadonly=true\n");
        let mut a = spec(&s.0, dir.clone(), &["ext4", "overlay"]);
        a.config = Some(conf);
        let mut b = a.clone();
        b.modules.reverse();
        for how in [Compress::None, Compress::Gzip] {
            let one = Image::plan(&a).unwrap().bytes(how).unwrap();
            let two = Image::plan(&a).unwrap().bytes(how).unwrap();
            assert_eq!(one, two, "{how:?}");
            // Another order of --module: another load order, the same files.
            let other = Image::plan(&b).unwrap();
            assert_eq!(
                other.load_order,
                ["overlay", "crc16", "crc32c_generic", "ext4"]
            );
        }
        let e = parse(&Image::plan(&a).unwrap().archive().unwrap());
        assert_eq!(file(&e, CONFIG), b"[sysroot]\nreadonly=true\n");
    }

    /// A composefs configuration brings the modules a composefs root needs
    /// (those the kernel has: this tree has overlay but no erofs or loop).
    #[test]
    fn composefs_modules() {
        let s = Scratch::new("composefs");
        let dir = kernel_tree(&s.0, "lib/modules", "");
        let mut sp = spec(&s.0, dir, &["ext4"]);
        let conf = s.0.join("prepare-root.conf");
        write(&conf, b"[composefs]\nenabled=yes\n");
        sp.config = Some(conf.clone());
        let img = Image::plan(&sp).unwrap();
        assert_eq!(
            img.load_order,
            ["crc16", "crc32c_generic", "ext4", "overlay"]
        );
        write(&conf, b"[composefs]\nenabled=no\n");
        let img = Image::plan(&sp).unwrap();
        assert_eq!(img.load_order, ["crc16", "crc32c_generic", "ext4"]);
    }

    #[test]
    fn refused_inputs() {
        let s = Scratch::new("refused");
        let dir = kernel_tree(&s.0, "lib/modules", "");
        let mut sp = spec(&s.0, dir, &["ext4", "ext5"]);
        let e = Image::plan(&sp).unwrap_err().to_string();
        assert!(
            e.contains("module ext5 not found") && e.contains("close names: ext4"),
            "{e}"
        );
        sp.modules = vec!["ext4".into()];
        // A dynamic /init (ostree's C tool) is refused.
        let mut dynamic = static_elf();
        dynamic[0x20] = 64; // e_phoff
        dynamic[0x36] = 56; // e_phentsize
        dynamic[0x38] = 1; // e_phnum
        dynamic.extend_from_slice(&[3, 0, 0, 0]);
        dynamic.resize(64 + 56, 0);
        write(&sp.init, &dynamic);
        let e = Image::plan(&sp).unwrap_err().to_string();
        assert!(e.contains("is dynamically linked"), "{e}");
        write(&sp.init, b"#!/bin/sh\n");
        assert!(Image::plan(&sp)
            .unwrap_err()
            .to_string()
            .contains("is not an ELF program"));
        write(&sp.init, &static_elf());
        // A configuration /init would refuse.
        let conf = s.0.join("bad.conf");
        write(&conf, b"[root]\ntransient=true\n");
        sp.config = Some(conf.clone());
        let e = Image::plan(&sp).unwrap_err().to_string();
        assert!(e.contains("transient needs composefs"), "{e}");
        // signed, and an /init without signature checks.
        write(&conf, b"[composefs]\nenabled=signed\n");
        let e = Image::plan(&sp).unwrap_err().to_string();
        assert!(e.contains("has no signature checks"), "{e}");
        let mut init = static_elf();
        init.extend_from_slice(b"ostree.sign.ed25519");
        write(&sp.init, &init);
        Image::plan(&sp).unwrap();
        write(&sp.init, &static_elf());
        write(&conf, b"[sysroot\nreadonly=true\n");
        let e = Image::plan(&sp).unwrap_err().to_string();
        assert!(e.contains("bad.conf: line 1"), "{e}");
        // A missing soft dependency is a warning; the image is made.
        sp.config = None;
        write(&sp.modules_dir.join("modules.alias"), b"");
        let img = Image::plan(&sp).unwrap();
        assert_eq!(img.load_order, ["crc16", "ext4"]);
        assert_eq!(img.warnings.len(), 1);
        assert!(
            img.warnings[0].contains("crypto-crc32c"),
            "{:?}",
            img.warnings
        );
        assert!(!img
            .entries
            .contains_key("lib/modules/6.12.0-1-arm64/modules.softdep"));
    }

    #[test]
    fn no_modules_no_tree() {
        let s = Scratch::new("bare");
        let img = Image::plan(&spec(&s.0, s.0.join("nowhere"), &[])).unwrap();
        let names: Vec<&str> = img.entries.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "dev",
                "dev/console",
                "etc",
                "init",
                "proc",
                "run",
                "sys",
                "sysroot"
            ]
        );
    }
}
