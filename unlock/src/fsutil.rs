//! File operations with the guarantees unlock needs: explicit modes, no
//! symlink following, crash safety (write, fsync, rename), bounded reads,
//! and errors that name the operation and the path.

use otcore::fs::{self, Owner};
use otcore::path::Lossy;
use otcore::sys::{self, Errno, InodeFlags, OFlags, SysResult};

use crate::err;
use crate::error::{Context, Error, Result};

/// Whether anything (even a dangling symlink) is at `path`.
pub fn exists(path: &[u8]) -> bool {
    sys::lstat(path).is_ok()
}

/// Whether a path exists as a real directory (not a symlink).
pub fn is_real_dir(path: &[u8]) -> bool {
    sys::lstat(path).is_ok_and(|s| s.is_dir())
}

/// The directory part of `path` (`/a/b` → `/a`, `/a` → `/`, `a` → `.`).
pub fn parent(path: &[u8]) -> &[u8] {
    fs::split_parent(path).0
}

/// Read a whole small file into `buf`; a file that does not fit is `EFBIG`
/// (report it with [`crate::error::read_error`]).
pub fn read_small<'b>(path: &[u8], buf: &'b mut [u8]) -> SysResult<&'b [u8]> {
    let n = sys::read_file(path, buf)?;
    Ok(&buf[..n])
}

/// Create directory `path` with exactly `mode`, owned by root (never through
/// a symlink; an existing real directory is given that mode and owner).
pub fn ensure_dir(path: &[u8], mode: u32) -> Result<()> {
    fs::ensure_dir(path, mode, Owner::Is(0, 0))?;
    Ok(())
}

/// The extended attribute that holds a file's SELinux label.
const SELINUX_XATTR: &[u8] = b"security.selinux";

/// A file's SELinux label, as the kernel stores it (NUL included).
pub struct Label {
    buf: [u8; 256],
    len: usize,
}

