"""test_cluster_kill.py — kill -9 of one agent under an idempotent
acks=all load spread over all three (issue 12).

Three agents on one PostgreSQL and one file store (cluster.py). Three
confluent-kafka producers with enable.idempotence and acks=all, each
bootstrapped with all three agents and naming no zone (so the
partitions' leaders are spread over the three), write unique payloads to
six partitions. One agent is killed with -9 in the middle of the load.
The agent killed is the one leading the most partitions.
Checked: it leaves Metadata on the other two within 5 s; the producers
keep being acknowledged through the other agents, for every partition,
and end with nothing unacknowledged and no delivery error; restarted with
the node id it had taken from the registry (now as --node-id) it is
listed by every agent again within 5 s and leads partitions again
(test_cluster restarts one without --node-id); every acknowledged record
is read back exactly once at the offset it was acknowledged at, offsets
dense, and the high watermarks add up to the acknowledged records
(nothing written twice).
"""
import threading
import time

from confluent_kafka import Producer

import kproto
import util
from cluster import SETUP_S, cluster, pg, wait_for, wait_topic_on  # noqa: F401 (fixtures)

PARTITIONS = 6
PRODUCERS = 3


def brokers(agent):
    """{port: node id} of the brokers this agent lists."""
    with kproto.connect(agent.bootstrap) as s:
        bs, _ = kproto.metadata_v1(s)
    return {port: bid for bid, _host, port, _rack in bs}


def topics(agent):
    with kproto.connect(agent.bootstrap) as s:
        return kproto.metadata_v1(s)[1]


def leaders(agent, topic):
    """{partition: leader id} as a client naming no zone is told."""
    p = Producer({"bootstrap.servers": agent.bootstrap})
    md = p.list_topics(topic, timeout=10)
    return {pid: pm.leader for pid, pm in md.topics[topic].partitions.items()}


class Load:
    """PRODUCERS idempotent producers writing until stopped; every
    acknowledgement is kept with the time it came."""

    def __init__(self, bootstrap, topic):
        self.bootstrap, self.topic = bootstrap, topic
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked = {}  # value -> (partition, offset, monotonic time)
        self.twice = []
        self.errors = []
        self.unflushed = []
        self.threads = [threading.Thread(target=self.run, args=(n,))
                        for n in range(PRODUCERS)]

    def run(self, n):
        p = Producer({"bootstrap.servers": self.bootstrap,
                      "client.id": "it-kill-%d" % n, "acks": "all",
                      "enable.idempotence": True, "linger.ms": 5})

        def cb(err, m):
            with self.lock:
                if err is not None:
                    self.errors.append(err)
                elif m.value() in self.acked:
                    self.twice.append(m.value())
                else:
                    self.acked[m.value()] = (m.partition(), m.offset(),
                                             time.monotonic())
        i = 0
        while not self.stop.is_set():
            try:
                p.produce(self.topic, b"p%d-%07d" % (n, i),
                          partition=i % PARTITIONS, on_delivery=cb)
                i += 1
            except BufferError:
                pass
            p.poll(0.004)
        self.unflushed.append(p.flush(60))

    def since(self, t):
        """(records, partitions) acknowledged after t."""
        with self.lock:
            late = [p for p, _, at in self.acked.values() if at > t]
        return len(late), set(late)


def test_kill9_under_idempotent_load(cluster):
    for agent in cluster:
        wait_for("%s lists three agents" % agent,
                 lambda: len(brokers(agent)) == 3, 10)
    topic = util.create_topic(cluster[0].bootstrap, util.topic_name("kill"),
                              PARTITIONS)
    wait_topic_on(cluster, topic)
    # The victim b leads the most partitions (placement hashes the random
    # topic id: any one agent may lead none); a and c survive.
    ids = brokers(cluster[0])
    led = list(leaders(cluster[0], topic).values())
    b = max(cluster, key=lambda x: led.count(ids[x.port]))
    a, c = [x for x in cluster if x is not b]
    b_id = ids[b.port]

    load = Load(",".join(x.bootstrap for x in cluster), topic)
    for t in load.threads:
        t.start()
    killed = None
    try:
        wait_for("load under way", lambda: len(load.acked) >= 1500, 30)
        b.kill9()
        killed = time.monotonic()
        took = wait_for("killed agent leaves Metadata", lambda: all(
            b.port not in brokers(x) for x in (a, c)), 5.0)
        print("killed agent left Metadata after %.3f s" % took)
        # Every partition is acknowledged again, b's through the others.
        wait_for("every partition acknowledged after the kill",
                 lambda: load.since(killed + took)[1] ==
                 set(range(PARTITIONS)), 20)
        print("every partition acknowledged %.3f s after the kill" %
              (time.monotonic() - killed))

        # Restarted with the id it had (--node-id, now explicit).
        b.extra_args += ["--node-id", str(b_id)]
        b.start()
        took = wait_for("restarted agent rejoins", lambda: all(
            brokers(x).get(b.port) == b_id for x in cluster), 5.0)
        print("restarted agent listed by all after %.3f s" % took)
        wait_for("restarted agent leads again",
                 lambda: b_id in leaders(a, topic).values(), 5.0)
        back = time.monotonic()
        wait_for("load acknowledged after the restart",
                 lambda: load.since(back + 1)[1] == set(range(PARTITIONS)),
                 20)
    finally:
        load.stop.set()
        for t in load.threads:
            t.join(90)
    assert not load.errors, load.errors[:5]
    assert not load.twice, load.twice[:5]
    assert load.unflushed == [0] * PRODUCERS
    print("%d records acknowledged, %d after the kill" %
          (len(load.acked), load.since(killed)[0]))

    # Nothing beyond what was acknowledged: a record written twice would
    # show as a higher high watermark. Another agent's commits reach a
    # with its next poll (or notification): on a loaded machine that can
    # take more than a poll interval, and waiting longer lets no extra
    # record pass.
    wait_for("high watermarks add up to the acknowledged records",
             lambda: sum(util.high_watermarks(a.bootstrap, topic, PARTITIONS))
             == len(load.acked), SETUP_S)
    got = util.consume_all(a.bootstrap, topic, PARTITIONS)
    seen = {}
    for p, recs in got.items():
        assert [r.offset for r in recs] == list(range(len(recs))), p
        for r in recs:
            assert r.value not in seen, "duplicate %r at %d/%d and %d/%d" % (
                r.value, seen[r.value][0], seen[r.value][1], p, r.offset)
            seen[r.value] = (p, r.offset)
    assert seen == {v: (p, o) for v, (p, o, _) in load.acked.items()}
