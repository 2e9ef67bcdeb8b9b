"""cluster.py — PostgreSQL and agents for the cluster tests (issue 12).

A throwaway PostgreSQL (tools/pg-test.sh, as test_postgres.py) per test
module, a database per test; agents on it (--meta) sharing one store
folder (--store file:...), each with its own --listen, data dir and
--zone. Shared by test_cluster*.py: import the fixtures (pg, cluster)
by name into the test module.
"""
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

import kproto
import util
from conftest import Broker, _require_binary
from test_postgres import Server

ZONES = ("a", "b", "c")


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("pg"))
    yield s
    s.stop()


def start_agents(pg, tmp_path, extra=(), zones=ZONES):
    """An agent per zone in zones (three: a, b, c, unless told) on a new
    database of pg and one store folder, each given the extra flags; a
    generator for fixtures."""
    _require_binary()
    url = pg.db_url(pg.new_db())
    store = "file:%s" % (tmp_path / "objects")
    agents = [Broker(tmp_path / ("agent-%d-%s" % (i, z)),
                     ["--meta", url, "--store", store, "--zone", z] + list(extra))
              for i, z in enumerate(zones)]
    try:
        for a in agents:
            a.start()
        yield agents
    finally:
        for a in agents:
            a.teardown()


@pytest.fixture
def cluster(pg, tmp_path):
    yield from start_agents(pg, tmp_path)


def metadata(agent):
    """(sorted broker ids, {topic: (error, partitions)}) from this agent."""
    with kproto.connect(agent.bootstrap) as s:
        brokers, topics = kproto.metadata_v1(s)
    return sorted(b[0] for b in brokers), topics


def wait_for(what, check, timeout):
    t0 = time.monotonic()
    while True:
        got = check()
        if got:
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise AssertionError("%s: not within %.1f s" % (what, timeout))
        time.sleep(0.05)


# How long a test waits for what only sets it up (a new topic reaching
# every agent before the test's own checks). How fast a topic reaches the
# others is test_three_agents_one_topic's claim (1 s), not every test's:
# on a loaded machine (ctest -j 2 beside other work) a lost notification
# plus a late fallback poll can take longer without anything being wrong.
SETUP_S = 10.0


def wait_topic_on(agents, topic, timeout=SETUP_S):
    """Wait until every one of agents lists topic in its Metadata."""
    for agent in agents:
        wait_for("topic %s on %s" % (topic, agent),
                 lambda: topic in metadata(agent)[1], timeout)


def three_agents(cluster):
    """Wait until every agent lists the three."""
    for agent in cluster:
        wait_for("%s lists three agents" % agent,
                 lambda: metadata(agent)[0] == [1, 2, 3], 10)


def topic_everywhere(cluster, prefix, partitions):
    """A new topic created through the first agent, once every agent
    lists it."""
    from confluent_kafka.admin import NewTopic
    topic = util.topic_name(prefix)
    util.admin(cluster[0].bootstrap).create_topics(
        [NewTopic(topic, partitions, 1)])[topic].result(15)
    wait_topic_on(cluster, topic)
    return topic


def zone_conf(z):
    return {"client.id": "it,sluice_az=%s" % z}


def wait_high_watermarks(zone, agent, topic, partitions, total):
    """Another agent's commits reach this one with its next poll (250 ms),
    or sooner by notification: wait until its high watermarks add up to
    total (SETUP_S: on a loaded machine a late poll takes longer, and a
    record written twice still never adds up)."""
    c = util.consumer(agent.bootstrap, **zone_conf(zone))
    try:
        def hw():
            try:
                return sum(c.get_watermark_offsets(TopicPartition(topic, p),
                                                   timeout=10, cached=False)[1]
                           for p in range(partitions))
            except KafkaException as e:
                # The client has not learnt the topic yet (its own
                # metadata): not an answer from the agent, ask again.
                if e.args[0].code() != KafkaError._UNKNOWN_PARTITION:
                    raise
                return -1
        return wait_for("%s's high watermarks reach %d" % (agent, total),
                        lambda: hw() == total, SETUP_S)
    finally:
        c.close()
