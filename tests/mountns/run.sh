#!/usr/bin/env bash
# run.sh - mount-namespace scenarios for ostree-prepare-root.
#
# Usage: run.sh [--impl PATH] [--impl-wrapper EMU] [--ref PATH] [--keep DIR] [-v] [FILTER]
#   --impl  binary under test (default: <repo>/target/x86_64-unknown-linux-musl/
#           release/ostree-prepare-root)
#   --impl-wrapper  run it under this emulator (qemu-arm-static...: a binary
#           of another CPU); every scenario runs (all pass under qemu-user)
#   --ref   reference binary for comparisons (default: the C tool,
#           /usr/lib/ostree/ostree-prepare-root)
#   --keep  copy every run's results (tool output, mount dumps) to DIR
#   -v      print the log of passing scenarios too
#   FILTER  extended regex; only scenarios whose name matches run
# Must run as root. Prints TAP; the last line is "N passed, M failed"; the
# exit status is non-zero if any scenario failed.
#
# Everything happens in private mount namespaces: run.sh re-executes itself
# in one (scratch tmpfs for results), and each tool run gets its own nested
# namespace with a tmpfs pivoted in as / (see service-lib.sh). The checks
# (expect_*) are assert.sh's and service-lib.sh's; tests/mountns/README.md
# tells how to add a scenario.
# assert.sh's checks take an optional WHAT; calls without it are fine.
# shellcheck disable=SC2119
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=service-lib.sh
source "$HERE/service-lib.sh"

# shellcheck source=tap.sh
source "$HERE/tap.sh"

##############################################################################
# Shared setup functions (run inside R, before the tool; errexit is on).
# R, PHYS, D1, D2, T1, T2, SVAR and fixture.env's variables: see service-lib.sh.
##############################################################################
# shellcheck disable=SC2153 # PHYS, D1, ... are assigned by service-lib.sh in the namespace

# Legacy switch read by every version: ostree/repo/config of the physical root.
setup_repo_ro() { printf '\n[sysroot]\nreadonly=true\n' >>"$PHYS/ostree/repo/config"; }

setup_conf_ro() {
  mkdir -p "$R/etc/ostree"
  printf '[sysroot]\nreadonly=true\n' >"$R/etc/ostree/prepare-root.conf"
}

# What `ostree admin unlock --hotfix` leaves in the deployment.
setup_hotfix() {
  local mode
  mode=$(stat -c %a "$D1/usr")
  mkdir -m "$mode" "$D1/.usr-ovl-upper" "$D1/.usr-ovl-work"
}

setup_var_marker() {
  mkdir -m 0755 "$R/run/ostree"
  : >"$R/run/ostree/initramfs-mount-var"
}

# The bootlink directory of the fixture's entries, e.g. /ostree/boot.0/testos.
bootlink_dir() { dirname "$(dirname "$T1")"; }

##############################################################################
# Shared checks (run inside R, after the tool)
##############################################################################

check_boots_1() { expect_success; expect_deployment 1; }
check_boots_2() { expect_success; expect_deployment 2; }

# A failed run must leave no trace in the mount table.
check_refused() { expect_failure; expect_mounts_unchanged; }

check_plain() {
  expect_success
  expect_deployment 1
  expect_file /sysroot/usr/etc/os-release
  grep -qx 'VERSION=1' /sysroot/usr/etc/os-release || fail "/sysroot/usr/etc/os-release is not deployment 1's"
  expect_mount /sysroot/usr 'mnt=ro'
  expect_not_writable /sysroot/usr
  expect_mount /sysroot/sysroot 'root=/ ' 'dev=physroot'
  expect_file /sysroot/sysroot/ostree/repo/config
  # boot/loader is a symlink on the physical root, so /boot is bound.
  expect_mount /sysroot/boot 'root=/boot ' 'dev=physroot'
  expect_no_mount /sysroot/etc
  expect_ostree_booted_valid
  expect_mode /run/ostree d 755
  expect_mode /run/ostree/.private d 0
}

