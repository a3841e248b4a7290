#!/usr/bin/python3
"""hang-fuse.py FILE SIZE: make FILE a file whose reads never answer.

A FUSE filesystem whose root is one regular file of SIZE bytes, mounted
over FILE: lookups of its size and opens are answered, reads are not. A
loop device over FILE is then a block device that does not answer, the
case a boot must survive (a dying disk, a stalled USB bridge): every read
of it waits in the kernel until this process ends, which aborts the FUSE
connection and fails the waiting reads with EIO.

Speaks the kernel's FUSE protocol directly (no libfuse): INIT, GETATTR,
OPEN, FLUSH and RELEASE get answers, READ none, everything else ENOSYS.
Prints "ready" on stdout once mounted, then serves until killed.
"""

import ctypes
import errno
import os
import struct
import sys

FUSE_GETATTR, FUSE_OPEN, FUSE_READ, FUSE_RELEASE = 3, 14, 15, 18
FUSE_FLUSH, FUSE_INIT = 25, 26
IN_HEADER = struct.Struct("<IIQQIIIHH")  # len opcode unique nodeid uid gid pid extlen pad
OUT_HEADER = struct.Struct("<IiQ")  # len error unique
MS_NOSUID, MS_NODEV = 2, 4


def reply(fd, unique, payload=b"", error=0):
    os.write(fd, OUT_HEADER.pack(OUT_HEADER.size + len(payload), error, unique) + payload)


def attr(size):
    # fuse_attr_out: attr_valid, attr_valid_nsec, dummy, then fuse_attr.
    blocks = (size + 511) // 512
    fuse_attr = struct.pack(
        "<QQQQQQIIIIIIIIII", 1, size, blocks, 0, 0, 0, 0, 0, 0,
        0o100444, 1, 0, 0, 0, 4096, 0)
    return struct.pack("<QII", 3600, 0, 0) + fuse_attr


def main():
    target, size = sys.argv[1], int(sys.argv[2])
    fd = os.open("/dev/fuse", os.O_RDWR)
    libc = ctypes.CDLL(None, use_errno=True)
    opts = f"fd={fd},rootmode=100444,user_id=0,group_id=0,allow_other".encode()
    if libc.mount(b"hang", target.encode(), b"fuse", MS_NOSUID | MS_NODEV, opts) != 0:
        e = ctypes.get_errno()
        sys.exit(f"hang-fuse: mount fuse on {target}: {os.strerror(e)}")
    print("ready", flush=True)
    while True:
        try:
            req = os.read(fd, 1 << 20)
        except OSError as e:
            if e.errno in (errno.EINTR, errno.ENOENT):  # ENOENT: request interrupted
                continue
            if e.errno == errno.ENODEV:  # unmounted
                return
            raise
        _, opcode, unique, _, _, _, _, _, _ = IN_HEADER.unpack_from(req)
        if opcode == FUSE_INIT:
            major, minor = struct.unpack_from("<II", req, IN_HEADER.size)
            # fuse_init_out (64 bytes): major, minor, max_readahead, flags,
            # max_background, congestion_threshold, max_write, the rest zero.
            out = struct.pack("<IIIIHHI", 7, min(minor, 31), 1 << 17, 0, 16, 12, 1 << 17)
            reply(fd, unique, out + bytes(64 - len(out)))
        elif opcode == FUSE_GETATTR:
            reply(fd, unique, attr(size))
        elif opcode == FUSE_OPEN:
            reply(fd, unique, struct.pack("<QII", 1, 0, 0))
        elif opcode in (FUSE_FLUSH, FUSE_RELEASE):
            reply(fd, unique)
        elif opcode == FUSE_READ:
            pass  # never answered: the reader waits until we are gone
        else:
            reply(fd, unique, error=-errno.ENOSYS)


if __name__ == "__main__":
    main()
