#!/usr/bin/env python3
"""s3_produce.py — the S3 store's produce throughput against the file
store's, on one local s3rver, all in one run (issue 17's "S3 store produce
>= 0.7x the file store against s3rver"):

    bench/s3_produce.py [--bin build/sluice] [--driver build/bench/driver]
                        [--rounds 3] [--duration-s 8] [--root /dev/shm] [--rate N]
                        [--base BIN] [--args-s3 'FLAGS'] [--variant 'NAME=FLAGS']
                        [--perf-dir DIR]

Each round, in alternating order: the file store (data dir on --root, so
the device is out), then the S3 store on one s3rver (its own directory on
--root too), each a fresh broker running `driver produce` (1 KiB x 8
partitions, acks=all, linger 5 ms, --duration-s; --rate: msgs/s, not
full speed). With --base BIN the
older binary's S3 store ("s3-base") runs right before this one's in each
round, for a before/after from the same run. Per target: MB/s, and the
CPU seconds per GB of the agent, of s3rver and of the client (utime +
stime from /proc and the driver's rusage), PUTs (s3rver's log), the
mean object size, the mean PUT duration (the broker's /metrics) and the
driver's p50 produce latency. Prints per round and the medians, the ratio s3/file
and the load average at the start and end. --args-s3 adds flags to the
S3 brokers (both binaries); each --variant NAME=FLAGS adds an S3 target
NAME, this binary with FLAGS added (FLAGS "bin=B ...": binary B; a flag
"url=K=V" adds K=V to the store URL, e.g. url=payload_signing=false). --perf-dir records `perf record -g` of each
S3 broker into DIR. Asserts nothing; only the standard library.
"""
import argparse
import os
import re
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import suite  # noqa: E402


def produce(args, port):
    """Run the driver; returns (MB/s, bytes, client CPU s, p50 ms)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([args.driver, "produce", "--bootstrap", "127.0.0.1:%d" % port,
                          "--topic", "s3p", "--partitions", "8", "--msg-bytes", "1024",
                          "--duration-s", str(args.duration_s), "--acks", "all",
                          "--linger-ms", "5"] + (["--rate", str(args.rate)] if args.rate else []),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=args.duration_s + 300).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    csv = [ln[4:].split(",") for ln in out.splitlines() if ln.startswith("csv:")]
    stat = [ln for ln in out.splitlines() if ln.startswith("stat:")]
    if not csv or not stat:
        raise RuntimeError("driver printed no result:\n" + out[-3000:])
    st = dict(kv.split("=") for kv in stat[-1][5:].split(","))
    return float(csv[-1][4]), int(st["bytes"]), client, float(csv[-1][6])


def put_ms(port):
    """The broker's mean PUT duration so far, in ms (its /metrics)."""
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read()
    got = {}
    for line in text.decode().splitlines():
        m = re.match(r'sluice_object_store_request_duration_seconds_(sum|count)'
                     r'\{operation="put"\} (\S+)', line)
        if m:
            got[m.group(1)] = float(m.group(2))
    return 1000 * got.get("sum", 0) / got["count"] if got.get("count") else float("nan")


