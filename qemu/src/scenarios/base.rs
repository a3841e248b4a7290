//! The scenarios on the lab's own images: the reference, both PID 1 modes,
//! kernel `ro` and `sysroot.readonly`, root by UUID, PARTUUID and late
//! device, hotfix persistence, the other deployment, the failures, and
//! `ostree-unlock` in the guest.

use std::time::Duration;

use anyhow::Result;

use super::run::{hotfix_markers, in_deploy, Run, ScenarioFn, OURS};
use crate::boot::Hotplug;
use crate::disk;
use crate::lab::Mode;

pub fn base() -> Vec<(&'static str, ScenarioFn)> {
    vec![
        ("0 reference: busybox + C tool", |r| {
            let d = r.disk(&r.lab.disk)?;
            r.expect_ok(&d, Mode::Reference, "B", "ktest.sysroot=rw", "reference")?;
            Ok(())
        }),
        ("1 initramfs /init", |r| {
            let d = r.disk(&r.lab.disk)?;
            let extra = format!(
                "{OURS} ktest.exists=/run/ostree/initramfs-mount-var ktest.sysroot=rw ktest.mounts"
            );
            r.expect_ok(&d, Mode::Ours, "B", &extra, "initramfs")?;
            Ok(())
        }),
        ("2 no initramfs (init=), twice", |r| {
            let d = r.disk(&r.lab.disk)?;
            let before = disk::list_dir(&d.fs_image, "/")?;
            let deploy_before = disk::list_dir(&d.fs_image, &in_deploy(&d, "B", ""))?;
            for step in ["init-first", "init-second"] {
                r.expect_ok(
                    &d,
                    Mode::NoInitramfs,
                    "B",
                    &format!("{OURS} ktest.sysroot=rw"),
                    step,
                )?;
            }
            let after = disk::list_dir(&d.fs_image, "/")?;
            let deploy_after = disk::list_dir(&d.fs_image, &in_deploy(&d, "B", ""))?;
            r.check(
                before == after,
                format!("physical root changed: {before:?} -> {after:?}"),
            );
            r.check(
                deploy_before == deploy_after,
                format!("deployment root changed: {deploy_before:?} -> {deploy_after:?}"),
            );
            Ok(())
        }),
        ("3a kernel ro, initramfs", |r| {
            let d = r.disk(&r.lab.disk)?;
            let extra = format!("ro {OURS} ktest.sysroot=ro ktest.etc=ro ktest.var=ro");
            r.expect_ok(&d, Mode::Ours, "B", &extra, "ro-initramfs")?;
            Ok(())
        }),
        ("3b kernel ro, init=", |r| {
            let d = r.disk(&r.lab.disk)?;
            let extra = format!("ro {OURS} ktest.sysroot=ro ktest.etc=ro ktest.var=ro");
            r.expect_ok(&d, Mode::NoInitramfs, "B", &extra, "ro-init")?;
            Ok(())
        }),
        ("3c sysroot.readonly, initramfs", |r| {
            let d = r.disk(&r.lab.disk)?;
            disk::set_sysroot_readonly(&d.fs_image)?;
            let extra =
                format!("{OURS} ktest.exists=/run/ostree-sysroot-ro.stamp ktest.sysroot=ro");
            r.expect_ok(&d, Mode::Ours, "B", &extra, "sysroot-readonly")?;
            Ok(())
        }),
        ("3d sysroot.readonly, init=", |r| {
            let d = r.disk(&r.lab.disk)?;
            disk::set_sysroot_readonly(&d.fs_image)?;
            let extra =
                format!("{OURS} ktest.exists=/run/ostree-sysroot-ro.stamp ktest.sysroot=ro");
            r.expect_ok(&d, Mode::NoInitramfs, "B", &extra, "sysroot-readonly-init")?;
            Ok(())
        }),
        ("4a root=UUID=", |r| {
            let d = r.disk(&r.lab.disk)?;
            let extra = format!("root=UUID={} {OURS}", d.get("FS_UUID"));
            r.expect_ok(&d, Mode::Ours, "B", &extra, "uuid")?;
            Ok(())
        }),
        ("4b root=PARTUUID= (GPT)", |r| {
            let d = r.disk(r.lab.gpt_disk()?)?;
            let extra = format!("root=PARTUUID={} {OURS}", d.get("PARTUUID"));
            r.expect_ok(&d, Mode::Ours, "B", &extra, "partuuid")?;
            Ok(())
        }),
        ("4c late device + rootwait", |r| {
            let d = r.disk(&r.lab.disk)?;
            let plug = Hotplug {
                after: "Run /init as init process".into(),
                delay: Duration::from_millis(1500),
                fallback: Duration::from_secs(20),
            };
            let o = r.expect_ok_with(
                &d,
                Mode::Ours,
                "B",
                &format!("rootwait {OURS}"),
                "hotplug",
                Some(plug),
            )?;
            // The device must really have come after /init started.
            let init_at = o.console.find("Run /init as init process");
            let dev_at = o.console.find("nvme nvme0: pci function");
            r.check(
                matches!((init_at, dev_at), (Some(i), Some(d)) if d > i),
                "the NVMe controller did not appear after /init started",
            );
            Ok(())
        }),
        ("5a hotfix /usr persists, initramfs", |r| {
            hotfix(r, Mode::Ours, "")
        }),
        ("5b hotfix /usr persists, init= with ro", |r| {
            // No initramfs: overlayfs must come from the deployment's modules.
            let extra = "ro modules-load=overlay ktest.sysroot=ro ktest.etc=ro ktest.var=ro";
            hotfix(r, Mode::NoInitramfs, extra)
        }),
        ("6 other deployment by ostree=", |r| {
            let d = r.disk(&r.lab.disk)?;
            r.expect_ok(&d, Mode::Ours, "A", OURS, "deployment-a")?;
            r.expect_ok(&d, Mode::NoInitramfs, "A", OURS, "deployment-a-init")?;
            Ok(())
        }),
        ("7a failure: wrong ostree=", |r| {
            let d = r.disk(&r.lab.disk)?;
            let append = r
                .lab
                .cmdline(&d, Mode::Ours, "B", "")
                .replace(d.ostree_arg("B"), "/ostree/boot.0/testos/nonexistent/0");
            r.expect_failure(
                &d,
                Some(r.lab.ours.clone()),
                &append,
                "wrong-ostree",
                &["nonexistent"],
            )?;
            Ok(())
        }),
        ("7b failure: wrong ostree=, init=", |r| {
            let d = r.disk(&r.lab.disk)?;
            let append = r.lab.cmdline(&d, Mode::NoInitramfs, "B", "").replace(
                &format!("ostree={}", d.ostree_arg("B")),
                "ostree=/ostree/boot.0/testos/nonexistent/0",
            );
            r.expect_failure(&d, None, &append, "wrong-ostree-init", &["nonexistent"])?;
            Ok(())
        }),
        ("7c failure: missing root device", |r| {
            let d = r.disk(&r.lab.disk)?;
            let append = r
                .lab
                .cmdline(&d, Mode::Ours, "B", "root=LABEL=missing-root rootwait=3");
            r.expect_failure(
                &d,
                Some(r.lab.ours.clone()),
                &append,
                "missing-root",
                &["missing-root"],
            )?;
            Ok(())
        }),
        ("7e failure: two disks with the root's label", |r| {
            // A cloned disk: the same filesystem, label and UUID twice.
            // root= must pick neither, and name both.
            let mut d = r.disk(&r.lab.disk)?;
            disk::add_twin(&mut d)?;
            let label = d.get("FS_LABEL").to_string();
            let append = r
                .lab
                .cmdline(&d, Mode::Ours, "B", &format!("root=LABEL={label}"));
            let o = r.expect_failure(
                &d,
                Some(r.lab.ours.clone()),
                &append,
                "twin-label",
                &[
                    "root= matches 2 devices",
                    "choose one with root=PARTUUID= or root=/dev/",
                ],
            )?;
            // Each candidate on a line of its own, under the count.
            for dev in ["nvme0n1", "nvme1n1"] {
                let line = format!(
                    "  /dev/{dev}: TYPE=ext4 UUID={} LABEL=\"{label}\"",
                    d.get("FS_UUID")
                );
                r.check(
                    o.console.lines().filter(|l| *l == line).count() == 1,
                    format!("the candidate line {line:?} is not on the console once"),
                );
            }
            Ok(())
        }),
        ("7d failure: missing overlay module", |r| {
            let d = r.disk(&r.lab.disk)?;
            let initrd = r
                .lab
                .initramfs_without_modules("no-overlay", &["overlay".to_string()])?;
            let append = r.lab.cmdline(&d, Mode::Ours, "B", "");
            r.expect_failure(&d, Some(initrd), &append, "missing-module", &["overlay"])?;
            Ok(())
        }),
        ("8a ostree-unlock: development vanishes", |r| {
            let d = r.disk(&r.lab.disk)?;
            let file = "/usr/share/ktest-development";
            let run =
                format!("{UNLOCK} ktest.run=\"ostree-unlock\" ktest.usr=rw ktest.write={file}");
            r.expect_ok(&d, Mode::Ours, "B", &run, "unlock-development")?;
            r.expect_ok(
                &d,
                Mode::Ours,
                "B",
                &format!("ktest.absent={file}"),
                "development-reboot",
            )?;
            Ok(())
        }),
        ("8b ostree-unlock: hotfix persists, way back", |r| {
            let d = r.disk(&r.lab.disk)?;
            let file = "/usr/share/ktest-unlock-hotfix";
            // The guest has no ostree CLI: no clone (scenario 9 boots one).
            let run = format!(
                "{UNLOCK} ktest.run=\"ostree-unlock --hotfix --no-clone\" ktest.usr=rw ktest.write={file}"
            );
            r.expect_ok(&d, Mode::Ours, "B", &run, "unlock-hotfix")?;
            let kept = format!("ktest.usr=rw ktest.exists={file}");
            r.expect_ok(&d, Mode::Ours, "B", &kept, "hotfix-reboot")?;
            // The way back, for one boot: the kernel argument of the pristine entry.
            let once = format!("ostree.prepare-root.hotfix=0 ktest.absent={file}");
            r.expect_ok(&d, Mode::Ours, "B", &once, "hotfix-pristine-once")?;
            // ... and for good: --discard, then a pristine boot.
            let discard =
                format!("ktest.run=\"ostree-unlock --discard\" ktest.usr=rw ktest.exists={file}");
            r.expect_ok(&d, Mode::Ours, "B", &discard, "hotfix-discard")?;
            r.expect_ok(
                &d,
                Mode::Ours,
                "B",
                &format!("ktest.absent={file}"),
                "discarded",
            )?;
            Ok(())
        }),
        ("8c ostree-unlock: transient is read-only", |r| {
            let d = r.disk(&r.lab.disk)?;
            let name = d
                .deploy_dir("B")
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
            let flag = format!("/run/ostree/deployment-state/{name}/unlocked-transient");
            // /usr stays read-only (ktest's default expectation) with the flag set.
            let run =
                format!("{UNLOCK} ktest.run=\"ostree-unlock --transient\" ktest.exists={flag}");
            r.expect_ok(&d, Mode::Ours, "B", &run, "unlock-transient")?;
            Ok(())
        }),
    ]
}

