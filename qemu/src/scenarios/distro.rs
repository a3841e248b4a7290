//! Boots of images the distributions' tools build with the files `make
//! install` puts in a DESTDIR (built by [`crate::distro`]): dracut with our
//! module and unit under systemd, and a mkinitcpio-style busybox image with
//! our hooks; and host-only checks of the mkinitcpio hooks.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::Result;

use super::run::{hotfix_markers, in_deploy, Run, ScenarioFn, OURS};
use crate::disk;
use crate::distro::{
    dracut_image, installed, lsinitrd, lsinitrd_file, mkinitcpio_image, read, run_install_hook,
    strip_ansi, BUSYBOX_HOOKS, SYSTEMD_HOOKS,
};
use crate::lab::Mode;
use crate::util::{self, output};

/// The systemd unit (ours, like ostree's) leaves `/var` to ostree's systemd
/// generator in the real root; ktest's deployment has no systemd, so `/var`
/// is the deployment's own directory. The dracut boots assert exactly that:
/// `var-is-stateroot-var` is `not ok`, `/run/ostree/` exists (the
/// generator's gate) and `/run/ostree/initramfs-mount-var` does not (so the
/// generator would mount `/var`).
const VAR_LEFT_TO_GENERATOR: &[&str] = &["var-is-stateroot-var"];
const GENERATOR_MOUNTS_VAR: &str = "ktest.absent=/run/ostree/initramfs-mount-var";
/// The busybox hook runs with `--mount-var` (its real init may have no
/// generator): `/var` is the stateroot's, and the marker tells a systemd
/// generator not to mount it again.
const HOOK_MOUNTS_VAR: &str = "ktest.exists=/run/ostree/initramfs-mount-var";

fn console_has(r: &mut Run, console: &str, what: &str, pred: impl Fn(&str) -> bool) {
    let plain = strip_ansi(console);
    r.check(plain.lines().any(pred), format!("console: no line {what}"));
}

/// Entries of a `lsinitrd` listing the dracut image must have.
const DRACUT_MUST_HAVE: &[&str] = &[
    " init -> usr/lib/systemd/systemd",
    " etc/initrd-release",
    " usr/lib/ostree/ostree-prepare-root",
    " usr/lib/systemd/system/ostree-prepare-root.service",
    "initrd-root-fs.target.wants/ostree-prepare-root.service",
    "/kernel/fs/overlayfs/overlay.ko",
];

fn dracut_checks(r: &mut Run, img: &Path) -> Result<()> {
    let dest = installed()?;
    let list = lsinitrd(img)?;
    for want in DRACUT_MUST_HAVE {
        r.check(
            list.lines().any(|l| l.contains(want)),
            format!("dracut image: no {want:?} (lsinitrd {})", img.display()),
        );
    }
    let ours = read(&dest.join("usr/lib/ostree/ostree-prepare-root"))?;
    let inside = lsinitrd_file(img, "usr/lib/ostree/ostree-prepare-root")?;
    r.check(
        inside == ours,
        format!(
            "dracut image: usr/lib/ostree/ostree-prepare-root is not our binary ({} bytes, ours {})",
            inside.len(),
            ours.len()
        ),
    );
    let unit = String::from_utf8_lossy(&lsinitrd_file(
        img,
        "usr/lib/systemd/system/ostree-prepare-root.service",
    )?)
    .into_owned();
    r.check(
        unit.lines()
            .any(|l| l == "ExecStart=/usr/lib/ostree/ostree-prepare-root /sysroot"),
        "dracut image: the unit does not run /usr/lib/ostree/ostree-prepare-root /sysroot",
    );
    r.check(
        !list.lines().any(|l| l.trim() == "ostree") && !list.contains("ostree-remount"),
        "dracut image: ostree's own module was included",
    );
    Ok(())
}

/// The console of a dracut boot: our unit ran under systemd, finished, and
/// systemd switched root.
fn dracut_console(r: &mut Run, console: &str) {
    console_has(
        r,
        console,
        "from our unit's process (ostree-prepare-root[PID]: ...)",
        |l| l.contains("ostree-prepare-root[") && l.contains("/sysroot is now the deployment"),
    );
    console_has(r, console, "`Finished ... OSTree Prepare OS/`", |l| {
        l.contains("Finished") && l.contains("OSTree Prepare OS/")
    });
    console_has(r, console, "`Starting initrd-switch-root.service`", |l| {
        l.contains("Starting") && l.contains("initrd-switch-root.service")
    });
}

