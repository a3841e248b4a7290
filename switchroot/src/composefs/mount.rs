//! Mounting a composefs image: the EROFS image (from the file itself, or
//! through a loop device), then an overlay whose data-only layer is the
//! repository's objects. The same system calls and mount options as
//! libcomposefs, each kernel feature detected by trying it, with the same
//! fallbacks; a failure names the kernel feature that is missing.

use core::fmt::Write;

use otcore::out::Text;
use otcore::path::Lossy;
use otcore::sys::{self, Errno, Fd, FsContext, MountFlags, OFlags, UnmountFlags};

use crate::error::Error;

/// What to mount, with paths as the plan holds them.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The image, `.ostree.cfs` in the deployment directory.
    pub image: &'a [u8],
    /// Where the composefs goes.
    pub dst: &'a [u8],
    /// Where the EROFS image is mounted meanwhile (detached afterwards).
    pub lower: &'a [u8],
    /// The repository's `objects`: the files' content.
    pub objects: &'a [u8],
    /// `verity=require`: every file must have the fs-verity digest the image records.
    pub verity: bool,
    /// The fs-verity digest the image itself must have (`signed`).
    pub digest: Option<&'a [u8]>,
    /// A writable upper layer (`[root] transient`): upper and work directories.
    pub upper: Option<(&'a [u8], &'a [u8])>,
    /// Mount read-only (everything but a `[root] transient` root).
    pub readonly: bool,
}

/// The magic number at the start of a composefs EROFS image, and the flag
/// saying its files carry ACLs (else EROFS is mounted with `noacl`).
const IMAGE_MAGIC: u32 = 0xd078_629a;
const IMAGE_HAS_ACL: u32 = 1;

/// A composefs failure: what was done, on which path, why, and the kernel
/// feature to look for.
fn fail(what: &str, path: &[u8], errno: Errno, hint: &str) -> Error {
    let mut t = Text::new();
    let _ = write!(t, "composefs: {what} {}: {errno}", Lossy(path));
    if !hint.is_empty() {
        let _ = write!(t, " ({hint})");
    }
    Error::Composefs(t)
}

const NO_EROFS: &str = "the kernel has no EROFS: CONFIG_EROFS_FS, module erofs";
const NO_OVERLAY: &str = "the kernel has no overlayfs: CONFIG_OVERLAY_FS, module overlay";

/// Mount the composefs of `req`.
pub fn mount(req: &Request<'_>) -> Result<(), Error> {
    let image = sys::open(req.image, OFlags::RDONLY, 0)
        .map_err(|e| fail("cannot open the image", req.image, e, ""))?;
    if let Some(want) = req.digest {
        let want: &[u8; super::signed::DIGEST_LEN] = want
            .try_into()
            .map_err(|_| fail("bad expected digest for", req.image, Errno::INVAL, ""))?;
        super::signed::check_image(&image, want).map_err(super::signed_error)?;
    }
    let mut header = [0u8; 32];
    let n = sys::pread(&image, &mut header, 0)
        .map_err(|e| fail("cannot read the image", req.image, e, ""))?;
    let word =
        |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    if n < header.len() || word(0) != IMAGE_MAGIC {
        return Err(fail(
            "not a composefs image:",
            req.image,
            Errno::INVAL,
            "no composefs EROFS header",
        ));
    }
    let acl = word(8) & IMAGE_HAS_ACL != 0;

    mount_image(&image, req, acl)?;
    let r = mount_overlay(req);
    // The overlay holds its layers; the image's own mount is not wanted.
    let _ = sys::umount2(req.lower, UnmountFlags::DETACH);
    r
}

/// Mount the EROFS image at `req.lower`: from the file itself (Linux
/// 6.12), else through a loop device.
fn mount_image(image: &Fd, req: &Request<'_>, acl: bool) -> Result<(), Error> {
    let source = sys::fd_proc_path(image);
    match mount_erofs(source.as_bytes(), req.lower, acl) {
        Err(Errno::NOTBLK) => {}
        r => return r.map_err(|e| erofs_error(req, e)),
    }
    let (dev, n) = sys::loop_attach_readonly(image, req.image).map_err(|e| {
        let hint = if e == Errno::NOENT || e == Errno::NODEV {
            "EROFS cannot be mounted from a file before Linux 6.12, and there is no loop device: CONFIG_BLK_DEV_LOOP, module loop"
        } else {
            "attaching a loop device (LOOP_CONFIGURE, Linux 5.8)"
        };
        fail("cannot mount", req.image, e, hint)
    })?;
    let mut path = heapless::String::<24>::new();
    let _ = write!(path, "/dev/loop{}", n.0);
    // The device clears itself when the mount, its last user, goes.
    let r = mount_erofs(path.as_bytes(), req.lower, acl).map_err(|e| erofs_error(req, e));
    drop(dev);
    r
}

