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
