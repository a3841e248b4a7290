//! The module tables on arbitrary bytes: modules.dep (finding a module and
//! its dependencies), modules.softdep (soft dependencies) and modules.alias
//! (glob patterns matched against a name, the name taken from the input too).
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchroot::modules::{self, Soft};

fuzz_target!(|data: &[u8]| {
    for name in [&b"overlay"[..], b"ext4", b"", b"a-b_c"] {
        if let Some(line) = modules::find(data, name) {
            // Dependencies are slices of the file, never empty.
            for dep in line.deps_in_load_order() {
                assert!(!dep.is_empty());
            }
        }
        for kind in [Soft::Pre, Soft::Post] {
            modules::softdeps(data, name, kind, |d| assert!(!d.is_empty()));
        }
        modules::alias_targets(data, name, |m| assert!(!m.is_empty()));
    }
    // The first line as a glob, the rest as the name: the matcher on
    // hostile patterns (many stars) must stay fast and never panic.
    let mut parts = data.splitn(2, |&b| b == b'\n');
    if let (Some(pattern), Some(name)) = (parts.next(), parts.next()) {
        let _ = modules::alias_matches(pattern, name);
    }
});
