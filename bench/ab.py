#!/usr/bin/env python3
"""ab.py — A/B of two sluice binaries on the produce and catch-up rows.

    bench/ab.py BASE_BIN NEW_BIN [--rounds 3] [--data-root /dev/shm]
                [--driver build/bench/driver] [--duration-s 8] [--backlog-mib 256]
                [--e2e] [--seal] [--disk-root /tmp]
                [--produce-only] [--metrics-base] [--metrics-new] [--scrape-ms 1000]
                [--perf DIR] [--count EVENTS] [--scale N [--rate MSGS_S]]
                [--env-base K=V ...] [--env-new K=V ...]

Alternates the two binaries round by round (A, B, A, B, ...), so drift on
a shared machine falls on both: each round starts a fresh broker with its
data dir under --data-root (tmpfs by default: the broker's own cost, not
the device's), runs `driver produce` (1 KiB x 8 partitions, acks=all,
--duration-s), then produces a --backlog-mib backlog into 64 partitions,
restarts the broker (empty read cache) and reads it back with `driver
consume`. Prints, per binary, the median MB/s and the broker's CPU
seconds per GB (utime+stime from /proc, which drifts least), the
ratio new/base, and over the produce row the broker's minor faults per GB
(/proc's minflt, which counts pages madvise(MADV_POPULATE_WRITE) maps, as
perf's page-faults does not) and its peak RSS. With --e2e, the rounds run `driver e2e` instead (10,000
msgs/s of 1 KiB, or --rate, over 8 partitions, linger 5 ms, fetch.wait.max.ms 10,
--duration-s) and it prints the medians of p50/p99/p99.9 produce() to
consume, the broker's CPU seconds and the objects it wrote. With --seal (seal timing, issue 17), each round runs, on tmpfs
(--data-root) and on the disk (--disk-root): a lone producer at 1,000
msgs/s of 1 KiB to one partition (linger 0, acks=all; p50/p99 produce()
to delivery report), then produce 1 KiB x 8 partitions at full speed
(MB/s, CPU s/GB, objects/s and mean object size from the store folder).
With --scale N, each round runs bench/suite.py's scale-pN instead (1 KiB
to N partitions for --duration-s, linger 5 ms, acks=all, queue 50,000
messages; with --rate MSGS_S its objects-rate-pN) under --data-root: MB/s,
the broker's CPU s/GB and s, objects/s and MB/object from the store folder
(--perf DIR profiles it as NAME-scale-rN.data).
--env-base/--env-new K=V set an environment variable for that side's
brokers (--seal, --scale and --e2e rounds): the same binary twice then A/Bs a
hidden setting (e.g. SLUICE_SEAL_WHEN_IDLE=0).
Only the standard library; loopback only.

--perf DIR records each round's produce and catch-up with `perf record
--call-graph dwarf` (-F 250) of the broker into DIR/NAME-{produce,catchup}-rN.data
and, for the last round, folds them into DIR/NAME-{produce,catchup}.svg with
bench/flamegraph.py (the figures of a profiled round include perf's cost).

--count EVENTS (comma-separated perf events, e.g.
syscalls:sys_enter_sched_yield,context-switches,task-clock) counts them
with `perf stat -p` on the broker over each produce row and prints them
per GB produced, round by round and as medians: the measures that drift
least on a loaded machine.

--produce-only skips the catch-up row (more rounds in the same time).
--metrics-base / --metrics-new start that side's brokers (produce,
catch-up and e2e rounds) with --metrics-listen on a free port and scrape
/metrics every --scrape-ms during the round (the scrapes' CPU is the
broker's, so it counts): the same binary as BASE and NEW measures what
the endpoint costs, the previous commit as BASE what counting and the
endpoint cost together.
"""
import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def proc_stat_field(pid, i):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[i])


def hwm_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick


