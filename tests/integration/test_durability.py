"""test_durability.py — kill -9 mid-stream: every acknowledged message
survives exactly once at its acknowledged offset, offsets stay dense, and
producing after the restart continues at the next offset; and the same
after a power loss (unsynced writes dropped by a test double)."""
import os
import threading
import time

from confluent_kafka import KafkaException, Producer

import powerloss
import util
from conftest import SLUICE_BIN

PARTS = 4


def produce_until_killed(b, topic, kill_after_s=2.0, run_s=3.0, prefix=b"m"):
    """Produce steadily with acks=all; kill -9 the broker after
    kill_after_s while messages are in flight, keep producing briefly into
    the dead broker, and let every message resolve. Returns {value:
    (partition, offset)} of the acknowledged ones."""
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
    while time.monotonic() - t_start < run_s:
        for _ in range(50):
            v = prefix + b"-%08d" % sent
            try:
                p.produce(topic, v, b"key-%d" % (sent % 97),
                          on_delivery=on_delivery)
                sent += 1
            except BufferError:
                break
        p.poll(0.002)
        if killed_at is None and time.monotonic() - t_start >= kill_after_s:
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
    return acked


def check_acked_kept(bootstrap, topic, acked):
    """Every acknowledged message is stored exactly once at its
    acknowledged offset, offsets dense from 0. Returns what was read."""
    got = util.consume_all(bootstrap, topic, PARTS)
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
    return got


def test_kill9_keeps_every_acked_message(broker_factory):
    b = broker_factory()
    topic = util.create_topic(b.bootstrap, util.topic_name("dur"), PARTS)
    acked = produce_until_killed(b, topic)
    b.start()
    got = check_acked_kept(b.bootstrap, topic, acked)

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


def test_power_loss_keeps_every_acked_message(broker_factory, tmp_path):
    """Power loss rather than a process kill: the broker runs under the
    test double tests/integration/powerloss/ (an LD_PRELOAD shim that
    records what each fsync/fdatasync made durable), is killed -9 while
    producing, and its data dir is rebuilt as a power cut would leave it:
    writes and directory entries never synced are gone. A broker on that
    dir still has every acknowledged message at its offset (invariant 1:
    the object and its commit were durable before the answer). The
    control replays the same cut with the objects folder's entries never
    synced after the start: then acknowledged messages are lost, so the
    double does drop what a missing directory fsync would drop."""
    lib = powerloss.find_lib(SLUICE_BIN)
    assert lib, "the power-loss shim %s is not built beside %s" % (
        powerloss.LIB_NAME, SLUICE_BIN)
    b = broker_factory(name="data")
    topic = util.create_topic(b.bootstrap, util.topic_name("pwr"), PARTS)
    first = util.make_messages(20, seed=17)
    first_acks = util.ck_produce(b.bootstrap, topic, first)
    b.stop()
    os.sync()  # the starting state is durable, as after a clean shutdown

    shadow = str(tmp_path / "shadow")
    b.env = powerloss.env(lib, b.data_dir, shadow)
    b.start()
    acked = produce_until_killed(b, topic, kill_after_s=1.5, run_s=2.5, prefix=b"p")
    for m, pos in zip(first, first_acks):
        acked[m.value] = pos

    after = str(tmp_path / "after")
    stats = powerloss.rebuild(shadow, after)
    print("rebuilt after the cut: %r" % stats)
    a = broker_factory(name="after")
    check_acked_kept(a.bootstrap, topic, acked)
    a.stop()

    control = str(tmp_path / "control")
    powerloss.rebuild(shadow, control, unsynced=("objects/objects",))
    c = broker_factory(name="control")
    try:
        got = util.consume_all(c.bootstrap, topic, PARTS, timeout=10)
        values = {g.value for msgs in got.values() for g in msgs}
        missing = [v for v in acked if v not in values]
    except (AssertionError, KafkaException) as e:
        missing = ["unreadable: %s" % e]
    assert missing, "the control kept every acknowledged message: the double " \
        "did not drop the objects folder's unsynced entries"
