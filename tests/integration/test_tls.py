"""test_tls.py — SSL listeners: every client library over TLS byte for
byte, a PLAINTEXT and an SSL listener side by side each advertised to its
own clients, large messages and a many-MB fetch through the TLS records,
mutual TLS and its principal, plaintext and garbage on the TLS port, a
handshake that stalls, renegotiation, a certificate reload on SIGHUP,
custom listener names (--listener-security-protocol-map), a close_notify
at shutdown, and a shutdown that a client not reading cannot hold.

Certificates are made here with the openssl command line: a CA, a server
certificate with IP and DNS SANs, a client certificate with a CN, and a
second server certificate for the reload."""
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest
from confluent_kafka import KafkaException, Producer

import kproto
import util
from conftest import Broker, SLUICE_BIN, _require_binary
from util import free_port

JS_DIR = os.path.join(os.path.dirname(__file__), "js")
PARTS = 4


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   capture_output=True)


def make_cert(d, name, cn, san=None, days=2):
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key",
            "-out", name + ".csr", "-subj", "/CN=" + cn, cwd=d)
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        if san:
            f.write("subjectAltName=%s\n" % san)
        f.write("extendedKeyUsage=serverAuth,clientAuth\n")
    openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey",
            "ca.key", "-CAcreateserial", "-out", name + ".pem", "-days",
            str(days), "-extfile", ext, cwd=d)
    return os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")


