//! The commands: unlock (development, transient, hotfix), discard, status.
//! Each hotfix and discard step is ordered so that a power cut between any
//! two leaves a boot that is pristine or fully hotfixed, and safe to rerun.

use core::ffi::CStr;
#[cfg(feature = "crash-hook")]
use core::sync::atomic::{AtomicU32, Ordering};

use otcore::cmdline::Cmdline;
use otcore::path::{Lossy, PathBuf};
use otcore::sys::Errno;
use otcore::{contract, json};
use otcore::{say, sys, warn};

use crate::args::{self, Args, Command, USAGE};
use crate::clone;
use crate::deployment::{self, Target, Unlocked, SMALL_FILE_MAX};
use crate::develop;
use crate::entries::{self, ENTRY_MAX};
use crate::err;
use crate::error::{Context, Result};
use crate::fsutil::{self, Tree};
use crate::mounts::{self, WritableView};

/// The step after which to stop (0: never); see [`step`].
#[cfg(feature = "crash-hook")]
static STOP_AFTER: AtomicU32 = AtomicU32::new(0);

/// Take `OSTREE_UNLOCK_STOP_AFTER` from the environment (crash tests only).
#[cfg(feature = "crash-hook")]
pub fn set_stop_after(value: &[u8]) {
    let n = core::str::from_utf8(value)
        .ok()
        .and_then(|v| v.parse::<u32>().ok());
    STOP_AFTER.store(n.unwrap_or(0), Ordering::Relaxed);
}

/// A test hook standing in for a power cut: `OSTREE_UNLOCK_STOP_AFTER=N`
/// ends the process abruptly after step N of a hotfix or a discard. Only in
/// builds with the `crash-hook` feature; elsewhere a step is just a step.
fn step(_n: u32, _what: &str) {
    #[cfg(feature = "crash-hook")]
    if STOP_AFTER.load(Ordering::Relaxed) == _n {
        warn!("ostree-unlock: stopping after step {_n} ({_what}) as OSTREE_UNLOCK_STOP_AFTER asks");
        sys::exit(75);
    }
}

/// Mode of the deployment's `/usr`, which the overlay directories copy
/// (a umask-made 0700 once broke polkitd: ostree#1843).
fn usr_mode(t: &Target) -> Result<u32> {
    let dir = t.dir_tree()?;
    let st = dir
        .lstat(b"usr")
        .map_err(|e| dir.fail("lstat", b"usr", e))?;
    if !st.is_dir() {
        let e = if st.is_symlink() {
            Errno::LOOP
        } else {
            Errno::NOTDIR
        };
        return Err(dir.fail("lstat", b"usr", e));
    }
    Ok(st.mode & 0o7777)
}

/// `ostree/deploy` of the sysroot, writable: a writable bind when live (the
/// sysroot is often mounted read-only), the directory itself offline.
fn deploy_view(t: &Target) -> Result<WritableView> {
    let deploy = t.deploy_tree()?;
    if t.live {
        WritableView::of(&deploy, b"unlock-deploy")
    } else {
        Ok(WritableView::plain(deploy))
    }
}

/// Development or transient mode: overlay data in the deployment's backing
/// directory (as ostree 2025.3+), or on a tmpfs when that cannot be written.
/// A failure at any step leaves `/usr` and every marker as they were.
fn unlock_development(t: &Target, transient: bool) -> Result<()> {
    let mode = usr_mode(t)?;
    let flag = if transient {
        contract::UNLOCKED_TRANSIENT
    } else {
        contract::UNLOCKED_DEVELOPMENT
    };
    // The writable view (a private bind) lives until the overlay is mounted.
    let view = deploy_view(t);
    let (backing, scratch);
    let data = match &view {
        Ok(view) => {
            backing = view.join(t.rel_backing.as_bytes())?;
            develop::Data::Backing { backing: &backing }
        }
        Err(e) => {
            warn!("ostree-unlock: note: cannot write the deployment's filesystem ({e}); keeping the overlay on a tmpfs");
            scratch = mounts::scratch_path(b"usr-transient")?;
            develop::Data::Tmpfs { scratch: &scratch }
        }
    };
    // On a composefs root (where /usr is the image's) the lower layer is the
    // deployment's own usr on the physical root, as upstream's `lowerdir=usr`
    // from the deployment directory (ostree 2026.4 measured: unlock.sh
    // composefs_upstream_development). Opened now, walked from the sysroot.
    let deployment_usr = match t.composefs {
        Some(_) => Some(t.dir_tree()?.sub(b"usr")?),
        None => None,
    };
    let ops = develop::plan(
        data,
        mode,
        &t.state_dir,
        flag,
        transient,
        deployment_usr.is_some(),
    )?;
    let usr_label = t.dir_tree()?.selinux_label(b"usr")?;
    let tree = view.as_ref().ok().map(|v| &v.tree);
    let deployment_usr = deployment_usr.as_ref();
    develop::run(
        &mut develop::RealSystem {
            usr_label,
            tree,
            deployment_usr,
        },
        &ops,
    )?;
    if let Ok(view) = &view {
        // libostree's "something changed" signal; the unlock is done already.
        if let Err(e) = view.tree.touch() {
            warn!("ostree-unlock: note: {e}");
        }
    }
    if transient {
        say!("A writable overlayfs is prepared for /usr, but is mounted read-only.");
        say!("Write to it in a private mount namespace: unshare -m -- sh -c 'mount -o remount,rw /usr && ...'");
    } else {
        say!("Development mode enabled. A writable overlayfs is now mounted on /usr.");
        say!("All changes there will be discarded on reboot.");
    }
    Ok(())
}

