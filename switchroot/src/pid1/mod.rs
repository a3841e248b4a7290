//! PID 1: the whole initramfs in one binary, and `init=` with no initramfs.
//!
//! Initramfs (`/init` on a ramfs/tmpfs `/`): mount the kernel filesystems,
//! load modules, find and mount `root=` at `/sysroot`, prepare it as the
//! service mode does (plus `/var`), switch root, execute the real init.
//!
//! No initramfs (`init=/ostree/boot.N/.../usr/lib/ostree/ostree-prepare-root`):
//! the kernel mounted the physical root at `/`, maybe read-only. Prepare the
//! deployment in place without writing to that filesystem, `pivot_root` into
//! it, execute `/sbin/init`.
//!
//! PID 1 never returns: a failure is printed to the console and `/dev/kmsg`
//! and ends in the `rd.emergency=` action, never in a kernel panic.
//!
//! Files, in the order a boot runs them: [`setup`] (kernel filesystems,
//! logging, modules), [`initramfs`] or [`no_initramfs`] (the job of each
//! mode), [`init`] (executing the real init), [`emergency`] (a failed boot);
//! [`deadline`] watches the whole boot.

mod deadline;
mod emergency;
mod init;
mod initramfs;
mod no_initramfs;
mod setup;

use core::ffi::CStr;
use core::fmt::Write;

use otcore::cmdline::{Cmdline, CMDLINE_MAX};
use otcore::out::LineBuf;
use otcore::path::Lossy;
use otcore::{say, sys};

use crate::bootparams::BootParams;
use crate::error::Error;
use crate::{inputs, switch};
use emergency::emergency;

/// Which PID 1 job this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `/init` of an initramfs.
    Initramfs,
    /// The no-initramfs mode: the kernel runs us as `init=` on the physical
    /// root it mounted itself.
    NoInitramfs,
}

impl Mode {
    /// The mode named by the kernel argument [`MODE_KARG`] or by the test
    /// option `--pid1=`: `initramfs` or `no-initramfs` (`root` is the name it
    /// had before, still accepted).
    pub fn from_name(name: &[u8]) -> Option<Mode> {
        match name {
            b"initramfs" => Some(Mode::Initramfs),
            b"no-initramfs" | b"root" => Some(Mode::NoInitramfs),
            _ => None,
        }
    }
}

/// Kernel argument that overrides the detection: `initramfs` or `no-initramfs`.
pub const MODE_KARG: &[u8] = b"ostree.prepare-root.mode";

/// Detect the job from the root filesystem: a ramfs/tmpfs `/` holding `/init`
/// (a file, or a symlink to one) is an initramfs; anything else is a real root.
pub fn detect() -> Mode {
    if switch::root_is_initramfs() {
        Mode::Initramfs
    } else {
        Mode::NoInitramfs
    }
}

/// What this process is to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    /// The service mode (`ostree-prepare-root SYSROOT`).
    Service,
    /// The PID 1 code: as PID 1, with the mode detected; or in the mode
    /// `--pid1=MODE` names (the first argument, for tests), without being PID 1.
    Pid1 { forced: Option<Mode> },
    /// `--pid1=` with a mode we do not know.
    UnknownMode,
}

impl Launch {
    pub fn of(first_arg: Option<&[u8]>) -> Launch {
        match first_arg.and_then(|a| a.strip_prefix(b"--pid1=")) {
            Some(name) => match Mode::from_name(name) {
                Some(mode) => Launch::Pid1 { forced: Some(mode) },
                None => Launch::UnknownMode,
            },
            None if sys::getpid() == 1 => Launch::Pid1 { forced: None },
            None => Launch::Service,
        }
    }
}

