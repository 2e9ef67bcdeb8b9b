#!/usr/bin/python3
"""run.py — one consistency run: start Sluice (one agent on the file store,
or agents on PostgreSQL and s3rver), run producers and consumers against
it for a bounded time while a nemesis injects faults on a schedule drawn
from a seed, read every partition back in full, record everything in a
history and hand it to the checker (checker.py).

Exit status: 0 no anomaly, 1 anomalies (the checker's report says which),
2 an agent crashed or did not start again after a fault (reported after
the checker's report), or the run itself failed (a final read that did
not finish), 77 skipped (--txn on against a broker that does not
advertise transactions; ctest shows it as skipped). See README.md.
"""
import argparse
import logging
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from confluent_kafka import (OFFSET_BEGINNING, Consumer,  # noqa: E402
                             KafkaError, KafkaException, Producer,
                             TopicPartition)

import checker  # noqa: E402
import kproto  # noqa: E402
import rawlog  # noqa: E402
import util  # noqa: E402
from history import History  # noqa: E402

FAULTS = {"single": ("kill", "pause-agent"),
          "cluster": ("kill", "pause-agent", "pause-store", "pg-restart")}
SKIP = 77
# Transactions are served when ApiVersions lists these (AddPartitionsToTxn,
# EndTxn): the issue advertises them only once they work.
TXN_APIS = (24, 26)


class HarnessError(Exception):
    pass


# --------------------------------------------------------------------------
# The system under test

class SharedPg:
    """A PostgreSQL someone else runs (ctest's pg fixture, its URL in a
    file): a database of the run's own on it; never stopped here."""

    def __init__(self, url_file):
        from test_postgres import Server
        with open(url_file) as f:
            url = f.read().strip()
        # Server's URL handling and psql without its start and stop.
        self.server = Server.__new__(Server)
        u = urllib.parse.urlsplit(url)
        self.server.url = url
        self.server.user, self.server.password = u.username, u.password
        self.server.host, self.server.port = u.hostname, u.port
        self.db_url = self.server.db_url
        self.new_db = self.server.new_db
        self.psql = self.server.psql

    def stop(self):
        pass

