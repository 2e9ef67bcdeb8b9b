"""test_catchup.py — catch-up reads through the read cache's read-ahead:
after a restart (empty cache), consumers reading a backlog spread over
many objects get every message once, in order, byte for byte — with small
fetches (the budget runs out on every partition, so the read-ahead loads
ranges ahead and later fetches wait for loads in flight), with a cache so
small that ranges loaded ahead are evicted before use, and with no cache."""
import threading

import util

PARTS = 8


def produce_backlog(bootstrap, topic, n, seed):
    msgs = util.make_messages(n, keys=4000, seed=seed, value_size=(200, 1200))
    # Small batches and the file store's 2 ms flush: many batches in many
    # objects, each object holding several partitions.
    util.ck_produce(bootstrap, topic, msgs, **{"batch.size": 16384})
    return msgs


def test_catchup_after_restart(broker_factory):
    b = broker_factory()
    topic = util.create_topic(b.bootstrap, util.topic_name("cu"), PARTS)
    msgs = produce_backlog(b.bootstrap, topic, 20000, 51)
    b.stop()
    b.start()
    small = {"max.partition.fetch.bytes": 65536, "fetch.max.bytes": 262144,
             "message.max.bytes": 262144}
    # Two consumers at once, one with small fetches: both read the same
    # ranges, loaded once and shared.
    results = {}

    def read(name, extra):
        try:
            results[name] = util.consume_all(b.bootstrap, topic, PARTS, timeout=120, **extra)
        except Exception as e:  # reported below, in the test's thread
            results[name] = e

    threads = [threading.Thread(target=read, args=("small", small)),
               threading.Thread(target=read, args=("default", {}))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name in ("small", "default"):
        assert not isinstance(results[name], Exception), (name, results[name])
        util.check_roundtrip(msgs, results[name])


def test_catchup_tiny_cache_and_no_cache(broker_factory):
    # 1 MiB of cache: ranges of at most 256 KiB, half of it in flight;
    # what is loaded ahead is evicted long before it is read.
    for args in (["--cache-bytes", "1048576"], ["--cache-bytes", "0"]):
        b = broker_factory(args)
        topic = util.create_topic(b.bootstrap, util.topic_name("cut"), PARTS)
        msgs = produce_backlog(b.bootstrap, topic, 8000, 52)
        b.stop()
        b.start()
        got = util.consume_all(b.bootstrap, topic, PARTS, timeout=120,
                               **{"max.partition.fetch.bytes": 32768,
                                  "fetch.max.bytes": 131072,
                                  "message.max.bytes": 131072})
        util.check_roundtrip(msgs, got)
        b.stop()
