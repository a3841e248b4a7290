//! Initramfs images: ours, made by `ostree-mkinitramfs` (the tool users
//! get from `make install`: one static `/init` plus the kernel modules it
//! loads), and the reference one (busybox, a shell script and ostree's C
//! `ostree-prepare-root` with its shared libraries) that ours is compared to.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use mkinitramfs::compress::{self, Compress};
use mkinitramfs::cpio::Archive;
use mkinitramfs::modtree::{ModTree, Texts};

use crate::util::{self, output};

/// The file our `/init` reads: module names to load, one per line.
pub const MODULE_LIST: &str = "/etc/initramfs-modules";

/// The modules our initramfs loads (overlayfs, for the hotfix `/usr`); the
/// test disks' deployments carry them too, for the boots without initramfs.
pub const MODULES: &[&str] = &["overlay"];

/// What goes into an initramfs made by [`build`].
#[derive(Debug, Clone)]
pub struct Spec {
    /// The binary that becomes `/init`.
    pub init: PathBuf,
    /// `lib/modules/<version>` of the kernel the image is for.
    pub modules_dir: PathBuf,
    /// Module names to load at boot (their dependencies are added).
    pub modules: Vec<String>,
    /// Extra files: (source on the host, destination in the image).
    pub extras: Vec<(PathBuf, String)>,
    pub compress: Compress,
}

/// The `modules.dep` lines of `names` and of everything they depend on,
/// in the file's order (resolved by ostree-mkinitramfs's library, as the
/// tool resolves them). Errors name every module that is not in the tree.
pub fn dep_closure(modules_dep: &str, names: &[String]) -> Result<Vec<String>> {
    let tree = ModTree::from_texts(&Texts {
        dep: modules_dep,
        ..Texts::default()
    });
    let plan = tree.plan(names).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(tree
        .dep_subset(&plan)
        .into_iter()
        .map(str::to_string)
        .collect())
}

/// gzip, as the tool compresses (the system's `gzip -n -9`).
pub fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    Ok(compress::compress(data, Compress::Gzip)?)
}

/// Add the modules (with their dependencies) and their `modules.dep` lines
/// under `/lib/modules/<version>/`, at the same relative paths as in the tree.
fn add_modules(a: &mut Archive, modules_dir: &Path, names: &[String]) -> Result<()> {
    let version = modules_dir
        .file_name()
        .context("modules dir has no name")?
        .to_string_lossy()
        .into_owned();
    let dep_file = modules_dir.join("modules.dep");
    let dep =
        fs::read_to_string(&dep_file).with_context(|| format!("reading {}", dep_file.display()))?;
    let lines = dep_closure(&dep, names)?;
    for l in &lines {
        let rel = l.split(':').next().unwrap_or_default();
        let data =
            fs::read(modules_dir.join(rel)).with_context(|| format!("reading module {rel}"))?;
        a.file(&format!("/lib/modules/{version}/{rel}"), 0o644, &data);
    }
    if !lines.is_empty() {
        a.file(
            &format!("/lib/modules/{version}/modules.dep"),
            0o644,
            (lines.join("\n") + "\n").as_bytes(),
        );
    }
    Ok(())
}

/// The directories `/init` mounts on; creating them costs nothing.
fn skeleton(a: &mut Archive) {
    for d in ["/dev", "/proc", "/sys", "/run", "/sysroot", "/etc"] {
        a.dir(d, 0o755);
    }
    a.char_dev("/dev/console", 0o600, 5, 1);
}

fn write_image(mut a: Archive, gz: bool, out: &Path) -> Result<Vec<(String, u64)>> {
    let files = std::mem::take(&mut a.files);
    let raw = a.finish();
    let bytes = if gz { gzip(&raw)? } else { raw };
    if let Some(d) = out.parent() {
        fs::create_dir_all(d)?;
    }
    fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))?;
    Ok(files)
}

