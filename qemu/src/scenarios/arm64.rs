//! The aarch64 scenarios (`--arch aarch64`, `qemu-system-aarch64 -M virt`):
//! Debian's generic arm64 kernel, whose virtio and ext4 drivers are modules
//! (ext4's crc32c a soft dependency), with our initramfs; its cloud kernel
//! (NVMe and ext4 built in) with `init=`; the hotfix made in the guest by
//! the aarch64 `ostree-unlock` and its pristine boot entry; and the image
//! built without ext4's soft dependency, which must fail.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::run::{hotfix_markers, in_deploy, Run, ScenarioFn, OURS};
use super::way_back::{entry_cmdline, is_pristine};
use crate::boot::Bus;
use crate::disk;
use crate::kernel::{self, Kernel};
use crate::lab::Mode;
use crate::util;

pub fn scenarios() -> Vec<(&'static str, ScenarioFn)> {
    vec![
        (
            "A1 generic kernel, our /init loads modules",
            generic_initramfs,
        ),
        ("A2 cloud kernel, no initramfs (init=)", cloud_init),
        ("A3 ostree-unlock --hotfix, pristine entry", hotfix),
        ("A4 failure: ext4 without its soft dep", no_softdep),
    ]
}

/// The modules our image must hold for the generic kernel: the drivers of
/// the root, ext4's soft dependency (`crypto-crc32c`, an alias of
/// `crc32c_generic`) and overlayfs.
const GENERIC_MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_blk",
    "ext4",
    "crc32c_generic",
    "overlay",
];

fn holds_module(files: &[(String, u64)], name: &str) -> bool {
    files.iter().any(|(f, _)| {
        f.rsplit('/')
            .next()
            .and_then(|b| b.split_once(".ko"))
            .is_some_and(|(stem, _)| stem.replace('-', "_") == name)
    })
}

/// `ktest.alone`, as `Lab::boot` adds it where our binary is the first program.
fn alone(append: String) -> String {
    format!("{append} ktest.alone")
}

fn generic_initramfs(r: &mut Run) -> Result<()> {
    let lab = r.lab;
    let (img, files) = lab.initramfs_from(&lab.kernel.modules, "generic")?;
    for m in GENERIC_MODULES {
        r.check(
            holds_module(&files, m),
            format!("{} holds no {m} module", img.display()),
        );
    }
    r.check(
        lab.kernel.disk_bus() == Bus::VirtioBlk,
        format!(
            "{} has NVMe built in: not the generic kernel",
            lab.kernel.version
        ),
    );
    let d = r.disk(&lab.disk)?;
    let extra = format!(
        "ktest.step=initramfs {OURS} ktest.exists=/run/ostree/initramfs-mount-var \
         ktest.sysroot=rw ktest.mounts"
    );
    let append = alone(lab.cmdline(&d, Mode::Ours, "B", &extra));
    let o = r.expect_ok_kernel(&lab.kernel, &d, Some(img), &append, "initramfs")?;
    r.check(
        o.console.contains("virtio_blk") && o.console.contains("[vda]"),
        "the console shows no virtio-blk disk vda",
    );
    Ok(())
}

fn cloud_init(r: &mut Run) -> Result<()> {
    let lab = r.lab;
    let k = kernel::fetch(&kernel::Source::parse("6.1-cloud")?)?;
    r.check(
        k.disk_bus() == Bus::Nvme,
        format!("{}: NVMe is not built in", k.version),
    );
    let d = r.disk(&lab.disk)?;
    let extra = format!("ktest.step=init {OURS} ktest.sysroot=rw");
    let append = alone(lab.cmdline(&d, Mode::NoInitramfs, "B", &extra));
    r.expect_ok_kernel(&k, &d, None, &append, "cloud-init")?;
    Ok(())
}

/// The hotfix as a user makes it on the device: `ostree-unlock --hotfix`
/// in the guest (no ostree CLI there: no clone), a file written to `/usr`,
/// a reboot that keeps it, then the pristine entry ostree-unlock wrote,
/// read back from the disk and booted as a boot loader would.
fn hotfix(r: &mut Run) -> Result<()> {
    let d = r.disk(&r.lab.disk)?;
    let file = "/usr/share/ktest-arm64-hotfix";
    let run = format!(
        "{OURS} ktest.exists=/usr/bin/ostree-unlock \
         ktest.run=\"ostree-unlock --hotfix --no-clone\" ktest.usr=rw ktest.write={file}"
    );
    r.expect_ok(&d, Mode::Ours, "B", &run, "unlock-hotfix")?;
    let markers = disk::list_dir(&d.fs_image, &in_deploy(&d, "B", ""))?;
    for m in hotfix_markers(&d, "B") {
        let name = m.rsplit('/').next().unwrap_or_default();
        r.check(
            markers.iter().any(|n| n == name),
            format!("no {m} on the disk after ostree-unlock --hotfix"),
        );
    }
    let kept = format!("{OURS} ktest.usr=rw ktest.exists={file}");
    r.expect_ok(&d, Mode::Ours, "B", &kept, "hotfix-reboot")?;
    let entries = disk::entries_in_image(&d.fs_image)?;
    let listing = entries
        .iter()
        .map(|(f, _)| f.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let pristine: Vec<&(String, String)> =
        entries.iter().filter(|(f, o)| is_pristine(f, o)).collect();
    r.check(
        pristine.len() == 1,
        format!(
            "one pristine entry after ostree-unlock --hotfix, found {}: {listing}",
            pristine.len()
        ),
    );
    if let Some((_, options)) = pristine.first() {
        // Lab::boot adds ktest.alone (our /init).
        let append = entry_cmdline(options, "pristine", "B", None, false, file);
        r.expect_ok_append(&d, Mode::Ours, &append, "pristine", None)?;
    }
    Ok(())
}

/// `lib/modules/<version>` of `kernel` without its soft dependencies: a
/// directory of links to the tree's files, with an empty `modules.softdep`.
fn softdep_less_tree(kernel: &Kernel) -> Result<PathBuf> {
    let tree = util::work_dir().join("no-softdep").join(&kernel.version);
    let _ = std::fs::remove_dir_all(&tree);
    std::fs::create_dir_all(&tree)?;
    for e in std::fs::read_dir(&kernel.modules)? {
        let e = e?;
        if e.file_name() == "modules.softdep" {
            continue;
        }
        std::os::unix::fs::symlink(e.path(), tree.join(e.file_name()))
            .with_context(|| format!("linking {}", e.path().display()))?;
    }
    std::fs::write(tree.join("modules.softdep"), "")?;
    Ok(tree)
}

/// What the builder's soft dependencies are for: without `crc32c_generic`
/// the kernel cannot mount the root's ext4 (metadata checksums), and our
/// `/init` must say so and power off.
fn no_softdep(r: &mut Run) -> Result<()> {
    let lab = r.lab;
    let tree = softdep_less_tree(&lab.kernel)?;
    let (img, files) = lab.initramfs_from(Path::new(&tree), "no-softdep")?;
    r.check(
        !holds_module(&files, "crc32c_generic") && holds_module(&files, "ext4"),
        format!("{}: ext4 without crc32c_generic expected", img.display()),
    );
    let d = r.disk(&lab.disk)?;
    let append = lab.cmdline(&d, Mode::Ours, "B", "");
    let o = r.expect_failure(
        &d,
        Some(img),
        &append,
        "no-softdep",
        &["mount root /dev/vda -> /sysroot", "ENOENT"],
    )?;
    r.check(
        o.console.contains("Cannot load crc32c driver"),
        "the kernel did not say \"Cannot load crc32c driver\"",
    );
    Ok(())
}
