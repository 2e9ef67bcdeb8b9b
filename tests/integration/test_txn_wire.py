"""Transactional produce, the marker write path and read_committed reads
(issue 14), end to end through a real agent, before the transaction
coordinator is served: build/tests/sluice-txn-driver is the agent with a
test double of the coordinator on stdin (tests/integration/txn_driver/),
which writes the coordinator's records (meta_txn_persist) and asks for
markers (agent_txn_write_markers) as the coordinator will. Produce and
Fetch are raw (kproto), so every field a client relies on is checked;
confluent-kafka (librdkafka) and kafkajs consumers check that
read_committed skips the aborted records and read_uncommitted sees them,
neither seeing the control batches."""
import json
import os
import struct
import subprocess
import threading
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

import kproto
import util
from cluster import pg  # noqa: F401 (fixture)
from conftest import SLUICE_BIN, Broker, _live_brokers

DRIVER_BIN = os.path.join(os.path.dirname(SLUICE_BIN), "tests", "sluice-txn-driver")

ONGOING, PREPARE_COMMIT, PREPARE_ABORT = 1, 2, 3
PID = 7000


class DriverBroker(Broker):
    """The agent with the coordinator's test double on its stdin."""

    def args(self):
        return [DRIVER_BIN] + super().args()[1:]

    def start(self):
        self.starts += 1
        self.stderr = os.path.join(os.path.dirname(self.data_dir.rstrip("/")),
                                   "driver.stderr.%d.log" % self.starts)
        self._log = open(self.stderr, "wb")
        self.logs.append(self.stderr)
        self.proc = subprocess.Popen(self.args(), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._log)
        _live_brokers.append(self)
        self.wait_ready()
        return self

    def cmd(self, line, timeout=20.0):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()
        out = []

        def read():
            out.append(self.proc.stdout.readline().decode().strip())

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(timeout)
        assert out, "no answer to %r within %.0f s" % (line, timeout)
        return out[0]

    def persist(self, tid, pid, epoch, state, seq, parts):
        got = self.cmd("persist %s %d %d %d %d %s" % (tid, pid, epoch, state, seq,
                                                       " ".join(parts)))
        assert got == "ok", got

    def markers(self, tid, pid, epoch, seq, commit, parts, coord_epoch=5):
        return self.cmd("markers %s %d %d %d %d %s %s" % (
            tid, pid, epoch, coord_epoch, seq, "commit" if commit else "abort",
            " ".join(parts)))


@pytest.fixture
def driver(tmp_path):
    if not os.access(DRIVER_BIN, os.X_OK):
        pytest.skip("%s not built" % DRIVER_BIN)
    b = DriverBroker(tmp_path / "data", ["--flush-interval-ms", "50"])
    b.start()
    yield b
    b.teardown()


def txn_batch(pid, epoch, seq, values, transactional=True):
    return kproto.record_batch([(b"k", v, []) for v in values], producer_id=pid,
                               producer_epoch=epoch, base_sequence=seq,
                               attributes=0x10 if transactional else 0)


def produce_v11(sock, topic, partition, records, transactional_id):
    """(error, base offset) of a Produce v11 (flexible, KIP-890's
    TRANSACTION_ABORTABLE) of one partition."""
    body = (kproto.compact_string(transactional_id) + kproto.i16(-1) + kproto.i32(10000) +
            kproto.compact_array([kproto.compact_string(topic) + kproto.compact_array(
                [kproto.i32(partition) + kproto.uvarint(len(records) + 1) + records +
                 kproto.NO_TAGS]) + kproto.NO_TAGS]) + kproto.NO_TAGS)
    sock.sendall(kproto.request_v2(kproto.API_PRODUCE, 11, 41, body))
    cid, data = kproto.recv_response(sock)
    assert cid == 41
    r = kproto.FlexReader(data)
    r.tags()
    out = []

    def part():
        r.i32()
        err, base = r.i16(), r.i64()
        r.i64(), r.i64()
        r.carray(lambda: (r.i32(), r.cstring(), r.tags()))
        r.cstring()
        r.tags()
        out.append((err, base))

    r.carray(lambda: (r.cstring(), r.carray(part), r.tags()))
    return out[0]


