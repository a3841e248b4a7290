# shellcheck shell=bash source-path=SCRIPTDIR
# pid1-lib.sh - boot ostree-prepare-root as PID 1 of a new PID + mount namespace.
#
# Source this file (pid1.sh does). The caller must be root and inside a
# private mount namespace with PID1_WORK on a tmpfs of its own (pid1.sh does
# that), because disk images, their copies and every run's output live there.
#
# Images (pid1_build_images, once per pid1.sh run, in $PID1_WORK/img):
#   base.img     ext4 "osroot" made by mkfs.ext4 -d from the fixture sysroot
#                (fixture.sh), with in BOTH deployments: a static busybox at
#                usr/bin/busybox (+ usr/bin/sh), bin -> usr/bin, sbin -> usr/sbin,
#                the test init (usr/sbin/init, usr/sbin/init2 with another tag)
#                and the binary under test at usr/lib/ostree/ostree-prepare-root;
#                a marker file in the stateroot's var.
#   conf.img     the same, plus usr/lib/ostree/prepare-root.conf in deployment 1
#                saying [sysroot] readonly=true
#   hotfix.img   the same, plus .usr-ovl-upper/.usr-ovl-work in deployment 1
#                (what `ostree admin unlock --hotfix` leaves)
#   late.img     base.img relabelled "late"
#   gpt.img      a GPT disk whose partition 1 holds base.img, with a known
#                PARTUUID and PARTLABEL
#   composefs.img  ext4 "osroot" of composefs-fixture.sh's sysroot (made by
#                ostree 2026.4: each deployment has its .ostree.cfs image, and
#                busybox and the test init in the image itself), the binary
#                under test in deployment 1's physical directory (for init=)
#                and the var marker; only when PID1_COMPOSEFS_SYSROOT is set
#
# A boot (pid1_boot) attaches nothing itself: the scenario attaches loop
# devices (pid1_attach) and says which ones the namespace's /dev holds.
# Two kinds of namespace, both entered with
#   unshare --mount --propagation private --pid --fork
# so that what we start is PID 1 of the new PID namespace:
#   initramfs  R = a fresh tmpfs holding only /init (the binary) and the
#              directories /dev and /proc; R/dev is a tmpfs with null, zero
#              and the block nodes asked for (no kmsg, no console: the binary
#              logs to stdout/stderr); R/proc is a proc with a file bound over
#              R/proc/cmdline (the kernel command line of the test); /sys and
#              /run are left for the binary to mount (or /sys pre-mounted with
#              --sysfs); then pivot_root into R, drop the old root, and
#              `exec /init ARGS` with a minimal environment, as the kernel does.
#   root       R = the ext4 image itself (mount -o ro or rw), R/dev a tmpfs as
#              above, R/proc with the cmdline bind; pivot_root into it (the
#              old root parked on R/tmp, then detached: nothing is written to
#              the image) and exec the init= path, as the kernel does with no
#              initramfs.
# With PID1_WRAPPER (an emulator, qemu-user, for a binary of another CPU) it
# is PID 1 instead, with the binary's path as its first argument: copied to
# /.impl-wrapper of the initramfs, and of every image (for init=; it is never
# written to during a boot, so "image unchanged" still holds).
# Everything the namespace prints goes to $dir/out and $dir/err; the test init
# (see pid1_write_test_init) prints "CHECK name=value" lines and every line of
# its /proc/self/mountinfo as "MOUNT <line>", then exits, which ends the
# namespace. pid1_boot records the namespace's wait status and duration.

