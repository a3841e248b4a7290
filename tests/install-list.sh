#!/usr/bin/env bash
# `make install` into a scratch DESTDIR installs exactly dist/INSTALLED_FILES,
# with those modes, and the templates name the installed binary's path.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
pass=0 fail=0
check() { if "$@"; then pass=$((pass + 1)); echo "ok - $desc"; else fail=$((fail + 1)); echo "not ok - $desc"; fi; }

make -s -C "$here" install DESTDIR="$dest" PREFIX=/usr >/dev/null
want=$(grep -v '^#' "$here/dist/INSTALLED_FILES" | sort)
got=$(cd "$dest/usr" && find . -type f -printf '%m %P\n' | awk '{printf "%04d %s\n", $1, $2}' | sort)
desc="installed files and modes are exactly dist/INSTALLED_FILES"
check test "$want" = "$got"
[ "$want" = "$got" ] || diff <(echo "$want") <(echo "$got") | sed 's/^/# /'
desc="the unit runs the installed binary"
check grep -qx 'ExecStart=/usr/lib/ostree/ostree-prepare-root /sysroot' "$dest/usr/lib/systemd/system/ostree-prepare-root.service"
desc="no template placeholder is left"
check bash -c "! grep -rq '@LIBDIR@' '$dest'"
desc="man pages render as roff"
check grep -q '^\.TH "ostree-prepare-root" "8"' "$dest/usr/share/man/man8/ostree-prepare-root.8"
desc="the installed ostree-prepare-root is static and runs"
check "$dest/usr/lib/ostree/ostree-prepare-root" --version
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
