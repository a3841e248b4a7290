//! The `ktest.*` parameters of the kernel command line.
//!
//! Dotted parameters are module parameters to the kernel: it neither passes
//! them to init's argv nor to its environment, so ktest reads `/proc/cmdline`.

/// Split a command line like the kernel: whitespace separates parameters,
/// double quotes group, a value wrapped in quotes loses them.
pub fn split(line: &str) -> Vec<(String, Option<String>)> {
    let mut params = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars().chain(std::iter::once(' ')) {
        if c == '"' {
            quoted = !quoted;
            any = true;
        } else if c.is_whitespace() && !quoted {
            if any {
                params.push(match cur.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (cur.clone(), None),
                });
            }
            cur.clear();
            any = false;
        } else {
            cur.push(c);
            any = true;
        }
    }
    params
}

/// What the host asked of this boot.
#[derive(Debug, Default, Clone)]
pub struct Args {
    /// `ktest.step=NAME`: the label of this boot, echoed back.
    pub step: String,
    /// `ktest.deployment=A|B`: which tree `/` must be.
    pub deployment: Option<String>,
    /// `ktest.root=PATH`: the directory of the physical root `/` must be
    /// (`ostree/deploy/OS/deploy/CSUM.SERIAL`), whatever `ostree=` says.
    pub root: Option<String>,
    /// `ktest.usr=ro|rw`: expected state of `/usr` (default `ro`).
    pub usr_rw: bool,
    /// `ktest.etc=ro|rw`, `ktest.var=ro|rw`: expected writability (default `rw`;
    /// `ro` when the kernel mounted the root read-only and nothing remounted it).
    pub etc_rw: bool,
    pub var_rw: bool,
    /// `ktest.sysroot=ro|rw`: expected mount state of `/sysroot`.
    pub sysroot_rw: Option<bool>,
    /// `ktest.write=PATH` (repeatable): write a file and sync.
    pub write: Vec<String>,
    /// `ktest.exists=PATH` / `ktest.absent=PATH` (repeatable).
    pub exists: Vec<String>,
    pub absent: Vec<String>,
    /// `ktest.run="CMD ARGS"` (repeatable): run a command if present.
    pub run: Vec<String>,
    /// `ktest.mounts`: dump `/proc/self/mountinfo` as diagnostics.
    pub mounts: bool,
    /// `ktest.alone`: no process but the kernel's threads and ktest may be
    /// running when ktest starts (nothing of the initramfs left behind).
    pub alone: bool,
    /// `ktest.composefs[=verity]`: `/` is a composefs (an overlay whose
    /// source is `composefs`, with `verity=require` for `verity`), not the
    /// deployment directory itself.
    pub composefs: Option<String>,
    /// `ktest.booted=KEY=VALUE` (repeatable): `/run/ostree-booted` has KEY
    /// with VALUE (`true`/`false` for booleans, the text for strings).
    pub booted: Vec<(String, String)>,
    /// `ktest.read=PATH` (repeatable): the whole file reads without error.
    pub read: Vec<String>,
    /// `ktest.eio=PATH` (repeatable): reading the file fails with EIO.
    pub eio: Vec<String>,
    /// `ktest.verity=PATH` (repeatable): enable fs-verity (SHA-256, 4096-byte
    /// blocks) on PATH, or on every regular file beneath it.
    pub verity: Vec<String>,
    /// The `ostree=` argument (to find the deployment directory).
    pub ostree: Option<String>,
    /// Unknown `ktest.*` keys, reported so a typo in a scenario fails loudly.
    pub unknown: Vec<String>,
}

fn is_rw(v: &str) -> bool {
    v == "rw"
}

impl Args {
    pub fn parse(line: &str) -> Args {
        let mut a = Args {
            step: "default".into(),
            etc_rw: true,
            var_rw: true,
            ..Args::default()
        };
        for (k, v) in split(line) {
            let val = v.clone().unwrap_or_default();
            match k.as_str() {
                // The first `ostree=` wins, as in ostree-prepare-root.
                "ostree" if a.ostree.is_none() => a.ostree = v,
                "ktest.step" => a.step = val,
                "ktest.deployment" => a.deployment = Some(val),
                "ktest.root" => a.root = Some(val),
                "ktest.usr" => a.usr_rw = is_rw(&val),
                "ktest.etc" => a.etc_rw = is_rw(&val),
                "ktest.var" => a.var_rw = is_rw(&val),
                "ktest.sysroot" => a.sysroot_rw = Some(is_rw(&val)),
                "ktest.write" => a.write.push(val),
                "ktest.exists" => a.exists.push(val),
                "ktest.absent" => a.absent.push(val),
                "ktest.run" => a.run.push(val),
                "ktest.mounts" => a.mounts = true,
                "ktest.alone" => a.alone = true,
                "ktest.composefs" => a.composefs = Some(val),
                "ktest.booted" => {
                    let (k, v) = val.split_once('=').unwrap_or((val.as_str(), ""));
                    a.booted.push((k.to_string(), v.to_string()));
                }
                "ktest.read" => a.read.push(val),
                "ktest.eio" => a.eio.push(val),
                "ktest.verity" => a.verity.push(val),
                k if k.starts_with("ktest.") => a.unknown.push(k.to_string()),
                _ => {}
            }
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_the_kernel() {
        assert_eq!(
            split(" a=1  b \"c=x y\" d=\"p q\"\n"),
            vec![
                ("a".into(), Some("1".into())),
                ("b".into(), None),
                ("c".into(), Some("x y".into())),
                ("d".into(), Some("p q".into())),
            ]
        );
    }

    #[test]
    fn parses_ktest_args() {
        let a = Args::parse(
            "console=ttyS0 ostree=/ostree/boot.1/os/x/0 ktest.step=s1 ktest.usr=rw \
             ktest.exists=/a ktest.exists=/b ktest.run=\"ostree admin unlock\" ktest.bogus=1 ostree=/no \
             ktest.composefs=verity ktest.booted=composefs.signed=/etc/k ktest.eio=/x",
        );
        assert_eq!(a.step, "s1");
        assert!(a.usr_rw);
        assert_eq!(a.exists, vec!["/a", "/b"]);
        assert_eq!(a.run, vec!["ostree admin unlock"]);
        assert_eq!(a.unknown, vec!["ktest.bogus"]);
        assert_eq!(a.ostree.as_deref(), Some("/ostree/boot.1/os/x/0"));
        assert_eq!(a.composefs.as_deref(), Some("verity"));
        assert_eq!(
            a.booted,
            vec![("composefs.signed".to_string(), "/etc/k".to_string())]
        );
        assert_eq!(a.eio, vec!["/x"]);
    }
}
