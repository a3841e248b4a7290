//! Module alias patterns as modprobe matches them: kmod normalises both the
//! pattern of `modules.alias` and the name asked for (`-` becomes `_`,
//! except inside `[...]`), then compares them with `fnmatch(3)` without
//! flags (`*` matches `/` too, `\` escapes).

/// `-` → `_` outside bracket expressions, as kmod's `alias_normalize`.
pub fn alias_normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_class = false;
    for c in s.chars() {
        match c {
            '[' if !in_class => {
                in_class = true;
                out.push(c);
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            '-' if !in_class => out.push('_'),
            _ => out.push(c),
        }
    }
    out
}

/// A module name as the kernel spells it: `-` → `_`.
pub fn modname_normalize(s: &str) -> String {
    s.replace('-', "_")
}

/// Whether the bracket expression starting at `pat[p] == b'['` matches `c`:
/// `Some((matched, index after the closing ']'))`, or `None` when there is
/// no closing `]` (the `[` is then an ordinary character, as in fnmatch).
fn class(pat: &[u8], p: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = p + 1;
    let neg = matches!(pat.get(i), Some(b'!' | b'^'));
    if neg {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let &b = pat.get(i)?;
        if b == b']' && !first {
            return Some((matched != neg, i + 1));
        }
        first = false;
        let lo = if b == b'\\' {
            i += 1;
            *pat.get(i)?
        } else {
            b
        };
        i += 1;
        if pat.get(i) == Some(&b'-') && pat.get(i + 1).is_some_and(|&h| h != b']') {
            let mut hi = pat[i + 1];
            i += 2;
            if hi == b'\\' {
                hi = *pat.get(i)?;
                i += 1;
            }
            matched |= lo <= c && c <= hi;
        } else {
            matched |= lo == c;
        }
    }
}

/// If the pattern element at `p` (not `*`) matches `c`, the index after it.
fn step(pat: &[u8], p: usize, c: u8) -> Option<usize> {
    match *pat.get(p)? {
        b'?' => Some(p + 1),
        b'[' => match class(pat, p, c) {
            Some((true, next)) => Some(next),
            Some((false, _)) => None,
            None => (c == b'[').then_some(p + 1),
        },
        // A trailing `\` matches nothing (glibc's fnmatch fails on it).
        b'\\' => (pat.get(p + 1) == Some(&c)).then_some(p + 2),
        b => (b == c).then_some(p + 1),
    }
}

/// `fnmatch(pattern, text, 0)`.
pub fn fnmatch(pattern: &str, text: &str) -> bool {
    let (pat, s) = (pattern.as_bytes(), text.as_bytes());
    let (mut p, mut t) = (0, 0);
    // Where to resume after the last `*`: (pattern index after it, text index).
    let mut star: Option<(usize, usize)> = None;
    while t < s.len() {
        if pat.get(p) == Some(&b'*') {
            p += 1;
            star = Some((p, t));
            continue;
        }
        if let Some(next) = step(pat, p, s[t]) {
            p = next;
            t += 1;
            continue;
        }
        match star {
            Some((sp, st)) => {
                p = sp;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    pat[p..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Module alias shapes; [`fnmatch_agrees_with_the_c_library`] covers the rest.
    #[test]
    fn fnmatch_like_libc() {
        let cases: &[(&str, &str, bool)] = &[
            ("crypto_crc32c", "crypto_crc32c", true),
            ("crypto_crc32c", "crypto_crc32", false),
            ("crypto_crc32c*", "crypto_crc32c", true),
            (
                "pci:v00001AF4d00001001sv*sd*bc*sc*i*",
                "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00",
                true,
            ),
            (
                "pci:v00001AF4d00001001sv*sd*bc*sc*i*",
                "pci:v00001AF4d00001002sv00001AF4sd00000002bc01sc00i00",
                false,
            ),
            ("virtio:d00000002v*", "virtio:d00000002v00001AF4", true),
            ("of:N*T*Cvirtio,mmio", "of:NvirtioTCvirtio,mmio", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("*", "", true),
            ("?", "", false),
            ("a?c", "abc", true),
            ("[abc]x", "bx", true),
            ("[!abc]x", "bx", false),
            ("[^abc]x", "dx", true),
            ("[a-f]1", "e1", true),
            ("[a-f]1", "g1", false),
            ("[]]", "]", true),
            ("[a-]", "-", true),
            ("[", "[", true),
            ("a\\*", "a*", true),
            ("a\\*", "ab", false),
            (
                "usb:v*p*d*dc*dsc*dp*ic08isc06ip50in*",
                "usb:v0781p5567d0100dc00dsc00dp00ic08isc06ip50in00",
                true,
            ),
            // No FNM_PATHNAME: `*` crosses `/`.
            ("a*z", "a/b/z", true),
            ("a\\", "a\\", false),
        ];
        for &(p, t, want) in cases {
            assert_eq!(fnmatch(p, t), want, "fnmatch({p:?}, {t:?})");
        }
    }

    /// The C library's `fnmatch(pattern, text, 0) == 0`.
    fn libc_fnmatch(pattern: &str, text: &str) -> bool {
        let p = std::ffi::CString::new(pattern).unwrap();
        let t = std::ffi::CString::new(text).unwrap();
        // SAFETY: both are NUL-terminated strings that outlive the call.
        unsafe { libc::fnmatch(p.as_ptr(), t.as_ptr(), 0) == 0 }
    }

    #[test]
    fn fnmatch_agrees_with_the_c_library() {
        // A fixed pseudo-random sequence (xorshift), so failures repeat.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n) as usize
        };
        let pat_chars = b"ab-_*?[]!^\\";
        let text_chars = b"ab-_[]!^*?\\";
        for _ in 0..20_000 {
            let p: String = (0..next(8)).map(|_| pat_chars[next(11)] as char).collect();
            let t: String = (0..next(7)).map(|_| text_chars[next(11)] as char).collect();
            assert_eq!(
                fnmatch(&p, &t),
                libc_fnmatch(&p, &t),
                "fnmatch({p:?}, {t:?})"
            );
        }
    }

    #[test]
    fn normalisation_keeps_classes() {
        assert_eq!(alias_normalize("crypto-crc32c"), "crypto_crc32c");
        assert_eq!(
            alias_normalize("char-major-10-[0-9]*"),
            "char_major_10_[0-9]*"
        );
        assert_eq!(modname_normalize("virtio-blk"), "virtio_blk");
    }
}
