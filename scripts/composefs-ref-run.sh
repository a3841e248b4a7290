#!/usr/bin/env bash
# Run a command inside the composefs reference chroot (.cache/composefs-ref/root,
# built by scripts/fetch-composefs-ref.sh), in a private mount namespace:
# the chroot bound onto itself, /proc, /dev (recursive, slave), /sys, and
# fresh tmpfs on /run and /tmp. Nothing is mounted outside the namespace.
#
#   scripts/composefs-ref-run.sh [--bind SRC DST]... CMD [ARG...]
#     --bind SRC DST   also bind SRC (a host path) on DST (a path in the
#                      chroot, created if missing) before entering it
#
# The command runs as root with a minimal environment (PATH, HOME=/root,
# LC_ALL=C.UTF-8). Its exit status is the script's.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CHROOT=${COMPOSEFS_REF_CHROOT:-${COMPOSEFS_REF_CACHE:-$ROOT/.cache/composefs-ref}/root}

if [[ ${1:-} == --in-ns ]]; then
  shift
  binds=()
  while [[ ${1:-} == --bind ]]; do binds+=("$2" "$3"); shift 3; done
  mount --bind "$CHROOT" "$CHROOT"
  mount -t proc proc "$CHROOT/proc"
  mount --rbind /dev "$CHROOT/dev"
  mount --make-rslave "$CHROOT/dev"
  mount -t sysfs sysfs "$CHROOT/sys"
  mount -t tmpfs -o mode=0755 run "$CHROOT/run"
  mount -t tmpfs -o mode=1777 tmp "$CHROOT/tmp"
  for ((i = 0; i < ${#binds[@]}; i += 2)); do
    mkdir -p "$CHROOT/${binds[i + 1]}"
    mount --bind "${binds[i]}" "$CHROOT/${binds[i + 1]}"
  done
  exec chroot "$CHROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    LC_ALL=C.UTF-8 "$@"
fi

[[ $EUID -eq 0 ]] || { echo "composefs-ref-run: must run as root" >&2; exit 2; }
[[ -x $CHROOT/usr/bin/env ]] || {
  echo "composefs-ref-run: no chroot in $CHROOT (run scripts/fetch-composefs-ref.sh)" >&2
  exit 2
}
(($#)) || { echo "usage: $0 [--bind SRC DST]... CMD [ARG...]" >&2; exit 2; }
# mount(8)'s utab stays out of the host's /run/mount.
export LIBMOUNT_UTAB=${LIBMOUNT_UTAB:-/tmp/.composefs-ref-utab.$$}
rc=0
unshare --mount --propagation private --pid --fork --kill-child -- \
  /usr/bin/bash "${BASH_SOURCE[0]}" --in-ns "$@" || rc=$?
rm -f "$LIBMOUNT_UTAB" "$LIBMOUNT_UTAB.lock"
exit "$rc"