class Broker:
    def __init__(self, binary, data, scrape_ms=0, metrics=False, env=None):
        self.port = free_port()
        extra = []
        self.scraper = None
        if scrape_ms or metrics:
            self.metrics_port = free_port()
            extra = ["--metrics-listen", "127.0.0.1:%d" % self.metrics_port]
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:%d" % self.port, "--data", data,
             "--log-level", "warn", "--default-partitions", "8"] + extra,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=dict(os.environ, **(env or {})))
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("broker did not start")
        if scrape_ms:
            self.stopping = threading.Event()
            self.scraper = threading.Thread(target=self.scrape, args=(scrape_ms,), daemon=True)
            self.scraper.start()

    def scrape(self, ms):
        url = "http://127.0.0.1:%d/metrics" % self.metrics_port
        while not self.stopping.wait(ms / 1000):
            with urllib.request.urlopen(url, timeout=10) as r:
                r.read()

    def histogram(self, family, labels=""):
        """The cumulative bucket counts of one histogram, {upper bound in s: count}
        (needs metrics=True or scrape_ms)."""
        url = "http://127.0.0.1:%d/metrics" % self.metrics_port
        with urllib.request.urlopen(url, timeout=10) as r:
            text = r.read().decode()
        pat = re.compile(r'^%s_bucket\{%sle="([^"]+)"\} (\d+)$' % (re.escape(family), re.escape(labels)),
                         re.M)
        return {float(le): int(n) for le, n in pat.findall(text)}

    def cpu(self):
        return cpu_s(self.proc.pid)

    def stop(self):
        if self.scraper:
            self.stopping.set()
            self.scraper.join()
        self.proc.terminate()
        self.proc.wait(60)


def driver(args, *extra):
    out = subprocess.run([args.driver] + list(extra), capture_output=True, text=True,
                         timeout=600)
    if out.returncode != 0:
        raise RuntimeError("driver failed: %s" % out.stderr[-2000:])
    csv = [l for l in out.stdout.splitlines() if l.startswith("csv:")][-1]
    stat = [l for l in out.stdout.splitlines() if l.startswith("stat:")][-1]
    mb_s = float(csv.split(",")[4])
    st = dict(kv.split("=") for kv in stat[5:].split(","))
    return mb_s, int(st["bytes"])


def scrape_ms(args, name):
    return args.scrape_ms if getattr(args, "metrics_" + name) else 0


