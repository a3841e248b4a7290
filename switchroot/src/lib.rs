//! `ostree-prepare-root`: set up an OSTree deployment as the root filesystem.
//!
//! Layout, from pure to effectful:
//! - [`cmdline`], [`keyfile`], [`config`]: parse inputs;
//! - [`deploy`]: resolve `ostree=` to a deployment inside SYSROOT;
//! - [`plan`]: turn facts into an ordered list of mount steps;
//! - [`gvariant`]: serialise `/run/ostree-booted`;
//! - [`inputs`]: read the facts from the running system;
//! - [`exec`]: apply a plan, undoing it on failure;
//! - [`sys`]: the only module that makes system calls.
//!
//! The library never allocates; it is `no_std` outside of unit tests.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
// Errors and plan steps carry fixed-size path buffers instead of heap strings,
// so they are large by design; they are moved rarely (once per failure).
#![allow(clippy::result_large_err, clippy::large_enum_variant)]

pub mod app;
pub mod bootparams;
pub mod cmdline;
pub mod config;
pub mod deploy;
pub mod error;
pub mod exec;
pub mod gvariant;
pub mod inputs;
pub mod keyfile;
pub mod modules;
pub mod out;
pub mod path;
pub mod pid1;
pub mod plan;
pub mod probe;
pub mod rootdev;
pub mod switch;
pub mod sys;
