"""util.py — shared helpers for the integration tests: topic creation,
deterministic message sets, consuming a whole topic back with
confluent-kafka (manual assignment, no consumer groups) and comparing what
was produced with what was consumed."""
import collections
import os
import random
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka import OFFSET_BEGINNING
from confluent_kafka.admin import AdminClient, NewTopic

from ports import free_port  # noqa: F401 (the tests' one way to a port)

Msg = collections.namedtuple("Msg", "key value headers timestamp")
Got = collections.namedtuple("Got", "partition offset key value headers "
                             "timestamp")


def topic_name(prefix="t"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


_admins = {}


def admin(bootstrap):
    """One AdminClient per bootstrap, kept alive: librdkafka fails the
    futures of a client that is garbage collected before they resolve."""
    a = _admins.get(bootstrap)
    if a is None:
        a = _admins[bootstrap] = AdminClient({"bootstrap.servers": bootstrap})
    return a


def forget_admin(bootstrap):
    """Drops the cached AdminClient of a broker that is gone for good."""
    _admins.pop(bootstrap, None)


def create_topic(bootstrap, name, partitions=1, config=None, timeout=15):
    fs = admin(bootstrap).create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1,
                  config=config or {})], operation_timeout=timeout)
    fs[name].result(timeout)
    wait_topic(bootstrap, name, partitions)
    return name


def wait_topic(bootstrap, name, partitions, timeout=10):
    a = admin(bootstrap)
    deadline = time.monotonic() + timeout
    while True:
        md = a.list_topics(name, timeout=5)
        t = md.topics.get(name)
        if t is not None and t.error is None and len(t.partitions) == partitions:
            return
        if time.monotonic() > deadline:
            raise AssertionError("topic %s not visible with %d partitions: %r"
                                 % (name, partitions, t))
        time.sleep(0.1)


def make_messages(n, keys=1000, seed=1, value_size=(1, 64), binary=True,
                  headers=True, null_header=False, base_ts=None):
    """n messages with keys k-<i % keys>, values unique (they embed the
    sequence number), two or three headers, and explicit timestamps."""
    rnd = random.Random(seed)
    if base_ts is None:
        base_ts = int(time.time() * 1000) - 3600 * 1000
    out = []
    for i in range(n):
        key = b"k-%d" % rnd.randrange(keys)
        pad = rnd.randint(*value_size)
        if binary:
            value = b"%d|" % i + os.urandom(pad)
        else:
            value = (b"v%d-" % i) + b"x" * pad
        hdrs = None
        if headers:
            hdrs = [("seq", b"%d" % i), ("src", b"sluice-it")]
            if null_header:
                hdrs.append(("nothing", None))
            hdrs.append(("empty", b""))
        out.append(Msg(key, value, hdrs, base_ts + i))
    return out


def consumer(bootstrap, **extra):
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": "sluice-it-" + uuid.uuid4().hex[:8],
        "enable.auto.commit": False,
        "enable.partition.eof": False,
        "fetch.wait.max.ms": 100,
        "fetch.max.bytes": 50 * 1024 * 1024,
        "fetch.message.max.bytes": 4 * 1024 * 1024,
        "receive.message.max.bytes": 100 * 1024 * 1024,
    }
    conf.update(extra)
    return Consumer(conf)


def high_watermarks(bootstrap, topic, partitions, **extra):
    c = consumer(bootstrap, **extra)
    try:
        return [c.get_watermark_offsets(TopicPartition(topic, p),
                                        timeout=10)[1]
                for p in range(partitions)]
    finally:
        c.close()


def consume_all(bootstrap, topic, partitions, expect=None, timeout=60,
                **extra):
    """Reads every partition from the beginning up to its high watermark
    (or until `expect` messages arrived) and returns {partition: [Got]} in
    offset order."""
    hw = high_watermarks(bootstrap, topic, partitions, **extra)
    want = sum(hw) if expect is None else expect
    c = consumer(bootstrap, **extra)
    out = {p: [] for p in range(partitions)}
    got = 0
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING)
                  for p in range(partitions)])
        deadline = time.monotonic() + timeout
        while got < want:
            if time.monotonic() > deadline:
                raise AssertionError(
                    "consumed %d of %d messages from %s within %d s "
                    "(per partition: %s; high watermarks %s)" % (
                        got, want, topic, timeout,
                        {p: len(v) for p, v in out.items()}, hw))
            for m in c.consume(10000, 0.5):
                if m.error():
                    raise KafkaException(m.error())
                out[m.partition()].append(Got(
                    m.partition(), m.offset(), m.key(), m.value(),
                    m.headers(), m.timestamp()[1]))
                got += 1
    finally:
        c.close()
    return out


