//! `ostree-mkinitramfs`: see the crate's library and `man 8 ostree-mkinitramfs`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use mkinitramfs::cli::{self, Parsed, USAGE};
use mkinitramfs::image::{self, Image, Spec};

const NAME: &str = "ostree-mkinitramfs";

fn running_kernel() -> Result<String, String> {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("cannot read the running kernel's version (/proc/sys/kernel/osrelease): {e}; give --kernel-version"))
}

fn run(a: cli::Args) -> Result<(), String> {
    // The module tree is read only when modules are asked for.
    let (modules_dir, version) = if a.modules.is_empty() {
        (PathBuf::new(), String::new())
    } else {
        match (&a.modules_dir, &a.kernel_version) {
            (Some(d), v) => {
                let version = match v {
                    Some(v) => v.clone(),
                    // The name as given (a symbolic link named for the
                    // version counts), else the real directory's (`.`).
                    None => d
                        .file_name()
                        .map(PathBuf::from)
                        .or_else(|| d.canonicalize().ok()?.file_name().map(PathBuf::from))
                        .map(|n| n.to_string_lossy().into_owned())
                        .ok_or_else(|| format!("{}: cannot tell the kernel version from its name: give --kernel-version", d.display()))?,
                };
                (d.clone(), version)
            }
            (None, v) => {
                let v = match v {
                    Some(v) => v.clone(),
                    None => running_kernel()?,
                };
                (cli::find_modules_dir(Path::new("/"), &v)?, v)
            }
        }
    };
    let init = a
        .prepare_root
        .clone()
        .unwrap_or_else(|| cli::default_prepare_root(std::env::current_exe().ok().as_deref()));
    let spec = Spec {
        modules_dir,
        version,
        modules: a.modules.clone(),
        init,
        config: a.config.clone(),
        extras: a.extras.clone(),
    };
    let img = Image::plan(&spec).map_err(|e| e.to_string())?;
    for w in &img.warnings {
        eprintln!("{NAME}: warning: {w}");
    }
    for b in &img.builtin {
        eprintln!("{NAME}: {b} is built into the kernel: nothing to add");
    }
    if a.list {
        print!("{}", img.listing());
        println!("# load order: {}", img.load_order.join(" "));
    }
    if let Some(out) = &a.output {
        let bytes = img.bytes(a.compress).map_err(|e| e.to_string())?;
        image::write_atomically(out, &bytes).map_err(|e| e.to_string())?;
        if a.list {
            println!(
                "# {}: {} bytes ({})",
                out.display(),
                bytes.len(),
                a.compress.name()
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match cli::parse(std::env::args().skip(1)) {
        Ok(Parsed::Help) => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Parsed::Version) => {
            println!("{NAME} {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Ok(Parsed::Run(a)) => match run(a) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                for l in e.lines() {
                    eprintln!("{NAME}: {l}");
                }
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("{NAME}: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
