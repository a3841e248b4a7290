//! What every scenario uses: [`Run`], a scenario in progress (its boots,
//! with the checks that decide it), its [`Report`], and the helpers and
//! kernel arguments the scenarios share.
//!
//! A scenario passes only on positive evidence: every KTAP line ktest
//! planned is present and `ok`, or, for the failure scenarios, the expected
//! message is on the console, there is no kernel panic and the VM powered off.

use std::time::Duration;

use anyhow::Result;

use crate::boot::{Hotplug, Outcome};
use crate::disk::{self, Disk};
use crate::kernel::Kernel;
use crate::lab::{Lab, Mode};

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
    pub fn new(lab: &'a Lab, name: &str) -> Run<'a> {
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
        self.expect_ok_append(disk, mode, &append, step, hotplug)
    }

    /// Boot with exactly the command line `append` and require every ktest
    /// check to pass.
    pub fn expect_ok_append(
        &mut self,
        disk: &Disk,
        mode: Mode,
        append: &str,
        step: &str,
        hotplug: Option<Hotplug>,
    ) -> Result<Outcome> {
        let log = self.log_name(step);
        let logs = crate::util::logs_rel();
        let o = self.lab.boot(disk, mode, append, &log, hotplug)?;
        self.record(step, &o);
        for p in o.problems() {
            self.note(format!(
                "boot {} ({step}): {p} [{logs}/{log}.log]",
                self.r.boots
            ));
        }
        Ok(o)
    }

    /// Boot `kernel` (the lab's or another) with `initrd` (or none) and
    /// exactly the command line `append`, and require every ktest check to pass.
    pub fn expect_ok_kernel(
        &mut self,
        kernel: &Kernel,
        disk: &Disk,
        initrd: Option<std::path::PathBuf>,
        append: &str,
        step: &str,
    ) -> Result<Outcome> {
        let log = self.log_name(step);
        let logs = crate::util::logs_rel();
        let o = self
            .lab
            .boot_kernel(kernel, disk, initrd, append, &log, None)?;
        self.record(step, &o);
        for p in o.problems() {
            self.note(format!(
                "boot {} ({step}): {p} [{logs}/{log}.log]",
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
        let logs = crate::util::logs_rel();
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
                self.note(format!("{at}: {p} [{logs}/{log}.log]"));
            }
        }
        for name in expect_not_ok {
            self.check(
                o.tests.iter().any(|t| t.name == *name && !t.ok),
                format!("{at}: ktest did not report {name} as not ok [{logs}/{log}.log]"),
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
        let logs = crate::util::logs_rel();
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
                format!("{at}: no ostree-prepare-root message mentioning {n:?} [{logs}/{log}.log]"),
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

/// Checks every boot of ours makes beyond the reference's: the `/run/ostree`
/// markers. (Boots of our /init also get `ktest.alone`: see `Lab::boot`.)
pub const OURS: &str = "ktest.exists=/run/ostree";

pub type ScenarioFn = fn(&mut Run) -> Result<()>;
