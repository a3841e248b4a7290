//! The command line of `ostree-prepare-root` and the service mode.

use crate::error::Error;
use crate::exec;
use crate::inputs::{self, CmdlineBuf};
use crate::plan::{self, Hotfix};
use otcore::cmdline::Cmdline;
use otcore::path::PathBuf;
use otcore::{say, warn};

pub const USAGE: &str = "\
Usage: ostree-prepare-root [OPTIONS] SYSROOT [KERNEL_CMDLINE]

Turn the OSTree physical root mounted at SYSROOT into the deployment named by
the ostree= kernel argument: SYSROOT becomes the deployment, the physical root
moves to SYSROOT/sysroot, /usr is read-only (or the hotfix overlay), and the
markers in /run tell ostree's tools what was booted.

KERNEL_CMDLINE replaces /proc/cmdline (for tests and custom initramfs scripts).

Options:
  --dry-run      print the plan, change nothing
  --mount-var    also bind the stateroot's var at SYSROOT/var
                 (as when /run/ostree/initramfs-mount-var exists)
  -v, --verbose  print each step as it is done
  -h, --help     show this help
  -V, --version  show the version

Configuration: /etc/ostree/prepare-root.conf, else /usr/lib/ostree/prepare-root.conf
([sysroot] readonly, [etc] transient, [composefs] enabled and keypath,
[root] transient and transient-ro), and the legacy [sysroot] readonly in
SYSROOT/ostree/repo/config.
Kernel arguments: ostree=, ostree.prepare-root.composefs=0|1|maybe|signed,
ostree.prepare-root.hotfix=0 (boot without the hotfix overlay once).
";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    Help,
    Version,
    Prepare(Args<'a>),
}

/// Options of the service mode.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Args<'a> {
    pub sysroot: &'a [u8],
    pub cmdline: Option<&'a [u8]>,
    pub dry_run: bool,
    pub mount_var: bool,
    pub verbose: bool,
}

/// Parse `argv` (without the program name).
pub fn parse_args<'a>(argv: &[&'a [u8]]) -> Result<Command<'a>, Error> {
    let mut args = Args::default();
    let mut positional: heapless::Vec<&[u8], 2> = heapless::Vec::new();
    let mut options_done = false;
    for &arg in argv {
        if !options_done && arg.starts_with(b"-") && arg.len() > 1 {
            match arg {
                b"--" => options_done = true,
                b"-h" | b"--help" => return Ok(Command::Help),
                b"-V" | b"--version" => return Ok(Command::Version),
                b"--dry-run" => args.dry_run = true,
                b"--mount-var" => args.mount_var = true,
                b"-v" | b"--verbose" => args.verbose = true,
                _ => return Err(Error::Usage("unknown option (see --help)")),
            }
        } else if positional.push(arg).is_err() {
            return Err(Error::Usage("too many arguments (see --help)"));
        }
    }
    match positional.as_slice() {
        [] => Err(Error::Usage("missing SYSROOT (see --help)")),
        [sysroot, rest @ ..] => {
            if sysroot.is_empty() {
                return Err(Error::Usage("SYSROOT is empty"));
            }
            args.sysroot = sysroot;
            args.cmdline = rest.first().copied();
            Ok(Command::Prepare(args))
        }
    }
}

/// Normalise SYSROOT: no trailing slashes (but `/` stays `/`).
fn sysroot_path(arg: &[u8]) -> Result<PathBuf, Error> {
    let mut end = arg.len();
    while end > 1 && arg[end - 1] == b'/' {
        end -= 1;
    }
    Ok(PathBuf::from(&arg[..end])?)
}

