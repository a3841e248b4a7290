#!/usr/bin/env bash
# `make deps`: install everything the build, the tests, the benchmark and the
# QEMU boots need, on a Debian 12 machine with rustup, as root:
#   - the Debian packages of scripts/packages.txt (without their
#     recommendations: ostree-boot's would pull in dracut and a boot loader);
#   - the Rust targets of the build matrix (scripts/targets.sh): the prebuilt
#     standard library of x86_64 and aarch64 musl; for armv7 and riscv64,
#     whose prebuilt one cannot be had, the pinned nightly (RUST_NIGHTLY in
#     targets.sh) with its rust-src and clippy (core is
#     built from source) and Debian's musl for them, fetched into
#     .cache/cross (scripts/fetch-cross-musl.sh: the machine's apt sources
#     and dpkg architectures are left alone);
#   - that nightly and cargo-fuzz, for `make fuzz-smoke`.
# It installs only what is missing: with everything there it changes nothing
# and needs no root. Debian's cloud kernel for the boots is not installed but
# fetched into .cache/qemu by `make kernel`.
#
#   scripts/install-deps.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TARGET=${TARGET:-x86_64-unknown-linux-musl}
# shellcheck source=targets.sh
. "$HERE/targets.sh"

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

install_nightly() {
    command -v rustup >/dev/null || die "the $RUST_NIGHTLY toolchain needs rustup"
    if ! rustup toolchain list | grep -q "^$RUST_NIGHTLY-"; then
        say "rustup toolchain install $RUST_NIGHTLY"
        rustup toolchain install "$RUST_NIGHTLY" --profile minimal --component rust-src,clippy
    fi
}

install_rust_target() { # TARGET
    local sysroot component
    command -v rustc >/dev/null || die "no Rust toolchain: install one with rustup (https://rustup.rs)"
    target_info "$1" || die "unknown target $1 (not one of: $MATRIX_TARGETS)"
    if [ -n "$TARGET_BUILD_STD" ]; then
        install_nightly
        sysroot=$(rustc "+$RUST_NIGHTLY" --print sysroot)
        for component in rust-src clippy; do
            case $component in
                rust-src) [ ! -d "$sysroot/lib/rustlib/src/rust/library/core" ] || continue ;;
                clippy) ! cargo "+$RUST_NIGHTLY" clippy --version >/dev/null 2>&1 || continue ;;
            esac
            say "rustup component add $component --toolchain $RUST_NIGHTLY"
            rustup component add "$component" --toolchain "$RUST_NIGHTLY"
        done
        "$HERE/fetch-cross-musl.sh" "$1"
        return 0
    fi
    [ ! -d "$(rustc --print sysroot)/lib/rustlib/$1/lib" ] || return 0
    command -v rustup >/dev/null || die "the Rust standard library for $1 is missing, and there is no rustup to add it"
    say "rustup target add $1"
    rustup target add "$1"
}

install_fuzz() {
    ! RUSTUP_AUTO_INSTALL=0 cargo "+$RUST_NIGHTLY" fuzz --version >/dev/null 2>&1 || return 0
    command -v rustup >/dev/null || die "cargo fuzz runs on the $RUST_NIGHTLY toolchain: install rustup"
    install_nightly
    if ! cargo fuzz --version >/dev/null 2>&1; then
        say "cargo install cargo-fuzz"
        cargo install cargo-fuzz --locked --quiet
    fi
}

# apt first: it brings cc, which cargo install needs.
install_apt
for t in $MATRIX_TARGETS; do install_rust_target "$t"; done
# A TARGET outside the matrix: its prebuilt standard library, if any.
case " $MATRIX_TARGETS " in
    *" $TARGET "*) ;;
    *) command -v rustup >/dev/null && rustup target add "$TARGET" ;;
esac
install_fuzz
