#!/usr/bin/env bash
# composefs.sh - composefs scenarios for ostree-prepare-root in service mode,
# against ostree 2026.4's C tool (the only Debian build with composefs).
#
# Usage: composefs.sh --ref-only [--keep DIR] [-v] [FILTER]
#        composefs.sh --impl PATH [--keep DIR] [-v] [FILTER]
#        composefs.sh --record [FILTER]
#   --ref-only  run only the reference and check its results against the
#               expectations recorded in composefs-expected/NAME (and each
#               scenario's own checks): tests the suite and the reference
#   --impl      also run PATH on an identical copy and require the same
#               results as the reference (exceptions: see below)
#   --record    run the reference and (re)write composefs-expected/NAME
#   --signed-impl PATH  also run the signed_* scenarios with PATH, a build
#               with signature checks (make signed); ours only: Debian's
#               2026.4 has no Ed25519
#   --keep      copy every run's results (tool output, mount dumps) to DIR
#   -v          print the log of passing scenarios too
#   FILTER      extended regex; only scenarios whose name matches run
# Must run as root. Prints TAP; the last line is "N passed, M failed".
#
# The sysroot is built by the real ostree 2026.4 CLI (composefs-fixture.sh,
# in the chroot of scripts/fetch-composefs-ref.sh, which must have been run:
# `make mountns` does). The reference is that chroot's C ostree-prepare-root
# with its own libraries (composefs-fixture.sh's bundle). Runs are
# service-lib.sh's: a mount + PID namespace per run, a tmpfs pivoted in as /,
# a tmpfs copy of the sysroot at /sysroot (an ext4 image for file_backed),
# loop device nodes in /dev, the command line as argv[2] and over
# /proc/cmdline.
#
# What is compared (composefs_state below, one file per run):
#   - the normalized mounts (normalize.py) at or under /sysroot and /run,
#     with the composefs parts spelled the same whatever the mechanism:
#     the EROFS source is "loop" or "file", overlay options are kept
#     (lowerdir/datadir, metacopy, redirect_dir, verity) with run-specific
#     paths folded;
#   - /run/ostree-booted decoded (the device/inode of the deployment shown
#     as "{deployment}" when it is the deployment's);
#   - /run/systemd/volatile-root (its target's device named as in the tree);
#   - whether /sysroot/usr and /sysroot/etc are writable, and which
#     deployment /sysroot shows.
#
# Deliberate differences between ostree 2026.4 and ours are the filters in
# EXCEPTIONS (each applied to both states, with its reason); nothing else is
# loosened. A scenario where 2026.4 itself fails and ours must not says so
# with cfs_case --differs.
# assert.sh's checks take an optional WHAT; calls without it are fine.
# shellcheck disable=SC2119
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=service-lib.sh
source "$HERE/service-lib.sh"
# shellcheck source=tap.sh
source "$HERE/tap.sh"
EXPECTED_DIR=$HERE/composefs-expected

##############################################################################
# Deliberate differences between ostree 2026.4's tool and ours: filters
# (stdin -> stdout) applied to both states before they are compared, each
# with its reason (the README's "Compared with ostree's C tool" table).
# Nothing else may differ.
##############################################################################
EXCEPTIONS=(except_boot_bind except_ro_stamp except_transient_etc_name except_failure_leftovers
  except_unused_lower_dir)

# 2026.1 moved the /boot bind to ostree-system-generator; ours still binds
# SYSROOT/boot when boot/loader is a symlink, for initramfs without that
# generator (the generator's boot.mount then stacks on it).
except_boot_bind() { grep -v '^/sysroot/boot root=/boot dev=physroot '; }

# Ours also writes /run/ostree-sysroot-ro.stamp when the sysroot is
# read-only, for the ostree-remount of libostree < 2023.6.
except_ro_stamp() { grep -vx '/run/ostree-sysroot-ro.stamp f 644'; }

# Upstream's transient /etc lives in a mkdtemp directory
# (transient-etc.XXXXXX, masked to transient-etc.*); ours in the fixed
# /run/ostree/transient-etc: /run is new at every boot.
except_transient_etc_name() { sed 's#/run/ostree/transient-etc\.\*#/run/ostree/transient-etc#g'; }