/// The `ostree-unlock` scenarios need the tool in the deployment (the disk
/// builder puts it there).
const UNLOCK: &str = "ktest.exists=/usr/bin/ostree-unlock";

/// The hotfix scenarios: markers on, write to `/usr`, reboot, still there
/// (and on the disk), markers off, the next boot is pristine.
fn hotfix(r: &mut Run, mode: Mode, extra: &str) -> Result<()> {
    let d = r.disk(&r.lab.disk)?;
    disk::mkdirs(&d.fs_image, &hotfix_markers(&d, "B"))?;
    let file = "/usr/share/ktest-hotfix";
    r.expect_ok(
        &d,
        mode,
        "B",
        &format!("{extra} ktest.usr=rw ktest.write={file}"),
        "hotfix-write",
    )?;
    r.expect_ok(
        &d,
        mode,
        "B",
        &format!("{extra} ktest.usr=rw ktest.exists={file}"),
        "hotfix-reboot",
    )?;
    let upper = in_deploy(&d, "B", ".usr-ovl-upper/share/ktest-hotfix");
    let on_disk = disk::debugfs_cat(&d.fs_image, &upper).unwrap_or_default();
    r.check(
        on_disk.contains("written by ktest"),
        format!("{upper} not on the disk after power-off"),
    );
    disk::remove_tree(&d.fs_image, &in_deploy(&d, "B", ".usr-ovl-upper"))?;
    disk::remove_tree(&d.fs_image, &in_deploy(&d, "B", ".usr-ovl-work"))?;
    r.expect_ok(
        &d,
        mode,
        "B",
        &format!("{extra} ktest.absent={file}"),
        "pristine",
    )?;
    Ok(())
}
