//! One error type for the whole tool. Every variant says what was being done,
//! on which path, and why; rendering it needs no allocation.

use core::fmt;

use crate::config::Unsupported;
use otcore::deploy::{Listing, TargetError};
use otcore::keyfile::SyntaxError;
use otcore::path::{Lossy, PathBuf, TooLong};
use otcore::sys::Errno;

/// Exit status for every failure (as ostree's C tool: `err()` exits 1).
pub const EXIT_FAILURE: i32 = 1;
/// Exit status for a bad command line.
pub const EXIT_USAGE: i32 = 2;

#[derive(Debug, Clone)]
pub enum Error {
    /// A system call failed: the operation, the path(s) and the errno.
    Sys {
        op: &'static str,
        path: PathBuf,
        /// Second path for two-path operations (mount source → target, rename).
        to: Option<PathBuf>,
        errno: Errno,
    },
    /// Bad arguments to the tool itself.
    Usage(&'static str),
    /// The kernel command line has no `ostree=` (before any `--`).
    NoTarget,
    /// The kernel command line is longer than we accept.
    CmdlineTooLong,
    /// `ostree=` does not lead to a deployment.
    Target {
        sysroot: PathBuf,
        target: PathBuf,
        why: TargetError,
        existing: Listing,
    },
    /// A configuration file is malformed.
    Config { file: PathBuf, err: SyntaxError },
    /// The configuration asks for something this tool does not do.
    Unsupported {
        why: Unsupported,
        file: Option<PathBuf>,
    },
    /// A path did not fit in our fixed buffers.
    PathTooLong,
    /// A kernel module is neither in `modules.dep` nor built in.
    #[cfg(feature = "pid1")]
    ModuleMissing { name: PathBuf, modules_dir: PathBuf },
    /// The kernel refused a compressed module file it cannot decompress.
    #[cfg(feature = "pid1")]
    ModuleCompressed { path: PathBuf, errno: Errno },
    /// PID 1: `root=` is missing or not understood.
    #[cfg(feature = "pid1")]
    BadRoot,
    /// PID 1: the root device did not appear in time.
    #[cfg(feature = "pid1")]
    NoRootDevice { waited_ms: u64 },
    /// PID 1: the root device has no filesystem we recognise, and no `rootfstype=`.
    #[cfg(feature = "pid1")]
    UnknownFs { device: PathBuf },
    /// PID 1: no init could be executed.
    #[cfg(feature = "pid1")]
    NoInit { errno: Errno },
}

impl From<otcore::fs::FsError> for Error {
    fn from(e: otcore::fs::FsError) -> Self {
        Error::Sys {
            op: e.op,
            path: e.path,
            to: None,
            errno: e.errno,
        }
    }
}

impl From<TooLong> for Error {
    fn from(_: TooLong) -> Self {
        Error::PathTooLong
    }
}

impl Error {
    /// A failed system call on one path.
    pub fn sys(op: &'static str, path: &[u8], errno: Errno) -> Error {
        Error::Sys {
            op,
            path: PathBuf::from(path).unwrap_or_default(),
            to: None,
            errno,
        }
    }

