//! ostree's Boot Loader Specification entries: which deployment each one
//! boots, and the "pristine" twin that boots a deployment without its hotfix.

use core::fmt::{self, Write};
use otcore::sys::Errno;

use otcore::cmdline::Cmdline;
use otcore::contract;
use otcore::deploy::RealSysroot;
use otcore::deploy::{self, Deployment};
use otcore::path::{Lossy, PathBuf};
use otcore::{sys, warn};

use crate::err;
use crate::error::{Error, Result};
use crate::fsutil::Tree;

/// Largest boot entry read (they are a few lines).
pub const ENTRY_MAX: usize = 16 * 1024;

/// One of ostree's entries: its file name and `version`.
pub struct Entry {
    pub name: PathBuf,
    pub version: u64,
}

/// ostree's entries in `BOOT/loader/entries`, read one at a time (there is
/// no limit to how many there are), through a descriptor of that directory
/// walked without following symlinks.
pub struct Entries {
    /// For messages.
    pub dir: PathBuf,
    /// `None` when there is no entries directory.
    tree: Option<Tree>,
}

/// ostree's boot entries in `boot/loader/entries` (`boot` itself is `None`
/// when there is no boot directory). `loader` is libostree's relative
/// symlink to `loader.0` or `loader.1`, the one symlink resolved, by
/// reading it: any other target (absolute, elsewhere, `..`) is refused.
/// Entries this tool added (pristine boots, `pristine-*.conf`) are left out
/// of [`Entries::each`]: libostree reads `ostree-*.conf`, nothing else.
pub fn list(boot: Option<&Tree>) -> Result<Entries> {
    let Some(boot) = boot else {
        return Ok(Entries {
            dir: PathBuf::from(b"boot/loader/entries")?,
            tree: None,
        });
    };
    let dir = boot.shown(b"loader/entries");
    let loader: &[u8] = match boot.lstat(b"loader") {
        Err(Errno::NOENT) => return Ok(Entries { dir, tree: None }),
        Err(e) => return Err(boot.fail("lstat", b"loader", e)),
        Ok(st) if st.is_symlink() => {
            let mut buf = [0u8; 64];
            let link = boot.shown(b"loader");
            let n = match sys::readlink_at(boot.fd(), b"loader", &mut buf) {
                Ok(n) => n,
                Err(Errno::NAMETOOLONG) => {
                    return Err(err!("{link}: a link longer than loader.N, refusing"))
                }
                Err(e) => return Err(Error::sys("readlink", link.as_bytes(), e)),
            };
            match &buf[..n] {
                b"loader.0" => b"loader.0",
                b"loader.1" => b"loader.1",
                other => {
                    return Err(err!(
                        "{link}: points to {}, not to loader.0 or loader.1 beside it, refusing",
                        Lossy(other)
                    ))
                }
            }
        }
        Ok(_) => b"loader",
    };
    let rel = PathBuf::from(loader)?.join(b"entries")?;
    let tree = match boot.try_sub(loader)? {
        Some(l) => l.try_sub(b"entries")?,
        None => None,
    };
    let dir = tree.as_ref().map_or(dir, |_| boot.shown(rel.as_bytes()));
    Ok(Entries { dir, tree })
}

/// The text of entry `name` in `dir`; `None` if it cannot be read or is not
/// UTF-8 (skipped, as libostree skips it). One too large is skipped with a
/// warning.
fn read_text<'b>(dir: &Tree, name: &[u8], buf: &'b mut [u8]) -> Option<&'b str> {
    let cap = buf.len();
    match dir.read_small(name, buf) {
        Ok(d) => core::str::from_utf8(d).ok(),
        Err(e) => {
            if e == Errno::FBIG {
                warn!(
                    "ostree-unlock: warning: skipping boot entry: {}",
                    dir.read_error(name, e, cap)
                );
            }
            None
        }
    }
}

impl Entries {
    /// The entries directory, if there is one: every write, removal and
    /// read of an entry goes through it.
    pub fn tree(&self) -> Option<&Tree> {
        self.tree.as_ref()
    }