/// A writable view of the boot directory, if it has `loader/entries`.
fn boot_view(t: &Target) -> Option<WritableView> {
    let boot = t.boot_tree().ok()??;
    entries::list(Some(&boot)).ok()?.tree()?;
    if t.live {
        WritableView::of(&boot, b"unlock-boot").ok()
    } else {
        Some(WritableView::plain(boot))
    }
}

/// Whether `t` has its pristine boot entry.
fn has_pristine_entry(t: &Target) -> Result<bool> {
    let entries = t.entries()?;
    let mut found = false;
    entries.for_deployment(
        &t.sysroot,
        t.stateroot.as_bytes(),
        t.name.as_bytes(),
        |e, _| {
            found = entries.pristine_name(e).is_ok_and(|n| {
                entries
                    .tree()
                    .is_some_and(|d| d.lstat(n.as_bytes()).is_ok_and(|st| st.is_file()))
            });
            found
        },
    );
    Ok(found)
}

/// `/ostree/deploy/OS/pristine/CSUM.SERIAL`: the `ostree=` of `t`'s
/// pristine entry, a link of ours that always names `t`.
fn pristine_bootlink(t: &Target) -> Result<PathBuf> {
    let mut p = PathBuf::from(b"/ostree/deploy")?;
    p.push(t.stateroot.as_bytes())?;
    p.push(contract::PRISTINE_LINKS)?;
    p.push(t.name.as_bytes())?;
    Ok(p)
}

/// Make (or repair) the link [`pristine_bootlink`] names, through the
/// writable view of `ostree/deploy`: `../deploy/CSUM.SERIAL`, replaced
/// atomically (a new link, renamed over the old one).
fn write_pristine_bootlink(view: &WritableView, t: &Target) -> Result<()> {
    let mut dir = t.stateroot.clone();
    dir.push(contract::PRISTINE_LINKS)?;
    let (fd, _) = view.tree.ensure_dir(dir.as_bytes(), 0o755, None)?;
    let dir = view.tree.shown(dir.as_bytes());
    let mut target = PathBuf::from(b"../deploy")?;
    target.push(t.name.as_bytes())?;
    let mut tmp = PathBuf::from(b".")?;
    tmp.push_raw(t.name.as_bytes())?;
    tmp.push_raw(b".tmp")?;
    let shown = dir.join(t.name.as_bytes())?;
    let _ = sys::unlink_at(&fd, tmp.as_bytes(), sys::RemoveKind::NonDir);
    sys::symlink_at(target.as_bytes(), &fd, tmp.as_bytes()).ctx("create link", shown.as_bytes())?;
    sys::rename_at(&fd, tmp.as_bytes(), t.name.as_bytes())
        .ctx("rename link over", shown.as_bytes())?;
    sys::fsync(&fd).ctx("fsync", dir.as_bytes())
}

/// Remove the link of `t`'s pristine entry (a missing one is fine).
fn remove_pristine_bootlink(view: &WritableView, t: &Target) -> Result<()> {
    let mut p = t.stateroot.clone();
    p.push(contract::PRISTINE_LINKS)?;
    p.push(t.name.as_bytes())?;
    view.tree.remove(p.as_bytes(), sys::RemoveKind::NonDir)
}

/// Write the pristine twin of entry `text` as `name` in the entries
/// directory `dir`, booting `bootlink`.
fn write_pristine(dir: &Tree, name: &PathBuf, text: &str, bootlink: &PathBuf) -> Result<()> {
    let path = dir.shown(name.as_bytes());
    let mut out: heapless::String<{ ENTRY_MAX + 256 }> = heapless::String::new();
    let link = core::str::from_utf8(bootlink.as_bytes())
        .map_err(|_| err!("{bootlink}: not UTF-8, cannot go in a boot entry"))?;
    entries::pristine_text(text, link, &mut out).map_err(|e| match e {
        entries::PristineError::TooLarge => {
            err!("{path}: the pristine entry would be larger than {ENTRY_MAX} bytes")
        }
        entries::PristineError::UnclosedQuote => err!(
            "{path} not written: the entry's options have an unclosed quote, which would take in the argument that disables the hotfix"
        ),
    })?;
    dir.write_atomic(name.as_bytes(), out.as_bytes(), 0o644)
}

