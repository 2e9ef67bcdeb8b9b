"""The rest of issue 13's ACL matrix, API by API, against Kafka 3.9's
KafkaApis: Fetch's own READ check, ListOffsets, DescribeConfigs /
AlterConfigs / IncrementalAlterConfigs, DeleteRecords, CreatePartitions,
Describe/AlterUserScramCredentials.

Same setup as test_acls: PLAINTEXT clients are User:ANONYMOUS, a super
user, so the setup needs no ACL; the users log in with PLAIN on a
SASL_PLAINTEXT listener. Each test has its own user so their ACLs do not
meet. Requests the client libraries cannot send alone are sent raw on a
logged-in socket (kproto), where the error code is seen exactly."""
import os
import time

import pytest
from confluent_kafka import Consumer, KafkaError
from confluent_kafka import TopicPartition as TP
from kafka.admin import (ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                         ConfigResource, ConfigResourceType, NewPartitions,
                         ResourcePatternFilter, ResourceType)

from kafka.errors import TopicAuthorizationFailedError

import kproto
import util
from conftest import Broker, _require_binary
from test_acls import (PASSWORD, acl, add_acls, kp_admin, remove_acls, sasl_ck, sasl_kp,
                       users)
from test_sasl import alter_scram, describe_scram, plain_login, salted
from util import free_port

TOPIC_AUTHORIZATION_FAILED = 29
GROUP_AUTHORIZATION_FAILED = 30
CLUSTER_AUTHORIZATION_FAILED = 31
INT32_MIN = -2 ** 31
JS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js")
USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "gus", "hank", "ivy", "root")


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    _require_binary()
    data = tmp_path_factory.mktemp("aclm") / "data"
    for u in USERS:
        users(data, "add", u, "--mechanism", "SCRAM-SHA-256", "--password-stdin")
    plain, sasl = free_port(), free_port()
    b = Broker(data, ["--listen", "PLAINTEXT://127.0.0.1:%d,SASL_PLAINTEXT://127.0.0.1:%d"
                      % (plain, sasl), "--authorizer", "acl",
                      "--super-users", "User:ANONYMOUS,User:root"], port=plain)
    b.sasl_bootstrap = "127.0.0.1:%d" % sasl
    b.start()
    yield b
    b.teardown()


class login:
    """A raw socket on the SASL listener, logged in as user with PLAIN."""

    def __init__(self, b, user):
        self.s = kproto.connect(b.sasl_bootstrap)
        assert plain_login(self.s, user, PASSWORD)[0] == 0

    def __enter__(self):
        return self.s

    def __exit__(self, *exc):
        self.s.close()


def wait_acls():
    """Past the agent's 250 ms poll (made here, so it polled at once; a
    margin for the slow shared machine)."""
    time.sleep(0.6)


def topics_with_data(b, prefix, n=2):
    names = [util.topic_name(prefix) for _ in range(n)]
    for t in names:
        util.create_topic(b.bootstrap, t)
        util.ck_produce(b.bootstrap, t, util.make_messages(3, seed=5))
    return names


def flex_roundtrip(sock, key, version, body, cid=77):
    sock.sendall(kproto.request_v2(key, version, cid, body))
    got, data = kproto.recv_response(sock)
    assert got == cid
    r = kproto.FlexReader(data)
    r.tags()  # response header v1
    return r


# --- Fetch --------------------------------------------------------------------


