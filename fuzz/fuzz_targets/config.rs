//! The key-file parser behind prepare-root.conf and ostree/repo/config.
//! Errors are fine; panics are bugs, and an error must name a real line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchroot::config::{repo_config_readonly, PrepareRootConf};
use otcore::keyfile;

fuzz_target!(|data: &[u8]| {
    let lines = data.iter().filter(|&&b| b == b'\n').count() as u32 + 1;
    let mut last_line = 0;
    let r = keyfile::parse(data, |e| {
        assert!(e.line > last_line && e.line <= lines);
        last_line = e.line;
        assert!(!e.key.is_empty());
        Ok(())
    });
    if let Err(e) = r {
        assert!(e.line >= 1 && e.line <= lines);
    }
    if let Err(e) = PrepareRootConf::parse(data) {
        assert!(e.line >= 1 && e.line <= lines);
    }
    let _ = repo_config_readonly(data);
});
