//! Error numbers: a type of their own, with the kernel's values and names.

use core::fmt;

use linux_raw_sys::errno as e;

/// An error number from a failed system call.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(i32);

pub type SysResult<T> = Result<T, Errno>;

/// Declares the errno constants we use, each with its symbolic name.
macro_rules! errnos {
    ($($name:ident = $c:ident;)*) => {
        impl Errno {
            $(pub const $name: Errno = Errno(e::$c as i32);)*

            /// Short symbolic name (`ENOENT`), for messages that must be greppable.
            pub fn name(self) -> &'static str {
                match self {
                    $(Errno::$name => stringify!($c),)*
                    _ => "errno",
                }
            }
        }
    };
}

errnos! {
    PERM = EPERM;
    NOENT = ENOENT;
    INTR = EINTR;
    IO = EIO;
    NXIO = ENXIO;
    TOOBIG = E2BIG;
    BADF = EBADF;
    AGAIN = EAGAIN;
    NOMEM = ENOMEM;
    ACCES = EACCES;
    FAULT = EFAULT;
    NOTBLK = ENOTBLK;
    BUSY = EBUSY;
    EXIST = EEXIST;
    XDEV = EXDEV;
    NODEV = ENODEV;
    NOTDIR = ENOTDIR;
    ISDIR = EISDIR;
    INVAL = EINVAL;
    MFILE = EMFILE;
    NOTTY = ENOTTY;
    TXTBSY = ETXTBSY;
    FBIG = EFBIG;
    NOSPC = ENOSPC;
    ROFS = EROFS;
    MLINK = EMLINK;
    NAMETOOLONG = ENAMETOOLONG;
    NOSYS = ENOSYS;
    NOTEMPTY = ENOTEMPTY;
    LOOP = ELOOP;
    NOEXEC = ENOEXEC;
    OVERFLOW = EOVERFLOW;
    OPNOTSUPP = EOPNOTSUPP;
    TIMEDOUT = ETIMEDOUT;
    STALE = ESTALE;
    UCLEAN = EUCLEAN;
    DQUOT = EDQUOT;
    NOMEDIUM = ENOMEDIUM;
    NODATA = ENODATA;
    RANGE = ERANGE;
}

impl Errno {
    /// The calling thread's `errno`, right after a failed call.
    pub(super) fn last() -> Errno {
        // SAFETY: musl and glibc both provide a thread-local errno location
        // that is always valid to read.
        Errno(unsafe { *libc::__errno_location() })
    }

    /// An error number a call returned rather than set (`posix_spawn`).
    pub(super) fn from_raw(n: i32) -> Errno {
        Errno(n)
    }

    /// The number itself (for exit codes and tests).
    pub fn raw(self) -> i32 {
        self.0
    }

    /// Human-readable text (`strerror`), without allocating.
    pub fn text(self) -> &'static [u8] {
        // SAFETY: strerror returns a pointer to a static, NUL-terminated
        // string for any input (musl never returns NULL); we only read it.
        unsafe {
            let p = libc::strerror(self.0);
            if p.is_null() {
                return b"unknown error";
            }
            core::ffi::CStr::from_ptr(p).to_bytes()
        }
    }
}

/// `ENOENT` in messages and test output.
impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            "errno" => write!(f, "errno {}", self.0),
            name => f.write_str(name),
        }
    }
}

/// `No such file or directory (ENOENT)`.
impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&crate::path::Lossy(self.text()), f)?;
        f.write_str(" (")?;
        fmt::Debug::fmt(self, f)?;
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_text() {
        assert_eq!(Errno::NOENT.name(), "ENOENT");
        assert_eq!(Errno::NOENT.raw(), 2);
        assert_eq!(
            std::format!("{}", Errno::NOENT),
            "No such file or directory (ENOENT)"
        );
        assert_eq!(std::format!("{:?}", Errno(4095)), "errno 4095");
    }
}