check_ro() {
  expect_success
  expect_deployment 1
  expect_mount /sysroot/sysroot 'mnt=ro'
  expect_not_writable /sysroot/sysroot
  expect_mount /sysroot/etc 'mnt=rw' 'dev=physroot'
  expect_writable /sysroot/etc
  expect_mount "$(phys_after "$STATEROOT_VAR")" 'mnt=rw'
  expect_writable "$(phys_after "$STATEROOT_VAR")"
  expect_file /run/ostree-sysroot-ro.stamp
}

check_hotfix_overlay() {
  expect_mount /sysroot/usr 'type=overlay' 'mnt=rw'
  expect_can_create /sysroot/usr/mountns-hotfix
  expect_file "$(phys_after "$DEPLOY_1")/.usr-ovl-upper/mountns-hotfix"
  expect_no_file "$(phys_after "$DEPLOY_1")/usr/mountns-hotfix"
}

# /usr came up as the pristine read-only bind, and the tool said why.
check_hotfix_refused() {
  expect_success
  expect_mount /sysroot/usr 'dev=physroot' 'mnt=ro'
  expect_not_writable /sysroot/usr
  expect_output '\.usr-ovl-upper' '.usr-ovl-upper'
}

check_var_bound() {
  expect_success
  expect_mount /sysroot/var "root=/$STATEROOT_VAR " 'dev=physroot' 'mnt=rw'
  expect_can_create /sysroot/var/mountns-var
  expect_file "$(phys_after "$STATEROOT_VAR")/mountns-var"
}

##############################################################################
# Scenarios (run in the order they are registered).
#
# Comparisons with the reference (`compare`) diff the normalized trees under
# /sysroot (format: normalize.py). Against the C 2022.7 tool no --filter is
# needed: the one expected difference, the spelling of the hotfix overlay's
# lowerdir/upperdir/workdir (2022.7: relative "usr"; later versions:
# "/sysroot.tmp/usr", a path gone after the switch), is already folded by
# the normalizer to ".../usr". Markers in /run (mode and content of
# /run/ostree-booted, /run/ostree) are not part of the tree; the impl's are
# checked directly (plain, booted_metadata).
##############################################################################

scenario plain "deployment 1 boots: layout, /run markers, same tree as the reference"
t_plain() { compare "$IMPL" "$REF" --label plain --check check_plain; }

scenario second_deployment "ostree= of the second boot entry selects deployment 2"
t_second_deployment() {
  compare "$IMPL" "$REF" --label second --cmdline "root=LABEL=osroot rw ostree=$T2" --check check_boots_2
}

scenario readonly_repo_config "[sysroot] readonly=true in ostree/repo/config"
t_readonly_repo_config() {
  compare "$IMPL" "$REF" --label ro-repo --setup setup_repo_ro --check check_ro
}

scenario readonly_prepare_root_conf "[sysroot] readonly=true in /etc/ostree/prepare-root.conf"
t_readonly_prepare_root_conf() {
  # 2022.7 does not read prepare-root.conf: compare against its legacy switch.
  compare "$IMPL" "$REF" --label ro-conf --setup-a setup_conf_ro --setup-b setup_repo_ro --check check_ro
}

scenario etc_conf_replaces_usr_conf "/etc/ostree/prepare-root.conf replaces the /usr/lib one whole"
setup_conf_override() {
  printf '[sysroot]\nreadonly=true\n' >"$R/usr/lib/ostree/prepare-root.conf"
  mkdir -p "$R/etc/ostree"
  printf '[etc]\ntransient=false\n' >"$R/etc/ostree/prepare-root.conf"
}
check_not_readonly() {
  check_boots_1
  expect_mount /sysroot/sysroot 'mnt=rw'
  expect_writable /sysroot/sysroot
  expect_no_mount /sysroot/etc
  expect_no_file /run/ostree-sysroot-ro.stamp
}
t_etc_conf_replaces_usr_conf() {
  ns_run --impl "$IMPL" --label conf-override --setup setup_conf_override --check check_not_readonly
}