PID1_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# fail, FAILURES and the shared checks; pid1.sh's own checks (expect_mount,
# expect_booted...) read the last boot's results. Output is matched exactly
# (ASSERT_IGNORE_CASE unset): kernel log records and whole lines.
# shellcheck source=assert.sh
source "$PID1_DIR/assert.sh"
PID1_BUSYBOX=${PID1_BUSYBOX:-/usr/bin/busybox}
PID1_WRAPPER=${PID1_WRAPPER:-}
# shellcheck disable=SC2034 # used by pid1.sh
PID1_PYTHON=/usr/bin/python3
# Identifiers of the GPT image's root partition.
PID1_PARTUUID=6a2d1c1e-0b5e-4f37-9c1a-5f1d2e3c4b5a
PID1_PARTLABEL=ostree-root-a
# The environment the "kernel" gives PID 1 (checked to reach the real init).
PID1_KERNEL_ENV=(HOME=/ TERM=linux PID1_TESTENV=from-the-kernel)

##############################################################################
# Images
##############################################################################

# pid1_write_test_init FILE TAG: the test init (a busybox sh script).
pid1_write_test_init() {
  local file=$1 tag=$2
  cat >"$file" <<EOF
#!/bin/sh
# Test init of tests/mountns/pid1.sh: report what the booted system looks
# like, then exit (PID 1 exiting ends the namespace).
PATH=/usr/bin:/usr/sbin
export PATH
TAG=$tag
EOF
  cat >>"$file" <<'EOF'
# First, before any command substitution opens a pipe: the open descriptors.
ls -l /proc/$$/fd/ >/run/.pid1-fds 2>&1
say() { echo "CHECK $1=$2"; }
yn() { if [ -e "$2" ]; then say "$1" yes; else say "$1" no; fi; }
# Processes of the namespace besides this init: what the binary left behind
# (such as its boot watchdog). Counted with builtins only, while no command
# of this script is running.
others=0
for p in /proc/[0-9]*; do
  [ "${p#/proc/}" = "$$" ] || others=$((others + 1))
done
say others "$others"
say tag "$TAG"
say pid "$$"
say argv0 "$0"
say args "$*"
say rd_timestamp "${RD_TIMESTAMP-unset}"
say testenv "${PID1_TESTENV-unset}"
say which "$(cat /usr/share/which-deployment 2>/dev/null)"
if touch /usr/.pid1-probe 2>/dev/null; then
  rm -f /usr/.pid1-probe
  say usr_writable yes
  echo "written by $TAG" >/usr/pid1-hotfix-probe
else
  say usr_writable no
fi
yn repo /sysroot/ostree/repo
yn ostree_booted /run/ostree-booted
yn run_ostree /run/ostree
yn mount_var_marker /run/ostree/initramfs-mount-var
yn ro_stamp /run/ostree-sysroot-ro.stamp
say var_marker "$(cat /var/pid1-var-marker 2>/dev/null)"
# The composefs keys of /run/ostree-booted (a GVariant: its key names are text).
say booted_composefs "$(tr -c 'a-z.' '\n' </run/ostree-booted 2>/dev/null | grep '^composefs' | sort | tr '\n' ' ')"
say root_entries "$(ls -A / | tr '\n' ' ')"
say sysroot_entries "$(ls -A /sysroot | tr '\n' ' ')"
say uptime "$(cut -d' ' -f1 /proc/uptime)"
say fds "$(awk '$10 == "->" { printf "%s:%s ", $9, $11 }' /run/.pid1-fds)"
while read -r line; do echo "MOUNT $line"; done </proc/self/mountinfo
say done yes
exit 0
EOF
  chmod 0755 "$file"
}

# pid1_add_to_deployment DIR BIN: what every test deployment gets.
pid1_add_to_deployment() {
  local d=$1 bin=$2
  mkdir -p "$d/usr/bin" "$d/usr/sbin" "$d/usr/lib/ostree"
  install -m 0755 "$PID1_BUSYBOX" "$d/usr/bin/busybox"
  ln -s busybox "$d/usr/bin/sh"
  ln -s usr/bin "$d/bin"
  ln -s usr/sbin "$d/sbin"
  pid1_write_test_init "$d/usr/sbin/init" init
  pid1_write_test_init "$d/usr/sbin/init2" init2
  install -m 0755 "$bin" "$d/usr/lib/ostree/ostree-prepare-root"
}

