"""test_list_offsets.py — ListOffsets: earliest, latest and by timestamp,
through confluent-kafka and kafka-python, for records in separate batches
and for records inside one batch (the answer is the exact first offset
whose timestamp is >= the target, not the start of its batch)."""
import pytest
from confluent_kafka import Producer, TopicPartition

import util

BASE_TS = 1700000000000
STEP = 1000
N = 10


@pytest.fixture(scope="module")
def ts_topic(broker):
    """Partition 0: ten messages, one batch each. Partition 1: the same
    ten timestamps in a single batch."""
    topic = util.create_topic(broker.bootstrap, util.topic_name("lo"), 2)
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0,
                  "acks": "all"})
    for i in range(N):
        p.produce(topic, b"v%d" % i, b"k", partition=0,
                  timestamp=BASE_TS + i * STEP)
        assert p.flush(10) == 0
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 500,
                  "acks": "all"})
    for i in range(N):
        p.produce(topic, b"v%d" % i, b"k", partition=1,
                  timestamp=BASE_TS + i * STEP)
    assert p.flush(10) == 0
    return topic


# (target timestamp, expected offset; -1 = no such record)
CASES = [
    (0, 0),
    (BASE_TS, 0),
    (BASE_TS + 1, 1),
    (BASE_TS + 2 * STEP + STEP // 2, 3),
    (BASE_TS + 9 * STEP, 9),
    (BASE_TS + 9 * STEP + 1, -1),
]


def test_confluent_watermarks(broker, ts_topic):
    c = util.consumer(broker.bootstrap)
    try:
        for p in (0, 1):
            lo, hi = c.get_watermark_offsets(TopicPartition(ts_topic, p),
                                             timeout=10)
            assert (lo, hi) == (0, N), "partition %d watermarks" % p
    finally:
        c.close()


@pytest.mark.parametrize("partition", [0, 1])
def test_confluent_offsets_for_times(broker, ts_topic, partition):
    c = util.consumer(broker.bootstrap)
    try:
        for ts, want in CASES:
            res = c.offsets_for_times(
                [TopicPartition(ts_topic, partition, ts)], timeout=10)
            assert res[0].error is None, res[0].error
            assert res[0].offset == want, \
                "partition %d, timestamp %d: offset %d, expected %d" % (
                    partition, ts, res[0].offset, want)
    finally:
        c.close()


def test_kafka_python_offsets(broker, ts_topic):
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                      enable_auto_commit=False)
    try:
        tps = [KTP(ts_topic, p) for p in (0, 1)]
        assert c.beginning_offsets(tps) == {tp: 0 for tp in tps}
        assert c.end_offsets(tps) == {tp: N for tp in tps}
        for ts, want in CASES:
            res = c.offsets_for_times({tp: ts for tp in tps})
            for tp in tps:
                if want < 0:
                    assert res[tp] is None, "%s ts %d: %r" % (tp, ts, res[tp])
                else:
                    assert res[tp] is not None and res[tp].offset == want, \
                        "%s ts %d: %r, expected offset %d" % (
                            tp, ts, res[tp], want)
                    assert res[tp].timestamp == BASE_TS + want * STEP
    finally:
        c.close()

