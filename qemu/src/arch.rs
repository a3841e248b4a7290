//! The CPU architectures the harness boots, as one table: the QEMU that
//! emulates it, the machine, the console, Debian's kernel packages and
//! the Rust target of the guest binaries. The rest of the harness asks
//! [`current`] rather than testing for an architecture.
//!
//! x86_64 is the lab's (every scenario, the kernel matrix). aarch64 boots
//! `qemu-system-aarch64 -M virt` under TCG: Debian's generic kernel, whose
//! disk and filesystem drivers are modules (our initramfs loads them), and
//! its cloud kernel, which has NVMe and ext4 built in (`init=`, no initramfs).

use std::sync::OnceLock;

/// A kernel an architecture boots: how runs name it, the meta package
/// that depends on it, and the Debian suites it comes from (`None`: the
/// machine's own apt).
#[derive(Debug)]
pub struct KernelKind {
    pub label: &'static str,
    pub meta: &'static str,
    pub suites: Option<&'static [&'static str]>,
}

/// One architecture.
#[derive(Debug)]
pub struct Arch {
    /// How `--arch` names it (the Rust and QEMU name of the CPU).
    pub name: &'static str,
    /// Debian's name (`APT::Architecture`).
    pub debian: &'static str,
    /// The target the guest binaries (ostree-prepare-root, ostree-unlock,
    /// ktest) are built for.
    pub rust_target: &'static str,
    pub qemu: &'static str,
    /// The Debian package that has [`Arch::qemu`].
    pub qemu_package: &'static str,
    /// Machine and CPU arguments (none: QEMU's default PC).
    pub machine: &'static [&'static str],
    /// The serial console's device in the guest.
    pub console: &'static str,
    /// Whether KVM can run it here (only the host's own architecture).
    pub kvm: bool,
    /// The kernels `--kernel` chooses from.
    pub kernels: &'static [KernelKind],
    /// The one a run boots when none is chosen.
    pub default_kernel: &'static str,
    /// Modules the lab's kernel needs to reach the root filesystem, loaded
    /// by our initramfs before the others (none: built in).
    pub root_modules: &'static [&'static str],
}

/// Debian bookworm's kernels (6.1) for another architecture: the main
/// suite and the security updates, through a private apt state.
const BOOKWORM: &[&str] = &["bookworm", "bookworm-security"];

pub const X86_64: Arch = Arch {
    name: "x86_64",
    debian: "amd64",
    rust_target: "x86_64-unknown-linux-musl",
    qemu: "qemu-system-x86_64",
    qemu_package: "qemu-system-x86",
    machine: &[],
    console: "ttyS0",
    kvm: true,
    kernels: &[
        KernelKind {
            label: "5.10",
            meta: "linux-image-cloud-amd64",
            suites: Some(&["bullseye"]),
        },
        KernelKind {
            label: "6.1",
            meta: "linux-image-cloud-amd64",
            suites: None,
        },
        KernelKind {
            label: "6.12",
            meta: "linux-image-cloud-amd64",
            suites: Some(&["trixie"]),
        },
    ],
    default_kernel: "6.1",
    root_modules: &[],
};

pub const AARCH64: Arch = Arch {
    name: "aarch64",
    debian: "arm64",
    rust_target: "aarch64-unknown-linux-musl",
    qemu: "qemu-system-aarch64",
    qemu_package: "qemu-system-arm",
    machine: &["-M", "virt", "-cpu", "cortex-a57"],
    console: "ttyAMA0",
    kvm: false,
    kernels: &[
        KernelKind {
            label: "6.1",
            meta: "linux-image-arm64",
            suites: Some(BOOKWORM),
        },
        KernelKind {
            label: "6.1-cloud",
            meta: "linux-image-cloud-arm64",
            suites: Some(BOOKWORM),
        },
    ],
    default_kernel: "6.1",
    root_modules: &["virtio_pci", "virtio_blk", "ext4"],
};

pub const ALL: &[&Arch] = &[&X86_64, &AARCH64];

static CURRENT: OnceLock<&'static Arch> = OnceLock::new();

/// The architecture `--arch` names (`x86_64`, `aarch64`, or Debian's `amd64`, `arm64`).
pub fn parse(name: &str) -> anyhow::Result<&'static Arch> {
    ALL.iter()
        .copied()
        .find(|a| a.name == name || a.debian == name)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "unknown architecture {name:?}: say {}",
                ALL.iter().map(|a| a.name).collect::<Vec<_>>().join(" or ")
            )
        })
}

/// Choose this run's architecture (once, before anything is built).
pub fn set(arch: &'static Arch) {
    let _ = CURRENT.set(arch);
}

/// This run's architecture: x86_64 unless [`set`] chose another.
pub fn current() -> &'static Arch {
    CURRENT.get().copied().unwrap_or(&X86_64)
}

impl Arch {
    /// The host's own architecture, whose runs keep their paths as before
    /// the table (`target/qemu/`, `.cache/qemu/kernel/`).
    pub fn is_lab(&self) -> bool {
        self.name == X86_64.name
    }

    pub fn kernel(&self, label: &str) -> Option<&'static KernelKind> {
        self.kernels.iter().find(|k| k.label == label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_kernels() {
        assert_eq!(parse("arm64").unwrap().name, "aarch64");
        assert_eq!(parse("x86_64").unwrap().qemu, "qemu-system-x86_64");
        assert!(parse("riscv64").is_err());
        for a in ALL {
            assert!(!a.kernels.is_empty());
            assert!(a.rust_target.starts_with(a.name));
        }
        assert_eq!(
            AARCH64.kernel("6.1-cloud").unwrap().meta,
            "linux-image-cloud-arm64"
        );
        assert!(X86_64.kernel("6.1").unwrap().suites.is_none());
    }
}