# A refused run: upstream leaves /run/ostree, /run/ostree/.private (and
# .private/cfsroot-lower) behind; ours undoes every step, so the same
# command can run again.
except_failure_leftovers() {
  local first
  IFS= read -r first || return 0
  printf '%s\n' "$first"
  if [[ $first == "exit 0" ]]; then
    cat
  else
    grep -vxE '/run/ostree d 755|/run/ostree/\.private d 0|/run/ostree/\.private/cfsroot-lower d 700'
  fi
}

# Upstream creates /run/ostree/.private/cfsroot-lower whenever composefs is
# not off, before it knows whether there is an image; ours decides first
# and creates it only when it mounts one (maybe without an image: none).
except_unused_lower_dir() {
  local state
  state=$(cat)
  if grep -q '^composefs b true' <<<"$state"; then
    printf '%s\n' "$state"
  else
    grep -vx '/run/ostree/\.private/cfsroot-lower d 700' <<<"$state" || true
  fi
}

##############################################################################
# Setup functions (inside R, before the tool; errexit on). R, PHYS, D1, D2,
# T1, T2, SVAR: see service-lib.sh. The initramfs's prepare-root.conf is
# what the tools read; the deployments' own (enabled = yes) only told
# `ostree admin deploy` to write .ostree.cfs.
##############################################################################
# shellcheck disable=SC2153 # PHYS, D1, ... are assigned by service-lib.sh in the namespace

# conf LINE...: the initramfs's /usr/lib/ostree/prepare-root.conf, one line each.
conf() { printf '%s\n' "$@" >"$R/usr/lib/ostree/prepare-root.conf"; }

setup_yes() { conf '[composefs]' 'enabled = yes'; }
setup_maybe() { conf '[composefs]' 'enabled = maybe'; }
setup_no_conf() { rm -f "$R/usr/lib/ostree/prepare-root.conf" "$R/etc/ostree/prepare-root.conf"; }
setup_maybe_no_image() { setup_maybe; rm "$D1/.ostree.cfs"; }
setup_yes_no_image() { setup_yes; rm "$D1/.ostree.cfs"; }
setup_verity() { conf '[composefs]' 'enabled = verity'; }
setup_signed() { conf '[composefs]' 'enabled = signed'; }
setup_etc_transient() { conf '[composefs]' 'enabled = yes' '[etc]' 'transient = true'; }
setup_root_transient() { conf '[composefs]' 'enabled = yes' '[root]' 'transient = true'; }
setup_root_transient_ro() { conf '[composefs]' 'enabled = yes' '[root]' 'transient-ro = true'; }
setup_root_transient_no_cfs() { conf '[composefs]' 'enabled = no' '[root]' 'transient = true'; }
setup_sysroot_rw() { conf '[composefs]' 'enabled = yes' '[sysroot]' 'readonly = false'; }
setup_maybe_readonly() { conf '[composefs]' 'enabled = maybe' '[sysroot]' 'readonly = true'; }
setup_etc_conf() {
  mkdir -p "$R/etc/ostree"
  printf '[composefs]\nenabled = yes\n' >"$R/etc/ostree/prepare-root.conf"
  conf '[composefs]' 'enabled = no'
}

# What `ostree admin unlock --hotfix` leaves in the booted deployment (and
# its origin): .usr-ovl-upper and .usr-ovl-work with /usr's mode, [origin]
# unlocked=hotfix (unlock.sh checks ours writes the same as the real CLI).
# The real `unlock --hotfix` needs a booted system, which the chroot is not.
setup_hotfix() {
  local mode
  setup_yes
  mode=$(stat -c %a "$D1/usr")
  mkdir -m "$mode" "$D1/.usr-ovl-upper" "$D1/.usr-ovl-work"
  printf 'unlocked=hotfix\n' >>"$D1.origin"
}

# The physical root's superblock read-only, as with the kernel's `ro`.
setup_ro_physroot() { setup_yes; mount -o remount,ro "$PHYS"; }
setup_hotfix_ro_physroot() { setup_hotfix; mount -o remount,ro "$PHYS"; }

