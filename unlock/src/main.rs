//! `ostree-unlock`: make `/usr` of an OSTree deployment writable, the way
//! `ostree admin unlock` does, writing the markers `ostree-prepare-root` reads.
//!
//! - development (default): a writable overlay on `/usr` now, gone at reboot;
//! - `--hotfix`: the overlay persists for this deployment (`.usr-ovl-upper`,
//!   `.usr-ovl-work`, `[origin] unlocked=hotfix`), with a pristine boot entry
//!   and `--discard` as ways back;
//! - `--transient`: like development, but mounted read-only.

mod deployment;
mod fsutil;
mod mounts;
mod origin;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use deployment::{Target, Unlocked};
use fsutil::{ensure_dir, msg, remove_tree, set_immutable, write_atomic, Context, Result};
use mounts::WritableView;
use switchroot::plan::markers;

const USAGE: &str = "\
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
enum Command {
    Unlock(Unlocked),
    Status { json: bool },
    Discard,
}

struct Args {
    command: Command,
    sysroot: Option<PathBuf>,
    deployment: Option<String>,
}

fn parse_args(argv: &[String]) -> std::result::Result<Option<Args>, String> {
    let mut mode = Unlocked::Development;
    let mut status = false;
    let mut json = false;
    let mut discard = false;
    let mut sysroot = None;
    let mut deployment = None;
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "--hotfix" if mode == Unlocked::Development => mode = Unlocked::Hotfix,
            "--transient" if mode == Unlocked::Development => mode = Unlocked::Transient,
            "--hotfix" | "--transient" => {
                return Err("give at most one of --hotfix and --transient".into())
            }
            "--status" => status = true,
            "--json" => json = true,
            "--discard" => discard = true,
            "--sysroot" => sysroot = Some(PathBuf::from(value("--sysroot")?)),
            "--deployment" => deployment = Some(value("--deployment")?),
            _ => return Err(format!("unknown argument {a} (see --help)")),
        }
    }
    let command = match (status, discard, mode) {
        (true, false, Unlocked::Development) => Command::Status { json },
        (false, true, Unlocked::Development) => Command::Discard,
        (false, false, m) => Command::Unlock(m),
        _ => return Err("--status, --discard and an unlock mode exclude each other".into()),
    };
    if json && !status {
        return Err("--json goes with --status".into());
    }
    if deployment.is_some() && sysroot.is_none() {
        return Err("--deployment needs --sysroot (live, the booted deployment is used)".into());
    }
    Ok(Some(Args {
        command,
        sysroot,
        deployment,
    }))
}

/// A test hook standing in for a power cut: `OSTREE_UNLOCK_STOP_AFTER=N`
/// ends the process abruptly after step N of a hotfix or a discard.
fn step(n: u32, what: &str) {
    if std::env::var("OSTREE_UNLOCK_STOP_AFTER")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        == Some(n)
    {
        eprintln!(
            "ostree-unlock: stopping after step {n} ({what}) as OSTREE_UNLOCK_STOP_AFTER asks"
        );
        std::process::exit(75);
    }
}

fn s(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("")
}

/// Mode of the deployment's `/usr`, which the overlay directories copy
/// (a umask-made 0700 once broke polkitd: ostree#1843).
fn usr_mode(t: &Target) -> Result<u32> {
    let usr = t.dir().join("usr");
    Ok(fs::metadata(&usr).ctx("stat", &usr)?.mode() & 0o7777)
}

/// `ostree/deploy` of the sysroot, writable: a writable bind when live (the
/// sysroot is often mounted read-only), the directory itself offline.
fn deploy_view(t: &Target) -> Result<WritableView> {
    let dir = t.sysroot.join("ostree/deploy");
    if t.live {
        WritableView::of(&dir, "unlock-deploy")
    } else {
        Ok(WritableView::plain(&dir))
    }
}

fn set_runtime_flag(t: &Target, flag: &[u8]) -> Result<()> {
    let state = Path::new(s(markers::DEPLOYMENT_STATE));
    ensure_dir(state, 0o755)?;
    ensure_dir(&t.state_dir(), 0o755)?;
    write_atomic(&t.state_dir().join(s(flag)), b"", 0o644)
}