def make_ca_and_server(d):
    """A CA and a server certificate with IP and DNS SANs, in d:
    {"dir", "ca", "server": (pem, key)}."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
            "ca.key", "-out", "ca.pem", "-days", "2", "-subj",
            "/CN=sluice-test-ca", cwd=d)
    c = {"dir": d, "ca": os.path.join(d, "ca.pem")}
    c["server"] = make_cert(d, "server", "sluice-server",
                            "IP:127.0.0.1,DNS:localhost")
    return c


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    c = make_ca_and_server(str(tmp_path_factory.mktemp("certs")))
    d = c["dir"]
    c["server2"] = make_cert(d, "server2", "sluice-server-2",
                             "IP:127.0.0.1,DNS:localhost")
    c["client"] = make_cert(d, "client", "alice")
    return c


def tls_args(certs, cert=None, extra=()):
    cert = cert or certs["server"]
    return ["--tls-cert", cert[0], "--tls-key", cert[1]] + list(extra)


def start_broker(tmp, name, certs, ssl_only=False, extra=(), env=None,
                 cert=None):
    """A broker with a PLAINTEXT listener (for the helpers in util) and an
    SSL one; .ssl_bootstrap is the latter."""
    _require_binary()
    plain, secure = free_port(), free_port()
    listen = "PLAINTEXT://127.0.0.1:%d,SSL://127.0.0.1:%d" % (plain, secure)
    b = Broker(tmp / name, ["--listen", listen] + tls_args(certs, cert, extra),
               port=plain, env=env)
    b.ssl_bootstrap = "127.0.0.1:%d" % secure
    b.start()
    return b


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory, certs):
    b = start_broker(tmp_path_factory.mktemp("tls"), "data", certs)
    yield b
    b.teardown()


@pytest.fixture
def made(request):
    brokers = []
    yield brokers
    for b in brokers:
        b.teardown()


def ck_ssl(certs, client=False):
    conf = {"security.protocol": "SSL", "ssl.ca.location": certs["ca"]}
    if client:
        conf["ssl.certificate.location"] = certs["client"][0]
        conf["ssl.key.location"] = certs["client"][1]
    return conf


def tls_socket(bootstrap, certs, client=False, timeout=10):
    ctx = ssl.create_default_context(cafile=certs["ca"])
    if client:
        ctx.load_cert_chain(*certs["client"])
    raw = kproto.connect(bootstrap, timeout)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def test_confluent_kafka_and_advertised_listener(tls_broker, certs):
    b = tls_broker
    topic = util.create_topic(b.bootstrap, util.topic_name("ck"), PARTS)
    msgs = util.make_messages(20000, seed=21)
    util.ck_produce(b.ssl_bootstrap, topic, msgs, **ck_ssl(certs))
    got = util.consume_all(b.ssl_bootstrap, topic, PARTS, expect=len(msgs),
                           **ck_ssl(certs))
    util.check_roundtrip(msgs, got)
    # Each client is told the address of the listener it came in on, by
    # Metadata and by FindCoordinator (the agent's endpoint of that
    # listener in the placement view).
    ssl_port = int(b.ssl_bootstrap.split(":")[1])
    with tls_socket(b.ssl_bootstrap, certs) as s:
        brokers, _ = kproto.metadata_v1(s, [topic])
        assert [(h, p) for _, h, p, _ in brokers] == [("127.0.0.1", ssl_port)]
        assert find_coordinator_v1(s, "g") == (0, "127.0.0.1", ssl_port)
    with kproto.connect(b.bootstrap) as s:
        brokers, _ = kproto.metadata_v1(s, [topic])
        assert [(h, p) for _, h, p, _ in brokers] == [("127.0.0.1", b.port)]
        assert find_coordinator_v1(s, "g") == (0, "127.0.0.1", b.port)


def find_coordinator_v1(sock, group):
    """FindCoordinator v1 for a group: (error, host, port)."""
    r = kproto.Reader(kproto.roundtrip(sock, 10, 1, kproto.string(group) +
                                       kproto.i8(0)))
    _, err, _, _, host, port = (r.i32(), r.i16(), r.string(), r.i32(),
                                r.string(), r.i32())
    return err, host, port


def test_kafka_python(tls_broker, certs):
    b = tls_broker
    topic = util.create_topic(b.bootstrap, util.topic_name("kp"), PARTS)
    msgs = util.make_messages(5000, seed=22)
    got = util.kp_roundtrip(topic, PARTS, msgs, bootstrap_servers=b.ssl_bootstrap,
                            security_protocol="SSL", ssl_cafile=certs["ca"])
    util.check_roundtrip(msgs, got)


def test_kcat(tls_broker, certs, tmp_path):
    b = tls_broker
    topic = util.create_topic(b.bootstrap, util.topic_name("kc"), 1)
    lines = ["line-%d-%s" % (i, os.urandom(8).hex()) for i in range(3000)]
    path = tmp_path / "in.txt"
    path.write_text("\n".join(lines) + "\n")
    ssl_x = ["-X", "security.protocol=ssl", "-X",
             "ssl.ca.location=" + certs["ca"]]
    r = subprocess.run(["kcat", "-P", "-b", b.ssl_bootstrap, "-t", topic,
                        "-l", str(path)] + ssl_x, capture_output=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    r = subprocess.run(["kcat", "-C", "-b", b.ssl_bootstrap, "-t", topic,
                        "-e", "-q", "-f", "%s\n"] + ssl_x,
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().splitlines() == lines


def test_kafkajs(tls_broker, certs, tmp_path):
    if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "kafkajs")):
        pytest.fail("kafkajs is not installed in %s/node_modules" % JS_DIR)
    b = tls_broker
    topic = util.create_topic(b.bootstrap, util.topic_name("js"), PARTS)
    msgs = util.make_messages(5000, seed=24)
    path = tmp_path / "msgs.jsonl"
    util.js_messages_file(path, msgs)
    env = dict(os.environ, SLUICE_JS_SSL_CA=certs["ca"])
    r = subprocess.run(["node", os.path.join(JS_DIR, "produce.js"),
                        b.ssl_bootstrap, topic, str(path)],
                       capture_output=True, timeout=300, cwd=JS_DIR, env=env)
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    got = util.consume_all(b.ssl_bootstrap, topic, PARTS, expect=len(msgs),
                           **ck_ssl(certs))
    util.check_roundtrip(msgs, got)


def test_large_messages_and_many_mb_fetch(tls_broker, certs):
    """900 KB messages and 48 MB read back through TLS: the fetch
    responses' pieces (straight from the cached objects) become records."""
    b = tls_broker
    topic = util.create_topic(b.bootstrap, util.topic_name("big"), 2)
    msgs = util.make_messages(56, seed=25, value_size=(700000, 900000),
                              headers=False)
    util.ck_produce(b.ssl_bootstrap, topic, msgs, **ck_ssl(certs))
    small = util.make_messages(20000, seed=26, value_size=(1000, 3000))
    util.ck_produce(b.bootstrap, topic, small)
    for fetch_max in (1 << 20, 50 << 20):
        got = util.consume_all(b.ssl_bootstrap, topic, 2,
                               expect=len(msgs) + len(small),
                               **dict(ck_ssl(certs),
                                      **{"fetch.max.bytes": fetch_max}))
        assert sorted(g.value for gs in got.values() for g in gs) == \
            sorted(m.value for m in msgs + small)


