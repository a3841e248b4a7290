#!/usr/bin/env bash
# unlock.sh - mount-namespace scenarios for ostree-unlock on a simulated
# booted OSTree system (prepare-root, switch root, unlock, "reboot").
#
# Usage: unlock.sh [--unlock PATH] [--unlock-crash PATH] [--prepare PATH] [--keep DIR] [-v] [FILTER]
#   --unlock   ostree-unlock under test (default: <repo>/target/
#              x86_64-unknown-linux-musl/release/ostree-unlock)
#   --unlock-crash  the same built with the crash-hook feature, for the crash
#              tests (default: <repo>/target/crash-hook/.../ostree-unlock)
#   --prepare  our ostree-prepare-root (default: same directory)
#   --keep     copy every boot's results (scripts, outputs) to DIR
#   -v         print the log of passing scenarios too
#   FILTER     extended regex; only scenarios whose name matches run
# Must run as root. Prints TAP; the last line is "N passed, M failed"; the
# exit status is non-zero if any scenario failed.
#
# Everything happens in private mount namespaces: unlock.sh re-executes itself
# in one (a scratch tmpfs, the loop-mounted ext4 physical roots), and every
# boot is a nested mount + PID namespace with a tmpfs pivoted in as / (see
# unlock-lib.sh). The machine's own / is never touched. The checks (expect_*)
# are assert.sh's and unlock-lib.sh's; tests/mountns/README.md tells how to
# add a scenario.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=unlock-lib.sh
source "$HERE/unlock-lib.sh"

# shellcheck source=tap.sh
source "$HERE/tap.sh"

# phys NAME: the physical root NAME, created on first use; scenarios that
# continue each other (a reboot after development...) share it by name.
phys() {
  if mountpoint -q "$UL_SCRATCH/$1"; then echo "$UL_SCRATCH/$1"; else make_phys "$1"; fi
}

##############################################################################
# Scenarios. Host-side checks run in unlock.sh's outer namespace on the
# loop-mounted physical root ($p); in-boot checks in the script given to boot.
##############################################################################

# --- development -------------------------------------------------------------

dev_unlock_script() {
  cat <<'EOF'
run unlock $U
expect_success "development unlock"
expect_output "Development mode enabled"
expect_usr_overlay "after development unlock"
touch /usr/x 2>/dev/null || fail "touch /usr/x failed: /usr not writable after unlock"
# from another process of the namespace, too
sh -c ': >/usr/x2' 2>/dev/null || fail "a child process cannot write /usr"
expect_file "$BK1/usr-transient/upper/x" "the write lands in the deployment's backing usr-transient/upper"
expect_file "$STATE1/unlocked-development"
expect_no_file "$STATE1/unlocked-transient"
[ -z "$(origin_unlocked "$DEPLOY_1_NAME")" ] || fail "development wrote unlocked= into the origin"
m=$(mode_of "$BK1/usr-transient/upper")
[ "$m" = "directory $(stat -c %a /sysroot/$DEPLOY_1/usr) 0 0" ] || fail "usr-transient/upper is '$m', expected /usr's mode owned by root"
status_says development
# the same unlock again: succeeds, changes nothing
before=$(usr_mounts)
run again $U
expect_success "second development unlock"
[ "$(usr_mounts)" = "$before" ] || { fail "the second unlock changed the /usr mounts ($before before):"; top_mounts /usr; }
expect_file /usr/x "the second unlock kept /usr/x"
expect_file "$BK1/usr-transient/upper/x" "the second unlock kept the upper data"
# another mode is refused, naming the current one
run hotfix $U --hotfix
expect_failure "--hotfix after development"
expect_output "development" "the current state (development)"
expect_no_file "$D1/.usr-ovl-upper" "refused --hotfix left no marker"
expect_no_file "$D1/.usr-ovl-work" "refused --hotfix left no marker"
[ -z "$(origin_unlocked "$DEPLOY_1_NAME")" ] || fail "refused --hotfix wrote unlocked= into the origin"
run transient $U --transient
expect_failure "--transient after development"
expect_output "development" "the current state (development)"
EOF
}

scenario development_private "development under private propagation: writable /usr now, markers, status, idempotent, other modes refused"
t_development_private() {
  local p before
  p=$(phys dev-private)
  before=$(stat -c %.9Y "$p/ostree/deploy")
  boot "$p" < <(dev_unlock_script)
  awk -v a="$before" -v b="$(stat -c %.9Y "$p/ostree/deploy")" 'BEGIN { exit !(b > a) }' ||
    fail "mtime of ostree/deploy not bumped by the development unlock"
  has_immutable "$p/$DEPLOY_1" || fail "deployment 1 lost its immutable attribute (development needs no change to it)"
}

scenario development_shared "development under shared propagation (systemd's make-rshared /): the same, and services' namespaces see it"
t_development_shared() {
  local p
  p=$(phys dev-shared)
  boot "$p" --shared < <(cat <<'EOF'
# a service's mount namespace (slave of /), started before the unlock
unshare -m --propagation slave sleep 60 &
svc=$!
i=0
while [ "$(readlink /proc/$svc/ns/mnt)" = "$(readlink /proc/self/ns/mnt)" ] && [ $i -lt 100 ]; do
  sleep 0.05
  i=$((i + 1))
done
EOF
    dev_unlock_script
    cat <<'EOF'
run svc nsenter -t "$svc" -m sh -c ': >/usr/svc-write'
expect_success "a write to /usr from a service's (slave) namespace"
kill "$svc"
EOF
  )
}

scenario development_nested_ns "development run from a private child namespace (unshare -m): the overlay lands in PID 1's namespace"
t_development_nested_ns() {
  local p
  p=$(phys dev-nested)
  boot "$p" <<'EOF'
run unlock unshare -m --propagation private $U
expect_success "unlock in a child namespace"
expect_usr_overlay "in PID 1's namespace, after unlocking from a child namespace"
expect_writable /usr "in PID 1's namespace"
EOF
  # For reference (notes, not checks): what upstream's `ostree admin unlock`
  # does under private propagation.
  boot "$(phys dev-upstream)" <<'EOF'
ostree admin unlock >/dev/null 2>&1
note "upstream ostree admin unlock, private propagation: exit $?, /usr is $(usr_fstype), writable: $(is_writable /usr && echo yes || echo no)"
EOF
}

scenario development_reboot "reboot after development: /usr pristine, stale usr-transient deleted at boot"
t_development_reboot() {
  local name p
  for name in dev-private dev-shared; do
    p=$(phys "$name")
    if [[ ! -d $p/ostree/deploy/$OSNAME/backing/$DEPLOY_1_NAME/usr-transient ]]; then
      # run alone (FILTER): unlock first
      # shellcheck disable=SC2016 # expanded in the booted system
      boot "$p" --tag "setup-$name" <<<'run unlock $U; expect_success; touch /usr/x'
    fi
    [[ -f $p/ostree/deploy/$OSNAME/backing/$DEPLOY_1_NAME/usr-transient/upper/x ]] ||
      fail "$name: no development data (usr-transient/upper/x) to clean up"
    boot "$p" <<'EOF'
expect_usr_pristine "after reboot"
expect_no_file /usr/x "development file after reboot"
expect_no_file "$BK1/usr-transient" "stale development data (prepare-root deletes it)"
expect_no_file "$STATE1/unlocked-development"
status_says none
EOF
  done
}

# --- read-only sysroot -------------------------------------------------------

scenario development_readonly_sysroot "development and hotfix with sysroot.readonly=true (/sysroot read-only)"
t_development_readonly_sysroot() {
  local p
  p=$(phys dev-ro)
  printf '\n[sysroot]\nreadonly=true\n' >>"$p/ostree/repo/config"
  boot "$p" <<'EOF'
expect_not_writable /sysroot "/sysroot with sysroot.readonly"
run unlock $U
expect_success "development with a read-only /sysroot"
expect_usr_overlay
expect_writable /usr
: >/usr/x 2>/dev/null
expect_file "$BK1/usr-transient/upper/x" "data on the deployment's filesystem"
expect_not_writable /sysroot "/sysroot still read-only after unlock"
status_says development
EOF
  p=$(phys hotfix-ro)
  printf '\n[sysroot]\nreadonly=true\n' >>"$p/ostree/repo/config"
  boot "$p" --tag hotfix <<'EOF'
expect_not_writable /sysroot "/sysroot with sysroot.readonly"
run unlock $U --hotfix
expect_success "--hotfix with a read-only /sysroot"
expect_usr_overlay
echo fixed >/usr/hf 2>/dev/null || fail "/usr not writable after --hotfix"
expect_not_writable /sysroot "/sysroot still read-only after --hotfix"
EOF
  has_immutable "$p/$DEPLOY_1" || fail "deployment 1 not immutable after --hotfix"
  boot "$p" --tag hotfix-reboot <<'EOF'
expect_usr_overlay "hotfix after reboot, read-only /sysroot"
[ "$(cat /usr/hf 2>/dev/null)" = fixed ] || fail "/usr/hf not kept across the reboot"
status_says hotfix
EOF
}

scenario development_readonly_fs "development on a read-only filesystem (ro superblock): overlay data on a tmpfs"
t_development_readonly_fs() {
  local p
  p=$(phys dev-rofs)
  mount -o remount,ro "$p"
  boot "$p" <<'EOF'
run unlock $U
expect_success "development on a read-only filesystem"
expect_usr_overlay
expect_writable /usr
status_says development
EOF
  mount -o remount,rw "$p"
}

scenario development_failure_undone "development failing after its first changes (the runtime flag cannot be written): /usr, flags and data as before; a rerun works"
t_development_failure_undone() {
  local p
  p=$(phys dev-fail)
  boot "$p" <<'EOF'
# A file where the runtime flags' directory goes: the flag cannot be
# written, after the overlay's directories were made.
rm -rf /run/ostree/deployment-state
: >/run/ostree/deployment-state
run unlock $U
expect_failure "development with /run/ostree/deployment-state a file"
expect_output "deployment-state" "the error names the path"
expect_usr_pristine "after the failed development unlock"
expect_no_file "$BK1/usr-transient" "the failed unlock removed its overlay data"
status_says none
rm /run/ostree/deployment-state
run again $U
expect_success "development once the path is free"
expect_usr_overlay "after the rerun"
status_says development
EOF
}

scenario no_crash_hook "the release build has no crash hook: OSTREE_UNLOCK_STOP_AFTER changes nothing"
t_no_crash_hook() {
  local p
  p=$(phys no-crash-hook)
  boot "$p" <<'EOF'
run unlock env OSTREE_UNLOCK_STOP_AFTER=1 $U --hotfix
expect_success "--hotfix with OSTREE_UNLOCK_STOP_AFTER=1 (release build)"
expect_usr_overlay "the hotfix completed"
EOF
}

scenario selinux_labels "the overlay directories get /usr's SELinux label (development and hotfix), so the merged /usr keeps it"
# check_label PATH LABEL: PATH's security.selinux is LABEL.
check_label() {
  local got
  got=$(/usr/bin/python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], "security.selinux").rstrip(b"\0").decode())' "$1" 2>&1)
  [[ $got == "$2" ]] || fail "$1: SELinux label '$got', expected '$2'"
}
t_selinux_labels() {
  local p label=system_u:object_r:usr_t:s0 bk
  p=$(phys selinux)
  /usr/bin/python3 -c 'import os,sys; os.setxattr(sys.argv[1], "security.selinux", sys.argv[2].encode() + b"\0")' \
    "$p/$DEPLOY_1/usr" "$label" || { fail "cannot label $p/$DEPLOY_1/usr"; return; }
  boot "$p" <<'EOF'
run unlock $U
expect_success "development with a labelled /usr"
EOF
  bk=$p/ostree/deploy/$OSNAME/backing/$DEPLOY_1_NAME/usr-transient
  check_label "$bk/upper" "$label"
  check_label "$bk/work" "$label"
  boot "$p" --tag hotfix <<'EOF'
run unlock $U --hotfix
expect_success "hotfix with a labelled /usr"
EOF
  check_label "$p/$DEPLOY_1/.usr-ovl-upper" "$label"
  check_label "$p/$DEPLOY_1/.usr-ovl-work" "$label"
}

# --- transient ---------------------------------------------------------------

scenario transient "transient: /usr read-only, writable in a private namespace after remount; status transient"
t_transient() {
  local v
  for v in "" --shared; do
    boot "$(phys "transient$v")" $v <<'EOF'
run unlock $U --transient
expect_success "--transient"
expect_usr_overlay
expect_not_writable /usr "transient overlay, normal writes"
expect_file "$STATE1/unlocked-transient"
expect_no_file "$STATE1/unlocked-development"
run remount unshare -m sh -c 'mount -o remount,rw /usr && touch /usr/y'
expect_success "remount rw and write in a private namespace"
expect_file /usr/y "the write is visible (read-only) outside"
expect_not_writable /usr "/usr outside the private namespace after it remounted"
status_says transient
before=$(usr_mounts)
run again $U --transient
expect_success "second --transient"
[ "$(usr_mounts)" = "$before" ] || { fail "the second --transient changed the /usr mounts ($before before):"; top_mounts /usr; }
run dev $U
expect_failure "development after transient"
expect_output transient "the current state (transient)"
EOF
  done
  boot "$(phys transient)" --tag reboot <<'EOF'
expect_usr_pristine "after reboot"
expect_no_file /usr/y
expect_no_file "$BK1/usr-transient" "stale transient data (prepare-root deletes it)"
status_says none
EOF
}

