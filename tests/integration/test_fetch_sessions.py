"""Incremental fetch sessions (KIP-227), driven over a raw socket: a full
fetch with epoch 0 opens a session; incremental fetches then name only
what changed and get only partitions with records, a moved high
watermark or log start, or an error; the error codes Kafka 3.9 gives for
an unknown session (FETCH_SESSION_ID_NOT_FOUND), a wrong epoch
(INVALID_FETCH_SESSION_EPOCH) and a version that names topics otherwise
than the session (FETCH_SESSION_TOPIC_ID_ERROR); forgotten topics,
epoch -1 closing a session, answered partitions rotating to the end, an
incremental fetch long-polling until new data, and the cache's 1,000
slots with Kafka's eviction rule (a larger session takes the smallest's
slot, an equal one gets none); and a real client that uses sessions
(@platformatic/kafka, behind a proxy that notes its fetches' epochs)."""
import json
import os
import socket
import struct
import subprocess
import threading
import time

import pytest

import kproto
import util

SESSION_ID_NOT_FOUND = 70
INVALID_EPOCH = 71
TOPIC_ID_ERROR = 106
OUT_OF_RANGE = 1
UNKNOWN_TOPIC_OR_PARTITION = 3
UNKNOWN_TOPIC_ID = 100
MAXB = 1024 * 1024


def produce(bootstrap, topic, parts, records=3, tag=b"v"):
    s = kproto.connect(bootstrap)
    batch = kproto.record_batch([(b"k%d" % i, tag + b"%d" % i, ()) for i in range(records)])
    res = kproto.produce_v3(s, {topic: {p: batch for p in parts}})
    s.close()
    assert all(err == 0 for err, _ in res.values()), res


def by_part(resp):
    return {p: (err, hw, rec) for _, p, err, hw, _ls, rec in resp["parts"]}


@pytest.mark.parametrize("version", [7, 12])
def test_session_lifecycle(broker, version):
    topic = util.create_topic(broker.bootstrap, util.topic_name("fs%d" % version), 4)
    produce(broker.bootstrap, topic, [0, 1, 3])
    s = kproto.connect(broker.bootstrap)

    # Full fetch opening a session: every partition, in request order.
    r, _, _ = kproto.fetch(s, version, 0, 0, [(topic, [(p, 0, MAXB) for p in range(4)])])
    assert r["error"] == 0
    sid = r["session_id"]
    assert sid != 0
    assert [p for _, p, *_ in r["parts"]] == [0, 1, 2, 3]
    got = by_part(r)
    assert [got[p][1] for p in range(4)] == [3, 3, 0, 3]
    assert got[2][2] == b"" and all(len(got[p][2]) > 0 for p in (0, 1, 3))

    # The client moved on: nothing changed, nothing answered.
    r, _, _ = kproto.fetch(s, version, sid, 1, [(topic, [(p, 3, MAXB) for p in (0, 1, 3)])])
    assert (r["error"], r["session_id"], r["parts"]) == (0, sid, [])

    # New records in partition 2 only: only it is answered, unasked.
    produce(broker.bootstrap, topic, [2])
    r, _, _ = kproto.fetch(s, version, sid, 2, [])
    assert r["session_id"] == sid
    assert [(p, err, hw) for _, p, err, hw, _, _ in r["parts"]] == [(2, 0, 3)]
    assert len(r["parts"][0][5]) > 0

    # The same epoch again: refused, session id 0, no partitions; the
    # session itself survives and the right epoch goes on.
    r, _, _ = kproto.fetch(s, version, sid, 2, [])
    assert (r["error"], r["session_id"], r["parts"]) == (INVALID_EPOCH, 0, [])
    r, _, _ = kproto.fetch(s, version, sid, 99, [])
    assert r["error"] == INVALID_EPOCH
    r, _, _ = kproto.fetch(s, version, sid, 3, [(topic, [(2, 3, MAXB)])])
    assert (r["error"], r["parts"]) == (0, [])

    # An unknown session.
    other = sid + 1 if sid < 2 ** 31 - 1 else 1
    r, _, _ = kproto.fetch(s, version, other, 1, [])
    assert (r["error"], r["session_id"], r["parts"]) == (SESSION_ID_NOT_FOUND, 0, [])

    # Forgotten: partition 1 leaves the session, so its new records are
    # not answered; partition 0's are.
    produce(broker.bootstrap, topic, [0, 1], tag=b"w")
    r, _, _ = kproto.fetch(s, version, sid, 4, [], forgotten=[(topic, [1])])
    assert [(p, hw) for _, p, _, hw, _, _ in r["parts"]] == [(0, 6)]
    r, _, _ = kproto.fetch(s, version, sid, 5, [(topic, [(0, 6, MAXB)])])
    assert r["parts"] == []
    # Added back: answered as new.
    r, _, _ = kproto.fetch(s, version, sid, 6, [(topic, [(1, 3, MAXB)])])
    assert [(p, hw) for _, p, _, hw, _, _ in r["parts"]] == [(1, 6)]
    assert len(r["parts"][0][5]) > 0

    # Epoch -1 closes it: a sessionless full answer, then the id is gone.
    r, _, _ = kproto.fetch(s, version, sid, -1, [(topic, [(0, 6, MAXB)])])
    assert (r["error"], r["session_id"]) == (0, 0)
    assert [p for _, p, *_ in r["parts"]] == [0]
    r, _, _ = kproto.fetch(s, version, sid, 7, [])
    assert r["error"] == SESSION_ID_NOT_FOUND
    s.close()