# pid1_build_images BIN: build the images described at the top into
# $PID1_WORK/img. Needs fixture.sh's cache and fixture.env sourced.
pid1_build_images() {
  local bin=$1 img=$PID1_WORK/img tree=$PID1_WORK/tree d mode
  mkdir -p "$img"
  rm -rf "$tree"
  cp -a "$MOUNTNS_CACHE/sysroot" "$tree"
  for d in "$tree/$DEPLOY_1" "$tree/$DEPLOY_2"; do pid1_add_to_deployment "$d" "$bin"; done
  echo stateroot-var >"$tree/$STATEROOT_VAR/pid1-var-marker"
  if [[ -n $PID1_WRAPPER ]]; then install -m 0755 "$PID1_WRAPPER" "$tree/.impl-wrapper"; fi
  mkfs.ext4 -q -L osroot -d "$tree" "$img/base.img" 256M >/dev/null
  printf '[sysroot]\nreadonly=true\n' >"$tree/$DEPLOY_1/usr/lib/ostree/prepare-root.conf"
  mkfs.ext4 -q -L osroot -d "$tree" "$img/conf.img" 256M >/dev/null
  rm "$tree/$DEPLOY_1/usr/lib/ostree/prepare-root.conf"
  mode=$(stat -c %a "$tree/$DEPLOY_1/usr")
  mkdir -m "$mode" "$tree/$DEPLOY_1/.usr-ovl-upper" "$tree/$DEPLOY_1/.usr-ovl-work"
  mkfs.ext4 -q -L osroot -d "$tree" "$img/hotfix.img" 256M >/dev/null
  rm -rf "$tree"
  cp --sparse=always "$img/base.img" "$img/late.img"
  e2label "$img/late.img" late
  # GPT: 1 MiB of header, the 256 MiB filesystem, room for the backup table.
  truncate -s 258M "$img/gpt.img"
  sfdisk -q "$img/gpt.img" <<EOF >/dev/null
label: gpt
start=2048, size=524288, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=$PID1_PARTUUID, name="$PID1_PARTLABEL"
EOF
  dd if="$img/base.img" of="$img/gpt.img" bs=1M seek=1 conv=notrunc,sparse status=none
  if [[ -n ${PID1_COMPOSEFS_SYSROOT:-} ]]; then
    cp -a "$PID1_COMPOSEFS_SYSROOT" "$tree"
    install -m 0755 "$bin" "$tree/$PID1_COMPOSEFS_DEPLOY_1/usr/lib/ostree/ostree-prepare-root"
    if [[ -n $PID1_WRAPPER ]]; then install -m 0755 "$PID1_WRAPPER" "$tree/.impl-wrapper"; fi
    echo stateroot-var >"$tree/$STATEROOT_VAR/pid1-var-marker"
    mkfs.ext4 -q -L osroot -d "$tree" "$img/composefs.img" 256M >/dev/null
    rm -rf "$tree"
  fi
}

# pid1_copy IMAGE NAME: a private copy of a built image; prints its path.
pid1_copy() {
  local dst=$PID1_WORK/run/$2.img
  mkdir -p "$PID1_WORK/run"
  cp --sparse=always "$PID1_WORK/img/$1.img" "$dst"
  echo "$dst"
}

##############################################################################
# Loop devices
##############################################################################

