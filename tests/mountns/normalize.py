#!/usr/bin/python3
"""Helpers for the mount-namespace harness (run with the system python3).

  normalize.py devmap
      Name every device currently mounted, after the first mount point that
      shows it ("/" -> initramfs, "/sysroot" -> physroot, ...). Output lines:
      "MAJ:MIN NAME". Taken before the tool runs, so the names are stable.

  normalize.py tree DEVMAP PREFIX...
      One normalized line per mount at or under each PREFIX (see FORMAT).

  normalize.py top DEVMAP PATH
      The normalized line of the topmost mount whose mount point is PATH,
      or nothing (exit 1) when PATH is not a mount point.

  normalize.py booted PATH
      Parse PATH as a GVariant a{sv} (what /run/ostree-booted holds) and print
      "KEY TYPE VALUE" per entry, sorted. Exit 2 if it is not a valid,
      normal-form a{sv} (an empty file is a valid empty dictionary).

FORMAT of a tree line (fields separated by one space):
  MOUNTPOINT root=ROOT dev=NAME type=FSTYPE mnt=ro|rw sb=ro|rw prop=P
      [flags=F] [lower=L upper=U work=W]
  ROOT   field 4 of mountinfo (path inside the filesystem)
  NAME   device name from DEVMAP; devices that appeared later are new1, new2..
         in output order (in practice: overlays)
  P      private, or a "+"-joined subset of shared/slave/unbindable
  F      per-mount flags other than ro/rw/relatime (e.g. nosuid,nodev)
  L,U,W  overlay lowerdir/upperdir/workdir; everything before a path
         component usr, .usr-ovl-upper or .usr-ovl-work is replaced by "..."
         (upstream versions spell these relative, via /sysroot.tmp, or
         absolute; the staging prefix no longer exists after the switch).
With NORMALIZE_ALL_OPTS=1 in the environment (composefs.sh), overlay lines
  also get source=SOURCE opts=OPTS (every superblock option but ro/rw and
  the lowerdir/upperdir/workdir already shown, e.g.
  lowerdir+=...,datadir+=...,redirect_dir=on,metacopy=on,verity=require) and
  erofs lines source=loop|file opts=OPTS.
Everywhere: "transient-etc.XXXXXX" -> "transient-etc.*", and the two fixture
deployment names ($DEPLOY_1_NAME, $DEPLOY_2_NAME) -> {D1}, {D2}.
Lines are sorted by mount point, stacked mounts bottom first.
"""

import os
import re
import sys

SPECIAL_NAMES = {
    "/": "initramfs",
    "/sysroot": "physroot",
    "/run": "run",
    "/usr": "host-usr",
    "/usr/lib/ostree": "ostree-lib",
    "/proc": "proc",
    "/results": "results",
}
OVERLAY_ANCHORS = ("usr", ".usr-ovl-upper", ".usr-ovl-work")
TRANSIENT_ETC = re.compile(r"transient-etc\.[A-Za-z0-9]{6}")