fn busybox_console(r: &mut Run, console: &str) {
    console_has(
        r,
        console,
        "`:: running late hook [ostree-switchroot]`",
        |l| l.contains(":: running late hook [ostree-switchroot]"),
    );
    console_has(r, console, "from ostree-prepare-root on /new_root", |l| {
        l.starts_with("ostree-prepare-root:") && l.contains("/new_root is now the deployment")
    });
}

pub fn scenarios() -> Vec<(&'static str, ScenarioFn)> {
    vec![
        ("9a dracut: systemd initramfs, our unit", |r| {
            let img = dracut_image(&r.lab.kernel)?;
            r.r.initrd = Some(img.clone());
            dracut_checks(r, &img)?;
            let d = r.disk(&r.lab.disk)?;
            let extra = format!(
                "{OURS} {GENERATOR_MOUNTS_VAR} ktest.exists=/run/ostree-booted ktest.sysroot=rw"
            );
            let o = r.expect_ok_initrd(&d, &img, "B", &extra, "dracut", VAR_LEFT_TO_GENERATOR)?;
            dracut_console(r, &o.console);
            Ok(())
        }),
        ("9b dracut: hotfix, overlay.ko from image", |r| {
            let img = dracut_image(&r.lab.kernel)?;
            let d = r.disk(&r.lab.disk)?;
            disk::mkdirs(&d.fs_image, &hotfix_markers(&d, "B"))?;
            let extra = format!("{OURS} ktest.usr=rw ktest.write=/usr/share/ktest-hotfix");
            let o = r.expect_ok_initrd(
                &d,
                &img,
                "B",
                &extra,
                "dracut-hotfix",
                VAR_LEFT_TO_GENERATOR,
            )?;
            dracut_console(r, &o.console);
            Ok(())
        }),
        ("9c dracut: wrong ostree=, OnFailure", |r| {
            let img = dracut_image(&r.lab.kernel)?;
            let d = r.disk(&r.lab.disk)?;
            // rd.shell=0: dracut's emergency service then does rd.emergency=poweroff.
            let append = r
                .lab
                .cmdline(&d, Mode::Ours, "B", "rd.shell=0")
                .replace(d.ostree_arg("B"), "/ostree/boot.0/testos/nonexistent/0");
            let o = r.expect_failure(
                &d,
                Some(img),
                &append,
                "dracut-wrong-ostree",
                &["nonexistent"],
            )?;
            console_has(
                r,
                &o.console,
                "`Failed to start ... OSTree Prepare OS/`",
                |l| l.contains("Failed to start") && l.contains("OSTree Prepare OS/"),
            );
            console_has(r, &o.console, "`Reached target emergency.target`", |l| {
                l.contains("Reached target") && l.contains("emergency.target")
            });
            Ok(())
        }),
        ("10a mkinitcpio busybox: run_latehook", |r| {
            let img = mkinitcpio_image(&r.lab.kernel)?;
            r.r.initrd = Some(img.clone());
            let d = r.disk(&r.lab.disk)?;
            let extra = format!(
                "{OURS} {HOOK_MOUNTS_VAR} ktest.exists=/run/ostree-booted ktest.sysroot=rw"
            );
            let o = r.expect_ok_initrd(&d, &img, "B", &extra, "mkinitcpio", &[])?;
            busybox_console(r, &o.console);
            Ok(())
        }),
        ("10b mkinitcpio busybox: hotfix, kernel ro", |r| {
            let img = mkinitcpio_image(&r.lab.kernel)?;
            let d = r.disk(&r.lab.disk)?;
            disk::mkdirs(&d.fs_image, &hotfix_markers(&d, "B"))?;
            // `ro`: mkinitcpio mounts the root read-only; overlay.ko comes
            // from add_module, loaded by the kernel through kmod's modprobe.
            let extra = format!(
                "ro {OURS} {HOOK_MOUNTS_VAR} ktest.usr=rw ktest.sysroot=ro ktest.etc=ro ktest.var=ro \
                 ktest.write=/usr/share/ktest-hotfix"
            );
            let o = r.expect_ok_initrd(&d, &img, "B", &extra, "mkinitcpio-hotfix", &[])?;
            busybox_console(r, &o.console);
            let upper = in_deploy(&d, "B", ".usr-ovl-upper/share/ktest-hotfix");
            let on_disk = disk::debugfs_cat(&d.fs_image, &upper).unwrap_or_default();
            r.check(
                on_disk.contains("written by ktest"),
                format!("{upper} not on the disk after power-off"),
            );
            Ok(())
        }),
        ("10c mkinitcpio failure: wrong ostree=", |r| {
            let img = mkinitcpio_image(&r.lab.kernel)?;
            let d = r.disk(&r.lab.disk)?;
            let append = r
                .lab
                .cmdline(&d, Mode::Ours, "B", "")
                .replace(d.ostree_arg("B"), "/ostree/boot.0/testos/nonexistent/0");
            let o = r.expect_failure(
                &d,
                Some(img),
                &append,
                "mkinitcpio-wrong-ostree",
                &["nonexistent"],
            )?;
            console_has(
                r,
                &o.console,
                "from the hook's err (ostree-prepare-root failed)",
                |l| l.contains("ERROR: ostree-prepare-root failed"),
            );
            Ok(())
        }),
        ("10d mkinitcpio hook: bash -n, help, build", |r| {
            install_hook_checks(r)
        }),
    ]
}

