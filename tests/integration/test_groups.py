"""test_groups.py — consumer groups against a real broker with real clients.

Owns: partition sharing and rebalances (join, clean leave, kill -9 of a
consumer process, cooperative-sticky) with confluent-kafka; kafka-python
and kafkajs groups; committed offsets across a broker kill -9 (and a live
consumer carrying on in its generation: the membership is stored); a
generation stored before its SyncGroup is answered (the store's write
lock held by another process, kill -9 right after the answer, a failed
write); a static member's new id stored before its JoinGroup is
answered (the same lock, kill -9, a failed write reverting it); a group
unloaded when idle keeping its generation; an Empty group without
offsets forgotten and its stored record deleted (gone after a restart);
ListGroups/DescribeGroups/DeleteGroups through the admin clients and
`sluice groups`; bad group input by raw protocol.

Admin coverage: the installed confluent-kafka (1.7) has AdminClient.
list_groups (ListGroups + DescribeGroups) only; describe_consumer_groups,
delete_consumer_groups and list_consumer_group_offsets appeared in 2.x, so
those go through kafka-python's KafkaAdminClient. Neither client carries
committed leader epochs, so those are checked by raw protocol.
"""
import os
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time
import uuid
import json
import logging

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

import kproto
import util
from conftest import Broker, SLUICE_BIN, _require_binary

# A short initial delay keeps the tests quick; rebalances still go
# through it (the default is 3000 ms, as Kafka's).
GROUP_ARGS = ["--group-initial-rebalance-delay-ms", "300"]
SESSION_MS = 6000  # Kafka's group.min.session.timeout.ms
JS_DIR = os.path.join(os.path.dirname(__file__), "js")
# kafka-python's debug logging, captured by pytest, slows its admin client
# down by tens of seconds.
logging.getLogger("kafka").setLevel(logging.WARNING)


@pytest.fixture(scope="module")
def gbroker(tmp_path_factory):
    _require_binary()
    b = Broker(tmp_path_factory.mktemp("gbroker") / "data", GROUP_ARGS)
    b.start()
    yield b
    b.teardown()


def group_name():
    return "g-" + uuid.uuid4().hex[:10]


def produce(bootstrap, topic, n, partitions):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(n):
        while True:
            try:
                p.produce(topic, value=b"v-%d" % i, key=b"k-%d" % i,
                          partition=i % partitions)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(30) == 0


def ck_consumer(bootstrap, group, **extra):
    conf = {"bootstrap.servers": bootstrap, "group.id": group,
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "session.timeout.ms": SESSION_MS, "heartbeat.interval.ms": 500,
            "fetch.wait.max.ms": 100}
    conf.update(extra)
    return Consumer(conf)


def assignment_sets(consumers):
    return [frozenset(tp.partition for tp in c.assignment()) for c in consumers]


def poll_until(consumers, cond, timeout=30, what="condition"):
    """Polls every consumer round-robin until cond() holds; returns the
    seconds it took."""
    t0 = time.monotonic()
    while True:
        for c in consumers:
            c.poll(0.05)
        if cond():
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise AssertionError("%s not reached within %d s; assignments %r"
                                 % (what, timeout, assignment_sets(consumers)))


def close_cooperative(consumers, timeout=30):
    """Closes cooperative-sticky consumers so that librdkafka 2.0.2 cannot
    hang in close(): unsubscribe, poll until every partition is revoked,
    then close().

    A plain close() hangs forever when a rebalance event is still queued
    to the application (here the empty assign of the last rebalance, left
    when poll_until stops): close() queues a revoke of everything behind
    it, serving the first event unassigns and sends LeaveGroup, and if
    its answer terminates the group handle before the revoke is served,
    the revoke callback's incremental_unassign() waits without a timeout
    (rd_kafka_op_req) for a reply the terminated handle never sends.
    librdkafka issue #4884 (open; #4041 and confluent-kafka-go#1016 are
    the same wait from rd_kafka_rebalance_protocol()); no release up to
    2.15.0 lists a fix. Once unsubscribe has been served there is nothing
    left for close() to revoke."""
    for c in consumers:
        c.unsubscribe()
    t0 = time.monotonic()
    while any(c.assignment() for c in consumers):
        for c in consumers:
            c.poll(0.05)
        if time.monotonic() - t0 > timeout:
            raise AssertionError("unsubscribe did not revoke within %d s; "
                                 "assignments %r" % (timeout,
                                                     assignment_sets(consumers)))
    for c in consumers:
        c.close()


def shares_all(consumers, partitions):
    """Every consumer has partitions, they are disjoint and cover all."""
    def cond():
        sets = assignment_sets(consumers)
        if any(not s for s in sets):
            return False
        union = set().union(*sets)
        return union == set(range(partitions)) and \
            sum(len(s) for s in sets) == partitions
    return cond


def test_share_join_leave(gbroker):
    bs = gbroker.bootstrap
    topic = util.create_topic(bs, util.topic_name("grp"), 12)
    produce(bs, topic, 1200, 12)
    group = group_name()
    cs = [ck_consumer(bs, group) for _ in range(3)]
    for c in cs:
        c.subscribe([topic])
    poll_until(cs, shares_all(cs, 12), what="3 consumers sharing 12 partitions")
    before = assignment_sets(cs)
    assert all(len(s) == 4 for s in before), before

    d = ck_consumer(bs, group)
    d.subscribe([topic])
    cs.append(d)
    poll_until(cs, shares_all(cs, 12), what="4 consumers sharing 12 partitions")
    after = assignment_sets(cs)
    assert after[:3] != before, "no partition moved when a 4th member joined"

    # one leaves cleanly: its partitions are reassigned within a few seconds
    leaving = cs.pop(1)
    leaving.close()
    took = poll_until(cs, shares_all(cs, 12), timeout=15,
                      what="3 consumers covering 12 after a clean leave")
    assert took < 5, "reassignment after a clean leave took %.1f s" % took
    for c in cs:
        c.close()