scenario etc_transient "[etc] transient=true: /etc is an overlay with its upper under /run"
setup_etc_transient() {
  mkdir -p "$R/etc/ostree"
  printf '[etc]\ntransient=true\n' >"$R/etc/ostree/prepare-root.conf"
}
check_etc_transient() {
  local uppers
  check_boots_1
  # Upstream uses a mkdtemp name (transient-etc.XXXXXX); ours is fixed
  # (transient-etc): /run is fresh at every boot, so there is nothing to avoid.
  expect_mount /sysroot/etc 'type=overlay' 'upper=/run/ostree/transient-etc(\.\*)?/'
  expect_file /sysroot/etc/os-release
  expect_can_create /sysroot/etc/mountns-transient
  uppers=$(find /run/ostree -path '/run/ostree/transient-etc*/mountns-transient' 2>/dev/null)
  [[ -n $uppers ]] || fail "file written to /sysroot/etc not found under /run/ostree/transient-etc*"
  expect_no_file "$(phys_after "$DEPLOY_1")/etc/mountns-transient"
}
t_etc_transient() {
  ns_run --impl "$IMPL" --label etc-transient --setup setup_etc_transient --check check_etc_transient
}

scenario hotfix ".usr-ovl-upper + .usr-ovl-work: /usr is a writable persistent overlay"
check_hotfix() { check_boots_1; check_hotfix_overlay; }
t_hotfix() { compare "$IMPL" "$REF" --label hotfix --setup setup_hotfix --check check_hotfix; }

scenario hotfix_work_only "only .usr-ovl-work: pristine read-only /usr and a message"
setup_work_only() { mkdir "$D1/.usr-ovl-work"; }
t_hotfix_work_only() {
  ns_run --impl "$IMPL" --label hotfix-work-only --setup setup_work_only --check check_hotfix_refused
}

scenario hotfix_symlink ".usr-ovl-upper is a symlink: hotfix refused, read-only /usr"
setup_upper_symlink() {
  mkdir -p "$PHYS/etc" # make the symlink's target exist, as an attacker would
  ln -s /sysroot/etc "$D1/.usr-ovl-upper"
  mkdir "$D1/.usr-ovl-work"
}
t_hotfix_symlink() {
  ns_run --impl "$IMPL" --label hotfix-symlink --setup setup_upper_symlink --check check_hotfix_refused
}

scenario hotfix_readonly "hotfix + readonly=true: /usr overlay writable, /sysroot/sysroot read-only"
setup_hotfix_ro() { setup_hotfix; setup_repo_ro; }
check_hotfix_ro() {
  check_boots_1
  check_hotfix_overlay
  expect_mount /sysroot/sysroot 'mnt=ro'
  expect_not_writable /sysroot/sysroot
}
t_hotfix_readonly() {
  ns_run --impl "$IMPL" --label hotfix-ro --setup setup_hotfix_ro --check check_hotfix_ro
}

scenario hotfix_ro_superblock "hotfix with the physical root mounted ro (kernel 'ro'): /usr writable"
setup_hotfix_rofs() {
  setup_hotfix
  mount -o remount,ro "$PHYS"
}
check_hotfix_rofs() {
  check_boots_1
  expect_mount /sysroot/usr 'type=overlay'
  expect_writable /sysroot/usr
  echo "note: physical root afterwards: $(mount_line /sysroot/sysroot)"
}
t_hotfix_ro_superblock() {
  ns_run --impl "$IMPL" --label hotfix-rofs --setup setup_hotfix_rofs --check check_hotfix_rofs
}

scenario mount_var_marker "/run/ostree/initramfs-mount-var: /sysroot/var is the stateroot var"
t_mount_var_marker() {
  compare "$IMPL" "$REF" --label var-marker --setup setup_var_marker --check check_var_bound
}

scenario mount_var_flag "--mount-var: /sysroot/var is the stateroot var"
t_mount_var_flag() {
  ns_run --impl "$IMPL" --label var-flag --arg --mount-var --check check_var_bound
}

