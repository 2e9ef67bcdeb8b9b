"""test_cluster.py — three agents on one PostgreSQL and one file store.

A throwaway PostgreSQL (tools/pg-test.sh, as test_postgres.py) serves the
module, a database per test; the agents share it (--meta) and one store
folder (--store file:...), each with its own --listen and data dir, and
each in a zone of its own (a, b, c), so that a client naming
sluice_az=b in its client.id is led by agent B for every partition: that
is how a produce is made to go "via B" and a fetch "via C". Raw Metadata
v1 requests ask one agent exactly.

Checked: every agent lists the three (auto-assigned node ids 1-3); a
topic created via A is visible via C within 1 s and one deleted via C is
gone from A within 1 s; records produced via B are consumed via C byte for
byte with dense offsets; an agent killed with -9 leaves Metadata within
5 s and comes back when restarted; producers through all three agents at
once to the same partitions: every acknowledged record is there once, at
the offset acknowledged, offsets dense; an idempotent producer's retry
that reaches another agent, also one holding the producer's older state,
is deduplicated, and gaps and old epochs are refused wherever they land;
a long-polling fetch on C wakes at once (LISTEN/NOTIFY, not the fallback
poll) when A commits, and reads the records A wrote; named listeners
(--listener-security-protocol-map) answer each listener's clients with
every agent's endpoint of that name.
"""
import os
import statistics
import subprocess
import threading
import time

from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

import kproto
import util
from cluster import (ZONES, cluster, metadata, pg, wait_for,  # noqa: F401 (fixtures)
                     wait_high_watermarks, wait_topic_on, zone_conf)
from test_fetch_pieces import batch_offsets, parse_fetch_v4
from test_idempotence import idempotent_batch, init_producer_id_v0, produce_one
def test_three_agents_one_topic(cluster):
    a, b, c = cluster
    for agent in cluster:
        assert wait_for("%s lists three agents" % agent,
                        lambda: metadata(agent)[0] == [1, 2, 3], 5) < 5

    topic = util.topic_name("cl")
    util.admin(a.bootstrap).create_topics(
        [NewTopic(topic, 3, 1)])[topic].result(15)
    took = wait_for("topic made via A visible via C",
                    lambda: topic in metadata(c)[1], 1.0)
    print("topic visible via C after %.3f s" % took)

    msgs = util.make_messages(2000)
    util.ck_produce(b.bootstrap, topic, msgs, **zone_conf("b"))
    wait_high_watermarks("c", c, topic, 3, len(msgs))
    util.check_roundtrip(msgs, util.consume_all(c.bootstrap, topic, 3,
                                                **zone_conf("c")))

    fs = util.admin(c.bootstrap).delete_topics([topic], operation_timeout=15)
    fs[topic].result(15)
    took = wait_for("topic deleted via C gone from A",
                    lambda: topic not in metadata(a)[1], 1.0)
    print("topic gone from A after %.3f s" % took)


def test_kill9_leaves_and_rejoins(cluster):
    a, b, c = cluster
    wait_for("three agents", lambda: metadata(a)[0] == [1, 2, 3], 5)
    b.kill9()
    took = wait_for("killed agent leaves Metadata",
                    lambda: metadata(a)[0] == [1, 3] and
                    metadata(c)[0] == [1, 3], 5.0)
    print("killed agent left after %.3f s" % took)
    b.start()
    wait_for("restarted agent rejoins",
             lambda: all(metadata(x)[0] == [1, 2, 3] for x in cluster), 5)
    # It serves: a topic and a round trip through it.
    topic = util.create_topic(b.bootstrap, util.topic_name("back"), 2)
    msgs = util.make_messages(300, seed=4)
    util.ck_produce(b.bootstrap, topic, msgs, **zone_conf("b"))
    wait_topic_on([a], topic)
    wait_high_watermarks("a", a, topic, 2, len(msgs))
    util.check_roundtrip(msgs, util.consume_all(a.bootstrap, topic, 2,
                                                **zone_conf("a")))


