//! The distributions' initramfs images, built with the files `make install`
//! puts in a DESTDIR, the way the distributions use them (the boots are in
//! `scenarios/distro.rs`).
//!
//! - **dracut**: Debian's own `dracut` builds a systemd initramfs for the
//!   test kernel with our module `98ostree-switchroot`, taken from the
//!   install output (a scratch copy of `/usr/lib/dracut` with our module
//!   added, named by `dracutbasedir`; the host's dracut directories are
//!   never written). In the guest, systemd mounts `/sysroot`, runs our
//!   `ostree-prepare-root.service`, and switches root into the deployment.
//! - **mkinitcpio, busybox image**: the install hook's `build()` runs in
//!   bash against stand-ins of mkinitcpio's `add_*` functions that copy into
//!   a staging root as mkinitcpio's do; the `/init` is an ash script modelled
//!   on mkinitcpio's (`mount_setup`, `run_hookfunctions`, root at
//!   `/new_root`, `run_latehook`, util-linux `switch_root`, which moves
//!   `/run` into the new root).
//!
//! Both builders see the package as installed: they run in a private mount
//! namespace where `/usr/lib/ostree` is a tmpfs holding the DESTDIR's
//! `usr/lib/ostree` (the host's own `/usr/lib/ostree` holds ostree's C tool,
//! used by the reference image, and is never touched).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

use crate::disk;
use crate::initramfs;
use crate::kernel::Kernel;
use crate::util::{self, output, run};
use mkinitramfs::cpio::Archive;

/// dracut modules of the image (with their dependencies: `systemd`,
/// `udev-rules`); ours is added with `--add`, the way a user asks for it.
/// `dracut-systemd` brings dracut's emergency service, which honours
/// `rd.emergency=poweroff` (with `rd.shell=0`) when our unit fails.
pub const DRACUT_MODULES: &str = "base systemd-initrd dracut-systemd";
pub const DRACUT_ADD: &str = "ostree-switchroot";

/// Where the rendered files land: `target/qemu/install` (DESTDIR), PREFIX=/usr.
fn destdir() -> PathBuf {
    util::work_dir().join("install")
}