# --- hotfix ------------------------------------------------------------------

scenario hotfix "hotfix (private and shared): writable now, markers, origin, status, immutable again, persists, C prepare-root too"
t_hotfix() {
  local v p before res t
  for v in "" --shared; do
    t=${v:+-shared}
    p=$(phys "hotfix$t")
    before=$(stat -c %.9Y "$p/ostree/deploy")
    boot "$p" $v --tag "hotfix$t" <<'EOF'
run unlock $U --hotfix
expect_success "--hotfix"
expect_output "Hotfix mode enabled"
expect_usr_overlay "after --hotfix"
echo fixed >/usr/hf 2>/dev/null || fail "/usr not writable after --hotfix"
usrmode=$(stat -c %a "$D1/usr")
for d in .usr-ovl-upper .usr-ovl-work; do
  m=$(mode_of "$D1/$d")
  [ "$m" = "directory $usrmode 0 0" ] || fail "$d is '$m', expected 'directory $usrmode 0 0' (/usr's mode, root)"
done
expect_file "$D1/.usr-ovl-upper/hf" "the write in the hotfix upper"
[ "$(origin_unlocked "$DEPLOY_1_NAME")" = hotfix ] || fail "origin has no unlocked=hotfix"
grep -qx "refspec=$OSNAME/stable" "$PHYS/ostree/deploy/$OSNAME/deploy/$DEPLOY_1_NAME.origin" || fail "origin lost its refspec"
status_says hotfix
run json $U --status --json
expect_success "--status --json"
run again $U --hotfix
expect_success "second --hotfix"
expect_file /usr/hf "second --hotfix keeps the file"
[ "$(usr_mounts)" = 2 ] || { fail "/usr mounts after a second --hotfix: $(usr_mounts), expected 2 (bind + overlay):"; top_mounts /usr; }
run dev $U
expect_failure "development after hotfix"
expect_output hotfix "the current state (hotfix)"
EOF
    res=$UL_SCRATCH/results/$UL_SCENARIO/hotfix$t
    /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["deployments"][0]; assert d["unlocked"]=="hotfix" and d["booted"] is True and d["stateroot"] and d["serial"] >= 0, d' \
      "$res/json.out" || fail "live --status --json: not JSON with unlocked=hotfix, booted=true: $(cat "$res/json.out")"
    has_immutable "$p/$DEPLOY_1" || fail "deployment 1 has no immutable attribute after --hotfix"
    awk -v a="$before" -v b="$(stat -c %.9Y "$p/ostree/deploy")" 'BEGIN { exit !(b > a) }' ||
      fail "mtime of ostree/deploy not bumped by --hotfix"
    boot "$p" $v --tag "reboot$t" <<'EOF'
expect_usr_overlay "hotfix after reboot"
expect_writable /usr "hotfix after reboot"
[ "$(cat /usr/hf 2>/dev/null)" = fixed ] || fail "/usr/hf not kept across the reboot"
status_says hotfix
EOF
    boot "$p" $v --prepare c --tag "c-prepare-root$t" <<'EOF'
expect_usr_overlay "ostree's C prepare-root on ostree-unlock's markers"
expect_writable /usr "C prepare-root hotfix"
[ "$(cat /usr/hf 2>/dev/null)" = fixed ] || fail "/usr/hf not seen under the C tool's overlay"
status_says hotfix
EOF
  done
}

# --- markers of real ostree admin unlock --hotfix ----------------------------

scenario upstream_hotfix "markers of real 'ostree admin unlock --hotfix' honoured by our prepare-root and --status"
t_upstream_hotfix() {
  local p
  p=$(phys upstream-hotfix)
  boot "$p" --shared <<'EOF'
run ostree-unlock ostree admin unlock --hotfix
expect_success "real ostree admin unlock --hotfix"
expect_file "$D1/.usr-ovl-upper"
expect_file "$D1/.usr-ovl-work"
if [ "$(usr_fstype)" = overlay ]; then
  echo upstream >/usr/uh || fail "upstream hotfix overlay not writable"
else
  fail "upstream's overlay did not reach us under shared propagation"
  echo upstream >"$D1/.usr-ovl-upper/uh"
fi
EOF
  boot "$p" --shared --tag reboot <<'EOF'
expect_usr_overlay "our prepare-root on upstream's markers"
expect_writable /usr
[ "$(cat /usr/uh 2>/dev/null)" = upstream ] || fail "/usr/uh (written under upstream's hotfix) not kept"
run status $U --status
expect_success
expect_output "Unlocked: hotfix\$" "Unlocked: hotfix"
EOF
}

scenario upstream_states "development/transient of real 'ostree admin unlock' read by ostree-unlock (--status, same mode ok, other refused)"
t_upstream_states() {
  boot "$(phys upstream-dev)" --shared <<'EOF'
run upstream ostree admin unlock
expect_success "real ostree admin unlock"
run status $U --status
expect_output "Unlocked: development\$" "Unlocked: development"
run again $U
expect_success "ostree-unlock after upstream's development unlock"
run hotfix $U --hotfix
expect_failure "--hotfix after upstream's development unlock"
expect_output development
EOF
  boot "$(phys upstream-transient)" --shared <<'EOF'
run upstream ostree admin unlock --transient
expect_success "real ostree admin unlock --transient"
run status $U --status
expect_output "Unlocked: transient\$" "Unlocked: transient"
run dev $U
expect_failure "development after upstream's transient unlock"
expect_output transient
EOF
}

scenario upstream_private_then_ours "after upstream's unlock silently failed (private propagation), ostree-unlock in the same mode makes /usr writable"
t_upstream_private_then_ours() {
  boot "$(phys upstream-private-dev)" <<'EOF'
run upstream ostree admin unlock
expect_success "real ostree admin unlock"
note "upstream's overlay reached us: $(is_writable /usr && echo yes || echo no)"
run ours $U
expect_success "ostree-unlock after upstream's development unlock"
expect_usr_overlay "after ostree-unlock"
expect_writable /usr "after ostree-unlock (development)"
EOF
  boot "$(phys upstream-private-hotfix)" <<'EOF'
run upstream ostree admin unlock --hotfix
expect_success "real ostree admin unlock --hotfix"
note "upstream's overlay reached us: $(is_writable /usr && echo yes || echo no)"
run ours $U --hotfix
expect_success "ostree-unlock --hotfix after upstream's"
expect_usr_overlay "after ostree-unlock --hotfix"
expect_writable /usr "after ostree-unlock --hotfix"
EOF
}

scenario c_prepare_root_boot "on a system booted by ostree's C prepare-root (2022.7: empty /run/ostree-booted, no /run/ostree/.private)"
t_c_prepare_root_boot() {
  local p
  boot "$(phys c-dev)" --prepare c <<'EOF'
run unlock $U
expect_success "development"
expect_writable /usr
status_says development
EOF
  p=$(phys c-hotfix)
  boot "$p" --prepare c --tag hotfix <<'EOF'
run unlock $U --hotfix
expect_success "--hotfix"
echo fixed >/usr/hf 2>/dev/null || fail "/usr not writable after --hotfix"
status_says hotfix
EOF
  boot "$p" --prepare c --tag reboot <<'EOF'
expect_usr_overlay "C prepare-root, hotfix after reboot"
[ "$(cat /usr/hf 2>/dev/null)" = fixed ] || fail "/usr/hf not kept across the reboot"
EOF
}

# --- the way back ------------------------------------------------------------

scenario hotfix_way_back "ostree.prepare-root.hotfix=0 and the pristine boot entry boot once without the hotfix"
t_hotfix_way_back() {
  local p entry opts
  p=$(phys way-back)
  boot "$p" <<'EOF'
run unlock $U --hotfix
expect_success
echo fixed >/usr/hf 2>/dev/null || fail "/usr not writable after --hotfix"
EOF
  boot "$p" --append ostree.prepare-root.hotfix=0 --tag karg <<'EOF'
expect_usr_pristine "boot with ostree.prepare-root.hotfix=0"
expect_no_file /usr/hf "hotfix file with hotfix=0"
run status $U --status
expect_output "without the hotfix" "--status notes the hotfix=0 on the command line"
expect_file "$D1/.usr-ovl-upper/hf" "the hotfix itself is kept"
expect_file "$D1/.usr-ovl-work"
EOF
  mapfile -t entry < <(ls "$p"/boot/loader/entries/pristine-*.conf 2>/dev/null)
  if ((${#entry[@]} != 1)); then
    fail "expected one pristine-*.conf boot entry after --hotfix, found ${#entry[@]}: $(ls "$p/boot/loader/entries")"
  else
    sed 's/^/  pristine entry: /' "${entry[0]}"
    grep -qx 'version 0' "${entry[0]}" || fail "pristine entry has no 'version 0'"
    opts=$(sed -n 's/^options //p' "${entry[0]}")
    [[ " $opts " == *" ostree.prepare-root.hotfix=0 "* ]] || fail "pristine entry options lack ostree.prepare-root.hotfix=0"
    [[ " $opts " == *" ostree=/ostree/deploy/$OSNAME/pristine/$DEPLOY_1_NAME "* ]] ||
      fail "pristine entry's ostree= is not our link to deployment 1"
    [[ $(readlink "$p/ostree/deploy/$OSNAME/pristine/$DEPLOY_1_NAME") == "../deploy/$DEPLOY_1_NAME" ]] ||
      fail "the pristine bootlink does not name deployment 1"
    boot "$p" --cmdline "$opts" --tag pristine-entry <<'EOF'
expect_usr_pristine "boot from the pristine entry"
expect_no_file /usr/hf
EOF
  fi
  boot "$p" --tag normal-again <<'EOF'
expect_usr_overlay "the next normal boot has the hotfix again"
[ "$(cat /usr/hf 2>/dev/null)" = fixed ] || fail "/usr/hf missing in the next normal boot"
EOF
  # discarding from a pristine boot: nothing uses the data, deleted at once
  boot "$p" --append ostree.prepare-root.hotfix=0 --tag discard-from-pristine <<'EOF'
expect_usr_pristine
run discard $U --discard
expect_success "--discard in a hotfix=0 boot"
expect_no_file "$D1/.usr-ovl-upper"
expect_no_file "$D1/.usr-ovl-work"
expect_no_file "$BK1/hotfix-discarded-upper" "discarded data, not in use: deleted at once"
expect_no_file "$BK1/hotfix-discarded-work" "discarded data, not in use: deleted at once"
status_says none
EOF
  ls "$p"/boot/loader/entries/pristine-*.conf >/dev/null 2>&1 &&
    fail "pristine entry still there after --discard: $(ls "$p/boot/loader/entries")"
  true
}

scenario pristine_entry_vs_ostree "the pristine boot entry does not confuse real ostree (status lists D1 once; deploy keeps no hotfix=0)"
t_pristine_entry_vs_ostree() {
  local p e
  p=$(phys pristine-vs-ostree)
  boot "$p" <<'EOF'
run unlock $U --hotfix
expect_success
expect_usr_overlay
ls /boot/loader/entries/pristine-*.conf >/dev/null 2>&1 || fail "no pristine entry after --hotfix"
run status ostree admin status
expect_success
n=$(last_output | grep -c "$DEPLOY_1_NAME")
[ "$n" = 1 ] || fail "real ostree admin status lists deployment 1 $n times"
run ways $U --status
expect_output "pristine-ostree-.*pristine, without hotfix" "--status lists the pristine entry"
run deploy ostree admin deploy --os="$OSNAME" "$OSNAME/stable"
expect_success "real ostree admin deploy after --hotfix"
run ways-after $U --status
expect_output "no pristine boot entry lists this deployment now" "--status once libostree wrote a new boot version"
expect_output "hotfix=0, for one boot"
EOF
  for e in "$p"/boot/loader/entries/*.conf; do
    [[ ${e##*/} == pristine-*.conf ]] && continue
    if grep -q 'ostree.prepare-root.hotfix=0' "$e"; then
      fail "after real 'ostree admin deploy', the regular entry $(basename "$e") carries ostree.prepare-root.hotfix=0:"
      sed 's/^/    /' "$e"
    fi
  done
  true
}

scenario pristine_entry_link_swap "libostree swaps its boot links (a reorder keeps every entry): the pristine entry still boots the pristine deployment it names"
t_pristine_entry_link_swap() {
  local p link e
  p=$(phys pristine-link-swap)
  boot "$p" <<'EOF'
run unlock $U --hotfix
expect_success
echo fixed >/usr/hf 2>/dev/null || fail "/usr not writable after --hotfix"
EOF
  # What libostree does when it reorders its deployments and the boot
  # configuration stays the same: deployment 1's boot link now leads to
  # deployment 2, every entry is kept.
  link=$p$(target_of "$p" "$DEPLOY_1_NAME")
  ln -sfn "../../../deploy/$OSNAME/deploy/$DEPLOY_2_NAME" "$link"
  local pristine=("$p"/boot/loader/entries/pristine-*.conf)
  e=${pristine[0]}
  if [[ ! -e $e ]]; then
    fail "no pristine entry after --hotfix"
    return
  fi
  boot "$p" --cmdline "$(sed -n 's/^options //p' "$e")" --tag pristine <<'EOF'
expect_usr_pristine "the pristine entry after the link swap: deployment 1, without its hotfix"
expect_no_file /usr/hf
EOF
}

