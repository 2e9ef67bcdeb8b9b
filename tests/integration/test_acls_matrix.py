"""The rest of issue 13's ACL matrix, API by API, against Kafka 3.9's
KafkaApis: Fetch's own READ check, ListOffsets, DescribeConfigs /
AlterConfigs / IncrementalAlterConfigs, DeleteRecords, CreatePartitions,
Describe/AlterUserScramCredentials, OffsetFetch's per-topic refusal (v8
per group), OffsetDelete's topic READ, the transaction APIs' checks on the
transactional id and topics, the authorized_operations fields of
Metadata, DescribeCluster and DescribeGroups; ACLs made through
librdkafka's admin API (what confluent-kafka wraps: the Debian
confluent-kafka 1.7 module has no ACL calls, its librdkafka 2.0 has) and
kafkajs's; and two agents on one PostgreSQL, where an ACL made through
one counts at the other within 1 s.

Same setup as test_acls: PLAINTEXT clients are User:ANONYMOUS, a super
user, so the setup needs no ACL; the users log in with PLAIN on a
SASL_PLAINTEXT listener. Each test has its own user so their ACLs do not
meet. Requests the client libraries cannot send alone are sent raw on a
logged-in socket (kproto), where the error code is seen exactly."""
import ctypes
import ctypes.util
import json
import os
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka import TopicPartition as TP
from kafka.admin import (ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                         ConfigResource, ConfigResourceType, NewPartitions,
                         ResourcePatternFilter, ResourceType)

from kafka import KafkaConsumer
from kafka.errors import TopicAuthorizationFailedError

import kproto
import util
from conftest import SLUICE_BIN
from test_acls import (PASSWORD, acl, acl_broker, add_acls, ck_produce_error, kp_admin,
                       remove_acls, sasl_ck, sasl_kp)
from test_sasl import alter_scram, describe_scram, plain_login, salted
from util import free_port

TOPIC_AUTHORIZATION_FAILED = 29
GROUP_AUTHORIZATION_FAILED = 30
CLUSTER_AUTHORIZATION_FAILED = 31
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
OPERATION_NOT_ATTEMPTED = 55
INT32_MIN = -2 ** 31
# Kafka's wire codes: resource, pattern, operation, permission
TOPIC, LITERAL, PREFIXED, ANY, MATCH = 2, 3, 4, 1, 2
READ, WRITE, ALLOW, DENY = 3, 4, 3, 2
JS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js")
USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "gus", "hank", "ivy", "judy", "root")


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = acl_broker(tmp_path_factory, "aclm", USERS)
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


# --- transactions -------------------------------------------------------------


def find_txn_coordinator_v1(sock, txn_id):
    """FindCoordinator v1 for a transactional id (key type 1): the error."""
    return kproto.find_coordinator_v1(sock, txn_id, 1)[0]


