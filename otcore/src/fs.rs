//! The filesystem helpers both tools share: one atomic writer, one directory
//! creator, one tree deleter. Each works on descriptors, never follows a
//! symlink it did not ask for, and names the operation, the path and the
//! errno when it fails.

#![forbid(unsafe_code)]

use core::fmt;

use crate::path::PathBuf;
use crate::sys::{self, AsFd, BorrowedFd, EntryType, Errno, Fd, OFlags, RemoveKind, Stat};

/// A failed operation on a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsError {
    pub op: &'static str,
    pub path: PathBuf,
    pub errno: Errno,
}

impl FsError {
    // One out-of-line copy: errors are built in many places.
    #[inline(never)]
    pub fn new(op: &'static str, path: &[u8], errno: Errno) -> FsError {
        FsError {
            op,
            path: PathBuf::from_lossy(path),
            errno,
        }
    }
}

/// `create /run/x.tmp: Permission denied (EACCES)`.
impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.op, self.path, self.errno)
    }
}

/// Attach an operation and a path to a failed system call.
pub trait Context<T> {
    fn ctx(self, op: &'static str, path: &[u8]) -> Result<T, FsError>;
}

impl<T> Context<T> for sys::SysResult<T> {
    fn ctx(self, op: &'static str, path: &[u8]) -> Result<T, FsError> {
        self.map_err(|e| FsError::new(op, path, e))
    }
}

/// `path` split into its directory and its last component
/// (`/a/b` → `/a`, `b`; `/a` → `/`, `a`; `a` → `.`, `a`).
pub fn split_parent(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(0) => (b"/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (b".", path),
    }
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW);

/// Make `path` a directory with `mode` if nothing is there; `Ok(true)` if it
/// was made, `Ok(false)` if a real directory was there already (kept as it
/// is). Anything else in its place, a symlink included, is `EEXIST`.
pub fn make_dir(path: &[u8], mode: u32) -> sys::SysResult<bool> {
    match sys::mkdir(path, mode) {
        Ok(()) => Ok(true),
        Err(Errno::EXIST) => match sys::lstat(path)?.is_dir() {
            true => Ok(false),
            false => Err(Errno::EXIST),
        },
        Err(e) => Err(e),
    }
}

/// The operation to name when [`make_dir`] fails with `errno`.
pub fn make_dir_op(errno: Errno) -> &'static str {
    if errno == Errno::EXIST {
        "mkdir (exists, not a directory)"
    } else {
        "mkdir"
    }
}

/// Who owns a directory [`ensure_dir_at`] creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Whoever creates it (the caller's uid and gid).
    Caller,
    /// Exactly this uid and gid.
    Is(u32, u32),
}

/// Make `name` in `dir` a directory with exactly `mode` (and `owner`), and
/// open it. An existing real directory is kept and given that mode and
/// owner through its descriptor (never by path, so a swapped-in file is
/// never changed); a symlink or anything else in its place is refused.
pub fn ensure_dir_at(
    dir: BorrowedFd<'_>,
    name: &[u8],
    mode: u32,
    owner: Owner,
    shown: &[u8],
) -> Result<Fd, FsError> {
    match sys::mkdir_at(dir, name, mode) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(FsError::new("mkdir", shown, e)),
    }
    let fd = match sys::open_at(dir, name, DIR_FLAGS, 0) {
        Ok(fd) => fd,
        Err(Errno::LOOP | Errno::NOTDIR) => {
            return Err(FsError::new(
                "exists and is not a directory (a symlink?):",
                shown,
                Errno::NOTDIR,
            ))
        }
        Err(e) => return Err(FsError::new("open directory", shown, e)),
    };
    let st = sys::fstat(&fd).ctx("stat", shown)?;
    if let Owner::Is(uid, gid) = owner {
        if st.uid != uid || st.gid != gid {
            sys::fchown(&fd, uid, gid).ctx("chown", shown)?;
        }
    }
    // mkdir is subject to the umask, and an existing directory may be off.
    if st.permissions() != mode {
        sys::fchmod(&fd, mode).ctx("chmod", shown)?;
    }
    Ok(fd)
}