impl Label {
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The SELinux label of `path`, if it has one (none without SELinux, or on a
/// filesystem without labels).
pub fn selinux_label(path: &[u8]) -> Result<Option<Label>> {
    let mut label = Label {
        buf: [0; 256],
        len: 0,
    };
    match sys::lgetxattr(path, SELINUX_XATTR, &mut label.buf) {
        Ok(len) => {
            label.len = len;
            Ok(Some(label))
        }
        Err(Errno::NODATA | Errno::OPNOTSUPP) => Ok(None),
        Err(e) => Err(Error::sys("read the SELinux label of", path, e)),
    }
}

/// [`ensure_dir`], and the directory given `label` when there is one, so
/// that an overlay using it keeps `/usr`'s label (the merged directory's
/// label comes from its upper layer).
pub fn ensure_dir_labelled(path: &[u8], mode: u32, label: Option<&Label>) -> Result<()> {
    let fd = fs::ensure_dir(path, mode, Owner::Is(0, 0))?;
    if let Some(label) = label {
        match sys::fsetxattr(&fd, SELINUX_XATTR, label.as_bytes()) {
            Ok(()) | Err(Errno::OPNOTSUPP) => {}
            Err(e) => return Err(Error::sys("set the SELinux label of", path, e)),
        }
    }
    Ok(())
}

/// fsync a directory (so a rename or mkdir inside it is durable).
pub fn fsync_dir(path: &[u8]) -> Result<()> {
    let fd = sys::open(path, OFlags::RDONLY | OFlags::DIRECTORY, 0).ctx("open", path)?;
    sys::fsync(&fd).ctx("fsync", path)
}

/// Replace `path` atomically with `data` (see [`otcore::fs::write_atomic`]).
pub fn write_atomic(path: &[u8], data: &[u8], mode: u32) -> Result<()> {
    Ok(fs::write_atomic(path, data, mode)?)
}

/// Remove a tree at any depth without following symlinks or crossing a
/// mount (see [`otcore::fs::remove_tree`]); a missing path is fine. Anything
/// left is an error naming the first entry that could not be removed.
pub fn remove_tree(path: &[u8]) -> Result<()> {
    let r = fs::remove_tree(path);
    if r.is_complete() {
        Ok(())
    } else {
        Err(err!("remove {}: {r}", Lossy(path)))
    }
}

/// Set the mtime of `path` to now (libostree's "something changed" signal).
pub fn touch(path: &[u8]) -> Result<()> {
    sys::touch(path).ctx("set mtime of", path)
}

/// Set or clear the immutable attribute of a directory (as `chattr [+-]i`).
/// Filesystems without attributes (tmpfs) are fine: there is nothing to change.
pub fn set_immutable(path: &[u8], immutable: bool) -> Result<()> {
    let fd = sys::open(path, OFlags::RDONLY, 0).ctx("open", path)?;
    let flags = match sys::inode_flags(&fd) {
        Ok(f) => f,
        Err(Errno::NOTTY | Errno::OPNOTSUPP | Errno::INVAL) => return Ok(()),
        Err(e) => return Err(Error::sys("read attributes of", path, e)),
    };
    let want = if immutable {
        flags | InodeFlags::IMMUTABLE
    } else {
        flags.without(InodeFlags::IMMUTABLE)
    };
    if want == flags {
        return Ok(());
    }
    let op = if immutable {
        "set immutable attribute on"
    } else {
        "clear immutable attribute of"
    };
    sys::set_inode_flags(&fd, want).ctx(op, path)
}

/// Splits a stream into lines with a fixed buffer of `N` bytes. A line
/// longer than that is passed on cut to its first `N` bytes (its end is
/// skipped): the callers look only at a line's start.
pub fn for_each_line<const N: usize>(
    mut read: impl FnMut(&mut [u8]) -> SysResult<usize>,
    mut f: impl FnMut(&[u8]),
) -> SysResult<()> {
    let mut buf = [0u8; N];
    let mut len = 0;
    // Inside an overlong line whose start was already passed on.
    let mut skipping = false;
    loop {
        let n = read(&mut buf[len..])?;
        len += n;
        let mut start = 0;
        while let Some(i) = buf[start..len].iter().position(|&b| b == b'\n') {
            if !skipping {
                f(&buf[start..start + i]);
            }
            skipping = false;
            start += i + 1;
        }
        if n == 0 {
            if start < len && !skipping {
                f(&buf[start..len]);
            }
            return Ok(());
        }
        buf.copy_within(start..len, 0);
        len -= start;
        if len == N {
            if !skipping {
                f(&buf[..len]);
            }
            skipping = true;
            len = 0;
        }
    }
}

/// [`for_each_line`] over the file at `path`.
pub fn for_each_file_line<const N: usize>(path: &[u8], f: impl FnMut(&[u8])) -> SysResult<()> {
    let fd = sys::open(path, OFlags::RDONLY, 0)?;
    for_each_line::<N>(|b| sys::read(&fd, b), f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines<const N: usize>(input: &[u8], chunk: usize) -> Vec<Vec<u8>> {
        let mut pos = 0;
        let mut out = Vec::new();
        for_each_line::<N>(
            |b| {
                let n = chunk.min(b.len()).min(input.len() - pos);
                b[..n].copy_from_slice(&input[pos..pos + n]);
                pos += n;
                Ok(n)
            },
            |l| out.push(l.to_vec()),
        )
        .unwrap();
        out
    }

    #[test]
    fn splits_lines_across_reads() {
        for chunk in [1, 3, 64] {
            assert_eq!(
                lines::<16>(b"a b\ncd\n\nlast", chunk),
                vec![b"a b".to_vec(), b"cd".to_vec(), vec![], b"last".to_vec()]
            );
        }
    }

    #[test]
    fn overlong_lines_are_cut() {
        assert_eq!(
            lines::<4>(b"abcdefgh\nxy\n", 3),
            vec![b"abcd".to_vec(), b"xy".to_vec()]
        );
        assert_eq!(
            lines::<4>(b"abcd\nxy", 2),
            vec![b"abcd".to_vec(), b"xy".to_vec()]
        );
    }

    #[test]
    fn parents() {
        assert_eq!(parent(b"/a/b"), b"/a");
        assert_eq!(parent(b"/a"), b"/");
        assert_eq!(parent(b"a"), b".");
    }
}