/// Add (or with `add == false` remove) the boot entry that boots `t` once
/// without its hotfix. Best effort: the kernel argument works without it.
fn pristine_entry(t: &Target, add: bool) {
    let bootlink = match pristine_bootlink(t) {
        Ok(l) => l,
        Err(e) => {
            warn!("ostree-unlock: warning: pristine boot entry: {e}");
            return;
        }
    };
    let Some(view) = boot_view(t) else {
        warn!("ostree-unlock: note: no boot loader entries found; use the kernel argument ostree.prepare-root.hotfix=0 for a pristine boot");
        return;
    };
    let mut done: Option<Result<()>> = None;
    match entries::list(Some(&view.tree)) {
        Ok(entries) => entries.for_deployment(
            &t.sysroot,
            t.stateroot.as_bytes(),
            t.name.as_bytes(),
            |e, text| {
                let Some(dir) = entries.tree() else {
                    return true;
                };
                done = Some(entries.pristine_name(e).and_then(|name| {
                    if add {
                        write_pristine(dir, &name, text, &bootlink)
                    } else {
                        dir.remove_tree(name.as_bytes())
                    }
                }));
                true
            },
        ),
        Err(e) => done = Some(Err(e)),
    }
    match done {
        None if add => warn!(
            "ostree-unlock: note: no boot entry for {}; no pristine entry added",
            t.name
        ),
        Some(Err(e)) => warn!("ostree-unlock: warning: pristine boot entry: {e}"),
        _ => {}
    }
}

/// An origin file's text, edited.
type OriginText = heapless::String<{ SMALL_FILE_MAX + 64 }>;

/// `t`'s origin file (read through `view`) with `unlocked=` set to `value`
/// (or removed), into `out`; whether that changes it.
fn origin_with(
    view: &WritableView,
    t: &Target,
    value: Option<&str>,
    out: &mut OriginText,
) -> Result<bool> {
    let rel = t.origin_rel.as_bytes();
    let path = view.tree.shown(rel);
    let mut buf = [0u8; SMALL_FILE_MAX];
    let text = view
        .tree
        .read_small(rel, &mut buf)
        .map_err(|e| view.tree.read_error(rel, e, SMALL_FILE_MAX))?;
    let text = core::str::from_utf8(text)
        .map_err(|_| err!("read {path}: stream did not contain valid UTF-8"))?;
    crate::origin::set(text, contract::ORIGIN_UNLOCKED_KEY, value, out)
        .map_err(|_| err!("{path}: would grow beyond {SMALL_FILE_MAX} bytes, refusing"))?;
    Ok(out.as_str() != text)
}

fn set_origin_unlocked(view: &WritableView, t: &Target, value: Option<&str>) -> Result<()> {
    let mut new = OriginText::new();
    if origin_with(view, t, value, &mut new)? {
        view.tree
            .write_atomic(t.origin_rel.as_bytes(), new.as_bytes(), 0o644)?;
    }
    Ok(())
}

/// `OS/CSUM.SERIAL (index N ...)` of `t`'s pristine clone, for messages.
struct CloneName<'a>(&'a Target, &'a clone::Clone);

impl core::fmt::Display for CloneName<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{}/{} (index {} in ostree admin status)",
            self.0.stateroot, self.1.name, self.1.index
        )
    }
}

