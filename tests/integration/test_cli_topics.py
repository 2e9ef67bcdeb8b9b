"""test_cli_topics.py — `sluice topics` and `sluice configs` against a
running agent: every subcommand's round trip, checked against what
kafka-python's admin client sees, the output kafka-topics.sh and
kafka-configs.sh print, and errors as Kafka's error name with exit 1.
Also the flags every broker tool (topics, configs, groups, acls,
transactions) reads alike: --help, --bootstrap, the security flags."""
import logging
import os
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


# Each tool that talks to a broker, with a command that only reads.
BROKER_TOOLS = {"topics": ["list"], "configs": ["describe", "--broker", "1"],
                "groups": ["list"], "acls": ["list"], "transactions": ["list"]}


@pytest.mark.parametrize("tool", sorted(BROKER_TOOLS))
def test_the_flags_every_broker_tool_takes(broker, tool):
    """--help, --bootstrap and the security flags read alike by every
    tool that talks to a broker (kclient_args_parse)."""
    def call(*args, env=None):
        r = subprocess.run([SLUICE_BIN, tool] + BROKER_TOOLS[tool] + list(args),
                           capture_output=True, timeout=30, env=env)
        return r.returncode, r.stdout.decode(), r.stderr.decode()
    rc, out, err = call("--help")   # after the command's own arguments too
    assert rc == 0 and out.startswith("usage: sluice %s" % tool) and not err
    for text in ("--bootstrap (or --bootstrap-server) defaults to $SLUICE_BOOTSTRAP",
                 "usage errors exit 2", "--sasl-username NAME"):
        assert text in out, (text, out)
    for flag in ("--bootstrap", "--bootstrap-server", "--tls-ca"):
        rc, out, err = call(flag)
        assert rc == 2 and not out, err
        assert err.startswith("sluice %s: %s needs a value\nusage:" % (tool, flag)), err
    rc, _, err = call("--security-protocol", "TLS")
    assert rc == 2 and "--security-protocol is PLAINTEXT, SSL" in err, err
    # $SLUICE_BOOTSTRAP is the default; --bootstrap-server goes before it.
    port = util.free_port()
    env = dict(os.environ, SLUICE_BOOTSTRAP="127.0.0.1:%d" % port)
    rc, _, err = call(env=env)
    assert rc == 1 and "cannot connect to 127.0.0.1:%d" % port in err, err
    rc, out, err = call("--bootstrap-server", broker.bootstrap, env=env)
    # the broker answered (without an authorizer it has no ACLs to list)
    assert rc == 0 or (tool == "acls" and "SECURITY_DISABLED (54)" in err), err
    # A SASL login needs its password from $SLUICE_SASL_PASSWORD.
    env.pop("SLUICE_SASL_PASSWORD", None)
    rc, _, err = call("--bootstrap", broker.bootstrap, "--security-protocol",
                      "SASL_PLAINTEXT", "--sasl-username", "u", env=env)
    assert rc != 0 and "SLUICE_SASL_PASSWORD" in err, err
