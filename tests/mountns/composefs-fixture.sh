#!/usr/bin/env bash
# composefs-fixture.sh - build, once, a composefs OSTree sysroot with ostree
# 2026.4's CLI (the chroot of scripts/fetch-composefs-ref.sh), and the
# reference bundle: that chroot's C ostree-prepare-root with its shared
# libraries, runnable from any root.
#
# Result (cached under $MOUNTNS_CACHE/composefs, default
# <repo>/target/mountns-cache/composefs):
#   sysroot/      physical root: ostree/repo (ex-integrity.composefs=true),
#                 two deployments of OS "testos" made by `ostree admin deploy`,
#                 each with its .ostree.cfs (EROFS) image; the commits carry
#                 ostree.composefs.digest.v0 (--generate-composefs-metadata);
#                 each tree ships usr/lib/ostree/prepare-root.conf with
#                 [composefs] enabled=yes, as a composefs OS does
#   fixture.env   the facts of fixture.sh's fixture.env (same names), plus
#                 the reference's versions
#   ref/ostree-prepare-root         a /bin/sh wrapper running the bundle
#   ref/ostree-prepare-root.bundle/ the C binary, its libraries, their loader
#
# Deployment 1 is tree A (usr/share/which-deployment = "A"), 2 is tree B.
# Both trees also hold what pid1.sh boots into (in the image, as a composefs
# shows only what was committed): a static busybox (usr/bin/busybox,
# usr/bin/sh, bin -> usr/bin, sbin -> usr/sbin) and pid1-lib.sh's test init
# at usr/sbin/init.
# The build runs in the chroot's own private namespace on its /tmp tmpfs
# (`ostree admin deploy` freezes the filesystem holding /boot).
#
# Usage: composefs-fixture.sh           build if missing, print fixture.env
#        composefs-fixture.sh --rebuild force a rebuild
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${MOUNTNS_CACHE:-$REPO_ROOT/target/mountns-cache}/composefs
REF_RUN=$REPO_ROOT/scripts/composefs-ref-run.sh
REF_STAMP=${COMPOSEFS_REF_CACHE:-$REPO_ROOT/.cache/composefs-ref}/stamp
FIXTURE_VERSION=2
OSNAME=testos

die() { echo "composefs-fixture.sh: $*" >&2; exit 1; }
# shellcheck source=fixture-lib.sh
source "$HERE/fixture-lib.sh"

# What the committed trees take from outside (the test init's writer, busybox):
# a change rebuilds the fixture.
extra_sum() {
  cat "$HERE/pid1-lib.sh" "${PID1_BUSYBOX:-/usr/bin/busybox}" | sha256sum | cut -c1-16
}

fixture_ok() {
  [[ -d $CACHE/sysroot/ostree/repo && -f $CACHE/fixture.env && -x $CACHE/ref/ostree-prepare-root ]] &&
    grep -qx "FIXTURE_VERSION=$FIXTURE_VERSION" "$CACHE/fixture.env" &&
    grep -qx "EXTRA_SUM=$(extra_sum)" "$CACHE/fixture.env" &&
    cmp -s <(grep '^VERSION_' "$REF_STAMP") <(grep '^VERSION_' "$CACHE/fixture.env")
}