/// Development or transient mode: overlay data in the deployment's backing
/// directory (as ostree 2025.3+), or on a tmpfs when that cannot be written.
fn unlock_development(t: &Target, transient: bool) -> Result<()> {
    let mode = usr_mode(t)?;
    let lower = Path::new("/usr");
    match deploy_view(t) {
        Ok(view) => {
            let backing = view.path.join(t.rel_backing());
            ensure_dir(backing.parent().unwrap_or(&backing), 0o700)?;
            ensure_dir(&backing, 0o700)?;
            let dir = backing.join(s(markers::USR_TRANSIENT));
            remove_tree(&dir)?;
            ensure_dir(&dir, mode)?;
            ensure_dir(&dir.join("upper"), mode)?;
            ensure_dir(&dir.join("work"), mode)?;
            mounts::mount_usr_overlay(lower, &dir.join("upper"), &dir.join("work"), transient)?;
            fsutil::touch(&view.path)?;
        }
        Err(e) => {
            eprintln!("ostree-unlock: note: cannot write the deployment's filesystem ({e}); keeping the overlay on a tmpfs");
            let tmp = mounts::scratch_tmpfs("usr-transient")?;
            ensure_dir(&tmp.join("upper"), mode)?;
            ensure_dir(&tmp.join("work"), mode)?;
            let r =
                mounts::mount_usr_overlay(lower, &tmp.join("upper"), &tmp.join("work"), transient);
            // The overlay keeps the tmpfs alive; its mount point is not needed.
            let _ = mounts::detach(&tmp);
            let _ = fs::remove_dir(&tmp);
            r?;
        }
    }
    set_runtime_flag(
        t,
        if transient {
            markers::UNLOCKED_TRANSIENT
        } else {
            markers::UNLOCKED_DEVELOPMENT
        },
    )?;
    if transient {
        println!("A writable overlayfs is prepared for /usr, but is mounted read-only.");
        println!("Write to it in a private mount namespace: unshare -m -- sh -c 'mount -o remount,rw /usr && ...'");
    } else {
        println!("Development mode enabled. A writable overlayfs is now mounted on /usr.");
        println!("All changes there will be discarded on reboot.");
    }
    Ok(())
}

/// The boot directory holding `loader/entries`, and a writable view of it.
fn boot_view(t: &Target) -> Option<WritableView> {
    let boot = if t.live {
        PathBuf::from("/boot")
    } else {
        t.sysroot.join("boot")
    };
    if !boot.join("loader/entries").is_dir() {
        return None;
    }
    if t.live {
        WritableView::of(&boot, "unlock-boot").ok()
    } else {
        Some(WritableView::plain(&boot))
    }
}

fn pristine_entry_path(entry: &deployment::BootEntry) -> PathBuf {
    let name = entry
        .path
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or("ostree.conf");
    entry
        .path
        .with_file_name(format!("{}{name}", markers::PRISTINE_ENTRY_PREFIX))
}

/// Whether `t` has its pristine boot entry.
fn has_pristine_entry(t: &Target) -> bool {
    let boot = if t.live {
        PathBuf::from("/boot")
    } else {
        t.sysroot.join("boot")
    };
    deployment::boot_entries(&boot)
        .iter()
        .filter(|e| {
            e.deployment(&t.sysroot)
                .is_some_and(|d| s(d.name()) == t.name)
        })
        .any(|e| pristine_entry_path(e).exists())
}

/// Add (or with `add == false` remove) the boot entry that boots `t` once
/// without its hotfix. Best effort: the kernel argument works without it.
fn pristine_entry(t: &Target, add: bool) {
    let Some(view) = boot_view(t) else {
        eprintln!("ostree-unlock: note: no boot loader entries found; use the kernel argument ostree.prepare-root.hotfix=0 for a pristine boot");
        return;
    };
    let entries = deployment::boot_entries(&view.path);
    let Some(entry) = entries.iter().find(|e| {
        e.deployment(&t.sysroot)
            .is_some_and(|d| s(d.name()) == t.name)
    }) else {
        if add {
            eprintln!(
                "ostree-unlock: note: no boot entry for {}; no pristine entry added",
                t.name
            );
        }
        return;
    };
    let path = pristine_entry_path(entry);
    let r = if add {
        let text: Vec<String> = entry
            .text
            .lines()
            .map(|l| {
                if let Some(title) = l.strip_prefix("title ") {
                    format!("title {title} (pristine, without hotfix)")
                } else if l.starts_with("version ") {
                    // Lowest version: never the default entry.
                    "version 0".into()
                } else if let Some(o) = l.strip_prefix("options ") {
                    format!("options {o} {}=0", s(markers::HOTFIX_KARG))
                } else {
                    l.to_string()
                }
            })
            .collect();
        write_atomic(&path, (text.join("\n") + "\n").as_bytes(), 0o644)
    } else {
        remove_tree(&path).and_then(|()| fsutil::fsync_dir(path.parent().unwrap_or(Path::new("/"))))
    };
    if let Err(e) = r {
        eprintln!("ostree-unlock: warning: pristine boot entry: {e}");
    }
}

