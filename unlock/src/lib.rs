//! `ostree-unlock`: make `/usr` of an OSTree deployment writable, the way
//! `ostree admin unlock` does, writing the markers `ostree-prepare-root` reads.
//!
//! - development (default): a writable overlay on `/usr` now, gone at reboot;
//! - `--hotfix`: the overlay persists for this deployment (`.usr-ovl-upper`,
//!   `.usr-ovl-work`, `[origin] unlocked=hotfix`), with a pristine clone
//!   deployment (made first, by the system's `ostree admin deploy`), a
//!   pristine boot entry and `--discard` as ways back;
//! - `--transient`: like development, but mounted read-only.
//!
//! Layout: [`args`] parses the command line; [`app`] runs the commands on a
//! [`deployment::Target`]; [`entries`] and [`origin`] read and edit ostree's
//! boot entries and origin files; [`clone`] finds and makes the pristine
//! clone; [`fsutil`] and [`mounts`] change the
//! system. System calls, the on-disk contract and the filesystem helpers are
//! `otcore`'s, shared with `ostree-prepare-root`.
//!
//! Like `ostree-prepare-root`, it is `no_std` and never allocates: files are
//! read into fixed buffers (too large is an error, never a truncation) and
//! messages are formatted on the stack.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod app;
pub mod args;
pub mod clone;
pub mod deployment;
pub mod develop;
pub mod entries;
pub mod error;
pub mod fsutil;
pub mod mounts;
pub mod origin;

use otcore::sys::{self, Args};

/// The whole program; returns the exit status.
pub fn main(args: &Args) -> i32 {
    // The origin file and markers are opened for writing: none may land on
    // a closed 1 or 2, where messages would be written into it.
    sys::fill_std_fds(b"/dev/null");
    let envp = args.envp();
    // The crash tests' hook; the first definition counts, as with getenv.
    #[cfg(feature = "crash-hook")]
    if let Some(v) = envp
        .iter()
        .find_map(|e| e.to_bytes().strip_prefix(b"OSTREE_UNLOCK_STOP_AFTER="))
    {
        app::set_stop_after(v);
    }
    if args.argv_cut {
        otcore::warn!(
            "ostree-unlock: more than {} arguments (see --help)",
            sys::MAX_ARGS - 1
        );
        return 2;
    }
    app::main(&args.rest(), &envp)
}
