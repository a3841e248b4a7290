#!/usr/bin/env bash
# Fetch musl (libc.a, crt1.o, crti.o, crtn.o) for a foreign architecture into
# .cache/cross/TARGET, for the Rust targets whose prebuilt standard library
# (and with it the musl that Rust ships, "self-contained") cannot be had:
# armv7-unknown-linux-musleabihf and riscv64gc-unknown-linux-musl. They are
# built with nightly's -Zbuild-std=core and linked by Debian's cross gcc with
# this musl (the specs file written here, named in .cargo/config.toml).
#
#   scripts/fetch-cross-musl.sh TARGET...
#
# The machine's apt configuration is never changed (no dpkg architecture
# added, no source list touched): apt runs on a private state under
# .cache/cross/apt, pointed at Debian 13 (trixie, musl 1.2.5, the version
# Rust's own musl targets ship; Debian 12 has no riscv64), checked with the
# machine's Debian archive keyring; `apt-get download` fetches the packages
# and `dpkg -x` unpacks them. Nothing is installed; no root needed. A target
# already fetched is left as it is; other targets are ignored.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=$ROOT/.cache/cross
SUITE=${CROSS_MUSL_SUITE:-trixie}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

say() { echo "fetch-cross-musl: $*"; }
die() { echo "fetch-cross-musl: $*" >&2; exit 1; }

# Rust target -> Debian architecture and musl's library directory.
debian_arch() {
    case "$1" in
        armv7-unknown-linux-musleabihf) echo "armhf arm-linux-musleabihf" ;;
        riscv64gc-unknown-linux-musl) echo "riscv64 riscv64-linux-musl" ;;
        *) return 1 ;;
    esac
}

apt_opts() {
    local d=$CACHE/apt
    echo "-o Dir::Etc::SourceList=$d/sources.list -o Dir::Etc::SourceParts=/dev/null" \
        "-o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null" \
        "-o Dir::State::Lists=$d/lists -o Dir::Cache=$d/cache -o Dir::State::status=/dev/null" \
        "-o Debug::NoLocking=1 -o Acquire::Languages=none" \
        "-o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false" \
        "-o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false" \
        "-o Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false" \
        "-o APT::Architecture=$1 -o APT::Architectures=$1"
}

apt_updated=""
fetch() {
    local target=$1 arch libdir dir opts uri
    read -r arch libdir < <(debian_arch "$target") || return 0
    dir=$CACHE/$target
    [ ! -f "$dir/musl.specs" ] || return 0
    if ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
        die "needs apt-get and dpkg (Debian)"
    fi
    [ -r "$KEYRING" ] || die "no $KEYRING (package debian-archive-keyring)"
    mkdir -p "$CACHE/apt/lists/partial" "$CACHE/apt/cache/archives/partial"
    # The machine's mirror (deb.debian.org unless it names another).
    uri=$(sed -n 's/^URIs: //p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -1)
    [ -n "$uri" ] || uri=http://deb.debian.org/debian
    echo "deb [signed-by=$KEYRING] $uri $SUITE main" >"$CACHE/apt/sources.list"
    # shellcheck disable=SC2046 # apt_opts is a list of words
    opts=$(apt_opts "$arch")
    if [ "$apt_updated" != "$arch" ]; then
        say "apt-get update ($SUITE, $arch; private state in .cache/cross/apt)"
        # shellcheck disable=SC2086
        apt-get $opts update -qq >/dev/null
        apt_updated=$arch
    fi
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp/debs"
    say "apt-get download musl-dev:$arch musl:$arch"
    # shellcheck disable=SC2086
    # (As root, apt says it downloads "unsandboxed": true, and harmless.)
    (cd "$dir.tmp/debs"; apt-get $opts download -qq "musl-dev:$arch" "musl:$arch") 2>&1 |
        { grep -v 'unsandboxed' || true; }
    ls "$dir.tmp/debs"/musl-dev_*.deb >/dev/null 2>&1 || die "musl-dev:$arch could not be downloaded"
    for deb in "$dir.tmp/debs"/*.deb; do dpkg -x "$deb" "$dir.tmp/root"; done
    local lib=$dir/root/usr/lib/$libdir
    [ -f "$dir.tmp/root/usr/lib/$libdir/libc.a" ] || die "no usr/lib/$libdir/libc.a in musl-dev:$arch"
    # A gcc specs file: musl's start files and libc.a, in place of the cross
    # gcc's glibc; gcc's own crtbeginT.o/crtend.o (static, non-PIE).
    cat >"$dir.tmp/musl.specs" <<EOF
*link_libgcc:
-L$lib

*startfile:
$lib/crt1.o $lib/crti.o crtbeginT.o%s

*endfile:
crtend.o%s $lib/crtn.o
EOF
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
    say "$target: musl $(dpkg-deb -f "$dir"/debs/musl-dev_*.deb Version) in ${dir#"$ROOT"/}"
}

[ $# -gt 0 ] || { echo "usage: $0 TARGET..." >&2; exit 2; }
for t in "$@"; do fetch "$t"; done
