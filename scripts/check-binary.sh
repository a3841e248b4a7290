#!/usr/bin/env bash
# Check that a release binary is static and within its size budget.
#   scripts/check-binary.sh BINARY MAX_BYTES
set -euo pipefail
bin=$1 max=$2
size=$(stat -c %s "$bin")
kind=$(file -b "$bin")
fail=0
case "$kind" in
    *"static-pie linked"*|*"statically linked"*) echo "ok - $(basename "$bin") is statically linked" ;;
    *) echo "not ok - $(basename "$bin") is not static: $kind"; fail=1 ;;
esac
case "$kind" in
    *", stripped"*) echo "ok - $(basename "$bin") is stripped" ;;
    *) echo "not ok - $(basename "$bin") is not stripped"; fail=1 ;;
esac
if [ "$size" -le "$max" ]; then
    echo "ok - $(basename "$bin") is $size bytes (budget $max)"
else
    echo "not ok - $(basename "$bin") is $size bytes, over its budget of $max"; fail=1
fi
exit $fail

