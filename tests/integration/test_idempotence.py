"""Idempotent producers: a retried batch is answered with its original
offset and written once; a gap in the sequence and an old epoch are
refused with Kafka's error codes; librdkafka's idempotent producer
round-trips every message exactly once."""
import struct

from confluent_kafka import Producer

import kproto
import util
from kproto import i16, i32, i64


def idempotent_batch(pid, epoch, base_seq, values):
    """A magic-2 batch carrying producer id, epoch and base sequence."""
    b = bytearray(kproto.record_batch([(None, v, ()) for v in values]))
    b[43:51] = i64(pid)
    b[51:53] = i16(epoch)
    b[53:57] = i32(base_seq)
    crc = kproto.crc32c(bytes(b[21:]))
    b[17:21] = struct.pack(">I", crc)
    return bytes(b)


def produce_one(sock, topic, batch):
    return kproto.produce_v3(sock, {topic: {0: batch}})[(topic, 0)]


def test_retry_is_deduplicated_and_gaps_refused(broker):
    topic = util.create_topic(broker.bootstrap, util.topic_name("idem"), 1)
    s = kproto.connect(broker.bootstrap)
    first = idempotent_batch(4242, 0, 0, [b"a", b"b", b"c"])
    assert produce_one(s, topic, first) == (0, 0)
    # The same batch again (a client retry after a lost response): the
    # original offset, nothing written twice.
    assert produce_one(s, topic, first) == (0, 0)
    assert produce_one(s, topic, idempotent_batch(4242, 0, 3, [b"d"])) == (0, 3)
    # A gap: sequence 5 when 4 is next.
    err, _ = produce_one(s, topic, idempotent_batch(4242, 0, 5, [b"x"]))
    assert err == 45, "expected OUT_OF_ORDER_SEQUENCE_NUMBER, got %d" % err
    # A bumped epoch starts over; then the old epoch is fenced.
    assert produce_one(s, topic, idempotent_batch(4242, 1, 0, [b"e"])) == (0, 4)
    err, _ = produce_one(s, topic, idempotent_batch(4242, 0, 4, [b"y"]))
    assert err == 47, "expected INVALID_PRODUCER_EPOCH, got %d" % err
    # A non-idempotent batch is unaffected.
    assert produce_one(s, topic, kproto.record_batch([(None, b"f", ())])) == (0, 5)
    s.close()
    got = util.consume_all(broker.bootstrap, topic, 1, 6)[0]
    assert [m.value for m in got] == [b"a", b"b", b"c", b"d", b"e", b"f"]
    assert [m.offset for m in got] == list(range(6))


def test_librdkafka_idempotent_producer(broker):
    topic = util.create_topic(broker.bootstrap, util.topic_name("idemp"), 4)
    p = Producer({"bootstrap.servers": broker.bootstrap,
                  "enable.idempotence": True, "linger.ms": 2})
    acked = []

    def report(err, msg):
        assert err is None, err
        acked.append((msg.partition(), msg.offset(), msg.value()))

    n = 20000
    for i in range(n):
        p.produce(topic, value=b"m%06d" % i, key=b"k%d" % (i % 97),
                  on_delivery=report)
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(30) == 0
    assert len(acked) == n
    got = util.consume_all(broker.bootstrap, topic, 4, n)
    values = [m.value for part in got.values() for m in part]
    assert sorted(values) == sorted(v for _, _, v in acked), \
        "messages lost or duplicated"
    for part, msgs in got.items():
        assert [m.offset for m in msgs] == list(range(len(msgs))), \
            "partition %d: offsets not dense" % part
        acked_here = sorted(o for p_, o, _ in acked if p_ == part)
        assert acked_here == [m.offset for m in msgs]


def test_retry_after_restart_is_deduplicated(broker_factory):
    # The broker dies after committing a batch but (as far as the client
    # knows) before answering; the client retries against the restarted
    # broker and must get the original offset, not a second copy.
    b = broker_factory()
    topic = util.create_topic(b.bootstrap, util.topic_name("idemr"), 1)
    s = kproto.connect(b.bootstrap)
    batch = idempotent_batch(9001, 2, 0, [b"p", b"q"])
    assert produce_one(s, topic, batch) == (0, 0)
    s.close()
    b.kill9()
    b.restart()
    s = kproto.connect(b.bootstrap)
    assert produce_one(s, topic, batch) == (0, 0)
    assert produce_one(s, topic, idempotent_batch(9001, 2, 2, [b"r"])) == (0, 2)
    err, _ = produce_one(s, topic, idempotent_batch(9001, 2, 9, [b"z"]))
    assert err == 45
    s.close()
    got = util.consume_all(b.bootstrap, topic, 1, 3)[0]
    assert [m.value for m in got] == [b"p", b"q", b"r"]


def init_producer_id_v0(sock):
    body = kproto.string(None) + kproto.i32(60000)
    r = kproto.Reader(kproto.roundtrip(sock, 22, 0, body))
    r.i32()  # throttle
    err, pid, epoch = r.i16(), r.i64(), r.i16()
    assert r.done(), "trailing bytes"
    return err, pid, epoch


def test_producer_ids_unique_across_restarts(broker):
    """Producer ids come in blocks from the metadata store: distinct on one
    agent and never handed out again after a restart (kill -9 included),
    so a new producer can never inherit an old one's sequence state."""
    seen = set()
    for rnd in range(3):
        s = kproto.connect(broker.bootstrap)
        for _ in range(5):
            err, pid, epoch = init_producer_id_v0(s)
            assert err == 0 and epoch == 0 and pid >= 0, (err, pid, epoch)
            assert pid not in seen, "producer id %d handed out twice" % pid
            seen.add(pid)
        s.close()
        if rnd == 0:
            broker.kill9()
            broker.start()
            broker.wait_ready()
        elif rnd == 1:
            broker.restart(clean=True)
