//! File operations with the guarantees unlock needs: explicit modes, no
//! symlink following, crash safety (write, fsync, rename), bounded reads,
//! and errors that name the operation and the path.
//!
//! Everything under the sysroot (and the boot directory) goes through a
//! [`Tree`]: descriptors walked with [`sys::open_beneath`], so no symlink is
//! ever followed there, even one swapped in while the tool runs. The
//! helpers by path are for `/run` (runtime flags, scratch mount points).

use otcore::fs::{self, Owner};
use otcore::path::{Lossy, PathBuf};
use otcore::sys::{
    self, AsFd, BorrowedFd, Errno, Fd, InodeFlags, OFlags, RemoveKind, Stat, SysResult,
};

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

/// A directory whose paths are only ever walked with
/// [`sys::open_beneath`]: no symlink is followed, none is left through
/// (`..`, absolute paths), whatever is swapped in meanwhile. Every change
/// (create, write, rename, chmod, chown, unlink, rmdir, mkdir, attributes)
/// is made through a descriptor of the directory it happens in, opened by
/// that walk, never by path. `path` names it in messages only.
pub struct Tree {
    fd: Fd,
    pub path: PathBuf,
}

const DIR: OFlags = OFlags::RDONLY.union(OFlags::DIRECTORY);
const READ: OFlags = OFlags::RDONLY.union(OFlags::NONBLOCK).union(OFlags::NOCTTY);

