//! What `prepare-root.conf`, the legacy repo config and the kernel command
//! line say about how to set up the root. Pure: callers pass file contents.

use otcore::cmdline::Cmdline;
use otcore::keyfile::{self, parse_bool, SyntaxError};

/// Where ostree looks for `prepare-root.conf`, relative to the initramfs root.
/// The first that exists is used, whole: `/etc` replaces `/usr/lib`, no merging
/// (GKeyFile clears itself on each load, so upstream behaves the same).
pub const PREPARE_ROOT_CONF_PATHS: [&[u8]; 2] = [
    b"/etc/ostree/prepare-root.conf",
    b"/usr/lib/ostree/prepare-root.conf",
];

/// The legacy home of `[sysroot] readonly`, relative to SYSROOT.
pub const REPO_CONFIG: &[u8] = b"ostree/repo/config";

/// Kernel argument that overrides `[composefs] enabled`.
pub const COMPOSEFS_KARG: &[u8] = b"ostree.prepare-root.composefs";

/// `[composefs] enabled`, as written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Composefs {
    #[default]
    No,
    /// Use composefs if the deployment has an image; boot without otherwise.
    Maybe,
    Yes,
    /// `yes`, and every file must have fs-verity (`verity=require`).
    Verity,
    /// `verity`, and the image digest must be that of a signed commit.
    Signed,
}

impl Composefs {
    fn parse(v: &[u8]) -> Result<Self, &'static str> {
        Ok(match v {
            b"verity" => Composefs::Verity,
            b"signed" => Composefs::Signed,
            _ => match Use::parse(v) {
                Some(Use::Yes) => Composefs::Yes,
                Some(Use::No) => Composefs::No,
                Some(Use::Maybe) => Composefs::Maybe,
                None => return Err(
                    "has an unknown [composefs] enabled value (want yes, no, maybe, verity or signed)",
                ),
            },
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Composefs::No => "no",
            Composefs::Maybe => "maybe",
            Composefs::Yes => "yes",
            Composefs::Verity => "verity",
            Composefs::Signed => "signed",
        }
    }
}

/// Whether composefs is used: the tristate of upstream's `enabled` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Use {
    #[default]
    No,
    /// When the deployment has an image (`.ostree.cfs`); without one, the
    /// plain deployment directory boots.
    Maybe,
    Yes,
}

impl Use {
    fn parse(v: &[u8]) -> Option<Use> {
        match v {
            b"yes" | b"true" | b"1" => Some(Use::Yes),
            b"no" | b"false" | b"0" => Some(Use::No),
            b"maybe" => Some(Use::Maybe),
            _ => None,
        }
    }
}

/// The composefs setting in force: the file's, as the kernel argument
/// changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ComposefsPolicy {
    pub enabled: Use,
    /// Every file of the image must have fs-verity (`verity=require`).
    pub verity: bool,
    /// The image must be the one a signed commit names.
    pub signed: bool,
}

impl From<Composefs> for ComposefsPolicy {
    fn from(c: Composefs) -> Self {
        let (enabled, verity, signed) = match c {
            Composefs::No => (Use::No, false, false),
            Composefs::Maybe => (Use::Maybe, false, false),
            Composefs::Yes => (Use::Yes, false, false),
            Composefs::Verity => (Use::Yes, true, false),
            Composefs::Signed => (Use::Yes, true, true),
        };
        ComposefsPolicy {
            enabled,
            verity,
            signed,
        }
    }
}

/// Where the public keys of `signed` are, unless `[composefs] keypath` says.
pub const DEFAULT_KEYPATH: &[u8] = b"/etc/ostree/initramfs-root-binding.key";

/// The settings of `prepare-root.conf` this tool understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PrepareRootConf {
    /// `[sysroot] readonly`; `None` when not set.
    pub sysroot_readonly: Option<bool>,
    /// `[etc] transient`.
    pub etc_transient: bool,
    /// `[composefs] enabled`.
    pub composefs: Composefs,
    /// `[root] transient`: a writable root whose changes live in `/run`.
    pub root_transient: bool,
    /// `[root] transient-ro`: the same, mounted read-only.
    pub root_transient_ro: bool,
}

