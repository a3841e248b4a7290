//! The process, its clocks, and the machine's power.

use core::ffi::{c_char, c_int, CStr};

use linux_raw_sys::general as g;

use super::{check, with_cstr, Errno, Fd, SysResult};

/// The entries of a NULL-terminated C string array (`argv`, `envp`), in order.
///
/// # Safety
/// `v` must be NULL or point to a NULL-terminated array of valid C strings
/// that live for the whole process (as `argv` and `envp` do).
pub unsafe fn c_strings(v: *const *const c_char) -> impl Iterator<Item = &'static CStr> {
    (0..).map_while(move |i| {
        if v.is_null() {
            return None;
        }
        // SAFETY: the array is NULL-terminated, so every index up to the NULL is valid.
        let p = unsafe { *v.add(i) };
        // SAFETY: each entry is a valid C string living for the whole process.
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) })
    })
}

/// `getpid(2)`.
pub fn getpid() -> i32 {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() }
}

/// `geteuid(2)`.
pub fn geteuid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// Process exit without running any destructors (there are none to run).
pub fn exit(code: i32) -> ! {
    // SAFETY: terminating the process is always sound.
    unsafe { libc::_exit(code) }
}

/// Set the process umask; returns the previous one.
pub fn umask(mask: u32) -> u32 {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(mask) }
}

/// `chdir(2)`.
pub fn chdir(path: &[u8]) -> SysResult<()> {
    with_cstr(path, |p| {
        // SAFETY: `p` is a valid C string for the duration of the call.
        check(unsafe { libc::chdir(p) }).map(drop)
    })
}

/// `execve(2)`: only returns on failure.
///
/// `argv` and `envp` must be NULL-terminated arrays of pointers to
/// NUL-terminated strings; the caller builds them from `CStr`s it owns.
pub fn execve(path: &CStr, argv: &[*const c_char], envp: &[*const c_char]) -> Errno {
    if argv.last() != Some(&core::ptr::null()) || envp.last() != Some(&core::ptr::null()) {
        return Errno::INVAL;
    }
    // SAFETY: `path` is a C string; `argv`/`envp` are NULL-terminated arrays of
    // valid C strings (checked terminators above; contents are the caller's CStrs).
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    Errno::last()
}

/// Microseconds on `CLOCK_MONOTONIC` (or `CLOCK_REALTIME`); 0 if the clock
/// cannot be read (never on Linux: both clocks always exist).
pub fn clock_us(realtime: bool) -> u64 {
    let clock = if realtime {
        g::CLOCK_REALTIME
    } else {
        g::CLOCK_MONOTONIC
    };
    // The bare system call with the kernel's 64-bit timespec (clock_gettime64
    // on 32-bit architectures: no year-2038 overflow). Not libc's, which
    // looks up the vDSO: that costs more code than a few calls save.
    // The number from linux-raw-sys: the libc crate has no
    // SYS_clock_gettime64 on every 32-bit architecture (armv7 musl).
    #[cfg(target_pointer_width = "64")]
    const CLOCK_GETTIME: libc::c_long = g::__NR_clock_gettime as libc::c_long;
    #[cfg(target_pointer_width = "32")]
    const CLOCK_GETTIME: libc::c_long = g::__NR_clock_gettime64 as libc::c_long;
    let mut ts = g::__kernel_timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer of the layout the kernel writes.
    if unsafe { libc::syscall(CLOCK_GETTIME, clock, &mut ts as *mut g::__kernel_timespec) } != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000)
        .saturating_add(ts.tv_nsec as u64 / 1000)
}

/// `fork(2)` as the bare system call: 0 in the child, its ID in the parent.
///
/// Not libc's fork, which brings 2 KiB of locking for threads, atfork
/// handlers and the allocator: our programs are single-threaded and
/// allocate nothing, and a child only makes plain system calls before it
/// exits, so there is nothing for that code to protect.
fn fork() -> SysResult<i32> {
    // SAFETY: clone with only SIGCHLD is fork; single-threaded caller.
    let r = unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD, 0, 0, 0, 0) };
    check(r as c_int)
}