/// Time spent in each phase, for the closing log line.
#[derive(Default)]
pub(super) struct Phases {
    last: u64,
    spent: [(&'static str, u64); 6],
    n: usize,
}

impl Phases {
    fn start() -> Phases {
        Phases {
            last: sys::clock_us(false),
            ..Phases::default()
        }
    }
    pub(super) fn done(&mut self, name: &'static str) {
        let now = sys::clock_us(false);
        if self.n < self.spent.len() {
            self.spent[self.n] = (name, now - self.last);
            self.n += 1;
        }
        self.last = now;
    }
    fn report(&self) {
        let mut line = LineBuf::new();
        let _ = line.write_str("ostree-prepare-root: time:");
        for (name, us) in &self.spent[..self.n] {
            let _ = write!(line, " {name} {}.{:01} ms", us / 1000, (us % 1000) / 100);
        }
        say!("{}", Lossy(line.as_bytes()));
    }
}

/// A failure, with the phase it happened in.
pub(super) struct Failure {
    pub(super) phase: &'static str,
    pub(super) err: Error,
}

pub(super) fn in_phase<T>(phase: &'static str, r: Result<T, Error>) -> Result<T, Failure> {
    r.map_err(|err| Failure { phase, err })
}

/// The kernel command line, read once (mounting /proc if needed).
pub(super) struct KernelCmdline {
    buf: inputs::CmdlineBuf,
    len: usize,
}

impl KernelCmdline {
    fn read() -> Result<KernelCmdline, Error> {
        let mut k = KernelCmdline {
            buf: [0; CMDLINE_MAX + 1],
            len: 0,
        };
        k.len = inputs::read_proc_cmdline(&mut k.buf, false)?;
        Ok(k)
    }
    pub(super) fn get(&self) -> Cmdline<'_> {
        Cmdline::new(&self.buf[..self.len])
    }
}

/// Run as PID 1. `argv` and `envp` are what the kernel gave us; arguments
/// after `argv[0]` are passed on to init, and so is the environment.
pub fn run(forced: Option<Mode>, argv: &[&CStr], envp: &[&CStr]) -> ! {
    let started = (sys::clock_us(true), sys::clock_us(false));
    let mut phases = Phases::start();

    // /proc first: without it there is no command line to act on, and the
    // command line may choose the mode (so the other mounts come after it).
    let k = setup::mount_api(b"proc", b"/proc", None).and_then(|()| KernelCmdline::read());
    let kind = match &k {
        Ok(k) => match k.get().value(MODE_KARG).and_then(Mode::from_name) {
            Some(mode) => mode,
            None => forced.unwrap_or_else(detect),
        },
        Err(_) => forced.unwrap_or_else(detect),
    };
    let early = k.and_then(|k| match kind {
        Mode::Initramfs => setup::mount_api(b"sysfs", b"/sys", None)
            .and_then(|()| setup::mount_api(b"devtmpfs", b"/dev", None))
            .and_then(|()| setup::mount_api(b"tmpfs", b"/run", Some(b"mode=0755")))
            .map(|()| k),
        Mode::NoInitramfs => Ok(k),
    });
    setup::setup_logging();
    let k = match early {
        Ok(k) => k,
        Err(err) => emergency(
            &BootParams::parse(&Cmdline::new(b"")),
            None,
            Failure {
                phase: "starting",
                err,
            },
        ),
    };
    let cmdline = k.get();
    let params = BootParams::parse(&cmdline);
    deadline::start(&params, &cmdline);
    phases.done("setup");

    let r = match kind {
        Mode::Initramfs => initramfs::initramfs(&k, &params, &mut phases),
        Mode::NoInitramfs => no_initramfs::no_initramfs(&k, &params, &mut phases),
    };
    if let Err(f) = r {
        emergency(&params, Some(&cmdline), f);
    }
    phases.report();

    // In the initramfs, init= names the real init; without one, init= named
    // us. libostree writes init=.../usr/lib/ostree/ostree-prepare-root for
    // deployments without an initramfs of their own: that is us too.
    let init = match kind {
        Mode::Initramfs => params
            .init
            .filter(|i| !i.ends_with(b"/ostree-prepare-root")),
        Mode::NoInitramfs => None,
    };
    let timestamp = (kind == Mode::Initramfs).then_some(started);
    deadline::stop();
    let errno = init::exec_init(init, argv, envp, timestamp);
    emergency(
        &params,
        Some(&cmdline),
        Failure {
            phase: "starting init",
            err: Error::NoInit { errno },
        },
    )
}
