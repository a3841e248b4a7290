//! The kernel command line as PID 1 reads it: the root device and how to
//! mount it, what to run next, and what to do when something fails.
//! Pure: parsed from a [`Cmdline`], unit-tested without a kernel.

use otcore::cmdline::Cmdline;
use otcore::sys::MountFlags;

/// How `root=` names the root device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootSpec<'a> {
    /// `/dev/...`
    Path(&'a [u8]),
    /// Filesystem UUID (`UUID=`).
    Uuid(&'a [u8]),
    /// Filesystem label (`LABEL=`).
    Label(&'a [u8]),
    /// GPT partition GUID or MBR `SSSSSSSS-PP` (`PARTUUID=`).
    PartUuid(&'a [u8]),
    /// GPT partition name (`PARTLABEL=`).
    PartLabel(&'a [u8]),
}

impl<'a> RootSpec<'a> {
    pub fn parse(v: &'a [u8]) -> Option<RootSpec<'a>> {
        let strip = |p: &[u8]| v.strip_prefix(p).filter(|r| !r.is_empty());
        if let Some(r) = strip(b"UUID=") {
            Some(RootSpec::Uuid(r))
        } else if let Some(r) = strip(b"LABEL=") {
            Some(RootSpec::Label(r))
        } else if let Some(r) = strip(b"PARTUUID=") {
            Some(RootSpec::PartUuid(r))
        } else if let Some(r) = strip(b"PARTLABEL=") {
            Some(RootSpec::PartLabel(r))
        } else if v.starts_with(b"/dev/") && v.len() > 5 {
            Some(RootSpec::Path(v))
        } else {
            None
        }
    }
}

/// What PID 1 does when the boot cannot continue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emergency {
    /// Reboot after a pause: an unattended device gets another try, and a
    /// boot loader with boot counting can fall back to the other deployment.
    Reboot,
    PowerOff,
    Halt,
    /// Run the initramfs's shell, if it has one (else reboot).
    Shell,
}

/// Seconds to wait for the root device without `rootwait`.
pub const DEFAULT_ROOT_WAIT_S: u64 = 30;
/// Seconds to wait with a bare `rootwait` (the kernel waits forever; a device
/// that never comes must still end in a message, not a hang).
pub const ROOTWAIT_S: u64 = 300;
/// Kernel argument: seconds the whole boot may take before the emergency
/// action runs (0: no limit).
pub const BOOT_TIMEOUT_KARG: &[u8] = b"ostree.prepare-root.boot-timeout";
/// The boot's limit without [`BOOT_TIMEOUT_KARG`]: 10 minutes, or the time
/// allowed for the root device plus [`BOOT_TIMEOUT_MARGIN_S`] when longer.
pub const DEFAULT_BOOT_TIMEOUT_S: u64 = 600;
pub const BOOT_TIMEOUT_MARGIN_S: u64 = 120;
/// Seconds the failure message stays on screen before an automatic reboot.
pub const REBOOT_DELAY_S: u64 = 10;

/// Everything PID 1 takes from the kernel command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootParams<'a> {
    /// `root=` as given, and parsed.
    pub root_arg: Option<&'a [u8]>,
    pub root: Option<RootSpec<'a>>,
    /// `rootfstype=` (a comma-separated list).
    pub fstype: Option<&'a [u8]>,
    /// `rootflags=`.
    pub flags: Option<&'a [u8]>,
    /// `rw` (the kernel mounts read-only unless told `rw`; the last of `ro`/`rw` wins).
    pub rw: bool,
    /// How long to wait for the root device.
    pub wait_ms: u64,
    /// `rootdelay=`: sleep before looking for the root device.
    pub delay_ms: u64,
    /// `init=`.
    pub init: Option<&'a [u8]>,
    pub emergency: Emergency,
    /// Seconds the whole boot may take ([`BOOT_TIMEOUT_KARG`]); 0: no limit.
    pub boot_timeout_s: u64,
    /// `rd.debug`: one line per step.
    pub debug: bool,
}

/// A small decimal number (at most 9 digits), surrounding whitespace allowed.
pub fn decimal(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 9 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, d| n * 10 + (d - b'0') as u64))
}

fn seconds(v: Option<&[u8]>) -> Option<u64> {
    decimal(v?)
}

fn truthy(v: Option<&[u8]>) -> bool {
    !matches!(v, Some(b"0" | b"no" | b"false" | b"off"))
}

impl<'a> BootParams<'a> {
    pub fn parse(c: &Cmdline<'a>) -> BootParams<'a> {
        let root_arg = c.value(b"root");
        let mut rw = false;
        for p in c.params() {
            match (p.key, p.value) {
                (b"ro", None) => rw = false,
                (b"rw", None) => rw = true,
                _ => {}
            }
        }
        let wait_s = match c.get(b"rootwait") {
            None => DEFAULT_ROOT_WAIT_S,
            Some(p) if p.value.is_none() => ROOTWAIT_S,
            Some(p) => seconds(p.value).unwrap_or(ROOTWAIT_S),
        };
        let shell = c.get(b"rd.shell").is_some_and(|p| truthy(p.value));
        let emergency = match c.value(b"rd.emergency") {
            Some(b"reboot") => Emergency::Reboot,
            Some(b"poweroff") => Emergency::PowerOff,
            Some(b"halt") => Emergency::Halt,
            Some(b"shell") => Emergency::Shell,
            _ if shell => Emergency::Shell,
            _ => Emergency::Reboot,
        };
        let delay_s = seconds(c.value(b"rootdelay")).unwrap_or(0);
        let boot_timeout_s = seconds(c.value(BOOT_TIMEOUT_KARG))
            .unwrap_or(DEFAULT_BOOT_TIMEOUT_S.max(wait_s + delay_s + BOOT_TIMEOUT_MARGIN_S));
        BootParams {
            root_arg,
            root: root_arg.and_then(RootSpec::parse),
            fstype: c.value(b"rootfstype").filter(|v| !v.is_empty()),
            flags: c.value(b"rootflags").filter(|v| !v.is_empty()),
            rw,
            wait_ms: wait_s * 1000,
            delay_ms: delay_s * 1000,
            init: c.value(b"init").filter(|v| !v.is_empty()),
            emergency,
            boot_timeout_s,
            debug: c.get(b"rd.debug").is_some_and(|p| truthy(p.value)),
        }
    }
}

/// `rootflags=` split into `mount(2)` flags and filesystem data
/// (`defaults` dropped, as it means nothing to the kernel).
pub fn mount_options(flags: &[u8], data: &mut heapless::Vec<u8, 256>) -> MountFlags {
    let none = MountFlags::EMPTY;
    let mut f = none;
    for opt in flags.split(|&b| b == b',').filter(|o| !o.is_empty()) {
        let (set, clear) = match opt {
            b"defaults" => (none, none),
            b"ro" => (MountFlags::RDONLY, none),
            b"rw" => (none, MountFlags::RDONLY),
            b"nosuid" => (MountFlags::NOSUID, none),
            b"nodev" => (MountFlags::NODEV, none),
            b"noexec" => (MountFlags::NOEXEC, none),
            b"noatime" => (MountFlags::NOATIME, none),
            b"nodiratime" => (MountFlags::NODIRATIME, none),
            b"relatime" => (MountFlags::RELATIME, none),
            b"strictatime" => (MountFlags::STRICTATIME, none),
            b"sync" => (MountFlags::SYNCHRONOUS, none),
            b"dirsync" => (MountFlags::DIRSYNC, none),
            _ => {
                if !data.is_empty() {
                    let _ = data.push(b',');
                }
                let _ = data.extend_from_slice(opt);
                (none, none)
            }
        };
        f = (f | set).without(clear);
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &'static str) -> BootParams<'static> {
        BootParams::parse(&Cmdline::new(s.as_bytes()))
    }

    #[test]
    fn root_specs() {
        let cases: [(&str, Option<RootSpec>); 8] = [
            ("/dev/nvme0n1p2", Some(RootSpec::Path(b"/dev/nvme0n1p2"))),
            ("UUID=abc", Some(RootSpec::Uuid(b"abc"))),
            ("LABEL=osroot", Some(RootSpec::Label(b"osroot"))),
            (
                "PARTUUID=1234abcd-02",
                Some(RootSpec::PartUuid(b"1234abcd-02")),
            ),
            ("PARTLABEL=root-a", Some(RootSpec::PartLabel(b"root-a"))),
            ("LABEL=", None),
            ("/dev/", None),
            ("sda1", None),
        ];
        for (arg, want) in cases {
            assert_eq!(RootSpec::parse(arg.as_bytes()), want, "{arg}");
        }
    }

    #[test]
    fn defaults() {
        let p = parse("quiet");
        assert_eq!(p.root, None);
        assert!(!p.rw);
        assert_eq!(p.wait_ms, DEFAULT_ROOT_WAIT_S * 1000);
        assert_eq!(p.delay_ms, 0);
        assert_eq!(p.emergency, Emergency::Reboot);
        assert!(!p.debug);
        assert_eq!(p.init, None);
    }

    #[test]
    fn kernel_style_options() {
        let p = parse(
            "root=LABEL=x rw ro rootwait rootdelay=2 init=/sbin/ktest rd.debug rootfstype=ext4,xfs",
        );
        assert!(!p.rw, "last of ro/rw wins");
        assert_eq!(p.wait_ms, ROOTWAIT_S * 1000);
        assert_eq!(p.delay_ms, 2000);
        assert_eq!(p.init, Some(&b"/sbin/ktest"[..]));
        assert!(p.debug);
        assert_eq!(p.fstype, Some(&b"ext4,xfs"[..]));
        assert!(parse("ro rw").rw);
        assert_eq!(parse("rootwait=7").wait_ms, 7000);
        assert_eq!(parse("rootwait=x").wait_ms, ROOTWAIT_S * 1000);
    }

    #[test]
    fn boot_timeout() {
        assert_eq!(parse("").boot_timeout_s, DEFAULT_BOOT_TIMEOUT_S);
        // A bare rootwait (300 s) fits in the default.
        assert_eq!(parse("rootwait").boot_timeout_s, DEFAULT_BOOT_TIMEOUT_S);
        // A longer wait for the root is honoured, with the margin.
        assert_eq!(parse("rootwait=900 rootdelay=30").boot_timeout_s, 1050);
        // Given: as given, even shorter than the wait; 0 is no limit.
        let key = core::str::from_utf8(BOOT_TIMEOUT_KARG).unwrap();
        assert_eq!(parse_owned(&format!("rootwait=900 {key}=20")), 20);
        assert_eq!(parse_owned(&format!("{key}=0")), 0);
        assert_eq!(parse_owned(&format!("{key}=soon")), DEFAULT_BOOT_TIMEOUT_S);
    }

    fn parse_owned(s: &str) -> u64 {
        BootParams::parse(&Cmdline::new(s.as_bytes())).boot_timeout_s
    }

    #[test]
    fn emergency_policy() {
        assert_eq!(
            parse("rd.emergency=poweroff").emergency,
            Emergency::PowerOff
        );
        assert_eq!(parse("rd.emergency=halt").emergency, Emergency::Halt);
        assert_eq!(parse("rd.shell").emergency, Emergency::Shell);
        assert_eq!(parse("rd.shell=0").emergency, Emergency::Reboot);
        assert_eq!(
            parse("rd.shell rd.emergency=poweroff").emergency,
            Emergency::PowerOff
        );
        assert_eq!(parse("rd.emergency=shell").emergency, Emergency::Shell);
    }

    #[test]
    fn rootflags() {
        let mut data = heapless::Vec::new();
        let f = mount_options(
            b"defaults,noatime,errors=remount-ro,ro,data=ordered",
            &mut data,
        );
        assert_eq!(f, MountFlags::NOATIME | MountFlags::RDONLY);
        assert_eq!(data.as_slice(), b"errors=remount-ro,data=ordered");
        let mut data = heapless::Vec::new();
        assert_eq!(mount_options(b"ro,rw", &mut data), MountFlags::EMPTY);
    }
}