def test_fetch_needs_read(broker):
    """DESCRIBE lets alice see the topic, but Fetch itself checks READ:
    librdkafka's assigned consumer gets TOPIC_AUTHORIZATION_FAILED from
    the fetch; with READ the same consumer reads the records."""
    t, = topics_with_data(broker, "fr", 1)
    # the group's READ too: librdkafka looks its coordinator up first
    add_acls(broker, acl("User:alice", ACLOperation.DESCRIBE, ResourceType.TOPIC, t),
             acl("User:alice", ACLOperation.READ, ResourceType.GROUP, "fr-" + t))
    wait_acls()

    def first_poll():
        c = Consumer(sasl_ck(broker, "alice", **{"group.id": "fr-" + t,
                                                  "enable.auto.commit": False}))
        c.assign([TP(t, 0, 0)])
        deadline = time.monotonic() + 15
        try:
            while time.monotonic() < deadline:
                m = c.poll(0.5)
                if m is not None:
                    return m
        finally:
            c.close()
    m = first_poll()
    assert m is not None and m.error() is not None
    assert m.error().code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    add_acls(broker, acl("User:alice", ACLOperation.READ, ResourceType.TOPIC, t))
    wait_acls()
    m = first_poll()
    assert m is not None and m.error() is None and m.offset() == 0


# --- ListOffsets --------------------------------------------------------------


def list_offsets_v1(sock, topic_parts, timestamp=-1):
    """ListOffsets v1: {(topic, partition): (error, offset)}."""
    body = kproto.i32(-1) + kproto.array(
        kproto.string(t) + kproto.array(kproto.i32(p) + kproto.i64(timestamp) for p in parts)
        for t, parts in topic_parts.items())
    r = kproto.Reader(kproto.roundtrip(sock, 2, 1, body))
    out = {}

    def topic():
        name = r.string()

        def part():
            p, err = r.i32(), r.i16()
            r.i64()
            out[(name, p)] = (err, r.i64())
        r.array(part)
    r.array(topic)
    assert r.done()
    return out


def test_list_offsets_needs_describe(broker):
    """ListOffsets: DESCRIBE on the topic (READ implies it); one without
    it gets TOPIC_AUTHORIZATION_FAILED per partition, also for a topic
    that does not exist (the check comes first)."""
    ok, other = topics_with_data(broker, "lo")
    add_acls(broker, acl("User:bob", ACLOperation.READ, ResourceType.TOPIC, ok))
    wait_acls()
    with login(broker, "bob") as s:
        got = list_offsets_v1(s, {ok: [0], other: [0], "no-such-" + ok: [0]})
    assert got == {(ok, 0): (0, 3), (other, 0): (TOPIC_AUTHORIZATION_FAILED, -1),
                   ("no-such-" + ok, 0): (TOPIC_AUTHORIZATION_FAILED, -1)}


# --- configs ------------------------------------------------------------------


def test_configs(broker):
    """DescribeConfigs needs DESCRIBE_CONFIGS (ALTER_CONFIGS implies it),
    AlterConfigs and IncrementalAlterConfigs ALTER_CONFIGS: on the topic
    (TOPIC_AUTHORIZATION_FAILED) or the cluster for a broker
    (CLUSTER_AUTHORIZATION_FAILED), each resource on its own."""
    ok, other = topics_with_data(broker, "cfg")
    add_acls(broker, acl("User:carol", ACLOperation.ALTER_CONFIGS, ResourceType.TOPIC, ok))
    wait_acls()
    a = kp_admin(broker.sasl_bootstrap, **sasl_kp("carol"))
    try:
        def described(rtype, name):
            resp = a.describe_configs([ConfigResource(rtype, name)])
            return [(r[0], r[3]) for x in resp for r in x.resources]
        assert described(ConfigResourceType.TOPIC, ok) == [(0, ok)]
        assert described(ConfigResourceType.TOPIC, other) == [(TOPIC_AUTHORIZATION_FAILED, other)]
        assert described(ConfigResourceType.BROKER, "1") == [(CLUSTER_AUTHORIZATION_FAILED, "1")]
        resp = a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, ok,
                                               configs={"retention.ms": "3600000"}),
                                ConfigResource(ConfigResourceType.TOPIC, other,
                                               configs={"retention.ms": "3600000"})])
        assert sorted((r[0], r[3]) for r in resp.resources) == sorted(
            [(0, ok), (TOPIC_AUTHORIZATION_FAILED, other)])
    finally:
        a.close()
    with login(broker, "carol") as s:
        got = kproto.incremental_alter_configs_many_v0(s, [
            (2, ok, [("retention.ms", kproto.OP_SET, "7200000")]),
            (2, other, [("retention.ms", kproto.OP_SET, "7200000")]),
            (4, "1", [("log.retention.ms", kproto.OP_SET, "7200000")])])
    assert [(e, n) for e, _, _, n in got] == [
        (0, ok), (TOPIC_AUTHORIZATION_FAILED, other), (CLUSTER_AUTHORIZATION_FAILED, "1")]
    a = kp_admin(broker.bootstrap)
    try:
        resp = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, ok)])
        entries = {e[0]: e[1] for x in resp for r in x.resources for e in r[4]}
        assert entries["retention.ms"] == "7200000"
    finally:
        a.close()


