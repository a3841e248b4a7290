//! The test kernels: Debian's cloud kernels, fetched with `apt-get download`
//! and unpacked with `dpkg -x`, never installed.
//!
//! The cloud flavour has ext4 and NVMe built in and overlayfs as a module
//! without dependencies, which is exactly the situation an embedded
//! initramfs faces: one module to load, the root device on a bus that needs
//! no module.
//!
//! The lab's kernel is the machine's own suite's (6.1 on bookworm). The
//! kernel matrix adds others ([`Source`]): bullseye's 5.10 (modules under
//! `lib/modules`, plain `.ko`) and trixie's 6.12 (modules under
//! `usr/lib/modules`, `.ko.xz`), fetched through a private apt state under
//! `.cache/qemu/apt/<suite>-amd64/`: the machine's apt sources are never
//! changed. Another architecture's kernels ([`crate::arch`]) come the same
//! way, through `.cache/qemu/apt/<suite>-<debian arch>/`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::arch;
use crate::util::{self, output, run};

/// The meta package that always depends on the lab's cloud kernel.
pub const META_PACKAGE: &str = "linux-image-cloud-amd64";

/// The kernel a run uses when none is chosen (x86_64's; see
/// [`arch::Arch::kernels`] for the matrix's and other architectures').
pub const DEFAULT: &str = arch::X86_64.default_kernel;

/// How the products of a run on the kernel labelled `label` are kept apart
/// from the lab's (`target/qemu/kernel-<this>/`): `None` for the lab's own
/// kernel, the label for another x86_64 kernel, `<arch>-<label>` for
/// another architecture.
pub fn dir_label(label: &str) -> Option<String> {
    let a = arch::current();
    if !a.is_lab() {
        Some(format!("{}-{label}", a.name))
    } else {
        (label != a.default_kernel).then(|| label.to_string())
    }
}

/// An unpacked kernel.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// How runs name it: `5.10`, `6.1`, `6.12`, or the package name.
    pub label: String,
    /// e.g. `6.1.0-56-cloud-amd64`
    pub version: String,
    pub vmlinuz: PathBuf,
    /// `ROOT/lib/modules/<version>` of the unpacked package (for the merged
    /// layout, `ROOT/lib` is a link to `usr/lib`).
    pub modules: PathBuf,
    /// Where the package was unpacked (`boot/`, `lib/` or `usr/lib/`).
    pub root: PathBuf,
}

/// Where the package puts its modules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `lib/modules/<version>` (bookworm and before).
    Lib,
    /// `usr/lib/modules/<version>` (merged /usr, trixie).
    UsrLib,
}

impl Layout {
    pub fn dir(self) -> &'static str {
        match self {
            Layout::Lib => "lib/modules",
            Layout::UsrLib => "usr/lib/modules",
        }
    }
}

impl Kernel {
    /// The package's modules layout (before our `lib` link).
    pub fn layout(&self) -> Layout {
        if fs::symlink_metadata(self.root.join("lib")).is_ok_and(|m| m.file_type().is_symlink())
            || !self.root.join("lib/modules").exists()
        {
            Layout::UsrLib
        } else {
            Layout::Lib
        }
    }

    /// How its modules are stored, from `modules.dep`: `.ko`, `.ko.xz`, ...
    pub fn module_suffix(&self) -> String {
        let dep = fs::read_to_string(self.modules.join("modules.dep")).unwrap_or_default();
        module_suffix(&dep)
    }

    /// The package's `boot/config-<version>` (empty when it has none).
    pub fn config(&self) -> String {
        fs::read_to_string(
            self.root
                .join("boot")
                .join(format!("config-{}", self.version)),
        )
        .unwrap_or_default()
    }

    /// Whether its config has exactly this line (`CONFIG_X=y`).
    pub fn config_has(&self, line: &str) -> bool {
        self.config().lines().any(|l| l == line)
    }

