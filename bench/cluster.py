#!/usr/bin/env python3
"""cluster.py — SQLite vs PostgreSQL, 1 agent vs N agents, and the
PostgreSQL capacity model, in one run (issue 12, "Speed").

    bench/cluster.py [--sluice build/sluice] [--driver build/bench/driver]
                     [--meta-bench build/bench/meta_bench] [--agents 3]
                     [--duration-s 10] [--latency-s 20] [--idle-s 5]
                     [--capacity 1,4,16] [--capacity-s 3] [--keep]
                     [--wake-rounds 200] [--only wake]
                     [--ab DIR [--rounds 3] [--ab-rate MSGS_S]]

A throwaway PostgreSQL from tools/pg-test.sh (fsync on, loopback), then
three configurations, each with fresh agents (`sluice serve`, file store
in a fresh temp dir, --default-partitions 8, as
tests/integration/test_cluster.py starts them: same --meta and --store,
own --listen and --data, no zone):

  sqlite-1   one agent, its default SQLite metadata store
  pg-1       one agent on a fresh PostgreSQL database
  pg-N       N agents on one fresh PostgreSQL database and one store dir

Each runs `driver produce` (1 KiB x 8 partitions, acks=all, linger 5 ms,
bootstrap = every agent, so the client sends each partition to the agent
that leads it) at full speed for --duration-s, then at half of sqlite-1's
message rate (the suite's "latency" load, the same offered rate for all
three) for --latency-s. Per run: MB/s, p50/p99 of produce() to delivery,
objects written (files in the store dir), the agents' CPU s/GB
(utime+stime), and the agents' own "commit X ms avg (T transactions)"
from their 10 s stats lines (an average, weighted by objects), and
each agent's commit p50/p99 from its /metrics histogram
sluice_meta_commit_duration_seconds (scraped before and after the
phase, interpolated inside its buckets: 1, 2, 3, 5, 7.5, 10, 12.5, 15,
17.5, 20, 25, 50 ms...) beside how many of the 8 partitions it leads
(Metadata after the warm-up: an agent leading none commits nothing, which
rendezvous hashing does to one of 3 agents in about one topic of
nine). For PostgreSQL: pg_stat_database.xact_commit of the
database before/after (less the idle rate measured for --idle-s just
before, i.e. heartbeats and polls) per object, and
pg_stat_user_tables.n_tup_ins per object and per GiB.

Then the capacity model: `meta_bench --agents 1,4,16` on a fresh database
(each simulated agent a thread with its own store and connections,
committing 1-batch objects through meta_commit_objects to a partition of
its own, then again all to one shared partition), and from the best
sustained rate, how many agents at 4 objects/s (S3 defaults: flush
250 ms) one PostgreSQL primary serves.

Then the wake latency of a long poll on another agent (LISTEN/NOTIFY):
three agents on a fresh database; per round, a Fetch (v4, min_bytes 1,
max_wait 10 s) parked on agent C at the partition's end, 50 ms later one
record produced (Produce v3, acks=all) through agent A; measured from
A's acknowledgement (the commit, whose notification goes out as it
commits) and from the produce request's send to C's fetch answer, p50,
p99 and max over --wake-rounds rounds (raw requests with
tests/integration/kproto.py, so no client batching or fetch backoff
adds to it). `--only wake` runs just that.

`--ab DIR` runs only a before/after comparison instead: DIR holds the
other build's sluice and meta_bench; per round (--rounds, the two
builds in alternating order) pg-1 and pg-N at one offered rate (half of
a first sqlite-1 max phase, or --ab-rate), then meta_bench at
--capacity committers, each partition its own.

Only the standard library, psql (installed with the PostgreSQL server
pg-test.sh needs) and the bench binaries; loopback only. Prints a
markdown table; nothing is asserted.
"""
import argparse
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIB = 1 << 30

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ab import cpu_s, free_port  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import kproto  # noqa: E402


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


