# shellcheck shell=bash source-path=SCRIPTDIR
# unlock-lib.sh - simulate booting an OSTree system in a mount namespace, to
# test ostree-unlock. Sourced by unlock.sh (caller side, in its private outer
# namespace) and by the boot stages below (inside each boot's namespaces).
#
# A "physical root" is an ext4 image (loop-mounted in unlock.sh's outer
# namespace, so it survives between boots and has a real immutable
# attribute) holding a copy of the fixture sysroot (fixture.sh) plus, in each
# deployment's usr/bin, a static busybox and the ostree-unlock under test.
#
# boot PHYS [options] <<'EOF' ... EOF   boots PHYS once and runs the script
# (busybox sh) from stdin in the booted system:
#
#   caller   unshare -m -p -f --propagation private, a tmpfs R as the new /
#   stage1   (PID 1, host view) R gets host /usr read-only (bash, mount, the
#            C tool's libraries), /proc (fresh: new PID namespace) with a fake
#            /proc/cmdline, /dev (tmpfs with device nodes), /run (tmpfs), and
#            PHYS bound at R/sysroot; pivot_root into R
#   stage2   (PID 1, in R: "the initramfs") ostree-prepare-root /sysroot CMDLINE
#            (ours, or with --prepare c ostree's C tool from the host); then
#            a tmpfs on /sysroot/tmp with the harness in /tmp/.h (host /usr
#            read-only at /tmp/.h/usr, results at /tmp/.h/results); move
#            /proc, /dev, /run into /sysroot and pivot_root into it, as an
#            initramfs's switch-root; with --shared `mount --make-rshared /`
#            (what systemd does); then the scenario script runs as a child of
#            PID 1 with busybox's applets first in PATH.
#
# In the booted system (see ul_boot_prelude for the helpers): / is the
# deployment, /sysroot the physical root, /usr/bin/ostree-unlock the tool
# under test, `ostree` the host's real ostree CLI (through its ld.so; also
# a wrapper in PATH, for the clone ostree-unlock --hotfix deploys),
# `setpriv` util-linux's. The script reports with assert.sh's checks (fail,
# note, expect_*), sourced there by busybox sh; boot() copies its output into
# the scenario log and counts its FAIL lines into the host side's FAILURES.

UL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
UL_REPO_ROOT=$(cd "$UL_DIR/../.." && pwd)
MOUNTNS_CACHE=${MOUNTNS_CACHE:-$UL_REPO_ROOT/target/mountns-cache}

##############################################################################
# Caller side (unlock.sh's outer namespace). Needs UL_SCRATCH (a tmpfs),
# UL_UNLOCK and UL_PREPARE (binaries), UL_BUSYBOX, and the fixture.env
# variables (OSNAME, DEPLOY_1, DEPLOY_1_NAME, ...).
##############################################################################

# fail, FAILURES and the shared checks, on the host side too; the tools'
# messages are matched ignoring case (expect_output).
# shellcheck source=assert.sh
source "$UL_DIR/assert.sh"
# shellcheck disable=SC2034 # read by assert.sh
ASSERT_IGNORE_CASE=1

# make_phys NAME: a fresh physical root, mounted at $UL_SCRATCH/NAME (printed).
# Deployments are made immutable, as ostree leaves them. With UL_COMPOSEFS
# set (use_composefs), a copy of composefs-fixture.sh's sysroot instead.
make_phys() {
  local name=$1 src=$UL_SCRATCH/$1.src img=$UL_SCRATCH/$1.img mnt=$UL_SCRATCH/$1 d
  local from=$MOUNTNS_CACHE/sysroot
  if [[ -n ${UL_COMPOSEFS:-} ]]; then from=$MOUNTNS_CACHE/composefs/sysroot; fi
  rm -rf "$src"
  cp -a "$from" "$src"
  for d in "$src/$DEPLOY_1" "$src/$DEPLOY_2"; do
    # New files only: existing ones are hardlinks into the repo.
    install -m 0755 "$UL_BUSYBOX" "$d/usr/bin/busybox"
    install -m 0755 "$UL_UNLOCK" "$d/usr/bin/ostree-unlock"
    install -m 0755 "$UL_UNLOCK_CRASH" "$d/usr/bin/ostree-unlock-crash-hook"
  done
  truncate -s 64M "$img"
  mkfs.ext4 -q -F -L osroot -O ^has_journal -E lazy_itable_init=0 -d "$src" "$img" >/dev/null
  rm -rf "$src"
  mkdir -p "$mnt"
  mount -o loop "$img" "$mnt"
  chattr +i "$mnt/$DEPLOY_1" "$mnt/$DEPLOY_2"
  echo "$mnt"
}

