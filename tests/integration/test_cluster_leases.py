"""test_cluster_leases.py — fenced leases across three agents on one
PostgreSQL and one file store (the fixtures of cluster.py).

Checked: a consumer group spread over three agents keeps consuming when
the agent coordinating it is killed with -9: another agent takes the
group's lease over (a higher epoch, logged), every message is consumed
at least once, and the offsets committed before the kill are still
there (a new consumer of the group starts from them). The retention
sweep runs on one agent only (the holder of job/retention: it alone
moves log starts), and when that agent is killed another one takes the
lease and trims what is produced next.
"""
import re
import threading
import time

import pytest
from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import NewTopic

import util
from cluster import (cluster, metadata, pg, start_agents,  # noqa: F401 (fixtures)
                     three_agents, topic_everywhere, wait_for, wait_topic_on)


def log_text(agent):
    """Everything this agent logged since its latest start."""
    with open(agent.stderr, "rb") as f:
        return f.read().decode("utf-8", "replace")


def lease_epochs(agent, what):
    """Epochs at which the agent's log says it took `what`."""
    if what.startswith("group/"):
        pat = r"group %s: coordinated here at lease epoch (\d+)" % re.escape(what[6:])
    else:
        pat = r"lease %s: held at epoch (\d+)" % re.escape(what)
    return [int(e) for e in re.findall(pat, log_text(agent))]


def holders(agents, what):
    return [a for a in agents if a.running() and lease_epochs(a, what)]


