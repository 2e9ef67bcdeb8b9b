"""test_compression.py — every record batch codec round-trips: gzip,
snappy, lz4 and zstd from confluent-kafka; gzip from kafka-python (read back
with kafka-python too) and from kafkajs."""
import time

import pytest

import util
from test_clients import js_message_file, run_kafkajs

N = 5000
PARTS = 3


def compressible(n, seed):
    # Text values with repetition so every codec really compresses.
    return util.make_messages(n, seed=seed, binary=False,
                              value_size=(50, 400))


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_confluent_kafka_codec(broker, codec):
    topic = util.create_topic(broker.bootstrap,
                              util.topic_name("ck-" + codec), PARTS)
    msgs = compressible(N, seed=len(codec))
    util.ck_produce(broker.bootstrap, topic, msgs, **{
        "compression.type": codec, "linger.ms": 20})
    got = util.consume_all(broker.bootstrap, topic, PARTS, expect=N)
    util.check_roundtrip(msgs, got)


def test_kafka_python_gzip(broker):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    topic = util.create_topic(broker.bootstrap, util.topic_name("kp-gzip"),
                              PARTS)
    msgs = compressible(N, seed=21)
    prod = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all",
                         compression_type="gzip", linger_ms=20,
                         batch_size=128 * 1024)
    for m in msgs:
        prod.send(topic, value=m.value, key=m.key, headers=m.headers,
                  timestamp_ms=m.timestamp)
    prod.flush(60)
    prod.close(10)
    got = util.consume_all(broker.bootstrap, topic, PARTS, expect=N)
    util.check_roundtrip(msgs, got)

    # And kafka-python's own consumer reads the gzip batches the same.
    cons = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                         enable_auto_commit=False,
                         auto_offset_reset="earliest",
                         fetch_max_bytes=50 * 1024 * 1024,
                         max_partition_fetch_bytes=8 * 1024 * 1024,
                         fetch_max_wait_ms=100)
    tps = [TopicPartition(topic, p) for p in range(PARTS)]
    cons.assign(tps)
    cons.seek_to_beginning(*tps)
    kp = {p: [] for p in range(PARTS)}
    n = 0
    deadline = time.monotonic() + 60
    while n < N and time.monotonic() < deadline:
        for tp, recs in cons.poll(timeout_ms=500, max_records=10000).items():
            for r in recs:
                kp[tp.partition].append(util.Got(
                    tp.partition, r.offset, r.key, r.value,
                    list(r.headers), r.timestamp))
                n += 1
    cons.close()
    assert n == N, "kafka-python consumed %d of %d" % (n, N)
    assert kp == got, "kafka-python and confluent-kafka read different data"


def test_kafkajs_gzip(broker, tmp_path):
    topic = util.create_topic(broker.bootstrap, util.topic_name("js-gzip"),
                              PARTS)
    msgs = compressible(N, seed=22)
    path = tmp_path / "msgs.jsonl"
    js_message_file(path, msgs)
    res = run_kafkajs(broker.bootstrap, topic, path, codec="gzip", chunk=1000)
    assert all(r["errorCode"] == 0 for r in res), res[:3]
    got = util.consume_all(broker.bootstrap, topic, PARTS, expect=N)
    util.check_roundtrip(msgs, got)
