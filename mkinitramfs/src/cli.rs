//! The command line of `ostree-mkinitramfs`.

use std::path::{Path, PathBuf};

use crate::compress::Compress;

pub const USAGE: &str = "\
usage: ostree-mkinitramfs [--kernel-version KVER | --modules-dir DIR] [--module NAME[,NAME...]]...
                          [--prepare-root PATH] [--config FILE] [--add SRC:DST]...
                          [--compress gzip|xz|zstd|none] (-o OUTPUT | --list) [--list]

Write a compressed newc initramfs whose /init is ostree-prepare-root, with
the kernel modules named (and their dependencies and soft dependencies).

  --kernel-version KVER  modules of /lib/modules/KVER or /usr/lib/modules/KVER
                         (default: the running kernel's); with --modules-dir,
                         the version the image is for
  --modules-dir DIR      a kernel's modules directory (lib/modules/KVER or
                         usr/lib/modules/KVER of an unpacked kernel package)
  --module NAME          a module name or alias to load at boot (repeatable)
  --prepare-root PATH    the static ostree-prepare-root to use as /init
                         (default: the installed one)
  --config FILE          put FILE at /etc/ostree/prepare-root.conf (checked)
  --add SRC:DST          put file SRC at DST, with its permissions (e.g. a
                         static shell for rd.shell)
  --compress KIND        gzip (default), xz, zstd or none
  -o OUTPUT              write the image there
  --list                 print the image's entries and the load order
";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub kernel_version: Option<String>,
    pub modules_dir: Option<PathBuf>,
    pub modules: Vec<String>,
    pub prepare_root: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub extras: Vec<(PathBuf, String)>,
    pub compress: Compress,
    pub output: Option<PathBuf>,
    pub list: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Run(Args),
    Help,
    Version,
}

/// Parse the arguments (without the program name). `Err` is a usage error.
pub fn parse<I: IntoIterator<Item = String>>(argv: I) -> Result<Parsed, String> {
    let mut a = Args {
        kernel_version: None,
        modules_dir: None,
        modules: vec![],
        prepare_root: None,
        config: None,
        extras: vec![],
        compress: Compress::Gzip,
        output: None,
        list: false,
    };
    let mut it = argv.into_iter();
    while let Some(arg) = it.next() {
        let (opt, inline) = match arg.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let takes_value = matches!(
            opt.as_str(),
            "--kernel-version"
                | "--modules-dir"
                | "--module"
                | "--prepare-root"
                | "--config"
                | "--add"
                | "--compress"
                | "-o"
                | "--output"
        );
        let value = if takes_value {
            match inline {
                Some(v) => v,
                None => it.next().ok_or_else(|| format!("{opt} needs a value"))?,
            }
        } else if inline.is_some() {
            return Err(format!("{opt} takes no value"));
        } else {
            String::new()
        };
        match opt.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--version" => return Ok(Parsed::Version),
            "--list" => a.list = true,
            "--kernel-version" => a.kernel_version = Some(value),
            "--modules-dir" => a.modules_dir = Some(PathBuf::from(value)),
            "--module" => a.modules.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(str::to_string),
            ),
            "--prepare-root" => a.prepare_root = Some(PathBuf::from(value)),
            "--config" => a.config = Some(PathBuf::from(value)),
            "--add" => {
                let (src, dst) = value
                    .split_once(':')
                    .filter(|(s, d)| !s.is_empty() && d.starts_with('/'))
                    .ok_or_else(|| format!("--add wants SRC:/DST, not {value}"))?;
                a.extras.push((PathBuf::from(src), dst.to_string()));
            }
            "--compress" => {
                a.compress = Compress::parse(&value)
                    .ok_or_else(|| format!("--compress {value}: want gzip, xz, zstd or none"))?
            }
            "-o" | "--output" => a.output = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown option {arg}")),
        }
    }
    if a.output.is_none() && !a.list {
        return Err("nothing to do: give -o OUTPUT, --list, or both".into());
    }
    Ok(Parsed::Run(a))
}

/// The modules directory of `kver` under `root`: `lib/modules/KVER`, else
/// `usr/lib/modules/KVER` (merged-/usr trees, trixie's kernel packages).
pub fn find_modules_dir(root: &Path, kver: &str) -> Result<PathBuf, String> {
    let tried: Vec<PathBuf> = ["lib/modules", "usr/lib/modules"]
        .iter()
        .map(|b| root.join(b).join(kver))
        .collect();
    if let Some(d) = tried.iter().find(|d| d.join("modules.dep").is_file()) {
        return Ok(d.clone());
    }
    let list: Vec<String> = tried.iter().map(|d| d.display().to_string()).collect();
    Err(match tried.iter().find(|d| d.is_dir()) {
        Some(d) => format!(
            "{} has no modules.dep: run depmod (depmod -b ROOT {kver} for an unpacked tree)",
            d.display()
        ),
        None => format!(
            "no modules for kernel {kver}: neither {} exists (--modules-dir DIR for another place)",
            list.join(" nor ")
        ),
    })
}

/// The installed `ostree-prepare-root`: beside this program's prefix
/// (`PREFIX/bin/ostree-mkinitramfs` → `PREFIX/lib/ostree/ostree-prepare-root`),
/// else `/usr/lib/ostree/ostree-prepare-root`.
pub fn default_prepare_root(exe: Option<&Path>) -> PathBuf {
    let system = PathBuf::from("/usr/lib/ostree/ostree-prepare-root");
    exe.and_then(|e| {
        e.parent()?
            .parent()
            .map(|p| p.join("lib/ostree/ostree-prepare-root"))
    })
    .filter(|p| p.is_file())
    .unwrap_or(system)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Result<Parsed, String> {
        parse(v.iter().map(|s| s.to_string()))
    }

    #[test]
    fn options() {
        let Parsed::Run(a) = args(&[
            "--modules-dir",
            "/m/6.1",
            "--module",
            "overlay",
            "--module=ext4,virtio-blk,",
            "--compress=xz",
            "-o",
            "out.img",
            "--add",
            "/bin/busybox:/bin/sh",
            "--list",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(a.modules, ["overlay", "ext4", "virtio-blk"]);
        assert_eq!(a.modules_dir.as_deref(), Some(Path::new("/m/6.1")));
        assert_eq!(a.compress, Compress::Xz);
        assert_eq!(a.output.as_deref(), Some(Path::new("out.img")));
        assert_eq!(
            a.extras,
            [(PathBuf::from("/bin/busybox"), "/bin/sh".to_string())]
        );
        assert!(a.list);
        assert_eq!(args(&["--help"]), Ok(Parsed::Help));
        assert!(args(&["--module", "x"])
            .unwrap_err()
            .contains("nothing to do"));
        assert!(args(&["--compress", "lz4", "--list"])
            .unwrap_err()
            .contains("lz4"));
        assert!(args(&["--bogus"])
            .unwrap_err()
            .contains("unknown option --bogus"));
        assert!(args(&["-o"]).unwrap_err().contains("needs a value"));
        assert!(args(&["--list=1"]).is_err());
        assert!(args(&["--add", "x:rel", "--list"]).is_err());
    }
}
