//! The command line: which command, on which sysroot and deployment.

use otcore::path::Lossy;

use crate::deployment::Unlocked;
use crate::err;
use crate::error::Result;

pub const USAGE: &str = "\
Usage: ostree-unlock [--hotfix [--no-clone | --ostree PATH] | --transient]
                     [--sysroot DIR [--deployment [OS/]CSUM.SERIAL]]
       ostree-unlock --status [--json] [--sysroot DIR [--deployment ...]]
       ostree-unlock --discard [--sysroot DIR [--deployment ...]]

Make /usr of the booted OSTree deployment writable:
  (default)     development mode: a writable overlay on /usr now; every change
                is gone after the next reboot
  --hotfix      the overlay persists for this deployment: mounted now and by
                ostree-prepare-root at every boot of it. First, as upstream's
                ostree admin unlock --hotfix, a pristine clone is deployed:
                ostree admin deploy --not-as-default --retain of the same
                commit, with the origin without unlocked= and the kernel
                arguments of the deployment's boot entry (live it lands right
                after the booted deployment; offline, at index 1, right after
                the default one); every deployment is kept. A rerun keeps a clone
                that is there (any deployment of the same commit, listed in
                the boot entries, without unlocked= and hotfix markers).
  --no-clone    with --hotfix: no clone (no ostree program, or no room)
  --ostree PATH with --hotfix: the ostree program (default: ostree in PATH;
                without one, --hotfix fails before changing anything)
  --transient   like development, but the overlay is mounted read-only; write
                to it in a private mount namespace after a remount
  --status      show the unlock state and the ways back (--json: as JSON)
  --discard     remove the hotfix from the next boot on (at once, offline);
                the clone stays, a deployment like any other

The ways back from a hotfix that broke the system:
  - the pristine clone, listed by every boot menu built from libostree's
    deployment list, kept when the boot entries are rewritten (until a
    deploy without --retain drops it, as it drops every rollback);
  - the boot entry \"(pristine)\" that --hotfix also adds (with or without a
    clone): it boots the hotfixed deployment itself once without its overlay,
    but only boot loaders reading /boot/loader/entries list it (not menus
    built by grub2-generate, syslinux or u-boot), and it is gone once
    libostree writes a new set of entries;
  - the kernel argument ostree.prepare-root.hotfix=0, for one boot;
  - ostree-unlock --discard.

Offline (image builders): --sysroot DIR acts on a sysroot at rest, on the
deployment given by --deployment or else the default one (--hotfix writes the
markers without mounting, and runs ostree admin deploy --sysroot DIR for the
clone; --discard deletes the hotfix data).

Every run but --status removes pristine boot links whose deployment is gone
(after ostree admin undeploy); --status reports them.
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Unlock(Unlocked),
    Status { json: bool },
    Discard,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Args<'a> {
    pub command: Command,
    /// `--no-clone`: no pristine clone deployment with `--hotfix`.
    pub no_clone: bool,
    /// `--ostree PATH`: the ostree program for the clone (else found in PATH).
    pub ostree: Option<&'a [u8]>,
    pub sysroot: Option<&'a [u8]>,
    pub deployment: Option<&'a [u8]>,
}

/// Parse `argv` (without the program name); `Ok(None)` asks for the help.
pub fn parse<'a>(argv: &[&'a [u8]]) -> Result<Option<Args<'a>>> {
    let mut mode = Unlocked::Development;
    let mut status = false;
    let mut json = false;
    let mut discard = false;
    let mut sysroot = None;
    let mut deployment = None;
    let mut no_clone = false;
    let mut ostree = None;
    let mut it = argv.iter().copied();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| err!("{name} needs a value"));
        match a {
            b"-h" | b"--help" => return Ok(None),
            b"--hotfix" if mode == Unlocked::Development => mode = Unlocked::Hotfix,
            b"--transient" if mode == Unlocked::Development => mode = Unlocked::Transient,
            b"--hotfix" | b"--transient" => {
                return Err(err!("give at most one of --hotfix and --transient"))
            }
            b"--status" => status = true,
            b"--json" => json = true,
            b"--discard" => discard = true,
            b"--sysroot" => sysroot = Some(value("--sysroot")?),
            b"--deployment" => deployment = Some(value("--deployment")?),
            b"--no-clone" => no_clone = true,
            b"--ostree" => ostree = Some(value("--ostree")?),
            _ => return Err(err!("unknown argument {} (see --help)", Lossy(a))),
        }
    }
    let command = match (status, discard, mode) {
        (true, false, Unlocked::Development) => Command::Status { json },
        (false, true, Unlocked::Development) => Command::Discard,
        (false, false, m) => Command::Unlock(m),
        _ => {
            return Err(err!(
                "--status, --discard and an unlock mode exclude each other"
            ))
        }
    };
    if json && !status {
        return Err(err!("--json goes with --status"));
    }
    if (no_clone || ostree.is_some()) && command != Command::Unlock(Unlocked::Hotfix) {
        return Err(err!("--no-clone and --ostree go with --hotfix"));
    }
    if no_clone && ostree.is_some() {
        return Err(err!("--no-clone and --ostree exclude each other"));
    }
    if deployment.is_some() && sysroot.is_none() {
        return Err(err!(
            "--deployment needs --sysroot (live, the booted deployment is used)"
        ));
    }
    Ok(Some(Args {
        command,
        no_clone,
        ostree,
        sysroot,
        deployment,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p<'a>(a: &[&'a str]) -> Result<Option<Args<'a>>> {
        let v: Vec<&[u8]> = a.iter().map(|s| s.as_bytes()).collect();
        parse(&v)
    }

    #[test]
    fn arguments() {
        assert_eq!(
            p(&[]).unwrap().unwrap().command,
            Command::Unlock(Unlocked::Development)
        );
        assert_eq!(
            p(&["--hotfix"]).unwrap().unwrap().command,
            Command::Unlock(Unlocked::Hotfix)
        );
        assert_eq!(
            p(&["--status", "--json"]).unwrap().unwrap().command,
            Command::Status { json: true }
        );
        assert!(p(&["--hotfix", "--transient"]).is_err());
        assert!(p(&["--status", "--discard"]).is_err());
        assert!(p(&["--json"]).is_err());
        assert!(p(&["--deployment", "x"]).is_err());
        assert!(p(&["--sysroot"]).is_err());
        assert!(p(&["--help"]).unwrap().is_none());
        let a = p(&["--hotfix", "--no-clone"]).unwrap().unwrap();
        assert!(a.no_clone && a.ostree.is_none());
        let a = p(&["--hotfix", "--ostree", "/o"]).unwrap().unwrap();
        assert_eq!((a.no_clone, a.ostree), (false, Some(&b"/o"[..])));
        assert!(p(&["--no-clone"]).is_err());
        assert!(p(&["--discard", "--ostree", "/o"]).is_err());
        assert!(p(&["--hotfix", "--no-clone", "--ostree", "/o"]).is_err());
        let a = p(&["--sysroot", "/s", "--deployment", "os/abc.0", "--discard"])
            .unwrap()
            .unwrap();
        assert_eq!(a.command, Command::Discard);
        assert_eq!(a.deployment, Some(&b"os/abc.0"[..]));
        assert_eq!(a.sysroot, Some(&b"/s"[..]));
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            p(&["--bogus"]).unwrap_err().to_string(),
            "unknown argument --bogus (see --help)"
        );
        assert_eq!(
            p(&["--sysroot"]).unwrap_err().to_string(),
            "--sysroot needs a value"
        );
    }
}