/// The command that builds our image: `ostree-mkinitramfs` as a user runs it.
pub fn command(spec: &Spec, out: &Path) -> Command {
    let mut cmd = Command::new(util::mkinitramfs_bin());
    cmd.arg("--modules-dir")
        .arg(&spec.modules_dir)
        .arg("--prepare-root")
        .arg(&spec.init)
        .arg("--compress")
        .arg(spec.compress.name());
    for m in &spec.modules {
        cmd.arg("--module").arg(m);
    }
    for (src, dst) in &spec.extras {
        cmd.arg("--add").arg(format!("{}:{dst}", src.display()));
    }
    cmd.arg("-o").arg(out).arg("--list");
    cmd
}

/// The regular files of `ostree-mkinitramfs --list` (`f MODE SIZE PATH`).
fn listed_files(listing: &str) -> Vec<(String, u64)> {
    listing
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == "f").then_some(())?;
            let size = w.nth(1)?.parse().ok()?;
            Some((w.next()?.to_string(), size))
        })
        .collect()
}

/// Build our initramfs with `ostree-mkinitramfs`: `/init`, `/dev/console`,
/// the modules with their dependencies, the module list, extras. Returns
/// the regular files it holds, with their sizes (from its `--list`).
pub fn build(spec: &Spec, out: &Path) -> Result<Vec<(String, u64)>> {
    let tool = util::mkinitramfs_bin();
    if !tool.is_file() {
        bail!(
            "{} is missing: `make mkinitramfs` (part of `make qemu-prep`) builds it",
            tool.display()
        );
    }
    if let Some(d) = out.parent() {
        fs::create_dir_all(d)?;
    }
    let mut cmd = command(spec, out);
    let res = cmd
        .output()
        .with_context(|| format!("cannot run {}", tool.display()))?;
    let stderr = String::from_utf8_lossy(&res.stderr);
    if !res.status.success() {
        bail!(
            "ostree-mkinitramfs failed ({}) for {}:\n{}",
            res.status,
            out.display(),
            stderr.trim_end()
        );
    }
    // Warnings (a soft dependency left out, a built-in module) are worth seeing.
    for l in stderr.lines() {
        eprintln!("{l}");
    }
    Ok(listed_files(&String::from_utf8_lossy(&res.stdout)))
}

/// The reference `/init`: what a hand-written busybox initramfs does to boot
/// an OSTree deployment with ostree's C `ostree-prepare-root`. It also sets
/// `RD_TIMESTAMP` (from /proc/uptime, 10 ms resolution) so ktest can report
/// the time spent in it, as for ours.
const REFERENCE_INIT: &str = r#"#!/bin/sh
# Reference initramfs: busybox + ostree's C ostree-prepare-root.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc -o nosuid,nodev,noexec proc /proc
read up _ </proc/uptime
export RD_TIMESTAMP="0 ${up%.*}${up#*.}0000"
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mount -t devtmpfs -o nosuid devtmpfs /dev
mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs /run
fail() {
    echo "reference-init: $*" >/dev/console
    sync
    poweroff -f
}
while read -r m; do
    [ -n "$m" ] || continue
    p=$(grep -m1 "/$m\.ko[^:]*:" /lib/modules/*/modules.dep | cut -d: -f1)
    insmod /lib/modules/*/"$p" || fail "cannot load module $m"
done </etc/initramfs-modules
root= ; mode=ro ; wait=0
for a in $(cat /proc/cmdline); do
    case "$a" in
        root=*) root=${a#root=} ;;
        ro) mode=ro ;;
        rw) mode=rw ;;
        rootwait|rootwait=*) wait=1 ;;
    esac
done
dev=
i=0
while [ -z "$dev" ]; do
    case "$root" in
        /dev/*) [ -b "$root" ] && dev=$root ;;
        *) dev=$(findfs "$root" 2>/dev/null) ;;
    esac
    [ -n "$dev" ] && break
    i=$((i + 1))
    [ $wait = 1 ] && [ $i -lt 300 ] || [ $i -lt 50 ] || fail "root device $root not found"
    sleep 0.1
done
mount -o $mode "$dev" /sysroot || fail "cannot mount $dev"
/usr/lib/ostree/ostree-prepare-root /sysroot || fail "ostree-prepare-root failed"
# ostree's systemd generator would mount /var; there is no systemd here.
deploy=$(readlink -f /sysroot/sysroot$(sed -n 's/.*ostree=\([^ ]*\).*/\1/p' /proc/cmdline))
mount --bind "$deploy/../../var" /sysroot/var || fail "cannot mount /var"
for d in dev proc sys run; do mount --move /$d /sysroot/$d; done
exec switch_root /sysroot /sbin/init
"#;

