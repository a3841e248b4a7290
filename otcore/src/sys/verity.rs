//! fs-verity: the digest the kernel keeps for a verity-enabled file.

use super::{check, AsFd, SysResult};

/// From the kernel's `uapi/linux/fsverity.h`; `linux-raw-sys` does not
/// generate that header (only the ioctl number).
pub const FS_VERITY_HASH_ALG_SHA256: u16 = 1;
pub const FS_VERITY_HASH_ALG_SHA512: u16 = 2;

/// The largest digest (SHA-512).
pub const VERITY_MAX_DIGEST: usize = 64;

/// `struct fsverity_digest` with room for the largest digest.
#[repr(C)]
struct RawDigest {
    algorithm: u16,
    size: u16,
    digest: [u8; VERITY_MAX_DIGEST],
}

/// A file's fs-verity digest, as `FS_IOC_MEASURE_VERITY` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerityDigest {
    /// `FS_VERITY_HASH_ALG_*`.
    pub algorithm: u16,
    len: usize,
    digest: [u8; VERITY_MAX_DIGEST],
}

impl VerityDigest {
    pub fn bytes(&self) -> &[u8] {
        &self.digest[..self.len]
    }
}

/// `ioctl(FS_IOC_MEASURE_VERITY)`: `ENODATA` when the file has no verity,
/// `EOPNOTSUPP` or `ENOTTY` when its filesystem (or kernel) has none.
pub fn measure_verity(fd: impl AsFd) -> SysResult<VerityDigest> {
    let mut raw = RawDigest {
        algorithm: 0,
        // In: the room we have; out: the digest's size.
        size: VERITY_MAX_DIGEST as u16,
        digest: [0; VERITY_MAX_DIGEST],
    };
    let req = linux_raw_sys::ioctl::FS_IOC_MEASURE_VERITY;
    // SAFETY: `raw` is a `struct fsverity_digest` followed by the
    // `size` bytes the kernel may write, alive for the call.
    check(unsafe { libc::ioctl(fd.as_fd().raw(), req as _, &mut raw as *mut RawDigest) })?;
    Ok(VerityDigest {
        algorithm: raw.algorithm,
        len: usize::from(raw.size).min(VERITY_MAX_DIGEST),
        digest: raw.digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the filesystem under the test's temporary directory, a
    /// plain file has no verity: the call fails, with one of the documented
    /// errors (this machine's kernel has no fs-verity at all).
    #[test]
    fn a_plain_file_has_no_verity() {
        use std::os::unix::ffi::OsStrExt;
        let p = std::env::temp_dir().join(std::format!("otcore-verity-{}", std::process::id()));
        std::fs::write(&p, b"x").unwrap();
        let fd = crate::sys::open(p.as_os_str().as_bytes(), crate::sys::OFlags::RDONLY, 0).unwrap();
        let r = measure_verity(&fd);
        std::fs::remove_file(&p).unwrap();
        let e = r.unwrap_err();
        assert!(
            [
                crate::sys::Errno::NODATA,
                crate::sys::Errno::OPNOTSUPP,
                crate::sys::Errno::NOTTY
            ]
            .contains(&e),
            "{e:?}"
        );
    }
}