    /// A failed system call that involves two paths.
    pub fn sys2(op: &'static str, from: &[u8], to: &[u8], errno: Errno) -> Error {
        Error::Sys {
            op,
            path: PathBuf::from(from).unwrap_or_default(),
            to: PathBuf::from(to).ok(),
            errno,
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => EXIT_USAGE,
            _ => EXIT_FAILURE,
        }
    }
}

/// `SYSROOT/path`, without a doubled slash when SYSROOT is `/`.
struct Under<'a>(&'a PathBuf, &'a PathBuf);

impl fmt::Display for Under<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let root = self.0.as_bytes();
        let sep = if root.ends_with(b"/") { "" } else { "/" };
        write!(f, "{}{sep}{}", self.0, self.1)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Sys { op, path, to: None, errno } => {
                write!(f, "{op} {path}: {}", errno)
            }
            Error::Sys { op, path, to: Some(to), errno } => {
                write!(f, "{op} {path} -> {to}: {}", errno)
            }
            Error::Usage(msg) => f.write_str(msg),
            Error::NoTarget => f.write_str(
                "no ostree= on the kernel command line (expected ostree=/ostree/boot.N/OS/BOOTCSUM/SERIAL)",
            ),
            Error::CmdlineTooLong => write!(
                f,
                "kernel command line longer than {} bytes",
                otcore::cmdline::CMDLINE_MAX
            ),
            Error::Target { sysroot, target, why, existing } => {
                write!(f, "ostree={target}: ")?;
                match why {
                    TargetError::Missing { path, errno } => {
                        write!(f, "{} does not exist: {}", Under(sysroot, path), errno)?
                    }
                    TargetError::NotSymlink { path } => {
                        write!(f, "{} is not a symbolic link", Under(sysroot, path))?
                    }
                    TargetError::Escapes { link } if link.is_empty() => {
                        write!(f, "the path climbs above {sysroot} with .., refusing")?
                    }
                    TargetError::Escapes { link } => write!(
                        f,
                        "symbolic link {} points outside {sysroot} (absolute or too many ..), refusing",
                        Under(sysroot, link)
                    )?,
                    TargetError::Loop => f.write_str("too many levels of symbolic links")?,
                    TargetError::NotDeployment { resolved } => write!(
                        f,
                        "resolves to {}, which is not a deployment directory (ostree/deploy/OS/deploy/CSUM.SERIAL)",
                        Under(sysroot, resolved)
                    )?,
                    TargetError::TooLong => f.write_str("path too long")?,
                }
                if existing.is_empty() {
                    write!(f, "; no deployments found under {}", Under(sysroot, &PathBuf::from(b"ostree/deploy").unwrap_or_default()))
                } else {
                    write!(f, "; existing deployments: {}", Lossy(existing))
                }
            }
            Error::Config { file, err } => {
                write!(f, "{file}: line {}: {}", err.line, err.what)
            }
            Error::Unsupported { why, file } => {
                match why {
                    Unsupported::Composefs(c) => write!(
                        f,
                        "composefs is required ([composefs] enabled={}), but this ostree-prepare-root does not support composefs; set enabled=no or maybe",
                        c.name()
                    )?,
                    Unsupported::RootTransient => f.write_str(
                        "[root] transient needs composefs, which this ostree-prepare-root does not support",
                    )?,
                    Unsupported::BadComposefsKarg => write!(
                        f,
                        "{}= must be 0, 1, yes, no, true, false, maybe or signed",
                        Lossy(crate::config::COMPOSEFS_KARG)
                    )?,
                }
                if let Some(file) = file {
                    write!(f, " (from {file})")?;
                }
                Ok(())
            }
            #[cfg(feature = "pid1")]
            Error::ModuleMissing { name, modules_dir } => write!(
                f,
                "kernel module {name} not found: not in {modules_dir}/modules.dep and not built in (/sys/module/{name})"
            ),
            #[cfg(feature = "pid1")]
            Error::ModuleCompressed { path, errno } => write!(
                f,
                "load module {path}: {}: the kernel could not decompress it (it needs CONFIG_MODULE_DECOMPRESS with this format, and an intact file); an uncompressed module always loads",
                errno
            ),
            #[cfg(feature = "pid1")]
            Error::BadRoot => f.write_str(
                "root= is missing or not understood (want /dev/..., UUID=, LABEL=, PARTUUID= or PARTLABEL=)",
            ),
            #[cfg(feature = "pid1")]
            Error::NoRootDevice { waited_ms } => write!(
                f,
                "root device not found after {} s (add rootwait or rootwait=SECONDS to wait longer)",
                waited_ms / 1000
            ),
            #[cfg(feature = "pid1")]
            Error::UnknownFs { device } => write!(
                f,
                "{device}: no filesystem recognised (ext4, xfs, btrfs, erofs, vfat); give rootfstype="
            ),
            #[cfg(feature = "pid1")]
            Error::NoInit { errno } => write!(
                f,
                "could not execute init (init=, /sbin/init, /etc/init, /bin/init, /bin/sh): {}",
                errno
            ),
            Error::PathTooLong => write!(
                f,
                "a path is longer than {} bytes",
                otcore::path::PATH_CAP
            ),
        }
    }
}
