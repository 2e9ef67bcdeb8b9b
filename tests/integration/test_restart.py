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


def test_second_agent_on_same_data_dir_refused(broker_factory):
    """One agent per SQLite data dir: a second `sluice serve` on it exits
    1 with a line that says so (instead of both assigning offsets the
    other does not see); the first keeps serving; once the first is
    killed (-9: the kernel drops its lock), an agent starts there again."""
    import subprocess
    b = broker_factory()
    topic = util.create_topic(b.bootstrap, util.topic_name("lock"), 1)
    msgs = util.make_messages(50, seed=7)
    util.ck_produce(b.bootstrap, topic, msgs)

    second = subprocess.run(
        [b.args()[0], "serve", "--listen", "127.0.0.1:%d" % util.free_port(),
         "--data", b.data_dir],
        capture_output=True, text=True, timeout=30)
    assert second.returncode == 1, (second.returncode, second.stderr)
    lines = [l for l in second.stderr.splitlines() if "in use by another agent" in l]
    assert len(lines) == 1, second.stderr
    assert "pid %d" % b.proc.pid in lines[0], lines[0]

    # The first agent was not disturbed.
    util.check_roundtrip(msgs, util.consume_all(b.bootstrap, topic, 1))

    b.kill9()
    b.start()
    util.check_roundtrip(msgs, util.consume_all(b.bootstrap, topic, 1))
