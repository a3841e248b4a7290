//! One boot of a VM: `qemu-system-x86_64` with the disk as NVMe, the serial
//! console captured to a log file (and echoed when asked), a hard timeout,
//! and the KTAP report of the guest agent parsed out of the console.
//!
//! The VM ends by itself: ktest powers it off, our `/init` powers it off on
//! failure with `rd.emergency=poweroff`, and a kernel panic reboots it
//! (`panic=-1`), which `-no-reboot` turns into an exit. The timeout is for
//! everything else (a hang), and is reported as such.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::util;

/// How much of the console to copy to the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    Nothing,
    Everything,
    /// ktest's lines and the messages of the tools under test.
    Interesting,
    /// For the demo: ktest's results and our tool's own console lines.
    Story,
}

/// A late root device: the disk is attached through the QEMU monitor once the
/// console shows `after` (or after `fallback` without it), plus `delay`.
#[derive(Debug, Clone)]
pub struct Hotplug {
    pub after: String,
    pub delay: Duration,
    pub fallback: Duration,
}

/// How the disk is attached: NVMe where the kernel has the driver built in
/// (the cloud kernels: no module needed for the root), virtio-blk over PCI
/// otherwise (Debian's generic arm64 kernel, whose initramfs loads it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bus {
    Nvme,
    VirtioBlk,
}

impl Bus {
    /// The `-device` of the first disk (drive `d0`).
    fn device(self) -> &'static str {
        match self {
            Bus::Nvme => "nvme,serial=ktest0,drive=d0",
            Bus::VirtioBlk => "virtio-blk-pci,drive=d0",
        }
    }
}

/// Everything one boot needs.
#[derive(Debug, Clone)]
pub struct Spec {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub disk: PathBuf,
    /// More disks, attached read-only after `disk` (each on its own NVMe
    /// controller, so the guest sees them as nvme1n1, nvme2n1...).
    pub twins: Vec<PathBuf>,
    pub append: String,
    pub timeout: Duration,
    pub log: PathBuf,
    pub echo: Echo,
    pub hotplug: Option<Hotplug>,
    pub accel: String,
    pub bus: Bus,
}

/// A kernel prints its first console line well within a second of TCG time;
/// a QEMU that stays silent this long is stuck (seen rarely under TCG) and is
/// killed, so the caller can retry instead of waiting for the full timeout.
pub const SILENT_LIMIT: Duration = Duration::from_secs(20);

/// One KTAP result line.
#[derive(Debug, Clone)]
pub struct TestLine {
    pub ok: bool,
    pub number: usize,
    pub name: String,
    pub note: String,
}

/// What the guest reported.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub console: String,
    pub plan: Option<usize>,
    pub tests: Vec<TestLine>,
    /// `# ktest done` seen: the agent ran to the end.
    pub done: bool,
    pub kernel_to_init_ms: Option<u64>,
    pub initramfs_ms: Option<u64>,
    pub timed_out: bool,
    /// QEMU printed nothing at all within [`SILENT_LIMIT`] (killed; see [`boot`]).
    pub silent: bool,
    /// The emulated NVMe disk stopped completing commands (killed at once).
    pub nvme_hang: bool,
    pub kernel_panic: bool,
    pub powered_off: bool,
    pub wall: Duration,
}

impl Outcome {
    /// Every planned result present and `ok`, the agent finished, no panic.
    pub fn all_ok(&self) -> bool {
        self.problems().is_empty()
    }

    /// Why this boot does not count as a pass (empty when it does).
    pub fn problems(&self) -> Vec<String> {
        let mut p = vec![];
        if self.nvme_hang {
            p.push(
                "the emulated NVMe disk stopped answering (a QEMU hiccup, 3 times in a row)"
                    .to_string(),
            );
        } else if self.timed_out {
            p.push("timed out".to_string());
        }
        if self.kernel_panic {
            p.push("kernel panic".to_string());
        }
        match self.plan {
            None => p.push("no KTAP plan from ktest (the real init never ran?)".to_string()),
            Some(n) if n != self.tests.len() => {
                p.push(format!("plan 1..{n} but {} results", self.tests.len()))
            }
            _ => {}
        }
        for t in self.tests.iter().filter(|t| !t.ok) {
            p.push(format!("not ok {} - {} {}", t.number, t.name, t.note));
        }
        if self.plan.is_some() && !self.done {
            p.push("ktest did not finish".to_string());
        }
        p
    }
}