def test_errors_always_answered(broker):
    topic = util.create_topic(broker.bootstrap, util.topic_name("fserr"), 2)
    produce(broker.bootstrap, topic, [0])
    s = kproto.connect(broker.bootstrap)
    r, _, _ = kproto.fetch(s, 12, 0, 0, [(topic, [(0, 3, MAXB), (1, 50, MAXB), (9, 0, MAXB)])])
    sid = r["session_id"]
    assert sid != 0
    want = [(0, 0), (1, OUT_OF_RANGE), (9, UNKNOWN_TOPIC_OR_PARTITION)]
    assert [(p, err) for _, p, err, *_ in r["parts"]] == want
    for epoch in (1, 2, 3):
        r, _, _ = kproto.fetch(s, 12, sid, epoch, [])
        assert [(p, err) for _, p, err, *_ in r["parts"]] == want[1:]
    # Fixed by the client: answered once more (the error cleared), then
    # quiet.
    r, _, _ = kproto.fetch(s, 12, sid, 4, [(topic, [(1, 0, MAXB)])])
    assert [(p, err, hw) for _, p, err, hw, *_ in r["parts"]] == \
        [(1, 0, 0), (9, UNKNOWN_TOPIC_OR_PARTITION, -1)]
    r, _, _ = kproto.fetch(s, 12, sid, 5, [], forgotten=[(topic, [9])])
    assert r["parts"] == []
    s.close()


def test_answered_partitions_rotate(broker):
    """Under max_bytes only the first partition with records fits; the
    answered one moves to the end, so each partition gets its turn."""
    topic = util.create_topic(broker.bootstrap, util.topic_name("fsrot"), 4)
    produce(broker.bootstrap, topic, range(4))
    s = kproto.connect(broker.bootstrap)
    parts = [(topic, [(p, 0, MAXB) for p in range(4)])]
    r, _, _ = kproto.fetch(s, 12, 0, 0, parts, max_bytes=1)
    sid = r["session_id"]
    served = []
    for epoch in range(1, 6):
        r, _, _ = kproto.fetch(s, 12, sid, epoch, [], max_bytes=1)
        with_records = [p for _, p, _, _, _, rec in r["parts"] if rec]
        assert len(with_records) == 1, r["parts"]
        served.append(with_records[0])
    assert served == [0, 1, 2, 3, 0]
    s.close()


