"""test_clients.py — 100,000 keyed messages with headers into an 8-partition
topic from each client library (confluent-kafka, kafka-python, kcat,
kafkajs), read back with confluent-kafka and compared byte for byte."""
import json
import os
import subprocess
import time

import pytest

import util

N = 100000
PARTS = 8
JS_DIR = os.path.join(os.path.dirname(__file__), "js")


def test_confluent_kafka_100k(broker):
    topic = util.create_topic(broker.bootstrap, util.topic_name("ck"), PARTS)
    msgs = util.make_messages(N, seed=11)
    reports = util.ck_produce(broker.bootstrap, topic, msgs)
    got = util.consume_all(broker.bootstrap, topic, PARTS, expect=N)
    util.check_roundtrip(msgs, got)
    # Every delivery report names the offset the message is really at.
    by_pos = {(g.partition, g.offset): g.value
              for gs in got.values() for g in gs}
    for m, (p, off) in zip(msgs, reports):
        assert by_pos.get((p, off)) == m.value, \
            "delivery report (%d, %d) does not hold the message" % (p, off)


def test_kafka_python_100k(broker):
    from kafka import KafkaProducer
    topic = util.create_topic(broker.bootstrap, util.topic_name("kp"), PARTS)
    msgs = util.make_messages(N, seed=12)
    prod = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all",
                         linger_ms=20, batch_size=256 * 1024,
                         buffer_memory=256 * 1024 * 1024,
                         max_request_size=8 * 1024 * 1024)
    futs = [prod.send(topic, value=m.value, key=m.key, headers=m.headers,
                      timestamp_ms=m.timestamp) for m in msgs]
    prod.flush(120)
    prod.close(10)
    reports = [f.get(0) for f in futs]
    got = util.consume_all(broker.bootstrap, topic, PARTS, expect=N)
    util.check_roundtrip(msgs, got)
    by_pos = {(g.partition, g.offset): g.value
              for gs in got.values() for g in gs}
    for m, r in zip(msgs, reports):
        assert by_pos.get((r.partition, r.offset)) == m.value


def test_kcat_100k(broker, tmp_path):
    topic = util.create_topic(broker.bootstrap, util.topic_name("kc"), PARTS)
    # kcat reads "key:value" lines and gives every message the same headers
    # and a producer-side CreateTime, so timestamps are checked by window.
    msgs = util.make_messages(N, seed=13, binary=False, headers=False)
    hdrs = [("src", b"sluice-it"), ("kind", b"kcat")]
    msgs = [m._replace(headers=hdrs) for m in msgs]
    path = tmp_path / "in.txt"
    with open(path, "wb") as f:
        for m in msgs:
            f.write(m.key + b":" + m.value + b"\n")
    t0 = int(time.time() * 1000) - 1000
    with open(path, "rb") as f:
        r = subprocess.run(["kcat", "-P", "-b", broker.bootstrap, "-t", topic,
                            "-K:", "-H", "src=sluice-it", "-H", "kind=kcat",
                            "-X", "linger.ms=5", "-X", "acks=all"],
                           stdin=f, capture_output=True, timeout=120)
    t1 = int(time.time() * 1000) + 1000
    assert r.returncode == 0, "kcat -P failed: %s" % r.stderr.decode()
    assert b"fail" not in r.stderr.lower(), r.stderr.decode()
    got = util.consume_all(broker.bootstrap, topic, PARTS, expect=N)
    util.check_roundtrip(msgs, got, check_ts=False, ts_window=(t0, t1))


def js_message_file(path, msgs, partition=None):
    with open(path, "w") as f:
        for m in msgs:
            d = {"k": m.key.decode() if m.key is not None else None,
                 "v": m.value.hex(),
                 "h": [[k, v.hex()] for k, v in (m.headers or [])],
                 "ts": m.timestamp}
            if partition is not None:
                d["p"] = partition
            f.write(json.dumps(d) + "\n")


def run_kafkajs(bootstrap, topic, path, codec="none", chunk=5000):
    if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "kafkajs")):
        pytest.fail("kafkajs is not installed in %s/node_modules; run "
                    "tools/install-node-deps.sh (make deps-test)" % JS_DIR)
    r = subprocess.run(["node", os.path.join(JS_DIR, "produce.js"), bootstrap,
                        topic, str(path), codec, str(chunk)],
                       capture_output=True, timeout=300, cwd=JS_DIR)
    assert r.returncode == 0, "kafkajs producer failed:\n%s\n%s" % (
        r.stderr.decode()[-3000:], r.stdout.decode()[-1000:])
    return [json.loads(l) for l in r.stdout.decode().splitlines() if l]


def test_kafkajs_100k(broker, tmp_path):
    topic = util.create_topic(broker.bootstrap, util.topic_name("js"), PARTS)
    msgs = util.make_messages(N, seed=14)
    path = tmp_path / "msgs.jsonl"
    js_message_file(path, msgs)
    results = run_kafkajs(broker.bootstrap, topic, path)
    assert results and all(r["errorCode"] == 0 for r in results), results[:3]
    got = util.consume_all(broker.bootstrap, topic, PARTS, expect=N)
    util.check_roundtrip(msgs, got)


def test_pipelined_small_produce_frames(broker):
    """Produce frames under 64 KiB are views of the connection's read
    buffer, which is then shared and handed on when full (server.c): 600
    produce requests of 1 B to 20 KiB values, with ApiVersions requests
    between them, sent in one go so that many share a read buffer and
    buffers fill up in the middle of a frame, are each acknowledged in
    order and read back byte for byte."""
    import random

    import kproto
    topic = util.create_topic(broker.bootstrap, util.topic_name("views"), 4)
    rnd = random.Random(5)
    frames, sent, expect = [], [], {p: [] for p in range(4)}
    for i in range(600):
        p = i % 4
        key, value = b"k%d" % i, bytes([i % 251]) * rnd.randrange(1, 20000)
        batch = kproto.record_batch([(key, value, ())])
        body = kproto.string(None) + kproto.i16(-1) + kproto.i32(10000) + kproto.array(
            [kproto.string(topic) + kproto.array([kproto.i32(p) + kproto.bytes_(batch)])])
        frames.append(kproto.request(kproto.API_PRODUCE, 3, i, body))
        sent.append(i)
        expect[p].append((key, value))
        if i % 7 == 0:
            frames.append(kproto.request(kproto.API_API_VERSIONS, 0, 100000 + i, b""))
            sent.append(100000 + i)
    s = kproto.connect(broker.bootstrap, timeout=60)
    s.sendall(b"".join(frames))
    for cid in sent:
        got, body = kproto.recv_response(s)
        assert got == cid
        if cid >= 100000:
            continue
        r = kproto.Reader(body)
        parts = []
        r.array(lambda: (r.string(), r.array(
            lambda: parts.append((r.i32(), r.i16(), r.i64(), r.i64())))))
        assert [(p, err) for p, err, _, _ in parts] == [(cid % 4, 0)]
    s.close()
    got = util.consume_all(broker.bootstrap, topic, 4, expect=600)
    for p in range(4):
        assert [(g.key, g.value) for g in got[p]] == expect[p]