drop_phys() {
  local mnt=$1
  umount "$mnt" 2>/dev/null || umount -l "$mnt"
  rm -f "$mnt.img"
  rmdir "$mnt" 2>/dev/null || true
}

# target_of PHYS NAME: the ostree= value of the (non-pristine) boot entry of
# deployment NAME (CSUM.SERIAL), read from PHYS's boot loader entries.
target_of() {
  local phys=$1 name=$2 entry t
  for entry in "$phys"/boot/loader/entries/*.conf; do
    [[ ${entry##*/} == pristine-*.conf ]] && continue
    t=$(sed -n 's/^options .*ostree=\([^ ]*\).*/\1/p' "$entry")
    [[ -n $t ]] || continue
    if [[ $(basename "$(readlink -f "$phys$t")") == "$name" ]]; then
      echo "$t"
      return 0
    fi
  done
  echo "target_of: no boot entry for $name in $phys/boot/loader/entries" >&2
  return 1
}

# has_immutable PATH: lsattr shows the `i` attribute on directory PATH.
has_immutable() { lsattr -d "$1" 2>/dev/null | awk '{print $1}' | grep -q i; }

# use_composefs: from here on (in this scenario's subshell), the
# physical roots are copies of composefs-fixture.sh's sysroot (made by
# ostree 2026.4, an .ostree.cfs image in each deployment), the fixture
# variables are its, and boot's initramfs has /etc/ostree/prepare-root.conf
# with [composefs] enabled = yes (UL_COMPOSEFS), so that prepare-root
# boots a composefs root. The deployments' /usr is the image's: busybox and
# ostree-unlock are run from the harness ($H/cfs; U points there).
use_composefs() {
  local env=$MOUNTNS_CACHE/composefs/fixture.env
  if [[ ! -f $env ]]; then
    fail "no composefs fixture ($env): run scripts/fetch-composefs-ref.sh, then tests/mountns/composefs-fixture.sh"
    return 1
  fi
  # shellcheck source=/dev/null
  source "$env"
  UL_COMPOSEFS=$'[composefs]\nenabled = yes'
  UL_FIXTURE_ENV=$env
}

