//! composefs with fs-verity, on a kernel that has it (Debian's 6.12: the
//! host's and the 6.1 lab kernel cannot): the disk of [`crate::cfsdisk`]
//! (made by ostree 2026.4, on ext4 with `-O verity`), fs-verity enabled by
//! a setup boot, then `verity` and `signed` roots, a corrupted object, and
//! the ways `signed` must refuse.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Result};

use super::run::{Run, ScenarioFn, OURS};
use crate::cfsdisk::{self, CfsDisk, VeritySetup, KEY_DST, TAMPER_FILE};
use crate::disk::{self, Disk};
use crate::lab::Mode;

/// The composefs boot every kernel with EROFS takes (no fs-verity needed).
pub const PLAIN: &str = "13g composefs yes, the kernel's own way";

/// What every composefs boot checks: a composefs root with verity required.
const CFS: &str = "ktest.alone ktest.composefs=verity ktest.booted=composefs=true \
                   ktest.booted=composefs.verity=true ktest.read=/usr/share/which-deployment";

pub fn scenarios() -> Vec<(&'static str, ScenarioFn)> {
    vec![
        (PLAIN, |r| {
            // `enabled = yes` on whatever the kernel offers: on 6.12 EROFS
            // reads the image file and overlayfs takes `lowerdir+=` and
            // `datadir+=`; on 6.1 the image goes through a loop device and the
            // overlay through mount(2) with a plain second lower layer
            // (data-only layers came in 6.5). Not on 5.10: its EROFS cannot
            // read the image's chunk-based files (the root mounts, then
            // executing init fails with EOPNOTSUPP).
            let base = cfsdisk::ensure(&r.lab.kernel)?;
            let (initrd, _) = cfsdisk::initramfs(
                &r.lab.kernel,
                "cfs-yes",
                "[composefs]\nenabled = yes\n",
                None,
            )?;
            let d = r.disk(&base.disk)?;
            let extra = format!(
                "{OURS} ktest.alone ktest.composefs ktest.booted=composefs=true \
                 ktest.booted=composefs.verity=false ktest.read=/usr/share/which-deployment \
                 ktest.read=/usr/lib/ktest"
            );
            r.expect_ok_initrd(&d, &initrd, "B", &extra, "yes", &[])?;
            Ok(())
        }),
        ("13a composefs verity", |r| {
            let (_, d) = verity_disk(r)?;
            let (initrd, list) = cfsdisk::initramfs(
                &r.lab.kernel,
                "cfs-verity",
                "[composefs]\nenabled = verity\n",
                None,
            )?;
            for m in ["erofs", "overlay"] {
                r.check(
                    list.contains(&format!("/{m}.ko")),
                    format!("{} holds no {m} module", initrd.display()),
                );
            }
            let d = r.disk(&d)?;
            // On ext4 with Linux 6.12 EROFS reads the image file itself: no
            // loop device is bound (the overlay keeps the EROFS in use).
            let extra = format!(
                "{OURS} {CFS} ktest.read=/{TAMPER_FILE} ktest.read=/usr/lib/ktest \
                 ktest.absent=/sys/block/loop0/loop/backing_file"
            );
            r.expect_ok_initrd(&d, &initrd, "B", &extra, "verity", &[])?;
            Ok(())
        }),
        ("13b composefs verity, corrupted object", |r| {
            // A file no boot needs: its object's first block is overwritten
            // on the disk after fs-verity was enabled. The boot succeeds;
            // reading that file gives EIO.
            let (_, d) = verity_disk(r)?;
            let (initrd, _) = cfsdisk::initramfs(
                &r.lab.kernel,
                "cfs-verity",
                "[composefs]\nenabled = verity\n",
                None,
            )?;
            let d = r.disk(&d)?;
            let file = format!("/{}/{TAMPER_FILE}", d.deploy_dir("B"));
            let at = cfsdisk::first_block_offset(&d.fs_image, &file)?;
            cfsdisk::overwrite(&d.fs_image, at, b"corrupted by qemu-harness\n")?;
            let extra = format!("{OURS} {CFS} ktest.eio=/{TAMPER_FILE}");
            r.expect_ok_initrd(&d, &initrd, "B", &extra, "corrupted", &[])?;
            Ok(())
        }),
        ("13c composefs signed", |r| {
            let (base, d) = verity_disk(r)?;
            let initrd = signed_initramfs(r, &base, 1)?;
            let d = r.disk(&d)?;
            let extra = format!("{OURS} {CFS} ktest.booted=composefs.signed={KEY_DST}");
            r.expect_ok_initrd(&d, &initrd, "B", &extra, "signed", &[])?;
            Ok(())
        }),
        ("13d failure: composefs signed, wrong key", |r| {
            // Both commits are signed with key 1; the image trusts key 2.
            let (base, d) = verity_disk(r)?;
            let initrd = signed_initramfs(r, &base, 2)?;
            let d = r.disk(&d)?;
            let append = r.lab.cmdline(&d, Mode::Ours, "B", "");
            r.expect_failure(
                &d,
                Some(initrd),
                &append,
                "wrong-key",
                &["signed composefs", "matches"],
            )?;
            Ok(())
        }),
        ("13e failure: composefs signed, no .commitmeta", |r| {
            let (base, d) = verity_disk(r)?;
            let initrd = signed_initramfs(r, &base, 1)?;
            let d = r.disk(&d)?;
            let c = d.get("COMMIT_B").to_string();
            debugfs_w(
                &d,
                &[format!(
                    "rm /ostree/repo/objects/{}/{}.commitmeta",
                    &c[..2],
                    &c[2..]
                )],
            )?;
            let append = r.lab.cmdline(&d, Mode::Ours, "B", "");
            r.expect_failure(&d, Some(initrd), &append, "no-commitmeta", &[".commitmeta"])?;
            Ok(())
        }),
        (
            "13f failure: composefs signed, image digest mismatch",
            |r| {
                // B's image replaced by A's (a hard link, so it keeps its
                // fs-verity): B's signed commit names another digest.
                let (base, d) = verity_disk(r)?;
                let initrd = signed_initramfs(r, &base, 1)?;
                let d = r.disk(&d)?;
                let (a, b) = (
                    format!("/{}/.ostree.cfs", d.deploy_dir("A")),
                    format!("/{}/.ostree.cfs", d.deploy_dir("B")),
                );
                debugfs_w(
                    &d,
                    &[
                        format!("rm {b}"),
                        format!("ln {a} {b}"),
                        format!("sif {a} links_count 2"),
                    ],
                )?;
                let append = r.lab.cmdline(&d, Mode::Ours, "B", "");
                r.expect_failure(
                    &d,
                    Some(initrd),
                    &append,
                    "digest-mismatch",
                    &["fs-verity digest"],
                )?;
                Ok(())
            },
        ),
    ]
}

