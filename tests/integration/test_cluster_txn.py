"""test_cluster_txn.py — transactions across three agents on one
PostgreSQL (issue 14 in cluster mode; the fixtures of cluster.py).

Each transactional id has one coordinator, placed like a group's
(FindCoordinator key type 1), acting under the id's lease. Checked with
confluent-kafka's transactional producer bootstrapped on an agent that
is not the coordinator, and read_committed consumers led by another
agent (their zone): committed records visible once and aborted ones
never, the markers and the LSO reaching the agent that serves the
reads; a request for an id sent to an agent that does not coordinate it
answers NOT_COORDINATOR; a zombie on another agent is fenced; kill -9
of the coordinator's agent with a transaction open and its producer
gone — a survivor takes the id over and aborts it at its timeout, so
the partition's LSO moves on — and with a transaction left in
PrepareCommit (the state a coordinator that died after storing it and
before its markers leaves; written into the store while the dead
agent's lease still blocks everyone) — the survivor writes the markers
and the records become visible; the producer that lost its coordinator
continues through the survivor; offsets sent to a transaction for a
group another agent coordinates are UNSTABLE_OFFSET_COMMIT to its
read_committed OffsetFetch until the commit.
"""
import time

import pytest
from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaException,
                             Producer, TopicPartition)

import kproto
import util
from test_transactions import committed_offsets
from test_txn_admin import txn_tool
from test_txn_offset_commit import _v0, txn_offset_commit_v3
from cluster import (cluster, pg, three_agents, topic_everywhere,  # noqa: F401
                     wait_for, zone_conf, ZONES)

NOT_COORDINATOR = 16
INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE, INVALID_PRODUCER_ID_MAPPING = 47, 48, 49


def find_coordinator(agent, key, key_type=1):
    """FindCoordinator v1 for a transactional id (or a group, key_type
    0): (error, port)."""
    with kproto.connect(agent.bootstrap) as s:
        r = kproto.Reader(kproto.roundtrip(
            s, 10, 1, kproto.string(key) + kproto.i8(key_type)))
    r.i32()  # throttle
    err = r.i16()
    r.string()
    r.i32()  # node id
    r.string()
    return err, r.i32()


def coordinator_of(cluster, tid, key_type=1):
    """The agent coordinating tid (or a group), as every agent answers
    it."""
    ports = {find_coordinator(a, tid, key_type) for a in cluster}
    assert len(ports) == 1, ports
    (err, port), = ports
    assert err == 0
    return next(a for a in cluster if a.port == port)


def tid_on(cluster, agent, prefix="tid"):
    """A new transactional id that agent coordinates."""
    for _ in range(200):
        tid = util.topic_name(prefix)
        if coordinator_of(cluster, tid) is agent:
            return tid
    raise AssertionError("no id placed on %s" % agent)


def producer(bootstrap, tid, **extra):
    conf = {"bootstrap.servers": bootstrap, "transactional.id": tid,
            "linger.ms": 5}
    conf.update(extra)
    p = Producer(conf)
    p.init_transactions(30)
    return p


def read_committed(agent, zone, topic, partitions, settle_s=1.5,
                   want=None, timeout=30):
    """The values a read_committed consumer led by agent (its zone) reads
    from the start: after settle_s of quiet, or as soon as it has read
    the want values (then a moment more to catch extras)."""
    c = Consumer(dict(zone_conf(zone), **{
        "bootstrap.servers": agent.bootstrap,
        "group.id": util.topic_name("rc"),
        "isolation.level": "read_committed",
        "enable.auto.commit": False, "fetch.wait.max.ms": 100}))
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING)
              for p in range(partitions)])
    values = []
    t0 = time.monotonic()
    quiet_until = t0 + settle_s
    try:
        while time.monotonic() < quiet_until:
            m = c.poll(0.2)
            if m is not None:
                assert m.error() is None, m.error()
                values.append(m.value())
                quiet_until = time.monotonic() + settle_s
            if want is not None:
                if sorted(values) == sorted(want):
                    quiet_until = min(quiet_until, time.monotonic() + 0.5)
                else:
                    quiet_until = max(quiet_until, min(
                        t0 + timeout, time.monotonic() + settle_s))
    finally:
        c.close()
    return values


def zone_of(cluster, agent):
    return ZONES[cluster.index(agent)]


def others(cluster, agent):
    return [a for a in cluster if a is not agent]


