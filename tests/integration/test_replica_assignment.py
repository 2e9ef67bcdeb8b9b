"""test_replica_assignment.py — CreateTopics and CreatePartitions with
explicit replica assignments (issue 16), as admin clients see them.

The store replicates, so an assignment is recorded, not acted on: the
agents keep it with the topic and Metadata reports it as each partition's
replicas (in the order given), the live ones as its ISR and the others as
offline replicas, while the leader stays Sluice's placement choice.
confluent-kafka's list_topics and kafka-python's describe_topics show it,
after a restart too; CreatePartitions assignments are checked as Kafka's
controller checks them (one list per added partition, as many replicas as
partition 0 has). With two agents on PostgreSQL the other agent reports
the same assignment, and after kill -9 of one agent its id leaves the ISR
and joins the offline replicas while every partition keeps being served
(a partition whose only replica died reports its leader as ISR).
"""
import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewPartitions, NewTopic
from kafka.admin import KafkaAdminClient
from kafka.admin import NewPartitions as KNewPartitions
from kafka.admin import NewTopic as KNewTopic
from kafka.errors import InvalidReplicationAssignmentError

import util
from cluster import pg, start_agents, wait_for  # noqa: F401 (pg: fixture)


def ck_partitions(bootstrap, topic):
    """{partition: (leader, replicas, isrs)} from confluent-kafka's
    metadata."""
    md = util.admin(bootstrap).list_topics(topic=topic, timeout=10)
    t = md.topics[topic]
    assert t.error is None, t.error
    return {p: (pm.leader, list(pm.replicas), list(pm.isrs))
            for p, pm in t.partitions.items()}


def replicas_seen(bootstrap, topic):
    """{partition: replicas}, or None while this agent does not know the
    topic yet (another agent made it: the next catalog poll brings it)."""
    md = util.admin(bootstrap).list_topics(topic=topic, timeout=10)
    t = md.topics[topic]
    if t.error is not None:
        return None
    return {p: list(pm.replicas) for p, pm in t.partitions.items()}


