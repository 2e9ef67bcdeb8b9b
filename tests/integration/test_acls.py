"""ACLs and the authorizer (issue 13) with real clients.

One agent with --authorizer acl, a PLAINTEXT listener whose clients are
User:ANONYMOUS (a super user here, so the tests' setup needs no ACL) and
a SASL_PLAINTEXT one where alice and bob (made with `sluice users add`)
log in with PLAIN. ACLs are made with kafka-python's admin client
(CreateAcls v1, DescribeAcls, DeleteAcls). The matrix: for produce,
fetch, groups, offsets and admin APIs a principal without the ACL gets
Kafka's error code and one with it succeeds; PREFIXED and LITERAL
patterns; DENY over ALLOW; super users; Metadata hiding topics; a change
counting within 1 s; an mTLS client certificate's CN as the principal.
Without --authorizer the ACL APIs answer
SECURITY_DISABLED, as Kafka does with no authorizer."""
import os
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType,
                         ACLResourcePatternType, KafkaAdminClient, NewTopic,
                         ResourcePattern, ResourcePatternFilter, ResourceType)
from kafka.errors import (GroupAuthorizationFailedError, SecurityDisabledError,
                          TopicAuthorizationFailedError)

import util
from conftest import Broker, SLUICE_BIN, _require_binary
from util import free_port

PASSWORD = "secret-1"


def users(data_dir, *args):
    r = subprocess.run([SLUICE_BIN, "users"] + list(args) + ["--data", str(data_dir)],
                       input=PASSWORD.encode() + b"\n", capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()


def acl_broker(tmp_path_factory, name, names, extra=()):
    """A started agent with --authorizer acl, the SCRAM users names (and
    root), PLAINTEXT (User:ANONYMOUS, a super user, as is User:root) and
    SASL_PLAINTEXT (b.sasl_bootstrap) listeners."""
    _require_binary()
    data = tmp_path_factory.mktemp(name) / "data"
    for u in set(names) | {"root"}:
        users(data, "add", u, "--mechanism", "SCRAM-SHA-256", "--password-stdin")
    plain, sasl = free_port(), free_port()
    b = Broker(data, ["--listen", "PLAINTEXT://127.0.0.1:%d,SASL_PLAINTEXT://127.0.0.1:%d"
                      % (plain, sasl), "--authorizer", "acl",
                      "--super-users", "User:ANONYMOUS,User:root"] + list(extra), port=plain)
    b.sasl_bootstrap = "127.0.0.1:%d" % sasl
    return b.start()


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = acl_broker(tmp_path_factory, "acls", ("alice", "bob"))
    yield b
    b.teardown()


def sasl_kp(user):
    return dict(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                sasl_plain_username=user, sasl_plain_password=PASSWORD)


def sasl_ck(b, user, **extra):
    c = {"bootstrap.servers": b.sasl_bootstrap, "security.protocol": "SASL_PLAINTEXT",
         "sasl.mechanisms": "PLAIN", "sasl.username": user, "sasl.password": PASSWORD}
    c.update(extra)
    return c


def kp_admin(bootstrap, **kw):
    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000, **kw)


def acl(principal, op, rtype, name, pattern=ACLResourcePatternType.LITERAL,
        perm=ACLPermissionType.ALLOW, host="*"):
    return ACL(principal, host, op, perm, ResourcePattern(rtype, name, pattern))


def add_acls(b, *acls):
    a = kp_admin(b.bootstrap)
    try:
        r = a.create_acls(list(acls))
        assert not r["failed"], r["failed"]
    finally:
        a.close()


def remove_acls(b, *filters):
    a = kp_admin(b.bootstrap)
    try:
        return a.delete_acls(list(filters))
    finally:
        a.close()


def ck_produce_error(b, user, topic):
    """The delivery error of one message produced as user (None: ok)."""
    p = Producer(sasl_ck(b, user, **{"message.timeout.ms": 5000}))
    errors = []
    p.produce(topic, b"v", on_delivery=lambda err, msg: errors.append(err))
    p.flush(15)
    assert errors, "no delivery report"
    return errors[0]


