#!/usr/bin/env python3
"""suite.py — Sluice's benchmark suite (what `make bench` runs, via run.sh).

Runs every workload of issue 5, in one invocation, against three targets:

  file  Sluice with the file store (a fresh temporary data dir)
  tmpfs the same with the data dir on /dev/shm, produce and latency only:
        the broker's own cost without the device (not durable)
  s3    Sluice with the S3 store on a local s3rver (skipped, with a note,
        when s3rver or the S3 store is missing)
  mock  librdkafka's in-memory mock cluster (`driver mock-serve`, a process
        of its own): the reference

Workloads (bench/README.md has the details):

  produce-1k / produce-100  max produce throughput, 1 KiB and 100 B messages
  latency                   produce latency at half of produce-1k's rate
  e2e                       produce() to consume, at a fixed rate
  catchup-cold / -warm      read of a backlog: freshly started broker (empty cache)
                            (OS page cache dropped when allowed), then again
  scale-pN                  produce throughput with N partitions (+ Metadata
                            of every topic timed after the largest)
  scale-pN-sticky           the largest N again, keyless messages placed by
                            the client's sticky partitioner (KIP-480)
  conns-idle / conns-active N raw connections (ApiVersions + Metadata): RSS
                            per idle connection; request rate when active

Each workload gets a fresh broker (catch-up: the one that wrote the backlog,
then a restart), so its peak RSS (VmHWM), CPU seconds and objects written are
its own. Results: OUT/results.csv, OUT/table.md, OUT/*.png (gnuplot), and the
block between the bench markers in bench/RESULTS.md.

Only the standard library; configuration comes from the environment (see
run.sh). The suite never fails on slow numbers: its exit code is non-zero
only when a target could not run at all.
"""
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def env(name, default):
    v = os.environ.get(name)
    return v if v not in (None, "") else default


def env_int(name, default):
    return int(env(name, str(default)))


QUICK = env("QUICK", "0") == "1"
SMOKE = env("SMOKE", "0") == "1"
BUILD = env("BUILD", os.path.join(ROOT, "build"))
if not os.path.isabs(BUILD):
    BUILD = os.path.join(ROOT, BUILD)
SLUICE = env("SLUICE_BIN", os.path.join(BUILD, "sluice"))
DRIVER = env("DRIVER", os.path.join(BUILD, "bench", "driver"))
S3RVER = env("S3RVER", os.path.join(ROOT, "tests", "integration", "js",
                                    "node_modules", ".bin", "s3rver"))
OUT = env("OUT", os.path.join(ROOT, "bench", "results"))
RESULTS = env("RESULTS", os.path.join(ROOT, "bench", "RESULTS.md"))
WRITE_RESULTS = env("WRITE_RESULTS", "0" if (QUICK or SMOKE) else "1") == "1"
TARGETS = env("TARGETS", "mock,file" if SMOKE else "file,tmpfs,s3,mock").split(",")
PERF = env("PERF", "0") == "1"
DROP_CACHES = env("DROP_CACHES", "0" if SMOKE else "1") == "1"
KEEP = env("KEEP", "0") == "1"

if SMOKE:
    D, D_SCALE, D_CONN, HOLD = 1, 1, 0.5, 0
    BACKLOG_MIB = 4
    SCALE = [1, 100]
    CONNS = [1, 10]
elif QUICK:
    D, D_SCALE, D_CONN, HOLD = 3, 3, 2, 1
    BACKLOG_MIB = 128
    SCALE = [1, 100, 1000, 10000]
    CONNS = [1, 100, 1000]
else:
    D, D_SCALE, D_CONN, HOLD = 10, 8, 5, 2
    BACKLOG_MIB = 1024
    SCALE = [1, 100, 1000, 10000]
    CONNS = [1, 100, 1000]
D = env_int("DURATION_S", D)
BACKLOG_MIB = env_int("BACKLOG_MIB", BACKLOG_MIB)
SCALE = [int(x) for x in env("SCALE", ",".join(map(str, SCALE))).split(",")]
CONNS = [int(x) for x in env("CONNS", ",".join(map(str, CONNS))).split(",")]
PARTITIONS = env_int("PARTITIONS", 8)
CATCHUP_PARTITIONS = env_int("CATCHUP_PARTITIONS", 64)
E2E_RATE = env_int("E2E_RATE", 1000 if SMOKE else 10000)
LINGER_MS = env_int("LINGER_MS", 5)
FETCH_WAIT_MS = env_int("FETCH_WAIT_MS", 10)
# Smaller client queue for the scale runs, so that draining it after the
# timed part stays short even when many partitions make the broker slow.
SCALE_QUEUE_MSGS = 50000
# objects-rate: a fixed offered rate (MB/s of 1 KiB messages) at each
# partition count; objects/s and PUTs/s must not depend on the count.
OBJ_RATE_MB = env_int("OBJ_RATE_MB", 20)
OBJ_RATE_PARTS = [int(x) for x in env("OBJ_RATE_PARTS", "1,100" if SMOKE else
                                      "1,100,1000,10000").split(",")]
D_RATE = env_int("OBJ_RATE_DURATION_S", 1 if SMOKE else 12)

# AWS S3 Standard list prices (us-east-1), dollars per request.
PUT_USD = 0.005 / 1000
GET_USD = 0.0004 / 1000
GIB = 1 << 30

FLUSH_MS = {"file": 5, "s3": 250}  # the broker's defaults per store

log_lines = []


