//! File operations with the guarantees unlock needs: explicit modes, no
//! symlink following, crash safety (write, fsync, rename), bounded reads,
//! and errors that name the operation and the path.

use switchroot::path::{Lossy, PathBuf};
use switchroot::sys::{self, Fd, SysResult, O_DIRECTORY, O_NOFOLLOW, O_RDONLY};

use crate::err;
use crate::error::{Context, Error, Result};

/// Deepest directory nesting [`remove_tree`] descends into: each level holds
/// a descriptor and a stack frame, and no overlay data is nested this deep.
const MAX_DEPTH: u32 = 256;

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
    match path.iter().rposition(|&b| b == b'/') {
        Some(0) => b"/",
        Some(i) => &path[..i],
        None => b".",
    }
}

/// Read a whole small file into `buf`; a file that does not fit is `EFBIG`
/// (report it with [`crate::error::read_error`]).
pub fn read_small<'b>(path: &[u8], buf: &'b mut [u8]) -> SysResult<&'b [u8]> {
    let n = sys::read_file(path, buf)?;
    Ok(&buf[..n])
}

/// Create directory `path` with exactly `mode` (never through a symlink).
/// An existing real directory is accepted and given `mode`; anything else
/// in its place is refused.
pub fn ensure_dir(path: &[u8], mode: u32) -> Result<()> {
    match sys::mkdir(path, mode) {
        Ok(()) | Err(libc::EEXIST) => {}
        Err(e) => return Err(Error::sys("mkdir", path, e)),
    }
    let st = sys::lstat(path).ctx("lstat", path)?;
    if !st.is_dir() {
        return Err(err!(
            "{}: exists and is not a directory (a symlink?), refusing",
            Lossy(path)
        ));
    }
    if st.mode & 0o7777 != mode || st.uid != 0 {
        // mkdir is subject to the umask, and an existing one may be off.
        sys::lchown(path, 0, 0).ctx("chown", path)?;
        sys::chmod(path, mode).ctx("chmod", path)?;
    }
    Ok(())
}

/// fsync a directory (so a rename or mkdir inside it is durable).
pub fn fsync_dir(path: &[u8]) -> Result<()> {
    let fd = sys::open(path, O_RDONLY, 0).ctx("open", path)?;
    sys::fsync(&fd).ctx("fsync", path)
}

/// Replace `path` atomically with `data` (temporary file, fsync, rename, fsync dir).
pub fn write_atomic(path: &[u8], data: &[u8], mode: u32) -> Result<()> {
    let dir = parent(path);
    let name = match path.iter().rposition(|&b| b == b'/') {
        Some(i) => &path[i + 1..],
        None => path,
    };
    let mut tmp_name = PathBuf::from(b".")?;
    tmp_name.push_raw(name)?;
    tmp_name.push_raw(b".tmp")?;
    let tmp = PathBuf::from(dir)?.join(tmp_name.as_bytes())?;
    let tmp = tmp.as_bytes();
    let _ = sys::unlink(tmp);
    let flags = sys::O_WRONLY | sys::O_CREAT | libc::O_EXCL | O_NOFOLLOW;
    let fd = sys::open(tmp, flags, mode).ctx("create", tmp)?;
    sys::write_all(&fd, data).ctx("write", tmp)?;
    sys::fchmod(&fd, mode).ctx("chmod", tmp)?;
    sys::fsync(&fd).ctx("fsync", tmp)?;
    drop(fd);
    sys::rename(tmp, path).ctx("rename", path)?;
    fsync_dir(dir)
}

