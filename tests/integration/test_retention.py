"""test_retention.py — retention.ms, retention.bytes and DeleteRecords.

The retention sweep (--retention-check-interval-ms, short here) moves a
partition's log start past the batches its topic's retention.ms and
retention.bytes expire, as Kafka deletes old segments: clients see the
new low watermark, a read from before it gets OFFSET_OUT_OF_RANGE (and
auto.offset.reset=earliest lands on the log start), the rest reads back,
and it survives a restart. DeleteRecords (kafkajs's admin client, and by
hand for v0-v2 and each error Kafka gives) does the same on request. An
object left with nothing readable goes to `sluice gc`.
"""
import json
import os
import re
import subprocess
import time

from confluent_kafka import Producer, TopicPartition

import kproto
import util
from conftest import SLUICE_BIN

JS_DIR = os.path.join(os.path.dirname(__file__), "js")
SWEEP = ["--retention-check-interval-ms", "100"]


def produce_batches(bootstrap, topic, partition, values, timestamp=None,
                    key=None):
    """Each value in its own produce request (its own batch); key is
    needed for compacted topics (they refuse records without one)."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    errs = []
    for v in values:
        kw = {"timestamp": timestamp} if timestamp is not None else {}
        p.produce(topic, v, key, partition=partition,
                  on_delivery=lambda e, m: e and errs.append(e), **kw)
        assert p.flush(15) == 0
    assert not errs, errs


def watermarks(bootstrap, topic, partition):
    c = util.consumer(bootstrap)
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
    finally:
        c.close()


def wait_low(bootstrap, topic, partition, want, timeout=15):
    deadline = time.time() + timeout
    while True:
        low, high = watermarks(bootstrap, topic, partition)
        if low == want or time.time() > deadline:
            return low, high
        time.sleep(0.1)


def read_from_beginning(bootstrap, topic, partition, n, timeout=15):
    """(offsets, values) of the first n records a consumer with
    auto.offset.reset=earliest gets, starting at offset 0."""
    c = util.consumer(bootstrap, **{"auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, partition, 0)])
    got = []
    deadline = time.time() + timeout
    try:
        while len(got) < n and time.time() < deadline:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            got.append((m.offset(), m.value()))
    finally:
        c.close()
    return [o for o, _ in got], [v for _, v in got]


def out_of_range_at(bootstrap, topic, partition, offset):
    """True when a fetch at offset gets OFFSET_OUT_OF_RANGE (a consumer with
    auto.offset.reset=error reports it)."""
    c = util.consumer(bootstrap, **{"auto.offset.reset": "error"})
    c.assign([TopicPartition(topic, partition, offset)])
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error():
                return "Offset out of range" in str(m.error()) or \
                    "out of range" in str(m.error()).lower()
            if m is not None:
                return False
        return False
    finally:
        c.close()


def test_retention_ms(broker_factory):
    b = broker_factory(extra_args=SWEEP)
    t = util.topic_name("ret-ms")
    util.create_topic(b.bootstrap, t, 2, config={"retention.ms": "60000"})
    now = int(time.time() * 1000)
    produce_batches(b.bootstrap, t, 0, [b"old-%d" % i for i in range(5)], now - 3600 * 1000)
    produce_batches(b.bootstrap, t, 0, [b"new-%d" % i for i in range(5)], now)
    # An expired batch after a fresh one stays: Kafka stops at the first
    # segment that has not expired.
    produce_batches(b.bootstrap, t, 0, [b"late-old"], now - 3600 * 1000)
    produce_batches(b.bootstrap, t, 1, [b"p1-%d" % i for i in range(3)], now)

    assert wait_low(b.bootstrap, t, 0, 5) == (5, 11)
    assert watermarks(b.bootstrap, t, 1) == (0, 3)
    offsets, values = read_from_beginning(b.bootstrap, t, 0, 6)
    assert offsets == list(range(5, 11))
    assert values == [b"new-%d" % i for i in range(5)] + [b"late-old"]
    assert out_of_range_at(b.bootstrap, t, 0, 2)

    # The log start is in the metadata store: a restart keeps it.
    b.restart(clean=False)
    assert watermarks(b.bootstrap, t, 0) == (5, 11)
    assert read_from_beginning(b.bootstrap, t, 0, 6)[0] == list(range(5, 11))


def test_retention_off_and_compact(broker_factory):
    """retention.ms -1 keeps everything; so does a compact-only policy."""
    b = broker_factory(extra_args=SWEEP)
    keep = util.topic_name("ret-keep")
    compact = util.topic_name("ret-compact")
    util.create_topic(b.bootstrap, keep, 1, config={"retention.ms": "-1"})
    util.create_topic(b.bootstrap, compact, 1,
                      config={"retention.ms": "1000", "cleanup.policy": "compact"})
    old = int(time.time() * 1000) - 86400 * 1000
    produce_batches(b.bootstrap, keep, 0, [b"a", b"b"], old)
    produce_batches(b.bootstrap, compact, 0, [b"a", b"b"], old, key=b"k")
    time.sleep(1.0)  # ten sweeps
    assert watermarks(b.bootstrap, keep, 0) == (0, 2)
    assert watermarks(b.bootstrap, compact, 0) == (0, 2)


def test_retention_bytes(broker_factory):
    b = broker_factory(extra_args=SWEEP)
    t = util.topic_name("ret-bytes")
    # Six batches of ~1.07 KB: keeping at least 2,500 bytes keeps three.
    util.create_topic(b.bootstrap, t, 1, config={"retention.bytes": "2500"})
    produce_batches(b.bootstrap, t, 0, [bytes([65 + i]) * 1000 for i in range(6)])
    assert wait_low(b.bootstrap, t, 0, 3) == (3, 6)
    offsets, values = read_from_beginning(b.bootstrap, t, 0, 3)
    assert offsets == [3, 4, 5]
    assert values == [bytes([65 + i]) * 1000 for i in range(3, 6)]


def gc_dead_deleted(b):
    """Runs `sluice gc` with no grace (nothing is produced meanwhile);
    returns how many dead objects it deleted."""
    r = subprocess.run([SLUICE_BIN, "gc", "--data", b.data_dir, "--grace-minutes", "0",
                        "--force"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    m = re.search(r"gc: deleted (\d+) dead objects", r.stdout + r.stderr)
    assert m, r.stdout + r.stderr
    return int(m.group(1))


def kafkajs_delete(bootstrap, topic, specs):
    r = subprocess.run(["node", os.path.join(JS_DIR, "delete_records.js"), bootstrap, topic]
                       + ["%d:%d" % s for s in specs],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_delete_records_kafkajs(broker):
    t = util.topic_name("delrec")
    util.create_topic(broker.bootstrap, t, 2)
    produce_batches(broker.bootstrap, t, 0, [b"m-%d" % i for i in range(10)])
    produce_batches(broker.bootstrap, t, 1, [b"x-%d" % i for i in range(4)])
    # -1: up to the high watermark.
    assert kafkajs_delete(broker.bootstrap, t, [(0, 6), (1, -1)]) == {"ok": True}
    assert watermarks(broker.bootstrap, t, 0) == (6, 10)
    assert watermarks(broker.bootstrap, t, 1) == (4, 4)
    offsets, values = read_from_beginning(broker.bootstrap, t, 0, 4)
    assert offsets == [6, 7, 8, 9]
    assert values == [b"m-%d" % i for i in range(6, 10)]
    assert out_of_range_at(broker.bootstrap, t, 0, 5)
    # Past the high watermark: Kafka's OFFSET_OUT_OF_RANGE, nothing moves.
    r = kafkajs_delete(broker.bootstrap, t, [(0, 11)])
    assert r == {"error": "KafkaJSDeleteTopicRecordsError", "codes": ["OFFSET_OUT_OF_RANGE"]}
    assert watermarks(broker.bootstrap, t, 0) == (6, 10)
    # Producing goes on at the high watermark.
    produce_batches(broker.bootstrap, t, 1, [b"after"])
    assert read_from_beginning(broker.bootstrap, t, 1, 1) == ([4], [b"after"])


def test_delete_records_raw(broker):
    t = util.topic_name("delrec-raw")
    compact = util.topic_name("delrec-compact")
    util.create_topic(broker.bootstrap, t, 2)
    util.create_topic(broker.bootstrap, compact, 1, config={"cleanup.policy": "compact"})
    produce_batches(broker.bootstrap, t, 0, [b"%d" % i for i in range(3)] * 2)
    produce_batches(broker.bootstrap, compact, 0, [b"c"], key=b"k")
    s = kproto.connect(broker.bootstrap)
    try:
        for v in (0, 1, 2):
            r = kproto.delete_records(s, {t: {0: v + 1}}, version=v)
            assert r == {(t, 0): (0, v + 1)}
        # Never backwards: the answer is the log start as it stands.
        assert kproto.delete_records(s, {t: {0: 1}}, version=2) == {(t, 0): (0, 3)}
        r = kproto.delete_records(s, {t: {0: 7, 1: -2, 9: 0}, "no-such-topic": {0: 0},
                                      compact: {0: 1}}, version=1)
        assert r == {(t, 0): (1, -1), (t, 1): (1, -1), (t, 9): (3, -1),
                     ("no-such-topic", 0): (3, -1), (compact, 0): (44, -1)}
        # The high watermark itself is allowed, -1 means it.
        assert kproto.delete_records(s, {t: {0: 6, 1: -1}}) == {(t, 0): (0, 6), (t, 1): (0, 0)}
        _, apis, _ = kproto.api_versions_v0(s)
        assert apis[kproto.API_DELETE_RECORDS] == (0, 2)
    finally:
        s.close()
    assert watermarks(broker.bootstrap, t, 0) == (6, 6)
    assert watermarks(broker.bootstrap, compact, 0) == (0, 1)


def test_deleted_records_objects_collected(broker_factory):
    """An object left with no readable batch goes to `sluice gc`; the
    partition keeps working."""
    b = broker_factory()
    t = util.topic_name("delrec-gc")
    util.create_topic(b.bootstrap, t, 1)
    produce_batches(b.bootstrap, t, 0, [b"v" * 5000 for _ in range(4)])
    root = os.path.join(b.data_dir, "objects")

    def objects():
        return sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
                      if not f.startswith(".tmp."))

    before = objects()
    assert len(before) >= 1
    s = kproto.connect(b.bootstrap)
    try:
        assert kproto.delete_records(s, {t: {0: -1}}) == {(t, 0): (0, 4)}
    finally:
        s.close()
    assert gc_dead_deleted(b) == len(before)
    assert objects() == []
    produce_batches(b.bootstrap, t, 0, [b"after"])
    assert read_from_beginning(b.bootstrap, t, 0, 1) == ([4], [b"after"])


def test_retention_without_timestamps(broker_factory):
    """A batch without timestamps (-1) counts from when it was stored, as
    Kafka falls back to a segment's modification time: the default
    retention (7 days) keeps it."""
    b = broker_factory(extra_args=SWEEP)
    t = util.topic_name("ret-nots")
    util.create_topic(b.bootstrap, t, 1)
    s = kproto.connect(b.bootstrap)
    try:
        batch = kproto.record_batch([(None, b"no-ts-%d" % i, ()) for i in range(3)], base_ts=-1)
        assert kproto.produce_v3(s, {t: {0: batch}}) == {(t, 0): (0, 0)}
    finally:
        s.close()
    time.sleep(1.0)  # ten sweeps
    assert watermarks(b.bootstrap, t, 0) == (0, 3)
    assert read_from_beginning(b.bootstrap, t, 0, 3)[1] == [b"no-ts-%d" % i for i in range(3)]


def test_delete_records_inside_a_batch(broker):
    """The log start inside a batch: the batch stays whole for fetches, but
    timestamp lookups answer only offsets at or after the log start (as
    Kafka's searchForTimestamp does)."""
    t = util.topic_name("delrec-mid")
    util.create_topic(broker.bootstrap, t, 1)
    base = int(time.time() * 1000) - 60000
    s = kproto.connect(broker.bootstrap)
    try:
        batch = kproto.record_batch([(None, b"r%d" % i, ()) for i in range(10)], base_ts=base,
                                    ts_deltas=[i * 100 for i in range(10)])
        assert kproto.produce_v3(s, {t: {0: batch}}) == {(t, 0): (0, 0)}
        assert kproto.delete_records(s, {t: {0: 5}}) == {(t, 0): (0, 5)}
    finally:
        s.close()
    c = util.consumer(broker.bootstrap)
    try:
        def at(ts):
            return c.offsets_for_times([TopicPartition(t, 0, ts)], timeout=10)[0].offset
        assert at(0) == 5
        assert at(base + 200) == 5
        assert at(base + 700) == 7
    finally:
        c.close()
    offsets, values = read_from_beginning(broker.bootstrap, t, 0, 5)
    assert offsets == [5, 6, 7, 8, 9]
    assert values == [b"r%d" % i for i in range(5, 10)]


def test_trim_keeps_shared_objects(broker_factory):
    """Two partitions in one object: trimming one leaves the object to the
    other, and gc keeps it."""
    b = broker_factory()
    t = util.topic_name("delrec-shared")
    util.create_topic(b.bootstrap, t, 2)
    s = kproto.connect(b.bootstrap)
    try:
        b0 = kproto.record_batch([(None, b"zero", ())])
        b1 = kproto.record_batch([(None, b"one", ())])
        assert kproto.produce_v3(s, {t: {0: b0, 1: b1}}) == {(t, 0): (0, 0), (t, 1): (0, 0)}
        assert kproto.delete_records(s, {t: {0: -1}}) == {(t, 0): (0, 1)}
    finally:
        s.close()
    assert gc_dead_deleted(b) == 0
    assert read_from_beginning(b.bootstrap, t, 1, 1) == ([0], [b"one"])
    assert watermarks(b.bootstrap, t, 0) == (1, 1)


def test_retention_while_producing(broker_factory):
    """Sweeps run between produce commits: every acknowledged record at or
    after the final log start reads back in order, and a drain during the
    sweeps ends promptly."""
    b = broker_factory(extra_args=SWEEP)
    t = util.topic_name("ret-busy")
    util.create_topic(b.bootstrap, t, 4, config={"retention.bytes": "30000"})
    p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 2})
    acked = {i: [] for i in range(4)}
    errs = []

    def cb(e, m):
        if e:
            errs.append(e)
        else:
            acked[m.partition()].append((m.offset(), m.value()))

    deadline = time.time() + 3
    n = 0
    while time.time() < deadline:
        p.produce(t, b"%08d" % n + b"x" * 500, partition=n % 4, on_delivery=cb)
        n += 1
        if n % 200 == 0:
            p.poll(0)
            time.sleep(0.01)
    assert p.flush(30) == 0
    assert not errs, errs[:3]
    time.sleep(0.5)  # the last sweeps settle the log starts
    for part in range(4):
        low, high = watermarks(b.bootstrap, t, part)
        assert 0 < low <= high, (part, low, high)
        want = sorted(x for x in acked[part] if x[0] >= low)
        assert want and want[-1][0] == high - 1
        offsets, values = read_from_beginning(b.bootstrap, t, part, len(want))
        assert list(zip(offsets, values)) == want
    t0 = time.time()
    b.stop()
    assert time.time() - t0 < 10