/// Make sure `t` has a pristine clone (see [`clone`]): keep one that is
/// there (a rerun never makes a second), else run `ostree admin deploy`.
/// The origin it gets, `t`'s without `unlocked=`, is a file of ours in the
/// stateroot's directory while ostree runs.
fn ensure_clone(t: &Target, ostree: &PathBuf, envp: &[&CStr]) -> Result<()> {
    if let Some(c) = clone::find(t)? {
        say!(
            "Pristine clone of {t}: {}, already there.",
            CloneName(t, &c)
        );
        return Ok(());
    }
    let mut options: heapless::String<ENTRY_MAX> = heapless::String::new();
    clone::entry_options(t, &mut options)?;
    let view = deploy_view(t)?;
    let mut origin = OriginText::new();
    origin_with(&view, t, None, &mut origin)?;
    let tmp_rel = t.stateroot.join(b".ostree-unlock-clone.origin")?;
    view.tree
        .write_atomic(tmp_rel.as_bytes(), origin.as_bytes(), 0o600)?;
    let tmp = view.join(tmp_rel.as_bytes())?;
    let r = clone::command(t, &options, &tmp).and_then(|cmd| {
        say!("Deploying a pristine clone of {t} (its commit, origin and kernel arguments, no hotfix): ostree admin deploy --not-as-default --retain");
        let start = sys::clock_us(false);
        let r = clone::run(ostree, &cmd, envp);
        if r.is_ok() {
            say!("ostree admin deploy took {} ms", (sys::clock_us(false) - start) / 1000);
        }
        r
    });
    if let Err(e) = view
        .tree
        .remove(tmp_rel.as_bytes(), sys::RemoveKind::NonDir)
    {
        warn!("ostree-unlock: note: {e}");
    }
    r?;
    match clone::find(t)? {
        Some(c) => {
            say!("Pristine clone of {t}: {}.", CloneName(t, &c));
            Ok(())
        }
        None => Err(err!(
            "ostree admin deploy succeeded, yet no boot entry in {} lists a pristine deployment of {t}'s commit; nothing else was done",
            t.entries().map(|e| e.dir).unwrap_or_default()
        )),
    }
}

/// Hotfix: markers first (a boot sees both or falls back to pristine), then
/// the origin key, then the boot entry; each step is safe to repeat.
fn unlock_hotfix(t: &Target, ostree: Option<&PathBuf>, envp: &[&CStr]) -> Result<()> {
    let mode = usr_mode(t)?;
    // The clone first, as upstream: until the markers exist every boot of
    // `t` is pristine anyway, and from then on the clone is a way back.
    if let Some(ostree) = ostree {
        ensure_clone(t, ostree, envp)?;
    }
    step(1, "pristine clone deployed");
    let view = deploy_view(t)?;
    let dir = view.tree.sub(t.rel_in_deploy.as_bytes())?;
    let shown = view.join(t.rel_in_deploy.as_bytes())?;
    let upper = shown.join(contract::USR_OVL_UPPER)?;
    // What was there before, so that a failure can put it back (a rerun that
    // finishes an interrupted hotfix keeps what the first run made).
    let fresh =
        !dir.is_real_dir(contract::USR_OVL_UPPER) && !dir.is_real_dir(contract::USR_OVL_WORK);
    let origin_before = deployment::state(t)? == Unlocked::Hotfix;
    let r = hotfix_steps(t, &view, &dir, &upper, mode);
    let made = clone::find(t).ok().flatten();
    if let Err(e) = r {
        if fresh {
            undo_hotfix(t, &view, &dir, origin_before);
        }
        if let (Some(c), Some(_)) = (&made, ostree) {
            warn!("ostree-unlock: note: the pristine clone {} stays: a deployment of the same commit without hotfix (ostree admin undeploy {} removes it)", CloneName(t, c), c.index);
        }
        return Err(e);
    }
    if t.live {
        say!(
            "Hotfix mode enabled. A writable overlayfs is now mounted on /usr for this deployment."
        );
        say!("It will remain at every boot of {}. The ways back:", t.name);
        if let Some(c) = &made {
            say!(
                "  - the pristine clone {}, in every boot menu",
                CloneName(t, c)
            );
        }
        say!(
            "  - the \"(pristine)\" boot entry, or the kernel argument {}=0, for one boot",
            Lossy(contract::HOTFIX_KARG)
        );
        say!("  - ostree-unlock --discard");
    } else {
        say!("Hotfix markers written for {t}; /usr will be a persistent overlay at its next boot.");
    }
    if ostree.is_none() && made.is_none() {
        say!("Without a pristine clone (--no-clone), the listed way back is the pristine boot entry: only boot loaders reading /boot/loader/entries show it (not menus built by grub2-generate, syslinux or U-Boot), and it is gone once libostree writes a new set of boot entries. The kernel argument {}=0 always works.", Lossy(contract::HOTFIX_KARG));
    }
    Ok(())
}

