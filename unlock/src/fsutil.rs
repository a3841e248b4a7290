//! File operations with the guarantees unlock needs: explicit modes, no
//! symlink following, crash safety (write, fsync, rename), and errors that
//! name the operation and the path.

use std::ffi::CString;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// An error: what we were doing, on what, and why (errno text and name).
#[derive(Debug)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// `op path: strerror (ENAME)`.
pub fn io_err(op: &str, path: &Path, e: io::Error) -> Error {
    let errno = e.raw_os_error().unwrap_or(0);
    let name = switchroot::sys::errno_name(errno);
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    Error(format!("{op} {}: {text} ({name})", path.display()))
}

/// A plain message.
pub fn msg(s: impl Into<String>) -> Error {
    Error(s.into())
}

pub trait Context<T> {
    fn ctx(self, op: &str, path: &Path) -> Result<T>;
}

impl<T> Context<T> for io::Result<T> {
    fn ctx(self, op: &str, path: &Path) -> Result<T> {
        self.map_err(|e| io_err(op, path, e))
    }
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

/// The errno of the last failed libc call, as an io::Error.
pub fn last_os_error() -> io::Error {
    io::Error::last_os_error()
}

/// Create directory `path` with exactly `mode` (never through a symlink).
/// An existing real directory is accepted and given `mode`; anything else
/// in its place is refused.
pub fn ensure_dir(path: &Path, mode: u32) -> Result<()> {
    match fs::DirBuilder::new().mode(mode).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err("mkdir", path, e)),
    }
    let md = fs::symlink_metadata(path).ctx("lstat", path)?;
    if !md.file_type().is_dir() {
        return Err(msg(format!(
            "{}: exists and is not a directory (a symlink?), refusing",
            path.display()
        )));
    }
    if md.mode() & 0o7777 != mode || md.uid() != 0 {
        // mkdir is subject to the umask, and an existing one may be off.
        std::os::unix::fs::lchown(path, Some(0), Some(0)).ctx("chown", path)?;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).ctx("chmod", path)?;
    }
    Ok(())
}

/// fsync a directory (so a rename or mkdir inside it is durable).
pub fn fsync_dir(path: &Path) -> Result<()> {
    let f = fs::File::open(path).ctx("open", path)?;
    f.sync_all().ctx("fsync", path)
}

/// Replace `path` atomically with `data` (temporary file, fsync, rename, fsync dir).
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .ctx("create", &tmp)?;
    f.write_all(data).ctx("write", &tmp)?;
    f.set_permissions(fs::Permissions::from_mode(mode))
        .ctx("chmod", &tmp)?;
    f.sync_all().ctx("fsync", &tmp)?;
    drop(f);
    fs::rename(&tmp, path).ctx("rename", path)?;
    fsync_dir(dir)
}

/// Remove a tree without following symlinks; a missing path is fine.
pub fn remove_tree(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("lstat", path, e)),
        Ok(md) if md.file_type().is_dir() => {
            // Entries are removed without following symlinks (a link is
            // removed, never what it points to).
            for e in fs::read_dir(path).ctx("read directory", path)? {
                remove_tree(&e.ctx("read directory", path)?.path())?;
            }
            fs::remove_dir(path).ctx("remove", path)
        }
        Ok(_) => fs::remove_file(path).ctx("remove", path),
    }
}

/// Set the mtime of `path` to now (libostree's "something changed" signal).
pub fn touch(path: &Path) -> Result<()> {
    let c = cpath(path);
    // SAFETY: `c` is a valid C string; NULL times means "now".
    let r = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), std::ptr::null(), 0) };
    if r != 0 {
        return Err(io_err("set mtime of", path, last_os_error()));
    }
    Ok(())
}

const FS_IMMUTABLE_FL: libc::c_long = 0x10;

/// Set or clear the immutable attribute of a directory (as `chattr [+-]i`).
/// Filesystems without attributes (tmpfs) are fine: there is nothing to change.
pub fn set_immutable(path: &Path, immutable: bool) -> Result<()> {
    let f = fs::File::open(path).ctx("open", path)?;
    use std::os::fd::AsRawFd;
    let mut flags: libc::c_long = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one long into `flags`.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) };
    if r != 0 {
        let e = last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOTTY) | Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) => Ok(()),
            _ => Err(io_err("read attributes of", path, e)),
        };
    }
    let want = if immutable {
        flags | FS_IMMUTABLE_FL
    } else {
        flags & !FS_IMMUTABLE_FL
    };
    if want == flags {
        return Ok(());
    }
    // SAFETY: FS_IOC_SETFLAGS reads one long from `want`.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_SETFLAGS, &want) };
    if r != 0 {
        return Err(io_err(
            if immutable {
                "set immutable attribute on"
            } else {
                "clear immutable attribute of"
            },
            path,
            last_os_error(),
        ));
    }
    Ok(())
}

/// Whether a path exists as a real directory (not a symlink).
pub fn is_real_dir(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_dir())
}
