"""read_committed with no transaction (issue 14, docs/transactions.md §6):
the last stable offset equals the high watermark, so Fetch at
isolation_level 1 and ListOffsets READ_COMMITTED answer exactly what
read_uncommitted does. Raw requests (kproto.py) check the fields a
client reads: the same records, last_stable_offset == high watermark at
both levels, aborted_transactions an empty list for read_committed and
null for read_uncommitted (as Kafka answers), a fetch at the high
watermark empty and one past it OFFSET_OUT_OF_RANGE at both levels, an
incremental session answering new records at read_committed, a
read_committed long poll woken by a produce; ListOffsets latest,
earliest and by timestamp equal at both levels. Real clients that read
committed — confluent-kafka with isolation.level=read_committed and
kafkajs (readUncommitted: false, its default) — still read every
record, and confluent-kafka's committed offsets come back through
OffsetFetch with require_stable."""
import json
import os
import subprocess
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

import kproto
import util

OUT_OF_RANGE = 1
MAXB = 1024 * 1024
JS_DIR = os.path.join(os.path.dirname(__file__), "js")
BASE_TS = 1700000000000


def produce(bootstrap, topic, parts, records=3, tag=b"v", base_ts=None):
    s = kproto.connect(bootstrap)
    batch = kproto.record_batch([(b"k%d" % i, tag + b"%d" % i, ()) for i in range(records)],
                                base_ts=base_ts, ts_deltas=list(range(records)))
    res = kproto.produce_v3(s, {topic: {p: batch for p in parts}})
    s.close()
    assert all(err == 0 for err, _ in res.values()), res


def answers(r):
    """{partition: (error, high watermark, log start, records, last stable
    offset, aborted transactions)}."""
    return {p: (err, hw, ls, rec, lso, ab)
            for (_, p, err, hw, ls, rec), (lso, ab) in zip(r["parts"], r["stable"])}


@pytest.mark.parametrize("version", [7, 12])
def test_fetch_levels_equal(broker, version):
    topic = util.create_topic(broker.bootstrap, util.topic_name("rc%d" % version), 2)
    produce(broker.bootstrap, topic, [0, 1])
    produce(broker.bootstrap, topic, [0], tag=b"w")
    s = kproto.connect(broker.bootstrap)
    want = [(0, 0, MAXB), (1, 0, MAXB)]
    ru, _, _ = kproto.fetch(s, version, 0, -1, [(topic, want)], isolation=0)
    rc, _, _ = kproto.fetch(s, version, 0, -1, [(topic, want)], isolation=1)
    u, c = answers(ru), answers(rc)
    assert sorted(u) == sorted(c) == [0, 1]
    for p, hw in ((0, 6), (1, 3)):
        err, uhw, uls, urec, ulso, uab = u[p]
        assert (err, uhw, uls, ulso) == (0, hw, 0, hw), u[p]
        assert uab is None  # null for read_uncommitted, as Kafka answers
        assert c[p] == (0, hw, 0, urec, hw, []), (c[p], u[p])
        assert len(urec) > 0

    # At the high watermark: nothing, no error, at both levels; past it:
    # out of range at both.
    for iso in (0, 1):
        r, _, _ = kproto.fetch(s, version, 0, -1, [(topic, [(0, 6, MAXB), (1, 4, MAXB)])],
                               isolation=iso)
        a = answers(r)
        assert a[0][:4] == (0, 6, 0, b"") and a[0][4] == 6, (iso, a[0])
        assert a[0][5] == ([] if iso else None)
        assert a[1][0] == OUT_OF_RANGE, (iso, a[1])
    s.close()