def batches(records):
    """[(base offset, attributes, producer id, [(key, value)])] of a
    records blob."""
    out = []
    at = 0
    while records and at + 61 <= len(records):
        base, length = struct.unpack(">qi", records[at:at + 12])
        end = at + 12 + length
        attrs = struct.unpack(">h", records[at + 21:at + 23])[0]
        pid = struct.unpack(">q", records[at + 43:at + 51])[0]
        count = struct.unpack(">i", records[at + 57:at + 61])[0]
        r = kproto.Reader(records[at + 61:end])
        recs = []
        for _ in range(count):
            r.varint()  # length
            r.i8()
            r.varint()
            r.varint()
            klen = r.varint()
            key = r.take(klen) if klen >= 0 else None
            vlen = r.varint()
            value = r.take(vlen) if vlen >= 0 else None
            for _ in range(r.varint()):
                r.take(r.varint())
                hl = r.varint()
                if hl >= 0:
                    r.take(hl)
            recs.append((key, value))
        out.append((base, attrs, pid, recs))
        at = end
    return out


def fetch(sock, topic, parts, isolation, max_wait_ms=0, min_bytes=0):
    """{partition: (error, high watermark, LSO, aborted list or None,
    batches)} of one Fetch v11 from each (partition, offset)."""
    res, _, _ = kproto.fetch(sock, 11, 0, -1, [(topic, [(p, off, 1 << 20) for p, off in parts])],
                             isolation=isolation, max_wait_ms=max_wait_ms,
                             min_bytes=min_bytes)
    out = {}
    for (t, p, err, hw, ls, rec), (lso, aborted) in zip(res["parts"], res["stable"]):
        out[p] = (err, hw, lso, aborted, batches(rec))
    return out


def long_poll(broker, topic, offset):
    """A read_committed Fetch of partition 0 from offset waiting up to
    10 s for a byte, in a thread started half a second ago; the dict gets
    its answer ("res") and how long it took ("s")."""
    woke = {}

    def run():
        ws = kproto.connect(broker.bootstrap)
        t0 = time.monotonic()
        woke["res"] = fetch(ws, topic, [(0, offset)], 1, max_wait_ms=10000, min_bytes=1)
        woke["s"] = time.monotonic() - t0
        ws.close()

    th = threading.Thread(target=run)
    th.start()
    time.sleep(0.5)
    return th, woke


def values(bs):
    return [v for (_, attrs, _, recs) in bs if not attrs & 0x20 for (_, v) in recs]


def ck_values(bootstrap, topic, partition, isolation, want_count, timeout=30):
    c = util.consumer(bootstrap, **{"isolation.level": isolation})
    got = []
    try:
        c.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        deadline = time.monotonic() + timeout
        while len(got) < want_count and time.monotonic() < deadline:
            for m in c.consume(100, 0.5):
                assert not m.error(), m.error()
                got.append(m.value())
        # Nothing more comes (no control record, no aborted one).
        for m in c.consume(100, 1.0):
            assert not m.error(), m.error()
            got.append(m.value())
    finally:
        c.close()
    return got


def js_values(bootstrap, topic, want_count, isolation):
    """The values a kafkajs consumer of topic is given (js/read_values.js)."""
    js = os.path.join(os.path.dirname(__file__), "js")
    if not os.path.isdir(os.path.join(js, "node_modules", "kafkajs")):
        pytest.fail("kafkajs is not installed in %s/node_modules" % js)
    r = subprocess.run(["node", os.path.join(js, "read_values.js"), bootstrap, topic,
                        str(want_count), isolation], capture_output=True, timeout=120, cwd=js)
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    return json.loads(r.stdout.decode().splitlines()[-1])["values"]


