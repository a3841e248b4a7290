//! The `ostree-unlock` binary: no `std`, no heap, one static executable
//! (the same recipe as `ostree-prepare-root`'s).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

otcore::entry_point!(name: "ostree-unlock", run: unlock::main);
