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

use core::ffi::{c_char, CStr};
use core::fmt::Write;

use crate::bootparams::{self, BootParams, Emergency};
use crate::cmdline::{Cmdline, CMDLINE_MAX};
use crate::error::Error;
use crate::inputs::{self, ConfFrom};
use crate::modules::{self, Loader};
use crate::out::LineBuf;
use crate::path::{Lossy, PathBuf};
use crate::plan;
use crate::sys::{self, Power};
use crate::{exec, rootdev, say, switch, warn};

/// Which PID 1 job this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `/init` of an initramfs.
    Initramfs,
    /// `init=` on the physical root, no initramfs.
    NoInitramfs,
}

/// Kernel argument that overrides the detection: `initramfs` or `root`.
pub const MODE_KARG: &[u8] = b"ostree.prepare-root.mode";

/// Where the root filesystem is mounted in the initramfs.
const SYSROOT: &[u8] = b"/sysroot";
/// The kernel's fallbacks when `init=` is not given (or fails).
const DEFAULT_INITS: [&CStr; 4] = [c"/sbin/init", c"/etc/init", c"/bin/init", c"/bin/sh"];
/// Most arguments and environment entries passed on to init.
const MAX_VECTOR: usize = 64;

/// Detect the job from the root filesystem: a ramfs/tmpfs `/` holding `/init`
/// (a file, or a symlink to one) is an initramfs; anything else is a real root.
pub fn detect() -> Kind {
    let initramfs = matches!(sys::fs_magic(b"/"), Ok(sys::TMPFS_MAGIC | sys::RAMFS_MAGIC))
        && sys::stat(b"/init").is_ok_and(|s| s.mode & sys::S_IFMT == libc::S_IFREG);
    if initramfs {
        Kind::Initramfs
    } else {
        Kind::NoInitramfs
    }
}