/// `make install DESTDIR=target/qemu/install PREFIX=/usr`, once per run.
pub fn installed() -> Result<PathBuf> {
    static DONE: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    DONE.get_or_init(|| make_install().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn make_install() -> Result<PathBuf> {
    let dest = destdir();
    let _ = fs::remove_dir_all(&dest);
    fs::create_dir_all(&dest)?;
    run(Command::new("make")
        .arg("-s")
        .arg("--no-print-directory")
        .arg("-C")
        .arg(util::repo_root())
        .arg("install")
        .arg(format!("DESTDIR={}", dest.display()))
        .arg("PREFIX=/usr")
        // Not the jobserver of an outer `make qemu-test`.
        .env_remove("MAKEFLAGS")
        .env_remove("MAKELEVEL"))
    .context("make install DESTDIR=target/qemu/install PREFIX=/usr")?;
    Ok(dest)
}

/// `program args...` in a private mount namespace where `/usr/lib/ostree`
/// is a tmpfs holding `DESTDIR/usr/lib/ostree` (and our unit is bound over
/// ostree-boot's `/usr/lib/systemd/system/ostree-prepare-root.service` when
/// that exists): the host as if our package were installed, for the length
/// of one command.
fn in_installed_view(dest: &Path, program: &str) -> Result<Command> {
    let host = Path::new("/usr/lib/ostree");
    if !host.is_dir() {
        // A mount point is needed, and creating one would change the host.
        bail!("/usr/lib/ostree does not exist (apt-get install ostree-boot)");
    }
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(
            "set -e; mount -t tmpfs -o mode=0755 ostree-switchroot-view /usr/lib/ostree; \
             cp -a \"$1\"/usr/lib/ostree/. /usr/lib/ostree/; \
             u=/usr/lib/systemd/system/ostree-prepare-root.service; \
             if [ -f $u ]; then mount --bind \"$1\"$u $u; fi; \
             shift; exec \"$@\"",
        )
        .arg("sh")
        .arg(dest)
        .arg(program)
        .env("LIBMOUNT_UTAB", util::work_dir().join("utab"));
    Ok(c)
}

pub fn read(p: &Path) -> Result<Vec<u8>> {
    fs::read(p).with_context(|| format!("reading {}", p.display()))
}

/// A dracut image for the test kernel with our module, cached under
/// `target/qemu/initramfs/dracut.img` (rebuilt when the module, the unit,
/// the binary, the kernel, dracut or the module list change).
pub fn dracut_image(kernel: &Kernel) -> Result<PathBuf> {
    static DONE: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    DONE.get_or_init(|| build_dracut(kernel).map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn build_dracut(kernel: &Kernel) -> Result<PathBuf> {
    let dest = installed()?;
    let module = dest.join("usr/lib/dracut/modules.d/98ostree-switchroot");
    let host_dracut = Path::new("/usr/lib/dracut");
    if !util::have("dracut") || !host_dracut.join("modules.d/00systemd").is_dir() {
        bail!("dracut with its systemd module is needed: apt-get install dracut-core");
    }
    let fp = disk::fingerprint(&[
        &read(&module.join("module-setup.sh"))?,
        &read(&module.join("ostree-prepare-root.service"))?,
        &read(&dest.join("usr/lib/ostree/ostree-prepare-root"))?,
        kernel.version.as_bytes(),
        &fs::read(host_dracut.join("dracut-version.sh")).unwrap_or_default(),
        DRACUT_MODULES.as_bytes(),
        b"dracut-v1",
    ]);
    let out = util::work_dir().join("initramfs/dracut.img");
    let stamp = out.with_extension("img.fingerprint");
    if out.exists() && fs::read_to_string(&stamp).ok().as_deref() == Some(fp.as_str()) {
        return Ok(out);
    }
    let scratch = util::work_dir().join("dracut");
    let _ = fs::remove_dir_all(&scratch);
    let base = scratch.join("dracutbasedir");
    fs::create_dir_all(scratch.join("tmp"))?;
    fs::create_dir_all(scratch.join("conf.d"))?;
    run(Command::new("cp").arg("-a").arg(host_dracut).arg(&base))?;
    // ostree's own module (ostree-boot) installs a unit of the same name.
    let _ = fs::remove_dir_all(base.join("modules.d/98ostree"));
    run(Command::new("cp")
        .arg("-a")
        .arg(&module)
        .arg(base.join("modules.d/")))?;
    if let Some(d) = out.parent() {
        fs::create_dir_all(d)?;
    }
    let mut cmd = in_installed_view(&dest, "dracut")?;
    cmd.env("dracutbasedir", &base)
        .args(["--force", "--quiet", "--conf", "/dev/null", "--confdir"])
        // An empty directory: not the host's /etc/dracut.conf.d, whose
        // ostree.conf (ostree-boot) would add ostree's own module.
        .arg(scratch.join("conf.d"))
        .arg("--tmpdir")
        .arg(scratch.join("tmp"))
        .args([
            "--no-hostonly",
            "--no-early-microcode",
            "--reproducible",
            "--gzip",
            "--kver",
            &kernel.version,
            "--kmoddir",
        ])
        .arg(&kernel.modules)
        .args(["--modules", DRACUT_MODULES, "--add", DRACUT_ADD])
        .arg(&out);
    run(&mut cmd).context("dracut")?;
    fs::write(&stamp, &fp)?;
    let _ = fs::remove_dir_all(&scratch);
    Ok(out)
}

/// `lsinitrd IMAGE`: one line per entry, `ls -l` style.
pub fn lsinitrd(image: &Path) -> Result<String> {
    output(Command::new("lsinitrd").arg(image))
}

/// `lsinitrd IMAGE -f PATH`: one file's contents.
pub fn lsinitrd_file(image: &Path, path: &str) -> Result<Vec<u8>> {
    let out = Command::new("lsinitrd")
        .arg(image)
        .arg("-f")
        .arg(path)
        .output()
        .context("running lsinitrd")?;
    if !out.status.success() {
        bail!("lsinitrd -f {path}: {}", out.status);
    }
    Ok(out.stdout)
}

/// mkinitcpio's `add_*` functions, as far as the install hook uses them,
/// copying into `$BUILDROOT` with mkinitcpio's semantics (`add_file` fails
/// on a missing source, `add_runscript` installs the runtime hook as
/// `/hooks/NAME` mode 0755 and registers its `run_*` functions). Then the
/// install hook's `build()` runs with `HOOKS` of a busybox image, and
/// `/config` is written as mkinitcpio writes it.
const MKINITCPIO_BUILD: &str = r#"
set -euo pipefail
BUILDROOT=$1 HOOKDIR=$2 INSTALLHOOK=$3
read -ra HOOKS <<<"$4"
declare -A RUNHOOKS=()
error() { printf '==> ERROR: %s\n' "$*" >&2; }
add_dir() { install -d -m "${2:-755}" "$BUILDROOT$1"; }
add_file() { # SRC [DST] [MODE]
    local src=$1 dst=${2:-$1} mode=${3:-}
    if [[ ! -f $src ]]; then error "file not found: '$src'"; return 1; fi
    [[ -n $mode ]] || mode=$(stat -c %a "$src")
    install -D -m "$mode" "$src" "$BUILDROOT$dst"
    echo "add_file $src $dst $mode" >>"$BUILDROOT/.calls"
}
add_binary() { # SRC [DST]; our binary is static: no libraries to follow
    local src=$1 dst=${2:-$1}
    if [[ ! -f $src ]]; then error "binary not found: '$src'"; return 1; fi
    if ldd "$src" >/dev/null 2>&1; then error "$src is dynamic; this stand-in copies no libraries"; return 1; fi
    install -D -m 755 "$src" "$BUILDROOT$dst"
    echo "add_binary $src $dst" >>"$BUILDROOT/.calls"
}
add_module() { echo "${1%\?}" >>"$BUILDROOT/.modules"; echo "add_module $1" >>"$BUILDROOT/.calls"; }
add_symlink() { echo "add_symlink $*" >>"$BUILDROOT/.calls"; }
add_systemd_unit() { echo "add_systemd_unit $*" >>"$BUILDROOT/.calls"; }
add_runscript() {
    local fn script hookname=${SCRIPT:-${BASH_SOURCE[1]##*/}}
    script=$HOOKDIR/$hookname
    add_file "$script" "/hooks/$hookname" 755
    for fn in $(unset "${!run_@}"; . "$script"; compgen -A function run_ || true); do
        case $fn in
            run_earlyhook) RUNHOOKS[early]+=" $hookname" ;;
            run_hook) RUNHOOKS[hooks]+=" $hookname" ;;
            run_latehook) RUNHOOKS[late]+=" $hookname" ;;
            run_cleanuphook) RUNHOOKS[cleanup]+=" $hookname" ;;
        esac
    done
    echo "add_runscript $hookname" >>"$BUILDROOT/.calls"
}
SCRIPT=ostree-switchroot
. "$INSTALLHOOK"
build
{
    echo "EARLYHOOKS='${RUNHOOKS[early]:-}'"
    echo "HOOKS='${RUNHOOKS[hooks]:-}'"
    echo "LATEHOOKS='${RUNHOOKS[late]:-}'"
    echo "CLEANUPHOOKS='${RUNHOOKS[cleanup]:-}'"
    echo "MODULES=''"
} >"$BUILDROOT/config"
"#;

/// `/init_functions`: the parts of mkinitcpio's that `/init` and the
/// runtime hooks use. `launch_interactive_shell` powers off when
/// `rd.emergency=poweroff` is given (nobody is at a test VM's console).
const INIT_FUNCTIONS: &str = r#"# mkinitcpio's init_functions, the parts this image uses.
msg() { [ "${quiet:-n}" = y ] || echo "$@"; }
err() { echo "ERROR: $*"; }

launch_interactive_shell() {
    case " $(cat /proc/cmdline) " in
        *" rd.emergency=poweroff "*)
            echo ":: emergency: powering off (rd.emergency=poweroff)"
            sync
            poweroff -f ;;
    esac
    export PS1='[rootfs \W]\$ '
    [ "$1" = "--exec" ] && exec sh -i
    sh -i
}

mount_setup() {
    mount -t proc proc /proc -o nosuid,noexec,nodev
    mount -t sysfs sys /sys -o nosuid,noexec,nodev
    mount -t devtmpfs dev /dev -o mode=0755,nosuid
    mount -t tmpfs run /run -o nosuid,nodev,mode=0755
    mkdir -m755 /run/initramfs
    ln -sfT /proc/self/fd /dev/fd
    ln -sfT /proc/self/fd/0 /dev/stdin
    ln -sfT /proc/self/fd/1 /dev/stdout
    ln -sfT /proc/self/fd/2 /dev/stderr
}

parse_cmdline() {
    local w
    for w in $(cat /proc/cmdline); do
        case "$w" in
            rw|ro) rwopt=$w ;;
            root=*) root=${w#root=} ;;
            init=*) init=${w#init=} ;;
            rootfstype=*) rootfstype=${w#rootfstype=} ;;
            rootflags=*) rootflags=${w#rootflags=} ;;
            rootdelay=*) rootdelay=${w#rootdelay=} ;;
            quiet) quiet=y ;;
        esac
    done
}

