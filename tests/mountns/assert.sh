# shellcheck shell=sh
# assert.sh - the checks every mount-namespace suite shares: one `fail`, one
# failure counter, one name per check. Sourced by service-lib.sh (run.sh),
# pid1-lib.sh (pid1.sh) and unlock-lib.sh (unlock.sh, on the host side and,
# by busybox sh, in the booted system), so it is POSIX sh: no arrays, no
# [[ ]], no `local` (helpers' variables start with _a_).
#
# A failed expectation prints "FAIL: ..." and counts in FAILURES; checks do
# not stop the scenario, so one run reports everything that is wrong. A
# scenario passes when FAILURES is still 0 at its end (each suite's driver
# looks at it).
#
# Contract with the suite (what the exit and output checks read):
#   LAST_NAME      what ran last, for messages ("tool", "boot main", the tag
#                  of unlock's `run`)
#   LAST_RC        its exit status
#   last_output    a function printing its output (stdout and stderr)
#   ASSERT_IGNORE_CASE=1  expect_output and expect_no_output match ignoring
#                  case (run.sh and unlock.sh: messages of the tools);
#                  unset or 0: exactly (pid1.sh: kernel log records, lines)

FAILURES=0

# fail MSG: one failed expectation.
fail() {
  echo "FAIL: $*"
  FAILURES=$((FAILURES + 1))
}

# note MSG: information for the log, not a check.
note() { echo "note: $*"; }

##############################################################################
# Exit status of the last command (LAST_RC)
##############################################################################

# expect_success [WHAT]: it exited 0.
expect_success() {
  [ "${LAST_RC:-x}" = 0 ] || fail "${LAST_NAME:-?}: exit ${LAST_RC:-?}, expected 0${1:+ ($1)}"
}

# expect_failure [WHAT]: it exited non-zero (a command never run counts as 0).
expect_failure() {
  [ "${LAST_RC:-0}" != 0 ] || fail "${LAST_NAME:-?}: exit 0, expected a failure${1:+ ($1)}"
}

# expect_exit N [WHAT]: it exited N.
expect_exit() {
  [ "${LAST_RC:-x}" = "$1" ] || fail "${LAST_NAME:-?}: exit ${LAST_RC:-?}, expected $1${2:+ ($2)}"
}

##############################################################################
# Output of the last command (last_output)
##############################################################################

# _a_grep ERE: grep -E, ignoring case when ASSERT_IGNORE_CASE=1.
_a_grep() {
  if [ "${ASSERT_IGNORE_CASE:-0}" = 1 ]; then grep -iE -- "$1"; else grep -E -- "$1"; fi
}

# expect_output ERE [WHAT]: some line of the output matches ERE.
expect_output() {
  last_output | _a_grep "$1" >/dev/null ||
    fail "${LAST_NAME:-?}: output does not mention ${2:-/$1/}"
}

# expect_no_output ERE [WHAT]: no line of the output matches ERE.
expect_no_output() {
  if _a_hit=$(last_output | _a_grep "$1"); then
    fail "${LAST_NAME:-?}: output mentions /$1/${2:+ ($2)}: $_a_hit"
  fi
}

##############################################################################
# Files and directories
##############################################################################

# expect_file PATH [WHAT]: PATH exists.
expect_file() {
  [ -e "$1" ] || fail "$1 does not exist${2:+ ($2)}"
}

# expect_no_file PATH [WHAT]: PATH does not exist, not even as a dangling symlink.
expect_no_file() {
  if [ -e "$1" ] || [ -L "$1" ]; then fail "$1 exists${2:+ ($2)}"; fi
}

# expect_file_content PATH CONTENT: PATH exists and holds exactly CONTENT
# (and a newline, or not: $(cat) drops it).
expect_file_content() {
  if [ ! -e "$1" ]; then
    fail "$1 does not exist"
  elif [ "$(cat "$1")" != "$2" ]; then
    fail "$1 holds '$(head -c 200 "$1")', expected '$2'"
  fi
}

# is_writable DIR: a file can be created in DIR (the probe is removed).
is_writable() {
  if (: >"$1/.assert-probe") 2>/dev/null; then
    rm -f "$1/.assert-probe"
    return 0
  fi
  return 1
}

# expect_writable DIR [WHAT]: a file can be created in DIR.
expect_writable() {
  is_writable "$1" || fail "$1 is not writable${2:+ ($2)}"
}

# expect_not_writable DIR [WHAT]: no file can be created in DIR.
expect_not_writable() {
  if is_writable "$1"; then fail "$1 is writable, expected read-only${2:+ ($2)}"; fi
}

# expect_can_create FILE [WHAT]: FILE can be created; it is kept, so that
# later checks can look for it elsewhere (an overlay's upper directory...).
expect_can_create() {
  (: >"$1") 2>/dev/null || fail "${1%/*} is not writable: cannot create ${1##*/}${2:+ ($2)}"
}
