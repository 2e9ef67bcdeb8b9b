"""test_cli_topics.py — `sluice topics` and `sluice configs` against a
running agent: every subcommand's round trip, checked against what
kafka-python's admin client sees, the output kafka-topics.sh and
kafka-configs.sh print, and errors as Kafka's error name with exit 1."""
import logging
import subprocess

import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

import util
from conftest import SLUICE_BIN

logging.getLogger("kafka").setLevel(logging.WARNING)


def run(bs, tool, *args):
    r = subprocess.run([SLUICE_BIN, tool, "--bootstrap", bs] + list(args),
                       capture_output=True, timeout=60)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def topics(bs, *args):
    return run(bs, "topics", *args)


def configs(bs, *args):
    return run(bs, "configs", *args)


@pytest.fixture(scope="module")
def kp(broker):
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap,
                         request_timeout_ms=15000)
    yield a
    a.close()


def kp_partitions(kp, topic):
    """The partition count kafka-python's admin client sees."""
    (t,) = kp.describe_topics([topic])
    assert t["error_code"] == 0, t
    return len(t["partitions"])


def kp_overrides(kp, topic):
    """The topic's non-default configs as kafka-python sees them."""
    r = kp.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    (err, _, _, _, entries), = r[0].resources
    assert err == 0
    # DescribeConfigs v1+ entries: (name, value, read_only, config_source,
    # is_sensitive, synonyms); source 1 is DYNAMIC_TOPIC_CONFIG
    return {e[0]: e[1] for e in entries if e[3] == 1}


def test_create_list_describe_delete(broker, kp):
    bs = broker.bootstrap
    name = util.topic_name("cli")
    rc, out, err = topics(bs, "create", name, "--partitions", "3",
                          "--config", "retention.ms=3600000",
                          "--config", "cleanup.policy=delete")
    assert (rc, out, err) == (0, "Created topic %s.\n" % name, "")
    assert name in kp.list_topics()
    assert kp_partitions(kp, name) == 3
    assert kp_overrides(kp, name) == {"retention.ms": "3600000",
                                      "cleanup.policy": "delete"}
    rc, out, _ = topics(bs, "list")
    assert rc == 0 and name in out.splitlines()
    assert out.splitlines() == sorted(out.splitlines())

    rc, out, _ = topics(bs, "describe", name)
    assert rc == 0
    lines = out.splitlines()
    head = lines[0].split("\t")
    assert head[0] == "Topic: " + name
    assert head[1].startswith("TopicId: ") and len(head[1]) == len("TopicId: ") + 22
    assert head[2:] == ["PartitionCount: 3", "ReplicationFactor: 1",
                        "Configs: cleanup.policy=delete,retention.ms=3600000"]
    node = kp.describe_cluster()["brokers"][0]["node_id"]
    assert lines[1:] == ["\tTopic: %s\tPartition: %d\tLeader: %d\tReplicas: %d\t"
                         "Isr: %d" % (name, p, node, node, node) for p in range(3)]

    # Creating it again: Kafka's error name, exit 1; --if-not-exists: 0.
    rc, out, err = topics(bs, "create", name)
    assert rc == 1 and out == ""
    assert err.startswith("sluice topics: create topic %s: TOPIC_ALREADY_EXISTS (36)"
                          % name), err
    assert topics(bs, "create", name, "--if-not-exists")[0] == 0

    rc, out, err = topics(bs, "delete", name)
    assert (rc, out, err) == (0, "", "")
    assert name not in kp.list_topics()
    rc, _, err = topics(bs, "delete", name)
    assert rc == 1 and "UNKNOWN_TOPIC_OR_PARTITION (3)" in err, err
    assert topics(bs, "delete", name, "--if-exists")[0] == 0
    rc, out, err = topics(bs, "describe", name)
    assert rc == 1 and "UNKNOWN_TOPIC_OR_PARTITION" in err
    # describe never creates the topic (auto-creation is on)
    assert name not in kp.list_topics()


