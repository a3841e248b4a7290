//! The kernel command line tokenizer on arbitrary bytes.
//! Errors are impossible by design; panics, hangs and out-of-bounds slices are bugs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use otcore::cmdline::Cmdline;

fn within(outer: &[u8], inner: &[u8]) -> bool {
    let (o, i) = (outer.as_ptr() as usize, inner.as_ptr() as usize);
    inner.is_empty() || (i >= o && i + inner.len() <= o + outer.len())
}

fuzz_target!(|data: &[u8]| {
    let c = Cmdline::new(data);
    let mut n = 0;
    for p in c.params().chain(c.init_args()) {
        n += 1;
        assert!(within(data, p.key));
        if let Some(v) = p.value {
            assert!(within(data, v));
        }
        // Every parameter consumes at least one input byte.
        assert!(n <= data.len());
    }
    // Lookups agree with iteration: the first match wins.
    let first = c.params().find(|p| p.key == b"ostree");
    assert_eq!(c.get(b"ostree"), first);
});