def test_incremental_session_read_committed(broker):
    topic = util.create_topic(broker.bootstrap, util.topic_name("rcsess"), 2)
    produce(broker.bootstrap, topic, [0, 1])
    s = kproto.connect(broker.bootstrap)
    r, _, _ = kproto.fetch(s, 12, 0, 0, [(topic, [(0, 0, MAXB), (1, 0, MAXB)])], isolation=1)
    sid = r["session_id"]
    assert sid != 0
    assert [(a[1], a[4]) for a in answers(r).values()] == [(3, 3), (3, 3)]
    # Caught up: nothing changed, nothing answered.
    r, _, _ = kproto.fetch(s, 12, sid, 1, [(topic, [(0, 3, MAXB), (1, 3, MAXB)])], isolation=1)
    assert r["parts"] == []
    # New records in partition 1: answered with them, the LSO moved with
    # the high watermark.
    produce(broker.bootstrap, topic, [1], tag=b"n")
    r, _, _ = kproto.fetch(s, 12, sid, 2, [], isolation=1)
    a = answers(r)
    assert list(a) == [1]
    err, hw, _, rec, lso, ab = a[1]
    assert (err, hw, lso, ab) == (0, 6, 6, [])
    assert b"n0" in rec
    s.close()


def test_long_poll_read_committed(broker):
    """A read_committed fetch waiting at the end is woken by a produce
    (the LSO moves with the high watermark), not by its max wait."""
    topic = util.create_topic(broker.bootstrap, util.topic_name("rcpoll"), 1)
    produce(broker.bootstrap, topic, [0])
    s = kproto.connect(broker.bootstrap)
    body = kproto.fetch_body(7, 0, -1, [(topic, [(0, 3, MAXB)])], max_wait_ms=10000,
                             min_bytes=1, isolation=1)
    t0 = time.monotonic()
    s.sendall(kproto.request(kproto.API_FETCH, 7, 5, body))
    time.sleep(0.5)
    produce(broker.bootstrap, topic, [0], tag=b"late")
    cid, data = kproto.recv_response(s)
    took = time.monotonic() - t0
    assert cid == 5
    a = answers(kproto.parse_fetch(7, data))
    err, hw, _, rec, lso, ab = a[0]
    assert (err, hw, lso, ab) == (0, 6, 6, [])
    assert b"late0" in rec
    assert took < 5, "woken after %.1f s" % took
    s.close()


@pytest.mark.parametrize("version", [2, 5])
def test_list_offsets_levels_equal(broker, version):
    topic = util.create_topic(broker.bootstrap, util.topic_name("rclo%d" % version), 1)
    produce(broker.bootstrap, topic, [0], records=5, base_ts=BASE_TS)
    produce(broker.bootstrap, topic, [0], records=5, base_ts=BASE_TS + 10)
    s = kproto.connect(broker.bootstrap)
    # latest, earliest, by timestamp (inside the second batch, before
    # everything, after everything)
    asks = [(0, -1), (0, -2), (0, BASE_TS + 12), (0, 0), (0, BASE_TS + 100)]
    got = {}
    for iso in (0, 1):
        got[iso] = [kproto.list_offsets(s, version, {topic: [a]}, isolation=iso)[(topic, 0)]
                    for a in asks]
    assert got[0] == got[1], got
    offsets = [(err, off) for err, _ts, off in got[1]]
    assert offsets == [(0, 10), (0, 0), (0, 7), (0, 0), (0, -1)], offsets
    s.close()


def test_confluent_read_committed_reads_all(broker):
    topic = util.create_topic(broker.bootstrap, util.topic_name("rcck"), 3)
    msgs = util.make_messages(300, seed=14)
    util.ck_produce(broker.bootstrap, topic, msgs)
    rc = {"isolation.level": "read_committed", "group.id": "rcck-" + topic}
    c = util.consumer(broker.bootstrap, **rc)
    try:
        # The watermarks a read_committed client sees: high = LSO = HW.
        hws = [c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
               for p in range(3)]
        assert sum(hws) == 300
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(3)])
        got = []
        deadline = time.monotonic() + 60
        while len(got) < 300 and time.monotonic() < deadline:
            for m in c.consume(1000, 0.5):
                assert not m.error(), m.error()
                got.append(m.value())
        assert sorted(got) == sorted(m.value for m in msgs)
        c.commit(asynchronous=False)
    finally:
        c.close()
    # A read_committed client's OffsetFetch asks require_stable (librdkafka
    # sends it with isolation.level=read_committed): with no transaction
    # nothing is pending, and the committed offsets come back.
    c = util.consumer(broker.bootstrap, **rc)
    try:
        committed = c.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
        assert [tp.error for tp in committed] == [None] * 3
        assert sum(tp.offset for tp in committed) == 300, committed
    finally:
        c.close()


