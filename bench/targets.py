#!/usr/bin/env python3
"""targets.py — issue 17's produce targets against librdkafka's mock broker,
all ratios from one run:

    bench/targets.py [--bin build/sluice] [--driver build/bench/driver]
                     [--rounds 2] [--duration-s 10] [--tmpfs-root /dev/shm]
                     [--disk-root /tmp] [--only disk,mock] [--base BIN]
                     [--steps max,half,lone] [--half-rate MSGS_PER_S]
                     [--client-env NAME=VALUE]...

Each round, in this order, a fresh target each time:
  1. produce 1 KiB x 8 partitions at full speed (one librdkafka producer,
     acks=all, linger 5 ms, --duration-s) against the file store on the
     disk, the file store on tmpfs and the mock (`driver mock-serve`):
     MB/s, and the agent's CPU seconds per GB (utime+stime from /proc);
  2. the same at half of this round's disk rate (msgs/s): p50/p99 from
     produce() to the delivery report, on the three;
  3. a lone producer at 1,000 msgs/s to one partition (linger 0,
     acks=all): p50/p99, on the disk, tmpfs and the mock.
With the half rate, the agent's own p99 of Produce requests (the bucket
of sluice_request_duration_seconds holding it, scraped before and after),
which tells the agent's latency from the time batches wait in the client.
--only runs a subset of the targets (the mock is always run: the ratios
need it). --steps runs a subset of the steps; --half-rate sets step 2's
rate instead of half of step 1's (needed without step 1). Skipped steps
print as nan. --base BIN adds the targets "disk-base" and "tmpfs-base" (the
same, with an older binary) right before each of this binary's (right
after, every other round), for a before/after from one run. Each run
starts after a sync(). --client-env NAME=VALUE (repeatable) adds to step 1
the targets "tmpfs+env" and "mock+env" (after tmpfs and the mock; before
them every other round): the same with the driver run under that
environment, e.g. GLIBC_TUNABLES fixing its malloc's thresholds, whose
dynamic ones hand librdkafka's freed request buffers back to the kernel
and fault them in again, against the mock too but more against sluice
(RESULTS.md, 2026-12-06 15:22Z); their ratio is to "mock+env".
Every row also shows the driver's (the client's) own CPU s/GB. Then the
device's fsync time (median of 200 4 KiB writes + fdatasync in
--disk-root). Prints per round and the medians, with the ratios to the
mock of the same round, the targets checked and the load average at the
start and the end. Asserts nothing. Only the standard library.
"""
import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ab import Broker  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLUSH_MS = 5  # the file store's default --flush-interval-ms


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_driver(args, *extra, env=None):
    c0 = children_cpu()  # no other child is waited for while the driver runs
    out = subprocess.run([args.driver] + list(extra), capture_output=True, text=True,
                         timeout=900, env=env)
    client_s = children_cpu() - c0
    if out.returncode != 0:
        raise RuntimeError("driver failed: %s" % out.stderr[-2000:])
    csv = [l for l in out.stdout.splitlines() if l.startswith("csv:")][-1].split(",")
    stat = [l for l in out.stdout.splitlines() if l.startswith("stat:")][-1]
    st = dict(kv.split("=") for kv in stat[5:].split(","))
    return {"mb_s": float(csv[4]), "msgs_s": float(csv[5]), "p50": float(csv[6]),
            "p99": float(csv[7]), "bytes": int(st["bytes"]),
            "client_s_gb": client_s / (int(st["bytes"]) / 1e9)}