def test_security_disabled_without_authorizer(broker_factory):
    b = broker_factory()
    a = kp_admin(b.bootstrap)
    try:
        with pytest.raises(SecurityDisabledError):
            a.describe_acls(ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                                      ResourcePatternFilter(ResourceType.ANY, None,
                                                            ACLResourcePatternType.ANY)))
        r = a.create_acls([acl("User:a", ACLOperation.READ, ResourceType.TOPIC, "t")])
        assert len(r["failed"]) == 1
        err = r["failed"][0][1]  # kafka-python 2.0 gives the class
        assert err is SecurityDisabledError or isinstance(err, SecurityDisabledError)
    finally:
        a.close()


def test_create_describe_delete(broker):
    """kafka-python's admin client: create, describe with ANY and MATCH
    filters, delete by filter; bad bindings refused INVALID_REQUEST."""
    t = util.topic_name("adm")
    a = kp_admin(broker.bootstrap)
    try:
        made = [acl("User:alice", ACLOperation.READ, ResourceType.TOPIC, t),
                acl("User:alice", ACLOperation.WRITE, ResourceType.TOPIC, t[:4],
                    ACLResourcePatternType.PREFIXED),
                acl("User:bob", ACLOperation.ALL, ResourceType.GROUP, "*",
                    perm=ACLPermissionType.DENY)]
        r = a.create_acls(made + [acl("alice", ACLOperation.READ, ResourceType.TOPIC, t)])
        assert len(r["succeeded"]) == 3
        assert len(r["failed"]) == 1  # no principal type
        any_filter = ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY)
        acls, err = a.describe_acls(ACLFilter("User:alice", None, ACLOperation.ANY,
                                              ACLPermissionType.ANY, any_filter))
        got = {(x.resource_pattern.resource_name, x.resource_pattern.pattern_type,
                x.operation) for x in acls}
        assert (t, ACLResourcePatternType.LITERAL, ACLOperation.READ) in got
        assert (t[:4], ACLResourcePatternType.PREFIXED, ACLOperation.WRITE) in got
        # MATCH: every binding that would apply to topic t.
        acls, err = a.describe_acls(ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                                              ResourcePatternFilter(ResourceType.TOPIC, t,
                                                                    ACLResourcePatternType.MATCH)))
        assert {x.resource_pattern.pattern_type for x in acls} >= {
            ACLResourcePatternType.LITERAL, ACLResourcePatternType.PREFIXED}
        # A literal filter on t does not match the prefix.
        acls, err = a.describe_acls(ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                                              ResourcePatternFilter(ResourceType.TOPIC, t,
                                                                    ACLResourcePatternType.LITERAL)))
        assert [x.resource_pattern.pattern_type for x in acls] == [ACLResourcePatternType.LITERAL]
        res = a.delete_acls([ACLFilter("User:alice", None, ACLOperation.ANY, ACLPermissionType.ANY,
                                       any_filter),
                             ACLFilter("User:bob", None, ACLOperation.ANY, ACLPermissionType.ANY,
                                       any_filter)])
        assert len(res[0][1]) == 2 and res[0][2].errno == 0
        assert len(res[1][1]) == 1
        acls, err = a.describe_acls(ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                                              any_filter))
        assert not [x for x in acls if x.principal in ("User:alice", "User:bob")]
    finally:
        a.close()


