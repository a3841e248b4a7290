//! One error type for the whole tool. Every variant says what was being done,
//! on which path, and why; rendering it needs no allocation.

use core::fmt::{self, Write};

use crate::config::Unsupported;
use otcore::deploy::TargetError;
use otcore::keyfile::SyntaxError;
use otcore::out::Text;
use otcore::path::{Lossy, PathBuf, TooLong};
use otcore::sys::Errno;

/// Exit status for every failure (as ostree's C tool: `err()` exits 1).
pub const EXIT_FAILURE: i32 = 1;
/// Exit status for a bad command line.
pub const EXIT_USAGE: i32 = 2;

#[derive(Debug, Clone)]
pub enum Error {
    /// A system call failed: the operation, the path and the errno.
    Sys {
        op: &'static str,
        path: PathBuf,
        errno: Errno,
    },
    /// A system call on two paths failed (mount source and target, rename).
    Sys2 {
        op: &'static str,
        paths: Text,
        errno: Errno,
    },
    /// Bad arguments to the tool itself.
    Usage(&'static str),
    /// The kernel command line has no `ostree=` (before any `--`).
    NoTarget,
    /// The kernel command line is longer than we accept.
    CmdlineTooLong,
    /// `ostree=` does not lead to a deployment: the message says why.
    Target(Text),
    /// A configuration file is malformed.
    Config { file: PathBuf, err: SyntaxError },
    /// The configuration asks for something this tool does not do.
    Unsupported {
        why: Unsupported,
        file: Option<PathBuf>,
    },
    /// A path did not fit in our fixed buffers.
    PathTooLong,
    /// composefs could not be set up: what, where, why, and the kernel
    /// feature to look for.
    #[cfg(feature = "composefs")]
    Composefs(Text),
    /// A kernel module is neither in `modules.dep` nor built in.
    #[cfg(feature = "pid1")]
    ModuleMissing(Text),
    /// The kernel refused a compressed module file it cannot decompress.
    #[cfg(feature = "pid1")]
    ModuleCompressed { path: PathBuf, errno: Errno },
    /// PID 1: `root=` is missing or not understood.
    #[cfg(feature = "pid1")]
    BadRoot,
    /// PID 1: `root=` matches more than one device (listed before).
    #[cfg(feature = "pid1")]
    AmbiguousRoot { count: u32 },
    /// PID 1: the root device did not appear in time.
    #[cfg(feature = "pid1")]
    NoRootDevice { waited_ms: u64 },
    /// PID 1: the root device has no filesystem we recognise, and no `rootfstype=`.
    #[cfg(feature = "pid1")]
    UnknownFs { device: PathBuf },
    /// PID 1: no init could be executed.
    #[cfg(feature = "pid1")]
    NoInit { errno: Errno },
    /// PID 1: the boot took longer than `ostree.prepare-root.boot-timeout=`.
    #[cfg(feature = "pid1")]
    BootTimeout { seconds: u64 },
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
        Error::PathTooLong
    }
}

impl Error {
    /// A failed system call on one path.
    // One out-of-line copy: errors are built in many places.
    #[inline(never)]
    pub fn sys(op: &'static str, path: &[u8], errno: Errno) -> Error {
        Error::Sys {
            op,
            path: PathBuf::from_lossy(path),
            errno,
        }
    }

    /// A failed system call that involves two paths.
    // One out-of-line copy: errors are built in many places.
    #[inline(never)]
    pub fn sys2(op: &'static str, from: &[u8], to: &[u8], errno: Errno) -> Error {
        let mut paths = Text::new();
        let _ = write!(paths, "{} -> {}", Lossy(from), Lossy(to));
        Error::Sys2 { op, paths, errno }
    }

