//! The pristine clone: a second deployment of the hotfixed deployment's
//! commit, without the hotfix, made by the system's own `ostree admin
//! deploy` as upstream's `ostree admin unlock --hotfix` makes it. Being in
//! libostree's deployment list, it is in every boot menu built from that
//! list and survives every rewrite of the boot entries.

use core::ffi::CStr;
use core::fmt::Write;

use otcore::path::{Lossy, PathBuf};
use otcore::sys::{self, SPAWN_MAX_ARGS, SPAWN_MAX_ARG_BYTES};

use crate::deployment::{self, Target, Unlocked};
use crate::entries::{self, ENTRY_MAX};
use crate::err;
use crate::error::Result;

/// Where `ostree` is looked for when `PATH` is not set (as execvp does).
const DEFAULT_PATH: &[u8] = b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The `ostree` program to run: `explicit` (`--ostree PATH`), or the first
/// executable `ostree` in the directories of `PATH` (from `envp`).
pub fn find_ostree(explicit: Option<&[u8]>, envp: &[&CStr]) -> Result<PathBuf> {
    let runnable = |p: &[u8]| sys::stat(p).is_ok_and(|s| s.is_file() && s.mode & 0o111 != 0);
    if let Some(p) = explicit {
        if runnable(p) {
            return Ok(PathBuf::from(p)?);
        }
        return Err(err!("--ostree {}: not an executable file", Lossy(p)));
    }
    let path = envp
        .iter()
        .find_map(|e| e.to_bytes().strip_prefix(b"PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in path.split(|&b| b == b':') {
        // An empty entry is the current directory, never wanted for a root tool.
        if !dir.starts_with(b"/") {
            continue;
        }
        if let Ok(p) = PathBuf::from(dir).and_then(|d| d.join(b"ostree")) {
            if runnable(p.as_bytes()) {
                return Ok(p);
            }
        }
    }
    Err(err!(
        "no ostree command in PATH, which --hotfix runs first for the pristine clone: give --ostree PATH, or --no-clone (see --help); PATH={}",
        Lossy(path)
    ))
}

/// `b` as text for ostree's command line (a GLib program wants UTF-8).
fn utf8(b: &[u8]) -> Result<&str> {
    core::str::from_utf8(b).map_err(|_| {
        err!(
            "{}: not UTF-8, cannot go on ostree's command line",
            Lossy(b)
        )
    })
}

/// The checksum part of `CSUM.SERIAL`.
pub fn checksum(name: &[u8]) -> &[u8] {
    match name.iter().rposition(|&b| b == b'.') {
        Some(i) => &name[..i],
        None => name,
    }
}

/// A pristine clone of a deployment, as libostree lists it.
pub struct Clone {
    /// `CSUM.SERIAL`.
    pub name: PathBuf,
    /// Its place in libostree's list (`ostree admin status`, 0 the default).
    pub index: usize,
}

/// The pristine clone of `t`: a deployment of the same stateroot and commit,
/// other than `t`, that a boot entry lists, without `unlocked=` in its
/// origin and without hotfix markers. Whoever made it, it boots the same
/// tree as `t` without the hotfix. Of several, the first in libostree's
/// list.
pub fn find(t: &Target) -> Result<Option<Clone>> {
    let entries = t.entries()?;
    let csum = checksum(t.name.as_bytes());
    let mut best: Option<(u64, PathBuf)> = None;
    entries.each(|e, text| {
        let Some(d) = entries::deployment(text, &t.sysroot) else {
            return false;
        };
        if d.stateroot() != t.stateroot.as_bytes()
            || d.name() == t.name.as_bytes()
            || checksum(d.name()) != csum
            || best.as_ref().is_some_and(|(v, _)| *v >= e.version)
        {
            return false;
        }
        let pristine = Target::new(t.sysroot.as_bytes(), d.stateroot(), d.name(), false)
            .and_then(|c| {
                Ok(deployment::state(&c)? == Unlocked::None && !deployment::hotfix_markers(&c))
            })
            .unwrap_or(false);
        if pristine {
            if let Ok(name) = PathBuf::from(d.name()) {
                best = Some((e.version, name));
            }
        }
        false
    });
    let Some((version, name)) = best else {
        return Ok(None);
    };
    // libostree lists its deployments by their entries' versions, highest first.
    let mut index = 0;
    entries.each(|e, _| {
        index += usize::from(e.version > version);
        false
    });
    Ok(Some(Clone { name, index }))
}

/// The kernel command line's arguments as ostree splits an entry's
/// `options`: at whitespace outside double quotes, quotes kept.
fn kargs(options: &str) -> impl Iterator<Item = &str> {
    let mut rest = options;
    core::iter::from_fn(move || {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
        if rest.is_empty() {
            return None;
        }
        let mut quoted = false;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                if c == '"' {
                    quoted = !quoted;
                }
                c.is_ascii_whitespace() && !quoted
            })
            .map_or(rest.len(), |(i, _)| i);
        let (arg, tail) = rest.split_at(end);
        rest = tail;
        Some(arg)
    })
}

/// The command line of the clone's `ostree admin deploy`: its arguments one
/// after the other in one buffer, and where each ends.
pub struct DeployCommand {
    buf: heapless::String<SPAWN_MAX_ARG_BYTES>,
    ends: heapless::Vec<usize, SPAWN_MAX_ARGS>,
}

impl DeployCommand {
    fn push(&mut self, args: core::fmt::Arguments<'_>) -> Result<()> {
        let too_many = || {
            err!("the clone's ostree admin deploy command would be longer than {SPAWN_MAX_ARG_BYTES} bytes or {SPAWN_MAX_ARGS} arguments")
        };
        self.buf.write_fmt(args).map_err(|_| too_many())?;
        self.ends.push(self.buf.len()).map_err(|_| too_many())
    }

