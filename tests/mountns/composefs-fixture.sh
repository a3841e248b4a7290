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
FIXTURE_VERSION=1
OSNAME=testos

die() { echo "composefs-fixture.sh: $*" >&2; exit 1; }

fixture_ok() {
  [[ -d $CACHE/sysroot/ostree/repo && -f $CACHE/fixture.env && -x $CACHE/ref/ostree-prepare-root ]] &&
    grep -qx "FIXTURE_VERSION=$FIXTURE_VERSION" "$CACHE/fixture.env" &&
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

# write_env SYSROOT OUT: as fixture.sh's (tree A = 1, tree B = 2).
write_env() {
  local s=$1 out=$2 entry target deploy letter n
  local -A tgt dep
  for entry in "$s"/boot/loader/entries/ostree-*.conf; do
    target=$(grep '^options ' "$entry" | grep -o 'ostree=[^ ]*' | head -n1)
    target=${target#ostree=}
    [[ -n $target ]] || die "no ostree= in $entry"
    deploy=$(readlink -f "$s$target")
    letter=$(cat "$deploy/usr/share/which-deployment")
    case $letter in A) n=1 ;; B) n=2 ;; *) die "unexpected deployment content '$letter'" ;; esac
    tgt[$n]=$target
    dep[$n]=${deploy#"$s"/}
  done
  [[ -n ${tgt[1]:-} && -n ${tgt[2]:-} ]] || die "expected two boot entries"
  {
    echo "FIXTURE_VERSION=$FIXTURE_VERSION"
    printf 'OSNAME=%q\n' "$OSNAME"
    printf 'OSTREE_TARGET_1=%q\n' "${tgt[1]}"
    printf 'OSTREE_TARGET_2=%q\n' "${tgt[2]}"
    printf 'DEPLOY_1=%q\n' "${dep[1]}"
    printf 'DEPLOY_2=%q\n' "${dep[2]}"
    printf 'DEPLOY_1_NAME=%q\n' "${dep[1]##*/}"
    printf 'DEPLOY_2_NAME=%q\n' "${dep[2]##*/}"
    printf 'STATEROOT_VAR=%q\n' "ostree/deploy/$OSNAME/var"
    grep '^VERSION_' "$REF_STAMP"
  } >"$out"
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
    "$REF_RUN" --bind "$CACHE/build" /out --bind "$HERE" /harness \
      /usr/bin/bash /harness/composefs-fixture.sh --in-chroot
    # ostree marks deployment roots immutable where it can; scenarios add files.
    for d in "$CACHE"/build/sysroot/ostree/deploy/"$OSNAME"/deploy/*; do
      [[ -d $d && ! -L $d ]] && { chattr -i "$d" 2>/dev/null || true; }
    done
    make_ref_bundle "$chroot" "$CACHE/ref"
    mv "$CACHE/build/sysroot" "$CACHE/sysroot"
    write_env "$CACHE/sysroot" "$CACHE/fixture.env.new"
    cat "$CACHE/build/digests" >>"$CACHE/fixture.env.new"
    rm -rf "$CACHE/build"
    mv "$CACHE/fixture.env.new" "$CACHE/fixture.env" # last: marks the cache complete
  fi
  cat "$CACHE/fixture.env"
}

main "$@"
