#!/usr/bin/env bash
# Benchmark ostree-prepare-root against ostree's C tool, side by side, in one run,
# on identical copies of one real OSTree sysroot.
#
#   bench/run.sh [RUST_BINARY] [C_BINARY]
#   bench/run.sh --composefs [RUST_BINARY] [C_BINARY]
#
# Plain: the sysroot of tests/mountns/fixture.sh, against the machine's C tool
# (Debian 12: ostree 2022.7). --composefs: the composefs sysroot that ostree
# 2026.4's own CLI built (tests/mountns/composefs-fixture.sh; it needs the
# chroot of scripts/fetch-composefs-ref.sh), an initramfs prepare-root.conf
# with `[composefs] enabled = yes`, against that chroot's C tool (the
# fixture's bundle: the binary, its shared libraries and their loader; a
# C_BINARY without a C_BINARY.bundle beside it runs as it is). Two
# physical roots, each with its own rows: a tmpfs (EROFS cannot read a file
# there, so both tools attach a loop device) and, unless BENCH_EXT4=0, an
# ext4 image loop-mounted in each namespace (EROFS reads the image file
# itself, on kernels with CONFIG_EROFS_FS_BACKED_BY_FILE). Every run must
# exit 0 and leave /sysroot the composefs overlay of deployment 1, or the
# bench stops.
#
# Measures: stripped size (and the C tool's shared-library closure), system calls
# in one service-mode run (strace -f -c), heap system calls (brk, anonymous mmap),
# and the wall time of RUNS runs of each tool: median, quartiles, min and max.
# The two tools take turns (ours, C, ours, C, ...), so that a machine busy for a
# while slows both alike and the ratio of the medians holds; the median of the
# ratios of each pair of consecutive runs is printed too. Each run happens in a
# fresh private mount namespace with a tmpfs root; the machine's real / is
# never touched. On a busy machine the absolute times swing widely from one
# run of the bench to the next; the ratio of each pair is the number to quote.
# Both tools read the kernel command line from /proc/cmdline (a bind-mounted file).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
COMPOSEFS=0
if [[ ${1:-} == --composefs ]]; then COMPOSEFS=1; shift; fi
CACHE=${MOUNTNS_CACHE:-$REPO/target/mountns-cache}
C_DEFAULT=/usr/lib/ostree/ostree-prepare-root
if ((COMPOSEFS)); then C_DEFAULT=$CACHE/composefs/ref/ostree-prepare-root; fi
RUST_BIN=$(realpath "${1:-$REPO/target/x86_64-unknown-linux-musl/release/ostree-prepare-root}")
C_BIN=$(realpath -m "${2:-$C_DEFAULT}")
RUNS=${RUNS:-41}

[ "$(id -u)" = 0 ] || { echo "bench: must run as root (mount namespaces)" >&2; exit 1; }
if ((COMPOSEFS)); then "$REPO/tests/mountns/composefs-fixture.sh" >/dev/null; else "$REPO/tests/mountns/fixture.sh" >/dev/null; fi
for b in "$RUST_BIN" "$C_BIN"; do [ -x "$b" ] || { echo "bench: missing $b" >&2; exit 1; }; done
WORK=$(mktemp -d /tmp/ostree-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
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

# cfs_run_in_ns TOOL PREFIX...: the composefs run (the physical root as
# CFS_PHYS says: tmpfs or ext4), "PREFIX... TOOL /sysroot" with the
# initramfs's prepare-root.conf enabling composefs, in a fresh mount
# namespace. A TOOL with a TOOL.bundle beside it (the fixture's C reference)
# is run as its wrapper would run it, without the wrapper's shell: the
# bundle's loader, its libraries, its binary. Prints the tool's wall time in
# microseconds on fd 3, and only if the tool exited 0 and /sysroot is then
# the composefs overlay of deployment 1; else says why and fails.
cfs_run_in_ns() {
    local tool=$1; shift
    LIBMOUNT_UTAB=$WORK/libmount-utab unshare -m --propagation private -- \
        bash -s "$tool" "$CFS_PHYS" "$CACHE/sysroot" "$WORK" "$REPO" "$@" <<'NS'
set -euo pipefail
tool=$1 phys=$2 pristine=$3 work=$4 repo=$5; shift 5
source "$repo/tests/mountns/rootfs.sh"
R=$work/root
mountns_root "$R" work
mount -t tmpfs -o mode=0755 ostree-lib "$R/usr/lib/ostree"
printf '[composefs]\nenabled = yes\n' >"$R/usr/lib/ostree/prepare-root.conf"
install -m 0755 "$tool" "$R/usr/lib/ostree/ostree-prepare-root"
run=(/usr/lib/ostree/ostree-prepare-root)
if [[ -d $tool.bundle ]]; then
    b=/usr/lib/ostree/ostree-prepare-root.bundle
    cp -a "$tool.bundle" "$R$b"
    run=("$b/ld.so" --library-path "$b/lib" "$b/ostree-prepare-root")
fi
# The machine's /dev (devtmpfs), as an initramfs has it: loop-control and
# every loop device's node (mknod of a few hundred loop nodes per run, as
# the tests do, would take seconds here). Nothing writes to it.
mount --bind /dev "$R/dev"
case $phys in
    tmpfs)
        mount -t tmpfs -o mode=0755 physroot "$R/sysroot"
        cp -a "$pristine/." "$R/sysroot/" ;;
    ext4)
        # A block device: EROFS can read the image file on it. The copy of
        # the image lives on the root tmpfs; the loop device keeps it open.
        cp --sparse=always "$work/physroot.img" "$R/physroot.img"
        mount -o loop "$R/physroot.img" "$R/sysroot" ;;
