//! The checks and actions of one boot, each reported as one KTAP result.
//!
//! The plan (which checks run) comes from the `ktest.*` arguments only, so
//! the host knows every test name before the guest boots and can assert on
//! each of them; a missing line is a failure, never a silent pass.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmdline::Args;
use crate::gvariant::{self, Value};
use crate::sys;

/// Marker the disk builder leaves in the stateroot's `var` (ostree/deploy/OS/var).
pub const STATEROOT_VAR_MARKER: &str = "/var/ktest-stateroot-var";

/// The outcome of one check.
pub struct Outcome {
    pub ok: bool,
    /// Short note after `#` on the result line (`# got rw`, `# SKIP ...`).
    pub note: String,
    /// Further `# ` diagnostic lines.
    pub diag: Vec<String>,
}

impl Outcome {
    fn pass(note: impl Into<String>) -> Outcome {
        Outcome {
            ok: true,
            note: note.into(),
            diag: vec![],
        }
    }
    fn fail(note: impl Into<String>) -> Outcome {
        Outcome {
            ok: false,
            note: note.into(),
            diag: vec![],
        }
    }
    fn check(ok: bool, note: impl Into<String>) -> Outcome {
        Outcome {
            ok,
            note: note.into(),
            diag: vec![],
        }
    }
    fn skip(why: &str) -> Outcome {
        Outcome::pass(format!("SKIP {why}"))
    }
}

type CheckFn = Box<dyn Fn() -> Outcome>;

/// One planned check: its KTAP name and what to run.
pub struct Check {
    pub name: String,
    pub run: CheckFn,
}

fn check(name: impl Into<String>, run: impl Fn() -> Outcome + 'static) -> Check {
    Check {
        name: name.into(),
        run: Box::new(run),
    }
}

/// `/usr/share/x` → `usr-share-x`, for test names.
fn slug(path: &str) -> String {
    path.trim_matches('/').replace(['/', ' '], "-")
}

/// Build the plan from the arguments.
pub fn plan(args: &Args) -> Vec<Check> {
    let mut v = Vec::new();
    // First, before any check starts a process of its own.
    if args.alone {
        v.push(check("no-other-processes", no_other_processes));
    }
    let want = args.deployment.clone();
    let name = match &want {
        Some(d) => format!("root-is-deployment-{d}"),
        None => "root-is-a-deployment".into(),
    };
    v.push(check(name, move || root_is_deployment(want.as_deref())));
    let ostree = args.ostree.clone();
    match args.composefs.clone() {
        // A composefs root is an overlay of the deployment's image: it is
        // not the deployment directory, whose device and inode stay in
        // /run/ostree-booted (checked below).
        Some(mode) => v.push(check("root-is-composefs", move || root_is_composefs(&mode))),
        None => v.push(check("root-is-ostree-target", move || {
            root_is_target(ostree.as_deref())
        })),
    }
    if let Some(rel) = args.root.clone() {
        v.push(check("root-is-named-directory", move || root_is(&rel)));
    }
    v.push(check("sysroot-is-physical-root", sysroot_is_physical));
    if let Some(rw) = args.sysroot_rw {
        let name = if rw {
            "sysroot-writable"
        } else {
            "sysroot-readonly"
        };
        v.push(check(name, move || mount_state("/sysroot", rw)));
    }
    // Commands (ostree-unlock ...) run before the state checks, which then
    // describe the system they leave.
    for c in &args.run {
        let c = c.clone();
        let first = c.split_whitespace().next().unwrap_or("").to_string();
        v.push(check(format!("run-{}", slug(&first)), move || run(&c)));
    }
    for p in &args.verity {
        let p = p.clone();
        v.push(check(format!("enable-verity-{}", slug(&p)), move || {
            enable_verity_under(&p)
        }));
    }
    let usr_rw = args.usr_rw;
    let name = if usr_rw {
        "usr-writable"
    } else {
        "usr-readonly"
    };
    v.push(check(name, move || writable_as_expected("/usr", usr_rw)));
    for (dir, rw) in [("/etc", args.etc_rw), ("/var", args.var_rw)] {
        let name = format!("{}-{}", slug(dir), if rw { "writable" } else { "readonly" });
        v.push(check(name, move || writable_as_expected(dir, rw)));
    }
    v.push(check("var-is-stateroot-var", var_is_stateroot));
    v.push(check("boot-bound", boot_bound));
    let ostree = args.ostree.clone();
    v.push(check("run-ostree-booted-valid", move || {
        ostree_booted(ostree.as_deref())
    }));
    for (k, want) in &args.booted {
        let (k, want) = (k.clone(), want.clone());
        v.push(check(format!("ostree-booted-{k}"), move || {
            booted_has(&k, &want)
        }));
    }
    for p in &args.read {
        let p = p.clone();
        v.push(check(format!("read-{}", slug(&p)), move || read_ok(&p)));
    }
    for p in &args.eio {
        let p = p.clone();
        v.push(check(format!("eio-{}", slug(&p)), move || read_eio(&p)));
    }
    for p in &args.write {
        let p = p.clone();
        let step = args.step.clone();
        v.push(check(format!("write-{}", slug(&p)), move || {
            write_file(&p, &step)
        }));
    }
    for p in &args.exists {
        let p = p.clone();
        v.push(check(format!("exists-{}", slug(&p)), move || {
            exists(&p, true)
        }));
    }
    for p in &args.absent {
        let p = p.clone();
        v.push(check(format!("absent-{}", slug(&p)), move || {
            exists(&p, false)
        }));
    }
    for k in &args.unknown {
        let k = k.clone();
        v.push(check(format!("known-arg-{k}"), move || {
            Outcome::fail(format!("unknown ktest argument {k}"))
        }));
    }
    v
}