/// Time spent in each phase, for the closing log line.
#[derive(Default)]
struct Phases {
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
    fn done(&mut self, name: &'static str) {
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
struct Failure {
    phase: &'static str,
    err: Error,
}

fn in_phase<T>(phase: &'static str, r: Result<T, Error>) -> Result<T, Failure> {
    r.map_err(|err| Failure { phase, err })
}

/// The kernel command line, read once (mounting /proc if needed).
struct KernelCmdline {
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
    fn get(&self) -> Cmdline<'_> {
        Cmdline::new(&self.buf[..self.len])
    }
}

/// Mount `fstype` at `target` unless something is mounted there already.
fn mount_api(fstype: &[u8], target: &[u8], data: Option<&[u8]>) -> Result<(), Error> {
    mount_point_dir(target)?;
    if switch::is_mountpoint(target) {
        return Ok(());
    }
    let flags = libc::MS_NOSUID
        | if fstype == b"devtmpfs" {
            0
        } else {
            libc::MS_NODEV
        };
    sys::mount(Some(fstype), target, Some(fstype), flags, data)
        .map_err(|e| Error::sys("mount", target, e))
}

/// Standard streams on the console where the kernel did not open them (it
/// opens none when the initramfs has no /dev/console), and messages to the
/// kernel log.
fn setup_logging() {
    sys::fill_std_fds(b"/dev/console");
    sys::fill_std_fds(b"/dev/null");
    if let Ok(kmsg) = sys::open(b"/dev/kmsg", sys::O_WRONLY, 0) {
        crate::out::use_kmsg(sys::leak(kmsg));
    }
}

/// Load the modules the initramfs lists (a missing one is fatal: the image
/// is broken) and those on the command line (a missing one is a warning).
/// `root` holds the module tree (`/`, or the deployment's `/usr`); `list_file`
/// is the initramfs's module list (none without an initramfs).
fn load_modules(cmdline: &Cmdline, root: &[u8], list_file: Option<&[u8]>) -> Result<u32, Error> {
    let mut list_buf = [0u8; 4096];
    let list = match list_file.map(|f| (f, sys::read_file(f, &mut list_buf))) {
        None | Some((_, Err(libc::ENOENT))) => &[][..],
        Some((_, Ok(n))) => &list_buf[..n],
        Some((f, Err(e))) => return Err(Error::sys("read", f, e)),
    };
    let mut loader: Option<Loader> = None;
    let mut result = Ok(());
    modules::requested(list, cmdline, |name, from_list| {
        if result.is_err() {
            return;
        }
        let r = match &mut loader {
            Some(l) => l.load(name),
            None => Loader::new(cmdline, root).and_then(|l| loader.insert(l).load(name)),
        };
        match r {
            Ok(()) => {}
            Err(e) if !from_list => warn!("ostree-prepare-root: warning: {e}"),
            Err(e) => result = Err(e),
        }
    });
    result.map(|()| loader.map_or(0, |l| l.loaded))
}

/// The plan mounts an overlay (hotfix `/usr`, transient `/etc`): make sure
/// the overlay module is there, whatever the module lists said. A failure
/// is only a warning: the mount itself then fails with a clear error.
fn ensure_overlay(facts: &plan::Facts, cmdline: &Cmdline, root: &[u8]) {
    if facts.hotfix != plan::Hotfix::On && !facts.etc_transient
        || modules::filesystem_known(b"overlay")
    {
        return;
    }
    if let Err(e) = Loader::new(cmdline, root).and_then(|mut l| l.load(b"overlay")) {
        warn!("ostree-prepare-root: warning: {e}");
    }
}

/// The initramfs's work, up to (not including) the exec of init.
fn initramfs(k: &KernelCmdline, params: &BootParams, phases: &mut Phases) -> Result<(), Failure> {
    let cmdline = k.get();
    let n = in_phase(
        "loading modules",
        load_modules(&cmdline, b"/", Some(modules::MODULE_LIST)),
    )?;
    if params.debug {
        say!("ostree-prepare-root: {n} modules loaded");
    }
    phases.done("modules");

    let spec = in_phase("finding the root device", params.root.ok_or(Error::BadRoot))?;
    if params.delay_ms > 0 {
        sys::sleep_ms(params.delay_ms);
    }
    let dev = match rootdev::find(&spec, params.wait_ms) {
        Ok(d) => d,
        Err(err) => {
            warn!(
                "ostree-prepare-root: looking for root={}; block devices seen:",
                Lossy(params.root_arg.unwrap_or(b""))
            );
            rootdev::report_devices();
            return Err(Failure {
                phase: "finding the root device",
                err,
            });
        }
    };
    phases.done("device");

    let mut data = heapless::Vec::<u8, 256>::new();
    let mut flags = bootparams::mount_options(params.flags.unwrap_or(b""), &mut data);
    if !params.rw {
        flags |= libc::MS_RDONLY;
    }
    in_phase("mounting the root", mount_point_dir(SYSROOT))?;
    in_phase(
        "mounting the root",
        rootdev::mount_root(&dev, SYSROOT, params.fstype, flags, &data),
    )?;
    if params.debug {
        say!(
            "ostree-prepare-root: mounted {} at /sysroot ({})",
            dev.path,
            if params.rw { "rw" } else { "ro" }
        );
    }
    phases.done("mount");

    let sysroot = in_phase("preparing", PathBuf::from(SYSROOT).map_err(Error::from))?;
    let gathered = in_phase(
        "preparing",
        inputs::gather(&sysroot, &cmdline, true, ConfFrom::Root),
    )?;
    warn_ignored_hotfix(&gathered.facts);
    ensure_overlay(&gathered.facts, &cmdline, b"/");
    let opts = exec::Options {
        verbose: params.debug,
    };
    in_phase(
        "preparing",
        exec::run_built(plan::service_plan(&gathered.facts), opts),
    )?;
    say!(
        "ostree-prepare-root: booting {} from {}",
        gathered.facts.deployment.rel(),
        dev.path
    );
    phases.done("prepare");

    in_phase("switching root", switch::switch_root(SYSROOT))?;
    phases.done("switch");
    Ok(())
}

/// Make sure the directory `path` (a mount point) exists.
fn mount_point_dir(path: &[u8]) -> Result<(), Error> {
    match sys::mkdir(path, 0o755) {
        Ok(()) | Err(libc::EEXIST) => Ok(()),
        Err(e) => Err(Error::sys("mkdir", path, e)),
    }
}

fn warn_ignored_hotfix(facts: &plan::Facts) {
    if let plan::Hotfix::Ignored(why) = facts.hotfix {
        warn!(
            "ostree-prepare-root: warning: {}: {why}; booting the pristine /usr",
            facts.deployment.rel()
        );
    }
}

/// The `init=` mode's work, up to the exec of init.
fn no_initramfs(
    k: &KernelCmdline,
    params: &BootParams,
    phases: &mut Phases,
) -> Result<(), Failure> {
    let cmdline = k.get();
    let sysroot = in_phase("preparing", PathBuf::from(b"/").map_err(Error::from))?;
    // The configuration comes with the deployment: there is no initramfs.
    let gathered = in_phase(
        "preparing",
        inputs::gather(&sysroot, &cmdline, true, ConfFrom::Deployment),
    )?;
    warn_ignored_hotfix(&gathered.facts);
    // Without an initramfs the kernel's modules are in the deployment.
    let usr = in_phase(
        "loading modules",
        sysroot
            .join(gathered.facts.deployment.rel().as_bytes())
            .and_then(|d| d.join(b"usr"))
            .map_err(Error::from),
    )?;
    in_phase(
        "loading modules",
        load_modules(&cmdline, usr.as_bytes(), None),
    )?;
    ensure_overlay(&gathered.facts, &cmdline, usr.as_bytes());
    let mut api: heapless::Vec<&[u8], 3> = heapless::Vec::new();
    for m in [&b"/proc"[..], b"/dev", b"/sys"] {
        if switch::is_mountpoint(m) {
            let _ = api.push(m);
        }
    }
    let opts = exec::Options {
        verbose: params.debug,
    };
    in_phase(
        "preparing",
        exec::run_built(plan::pivot_plan(&gathered.facts, &api), opts),
    )?;
    say!(
        "ostree-prepare-root: booting {} (no initramfs)",
        gathered.facts.deployment.rel()
    );
    phases.done("prepare");
    Ok(())
}

/// Run as PID 1. `argv` and `envp` are what the kernel gave us; arguments
/// after `argv[0]` are passed on to init, and so is the environment.
pub fn run(forced: Option<Kind>, argv: &[&CStr], envp: &[&CStr]) -> ! {
    let started = (sys::clock_us(true), sys::clock_us(false));
    let mut phases = Phases::start();

    // /proc first: without it there is no command line to act on, and the
    // command line may choose the mode (so the other mounts come after it).
    let k = mount_api(b"proc", b"/proc", None).and_then(|()| KernelCmdline::read());
    let kind = match &k {
        Ok(k) => match k.get().value(MODE_KARG) {
            Some(b"initramfs") => Kind::Initramfs,
            Some(b"root") => Kind::NoInitramfs,
            _ => forced.unwrap_or_else(detect),
        },
        Err(_) => forced.unwrap_or_else(detect),
    };
    let early = k.and_then(|k| match kind {
        Kind::Initramfs => mount_api(b"sysfs", b"/sys", None)
            .and_then(|()| mount_api(b"devtmpfs", b"/dev", None))
            .and_then(|()| mount_api(b"tmpfs", b"/run", Some(b"mode=0755")))
            .map(|()| k),
        Kind::NoInitramfs => Ok(k),
    });
    setup_logging();
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
    phases.done("setup");

    let r = match kind {
        Kind::Initramfs => initramfs(&k, &params, &mut phases),
        Kind::NoInitramfs => no_initramfs(&k, &params, &mut phases),
    };
    if let Err(f) = r {
        emergency(&params, Some(&cmdline), f);
    }
    phases.report();

    // In the initramfs, init= names the real init; without one, init= named
    // us. libostree writes init=.../usr/lib/ostree/ostree-prepare-root for
    // deployments without an initramfs of their own: that is us too.
    let init = match kind {
        Kind::Initramfs => params
            .init
            .filter(|i| !i.ends_with(b"/ostree-prepare-root")),
        Kind::NoInitramfs => None,
    };
    let timestamp = (kind == Kind::Initramfs).then_some(started);
    let errno = exec_init(init, argv, envp, timestamp);
    emergency(
        &params,
        Some(&cmdline),
        Failure {
            phase: "starting init",
            err: Error::NoInit { errno },
        },
    )
}

/// Execute init: `init` if given and executable, else the kernel's fallbacks.
/// Returns the last errno if none could be executed.
fn exec_init(
    init: Option<&[u8]>,
    argv: &[&CStr],
    envp: &[&CStr],
    started: Option<(u64, u64)>,
) -> i32 {
    // RD_TIMESTAMP="<realtime µs> <monotonic µs>" tells systemd when the initramfs started.
    let mut stamp = [0u8; 64];
    let mut env: heapless::Vec<*const c_char, MAX_VECTOR> = heapless::Vec::new();
    for e in envp {
        if !e.to_bytes().starts_with(b"RD_TIMESTAMP=") && env.len() < MAX_VECTOR - 2 {
            let _ = env.push(e.as_ptr());
        }
    }
    if let Some((rt, mono)) = started {
        let mut w = LineBuf::new();
        let _ = write!(w, "RD_TIMESTAMP={rt} {mono}");
        let n = w.as_bytes().len().min(stamp.len() - 1);
        stamp[..n].copy_from_slice(&w.as_bytes()[..n]);
        let _ = env.push(stamp.as_ptr().cast());
    }
    let _ = env.push(core::ptr::null());

    let mut path_buf = [0u8; 256];
    let given = init.and_then(|p| {
        (p.len() < path_buf.len()).then(|| {
            path_buf[..p.len()].copy_from_slice(p);
            CStr::from_bytes_until_nul(&path_buf).ok()
        })?
    });
    let mut errno = libc::ENOENT;
    for path in given.into_iter().chain(DEFAULT_INITS) {
        let mut args: heapless::Vec<*const c_char, MAX_VECTOR> = heapless::Vec::new();
        let _ = args.push(path.as_ptr());
        for a in argv.iter().skip(1).take(MAX_VECTOR - 2) {
            let _ = args.push(a.as_ptr());
        }
        let _ = args.push(core::ptr::null());
        errno = sys::execve(path, &args, &env);
        warn!(
            "ostree-prepare-root: cannot execute {}: {}",
            Lossy(path.to_bytes()),
            crate::error::ErrnoDisplay(errno)
        );
    }
    errno
}

/// Report a failed boot and do what `rd.emergency=` says. Never returns.
fn emergency(params: &BootParams, cmdline: Option<&Cmdline>, f: Failure) -> ! {
    warn!(
        "ostree-prepare-root: boot failed while {}: {}",
        f.phase, f.err
    );
    if let Some(c) = cmdline {
        warn!(
            "ostree-prepare-root: kernel command line: {}",
            Lossy(c.as_bytes())
        );
    }
    let action = match params.emergency {
        Emergency::Shell => {
            let sh = c"/bin/sh";
            if sys::lstat(sh.to_bytes()).is_ok() {
                warn!("ostree-prepare-root: starting /bin/sh (rd.shell)");
                let argv = [sh.as_ptr(), core::ptr::null()];
                let envp = [
                    c"PATH=/usr/sbin:/usr/bin:/sbin:/bin".as_ptr(),
                    core::ptr::null(),
                ];
                let e = sys::execve(sh, &argv, &envp);
                warn!(
                    "ostree-prepare-root: cannot execute /bin/sh: {}",
                    crate::error::ErrnoDisplay(e)
                );
            } else {
                warn!("ostree-prepare-root: rd.shell: this initramfs has no /bin/sh");
            }
            Power::Reboot
        }
        Emergency::Reboot => Power::Reboot,
        Emergency::PowerOff => Power::PowerOff,
        Emergency::Halt => Power::Halt,
    };
    match action {
        Power::Reboot => {
            warn!(
                "ostree-prepare-root: rebooting in {} s (rd.emergency=poweroff|halt|shell, rd.shell to change)",
                bootparams::REBOOT_DELAY_S
            );
            sys::sleep_ms(bootparams::REBOOT_DELAY_S * 1000);
        }
        Power::PowerOff => warn!("ostree-prepare-root: powering off (rd.emergency=poweroff)"),
        Power::Halt => warn!("ostree-prepare-root: halting (rd.emergency=halt)"),
    }
    let e = sys::reboot(action);
    warn!(
        "ostree-prepare-root: reboot(2) failed: {}; waiting forever",
        crate::error::ErrnoDisplay(e)
    );
    sys::pause_forever()
}
