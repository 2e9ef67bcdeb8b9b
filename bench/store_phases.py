#!/usr/bin/env python3
"""store_phases.py — the stages of each object of the file store's write
path, from an strace of the agent:

    strace -f -tt -T -e trace=openat,fdatasync,fsync,write,writev -o OUT \\
        build/sluice serve --data DIR ...        # under a produce load
    bench/store_phases.py OUT [WAL_FD]

For each object created (openat of a .obj with O_CREAT) whose stages did
not overlap another object's: its create+write+fdatasync, the object's
fdatasync, the hop to the commit's folder fsync, that fsync, the SQLite
transaction up to the WAL's fdatasync (fd WAL_FD, 17 by default: check
the trace), the WAL fdatasync, the hop to the first produce answer
written after it, and create → answer; p50, mean and p90 in ms. Only
the standard library."""
import re
import statistics
import sys


def ms(clock):
    h, m, s = clock.split(":")
    return (int(h) * 3600 + int(m) * 60 + float(s)) * 1000


def events(path):
    """(start ms, syscall, arguments, end ms), unfinished calls joined."""
    out, pending = [], {}
    for line in open(path):
        m = re.match(r"(\d+)\s+(\S+) (.*)", line)
        if not m:
            continue
        tid, t, rest = m.group(1), ms(m.group(2)), m.group(3)
        if "resumed>" in rest:
            call = pending.pop(tid, None)
            if call:
                out.append((call[1], call[0], call[2], t))
            continue
        c = re.match(r"(\w+)\((.*)", rest)
        if not c:
            continue
        if "unfinished" in rest:
            pending[tid] = (c.group(1), t, c.group(2)[:160])
            continue
        d = re.search(r"<([\d.]+)>\s*$", rest)
        out.append((t, c.group(1), c.group(2)[:160], t + (float(d.group(1)) * 1000 if d else 0)))
    out.sort()
    return out


STAGES = ("create+write+fdatasync", "object fdatasync", "put -> commit hop", "folder fsync",
          "SQLite transaction", "WAL fdatasync", "commit -> answer hop", "create -> answer")


def main():
    wal = sys.argv[2] if len(sys.argv) > 2 else "17"
    got = {k: [] for k in STAGES}
    st = None
    for t, name, arg, end in events(sys.argv[1]):
        if name == "openat" and ".obj" in arg and "O_CREAT" in arg:
            st = st or {"open": t}
        elif st is None:
            continue
        elif name == "fdatasync" and "put" not in st and not arg.startswith(wal):
            st["sync"], st["put"] = end - t, end
        elif name == "fsync" and "put" in st and "dir" not in st:
            st["dir"] = (t, end)
        elif name == "fdatasync" and arg.startswith(wal) and "dir" in st:
            st["wal"] = (t, end)
        elif name == "write" and "wal" in st and '"\\0\\0\\0001' in arg:
            for k, v in zip(STAGES, (st["put"] - st["open"], st["sync"], st["dir"][0] - st["put"],
                                     st["dir"][1] - st["dir"][0], st["wal"][0] - st["dir"][1],
                                     st["wal"][1] - st["wal"][0], t - st["wal"][1], t - st["open"])):
                got[k].append(v)
            st = None
    for k in STAGES:
        v = sorted(got[k])
        if v:
            print("%-24s n=%d p50 %.2f mean %.2f p90 %.2f" % (
                k, len(v), statistics.median(v), statistics.mean(v), v[int(len(v) * 0.9)]))


if __name__ == "__main__":
    sys.exit(main())
