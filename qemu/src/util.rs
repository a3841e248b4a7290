//! Paths, running host commands with context, small helpers.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// The workspace root (this crate's parent directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crate has a parent")
        .to_path_buf()
}

/// Downloads worth keeping across `cargo clean`: `<repo>/.cache/qemu`.
pub fn cache_dir() -> PathBuf {
    repo_root().join(".cache/qemu")
}

/// The kernel whose products [`work_dir`] holds, when not the lab's own.
static KERNEL_DIR: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Keep this run's products apart: `target/qemu/kernel-<label>/` for a kernel
/// of the matrix other than the lab's (set once, before anything is built).
pub fn set_kernel_dir(label: &str) {
    let _ = KERNEL_DIR.set(format!("kernel-{label}"));
}

/// Build products of the harness (initramfs images, disks, logs):
/// `<repo>/target/qemu`, or `<repo>/target/qemu/kernel-<label>` for another
/// kernel than the lab's (see [`set_kernel_dir`]).
pub fn work_dir() -> PathBuf {
    let d = repo_root().join("target/qemu");
    match KERNEL_DIR.get() {
        Some(k) => d.join(k),
        None => d,
    }
}

/// The console logs, as the messages name them (relative to the repository).
pub fn logs_rel() -> String {
    work_dir()
        .join("logs")
        .strip_prefix(repo_root())
        .map_or_else(|_| "target/qemu/logs".into(), |p| p.display().to_string())
}

/// A guest binary of this run's architecture, as `make build` (`make
/// ktest`) with that architecture's `TARGET=` leaves it.
fn guest_bin(name: &str) -> PathBuf {
    repo_root()
        .join("target")
        .join(crate::arch::current().rust_target)
        .join("release")
        .join(name)
}

/// Our `ostree-prepare-root`, as `make build` leaves it.
pub fn prepare_root_bin() -> PathBuf {
    guest_bin("ostree-prepare-root")
}

/// Our `ostree-prepare-root` with signature checks, as `make signed` leaves it.
pub fn prepare_root_signed_bin() -> PathBuf {
    repo_root()
        .join("target/signed")
        .join(crate::arch::current().rust_target)
        .join("release/ostree-prepare-root")
}

/// The initramfs builder, as `make mkinitramfs` (part of `make qemu-prep`) leaves it.
pub fn mkinitramfs_bin() -> PathBuf {
    repo_root().join("target/release/ostree-mkinitramfs")
}

/// `ostree-unlock`, as `make build` leaves it (installed into the test disks).
pub fn unlock_bin() -> PathBuf {
    guest_bin("ostree-unlock")
}

/// The guest agent, as `make ktest` leaves it.
pub fn ktest_bin() -> PathBuf {
    guest_bin("ktest")
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Run a command; fail with its stderr if it does not succeed.
pub fn run(cmd: &mut Command) -> Result<()> {
    output(cmd).map(|_| ())
}

/// Run a command and return its stdout; fail with its stderr if it does not succeed.
pub fn output(cmd: &mut Command) -> Result<String> {
    output_bytes(cmd).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Run a command; its standard output as bytes (an error if it fails).
pub fn output_bytes(cmd: &mut Command) -> Result<Vec<u8>> {
    let what = describe(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    Ok(out.stdout)
}

/// Whether a program is on PATH.
pub fn have(prog: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
        .unwrap_or(false)
}

/// Whether an ELF64 file has no program interpreter (`PT_INTERP`), i.e. is
/// statically linked and can run alone in an initramfs.
pub fn is_static(path: &Path) -> bool {
    let Ok(b) = std::fs::read(path) else {
        return false;
    };
    let u16_at = |o: usize| {
        b.get(o..o + 2)
            .map(|s| u16::from_le_bytes([s[0], s[1]]) as usize)
    };
    let u64_at = |o: usize| {
        b.get(o..o + 8)
            .and_then(|s| s.try_into().ok())
            .map(|a: [u8; 8]| u64::from_le_bytes(a) as usize)
    };
    if !b.starts_with(b"\x7fELF\x02") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    const PT_INTERP: u32 = 3;
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        b.get(o..o + 4)
            .is_some_and(|t| u32::from_le_bytes([t[0], t[1], t[2], t[3]]) != PT_INTERP)
    })
}

/// A fresh random UUID from the kernel.
pub fn new_uuid() -> Result<String> {
    Ok(std::fs::read_to_string("/proc/sys/kernel/random/uuid")?
        .trim()
        .to_string())
}

/// Human-readable byte count.
pub fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}