/// [`ensure_dir_at`] by path: the parent is resolved as usual, the last
/// component never through a symlink.
pub fn ensure_dir(path: &[u8], mode: u32, owner: Owner) -> Result<Fd, FsError> {
    let (parent, name) = split_parent(path);
    let dir =
        sys::open(parent, OFlags::RDONLY | OFlags::DIRECTORY, 0).ctx("open directory", parent)?;
    ensure_dir_at(dir.as_fd(), name, mode, owner, path)
}

/// Replace `name` in `dir` atomically with `data`: a temporary file created
/// with `O_EXCL` (a stale one is removed first, so a planted link is never
/// written through), written, given `mode`, fsynced, renamed over `name`,
/// and the directory fsynced. A crash leaves the old file or the new one.
pub fn write_atomic_at(
    dir: BorrowedFd<'_>,
    name: &[u8],
    data: &[u8],
    mode: u32,
    shown: &[u8],
) -> Result<(), FsError> {
    let mut tmp = PathBuf::from_lossy(b".");
    tmp.push_raw(name)
        .map_err(|_| FsError::new("create temporary for", shown, Errno::NAMETOOLONG))?;
    tmp.push_raw(b".tmp")
        .map_err(|_| FsError::new("create temporary for", shown, Errno::NAMETOOLONG))?;
    let tmp = tmp.as_bytes();
    let flags = OFlags::WRONLY | OFlags::CREAT | OFlags::EXCL | OFlags::NOFOLLOW;
    let fd = match sys::open_at(dir, tmp, flags, mode) {
        Err(Errno::EXIST) => {
            sys::unlink_at(dir, tmp, RemoveKind::NonDir)
                .ctx("remove stale temporary for", shown)?;
            sys::open_at(dir, tmp, flags, mode)
        }
        r => r,
    }
    .ctx("create temporary for", shown)?;
    let written = sys::write_all(&fd, data)
        .ctx("write", shown)
        .and_then(|()| sys::fchmod(&fd, mode).ctx("chmod", shown))
        .and_then(|()| sys::fsync(&fd).ctx("fsync", shown))
        .and_then(|()| sys::rename_at(dir, tmp, name).ctx("rename temporary over", shown));
    drop(fd);
    if written.is_err() {
        let _ = sys::unlink_at(dir, tmp, RemoveKind::NonDir);
        return written;
    }
    sys::fsync(dir).ctx("fsync directory of", shown)
}

/// [`write_atomic_at`] by path (the parent directory is resolved as usual).
pub fn write_atomic(path: &[u8], data: &[u8], mode: u32) -> Result<(), FsError> {
    let (parent, name) = split_parent(path);
    let dir =
        sys::open(parent, OFlags::RDONLY | OFlags::DIRECTORY, 0).ctx("open directory", parent)?;
    write_atomic_at(dir.as_fd(), name, data, mode, path)
}

/// What [`remove_tree`] and [`empty_dir`] did, and what they could not do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removal {
    /// Entries removed (files, links, directories).
    pub removed: u64,
    /// Entries that could not be removed.
    pub left: u64,
    /// Mount points met and left alone (never crossed; not failures).
    pub mounts: u64,
    /// The first entry left, and why.
    pub first: Option<FsError>,
}

impl Removal {
    pub fn is_complete(&self) -> bool {
        self.left == 0
    }

    /// Count an entry that stays, naming it if it is the first.
    pub fn leave(&mut self, op: &'static str, path: &[u8], errno: Errno) {
        self.left += 1;
        if self.first.is_none() {
            self.first = Some(FsError::new(op, path, errno));
        }
    }
}

/// Directories whose identity a removal remembers on the way down, to check
/// every step back up (a tree moved under our feet stops the removal rather
/// than let it climb somewhere else). Deeper levels are still removed; their
/// way up is checked against the device and the parent's entry only.
const CHECKED_LEVELS: usize = 512;
/// Entries that could not be removed and must not be retried.
const MAX_LEFT: usize = 64;

/// Remove the tree at `path`: a file or symlink is unlinked (a symlink is
/// never followed), a directory is emptied at any depth and removed. Never
/// crosses into another mount. A missing path is a complete removal.
pub fn remove_tree(path: &[u8]) -> Removal {
    let mut r = Removal::default();
    let (parent, name) = split_parent(path);
    match sys::open(parent, OFlags::RDONLY | OFlags::DIRECTORY, 0) {
        Ok(dir) => remove_tree_at(dir.as_fd(), name, path, &mut r),
        Err(Errno::NOENT) => {}
        Err(e) => r.leave("open directory", parent, e),
    }
    r
}