def test_plaintext_and_garbage_on_tls_port(tls_broker, certs):
    b = tls_broker
    with tls_socket(b.ssl_bootstrap, certs) as good:
        assert kproto.api_versions_v0(good)[0] == 0
        # A Kafka request in clear text: OpenSSL fails the handshake (it may
        # send an alert first, so any bytes are allowed), the connection
        # closes.
        with kproto.connect(b.ssl_bootstrap) as s:
            s.sendall(kproto.request(kproto.API_API_VERSIONS, 0, 1, b""))
            assert closed_soon(s)
        # Garbage: its first byte is no TLS record type and not an SSLv2
        # ClientHello header (high bit set, a 15-bit length), else it may
        # announce more than 5000 bytes and rightly be waited for (about
        # one random buffer in 500 did: an SSLv2 header with type 1).
        with kproto.connect(b.ssl_bootstrap) as s:
            s.sendall(b"\x00" + os.urandom(4999))
            assert closed_soon(s)
        # A ClientHello record header announcing garbage.
        with kproto.connect(b.ssl_bootstrap) as s:
            s.sendall(b"\x16\x03\x01\x00\x40" + os.urandom(64))
            assert closed_soon(s)
        # The client already connected is untouched.
        assert kproto.api_versions_v0(good)[0] == 0
        p = Producer(dict(ck_ssl(certs), **{"bootstrap.servers":
                                            b.ssl_bootstrap}))
        assert p.list_topics(timeout=10).brokers


