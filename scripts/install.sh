#!/usr/bin/env bash
# Install ostree-switchroot: binaries, systemd unit, dracut module, mkinitcpio
# hooks and man pages. The list of installed files is dist/INSTALLED_FILES
# (checked by tests/install-list.sh).
#
#   scripts/install.sh DESTDIR PREFIX PREPARE_ROOT_BINARY UNLOCK_BINARY MKINITRAMFS_BINARY
set -euo pipefail
destdir=$1 prefix=$2 prepare_root=$3 unlock=$4 mkinitramfs=$5
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
root=$destdir$prefix
libdir=$prefix/lib

# Files that name the installed binary are templates: @LIBDIR@ -> $prefix/lib.
render() { # SRC DST MODE
    install -d "$(dirname "$2")"
    sed "s|@LIBDIR@|$libdir|g" "$1" >"$2.tmp"
    chmod "$3" "$2.tmp"
    mv "$2.tmp" "$2"
}

# The path libostree's init= argument, dracut and mkinitcpio all hard-code.
install -D -m 0755 "$prepare_root" "$root/lib/ostree/ostree-prepare-root"
# An administrator's command, beside the ostree CLI.
install -D -m 0755 "$unlock" "$root/bin/ostree-unlock"
# The initramfs builder (a build-host tool; finds ostree-prepare-root at
# ../lib/ostree/ from its own directory).
install -D -m 0755 "$mkinitramfs" "$root/bin/ostree-mkinitramfs"

render "$here/dist/systemd/ostree-prepare-root.service.in" "$root/lib/systemd/system/ostree-prepare-root.service" 0644

dracut=$root/lib/dracut/modules.d/98ostree-switchroot
render "$here/dist/dracut/98ostree-switchroot/module-setup.sh" "$dracut/module-setup.sh" 0755
render "$here/dist/systemd/ostree-prepare-root.service.in" "$dracut/ostree-prepare-root.service" 0644

render "$here/dist/mkinitcpio/install/ostree-switchroot" "$root/lib/initcpio/install/ostree-switchroot" 0644
render "$here/dist/mkinitcpio/hooks/ostree-switchroot" "$root/lib/initcpio/hooks/ostree-switchroot" 0644

# Man pages: kept as scdoc source, rendered here.
if ! command -v scdoc >/dev/null; then
    echo "install: scdoc is needed to render the man pages (apt-get install scdoc)" >&2
    exit 1
fi
for page in "$here"/man/*.scd; do
    name=$(basename "$page" .scd)
    section=${name##*.}
    install -d "$root/share/man/man$section"
    scdoc <"$page" >"$root/share/man/man$section/$name"
    chmod 0644 "$root/share/man/man$section/$name"
done