def test_commit_abort_and_read_committed(driver):
    """A transaction's data is invisible to read_committed until its COMMIT
    marker (the LSO holds at its first offset, a long poll is woken by the
    marker), then visible; an aborted one is listed in
    aborted_transactions and librdkafka's read_committed consumer skips
    it, while read_uncommitted sees its data; each marker is one 78-byte
    control batch at its own offset, written once however often it is
    asked for."""
    topic = util.create_topic(driver.bootstrap, util.topic_name("txw"), 3)
    parts = ["%s:0" % topic, "%s:1" % topic]
    driver.persist("tx", PID, 0, ONGOING, 1, parts)
    s = kproto.connect(driver.bootstrap)
    res = kproto.produce_v3(s, {topic: {0: txn_batch(PID, 0, 0, [b"a0", b"a1"]),
                                        1: txn_batch(PID, 0, 0, [b"b0"]),
                                        2: txn_batch(PID, 0, 0, [b"x"])}},
                            transactional_id="tx")
    # Partition 2 was not added to the transaction: Produce v3-10 answers
    # INVALID_TXN_STATE (Kafka's verification), v11 TRANSACTION_ABORTABLE.
    assert res == {(topic, 0): (0, 0), (topic, 1): (0, 0), (topic, 2): (48, -1)}, res
    # v11 (KIP-890) says TRANSACTION_ABORTABLE.
    assert produce_v11(s, topic, 2, txn_batch(PID, 0, 0, [b"x"]), "tx") == (120, -1)
    # Another producer id for the id, another epoch, and a plain batch of
    # the producer with its transaction open in the partition.
    res = kproto.produce_v3(s, {topic: {0: txn_batch(PID + 1, 0, 0, [b"y"])}},
                            transactional_id="tx")
    assert res[(topic, 0)] == (49, -1), res
    res = kproto.produce_v3(s, {topic: {0: txn_batch(PID, 1, 0, [b"y"])}},
                            transactional_id="tx")
    assert res[(topic, 0)] == (47, -1), res
    res = kproto.produce_v3(s, {topic: {1: txn_batch(PID, 0, 1, [b"y"], transactional=False)}})
    assert res[(topic, 1)] == (48, -1), res

    # Open: read_committed sees nothing, the LSO is the first offset.
    rc = fetch(s, topic, [(0, 0), (1, 0)], 1)
    assert rc[0][:3] == (0, 2, 0) and rc[0][4] == [], rc
    assert rc[1][:3] == (0, 1, 0) and rc[1][4] == [], rc
    assert rc[0][3] == [], rc  # read_committed: an empty list
    ru = fetch(s, topic, [(0, 0)], 0)
    assert ru[0][2] == 0 and ru[0][3] is None, ru  # read_uncommitted: null
    assert values(ru[0][4]) == [b"a0", b"a1"]
    lo = kproto.list_offsets(s, 2, {topic: [(0, -1)]}, isolation=1)
    assert lo[(topic, 0)][2] == 0, lo

    # A read_committed long poll waits on the LSO; the COMMIT wakes it.
    th, woke = long_poll(driver, topic, 0)
    # Still Ongoing: a marker is refused as not owed (written nowhere).
    assert driver.markers("tx", PID, 0, 1, True, parts) == "done 0"
    driver.persist("tx", PID, 0, PREPARE_COMMIT, 1, parts)
    # Completing: a late write of the transaction is told to retry.
    res = kproto.produce_v3(s, {topic: {0: txn_batch(PID, 0, 2, [b"late"])}},
                            transactional_id="tx")
    assert res[(topic, 0)] == (19, -1), res
    t0 = time.monotonic()
    assert driver.markers("tx", PID, 0, 1, True, parts) == "done 0"
    marker_s = time.monotonic() - t0
    th.join(15)
    assert "res" in woke, "the long poll did not return"
    assert woke["s"] < 5.0, woke  # woken by the marker, not the 10 s wait
    print("markers written in %.3f s; the long poll returned after %.3f s"
          % (marker_s, woke["s"]))
    assert values(woke["res"][0][4]) == [b"a0", b"a1"], woke

    rc = fetch(s, topic, [(0, 0), (1, 0)], 1)
    assert rc[0][:4] == (0, 3, 3, []), rc
    assert rc[1][:4] == (0, 2, 2, []), rc
    assert values(rc[0][4]) == [b"a0", b"a1"] and values(rc[1][4]) == [b"b0"]
    base, attrs, pid, recs = rc[0][4][-1]
    assert (base, attrs, pid) == (2, 0x30, PID), rc[0][4]
    # COMMIT: key version 0 type 1; value version 0, coordinator epoch 5.
    assert recs == [(b"\x00\x00\x00\x01", b"\x00\x00\x00\x00\x00\x05")], recs
    # No partition: refused before anything is written (SL_EINVAL).
    assert driver.markers("tx", PID, 0, 1, True, []) == "err -8"
    # Asked again (a retry after a lost answer): nothing written.
    assert driver.markers("tx", PID, 0, 1, True, parts) == "done 0"
    assert fetch(s, topic, [(0, 0)], 0)[0][1] == 3

    # Transaction 2 in partition 0, aborted.
    driver.persist("tx", PID, 0, ONGOING, 2, parts[:1])
    res = kproto.produce_v3(s, {topic: {0: txn_batch(PID, 0, 2, [b"c0", b"c1"])}},
                            transactional_id="tx")
    assert res[(topic, 0)] == (0, 3), res
    rc = fetch(s, topic, [(0, 3)], 1)
    assert rc[0][:3] == (0, 5, 3) and rc[0][4] == [], rc
    driver.persist("tx", PID, 0, PREPARE_ABORT, 2, parts[:1])
    # A marker of transaction 1 now: stale, refused.
    assert driver.markers("tx", PID, 0, 1, True, parts[:1]) == "done 0"
    assert fetch(s, topic, [(0, 0)], 0)[0][1] == 5
    assert driver.markers("tx", PID, 0, 2, False, parts[:1]) == "done 0"
    rc = fetch(s, topic, [(0, 0)], 1)
    assert rc[0][:4] == (0, 6, 6, [(PID, 3)]), rc
    base, attrs, pid, recs = rc[0][4][-1]
    assert (base, attrs, pid) == (5, 0x30, PID), rc[0][4]
    assert recs == [(b"\x00\x00\x00\x00", b"\x00\x00\x00\x00\x00\x05")], recs  # ABORT
    # From past the aborted data: its marker still lies ahead, so it is
    # listed; from past the marker it is not.
    assert fetch(s, topic, [(0, 4)], 1)[0][3] == [(PID, 3)]
    assert fetch(s, topic, [(0, 6)], 1)[0][3] == []
    ru = fetch(s, topic, [(0, 0)], 0)
    assert ru[0][2] == 6 and ru[0][3] is None, ru
    assert values(ru[0][4]) == [b"a0", b"a1", b"c0", b"c1"]
    assert [b[0] for b in ru[0][4] if b[1] & 0x20] == [2, 5]
    lo = kproto.list_offsets(s, 2, {topic: [(0, -1)]}, isolation=1)
    assert lo[(topic, 0)][2] == 6, lo
    s.close()

    # librdkafka and kafkajs: read_committed drops the aborted records,
    # neither level returns control records.
    assert ck_values(driver.bootstrap, topic, 0, "read_committed", 2) == [b"a0", b"a1"]
    assert ck_values(driver.bootstrap, topic, 0, "read_uncommitted", 4) == [
        b"a0", b"a1", b"c0", b"c1"]
    assert sorted(js_values(driver.bootstrap, topic, 3, "committed")) == ["a0", "a1", "b0"]
    assert sorted(js_values(driver.bootstrap, topic, 5, "uncommitted")) == [
        "a0", "a1", "b0", "c0", "c1"]

    # After a restart the LSO and the aborted list come from the store.
    driver.stop()
    driver.start()
    s = kproto.connect(driver.bootstrap)
    rc = fetch(s, topic, [(0, 0), (1, 0)], 1)
    assert rc[0][:4] == (0, 6, 6, [(PID, 3)]), rc
    assert rc[1][:4] == (0, 2, 2, []), rc
    s.close()