/// Parse ktest's KTAP out of a console log (kernel messages around it are ignored).
pub fn parse_console(console: &str, o: &mut Outcome) {
    for raw in console.lines() {
        let line = raw.trim_end_matches('\r').trim_start();
        if let Some(n) = line.strip_prefix("1..") {
            o.plan = n.trim().parse().ok();
        } else if let Some(rest) = line.strip_prefix("# time kernel-to-init-ms=") {
            o.kernel_to_init_ms = rest.trim().parse().ok();
        } else if let Some(rest) = line.strip_prefix("# time initramfs-ms=") {
            o.initramfs_ms = rest.trim().parse().ok();
        } else if line.starts_with("# ktest done") {
            o.done = true;
        } else if let Some(t) = parse_result(line) {
            o.tests.push(t);
        }
        if line.contains("Kernel panic") {
            o.kernel_panic = true;
        }
        if line.contains("reboot: Power down") {
            o.powered_off = true;
        }
    }
}

fn parse_result(line: &str) -> Option<TestLine> {
    let (ok, rest) = if let Some(r) = line.strip_prefix("not ok ") {
        (false, r)
    } else {
        (true, line.strip_prefix("ok ")?)
    };
    let (num, rest) = rest.split_once(" - ")?;
    let number = num.trim().parse().ok()?;
    let (name, note) = match rest.split_once(" # ") {
        Some((n, d)) => (n, d),
        None => (rest, ""),
    };
    Some(TestLine {
        ok,
        number,
        name: name.trim().to_string(),
        note: note.trim().to_string(),
    })
}

fn interesting(line: &str) -> bool {
    let l = line.trim_start();
    l.starts_with("ok ")
        || l.starts_with("not ok ")
        || l.starts_with("# ")
        || l.starts_with("KTAP")
        || line.contains("ostree-prepare-root")
        || line.contains("reference-init")
        || line.contains("Kernel panic")
}

/// Result lines and our tool's direct console lines (not their `/dev/kmsg` echo).
fn story(line: &str) -> bool {
    let l = line.trim_start();
    l.starts_with("ok ") || l.starts_with("not ok ") || l.starts_with("ostree-prepare-root:")
}

/// Whether KVM works here: a 10-second boot of the kernel to its panic
/// (no root). It aborts or hangs on some hosts, so never assume it works.
/// The answer is cached in `target/qemu/accel`; `KTEST_ACCEL` overrides.
pub fn accel(kernel: &Path) -> String {
    if let Ok(a) = std::env::var("KTEST_ACCEL") {
        return a;
    }
    if !crate::arch::current().kvm {
        return "tcg".into();
    }
    let cache = util::work_dir().join("accel");
    if let Ok(a) = fs::read_to_string(&cache) {
        return a.trim().to_string();
    }
    let works = Path::new("/dev/kvm").exists() && {
        let spec = Spec {
            kernel: kernel.to_path_buf(),
            initrd: None,
            disk: PathBuf::new(),
            twins: Vec::new(),
            append: "console=ttyS0 panic=-1 root=/dev/nonexistent".into(),
            timeout: Duration::from_secs(10),
            log: util::work_dir().join("logs/kvm-probe.log"),
            echo: Echo::Nothing,
            hotplug: None,
            accel: "kvm".into(),
            bus: Bus::Nvme,
        };
        matches!(boot(&spec), Ok(o) if o.kernel_panic && !o.timed_out)
    };
    let a = if works { "kvm" } else { "tcg" };
    let _ = fs::create_dir_all(util::work_dir());
    let _ = fs::write(&cache, a);
    a.to_string()
}