fn erofs_error(req: &Request<'_>, e: Errno) -> Error {
    let hint = if e == Errno::NODEV { NO_EROFS } else { "" };
    fail("cannot mount the EROFS image", req.image, e, hint)
}

/// Mount EROFS from `source` at `target`, read-only: the new mount API,
/// else mount(2).
fn mount_erofs(source: &[u8], target: &[u8], acl: bool) -> Result<(), Errno> {
    let fs = match sys::fsopen(b"erofs") {
        Err(Errno::NOSYS) => {
            let data: Option<&[u8]> = if acl { None } else { Some(b"noacl") };
            return sys::mount(
                Some(source),
                target,
                Some(b"erofs"),
                MountFlags::RDONLY,
                data,
            );
        }
        r => r?,
    };
    fs.set(b"source", source)?;
    fs.set_flag(b"ro")?;
    if !acl {
        fs.set_flag(b"noacl")?;
    }
    fs.create()?;
    sys::move_mount_to(fs.mount(true)?, target)
}

/// Why the new mount API could not make the overlay.
enum NewApi {
    /// Not there, or without what composefs needs (appending layers,
    /// data-only layers, Linux 6.8): use mount(2).
    Fallback,
    Failed(Errno),
}

impl From<Errno> for NewApi {
    fn from(e: Errno) -> Self {
        // As libcomposefs: EINVAL is an option this kernel's overlayfs does
        // not take through fsconfig.
        if e == Errno::INVAL {
            NewApi::Fallback
        } else {
            NewApi::Failed(e)
        }
    }
}

/// The overlay at `req.dst`: metacopy and redirects on, the image as its
/// one lower layer, the objects as a data-only layer.
fn mount_overlay(req: &Request<'_>) -> Result<(), Error> {
    let fs = match sys::fsopen(b"overlay") {
        Ok(fs) => fs,
        Err(Errno::NOSYS) => return mount_overlay_legacy(req),
        Err(e) => {
            let hint = if e == Errno::NODEV { NO_OVERLAY } else { "" };
            return Err(fail("cannot mount the overlay on", req.dst, e, hint));
        }
    };
    match overlay_new_api(&fs, req) {
        Ok(()) => Ok(()),
        Err(NewApi::Fallback) => mount_overlay_legacy(req),
        Err(NewApi::Failed(e)) => Err(overlay_error(req, e)),
    }
}

fn overlay_new_api(fs: &FsContext, req: &Request<'_>) -> Result<(), NewApi> {
    // An overlayfs that takes an unknown key takes options unchecked
    // (the legacy path inside fsconfig): use mount(2) then.
    if fs.set(b"unsupported", b"unsupported").is_ok() {
        return Err(NewApi::Fallback);
    }
    fs.set(b"source", b"composefs").map_err(NewApi::Failed)?;
    fs.set(b"metacopy", b"on").map_err(NewApi::Failed)?;
    fs.set(b"redirect_dir", b"on").map_err(NewApi::Failed)?;
    if req.verity {
        // No fallback: mount(2) would refuse it as well.
        fs.set(b"verity", b"require").map_err(NewApi::Failed)?;
    }
    fs.set(b"lowerdir+", req.lower)?;
    fs.set(b"datadir+", req.objects)?;
    if let Some((upper, work)) = req.upper {
        fs.set(b"upperdir", upper)?;
        fs.set(b"workdir", work)?;
    }
    fs.create()?;
    let mnt = fs.mount(req.readonly).map_err(NewApi::Failed)?;
    sys::move_mount_to(mnt, req.dst).map_err(NewApi::Failed)
}

/// The overlay through mount(2): data-only layers (`::`, Linux 6.5), else
/// a plain second lower layer (older kernels, where the image hides the
/// objects directory).
fn mount_overlay_legacy(req: &Request<'_>) -> Result<(), Error> {
    for sep in [&b"::"[..], b":"] {
        let data = legacy_options(req, sep).map_err(|_| Error::PathTooLong)?;
        let ro = if req.readonly {
            MountFlags::RDONLY
        } else {
            MountFlags::EMPTY
        };
        let flags = MountFlags::SILENT | ro;
        match sys::mount(
            Some(b"composefs"),
            req.dst,
            Some(b"overlay"),
            flags,
            Some(&data),
        ) {
            Ok(()) => return Ok(()),
            Err(Errno::INVAL) if sep == b"::" => continue,
            Err(e) => return Err(overlay_error(req, e)),
        }
    }
    Err(overlay_error(req, Errno::INVAL))
}

fn overlay_error(req: &Request<'_>, e: Errno) -> Error {
    let hint = match e {
        Errno::NODEV => NO_OVERLAY,
        Errno::INVAL if req.verity => {
            "overlayfs refused its options: verity=require needs Linux 6.6 with CONFIG_FS_VERITY, metacopy needs 4.19"
        }
        Errno::INVAL => "overlayfs refused its options: metacopy and redirect_dir need Linux 4.19",
        _ => "",
    };
    fail("cannot mount the overlay on", req.dst, e, hint)
}

