//! The kernel command line, split exactly as the kernel splits it.
//!
//! Rules (from the kernel's `next_arg()` in lib/cmdline.c / kernel/params.c):
//! - parameters are separated by runs of whitespace (space, tab, newline, VT, FF, CR);
//! - a double quote toggles "quoted" mode, in which whitespace does not split;
//!   there are no escapes;
//! - the first `=` (quoted or not) separates key and value; a value wrapped in
//!   quotes loses them (`k="a b"` → `a b`), and a wholly quoted parameter loses
//!   its outer quotes (`"k=a b"` → key `k`, value `a b`);
//! - a bare `--` ends the kernel's parameters: what follows belongs to init.
//!
//! Lookup policy: the FIRST occurrence of a key wins, as in ostree's own
//! `ostree-prepare-root` (which stops at the first `ostree=`). Keys match whole:
//! `xostree=` is not `ostree=`.

#![forbid(unsafe_code)]

/// Longest command line we accept. The kernel's own limit is 2048 bytes on
/// x86 (COMMAND_LINE_SIZE); a bootloader-supplied override for tests may be longer.
pub const CMDLINE_MAX: usize = 4096;

/// One `key[=value]` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    pub key: &'a [u8],
    /// `None` for a bare `key`; `Some(b"")` for `key=`.
    pub value: Option<&'a [u8]>,
}

/// A borrowed kernel command line.
#[derive(Debug, Clone, Copy)]
pub struct Cmdline<'a> {
    bytes: &'a [u8],
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

impl<'a> Cmdline<'a> {
    /// Wrap raw bytes (from `/proc/cmdline` or argv). Input stops at the
    /// first NUL; trailing whitespace (the newline of `/proc/cmdline`) is dropped.
    pub fn new(bytes: &'a [u8]) -> Self {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        Cmdline {
            bytes: bytes[..end].trim_ascii_end(),
        }
    }

    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The kernel's parameters, in order, up to (not including) a bare `--`.
    pub fn params(&self) -> Params<'a> {
        Params {
            rest: self.bytes,
            stop_at_dashes: true,
        }
    }

    /// The arguments after a bare `--` (passed by the kernel to init).
    pub fn init_args(&self) -> Params<'a> {
        let mut all = Params {
            rest: self.bytes,
            stop_at_dashes: false,
        };
        for p in all.by_ref() {
            if p.key == b"--" && p.value.is_none() {
                return all;
            }
        }
        Params {
            rest: b"",
            stop_at_dashes: false,
        }
    }

    /// First parameter named `key` (before `--`), if any.
    pub fn get(&self, key: &[u8]) -> Option<Param<'a>> {
        self.params().find(|p| p.key == key)
    }

    /// Value of the first `key=value`; `None` when absent or given without `=`.
    pub fn value(&self, key: &[u8]) -> Option<&'a [u8]> {
        self.get(key).and_then(|p| p.value)
    }

    /// Whether `key` is present, with or without a value.
    pub fn has(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }
}

/// Iterator over [`Param`]s.
#[derive(Debug, Clone)]
pub struct Params<'a> {
    rest: &'a [u8],
    stop_at_dashes: bool,
}

impl<'a> Iterator for Params<'a> {
    type Item = Param<'a>;

    fn next(&mut self) -> Option<Param<'a>> {
        let start = self.rest.iter().position(|&b| !is_space(b))?;
        let mut arg = &self.rest[start..];

        let quoted = arg.first() == Some(&b'"');
        if quoted {
            arg = &arg[1..];
        }
        let mut in_quote = quoted;
        let mut equals = None;
        let mut end = arg.len();
        for (i, &b) in arg.iter().enumerate() {
            if is_space(b) && !in_quote {
                end = i;
                break;
            }
            // The kernel records `equals` only at i > 0: a parameter starting
            // with `=` has no key/value split.
            if equals.is_none() && b == b'=' && i > 0 {
                equals = Some(i);
            }
            if b == b'"' {
                in_quote = !in_quote;
            }
        }
        self.rest = &arg[end..];
        let mut token = &arg[..end];
        // A wholly quoted parameter loses its closing quote.
        if quoted && token.last() == Some(&b'"') {
            token = &token[..token.len() - 1];
        }
        let param = match equals {
            None => Param {
                key: token,
                value: None,
            },
            Some(eq) => {
                let key = &token[..eq];
                let mut value = token.get(eq + 1..).unwrap_or(b"");
                if value.first() == Some(&b'"') {
                    value = &value[1..];
                    if value.last() == Some(&b'"') {
                        value = &value[..value.len() - 1];
                    }
                }
                Param {
                    key,
                    value: Some(value),
                }
            }
        };
        if self.stop_at_dashes && param.key == b"--" && param.value.is_none() {
            self.rest = b"";
            return None;
        }
        Some(param)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(s: &str) -> Vec<(String, Option<String>)> {
        Cmdline::new(s.as_bytes())
            .params()
            .map(|p| {
                (
                    String::from_utf8(p.key.to_vec()).unwrap(),
                    p.value.map(|v| String::from_utf8(v.to_vec()).unwrap()),
                )
            })
            .collect()
    }

