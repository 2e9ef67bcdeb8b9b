"""DescribeProducers v0 (issue 14), what kafka-transactions.sh
describe-producers and Admin.describeProducers send, against Kafka 3.9's
KafkaApis.handleDescribeProducersRequest: each partition's idempotent and
transactional producers (id, epoch, last sequence, last timestamp,
coordinator epoch, open transaction's first offset) from the metadata
store, so a restarted agent answers the same; Kafka's errors and messages
for an invalid, unknown or unauthorized topic and an unknown partition.
Sent raw (kproto): neither Debian's confluent-kafka 1.7, kafka-python nor
kafkajs has the call."""
import time

from confluent_kafka import Producer
from kafka.admin import ACLOperation, ResourceType

import kproto
import util
from test_acls import acl, acl_broker, add_acls
from test_idempotence import init_producer_id_v0
from test_txn_wire import ONGOING, PREPARE_COMMIT, driver, txn_batch  # noqa: F401 (fixture)

API_DESCRIBE_PRODUCERS = 61
UNKNOWN_TOPIC_OR_PARTITION, INVALID_TOPIC, TOPIC_AUTHORIZATION_FAILED = 3, 17, 29
NO_TOPIC_MSG = "This server does not host this topic-partition."


def describe_producers(sock, topic_parts, cid=61):
    """{(topic, partition): (error, message, [(producer id, epoch, last
    sequence, last timestamp, coordinator epoch, txn start offset)])}."""
    body = kproto.compact_array(
        kproto.compact_string(t) + kproto.compact_array(kproto.i32(p) for p in parts) +
        kproto.NO_TAGS for t, parts in topic_parts.items()) + kproto.NO_TAGS
    sock.sendall(kproto.request_v2(API_DESCRIBE_PRODUCERS, 0, cid, body))
    got, data = kproto.recv_response(sock)
    assert got == cid
    r = kproto.FlexReader(data)
    r.tags()  # response header v1
    r.i32()  # throttle
    out = {}

    def producer():
        p = (r.i64(), r.i32(), r.i32(), r.i64(), r.i32(), r.i64())
        r.tags()
        return p

    def partition(name):
        p, err, msg = r.i32(), r.i16(), r.cstring()
        out[(name, p)] = (err, msg, r.carray(producer))
        r.tags()

    def topic():
        name = r.cstring()
        r.carray(lambda: partition(name))
        r.tags()

    r.carray(topic)
    r.tags()
    assert r.done(), "trailing bytes in DescribeProducers response"
    return out


def test_advertised(broker):
    s = kproto.connect(broker.bootstrap)
    err, apis, _ = kproto.api_versions_v0(s)
    s.close()
    assert err == 0 and apis[API_DESCRIBE_PRODUCERS] == (0, 0)


def test_idempotent_producers_and_errors(broker_factory):
    """librdkafka's idempotent producer sends 7 one-record batches (last
    sequence 6), a raw producer 3 batches of 2 records (last sequence 5),
    both at epoch 0 without a transaction; the other partition has none.
    The answer is the store's: the same after a restart."""
    b = broker_factory()
    topic = util.create_topic(b.bootstrap, util.topic_name("dp"), 2)
    t0 = int(time.time() * 1000)
    p = Producer({"bootstrap.servers": b.bootstrap, "enable.idempotence": True,
                  "linger.ms": 0})
    for i in range(7):
        p.produce(topic, value=b"v%d" % i, partition=0)
        assert p.flush(15) == 0
    s = kproto.connect(b.bootstrap)
    err, raw_pid, epoch = init_producer_id_v0(s)
    assert err == 0 and epoch == 0
    for seq in (0, 2, 4):
        batch = kproto.record_batch([(b"k", b"a", []), (b"k", b"b", [])], producer_id=raw_pid,
                                    producer_epoch=0, base_sequence=seq)
        assert kproto.produce_v3(s, {topic: {0: batch}})[(topic, 0)][0] == 0
    t1 = int(time.time() * 1000)
    asked = {topic: [0, 1, 2], "no-such-" + topic: [0], "bad name!": [0]}
    got = describe_producers(s, asked)
    s.close()
    err, msg, producers = got[(topic, 0)]
    assert (err, msg, len(producers)) == (0, None, 2), got
    ck = [x for x in producers if x[0] != raw_pid]
    raw = [x for x in producers if x[0] == raw_pid]
    assert len(ck) == 1 and len(raw) == 1, producers
    assert [x[0] for x in producers] == sorted(x[0] for x in producers)
    assert ck[0][1:3] + ck[0][4:] == (0, 6, -1, -1), ck
    assert raw[0][1:3] + raw[0][4:] == (0, 5, -1, -1), raw
    for x in producers:
        assert t0 - 1000 <= x[3] <= t1 + 1000, (x, t0, t1)
    assert got[(topic, 1)] == (0, None, [])
    assert got[(topic, 2)] == (UNKNOWN_TOPIC_OR_PARTITION, None, [])
    assert got[("no-such-" + topic, 0)] == (UNKNOWN_TOPIC_OR_PARTITION, NO_TOPIC_MSG, [])
    assert got[("bad name!", 0)][0] == INVALID_TOPIC and got[("bad name!", 0)][2] == []
    b.stop()
    b.start()
    s = kproto.connect(b.bootstrap)
    again = describe_producers(s, asked)
    s.close()
    assert again == got