class System:
    """One agent on the file store and SQLite ("single"), or n agents on a
    PostgreSQL of their own and an s3rver ("cluster")."""

    def __init__(self, mode, n_agents, workdir, wire=None, shared_pg=None):
        self.mode, self.n, self.dir = mode, n_agents, workdir
        self.shared_pg = shared_pg    # a file holding a server's URL
        self.agents, self.pg, self.s3 = [], None, None
        self.store_paused = False
        self.paused = set()       # agents stopped with SIGSTOP
        self.start_failures = []  # starts after a fault that failed
        self.wire = wire          # (topic_of, record) for wire.Proxy
        self.proxies = []

    def start(self):
        # Imported here: conftest and the test modules import pytest.
        from conftest import Broker
        if self.mode == "single":
            self.agents = [Broker(os.path.join(self.dir, "agent-0"))]
        else:
            from test_cluster_outage import Pg
            from test_s3 import S3RVER_KEY, S3rver
            if self.shared_pg:
                self.pg = SharedPg(self.shared_pg)
            else:
                self.pg = Pg(os.path.join(self.dir, "pg"))
            os.makedirs(os.path.join(self.dir, "s3"), exist_ok=True)
            self.s3 = S3rver(os.path.join(self.dir, "s3", "data"), "sluice-cc",
                             os.path.join(self.dir, "s3", "s3rver.log"))
            self.s3.start()
            url = self.pg.db_url(self.pg.new_db())
            store = "s3://sluice-cc/cc?endpoint=%s&region=us-east-1" % \
                self.s3.endpoint
            env = {"AWS_ACCESS_KEY_ID": S3RVER_KEY,
                   "AWS_SECRET_ACCESS_KEY": S3RVER_KEY}
            self.agents = [
                Broker(os.path.join(self.dir, "agent-%d" % i),
                       ["--meta", url, "--store", store,
                        "--zone", "abc"[i % 3]], env=env)
                for i in range(self.n)]
        if self.wire:
            import wire
            for a in self.agents:
                px = wire.Proxy(a.port, *self.wire)
                self.proxies.append(px)
                a.extra_args += ["--advertise", "127.0.0.1:%d" % px.port]
        for a in self.agents:
            a.start()

    @property
    def bootstrap(self):
        if self.proxies:
            return ",".join("127.0.0.1:%d" % px.port for px in self.proxies)
        return ",".join(a.bootstrap for a in self.agents)

    def txn_supported(self):
        with kproto.connect(self.agents[0].bootstrap) as s:
            _, apis, _ = kproto.api_versions_v0(s)
        return all(k in apis for k in TXN_APIS)

    # Faults: each a (break, heal) pair.
    def kill(self, i):
        self.agents[i].kill9()

    def restart(self, i):
        """Starts agent i again; a start that fails (the agent exits
        before it accepts connections) is kept in start_failures and
        tried twice more, so one crash does not leave the cluster short
        for the rest of the run."""
        for attempt in range(3):
            if self.agents[i].running():
                return
            try:
                self.agents[i].start()
            except BaseException as e:   # pytest.fail from Broker.start
                self.start_failures.append(
                    "agent-%d: %s" % (i, str(e).split("; args")[0]))
                if attempt == 2:
                    raise

    def pause_agent(self, i):
        self.agents[i].proc.send_signal(signal.SIGSTOP)
        self.paused.add(i)

    def resume_agent(self, i):
        self.agents[i].proc.send_signal(signal.SIGCONT)
        self.paused.discard(i)

    def pause_store(self):
        self.s3.proc.send_signal(signal.SIGSTOP)
        self.store_paused = True

    def resume_store(self):
        self.s3.proc.send_signal(signal.SIGCONT)
        self.store_paused = False

    def pg_stop(self):
        self.pg.halt()

    def pg_start(self):
        self.pg.resume()

    def heal(self):
        for i in list(self.paused):
            self.resume_agent(i)
        if self.store_paused:
            self.resume_store()
        if self.pg is not None:
            from test_cluster_outage import pg_down
            if pg_down(self.pg):
                self.pg.resume()
        for i in range(len(self.agents)):
            self.restart(i)

    def stop(self):
        for i in list(self.paused):
            self.resume_agent(i)
        for a in self.agents:
            try:
                a.teardown()
            except BaseException as e:   # a sanitizer report: say it
                print("agent teardown: %s" % e, file=sys.stderr)
        if self.s3 is not None:
            if self.store_paused:
                self.resume_store()
            self.s3.stop()
        if self.pg is not None:
            self.pg.stop()
        for px in self.proxies:
            px.close()

    def logs(self):
        return [p for a in self.agents for p in a.logs]


# --------------------------------------------------------------------------
# The nemesis

def schedule(seed, faults, duration, n_agents):
    """[{"at", "fault", "target", "down"}]: faults drawn from faults with a
    quiet start, each held down seconds, then 3-8 s of quiet."""
    rnd = random.Random("nemesis-%d" % seed)
    out = []
    t = rnd.uniform(3, 6)
    while faults and t < duration - 5:
        f = rnd.choice(faults)
        down = round(rnd.uniform(1.0, 4.0), 2)
        out.append({"at": round(t, 2), "fault": f,
                    "target": rnd.randrange(n_agents)
                    if f in ("kill", "pause-agent") else None,
                    "down": down})
        t += down + rnd.uniform(3, 8)
    return out


class Nemesis(threading.Thread):
    def __init__(self, system, plan, hist, stop):
        super().__init__(name="nemesis", daemon=True)
        self.system, self.plan, self.hist, self.stop = system, plan, hist, stop
        self.error = None

    def run(self):
        t0 = self.hist.now()   # the plan's times count from here
        for f in self.plan:
            wait = t0 + f["at"] - self.hist.now()
            if wait > 0 and self.stop.wait(wait):
                return
            self.apply(f)

    def apply(self, f):
        """One fault, broken then healed. A failure (an agent that does
        not start again) is kept and the plan goes on."""
        s = self.system
        try:
            kind, tgt = f["fault"], f["target"]
            down, up = {
                "kill": (("kill", lambda: s.kill(tgt)),
                         ("restart", lambda: s.restart(tgt))),
                "pause-agent": (
                    ("pause-agent", lambda: s.pause_agent(tgt)),
                    ("resume-agent", lambda: s.resume_agent(tgt))),
                "pause-store": (("pause-store", s.pause_store),
                                ("resume-store", s.resume_store)),
                "pg-restart": (("pg-stop", s.pg_stop),
                               ("pg-start", s.pg_start)),
            }[kind]
            self.hist.add("nemesis", what=down[0], target=tgt)
            down[1]()
            self.stop.wait(f["down"])
            up[1]()
            self.hist.add("nemesis", what=up[0], target=tgt)
        except BaseException as e:  # pytest.fail from Broker.start included
            err = "%s: %s" % (type(e).__name__, e)
            self.error = self.error or err
            self.hist.add("nemesis", what="error", error=err)