fn read_trim(path: &str) -> io::Result<String> {
    Ok(fs::read_to_string(path)?.trim().to_string())
}

fn root_is_deployment(want: Option<&str>) -> Outcome {
    let got = match read_trim("/usr/share/which-deployment") {
        Ok(g) => g,
        Err(e) => return Outcome::fail(format!("/usr/share/which-deployment: {e}")),
    };
    let mut o = match want {
        Some(w) => Outcome::check(got == w, format!("got {got}")),
        None => Outcome::pass(format!("got {got}")),
    };
    if let Ok(rel) = fs::read_to_string("/usr/lib/os-release") {
        o.diag.extend(
            rel.lines()
                .filter(|l| l.starts_with("VERSION="))
                .map(String::from),
        );
    }
    o
}

/// The deployment directory named by `ostree=`, resolved inside `/sysroot`.
fn deployment_dir(ostree: Option<&str>) -> Result<PathBuf, String> {
    let target = ostree.ok_or("no ostree= on the command line")?;
    let p = format!("/sysroot/{}", target.trim_start_matches('/'));
    fs::canonicalize(&p).map_err(|e| format!("{p}: {e}"))
}

fn dev_ino(p: &Path, follow: bool) -> Result<(u64, u64), String> {
    let m = if follow {
        fs::metadata(p)
    } else {
        fs::symlink_metadata(p)
    };
    m.map(|m| (m.dev(), m.ino()))
        .map_err(|e| format!("{}: {e}", p.display()))
}

fn root_is_target(ostree: Option<&str>) -> Outcome {
    let run = || -> Result<Outcome, String> {
        let dir = deployment_dir(ostree)?;
        let want = dev_ino(&dir, false)?;
        let got = dev_ino(Path::new("/"), true)?;
        let mut o = Outcome::check(got == want, format!("got {got:?} want {want:?}"));
        o.diag.push(format!("deployment {}", dir.display()));
        Ok(o)
    };
    run().unwrap_or_else(Outcome::fail)
}

