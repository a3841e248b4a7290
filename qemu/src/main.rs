//! `qemu-harness`: boot tests of ostree-prepare-root on a real kernel.
//!
//! Subcommands (run `qemu-harness help`):
//!   kernel      fetch and unpack Debian's cloud kernel, print its paths
//!   initramfs   write a newc initramfs (ours, or `--reference` busybox + C tool)
//!   disk        build an OSTree test disk with the real ostree CLI
//!   boot        boot a disk once and print ktest's report
//!   test        run every scenario, print the summary table
//!   demo        the README's story, on the terminal

mod arch;
mod boot;
mod cfsdisk;
mod demo;
mod disk;
mod distro;
mod initramfs;
mod kernel;
mod lab;
mod scenarios;
mod util;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

const USAGE: &str = "\
usage: qemu-harness COMMAND [OPTIONS]

  kernel [--kernel K]         fetch + unpack a Debian kernel package, print paths
  initramfs -o OUT [--init BIN] [--modules-dir DIR] [--module NAME]... [--no-modules]
            [--add SRC:DST]... [--gzip] [--reference]
                              write a newc cpio initramfs (see qemu/README.md)
  disk [--name NAME] [--gpt] [--kernel K]
                              build an OSTree test disk, print its facts
  boot [--mode initramfs|reference|init=] [--deployment A|B] [--append ARGS]
       [--gpt] [--kernel K] [--verbose]
                              boot the test disk once, print ktest's report
  test [--only TEXT[,TEXT...]] [--subset] [--kernel K] [--verbose]
                              run every boot scenario (--only: those whose name
                              contains one TEXT; --subset: the representative
                              subset 1, 2, 5a, 7a); ends with `N passed, M failed`

  K (or KTEST_KERNEL): 5.10 (bullseye), 6.1 (the lab's, default), 6.12 (trixie),
  a linux-image-* package of the machine's apt, or SUITE:PACKAGE. Other suites
  are fetched through a private apt state in .cache/qemu/apt/SUITE-amd64/;
  a kernel other than 6.1 builds and logs under target/qemu/kernel-K/.
  demo                        the README's story: build, boot, hotfix, reboot

  --arch A (or KTEST_ARCH), before or after the command: x86_64 (default) or
  aarch64 (qemu-system-aarch64 -M virt; K: 6.1, Debian's generic arm64 kernel,
  default, or 6.1-cloud; guest binaries of aarch64-unknown-linux-musl; packages
  through .cache/qemu/apt/bookworm-arm64/, products under
  target/qemu/kernel-aarch64-K/; `test` runs the aarch64 scenarios A1-A4).
";

/// Minimal option parsing: `--name value`, `--flag`, repeatable options.
struct Opts(Vec<String>);

impl Opts {
    fn flag(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }
    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .windows(2)
            .filter(|w| w[0] == name)
            .map(|w| w[1].clone())
            .collect()
    }
    fn get(&self, name: &str) -> Option<String> {
        self.all(name).pop()
    }
}

fn cmd_initramfs(o: &Opts) -> Result<()> {
    let out = PathBuf::from(o.get("-o").context("initramfs: -o OUT is required")?);
    let modules_dir = match o.get("--modules-dir") {
        Some(d) => PathBuf::from(d),
        None => kernel::select(o.get("--kernel").as_deref())?.modules,
    };
    let mut modules = o.all("--module");
    if modules.is_empty() && !o.flag("--no-modules") {
        modules = initramfs::MODULES.iter().map(|s| s.to_string()).collect();
    }
    let files = if o.flag("--reference") {
        initramfs::build_reference(&modules_dir, &modules, o.flag("--gzip"), &out)?
    } else {
        let mut extras = vec![];
        for a in o.all("--add") {
            let (src, dst) = a.split_once(':').context("--add wants SRC:DST")?;
            extras.push((PathBuf::from(src), dst.to_string()));
        }
        let spec = initramfs::Spec {
            init: o
                .get("--init")
                .map_or_else(util::prepare_root_bin, PathBuf::from),
            modules_dir,
            modules,
            extras,
            compress: if o.flag("--gzip") {
                mkinitramfs::compress::Compress::Gzip
            } else {
                mkinitramfs::compress::Compress::None
            },
        };
        initramfs::build(&spec, &out)?
    };
    for (name, size) in files {
        println!("{size:>10}  {name}");
    }
    println!(
        "{}: {}",
        out.display(),
        util::human(std::fs::metadata(&out)?.len())
    );
    Ok(())
}