fn set_origin_unlocked(view: &WritableView, t: &Target, value: Option<&str>) -> Result<()> {
    let path = view.path.join(t.origin_rel());
    let text = fs::read_to_string(&path).ctx("read", &path)?;
    let new = origin::set(&text, markers::ORIGIN_UNLOCKED_KEY, value);
    if new != text {
        write_atomic(&path, new.as_bytes(), 0o644)?;
    }
    Ok(())
}

/// Hotfix: markers first (a boot sees both or falls back to pristine), then
/// the origin key, then the boot entry; each step is safe to repeat.
fn unlock_hotfix(t: &Target) -> Result<()> {
    let mode = usr_mode(t)?;
    let view = deploy_view(t)?;
    let dir = view.path.join(t.rel_in_deploy());
    set_immutable(&dir, false)?;
    step(1, "immutable attribute cleared");
    let made = (|| {
        // .usr-ovl-work first: until .usr-ovl-upper exists too, boots stay pristine.
        ensure_dir(&dir.join(s(markers::USR_OVL_WORK)), mode)?;
        step(2, ".usr-ovl-work created");
        ensure_dir(&dir.join(s(markers::USR_OVL_UPPER)), mode)?;
        fsutil::fsync_dir(&dir)?;
        step(3, ".usr-ovl-upper created");
        Ok(())
    })();
    // Whatever happened, the deployment is immutable again.
    set_immutable(&dir, true)?;
    made?;
    step(4, "immutable attribute restored");
    set_origin_unlocked(&view, t, Some("hotfix"))?;
    step(5, "origin written");
    pristine_entry(t, true);
    step(6, "pristine boot entry written");
    fsutil::touch(&view.path)?;
    if t.live && !mounts::usr_is_overlay() {
        mounts::mount_usr_overlay(
            Path::new("/usr"),
            &dir.join(s(markers::USR_OVL_UPPER)),
            &dir.join(s(markers::USR_OVL_WORK)),
            false,
        )?;
    }
    if t.live {
        println!(
            "Hotfix mode enabled. A writable overlayfs is now mounted on /usr for this deployment."
        );
        println!("It will remain at every boot of {}. The way back: the \"(pristine)\" boot entry or the kernel argument {}=0 (one boot), or ostree-unlock --discard.", t.name, s(markers::HOTFIX_KARG));
    } else {
        println!(
            "Hotfix markers written for {}/{}; /usr will be a persistent overlay at its next boot.",
            t.stateroot, t.name
        );
    }
    Ok(())
}

/// Remove the hotfix from the next boot on. The markers move to the backing
/// directory first (a boot then is pristine), and are deleted when no
/// overlay uses them (offline at once; live by ostree-prepare-root at boot).
fn discard(t: &Target) -> Result<()> {
    let view = deploy_view(t)?;
    let dir = view.path.join(t.rel_in_deploy());
    let backing = view.path.join(t.rel_backing());
    ensure_dir(backing.parent().unwrap_or(&backing), 0o700)?;
    ensure_dir(&backing, 0o700)?;
    set_immutable(&dir, false)?;
    step(1, "immutable attribute cleared");
    let moves = [
        (markers::USR_OVL_WORK, markers::HOTFIX_DISCARDED[1]),
        (markers::USR_OVL_UPPER, markers::HOTFIX_DISCARDED[0]),
    ];
    for (i, (from, to)) in moves.into_iter().enumerate() {
        let src = dir.join(s(from));
        if fs::symlink_metadata(&src).is_ok() {
            let dst = backing.join(s(to));
            remove_tree(&dst)?;
            fs::rename(&src, &dst).ctx("move the hotfix out of the deployment:", &src)?;
            fsutil::fsync_dir(&dir)?;
        }
        step(2 + i as u32, "hotfix marker moved away");
    }
    set_immutable(&dir, true)?;
    step(4, "immutable attribute restored");
    set_origin_unlocked(&view, t, None)?;
    step(5, "origin written");
    pristine_entry(t, false);
    step(6, "pristine boot entry removed");
    let in_use = t.live && mounts::usr_is_overlay();
    if !in_use {
        for d in markers::HOTFIX_DISCARDED {
            remove_tree(&backing.join(s(d)))?;
        }
    }
    fsutil::touch(&view.path)?;
    if in_use {
        println!("Hotfix discarded: the next boot of {} is pristine. The overlay stays mounted until then.", t.name);
    } else {
        println!("Hotfix discarded: {}/{} is pristine.", t.stateroot, t.name);
    }
    Ok(())
}

