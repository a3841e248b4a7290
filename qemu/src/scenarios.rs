//! The boot scenarios of the harness issue, each one boot or a sequence of
//! boots on its own copy of a test disk, and the summary table.
//!
//! A scenario passes only on positive evidence: every KTAP line ktest
//! planned is present and `ok`, or, for the failure scenarios, the expected
//! message is on the console, there is no kernel panic and the VM powered off.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::boot::{Echo, Hotplug, Outcome};
use crate::disk::{self, Disk};
use crate::initramfs;
use crate::kernel::{self, Kernel};
use crate::lab::{Lab, Mode};
use crate::util;

/// The summary of one scenario.
pub struct Report {
    pub name: String,
    pub boots: usize,
    pub problems: Vec<String>,
    /// From the first boot: ktest's `initramfs-ms` and `kernel-to-init-ms`.
    pub initramfs_ms: Option<u64>,
    pub to_init_ms: Option<u64>,
    pub wall: Duration,
    /// The initramfs a distro scenario built, for the size/time table.
    pub initrd: Option<std::path::PathBuf>,
}

/// A scenario in progress: counts boots, collects problems.
pub struct Run<'a> {
    pub lab: &'a Lab,
    pub r: Report,
}

impl<'a> Run<'a> {
    fn new(lab: &'a Lab, name: &str) -> Run<'a> {
        Run {
            lab,
            r: Report {
                name: name.to_string(),
                boots: 0,
                problems: vec![],
                initramfs_ms: None,
                to_init_ms: None,
                wall: Duration::ZERO,
                initrd: None,
            },
        }
    }

    fn slug(&self) -> String {
        self.r
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect::<String>()
            .split('-')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("-")
    }

    /// A private copy of `disk` for this scenario.
    pub fn disk(&self, base: &Disk) -> Result<Disk> {
        disk::scratch_copy(base, &self.slug())
    }

    pub fn note(&mut self, what: impl Into<String>) {
        self.r.problems.push(what.into());
    }

    /// Record a host-side assertion.
    pub fn check(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.note(what);
        }
    }

    fn record(&mut self, step: &str, o: &Outcome) {
        self.r.boots += 1;
        self.r.wall += o.wall;
        if self.r.boots == 1 {
            self.r.initramfs_ms = o.initramfs_ms;
            self.r.to_init_ms = o.kernel_to_init_ms;
        }
        let _ = step;
    }

    fn log_name(&self, step: &str) -> String {
        format!("{}-{}-{step}", self.slug(), self.r.boots + 1)
    }

    /// Boot and require every ktest check to pass.
    pub fn expect_ok(
        &mut self,
        disk: &Disk,
        mode: Mode,
        which: &str,
        extra: &str,
        step: &str,
    ) -> Result<Outcome> {
        self.expect_ok_with(disk, mode, which, extra, step, None)
    }

    pub fn expect_ok_with(
        &mut self,
        disk: &Disk,
        mode: Mode,
        which: &str,
        extra: &str,
        step: &str,
        hotplug: Option<Hotplug>,
    ) -> Result<Outcome> {
        let append = self
            .lab
            .cmdline(disk, mode, which, &format!("ktest.step={step} {extra}"));
        let log = self.log_name(step);
        let o = self.lab.boot(disk, mode, &append, &log, hotplug)?;
        self.record(step, &o);
        for p in o.problems() {
            self.note(format!(
                "boot {} ({step}): {p} [target/qemu/logs/{log}.log]",
                self.r.boots
            ));
        }
        Ok(o)
    }

    /// Boot with `initrd` (an image a distro tool built) and the command line
    /// of our initramfs mode, and require every ktest check to pass except
    /// those named in `expect_not_ok`, which must be reported and `not ok`
    /// (a state this boot must show, e.g. `/var` left to ostree's generator).
    pub fn expect_ok_initrd(
        &mut self,
        disk: &Disk,
        initrd: &std::path::Path,
        which: &str,
        extra: &str,
        step: &str,
        expect_not_ok: &[&str],
    ) -> Result<Outcome> {
        let kernel = &self.lab.kernel;
        self.expect_ok_initrd_on(kernel, disk, initrd, which, extra, step, expect_not_ok)
    }

