//! Finding the root block device named by `root=` without udev or blkid:
//! list `/sys/class/block`, read superblocks and partition tables ourselves,
//! and wait for late devices by listening to the kernel's uevents.

use core::fmt::Write;
use otcore::sys::{Errno, MountFlags, OFlags};

use crate::bootparams::RootSpec;
use crate::error::Error;
use crate::probe::{self, FsType};
use otcore::path::{Lossy, PathBuf};
use otcore::{sys, warn};

/// Longest wait between two rescans when no uevent arrives (a safety net
/// for events that slipped in before the socket was open).
const RESCAN_MS: i32 = 1000;

/// The root device, once found.
#[derive(Debug, Clone)]
pub struct RootDevice {
    pub path: PathBuf,
    /// The filesystem type its superblock names, if we know it.
    pub fstype: Option<FsType>,
}

/// What one block device looks like to `root=` matching.
#[derive(Debug, Clone, Default)]
struct DevInfo {
    fs: Option<probe::FsInfo>,
    partuuid: Option<probe::UuidText>,
    partlabel: Option<probe::Label>,
}

/// A block device's kernel name (`nvme0n1p2`).
type DevName = heapless::Vec<u8, 32>;

/// Call `f` with the name of every block device (`/sys/class/block`), one
/// at a time: there is no limit to how many there are.
fn for_each_block_device(mut f: impl FnMut(&[u8])) {
    let _ = sys::for_each_dir_entry(b"/sys/class/block", |name| f(name));
}

fn dev_path(name: &[u8]) -> Result<PathBuf, Error> {
    let mut p = PathBuf::from(b"/dev")?;
    p.push(name)?;
    Ok(p)
}

/// Read the partition number and parent disk of `name`, if it is a partition.
fn partition_of(name: &[u8]) -> Option<(u32, DevName)> {
    let mut p = PathBuf::from(b"/sys/class/block").ok()?;
    p.push(name).ok()?;
    let mut num = [0u8; 16];
    let n = sys::read_file(p.join(b"partition").ok()?.as_bytes(), &mut num).ok()?;
    let number = crate::bootparams::decimal(&num[..n])? as u32;
    // /sys/class/block/NAME -> ../../devices/.../DISK/NAME: the parent is DISK.
    let mut link = [0u8; 512];
    let len = sys::readlink(p.as_bytes(), &mut link).ok()?;
    let mut parts = link[..len].rsplit(|&b| b == b'/');
    parts.next()?;
    Some((number, DevName::from_slice(parts.next()?).ok()?))
}

/// The GPT entry (or MBR identifier) of partition `number` of `disk`, with
/// the checks the kernel and blkid make (see [`probe::partition_ids`]).
fn partition_info(disk: &[u8], number: u32, info: &mut DevInfo) {
    let Ok(path) = dev_path(disk) else { return };
    let Ok(fd) = sys::open(path.as_bytes(), OFlags::RDONLY, 0) else {
        return;
    };
    let size = sys::file_size(&fd).unwrap_or(0);
    let mut read = |off: u64, buf: &mut [u8]| sys::pread(&fd, buf, off) == Ok(buf.len());
    if let Some((uuid, label)) = probe::partition_ids(&mut read, size, number) {
        info.partuuid = Some(uuid);
        info.partlabel = label;
    }
}

/// How long a device has to answer the reads of its probe before it is
/// skipped: a dying disk or a stalled USB bridge can block a read forever.
pub const PROBE_DEADLINE_MS: i32 = 5000;

/// Whether the reads of `probe` finish within [`PROBE_DEADLINE_MS`], tried
/// in a child process first; warns about `name` when they do not. The
/// child's reads fill the kernel's page cache, so the same reads here then
/// return at once.
fn answers(name: &[u8], probe: impl FnOnce()) -> bool {
    let ok = sys::finishes_within(PROBE_DEADLINE_MS, probe);
    if !ok {
        warn!(
            "ostree-prepare-root: {} did not answer within {} s; skipped",
            Lossy(name),
            PROBE_DEADLINE_MS / 1000
        );
    }
    ok
}

