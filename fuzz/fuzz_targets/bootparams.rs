//! PID 1's reading of the command line: root=, rootflags=, rootwait...,
//! module parameters and module lists, on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use otcore::cmdline::Cmdline;
use switchroot::{bootparams, modules};

fuzz_target!(|data: &[u8]| {
    let c = Cmdline::new(data);
    let _ = bootparams::BootParams::parse(&c);
    let _ = bootparams::RootSpec::parse(data);
    let _ = bootparams::decimal(data);
    let mut opts = heapless::Vec::new();
    let _ = bootparams::mount_options(data, &mut opts);
    let mut params = heapless::Vec::new();
    modules::params_for(&c, b"overlay", &mut params);
    modules::requested(data, &c, |_, _| {});
    let _ = modules::name_of_path(data);
    let _ = modules::is_compressed(data);
});
