#!/usr/bin/env python3
"""bench/folios.py FILE...: how the kernel's page cache holds each FILE (root only).

Reads the first 64 MiB of each file (read(), so the kernel's read-ahead fills the page cache
as it does for cp), maps that range, and looks up each page's frame in /proc/self/pagemap and
its flags in /proc/kpageflags. Prints, per file, how many of its pages are single 4 KiB pages
and how many belong to large folios (compound pages), and the mean folio size.

Why: the cost of filling the page cache grows with the number of folios. On kernels where
FUSE files get 4 KiB pages only and ext4 files get large folios, a copy out of any FUSE mount
pays for many more page allocations than a copy from local disk (docs/design-notes.md,
"Measured: the mount").
"""
import mmap
import os
import struct
import sys

LIMIT = 64 << 20
PAGE = mmap.PAGESIZE
KPF_COMPOUND_HEAD = 1 << 15
KPF_COMPOUND_TAIL = 1 << 16


def probe(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        size = min(os.fstat(fd).st_size, LIMIT) // PAGE * PAGE
        if size == 0:
            return "%s: empty" % path
        left = size
        while left > 0:
            got = os.read(fd, min(left, 1 << 20))
            if not got:
                break
            left -= len(got)
        m = mmap.mmap(fd, size, prot=mmap.PROT_READ)
    finally:
        os.close(fd)
    view = memoryview(m)
    for off in range(0, size, PAGE):  # map every page (a read fault on a cached page)
        _ = view[off]
    # the mapping's address: this file's only mapping in this process
    st = os.stat(path)
    addr = None
    with open("/proc/self/maps") as maps:
        for line in maps:
            f = line.split()
            if len(f) >= 5 and int(f[4]) == st.st_ino and int(f[2], 16) == 0:
                addr = int(f[0].split("-")[0], 16)
    if addr is None:
        return "%s: mapping not found" % path
    single = heads = tails = absent = 0
    with open("/proc/self/pagemap", "rb") as pm, open("/proc/kpageflags", "rb") as kf:
        for off in range(0, size, PAGE):
            pm.seek((addr + off) // PAGE * 8)
            e = struct.unpack("Q", pm.read(8))[0]
            if not (e >> 63) & 1:
                absent += 1
                continue
            kf.seek((e & ((1 << 55) - 1)) * 8)
            flags = struct.unpack("Q", kf.read(8))[0]
            if flags & KPF_COMPOUND_HEAD:
                heads += 1
            elif flags & KPF_COMPOUND_TAIL:
                tails += 1
            else:
                single += 1
    view.release()
    m.close()
    folios = single + heads
    mean = (single + heads + tails) * PAGE / folios / 1024 if folios else 0
    return "%s: %d pages: %d single 4 KiB pages, %d in %d large folios; mean folio %.0f KiB%s" % (
        path, size // PAGE, single, heads + tails, heads, mean,
        ", %d not mapped" % absent if absent else "")


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: folios.py FILE...")
    for path in sys.argv[1:]:
        try:
            print(probe(path))
        except OSError as e:
            print("%s: cannot probe: %s" % (path, e))


if __name__ == "__main__":
    main()
