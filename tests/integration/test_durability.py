"""test_durability.py — kill -9 mid-stream: every acknowledged message
survives exactly once at its acknowledged offset, offsets stay dense, and
producing after the restart continues at the next offset."""
import threading
import time

from confluent_kafka import Producer

import util

PARTS = 4


def test_kill9_keeps_every_acked_message(broker_factory):
    b = broker_factory()
    topic = util.create_topic(b.bootstrap, util.topic_name("dur"), PARTS)

    acked = {}      # value -> (partition, offset)
    failed = []     # values whose delivery failed
    lock = threading.Lock()

    def on_delivery(err, m):
        with lock:
            if err is None:
                acked[m.value()] = (m.partition(), m.offset())
            else:
                failed.append(m.value())

    p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all",
                  "enable.idempotence": False, "linger.ms": 2,
                  "message.timeout.ms": 3000, "retries": 2,
                  "retry.backoff.ms": 100,
                  "reconnect.backoff.ms": 100,
                  "reconnect.backoff.max.ms": 500})
    sent = 0
    t_start = time.monotonic()
    killed_at = None
    # Produce steadily; kill the broker after ~2 s while messages are in
    # flight, keep producing briefly into the dead broker.
    while time.monotonic() - t_start < 3.0:
        for _ in range(50):
            v = b"m-%08d" % sent
            try:
                p.produce(topic, v, b"key-%d" % (sent % 97),
                          on_delivery=on_delivery)
                sent += 1
            except BufferError:
                break
        p.poll(0.002)
        if killed_at is None and time.monotonic() - t_start >= 2.0:
            b.kill9()
            killed_at = sent
    # Let every outstanding message resolve (they fail after
    # message.timeout.ms) before the broker comes back, so no retry can
    # land after the restart.
    left = p.flush(15)
    assert left == 0, "%d messages unresolved" % left
    with lock:
        n_acked, n_failed = len(acked), len(failed)
    print("sent %d (kill after %d), acked %d, failed %d" % (
        sent, killed_at, n_acked, n_failed))
    assert n_acked + n_failed == sent
    assert n_acked > 0, "nothing was acknowledged before the kill"
    assert n_failed > 0, "the kill did not hit in-flight messages"

    b.start()
    got = util.consume_all(b.bootstrap, topic, PARTS)
    seen = {}
    for part, msgs in got.items():
        offs = [g.offset for g in msgs]
        assert offs == list(range(len(msgs))), \
            "partition %d offsets not dense from 0 after restart" % part
        for g in msgs:
            assert g.value not in seen, "%r stored twice: %r and %r" % (
                g.value, seen[g.value], (part, g.offset))
            seen[g.value] = (part, g.offset)
    lost = [(v, pos) for v, pos in acked.items() if v not in seen]
    assert not lost, "%d acknowledged messages lost, e.g. %r" % (
        len(lost), lost[:5])
    moved = [(v, pos, seen[v]) for v, pos in acked.items() if seen[v] != pos]
    assert not moved, "%d acknowledged messages at another offset, e.g. %r" \
        % (len(moved), moved[:5])

    # Producing continues densely at the high watermark of each partition.
    hw = [len(got[pp]) for pp in range(PARTS)]
    for pp in range(PARTS):
        r = util.ck_produce(b.bootstrap, topic,
                            [util.Msg(b"x", b"after-%d" % pp, None, None)],
                            partition=pp)
        assert r[0] == (pp, hw[pp]), \
            "partition %d: produced after restart at %r, high watermark " \
            "was %d" % (pp, r[0], hw[pp])
    got2 = util.consume_all(b.bootstrap, topic, PARTS)
    for pp in range(PARTS):
        offs = [g.offset for g in got2[pp]]
        assert offs == list(range(hw[pp] + 1)), \
            "partition %d not dense after producing again" % pp
        assert got2[pp][-1].value == b"after-%d" % pp
