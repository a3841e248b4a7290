#!/usr/bin/python3
"""A deliberately simple model of the behaviour run.sh expects -- NOT a reference.

Its only job is to show that every scenario in run.sh can pass, i.e. that the
harness's expectations are consistent and satisfiable:

    tests/mountns/run.sh --impl tests/mountns/mock-prepare-root.py

It runs inside the harness's namespace (system python3 with GLib is there).
Usage: ostree-prepare-root [--mount-var] [--dry-run] SYSROOT [KERNEL_CMDLINE]
"""

import ctypes
import os
import random
import re
import stat
import string
import sys

MS_RDONLY, MS_REMOUNT, MS_BIND, MS_MOVE = 1, 32, 4096, 8192
MS_REC, MS_SILENT, MS_PRIVATE = 16384, 32768, 1 << 18
MNT_DETACH = 2
TMP = "/sysroot.tmp"
DEPLOY_RE = re.compile(r"^ostree/deploy/[^/]+/deploy/[0-9a-f]{64}\.[0-9]+$")
LIBC = ctypes.CDLL(None, use_errno=True)


class Refused(Exception):
    pass


def enc(s):
    return s.encode() if s is not None else None


def sys_mount(src, tgt, fstype, flags, data=None):
    if LIBC.mount(enc(src), enc(tgt), enc(fstype), flags, enc(data)) != 0:
        e = ctypes.get_errno()
        raise Refused("mount %s on %s: %s" % (src, tgt, os.strerror(e)))


def sys_umount(tgt):
    LIBC.umount2(enc(tgt), MNT_DETACH)


def split_cmdline(line):
    """Kernel-style split: double quotes group, are dropped; stop at '--'."""
    args, cur, quoted, have = [], [], False, False
    for ch in line.strip("\n"):
        if ch == '"':
            quoted, have = not quoted, True
        elif ch.isspace() and not quoted:
            if have:
                args.append("".join(cur))
            cur, have = [], False
        else:
            cur.append(ch)
            have = True
    if have:
        args.append("".join(cur))
    if "--" in args:
        args = args[: args.index("--")]
    return args


def karg(args, key):
    for a in args:
        if a.startswith(key + "="):
            return a[len(key) + 1:]
    return None


def load_conf():
    for path in ("/etc/ostree/prepare-root.conf", "/usr/lib/ostree/prepare-root.conf"):
        if os.path.exists(path):
            return parse_keyfile(path), path
    return {}, None


def parse_keyfile(path):
    conf, section = {}, None
    with open(path) as f:
        for n, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
            elif "=" in line and section is not None:
                k, v = line.split("=", 1)
                conf[(section, k.strip())] = v.strip()
            else:
                raise Refused("%s:%d: invalid line: %s" % (path, n, line))
    return conf


def conf_bool(conf, path, key, default=False):
    v = conf.get(key)
    if v is None:
        return default
    if v in ("true", "1"):
        return True
    if v in ("false", "0"):
        return False
    raise Refused("%s: [%s] %s: not a boolean: %s" % (path, key[0], key[1], v))


def legacy_readonly(sysroot):
    try:
        with open(sysroot + "/ostree/repo/config") as f:
            text = f.read()
    except OSError:
        return False
    return re.search(r"^\[sysroot\][^\[]*^readonly=true\s*$", text, re.M) is not None


def list_deployments(sysroot):
    found = []
    base = sysroot + "/ostree/deploy"
    for osname in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        d = "%s/%s/deploy" % (base, osname)
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            if not name.endswith(".origin"):
                found.append("ostree/deploy/%s/deploy/%s" % (osname, name))
    return found


def resolve_target(sysroot, target):
    """Resolve TARGET under SYSROOT; symlinks must be relative and stay inside."""
    full = sysroot + "/" + target.lstrip("/")
    try:
        st = os.lstat(full)
    except FileNotFoundError:
        raise Refused("ostree=%s: %s does not exist; deployments: %s"
                      % (target, full, " ".join(list_deployments(sysroot)) or "none"))
    if not stat.S_ISLNK(st.st_mode):
        raise Refused("ostree=%s: %s is not a symbolic link" % (target, full))
    todo = [c for c in target.split("/") if c]
    done, hops = [], 0
    while todo:
        comp = todo.pop(0)
        if comp == ".":
            continue
        if comp == "..":
            if not done:
                raise Refused("ostree=%s: a symlink climbs above the sysroot" % target)
            done.pop()
            continue
        path = sysroot + "/" + "/".join(done + [comp])
        if os.path.islink(path):
            hops += 1
            link = os.readlink(path)
            if link.startswith("/") or hops > 40:
                raise Refused("ostree=%s: %s -> %s: absolute or looping symlink" % (target, path, link))
            todo = [c for c in link.split("/") if c] + todo
        elif os.path.exists(path):
            done.append(comp)
        else:
            raise Refused("ostree=%s: %s does not exist" % (target, path))
    rel = "/".join(done)
    if not DEPLOY_RE.match(rel) or not os.path.isdir(sysroot + "/" + rel):
        raise Refused("ostree=%s resolves to %s, not a deployment" % (target, rel))
    return rel