class Perf:
    """perf record of one broker for the length of a with-block (--perf)."""

    def __init__(self, args, pid, name, phase, rnd):
        self.args, self.pid, self.proc = args, pid, None
        if args.perf:
            self.data = os.path.join(args.perf, "%s-%s-r%d.data" % (name, phase, rnd))
            self.svg = os.path.join(args.perf, "%s-%s.svg" % (name, phase))
            self.title = "%s, %s (%s)" % (phase, os.path.basename(args.data_root), name)

    def __enter__(self):
        if self.args.perf:
            self.proc = subprocess.Popen(
                ["perf", "record", "-F", "250", "--call-graph", "dwarf,16384", "-o", self.data,
                 "-p", str(self.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        if self.proc:
            self.proc.send_signal(2)
            self.proc.wait(120)
            script = subprocess.run(["perf", "script", "-i", self.data], capture_output=True,
                                    timeout=900)
            with open(self.svg, "wb") as f:
                f.write(subprocess.run(
                    [sys.executable, os.path.join(ROOT, "bench", "flamegraph.py"), "--title",
                     self.title], input=script.stdout, capture_output=True).stdout)
        return False


class Count:
    """perf stat of one broker's --count events for the length of a with-block."""

    def __init__(self, args, pid):
        self.args, self.pid, self.proc, self.values = args, pid, None, {}

    def __enter__(self):
        if self.args.count:
            fd, self.out = tempfile.mkstemp(prefix="sluice-ab-count-")
            os.close(fd)
            self.proc = subprocess.Popen(
                ["perf", "stat", "-x", ",", "-e", self.args.count, "-p", str(self.pid),
                 "-o", self.out], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.3)
        return self

    def __exit__(self, *exc):
        if self.proc:
            self.proc.send_signal(2)
            self.proc.wait(60)
            with open(self.out) as f:
                for line in f:
                    cols = line.strip().split(",")
                    if len(cols) > 2 and cols[2] in self.args.count.split(","):
                        try:
                            self.values[cols[2]] = float(cols[0])
                        except ValueError:
                            self.values[cols[2]] = float("nan")
            os.unlink(self.out)
        return False


def one_round(args, binary, name, rnd=0):
    data = tempfile.mkdtemp(prefix="sluice-ab-", dir=args.data_root)
    try:
        b = Broker(binary, data, scrape_ms(args, name))
        with Perf(args, b.proc.pid, name, "produce", rnd), Count(args, b.proc.pid) as count:
            c0, f0 = b.cpu(), proc_stat_field(b.proc.pid, 7)
            mb_s, nbytes = driver(args, "produce", "--bootstrap", "127.0.0.1:%d" % b.port,
                                  "--topic", "p", "--partitions", "8", "--msg-bytes", "1024",
                                  "--duration-s", str(args.duration_s), "--acks", "all")
            c1, f1 = b.cpu(), proc_stat_field(b.proc.pid, 7)
        args.counted[name].append({k: v / (nbytes / 1e9) for k, v in count.values.items()})
        args.faulted[name].append(((f1 - f0) / (nbytes / 1e9), hwm_mib(b.proc.pid)))
        produce = (mb_s, (c1 - c0) / (nbytes / 1e9))
        if args.produce_only:
            b.stop()
            return produce, (float("nan"), float("nan"))
        count = args.backlog_mib * 1024
        driver(args, "produce", "--bootstrap", "127.0.0.1:%d" % b.port, "--topic", "c",
               "--partitions", "64", "--msg-bytes", "1024", "--count", str(count),
               "--acks", "all")
        b.stop()
        b = Broker(binary, data, scrape_ms(args, name))
        with Perf(args, b.proc.pid, name, "catchup", rnd):
            c0 = b.cpu()
            mb_s, nbytes = driver(args, "consume", "--bootstrap", "127.0.0.1:%d" % b.port,
                                  "--topic", "c", "--partitions", "64", "--count", str(count))
            c1 = b.cpu()
        catchup = (mb_s, (c1 - c0) / (nbytes / 1e9))
        b.stop()
        return produce, catchup
    finally:
        shutil.rmtree(data, ignore_errors=True)


def driver_csv(args, *extra):
    """The driver's csv: line, split (latency columns 6-8: p50/p99/p99.9)."""
    out = subprocess.run([args.driver] + list(extra), capture_output=True, text=True,
                         timeout=600)
    if out.returncode != 0:
        raise RuntimeError("driver failed: %s" % out.stderr[-2000:])
    return [l for l in out.stdout.splitlines() if l.startswith("csv:")][-1].split(",")


def e2e_round(args, binary, name, rnd):
    data = tempfile.mkdtemp(prefix="sluice-ab-", dir=args.data_root)
    try:
        b = Broker(binary, data, scrape_ms(args, name), env=args.env[name])
        try:
            c0 = b.cpu()
            csv = driver_csv(args, "e2e", "--bootstrap", "127.0.0.1:%d" % b.port,
                             "--topic", "e", "--partitions", "8", "--msg-bytes", "1024",
                             "--duration-s", str(args.duration_s), "--rate", str(args.rate or 10000),
                             "--linger-ms", "5", "--fetch-wait-ms", "10")
            cpu = b.cpu() - c0
        finally:
            b.stop()
        return float(csv[6]), float(csv[7]), float(csv[8]), cpu, store_objects(data)[0]
    finally:
        shutil.rmtree(data, ignore_errors=True)


def alternate(args, one_round_fn, line, header, row):
    """Rounds of one_round_fn(args, binary, name, round), base and new
    alternated; each round's tuple printed with line, then the medians
    as a table."""
    res = {"base": [], "new": []}
    for rnd in range(args.rounds):
        for name in ("base", "new"):
            v = one_round_fn(args, getattr(args, name), name, rnd + 1)
            res[name].append(v)
            print(line % ((rnd + 1, name) + v), flush=True)
    print("\n" + header)
    print("|---" * (header.count("|") - 1) + "|")
    for name in ("base", "new"):
        print(row % ((name,) + tuple(statistics.median(x[i] for x in res[name])
                                     for i in range(len(res[name][0])))))


def main_e2e(args):
    alternate(args, e2e_round,
              "round %d %-4s e2e p50 %.2f ms p99 %.2f ms p99.9 %.2f ms, broker %.2f cpu-s, "
              "%d objects",
              "| binary | e2e p50 ms | p99 ms | p99.9 ms | broker CPU s | objects |",
              "| %s | %.2f | %.2f | %.2f | %.2f | %d |")


def store_objects(data):
    n = size = 0
    for root, _, files in os.walk(os.path.join(data, "objects")):
        for f in files:
            if f.endswith(".obj"):
                n += 1
                size += os.path.getsize(os.path.join(root, f))
    return n, size


def seal_round(args, binary, root, name):
    data = tempfile.mkdtemp(prefix="sluice-ab-", dir=root)
    try:
        b = Broker(binary, data, env=args.env[name])
        csv = driver_csv(args, "produce", "--bootstrap", "127.0.0.1:%d" % b.port,
                         "--topic", "l", "--partitions", "1", "--msg-bytes", "1024",
                         "--duration-s", str(args.duration_s), "--rate", "1000",
                         "--linger-ms", "0", "--acks", "all")
        lone = (float(csv[6]), float(csv[7]))
        n0, s0 = store_objects(data)
        c0 = b.cpu()
        t0 = time.time()
        mb_s, nbytes = driver(args, "produce", "--bootstrap", "127.0.0.1:%d" % b.port,
                              "--topic", "p", "--partitions", "8", "--msg-bytes", "1024",
                              "--duration-s", str(args.duration_s), "--acks", "all")
        elapsed = time.time() - t0
        cpu = (b.cpu() - c0) / (nbytes / 1e9)
        b.stop()
        n1, s1 = store_objects(data)
        objs = n1 - n0
        return lone + (mb_s, cpu, objs / elapsed, (s1 - s0) / objs / 1e6 if objs else 0.0)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def main_seal(args):
    roots = (("tmpfs", args.data_root), ("disk", args.disk_root))
    res = {(r, n): [] for r, _ in roots for n in ("base", "new")}
    for rnd in range(args.rounds):
        for rname, root in roots:
            for name in ("base", "new"):
                v = seal_round(args, getattr(args, name), root, name)
                res[(rname, name)].append(v)
                print("round %d %-5s %-4s lone p50 %.2f p99 %.2f ms | produce %.1f MB/s "
                      "%.2f cpu-s/GB %.1f objects/s %.2f MB/object" % ((rnd + 1, rname, name) + v),
                      flush=True)
    print("\n| store | binary | lone p50 ms | lone p99 ms | produce MB/s | CPU s/GB | objects/s | MB/object |")
    print("|---|---|---|---|---|---|---|---|")
    for rname, _ in roots:
        for name in ("base", "new"):
            rows = res[(rname, name)]
            print("| %s | %s | %.2f | %.2f | %.1f | %.2f | %.1f | %.2f |" % ((rname, name) + tuple(
                statistics.median(x[i] for x in rows) for i in range(6))))


def scale_round(args, binary, name, rnd):
    """scale-pN as bench/suite.py runs it (--scale N, --rate R for
    objects-rate-pN): 1 KiB to N partitions, linger 5 ms, acks=all."""
    data = tempfile.mkdtemp(prefix="sluice-ab-", dir=args.data_root)
    try:
        b = Broker(binary, data, env=args.env[name])
        extra = ["--rate", str(args.rate)] if args.rate else []
        with Perf(args, b.proc.pid, name, "scale", rnd):
            n0, s0 = store_objects(data)
            c0 = b.cpu()
            t0 = time.time()
            mb_s, nbytes = driver(args, "produce", "--bootstrap", "127.0.0.1:%d" % b.port,
                                  "--topic", "s", "--partitions", str(args.scale),
                                  "--msg-bytes", "1024", "--duration-s", str(args.duration_s),
                                  "--acks", "all", "--linger-ms", "5", "--queue-msgs", "50000",
                                  *extra)
            elapsed = time.time() - t0
            cpu = b.cpu() - c0
        b.stop()
        n1, s1 = store_objects(data)
        objs = n1 - n0
        return (mb_s, cpu / (nbytes / 1e9), cpu, objs / elapsed,
                (s1 - s0) / objs / 1e6 if objs else 0.0)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def main_scale(args):
    alternate(args, scale_round,
              "round %%d %%-4s p%d produce %%.1f MB/s %%.2f cpu-s/GB %%.2f cpu-s "
              "%%.1f objects/s %%.3f MB/object" % args.scale,
              "| binary | MB/s | CPU s/GB | CPU s | objects/s | MB/object |",
              "| %s | %.1f | %.2f | %.2f | %.1f | %.3f |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--data-root", default="/dev/shm")
    ap.add_argument("--driver", default=os.path.join(ROOT, "build", "bench", "driver"))
    ap.add_argument("--duration-s", type=int, default=8)
    ap.add_argument("--backlog-mib", type=int, default=256)
    ap.add_argument("--e2e", action="store_true")
    ap.add_argument("--produce-only", action="store_true")
    ap.add_argument("--metrics-base", action="store_true")
    ap.add_argument("--metrics-new", action="store_true")
    ap.add_argument("--scrape-ms", type=int, default=1000)
    ap.add_argument("--seal", action="store_true")
    ap.add_argument("--disk-root", default="/tmp")
    ap.add_argument("--perf", metavar="DIR")
    ap.add_argument("--count", metavar="EVENTS")
    ap.add_argument("--scale", type=int, metavar="N")
    ap.add_argument("--rate", type=int, metavar="MSGS_S")
    ap.add_argument("--env-base", action="append", default=[], metavar="K=V")
    ap.add_argument("--env-new", action="append", default=[], metavar="K=V")
    args = ap.parse_args()
    args.env = {n: dict(kv.split("=", 1) for kv in getattr(args, "env_" + n))
                for n in ("base", "new")}
    args.counted = {"base": [], "new": []}
    args.faulted = {"base": [], "new": []}
    if args.e2e:
        return main_e2e(args)
    if args.seal:
        return main_seal(args)
    if args.scale:
        return main_scale(args)
    res = {"base": [], "new": []}
    for r in range(args.rounds):
        for name in ("base", "new"):
            p, c = one_round(args, getattr(args, name), name, r + 1)
            res[name].append((p, c))
            print("round %d %-4s produce %7.1f MB/s %5.2f cpu-s/GB   catch-up %7.1f MB/s %5.2f cpu-s/GB"
                  % (r + 1, name, p[0], p[1], c[0], c[1]) +
                  "   minflt %.0f/GB peak RSS %.0f MiB" % args.faulted[name][-1] + "".join(
                      "  %s %.0f/GB" % kv for kv in sorted(args.counted[name][-1].items())),
                  flush=True)
    med = {}
    for name in ("base", "new"):
        rows = res[name]
        med[name] = [statistics.median(x) for x in (
            [p[0] for p, _ in rows], [p[1] for p, _ in rows],
            [c[0] for _, c in rows], [c[1] for _, c in rows])]
    print("\n| binary | produce MB/s | produce CPU s/GB | catch-up MB/s | catch-up CPU s/GB |")
    print("|---|---|---|---|---|")
    for name in ("base", "new"):
        print("| %s | %.1f | %.2f | %.1f | %.2f |" % ((name,) + tuple(med[name])))
    print("| new/base | %.2f | %.2f | %.2f | %.2f |" % tuple(
        n / b if b else float("nan") for n, b in zip(med["new"], med["base"])))
    print("\nproduce: minor faults per GB (/proc minflt: pages mapped by madvise too) and the"
          " broker's peak RSS after it, medians")
    for name in ("base", "new"):
        print("%s: %.0f/GB, %.0f MiB" % (name, statistics.median(f for f, _ in args.faulted[name]),
                                        statistics.median(h for _, h in args.faulted[name])))
    if args.count:
        events = args.count.split(",")
        print("\nper GB produced (medians of the rounds; task-clock in ms)\n")
        print("| binary | %s |" % " | ".join(events))
        print("|---|%s" % ("---|" * len(events)))
        for name in ("base", "new"):
            print("| %s | %s |" % (name, " | ".join("%.0f" % statistics.median(
                r.get(e, float("nan")) for r in args.counted[name]) for e in events)))


if __name__ == "__main__":
    sys.exit(main())
