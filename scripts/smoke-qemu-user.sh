#!/usr/bin/env bash
# Run the release binaries of one target on this machine, under qemu-user for
# a foreign architecture (qemu-aarch64-static, ...; QEMU empty: directly),
# without root and without changing anything:
#   - every binary's --help (exit 0, its usage line);
#   - ostree-prepare-root --dry-run (both flavours) over a small sysroot made
#     here: the ostree= symlink chain resolved inside SYSROOT, the plan
#     printed, and the deployment's device and inode, read with statx, the
#     same as stat(1) says (a wrong structure layout or device encoding on
#     that architecture would show here);
#   - ostree-unlock --status --json over the same sysroot.
# What it proves: the binaries start on that CPU (C start files, static
# musl, relocations), parse arguments, make the system calls of reading
# (openat, readlinkat, statx, getdents64, write) with that architecture's
# numbers and layouts, and format their output. Not what needs root: mounts,
# switch root, PID 1 (those are tested on x86_64: tests/mountns, QEMU boots).
#
#   scripts/smoke-qemu-user.sh QEMU PREPARE_ROOT SERVICE_ONLY UNLOCK
set -euo pipefail
qemu=$1 prepare_root=$2 service_only=$3 unlock=$4

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
s=$work/sysroot
mkdir -p "$s/ostree/deploy/os/deploy/abc.0/usr/etc" "$s/ostree/boot.1/os/bcsum" "$s/ostree/repo" "$s/boot"
ln -s ../../../deploy/os/deploy/abc.0 "$s/ostree/boot.1/os/bcsum/0"
dev_ino=$(stat -c '%d,%i' "$s/ostree/deploy/os/deploy/abc.0")

fail=0
indent() { while IFS= read -r line; do echo "# $line"; done <<<"$1"; }
run() { # NAME EXPECTED-SUBSTRING COMMAND...
    local name=$1 want=$2 out
    shift 2
    if ! out=$(${qemu:+"$qemu"} "$@" 2>&1); then
        echo "not ok - $name: exit status $?"; indent "$out"; fail=1
    elif [[ $out != *"$want"* ]]; then
        echo "not ok - $name: no \"$want\" in its output"; indent "$out"; fail=1
    else
        echo "ok - $name${qemu:+ (under $qemu)}"
    fi
}

arch=$(file -b "$prepare_root" | cut -d, -f2 | sed 's/^ *//')
echo "# $arch"
run "ostree-prepare-root --help" "Usage: ostree-prepare-root" "$prepare_root" --help
run "ostree-prepare-root (service-only) --help" "Usage: ostree-prepare-root" "$service_only" --help
run "ostree-unlock --help" "Usage: ostree-unlock" "$unlock" --help
for flavour in "" " (service-only)"; do
    bin=$prepare_root
    [ -z "$flavour" ] || bin=$service_only
    run "ostree-prepare-root$flavour --dry-run" "backing-root-device-inode=($dev_ino)" \
        "$bin" --dry-run "$s" "ostree=/ostree/boot.1/os/bcsum/0 quiet"
done
run "ostree-unlock --status --json" '{"checksum":"abc","stateroot":"os","serial":0,"booted":false,"unlocked":"none"' \
    "$unlock" --status --json --sysroot "$s" --deployment os/abc.0
exit $fail
