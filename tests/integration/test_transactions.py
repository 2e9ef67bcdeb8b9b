"""Transactions through the coordinator (issue 14): librdkafka's
transactional producer (confluent-kafka) against the agent — init,
begin, produce, send_offsets_to_transaction, commit and abort; read_committed consumers see exactly
the committed records, read_uncommitted ones every data record and no
control record; an open transaction stays invisible until it commits; a
second producer with the same transactional.id fences the first (also
with kafkajs); an
expired transaction is aborted and its producer fenced; the coordinator's
state survives a restart (kill -9 between commits); a consumer group's
offsets sent to a transaction become visible at its commit and vanish at
its abort."""
import json
import os
import subprocess
import time

import pytest
from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaException,
                             Producer, TopicPartition)

import kproto
import util


def txn_producer(bootstrap, txn_id, **extra):
    conf = {"bootstrap.servers": bootstrap, "transactional.id": txn_id,
            "linger.ms": 5}
    conf.update(extra)
    p = Producer(conf)
    p.init_transactions(30)
    return p


def read_values(bootstrap, topic, partitions, isolation, settle_s=2.0, first_s=None):
    """Every value a consumer at this isolation level reads from the start
    until settle_s of quiet; before the first value the quiet may last
    first_s (default settle_s: a caller that expects values gives the
    consumer's start on a loaded machine longer)."""
    c = Consumer({"bootstrap.servers": bootstrap,
                  "group.id": "txn-it-" + util.topic_name("g"),
                  "isolation.level": isolation,
                  "enable.auto.commit": False,
                  "enable.partition.eof": False,
                  "fetch.wait.max.ms": 100})
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING)
              for p in range(partitions)])
    values = []
    quiet_until = time.monotonic() + (first_s if first_s else settle_s)
    try:
        while time.monotonic() < quiet_until:
            m = c.poll(0.2)
            if m is None:
                continue
            assert m.error() is None, m.error()
            values.append(m.value())
            quiet_until = time.monotonic() + settle_s
    finally:
        c.close()
    return values


def test_commit_abort_and_isolation(broker):
    topic = util.create_topic(broker.bootstrap, util.topic_name("txn"), 2)
    p = txn_producer(broker.bootstrap, util.topic_name("tid"))
    p.begin_transaction()
    for i in range(10):
        p.produce(topic, b"c%d" % i, partition=i % 2)
    p.commit_transaction(30)
    p.begin_transaction()
    for i in range(6):
        p.produce(topic, b"a%d" % i, partition=i % 2)
    p.flush(10)
    p.abort_transaction(30)
    p.begin_transaction()
    for i in range(4):
        p.produce(topic, b"d%d" % i, partition=i % 2)
    p.commit_transaction(30)

    committed = sorted([b"c%d" % i for i in range(10)] +
                       [b"d%d" % i for i in range(4)])
    assert sorted(read_values(broker.bootstrap, topic, 2,
                              "read_committed")) == committed
    # read_uncommitted: the aborted data too, never a control record.
    assert sorted(read_values(broker.bootstrap, topic, 2,
                              "read_uncommitted")) == sorted(
        committed + [b"a%d" % i for i in range(6)])
    # Each transaction left one marker per partition at its own offset:
    # 5 + 3 + 2 records and 3 markers in each partition.
    assert util.high_watermarks(broker.bootstrap, topic, 2) == [13, 13]


def test_open_transaction_invisible_until_commit(broker):
    topic = util.create_topic(broker.bootstrap, util.topic_name("txno"), 1)
    p = txn_producer(broker.bootstrap, util.topic_name("tid"))
    p.begin_transaction()
    for i in range(5):
        p.produce(topic, b"o%d" % i, partition=0)
    p.flush(10)
    # The records are stored (read_uncommitted sees them), the transaction
    # is open: read_committed sees nothing, ListOffsets READ_COMMITTED
    # answers the open transaction's first offset.
    assert len(read_values(broker.bootstrap, topic, 1, "read_uncommitted",
                           settle_s=1.0, first_s=10)) == 5
    assert read_values(broker.bootstrap, topic, 1, "read_committed",
                       settle_s=1.0) == []
    p.commit_transaction(30)
    assert sorted(read_values(broker.bootstrap, topic, 1,
                              "read_committed")) == [b"o%d" % i
                                                     for i in range(5)]