class Agent:
    def __init__(self, args, tmp, name, store, meta):
        self.port = free_port()
        self.bootstrap = "127.0.0.1:%d" % self.port
        self.log = os.path.join(tmp, name + ".log")
        os.makedirs(os.path.join(tmp, name), exist_ok=True)
        self.metrics_port = free_port()
        cmd = [args.sluice, "serve", "--listen", self.bootstrap,
               "--data", os.path.join(tmp, name), "--store", store,
               "--default-partitions", "8",
               "--metrics-listen", "127.0.0.1:%d" % self.metrics_port]
        if meta:
            cmd += ["--meta", meta]
        self.cmd = cmd
        with open(self.log, "wb") as lf:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=lf,
                                         stderr=lf)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("agent exited: %s" % open(self.log).read()[-2000:])
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("agent did not start")

    def cpu(self):
        return cpu_s(self.proc.pid)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def commit_hist(self):
        """The cumulative buckets of sluice_meta_commit_duration_seconds
        from /metrics: [(upper bound s, count)], +Inf last."""
        url = "http://127.0.0.1:%d/metrics" % self.metrics_port
        text = urllib.request.urlopen(url, timeout=10).read().decode()
        out = []
        for m in re.finditer(r'^sluice_meta_commit_duration_seconds_bucket\{le="([^"]+)"\} (\d+)',
                             text, re.M):
            le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
            out.append((le, int(m.group(2))))
        return out

    def commit_lines(self):
        """(objects, commit ms avg, transactions) of each stats line."""
        out = []
        for line in open(self.log, errors="replace"):
            m = re.search(r"write path: (\d+) objects.*commit ([0-9.]+) ms avg "
                          r"\((\d+) transactions\)", line)
            if m and int(m.group(1)) > 0:
                out.append((int(m.group(1)), float(m.group(2)), int(m.group(3))))
        return out


def hist_quantile(h0, h1, q):
    """Quantile q (0..1) in ms of the observations between two scrapes of
    a cumulative histogram, interpolated linearly inside its bucket (so
    only as exact as the buckets: 2.5 ms apart from 5 to 25 ms)."""
    d = [(le, c1 - c0) for (le, c1), (_, c0) in zip(h1, h0)]
    total = d[-1][1] if d else 0
    if total <= 0:
        return None
    want = q * total
    lo, below = 0.0, 0
    for le, cum in d:
        if cum >= want:
            if le == float("inf"):
                return lo * 1000
            inside = cum - below
            frac = (want - below) / inside if inside else 1.0
            return (lo + (le - lo) * frac) * 1000
        lo, below = le, cum
    return None


def psql(url, sql):
    out = subprocess.run(["psql", url, "-XAtqc", sql], capture_output=True, text=True,
                         timeout=60)
    if out.returncode:
        raise RuntimeError("psql: %s" % out.stderr)
    return out.stdout.strip()


def pg_counters(server_url, db):
    """(xact_commit of db, sum of n_tup_ins in db). The statistics reach
    the views up to ~1 s after a transaction (PostgreSQL 15 flushes them at
    most once a second), so callers wait before reading."""
    xact = int(psql(server_url, "select xact_commit from pg_stat_database "
                    "where datname = '%s'" % db))
    ins = int(psql(db_url(server_url, db), "select coalesce(sum(n_tup_ins), 0) "
                   "from pg_stat_user_tables") or 0)
    return xact, ins


def db_url(server_url, db):
    return server_url.rsplit("/", 1)[0] + "/" + db


def count_objects(store_dir):
    n = 0
    for _, _, files in os.walk(store_dir):
        n += sum(1 for f in files if not f.startswith("."))
    return n