def test_incremental_long_poll(broker):
    topic = util.create_topic(broker.bootstrap, util.topic_name("fspoll"), 3)
    s = kproto.connect(broker.bootstrap)
    r, _, _ = kproto.fetch(s, 12, 0, 0, [(topic, [(p, 0, MAXB) for p in range(3)])])
    sid = r["session_id"]
    t = threading.Timer(0.5, produce, (broker.bootstrap, topic, [1]))
    t.start()
    t0 = time.monotonic()
    r, _, _ = kproto.fetch(s, 12, sid, 1, [], max_wait_ms=5000, min_bytes=1)
    took = time.monotonic() - t0
    t.join()
    assert 0.3 < took < 4.0, took
    assert [(p, hw) for _, p, _, hw, _, _ in r["parts"]] == [(1, 3)]
    # Nothing new: the wait runs out and the answer is empty.
    t0 = time.monotonic()
    r, _, _ = kproto.fetch(s, 12, sid, 2, [(topic, [(1, 3, MAXB)])], max_wait_ms=300,
                           min_bytes=1)
    assert r["parts"] == [] and time.monotonic() - t0 >= 0.25
    s.close()


def test_topic_ids(broker):
    topic = util.create_topic(broker.bootstrap, util.topic_name("fsid"), 2)
    produce(broker.bootstrap, topic, [0])
    s = kproto.connect(broker.bootstrap)
    tid = kproto.topic_ids(s, [topic])[topic]
    assert tid != b"\0" * 16
    unknown = b"\x01" * 16
    r, _, _ = kproto.fetch(s, 13, 0, 0, [(tid, [(0, 0, MAXB), (1, 0, MAXB)]),
                                         (unknown, [(0, 0, MAXB)])])
    sid = r["session_id"]
    assert sid != 0
    assert [(t, p, err) for t, p, err, *_ in r["parts"]] == \
        [(tid, 0, 0), (tid, 1, 0), (unknown, 0, UNKNOWN_TOPIC_ID)]
    r, _, _ = kproto.fetch(s, 13, sid, 1, [(tid, [(0, 3, MAXB)])])
    assert [(t, p, err) for t, p, err, *_ in r["parts"]] == [(unknown, 0, UNKNOWN_TOPIC_ID)]
    # A session of topic ids asked by name (v12): refused, and kept.
    r, _, _ = kproto.fetch(s, 12, sid, 2, [])
    assert (r["error"], r["session_id"], r["parts"]) == (TOPIC_ID_ERROR, 0, [])
    produce(broker.bootstrap, topic, [1])
    r, _, _ = kproto.fetch(s, 13, sid, 2, [], forgotten=[(unknown, [0])])
    assert [(t, p, hw) for t, p, _, hw, _, _ in r["parts"]] == [(tid, 1, 3)]
    s.close()


def test_cache_slots_and_eviction(broker):
    """1,000 sessions fill the cache; a new one of the same size gets none
    (id 0, still answered in full); a larger one takes the slot of the
    smallest (the lowest id among the one-partition sessions)."""
    topic = util.create_topic(broker.bootstrap, util.topic_name("fsslots"), 2)
    s = kproto.connect(broker.bootstrap)
    # Sessions left by the other tests of this module's broker: at most a
    # few, each of one or more partitions; filled up to 1,000 here.
    ids = []
    for i in range(1000):
        r, _, _ = kproto.fetch(s, 12, 0, 0, [(topic, [(0, 0, MAXB)])])
        if r["session_id"] == 0:
            break
        ids.append(r["session_id"])
    assert len(ids) >= 990
    r, _, _ = kproto.fetch(s, 12, 0, 0, [(topic, [(0, 0, MAXB)])])
    assert r["session_id"] == 0 and [p for _, p, *_ in r["parts"]] == [0]
    r, _, _ = kproto.fetch(s, 12, 0, 0, [(topic, [(0, 0, MAXB), (1, 0, MAXB)])])
    big = r["session_id"]
    assert big != 0
    gone = []
    for sid in ids:
        r, _, _ = kproto.fetch(s, 12, sid, 1, [])
        if r["error"] == SESSION_ID_NOT_FOUND:
            gone.append(sid)
        else:
            assert r["error"] == 0
    assert gone == [min(ids)]
    r, _, _ = kproto.fetch(s, 12, big, 1, [])
    assert r["error"] == 0
    s.close()


