//! `ostree-prepare-root`: set up an OSTree deployment as the root filesystem.
//!
//! Layout, from pure to effectful (the formats, `ostree=` resolution, the
//! on-disk contract and the system calls are `otcore`'s):
//! - [`config`]: `prepare-root.conf` and the repository config;
//! - [`plan`]: turn facts into an ordered list of mount steps;
//! - [`inputs`]: read the facts from the running system;
//! - [`exec`]: apply a plan, undoing it on failure;
//! - [`app`]: the service mode (`ostree-prepare-root /sysroot`);
//! - [`pid1`] and what it uses ([`bootparams`], [`rootdev`], [`probe`],
//!   [`modules`], [`switch`]): the PID 1 modes.
//!
//! The library never allocates; it is `no_std` outside of unit tests.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod app;
#[cfg(feature = "pid1")]
pub mod bootparams;
#[cfg(feature = "composefs")]
pub mod composefs;
pub mod config;
pub mod error;
pub mod exec;
pub mod inputs;
#[cfg(feature = "pid1")]
pub mod modules;
#[cfg(feature = "pid1")]
pub mod pid1;
pub mod plan;
#[cfg(feature = "pid1")]
pub mod probe;
#[cfg(feature = "pid1")]
pub mod rootdev;
#[cfg(feature = "pid1")]
pub mod switch;

use otcore::sys::{self, Args};

/// The whole program: the PID 1 modes when asked for (see [`pid1::Launch`]),
/// else the service mode. Returns the exit status.
pub fn main(args: &Args) -> i32 {
    let rest = args.rest();
    #[cfg(not(feature = "pid1"))]
    if rest.first().is_some_and(|a| a.starts_with(b"--pid1=")) || sys::getpid() == 1 {
        return no_pid1_modes();
    }
    #[cfg(feature = "pid1")]
    match pid1::Launch::of(rest.first().copied()) {
        pid1::Launch::Pid1 { forced } => {
            // `--pid1=` is ours: init gets the kernel's arguments without it.
            let skip = usize::from(forced.is_some());
            let init_argv: heapless::Vec<&core::ffi::CStr, { sys::MAX_ARGS }> = args
                .argv
                .iter()
                .take(1)
                .chain(args.argv.iter().skip(1 + skip))
                .copied()
                .collect();
            pid1::run(forced, &init_argv, &args.envp())
        }
        pid1::Launch::UnknownMode => {
            otcore::warn!("ostree-prepare-root: --pid1= takes initramfs or no-initramfs");
            return error::EXIT_USAGE;
        }
        pid1::Launch::Service => {}
    }
    // Markers and staging files are opened for writing: none may land on a
    // closed 1 or 2 (PID 1 fills them from the console).
    sys::fill_std_fds(b"/dev/null");
    app::main(&rest)
}

/// Started as PID 1 (or with `--pid1=`) by a build without the PID 1 modes:
/// say so; as PID 1, reboot rather than exit into a kernel panic.
#[cfg(not(feature = "pid1"))]
fn no_pid1_modes() -> i32 {
    otcore::warn!(
        "ostree-prepare-root: this build has no PID 1 modes (built without the pid1 feature); \
         run it as a service step: ostree-prepare-root /sysroot"
    );
    if sys::getpid() == 1 {
        sys::sleep_ms(10_000);
        sys::reboot(sys::Power::Reboot);
        sys::pause_forever()
    }
    error::EXIT_USAGE
}
