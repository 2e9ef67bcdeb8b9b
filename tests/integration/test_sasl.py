"""test_sasl.py — SASL_PLAINTEXT and SASL_SSL listeners: kcat,
confluent-kafka, kafka-python and kafkajs log in with SCRAM-SHA-512 and
SCRAM-SHA-256 over SASL_SSL and with PLAIN over SASL_PLAINTEXT and
produce and consume byte for byte; wrong passwords and unknown users are
refused with Kafka's error code and message (others keep working); nothing
but ApiVersions, SaslHandshake and SaslAuthenticate is served before
authentication; a user added with `sluice users add` while the agent runs
logs in within 1 s, a deleted one no longer can; DescribeUserScramCredentials
and AlterUserScramCredentials (by hand: neither kafka-python 2.0.2 nor
confluent-kafka 1.7.0 has them) with Kafka's error codes, and a user made
through them logs in.

Certificates are made with the openssl command line (test_tls.py's
helpers); users with `sluice users add` before the agent starts."""
import base64
import hashlib
import hmac
import json
import os
import struct
import subprocess
import time

import pytest
from confluent_kafka import Producer

import kproto
import util
from conftest import Broker, SLUICE_BIN, _require_binary
from test_tls import make_ca_and_server
from util import free_port

JS_DIR = os.path.join(os.path.dirname(__file__), "js")
PARTS = 3
PASSWORD = "pa:ss,w=rd"

API_SASL_HANDSHAKE = 17
API_SASL_AUTHENTICATE = 36
API_DESCRIBE_SCRAM = 50
API_ALTER_SCRAM = 51

SASL_AUTHENTICATION_FAILED = 58
UNSUPPORTED_SASL_MECHANISM = 33
ILLEGAL_SASL_STATE = 34
RESOURCE_NOT_FOUND = 91
DUPLICATE_RESOURCE = 92
UNACCEPTABLE_CREDENTIAL = 93

CREDENTIALS_FAILED = ("Authentication failed during authentication due to "
                      "invalid credentials with SASL mechanism %s")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_ca_and_server(str(tmp_path_factory.mktemp("certs")))


def users(data_dir, *args, password=PASSWORD, check=True):
    r = subprocess.run([SLUICE_BIN, "users"] + list(args) +
                       ["--data", str(data_dir)], input=password.encode() + b"\n",
                       capture_output=True, timeout=60)
    if check:
        assert r.returncode == 0, r.stderr.decode()
    return r


@pytest.fixture(scope="module")
def broker(tmp_path_factory, certs):
    """PLAINTEXT (for the helpers in util), SASL_PLAINTEXT and SASL_SSL
    listeners; alice has both SCRAM credentials, bob SCRAM-SHA-256 only."""
    _require_binary()
    tmp = tmp_path_factory.mktemp("sasl")
    data = tmp / "data"
    users(data, "add", "alice", "--mechanism", "SCRAM-SHA-512", "--password-stdin")
    users(data, "add", "alice", "--mechanism", "SCRAM-SHA-256", "--password-stdin")
    users(data, "add", "bob", "--mechanism", "SCRAM-SHA-256", "--iterations",
          "8192", "--password-stdin", password="bob-secret")
    plain, sasl, sasl_ssl = free_port(), free_port(), free_port()
    listen = ("PLAINTEXT://127.0.0.1:%d,SASL_PLAINTEXT://127.0.0.1:%d,"
              "SASL_SSL://127.0.0.1:%d" % (plain, sasl, sasl_ssl))
    b = Broker(data, ["--listen", listen, "--tls-cert", certs["server"][0],
                      "--tls-key", certs["server"][1]], port=plain)
    b.sasl_bootstrap = "127.0.0.1:%d" % sasl
    b.sasl_ssl_bootstrap = "127.0.0.1:%d" % sasl_ssl
    b.start()
    yield b
    b.teardown()


# The three ways each client logs in: (listener, mechanism).
LOGINS = [("SASL_SSL", "SCRAM-SHA-512"), ("SASL_SSL", "SCRAM-SHA-256"),
          ("SASL_PLAINTEXT", "PLAIN")]


def bootstrap_of(b, protocol):
    return b.sasl_ssl_bootstrap if protocol == "SASL_SSL" else b.sasl_bootstrap