# --- DeleteRecords, CreatePartitions ---------------------------------------------


def test_delete_records_and_create_partitions(broker):
    """DeleteRecords needs DELETE on the topic, CreatePartitions ALTER;
    refused per topic with TOPIC_AUTHORIZATION_FAILED, before the topic's
    existence is looked at; granted ones do what they say."""
    ok, other = topics_with_data(broker, "dr")
    add_acls(broker, acl("User:dave", ACLOperation.DELETE, ResourceType.TOPIC, ok),
             acl("User:dave", ACLOperation.ALTER, ResourceType.TOPIC, ok))
    wait_acls()
    with login(broker, "dave") as s:
        for version in (0, 2):
            got = kproto.delete_records(s, {ok: {0: 1 + version}, other: {0: 1},
                                            "gone-" + ok: {0: 1}}, version=version)
            assert got == {(ok, 0): (0, 1 + version), (other, 0): (TOPIC_AUTHORIZATION_FAILED, -1),
                           ("gone-" + ok, 0): (TOPIC_AUTHORIZATION_FAILED, -1)}
    a = kp_admin(broker.sasl_bootstrap, **sasl_kp("dave"))
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            a.create_partitions({other: NewPartitions(2)})
        a.create_partitions({ok: NewPartitions(2)})
    finally:
        a.close()
    util.wait_topic(broker.bootstrap, ok, 2)


# --- SCRAM credentials ------------------------------------------------------------


def test_scram_credential_apis(broker):
    """DescribeUserScramCredentials needs DESCRIBE on the cluster (the
    whole response refused), AlterUserScramCredentials ALTER (every user
    refused); with them erin describes and adds a user."""
    salt = os.urandom(16)
    change = ("newbie", 2, 4096, salt, salted(2, "n-pass", salt, 4096))
    with login(broker, "erin") as s:
        # Kafka's getErrorResponse: the code and its default message
        top, _ = describe_scram(s, None)
        assert top == (CLUSTER_AUTHORIZATION_FAILED, "Cluster authorization failed.")
        # (this crashed the agent: a refusal without a message)
        assert alter_scram(s, upsertions=[change]) == {
            "newbie": (CLUSTER_AUTHORIZATION_FAILED, "Cluster authorization failed.")}
    add_acls(broker, acl("User:erin", ACLOperation.ALTER, ResourceType.CLUSTER, "kafka-cluster"))
    wait_acls()
    with login(broker, "erin") as s:
        assert alter_scram(s, upsertions=[change]) == {"newbie": (0, None)}
        top, res = describe_scram(s, ["newbie"])  # ALTER implies DESCRIBE
        assert top[0] == 0 and res["newbie"][0] == 0
    remove_acls(broker, ACLFilter("User:erin", None, ACLOperation.ANY, ACLPermissionType.ANY,
                                  ResourcePatternFilter(ResourceType.CLUSTER, "kafka-cluster",
                                                        ACLResourcePatternType.LITERAL)))
