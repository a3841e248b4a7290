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
    // The input as a whole disk: the GPT checks (CRCs, the backup header,
    // the protective MBR) and every offset they compute.
    let mut read = |off: u64, buf: &mut [u8]| {
        let Ok(off) = usize::try_from(off) else { return false };
        match data.get(off..).and_then(|d| d.get(..buf.len())) {
            Some(src) => {
                buf.copy_from_slice(src);
                true
            }
            None => false,
        }
    };
    for number in [0, 1, 4, 5, u32::MAX] {
        let _ = probe::mbr_partuuid(data, number);
        let _ = probe::partition_ids(&mut read, data.len() as u64, number);
        let _ = probe::partition_ids(&mut read, u64::MAX, number);
    }
});
