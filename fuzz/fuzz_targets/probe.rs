//! The superblock, GPT and MBR probes on arbitrary bytes: what a hostile or
//! damaged disk shows PID 1. Panics (an out-of-range slice, an overflow in
//! a debug build) and hangs are bugs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchroot::probe;

fuzz_target!(|data: &[u8]| {
    let _ = probe::probe_fs(data);
    let _ = probe::parse_gpt_header(data);
    for entry in data.chunks(128) {
        let _ = probe::parse_gpt_entry(entry);
    }
    for number in [0, 1, 4, 5, u32::MAX] {
        let _ = probe::mbr_partuuid(data, number);
    }
});