    /// The arguments, the program name first.
    pub fn argv(&self) -> heapless::Vec<&[u8], SPAWN_MAX_ARGS> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let a = &self.buf.as_bytes()[start..end];
                start = end;
                a
            })
            .collect()
    }
}

/// `ostree admin deploy` of a pristine clone of `t`: the same commit, the
/// origin in `origin_file` (`t`'s without `unlocked=`), `options` (the
/// kernel arguments of `t`'s boot entry) in their order, repeated ones
/// included (`--karg-append` each, after `--karg-none`; ostree sets `ostree=`
/// itself), not as the default, every existing deployment kept. Offline,
/// `--sysroot`.
pub fn command(t: &Target, options: &str, origin_file: &PathBuf) -> Result<DeployCommand> {
    let mut c = DeployCommand {
        buf: heapless::String::new(),
        ends: heapless::Vec::new(),
    };
    c.push(format_args!("ostree"))?;
    c.push(format_args!("admin"))?;
    c.push(format_args!("deploy"))?;
    if !t.live {
        c.push(format_args!("--sysroot={}", utf8(t.sysroot.as_bytes())?))?;
    }
    c.push(format_args!("--os={}", utf8(t.stateroot.as_bytes())?))?;
    c.push(format_args!("--not-as-default"))?;
    c.push(format_args!("--retain"))?;
    c.push(format_args!(
        "--origin-file={}",
        utf8(origin_file.as_bytes())?
    ))?;
    c.push(format_args!("--karg-none"))?;
    for a in kargs(options) {
        let key = a.trim_start_matches('"').split('=').next().unwrap_or("");
        if key != "ostree" {
            c.push(format_args!("--karg-append={a}"))?;
        }
    }
    c.push(format_args!("{}", utf8(checksum(t.name.as_bytes()))?))?;
    Ok(c)
}

/// The `options` of `t`'s own boot entry, into `out`.
pub fn entry_options(t: &Target, out: &mut heapless::String<ENTRY_MAX>) -> Result<()> {
    let entries = t.entries()?;
    let mut found = false;
    entries.for_deployment(
        &t.sysroot,
        t.stateroot.as_bytes(),
        t.name.as_bytes(),
        |_, text| {
            out.clear();
            found = out
                .push_str(entries::key(text, "options").unwrap_or(""))
                .is_ok();
            true
        },
    );
    if !found {
        return Err(err!(
            "the pristine clone needs the kernel arguments of {t}'s boot entry, and none in {} boots it (--no-clone goes without)",
            entries.dir
        ));
    }
    Ok(())
}

/// Run the deploy command with the environment `envp`; its messages go to
/// our output. A non-zero exit is an error naming the command and how it ended.
pub fn run(ostree: &PathBuf, cmd: &DeployCommand, envp: &[&CStr]) -> Result<()> {
    let argv = cmd.argv();
    let status = sys::spawn_wait(ostree.as_bytes(), &argv, envp)
        .map_err(|e| err!("run {ostree} admin deploy (the pristine clone): {e}"))?;
    if !status.success() {
        return Err(err!(
            "{ostree} admin deploy (the pristine clone) failed: {status}; nothing else was done (rerun, or use --no-clone)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_arguments_split_as_ostree_does() {
        let v: Vec<&str> =
            kargs("  root=/dev/sda2 console=tty0  x=\"1 2\" \"a=b c\" console=ttyS0 -- s ")
                .collect();
        assert_eq!(
            v,
            [
                "root=/dev/sda2",
                "console=tty0",
                "x=\"1 2\"",
                "\"a=b c\"",
                "console=ttyS0",
                "--",
                "s"
            ]
        );
        assert_eq!(kargs("").count(), 0);
    }

    #[test]
    fn the_deploy_command() {
        let t = Target::new(b"/s", b"os", b"abc.0", false).unwrap();
        let origin = PathBuf::from(b"/s/o").unwrap();
        let c = command(
            &t,
            "root=x ostree=/ostree/boot.1/os/abc/0 console=a console=b",
            &origin,
        )
        .unwrap();
        let argv: Vec<String> = c
            .argv()
            .iter()
            .map(|a| String::from_utf8(a.to_vec()).unwrap())
            .collect();
        assert_eq!(
            argv,
            [
                "ostree",
                "admin",
                "deploy",
                "--sysroot=/s",
                "--os=os",
                "--not-as-default",
                "--retain",
                "--origin-file=/s/o",
                "--karg-none",
                "--karg-append=root=x",
                "--karg-append=console=a",
                "--karg-append=console=b",
                "abc"
            ]
        );
        let live = Target::new(b"/sysroot", b"os", b"abc.0", true).unwrap();
        let c = command(&live, "", &origin).unwrap();
        assert!(!c.argv().iter().any(|a| a.starts_with(b"--sysroot")));
        assert_eq!(checksum(b"abc.12"), b"abc");
    }

    #[test]
    fn finding_ostree() {
        let env = [c"PATH=relative:/nonexistent:/bin"];
        // /bin/ostree may or may not exist on the test host; the error says what to do.
        match find_ostree(None, &env) {
            Ok(p) => assert_eq!(p.as_bytes(), b"/bin/ostree"),
            Err(e) => assert!(e.to_string().contains("--no-clone"), "{e}"),
        }
        assert!(find_ostree(Some(b"/nonexistent/ostree"), &env).is_err());
        assert_eq!(
            find_ostree(Some(b"/bin/sh"), &env).unwrap().as_bytes(),
            b"/bin/sh"
        );
    }
}