def ck_conf(certs, protocol, mechanism, user="alice", password=PASSWORD):
    c = {"security.protocol": protocol, "sasl.mechanisms": mechanism,
         "sasl.username": user, "sasl.password": password}
    if protocol == "SASL_SSL":
        c["ssl.ca.location"] = certs["ca"]
    return c


@pytest.mark.parametrize("protocol,mechanism", LOGINS)
def test_confluent_kafka(broker, certs, protocol, mechanism):
    b = broker
    topic = util.create_topic(b.bootstrap, util.topic_name("ck"), PARTS)
    msgs = util.make_messages(5000, seed=31)
    conf = ck_conf(certs, protocol, mechanism)
    util.ck_produce(bootstrap_of(b, protocol), topic, msgs, **conf)
    got = util.consume_all(bootstrap_of(b, protocol), topic, PARTS,
                           expect=len(msgs), **conf)
    util.check_roundtrip(msgs, got)


@pytest.mark.parametrize("protocol,mechanism", LOGINS)
def test_kcat(broker, certs, protocol, mechanism, tmp_path):
    b = broker
    topic = util.create_topic(b.bootstrap, util.topic_name("kc"), 1)
    lines = ["line-%d-%s" % (i, os.urandom(8).hex()) for i in range(2000)]
    path = tmp_path / "in.txt"
    path.write_text("\n".join(lines) + "\n")
    x = []
    for k, v in ck_conf(certs, protocol, mechanism).items():
        x += ["-X", "%s=%s" % (k, v)]
    r = subprocess.run(["kcat", "-P", "-b", bootstrap_of(b, protocol), "-t",
                        topic, "-l", str(path)] + x, capture_output=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    r = subprocess.run(["kcat", "-C", "-b", bootstrap_of(b, protocol), "-t",
                        topic, "-e", "-q", "-f", "%s\n"] + x,
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().splitlines() == lines


@pytest.mark.parametrize("protocol,mechanism", LOGINS)
def test_kafka_python(broker, certs, protocol, mechanism):
    """kafka-python 2.0.2 shakes hands with SaslHandshake v0 and sends the
    tokens as raw frames (KIP-152's first shape)."""
    b = broker
    topic = util.create_topic(b.bootstrap, util.topic_name("kp"), PARTS)
    msgs = util.make_messages(3000, seed=32)
    kw = dict(bootstrap_servers=bootstrap_of(b, protocol),
              security_protocol=protocol, sasl_mechanism=mechanism,
              sasl_plain_username="alice", sasl_plain_password=PASSWORD)
    if protocol == "SASL_SSL":
        kw["ssl_cafile"] = certs["ca"]
    util.check_roundtrip(msgs, util.kp_roundtrip(topic, PARTS, msgs, **kw))


@pytest.mark.parametrize("protocol,mechanism", LOGINS)
def test_kafkajs(broker, certs, protocol, mechanism, tmp_path):
    if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "kafkajs")):
        pytest.fail("kafkajs is not installed in %s/node_modules" % JS_DIR)
    b = broker
    topic = util.create_topic(b.bootstrap, util.topic_name("js"), PARTS)
    msgs = util.make_messages(2000, seed=33)
    path = tmp_path / "msgs.jsonl"
    util.js_messages_file(path, msgs)
    env = dict(os.environ,
               SLUICE_JS_SASL="%s:alice:%s" % (mechanism.lower(), PASSWORD))
    if protocol == "SASL_SSL":
        env["SLUICE_JS_SSL_CA"] = certs["ca"]
    r = subprocess.run(["node", os.path.join(JS_DIR, "produce.js"),
                        bootstrap_of(b, protocol), topic, str(path)],
                       capture_output=True, timeout=300, cwd=JS_DIR, env=env)
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    r = subprocess.run(["node", os.path.join(JS_DIR, "group_consume.js"),
                        bootstrap_of(b, protocol), topic,
                        "g-" + topic, str(len(msgs)), "1"],
                       capture_output=True, timeout=120, cwd=JS_DIR, env=env)
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    assert json.loads(r.stdout.decode().splitlines()[-1])["unique"] == len(msgs)
    got = util.consume_all(b.bootstrap, topic, PARTS, expect=len(msgs))
    util.check_roundtrip(msgs, got)


# --- by hand: the exchange on the wire ---------------------------------------


def flexible_bytes(b):
    return kproto.uvarint(len(b) + 1) + b


