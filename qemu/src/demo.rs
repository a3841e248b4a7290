//! `make demo`: the README's story, told by four real boots under QEMU.
//!
//! 1. the deployment boots from a two-file initramfs (`/init` + `overlay.ko`),
//!    `/usr` read-only;
//! 2. `ostree-unlock --hotfix` in the guest, a change is written to `/usr`;
//! 3. after a reboot the change is still there;
//! 4. the pristine deployment is one boot away (the kernel argument of the
//!    "(pristine)" boot entry that `--hotfix` added).
//!
//! Every claim printed is backed by a KTAP line from ktest in the guest; the
//! demo fails loudly if one is missing.

use std::time::Instant;

use anyhow::{bail, Result};

use crate::boot::Echo;
use crate::disk;
use crate::lab::{Lab, Mode};
use crate::util;

fn say(text: &str) {
    println!("\n\x1b[1m==> {text}\x1b[0m");
}

/// Boot, show the guest's own words, require every check to pass.
fn boot(lab: &Lab, d: &disk::Disk, which: &str, extra: &str, step: &str) -> Result<()> {
    let append = lab.cmdline(d, Mode::Ours, which, &format!("ktest.step={step} {extra}"));
    let o = lab.boot(d, Mode::Ours, &append, &format!("demo-{step}"), None)?;
    let problems = o.problems();
    if !problems.is_empty() {
        bail!(
            "demo boot {step} failed: {} (log: target/qemu/logs/demo-{step}.log)",
            problems.join("; ")
        );
    }
    println!(
        "    ({:.1} s of QEMU; kernel to real init {} ms, of which initramfs {} ms)",
        o.wall.as_secs_f64(),
        o.kernel_to_init_ms.unwrap_or_default(),
        o.initramfs_ms.unwrap_or_default()
    );
    Ok(())
}

pub fn run() -> Result<bool> {
    let t0 = Instant::now();
    say("Preparing: Debian's cloud kernel, our initramfs, an OSTree disk made by the real ostree CLI");
    let lab = Lab::prepare(Echo::Story, None)?;
    let d = disk::scratch_copy(&lab.disk, "demo")?;
    println!(
        "    kernel {} ({}), disk {}",
        lab.kernel.version,
        lab.accel,
        d.image.display()
    );
    let listing = crate::lab::build_ours(&lab.kernel.modules, &lab.ours)?;
    println!(
        "    initramfs {} ({}, gzip), its files:",
        lab.ours.display(),
        util::human(std::fs::metadata(&lab.ours)?.len())
    );
    for (name, size) in &listing {
        println!("      {:>10}  {name}", util::human(*size));
    }
    let reference = std::fs::metadata(lab.reference()?)?.len();
    println!(
        "    (a busybox initramfs running ostree's C tool is {})",
        util::human(reference)
    );

    say("Boot 1: /init is ostree-prepare-root; it mounts root=LABEL=osroot and switches into deployment B");
    boot(&lab, &d, "B", "ktest.exists=/run/ostree", "first-boot")?;
    println!("    -> / is deployment B, /usr is read-only, /etc and /var writable, /run/ostree-booted valid");

    say("Boot 2: in the guest, `ostree-unlock --hotfix --no-clone` (the guest has no ostree CLI to deploy a clone); /usr is now a writable overlay and the guest writes /usr/share/demo-hotfix");
    boot(
        &lab,
        &d,
        "B",
        "ktest.exists=/usr/bin/ostree-unlock ktest.run=\"ostree-unlock --hotfix --no-clone\" \
         ktest.usr=rw ktest.write=/usr/share/demo-hotfix",
        "hotfix-write",
    )?;

    say("Boot 3: reboot; ostree-prepare-root mounts the hotfix again: the change to /usr is still there");
    boot(
        &lab,
        &d,
        "B",
        "ktest.usr=rw ktest.exists=/usr/share/demo-hotfix",
        "hotfix-reboot",
    )?;
    let upper = format!("/{}/.usr-ovl-upper/share/demo-hotfix", d.deploy_dir("B"));
    let on_disk = disk::debugfs_cat(&d.fs_image, &upper)?;
    println!(
        "    on the disk, in the deployment's upper dir: {}",
        on_disk.trim()
    );
    let entries = disk::list_dir(&d.fs_image, "/boot/loader/entries").unwrap_or_default();
    let entries: Vec<&str> = entries
        .iter()
        .map(String::as_str)
        .filter(|e| e.ends_with(".conf"))
        .collect();
    println!("    boot entries: {}", entries.join(" "));

    say("Boot 4: the pristine deployment is one boot away: the \"(pristine)\" entry's ostree.prepare-root.hotfix=0");
    boot(
        &lab,
        &d,
        "B",
        "ostree.prepare-root.hotfix=0 ktest.absent=/usr/share/demo-hotfix",
        "pristine",
    )?;
    println!("    -> deployment B as shipped: /usr read-only, no hotfix file (the hotfix stays for the next boot)");

    say(&format!(
        "Done in {:.0} s. Every claim above is a KTAP `ok` from the guest; logs in target/qemu/logs/demo-*.log",
        t0.elapsed().as_secs_f64()
    ));
    Ok(true)
}
