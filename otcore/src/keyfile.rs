//! A streaming parser for GLib "key files" (the INI dialect of ostree's
//! `prepare-root.conf` and `ostree/repo/config`), with no allocation.
//!
//! Accepted, as GKeyFile accepts: blank lines; `#` comments; `[group]` headers;
//! `key = value` pairs (whitespace around `=` ignored). Anything else, or a
//! key before the first group, is an error that carries the 1-based line number.

#![forbid(unsafe_code)]

/// Why a key file was rejected, and on which line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: u32,
    pub what: &'static str,
}

/// One `key=value` entry, with its group and line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    pub group: &'a [u8],
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub line: u32,
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Parse `text`, calling `on_entry` for every key/value pair in order.
/// `on_entry` may itself reject an entry (bad value) with a message.
pub fn parse<'a>(
    text: &'a [u8],
    mut on_entry: impl FnMut(Entry<'a>) -> Result<(), &'static str>,
) -> Result<(), SyntaxError> {
    if core::str::from_utf8(text).is_err() {
        let line = text
            .utf8_chunks()
            .next()
            .map_or(0, |c| c.valid().bytes().filter(|&b| b == b'\n').count());
        return Err(SyntaxError {
            line: line as u32 + 1,
            what: "is not valid UTF-8",
        });
    }
    let mut group: Option<&[u8]> = None;
    for (idx, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line = idx as u32 + 1;
        let err = |what| SyntaxError { line, what };
        let l = trim(raw);
        if l.is_empty() || l[0] == b'#' {
            continue;
        }
        if l[0] == b'[' {
            let name = match l.iter().position(|&b| b == b']') {
                Some(end) if end == l.len() - 1 => &l[1..end],
                Some(_) => return Err(err("has text after the closing ']' of a group")),
                None => return Err(err("has a group header without a closing ']'")),
            };
            if name.is_empty() || name.iter().any(|&b| b == b'[' || b.is_ascii_control()) {
                return Err(err("has an invalid group name"));
            }
            group = Some(name);
            continue;
        }
        let Some(eq) = l.iter().position(|&b| b == b'=') else {
            return Err(err("is not a key=value pair, a [group] or a # comment"));
        };
        let key = trim(&l[..eq]);
        if key.is_empty() {
            return Err(err("has an empty key"));
        }
        let Some(group) = group else {
            return Err(err("has a key before the first [group]"));
        };
        on_entry(Entry {
            group,
            key,
            value: trim(&l[eq + 1..]),
            line,
        })
        .map_err(err)?;
    }
    Ok(())
}

/// A GKeyFile boolean: `true`/`1` or `false`/`0`, case-sensitive, as GLib.
pub fn parse_bool(value: &[u8]) -> Result<bool, &'static str> {
    match value {
        b"true" | b"1" => Ok(true),
        b"false" | b"0" => Ok(false),
        _ => Err("has a value that is not a boolean (true, false, 1 or 0)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: impl AsRef<[u8]>) -> Result<Vec<(String, String, String, u32)>, SyntaxError> {
        let mut out = Vec::new();
        parse(text.as_ref(), |e| {
            let s = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
            out.push((s(e.group), s(e.key), s(e.value), e.line));
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn accepts_glib_syntax() {
        let text = "# comment\n\n[sysroot]\nreadonly = true\n  [etc]  \ntransient=false\r\n\
                    [remote \"x y\"]\nurl=https://example.invalid/a=b\n";
        let got = entries(text).unwrap();
        let want = [
            ("sysroot", "readonly", "true", 4),
            ("etc", "transient", "false", 6),
            ("remote \"x y\"", "url", "https://example.invalid/a=b", 8),
        ];
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert_eq!((g.0.as_str(), g.1.as_str(), g.2.as_str(), g.3), w);
        }
    }

    #[test]
    fn rejects_with_line_numbers() {
        let cases: [(&[u8], u32); 7] = [
            (b"[a]\nok=1\nthis is not valid\n", 3),
            (b"key=1\n", 1),
            (b"[a\n", 1),
            (b"[a]x\n", 1),
            (b"[]\n", 1),
            (b"[a]\n=1\n", 2),
            (b"[a]\n\n\nk=\xff\n", 4),
        ];
        for (text, line) in cases {
            let e = entries(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e:?}");
        }
    }

    #[test]
    fn booleans_as_glib() {
        for (v, want) in [("true", true), ("1", true), ("false", false), ("0", false)] {
            assert_eq!(parse_bool(v.as_bytes()), Ok(want), "{v}");
        }
        for v in ["yes", "True", "", "2", "on"] {
            assert!(parse_bool(v.as_bytes()).is_err(), "{v}");
        }
    }
}