def test_produce_fetch_and_deny(broker):
    """WRITE and READ on a LITERAL topic: alice may, bob gets
    TOPIC_AUTHORIZATION_FAILED; a DENY for alice counts within 1 s."""
    t = util.topic_name("pf")
    util.create_topic(broker.bootstrap, t)
    add_acls(broker, acl("User:alice", ACLOperation.WRITE, ResourceType.TOPIC, t),
             acl("User:alice", ACLOperation.READ, ResourceType.TOPIC, t),
             acl("User:alice", ACLOperation.READ, ResourceType.GROUP, "g-",
                 ACLResourcePatternType.PREFIXED),
             acl("User:bob", ACLOperation.READ, ResourceType.GROUP, "bob-" + t))
    time.sleep(1)
    assert ck_produce_error(broker, "alice", t) is None
    err = ck_produce_error(broker, "bob", t)
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # Fetch: kafka-python as alice reads it; bob is refused.
    c = KafkaConsumer(t, bootstrap_servers=broker.sasl_bootstrap, group_id="g-" + t,
                      auto_offset_reset="earliest", consumer_timeout_ms=8000, **sasl_kp("alice"))
    got = [m.value for m in c]
    c.close()
    assert got == [b"v"]
    # bob subscribing: refused (librdkafka reports the topic's error).
    c = Consumer(sasl_ck(broker, "bob", **{"group.id": "bob-" + t}))
    c.subscribe([t])
    err = None
    deadline = time.monotonic() + 10
    while err is None and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error():
            err = m.error()
    c.close()
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # DENY beats ALLOW, and counts within 1 s.
    add_acls(broker, acl("User:alice", ACLOperation.WRITE, ResourceType.TOPIC, t,
                         perm=ACLPermissionType.DENY))
    deadline = time.monotonic() + 1.0
    time.sleep(0.3)
    while True:
        err = ck_produce_error(broker, "alice", t)
        if err is not None or time.monotonic() > deadline + 6:
            break
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_groups_and_offsets(broker):
    """READ on the group: bob, with READ on the topic but not on the
    group, gets GROUP_AUTHORIZATION_FAILED; alice's PREFIXED group ACL
    lets her commit and fetch offsets."""
    t = util.topic_name("grp")
    util.create_topic(broker.bootstrap, t)
    add_acls(broker, acl("User:bob", ACLOperation.READ, ResourceType.TOPIC, t),
             acl("User:alice", ACLOperation.READ, ResourceType.TOPIC, t),
             acl("User:alice", ACLOperation.READ, ResourceType.GROUP, "team-",
                 ACLResourcePatternType.PREFIXED))
    time.sleep(1)
    c = KafkaConsumer(t, bootstrap_servers=broker.sasl_bootstrap, group_id="team-b",
                      consumer_timeout_ms=4000, **sasl_kp("bob"))
    with pytest.raises(GroupAuthorizationFailedError):
        list(c)
    c.close()
    c = Consumer(sasl_ck(broker, "alice", **{"group.id": "team-a",
                                              "auto.offset.reset": "earliest",
                                              "enable.auto.commit": False}))
    from confluent_kafka import TopicPartition as TP
    c.assign([TP(t, 0, 0)])
    c.commit(offsets=[TP(t, 0, 0)], asynchronous=False)
    got = c.committed([TP(t, 0)], timeout=10)
    assert got[0].error is None and got[0].offset == 0
    c.close()


def test_metadata_hides_topics_and_admin(broker):
    """Metadata lists only the topics a principal may describe; creating
    and deleting topics need CREATE and DELETE; auto-create needs CREATE."""
    t = util.topic_name("meta")
    util.create_topic(broker.bootstrap, t)
    add_acls(broker, acl("User:alice", ACLOperation.DESCRIBE, ResourceType.TOPIC, t),
             acl("User:alice", ACLOperation.CREATE, ResourceType.TOPIC, "alice-",
                 ACLResourcePatternType.PREFIXED),
             acl("User:alice", ACLOperation.DELETE, ResourceType.TOPIC, "alice-",
                 ACLResourcePatternType.PREFIXED))
    time.sleep(1)
    for user, visible in (("alice", True), ("bob", False)):
        a = kp_admin(broker.sasl_bootstrap, **sasl_kp(user))
        try:
            assert (t in a.list_topics()) == visible
        finally:
            a.close()
    a = kp_admin(broker.sasl_bootstrap, **sasl_kp("bob"))
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            a.create_topics([NewTopic("alice-x", 1, 1)])
        with pytest.raises(TopicAuthorizationFailedError):
            a.delete_topics([t])
    finally:
        a.close()
    a = kp_admin(broker.sasl_bootstrap, **sasl_kp("alice"))
    try:
        a.create_topics([NewTopic("alice-x", 1, 1)])
        a.delete_topics(["alice-x"])
    finally:
        a.close()
    # Super users do anything: root (SASL) and ANONYMOUS here.
    a = kp_admin(broker.sasl_bootstrap, **sasl_kp("root"))
    try:
        assert t in a.list_topics()
    finally:
        a.close()
    # Auto-creation: bob may not (no CREATE); the topic is not made.
    p = KafkaProducer(bootstrap_servers=broker.sasl_bootstrap, max_block_ms=3000,
                      **sasl_kp("bob"))
    with pytest.raises(Exception):
        p.send("bob-auto", b"x").get(timeout=5)
    p.close()
    a = kp_admin(broker.bootstrap)
    try:
        assert "bob-auto" not in a.list_topics()
    finally:
        a.close()