# Inside the chroot (ostree 2026.4): build in /tmp (a tmpfs), copy to /out.
build_in_chroot() {
  local s=/tmp/b/sysroot t=/tmp/b/tree letter version d csum
  mkdir -p "$s"
  ostree admin init-fs "$s" >/dev/null
  ostree admin --sysroot="$s" os-init "$OSNAME" >/dev/null
  ostree config --repo="$s/ostree/repo" set ex-integrity.composefs true
  for letter in A B; do
    version=1
    [[ $letter == B ]] && version=2
    rm -rf "$t"
    mkdir -p "$t/usr/lib/modules/6.1.0-test" "$t/usr/etc" "$t/usr/bin" "$t/usr/share" "$t/usr/lib/ostree"
    for d in sysroot var boot proc sys dev run tmp; do mkdir -p "$t/$d"; done
    ln -sfn sysroot/ostree "$t/ostree"
    echo "not a kernel" >"$t/usr/lib/modules/6.1.0-test/vmlinuz"
    printf 'ID=%s\nNAME="Test OS"\nVERSION=%s\n' "$OSNAME" "$version" >"$t/usr/etc/os-release"
    echo "$letter" >"$t/usr/share/which-deployment"
    printf '#!/bin/sh\necho hello from %s\n' "$letter" >"$t/usr/bin/hello"
    chmod 0755 "$t/usr/bin/hello"
    printf '[composefs]\nenabled = yes\n' >"$t/usr/lib/ostree/prepare-root.conf"
    cp -a /extra/. "$t/"
    csum=$(ostree --repo="$s/ostree/repo" commit -b "$OSNAME/stable" --tree=dir="$t" --no-xattrs \
      --generate-composefs-metadata)
    echo "COMPOSEFS_DIGEST_$letter=$(ostree --repo="$s/ostree/repo" show --print-metadata-key=ostree.composefs.digest.v0 "$csum" |
      grep -o '0x[0-9a-f]*' | sed 's/^0x//' | tr -d '\n')" >>/tmp/b/digests
    ostree admin --sysroot="$s" deploy --os="$OSNAME" \
      --karg=root=LABEL=osroot --karg=rw "$OSNAME/stable" >/dev/null
  done
  for d in "$s"/ostree/deploy/"$OSNAME"/deploy/*.0 "$s"/ostree/deploy/"$OSNAME"/deploy/*.1; do
    [[ -d $d ]] || continue
    [[ -f $d/.ostree.cfs ]] || { echo "no .ostree.cfs in $d" >&2; exit 1; }
  done
  cp -a "$s" /out/sysroot
  cp /tmp/b/digests /out/digests
  ostree --version >/out/ostree-version
}

# The C tool and the shared libraries it loads (as the chroot's ldd sees
# them), with the chroot's dynamic loader; a wrapper runs them from
# /usr/lib/ostree/ostree-prepare-root.bundle (where service-lib.sh puts it).
make_ref_bundle() {
  local chroot=$1 out=$2 lib
  mkdir -p "$out/ostree-prepare-root.bundle/lib"
  cp "$chroot/usr/lib/ostree/ostree-prepare-root" "$out/ostree-prepare-root.bundle/"
  "$REF_RUN" ldd /usr/lib/ostree/ostree-prepare-root >"$out/ldd.txt"
  while read -r lib; do
    cp -L "$chroot$lib" "$out/ostree-prepare-root.bundle/lib/"
  done < <(grep -oE '/[^ ]+\.so[^ ]*' "$out/ldd.txt" | sort -u)
  cp -L "$chroot/usr/lib64/ld-linux-x86-64.so.2" "$out/ostree-prepare-root.bundle/ld.so"
  cat >"$out/ostree-prepare-root" <<'EOF'
#!/bin/sh
# ostree 2026.4's C ostree-prepare-root with the libraries it was built for.
b=/usr/lib/ostree/ostree-prepare-root.bundle
exec "$b/ld.so" --library-path "$b/lib" "$b/ostree-prepare-root" "$@"
EOF
  chmod 0755 "$out/ostree-prepare-root"
}

# extra_files DIR: what pid1.sh needs in the committed trees.
extra_files() {
  local dir=$1
  # shellcheck source=pid1-lib.sh
  source "$HERE/pid1-lib.sh"
  mkdir -p "$dir/usr/bin" "$dir/usr/sbin"
  install -m 0755 "$PID1_BUSYBOX" "$dir/usr/bin/busybox"
  ln -s busybox "$dir/usr/bin/sh"
  ln -s usr/bin "$dir/bin"
  ln -s usr/sbin "$dir/sbin"
  pid1_write_test_init "$dir/usr/sbin/init" init
}

# write_cfs_env SYSROOT OUT: fixture.sh's facts (tree A = 1, tree B = 2), then
# what this fixture adds: the extra files' sum and the reference's versions.
write_cfs_env() {
  write_env "$1" "$2"
  {
    echo "EXTRA_SUM=$(extra_sum)"
    grep '^VERSION_' "$REF_STAMP"
  } >>"$2"
}

main() {
  local chroot d
  if [[ ${1:-} == --in-chroot ]]; then
    build_in_chroot
    return
  fi
  [[ ${1:-} == --rebuild ]] && rm -f "$CACHE/fixture.env"
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock 9
  if ! fixture_ok; then
    [[ $EUID -eq 0 ]] || die "must run as root to build the fixture"
    [[ -f $REF_STAMP ]] || die "no composefs reference chroot: run scripts/fetch-composefs-ref.sh"
    chroot=$(dirname "$REF_STAMP")/root
    rm -rf "$CACHE/sysroot" "$CACHE/fixture.env" "$CACHE/build" "$CACHE/ref"
    mkdir -p "$CACHE/build"
    extra_files "$CACHE/build/extra"
    "$REF_RUN" --bind "$CACHE/build" /out --bind "$HERE" /harness --bind "$CACHE/build/extra" /extra \
      /usr/bin/bash /harness/composefs-fixture.sh --in-chroot
    # ostree marks deployment roots immutable where it can; scenarios add files.
    for d in "$CACHE"/build/sysroot/ostree/deploy/"$OSNAME"/deploy/*; do
      [[ -d $d && ! -L $d ]] && { chattr -i "$d" 2>/dev/null || true; }
    done
    make_ref_bundle "$chroot" "$CACHE/ref"
    mv "$CACHE/build/sysroot" "$CACHE/sysroot"
    write_cfs_env "$CACHE/sysroot" "$CACHE/fixture.env.new"
    cat "$CACHE/build/digests" >>"$CACHE/fixture.env.new"
    rm -rf "$CACHE/build"
    mv "$CACHE/fixture.env.new" "$CACHE/fixture.env" # last: marks the cache complete
  fi
  cat "$CACHE/fixture.env"
}

main "$@"