def unescape(s):
    """mountinfo escapes space, tab, newline and backslash as octal."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def read_mountinfo(path="/proc/self/mountinfo"):
    mounts = []
    with open(path) as f:
        for line in f:
            left, right = line.rstrip("\n").split(" - ", 1)
            lf = left.split(" ")
            rf = right.split(" ")
            mounts.append({
                "id": lf[0], "parent": lf[1], "dev": lf[2],
                "root": unescape(lf[3]), "mp": unescape(lf[4]),
                "mntopts": lf[5].split(","), "optional": lf[6:],
                "fstype": rf[0], "source": rf[1] if len(rf) > 1 else "",
                "superopts": rf[2].split(",") if len(rf) > 2 else [],
            })
    return mounts


def substitute(s):
    s = TRANSIENT_ETC.sub("transient-etc.*", s)
    for n in ("1", "2"):
        name = os.environ.get("DEPLOY_%s_NAME" % n)
        if name:
            s = s.replace(name, "{D%s}" % n)
    return s


def overlay_dir(value):
    parts = value.split("/")
    for i, comp in enumerate(parts):
        if comp in OVERLAY_ANCHORS:
            return ".../" + "/".join(parts[i:])
    return value


def propagation(optional):
    kinds = []
    for field in optional:
        key = field.split(":", 1)[0]
        kind = {"shared": "shared", "master": "slave", "unbindable": "unbindable"}.get(key)
        if kind and kind not in kinds:
            kinds.append(kind)
    return "+".join(sorted(kinds)) or "private"


def load_devmap(path):
    devmap = {}
    with open(path) as f:
        for line in f:
            dev, name = line.split()
            devmap[dev] = name
    return devmap


def cmd_devmap():
    devmap = {}
    for m in read_mountinfo():
        if m["dev"] in devmap:
            continue
        name = SPECIAL_NAMES.get(m["mp"]) or ("mnt" + m["mp"].replace("/", "-"))
        devmap[m["dev"]] = name
    for dev, name in devmap.items():
        print(dev, name)


def stack_depth(m, by_id):
    depth = 0
    parent = by_id.get(m["parent"])
    while parent is not None and parent["mp"] == m["mp"] and depth < 100:
        depth += 1
        parent = by_id.get(parent["parent"])
    return depth


def describe(m, devname):
    ro = "ro" if "ro" in m["mntopts"] else "rw"
    sb = "ro" if "ro" in m["superopts"] else "rw"
    flags = [o for o in m["mntopts"] if o not in ("ro", "rw", "relatime")]
    fields = [
        m["mp"], "root=" + m["root"], "dev=" + devname, "type=" + m["fstype"],
        "mnt=" + ro, "sb=" + sb, "prop=" + propagation(m["optional"]),
    ]
    if flags:
        fields.append("flags=" + ",".join(flags))
    if m["fstype"] == "overlay":
        opts = dict(o.split("=", 1) for o in m["superopts"] if "=" in o)
        for key, label in (("lowerdir", "lower"), ("upperdir", "upper"), ("workdir", "work")):
            if key in opts:
                fields.append(label + "=" + overlay_dir(opts[key]))
        if os.environ.get("NORMALIZE_ALL_OPTS") == "1":
            fields.append("source=" + m["source"])
            fields.append("opts=" + ",".join(
                o for o in m["superopts"]
                if o not in ("ro", "rw") and o.split("=", 1)[0] not in ("lowerdir", "upperdir", "workdir")))
    if m["fstype"] == "erofs" and os.environ.get("NORMALIZE_ALL_OPTS") == "1":
        # A composefs image: through a loop device, or the file itself (6.12+).
        kind = "loop" if re.match(r"/dev/loop[0-9]+$", m["source"]) else "file"
        fields.append("source=" + kind)
        fields.append("opts=" + ",".join(o for o in m["superopts"] if o not in ("ro", "rw")))
    return substitute(" ".join(fields))


def under(mp, prefix):
    return prefix == "/" or mp == prefix or mp.startswith(prefix.rstrip("/") + "/")


def selected(mounts, prefixes):
    by_id = {m["id"]: m for m in mounts}
    chosen = [m for m in mounts if any(under(m["mp"], p) for p in prefixes)]
    chosen.sort(key=lambda m: (m["mp"], stack_depth(m, by_id)))
    return chosen


def name_devices(mounts, devmap):
    names, fresh = {}, 0
    for m in mounts:
        if m["dev"] in names:
            continue
        if m["dev"] in devmap:
            names[m["dev"]] = devmap[m["dev"]]
        else:
            fresh += 1
            names[m["dev"]] = "new%d" % fresh
    return names


def cmd_tree(devmap_path, prefixes):
    devmap = load_devmap(devmap_path)
    mounts = selected(read_mountinfo(), prefixes)
    names = name_devices(mounts, devmap)
    for m in mounts:
        print(describe(m, names[m["dev"]]))


def cmd_top(devmap_path, path):
    devmap = load_devmap(devmap_path)
    mounts = selected(read_mountinfo(), ["/"])
    names = name_devices(mounts, devmap)
    hits = [m for m in mounts if m["mp"] == path]
    if not hits:
        return 1
    print(describe(hits[-1], names[hits[-1]["dev"]]))
    return 0


def cmd_booted(path):
    from gi.repository import GLib

    with open(path, "rb") as f:
        data = f.read()
    vtype = GLib.VariantType.new("a{sv}")
    # Untrusted load: GLib substitutes defaults for malformed data instead of
    # failing, so insist on normal form to catch a bad serialization.
    variant = GLib.Variant.new_from_bytes(vtype, GLib.Bytes.new(data), False)
    if not variant.is_normal_form():
        print("INVALID: %s (%d bytes) is not a normal-form a{sv}: %s"
              % (path, len(data), data.hex()), file=sys.stderr)
        return 2
    if variant.get_size() != len(data):
        print("INVALID: %s size %d, variant size %d" % (path, len(data), variant.get_size()),
              file=sys.stderr)
        return 2
    entries = []
    for i in range(variant.n_children()):
        entry = variant.get_child_value(i)
        key = entry.get_child_value(0).get_string()
        value = entry.get_child_value(1).get_variant()
        entries.append("%s %s %s" % (key, value.get_type_string(), value.print_(False)))
    for line in sorted(entries):
        print(line)
    if not entries:
        print("(empty dictionary, %d bytes)" % len(data))
    return 0


def main(argv):
    if len(argv) >= 2 and argv[1] == "devmap":
        cmd_devmap()
        return 0
    if len(argv) >= 4 and argv[1] == "tree":
        cmd_tree(argv[2], argv[3:])
        return 0
    if len(argv) == 4 and argv[1] == "top":
        return cmd_top(argv[2], argv[3])
    if len(argv) == 3 and argv[1] == "booted":
        return cmd_booted(argv[2])
    print(__doc__, file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv))