/// The composefs disk with fs-verity enabled: made by the setup boot the
/// first time (counted as a boot of the scenario that needed it), reused
/// afterwards while the disk's inputs are unchanged.
fn verity_disk(r: &mut Run) -> Result<(CfsDisk, Disk)> {
    let base = cfsdisk::ensure(&r.lab.kernel)?;
    let setup = VeritySetup::for_base(&base);
    if !setup.done() {
        // Without composefs (the lab's image has no prepare-root.conf): the
        // deployment's checkout boots, and ktest enables fs-verity on the
        // objects (hard links of its files) and on both images.
        let d = r.disk(&base.disk)?;
        let before = r.r.problems.len();
        let extra = format!("{OURS} ktest.sysroot=rw {}", VeritySetup::ktest_args(&base));
        r.expect_ok(&d, Mode::Ours, "B", &extra, "verity-setup")?;
        if r.r.problems.len() > before {
            bail!("the fs-verity setup boot failed");
        }
        setup.keep(&d.fs_image, &base)?;
    }
    let d = setup.disk(&base);
    Ok((base, d))
}

fn signed_initramfs(r: &Run, base: &CfsDisk, key: u32) -> Result<PathBuf> {
    let k = if key == 1 { &base.key1 } else { &base.key2 };
    let (img, _) = cfsdisk::initramfs(
        &r.lab.kernel,
        &format!("cfs-signed-key{key}"),
        "[composefs]\nenabled = signed\n",
        Some(k),
    )?;
    Ok(img)
}

/// Write requests against the disk's ext4 image (`debugfs -w`); the
/// journal replayed first. Any message but the banner is an error.
fn debugfs_w(d: &Disk, requests: &[String]) -> Result<()> {
    disk::replay_journal(&d.fs_image)?;
    for q in requests {
        let out = Command::new("debugfs")
            .arg("-w")
            .arg("-R")
            .arg(q)
            .arg(&d.fs_image)
            .output()?;
        let err = String::from_utf8_lossy(&out.stderr);
        let bad: Vec<&str> = err
            .lines()
            .filter(|l| !l.starts_with("debugfs ") && !l.trim().is_empty())
            .collect();
        if !out.status.success() || !bad.is_empty() {
            bail!("debugfs -w -R {q:?}: {}", bad.join("; "));
        }
    }
    Ok(())
}
