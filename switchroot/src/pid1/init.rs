//! The last phase: execute the real init.

use core::ffi::{c_char, CStr};
use core::fmt::Write;

use otcore::out::LineBuf;
use otcore::path::Lossy;
use otcore::sys::{self, Errno};
use otcore::warn;

/// The kernel's fallbacks when `init=` is not given (or fails).
const DEFAULT_INITS: [&CStr; 4] = [c"/sbin/init", c"/etc/init", c"/bin/init", c"/bin/sh"];
/// Most arguments and environment entries passed on to init.
const MAX_VECTOR: usize = 64;

/// Execute init: `init` if given and executable, else the kernel's fallbacks.
/// Returns the last errno if none could be executed.
pub(super) fn exec_init(
    init: Option<&[u8]>,
    argv: &[&CStr],
    envp: &[&CStr],
    started: Option<(u64, u64)>,
) -> Errno {
    // RD_TIMESTAMP="<realtime µs> <monotonic µs>" tells systemd when the initramfs started.
    let mut stamp = [0u8; 64];
    let mut env: heapless::Vec<*const c_char, MAX_VECTOR> = heapless::Vec::new();
    for e in envp {
        if !e.to_bytes().starts_with(b"RD_TIMESTAMP=") && env.len() < MAX_VECTOR - 2 {
            let _ = env.push(e.as_ptr());
        }
    }
    if let Some((rt, mono)) = started {
        let mut w = LineBuf::new();
        let _ = write!(w, "RD_TIMESTAMP={rt} {mono}");
        let n = w.as_bytes().len().min(stamp.len() - 1);
        stamp[..n].copy_from_slice(&w.as_bytes()[..n]);
        let _ = env.push(stamp.as_ptr().cast());
    }
    let _ = env.push(core::ptr::null());

    // Any path the kernel takes: up to PATH_MAX with its NUL. A longer one
    // (or one with a NUL) is refused aloud, never replaced in silence.
    let mut path_buf = [0u8; sys::PATH_MAX];
    let given = init.and_then(|p| {
        let c = (p.len() < path_buf.len()).then(|| {
            path_buf[..p.len()].copy_from_slice(p);
            CStr::from_bytes_until_nul(&path_buf).ok()
        });
        if c.flatten().is_none() {
            warn!(
                "ostree-prepare-root: init= is longer than {} bytes, refused: {}",
                sys::PATH_MAX - 1,
                Lossy(p)
            );
        }
        c.flatten()
    });
    let mut errno = Errno::NOENT;
    for path in given.into_iter().chain(DEFAULT_INITS) {
        let mut args: heapless::Vec<*const c_char, MAX_VECTOR> = heapless::Vec::new();
        let _ = args.push(path.as_ptr());
        for a in argv.iter().skip(1).take(MAX_VECTOR - 2) {
            let _ = args.push(a.as_ptr());
        }
        let _ = args.push(core::ptr::null());
        errno = sys::execve(path, &args, &env);
        warn!(
            "ostree-prepare-root: cannot execute {}: {}",
            Lossy(path.to_bytes()),
            errno
        );
    }
    errno
}