# A systemd initramfs's udev link to the root partition (any block device
# numbers do: the tools only stat it).
setup_gpt_auto_root() { setup_yes; mknod -m 0600 "$R/dev/gpt-auto-root" b 259 7; }

##############################################################################
# Checks (inside R, after the tool): the scenario's own, then the state.
##############################################################################

# composefs_state: everything compared, one file (see the header).
composefs_state() {
  local dep di link target key rest dir
  {
    echo "exit $LAST_RC"
    echo "# mounts at or under /sysroot and /run"
    NORMALIZE_ALL_OPTS=1 ns_py tree /results/devmap /sysroot /run
    echo "# /run/ostree*, /run/systemd"
    dump_run | grep -E '^/run/(ostree|systemd)' || true
    echo "# /run/ostree-booted"
    if [[ -f /run/ostree-booted ]]; then
      dep=$(phys_after "$DEPLOY_1")
      [[ $NS_CMDLINE == *"ostree=$T2"* ]] && dep=$(phys_after "$DEPLOY_2")
      di=$(stat -c '(%d, %i)' "$dep" 2>/dev/null || true)
      ns_py booted /run/ostree-booted 2>&1 | while read -r key rest; do
        if [[ $key == backing-root-device-inode && $rest == "(tt) $di" ]]; then
          rest="(tt) {deployment}"
        fi
        echo "$key $rest"
      done
    else
      echo "(none)"
    fi
    echo "# /run/systemd/volatile-root"
    if link=$(readlink /run/systemd/volatile-root); then
      target=$link
      if [[ $link =~ ^/dev/block/([0-9]+):([0-9]+)$ ]]; then
        key=$(devmap_name "${BASH_REMATCH[1]}:${BASH_REMATCH[2]}")
        [[ -n $key ]] && target="/dev/block/{$key}"
      fi
      echo "-> $target"
    else
      echo "(none)"
    fi
    if ((LAST_RC == 0)); then
      echo "# the booted tree"
      echo "which-deployment $(cat /sysroot/usr/share/which-deployment 2>&1)"
      for dir in /sysroot /sysroot/usr /sysroot/etc /sysroot/sysroot "$(phys_after "$STATEROOT_VAR")"; do
        if is_writable "$dir"; then echo "$dir writable"; else echo "$dir read-only"; fi
      done
    fi
  } | sed -E 's/transient-etc\.[A-Za-z0-9]{6}/transient-etc.*/g' >/results/state
}

# devmap_name MAJ:MIN: the name normalize.py gave that device (or nothing).
# (No awk here: R's /etc has no alternatives.)
devmap_name() {
  local dev name
  while read -r dev name; do
    if [[ $dev == "$1" ]]; then echo "$name"; fi
  done </results/devmap
}

# devmap_dev NAME: the device numbers of a devmap name.
devmap_dev() {
  local dev name
  while read -r dev name; do
    if [[ $name == "$1" ]]; then echo "$dev"; fi
  done </results/devmap
}

# check: the scenario's expectation about the exit status, then the state.
check_ok() { expect_success; composefs_state; }
check_refused() { expect_failure; expect_mounts_unchanged; composefs_state; }

