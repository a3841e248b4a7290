//! The on-disk contract: every marker, path and key that `ostree-prepare-root`,
//! `ostree-unlock` and upstream ostree's tools write or read, in one place.
//!
//! Each constant says who writes it and who reads it. Upstream ostree names
//! the same things in `src/libotcore/otcore.h` and `src/libostree/`; the
//! names and formats here are exactly upstream's, so real `ostree` tools see
//! the state our tools leave, and the other way round.

#![forbid(unsafe_code)]

// ---- /run, written at every boot ----------------------------------------

/// Directory whose existence tells ostree's systemd generator and libostree
/// that this is an OSTree boot. Written by `ostree-prepare-root` (0755).
pub const RUN_OSTREE: &[u8] = b"/run/ostree";

/// Private scratch space (mode 0000). Written by `ostree-prepare-root`.
pub const RUN_OSTREE_PRIVATE: &[u8] = b"/run/ostree/.private";

/// Where `ostree-prepare-root` assembles the new root before it replaces
/// SYSROOT. Ours only; empty once the boot is done.
pub const STAGING: &[u8] = b"/run/ostree/.private/staging";

/// The boot's metadata, a GVariant `a{sv}` with the keys below. Written
/// atomically by `ostree-prepare-root`; read by libostree (`ostree admin
/// status`, deployments), `ostree-remount` and `ostree-unlock`.
pub const OSTREE_BOOTED: &[u8] = b"/run/ostree-booted";

/// Keys of [`OSTREE_BOOTED`].
pub mod booted_keys {
    /// `(tt)`: `st_dev` and `st_ino` of the booted deployment directory; how
    /// libostree and `ostree-unlock` find which deployment is booted.
    pub const BACKING_ROOT_DEVICE_INODE: &str = "backing-root-device-inode";
    /// `b`: the physical root is read-only (`sysroot.readonly`).
    pub const SYSROOT_RO: &str = "sysroot-ro";
    /// `s`: where the transient `/etc` overlay's upper directory is.
    pub const TRANSIENT_ETC: &str = "transient-etc";
    /// `b`: the root is a composefs.
    pub const COMPOSEFS: &str = "composefs";
    /// `b`: the composefs requires fs-verity of every file.
    pub const COMPOSEFS_VERITY: &str = "composefs.verity";
    /// `s`: the key file the composefs image's signed commit was checked with.
    pub const COMPOSEFS_SIGNED: &str = "composefs.signed";
    /// `b`: the root is writable, its changes in `/run` (`[root] transient`).
    pub const ROOT_TRANSIENT: &str = "root.transient";
    /// `b`: the same, mounted read-only (`[root] transient-ro`).
    pub const ROOT_TRANSIENT_RO: &str = "root.transient-ro";
}

/// Empty stamp read by `ostree-remount` up to 2023 to keep `/sysroot`
/// read-only. Written by `ostree-prepare-root` when the sysroot is read-only.
pub const SYSROOT_RO_STAMP: &[u8] = b"/run/ostree-sysroot-ro.stamp";

/// Asks the initramfs to mount `/var` (ostree's generator then does not).
/// Written by initramfs scripts or by `ostree-prepare-root` when it mounts
/// `/var` itself; read by `ostree-prepare-root` and ostree's generator.
pub const INITRAMFS_MOUNT_VAR: &[u8] = b"/run/ostree/initramfs-mount-var";

/// Upper and work directories of a transient `/etc` (on the `/run` tmpfs).
/// Written by `ostree-prepare-root`.
pub const TRANSIENT_ETC: &[u8] = b"/run/ostree/transient-etc";

/// Runtime unlock flags, `DEPLOYMENT_STATE/CSUM.SERIAL/UNLOCKED_*`: this boot
/// of the deployment is unlocked. Written by `ostree-unlock` and `ostree admin
/// unlock`; read by both and by libostree (`ostree admin status`).
pub const DEPLOYMENT_STATE: &[u8] = b"/run/ostree/deployment-state";
/// Flag file for a development unlock.
pub const UNLOCKED_DEVELOPMENT: &[u8] = b"unlocked-development";
/// Flag file for a transient unlock.
pub const UNLOCKED_TRANSIENT: &[u8] = b"unlocked-transient";

// ---- inside the sysroot, persistent ---------------------------------------

/// Hotfix overlay directories inside the deployment directory: both real
/// directories select the persistent `/usr` overlay. Written by
/// `ostree-unlock --hotfix` and `ostree admin unlock --hotfix`; read by both
/// prepare-roots.
pub const USR_OVL_UPPER: &[u8] = b".usr-ovl-upper";
pub const USR_OVL_WORK: &[u8] = b".usr-ovl-work";

/// Per-deployment data outside the deployment (ostree 2025.3+):
/// `ostree/deploy/OS/BACKING/CSUM.SERIAL/...`.
pub const BACKING: &[u8] = b"backing";
/// A development or transient unlock's overlay data (`upper`, `work` inside),
/// in the backing directory. Written by `ostree-unlock`; deleted at the next
/// boot by `ostree-prepare-root`.
pub const USR_TRANSIENT: &[u8] = b"usr-transient";
/// A discarded hotfix waiting to be deleted at the next boot (the overlay
/// may still be mounted while the discard runs). Written by
/// `ostree-unlock --discard`; deleted by `ostree-prepare-root`.
pub const HOTFIX_DISCARDED: [&[u8]; 2] = [b"hotfix-discarded-upper", b"hotfix-discarded-work"];

/// `[origin] unlocked=hotfix` in `CSUM.SERIAL.origin`: the deployment carries
/// a hotfix. Written by `ostree-unlock` and libostree; read by libostree
/// (`ostree admin status`: "Unlocked: hotfix") and `ostree-unlock --status`.
pub const ORIGIN_UNLOCKED_KEY: &str = "unlocked";

/// Our own bootlinks for pristine boot entries:
/// `ostree/deploy/OS/PRISTINE_LINKS/CSUM.SERIAL` -> `../deploy/CSUM.SERIAL`.
/// libostree's `ostree/boot.N` links are swapped to other deployments when
/// it rewrites its list; these name one deployment for good. Written by
/// `ostree-unlock --hotfix` (removed by `--discard`); read, through the
/// pristine entry's `ostree=`, by both prepare-roots (a symlink chain that
/// ends at the deployment, as they require).
pub const PRISTINE_LINKS: &[u8] = b"pristine";

/// Kernel argument `ostree.prepare-root.hotfix=0`: boot once without the
/// hotfix overlay. Written into the pristine boot entry by `ostree-unlock`;
/// read by `ostree-prepare-root`.
pub const HOTFIX_KARG: &[u8] = b"ostree.prepare-root.hotfix";

/// Prefix of the boot entry `ostree-unlock --hotfix` adds for a pristine
/// boot: `pristine-ostree-N-OS.conf`. Boot loaders read every `*.conf`;
/// libostree reads only `ostree-*.conf`, so it never sees this one (a second
/// `ostree-*` entry for a deployment would be listed twice and its options
/// copied into the next deployment's entry).
pub const PRISTINE_ENTRY_PREFIX: &str = "pristine-";