def kp_partitions(bootstrap, topic):
    """{partition: (leader, replicas, isr, offline)} from kafka-python's
    describe_topics."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    try:
        (d,) = admin.describe_topics([topic])
    finally:
        admin.close()
    assert d["error_code"] == 0, d
    return {p["partition"]: (p["leader"], p["replicas"], p["isr"], p["offline_replicas"])
            for p in d["partitions"]}


def create_error(bootstrap, call, name):
    try:
        call(util.admin(bootstrap))[name].result(15)
        return 0, None
    except KafkaException as e:
        return e.args[0].code(), e.args[0].str()


def test_assignment_stored_and_reported(broker):
    b = broker.bootstrap
    node = util.admin(b).list_topics(timeout=10).controller_id
    ck = util.topic_name("ra-ck")
    assert create_error(b, lambda a: a.create_topics(
        [NewTopic(ck, 3, replica_assignment=[[node]] * 3)]), ck) == (0, None)
    util.wait_topic(b, ck, 3)
    kp = util.topic_name("ra-kp")
    admin = KafkaAdminClient(bootstrap_servers=b, request_timeout_ms=15000)
    try:
        r = admin.create_topics([KNewTopic(kp, -1, -1, {0: [node], 1: [node]})])
        assert r.topic_errors == [(kp, 0, None)], r
        # Grown with an assignment: one list per new partition.
        admin.create_partitions({kp: KNewPartitions(4, [[node], [node]])})
        with pytest.raises(InvalidReplicationAssignmentError):
            admin.create_partitions({kp: KNewPartitions(6, [[node]])})
    finally:
        admin.close()
    util.wait_topic(b, kp, 4)
    for _ in range(2):
        assert ck_partitions(b, ck) == {p: (node, [node], [node]) for p in range(3)}
        assert kp_partitions(b, kp) == {p: (node, [node], [node], []) for p in range(4)}
        broker.restart()
    # Kafka's checks of CreatePartitions assignments, with its messages.
    code, msg = create_error(b, lambda a: a.create_partitions(
        [NewPartitions(ck, 5, replica_assignment=[[node]])]), ck)
    assert code == KafkaError.INVALID_REPLICA_ASSIGNMENT
    assert msg == ("Attempted to add 2 additional partition(s), but only 1 "
                   "assignment(s) were specified."), msg
    code, msg = create_error(b, lambda a: a.create_partitions(
        [NewPartitions(ck, 4, replica_assignment=[[12345]])]), ck)
    assert code == KafkaError.INVALID_REPLICA_ASSIGNMENT
    assert msg == ("The manual partition assignment includes broker 12345, but no "
                   "such broker is registered."), msg
    code, msg = create_error(b, lambda a: a.create_partitions(
        [NewPartitions(ck, 4, replica_assignment=[[node, node]])]), ck)
    assert code == KafkaError.INVALID_REPLICA_ASSIGNMENT
    assert msg == "The manual partition assignment includes the broker %d more than once." % node
    assert len(ck_partitions(b, ck)) == 3
    # Without an assignment the new partitions report the leader alone.
    assert create_error(b, lambda a: a.create_partitions([NewPartitions(ck, 4)]), ck) == (0, None)
    util.wait_topic(b, ck, 4)
    assert ck_partitions(b, ck)[3] == (node, [node], [node])
    msgs = util.make_messages(40, seed=3)
    util.ck_produce(b, kp, msgs)
    util.check_roundtrip(msgs, util.consume_all(b, kp, 4))


def test_two_agents_report_assignment(pg, tmp_path):  # noqa: F811
    gen = start_agents(pg, tmp_path, zones=("a", "b"))
    agents = next(gen)
    try:
        x, y = agents
        wait_for("both agents listed", lambda: len(util.admin(x.bootstrap).list_topics(
            timeout=10).brokers) == 2, 10)
        ids = sorted(util.admin(x.bootstrap).list_topics(timeout=10).brokers)
        i, j = ids
        two = util.topic_name("ra-two")
        assign = [[i, j], [j, i], [j, i]]
        assert create_error(x.bootstrap, lambda a: a.create_topics(
            [NewTopic(two, 3, replica_assignment=assign)]), two) == (0, None)
        # As many replicas as partition 0 has.
        code, msg = create_error(x.bootstrap, lambda a: a.create_partitions(
            [NewPartitions(two, 4, replica_assignment=[[i]])]), two)
        assert code == KafkaError.INVALID_REPLICA_ASSIGNMENT
        assert msg == ("The manual partition assignment includes a partition with 1 "
                       "replica(s), but this is not consistent with previous partitions, "
                       "which have 2 replica(s)."), msg
        wait_for("the other agent reports the assignment", lambda: replicas_seen(
            y.bootstrap, two) == dict(enumerate(assign)), 5)
        assert create_error(y.bootstrap, lambda a: a.create_partitions(
            [NewPartitions(two, 4, replica_assignment=[[i, j]])]), two) == (0, None)
        assign.append([i, j])
        lone = util.topic_name("ra-lone")
        admin = KafkaAdminClient(bootstrap_servers=y.bootstrap, request_timeout_ms=15000)
        try:
            r = admin.create_topics([KNewTopic(lone, -1, -1, {0: [j]})])
            assert r.topic_errors == [(lone, 0, None)], r
        finally:
            admin.close()
        for a in agents:  # the other agent learns it with its next poll
            wait_for("%s reports the assignment" % a, lambda: replicas_seen(
                a.bootstrap, two) == dict(enumerate(assign)), 5)
            wait_for("%s knows %s" % (a, lone), lambda: replicas_seen(a.bootstrap, lone), 5)
            got = kp_partitions(a.bootstrap, two)
            assert all(got[p][1:] == (assign[p], assign[p], []) for p in range(4)), got
            assert kp_partitions(a.bootstrap, lone)[0][1:] == ([j], [j], [])

        # Agent j dies: it stays a replica, leaves the ISR, is offline;
        # the partition whose only replica it was reports its leader.
        dead = x if ck_node(x) == j else y
        alive = y if dead is x else x
        dead.kill9()
        wait_for("the dead agent leaves Metadata", lambda: len(util.admin(
            alive.bootstrap).list_topics(timeout=10).brokers) == 1, 10)
        got = kp_partitions(alive.bootstrap, two)
        assert all(got[p][1:] == (assign[p], [i], [j]) for p in range(4)), got
        leader, replicas, isr, offline = kp_partitions(alive.bootstrap, lone)[0]
        assert (leader, replicas, isr, offline) == (i, [j], [i], [j])
        msgs = util.make_messages(40, seed=4)
        util.ck_produce(alive.bootstrap, lone, msgs)
        util.check_roundtrip(msgs, util.consume_all(alive.bootstrap, lone, 1))
    finally:
        gen.close()


def ck_node(agent):
    """The node id an agent gives itself (its Metadata's controller)."""
    return util.admin(agent.bootstrap).list_topics(timeout=10).controller_id