scenario no_boot_loader "no boot/loader symlink on the physical root: /boot not bound"
setup_no_loader() { rm "$PHYS/boot/loader"; }
check_no_boot() { check_boots_1; expect_no_mount /sysroot/boot; }
t_no_boot_loader() {
  compare "$IMPL" "$REF" --label no-loader --setup setup_no_loader --check check_no_boot
}

scenario cmdline_quoting "quoted kernel arguments: foo=\"bar baz\" and \"ostree=...\""
t_cmdline_quoting() {
  local rc=0
  ns_run --impl "$IMPL" --label quoted-other --cmdline "foo=\"bar baz\" ostree=$T1 quiet" \
    --check check_boots_1 || rc=1
  ns_run --impl "$IMPL" --label quoted-ostree --cmdline "\"ostree=$T2\" rw" \
    --check check_boots_2 || rc=1
  return "$rc"
}

scenario duplicate_ostree "ostree= given twice: the first wins"
t_duplicate_ostree() {
  compare "$IMPL" "$REF" --label duplicate --cmdline "ostree=$T1 ostree=$T2" --check check_boots_1
}

scenario xostree "xostree= is not ostree="
t_xostree() {
  ns_run --impl "$IMPL" --label xostree --cmdline "xostree=$T2 ostree=$T1" --check check_boots_1
}

scenario after_double_dash "ostree= after -- belongs to init: refused"
check_double_dash() { check_refused; expect_output 'ostree'; }
t_after_double_dash() {
  ns_run --impl "$IMPL" --label double-dash --cmdline "quiet -- ostree=$T1" --check check_double_dash
}

scenario no_ostree_karg "no ostree= (and an empty command line): refused"
check_no_karg() { check_refused; expect_output 'ostree='; }
t_no_ostree_karg() {
  local rc=0
  ns_run --impl "$IMPL" --label no-karg --cmdline "root=LABEL=osroot rw quiet" --check check_no_karg || rc=1
  ns_run --impl "$IMPL" --label empty-cmdline --cmdline "" --check check_no_karg || rc=1
  return "$rc"
}

scenario missing_target "ostree= names nothing: refused, deployments listed"
check_missing_target() {
  check_refused
  expect_output "$(dirname "$T1")/7" "the ostree= path"
  expect_output "$DEPLOY_1_NAME" "deployment 1 ($DEPLOY_1_NAME)"
  expect_output "$DEPLOY_2_NAME" "deployment 2 ($DEPLOY_2_NAME)"
}
t_missing_target() {
  ns_run --impl "$IMPL" --label missing-target --cmdline "rw ostree=$(dirname "$T1")/7" \
    --check check_missing_target
}

scenario target_is_directory "ostree= names a real directory, not a bootlink symlink: refused"
t_target_is_directory() {
  ns_run --impl "$IMPL" --label target-dir --cmdline "rw ostree=/$DEPLOY_1" --check check_refused
}

scenario target_escapes "ostree= symlink escapes the sysroot (../ or absolute): refused"
# Design: targets must be relative and never climb above the physical root.
setup_evil_links() {
  local evil
  evil=$PHYS$(bootlink_dir)/evil
  mkdir -p "$evil"
  ln -s ../../../../../../etc "$evil/0"
  ln -s "/sysroot/$DEPLOY_1" "$evil/1"
  ln -s ../../../repo "$evil/2"
}
t_target_escapes() {
  local rc=0 dir
  dir=$(bootlink_dir)/evil
  ns_run --impl "$IMPL" --label escape-dotdot --cmdline "rw ostree=$dir/0" \
    --setup setup_evil_links --check check_refused || rc=1
  ns_run --impl "$IMPL" --label escape-absolute --cmdline "rw ostree=$dir/1" \
    --setup setup_evil_links --check check_refused || rc=1
  return "$rc"
}

scenario target_not_deployment "ostree= resolves inside the sysroot but not to a deployment: refused"
t_target_not_deployment() {
  ns_run --impl "$IMPL" --label not-deployment --cmdline "rw ostree=$(bootlink_dir)/evil/2" \
    --setup setup_evil_links --check check_refused
}