def test_zombie_fenced(broker):
    topic = util.create_topic(broker.bootstrap, util.topic_name("txnz"), 1)
    tid = util.topic_name("tid")
    old = txn_producer(broker.bootstrap, tid)
    old.begin_transaction()
    old.produce(topic, b"zombie", partition=0)
    old.flush(10)
    # A new instance with the same transactional.id aborts the open
    # transaction and bumps the epoch (init_transactions retries the
    # CONCURRENT_TRANSACTIONS Kafka answers while the abort completes).
    new = txn_producer(broker.bootstrap, tid)
    new.begin_transaction()
    new.produce(topic, b"fresh", partition=0)
    new.commit_transaction(30)
    # The zombie's commit is refused: librdkafka reports it fenced (fatal).
    with pytest.raises(KafkaException) as e:
        old.commit_transaction(10)
    assert e.value.args[0].fatal(), e.value.args[0]
    assert read_values(broker.bootstrap, topic, 1,
                       "read_committed") == [b"fresh"]


def test_timeout_aborts_and_fences(broker):
    topic = util.create_topic(broker.bootstrap, util.topic_name("txnt"), 1)
    p = txn_producer(broker.bootstrap, util.topic_name("tid"),
                     **{"transaction.timeout.ms": 1500})
    p.begin_transaction()
    p.produce(topic, b"late", partition=0)
    p.flush(10)
    # Past transaction.timeout.ms the coordinator aborts the transaction
    # with a bumped epoch: its records are aborted, the producer fenced.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        hw = util.high_watermarks(broker.bootstrap, topic, 1)[0]
        if hw == 2:  # the record and the ABORT marker
            break
        time.sleep(0.2)
    assert hw == 2
    with pytest.raises(KafkaException):
        p.commit_transaction(10)
    assert read_values(broker.bootstrap, topic, 1, "read_committed",
                       settle_s=1.0) == []


def test_restart_keeps_the_coordinator_state(broker_factory):
    b = broker_factory()
    topic = util.create_topic(b.bootstrap, util.topic_name("txnr"), 1)
    tid = util.topic_name("tid")
    p = txn_producer(b.bootstrap, tid)
    p.begin_transaction()
    p.produce(topic, b"before", partition=0)
    p.commit_transaction(30)
    b.kill9()
    b.start()
    # The id is loaded back: a new instance gets the next epoch and
    # commits.
    p2 = txn_producer(b.bootstrap, tid)
    p2.begin_transaction()
    p2.produce(topic, b"after", partition=0)
    p2.commit_transaction(30)
    assert read_values(b.bootstrap, topic, 1, "read_committed") == [
        b"before", b"after"]


def test_kafkajs_transactions(broker):
    """kafkajs 2.2 (InitProducerId v0-1, AddPartitionsToTxn v0-1, EndTxn
    v0-1): committed and aborted transactions as librdkafka sees them,
    and a zombie fenced by a second producer with its transactional id."""
    js_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js")
    if not os.path.isdir(os.path.join(js_dir, "node_modules", "kafkajs")):
        pytest.fail("kafkajs is not installed in %s/node_modules; run "
                    "tools/install-node-deps.sh (make deps-test)" % js_dir)
    topic = util.create_topic(broker.bootstrap, util.topic_name("txnjs"), 2)
    r = subprocess.run(["node", os.path.join(js_dir, "transactions.js"),
                        broker.bootstrap, topic, util.topic_name("jstid")],
                       capture_output=True, timeout=120, cwd=js_dir)
    assert r.returncode == 0, "kafkajs failed:\n%s\n%s" % (
        r.stderr.decode()[-3000:], r.stdout.decode()[-1000:])
    out = json.loads(r.stdout.decode().splitlines()[-1])
    assert out["fenced"], out
    committed = sorted([b"c%d" % i for i in range(4)] + [b"d0", b"d1", b"e0"])
    assert sorted(read_values(broker.bootstrap, topic, 2,
                              "read_committed")) == committed
    assert sorted(read_values(broker.bootstrap, topic, 2,
                              "read_uncommitted")) == sorted(
        committed + [b"a%d" % i for i in range(4)])