/// The service mode: prepare SYSROOT and exit.
pub fn prepare(args: &Args) -> Result<(), Error> {
    let mut buf: CmdlineBuf = [0; otcore::cmdline::CMDLINE_MAX + 1];
    let raw = match args.cmdline {
        Some(c) if c.len() > otcore::cmdline::CMDLINE_MAX => return Err(Error::CmdlineTooLong),
        Some(c) => c,
        None => {
            let n = inputs::read_proc_cmdline(&mut buf, !args.dry_run)?;
            &buf[..n]
        }
    };
    let cmdline = Cmdline::new(raw);
    let sysroot = sysroot_path(args.sysroot)?;
    let gathered = inputs::gather(&sysroot, &cmdline, args.mount_var, inputs::ConfFrom::Root)?;
    let facts = &gathered.facts;
    inputs::warn_ignored_hotfix(facts);
    let plan = plan::service_plan(facts).map_err(|_| Error::PathTooLong)?;

    if args.dry_run {
        say!(
            "ostree-prepare-root: plan for {sysroot}/{} (sysroot read-only: {}, /usr: {}, config: {}):",
            facts.deployment.rel(),
            yes_no(facts.readonly),
            usr_mode(facts.hotfix),
            ConfName(gathered.conf_file.as_ref())
        );
        for step in plan.iter() {
            say!("  {step}");
        }
        return Ok(());
    }

    exec::run(
        &mut exec::RealSystem,
        &plan,
        exec::Options {
            verbose: args.verbose,
        },
    )?;
    say!(
        "ostree-prepare-root: {} is now the deployment {} (sysroot read-only: {}, /usr: {})",
        sysroot,
        facts.deployment.rel(),
        yes_no(facts.readonly),
        usr_mode(facts.hotfix)
    );
    Ok(())
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn usr_mode(h: Hotfix) -> &'static str {
    match h {
        Hotfix::On => "hotfix overlay",
        _ => "read-only",
    }
}

struct ConfName<'a>(Option<&'a PathBuf>);

impl core::fmt::Display for ConfName<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(p) => write!(f, "{p}"),
            None => f.write_str("defaults"),
        }
    }
}

/// Run the tool with `argv` (without the program name); returns the exit code.
pub fn main(argv: &[&[u8]]) -> i32 {
    match parse_args(argv) {
        Ok(Command::Help) => {
            let _ = otcore::sys::write_all(otcore::sys::STDOUT, USAGE.as_bytes());
            0
        }
        Ok(Command::Version) => {
            say!(
                "ostree-prepare-root (ostree-switchroot) {}",
                env!("CARGO_PKG_VERSION")
            );
            0
        }
        Ok(Command::Prepare(args)) => match prepare(&args) {
            Ok(()) => 0,
            Err(e) => {
                warn!("ostree-prepare-root: error: {e}");
                e.exit_code()
            }
        },
        Err(e) => {
            warn!("ostree-prepare-root: {e}");
            e.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_parsing() {
        fn p(a: &[&'static str]) -> Result<Command<'static>, Error> {
            let v: Vec<&'static [u8]> = a.iter().map(|s| s.as_bytes()).collect();
            parse_args(&v)
        }
        assert_eq!(p(&["--help"]).unwrap(), Command::Help);
        assert_eq!(p(&["/sysroot", "-V"]).unwrap(), Command::Version);
        let Command::Prepare(a) = p(&["--dry-run", "/sysroot", "ostree=/x"]).unwrap() else {
            panic!()
        };
        assert!(a.dry_run && !a.mount_var);
        assert_eq!(a.sysroot, b"/sysroot");
        assert_eq!(a.cmdline, Some(&b"ostree=/x"[..]));
        let Command::Prepare(a) = p(&["--", "/sysroot", "-v"]).unwrap() else {
            panic!()
        };
        assert_eq!(a.cmdline, Some(&b"-v"[..]));
        assert!(p(&[]).is_err());
        assert!(p(&["--bogus", "/sysroot"]).is_err());
        assert!(p(&["a", "b", "c"]).is_err());
        assert!(p(&[""]).is_err());
    }

    #[test]
    fn overlong_cmdline_is_refused_before_anything_is_read() {
        let long = vec![b'a'; otcore::cmdline::CMDLINE_MAX + 1];
        let args = Args {
            sysroot: b"/nonexistent",
            cmdline: Some(&long),
            ..Args::default()
        };
        assert!(matches!(prepare(&args), Err(Error::CmdlineTooLong)));
    }

    #[test]
    fn sysroot_normalisation() {
        assert_eq!(sysroot_path(b"/sysroot//").unwrap().as_bytes(), b"/sysroot");
        assert_eq!(sysroot_path(b"/").unwrap().as_bytes(), b"/");
    }
}
