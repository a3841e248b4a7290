# shellcheck shell=bash
# tap.sh - the scenario registry and TAP driver shared by run.sh, pid1.sh and
# unlock.sh (sourced). Each script defines t_NAME functions, registers them
# with `scenario`, and provides `run_scenario N NAME`, which runs one in its
# own way (namespaces, images...) and returns its status.

declare -a SCENARIOS=()
declare -A DESC=()
# Set by tap_select and tap_run.
declare -a TAP_SELECTED=()
TAP_PASSED=0
TAP_FAILED=0

# scenario NAME DESCRIPTION: register t_NAME (run in listed order).
scenario() { SCENARIOS+=("$1"); DESC[$1]=$2; }

# tap_select PROG FILTER: the scenarios whose name matches FILTER (an
# extended regex; empty: all), in TAP_SELECTED, and the TAP plan line. With
# none, an error, the closing line, and status 1.
tap_select() {
  local prog=$1 filter=$2 name
  TAP_SELECTED=()
  for name in "${SCENARIOS[@]}"; do
    if [[ -z $filter ]] || grep -qE -- "$filter" <<<"$name"; then TAP_SELECTED+=("$name"); fi
  done
  if ((${#TAP_SELECTED[@]} == 0)); then
    echo "$prog: no scenario matches '$filter'" >&2
    echo "0 passed, 0 failed"
    return 1
  fi
  echo "1..${#TAP_SELECTED[@]}"
}

# tap_run [AFTER_EACH]: run_scenario for every selected scenario (then the
# command AFTER_EACH, if given), counting in TAP_PASSED and TAP_FAILED.
tap_run() {
  local name n=0
  TAP_PASSED=0 TAP_FAILED=0
  for name in "${TAP_SELECTED[@]}"; do
    n=$((n + 1))
    if run_scenario "$n" "$name"; then
      TAP_PASSED=$((TAP_PASSED + 1))
    else
      TAP_FAILED=$((TAP_FAILED + 1))
    fi
    if (($#)); then "$@"; fi
  done
}

# tap_result N NAME RC LOG: the TAP line of one scenario, then its log as
# diagnostics when it failed (or with -v, VERBOSE=1).
tap_result() {
  local n=$1 name=$2 rc=$3 log=$4
  if ((rc == 0)); then
    echo "ok $n - $name: ${DESC[$name]}"
  else
    echo "not ok $n - $name: ${DESC[$name]}"
  fi
  if ((rc != 0 || VERBOSE)); then
    sed 's/^/# /' "$log"
  fi
}

# tap_summary: the closing line, read by CI; status 0 when nothing failed.
tap_summary() {
  echo "$TAP_PASSED passed, $TAP_FAILED failed"
  ((TAP_FAILED == 0))
}

# tap_reexec VAR PREFIX SCRIPT ARG...: run `bash SCRIPT ARG...` again in a
# private mount namespace (the first pass, on the host, calls this; the
# second sees VAR set and runs the scenarios). VAR names a new scratch
# directory, /tmp/PREFIX.XXXXXX, with an empty mnt/ for the inner run's tmpfs;
# mount(8)'s utab is kept there, out of the host's /run/mount. A caller's
# tap_reexec_cleanup, if defined, gets the scratch directory before it is
# removed. Returns the inner run's status.
tap_reexec() {
  local var=$1 prefix=$2 script=$3 scratch rc
  shift 3
  scratch=$(mktemp -d "/tmp/$prefix.XXXXXX")
  mkdir "$scratch/mnt"
  set +e
  env "$var=$scratch" LIBMOUNT_UTAB="$scratch/utab" \
    unshare --mount --propagation private -- /usr/bin/bash "$script" "$@"
  rc=$?
  set -e
  if declare -F tap_reexec_cleanup >/dev/null; then tap_reexec_cleanup "$scratch"; fi
  rm -rf "$scratch"
  return "$rc"
}

# tap_common_args ARRAY KEEP FILTER: append the options every script passes
# on to its inner run (--keep DIR, -v, the filter) to the array named ARRAY.
tap_common_args() {
  local -n _args=$1
  if [[ -n $2 ]]; then _args+=(--keep "$2"); fi
  if ((VERBOSE)); then _args+=(-v); fi
  if [[ -n $3 ]]; then _args+=("$3"); fi
}