def test_background_gc(broker_factory):
    """The agent deletes objects left with no live record by itself
    (--gc-interval-ms; grace 0 here), and only those."""
    b = broker_factory(extra_args=["--gc-interval-ms", "200", "--gc-grace-ms", "0"])
    t = util.topic_name("bg-gc")
    util.create_topic(b.bootstrap, t, 2)
    root = os.path.join(b.data_dir, "objects")

    def objects():
        return sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
                      if not f.startswith(".tmp."))

    produce_batches(b.bootstrap, t, 0, [b"a" * 3000 for _ in range(3)])  # objects of p0 alone
    only_p0 = objects()
    s = kproto.connect(b.bootstrap)
    try:
        shared = kproto.produce_v3(s, {t: {0: kproto.record_batch([(None, b"p0", ())]),
                                           1: kproto.record_batch([(None, b"p1", ())])}})
        assert shared == {(t, 0): (0, 3), (t, 1): (0, 0)}
        assert kproto.delete_records(s, {t: {0: -1}}) == {(t, 0): (0, 4)}
    finally:
        s.close()
    assert len(only_p0) >= 1
    deadline = time.time() + 10
    while any(os.path.exists(o) for o in only_p0) and time.time() < deadline:
        time.sleep(0.1)
    left = objects()
    assert not any(o in left for o in only_p0), left
    assert len(left) == 1  # the object partition 1 still reads from
    assert read_from_beginning(b.bootstrap, t, 1, 1) == ([0], [b"p1"])
    # The pass logs once it has ended: after the files above are gone.
    deadline = time.time() + 10
    while not any("gc: deleted" in line for line in open(b.stderr)):
        assert time.time() < deadline, "no gc log line"
        time.sleep(0.1)


def test_background_gc_keeps_young_objects(broker_factory):
    """With the default grace (an hour) the agent's collection leaves an
    object emptied a moment ago alone."""
    b = broker_factory(extra_args=["--gc-interval-ms", "100"])
    t = util.topic_name("bg-gc-young")
    util.create_topic(b.bootstrap, t, 1)
    produce_batches(b.bootstrap, t, 0, [b"y" * 3000])
    root = os.path.join(b.data_dir, "objects")
    before = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)
    s = kproto.connect(b.bootstrap)
    try:
        assert kproto.delete_records(s, {t: {0: -1}}) == {(t, 0): (0, 1)}
    finally:
        s.close()
    time.sleep(1.0)  # ten passes
    assert before and all(os.path.exists(o) for o in before)