# Scenario-specific checks (on top of the recorded state), in words.
check_composefs_root() {
  check_ok
  expect_mount /sysroot 'type=overlay' 'mnt=ro'
  expect_not_writable /sysroot/usr
  expect_deployment_letter A
}
check_legacy_root() {
  check_ok
  expect_mount /sysroot 'type=tmpfs' 'dev=physroot'
  expect_mount /sysroot/usr 'mnt=ro'
  expect_deployment_letter A
}
expect_deployment_letter() { expect_file_content /sysroot/usr/share/which-deployment "$1"; }
check_hotfix() {
  check_composefs_root_hotfix
}
check_composefs_root_hotfix() {
  check_ok
  expect_mount /sysroot/usr 'type=overlay' 'mnt=rw'
  expect_can_create /sysroot/usr/cfs-hotfix
  expect_file "$(phys_after "$DEPLOY_1")/.usr-ovl-upper/cfs-hotfix"
}
check_root_transient() {
  check_ok
  expect_mount /sysroot 'type=overlay' 'mnt=rw'
  expect_can_create /sysroot/usr/cfs-transient
  expect_no_file "$(phys_after "$DEPLOY_1")/usr/cfs-transient"
}
check_etc_transient() {
  check_ok
  expect_mount /sysroot/etc 'type=overlay' 'upper=/run/ostree/transient-etc'
  expect_can_create /sysroot/etc/cfs-transient
  expect_no_file "$(phys_after "$DEPLOY_1")/etc/cfs-transient"
}
check_gpt_auto_root() {
  check_composefs_root
  [[ $(readlink /run/systemd/volatile-root) == /dev/block/259:7 ]] ||
    fail "/run/systemd/volatile-root is '$(readlink /run/systemd/volatile-root)', expected /dev/block/259:7"
}

##############################################################################
# Driver of one scenario
##############################################################################

# cfs_case NAME [ns_run options: --setup F --check F --cmdline STR ...]:
# the reference on its copy (its state must be the recorded one), then, with
# --impl, ours on another (its state must be the reference's).
# Options for cfs_case only (before the ns_run ones):
#   --impl-check F     ours is checked with F instead of --check
#   --differs REASON   a deliberate difference: ours is not expected to end
#                      in the reference's state (REASON is printed); only
#                      its own check applies
#   --ext4             the physical root is an ext4 image (a copy per run,
#                      loop-mounted in the suite's namespace) instead of a
#                      tmpfs: a block device, EROFS can read files on it
cfs_case() {
  local name=$1 rc=0 ref_state impl_state expected=$EXPECTED_DIR/$1 d impl_check="" differs=""
  local ext4=0 phys
  local -a impl_opts=() ref_phys=() impl_phys=()
  shift
  while (($#)); do
    case $1 in
      --impl-check) impl_check=$2; shift 2 ;;
      --differs) differs=$2; shift 2 ;;
      --ext4) ext4=1; shift ;;
      *) break ;;
    esac
  done
  impl_opts=("$@")
  if [[ -n $impl_check ]]; then impl_opts+=(--check "$impl_check"); fi
  if ((ext4)); then
    phys=$(ext4_phys "$name.ref") || return 1
    ref_phys=(--physroot "$phys")
  fi
  ns_run --impl "$REF" --loop --label "$name.ref" "${ref_phys[@]}" "$@" || rc=1
  if ((ext4)); then drop_ext4_phys "$phys"; fi
  ref_state=$NS_LAST_RESULTS/state
  if [[ ! -f $ref_state ]]; then
    echo "FAIL: the reference run left no state"
    return 1
  fi
  if ((RECORD)); then
    cp "$ref_state" "$expected"
    echo "recorded ${expected#"$MOUNTNS_REPO_ROOT"/}"
  elif [[ ! -f $expected ]]; then
    echo "FAIL: nothing recorded for $name (composefs.sh --record '^$name\$')"
    rc=1
  elif ! d=$(diff -u --label "recorded $name" --label "reference now" "$expected" "$ref_state"); then
    echo "FAIL: the reference's state is not the recorded one (- recorded, + now):"
    printf '%s\n' "$d"
    rc=1
  fi
  if [[ -n $IMPL ]]; then
    if ((ext4)); then
      phys=$(ext4_phys "$name.impl") || return 1
      impl_phys=(--physroot "$phys")
    fi
    ns_run --impl "$IMPL" --loop --label "$name.impl" "${impl_phys[@]}" "${impl_opts[@]}" || rc=1
    if ((ext4)); then drop_ext4_phys "$phys"; fi
    impl_state=$NS_LAST_RESULTS/state
    if [[ -n $differs ]]; then
      echo "note: not compared with the reference (deliberate difference): $differs"
    elif [[ ! -f $impl_state ]]; then
      echo "FAIL: the implementation's run left no state"
      rc=1
    elif ! d=$(diff -u --label "reference $name" --label "impl $name" \
      <(apply_exceptions "$ref_state") <(apply_exceptions "$impl_state")); then
      echo "FAIL: the implementation's state differs from the reference's (- reference, + impl):"
      printf '%s\n' "$d"
      rc=1
    fi
  fi
  return "$rc"
}