fn monitor(sock: &Path, commands: &[String]) -> Result<()> {
    let mut s =
        UnixStream::connect(sock).with_context(|| format!("QEMU monitor {}", sock.display()))?;
    for c in commands {
        s.write_all(format!("{c}\n").as_bytes())?;
    }
    std::thread::sleep(Duration::from_millis(300));
    Ok(())
}

/// The guest's NVMe command timeout, in seconds (the kernel's default is 30):
/// when the emulated disk stops answering (see `Lab::boot_kernel`), the guest
/// says so after this long and the boot is retried sooner. A healthy command
/// completes in well under a millisecond, even under TCG.
const NVME_IO_TIMEOUT_S: u32 = 10;

/// `append` plus `nvme_core.io_timeout=`, unless it sets one itself.
fn with_nvme_timeout(append: &str) -> String {
    if append.contains("nvme_core.io_timeout=") {
        append.to_string()
    } else {
        format!("{append} nvme_core.io_timeout={NVME_IO_TIMEOUT_S}")
    }
}

/// Boot once and collect what the guest said.
pub fn boot(spec: &Spec) -> Result<Outcome> {
    if let Some(d) = spec.log.parent() {
        fs::create_dir_all(d)?;
    }
    // A socket path must fit in 108 bytes: not beside the log, whose path
    // grows with the checkout's and the scenario's names.
    static BOOTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = BOOTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let sock = std::env::temp_dir().join(format!("qemu-harness-{}-{n}.mon", std::process::id()));
    let _ = fs::remove_file(&sock);
    let arch = crate::arch::current();
    let mut cmd = Command::new(arch.qemu);
    cmd.args(arch.machine)
        .args(["-accel", &spec.accel, "-m", "512", "-smp", "1"])
        // No default NIC/VGA (no option ROMs to load), serial on stdout.
        .args([
            "-nodefaults",
            "-display",
            "none",
            "-no-reboot",
            "-serial",
            "stdio",
        ])
        .arg("-monitor")
        .arg(format!("unix:{},server=on,wait=off", sock.display()))
        .arg("-kernel")
        .arg(&spec.kernel)
        .arg("-append")
        .arg(with_nvme_timeout(&spec.append));
    if let Some(i) = &spec.initrd {
        cmd.arg("-initrd").arg(i);
    }
    let drive = format!("file={},if=none,id=d0,format=raw", spec.disk.display());
    if spec.hotplug.is_none() && !spec.disk.as_os_str().is_empty() {
        cmd.args(["-drive", &drive, "-device", spec.bus.device()]);
    }
    for (i, twin) in spec.twins.iter().enumerate() {
        let n = i + 1;
        let drive = format!(
            "file={},if=none,id=d{n},format=raw,readonly=on",
            twin.display()
        );
        let device = format!("nvme,serial=ktest{n},drive=d{n}");
        cmd.args(["-drive", &drive, "-device", &device]);
    }
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!(
                "starting {} (apt-get install {})",
                arch.qemu, arch.qemu_package
            )
        })?;
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().context("qemu stdout")?;
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut buf = Vec::new();
        while r
            .read_until(b'\n', &mut buf)
            .map(|n| n > 0)
            .unwrap_or(false)
        {
            let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
            buf.clear();
        }
    });
    let mut log = fs::File::create(&spec.log)?;
    writeln!(log, "# qemu -append {}", with_nvme_timeout(&spec.append))?;
    let mut console = String::new();
    let mut outcome = Outcome::default();
    let mut plug_at: Option<Instant> = None;
    let mut plugged = spec.hotplug.is_none();
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => {
                log.write_all(line.as_bytes())?;
                match spec.echo {
                    Echo::Everything => print!("{line}"),
                    Echo::Interesting if interesting(&line) => print!("    | {line}"),
                    Echo::Story if story(&line) => print!("    | {line}"),
                    _ => {}
                }
                if let Some(h) = spec.hotplug.as_ref().filter(|_| plug_at.is_none()) {
                    if line.contains(&h.after) {
                        plug_at = Some(Instant::now() + h.delay);
                    }
                }
                console.push_str(&line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if let Some(h) = spec.hotplug.as_ref().filter(|_| !plugged) {
            let due = plug_at.unwrap_or(started + h.fallback);
            if Instant::now() >= due {
                plugged = true;
                monitor(
                    &sock,
                    &[
                        format!("drive_add 0 {drive}"),
                        "device_add nvme,id=n0,serial=ktest0,drive=d0".into(),
                    ],
                )?;
                writeln!(
                    log,
                    "# harness: hot-plugged the disk after {:?}",
                    started.elapsed()
                )?;
            }
        }
        if console.is_empty() && started.elapsed() > SILENT_LIMIT {
            outcome.silent = true;
            outcome.timed_out = true;
            let _ = child.kill();
            break;
        }
        // The emulated NVMe lost a completion (see Lab::boot_kernel): the
        // guest will only crawl on, one controller reset per command.
        if console.contains("nvme nvme0: I/O") && console.contains("timeout, aborting") {
            outcome.nvme_hang = true;
            outcome.timed_out = true;
            let _ = child.kill();
            break;
        }
        if started.elapsed() > spec.timeout {
            outcome.timed_out = true;
            let _ = child.kill();
            break;
        }
    }
    let status = child.wait()?;
    let _ = reader.join();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    if !stderr.trim().is_empty() {
        writeln!(log, "# qemu stderr: {}", stderr.trim())?;
    }
    writeln!(log, "# qemu {status} after {:?}", started.elapsed())?;
    let _ = fs::remove_file(&sock);
    outcome.wall = started.elapsed();
    parse_console(&console, &mut outcome);
    outcome.console = console;
    if !status.success() && !outcome.timed_out && !stderr.is_empty() {
        outcome
            .console
            .push_str(&format!("qemu: {}\n", stderr.trim()));
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ktap_among_kernel_messages() {
        let log = "[    1.0] Run /init as init process\r\nKTAP version 1\r\n# time kernel-to-init-ms=3120\n\
                   # time initramfs-ms=210\n1..3\nok 1 - root-is-deployment-B # got B\n\
                   not ok 2 - usr-readonly # got rw\n# write to /usr: ok\n\
                   ok 3 - run-ostree # SKIP ostree not present\n# ktest done step=x failed=1\n\
                   [    4.2] reboot: Power down\n";
        let mut o = Outcome::default();
        parse_console(log, &mut o);
        assert_eq!(o.plan, Some(3));
        assert_eq!(o.tests.len(), 3);
        assert!(!o.tests[1].ok);
        assert_eq!(o.tests[1].name, "usr-readonly");
        assert_eq!(o.tests[1].note, "got rw");
        assert_eq!(o.kernel_to_init_ms, Some(3120));
        assert_eq!(o.initramfs_ms, Some(210));
        assert!(o.done && o.powered_off && !o.kernel_panic);
        assert_eq!(
            o.problems(),
            vec!["not ok 2 - usr-readonly got rw".to_string()]
        );
    }

    #[test]
    fn nvme_timeout_is_added_once() {
        assert_eq!(
            with_nvme_timeout("console=ttyS0"),
            "console=ttyS0 nvme_core.io_timeout=10"
        );
        let own = "console=ttyS0 nvme_core.io_timeout=3";
        assert_eq!(with_nvme_timeout(own), own);
    }

    #[test]
    fn missing_results_are_failures() {
        let mut o = Outcome::default();
        parse_console("KTAP version 1\n1..2\nok 1 - a\n", &mut o);
        assert!(!o.all_ok());
        assert!(o
            .problems()
            .iter()
            .any(|p| p.contains("plan 1..2 but 1 results")));
    }
}
