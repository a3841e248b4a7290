#!/usr/bin/env bash
# Check that a binary linked against a 32-bit musl >= 1.2 uses the 64-bit
# time_t ABI: none of musl's time32 compatibility functions is in it (the
# plain names, such as utimensat or fstat, that musl keeps for programs built
# against musl 1.1's 32-bit time_t, in src/compat/time32). They are what the
# libc crate calls on 32-bit musl unless built with `libc_unstable_musl_v1_2`
# (.cargo/config.toml); they work until 2038, then fail with EOVERFLOW.
#
#   scripts/check-time64.sh LIBC_A BINARY...
#
# BINARY must still have its symbol table (the armv7 build links with
# strip=none; the Makefile strips after this check). The list of compat
# functions is read from LIBC_A itself: what its *_time32 members define.
set -euo pipefail
libc_a=$1
shift
nm=${NM:-nm}

compat=$("$nm" -A "$libc_a" 2>/dev/null | sed -n 's/^.*_time32\.l\{0,1\}o: *[0-9a-f]* [TWDR] //p' | sort -u)
[ -n "$compat" ] || { echo "not ok - no time32 compatibility function in $libc_a: not a 32-bit musl >= 1.2?"; exit 1; }

fail=0
for bin in "$@"; do
    name=$(basename "$bin")
    syms=$("$nm" "$bin" 2>/dev/null | awk '$2 ~ /^[TtWw]$/ {print $3}' | sort -u)
    if [ -z "$syms" ]; then
        echo "not ok - $name has no symbol table (stripped?): cannot check its time_t ABI"; fail=1; continue
    fi
    bad=$(comm -12 <(echo "$compat") <(echo "$syms") | tr '\n' ' ')
    t64=$(echo "$syms" | grep -E '^__.*(time64|64_time64)$|^__.*_time64$' | tr '\n' ' ' || true)
    if [ -n "$bad" ]; then
        echo "not ok - $name calls musl's 32-bit time_t compatibility functions: $bad"; fail=1
    else
        echo "ok - $name: 64-bit time_t, none of musl's $(echo "$compat" | wc -l) time32 compatibility functions (time64 ones: ${t64:-none})"
    fi
done
exit $fail
