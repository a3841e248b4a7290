//! `ostree-unlock`: make `/usr` of an OSTree deployment writable, the way
//! `ostree admin unlock` does, writing the markers `ostree-prepare-root` reads.
//!
//! - development (default): a writable overlay on `/usr` now, gone at reboot;
//! - `--hotfix`: the overlay persists for this deployment (`.usr-ovl-upper`,
//!   `.usr-ovl-work`, `[origin] unlocked=hotfix`), with a pristine boot entry
//!   and `--discard` as ways back;
//! - `--transient`: like development, but mounted read-only.
//!
//! Layout: [`args`] parses the command line; [`app`] runs the commands on a
//! [`deployment::Target`]; [`entries`] and [`origin`] read and edit ostree's
//! boot entries and origin files; [`fsutil`] and [`mounts`] change the
//! system. System calls go through `switchroot::sys`, the one module with
//! `unsafe` code.
//!
//! Like `ostree-prepare-root`, it is `no_std` and never allocates: files are
//! read into fixed buffers (too large is an error, never a truncation) and
//! messages are formatted on the stack.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
// Errors carry their message in a fixed buffer instead of a heap string, so
// they are large by design; they are moved rarely (once per failure).
#![allow(clippy::result_large_err)]

pub mod app;
pub mod args;
pub mod deployment;
pub mod entries;
pub mod error;
pub mod fsutil;
pub mod mounts;
pub mod origin;