    fn one(k: &str, v: Option<&str>) -> (String, Option<String>) {
        (k.to_string(), v.map(str::to_string))
    }

    type Case = (
        &'static str,
        &'static [(&'static str, Option<&'static str>)],
    );

    #[test]
    fn tokenizer_table() {
        let cases: &[Case] = &[
            ("", &[]),
            ("   \n", &[]),
            ("quiet", &[("quiet", None)]),
            ("a=1 b=2\n", &[("a", Some("1")), ("b", Some("2"))]),
            ("a=1\tb=2", &[("a", Some("1")), ("b", Some("2"))]),
            ("  a=1   \t  b  ", &[("a", Some("1")), ("b", None)]),
            ("k=", &[("k", Some(""))]),
            ("k=a=b", &[("k", Some("a=b"))]),
            ("=x", &[("=x", None)]),
            (r#"k="a b" c"#, &[("k", Some("a b")), ("c", None)]),
            (r#""k=a b" c"#, &[("k", Some("a b")), ("c", None)]),
            (r#"k=a"b c"d e"#, &[("k", Some(r#"a"b c"d"#)), ("e", None)]),
            (
                r#"x="a ostree=/y" z"#,
                &[("x", Some("a ostree=/y")), ("z", None)],
            ),
            (r#""quoted flag""#, &[("quoted flag", None)]),
            // An unterminated quote swallows the rest of the line, as in the kernel.
            (r#"k="a b c"#, &[("k", Some("a b c"))]),
            ("a -- b=1", &[("a", None)]),
            ("a --x b", &[("a", None), ("--x", None), ("b", None)]),
            ("a --=1 b", &[("a", None), ("--", Some("1")), ("b", None)]),
        ];
        for &(input, want) in cases {
            let want: Vec<_> = want.iter().map(|&(k, v)| one(k, v)).collect();
            assert_eq!(kv(input), want, "input {input:?}");
        }
    }

    #[test]
    fn lookup_first_wins_and_whole_keys_only() {
        let c = Cmdline::new(b"xostree=/bad ostree=/first ostree=/second ostreex=/no");
        assert_eq!(c.value(b"ostree"), Some(&b"/first"[..]));
        assert!(!Cmdline::new(b"ostree.foo=1").has(b"ostree"));
        assert_eq!(Cmdline::new(b"ostree").value(b"ostree"), None);
        assert!(Cmdline::new(b"ostree").has(b"ostree"));
        assert_eq!(Cmdline::new(b"").value(b"ostree"), None);
    }

    #[test]
    fn dashes_end_kernel_part() {
        let c = Cmdline::new(b"root=/dev/sda -- ostree=/x single");
        assert_eq!(c.value(b"ostree"), None);
        let init: Vec<_> = c.init_args().map(|p| p.key).collect();
        assert_eq!(init, vec![&b"ostree"[..], &b"single"[..]]);
        assert_eq!(Cmdline::new(b"a b").init_args().count(), 0);
    }

    #[test]
    fn trailing_newline_is_not_part_of_the_line() {
        assert_eq!(Cmdline::new(b"quiet ro\n").as_bytes(), b"quiet ro");
    }

    #[test]
    fn stops_at_nul() {
        let c = Cmdline::new(b"ostree=/a\0ostree=/b");
        assert_eq!(c.value(b"ostree"), Some(&b"/a"[..]));
    }

    #[test]
    fn pathological_inputs_terminate() {
        for s in [
            "\"", "\"\"", "=", "==", "\" \"", "a\"", "\"=\"", "--", "-- --", "\"--\"",
        ] {
            let n = Cmdline::new(s.as_bytes()).params().count();
            assert!(n <= s.len(), "{s:?}");
        }
        let long = "a ".repeat(CMDLINE_MAX);
        assert_eq!(Cmdline::new(long.as_bytes()).params().count(), CMDLINE_MAX);
    }
}
