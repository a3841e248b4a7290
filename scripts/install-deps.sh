#!/usr/bin/env bash
# `make deps`: install everything the build, the tests, the benchmark and the
# QEMU boots need, on a Debian 12 machine with rustup, as root:
#   - the Debian packages of scripts/packages.txt (without their
#     recommendations: ostree-boot's would pull in dracut and a boot loader);
#   - the Rust target $TARGET (default x86_64-unknown-linux-musl);
#   - the nightly toolchain and cargo-fuzz, for `make fuzz-smoke`.
# It installs only what is missing: with everything there it changes nothing
# and needs no root. Debian's cloud kernel for the boots is not installed but
# fetched into .cache/qemu by `make kernel`.
#
#   scripts/install-deps.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TARGET=${TARGET:-x86_64-unknown-linux-musl}

say() { echo "install-deps: $*"; }
die() { echo "install-deps: $*" >&2; exit 1; }

install_apt() {
    local missing=() pkg _
    while read -r pkg _; do
        case "$pkg" in '' | '#'*) continue ;; esac
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done <"$HERE/packages.txt"
    [ ${#missing[@]} -gt 0 ] || return 0
    [ "$(id -u)" = 0 ] || die "apt-get install ${missing[*]} needs root"
    say "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_rust_target() {
    command -v rustc >/dev/null || die "no Rust toolchain: install one with rustup (https://rustup.rs)"
    [ ! -d "$(rustc --print sysroot)/lib/rustlib/$TARGET/lib" ] || return 0
    command -v rustup >/dev/null || die "the Rust standard library for $TARGET is missing, and there is no rustup to add it"
    say "rustup target add $TARGET"
    rustup target add "$TARGET"
}

install_fuzz() {
    ! RUSTUP_AUTO_INSTALL=0 cargo +nightly fuzz --version >/dev/null 2>&1 || return 0
    command -v rustup >/dev/null || die "cargo fuzz runs on the nightly toolchain: install rustup"
    if ! rustup toolchain list | grep -q '^nightly'; then
        say "rustup toolchain install nightly"
        rustup toolchain install nightly --profile minimal
    fi
    if ! cargo fuzz --version >/dev/null 2>&1; then
        say "cargo install cargo-fuzz"
        cargo install cargo-fuzz --locked --quiet
    fi
}

# apt first: it brings cc, which cargo install needs.
install_apt
install_rust_target
install_fuzz
