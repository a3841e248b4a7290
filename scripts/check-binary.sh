#!/usr/bin/env bash
# Check that a release binary is static, stripped, for the right CPU and
# within its size budget.
#   scripts/check-binary.sh BINARY MAX_BYTES [RUST_TARGET]
set -euo pipefail
bin=$1 max=$2 target=${3:-}
size=$(stat -c %s "$bin")
kind=$(file -b "$bin")
name=$(basename "$bin")${target:+ ($target)}
fail=0
case "$kind" in
    *"static-pie linked"*|*"statically linked"*) echo "ok - $name is statically linked" ;;
    *) echo "not ok - $name is not static: $kind"; fail=1 ;;
esac
case "$kind" in
    *", stripped"*) echo "ok - $name is stripped" ;;
    *) echo "not ok - $name is not stripped"; fail=1 ;;
esac
# What file(1) says of each target's ELF machine.
case "$target" in
    x86_64-*) machine="x86-64" ;;
    aarch64-*) machine="ARM aarch64" ;;
    armv7-*) machine="ARM, EABI5" ;;
    riscv64*) machine="RISC-V" ;;
    *) machine="" ;;
esac
if [ -n "$machine" ]; then
    case "$kind" in
        *"$machine"*) echo "ok - $name is a $machine executable" ;;
        *) echo "not ok - $name is not a $machine executable: $kind"; fail=1 ;;
    esac
fi
if [ -z "$max" ]; then
    echo "not ok - $name has no size budget"; fail=1
elif [ "$size" -le "$max" ]; then
    echo "ok - $name is $size bytes (budget $max)"
else
    echo "not ok - $name is $size bytes, over its budget of $max"; fail=1
fi
exit $fail