/// The steps of a hotfix after the clone, in the order that keeps every
/// boot pristine or fully hotfixed: markers, origin key, pristine entry,
/// the overlay now.
fn hotfix_steps(
    t: &Target,
    view: &WritableView,
    dir: &Tree,
    upper: &PathBuf,
    mode: u32,
) -> Result<()> {
    dir.set_immutable(false)?;
    step(2, "immutable attribute cleared");
    // The overlay's directories get /usr's SELinux label: the merged /usr
    // takes the label of its upper directory.
    let label = dir.selinux_label(b"usr")?;
    let made = (|| -> Result<(sys::Fd, sys::Fd)> {
        // .usr-ovl-work first: until .usr-ovl-upper exists too, boots stay pristine.
        let (work, _) = dir.ensure_dir(contract::USR_OVL_WORK, mode, label.as_ref())?;
        step(3, ".usr-ovl-work created");
        let (upper, _) = dir.ensure_dir(contract::USR_OVL_UPPER, mode, label.as_ref())?;
        dir.fsync()?;
        step(4, ".usr-ovl-upper created");
        Ok((upper, work))
    })();
    // Whatever happened, the deployment is immutable again.
    dir.set_immutable(true)?;
    let (upper_fd, work_fd) = made?;
    step(5, "immutable attribute restored");
    set_origin_unlocked(view, t, Some("hotfix"))?;
    step(6, "origin written");
    // The link first: an entry always has its link.
    match write_pristine_bootlink(view, t) {
        Ok(()) => pristine_entry(t, true),
        Err(e) => warn!("ostree-unlock: warning: no pristine boot entry: {e}"),
    }
    step(7, "pristine boot entry written");
    view.tree.touch()?;
    if t.live && !mounts::usr_is_overlay() {
        // Over the live /usr, as ostree-prepare-root mounts it at every boot
        // (on a composefs root: the image's /usr).
        mounts::mount_usr_overlay(&upper_fd, &work_fd, None, upper.as_bytes(), false)?;
    }
    Ok(())
}

/// Put back what a failed hotfix changed, newest first: the pristine entry
/// and its link, the origin key (unless it was there before), the markers
/// (new and empty, so removing them loses nothing). What cannot be undone
/// is said; the deployment then boots pristine (a marker alone does nothing).
fn undo_hotfix(t: &Target, view: &WritableView, dir: &Tree, origin_before: bool) {
    let note = |r: Result<()>| {
        if let Err(e) = r {
            warn!("ostree-unlock: while undoing: {e}");
        }
    };
    pristine_entry(t, false);
    note(remove_pristine_bootlink(view, t));
    if !origin_before {
        note(set_origin_unlocked(view, t, None));
    }
    note(dir.set_immutable(false));
    for d in [contract::USR_OVL_UPPER, contract::USR_OVL_WORK] {
        note(dir.remove(d, sys::RemoveKind::Dir));
    }
    note(dir.fsync());
    note(dir.set_immutable(true));
}

/// Remove the hotfix from the next boot on. The markers move to the backing
/// directory first (a boot then is pristine), and are deleted when no
/// overlay uses them (offline at once; live by ostree-prepare-root at boot).
fn discard(t: &Target) -> Result<()> {
    let view = deploy_view(t)?;
    let tree = &view.tree;
    let backing = &t.rel_backing;
    tree.ensure_dir(fsutil::parent(backing.as_bytes()), 0o700, None)?;
    tree.ensure_dir(backing.as_bytes(), 0o700, None)?;
    let dir = tree.sub(t.rel_in_deploy.as_bytes())?;
    dir.set_immutable(false)?;
    step(1, "immutable attribute cleared");
    let moves = [
        (contract::USR_OVL_WORK, contract::HOTFIX_DISCARDED[1]),
        (contract::USR_OVL_UPPER, contract::HOTFIX_DISCARDED[0]),
    ];
    for (i, (from, to)) in moves.into_iter().enumerate() {
        if dir.exists(from) {
            let dst = backing.join(to)?;
            tree.remove_tree(dst.as_bytes())?;
            tree.rename(t.rel_in_deploy.join(from)?.as_bytes(), dst.as_bytes())?;
        }
        step(2 + i as u32, "hotfix marker moved away");
    }
    dir.set_immutable(true)?;
    step(4, "immutable attribute restored");
    set_origin_unlocked(&view, t, None)?;
    step(5, "origin written");
    pristine_entry(t, false);
    if let Err(e) = remove_pristine_bootlink(&view, t) {
        warn!("ostree-unlock: warning: {e}");
    }
    step(6, "pristine boot entry removed");
    let in_use = t.live && mounts::usr_is_overlay();
    if !in_use {
        for d in contract::HOTFIX_DISCARDED {
            tree.remove_tree(backing.join(d)?.as_bytes())?;
        }
    }
    tree.touch()?;
    if in_use {
        say!("Hotfix discarded: the next boot of {} is pristine. The overlay stays mounted until then.", t.name);
    } else {
        say!("Hotfix discarded: {t} is pristine.");
    }
    if let Ok(Some(c)) = clone::find(t) {
        say!(
            "The pristine clone {} stays, a deployment like any other (ostree admin undeploy {} removes it).",
            CloneName(t, &c),
            c.index
        );
    }
    Ok(())
}

