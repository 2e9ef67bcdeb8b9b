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

    python3 bench/compaction.py --produce-latency [--rate 500] [--idle-s 20]
                                [--merge-mib 128] [--clean-mib 256] [--dump FILE]
                                [--arms A|B|AB] [--rounds 1] [--root /tmp]
                                [--store file|s3] [--s3-root /dev/shm] [--mirror]
                                [--fsync-probe MS]

instead measures what the agent's own merge and cleaning passes cost a
steady producer (issue 15's "produce p99 while merge and compaction run
vs idle, same run"): one broker loads --merge-mib of 1 KiB messages into
8 partitions in small objects (--flush-bytes 262144) and --clean-mib of
keyed updates (--keys keys) into a topic with cleanup.policy=delete, and
stops; a second broker on the same data (--merge-interval-ms so that its
first merge pass starts after --idle-s, --merge-min-age-ms 0,
--compaction-check-interval-ms 1000) serves a producer of 1 KiB records
at --rate msgs/s (one partition, acks=all, linger.ms 0, confluent-kafka)
throughout. After the merge pass the loaded topic is made compacted
(AlterConfigs), so the next checks clean it (128 MiB per pass). Each
record's latency (produce() to its delivery report) is filed by its send
time under the pass running then, from the broker's "the pass took N ms"
lines: merge, clean, or idle (neither; the first 3 s left out), and
"before": the idle records of the 5 s before the first pass. The
broker's /metrics, scraped every 0.25 s, give the mean object write
(encode, write, fdatasync) and metadata commit time in each class, the
two stages a produce request waits for. --dump FILE writes each record's
send time and latency, the passes' windows ("# kind start end") and the
scraped sums and counts ("@ wall upload_sum upload_count commit_sum
commit_count"), for a timeline of where inside a pass the slow records
fall. The serving broker's minor page faults and CPU seconds over the
run (/proc/PID/stat just before it stops) are printed last. The merge
pass merges the steady producer's own partition too: one object per
1 KiB batch while idle, up to ~11,500 rows by then: the pass's largest
merged object, its metadata swap cut into transactions of
--merge-swap-rows rows.

The load runs once, into a pristine data dir; every run starts from two
fresh copies of it (then a sync()), each served by its own broker
(--mirror: each with its own steady producer, so that both brokers hold
the steady partition's small objects and the arms differ only in which
one runs the passes; the other's latencies are not filed). Arm A (the
default) is the above: the serving broker runs the passes, the other
broker idles with its passes off. Arm B is the control: the serving
broker's passes are off and the other broker, on its own copy (its own
SQLite, objects and process; without --mirror no steady partition rows
to merge), runs the same passes at the same times; its pass lines file
the serving broker's records. If B slows the producer as much as A, the
cost is the machine's (CPU, the device's cache flush that every
fdatasync carries), not the agent's locks or queues. --arms AB --rounds
N runs N rounds of both arms, their order alternated, and prints a
summary of every run's p50/p99 per class last, then per arm and pass
kind the median over the runs of the p50/p90 of the records sent in the
0.5 s before the pass's start, its first 0.5 s and the next (a drifting
machine load blurs a class but not the pass-locked bins; --dump FILE
then writes FILE.r1A, FILE.r1B, ...). --root holds the data dirs
(/dev/shm: tmpfs, no device flush). --store s3 puts the objects on one
local s3rver (tests/integration/js/node_modules) in --s3-root, a prefix
per data dir, flushed every 5 ms (--flush-interval-ms, the file store's
default), while the metadata stays in the data dir: a pass's object
writes then share no fsync with the produce path. --fsync-probe MS times
a 4 KiB write + fdatasync of a file in --root every MS ms, outside every
broker, filed like the records: the device's flush cost while the passes
run.
"""
import argparse
import datetime
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ab import free_port  # noqa: E402
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


PASS_LINE_RE = re.compile(r"^(\S+)Z INFO\s+(merge|compaction): .*the pass took (\d+) ms", re.M)


def pass_windows(log_path):
    """[(kind, start, end)] in wall seconds, from the broker's pass lines."""
    out = []
    with open(log_path) as f:
        for m in PASS_LINE_RE.finditer(f.read()):
            end = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(
                tzinfo=datetime.timezone.utc).timestamp()
            out.append(("merge" if m.group(2) == "merge" else "clean",
                        end - int(m.group(3)) / 1000.0, end))
    return out


