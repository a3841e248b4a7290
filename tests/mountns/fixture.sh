#!/usr/bin/env bash
# fixture.sh - build, once, a genuine OSTree sysroot with the real `ostree` CLI.
#
# Result (cached under $MOUNTNS_CACHE, default <repo>/target/mountns-cache):
#   sysroot/      physical root: ostree/repo, two deployments of OS "testos",
#                 boot/loader -> loader.N with one BLS entry per deployment
#   fixture.env   shell-sourceable facts about it (ostree= values, deployment
#                 paths relative to the sysroot, stateroot var, ...)
#
# Deployment 1 is tree A (usr/share/which-deployment = "A", VERSION=1),
# deployment 2 is tree B ("B", VERSION=2). Both are deployed with
# --karg=root=LABEL=osroot --karg=rw, so both boot entries exist.
#
# The build runs inside a private mount namespace on a scratch tmpfs: `ostree
# admin deploy` syncs and freezes/thaws the filesystem holding /boot, and that
# must never be the host's root filesystem.
#
# Usage: fixture.sh           build if missing, then print fixture.env
#        fixture.sh --rebuild force a rebuild
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${MOUNTNS_CACHE:-$REPO_ROOT/target/mountns-cache}
# Bump when the fixture's layout changes so stale caches are rebuilt.
FIXTURE_VERSION=1
OSNAME=testos
KVER=6.1.0-test

die() { echo "fixture.sh: $*" >&2; exit 1; }
# shellcheck source=fixture-lib.sh
source "$HERE/fixture-lib.sh"

fixture_ok() {
  [[ -d $CACHE/sysroot/ostree/repo && -f $CACHE/fixture.env ]] &&
    grep -qx "FIXTURE_VERSION=$FIXTURE_VERSION" "$CACHE/fixture.env"
}

# make_tree DIR LETTER VERSION: the filesystem tree committed for one deployment.
make_tree() {
  local t=$1 letter=$2 version=$3 d
  mkdir -p "$t/usr/lib/modules/$KVER" "$t/usr/etc" "$t/usr/bin" "$t/usr/share"
  for d in sysroot var boot proc sys dev run tmp; do mkdir -p "$t/$d"; done
  ln -sfn sysroot/ostree "$t/ostree"
  echo "not a kernel" >"$t/usr/lib/modules/$KVER/vmlinuz"
  printf 'ID=%s\nNAME="Test OS"\nVERSION=%s\n' "$OSNAME" "$version" >"$t/usr/etc/os-release"
  echo "$letter" >"$t/usr/share/which-deployment"
  printf '#!/bin/sh\necho hello from %s\n' "$letter" >"$t/usr/bin/hello"
  chmod 0755 "$t/usr/bin/hello"
}

# commit_and_deploy SYSROOT TREE: commit TREE on OSNAME/stable and deploy it.
commit_and_deploy() {
  local s=$1 t=$2
  ostree --repo="$s/ostree/repo" commit -b "$OSNAME/stable" --tree=dir="$t" --no-xattrs >/dev/null
  ostree admin --sysroot="$s" deploy --os="$OSNAME" \
    --karg=root=LABEL=osroot --karg=rw "$OSNAME/stable" >/dev/null
}

# Runs inside `unshare -m`: build on a tmpfs mounted over WORK, copy out.
build_in_ns() {
  local work=$1 s t d
  mount -t tmpfs -o mode=0755 fixture-build "$work"
  s=$work/sysroot t=$work/tree
  mkdir -p "$s"
  ostree admin init-fs "$s" >/dev/null
  ostree admin --sysroot="$s" os-init "$OSNAME" >/dev/null
  make_tree "$t" A 1
  commit_and_deploy "$s" "$t"
  rm -rf "$t"
  make_tree "$t" B 2
  commit_and_deploy "$s" "$t"
  # ostree marks deployment roots immutable; scenarios create files in them.
  for d in "$s"/ostree/deploy/"$OSNAME"/deploy/*; do
    [[ -d $d && ! -L $d ]] && chattr -i "$d"
  done
  write_env "$s" "$work/fixture.env"
  cp -a "$s" "$CACHE/sysroot.new"
  cp "$work/fixture.env" "$CACHE/fixture.env.new"
  umount "$work"
}

main() {
  if [[ ${1:-} == --build-in-ns ]]; then
    build_in_ns "$2"
    return
  fi
  [[ ${1:-} == --rebuild ]] && rm -f "$CACHE/fixture.env"
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock 9
  if ! fixture_ok; then
    [[ $EUID -eq 0 ]] || die "must run as root to build the fixture"
    command -v ostree >/dev/null || die "ostree CLI not installed"
    rm -rf "$CACHE/sysroot" "$CACHE/sysroot.new" "$CACHE/fixture.env" "$CACHE/build"
    mkdir "$CACHE/build"
    # Keep mount(8)'s utab/lock files out of the host's /run/mount.
    LIBMOUNT_UTAB=$CACHE/libmount-utab \
      unshare --mount --propagation private -- bash "$HERE/fixture.sh" --build-in-ns "$CACHE/build"
    rmdir "$CACHE/build"
    rm -f "$CACHE/libmount-utab" "$CACHE/libmount-utab.lock"
    mv "$CACHE/sysroot.new" "$CACHE/sysroot"
    mv "$CACHE/fixture.env.new" "$CACHE/fixture.env" # last: marks the cache complete
  fi
  cat "$CACHE/fixture.env"
}

main "$@"