CHILD = textwrap.dedent(r"""
    import signal, sys, time
    from confluent_kafka import Consumer
    bs, topic, group, out = sys.argv[1:5]
    c = Consumer({"bootstrap.servers": bs, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "session.timeout.ms": %d, "heartbeat.interval.ms": 500,
                  "fetch.wait.max.ms": 100})
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    f = open(out, "a")

    def assigned(c, parts):
        # when the group handed this member its partitions
        f.write("assigned %%s %%.3f\n" %% (",".join(str(p.partition) for p in parts),
                                        time.monotonic()))
        f.flush()
    c.subscribe([topic], on_assign=assigned)
    while not stop:
        m = c.poll(0.1)
        if m is None or m.error():
            continue
        # at least once: record (with when), then commit
        f.write("%%d %%d %%s %%.3f\n" %% (m.partition(), m.offset(), m.value().decode(),
                                      time.monotonic()))
        f.flush()
        c.commit(message=m, asynchronous=False)
        time.sleep(0.004)
    c.close()
""" % SESSION_MS)


def read_seen(paths):
    seen = {}
    for p in paths:
        if not os.path.exists(p):
            continue
        with open(p) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 4:
                    seen.setdefault(parts[2], 0)
                    seen[parts[2]] += 1
    return seen


def read_lines(path):
    """(partition, offset, monotonic time) of each complete line."""
    out = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 4 and line.endswith("\n"):
                    out.append((int(parts[0]), int(parts[1]), float(parts[3])))
    return out


def read_assignments(path):
    """(set of partitions, monotonic time) of each assignment the member
    was handed."""
    out = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[0] == "assigned" and line.endswith("\n"):
                    out.append(({int(p) for p in parts[1].split(",") if p},
                                float(parts[2])))
    return out


def test_kill9_consumer_reassigned(gbroker, tmp_path):
    bs = gbroker.bootstrap
    n = 3000
    topic = util.create_topic(bs, util.topic_name("k9"), 12)
    produce(bs, topic, n, 12)
    group = group_name()
    outs = [str(tmp_path / ("c%d.out" % i)) for i in range(3)]
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, bs, topic, group, o])
             for o in outs]
    try:
        # wait until all three consume, then kill -9 the first mid-way
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(os.path.exists(o) and os.path.getsize(o) > 0 for o in outs) and \
                    os.path.getsize(outs[0]) > 2000:
                break
            time.sleep(0.1)
        assert os.path.getsize(outs[0]) > 0, "the first consumer never consumed"
        killed_at = time.monotonic()
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait()
        partial = len(read_seen(outs))
        assert partial < n, "everything was consumed before the kill; " \
            "make the consumers slower"
        # the survivors take over after session.timeout.ms and resume from
        # the committed offsets: every message at least once, none skipped
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if len(read_seen(outs)) == n:
                break
            time.sleep(0.2)
        seen = read_seen(outs)
        missing = n - len(seen)
        assert missing == 0, "%d messages never consumed" % missing
        assert set(seen) == {"v-%d" % i for i in range(n)}
        # When did a survivor first read a partition the victim was in the
        # middle of (read in its last 2 s, not finished, not read by the
        # survivors then)? After session.timeout.ms, give or take the last
        # heartbeat (500 ms before the kill at worst), and a few seconds
        # more for the rebalance at most.
        victim = [l for l in read_lines(outs[0]) if l[2] >= killed_at - 2]
        survivors = [l for o in outs[1:] for l in read_lines(o)]
        busy = {p for p, _, t in survivors if killed_at - 2 <= t < killed_at}
        last = {}
        for p, off, _ in victim:
            last[p] = max(last.get(p, -1), off)
        per_partition = n // 12
        taken = {p for p, off in last.items()
                 if off < per_partition - 2 and p not in busy}
        assert taken, "the victim was not in the middle of any partition: %r" % last
        # The takeover is the group handing a survivor one of those
        # partitions. (Its first record of it is no measure: a survivor
        # reads the records of its other partitions fetched with it one
        # by one, each with a synchronous commit, which on a loaded
        # machine took 8 s more.)
        handed = [t for o in outs[1:] for ps, t in read_assignments(o)
                  if ps & taken and t >= killed_at]
        assert handed, "no survivor was handed the victim's partitions %r" % taken
        took = min(handed) - killed_at
        first = min(t for p, _, t in survivors if p in taken and t >= killed_at)
        print("victim's partitions %s handed to a survivor %.1f s after the kill, "
              "first read from %.1f s" % (sorted(taken), took, first - killed_at))
        session = SESSION_MS / 1000.0
        assert session - 1.0 <= took <= session + 6.0, \
            "a survivor took over %.1f s after the kill (session %.1f s)" % (took, session)
    finally:
        for p in procs[1:]:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs[1:]:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_cooperative_sticky(gbroker):
    bs = gbroker.bootstrap
    topic = util.create_topic(bs, util.topic_name("coop"), 12)
    produce(bs, topic, 120, 12)
    group = group_name()
    conf = {"partition.assignment.strategy": "cooperative-sticky"}
    cs = [ck_consumer(bs, group, **conf) for _ in range(2)]
    for c in cs:
        c.subscribe([topic])
    poll_until(cs, shares_all(cs, 12), what="2 cooperative consumers sharing")
    before = assignment_sets(cs)
    third = ck_consumer(bs, group, **conf)
    third.subscribe([topic])
    cs.append(third)
    poll_until(cs, shares_all(cs, 12), what="3 cooperative consumers sharing")
    after = assignment_sets(cs)
    # sticky: the first two only gave partitions away, never swapped
    assert after[0] <= before[0] and after[1] <= before[1], (before, after)
    assert len(after[2]) == 4, after
    # the group describes with the cooperative protocol
    groups = util.admin(bs).list_groups(group, timeout=10)
    assert groups[0].protocol == "cooperative-sticky", groups[0].protocol
    assert groups[0].state == "Stable"
    close_cooperative(cs)
    # every member left: the group is empty at once, not after sessions
    groups = util.admin(bs).list_groups(group, timeout=10)
    assert groups[0].state == "Empty", groups[0].state