def test_kafkajs_read_committed_reads_all(broker):
    if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "kafkajs")):
        pytest.fail("kafkajs is not installed in %s/node_modules" % JS_DIR)
    topic = util.create_topic(broker.bootstrap, util.topic_name("rcjs"), 3)
    n = 300
    util.ck_produce(broker.bootstrap, topic, util.make_messages(n, seed=15))
    # group_consume.js's consumers use kafkajs's default isolation,
    # readUncommitted: false (read_committed fetches).
    r = subprocess.run(["node", os.path.join(JS_DIR, "group_consume.js"), broker.bootstrap,
                        topic, "rcjs-" + topic, str(n), "1"],
                       capture_output=True, timeout=120, cwd=JS_DIR)
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    out = json.loads(r.stdout.decode().splitlines()[-1])
    assert out["unique"] == n


UNKNOWN_SERVER_ERROR = -1


def test_unknown_isolation_level(broker):
    """An isolation level other than 0 and 1 is what Kafka's
    IsolationLevel.forId throws on: once the request names a partition the
    client may read (Fetch) or a topic it may describe (ListOffsets),
    every partition is answered UNKNOWN_SERVER_ERROR with no offsets; a
    fetch of only unknown partitions is answered as usual."""
    topic = util.create_topic(broker.bootstrap, util.topic_name("iso"), 2)
    produce(broker.bootstrap, topic, [0, 1])
    missing = util.topic_name("isonope")
    s = kproto.connect(broker.bootstrap)
    for level in (2, -1):
        r, _, _ = kproto.fetch(s, 12, 0, 0, [(topic, [(0, 0, MAXB), (1, 0, MAXB)]),
                                             (missing, [(0, 0, MAXB)])], isolation=level)
        assert r["error"] == UNKNOWN_SERVER_ERROR and r["session_id"] == 0, r
        assert [(t, p, err, hw, ls, rec) for t, p, err, hw, ls, rec in r["parts"]] == [
            (topic, 0, UNKNOWN_SERVER_ERROR, -1, -1, b""),
            (topic, 1, UNKNOWN_SERVER_ERROR, -1, -1, b""),
            (missing, 0, UNKNOWN_SERVER_ERROR, -1, -1, b"")], r
        assert r["stable"] == [(-1, None)] * 3, r
        lo = kproto.list_offsets(s, 2, {topic: [(0, -1), (1, -2)], missing: [(0, -1)]},
                                 isolation=level)
        assert lo == {(topic, 0): (UNKNOWN_SERVER_ERROR, -1, -1),
                      (topic, 1): (UNKNOWN_SERVER_ERROR, -1, -1),
                      (missing, 0): (UNKNOWN_SERVER_ERROR, -1, -1)}, lo
    r, _, _ = kproto.fetch(s, 12, 0, 0, [(missing, [(0, 0, MAXB)])], isolation=2)
    assert r["error"] == 0 and [p[2] for p in r["parts"]] == [3], r
    # The connection and the data are fine: level 0 reads everything.
    r, _, _ = kproto.fetch(s, 12, 0, -1, [(topic, [(0, 0, MAXB), (1, 0, MAXB)])], isolation=0)
    assert [(p[2], p[3]) for p in r["parts"]] == [(0, 3), (0, 3)], r
    s.close()
