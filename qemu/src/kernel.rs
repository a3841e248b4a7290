//! The test kernel: Debian's cloud kernel, fetched with `apt-get download`
//! and unpacked with `dpkg -x`, never installed.
//!
//! The cloud flavour has ext4 and NVMe built in and overlayfs as an
//! uncompressed module without dependencies, which is exactly the situation
//! an embedded initramfs faces: one module to load, the root device on a bus
//! that needs no module.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::util::{self, output, run};

/// The meta package that always depends on the current cloud kernel.
pub const META_PACKAGE: &str = "linux-image-cloud-amd64";

/// An unpacked kernel.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// e.g. `6.1.0-56-cloud-amd64`
    pub version: String,
    pub vmlinuz: PathBuf,
    /// `lib/modules/<version>` of the unpacked package.
    pub modules: PathBuf,
}

/// The versioned package the meta package depends on (its candidate version).
fn resolve_package() -> Result<String> {
    if let Ok(p) = std::env::var("KTEST_KERNEL_PACKAGE") {
        return Ok(p);
    }
    let mut text =
        output(Command::new("apt-cache").args(["depends", META_PACKAGE])).unwrap_or_default();
    if !text.contains("Depends:") {
        // A fresh machine has no package lists yet.
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        text = output(Command::new("apt-cache").args(["depends", META_PACKAGE]))?;
    }
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends:"))
        .map(str::trim)
        .find(|p| p.starts_with("linux-image-"))
        .map(str::to_string)
        .with_context(|| format!("no linux-image dependency in `apt-cache depends {META_PACKAGE}`"))
}

/// Find an already unpacked kernel in `dir`.
fn find_unpacked(dir: &Path) -> Option<Kernel> {
    let modules_root = dir.join("lib/modules");
    let version = fs::read_dir(&modules_root)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()?;
    let vmlinuz = dir.join(format!("boot/vmlinuz-{version}"));
    let modules = modules_root.join(&version);
    (vmlinuz.is_file() && modules.join("modules.dep").is_file()).then_some(Kernel {
        version,
        vmlinuz,
        modules,
    })
}

/// Fetch and unpack the kernel (cached under `.cache/qemu/kernel/<package>`).
pub fn ensure() -> Result<Kernel> {
    let base = util::cache_dir().join("kernel");
    // Reuse any unpacked kernel without asking apt (offline reruns, speed).
    if std::env::var_os("KTEST_KERNEL_PACKAGE").is_none() {
        if let Some(k) = fs::read_dir(&base)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter_map(|e| find_unpacked(&e.path()))
            .max_by(|a, b| a.version.cmp(&b.version))
        {
            return Ok(k);
        }
    }
    unpack(&base, &resolve_package()?)
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
    let k = unpack(&base, &pkg)?;
    let config = k
        .modules
        .join("../../../boot")
        .join(format!("config-{}", k.version));
    let text = fs::read_to_string(&config).unwrap_or_default();
    if !text.lines().any(|l| l == "CONFIG_MODULE_DECOMPRESS=y") {
        bail!(
            "{pkg}: {} does not say CONFIG_MODULE_DECOMPRESS=y (set KTEST_KERNEL_XZ_PACKAGE)",
            config.display()
        );
    }
    Ok(k)
}

/// The package already unpacked in `base`, if any.
fn cached_package(base: &Path) -> Option<String> {
    fs::read_dir(base)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| find_unpacked(&e.path()).is_some())
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
fn unpack(base: &Path, pkg: &str) -> Result<Kernel> {
    let dir = base.join(pkg);
    if let Some(k) = find_unpacked(&dir) {
        return Ok(k);
    }
    let dl = base.join("download");
    fs::create_dir_all(&dl)?;
    eprintln!("qemu-harness: apt-get download {pkg}");
    run(Command::new("apt-get")
        .arg("download")
        .arg(pkg)
        .current_dir(&dl))?;
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
    // The package does not ship modules.dep (its postinst runs depmod).
    let version = fs::read_dir(tmp.join("lib/modules"))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .context("package has no lib/modules/<version>")?;
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
    match find_unpacked(&dir) {
        Some(k) => Ok(k),
        None => bail!(
            "unpacked {pkg} into {} but found no vmlinuz/modules.dep",
            dir.display()
        ),
    }
}