def test_transactions_need_transactional_id_write(broker):
    """Kafka 3.9's checks of the transaction APIs: without an ACL on the
    transactional id FindCoordinator (DESCRIBE) and InitProducerId (WRITE)
    answer TRANSACTIONAL_ID_AUTHORIZATION_FAILED, as does a transactional
    Produce under it; with WRITE on it, AddPartitionsToTxn refuses a topic
    judy may not write (TOPIC_AUTHORIZATION_FAILED, the other partition
    OPERATION_NOT_ATTEMPTED), and librdkafka's transaction to the topic
    she may write commits."""
    ok, no = (util.create_topic(broker.bootstrap, util.topic_name(p)) for p in ("txw", "txn"))
    tid = "tx-" + ok
    with login(broker, "judy") as s:
        assert find_txn_coordinator_v1(s, tid) == TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        assert kproto.init_producer_id_v1(s, tid) == (TRANSACTIONAL_ID_AUTHORIZATION_FAILED, -1, -1)
        batch = kproto.record_batch([(b"k", b"v", [])], producer_id=1, producer_epoch=0,
                                    base_sequence=0, attributes=0x10)
        # before the topic's WRITE and the acks (checked at the append)
        res = kproto.produce_v3(s, {ok: {0: batch}}, acks=2, transactional_id=tid)
        assert res[(ok, 0)][0] == TRANSACTIONAL_ID_AUTHORIZATION_FAILED, res
        res = kproto.produce_v3(s, {no: {0: kproto.record_batch([(b"k", b"v", [])])}}, acks=2)
        assert res[(no, 0)][0] == TOPIC_AUTHORIZATION_FAILED, res
    add_acls(broker, acl("User:judy", ACLOperation.WRITE, ResourceType.TRANSACTIONAL_ID, tid),
             acl("User:judy", ACLOperation.WRITE, ResourceType.TOPIC, ok))
    wait_acls()
    with login(broker, "judy") as s:
        assert find_txn_coordinator_v1(s, tid) == 0  # WRITE implies DESCRIBE
        err, pid, epoch = kproto.init_producer_id_v1(s, tid)
        assert err == 0 and pid >= 0
        res = kproto.add_partitions_to_txn_v1(s, tid, pid, epoch, {ok: [0], no: [0]})
        assert res == {(no, 0): TOPIC_AUTHORIZATION_FAILED,
                       (ok, 0): OPERATION_NOT_ATTEMPTED}, res
    p = Producer(sasl_ck(broker, "judy", **{"transactional.id": tid, "linger.ms": 5}))
    p.init_transactions(30)
    p.begin_transaction()
    p.produce(ok, b"committed")
    p.commit_transaction(30)
    got = util.consume_all(broker.bootstrap, ok, 1, 1, **{"isolation.level": "read_committed"})
    assert [m.value for m in got[0]] == [b"committed"]


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


# --- OffsetFetch, OffsetDelete ----------------------------------------------------------


def offset_fetch_v8(sock, groups):
    """OffsetFetch v8: groups {group: [(topic, [partitions])] or None (all)}.
    Returns {group: (error, {(topic, partition): (error, offset)})}."""
    cs, ca = kproto.compact_string, kproto.compact_array
    body = ca(cs(g) + (b"\0" if topics is None else ca(
        cs(t) + ca(kproto.i32(p) for p in parts) + b"\0" for t, parts in topics)) + b"\0"
        for g, topics in groups.items()) + kproto.i8(0) + b"\0"
    r = flex_roundtrip(sock, 9, 8, body)
    r.i32()
    out = {}

    def group():
        gid = r.cstring()
        parts = {}

        def topic():
            name = r.cstring()

            def part():
                p, off = r.i32(), r.i64()
                r.i32()
                r.cstring()
                parts[(name, p)] = (r.i16(), off)
                r.tags()
            r.carray(part)
            r.tags()
        r.carray(topic)
        out[gid] = (r.i16(), parts)
        r.tags()
    r.carray(group)
    r.tags()
    assert r.done()
    return out


def offset_delete_v0(sock, group, topic_parts):
    body = kproto.string(group) + kproto.array(
        kproto.string(t) + kproto.array(kproto.i32(p) for p in parts)
        for t, parts in topic_parts.items())
    r = kproto.Reader(kproto.roundtrip(sock, 47, 0, body))
    err = r.i16()
    r.i32()
    out = {}

    def topic():
        name = r.string()

        def part():
            p = r.i32()
            out[(name, p)] = r.i16()
        r.array(part)
    r.array(topic)
    assert r.done()
    return err, out


def commit(b, group, offsets):
    """Committed as User:ANONYMOUS (a super user) with librdkafka."""
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    try:
        c.commit(offsets=[TP(t, p, o) for (t, p), o in offsets.items()], asynchronous=False)
    finally:
        c.close()


