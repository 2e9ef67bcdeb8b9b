"""test_compacted.py — compacted topics (cleanup.policy containing
"compact", issue 15) as a producer sees them: a batch holding a record
without a key is refused whole with INVALID_RECORD and Kafka 3.9's record
errors and message, the other partitions of the request are unaffected,
compressed batches are checked too, and changing cleanup.policy takes
effect for the next produce. Also the compaction configs' checks."""
import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import ConfigResource

import kproto
import util

INVALID_RECORD = 87
INVALID_CONFIG = 40


def keyless_message(topic, partition):
    return ("Compacted topic cannot accept message without key in topic "
            "partition %s-%d" % (topic, partition))


def set_policy(bootstrap, topic, policy):
    s = kproto.connect(bootstrap)
    try:
        err, msg = kproto.incremental_alter_configs_v0(
            s, topic, [("cleanup.policy", kproto.OP_SET, policy)])
    finally:
        s.close()
    assert err == 0, msg


def raw_produce(bootstrap, topic_parts):
    s = kproto.connect(bootstrap)
    try:
        return kproto.produce_v8(s, topic_parts)
    finally:
        s.close()


def test_record_errors_v8(broker):
    """One request, two partitions: the batch with keyless records (the
    2nd and 4th of five) is refused whole with one record error each and
    Kafka's message; the other partition's batch is written."""
    b = broker.bootstrap
    t = util.create_topic(b, util.topic_name("cmp"), 2,
                          config={"cleanup.policy": "compact"})
    bad = kproto.record_batch([(b"k0", b"v", ()), (None, b"v", ()),
                               (b"k2", b"v", ()), (None, None, ()),
                               (b"k4", b"v", ())])
    good = kproto.record_batch([(b"a", b"1", ()), (b"b", None, ())])
    got = raw_produce(b, {t: {0: bad, 1: good}})
    err, base, start, errs, msg = got[(t, 0)]
    m = keyless_message(t, 0)
    assert err == INVALID_RECORD and base == -1 and start == 0
    assert errs == [(1, m), (3, m)]
    assert msg == ("One or more records have been rejected due to 2 record "
                   "errors in total, and only showing the first three errors "
                   "at most: [RecordError(batchIndex=1, message='%s'), "
                   "RecordError(batchIndex=3, message='%s')]" % (m, m))
    assert got[(t, 1)][:4] == (0, 0, 0, [])
    assert util.high_watermarks(b, t, 2) == [0, 2]


def test_many_keyless_message_lists_three(broker):
    b = broker.bootstrap
    t = util.create_topic(b, util.topic_name("cmp"), 1,
                          config={"cleanup.policy": "compact,delete"})
    got = raw_produce(b, {t: {0: kproto.record_batch(
        [(None, b"v%d" % i, ()) for i in range(5)])}})
    err, _, _, errs, msg = got[(t, 0)]
    assert err == INVALID_RECORD
    assert [i for i, _ in errs] == [0, 1, 2, 3, 4]
    assert "due to 5 record errors in total" in msg
    assert msg.count("RecordError(") == 3, msg
    assert util.high_watermarks(b, t, 1) == [0]


