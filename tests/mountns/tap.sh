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