/// Everything we can tell about block device `name` (nothing if it does
/// not answer in time).
fn probe_device(name: &[u8], want_fs: bool, want_part: bool) -> DevInfo {
    if !answers(name, || drop(read_device(name, want_fs, want_part))) {
        return DevInfo::default();
    }
    read_device(name, want_fs, want_part)
}

/// Read what [`probe_device`] needs from `name` (and its disk).
fn read_device(name: &[u8], want_fs: bool, want_part: bool) -> DevInfo {
    let mut info = DevInfo::default();
    if want_fs {
        if let Ok(fd) = dev_path(name).and_then(|p| {
            sys::open(p.as_bytes(), OFlags::RDONLY, 0)
                .map_err(|e| Error::sys("open", p.as_bytes(), e))
        }) {
            let mut buf = [0u8; probe::PROBE_LEN];
            if let Ok(n) = sys::pread(&fd, &mut buf, 0) {
                info.fs = probe::probe_fs(&buf[..n]);
            }
        }
    }
    if want_part {
        if let Some((number, disk)) = partition_of(name) {
            partition_info(&disk, number, &mut info);
        }
    }
    info
}

fn matches(spec: &RootSpec, info: &DevInfo) -> bool {
    let eq = |a: &[u8], b: &[u8]| a.eq_ignore_ascii_case(b);
    match spec {
        RootSpec::Path(_) => false,
        RootSpec::Uuid(u) => info.fs.as_ref().is_some_and(|f| eq(f.uuid.as_bytes(), u)),
        RootSpec::Label(l) => info.fs.as_ref().is_some_and(|f| f.label.as_slice() == *l),
        RootSpec::PartUuid(u) => info.partuuid.as_ref().is_some_and(|p| eq(p.as_bytes(), u)),
        RootSpec::PartLabel(l) => info.partlabel.as_ref().is_some_and(|p| p.as_slice() == *l),
    }
}

/// One pass over the block devices.
fn scan(spec: &RootSpec) -> Result<Option<RootDevice>, Error> {
    if let RootSpec::Path(p) = spec {
        return Ok(match sys::stat(p) {
            Ok(_) => {
                let probe = || {
                    let mut buf = [0u8; probe::PROBE_LEN];
                    sys::open(p, OFlags::RDONLY, 0)
                        .ok()
                        .and_then(|fd| sys::pread(&fd, &mut buf, 0).ok())
                        .and_then(|n| probe::probe_fs(&buf[..n]))
                        .map(|i| i.fstype)
                };
                let fstype = if answers(p, || {
                    probe();
                }) {
                    probe()
                } else {
                    None
                };
                Some(RootDevice {
                    path: PathBuf::from(p)?,
                    fstype,
                })
            }
            Err(_) => None,
        });
    }
    let want_fs = matches!(spec, RootSpec::Uuid(_) | RootSpec::Label(_));
    // Every device is looked at: a second match (a cloned disk, a stick
    // with a copied label) must be noticed, never one picked.
    let mut first: Option<DevName> = None;
    let mut count = 0u32;
    for_each_block_device(|name| {
        if matches(spec, &probe_device(name, want_fs, !want_fs)) {
            count += 1;
            if first.is_none() {
                first = DevName::from_slice(name).ok();
            }
        }
    });
    if count > 1 {
        warn!("ostree-prepare-root: root= matches {count} devices:");
        for_each_block_device(|name| {
            let info = probe_device(name, true, true);
            if matches(spec, &info) {
                report_device(name, &info);
            }
        });
        return Err(Error::AmbiguousRoot { count });
    }
    let Some(name) = first else {
        return Ok(None);
    };
    Ok(Some(RootDevice {
        path: dev_path(&name)?,
        // Found by its partition or its filesystem: the type is needed to mount it.
        fstype: probe_device(&name, true, false).fs.map(|f| f.fstype),
    }))
}