def test_concurrent_producers(cluster):
    a, b, c = cluster
    partitions = 4
    topic = util.create_topic(a.bootstrap, util.topic_name("hammer"),
                              partitions)
    wait_topic_on(cluster, topic)
    per_producer = 3000
    acked = {}
    errors = []
    lock = threading.Lock()

    def produce(agent, zone, n):
        p = Producer({"bootstrap.servers": agent.bootstrap, "linger.ms": 2,
                      "acks": "all", "client.id": "it,sluice_az=%s" % zone,
                      "enable.idempotence": n % 2 == 0})

        def cb(err, m):
            with lock:
                if err is not None:
                    errors.append(err)
                else:
                    acked[m.value()] = (m.partition(), m.offset())
        for i in range(per_producer):
            v = b"%s-%d-%06d" % (zone.encode(), n, i)
            while True:
                try:
                    p.produce(topic, v, partition=i % partitions,
                              on_delivery=cb)
                    break
                except BufferError:
                    p.poll(0.05)
            if i % 200 == 0:
                p.poll(0)
        assert p.flush(60) == 0

    threads = [threading.Thread(target=produce, args=(agent, z, n))
               for n in range(2) for agent, z in zip(cluster, ZONES)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:5]
    assert len(acked) == per_producer * len(threads)

    got = util.consume_all(b.bootstrap, topic, partitions,
                           expect=len(acked), **zone_conf("b"))
    seen = {}
    for p, recs in got.items():
        assert [r.offset for r in recs] == list(range(len(recs))), p
        for r in recs:
            assert r.value not in seen, "duplicate %r" % r.value
            seen[r.value] = (p, r.offset)
    assert seen == acked


def long_poll_v4(sock, topic, partition, offset, max_wait_ms):
    """Fetch v4 with min_bytes 1: parked until records arrive or the
    wait ends. Returns (error, high watermark, records)."""
    part = kproto.i32(partition) + kproto.i64(offset) + kproto.i32(1 << 20)
    body = (kproto.i32(-1) + kproto.i32(max_wait_ms) + kproto.i32(1) +
            kproto.i32(1 << 20) + kproto.i8(0) +
            kproto.array([kproto.string(topic) + kproto.array([part])]))
    return parse_fetch_v4(kproto.roundtrip(sock, 1, 4, body))[partition]


def test_long_poll_wakes_on_another_agents_commit(cluster):
    """A fetch parked on C answers within milliseconds of A's commit: the
    commit notification wakes it (the fallback poll runs once a second,
    so a median over 10 rounds under 60 ms is no poll's doing)."""
    a, b, c = cluster
    topic = util.create_topic(a.bootstrap, util.topic_name("wake"), 1)
    wait_topic_on([c], topic)
    wakes = []
    with kproto.connect(a.bootstrap) as pa, kproto.connect(c.bootstrap) as fc:
        for i in range(10):
            got = {}

            def park():
                got["r"] = long_poll_v4(fc, topic, 0, i, 10000)
                got["t"] = time.monotonic()
            t = threading.Thread(target=park)
            t.start()
            time.sleep(0.3)  # parked on C
            batch = kproto.record_batch([(None, b"v%d" % i, ())])
            assert kproto.produce_v3(pa, {topic: {0: batch}})[(topic, 0)] == (0, i)
            acked = time.monotonic()
            t.join(15)
            err, hw, records = got["r"]
            assert (err, hw) == (0, i + 1)
            assert batch_offsets(records) == [(i, 0)]
            assert records[61:].find(b"v%d" % i) >= 0
            wakes.append(got["t"] - acked)
    print("fetch on C answered %s ms after A's acknowledgement" %
          ["%.1f" % (w * 1000) for w in wakes])
    assert statistics.median(wakes) < 0.060, wakes


