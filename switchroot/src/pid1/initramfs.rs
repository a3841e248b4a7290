//! The initramfs mode: find and mount `root=`, prepare the deployment,
//! switch root.

use otcore::path::{Lossy, PathBuf};
use otcore::sys::{self, MountFlags};
use otcore::{say, warn};

use super::setup::{ensure_filesystems, load_modules, mount_point_dir};
use super::{in_phase, Failure, KernelCmdline, Phases};
use crate::bootparams::{self, BootParams};
use crate::error::Error;
use crate::inputs::{self, ConfFrom};
use crate::{exec, modules, plan, rootdev, switch};

/// Where the root filesystem is mounted in the initramfs.
const SYSROOT: &[u8] = b"/sysroot";
/// The initramfs's work, up to (not including) the exec of init.
pub(super) fn initramfs(
    k: &KernelCmdline,
    params: &BootParams,
    phases: &mut Phases,
) -> Result<(), Failure> {
    let cmdline = k.get();
    let n = in_phase(
        "loading modules",
        load_modules(&cmdline, b"/", Some(modules::MODULE_LIST)),
    )?;
    if params.debug {
        say!("ostree-prepare-root: {n} modules loaded");
    }
    phases.done("modules");

    let spec = in_phase("finding the root device", params.root.ok_or(Error::BadRoot))?;
    if params.delay_ms > 0 {
        sys::sleep_ms(params.delay_ms);
    }
    let dev = match rootdev::find(&spec, params.wait_ms) {
        Ok(d) => d,
        Err(err) => {
            // The candidates of an ambiguous root= are listed already.
            if !matches!(err, Error::AmbiguousRoot { .. }) {
                warn!(
                    "ostree-prepare-root: looking for root={}; block devices seen:",
                    Lossy(params.root_arg.unwrap_or(b""))
                );
                rootdev::report_devices();
            }
            return Err(Failure {
                phase: "finding the root device",
                err,
            });
        }
    };
    phases.done("device");

    let mut data = heapless::Vec::<u8, 256>::new();
    let mut flags = bootparams::mount_options(params.flags.unwrap_or(b""), &mut data);
    if !params.rw {
        flags |= MountFlags::RDONLY;
    }
    in_phase("mounting the root", mount_point_dir(SYSROOT))?;
    in_phase(
        "mounting the root",
        rootdev::mount_root(&dev, SYSROOT, params.fstype, flags, &data),
    )?;
    if params.debug {
        say!(
            "ostree-prepare-root: mounted {} at /sysroot ({})",
            dev.path,
            if params.rw { "rw" } else { "ro" }
        );
    }
    phases.done("mount");

    let sysroot = in_phase("preparing", PathBuf::from(SYSROOT).map_err(Error::from))?;
    let gathered = in_phase(
        "preparing",
        inputs::gather(&sysroot, &cmdline, true, ConfFrom::Root),
    )?;
    inputs::warn_ignored_hotfix(&gathered.facts);
    ensure_filesystems(&gathered.facts, &cmdline, b"/");
    let opts = exec::Options {
        verbose: params.debug,
    };
    in_phase(
        "preparing",
        exec::run_built(plan::service_plan(&gathered.facts), opts),
    )?;
    say!(
        "ostree-prepare-root: booting {} from {}",
        gathered.facts.deployment.rel(),
        dev.path
    );
    phases.done("prepare");

    in_phase("switching root", switch::switch_root(SYSROOT))?;
    phases.done("switch");
    Ok(())
}