class SteadyProducer(threading.Thread):
    """rate msgs/s of 1 KiB to partition 0 of topic; (send wall time,
    latency s) per delivered record in self.lat."""

    def __init__(self, bootstrap, topic, rate):
        super().__init__(daemon=True)
        self.p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0,
                           "compression.type": "none"})
        self.topic, self.rate = topic, rate
        self.lat, self.errors = [], 0
        self.stop = threading.Event()

    def run(self):
        value = os.urandom(1024)
        period = 1.0 / self.rate
        t_next = time.monotonic()

        def cb_for(wall, mono):
            def cb(err, _msg):
                if err:
                    self.errors += 1
                else:
                    self.lat.append((wall, time.monotonic() - mono))
            return cb
        while not self.stop.is_set():
            now = time.monotonic()
            if now < t_next:
                self.p.poll(t_next - now)
                continue
            t_next += period
            self.p.produce(self.topic, value, partition=0, on_delivery=cb_for(time.time(), now))
            self.p.poll(0)
        self.p.flush(30)


class FsyncProbe(threading.Thread):
    """--fsync-probe MS: a 4 KiB write and fdatasync of one file in folder
    every MS ms, outside every broker: what the device's flush costs then.
    (wall, ms) per probe in self.lat."""

    def __init__(self, folder, period_ms):
        super().__init__(daemon=True)
        self.path = os.path.join(folder, "fsync-probe")
        self.period = period_ms / 1000.0
        self.lat = []
        self.stop = threading.Event()

    def run(self):
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        block = os.urandom(4096)
        try:
            while not self.stop.wait(self.period):
                wall, t0 = time.time(), time.monotonic()
                os.pwrite(fd, block, 0)
                os.fdatasync(fd)
                self.lat.append((wall, (time.monotonic() - t0) * 1000))
        finally:
            os.close(fd)
            os.unlink(self.path)


HIST_RE = re.compile(rb"^(sluice_object_upload_duration_seconds|sluice_meta_commit_duration_seconds)"
                     rb"_(sum|count) ([\d.e+-]+)$", re.M)


class Scraper(threading.Thread):
    """The broker's write path histograms every 0.25 s: [(wall, {name_sum:
    v, name_count: v})]."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.url = "http://127.0.0.1:%d/metrics" % port
        self.samples = []
        self.stop = threading.Event()

    def run(self):
        import urllib.request
        while not self.stop.wait(0.25):
            try:
                body = urllib.request.urlopen(self.url, timeout=5).read()
            except OSError:
                continue
            self.samples.append((time.time(), {(m.group(1).decode(), m.group(2).decode()):
                                               float(m.group(3))
                                               for m in HIST_RE.finditer(body)}))


def stage_means(samples, windows):
    """{class: (mean upload ms, mean commit ms)} over the scrape intervals
    that lie in each class (as the records are filed)."""
    acc = {}
    for (t0, a), (t1, b) in zip(samples, samples[1:]):
        kinds = {k for k, s, e in windows if s <= t0 and t1 <= e}
        if not kinds and any(s <= t1 and t0 <= e for _, s, e in windows):
            continue  # straddles a pass's edge
        for k in kinds or {"idle"}:
            x = acc.setdefault(k, [0.0, 0.0, 0.0, 0.0])
            for i, name in enumerate(("sluice_object_upload_duration_seconds",
                                      "sluice_meta_commit_duration_seconds")):
                x[2 * i] += b.get((name, "sum"), 0) - a.get((name, "sum"), 0)
                x[2 * i + 1] += b.get((name, "count"), 0) - a.get((name, "count"), 0)
    return {k: (1000 * x[0] / x[1] if x[1] else float("nan"),
                1000 * x[2] / x[3] if x[3] else float("nan")) for k, x in acc.items()}


def proc_usage(pid):
    """(minor faults, user s, system s) of a running process, from
    /proc/PID/stat; None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    hz = os.sysconf("SC_CLK_TCK")
    # After the command's ")": state is fields[0], minflt the 10th field
    # of stat (fields[7]), utime and stime the 14th and 15th.
    return int(fields[7]), int(fields[11]) / hz, int(fields[12]) / hz