# --------------------------------------------------------------------------
# The clients

def client_conf(run, name, **conf):
    """The settings every client of the run shares: its bootstrap, a
    client id naming its process, librdkafka's log lines to clients.log
    (connection refusals during kills are expected, not news)."""
    conf.update({"bootstrap.servers": run.system.bootstrap,
                 "client.id": "cc-%s" % name, "logger": run.client_log})
    return conf


def _err(err):
    return "%s%s" % (err.name(), " (fatal)" if err.fatal() else "")


class Worker(threading.Thread):
    def __init__(self, name, run):
        super().__init__(name=name, daemon=True)
        self.process = name
        self.rnd = random.Random("%s-%d" % (name, run.seed))
        self.run_ = run
        self.error = None

    def run(self):
        try:
            self.body()
        except BaseException as e:
            self.error = "%s: %s" % (type(e).__name__, e)
            self.run_.hist.add("worker-error", process=self.process,
                               error=self.error)


class Writer(Worker):
    """An idempotent acks=all producer writing unique values to random
    partitions at a steady pace. Every send ends ok (with its offset) or
    info (an error: with idempotence, whether it landed is unknown)."""

    def producer(self):
        r = self.run_
        return Producer(client_conf(r, self.process, **{
            "enable.idempotence": True, "acks": "all", "linger.ms": 5,
            "compression.type": "none", "message.timeout.ms": 120000,
            "retry.backoff.ms": 100}))

    def body(self):
        r = self.run_
        p = self.producer()
        fatal = []

        def cb_for(value, part, t0):
            def cb(err, m):
                if err is None:
                    r.hist.add("send", process=self.process, value=value,
                               partition=part, offset=m.offset(),
                               result="ok", t0=t0, txn=None)
                else:
                    if err.fatal():
                        fatal.append(err)
                    r.hist.add("send", process=self.process, value=value,
                               partition=part, offset=None, result="info",
                               error=_err(err), t0=t0, txn=None)
            return cb
        i = 0
        gap = 1.0 / r.args.rate
        while not r.stop.is_set():
            value = "%s-%07d" % (self.process, i)
            part = self.rnd.randrange(r.args.partitions)
            t0 = r.hist.now()
            try:
                p.produce(r.topic, value.encode(), partition=part,
                          on_delivery=cb_for(value, part, t0))
                i += 1
            except BufferError:
                pass
            p.poll(gap)
            if fatal:
                # The producer is unusable: fail what it holds (info) and
                # start a new one (a new producer id).
                r.hist.add("producer-fatal", process=self.process,
                           error=_err(fatal[0]))
                p.flush(5)
                p = self.producer()
                fatal.clear()
        left = p.flush(r.args.flush_timeout)
        if left:
            raise HarnessError("%d sends not completed %d s after the end"
                               % (left, r.args.flush_timeout))