def handshake(sock, mechanism, version=1):
    """SaslHandshake: (error_code, [mechanisms])."""
    r = kproto.Reader(kproto.roundtrip(sock, API_SASL_HANDSHAKE, version,
                                       kproto.string(mechanism), 3))
    err = r.i16()
    mechs = r.array(r.string)
    assert r.done()
    return err, mechs


def authenticate(sock, token, version=1):
    """SaslAuthenticate v0/v1: (error_code, message, auth_bytes, lifetime)."""
    r = kproto.Reader(kproto.roundtrip(sock, API_SASL_AUTHENTICATE, version,
                                       kproto.bytes_(token), 5))
    err, msg = r.i16(), r.string()
    n = r.i32()
    data = r.take(n) if n >= 0 else None
    lifetime = r.i64() if version >= 1 else None
    assert r.done()
    return err, msg, data, lifetime


def sasl_socket(b, certs, protocol="SASL_PLAINTEXT"):
    raw = kproto.connect(bootstrap_of(b, protocol))
    if protocol != "SASL_SSL":
        return raw
    import ssl
    ctx = ssl.create_default_context(cafile=certs["ca"])
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


class Scram:
    """A SCRAM client (RFC 5802) with hashlib, for the raw tests."""

    def __init__(self, mechanism, user, password):
        self.h = "sha256" if mechanism == "SCRAM-SHA-256" else "sha512"
        self.user, self.password = user, password
        self.nonce = base64.b64encode(os.urandom(18)).decode()

    def first(self):
        self.bare = "n=%s,r=%s" % (self.user.replace("=", "=3D").replace(",", "=2C"),
                                   self.nonce)
        return ("n,," + self.bare).encode()

    def final(self, server_first):
        sf = server_first.decode()
        attrs = dict(kv.split("=", 1) for kv in sf.split(","))
        assert attrs["r"].startswith(self.nonce)
        salted = hashlib.pbkdf2_hmac(self.h, self.password.encode(),
                                     base64.b64decode(attrs["s"]),
                                     int(attrs["i"]))
        ck = hmac.new(salted, b"Client Key", self.h).digest()
        wo = "c=biws,r=" + attrs["r"]
        am = ",".join([self.bare, sf, wo]).encode()
        sig = hmac.new(hashlib.new(self.h, ck).digest(), am, self.h).digest()
        sk = hmac.new(salted, b"Server Key", self.h).digest()
        self.verifier = "v=" + base64.b64encode(
            hmac.new(sk, am, self.h).digest()).decode()
        proof = bytes(a ^ b for a, b in zip(ck, sig))
        return (wo + ",p=" + base64.b64encode(proof).decode()).encode()


def scram_login(sock, mechanism, user, password):
    """The whole SCRAM exchange with SaslAuthenticate v1: the last answer."""
    assert handshake(sock, mechanism)[0] == 0
    c = Scram(mechanism, user, password)
    err, msg, server_first, _ = authenticate(sock, c.first())
    if err:
        return err, msg, None
    err, msg, server_final, lifetime = authenticate(sock, c.final(server_first))
    if not err:
        assert server_final.decode() == c.verifier
        assert lifetime == 0
    return err, msg, server_final


def plain_login(sock, user, password, authzid=""):
    assert handshake(sock, "PLAIN")[0] == 0
    return authenticate(sock, ("%s\0%s\0%s" % (authzid, user, password)).encode())


