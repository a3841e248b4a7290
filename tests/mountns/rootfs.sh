# shellcheck shell=bash
# rootfs.sh - the tmpfs "initramfs" root that service-lib.sh and
# unlock-lib.sh build before they pivot into it (sourced by their first
# stage, which still sees the host's files).

# mountns_root R DIR...: a tmpfs (0755) on R holding the directories proc,
# dev, run, sysroot, etc, tmp (1777), usr, .oldroot and DIR...; /bin, /sbin,
# /lib and /lib64 link into usr, and the host's /usr is bound read-only on
# R/usr (shell tools, and the C tool with its shared libraries).
mountns_root() {
  local r=$1 d
  shift
  mount -t tmpfs -o mode=0755 initramfs "$r"
  for d in proc dev run sysroot etc tmp usr .oldroot "$@"; do mkdir -p "$r/$d"; done
  chmod 1777 "$r/tmp"
  for d in bin sbin lib lib64; do ln -s "usr/$d" "$r/$d"; done
  mount --bind /usr "$r/usr"
  mount -o remount,bind,ro "$r/usr"
}

# mountns_dev_nodes DEV: the character devices programs expect, and the
# /dev/fd links bash's <(...) and /dev/stdout need.
mountns_dev_nodes() {
  local dev=$1
  mknod -m 0666 "$dev/null" c 1 3
  mknod -m 0666 "$dev/zero" c 1 5
  mknod -m 0666 "$dev/full" c 1 7
  mknod -m 0666 "$dev/random" c 1 8
  mknod -m 0666 "$dev/urandom" c 1 9
  ln -s /proc/self/fd "$dev/fd"
  ln -s /proc/self/fd/0 "$dev/stdin"
  ln -s /proc/self/fd/1 "$dev/stdout"
  ln -s /proc/self/fd/2 "$dev/stderr"
}

# mountns_loop_nodes DEV: /dev/loop-control and block nodes loop0..loopN
# (N: 64 past the highest loop device the kernel has now), so that a loop
# device LOOP_CTL_GET_FREE hands out has its node. Device numbers are the
# kernel's fixed ones (misc 10:237, block major 7); the kernel detaches an
# autoclear loop device when its last mount goes with the namespace.
mountns_loop_nodes() {
  local dev=$1 max=0 n
  for n in /sys/class/block/loop*; do
    n=${n##*/loop}
    [[ $n =~ ^[0-9]+$ ]] && ((n > max)) && max=$n
  done
  mknod -m 0600 "$dev/loop-control" c 10 237
  for ((n = 0; n <= max + 64; n++)); do mknod -m 0600 "$dev/loop$n" b 7 "$n"; done
}
