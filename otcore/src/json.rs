//! JSON output without allocation: string literals escaped as RFC 8259 asks.

#![forbid(unsafe_code)]

use core::fmt::{self, Write};

/// `bytes` as a JSON string literal: quoted, with `"`, `\` and control
/// characters escaped; bytes that are not UTF-8 become U+FFFD, so the
/// output is always valid JSON (and valid UTF-8).
pub struct Str<'a>(pub &'a [u8]);

impl fmt::Display for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '"' => f.write_str("\\\"")?,
                    '\\' => f.write_str("\\\\")?,
                    '\n' => f.write_str("\\n")?,
                    '\r' => f.write_str("\\r")?,
                    '\t' => f.write_str("\\t")?,
                    c if (c as u32) < 0x20 || c == '\u{7f}' => write!(f, "\\u{:04x}", c as u32)?,
                    c => f.write_char(c)?,
                }
            }
            if !chunk.invalid().is_empty() {
                f.write_char('\u{FFFD}')?;
            }
        }
        f.write_char('"')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        let s = |b: &[u8]| std::format!("{}", Str(b));
        assert_eq!(s(b"te\"st"), r#""te\"st""#);
        assert_eq!(s(b"a\\b\n\x01\x7f"), r#""a\\b\n\u0001\u007f""#);
        assert_eq!(s(b"\xff-\xc3\xa9"), "\"\u{FFFD}-\u{e9}\"");
        assert_eq!(s(b""), "\"\"");
    }
}
