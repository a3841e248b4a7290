//! modules.dep on arbitrary bytes: finding a module and its dependencies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchroot::modules;

fuzz_target!(|data: &[u8]| {
    for name in [&b"overlay"[..], b"ext4", b"", b"a-b_c"] {
        if let Some(line) = modules::find(data, name) {
            // Dependencies are slices of the file, never empty.
            for dep in line.deps_in_load_order() {
                assert!(!dep.is_empty());
            }
        }
    }
});