UL_BOOTS=0
# boot PHYS [--shared] [--deployment 1|2] [--cmdline STR] [--append STR]
#      [--prepare ours|c] [--tag TAG] [--extra DIR] <<'EOF' (busybox sh script) EOF
# --extra DIR: the host directory DIR is bound at $H/extra in the booted system.
# Default cmdline: "root=LABEL=osroot rw ostree=<entry of deployment 1>".
# Returns non-zero if the boot failed or the script reported a failure
# (both also counted with fail).
boot() {
  local phys=$1 shared=0 dep=1 cmdline="" append="" prepare=ours tag res rc name fails extra=""
  shift
  while (($#)); do
    case $1 in
      --shared) shared=1; shift ;;
      --deployment) dep=$2; shift 2 ;;
      --cmdline) cmdline=$2; shift 2 ;;
      --append) append=$2; shift 2 ;;
      --prepare) prepare=$2; shift 2 ;;
      --tag) tag=$2; shift 2 ;;
      --extra) extra=$2; shift 2 ;;
      *) fail "boot: unknown option $1"; return 2 ;;
    esac
  done
  UL_BOOTS=$((UL_BOOTS + 1))
  tag=${tag:-boot$UL_BOOTS}
  if [[ -z $cmdline ]]; then
    if [[ $dep == 1 ]]; then name=$DEPLOY_1_NAME; else name=$DEPLOY_2_NAME; fi
    cmdline="root=LABEL=osroot rw ostree=$(target_of "$phys" "$name")" || {
      fail "[$tag] no boot entry for deployment $dep"
      return 1
    }
  fi
  cmdline+=${append:+ $append}
  res=$UL_SCRATCH/results/$UL_SCENARIO/$tag
  rm -rf "$res"
  mkdir -p "$res"
  cat >"$res/scenario.sh"
  echo "-- boot $tag ($(basename "$phys"), $( ((shared)) && echo shared || echo private) propagation, $prepare prepare-root): $cmdline"
  # shellcheck disable=SC2016 # $1 is expanded by the child bash
  env UL_PHYS="$phys" UL_SHARED="$shared" UL_CMDLINE="$cmdline" UL_RESULTS="$res" \
    UL_PREPARE_WHICH="$prepare" UL_PREPARE="$UL_PREPARE" UL_OSNAME="$OSNAME" UL_NEWROOT="$UL_SCRATCH/newroot" \
    UL_EXTRA="$extra" UL_COMPOSEFS="${UL_COMPOSEFS:-}" UL_FIXTURE_ENV="${UL_FIXTURE_ENV:-$MOUNTNS_CACHE/fixture.env}" \
    LIBMOUNT_UTAB="$UL_SCRATCH/libmount-utab" \
    timeout --kill-after=5 60 \
    unshare --mount --propagation private --pid --fork --kill-child -- \
    /usr/bin/bash -c 'source "$1" && ul_stage1' ul-stage1 "$UL_DIR/unlock-lib.sh" \
    >"$res/stage.log" 2>&1
  rc=$?
  if [[ ! -f $res/prepare.rc ]]; then
    fail "[$tag] the boot harness failed (exit $rc) before prepare-root ran:"
    sed 's/^/    /' "$res/stage.log"
    return 1
  fi
  if [[ $(cat "$res/prepare.rc") != 0 ]]; then
    fail "[$tag] ostree-prepare-root exited $(cat "$res/prepare.rc"):"
    sed 's/^/    /' "$res/prepare.out"
    return 1
  fi
  if [[ ! -f $res/script.rc ]]; then
    fail "[$tag] the scenario script did not complete (exit $rc):"
    sed 's/^/    /' "$res/stage.log" "$res/script.log" 2>/dev/null
    return 1
  fi
  sed 's/^/  /' "$res/script.log"
  fails=$(grep -c '^FAIL' "$res/script.log")
  FAILURES=$((FAILURES + fails))
  if [[ $(cat "$res/script.rc") != 0 ]] && ((fails == 0)); then
    fail "[$tag] the scenario script exited $(cat "$res/script.rc")"
    return 1
  fi
  ((fails == 0))
}

##############################################################################
# Stage 1: new mount + PID namespace, host view; build R and pivot into it.
##############################################################################

ul_stage1() {
  set -euo pipefail
  local r=$UL_NEWROOT
  mkdir -p "$r"
  # The initramfs: host /usr read-only (bash, mount, pivot_root; the C
  # tool and its libraries), our tool on R itself.
  # shellcheck source=rootfs.sh
  source "$UL_DIR/rootfs.sh"
  mountns_root "$r" h
  mount -t tmpfs -o mode=0755 dev "$r/dev"
  mountns_dev_nodes "$r/dev"
  mount -t proc proc "$r/proc"
  printf '%s\n' "$UL_CMDLINE" >"$r/h/cmdline"
  mount --bind "$r/h/cmdline" "$r/proc/cmdline"
  mount -t tmpfs -o mode=0755 run "$r/run"
  mount --bind "$UL_PHYS" "$r/sysroot"
  install -m 0755 "$UL_PREPARE" "$r/h/ostree-prepare-root"
  cp "$UL_DIR/unlock-lib.sh" "$UL_DIR/assert.sh" "$UL_RESULTS/scenario.sh" "$r/h/"
  cp "$UL_FIXTURE_ENV" "$r/h/fixture.env"
  if [[ -n $UL_EXTRA ]]; then
    mkdir "$r/h/extra"
    mount --bind "$UL_EXTRA" "$r/h/extra"
  fi
  if [[ -n $UL_COMPOSEFS ]]; then
    # The initramfs's prepare-root.conf, and the tools the image lacks.
    mkdir -p "$r/etc/ostree" "$r/h/cfs"
    printf '%s\n' "$UL_COMPOSEFS" >"$r/etc/ostree/prepare-root.conf"
    install -m 0755 "$UL_BUSYBOX" "$r/h/cfs/busybox"
    install -m 0755 "$UL_UNLOCK" "$r/h/cfs/ostree-unlock"
  fi
  mkdir "$r/h/results"
  mount --bind "$UL_RESULTS" "$r/h/results"
  cd "$r"
  pivot_root . .oldroot
  export LIBMOUNT_UTAB=/h/libmount-utab
  umount -l /.oldroot
  rmdir /.oldroot
  exec /usr/bin/bash -c 'source /h/unlock-lib.sh && ul_stage2' ul-stage2
}