@pytest.mark.parametrize("codec", ["none", "gzip", "zstd"])
def test_confluent_delivery_error(broker, codec):
    """librdkafka reports INVALID_RECORD to the delivery callback of every
    message of the refused batch, compressed or not; the keyed messages
    of the other partition are delivered."""
    b = broker.bootstrap
    t = util.create_topic(b, util.topic_name("cmp-" + codec), 2,
                          config={"cleanup.policy": "compact"})
    # One batch per partition: the topic's metadata is known before the
    # first produce (messages queued while it is unknown can be split over
    # two batches when it arrives mid-loop) and linger outlasts the loop.
    p = Producer({"bootstrap.servers": b, "linger.ms": 1000,
                  "compression.type": codec, "acks": "all",
                  "retries": 0})
    p.list_topics(t, timeout=10)
    results = []

    def cb(err, m):
        results.append((m.partition(), m.key(), err))

    for i in range(20):
        p.produce(t, b"value %d " % i * 10, b"k%d" % i, partition=1,
                  on_delivery=cb)
    for i in range(10):
        p.produce(t, b"value %d " % i * 10, None if i == 5 else b"k%d" % i,
                  partition=0, on_delivery=cb)
    assert p.flush(30) == 0
    part0 = [r for r in results if r[0] == 0]
    part1 = [r for r in results if r[0] == 1]
    assert len(part0) == 10 and len(part1) == 20
    assert all(e is not None and e.code() == KafkaError.INVALID_RECORD
               for _, _, e in part0), part0
    assert all(e is None for _, _, e in part1), part1
    assert util.high_watermarks(b, t, 2) == [0, 20]


def test_kafka_python_keyless(broker):
    from kafka import KafkaProducer
    from kafka.errors import KafkaError as KpError
    b = broker.bootstrap
    t = util.create_topic(b, util.topic_name("cmp-kp"), 1,
                          config={"cleanup.policy": "compact"})
    prod = KafkaProducer(bootstrap_servers=b, acks="all", retries=0)
    try:
        md = prod.send(t, key=b"k", value=b"v").get(15)
        assert md.offset == 0
        with pytest.raises(KpError) as e:
            prod.send(t, value=b"no key").get(15)
        # kafka-python 2.0.2 has no class for code 87 (InvalidRecord):
        # it fails the send with UnknownError, not retried.
        assert type(e.value).__name__ in ("UnknownError",
                                          "InvalidRecordError"), e.value
        md = prod.send(t, key=b"k", value=b"v2").get(15)
        assert md.offset == 1
    finally:
        prod.close(5)
    assert util.high_watermarks(b, t, 1) == [2]


def test_policy_change_takes_effect(broker):
    """A delete topic takes keyless records; altered to compact, the next
    produce refuses them; back to delete, they are taken again."""
    b = broker.bootstrap
    t = util.create_topic(b, util.topic_name("cmp-alter"), 1)

    def one_keyless():
        return raw_produce(b, {t: {0: kproto.record_batch(
            [(None, b"v", ())])}})[(t, 0)][0]

    assert one_keyless() == 0
    set_policy(b, t, "compact")
    assert one_keyless() == INVALID_RECORD
    set_policy(b, t, "delete,compact")
    assert one_keyless() == INVALID_RECORD
    set_policy(b, t, "delete")
    assert one_keyless() == 0
    assert util.high_watermarks(b, t, 1) == [2]


def config_error(bootstrap, topic, config):
    s = kproto.connect(bootstrap)
    try:
        return kproto.incremental_alter_configs_v0(
            s, topic, [(k, kproto.OP_SET, v) for k, v in config.items()])
    finally:
        s.close()


@pytest.mark.parametrize("name,value,message", [
    ("min.cleanable.dirty.ratio", "1.5",
     "Invalid value 1.5 for configuration min.cleanable.dirty.ratio: "
     "Value must be no more than 1"),
    ("min.cleanable.dirty.ratio", "-0.25",
     "Invalid value -0.25 for configuration min.cleanable.dirty.ratio: "
     "Value must be at least 0"),
    ("min.cleanable.dirty.ratio", "half",
     "Invalid value half for configuration min.cleanable.dirty.ratio: "
     "Not a number of type DOUBLE"),
    ("min.compaction.lag.ms", "-1",
     "Invalid value -1 for configuration min.compaction.lag.ms: "
     "Value must be at least 0"),
    ("max.compaction.lag.ms", "0",
     "Invalid value 0 for configuration max.compaction.lag.ms: "
     "Value must be at least 1"),
    ("segment.ms", "0",
     "Invalid value 0 for configuration segment.ms: Value must be at least 1"),
    ("delete.retention.ms", "-5",
     "Invalid value -5 for configuration delete.retention.ms: "
     "Value must be at least 0"),
    ("delete.retention.ms", "1e3",
     "Invalid value 1e3 for configuration delete.retention.ms: "
     "Not a number of type LONG"),
])
def test_compaction_config_checks(broker, name, value, message):
    b = broker.bootstrap
    t = util.create_topic(b, util.topic_name("cmp-cfg"), 1)
    assert config_error(b, t, {name: value}) == (INVALID_CONFIG, message)
    # CreateTopics refuses the same value with the same message.
    fs = util.admin(b).create_topics(
        [util.NewTopic(util.topic_name("cmp-cfg"), num_partitions=1,
                       replication_factor=1, config={name: value})])
    with pytest.raises(KafkaException) as e:
        list(fs.values())[0].result(15)
    assert e.value.args[0].code() == KafkaError.INVALID_CONFIG
    assert e.value.args[0].str() == message