/// Host-only checks of the mkinitcpio files: syntax (bash for the install
/// hook, busybox ash for the runtime hook), `help` prints text, and
/// `build()` makes the calls each kind of image needs.
fn install_hook_checks(r: &mut Run) -> Result<()> {
    let dest = installed()?;
    let install = dest.join("usr/lib/initcpio/install/ostree-switchroot");
    let hook = dest.join("usr/lib/initcpio/hooks/ostree-switchroot");
    let module = dest.join("usr/lib/dracut/modules.d/98ostree-switchroot/module-setup.sh");
    for (shell, file) in [("bash", &install), ("bash", &module)] {
        let ok = Command::new(shell).arg("-n").arg(file).status()?.success();
        r.check(ok, format!("{shell} -n {} fails", file.display()));
    }
    let ok = Command::new("/bin/busybox")
        .args(["ash", "-n"])
        .arg(&hook)
        .status()?
        .success();
    r.check(ok, format!("busybox ash -n {} fails", hook.display()));
    let help = output(
        Command::new("bash")
            .arg("-c")
            .arg(". \"$1\"; declare -F build >/dev/null && help")
            .arg("help")
            .arg(&install),
    )?;
    r.check(
        help.contains("ostree-prepare-root") && help.lines().count() >= 3,
        format!("help() printed too little: {help:?}"),
    );
    // The busybox image's calls (the image scenarios use the same build).
    let staging = run_install_hook(&util::work_dir().join("mkinitcpio/check"), BUSYBOX_HOOKS)?;
    let calls = fs::read_to_string(staging.join(".calls")).unwrap_or_default();
    for want in [
        "add_binary /usr/lib/ostree/ostree-prepare-root /usr/lib/ostree/ostree-prepare-root",
        "add_module overlay",
        "add_runscript ostree-switchroot",
    ] {
        r.check(
            calls.lines().any(|l| l == want),
            format!("build() (busybox image) did not call `{want}`; calls: {calls:?}"),
        );
    }
    r.check(
        !calls.contains("add_systemd_unit"),
        "build() added the systemd unit to a busybox image",
    );
    let config = fs::read_to_string(staging.join("config")).unwrap_or_default();
    let sys = run_install_hook(
        &util::work_dir().join("mkinitcpio/check-systemd"),
        SYSTEMD_HOOKS,
    )?;
    let sys_calls = fs::read_to_string(sys.join(".calls")).unwrap_or_default();
    if Path::new("/usr/lib/systemd/system/ostree-prepare-root.service").is_file() {
        for want in [
            "add_systemd_unit ostree-prepare-root.service",
            "add_symlink /usr/lib/systemd/system/initrd-root-fs.target.wants/ostree-prepare-root.service \
             /usr/lib/systemd/system/ostree-prepare-root.service",
        ] {
            r.check(
                sys_calls.lines().any(|l| l == want),
                format!("build() (systemd image) did not call `{want}`; calls: {sys_calls:?}"),
            );
        }
        r.check(
            !sys_calls.contains("add_runscript"),
            "build() (systemd image) added the busybox runtime hook",
        );
    }
    r.check(
        config.contains("LATEHOOKS=' ostree-switchroot'"),
        format!("the runtime hook is not registered as a late hook: {config:?}"),
    );
    let staged = read(&staging.join("usr/lib/ostree/ostree-prepare-root"))?;
    r.check(
        staged == read(&dest.join("usr/lib/ostree/ostree-prepare-root"))?,
        "build() did not stage our binary (the host's C tool?)",
    );
    Ok(())
}