def test_open_transaction_start_offset(driver):  # noqa: F811
    """A transactional producer's open transaction shows its first offset
    in the partition (the LSO's source); once its COMMIT marker is written
    the producer is still listed, with no open transaction and the
    marker's coordinator epoch (-1 before it), as Kafka's
    ProducerStateEntry."""
    topic = util.create_topic(driver.bootstrap, util.topic_name("dpt"), 1)
    part = ["%s:0" % topic]
    pid = 7100
    s = kproto.connect(driver.bootstrap)
    kproto.produce_v3(s, {topic: {0: kproto.record_batch([(b"k", b"p0", [])])}})
    driver.persist("dp-open", pid, 3, ONGOING, 1, part)
    res = kproto.produce_v3(s, {topic: {0: txn_batch(pid, 3, 0, [b"t0", b"t1"])}},
                            transactional_id="dp-open")
    assert res[(topic, 0)] == (0, 1), res
    (err, _, producers), = describe_producers(s, {topic: [0]}).values()
    assert err == 0 and len(producers) == 1, producers
    assert producers[0][:3] + producers[0][4:] == (pid, 3, 1, -1, 1), producers
    driver.persist("dp-open", pid, 3, PREPARE_COMMIT, 1, part)
    assert driver.markers("dp-open", pid, 3, 1, True, part) == "done 0"
    (err, _, producers), = describe_producers(s, {topic: [0]}).values()
    s.close()
    assert err == 0 and [x[:3] + x[4:] for x in producers] == [(pid, 3, 1, 5, -1)], producers


def test_needs_topic_read(tmp_path_factory):
    """Kafka checks READ on the topic (not DESCRIBE), before whether it
    exists: a principal with DESCRIBE only is refused, with Kafka's
    message, also for a topic that does not exist; with READ it is
    answered."""
    b = acl_broker(tmp_path_factory, "dpacl", ("alice",))
    try:
        topic = util.create_topic(b.bootstrap, util.topic_name("dpa"), 1)
        util.ck_produce(b.bootstrap, topic, util.make_messages(2), partition=0,
                        **{"enable.idempotence": True})
        add_acls(b, acl("User:alice", ACLOperation.DESCRIBE, ResourceType.TOPIC, topic))
        time.sleep(0.6)  # past the agent's ACL poll
        from test_acls_matrix import login
        asked = {topic: [0], "no-such-" + topic: [0]}
        with login(b, "alice") as s:
            got = describe_producers(s, asked)
        refused = (TOPIC_AUTHORIZATION_FAILED, "Topic authorization failed.", [])
        assert got == {(topic, 0): refused, ("no-such-" + topic, 0): refused}, got
        add_acls(b, acl("User:alice", ACLOperation.READ, ResourceType.TOPIC, topic))
        time.sleep(0.6)
        with login(b, "alice") as s:
            got = describe_producers(s, asked)
        err, msg, producers = got[(topic, 0)]
        assert (err, msg, len(producers)) == (0, None, 1), got
        assert producers[0][1:3] == (0, 1), producers
        assert got[("no-such-" + topic, 0)] == (TOPIC_AUTHORIZATION_FAILED,
                                                "Topic authorization failed.", [])
    finally:
        b.teardown()
