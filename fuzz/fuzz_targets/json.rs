//! The JSON string writer on arbitrary bytes: the output must be one valid
//! JSON string literal (RFC 8259) that decodes to the input, with U+FFFD for
//! what is not UTF-8 (as `String::from_utf8_lossy`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use otcore::json::Str;

/// Decode a JSON string literal, or `None` if it is not a valid one.
fn decode(lit: &str) -> Option<String> {
    let inner = lit.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return None,
            c if (c as u32) < 0x20 => return None,
            '\\' => match chars.next()? {
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                '/' => out.push('/'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'u' => {
                    let hex: String = (0..4).map(|_| chars.next()).collect::<Option<_>>()?;
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                _ => return None,
            },
            c => out.push(c),
        }
    }
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let lit = format!("{}", Str(data));
    let decoded = decode(&lit).unwrap_or_else(|| panic!("not a JSON string: {lit:?}"));
    assert_eq!(decoded, String::from_utf8_lossy(data));
});