/// [`remove_tree`] of `name` in the open directory `dir`, adding to `r`
/// (`shown` names it in messages).
pub fn remove_tree_at(dir: BorrowedFd<'_>, name: &[u8], shown: &[u8], r: &mut Removal) {
    let before = r.left;
    match sys::lstat_at(dir, name) {
        Err(Errno::NOENT) => {}
        Err(e) => r.leave("lstat", shown, e),
        Ok(st) if st.is_dir() => {
            if sys::is_mount_root_at(dir, name) == Some(true) {
                r.mounts += 1;
                r.leave("remove (a mount point)", shown, Errno::BUSY);
                return;
            }
            match sys::open_at(dir, name, DIR_FLAGS, 0) {
                Ok(top) => remove_contents(top, st, shown, r),
                Err(e) => r.leave("open directory", shown, e),
            }
            if r.left == before {
                match sys::unlink_at(dir, name, RemoveKind::Dir) {
                    Ok(()) => r.removed += 1,
                    Err(e) => r.leave("remove", shown, e),
                }
            }
        }
        Ok(_) => match sys::unlink_at(dir, name, RemoveKind::NonDir) {
            Ok(()) => r.removed += 1,
            Err(e) => r.leave("remove", shown, e),
        },
    }
}

/// Remove everything inside the open directory `dir` (not `dir` itself),
/// at any depth, on `dir`'s filesystem only. `shown` names it in messages.
pub fn empty_dir(dir: Fd, shown: &[u8]) -> Removal {
    let mut r = Removal::default();
    match sys::fstat(&dir) {
        Ok(st) => remove_contents(dir, st, shown, &mut r),
        Err(e) => r.leave("stat", shown, e),
    }
    r
}

/// Where [`remove_contents`] is in the tree: the relative path (while it
/// fits) and the identities of the directories above.
struct Descent {
    path: PathBuf,
    /// Levels below the last one `path` could hold.
    unnamed: usize,
    depth: usize,
    above: heapless::Vec<(u64, u64), CHECKED_LEVELS>,
}

impl Descent {
    /// The path of entry `name` here, for a message (cut when too long).
    #[cold]
    fn entry(&self, name: &[u8]) -> PathBuf {
        self.path.join(name).unwrap_or_else(|_| self.path.clone())
    }

    fn down(&mut self, name: &[u8], id: (u64, u64)) {
        if self.unnamed == 0 && self.path.push(name).is_err() {
            self.unnamed = 1;
        } else if self.unnamed > 0 {
            self.unnamed += 1;
        }
        self.depth += 1;
        let _ = self.above.push(id);
    }
}