/// Find the root device, waiting up to `wait_ms` for it to appear.
pub fn find(spec: &RootSpec, wait_ms: u64) -> Result<RootDevice, Error> {
    // Listen before the first scan, so a device added in between is not missed.
    let events = sys::uevent_socket().ok();
    let deadline = sys::clock_us(false) + wait_ms * 1000;
    loop {
        if let Some(dev) = scan(spec)? {
            return Ok(dev);
        }
        let now = sys::clock_us(false);
        if now >= deadline {
            return Err(Error::NoRootDevice { waited_ms: wait_ms });
        }
        let remaining = ((deadline - now) / 1000).min(RESCAN_MS as u64) as i32;
        match &events {
            Some(fd) => {
                if sys::poll_readable(fd, remaining.max(1)).unwrap_or(false) {
                    drain_uevents(fd);
                }
            }
            None => sys::sleep_ms(remaining.max(1) as u64 / 4 + 1),
        }
    }
}

/// Read and discard every queued uevent; whether one announced a block
/// device being added (`add@/devices/...` followed by NUL-separated
/// `KEY=VALUE` pairs, one of them `SUBSYSTEM=block`).
fn drain_uevents(fd: &sys::Fd) -> bool {
    let mut buf = [0u8; 4096];
    let mut block_added = false;
    while let Ok(Some(n)) = sys::recv(fd, &mut buf) {
        if n == 0 {
            break;
        }
        let msg = &buf[..n];
        if msg.starts_with(b"add@") && msg.split(|&b| b == 0).any(|f| f == b"SUBSYSTEM=block") {
            block_added = true;
        }
    }
    block_added
}

/// Print every block device and its identifiers (for a failed search).
pub fn report_devices() {
    let mut any = false;
    for_each_block_device(|name| {
        any = true;
        report_device(name, &probe_device(name, true, true));
    });
    if !any {
        warn!("ostree-prepare-root: no block devices in /sys/class/block");
    }
}

/// One line: the device and its identifiers, as blkid names them.
fn report_device(name: &[u8], info: &DevInfo) {
    let mut line = otcore::out::LineBuf::new();
    let _ = write!(line, "  /dev/{}:", Lossy(name));
    if let Some(fs) = &info.fs {
        let _ = write!(
            line,
            " TYPE={} UUID={} LABEL=\"{}\"",
            fs.fstype.name(),
            fs.uuid,
            Lossy(&fs.label)
        );
    }
    if let Some(u) = &info.partuuid {
        let _ = write!(line, " PARTUUID={u}");
    }
    if let Some(l) = &info.partlabel {
        let _ = write!(line, " PARTLABEL=\"{}\"", Lossy(l));
    }
    warn!("{}", Lossy(line.as_bytes()));
}

/// Mount the root device at `target` (`fstypes`: `rootfstype=`, comma-separated).
pub fn mount_root(
    dev: &RootDevice,
    target: &[u8],
    fstypes: Option<&[u8]>,
    flags: MountFlags,
    data: &[u8],
) -> Result<(), Error> {
    let data = (!data.is_empty()).then_some(data);
    let probed = dev.fstype.map(|t| t.name().as_bytes());
    let mut last = Errno::INVAL;
    let candidates = fstypes.or(probed).ok_or(Error::UnknownFs {
        device: dev.path.clone(),
    })?;
    let mut unknown = None;
    for fstype in candidates.split(|&b| b == b',').filter(|t| !t.is_empty()) {
        match sys::mount(Some(dev.path.as_bytes()), target, Some(fstype), flags, data) {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        if !crate::modules::filesystem_known(fstype) {
            unknown = Some(fstype);
        }
    }
    if let Some(fstype) = unknown {
        // The usual cause on modular kernels: say it, not just ENODEV.
        warn!(
            "ostree-prepare-root: the kernel does not know the filesystem type {}: its module is not loaded (list it in {} or rd.modules-load=)",
            Lossy(fstype),
            Lossy(crate::modules::MODULE_LIST)
        );
    }
    Err(Error::sys2("mount root", dev.path.as_bytes(), target, last))
}