def test_refused_logins(broker, certs):
    """Kafka's error code and message for each way to fail, then the
    connection closes; another client's connection keeps working all along
    and the failures are logged with the peer address."""
    b = broker
    topic = util.create_topic(b.bootstrap, util.topic_name("ok"), 1)
    good = Producer(dict(ck_conf(certs, "SASL_SSL", "SCRAM-SHA-512"),
                         **{"bootstrap.servers": b.sasl_ssl_bootstrap}))
    good.produce(topic, b"before")
    assert good.flush(30) == 0
    cases = [
        ("SCRAM-SHA-512", "alice", "wrong", CREDENTIALS_FAILED % "SCRAM-SHA-512"),
        ("SCRAM-SHA-256", "nobody", PASSWORD, CREDENTIALS_FAILED % "SCRAM-SHA-256"),
        # bob has no SCRAM-SHA-512 credential
        ("SCRAM-SHA-512", "bob", "bob-secret", CREDENTIALS_FAILED % "SCRAM-SHA-512"),
        ("PLAIN", "alice", "wrong", "Authentication failed: Invalid username or password"),
        ("PLAIN", "nobody", PASSWORD, "Authentication failed: Invalid username or password"),
    ]
    for protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        for mech, user, password, message in cases:
            with sasl_socket(b, certs, protocol) as s:
                if mech == "PLAIN":
                    err, msg, _, _ = plain_login(s, user, password)
                else:
                    err, msg, _ = scram_login(s, mech, user, password)
                assert (err, msg) == (SASL_AUTHENTICATION_FAILED, message), (mech, user)
                assert kproto.closed_by_peer(s)
            good.produce(topic, b"during")
            assert good.flush(30) == 0
    # The right password of another user as authorization id.
    with sasl_socket(b, certs) as s:
        err, msg, _, _ = plain_login(s, "alice", PASSWORD, authzid="bob")
        assert (err, msg) == (SASL_AUTHENTICATION_FAILED, "Authentication failed: Client "
                              "requested an authorization id that is different from username")
    # Right ones pass, through every path.
    with sasl_socket(b, certs) as s:
        assert plain_login(s, "bob", "bob-secret")[:3] == (0, None, b"")
        assert kproto.metadata_v1(s, [topic])[1][topic] == (0, [0])
    with sasl_socket(b, certs, "SASL_SSL") as s:
        assert scram_login(s, "SCRAM-SHA-256", "bob", "bob-secret")[0] == 0
        assert kproto.metadata_v1(s, [topic])[1][topic] == (0, [0])
    good.produce(topic, b"after")
    assert good.flush(30) == 0
    got = util.consume_all(b.bootstrap, topic, 1)
    assert [g.value for g in got[0]] == [b"before"] + [b"during"] * 10 + [b"after"]
    with open(b.stderr, "rb") as f:
        log = f.read().decode()
    assert 'SASL SCRAM-SHA-512 authentication of user "alice" failed' in log
    assert "127.0.0.1:" in log.split('user "nobody" failed')[0].splitlines()[-1]