scenario composefs "[composefs] enabled: yes/signed refused, maybe/no boot, karg =0 overrides"
# CFS_FILE / CFS_VALUE come from --env.
setup_composefs() {
  mkdir -p "$(dirname "$R$CFS_FILE")"
  printf '[composefs]\nenabled=%s\n' "$CFS_VALUE" >"$R$CFS_FILE"
}
check_cfs_refused() { check_refused; expect_output 'composefs'; }
t_composefs() {
  local rc=0 usr=CFS_FILE=/usr/lib/ostree/prepare-root.conf etc=CFS_FILE=/etc/ostree/prepare-root.conf
  ns_run --impl "$IMPL" --label cfs-yes --env "$usr" --env CFS_VALUE=yes \
    --setup setup_composefs --check check_cfs_refused || rc=1
  ns_run --impl "$IMPL" --label cfs-maybe --env "$usr" --env CFS_VALUE=maybe \
    --setup setup_composefs --check check_boots_1 || rc=1
  ns_run --impl "$IMPL" --label cfs-no --env "$etc" --env CFS_VALUE=no \
    --setup setup_composefs --check check_boots_1 || rc=1
  ns_run --impl "$IMPL" --label cfs-signed --env "$etc" --env CFS_VALUE=signed \
    --setup setup_composefs --check check_cfs_refused || rc=1
  ns_run --impl "$IMPL" --label cfs-yes-karg0 --env "$usr" --env CFS_VALUE=yes \
    --cmdline "rw ostree=$T1 ostree.prepare-root.composefs=0" \
    --setup setup_composefs --check check_boots_1 || rc=1
  return "$rc"
}

scenario malformed_conf "malformed prepare-root.conf: refused, message names file and line"
setup_malformed_conf() {
  mkdir -p "$R/etc/ostree"
  printf '[sysroot]\nreadonly=false\nthis is not valid\n' >"$R/etc/ostree/prepare-root.conf"
}
check_malformed_conf() {
  check_refused
  expect_output '/etc/ostree/prepare-root\.conf' "the file path"
  expect_output '(^|[^0-9])3([^0-9]|$)' "line 3"
}
t_malformed_conf() {
  ns_run --impl "$IMPL" --label malformed-conf --setup setup_malformed_conf --check check_malformed_conf
}

scenario preexisting_run_ostree "/run/ostree and /run/ostree/.private already exist: boots"
setup_run_ostree() { mkdir -m 0755 "$R/run/ostree"; mkdir -m 0 "$R/run/ostree/.private"; }
check_preexisting() {
  check_boots_1
  expect_mode /run/ostree d 755
  expect_mode /run/ostree/.private d 0
}
t_preexisting_run_ostree() {
  ns_run --impl "$IMPL" --label run-ostree-exists --setup setup_run_ostree --check check_preexisting
}

scenario rollback "a step fails after mounts were made: all undone; repaired, a rerun boots"
# readonly=true needs the deployment's /etc bound writable; without D/etc
# that step fails after /sysroot itself and /boot were prepared.
setup_no_etc() { setup_repo_ro; mv "$D1/etc" "$D1/etc.away"; }
check_rollback() {
  check_refused
  expect_output '(^|[^a-z])etc([^a-z]|$)' "the missing etc path"
  mv "$D1/etc.away" "$D1/etc" || fail "could not repair $D1/etc"
  run_tool rerun
  expect_success
  expect_deployment 1
  expect_mount /sysroot/etc 'mnt=rw'
}
t_rollback() { ns_run --impl "$IMPL" --label rollback --setup setup_no_etc --check check_rollback; }

