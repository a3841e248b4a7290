//! Overlayfs mount data, byte for byte.

#![forbid(unsafe_code)]

use core::fmt;

use crate::path::{Lossy, TooLong};

/// The mount data of an overlay, `lowerdir=L,upperdir=U,workdir=W`, byte for
/// byte: what mount(2) gets (from `exec` and `ostree-unlock`) and what
/// `--dry-run` prints. Longer than the page mount(2) copies (whose last byte
/// the kernel sets to NUL) is an error, never a truncation.
pub struct OverlayData {
    buf: heapless::Vec<u8, 4095>,
}

impl OverlayData {
    pub fn new(lower: &[u8], upper: &[u8], work: &[u8]) -> Result<OverlayData, TooLong> {
        let mut buf = heapless::Vec::new();
        for part in [
            &b"lowerdir="[..],
            lower,
            b",upperdir=",
            upper,
            b",workdir=",
            work,
        ] {
            buf.extend_from_slice(part).map_err(|_| TooLong)?;
        }
        Ok(OverlayData { buf })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
}

impl fmt::Display for OverlayData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Lossy(&self.buf).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_data_is_exact_bytes_and_never_truncated() {
        let d = OverlayData::new(b"/usr", b"/d/.usr-ovl-upper", b"/d/.usr-ovl-work").unwrap();
        assert_eq!(
            d.as_bytes(),
            b"lowerdir=/usr,upperdir=/d/.usr-ovl-upper,workdir=/d/.usr-ovl-work"
        );
        // Bytes that are not UTF-8 reach mount(2) unchanged.
        let d = OverlayData::new(b"/l\xff", b"/u", b"/w").unwrap();
        assert_eq!(d.as_bytes(), b"lowerdir=/l\xff,upperdir=/u,workdir=/w");
        let long = [b'a'; 2030];
        // 9 + 2030 + 10 + 2030 + 9 = 4088 bytes before the work directory.
        assert_eq!(
            OverlayData::new(&long, &long, b"/wwwwww")
                .unwrap()
                .as_bytes()
                .len(),
            4095
        );
        assert!(OverlayData::new(&long, &long, b"/wwwwwww").is_err());
    }
}
