#!/usr/bin/env bash
# Benchmark ostree-prepare-root against ostree's C tool, side by side, in one run,
# on identical copies of one real OSTree sysroot (built by tests/mountns/fixture.sh).
#
#   bench/run.sh [RUST_BINARY] [C_BINARY]
#
# Measures: stripped size (and the C tool's shared-library closure), system calls
# in one service-mode run (strace -f -c), heap system calls (brk, anonymous mmap),
# and the median wall time of RUNS runs. Each run happens in a fresh private mount
# namespace with a tmpfs root; the machine's real / is never touched.
# Both tools read the kernel command line from /proc/cmdline (a bind-mounted file).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
RUST_BIN=$(realpath "${1:-$REPO/target/x86_64-unknown-linux-musl/release/ostree-prepare-root}")
C_BIN=$(realpath "${2:-/usr/lib/ostree/ostree-prepare-root}")
RUNS=${RUNS:-41}

[ "$(id -u)" = 0 ] || { echo "bench: must run as root (mount namespaces)" >&2; exit 1; }
for b in "$RUST_BIN" "$C_BIN"; do [ -x "$b" ] || { echo "bench: missing $b" >&2; exit 1; }; done

"$REPO/tests/mountns/fixture.sh" >/dev/null
CACHE=${MOUNTNS_CACHE:-$REPO/target/mountns-cache}
# shellcheck disable=SC1091
. "$CACHE/fixture.env"
WORK=$(mktemp -d /tmp/ostree-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
echo "ostree=$OSTREE_TARGET_1 rw quiet" >"$WORK/cmdline"

# run_in_ns TOOL PREFIX...: run "PREFIX... /usr/lib/ostree/tool /sysroot" as the
# initramfs would, in a fresh mount namespace with a tmpfs root holding a copy of
# the physical root. Prints the tool's wall time in microseconds on fd 3.
run_in_ns() {
    local tool=$1; shift
    unshare -m --propagation private -- bash -s "$tool" "$CACHE/sysroot" "$WORK" "$@" <<'NS'
set -euo pipefail
tool=$1 pristine=$2 work=$3; shift 3
cmdline=$work/cmdline
R=$(mktemp -d /tmp/ostree-bench-root.XXXXXX)
mount -t tmpfs root "$R"
mkdir -p "$R"/{proc,sys,dev,run,sysroot,etc,tmp,usr,old,work}
mount -t tmpfs physroot "$R/sysroot"
cp -a "$pristine/." "$R/sysroot/"
mount --bind /usr "$R/usr"
mkdir -p "$R/tool"
cp "$tool" "$R/tool/ostree-prepare-root"
for l in lib lib64 bin sbin; do [ -e "$R/$l" ] || ln -s "usr/$l" "$R/$l"; done
mount -t tmpfs run "$R/run"
mount -t proc proc "$R/proc"
mount --bind "$cmdline" "$R/proc/cmdline"
mount --bind "$work" "$R/work"
cd "$R"
pivot_root . old
umount -l /old
start=$EPOCHREALTIME
"$@" /tool/ostree-prepare-root /sysroot >/dev/null
end=$EPOCHREALTIME
echo $(( (${end/./} - ${start/./}) )) >&3
NS
}

# Size, with the shared libraries the C tool needs at run time.
size_of() { stat -L -c %s "$1"; }
closure_of() {
    local total=0 lib
    for lib in $(ldd "$1" 2>/dev/null | awk '/=>/ {print $3} /^\t\// {print $1}'); do
        total=$((total + $(size_of "$lib")))
    done
    echo "$total"
}

# One strace'd run: total syscalls, and heap syscalls.
syscalls_of() {
    local tool=$1 name=strace.$RANDOM
    run_in_ns "$tool" strace -f -qq -o "/work/$name" 3>/dev/null
    local out=$WORK/$name
    [ -z "${BENCH_KEEP_TRACE:-}" ] || cp "$out" "$BENCH_KEEP_TRACE.$(echo "$tool" | md5sum | cut -c1-6)"
    local total brk anon
    total=$(grep -vc -e '^[0-9]* *+++' -e '^[0-9]* *---' -e 'resumed>' "$out")
    brk=$(grep -c ' brk(' "$out" || true)
    anon=$(grep ' mmap(' "$out" | grep -c 'MAP_ANONYMOUS' || true)
    echo "$total $brk $anon"
}

median_of() {
    local tool=$1 i
    for ((i = 0; i < RUNS; i++)); do run_in_ns "$tool" 3>&1; done | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }'; }

echo "Benchmark: ostree-switchroot vs ostree's C ostree-prepare-root ($(ostree --version | awk -F"'" '/Version/ {print $2}'))"
echo "sysroot: genuine OSTree sysroot from tests/mountns/fixture.sh; service mode; $RUNS timed runs each"
echo

rs_size=$(size_of "$RUST_BIN"); c_size=$(size_of "$C_BIN"); c_closure=$(closure_of "$C_BIN")
read -r rs_sys rs_brk rs_anon < <(syscalls_of "$RUST_BIN")
read -r c_sys c_brk c_anon < <(syscalls_of "$C_BIN")
rs_time=$(median_of "$RUST_BIN"); c_time=$(median_of "$C_BIN")

printf '%-38s %14s %14s %8s\n' metric ostree-switchroot "C (ostree)" ratio
printf '%-38s %14s %14s %8s\n' "stripped size, bytes" "$rs_size" "$c_size" "$(ratio "$rs_size" "$c_size")"
printf '%-38s %14s %14s %8s\n' "  + shared libraries loaded, bytes" 0 "$c_closure" "$(ratio "$rs_size" $((c_size + c_closure)))"
printf '%-38s %14s %14s %8s\n' "system calls, one run" "$rs_sys" "$c_sys" "$(ratio "$rs_sys" "$c_sys")"
printf '%-38s %14s %14s %8s\n' "heap syscalls (brk + anonymous mmap)" "$((rs_brk + rs_anon))" "$((c_brk + c_anon))" -
printf '%-38s %14s %14s %8s\n' "median wall time, microseconds" "$rs_time" "$c_time" "$(ratio "$rs_time" "$c_time")"