# pid1_attach IMG [--partitions]: attach IMG to a free loop device, print its
# name (loopN). Every attached device is recorded for pid1_detach_all.
# --partitions: make the partitions of IMG's table block devices (loopNp1...).
# The kernel's own scan (losetup -P) needs its partition-table parsers
# (CONFIG_EFI_PARTITION), which some test machines' kernels lack; partx(8)
# reads the table itself and adds the partitions with BLKPG, which always works.
pid1_attach() {
  local img=$1 dev i
  dev=$(losetup -f --show ${2:+-P} "$img") || return 1
  echo "$dev" >>"$PID1_LOOPS"
  if [[ ${2:-} == --partitions ]]; then
    for ((i = 0; i < 10; i++)); do
      [[ -e /sys/class/block/${dev#/dev/}p1 ]] && break
      sleep 0.02
    done
    [[ -e /sys/class/block/${dev#/dev/}p1 ]] || partx -a "$dev" || return 1
  fi
  echo "${dev#/dev/}"
}

# pid1_attach_at NAME IMG: attach IMG to /dev/NAME (for a device chosen earlier).
pid1_attach_at() {
  losetup "/dev/$1" "$2" || return 1
  echo "/dev/$1" >>"$PID1_LOOPS"
}

# pid1_hang_start: a loop device that never answers a read (see
# hang-fuse.py: a FUSE file whose reads are never answered); prints its name
# (loopN). Every read of it waits in the kernel, unkillable, until
# pid1_hang_stop ends the FUSE server (then the reads fail with EIO).
pid1_hang_start() {
  local file=$PID1_WORK/hang/disk line
  mkdir -p "$PID1_WORK/hang"
  : >"$file"
  coproc HANG { exec "$PID1_PYTHON" "$PID1_DIR/hang-fuse.py" "$file" $((64 << 20)) 2>&1; }
  echo "$HANG_PID" >"$PID1_WORK/hang/pid"
  read -r -t 10 line <&"${HANG[0]}" || true
  [[ $line == ready ]] || { echo "hang-fuse.py did not start: $line" >&2; return 1; }
  pid1_attach "$file"
}

# pid1_hang_stop: end the FUSE server of pid1_hang_start, which releases
# every read waiting on its device.
pid1_hang_stop() {
  local pid
  pid=$(cat "$PID1_WORK/hang/pid" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  umount -l "$PID1_WORK/hang/disk" 2>/dev/null || true
  rm -f "$PID1_WORK/hang/pid"
}

# pid1_backing NAME: the file behind loop device NAME (empty if detached).
pid1_backing() { cat "/sys/block/$1/loop/backing_file" 2>/dev/null || true; }

# pid1_detach NAME: detach NAME if it is still one of ours, and wait until
# the kernel really let it go (the filesystem on it unmounted and flushed).
pid1_detach() {
  local name=${1#/dev/} i
  [[ $(pid1_backing "$name") == "$PID1_WORK"/* ]] || return 0
  if [[ -e /sys/class/block/${name}p1 ]]; then partx -d "/dev/$name" 2>/dev/null || true; fi
  losetup -d "/dev/$name" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    [[ -z $(pid1_backing "$name") ]] && return 0
    sleep 0.05
  done
  echo "# warning: /dev/$name still attached" >&2
}

pid1_detach_all() {
  local dev
  pid1_hang_stop
  [[ -f ${PID1_LOOPS:-} ]] || return 0
  while read -r dev; do pid1_detach "$dev"; done <"$PID1_LOOPS"
  : >"$PID1_LOOPS"
}

# pid1_majmin NAME: "MAJOR MINOR" of block device NAME (waits for it briefly:
# partitions of a loop device appear asynchronously).
pid1_majmin() {
  local i
  for ((i = 0; i < 50; i++)); do
    if [[ -r /sys/class/block/$1/dev ]]; then
      tr ':' ' ' <"/sys/class/block/$1/dev"
      return 0
    fi
    sleep 0.05
  done
  echo "pid1_majmin: no block device $1" >&2
  return 1
}

##############################################################################
# Booting
##############################################################################

# pid1_boot DIR [options] -- ARG...
#   --mode initramfs|root   which namespace to build (see the top)
#   --cmdline STR           the kernel command line (/proc/cmdline)
#   --dev NAME              a block device node to create in R/dev (repeatable)
#   --image NAME            (root mode) the loop device holding R
#   --ro | --rw             (root mode) how R is mounted (default ro)
#   --sysfs                 (initramfs mode) pre-mount R/sys
#   --init-symlink          (initramfs mode) the binary is R/usr/lib/ostree/
#                           ostree-prepare-root and R/init a symlink to it
#   --kmsg                  (initramfs mode) a regular file DIR/kmsg bound on
#                           R/dev/kmsg, to read what the binary logs there
#   --no-pivot              (initramfs mode) make pivot_root impossible, as on
#                           the kernel's initial rootfs: R is a bind of the
#                           directory DIR/initramfs (on the scratch tmpfs, so
#                           what is left in it can be checked afterwards) under
#                           a *shared* parent mount, and /init is started by
#                           chroot(1) instead of after a pivot_root; the
#                           kernel refuses pivot_root when the current root's
#                           parent mount is shared (EINVAL)
#   --init PATH             (root mode) what to execute (default: the T1 path
#                           + /usr/lib/ostree/ostree-prepare-root)
#   --conf TEXT             (initramfs) R/etc/ostree/prepare-root.conf holds TEXT
#                           (printf %b: \n for a new line)
#   --shell                 (initramfs) add a /bin/sh that reports it ran
#   --console               a regular file DIR/console bound on R/dev/console
#   --close-stderr          PID 1 starts with descriptor 2 closed (as when the
#                           kernel could open no console for it)
#   --background            start the namespace and return; pid1_wait later
#   ARG...                  arguments given to PID 1 (after argv[0])
# Results in DIR: out, err, status ("exit N" or "signal NAME"), rc, ms.
pid1_boot() {
  local dir=$1 mode=initramfs cmdline="" image="" mount_ro=1 sysfs=0 init="" bg=0 nopivot=0 kmsg=0 symlink=0 shell=0 console=0 close_stderr=0 conf=""
  local -a devs=()
  shift
  while (($#)); do
    case $1 in
      --mode) mode=$2; shift 2 ;;
      --cmdline) cmdline=$2; shift 2 ;;
      --dev) devs+=("$2"); shift 2 ;;
      --image) image=$2; shift 2 ;;
      --ro) mount_ro=1; shift ;;
      --rw) mount_ro=0; shift ;;
      --sysfs) sysfs=1; shift ;;
      --no-pivot) nopivot=1; shift ;;
      --kmsg) kmsg=1; shift ;;
      --init-symlink) symlink=1; shift ;;
      --shell) shell=1; shift ;;
      --console) console=1; shift ;;
      --close-stderr) close_stderr=1; shift ;;
      --init) init=$2; shift 2 ;;
      --conf) conf=$2; shift 2 ;;
      --background) bg=1; shift ;;
      --) shift; break ;;
      *) echo "pid1_boot: unknown option '$1'" >&2; return 2 ;;
    esac
  done
  mkdir -p "$dir" "$dir/newroot"
  printf '%s\n' "$cmdline" >"$dir/cmdline"
  local name majmin
  : >"$dir/devs"
  for name in "${devs[@]}"; do
    majmin=$(pid1_majmin "$name") || return 1
    echo "$name $majmin" >>"$dir/devs"
  done
  : >"$dir/args"
  if (($#)); then printf '%s\n' "$@" >"$dir/args"; fi
  rm -f "$dir/conf"
  if [[ -n $conf ]]; then printf '%b\n' "$conf" >"$dir/conf"; fi
  date +%s%N >"$dir/start"
  # shellcheck disable=SC2016,SC2153 # $1 is the child's; PID1_BIN, T1: the caller's
  (
    # A minimal environment for the stage script; the stage gives PID 1 the
    # "kernel's" environment (PID1_KERNEL_ENV) itself.
    exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
      PID1_STAGE_DIR="$dir" PID1_STAGE_MODE="$mode" PID1_STAGE_IMAGE="$image" \
      PID1_STAGE_RO="$mount_ro" PID1_STAGE_SYSFS="$sysfs" PID1_STAGE_INIT="$init" \
      PID1_STAGE_NOPIVOT="$nopivot" PID1_STAGE_KMSG="$kmsg" PID1_STAGE_SYMLINK="$symlink" \
      PID1_STAGE_SHELL="$shell" PID1_STAGE_CONSOLE="$console" \
      PID1_STAGE_CLOSE_STDERR="$close_stderr" \
      PID1_STAGE_BIN="$PID1_BIN" PID1_STAGE_T1="$T1" \
      PID1_BUSYBOX="$PID1_BUSYBOX" PID1_WRAPPER="$PID1_WRAPPER" LIBMOUNT_UTAB="$dir/utab" \
      timeout --kill-after=5 60 \
      unshare --mount --propagation private --pid --fork --kill-child -- \
      /usr/bin/bash -c 'source "$1" && pid1_stage' pid1-stage "$PID1_DIR/pid1-lib.sh"
  ) >"$dir/out" 2>"$dir/err" </dev/null &
  echo $! >"$dir/pid"
  if ((bg)); then return 0; fi
  pid1_wait "$dir"
}

# pid1_wait DIR: wait for the namespace started by pid1_boot DIR.
pid1_wait() {
  local dir=$1 rc end
  wait "$(cat "$dir/pid")"
  rc=$?
  end=$(date +%s%N)
  echo $(((end - $(cat "$dir/start")) / 1000000)) >"$dir/ms"
  echo "$rc" >"$dir/rc"
  # unshare(1) re-raises the signal that killed its child, so a namespace
  # whose init was killed by signal S gives 128+S here (timeout(1) too).
  if ((rc > 128)); then
    echo "signal $(kill -l "$((rc - 128))" 2>/dev/null || echo "$((rc - 128))")" >"$dir/status"
  else
    echo "exit $rc" >"$dir/status"
  fi
}

# Runs as PID 1 of the new namespaces (bash, with the host's files visible).
pid1_stage() {
  set -euo pipefail
  local dir=$PID1_STAGE_DIR r=$PID1_STAGE_DIR/newroot old name maj min
  local -a args=()
  mapfile -t args <"$dir/args"
  if [[ $PID1_STAGE_MODE == initramfs ]]; then
    if ((PID1_STAGE_NOPIVOT)); then
      mkdir -m 0755 "$dir/shared" "$dir/initramfs"
      mount -t tmpfs -o mode=0755 shared "$dir/shared"
      mount --make-shared "$dir/shared"
      mkdir "$dir/shared/r"
      mount --bind "$dir/initramfs" "$dir/shared/r"
      r=$dir/shared/r
    else
      mount -t tmpfs -o mode=0755 initramfs "$r"
      mkdir -m 0755 "$r/.oldroot"
    fi
    if ((PID1_STAGE_SYMLINK)); then
      install -D -m 0755 "$PID1_STAGE_BIN" "$r/usr/lib/ostree/ostree-prepare-root"
      ln -s usr/lib/ostree/ostree-prepare-root "$r/init"
    else
      install -m 0755 "$PID1_STAGE_BIN" "$r/init"
    fi
    mkdir -m 0755 "$r/dev" "$r/proc"
    if [[ -f $dir/conf ]]; then
      install -D -m 0644 "$dir/conf" "$r/etc/ostree/prepare-root.conf"
    fi
    if [[ -n $PID1_WRAPPER ]]; then install -m 0755 "$PID1_WRAPPER" "$r/.impl-wrapper"; fi
    if ((PID1_STAGE_SHELL)); then
      # An initramfs with a shell for rd.shell: /bin/sh here reports that it
      # ran (as PID 1, with its arguments) and ends.
      install -D -m 0755 "$PID1_BUSYBOX" "$r/bin/busybox"
      # shellcheck disable=SC2016 # expanded by the shell in the initramfs
      printf '#!/bin/busybox sh\necho "SHELL pid=$$ argv0=$0 path=$PATH"\n' >"$r/bin/sh"
      chmod 0755 "$r/bin/sh"
    fi
    if ((PID1_STAGE_SYSFS)); then
      mkdir -m 0755 "$r/sys"
      mount -t sysfs sysfs "$r/sys"
    fi
    old=/.oldroot
  else
    local opt=rw
    if ((PID1_STAGE_RO)); then opt=ro; fi
    mount -o "$opt" "/dev/$PID1_STAGE_IMAGE" "$r"
    # The physical root has a /tmp: park the old root there (no mkdir on R).
    old=/tmp
  fi
  mount -t tmpfs -o mode=0755 dev "$r/dev"
  mknod -m 0666 "$r/dev/null" c 1 3
  mknod -m 0666 "$r/dev/zero" c 1 5
  if ((PID1_STAGE_KMSG)); then
    : >"$dir/kmsg"
    : >"$r/dev/kmsg"
    mount --bind "$dir/kmsg" "$r/dev/kmsg"
  fi
  if ((PID1_STAGE_CONSOLE)); then
    : >"$dir/console"
    : >"$r/dev/console"
    mount --bind "$dir/console" "$r/dev/console"
  fi
  while read -r name maj min; do
    mknod -m 0600 "$r/dev/$name" b "$maj" "$min"
  done <"$dir/devs"
  mount -t proc proc "$r/proc"
  mount --bind "$dir/cmdline" "$r/proc/cmdline"
  # PID 1 gets the standard streams only, as from the kernel. The list is
  # this shell's own (/proc/self: $$ is 1 here, and /proc is still the
  # host's, so /proc/$$ would be the host's init). No redirection on the
  # eval: bash would park stderr on a spare descriptor around it, and closing
  # that one loses stderr for good (seen in CI).
  local fd
  local -a fds=(/proc/self/fd/*)
  for fd in "${fds[@]}"; do
    fd=${fd##*/}
    if ((fd > 2)) && [[ -e /proc/self/fd/$fd ]]; then eval "exec $fd>&-"; fi
  done
  local init=/init
  if [[ $PID1_STAGE_MODE == root ]]; then
    init=${PID1_STAGE_INIT:-$PID1_STAGE_T1/usr/lib/ostree/ostree-prepare-root}
  fi
  if [[ -n $PID1_WRAPPER ]]; then
    args=("$init" "${args[@]}")
    init=/.impl-wrapper
  fi
  cd "$r"
  local close=""
  if ((PID1_STAGE_CLOSE_STDERR)); then close="exec 2>&- &&"; fi
  if ((PID1_STAGE_NOPIVOT)); then
    if ((PID1_STAGE_CLOSE_STDERR)); then exec 2>&-; fi
    exec env -i "${PID1_KERNEL_ENV[@]}" "$(command -v chroot)" . "$init" "${args[@]}"
  fi
  pivot_root . ".$old"
  # Only static busybox works from here: drop the old root, then become the
  # init the kernel would start, with the kernel's environment.
  local bb=$old$PID1_BUSYBOX
  local rm_old="rmdir $old &&"
  if [[ $PID1_STAGE_MODE == root ]]; then rm_old=""; fi
  exec "$bb" sh -c "cd / && umount -l $old && $rm_old $close exec env -i ${PID1_KERNEL_ENV[*]} \"\$0\" \"\$@\"" \
    "$init" "${args[@]}"
}

##############################################################################
# Results
##############################################################################

# pid1_check DIR NAME: the value the test init reported for NAME.
pid1_check() { sed -n "s/^CHECK $2=//p" "$1/out" | tail -n 1; }

# pid1_mount DIR PATH: the topmost mountinfo line (as the test init saw it)
# whose mount point is PATH.
pid1_mount() {
  awk -v p="$2" '$1 == "MOUNT" && $6 == p { line = $0 } END { if (line != "") print substr(line, 7) }' "$1/out"
}

# Fields of a mountinfo line: root, per-mount options, fstype, source, super options.
mi_root() { awk '{ print $4 }' <<<"$1"; }
mi_opts() { awk '{ print $6 }' <<<"$1"; }
mi_fstype() { sed -E 's/.* - ([^ ]+) .*/\1/' <<<"$1"; }
mi_source() { sed -E 's/.* - [^ ]+ ([^ ]+) .*/\1/' <<<"$1"; }
mi_super() { sed -E 's/.* - [^ ]+ [^ ]+ (.*)/\1/' <<<"$1"; }
