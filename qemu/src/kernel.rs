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
    let pkg = resolve_package()?;
    let dir = base.join(&pkg);
    if let Some(k) = find_unpacked(&dir) {
        return Ok(k);
    }
    let dl = base.join("download");
    fs::create_dir_all(&dl)?;
    eprintln!("qemu-harness: apt-get download {pkg}");
    run(Command::new("apt-get")
        .arg("download")
        .arg(&pkg)
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