def test_open_transaction_survives_restart(driver):
    """The LSO of a partition with an open transaction is loaded from the
    store at start: a restarted agent keeps the transaction's records from
    read_committed readers until its marker."""
    topic = util.create_topic(driver.bootstrap, util.topic_name("txo"), 1)
    part = ["%s:0" % topic]
    s = kproto.connect(driver.bootstrap)
    kproto.produce_v3(s, {topic: {0: kproto.record_batch([(b"k", b"p0", [])])}})
    driver.persist("open", PID + 10, 0, ONGOING, 1, part)
    res = kproto.produce_v3(s, {topic: {0: txn_batch(PID + 10, 0, 0, [b"t0"])}},
                            transactional_id="open")
    assert res[(topic, 0)] == (0, 1), res
    kproto.produce_v3(s, {topic: {0: kproto.record_batch([(b"k", b"p1", [])])}})
    s.close()
    driver.stop()
    driver.start()
    s = kproto.connect(driver.bootstrap)
    rc = fetch(s, topic, [(0, 0)], 1)
    assert rc[0][:3] == (0, 3, 1) and values(rc[0][4]) == [b"p0"], rc
    driver.persist("open", PID + 10, 0, PREPARE_COMMIT, 1, part)
    assert driver.markers("open", PID + 10, 0, 1, True, part) == "done 0"
    rc = fetch(s, topic, [(0, 0)], 1)
    assert rc[0][:3] == (0, 4, 4) and values(rc[0][4]) == [b"p0", b"t0", b"p1"], rc
    s.close()