fn status(t: &Target, json: bool) {
    let state = deployment::state(t);
    let markers = deployment::hotfix_markers(t);
    if json {
        println!(
            "{{\"stateroot\":\"{}\",\"deployment\":\"{}\",\"booted\":{},\"unlocked\":\"{}\",\"hotfix-markers\":{}}}",
            t.stateroot,
            t.name,
            t.live,
            state.name(),
            markers
        );
    } else {
        println!(
            "{}/{}{}",
            t.stateroot,
            t.name,
            if t.live { " (booted)" } else { "" }
        );
        println!("    Unlocked: {}", state.name());
        if markers != (state == Unlocked::Hotfix)
            && state != Unlocked::Development
            && state != Unlocked::Transient
        {
            println!(
                "    Note: hotfix markers {}; rerun ostree-unlock --hotfix or --discard to finish",
                if markers {
                    "present without unlocked=hotfix"
                } else {
                    "missing"
                }
            );
        }
    }
}

fn run(args: &Args) -> Result<()> {
    let is_status = matches!(args.command, Command::Status { .. });
    // SAFETY: geteuid cannot fail.
    if !is_status && unsafe { libc::geteuid() } != 0 {
        return Err(msg(if args.sysroot.is_some() {
            "needs root (it writes to the sysroot)"
        } else {
            "needs root (it mounts on /usr and writes to the sysroot)"
        }));
    }
    let target = match (&args.sysroot, &args.deployment) {
        (Some(root), Some(d)) => deployment::named(root, d, false)?,
        (Some(root), None) => deployment::default(root)?,
        (None, _) => {
            if !is_status {
                mounts::enter_pid1_namespace()?;
            }
            deployment::booted(Path::new("/sysroot"))?
        }
    };
    match args.command {
        Command::Status { json } => {
            status(&target, json);
            Ok(())
        }
        Command::Discard => {
            // Anything a hotfix, or an interrupted discard, leaves behind.
            let exists = |p: PathBuf| fs::symlink_metadata(p).is_ok();
            let backing = target
                .sysroot
                .join("ostree/deploy")
                .join(target.rel_backing());
            let leftover_data = !(target.live && mounts::usr_is_overlay())
                && markers::HOTFIX_DISCARDED
                    .iter()
                    .any(|d| exists(backing.join(s(d))));
            let any = deployment::state(&target) == Unlocked::Hotfix
                || exists(target.dir().join(s(markers::USR_OVL_UPPER)))
                || exists(target.dir().join(s(markers::USR_OVL_WORK)))
                || has_pristine_entry(&target)
                || leftover_data;
            if !any {
                println!(
                    "{}/{} has no hotfix; nothing to discard.",
                    target.stateroot, target.name
                );
                return Ok(());
            }
            discard(&target)
        }
        Command::Unlock(mode) => unlock(&target, mode),
    }
}

fn unlock(target: &Target, mode: Unlocked) -> Result<()> {
    let current = deployment::state(target);
    let overlay = target.live && mounts::usr_is_overlay();
    // "Already unlocked" only when it really took effect: the overlay is
    // mounted (upstream can record a state whose mount never reached PID 1,
    // ostree#2653) and a hotfix is complete; otherwise finish the job.
    let complete = (!target.live || overlay)
        && (mode != Unlocked::Hotfix
            || (deployment::hotfix_markers(target) && has_pristine_entry(target)));
    if current == mode && complete {
        println!(
            "{}/{} is already unlocked ({}); nothing to do.",
            target.stateroot,
            target.name,
            mode.name()
        );
        return Ok(());
    }
    if current != Unlocked::None && current != mode {
        let hint = if current == Unlocked::Hotfix {
            " after ostree-unlock --discard"
        } else {
            ""
        };
        return Err(msg(format!(
            "{}/{} is already unlocked in {} mode; reboot first{hint}",
            target.stateroot,
            target.name,
            current.name()
        )));
    }
    if !target.live && mode != Unlocked::Hotfix {
        return Err(msg("development and transient mode act on the running system; offline (--sysroot) only --hotfix, --discard and --status work"));
    }
    let finishing_hotfix = mode == Unlocked::Hotfix && deployment::hotfix_markers(target);
    if overlay && current != mode && !finishing_hotfix {
        // After a --discard in this boot, /usr is still the old overlay, whose
        // data goes at the next boot: new writes there would be lost.
        return Err(msg(
            "/usr is already an overlay (a discarded hotfix still mounted?); reboot first",
        ));
    }
    match mode {
        Unlocked::Hotfix => unlock_hotfix(target),
        Unlocked::Transient => unlock_development(target, true),
        _ => unlock_development(target, false),
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&argv) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{USAGE}");
            return;
        }
        Err(e) => {
            eprintln!("ostree-unlock: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("ostree-unlock: error: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &[&str]) -> std::result::Result<Option<Args>, String> {
        parse_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
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
        let a = p(&["--sysroot", "/s", "--deployment", "os/abc.0", "--discard"])
            .unwrap()
            .unwrap();
        assert_eq!(a.command, Command::Discard);
        assert_eq!(a.deployment.as_deref(), Some("os/abc.0"));
    }
}