esac
mount -t tmpfs -o mode=0755 run "$R/run"
mount -t proc proc "$R/proc"
mount --bind "$work/cmdline" "$R/proc/cmdline"
mount --bind "$work" "$R/work"
cd "$R"
pivot_root . .oldroot
umount -l /.oldroot
rc=0
start=$EPOCHREALTIME
"$@" "${run[@]}" /sysroot >/tmp/out 2>&1 || rc=$?
end=$EPOCHREALTIME
if ((rc != 0)); then
    echo "bench: ${run[*]} exited $rc:" >&2
    cat /tmp/out >&2
    exit 1
fi
# The topmost mount on /sysroot (no awk here: R's /etc has no alternatives).
fstype="" source=""
while read -r -a f; do
    [[ ${f[4]} == /sysroot ]] || continue
    for ((i = 6; i < ${#f[@]}; i++)); do [[ ${f[i]} == - ]] && break; done
    fstype=${f[i + 1]} source=${f[i + 2]}
done </proc/self/mountinfo
letter=$(cat /sysroot/usr/share/which-deployment 2>/dev/null || true)
if [[ $fstype != overlay || $source != composefs || $letter != A ]]; then
    echo "bench: after ${run[*]}: /sysroot is '$fstype' from '$source' showing deployment '$letter'," \
        "not the composefs overlay of deployment A" >&2
    exit 1
fi
echo $(( (${end/./} - ${start/./}) )) >&3
NS
}

# The runner of the current table: run_in_ns or cfs_run_in_ns.
RUNNER=run_in_ns

# Size, with the shared libraries the C tool needs at run time.
size_of() { stat -L -c %s "$1"; }
closure_of() {
    local total=0 lib
    for lib in $(ldd "$1" 2>/dev/null | awk '/=>/ {print $3} /^\t\// {print $1}'); do
        total=$((total + $(size_of "$lib")))
    done
    echo "$total"
}
# The bundle's libraries (its lib/ holds the loader too; ld.so is a copy).
bundle_closure_of() {
    local total=0 lib
    for lib in "$1"/lib/*; do total=$((total + $(size_of "$lib"))); done
    echo "$total"
}

# One strace'd run: total syscalls, heap syscalls, loop devices attached.
syscalls_of() {
    local tool=$1 name=strace.$RANDOM
    "$RUNNER" "$tool" strace -f -qq -o "/work/$name" 3>/dev/null || { echo "bench: the strace run of $tool failed" >&2; return 1; }
    local out=$WORK/$name
    [ -z "${BENCH_KEEP_TRACE:-}" ] || cp "$out" "$BENCH_KEEP_TRACE.$(echo "$tool" | md5sum | cut -c1-6)"
    local total brk anon loop
    total=$(grep -vc -e '^[0-9]* *+++' -e '^[0-9]* *---' -e 'resumed>' "$out")
    brk=$(grep -c ' brk(' "$out" || true)
    anon=$(grep ' mmap(' "$out" | grep -c 'MAP_ANONYMOUS' || true)
    loop=$(grep -c -E 'ioctl\(.*(LOOP_CONFIGURE|LOOP_SET_FD)' "$out" || true)
    echo "$total $brk $anon $loop"
}

# time_both: RUNS timed runs of each tool, taking turns; one line per pair,
# "ours C" in microseconds.
time_both() {
    local i rs c
    for ((i = 0; i < RUNS; i++)); do
        rs=$("$RUNNER" "$RUST_BIN" 3>&1) || { echo "bench: run $i of $RUST_BIN failed" >&2; return 1; }
        c=$("$RUNNER" "$C_BIN" 3>&1) || { echo "bench: run $i of $C_BIN failed" >&2; return 1; }
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

row() { printf '%-38s %14s %14s %10s\n' "$@"; }

# time_rows TIMES: the wall-time rows of a file of time_both; sets rs_time.
time_rows() {
    local rs_min rs_q1 rs_q3 rs_max c_min c_q1 c_time c_q3 c_max pair_q1 pair_ratio pair_q3
    read -r rs_min rs_q1 rs_time rs_q3 rs_max < <(cut -d' ' -f1 "$1" | stats_of)
    read -r c_min c_q1 c_time c_q3 c_max < <(cut -d' ' -f2 "$1" | stats_of)
    read -r _ pair_q1 pair_ratio pair_q3 _ < <(awk '{ if ($2 > 0) printf "%.4f\n", $1 / $2 }' "$1" | stats_of)
    row "median wall time, microseconds" "$rs_time" "$c_time" "$(ratio "$rs_time" "$c_time")"
    row "  quartiles Q1-Q3" "$rs_q1-$rs_q3" "$c_q1-$c_q3" -
    row "  min-max" "$rs_min-$rs_max" "$c_min-$c_max" -
    row "  ratio of each pair of runs: median" "" "" "$(printf '%.2f' "$pair_ratio")"
    row "    quartiles Q1-Q3" "" "" "$(printf '%.2f-%.2f' "$pair_q1" "$pair_q3")"
}

plain_main() {
    # shellcheck disable=SC1091
    . "$CACHE/fixture.env"
    echo "ostree=$OSTREE_TARGET_1 rw quiet" >"$WORK/cmdline"
    echo "Benchmark: ostree-switchroot vs ostree's C ostree-prepare-root ($(ostree --version | awk -F"'" '/Version/ {print $2}'))"
    echo "sysroot: genuine OSTree sysroot from tests/mountns/fixture.sh; service mode; $RUNS timed runs each, taking turns"
    echo

    local rs_size c_size c_closure rs_sys rs_brk rs_anon c_sys c_brk c_anon
    rs_size=$(size_of "$RUST_BIN"); c_size=$(size_of "$C_BIN"); c_closure=$(closure_of "$C_BIN")
    local rs_trace c_trace
    rs_trace=$(syscalls_of "$RUST_BIN"); c_trace=$(syscalls_of "$C_BIN")
    read -r rs_sys rs_brk rs_anon _ <<<"$rs_trace"
    read -r c_sys c_brk c_anon _ <<<"$c_trace"
    time_both >"$WORK/times"

    row metric ostree-switchroot "C (ostree)" ratio
    row "stripped size, bytes" "$rs_size" "$c_size" "$(ratio "$rs_size" "$c_size")"
    row "  + shared libraries loaded, bytes" 0 "$c_closure" "$(ratio "$rs_size" $((c_size + c_closure)))"
    row "system calls, one run" "$rs_sys" "$c_sys" "$(ratio "$rs_sys" "$c_sys")"
    row "heap syscalls (brk + anonymous mmap)" "$((rs_brk + rs_anon))" "$((c_brk + c_anon))" -
    time_rows "$WORK/times"

    # What removing an unlock's leftovers costs the boot: the booting
    # deployment's backing directory holds a usr-transient of LEFTOVER_FILES
    # files (in directories of 1,000), as a large development unlock leaves it.
    # Ours alone (ostree's C tool of this version removes nothing there); the
    # sysroot is a copy on tmpfs, so this is the deleter's own cost.
    local big upper d i lo_time
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
    row "with $LEFTOVER_FILES leftover files, µs" "$lo_time" - "$(ratio "$lo_time" "$rs_time")"
}

# The composefs table: sizes, then per physical root (tmpfs: EROFS through a
# loop device; ext4, unless BENCH_EXT4=0: EROFS from the image file) the
# system calls of one run and RUNS timed pairs.
cfs_main() {
    CACHE=$CACHE/composefs
    RUNNER=cfs_run_in_ns
    # shellcheck disable=SC1091
    . "$CACHE/fixture.env"
    echo "root=LABEL=osroot rw quiet ostree=$OSTREE_TARGET_1" >"$WORK/cmdline"
    local bundle=$C_BIN.bundle phys_list=(tmpfs) phys title
    if [[ ${BENCH_EXT4:-1} != 0 ]]; then
        phys_list+=(ext4)
        truncate -s 64M "$WORK/physroot.img"
        mkfs.ext4 -q -F -L osroot -O ^has_journal -E lazy_itable_init=0 -d "$CACHE/sysroot" "$WORK/physroot.img" >/dev/null
    fi
    # shellcheck disable=SC2154 # from fixture.env
    echo "Benchmark: ostree-switchroot vs ostree $VERSION_ostree_boot's C ostree-prepare-root (libcomposefs $VERSION_libcomposefs1), composefs"
    echo "sysroot: composefs sysroot built by ostree 2026.4's CLI (tests/mountns/composefs-fixture.sh);"
    echo "initramfs prepare-root.conf [composefs] enabled = yes; service mode; kernel $(uname -r);"
    echo "$RUNS timed runs each per physical root, taking turns; the C tool through its bundle's loader"
    echo

    local rs_size c_size c_closure cfs_lib rs_sys rs_brk rs_anon rs_loop c_sys c_brk c_anon c_loop
    local rs_trace c_trace
    rs_size=$(size_of "$RUST_BIN")
    if [[ -d $bundle ]]; then
        c_size=$(size_of "$bundle/ostree-prepare-root")
        c_closure=$(bundle_closure_of "$bundle"); cfs_lib=$(size_of "$bundle"/lib/libcomposefs.so.*)
    else
        # A C tool of the machine's own, with the machine's libraries.
        c_size=$(size_of "$C_BIN"); c_closure=$(closure_of "$C_BIN")
        cfs_lib=$(ldd "$C_BIN" | awk '/libcomposefs/ {print $3}')
        if [[ -n $cfs_lib ]]; then cfs_lib=$(size_of "$cfs_lib"); else cfs_lib=0; fi
    fi
    row metric ostree-switchroot "C (ostree)" ratio
    row "stripped size, bytes" "$rs_size" "$c_size" "$(ratio "$rs_size" "$c_size")"
    row "  + shared libraries loaded, bytes" 0 "$c_closure" "$(ratio "$rs_size" $((c_size + c_closure)))"
    row "    of which libcomposefs" 0 "$cfs_lib" -
    for phys in "${phys_list[@]}"; do
        CFS_PHYS=$phys
        rs_trace=$(syscalls_of "$RUST_BIN"); c_trace=$(syscalls_of "$C_BIN")
        read -r rs_sys rs_brk rs_anon rs_loop <<<"$rs_trace"
        read -r c_sys c_brk c_anon c_loop <<<"$c_trace"
        time_both >"$WORK/times.$phys"
        title="physical root on tmpfs: EROFS through a loop device"
        [[ $phys == tmpfs ]] || title="physical root on ext4: EROFS from the image file"
        echo "$title"
        row "system calls, one run" "$rs_sys" "$c_sys" "$(ratio "$rs_sys" "$c_sys")"
        row "heap syscalls (brk + anonymous mmap)" "$((rs_brk + rs_anon))" "$((c_brk + c_anon))" -
        row "loop devices attached" "$rs_loop" "$c_loop" -
        time_rows "$WORK/times.$phys"
    done
}

if ((COMPOSEFS)); then cfs_main; else plain_main; fi