class TxnWriter(Worker):
    """A transactional producer: transactions of 1-4 values over random
    partitions, 80% committed and 20% aborted. A commit or abort that fails
    for an unknown reason ends the transaction as info and the producer is
    replaced (a new init fences the old epoch) instead of aborting, as the
    Jepsen analysis advises (an abort after an unknown commit is the
    KAFKA-17754 trigger)."""

    def producer(self):
        r = self.run_
        while not r.stop.is_set():
            p = Producer(client_conf(r, self.process, **{
                "transactional.id": "cc-%s-%s" % (r.run_id, self.process),
                "acks": "all", "linger.ms": 5, "compression.type": "none",
                "transaction.timeout.ms": 20000,
                "message.timeout.ms": 20000}))
            t0 = r.hist.now()
            try:
                p.init_transactions(10)
                r.hist.add("init", process=self.process, result="ok", t0=t0)
                return p
            except KafkaException as e:
                r.hist.add("init", process=self.process, result="fail",
                           t0=t0, error=_err(e.args[0]))
                r.stop.wait(1)
        return None

    def end(self, p, op, txn):
        """Commits or aborts; returns "ok", "fail" or "info"."""
        r = self.run_
        t0 = r.hist.now()
        try:
            if op == "commit":
                p.commit_transaction(15)
            else:
                p.abort_transaction(15)
            p.poll(0)
            r.hist.add(op, process=self.process, txn=txn, result="ok", t0=t0)
            return "ok"
        except KafkaException as e:
            err = e.args[0]
            if op == "commit" and err.txn_requires_abort():
                # Refused before it was decided (a send failed): aborting
                # settles it; only an acknowledged abort makes the commit
                # a definite failure.
                if self.end(p, "abort", txn) == "ok":
                    r.hist.add(op, process=self.process, txn=txn,
                               result="fail", t0=t0, error=_err(err))
                    return "fail"
            r.hist.add(op, process=self.process, txn=txn, result="info",
                       t0=t0, error=_err(err))
            return "info"

    def body(self):
        r = self.run_
        p = self.producer()
        k = 0
        while p is not None and not r.stop.is_set():
            txn = "%s-%d" % (self.process, k)
            k += 1
            try:
                p.begin_transaction()
            except KafkaException as e:
                r.hist.add("begin", process=self.process, txn=txn,
                           result="fail", error=_err(e.args[0]))
                p = self.producer()
                continue
            r.hist.add("begin", process=self.process, txn=txn, result="ok")
            for j in range(self.rnd.randint(1, 4)):
                value = "%s-%d" % (txn, j)
                part = self.rnd.randrange(r.args.partitions)
                t0 = r.hist.now()

                def cb(err, m, value=value, part=part, t0=t0, txn=txn):
                    r.hist.add("send", process=self.process, value=value,
                               partition=part, txn=txn, t0=t0,
                               offset=None if err else m.offset(),
                               result="info" if err else "ok",
                               error=_err(err) if err else None)
                p.produce(r.topic, value.encode(), partition=part,
                          on_delivery=cb)
            p.flush(20)
            op = "commit" if self.rnd.random() < 0.8 else "abort"
            if self.end(p, op, txn) == "info":
                p = self.producer()
            r.stop.wait(self.rnd.uniform(0, 0.1))


class Reader(Worker):
    """A consumer at one isolation level that assigns itself random
    partitions at random positions (beginning, end, its group's committed
    offset, or an offset between the low and high watermarks), reads for
    1-5 s, sometimes commits its positions, and does it again with a new
    consumer of the same group: librdkafka 2.0.2 aborts the process
    (rd_kafka_assignment_partition_stopped: assertion rktp_started) when
    one consumer's assignment is replaced while partitions move between
    agents (a second FETCH_STOP for one partition, librdkafka issue
    5573)."""

    def __init__(self, name, run, iso):
        super().__init__(name, run)
        self.iso = iso

    def body(self):
        r = self.run_
        while not r.stop.is_set():
            c = Consumer(client_conf(r, self.process, **{
                "group.id": "cc-%s-%s" % (r.run_id, self.process),
                "isolation.level": {"rc": "read_committed",
                                    "ru": "read_uncommitted"}[self.iso],
                "enable.auto.commit": False, "enable.partition.eof": False,
                "auto.offset.reset": "error", "fetch.wait.max.ms": 100,
                **({"debug": r.args.client_debug} if r.args.client_debug
                   else {})}))
            try:
                self.round(c)
            except KafkaException as e:
                r.hist.add("consumer-error", process=self.process,
                           error=_err(e.args[0]))
                r.stop.wait(0.5)
            finally:
                c.close()

    def position(self, c, p):
        """(how, offset): always an absolute offset. librdkafka 2.0.2
        keeps the last logical offset (BEGINNING, END) ever assigned to
        a partition and, when the partition moves to another leader,
        fetches from that offset resolved anew instead of from its
        position: a consumer of this library jumps back to the start or
        forward to the end (README.md, "Client artifacts")."""
        tp = TopicPartition(self.run_.topic, p)
        how = self.rnd.choice(("beginning", "end", "committed", "random"))
        lo, hi = c.get_watermark_offsets(tp, timeout=5, cached=False)
        if how == "beginning":
            return how, lo
        if how == "end":
            return how, hi
        if how == "committed":
            got = c.committed([tp], timeout=5)[0].offset
            return how, got if got >= 0 else lo
        return how, self.rnd.randint(lo, hi)

    def round(self, c):
        r = self.run_
        parts = sorted(self.rnd.sample(range(r.args.partitions),
                                       self.rnd.randint(1, r.args.partitions)))
        pos = {p: self.position(c, p) for p in parts}
        c.assign([TopicPartition(r.topic, p, o) for p, (_, o) in pos.items()])
        r.hist.add("assign", process=self.process, iso=self.iso,
                   positions={str(p): [how, o] for p, (how, o) in pos.items()})
        until = time.monotonic() + self.rnd.uniform(1, 5)
        while time.monotonic() < until and not r.stop.is_set():
            reads = []
            for m in c.consume(500, 0.3):
                if m.error():
                    r.hist.add("consumer-error", process=self.process,
                               partition=m.partition(),
                               error=_err(m.error()))
                    continue
                reads.append([m.partition(), m.offset(),
                              m.value().decode("utf-8", "replace")])
            if reads:
                r.hist.add("poll", process=self.process, iso=self.iso,
                           reads=reads)
        if self.rnd.random() < 0.5:
            got = [tp for tp in c.position(c.assignment()) if tp.offset >= 0]
            if got:
                c.commit(offsets=got, asynchronous=False)
                r.hist.add("commit-offsets", process=self.process,
                           offsets={str(tp.partition): tp.offset
                                    for tp in got})