def driver(args, bootstrap, name, label, duration, rate=None):
    cmd = [args.driver, "produce", "--bootstrap", bootstrap, "--topic", "bench",
           "--partitions", "8", "--msg-bytes", "1024", "--duration-s", str(duration),
           "--acks", "all", "--linger-ms", "5", "--name", name, "--label", label]
    if rate:
        cmd += ["--rate", str(int(rate))]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if out.returncode:
        raise RuntimeError("driver failed: %s" % out.stderr[-2000:])
    csv = [l for l in out.stdout.splitlines() if l.startswith("csv:")][-1].split(",")
    stat = dict(kv.split("=") for kv in
                [l for l in out.stdout.splitlines() if l.startswith("stat:")][-1][5:].split(","))
    return {"mb_s": float(csv[4]), "msgs_s": float(csv[5]), "p50": float(csv[6]),
            "p99": float(csv[7]), "bytes": float(stat["bytes"]), "cmd": " ".join(cmd)}


def partitions_led(agents, topic):
    """How many of topic's partitions each agent leads, as the first
    agent's Metadata says (clients of no zone: rendezvous hashing over
    every live agent). With 8 partitions and 3 agents one agent leads
    none in about one topic of nine (3 * (2/3)^8): it then commits
    nothing, whatever the load."""
    with kproto.connect(agents[0].bootstrap) as s:
        brokers, topics = kproto.metadata_v1_leaders(s, [topic])
    node = {port: nid for nid, _, port, _ in brokers}
    leaders = list(topics.get(topic, (0, {}))[1].values())
    return [leaders.count(node.get(a.port)) for a in agents]