    /// The kernel is `major.minor` or newer.
    pub fn at_least(&self, major: u64, minor: u64) -> bool {
        version_key(&self.version).as_slice() >= [major, minor].as_slice()
    }

    /// `CONFIG_MODULE_DECOMPRESS=y` in the package's `boot/config-<version>`.
    pub fn decompresses_modules(&self) -> bool {
        self.config_has("CONFIG_MODULE_DECOMPRESS=y")
    }

    /// How QEMU attaches the disk for this kernel: NVMe if it has the
    /// driver built in (`CONFIG_BLK_DEV_NVME=y`, or no config to read),
    /// virtio-blk otherwise.
    pub fn disk_bus(&self) -> crate::boot::Bus {
        let config = self.config();
        if config.is_empty() || config.lines().any(|l| l == "CONFIG_BLK_DEV_NVME=y") {
            crate::boot::Bus::Nvme
        } else {
            crate::boot::Bus::VirtioBlk
        }
    }

    /// One line for logs and tables: `6.12 (6.12.117+deb13-cloud-amd64,
    /// usr/lib/modules, .ko.xz, kernel decompresses)`.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}, {}, {}{})",
            self.label,
            self.version,
            self.layout().dir(),
            self.module_suffix(),
            if self.decompresses_modules() {
                ", kernel decompresses"
            } else {
                ""
            }
        )
    }
}

/// The suffix most module lines of a `modules.dep` have (`.ko`, `.ko.xz`, `.ko.zst`).
pub fn module_suffix(dep: &str) -> String {
    let mut counts: Vec<(String, usize)> = vec![];
    for l in dep.lines() {
        let Some(path) = l.split(':').next().filter(|p| !p.is_empty()) else {
            continue;
        };
        let name = path.rsplit('/').next().unwrap_or(path);
        let Some(i) = name.find(".ko") else { continue };
        let suffix = &name[i..];
        match counts.iter_mut().find(|(s, _)| s == suffix) {
            Some((_, n)) => *n += 1,
            None => counts.push((suffix.to_string(), 1)),
        }
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map_or_else(|| "no modules".to_string(), |(s, _)| s)
}

/// Which kernel package to fetch, through which apt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// How runs and directories name it (`5.10`, or the package).
    pub label: String,
    /// Other Debian suites, fetched through a private apt state; empty:
    /// the machine's apt.
    pub suites: Vec<String>,
    /// The meta package whose dependency is the kernel (when no `package`).
    pub meta: String,
    /// The versioned package; `None`: the one `meta` depends on.
    pub package: Option<String>,
}

impl Source {
    /// A label of this run's architecture's table (x86_64: `5.10`, `6.1`,
    /// `6.12`; aarch64: `6.1`, `6.1-cloud`), a package name
    /// (`linux-image-6.1.0-57-cloud-amd64`, from the machine's apt, or for
    /// another architecture from its default kernel's suites) or
    /// `SUITE:PACKAGE` (`bullseye:linux-image-5.10.0-32-cloud-amd64`).
    pub fn parse(text: &str) -> Result<Source> {
        Source::parse_for(arch::current(), text)
    }