def test_offset_fetch_per_topic(broker):
    """OffsetFetch needs DESCRIBE on the group, and Kafka refuses each
    partition of a listed topic the principal may not describe
    (TOPIC_AUTHORIZATION_FAILED, offset -1) and leaves such topics out of
    the all-topics form; v8 answers GROUP_AUTHORIZATION_FAILED per group.
    librdkafka's committed() sees the same per-partition error."""
    ok, hidden = topics_with_data(broker, "of")
    g, g2 = "of-" + ok, "of2-" + ok
    commit(broker, g, {(ok, 0): 2, (hidden, 0): 1})
    add_acls(broker, acl("User:frank", ACLOperation.READ, ResourceType.GROUP, g),
             acl("User:frank", ACLOperation.DESCRIBE, ResourceType.TOPIC, ok))
    wait_acls()
    with login(broker, "frank") as s:
        got = offset_fetch_v8(s, {g: [(ok, [0]), (hidden, [0])], g2: [(ok, [0])], })
        assert got[g] == (0, {(ok, 0): (0, 2), (hidden, 0): (TOPIC_AUTHORIZATION_FAILED, -1)})
        assert got[g2][0] == GROUP_AUTHORIZATION_FAILED
        assert offset_fetch_v8(s, {g: None}) == {g: (0, {(ok, 0): (0, 2)})}
    c = Consumer(sasl_ck(broker, "frank", **{"group.id": g}))
    try:
        got = c.committed([TP(ok, 0), TP(hidden, 0)], timeout=10)
    finally:
        c.close()
    assert got[0].error is None and got[0].offset == 2
    assert got[1].error is not None
    assert got[1].error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_offset_delete_needs_topic_read(broker):
    """OffsetDelete: DELETE on the group, then READ on each topic
    (TOPIC_AUTHORIZATION_FAILED per partition, before the topic's
    existence); an authorized topic's offsets go."""
    ok, other = topics_with_data(broker, "od")
    g = "od-" + ok
    commit(broker, g, {(ok, 0): 2, (other, 0): 1})
    with login(broker, "gus") as s:
        assert offset_delete_v0(s, g, {ok: [0]}) == (GROUP_AUTHORIZATION_FAILED, {})
    add_acls(broker, acl("User:gus", ACLOperation.DELETE, ResourceType.GROUP, g),
             acl("User:gus", ACLOperation.READ, ResourceType.TOPIC, ok),
             acl("User:gus", ACLOperation.DESCRIBE, ResourceType.TOPIC, other))
    wait_acls()
    with login(broker, "gus") as s:
        assert offset_delete_v0(s, g, {ok: [0], other: [0], "gone-" + ok: [0]}) == (0, {
            (ok, 0): 0, (other, 0): TOPIC_AUTHORIZATION_FAILED,
            ("gone-" + ok, 0): TOPIC_AUTHORIZATION_FAILED})
    with kproto.connect(broker.bootstrap) as s:
        got = offset_fetch_v8(s, {g: None})
    assert got[g] == (0, {(other, 0): (0, 1)})


# --- authorized operations ---------------------------------------------------------------


def metadata_v8(sock, topics, cluster_ops, topic_ops):
    body = (kproto.array([kproto.string(t) for t in topics]) if topics is not None
            else kproto.i32(-1)) + kproto.i8(0) + kproto.i8(cluster_ops) + kproto.i8(topic_ops)
    r = kproto.Reader(kproto.roundtrip(sock, 3, 8, body))
    r.i32()
    r.array(lambda: (r.i32(), r.string(), r.i32(), r.string()))
    r.string()
    r.i32()
    out = {}

    def topic():
        err, name = r.i16(), r.string()
        r.i8()
        r.array(lambda: (r.i16(), r.i32(), r.i32(), r.i32(), r.array(r.i32), r.array(r.i32),
                         r.array(r.i32)))
        out[name] = (err, r.i32())
    r.array(topic)
    cluster = r.i32()
    assert r.done()
    return cluster, out


def describe_cluster_v0(sock, include):
    r = flex_roundtrip(sock, 60, 0, kproto.i8(1 if include else 0) + b"\0")
    r.i32()
    err = r.i16()
    r.cstring()
    r.cstring()
    r.i32()

    def broker_():
        r.i32(), r.cstring(), r.i32(), r.cstring()
        r.tags()
    r.carray(broker_)
    ops = r.i32()
    r.tags()
    assert r.done()
    return err, ops


def describe_groups_v3(sock, groups, include):
    body = kproto.array([kproto.string(g) for g in groups]) + kproto.i8(1 if include else 0)
    r = kproto.Reader(kproto.roundtrip(sock, 15, 3, body))
    r.i32()
    out = {}

    def group():
        err, gid = r.i16(), r.string()
        r.string(), r.string(), r.string()
        r.array(lambda: (r.string(), r.string(), r.string(), r.take(r.i32()), r.take(r.i32())))
        out[gid] = (err, r.i32())
    r.array(group)
    assert r.done()
    return out


