//! Running another program and waiting for it: `posix_spawn(3)` and
//! `waitpid(2)`, with the arguments turned into C strings on the stack.

use core::ffi::{c_char, CStr};
use core::fmt;

use super::{Errno, SysResult, PATH_MAX};

/// Most arguments a spawned program gets (its name included).
pub const SPAWN_MAX_ARGS: usize = 160;
/// Most bytes of all arguments together, their NULs included.
pub const SPAWN_MAX_ARG_BYTES: usize = 24 * 1024;
/// Most environment entries passed on.
const SPAWN_MAX_ENV: usize = 128;

/// How a child process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this status.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

impl ExitStatus {
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }
}

/// `exit status N` or `killed by signal N`.
impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit status {c}"),
            ExitStatus::Signal(s) => write!(f, "killed by signal {s}"),
        }
    }
}

/// Run the program at `path` with `argv` (its name first) and the
/// environment `envp`, and wait for it to end. It inherits the standard
/// input, output and error (its messages go where ours go) and every
/// descriptor not marked close-on-exec. `E2BIG` when the arguments exceed
/// [`SPAWN_MAX_ARGS`] or [`SPAWN_MAX_ARG_BYTES`] (or the environment
/// [`SPAWN_MAX_ENV`] entries); `EINVAL` for an argument holding a NUL.
pub fn spawn_wait(path: &[u8], argv: &[&[u8]], envp: &[&CStr]) -> SysResult<ExitStatus> {
    if argv.len() > SPAWN_MAX_ARGS || envp.len() > SPAWN_MAX_ENV {
        return Err(Errno::TOOBIG);
    }
    if path.len() >= PATH_MAX || path.contains(&0) {
        return Err(Errno::INVAL);
    }
    let mut cpath = [0u8; PATH_MAX];
    cpath[..path.len()].copy_from_slice(path);
    // Every argument, NUL-terminated, one after the other.
    let mut bytes = [0u8; SPAWN_MAX_ARG_BYTES];
    let mut starts = [0usize; SPAWN_MAX_ARGS];
    let mut used = 0;
    for (i, a) in argv.iter().enumerate() {
        if a.contains(&0) {
            return Err(Errno::INVAL);
        }
        if used + a.len() + 1 > bytes.len() {
            return Err(Errno::TOOBIG);
        }
        starts[i] = used;
        bytes[used..used + a.len()].copy_from_slice(a);
        used += a.len() + 1;
    }
    let mut args = [core::ptr::null::<c_char>(); SPAWN_MAX_ARGS + 1];
    for (i, &s) in starts[..argv.len()].iter().enumerate() {
        args[i] = bytes[s..].as_ptr().cast();
    }
    let mut env = [core::ptr::null::<c_char>(); SPAWN_MAX_ENV + 1];
    for (i, e) in envp.iter().enumerate() {
        env[i] = e.as_ptr();
    }
    let mut pid: libc::pid_t = 0;
    // SAFETY: `cpath` is NUL-terminated; `args` and `env` are NULL-terminated
    // arrays (one slot more than their most entries) of pointers into
    // `bytes` and `envp`, which outlive the call; the spawned program gets
    // copies. NULL file actions and attributes ask for the defaults.
    let rc = unsafe {
        libc::posix_spawn(
            &mut pid,
            cpath.as_ptr().cast(),
            core::ptr::null(),
            core::ptr::null(),
            args.as_ptr().cast(),
            env.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(Errno::from_raw(rc));
    }
    wait(pid)
}

/// `waitpid(2)` for `pid` until it ends (an interrupted wait is retried).
pub(super) fn wait(pid: libc::pid_t) -> SysResult<ExitStatus> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: `status` is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r >= 0 {
            break;
        }
        let e = Errno::last();
        if e != Errno::INTR {
            return Err(e);
        }
    }
    if libc::WIFEXITED(status) {
        Ok(ExitStatus::Code(libc::WEXITSTATUS(status)))
    } else {
        Ok(ExitStatus::Signal(libc::WTERMSIG(status)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_and_reports_the_exit_status() {
        let env: [&CStr; 0] = [];
        assert_eq!(
            spawn_wait(b"/bin/sh", &[b"sh", b"-c", b"exit 3"], &env),
            Ok(ExitStatus::Code(3))
        );
        assert!(spawn_wait(b"/bin/sh", &[b"sh", b"-c", b"true"], &env)
            .unwrap()
            .success());
        assert_eq!(
            spawn_wait(b"/bin/sh", &[b"sh", b"-c", b"kill -9 $$"], &env),
            Ok(ExitStatus::Signal(9))
        );
        assert_eq!(ExitStatus::Code(1).to_string(), "exit status 1");
        assert_eq!(
            spawn_wait(b"/nonexistent/x", &[b"x"], &env),
            Err(Errno::NOENT)
        );
        assert_eq!(
            spawn_wait(b"/bin/sh", &[b"sh", b"a\0b"], &env),
            Err(Errno::INVAL)
        );
        let many = [&b"x"[..]; SPAWN_MAX_ARGS + 1];
        assert_eq!(spawn_wait(b"/bin/true", &many, &env), Err(Errno::TOOBIG));
    }

    #[test]
    fn passes_arguments_and_environment() {
        let env = [c"X_SPAWN_TEST=yes"];
        let script = b"[ \"$X_SPAWN_TEST\" = yes ] && [ \"$1\" = 'a b' ] && [ $# = 1 ]";
        assert!(
            spawn_wait(b"/bin/sh", &[b"sh", b"-c", script, b"sh", b"a b"], &env)
                .unwrap()
                .success()
        );
    }
}
