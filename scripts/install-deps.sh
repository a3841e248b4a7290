#!/usr/bin/env bash
# Install everything the build, the tests and the benchmark need, on a fresh
# Debian 12 machine with rustup. Safe to rerun: it only installs what is missing.
#
#   scripts/install-deps.sh [build|test|all]   (default: all)
set -euo pipefail

what=${1:-all}
musl_target=x86_64-unknown-linux-musl

need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "install-deps: installing Debian packages needs root" >&2
        exit 1
    fi
}

install_rust_target() {
    if ! rustup target list --installed | grep -qx "$musl_target"; then
        echo "install-deps: adding Rust target $musl_target"
        rustup target add "$musl_target"
    fi
}

# Debian packages, by what needs them:
#   ostree ostree-boot: the real ostree CLI to build sysroots, and the C
#     ostree-prepare-root we compare against;
#   python3-gi gir1.2-glib-2.0: parse /run/ostree-booted with GLib;
#   strace hyperfine: the benchmark; file: checks that the binary is static;
#   xfsprogs btrfs-progs erofs-utils dosfstools fdisk: images to check the
#     superblock and partition-table probes against blkid;
#   scdoc: renders the man pages at install;
#   busybox-static: the test init inside the images of tests/mountns/pid1.sh.
apt_packages=(ostree ostree-boot python3-gi gir1.2-glib-2.0 strace hyperfine file util-linux e2fsprogs
    xfsprogs btrfs-progs erofs-utils dosfstools fdisk busybox-static scdoc)

install_apt() {
    local missing=()
    for p in "${apt_packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        need_root
        echo "install-deps: apt-get install ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

install_fuzz() {
    if ! rustup toolchain list | grep -q '^nightly'; then
        rustup toolchain install nightly --profile minimal
    fi
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "install-deps: cargo install cargo-fuzz"
        cargo install cargo-fuzz --locked --quiet
    fi
}

case "$what" in
    build) install_rust_target ;;
    test|all) install_rust_target; install_apt; install_fuzz ;;
    *) echo "usage: $0 [build|test|all]" >&2; exit 2 ;;
esac
