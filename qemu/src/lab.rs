//! The lab: everything a boot needs, built once per run (kernel, both
//! initramfs images, base disks), and the kernel command lines of each mode.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use mkinitramfs::compress::Compress;

use crate::boot::{self, Echo, Hotplug, Outcome, Spec};
use crate::disk::{self, Disk};
use crate::initramfs;
use crate::kernel::{self, Kernel};
use crate::util;

/// How many times a boot that QEMU's emulation spoiled is tried again (see
/// [`Lab::boot_kernel`]). At the worst rate seen, 1 boot in 25, a boot fails
/// this way (the first attempt and every retry spoiled) once in 390,000.
const RETRIES: u32 = 3;

/// One TCG boot takes ~6 s here; a hang is declared after this.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(90);

pub struct Lab {
    pub kernel: Kernel,
    pub accel: String,
    /// Our initramfs: `/init` = ostree-prepare-root, plus overlay.ko.
    pub ours: PathBuf,
    /// busybox + ostree's C ostree-prepare-root, built on first use ([`Lab::reference`]).
    reference: std::cell::OnceCell<PathBuf>,
    pub disk: Disk,
    /// The GPT disk, built on first use ([`Lab::gpt_disk`]): a run of the
    /// subset needs neither it nor the reference image.
    gpt_disk: std::cell::OnceCell<Disk>,
    pub echo: Echo,
}

/// How the kernel reaches the deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Our initramfs; `/init` is ostree-prepare-root.
    Ours,
    /// The busybox + C tool initramfs.
    Reference,
    /// No initramfs: the boot entry's `init=` (ostree-prepare-root in the deployment).
    NoInitramfs,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Mode::Ours => "initramfs",
            Mode::Reference => "reference",
            Mode::NoInitramfs => "init=",
        }
    }
}

/// Our initramfs for the kernel whose module tree is `modules_dir`: `/init`
/// and the architecture's root modules ([`crate::arch::Arch::root_modules`],
/// none on x86_64) then the [`initramfs::MODULES`], with their dependencies
/// and soft dependencies, gzip'd. Returns the files it holds.
pub fn build_ours(
    modules_dir: &std::path::Path,
    out: &std::path::Path,
) -> Result<Vec<(String, u64)>> {
    build_ours_compressed(modules_dir, out, Compress::Gzip)
}

/// [`build_ours`], compressed another way.
pub fn build_ours_compressed(
    modules_dir: &std::path::Path,
    out: &std::path::Path,
    compress: Compress,
) -> Result<Vec<(String, u64)>> {
    initramfs::build(
        &initramfs::Spec {
            init: util::prepare_root_bin(),
            modules_dir: modules_dir.to_path_buf(),
            modules: lab_modules(),
            extras: vec![],
            compress,
        },
        out,
    )
}

/// The modules our initramfs loads on the lab's kernel, in order.
pub fn lab_modules() -> Vec<String> {
    crate::arch::current()
        .root_modules
        .iter()
        .chain(initramfs::MODULES)
        .map(|s| s.to_string())
        .collect()
}

impl Lab {
    /// Build (or reuse) every artefact, for the kernel `choice` names
    /// ([`kernel::select`]: `--kernel`, `KTEST_KERNEL`, else the lab's 6.1).
    /// Another kernel's images, disks and logs go to
    /// `target/qemu/kernel-<label>/`.
    pub fn prepare(echo: Echo, choice: Option<&str>) -> Result<Lab> {
        let kernel = kernel::select(choice)?;
        if let Some(l) = kernel::dir_label(&kernel.label) {
            util::set_kernel_dir(&l);
        }
        let accel = boot::accel(&kernel.vmlinuz);
        let dir = util::work_dir().join("initramfs");
        let ours = dir.join("ours.cpio.gz");
        build_ours(&kernel.modules, &ours)?;
        let disk = disk::ensure("plain", false, &kernel)?;
        Ok(Lab {
            kernel,
            accel,
            ours,
            reference: std::cell::OnceCell::new(),
            disk,
            gpt_disk: std::cell::OnceCell::new(),
            echo,
        })
    }

    /// The reference image (busybox + the C tool), built once.
    pub fn reference(&self) -> Result<PathBuf> {
        if let Some(p) = self.reference.get() {
            return Ok(p.clone());
        }
        let modules: Vec<String> = initramfs::MODULES.iter().map(|s| s.to_string()).collect();
        let out = util::work_dir().join("initramfs").join("reference.cpio.gz");
        initramfs::build_reference(&self.kernel.modules, &modules, true, &out)?;
        Ok(self.reference.get_or_init(|| out).clone())
    }

    /// The GPT test disk, built (or reused) once.
    pub fn gpt_disk(&self) -> Result<&Disk> {
        if let Some(d) = self.gpt_disk.get() {
            return Ok(d);
        }
        let d = disk::ensure("gpt", true, &self.kernel)?;
        Ok(self.gpt_disk.get_or_init(|| d))
    }

    /// A broken initramfs of ours (scenario: missing module): its module
    /// list names `modules`, but the image holds none of them.
    pub fn initramfs_without_modules(&self, name: &str, modules: &[String]) -> Result<PathBuf> {
        let out = util::work_dir()
            .join("initramfs")
            .join(format!("{name}.cpio.gz"));
        let mut a = mkinitramfs::cpio::Archive::new();
        a.dir("/dev", 0o755);
        a.char_dev("/dev/console", 0o600, 5, 1);
        for d in ["/proc", "/sys", "/run", "/sysroot"] {
            a.dir(d, 0o755);
        }
        a.file("/init", 0o755, &std::fs::read(util::prepare_root_bin())?);
        a.file(
            initramfs::MODULE_LIST,
            0o644,
            (modules.join("\n") + "\n").as_bytes(),
        );
        std::fs::write(&out, a.finish())?;
        Ok(out)
    }

