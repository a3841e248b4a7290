//! The process, its clocks, and the machine's power.

use core::ffi::{c_char, c_int, CStr};

use linux_raw_sys::general as g;

use super::{check, with_cstr, Errno, SysResult};

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
    // SAFETY: an all-zero timespec is valid.
    let mut ts: libc::timespec = unsafe { core::mem::zeroed() };
    // SAFETY: `ts` is a valid out-pointer.
    if unsafe { libc::clock_gettime(clock as libc::clockid_t, &mut ts) } != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000)
        .saturating_add(ts.tv_nsec as u64 / 1000)
}

/// Sleep for `ms` milliseconds (an interrupted sleep just returns early).
pub fn sleep_ms(ms: u64) {
    let ts = libc::timespec {
        tv_sec: (ms / 1000) as _,
        tv_nsec: ((ms % 1000) * 1_000_000) as _,
    };
    // SAFETY: `ts` is valid for the duration of the call.
    unsafe { libc::nanosleep(&ts, core::ptr::null_mut()) };
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
