#!/usr/bin/python3
"""txn.py — what transactions cost (issue 14), against one agent on its
own SQLite store, every figure of one run on the same machine state:

    bench/txn.py [--bin build/sluice] [--driver build/bench/driver]
        [--rounds 3] [--duration-s 6] [--data-root /dev/shm]
        [--backlog-mib 256] [--backlog-txn-records 1000] [--abort-every 10]
        [--only produce|catch-up]

produce: `driver produce` (librdkafka, 1 KiB x 8 partitions, acks=all,
linger 5 ms, --duration-s) idempotent without transactions, then in
transactions of 100 and of 10,000 records (begin, the records, flush,
commit: the commit is then EndTxn's round trip alone, timed for its
p50/p99); the three in a rotated order each round, on the same broker.
catch-up: a --backlog-mib backlog written in transactions of
--backlog-txn-records, every --abort-every-th aborted, read from offset 0
by `driver consume` with read_uncommitted (every data record) and
read_committed (the committed ones; the broker sends the aborted batches
too, with the aborted transactions' list), each from a freshly started
broker (an empty read cache), in a rotated order.

Per workload: the median over rounds of MB/s (records the client was
handed) and of the agent's CPU seconds (utime+stime from /proc) per GB
of those records; the ratio of each to the idempotent row (produce) or
the read_uncommitted row (catch-up); the commit p50/p99. The machine is
shared: compare ratios within one run. Only the standard library; the
data dir on tmpfs by default (the agent's cost, not the device's);
loopback only.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ab import Broker  # noqa: E402

PRODUCE = (("idempotent", ["--idempotent", "on"]),
           ("txn 100", ["--txn-records", "100"]),
           ("txn 10000", ["--txn-records", "10000"]))


def driver(args, *argv):
    out = subprocess.run([args.driver] + list(argv), capture_output=True, text=True,
                         timeout=900)
    if out.returncode != 0:
        raise RuntimeError("driver %s failed: %s" % (argv[0], out.stderr[-2000:]))
    csv = [line for line in out.stdout.splitlines() if line.startswith("csv:")][-1]
    stat = [line for line in out.stdout.splitlines() if line.startswith("stat:")]
    fields = dict(kv.split("=") for kv in stat[-1][5:].split(",")) if stat else {}
    return float(csv.split(",")[4]), fields, out.stdout


def measured(args, b, *argv):
    """(MB/s, CPU s/GB of the agent, the driver's stat fields)."""
    c0 = b.cpu()
    mb_s, fields, text = driver(args, *argv)
    cpu = b.cpu() - c0
    nbytes = float(fields["bytes"]) if "bytes" in fields else None
    if nbytes is None:  # consume: the MB in its summary line
        nbytes = float(text.split(" msgs (")[1].split(" MB)")[0]) * 1e6
    return mb_s, cpu / (nbytes / 1e9), fields


def produce_round(args, r, res):
    data = tempfile.mkdtemp(prefix="sluice-txn-", dir=args.data_root)
    try:
        b = Broker(args.bin, data)
        bootstrap = "127.0.0.1:%d" % b.port
        order = PRODUCE[r % 3:] + PRODUCE[:r % 3]
        for name, extra in order:
            mb_s, cpu_gb, f = measured(args, b, "produce", "--bootstrap", bootstrap, "--topic",
                                       "p-%s-%d" % (name.replace(" ", ""), r),
                                       "--duration-s", str(args.duration_s), *extra)
            row = {"mb_s": mb_s, "cpu_s_gb": cpu_gb}
            if "commit_p50_ms" in f:
                row["commit_p50_ms"] = float(f["commit_p50_ms"])
                row["commit_p99_ms"] = float(f["commit_p99_ms"])
                row["txns"] = int(f["txns_committed"])
            res.setdefault(name, []).append(row)
            print("round %d %-10s %s" % (r + 1, name, " ".join(
                "%s=%.4g" % kv for kv in row.items())), flush=True)
        b.stop()
    finally:
        shutil.rmtree(data, ignore_errors=True)


def catchup_round(args, r, res):
    data = tempfile.mkdtemp(prefix="sluice-txn-", dir=args.data_root)
    try:
        b = Broker(args.bin, data)
        bootstrap = "127.0.0.1:%d" % b.port
        _, f, _ = driver(args, "produce", "--bootstrap", bootstrap, "--topic", "c",
                         "--count", str(args.backlog_mib * 1024),
                         "--txn-records", str(args.backlog_txn_records),
                         "--txn-abort-every", str(args.abort_every))
        b.stop()
        counts = {"read_uncommitted": f["msgs"], "read_committed": f["msgs_committed"]}
        order = ["read_uncommitted", "read_committed"][::1 if r % 2 == 0 else -1]
        for level in order:
            b = Broker(args.bin, data)
            mb_s, cpu_gb, _ = measured(args, b, "consume", "--bootstrap",
                                       "127.0.0.1:%d" % b.port, "--topic", "c",
                                       "--count", counts[level],
                                       "--conf", "isolation.level=" + level)
            b.stop()
            row = {"mb_s": mb_s, "cpu_s_gb": cpu_gb}
            res.setdefault("catch-up " + level, []).append(row)
            print("round %d %-28s %s" % (r + 1, "catch-up " + level, " ".join(
                "%s=%.4g" % kv for kv in row.items())), flush=True)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "sluice"))
    ap.add_argument("--driver", default=os.path.join(ROOT, "build", "bench", "driver"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration-s", type=float, default=6)
    ap.add_argument("--data-root", default="/dev/shm")
    ap.add_argument("--backlog-mib", type=int, default=256)
    ap.add_argument("--backlog-txn-records", type=int, default=1000)
    ap.add_argument("--abort-every", type=int, default=10)
    ap.add_argument("--only", choices=("produce", "catch-up"))
    args = ap.parse_args()
    res = {}
    for r in range(args.rounds):
        if args.only != "catch-up":
            produce_round(args, r, res)
        if args.only != "produce":
            catchup_round(args, r, res)

    def med(name, col):
        vals = [x[col] for x in res.get(name, []) if col in x]
        return statistics.median(vals) if vals else None

    print("\n| workload | MB/s | vs base | agent CPU s/GB | vs base | commit p50 ms | "
          "commit p99 ms |")
    print("|---|---|---|---|---|---|---|")
    for name in [n for n, _ in PRODUCE] + ["catch-up read_uncommitted",
                                           "catch-up read_committed"]:
        if name not in res:
            continue
        base = "idempotent" if not name.startswith("catch-up") else "catch-up read_uncommitted"
        cells = [name]
        for col in ("mb_s", "cpu_s_gb"):
            v, b = med(name, col), med(base, col)
            cells += ["%.1f" % v if col == "mb_s" else "%.2f" % v,
                      "%.2f" % (v / b) if b else "-"]
        for col in ("commit_p50_ms", "commit_p99_ms"):
            v = med(name, col)
            cells.append("%.1f" % v if v is not None else "-")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
