//! Reading directories with `getdents64(2)`, without `opendir`'s heap buffer.

use core::mem::offset_of;

use linux_raw_sys::general::{self as g, linux_dirent64};

use super::{open, AsFd, Errno, OFlags, SysResult};

/// The type of a directory entry, as `getdents64` reports it (`d_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryType {
    Dir,
    Symlink,
    File,
    /// Devices, FIFOs, sockets.
    Other,
    /// The filesystem does not say: ask `lstat`.
    Unknown,
}

/// One entry of a directory (never `.` or `..`).
#[derive(Debug, Clone, Copy)]
pub struct DirEntry<'a> {
    pub name: &'a [u8],
    pub ino: u64,
    pub kind: EntryType,
}

const INO: usize = offset_of!(linux_dirent64, d_ino);
const RECLEN: usize = offset_of!(linux_dirent64, d_reclen);
const TYPE: usize = offset_of!(linux_dirent64, d_type);
const NAME: usize = offset_of!(linux_dirent64, d_name);

fn entry_type(d_type: u8) -> EntryType {
    match d_type as u32 {
        g::DT_DIR => EntryType::Dir,
        g::DT_LNK => EntryType::Symlink,
        g::DT_REG => EntryType::File,
        g::DT_UNKNOWN => EntryType::Unknown,
        _ => EntryType::Other,
    }
}

/// Call `f` for every entry of the open directory `dir`, from its current
/// position to its end. `f` returns `false` to stop early.
pub fn for_each_entry(dir: impl AsFd, mut f: impl FnMut(DirEntry<'_>) -> bool) -> SysResult<()> {
    let fd = dir.as_fd().raw();
    // 8-byte aligned, as the kernel's records are.
    let mut buf = [0u64; 256];
    loop {
        // SAFETY: `buf` is valid for writes of its size in bytes.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                fd,
                buf.as_mut_ptr().cast::<core::ffi::c_void>(),
                core::mem::size_of_val(&buf),
            )
        };
        if n < 0 {
            return Err(Errno::last());
        }
        if n == 0 {
            return Ok(());
        }
        // SAFETY: the kernel filled the first `n` bytes; u8 has no invalid values.
        let bytes: &[u8] = unsafe { core::slice::from_raw_parts(buf.as_ptr().cast(), n as usize) };
        let mut off = 0usize;
        while off + NAME <= bytes.len() {
            let rec = &bytes[off..];
            let reclen = u16::from_ne_bytes([rec[RECLEN], rec[RECLEN + 1]]) as usize;
            if reclen < NAME || reclen > rec.len() {
                return Err(Errno::IO);
            }
            let name = &rec[NAME..reclen];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            if name != b"." && name != b".." {
                let mut ino = [0u8; 8];
                ino.copy_from_slice(&rec[INO..INO + 8]);
                let entry = DirEntry {
                    name,
                    ino: u64::from_ne_bytes(ino),
                    kind: entry_type(rec[TYPE]),
                };
                if !f(entry) {
                    return Ok(());
                }
            }
            off += reclen;
        }
    }
}

/// Call `f` with the name of every entry of directory `path`.
pub fn for_each_dir_entry(path: &[u8], mut f: impl FnMut(&[u8])) -> SysResult<()> {
    let fd = open(path, OFlags::RDONLY | OFlags::DIRECTORY, 0)?;
    for_each_entry(&fd, |e| {
        f(e.name);
        true
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_a_directory() {
        let mut names = std::vec::Vec::new();
        for_each_dir_entry(b"/proc/self", |n| names.push(n.to_vec())).unwrap();
        assert!(names.iter().any(|n| n == b"cmdline"));
        assert!(!names.iter().any(|n| n == b"." || n == b".."));
        assert_eq!(
            for_each_dir_entry(b"/proc/self/cmdline", |_| {}),
            Err(Errno::NOTDIR)
        );
    }
}
