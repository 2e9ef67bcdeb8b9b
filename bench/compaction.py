#!/usr/bin/env python3
"""bench/compaction.py — the compacted-topic cleaner's throughput (issue
15): MB/s of input (batch bytes of the rows a pass replaces) through
`sluice compact` on a compacted topic of --keys keys, file store, one
partition. Printed, never asserted.

    python3 bench/compaction.py [--mib 1024] [--keys 10000] [--value-bytes 1000]

The broker's own cleaner is idle (a day between checks) so that the
forced passes measure the whole input: first one pass with a memory
bound above the input (--compaction-memory-bytes 2^34: everything in one
pass), on a copy of the data; then, on the original, passes at the
agent's bound (SL_COMPACT_PASS_BYTES, 128 MiB) until none has dirty data
left. Each pass's wall time includes its process start, its metadata
reads, the object store reads, the cleaning, the new object's write and
the swap. Peak RSS of the pass processes from getrusage.
"""
import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from merge import SLUICE, Broker  # noqa: E402

PASS_RE = re.compile(r"cleaned (\d+) rows \((\d+) records, (\d+) bytes\) into (\d+) records "
                     r"\((\d+) bytes\), dirty ratio ([\d.]+)")


def produce(bootstrap, topic, total, keys, value_bytes, seed):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1 << 20,
                  "queue.buffering.max.kbytes": 1 << 20, "acks": "all",
                  "compression.type": "none"})
    rnd = random.Random(seed)
    base = bytes(rnd.getrandbits(8) for _ in range(value_bytes + 256))
    n = total // value_bytes
    for i in range(n):
        k = b"key-%05d" % rnd.randrange(keys)
        v = base[i % 256:i % 256 + value_bytes]
        while True:
            try:
                p.produce(topic, v, k, partition=0)
                break
            except BufferError:
                p.poll(0.01)
        if i % 10000 == 0:
            p.poll(0)
    assert p.flush(120) == 0
    return n


def compact(data, topic, bound):
    """One forced pass: (seconds, CPU seconds, its peak RSS in MiB, [rows,
    records, bytes, records kept, bytes written, dirty ratio])."""
    t0 = time.monotonic()
    with tempfile.TemporaryFile() as out:
        p = subprocess.Popen([SLUICE, "compact", "--data", data, "--compaction-memory-bytes",
                              str(bound), topic], stdout=out, stderr=out)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        dt = time.monotonic() - t0
        out.seek(0)
        text = out.read().decode()
    if p.returncode:
        raise SystemExit(text)
    m = PASS_RE.search(text)
    if not m:
        raise SystemExit(text)
    return (dt, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024,
            [int(x) for x in m.groups()[:5]] + [float(m.group(6))])


def du(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--keys", type=int, default=10000)
    ap.add_argument("--value-bytes", type=int, default=1000)
    ap.add_argument("--keep", help="produce only, into this folder (for profiling a pass)")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sluice-bench-compaction-")
    data = os.path.join(tmp, "data")
    os.makedirs(data)
    b = Broker(data, ["--compaction-check-interval-ms", "86400000", "--merge-interval-ms", "0",
                      "--gc-interval-ms", "0"])
    b.start()
    topic = "bench-compacted"
    try:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        admin.create_topics([NewTopic(
            topic, 1, 1, config={"cleanup.policy": "compact", "segment.ms": "1",
                                 "min.cleanable.dirty.ratio": "0.5"})])[topic].result(15)
        del admin
        t0 = time.monotonic()
        n = produce(b.bootstrap, topic, args.mib << 20, args.keys, args.value_bytes, 1)
        t_prod = time.monotonic() - t0
        time.sleep(0.1)
        produce(b.bootstrap, topic, args.value_bytes, 1, args.value_bytes, 2)  # the tail
        print("produced %d records (%d MiB, %d keys) in %.1f s" % (n, args.mib, args.keys,
                                                                    t_prod))
    finally:
        b.stop()
    if args.keep:
        shutil.move(data, args.keep)
        shutil.rmtree(tmp)
        print("data in %s, topic %s" % (args.keep, topic))
        return
    copy = os.path.join(tmp, "copy")
    shutil.copytree(data, copy)
    before = du(os.path.join(data, "objects"))

    dt, cpu, rss, (rows, recs, nbytes, kept, out, ratio) = compact(copy, topic, 1 << 34)
    print("one pass (bound 16 GiB): %d rows, %d records, %.1f MiB in %.2f s: %.1f MB/s of "
          "input (%.2f CPU s: %.1f MB/s per CPU second); %d records (%.1f MiB) kept; peak RSS "
          "%.0f MiB" % (rows, recs, nbytes / 2**20, dt, nbytes / 1e6 / dt, cpu,
                        nbytes / 1e6 / cpu, kept, out / 2**20, rss))
    shutil.rmtree(copy)

    total_t, total_cpu, total_in, passes, rss = 0.0, 0.0, 0, 0, 0
    while True:
        dt, cpu, r, (rows, recs, nbytes, kept, out, ratio) = compact(data, topic, 128 << 20)
        rss = max(rss, r)
        if rows == 0:
            break
        passes += 1
        total_t += dt
        total_cpu += cpu
        total_in += nbytes
        print("  pass %d (bound 128 MiB): %.1f MiB in %.2f s (dirty ratio %.3f)"
              % (passes, nbytes / 2**20, dt, ratio))
    print("passes at 128 MiB: %d, %.1f MiB of input in %.2f s: %.1f MB/s (%.2f CPU s: %.1f MB/s "
          "per CPU second); peak RSS %.0f MiB; objects folder %.1f MiB before, %.1f MiB after "
          "(old objects kept for gc's grace)"
          % (passes, total_in / 2**20, total_t, total_in / 1e6 / total_t if total_t else 0,
             total_cpu, total_in / 1e6 / total_cpu if total_cpu else 0, rss,
             before / 2**20, du(os.path.join(data, "objects")) / 2**20))
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