fn status(t: &Target, json: bool) -> Result<()> {
    let state = deployment::state(t)?;
    let markers = deployment::hotfix_markers(t);
    let clone = clone::find(t).ok().flatten();
    let entry = pristine_entry_now(t);
    if json {
        // Shaped like `ostree admin status --json` (a `deployments` array,
        // its field names for what both say), with our own fields after.
        let name = t.name.as_bytes();
        let (checksum, serial) = match name.iter().rposition(|&b| b == b'.') {
            Some(i) => (&name[..i], core::str::from_utf8(&name[i + 1..]).ok()),
            None => (name, None),
        };
        say!(
            "{{\"deployments\":[{{\"checksum\":{},\"stateroot\":{},\"serial\":{},\"booted\":{},\"unlocked\":{},\"hotfix-markers\":{},\"pristine-clone\":{},\"pristine-entry\":{},\"composefs\":{}}}]}}",
            json::Str(checksum),
            json::Str(t.stateroot.as_bytes()),
            serial.and_then(|s| s.parse::<u32>().ok()).unwrap_or(0),
            t.live,
            json::Str(state.name().as_bytes()),
            markers,
            JsonClone(clone.as_ref()),
            JsonName(entry.as_ref().map(|p| p.file_name())),
            JsonComposefs(t.composefs),
        );
    } else {
        say!("{t}{}", if t.live { " (booted)" } else { "" });
        say!("    Unlocked: {}", state.name());
        if let Some(c) = t.composefs {
            say!("    Root: {c}");
        }
        hotfix_off_notes(t);
        if state == Unlocked::Hotfix || markers {
            ways_back(clone.as_ref(), entry.as_ref());
        }
        stale_pristine_links(t, |name| {
            say!(
                "    Note: the pristine boot link {}/{}/{} names a deployment that is gone; the next ostree-unlock run removes it",
                t.stateroot,
                Lossy(contract::PRISTINE_LINKS),
                Lossy(name)
            );
        });
        if markers != (state == Unlocked::Hotfix)
            && state != Unlocked::Development
            && state != Unlocked::Transient
        {
            say!(
                "    Note: hotfix markers {}; rerun ostree-unlock --hotfix or --discard to finish",
                if markers {
                    "present without unlocked=hotfix"
                } else {
                    "missing"
                }
            );
        }
    }
    Ok(())
}

/// `{"name": "CSUM.SERIAL", "index": N}` or `null`.
struct JsonClone<'a>(Option<&'a clone::Clone>);

impl core::fmt::Display for JsonClone<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(c) => write!(
                f,
                "{{\"name\":{},\"index\":{}}}",
                json::Str(c.name.as_bytes()),
                c.index
            ),
            None => f.write_str("null"),
        }
    }
}

/// `{"verity": B, "signed": B}` for a composefs root, else `null`.
struct JsonComposefs(Option<deployment::Composefs>);

impl core::fmt::Display for JsonComposefs {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(c) => write!(f, "{{\"verity\":{},\"signed\":{}}}", c.verity, c.signed),
            None => f.write_str("null"),
        }
    }
}

/// Refuse a hotfix of a signed composefs deployment, before anything
/// changes: a writable /usr over a signed image would void what the
/// signature vouches for, and ostree-prepare-root (ours and upstream's)
/// does not mount the hotfix overlay there. Live, the boot says so
/// (`composefs.signed` in /run/ostree-booted); offline, the deployment's
/// own prepare-root.conf.
fn refuse_signed_hotfix(t: &Target) -> Result<()> {
    let signed_by = |what: core::fmt::Arguments<'_>| {
        // The reason on a line of its own: error messages are cut at a few
        // hundred bytes, and the path of an offline sysroot can be long.
        warn!("ostree-unlock: a writable /usr over a signed composefs image would void its signature; ostree-prepare-root does not mount the hotfix overlay there");
        Err(err!("refusing --hotfix: {what}"))
    };
    if t.live {
        if t.composefs.is_some_and(|c| c.signed) {
            return signed_by(format_args!(
                "{t} booted a signed composefs image ({} in {})",
                contract::booted_keys::COMPOSEFS_SIGNED,
                Lossy(contract::OSTREE_BOOTED),
            ));
        }
    } else if let Some(conf) = deployment::signed_by_conf(t)? {
        return signed_by(format_args!("{conf} says [composefs] enabled = signed"));
    }
    Ok(())
}

/// A JSON string, or `null`.
struct JsonName<'a>(Option<&'a [u8]>);

impl core::fmt::Display for JsonName<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{}", json::Str(n)),
            None => f.write_str("null"),
        }
    }
}