impl PrepareRootConf {
    /// Parse a `prepare-root.conf`. Unknown groups and keys are ignored, as
    /// upstream ignores them; known keys with bad values are errors.
    pub fn parse(text: &[u8]) -> Result<Self, SyntaxError> {
        let mut conf = PrepareRootConf::default();
        let mut last_line = 0;
        keyfile::parse(text, |e| {
            last_line = e.line;
            match (e.group, e.key) {
                (b"sysroot", b"readonly") => conf.sysroot_readonly = Some(parse_bool(e.value)?),
                (b"etc", b"transient") => conf.etc_transient = parse_bool(e.value)?,
                (b"composefs", b"enabled") => conf.composefs = Composefs::parse(e.value)?,
                (b"root", b"transient") => conf.root_transient = parse_bool(e.value)?,
                (b"root", b"transient-ro") => conf.root_transient_ro = parse_bool(e.value)?,
                _ => {}
            }
            Ok(())
        })?;
        if conf.root_transient && conf.root_transient_ro {
            return Err(SyntaxError {
                line: last_line,
                what: "sets both [root] transient and transient-ro (choose one)",
            });
        }
        Ok(conf)
    }

    /// `[root] transient` or `transient-ro`.
    pub fn wants_transient_root(&self) -> bool {
        self.root_transient || self.root_transient_ro
    }
}

/// `[composefs] keypath` of a `prepare-root.conf`, or the default. Read on
/// its own, only for `signed`: a path inside [`PrepareRootConf`] would make
/// every copy of it large.
pub fn composefs_keypath(text: &[u8]) -> Result<&[u8], SyntaxError> {
    let mut path = DEFAULT_KEYPATH;
    keyfile::parse(text, |e| {
        if (e.group, e.key) == (&b"composefs"[..], &b"keypath"[..]) {
            path = e.value;
        }
        Ok(())
    })?;
    Ok(path)
}

/// `[sysroot] readonly` from the legacy `ostree/repo/config`.
pub fn repo_config_readonly(text: &[u8]) -> Result<bool, SyntaxError> {
    let mut readonly = false;
    keyfile::parse(text, |e| {
        if e.group == b"sysroot" && e.key == b"readonly" {
            readonly = parse_bool(e.value)?;
        }
        Ok(())
    })?;
    Ok(readonly)
}

/// Why the configuration cannot be honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsupported {
    /// composefs is demanded (`yes`, `verity`, `signed`) but this build of
    /// ostree-prepare-root has no composefs.
    Composefs(Composefs),
    /// `[root] transient` needs composefs, which is off or not built in.
    RootTransient,
    /// The composefs kernel argument has a value we do not know.
    BadComposefsKarg,
}

/// The effective composefs setting: the kernel argument overrides the file.
/// As upstream: `signed` on the command line turns signatures (and verity)
/// on; any other value turns signatures off and sets only whether composefs
/// is used, keeping the file's verity requirement.
pub fn effective_composefs(
    conf: &PrepareRootConf,
    cmdline: &Cmdline,
) -> Result<ComposefsPolicy, Unsupported> {
    let mut policy = ComposefsPolicy::from(conf.composefs);
    match cmdline.value(COMPOSEFS_KARG) {
        None => {}
        Some(b"signed") => policy = ComposefsPolicy::from(Composefs::Signed),
        Some(v) => {
            policy.enabled = Use::parse(v).ok_or(Unsupported::BadComposefsKarg)?;
            policy.signed = false;
        }
    }
    Ok(policy)
}