/// The shared libraries (and ELF interpreter) a dynamic binary loads, from `ldd`.
pub(crate) fn ldd_closure(bin: &Path) -> Result<Vec<PathBuf>> {
    let text = output(Command::new("ldd").arg(bin))?;
    let mut libs = vec![];
    for l in text.lines() {
        let path = match l.split_once("=>") {
            Some((_, r)) => r.split_whitespace().next(),
            None => l.split_whitespace().next().filter(|p| p.starts_with('/')),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(p));
        }
    }
    Ok(libs)
}

/// Busybox applets the reference `/init` uses.
const APPLETS: &[&str] = &[
    "sh",
    "mount",
    "insmod",
    "findfs",
    "switch_root",
    "poweroff",
    "sleep",
    "cat",
    "grep",
    "cut",
    "sed",
    "readlink",
    "sync",
    "echo",
];

/// Build the reference initramfs (see [`REFERENCE_INIT`]).
pub fn build_reference(
    modules_dir: &Path,
    modules: &[String],
    gz: bool,
    out: &Path,
) -> Result<Vec<(String, u64)>> {
    let busybox = Path::new("/bin/busybox");
    if !crate::util::is_static(busybox) {
        bail!(
            "{} is not a static busybox: apt-get install busybox-static",
            busybox.display()
        );
    }
    let c_tool = Path::new("/usr/lib/ostree/ostree-prepare-root");
    let mut a = Archive::new();
    skeleton(&mut a);
    a.file("/init", 0o755, REFERENCE_INIT.as_bytes());
    a.file("/bin/busybox", 0o755, &fs::read(busybox)?);
    for app in APPLETS {
        a.symlink(&format!("/bin/{app}"), "busybox");
    }
    a.file(
        "/usr/lib/ostree/ostree-prepare-root",
        0o755,
        &fs::read(c_tool).context("ostree's C tool: apt-get install ostree-boot")?,
    );
    for lib in ldd_closure(c_tool)? {
        // Store the resolved file under the name the loader asks for.
        a.file(&lib.to_string_lossy(), 0o755, &fs::read(&lib)?);
    }
    add_modules(&mut a, modules_dir, modules)?;
    a.file(MODULE_LIST, 0o644, (modules.join("\n") + "\n").as_bytes());
    write_image(a, gz, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "kernel/fs/overlayfs/overlay.ko:\n\
        kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko\n\
        kernel/drivers/virtio/virtio.ko:\n\
        kernel/drivers/virtio/virtio_ring.ko:\n\
        kernel/fs/other.ko.xz:\n";

    #[test]
    fn closure_adds_dependencies_in_file_order() {
        let got = dep_closure(DEP, &["virtio-blk".into()]).unwrap();
        assert_eq!(
            got,
            [
                "kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko",
                "kernel/drivers/virtio/virtio.ko:",
                "kernel/drivers/virtio/virtio_ring.ko:"
            ]
        );
    }

    #[test]
    fn listing_gives_the_files() {
        let l = "d 0755         0 /dev\nc 0600         0 /dev/console\nf 0755     97096 /init\n\
                 f 0644       123 /lib/modules/6.1/kernel/fs/overlayfs/overlay.ko\n# load order: overlay\n";
        assert_eq!(
            listed_files(l),
            [
                ("/init".to_string(), 97096),
                (
                    "/lib/modules/6.1/kernel/fs/overlayfs/overlay.ko".to_string(),
                    123
                )
            ]
        );
    }

    #[test]
    fn closure_names_missing_modules() {
        let e = dep_closure(DEP, &["overlay".into(), "nope".into(), "zram".into()]).unwrap_err();
        let e = e.to_string();
        assert!(e.contains("module nope not found"), "{e}");
        assert!(e.contains("module zram not found"), "{e}");
        assert_eq!(
            dep_closure(DEP, &["other".into()]).unwrap(),
            ["kernel/fs/other.ko.xz:"]
        );
    }
}