def test_kafka_python_group(gbroker):
    import threading
    from kafka import KafkaConsumer
    bs = gbroker.bootstrap
    n = 600
    topic = util.create_topic(bs, util.topic_name("kp"), 6)
    produce(bs, topic, n, 6)
    group = group_name()
    seen = set()
    lock = threading.Lock()
    stop = threading.Event()
    final = [None, None]

    # kafka-python blocks inside poll() while it rejoins, so each member
    # polls on its own thread (as applications do).
    def member(i):
        c = KafkaConsumer(topic, bootstrap_servers=bs, group_id=group,
                          auto_offset_reset="earliest", enable_auto_commit=False,
                          session_timeout_ms=SESSION_MS, heartbeat_interval_ms=500,
                          max_poll_interval_ms=20000, fetch_max_wait_ms=100)
        try:
            while not stop.is_set():
                for tp, msgs in c.poll(timeout_ms=100).items():
                    with lock:
                        for m in msgs:
                            seen.add((tp.partition, m.offset))
                c.commit()
                final[i] = set(tp.partition for tp in c.assignment())
        finally:
            c.close()

    threads = [threading.Thread(target=member, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with lock:
            done = len(seen) == n
        if done and final[0] and final[1] and not (final[0] & final[1]) and \
                final[0] | final[1] == set(range(6)):
            break
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join(30)
    assert len(seen) == n
    assert final[0] and final[1] and not (final[0] & final[1]), final
    assert final[0] | final[1] == set(range(6)), final


def test_kafkajs_group(gbroker):
    if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "kafkajs")):
        pytest.fail("kafkajs is not installed in %s/node_modules" % JS_DIR)
    bs = gbroker.bootstrap
    n = 600
    topic = util.create_topic(bs, util.topic_name("js"), 6)
    produce(bs, topic, n, 6)
    group = group_name()
    r = subprocess.run(["node", os.path.join(JS_DIR, "group_consume.js"), bs,
                        topic, group, str(n), "2"],
                       capture_output=True, timeout=120, cwd=JS_DIR)
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    out = json.loads(r.stdout.decode().splitlines()[-1])
    assert out["unique"] == n
    # offsets were committed for the whole topic
    c = ck_consumer(bs, group)
    committed = c.committed([TopicPartition(topic, p) for p in range(6)],
                            timeout=10)
    c.close()
    assert sum(tp.offset for tp in committed) == n, committed


def commit_v6(sock, group, topic, partition, offset, leader_epoch, metadata):
    """OffsetCommit v6 (generation -1): the partition's error code."""
    body = (kproto.string(group) + kproto.i32(-1) + kproto.string("") +
            kproto.i32(1) + kproto.string(topic) + kproto.i32(1) +
            kproto.i32(partition) + kproto.i64(offset) + kproto.i32(leader_epoch) +
            kproto.string(metadata))
    r = kproto.Reader(kproto.roundtrip(sock, API_OFFSET_COMMIT, 6, body))
    r.i32()  # throttle
    res = r.array(lambda: (r.string(), r.array(lambda: (r.i32(), r.i16()))))
    return res[0][1][0][1]


def fetch_v5(sock, group, topic, partition):
    """OffsetFetch v5: (offset, leader epoch, metadata, error) of one
    partition."""
    body = (kproto.string(group) + kproto.i32(1) + kproto.string(topic) +
            kproto.i32(1) + kproto.i32(partition))
    r = kproto.Reader(kproto.roundtrip(sock, API_OFFSET_FETCH, 5, body))
    r.i32()  # throttle
    res = r.array(lambda: (r.string(), r.array(
        lambda: (r.i32(), r.i64(), r.i32(), r.string(), r.i16()))))
    assert r.i16() == 0
    _, off, epoch, md, err = res[0][1][0]
    return off, epoch, md, err


def test_offsets_survive_kill9(broker_factory):
    from kafka import KafkaConsumer, TopicPartition as KTP
    from kafka.structs import OffsetAndMetadata
    b = broker_factory(GROUP_ARGS)
    bs = b.bootstrap
    topic = util.create_topic(bs, util.topic_name("rs"), 1)
    produce(bs, topic, 100, 1)
    group = group_name()
    c = ck_consumer(bs, group)
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < 40 and time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is not None and not m.error():
            got.append(m.offset())
    assert len(got) == 40
    c.commit(offsets=[TopicPartition(topic, 0, 40)], asynchronous=False)
    c.close()
    # metadata strings round-trip (kafka-python), and leader epochs (raw
    # OffsetCommit v6 / OffsetFetch v5: neither client here carries them)
    other = group_name()
    kc = KafkaConsumer(bootstrap_servers=bs, group_id=other,
                       enable_auto_commit=False)
    kc.commit({KTP(topic, 0): OffsetAndMetadata(7, "hello-meta")})
    kc.close()
    epoch_group = group_name()
    s = kproto.connect(bs)
    assert commit_v6(s, epoch_group, topic, 0, 33, 5, "epoch-meta") == 0
    s.close()

    # a live member across the broker kill -9 carries on in its
    # generation: the membership was stored when the generation completed
    # (Kafka's GroupMetadata record), so no rebalance and no error
    live_group = group_name()
    live_errors, assigns = [], [0]
    live = ck_consumer(bs, live_group, error_cb=lambda e: live_errors.append(e))
    live.subscribe([topic], on_assign=lambda c, ps: assigns.__setitem__(0, assigns[0] + 1))
    # no wait: the generation is stored before SyncGroup is answered
    poll_until([live], lambda: bool(live.assignment()), what="live member")

    b.restart(clean=False)
    # groups known only by their stored offsets are listed after a restart
    listed = {x.id: x.state for x in util.admin(bs).list_groups(timeout=10)}
    assert listed.get(group) == "Empty" and listed.get(other) == "Empty", listed
    c = ck_consumer(bs, group)
    c.subscribe([topic])
    first = None
    deadline = time.monotonic() + 30
    while first is None and time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is not None and not m.error():
            first = m.offset()
    c.close()
    assert first == 40, "resumed at %r, not after the last commit (40)" % first
    kc = KafkaConsumer(bootstrap_servers=bs, group_id=other,
                       enable_auto_commit=False)
    om = kc._coordinator.fetch_committed_offsets([KTP(topic, 0)])
    kc.close()
    assert om[KTP(topic, 0)].offset == 7
    assert om[KTP(topic, 0)].metadata == "hello-meta"
    s = kproto.connect(bs)
    assert fetch_v5(s, epoch_group, topic, 0) == (33, 5, "epoch-meta", 0)
    s.close()

    # the live consumer rejoins and keeps consuming new messages
    produce(bs, topic, 10, 1)
    count = [0]

    def more():
        return count[0] >= 10
    deadline = time.monotonic() + 40
    while not more() and time.monotonic() < deadline:
        m = live.poll(0.2)
        if m is not None and not m.error() and m.offset() >= 100:
            count[0] += 1
    live.commit(asynchronous=False)  # its generation is known: accepted
    live.close()
    assert more(), "the live consumer got %d of 10 new messages after the " \
        "broker restart" % count[0]
    assert assigns[0] == 1, "the live consumer was assigned %d times" % assigns[0]
    bad = [e for e in live_errors if e.code() in (KafkaError.ILLEGAL_GENERATION,
                                                    KafkaError.UNKNOWN_MEMBER_ID)]
    assert not bad, bad


