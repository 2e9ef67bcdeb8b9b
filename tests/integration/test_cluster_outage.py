"""test_cluster_outage.py — PostgreSQL stopped for 10 s under load.

A throwaway PostgreSQL (tools/pg-test.sh, as test_postgres.py) of this
module's own, since the tests stop and restart it with pg_ctl (the
functions of tools/pg-lib.sh) on the same port and data directory.

Under an idempotent acks=all load (confluent-kafka, one producer per
agent), the server is stopped for 10 s: no record is acknowledged while
it is down (an acknowledgement needs its commit); the agents keep
answering Metadata and fetches of what they hold; the load resumes once
it is back; every acknowledged record is then present exactly once, at
the offset acknowledged, offsets dense. With three agents, all three are
listed again after the outage (the registry expired the stale rows, each
agent rejoined). Also one agent alone on PostgreSQL.
"""
import os
import subprocess
import threading
import time

import pytest
from confluent_kafka import Producer

import kproto
import util
from cluster import metadata, wait_for, wait_topic_on
from conftest import Broker, _require_binary
from test_cluster import long_poll_v4
from test_fetch_pieces import batch_offsets
from test_postgres import Server

SOURCE_DIR = os.environ.get("SLUICE_SOURCE_DIR",
                            os.path.join(os.path.dirname(__file__), "..", ".."))
PG_LIB = os.path.join(SOURCE_DIR, "tools", "pg-lib.sh")
OUTAGE_S = 10
PARTITIONS = 4


class Pg(Server):
    """The module's server, which the tests stop and start again."""

    def _lib(self, script, *args):
        d = open(os.path.join(self.state, "dir")).read().strip()
        subprocess.run(["sh", "-c", '. "$0" && ' + script, PG_LIB, d] +
                       [str(a) for a in args], check=True, timeout=120)

    def halt(self):
        self._lib('pg_stop "$1" fast')

    def resume(self):
        self._lib('pg_start "$1" "$2" "-c max_connections=200"', self.port)


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    s = Pg(tmp_path_factory.mktemp("pg"))
    yield s
    s.stop()


@pytest.fixture
def agents_on(pg, tmp_path):
    started = []

    def make(zones):
        _require_binary()
        url = pg.db_url(pg.new_db())
        store = "file:%s" % (tmp_path / "objects")
        for z in zones:
            extra = ["--meta", url, "--store", store]
            if z:
                extra += ["--zone", z]
            b = Broker(tmp_path / ("agent-%d" % len(started)), extra)
            started.append(b)
            b.start()
        return started
    try:
        yield make
    finally:
        if pg_down(pg):
            pg.resume()
        for b in started:
            b.teardown()


def pg_down(pg):
    try:
        pg.psql("SELECT 1")
        return False
    except subprocess.CalledProcessError:
        return True


class Load:
    """One idempotent acks=all producer per agent, each record's value
    unique, every acknowledgement timed."""

    def __init__(self, agents, zones, topic):
        self.topic = topic
        self.acked = {}   # value -> (partition, offset, monotonic time)
        self.errors = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(a, z, n))
                        for n, (a, z) in enumerate(zip(agents, zones))]
        for t in self.threads:
            t.start()

    def run(self, agent, zone, n):
        conf = {"bootstrap.servers": agent.bootstrap, "acks": "all",
                "enable.idempotence": True, "linger.ms": 5,
                "message.timeout.ms": 120000, "retry.backoff.ms": 100}
        if zone:
            conf["client.id"] = "it,sluice_az=%s" % zone
        p = Producer(conf)

        def cb(err, m):
            with self.lock:
                if err is not None:
                    self.errors.append(err)
                else:
                    self.acked[m.value()] = (m.partition(), m.offset(),
                                             time.monotonic())
        i = 0
        while not self.stop.is_set():
            v = b"%d-%07d" % (n, i)
            try:
                p.produce(self.topic, v, partition=i % PARTITIONS,
                          on_delivery=cb)
                i += 1
            except BufferError:
                pass
            p.poll(0.002)
        assert p.flush(100) == 0

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(120)

    def acks_between(self, t0, t1):
        with self.lock:
            return sorted(t for (_, _, t) in self.acked.values() if t0 <= t < t1)