impl Tree {
    /// Open the directory at `path`, the top of a tree: the one path
    /// resolved as usual (the sysroot the user named, a mount point of ours).
    pub fn open(path: &[u8]) -> Result<Tree> {
        let fd = sys::open(path, DIR, 0).ctx("open directory", path)?;
        Ok(Tree {
            fd,
            path: PathBuf::from(path)?,
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// `path/rel`, for messages.
    pub fn shown(&self, rel: &[u8]) -> PathBuf {
        self.path
            .join(rel)
            .unwrap_or_else(|_| PathBuf::from_lossy(rel))
    }

    /// The error for `op` on `rel` failing with `errno`; a symlink met on
    /// the way (`ELOOP`) is named: the first one on `rel`.
    #[cold]
    pub fn fail(&self, op: &'static str, rel: &[u8], errno: Errno) -> Error {
        if errno == Errno::LOOP {
            let mut end = 0;
            while end < rel.len() {
                end += rel[end..]
                    .iter()
                    .position(|&b| b == b'/')
                    .unwrap_or(rel.len() - end);
                let prefix = &rel[..end];
                if sys::lstat_at(&self.fd, prefix).is_ok_and(|st| st.is_symlink()) {
                    return err!(
                        "{}: a symlink, refused (it could lead out of the sysroot): {op}: {errno}",
                        self.shown(prefix)
                    );
                }
                end += 1;
            }
        }
        Error::sys(op, self.shown(rel).as_bytes(), errno)
    }

    /// [`sys::open_beneath`] of `rel`.
    pub fn open_raw(&self, rel: &[u8], flags: OFlags, mode: u32) -> SysResult<Fd> {
        sys::open_beneath(&self.fd, rel, flags, mode)
    }

    /// The directory `rel`, walked.
    pub fn sub(&self, rel: &[u8]) -> Result<Tree> {
        let fd = self
            .open_raw(rel, DIR, 0)
            .map_err(|e| self.fail("open directory", rel, e))?;
        Ok(Tree {
            fd,
            path: self.shown(rel),
        })
    }

    /// [`Tree::sub`]; `None` when it does not exist.
    pub fn try_sub(&self, rel: &[u8]) -> Result<Option<Tree>> {
        match self.sub(rel) {
            Ok(t) => Ok(Some(t)),
            Err(Error::Sys {
                errno: Errno::NOENT,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The directory holding `rel`, walked, and `rel`'s last component.
    fn parent<'r>(&self, rel: &'r [u8]) -> SysResult<(Fd, &'r [u8])> {
        let (dir, name) = match rel.iter().rposition(|&b| b == b'/') {
            Some(i) => (&rel[..i], &rel[i + 1..]),
            None => (&b"."[..], rel),
        };
        if name.is_empty() || name == b"." || name == b".." {
            return Err(Errno::INVAL);
        }
        Ok((self.open_raw(dir, DIR, 0)?, name))
    }

    /// `lstat` of `rel` (its directories walked, itself not followed).
    pub fn lstat(&self, rel: &[u8]) -> SysResult<Stat> {
        let (dir, name) = self.parent(rel)?;
        sys::lstat_at(&dir, name)
    }

    /// Whether anything (even a dangling symlink) is at `rel`.
    pub fn exists(&self, rel: &[u8]) -> bool {
        self.lstat(rel).is_ok()
    }

    /// Whether `rel` is a real directory (not a symlink).
    pub fn is_real_dir(&self, rel: &[u8]) -> bool {
        self.lstat(rel).is_ok_and(|st| st.is_dir())
    }

    /// Read the regular file `rel` into `buf` (see [`sys::read_file`]:
    /// too large is `EFBIG`, anything but a file `EINVAL`, a symlink `ELOOP`).
    pub fn read_small<'b>(&self, rel: &[u8], buf: &'b mut [u8]) -> SysResult<&'b [u8]> {
        let fd = self.open_raw(rel, READ, 0)?;
        let st = sys::fstat(&fd)?;
        if !st.is_file() {
            return Err(if st.is_dir() {
                Errno::ISDIR
            } else {
                Errno::INVAL
            });
        }
        let n = sys::read_all(&fd, buf)?;
        if n == buf.len() {
            return Err(Errno::FBIG);
        }
        Ok(&buf[..n])
    }

    /// The error of a failed [`Tree::read_small`] of `rel` into `cap` bytes.
    pub fn read_error(&self, rel: &[u8], errno: Errno, cap: usize) -> Error {
        match errno {
            Errno::FBIG => crate::error::read_error(self.shown(rel).as_bytes(), errno, cap),
            e => self.fail("read", rel, e),
        }
    }

    /// Replace `rel` atomically with `data` (see [`otcore::fs::write_atomic_at`]).
    pub fn write_atomic(&self, rel: &[u8], data: &[u8], mode: u32) -> Result<()> {
        let (dir, name) = self
            .parent(rel)
            .map_err(|e| self.fail("open directory of", rel, e))?;
        fs::write_atomic_at(dir.as_fd(), name, data, mode, self.shown(rel).as_bytes())?;
        Ok(())
    }

    /// Make `rel` a directory with exactly `mode`, owned by root (chmod and
    /// chown on its descriptor), and `label` when there is one; open it.
    /// `Ok((fd, true))` when it was made now.
    pub fn ensure_dir(&self, rel: &[u8], mode: u32, label: Option<&Label>) -> Result<(Fd, bool)> {
        let (dir, name) = self
            .parent(rel)
            .map_err(|e| self.fail("open directory of", rel, e))?;
        let shown = self.shown(rel);
        let made = match sys::lstat_at(&dir, name) {
            Err(Errno::NOENT) => true,
            Ok(st) if st.is_symlink() => return Err(self.fail("mkdir", rel, Errno::LOOP)),
            _ => false,
        };
        let fd = fs::ensure_dir_at(dir.as_fd(), name, mode, Owner::Is(0, 0), shown.as_bytes())
            .map_err(|e| match sys::lstat_at(&dir, name) {
                Ok(st) if st.is_symlink() => self.fail("mkdir", rel, Errno::LOOP),
                _ => e.into(),
            })?;
        if let Some(label) = label {
            match sys::fsetxattr(&fd, SELINUX_XATTR, label.as_bytes()) {
                Ok(()) | Err(Errno::OPNOTSUPP) => {}
                Err(e) => return Err(Error::sys("set the SELinux label of", shown.as_bytes(), e)),
            }
        }
        Ok((fd, made))
    }

    /// Remove the tree at `rel` (see [`otcore::fs::remove_tree_at`]); a
    /// missing one, or a missing directory above it, is fine.
    pub fn remove_tree(&self, rel: &[u8]) -> Result<()> {
        let (dir, name) = match self.parent(rel) {
            Ok(p) => p,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(self.fail("open directory of", rel, e)),
        };
        let shown = self.shown(rel);
        let mut r = fs::Removal::default();
        fs::remove_tree_at(dir.as_fd(), name, shown.as_bytes(), &mut r);
        if r.is_complete() {
            sys::fsync(&dir).ctx("fsync directory of", shown.as_bytes())
        } else {
            Err(err!("remove {shown}: {r}"))
        }
    }

    /// Remove the file, link (`RemoveKind::NonDir`) or empty directory at
    /// `rel`; a missing one is fine.
    pub fn remove(&self, rel: &[u8], kind: RemoveKind) -> Result<()> {
        let (dir, name) = match self.parent(rel) {
            Ok(p) => p,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(self.fail("open directory of", rel, e)),
        };
        match sys::unlink_at(&dir, name, kind) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(self.fail("remove", rel, e)),
        }
    }

    /// Rename `from` to `to`, each in its walked directory.
    pub fn rename(&self, from: &[u8], to: &[u8]) -> Result<()> {
        let (fd, fname) = self
            .parent(from)
            .map_err(|e| self.fail("open directory of", from, e))?;
        let (td, tname) = self
            .parent(to)
            .map_err(|e| self.fail("open directory of", to, e))?;
        sys::rename_between(&fd, fname, &td, tname).map_err(|e| self.fail("rename", from, e))?;
        sys::fsync(&fd).ctx("fsync directory of", self.shown(from).as_bytes())?;
        sys::fsync(&td).ctx("fsync directory of", self.shown(to).as_bytes())
    }

    /// fsync this directory (so a rename or mkdir inside it is durable).
    pub fn fsync(&self) -> Result<()> {
        sys::fsync(&self.fd).ctx("fsync", self.path.as_bytes())
    }

    /// Set this directory's mtime to now (libostree's "something changed").
    pub fn touch(&self) -> Result<()> {
        sys::touch_fd(&self.fd).ctx("set mtime of", self.path.as_bytes())
    }

    /// Set or clear the immutable attribute of this directory (as `chattr
    /// [+-]i`), on its descriptor. Filesystems without attributes (tmpfs)
    /// are fine: there is nothing to change.
    pub fn set_immutable(&self, immutable: bool) -> Result<()> {
        set_immutable_fd(&self.fd, self.path.as_bytes(), immutable)
    }

    /// The SELinux label of `rel`, if it has one.
    pub fn selinux_label(&self, rel: &[u8]) -> Result<Option<Label>> {
        let fd = self
            .open_raw(rel, READ, 0)
            .map_err(|e| self.fail("open", rel, e))?;
        let mut label = Label {
            buf: [0; 256],
            len: 0,
        };
        match sys::fgetxattr(&fd, SELINUX_XATTR, &mut label.buf) {
            Ok(len) => {
                label.len = len;
                Ok(Some(label))
            }
            Err(Errno::NODATA | Errno::OPNOTSUPP) => Ok(None),
            Err(e) => Err(Error::sys(
                "read the SELinux label of",
                self.shown(rel).as_bytes(),
                e,
            )),
        }
    }

    /// Call `f` with the name of every entry of directory `rel` (walked).
    pub fn for_each_name(&self, rel: &[u8], mut f: impl FnMut(&[u8])) -> SysResult<()> {
        let dir = self.open_raw(rel, DIR, 0)?;
        sys::for_each_entry(&dir, |e| {
            f(e.name);
            true
        })
    }
}

/// Set or clear the immutable attribute of the open directory `fd` (`shown`).
fn set_immutable_fd(fd: &Fd, shown: &[u8], immutable: bool) -> Result<()> {
    let flags = match sys::inode_flags(fd) {
        Ok(f) => f,
        Err(Errno::NOTTY | Errno::OPNOTSUPP | Errno::INVAL) => return Ok(()),
        Err(e) => return Err(Error::sys("read attributes of", shown, e)),
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
    sys::set_inode_flags(fd, want).ctx(op, shown)
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
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::symlink;

    /// A fresh tree `root/` with a directory outside it, `out/`.
    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("unlock-tree-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("root/a/b")).unwrap();
        std::fs::create_dir_all(d.join("out")).unwrap();
        std::fs::write(d.join("out/f"), b"outside").unwrap();
        d
    }

    fn open(d: &std::path::Path) -> Tree {
        Tree::open(d.join("root").as_os_str().as_bytes()).unwrap()
    }

    #[test]
    fn a_tree_changes_nothing_through_a_symlink() {
        let d = scratch("links");
        symlink(d.join("out"), d.join("root/a/abs")).unwrap();
        symlink("../../out", d.join("root/a/rel")).unwrap();
        let t = open(&d);
        for link in ["a/abs", "a/rel"] {
            let e = t.ensure_dir(format!("{link}/new").as_bytes(), 0o700, None);
            let msg = e.err().unwrap().to_string();
            assert!(
                msg.contains(&format!("root/{link}: a symlink, refused")),
                "{msg}"
            );
            assert!(msg.ends_with("(ELOOP)"), "{msg}");
            let e = t.ensure_dir(link.as_bytes(), 0o700, None).err().unwrap();
            assert!(e.to_string().contains("a symlink, refused"), "{e}");
            let e = t.write_atomic(format!("{link}/f").as_bytes(), b"x", 0o644);
            assert!(e.is_err());
            assert!(t.remove_tree(format!("{link}/f").as_bytes()).is_err());
            let mut buf = [0u8; 64];
            let r = t.read_small(format!("{link}/f").as_bytes(), &mut buf);
            assert_eq!(r.err(), Some(Errno::LOOP));
            assert!(t.sub(link.as_bytes()).is_err());
            assert!(!t.is_real_dir(format!("{link}/f").as_bytes()));
        }
        // The links themselves are files of the tree: removed, not followed.
        t.remove_tree(b"a/abs").unwrap();
        assert!(!d.join("root/a/abs").exists());
        assert_eq!(std::fs::read(d.join("out/f")).unwrap(), b"outside");
        assert_eq!(std::fs::read_dir(d.join("out")).unwrap().count(), 1);
        // Through real directories, all of it works.
        let (_, made) = t.ensure_dir(b"a/b/c", 0o750, None).unwrap();
        assert!(made);
        t.write_atomic(b"a/b/c/f", b"data", 0o600).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(t.read_small(b"a/b/c/f", &mut buf).unwrap(), b"data");
        t.rename(b"a/b/c/f", b"a/g").unwrap();
        assert!(t.exists(b"a/g") && !t.exists(b"a/b/c/f"));
        t.remove(b"a/g", RemoveKind::NonDir).unwrap();
        t.remove(b"a/g", RemoveKind::NonDir).unwrap();
        t.remove_tree(b"a/b").unwrap();
        assert!(!d.join("root/a/b").exists());
        std::fs::remove_dir_all(&d).unwrap();
    }

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