    fn parse_for(a: &arch::Arch, text: &str) -> Result<Source> {
        let suites_of = |k: &arch::KernelKind| -> Vec<String> {
            k.suites
                .unwrap_or_default()
                .iter()
                .map(|s| s.to_string())
                .collect()
        };
        let default = a
            .kernel(a.default_kernel)
            .context("arch table: no default kernel")?;
        if let Some(k) = a.kernel(text) {
            return Ok(Source {
                label: k.label.to_string(),
                suites: suites_of(k),
                meta: k.meta.to_string(),
                package: None,
            });
        }
        let (suite, pkg) = match text.split_once(':') {
            Some((s, p)) => (Some(s.to_string()), p),
            None => (None, text),
        };
        if !pkg.starts_with("linux-image-") || pkg.contains('/') || suite.as_deref() == Some("") {
            bail!(
                "unknown kernel {text:?}: say {}, a linux-image-* package or SUITE:PACKAGE",
                a.kernels
                    .iter()
                    .map(|k| k.label)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(Source {
            label: pkg.to_string(),
            suites: suite.map_or_else(|| suites_of(default), |s| vec![s]),
            meta: default.meta.to_string(),
            package: Some(pkg.to_string()),
        })
    }

    /// The lab's kernel: x86_64's [`DEFAULT`], from the machine's suite.
    pub fn is_default(&self) -> bool {
        self.label == DEFAULT && self.suites.is_empty() && arch::current().is_lab()
    }

    /// Where it is unpacked: `.cache/qemu/kernel/` for the lab's (as
    /// before the matrix), `.cache/qemu/kernel-<label>/` for the others
    /// (`kernel-<arch>-<label>` for another architecture's).
    fn cache(&self) -> PathBuf {
        match dir_label(&self.label).filter(|_| !self.is_default()) {
            None => util::cache_dir().join("kernel"),
            Some(l) => util::cache_dir().join(format!("kernel-{l}")),
        }
    }
}

/// The apt to ask: the machine's, or a private state for another suite.
struct Apt {
    args: Vec<String>,
}

impl Apt {
    fn machine() -> Apt {
        Apt { args: vec![] }
    }

    /// apt pointed at `.cache/qemu/apt/<suite>-<arch>/` (its own sources,
    /// lists, archives; no preferences, no dpkg status; the first suite
    /// names it, a `-security` suite comes from the security archive):
    /// nothing of the machine's apt configuration changes.
    fn private(suites: &[String], debian_arch: &str) -> Result<Apt> {
        let first = suites
            .first()
            .context("a private apt state without a suite")?;
        let d = util::cache_dir()
            .join("apt")
            .join(format!("{first}-{debian_arch}"));
        for sub in ["lists/partial", "cache/archives/partial", "prefs.d"] {
            fs::create_dir_all(d.join(sub))?;
        }
        let d = fs::canonicalize(&d)?;
        let sources = d.join("sources.list");
        let line: String = suites
            .iter()
            .map(|suite| {
                let uri = if suite.ends_with("-security") {
                    security_mirror()
                } else {
                    mirror()
                };
                format!("deb [trusted=yes] {uri} {suite} main\n")
            })
            .collect();
        if fs::read_to_string(&sources).ok().as_deref() != Some(&line) {
            fs::write(&sources, &line)?;
        }
        let p = |sub: &str| d.join(sub).display().to_string();
        let args = [
            format!("Dir::Etc::SourceList={}", sources.display()),
            "Dir::Etc::SourceParts=/dev/null".into(),
            "Dir::Etc::Preferences=/dev/null".into(),
            format!("Dir::Etc::PreferencesParts={}", p("prefs.d")),
            format!("Dir::State::Lists={}", p("lists")),
            format!("Dir::Cache={}", p("cache")),
            "Dir::State::status=/dev/null".into(),
            format!("APT::Architecture={debian_arch}"),
            format!("APT::Architectures={debian_arch}"),
        ]
        .into_iter()
        .flat_map(|o| ["-o".to_string(), o])
        .collect();
        Ok(Apt { args })
    }

    fn cmd(&self, tool: &str) -> Command {
        let mut c = Command::new(tool);
        c.args(&self.args);
        c
    }

    /// The versioned package the meta package `meta` depends on (its candidate).
    fn resolve_meta(&self, meta: &str) -> Result<String> {
        let ask = || output(self.cmd("apt-cache").args(["depends", meta])).unwrap_or_default();
        let mut text = ask();
        if !text.contains("Depends:") {
            // A fresh machine (or private state) has no package lists yet.
            run(self.cmd("apt-get").args(["update", "-qq"]))?;
            text = ask();
        }
        depends_on_image(&text)
            .with_context(|| format!("no linux-image dependency in `apt-cache depends {meta}`"))
    }

    fn download(&self, pkg: &str, dir: &Path) -> Result<()> {
        if !self.args.is_empty()
            && fs::read_dir(self.args_lists()?).map_or(true, |d| d.count() <= 2)
        {
            run(self.cmd("apt-get").args(["update", "-qq"]))?;
        }
        run(self
            .cmd("apt-get")
            .arg("download")
            .arg(pkg)
            .current_dir(dir))
    }

    fn args_lists(&self) -> Result<PathBuf> {
        self.args
            .iter()
            .find_map(|a| a.strip_prefix("Dir::State::Lists="))
            .map(PathBuf::from)
            .context("private apt without lists")
    }
}

/// The Debian mirror of the machine's own sources (deb822 or one-line),
/// `KTEST_DEBIAN_MIRROR` overrides.
fn mirror() -> String {
    if let Ok(m) = std::env::var("KTEST_DEBIAN_MIRROR") {
        return m;
    }
    let deb822 = fs::read_to_string("/etc/apt/sources.list.d/debian.sources").unwrap_or_default();
    let one_line = fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    mirror_from(&deb822, &one_line).unwrap_or_else(|| "http://deb.debian.org/debian".into())
}

/// The security archive: the machine's sources' `debian-security` URI,
/// `KTEST_DEBIAN_SECURITY_MIRROR` overrides.
fn security_mirror() -> String {
    if let Ok(m) = std::env::var("KTEST_DEBIAN_SECURITY_MIRROR") {
        return m;
    }
    let deb822 = fs::read_to_string("/etc/apt/sources.list.d/debian.sources").unwrap_or_default();
    deb822
        .lines()
        .filter_map(|l| l.trim().strip_prefix("URIs:"))
        .flat_map(str::split_whitespace)
        .find(|u| u.contains("security"))
        .map_or_else(
            || "http://deb.debian.org/debian-security".into(),
            |u| u.trim_end_matches('/').to_string(),
        )
}

/// The first main archive URI (not `debian-security`) of apt's sources.
fn mirror_from(deb822: &str, one_line: &str) -> Option<String> {
    let main = |u: &&str| !u.contains("security");
    deb822
        .lines()
        .filter_map(|l| l.trim().strip_prefix("URIs:"))
        .flat_map(str::split_whitespace)
        .find(main)
        .or_else(|| {
            one_line
                .lines()
                .filter(|l| l.trim_start().starts_with("deb "))
                .filter_map(|l| l.split_whitespace().find(|w| w.contains("://")))
                .find(main)
        })
        .map(|u| u.trim_end_matches('/').to_string())
}

/// The `linux-image-*` package in `apt-cache depends` output.
fn depends_on_image(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends:"))
        .map(str::trim)
        .find(|p| p.starts_with("linux-image-"))
        .map(str::to_string)
}

/// Find an already unpacked kernel in `dir`.
fn find_unpacked(dir: &Path, label: &str) -> Option<Kernel> {
    let modules_root = dir.join("lib/modules");
    let version = fs::read_dir(&modules_root)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()?;
    let vmlinuz = dir.join(format!("boot/vmlinuz-{version}"));
    let modules = modules_root.join(&version);
    (vmlinuz.is_file() && modules.join("modules.dep").is_file()).then(|| Kernel {
        label: label.to_string(),
        version,
        vmlinuz,
        modules,
        root: dir.to_path_buf(),
    })
}

/// Make a freshly unpacked package's modules reachable as
/// `ROOT/lib/modules/<version>` whatever its layout (merged /usr: a `lib ->
/// usr/lib` link, which is also what bookworm's `depmod -b` needs), and
/// return the version and the package's layout.
pub fn prepare_tree(root: &Path) -> Result<(String, Layout)> {
    let layout = if root.join("lib/modules").is_dir() {
        Layout::Lib
    } else if root.join("usr/lib/modules").is_dir() {
        if fs::symlink_metadata(root.join("lib")).is_ok() {
            // A real lib/ without modules: link only the modules directory.
            std::os::unix::fs::symlink("../usr/lib/modules", root.join("lib/modules"))?;
        } else {
            std::os::unix::fs::symlink("usr/lib", root.join("lib"))?;
        }
        Layout::UsrLib
    } else {
        bail!(
            "{}: the package has neither lib/modules nor usr/lib/modules",
            root.display()
        );
    };
    let mut versions: Vec<String> = fs::read_dir(root.join("lib/modules"))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    versions.sort();
    match versions.as_slice() {
        [v] => Ok((v.clone(), layout)),
        [] => bail!("{}: no {}/<version>", root.display(), layout.dir()),
        _ => bail!("{}: several kernel versions: {versions:?}", root.display()),
    }
}

/// The lab's kernel (6.1): the machine's cloud kernel, cached under
/// `.cache/qemu/kernel/<package>`.
pub fn ensure() -> Result<Kernel> {
    let base = util::cache_dir().join("kernel");
    // Reuse any unpacked kernel without asking apt (offline reruns, speed).
    if std::env::var_os("KTEST_KERNEL_PACKAGE").is_none() {
        if let Some(k) = fs::read_dir(&base)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter_map(|e| find_unpacked(&e.path(), DEFAULT))
            .max_by(|a, b| a.version.cmp(&b.version))
        {
            return Ok(k);
        }
    }
    let pkg = match std::env::var("KTEST_KERNEL_PACKAGE") {
        Ok(p) => p,
        Err(_) => Apt::machine().resolve_meta(META_PACKAGE)?,
    };
    unpack(&Apt::machine(), &base, &pkg, DEFAULT)
}

/// The kernel `source` names, fetched and unpacked once (reused offline).
pub fn fetch(source: &Source) -> Result<Kernel> {
    if source.is_default() {
        return ensure();
    }
    let base = source.cache();
    let apt = if source.suites.is_empty() {
        Apt::machine()
    } else {
        Apt::private(&source.suites, arch::current().debian)?
    };
    let pkg = match &source.package {
        Some(p) => p.clone(),
        None => match cached_package(&base) {
            Some(p) => p,
            None => apt.resolve_meta(&source.meta)?,
        },
    };
    unpack(&apt, &base, &pkg, &source.label)
}

/// The kernel of this run: `--kernel`, else `KTEST_KERNEL`, else the lab's.
pub fn select(choice: Option<&str>) -> Result<Kernel> {
    let env = std::env::var("KTEST_KERNEL").ok();
    match choice.or(env.as_deref()).filter(|c| !c.is_empty()) {
        None if arch::current().is_lab() => ensure(),
        None => fetch(&Source::parse(arch::current().default_kernel)?),
        Some(c) => fetch(&Source::parse(c)?),
    }
}

/// A kernel whose modules are xz-compressed and which decompresses them
/// itself (`CONFIG_MODULE_DECOMPRESS`): the newest `-cloud-amd64` image apt
/// knows (Debian's 6.12 for bookworm, from bookworm-security), or
/// `KTEST_KERNEL_XZ_PACKAGE`. Cached apart from the test kernel, which
/// [`ensure`] picks from its own cache directory.
pub fn ensure_compressed_modules() -> Result<Kernel> {
    let base = util::cache_dir().join("kernel-xz");
    let pkg = match std::env::var("KTEST_KERNEL_XZ_PACKAGE") {
        Ok(p) => p,
        Err(_) => match cached_package(&base) {
            Some(p) => p,
            None => newest_cloud_package()?,
        },
    };
    let k = unpack(&Apt::machine(), &base, &pkg, "6.12 (11a)")?;
    if !k.decompresses_modules() {
        bail!(
            "{pkg}: {}/boot/config-{} does not say CONFIG_MODULE_DECOMPRESS=y (set KTEST_KERNEL_XZ_PACKAGE)",
            k.root.display(),
            k.version
        );
    }
    Ok(k)
}

/// The package already unpacked in `base`, if any.
fn cached_package(base: &Path) -> Option<String> {
    fs::read_dir(base)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| find_unpacked(&e.path(), "").is_some())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .max()
}

/// The numeric parts of a kernel version (`6.12.117+deb12` → [6, 12, 117, 12]).
fn version_key(v: &str) -> Vec<u64> {
    v.split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// The newest signed `linux-image-VERSION-cloud-amd64` in apt's lists.
fn newest_cloud_package() -> Result<String> {
    let mut names = output(Command::new("apt-cache").args(["pkgnames", "linux-image-"]))?;
    if names.trim().is_empty() {
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        names = output(Command::new("apt-cache").args(["pkgnames", "linux-image-"]))?;
    }
    names
        .lines()
        .filter_map(|n| {
            let v = n
                .strip_prefix("linux-image-")?
                .strip_suffix("-cloud-amd64")?;
            v.starts_with(|c: char| c.is_ascii_digit())
                .then(|| (version_key(v), n.to_string()))
        })
        .max()
        .map(|(_, n)| n)
        .context("apt knows no linux-image-VERSION-cloud-amd64 package")
}

/// Fetch `pkg` with apt-get download and unpack it under `base/<pkg>` (reused
/// when already there).
fn unpack(apt: &Apt, base: &Path, pkg: &str, label: &str) -> Result<Kernel> {
    let dir = base.join(pkg);
    if let Some(k) = find_unpacked(&dir, label) {
        return Ok(k);
    }
    let dl = base.join("download");
    fs::create_dir_all(&dl)?;
    eprintln!("qemu-harness: apt-get download {pkg}");
    apt.download(pkg, &dl)?;
    let deb = fs::read_dir(&dl)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            let n = p.file_name().unwrap_or_default().to_string_lossy();
            n.starts_with(&format!("{pkg}_")) && n.ends_with(".deb")
        })
        .with_context(|| format!("apt-get download left no {pkg}_*.deb in {}", dl.display()))?;
    let tmp = base.join(format!("{pkg}.tmp"));
    let _ = fs::remove_dir_all(&tmp);
    run(Command::new("dpkg").arg("-x").arg(&deb).arg(&tmp))?;
    let (version, _) = prepare_tree(&tmp)?;
    // The package does not ship modules.dep (its postinst runs depmod).
    if !tmp
        .join("lib/modules")
        .join(&version)
        .join("modules.dep")
        .exists()
    {
        run(Command::new("depmod").arg("-b").arg(&tmp).arg(&version))?;
    }
    let _ = fs::remove_dir_all(&dir);
    fs::rename(&tmp, &dir)?;
    let _ = fs::remove_file(&deb);
    match find_unpacked(&dir, label) {
        Some(k) => Ok(k),
        None => bail!(
            "unpacked {pkg} into {} but found no vmlinuz/modules.dep",
            dir.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("qemu-harness-kernel-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    /// A package tree as `dpkg -x` leaves it: `boot/vmlinuz-V`, the config,
    /// modules under `modules_dir`, and (as depmod would) a `modules.dep`.
    fn package(name: &str, modules_dir: &str, suffix: &str, config: &str) -> (PathBuf, String) {
        let root = scratch(name);
        let v = "6.99.0-1-cloud-amd64".to_string();
        fs::create_dir_all(root.join("boot")).unwrap();
        fs::write(root.join(format!("boot/vmlinuz-{v}")), b"kernel").unwrap();
        fs::write(root.join(format!("boot/config-{v}")), config).unwrap();
        let m = root.join(modules_dir).join(&v);
        fs::create_dir_all(m.join("kernel/fs/overlayfs")).unwrap();
        fs::write(m.join(format!("kernel/fs/overlayfs/overlay{suffix}")), b"m").unwrap();
        (root, v)
    }

    fn add_dep(root: &Path, v: &str, suffix: &str) {
        fs::write(
            root.join("lib/modules").join(v).join("modules.dep"),
            format!("kernel/fs/overlayfs/overlay{suffix}:\nkernel/fs/a{suffix}: kernel/fs/b{suffix}\nkernel/fs/b{suffix}:\n"),
        )
        .unwrap();
    }

    #[test]
    fn lib_modules_layout_plain_ko() {
        let (root, v) = package(
            "lib",
            "lib/modules",
            ".ko",
            "# CONFIG_MODULE_DECOMPRESS is not set\n",
        );
        assert_eq!(prepare_tree(&root).unwrap(), (v.clone(), Layout::Lib));
        assert!(!fs::symlink_metadata(root.join("lib"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(find_unpacked(&root, "5.10").is_none(), "no modules.dep yet");
        add_dep(&root, &v, ".ko");
        let k = find_unpacked(&root, "5.10").unwrap();
        assert_eq!(k.modules, root.join("lib/modules").join(&v));
        assert_eq!(k.layout(), Layout::Lib);
        assert_eq!(k.module_suffix(), ".ko");
        assert!(!k.decompresses_modules());
        assert_eq!(k.describe(), format!("5.10 ({v}, lib/modules, .ko)"));
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn usr_lib_modules_layout_xz() {
        let (root, v) = package(
            "usr",
            "usr/lib/modules",
            ".ko.xz",
            "CONFIG_MODULE_DECOMPRESS=y\n",
        );
        assert_eq!(prepare_tree(&root).unwrap(), (v.clone(), Layout::UsrLib));
        // lib -> usr/lib, as depmod -b of bookworm's kmod needs it.
        assert_eq!(
            fs::read_link(root.join("lib")).unwrap(),
            Path::new("usr/lib")
        );
        add_dep(&root, &v, ".ko.xz");
        assert!(root
            .join("usr/lib/modules")
            .join(&v)
            .join("modules.dep")
            .is_file());
        let k = find_unpacked(&root, "6.12").unwrap();
        assert!(k
            .modules
            .join("kernel/fs/overlayfs/overlay.ko.xz")
            .is_file());
        assert_eq!(k.layout(), Layout::UsrLib);
        assert_eq!(k.module_suffix(), ".ko.xz");
        assert!(k.decompresses_modules());
        assert_eq!(
            k.describe(),
            format!("6.12 ({v}, usr/lib/modules, .ko.xz, kernel decompresses)")
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn usr_lib_modules_with_a_real_lib() {
        let (root, v) = package("usrlib", "usr/lib/modules", ".ko.zst", "");
        fs::create_dir_all(root.join("lib/firmware")).unwrap();
        assert_eq!(prepare_tree(&root).unwrap(), (v.clone(), Layout::UsrLib));
        assert!(root.join("lib/modules").join(&v).is_dir());
        add_dep(&root, &v, ".ko.zst");
        let k = find_unpacked(&root, "x").unwrap();
        assert_eq!(k.module_suffix(), ".ko.zst");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn no_modules_at_all_is_an_error() {
        let root = scratch("none");
        fs::create_dir_all(root.join("boot")).unwrap();
        let e = prepare_tree(&root).unwrap_err().to_string();
        assert!(e.contains("neither lib/modules nor usr/lib/modules"), "{e}");
        fs::create_dir_all(root.join("lib/modules/1.0")).unwrap();
        fs::create_dir_all(root.join("lib/modules/2.0")).unwrap();
        let e = prepare_tree(&root).unwrap_err().to_string();
        assert!(e.contains("several kernel versions"), "{e}");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn sources_by_label_package_or_suite() {
        let s = Source::parse("5.10").unwrap();
        assert_eq!(
            (s.suites.clone(), s.package),
            (vec!["bullseye".into()], None)
        );
        assert_eq!(s.meta, META_PACKAGE);
        assert_eq!(Source::parse("6.12").unwrap().suites, ["trixie"]);
        let d = Source::parse("6.1").unwrap();
        assert!(d.is_default() && d.suites.is_empty());
        let p = Source::parse("bullseye:linux-image-5.10.0-32-cloud-amd64").unwrap();
        assert_eq!(p.suites, ["bullseye"]);
        assert_eq!(
            p.package.as_deref(),
            Some("linux-image-5.10.0-32-cloud-amd64")
        );
        assert_eq!(p.label, "linux-image-5.10.0-32-cloud-amd64");
        let m = Source::parse("linux-image-6.1.0-57-cloud-amd64").unwrap();
        assert!(m.suites.is_empty() && !m.is_default());
        for bad in [
            "4.19",
            "",
            "trixie:",
            ":linux-image-x",
            "trixie:bash",
            "linux-image-../x/y",
        ] {
            assert!(Source::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn disk_bus_from_the_config() {
        use crate::boot::Bus;
        for (config, bus) in [
            ("CONFIG_BLK_DEV_NVME=y\n", Bus::Nvme),
            (
                "CONFIG_BLK_DEV_NVME=m\nCONFIG_VIRTIO_BLK=m\n",
                Bus::VirtioBlk,
            ),
            ("", Bus::Nvme),
        ] {
            let (root, v) = package("bus", "lib/modules", ".ko", config);
            add_dep(&root, &v, ".ko");
            let k = find_unpacked(&root, "x").unwrap();
            assert_eq!(k.disk_bus(), bus, "{config:?}");
            fs::remove_dir_all(&root).unwrap();
        }
    }

    #[test]
    fn another_architectures_kernels() {
        let a = &arch::AARCH64;
        let g = Source::parse_for(a, "6.1").unwrap();
        assert_eq!(g.suites, ["bookworm", "bookworm-security"]);
        assert_eq!(g.meta, "linux-image-arm64");
        let c = Source::parse_for(a, "6.1-cloud").unwrap();
        assert_eq!(c.meta, "linux-image-cloud-arm64");
        // A bare package name comes from the default kernel's suites.
        let p = Source::parse_for(a, "linux-image-6.1.0-57-arm64").unwrap();
        assert_eq!(p.suites, ["bookworm", "bookworm-security"]);
        let e = Source::parse_for(a, "5.10").unwrap_err().to_string();
        assert!(e.contains("say 6.1, 6.1-cloud"), "{e}");
    }

    #[test]
    fn meta_package_dependency() {
        let t = "linux-image-cloud-amd64\n  Depends: linux-image-5.10.0-32-cloud-amd64\n";
        assert_eq!(
            depends_on_image(t).as_deref(),
            Some("linux-image-5.10.0-32-cloud-amd64")
        );
        assert_eq!(depends_on_image("linux-image-cloud-amd64\n"), None);
    }

    #[test]
    fn mirror_of_the_machines_sources() {
        let deb822 = "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\n\n\
                      Types: deb\nURIs: http://deb.debian.org/debian-security\n";
        assert_eq!(
            mirror_from(deb822, "").as_deref(),
            Some("http://deb.debian.org/debian")
        );
        let sec_first =
            "URIs: http://security.debian.org/debian-security\nURIs: http://m.example/debian/\n";
        assert_eq!(
            mirror_from(sec_first, "").as_deref(),
            Some("http://m.example/debian")
        );
        let list = "# c\ndeb [arch=amd64] http://ftp.de.debian.org/debian bookworm main\n";
        assert_eq!(
            mirror_from("", list).as_deref(),
            Some("http://ftp.de.debian.org/debian")
        );
        assert_eq!(mirror_from("", ""), None);
    }

    #[test]
    fn suffix_of_most_modules() {
        assert_eq!(module_suffix("a/x.ko:\nb/y.ko: a/x.ko\n"), ".ko");
        assert_eq!(module_suffix("a/x.ko.xz:\nb/y.ko.xz:\nc/z.ko:\n"), ".ko.xz");
        assert_eq!(module_suffix(""), "no modules");
    }
}
