//! `ostree-mkinitramfs`: a minimal initramfs for an OSTree system, built on
//! the build host. The image holds `ostree-prepare-root` as `/init` (its
//! PID 1 mode does the whole early boot), `/dev/console`, the directories
//! `/init` needs, the kernel modules asked for with their dependencies and
//! soft dependencies (compressed modules kept as they are; the kernel
//! decompresses them), the list `/init` loads (`/etc/initramfs-modules`)
//! and, optionally, `prepare-root.conf`.
//!
//! - [`modtree`]: `modules.dep`, `modules.alias`, `modules.softdep`;
//!   resolution and load order as modprobe's;
//! - [`glob`]: alias patterns (`fnmatch`);
//! - [`image`]: the entries, checked inputs, the archive;
//! - [`cpio`]: the `newc` writer; [`compress`]: gzip, xz, zstd;
//! - [`cli`]: the command line.

pub mod cli;
pub mod compress;
pub mod cpio;
pub mod glob;
pub mod image;
pub mod modtree;