def test_compaction_lag_conflict(broker):
    """LogConfig.validateValues: min.compaction.lag.ms may not exceed
    max.compaction.lag.ms, whether both come in one request or one was
    set before."""
    b = broker.bootstrap
    t = util.create_topic(b, util.topic_name("cmp-lag"), 1,
                          config={"max.compaction.lag.ms": "60000"})
    want = ("conflict topic config setting min.compaction.lag.ms (120000) > "
            "max.compaction.lag.ms (60000)")
    assert config_error(b, t, {"min.compaction.lag.ms": "120000"}) == \
        (INVALID_CONFIG, want)
    assert config_error(b, t, {"min.compaction.lag.ms": "120000",
                               "max.compaction.lag.ms": "180000"})[0] == 0
    fs = util.admin(b).create_topics(
        [util.NewTopic(util.topic_name("cmp-lag"), num_partitions=1,
                       replication_factor=1,
                       config={"min.compaction.lag.ms": "120000",
                               "max.compaction.lag.ms": "60000"})])
    with pytest.raises(KafkaException) as e:
        list(fs.values())[0].result(15)
    assert e.value.args[0].str() == want


def test_compaction_configs_described(broker):
    """DescribeConfigs gives Kafka 3.9's defaults for the configs the
    cleaner honours."""
    b = broker.bootstrap
    t = util.create_topic(b, util.topic_name("cmp-desc"), 1,
                          config={"cleanup.policy": "compact",
                                  "min.cleanable.dirty.ratio": "0.1"})
    res = ConfigResource("topic", t)
    got = util.admin(b).describe_configs([res])[res].result(15)
    values = {k: (v.value, v.is_default) for k, v in got.items()}
    assert values["cleanup.policy"] == ("compact", False)
    assert values["min.cleanable.dirty.ratio"] == ("0.1", False)
    assert values["min.compaction.lag.ms"] == ("0", True)
    assert values["max.compaction.lag.ms"] == ("9223372036854775807", True)
    assert values["segment.ms"] == ("604800000", True)
    assert values["delete.retention.ms"] == ("86400000", True)


def test_compaction_check_interval_flag(broker_factory):
    """--compaction-check-interval-ms (Kafka's log.cleaner.backoff.ms):
    listed in --help, refused out of range, taken in range."""
    import subprocess
    from conftest import SLUICE_BIN
    out = subprocess.run([SLUICE_BIN, "serve", "--help"],
                         capture_output=True).stdout.decode()
    assert "--compaction-check-interval-ms" in out and "15000" in out
    r = subprocess.run([SLUICE_BIN, "serve", "--compaction-check-interval-ms",
                        "5"], capture_output=True)
    assert r.returncode == 2
    assert b"bad value for --compaction-check-interval-ms: 5" in r.stderr
    b = broker_factory(["--compaction-check-interval-ms", "100"])
    util.create_topic(b.bootstrap, util.topic_name("cmp-flag"), 1,
                      config={"cleanup.policy": "compact"})
