# shellcheck shell=bash source-path=SCRIPTDIR
# service-lib.sh - the library of run.sh (the service-mode suite): run an
# ostree-prepare-root binary inside a throw-away mount namespace.
#
# Source this file. The caller must be root, and must have set NS_SCRATCH to a
# directory private to the test run (run.sh mounts a tmpfs there, inside its
# own private mount namespace).
#
# ns_run --impl BIN [options]       one run of BIN; see ns_run below
# compare BIN_A BIN_B [options]     same scenario with both, diff mount trees
#
# Each run happens in three stages:
#   caller     writes the run's parameters, calls `unshare -m -p -f`
#   ns_stage1  (new mount + pid namespace, still seeing the host's files)
#              builds the new root R on a tmpfs: host /usr bound read-only,
#              a private tmpfs on R/usr/lib/ostree holding the tool,
#              /proc with a fake /proc/cmdline, /run tmpfs, and a physical
#              root: its own tmpfs on R/sysroot holding a copy of the fixture;
#              then pivot_root into R and drop the old root
#   ns_stage2  (inside R) setup function, snapshot, tool, snapshot, checks
#
# Inside R (setup and check functions run there) these are set:
#   R=""            the new root; it is "/" after pivot_root, so "$R/etc/x"
#                   names the initramfs's /etc/x
#   PHYS=/sysroot   the physical root *before* the run (after a successful
#                   run it is at /sysroot/sysroot, see phys_after)
#   D1, D2          deployment dirs (before the run): $PHYS/$DEPLOY_n
#   SVAR            the stateroot var: $PHYS/$STATEROOT_VAR
#   T1, T2          the ostree= values of the two boot entries
#   everything from fixture.env (OSNAME, DEPLOY_1, DEPLOY_1_NAME, ...)
#   NS_CMDLINE      the kernel command line of this run
#   NS_WRAPPER      the emulator the tool runs under, a path inside R, or
#                   empty (see NS_IMPL_WRAPPER)
#   LAST_RC         exit status of the last run_tool (LAST_NAME: its tag),
#                   read by assert.sh's expect_success, expect_output...

MOUNTNS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MOUNTNS_REPO_ROOT=$(cd "$MOUNTNS_DIR/../.." && pwd)
MOUNTNS_CACHE=${MOUNTNS_CACHE:-$MOUNTNS_REPO_ROOT/target/mountns-cache}
# shellcheck source=assert.sh
source "$MOUNTNS_DIR/assert.sh"
# The tool's messages are matched ignoring case (expect_output).
# shellcheck disable=SC2034 # read by assert.sh
ASSERT_IGNORE_CASE=1
# Debian's python3 has the GObject bindings; a python3 earlier in PATH may not.
NS_PYTHON=/usr/bin/python3
# A binary of another CPU (the build matrix's aarch64, armv7, riscv64) runs
# under an emulator, qemu-user: NS_IMPL_WRAPPER is its absolute path, used
# for the runs of NS_WRAPPED_IMPL only (the reference is the host's). Named
# on the command line, not left to binfmt_misc, which a container or a fresh
# machine may not have.
NS_IMPL_WRAPPER=${NS_IMPL_WRAPPER:-}
NS_WRAPPED_IMPL=${NS_WRAPPED_IMPL:-}

##############################################################################
# Caller side
##############################################################################

