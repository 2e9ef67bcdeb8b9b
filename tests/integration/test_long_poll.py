"""test_long_poll.py — a fetch waiting at the end of a partition is woken by
the commit of new data, not by its max wait timeout."""
import statistics
import threading
import time

from confluent_kafka import OFFSET_END, Producer, TopicPartition

import util

FETCH_WAIT_MS = 2000
FLUSH_INTERVAL_MS = 5
ROUNDS = 5
# Generous for a loaded 2-core box, yet far below FETCH_WAIT_MS: a fetch
# that was only answered at its timeout cannot pass.
LATENCY_MAX_MS = 250


def test_long_poll_wakes_on_commit(broker_factory):
    b = broker_factory(["--flush-interval-ms", str(FLUSH_INTERVAL_MS)])
    topic = util.create_topic(b.bootstrap, util.topic_name("lp"), 1)
    prod = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 0,
                     "acks": "all"})
    prod.produce(topic, b"warm-up", partition=0)
    assert prod.flush(10) == 0

    cons = util.consumer(b.bootstrap, **{
        "fetch.wait.max.ms": FETCH_WAIT_MS, "fetch.error.backoff.ms": 10,
        "fetch.min.bytes": 1})
    cons.assign([TopicPartition(topic, 0, OFFSET_END)])
    received = []
    stop = threading.Event()
    ready = threading.Event()

    def poll_loop():
        while not stop.is_set():
            m = cons.poll(0.05)
            ready.set()
            if m is None:
                continue
            assert m.error() is None, m.error()
            received.append((time.monotonic(), m.value()))

    t = threading.Thread(target=poll_loop, daemon=True)
    t.start()
    try:
        assert ready.wait(10)
        # Let the consumer resolve OFFSET_END and park a fetch at the end.
        time.sleep(1.5)
        assert received == [], "consumer at the end received %r" % received
        latencies = []
        for i in range(ROUNDS):
            val = b"ping-%d" % i
            # Let the previous answer's follow-up fetch reach the broker
            # and start waiting.
            time.sleep(0.3)
            t0 = time.monotonic()
            prod.produce(topic, val, partition=0)
            prod.poll(0)
            deadline = t0 + FETCH_WAIT_MS / 1000.0 * 3
            while time.monotonic() < deadline:
                hit = [r for r in received if r[1] == val]
                if hit:
                    latencies.append((hit[0][0] - t0) * 1000.0)
                    break
                time.sleep(0.001)
            else:
                raise AssertionError("message %r never received" % val)
            assert prod.flush(10) == 0
    finally:
        stop.set()
        t.join(5)
        cons.close()
    print("long-poll latencies (ms): %s" % ", ".join(
        "%.1f" % x for x in latencies))
    med = statistics.median(latencies)
    assert med < LATENCY_MAX_MS, \
        "median produce->receive latency %.1f ms (all: %s) with " \
        "fetch.wait.max.ms=%d: the waiting fetch was not woken by the " \
        "commit" % (med, ["%.1f" % x for x in latencies], FETCH_WAIT_MS)
    assert max(latencies) < FETCH_WAIT_MS * 0.75, latencies