def mkdtemp6(parent, prefix):
    for _ in range(100):
        name = "%s/%s%s" % (parent, prefix,
                            "".join(random.choice(string.ascii_letters + string.digits) for _ in range(6)))
        try:
            os.mkdir(name, 0o700)
            return name
        except FileExistsError:
            continue
    raise Refused("mkdtemp %s/%sXXXXXX failed" % (parent, prefix))


def write_booted(readonly, deploy):
    from gi.repository import GLib

    st = os.lstat(deploy)
    meta = GLib.Variant("a{sv}", {
        "sysroot-ro": GLib.Variant("b", readonly),
        "backing-root-device-inode": GLib.Variant("(tt)", (st.st_dev, st.st_ino)),
    })
    tmp = "/run/.ostree-booted.tmp"
    with open(tmp, "wb") as f:
        f.write(meta.get_data_as_bytes().get_data())
    os.chmod(tmp, 0o644)
    os.rename(tmp, "/run/ostree-booted")


class Plan:
    """Steps run in order; mounts made are undone if a later step fails."""

    def __init__(self):
        self.steps, self.undo = [], []

    def add(self, text, fn, undo=None):
        self.steps.append((text, fn, undo))

    def run(self):
        try:
            for _, fn, undo in self.steps:
                fn()
                if undo:
                    self.undo.append(undo)
        except (Refused, OSError) as e:
            for u in reversed(self.undo):
                u()
            raise Refused("%s (all mounts undone)" % e)


def build_plan(sysroot, rel, readonly, transient_etc, mount_var):
    d = sysroot + "/" + rel
    var = os.path.normpath(d + "/../../var")
    p = Plan()
    p.add("make / private", lambda: sys_mount(None, "/", None, MS_REC | MS_PRIVATE | MS_SILENT))
    p.add("mkdir %s" % TMP, lambda: os.makedirs(TMP, exist_ok=True))
    p.add("bind %s on %s" % (d, TMP), lambda: sys_mount(d, TMP, None, MS_BIND | MS_SILENT),
          lambda: sys_umount(TMP))
    if os.path.islink(sysroot + "/boot/loader") and os.path.isdir(d + "/boot"):
        p.add("bind %s/boot on %s/boot" % (sysroot, TMP),
              lambda: sys_mount(sysroot + "/boot", TMP + "/boot", None, MS_BIND | MS_SILENT),
              lambda: sys_umount(TMP + "/boot"))
    if transient_etc:
        def etc_overlay():
            top = mkdtemp6("/run/ostree", "transient-etc.")
            os.mkdir(top + "/upper", 0o755)
            os.mkdir(top + "/work", 0o755)
            sys_mount("overlay", TMP + "/etc", "overlay", MS_SILENT,
                      "lowerdir=%s/usr/etc,upperdir=%s/upper,workdir=%s/work" % (TMP, top, top))
        p.add("overlay on %s/etc, upper in /run/ostree" % TMP, etc_overlay, lambda: sys_umount(TMP + "/etc"))
    elif readonly:
        def etc_bind():
            if not os.path.isdir(d + "/etc"):
                raise Refused("%s/etc: no such directory" % d)
            sys_mount(d + "/etc", TMP + "/etc", None, MS_BIND | MS_SILENT)
        p.add("bind %s/etc writable" % d, etc_bind, lambda: sys_umount(TMP + "/etc"))
    add_usr(p, sysroot, d)
    if readonly:
        p.add("bind %s on itself" % var, lambda: sys_mount(var, var, None, MS_BIND | MS_SILENT),
              lambda: sys_umount(var))
    if mount_var or os.path.lexists("/run/ostree/initramfs-mount-var"):
        p.add("bind %s on %s/var" % (var, TMP), lambda: sys_mount(var, TMP + "/var", None, MS_BIND | MS_SILENT),
              lambda: sys_umount(TMP + "/var"))
    if readonly:
        p.add("write /run/ostree-sysroot-ro.stamp",
              lambda: open("/run/ostree-sysroot-ro.stamp", "w").close())
    p.add("write /run/ostree-booted", lambda: write_booted(readonly, d))

    def switch():
        sys_mount(sysroot, TMP + "/sysroot", None, MS_MOVE | MS_SILENT)
        sys_mount(TMP, sysroot, None, MS_MOVE | MS_SILENT)
        os.rmdir(TMP)
        if readonly:
            sys_mount(sysroot + "/sysroot", sysroot + "/sysroot", None,
                      MS_BIND | MS_REMOUNT | MS_RDONLY | MS_SILENT)
    p.add("move %s to %s/sysroot, %s to %s" % (sysroot, TMP, TMP, sysroot), switch)
    return p


