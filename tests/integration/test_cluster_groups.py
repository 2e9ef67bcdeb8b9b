"""test_cluster_groups.py — consumer groups seen across three agents on
one PostgreSQL (the fixtures of cluster.py).

Checked: ListGroups on each agent lists the groups it coordinates, those
with only committed offsets included, as Kafka brokers do, also groups
whose offsets were committed through an agent that died since: after
kill -9 of the agent coordinating most of them, the survivors list every
group exactly once between them (kafka-python asks each broker; the
union is every group), and DescribeGroups answered by each group's new
coordinator describes it as Empty without an error (the
first request after the takeover waits for the group's load instead of
answering COORDINATOR_LOAD_IN_PROGRESS, which kafka-python raises).
A consumer committing after every batch consumes everything through a
kill -9 of its group's coordinator without a rebalance: the new
coordinator loads the stored membership (generation, members,
assignments), so it is never handed ILLEGAL_GENERATION,
UNKNOWN_MEMBER_ID or COORDINATOR_LOAD_IN_PROGRESS.
On PostgreSQL a generation is stored before its SyncGroup is answered:
with the group's row locked by another session the SyncGroup waits, a
kill -9 right after the answer keeps the generation, and a write held
past the lease's renewal or the rebalance timeout never answers success;
while one group's write is so held the agent's other leases are renewed
(its other groups stay coordinated there) and the write, once the row is
free, succeeds under the lease it was fenced by.
"""
import subprocess
import time
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from kafka import KafkaAdminClient
from kafka.structs import TopicPartition as KpTopicPartition

import kproto
import util
from cluster import (cluster, metadata, pg,  # noqa: F401 (fixtures)
                     start_agents, three_agents, topic_everywhere, wait_for)
from test_groups import (answered_within, check_empty_group_forgotten, commit_one_v2,
                         heartbeat_v0, join_v1, read_sync, sync_v1)


def list_groups_v0(agent):
    """ListGroups v0 sent to this agent: (error, [group ids])."""
    with kproto.connect(agent.bootstrap) as s:
        r = kproto.Reader(kproto.roundtrip(s, 16, 0, b""))
    err = r.i16()
    groups = r.array(lambda: (r.string(), r.string()))
    return err, groups


def listed_by(agents, groups):
    """{group: the agent listing it} for those of groups listed, each by
    one agent only."""
    where = {}
    for agent in agents:
        err, listed = list_groups_v0(agent)
        assert err == 0
        for gid, ptype in listed:
            if gid in groups:
                # Offsets only: "" while the coordinator that took the
                # commits holds it (Kafka's None protocol type),
                # "consumer" once reloaded from the store.
                assert ptype in ("", "consumer"), (gid, ptype)
                assert gid not in where, "%s listed by two agents" % gid
                where[gid] = agent
    return where


def test_groups_listed_and_described_after_coordinator_death(cluster):
    three_agents(cluster)
    a = cluster[0]
    topic = topic_everywhere(cluster, "grp", 3)
    uid = uuid.uuid4().hex[:6]
    groups = ["cg-%d-%s" % (i, uid) for i in range(12)]
    for i, g in enumerate(groups):
        c = Consumer({"bootstrap.servers": a.bootstrap, "group.id": g,
                      "enable.auto.commit": False})
        try:
            c.commit(offsets=[TopicPartition(topic, i % 3, i + 1)],
                     asynchronous=False)
        finally:
            c.close()

    # Each group is listed by exactly one agent, with only offsets stored.
    where = listed_by(cluster, groups)
    assert sorted(where) == sorted(groups)

    # Kill the agent coordinating the most groups: the survivors never
    # saw those groups' commits.
    victim = max(cluster, key=lambda x: sum(v is x for v in where.values()))
    moved = [g for g, v in where.items() if v is victim]
    assert moved
    victim.kill9()
    survivors = [x for x in cluster if x is not victim]
    for agent in survivors:
        wait_for("%s drops the killed agent" % agent,
                 lambda: len(metadata(agent)[0]) == 2, 6)

    seen = listed_by(survivors, groups)
    assert sorted(seen) == sorted(groups), "missing: %s" % (
        sorted(set(groups) - set(seen)))

    admin = KafkaAdminClient(bootstrap_servers=survivors[0].bootstrap,
                             client_id="it-groups", request_timeout_ms=20000)
    try:
        listed = {gid for gid, ptype in admin.list_consumer_groups()}
        assert set(groups) <= listed
        # The moved groups first: their new coordinators load them on
        # this first request.
        described = admin.describe_consumer_groups(moved + [
            g for g in groups if g not in moved])
        for d in described:
            assert d.state == "Empty", d
            assert d.protocol_type in ("", "consumer"), d
            assert not d.members, d
        assert sorted(d.group for d in described) == sorted(groups)
        committed = admin.list_consumer_group_offsets(moved[0])
        i = groups.index(moved[0])
        assert committed[KpTopicPartition(topic, i % 3)].offset == i + 1
    finally:
        admin.close()


