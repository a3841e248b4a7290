//! Modules compressed with xz, as distributions ship them: handed over as is
//! to a kernel that decompresses them (Debian's 6.12), refused with a clear
//! message by one that cannot (the lab's 6.1). And images compressed with
//! xz and zstd by ostree-mkinitramfs, unpacked by the kernel.

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::{Context, Result};
use mkinitramfs::compress::Compress;
use mkinitramfs::modtree::ModTree;

use super::run::{hotfix_markers, Run, ScenarioFn, OURS};
use crate::disk;
use crate::initramfs;
use crate::kernel::{self, Kernel};
use crate::lab::Mode;
use crate::util;

/// Modules compressed as distributions ship them.
pub fn scenarios() -> Vec<(&'static str, ScenarioFn)> {
    vec![
        ("11a xz module, kernel 6.12 decompresses", |r| {
            // Debian's 6.12 ships overlay.ko.xz and decompresses it itself:
            // /init hands it over as is, and the hotfix overlay works.
            let k = kernel::ensure_compressed_modules()?;
            let (initrd, files) = r.lab.initramfs_from(&k.modules, "overlay-xz-on-6.12")?;
            r.check(
                files.iter().any(|(f, _)| f.ends_with("/overlay.ko.xz")),
                format!("{} holds no overlay.ko.xz: {files:?}", initrd.display()),
            );
            let d = r.disk(&r.lab.disk)?;
            disk::mkdirs(&d.fs_image, &hotfix_markers(&d, "B"))?;
            let o = r.expect_ok_initrd_on(
                &k,
                &d,
                &initrd,
                "B",
                &format!("{OURS} ktest.usr=rw ktest.write=/usr/share/ktest-xz"),
                "xz-module-hotfix",
                &[],
            )?;
            r.check(
                o.console.contains(&format!("Linux version {} ", k.version)),
                format!("the console does not show kernel {} booting", k.version),
            );
            Ok(())
        }),
        ("11b xz module, kernel cannot decompress", |r| {
            // overlay.ko.xz on the 6.1 kernel (CONFIG_MODULE_DECOMPRESS off):
            // the kernel refuses it; the message must say why.
            let tree = xz_module_tree(&r.lab.kernel, "overlay")?;
            let (initrd, _) = r.lab.initramfs_from(&tree, "overlay-xz-on-6.1")?;
            let d = r.disk(&r.lab.disk)?;
            let append = r.lab.cmdline(&d, Mode::Ours, "B", "");
            r.expect_failure(
                &d,
                Some(initrd),
                &append,
                "xz-module-unsupported",
                &["overlay.ko.xz", "could not decompress"],
            )?;
            Ok(())
        }),
        ("11c image compressed with xz, zstd", |r| {
            // `ostree-mkinitramfs --compress xz|zstd`: the kernel's own
            // decoders must unpack the image (xz wants a CRC32 check).
            for (how, magic) in [
                (Compress::Xz, &b"\xfd7zXZ\0"[..]),
                (Compress::Zstd, &b"\x28\xb5\x2f\xfd"[..]),
            ] {
                let img = util::work_dir()
                    .join("initramfs")
                    .join(format!("ours.cpio.{}", how.name()));
                crate::lab::build_ours_compressed(&r.lab.kernel.modules, &img, how)?;
                let head = std::fs::read(&img)?;
                r.check(
                    head.starts_with(magic),
                    format!(
                        "{} does not start with the {} magic",
                        img.display(),
                        how.name()
                    ),
                );
                let d = r.disk(&r.lab.disk)?;
                let k = r.lab.kernel.clone();
                r.expect_ok_initrd_on(
                    &k,
                    &d,
                    &img,
                    "B",
                    OURS,
                    &format!("image-{}", how.name()),
                    &[],
                )?;
            }
            Ok(())
        }),
        ("11e soft dependencies and aliases resolved by /init", |r| {
            // An image holding btrfs and what it needs, whose module list
            // names only overlay: `rd.modules-load=btrfs` makes /init load
            // btrfs, and its soft dependencies (`softdep btrfs pre:
            // blake2b-256 xxhash64 ...`), aliases of blake2b_generic and
            // xxhash_generic in modules.alias, must come with it.
            let img = util::work_dir().join("initramfs").join("softdep.cpio");
            let spec = initramfs::Spec {
                init: util::prepare_root_bin(),
                modules_dir: r.lab.kernel.modules.clone(),
                modules: vec!["overlay".into(), "btrfs".into()],
                extras: vec![],
                compress: Compress::Gzip,
            };
            initramfs::build(&spec, &img)?;
            // A second archive after it replaces the module list (the kernel
            // unpacks concatenated archives in order).
            let mut list = mkinitramfs::cpio::Archive::new();
            list.file(initramfs::MODULE_LIST, 0o644, b"overlay\n");
            let mut bytes = std::fs::read(&img)?;
            // An uncompressed archive must start 4-byte aligned; the kernel
            // skips the zeros before it.
            bytes.resize(bytes.len().next_multiple_of(512), 0);
            bytes.extend(list.finish());
            std::fs::write(&img, bytes)?;
            let d = r.disk(&r.lab.disk)?;
            let k = r.lab.kernel.clone();
            let o = r.expect_ok_initrd_on(
                &k,
                &d,
                &img,
                "B",
                &format!(
                    "{OURS} rd.modules-load=btrfs ktest.exists=/sys/module/btrfs \
                     ktest.exists=/sys/module/blake2b_generic ktest.exists=/sys/module/xxhash_generic"
                ),
                "softdep-alias",
                &[],
            )?;
            // A soft dependency the CPU cannot take (crc32c_intel without
            // SSE4.2 under TCG's CPU) is a warning that names it, never fatal.
            let ours: Vec<&str> = o
                .console
                .lines()
                .filter(|l| l.starts_with("ostree-prepare-root:"))
                .collect();
            let nodev = ours.iter().any(|l| {
                l.contains("module crc32c_intel: nothing for it on this machine (ENODEV), skipped")
            });
            let has_sse42 = o.console.contains("sse4_2");
            r.check(
                nodev || has_sse42,
                format!(
                    "no warning for crc32c_intel, a soft dependency this CPU cannot take: {ours:?}"
                ),
            );
            Ok(())
        }),
        ("11d module order as modprobe's", |r| {
            // No boot: for every module of the lab's tree and of 11a's
            // (.ko.xz), ostree-mkinitramfs's modules and load order must be
            // those of the host's modprobe.
            let lab = r.lab.kernel.clone();
            modprobe_agrees(r, &lab)?;
            modprobe_agrees(r, &kernel::ensure_compressed_modules()?)
        }),
    ]
}