def one(args, s3, tmp, binary, target, n, extra=()):
    data = tempfile.mkdtemp(prefix="s3p-data-", dir=args.root)
    port, mport = suite.free_port(), suite.free_port()
    cmd = [binary, "serve", "--listen", "127.0.0.1:%d" % port, "--data", data,
           "--log-level", "warn", "--metrics-listen", "127.0.0.1:%d" % mport]
    prefix = "r%d-%s" % (n, target)
    if target != "file":
        query = "".join("&" + e[4:] for e in extra if e.startswith("url="))
        cmd += ["--store", "s3://%s/%s?endpoint=http://127.0.0.1:%d&region=us-east-1%s"
                % (s3.bucket, prefix, s3.port, query)] + shlex.split(args.args_s3) + \
            [e for e in extra if not e.startswith("url=")]
    env = dict(os.environ, AWS_ACCESS_KEY_ID="S3RVER", AWS_SECRET_ACCESS_KEY="S3RVER")
    log = open(os.path.join(tmp, "broker.log"), "ab")
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
    perf = None
    try:
        if not suite.wait_port(port, p):
            raise RuntimeError("broker did not start (log in %s)" % tmp)
        if args.perf_dir and target != "file":
            perf = subprocess.Popen(["perf", "record", "-g", "-F", "499", "-p", str(p.pid),
                                     "-o", os.path.join(args.perf_dir, "%s.data" % prefix)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        puts0 = s3.counts()["PUT"]
        a0, s0 = suite.proc_cpu_s(p.pid), suite.proc_cpu_s(s3.proc.pid)
        mb_s, nbytes, client, p50 = produce(args, port)
        put = put_ms(mport) if target != "file" else float("nan")
        agent = suite.proc_cpu_s(p.pid) - a0
        s3cpu = suite.proc_cpu_s(s3.proc.pid) - s0
        puts = s3.counts()["PUT"] - puts0 if target != "file" else 0
        if target == "file":
            objs = sum(len(f) for _, _, f in os.walk(os.path.join(data, "objects")))
            s3cpu = float("nan")
        else:
            objs = puts
        gb = nbytes / 1e9
        return {"mb_s": mb_s, "agent": agent / gb, "s3rver": s3cpu / gb,
                "client": client / gb, "objects": objs, "p50": p50, "put_ms": put,
                "obj_mib": nbytes / max(objs, 1) / 2**20}
    finally:
        if perf:
            perf.send_signal(2)
            perf.wait(60)
        p.terminate()
        p.wait(60)
        subprocess.run(["rm", "-rf", data, os.path.join(s3.dir, s3.bucket, prefix)])


def fmt(r):
    return ("%.1f MB/s, CPU s/GB agent %.2f s3rver %.2f client %.2f, %d objects of %.2f MiB, "
            "mean PUT %.1f ms, p50 %.1f ms"
            % (r["mb_s"], r["agent"], r["s3rver"], r["client"], r["objects"], r["obj_mib"],
               r["put_ms"], r["p50"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=suite.SLUICE)
    ap.add_argument("--driver", default=suite.DRIVER)
    ap.add_argument("--base")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration-s", type=int, default=8)
    ap.add_argument("--root", default="/dev/shm")
    ap.add_argument("--args-s3", default="")
    ap.add_argument("--rate", type=int, default=0)
    ap.add_argument("--variant", action="append", default=[])
    ap.add_argument("--perf-dir")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="s3p-bench-", dir=a.root)
    s3 = suite.S3rver(tmp).start()
    variants = dict(v.split("=", 1) for v in a.variant)
    targets = (["s3-base"] if a.base else []) + ["s3"] + list(variants) + ["file"]
    got = {t: [] for t in targets}
    print("load average at start: %s" % " ".join(open("/proc/loadavg").read().split()[:3]),
          flush=True)
    try:
        for n in range(a.rounds):
            for t in (targets if n % 2 == 0 else targets[::-1]):
                binary = a.base if t == "s3-base" else a.bin
                extra = shlex.split(variants.get(t, ""))
                if extra and extra[0].startswith("bin="):
                    binary = extra.pop(0)[4:]
                r = one(a, s3, tmp, binary, t, n, extra)
                got[t].append(r)
                print("round %d %s: %s" % (n + 1, t, fmt(r)), flush=True)
    finally:
        s3.stop()
        subprocess.run(["rm", "-rf", tmp])
    print("load average at end: %s" % " ".join(open("/proc/loadavg").read().split()[:3]))
    keys = ("mb_s", "agent", "s3rver", "client", "obj_mib", "put_ms", "p50")
    med = {t: {k: statistics.median(r[k] for r in v) for k in keys} for t, v in got.items()}
    print("\n| target | MB/s | x file | agent CPU s/GB | s3rver CPU s/GB | client CPU s/GB "
          "| object MiB | mean PUT ms | p50 ms |\n|---|---|---|---|---|---|---|---|---|")
    for t in targets:
        m = med[t]
        print("| %s | %.1f | %.2f | %.2f | %.2f | %.2f | %.2f | %.1f | %.1f |"
              % (t, m["mb_s"], m["mb_s"] / med["file"]["mb_s"], m["agent"], m["s3rver"],
                 m["client"], m["obj_mib"], m["put_ms"], m["p50"]))


if __name__ == "__main__":
    main()