class FetchSpy:
    """A TCP proxy in front of a broker that notes, for every Fetch a
    client sends through it, (version, session id, epoch, request bytes):
    the broker advertises the proxy, so all of a client's connections go
    through it."""

    def __init__(self, broker_port):
        self.broker_port = broker_port
        self.fetches = []
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            try:
                b = socket.create_connection(("127.0.0.1", self.broker_port))
            except OSError:  # the broker is not up yet, or gone
                c.close()
                continue
            threading.Thread(target=self._requests, args=(c, b), daemon=True).start()
            threading.Thread(target=self._pipe, args=(b, c), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _requests(self, c, b):
        try:
            while True:
                head = kproto.recv_exact(c, 4)
                (n,) = struct.unpack(">i", head)
                payload = kproto.recv_exact(c, n)
                self._note(payload)
                b.sendall(head + payload)
        except (OSError, ConnectionError):
            pass
        self._pipe(c, b)

    def _note(self, payload):
        key, version = struct.unpack(">hh", payload[:4])
        if key != kproto.API_FETCH or version < 7:
            return
        r = kproto.FlexReader(payload)
        r.take(8)
        r.string()  # client id
        if version >= 12:
            r.tags()
        if version <= 14:
            r.i32()  # replica id
        r.take(13)  # max wait, min bytes, max bytes, isolation
        self.fetches.append((version, r.i32(), r.i32(), len(payload)))

    def close(self):
        self.lsock.close()


def test_platformatic_client(broker_factory):
    """@platformatic/kafka opens a session and then fetches incrementally
    (the only real client in the tests that does: librdkafka, kafka-python
    2.0 and kafkajs never send an epoch above 0); every message arrives
    once, byte for byte, across 16 partitions."""
    js = os.path.join(os.path.dirname(__file__), "js")
    if not os.path.isdir(os.path.join(js, "node_modules", "@platformatic", "kafka")):
        pytest.fail("@platformatic/kafka is not installed in %s/node_modules "
                    "(tools/install-node-deps.sh)" % js)
    port = util.free_port()
    spy = FetchSpy(port)
    broker = broker_factory(["--advertise", "127.0.0.1:%d" % spy.port,
                             "--group-initial-rebalance-delay-ms", "0"], port=port)
    topic = util.create_topic(broker.bootstrap, util.topic_name("fsjs"), 16)
    want = {}

    def produce_round(rnd):
        batches = {}
        for p in range(16):
            vals = [b"r%d-p%d-%d" % (rnd, p, i) for i in range(5)]
            batches[p] = kproto.record_batch([(None, v, ()) for v in vals])
            for i, v in enumerate(vals):
                want["%d:%d" % (p, rnd * 5 + i)] = v.decode()
        s = kproto.connect(broker.bootstrap)
        res = kproto.produce_v3(s, {topic: batches})
        s.close()
        assert all(err == 0 for err, _ in res.values())

    # One round before the consumer starts, two while it fetches.
    produce_round(0)
    for rnd in (1, 2):
        for p in range(16):
            for i in range(5):
                want["%d:%d" % (p, rnd * 5 + i)] = "r%d-p%d-%d" % (rnd, p, i)
    def produce_later():
        # Each round once the consumer is fetching (its group's join
        # comes first): after the full fetch, then after an incremental.
        for rnd, epoch in ((1, 0), (2, 1)):
            deadline = time.monotonic() + 30
            while not any(f[2] >= epoch for f in spy.fetches) and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)
            produce_round(rnd)

    later = threading.Thread(target=produce_later)
    later.start()
    try:
        r = subprocess.run(["node", os.path.join(js, "platformatic_consume.mjs"),
                            "127.0.0.1:%d" % spy.port, topic, str(16 * 15)],
                           capture_output=True, timeout=120, cwd=js, text=True)
    finally:
        later.join()
        spy.close()
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["values"] == want
    sessions = {sid for _, sid, epoch, _ in spy.fetches if epoch > 0}
    incremental = [f for f in spy.fetches if f[2] > 0]
    full = [f for f in spy.fetches if f[2] == 0]
    # One session, opened once and then fetched from incrementally while
    # the new rounds arrived (max wait 200 ms: several fetches).
    assert len(sessions) == 1 and 0 not in sessions, spy.fetches[:20]
    assert len(full) == 1 and len(incremental) >= 3, spy.fetches[:20]
    # The epochs follow each other: none was refused.
    assert [f[2] for f in incremental] == list(range(1, len(incremental) + 1))
    # Incremental requests name only what moved: smaller than the full one.
    assert min(f[3] for f in incremental) < full[0][3]
