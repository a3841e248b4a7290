//! ostree-unlock's readers and editors of origin files and boot entries on
//! arbitrary text: reading, setting a key, writing a pristine twin.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unlock::{entries, origin};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    let _ = origin::get(text, "unlocked");
    let mut out = String::new();
    if origin::set(text, "unlocked", Some("hotfix"), &mut out).is_ok() {
        // After setting it, the key reads back as set.
        assert_eq!(origin::get(&out, "unlocked"), Some("hotfix"), "{text:?} -> {out:?}");
    }
    let _ = entries::key(text, "options");
    let mut twin = String::new();
    let _ = entries::pristine_text(text, "/ostree/deploy/os/pristine/abc.0", &mut twin);
});