def add_usr(p, sysroot, d):
    upper, work = d + "/.usr-ovl-upper", d + "/.usr-ovl-work"
    hotfix = os.path.lexists(work)
    if hotfix:
        for path in (upper, work):
            if not os.path.lexists(path):
                print("ostree-prepare-root: %s missing, ignoring the /usr hotfix" % path, file=sys.stderr)
                hotfix = False
            elif os.path.islink(path) or not os.path.isdir(path):
                print("ostree-prepare-root: %s is not a directory, ignoring the /usr hotfix" % path,
                      file=sys.stderr)
                hotfix = False
    if hotfix:
        def overlay():
            if os.statvfs(d).f_flag & os.ST_RDONLY:
                sys_mount(None, sysroot, None, MS_REMOUNT | MS_SILENT)
            sys_mount("overlay", TMP + "/usr", "overlay", MS_SILENT,
                      "lowerdir=%s/usr,upperdir=%s,workdir=%s" % (TMP, upper, work))
        p.add("overlay on %s/usr (hotfix)" % TMP, overlay, lambda: sys_umount(TMP + "/usr"))
    else:
        def ro_bind():
            sys_mount(TMP + "/usr", TMP + "/usr", None, MS_BIND | MS_SILENT)
            sys_mount(TMP + "/usr", TMP + "/usr", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_SILENT)
        p.add("bind %s/usr read-only" % TMP, ro_bind, lambda: sys_umount(TMP + "/usr"))


def prepare_run_ostree():
    for path, mode in (("/run/ostree", 0o755), ("/run/ostree/.private", 0o000)):
        try:
            os.mkdir(path, mode)
            os.chmod(path, mode)
        except FileExistsError:
            if not os.path.isdir(path):
                raise Refused("%s exists and is not a directory" % path)


def main(argv):
    opts = [a for a in argv[1:] if a.startswith("--")]
    pos = [a for a in argv[1:] if not a.startswith("--")]
    if not pos or len(pos) > 2 or set(opts) - {"--mount-var", "--dry-run"}:
        raise Refused("usage: ostree-prepare-root [--mount-var] [--dry-run] SYSROOT [KERNEL_CMDLINE]")
    sysroot = pos[0]
    cmdline = pos[1] if len(pos) == 2 else open("/proc/cmdline").read()
    args = split_cmdline(cmdline)
    target = karg(args, "ostree")
    if not target:
        raise Refused("no ostree= kernel argument (expected ostree=/ostree/boot.N/...)")
    conf, conf_path = load_conf()
    cfs = conf.get(("composefs", "enabled"), "no")
    cfs_karg = karg(args, "ostree.prepare-root.composefs")
    if cfs_karg is not None:
        cfs = cfs_karg
    if cfs in ("yes", "true", "1", "signed", "verity"):
        raise Refused("composefs=%s is not supported (from %s)" % (cfs, conf_path or "kernel command line"))
    readonly = conf_bool(conf, conf_path, ("sysroot", "readonly")) or legacy_readonly(sysroot)
    transient_etc = conf_bool(conf, conf_path, ("etc", "transient"))
    rel = resolve_target(sysroot, target)
    plan = build_plan(sysroot, rel, readonly, transient_etc, "--mount-var" in opts)
    if "--dry-run" in opts:
        print("deployment: %s/%s" % (sysroot, rel))
        for text, _, _ in plan.steps:
            print("would: " + text)
        return 0
    os.environ["LIBMOUNT_UTAB"] = "/tmp/.mock-utab"
    prepare_run_ostree()
    plan.run()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except Refused as e:
        print("ostree-prepare-root: %s" % e, file=sys.stderr)
        sys.exit(1)
