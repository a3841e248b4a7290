# shellcheck shell=bash disable=SC2034 # the variables are for the scripts that source this file
# What each Rust target of the build matrix needs, for check-deps.sh and
# install-deps.sh (the Makefile has the same facts: TARGETS, CROSS_*, QEMU_*,
# BUILD_STD_TARGETS). Sourced; sets, for $1:
#   TARGET_GCC        the linker (.cargo/config.toml), a program on PATH
#   TARGET_BINUTILS   the prefix of its objcopy and nm
#   TARGET_BUILD_STD  1 when `core` is built from source ($RUST_NIGHTLY + rust-src)
#   TARGET_QEMU       the qemu-user emulator that runs its binaries here, or ""
#   TARGET_PACKAGES   the Debian packages that bring the above
# and returns 1 for a target it does not know.
# The nightly toolchain, pinned to a date known to build, lint and fuzz this
# tree (nightly changes every day, -Zbuild-std and clippy with it): the
# armv7/riscv64 builds (-Zbuild-std=core, rust-src) and cargo-fuzz use it; the
# Makefile reads it from here. Moving it: install the new one with `make deps`,
# then `make lint matrix fuzz-smoke`.
RUST_NIGHTLY=nightly-2026-05-20
MATRIX_TARGETS="x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf riscv64gc-unknown-linux-musl"
target_info() {
    TARGET_BUILD_STD="" TARGET_QEMU=""
    case "$1" in
        x86_64-unknown-linux-musl)
            TARGET_GCC=cc TARGET_BINUTILS="" TARGET_PACKAGES="gcc binutils" ;;
        aarch64-unknown-linux-musl)
            TARGET_GCC=aarch64-linux-gnu-gcc TARGET_BINUTILS=aarch64-linux-gnu-
            TARGET_QEMU=qemu-aarch64-static TARGET_PACKAGES="gcc-aarch64-linux-gnu" ;;
        armv7-unknown-linux-musleabihf)
            TARGET_GCC=arm-linux-gnueabihf-gcc TARGET_BINUTILS=arm-linux-gnueabihf- TARGET_BUILD_STD=1
            TARGET_QEMU=qemu-arm-static TARGET_PACKAGES="gcc-arm-linux-gnueabihf" ;;
        riscv64gc-unknown-linux-musl)
            TARGET_GCC=riscv64-linux-gnu-gcc TARGET_BINUTILS=riscv64-linux-gnu- TARGET_BUILD_STD=1
            TARGET_QEMU=qemu-riscv64-static TARGET_PACKAGES="gcc-riscv64-linux-gnu" ;;
        *) return 1 ;;
    esac
}