def test_group_coordinator_killed(cluster):
    three_agents(cluster)
    a = cluster[0]
    parts = 6
    topic = topic_everywhere(cluster, "lg", parts)
    msgs = util.make_messages(6000)
    util.ck_produce(a.bootstrap, topic, msgs)
    total = len(msgs)

    group = "lease-it-group"
    bootstrap = ",".join(x.bootstrap for x in cluster)
    seen = set()
    committed_before = {}
    lock = threading.Lock()
    stop = threading.Event()
    errors = []

    def member(i):
        c = util.consumer(bootstrap, **{
            "group.id": group, "auto.offset.reset": "earliest",
            "session.timeout.ms": 10000, "heartbeat.interval.ms": 500,
            "max.poll.interval.ms": 60000, "client.id": "member-%d" % i,
            "topic.metadata.refresh.interval.ms": 1000})
        try:
            c.subscribe([topic])
            dirty = False  # consumed past the last commit that succeeded
            while not stop.is_set():
                batch = c.consume(200, 0.2)
                if batch:
                    with lock:
                        for m in batch:
                            if m.error() is None:
                                seen.add((m.partition(), m.offset()))
                    dirty = True
                    # Slow enough that the kill lands half-way.
                    time.sleep(0.05)
                if not dirty:
                    continue
                try:
                    c.commit(asynchronous=False)
                    dirty = False
                except KafkaException:
                    pass  # the coordinator moving: committed again next round
        except Exception as e:  # noqa: BLE001 — reported by the test
            errors.append(e)
        finally:
            c.close()

    def committed_offsets(bootstrap):
        probe = util.consumer(bootstrap, **{"group.id": group})
        try:
            return {tp.partition: tp.offset for tp in probe.committed(
                [TopicPartition(topic, p) for p in range(parts)], timeout=10)}
        finally:
            probe.close()

    threads = [threading.Thread(target=member, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    try:
        wait_for("a third consumed", lambda: len(seen) >= total // 3, 60)
        coord = holders(cluster, "group/" + group)
        assert len(coord) == 1, "one agent coordinates the group: %s" % coord
        coord = coord[0]
        first_epoch = max(lease_epochs(coord, "group/" + group))
        # What the group committed so far, as the store has it.
        committed_before.update(committed_offsets(bootstrap))
        assert any(o > 0 for o in committed_before.values()), committed_before
        coord.kill9()
        t_kill = time.monotonic()
        others = [x for x in cluster if x is not coord]
        wait_for("another agent takes the group over",
                 lambda: holders(others, "group/" + group), 30)
        took = time.monotonic() - t_kill
        print("group taken over %.1f s after the kill" % took)
        new = holders(others, "group/" + group)
        assert len(new) == 1
        assert max(lease_epochs(new[0], "group/" + group)) > first_epoch
        wait_for("every message consumed", lambda: len(seen) >= total, 90)
        # The members commit until a commit succeeds: wait for the last.
        survivors = ",".join(x.bootstrap for x in others)

        def all_committed():
            try:
                return sum(committed_offsets(survivors).values()) == total
            except KafkaException:
                return False  # the coordinator still moving
        wait_for("the group commits every message", all_committed, 30)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, errors
    want = {(p, o) for p, hw in enumerate(
        util.high_watermarks(others[0].bootstrap, topic, parts))
        for o in range(hw)}
    assert want <= seen and len(want) == total

    # The offsets committed before the kill survived it, and those
    # committed after it are there too (never below the earlier ones).
    after = committed_offsets(",".join(x.bootstrap for x in others))
    for p, o in committed_before.items():
        assert after[p] >= o, (p, o, after[p])
    assert sum(after.values()) == total, after


def test_retention_one_agent(cluster_retention):
    agents = cluster_retention
    three_agents(agents)
    a = agents[0]
    topic = util.topic_name("lr")
    parts = 3
    util.admin(a.bootstrap).create_topics([NewTopic(
        topic, parts, 1, config={"retention.ms": "1000"})])[topic].result(15)
    wait_topic_on(agents, topic)

    def log_starts(bootstrap):
        c = util.consumer(bootstrap)
        try:
            return [c.get_watermark_offsets(TopicPartition(topic, p),
                                            timeout=10, cached=False)[0]
                    for p in range(parts)]
        finally:
            c.close()

    # Records an hour old: retention.ms 1000 expires them at once.
    util.ck_produce(a.bootstrap, topic, util.make_messages(300))
    wait_for("retention trims every partition",
             lambda: all(s > 0 for s in log_starts(a.bootstrap)), 20)
    holder = holders(agents, "job/retention")
    assert len(holder) == 1, "one agent holds job/retention"
    holder = holder[0]
    # The sweep logs once it has trimmed every partition, which can be
    # just after the watermarks above already show the trims.
    swept = "retention: the log start of"
    wait_for("the holder logs its sweep",
             lambda: swept in log_text(holder), 5)
    trimmed = [x for x in agents if swept in log_text(x)]
    assert trimmed == [holder], "only the holder sweeps: %s" % trimmed

    holder.kill9()
    others = [x for x in agents if x is not holder]
    wait_for("another agent takes job/retention",
             lambda: holders(others, "job/retention"), 15)
    # librdkafka's watermark query waits for a dead leader past its
    # timeout: ask once no agent names the dead one any more.
    wait_for("the dead agent leaves Metadata",
             lambda: all(len(metadata(x)[0]) == 2 for x in others), 10)
    before = log_starts(others[0].bootstrap)
    util.ck_produce(others[0].bootstrap, topic, util.make_messages(300, seed=2))
    wait_for("the new holder trims what came next",
             lambda: all(s > b for s, b in zip(log_starts(others[0].bootstrap),
                                               before)), 20)
    new = holders(others, "job/retention")
    assert len(new) == 1
    wait_for("the new holder logs its sweep",
             lambda: swept in log_text(new[0]), 5)
    trimmed = [x for x in others if swept in log_text(x)]
    assert trimmed == new, "only the new holder sweeps: %s" % trimmed


@pytest.fixture
def cluster_retention(pg, tmp_path):  # noqa: F811
    """Three agents whose retention sweep runs every 200 ms."""
    yield from start_agents(pg, tmp_path, ["--retention-check-interval-ms", "200"])