/// `metacopy=on,redirect_dir=on,lowerdir=L<sep>O[,upperdir=U,workdir=W][,verity=require]`.
/// The paths are the plan's own and never hold `,`, `:` or `\` (the plan
/// refuses such a sysroot), so nothing needs escaping.
fn legacy_options(req: &Request<'_>, sep: &[u8]) -> Result<heapless::Vec<u8, 4095>, ()> {
    let mut v = heapless::Vec::new();
    let mut put = |s: &[u8]| v.extend_from_slice(s).map_err(drop);
    put(b"metacopy=on,redirect_dir=on,lowerdir=")?;
    put(req.lower)?;
    put(sep)?;
    put(req.objects)?;
    if let Some((upper, work)) = req.upper {
        put(b",upperdir=")?;
        put(upper)?;
        put(b",workdir=")?;
        put(work)?;
    }
    if req.verity {
        put(b",verity=require")?;
    }
    Ok(v)
}

/// Point `link` (`/run/systemd/volatile-root`) at the block device of the
/// physical root, `/dev/block/MAJ:MIN`: with composefs, `/` and `/usr` are
/// overlays with anonymous devices, and systemd finds the root disk through
/// this link. The device is `/dev/gpt-auto-root`'s when udev made it, else
/// that of the filesystem at `root`. Nothing when neither names a real
/// device (Btrfs, a tmpfs); `Ok(false)` then, or when the link is there.
pub fn volatile_root_link(root: &[u8], link: &[u8]) -> Result<bool, Error> {
    let dev = match sys::stat(b"/dev/gpt-auto-root") {
        Ok(st) if st.mode & 0o170000 == 0o060000 => st.rdev,
        _ => {
            sys::stat(root)
                .map_err(|e| Error::sys("stat", root, e))?
                .dev
        }
    };
    let (major, minor) = sys::major_minor(dev);
    if major == 0 {
        return Ok(false);
    }
    let mut target = heapless::String::<40>::new();
    let _ = write!(target, "/dev/block/{major}:{minor}");
    let Some(slash) = link.iter().rposition(|&c| c == b'/') else {
        return Err(Error::sys("symlink", link, Errno::INVAL));
    };
    let dir = &link[..slash];
    otcore::fs::make_dir(dir, 0o755).map_err(|e| Error::sys("mkdir", dir, e))?;
    let dir_fd = sys::open(dir, OFlags::DIRECTORY | OFlags::NOFOLLOW, 0)
        .map_err(|e| Error::sys("open", dir, e))?;
    match sys::symlink_at(target.as_bytes(), &dir_fd, &link[slash + 1..]) {
        Ok(()) => Ok(true),
        Err(Errno::EXIST) => Ok(false),
        Err(e) => Err(Error::sys("symlink", link, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> Request<'static> {
        Request {
            image: b"/sysroot/ostree/deploy/os/deploy/abc.0/.ostree.cfs",
            dst: b"/run/ostree/.private/staging",
            lower: b"/run/ostree/.private/cfsroot-lower",
            objects: b"/sysroot/ostree/repo/objects",
            verity: false,
            digest: None,
            upper: None,
            readonly: true,
        }
    }

    #[test]
    fn legacy_options_as_libcomposefs() {
        let got = legacy_options(&req(), b"::").unwrap();
        assert_eq!(
            got.as_slice(),
            b"metacopy=on,redirect_dir=on,lowerdir=/run/ostree/.private/cfsroot-lower::/sysroot/ostree/repo/objects"
        );
        let r = Request {
            verity: true,
            upper: Some((
                b"/run/ostree/.private/root/upper",
                b"/run/ostree/.private/root/work",
            )),
            ..req()
        };
        let got = legacy_options(&r, b":").unwrap();
        assert_eq!(
            got.as_slice(),
            &b"metacopy=on,redirect_dir=on,lowerdir=/run/ostree/.private/cfsroot-lower:/sysroot/ostree/repo/objects,upperdir=/run/ostree/.private/root/upper,workdir=/run/ostree/.private/root/work,verity=require"[..]
        );
    }

    #[test]
    fn errors_name_the_feature() {
        let e = overlay_error(&req(), Errno::NODEV).to_string();
        assert!(e.contains("CONFIG_OVERLAY_FS"), "{e}");
        let r = Request {
            verity: true,
            ..req()
        };
        let e = overlay_error(&r, Errno::INVAL).to_string();
        assert!(e.contains("6.6") && e.contains("staging"), "{e}");
        let e = erofs_error(&req(), Errno::NODEV).to_string();
        assert!(
            e.contains("CONFIG_EROFS_FS") && e.contains(".ostree.cfs"),
            "{e}"
        );
    }
}