# ext4_phys LABEL: an ext4 image of the fixture, loop-mounted (autoclear)
# on a directory of the scratch tmpfs; prints that directory.
ext4_phys() {
  local img=$NS_SCRATCH/$1.img mnt=$NS_SCRATCH/$1.phys
  truncate -s 64M "$img"
  mkfs.ext4 -q -F -L osroot -O ^has_journal -E lazy_itable_init=0 -d "$MOUNTNS_CACHE/sysroot" "$img" >/dev/null
  mkdir -p "$mnt"
  mount -o loop "$img" "$mnt"
  echo "$mnt"
}

drop_ext4_phys() {
  umount "$1" 2>/dev/null || umount -l "$1"
  rm -f "${1%.phys}.img"
  rmdir "$1" 2>/dev/null || true
}

# apply_exceptions FILE: FILE through every EXCEPTIONS filter.
apply_exceptions() {
  local state e
  state=$(cat "$1")
  for e in "${EXCEPTIONS[@]}"; do state=$("$e" <<<"$state" || true); done
  printf '%s\n' "$state"
}

##############################################################################
# Scenarios (run in the order registered). Each runs the reference and
# (--impl) ours; composefs-expected/NAME is the reference's recorded state.
##############################################################################

scenario yes "[composefs] enabled=yes: composefs overlay as /, /etc rw bind, /sysroot/sysroot ro"
t_yes() { cfs_case yes --setup setup_yes --check check_composefs_root; }

scenario second_deployment "enabled=yes, ostree= of deployment 2: its image"
check_second() { check_ok; expect_mount /sysroot 'type=overlay'; expect_deployment_letter B; }
t_second_deployment() {
  cfs_case second_deployment --setup setup_yes --check check_second \
    --cmdline "root=LABEL=osroot rw quiet ostree=$T2"
}

scenario maybe "enabled=maybe with an image: composefs, sysroot stays writable"
t_maybe() { cfs_case maybe --setup setup_maybe --check check_composefs_root; }

scenario maybe_no_image "enabled=maybe, no .ostree.cfs: the legacy bind mounts"
t_maybe_no_image() { cfs_case maybe_no_image --setup setup_maybe_no_image --check check_legacy_root; }

scenario yes_no_image "enabled=yes, no .ostree.cfs: refused, nothing mounted"
t_yes_no_image() { cfs_case yes_no_image --setup setup_yes_no_image --check check_refused; }

scenario no_conf "no prepare-root.conf (composefs off by default): legacy bind mounts despite the image"
t_no_conf() { cfs_case no_conf --setup setup_no_conf --check check_legacy_root; }

scenario etc_conf "/etc/ostree/prepare-root.conf (enabled=yes) replaces /usr/lib's (enabled=no)"
t_etc_conf() { cfs_case etc_conf --setup setup_etc_conf --check check_composefs_root; }

scenario karg_off "enabled=yes, karg ostree.prepare-root.composefs=0: legacy bind mounts"
t_karg_off() {
  cfs_case karg_off --setup setup_yes --check check_legacy_root \
    --cmdline "root=LABEL=osroot rw quiet ostree=$T1 ostree.prepare-root.composefs=0"
}

scenario karg_on "no conf, karg ostree.prepare-root.composefs=1: composefs"
t_karg_on() {
  cfs_case karg_on --setup setup_no_conf --check check_composefs_root \
    --cmdline "root=LABEL=osroot rw quiet ostree=$T1 ostree.prepare-root.composefs=1"
}

scenario etc_transient "enabled=yes + [etc] transient: /etc an overlay with its upper in /run"
t_etc_transient() { cfs_case etc_transient --setup setup_etc_transient --check check_etc_transient; }

scenario root_transient "enabled=yes + [root] transient: / a writable overlay on the image, upper in /run"
t_root_transient() { cfs_case root_transient --setup setup_root_transient --check check_root_transient; }