def idempotent_setup(cluster):
    a, b, c = cluster
    topic = util.create_topic(a.bootstrap, util.topic_name("idem"), 1)
    wait_topic_on([b, c], topic)
    with kproto.connect(a.bootstrap) as s:
        err, pid, epoch = init_producer_id_v0(s)
    assert err == 0
    return topic, pid, epoch


def test_idempotent_retry_on_another_agent(cluster):
    """A retry that reaches an agent which has not seen the producer yet is
    answered from the batch rows: the original offset, written once."""
    a, b, c = cluster
    topic, pid, epoch = idempotent_setup(cluster)
    first = idempotent_batch(pid, epoch, 0, [b"a", b"b", b"c"])
    with kproto.connect(a.bootstrap) as s:
        assert produce_one(s, topic, first) == (0, 0)
    with kproto.connect(b.bootstrap) as s:
        assert produce_one(s, topic, first) == (0, 0)
        assert produce_one(s, topic, idempotent_batch(pid, epoch, 3, [b"d"])) == (0, 3)
    wait_high_watermarks("c", c, topic, 1, 4)
    got = util.consume_all(c.bootstrap, topic, 1, 4)[0]
    assert [m.value for m in got] == [b"a", b"b", b"c", b"d"]


def test_idempotent_retry_back_to_a_stale_agent(cluster):
    """An idempotent producer's retry that reaches a different agent is
    deduplicated, also when that agent holds the producer's older state:
    the commit checks every batch against the producer's state in
    PostgreSQL. A batch that continues what other agents appended is not
    taken for a gap; a real gap, a new epoch not starting at 0 and an old
    epoch are refused with Kafka's codes whichever agent sees them."""
    a, b, c = cluster
    topic, pid, epoch = idempotent_setup(cluster)
    with kproto.connect(a.bootstrap) as s:
        assert produce_one(s, topic, idempotent_batch(pid, epoch, 0, [b"a"])) == (0, 0)
    later = idempotent_batch(pid, epoch, 1, [b"b"])
    with kproto.connect(b.bootstrap) as s:
        assert produce_one(s, topic, later) == (0, 1)
        assert produce_one(s, topic, idempotent_batch(pid, epoch, 2, [b"c"])) == (0, 2)
    with kproto.connect(a.bootstrap) as s:  # A last saw sequence 0
        assert produce_one(s, topic, later) == (0, 1)  # the retry of `later`
        assert produce_one(s, topic, idempotent_batch(pid, epoch, 3, [b"d"])) == (0, 3)
        err, _ = produce_one(s, topic, idempotent_batch(pid, epoch, 9, [b"x"]))
        assert err == 45, "expected OUT_OF_ORDER_SEQUENCE_NUMBER, got %d" % err
    with kproto.connect(c.bootstrap) as s:
        err, _ = produce_one(s, topic, idempotent_batch(pid, epoch, 9, [b"x"]))
        assert err == 45, "expected OUT_OF_ORDER_SEQUENCE_NUMBER, got %d" % err
        err, _ = produce_one(s, topic, idempotent_batch(pid, epoch + 1, 4, [b"x"]))
        assert err == 45, "a new epoch starts at 0: got %d" % err
        assert produce_one(s, topic, idempotent_batch(pid, epoch + 1, 0, [b"e"])) == (0, 4)
    with kproto.connect(a.bootstrap) as s:  # A last saw the old epoch
        err, _ = produce_one(s, topic, idempotent_batch(pid, epoch, 4, [b"y"]))
        assert err == 47, "expected INVALID_PRODUCER_EPOCH, got %d" % err
    wait_high_watermarks("c", c, topic, 1, 5)
    got = util.consume_all(c.bootstrap, topic, 1, 5)[0]
    assert [m.value for m in got] == [b"a", b"b", b"c", b"d", b"e"]
    assert [m.offset for m in got] == list(range(5))