def test_commit_abort_across_agents(cluster):
    three_agents(cluster)
    topic = topic_everywhere(cluster, "ctx", 3)
    coord = cluster[0]
    tid = tid_on(cluster, coord)
    boot, reader = others(cluster, coord)
    # A non-owner answers NOT_COORDINATOR for the id (raw EndTxn v0).
    with kproto.connect(boot.bootstrap) as s:
        r = kproto.Reader(kproto.roundtrip(
            s, 26, 0, kproto.string(tid) + kproto.i64(1) + kproto.i16(0) +
            kproto.i8(1)))
    r.i32()
    assert r.i16() == NOT_COORDINATOR

    p = producer(boot.bootstrap, tid)
    p.begin_transaction()
    for i in range(9):
        p.produce(topic, b"c%d" % i, partition=i % 3)
    p.commit_transaction(30)
    p.begin_transaction()
    for i in range(6):
        p.produce(topic, b"a%d" % i, partition=i % 3)
    p.flush(10)
    p.abort_transaction(30)
    p.begin_transaction()
    for i in range(3):
        p.produce(topic, b"d%d" % i, partition=i)
    p.commit_transaction(30)
    want = [b"c%d" % i for i in range(9)] + [b"d%d" % i for i in range(3)]
    # Read through each of the other agents: the coordinator's markers
    # and the LSO reached them.
    for agent in (reader, boot):
        got = read_committed(agent, zone_of(cluster, agent), topic, 3,
                             want=want)
        assert sorted(got) == sorted(want), agent
    # 3 + 2 + 1 records and three markers per partition.
    assert util.high_watermarks(reader.bootstrap, topic, 3) == [9, 9, 9]

    # A zombie on another agent: a second producer with the id, started
    # through the third agent, fences the first.
    p.begin_transaction()
    p.produce(topic, b"zombie", partition=0)
    p.flush(10)
    new = producer(reader.bootstrap, tid)
    new.begin_transaction()
    new.produce(topic, b"fresh", partition=1)
    new.commit_transaction(30)
    with pytest.raises(KafkaException) as e:
        p.commit_transaction(10)
    assert e.value.args[0].fatal(), e.value.args[0]
    got = read_committed(coord, zone_of(cluster, coord), topic, 3,
                         want=want + [b"fresh"])
    assert sorted(got) == sorted(want + [b"fresh"])


def test_coordinator_killed(cluster, pg):
    """kill -9 of the coordinator's agent: a transaction its producer
    abandoned is aborted by the survivor placed on the id, one left in
    PrepareCommit is committed by it, and a producer whose coordinator
    died continues through the survivor."""
    three_agents(cluster)
    topic = topic_everywhere(cluster, "ktx", 2)
    victim = cluster[2]
    survivors = others(cluster, victim)
    reader = survivors[0]
    boot = survivors[1]
    db = victim.extra_args[victim.extra_args.index("--meta") + 1].rsplit(
        "/", 1)[1]
    pg_ = pg
    abandoned = tid_on(cluster, victim, "ab")
    prepared = tid_on(cluster, victim, "pc")
    going_on = tid_on(cluster, victim, "go")

    pa = producer(boot.bootstrap, abandoned,
                  **{"transaction.timeout.ms": 4000})
    pa.begin_transaction()
    pa.produce(topic, b"abandoned", partition=0)
    pa.flush(10)
    pp = producer(boot.bootstrap, prepared)
    pp.begin_transaction()
    pp.produce(topic, b"prepared", partition=1)
    pp.flush(10)
    pg_before = pg_.psql("SELECT state FROM transactions WHERE "
                         "transactional_id = '%s'" % prepared, db)
    assert pg_before == "1"  # Ongoing
    po = producer(boot.bootstrap, going_on)
    po.begin_transaction()
    po.produce(topic, b"before", partition=1)
    po.flush(10)

    victim.kill9()
    t_kill = time.monotonic()
    # What a coordinator that stored PrepareCommit and died before its
    # markers leaves: the dead agent's lease keeps every other agent from
    # writing the id meanwhile.
    pg_.psql("UPDATE transactions SET state = 2, version = version + 1 "
             "WHERE transactional_id = '%s'" % prepared, db)

    # The producer whose coordinator died commits through the survivor.
    po.commit_transaction(60)
    po.begin_transaction()
    po.produce(topic, b"after", partition=0)
    po.commit_transaction(30)

    want = [b"prepared", b"before", b"after"]
    got = read_committed(reader, zone_of(cluster, reader), topic, 2,
                         want=want, timeout=40)
    took = time.monotonic() - t_kill
    assert sorted(got) == sorted(want), got
    print("takeover: every committed record read %.1f s after the kill"
          % took)
    # The abandoned transaction was aborted at its timeout (its producer
    # is fenced); the prepared one completed as a commit.
    wait_for("abandoned aborted", lambda: pg_.psql(
        "SELECT state FROM transactions WHERE transactional_id = '%s'"
        % abandoned, db) == "5", 20)
    wait_for("prepared committed", lambda: pg_.psql(
        "SELECT state FROM transactions WHERE transactional_id = '%s'"
        % prepared, db) == "4", 20)
    with pytest.raises(KafkaException):
        pa.commit_transaction(10)
    # `sluice transactions describe` through a survivor reaches the new
    # coordinator (DescribeTransactions where the id's lease is held).
    rc, rows, err = txn_tool(reader.bootstrap, "describe", prepared)
    assert rc == 0 and rows[1][4] == "CompleteCommit", (rows, err)
    assert rows[1][0] in ("1", "2", "3") and rows[1][1] == prepared
    # The dead agent restarts and the ids can move back to it: its data
    # stays as committed.
    victim.start()
    three_agents(cluster)
    got = read_committed(victim, zone_of(cluster, victim), topic, 2,
                         want=want)
    assert sorted(got) == sorted(want), got


