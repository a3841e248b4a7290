//! Fixed-capacity paths: every path this tool builds fits in [`PATH_CAP`] bytes,
//! and building a longer one is an error, never a truncation or an allocation.

#![forbid(unsafe_code)]

use core::fmt;

/// Capacity of a [`PathBuf`]. OSTree paths are short (a 64-hex checksum is the
/// longest component); 256 bytes leave room for any sane SYSROOT.
pub const PATH_CAP: usize = 256;

/// A byte path of bounded length, built by joining components.
#[derive(PartialEq, Eq, Default)]
pub struct PathBuf {
    buf: heapless::Vec<u8, PATH_CAP>,
}

impl Clone for PathBuf {
    // One out-of-line copy instead of an element-by-element clone inlined at
    // every call site.
    #[inline(never)]
    fn clone(&self) -> Self {
        let mut p = PathBuf::new();
        let _ = p.buf.extend_from_slice(&self.buf);
        p
    }
}

/// The path being built did not fit in [`PATH_CAP`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong;

impl PathBuf {
    pub const fn new() -> Self {
        PathBuf {
            buf: heapless::Vec::new(),
        }
    }

    // The path helpers are called from dozens of places; keeping them out of
    // line keeps the binary within its size budget.
    #[inline(never)]
    pub fn from(s: &[u8]) -> Result<Self, TooLong> {
        let mut p = PathBuf::new();
        p.push_raw(s)?;
        Ok(p)
    }

    /// As much of `s` as fits: for messages only, where a cut path is better
    /// than none.
    #[inline(never)]
    pub fn from_lossy(s: &[u8]) -> Self {
        let mut p = PathBuf::new();
        let _ = p.buf.extend_from_slice(&s[..s.len().min(PATH_CAP)]);
        p
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Shorten to `len` bytes (used to undo a tentative [`PathBuf::push`]).
    pub fn truncate(&mut self, len: usize) {
        self.buf.truncate(len);
    }

    /// Append raw bytes with no separator handling.
    pub fn push_raw(&mut self, s: &[u8]) -> Result<(), TooLong> {
        self.buf.extend_from_slice(s).map_err(|_| TooLong)
    }

    /// Append `rel` as one or more components, inserting exactly one `/`
    /// between this path and `rel` (a leading `/` in `rel` does not restart the path).
    #[inline(never)]
    pub fn push(&mut self, rel: &[u8]) -> Result<(), TooLong> {
        let rel = trim_leading_slashes(rel);
        if rel.is_empty() {
            return Ok(());
        }
        let len = self.buf.len();
        if !self.buf.is_empty() && self.buf.last() != Some(&b'/') {
            self.push_raw(b"/")?;
        }
        // All or nothing: a failed push leaves the path as it was.
        self.push_raw(rel).inspect_err(|_| self.buf.truncate(len))
    }

    /// `self` joined with `rel`, as a new path.
    #[inline(never)]
    pub fn join(&self, rel: &[u8]) -> Result<PathBuf, TooLong> {
        let mut p = self.clone();
        p.push(rel)?;
        Ok(p)
    }

    /// Remove the last component (`a/b/c` → `a/b`; `a` → ``; `/a` → `/`).
    pub fn pop(&mut self) -> bool {
        let Some(pos) = self.buf.iter().rposition(|&b| b == b'/') else {
            let had = !self.buf.is_empty();
            self.buf.clear();
            return had;
        };
        self.buf.truncate(if pos == 0 { 1 } else { pos });
        true
    }

    /// The last component.
    pub fn file_name(&self) -> &[u8] {
        match self.buf.iter().rposition(|&b| b == b'/') {
            Some(pos) => &self.buf[pos + 1..],
            None => &self.buf,
        }
    }
}

/// Strip leading `/` characters.
pub fn trim_leading_slashes(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b'/').count();
    &s[n..]
}

/// Iterate over the non-empty components of a path.
pub fn components(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    s.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

/// Writes bytes as text, replacing invalid UTF-8 with U+FFFD.
pub struct Lossy<'a>(pub &'a [u8]);

impl fmt::Display for Lossy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{FFFD}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for PathBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Lossy(&self.buf).fmt(f)
    }
}

impl fmt::Debug for PathBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_join_pop() {
        let cases: &[(&[u8], &[u8], &[u8])] = &[
            (b"/sysroot", b"usr", b"/sysroot/usr"),
            (b"/sysroot/", b"/usr", b"/sysroot/usr"),
            (b"/", b"run", b"/run"),
            (b"", b"a/b", b"a/b"),
            (b"/a", b"", b"/a"),
        ];
        for &(base, rel, want) in cases {
            let p = PathBuf::from(base).unwrap().join(rel).unwrap();
            assert_eq!(p.as_bytes(), want, "{base:?} + {rel:?}");
        }
        let mut p = PathBuf::from(b"/a/b").unwrap();
        assert!(p.pop());
        assert_eq!(p.as_bytes(), b"/a");
        assert!(p.pop());
        assert_eq!(p.as_bytes(), b"/");
        let mut p = PathBuf::from(b"a").unwrap();
        assert!(p.pop());
        assert!(p.is_empty());
        assert!(!p.pop());
    }

    #[test]
    fn too_long_is_an_error() {
        let long = [b'x'; PATH_CAP];
        let mut p = PathBuf::from(b"/").unwrap();
        assert_eq!(p.push(&long), Err(TooLong));
    }

    #[test]
    fn lossy_display() {
        let p = PathBuf::from(b"/a\xffb").unwrap();
        assert_eq!(format!("{p}"), "/a\u{FFFD}b");
    }
}