class RawReader(Worker):
    """Fetch at read_uncommitted over a plain socket (rawlog.py) to a
    random agent, for random partitions from offset 0 or from near where
    it last was: what the broker answers, without a client library's
    buffering in between (a skip seen here is the broker's)."""

    def body(self):
        r = self.run_
        self.at = {}
        while not r.stop.is_set():
            try:
                self.round()
            except (OSError, AssertionError, RuntimeError, ValueError) as e:
                r.hist.add("consumer-error", process=self.process,
                           error="%s: %s" % (type(e).__name__, e))
                r.stop.wait(0.3)

    def round(self):
        r = self.run_
        agent = self.rnd.choice(r.system.agents)
        parts = sorted(self.rnd.sample(range(r.args.partitions),
                                       self.rnd.randint(1, r.args.partitions)))
        pos = {}
        for p in parts:
            back = self.rnd.choice((None, 0, 50))
            pos[p] = 0 if back is None else max(0, self.at.get(p, 0) - back)
        r.hist.add("assign", process=self.process, iso="ru", agent=agent.port,
                   positions={str(p): ["raw", o] for p, o in pos.items()})
        until = time.monotonic() + self.rnd.uniform(1, 5)
        with kproto.connect(agent.bootstrap, 5) as s:
            while time.monotonic() < until and not r.stop.is_set():
                res, _, _ = kproto.fetch(
                    s, rawlog.FETCH_VERSION, 0, -1,
                    [(r.topic, [(p, pos[p], 256 * 1024) for p in parts])],
                    max_wait_ms=200)
                reads = []
                for _, p, err, _hw, _ls, recs in res["parts"]:
                    if err:
                        # Retriable (a store that cannot be reached
                        # answers KAFKA_STORAGE_ERROR): not in a tight loop.
                        r.hist.add("consumer-error", process=self.process,
                                   partition=p, error="fetch at %d: error "
                                   "%d" % (pos[p], err))
                        r.stop.wait(0.1)
                        continue
                    for b in rawlog.decode_batches(recs or b""):
                        reads.extend([p, o, v] for o, v in b["records"]
                                     if o >= pos[p])
                        pos[p] = max(pos[p], b["last"] + 1)
                    self.at[p] = pos[p]
                if reads:
                    r.hist.add("poll", process=self.process, iso="ru",
                               reads=reads)


# --------------------------------------------------------------------------
# The final read

def wait_stable(run, timeout):
    """Waits until every partition's last stable offset (read_committed
    "latest") reaches its high watermark: no transaction open and every
    marker written (Kafka writes markers after answering EndTxn), so the
    final read_committed read holds every committed value. Returns the
    partitions still unstable after timeout (read as they are)."""
    offs = {}
    for iso in ("read_committed", "read_uncommitted"):
        offs[iso] = Consumer(client_conf(run, "final-" + iso[5:], **{
            "group.id": "cc-%s-final" % run.run_id, "isolation.level": iso}))
    try:
        deadline = time.monotonic() + timeout
        while True:
            ends = {iso: [c.get_watermark_offsets(
                TopicPartition(run.topic, p), timeout=10, cached=False)[1]
                for p in range(run.args.partitions)]
                for iso, c in offs.items()}
            unstable = [p for p in range(run.args.partitions)
                        if ends["read_committed"][p] !=
                        ends["read_uncommitted"][p]]
            if not unstable or time.monotonic() > deadline:
                return unstable
            time.sleep(0.5)
    finally:
        for c in offs.values():
            c.close()


