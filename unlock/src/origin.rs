//! Reading and editing the `[origin]` group of a deployment's `.origin` key
//! file, keeping every other line as it is.

use core::fmt::{self, Write};

/// The value of `key` in group `[origin]`. A key given twice has its last
/// value, and a group given twice is one group, as GLib (libostree) reads
/// key files.
pub fn get<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let mut in_origin = false;
    let mut found = None;
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            in_origin = l == "[origin]";
        } else if in_origin {
            if let Some((k, v)) = l.split_once('=') {
                if k.trim() == key {
                    found = Some(v.trim());
                }
            }
        }
    }
    found
}

/// Write `text` with `key=value` set in `[origin]` (or removed if `value` is
/// None) to `out`. Every line ends with a newline (and an empty result is
/// one newline). An `Err` means `out` is full.
pub fn set(text: &str, key: &str, value: Option<&str>, out: &mut impl Write) -> fmt::Result {
    let mut out = Counting { out, wrote: false };
    let out = &mut out;
    let mut in_origin = false;
    let mut done = false;
    let mut saw_origin = false;
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            if in_origin && !done {
                if let Some(v) = value {
                    writeln!(out, "{key}={v}")?;
                }
                done = true;
            }
            in_origin = l == "[origin]";
            saw_origin |= in_origin;
            writeln!(out, "{line}")?;
            continue;
        }
        if in_origin && l.split_once('=').is_some_and(|(k, _)| k.trim() == key) {
            if let (Some(v), false) = (value, done) {
                writeln!(out, "{key}={v}")?;
            }
            done = true;
            continue;
        }
        writeln!(out, "{line}")?;
    }
    if !done {
        if let Some(v) = value {
            if !saw_origin {
                writeln!(out, "[origin]")?;
            }
            writeln!(out, "{key}={v}")?;
        }
    }
    if !out.wrote {
        writeln!(out)?;
    }
    Ok(())
}

/// A writer that remembers whether anything was written.
struct Counting<'a, W> {
    out: &'a mut W,
    wrote: bool,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.wrote = true;
        self.out.write_str(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_s(text: &str, key: &str, value: Option<&str>) -> String {
        let mut s = String::new();
        set(text, key, value, &mut s).unwrap();
        s
    }

    #[test]
    fn set_get_remove() {
        let base = "[origin]\nrefspec=testos/stable\n\n[other]\nunlocked=x\n";
        let t = set_s(base, "unlocked", Some("hotfix"));
        assert_eq!(get(&t, "unlocked"), Some("hotfix"));
        assert!(t.contains("refspec=testos/stable"));
        assert!(t.contains("[other]\nunlocked=x"));
        let t2 = set_s(&t, "unlocked", Some("hotfix"));
        assert_eq!(t, t2, "idempotent");
        let t3 = set_s(&t, "unlocked", None);
        assert_eq!(get(&t3, "unlocked"), None);
        assert!(t3.contains("[other]\nunlocked=x"));
        assert_eq!(base, set_s(base, "unlocked", None), "nothing to remove");
        assert_eq!(set_s("", "unlocked", None), "\n");
        assert_eq!(
            get(&set_s("", "unlocked", Some("hotfix")), "unlocked"),
            Some("hotfix")
        );
        // As GLib: the last of a repeated key, across a repeated group.
        assert_eq!(
            get(
                "[origin]\nunlocked=hotfix\n[x]\n[origin]\nunlocked=none\n",
                "unlocked"
            ),
            Some("none")
        );
        let t = set_s(
            "[origin]\nunlocked=a\nunlocked=b\n",
            "unlocked",
            Some("hotfix"),
        );
        assert_eq!(t, "[origin]\nunlocked=hotfix\n", "one key after set");
        assert_eq!(
            get("[origin]\nunlocked = hotfix\n", "unlocked"),
            Some("hotfix")
        );
    }

    #[test]
    fn a_full_buffer_is_an_error() {
        let mut small: heapless::String<8> = heapless::String::new();
        assert!(set(
            "[origin]\nrefspec=x\n",
            "unlocked",
            Some("hotfix"),
            &mut small
        )
        .is_err());
    }
}
