"""test_large.py — produce requests carrying batches for many partitions,
a 64-partition topic, and large (900 KB) messages round-trip; a fetch with a
small size limit still returns a first batch larger than the limit."""
import os

import util
import kproto


def test_many_partitions(broker):
    parts = 64
    topic = util.create_topic(broker.bootstrap, util.topic_name("mp"), parts)
    msgs = util.make_messages(20000, keys=5000, seed=51)
    # linger lets every produce request carry batches for many partitions.
    util.ck_produce(broker.bootstrap, topic, msgs, **{"linger.ms": 50})
    got = util.consume_all(broker.bootstrap, topic, parts, expect=len(msgs))
    used = util.check_roundtrip(msgs, got)
    assert len(set(used.values())) > parts // 2, \
        "keys spread over only %d partitions" % len(set(used.values()))


def test_raw_multi_partition_request(broker):
    topic = util.create_topic(broker.bootstrap, util.topic_name("rawmp"), 4)
    other = util.create_topic(broker.bootstrap, util.topic_name("rawmp2"), 1)
    s = kproto.connect(broker.bootstrap)
    for rnd in range(3):
        req = {topic: {p: kproto.record_batch(
            [(b"k%d" % p, b"r%d-p%d-%d" % (rnd, p, i), [])
             for i in range(p + 1)]) for p in range(4)},
            other: {0: kproto.record_batch([(None, b"o%d" % rnd, [])])}}
        res = kproto.produce_v3(s, req)
        for p in range(4):
            assert res[(topic, p)] == (0, rnd * (p + 1)), (p, res)
        assert res[(other, 0)] == (0, rnd)
    s.close()
    got = util.consume_all(broker.bootstrap, topic, 4)
    for p in range(4):
        assert [g.value for g in got[p]] == [
            b"r%d-p%d-%d" % (rnd, p, i) for rnd in range(3)
            for i in range(p + 1)]


def test_large_messages(broker):
    topic = util.create_topic(broker.bootstrap, util.topic_name("big"), 2)
    msgs = [util.Msg(b"big-%d" % (i % 4), os.urandom(900 * 1024),
                     [("i", b"%d" % i)], 1700000000000 + i)
            for i in range(24)]
    util.ck_produce(broker.bootstrap, topic, msgs, **{
        "linger.ms": 5, "message.max.bytes": 1000000})
    got = util.consume_all(broker.bootstrap, topic, 2, expect=len(msgs))
    util.check_roundtrip(msgs, got)
    # A per-partition fetch limit far below the message size: the broker
    # still returns the first batch (KIP-74), so the consumer progresses.
    got2 = util.consume_all(broker.bootstrap, topic, 2, expect=len(msgs),
                            **{"fetch.message.max.bytes": 1024,
                               "fetch.max.bytes": 1024 * 1024})
    assert got2 == got


def test_null_key_value_and_header(broker):
    """Null keys, null values (tombstones) and null header values survive;
    read with kafka-python, since confluent-kafka 1.7's consumer crashes on
    null header values (a client bug, not the broker's)."""
    from kafka import KafkaConsumer, TopicPartition
    topic = util.create_topic(broker.bootstrap, util.topic_name("nul"), 1)
    recs = [(None, b"no-key", []), (b"tomb", None, []),
            (b"h", b"v", [("null", None), ("empty", b""), ("x", b"y")]),
            (None, None, [("only", None)])]
    s = kproto.connect(broker.bootstrap)
    res = kproto.produce_v3(s, {topic: {0: kproto.record_batch(
        recs, base_ts=1700000000000)}})
    s.close()
    assert res[(topic, 0)] == (0, 0), res
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                      enable_auto_commit=False, fetch_max_wait_ms=100)
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    got = []
    for _ in range(50):
        for _, rs in c.poll(timeout_ms=200).items():
            got += [(r.offset, r.key, r.value, list(r.headers), r.timestamp)
                    for r in rs]
        if len(got) >= len(recs):
            break
    c.close()
    assert got == [(i, k, v, h, 1700000000000)
                   for i, (k, v, h) in enumerate(recs)]