def test_named_listeners_across_agents(pg, tmp_path):
    """Kafka's named listeners in a cluster: Metadata and FindCoordinator
    on a connection of listener NAME list every agent's endpoint of that
    name (advertised by name), and leave out an agent without one."""
    from conftest import Broker, _require_binary
    from util import free_port
    _require_binary()
    url = pg.db_url(pg.new_db())
    store = "file:%s" % (tmp_path / "objects")
    agents, ports = [], []
    for i in range(3):
        internal, external = free_port(), free_port()
        listen = "INTERNAL://127.0.0.1:%d" % internal
        extra = ["--listener-security-protocol-map", "INTERNAL:PLAINTEXT,CLIENTS:PLAINTEXT"]
        if i < 2:  # the third agent has no CLIENTS listener
            listen += ",CLIENTS://127.0.0.1:%d" % external
            extra += ["--advertise", "CLIENTS://localhost:%d" % external]
        agents.append(Broker(tmp_path / ("agent-%d" % i), ["--meta", url, "--store", store,
                                                           "--listen", listen] + extra,
                             port=internal))
        ports.append((internal, external))
    try:
        for a in agents:
            a.start()

        def endpoints(bootstrap):
            with kproto.connect(bootstrap) as s:
                brokers, _ = kproto.metadata_v1(s)
            return sorted((h, p) for _, h, p, _ in brokers)
        want_internal = sorted(("127.0.0.1", p) for p, _ in ports)
        want_clients = sorted(("localhost", p) for _, p in ports[:2])
        for a in agents:
            wait_for("%s lists three agents" % a,
                     lambda: endpoints(a.bootstrap) == want_internal, 10)
        for _, p in ports[:2]:
            wait_for("CLIENTS endpoints", lambda: endpoints("127.0.0.1:%d" % p) == want_clients, 10)
        # a group's coordinator, asked on CLIENTS, is named by its CLIENTS endpoint
        with kproto.connect("127.0.0.1:%d" % ports[0][1]) as s:
            r = kproto.Reader(kproto.roundtrip(s, 10, 1, kproto.string("g-named") + kproto.i8(0)))
            r.i32()
            err, _, node, host, port = r.i16(), r.string(), r.i32(), r.string(), r.i32()
        assert err in (0, 15) and (err == 15 or (host, port) in want_clients)
        # A partition led by the agent without CLIENTS cannot be reached
        # there (Kafka: LISTENER_NOT_FOUND); with that agent gone, a client
        # of CLIENTS produces and consumes through both agents' endpoints.
        agents[2].stop()
        two = sorted(("127.0.0.1", p) for p, _ in ports[:2])
        wait_for("two agents left", lambda: endpoints(agents[0].bootstrap) == two, 10)
        topic = util.topic_name("named")
        util.admin(agents[0].bootstrap).create_topics([NewTopic(topic, 4, 1)])[topic].result(15)
        msgs = util.make_messages(1000, seed=5)
        bs = "localhost:%d" % ports[1][1]
        util.ck_produce(bs, topic, msgs)
        util.check_roundtrip(msgs, util.consume_all(bs, topic, 4, expect=len(msgs)))
    finally:
        for a in agents:
            a.teardown()


# Partitions of the large catalog below: enough that reading them all
# takes longer than the bound the test gives the heartbeats' connection.
LARGE_CATALOG_PARTITIONS = 100000
CLUSTER_BOUND_MS = 100