def final_read_rc(run, timeout):
    """Every partition from the start to its read_committed end, with a
    read_committed consumer."""
    a = run.args
    c = Consumer(client_conf(run, "final", **{
                  "group.id": "cc-%s-final" % run.run_id,
                  "isolation.level": "read_committed",
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "auto.offset.reset": "error", "fetch.wait.max.ms": 100}))
    try:
        ends = {p: c.get_watermark_offsets(TopicPartition(run.topic, p),
                                           timeout=10, cached=False)[1]
                for p in range(a.partitions)}
        c.assign([TopicPartition(run.topic, p, OFFSET_BEGINNING)
                  for p in range(a.partitions)])
        reads = {p: [] for p in range(a.partitions)}
        done = set()
        deadline = time.monotonic() + timeout
        while len(done) < a.partitions:
            if time.monotonic() > deadline:
                raise HarnessError(
                    "final read_committed read not done in %d s: ends %s, "
                    "read %s" % (timeout, ends, {p: len(v) for p, v in
                                                 reads.items()}))
            for m in c.consume(1000, 0.5):
                p = m.partition()
                if m.error():
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        raise KafkaException(m.error())
                    if m.offset() >= ends[p]:
                        done.add(p)
                    continue
                reads[p].append([m.offset(), m.value().decode("utf-8",
                                                              "replace")])
        for p in range(a.partitions):
            run.hist.add("final", iso="rc", partition=p, end=ends[p],
                         reads=reads[p])
    finally:
        c.close()


def final_read_raw(run):
    """Every partition's whole log, control batches included, from an
    agent that answers for it."""
    for p in range(run.args.partitions):
        last = None
        for agent in run.system.agents:
            try:
                hw, batches = rawlog.read_partition(agent.bootstrap, run.topic,
                                                    p)
                run.hist.add("raw", partition=p, end=hw, batches=batches)
                break
            except (RuntimeError, OSError, AssertionError) as e:
                last = e
        else:
            raise HarnessError("raw read of partition %d: %s" % (p, last))


def print_log_excerpts(paths, per_log=25):
    """The agents' warnings, errors and transaction lines, so that a CI
    log that keeps only the output can still explain an anomaly."""
    pat = re.compile(r"warn|error|txn|transaction|marker|coordinat|lease",
                     re.I)
    for path in paths:
        try:
            with open(path, errors="replace") as f:
                hits = [line.rstrip() for line in f if pat.search(line)]
        except OSError:
            continue
        print("  %s: %d matching lines%s" % (
            os.path.basename(path), len(hits),
            ", the last %d:" % per_log if len(hits) > per_log else ":"))
        for line in hits[-per_log:]:
            print("    " + line[:200])


# --------------------------------------------------------------------------
# One run