scenario hotfix_failure_undone "--hotfix failing after its markers (the origin cannot be replaced): markers, origin, entry as before; a rerun works"
t_hotfix_failure_undone() {
  local p
  p=$(phys hotfix-fail)
  chattr +i "$p/$DEPLOY_1.origin" || { fail "chattr +i on the origin file"; return; }
  boot "$p" <<'EOF'
run unlock $U --hotfix
expect_failure "--hotfix with an origin file that cannot be replaced"
expect_output "origin" "the error names the origin file"
expect_no_file "$D1/.usr-ovl-upper" "the failed --hotfix removed its markers"
expect_no_file "$D1/.usr-ovl-work" "the failed --hotfix removed its markers"
expect_usr_pristine "after the failed --hotfix"
expect_output "pristine clone .* stays" "the failed --hotfix says the clone it made stays"
status_says none
EOF
  chattr -i "$p/$DEPLOY_1.origin"
  # the clone was made before the markers: it stays, a pristine deployment
  check_entries "$p" 1
  ls "$p"/boot/loader/entries/pristine-*.conf >/dev/null 2>&1 && fail "the failed --hotfix left a pristine entry"
  has_immutable "$p/$DEPLOY_1" || fail "deployment 1 not immutable after the failed --hotfix"
  boot "$p" --tag rerun <<'EOF'
run unlock $U --hotfix
expect_success "--hotfix once the origin can be written"
expect_usr_overlay
expect_output "already there" "the rerun keeps the clone of the failed run"
EOF
  check_entries "$p" 1
}

# --- discard -----------------------------------------------------------------

scenario discard "--discard: next boot pristine, markers and origin key gone, data deleted at the next boot"
t_discard() {
  local p bk
  p=$(phys discard)
  bk=$p/ostree/deploy/$OSNAME/backing/$DEPLOY_1_NAME
  boot "$p" <<'EOF'
run unlock $U --hotfix
expect_success
echo fixed >/usr/hf 2>/dev/null || fail "/usr not writable after --hotfix"
EOF
  boot "$p" --tag discard <<'EOF'
expect_usr_overlay
run discard $U --discard
expect_success "--discard"
expect_output "pristine clone .* stays" "--discard says the clone stays"
expect_no_file "$D1/.usr-ovl-upper" "marker after --discard"
expect_no_file "$D1/.usr-ovl-work" "marker after --discard"
[ -z "$(origin_unlocked "$DEPLOY_1_NAME")" ] || fail "origin still has unlocked= after --discard"
status_says none
expect_writable /usr "the running overlay stays until reboot"
run again $U --discard
expect_success "second --discard"
expect_output "nothing to discard"
EOF
  has_immutable "$p/$DEPLOY_1" || fail "deployment 1 has no immutable attribute after --discard"
  [[ -e $p/ostree/deploy/$OSNAME/pristine/$DEPLOY_1_NAME || -L $p/ostree/deploy/$OSNAME/pristine/$DEPLOY_1_NAME ]] &&
    fail "--discard left the pristine entry's bootlink"
  boot "$p" --tag after <<'EOF'
expect_usr_pristine "after --discard and reboot"
expect_no_file /usr/hf
expect_no_file "$BK1/hotfix-discarded-upper" "discarded data after the next boot"
expect_no_file "$BK1/hotfix-discarded-work" "discarded data after the next boot"
status_says none
EOF
  if [[ -d $bk ]] && [[ -n $(ls -A "$bk") ]]; then fail "backing dir not empty: $(ls -A "$bk")"; fi
  true
}

scenario discard_then_hotfix "--discard then --hotfix again in the same boot: refused, or what is written to /usr then persists"
t_discard_then_hotfix() {
  local p
  p=$(phys discard-rehotfix)
  boot "$p" <<'EOF'
run unlock $U --hotfix
expect_success
echo one >/usr/hf1
EOF
  boot "$p" --tag discard-rehotfix <<'EOF'
run discard $U --discard
expect_success "--discard"
run hotfix $U --hotfix
echo "$LAST_RC" >/tmp/.h/results/rehotfix.rc
if [ "$LAST_RC" = 0 ]; then
  echo two >/usr/hf2 2>/dev/null || fail "/usr not writable after the new --hotfix"
else
  note "--hotfix after --discard refused in the same boot (acceptable)"
fi
EOF
  if [[ $(cat "$UL_SCRATCH/results/$UL_SCENARIO/discard-rehotfix/rehotfix.rc" 2>/dev/null) == 0 ]]; then
    boot "$p" --tag after <<'EOF'
expect_usr_overlay "the re-enabled hotfix"
[ "$(cat /usr/hf2 2>/dev/null)" = two ] || fail "/usr/hf2, written after the accepted --hotfix, is lost at reboot (it went to the discarded upper)"
expect_no_file /usr/hf1 "the discarded hotfix's file"
EOF
  fi
}

# --- offline -----------------------------------------------------------------

scenario offline "offline --sysroot: --hotfix on the default and on a named deployment, status --json, --discard"
t_offline() {
  local p q bk json
  p=$(phys offline-default)
  # The fixture's newest boot entry is deployment 2's.
  run_host hotfix "$UL_UNLOCK" --sysroot "$p" --hotfix
  expect_success "offline --hotfix"
  [[ -d $p/$DEPLOY_2/.usr-ovl-upper && -d $p/$DEPLOY_2/.usr-ovl-work ]] ||
    fail "offline --hotfix: no markers in deployment 2 (the default)"
  [[ -e $p/$DEPLOY_1/.usr-ovl-upper ]] && fail "offline --hotfix touched deployment 1"
  grep -qx 'unlocked=hotfix' "$p/$DEPLOY_2.origin" || fail "deployment 2's origin has no unlocked=hotfix"
  has_immutable "$p/$DEPLOY_2" || fail "deployment 2 not immutable after offline --hotfix"
  grep -qs 'ostree.prepare-root.hotfix=0' "$p"/boot/loader/entries/pristine-*.conf ||
    fail "offline --hotfix added no pristine boot entry"
  run_host json "$UL_UNLOCK" --sysroot "$p" --status --json
  json=$(cat "$UL_OUT")
  /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1])["deployments"][0]; assert d["unlocked"]=="hotfix" and d["booted"] is False, d' "$json" ||
    fail "--status --json: not JSON with unlocked=hotfix: $json"
  boot "$p" --deployment 2 <<'EOF'
expect_usr_overlay "boot of the offline-hotfixed default deployment"
expect_writable /usr
[ "$(cat /usr/share/which-deployment)" = B ] || fail "not deployment 2"
EOF
  # the named deployment, as --deployment CSUM.SERIAL
  q=$(phys offline-named)
  run_host named "$UL_UNLOCK" --sysroot "$q" --deployment "$DEPLOY_2_NAME" --hotfix
  expect_success "offline --deployment $DEPLOY_2_NAME --hotfix"
  [[ -d $q/$DEPLOY_2/.usr-ovl-upper && -d $q/$DEPLOY_2/.usr-ovl-work ]] ||
    fail "offline --deployment D2: no markers in deployment 2"
  # and as OS/CSUM.SERIAL, another deployment
  run_host named1 "$UL_UNLOCK" --sysroot "$q" --deployment "$OSNAME/$DEPLOY_1_NAME" --hotfix
  expect_success "offline --deployment OS/D1 --hotfix"
  [[ -d $q/$DEPLOY_1/.usr-ovl-upper ]] || fail "offline --deployment OS/D1: no markers in deployment 1"
  boot "$q" <<'EOF'
expect_usr_overlay "boot of the offline-hotfixed named deployment 1"
expect_writable /usr
EOF
  # offline discard deletes the data at once
  bk=$p/ostree/deploy/$OSNAME/backing/$DEPLOY_2_NAME
  run_host discard "$UL_UNLOCK" --sysroot "$p" --discard
  expect_success "offline --discard"
  [[ -e $p/$DEPLOY_2/.usr-ovl-upper || -e $p/$DEPLOY_2/.usr-ovl-work ]] && fail "markers left after offline --discard"
  [[ -e $bk/hotfix-discarded-upper || -e $bk/hotfix-discarded-work ]] && fail "offline --discard left the data in $bk"
  grep -q '^unlocked=' "$p/$DEPLOY_2.origin" && fail "origin keeps unlocked= after offline --discard"
  has_immutable "$p/$DEPLOY_2" || fail "deployment 2 not immutable after offline --discard"
  ls "$p"/boot/loader/entries/pristine-*.conf >/dev/null 2>&1 && fail "offline --discard left the pristine boot entry"
  run_host status "$UL_UNLOCK" --sysroot "$p" --status
  grep -q 'Unlocked: none' "$UL_OUT" || fail "offline --status after --discard: not none"
  run_host named-missing "$UL_UNLOCK" --sysroot "$p" --deployment nosuch.0 --hotfix
  expect_failure "--deployment nosuch.0"
  grep -q "$DEPLOY_1_NAME" "$UL_OUT" || fail "--deployment nosuch.0: the error does not list the deployments"
  # Any number of boot entries: 70 more (of no deployment) change nothing.
  for i in $(seq 100 169); do
    printf 'title junk %s\nversion %s\noptions root=/dev/x ostree=/ostree/boot.9/none/x/%s\n' "$i" "$i" "$i" \
      >"$p/boot/loader/entries/ostree-$i-junk.conf"
  done
  run_host many "$UL_UNLOCK" --sysroot "$p" --status
  expect_success "--status with 72 boot entries"
  grep -q "$DEPLOY_2_NAME" "$UL_OUT" || fail "--status with 72 boot entries: not the default deployment 2"
  rm -f "$p"/boot/loader/entries/ostree-1[0-6][0-9]-junk.conf
  true
}

scenario offline_planted_links "offline: an origin file, the stateroot or boot/loader that is an absolute symlink is refused; nothing outside the sysroot is read or written"
t_offline_planted_links() {
  local p out=$UL_SCRATCH/outside stamp
  mkdir -p "$out/loader/entries"
  echo secret >"$out/secret"
  chmod 600 "$out/secret"
  # The origin file, a link to a file outside.
  p=$(phys planted-origin)
  mv "$p/$DEPLOY_1.origin" "$p/$DEPLOY_1.origin.real"
  ln -s "$out/secret" "$p/$DEPLOY_1.origin"
  stamp=$(date +%s.%N)
  run_host origin "$UL_UNLOCK" --sysroot "$p" --deployment "$DEPLOY_1_NAME" --hotfix
  expect_failure "--hotfix with a symlinked origin file"
  expect_output "origin" "the error names the origin file"
  [[ -e $p/$DEPLOY_1/.usr-ovl-upper ]] && fail "markers made despite the symlinked origin"
  [[ $(stat -c '%a %s' "$out/secret") == "600 7" ]] || fail "the file outside changed: $(stat -c '%a %s' "$out/secret")"
  # The stateroot, a link to a copy outside.
  p=$(phys planted-stateroot)
  cp -a "$p/ostree/deploy/$OSNAME" "$out/$OSNAME"
  mv "$p/ostree/deploy/$OSNAME" "$p/ostree/deploy/$OSNAME.real"
  ln -s "$out/$OSNAME" "$p/ostree/deploy/$OSNAME"
  run_host stateroot "$UL_UNLOCK" --sysroot "$p" --deployment "$OSNAME/$DEPLOY_1_NAME" --hotfix
  expect_failure "--hotfix with a symlinked stateroot"
  expect_output "$OSNAME" "the error names the stateroot"
  [[ -e $out/$DEPLOY_1/.usr-ovl-upper || -e $out/$OSNAME/deploy/$DEPLOY_1_NAME/.usr-ovl-upper ]] &&
    fail "markers made outside the sysroot"
  # boot/loader, an absolute link to entries outside.
  p=$(phys planted-loader)
  cp -a "$p/boot/loader/entries/." "$out/loader/entries/"
  ln -sfn "$out/loader" "$p/boot/loader"
  run_host loader "$UL_UNLOCK" --sysroot "$p" --deployment "$DEPLOY_1_NAME" --hotfix
  expect_failure "--hotfix with an absolute boot/loader link"
  expect_output "loader" "the error names boot/loader"
  ls "$out"/loader/entries/pristine-* >/dev/null 2>&1 && fail "a pristine entry was written outside the sysroot"
  [[ -z $(find "$out" -newermt "@$stamp" -type f) ]] || fail "files outside changed: $(find "$out" -newermt "@$stamp" -type f)"
  true
}

# --- no symlink followed -----------------------------------------------------

# canary_state DIR: every entry of DIR (type, mode, owner, size, mtime,
# link target) and every file's checksum: what must not change outside a
# sysroot.
canary_state() {
  (cd "$1" && find . -printf '%p %y %m %u %g %s %T@ %l\n' | sort && find . -type f -exec md5sum {} + | sort)
}

# make_canary DIR PHYS: a directory outside the sysroot PHYS holding what a
# followed link would find: a copy of deployment 1's origin, of the boot
# entries, and an empty directory.
make_canary() {
  local c=$1 p=$2
  rm -rf "$c"
  mkdir -p "$c/dir" "$c/entries"
  cp "$p/$DEPLOY_1.origin" "$c/origin"
  cp -a "$p/boot/loader/entries/." "$c/entries/"
}