def bits(*ops):
    return sum(1 << op for op in ops)


def test_authorized_operations(broker):
    """Kafka's authorizedOperations: the supported operations the
    principal may do, as a bit per AclOperation code, implications
    included; INT32_MIN when not asked; the cluster's is 0 without
    DESCRIBE on it; refused topics and groups keep INT32_MIN."""
    t, hidden = topics_with_data(broker, "ao")
    g = "ao-" + t
    commit(broker, g, {(t, 0): 1})
    add_acls(broker, acl("User:hank", ACLOperation.READ, ResourceType.TOPIC, t),
             acl("User:hank", ACLOperation.ALTER_CONFIGS, ResourceType.TOPIC, t),
             acl("User:hank", ACLOperation.READ, ResourceType.GROUP, g),
             acl("User:hank", ACLOperation.IDEMPOTENT_WRITE, ResourceType.CLUSTER,
                 "kafka-cluster"))
    wait_acls()
    R, W, C, D, AL, DE = (ACLOperation.READ, ACLOperation.WRITE, ACLOperation.CREATE,
                          ACLOperation.DELETE, ACLOperation.ALTER, ACLOperation.DESCRIBE)
    topic_ops = bits(R, DE, ACLOperation.ALTER_CONFIGS, ACLOperation.DESCRIBE_CONFIGS)
    with login(broker, "hank") as s:
        cluster, topics = metadata_v8(s, [t, hidden], True, True)
        assert cluster == 0  # no DESCRIBE on the cluster
        assert topics == {t: (0, topic_ops), hidden: (TOPIC_AUTHORIZATION_FAILED, INT32_MIN)}
        cluster, topics = metadata_v8(s, None, False, False)
        assert cluster == INT32_MIN and topics == {t: (0, INT32_MIN)}
        assert describe_cluster_v0(s, True) == (0, 0)
        assert describe_cluster_v0(s, False) == (0, INT32_MIN)
        assert describe_groups_v3(s, [g, "other-" + g], True) == {
            g: (0, bits(R, DE)), "other-" + g: (GROUP_AUTHORIZATION_FAILED, INT32_MIN)}
        assert describe_groups_v3(s, [g], False) == {g: (0, INT32_MIN)}
    add_acls(broker, acl("User:hank", ACLOperation.DESCRIBE, ResourceType.CLUSTER,
                         "kafka-cluster"))
    wait_acls()
    with login(broker, "hank") as s:
        assert describe_cluster_v0(s, True) == (0, bits(DE, ACLOperation.IDEMPOTENT_WRITE))
        assert metadata_v8(s, [t], True, False)[0] == bits(DE, ACLOperation.IDEMPOTENT_WRITE)
    # A super user (ANONYMOUS here): every supported operation.
    with kproto.connect(broker.bootstrap) as s:
        assert metadata_v8(s, [t], True, True) == (
            bits(C, ACLOperation.CLUSTER_ACTION, ACLOperation.DESCRIBE_CONFIGS,
                 ACLOperation.ALTER_CONFIGS, ACLOperation.IDEMPOTENT_WRITE, AL, DE),
            {t: (0, bits(R, W, C, DE, D, AL, ACLOperation.DESCRIBE_CONFIGS,
                         ACLOperation.ALTER_CONFIGS))})
        assert describe_groups_v3(s, [g], True) == {g: (0, bits(R, DE, D))}


def acl_filter_bytes(rtype, name, pattern, principal, host, op, perm):
    return (kproto.i8(rtype) + kproto.string(name) + kproto.i8(pattern) +
            kproto.string(principal) + kproto.string(host) + kproto.i8(op) + kproto.i8(perm))