def test_nothing_served_before_authentication(broker, certs):
    b = broker
    topic = util.create_topic(b.bootstrap, util.topic_name("pre"), 1)
    # Metadata first: closed, nothing answered.
    for protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        with sasl_socket(b, certs, protocol) as s:
            s.sendall(kproto.request(kproto.API_METADATA, 1, 1,
                                     kproto.array([kproto.string(topic)])))
            assert kproto.closed_by_peer(s)
    # ApiVersions is answered once (listing the SASL and SCRAM apis); then
    # only the handshake may come.
    with sasl_socket(b, certs) as s:
        err, apis, _ = kproto.api_versions_v0(s)
        assert err == 0
        assert apis[API_SASL_HANDSHAKE] == (0, 1)
        assert apis[API_SASL_AUTHENTICATE] == (0, 2)
        assert apis[API_DESCRIBE_SCRAM] == (0, 0)
        assert apis[API_ALTER_SCRAM] == (0, 0)
        s.sendall(kproto.request(kproto.API_API_VERSIONS, 0, 2, b""))
        assert kproto.closed_by_peer(s)
    # After the handshake, Metadata instead of SaslAuthenticate.
    with sasl_socket(b, certs) as s:
        assert handshake(s, "SCRAM-SHA-256") == (0, ["PLAIN", "SCRAM-SHA-256",
                                                      "SCRAM-SHA-512"])
        s.sendall(kproto.request(kproto.API_METADATA, 1, 1, kproto.array([])))
        assert kproto.closed_by_peer(s)
    # Between the two SCRAM rounds.
    with sasl_socket(b, certs) as s:
        assert handshake(s, "SCRAM-SHA-512")[0] == 0
        c = Scram("SCRAM-SHA-512", "alice", PASSWORD)
        assert authenticate(s, c.first())[0] == 0
        s.sendall(kproto.request(kproto.API_METADATA, 1, 1, kproto.array([])))
        assert kproto.closed_by_peer(s)
    # A mechanism not offered: UNSUPPORTED_SASL_MECHANISM with the list.
    with sasl_socket(b, certs) as s:
        assert handshake(s, "GSSAPI") == (UNSUPPORTED_SASL_MECHANISM,
                                          ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
        assert kproto.closed_by_peer(s)
    # A large frame before authentication (Kafka's 512 KiB bound).
    with sasl_socket(b, certs) as s:
        s.sendall(struct.pack(">i", 600 * 1024) + b"\0" * 1024)
        assert kproto.closed_by_peer(s)
    # Garbage as the first SCRAM message.
    with sasl_socket(b, certs) as s:
        assert handshake(s, "SCRAM-SHA-256")[0] == 0
        err, msg, _, _ = authenticate(s, b"\xff\x00garbage")
        assert (err, msg) == (SASL_AUTHENTICATION_FAILED, CREDENTIALS_FAILED % "SCRAM-SHA-256")
        assert kproto.closed_by_peer(s)
    # The agent is fine.
    with kproto.connect(b.bootstrap) as s:
        assert kproto.api_versions_v0(s)[0] == 0


def test_sasl_state_errors(broker, certs):
    """SaslHandshake on a listener without SASL, and SaslAuthenticate after
    authentication: ILLEGAL_SASL_STATE, as KafkaApis answers them."""
    b = broker
    with kproto.connect(b.bootstrap) as s:
        assert handshake(s, "PLAIN") == (ILLEGAL_SASL_STATE, [])
        assert kproto.api_versions_v0(s)[0] == 0
    with sasl_socket(b, certs) as s:
        assert plain_login(s, "alice", PASSWORD)[0] == 0
        err, msg, _, _ = authenticate(s, b"again")
        assert (err, msg) == (ILLEGAL_SASL_STATE, "SaslAuthenticate request received "
                              "after successful authentication")
        assert handshake(s, "PLAIN") == (ILLEGAL_SASL_STATE, [])


def test_raw_tokens_after_handshake_v0(broker, certs):
    """SaslHandshake v0: the tokens are size-prefixed frames without Kafka
    headers; PLAIN's success is an empty frame, a failure closes."""
    b = broker
    with sasl_socket(b, certs) as s:
        assert handshake(s, "PLAIN", version=0)[0] == 0
        tok = b"\0alice\0" + PASSWORD.encode()
        s.sendall(struct.pack(">i", len(tok)) + tok)
        assert kproto.recv_exact(s, 4) == b"\0\0\0\0"
        assert kproto.api_versions_v0(s)[0] == 0
    with sasl_socket(b, certs) as s:
        assert handshake(s, "PLAIN", version=0)[0] == 0
        tok = b"\0alice\0nope"
        s.sendall(struct.pack(">i", len(tok)) + tok)
        assert kproto.closed_by_peer(s)


def test_user_added_while_running(broker, certs):
    """`sluice users add` on the store of a running agent: the next
    connection logs in within 1 s; `sluice users delete`: refused again."""
    b = broker
    with sasl_socket(b, certs) as s:
        assert plain_login(s, "carol", "c-pass")[0] == SASL_AUTHENTICATION_FAILED
    users(b.data_dir, "add", "carol", "--password-stdin", password="c-pass")
    added = time.monotonic()
    while True:
        with sasl_socket(b, certs, "SASL_SSL") as s:
            err, _, _ = scram_login(s, "SCRAM-SHA-512", "carol", "c-pass")
        if err == 0:
            break
        assert time.monotonic() - added < 1.0, "carol cannot log in 1 s after being added"
        time.sleep(0.05)
    took = time.monotonic() - added
    assert took < 1.0
    r = users(b.data_dir, "list")
    assert any(line.split()[:3] == ["carol", "SCRAM-SHA-512", "4096"]
               for line in r.stdout.decode().splitlines())
    users(b.data_dir, "delete", "carol")
    with sasl_socket(b, certs) as s:
        assert plain_login(s, "carol", "c-pass")[0] == SASL_AUTHENTICATION_FAILED
    r = users(b.data_dir, "delete", "carol", check=False)
    assert r.returncode == 1 and b"no SCRAM credential" in r.stderr


def test_users_cli_errors(tmp_path):
    _require_binary()
    d = tmp_path / "fresh" / "data"
    r = users(d, "add", "dave", check=False)
    assert r.returncode == 2 and b"--password-stdin is required" in r.stderr
    r = users(d, "add", "dave", "--iterations", "100", "--password-stdin", check=False)
    assert r.returncode == 2 and b"--iterations is 4096 to 16384" in r.stderr
    r = users(d, "add", "dave", "--mechanism", "PLAIN", "--password-stdin", check=False)
    assert r.returncode == 2
    r = users(d, "add", "dave", "--password-stdin", password="", check=False)
    assert r.returncode == 2 and b"no password" in r.stderr
    # The store is made when missing.
    users(d, "add", "dave", "--password-stdin")
    assert (d / "meta.db").exists()
    assert b"dave" in users(d, "list").stdout


# --- DescribeUserScramCredentials / AlterUserScramCredentials ----------------


def flex_request(sock, key, body, cid):
    sock.sendall(kproto.request_v2(key, 0, cid, body))
    got, data = kproto.recv_response(sock)
    assert got == cid
    return kproto.FlexReader(data[1:] if data[:1] == b"\0" else data)


def describe_scram(sock, names):
    cs, ca = kproto.compact_string, kproto.compact_array
    users_ = b"\0" if names is None else ca(cs(n) + b"\0" for n in names)
    r = flex_request(sock, API_DESCRIBE_SCRAM, users_ + b"\0", 41)
    r.i32()
    top = (r.i16(), r.cstring())

    def info():
        m, it = r.i8(), r.i32()
        r.tags()
        return (m, it)

    def result():
        user, err, msg = r.cstring(), r.i16(), r.cstring()
        infos = r.carray(info)
        r.tags()
        return user, err, msg, infos

    results = r.carray(result)
    r.tags()
    assert r.done()
    return top, {u: (e, m, i) for u, e, m, i in results}


def alter_scram(sock, deletions=(), upsertions=()):
    cs, ca = kproto.compact_string, kproto.compact_array
    body = ca(cs(n) + kproto.i8(m) + b"\0" for n, m in deletions)
    body += ca(cs(n) + kproto.i8(m) + kproto.i32(it) + flexible_bytes(salt) +
               flexible_bytes(salted) + b"\0"
               for n, m, it, salt, salted in upsertions)
    r = flex_request(sock, API_ALTER_SCRAM, body + b"\0", 42)
    r.i32()

    def result():
        user, err, msg = r.cstring(), r.i16(), r.cstring()
        r.tags()
        return user, (err, msg)

    out = dict(r.carray(result))
    r.tags()
    assert r.done()
    return out


def salted(mechanism, password, salt, iterations):
    h = "sha256" if mechanism == 1 else "sha512"
    return hashlib.pbkdf2_hmac(h, password.encode(), salt, iterations)


def test_describe_and_alter_user_scram_credentials(broker, certs):
    b = broker
    with sasl_socket(b, certs, "SASL_SSL") as s:
        assert scram_login(s, "SCRAM-SHA-512", "alice", PASSWORD)[0] == 0
        salt = os.urandom(24)
        res = alter_scram(s, upsertions=[
            ("erin", 1, 4096, salt, salted(1, "e-pass", salt, 4096)),
            ("erin2", 2, 10000, salt, salted(2, "e2", salt, 10000)),
            ("few", 1, 100, salt, b"x" * 32),
            ("many", 2, 20000, salt, b"x" * 64),
            ("mech", 3, 4096, salt, b"x" * 32),
            ("", 1, 4096, salt, b"x" * 32),
        ], deletions=[("nobody", 1), ("twice", 1)] + [("twice", 2)])
        assert res == {
            "erin": (0, None), "erin2": (0, None),
            "few": (UNACCEPTABLE_CREDENTIAL, "Too few iterations"),
            "many": (UNACCEPTABLE_CREDENTIAL, "Too many iterations"),
            "mech": (UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism"),
            "": (UNACCEPTABLE_CREDENTIAL, "Username must not be empty"),
            "nobody": (RESOURCE_NOT_FOUND,
                       "Attempt to delete a user credential that does not exist"),
            "twice": (DUPLICATE_RESOURCE,
                      "A user credential cannot be altered twice in the same request"),
        }
        top, res = describe_scram(s, ["erin", "alice", "erin", "ghost"])
        assert top == (0, None)
        assert res == {
            "alice": (0, None, [(1, 4096), (2, 4096)]),
            "erin": (DUPLICATE_RESOURCE, "Cannot describe SCRAM credentials for the "
                     "same user twice in a single request: erin", []),
            "ghost": (RESOURCE_NOT_FOUND, "Attempt to describe a user credential "
                      "that does not exist: ghost", []),
        }
        top, res = describe_scram(s, None)
        assert res["erin"] == (0, None, [(1, 4096)])
        assert res["erin2"] == (0, None, [(2, 10000)])
        assert res["bob"] == (0, None, [(1, 8192)])
        assert "few" not in res and "mech" not in res
    # erin, made through the API, logs in with every client's way.
    with sasl_socket(b, certs, "SASL_SSL") as s:
        assert scram_login(s, "SCRAM-SHA-256", "erin", "e-pass")[0] == 0
    with sasl_socket(b, certs) as s:
        assert plain_login(s, "erin2", "e2")[0] == 0
        # Deleting through the API: gone for the next login.
        assert alter_scram(s, deletions=[("erin", 1)]) == {"erin": (0, None)}
    with sasl_socket(b, certs) as s:
        assert plain_login(s, "erin", "e-pass")[0] == SASL_AUTHENTICATION_FAILED
    topic = util.create_topic(b.bootstrap, util.topic_name("er"), 1)
    util.ck_produce(b.sasl_ssl_bootstrap, topic, util.make_messages(10, seed=3),
                    **ck_conf(certs, "SASL_SSL", "SCRAM-SHA-512", "erin2", "e2"))


# --- users shared by the agents of one PostgreSQL store -----------------------


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    from test_postgres import Server
    s = Server(tmp_path_factory.mktemp("pg"))
    yield s
    s.stop()


@pytest.mark.skipif(bool(os.environ.get("SLUICE_SANITIZED")),
                    reason="PostgreSQL runs in the plain build only, as test_postgres")
def test_users_on_every_agent_of_postgresql(broker_factory, pg):
    """Two agents on one PostgreSQL: a user made through one agent's
    AlterUserScramCredentials logs in at the other within 1 s, and one
    made with `sluice users add --meta` at both."""
    url = pg.db_url(pg.new_db())
    agents = []
    for i in range(2):
        plain, sasl = free_port(), free_port()
        b = broker_factory(["--meta", url, "--listen",
                            "PLAINTEXT://127.0.0.1:%d,SASL_PLAINTEXT://127.0.0.1:%d"
                            % (plain, sasl)], port=plain, name="agent%d" % i)
        b.sasl_bootstrap = "127.0.0.1:%d" % sasl
        agents.append(b)
    a, b = agents

    def logs_in_within_1s(agent, user, password, mechanism):
        start = time.monotonic()
        while True:
            with kproto.connect(agent.sasl_bootstrap) as s:
                if mechanism == "PLAIN":
                    err = plain_login(s, user, password)[0]
                else:
                    err = scram_login(s, mechanism, user, password)[0]
            if err == 0:
                return time.monotonic() - start
            assert time.monotonic() - start < 1.0, "%s cannot log in at %s" % (
                user, agent.sasl_bootstrap)
            time.sleep(0.05)

    salt = os.urandom(16)
    with kproto.connect(a.bootstrap) as s:
        assert alter_scram(s, upsertions=[
            ("frank", 2, 4096, salt, salted(2, "f-pass", salt, 4096))]) == {"frank": (0, None)}
    assert logs_in_within_1s(b, "frank", "f-pass", "SCRAM-SHA-512") < 1.0
    r = subprocess.run([SLUICE_BIN, "users", "add", "gina", "--mechanism", "SCRAM-SHA-256",
                        "--password-stdin", "--meta", url], input=b"g-pass\n",
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    for agent in agents:
        assert logs_in_within_1s(agent, "gina", "g-pass", "PLAIN") < 1.0
    with kproto.connect(b.bootstrap) as s:
        top, res = describe_scram(s, None)
    assert res == {"frank": (0, None, [(2, 4096)]), "gina": (0, None, [(1, 4096)])}
    assert pg.psql("SELECT count(*) FROM scram_credentials", url.rsplit("/", 1)[1]) == "2"


def test_stalled_login_dropped(tmp_path, certs, broker_factory):
    """A client that connects to a SASL listener and never logs in (here:
    one that stops after the handshake) is closed after the login timeout
    (30 s; 1.5 s here), while another logs in and works meanwhile."""
    data = tmp_path / "stall"
    users(data, "add", "alice", "--password-stdin")
    plain, sasl = free_port(), free_port()
    b = broker_factory(["--listen", "PLAINTEXT://127.0.0.1:%d,SASL_PLAINTEXT://127.0.0.1:%d"
                        % (plain, sasl)], port=plain, name="stall",
                       env={"SLUICE_SASL_LOGIN_TIMEOUT_MS": "1500"})
    b.sasl_bootstrap = "127.0.0.1:%d" % sasl
    stalled = kproto.connect(b.sasl_bootstrap)
    assert handshake(stalled, "SCRAM-SHA-512")[0] == 0
    idle = kproto.connect(b.sasl_bootstrap)
    t0 = time.monotonic()
    with kproto.connect(b.sasl_bootstrap) as s:
        assert scram_login(s, "SCRAM-SHA-512", "alice", PASSWORD)[0] == 0
        for sock in (stalled, idle):
            assert kproto.closed_by_peer(sock, timeout=6)
        assert 1.0 < time.monotonic() - t0 < 6
        # The one logged in stays.
        assert kproto.api_versions_v0(s)[0] == 0
    stalled.close()
    idle.close()
    with open(b.stderr, "rb") as f:
        assert b"SASL login not done after 1500 ms; closing" in f.read()


def test_sasl_mechanisms(tmp_path, broker_factory):
    """--sasl-mechanisms SCRAM-SHA-512,PLAIN: SaslHandshake lists exactly
    those, in that order; SCRAM-SHA-256 (known, not offered) is answered
    UNSUPPORTED_SASL_MECHANISM with the list and the connection closes,
    as Kafka with sasl.enabled.mechanisms; librdkafka logs in with an
    offered one and not with the other. An unknown name does not start."""
    data = tmp_path / "mechs"
    users(data, "add", "alice", "--mechanism", "SCRAM-SHA-256", "--password-stdin")
    users(data, "add", "alice", "--mechanism", "SCRAM-SHA-512", "--password-stdin")
    plain, sasl = free_port(), free_port()
    b = broker_factory(["--listen", "PLAINTEXT://127.0.0.1:%d,SASL_PLAINTEXT://127.0.0.1:%d"
                        % (plain, sasl), "--sasl-mechanisms", "SCRAM-SHA-512,PLAIN"],
                       port=plain, name="mechs")
    b.sasl_bootstrap = "127.0.0.1:%d" % sasl
    with kproto.connect(b.sasl_bootstrap) as s:
        assert handshake(s, "SCRAM-SHA-256") == (UNSUPPORTED_SASL_MECHANISM,
                                                 ["SCRAM-SHA-512", "PLAIN"])
        assert kproto.closed_by_peer(s)
    with kproto.connect(b.sasl_bootstrap) as s:
        assert handshake(s, "PLAIN", version=0) == (0, ["SCRAM-SHA-512", "PLAIN"])
    with kproto.connect(b.sasl_bootstrap) as s:
        assert scram_login(s, "SCRAM-SHA-512", "alice", PASSWORD)[0] == 0
    topic = util.create_topic(b.bootstrap, util.topic_name("mech"), 1)
    util.ck_produce(b.sasl_bootstrap, topic, util.make_messages(5, seed=9),
                    **ck_conf(None, "SASL_PLAINTEXT", "PLAIN"))
    p = Producer(dict(ck_conf(None, "SASL_PLAINTEXT", "SCRAM-SHA-256"),
                      **{"bootstrap.servers": b.sasl_bootstrap, "message.timeout.ms": 3000}))
    errors = []
    p.produce(topic, b"v", on_delivery=lambda err, msg: errors.append(err))
    p.flush(10)
    assert errors and errors[0] is not None
    r = subprocess.run([SLUICE_BIN, "serve", "--data", str(tmp_path / "bad"),
                        "--sasl-mechanisms", "PLAIN,GSSAPI"], capture_output=True, timeout=30)
    assert r.returncode == 2 and b"--sasl-mechanisms" in r.stderr


def test_close_after_response_sends_close_notify(broker, certs):
    """On a SASL_SSL listener a refusal that ends the connection (here a
    mechanism not offered) is followed by TLS close_notify, then the FIN:
    a strict reader (ragged EOFs not suppressed, which would raise
    SSLEOFError on a bare FIN) sees a clean end of stream."""
    import ssl
    ctx = ssl.create_default_context(cafile=certs["ca"])
    ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF  # Python sets it: a bare EOF would pass
    s = ctx.wrap_socket(kproto.connect(broker.sasl_ssl_bootstrap),
                        server_hostname="127.0.0.1", suppress_ragged_eofs=False)
    try:
        assert handshake(s, "GSSAPI")[0] == UNSUPPORTED_SASL_MECHANISM
        s.settimeout(5)
        assert s.recv(1) == b""
    finally:
        s.close()