    /// `ostree=TARGET` does not lead to a deployment in `sysroot` (the
    /// deployments that exist are listed on a line of their own, before).
    pub fn target(sysroot: &PathBuf, target: &[u8], why: &TargetError) -> Error {
        let mut t = Text::new();
        let _ = write!(t, "ostree={}: ", Lossy(target));
        let _ = match why {
            TargetError::Missing { path, errno } => {
                write!(t, "{} does not exist: {errno}", Under(sysroot, path))
            }
            TargetError::NotSymlink { path } => {
                write!(t, "{} is not a symbolic link", Under(sysroot, path))
            }
            TargetError::Escapes { link } if link.is_empty() => {
                write!(t, "the path climbs above {sysroot} with .., refusing")
            }
            TargetError::Escapes { link } => write!(
                t,
                "symbolic link {} points outside {sysroot} (absolute or too many ..), refusing",
                Under(sysroot, link)
            ),
            TargetError::Loop => t.write_str("too many levels of symbolic links"),
            TargetError::NotDeployment { resolved } => write!(
                t,
                "resolves to {}, which is not a deployment directory (ostree/deploy/OS/deploy/CSUM.SERIAL)",
                Under(sysroot, resolved)
            ),
            TargetError::TooLong => t.write_str("path too long"),
        };
        Error::Target(t)
    }

    /// A kernel module is neither in `modules_dir/modules.dep` nor built in.
    #[cfg(feature = "pid1")]
    pub fn module_missing(name: &[u8], modules_dir: &PathBuf) -> Error {
        let mut t = Text::new();
        let name = Lossy(name);
        let _ = write!(
            t,
            "kernel module {name} not found: not in {modules_dir}/modules.dep and not built in (/sys/module/{name})"
        );
        Error::ModuleMissing(t)
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
            Error::Sys { op, path, errno } => write!(f, "{op} {path}: {errno}"),
            Error::Sys2 { op, paths, errno } => write!(f, "{op} {paths}: {errno}"),
            Error::Target(t) => t.fmt(f),
            #[cfg(feature = "composefs")]
            Error::Composefs(t) => t.fmt(f),
            #[cfg(feature = "pid1")]
            Error::ModuleMissing(t) => t.fmt(f),
            Error::Usage(msg) => f.write_str(msg),
            Error::NoTarget => f.write_str(
                "no ostree= on the kernel command line (expected ostree=/ostree/boot.N/OS/BOOTCSUM/SERIAL)",
            ),
            Error::CmdlineTooLong => write!(
                f,
                "kernel command line longer than {} bytes",
                otcore::cmdline::CMDLINE_MAX
            ),
            Error::Config { file, err } => {
                write!(f, "{file}: line {}: {}", err.line, err.what)
            }
            Error::Unsupported { why, file } => {
                match why {
                    Unsupported::Composefs(c) => write!(
                        f,
                        "composefs is required ([composefs] enabled={}), but this ostree-prepare-root was built without composefs (the composefs feature); set enabled=no or maybe",
                        c.name()
                    )?,
                    Unsupported::RootTransient => f.write_str(
                        "[root] transient needs composefs: composefs is off, the deployment has no .ostree.cfs, or this build has no composefs",
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
            Error::AmbiguousRoot { count } => write!(
                f,
                "root= matches {count} devices (listed above), booting neither: choose one with root=PARTUUID= or root=/dev/..."
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
            Error::BootTimeout { seconds } => write!(
                f,
                "no init started within {seconds} s (ostree.prepare-root.boot-timeout=SECONDS, 0 for no limit)"
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `Result` of the crate carries an `Error`: it stays small (the
    /// budget clippy.toml gives `large-error-threshold`).
    #[test]
    fn errors_stay_small() {
        std::eprintln!("Error: {} bytes", core::mem::size_of::<Error>());
        assert!(core::mem::size_of::<Error>() <= 320);
    }

    #[test]
    fn long_messages_are_cut_with_a_mark() {
        let long = [b'x'; 400];
        let e = Error::sys2("bind mount", &long, b"/dst", Errno::NOENT);
        let s = std::format!("{e}");
        assert!(s.contains('…') && s.ends_with("(ENOENT)"), "{s}");
        let e = Error::sys2("bind mount", b"/a", b"/b", Errno::NOENT);
        assert_eq!(
            std::format!("{e}"),
            "bind mount /a -> /b: No such file or directory (ENOENT)"
        );
    }
}