    /// [`Run::expect_ok_initrd`] with another kernel than the lab's.
    #[allow(clippy::too_many_arguments)]
    pub fn expect_ok_initrd_on(
        &mut self,
        kernel: &Kernel,
        disk: &Disk,
        initrd: &std::path::Path,
        which: &str,
        extra: &str,
        step: &str,
        expect_not_ok: &[&str],
    ) -> Result<Outcome> {
        let append = self.lab.cmdline(
            disk,
            Mode::Ours,
            which,
            &format!("ktest.step={step} {extra}"),
        );
        let log = self.log_name(step);
        let o = self.lab.boot_kernel(
            kernel,
            disk,
            Some(initrd.to_path_buf()),
            &append,
            &log,
            None,
        )?;
        self.record(step, &o);
        let at = format!("boot {} ({step})", self.r.boots);
        let expected = |p: &str| {
            o.tests.iter().any(|t| {
                !t.ok
                    && expect_not_ok.contains(&t.name.as_str())
                    && p.starts_with(&format!("not ok {} - {} ", t.number, t.name))
            })
        };
        for p in o.problems() {
            if !expected(&p) {
                self.note(format!("{at}: {p} [target/qemu/logs/{log}.log]"));
            }
        }
        for name in expect_not_ok {
            self.check(
                o.tests.iter().any(|t| t.name == *name && !t.ok),
                format!("{at}: ktest did not report {name} as not ok [target/qemu/logs/{log}.log]"),
            );
        }
        Ok(o)
    }

    /// Boot and require a clean failure: `needles` on the console in lines of
    /// our tool, no kernel panic, no real init, powered off.
    pub fn expect_failure(
        &mut self,
        disk: &Disk,
        initrd: Option<std::path::PathBuf>,
        append: &str,
        step: &str,
        needles: &[&str],
    ) -> Result<Outcome> {
        let log = self.log_name(step);
        let o = self
            .lab
            .boot_kernel(&self.lab.kernel, disk, initrd, append, &log, None)?;
        self.record(step, &o);
        let at = format!("boot {} ({step})", self.r.boots);
        let ours: Vec<&str> = o
            .console
            .lines()
            .filter(|l| l.contains("ostree-prepare-root"))
            .collect();
        for n in needles {
            self.check(
                ours.iter().any(|l| l.contains(n)),
                format!("{at}: no ostree-prepare-root message mentioning {n:?} [target/qemu/logs/{log}.log]"),
            );
        }
        self.check(!o.kernel_panic, format!("{at}: kernel panic"));
        self.check(!o.timed_out, format!("{at}: timed out (no power-off)"));
        self.check(
            o.powered_off,
            format!("{at}: the VM was not powered off (rd.emergency=poweroff)"),
        );
        self.check(
            o.plan.is_none(),
            format!("{at}: the real init ran although the boot should fail"),
        );
        Ok(o)
    }
}

/// Path of a file inside deployment `which`, as seen on the physical root.
pub fn in_deploy(disk: &Disk, which: &str, rel: &str) -> String {
    format!("/{}/{rel}", disk.deploy_dir(which))
}

pub fn hotfix_markers(disk: &Disk, which: &str) -> Vec<String> {
    [".usr-ovl-upper", ".usr-ovl-work"]
        .iter()
        .map(|m| in_deploy(disk, which, m))
        .collect()
}

/// Checks every boot of ours makes beyond the reference's: the `/run/ostree` markers.
pub const OURS: &str = "ktest.exists=/run/ostree";

pub type ScenarioFn = fn(&mut Run) -> Result<()>;

/// Every scenario, in the order of the issue.
pub fn all() -> Vec<(&'static str, ScenarioFn)> {
    let mut v = base();
    v.extend(crate::distro::scenarios());
    v.extend(compressed_modules());
    v
}

/// Scenario 11: modules compressed as distributions ship them.
fn compressed_modules() -> Vec<(&'static str, ScenarioFn)> {
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
    ]
}