def test_without_authorizer(broker_factory):
    """No authorizer: the ACL APIs answer SECURITY_DISABLED with Kafka
    3.9's AclApis messages (DescribeAcls has its own), and authorized
    operations are every supported one, as Kafka's AuthHelper."""
    b = broker_factory()
    with kproto.connect(b.bootstrap) as s:
        r = kproto.Reader(kproto.roundtrip(s, 29, 1, acl_filter_bytes(
            ANY, None, ANY, None, None, ANY, ANY)))
        r.i32()
        assert (r.i16(), r.string()) == (54, "No Authorizer is configured on the broker")
        r = kproto.Reader(kproto.roundtrip(s, 30, 1, kproto.array(
            [acl_filter_bytes(TOPIC, "t", LITERAL, "User:a", "*", READ, ALLOW)] * 2)))
        r.i32()
        assert r.array(lambda: (r.i16(), r.string())) == [
            (54, "No Authorizer is configured.")] * 2
        r = kproto.Reader(kproto.roundtrip(s, 31, 1, kproto.array(
            [acl_filter_bytes(ANY, None, ANY, None, None, ANY, ANY)])))
        r.i32()
        assert (r.i32(), r.i16(), r.string(), r.i32()) == (
            1, 54, "No Authorizer is configured.", 0)
    t = util.create_topic(b.bootstrap, util.topic_name("noauth"))
    with kproto.connect(b.bootstrap) as s:
        cluster, topics = metadata_v8(s, [t], True, True)
        assert cluster == bits(ACLOperation.CREATE, ACLOperation.CLUSTER_ACTION,
                               ACLOperation.DESCRIBE_CONFIGS, ACLOperation.ALTER_CONFIGS,
                               ACLOperation.IDEMPOTENT_WRITE, ACLOperation.ALTER,
                               ACLOperation.DESCRIBE)
        assert topics[t][1] == bits(ACLOperation.READ, ACLOperation.WRITE, ACLOperation.CREATE,
                                    ACLOperation.DESCRIBE, ACLOperation.DELETE,
                                    ACLOperation.ALTER, ACLOperation.DESCRIBE_CONFIGS,
                                    ACLOperation.ALTER_CONFIGS)
        assert describe_cluster_v0(s, True) == (0, cluster)


# --- ACLs made by other admin clients ------------------------------------------------


