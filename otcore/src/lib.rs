//! `otcore`: what `ostree-prepare-root` and `ostree-unlock` share, as
//! upstream's `libotcore` serves both libostree and its prepare-root.
//!
//! - [`sys`]: the typed system-call layer, the only module with `unsafe`;
//! - [`path`], [`out`]: fixed-capacity paths, messages without allocation;
//! - [`cmdline`], [`keyfile`], [`gvariant`]: the formats (kernel command
//!   line, GLib key files, GVariant `a{sv}`);
//! - [`deploy`]: `ostree=` resolved to a deployment inside SYSROOT;
//! - [`contract`]: every marker, path and key the tools write and read;
//! - [`fs`]: the atomic writer, the directory creator, the tree deleter;
//! - [`backing`]: unlock leftovers in the deployments' backing directories;
//! - [`overlay`]: overlayfs mount data; [`json`]: JSON string literals.
//!
//! It is `no_std` outside of unit tests and never allocates.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod backing;
pub mod cmdline;
pub mod contract;
pub mod deploy;
pub mod fs;
pub mod gvariant;
pub mod json;
pub mod keyfile;
pub mod out;
pub mod overlay;
pub mod path;
pub mod sys;