/// Start a child process that runs `f`, then exits. The child is a copy of
/// this process as it is now. Returns the child's process ID.
pub fn spawn(f: impl FnOnce()) -> SysResult<i32> {
    match fork()? {
        0 => {
            f();
            exit(0)
        }
        pid => Ok(pid),
    }
}

/// Kill child `pid` (SIGKILL) and collect it.
pub fn kill_child(pid: i32) {
    // SAFETY: kill takes no pointers.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    wait_child(pid);
}

/// Wait for child `pid` to end (how it ended does not matter here).
pub fn wait_child(pid: i32) {
    let _ = super::spawn::wait(pid);
}

/// Run `f` in a child process; whether it finished within `timeout_ms`.
///
/// For work that may block in the kernel for good (a read of a device that
/// never answers): such a wait cannot be cut short, so a child that misses
/// the deadline is left behind, and whatever it read stays unused. When no
/// child can be started, `f` runs here, without a deadline.
pub fn finishes_within(timeout_ms: i32, f: impl FnOnce()) -> bool {
    let mut ends = [0 as c_int; 2];
    // SAFETY: `ends` has room for the two descriptors.
    let piped = unsafe { libc::syscall(libc::SYS_pipe2, ends.as_mut_ptr(), libc::O_CLOEXEC) };
    if piped < 0 {
        f();
        return true;
    }
    let (read_end, write_end) = (Fd::from_raw(ends[0]), Fd::from_raw(ends[1]));
    // The child holds the write end until it exits: then the read end sees
    // end-of-file.
    let pid = match fork() {
        Ok(0) => {
            drop(read_end);
            f();
            exit(0)
        }
        Ok(pid) => pid,
        Err(_) => {
            f();
            return true;
        }
    };
    drop(write_end);
    let done = super::poll_readable(&read_end, timeout_ms).unwrap_or(false);
    if done {
        wait_child(pid);
    }
    done
}

/// Sleep for `ms` milliseconds on `CLOCK_MONOTONIC` (an interrupted sleep
/// just returns early). The bare system call with the kernel's 64-bit
/// timespec, as [`clock_us`] (clock_nanosleep_time64 on 32-bit
/// architectures): no libc `timespec`, whose `time_t` is 32 or 64 bits on
/// 32-bit musl depending on how the libc crate was configured.
pub fn sleep_ms(ms: u64) {
    #[cfg(target_pointer_width = "64")]
    const CLOCK_NANOSLEEP: libc::c_long = g::__NR_clock_nanosleep as libc::c_long;
    #[cfg(target_pointer_width = "32")]
    const CLOCK_NANOSLEEP: libc::c_long = g::__NR_clock_nanosleep_time64 as libc::c_long;
    let ts = g::__kernel_timespec {
        tv_sec: (ms / 1000) as _,
        tv_nsec: ((ms % 1000) * 1_000_000) as _,
    };
    let none: *mut g::__kernel_timespec = core::ptr::null_mut();
    // SAFETY: `ts` is valid for the duration of the call; no remainder is
    // asked for (NULL).
    unsafe {
        libc::syscall(
            CLOCK_NANOSLEEP,
            g::CLOCK_MONOTONIC,
            0,
            &ts as *const g::__kernel_timespec,
            none,
        )
    };
}

/// What to do with the machine at the end of an emergency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    Reboot,
    PowerOff,
    Halt,
}

/// `reboot(2)` after `sync()`; returns only on failure.
pub fn reboot(how: Power) -> Errno {
    let cmd = match how {
        Power::Reboot => g::LINUX_REBOOT_CMD_RESTART,
        Power::PowerOff => g::LINUX_REBOOT_CMD_POWER_OFF,
        Power::Halt => g::LINUX_REBOOT_CMD_HALT,
    };
    // SAFETY: sync and reboot take no pointers.
    unsafe {
        libc::sync();
        libc::reboot(cmd as c_int);
    }
    Errno::last()
}

/// Wait forever (PID 1 must never exit).
pub fn pause_forever() -> ! {
    loop {
        // SAFETY: pause takes no arguments.
        unsafe { libc::pause() };
    }
}