def test_delete_records_wakes_read_committed_poll(driver):
    """DeleteRecords past an open transaction's first offset lifts the LSO
    with the log start (as Kafka's); a read_committed long poll waiting
    at an offset the deletion passed is woken and told
    OFFSET_OUT_OF_RANGE at once, not after its wait."""
    topic = util.create_topic(driver.bootstrap, util.topic_name("txd"), 1)
    part = ["%s:0" % topic]
    driver.persist("dr", PID + 20, 0, ONGOING, 1, part)
    s = kproto.connect(driver.bootstrap)
    res = kproto.produce_v3(s, {topic: {0: txn_batch(PID + 20, 0, 0, [b"t0", b"t1"])}},
                            transactional_id="dr")
    assert res[(topic, 0)] == (0, 0), res
    for v in (b"p0", b"p1"):
        kproto.produce_v3(s, {topic: {0: kproto.record_batch([(b"k", v, [])])}})
    assert fetch(s, topic, [(0, 2)], 1)[0][:3] == (0, 4, 0)
    th, woke = long_poll(driver, topic, 2)
    assert kproto.delete_records(s, {topic: {0: 3}})[(topic, 0)] == (0, 3)
    th.join(15)
    assert "res" in woke and woke["s"] < 5.0, woke
    assert woke["res"][0][0] == 1, woke  # OFFSET_OUT_OF_RANGE
    rc = fetch(s, topic, [(0, 3)], 1)
    assert rc[0][:3] == (0, 4, 3) and rc[0][4] == [], rc
    s.close()


