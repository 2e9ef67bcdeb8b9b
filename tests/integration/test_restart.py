"""test_restart.py — a clean SIGTERM stop exits 0, and topics, configs and
data survive the restart; producing continues at the old high watermark."""
from confluent_kafka import Producer
from confluent_kafka.admin import ConfigResource

import util

PARTS = 3


def topic_configs(bootstrap, topic):
    res = ConfigResource("topic", topic)
    fs = util.admin(bootstrap).describe_configs([res])
    return {k: v.value for k, v in fs[res].result(15).items()}


def test_sigterm_restart_keeps_everything(broker_factory):
    b = broker_factory()
    topic = util.create_topic(b.bootstrap, util.topic_name("rs"), PARTS,
                              config={"retention.ms": "3600000"})
    msgs = util.make_messages(3000, seed=31)
    util.ck_produce(b.bootstrap, topic, msgs)
    # An auto-created topic (librdkafka producer to an unknown topic).
    auto = util.topic_name("rs-auto")
    p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all"})
    p.produce(auto, b"auto-value", b"auto-key")
    assert p.flush(15) == 0
    before = util.consume_all(b.bootstrap, topic, PARTS)
    util.check_roundtrip(msgs, before)
    assert topic_configs(b.bootstrap, topic)["retention.ms"] == "3600000"

    b.stop()            # asserts exit status 0
    b.start()

    md = util.admin(b.bootstrap).list_topics(timeout=10)
    assert topic in md.topics and auto in md.topics, sorted(md.topics)
    assert len(md.topics[topic].partitions) == PARTS
    assert topic_configs(b.bootstrap, topic)["retention.ms"] == "3600000"
    after = util.consume_all(b.bootstrap, topic, PARTS)
    assert after == before, "data differs after a clean restart"
    a = util.consume_all(b.bootstrap, auto, 1)
    assert [(g.key, g.value) for g in a[0]] == [(b"auto-key", b"auto-value")]

    hw = [len(after[pp]) for pp in range(PARTS)]
    for pp in range(PARTS):
        r = util.ck_produce(b.bootstrap, topic,
                            [util.Msg(b"x", b"new-%d" % pp, None, None)],
                            partition=pp)
        assert r[0] == (pp, hw[pp])

    # A second clean stop also exits 0, with no client connected.
    b.stop()
