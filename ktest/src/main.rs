//! ktest: the guest agent of the QEMU boot tests.
//!
//! Installed as a test deployment's `/sbin/init`, it runs as PID 1 right after
//! `ostree-prepare-root` switched into the deployment. It reads what to check
//! from the `ktest.*` kernel arguments, checks the system it finds, prints one
//! KTAP result per check on the console (the VM's serial port), and powers the
//! VM off. The host asserts on these lines, never on "no error printed".
//!
//! As PID 1 it must never exit (the kernel would panic, which would hide what
//! went wrong): any internal error becomes a `not ok` line, then power-off.
//! Run as any other PID (on a developer's machine) it prints and exits.

mod checks;
mod cmdline;
mod gvariant;
mod sys;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;

/// Where the report goes: `/dev/console` (the serial port), else stdout.
static OUT: Mutex<Option<File>> = Mutex::new(None);

/// Print one line to the console in a single `write` (so kernel messages
/// cannot land in the middle of it).
fn say(line: &str) {
    let mut buf = String::with_capacity(line.len() + 1);
    buf.push_str(line);
    buf.push('\n');
    let mut out = OUT.lock().unwrap_or_else(|e| e.into_inner());
    match out.as_mut() {
        Some(f) => {
            let _ = f.write_all(buf.as_bytes());
        }
        None => {
            let _ = std::io::stdout().write_all(buf.as_bytes());
        }
    }
}

fn is_pid1() -> bool {
    std::process::id() == 1
}

/// End of the run: power off as PID 1, exit otherwise.
fn finish(code: i32) -> ! {
    if is_pid1() {
        sys::sync_and_power_off()
    }
    std::process::exit(code)
}

/// Whether `path` is a mount point, from the mount table.
fn is_mount_point(path: &str) -> bool {
    fs::read_to_string("/proc/self/mountinfo")
        .map(|t| t.lines().any(|l| l.split(' ').nth(4) == Some(path)))
        .unwrap_or(false)
}

/// Mount the API filesystems this agent needs, only where missing: the
/// `/run` prepared by the initramfs (with its markers) must stay as it is.
fn setup(notes: &mut Vec<String>) {
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    let mut mount = |ty: &str, at: &str, f| match sys::mount_fs(ty, at, f) {
        Ok(()) => notes.push(format!("mounted {ty} on {at}")),
        Err(e) => notes.push(format!("mount {ty} on {at}: {e}")),
    };
    if !Path::new("/proc/self").exists() {
        mount("proc", "/proc", flags);
    }
    if !Path::new("/sys/kernel").exists() {
        mount("sysfs", "/sys", flags);
    }
    if !Path::new("/dev/console").exists() {
        mount("devtmpfs", "/dev", libc::MS_NOSUID);
    }
    if !is_mount_point("/run") {
        mount("tmpfs", "/run", libc::MS_NOSUID | libc::MS_NODEV);
    }
}

fn open_console() {
    let f = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open("/dev/console");
    if let Ok(f) = f {
        *OUT.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
    }
}

/// Seconds since the kernel started, from `/proc/uptime`, in milliseconds.
fn uptime_ms() -> Option<u64> {
    let t = fs::read_to_string("/proc/uptime").ok()?;
    let secs: f64 = t.split_whitespace().next()?.parse().ok()?;
    Some((secs * 1000.0) as u64)
}

/// Time since the initramfs started, from `RD_TIMESTAMP="<realtime µs> <monotonic µs>"`.
fn initramfs_ms(now_us: u64) -> Option<u64> {
    let v = std::env::var("RD_TIMESTAMP").ok()?;
    let mono: u64 = v.split_whitespace().nth(1)?.parse().ok()?;
    Some(now_us.saturating_sub(mono) / 1000)
}

fn main() {
    let start_us = sys::monotonic_us();
    std::panic::set_hook(Box::new(|info| {
        say(&format!("not ok 999 - ktest-internal-error # {info}"));
        say("# ktest: internal error, powering off");
        finish(1)
    }));
    let mut notes = Vec::new();
    if is_pid1() {
        setup(&mut notes);
    }
    let kernel_ms = uptime_ms();
    if is_pid1() {
        open_console();
    }

    say("KTAP version 1");
    let line = fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let args = cmdline::Args::parse(&line);
    say(&format!(
        "# ktest step={} pid={}",
        args.step,
        std::process::id()
    ));
    for n in &notes {
        say(&format!("# ktest setup: {n}"));
    }
    if let Some(ms) = kernel_ms {
        say(&format!("# time kernel-to-init-ms={ms}"));
    }
    if let Some(ms) = initramfs_ms(start_us) {
        say(&format!("# time initramfs-ms={ms}"));
    }

    let plan = checks::plan(&args);
    say(&format!("1..{}", plan.len()));
    let mut failed = 0;
    for (i, c) in plan.iter().enumerate() {
        let o = (c.run)();
        let note = if o.note.is_empty() {
            String::new()
        } else {
            format!(" # {}", o.note)
        };
        say(&format!(
            "{}ok {} - {}{note}",
            if o.ok { "" } else { "not " },
            i + 1,
            c.name
        ));
        for d in &o.diag {
            say(&format!("# {d}"));
        }
        failed += usize::from(!o.ok);
    }
    if args.mounts {
        for l in fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
        {
            say(&format!("# mount: {l}"));
        }
    }
    say(&format!("# ktest done step={} failed={failed}", args.step));
    finish(i32::from(failed > 0))
}