class Run:
    def __init__(self, args):
        self.args = args
        self.seed = args.seed
        self.run_id = uuid.uuid4().hex[:8]
        self.stop = threading.Event()
        self.hist = None
        self.system = None
        self.topic = "cc-%s" % self.run_id

    def go(self):
        a = self.args
        os.makedirs(a.out, exist_ok=True)
        self.hist = History(os.path.join(a.out, "history.jsonl"))
        self.client_log = logging.getLogger("clients")
        self.client_log.propagate = False
        self.client_log.addHandler(logging.FileHandler(
            os.path.join(a.out, "clients.log")))
        wire = None
        if a.wire:
            def record(client, iso, p, asked, first, last, hw, err):
                self.hist.add("wire-fetch", process=client, iso=iso,
                              partition=p, asked=asked, first=first,
                              last=last, hw=hw, error=err)
            wire = (lambda: self.topic, record)
        self.faults = FAULTS[a.mode] if a.faults == "all" else \
            tuple(f for f in a.faults.split(",") if f and f != "none")
        for f in self.faults:
            if f not in FAULTS[a.mode]:
                raise HarnessError("fault %s is not available in %s mode "
                                   "(%s)" % (f, a.mode,
                                             ", ".join(FAULTS[a.mode])))
        # ctest's PostgreSQL (the pg fixture) saves starting one, unless
        # the run restarts it.
        shared_pg = None
        if "pg-restart" not in self.faults:
            shared_pg = os.environ.get("SLUICE_TEST_PG_URL_FILE")
        self.system = System(a.mode, a.agents, a.out, wire, shared_pg)
        try:
            return self._go()
        finally:
            self.stop.set()
            self.system.stop()
            self.hist.close()

    def _go(self):
        a, h = self.args, self.hist
        self.system.start()
        t_up = h.now()
        txn = self.system.txn_supported()
        print("transactions: broker %s them (ApiVersions keys %s)" % (
            "advertises" if txn else "does not advertise",
            "/".join(map(str, TXN_APIS))))
        if a.txn == "on" and not txn:
            print("SKIPPED: --txn on, but the broker does not advertise "
                  "transactions yet (InitProducerId with a transactional "
                  "id answers COORDINATOR_NOT_AVAILABLE): nothing was "
                  "checked")
            return SKIP
        use_txn = txn and a.txn != "off"
        faults = self.faults
        plan = schedule(a.seed, faults, a.duration, len(self.system.agents))
        print("seed %d: nemesis schedule (re-run with --seed %d):" % (
            a.seed, a.seed))
        for f in plan:
            print("  at %6.2f s  %-11s %s down %.2f s" % (
                f["at"], f["fault"], "agent-%d" % f["target"]
                if f["target"] is not None else "", f["down"]))
        h.add("meta", seed=a.seed, mode=a.mode, agents=len(self.system.agents),
              partitions=a.partitions, topic=self.topic, txn=use_txn,
              faults=list(faults), plan=plan, duration=a.duration)
        util.create_topic(self.system.agents[0].bootstrap, self.topic,
                          a.partitions)
        for agent in self.system.agents:
            util.wait_topic(agent.bootstrap, self.topic, a.partitions)
            util.forget_admin(agent.bootstrap)

        workers = [Writer("w%d" % i, self) for i in range(a.writers)]
        if use_txn:
            workers += [TxnWriter("t%d" % i, self)
                        for i in range(a.txn_writers)]
        workers += [Reader("rc%d" % i, self, "rc") for i in range(a.readers)]
        workers += [Reader("ru%d" % i, self, "ru") for i in range(a.readers)]
        workers += [RawReader("raw%d" % i, self)
                    for i in range(a.raw_readers)]
        nemesis = Nemesis(self.system, plan, h, self.stop)
        t_begin = h.now()
        for w in workers:
            w.start()
        nemesis.start()
        self.stop.wait(a.duration)
        self.stop.set()
        nemesis.join(60)
        t_stop = h.now()
        # An agent that is down now and was not being killed exited by
        # itself: a crash, whatever the history says.
        crashed = [(i, ag.proc.returncode) for i, ag in
                   enumerate(self.system.agents) if not ag.running()]
        for i, status in crashed:
            h.add("agent-exit", target=i, status=status)
        # Healed first: the writers' last sends and the readers' last
        # calls need the agents they wait for.
        self.system.heal()
        h.add("healed")
        for w in workers:
            w.join(a.flush_timeout + 30)
        t_end = h.now()
        stuck = [w.process for w in workers if w.is_alive()]
        errors = [(w.process, w.error) for w in workers if w.error]
        if stuck or errors:
            raise HarnessError("workers stuck %s, failed %s" % (stuck, errors))
        # A restart that failed (an agent that crashed starting) is the
        # broker's failure, reported after the history is checked.
        failures = ["agent-%d exited by itself (status %s)" % c
                    for c in crashed]
        failures += ["a start failed: " + f
                     for f in self.system.start_failures]
        if nemesis.error:
            failures.append("nemesis: " + nemesis.error.splitlines()[0])
        # Another agent's commits reach the one asked with its next poll.
        time.sleep(1.0)
        unstable = wait_stable(self, a.final_timeout / 2)
        if unstable:
            print("partitions %s: last stable offset still below the high "
                  "watermark %d s after the end" % (unstable,
                                                     a.final_timeout / 2))
            h.add("unstable", partitions=unstable)
        final_read_rc(self, a.final_timeout)
        final_read_raw(self)
        print("started in %.1f s; workload %.1f s, then %.1f s to drain the "
              "clients, %.1f s to heal and read back; history %d events in "
              "%s" % (t_up, t_stop - t_begin, t_end - t_stop,
                      h.now() - t_end, h.count, h.path))
        h.close()
        events = checker.load(h.path)
        n = checker.report(events)
        if n:
            print("ANOMALIES FOUND: seed %d, history %s, agent logs %s" % (
                a.seed, h.path, " ".join(self.system.logs())))
            print_log_excerpts(self.system.logs())
        for f in failures:
            print("AGENT FAILURE (seed %d, dir %s): %s" % (a.seed, a.out, f))
        return 1 if n else 2 if failures else 0


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=("single", "cluster"), default="single")
    ap.add_argument("--agents", type=int, default=2,
                    help="agents in cluster mode (default 2)")
    ap.add_argument("--duration", type=float, default=20,
                    help="seconds of workload (default 20)")
    ap.add_argument("--seed", type=int, default=None,
                    help="nemesis and workload seed (default: random, "
                    "printed)")
    ap.add_argument("--faults", default="kill",
                    help="comma-separated: kill, pause-agent, pause-store "
                    "and pg-restart (cluster mode), or all, or none "
                    "(default kill)")
    ap.add_argument("--txn", choices=("auto", "on", "off"), default="auto",
                    help="transactional producers: when advertised (auto), "
                    "required (on: skip with status 77 if not), never")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--writers", type=int, default=3)
    ap.add_argument("--txn-writers", type=int, default=2)
    ap.add_argument("--readers", type=int, default=2,
                    help="consumers per isolation level (default 2)")
    ap.add_argument("--raw-readers", type=int, default=1,
                    help="fetchers over a plain socket (default 1)")
    ap.add_argument("--wire", action="store_true",
                    help="clients reach the agents through recording "
                    "proxies (wire.py): each Fetch's asked and answered "
                    "offsets go into the history")
    ap.add_argument("--client-debug", default="",
                    help="librdkafka debug contexts for the consumers "
                    "(e.g. fetch,msg), logged to clients.log")
    ap.add_argument("--rate", type=float, default=100,
                    help="sends per second per idempotent writer")
    ap.add_argument("--flush-timeout", type=int, default=150)
    ap.add_argument("--final-timeout", type=int, default=120)
    ap.add_argument("--out", default=None,
                    help="directory for the history and the agents' data "
                    "(default: a new temp dir, removed after a clean run)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temp dir after a clean run")
    a = ap.parse_args(argv)
    if a.seed is None:
        a.seed = random.SystemRandom().randrange(1 << 31)
    return a


