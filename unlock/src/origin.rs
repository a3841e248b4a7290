//! Reading and editing the `[origin]` group of a deployment's `.origin` key
//! file, keeping every other line as it is.

/// The value of `key` in group `[origin]`.
pub fn get(text: &str, key: &str) -> Option<String> {
    let mut in_origin = false;
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            in_origin = l == "[origin]";
        } else if in_origin {
            if let Some((k, v)) = l.split_once('=') {
                if k.trim() == key {
                    return Some(v.trim().to_string());
                }
            }
        }
    }
    None
}

/// `text` with `key=value` set in `[origin]` (or removed if `value` is None).
pub fn set(text: &str, key: &str, value: Option<&str>) -> String {
    let mut out = Vec::new();
    let mut in_origin = false;
    let mut done = false;
    let mut saw_origin = false;
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            if in_origin && !done {
                if let Some(v) = value {
                    out.push(format!("{key}={v}"));
                }
                done = true;
            }
            in_origin = l == "[origin]";
            saw_origin |= in_origin;
            out.push(line.to_string());
            continue;
        }
        if in_origin && l.split_once('=').is_some_and(|(k, _)| k.trim() == key) {
            if let (Some(v), false) = (value, done) {
                out.push(format!("{key}={v}"));
            }
            done = true;
            continue;
        }
        out.push(line.to_string());
    }
    if !done {
        if let Some(v) = value {
            if !saw_origin {
                out.push("[origin]".into());
            }
            out.push(format!("{key}={v}"));
        }
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_remove() {
        let base = "[origin]\nrefspec=testos/stable\n\n[other]\nunlocked=x\n";
        let t = set(base, "unlocked", Some("hotfix"));
        assert_eq!(get(&t, "unlocked").as_deref(), Some("hotfix"));
        assert!(t.contains("refspec=testos/stable"));
        assert!(t.contains("[other]\nunlocked=x"));
        let t2 = set(&t, "unlocked", Some("hotfix"));
        assert_eq!(t, t2, "idempotent");
        let t3 = set(&t, "unlocked", None);
        assert_eq!(get(&t3, "unlocked"), None);
        assert!(t3.contains("[other]\nunlocked=x"));
        assert_eq!(
            get(&set("", "unlocked", Some("hotfix")), "unlocked").as_deref(),
            Some("hotfix")
        );
        assert_eq!(
            get("[origin]\nunlocked = hotfix\n", "unlocked").as_deref(),
            Some("hotfix")
        );
    }
}