class Rdkafka:
    """librdkafka's admin API through ctypes: what confluent-kafka's
    AdminClient.create_acls/describe_acls/delete_acls call (the Debian
    confluent-kafka 1.7 module predates them; its librdkafka 2.0 has
    them). Logs in as root (a super user) with PLAIN."""

    def __init__(self, b):
        path = ctypes.util.find_library("rdkafka")
        if not path:
            pytest.fail("librdkafka is not installed")
        L = self.L = ctypes.CDLL(path)
        vp, cp, sz, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int
        for name, res, args in (
                ("rd_kafka_conf_new", vp, []),
                ("rd_kafka_conf_set", i, [vp, cp, cp, cp, sz]),
                ("rd_kafka_new", vp, [i, vp, cp, sz]),
                ("rd_kafka_destroy", None, [vp]),
                ("rd_kafka_queue_new", vp, [vp]),
                ("rd_kafka_queue_destroy", None, [vp]),
                ("rd_kafka_queue_poll", vp, [vp, i]),
                ("rd_kafka_event_destroy", None, [vp]),
                ("rd_kafka_event_error", i, [vp]),
                ("rd_kafka_event_error_string", cp, [vp]),
                ("rd_kafka_AclBinding_new", vp, [i, cp, i, cp, cp, i, i, cp, sz]),
                ("rd_kafka_AclBindingFilter_new", vp, [i, cp, i, cp, cp, i, i, cp, sz]),
                ("rd_kafka_AclBinding_destroy", None, [vp]),
                ("rd_kafka_CreateAcls", None, [vp, ctypes.POINTER(vp), sz, vp, vp]),
                ("rd_kafka_DescribeAcls", None, [vp, vp, vp, vp]),
                ("rd_kafka_DeleteAcls", None, [vp, ctypes.POINTER(vp), sz, vp, vp]),
                ("rd_kafka_event_CreateAcls_result", vp, [vp]),
                ("rd_kafka_event_DescribeAcls_result", vp, [vp]),
                ("rd_kafka_event_DeleteAcls_result", vp, [vp]),
                ("rd_kafka_CreateAcls_result_acls", ctypes.POINTER(vp), [vp, ctypes.POINTER(sz)]),
                ("rd_kafka_DescribeAcls_result_acls", ctypes.POINTER(vp),
                 [vp, ctypes.POINTER(sz)]),
                ("rd_kafka_DeleteAcls_result_responses", ctypes.POINTER(vp),
                 [vp, ctypes.POINTER(sz)]),
                ("rd_kafka_DeleteAcls_result_response_error", vp, [vp]),
                ("rd_kafka_DeleteAcls_result_response_matching_acls", ctypes.POINTER(vp),
                 [vp, ctypes.POINTER(sz)]),
                ("rd_kafka_acl_result_error", vp, [vp]),
                ("rd_kafka_error_code", i, [vp]),
                ("rd_kafka_AclBinding_name", cp, [vp]),
                ("rd_kafka_AclBinding_principal", cp, [vp]),
                ("rd_kafka_AclBinding_operation", i, [vp]),
                ("rd_kafka_AclBinding_permission_type", i, [vp])):
            f = getattr(L, name)
            f.restype, f.argtypes = res, args
        conf = L.rd_kafka_conf_new()
        err = ctypes.create_string_buffer(512)
        for k, v in (("bootstrap.servers", b.sasl_bootstrap),
                     ("security.protocol", "SASL_PLAINTEXT"), ("sasl.mechanisms", "PLAIN"),
                     ("sasl.username", "root"), ("sasl.password", PASSWORD)):
            assert L.rd_kafka_conf_set(conf, k.encode(), v.encode(), err, 512) == 0, err.value
        self.rk = L.rd_kafka_new(0, conf, err, 512)
        assert self.rk, err.value
        self.q = L.rd_kafka_queue_new(self.rk)

    def close(self):
        self.L.rd_kafka_queue_destroy(self.q)
        self.L.rd_kafka_destroy(self.rk)

    def _bindings(self, new, acls):
        err = ctypes.create_string_buffer(512)
        out = (ctypes.c_void_p * len(acls))()
        for k, (rtype, name, pattern, principal, host, op, perm) in enumerate(acls):
            out[k] = new(rtype, name and name.encode(), pattern, principal and principal.encode(),
                         host and host.encode(), op, perm, err, 512)
            assert out[k], err.value
        return out

    def _result(self, get):
        ev = self.L.rd_kafka_queue_poll(self.q, 15000)
        assert ev, "no admin result in 15 s"
        try:
            assert self.L.rd_kafka_event_error(ev) == 0, \
                self.L.rd_kafka_event_error_string(ev)
            return get(ev)
        finally:
            self.L.rd_kafka_event_destroy(ev)

    def create(self, acls):
        """The error code of each creation."""
        L = self.L
        b = self._bindings(L.rd_kafka_AclBinding_new, acls)
        L.rd_kafka_CreateAcls(self.rk, b, len(acls), None, self.q)
        for x in b:
            L.rd_kafka_AclBinding_destroy(x)

        def get(ev):
            n = ctypes.c_size_t()
            rs = L.rd_kafka_CreateAcls_result_acls(L.rd_kafka_event_CreateAcls_result(ev),
                                                   ctypes.byref(n))
            return [L.rd_kafka_error_code(L.rd_kafka_acl_result_error(rs[k]))
                    if L.rd_kafka_acl_result_error(rs[k]) else 0 for k in range(n.value)]
        return self._result(get)

    def _describe_list(self, arr, n):
        L = self.L
        return sorted((L.rd_kafka_AclBinding_name(arr[k]).decode(),
                       L.rd_kafka_AclBinding_principal(arr[k]).decode(),
                       L.rd_kafka_AclBinding_operation(arr[k]),
                       L.rd_kafka_AclBinding_permission_type(arr[k])) for k in range(n))

    def describe(self, f):
        L = self.L
        b = self._bindings(L.rd_kafka_AclBindingFilter_new, [f])
        L.rd_kafka_DescribeAcls(self.rk, b[0], None, self.q)
        L.rd_kafka_AclBinding_destroy(b[0])

        def get(ev):
            n = ctypes.c_size_t()
            arr = L.rd_kafka_DescribeAcls_result_acls(L.rd_kafka_event_DescribeAcls_result(ev),
                                                      ctypes.byref(n))
            return self._describe_list(arr, n.value)
        return self._result(get)

    def delete(self, filters):
        """Per filter: the ACLs it deleted."""
        L = self.L
        b = self._bindings(L.rd_kafka_AclBindingFilter_new, filters)
        L.rd_kafka_DeleteAcls(self.rk, b, len(filters), None, self.q)
        for x in b:
            L.rd_kafka_AclBinding_destroy(x)

        def get(ev):
            n = ctypes.c_size_t()
            rs = L.rd_kafka_DeleteAcls_result_responses(L.rd_kafka_event_DeleteAcls_result(ev),
                                                        ctypes.byref(n))
            out = []
            for k in range(n.value):
                assert not L.rd_kafka_DeleteAcls_result_response_error(rs[k])
                m = ctypes.c_size_t()
                arr = L.rd_kafka_DeleteAcls_result_response_matching_acls(rs[k], ctypes.byref(m))
                out.append(self._describe_list(arr, m.value))
            return out
        return self._result(get)




