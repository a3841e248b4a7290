#!/usr/bin/env bash
# Check, without installing anything, that what a make target needs is there;
# if not, say what is missing and how to install it, and fail.
#
#   scripts/check-deps.sh GROUP...
#
#   build      cargo, rustc with the standard library of $TARGET (or, for
#              armv7 and riscv64, the pinned nightly (RUST_NIGHTLY in
#              targets.sh) with rust-src and clippy: core is
#              built from source), its linker (cc or Debian's cross gcc),
#              objcopy and nm (scripts/targets.sh says which)
#   smoke      the qemu-user emulator of $TARGET (none for x86_64)
#   fuzz       that nightly and cargo-fuzz (`make fuzz-smoke`)
#   packages   every package of scripts/packages.txt, seen by the file it provides
#
# TARGET defaults to x86_64-unknown-linux-musl (the Makefile passes its own).
# `make deps` (scripts/install-deps.sh, as root) installs all of it.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TARGET=${TARGET:-x86_64-unknown-linux-musl}
# shellcheck source=targets.sh
. "$HERE/targets.sh"
# Never let a rustup proxy install a toolchain while we only look.
export RUSTUP_AUTO_INSTALL=0

missing=() how=()
lack() { missing+=("$1"); how+=("$2"); }

# Whether PROBE (a program, or an absolute path) is there; sbin counts, as a
# non-root PATH often lacks it.
present() {
    case "$1" in
        /*) [ -e "$1" ] ;;
        *) command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ] ;;
    esac
}

check_build() {
    if ! target_info "$TARGET"; then
        lack "a known TARGET ($TARGET is not one of: $MATRIX_TARGETS)" "make TARGET=... with one of those"
        return
    fi
    if ! present cargo || ! present rustc; then
        lack "cargo and rustc" "install Rust, e.g. with rustup (https://rustup.rs)"
    elif [ -n "$TARGET_BUILD_STD" ]; then
        # No prebuilt standard library for $TARGET: core from rust-src.
        if ! present rustup || ! rustup toolchain list | grep -q "^$RUST_NIGHTLY-"; then
            lack "the $RUST_NIGHTLY Rust toolchain ($TARGET builds core from source)" "rustup toolchain install $RUST_NIGHTLY --profile minimal --component rust-src,clippy"
        else
            local sysroot
            sysroot=$(rustc "+$RUST_NIGHTLY" --print sysroot)
            [ -d "$sysroot/lib/rustlib/src/rust/library/core" ] ||
                lack "rust-src of $RUST_NIGHTLY ($TARGET builds core from source)" "rustup component add rust-src --toolchain $RUST_NIGHTLY"
            cargo "+$RUST_NIGHTLY" clippy --version >/dev/null 2>&1 ||
                lack "clippy of $RUST_NIGHTLY (make lint: $TARGET)" "rustup component add clippy --toolchain $RUST_NIGHTLY"
        fi
    else
        local sysroot
        sysroot=$(rustc --print sysroot)
        if [ ! -d "$sysroot/lib/rustlib/$TARGET/lib" ]; then
            lack "the Rust standard library for $TARGET (not in $sysroot)" "rustup target add $TARGET"
        fi
    fi
    present "$TARGET_GCC" || lack "$TARGET_GCC (the linker of $TARGET)" "apt-get install --no-install-recommends $TARGET_PACKAGES"
    present "${TARGET_BINUTILS}objcopy" || lack "${TARGET_BINUTILS}objcopy" "apt-get install --no-install-recommends $TARGET_PACKAGES"
    if [ -n "$TARGET_BUILD_STD" ]; then
        # musl for $TARGET is fetched by the build itself (fetch-cross-musl.sh).
        if ! present apt-get || ! present dpkg; then
            lack "apt-get and dpkg (musl for $TARGET is fetched as Debian packages)" "a Debian machine"
        fi
    fi
}

check_smoke() {
    target_info "$TARGET" || return 0
    present file || lack "file" "apt-get install file"
    [ -z "$TARGET_QEMU" ] || present "$TARGET_QEMU" ||
        lack "$TARGET_QEMU (runs the $TARGET binaries here)" "apt-get install --no-install-recommends qemu-user-static"
}

check_fuzz() {
    if ! present rustup || ! rustup toolchain list | grep -q "^$RUST_NIGHTLY-"; then
        lack "the $RUST_NIGHTLY Rust toolchain" "rustup toolchain install $RUST_NIGHTLY --profile minimal --component rust-src,clippy"
    elif ! cargo "+$RUST_NIGHTLY" fuzz --version >/dev/null 2>&1; then
        lack "cargo-fuzz" "cargo install cargo-fuzz --locked"
    fi
}

check_packages() {
    local pkg probe _
    while read -r pkg probe _; do
        case "$pkg" in '' | '#'*) continue ;; esac
        present "$probe" || lack "$probe" "apt-get install --no-install-recommends $pkg"
    done <"$HERE/packages.txt"
}

[ $# -gt 0 ] || { echo "usage: $0 build|smoke|fuzz|packages..." >&2; exit 2; }
for group in "$@"; do
    case "$group" in
        build) check_build ;;
        smoke) check_smoke ;;
        fuzz) check_fuzz ;;
        packages) check_packages ;;
        *) echo "usage: $0 build|smoke|fuzz|packages..." >&2; exit 2 ;;
    esac
done

[ ${#missing[@]} -eq 0 ] && exit 0
echo "Missing:" >&2
for i in "${!missing[@]}"; do
    printf '  %s\n      install: %s\n' "${missing[$i]}" "${how[$i]}" >&2
done
echo "Or install everything the build and the tests need: make deps (as root, on Debian 12)." >&2
exit 1
