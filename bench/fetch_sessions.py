#!/usr/bin/python3
"""fetch_sessions.py — what incremental fetch sessions (KIP-227) save on
the wire and in the agent's CPU, measured with a raw-protocol consumer
(tests/integration/kproto.py: Fetch v12) against one binary, both ways in
the same run:

    bench/fetch_sessions.py [--bin build/sluice] [--driver build/bench/driver]
        [--backlog-mib 256] [--tail-partitions 10000] [--tail-s 10] [--rounds 2]
        [--tail-rate 200] [--only catch-up|tail] [--modes session,sessionless]
        [--ab BASE_BIN]

catch-up: a backlog of 1 KiB messages in 64 partitions read from offset 0
to the end, as librdkafka and the Java client fetch (fetch.max.bytes
50 MiB, max.partition.fetch.bytes 1 MiB, max_wait 500 ms, min_bytes 1),
sessionless (every fetch names every partition, epoch -1) and with a
session (a full fetch, then only partitions whose position moved).
tail: a consumer at the end of a topic of --tail-partitions partitions
while 200 messages/s arrive in random partitions (max_wait 100 ms), both
ways. Per mode: fetches, request and response bytes per second and per
fetch (frames included; response bytes less the records), MB/s of
records, and the agent's CPU seconds (utime+stime from /proc) per fetch
and per GB (CPU ms per fetch = CPU s per 1000 fetches). Rounds alternate
the modes; medians are printed as a markdown table. With --ab BASE_BIN,
each round runs the workloads on a broker of BASE_BIN, then of --bin
(fresh data dirs), and the table has a row per binary. Only the standard library and confluent_kafka (topic
creation); loopback only.
"""
import argparse
import os
import random
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import kproto  # noqa: E402
from ab import Broker  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

PART_MAX = 1024 * 1024
FETCH_MAX = 50 * 1024 * 1024


def last_offset(records):
    """Offset after the last batch in records (None when empty)."""
    pos, nxt = 0, None
    while pos + 27 <= len(records):
        base, length = struct.unpack(">qi", records[pos:pos + 12])
        (delta,) = struct.unpack(">i", records[pos + 23:pos + 27])
        if pos + 12 + length > len(records):
            break
        nxt = base + delta + 1
        pos += 12 + length
    return nxt


class Consumer:
    """Fetch v12 over one socket, sessionless or with a session."""

    def __init__(self, bootstrap, topic, partitions, session, max_wait_ms, offsets=None):
        self.s = kproto.connect(bootstrap, timeout=30)
        self.topic = topic
        self.offsets = offsets or {p: 0 for p in range(partitions)}
        self.session = session
        self.sid, self.epoch = 0, 0
        self.changed = set(self.offsets)
        self.max_wait_ms = max_wait_ms
        self.fetches = self.req_bytes = self.resp_bytes = self.rec_bytes = 0
        self.hwm = {}

    def fetch(self):
        if not self.session:
            parts, sid, epoch = sorted(self.offsets), 0, -1
        elif self.sid == 0:
            parts, sid, epoch = sorted(self.offsets), 0, 0
        else:
            parts, sid, epoch = sorted(self.changed), self.sid, self.epoch
        topics = [(self.topic, [(p, self.offsets[p], PART_MAX) for p in parts])] if parts else []
        r, nreq, nresp = kproto.fetch(self.s, 12, sid, epoch, topics, max_wait_ms=self.max_wait_ms,
                                      min_bytes=1, max_bytes=FETCH_MAX)
        assert r["error"] == 0, r["error"]
        if self.session:
            if self.sid == 0:
                self.sid, self.epoch = r["session_id"], 1
                assert self.sid != 0
            else:
                self.epoch += 1
        self.changed = set()
        for _, p, err, hw, _, rec in r["parts"]:
            assert err == 0, err
            self.hwm[p] = hw
            if rec:
                self.rec_bytes += len(rec)
                nxt = last_offset(rec)
                if nxt is not None and nxt > self.offsets[p]:
                    self.offsets[p] = nxt
                    self.changed.add(p)
        self.fetches += 1
        self.req_bytes += nreq
        self.resp_bytes += nresp


def create_topic(bootstrap, name, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": bootstrap})
    a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                    operation_timeout=60)[name].result(120)