def test_acls_made_by_librdkafka(broker):
    """librdkafka's CreateAcls, DescribeAcls and DeleteAcls (as root over
    SASL): what they make the authorizer enforces, kafka-python describes
    it, a bad binding is refused INVALID_REQUEST."""
    t, = topics_with_data(broker, "rdk", 1)
    rk = Rdkafka(broker)
    try:
        assert rk.create([(TOPIC, t, LITERAL, "User:ivy", "*", WRITE, ALLOW),
                          (TOPIC, t[:4], PREFIXED, "User:ivy", "*", READ, DENY),
                          (TOPIC, t, LITERAL, "ivy", "*", READ, ALLOW)]) == [0, 0, 42]
        assert rk.describe((TOPIC, t, MATCH, None, None, ANY, ANY)) == sorted(
            [(t, "User:ivy", WRITE, ALLOW), (t[:4], "User:ivy", READ, DENY)])
        a = kp_admin(broker.bootstrap)
        try:
            acls, _ = a.describe_acls(ACLFilter("User:ivy", None, ACLOperation.ANY,
                                                ACLPermissionType.ANY,
                                                ResourcePatternFilter(ResourceType.TOPIC, t,
                                                                      ACLResourcePatternType.ANY)))
        finally:
            a.close()
        assert [(x.operation, x.permission_type) for x in acls] == [
            (ACLOperation.WRITE, ACLPermissionType.ALLOW)]
        wait_acls()
        assert ck_produce_error(broker, "ivy", t) is None
        assert rk.delete([(TOPIC, t, LITERAL, "User:ivy", None, WRITE, ANY),
                          (TOPIC, t[:4], PREFIXED, None, None, ANY, ANY)]) == [
            [(t, "User:ivy", WRITE, ALLOW)], [(t[:4], "User:ivy", READ, DENY)]]
        wait_acls()
        err = ck_produce_error(broker, "ivy", t)
        assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    finally:
        rk.close()


def kafkajs_acls(b, user, what, arg):
    if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "kafkajs")):
        pytest.fail("kafkajs is not installed in %s/node_modules" % JS_DIR)
    env = dict(os.environ, SLUICE_JS_SASL="plain:%s:%s" % (user, PASSWORD))
    r = subprocess.run(["node", os.path.join(JS_DIR, "acls.js"), b.sasl_bootstrap, what,
                        json.dumps(arg)], capture_output=True, timeout=120, cwd=JS_DIR, env=env)
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    return json.loads(r.stdout.decode().splitlines()[-1])


