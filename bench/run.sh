#!/usr/bin/env bash
# Benchmark ostree-prepare-root against ostree's C tool, side by side, in one run,
# on identical copies of one real OSTree sysroot (built by tests/mountns/fixture.sh).
#
#   bench/run.sh [RUST_BINARY] [C_BINARY]
#
# Measures: stripped size (and the C tool's shared-library closure), system calls
# in one service-mode run (strace -f -c), heap system calls (brk, anonymous mmap),
# and the wall time of RUNS runs of each tool: median, quartiles, min and max.
# The two tools take turns (ours, C, ours, C, ...), so that a machine busy for a
# while slows both alike and the ratio of the medians holds; the median of the
# ratios of each pair of consecutive runs is printed too. Each run happens in a
# fresh private mount namespace with a tmpfs root; the machine's real / is
# never touched.
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
# The mount point of each run's tmpfs root (each namespace mounts its own).
mkdir "$WORK/root"

# run_in_ns TOOL PREFIX...: run "PREFIX... /usr/lib/ostree/tool /sysroot" as the
# initramfs would, in a fresh mount namespace with a tmpfs root holding a copy of
# the physical root. Prints the tool's wall time in microseconds on fd 3.
run_in_ns() {
    local tool=$1; shift
    unshare -m --propagation private -- bash -s "$tool" "${SYSROOT_SRC:-$CACHE/sysroot}" "$WORK" "$@" <<'NS'
set -euo pipefail
tool=$1 pristine=$2 work=$3; shift 3
cmdline=$work/cmdline
R=$work/root
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

# time_both: RUNS timed runs of each tool, taking turns; one line per pair,
# "ours C" in microseconds.
time_both() {
    local i rs c
    for ((i = 0; i < RUNS; i++)); do
        rs=$(run_in_ns "$RUST_BIN" 3>&1)
        c=$(run_in_ns "$C_BIN" 3>&1)
        echo "$rs $c"
    done
}

# stats_of: numbers on stdin -> "min q1 median q3 max" (nearest rank).
stats_of() {
    sort -n | awk '{a[NR] = $1}
        function at(p) { i = int(p * (NR + 1)); if (i < 1) i = 1; if (i > NR) i = NR; return a[i] }
        END { print a[1], at(0.25), at(0.5), at(0.75), a[NR] }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }'; }

echo "Benchmark: ostree-switchroot vs ostree's C ostree-prepare-root ($(ostree --version | awk -F"'" '/Version/ {print $2}'))"
echo "sysroot: genuine OSTree sysroot from tests/mountns/fixture.sh; service mode; $RUNS timed runs each, taking turns"
echo

rs_size=$(size_of "$RUST_BIN"); c_size=$(size_of "$C_BIN"); c_closure=$(closure_of "$C_BIN")
read -r rs_sys rs_brk rs_anon < <(syscalls_of "$RUST_BIN")
read -r c_sys c_brk c_anon < <(syscalls_of "$C_BIN")
time_both >"$WORK/times"
read -r rs_min rs_q1 rs_time rs_q3 rs_max < <(cut -d' ' -f1 "$WORK/times" | stats_of)
read -r c_min c_q1 c_time c_q3 c_max < <(cut -d' ' -f2 "$WORK/times" | stats_of)
read -r _ pair_q1 pair_ratio pair_q3 _ < <(awk '{ if ($2 > 0) printf "%.4f\n", $1 / $2 }' "$WORK/times" | stats_of)

printf '%-38s %14s %14s %10s\n' metric ostree-switchroot "C (ostree)" ratio
printf '%-38s %14s %14s %10s\n' "stripped size, bytes" "$rs_size" "$c_size" "$(ratio "$rs_size" "$c_size")"
printf '%-38s %14s %14s %10s\n' "  + shared libraries loaded, bytes" 0 "$c_closure" "$(ratio "$rs_size" $((c_size + c_closure)))"
printf '%-38s %14s %14s %10s\n' "system calls, one run" "$rs_sys" "$c_sys" "$(ratio "$rs_sys" "$c_sys")"
printf '%-38s %14s %14s %10s\n' "heap syscalls (brk + anonymous mmap)" "$((rs_brk + rs_anon))" "$((c_brk + c_anon))" -
printf '%-38s %14s %14s %10s\n' "median wall time, microseconds" "$rs_time" "$c_time" "$(ratio "$rs_time" "$c_time")"
printf '%-38s %14s %14s %10s\n' "  quartiles Q1-Q3" "$rs_q1-$rs_q3" "$c_q1-$c_q3" -
printf '%-38s %14s %14s %10s\n' "  min-max" "$rs_min-$rs_max" "$c_min-$c_max" -
printf '%-38s %14s %14s %10s\n' "  ratio of each pair of runs: median" "" "" "$(printf '%.2f' "$pair_ratio")"
printf '%-38s %14s %14s %10s\n' "    quartiles Q1-Q3" "" "" "$(printf '%.2f-%.2f' "$pair_q1" "$pair_q3")"

# What removing an unlock's leftovers costs the boot: the booting
# deployment's backing directory holds a usr-transient of LEFTOVER_FILES
# files (in directories of 1,000), as a large development unlock leaves it.
# Ours alone (ostree's C tool of this version removes nothing there); the
# sysroot is a copy on tmpfs, so this is the deleter's own cost.
LEFTOVER_FILES=${LEFTOVER_FILES:-100000}
LEFTOVER_RUNS=${LEFTOVER_RUNS:-5}
big=$WORK/sysroot-leftovers
cp -a "$CACHE/sysroot" "$big"
upper=$big/ostree/deploy/$OSNAME/backing/$DEPLOY_1_NAME/usr-transient/upper
for ((d = 0; d < LEFTOVER_FILES / 1000; d++)); do
    mkdir -p "$upper/d$d"
    (cd "$upper/d$d" && seq -f 'f%g' 1 1000 | xargs touch)
done
mkdir -p "$upper/../work"
for ((i = 0; i < LEFTOVER_RUNS; i++)); do
    SYSROOT_SRC=$big run_in_ns "$RUST_BIN" 3>&1
done | stats_of >"$WORK/leftover-times"
read -r _ _ lo_time _ _ <"$WORK/leftover-times"
printf '%-38s %14s %14s %10s\n' "with $LEFTOVER_FILES leftover files, µs" "$lo_time" - "$(ratio "$lo_time" "$rs_time")"

