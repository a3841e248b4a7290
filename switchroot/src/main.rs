//! The `ostree-prepare-root` binary: no `std`, no heap, one static executable.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

otcore::entry_point!(name: "ostree-prepare-root", run: switchroot::main);