# ns_run --impl BIN [--label NAME] [--cmdline STR] [--no-argv-cmdline]
#        [--arg ARG]... [--setup FN] [--check FN] [--physroot DIR]
#        [--env NAME=VALUE]... [--loop]
#   --cmdline       kernel command line (default $NS_DEFAULT_CMDLINE). It is
#                   always bind-mounted over /proc/cmdline (newline-terminated,
#                   like the kernel's) and, unless --no-argv-cmdline, also
#                   passed as argv[2]. (2022.7 ignores argv[2].)
#   --arg           extra argument placed before the sysroot argument
#   --setup/--check functions run inside R before/after the tool
#   --physroot      bind DIR (a tmpfs mount point) as the physical root
#                   instead of a fresh copy; changes persist across runs
#   --env NAME=VAL  extra environment for the setup/check functions
#   --loop          /dev/loop-control and /dev/loopN block nodes in R's /dev
#                   (a tool may attach a loop device: composefs images);
#                   also NS_LOOP=1 in the environment
# The tool runs as: ostree-prepare-root [ARG...] /sysroot [CMDLINE]
# Sets NS_LAST_RESULTS to the run's results directory. Returns non-zero if
# the namespace could not be built or any check failed.
ns_run() {
  local impl="" label="run" cmdline=${NS_DEFAULT_CMDLINE-} argv_cmdline=1
  local setup="" check="" physroot="" results n=1 loop=${NS_LOOP:-0} wrapper=""
  local -a tool_args=() extra_env=()
  while (($#)); do
    case $1 in
      --impl) impl=$2; shift 2 ;;
      --label) label=$2; shift 2 ;;
      --cmdline) cmdline=$2; shift 2 ;;
      --no-argv-cmdline) argv_cmdline=0; shift ;;
      --arg) tool_args+=("$2"); shift 2 ;;
      --setup) setup=$2; shift 2 ;;
      --check) check=$2; shift 2 ;;
      --physroot) physroot=$2; shift 2 ;;
      --env) extra_env+=("$2"); shift 2 ;;
      --loop) loop=1; shift ;;
      *) echo "ns_run: unknown option '$1'" >&2; return 2 ;;
    esac
  done
  : "${NS_SCRATCH:?NS_SCRATCH must be set (see service-lib.sh)}"
  results=$NS_SCRATCH/results/$label
  while [[ -e $results ]]; do results=$NS_SCRATCH/results/$label.$((++n)); done
  mkdir -p "$results"
  NS_LAST_RESULTS=$results
  local shown
  if [[ -n $NS_IMPL_WRAPPER && $impl == "$NS_WRAPPED_IMPL" ]]; then wrapper=$NS_IMPL_WRAPPER; fi
  shown="== $label: $(basename "$impl")${wrapper:+ (under $(basename "$wrapper"))} cmdline='$cmdline'"
  if ((${#tool_args[@]})); then shown+=" args=(${tool_args[*]})"; fi
  echo "$shown"
  if [[ ! -f $impl ]]; then
    echo "FAIL: binary under test not found: $impl"
    return 1
  fi
  if ((${#tool_args[@]})); then printf '%s\n' "${tool_args[@]}" >"$results/tool-args"; fi
  : >>"$results/tool-args"
  printf '%s\n' "$cmdline" >"$results/cmdline"
  mkdir -p "$NS_SCRATCH/newroot"
  # shellcheck disable=SC2016 # $1 is expanded by the child bash
  env NS_IMPL="$impl" NS_WRAPPER="$wrapper" NS_LABEL="$label" NS_CMDLINE="$cmdline" \
    NS_ARGV_CMDLINE="$argv_cmdline" NS_LOOP="$loop" NS_SETUP="$setup" NS_CHECK="$check" \
    NS_PHYSROOT="$physroot" NS_RESULTS="$results" NS_NEWROOT="$NS_SCRATCH/newroot" \
    NS_SOURCES="${NS_SOURCES:-}" MOUNTNS_CACHE="$MOUNTNS_CACHE" "${extra_env[@]}" \
    LIBMOUNT_UTAB="$NS_SCRATCH/libmount-utab" \
    timeout --kill-after=5 120 \
    unshare --mount --propagation private --pid --fork --kill-child -- \
    /usr/bin/bash -c 'source "$1" && ns_stage1' ns-stage1 "$MOUNTNS_DIR/service-lib.sh"
}

# compare BIN_A BIN_B [--label NAME] [--setup FN] [--setup-a FN] [--setup-b FN]
#         [--check FN] [--filter FN] [ns_run options...]
# Runs the scenario with BIN_A (the implementation: --check applies to it)
# and BIN_B (the reference: it only has to exit 0), each on its own copy of
# the fixture, then diffs the normalized mount trees under /sysroot.
# --setup-a/--setup-b override --setup per side. --filter names a function
# (stdin -> stdout) applied to both trees before diffing; use it only for a
# documented, deliberate difference.
compare() {
  local a=$1 b=$2 label=compare setup="" setup_a="" setup_b="" check="" filter=cat rc=0
  local res_a res_b
  local -a common=()
  shift 2
  while (($#)); do
    case $1 in
      --label) label=$2; shift 2 ;;
      --setup) setup=$2; shift 2 ;;
      --setup-a) setup_a=$2; shift 2 ;;
      --setup-b) setup_b=$2; shift 2 ;;
      --check) check=$2; shift 2 ;;
      --filter) filter=$2; shift 2 ;;
      --no-argv-cmdline) common+=("$1"); shift ;;
      *) common+=("$1" "$2"); shift 2 ;;
    esac
  done
  setup_a=${setup_a:-$setup} setup_b=${setup_b:-$setup}
  ns_run --impl "$a" --label "$label.impl" ${setup_a:+--setup "$setup_a"} \
    ${check:+--check "$check"} "${common[@]}" || rc=1
  res_a=$NS_LAST_RESULTS
  ns_run --impl "$b" --label "$label.ref" ${setup_b:+--setup "$setup_b"} \
    --check expect_success "${common[@]}" || { echo "FAIL: reference run failed"; rc=1; }
  res_b=$NS_LAST_RESULTS
  if [[ ! -f $res_a/after.sysroot.tree || ! -f $res_b/after.sysroot.tree ]]; then
    echo "FAIL: no mount tree to compare"
    return 1
  fi
  if ! diff -u --label "reference $(basename "$b")" --label "impl $(basename "$a")" \
    <("$filter" <"$res_b/after.sysroot.tree") <("$filter" <"$res_a/after.sysroot.tree"); then
    echo "FAIL: mount trees under /sysroot differ (- reference, + impl)"
    rc=1
  fi
  return "$rc"
}