def median(xs):
    xs = [x for x in xs if x == x]  # no NaN (an empty bin)
    return percentile(xs, 50) if len(xs) % 2 else (
        sum(sorted(xs)[len(xs) // 2 - 1:len(xs) // 2 + 1]) / 2 if xs else float("nan"))


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * q / 100.0))] if xs else float("nan")


class Store:
    """Where a run's objects live: the data dir's objects folder (file
    store), or a prefix on one local s3rver (--store s3); copy() makes a
    separate copy of a prepared data dir, objects included."""

    def __init__(self, kind, root):
        self.kind, self.s3 = kind, None
        if kind == "s3":
            import suite
            os.environ.setdefault("AWS_ACCESS_KEY_ID", "S3RVER")
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "S3RVER")
            self.s3 = suite.S3rver(tempfile.mkdtemp(prefix="sluice-bench-s3-", dir=root)).start()

    def flags(self, data):
        if not self.s3:
            return []
        # The file store's 5 ms flush interval, not S3's 250: the latency
        # is then the PUT's and the commit's, not the timer's.
        return ["--store", "s3://%s/%s?endpoint=http://127.0.0.1:%d&region=us-east-1"
                % (self.s3.bucket, os.path.basename(data), self.s3.port),
                "--flush-interval-ms", "5"]

    def copy(self, src, dst):
        shutil.copytree(src, dst)
        if self.s3:
            b = os.path.join(self.s3.dir, self.s3.bucket)
            shutil.copytree(os.path.join(b, os.path.basename(src)),
                            os.path.join(b, os.path.basename(dst)))

    def remove(self, data):
        shutil.rmtree(data, ignore_errors=True)
        if self.s3:
            shutil.rmtree(os.path.join(self.s3.dir, self.s3.bucket, os.path.basename(data)),
                          ignore_errors=True)

    def close(self):
        if self.s3:
            self.s3.stop()
            shutil.rmtree(os.path.dirname(self.s3.dir), ignore_errors=True)


CTOPIC, MTOPIC, STOPIC = "bench-clean", "bench-merge", "bench-steady"
COMMON = ["--flush-bytes", "262144", "--gc-interval-ms", "0"]


def load(args, store, data):
    """One broker loads --merge-mib to merge and --clean-mib to clean
    into data, and stops."""
    b = Broker(data, COMMON + store.flags(data) + ["--merge-interval-ms", "0",
                                                   "--compaction-check-interval-ms", "86400000"])
    b.start()
    try:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        fs = admin.create_topics([
            NewTopic(CTOPIC, 1, 1, config={"cleanup.policy": "delete", "segment.ms": "1",
                                           "retention.ms": "-1"}),
            NewTopic(MTOPIC, 8, 1), NewTopic(STOPIC, 1, 1)])
        for f in fs.values():
            f.result(15)
        del admin
        t0 = time.monotonic()
        subprocess.run([os.path.join(os.path.dirname(SLUICE), "bench", "driver"), "produce",
                        "--bootstrap", b.bootstrap, "--topic", MTOPIC, "--partitions", "8",
                        "--msg-bytes", "1024", "--count", str(args.merge_mib << 10)],
                       check=True, capture_output=True)
        produce(b.bootstrap, CTOPIC, args.clean_mib << 20, args.keys, args.value_bytes, 1)
        print("loaded %d MiB to merge, %d MiB to clean in %.1f s"
              % (args.merge_mib, args.clean_mib, time.monotonic() - t0))
    finally:
        b.stop()


