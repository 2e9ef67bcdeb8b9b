"""Exactly-once consume-transform-produce through kill -9 (issue 14): an
application in its own process (eos_app.py with confluent-kafka, or
js/eos_app.js with kafkajs: a read_committed consumer of a group, a
transactional producer, the consumed offsets sent to each transaction) copies an input topic of distinct records to an output topic
in small transactions while the agent is killed -9 and restarted on its
data dir (once at a random moment, once with a transaction certainly open)
and the application itself is killed -9 and restarted (once with a
transaction open, once at a random moment). At the end the output read
with read_committed holds each input record exactly once, in its input
order per partition; read_uncommitted holds the same plus the aborted
records (at least the open transaction of the killed application), and
the partitions hold nothing else but one control batch per transaction
and partition, which no client hands to the application."""
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

import kproto
import util

HERE = os.path.dirname(os.path.abspath(__file__))
PARTITIONS = 3
RECORDS = 3000
BATCH = 40  # records per transaction at most


class App:
    """One eos_app.py process and its progress lines."""

    def __init__(self, flavour, bootstrap, src, dst, group, txn_id, stall, log_dir):
        app = ([sys.executable, os.path.join(HERE, "eos_app.py")] if flavour == "confluent"
               else ["node", os.path.join(HERE, "js", "eos_app.js")])
        self.args = app + [bootstrap, src, dst, group, txn_id, str(BATCH), stall]
        self.log_dir = log_dir
        self.starts = 0
        self.lines = queue.Queue()
        self.committed = 0  # input records whose transaction committed
        self.proc = None

    def start(self):
        self.starts += 1
        err = open(os.path.join(self.log_dir, "app.%d.log" % self.starts), "wb")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE,
                                     stderr=err, stdin=subprocess.DEVNULL)
        proc = self.proc

        def pump():
            for line in proc.stdout:
                self.lines.put((proc, json.loads(line)))
        threading.Thread(target=pump, daemon=True).start()

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def wait_for(self, what, timeout=60):
        """Read progress lines until what(line) holds; the input records
        committed so far count across restarts (each run reads from the
        offsets the previous one committed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                proc, line = self.lines.get(timeout=0.2)
            except queue.Empty:
                rc = self.proc.poll()
                assert rc is None or rc == 0, "eos_app exited %d: %s" % (
                    rc, self.log_tail())
                continue
            if proc is not self.proc:
                continue
            if "fatal" in line:
                raise AssertionError("eos_app: %s\n%s" % (line, self.log_tail()))
            if "pos" in line:
                self.committed = sum(line["pos"].values())
            if what(line):
                return line
        raise AssertionError("eos_app made no progress in %d s (%d of %d "
                             "committed)\n%s" % (timeout, self.committed,
                                                 RECORDS, self.log_tail()))

    def log_tail(self):
        path = os.path.join(self.log_dir, "app.%d.log" % self.starts)
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")[-3000:]


def read_all(bootstrap, topic, isolation, expect):
    """(partition, value) in offset order per partition, read from the start
    until expect records came and nothing more for a second."""
    c = Consumer({"bootstrap.servers": bootstrap,
                  "group.id": util.topic_name("eos-read"),
                  "isolation.level": isolation, "enable.auto.commit": False,
                  "enable.partition.eof": False, "fetch.wait.max.ms": 100})
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING)
              for p in range(PARTITIONS)])
    out = []
    deadline = time.monotonic() + 30
    quiet_until = None
    try:
        while time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is None:
                if len(out) >= expect:
                    quiet_until = quiet_until or time.monotonic() + 1.0
                    if time.monotonic() > quiet_until:
                        break
                continue
            assert m.error() is None, m.error()
            out.append((m.partition(), m.value()))
            quiet_until = None
    finally:
        c.close()
    return out


def raw_batches(bootstrap, topic, partition, end):
    """(data records, control batches) of the partition below end, from
    read_uncommitted Fetch v11 answers walked batch by batch."""
    s = kproto.connect(bootstrap)
    data = control = 0
    offset = 0
    try:
        while offset < end:
            out, _, _ = kproto.fetch(s, 11, 0, -1, [(topic, [(partition, offset,
                                                              1 << 20)])])
            records = out["parts"][0][5] or b""
            assert out["parts"][0][2] == 0, out["parts"][0]
            pos = 0
            while pos + 61 <= len(records):
                base = int.from_bytes(records[pos:pos + 8], "big", signed=True)
                length = int.from_bytes(records[pos + 8:pos + 12], "big")
                if pos + 12 + length > len(records):
                    break
                attributes = int.from_bytes(records[pos + 21:pos + 23], "big")
                last_delta = int.from_bytes(records[pos + 23:pos + 27], "big")
                assert attributes & 0x10, "a non-transactional batch in the output"
                if attributes & 0x20:
                    control += 1
                    assert last_delta == 0
                else:
                    data += last_delta + 1
                offset = base + last_delta + 1
                pos += 12 + length
    finally:
        s.close()
    return data, control


@pytest.mark.parametrize("flavour", ["confluent", "kafkajs"])
def test_exactly_once_through_kill9(broker_factory, tmp_path, flavour):
    if flavour == "kafkajs" and not os.path.isdir(os.path.join(HERE, "js", "node_modules",
                                                                 "kafkajs")):
        pytest.fail("kafkajs is not installed in %s/js/node_modules; run "
                    "tools/install-node-deps.sh (make deps-test)" % HERE)
    b = broker_factory(extra_args=["--group-initial-rebalance-delay-ms", "0"])
    src = util.create_topic(b.bootstrap, util.topic_name("eos-in"), PARTITIONS)
    dst = util.create_topic(b.bootstrap, util.topic_name("eos-out"), PARTITIONS)
    inputs = {p: [] for p in range(PARTITIONS)}
    producer = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 5,
                         "enable.idempotence": True})
    for i in range(RECORDS):
        value = b"v%05d" % i
        inputs[i % PARTITIONS].append(value)
        producer.produce(src, value, b"k%d" % i, partition=i % PARTITIONS)
    assert producer.flush(60) == 0
    stall = str(tmp_path / "stall")
    app = App(flavour, b.bootstrap, src, dst, util.topic_name("eos-g"),
              util.topic_name("eos-tid"), stall, str(tmp_path))
    app.start()

    def progress(fraction):
        return lambda line: app.committed >= fraction * RECORDS

    # The agent at a random moment: transactions are flowing back to back.
    app.wait_for(progress(0.15))
    b.kill9()
    b.start()
    # The agent with a transaction open, its records acknowledged: the
    # application commits it after the restart.
    app.wait_for(progress(0.35))
    open(stall, "w").close()
    app.wait_for(lambda line: "stalled" in line)
    b.kill9()
    b.start()
    os.unlink(stall)
    # The application with a transaction open: the next instance's
    # init_transactions fences it and aborts the transaction, and it
    # goes on from the group's committed offsets.
    app.wait_for(progress(0.55))
    open(stall, "w").close()
    app.wait_for(lambda line: "stalled" in line)
    app.kill9()
    os.unlink(stall)
    app.start()
    # The application at a random moment. Not for kafkajs, which has no
    # static membership: each of its restarts waits out the dead member's
    # session (6 s), and the one above shows it resumes.
    if flavour == "confluent":
        app.wait_for(progress(0.75))
        app.kill9()
        app.start()
    app.wait_for(lambda line: "done" in line)
    assert app.proc.wait(30) == 0

    committed = read_all(b.bootstrap, dst, "read_committed", RECORDS)
    for p in range(PARTITIONS):
        got = [v for q, v in committed if q == p]
        want = [b"out:" + v for v in inputs[p]]
        assert got == want, "partition %d: %d records read_committed, %d " \
            "distinct, %d expected" % (p, len(got), len(set(got)), len(want))
    uncommitted = read_all(b.bootstrap, dst, "read_uncommitted", RECORDS)
    expected = {b"out:" + v for p in inputs for v in inputs[p]}
    assert set(v for _, v in uncommitted) == expected
    # The killed application's open transaction is there, aborted.
    assert len(uncommitted) > RECORDS
    hws = util.high_watermarks(b.bootstrap, dst, PARTITIONS)
    for p in range(PARTITIONS):
        data, control = raw_batches(b.bootstrap, dst, p, hws[p])
        # Dense offsets: data and markers fill the partition, and the
        # clients handed over every data record and no control record.
        assert data + control == hws[p]
        assert data == len([1 for q, _ in uncommitted if q == p])
        assert control >= RECORDS // PARTITIONS // BATCH