def check_roundtrip(produced, consumed, check_ts=True, ts_window=None,
                    dense=True):
    """Asserts the consumed partitions hold exactly the produced messages:
    each key on one partition only; per partition, the messages in the
    order they were produced (produce order filtered to the partition),
    byte for byte (key, value, headers, timestamp); offsets dense from 0."""
    part_of_key = {}
    for p, msgs in consumed.items():
        for g in msgs:
            prev = part_of_key.setdefault(g.key, p)
            assert prev == p, "key %r found in partitions %d and %d" % (
                g.key, prev, p)
    total = sum(len(v) for v in consumed.values())
    assert total == len(produced), "consumed %d messages, produced %d" % (
        total, len(produced))
    missing = [m.key for m in produced if m.key not in part_of_key]
    assert not missing, "keys never consumed: %r" % missing[:5]
    expected = collections.defaultdict(list)
    for m in produced:
        expected[part_of_key[m.key]].append(m)
    for p, msgs in consumed.items():
        exp = expected.get(p, [])
        assert len(msgs) == len(exp), "partition %d: %d consumed, %d " \
            "expected" % (p, len(msgs), len(exp))
        if dense:
            offs = [g.offset for g in msgs]
            assert offs == list(range(len(msgs))), \
                "partition %d offsets not dense from 0: first %r" % (
                    p, offs[:10])
        for i, (g, m) in enumerate(zip(msgs, exp)):
            where = "partition %d offset %d (index %d)" % (p, g.offset, i)
            assert g.key == m.key, "%s: key %r != %r" % (where, g.key, m.key)
            assert g.value == m.value, "%s: value %r != %r" % (
                where, g.value[:40], m.value[:40])
            want_h = [(k, v) for k, v in (m.headers or [])]
            got_h = [(k, v) for k, v in (g.headers or [])]
            assert got_h == want_h, "%s: headers %r != %r" % (
                where, got_h, want_h)
            if check_ts:
                assert g.timestamp == m.timestamp, "%s: timestamp %d != %d" \
                    % (where, g.timestamp, m.timestamp)
            elif ts_window:
                assert ts_window[0] <= g.timestamp <= ts_window[1], \
                    "%s: timestamp %d outside [%d, %d]" % (
                        where, g.timestamp, ts_window[0], ts_window[1])
    return part_of_key


def ck_produce(bootstrap, topic, msgs, partition=None, **conf):
    """Produces msgs with confluent-kafka; returns the delivery reports as
    [(partition, offset)] in the order of msgs (asserting no errors)."""
    c = {"bootstrap.servers": bootstrap, "linger.ms": 5,
         "queue.buffering.max.messages": 1000000,
         "queue.buffering.max.kbytes": 1024 * 1024,
         "batch.num.messages": 10000, "acks": "all"}
    c.update(conf)
    p = Producer(c)
    reports = [None] * len(msgs)
    errors = []

    def cb_for(i):
        def cb(err, m):
            if err is not None:
                errors.append((i, err))
            else:
                reports[i] = (m.partition(), m.offset())
        return cb

    for i, m in enumerate(msgs):
        kw = {}
        if partition is not None:
            kw["partition"] = partition
        if m.timestamp is not None:
            kw["timestamp"] = m.timestamp
        if m.headers is not None:
            kw["headers"] = m.headers
        while True:
            try:
                p.produce(topic, m.value, m.key, on_delivery=cb_for(i), **kw)
                break
            except BufferError:
                p.poll(0.05)
        if i % 1000 == 0:
            p.poll(0)
    left = p.flush(60)
    assert left == 0, "%d messages still undelivered after 60 s" % left
    assert not errors, "delivery errors (first 5): %r" % errors[:5]
    return reports


def kp_roundtrip(topic, partitions, msgs, **kw):
    """Produces msgs with kafka-python and reads them back from the
    beginning (kw: KafkaProducer/KafkaConsumer connection settings);
    returns {partition: [Got]} in offset order."""
    from kafka import KafkaConsumer, KafkaProducer
    from kafka import TopicPartition as KpTopicPartition
    prod = KafkaProducer(acks="all", linger_ms=20, **kw)
    for m in msgs:
        prod.send(topic, value=m.value, key=m.key, headers=m.headers,
                  timestamp_ms=m.timestamp)
    prod.flush(60)
    prod.close(10)
    cons = KafkaConsumer(enable_auto_commit=False, consumer_timeout_ms=10000,
                         **kw)
    cons.assign([KpTopicPartition(topic, p) for p in range(partitions)])
    cons.seek_to_beginning()
    got = {p: [] for p in range(partitions)}
    n = 0
    for r in cons:
        got[r.partition].append(Got(r.partition, r.offset, r.key, r.value,
                                    r.headers, r.timestamp))
        n += 1
        if n == len(msgs):
            break
    cons.close()
    return got


def js_messages_file(path, msgs):
    """msgs as the kafkajs driver's input (js/produce.js: one JSON line
    each)."""
    import json
    with open(path, "w") as f:
        for m in msgs:
            f.write(json.dumps({"k": m.key.decode(), "v": m.value.hex(),
                                "h": [[k, v.hex()] for k, v in m.headers],
                                "ts": m.timestamp}) + "\n")