    /// The file name of the pristine twin of `e`: `pristine-ostree-N-OS.conf`.
    pub fn pristine_name(&self, e: &Entry) -> Result<PathBuf> {
        let mut name = PathBuf::from(contract::PRISTINE_ENTRY_PREFIX.as_bytes())?;
        name.push_raw(e.name.as_bytes())?;
        Ok(name)
    }

    /// The text of entry file `name`, read into `buf`.
    pub fn read<'b>(&self, name: &[u8], buf: &'b mut [u8]) -> Option<&'b str> {
        read_text(self.tree.as_ref()?, name, buf)
    }

    /// Call `f` with every entry and its text (in directory order), until
    /// `f` returns true. One that cannot be read, or is not UTF-8, is skipped
    /// (as libostree skips it).
    pub fn each(&self, mut f: impl FnMut(&Entry, &str) -> bool) {
        let Some(tree) = &self.tree else { return };
        let mut buf = [0u8; ENTRY_MAX];
        let mut done = false;
        // A directory listing of its own each time (its own offset).
        let _ = tree.for_each_name(b".", |name| {
            if done || !name.starts_with(b"ostree-") || !name.ends_with(b".conf") {
                return;
            }
            let Ok(name) = PathBuf::from(name) else {
                return;
            };
            let Some(text) = read_text(tree, name.as_bytes(), &mut buf) else {
                return;
            };
            let version = key(text, "version")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            done = f(&Entry { name, version }, text);
        });
    }

    /// Call `f` with every entry that boots deployment `name` of stateroot
    /// `stateroot` in `sysroot`, and its text, until `f` returns true. A
    /// deployment is its stateroot and its `CSUM.SERIAL` together: the same
    /// commit deployed in two stateroots has the same `CSUM.SERIAL`.
    pub fn for_deployment(
        &self,
        sysroot: &PathBuf,
        stateroot: &[u8],
        name: &[u8],
        mut f: impl FnMut(&Entry, &str) -> bool,
    ) {
        self.each(|e, text| {
            deployment(text, sysroot)
                .is_some_and(|d| d.stateroot() == stateroot && d.name() == name)
                && f(e, text)
        });
    }
}

/// The value of the last `key value` line (libostree's parser keeps the
/// last of a repeated key).
pub fn key<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().rev().find_map(|l| {
        l.strip_prefix(key)
            .filter(|r| r.starts_with(' ') || r.starts_with('\t'))
            .map(str::trim)
    })
}

/// The deployment an entry's `ostree=` argument leads to.
pub fn deployment(text: &str, sysroot: &PathBuf) -> Option<Deployment> {
    let options = key(text, "options")?;
    let target = Cmdline::new(options.as_bytes()).value(b"ostree")?;
    deploy::resolve(&RealSysroot { root: sysroot }, target).ok()
}

/// Why a pristine twin of an entry is not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PristineError {
    /// It does not fit in the buffer.
    TooLarge,
    /// The entry's options have a quote that is not closed: the kernel
    /// would read our argument as part of the quoted one.
    UnclosedQuote,
}

impl From<fmt::Error> for PristineError {
    fn from(_: fmt::Error) -> Self {
        PristineError::TooLarge
    }
}

/// Write the pristine twin of entry `text` to `out`: the same entry, titled
/// "(pristine, without hotfix)", version 0 (listed after the real one), its
/// `ostree=` set to `bootlink` (our own link to the deployment, which
/// libostree never points elsewhere), and `ostree.prepare-root.hotfix=0` in
/// its options where the kernel takes it.
pub fn pristine_text(
    text: &str,
    bootlink: &str,
    out: &mut impl Write,
) -> core::result::Result<(), PristineError> {
    for l in text.lines() {
        if let Some(title) = l.strip_prefix("title ") {
            writeln!(out, "title {title} (pristine, without hotfix)")?;
        } else if l.starts_with("version ") {
            writeln!(out, "version 0")?;
        } else if let Some(o) = l.strip_prefix("options ") {
            out.write_str("options ")?;
            let mut retargeted: heapless::String<ENTRY_MAX> = heapless::String::new();
            with_bootlink(o, bootlink, &mut retargeted)?;
            pristine_options(&retargeted, out)?;
            out.write_str("\n")?;
        } else {
            writeln!(out, "{l}")?;
        }
    }
    if text.lines().next().is_none() {
        writeln!(out)?;
    }
    Ok(())
}