def filed(samples, windows, t_start, first):
    """{class: [values]} of (wall, value) samples by the pass running at
    their wall time: merge, clean, or idle (neither; the first 3 s left
    out), and "before": the idle ones of the 5 s before the first pass,
    the same run's baseline nearest the passes (a shared machine's load
    drifts)."""
    classes = {"idle": [], "before": [], "merge": [], "clean": []}
    for wall, v in samples:
        if wall < t_start + 3:
            continue
        kinds = [k for k, s, e in windows if s <= wall <= e]
        for k in set(kinds) or ["idle"]:
            classes[k].append(v)
        if first - 5 <= wall < first:
            classes["before"].append(v)
    return classes


def produce_latency(args, store, tmp, pristine, arm, label):
    """One run from a copy of pristine: arm "A", the serving broker runs
    the passes; arm "B", a second broker on a second copy runs them and
    the serving broker's are off. {class: latencies ms}."""
    data, data2 = os.path.join(tmp, "data-" + label), os.path.join(tmp, "other-" + label)
    store.copy(pristine, data)
    store.copy(pristine, data2)
    os.sync()
    passes = ["--merge-interval-ms", str(int((3 + args.idle_s) * 1000)), "--merge-min-age-ms",
              "0", "--compaction-check-interval-ms", "1000"]
    off = ["--merge-interval-ms", "0", "--compaction-check-interval-ms", "86400000"]
    mport = free_port()
    b = Broker(data, COMMON + store.flags(data) + (passes if arm == "A" else off) +
               ["--metrics-listen", "127.0.0.1:%d" % mport])
    other = Broker(data2, COMMON + store.flags(data2) + (off if arm == "A" else passes))
    worker = b if arm == "A" else other
    b.start()
    other.start()
    scraper = Scraper(mport)
    scraper.start()
    log = os.path.join(worker.data, "broker.log")
    log_from = os.path.getsize(log)
    sp = SteadyProducer(b.bootstrap, STOPIC, args.rate)
    mirror = SteadyProducer(other.bootstrap, STOPIC, args.rate) if args.mirror else None
    probe = FsyncProbe(tmp, args.fsync_probe) if args.fsync_probe else None
    try:
        t_start = time.time()
        sp.start()
        if probe:
            probe.start()
        if mirror:
            mirror.start()
        # The merge pass starts after --idle-s; wait for its line.
        deadline = time.monotonic() + args.idle_s + 600
        while not [w for w in pass_windows(log) if w[0] == "merge" and w[2] > t_start]:
            if time.monotonic() > deadline:
                raise SystemExit("no merge pass")
            time.sleep(0.5)
        time.sleep(3)
        admin = AdminClient({"bootstrap.servers": worker.bootstrap})
        res = ConfigResource("topic", CTOPIC, set_config={
            "cleanup.policy": "compact", "segment.ms": "1", "retention.ms": "-1",
            "min.cleanable.dirty.ratio": "0.5"})
        for f in admin.alter_configs([res]).values():
            f.result(15)
        del admin
        # Cleaning until a pass cleans nothing (no line) for 5 s.
        last = time.monotonic()
        seen = 0
        while time.monotonic() - last < 5 and time.monotonic() < deadline:
            n = len([w for w in pass_windows(log) if w[0] == "clean"])
            if n != seen:
                seen, last = n, time.monotonic()
            time.sleep(0.5)
        time.sleep(3)
    finally:
        threads = [t for t in (sp, mirror, probe) if t]
        for t in threads:
            t.stop.set()
        for t in threads:
            t.join(60)
        scraper.stop.set()
        scraper.join(10)
        usage = proc_usage(b.proc.pid)
        wusage = proc_usage(other.proc.pid)
        b.stop()
        other.stop()
    with open(log) as f:
        f.seek(log_from)
        tail = f.read()
    windows = [w for w in pass_windows(log) if w[2] > t_start]
    first = min([st for _, st, _ in windows] or [0])
    classes = filed([(wall, lat * 1000) for wall, lat in sp.lat], windows, t_start, first)
    if probe:
        print("  fsync probe (4 KiB + fdatasync every %d ms in %s) p50 / p99 ms: %s" % (
            args.fsync_probe, args.root, ", ".join(
                "%s %.2f / %.2f" % (k, percentile(xs, 50), percentile(xs, 99))
                for k, xs in filed(probe.lat, windows, t_start, first).items())))
    if args.dump:
        with open(args.dump if args.rounds == 1 and len(args.arms) == 1
                  else "%s.%s" % (args.dump, label), "w") as f:
            for k, st, e in windows:
                f.write("# %s %.3f %.3f\n" % (k, st, e))
            for wall, ms in probe.lat if probe else ():
                f.write("P %.4f %.3f\n" % (wall, ms))
            for wall, lat in sp.lat:
                f.write("%.4f %.2f\n" % (wall, lat * 1000))
            for wall, x in scraper.samples:
                f.write("@ %.3f %s\n" % (wall, " ".join(
                    "%g" % x.get((n, k), 0) for n in ("sluice_object_upload_duration_seconds",
                                                      "sluice_meta_commit_duration_seconds")
                    for k in ("sum", "count"))))
    print("%s: arm %s (passes in the %s broker), store %s on %s; steady producer: %d msgs/s of "
          "1 KiB, acks=all, linger.ms 0; %d delivered, %d errors"
          % (label, arm, "serving" if arm == "A" else "other", store.kind, args.root, args.rate,
             len(sp.lat), sp.errors))
    if mirror:
        print("  mirror producer (other broker): %d delivered, %d errors, p99 %.2f ms (from 3 s "
              "on)" % (len(mirror.lat), mirror.errors, percentile(
                  [lat * 1000 for wall, lat in mirror.lat if wall >= t_start + 3], 99)))
    for k, s, e in windows:
        print("  %s pass %.1f s" % (k, e - s))
    means = stage_means(scraper.samples, windows)
    print("| while | records | p50 ms | p99 ms | p99.9 ms | max ms | object write ms (mean) "
          "| metadata commit ms (mean) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for k in ("idle", "before", "merge", "clean"):
        xs = classes[k]
        up, cm = means.get(k, (float("nan"), float("nan")))
        print("| %s | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |"
              % (k, len(xs), percentile(xs, 50), percentile(xs, 99), percentile(xs, 99.9),
                 max(xs) if xs else float("nan"), up, cm))
    for line in tail.splitlines():
        if "merge:" in line or "compaction:" in line:
            print("  " + line)
    if store.kind == "file":
        print("steady partition: %d merged objects (%d rows, %d batch bytes), %d other objects"
              % steady_objects(data, STOPIC))
    for name, u in (("serving broker", usage), ("other broker", wusage)):
        if u:
            print("%s over the run: %d minor page faults, %.2f s user, %.2f s system CPU"
                  % ((name,) + u))
    print("load average: %s" % open("/proc/loadavg").read().split()[:3], flush=True)
    if args.keep and not os.path.exists(args.keep):  # the first run's
        shutil.move(data, args.keep)
    store.remove(data)
    store.remove(data2)
    classes["aligned"] = aligned([(wall, lat * 1000) for wall, lat in sp.lat], windows)
    return classes


def aligned(samples, windows):
    """{kind: [(p50, p90) of the samples sent in the 0.5 s before the
    run's first pass of that kind, in its first 0.5 s, in the next]}."""
    out = {}
    for kind in ("merge", "clean"):
        starts = [st for k, st, _ in windows if k == kind]
        if starts:
            out[kind] = [(percentile(xs, 50), percentile(xs, 90)) for xs in (
                [v for wall, v in samples if starts[0] + a <= wall < starts[0] + a + 0.5]
                for a in (-0.5, 0, 0.5))]
    return out


def produce_latency_rounds(args):
    """--rounds of --arms, the arms' order alternated per round, from one
    load; a summary table of every run last."""
    tmp = tempfile.mkdtemp(prefix="sluice-bench-p99-", dir=args.root)
    store = Store(args.store, args.s3_root)
    pristine = os.path.join(tmp, "pristine")
    os.makedirs(pristine)
    got = []
    try:
        load(args, store, pristine)
        for r in range(args.rounds):
            for arm in (args.arms if r % 2 == 0 else args.arms[::-1]):
                label = "r%d%s" % (r + 1, arm)
                got.append((r + 1, arm, produce_latency(args, store, tmp, pristine, arm, label)))
    finally:
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n| round | arm | store | idle p50 / p99 ms | 5 s before p50 / p99 ms "
          "| merge p50 / p99 ms | clean p50 / p99 ms |")
    print("|---|---|---|---|---|---|---|")
    for r, arm, classes in got:
        print("| %d | %s | %s | %s |" % (r, arm, store.kind, " | ".join(
            "%.2f / %.2f" % (percentile(classes[k], 50), percentile(classes[k], 99))
            for k in ("idle", "before", "merge", "clean"))))
    # A drifting load blurs short classes; bins aligned on each pass's
    # start, medianed over the runs, keep what the pass itself does.
    print("\n| pass | arm | runs | 0.5 s before: p50 / p90 ms | its first 0.5 s | the next 0.5 s |")
    print("|---|---|---:|---|---|---|")
    for kind in ("merge", "clean"):
        for arm in args.arms:
            runs = [c["aligned"][kind] for _, a, c in got if a == arm and kind in c["aligned"]]
            if runs:
                print("| %s | %s | %d | %s |" % (kind, arm, len(runs), " | ".join(
                    "%.2f / %.2f" % tuple(median([run[i][j] for run in runs]) for j in (0, 1))
                    for i in range(3))))
    print("load average: %s" % open("/proc/loadavg").read().split()[:3])