/// The ways back from a hotfix that exist now: the pristine clone, the
/// pristine entry (see [`pristine_entry_now`]), the kernel argument.
fn ways_back(clone: Option<&clone::Clone>, entry: Option<&PathBuf>) {
    say!("    Ways back:");
    match clone {
        Some(c) => say!(
            "      - the deployment {} (index {}): a pristine clone of this commit, in every boot menu",
            c.name,
            c.index
        ),
        None => say!("      - (no pristine clone of this commit is deployed; ostree-unlock --hotfix makes one)"),
    }
    match entry {
        Some(path) => say!(
            "      - the boot entry {} (pristine, without hotfix)",
            Lossy(path.file_name())
        ),
        None => say!("      - (no pristine boot entry lists this deployment now)"),
    }
    say!(
        "      - the kernel argument {}=0, for one boot",
        Lossy(contract::HOTFIX_KARG)
    );
    say!("      - ostree-unlock --discard: pristine from the next boot on");
}

/// The pristine entry of `t`, only if libostree lists `t` and the entry
/// boots this very deployment.
fn pristine_entry_now(t: &Target) -> Option<PathBuf> {
    let mut entry: Option<PathBuf> = None;
    if let Ok(entries) = t.entries() {
        let mut buf = [0u8; ENTRY_MAX];
        entries.for_deployment(
            &t.sysroot,
            t.stateroot.as_bytes(),
            t.name.as_bytes(),
            |e, _| {
                let Ok(name) = entries.pristine_name(e) else {
                    return false;
                };
                let boots_it = entries
                    .read(name.as_bytes(), &mut buf)
                    .and_then(|text| entries::deployment(text, &t.sysroot))
                    .is_some_and(|d| {
                        d.stateroot() == t.stateroot.as_bytes() && d.name() == t.name.as_bytes()
                    });
                if boots_it {
                    entry = Some(name);
                }
                boots_it
            },
        );
    }
    entry
}

/// Call `f` with the name of each pristine boot link of `t`'s stateroot
/// whose deployment is gone (`ostree admin undeploy` removes deployments,
/// not our links), and of each leftover of an interrupted link update.
fn stale_pristine_links(t: &Target, mut f: impl FnMut(&[u8])) {
    let Ok(tree) = t.deploy_tree() else {
        return;
    };
    let os = &t.stateroot;
    let (Ok(links), Ok(deployments)) = (os.join(contract::PRISTINE_LINKS), os.join(b"deploy"))
    else {
        return;
    };
    let _ = tree.for_each_name(links.as_bytes(), |name| {
        let gone = !deployments
            .join(name)
            .is_ok_and(|d| tree.is_real_dir(d.as_bytes()));
        if gone {
            f(name);
        }
    });
}

/// Remove [`stale_pristine_links`] (best effort: a failure is said, and
/// changes nothing else).
fn remove_stale_pristine_links(t: &Target) {
    let mut any = false;
    stale_pristine_links(t, |_| any = true);
    if !any {
        return;
    }
    let view = match deploy_view(t) {
        Ok(v) => v,
        Err(e) => {
            warn!("ostree-unlock: warning: cannot remove stale pristine boot links: {e}");
            return;
        }
    };
    stale_pristine_links(t, |name| {
        let link = t
            .stateroot
            .join(contract::PRISTINE_LINKS)
            .and_then(|p| p.join(name));
        let removed = match &link {
            Ok(l) => view.tree.remove(l.as_bytes(), sys::RemoveKind::NonDir),
            Err(e) => Err((*e).into()),
        };
        match removed {
            Ok(()) => say!(
                "Removed the pristine boot link {}/{}/{}: its deployment is gone.",
                t.stateroot,
                Lossy(contract::PRISTINE_LINKS),
                Lossy(name)
            ),
            Err(e) => warn!("ostree-unlock: warning: {e}"),
        }
    });
}

/// Say where `ostree.prepare-root.hotfix=0` keeps a hotfix from taking
/// effect: on this boot's command line (this boot only), or in the
/// deployment's own boot entry (every boot of it; `ostree admin deploy
/// --karg-proc-cmdline` copies it there from a pristine boot).
fn hotfix_off_notes(t: &Target) {
    let off = |options: &[u8]| Cmdline::new(options).value(contract::HOTFIX_KARG) == Some(b"0");
    if t.live {
        let mut buf = [0u8; 4096];
        if fsutil::read_small(b"/proc/cmdline", &mut buf).is_ok_and(&off) {
            say!(
                "    Note: this boot runs without the hotfix ({}=0 on the kernel command line)",
                Lossy(contract::HOTFIX_KARG)
            );
        }
    }
    let Ok(entries) = t.entries() else {
        return;
    };
    entries.for_deployment(&t.sysroot, t.stateroot.as_bytes(), t.name.as_bytes(), |e, text| {
        if entries::key(text, "options").is_some_and(|o| off(o.as_bytes())) {
            warn!(
                "ostree-unlock: warning: boot entry {} of {} has {}=0: every boot of it is without the hotfix",
                e.name,
                t.name,
                Lossy(contract::HOTFIX_KARG)
            );
        }
        false
    });
}