def test_mtls_principal(tmp_path):
    """An SSL listener with client certificates: the certificate's CN
    is the principal ACLs name (User:carol here); another topic is
    refused TOPIC_AUTHORIZATION_FAILED."""
    from test_tls import make_ca_and_server, make_cert, start_broker
    (tmp_path / "certs").mkdir()
    certs = make_ca_and_server(str(tmp_path / "certs"))
    certs["client"] = make_cert(certs["dir"], "client", "carol")
    b = start_broker(tmp_path, "mtls", certs,
                     extra=["--tls-ca", certs["ca"], "--tls-client-auth", "required",
                            "--authorizer", "acl", "--super-users", "User:ANONYMOUS"])
    try:
        ok, other = util.topic_name("mtls"), util.topic_name("other")
        util.create_topic(b.bootstrap, ok)
        util.create_topic(b.bootstrap, other)
        add_acls(b, acl("User:carol", ACLOperation.WRITE, ResourceType.TOPIC, ok))
        time.sleep(1)
        conf = {"bootstrap.servers": b.ssl_bootstrap, "security.protocol": "SSL",
                "ssl.ca.location": certs["ca"], "ssl.certificate.location": certs["client"][0],
                "ssl.key.location": certs["client"][1], "message.timeout.ms": 5000}
        for topic, want in ((ok, None), (other, KafkaError.TOPIC_AUTHORIZATION_FAILED)):
            p = Producer(conf)
            errors = []
            p.produce(topic, b"v", on_delivery=lambda err, msg: errors.append(err))
            p.flush(15)
            assert errors
            assert (errors[0].code() if errors[0] else None) == want
    finally:
        b.teardown()