##############################################################################
# Stage 2: PID 1 in R (the initramfs): prepare, switch root, run the script.
##############################################################################

ul_stage2() {
  set -uo pipefail
  cd /
  local tool=/h/ostree-prepare-root rc
  local -a argv=(/sysroot "$UL_CMDLINE")
  if [[ $UL_PREPARE_WHICH == c ]]; then
    tool=/usr/lib/ostree/ostree-prepare-root # the host's, 2022.7: reads /proc/cmdline
    argv=(/sysroot)
  fi
  env -i PATH=/usr/sbin:/usr/bin timeout 30 "$tool" "${argv[@]}" \
    >/h/results/prepare.out 2>&1 </dev/null
  rc=$?
  echo "$rc" >/h/results/prepare.rc
  ((rc == 0)) || exit 1
  set -e
  # /var as ostree's generator mounts it (the stateroot's var); /var/tmp is
  # where ostree 2022.7 keeps development overlays.
  mount --bind "/sysroot/sysroot/ostree/deploy/$UL_OSNAME/var" /sysroot/var
  { mkdir -p /sysroot/var/tmp && chmod 1777 /sysroot/var/tmp; } 2>/dev/null || true # not on a read-only fs
  # The booted system's /tmp, holding the harness.
  mount -t tmpfs -o mode=1777 tmp /sysroot/tmp
  mkdir -p /sysroot/tmp/.h/usr /sysroot/tmp/.h/results /sysroot/tmp/.h/bin /sysroot/tmp/.h/oldroot
  mount --bind /usr /sysroot/tmp/.h/usr
  mount -o remount,bind,ro /sysroot/tmp/.h/usr
  mount --bind /h/results /sysroot/tmp/.h/results
  cp /h/unlock-lib.sh /h/assert.sh /h/fixture.env /h/scenario.sh /sysroot/tmp/.h/
  if [[ -n $UL_EXTRA ]]; then
    mkdir /sysroot/tmp/.h/extra
    mount --bind /h/extra /sysroot/tmp/.h/extra
  fi
  local bb=/usr/bin/busybox
  if [[ -n $UL_COMPOSEFS ]]; then
    cp -a /h/cfs /sysroot/tmp/.h/cfs
    bb=/tmp/.h/cfs/busybox
  fi
  # switch root, as an initramfs does
  mount --move /proc /sysroot/proc
  mount --move /dev /sysroot/dev
  mount --move /run /sysroot/run
  cd /sysroot
  /usr/sbin/pivot_root . tmp/.h/oldroot
  cd /
  $bb umount -l /tmp/.h/oldroot
  $bb rmdir /tmp/.h/oldroot
  if ((UL_SHARED)); then $bb mount --make-rshared /; fi
  $bb --install -s /tmp/.h/bin
  # The host's real ostree CLI as a program in PATH (ostree-unlock --hotfix
  # runs it for the pristine clone), through the host's dynamic loader.
  printf '#!/tmp/.h/bin/sh\nexec /tmp/.h/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 --library-path /tmp/.h/usr/lib/x86_64-linux-gnu /tmp/.h/usr/bin/ostree "$@"\n' >/tmp/.h/bin/ostree
  $bb chmod 0755 /tmp/.h/bin/ostree
  set +e
  # The script, as a child of PID 1 (which stays in this mount namespace).
  # shellcheck disable=SC2016 # expanded by busybox sh
  $bb env -i PATH=/tmp/.h/bin:/usr/sbin:/usr/bin HOME=/ UL_SHARED="$UL_SHARED" UL_COMPOSEFS="$UL_COMPOSEFS" \
    $bb sh -c '. /tmp/.h/fixture.env && . /tmp/.h/assert.sh && eval "$(sed -n "/^#BEGIN-PRELUDE/,/^#END-PRELUDE/p" /tmp/.h/unlock-lib.sh)" && . /tmp/.h/scenario.sh' \
    >/tmp/.h/results/script.log 2>&1 </dev/null
  rc=$?
  echo "$rc" >/tmp/.h/results/script.rc
}

