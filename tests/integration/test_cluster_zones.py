"""test_cluster_zones.py — zone-aware placement across agents (issue 12).

Three agents on one PostgreSQL and one file store (cluster.py): two in
zone a, one in zone b. Raw Metadata v1 requests, one per client.id,
check what each client is told: every live agent is listed as a broker
with its zone as the rack; a client naming sluice_az=b (anywhere in its
client.id) is led by the b agent for every partition, one naming
sluice_az=a by the a agents only (both of them, each partition by one),
a client naming no zone by all three. When the b agent is killed (-9) a
b client is led by the a agents (none of its zone is alive) within 5 s;
once restarted, the b agent leads it again. A confluent-kafka producer of
zone b writes through the b agent and its records read back.
"""
import pytest
from confluent_kafka import Producer

import kproto
import util
from cluster import (metadata, pg, start_agents, wait_for,  # noqa: F401 (fixtures)
                     wait_topic_on, zone_conf)

PARTITIONS = 24


@pytest.fixture
def zoned(pg, tmp_path):
    yield from start_agents(pg, tmp_path, zones=("a", "a", "b"))


def placement(agent, client_id, topic):
    """Metadata v1 asked of agent by this client.id: ({broker id: (port,
    rack)}, {partition: leader}), every partition's replicas and ISR
    checked to be its leader alone."""
    body = kproto.array([kproto.string(topic)])
    with kproto.connect(agent.bootstrap) as s:
        s.sendall(kproto.request(kproto.API_METADATA, 1, 9, body,
                                 client_id=client_id))
        cid, resp = kproto.recv_response(s)
    assert cid == 9
    r = kproto.Reader(resp)
    brokers = {}
    for bid, _host, port, rack in r.array(
            lambda: (r.i32(), r.string(), r.i32(), r.string())):
        brokers[bid] = (port, rack)
    r.i32()  # controller id
    leaders = {}

    def partition():
        err, pid, leader = r.i16(), r.i32(), r.i32()
        replicas, isr = r.array(r.i32), r.array(r.i32)
        assert err == 0, (pid, err)
        assert replicas == isr == [leader], (pid, replicas, isr)
        leaders[pid] = leader

    def topic_():
        err, name = r.i16(), r.string()
        r.i8()
        assert (err, name) == (0, topic)
        r.array(partition)
    r.array(topic_)
    assert r.done()
    return brokers, leaders


def ids_of(brokers, agents):
    ports = {a.port for a in agents}
    return {bid for bid, (port, _) in brokers.items() if port in ports}


def test_zone_leaders(zoned):
    a1, a2, b = zoned
    for agent in zoned:
        wait_for("%s lists three agents" % agent,
                 lambda: len(metadata(agent)[0]) == 3, 10)
    topic = util.create_topic(a1.bootstrap, util.topic_name("az"), PARTITIONS)
    wait_topic_on(zoned, topic)

    for agent in zoned:
        brokers, _ = placement(agent, "it", topic)
        # The rack is the zone, every agent listed whoever asks.
        assert sorted(brokers.values()) == sorted(
            [(a1.port, "a"), (a2.port, "a"), (b.port, "b")]), brokers
        a_ids, b_ids = ids_of(brokers, [a1, a2]), ids_of(brokers, [b])

        _, lead = placement(agent, "it,sluice_az=b", topic)
        assert set(lead.values()) == b_ids, lead
        assert len(lead) == PARTITIONS
        # The zone is found anywhere in client.id.
        _, lead = placement(agent, "sluice_az=a,producer-1", topic)
        assert set(lead.values()) == a_ids, lead  # 24 partitions: both lead
        _, lead = placement(agent, "producer-1", topic)
        assert set(lead.values()) == a_ids | b_ids, lead
        # A zone no agent is in: all of them, as with no zone.
        _, other = placement(agent, "it,sluice_az=z", topic)
        assert other == lead

    # A producer of zone b writes through b (the only leader it is told).
    msgs = util.make_messages(200, seed=3)
    util.ck_produce(a1.bootstrap, topic, msgs, **zone_conf("b"))
    p = Producer({"bootstrap.servers": a1.bootstrap, **zone_conf("b")})
    md = p.list_topics(topic, timeout=10)
    assert {pm.leader for pm in md.topics[topic].partitions.values()} == b_ids

    b.kill9()

    def b_client_led_by_a():
        # Each agent learns of the death from its own registry poll.
        for x in (a1, a2):
            brokers, lead = placement(x, "it,sluice_az=b", topic)
            if set(brokers) != a_ids or set(lead.values()) != a_ids:
                return False
        return True
    took = wait_for("b client led by the a agents", b_client_led_by_a, 5.0)
    print("b client moved to zone a after %.3f s" % took)
    for x in (a1, a2):
        assert set(placement(x, "it,sluice_az=a", topic)[1].values()) == a_ids

    b.start()
    took = wait_for("restarted b leads its zone again", lambda: all(
        set(placement(x, "it,sluice_az=b", topic)[1].values()) ==
        ids_of(placement(x, "it", topic)[0], [b]) != set()
        for x in zoned), 5.0)
    print("b back as its zone's leader after %.3f s" % took)
    util.check_roundtrip(msgs, util.consume_all(
        b.bootstrap, topic, PARTITIONS, **zone_conf("b")))