def test_cluster_lso_through_notices(pg, tmp_path):
    """Two agents on PostgreSQL: a transaction written through agent A is
    invisible to read_committed fetches at agent B (B's high watermark
    moves with A's commit notice, its LSO stays at the transaction's first
    offset: a notice used to raise it to the high watermark), its commit
    makes it visible at B, and an abort is listed at B from the store."""
    if not os.access(DRIVER_BIN, os.X_OK):
        pytest.skip("%s not built" % DRIVER_BIN)
    url = pg.db_url(pg.new_db())
    shared = ["--meta", url, "--store", "file:%s" % (tmp_path / "objects"),
              "--flush-interval-ms", "50"]
    a = DriverBroker(tmp_path / "a", shared + ["--zone", "a"])
    b = Broker(tmp_path / "b", shared + ["--zone", "b"])
    try:
        a.start()
        b.start()
        topic = util.create_topic(a.bootstrap, util.topic_name("txc"), 1)
        part = ["%s:0" % topic]
        sa, sb = kproto.connect(a.bootstrap), kproto.connect(b.bootstrap)
        deadline = time.monotonic() + 10
        while fetch(sb, topic, [(0, 0)], 0)[0][0] != 0:
            assert time.monotonic() < deadline, "B does not know the topic"
            time.sleep(0.1)
        # An id placed on A, the double's agent: B's coordinator takes
        # over open transactions of ids placed on it (a scan every 10 s),
        # which would race the double's steps on a slow run.
        a_port = int(a.bootstrap.rsplit(":", 1)[1])
        tid = next(t for t in ("cl%d" % i for i in range(64))
                   if kproto.find_coordinator_v1(sb, t, 1)[3] == a_port)
        kproto.produce_v3(sa, {topic: {0: kproto.record_batch([(b"k", b"p0", [])])}})
        a.persist(tid, PID + 30, 0, ONGOING, 1, part)
        res = kproto.produce_v3(sa, {topic: {0: txn_batch(PID + 30, 0, 0, [b"t0", b"t1"])}},
                                transactional_id=tid)
        assert res[(topic, 0)] == (0, 1), res

        def at_b(isolation, want_hw):
            deadline = time.monotonic() + 10
            while True:
                r = fetch(sb, topic, [(0, 0)], isolation)[0]
                if r[1] >= want_hw or time.monotonic() > deadline:
                    return r
                time.sleep(0.02)

        rc = at_b(1, 3)
        assert rc[:3] == (0, 3, 1) and values(rc[4]) == [b"p0"], rc
        # Still so after B's poll (1 s fallback) has run.
        time.sleep(1.2)
        rc = fetch(sb, topic, [(0, 0)], 1)[0]
        assert rc[:3] == (0, 3, 1) and values(rc[4]) == [b"p0"], rc
        a.persist(tid, PID + 30, 0, PREPARE_COMMIT, 1, part)
        t0 = time.monotonic()
        assert a.markers(tid, PID + 30, 0, 1, True, part) == "done 0"
        rc = at_b(1, 4)
        deadline = time.monotonic() + 10
        while rc[2] < 4 and time.monotonic() < deadline:
            rc = fetch(sb, topic, [(0, 0)], 1)[0]
        print("B's LSO moved %.3f s after the markers were asked for" % (time.monotonic() - t0))
        assert rc[:4] == (0, 4, 4, []) and values(rc[4]) == [b"p0", b"t0", b"t1"], rc

        a.persist(tid, PID + 30, 0, ONGOING, 2, part)
        res = kproto.produce_v3(sa, {topic: {0: txn_batch(PID + 30, 0, 2, [b"x0"])}},
                                transactional_id=tid)
        assert res[(topic, 0)] == (0, 4), res
        a.persist(tid, PID + 30, 0, PREPARE_ABORT, 2, part)
        assert a.markers(tid, PID + 30, 0, 2, False, part) == "done 0"
        rc = at_b(1, 6)
        deadline = time.monotonic() + 10
        while rc[2] < 6 and time.monotonic() < deadline:
            rc = fetch(sb, topic, [(0, 0)], 1)[0]
        assert rc[:4] == (0, 6, 6, [(PID + 30, 4)]), rc
        assert values(rc[4]) == [b"p0", b"t0", b"t1", b"x0"]
        sa.close()
        sb.close()
        assert ck_values(b.bootstrap, topic, 0, "read_committed", 3) == [b"p0", b"t0", b"t1"]
    finally:
        a.teardown()
        b.teardown()