/// Check that the configuration asks only for what this build can do
/// (`composefs_built`: the `composefs` feature).
pub fn check_supported(
    conf: &PrepareRootConf,
    policy: ComposefsPolicy,
    composefs_built: bool,
) -> Result<(), Unsupported> {
    if !composefs_built && policy.enabled == Use::Yes {
        return Err(Unsupported::Composefs(conf.composefs));
    }
    if conf.wants_transient_root() && (!composefs_built || policy.enabled == Use::No) {
        return Err(Unsupported::RootTransient);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_root_conf_keys() {
        let c = PrepareRootConf::parse(b"[sysroot]\nreadonly=true\n[etc]\ntransient=1\n").unwrap();
        assert_eq!(c.sysroot_readonly, Some(true));
        assert!(c.etc_transient);
        assert_eq!(c.composefs, Composefs::No);
        let c = PrepareRootConf::parse(b"").unwrap();
        assert_eq!(c, PrepareRootConf::default());
        let c = PrepareRootConf::parse(b"[other]\nx=y\n[sysroot]\nunknown=1\n").unwrap();
        assert_eq!(c.sysroot_readonly, None);
    }

    #[test]
    fn bad_values_name_the_line() {
        let e = PrepareRootConf::parse(b"[sysroot]\n\nreadonly=yes\n").unwrap_err();
        assert_eq!(e.line, 3);
        let e = PrepareRootConf::parse(b"[composefs]\nenabled=perhaps\n").unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn composefs_policy() {
        let no_karg = Cmdline::new(b"quiet");
        let policy = |file: &str, karg: &Cmdline| {
            let conf = PrepareRootConf::parse(format!("[composefs]\nenabled={file}\n").as_bytes())
                .unwrap();
            effective_composefs(&conf, karg)
        };
        let p = |enabled, verity, signed| {
            Ok(ComposefsPolicy {
                enabled,
                verity,
                signed,
            })
        };
        for (v, want) in [
            ("no", p(Use::No, false, false)),
            ("0", p(Use::No, false, false)),
            ("false", p(Use::No, false, false)),
            ("maybe", p(Use::Maybe, false, false)),
            ("yes", p(Use::Yes, false, false)),
            ("true", p(Use::Yes, false, false)),
            ("1", p(Use::Yes, false, false)),
            ("verity", p(Use::Yes, true, false)),
            ("signed", p(Use::Yes, true, true)),
        ] {
            assert_eq!(policy(v, &no_karg), want, "{v}");
        }
        let off = Cmdline::new(b"ostree.prepare-root.composefs=0");
        assert_eq!(policy("yes", &off), p(Use::No, false, false));
        let on = Cmdline::new(b"ostree.prepare-root.composefs=1");
        assert_eq!(policy("no", &on), p(Use::Yes, false, false));
        // A tristate on the command line drops signatures, keeps verity.
        assert_eq!(policy("signed", &on), p(Use::Yes, true, false));
        let signed = Cmdline::new(b"ostree.prepare-root.composefs=signed");
        assert_eq!(policy("maybe", &signed), p(Use::Yes, true, true));
        let bad = Cmdline::new(b"ostree.prepare-root.composefs=verity");
        assert_eq!(policy("no", &bad), Err(Unsupported::BadComposefsKarg));

        // Without composefs built in: `maybe` and `no` still boot.
        for (v, ok) in [
            ("no", true),
            ("maybe", true),
            ("yes", false),
            ("signed", false),
        ] {
            let conf =
                PrepareRootConf::parse(format!("[composefs]\nenabled={v}\n").as_bytes()).unwrap();
            let pol = effective_composefs(&conf, &no_karg).unwrap();
            assert_eq!(check_supported(&conf, pol, false).is_ok(), ok, "{v}");
            assert!(check_supported(&conf, pol, true).is_ok(), "{v}");
        }
    }

    #[test]
    fn transient_root_and_keypath() {
        let c = PrepareRootConf::parse(b"[root]\ntransient-ro=true\n[composefs]\nenabled=yes\n")
            .unwrap();
        assert!(c.wants_transient_root() && !c.root_transient);
        let text = b"[composefs]\nenabled=signed\nkeypath=/k\n";
        assert_eq!(composefs_keypath(text), Ok(&b"/k"[..]));
        assert_eq!(composefs_keypath(b""), Ok(DEFAULT_KEYPATH));
        let pol = ComposefsPolicy::from(c.composefs);
        assert!(check_supported(&c, pol, true).is_ok());
        assert_eq!(
            check_supported(&c, pol, false),
            Err(Unsupported::Composefs(Composefs::Yes))
        );
        let off = ComposefsPolicy::default();
        assert_eq!(
            check_supported(&c, off, true),
            Err(Unsupported::RootTransient)
        );
        assert!(PrepareRootConf::parse(b"[root]\ntransient=1\ntransient-ro=1\n").is_err());
    }

    #[test]
    fn legacy_repo_config() {
        let text = b"[core]\nrepo_version=1\nmode=bare\n\n[sysroot]\nreadonly=true\n";
        assert!(repo_config_readonly(text).unwrap());
        assert!(!repo_config_readonly(b"[core]\nmode=bare\n").unwrap());
        assert!(repo_config_readonly(b"[core\n").is_err());
    }
}