##############################################################################
# Stage 1: in the new namespaces, build R and pivot into it
##############################################################################

ns_stage1() {
  set -euo pipefail
  local r=$NS_NEWROOT src
  # shellcheck source=rootfs.sh
  source "$MOUNTNS_DIR/rootfs.sh"
  mountns_root "$r" sys harness results
  # A private tmpfs over usr/lib/ostree so scenarios control
  # usr/lib/ostree/prepare-root.conf and the tool lives there.
  mount -t tmpfs -o mode=0755 ostree-lib "$r/usr/lib/ostree"
  install -m 0755 "$NS_IMPL" "$r/usr/lib/ostree/ostree-prepare-root"
  # A tool that is a wrapper (composefs.sh's reference: a dynamic C binary
  # with its own libraries) has them in BIN.bundle, next to it.
  if [[ -d $NS_IMPL.bundle ]]; then
    cp -a "$NS_IMPL.bundle" "$r/usr/lib/ostree/ostree-prepare-root.bundle"
  fi
  # The emulator: the host's /usr is R's, anything else is copied in.
  if [[ -n $NS_WRAPPER && $NS_WRAPPER != /usr/* ]]; then
    install -m 0755 "$NS_WRAPPER" "$r/harness/impl-wrapper"
    NS_WRAPPER=/harness/impl-wrapper
  fi
  mountns_dev_nodes "$r/dev"
  if [[ ${NS_LOOP:-0} == 1 ]]; then mountns_loop_nodes "$r/dev"; fi
  mount -t proc proc "$r/proc"
  printf '%s\n' "$NS_CMDLINE" >"$r/harness/cmdline"
  mount --bind "$r/harness/cmdline" "$r/proc/cmdline"
  mount -t tmpfs -o mode=0755 run "$r/run"
  if [[ -n $NS_PHYSROOT ]]; then
    mount --bind "$NS_PHYSROOT" "$r/sysroot"
  else
    mount -t tmpfs -o mode=0755 physroot "$r/sysroot"
    cp -a "$MOUNTNS_CACHE/sysroot/." "$r/sysroot/"
  fi
  cp -a "$MOUNTNS_DIR/." "$r/harness/"
  for src in $NS_SOURCES; do cp "$src" "$r/harness/"; done
  cp "$MOUNTNS_CACHE/fixture.env" "$NS_RESULTS/tool-args" "$r/harness/"
  mount --bind "$NS_RESULTS" "$r/results"
  cd "$r"
  pivot_root . .oldroot
  # mount(8)/umount(8) lock and write a "utab" (default /run/mount/utab):
  # keep that out of the /run the tool under test sees.
  export LIBMOUNT_UTAB=/tmp/.libmount-utab
  umount -l /.oldroot
  rmdir /.oldroot
  exec /usr/bin/bash -c 'source /harness/service-lib.sh && ns_stage2' ns-stage2
}

##############################################################################
# Stage 2: inside R
##############################################################################

ns_stage2() {
  local src rc
  for src in $NS_SOURCES; do
    # shellcheck disable=SC1090
    source "/harness/$(basename "$src")"
  done
  # Checks must keep going after a failed command: no errexit here.
  set +e -u -o pipefail
  cd /
  ns_load_fixture
  FAILURES=0
  ns_py devmap >/results/devmap
  if [[ -n $NS_SETUP ]]; then
    ( set -e; "$NS_SETUP" )
    rc=$?
    if ((rc != 0)); then
      fail "setup function $NS_SETUP failed (exit $rc); tool not run"
      ns_finish
    fi
  fi
  snapshot before
  run_tool tool
  snapshot after
  if [[ -n $NS_CHECK ]]; then "$NS_CHECK"; fi
  ns_finish
}

# shellcheck disable=SC2034 # the variables are for scenario functions
ns_load_fixture() {
  # shellcheck source=/dev/null
  source /harness/fixture.env
  export DEPLOY_1_NAME DEPLOY_2_NAME # normalize.py names them {D1}, {D2}
  R="" PHYS=/sysroot
  D1=$PHYS/$DEPLOY_1 D2=$PHYS/$DEPLOY_2 SVAR=$PHYS/$STATEROOT_VAR
  T1=$OSTREE_TARGET_1 T2=$OSTREE_TARGET_2
}

# Print a summary; on failure add the tool's output and the resulting state.
ns_finish() {
  local rc tag
  if ((FAILURES == 0)); then
    echo "$NS_LABEL: ok (tool exit ${LAST_RC:-not run})"
    exit 0
  fi
  echo "$NS_LABEL: $FAILURES check(s) failed"
  for rc in /results/*.rc; do
    [[ -f $rc ]] || continue
    tag=$(basename "$rc" .rc)
    echo "$tag exit: $(cat "$rc")"
    head -n 30 "/results/$tag.out" | sed "s/^/$tag stdout: /"
    head -n 30 "/results/$tag.err" | sed "s/^/$tag stderr: /"
  done
  echo "mounts at/under /sysroot now:"
  dump_tree /sysroot | sed 's/^/  /'
  echo "/run now:"
  dump_markers | sed 's/^/  /'
  exit 1
}

ns_py() { "$NS_PYTHON" /harness/normalize.py "$@"; }

# run_tool [TAG]: run the tool under test; output in /results/TAG.{out,err,rc}.
run_tool() {
  local tag=${1:-tool}
  local -a argv=()
  mapfile -t argv </harness/tool-args
  argv+=(/sysroot)
  if ((NS_ARGV_CMDLINE)); then argv+=("$NS_CMDLINE"); fi
  # A minimal environment, like an initramfs service's.
  if [[ ${NS_CLOSE_STD:-0} == 1 ]]; then
    # Started with descriptors 0, 1 and 2 closed (no output to keep).
    : >"/results/$tag.out"
    : >"/results/$tag.err"
    (cd / && exec env -i PATH=/usr/sbin:/usr/bin \
      timeout --kill-after=5 30 ${NS_WRAPPER:+"$NS_WRAPPER"} /usr/lib/ostree/ostree-prepare-root "${argv[@]}" <&- >&- 2>&-)
  else
    (cd / && exec env -i PATH=/usr/sbin:/usr/bin \
      timeout --kill-after=5 30 ${NS_WRAPPER:+"$NS_WRAPPER"} /usr/lib/ostree/ostree-prepare-root "${argv[@]}") \
      >"/results/$tag.out" 2>"/results/$tag.err" </dev/null
  fi
  LAST_RC=$?
  LAST_NAME=$tag
  echo "$LAST_RC" >"/results/$tag.rc"
}

# snapshot TAG: the whole mount table, the part under /sysroot, and /run
# (plus the raw mountinfo, for debugging with --keep).
snapshot() {
  cat /proc/self/mountinfo >"/results/$1.mountinfo"
  dump_tree / >"/results/$1.tree"
  dump_tree /sysroot >"/results/$1.sysroot.tree"
  dump_run >"/results/$1.run"
}

# dump_tree [PREFIX...]: normalized mounts at/under PREFIX (default /sysroot).
# Format: see normalize.py.
dump_tree() {
  if (($# == 0)); then set -- /sysroot; fi
  ns_py tree /results/devmap "$@"
}

# dump_run: everything in /run as "PATH TYPE MODE", mkdtemp suffixes masked.
dump_run() {
  find /run -mindepth 1 -printf '/run/%P %y %m\n' |
    sed -E 's/transient-etc\.[A-Za-z0-9]{6}/transient-etc.*/g' | LC_ALL=C sort
}

# dump_markers: the ostree entries of /run, then /run/ostree-booted decoded.
# Returns non-zero if /run/ostree-booted exists but is not a valid a{sv}.
dump_markers() {
  dump_run | grep -E '^/run/ostree' || true
  if [[ -f /run/ostree-booted ]]; then
    echo "/run/ostree-booted as a{sv}:"
    ns_py booted /run/ostree-booted 2>&1 | sed 's/^/  /'
    return "${PIPESTATUS[0]}"
  fi
}

##############################################################################
# Checks (inside R). fail, FAILURES and the checks every suite shares
# (expect_success, expect_output, expect_file, expect_writable...) come from
# assert.sh; these are the ones that read this suite's mount dumps.
##############################################################################

# The physical root after a successful run.
phys_after() { echo "/sysroot/sysroot${1:+/$1}"; }

# last_output: stdout and stderr of the last run_tool (for assert.sh).
last_output() { cat "/results/${LAST_NAME:-tool}.out" "/results/${LAST_NAME:-tool}.err"; }

# mount_line PATH: normalized line of the topmost mount on PATH (or nothing).
mount_line() { ns_py top /results/devmap "$1"; }

# expect_mount PATH [ERE...]: PATH is a mount point and its line matches each ERE.
expect_mount() {
  local path=$1 line re
  shift
  if ! line=$(mount_line "$path"); then
    fail "$path is not a mount point"
    return
  fi
  for re in "$@"; do
    [[ $line =~ $re ]] || fail "mount $path does not match /$re/: $line"
  done
}

expect_no_mount() {
  local line
  if line=$(mount_line "$1"); then fail "$1 is a mount point: $line"; fi
}

# expect_mode PATH TYPE MODE: find(1)'s %y (d, f, l...) and octal %m.
expect_mode() {
  local got
  got=$(find "$1" -maxdepth 0 -printf '%y %m' 2>/dev/null)
  [[ $got == "$2 $3" ]] || fail "$1 is '${got:-missing}', expected type $2 mode $3"
}

# The deployment content visible at /sysroot: 1 or 2.
expect_deployment() {
  local want=$1 letter=A
  if [[ $want == 2 ]]; then letter=B; fi
  expect_file_content /sysroot/usr/share/which-deployment "$letter"
  expect_mount /sysroot "root=/ostree/deploy/$OSNAME/deploy/[{]D${want}[}] "
}

# No mount anywhere in the namespace changed compared to before the run.
expect_mounts_unchanged() {
  local d
  if ! d=$(diff -u /results/before.tree <(dump_tree /)); then
    fail "mount table changed by the run:"
    printf '%s\n' "$d" | sed '1,2d; s/^/    /'
  fi
}

# /run holds the same entries (name, type, mode) as before the run.
expect_run_unchanged() {
  local d
  if ! d=$(diff -u /results/before.run <(dump_run)); then
    fail "/run changed by the run:"
    printf '%s\n' "$d" | sed '1,2d; s/^/    /'
  fi
}

# /run/ostree-booted exists and is a valid GVariant a{sv}.
expect_ostree_booted_valid() {
  local out
  if [[ ! -f /run/ostree-booted ]]; then
    fail "/run/ostree-booted missing"
  elif ! out=$(ns_py booted /run/ostree-booted 2>&1); then
    fail "/run/ostree-booted does not parse as a{sv}: $out"
  fi
}

# booted_entry KEY: "TYPE VALUE" of KEY in /run/ostree-booted (or nothing).
booted_entry() {
  local key rest
  while read -r key rest; do
    if [[ $key == "$1" ]]; then echo "$rest"; fi
  done < <(ns_py booted /run/ostree-booted 2>/dev/null)
}
