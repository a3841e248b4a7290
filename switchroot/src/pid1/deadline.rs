//! The boot's deadline: a watchdog process that ends a boot taking longer
//! than `ostree.prepare-root.boot-timeout=` with the emergency action.
//!
//! A child process, not a timer in PID 1: PID 1 may be the one that hangs,
//! in a system call the kernel never lets a signal interrupt (a mount or a
//! read of a device that stopped answering). The watchdog is a copy of PID 1
//! made once the command line is known, so it reports and acts exactly as
//! PID 1's own emergency would; `reboot(2)` works from any process.

use core::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use otcore::cmdline::Cmdline;
use otcore::{sys, warn};

use super::emergency::emergency;
use super::Failure;
use crate::bootparams::BootParams;
use crate::error::Error;

/// The watchdog's process ID (0: none). Its own copy of this stays 0.
static WATCHDOG: AtomicI32 = AtomicI32::new(0);
/// When it acts, in microseconds of `CLOCK_MONOTONIC`.
static DEADLINE_US: AtomicU64 = AtomicU64::new(0);

/// Start the watchdog, unless the boot has no limit.
pub(super) fn start(params: &BootParams, cmdline: &Cmdline) {
    let seconds = params.boot_timeout_s;
    if seconds == 0 {
        return;
    }
    let deadline = sys::clock_us(false).saturating_add(seconds * 1_000_000);
    DEADLINE_US.store(deadline, Ordering::Relaxed);
    let watch = || {
        // Sleep to the deadline, whatever interrupts a sleep.
        loop {
            let now = sys::clock_us(false);
            if now >= deadline {
                break;
            }
            sys::sleep_ms((deadline - now).div_ceil(1000));
        }
        let err = Error::BootTimeout { seconds };
        let phase = "waiting for the boot";
        emergency(params, Some(cmdline), Failure { phase, err })
    };
    match sys::spawn(watch) {
        Ok(pid) => WATCHDOG.store(pid, Ordering::Relaxed),
        Err(e) => warn!("ostree-prepare-root: no boot deadline: cannot start a process: {e}"),
    }
}

/// Stop the watchdog: before the real init runs, or when PID 1 handles a
/// failure itself. Past the deadline it is too late, the watchdog's
/// emergency is under way: wait for it to end (a shell that exits), then
/// reboot, so that a boot never goes on after its deadline was announced.
pub(super) fn stop() {
    let pid = WATCHDOG.swap(0, Ordering::Relaxed);
    if pid <= 0 {
        return;
    }
    if sys::clock_us(false) < DEADLINE_US.load(Ordering::Relaxed) {
        sys::kill_child(pid);
        return;
    }
    sys::wait_child(pid);
    let _ = sys::reboot(sys::Power::Reboot);
    sys::pause_forever()
}