def closed_soon(sock, timeout=10):
    """EOF or a reset within timeout (an alert before it is fine)."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not sock.recv(65536):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
    return False


def client_hello():
    """The first flight of a real TLS client."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_side=False)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def test_stalled_handshake_dropped(tmp_path, certs, made):
    b = start_broker(tmp_path, "stall", certs,
                     env={"SLUICE_TLS_HANDSHAKE_TIMEOUT_MS": "1500"})
    made.append(b)
    hello = client_hello()
    stalled = kproto.connect(b.ssl_bootstrap)
    stalled.sendall(hello[:len(hello) // 2])
    silent = kproto.connect(b.ssl_bootstrap)   # sends nothing at all
    t0 = time.monotonic()
    with tls_socket(b.ssl_bootstrap, certs) as good:
        assert kproto.api_versions_v0(good)[0] == 0
        assert closed_soon(stalled, 10)
        assert closed_soon(silent, 10)
        waited = time.monotonic() - t0
        assert 1.0 < waited < 6, waited
        # The connection that finished its handshake is not timed out.
        time.sleep(2)
        assert kproto.api_versions_v0(good)[0] == 0
    stalled.close()
    silent.close()
    with open(b.stderr) as f:
        assert "TLS handshake not done after 1500 ms" in f.read()


def test_mutual_tls_required(tmp_path, certs, made):
    b = start_broker(tmp_path, "mtls", certs,
                     extra=["--tls-ca", certs["ca"], "--tls-client-auth",
                            "required", "--log-level", "debug"])
    made.append(b)
    # Without a certificate: refused (TLS 1.3 reports it on the first read).
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        with tls_socket(b.ssl_bootstrap, certs) as s:
            kproto.api_versions_v0(s)
    p = Producer(dict(ck_ssl(certs), **{"bootstrap.servers": b.ssl_bootstrap}))
    with pytest.raises(KafkaException):
        p.list_topics(timeout=4)
    # With one: served, and the principal is its CN.
    topic = util.create_topic(b.bootstrap, util.topic_name("mt"), 1)
    msgs = util.make_messages(2000, seed=27)
    util.ck_produce(b.ssl_bootstrap, topic, msgs, **ck_ssl(certs, True))
    got = util.consume_all(b.ssl_bootstrap, topic, 1, expect=len(msgs),
                           **ck_ssl(certs, True))
    util.check_roundtrip(msgs, got)
    with open(b.stderr) as f:
        log = f.read()
    assert "principal User:alice" in log
    # The plaintext listener of the same broker stays anonymous and open.
    with kproto.connect(b.bootstrap) as s:
        assert kproto.api_versions_v0(s)[0] == 0


def test_mutual_tls_requested(tmp_path, certs, made):
    b = start_broker(tmp_path, "mtls-req", certs,
                     extra=["--tls-ca", certs["ca"], "--tls-client-auth",
                            "requested", "--log-level", "debug"])
    made.append(b)
    with tls_socket(b.ssl_bootstrap, certs) as s:
        assert kproto.api_versions_v0(s)[0] == 0
    with tls_socket(b.ssl_bootstrap, certs, client=True) as s:
        assert kproto.api_versions_v0(s)[0] == 0
    with open(b.stderr) as f:
        log = f.read()
    assert "principal User:ANONYMOUS" in log
    assert "principal User:alice" in log


def peer_cn(bootstrap, certs):
    with tls_socket(bootstrap, certs) as s:
        subject = dict(x[0] for x in s.getpeercert()["subject"])
        return subject["commonName"]


def test_sighup_reloads_certificate(tmp_path, certs, made):
    d = tmp_path / "live"
    d.mkdir()
    cert, key = str(d / "cert.pem"), str(d / "key.pem")
    shutil.copy(certs["server"][0], cert)
    shutil.copy(certs["server"][1], key)
    b = start_broker(tmp_path, "reload", certs, cert=(cert, key))
    made.append(b)
    assert peer_cn(b.ssl_bootstrap, certs) == "sluice-server"
    old = tls_socket(b.ssl_bootstrap, certs)
    assert kproto.api_versions_v0(old)[0] == 0
    # A file that does not load keeps the current certificate.
    with open(key, "w") as f:
        f.write("not a key\n")
    b.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    assert peer_cn(b.ssl_bootstrap, certs) == "sluice-server"
    shutil.copy(certs["server2"][0], cert)
    shutil.copy(certs["server2"][1], key)
    b.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while peer_cn(b.ssl_bootstrap, certs) != "sluice-server-2":
        assert time.monotonic() < deadline, "certificate not reloaded"
        time.sleep(0.1)
    # The connection made before keeps its session and is served.
    assert kproto.api_versions_v0(old, correlation_id=12)[0] == 0
    brokers, _ = kproto.metadata_v1(old)
    assert brokers
    old.close()
    with open(b.stderr) as f:
        log = f.read()
    assert "TLS certificate not reloaded" in log
    assert "TLS certificate reloaded: /CN=sluice-server-2" in log


def test_renegotiation_closes(tls_broker, certs):
    """TLS 1.2 renegotiation from openssl s_client ("R"): the connection
    closes; others go on."""
    b = tls_broker
    p = subprocess.Popen(["openssl", "s_client", "-connect", b.ssl_bootstrap,
                          "-tls1_2", "-CAfile", certs["ca"]],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    time.sleep(1)
    p.stdin.write(b"R\n")
    p.stdin.flush()
    try:
        out, _ = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        pytest.fail("s_client still connected after renegotiating:\n%s"
                    % out.decode()[-2000:])
    assert b"RENEGOTIATING" in out
    with tls_socket(b.ssl_bootstrap, certs) as s:
        assert kproto.api_versions_v0(s)[0] == 0


def test_config_errors(tmp_path, certs):
    _require_binary()
    def run(*args):
        r = subprocess.run([SLUICE_BIN, "serve", "--data",
                            str(tmp_path / "x")] + list(args),
                           capture_output=True, timeout=20)
        return r.returncode, r.stderr.decode()
    rc, err = run("--listen", "SASL_SSL://127.0.0.1:%d" % free_port())
    assert rc == 2 and "need --tls-cert" in err
    rc, err = run("--listen", "SSL://127.0.0.1:%d" % free_port())
    assert rc == 2 and "need --tls-cert" in err
    rc, err = run("--listen", "BOGUS://127.0.0.1:1")
    assert rc == 2
    rc, err = run("--listen", "127.0.0.1:%d" % free_port(), "--advertise",
                  "SSL://a:1")
    assert rc == 2 and "names listener SSL, which --listen does not have" in err
    # Without a NAME:// the listener is PLAINTEXT; names must differ
    # (Kafka's rule).
    rc, err = run("--listen", "127.0.0.1:%d,PLAINTEXT://127.0.0.1:%d"
                  % (free_port(), free_port()))
    assert rc == 2 and "two listeners named PLAINTEXT" in err
    rc, err = run("--listen", "INTERNAL://127.0.0.1:%d,internal://127.0.0.1:%d"
                  % (free_port(), free_port()),
                  "--listener-security-protocol-map", "INTERNAL:PLAINTEXT")
    assert rc == 2 and "two listeners named INTERNAL" in err
    # A custom name needs its protocol in the map.
    rc, err = run("--listen", "INTERNAL://127.0.0.1:%d" % free_port())
    assert rc == 2 and "no security protocol for listener INTERNAL" in err
    rc, err = run("--listen", "INTERNAL://127.0.0.1:%d" % free_port(),
                  "--listener-security-protocol-map", "EXTERNAL:SSL")
    assert rc == 2 and "no security protocol for listener INTERNAL" in err
    for bad in ("INTERNAL:TLS", "INTERNAL", "INTERNAL:PLAINTEXT,INTERNAL:SSL",
                "IN TERNAL:SSL", ":SSL"):
        rc, err = run("--listen", "INTERNAL://127.0.0.1:%d" % free_port(),
                      "--listener-security-protocol-map", bad)
        assert rc == 2 and "bad value for --listener-security-protocol-map" in err, bad
    rc, err = run("--listen", "A://127.0.0.1:%d,B://127.0.0.1:%d" % (free_port(), free_port()),
                  "--listener-security-protocol-map", "A:PLAINTEXT,B:PLAINTEXT",
                  "--advertise", "B://x:1,y:2")
    assert rc == 2 and "two entries for listener B" in err
    rc, err = run("--listen", "SSL://127.0.0.1:%d" % free_port(),
                  "--tls-cert", certs["server"][0], "--tls-key",
                  certs["server2"][1])
    assert rc == 1 and "mismatch" in err


def test_custom_listener_names(tmp_path, certs, made):
    """Kafka's named listeners: INTERNAL (PLAINTEXT), EXTERNAL (SSL,
    advertised as localhost by name) and BACKUP (PLAINTEXT too, which a
    listener named by its protocol could not be), protocols from
    --listener-security-protocol-map. Each connection is told the
    endpoints of its own listener's name: a producer on INTERNAL and
    consumers on EXTERNAL (TLS, verifying the hostname it was told) and
    BACKUP see one topic."""
    _require_binary()
    internal, external, backup = free_port(), free_port(), free_port()
    b = Broker(tmp_path / "data", [
        "--listen", "internal://127.0.0.1:%d,EXTERNAL://127.0.0.1:%d,Backup://127.0.0.1:%d"
        % (internal, external, backup),
        "--listener-security-protocol-map", "INTERNAL:PLAINTEXT,EXTERNAL:SSL,BACKUP:PLAINTEXT",
        "--advertise", "EXTERNAL://localhost:%d" % external] + tls_args(certs),
        port=internal)
    b.start()
    made.append(b)
    ext = "localhost:%d" % external
    with kproto.connect(b.bootstrap) as s:
        brokers, _ = kproto.metadata_v1(s)
        assert [(h, p) for _, h, p, _ in brokers] == [("127.0.0.1", internal)]
        assert find_coordinator_v1(s, "g") == (0, "127.0.0.1", internal)
    with kproto.connect("127.0.0.1:%d" % backup) as s:
        brokers, _ = kproto.metadata_v1(s)
        assert [(h, p) for _, h, p, _ in brokers] == [("127.0.0.1", backup)]
        assert kproto.describe_cluster(s)["brokers"][0][1:3] == ("127.0.0.1", backup)
    with tls_socket(ext, certs) as s:
        brokers, _ = kproto.metadata_v1(s)
        assert [(h, p) for _, h, p, _ in brokers] == [("localhost", external)]
        assert find_coordinator_v1(s, "g") == (0, "localhost", external)
    # a plaintext client on the SSL-mapped listener is refused
    with kproto.connect(ext) as s:
        s.sendall(kproto.request(kproto.API_API_VERSIONS, 0, 1, b""))
        assert closed_soon(s)

    topic = util.create_topic(b.bootstrap, util.topic_name("named"), PARTS)
    msgs = util.make_messages(3000, seed=31)
    util.ck_produce(b.bootstrap, topic, msgs)
    conf = ck_ssl(certs)
    conf["ssl.endpoint.identification.algorithm"] = "https"
    got = util.consume_all(ext, topic, PARTS, expect=len(msgs), **conf)
    util.check_roundtrip(msgs, got)
    got = util.consume_all("127.0.0.1:%d" % backup, topic, PARTS, expect=len(msgs))
    util.check_roundtrip(msgs, got)
    # kafka-python over the named SSL listener, checking the hostname too
    msgs = util.make_messages(500, seed=32)
    topic2 = util.create_topic(b.bootstrap, util.topic_name("named-kp"), PARTS)
    got = util.kp_roundtrip(topic2, PARTS, msgs, bootstrap_servers=ext,
                            security_protocol="SSL", ssl_cafile=certs["ca"],
                            ssl_check_hostname=True)
    util.check_roundtrip(msgs, got)
    with open(b.stderr) as f:
        log = f.read()
    assert "listening on EXTERNAL://127.0.0.1:%d (SSL, advertised localhost:%d)" % (
        external, external) in log


def test_hostname_listener_and_advertise(tmp_path, made):
    _require_binary()
    port = free_port()
    b = Broker(tmp_path / "h", ["--listen", "PLAINTEXT://localhost:%d" % port,
                                "--advertise", "kafka.example:19092"],
               port=port)
    b.start()
    made.append(b)
    with kproto.connect(b.bootstrap) as s:
        brokers, _ = kproto.metadata_v1(s)
        assert [(h, p) for _, h, p, _ in brokers] == [("kafka.example", 19092)]


def test_close_notify(tls_broker, certs):
    """A clean end is a TLS close_notify, not a bare FIN (RFC 8446 6.1, as
    Kafka's SslTransportLayer): the broker answers a client's
    close_notify with its own (ssl.unwrap() completes; without it unwrap
    fails on the bare EOF). test_sasl checks the close after a last
    response."""
    ctx = ssl.create_default_context(cafile=certs["ca"])
    ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF  # Python sets it: a bare EOF would pass
    s = ctx.wrap_socket(kproto.connect(tls_broker.ssl_bootstrap), server_hostname="127.0.0.1",
                        suppress_ragged_eofs=False)
    try:
        assert kproto.api_versions_v0(s)[0] == 0
        raw = s.unwrap()  # ours out, the broker's in
        assert kproto.closed_by_peer(raw)
    finally:
        s.close()


def test_close_notify_at_shutdown(tmp_path, certs, made):
    """An agent that shuts down (SIGTERM, drain) ends each TLS connection
    with a close_notify after its last response, as Kafka's broker does:
    a client reading then sees a clean end (recv gives b""), not a
    truncation (SSLEOFError on a bare FIN)."""
    b = start_broker(tmp_path, "data", certs)
    made.append(b)
    ctx = ssl.create_default_context(cafile=certs["ca"])
    ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF  # Python sets it: a bare EOF would pass
    socks = []
    try:
        for _ in range(2):
            s = ctx.wrap_socket(kproto.connect(b.ssl_bootstrap), server_hostname="127.0.0.1",
                                suppress_ragged_eofs=False)
            socks.append(s)
            assert kproto.api_versions_v0(s)[0] == 0
        started = time.monotonic()
        b.stop()
        for s in socks:
            s.settimeout(10)
            assert s.recv(16) == b""  # close_notify; a bare FIN raises SSLEOFError
        assert time.monotonic() - started < 10
    finally:
        for s in socks:
            s.close()


def test_shutdown_with_a_client_not_reading(tmp_path, certs, made):
    """A client that stops reading while large answers are queued for it
    cannot hold the agent's exit: its connection, whose close_notify and
    FIN cannot go out, is closed about 1 s into the shutdown, and a
    reading client beside it still gets its close_notify."""
    b = start_broker(tmp_path, "data", certs)
    made.append(b)
    topic = util.create_topic(b.bootstrap, util.topic_name("stuck"), 1)
    util.ck_produce(b.bootstrap, topic, util.make_messages(3000, value_size=(900, 1000), seed=41))
    ctx = ssl.create_default_context(cafile=certs["ca"])
    ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
    good = ctx.wrap_socket(kproto.connect(b.ssl_bootstrap), server_hostname="127.0.0.1",
                           suppress_ragged_eofs=False)
    stuck = ctx.wrap_socket(kproto.connect(b.ssl_bootstrap), server_hostname="127.0.0.1")
    try:
        assert kproto.api_versions_v0(good)[0] == 0
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        body = kproto.fetch_body(7, 0, -1, [(topic, [(0, 0, 4 << 20)])])
        frame = kproto.request(kproto.API_FETCH, 7, 1, body)
        for _ in range(40):  # ~120 MB of answers, never read
            stuck.sendall(frame)
        time.sleep(1)
        started = time.monotonic()
        b.stop()
        assert time.monotonic() - started < 8
        good.settimeout(10)
        assert good.recv(16) == b""
    finally:
        good.close()
        stuck.close()