    /// An initramfs of ours with the lab's module list taken from another
    /// module tree (`lib/modules/<version>` of some kernel). Returns the image
    /// and the files it holds.
    pub fn initramfs_from(
        &self,
        modules_dir: &std::path::Path,
        name: &str,
    ) -> Result<(PathBuf, Vec<(String, u64)>)> {
        let out = util::work_dir()
            .join("initramfs")
            .join(format!("{name}.cpio.gz"));
        let files = build_ours(modules_dir, &out)?;
        Ok((out, files))
    }

    /// The kernel command line for `mode` booting deployment `which` of
    /// `disk`: `root=` by label with an initramfs (the kernel alone cannot
    /// find labels), the NVMe device without one, plus the entry's `init=`.
    pub fn cmdline(&self, disk: &Disk, mode: Mode, which: &str, extra: &str) -> String {
        let mut a = vec![
            format!("console={}", crate::arch::current().console),
            "panic=-1".to_string(),
            // The failure action of our /init; the reference powers off on failure too.
            "rd.emergency=poweroff".to_string(),
        ];
        let own_root = extra.split_whitespace().any(|w| w.starts_with("root="));
        match mode {
            _ if own_root => {}
            Mode::NoInitramfs => {
                a.push("root=/dev/nvme0n1".into());
                a.push("rootwait".into());
            }
            _ => a.push(format!("root=LABEL={}", disk::FS_LABEL)),
        }
        if mode == Mode::NoInitramfs {
            let init = disk.get(&format!("INIT_{which}"));
            a.push(if init.is_empty() {
                // libostree writes init= for initramfs-less deployments; if it did
                // not, point at the same binary ourselves.
                format!(
                    "init={}/usr/lib/ostree/ostree-prepare-root",
                    disk.ostree_arg(which)
                )
            } else {
                format!("init={init}")
            });
        }
        a.push(format!("ostree={}", disk.ostree_arg(which)));
        if !extra.split_whitespace().any(|w| w == "ro") {
            a.push("rw".into());
        }
        a.push(format!("ktest.deployment={which}"));
        a.push(extra.to_string());
        a.join(" ").trim().to_string()
    }

    /// Boot `disk` once.
    pub fn boot(
        &self,
        disk: &Disk,
        mode: Mode,
        append: &str,
        log: &str,
        hotplug: Option<Hotplug>,
    ) -> Result<Outcome> {
        let initrd = match mode {
            Mode::Ours => Some(self.ours.clone()),
            Mode::Reference => Some(self.reference()?),
            Mode::NoInitramfs => None,
        };
        // Where our binary is the first program (our /init, or init= with no
        // initramfs), nothing of it may be left running when init starts
        // (distribution images keep processes of their own, such as
        // systemd-journald, on purpose).
        let append = match mode {
            Mode::Ours | Mode::NoInitramfs => format!("{append} ktest.alone"),
            Mode::Reference => append.to_string(),
        };
        self.boot_kernel(&self.kernel, disk, initrd, &append, log, hotplug)
    }

    /// Boot `disk` once with `kernel` and `initrd` (the lab's kernel, or
    /// another one); a boot QEMU's emulation spoiled is tried again.
    pub fn boot_kernel(
        &self,
        kernel: &Kernel,
        disk: &Disk,
        initrd: Option<PathBuf>,
        append: &str,
        log: &str,
        hotplug: Option<Hotplug>,
    ) -> Result<Outcome> {
        let mut spec = Spec {
            kernel: kernel.vmlinuz.clone(),
            initrd,
            disk: disk.image.clone(),
            twins: disk.twins.clone(),
            append: append.to_string(),
            timeout: BOOT_TIMEOUT,
            log: util::work_dir().join("logs").join(format!("{log}.log")),
            echo: self.echo,
            hotplug,
            accel: self.accel.clone(),
            bus: kernel.disk_bus(),
        };
        // Two hiccups of QEMU's emulation under TCG say nothing about the
        // code under test: a QEMU that never starts the guest (rare), and an
        // emulated NVMe disk that stops posting completions (between 1 boot
        // in 25 and 1 in 260, during the first reads of the disk: the guest
        // logs "nvme nvme0: I/O ... timeout, aborting", and after each
        // controller reset the next command hangs again). It happens to the
        // busybox reference and to the kernel's own mount of the root with
        // no initramfs too. A measured experiment ruled out the kernel's TSC
        // clocksource switch, which often falls nearby. Such a boot is
        // stopped at once and tried again, up to RETRIES times, keeping
        // every log.
        let base = spec.log.clone();
        let mut attempt = 0;
        loop {
            let o = boot::boot(&spec)?;
            if !(o.silent || o.nvme_hang) || attempt == RETRIES {
                return Ok(o);
            }
            attempt += 1;
            let what = if o.silent {
                format!("QEMU printed nothing in {:?}", boot::SILENT_LIMIT)
            } else {
                "the emulated NVMe disk stopped answering (I/O timeout)".to_string()
            };
            eprintln!("qemu-harness: {what}; retrying ({attempt} of {RETRIES})");
            spec.log = base.with_extension(format!("retry{attempt}.log"));
        }
    }
}
