//! Signed composefs inputs on arbitrary bytes: the public key file (from
//! the initramfs), commit objects and their detached metadata (from the
//! disk, which an attacker may have written).
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchroot::composefs::signed::{self, Commit};

fuzz_target!(|data: &[u8]| {
    let Some((&what, data)) = data.split_first() else {
        return;
    };
    match what % 3 {
        0 => {
            if let Ok(keys) = signed::parse_keys(data) {
                assert!(!keys.is_empty());
            }
            let mut out = [0u8; 48];
            let _ = signed::decode_base64(data, &mut out);
        }
        1 => {
            if let Some(c) = Commit::parse(data) {
                let _ = c.composefs_digest();
                let _ = c.bootc_base();
            }
        }
        _ => {
            if let Ok(sigs) = signed::signatures(data) {
                // Any key: a valid point, and bytes that are none.
                let keys = [[0x11; 32], [0xff; 32]];
                assert!(signed::verify(data, &sigs, &keys).is_err());
            }
        }
    }
});