def test_acls_made_by_kafkajs(broker):
    """kafkajs's createAcls, describeAcls, deleteAcls as root: what they
    make counts (ivy's group READ lets her consume with kafka-python);
    one without ALTER on the cluster (ivy) is refused
    CLUSTER_AUTHORIZATION_FAILED."""
    t, = topics_with_data(broker, "kjs", 1)
    g = "kjs-" + t
    acls = [dict(resourceType=TOPIC, resourceName=t, resourcePatternType=LITERAL,
                 principal="User:ivy", host="*", operation=READ, permissionType=ALLOW),
            dict(resourceType=3, resourceName="kjs-", resourcePatternType=PREFIXED,
                 principal="User:ivy", host="*", operation=READ, permissionType=ALLOW)]
    refused = kafkajs_acls(broker, "ivy", "create", acls)
    assert refused.get("type") == "CLUSTER_AUTHORIZATION_FAILED", refused
    assert kafkajs_acls(broker, "root", "create", acls) is True
    got = kafkajs_acls(broker, "root", "describe", dict(
        resourceType=ANY, resourcePatternType=ANY, principal="User:ivy", operation=ANY,
        permissionType=ANY))
    assert sorted((r["resourceType"], r["resourceName"], r["resourcePatternType"])
                  for r in got["resources"]) == sorted([(TOPIC, t, LITERAL), (3, "kjs-", PREFIXED)])
    wait_acls()
    c = KafkaConsumer(t, bootstrap_servers=broker.sasl_bootstrap, group_id=g,
                      auto_offset_reset="earliest", consumer_timeout_ms=8000, **sasl_kp("ivy"))
    assert len(list(c)) == 3
    c.close()
    got = kafkajs_acls(broker, "root", "delete", [dict(
        resourceType=ANY, resourcePatternType=ANY, principal="User:ivy", operation=ANY,
        permissionType=ANY)])
    assert len(got["filterResponses"][0]["matchingAcls"]) == 2
    assert got["filterResponses"][0]["errorCode"] == 0


# --- two agents on one PostgreSQL ------------------------------------------------------


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    from test_postgres import Server
    s = Server(tmp_path_factory.mktemp("pg"))
    yield s
    s.stop()


def produce_error(sock, topic):
    batch = kproto.record_batch([(None, b"spread", ())])
    return kproto.produce_v3(sock, {topic: {0: batch}})[(topic, 0)][0]


def until(sock, topic, want, started):
    """Seconds from started until a produce on sock answers want."""
    while True:
        err = produce_error(sock, topic)
        elapsed = time.monotonic() - started
        if err == want:
            return elapsed
        assert elapsed < 5, "still %d after 5 s" % err
        time.sleep(0.02)


@pytest.mark.skipif(bool(os.environ.get("SLUICE_SANITIZED")),
                    reason="PostgreSQL runs in the plain build only, as test_postgres")
def test_acl_spreads_to_every_agent_of_postgresql(broker_factory, pg):
    """Two agents on one PostgreSQL: an ACL created through agent A grants
    alice's produce at agent B within 1 s, and its deletion through A
    refuses it there within 1 s (each agent polls the store every 250 ms)."""
    url = pg.db_url(pg.new_db())
    r = subprocess.run([SLUICE_BIN, "users", "add", "alice", "--password-stdin", "--meta", url],
                       input=PASSWORD.encode() + b"\n", capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    agents = []
    for i in range(2):
        plain, sasl = free_port(), free_port()
        b = broker_factory(["--meta", url, "--authorizer", "acl", "--super-users",
                            "User:ANONYMOUS", "--listen",
                            "PLAINTEXT://127.0.0.1:%d,SASL_PLAINTEXT://127.0.0.1:%d"
                            % (plain, sasl)], port=plain, name="agent%d" % i)
        b.sasl_bootstrap = "127.0.0.1:%d" % sasl
        agents.append(b)
    a, b = agents
    t = util.create_topic(a.bootstrap, util.topic_name("spread"))
    util.wait_topic(b.bootstrap, t, 1)
    grant = acl("User:alice", ACLOperation.WRITE, ResourceType.TOPIC, t)
    with login(b, "alice") as s:
        assert produce_error(s, t) == TOPIC_AUTHORIZATION_FAILED
        add_acls(a, grant)
        assert until(s, t, 0, time.monotonic()) < 1.0
        started = time.monotonic()
        assert len(remove_acls(a, ACLFilter("User:alice", None, ACLOperation.ANY,
                                            ACLPermissionType.ANY,
                                            ResourcePatternFilter(ResourceType.TOPIC, t,
                                                                  ACLResourcePatternType.ANY)))
                   [0][1]) == 1
        assert until(s, t, TOPIC_AUTHORIZATION_FAILED, started) < 1.0