/// Empty the directory `top` (opened, with `top_st` its `fstat`) without
/// recursion: walk down one directory at a time and back up through `..`,
/// so the depth is limited by nothing but the filesystem.
fn remove_contents(top: Fd, top_st: Stat, shown: &[u8], r: &mut Removal) {
    let dev = top_st.dev;
    let mut walk = Descent {
        path: PathBuf::from_lossy(shown),
        unnamed: 0,
        depth: 0,
        above: heapless::Vec::new(),
    };
    // Inode numbers (on `dev`) that stay: never retried, never descended.
    let mut stuck: heapless::Vec<u64, MAX_LEFT> = heapless::Vec::new();
    let mut cur = top;
    let mut cur_id = top_st.id();
    loop {
        // One pass from the first entry (an earlier pass, or the search for
        // a name, may have left the descriptor anywhere): remove what is not
        // a directory, stop at the first directory still to empty.
        rewind(&cur, &walk, r);
        let mut next: Option<(PathBuf, (u64, u64))> = None;
        let mut full = false;
        let scan = sys::for_each_entry(&cur, |e| {
            if stuck.contains(&e.ino) {
                return true;
            }
            // Why an entry stays, counted and named (its path built only then).
            let mut stay = |op: &'static str, errno: Errno| {
                r.leave(op, walk.entry(e.name).as_bytes(), errno);
                full |= stuck.push(e.ino).is_err();
                !full
            };
            let is_dir = match e.kind {
                EntryType::Dir => true,
                EntryType::Unknown => match sys::lstat_at(&cur, e.name) {
                    Ok(st) => st.is_dir(),
                    Err(err) => return stay("lstat", err),
                },
                _ => false,
            };
            if !is_dir {
                return match sys::unlink_at(&cur, e.name, RemoveKind::NonDir) {
                    Ok(()) => {
                        r.removed += 1;
                        true
                    }
                    Err(err) => stay("remove", err),
                };
            }
            let crossing = match sys::lstat_at(&cur, e.name) {
                Ok(st) if st.dev != dev => true,
                Ok(st) if st.is_dir() => sys::is_mount_root_at(&cur, e.name) == Some(true),
                Ok(_) => return true, // replaced meanwhile: the next pass sees it
                Err(err) => return stay("lstat", err),
            };
            if crossing {
                r.mounts += 1;
                full |= stuck.push(e.ino).is_err();
                return !full;
            }
            match PathBuf::from(e.name) {
                Ok(name) => next = Some((name, (dev, e.ino))),
                Err(_) => return stay("remove", Errno::NAMETOOLONG),
            }
            false
        });
        if let Err(e) = scan {
            r.leave("read directory", walk.path.as_bytes(), e);
        }
        if full {
            r.leave(
                "remove (too many entries left, stopping)",
                walk.path.as_bytes(),
                Errno::NOTEMPTY,
            );
            return;
        }
        if let Some((name, id)) = next {
            let shown_entry = walk
                .path
                .join(name.as_bytes())
                .unwrap_or_else(|_| walk.path.clone());
            let opened = sys::open_at(&cur, name.as_bytes(), DIR_FLAGS, 0)
                .and_then(|fd| sys::fstat(&fd).map(|st| (fd, st)));
            match opened {
                Ok((fd, st)) if st.id() == id => {
                    walk.down(name.as_bytes(), cur_id);
                    cur = fd;
                    cur_id = id;
                }
                // Replaced between the scan and the open: scan again.
                Ok(_) => {}
                Err(e) => {
                    r.leave("open directory", shown_entry.as_bytes(), e);
                    if stuck.push(id.1).is_err() {
                        r.leave(
                            "remove (too many entries left, stopping)",
                            walk.path.as_bytes(),
                            Errno::NOTEMPTY,
                        );
                        return;
                    }
                }
            }
            continue;
        }
        // `cur` is as empty as it gets: go back up and remove it.
        if walk.depth == 0 {
            return;
        }
        let Some(parent) = climb(&cur, cur_id, &mut walk, r) else {
            return;
        };
        let parent_id = match sys::fstat(&parent) {
            Ok(st) => st.id(),
            Err(e) => {
                r.leave("stat", walk.path.as_bytes(), e);
                return;
            }
        };
        let name = match name_in(&parent, cur_id.1, &walk) {
            Some(n) => n,
            None => {
                r.leave(
                    "find (moved during removal)",
                    walk.path.as_bytes(),
                    Errno::STALE,
                );
                return;
            }
        };
        let here = walk.path.clone();
        match sys::unlink_at(&parent, name.as_bytes(), RemoveKind::Dir) {
            Ok(()) => r.removed += 1,
            Err(e) => {
                r.leave("remove", here.as_bytes(), e);
                if stuck.push(cur_id.1).is_err() {
                    r.leave(
                        "remove (too many entries left, stopping)",
                        here.as_bytes(),
                        Errno::NOTEMPTY,
                    );
                    return;
                }
            }
        }
        if walk.unnamed > 0 {
            walk.unnamed -= 1;
        } else {
            walk.path.pop();
        }
        walk.depth -= 1;
        cur = parent;
        cur_id = parent_id;
    }
}

/// Read `dir` again from its first entry.
fn rewind(dir: &Fd, walk: &Descent, r: &mut Removal) {
    if let Err(e) = sys::seek_start(dir) {
        r.leave("rewind directory", walk.path.as_bytes(), e);
    }
}