/// `/` is the directory `rel` of the physical root (`/sysroot/rel`).
fn root_is(rel: &str) -> Outcome {
    let dir = Path::new("/sysroot").join(rel.trim_start_matches('/'));
    match (dev_ino(&dir, false), dev_ino(Path::new("/"), true)) {
        (Ok(want), Ok(got)) => Outcome::check(
            got == want,
            format!("/ is /sysroot/{rel}: got {got:?} want {want:?}"),
        ),
        (Err(e), _) | (_, Err(e)) => Outcome::fail(e),
    }
}

fn sysroot_is_physical() -> Outcome {
    let repo = Path::new("/sysroot/ostree/repo/config").is_file();
    let deploy = Path::new("/sysroot/ostree/deploy").is_dir();
    Outcome::check(
        repo && deploy,
        format!("ostree/repo {repo} ostree/deploy {deploy}"),
    )
}

fn mount_state(path: &str, want_rw: bool) -> Outcome {
    match sys::is_readonly_mount(path) {
        Ok(ro) => Outcome::check(ro != want_rw, if ro { "got ro" } else { "got rw" }),
        Err(e) => Outcome::fail(format!("statvfs {path}: {e}")),
    }
}

/// Try to create and remove a file: the only test of writability that
/// covers read-only binds, overlays and read-only superblocks alike.
fn probe_write(dir: &str) -> io::Result<()> {
    let p = format!("{dir}/.ktest-probe-{}", std::process::id());
    fs::write(&p, b"probe")?;
    fs::remove_file(&p)
}

fn writable_as_expected(dir: &str, want_rw: bool) -> Outcome {
    let r = probe_write(dir);
    let rw = r.is_ok();
    let mut o = Outcome::check(rw == want_rw, if rw { "got rw" } else { "got ro" });
    if let Err(e) = r {
        o.diag.push(format!("write to {dir}: {e}"));
    }
    if let Ok(ro) = sys::is_readonly_mount(dir) {
        o.diag.push(format!(
            "{dir} mount flag: {}",
            if ro { "ro" } else { "rw" }
        ));
    }
    o
}

fn var_is_stateroot() -> Outcome {
    let marker = Path::new(STATEROOT_VAR_MARKER).is_file();
    Outcome::check(marker, format!("{STATEROOT_VAR_MARKER} present {marker}"))
}

/// Every process but ktest (PID 1) is a kernel thread: kthreadd (PID 2)
/// or one of its children.
fn no_other_processes() -> Outcome {
    let run = || -> Result<Outcome, String> {
        let mut others = Vec::new();
        for e in fs::read_dir("/proc").map_err(|e| format!("/proc: {e}"))? {
            let name = e.map_err(|e| format!("/proc: {e}"))?.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if pid <= 2 {
                continue;
            }
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue; // gone meanwhile
            };
            // "PID (COMM) STATE PPID ...": COMM may hold spaces; split after ')'.
            let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
            let ppid = after.split_whitespace().nth(1).unwrap_or("");
            if ppid != "2" {
                let comm = stat
                    .split_once('(')
                    .and_then(|(_, r)| r.rsplit_once(')'))
                    .map_or("?", |(c, _)| c);
                others.push(format!("{pid} ({comm}, parent {ppid})"));
            }
        }
        Ok(Outcome::check(
            others.is_empty(),
            format!("others: {others:?}"),
        ))
    };
    run().unwrap_or_else(Outcome::fail)
}

fn boot_bound() -> Outcome {
    let run = || -> Result<Outcome, String> {
        let boot = dev_ino(Path::new("/boot"), true)?;
        let phys = dev_ino(Path::new("/sysroot/boot"), true)?;
        let loader = Path::new("/boot/loader/entries").is_dir();
        Ok(Outcome::check(
            boot == phys && loader,
            format!("same-inode {} loader/entries {loader}", boot == phys),
        ))
    };
    run().unwrap_or_else(Outcome::fail)
}

/// `/run/ostree-booted`, decoded: its size and entries, or the failure.
fn read_booted() -> Result<(usize, Vec<(String, Value)>), Outcome> {
    let bytes = fs::read("/run/ostree-booted")
        .map_err(|e| Outcome::fail(format!("/run/ostree-booted: {e}")))?;
    let entries =
        gvariant::parse_asv(&bytes).map_err(|e| Outcome::fail(format!("not an a{{sv}}: {e}")))?;
    Ok((bytes.len(), entries))
}