def measure(b, c, run):
    c0, t0 = b.cpu(), time.monotonic()
    run()
    el, cpu = time.monotonic() - t0, b.cpu() - c0
    return {"fetches": c.fetches, "s": el, "req_b_s": c.req_bytes / el,
            "resp_b_s": (c.resp_bytes - c.rec_bytes) / el,
            "req_b_fetch": c.req_bytes / c.fetches,
            "resp_b_fetch": (c.resp_bytes - c.rec_bytes) / c.fetches,
            "mb_s": c.rec_bytes / el / 1e6, "cpu_ms_fetch": cpu * 1000 / c.fetches,
            "cpu_s_gb": cpu / (c.rec_bytes / 1e9) if c.rec_bytes else float("nan")}


def catchup(args, b, session):
    total = args.backlog_mib * 1024
    c = Consumer(b.bootstrap, "c", 64, session, 500)

    def run():
        while True:
            c.fetch()
            if len(c.hwm) == 64 and all(c.offsets[p] >= c.hwm[p] for p in range(64)) and \
                    sum(c.hwm.values()) >= total:
                return
    return measure(b, c, run)


def tail(args, b, session):
    n = args.tail_partitions
    c = Consumer(b.bootstrap, "tail", n, session, 100)
    stop = threading.Event()
    batch = kproto.record_batch([(b"k", b"x" * 1024, ())])

    def producer():
        s = kproto.connect(b.bootstrap)
        rnd = random.Random(1)
        while not stop.is_set():
            kproto.produce_v3(s, {"tail": {rnd.randrange(n): batch}})
            time.sleep(1.0 / args.tail_rate)
        s.close()

    c.fetch()  # the full one (or the first sessionless), outside the figures
    c.fetches = c.req_bytes = c.resp_bytes = c.rec_bytes = 0
    t = threading.Thread(target=producer)
    t.start()
    deadline = time.monotonic() + args.tail_s
    try:
        return measure(b, c, lambda: [c.fetch() for _ in iter(
            lambda: time.monotonic() < deadline, False)])
    finally:
        stop.set()
        t.join()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "sluice"))
    ap.add_argument("--driver", default=os.path.join(ROOT, "build", "bench", "driver"))
    ap.add_argument("--backlog-mib", type=int, default=256)
    ap.add_argument("--tail-partitions", type=int, default=10000)
    ap.add_argument("--tail-s", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--data-root", default="/dev/shm")
    ap.add_argument("--tail-rate", type=float, default=200, help="messages/s while tailing")
    ap.add_argument("--only", choices=("catch-up", "tail"))
    ap.add_argument("--modes", default="sessionless,session")
    ap.add_argument("--ab", metavar="BASE_BIN", help="alternate with this binary each round")
    args = ap.parse_args()
    modes = [m == "session" for m in args.modes.split(",")]
    bins = [("base", args.ab), ("new", args.bin)] if args.ab else [("", args.bin)]
    res = {}
    for r in range(args.rounds):
        for label, binary in bins:
            one_broker(args, binary, label, r, modes, res)
    cols = ("fetches", "req_b_s", "resp_b_s", "req_b_fetch", "resp_b_fetch", "mb_s",
            "cpu_ms_fetch", "cpu_s_gb")
    print("\n| workload | binary | fetch | fetches | request B/s | response B/s (less records) | "
          "request B/fetch | response B/fetch | records MB/s | agent CPU ms/fetch | agent CPU s/GB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (name, label, session), rows in res.items():
        print("| %s | %s | %s | %s |" % (name, label or "-", "session" if session else "sessionless",
              " | ".join("%.4g" % statistics.median(x[c] for x in rows) for c in cols)))


def one_broker(args, binary, label, r, modes, res):
    data = tempfile.mkdtemp(prefix="sluice-fs-", dir=args.data_root)
    try:
        b = Broker(binary, data)
        b.bootstrap = "127.0.0.1:%d" % b.port
        work = []
        if args.only != "tail":
            create_topic(b.bootstrap, "c", 64)
            subprocess.run([args.driver, "produce", "--bootstrap", b.bootstrap, "--topic", "c",
                            "--partitions", "64", "--msg-bytes", "1024", "--count",
                            str(args.backlog_mib * 1024), "--acks", "all"],
                           check=True, capture_output=True, timeout=900)
            work.append(("catch-up 64", catchup))
        if args.only != "catch-up":
            create_topic(b.bootstrap, "tail", args.tail_partitions)
            work.append(("tail %d" % args.tail_partitions, tail))
        for session in modes:
            for name, fn in work:
                v = fn(args, b, session)
                res.setdefault((name, label, session), []).append(v)
                print("round %d %s %-12s %-11s %s" % (r + 1, label, name,
                      "session" if session else "sessionless",
                      " ".join("%s=%.4g" % kv for kv in v.items())), flush=True)
        b.stop()
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