/// Whether `t` has anything a hotfix, or an interrupted discard, leaves behind.
fn has_hotfix(t: &Target) -> Result<bool> {
    let deploy = t.deploy_tree()?;
    let backing = &t.rel_backing;
    let leftover_data = !(t.live && mounts::usr_is_overlay())
        && contract::HOTFIX_DISCARDED
            .iter()
            .any(|d| backing.join(d).is_ok_and(|p| deploy.exists(p.as_bytes())));
    let dir = t.dir_tree()?;
    Ok(deployment::state(t)? == Unlocked::Hotfix
        || dir.exists(contract::USR_OVL_UPPER)
        || dir.exists(contract::USR_OVL_WORK)
        || has_pristine_entry(t)?
        || leftover_data)
}

fn run(args: &Args<'_>, envp: &[&CStr]) -> Result<()> {
    let is_status = matches!(args.command, Command::Status { .. });
    if !is_status && sys::geteuid() != 0 {
        return Err(if args.sysroot.is_some() {
            err!("needs root (it writes to the sysroot)")
        } else {
            err!("needs root (it mounts on /usr and writes to the sysroot)")
        });
    }
    let target = match (args.sysroot, args.deployment) {
        (Some(root), Some(d)) => deployment::named(root, d, false)?,
        (Some(root), None) => deployment::default(root)?,
        (None, _) => {
            if !is_status {
                mounts::enter_pid1_namespace()?;
            }
            deployment::booted(b"/sysroot")?
        }
    };
    target.check_confined()?;
    if let Command::Unlock(Unlocked::Hotfix) = args.command {
        refuse_signed_hotfix(&target)?;
    }
    if !is_status {
        remove_stale_pristine_links(&target);
    }
    match args.command {
        Command::Status { json } => status(&target, json),
        Command::Discard => {
            if !has_hotfix(&target)? {
                say!("{target} has no hotfix; nothing to discard.");
                return Ok(());
            }
            discard(&target)
        }
        Command::Unlock(mode) => unlock(&target, mode, args, envp),
    }
}

fn unlock(target: &Target, mode: Unlocked, args: &Args<'_>, envp: &[&CStr]) -> Result<()> {
    let current = deployment::state(target)?;
    let want_clone = mode == Unlocked::Hotfix && !args.no_clone;
    let overlay = target.live && mounts::usr_is_overlay();
    // "Already unlocked" only when it really took effect: the overlay is
    // mounted (upstream can record a state whose mount never reached PID 1,
    // ostree#2653) and a hotfix is complete; otherwise finish the job.
    let complete = (!target.live || overlay)
        && (mode != Unlocked::Hotfix
            || (deployment::hotfix_markers(target)
                && has_pristine_entry(target)?
                && (!want_clone || clone::find(target)?.is_some())));
    if current == mode && complete {
        say!(
            "{target} is already unlocked ({}); nothing to do.",
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
        return Err(err!(
            "{target} is already unlocked in {} mode; reboot first{hint}",
            current.name()
        ));
    }
    if !target.live && mode != Unlocked::Hotfix {
        return Err(err!("development and transient mode act on the running system; offline (--sysroot) only --hotfix, --discard and --status work"));
    }
    let finishing_hotfix = mode == Unlocked::Hotfix && deployment::hotfix_markers(target);
    if overlay && current != mode && !finishing_hotfix {
        // After a --discard in this boot, /usr is still the old overlay, whose
        // data goes at the next boot: new writes there would be lost.
        return Err(err!(
            "/usr is already an overlay (a discarded hotfix still mounted?); reboot first"
        ));
    }
    match mode {
        Unlocked::Hotfix => {
            // Found before anything changes: without it, nothing is done.
            let ostree = match want_clone {
                true => Some(clone::find_ostree(args.ostree, envp)?),
                false => None,
            };
            unlock_hotfix(target, ostree.as_ref(), envp)
        }
        Unlocked::Transient => unlock_development(target, true),
        _ => unlock_development(target, false),
    }
}

/// The whole program: parse `argv` (without the program name), run, and
/// return the exit status (0, 1 on failure, 2 for a bad command line).
pub fn main(argv: &[&[u8]], envp: &[&CStr]) -> i32 {
    let args = match args::parse(argv) {
        Ok(Some(a)) => a,
        Ok(None) => {
            let _ = sys::write_all(sys::STDOUT, USAGE.as_bytes());
            return 0;
        }
        Err(e) => {
            warn!("ostree-unlock: {e}");
            return 2;
        }
    };
    if let Err(e) = run(&args, envp) {
        warn!("ostree-unlock: error: {e}");
        return 1;
    }
    0
}