def test_alter_and_add_partitions(broker, kp):
    bs = broker.bootstrap
    name = util.create_topic(bs, util.topic_name("cla"), 2,
                             config={"cleanup.policy": "delete"})
    rc, out, _ = topics(bs, "alter", name, "--config", "max.message.bytes=2048",
                        "--delete-config", "cleanup.policy")
    assert (rc, out) == (0, "Completed updating config for topic %s.\n" % name)
    assert kp_overrides(kp, name) == {"max.message.bytes": "2048"}
    rc, _, err = topics(bs, "alter", name, "--config", "retention.ms=soon")
    assert rc == 1 and "INVALID_CONFIG (40)" in err, err
    assert kp_overrides(kp, name) == {"max.message.bytes": "2048"}

    rc, out, err = topics(bs, "add-partitions", name, "5")
    assert (rc, out, err) == (0, "", "")
    assert kp_partitions(kp, name) == 5
    rc, _, err = topics(bs, "add-partitions", name, "4")
    assert rc == 1 and "INVALID_PARTITIONS (37)" in err, err
    assert kp_partitions(kp, name) == 5
    rc, _, err = topics(bs, "add-partitions", util.topic_name("none"), "4")
    assert rc == 1 and "UNKNOWN_TOPIC_OR_PARTITION" in err


def test_configs(broker, kp):
    bs = broker.bootstrap
    name = util.create_topic(bs, util.topic_name("clc"), 1,
                             config={"retention.ms": "3600000"})
    rc, out, _ = configs(bs, "describe", "--topic", name)
    assert rc == 0
    assert out.splitlines() == [
        "Dynamic configs for topic %s are:" % name,
        "  retention.ms=3600000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:"
        "retention.ms=3600000, DEFAULT_CONFIG:retention.ms=604800000}"]
    rc, out, _ = configs(bs, "alter", "--topic", name, "--add-config",
                         "cleanup.policy=[compact,delete],retention.bytes=1000",
                         "--delete-config", "retention.ms")
    assert (rc, out) == (0, "Completed updating config for topic %s.\n" % name)
    assert kp_overrides(kp, name) == {"cleanup.policy": "compact,delete",
                                      "retention.bytes": "1000"}
    # kafka-configs.sh's spelling of the resource
    rc, out, _ = configs(bs, "describe", "--entity-type", "topics",
                         "--entity-name", name, "--all")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0] == "All configs for topic %s are:" % name
    assert "  retention.ms=604800000 sensitive=false synonyms={DEFAULT_CONFIG:" \
        "retention.ms=604800000}" in lines
    assert len(lines) > 10

    node = kp.describe_cluster()["brokers"][0]["node_id"]
    rc, out, _ = configs(bs, "describe", "--broker", str(node), "--all")
    assert rc == 0 and "  broker.id=%d sensitive=false synonyms={}" % node in out
    rc, _, err = configs(bs, "alter", "--broker", str(node), "--add-config",
                         "num.partitions=3")
    assert rc == 1 and "INVALID_REQUEST (42)" in err, err
    rc, _, err = configs(bs, "describe", "--topic", util.topic_name("none"))
    assert rc == 1 and "UNKNOWN_TOPIC_OR_PARTITION (3)" in err, err
    rc, _, err = configs(bs, "alter", "--topic", name, "--add-config", "nope")
    assert rc == 2


def test_usage_and_connection_errors(broker):
    bs = broker.bootstrap
    for args in (["topics"], ["topics", "frobnicate"], ["topics", "create"],
                 ["topics", "add-partitions", "t", "zero"],
                 ["topics", "create", "t", "--config", "novalue"],
                 ["topics", "alter", "t"], ["configs", "describe"],
                 ["configs", "alter", "--topic", "t"]):
        r = subprocess.run([SLUICE_BIN] + args + ["--bootstrap", bs],
                           capture_output=True, timeout=30)
        assert r.returncode == 2, (args, r)
        assert b"usage: sluice" in r.stderr
    r = subprocess.run([SLUICE_BIN, "topics", "--help"], capture_output=True)
    assert r.returncode == 0 and b"add-partitions TOPIC N" in r.stdout
    port = util.free_port()
    rc, _, err = run("127.0.0.1:%d" % port, "topics", "list")
    assert rc == 1 and err.startswith("sluice topics: cannot connect to"), err