def run_config(args, pg_url, label, n_agents, half_rate, results, max_phase=True):
    tmp = tempfile.mkdtemp(prefix="sluice-cbench-%s-" % label)
    store_dir = os.path.join(tmp, "objects")
    db = None
    meta = None
    if pg_url:
        db = "cbench_" + label.replace("-", "_")
        psql(pg_url, "create database %s" % db)
        meta = db_url(pg_url, db)
    agents = []
    try:
        for i in range(n_agents):
            agents.append(Agent(args, tmp, "agent-%d" % (i + 1), "file:" + store_dir, meta))
        time.sleep(2)  # heartbeats: every agent sees the others
        bootstrap = ",".join(a.bootstrap for a in agents)
        # Create the topic and let it reach every agent (250 ms poll).
        driver(args, bootstrap, "warmup", label, 1, rate=1000)
        time.sleep(1)
        led = partitions_led(agents, "bench")
        phases = [("max", args.duration_s, None)] if max_phase else []
        if half_rate is not None:
            phases.append(("half", args.latency_s, half_rate))
        for phase, dur, rate in phases:
            if phase == "half" and not rate:
                rate = results[(label, "max")]["msgs_s"] / 2
            idle = None
            if db:
                x0, _ = pg_counters(pg_url, db)
                time.sleep(args.idle_s)
                x1, _ = pg_counters(pg_url, db)
                idle = (x1 - x0) / args.idle_s
                time.sleep(1.2)
                xa, ia = pg_counters(pg_url, db)
            objs0 = count_objects(store_dir)
            cpu0 = sum(a.cpu() for a in agents)
            lines0 = [len(a.commit_lines()) for a in agents]
            hist0 = [a.commit_hist() for a in agents]
            t0 = time.time()
            r = driver(args, bootstrap, phase, label, dur, rate=rate)
            # the agents' next stats line (every 10 s) covers the tail
            wait_stats = 10.5 if phase == "half" else 1.5
            time.sleep(wait_stats)
            elapsed = time.time() - t0
            r["cpu_s"] = sum(a.cpu() for a in agents) - cpu0
            r["objects"] = count_objects(store_dir) - objs0
            r["cpu_s_gb"] = r["cpu_s"] / (r["bytes"] / 1e9) if r["bytes"] else 0
            cl = []
            for a, k in zip(agents, lines0):
                cl += a.commit_lines()[k:]
            objs = sum(o for o, _, _ in cl)
            r["agent_commit_ms"] = sum(o * ms for o, ms, _ in cl) / objs if objs else None
            hist1 = [a.commit_hist() for a in agents]
            r["commit_p50_p99"] = [(hist_quantile(h0, h1, 0.5), hist_quantile(h0, h1, 0.99),
                                    h1[-1][1] - h0[-1][1] if h1 else 0)
                                   for h0, h1 in zip(hist0, hist1)]
            r["agent_commits"] = sum(t for _, _, t in cl)
            r["agent_objects_logged"] = objs
            r["rate"] = rate
            r["led"] = led
            if db:
                time.sleep(1.2)
                xb, ib = pg_counters(pg_url, db)
                r["idle_xact_s"] = idle
                r["xact"] = xb - xa
                r["xact_net"] = (xb - xa) - idle * (elapsed + 1.2)
                r["rows"] = ib - ia
            results[(label, phase)] = r
            print("%s %s: %s" % (label, phase, {k: (round(v, 3) if isinstance(v, float) else v)
                                                for k, v in r.items() if k != "cmd"}),
                  flush=True)
        results[(label, "cmd")] = " ".join(agents[0].cmd)
    finally:
        for a in agents:
            a.stop()
        if args.keep:
            print("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def capacity(args, pg_url, db="cbench_capacity", modes=([], ["--shared"])):
    psql(pg_url, "create database %s" % db)
    url = db_url(pg_url, db)
    out = {}
    for extra in modes:
        cmd = [args.meta_bench, "--agents", args.capacity, "--seconds",
               str(args.capacity_s)] + extra + [url]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if p.returncode:
            raise RuntimeError("meta_bench: %s" % p.stderr[-2000:])
        for line in p.stdout.splitlines():
            if line.startswith("agents:"):
                f = line[7:].split(",")
                out[(int(f[0]), f[1])] = {"commits_s": float(f[4]), "p50": float(f[5]),
                                          "p99": float(f[6]), "max": float(f[7]),
                                          "errors": int(f[8])}
        out[("cmd", extra and "shared" or "own")] = " ".join(
            c if not c.startswith("postgresql://") else "postgresql://.../" + db
            for c in cmd)
    return out


def fetch_v4(sock, topic, partition, offset, max_wait_ms):
    """A parked fetch (min_bytes 1); returns its partition's high
    watermark."""
    part = kproto.i32(partition) + kproto.i64(offset) + kproto.i32(1 << 20)
    body = (kproto.i32(-1) + kproto.i32(max_wait_ms) + kproto.i32(1) +
            kproto.i32(1 << 20) + kproto.i8(0) +
            kproto.array([kproto.string(topic) + kproto.array([part])]))
    r = kproto.Reader(kproto.roundtrip(sock, 1, 4, body))
    r.i32()  # throttle
    r.i32()  # topics: 1
    r.string()
    r.i32()  # partitions: 1
    r.i32()
    err, hw = r.i16(), r.i64()
    if err:
        raise RuntimeError("fetch error %d" % err)
    return hw


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def wake(args, pg_url):
    """Fetch parked on the third agent, record produced via the first."""
    tmp = tempfile.mkdtemp(prefix="sluice-cbench-wake-")
    psql(pg_url, "create database cbench_wake")
    meta = db_url(pg_url, "cbench_wake")
    agents = []
    from_ack, from_send = [], []
    try:
        for i in range(3):
            agents.append(Agent(args, tmp, "agent-%d" % (i + 1),
                                "file:" + os.path.join(tmp, "objects"), meta))
        with kproto.connect(agents[0].bootstrap) as pa, \
                kproto.connect(agents[2].bootstrap) as fc:
            kproto.metadata_v1(pa, ["wake"])  # auto-created
            time.sleep(1.5)  # every agent has it
            for i in range(args.wake_rounds):
                got = {}

                def park():
                    got["hw"] = fetch_v4(fc, "wake", 0, i, 10000)
                    got["t"] = time.monotonic()
                t = threading.Thread(target=park)
                t.start()
                time.sleep(0.05)
                batch = kproto.record_batch([(None, b"w%d" % i, ())])
                sent = time.monotonic()
                res = kproto.produce_v3(pa, {"wake": {0: batch}})[("wake", 0)]
                acked = time.monotonic()
                t.join(15)
                if res != (0, i) or got.get("hw") != i + 1:
                    raise RuntimeError("round %d: produce %s, fetch hw %s" % (
                        i, res, got.get("hw")))
                from_ack.append((got["t"] - acked) * 1000)
                from_send.append((got["t"] - sent) * 1000)
    finally:
        for a in agents:
            a.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return {"rounds": len(from_ack),
            "ack": (pct(from_ack, 0.5), pct(from_ack, 0.99), max(from_ack)),
            "send": (pct(from_send, 0.5), pct(from_send, 0.99), max(from_send))}


def report_wake(w):
    print()
    print("## Wake latency: fetch parked on agent C, one record produced via "
          "agent A (%d rounds)" % w["rounds"])
    print()
    print("| from | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|")
    print("| A's acknowledgement (the commit) | %.2f | %.2f | %.2f |" % w["ack"])
    print("| the produce request's send | %.2f | %.2f | %.2f |" % w["send"])
    print()
    print("Target: a long-polling fetch on C wakes within 20 ms of A's commit "
          "(p99 from the acknowledgement %.2f ms)" % w["ack"][1])


def ab(args, pg_url):
    """Before/after: --ab DIR holds the other build's sluice and
    meta_bench; per round, both builds in alternating order, each: pg-1
    and pg-N at the same offered rate (--ab-rate, else half of a first
    sqlite-1 max phase of this build), then meta_bench --agents
    --capacity (partitions of their own)."""
    results = {}
    builds = {"base": (os.path.join(args.ab, "sluice"), os.path.join(args.ab, "meta_bench")),
              "new": (args.sluice, args.meta_bench)}
    rate = args.ab_rate
    if not rate:
        run_config(args, None, "sqlite-1", 1, None, results)
        rate = results[("sqlite-1", "max")]["msgs_s"] / 2
    rows = []
    for rnd in range(args.rounds):
        order = ["base", "new"] if rnd % 2 == 0 else ["new", "base"]
        for b in order:
            a = argparse.Namespace(**vars(args))
            a.sluice, a.meta_bench = builds[b]
            tag = "%s-r%d" % (b, rnd + 1)
            run_config(a, pg_url, "pg-1-" + tag, 1, rate, results, max_phase=False)
            run_config(a, pg_url, "pg-%d-%s" % (args.agents, tag), args.agents, rate, results,
                       max_phase=False)
            cap = capacity(a, pg_url, "cbench_cap_" + tag.replace("-", "_"), modes=([],))
            r1 = results[("pg-1-" + tag, "half")]
            rn = results[("pg-%d-%s" % (args.agents, tag), "half")]
            p99s = [p99 for _, p99, _ in rn["commit_p50_p99"] if p99 is not None]
            p50s = [p50 for p50, _, _ in rn["commit_p50_p99"] if p50 is not None]
            row = {"build": b, "round": rnd + 1, "pg1_p99": r1["p99"], "pgn_p99": rn["p99"],
                   "gap": rn["p99"] - r1["p99"],
                   "commit_p50": sum(p50s) / len(p50s) if p50s else None,
                   "commit_p99": sum(p99s) / len(p99s) if p99s else None,
                   "commit_p99_max": max(p99s) if p99s else None,
                   "commit_avg": rn["agent_commit_ms"],
                   "pg1_commit_p99": r1["commit_p50_p99"][0][1],
                   "xact_obj": rn["xact_net"] / rn["objects"] if rn["objects"] else None,
                   "cpu_s_gb": rn["cpu_s_gb"], "cap": cap}
            rows.append(row)
            print("ab %s: %s" % (tag, {k: (round(v, 2) if isinstance(v, float) else v)
                                      for k, v in row.items() if k != "cap"}), flush=True)
    return rate, rows, results


def report_ab(args, rate, rows, results):
    n = args.agents
    caps = [int(c) for c in args.capacity.split(",")]
    print()
    print("## Before/after (--ab): pg-1 and pg-%d at %.0f msgs/s offered (1 KiB x 8 "
          "partitions, acks=all, file store), meta_bench capacity" % (n, rate))
    print()
    print("| build | round | produce p99 pg-1 ms | produce p99 pg-%d ms | gap ms | "
          "commit p50 ms (pg-%d, mean of agents) | commit p99 ms (mean / worst agent) | "
          "commit avg ms | pg-1 commit p99 ms | PG xact/object | CPU s/GB | %s |" % (
              n, n, " | ".join("meta_bench %d: commits/s, p50/p99 ms" % c for c in caps)))
    print("|---|---|---|---|---|---|---|---|---|---|---|%s" % ("---|" * len(caps)))
    for r in rows:
        print("| %s | %d | %.1f | %.1f | %+.1f | %s | %s / %s | %s | %s | %s | %.1f | %s |" % (
            r["build"], r["round"], r["pg1_p99"], r["pgn_p99"], r["gap"],
            fmt(r["commit_p50"], 2), fmt(r["commit_p99"], 1), fmt(r["commit_p99_max"], 1),
            fmt(r["commit_avg"], 2), fmt(r["pg1_commit_p99"], 1), fmt(r["xact_obj"], 2),
            r["cpu_s_gb"], " | ".join(
                "%.0f, %.2f/%.2f" % (r["cap"][(c, "own")]["commits_s"], r["cap"][(c, "own")]["p50"],
                                     r["cap"][(c, "own")]["p99"]) if (c, "own") in r["cap"]
                else "-" for c in caps)))
    print()
    print("Medians over the rounds:")
    for b in ("base", "new"):
        rs = [r for r in rows if r["build"] == b]

        def med(key, rs=rs):
            xs = sorted(r[key] for r in rs if r[key] is not None)
            return xs[len(xs) // 2] if xs else None

        def medcap(c, k, rs=rs):
            xs = sorted(r["cap"][(c, "own")][k] for r in rs if (c, "own") in r["cap"])
            return xs[len(xs) // 2] if xs else None
        print("- %s: produce p99 gap pg-%d vs pg-1 %s ms; commit p50 %s ms, p99 %s ms "
              "(worst agent %s), avg %s ms; PG xact/object %s; meta_bench %s" % (
                  b, n, fmt(med("gap")), fmt(med("commit_p50"), 2), fmt(med("commit_p99")),
                  fmt(med("commit_p99_max")), fmt(med("commit_avg"), 2), fmt(med("xact_obj"), 2),
                  ", ".join("%d: %s commits/s p99 %s ms" % (c, fmt(medcap(c, "commits_s"), 0),
                                                            fmt(medcap(c, "p99"), 2))
                            for c in caps)))
    print()
    print("Commands: %s" % " ".join(sys.argv))
    for (label, phase), r in sorted(results.items()):
        if phase == "cmd":
            continue
        print("- %s %s: %s" % (label, phase, r["cmd"]))
        break


def fmt(v, nd=1):
    return "-" if v is None else ("%.*f" % (nd, v))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sluice", default=os.path.join(ROOT, "build/sluice"))
    ap.add_argument("--driver", default=os.path.join(ROOT, "build/bench/driver"))
    ap.add_argument("--meta-bench", default=os.path.join(ROOT, "build/bench/meta_bench"))
    ap.add_argument("--agents", type=int, default=3)
    ap.add_argument("--duration-s", type=int, default=10)
    ap.add_argument("--latency-s", type=int, default=20)
    ap.add_argument("--idle-s", type=float, default=5)
    ap.add_argument("--capacity", default="1,4,16")
    ap.add_argument("--capacity-s", type=float, default=3)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--wake-rounds", type=int, default=200)
    ap.add_argument("--only", choices=["wake"])
    ap.add_argument("--ab", metavar="DIR",
                    help="before/after only: DIR holds the other build's sluice and meta_bench")
    ap.add_argument("--rounds", type=int, default=3, help="--ab rounds")
    ap.add_argument("--ab-rate", type=float, help="--ab offered msgs/s (default: half of "
                    "sqlite-1's max, measured first)")
    args = ap.parse_args()

    state = tempfile.mkdtemp(prefix="sluice-cbench-pg-")
    pgsh = os.path.join(ROOT, "tools/pg-test.sh")
    load0 = loadavg()
    subprocess.run([pgsh, "start", state], check=True, stdout=subprocess.DEVNULL)
    pg_url = open(os.path.join(state, "url")).read().strip()
    results = {}
    if args.ab:
        try:
            rate, rows, res = ab(args, pg_url)
        finally:
            subprocess.run([pgsh, "stop", state])
            shutil.rmtree(state, ignore_errors=True)
        report_ab(args, rate, rows, res)
        print()
        print("Load average at start %s, at end %s; %d CPUs" % (load0, loadavg(),
                                                             os.cpu_count()))
        return
    if args.only == "wake":
        try:
            w = wake(args, pg_url)
        finally:
            subprocess.run([pgsh, "stop", state])
            shutil.rmtree(state, ignore_errors=True)
        report_wake(w)
        print()
        print("Load average at start %s, at end %s; %d CPUs" % (load0, loadavg(),
                                                             os.cpu_count()))
        return
    try:
        run_config(args, None, "sqlite-1", 1, 0, results)
        half = results[("sqlite-1", "max")]["msgs_s"] / 2
        # the same offered rate (half of sqlite-1's max) for every config
        run_config(args, pg_url, "pg-1", 1, half, results)
        run_config(args, pg_url, "pg-%d" % args.agents, args.agents, half, results)
        cap = capacity(args, pg_url)
        w = wake(args, pg_url)
    finally:
        subprocess.run([pgsh, "stop", state])
        shutil.rmtree(state, ignore_errors=True)
    load1 = loadavg()
    report(args, results, cap, half, load0, load1)
    report_wake(w)


def report(args, results, cap, half, load0, load1):
    labels = ["sqlite-1", "pg-1", "pg-%d" % args.agents]
    print()
    print("## Produce, 1 KiB x 8 partitions, acks=all, file store")
    print()
    print("| config | phase | offered msgs/s | MB/s | p50 ms | p99 ms | objects | "
          "agent commit ms avg | agents' CPU s/GB | PG xact/object (net of idle) | "
          "PG rows/object | PG xact/GiB | PG rows/GiB | idle PG xact/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for label in labels:
        for phase in ("max", "half"):
            r = results.get((label, phase))
            if not r:
                continue
            gib = r["bytes"] / GIB
            o = r["objects"] or None
            print("| %s | %s | %s | %.1f | %.1f | %.1f | %d | %s | %.1f | %s | %s | %s | %s | %s |" % (
                label, phase, fmt(r["rate"], 0) if r["rate"] else "max", r["mb_s"], r["p50"],
                r["p99"], r["objects"], fmt(r["agent_commit_ms"], 2), r["cpu_s_gb"],
                fmt(r["xact_net"] / o, 2) if "xact" in r and o else "-",
                fmt(r["rows"] / o, 2) if "rows" in r and o else "-",
                fmt(r["xact_net"] / gib, 0) if "xact" in r else "-",
                fmt(r["rows"] / gib, 0) if "rows" in r else "-",
                fmt(r.get("idle_xact_s"), 1)))
    print()
    print("## Metadata commit latency per agent (sluice_meta_commit_duration_seconds, "
          "interpolated in its buckets)")
    print()
    print("| config | phase | agent | partitions led | commits observed | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|")
    for label in labels:
        for phase in ("max", "half"):
            r = results.get((label, phase))
            for i, (p50, p99, n) in enumerate(r["commit_p50_p99"] if r else []):
                print("| %s | %s | %d | %d | %d | %s | %s |" % (
                    label, phase, i + 1, r["led"][i], n, fmt(p50, 2), fmt(p99, 2)))
    print()
    print("An agent that leads none of the topic's partitions commits nothing: "
          "rendezvous hashing of 8 partitions over 3 agents leaves one without any "
          "in about one topic of nine.")
    print()
    print("## Capacity model: meta_bench committers on one PostgreSQL (fsync on, loopback)")
    print()
    print("| committers | partitions | commits/s | p50 ms | p99 ms | max ms | errors | "
          "agents at 4 objects/s |")
    print("|---|---|---|---|---|---|---|---|")
    best = 0
    for (n, mode), c in sorted((k, v) for k, v in cap.items() if k[0] != "cmd"):
        best = max(best, c["commits_s"]) if mode == "own" else best
        print("| %d | %s | %.0f | %.2f | %.2f | %.2f | %d | %.0f |" % (
            n, mode, c["commits_s"], c["p50"], c["p99"], c["max"], c["errors"],
            c["commits_s"] / 4))
    idle = results.get(("pg-%d" % args.agents, "half"), {}).get("idle_xact_s")
    per_agent_idle = idle / args.agents if idle else 0
    print()
    print("Best sustained: %.0f commits/s -> %.0f agents at 4 objects/s (commits only); "
          "%.0f counting each agent's idle transactions (%.1f/s: heartbeat, polls)" % (
              best, best / 4, best / (4 + per_agent_idle), per_agent_idle))
    print()
    pg1 = results.get(("pg-1", "half"))
    pgn = results.get(("pg-%d" % args.agents, "half"))
    sq = results.get(("sqlite-1", "half"))
    print("## Targets")
    if pgn:
        print("- PostgreSQL commit at %d agents, half load: p99 per agent %s ms "
              "(/metrics buckets), avg %s ms; synthetic p99 at 4 committers %s ms "
              "(target p99 <= 15 ms)" % (
                  args.agents, ", ".join(fmt(p99, 1) for _, p99, _ in pgn["commit_p50_p99"]),
                  fmt(pgn["agent_commit_ms"], 2),
                  fmt(cap.get((4, "own"), {}).get("p99"), 2)))
        for ref in (sq, pg1):
            if ref:
                print("- produce p99 at half load: %s %.1f ms vs %s %.1f ms: %+.1f ms "
                      "(target <= 10 ms)" % (
                          "pg-%d" % args.agents, pgn["p99"],
                          "sqlite-1" if ref is sq else "pg-1", ref["p99"],
                          pgn["p99"] - ref["p99"]))
        if pgn["objects"]:
            print("- PostgreSQL transactions per object (net of idle): %.2f (target <= 1); "
                  "agents' own count: %d commit transactions for %d objects logged" % (
                      pgn["xact_net"] / pgn["objects"], pgn["agent_commits"],
                      pgn["agent_objects_logged"]))
    print()
    print("Load average at start %s, at end %s; %d CPUs" % (load0, load1, os.cpu_count()))
    print("Commands:")
    for label in labels:
        if (label, "cmd") in results:
            print("- %s agent: %s" % (label, re.sub(r"postgresql://\S+", "postgresql://...",
                                                    results[(label, "cmd")])))
        for phase in ("max", "half"):
            r = results.get((label, phase))
            if r:
                print("- %s %s: %s" % (label, phase, r["cmd"]))
    for mode in ("own", "shared"):
        print("- capacity %s: %s" % (mode, cap[("cmd", mode)]))


if __name__ == "__main__":
    main()