def run_once(a):
    """The run itself (in the process main() forks): its exit status."""
    try:
        return Run(a).go()
    except BaseException as e:   # pytest.fail from the fixtures included
        print("RUN FAILED (seed %d, dir %s): %s: %s" % (
            a.seed, a.out, type(e).__name__, e))
        return 2


def supervise(a):
    """Runs run_once in a child process of its own process group, so that
    when a client library aborts it (librdkafka asserts) or the run is
    interrupted, the agents, s3rver and PostgreSQL it started are still
    stopped: the group is killed and the run's own PostgreSQL (under
    a.out/pg) stopped."""
    pid = os.fork()
    if pid == 0:
        os.setpgid(0, 0)
        rc = 2
        try:
            rc = run_once(a)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(rc)

    def cleanup(why):
        print("RUN FAILED (seed %d, dir %s): %s; stopping what it started"
              % (a.seed, a.out, why))
        sys.stdout.flush()
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        state = os.path.join(a.out, "pg")
        if os.path.exists(os.path.join(state, "dir")):
            subprocess.run([os.path.join(HERE, "..", "..", "tools",
                                         "pg-test.sh"), "stop", state],
                           timeout=120, stdout=subprocess.DEVNULL)

    def interrupted(signum, _frame):
        cleanup("interrupted by signal %d" % signum)
        os._exit(2)
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        cleanup("the run's process died of signal %d (a client library's "
                "assertion?)" % os.WTERMSIG(status))
        return 2
    return os.WEXITSTATUS(status)


def main(argv):
    a = parse(argv)
    temp = a.out is None
    if temp:
        a.out = tempfile.mkdtemp(prefix="sluice-consistency-")
    print("consistency run: mode %s, %.0f s, faults %s, txn %s, seed %d, "
          "dir %s" % (a.mode, a.duration, a.faults, a.txn, a.seed, a.out))
    sys.stdout.flush()
    t0 = time.monotonic()
    rc = supervise(a)
    print("wall %.1f s, exit %d" % (time.monotonic() - t0, rc))
    if temp and rc in (0, SKIP) and not a.keep:
        shutil.rmtree(a.out, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
