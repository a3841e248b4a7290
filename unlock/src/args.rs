//! The command line: which command, on which sysroot and deployment.

use otcore::path::Lossy;

use crate::deployment::Unlocked;
use crate::err;
use crate::error::Result;

pub const USAGE: &str = "\
Usage: ostree-unlock [--hotfix | --transient] [--sysroot DIR [--deployment [OS/]CSUM.SERIAL]]
       ostree-unlock --status [--json] [--sysroot DIR [--deployment ...]]
       ostree-unlock --discard [--sysroot DIR [--deployment ...]]

Make /usr of the booted OSTree deployment writable:
  (default)     development mode: a writable overlay on /usr now; every change
                is gone after the next reboot
  --hotfix      the overlay persists for this deployment: mounted now and by
                ostree-prepare-root at every boot of it
  --transient   like development, but the overlay is mounted read-only; write
                to it in a private mount namespace after a remount
  --status      show the unlock state (--json: as JSON)
  --discard     remove the hotfix from the next boot on (at once, offline)

A way back from a hotfix that broke the system: the boot entry \"(pristine)\"
that --hotfix adds, or the kernel argument ostree.prepare-root.hotfix=0,
boots the deployment once without the hotfix overlay.

Offline (image builders): --sysroot DIR acts on a sysroot at rest, on the
deployment given by --deployment or else the default one (--hotfix writes the
markers without mounting; --discard deletes the hotfix data).
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