##############################################################################
# The helpers of scenario scripts (busybox sh, in the booted system), on top
# of assert.sh's checks.
##############################################################################
# Extracted (between the markers) and evaluated by the script's busybox sh.
: <<'PRELUDE'
#BEGIN-PRELUDE
ASSERT_IGNORE_CASE=1
H=/tmp/.h
U=/usr/bin/ostree-unlock
# The same, built with the crash-hook feature (OSTREE_UNLOCK_STOP_AFTER).
UC=/usr/bin/ostree-unlock-crash-hook
# On a composefs root, /usr is the image's: the tool is the harness's copy.
if [ -n "$UL_COMPOSEFS" ]; then U=$H/cfs/ostree-unlock; fi
PHYS=/sysroot
D1=$PHYS/$DEPLOY_1
D2=$PHYS/$DEPLOY_2
BK1=$PHYS/ostree/deploy/$OSNAME/backing/$DEPLOY_1_NAME
BK2=$PHYS/ostree/deploy/$OSNAME/backing/$DEPLOY_2_NAME
STATE1=/run/ostree/deployment-state/$DEPLOY_1_NAME
# Host programs through the host's dynamic loader.
hostrun() {
  "$H/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" --library-path "$H/usr/lib/x86_64-linux-gnu" "$@"
}
ostree() { hostrun "$H/usr/bin/ostree" "$@"; }
setpriv() { hostrun "$H/usr/bin/setpriv" "$@"; }
# run TAG CMD...: run CMD, output in $H/results/TAG.out (stdout+stderr), exit
# in LAST_RC, TAG in LAST_NAME (what assert.sh's expect_success,
# expect_output... read).
run() {
  _tag=$1
  shift
  "$@" >"$H/results/$_tag.out" 2>&1 </dev/null
  LAST_RC=$?
  LAST_NAME=$_tag
  echo "\$ $* -> exit $LAST_RC"
  sed 's/^/    | /' "$H/results/$_tag.out"
}
last_output() { cat "$H/results/$LAST_NAME.out"; }
# top_mounts PATH: the mountinfo lines of the mounts on PATH, bottom first;
# top_mount PATH: the visible one.
top_mounts() { awk -v p="$1" '$5 == p' /proc/self/mountinfo; }
top_mount() { top_mounts "$1" | tail -n 1; }
usr_mounts() { top_mounts /usr | wc -l; }
usr_fstype() { top_mount /usr | sed 's/.* - \([^ ]*\) .*/\1/'; }
expect_usr_overlay() { [ "$(usr_fstype)" = overlay ] || fail "/usr is not an overlay: $(top_mount /usr)${1:+ ($1)}"; }
expect_usr_pristine() {
  [ "$(usr_fstype)" != overlay ] || fail "/usr is an overlay, expected the pristine bind: $(top_mount /usr)${1:+ ($1)}"
  expect_not_writable /usr "${1:-pristine /usr}"
  [ "$(cat /usr/share/which-deployment 2>/dev/null)" = A ] || fail "/usr is not deployment 1's${1:+ ($1)}"
}
# mode_of PATH: "TYPE MODE UID GID" with stat's %F (the type in words) and
# octal %a.
mode_of() { stat -c '%F %a %u %g' "$1" 2>/dev/null; }
origin_unlocked() { sed -n 's/^unlocked=//p' "$PHYS/ostree/deploy/$OSNAME/deploy/$1.origin"; }
# status_says STATE: ostree-unlock --status and real `ostree admin status`
# agree on STATE (none: no Unlocked: line for the booted deployment).
status_says() {
  run status $U --status
  expect_success "--status"
  expect_output "Unlocked: $1\$" "Unlocked: $1"
  run ostree-status ostree admin status
  expect_success "real ostree admin status"
  if [ "$1" = none ]; then
    expect_no_output "Unlocked:" "no Unlocked: line (state none)"
  else
    # the booted deployment's block: from its "* " line to the next deployment
    _blk=$(last_output | awk '/^\* /{b=1; print; next} /^  [^ ]/{b=0} b')
    echo "$_blk" | grep -qE "Unlocked: $1\$" || fail "real ostree admin status: booted deployment not 'Unlocked: $1'"
  fi
}
#END-PRELUDE
PRELUDE