def sluice_acls(bootstrap, *args, stdin=b""):
    r = subprocess.run([SLUICE_BIN, "acls", "--bootstrap", bootstrap] + list(args),
                       input=stdin, capture_output=True, timeout=60)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def test_sluice_acls_tool(broker):
    """`sluice acls add|list|remove` with kafka-acls.sh's options and
    output: what it adds is what kafka-python's admin client describes
    and what the authorizer enforces (alice may produce, then may not
    within 1 s of the remove); --consumer's ACLs let her consume in her
    group; remove asks first and without principals removes the whole
    pattern."""
    t = util.topic_name("tool")
    util.create_topic(broker.bootstrap, t)
    bs = broker.bootstrap
    rc, out, err = sluice_acls(bs, "add", "--allow-principal", "User:alice", "--operation",
                               "Write", "--operation", "describe", "--topic", t)
    assert rc == 0, err
    pattern = "ResourcePattern(resourceType=TOPIC, name=%s, patternType=LITERAL)" % t
    assert out == ("Adding ACLs for resource `%s`: \n"
                   " \t(principal=User:alice, host=*, operation=WRITE, permissionType=ALLOW)\n"
                   "\t(principal=User:alice, host=*, operation=DESCRIBE, permissionType=ALLOW)"
                   " \n\n" % pattern)
    a = kp_admin(bs)
    try:
        acls, _ = a.describe_acls(ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                                            ResourcePatternFilter(ResourceType.TOPIC, t,
                                                                  ACLResourcePatternType.ANY)))
    finally:
        a.close()
    assert {(x.principal, x.host, x.operation, x.permission_type) for x in acls} == {
        ("User:alice", "*", ACLOperation.WRITE, ACLPermissionType.ALLOW),
        ("User:alice", "*", ACLOperation.DESCRIBE, ACLPermissionType.ALLOW)}
    time.sleep(1)
    assert ck_produce_error(broker, "alice", t) is None
    rc, out, err = sluice_acls(bs, "list", "--topic", t)
    assert rc == 0 and out.startswith("Current ACLs for resource `%s`: \n" % pattern), out
    assert out.count("User:alice") == 2
    # --consumer: READ, DESCRIBE on the topic, READ on the group.
    g = "tool-" + t
    rc, out, err = sluice_acls(bs, "add", "--consumer", "--allow-principal", "User:alice",
                               "--topic", t, "--group", g)
    assert rc == 0, err
    time.sleep(1)
    c = KafkaConsumer(t, bootstrap_servers=broker.sasl_bootstrap, group_id=g,
                      auto_offset_reset="earliest", consumer_timeout_ms=8000, **sasl_kp("alice"))
    assert [m.value for m in c] == [b"v"]
    c.close()
    # remove WRITE, answering the prompt "n" first: nothing goes.
    args = ("remove", "--allow-principal", "User:alice", "--operation", "Write", "--topic", t)
    rc, out, err = sluice_acls(bs, *args, stdin=b"n\n")
    assert rc == 0 and "Are you sure you want to remove ACLs" in out
    assert "operation=WRITE" in sluice_acls(bs, "list", "--topic", t)[1]
    rc, out, err = sluice_acls(bs, *args, stdin=b"y\n")
    assert rc == 0, err
    listed = sluice_acls(bs, "list", "--topic", t)[1]
    assert "operation=WRITE" not in listed and "operation=READ" in listed
    deadline = time.monotonic() + 1.0
    time.sleep(0.3)
    err = ck_produce_error(broker, "alice", t)
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert time.monotonic() < deadline + 6
    # remove without principals: every ACL of the pattern (--force: no prompt).
    assert sluice_acls(bs, "remove", "--topic", t, "--group", g, "--force")[0] == 0
    assert sluice_acls(bs, "list", "--topic", t, "--group", g)[1] == ""
    # PREFIXED adds and MATCH lists, --principal narrows it.
    rc, out, err = sluice_acls(bs, "add", "--deny-principal", "User:bob", "--deny-host",
                               "10.1.2.3", "--operation", "Read", "--topic", t[:5],
                               "--resource-pattern-type", "prefixed")
    assert rc == 0, err
    rc, out, err = sluice_acls(bs, "list", "--topic", t, "--resource-pattern-type", "match",
                               "--principal", "User:bob")
    assert rc == 0
    assert ("ACLs for principal `User:bob`\nCurrent ACLs for resource `ResourcePattern("
            "resourceType=TOPIC, name=%s, patternType=PREFIXED)`: \n \t(principal=User:bob, "
            "host=10.1.2.3, operation=READ, permissionType=DENY) \n\n" % t[:5]) in out
    assert sluice_acls(bs, "remove", "--topic", t[:5], "--resource-pattern-type", "prefixed",
                       "--force")[0] == 0
    # usage errors exit 2, as kafka-acls.sh refuses them.
    for bad in (("add", "--topic", t),                                 # no principal
                ("add", "--allow-principal", "bob", "--topic", t),     # no TYPE:
                ("add", "--allow-principal", "User:b", "--operation", "Write", "--group", g),
                ("add", "--allow-principal", "User:b", "--topic", t,
                 "--resource-pattern-type", "match"),
                ("list", "--allow-principal", "User:b"),
                ("remove",),
                ("add", "list")):
        assert sluice_acls(bs, *bad)[0] == 2, bad


def test_sluice_acls_tool_errors(broker_factory):
    """Kafka's errors through the tool, exit 1: SECURITY_DISABLED without
    an authorizer, CLUSTER_AUTHORIZATION_FAILED for a principal (here
    User:ANONYMOUS) without ALTER on the cluster."""
    b = broker_factory()
    rc, out, err = sluice_acls(b.bootstrap, "add", "--allow-principal", "User:a", "--topic", "t")
    assert rc == 1 and "SECURITY_DISABLED (54)" in err, err
    rc, out, err = sluice_acls(b.bootstrap, "list")
    assert rc == 1 and "SECURITY_DISABLED (54)" in err, err
    b = broker_factory(["--authorizer", "acl"])
    rc, out, err = sluice_acls(b.bootstrap, "add", "--allow-principal", "User:a", "--topic", "t")
    assert rc == 1 and "CLUSTER_AUTHORIZATION_FAILED (31)" in err, err
    rc, out, err = sluice_acls(b.bootstrap, "remove", "--topic", "t", "--force")
    assert rc == 1 and "CLUSTER_AUTHORIZATION_FAILED (31)" in err, err