scenario root_transient_ro "enabled=yes + [root] transient-ro: the same overlay, read-only"
check_root_transient_ro() { check_ok; expect_mount /sysroot 'type=overlay' 'mnt=ro'; }
t_root_transient_ro() {
  cfs_case root_transient_ro --setup setup_root_transient_ro --check check_root_transient_ro
}

scenario root_transient_no_composefs "[root] transient without composefs: refused"
t_root_transient_no_composefs() {
  cfs_case root_transient_no_composefs --setup setup_root_transient_no_cfs --check check_refused
}

scenario sysroot_rw "enabled=yes + [sysroot] readonly=false: /sysroot/sysroot writable"
t_sysroot_rw() { cfs_case sysroot_rw --setup setup_sysroot_rw --check check_composefs_root; }

scenario maybe_readonly "enabled=maybe + [sysroot] readonly=true: /sysroot/sysroot read-only"
t_maybe_readonly() { cfs_case maybe_readonly --setup setup_maybe_readonly --check check_composefs_root; }

scenario hotfix "enabled=yes + hotfix markers: /usr a writable overlay over the composefs /usr"
t_hotfix() { cfs_case hotfix --setup setup_hotfix --check check_hotfix; }

scenario ro_physroot "enabled=yes, physical root mounted read-only (kernel 'ro'): composefs boots, /etc and the stateroot var read-only too"
t_ro_physroot() { cfs_case ro_physroot --setup setup_ro_physroot --check check_composefs_root; }

scenario hotfix_ro_physroot "enabled=yes + hotfix markers, physical root read-only: 2026.4 fails (overlay EINVAL); ours must boot with the overlay"
# 2026.4 asks for a read-only overlay with its upper on the read-only
# superblock: "failed to mount /usr overlayfs: Invalid argument", and the
# composefs mount on /sysroot.tmp is left behind. Not a state to copy.
check_ref_hotfix_ro_physroot() { expect_failure; composefs_state; }
check_hotfix_ro_physroot() {
  check_ok
  expect_mount /sysroot/usr 'type=overlay'
  expect_file /sysroot/usr/share/which-deployment
}
t_hotfix_ro_physroot() {
  cfs_case hotfix_ro_physroot --impl-check check_hotfix_ro_physroot \
    --differs "2026.4 cannot mount the hotfix overlay over a read-only physical root" \
    --setup setup_hotfix_ro_physroot --check check_ref_hotfix_ro_physroot
}

scenario signed_no_key "enabled=signed without its key file: refused before anything is made"
t_signed_no_key() { cfs_case signed_no_key --setup setup_signed --check check_refused; }

scenario verity "enabled=verity (image without fs-verity digests, kernel without fs-verity)"
t_verity() { cfs_case verity --setup setup_verity --check composefs_state; }

scenario gpt_auto_root "enabled=yes + /dev/gpt-auto-root: /run/systemd/volatile-root points at it"
t_gpt_auto_root() { cfs_case gpt_auto_root --setup setup_gpt_auto_root --check check_gpt_auto_root; }

scenario file_backed "enabled=yes, physical root on ext4: the image mounted from the file (no loop), volatile-root -> the physical root's device"
check_file_backed() {
  check_composefs_root
  local link dev
  link=$(readlink /run/systemd/volatile-root)
  dev=$(devmap_dev physroot)
  [[ $link == "/dev/block/$dev" ]] || fail "/run/systemd/volatile-root is '$link', expected /dev/block/$dev"
}
t_file_backed() { cfs_case file_backed --ext4 --setup setup_yes --check check_file_backed; }

##############################################################################
# Signed (ours only: the reference is built without Ed25519). Deployment 1's
# commit is signed here with OpenSSL (key 1; key 2 signs nothing), its
# .commitmeta written with GLib. This kernel has no fs-verity, so a right
# signature ends at the image's digest, which cannot be measured: the
# verified signature is seen in the output, then the refusal. The digest
# match itself is booted under QEMU (qemu/README.md).
##############################################################################