def test_first_poll_of_a_large_catalog(pg, tmp_path):
    """An agent's first catalog poll reads every topic and partition: it
    runs on a connection of its own with the bulk bound, beside the
    heartbeats, not under their short bound. Agent B starts over a
    catalog of 100,000 partitions with its heartbeat and lease
    connections' bound cut to 100 ms (SLUICE_PG_CLUSTER_TIMEOUT_MS, a
    test's knob), far below what that read takes: its poll still
    completes, so a topic created via A afterwards reaches B (through
    the poll: the catalog notice only starts one), and B stays listed."""
    from conftest import Broker, _require_binary
    _require_binary()
    url = pg.db_url(pg.new_db())
    store = "file:%s" % (tmp_path / "objects")
    # No auto-creation: asking b for the topic must not create it there.
    flags = ["--meta", url, "--store", store, "--auto-create-topics", "false"]
    a = Broker(tmp_path / "agent-a", flags)
    b = Broker(tmp_path / "agent-b", flags,
               env={"SLUICE_PG_CLUSTER_TIMEOUT_MS": str(CLUSTER_BOUND_MS)})

    def brokers(agent):
        with kproto.connect(agent.bootstrap) as s:
            return sorted(x[0] for x in kproto.metadata_v1(s, [])[0])

    def knows(agent, topic):
        with kproto.connect(agent.bootstrap) as s:
            return kproto.metadata_v1(s, [topic])[1].get(topic, (3,))[0] == 0
    try:
        a.start()
        big = util.topic_name("large")
        util.admin(a.bootstrap).create_topics(
            [NewTopic(big, LARGE_CATALOG_PARTITIONS, 1)],
            operation_timeout=60)[big].result(90)
        b.start()
        wait_for("b lists a and b", lambda: brokers(b) == [1, 2], 30)
        after = util.topic_name("after")
        util.admin(a.bootstrap).create_topics([NewTopic(after, 1, 1)])[after].result(15)
        took = wait_for("the topic created via a on b", lambda: knows(b, after), 30)
        print("topic on b %.2f s after its creation" % took)
        wait_for("a lists b", lambda: brokers(a) == [1, 2], 10)
        log = open(b.stderr, errors="replace").read()
        assert "(catalog): no answer" not in log, log[-2000:]
    finally:
        b.teardown()
        a.teardown()


def test_register_waits_for_a_slow_store(pg, tmp_path):
    """Registering at start is tried again while the store fails to
    answer in time, instead of failing the start: another session holds
    the agents epoch row (every join locks it) past the cluster
    connection's statement_timeout (3 s, a lease). The second agent logs
    that it tries again and keeps running; once the row is free it
    registers (its listener opens after), and both agents list each
    other."""
    from conftest import Broker, _require_binary
    _require_binary()
    db = pg.new_db()
    url = pg.db_url(db)
    store = "file:%s" % (tmp_path / "objects")
    a = Broker(tmp_path / "agent-a", ["--meta", url, "--store", store])
    b = Broker(tmp_path / "agent-b", ["--meta", url, "--store", store])
    holder = None
    try:
        a.start()  # the schema, and node 1
        holder = subprocess.Popen(
            ["psql", "-X", "-q", "-c",
             "BEGIN; SELECT value FROM cluster WHERE name = 'agents_epoch' FOR UPDATE;"
             " SELECT pg_sleep(120); COMMIT;", url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=dict(os.environ, PGAPPNAME="epoch-holder"))
        wait_for("the epoch row held", lambda: pg.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
            "'epoch-holder' AND wait_event = 'PgSleep'", db) == "1", 10)
        # b started without waiting for its listener (Broker.start would).
        b.stderr = str(tmp_path / "agent-b.log")
        b._log = open(b.stderr, "wb")
        b.proc = subprocess.Popen(b.args(), stdin=subprocess.DEVNULL,
                                  stdout=b._log, stderr=b._log)

        def b_log(what):
            log = open(b.stderr, errors="replace").read()
            assert b.running(), "b exited: %s" % log[-2000:]
            return what in log
        wait_for("b trying to register again",
                 lambda: b_log("cannot register this agent yet"), 30)
        pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                "application_name = 'epoch-holder'", db)
        wait_for("b registered", lambda: b_log("registry: registered as node 2"), 30)

        def lists_both(agent):
            """Whether agent's Metadata lists both; False while its listener
            is not open yet (b opens it after registering)."""
            try:
                return metadata(agent)[0] == [1, 2]
            except ConnectionRefusedError:
                return False
        for agent in (a, b):
            wait_for("two agents on %s" % agent, lambda: lists_both(agent), 30)
    finally:
        if holder and holder.poll() is None:
            holder.kill()
        b.teardown()
        a.teardown()