def steady_objects(data, topic):
    """(merged objects, their rows, their bytes, other objects) holding
    partition 0 of topic: merged objects' keys carry a counter starting
    ffffffff (storage/merge.c)."""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(data, "meta.db"), uri=True)
    try:
        rows = db.execute("SELECT o.key LIKE '%-ffffffff%', count(DISTINCT o.oid), count(*),"
                          " sum(b.length) FROM batches AS b JOIN objects AS o ON o.oid = b.oid"
                          " JOIN topics AS t ON t.tid = b.tid WHERE t.name = ? AND"
                          " b.partition = 0 GROUP BY 1", (topic,)).fetchall()
    finally:
        db.close()
    got = {bool(r[0]): r[1:] for r in rows}
    merged = got.get(True, (0, 0, 0))
    return merged[0], merged[1], merged[2], got.get(False, (0,))[0]


def du(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--keys", type=int, default=10000)
    ap.add_argument("--value-bytes", type=int, default=1000)
    ap.add_argument("--keep", help="produce only, into this folder (for profiling a pass)")
    ap.add_argument("--produce-latency", action="store_true",
                    help="a steady producer's latency idle, during a merge and a cleaning pass")
    ap.add_argument("--dump", help="with --produce-latency: each record's send time and "
                    "latency, and the passes' windows, into this file")
    ap.add_argument("--rate", type=int, default=500)
    ap.add_argument("--idle-s", type=float, default=20)
    ap.add_argument("--merge-mib", type=int, default=128)
    ap.add_argument("--clean-mib", type=int, default=256)
    ap.add_argument("--arms", default="A", help="with --produce-latency: A (the serving "
                    "broker runs the passes), B (a second broker on a copy runs them), or AB")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--root", default=tempfile.gettempdir(),
                    help="with --produce-latency: the folder of the data dirs (/dev/shm: tmpfs)")
    ap.add_argument("--store", choices=("file", "s3"), default="file")
    ap.add_argument("--mirror", action="store_true", help="with --produce-latency: a second "
                    "steady producer to the other broker, so both have the same rows")
    ap.add_argument("--fsync-probe", type=int, default=0, metavar="MS",
                    help="with --produce-latency: a 4 KiB fdatasync in --root every MS ms")
    ap.add_argument("--s3-root", default="/dev/shm", help="with --store s3: s3rver's folder")
    args = ap.parse_args()
    if args.produce_latency:
        # A SIGTERM stops the brokers and s3rver on the way out (a
        # background job ignores SIGINT).
        signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
        produce_latency_rounds(args)
        return
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
