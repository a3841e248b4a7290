#!/bin/bash
# dracut module for ostree-switchroot: ostree-prepare-root as a systemd unit
# in the initramfs (the systemd-in-initramfs way dracut boots OSTree).
#
# Included only when asked for (dracut --add ostree-switchroot, or
# add_dracutmodules+=" ostree-switchroot ") or, in host-only mode, when the
# host itself is an OSTree system: never forced onto every image.

check() {
    require_binaries @LIBDIR@/ostree/ostree-prepare-root || return 1
    if [[ $hostonly ]] && [[ -e /run/ostree-booted ]]; then
        return 0
    fi
    return 255
}

depends() {
    echo systemd
}

installkernel() {
    # overlay: the hotfix /usr and transient /etc; erofs: composefs images
    # (refused by this tool, but the module costs little and keeps one image
    # usable by ostree's own prepare-root too).
    instmods -c overlay
    hostonly='' instmods erofs
}

# dracutsysrootdir, moddir, systemdsystemunitdir and initdir are dracut's,
# set before it calls install().
# shellcheck disable=SC2154
install() {
    # At the path the unit's ExecStart names (@LIBDIR@, rendered the same way).
    inst_simple @LIBDIR@/ostree/ostree-prepare-root
    local conf
    for conf in /usr/lib/ostree/prepare-root.conf /etc/ostree/prepare-root.conf; do
        [[ -e $dracutsysrootdir$conf ]] && inst_simple "$conf"
    done
    inst_simple "$moddir/ostree-prepare-root.service" "$systemdsystemunitdir/ostree-prepare-root.service"
    $SYSTEMCTL -q --root "$initdir" add-wants initrd-root-fs.target ostree-prepare-root.service
}