class Mock:
    def __init__(self, args):
        self.proc = subprocess.Popen(
            [args.driver, "mock-serve", "--topic", "p:8", "--topic", "h:8", "--topic", "l:1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True)
        m = re.match(r"bootstrap (\S+)", self.proc.stdout.readline())
        if not m:
            raise RuntimeError("mock-serve did not start")
        self.bootstrap = m.group(1)

    def cpu(self):
        return float("nan")

    def produce_hist(self):
        return None

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)


class Sluice:
    def __init__(self, binary, root):
        self.data = tempfile.mkdtemp(prefix="sluice-targets-", dir=root)
        self.b = Broker(binary, self.data, metrics=True)
        self.bootstrap = "127.0.0.1:%d" % self.b.port

    def cpu(self):
        return self.b.cpu()

    def produce_hist(self):
        return self.b.histogram("sluice_request_duration_seconds", 'api="Produce",')

    def stop(self):
        self.b.stop()
        shutil.rmtree(self.data, ignore_errors=True)


def start(args, target):
    if target.startswith("mock"):
        return Mock(args)
    binary = args.base if target.endswith("-base") else args.bin
    return Sluice(binary, args.tmpfs_root if target.startswith("tmpfs") else args.disk_root)


def bucket_quantile(h0, h1, q):
    """The upper bound in ms of the histogram bucket holding quantile q of
    what was observed between the snapshots h0 and h1."""
    if h0 is None:
        return float("nan")
    bounds = sorted(h1)
    total = h1[bounds[-1]] - h0.get(bounds[-1], 0)
    for b in bounds:
        if total and h1[b] - h0.get(b, 0) >= q * total:
            return b * 1000
    return float("nan")


def produce(args, tgt, topic, partitions, extra=(), env=None):
    c0 = tgt.cpu()
    h0 = tgt.produce_hist()
    r = run_driver(args, "produce", "--bootstrap", tgt.bootstrap, "--topic", topic,
                   "--partitions", str(partitions), "--msg-bytes", "1024",
                   "--duration-s", str(args.duration_s), "--acks", "all", *extra, env=env)
    r["cpu_s_gb"] = (tgt.cpu() - c0) / (r["bytes"] / 1e9)
    # The agent's own p99 of Produce requests (arrival to answer queued),
    # to tell its latency from the time batches wait in the client.
    r["agent_p99"] = bucket_quantile(h0, tgt.produce_hist(), 0.99)
    return r


def fsync_ms(root):
    fd, path = tempfile.mkstemp(dir=root)
    try:
        v = []
        for _ in range(200):
            os.write(fd, b"x" * 4096)
            t0 = time.perf_counter()
            os.fdatasync(fd)
            v.append((time.perf_counter() - t0) * 1000)
        return statistics.median(v)
    finally:
        os.close(fd)
        os.unlink(path)


TARGETS = ("disk", "tmpfs", "mock")


SKIPPED = {"mb_s": float("nan"), "msgs_s": float("nan"), "p50": float("nan"),
           "p99": float("nan"), "cpu_s_gb": float("nan"), "agent_p99": float("nan"),
           "client_s_gb": float("nan")}


def client_env(args, target):
    """The driver's environment for target: --client-env's for a "+env" target."""
    if not target.endswith("+env"):
        return None
    return dict(os.environ, **dict(kv.split("=", 1) for kv in args.client_env))


def ref_of(target):
    return "mock+env" if target.endswith("+env") else "mock"


def run_order(args, rnd):
    """The targets in the order round rnd runs them: with --base, every
    other round runs each target before its base, since the first of a pair
    ran measurably worse (a disk still writing back what the step before
    wrote: 2026-12-06, p99disk17's entry in RESULTS.md). The same for a
    "+env" target and its plain one."""
    order = list(args.targets)
    if rnd % 2 == 1:
        for i in range(0, len(order) - 1):
            a, b = order[i], order[i + 1]
            if a + "-base" == b or a == b + "-base" or a + "+env" == b:
                order[i], order[i + 1] = b, a
    return order


def one_round(args, rnd):
    res = {(t, k): SKIPPED for t in args.targets for k in ("max", "half", "lone")}
    order = run_order(args, rnd)
    for t in order if "max" in args.steps else ():
        os.sync()  # what the step before wrote is not written back during this one
        tgt = start(args, t)
        try:
            res[(t, "max")] = produce(args, tgt, "p", 8, ["--linger-ms", "5"],
                                      env=client_env(args, t))
        finally:
            tgt.stop()
    half = args.half_rate or ("max" in args.steps and
                              int(res[(args.targets[0], "max")]["msgs_s"] / 2))
    for t in order if "half" in args.steps or "lone" in args.steps else ():
        if t.endswith("+env"):
            continue  # step 1 only
        os.sync()
        tgt = start(args, t)
        try:
            if "half" in args.steps:
                res[(t, "half")] = produce(args, tgt, "h", 8,
                                           ["--linger-ms", "5", "--rate", str(half)])
            if "lone" in args.steps:
                res[(t, "lone")] = produce(args, tgt, "l", 1, ["--linger-ms", "0", "--rate", "1000"])
        finally:
            tgt.stop()
    return res, half


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "sluice"))
    ap.add_argument("--driver", default=os.path.join(ROOT, "build", "bench", "driver"))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--duration-s", type=int, default=10)
    ap.add_argument("--tmpfs-root", default="/dev/shm")
    ap.add_argument("--disk-root", default="/tmp")
    ap.add_argument("--only", default="disk,tmpfs", help="targets besides the mock")
    ap.add_argument("--base", help="an older binary, run beside each target as TARGET-base "
                    "(before it; after it every other round)")
    ap.add_argument("--steps", default="max,half,lone", help="which of max,half,lone to run")
    ap.add_argument("--half-rate", type=int, default=0,
                    help="msgs/s of the half-rate step (default: half of the max step's)")
    ap.add_argument("--client-env", action="append", default=[], metavar="NAME=VALUE",
                    help="adds targets tmpfs+env and mock+env to step 1: the driver under "
                    "this environment (repeatable)")
    args = ap.parse_args()
    if any("=" not in kv for kv in args.client_env):
        ap.error("--client-env: expected NAME=VALUE")
    if args.client_env and "max" not in args.steps:
        ap.error("--client-env needs step max")
    args.steps = args.steps.split(",")
    if "half" in args.steps and "max" not in args.steps and not args.half_rate:
        ap.error("--steps without max needs --half-rate")
    only = [t for t in args.only.split(",") if t in TARGETS and t != "mock"]
    args.targets = []
    for t in only:
        args.targets += ([t + "-base"] if args.base else []) + [t]
        if t == "tmpfs" and args.client_env:
            args.targets.append("tmpfs+env")
    args.targets.append("mock")
    if args.client_env:
        args.targets.append("mock+env")
    targets = args.targets
    load0 = open("/proc/loadavg").read().split()[:3]
    t0 = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())
    rounds = []
    for r in range(args.rounds):
        res, half = one_round(args, r)
        rounds.append(res)
        print("round %d: half rate %d msgs/s; " % (r + 1, half) + "; ".join(
            "%s %.1f MB/s (%.2fx) %.2f cpu-s/GB (client %.2f), half p50/p99 %.2f/%.2f ms "
            "(agent p99 <= %g), lone p50/p99 %.2f/%.2f ms"
            % (t, res[(t, "max")]["mb_s"], res[(t, "max")]["mb_s"] / res[(ref_of(t), "max")]["mb_s"],
               res[(t, "max")]["cpu_s_gb"], res[(t, "max")]["client_s_gb"],
               res[(t, "half")]["p50"], res[(t, "half")]["p99"], res[(t, "half")]["agent_p99"],
               res[(t, "lone")]["p50"],
               res[(t, "lone")]["p99"]) for t in targets), flush=True)
    fs = fsync_ms(args.disk_root)
    load1 = open("/proc/loadavg").read().split()[:3]

    def med(t, k, f):
        return statistics.median(x[(t, k)][f] for x in rounds)

    def ratio(t):
        return statistics.median(x[(t, "max")]["mb_s"] / x[(ref_of(t), "max")]["mb_s"]
                                 for x in rounds)

    print("\n%s, %d rounds, load average %s at the start, %s at the end; device fsync %.2f ms "
          "(median of 200 4 KiB fdatasync in %s)" % (t0, args.rounds, " ".join(load0),
                                                      " ".join(load1), fs, args.disk_root))
    if args.client_env:
        print("+env: the driver under %s" % " ".join(args.client_env))
    print("\n| target | produce MB/s | ratio to mock | agent CPU s/GB | client CPU s/GB | "
          "half-rate p50 ms | half-rate p99 ms | agent's half-rate p99 ms (bucket) | "
          "lone p50 ms | lone p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for t in targets:
        mock = t.startswith("mock")
        print("| %s | %.1f | %s | %s | %.2f | %.2f | %.2f | %s | %.2f | %.2f |" % (
            t, med(t, "max", "mb_s"), "%.2f" % ratio(t) if not mock else "1",
            "%.2f" % med(t, "max", "cpu_s_gb") if not mock else "-",
            med(t, "max", "client_s_gb"),
            med(t, "half", "p50"), med(t, "half", "p99"),
            "<= %g" % med(t, "half", "agent_p99") if not mock else "-",
            med(t, "lone", "p50"), med(t, "lone", "p99")))
    checks = []
    if "tmpfs" in targets:
        checks += [
            (ratio("tmpfs") >= 0.7, "produce tmpfs >= 0.7x mock: %.2fx" % ratio("tmpfs")),
            (med("tmpfs", "max", "cpu_s_gb") <= 1.2,
             "agent CPU <= 1.2 s/GB (tmpfs): %.2f" % med("tmpfs", "max", "cpu_s_gb")),
            (med("tmpfs", "lone", "p50") <= 3,
             "lone p50 tmpfs <= 3 ms: %.2f" % med("tmpfs", "lone", "p50"))]
    if "tmpfs+env" in targets:
        checks += [(ratio("tmpfs+env") >= 0.7,
                    "produce tmpfs >= 0.7x mock, the driver under --client-env (beside the "
                    "target, not instead of it): %.2fx" % ratio("tmpfs+env"))]
    if "disk" in targets:
        checks += [
            (ratio("disk") >= 0.5, "produce disk >= 0.5x mock: %.2fx" % ratio("disk")),
            (med("disk", "half", "p99") <= FLUSH_MS + 20,
             "disk p99 at half rate <= flush interval + 20 = %d ms: %.2f"
             % (FLUSH_MS + 20, med("disk", "half", "p99"))),
            (med("disk", "lone", "p50") <= fs + 2,
             "lone p50 disk <= fsync + 2 = %.2f ms: %.2f" % (fs + 2, med("disk", "lone", "p50")))]
    print()
    for ok, text in checks:
        print("- [%s] %s" % ("x" if ok else " ", text))
    print("\ncommand: bench/targets.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    sys.exit(main())