fn base() -> Vec<(&'static str, ScenarioFn)> {
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
            let d = r.disk(&r.lab.gpt_disk)?;
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
            let run = format!(
                "{UNLOCK} ktest.run=\"ostree-unlock --hotfix\" ktest.usr=rw ktest.write={file}"
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

/// Scenario 8 needs the tool in the deployment (the disk builder puts it there).
const UNLOCK: &str = "ktest.exists=/usr/bin/ostree-unlock";

/// Scenario 5: markers on, write to `/usr`, reboot, still there (and on the
/// disk), markers off, the next boot is pristine.
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

fn ms(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn median(mut v: Vec<u64>) -> Option<u64> {
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

/// Side by side: our initramfs and the busybox + C reference, same kernel and disk.
fn comparison(lab: &Lab, rounds: usize) -> Result<Vec<String>> {
    let d = disk::scratch_copy(&lab.disk, "compare")?;
    let mut rows = vec![];
    for (mode, image) in [(Mode::Ours, &lab.ours), (Mode::Reference, &lab.reference)] {
        let (mut init, mut total) = (vec![], vec![]);
        for i in 0..rounds {
            let append = lab.cmdline(&d, mode, "B", "ktest.step=compare");
            let o = lab.boot(
                &d,
                mode,
                &append,
                &format!("compare-{}-{i}", mode.label()),
                None,
            )?;
            init.extend(o.initramfs_ms);
            total.extend(o.kernel_to_init_ms);
        }
        let gz = std::fs::metadata(image)?.len();
        rows.push(format!(
            "{:<34} {:>12} {:>14} {:>16}",
            format!(
                "{} ({})",
                mode.label(),
                image.file_name().unwrap_or_default().to_string_lossy()
            ),
            util::human(gz),
            ms(median(init)),
            ms(median(total))
        ));
    }
    Ok(rows)
}

/// Run the scenarios (those whose name contains `only`), print the table.
pub fn run_all(only: Option<&str>, verbose: bool) -> Result<bool> {
    let started = Instant::now();
    let lab = Lab::prepare(if verbose {
        Echo::Interesting
    } else {
        Echo::Nothing
    })?;
    println!(
        "qemu-harness: kernel {} ({}), {} scenarios, logs in target/qemu/logs/",
        lab.kernel.version,
        lab.accel,
        all().len()
    );
    let mut reports = vec![];
    for (name, f) in all() {
        if only.is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let mut run = Run::new(&lab, name);
        if let Err(e) = f(&mut run) {
            run.note(format!("harness error: {e:#}"));
        }
        let ok = run.r.problems.is_empty();
        println!(
            "  {:<42} {} ({} boots, {:.1}s)",
            name,
            if ok { "ok" } else { "FAIL" },
            run.r.boots,
            run.r.wall.as_secs_f64()
        );
        reports.push(run.r);
    }
    let compare = if only.is_none() {
        let rounds = std::env::var("KTEST_COMPARE_BOOTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3);
        comparison(&lab, rounds)?
    } else {
        vec![]
    };

    println!();
    println!(
        "{:<42} {:>5}  {:<6} {:>13} {:>13}",
        "scenario", "boots", "result", "initramfs ms", "to init ms"
    );
    println!("{}", "-".repeat(84));
    for r in &reports {
        println!(
            "{:<42} {:>5}  {:<6} {:>13} {:>13}",
            r.name,
            r.boots,
            if r.problems.is_empty() { "ok" } else { "FAIL" },
            ms(r.initramfs_ms),
            ms(r.to_init_ms)
        );
    }
    // The distro-built images: the first boot of their scenario.
    let distro: Vec<String> = reports
        .iter()
        .filter_map(|r| {
            let img = r.initrd.as_ref()?;
            let size = std::fs::metadata(img).ok()?.len();
            Some(format!(
                "{:<34} {:>12} {:>14} {:>16}",
                format!(
                    "{} ({})",
                    img.file_name().unwrap_or_default().to_string_lossy(),
                    r.name.split_whitespace().next().unwrap_or_default()
                ),
                util::human(size),
                ms(r.initramfs_ms),
                ms(r.to_init_ms)
            ))
        })
        .collect();
    if !compare.is_empty() || !distro.is_empty() {
        println!();
        println!(
            "{:<34} {:>12} {:>14} {:>16}",
            "initramfs (same kernel and disk)", "size (gzip)", "initramfs ms", "kernel→init ms"
        );
        println!("{}", "-".repeat(79));
        for row in compare.iter().chain(&distro) {
            println!("{row}");
        }
    }
    if !compare.is_empty() {
        println!(
            "(medians of {} boots each, TCG; times from ktest's RD_TIMESTAMP and /proc/uptime)",
            {
                std::env::var("KTEST_COMPARE_BOOTS")
                    .ok()
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(3)
            }
        );
    }
    if !distro.is_empty() {
        println!(
            "(distro-built images, by scenario: one boot each; dracut's systemd passes no \
             RD_TIMESTAMP to a non-systemd init, hence no initramfs ms)"
        );
    }
    let failed: Vec<&Report> = reports.iter().filter(|r| !r.problems.is_empty()).collect();
    if !failed.is_empty() {
        println!();
        for r in &failed {
            println!("FAIL {}", r.name);
            for p in &r.problems {
                println!("     {p}");
            }
        }
    }
    println!();
    println!("total {:.0}s", started.elapsed().as_secs_f64());
    println!(
        "{} passed, {} failed",
        reports.len() - failed.len(),
        failed.len()
    );
    Ok(failed.is_empty())
}
