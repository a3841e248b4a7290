//! Errors as text: what we were doing, on what, and why (errno text and
//! name), formatted once into a stack buffer when the error happens.

use core::fmt::{self, Write};

use otcore::out::Text;
use otcore::path::{Lossy, PathBuf, TooLong, PATH_CAP};
use otcore::sys::{Errno, SysResult};

/// A failure: a system call on a path, or a message formatted when it
/// happened (cut, with `…`, past a few hundred bytes).
pub enum Error {
    Sys {
        op: &'static str,
        path: PathBuf,
        errno: Errno,
    },
    Message(Text),
}

pub type Result<T> = core::result::Result<T, Error>;

impl Error {
    /// A message from `format_args!` (see [`err!`](crate::err)).
    pub fn new(args: fmt::Arguments<'_>) -> Error {
        let mut t = Text::new();
        let _ = t.write_fmt(args);
        Error::Message(t)
    }

    /// `op path: strerror (ENAME)`.
    pub fn sys(op: &'static str, path: &[u8], errno: Errno) -> Error {
        Error::Sys {
            op,
            path: PathBuf::from_lossy(path),
            errno,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Sys { op, path, errno } => write!(f, "{op} {path}: {errno}"),
            Error::Message(t) => t.fmt(f),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({self})")
    }
}

impl From<otcore::fs::FsError> for Error {
    fn from(e: otcore::fs::FsError) -> Self {
        Error::Sys {
            op: e.op,
            path: e.path,
            errno: e.errno,
        }
    }
}

impl From<TooLong> for Error {
    fn from(_: TooLong) -> Self {
        crate::err!("a path is longer than {PATH_CAP} bytes")
    }
}

/// An [`Error`] from a format string.
#[macro_export]
macro_rules! err {
    ($($arg:tt)*) => { $crate::error::Error::new(format_args!($($arg)*)) };
}

/// Attach the operation and the path to a failed system call.
pub trait Context<T> {
    fn ctx(self, op: &'static str, path: &[u8]) -> Result<T>;
}

impl<T> Context<T> for SysResult<T> {
    fn ctx(self, op: &'static str, path: &[u8]) -> Result<T> {
        self.map_err(|e| Error::sys(op, path, e))
    }
}

/// The error for a file that could not be read into a buffer of `cap`
/// bytes: too large is said in words, anything else by its errno.
pub fn read_error(path: &[u8], errno: Errno, cap: usize) -> Error {
    if errno == Errno::FBIG {
        crate::err!(
            "read {}: larger than {cap} bytes, refusing ({})",
            Lossy(path),
            errno.name()
        )
    } else {
        Error::sys("read", path, errno)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_operation_path_and_errno() {
        let e = Error::sys("mkdir", b"/run/x", Errno::ROFS);
        let s = e.to_string();
        assert!(s.starts_with("mkdir /run/x: "), "{s}");
        assert!(s.ends_with("(EROFS)"), "{s}");
        let e = read_error(b"/o", Errno::FBIG, 16);
        assert_eq!(
            e.to_string(),
            "read /o: larger than 16 bytes, refusing (EFBIG)"
        );
    }
}