/// Remove a tree without following symlinks (a link is removed, never what
/// it points to); a missing path is fine. Entries are removed relative to
/// their directory's descriptor, so depth is not limited by path length.
pub fn remove_tree(path: &[u8]) -> Result<()> {
    match sys::lstat(path) {
        Err(libc::ENOENT) => Ok(()),
        Err(e) => Err(Error::sys("lstat", path, e)),
        Ok(st) if st.is_dir() => {
            let fd = sys::open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0)
                .ctx("read directory", path)?;
            remove_contents(&fd, &PathBuf::from(path)?, 0)?;
            drop(fd);
            sys::rmdir(path).ctx("remove", path)
        }
        Ok(_) => sys::unlink(path).ctx("remove", path),
    }
}

/// Empty the open directory `dir`; `shown` is its path, for messages only.
fn remove_contents(dir: &Fd, shown: &PathBuf, depth: u32) -> Result<()> {
    if depth >= MAX_DEPTH {
        return Err(err!(
            "remove {shown}: directories nested deeper than {MAX_DEPTH} levels, refusing"
        ));
    }
    let mut failed: Option<Error> = None;
    sys::for_each_entry_fd(dir, |name| {
        if failed.is_some() {
            return;
        }
        // A path too long to show is named by its directory.
        let child = shown.join(name).unwrap_or_else(|_| shown.clone());
        let c = child.as_bytes();
        let r = sys::lstat_at(dir, name).ctx("lstat", c).and_then(|st| {
            if st.is_dir() {
                let sub = sys::open_dir_at(dir, name).ctx("read directory", c)?;
                remove_contents(&sub, &child, depth + 1)?;
            }
            sys::unlink_at(dir, name, st.is_dir()).ctx("remove", c)
        });
        if let Err(e) = r {
            failed = Some(e);
        }
    })
    .ctx("read directory", shown.as_bytes())?;
    failed.map_or(Ok(()), Err)
}

/// Set the mtime of `path` to now (libostree's "something changed" signal).
pub fn touch(path: &[u8]) -> Result<()> {
    sys::touch(path).ctx("set mtime of", path)
}

/// Set or clear the immutable attribute of a directory (as `chattr [+-]i`).
/// Filesystems without attributes (tmpfs) are fine: there is nothing to change.
pub fn set_immutable(path: &[u8], immutable: bool) -> Result<()> {
    let fd = sys::open(path, O_RDONLY, 0).ctx("open", path)?;
    let flags = match sys::inode_flags(&fd) {
        Ok(f) => f,
        Err(libc::ENOTTY | libc::EOPNOTSUPP | libc::EINVAL) => return Ok(()),
        Err(e) => return Err(Error::sys("read attributes of", path, e)),
    };
    let want = if immutable {
        flags | sys::FS_IMMUTABLE_FL
    } else {
        flags & !sys::FS_IMMUTABLE_FL
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
    let fd = sys::open(path, O_RDONLY, 0)?;
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
    fn remove_tree_is_not_limited_by_path_length_and_never_follows_symlinks() {
        use std::os::unix::ffi::OsStrExt;
        let base = std::env::temp_dir().join(format!("unlock-rm-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let outside = base.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("keep"), b"x").unwrap();
        let tree = base.join("tree");
        // Deeper than PathBuf's 256 bytes: removal works relative to descriptors.
        let deep = (0..30).fold(tree.clone(), |p, i| p.join(format!("dir-{i:02}-xxxxxxxx")));
        std::fs::create_dir_all(&deep).unwrap();
        assert!(deep.as_os_str().len() > switchroot::path::PATH_CAP);
        std::fs::write(deep.join("f"), b"x").unwrap();
        std::os::unix::fs::symlink(&outside, tree.join("link")).unwrap();
        std::os::unix::fs::symlink(&outside, deep.join("link")).unwrap();
        remove_tree(tree.as_os_str().as_bytes()).unwrap();
        assert!(!tree.exists());
        assert!(outside.join("keep").exists(), "a symlink was followed");
        remove_tree(tree.as_os_str().as_bytes()).unwrap();
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn parents() {
        assert_eq!(parent(b"/a/b"), b"/a");
        assert_eq!(parent(b"/a"), b"/");
        assert_eq!(parent(b"a"), b".");
    }
}
