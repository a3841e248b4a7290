#!/usr/bin/env bash
# Run inside the composefs reference chroot (ostree 2026.4, see
# scripts/composefs-ref-run.sh) by qemu/src/cfsdisk.rs, with the build
# directory bound on /b: commit /b/tree-A and /b/tree-B with composefs
# metadata, deploy both (B last, the default entry), copy the sysroot to
# /b/sysroot and the commits to /b/commits.env. The sysroot is built on the
# chroot's /tmp tmpfs (`ostree admin deploy` freezes the filesystem holding
# /boot). Each tree's usr/lib/ostree/prepare-root.conf asks for verity, so
# each image records the fs-verity digest of every file it points at.
set -euo pipefail
OSNAME=$1
LABEL=$2
s=/tmp/sysroot
mkdir -p "$s"
ostree admin init-fs "$s" >/dev/null
ostree admin --sysroot="$s" os-init "$OSNAME" >/dev/null
ostree config --repo="$s/ostree/repo" set ex-integrity.composefs true
: >/b/commits.env
for letter in A B; do
  csum=$(ostree --repo="$s/ostree/repo" commit -b "$OSNAME/stable" --tree=dir="/b/tree-$letter" \
    --no-xattrs --generate-composefs-metadata --subject="ktest composefs $letter")
  digest=$(ostree --repo="$s/ostree/repo" show --print-metadata-key=ostree.composefs.digest.v0 "$csum" |
    grep -o '0x[0-9a-f]*' | sed 's/^0x//' | tr -d '\n')
  [[ ${#digest} == 64 ]] || { echo "commit $csum: no ostree.composefs.digest.v0" >&2; exit 1; }
  ostree admin --sysroot="$s" deploy --os="$OSNAME" \
    --karg="root=LABEL=$LABEL" --karg=rw "$OSNAME/stable" >/dev/null
  printf 'COMMIT_%s=%s\nDIGEST_%s=%s\n' "$letter" "$csum" "$letter" "$digest" >>/b/commits.env
done
for d in "$s"/ostree/deploy/"$OSNAME"/deploy/*.0; do
  [[ -f $d/.ostree.cfs ]] || { echo "no .ostree.cfs in $d" >&2; exit 1; }
  # Every file the image takes from the objects must be recorded with its
  # fs-verity digest (dump fields: path size mode nlink uid gid rdev mtime
  # payload content digest; `-` when empty).
  composefs-info dump "$d/.ostree.cfs" >/tmp/dump
  missing=$(awk '$3 ~ /^100/ && $9 != "-" && $11 == "-" { print $1 }' /tmp/dump | head -n 3)
  [[ -z $missing ]] || { echo "$d/.ostree.cfs: no fs-verity digest for $missing" >&2; exit 1; }
  with=$(awk '$3 ~ /^100/ && $11 != "-"' /tmp/dump | wc -l)
  ((with > 0)) || { echo "$d/.ostree.cfs: no file with an fs-verity digest" >&2; exit 1; }
done
cp -a "$s" /b/sysroot