scenario booted_metadata "/run/ostree-booted: a{sv} with sysroot-ro and backing-root-device-inode"
setup_stat_deploy() { stat -c '%d %i' "$D1" >/results/deploy-stat; }
setup_stat_deploy_ro() { setup_stat_deploy; setup_repo_ro; }
check_booted_metadata() {
  local dev ino entry
  check_boots_1
  expect_ostree_booted_valid
  expect_mode /run/ostree-booted f 644
  entry=$(booted_entry sysroot-ro)
  [[ $entry == "b $WANT_RO" ]] || fail "sysroot-ro is '${entry:-absent}', expected 'b $WANT_RO'"
  read -r dev ino </results/deploy-stat
  entry=$(booted_entry backing-root-device-inode)
  [[ $entry == "(tt) ($dev, $ino)" ]] ||
    fail "backing-root-device-inode is '${entry:-absent}', expected '(tt) ($dev, $ino)'"
  check_no_leftovers
}
# Only the documented markers may be left in /run (no temp files).
check_no_leftovers() {
  local extra
  extra=$(dump_run | cut -d' ' -f1 |
    grep -vxE '/run/ostree(/\.private)?|/run/ostree-booted|/run/ostree-sysroot-ro\.stamp' || true)
  [[ -z $extra ]] || fail "unexpected entries in /run: $(echo "$extra" | tr '\n' ' ')"
}
t_booted_metadata() {
  local rc=0
  ns_run --impl "$IMPL" --label booted-rw --env WANT_RO=false --setup setup_stat_deploy \
    --check check_booted_metadata || rc=1
  ns_run --impl "$IMPL" --label booted-ro --env WANT_RO=true --setup setup_stat_deploy_ro \
    --check check_booted_metadata || rc=1
  return "$rc"
}

scenario closed_std_fds "started with stdin, stdout and stderr closed: boots, /run/ostree-booted intact"
check_closed_std_fds() {
  check_boots_1
  expect_ostree_booted_valid
  check_no_leftovers
}
t_closed_std_fds() {
  ns_run --impl "$IMPL" --label closed-std-fds --env NS_CLOSE_STD=1 --check check_closed_std_fds
}

scenario dry_run "--dry-run: prints the plan, changes nothing"
check_dry_run() {
  expect_success
  expect_output "$DEPLOY_1_NAME" "the deployment path"
  expect_mounts_unchanged
  expect_run_unchanged
}
t_dry_run() { ns_run --impl "$IMPL" --label dry-run --arg --dry-run --check check_dry_run; }

scenario proc_cmdline "no argv[2]: the command line comes from /proc/cmdline"
t_proc_cmdline() {
  ns_run --impl "$IMPL" --label proc-cmdline --no-argv-cmdline \
    --cmdline "root=LABEL=osroot rw ostree=$T2" --check check_boots_2
}

scenario backing_leftovers "unlock leftovers of every deployment, and a gone deployment's backing, removed at any depth; no symlink followed"
setup_backing_leftovers() {
  local b=$PHYS/ostree/deploy/$OSNAME/backing
  mkdir -p "$b/$DEPLOY_1_NAME/usr-transient/upper/a/b/c" "$b/$DEPLOY_2_NAME/hotfix-discarded-upper/etc" \
    "$b/$DEPLOY_2_NAME/not-an-unlock-leftover" "$b/0000.0/usr-transient/work"
  : >"$b/$DEPLOY_1_NAME/usr-transient/upper/a/b/c/f"
  mkdir -p "$PHYS/outside"
  : >"$PHYS/outside/precious"
  ln -s /sysroot/outside "$b/$DEPLOY_1_NAME/usr-transient/upper/link"
  # A second stateroot whose backing is a symlink out of its place.
  mkdir -p "$PHYS/ostree/deploy/other/deploy"
  ln -s ../../../outside "$PHYS/ostree/deploy/other/backing"
}
check_backing_leftovers() {
  local b
  check_boots_1
  b=$(phys_after "ostree/deploy/$OSNAME/backing")
  expect_no_file "$b/$DEPLOY_1_NAME/usr-transient" "the booting deployment's development data"
  expect_no_file "$b/$DEPLOY_2_NAME/hotfix-discarded-upper" "the other deployment's discarded hotfix"
  expect_file "$b/$DEPLOY_2_NAME/not-an-unlock-leftover" "data that is not an unlock's"
  expect_no_file "$b/0000.0" "the backing directory of a deployment that is gone"
  expect_file "$(phys_after outside/precious)" "what a symlink points to"
  expect_output "other/backing" "the symlinked backing, named"
}
t_backing_leftovers() {
  ns_run --impl "$IMPL" --label backing-leftovers --setup setup_backing_leftovers --check check_backing_leftovers
}