/// `options` with the value of its `ostree=` argument (the first counts)
/// replaced by `bootlink`.
fn with_bootlink(o: &str, bootlink: &str, out: &mut impl Write) -> fmt::Result {
    let bytes = o.as_bytes();
    match Cmdline::new(bytes).get(b"ostree").and_then(|p| p.value) {
        Some(v) => {
            let start = v.as_ptr() as usize - bytes.as_ptr() as usize;
            write!(out, "{}{bootlink}{}", &o[..start], &o[start + v.len()..])
        }
        None => out.write_str(o),
    }
}

/// `options` with the hotfix disabled, as the kernel reads a command line
/// (the first of a repeated argument counts; a bare `--` ends the kernel's
/// part): an existing `ostree.prepare-root.hotfix` argument gets the value
/// 0; otherwise `ostree.prepare-root.hotfix=0` goes right after the last
/// kernel argument, before any `--`.
fn pristine_options(o: &str, out: &mut impl Write) -> core::result::Result<(), PristineError> {
    if o.bytes().filter(|&b| b == b'"').count() % 2 != 0 {
        return Err(PristineError::UnclosedQuote);
    }
    let bytes = o.as_bytes();
    let offset = |s: &[u8]| s.as_ptr() as usize - bytes.as_ptr() as usize;
    let cmdline = Cmdline::new(bytes);
    let karg = Lossy(contract::HOTFIX_KARG);
    if let Some(p) = cmdline.get(contract::HOTFIX_KARG) {
        let (start, end) = match p.value {
            Some(v) => (offset(v), offset(v) + v.len()),
            None => (offset(p.key) + p.key.len(), offset(p.key) + p.key.len()),
        };
        let set = if p.value.is_some() { "0" } else { "=0" };
        return Ok(write!(out, "{}{set}{}", &o[..start], &o[end..])?);
    }
    let end = cmdline.params().last().map_or(0, |p| {
        let last = p.value.unwrap_or(p.key);
        let mut end = offset(last) + last.len();
        // The closing quote of a quoted argument belongs to it.
        while bytes.get(end) == Some(&b'"') {
            end += 1;
        }
        end
    });
    let sep = if end == 0 { "" } else { " " };
    let rest = &o[end..];
    let rest_sep = if rest.is_empty() || rest.starts_with(' ') || end != 0 {
        ""
    } else {
        " "
    };
    Ok(write!(out, "{}{sep}{karg}=0{rest_sep}{rest}", &o[..end])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `boot/loader` as libostree makes it is resolved; any other link is refused.
    #[test]
    fn only_loader_0_or_1_is_followed() {
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::fs::symlink;
        let d = std::env::temp_dir().join(format!("unlock-loader-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("boot/loader.1/entries")).unwrap();
        std::fs::create_dir_all(d.join("boot/loader.2/entries")).unwrap();
        std::fs::create_dir_all(d.join("out/entries")).unwrap();
        let boot = Tree::open(d.join("boot").as_os_str().as_bytes()).unwrap();
        let link = d.join("boot/loader");
        let entries = |target: &std::path::Path| {
            let _ = std::fs::remove_file(&link);
            symlink(target, &link).unwrap();
            list(Some(&boot))
        };
        let ok = entries("loader.1".as_ref()).unwrap();
        assert!(ok.tree().is_some());
        assert!(ok.dir.as_bytes().ends_with(b"boot/loader.1/entries"));
        // loader.0 is missing: no entries, no error.
        assert!(entries("loader.0".as_ref()).unwrap().tree().is_none());
        for bad in [
            d.join("out"),
            "loader.2".into(),
            "../out".into(),
            "./loader.1".into(),
        ] {
            let e = entries(&bad).err().unwrap().to_string();
            assert!(e.contains("not to loader.0 or loader.1"), "{e}");
        }
        // loader.1/entries itself a link: refused, named.
        std::fs::remove_dir(d.join("boot/loader.1/entries")).unwrap();
        symlink(d.join("out/entries"), d.join("boot/loader.1/entries")).unwrap();
        let e = entries("loader.1".as_ref()).err().unwrap().to_string();
        assert!(e.contains("loader.1/entries: a symlink, refused"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    const ENTRY: &str = "title Test OS 1 (ostree:0)\nversion 2\nlinux /vmlinuz\noptions root=/dev/sda2 ostree=/ostree/boot.1/os/abc/0\n";

    #[test]
    fn keys() {
        assert_eq!(key(ENTRY, "version"), Some("2"));
        assert_eq!(key(ENTRY, "title"), Some("Test OS 1 (ostree:0)"));
        assert_eq!(key(ENTRY, "vers"), None);
        assert_eq!(key(ENTRY, "initrd"), None);
        // The last of a repeated key, as libostree reads entries.
        assert_eq!(key("options a\noptions\tb\n", "options"), Some("b"));
    }

    #[test]
    fn pristine_twin() {
        let mut s = String::new();
        pristine_text(ENTRY, "/ostree/deploy/os/pristine/abc.0", &mut s).unwrap();
        assert_eq!(
            s,
            "title Test OS 1 (ostree:0) (pristine, without hotfix)\nversion 0\nlinux /vmlinuz\noptions root=/dev/sda2 ostree=/ostree/deploy/os/pristine/abc.0 ostree.prepare-root.hotfix=0\n"
        );
    }

    fn pristine_options_of(o: &str) -> core::result::Result<String, PristineError> {
        let mut s = String::new();
        pristine_options(o, &mut s).map(|()| s)
    }

    #[test]
    fn the_pristine_argument_takes_effect() {
        let k = "ostree.prepare-root.hotfix";
        assert_eq!(
            pristine_options_of("root=/dev/sda2 rw").unwrap(),
            format!("root=/dev/sda2 rw {k}=0")
        );
        // Before a bare `--`: what follows it belongs to init.
        assert_eq!(
            pristine_options_of("root=/dev/sda2 -- single").unwrap(),
            format!("root=/dev/sda2 {k}=0 -- single")
        );
        // An earlier hotfix= argument wins: it gets the value 0.
        assert_eq!(
            pristine_options_of(&format!("a {k}=1 b {k}=1")).unwrap(),
            format!("a {k}=0 b {k}=1")
        );
        assert_eq!(
            pristine_options_of(&format!("a {k} b")).unwrap(),
            format!("a {k}=0 b")
        );
        // A quoted last argument keeps its closing quote.
        assert_eq!(
            pristine_options_of("a x=\"1 2\"").unwrap(),
            format!("a x=\"1 2\" {k}=0")
        );
        assert_eq!(pristine_options_of("").unwrap(), format!("{k}=0"));
        assert_eq!(pristine_options_of("-- x").unwrap(), format!("{k}=0 -- x"));
        assert_eq!(
            pristine_options_of("a \"b"),
            Err(PristineError::UnclosedQuote)
        );
        // Each result reads back as the kernel would: hotfix=0 counts.
        for o in ["root=/dev/sda2 -- single", "a x=\"1 2\"", "", "-- x"] {
            let p = pristine_options_of(o).unwrap();
            assert_eq!(
                Cmdline::new(p.as_bytes()).value(k.as_bytes()),
                Some(&b"0"[..]),
                "{p}"
            );
        }
        let p = pristine_options_of(&format!("a {k}=1 b {k}=1")).unwrap();
        assert_eq!(
            Cmdline::new(p.as_bytes()).value(k.as_bytes()),
            Some(&b"0"[..])
        );
    }
}