/// Open the parent of `cur` through `..` and check it is the directory we
/// came from: its identity, when remembered, else its device. `None` (with
/// the reason recorded) stops the removal.
fn climb(cur: &Fd, cur_id: (u64, u64), walk: &mut Descent, r: &mut Removal) -> Option<Fd> {
    let parent = match sys::open_at(cur, b"..", OFlags::RDONLY | OFlags::DIRECTORY, 0) {
        Ok(p) => p,
        Err(e) => {
            r.leave("open parent of", walk.path.as_bytes(), e);
            return None;
        }
    };
    let st = match sys::fstat(&parent) {
        Ok(st) => st,
        Err(e) => {
            r.leave("stat parent of", walk.path.as_bytes(), e);
            return None;
        }
    };
    let expected = if walk.depth <= CHECKED_LEVELS {
        walk.above.pop()
    } else {
        None
    };
    let moved = match expected {
        Some(id) => st.id() != id,
        None => st.dev != cur_id.0,
    };
    if moved {
        r.leave(
            "climb (moved during removal)",
            walk.path.as_bytes(),
            Errno::STALE,
        );
        return None;
    }
    Some(parent)
}

/// The name of the entry with inode `ino` in `dir`: the last component of
/// the walk's path when it holds one, else found by scanning `dir`.
fn name_in(dir: &Fd, ino: u64, walk: &Descent) -> Option<PathBuf> {
    if walk.unnamed == 0 {
        let name = walk.path.file_name();
        return match sys::lstat_at(dir, name) {
            Ok(st) if st.ino == ino => PathBuf::from(name).ok(),
            _ => None,
        };
    }
    let mut found = None;
    let _ = sys::for_each_entry(dir, |e| {
        if e.ino == ino {
            found = PathBuf::from(e.name).ok();
        }
        found.is_none()
    });
    found
}

