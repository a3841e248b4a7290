//! The no-initramfs mode: the kernel mounted the physical root at `/`;
//! prepare the deployment in place and `pivot_root` into it.

use otcore::path::PathBuf;
use otcore::say;

use super::setup::{ensure_filesystems, load_modules};
use super::{in_phase, Failure, KernelCmdline, Phases};
use crate::bootparams::BootParams;
use crate::error::Error;
use crate::inputs::{self, ConfFrom};
use crate::{exec, plan, switch};

/// The no-initramfs mode's work, up to the exec of init.
pub(super) fn no_initramfs(
    k: &KernelCmdline,
    params: &BootParams,
    phases: &mut Phases,
) -> Result<(), Failure> {
    let cmdline = k.get();
    let sysroot = in_phase("preparing", PathBuf::from(b"/").map_err(Error::from))?;
    // The configuration comes with the deployment: there is no initramfs.
    let gathered = in_phase(
        "preparing",
        inputs::gather(&sysroot, &cmdline, true, ConfFrom::Deployment),
    )?;
    inputs::warn_ignored_hotfix(&gathered.facts);
    // The keys of `signed` would come from the image they are to check.
    #[cfg(feature = "composefs")]
    if gathered
        .facts
        .composefs
        .as_ref()
        .is_some_and(|c| c.signed.is_some())
    {
        let mut t = otcore::out::Text::new();
        let _ = core::fmt::Write::write_str(
            &mut t,
            "composefs: enabled=signed needs an initramfs holding the keys; without one (init=ostree-prepare-root) the keys would come from the deployment they are to check: boot with an initramfs (ostree-mkinitramfs), or use enabled=verity",
        );
        in_phase::<()>("preparing", Err(Error::Composefs(t)))?;
    }
    // Without an initramfs the kernel's modules are in the deployment.
    let usr = in_phase(
        "loading modules",
        sysroot
            .join(gathered.facts.deployment.rel().as_bytes())
            .and_then(|d| d.join(b"usr"))
            .map_err(Error::from),
    )?;
    in_phase(
        "loading modules",
        load_modules(&cmdline, usr.as_bytes(), None),
    )?;
    ensure_filesystems(&gathered.facts, &cmdline, usr.as_bytes());
    let mut api: heapless::Vec<&[u8], 3> = heapless::Vec::new();
    for m in [&b"/proc"[..], b"/dev", b"/sys"] {
        if switch::is_mountpoint(m) {
            let _ = api.push(m);
        }
    }
    let opts = exec::Options {
        verbose: params.debug,
    };
    in_phase(
        "preparing",
        exec::run_built(plan::pivot_plan(&gathered.facts, &api), opts),
    )?;
    say!(
        "ostree-prepare-root: booting {} (no initramfs)",
        gathered.facts.deployment.rel()
    );
    phases.done("prepare");
    Ok(())
}