# sign_fixture DIR: key1.pub, key2.pub and D1's .commitmeta in DIR, and the
# object's path (relative to the physical root) in DIR/object.
sign_fixture() {
  local dir=$1 c obj k
  mkdir -p "$dir"
  c=${DEPLOY_1##*/}
  c=${c%%.*}
  obj=ostree/repo/objects/${c:0:2}/${c:2}
  for k in 1 2; do
    openssl genpkey -algorithm ed25519 -out "$dir/key$k.pem" 2>/dev/null
    openssl pkey -in "$dir/key$k.pem" -pubout -outform DER | tail -c 32 | base64 -w0 >"$dir/key$k.pub"
  done
  openssl pkeyutl -sign -rawin -inkey "$dir/key1.pem" -in "$MOUNTNS_CACHE/sysroot/$obj.commit" -out "$dir/sig"
  /usr/bin/python3 - "$dir/commitmeta" "$dir/sig" <<'PYEOF2'
import sys
from gi.repository import GLib
sig = open(sys.argv[2], 'rb').read()
v = GLib.Variant('a{sv}', {'ostree.sign.ed25519': GLib.Variant('aay', [sig])})
open(sys.argv[1], 'wb').write(v.get_data_as_bytes().get_data())
PYEOF2
  echo "$obj" >"$dir/object"
}

# Inside the run: SIGNED_KEY (key file content), SIGNED_META (base64 of the
# .commitmeta, or empty for none), SIGNED_OBJECT.
setup_signed_case() {
  conf '[composefs]' 'enabled = signed'
  mkdir -p "$R/etc/ostree"
  printf '%s\n' "$SIGNED_KEY" >"$R/etc/ostree/initramfs-root-binding.key"
  if [[ -n $SIGNED_META ]]; then
    base64 -d <<<"$SIGNED_META" >"$PHYS/$SIGNED_OBJECT.commitmeta"
  fi
}
check_signed_refused() { expect_failure; expect_mounts_unchanged; expect_output "$SIGNED_WANT"; }

# signed_case NAME KEY(1|2) META(yes|no) BINARY ERE: ours (BINARY) with key
# KEY in the initramfs, with or without the signature; refused, saying ERE.
signed_case() {
  local name=$1 key=$2 meta=$3 bin=$4 want=$5 dir=$NS_SCRATCH/signed m=""
  if [[ -z $IMPL ]]; then
    echo "note: ours only, not run with --ref-only"
    return 0
  fi
  [[ -n $bin ]] || { echo "FAIL: no signed build given (--signed-impl PATH: make signed)"; return 1; }
  [[ -f $dir/object ]] || sign_fixture "$dir"
  if [[ $meta == yes ]]; then m=$(base64 -w0 "$dir/commitmeta"); fi
  ns_run --impl "$bin" --loop --label "$name" --setup setup_signed_case --check check_signed_refused \
    --env "SIGNED_KEY=$(cat "$dir/key$key.pub")" --env "SIGNED_META=$m" \
    --env "SIGNED_OBJECT=$(cat "$dir/object")" --env "SIGNED_WANT=$want"
}

scenario signed_right_key "signed, the right key: signature verified, then the image digest (no fs-verity here): refused, nothing mounted"
t_signed_right_key() {
  signed_case signed_right_key 1 yes "$SIGNED_IMPL" 'commit signature verified with key 1 of /etc/ostree/initramfs-root-binding.key' &&
    signed_case signed_right_key_digest 1 yes "$SIGNED_IMPL" 'has no fs-verity'
}

scenario signed_wrong_key "signed, a key that signed nothing: refused (no signature matches), nothing mounted"
t_signed_wrong_key() { signed_case signed_wrong_key 2 yes "$SIGNED_IMPL" 'signature'; }

scenario signed_no_commitmeta "signed, the commit has no .commitmeta: refused, saying so"
t_signed_no_commitmeta() { signed_case signed_no_commitmeta 1 no "$SIGNED_IMPL" 'detached metadata'; }

scenario signed_without_feature "signed with the default build (no signature checks): refused, naming the signed feature"
t_signed_without_feature() { signed_case signed_without_feature 1 yes "$IMPL" 'built without signature checks'; }

##############################################################################
# Driver
##############################################################################

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -n 's/^# \{0,1\}//p' | sed '/^shellcheck/d'; }