impl fmt::Display for Removal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.first {
            None => write!(f, "{} removed", self.removed)?,
            Some(e) => write!(
                f,
                "{} removed, {} left; first: {e}",
                self.removed, self.left
            )?,
        }
        if self.mounts > 0 {
            write!(f, "; {} mount points left alone", self.mounts)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
    use std::path::Path;

    /// A fresh directory under the system's temporary directory.
    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(std::format!("otcore-fs-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn open_dir(path: &[u8]) -> Result<Fd, Errno> {
        sys::open(path, DIR_FLAGS, 0)
    }

    fn b(p: &Path) -> &[u8] {
        use std::os::unix::ffi::OsStrExt;
        p.as_os_str().as_bytes()
    }

    #[test]
    fn removes_a_tree_deeper_than_path_max_without_following_links() {
        const DEPTH: usize = 600;
        let d = scratch("deep");
        let outside = d.join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), b"x").unwrap();
        let top = d.join("tree");
        std::fs::create_dir(&top).unwrap();
        // 600 levels of 16-byte names: about 10 KiB of path, past PATH_MAX
        // and past the levels whose way up is remembered.
        let mut dir = sys::open(b(&top), DIR_FLAGS, 0).unwrap();
        for i in 0..DEPTH {
            std::fs::write(std::format!("/proc/self/fd/{}/f", fd_num(&dir)), b"data").unwrap();
            if i % 100 == 0 {
                let link = std::format!("/proc/self/fd/{}/link", fd_num(&dir));
                symlink(&outside, link).unwrap();
            }
            let name = std::format!("level-{i:09}");
            sys::mkdir_at(&dir, name.as_bytes(), 0o755).unwrap();
            dir = sys::open_at(&dir, name.as_bytes(), DIR_FLAGS, 0).unwrap();
        }
        drop(dir);
        let r = remove_tree(b(&top));
        assert!(r.is_complete(), "{r}");
        assert_eq!(r.removed, DEPTH as u64 * 2 + DEPTH as u64 / 100 + 1);
        assert!(!top.exists());
        assert!(outside.join("keep").exists(), "a symlink was followed");
        std::fs::remove_dir_all(&d).unwrap();
    }

    fn fd_num(fd: &Fd) -> i32 {
        // The test reaches the descriptor through /proc, as std cannot take ours.
        let mut n = -1;
        let me = std::fs::read_dir("/proc/self/fd").unwrap();
        let want = sys::fstat(fd).unwrap().id();
        for e in me.flatten() {
            let Ok(num) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if let Ok(m) = std::fs::metadata(e.path()) {
                if (m.dev(), m.ino()) == want && m.is_dir() {
                    n = num;
                }
            }
        }
        n
    }

    #[test]
    fn a_symlinked_top_is_unlinked_not_followed() {
        let d = scratch("toplink");
        std::fs::create_dir(d.join("real")).unwrap();
        std::fs::write(d.join("real/keep"), b"x").unwrap();
        symlink(d.join("real"), d.join("link")).unwrap();
        let r = remove_tree(b(&d.join("link")));
        assert!(r.is_complete() && r.removed == 1, "{r}");
        assert!(d.join("real/keep").exists());
        assert!(remove_tree(b(&d.join("missing"))).is_complete());
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// Make `dir` refuse removals of its entries: read-only for a user, the
    /// immutable attribute for root. Returns how to undo it, or `None` where
    /// the filesystem has no attributes (tmpfs).
    fn lock(dir: &Path) -> Option<impl FnOnce()> {
        let fd = open_dir(b(dir)).unwrap();
        let root = sys::geteuid() == 0;
        if root {
            let flags = sys::inode_flags(&fd).ok()?;
            sys::set_inode_flags(&fd, flags | sys::InodeFlags::IMMUTABLE).ok()?;
        } else {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        }
        let dir = dir.to_path_buf();
        Some(move || {
            if root {
                let flags = sys::inode_flags(&fd).unwrap();
                sys::set_inode_flags(&fd, flags.without(sys::InodeFlags::IMMUTABLE)).unwrap();
            } else {
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        })
    }

    #[test]
    fn reports_what_it_cannot_remove_and_removes_the_rest() {
        let d = scratch("stuck");
        std::fs::create_dir_all(d.join("t/locked/sub")).unwrap();
        std::fs::write(d.join("t/locked/f"), b"x").unwrap();
        std::fs::create_dir_all(d.join("t/free/deeper")).unwrap();
        let Some(unlock) = lock(&d.join("t/locked")) else {
            std::fs::remove_dir_all(&d).unwrap();
            return;
        };
        let r = remove_tree(b(&d.join("t")));
        unlock();
        assert!(!r.is_complete());
        assert!(!d.join("t/free").exists());
        assert!(d.join("t/locked/f").exists());
        let first = r.first.unwrap();
        assert!(matches!(first.errno, Errno::ACCES | Errno::PERM), "{first}");
        assert!(
            first.path.as_bytes().starts_with(b(&d.join("t/locked"))),
            "{first}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn empties_a_directory_and_keeps_it() {
        let d = scratch("empty");
        std::fs::create_dir_all(d.join("a/b/c")).unwrap();
        std::fs::write(d.join("a/b/c/f"), b"x").unwrap();
        std::fs::write(d.join("g"), b"x").unwrap();
        let r = empty_dir(open_dir(b(&d)).unwrap(), b(&d));
        assert!(r.is_complete() && r.removed == 5, "{r}");
        assert!(d.exists() && std::fs::read_dir(&d).unwrap().next().is_none());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn atomic_write_never_writes_through_a_planted_link() {
        let d = scratch("atomic");
        let target = d.join("victim");
        std::fs::write(&target, b"precious").unwrap();
        // A stale temporary that is a hard link, and one that is a symlink.
        std::fs::hard_link(&target, d.join(".marker.tmp")).unwrap();
        write_atomic(b(&d.join("marker")), b"new", 0o640).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        assert_eq!(std::fs::read(d.join("marker")).unwrap(), b"new");
        let mode = std::fs::metadata(d.join("marker"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o640);
        symlink(&target, d.join(".marker.tmp")).unwrap();
        write_atomic(b(&d.join("marker")), b"newer", 0o644).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        assert_eq!(std::fs::read(d.join("marker")).unwrap(), b"newer");
        assert!(!d.join(".marker.tmp").exists());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn ensure_dir_sets_the_mode_by_descriptor_and_refuses_links() {
        let d = scratch("ensure");
        let p = d.join("state");
        ensure_dir(b(&p), 0o700, Owner::Caller).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
            0o700
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
        ensure_dir(b(&p), 0o750, Owner::Caller).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
            0o750
        );
        let elsewhere = d.join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o755)).unwrap();
        symlink(&elsewhere, d.join("link")).unwrap();
        let e = ensure_dir(b(&d.join("link")), 0o700, Owner::Caller).unwrap_err();
        assert_eq!(e.errno, Errno::NOTDIR);
        assert_eq!(
            std::fs::metadata(&elsewhere).unwrap().permissions().mode() & 0o7777,
            0o755
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
