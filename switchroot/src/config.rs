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

/// `[composefs] enabled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Composefs {
    #[default]
    No,
    /// Use composefs if the deployment has an image; boot without otherwise.
    Maybe,
    Yes,
    Verity,
    Signed,
}

impl Composefs {
    fn parse(v: &[u8]) -> Result<Self, &'static str> {
        Ok(match v {
            b"yes" | b"true" | b"1" => Composefs::Yes,
            b"no" | b"false" | b"0" => Composefs::No,
            b"maybe" => Composefs::Maybe,
            b"verity" => Composefs::Verity,
            b"signed" => Composefs::Signed,
            _ => return Err(
                "has an unknown [composefs] enabled value (want yes, no, maybe, verity or signed)",
            ),
        })
    }

    /// Whether this setting makes a boot without composefs a failure.
    pub fn is_required(self) -> bool {
        matches!(self, Composefs::Yes | Composefs::Verity | Composefs::Signed)
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

/// The settings of `prepare-root.conf` this tool understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PrepareRootConf {
    /// `[sysroot] readonly`; `None` when not set.
    pub sysroot_readonly: Option<bool>,
    /// `[etc] transient`.
    pub etc_transient: bool,
    /// `[composefs] enabled`.
    pub composefs: Composefs,
    /// `[root] transient` or `[root] transient-ro` (need composefs).
    pub root_transient: bool,
}

impl PrepareRootConf {
    /// Parse a `prepare-root.conf`. Unknown groups and keys are ignored, as
    /// upstream ignores them; known keys with bad values are errors.
    pub fn parse(text: &[u8]) -> Result<Self, SyntaxError> {
        let mut conf = PrepareRootConf::default();
        keyfile::parse(text, |e| {
            match (e.group, e.key) {
                (b"sysroot", b"readonly") => conf.sysroot_readonly = Some(parse_bool(e.value)?),
                (b"etc", b"transient") => conf.etc_transient = parse_bool(e.value)?,
                (b"composefs", b"enabled") => conf.composefs = Composefs::parse(e.value)?,
                (b"root", b"transient") | (b"root", b"transient-ro") => {
                    conf.root_transient |= parse_bool(e.value)?
                }
                _ => {}
            }
            Ok(())
        })?;
        Ok(conf)
    }
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

/// Why the configuration cannot be honoured by this tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsupported {
    /// composefs is demanded (`yes`, `verity`, `signed`) but not implemented here.
    Composefs(Composefs),
    /// `[root] transient` needs composefs.
    RootTransient,
    /// The composefs kernel argument has a value we do not know.
    BadComposefsKarg,
}

/// The effective composefs setting: the kernel argument overrides the file.
pub fn effective_composefs(
    conf: &PrepareRootConf,
    cmdline: &Cmdline,
) -> Result<Composefs, Unsupported> {
    match cmdline.value(COMPOSEFS_KARG) {
        None => Ok(conf.composefs),
        // Upstream accepts `signed` or a tristate on the kernel command line.
        Some(b"signed") => Ok(Composefs::Signed),
        Some(v) => match Composefs::parse(v) {
            Ok(c) if c != Composefs::Verity => Ok(c),
            _ => Err(Unsupported::BadComposefsKarg),
        },
    }
}

/// Check that the configuration asks only for what this tool can do.
pub fn check_supported(conf: &PrepareRootConf, composefs: Composefs) -> Result<(), Unsupported> {
    if composefs.is_required() {
        return Err(Unsupported::Composefs(composefs));
    }
    if conf.root_transient {
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
        for (v, ok) in [
            ("no", true),
            ("maybe", true),
            ("0", true),
            ("false", true),
            ("yes", false),
            ("true", false),
            ("1", false),
            ("signed", false),
            ("verity", false),
        ] {
            let conf =
                PrepareRootConf::parse(format!("[composefs]\nenabled={v}\n").as_bytes()).unwrap();
            let cfs = effective_composefs(&conf, &no_karg).unwrap();
            assert_eq!(check_supported(&conf, cfs).is_ok(), ok, "{v}");
        }
        let yes = PrepareRootConf::parse(b"[composefs]\nenabled=yes\n").unwrap();
        let off = Cmdline::new(b"ostree.prepare-root.composefs=0");
        assert_eq!(effective_composefs(&yes, &off), Ok(Composefs::No));
        let on = Cmdline::new(b"ostree.prepare-root.composefs=1");
        assert_eq!(
            effective_composefs(&PrepareRootConf::default(), &on),
            Ok(Composefs::Yes)
        );
        let bad = Cmdline::new(b"ostree.prepare-root.composefs=verity");
        assert_eq!(
            effective_composefs(&PrepareRootConf::default(), &bad),
            Err(Unsupported::BadComposefsKarg)
        );
    }

    #[test]
    fn legacy_repo_config() {
        let text = b"[core]\nrepo_version=1\nmode=bare\n\n[sysroot]\nreadonly=true\n";
        assert!(repo_config_readonly(text).unwrap());
        assert!(!repo_config_readonly(b"[core]\nmode=bare\n").unwrap());
        assert!(repo_config_readonly(b"[core\n").is_err());
    }
}