fn ostree_booted(ostree: Option<&str>) -> Outcome {
    let (size, entries) = match read_booted() {
        Ok(r) => r,
        Err(o) => return o,
    };
    let mut o = Outcome::pass(format!("{size} bytes, {} keys", entries.len()));
    for (k, v) in &entries {
        o.diag.push(format!("ostree-booted {k} = {v:?}"));
        match (k.as_str(), v) {
            ("backing-root-device-inode", Value::U64Pair(dev, ino)) => {
                match deployment_dir(ostree).and_then(|d| dev_ino(&d, false)) {
                    Ok(want) if want == (*dev, *ino) => {}
                    Ok(want) => {
                        o.ok = false;
                        o.diag
                            .push(format!("backing-root-device-inode: want {want:?}"));
                    }
                    Err(e) => {
                        o.ok = false;
                        o.diag.push(e);
                    }
                }
            }
            // `sysroot-ro` is the `sysroot.readonly` setting: when true, /sysroot
            // must be read-only; when false it may still be (kernel `ro`, before
            // the real init remounts it).
            ("sysroot-ro", Value::Bool(true)) => match sys::is_readonly_mount("/sysroot") {
                Ok(true) => {}
                Ok(false) => {
                    o.ok = false;
                    o.diag
                        .push("sysroot-ro is true but /sysroot is writable".into());
                }
                Err(e) => {
                    o.ok = false;
                    o.diag.push(format!("statvfs /sysroot: {e}"));
                }
            },
            (_, Value::Other(t)) => {
                o.ok = false;
                o.diag.push(format!("{k}: unexpected type {t}"));
            }
            _ => {}
        }
    }
    if !o.ok {
        o.note = format!("{} (see diagnostics)", o.note);
    }
    o
}

fn write_file(path: &str, step: &str) -> Outcome {
    let run = || -> io::Result<()> {
        let mut f = fs::File::create(path)?;
        writeln!(f, "written by ktest step {step}")?;
        f.sync_all()?;
        // SAFETY: sync() takes no arguments.
        unsafe { libc::sync() };
        Ok(())
    };
    match run() {
        Ok(()) => Outcome::pass(""),
        Err(e) => Outcome::fail(format!("{path}: {e}")),
    }
}

fn exists(path: &str, want: bool) -> Outcome {
    let got = Path::new(path).symlink_metadata().is_ok();
    let mut o = Outcome::check(got == want, if got { "present" } else { "absent" });
    if let Ok(s) = fs::read_to_string(path) {
        o.diag
            .extend(s.lines().take(3).map(|l| format!("{path}: {l}")));
    }
    o
}

fn run(cmdline: &str) -> Outcome {
    let mut words = cmdline.split_whitespace();
    let Some(prog) = words.next() else {
        return Outcome::fail("empty command");
    };
    let found = if prog.contains('/') {
        Path::new(prog).exists()
    } else {
        ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
            .iter()
            .any(|d| Path::new(d).join(prog).exists())
    };
    if !found {
        return Outcome::skip(&format!("{prog} not present"));
    }
    match Command::new(prog)
        .args(words)
        .env("PATH", "/usr/bin:/usr/sbin:/bin:/sbin")
        .output()
    {
        Ok(out) => {
            let mut o = Outcome::check(out.status.success(), format!("{}", out.status));
            for l in String::from_utf8_lossy(&out.stdout)
                .lines()
                .chain(String::from_utf8_lossy(&out.stderr).lines())
            {
                o.diag.push(format!("{prog}: {l}"));
            }
            o
        }
        Err(e) => Outcome::fail(format!("{prog}: {e}")),
    }
}