def test_offsets_sent_to_another_agents_group(cluster):
    """send_offsets_to_transaction for a group whose coordinator is not
    the transaction's: the group's coordinator stores the pending
    offsets on the store's check, answers a read_committed OffsetFetch
    (require_stable) UNSTABLE_OFFSET_COMMIT while they are pending (it
    learns of them from the store, not from a coordinator of its own) and
    the offsets once the transaction commits; its refusals carry the
    transaction coordinator's codes."""
    three_agents(cluster)
    src = topic_everywhere(cluster, "eosin", 2)
    dst = topic_everywhere(cluster, "eosout", 2)
    coord = cluster[0]
    tid = tid_on(cluster, coord, "eos")
    group = next(g for g in (util.topic_name("eosg") for _ in range(200))
                 if coordinator_of(cluster, g, 0) is not coord)
    boot = coordinator_of(cluster, group, 0)
    util.ck_produce(boot.bootstrap, src, util.make_messages(10, seed=5))
    c = Consumer({"bootstrap.servers": boot.bootstrap, "group.id": group,
                  "isolation.level": "read_committed",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(src, p, OFFSET_BEGINNING) for p in range(2)])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < 10 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m)
    assert len(got) == 10
    p = producer(boot.bootstrap, tid)
    p.begin_transaction()
    for m in got:
        p.produce(dst, m.value(), partition=m.partition())
    pos = sorted(c.position(c.assignment()), key=lambda tp: tp.partition)
    p.send_offsets_to_transaction(pos, c.consumer_group_metadata(), 30)
    p.flush(10)
    assert committed_offsets(boot.bootstrap, group, src, 2,
                             "read_uncommitted") == [-1001, -1001]
    with pytest.raises(KafkaException):
        committed_offsets(boot.bootstrap, group, src, 2, "read_committed",
                          timeout=2)
    p.commit_transaction(30)
    assert committed_offsets(boot.bootstrap, group, src, 2,
                             "read_committed") == [tp.offset for tp in pos]
    c.close()

    # Refusals by the store's check alone carry the codes the
    # transaction's coordinator gives (Kafka's verification): an unknown
    # producer id, another epoch, no transaction open (v3:
    # INVALID_TXN_STATE).
    raw = tid_on(cluster, coord, "eosraw")
    s = kproto.connect(coord.bootstrap)
    deadline = time.monotonic() + 30
    while True:  # the id's lease is taken at the next sync
        r = _v0(s, 22, 1, kproto.string(raw) + kproto.i32(60000))
        err, pid, epoch = r.i16(), r.i64(), r.i16()
        if err == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    s.close()
    assert err == 0, err
    s = kproto.connect(boot.bootstrap)
    got = [txn_offset_commit_v3(s, raw, p_, e_, group, -1, "", None, src, 0, 3)
           for p_, e_ in ((pid + 10 ** 9, epoch), (pid, epoch + 1), (pid, epoch))]
    s.close()
    assert got == [INVALID_PRODUCER_ID_MAPPING, INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE], got