def say(msg):
    print(msg, flush=True)
    log_lines.append(msg)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, proc, secs=30):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def proc_kib(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def strip_ansi(s):
    return re.sub(r"\x1b\[[0-9;]*m", "", s)


# --------------------------------------------------------------------------
# Targets: something that serves Kafka on a port and can be restarted

class S3rver:
    """A local s3rver; counts requests from its (non-silent) log."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "s3rver")
        self.log_path = os.path.join(tmp, "s3rver.log")
        self.port = free_port()
        self.bucket = "bench"
        self.proc = None

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        e = dict(os.environ)
        e["NODE_OPTIONS"] = (e.get("NODE_OPTIONS", "") +
                             " --openssl-legacy-provider").strip()
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            ["node", S3RVER, "-d", self.dir, "-a", "127.0.0.1", "-p",
             str(self.port), "--configure-bucket", self.bucket],
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf,
            env=e, cwd=os.path.dirname(os.path.dirname(os.path.dirname(S3RVER))))
        if not wait_port(self.port, self.proc, 20):
            raise RuntimeError("s3rver did not start (log: %s)" % self.log_path)
        return self

    def counts(self):
        """{'PUT': n, 'GET': n, 'LIST': n} answered so far. s3rver's log
        line for a response has the path and status but not the method:
        PUTs are its "Stored object" lines, deletes "Deleted object", and
        the other responses for object paths are GETs (HEADs included)."""
        c = {"PUT": 0, "GET": 0, "LIST": 0, "DELETE": 0}
        obj_responses = 0
        try:
            with open(self.log_path, errors="replace") as fh:
                for line in fh:
                    line = strip_ansi(line)
                    if "Stored object" in line:
                        c["PUT"] += 1
                    elif "Deleted object" in line:
                        c["DELETE"] += 1
                    elif re.match(r"info: \?\S* \d{3} ", line):
                        c["LIST"] += 1
                    elif re.match(r"info: /\S+ \d{3} ", line):
                        obj_responses += 1
        except OSError:
            pass
        c["GET"] = max(0, obj_responses - c["PUT"] - c["DELETE"])
        return c

    def objects(self, prefix):
        n = 0
        for _, _, files in os.walk(os.path.join(self.dir, self.bucket, prefix)):
            n += sum(1 for f in files if f.endswith(".obj._S3rver_object"))
        return n

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()


class Target:
    name = "?"
    is_ref = False

    def __init__(self, tmp):
        self.tmp = tmp
        self.proc = None
        self.bootstrap = None
        self.runs = 0

    def start(self, extra=(), fresh=True):
        raise NotImplementedError

    def stop(self, final=False):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def objects(self):
        return None

    def requests(self):
        return {}

    def flush_ms(self):
        return None


class Sluice(Target):
    def __init__(self, tmp, store, name=None):
        super().__init__(tmp)
        self.name = name or store
        self.store = store
        self.s3 = None
        self.prefix = None
        self.cmd = None

    def _data(self):
        return os.path.join(self.tmp, "%s-data-%d" % (self.name, self.runs))

    def start(self, extra=(), fresh=True):
        if fresh:
            if self.name == "tmpfs" and self.runs:
                # A finished run's data is RAM on tmpfs: free it, or the
                # later runs pay for reclaim (p99 16 -> 23-31 ms at the
                # same load with 3 GiB left free, by hand).
                shutil.rmtree(self._data(), ignore_errors=True)
            self.runs += 1
            self.prefix = "run%d" % self.runs
        data = self._data()
        os.makedirs(data, exist_ok=True)
        port = free_port()
        self.bootstrap = "127.0.0.1:%d" % port
        cmd = [SLUICE, "serve", "--listen", self.bootstrap, "--data", data,
               "--log-level", "info"]
        e = dict(os.environ)
        if self.store == "s3":
            cmd += ["--store", "s3://%s/%s?endpoint=http://127.0.0.1:%d&region=us-east-1"
                    % (self.s3.bucket, self.prefix, self.s3.port)]
            e["AWS_ACCESS_KEY_ID"] = "S3RVER"
            e["AWS_SECRET_ACCESS_KEY"] = "S3RVER"
        cmd += list(extra)
        self.cmd = " ".join(cmd).replace(self.tmp, "$TMP")
        self.logf = open(os.path.join(self.tmp, "%s-broker.log" % self.name), "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=self.logf, env=e)
        if not wait_port(port, self.proc):
            raise RuntimeError("broker did not start: %s" % self.cmd)

    def objects(self):
        if self.store == "s3":
            return self.s3.objects(self.prefix)
        n = 0
        for _, _, files in os.walk(self._data()):
            n += sum(1 for f in files if f.endswith(".obj"))
        return n

    def requests(self):
        return self.s3.counts() if self.store == "s3" else {}

    def seal_times_ms(self):
        """Seal times of the objects written in this run, from their keys
        (objects/WALLMS-NONCE-COUNTER.obj)."""
        if self.store == "s3":
            top, suffix = os.path.join(self.s3.dir, self.s3.bucket, self.prefix), ".obj._S3rver_object"
        else:
            top, suffix = self._data(), ".obj"
        ts = []
        for _, _, files in os.walk(top):
            for fn in files:
                m = re.match(r"(\d{13})-[0-9a-f]{16}-[0-9a-f]{8}" + re.escape(suffix) + "$", fn)
                if m:
                    ts.append(int(m.group(1)))
        return sorted(ts)

    def flush_ms(self):
        return FLUSH_MS[self.store]


class Mock(Target):
    name = "mock"
    is_ref = True

    def __init__(self, tmp):
        super().__init__(tmp)
        self.topics = []
        self.cmd = None

    def stop(self, final=False):
        # The smoke keeps one mock for every workload: its start-up takes
        # up to a couple of seconds now and then.
        if not SMOKE or final:
            super().stop()

    def start(self, extra=(), fresh=True):
        if SMOKE and self.proc and self.proc.poll() is None:
            return
        self.runs += 1
        cmd = [DRIVER, "mock-serve"]
        for t, n in self.topics:
            cmd += ["--topic", "%s:%d" % (t, n)]
        self.cmd = " ".join(cmd)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        m = re.match(r"bootstrap (\S+)", line)
        if not m:
            raise RuntimeError("mock-serve did not start")
        self.bootstrap = m.group(1)


# --------------------------------------------------------------------------
# Running the driver and recording one row per run

CSV_COLS = ["workload", "target", "msg_bytes", "partitions", "mb_s", "msgs_s",
            "p50_ms", "p99_ms", "p999_ms", "ratio_to_ref", "peak_rss_mib",
            "rss_end_mib", "cpu_s", "objects", "objects_per_s", "gib", "puts",
            "gets", "puts_per_gib", "gets_per_gib", "usd_per_gib",
            "rss_per_conn_kib", "exit", "puts_per_s"]

rows = []          # dicts with CSV_COLS keys
commands = []      # (target, workload, command line)


def driver(tgt, workload, args, timeout):
    """Runs the driver; returns (csv dict or None, stat dict, exit code)."""
    cmd = [DRIVER] + args
    t0 = time.monotonic()
    commands.append((tgt.name, workload, " ".join(
        a.replace(tgt.tmp, "$TMP") for a in ["bench/driver"] + args)))
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=timeout)
        out, err, rc = p.stdout, p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err, rc = "timeout after %d s" % timeout, 124
    with open(os.path.join(tgt.tmp, "driver.log"), "a") as f:
        f.write("== %s %s (%.1f s)\n%s\n%s\n" % (tgt.name, " ".join(cmd),
                                                  time.monotonic() - t0, out, err))
    csv, stat = None, {}
    for line in out.splitlines():
        if line.startswith("csv:"):
            v = line[4:].split(",")
            csv = dict(zip(CSV_COLS[:9], v))
        elif line.startswith("stat:"):
            for kv in line[5:].split(","):
                k, _, val = kv.partition("=")
                stat[k] = float(val)
        else:
            say("   " + line)
    if rc != 0:
        say("   (driver exit %d) %s" % (rc, err.strip().splitlines()[-1] if err.strip() else ""))
    return csv, stat, rc


def record(tgt, workload, csv, rc, extra=None):
    r = {k: "" for k in CSV_COLS}
    r.update(workload=workload, target=tgt.name, exit=rc)
    if csv:
        for k in CSV_COLS[2:9]:
            r[k] = csv.get(k, "")
    if extra:
        r.update(extra)
    rows.append(r)
    return r


def broker_side(tgt, cpu0, obj0, req0, elapsed, gib, reading=False):
    """Peak RSS, CPU, objects and requests for the run that just ended."""
    x = {}
    pid = tgt.pid
    if pid:
        hwm, rss, cpu = proc_kib(pid, "VmHWM"), proc_kib(pid, "VmRSS"), proc_cpu_s(pid)
        if hwm is not None:
            x["peak_rss_mib"] = "%.1f" % (hwm / 1024)
        if rss is not None:
            x["rss_end_mib"] = "%.1f" % (rss / 1024)
        if cpu is not None and cpu0 is not None:
            x["cpu_s"] = "%.2f" % (cpu - cpu0)
    obj = tgt.objects()
    if obj is not None and obj0 is not None and not reading:
        x["objects"] = obj - obj0
        if elapsed:
            x["objects_per_s"] = "%.1f" % ((obj - obj0) / elapsed)
    if gib:
        x["gib"] = "%.3f" % gib
    req = tgt.requests()
    if tgt.name == "s3":
        puts = req.get("PUT", 0) - req0.get("PUT", 0)
        gets = req.get("GET", 0) - req0.get("GET", 0)
        if reading and not puts:
            puts = None
    elif getattr(tgt, "store", None) == "file" and obj is not None and obj0 is not None and not reading:
        # What S3 would bill for the same objects: one PUT each. Reads of
        # the file store are not counted.
        puts, gets = obj - obj0, None
    else:
        puts = gets = None
    if puts is not None:
        x["puts"] = puts
        if elapsed:
            x["puts_per_s"] = "%.1f" % (puts / elapsed)
    if gets is not None:
        x["gets"] = gets
    if gib and gib > 0:
        usd = 0.0
        if puts is not None:
            x["puts_per_gib"] = "%.0f" % (puts / gib)
            usd += puts / gib * PUT_USD
        if gets is not None:
            x["gets_per_gib"] = "%.0f" % (gets / gib)
            usd += gets / gib * GET_USD
        if puts is not None or gets is not None:
            x["usd_per_gib"] = "%.5f" % usd
    return x


def snapshot(tgt):
    return (proc_cpu_s(tgt.pid) if tgt.pid else None, tgt.objects(), tgt.requests())


def timed_driver(tgt, workload, args, timeout, reading=False):
    """Runs one workload against the running target and records its row."""
    say("== %s %s" % (tgt.name, workload))
    cpu0, obj0, req0 = snapshot(tgt)
    csv, stat, rc = driver(tgt, workload, args + ["--label", tgt.name, "--name", workload],
                           timeout)
    gib = stat.get("bytes", 0) / GIB
    # Let the broker's last commits land in the object count.
    time.sleep(0.2)
    x = broker_side(tgt, cpu0, obj0, req0, stat.get("elapsed_s"), gib, reading)
    return record(tgt, workload, csv, rc, x), csv


def produce_args(tgt, topic, partitions, msg_bytes, duration, extra=()):
    if SMOKE and "--count" not in extra:
        # A few thousand messages: the smoke checks that each workload
        # completes, not how fast.
        extra = list(extra) + ["--count", "5000", "--queue-msgs", "5000"]
    return ["produce", "--bootstrap", tgt.bootstrap, "--topic", topic,
            "--partitions", str(partitions), "--msg-bytes", str(msg_bytes),
            "--duration-s", str(duration), "--acks", "all", "--linger-ms",
            str(LINGER_MS)] + list(extra)


def drop_page_cache():
    if not DROP_CACHES:
        return False
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("1\n")
        return True
    except OSError:
        return False


NOTES = []


def run_target(tgt, outdir):
    # Topics the mock must know in advance (it has no CreateTopics).
    if isinstance(tgt, Mock):
        tgt.topics = [("bench-1k", PARTITIONS), ("bench-100", PARTITIONS),
                      ("bench-latency", PARTITIONS), ("bench-e2e", PARTITIONS),
                      ("bench-catchup", CATCHUP_PARTITIONS)] + \
                     [("bench-scale-%d" % n, n) for n in SCALE]
    tmo = D + 120
    cdf = lambda w: os.path.join(outdir, "cdf-%s-%s.txt" % (w, tgt.name))

    # 1. max produce throughput, 1 KiB and 100 B
    tgt.start()
    r1k, csv1k = timed_driver(tgt, "produce-1k",
                              produce_args(tgt, "bench-1k", PARTITIONS, 1024, D), tmo)
    tgt.stop()
    tgt.start()
    timed_driver(tgt, "produce-100", produce_args(tgt, "bench-100", PARTITIONS, 100, D), tmo)
    tgt.stop()

    # 2. latency at half of the max message rate
    tgt.start()
    half = int(float(csv1k["msgs_s"]) / 2) if csv1k and float(csv1k["msgs_s"] or 0) > 2 else 1000
    if tgt.name == "tmpfs" and row_of("file", "produce-1k") and f(row_of("file", "produce-1k")["msgs_s"]):
        # The file store's offered rate: the same load without the device.
        half = int(f(row_of("file", "produce-1k")["msgs_s"]) / 2)
    timed_driver(tgt, "latency", produce_args(tgt, "bench-latency", PARTITIONS, 1024, D,
                                              ["--rate", str(half), "--cdf", cdf("latency")]),
                 tmo)
    tgt.stop()

    # 3. end to end
    tgt.start()
    timed_driver(tgt, "e2e", ["e2e", "--bootstrap", tgt.bootstrap, "--topic", "bench-e2e",
                              "--partitions", str(PARTITIONS), "--msg-bytes", "1024",
                              "--duration-s", str(D), "--rate", str(E2E_RATE),
                              "--linger-ms", str(LINGER_MS), "--fetch-wait-ms",
                              str(FETCH_WAIT_MS), "--cdf", cdf("e2e")], tmo)
    tgt.stop()
    if tgt.name == "tmpfs":
        return  # the write path without the device: 1-3 only

    # 4. catch-up read of a backlog: cold (a freshly started broker at
    # default settings, its read cache empty, OS page cache dropped when
    # allowed), then warm (the same read again)
    tgt.start()
    count = BACKLOG_MIB * 1024 * 1024 // 1024
    timed_driver(tgt, "catchup-load", produce_args(tgt, "bench-catchup", CATCHUP_PARTITIONS,
                                                   1024, 3600, ["--count", str(count)]),
                 600)
    if not tgt.is_ref:
        tgt.stop()
        dropped = drop_page_cache()
        if tgt.name == "file":
            NOTES.append("catchup-cold (file): OS page cache %s before the read" %
                         ("dropped" if dropped else "NOT dropped (no permission or DROP_CACHES=0)"))
        tgt.start(fresh=False)
    cons = lambda: ["consume", "--bootstrap", tgt.bootstrap, "--topic", "bench-catchup",
                    "--partitions", str(CATCHUP_PARTITIONS), "--msg-bytes", "1024"]
    timed_driver(tgt, "catchup-cold", cons(), 600, reading=True)
    if not tgt.is_ref:
        # Warm: a broker at default settings, OS page cache (or s3rver's)
        # warm from the cold read.
        tgt.stop()
        tgt.start(fresh=False)
    timed_driver(tgt, "catchup-warm", cons(), 600, reading=True)
    tgt.stop()

    # 5a. partitions
    for n in SCALE:
        tgt.start()
        timed_driver(tgt, "scale-p%d" % n,
                     produce_args(tgt, "bench-scale-%d" % n, n, 1024, D_SCALE,
                                  ["--queue-msgs", str(SCALE_QUEUE_MSGS)]), D_SCALE + 240)
        if n == max(SCALE):
            timed_driver(tgt, "metadata", ["metadata", "--bootstrap", tgt.bootstrap,
                                           "--repeat", "5" if SMOKE else "20"], 240)
        tgt.stop()

    # 5a'. the largest partition count again, with keyless messages placed
    # by the client's own partitioner (sticky, KIP-480: what a producer
    # without keys gets by default). With the explicit round robin above,
    # one producer sends one-message batches at 10,000 partitions and the
    # client is the bottleneck (the reference is no faster there).
    big = max(SCALE)
    tgt.start()
    timed_driver(tgt, "scale-p%d-sticky" % big,
                 produce_args(tgt, "bench-scale-%d" % big, big, 1024, D_SCALE,
                              ["--queue-msgs", str(SCALE_QUEUE_MSGS), "--partitioner", "sticky"]),
                 D_SCALE + 240)
    tgt.stop()

    # 5c. objects per second at a fixed offered rate: the seal policy
    # (flush interval or flush bytes) must give the same object rate
    # whatever the partition count. Objects/s is taken in the steady part
    # (seal times from the keys, first and last second left out).
    if not tgt.is_ref:
        rate = max(1, int(OBJ_RATE_MB * 1e6 / 1024))
        for n in OBJ_RATE_PARTS:
            tgt.start()
            r, _ = timed_driver(tgt, "objects-rate-p%d" % n,
                                produce_args(tgt, "bench-orate-%d" % n, n, 1024, D_RATE,
                                             ["--rate", str(rate), "--queue-msgs",
                                              str(SCALE_QUEUE_MSGS)]), D_RATE + 240)
            ts = tgt.seal_times_ms()
            mid = [t for t in ts if ts[0] + 1000 <= t <= ts[-1] - 1000] if ts else []
            if len(mid) >= 2 and mid[-1] > mid[0]:
                r["objects_per_s"] = "%.2f" % ((len(mid) - 1) * 1000.0 / (mid[-1] - mid[0]))
            say("   %s: %s objects/s (steady), %s PUTs/s at %d MB/s offered"
                % (r["workload"], r["objects_per_s"] or "-", r["puts_per_s"] or "-", OBJ_RATE_MB))
            tgt.stop()

    # 5b. connections
    for n in CONNS:
        tgt.start()
        time.sleep(0.1 if SMOKE else 0.5)
        base = proc_kib(tgt.pid, "VmRSS")
        ready = os.path.join(tgt.tmp, "ready-%s-%d" % (tgt.name, n))
        if os.path.exists(ready):
            os.unlink(ready)
        say("== %s conns-idle %d" % (tgt.name, n))
        args = ["conns", "--bootstrap", tgt.bootstrap, "--connections", str(n),
                "--mode", "idle", "--hold-s", str(HOLD + 1 if not SMOKE else 0.5), "--ready-file", ready,
                "--label", tgt.name, "--name", "conns-idle"]
        commands.append((tgt.name, "conns-idle", " ".join(["bench/driver"] + args)))
        p = subprocess.Popen([DRIVER] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        deadline = time.monotonic() + 60
        while not os.path.exists(ready) and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.1 if SMOKE else 0.5)
        held = proc_kib(tgt.pid, "VmRSS")
        out, err = p.communicate(timeout=120)
        csv = None
        for line in out.splitlines():
            if line.startswith("csv:"):
                csv = dict(zip(CSV_COLS[:9], line[4:].split(",")))
            else:
                say("   " + line)
        x = {}
        if base is not None and held is not None:
            x["rss_end_mib"] = "%.1f" % (held / 1024)
            x["rss_per_conn_kib"] = "%.1f" % ((held - base) / n)
            say("   broker RSS %.1f MiB before, %.1f MiB with %d idle connections: %.1f KiB each"
                % (base / 1024, held / 1024, n, (held - base) / n))
        hwm = proc_kib(tgt.pid, "VmHWM")
        if hwm is not None:
            x["peak_rss_mib"] = "%.1f" % (hwm / 1024)
        record(tgt, "conns-idle", csv, p.returncode, x)
        timed_driver(tgt, "conns-active", ["conns", "--bootstrap", tgt.bootstrap,
                                           "--connections", str(n), "--mode", "active",
                                           "--duration-s", str(D_CONN)], D_CONN + 120)
        tgt.stop()


# --------------------------------------------------------------------------
# Profiles

def perf_profile(tmp, outdir):
    """perf record -g of a file-store broker during produce-1k and during a
    cold catch-up read; the top of each report goes to OUT/perf-*.txt."""
    if not shutil.which("perf"):
        NOTES.append("PERF=1 but perf is not installed")
        return
    tgt = Sluice(tmp, "file")

    def recorded(name, secs, fn):
        data = os.path.join(tmp, "perf-%s.data" % name)
        pr = subprocess.Popen(["perf", "record", "-g", "-o", data, "-p", str(tgt.pid), "--",
                               "sleep", str(secs)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        fn()
        pr.wait()
        rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--percent-limit",
                              "0.7", "--stdio", "-g", "none"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True).stdout
        top = [l for l in rep.splitlines() if l.strip() and not l.startswith("#")][:40]
        with open(os.path.join(outdir, "perf-%s.txt" % name), "w") as f:
            f.write("\n".join(top) + "\n")
        say("== perf %s (top)\n%s" % (name, "\n".join(top[:15])))

    tgt.start()
    recorded("produce", D + 2, lambda: driver(tgt, "perf-produce", produce_args(
        tgt, "bench-1k", PARTITIONS, 1024, D), D + 120))
    tgt.stop()
    tgt.start()
    count = min(BACKLOG_MIB, 512) * 1024
    driver(tgt, "perf-load", produce_args(tgt, "bench-catchup", CATCHUP_PARTITIONS, 1024, 3600,
                                          ["--count", str(count)]), 600)
    tgt.stop()
    drop_page_cache()
    tgt.start(fresh=False)
    recorded("catchup", 8, lambda: driver(tgt, "perf-catchup", [
        "consume", "--bootstrap", tgt.bootstrap, "--topic", "bench-catchup",
        "--partitions", str(CATCHUP_PARTITIONS), "--msg-bytes", "1024"], 600))
    tgt.stop()


# --------------------------------------------------------------------------
# Report: ratios, table, targets, plots, RESULTS.md

def f(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def add_ratios():
    ref = {r["workload"]: r for r in rows if r["target"] == "mock"}
    for r in rows:
        m = ref.get(r["workload"])
        if not m or r["target"] == "mock":
            continue
        w = r["workload"]
        if w in ("latency", "e2e", "metadata"):
            a, b = f(r["p99_ms"]), f(m["p99_ms"])  # lower is better
        elif w.startswith("conns-idle"):
            a, b = f(r["rss_per_conn_kib"]), f(m["rss_per_conn_kib"])
        elif w.startswith("conns-active"):
            a, b = f(r["msgs_s"]), f(m["msgs_s"])
        else:
            a, b = f(r["mb_s"]), f(m["mb_s"])
        if a is not None and b:
            r["ratio_to_ref"] = "%.2f" % (a / b)


def row_of(target, workload, partitions=None):
    for r in rows:
        if r["target"] == target and r["workload"] == workload and \
                (partitions is None or str(r["partitions"]) == str(partitions)):
            return r
    return None


def check_targets():
    out = []

    def chk(ok, text):
        out.append("- [%s] %s" % ("x" if ok else " ", text))

    def val(t, w, k, p=None):
        r = row_of(t, w, p)
        return f(r[k]) if r else None

    a, ref = val("file", "produce-1k", "mb_s"), val("mock", "produce-1k", "mb_s")
    if a is not None and ref:
        chk(a >= 0.5 * ref, "produce 1 KiB x 8 partitions (file) >= 0.5 x reference: %.1f vs %.1f MB/s (%.2f x)"
            % (a, ref, a / ref))
        tm = val("tmpfs", "produce-1k", "mb_s")
        if tm is not None:
            out.append("  - the same without the device (data dir on tmpfs; not durable, for "
                       "the broker's own cost): %.1f MB/s (%.2f x)" % (tm, tm / ref))
    fl = FLUSH_MS["file"]
    p99 = val("file", "latency", "p99_ms")
    if p99 is not None:
        chk(p99 < fl + 20, "produce p99 at half load (file) < flush interval + 20 = %d ms: %.2f ms" % (fl + 20, p99))
        tp = val("tmpfs", "latency", "p99_ms")
        if tp is not None:
            out.append("  - the same load without the device (tmpfs, the file store's offered rate): p99 %.2f ms" % tp)
    e = val("file", "e2e", "p99_ms")
    if e is not None:
        chk(e < 2 * fl + 30, "end-to-end p99 (file) < 2 x flush interval + 30 = %d ms: %.2f ms" % (2 * fl + 30, e))
    for t in ("file", "s3"):
        c, w, p = val(t, "catchup-cold", "mb_s"), val(t, "catchup-warm", "mb_s"), val(t, "produce-1k", "mb_s")
        if c is not None and p:
            chk(c >= 1.5 * p, "catch-up cold (%s) >= 1.5 x produce: %.1f vs %.1f MB/s (warm %.1f)" % (t, c, p, w or 0))
    for t in ("file", "s3"):
        big = max(SCALE)
        s8, sb = val(t, "produce-1k", "mb_s"), val(t, "scale-p%d" % big, "mb_s")
        ss, rb = val(t, "scale-p%d-sticky" % big, "mb_s"), val("mock", "scale-p%d" % big, "mb_s")
        if s8 and sb is not None and big >= 10000:
            chk(sb >= 0.75 * s8, "%d partitions (%s), round robin, within 25%% of 8 partitions: %.1f vs %.1f MB/s "
                "(reference at %d: %s MB/s)" % (big, t, sb, s8, big, "%.1f" % rb if rb else "-"))
        if s8 and ss is not None and big >= 10000:
            chk(ss >= 0.75 * s8, "%d partitions (%s), sticky partitioner, within 25%% of 8 partitions: %.1f vs %.1f MB/s"
                % (big, t, ss, s8))
        md = val(t, "metadata", "p99_ms")
        if md is not None:
            chk(md < 100, "Metadata of every topic (%s, %s partitions) < 100 ms: p99 %.2f ms"
                % (t, row_of(t, "metadata")["partitions"], md))
        # At a fixed offered rate (at maximum throughput objects are
        # sealed by size, so their rate follows the throughput).
        ops = [(n, val(t, "objects-rate-p%d" % n, "objects_per_s")) for n in OBJ_RATE_PARTS]
        ops = [(n, v) for n, v in ops if v]
        if len(ops) >= 2:
            first, last = ops[0][1], ops[-1][1]
            chk(abs(last - first) <= 0.1 * first,
                "objects/s at %d MB/s independent of partitions (%s), %d vs %d within 10%%: %s"
                % (OBJ_RATE_MB, t, ops[0][0], ops[-1][0],
                   ", ".join("%d: %.1f" % nv for nv in ops)))
        o1, o1k = val(t, "objects-rate-p1", "objects_per_s"), val(t, "objects-rate-p1000", "objects_per_s")
        if t == "s3" and o1 and o1k:
            chk(abs(o1k - o1) <= 0.1 * o1, "objects/s (s3) at %d MB/s, 1 vs 1,000 partitions within 10%%: "
                "%.2f vs %.2f" % (OBJ_RATE_MB, o1, o1k))
        ic = row_of(t, "conns-idle", 1000)
        if ic and f(ic["rss_per_conn_kib"]) is not None:
            tot = f(ic["rss_per_conn_kib"]) * 1000 / 1024
            chk(tot < 32, "1000 idle connections (%s) < 32 MiB RSS: %.1f MiB" % (t, tot))
        peaks = [(r["workload"], f(r["peak_rss_mib"])) for r in rows
                 if r["target"] == t and f(r["peak_rss_mib"]) is not None]
        if peaks:
            w, pk = max(peaks, key=lambda x: x[1])
            chk(pk < 512, "peak RSS (%s) < 512 MiB in every workload: max %.1f MiB (%s)" % (t, pk, w))
    return out


TABLE_COLS = [("workload", "workload"), ("target", "target"), ("partitions", "parts"),
              ("mb_s", "MB/s"), ("msgs_s", "msgs/s"), ("p50_ms", "p50 ms"),
              ("p99_ms", "p99 ms"), ("p999_ms", "p99.9 ms"), ("ratio_to_ref", "x ref"),
              ("peak_rss_mib", "peak RSS MiB"), ("cpu_s", "CPU s"), ("objects", "objects"),
              ("objects_per_s", "obj/s"), ("puts_per_gib", "PUT/GiB"),
              ("gets_per_gib", "GET/GiB"), ("usd_per_gib", "$/GiB"),
              ("rss_per_conn_kib", "KiB/conn"), ("puts_per_s", "PUT/s"), ("exit", "exit")]


def table():
    lines = ["| " + " | ".join(h for _, h in TABLE_COLS) + " |",
             "|" + "|".join("---" if k in ("workload", "target") else "---:"
                            for k, _ in TABLE_COLS) + "|"]
    order = {"file": 0, "tmpfs": 1, "s3": 2, "mock": 3}
    wl = []
    for r in rows:
        if r["workload"] not in wl:
            wl.append(r["workload"])
    for w in wl:
        for r in sorted((r for r in rows if r["workload"] == w),
                        key=lambda r: order.get(r["target"], 9)):
            lines.append("| " + " | ".join(str(r[k]) if r[k] != "" else "-"
                                           for k, _ in TABLE_COLS) + " |")
    return "\n".join(lines)


def plots(outdir, targets):
    if not shutil.which("gnuplot"):
        NOTES.append("gnuplot not installed (make deps-bench): no plots")
        return []
    made = []

    def dat(name, pts):
        path = os.path.join(outdir, name)
        with open(path, "w") as fh:
            for p in pts:
                fh.write(" ".join(str(x) for x in p) + "\n")
        return path

    def gp(png, script):
        full = ('set terminal pngcairo size 900,540 noenhanced font ",11"\n'
                'set output "%s"\nset grid\nset key top left\n' % os.path.join(outdir, png)
                + script)
        r = subprocess.run(["gnuplot"], input=full, text=True, stderr=subprocess.PIPE)
        if r.returncode == 0:
            made.append(png)
        else:
            NOTES.append("gnuplot %s: %s" % (png, r.stderr.strip()[:200]))

    # throughput vs partitions
    series = []
    for t in targets:
        pts = [(n, f(row_of(t, "scale-p%d" % n)["mb_s"])) for n in SCALE
               if row_of(t, "scale-p%d" % n) and f(row_of(t, "scale-p%d" % n)["mb_s"]) is not None]
        if pts:
            series.append((t, dat("plot-tput-%s.dat" % t, pts)))
    if series:
        gp("throughput-vs-partitions.png",
           'set title "Produce throughput vs partitions (1 KiB, acks=all, one producer)"\n'
           'set logscale x\nset xlabel "partitions"\nset ylabel "MB/s"\nset yrange [0:*]\n'
           "plot " + ", ".join('"%s" using 1:2 with linespoints lw 2 title "%s"' % (p, t)
                               for t, p in series) + "\n")
    # latency CDFs
    series = []
    for w in ("latency", "e2e"):
        for t in targets:
            p = os.path.join(outdir, "cdf-%s-%s.txt" % (w, t))
            if os.path.exists(p) and os.path.getsize(p) > 0:
                series.append(("%s %s" % (w, t), os.path.basename(p)))
    if series:
        gp("latency-cdf.png",
           'set title "Latency CDF: produce at half load (latency), produce-to-consume (e2e)"\n'
           'set logscale x\nset xlabel "ms"\nset ylabel "fraction"\nset yrange [0:1]\n'
           'set key bottom right\n'
           "plot " + ", ".join('"%s" using 1:2 with lines lw 2 title "%s"'
                               % (os.path.join(outdir, p), t) for t, p in series) + "\n")
    # RSS vs partitions and connections
    series = []
    for t in targets:
        pts = [(n, f(row_of(t, "scale-p%d" % n)["peak_rss_mib"])) for n in SCALE
               if row_of(t, "scale-p%d" % n) and f(row_of(t, "scale-p%d" % n)["peak_rss_mib"]) is not None]
        if pts:
            series.append(("peak RSS, produce, %s" % t, dat("plot-rssp-%s.dat" % t, pts)))
    if series:
        gp("rss-vs-partitions.png",
           'set title "Broker peak RSS vs partitions (produce run)"\n'
           'set logscale x\nset xlabel "partitions"\nset ylabel "MiB"\nset yrange [0:*]\n'
           "plot " + ", ".join('"%s" using 1:2 with linespoints lw 2 title "%s"' % (p, t)
                               for t, p in series) + "\n")
    series = []
    for t in targets:
        pts = []
        for n in CONNS:
            ri = row_of(t, "conns-idle", n)
            ra = row_of(t, "conns-active", n)
            if ri and f(ri["rss_end_mib"]) is not None:
                pts.append((n, f(ri["rss_end_mib"]),
                            f(ra["peak_rss_mib"]) if ra and f(ra["peak_rss_mib"]) is not None else "NaN"))
        if pts:
            series.append((t, dat("plot-rssc-%s.dat" % t, pts)))
    if series:
        gp("rss-vs-connections.png",
           'set title "Broker RSS vs connections (idle: RSS while held; active: peak)"\n'
           'set logscale x\nset xlabel "connections"\nset ylabel "MiB"\nset yrange [0:*]\n'
           "plot " + ", ".join('"%s" using 1:2 with linespoints lw 2 title "%s idle", '
                               '"%s" using 1:3 with linespoints lw 2 dt 2 title "%s active"'
                               % (p, t, p, t) for t, p in series) + "\n")
    return made


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    with open("/proc/meminfo") as fh:
        mem = int(fh.readline().split()[1]) / 1048576
    return "%d CPUs, %s, %.0f GiB RAM, Linux %s" % (os.cpu_count(), model, mem, os.uname().release)


def disk_speed(tmp):
    """dd of 400 MiB with fsync on the data dir's disk, in MB/s."""
    path = os.path.join(tmp, "dd.bin")
    r = subprocess.run(["dd", "if=/dev/zero", "of=" + path, "bs=4M", "count=100", "conv=fsync"],
                       stderr=subprocess.PIPE, text=True)
    try:
        os.unlink(path)
    except OSError:
        pass
    m = re.search(r"copied, ([\d.]+) s, ([\d.]+ \S+)", r.stderr)
    return m.group(2) if m else "?"


def main():
    if not os.access(DRIVER, os.X_OK):
        sys.exit("suite: no driver at %s (build it: needs librdkafka-dev)" % DRIVER)
    os.makedirs(OUT, exist_ok=True)
    for old in glob.glob(os.path.join(OUT, "cdf-*.txt")) + glob.glob(os.path.join(OUT, "plot-*.dat")):
        os.unlink(old)
    tmp = tempfile.mkdtemp(prefix="sluice-bench-")
    load0 = open("/proc/loadavg").read().split()[:3]
    t_start = time.monotonic()
    dd = disk_speed(tmp) if not SMOKE else None
    cmdline = " ".join(["%s=%s" % (k, os.environ[k]) for k in (
        "QUICK", "SMOKE", "TARGETS", "PERF", "BUILD", "SLUICE_BIN", "DRIVER", "DURATION_S",
        "BACKLOG_MIB", "SCALE", "CONNS", "PARTITIONS", "CATCHUP_PARTITIONS", "E2E_RATE",
        "LINGER_MS", "FETCH_WAIT_MS", "DROP_CACHES") if os.environ.get(k)] +
                       [os.environ.get("SUITE_VIA", "bench/suite.py")])
    s3 = None
    ran, failed = [], []
    brokers = {}
    try:
        for name in TARGETS:
            if name in ("file", "s3") and not os.access(SLUICE, os.X_OK):
                NOTES.append("%s: skipped, no broker at %s" % (name, SLUICE))
                continue
            if name == "s3":
                if not os.path.exists(S3RVER):
                    NOTES.append("s3: skipped, s3rver not installed (tools/install-node-deps.sh)")
                    continue
                try:
                    s3 = S3rver(tmp).start()
                except RuntimeError as e:
                    NOTES.append("s3: skipped, %s" % e)
                    continue
            if name == "tmpfs":
                if not os.path.isdir("/dev/shm"):
                    NOTES.append("tmpfs: skipped, no /dev/shm")
                    continue
                shm = tempfile.mkdtemp(prefix="sluice-bench-", dir="/dev/shm")
                tgt = Sluice(shm, "file", "tmpfs")
            else:
                tgt = Mock(tmp) if name == "mock" else Sluice(tmp, name)
            if name == "s3":
                tgt.s3 = s3
            say("\n######## target %s" % name)
            # Each target starts with the page cache that earlier targets
            # filled (GBs of objects) dropped. Not before every run: with
            # a drop before each, the file latency run had p99 166 ms (p50
            # 14.1), and by hand the first run after a drop stalled once
            # (p99 296 vs 45-51 ms), likely code and metadata pages read
            # back from a busy disk.
            drop_page_cache()
            t0 = time.monotonic()
            try:
                run_target(tgt, OUT)
                NOTES.append("%s: all workloads in %.0f s" % (name, time.monotonic() - t0))
                ran.append(name)
                brokers[name] = tgt.cmd
            except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                NOTES.append("%s: stopped early: %s" % (name, e))
                failed.append(name)
                say("suite: target %s failed: %s" % (name, e))
            finally:
                tgt.stop(final=True)
                if name == "tmpfs":
                    shutil.rmtree(tgt.tmp, ignore_errors=True)
        if PERF and "file" in TARGETS:
            perf_profile(tmp, OUT)
    finally:
        if s3:
            s3.stop()
        if KEEP:
            say("suite: kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    add_ratios()
    with open(os.path.join(OUT, "results.csv"), "w") as fh:
        fh.write(",".join(CSV_COLS) + "\n")
        for r in rows:
            fh.write(",".join(str(r[k]) for k in CSV_COLS) + "\n")
    pngs = plots(OUT, ran)
    checks = check_targets()
    tbl = table()
    elapsed = time.monotonic() - t_start
    load1 = open("/proc/loadavg").read().split()[:3]
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            stdout=subprocess.PIPE, text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                           stdout=subprocess.PIPE, text=True).stdout.strip()
    try:
        rdk = subprocess.run(["pkg-config", "--modversion", "rdkafka"], stdout=subprocess.PIPE,
                             text=True).stdout.strip()
    except OSError:
        rdk = "?"
    md = ["## Latest run: %s, commit %s%s" % (time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
                                             commit, " (uncommitted changes)" if dirty else ""),
          "",
          "- Machine: %s" % machine(),
          "- Disk of the data dir: %s (`dd if=/dev/zero bs=4M count=100 conv=fsync`)" % (dd or "-"),
          "- Load average: %s at start, %s at end; the run took %.0f s" % (
              " ".join(load0), " ".join(load1), elapsed),
          "- Command: `%s`" % cmdline,
          "- Client: librdkafka %s; targets: %s" % (rdk, ", ".join(ran) or "none"),
          ""]
    for n, c in brokers.items():
        md.append("- %s: `%s`" % (n, c))
    md += ["", tbl, "", "Ratios (x ref): MB/s for throughput and reads, requests/s for "
           "conns-active, p99 for latency/e2e/metadata (lower is better), KiB per "
           "connection for conns-idle. PUT/GiB for the file store: the objects it "
           "wrote, i.e. what S3 would bill for the same objects; $/GiB at S3 Standard "
           "list prices (PUT $0.005/1000, GET $0.0004/1000). For conns rows the "
           "partitions column is the connection count.", "", "Targets (issue 5):", ""]
    md += checks
    if NOTES:
        md += ["", "Notes:", ""] + ["- " + n for n in NOTES]
    if pngs:
        rel = os.path.relpath(OUT, os.path.dirname(RESULTS))
        md += [""] + ["![%s](%s/%s)" % (p[:-4], rel, p) for p in pngs]
    perf_files = sorted(glob.glob(os.path.join(OUT, "perf-*.txt")))
    if PERF and perf_files:
        for pf in perf_files:
            md += ["", "<details><summary>perf: %s</summary>" % os.path.basename(pf), "",
                   "```", open(pf).read().rstrip(), "```", "", "</details>"]
    md += ["", "<details><summary>driver commands</summary>", "", "```"]
    md += ["%s %s: %s" % c for c in commands]
    md += ["```", "", "</details>"]
    text = "\n".join(md) + "\n"
    with open(os.path.join(OUT, "table.md"), "w") as fh:
        fh.write(text)
    print("\n" + tbl + "\n\n" + "\n".join(checks))
    if NOTES:
        print("\n".join("note: " + n for n in NOTES))
    print("\nresults: %s/results.csv, table.md%s" % (OUT, ", " + ", ".join(pngs) if pngs else ""))
    if WRITE_RESULTS:
        update_results(text)
        print("updated %s" % RESULTS)
    bad = [r for r in rows if str(r["exit"]) != "0"]
    if SMOKE and bad:
        print("smoke: %d workload(s) did not complete: %s" % (len(bad), ", ".join(
            "%s/%s" % (r["target"], r["workload"]) for r in bad)))
        return 1
    return 1 if (failed or not ran) else 0


BEGIN, END = "<!-- bench:begin (written by bench/suite.py) -->", "<!-- bench:end -->"


def update_results(text):
    old = open(RESULTS).read() if os.path.exists(RESULTS) else "# Benchmark results\n"
    block = BEGIN + "\n" + text + END
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + block + old[old.index(END) + len(END):]
    else:
        lines = old.split("\n", 1)
        new = lines[0] + "\n\n" + block + "\n" + (lines[1] if len(lines) > 1 else "")
    with open(RESULTS, "w") as fh:
        fh.write(new)


if __name__ == "__main__":
    sys.exit(main())