def test_api_versions_lists_served_transaction_apis(broker):
    """What a single agent advertises: InitProducerId 0-5,
    AddPartitionsToTxn 0-5, AddOffsetsToTxn 0-4, EndTxn 0-4 and
    TxnOffsetCommit 0-4, Kafka 3.9's ranges."""
    s = kproto.connect(broker.bootstrap)
    _, apis, _ = kproto.api_versions_v0(s)
    s.close()
    assert apis[22] == (0, 5)
    assert apis[24] == (0, 5)
    assert apis[25] == (0, 4)
    assert apis[26] == (0, 4)
    assert apis[28] == (0, 4)


def committed_offsets(bootstrap, group, topic, partitions, isolation,
                      timeout=10):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "isolation.level": isolation, "enable.auto.commit": False})
    try:
        return [tp.offset for tp in c.committed(
            [TopicPartition(topic, p) for p in range(partitions)],
            timeout=timeout)]
    finally:
        c.close()


def test_offsets_in_transactions(broker):
    """Consume-transform-produce (send_offsets_to_transaction:
    AddOffsetsToTxn + TxnOffsetCommit): the group's offsets become visible
    when the transaction commits, vanish when it aborts, and a
    read_committed client's OffsetFetch (require_stable) is told
    UNSTABLE_OFFSET_COMMIT while they are pending (librdkafka retries it
    until its timeout)."""
    src = util.create_topic(broker.bootstrap, util.topic_name("eosin"), 2)
    dst = util.create_topic(broker.bootstrap, util.topic_name("eosout"), 2)
    util.ck_produce(broker.bootstrap, src, util.make_messages(20, seed=3))
    group = util.topic_name("eosg")
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                  "isolation.level": "read_committed",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(src, p, OFFSET_BEGINNING) for p in range(2)])
    p = txn_producer(broker.bootstrap, util.topic_name("eostid"))

    def round_(commit):
        got = []
        deadline = time.monotonic() + 30
        while len(got) < 10 and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got.append(m)
        assert len(got) == 10
        p.begin_transaction()
        for m in got:
            p.produce(dst, m.value().upper() if m.value() else b"",
                      partition=m.partition())
        pos = sorted(c.position(c.assignment()), key=lambda tp: tp.partition)
        p.send_offsets_to_transaction(pos, c.consumer_group_metadata(), 30)
        p.flush(10)
        # Pending: a read_uncommitted client sees the previous offsets, a
        # read_committed one is told to wait.
        before = committed_offsets(broker.bootstrap, group, src, 2,
                                   "read_uncommitted")
        with pytest.raises(KafkaException):
            committed_offsets(broker.bootstrap, group, src, 2,
                              "read_committed", timeout=2)
        if commit:
            p.commit_transaction(30)
        else:
            p.abort_transaction(30)
        # What the transaction carries (a partition not read yet has no
        # position, -1001, and is left out).
        return before, [m.value() for m in got], [tp.offset for tp in pos]

    before, first, sent = round_(True)
    assert before == [-1001, -1001]  # none committed yet
    after = committed_offsets(broker.bootstrap, group, src, 2,
                              "read_committed")
    assert after == sent and sum(o for o in sent if o > 0) == 10
    before, second, sent2 = round_(False)
    assert sent2 != sent
    assert before == after
    # The abort dropped the pending offsets: the committed ones stay.
    assert committed_offsets(broker.bootstrap, group, src, 2,
                             "read_committed") == after
    c.close()
    out = read_values(broker.bootstrap, dst, 2, "read_committed")
    assert sorted(out) == sorted(v.upper() for v in first)