def check_exactly_once(agent, topic, acked, zone):
    extra = {"client.id": "it,sluice_az=%s" % zone} if zone else {}
    got = util.consume_all(agent.bootstrap, topic, PARTITIONS, **extra)
    seen = {}
    for p, recs in got.items():
        assert [r.offset for r in recs] == list(range(len(recs))), p
        for r in recs:
            assert r.value not in seen, "duplicate %r" % r.value
            seen[r.value] = (p, r.offset)
    missing = [(v, acked[v][:2]) for v in acked if v not in seen]
    assert not missing, "%d acknowledged records missing: %r; read %s" % (
        len(missing), missing[:10], {p: len(r) for p, r in got.items()})
    assert {v: (p, o) for v, (p, o, _) in acked.items()} == \
        {v: seen[v] for v in acked}


def served_without_store(agent, zone, topic):
    """The newest record of each partition that this agent knows is
    served from its batch index (and the object store): no lookup."""
    extra = {"client.id": "it,sluice_az=%s" % zone} if zone else {}
    hws = util.high_watermarks(agent.bootstrap, topic, PARTITIONS, **extra)
    with kproto.connect(agent.bootstrap) as s:
        for p, hw in enumerate(hws):
            if hw == 0:
                continue
            err, got_hw, records = long_poll_v4(s, topic, p, hw - 1, 0)
            assert (err, got_hw) == (0, hw), (agent, p)
            assert hw - 1 in [b + d for b, d in batch_offsets(records)]


def outage(pg, agents, zones):
    a = agents[0]
    topic = util.create_topic(a.bootstrap, util.topic_name("outage"),
                              PARTITIONS)
    wait_topic_on(agents, topic)
    load = Load(agents, zones, topic)
    try:
        time.sleep(3)
        # (The producers' first metadata and connections can take longer
        # than the pause on a loaded machine.)
        wait_for("acknowledgements before the outage", lambda: load.acked, 20)
        pg.halt()
        down = time.monotonic()
        time.sleep(1)
        # Served without the store: Metadata and a fetch of what the
        # agents hold (their batch indexes and read caches).
        for agent in agents:
            brokers, topics = metadata(agent)
            assert topic in topics and len(brokers) == len(agents)
        for agent, zone in zip(agents, zones):
            served_without_store(agent, zone, topic)
        time.sleep(max(0, OUTAGE_S - (time.monotonic() - down)))
        up = time.monotonic()
        pg.resume()
        # The 0.2 s after the stop: acknowledgements of commits that
        # completed before it, still on their way to the client.
        during = load.acks_between(down + 0.2, up)
        assert not during, "%d records acknowledged while PostgreSQL was " \
            "down (first %.2f s into it)" % (len(during), during[0] - down)
        resumed = wait_for("produces acknowledged again",
                           lambda: load.acks_between(up, time.monotonic()), 20)
        print("acknowledged again %.2f s after PostgreSQL restarted" % resumed)
        time.sleep(2)
    finally:
        load.finish()
    assert not load.errors, load.errors[:5]
    after = len(load.acks_between(up, time.monotonic()))
    print("%d records acknowledged, %d after the outage" % (len(load.acked),
                                                          after))
    check_exactly_once(agents[-1], topic, load.acked, zones[-1])


def test_three_agents_survive_a_postgres_outage(pg, agents_on):
    zones = ("a", "b", "c")
    agents = agents_on(zones)
    for agent in agents:
        wait_for("three agents", lambda: metadata(agent)[0] == [1, 2, 3], 5)
    outage(pg, agents, zones)
    # The heartbeats that resumed after the outage found every row stale:
    # the agents must rejoin, not stay expired.
    for agent in agents:
        wait_for("three agents after the outage",
                 lambda: metadata(agent)[0] == [1, 2, 3], 10)
    # Change notifications resumed too: a topic made via A shows via C
    # within 1 s.
    topic = util.create_topic(agents[0].bootstrap, util.topic_name("after"), 1)
    wait_for("topic via C", lambda: topic in metadata(agents[2])[1], 1.0)


def test_one_agent_survives_a_postgres_outage(pg, agents_on):
    agents = agents_on((None,))
    outage(pg, agents, (None,))
    text = open(agents[0].stderr, errors="replace").read()
    lost = [l for l in text.splitlines() if "cannot be reached" in l]
    back = [l for l in text.splitlines() if "reachable again" in l]
    assert len(lost) == 1 and len(back) == 1, (lost, back)