run_scenario() {
  local n=$1 name=$2 log=$NS_SCRATCH/logs/$2.log rc start
  start=$SECONDS
  set +e
  ("t_$name") >"$log" 2>&1
  rc=$?
  set -e
  tap_result "$n" "$name" "$rc" "$log"
  if ((rc != 0 || VERBOSE)); then echo "# ($((SECONDS - start))s)"; fi
  return "$rc"
}

inner_main() {
  local filter=$1 keep=$2 rc=0
  NS_SCRATCH=$MOUNTNS_INNER/mnt
  mount -t tmpfs -o mode=0700 mountns-scratch "$NS_SCRATCH"
  mkdir -p "$NS_SCRATCH/logs" "$NS_SCRATCH/results"
  MOUNTNS_CACHE=$MOUNTNS_CACHE/composefs
  # shellcheck source=/dev/null
  source "$MOUNTNS_CACHE/fixture.env"
  T1=$OSTREE_TARGET_1 T2=$OSTREE_TARGET_2
  # shellcheck disable=SC2034 # read by ns_run (service-lib.sh)
  NS_DEFAULT_CMDLINE="root=LABEL=osroot rw quiet ostree=$T1"
  # shellcheck disable=SC2034 # re-sourced in each namespace for the setup/check functions
  NS_SOURCES=$HERE/composefs.sh
  tap_select composefs.sh "$filter" || return 1
  # shellcheck disable=SC2154 # from fixture.env
  echo "# ref:  $REF (ostree $VERSION_ostree_boot, libcomposefs $VERSION_libcomposefs1)"
  if [[ -n $IMPL ]]; then echo "# impl: $IMPL"; else echo "# reference only"; fi
  # shellcheck disable=SC2119 # no after-each command
  tap_run
  tap_summary || rc=1
  if [[ -n $keep ]]; then
    mkdir -p "$keep"
    cp -a "$NS_SCRATCH/results" "$NS_SCRATCH/logs" "$keep/"
  fi
  return "$rc"
}

main() {
  local filter="" keep="" mode=""
  local -a pass=()
  IMPL="" SIGNED_IMPL="" VERBOSE=0 RECORD=0
  while (($#)); do
    case $1 in
      --impl) IMPL=$(realpath -m "$2"); mode=impl; shift 2 ;;
      --signed-impl) SIGNED_IMPL=$(realpath -m "$2"); shift 2 ;;
      --ref-only) mode=ref; shift ;;
      --record) RECORD=1; mode=record; shift ;;
      --keep) keep=$(realpath -m "$2"); shift 2 ;;
      -v) VERBOSE=1; shift ;;
      -h | --help) usage; return 0 ;;
      -*) echo "composefs.sh: unknown option $1" >&2; usage >&2; return 2 ;;
      *) filter=$1; shift ;;
    esac
  done
  REF=$MOUNTNS_CACHE/composefs/ref/ostree-prepare-root
  if [[ -n ${MOUNTNS_INNER:-} ]]; then
    inner_main "$filter" "$keep"
    return
  fi
  if [[ -z $mode ]]; then
    echo "composefs.sh: say --ref-only, --impl PATH or --record" >&2
    return 2
  fi
  if ((EUID != 0)); then
    echo "composefs.sh: must run as root (mount namespaces, tmpfs, loop devices)" >&2
    return 2
  fi
  "$HERE/composefs-fixture.sh" >/dev/null
  pass=()
  if [[ -n $IMPL ]]; then pass+=(--impl "$IMPL"); fi
  if [[ -n $SIGNED_IMPL ]]; then pass+=(--signed-impl "$SIGNED_IMPL"); fi
  if ((RECORD)); then pass+=(--record); fi
  tap_common_args pass "$keep" "$filter"
  tap_reexec MOUNTNS_INNER mountns-cfs "$HERE/composefs.sh" --ref-only "${pass[@]}"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