def coordinating(agent, group):
    with open(agent.stderr, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    return ("group %s: coordinated here at lease epoch" % group) in text


def test_group_resumes_after_coordinator_kill_without_load_errors(cluster):
    """A consumer committing synchronously after each batch keeps going
    when its group's coordinator is killed with -9, consumes everything,
    and its final commit covers everything, in the generation it had: it
    is assigned once. What the application is handed is the dead agent's
    transport errors and a commit refused with NOT_COORDINATOR (or
    COORDINATOR_NOT_AVAILABLE) while the group's lease moves, as Kafka
    answers during a coordinator move; never ILLEGAL_GENERATION or
    UNKNOWN_MEMBER_ID (the new coordinator loaded the stored
    membership), nor COORDINATOR_LOAD_IN_PROGRESS (librdkafka retries
    that one by itself anyway: the parking is checked by the
    DescribeGroups above, which kafka-python does not retry)."""
    three_agents(cluster)
    a = cluster[0]
    parts = 3
    topic = topic_everywhere(cluster, "grk", parts)
    msgs = util.make_messages(3000)
    util.ck_produce(a.bootstrap, topic, msgs)
    total = len(msgs)
    group = "grk-" + uuid.uuid4().hex[:6]
    app_errors = []  # what the application is handed
    c = util.consumer(",".join(x.bootstrap for x in cluster), **{
        "group.id": group, "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 500, "topic.metadata.refresh.interval.ms": 1000,
        "error_cb": lambda e: app_errors.append(("error_cb", e.code(), str(e)))})
    seen = set()
    victim = None
    t_kill = None
    commits_after_kill = []
    assigns = [0]
    try:
        c.subscribe([topic], on_assign=lambda c, ps: assigns.__setitem__(0, assigns[0] + 1))
        deadline = time.monotonic() + 120
        while len(seen) < total and time.monotonic() < deadline:
            batch = c.consume(100, 0.2)
            for m in batch:
                if m.error() is not None:
                    app_errors.append(("consume", m.error().code(), str(m.error())))
                else:
                    seen.add((m.partition(), m.offset()))
            if batch:
                time.sleep(0.02)
                try:
                    c.commit(asynchronous=False)
                    if t_kill is not None:
                        commits_after_kill.append(time.monotonic() - t_kill)
                except KafkaException as e:
                    app_errors.append(("commit", e.args[0].code(), str(e)))
            if victim is None and len(seen) >= total // 3:
                owners = [x for x in cluster if coordinating(x, group)]
                assert len(owners) == 1, owners
                victim = owners[0]
                victim.kill9()
                t_kill = time.monotonic()
    finally:
        c.close()
    print("app errors:", app_errors)
    print("first commit %.1f s after the kill" % (commits_after_kill[0]
                                                  if commits_after_kill else -1))
    assert victim is not None
    assert len(seen) == total
    assert commits_after_kill, "no commit succeeded after the kill"
    # NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE: a commit that reaches a
    # survivor before the group's lease has moved to it is answered so, as
    # Kafka answers during a coordinator move.
    expected = (KafkaError._TRANSPORT, KafkaError.NOT_COORDINATOR,
                KafkaError.COORDINATOR_NOT_AVAILABLE)
    unexpected = [e for e in app_errors if e[1] not in expected]
    assert not unexpected, unexpected
    assert assigns[0] == 1, "assigned %d times: a rebalance" % assigns[0]
    survivors = [x for x in cluster if x is not victim]
    probe = util.consumer(",".join(x.bootstrap for x in survivors),
                          **{"group.id": group})
    try:
        after = probe.committed([TopicPartition(topic, p) for p in range(parts)],
                                timeout=15)
    finally:
        probe.close()
    assert sum(tp.offset for tp in after) == total, after


class RowLock:
    """A psql session holding a transaction open after sql (a group_state
    row inserted or locked): the agent's write of that row waits."""

    def __init__(self, url, sql):
        self.p = subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.p.stdin.write("BEGIN;\n%s;\n\\echo locked\n" % sql)
        self.p.stdin.flush()
        while self.p.stdout.readline().strip() != "locked":
            pass

    def release(self):
        self.p.stdin.write("ROLLBACK;\n")
        self.p.stdin.close()
        self.p.wait(30)


def group_row_lock(url, group):
    """The group's stored membership row locked by another session."""
    return RowLock(url, "SELECT 1 FROM group_state WHERE group_id = '%s' FOR UPDATE" % group)


def test_sync_answered_once_generation_stored(pg, tmp_path):
    agents = start_agents(pg, tmp_path, zones=("a",))
    (agent,) = next(agents)
    try:
        url = agent.extra_args[agent.extra_args.index("--meta") + 1]
        topic = util.create_topic(agent.bootstrap, util.topic_name("pgsync"), 1)
        group = "g-" + uuid.uuid4().hex[:10]
        s = kproto.connect(agent.bootstrap, timeout=30)
        err, gen, leader, member, _ = join_v1(s, group, "", b"\x00\x00")
        assert err == 0 and gen == 1 and leader == member
        # a row of the group not yet committed: the agent's upsert waits
        lock = RowLock(url, "INSERT INTO group_state VALUES ('%s', 0, NULL, NULL, NULL, "
                       "'\\x', 0)" % group)
        try:
            sync_v1(s, group, member, gen, [(member, b"MINE")])
            assert not answered_within(s, 1.5), \
                "SyncGroup answered while its generation could not be stored"
        finally:
            lock.release()
        assert read_sync(s) == (0, b"MINE")
        agent.restart(clean=False)  # kill -9 right after the answer
        s.close()
        s = kproto.connect(agent.bootstrap, timeout=30)
        deadline = time.monotonic() + 30
        while True:  # the restarted agent takes the group's lease first
            err = commit_one_v2(s, group, gen, member, topic)
            if err not in (14, 15, 16) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert err == 0, err  # the stored generation: not 22 or 25

        # A write held past the lease's renewal or the rebalance timeout.
        err, gen2, _, _, _ = join_v1(s, group, member, b"\x00\x00", rebalance_ms=3000)
        assert err == 0 and gen2 == gen + 1
        lock = group_row_lock(url, group)
        try:
            sync_v1(s, group, member, gen2, [(member, b"NEXT")])
            got = read_sync(s)
            # The 3 s rebalance deadline (REBALANCE_IN_PROGRESS); the
            # lease is renewed meanwhile (the blocked write's fence does
            # not hold its renewal), but a renewal late on a loaded
            # machine unloads the group (NOT_COORDINATOR). Never success.
            assert got[0] in (16, 27) and got[1] == b"", got
        finally:
            lock.release()
        err, gen3, _, _, _ = join_v1(s, group, member, b"\x00\x00")
        assert err == 0 and gen3 == gen2 + 1
        sync_v1(s, group, member, gen3, [(member, b"LAST")])
        assert read_sync(s) == (0, b"LAST")
        s.close()
    finally:
        agents.close()


def expired_leases(url):
    """Names of the leases whose expiry has passed in PostgreSQL's clock."""
    r = subprocess.run(["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c",
                        "SELECT name FROM leases WHERE holder >= 0 AND expires_ms <"
                        " (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
                        url], check=True, capture_output=True, text=True, timeout=60)
    return r.stdout.split()


def lone_member(s, group):
    """A member alone in group, Stable: (generation, member id)."""
    err, gen, _, member, _ = join_v1(s, group, "", b"\x00\x00")
    assert err == 0
    sync_v1(s, group, member, gen, [(member, b"A")])
    assert read_sync(s) == (0, b"A")
    return gen, member


def test_stuck_group_write_leaves_other_leases_held(pg, tmp_path):
    """One group's membership write stuck on a row lock another session
    holds does not stop the agent renewing its other leases: the fenced
    write holds its lease row FOR KEY SHARE, which the renewal's FOR NO
    KEY UPDATE does not wait for (it held it FOR SHARE, so the one lease
    sync of all the agent's leases waited, every lease lapsed after 3 s
    and every group this agent coordinated was unloaded). Past several
    lease lifetimes another group's member still heartbeats in its
    generation, no lease of the agent has expired in PostgreSQL, and the
    stuck write, once the row is free, still succeeds under its lease
    (its SyncGroup is answered with the assignment)."""
    agents = start_agents(pg, tmp_path, zones=("a",))
    (agent,) = next(agents)
    try:
        url = agent.extra_args[agent.extra_args.index("--meta") + 1]
        uid = uuid.uuid4().hex[:8]
        stuck, other = "stuck-" + uid, "other-" + uid
        s1 = kproto.connect(agent.bootstrap, timeout=30)
        s2 = kproto.connect(agent.bootstrap, timeout=30)
        ogen, omember = lone_member(s2, other)
        gen, member = lone_member(s1, stuck)
        # The next generation, with a rebalance timeout far beyond the test.
        err, gen2, _, _, _ = join_v1(s1, stuck, member, b"\x00\x00", rebalance_ms=120000)
        assert err == 0 and gen2 == gen + 1
        lock = group_row_lock(url, stuck)
        try:
            sync_v1(s1, stuck, member, gen2, [(member, b"S2")])
            t0 = time.monotonic()
            while time.monotonic() - t0 < 8:  # well past SL_LEASE_MS (3 s)
                time.sleep(1)
                assert heartbeat_v0(s2, other, ogen, omember) == 0
                assert expired_leases(url) == []
            assert not answered_within(s1, 0.1), "the stuck SyncGroup was answered"
        finally:
            lock.release()
        assert read_sync(s1) == (0, b"S2")
        with open(agent.stderr, errors="replace") as f:
            assert "lease lost" not in f.read()
        s1.close()
        s2.close()
    finally:
        agents.close()


def test_empty_group_without_offsets_forgotten_pg(pg, tmp_path, monkeypatch):
    """test_groups' check on PostgreSQL: the forgotten group's record is
    deleted there too (fenced by the group's lease), so it stays Dead after
    the restart."""
    monkeypatch.setenv("SLUICE_GROUP_IDLE_MS", "500")
    monkeypatch.setenv("SLUICE_GROUP_EMPTY_FORGET_MS", "1500")
    agents = start_agents(pg, tmp_path, zones=("a",))
    (agent,) = next(agents)
    try:
        url = agent.extra_args[agent.extra_args.index("--meta") + 1]

        def state_rows(group):
            r = subprocess.run(["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c",
                                "SELECT count(*) FROM group_state WHERE group_id = '%s'"
                                % group, url], check=True, capture_output=True, text=True,
                               timeout=60)
            return int(r.stdout.strip())
        check_empty_group_forgotten(agent, state_rows)
    finally:
        agents.close()