def test_tools_log_in(tmp_path, broker_factory):
    """The tools' --security-protocol, --tls-*, --sasl-* flags (shown with
    `sluice acls` and `sluice topics`): SCRAM-SHA-512 (default) over
    SASL_SSL and PLAIN over SASL_PLAINTEXT as a super user manage ACLs;
    SCRAM-SHA-256 as bob is refused CLUSTER_AUTHORIZATION_FAILED, a wrong
    password SASL_AUTHENTICATION_FAILED, PLAINTEXT's User:ANONYMOUS
    CLUSTER_AUTHORIZATION_FAILED; a client certificate over SSL is its
    CN's principal; a broker certificate no CA vouches for is refused."""
    from test_tls import make_ca_and_server, make_cert
    (tmp_path / "certs").mkdir()
    certs = make_ca_and_server(str(tmp_path / "certs"))
    client = make_cert(certs["dir"], "client", "carol")
    data = tmp_path / "sec"
    for u, mech in (("root", "SCRAM-SHA-512"), ("bob", "SCRAM-SHA-256")):
        users(data, "add", u, "--mechanism", mech, "--password-stdin")
    plain, sasl_ssl, sasl, ssl_ = free_port(), free_port(), free_port(), free_port()
    b = broker_factory(["--listen", "PLAINTEXT://127.0.0.1:%d,SASL_SSL://127.0.0.1:%d,"
                        "SASL_PLAINTEXT://127.0.0.1:%d,SSL://127.0.0.1:%d"
                        % (plain, sasl_ssl, sasl, ssl_),
                        "--tls-cert", certs["server"][0], "--tls-key", certs["server"][1],
                        "--tls-ca", certs["ca"], "--tls-client-auth", "requested",
                        "--authorizer", "acl", "--super-users", "User:root,User:carol"],
                       port=plain, name="sec")

    def tool(cmd, bootstrap, *args, password=PASSWORD):
        env = dict(os.environ, SLUICE_SASL_PASSWORD=password)
        r = subprocess.run([SLUICE_BIN, cmd, "--bootstrap", bootstrap] + list(args),
                           capture_output=True, timeout=60, env=env)
        return r.returncode, r.stdout.decode(), r.stderr.decode()
    scram = ("--security-protocol", "SASL_SSL", "--tls-ca", certs["ca"])
    rc, out, err = tool("acls", "127.0.0.1:%d" % sasl_ssl, "add", "--allow-principal",
                        "User:bob", "--operation", "Read", "--topic", "t1",
                        *scram, "--sasl-username", "root")
    assert rc == 0, err
    rc, out, err = tool("acls", "127.0.0.1:%d" % sasl, "list", "--security-protocol",
                        "SASL_PLAINTEXT", "--sasl-mechanism", "PLAIN", "--sasl-username", "root")
    assert rc == 0 and "principal=User:bob" in out, err
    rc, out, err = tool("acls", "127.0.0.1:%d" % sasl_ssl, "list", *scram, "--sasl-mechanism",
                        "SCRAM-SHA-256", "--sasl-username", "bob")
    assert rc == 1 and "CLUSTER_AUTHORIZATION_FAILED (31)" in err, err
    rc, out, err = tool("acls", "127.0.0.1:%d" % sasl_ssl, "list", *scram, "--sasl-username",
                        "root", password="wrong")
    assert rc == 1 and "SASL_AUTHENTICATION_FAILED (58)" in err, err
    rc, out, err = tool("acls", b.bootstrap, "list")
    assert rc == 1 and "CLUSTER_AUTHORIZATION_FAILED (31)" in err, err
    rc, out, err = tool("topics", "127.0.0.1:%d" % ssl_, "create", "t2", "--security-protocol",
                        "SSL", "--tls-ca", certs["ca"], "--tls-cert", client[0], "--tls-key",
                        client[1])
    assert rc == 0 and "Created topic t2." in out, err
    rc, out, err = tool("topics", "127.0.0.1:%d" % ssl_, "list", "--security-protocol", "SSL")
    assert rc == 1 and "certificate" in err, err
    assert tool("topics", b.bootstrap, "list", "--security-protocol", "TLS")[0] == 2