scenario malformed_repo_config "a malformed ostree/repo/config (missing ], readonly=yes, not UTF-8, a FIFO): a warning, and the deployment boots, sysroot writable"
setup_repo_missing_bracket() { printf '\n[sysroot\nreadonly=true\n' >>"$PHYS/ostree/repo/config"; }
setup_repo_readonly_yes() { printf '\n[sysroot]\nreadonly=yes\n' >>"$PHYS/ostree/repo/config"; }
setup_repo_not_utf8() { printf '\n[sysroot]\nreadonly=true\n# \xff\xfe\n' >>"$PHYS/ostree/repo/config"; }
setup_repo_fifo() { rm "$PHYS/ostree/repo/config" && mkfifo "$PHYS/ostree/repo/config"; }
check_malformed_repo_config() {
  check_boots_1
  expect_output 'ostree/repo/config' "a warning naming the repo config"
  expect_not_writable /sysroot/usr
  expect_mount /sysroot/sysroot 'mnt=rw'
}
t_malformed_repo_config() {
  local how rc=0
  for how in missing_bracket readonly_yes not_utf8 fifo; do
    ns_run --impl "$IMPL" --label "repo-config-$how" --setup "setup_repo_$how" --check check_malformed_repo_config || rc=1
  done
  return $rc
}

scenario fifo_prepare_root_conf "prepare-root.conf is a FIFO: refused at once, naming the file (no hang)"
setup_conf_fifo() {
  mkdir -p "$R/etc/ostree"
  mkfifo "$R/etc/ostree/prepare-root.conf"
}
check_conf_fifo() {
  check_refused
  expect_output '/etc/ostree/prepare-root\.conf.*not a regular file|not a regular file.*/etc/ostree/prepare-root\.conf' "the file, not a regular file"
}
t_fifo_prepare_root_conf() {
  ns_run --impl "$IMPL" --label fifo-conf --setup setup_conf_fifo --check check_conf_fifo
}

scenario symlinked_mount_points "a mount point in the deployment that is a symlink (usr, sysroot, etc): refused, nothing mounted outside, all undone"
setup_link_usr() { mkdir -p "$PHYS/elsewhere"; mv "$D1/usr" "$D1/usr.real" && ln -s /elsewhere "$D1/usr"; }
setup_link_sysroot() { mkdir -p "$PHYS/elsewhere"; rmdir "$D1/sysroot" && ln -s /elsewhere "$D1/sysroot"; }
setup_link_etc() { setup_repo_ro; mkdir -p "$PHYS/elsewhere"; mv "$D1/etc" "$D1/etc.real" && ln -s /elsewhere "$D1/etc"; }
check_symlinked_mount_point() {
  check_refused
  expect_output 'Too many levels of symbolic links|ELOOP' "the symlink named by its errno"
}
t_symlinked_mount_points() {
  local what rc=0
  for what in usr sysroot etc; do
    ns_run --impl "$IMPL" --label "link-$what" --setup "setup_link_$what" --check check_symlinked_mount_point || rc=1
  done
  return $rc
}

scenario rerun "a second boot of the same physical root (new namespace) works"
check_rerun() { check_boots_1; expect_mount /sysroot/usr 'mnt=ro'; }
t_rerun() {
  local rc=0 phys=$NS_SCRATCH/persistent-physroot
  # Its own tmpfs, so the bind in each run shows root=/ like a real disk.
  mkdir -p "$phys"
  mount -t tmpfs -o mode=0755 physroot "$phys"
  cp -a "$MOUNTNS_CACHE/sysroot/." "$phys/"
  ns_run --impl "$IMPL" --label rerun-1 --physroot "$phys" --check check_rerun || rc=1
  ns_run --impl "$IMPL" --label rerun-2 --physroot "$phys" --check check_rerun || rc=1
  umount "$phys"
  return "$rc"
}