fn cmd_boot(o: &Opts) -> Result<bool> {
    let echo = if o.flag("--verbose") {
        boot::Echo::Everything
    } else {
        boot::Echo::Interesting
    };
    let lab = lab::Lab::prepare(echo, o.get("--kernel").as_deref())?;
    let mode = match o.get("--mode").as_deref() {
        None | Some("initramfs") => lab::Mode::Ours,
        Some("reference") => lab::Mode::Reference,
        Some("init=") | Some("init") => lab::Mode::NoInitramfs,
        Some(m) => bail!("unknown --mode {m}"),
    };
    let which = o.get("--deployment").unwrap_or_else(|| "B".into());
    let base = if o.flag("--gpt") {
        lab.gpt_disk()?
    } else {
        &lab.disk
    };
    let disk = disk::scratch_copy(base, "boot")?;
    let append = lab.cmdline(&disk, mode, &which, &o.get("--append").unwrap_or_default());
    println!(
        "qemu-harness: booting ({}, kernel {}, {}): {append}",
        mode.label(),
        lab.kernel.describe(),
        lab.accel
    );
    let out = lab.boot(&disk, mode, &append, "boot", None)?;
    for p in out.problems() {
        println!("problem: {p}");
    }
    println!(
        "result: {} in {:.1}s (log: {}/boot.log)",
        if out.all_ok() { "ok" } else { "FAILED" },
        out.wall.as_secs_f64(),
        util::logs_rel()
    );
    Ok(out.all_ok())
}

fn real_main() -> Result<bool> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        print!("{USAGE}");
        return Ok(false);
    }
    let o = Opts(args.clone());
    let choice = o.get("--arch").or_else(|| std::env::var("KTEST_ARCH").ok());
    if let Some(a) = choice.filter(|a| !a.is_empty()) {
        arch::set(arch::parse(&a)?);
        if let Some(i) = args.iter().position(|a| a == "--arch") {
            args.drain(i..(i + 2).min(args.len()));
        }
    }
    if args.is_empty() {
        print!("{USAGE}");
        return Ok(false);
    }
    let cmd = args.remove(0);
    let o = Opts(args);
    match cmd.as_str() {
        "kernel" => {
            let k = kernel::select(o.get("--kernel").as_deref())?;
            println!(
                "label={}\nversion={}\nvmlinuz={}\nmodules={}\nlayout={}\nmodule-suffix={}\ndecompresses-modules={}",
                k.label,
                k.version,
                k.vmlinuz.display(),
                k.modules.display(),
                k.layout().dir(),
                k.module_suffix(),
                k.decompresses_modules()
            );
        }
        "initramfs" => cmd_initramfs(&o)?,
        "disk" => {
            let name = o.get("--name").unwrap_or_else(|| "plain".into());
            let k = kernel::select(o.get("--kernel").as_deref())?;
            if let Some(l) = kernel::dir_label(&k.label) {
                util::set_kernel_dir(&l);
            }
            let d = disk::ensure(&name, o.flag("--gpt"), &k)?;
            println!("image={}", d.image.display());
            for (k, v) in &d.meta {
                println!("{k}={v}");
            }
        }
        "boot" => return cmd_boot(&o),
        "test" => {
            return scenarios::run_all(
                &scenarios::Filter::from_opts(o.get("--only").as_deref(), o.flag("--subset")),
                o.get("--kernel").as_deref(),
                o.flag("--verbose"),
            )
        }
        "demo" => return demo::run(),
        "__build-sysroot" => {
            let a = &o.0;
            let way_back = a.get(3).and_then(|w| disk::WayBack::from_arg(w));
            if !(a.len() == 3 || a.len() == 4 && way_back.is_some()) {
                bail!("__build-sysroot BUILD FS_IMAGE FS_UUID [way-back|way-back-redeployed]");
            }
            disk::build_sysroot_in_namespace(a[0].as_ref(), a[1].as_ref(), &a[2], way_back)?;
        }
        "help" | "--help" | "-h" => print!("{USAGE}"),
        other => bail!("unknown command {other}\n{USAGE}"),
    }
    Ok(true)
}

fn main() -> ExitCode {
    match real_main() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("qemu-harness: {e:#}");
            ExitCode::FAILURE
        }
    }
}
