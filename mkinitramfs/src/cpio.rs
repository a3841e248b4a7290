//! A writer for the `newc` cpio format, the one the kernel unpacks into its
//! initial rootfs (Documentation/driver-api/early-userspace/buffer-format.rst).
//!
//! Every entry is a 110-byte ASCII header (`070701` then 13 eight-digit hex
//! fields), the NUL-terminated name padded to 4 bytes, then the data padded
//! to 4 bytes; `TRAILER!!!` ends the archive. Writing it ourselves means no
//! `cpio` tool, and archives that are byte-for-byte reproducible (fixed
//! mtime, uid 0, inode numbers in order of appearance). The entries go in
//! the order they are added, parents created first when missing: the image
//! builder adds them sorted; the QEMU harness uses it for its other images.

use std::collections::BTreeSet;

/// File type bits of `st_mode`.
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// An archive being built in memory (initramfs images are small).
#[derive(Default)]
pub struct Archive {
    buf: Vec<u8>,
    next_ino: u32,
    /// Directories already written, so parents are created once, first.
    dirs: BTreeSet<String>,
    /// Regular files and their sizes, in the order added, for listings.
    pub files: Vec<(String, u64)>,
}

fn pad4(buf: &mut Vec<u8>) {
    while buf.len() % 4 != 0 {
        buf.push(0);
    }
}

/// `/a/b/` → `a/b`: archive names are relative, like those of `cpio -H newc`.
fn clean(path: &str) -> String {
    path.trim_matches('/').to_string()
}

impl Archive {
    pub fn new() -> Archive {
        Archive {
            next_ino: 1,
            ..Archive::default()
        }
    }

    fn entry(&mut self, name: &str, mode: u32, nlink: u32, rdev: (u32, u32), data: &[u8]) {
        let ino = self.next_ino;
        self.next_ino += 1;
        let fields = [
            ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime: fixed, for reproducible archives
            data.len() as u32,
            0, // devmajor
            0, // devminor
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0, // check (unused by newc)
        ];
        self.buf.extend_from_slice(b"070701");
        for f in fields {
            self.buf.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        pad4(&mut self.buf);
        self.buf.extend_from_slice(data);
        pad4(&mut self.buf);
    }

    /// Create the parent directories of `name` that are not in the archive yet.
    fn parents(&mut self, name: &str) {
        let mut at = 0;
        while let Some(i) = name[at..].find('/') {
            let dir = &name[..at + i];
            if !self.dirs.contains(dir) {
                self.dirs.insert(dir.to_string());
                self.entry(dir, S_IFDIR | 0o755, 2, (0, 0), &[]);
            }
            at += i + 1;
        }
    }

    /// A directory (and its parents).
    pub fn dir(&mut self, path: &str, perm: u32) {
        let name = clean(path);
        self.parents(&name);
        if self.dirs.insert(name.clone()) {
            self.entry(&name, S_IFDIR | perm, 2, (0, 0), &[]);
        }
    }

    /// A regular file with the given contents and permissions.
    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) {
        let name = clean(path);
        self.parents(&name);
        self.entry(&name, S_IFREG | perm, 1, (0, 0), data);
        self.files.push((format!("/{name}"), data.len() as u64));
    }

    /// A symbolic link `path` → `target`.
    pub fn symlink(&mut self, path: &str, target: &str) {
        let name = clean(path);
        self.parents(&name);
        self.entry(&name, S_IFLNK | 0o777, 1, (0, 0), target.as_bytes());
    }

    /// A character device node (e.g. `/dev/console`, 5:1), so the kernel can
    /// open the console for `/init` before anything mounts devtmpfs.
    pub fn char_dev(&mut self, path: &str, perm: u32, major: u32, minor: u32) {
        let name = clean(path);
        self.parents(&name);
        self.entry(&name, S_IFCHR | perm, 1, (major, minor), &[]);
    }

    /// Close the archive and return its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, 1, (0, 0), &[]);
        // The kernel accepts any length; pad to 512 like cpio(1) does.
        while self.buf.len() % 512 != 0 {
            self.buf.push(0);
        }
        self.buf
    }
}

/// Read an archive back (tests).
#[cfg(test)]
pub(crate) mod read {
    /// One entry read back: (name, mode, rdev, data).
    pub(crate) type Entry = (String, u32, (u32, u32), Vec<u8>);

    pub(crate) fn parse(mut b: &[u8]) -> Vec<Entry> {
        let mut out = vec![];
        let start_len = b.len();
        loop {
            assert_eq!(&b[..6], b"070701");
            let f = |i: usize| {
                u32::from_str_radix(std::str::from_utf8(&b[6 + 8 * i..14 + 8 * i]).unwrap(), 16)
                    .unwrap()
            };
            let (mode, size, rmaj, rmin, namesize) =
                (f(1), f(6) as usize, f(9), f(10), f(11) as usize);
            let name = String::from_utf8(b[110..110 + namesize - 1].to_vec()).unwrap();
            let off = start_len - b.len();
            let data_start = (off + 110 + namesize).div_ceil(4) * 4 - off;
            let data = b[data_start..data_start + size].to_vec();
            let next = (off + data_start + size).div_ceil(4) * 4 - off;
            if name == "TRAILER!!!" {
                return out;
            }
            out.push((name, mode, (rmaj, rmin), data));
            b = &b[next..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::read::parse;
    use super::*;

    #[test]
    fn round_trip_with_parents_and_nodes() {
        let mut a = Archive::new();
        a.char_dev("/dev/console", 0o600, 5, 1);
        a.file("/lib/modules/6.1/kernel/fs/x.ko", 0o644, b"hello");
        a.symlink("/bin/sh", "busybox");
        a.dir("/lib", 0o755);
        let bytes = a.finish();
        assert_eq!(bytes.len() % 512, 0);
        let e = parse(&bytes);
        let names: Vec<_> = e.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "dev",
                "dev/console",
                "lib",
                "lib/modules",
                "lib/modules/6.1",
                "lib/modules/6.1/kernel",
                "lib/modules/6.1/kernel/fs",
                "lib/modules/6.1/kernel/fs/x.ko",
                "bin",
                "bin/sh"
            ]
        );
        assert_eq!(e[1].1, S_IFCHR | 0o600);
        assert_eq!(e[1].2, (5, 1));
        assert_eq!(e[7].3, b"hello");
        assert_eq!(e[9].3, b"busybox");
    }

    /// The `cpio` tool, when present, lists the same entries.
    #[test]
    fn cpio_tool_agrees() {
        let Ok(out) = std::process::Command::new("cpio").arg("--version").output() else {
            return;
        };
        if !out.status.success() {
            return;
        }
        let mut a = Archive::new();
        a.file("/init", 0o755, b"#!/bin/sh\n");
        a.char_dev("/dev/console", 0o600, 5, 1);
        let dir = std::env::temp_dir().join(format!("cpio-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("a.cpio");
        std::fs::write(&f, a.finish()).unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("cpio -t < {}", f.display()))
            .output()
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "init\ndev\ndev/console\n"
        );
    }
}
