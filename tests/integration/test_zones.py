"""test_zones.py — zones and placement with one agent (issue 12).

An agent started with --zone a is listed with rack "a" in Metadata to a
kafka-python client whose client.id names sluice_az=a, and leads every
partition and coordinates every group for a confluent-kafka client of
that zone, which produces and consumes through a group. A client naming
no zone, or an unknown one, gets byte for byte the same Metadata and
FindCoordinator answers (one agent: it leads everything whatever the
zone). An agent without --zone has a null rack and answers as before.
A malformed --zone stops sluice serve (status 2, a usage error). Several agents need the agent
registry (PostgreSQL); their placement is unit-tested in test_placement.
"""
import subprocess
import time

from confluent_kafka import Producer
from kafka.admin import KafkaAdminClient

import kproto
from conftest import SLUICE_BIN
from util import admin, consumer, create_topic, topic_name

API_FIND_COORDINATOR = 10


def raw(bootstrap, api_key, version, body, client_id):
    """One request with header v1 and this client.id; the response body."""
    with kproto.connect(bootstrap) as s:
        s.sendall(kproto.request(api_key, version, 5, body, client_id=client_id))
        cid, resp = kproto.recv_response(s)
        assert cid == 5
        return resp


def metadata_v1(bootstrap, client_id, topics):
    body = kproto.array([kproto.string(t) for t in topics])
    return raw(bootstrap, kproto.API_METADATA, 1, body, client_id)


def brokers_v1(resp):
    r = kproto.Reader(resp)
    return r.array(lambda: (r.i32(), r.string(), r.i32(), r.string())), r.i32()


def find_coordinator_v1(bootstrap, client_id, key, key_type):
    body = kproto.string(key) + kproto.i8(key_type)
    resp = raw(bootstrap, API_FIND_COORDINATOR, 1, body, client_id)
    r = kproto.Reader(resp)
    out = (r.i32(), r.i16(), r.string(), r.i32(), r.string(), r.i32())
    assert r.done()
    return resp, out[1:]


def kafka_python_brokers(bootstrap, client_id):
    a = KafkaAdminClient(bootstrap_servers=bootstrap, client_id=client_id)
    try:
        return a.describe_cluster()
    finally:
        a.close()


def test_zone_is_the_rack_and_the_agent_leads_its_zone(broker_factory):
    b = broker_factory(["--zone", "a", "--node-id", "7"])
    c = kafka_python_brokers(b.bootstrap, "it,sluice_az=a")
    assert c["brokers"] == [{"node_id": 7, "host": "127.0.0.1", "port": b.port,
                             "rack": "a"}]
    assert c["controller_id"] == 7

    topic = create_topic(b.bootstrap, topic_name("zone"), partitions=3)
    p = Producer({"bootstrap.servers": b.bootstrap,
                  "client.id": "producer-1,sluice_az=a"})
    for i in range(30):
        p.produce(topic, value=b"v%d" % i, partition=i % 3)
    assert p.flush(30) == 0
    md = p.list_topics(topic, timeout=10)
    assert [br.id for br in md.brokers.values()] == [7]
    for part in md.topics[topic].partitions.values():
        assert (part.leader, part.replicas, part.isrs) == (7, [7], [7])

    # A group of this zone: FindCoordinator names this agent, which
    # coordinates it.
    cons = consumer(b.bootstrap, **{"client.id": "sluice_az=a;consumer",
                                    "auto.offset.reset": "earliest"})
    try:
        cons.subscribe([topic])
        got = []
        deadline = time.monotonic() + 60
        while len(got) < 30 and time.monotonic() < deadline:
            m = cons.poll(0.5)
            if m is not None and not m.error():
                got.append(m.value())
        assert sorted(got) == sorted(b"v%d" % i for i in range(30))
        cons.commit(asynchronous=False)
    finally:
        cons.close()


def test_answers_do_not_depend_on_the_client_zone(broker_factory):
    b = broker_factory(["--zone", "a", "--node-id", "7"])
    topic = create_topic(b.bootstrap, topic_name("zone"), partitions=4)
    ids = ["plain", "x,sluice_az=a", "sluice_az=b", "sluice_az=", ""]
    md = [metadata_v1(b.bootstrap, i, [topic]) for i in ids]
    assert all(m == md[0] for m in md), "Metadata differs by client zone"
    brokers, controller = brokers_v1(md[0])
    assert brokers == [(7, "127.0.0.1", b.port, "a")] and controller == 7
    for key_type in (0, 1):
        answers = [find_coordinator_v1(b.bootstrap, i, "group-1", key_type)
                   for i in ids]
        assert all(a[0] == answers[0][0] for a in answers)
        assert answers[0][1] == (0, None, 7, "127.0.0.1", b.port)


def test_agent_without_zone_answers_as_before(broker):
    topic = create_topic(broker.bootstrap, topic_name("nozone"), partitions=2)
    a = metadata_v1(broker.bootstrap, "plain", [topic])
    assert a == metadata_v1(broker.bootstrap, "app,sluice_az=a", [topic])
    brokers, controller = brokers_v1(a)
    assert brokers == [(1, "127.0.0.1", broker.port, None)] and controller == 1
    c = kafka_python_brokers(broker.bootstrap, "sluice_az=a")
    assert [x["rack"] for x in c["brokers"]] == [None]
    _, ans = find_coordinator_v1(broker.bootstrap, "plain", "g", 0)
    assert ans == (0, None, 1, "127.0.0.1", broker.port)
    # librdkafka's view: leader 1, replicas and ISR [1].
    md = admin(broker.bootstrap).list_topics(topic, timeout=10)
    for part in md.topics[topic].partitions.values():
        assert (part.leader, part.replicas, part.isrs) == (1, [1], [1])


def test_malformed_zone_refused(tmp_path):
    for bad in ("a,b", "a b", "z" * 65):
        r = subprocess.run([SLUICE_BIN, "serve", "--data", str(tmp_path / "d"),
                            "--listen", "127.0.0.1:0", "--zone", bad],
                           capture_output=True, timeout=20)
        assert r.returncode == 2, r  # a usage error, as every bad flag
        assert b"bad value for --zone" in r.stderr
