//! A failed boot: say what failed, then do what `rd.emergency=` says.

use otcore::cmdline::Cmdline;
use otcore::path::Lossy;
use otcore::sys::{self, Power};
use otcore::warn;

use super::Failure;
use crate::bootparams::{self, BootParams, Emergency};

/// Report a failed boot and do what `rd.emergency=` says. Never returns.
pub(super) fn emergency(params: &BootParams, cmdline: Option<&Cmdline>, f: Failure) -> ! {
    super::deadline::stop();
    warn!(
        "ostree-prepare-root: boot failed while {}: {}",
        f.phase, f.err
    );
    if let Some(c) = cmdline {
        warn!(
            "ostree-prepare-root: kernel command line: {}",
            Lossy(c.as_bytes())
        );
    }
    let action = match params.emergency {
        Emergency::Shell => {
            let sh = c"/bin/sh";
            if sys::lstat(sh.to_bytes()).is_ok() {
                warn!("ostree-prepare-root: starting /bin/sh (rd.shell)");
                let argv = [sh.as_ptr(), core::ptr::null()];
                let envp = [
                    c"PATH=/usr/sbin:/usr/bin:/sbin:/bin".as_ptr(),
                    core::ptr::null(),
                ];
                let e = sys::execve(sh, &argv, &envp);
                warn!("ostree-prepare-root: cannot execute /bin/sh: {}", e);
            } else {
                warn!("ostree-prepare-root: rd.shell: this initramfs has no /bin/sh");
            }
            Power::Reboot
        }
        Emergency::Reboot => Power::Reboot,
        Emergency::PowerOff => Power::PowerOff,
        Emergency::Halt => Power::Halt,
    };
    match action {
        Power::Reboot => {
            warn!(
                "ostree-prepare-root: rebooting in {} s (rd.emergency=poweroff|halt|shell, rd.shell to change)",
                bootparams::REBOOT_DELAY_S
            );
            sys::sleep_ms(bootparams::REBOOT_DELAY_S * 1000);
        }
        Power::PowerOff => warn!("ostree-prepare-root: powering off (rd.emergency=poweroff)"),
        Power::Halt => warn!("ostree-prepare-root: halting (rd.emergency=halt)"),
    }
    let e = sys::reboot(action);
    warn!(
        "ostree-prepare-root: reboot(2) failed: {}; waiting forever",
        e
    );
    sys::pause_forever()
}
