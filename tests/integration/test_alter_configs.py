"""test_alter_configs.py — the legacy AlterConfigs (key 33, v0-2) as
kafka-python's admin client and confluent-kafka's alter_configs send it:
Kafka's replace-all semantics (a config the request does not name goes
back to its default), validate_only, and the errors shared with
IncrementalAlterConfigs."""
import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import ConfigResource

import kproto
import util


def topic_configs(bootstrap, topic):
    """{name: (value, is_default)} from DescribeConfigs."""
    res = ConfigResource("topic", topic)
    got = util.admin(bootstrap).describe_configs([res])[res].result(15)
    return {k: (v.value, v.is_default) for k, v in got.items()}


def overrides(bootstrap, topic):
    return {k: v for k, (v, dflt) in topic_configs(bootstrap, topic).items()
            if not dflt}


def kp_admin(bootstrap):
    from kafka.admin import KafkaAdminClient
    return KafkaAdminClient(bootstrap_servers=bootstrap,
                            request_timeout_ms=15000)


def test_advertised(broker):
    """ApiVersions lists AlterConfigs 0-2 (clients pick it from there)."""
    s = kproto.connect(broker.bootstrap)
    try:
        err, versions, _ = kproto.api_versions_v0(s)
    finally:
        s.close()
    assert err == 0 and versions.get(33) == (0, 2), versions.get(33)


def test_replace_all_confluent(broker):
    b = broker.bootstrap
    t = util.create_topic(b, util.topic_name("lac"), 1,
                          config={"retention.ms": "3600000",
                                  "cleanup.policy": "delete"})
    assert overrides(b, t) == {"retention.ms": "3600000",
                               "cleanup.policy": "delete"}
    # Only max.message.bytes named: the other two go back to defaults.
    res = ConfigResource("topic", t, set_config={"max.message.bytes": "2048"})
    util.admin(b).alter_configs([res])[res].result(15)
    assert overrides(b, t) == {"max.message.bytes": "2048"}
    cfg = topic_configs(b, t)
    assert cfg["retention.ms"] == ("604800000", True)
    # validate_only: checked, nothing changes.
    res = ConfigResource("topic", t, set_config={"retention.ms": "1000"})
    util.admin(b).alter_configs([res], validate_only=True)[res].result(15)
    assert overrides(b, t) == {"max.message.bytes": "2048"}
    # A bad value is refused with INVALID_CONFIG, also in validate_only,
    # and nothing changes.
    for vo in (True, False):
        res = ConfigResource("topic", t, set_config={"retention.ms": "soon"})
        with pytest.raises(KafkaException) as ei:
            util.admin(b).alter_configs([res], validate_only=vo)[res].result(15)
        assert ei.value.args[0].code() == KafkaError.INVALID_CONFIG
    assert overrides(b, t) == {"max.message.bytes": "2048"}
    # An empty set resets everything.
    res = ConfigResource("topic", t, set_config={})
    util.admin(b).alter_configs([res])[res].result(15)
    assert overrides(b, t) == {}


def test_errors_confluent(broker):
    b = broker.bootstrap
    res = ConfigResource("topic", util.topic_name("nope"),
                         set_config={"retention.ms": "1000"})
    with pytest.raises(KafkaException) as ei:
        util.admin(b).alter_configs([res])[res].result(15)
    assert ei.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    t = util.create_topic(b, util.topic_name("lae"), 1)
    res = ConfigResource("topic", t, set_config={"no.such.config": "1"})
    with pytest.raises(KafkaException) as ei:
        util.admin(b).alter_configs([res])[res].result(15)
    assert ei.value.args[0].code() == KafkaError.INVALID_CONFIG


def test_replace_all_kafka_python(broker):
    from kafka.admin import ConfigResource as KRes, ConfigResourceType
    from kafka.protocol.admin import AlterConfigsRequest
    b = broker.bootstrap
    t = util.create_topic(b, util.topic_name("lak"), 1,
                          config={"retention.ms": "3600000"})
    admin = kp_admin(b)
    try:
        r = admin.alter_configs([KRes(ConfigResourceType.TOPIC, t,
                                      configs={"retention.bytes": "1048576"})])
        assert [(e, n) for e, _, _, n in r.resources] == [(0, t)], r
        assert overrides(b, t) == {"retention.bytes": "1048576"}
        # validate_only through the request itself (the admin client has
        # no parameter for it).
        req = AlterConfigsRequest[1](
            resources=[(2, t, [("retention.ms", "5000")])], validate_only=True)
        f = admin._send_request_to_node(admin._client.least_loaded_node(), req)
        admin._wait_for_futures([f])
        assert [(e, n) for e, _, _, n in f.value.resources] == [(0, t)]
        assert overrides(b, t) == {"retention.bytes": "1048576"}
        # Altering the broker's configs is refused (they are sluice serve's
        # flags), with a message.
        r = admin.alter_configs([KRes(ConfigResourceType.BROKER, "1",
                                      configs={"num.partitions": "3"})])
        (err, msg, _, _), = r.resources
        assert err == KafkaError.INVALID_REQUEST and msg, r
    finally:
        admin.close()