def sluice_groups(bs, *args):
    r = subprocess.run([SLUICE_BIN, "groups", "--bootstrap", bs] + list(args),
                       capture_output=True, timeout=30)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def test_admin_and_cli(gbroker):
    from kafka.admin import KafkaAdminClient
    from kafka.errors import NonEmptyGroupError, GroupIdNotFoundError
    bs = gbroker.bootstrap
    topic = util.create_topic(bs, util.topic_name("adm"), 4)
    produce(bs, topic, 400, 4)
    group = group_name()
    cs = [ck_consumer(bs, group, **{"client.id": "adm-client"}) for _ in range(2)]
    for c in cs:
        c.subscribe([topic])
    poll_until(cs, shares_all(cs, 4), what="2 consumers sharing 4")
    # consume and commit everything
    deadline = time.monotonic() + 30
    total = 0
    while total < 400 and time.monotonic() < deadline:
        for c in cs:
            m = c.poll(0.05)
            if m is not None and not m.error():
                total += 1
    for c in cs:
        c.commit(asynchronous=False)

    # confluent-kafka: ListGroups + DescribeGroups
    gl = util.admin(bs).list_groups(group, timeout=10)
    assert len(gl) == 1
    g = gl[0]
    assert g.id == group and g.state == "Stable" and g.protocol_type == "consumer"
    assert g.protocol == "range"
    assert len(g.members) == 2
    assert all(m.client_id == "adm-client" for m in g.members)
    assert all(m.client_host.startswith("/127.0.0.1") for m in g.members)
    all_ids = [x.id for x in util.admin(bs).list_groups(timeout=10)]
    assert group in all_ids

    # kafka-python: list, describe, offsets, delete
    ka = KafkaAdminClient(bootstrap_servers=bs)
    assert (group, "consumer") in ka.list_consumer_groups()
    desc = ka.describe_consumer_groups([group])[0]
    assert desc.state == "Stable" and len(desc.members) == 2
    offs = ka.list_consumer_group_offsets(group)
    assert sum(v.offset for v in offs.values()) == 400

    # `sluice groups`
    rc, out, err = sluice_groups(bs, "list")
    assert rc == 0, err
    line = [l for l in out.splitlines() if l.startswith(group)]
    assert line and "Stable" in line[0] and "consumer" in line[0], out
    rc, out, err = sluice_groups(bs, "describe", group)
    assert rc == 0, err
    assert "state Stable" in out and "range" in out, out
    rows = [l.split() for l in out.splitlines() if l.startswith(group + " ")]
    assert len(rows) == 4, out
    for r in rows:
        assert r[1] == topic and r[3] == "100" and r[4] == "100" and r[5] == "0", r
        assert r[8] == "adm-client", r

    # an active group is not deleted
    res = ka.delete_consumer_groups([group])
    assert res[0][1] is NonEmptyGroupError, res
    rc, out, err = sluice_groups(bs, "delete", group)
    assert rc == 1 and "NON_EMPTY_GROUP" in out, out
    rc, out, err = sluice_groups(bs, "reset-offsets", group, "--topic", topic,
                                 "--to-earliest", "--execute")
    assert rc == 1 and "inactive" in err, err

    for c in cs:
        c.close()
    # the group is empty once both left: reset, then delete
    rc, out, err = sluice_groups(bs, "reset-offsets", group, "--topic", topic,
                                 "--to-earliest", "--execute")
    assert rc == 0, err
    offs = ka.list_consumer_group_offsets(group)
    assert sum(v.offset for v in offs.values()) == 0, offs
    rc, out, err = sluice_groups(bs, "reset-offsets", group, "--topic", topic,
                                 "--to-latest", "--execute")
    assert rc == 0, err
    offs = ka.list_consumer_group_offsets(group)
    assert sum(v.offset for v in offs.values()) == 400, offs
    # --to-datetime: the first offset at or after a time between two waves
    # of messages (100 per partition before, 10 after); as ISO UTC and as
    # epoch ms
    time.sleep(0.05)
    mid_ms = int(time.time() * 1000)
    time.sleep(0.05)
    produce(bs, topic, 40, 4)
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(mid_ms // 1000)) + \
        ".%03d" % (mid_ms % 1000)
    for when, want in ((iso, 400), (str(mid_ms - 3600 * 1000), 0),
                       (str(mid_ms + 3600 * 1000), 440)):
        rc, out, err = sluice_groups(bs, "reset-offsets", group, "--topic", topic,
                                     "--to-datetime", when, "--execute")
        assert rc == 0, err
        offs = ka.list_consumer_group_offsets(group)
        assert sum(v.offset for v in offs.values()) == want, (when, offs)
    res = ka.delete_consumer_groups([group])
    assert res[0][1].__name__ == "NoError", res
    res = ka.delete_consumer_groups([group])
    assert res[0][1] is GroupIdNotFoundError, res
    assert group not in [x.id for x in util.admin(bs).list_groups(timeout=10)]
    rc, out, err = sluice_groups(bs, "describe", group)
    assert rc == 1
    ka.close()


# --- bad input, by raw protocol ---------------------------------------------

API_OFFSET_COMMIT = 8
API_JOIN_GROUP = 11
API_SYNC_GROUP = 14
API_OFFSET_FETCH = 9
API_DELETE_GROUPS = 42


def join_v1(sock, group, member_id, metadata, protocol="range", rebalance_ms=10000):
    body = (kproto.string(group) + kproto.i32(SESSION_MS) + kproto.i32(rebalance_ms) +
            kproto.string(member_id) + kproto.string("consumer") +
            kproto.i32(1) + kproto.string(protocol) + kproto.bytes_(metadata))
    r = kproto.Reader(kproto.roundtrip(sock, API_JOIN_GROUP, 1, body))
    err, gen = r.i16(), r.i32()
    proto, leader, member = r.string(), r.string(), r.string()
    members = r.array(lambda: (r.string(), r.take(r.i32())))
    return err, gen, leader, member, members


def test_bad_group_input(gbroker):
    bs = gbroker.bootstrap
    topic = util.create_topic(bs, util.topic_name("bad"), 2)
    s = kproto.connect(bs, timeout=20)
    group = group_name()

    # oversized protocol metadata: INVALID_REQUEST, no member created
    err, gen, _, member, _ = join_v1(s, group, "", b"x" * (1024 * 1024 + 1))
    assert err == 42, err  # INVALID_REQUEST
    assert gen == -1

    # a proper join (v1: no MEMBER_ID_REQUIRED round trip)
    err, gen, leader, member, members = join_v1(s, group, "", b"\x00\x00")
    assert err == 0 and gen == 1 and leader == member and len(members) == 1

    # SyncGroup with assignments for unknown members: ignored, as Kafka does
    def sync_v1(member_id, gen_id, assignments):
        body = (kproto.string(group) + kproto.i32(gen_id) +
                kproto.string(member_id) + kproto.i32(len(assignments)) +
                b"".join(kproto.string(m) + kproto.bytes_(a)
                         for m, a in assignments))
        r = kproto.Reader(kproto.roundtrip(s, API_SYNC_GROUP, 1, body))
        return r.i32(), r.i16(), r.take(r.i32())
    _, err, assign = sync_v1(member, gen, [("ghost-1", b"AAAA"), (member, b"MINE")])
    assert err == 0 and assign == b"MINE"
    # a SyncGroup from an unknown member, or with a stale generation
    _, err, _ = sync_v1("ghost-1", gen, [])
    assert err == 25  # UNKNOWN_MEMBER_ID
    _, err, _ = sync_v1(member, gen + 5, [])
    assert err == 22  # ILLEGAL_GENERATION

    # OffsetCommit v2 for an unknown topic, a bad partition, big metadata
    def commit_v2(gen_id, member_id, parts):
        body = (kproto.string(group) + kproto.i32(gen_id) + kproto.string(member_id) +
                kproto.i64(-1) + kproto.i32(len(parts)) +
                b"".join(kproto.string(t) + kproto.i32(1) + kproto.i32(p) +
                         kproto.i64(5) + kproto.string(md) for t, p, md in parts))
        r = kproto.Reader(kproto.roundtrip(s, API_OFFSET_COMMIT, 2, body))
        return r.array(lambda: (r.string(), r.array(lambda: (r.i32(), r.i16()))))
    res = commit_v2(gen, member, [("no-such-topic", 0, ""), (topic, 7, ""),
                                  (topic, 0, "m" * 5000), (topic, 1, "ok")])
    errs = [p[0][1] for _, p in res]
    assert errs == [3, 3, 12, 0], errs  # UNKNOWN_TOPIC_OR_PARTITION, ..., OFFSET_METADATA_TOO_LARGE
    # a stale generation and an unknown member
    res = commit_v2(gen - 1, member, [(topic, 1, "")])
    assert res[0][1][0][1] == 22
    res = commit_v2(gen, "nobody", [(topic, 1, "")])
    assert res[0][1][0][1] == 25

    # a truncated JoinGroup closes the connection; the broker keeps serving
    s.sendall(kproto.request(API_JOIN_GROUP, 1, 99, kproto.string(group) + b"\x00"))
    assert kproto.closed_by_peer(s, strict=False)
    s.close()
    s2 = kproto.connect(bs)
    err, gen2, _, _, _ = join_v1(s2, group_name(), "", b"\x00\x00")
    assert err == 0 and gen2 == 1
    s2.close()


def test_delete_ordered_after_queued_commit(gbroker):
    """DeleteGroups pipelined right behind an OffsetCommit of the same
    group: the delete is queued after the commit, so the commit cannot
    bring the offsets back once the group is deleted."""
    bs = gbroker.bootstrap
    topic = util.create_topic(bs, util.topic_name("ord"), 1)
    s = kproto.connect(bs, timeout=20)
    for _ in range(5):
        group = group_name()
        commit = (kproto.string(group) + kproto.i32(-1) + kproto.string("") +
                  kproto.i64(-1) + kproto.i32(1) + kproto.string(topic) +
                  kproto.i32(1) + kproto.i32(0) + kproto.i64(9) + kproto.string(""))
        delete = kproto.i32(1) + kproto.string(group)
        s.sendall(kproto.request(API_OFFSET_COMMIT, 2, 1, commit) +
                  kproto.request(API_DELETE_GROUPS, 0, 2, delete))
        cid, body = kproto.recv_response(s)
        assert cid == 1
        r = kproto.Reader(body)
        res = r.array(lambda: (r.string(), r.array(lambda: (r.i32(), r.i16()))))
        assert res[0][1][0][1] == 0, res
        cid, body = kproto.recv_response(s)
        assert cid == 2
        r = kproto.Reader(body)
        r.i32()  # throttle
        res = r.array(lambda: (r.string(), r.i16()))
        assert res == [(group, 0)], res
        off, _, _, err = fetch_v5(s, group, topic, 0)
        assert (off, err) == (-1, 0), "offset %d came back after DeleteGroups" % off
        listed = [x.id for x in util.admin(bs).list_groups(timeout=10)]
        assert group not in listed
    s.close()


def delete_groups_v1(sock, group):
    """DeleteGroups v1 of one group: its error code."""
    body = kproto.roundtrip(sock, 42, 1, kproto.array([kproto.string(group)]))
    r = kproto.Reader(body)
    r.i32()  # throttle_time_ms
    (name, err), = r.array(lambda: (r.string(), r.i16()))
    assert name == group
    return err


def describe_group_v0(sock, group):
    """DescribeGroups v0 of one group: (error, state, member count)."""
    body = kproto.roundtrip(sock, 15, 0, kproto.array([kproto.string(group)]))
    r = kproto.Reader(body)

    def member():
        r.string(), r.string(), r.string()
        r.take(r.i32()), r.take(r.i32())
    (err, _, state, _, _, members), = r.array(
        lambda: (r.i16(), r.string(), r.string(), r.string(), r.string(),
                 r.array(member)))
    return err, state, len(members)


def test_static_members_expire_at_deadline(gbroker):
    """Static members (group.instance.id) closed by librdkafka do not send
    LeaveGroup; Kafka expires each at its session deadline. The group keeps
    them until then, and a DeleteGroups sent 5 ms after session.timeout.ms
    from the close finds the group empty and deletes it (with a 100 ms
    session check it answered NON_EMPTY_GROUP nineteen times in twenty)."""
    bs = gbroker.bootstrap
    topic = util.create_topic(bs, util.topic_name("st"), 2)
    group = group_name()
    cs = [ck_consumer(bs, group, **{"group.instance.id": "inst-%d" % i})
          for i in range(2)]
    for c in cs:
        c.subscribe([topic])
    poll_until(cs, lambda: sorted(len(a) for a in assignment_sets(cs)) == [1, 1],
               what="both static members assigned")
    sock = kproto.connect(bs)
    try:
        t_close = time.monotonic()
        for c in cs:
            c.close()
        closed = time.monotonic()
        # Not gone before their sessions end (the last heartbeat came
        # about one heartbeat interval before the close began; 2.5 s of
        # margin for a loaded machine).
        time.sleep(max(0, t_close + SESSION_MS / 1000 - 2.5 - time.monotonic()))
        err, state, members = describe_group_v0(sock, group)
        assert (err, state, members) == (0, "Stable", 2), (err, state, members)
        assert delete_groups_v1(sock, group) == 68  # NON_EMPTY_GROUP
        time.sleep(max(0, closed + SESSION_MS / 1000 + 0.005 - time.monotonic()))
        err = delete_groups_v1(sock, group)
        late_ms = (time.monotonic() - closed) * 1000 - SESSION_MS
        assert err == 0, "DeleteGroups %.1f ms after session.timeout.ms: " \
            "error %d" % (late_ms, err)
        err, state, members = describe_group_v0(sock, group)
        assert (state, members) == ("Dead", 0), (err, state, members)

        # The same to the millisecond: a member whose last heartbeat is
        # known (its answer's arrival bounds the broker's receipt).
        group = group_name()
        err, gen, _, member, _ = join_v1(sock, group, "", b"\x00\x00")
        assert err == 0
        body = (kproto.string(group) + kproto.i32(gen) + kproto.string(member) +
                kproto.i32(0))
        r = kproto.Reader(kproto.roundtrip(sock, API_SYNC_GROUP, 1, body))
        assert r.i16() == 0
        body = kproto.string(group) + kproto.i32(gen) + kproto.string(member)
        assert kproto.Reader(kproto.roundtrip(sock, 12, 0, body)).i16() == 0
        beat = time.monotonic()
        time.sleep(max(0, beat + SESSION_MS / 1000 - 0.5 - time.monotonic()))
        assert delete_groups_v1(sock, group) == 68
        time.sleep(max(0, beat + SESSION_MS / 1000 + 0.005 - time.monotonic()))
        err = delete_groups_v1(sock, group)
        late_ms = (time.monotonic() - beat) * 1000 - SESSION_MS
        assert err == 0, "DeleteGroups %.1f ms after the session's end: " \
            "error %d" % (late_ms, err)
    finally:
        sock.close()


def sync_v1(sock, group, member_id, gen_id, assignments, correlation_id=7):
    """SyncGroup v1, sent: the request bytes (answer with read_sync)."""
    body = (kproto.string(group) + kproto.i32(gen_id) + kproto.string(member_id) +
            kproto.i32(len(assignments)) +
            b"".join(kproto.string(m) + kproto.bytes_(a) for m, a in assignments))
    sock.sendall(kproto.request(API_SYNC_GROUP, 1, correlation_id, body))


def read_sync(sock):
    """SyncGroup v1's answer: (error, assignment)."""
    _, body = kproto.recv_response(sock)
    r = kproto.Reader(body)
    r.i32()  # throttle_time_ms
    return r.i16(), r.take(r.i32())


def heartbeat_v0(sock, group, gen_id, member_id):
    body = kproto.string(group) + kproto.i32(gen_id) + kproto.string(member_id)
    return kproto.Reader(kproto.roundtrip(sock, 12, 0, body)).i16()


def answered_within(sock, seconds):
    """Whether bytes of an answer arrive on sock within seconds."""
    sock.settimeout(seconds)
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except socket.timeout:
        return False
    finally:
        sock.settimeout(20)


def test_generation_stored_before_sync_answer(broker_factory):
    """Kafka answers SyncGroup only once the group's GroupMetadata record
    is durable (doSyncGroup answers from storeGroup's callback). With the
    metadata store's write lock held by another process, the leader's
    SyncGroup waits for it (on main it was answered before the write); once
    answered, a kill -9 at once loses nothing: after the restart the member
    heartbeats and commits in the same generation. A write that fails
    (the lock held beyond the store's 5 s busy timeout) answers
    COORDINATOR_NOT_AVAILABLE, as Kafka maps NOT_ENOUGH_REPLICAS, and the
    group rebalances."""
    import sqlite3
    b = broker_factory(GROUP_ARGS)
    bs = b.bootstrap
    topic = util.create_topic(bs, util.topic_name("sb"), 1)
    group = group_name()
    s = kproto.connect(bs, timeout=20)
    err, gen, leader, member, _ = join_v1(s, group, "", b"\x00\x00")
    assert err == 0 and gen == 1 and leader == member

    db = sqlite3.connect(os.path.join(b.data_dir, "meta.db"), timeout=10,
                         isolation_level=None)
    db.execute("BEGIN IMMEDIATE")  # the write lock: the agent's writes wait
    try:
        sync_v1(s, group, member, gen, [(member, b"MINE")])
        assert not answered_within(s, 1.5), \
            "SyncGroup answered while its generation could not be stored"
    finally:
        db.execute("ROLLBACK")
    assert read_sync(s) == (0, b"MINE")
    b.restart(clean=False)  # kill -9 right after the answer
    s.close()
    s = kproto.connect(bs, timeout=20)
    assert heartbeat_v0(s, group, gen, member) == 0  # not UNKNOWN_MEMBER_ID
    body = (kproto.string(group) + kproto.i32(gen) + kproto.string(member) +
            kproto.i64(-1) + kproto.array([kproto.string(topic) + kproto.array(
                [kproto.i32(0) + kproto.i64(5) + kproto.string("")])]))
    r = kproto.Reader(kproto.roundtrip(s, API_OFFSET_COMMIT, 2, body))
    res = r.array(lambda: (r.string(), r.array(lambda: (r.i32(), r.i16()))))
    assert res[0][1][0][1] == 0, res  # the restored generation commits

    # The leader rejoins (a new generation); its write fails. (A rebalance
    # timeout beyond the store's busy timeout even on a loaded machine,
    # where the sync deadline would answer REBALANCE_IN_PROGRESS first.)
    err, gen2, leader, member2, _ = join_v1(s, group, member, b"\x00\x00",
                                            rebalance_ms=120000)
    assert err == 0 and gen2 == gen + 1 and member2 == member
    db.execute("BEGIN IMMEDIATE")
    try:
        sync_v1(s, group, member, gen2, [(member, b"NEXT")])
        started = time.monotonic()
        got = read_sync(s)
        assert got == (15, b""), got  # COORDINATOR_NOT_AVAILABLE
        assert time.monotonic() - started > 3  # after the store gave up
    finally:
        db.execute("ROLLBACK")
        db.close()
    assert heartbeat_v0(s, group, gen2, member) == 27  # REBALANCE_IN_PROGRESS
    err, gen3, _, _, _ = join_v1(s, group, member, b"\x00\x00")
    assert err == 0 and gen3 == gen2 + 1
    sync_v1(s, group, member, gen3, [(member, b"LAST")])
    assert read_sync(s) == (0, b"LAST")
    s.close()


def commit_one_v2(s, group, gen, member, topic):
    """OffsetCommit v2 of offset 5 of topic's partition 0: its error."""
    body = (kproto.string(group) + kproto.i32(gen) + kproto.string(member) +
            kproto.i64(-1) + kproto.array([kproto.string(topic) + kproto.array(
                [kproto.i32(0) + kproto.i64(5) + kproto.string("")])]))
    r = kproto.Reader(kproto.roundtrip(s, API_OFFSET_COMMIT, 2, body))
    return r.array(lambda: (r.string(), r.array(lambda: (r.i32(), r.i16()))))[0][1][0][1]


def test_idle_unloaded_group_keeps_generation(broker_factory):
    """A group without members and requests is unloaded after 60 s
    (SLUICE_GROUP_IDLE_MS shortens it here) and its lease released; when
    it is asked for again it is loaded from its stored record, as after a
    takeover, and its generations go on from where they were (Kafka keeps
    the GroupMetadata record of an empty group with offsets), not from 0."""
    b = broker_factory(GROUP_ARGS, env={"SLUICE_GROUP_IDLE_MS": "500"})
    bs = b.bootstrap
    topic = util.create_topic(bs, util.topic_name("idle"), 1)
    group = group_name()
    s = kproto.connect(bs, timeout=20)
    gens = []
    for _ in range(2):
        err, gen, _, member, _ = join_v1(s, group, "", b"\x00\x00")
        assert err == 0
        gens.append(gen)
        sync_v1(s, group, member, gen, [(member, b"A")])
        assert read_sync(s) == (0, b"A")
        assert commit_one_v2(s, group, gen, member, topic) == 0
        body = kproto.string(group) + kproto.string(member)
        assert kproto.Reader(kproto.roundtrip(s, 13, 0, body)).i16() == 0  # LeaveGroup
        # Empty at gen + 1; unloaded once idle
        released = "group %s: released (idle)" % group
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with open(b.stderr, errors="replace") as f:
                if f.read().count(released) == len(gens):
                    break
            time.sleep(0.1)
        else:
            pytest.fail("the group was not unloaded when idle")
    # each join after the reload continues: 1, (leave: 2), 3
    assert gens == [1, 3], gens
    s.close()


def listed_groups(sock):
    """The group ids ListGroups v0 lists."""
    r = kproto.Reader(kproto.roundtrip(sock, 16, 0, b""))
    assert r.i16() == 0
    return [g for g, _ in r.array(lambda: (r.string(), r.string()))]


def check_empty_group_forgotten(b, state_rows):
    """An Empty group without offsets, once forgotten (after 10 minutes
    Empty; SLUICE_GROUP_EMPTY_FORGET_MS shortens it, SLUICE_GROUP_IDLE_MS
    lets an idle group go), is gone as in Kafka, whose offsets cleanup
    makes it Dead and writes a tombstone for its GroupMetadata record:
    ListGroups does not list it, DescribeGroups says Dead, its stored
    record is deleted (state_rows(group): how many the store holds), and
    so after a restart too; a JoinGroup then starts a new group at
    generation 1. (The record stayed: after a restart the group came back
    Empty from it and generations went on.)"""
    group = group_name()
    s = kproto.connect(b.bootstrap, timeout=30)
    err, gen, _, member, _ = join_v1(s, group, "", b"\x00\x00")
    assert err == 0 and gen == 1
    sync_v1(s, group, member, gen, [(member, b"A")])
    assert read_sync(s) == (0, b"A")
    body = kproto.string(group) + kproto.string(member)
    assert kproto.Reader(kproto.roundtrip(s, 13, 0, body)).i16() == 0  # LeaveGroup
    assert group in listed_groups(s)  # Empty, listed as Kafka lists it
    assert describe_group_v0(s, group) == (0, "Empty", 0)
    deadline = time.monotonic() + 30
    while group in listed_groups(s) or state_rows(group):
        assert time.monotonic() < deadline, "the Empty group was not forgotten"
        time.sleep(0.2)
    assert describe_group_v0(s, group) == (0, "Dead", 0)
    s.close()
    b.restart(clean=False)
    s = kproto.connect(b.bootstrap, timeout=30)
    deadline = time.monotonic() + 30
    while True:  # in a cluster the restarted agent takes the lease first
        got = describe_group_v0(s, group)
        if got[0] not in (14, 15, 16) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert got == (0, "Dead", 0)
    assert group not in listed_groups(s)
    err, gen, _, _, _ = join_v1(s, group, "", b"\x00\x00")
    assert err == 0 and gen == 1
    s.close()


def test_empty_group_without_offsets_forgotten(broker_factory):
    import sqlite3
    b = broker_factory(GROUP_ARGS, env={"SLUICE_GROUP_IDLE_MS": "500",
                                        "SLUICE_GROUP_EMPTY_FORGET_MS": "1500"})

    def state_rows(group):
        db = sqlite3.connect(os.path.join(b.data_dir, "meta.db"), timeout=10)
        try:
            return db.execute("SELECT count(*) FROM group_state WHERE group_id = ?",
                              (group,)).fetchone()[0]
        finally:
            db.close()
    check_empty_group_forgotten(b, state_rows)


def send_join_v5(sock, group, member_id, instance, metadata, correlation_id=9):
    """JoinGroup v5 (group.instance.id), sent: answer with read_join_v5."""
    body = (kproto.string(group) + kproto.i32(SESSION_MS) + kproto.i32(10000) +
            kproto.string(member_id) + kproto.string(instance) +
            kproto.string("consumer") +
            kproto.i32(1) + kproto.string("range") + kproto.bytes_(metadata))
    sock.sendall(kproto.request(API_JOIN_GROUP, 5, correlation_id, body))


def read_join_v5(sock):
    """JoinGroup v5's answer: (error, generation, leader, member_id)."""
    _, body = kproto.recv_response(sock)
    r = kproto.Reader(body)
    r.i32()  # throttle_time_ms
    err, gen = r.i16(), r.i32()
    _proto, leader, member = r.string(), r.string(), r.string()
    return err, gen, leader, member


def heartbeat_v3(sock, group, gen_id, member_id, instance):
    body = (kproto.string(group) + kproto.i32(gen_id) + kproto.string(member_id) +
            kproto.string(instance))
    r = kproto.Reader(kproto.roundtrip(sock, 12, 3, body))
    r.i32()  # throttle_time_ms
    return r.i16()


def test_static_member_id_stored_before_join_answer(broker_factory):
    """A static member (group.instance.id) rejoining a Stable group with no
    member id gets a new id without a rebalance; Kafka answers that
    JoinGroup only once the group with the new id is durable
    (updateStaticMemberAndRebalance answers from storeGroup's callback).
    With the metadata store's write lock held by another process the
    JoinGroup waits (on main it was answered before the write); once
    answered, a kill -9 at once keeps the new id (heartbeats in the same
    generation) and the old one fenced. A write that fails (the lock held
    beyond the store's 5 s busy timeout) answers COORDINATOR_NOT_AVAILABLE
    with no member id and puts the previous id back."""
    import sqlite3
    b = broker_factory(GROUP_ARGS)
    bs = b.bootstrap
    group, inst = group_name(), "inst-a"
    s = kproto.connect(bs, timeout=20)
    send_join_v5(s, group, "", inst, b"\x00\x00")
    err, gen, leader, old = read_join_v5(s)
    assert err == 0 and gen == 1 and leader == old
    sync_v1(s, group, old, gen, [(old, b"MINE")])
    assert read_sync(s) == (0, b"MINE")

    db = sqlite3.connect(os.path.join(b.data_dir, "meta.db"), timeout=10,
                         isolation_level=None)
    s2 = kproto.connect(bs, timeout=20)
    db.execute("BEGIN IMMEDIATE")  # the write lock: the agent's writes wait
    try:
        send_join_v5(s2, group, "", inst, b"\x00\x00")
        assert not answered_within(s2, 1.5), \
            "static JoinGroup answered while its new member id could not be stored"
    finally:
        db.execute("ROLLBACK")
    err, gen_b, leader, new = read_join_v5(s2)
    # no rebalance; v5: the old leader id, so it does not assign again
    assert (err, gen_b, leader) == (0, gen, old) and new not in ("", old)
    b.restart(clean=False)  # kill -9 right after the answer
    s.close()
    s2.close()
    s = kproto.connect(bs, timeout=20)
    # a heartbeat while the group loads is answered 0 (as Kafka's): wait
    # for the loaded group to fence the old id
    deadline = time.monotonic() + 15
    while (err := heartbeat_v3(s, group, gen, old, inst)) == 0 and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    assert err == 82, err  # FENCED_INSTANCE_ID
    assert heartbeat_v3(s, group, gen, new, inst) == 0  # not UNKNOWN_MEMBER_ID

    db.execute("BEGIN IMMEDIATE")
    try:
        send_join_v5(s, group, "", inst, b"\x00\x00")
        started = time.monotonic()
        err, gen_c, leader, member = read_join_v5(s)
        assert (err, member) == (15, ""), (err, member)  # COORDINATOR_NOT_AVAILABLE
        assert time.monotonic() - started > 3  # after the store gave up
    finally:
        db.execute("ROLLBACK")
        db.close()
    # reverted: the id it had is still the member, in the same generation
    assert heartbeat_v3(s, group, gen, new, inst) == 0
    sync_v1(s, group, new, gen, [])
    assert read_sync(s) == (0, b"MINE")
    s.close()