/// Compare ostree-mkinitramfs's plan for each module of `kernel`'s tree with
/// `modprobe --show-depends` (kmod; its configuration left out, its
/// repeated lines counted once). Where a module of the plan has several
/// `softdep` lines, kmod reads only the first and the tool all of them: the
/// tool's list must then hold modprobe's, in modprobe's order.
fn modprobe_agrees(r: &mut Run, kernel: &Kernel) -> Result<()> {
    let dir = &kernel.modules;
    let root = dir
        .ancestors()
        .nth(3)
        .context("modules directory not under ROOT/lib/modules")?;
    let tree = ModTree::open(dir)?;
    let mut lines: BTreeMap<String, usize> = BTreeMap::new();
    for l in std::fs::read_to_string(dir.join("modules.softdep"))
        .unwrap_or_default()
        .lines()
    {
        let mut w = l.split_whitespace();
        if w.next() == Some("softdep") {
            if let Some(m) = w.next() {
                *lines.entry(m.replace('-', "_")).or_default() += 1;
            }
        }
    }
    let (mut same, mut superset, mut bad) = (0, 0, vec![]);
    for line in &tree.lines {
        let plan = tree.plan(std::slice::from_ref(&line.name))?;
        let ours: Vec<&str> = plan
            .order
            .iter()
            .map(|&i| tree.lines[i].path.as_str())
            .collect();
        let out = util::output(
            Command::new("modprobe")
                .args(["-C", "/dev/null", "-d"])
                .arg(root)
                .args(["-S", &kernel.version, "--show-depends", &line.name]),
        )?;
        let prefix = format!("/{}/", kernel.version);
        let mut theirs: Vec<String> = vec![];
        for l in out.lines().filter_map(|l| l.strip_prefix("insmod ")) {
            let path = l.split_whitespace().next().unwrap_or_default();
            let rel = path
                .split_once(&prefix)
                .map_or(path, |(_, rel)| rel)
                .to_string();
            if !theirs.contains(&rel) {
                theirs.push(rel);
            }
        }
        let several = plan
            .order
            .iter()
            .any(|&i| lines.get(&tree.lines[i].name) > Some(&1));
        let in_order = |sub: &[String]| {
            let mut it = ours.iter();
            sub.iter().all(|t| it.any(|o| o == t))
        };
        if ours == theirs {
            same += 1;
        } else if several && in_order(&theirs) {
            superset += 1;
        } else {
            bad.push(format!("{}: ours {ours:?}, modprobe {theirs:?}", line.name));
        }
    }
    println!(
        "    {}: {same} modules as modprobe, {superset} with more soft dependencies, {} different",
        kernel.version,
        bad.len()
    );
    r.check(
        bad.is_empty() && same > 0,
        format!(
            "{}: {} of {} modules differ from modprobe --show-depends: {}",
            kernel.version,
            bad.len(),
            tree.lines.len(),
            bad.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
        ),
    );
    Ok(())
}

/// A module tree for `kernel` holding only `name`, compressed with xz as
/// Debian compresses its modules, with its `modules.dep` line.
fn xz_module_tree(kernel: &Kernel, name: &str) -> Result<std::path::PathBuf> {
    let dep = std::fs::read_to_string(kernel.modules.join("modules.dep"))?;
    let line = initramfs::dep_closure(&dep, &[name.to_string()])?;
    anyhow::ensure!(
        line.len() == 1 && line[0].ends_with(':'),
        "{name} has dependencies: {line:?}"
    );
    let rel = line[0].trim_end_matches(':');
    let tree = util::work_dir().join("xz-modules").join(&kernel.version);
    let _ = std::fs::remove_dir_all(&tree);
    let dst = tree.join(format!("{rel}.xz"));
    std::fs::create_dir_all(dst.parent().unwrap_or(&tree))?;
    let packed = util::output_bytes(
        std::process::Command::new("xz")
            .args(["--check=crc32", "--lzma2=dict=1MiB", "--stdout"])
            .arg(kernel.modules.join(rel)),
    )?;
    std::fs::write(&dst, packed)?;
    std::fs::write(tree.join("modules.dep"), format!("{rel}.xz:\n"))?;
    Ok(tree)
}