run_hookfunctions() {
    local hook fn=$1 desc=$2
    shift 2
    for hook in "$@"; do
        [ -x "/hooks/$hook" ] || continue
        unset "$fn"
        . "/hooks/$hook"
        type "$fn" >/dev/null || continue
        msg ":: running $desc [$hook]"
        "$fn"
    done
}

# blkid -lt TAG -o device, with mkinitcpio's wait for the device (rootdelay, default 10 s).
resolve_device() {
    local dev i=0 max=$(( ${rootdelay:-10} * 10 ))
    while :; do
        case "$1" in
            /dev/*) [ -b "$1" ] && dev=$1 ;;
            *=*) dev=$(findfs "$1" 2>/dev/null) ;;
        esac
        [ -n "$dev" ] && { echo "$dev"; return 0; }
        i=$((i + 1))
        [ $i -lt $max ] || { err "device '$1' not found. Skipping fsck."; return 1; }
        sleep 0.1
    done
}

default_mount_handler() {
    msg ":: mounting '$root' on real root"
    if ! mount -t "${rootfstype:-auto}" -o "${rwopt:-ro}${rootflags:+,$rootflags}" "$root" "$1"; then
        echo "You are now being dropped into an emergency shell."
        launch_interactive_shell
        msg "Trying to continue (this will most likely fail) ..."
    fi
}
"#;

/// `/init`: mkinitcpio's, without udev, fsck, early userspace breaks and the
/// logger. Like the reference, it exports `RD_TIMESTAMP` (from
/// `/proc/uptime`) through `env -i` so ktest can time the initramfs.
const INIT: &str = r#"#!/usr/bin/ash
# mkinitcpio-style /init (busybox ash): see qemu/src/distro.rs.
export PATH='/usr/local/sbin:/usr/local/bin:/usr/bin'
mount_handler=default_mount_handler
init=/sbin/init
. /init_functions
mount_setup
read up _ </proc/uptime
RD_TIMESTAMP="0 ${up%.*}${up#*.}0000"
parse_cmdline
. /config
run_hookfunctions 'run_earlyhook' 'early hook' $EARLYHOOKS
[ -n "$MODULES" ] && modprobe -qab $MODULES
run_hookfunctions 'run_hook' 'hook' $HOOKS
rootdev=$(resolve_device "$root") && root=$rootdev
unset rootdev
"$mount_handler" /new_root
run_hookfunctions 'run_latehook' 'late hook' $LATEHOOKS
run_hookfunctions 'run_cleanuphook' 'cleanup hook' $CLEANUPHOOKS
if [ "$(stat -c %D /)" = "$(stat -c %D /new_root)" ]; then
    err "Failed to mount the real root device."
    launch_interactive_shell --exec
elif [ ! -x "/new_root${init}" ]; then
    err "Root device mounted successfully, but ${init} does not exist."
    launch_interactive_shell --exec
fi
exec env -i "TERM=$TERM" "RD_TIMESTAMP=$RD_TIMESTAMP" /usr/bin/switch_root /new_root $init "$@"
"#;

/// `HOOKS` of a busybox mkinitcpio image (the install hook's help text's).
pub const BUSYBOX_HOOKS: &str =
    "base udev autodetect modconf block filesystems ostree-switchroot fsck";
/// `HOOKS` of a systemd mkinitcpio image.
pub const SYSTEMD_HOOKS: &str =
    "base systemd autodetect modconf block filesystems ostree-switchroot fsck";

/// Busybox applets of the image (mkinitcpio's base hook installs them all;
/// these are the ones `/init`, `/init_functions` and the hook use).
const APPLETS: &[&str] = &[
    "ash", "sh", "cat", "env", "findfs", "ln", "mkdir", "mount", "poweroff", "sleep", "stat",
    "sync", "umount", "echo", "test", "[",
];

/// Build the mkinitcpio-style busybox image: `target/qemu/initramfs/mkinitcpio-busybox.img`.
pub fn mkinitcpio_image(kernel: &Kernel) -> Result<PathBuf> {
    static DONE: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    DONE.get_or_init(|| build_mkinitcpio(kernel).map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

/// The install hook's `build()`, run against the stand-ins; returns the
/// staging root (with `.calls`, `.modules`, `config`).
pub fn run_install_hook(staging: &Path, hooks: &str) -> Result<PathBuf> {
    let dest = installed()?;
    let _ = fs::remove_dir_all(staging);
    fs::create_dir_all(staging)?;
    let mut cmd = in_installed_view(&dest, "bash")?;
    cmd.arg("-c")
        .arg(MKINITCPIO_BUILD)
        .arg("mkinitcpio-build")
        .arg(staging)
        .arg(dest.join("usr/lib/initcpio/hooks"))
        .arg(dest.join("usr/lib/initcpio/install/ostree-switchroot"))
        .arg(hooks);
    run(&mut cmd).context("the install hook's build()")?;
    Ok(staging.to_path_buf())
}

fn build_mkinitcpio(kernel: &Kernel) -> Result<PathBuf> {
    let root = run_install_hook(&util::work_dir().join("mkinitcpio/root"), BUSYBOX_HOOKS)?;
    let exe = |p: &Path, data: &[u8]| -> Result<()> {
        if let Some(d) = p.parent() {
            fs::create_dir_all(d)?;
        }
        fs::write(p, data)?;
        fs::set_permissions(p, fs::Permissions::from_mode(0o755))?;
        Ok(())
    };
    exe(&root.join("init"), INIT.as_bytes())?;
    fs::write(root.join("init_functions"), INIT_FUNCTIONS)?;
    // busybox at /usr/bin, /bin and /sbin pointing there (merged /usr, as
    // mkinitcpio's images are).
    let busybox = Path::new("/bin/busybox");
    if !util::is_static(busybox) {
        bail!("/bin/busybox is not static: apt-get install busybox-static");
    }
    exe(&root.join("usr/bin/busybox"), &read(busybox)?)?;
    for app in APPLETS {
        std::os::unix::fs::symlink("busybox", root.join("usr/bin").join(app))?;
    }
    for l in ["bin", "sbin"] {
        std::os::unix::fs::symlink("usr/bin", root.join(l))?;
    }
    // util-linux switch_root (mkinitcpio's; it moves /dev /proc /sys /run
    // into the new root), and kmod as modprobe (mkinitcpio's base hook), the
    // program the kernel runs to load overlay on first mount.
    let kmod = ["/usr/bin/kmod", "/bin/kmod"]
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .context("kmod not found (apt-get install kmod)")?;
    for (src, dst) in [
        (Path::new("/usr/sbin/switch_root"), "usr/bin/switch_root"),
        (kmod, "usr/bin/kmod"),
    ] {
        exe(&root.join(dst), &read(src)?)?;
        for lib in initramfs::ldd_closure(src)? {
            let rel = lib.to_string_lossy().trim_start_matches('/').to_string();
            if !root.join(&rel).exists() {
                exe(&root.join(&rel), &read(&lib)?)?;
            }
        }
    }
    for app in ["modprobe", "insmod", "lsmod", "depmod"] {
        std::os::unix::fs::symlink("kmod", root.join("usr/bin").join(app))?;
    }
    // The modules add_module asked for, their dependencies, and depmod's
    // indexes for them (mkinitcpio runs depmod -b BUILDROOT).
    let names: Vec<String> = fs::read_to_string(root.join(".modules"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect();
    let dep = fs::read_to_string(kernel.modules.join("modules.dep"))?;
    let kdir = root.join("lib/modules").join(&kernel.version);
    for line in initramfs::dep_closure(&dep, &names)? {
        let rel = line.split(':').next().unwrap_or_default();
        if let Some(d) = kdir.join(rel).parent() {
            fs::create_dir_all(d)?;
        }
        fs::copy(kernel.modules.join(rel), kdir.join(rel))?;
    }
    fs::create_dir_all(&kdir)?;
    for f in [
        "modules.builtin",
        "modules.builtin.modinfo",
        "modules.order",
    ] {
        if kernel.modules.join(f).exists() {
            fs::copy(kernel.modules.join(f), kdir.join(f))?;
        }
    }
    run(Command::new("depmod")
        .arg("-b")
        .arg(&root)
        .arg(&kernel.version))?;
    for d in ["dev", "proc", "sys", "run", "new_root", "tmp"] {
        fs::create_dir_all(root.join(d))?;
    }
    let mut a = Archive::new();
    a.dir("/dev", 0o755);
    a.char_dev("/dev/console", 0o600, 5, 1);
    add_tree(&mut a, &root, &root)?;
    let out = util::work_dir().join("initramfs/mkinitcpio-busybox.img");
    fs::write(&out, initramfs::gzip(&a.finish())?)?;
    Ok(out)
}

/// Add a directory tree to the archive (sorted, symlinks kept, the
/// harness's dot files left out).
fn add_tree(a: &mut Archive, top: &Path, dir: &Path) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if dir == top && name.starts_with('.') {
            continue;
        }
        let rel = format!("/{}", p.strip_prefix(top)?.display());
        let md = fs::symlink_metadata(&p)?;
        if md.file_type().is_symlink() {
            a.symlink(&rel, &fs::read_link(&p)?.to_string_lossy());
        } else if md.is_dir() {
            a.dir(&rel, md.mode() & 0o7777);
            add_tree(a, top, &p)?;
        } else {
            a.file(&rel, md.mode() & 0o7777, &read(&p)?);
        }
    }
    Ok(())
}

/// Remove terminal escapes (systemd colours its status lines).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_systemd_colours() {
        let l = "[\u{1b}[0;32m  OK  \u{1b}[0m] Finished \u{1b}[0;1;39mostree-prepare-ro….service\u{1b}[0m - OSTree Prepare OS/.";
        assert_eq!(
            strip_ansi(l),
            "[  OK  ] Finished ostree-prepare-ro….service - OSTree Prepare OS/."
        );
    }
}