/// The mountinfo line of the mount at `/` that is visible last (the top one).
fn root_mount() -> Result<String, String> {
    let t = fs::read_to_string("/proc/self/mountinfo").map_err(|e| format!("mountinfo: {e}"))?;
    t.lines()
        .rfind(|l| l.split(' ').nth(4) == Some("/"))
        .map(str::to_string)
        .ok_or_else(|| "no mount at /".to_string())
}

/// `/` is an overlay whose source is `composefs`; with `verity`, its
/// options hold `verity=require`.
fn root_is_composefs(mode: &str) -> Outcome {
    let line = match root_mount() {
        Ok(l) => l,
        Err(e) => return Outcome::fail(e),
    };
    // "... - FSTYPE SOURCE SUPER_OPTIONS"
    let after = line.split_once(" - ").map_or("", |(_, r)| r);
    let mut f = after.split(' ');
    let (fstype, source, opts) = (
        f.next().unwrap_or(""),
        f.next().unwrap_or(""),
        f.next().unwrap_or(""),
    );
    let verity = opts.split(',').any(|o| o == "verity=require");
    let ok = fstype == "overlay" && source == "composefs" && (mode != "verity" || verity);
    let mut o = Outcome::check(
        ok,
        format!("fstype {fstype} source {source} verity=require {verity}"),
    );
    o.diag.push(format!("/: {line}"));
    o
}

/// `/run/ostree-booted` holds `key` with the value `want`.
fn booted_has(key: &str, want: &str) -> Outcome {
    let entries = match read_booted() {
        Ok((_, e)) => e,
        Err(o) => return o,
    };
    let got = entries
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| match v {
            Value::Bool(b) => b.to_string(),
            Value::Str(s) => s.clone(),
            Value::U64Pair(a, b) => format!("({a}, {b})"),
            Value::Other(t) => format!("<{t}>"),
        });
    match got {
        Some(g) => Outcome::check(g == want, format!("got {g:?} want {want:?}")),
        None => Outcome::fail(format!("no key {key}")),
    }
}

fn read_all(path: &str) -> io::Result<usize> {
    let mut f = fs::File::open(path)?;
    let mut buf = [0u8; 4096];
    let mut n = 0;
    loop {
        match io::Read::read(&mut f, &mut buf)? {
            0 => return Ok(n),
            k => n += k,
        }
    }
}

fn read_ok(path: &str) -> Outcome {
    match read_all(path) {
        Ok(n) => Outcome::pass(format!("{n} bytes")),
        Err(e) => Outcome::fail(format!("{path}: {e}")),
    }
}

/// Reading `path` must fail with EIO (fs-verity found data that does not
/// match its Merkle tree); a successful read is a failure.
fn read_eio(path: &str) -> Outcome {
    match read_all(path) {
        Ok(n) => Outcome::fail(format!("read {n} bytes, want EIO")),
        Err(e) => Outcome::check(e.raw_os_error() == Some(libc::EIO), format!("{path}: {e}")),
    }
}

/// Enable fs-verity on `path`, or on every regular file beneath it (no
/// symlink followed). Files that already have it count as done.
fn enable_verity_under(path: &str) -> Outcome {
    let (mut enabled, mut had) = (0usize, 0usize);
    let mut errors = Vec::new();
    let mut stack = vec![PathBuf::from(path)];
    while let Some(p) = stack.pop() {
        let meta = match fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) => {
                errors.push(format!("{}: {e}", p.display()));
                continue;
            }
        };
        if meta.is_dir() {
            match fs::read_dir(&p) {
                Ok(rd) => stack.extend(rd.filter_map(|e| e.ok().map(|e| e.path()))),
                Err(e) => errors.push(format!("{}: {e}", p.display())),
            }
        } else if meta.is_file() {
            match sys::enable_verity(&p) {
                Ok(true) => enabled += 1,
                Ok(false) => had += 1,
                Err(e) => errors.push(format!("{}: {e}", p.display())),
            }
        }
    }
    let mut o = Outcome::check(
        errors.is_empty() && enabled + had > 0,
        format!("enabled {enabled}, already {had}, errors {}", errors.len()),
    );
    o.diag.extend(errors.into_iter().take(5));
    o
}
