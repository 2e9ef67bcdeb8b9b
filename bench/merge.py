#!/usr/bin/env python3
"""bench/merge.py — what merging small objects (issue 15) buys: metadata
rows and objects per GiB before and after `sluice compact`, and catch-up
throughput and store reads (bench/driver consume, cold broker: restarted,
empty read cache; the broker's /metrics GET count) from unmerged and
merged data, file store or (--store s3) S3 store. Printed, never asserted.

    python3 bench/merge.py [--mib 256] [--partitions 16] [--flush-bytes 262144]
                           [--conf batch.size=16384 ...] [--store file|s3] [--s3-root DIR]
                           [--readers N] [--reader-delay-s S] [--count EVENTS] [--perf DIR]

--flush-bytes small makes ingest objects small, as a broker with many
partitions and modest traffic makes them (each object holds a sliver of
every partition).

--count EVENTS (perf stat -p) and --perf DIR (perf record, folded into
SVGs by bench/flamegraph.py) look at the broker over each catch-up, as
bench/ab.py's options of those names do; stderr also has, per catch-up,
the broker's CPU seconds per GB and its read cache and store counters.

--readers N (--reader-delay-s S) runs N consumers of the whole topic at
once, S apart, in each catch-up: the table's MB/s is then all of them
together over the wall time, stderr has each one's, and the GETs per GiB
count every byte served (read-ahead shared, or fought over, by several
readers of one cache).

--store s3 puts the objects on one local s3rver (bench/compaction.py's
Store: tests/integration/js/node_modules, a prefix per data dir, flushed
every 5 ms as the file store is) in a directory under --s3-root (default:
the system's temp dir); `sluice compact` and `sluice gc` get the same
--store URL. The GETs are still the broker's /metrics count; the table
adds s3rver's own count of GETs (HEADs included) from its log.
Importing compaction.py needs confluent_kafka (/usr/bin/python3 has it).
"""
import argparse
import os
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLUICE = os.environ.get("SLUICE_BIN", os.path.join(ROOT, "build", "sluice"))
DRIVER = os.environ.get("SLUICE_DRIVER", os.path.join(ROOT, "build", "bench", "driver"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ab import Count, Perf, cpu_s, free_port, proc_stat_field  # noqa: E402


class Broker:
    def __init__(self, data, extra):
        self.data, self.extra, self.proc = data, extra, None
        self.port = free_port()
        self.bootstrap = "127.0.0.1:%d" % self.port

    def start(self):
        log = open(os.path.join(self.data, "broker.log"), "ab")
        self.proc = subprocess.Popen([SLUICE, "serve", "--listen", self.bootstrap, "--data",
                                     self.data] + self.extra, stdout=log, stderr=log)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("broker did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


READ_METRICS = (("gets", rb'sluice_object_store_requests_total\{operation="get"\}'),
                ("get_bytes", rb'sluice_object_store_bytes_total\{operation="get"\}'),
                ("hits", rb"sluice_read_cache_hits_total"),
                ("misses", rb"sluice_read_cache_misses_total"),
                ("load_bytes", rb"sluice_read_cache_load_bytes_total"))


def read_metrics(port):
    """The broker's read-path counters: store GETs and bytes, read cache
    hits, misses and bytes loaded."""
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read()
    out = {}
    for name, pat in READ_METRICS:
        m = re.search(rb"^" + pat + rb" (\d+)$", body, re.M)
        out[name] = int(m.group(1))
    return out


def cpu_faults(pid):
    """CPU seconds of a process and its minor faults (which count the
    pages madvise(MADV_POPULATE_WRITE) maps), from /proc."""
    return cpu_s(pid), proc_stat_field(pid, 7)


def counts(data):
    db = sqlite3.connect(os.path.join(data, "meta.db"))
    rows, nbytes = db.execute("SELECT count(*), coalesce(sum(length), 0) FROM batches").fetchone()
    objects = db.execute("SELECT count(*) FROM objects WHERE live_bytes > 0").fetchone()[0]
    db.close()
    return rows, objects, nbytes


def driver(*args):
    out = subprocess.run([DRIVER] + list(args), capture_output=True, text=True, check=True,
                         timeout=900).stdout
    m = re.search(r"stat:elapsed_s=([\d.]+),msgs=(\d+),bytes=(\d+)", out)
    return float(m.group(1)), int(m.group(2)), int(m.group(3))


def readers(o, common, n):
    """--readers consumers of the whole topic (each its own driver, manual
    assignment, so each reads everything), --reader-delay-s apart: (wall
    seconds from the first start to the last end, bytes of all, [MB/s of
    each])."""
    out = [None] * o.readers

    def one(i):
        out[i] = driver("consume", *common, "--count", str(n))

    t0 = time.monotonic()
    threads = []
    for i in range(o.readers):
        if i:
            time.sleep(o.reader_delay_s)
        threads.append(threading.Thread(target=one, args=(i,)))
        threads[-1].start()
    for t in threads:
        t.join()
    if o.readers == 1:
        return out[0][0], out[0][2], [out[0][2] / out[0][0] / 1e6]
    return (time.monotonic() - t0, sum(r[2] for r in out),
            [r[2] / r[0] / 1e6 for r in out])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--partitions", type=int, default=16)
    ap.add_argument("--flush-bytes", type=int, default=262144)
    ap.add_argument("--msg-bytes", type=int, default=1024)
    ap.add_argument("--conf", action="append", default=[],
                    help="KEY=VALUE for the producer (e.g. batch.size=16384)")
    ap.add_argument("--store", choices=("file", "s3"), default="file")
    ap.add_argument("--readers", type=int, default=1,
                    help="consumers reading the whole topic at once in each catch-up")
    ap.add_argument("--reader-delay-s", type=float, default=0.5,
                    help="with --readers: seconds between their starts")
    ap.add_argument("--count", metavar="EVENTS",
                    help="perf stat these events of the broker over each catch-up (per GB)")
    ap.add_argument("--perf", metavar="DIR",
                    help="perf record each catch-up into DIR/{unmerged,merged}-catchup-r0.data "
                         "and fold it into DIR/{unmerged,merged}-catchup.svg")
    ap.add_argument("--s3-root", default=None,
                    help="with --store s3: where s3rver's folder goes (default: temp dir)")
    o = ap.parse_args()
    o.data_root = "merge-%s" % o.store  # Perf's title
    n = o.mib * 1024 * 1024 // o.msg_bytes
    store = None
    if o.store == "s3":
        from compaction import Store
        store = Store("s3", o.s3_root)
    try:
        results, compact_s, out = run(o, n, store)
    finally:
        if store:
            store.close()
    s3 = store is not None
    print("| data | rows per GiB | objects per GiB | catch-up GETs per GiB |%s catch-up MB/s |"
          % (" s3rver GETs per GiB |" if s3 else ""))
    print("|---|---|---|---|%s---|" % ("---|" if s3 else ""))
    for phase, r, ob, g, s3g, mbs in results:
        print("| %s | %.0f | %.0f | %.0f |%s %.1f |"
              % (phase, r, ob, g, " %.0f |" % s3g if s3 else "", mbs))
    print("compact: %.1f s for %d MiB, %s store (%s)"
          % (compact_s, o.mib, o.store, out.strip().replace("\n", "; ")[:300]))
    print("load average: %s" % open("/proc/loadavg").read().split()[:3], file=sys.stderr)


def run(o, n, store):
    """Produce, then the unmerged and the merged catch-up: ([(phase, rows,
    objects, GETs, s3rver GETs per GiB, MB/s)], compact seconds, its output)."""
    with tempfile.TemporaryDirectory(prefix="sluice-merge-bench-") as data:
        mport = free_port()
        sflags = store.flags(data) if store else []
        surl = sflags[:2]  # --store URL for compact and gc
        b = Broker(data, ["--flush-bytes", str(o.flush_bytes), "--merge-interval-ms", "0",
                          "--default-partitions", str(o.partitions),
                          "--metrics-listen", "127.0.0.1:%d" % mport] + sflags)
        b.start()
        common = ["--bootstrap", b.bootstrap, "--topic", "merge-bench", "--partitions",
                  str(o.partitions), "--msg-bytes", str(o.msg_bytes)]
        driver("produce", *common, "--count", str(n),
               *[a for kv in o.conf for a in ("--conf", kv)])
        results = []
        for phase in ("unmerged", "merged"):
            if phase == "merged":
                b.stop()
                t0 = time.monotonic()
                out = subprocess.run([SLUICE, "compact", "--data", data] + surl + ["merge-bench"],
                                     capture_output=True, text=True, check=True).stdout
                compact_s = time.monotonic() - t0
                subprocess.run([SLUICE, "gc", "--data", data] + surl + ["--grace-minutes", "0",
                                "--force"], capture_output=True, check=True)
                b.start()
            else:
                b.stop()
                b.start()
            rows, objects, nbytes = counts(data)
            gib = nbytes / 2**30 * o.readers  # bytes served
            s0 = store.s3.counts()["GET"] if store else 0
            with Perf(o, b.proc.pid, phase, "catchup", 0), Count(o, b.proc.pid) as count:
                m0, (c0, f0) = read_metrics(mport), cpu_faults(b.proc.pid)
                secs, got, each = readers(o, common, n)
                m1, (c1, f1) = read_metrics(mport), cpu_faults(b.proc.pid)
            d = {k: m1[k] - m0[k] for k in m1}
            s3gets = store.s3.counts()["GET"] - s0 if store else 0
            results.append((phase, rows / gib, objects / gib, d["gets"] / gib, s3gets / gib,
                            got / secs / 1e6))
            print("%s: broker CPU %.2f s/GB, minor faults %.0f MiB/GB; cache hits %d, misses %d, "
                  "loaded %.0f MiB; store GETs %d, %.0f MiB"
                  % (phase, (c1 - c0) / (got / 1e9), (f1 - f0) * 4096 / 2**20 / (got / 1e9),
                     d["hits"], d["misses"],
                     d["load_bytes"] / 2**20, d["gets"], d["get_bytes"] / 2**20), file=sys.stderr)
            if o.readers > 1:
                print("%s: %d readers %.1f s apart: %s MB/s each"
                      % (phase, o.readers, o.reader_delay_s, " / ".join("%.0f" % x for x in each)),
                      file=sys.stderr)
            if count.values:
                print("%s: per GB: %s" % (phase, ", ".join(
                    "%s %.0f" % (k, v / (got / 1e9)) for k, v in sorted(count.values.items()))),
                    file=sys.stderr)
        b.stop()
    return results, compact_s, out


if __name__ == "__main__":
    main()
