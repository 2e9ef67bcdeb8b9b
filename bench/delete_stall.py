#!/usr/bin/env python3
"""bench/delete_stall.py [ROUNDS [SECONDS [METHODS [MIBS]]]], by hand: how deleting large
files stalls a small file's fdatasync beside it (the produce path's object
write) on this disk (ext4 mounted with -o discard), and whether truncating
a file in steps before unlinking it (RocksDB's DeleteScheduler) helps.

Each measurement: files of SIZE (64 and 8 MiB, or MIBS: 64,16) are written and fsynced first (untimed),
then the foreground makes a 1 KiB file and fdatasyncs it every 2 ms for
SECONDS while a background thread deletes one big file every 250 ms by
METHOD; prints the fdatasync p50 / p99 / max and the mean time one delete
took. Methods, alternated in every round:
  none          no deletes (the baseline)
  unlink        plain unlink
  tN            ftruncate in N MiB steps from the end, then unlink
  uN            unlink, then ftruncate the still open file in N MiB
                steps, then close (the file store's order: the key goes first)
  tN+sync       same, fdatasync after each step (commits each step's free)
  tN+pP         same, P ms pause after each step
Data in a temporary folder under /tmp (the project's disk)."""
import os
import sys
import tempfile
import threading
import time

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 3
methods = (sys.argv[3].split(",") if len(sys.argv) > 3 else
           ["none", "unlink", "t4", "u4", "t4+sync", "t4+p2", "t1+p2"])
sizes = [int(m) << 20 for m in
         (sys.argv[4].split(",") if len(sys.argv) > 4 else ["64", "8"])]
folder = tempfile.mkdtemp(dir="/tmp", prefix="delete-stall-")
chunk = os.urandom(1 << 20)


def make(path, size):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for _ in range(size >> 20):
        os.write(fd, chunk)
    os.fsync(fd)
    os.close(fd)


def delete(path, method):
    if method == "unlink":
        os.unlink(path)
        return
    step_s, _, opt = method[1:].partition("+")
    step = int(step_s) << 20
    pause = float(opt[1:]) / 1000 if opt.startswith("p") else 0
    fd = os.open(path, os.O_WRONLY)
    size = os.fstat(fd).st_size
    if method.startswith("u"):
        os.unlink(path)
    while size > step:
        size -= step
        os.ftruncate(fd, size)
        if opt == "sync":
            os.fdatasync(fd)
        if pause:
            time.sleep(pause)
    os.close(fd)
    if method.startswith("t"):
        os.unlink(path)


def measure(method, size):
    n = int(seconds / 0.25) + 1
    paths = [os.path.join(folder, "big%d" % i) for i in range(n)]
    if method != "none":
        for p in paths:
            make(p, size)
    time.sleep(0.5)
    stop = threading.Event()
    took = []

    def deleter():
        for p in paths:
            if stop.is_set():
                break
            t0 = time.monotonic()
            delete(p, method)
            took.append(time.monotonic() - t0)
            stop.wait(0.25)

    th = threading.Thread(target=deleter) if method != "none" else None
    if th:
        th.start()
    lat = []
    end = time.monotonic() + seconds
    k = 0
    while time.monotonic() < end:
        path = os.path.join(folder, "small%d" % k)
        k += 1
        t0 = time.monotonic()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, b"x" * 1024)
        os.fdatasync(fd)
        os.close(fd)
        lat.append((time.monotonic() - t0) * 1000)
        os.unlink(path)
        time.sleep(0.002)
    stop.set()
    if th:
        th.join()
    for name in os.listdir(folder):
        os.unlink(os.path.join(folder, name))
    lat.sort()
    return (lat[len(lat) // 2], lat[int(len(lat) * .99)], lat[-1],
            1000 * sum(took) / len(took) if took else 0, len(took))


print("load average %.2f %.2f %.2f" % os.getloadavg())
for r in range(rounds):
    for size in sizes:
        for m in methods:
            p50, p99, mx, d, nd = measure(m, size)
            print("round %d %3d MiB %-8s fdatasync ms p50 %5.2f p99 %6.2f "
                  "max %6.2f  delete ms %6.1f (%d)"
                  % (r, size >> 20, m, p50, p99, mx, d, nd), flush=True)
os.rmdir(folder)