# plant_link WHERE KIND PHYS CANARY: replace WHERE (origin, upper, backing,
# entries, pristine) in PHYS by a symlink into CANARY, absolute or relative
# (KIND abs|rel: ln -s or ln -sr; both lead out of the sysroot). Prints the
# planted path relative to PHYS.
plant_link() {
  local where=$1 kind=$2 p=$3 c=$4 rel target opt=-s
  [[ $kind == rel ]] && opt=-sr
  case $where in
    origin) rel=$DEPLOY_1.origin target=$c/origin ;;
    upper) rel=$DEPLOY_1/.usr-ovl-upper target=$c/dir ;;
    backing) rel=ostree/deploy/$OSNAME/backing target=$c/dir ;;
    entries) rel=boot/$(readlink "$p/boot/loader")/entries target=$c/entries ;;
    pristine) rel=ostree/deploy/$OSNAME/pristine target=$c/dir ;;
  esac
  if [[ $where == upper ]]; then chattr -i "$p/$DEPLOY_1"; fi
  rm -rf "${p:?}/$rel"
  ln "$opt" "$target" "$p/$rel"
  if [[ $where == upper ]]; then chattr +i "$p/$DEPLOY_1"; fi
  echo "$rel"
}

scenario nofollow_offline_links "offline: a symlink (absolute or relative, out of the sysroot) at the origin, .usr-ovl-upper, the stateroot's backing, boot/loader/entries or pristine: --hotfix and --discard refused naming it; nothing outside changes"
t_nofollow_offline_links() {
  local p c where kind rel re before
  for where in origin upper backing entries pristine; do
    for kind in abs rel; do
      p=$(phys "nofollow-$where-$kind")
      c=$UL_SCRATCH/canary-$where-$kind
      make_canary "$c" "$p"
      rel=$(plant_link "$where" "$kind" "$p" "$c")
      re=${rel//./\\.}
      echo "=== $where: $rel -> $(readlink "$p/$rel")"
      before=$(canary_state "$c")
      run_host "hotfix-$where-$kind" "$UL_UNLOCK" --sysroot "$p" --deployment "$DEPLOY_1_NAME" --hotfix --no-clone
      expect_failure "--hotfix with $rel a symlink ($kind)"
      expect_output "$re.*symlink" "the error names $rel as a symlink"
      [[ -e $p/$DEPLOY_1/.usr-ovl-work ]] && fail "--hotfix with $rel a symlink made .usr-ovl-work"
      grep -qs '^unlocked=' "$p/$DEPLOY_1.origin" && fail "--hotfix with $rel a symlink wrote the origin"
      has_immutable "$p/$DEPLOY_1" || fail "deployment 1 left mutable"
      run_host "discard-$where-$kind" "$UL_UNLOCK" --sysroot "$p" --deployment "$DEPLOY_1_NAME" --discard
      expect_failure "--discard with $rel a symlink ($kind)"
      expect_output "$re.*symlink" "the error names $rel as a symlink"
      [[ $(canary_state "$c") == "$before" ]] ||
        fail "outside the sysroot changed ($where, $kind): $(diff <(echo "$before") <(canary_state "$c"))"
      [[ -L $p/$rel ]] || fail "the planted $rel is no longer a symlink"
      drop_phys "$p"
    done
  done
  true
}

scenario nofollow_live_entries "booted: /boot/loader.0/entries a symlink out of the sysroot: --hotfix refused naming it, nothing written there"
t_nofollow_live_entries() {
  local p cmdline rel
  p=$(phys nofollow-live-entries)
  cmdline="root=LABEL=osroot rw ostree=$(target_of "$p" "$DEPLOY_1_NAME")"
  rel=boot/$(readlink "$p/boot/loader")/entries
  mv "$p/$rel" "$p/$rel.real"
  # Absolute, resolved in the booted system: its /tmp, outside /sysroot.
  ln -s /tmp/canary/entries "$p/$rel"
  boot "$p" --cmdline "$cmdline" < <(
    echo "REL=$rel"
    cat <<'EOF'
mkdir -p /tmp/canary/entries
cp -a "/sysroot/$REL.real/." /tmp/canary/entries/
before=$(ls -la --full-time /tmp/canary/entries; md5sum /tmp/canary/entries/*)
run unlock $U --hotfix --no-clone
expect_failure "--hotfix with $REL a symlink"
expect_output "entries.*symlink" "the error names the entries directory as a symlink"
ls /tmp/canary/entries/pristine-* >/dev/null 2>&1 && fail "a pristine entry was written through the symlink"
[ "$(ls -la --full-time /tmp/canary/entries; md5sum /tmp/canary/entries/*)" = "$before" ] || fail "the entries outside changed"
expect_usr_pristine "after the refused --hotfix"
EOF
  )
  [[ -e $p/$DEPLOY_1/.usr-ovl-upper ]] && fail "markers made despite the symlinked entries directory"
  true
}

# swap_loop DIR TARGET STOP: until the file STOP exists, replace DIR by a
# symlink to TARGET and put it back, again and again (a race against the
# tool: what it found a directory may be a symlink when it acts). Prints
# how many times the link was there.
swap_loop() {
  local d=$1 target=$2 stop=$3 n=0
  while [[ ! -e $stop ]]; do
    # Left aside by a put-back that raced with the tool: back first.
    if [[ -e $d.real ]]; then
      rm -rf "$d" 2>/dev/null
      mv -T "$d.real" "$d" 2>/dev/null
      continue
    fi
    if mv -T "$d" "$d.real" 2>/dev/null; then
      ln -sT "$target" "$d" 2>/dev/null && n=$((n + 1))
      if [[ -L $d ]]; then rm -f "$d"; fi
      # The tool may have made a new one meanwhile: ours goes back.
      mv -T "$d.real" "$d" 2>/dev/null || { rm -rf "$d" && mv -T "$d.real" "$d"; }
    fi
  done
  echo "$n"
}

scenario nofollow_race_offline "offline: boot/loader.0/entries and the stateroot's backing swapped for symlinks out of the sysroot in a loop while --hotfix and --discard run 150 times each: nothing outside ever changes"
t_nofollow_race_offline() {
  local p c before stop i mode ok=0 failed=0 entries backing out
  local -a pids=() args
  p=$(phys nofollow-race)
  c=$UL_SCRATCH/canary-race
  make_canary "$c" "$p"
  entries=$p/boot/$(readlink "$p/boot/loader")/entries
  backing=$p/ostree/deploy/$OSNAME/backing
  mkdir -m 0700 "$backing" "$backing/$DEPLOY_1_NAME"
  before=$(canary_state "$c")
  stop=$UL_SCRATCH/race-stop
  rm -f "$stop"
  out=$UL_SCRATCH/results/$UL_SCENARIO
  mkdir -p "$out"
  swap_loop "$entries" "$c/entries" "$stop" >"$out/swaps-entries" &
  pids+=($!)
  swap_loop "$backing" "$c/dir" "$stop" >"$out/swaps-backing" &
  pids+=($!)
  for i in $(seq 150); do
    for mode in --hotfix --discard; do
      args=("$mode")
      [[ $mode == --hotfix ]] && args+=(--no-clone)
      if "$UL_UNLOCK" --sysroot "$p" --deployment "$DEPLOY_1_NAME" "${args[@]}" >"$out/run-$i$mode.out" 2>&1 </dev/null; then
        ok=$((ok + 1))
      else
        failed=$((failed + 1))
      fi
    done
  done
  : >"$stop"
  wait "${pids[@]}"
  echo "swaps: entries $(cat "$out/swaps-entries"), backing $(cat "$out/swaps-backing"); runs: $ok succeeded, $failed failed"
  echo "failures, by message: "
  grep -h -o 'error: .*' "$out"/run-*.out | sed 's/[0-9a-f]\{64\}\.[0-9]/CSUM.SERIAL/g; s/: [^:]*([A-Z]*)$//' | sort | uniq -c | sort -rn | head -n 8
  [[ $(canary_state "$c") == "$before" ]] ||
    fail "outside the sysroot changed during the race: $(diff <(echo "$before") <(canary_state "$c"))"
  ((ok > 0)) || fail "no run succeeded: the race never let the tool act"
  [[ -d $entries && ! -L $entries ]] || fail "the entries directory was not put back"
  true
}

# run_host TAG CMD...: on the host side; output in $UL_OUT, exit in LAST_RC,
# host-TAG in LAST_NAME (what assert.sh's expect_success, expect_output...
# read).
run_host() {
  local tag=$1
  shift
  UL_OUT=$UL_SCRATCH/results/$UL_SCENARIO/host-$tag.out
  mkdir -p "$(dirname "$UL_OUT")"
  set +e
  "$@" >"$UL_OUT" 2>&1 </dev/null
  LAST_RC=$?
  LAST_NAME=host-$tag
  echo "\$ ${*/#$UL_UNLOCK/ostree-unlock} -> exit $LAST_RC"
  sed 's/^/    | /' "$UL_OUT"
}
last_output() { cat "$UL_OUT"; }

# --- crash safety ------------------------------------------------------------

# After an interrupted --hotfix/--discard: the boot works, /usr is either the
# pristine bind or a writable hotfix overlay (holding /usr/hf when WANT_HF=1).
either_script() {
  echo "WANT_HF=$1"
  cat <<'EOF'
if [ "$(usr_fstype)" = overlay ]; then
  expect_writable /usr "hotfix overlay after an interrupted command"
  [ "$(cat /usr/share/which-deployment 2>/dev/null)" = A ] || fail "overlay /usr is not deployment 1's"
  if [ "$WANT_HF" = 1 ]; then
    [ "$(cat /usr/hf 2>/dev/null)" = fixed ] || fail "hotfix overlay without the hotfix's /usr/hf: not the full hotfix"
  fi
  echo "state: hotfixed"
else
  expect_usr_pristine "after an interrupted command"
  echo "state: pristine"
fi
run status $U --status
EOF
}

hotfixed_script() {
  cat <<'EOF'
expect_usr_overlay "boot after the completed --hotfix"
[ "$(cat /usr/hf 2>/dev/null)" = fixed ] || fail "/usr/hf not there: not fully hotfixed"
status_says hotfix
EOF
}

pristine_script() {
  cat <<'EOF'
expect_usr_pristine "boot after the completed --discard"
expect_no_file /usr/hf
expect_no_file "$D1/.usr-ovl-upper"
expect_no_file "$D1/.usr-ovl-work"
expect_no_file "$BK1/hotfix-discarded-upper" "discarded data after the boot"
expect_no_file "$BK1/hotfix-discarded-work" "discarded data after the boot"
status_says none
EOF
}

# host-side checks on a completed hotfix (1) or discard (0)
check_completed() {
  local p=$1 hotfix=$2 n
  has_immutable "$p/$DEPLOY_1" || fail "deployment 1 not immutable after the completed command"
  # the hotfix's clone, exactly one (a discard keeps it)
  n=$(find "$p/ostree/deploy/$OSNAME/deploy" -mindepth 1 -maxdepth 1 -type d -name "${DEPLOY_1_NAME%.*}.*" | wc -l)
  ((n == 2)) || fail "$n deployments of deployment 1's commit, expected 2: it and one pristine clone"
  check_entries "$p" 1
  if ((hotfix)); then
    ls "$p"/boot/loader/entries/pristine-*.conf >/dev/null 2>&1 || fail "no pristine boot entry after the completed --hotfix"
  else
    ls "$p"/boot/loader/entries/pristine-*.conf >/dev/null 2>&1 && fail "pristine boot entry left after the completed --discard"
    grep -q '^unlocked=' "$p/$DEPLOY_1.origin" && fail "origin keeps unlocked= after the completed --discard"
  fi
  true
}

# crash_hotfix N reboot|live: --hotfix stopped after step N, then rerun after
# a reboot (the power cut) or in the same boot (the process was killed).
crash_hotfix() {
  local n=$1 how=$2 p
  p=$(phys "crash-hotfix-$how-$n")
  echo "=== OSTREE_UNLOCK_STOP_AFTER=$n ostree-unlock --hotfix, rerun $how"
  if [[ $how == live ]]; then
    boot "$p" --tag "stop$n" <<EOF
run unlock env OSTREE_UNLOCK_STOP_AFTER=$n \$UC --hotfix
expect_exit 75 "stopped after step $n"
run rerun \$U --hotfix
expect_success "rerun of --hotfix in the same boot"
expect_usr_overlay "after the rerun, without reboot"
echo fixed >/usr/hf 2>/dev/null || fail "/usr not writable after the rerun, without reboot"
EOF
  else
    boot "$p" --tag "stop$n" <<EOF
run unlock env OSTREE_UNLOCK_STOP_AFTER=$n \$UC --hotfix
expect_exit 75 "stopped after step $n"
EOF
    boot "$p" --tag "rerun$n" < <(either_script 0; cat <<'EOF'
run unlock $U --hotfix
expect_success "rerun of --hotfix"
expect_usr_overlay "after the rerun"
echo fixed >/usr/hf 2>/dev/null || fail "/usr not writable after the rerun"
EOF
)
  fi
  boot "$p" --tag "hotfixed$n" < <(hotfixed_script)
  check_completed "$p" 1
}

crash_discard() {
  local n=$1 how=$2 p
  p=$(phys "crash-discard-$how-$n")
  # shellcheck disable=SC2016 # expanded in the booted system
  boot "$p" --tag "setup$n" <<<'run unlock $U --hotfix; expect_success; echo fixed >/usr/hf'
  echo "=== OSTREE_UNLOCK_STOP_AFTER=$n ostree-unlock --discard, rerun $how"
  if [[ $how == live ]]; then
    boot "$p" --tag "dstop$n" <<EOF
run discard env OSTREE_UNLOCK_STOP_AFTER=$n \$UC --discard
expect_exit 75 "stopped after step $n"
run rerun \$U --discard
expect_success "rerun of --discard in the same boot"
EOF
  else
    boot "$p" --tag "dstop$n" <<EOF
run discard env OSTREE_UNLOCK_STOP_AFTER=$n \$UC --discard
expect_exit 75 "stopped after step $n"
EOF
    boot "$p" --tag "drerun$n" < <(either_script 1; cat <<'EOF'
run discard $U --discard
expect_success "rerun of --discard"
EOF
)
  fi
  boot "$p" --tag "pristine$n" < <(pristine_script)
  check_completed "$p" 0
}

scenario crash_hotfix_reboot "--hotfix stopped after each step 1..7 (1: the clone), reboot: pristine or hotfixed; rerun completes"
t_crash_hotfix_reboot() { local n; for n in 1 2 3 4 5 6 7; do crash_hotfix "$n" reboot; done; }

scenario crash_hotfix_live "--hotfix stopped after each step 1..7 (1: the clone), rerun in the same boot: completes, /usr writable at once"
t_crash_hotfix_live() { local n; for n in 1 2 3 4 5 6 7; do crash_hotfix "$n" live; done; }

scenario crash_discard_reboot "--discard stopped after each step 1..6, reboot: pristine or hotfixed; rerun completes, next boot pristine"
t_crash_discard_reboot() { local n; for n in 1 2 3 4 5 6; do crash_discard "$n" reboot; done; }

scenario crash_discard_live "--discard stopped after each step 1..6, rerun in the same boot: completes, next boot pristine"
t_crash_discard_live() { local n; for n in 1 2 3 4 5 6; do crash_discard "$n" live; done; }

# --- the pristine clone --------------------------------------------------------

# deployment_of P ENTRY: the deployment (CSUM.SERIAL) the ostree= of boot
# entry ENTRY of physical root P leads to, or nothing.
deployment_of() {
  local t d
  t=$(sed -n 's/^options .*ostree=\([^ ]*\).*/\1/p' "$2")
  [[ -n $t ]] || return 0
  d=$(readlink -f "$1$t") || return 0
  [[ -d $d ]] && basename "$d"
}

# kargs_of ENTRY: its options without ostree= and init= (which ostree sets).
kargs_of() { sed -n 's/^options //p' "$1" | tr ' ' '\n' | grep -vE '^(ostree|init)=' | tr '\n' ' '; }

# is_pristine_deployment P NAME: no unlocked= in its origin, no hotfix markers.
is_pristine_deployment() {
  local d=$1/ostree/deploy/$OSNAME/deploy/$2
  ! grep -q '^unlocked=' "$d.origin" && [[ ! -e $d/.usr-ovl-upper && ! -e $d/.usr-ovl-work ]]
}

# check_entries P WANT: what every boot entry of P boots. Every entry leads
# to an existing deployment; with WANT=1 exactly one regular entry boots a
# pristine clone of deployment 1 (its commit, another serial, no unlocked=,
# no markers) with deployment 1's kernel arguments, with WANT=0 none; a
# pristine-*.conf entry boots deployment 1 with hotfix=0. Sets CLONE.
check_entries() {
  local p=$1 want=$2 e d n=0 csum=${DEPLOY_1_NAME%.*} d1_entry=""
  CLONE=""
  for e in "$p"/boot/loader/entries/*.conf; do
    d=$(deployment_of "$p" "$e")
    echo "  entry ${e##*/} -> ${d:-(nothing)}"
    if [[ -z $d ]]; then
      fail "boot entry ${e##*/} boots no deployment"
      continue
    fi
    if [[ ${e##*/} == pristine-*.conf ]]; then
      [[ $d == "$DEPLOY_1_NAME" ]] || fail "pristine entry ${e##*/} boots $d, not deployment 1"
      grep -q 'ostree.prepare-root.hotfix=0' "$e" || fail "pristine entry ${e##*/} lacks hotfix=0"
      continue
    fi
    [[ $d == "$DEPLOY_1_NAME" ]] && d1_entry=$e
    if [[ $d == "$csum".* && $d != "$DEPLOY_1_NAME" ]] && is_pristine_deployment "$p" "$d"; then
      n=$((n + 1))
      CLONE=$d
      CLONE_ENTRY=$e
    fi
  done
  if ((want)); then
    if ((n != 1)); then
      fail "$n regular boot entries boot a pristine clone of deployment 1, expected 1"
    elif [[ -n $d1_entry && "$(kargs_of "$CLONE_ENTRY")" != "$(kargs_of "$d1_entry")" ]]; then
      fail "the clone's kernel arguments '$(kargs_of "$CLONE_ENTRY")' are not deployment 1's '$(kargs_of "$d1_entry")'"
    fi
  elif ((n != 0)); then
    fail "$n boot entries boot a pristine clone of deployment 1, expected none"
  fi
  true
}

# status_agree P: `ostree admin status` and `ostree-unlock --status --json`
# (offline, on deployment 1) agree: the clone ostree-unlock names is at the
# index it says in ostree's list, and the clone check_entries found (or none).
status_agree() {
  local p=$1 json name index
  local -a list
  mapfile -t list < <(ostree admin status --sysroot="$p" | sed -n "s/^[* ] $OSNAME \([0-9a-f]*\.[0-9]*\).*/\1/p")
  echo "  ostree admin status: ${list[*]}"
  json=$("$UL_UNLOCK" --sysroot "$p" --deployment "$DEPLOY_1_NAME" --status --json)
  echo "  ostree-unlock --status --json: $json"
  if ! name=$(/usr/bin/python3 -c 'import json,sys; c=json.loads(sys.argv[1])["deployments"][0]["pristine-clone"]; print(c["name"] if c else "")' "$json") ||
    ! index=$(/usr/bin/python3 -c 'import json,sys; c=json.loads(sys.argv[1])["deployments"][0]["pristine-clone"]; print(c["index"] if c else "")' "$json"); then
    fail "ostree-unlock --status --json has no pristine-clone: $json"
    return
  fi
  [[ $name == "$CLONE" ]] || fail "ostree-unlock --status names the clone '${name}', the boot entries '${CLONE}'"
  if [[ -n $name ]]; then
    [[ ${list[$index]:-} == "$name" ]] || fail "ostree-unlock --status puts the clone $name at index $index, ostree admin status has ${list[$index]:-nothing} there"
  fi
  true
}

# clone_hotfixed P: deployment 1 of physical root P booted and hotfixed
# (with a clone); its entry gets repeated and quoted kernel arguments first.
clone_hotfixed() {
  local p=$1 e
  e=$(grep -l "ostree=$(target_of "$p" "$DEPLOY_1_NAME")\( \|$\)" "$p"/boot/loader/entries/ostree-*.conf)
  sed -i 's/^options .*/& console=tty0 quiet console=ttyS0,115200 x="1 2"/' "$e"
  boot "$p" --tag hotfix <<'EOF'
run unlock $U --hotfix
expect_success "--hotfix with the clone"
expect_output "pristine clone" "the clone in --hotfix's output"
echo fixed >/usr/hf 2>/dev/null || fail "/usr not writable after --hotfix"
EOF
}

scenario clone_live "--hotfix deploys a pristine clone right after the booted deployment (same commit, origin without unlocked=, same kernel arguments); it boots pristine; statuses agree; a rerun makes no second"
t_clone_live() {
  local p names
  p=$(phys clone-live)
  clone_hotfixed "$p"
  check_entries "$p" 1
  status_agree "$p"
  [[ -n $CLONE ]] || return 0
  grep -qx 'refspec=testos/stable' "$p/ostree/deploy/$OSNAME/deploy/$CLONE.origin" || fail "the clone's origin lost the refspec"
  has_immutable "$p/ostree/deploy/$OSNAME/deploy/$CLONE" || fail "the clone is not immutable (ostree makes it so)"
  [[ -e $p/ostree/deploy/$OSNAME/.ostree-unlock-clone.origin ]] && fail "the clone's origin file of ours is left"
  boot "$p" --tag booted-status <<EOF
run ostree-status ostree admin status
expect_success
# deployment 1 booted at index 1: the clone right after it
last_output | sed -n 's/^[* ] $OSNAME \([0-9a-f]*\.[0-9]*\).*/\1/p' >/tmp/order
[ "\$(sed -n 2p /tmp/order)" = "$DEPLOY_1_NAME" ] || fail "deployment 1 is not at index 1 any more"
[ "\$(sed -n 3p /tmp/order)" = "$CLONE" ] || fail "the clone is not right after the booted deployment (index 2)"
run status \$U --status
expect_output "the deployment $CLONE \\(index 2\\)" "the clone at index 2 in --status"
expect_output "pristine-ostree-" "the pristine entry in --status"
run again \$U --hotfix
expect_success "--hotfix again"
expect_output "nothing to do" "a complete hotfix with its clone: nothing to do"
EOF
  names=$(find "$p/ostree/deploy/$OSNAME/deploy" -mindepth 1 -maxdepth 1 -type d -name "${DEPLOY_1_NAME%.*}.*" | wc -l)
  [[ $names == 2 ]] || fail "$names deployments of deployment 1's commit after the rerun, expected 2 (it and one clone)"
  boot_clone "$p" clone-boot <<'EOF'
[ "$(usr_fstype)" != overlay ] || fail "the clone's entry boots a hotfix overlay"
[ "$(cat /usr/share/which-deployment)" = A ] || fail "the clone's entry does not boot commit A"
expect_no_file /usr/hf "the hotfix in the clone's boot"
grep -q 'console=ttyS0,115200' /proc/cmdline || fail "the clone's boot lacks the entry's kernel arguments"
EOF
  boot "$p" --tag hotfixed-again < <(hotfixed_script)
}

# boot_clone P TAG: boot the clone (CLONE_ENTRY's options), after giving it
# the harness's busybox (ostree deployed it from the commit, which has none).
boot_clone() {
  local d=$1/ostree/deploy/$OSNAME/deploy/$CLONE
  chattr -i "$d"
  install -m 0755 "$UL_BUSYBOX" "$d/usr/bin/busybox"
  chattr +i "$d"
  boot "$1" --cmdline "$(sed -n 's/^options //p' "$CLONE_ENTRY")" --tag "$2"
}

# commit_on P VERSION: a new commit of tree A on testos/stable in P's repo,
# the same kernel (so the same boot checksum); with VERSION, that version.
commit_on() {
  local p=$1 t=$UL_SCRATCH/tree
  rm -rf "$t"
  ostree --repo="$p/ostree/repo" checkout -U "${DEPLOY_1_NAME%.*}" "$t" >/dev/null
  echo "new file" >"$t/usr/share/new-in-commit"
  ostree --repo="$p/ostree/repo" commit -b "$OSNAME/stable" --tree=dir="$t" --no-xattrs \
    ${2:+--add-metadata-string=version=$2} >/dev/null
  rm -rf "$t"
}

# clone_after NAME WANT SCRIPT: hotfix with a clone, run SCRIPT (busybox sh,
# the real ostree) in the hotfixed boot, then check every boot entry (with
# WANT=1 the clone must still be there) and that the statuses agree, live
# and offline.
clone_after() {
  local p=$1 want=$2
  echo "== before:"
  check_entries "$p" 1
  echo "== after:"
  boot "$p" --tag ostree-op < <(cat; cat <<'EOF'
run ostree-status ostree admin status
run unlock-status $U --status
# the same clone, if any, in both
c=$(last_output | sed -n 's/.*the deployment \([0-9a-f]*\.[0-9]*\) (index \([0-9]*\)).*/\1 \2/p')
if [ -n "$c" ]; then
  i=${c#* }
  n=$(ostree admin status | sed -n "s/^[* ] $OSNAME \([0-9a-f]*\.[0-9]*\).*/\1/p" | sed -n "$((i + 1))p")
  [ "$n" = "${c% *}" ] || fail "live: ostree-unlock --status says the clone ${c% *} is at index $i, ostree admin status has '$n' there"
fi
EOF
)
  check_entries "$p" "$want"
  status_agree "$p"
}

scenario clone_vs_deploy_same_kernel "after --hotfix with a clone, real 'ostree admin deploy' of a new commit with the same kernel and no version: every entry boots what it should, statuses agree"
t_clone_vs_deploy_same_kernel() {
  local p
  p=$(phys clone-deploy)
  clone_hotfixed "$p"
  commit_on "$p" ""
  clone_after "$p" 0 <<'EOF'
run deploy ostree admin deploy --os="$OSNAME" "$OSNAME/stable"
expect_success "ostree admin deploy"
EOF
}

scenario clone_vs_deploy_version "after --hotfix with a clone, real 'ostree admin deploy' of a new commit with a version: every entry boots what it should, statuses agree"
t_clone_vs_deploy_version() {
  local p
  p=$(phys clone-deploy-version)
  clone_hotfixed "$p"
  commit_on "$p" 3
  clone_after "$p" 0 <<'EOF'
run deploy ostree admin deploy --os="$OSNAME" "$OSNAME/stable"
expect_success "ostree admin deploy"
EOF
}

scenario clone_vs_deploy_retain "after --hotfix with a clone, 'ostree admin deploy --retain' of a new commit: the clone stays and boots pristine"
t_clone_vs_deploy_retain() {
  local p
  p=$(phys clone-deploy-retain)
  clone_hotfixed "$p"
  commit_on "$p" 4
  clone_after "$p" 1 <<'EOF'
run deploy ostree admin deploy --retain --os="$OSNAME" "$OSNAME/stable"
expect_success "ostree admin deploy --retain"
EOF
}

scenario clone_vs_undeploy "after --hotfix with a clone, real 'ostree admin undeploy' of another deployment (deployment 2): the clone stays"
t_clone_vs_undeploy() {
  local p
  p=$(phys clone-undeploy)
  clone_hotfixed "$p"
  clone_after "$p" 1 <<'EOF'
run undeploy ostree admin undeploy 0
expect_success "ostree admin undeploy 0 (deployment 2)"
expect_no_file "$D2" "deployment 2 after its undeploy"
EOF
}

scenario clone_vs_cleanup "after --hotfix with a clone, real 'ostree admin cleanup': the clone stays"
t_clone_vs_cleanup() {
  local p
  p=$(phys clone-cleanup)
  clone_hotfixed "$p"
  clone_after "$p" 1 <<'EOF'
run cleanup ostree admin cleanup
expect_success "ostree admin cleanup"
EOF
}

scenario clone_vs_pin "after --hotfix with a clone, real 'ostree admin pin' of the clone, then a deploy: the pinned clone stays"
t_clone_vs_pin() {
  local p
  p=$(phys clone-pin)
  clone_hotfixed "$p"
  commit_on "$p" 5
  clone_after "$p" 1 <<'EOF'
run pin ostree admin pin 2
expect_success "ostree admin pin 2 (the clone)"
run deploy ostree admin deploy --os="$OSNAME" "$OSNAME/stable"
expect_success "ostree admin deploy after the pin"
EOF
  [[ -n $CLONE ]] && ! grep -q '^pinned=true' "$p/ostree/deploy/$OSNAME/deploy/$CLONE.origin" && fail "the clone's origin has no pinned=true"
  true
}

scenario clone_vs_reorder "after --hotfix with a clone, a reorder through libostree's write_deployments (Python GObject bindings): every entry boots what it should"
t_clone_vs_reorder() {
  local p
  p=$(phys clone-reorder)
  clone_hotfixed "$p"
  # The list reversed, written by libostree itself (offline).
  /usr/bin/python3 - "$p" <<'EOF' || fail "write_deployments through python3-gi failed"
import sys
import gi
gi.require_version("OSTree", "1.0")
from gi.repository import Gio, OSTree
s = OSTree.Sysroot.new(Gio.File.new_for_path(sys.argv[1]))
s.load(None)
d = s.get_deployments()
print("before:", [x.get_csum()[:8] + "." + str(x.get_deployserial()) for x in d])
d.reverse()
s.write_deployments(d, None)
s.load(None)
print("after:", [x.get_csum()[:8] + "." + str(x.get_deployserial()) for x in s.get_deployments()])
EOF
  check_entries "$p" 1
  status_agree "$p"
  boot "$p" --tag after-reorder < <(hotfixed_script)
  [[ -n $CLONE ]] && boot_clone "$p" clone-boot <<'EOF'
[ "$(usr_fstype)" != overlay ] || fail "the clone's entry boots a hotfix overlay after the reorder"
[ "$(cat /usr/share/which-deployment)" = A ] || fail "the clone's entry does not boot commit A after the reorder"
EOF
  true
}

# unlocked_vs_ostree MODE: a development or transient unlock, then the real
# ostree's ordinary operations in the same boot: a deploy of a commit with
# the same kernel and no version, a pin, a deploy of a new version, a
# cleanup, an undeploy of deployment 2; /usr stays as the unlock left it and
# both statuses say so; then a reorder through libostree's write_deployments
# (offline); after them, every boot entry boots a deployment that exists,
# none a clone, and the next boot of deployment 1 is pristine.
unlocked_vs_ostree() {
  local mode=$1 p flag=""
  [[ $mode == transient ]] && flag=--transient
  p=$(phys "ostree-ops-$mode")
  commit_on "$p" ""
  boot "$p" --tag "$mode-ostree-ops" <<EOF
run unlock \$U $flag
expect_success "$mode unlock"
expect_usr_overlay "after the $mode unlock"
run deploy-same ostree admin deploy --retain --os=$OSNAME $OSNAME/stable
expect_success "ostree admin deploy (same kernel, no version)"
run pin ostree admin pin 1
expect_success "ostree admin pin 1 (the booted deployment)"
EOF
  commit_on "$p" 7
  boot "$p" --tag "$mode-ostree-ops-2" <<EOF
run unlock \$U $flag
expect_success "$mode unlock"
run deploy-version ostree admin deploy --os=$OSNAME $OSNAME/stable
expect_success "ostree admin deploy (version 7)"
run cleanup ostree admin cleanup
expect_success "ostree admin cleanup"
d2=\$(ostree admin status | sed -n "s/^[* ] $OSNAME \\([0-9a-f]*\\.[0-9]*\\).*/\\1/p" | grep -n "^$DEPLOY_2_NAME\\\$" | cut -d: -f1)
if [ -n "\$d2" ]; then
  run undeploy ostree admin undeploy \$((d2 - 1))
  expect_success "ostree admin undeploy of deployment 2"
fi
expect_usr_overlay "after the ostree operations"
status_says $mode
EOF
  # A reorder by libostree itself (offline: the booted systems have no python).
  /usr/bin/python3 - "$p" <<'PYEOF2' || fail "write_deployments through python3-gi failed"
import sys
import gi
gi.require_version("OSTree", "1.0")
from gi.repository import Gio, OSTree
s = OSTree.Sysroot.new(Gio.File.new_for_path(sys.argv[1]))
s.load(None)
d = s.get_deployments()
d.reverse()
s.write_deployments(d, None)
PYEOF2
  check_entries "$p" 0
  status_agree "$p"
  boot "$p" --tag "$mode-after" <<'EOF'
expect_usr_pristine "the boot after the $mode unlock and the ostree operations"
status_says none
EOF
}

scenario unlocked_vs_ostree_development "development unlock, then real ostree deploy (same kernel; a version), pin, cleanup, undeploy, write_deployments: /usr and statuses as the unlock left them, every entry boots, next boot pristine"
t_unlocked_vs_ostree_development() { unlocked_vs_ostree development; }

scenario unlocked_vs_ostree_transient "transient unlock, then the same real ostree operations: /usr and statuses as the unlock left them, every entry boots, next boot pristine"
t_unlocked_vs_ostree_transient() { unlocked_vs_ostree transient; }

scenario clone_no_clone "--no-clone: no new deployment, the pristine entry as before; --status says there is no clone"
t_clone_no_clone() {
  local p before
  p=$(phys clone-no)
  before=$(ls "$p/ostree/deploy/$OSNAME/deploy")
  boot "$p" <<'EOF'
run unlock $U --hotfix --no-clone
expect_success "--hotfix --no-clone"
expect_no_output "Deploying" "no clone deployed"
expect_output "only boot loaders reading /boot/loader/entries show it" "--no-clone says what the pristine entry covers"
expect_usr_overlay
run status $U --status
expect_output "no pristine clone" "--status: no clone"
expect_output "pristine-ostree-" "--status: the pristine entry"
run again $U --hotfix --no-clone
expect_output "nothing to do"
EOF
  [[ $(ls "$p/ostree/deploy/$OSNAME/deploy") == "$before" ]] || fail "--no-clone changed the deployments"
  ls "$p"/boot/loader/entries/pristine-*.conf >/dev/null 2>&1 || fail "--no-clone made no pristine entry"
  check_entries "$p" 0
  status_agree "$p"
}

scenario clone_no_ostree "no ostree program in PATH: --hotfix fails before changing anything, saying --no-clone"
t_clone_no_ostree() {
  local p before
  p=$(phys clone-no-ostree)
  before=$(cd "$p" && find boot ostree/deploy -maxdepth 5 -printf '%p %s\n' | sort | md5sum)
  boot "$p" <<'EOF'
mkdir -p /tmp/empty-path
run unlock env PATH=/tmp/empty-path $U --hotfix
expect_failure "--hotfix without ostree"
expect_output "no ostree command" "the error says what is missing"
expect_output "--no-clone" "the error suggests --no-clone"
expect_usr_pristine "after the refused --hotfix"
status_says none
run explicit $U --hotfix --ostree /nonexistent/ostree
expect_failure "--ostree /nonexistent/ostree"
expect_output "/nonexistent/ostree" "the error names the path"
EOF
  [[ $(cd "$p" && find boot ostree/deploy -maxdepth 5 -printf '%p %s\n' | sort | md5sum) == "$before" ]] ||
    fail "the refused --hotfix changed the boot entries or deployments"
  has_immutable "$p/$DEPLOY_1" || fail "deployment 1 lost its immutable attribute"
}

scenario clone_ostree_fails "ostree admin deploy failing (exit 3): --hotfix fails naming the command and its exit status, nothing of the hotfix written"
t_clone_ostree_fails() {
  local p
  p=$(phys clone-ostree-fails)
  boot "$p" <<'EOF'
printf '#!/tmp/.h/bin/sh\necho "fake ostree: $*" >&2\nexit 3\n' >/tmp/failing-ostree
chmod 0755 /tmp/failing-ostree
run unlock $U --hotfix --ostree /tmp/failing-ostree
expect_exit 1 "--hotfix with a failing ostree"
expect_output "fake ostree: admin deploy --os=$OSNAME --not-as-default --retain" "ostree's own output passed through, with the arguments"
expect_output "/tmp/failing-ostree admin deploy .*failed: exit status 3" "the error names the command and its exit status"
expect_no_file "$D1/.usr-ovl-upper" "no marker after the failed clone"
expect_no_file "$D1/.usr-ovl-work" "no marker after the failed clone"
expect_no_file "$PHYS/ostree/deploy/$OSNAME/.ostree-unlock-clone.origin" "our origin file for ostree, removed"
expect_usr_pristine "after the failed clone"
status_says none
EOF
  ls "$p"/boot/loader/entries/pristine-*.conf >/dev/null 2>&1 && fail "the failed clone left a pristine entry"
  check_entries "$p" 0
}

scenario clone_offline "offline --sysroot: the clone by the host's ostree (--sysroot passed on), after the default deployment; of a named one, where ostree places it"
t_clone_offline() {
  local p list
  p=$(phys clone-offline)
  run_host hotfix "$UL_UNLOCK" --sysroot "$p" --hotfix
  expect_success "offline --hotfix with the clone"
  expect_output "pristine clone"
  mapfile -t list < <(ostree admin status --sysroot="$p" | sed -n "s/^[* ] $OSNAME \([0-9a-f]*\.[0-9]*\).*/\1/p")
  echo "  order: ${list[*]}"
  [[ ${list[0]} == "$DEPLOY_2_NAME" && ${list[1]} == "${DEPLOY_2_NAME%.*}".* && ${list[2]} == "$DEPLOY_1_NAME" ]] ||
    fail "offline: expected deployment 2 (hotfixed, default), its clone, deployment 1; got ${list[*]}"
  is_pristine_deployment "$p" "${list[1]}" || fail "offline: the clone ${list[1]} is not pristine"
  # a named, non-default deployment: ostree puts the clone after the first
  run_host named "$UL_UNLOCK" --sysroot "$p" --deployment "$DEPLOY_1_NAME" --hotfix
  expect_success "offline --deployment D1 --hotfix"
  check_entries "$p" 1
  status_agree "$p"
  mapfile -t list < <(ostree admin status --sysroot="$p" | sed -n "s/^[* ] $OSNAME \([0-9a-f]*\.[0-9]*\).*/\1/p")
  echo "  order: ${list[*]}"
  [[ ${list[1]} == "$CLONE" ]] || fail "offline: the clone of a non-default deployment is not at index 1 (after the first) as ostree places it"
  run_host again "$UL_UNLOCK" --sysroot "$p" --deployment "$DEPLOY_1_NAME" --hotfix
  expect_output "nothing to do"
  boot "$p" <<'EOF'
expect_usr_overlay "boot of the offline-hotfixed deployment 1"
EOF
}

scenario stale_pristine_link "a pristine link whose deployment is gone (ostree admin undeploy): --status notes it, the next run removes it"
t_stale_pristine_link() {
  local p i link
  p=$(phys stale-link)
  run_host hotfix "$UL_UNLOCK" --sysroot "$p" --deployment "$DEPLOY_1_NAME" --hotfix --no-clone
  expect_success
  link=$p/ostree/deploy/$OSNAME/pristine/$DEPLOY_1_NAME
  [[ -L $link ]] || fail "no pristine link after --hotfix"
  i=$(ostree admin status --sysroot="$p" | sed -n "s/^[* ] $OSNAME \([0-9a-f]*\.[0-9]*\).*/\1/p" | grep -n "^$DEPLOY_1_NAME\$" | cut -d: -f1)
  ostree admin undeploy --sysroot="$p" "$((i - 1))" || fail "ostree admin undeploy of deployment 1"
  [[ -e $p/$DEPLOY_1 ]] && fail "deployment 1 still there after its undeploy"
  run_host status "$UL_UNLOCK" --sysroot "$p" --status
  expect_output "pristine boot link .*$DEPLOY_1_NAME names a deployment that is gone" "--status notes the stale link"
  [[ -L $link ]] || fail "--status removed the link (it only reports)"
  run_host discard "$UL_UNLOCK" --sysroot "$p" --discard
  expect_success "--discard of deployment 2 (nothing to discard)"
  expect_output "Removed the pristine boot link" "the run says it removed the stale link"
  [[ -L $link ]] && fail "the stale pristine link is still there after the next run"
  true
}

# --- security ----------------------------------------------------------------

scenario security "planted symlinks refused or removed, marker dirs not world-writable, setuid kept in the hotfix"
t_security() {
  local p q
  p=$(phys security-link)
  chattr -i "$p/$DEPLOY_1"
  ln -s /etc "$p/$DEPLOY_1/.usr-ovl-upper"
  mkdir -m 0755 "$p/$DEPLOY_1/.usr-ovl-work"
  chattr +i "$p/$DEPLOY_1"
  boot "$p" <<'EOF'
before=$(ls -la /etc; stat -c '%a %u %g' /etc)
run unlock $U --hotfix
expect_failure "--hotfix with .usr-ovl-upper -> /etc"
expect_output '\.usr-ovl-upper' "the path .usr-ovl-upper"
[ "$(ls -la /etc; stat -c '%a %u %g' /etc)" = "$before" ] || fail "/etc changed"
[ -L "$D1/.usr-ovl-upper" ] || fail "the planted symlink is gone (replaced?)"
expect_usr_pristine "after the refused --hotfix"
[ -z "$(origin_unlocked "$DEPLOY_1_NAME")" ] || fail "refused --hotfix wrote unlocked= into the origin"
EOF
  has_immutable "$p/$DEPLOY_1" || fail "deployment 1 left without its immutable attribute by the refused --hotfix"
  # development: a planted backing/D1/usr-transient -> /etc is removed, never followed
  q=$(phys security-dev)
  mkdir -p "$q/ostree/deploy/$OSNAME/backing/$DEPLOY_1_NAME"
  chmod 0700 "$q/ostree/deploy/$OSNAME/backing" "$q/ostree/deploy/$OSNAME/backing/$DEPLOY_1_NAME"
  ln -s /etc "$q/ostree/deploy/$OSNAME/backing/$DEPLOY_1_NAME/usr-transient"
  boot "$q" --shared <<'EOF'
before=$(ls -la /etc; stat -c '%a %u %g' /etc)
run unlock $U
expect_success "development with a planted usr-transient symlink"
[ "$(ls -la /etc; stat -c '%a %u %g' /etc)" = "$before" ] || fail "/etc changed"
[ -d "$BK1/usr-transient" ] && ! [ -L "$BK1/usr-transient" ] || fail "usr-transient is not a real directory"
# nothing the tool made is world-writable
for d in "$BK1/usr-transient" "$BK1/usr-transient/upper" "$BK1/usr-transient/work" "$BK1" /run/ostree/deployment-state "$STATE1"; do
  m=$(stat -c %a "$d")
  case $m in *[2367]) fail "$d is world-writable ($m)" ;; esac
done
EOF
  # hotfix: modes under a permissive umask, setuid through the overlay
  boot "$(phys security-hotfix)" <<'EOF'
umask 0
run unlock $U --hotfix
expect_success
for d in "$D1/.usr-ovl-upper" "$D1/.usr-ovl-work"; do
  m=$(stat -c %a "$d")
  case $m in *[2367]) fail "$d is world-writable ($m)" ;; esac
done
umask 022
cp /usr/bin/busybox /usr/bin/suid-bb && chown 0:0 /usr/bin/suid-bb && chmod 4755 /usr/bin/suid-bb || fail "could not install a setuid binary into /usr"
[ "$(stat -c %a /usr/bin/suid-bb)" = 4755 ] || fail "setuid bit lost through the overlay: $(stat -c %a /usr/bin/suid-bb)"
[ "$(stat -c %a "$D1/.usr-ovl-upper/bin/suid-bb")" = 4755 ] || fail "setuid bit lost in the upper directory"
case ",$(top_mount /usr | awk '{print $6}')," in *,nosuid,*) fail "/usr overlay is nosuid" ;; esac
EOF
  boot "$(phys security-hotfix)" --tag reboot <<'EOF'
[ "$(stat -c %a /usr/bin/suid-bb 2>/dev/null)" = 4755 ] || fail "setuid bit lost after reboot: $(stat -c %a /usr/bin/suid-bb 2>&1)"
case ",$(top_mount /usr | awk '{print $6}')," in *,nosuid,*) fail "/usr overlay is nosuid after reboot" ;; esac
EOF
}

# --- non-root ----------------------------------------------------------------

scenario non_root "run as an unprivileged user (live and offline): refused, saying it needs root"
NEEDS_ROOT='needs? root|must (be run as|be) root|requires? root|root privileges|only root'
t_non_root() {
  local p
  p=$(phys nonroot)
  boot "$p" < <(echo "NEEDS_ROOT='$NEEDS_ROOT'"; cat <<'EOF'
for mode in "" --hotfix --transient --discard; do
  run nonroot setpriv --reuid=65534 --regid=65534 --clear-groups $U $mode
  expect_failure "unprivileged ostree-unlock $mode"
  expect_output "$NEEDS_ROOT" "that it needs root"
done
# offline, on a sysroot the user can read
for mode in --hotfix --discard; do
  run nonroot-offline setpriv --reuid=65534 --regid=65534 --clear-groups $U --sysroot /sysroot $mode
  expect_failure "unprivileged offline $mode"
  expect_output "$NEEDS_ROOT" "that it needs root"
done
expect_usr_pristine "after the refused unprivileged unlocks"
expect_no_file "$STATE1"
expect_no_file "$D1/.usr-ovl-work"
expect_no_file "$D2/.usr-ovl-work"
EOF
  )
  # offline, on a sysroot the user cannot even read (unlock.sh's scratch is 0700)
  run_host nonroot-offline setpriv --reuid=65534 --regid=65534 --clear-groups "$UL_UNLOCK" --sysroot "$p" --hotfix
  expect_failure "unprivileged offline --hotfix"
  expect_output "$NEEDS_ROOT" "that it needs root, on an unreadable sysroot"
  [[ -e $p/$DEPLOY_2/.usr-ovl-upper ]] && fail "unprivileged offline --hotfix created markers"
  true
}

# --- composefs -----------------------------------------------------------------
# Roots booted by our ostree-prepare-root from composefs-fixture.sh's sysroot
# (made by ostree 2026.4: an .ostree.cfs EROFS image in each deployment):
# / is the composefs overlay, /usr a directory of it (no mount of its own).

# cfs_phys NAME: a composefs physical root whose deployment 1 has, in its
# own usr on the physical root, a file the image lacks: it shows in /usr
# only when that usr is an overlay's lower layer.
cfs_phys() {
  local p
  p=$(phys "$1") || return 1
  if [[ ! -e $p/$DEPLOY_1/usr/share/physical-only ]]; then
    printf 'physical\n' >"$p/$DEPLOY_1/usr/share/physical-only"
  fi
  echo "$p"
}

# The checks every composefs boot starts with (busybox sh).
# shellcheck disable=SC2016 # expanded in the booted system
CFS_BOOTED='
top_mount / | grep -q " - overlay composefs " || fail "/ is not the composefs overlay: $(top_mount /)"
[ -z "$(top_mount /usr)" ] || fail "/usr is a mount of its own on a composefs root: $(top_mount /usr)"
expect_not_writable /usr "the composefs /usr"
expect_no_file /usr/share/physical-only "the image has no physical-only"
'

scenario composefs_development "composefs root: development unlock over the deployment's own usr (as upstream's lowerdir=usr), writes in its backing dir, status says composefs; gone at the next boot"
t_composefs_development() {
  local p
  use_composefs || return 1
  p=$(cfs_phys cfs-dev) || return 1
  boot "$p" < <(echo "$CFS_BOOTED"; cat <<'EOF'
run unlock $U
expect_success "development unlock on a composefs root"
expect_output "Development mode enabled"
expect_usr_overlay "after development unlock"
note "the /usr overlay: $(top_mount /usr)"
expect_file_content /usr/share/physical-only physical
expect_file_content /usr/share/which-deployment A
touch /usr/x 2>/dev/null || fail "touch /usr/x failed: /usr not writable after unlock"
expect_file "$BK1/usr-transient/upper/x" "the write lands in the deployment's backing usr-transient/upper"
expect_no_file "$D1/usr/x" "the write stays out of the deployment's usr"
expect_file "$STATE1/unlocked-development"
top_mount / | grep -q " - overlay composefs " || fail "/ is no longer the composefs overlay"
run status $U --status
expect_success "--status"
expect_output "Unlocked: development$"
expect_output "Root: composefs$" "--status names the composefs root"
run json $U --status --json
expect_success "--status --json"
expect_output '"unlocked":"development",.*"composefs":\{"verity":false,"signed":false\}' "--status --json: composefs"
EOF
  )
  boot "$p" --tag reboot < <(echo "$CFS_BOOTED"; cat <<'EOF'
expect_no_file /usr/x "development file after reboot"
expect_no_file "$BK1/usr-transient" "stale development data (prepare-root deletes it)"
expect_no_file "$STATE1/unlocked-development"
run status $U --status
expect_output "Unlocked: none$"
EOF
  )
}

scenario composefs_transient "composefs root: transient unlock, read-only overlay over the deployment's own usr, writable after a private remount"
t_composefs_transient() {
  local p
  use_composefs || return 1
  p=$(cfs_phys cfs-transient) || return 1
  boot "$p" --shared < <(echo "$CFS_BOOTED"; cat <<'EOF'
run unlock $U --transient
expect_success "--transient on a composefs root"
expect_usr_overlay
expect_not_writable /usr "transient overlay, normal writes"
expect_file_content /usr/share/physical-only physical
expect_file "$STATE1/unlocked-transient"
run remount unshare -m sh -c 'mount -o remount,rw /usr && touch /usr/y'
expect_success "remount rw and write in a private namespace"
expect_file /usr/y "the write is visible (read-only) outside"
expect_file "$BK1/usr-transient/upper/y"
run status $U --status
expect_output "Unlocked: transient$"
EOF
  )
}

scenario composefs_hotfix "composefs root (enabled=yes): --hotfix writable now over the composefs /usr; the next boot's prepare-root mounts it over the image's /usr"
t_composefs_hotfix() {
  local p
  use_composefs || return 1
  p=$(cfs_phys cfs-hotfix) || return 1
  boot "$p" < <(echo "$CFS_BOOTED"; cat <<'EOF'
run unlock $U --hotfix --no-clone
expect_success "--hotfix on a composefs root"
expect_usr_overlay
echo fixed >/usr/hf 2>/dev/null || fail "/usr not writable after --hotfix"
expect_file_content "$D1/.usr-ovl-upper/hf" fixed
expect_no_file /usr/share/physical-only "the live hotfix overlay is over the image's /usr, as at boot"
[ "$(origin_unlocked "$DEPLOY_1_NAME")" = hotfix ] || fail "origin has no unlocked=hotfix"
EOF
  )
  has_immutable "$p/$DEPLOY_1" || fail "deployment 1 not immutable after --hotfix"
  boot "$p" --tag reboot <<'EOF'
top_mount / | grep -q " - overlay composefs " || fail "/ is not the composefs overlay: $(top_mount /)"
expect_usr_overlay "prepare-root's hotfix overlay over the composefs /usr"
expect_file_content /usr/hf fixed
expect_no_file /usr/share/physical-only "the hotfix overlay's lower is the image's /usr"
run status $U --status
expect_output "Unlocked: hotfix$"
expect_output "Root: composefs$"
EOF
}

# signed_booted PHYS: /run/ostree-booted (base64) as ostree-prepare-root
# writes it after a signed composefs boot of deployment 1 of PHYS (the
# device and inode of its directory, composefs, composefs.verity,
# composefs.signed with the key file): a GVariant a{sv}, serialized here.
signed_booted() {
  python3 - "$(stat -c %d "$1/$DEPLOY_1")" "$(stat -c %i "$1/$DEPLOY_1")" <<'PY'
import base64, struct, sys

def osize(n):
    return 0 if n == 0 else 1 if n <= 0xff else 2 if n <= 0xffff else 4

def framed(body, offsets):
    # The smallest offset size that can address the whole container.
    for z in (1, 2, 4, 8):
        total = len(body) + len(offsets) * z
        if osize(total) <= z:
            return body + b"".join(o.to_bytes(z, "little") for o in offsets)
    raise ValueError

def pad8(b):
    return b + b"\0" * (-len(b) % 8)

def entry(key, value, typ):
    k = key.encode() + b"\0"
    return framed(pad8(k) + value + b"\0" + typ.encode(), [len(k)])

dev, ino = int(sys.argv[1]), int(sys.argv[2])
items = [
    entry("backing-root-device-inode", struct.pack("<QQ", dev, ino), "(tt)"),
    entry("composefs", b"\1", "b"),
    entry("composefs.signed", b"/etc/ostree/initramfs-root-binding.key\0", "s"),
    entry("composefs.verity", b"\1", "b"),
    entry("root.transient", b"\0", "b"),
    entry("root.transient-ro", b"\0", "b"),
    entry("sysroot-ro", b"\1", "b"),
]
body, ends = b"", []
for e in items:
    body = pad8(body) + e
    ends.append(len(body))
sys.stdout.write(base64.b64encode(framed(body, ends)).decode() + "\n")
PY
}

scenario composefs_hotfix_signed "signed composefs boot (faked: composefs.signed written into /run/ostree-booted, no signed boot here): --hotfix refused before anything changes; development still works"
t_composefs_hotfix_signed() {
  local p b64
  use_composefs || return 1
  p=$(cfs_phys cfs-signed) || return 1
  b64=$(signed_booted "$p") || { fail "cannot serialize the signed /run/ostree-booted"; return 1; }
  # A real signed boot needs a commit signed with Ed25519, which Debian's
  # ostree 2026.4 cannot make; prepare-root's record of it is what
  # ostree-unlock reads, so the record is written over the real one.
  boot "$p" < <(echo "$CFS_BOOTED"; echo "B64='$b64'"; cat <<'EOF'
echo "$B64" | base64 -d >/run/ostree-booted.new && mv /run/ostree-booted.new /run/ostree-booted
run status $U --status
expect_success "--status with the signed record"
expect_output "Root: composefs, verity, signed$" "--status names the signed composefs root"
run json $U --status --json
expect_output '"composefs":\{"verity":true,"signed":true\}' "--status --json: signed"
run hotfix $U --hotfix --no-clone
expect_failure "--hotfix on a signed composefs root"
expect_output "signed" "the reason names the signature"
expect_output "composefs.signed" "and where it was read"
expect_no_file "$D1/.usr-ovl-upper" "refused --hotfix left no marker"
expect_no_file "$D1/.usr-ovl-work" "refused --hotfix left no marker"
[ -z "$(origin_unlocked "$DEPLOY_1_NAME")" ] || fail "refused --hotfix wrote unlocked= into the origin"
[ -z "$(top_mount /usr)" ] || fail "refused --hotfix mounted on /usr: $(top_mount /usr)"
expect_no_file "/boot/loader/entries/pristine-$DEPLOY_1_NAME.conf" "refused --hotfix wrote no pristine entry"
ls /boot/loader/entries/ | grep -q pristine && fail "a pristine entry after the refusal: $(ls /boot/loader/entries/)"
run unlock $U
expect_success "development on a signed composefs root (upstream allows it too)"
expect_writable /usr
EOF
  )
}

scenario composefs_offline_signed "offline: --hotfix refused when the deployment's own prepare-root.conf says enabled = signed (/etc's before /usr/lib's), allowed for yes"
t_composefs_offline_signed() {
  local p d etc lib
  use_composefs || return 1
  p=$(cfs_phys cfs-offline) || return 1
  d=$p/$DEPLOY_1
  etc=$d/etc/ostree/prepare-root.conf lib=$d/usr/lib/ostree/prepare-root.conf
  # usr/lib's file is a hard link into the repository: replaced, never written through.
  rm -f "$lib"
  printf '[composefs]\nenabled = signed\n' >"$lib"
  run_host signed-lib "$UL_UNLOCK" --sysroot "$p" --deployment "$DEPLOY_1_NAME" --hotfix --no-clone
  expect_failure "offline --hotfix, usr/lib/ostree/prepare-root.conf says signed"
  expect_output "usr/lib/ostree/prepare-root.conf says \[composefs\] enabled = signed" "the reason names the file"
  [[ -e $d/.usr-ovl-upper || -e $d/.usr-ovl-work ]] && fail "the refused offline --hotfix made markers"
  grep -q '^unlocked=' "$d.origin" && fail "the refused offline --hotfix wrote unlocked= into the origin"
  compgen -G "$p/boot/loader/entries/pristine-*" >/dev/null && fail "the refused offline --hotfix wrote a pristine entry"
  # /etc's file is the one read when it exists.
  mkdir -p "$(dirname "$etc")"
  printf '[composefs]\nenabled = yes\n' >"$etc"
  run_host etc-yes "$UL_UNLOCK" --sysroot "$p" --deployment "$DEPLOY_1_NAME" --status
  expect_success "offline --status"
  printf '# the deployment'"'"'s own\n[composefs]\nenabled=signed\n' >"$etc"
  rm -f "$lib"
  printf '[composefs]\nenabled = yes\n' >"$lib"
  run_host signed-etc "$UL_UNLOCK" --sysroot "$p" --deployment "$DEPLOY_1_NAME" --hotfix --no-clone
  expect_failure "offline --hotfix, etc/ostree/prepare-root.conf says signed"
  expect_output "etc/ostree/prepare-root.conf says" "the reason names /etc's file"
  [[ -e $d/.usr-ovl-upper ]] && fail "the refused offline --hotfix made markers"
  printf '[composefs]\nenabled = yes\n' >"$etc"
  rm -f "$lib"
  printf '[composefs]\nenabled = signed\n' >"$lib"
  run_host etc-wins "$UL_UNLOCK" --sysroot "$p" --deployment "$DEPLOY_1_NAME" --hotfix --no-clone
  expect_success "offline --hotfix: /etc's enabled = yes wins over /usr/lib's signed"
  [[ -d $d/.usr-ovl-upper && -d $d/.usr-ovl-work ]] || fail "offline --hotfix made no markers"
  true
}

# ref_ostree_bundle: ostree 2026.4's CLI from the composefs reference chroot
# with the shared libraries it loads and their loader (as
# composefs-fixture.sh bundles its prepare-root), built once in the cache;
# prints its directory (ostree, ld.so, lib/).
ref_ostree_bundle() {
  local out=$MOUNTNS_CACHE/composefs/ref-ostree chroot=$UL_REPO_ROOT/.cache/composefs-ref/root lib
  if [[ ! -x $out/ostree ]]; then
    [[ -x $chroot/usr/bin/ostree ]] || { echo "no reference chroot ($chroot)" >&2; return 1; }
    rm -rf "$out.new"
    mkdir -p "$out.new/lib"
    cp "$chroot/usr/bin/ostree" "$out.new/"
    "$UL_REPO_ROOT/scripts/composefs-ref-run.sh" ldd /usr/bin/ostree >"$out.new/ldd.txt" || return 1
    while read -r lib; do
      cp -L "$chroot$lib" "$out.new/lib/"
    done < <(grep -oE '/[^ ]+\.so[^ ]*' "$out.new/ldd.txt" | sort -u)
    cp -L "$chroot/usr/lib64/ld-linux-x86-64.so.2" "$out.new/ld.so"
    rm -rf "$out"
    mv "$out.new" "$out"
  fi
  echo "$out"
}

scenario composefs_upstream_development "composefs root: ostree 2026.4's own 'ostree admin unlock' (shared propagation, as it needs) also mounts over the deployment's own usr; ostree-unlock reads its state"
t_composefs_upstream_development() {
  local p bundle
  use_composefs || return 1
  bundle=$(ref_ostree_bundle) || { fail "cannot bundle ostree 2026.4's CLI"; return 1; }
  p=$(cfs_phys cfs-upstream) || return 1
  boot "$p" --shared --extra "$bundle" < <(echo "$CFS_BOOTED"; cat <<'EOF'
ostree26() { "$H/extra/ld.so" --library-path "$H/extra/lib" "$H/extra/ostree" "$@"; }
run c-version ostree26 --version
expect_output "2026.4"
run c-unlock ostree26 admin unlock
expect_success "ostree 2026.4's admin unlock on a composefs root"
expect_usr_overlay "after ostree 2026.4's unlock"
note "ostree 2026.4's /usr overlay: $(top_mount /usr)"
expect_file_content /usr/share/physical-only physical
touch /usr/x 2>/dev/null || fail "/usr not writable after ostree 2026.4's unlock"
expect_file "$BK1/usr-transient/upper/x" "2026.4's data in the deployment's backing usr-transient"
run status $U --status
expect_output "Unlocked: development$" "ostree-unlock reads 2026.4's state"
run again $U
expect_success "ostree-unlock after 2026.4's development unlock"
expect_output "already unlocked"
EOF
  )
}

##############################################################################
# Driver
##############################################################################

usage() { sed -n '2,13s/^# \{0,1\}//p' "$HERE/unlock.sh"; }

run_scenario() {
  local n=$1 name=$2 log=$UL_SCRATCH/logs/$2.log rc start
  start=$SECONDS
  set +e
  (
    set +e
    UL_SCENARIO=$name
    FAILURES=0
    "t_$name"
    ((FAILURES == 0))
  ) >"$log" 2>&1
  rc=$?
  set -e
  tap_result "$n" "$name" "$rc" "$log"
  if ((rc != 0 || VERBOSE)); then echo "# ($((SECONDS - start))s)"; fi
  return "$rc"
}

# release_phys [KEEP...]: unmount and delete the physical roots, but KEEP.
# shellcheck disable=SC2120 # called with arguments through tap_run
release_phys() {
  local img name
  for img in "$UL_SCRATCH"/*.img; do
    [[ -e $img ]] || continue
    name=$(basename "$img" .img)
    [[ " $* " == *" $name "* ]] && continue
    drop_phys "${img%.img}"
  done
}

inner_main() {
  local filter=$1 keep=$2
  UL_SCRATCH=$UL_INNER/mnt
  mount -t tmpfs -o mode=0700 unlock-scratch "$UL_SCRATCH"
  mkdir -p "$UL_SCRATCH/logs" "$UL_SCRATCH/results"
  # shellcheck source=/dev/null
  source "$MOUNTNS_CACHE/fixture.env"
  if ! tap_select unlock.sh "$filter"; then
    umount -l "$UL_SCRATCH"
    return 1
  fi
  echo "# unlock:       $UL_UNLOCK"
  echo "# prepare-root: $UL_PREPARE"
  # After each: development_reboot reboots the physical roots of the two
  # before it; the others go.
  tap_run release_phys dev-private dev-shared
  # shellcheck disable=SC2119 # no root is kept at the end
  release_phys
  if [[ -n $keep ]]; then mkdir -p "$keep" && cp -a "$UL_SCRATCH/results" "$UL_SCRATCH/logs" "$keep/"; fi
  umount -l "$UL_SCRATCH"
  echo "# ${SECONDS}s"
  tap_summary
}

main() {
  local filter="" keep=""
  local -a pass=()
  UL_UNLOCK=$UL_REPO_ROOT/target/x86_64-unknown-linux-musl/release/ostree-unlock
  UL_UNLOCK_CRASH=$UL_REPO_ROOT/target/crash-hook/x86_64-unknown-linux-musl/release/ostree-unlock
  UL_PREPARE=""
  UL_BUSYBOX=/bin/busybox
  VERBOSE=0
  while (($#)); do
    case $1 in
      --unlock) UL_UNLOCK=$2; shift 2 ;;
      --unlock-crash) UL_UNLOCK_CRASH=$2; shift 2 ;;
      --prepare) UL_PREPARE=$2; shift 2 ;;
      --keep) keep=$(realpath -m "$2"); shift 2 ;;
      -v) VERBOSE=1; shift ;;
      -h | --help) usage; return 0 ;;
      -*) echo "unlock.sh: unknown option $1" >&2; usage >&2; return 2 ;;
      *) filter=$1; shift ;;
    esac
  done
  UL_UNLOCK=$(realpath -m "$UL_UNLOCK")
  UL_UNLOCK_CRASH=$(realpath -m "$UL_UNLOCK_CRASH")
  UL_PREPARE=$(realpath -m "${UL_PREPARE:-$(dirname "$UL_UNLOCK")/ostree-prepare-root}")
  export UL_UNLOCK UL_UNLOCK_CRASH UL_PREPARE UL_BUSYBOX VERBOSE
  if [[ -n ${UL_INNER:-} ]]; then
    inner_main "$filter" "$keep"
    return
  fi
  if ((EUID != 0)); then
    echo "unlock.sh: must run as root (mount namespaces, loop devices, pivot_root)" >&2
    return 2
  fi
  local missing=()
  for f in "$UL_UNLOCK" "$UL_UNLOCK_CRASH" "$UL_PREPARE" "$UL_BUSYBOX" /usr/bin/ostree /usr/lib/ostree/ostree-prepare-root \
    /usr/bin/setpriv /usr/sbin/mkfs.ext4 /usr/bin/chattr /usr/bin/lsattr /usr/bin/python3; do
    [[ -e $f ]] || missing+=("$f")
  done
  if ((${#missing[@]})); then
    echo "unlock.sh: missing: ${missing[*]} (make build crash-hook; apt packages: ostree ostree-boot busybox-static e2fsprogs util-linux python3)" >&2
    echo "0 passed, 1 failed"
    return 1
  fi
  if ! file -L "$UL_BUSYBOX" 2>/dev/null | grep -q 'statically linked'; then
    echo "unlock.sh: $UL_BUSYBOX is not a static busybox (apt package busybox-static)" >&2
    echo "0 passed, 1 failed"
    return 1
  fi
  "$HERE/fixture.sh" >/dev/null
  # The composefs scenarios' sysroot (use_composefs), when the reference
  # chroot it is built in is there (scripts/fetch-composefs-ref.sh).
  if [[ -f $UL_REPO_ROOT/.cache/composefs-ref/stamp || -n ${COMPOSEFS_REF_CACHE:-} ]]; then
    "$HERE/composefs-fixture.sh" >/dev/null
  fi
  pass=(--unlock "$UL_UNLOCK" --unlock-crash "$UL_UNLOCK_CRASH" --prepare "$UL_PREPARE")
  tap_common_args pass "$keep" "$filter"
  tap_reexec UL_INNER unlock-mountns "$HERE/unlock.sh" "${pass[@]}"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