##############################################################################
# Driver
##############################################################################

usage() { sed -n '2,14s/^# \{0,1\}//p' "$HERE/run.sh"; }

# Run one scenario; print its TAP line (and its log as diagnostics).
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

run_all() {
  tap_select run.sh "$1" || return 1
  echo "# impl: $IMPL${NS_IMPL_WRAPPER:+ (under $NS_IMPL_WRAPPER)}"
  echo "# ref:  $REF"
  # shellcheck disable=SC2119 # no after-each command
  tap_run
  tap_summary
}

# Inside the outer namespace: scratch tmpfs, fixture facts, scenarios.
inner_main() {
  local filter=$1 keep=$2 rc=0
  NS_SCRATCH=$MOUNTNS_INNER/mnt
  mount -t tmpfs -o mode=0700 mountns-scratch "$NS_SCRATCH"
  mkdir -p "$NS_SCRATCH/logs" "$NS_SCRATCH/results"
  # shellcheck source=/dev/null
  source "$MOUNTNS_CACHE/fixture.env"
  T1=$OSTREE_TARGET_1 T2=$OSTREE_TARGET_2
  # Read by ns_run (service-lib.sh); run.sh is re-sourced inside each
  # namespace so the setup/check functions above exist there.
  # shellcheck disable=SC2034
  NS_DEFAULT_CMDLINE="root=LABEL=osroot rw quiet ostree=$T1"
  # shellcheck disable=SC2034
  NS_SOURCES=$HERE/run.sh
  run_all "$filter" || rc=1
  if [[ -n $keep ]]; then
    mkdir -p "$keep"
    cp -a "$NS_SCRATCH/results" "$NS_SCRATCH/logs" "$keep/"
  fi
  return "$rc"
}

main() {
  local filter="" keep=""
  local -a pass=()
  local wrapper=""
  IMPL=$MOUNTNS_REPO_ROOT/target/x86_64-unknown-linux-musl/release/ostree-prepare-root
  REF=/usr/lib/ostree/ostree-prepare-root
  VERBOSE=0
  while (($#)); do
    case $1 in
      --impl) IMPL=$2; shift 2 ;;
      --impl-wrapper) wrapper=$2; shift 2 ;;
      --ref) REF=$2; shift 2 ;;
      --keep) keep=$(realpath -m "$2"); shift 2 ;;
      -v) VERBOSE=1; shift ;;
      -h | --help) usage; return 0 ;;
      -*) echo "run.sh: unknown option $1" >&2; usage >&2; return 2 ;;
      *) filter=$1; shift ;;
    esac
  done
  IMPL=$(realpath -m "$IMPL") REF=$(realpath -m "$REF")
  if [[ -n $wrapper ]]; then
    # Absolute: the tool runs with an empty environment.
    NS_IMPL_WRAPPER=$(command -v "$wrapper") || {
      echo "run.sh: --impl-wrapper $wrapper: not found" >&2
      return 2
    }
    # shellcheck disable=SC2034 # read by service-lib.sh
    NS_WRAPPED_IMPL=$IMPL
  fi
  if [[ -n ${MOUNTNS_INNER:-} ]]; then
    inner_main "$filter" "$keep"
    return
  fi
  if ((EUID != 0)); then
    echo "run.sh: must run as root (mount namespaces, tmpfs, pivot_root)" >&2
    return 2
  fi
  "$HERE/fixture.sh" >/dev/null
  pass=(--impl "$IMPL" --ref "$REF")
  if [[ -n $NS_IMPL_WRAPPER ]]; then pass+=(--impl-wrapper "$NS_IMPL_WRAPPER"); fi
  tap_common_args pass "$keep" "$filter"
  tap_reexec MOUNTNS_INNER mountns "$HERE/run.sh" "${pass[@]}"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
