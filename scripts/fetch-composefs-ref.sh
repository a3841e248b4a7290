#!/usr/bin/env bash
# Build, once, the composefs reference: a Debian chroot holding ostree 2026.4
# (built with composefs) and composefs 1.0.8, in .cache/composefs-ref/root.
# Debian 12's ostree has no composefs and trixie's is built without it; only
# unstable has both. tests/mountns/composefs.sh builds its sysroots with this
# chroot's `ostree` and compares our ostree-prepare-root with its C one.
#
#   scripts/fetch-composefs-ref.sh          build if missing (a no-op when the stamp is there)
#   scripts/fetch-composefs-ref.sh --force  build again
#
# How: `debootstrap --variant=minbase trixie` (the machine's mirror, checked
# with its Debian archive keyring), then, inside the chroot, unstable as a
# second source pinned at 100 in the chroot's own apt preferences, so that
# only the packages asked for and what they need (a newer libc6 and GLib)
# come from unstable. The machine's apt sources and packages are never
# touched; every mount is made in a private mount namespace
# (scripts/composefs-ref-run.sh). Needs root, debootstrap
# (scripts/packages.txt) and a Debian mirror. Measured: 196 s (debootstrap
# 126 s, packages 68 s), about 53 MB downloaded, 192 MB on disk.
#
# The stamp (.cache/composefs-ref/stamp) records the recipe version and the
# versions installed; a stamp from another recipe version forces a rebuild.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${COMPOSEFS_REF_CACHE:-$ROOT/.cache/composefs-ref}
CHROOT=$CACHE/root
STAMP=$CACHE/stamp
RUN=$ROOT/scripts/composefs-ref-run.sh
SUITE=trixie
# Bump when what is installed changes.
RECIPE=1
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
# From unstable; the versions the suite's expectations were recorded with.
PACKAGES=(ostree ostree-boot libostree-1-1 composefs libcomposefs1)
WANT_OSTREE=2026.4
WANT_COMPOSEFS=1.0.8

say() { echo "fetch-composefs-ref: $*"; }
die() { echo "fetch-composefs-ref: $*" >&2; exit 1; }

stamp_ok() { [[ -f $STAMP ]] && grep -qx "RECIPE=$RECIPE" "$STAMP"; }

# Installed version of PKG in the chroot.
chroot_version() {
  # shellcheck disable=SC2016 # dpkg-query's format, not the shell's
  "$RUN" dpkg-query -W -f '${Version}' "$1" 2>/dev/null
}

build() {
  local uri start t0
  [[ $EUID -eq 0 ]] || die "must run as root (debootstrap, chroot)"
  command -v debootstrap >/dev/null || die "debootstrap missing: apt-get install debootstrap (scripts/packages.txt)"
  [[ -r $KEYRING ]] || die "no $KEYRING (package debian-archive-keyring)"
  # The machine's mirror (deb.debian.org unless it names another).
  uri=$(sed -n 's/^URIs: //p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -1)
  [[ -n $uri ]] || uri=http://deb.debian.org/debian
  start=$SECONDS
  rm -rf "$CHROOT" "$STAMP"
  mkdir -p "$CACHE"
  say "debootstrap --variant=minbase $SUITE from $uri (about 2 minutes)"
  # In its own mount namespace: debootstrap mounts proc and sys in the target
  # and leaves them there when it fails.
  unshare --mount --propagation private -- \
    debootstrap --variant=minbase --keyring="$KEYRING" "$SUITE" "$CHROOT" "$uri" \
    >"$CACHE/debootstrap.log" 2>&1 || {
    tail -20 "$CACHE/debootstrap.log" >&2
    die "debootstrap failed (log: $CACHE/debootstrap.log)"
  }
  say "debootstrap: $((SECONDS - start)) s, $(du -sm "$CHROOT" | cut -f1) MB"

  cat >"$CHROOT/etc/apt/sources.list" <<EOF
deb $uri $SUITE main
deb $uri unstable main
EOF
  rm -f "$CHROOT/etc/apt/sources.list.d/"*.sources
  cat >"$CHROOT/etc/apt/preferences.d/unstable-low" <<'EOF'
Package: *
Pin: release n=sid
Pin-Priority: 100
EOF
  cat >"$CHROOT/etc/apt/apt.conf.d/90composefs-ref" <<'EOF'
Acquire::Check-Valid-Until "false";
Acquire::Languages "none";
APT::Install-Recommends "false";
APT::Sandbox::User "root";
EOF
  cp /etc/resolv.conf "$CHROOT/etc/resolv.conf" 2>/dev/null || true
  t0=$SECONDS
  # -t unstable: this one transaction takes from unstable what these
  # packages need (their libc6 and GLib are newer than trixie's).
  say "apt-get install -t unstable ${PACKAGES[*]} (in the chroot)"
  "$RUN" apt-get update -qq >"$CACHE/apt.log" 2>&1 || { tail -20 "$CACHE/apt.log" >&2; die "apt-get update failed"; }
  "$RUN" env DEBIAN_FRONTEND=noninteractive apt-get install -y -t unstable "${PACKAGES[@]}" >>"$CACHE/apt.log" 2>&1 ||
    { tail -20 "$CACHE/apt.log" >&2; die "apt-get install failed (log: $CACHE/apt.log)"; }
  grep -E '^(Need to get|After this operation)' "$CACHE/apt.log" | sed 's/^/fetch-composefs-ref: apt: /' || true
  "$RUN" apt-get clean
  rm -rf "$CHROOT/var/lib/apt/lists/"*_Packages "$CHROOT/var/lib/apt/lists/"*_Translation-* 2>/dev/null || true
  say "packages: $((SECONDS - t0)) s"

  local ov cv
  ov=$(chroot_version ostree) cv=$(chroot_version libcomposefs1)
  [[ $ov == "$WANT_OSTREE"* ]] || say "warning: ostree is $ov, the suite's expectations were recorded with $WANT_OSTREE"
  [[ $cv == "$WANT_COMPOSEFS"* ]] || say "warning: libcomposefs1 is $cv, expected $WANT_COMPOSEFS"
  [[ -x $CHROOT/usr/lib/ostree/ostree-prepare-root ]] || die "no usr/lib/ostree/ostree-prepare-root in the chroot"
  {
    echo "RECIPE=$RECIPE"
    echo "SUITE=$SUITE"
    for p in "${PACKAGES[@]}"; do echo "VERSION_${p//-/_}=$(chroot_version "$p")"; done
    echo "SECONDS=$((SECONDS - start))"
    echo "MB=$(du -sm "$CHROOT" | cut -f1)"
  } >"$STAMP.new"
  mv "$STAMP.new" "$STAMP" # last: marks the chroot complete
  say "done in $((SECONDS - start)) s: $(du -sm "$CHROOT" | cut -f1) MB in ${CACHE#"$ROOT"/}"
}

main() {
  if [[ ${1:-} == --force ]]; then rm -f "$STAMP"; fi
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock 9
  stamp_ok || build
}

main "$@"
