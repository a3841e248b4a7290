#!/usr/bin/env bash
# Run shellcheck over every shell script of the repository: files named *.sh
# or *.bash, and files whose first line is a shell's #! (sh, bash, dash, ash,
# ksh; directly or through env). Skipped: .git, .cache, build output (any
# target/ directory) and what cargo-fuzz generates (fuzz/corpus,
# fuzz/artifacts, fuzz/coverage: arbitrary bytes). Sourced files are
# followed from each script's own directory (source-path=SCRIPTDIR), every
# severity counts, and the exit status is non-zero when shellcheck reports
# anything.
#
# Usage: scripts/lint-shell.sh [FILE...]   (default: every shell script)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

if ! command -v shellcheck >/dev/null; then
  echo "lint-shell.sh: shellcheck not found (Debian package shellcheck)" >&2
  exit 2
fi

# is_shell FILE: FILE is a shell script, by name or by its #! line.
is_shell() {
  local first
  case $1 in *.sh | *.bash) return 0 ;; esac
  IFS= read -r first <"$1" 2>/dev/null || return 1
  [[ $first =~ ^#![[:space:]]*[^[:space:]]*/(env[[:space:]]+)?(sh|bash|dash|ash|ksh)([[:space:]]|$) ]]
}

files=()
if (($#)); then
  files=("$@")
else
  while IFS= read -r -d '' f; do
    if is_shell "$f"; then files+=("${f#./}"); fi
  done < <(find . \( -name .git -o -name target -o -path ./fuzz/corpus -o -path ./fuzz/artifacts \
    -o -path ./fuzz/coverage -o -path ./.cache \) -prune -o -type f -print0 | LC_ALL=C sort -z)
fi

if ((${#files[@]} == 0)); then
  echo "lint-shell.sh: no shell script found" >&2
  exit 2
fi

echo "shellcheck $(shellcheck --version | sed -n 's/^version: //p'): ${#files[@]} files"
printf '  %s\n' "${files[@]}"
if shellcheck --external-sources --source-path=SCRIPTDIR --severity=style -- "${files[@]}"; then
  echo "shellcheck: no findings"
else
  echo "shellcheck: findings above" >&2
  exit 1
fi
