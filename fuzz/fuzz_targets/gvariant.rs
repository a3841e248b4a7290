//! The GVariant a{sv} reader on arbitrary bytes (a /run/ostree-booted that
//! another tool, or an attacker, wrote).
#![no_main]

use libfuzzer_sys::fuzz_target;
use otcore::gvariant;

fuzz_target!(|data: &[u8]| {
    for key in ["backing-root-device-inode", "sysroot-ro", "transient-etc", ""] {
        let _ = gvariant::lookup(data, key);
        let _ = gvariant::lookup_u64_pair(data, key);
        let _ = gvariant::lookup_bool(data, key);
    }
});
