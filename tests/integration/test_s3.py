"""test_s3.py — the S3 object store against a real S3-compatible server.

By default a local s3rver (npm, tests/integration/js/node_modules) is
started on a free loopback port with a bucket created at its start. Set
SLUICE_TEST_S3_ENDPOINT (and SLUICE_TEST_S3_BUCKET, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, optionally AWS_SESSION_TOKEN and AWS_REGION) to run
the same tests against MinIO, AWS or any other endpoint; tests that must
stop the server itself are then skipped. Every test writes under its own
prefix of the bucket.

Between the broker and the server a small Python HTTP proxy can sit: it
verifies every request's SigV4 signature and payload hash (s3rver checks
neither), re-signs the request for the upstream, and can be told to answer
503 SlowDown to every other request or to never answer at all.

Covers: produce/consume round trips with every client library; the key
layout in the bucket; `sluice inspect object --store s3://...`; stopping
the server mid-produce (no acknowledgements while it is down, the load
resumes, every acknowledged message is read exactly once); SlowDown on
every other request; a server that never answers (the broker still answers
ApiVersions and Metadata); bad configuration (wrong credentials, missing
bucket, unreachable endpoint) exits 1 with one error line.
"""
import datetime
import hashlib
import hmac
import http.client
import http.server
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET

import pytest
from confluent_kafka import Producer

import kproto
import util
from conftest import SLUICE_BIN, log_tail

JS_DIR = os.path.join(os.path.dirname(__file__), "js")
S3RVER_BIN = os.path.join(JS_DIR, "node_modules", ".bin", "s3rver")
S3RVER_KEY = "S3RVER"  # s3rver's built-in account (id and secret)

EXTERNAL = bool(os.environ.get("SLUICE_TEST_S3_ENDPOINT"))

# Short per-attempt and total deadlines keep the fault tests quick.
FAST = "timeout_ms=1000&total_timeout_ms=4000"


# --------------------------------------------------------------------------
# SigV4 (for the proxy's checks and re-signing, and the test's own listing)

def uri_encode(s, keep_slash):
    return urllib.parse.quote(s, safe="-_.~" + ("/" if keep_slash else ""))


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def canonical_query(raw):
    pairs = []
    for part in raw.split("&") if raw else []:
        k, _, v = part.partition("=")
        pairs.append((uri_encode(urllib.parse.unquote(k), False),
                      uri_encode(urllib.parse.unquote(v), False)))
    return "&".join("%s=%s" % kv for kv in sorted(pairs))


def signature(method, raw_path, raw_query, headers, signed, payload_hash,
              amz_date, region, secret):
    """headers: {lower-case name: value}; signed: sorted lower-case names."""
    path = uri_encode(urllib.parse.unquote(raw_path), True)
    canon_headers = "".join(
        "%s:%s\n" % (n, " ".join(headers.get(n, "").strip().split()))
        for n in signed)
    creq = "\n".join([method, path, canonical_query(raw_query), canon_headers,
                      ";".join(signed), payload_hash])
    scope = "%s/%s/s3/aws4_request" % (amz_date[:8], region)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    k = _hmac(("AWS4" + secret).encode(), amz_date[:8])
    k = _hmac(k, region)
    k = _hmac(k, "s3")
    k = _hmac(k, "aws4_request")
    return scope, hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()


def sign_headers(method, host, raw_path, raw_query, headers, body, creds,
                 region):
    """Returns headers (a new dict, lower-case names) with host, x-amz-date,
    x-amz-content-sha256, the token and Authorization set."""
    h = {k.lower(): v for k, v in headers.items()
         if k.lower() not in ("authorization", "x-amz-date", "host",
                              "connection", "expect", "content-length",
                              "transfer-encoding", "user-agent", "accept")}
    h["host"] = host
    h["x-amz-date"] = datetime.datetime.utcnow().strftime("%Y%m%dT%H%M%SZ")
    if "x-amz-content-sha256" not in h:
        h["x-amz-content-sha256"] = hashlib.sha256(body).hexdigest()
    if creds.get("token"):
        h["x-amz-security-token"] = creds["token"]
    signed = sorted(h)
    scope, sig = signature(method, raw_path, raw_query, h, signed,
                           h["x-amz-content-sha256"], h["x-amz-date"], region,
                           creds["secret"])
    h["authorization"] = (
        "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
        % (creds["id"], scope, ";".join(signed), sig))
    return h


AUTH_RE = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/s3/"
                     r"aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?"
                     r"Signature=([0-9a-f]{64})$")


def verify(method, raw_path, raw_query, headers, body, creds):
    """None when the request's SigV4 signature and payload hash are right,
    else what is wrong."""
    h = {k.lower(): v for k, v in headers.items()}
    m = AUTH_RE.match(h.get("authorization", ""))
    if not m:
        return "no or malformed Authorization: %r" % h.get("authorization")
    key_id, date, region, signed, sig = m.groups()
    signed = signed.split(";")
    for need in ("host", "x-amz-date", "x-amz-content-sha256"):
        if need not in signed:
            return "%s not signed" % need
    if creds.get("token") and "x-amz-security-token" not in signed:
        return "x-amz-security-token not signed"
    if signed != sorted(signed):
        return "SignedHeaders not sorted: %s" % signed
    for n in signed:
        if n not in h:
            return "signed header %s not sent" % n
    if key_id != creds["id"]:
        return "key id %s" % key_id
    payload = h["x-amz-content-sha256"]
    if payload != "UNSIGNED-PAYLOAD" and \
            payload != hashlib.sha256(body).hexdigest():
        return "x-amz-content-sha256 does not match the body"
    if not h["x-amz-date"].startswith(date):
        return "x-amz-date and credential date differ"
    _, want = signature(method, raw_path, raw_query, h, signed, payload,
                        h["x-amz-date"], region, creds["secret"])
    if want != sig:
        return "signature mismatch"
    return None


# --------------------------------------------------------------------------
# The endpoint: a local s3rver, or an external one

class S3rver:
    def __init__(self, directory, bucket, log_path):
        self.dir = str(directory)
        self.bucket = bucket
        self.port = util.free_port()
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self.log_path = str(log_path)
        self.proc = None
        self._log = None

    def start(self):
        if not os.path.exists(S3RVER_BIN):
            pytest.fail("s3rver is not installed in %s/node_modules; run "
                        "tools/install-node-deps.sh (make deps-test)" % JS_DIR)
        env = dict(os.environ)
        # s3rver makes continuation tokens with DES, which Node 17+
        # (OpenSSL 3) only offers through the legacy provider.
        env["NODE_OPTIONS"] = (env.get("NODE_OPTIONS", "") +
                               " --openssl-legacy-provider").strip()
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            ["node", S3RVER_BIN, "-d", self.dir, "-a", "127.0.0.1",
             "-p", str(self.port), "--silent",
             "--configure-bucket", self.bucket],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            env=env, cwd=JS_DIR)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail("s3rver exited with %d:\n%s" % (
                    self.proc.returncode, log_tail(self.log_path)))
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return self
            except OSError:
                time.sleep(0.1)
        pytest.fail("s3rver did not listen on %d" % self.port)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        if self._log:
            self._log.close()
            self._log = None


class Endpoint:
    """What the tests need to reach the bucket."""

    def __init__(self, endpoint, bucket, creds, region, server=None):
        self.endpoint = endpoint.rstrip("/")
        self.bucket = bucket
        self.creds = creds
        self.region = region
        self.server = server  # an S3rver, or None for external endpoints

    def env(self):
        e = {"AWS_ACCESS_KEY_ID": self.creds["id"],
             "AWS_SECRET_ACCESS_KEY": self.creds["secret"]}
        if self.creds.get("token"):
            e["AWS_SESSION_TOKEN"] = self.creds["token"]
        return e

    def url(self, prefix, endpoint=None, extra=""):
        q = "endpoint=%s&region=%s" % (endpoint or self.endpoint, self.region)
        if extra:
            q += "&" + extra
        return "s3://%s/%s?%s" % (self.bucket, prefix, q)

    def _request(self, method, raw_path, raw_query="", body=b""):
        u = urllib.parse.urlsplit(self.endpoint)
        h = sign_headers(method, u.netloc, raw_path, raw_query, {}, body,
                         self.creds, self.region)
        cls = http.client.HTTPSConnection if u.scheme == "https" \
            else http.client.HTTPConnection
        c = cls(u.netloc, timeout=30)
        try:
            c.request(method, raw_path + ("?" + raw_query if raw_query
                                          else ""), body=body, headers=h)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def list_keys(self, prefix):
        """[(key, size)] of every object under prefix (ListObjectsV2)."""
        out, token = [], None
        while True:
            q = {"list-type": "2", "prefix": prefix}
            if token:
                q["continuation-token"] = token
            raw = "&".join("%s=%s" % (k, uri_encode(v, False))
                           for k, v in sorted(q.items()))
            status, body = self._request("GET", "/" + self.bucket, raw)
            assert status == 200, "list: HTTP %d %r" % (status, body[:300])
            root = ET.fromstring(body)
            ns = root.tag[:root.tag.index("}") + 1] if "}" in root.tag \
                else ""
            for c in root.findall(ns + "Contents"):
                out.append((c.find(ns + "Key").text,
                            int(c.find(ns + "Size").text)))
            if root.findtext(ns + "IsTruncated") != "true":
                return out
            token = root.findtext(ns + "NextContinuationToken")

    def get(self, key):
        status, body = self._request(
            "GET", "/%s/%s" % (self.bucket, uri_encode(key, True)))
        assert status == 200, "get %s: HTTP %d" % (key, status)
        return body


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    if EXTERNAL:
        creds = {"id": os.environ.get("AWS_ACCESS_KEY_ID", ""),
                 "secret": os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
                 "token": os.environ.get("AWS_SESSION_TOKEN", "")}
        bucket = os.environ.get("SLUICE_TEST_S3_BUCKET")
        if not bucket or not creds["id"]:
            pytest.fail("SLUICE_TEST_S3_ENDPOINT needs SLUICE_TEST_S3_BUCKET, "
                        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        yield Endpoint(os.environ["SLUICE_TEST_S3_ENDPOINT"], bucket, creds,
                       os.environ.get("AWS_REGION", "us-east-1"))
        return
    d = tmp_path_factory.mktemp("s3rver")
    srv = S3rver(d / "data", "sluice-it", d / "s3rver.log").start()
    yield Endpoint(srv.endpoint, srv.bucket,
                   {"id": S3RVER_KEY, "secret": S3RVER_KEY}, "us-east-1", srv)
    srv.stop()


def new_prefix(name):
    return "it-%s-%s" % (name, uuid.uuid4().hex[:8])


# --------------------------------------------------------------------------
# The fault proxy

class Proxy:
    """An HTTP proxy in front of the endpoint. mode: "pass", "slowdown"
    (503 SlowDown to every other request), "slow" (forward each request
    after delay_s), "hang" (read the request, never answer) or "error"
    (500 InternalError to the next errors_left requests, then forward;
    errors_left None: to every request). Always
    checks signatures when verify is set. Counts the requests it holds at
    once (inflight_max)."""

    def __init__(self, ep, verify_sigs=True):
        self.ep = ep
        self.mode = "pass"
        self.verify = verify_sigs
        self.lock = threading.Lock()
        self.count = 0
        self.slowdowns = 0
        self.errors_left = None
        self.errors = 0
        self.hung = 0
        self.bad_sigs = []
        self.by_method = {}
        self.put_payloads = set()  # the x-amz-content-sha256 kinds of PUTs
        self.delay_s = 0.3
        self.inflight = 0
        self.inflight_max = 0
        self.release = threading.Event()
        up = urllib.parse.urlsplit(ep.endpoint)
        self.up_https = up.scheme == "https"
        self.up_netloc = up.netloc
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                proxy.handle(self, body)

            do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _any

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def _reply(self, h, status, body, headers=()):
        h.send_response(status)
        for k, v in headers:
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    def handle(self, h, body):
        with self.lock:
            self.inflight += 1
            self.inflight_max = max(self.inflight_max, self.inflight)
        try:
            self._handle(h, body)
        finally:
            with self.lock:
                self.inflight -= 1

    def _handle(self, h, body):
        raw_path, _, raw_query = h.path.partition("?")
        with self.lock:
            self.count += 1
            n = self.count
            self.by_method[h.command] = self.by_method.get(h.command, 0) + 1
            if h.command == "PUT":
                payload = h.headers.get("x-amz-content-sha256", "")
                self.put_payloads.add("sha256" if re.fullmatch("[0-9a-f]{64}", payload)
                                      else payload)
            mode = self.mode
        if self.verify:
            why = verify(h.command, raw_path, raw_query, dict(h.headers),
                         body, self.ep.creds)
            if why:
                with self.lock:
                    self.bad_sigs.append("%s %s: %s" % (h.command, h.path,
                                                        why))
                self._reply(h, 403, (
                    b"<Error><Code>SignatureDoesNotMatch</Code><Message>"
                    + why.encode() + b"</Message></Error>"))
                return
        if mode == "hang":
            with self.lock:
                self.hung += 1
            while not self.release.wait(0.1) and self.mode == "hang":
                pass
            h.close_connection = True
            return
        if mode == "slow":
            time.sleep(self.delay_s)
        if mode == "error":
            with self.lock:
                fail = self.errors_left is None or self.errors_left > 0
                if fail:
                    self.errors += 1
                    if self.errors_left is not None:
                        self.errors_left -= 1
            if fail:
                self._reply(h, 500, b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                            b"<Error><Code>InternalError</Code><Message>We "
                            b"encountered an internal error. Please try again."
                            b"</Message></Error>",
                            [("Content-Type", "application/xml")])
                return
        if mode == "slowdown" and n % 2 == 0:
            with self.lock:
                self.slowdowns += 1
            self._reply(h, 503, b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                        b"<Error><Code>SlowDown</Code><Message>Please reduce "
                        b"your request rate.</Message></Error>",
                        [("Content-Type", "application/xml")])
            return
        # Forward, re-signed for the upstream's host.
        fwd = sign_headers(h.command, self.up_netloc, raw_path, raw_query,
                           {k: v for k, v in h.headers.items()
                            if k.lower() in ("range", "content-type",
                                             "x-amz-content-sha256")},
                           body, self.ep.creds, self.ep.region)
        cls = http.client.HTTPSConnection if self.up_https \
            else http.client.HTTPConnection
        c = cls(self.up_netloc, timeout=60)
        try:
            c.request(h.command, h.path, body=body if body else None,
                      headers=fwd)
            r = c.getresponse()
            data = r.read()
            hdrs = [(k, v) for k, v in r.getheaders()
                    if k.lower() not in ("content-length", "connection",
                                         "transfer-encoding", "keep-alive")]
            if h.command == "HEAD":
                hdrs.append(("Content-Length",
                             r.getheader("Content-Length", "0")))
                h.send_response(r.status)
                for k, v in hdrs:
                    h.send_header(k, v)
                h.end_headers()
            else:
                self._reply(h, r.status, data, hdrs)
        except OSError:
            h.close_connection = True
            try:
                self._reply(h, 502, b"")
            except OSError:
                pass
        finally:
            c.close()


@pytest.fixture
def proxy(s3):
    made = []

    def make(verify_sigs=True):
        p = Proxy(s3, verify_sigs)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


# --------------------------------------------------------------------------
# Helpers

def s3_broker(broker_factory, s3, url, **kw):
    return broker_factory(["--store", url], env=s3.env(), **kw)


class AckingProducer:
    """Produces unique values from a thread at a steady pace and records
    when each one was acknowledged (or failed)."""

    def __init__(self, bootstrap, topic, rate_per_s=500, **conf):
        c = {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
             # Long enough that no request is abandoned by the client
             # (and then retried) while the broker may still commit it.
             "request.timeout.ms": 120000, "message.timeout.ms": 300000,
             "retry.backoff.ms": 200}
        c.update(conf)
        self.p = Producer(c)
        self.topic = topic
        self.rate = rate_per_s
        self.acked = {}   # value -> monotonic time of the ack
        self.failed = {}  # value -> error string
        self.sent = 0
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self._run, daemon=True)

    def _cb(self, err, msg):
        with self.lock:
            if err is None:
                self.acked[msg.value()] = time.monotonic()
            else:
                self.failed[msg.value()] = str(err)

    def _run(self):
        i = 0
        while not self.stop_ev.is_set():
            v = b"v-%08d" % i
            self.p.produce(self.topic, value=v, key=b"k%d" % (i % 16),
                           on_delivery=self._cb)
            i += 1
            self.sent = i
            self.p.poll(0)
            time.sleep(1.0 / self.rate)
        self.p.poll(0)

    def start(self):
        self.t.start()
        return self

    def stop_and_flush(self, timeout=120):
        self.stop_ev.set()
        self.t.join()
        left = self.p.flush(timeout)
        assert left == 0, "%d messages still undelivered" % left

    def acks_between(self, t0, t1):
        with self.lock:
            return sorted(v for v, t in self.acked.items() if t0 < t <= t1)

    def n_acked(self):
        with self.lock:
            return len(self.acked)

    def wait_acked(self, what, timeout=20):
        """Waits for a first acknowledgement (a client's first metadata
        and connection take a while on a loaded machine)."""
        wait_until(lambda: self.n_acked() > 0, timeout, what)


def wait_until(check, timeout, what):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "%s: not within %d s" % (what, timeout)
        time.sleep(0.1)


def check_exactly_once(bootstrap, topic, parts, prod):
    """Every acknowledged value is in the topic exactly once; nothing is
    there twice."""
    got = util.consume_all(bootstrap, topic, parts)
    seen = {}
    for msgs in got.values():
        for g in msgs:
            seen[g.value] = seen.get(g.value, 0) + 1
    dups = [v for v, n in seen.items() if n > 1]
    assert not dups, "duplicated: %r" % dups[:10]
    missing = [v for v in prod.acked if v not in seen]
    assert not missing, "acknowledged but not readable: %r" % missing[:10]
    return seen


# --------------------------------------------------------------------------
# Round trips, layout, inspect

def test_roundtrip_layout_and_signatures(broker_factory, s3, proxy, tmp_path):
    """confluent-kafka round trip through a signature-checking proxy; the
    objects sit under PREFIX/objects/; after a restart (cold cache) the
    data comes back with ranged GETs, still correctly signed."""
    px = proxy()
    prefix = new_prefix("rt")
    b = s3_broker(broker_factory, s3, s3.url(prefix, px.endpoint))
    topic = util.create_topic(b.bootstrap, util.topic_name("s3"), 3)
    msgs = util.make_messages(5000, seed=41, value_size=(1, 400))
    util.ck_produce(b.bootstrap, topic, msgs)
    util.check_roundtrip(msgs, util.consume_all(b.bootstrap, topic, 3,
                                                expect=len(msgs)))
    assert px.bad_sigs == [], px.bad_sigs[:5]
    assert px.by_method.get("PUT", 0) >= 1
    # An http endpoint: bodies are hashed into the signature by default.
    assert px.put_payloads == {"sha256"}, px.put_payloads

    keys = s3.list_keys(prefix + "/")
    assert keys, "no objects under %s/" % prefix
    for k, size in keys:
        assert re.fullmatch(re.escape(prefix) + r"/objects/[0-9A-Za-z._-]+"
                            r"\.obj", k), k
        assert size > 0
    # Each object starts with the object format's magic.
    assert s3.get(keys[0][0])[:8] == b"SLUICEOB"

    b.restart()
    gets_before = px.by_method.get("GET", 0)
    util.check_roundtrip(msgs, util.consume_all(b.bootstrap, topic, 3,
                                                expect=len(msgs)))
    assert px.by_method.get("GET", 0) > gets_before
    assert px.bad_sigs == [], px.bad_sigs[:5]


def test_unsigned_payload(broker_factory, s3, proxy):
    """payload_signing=false (the default for https endpoints): PUTs say
    UNSIGNED-PAYLOAD instead of hashing the body, and are still signed
    right; the data round-trips."""
    px = proxy()
    b = s3_broker(broker_factory, s3, s3.url(new_prefix("unsig"), px.endpoint,
                                             "payload_signing=false"))
    topic = util.create_topic(b.bootstrap, util.topic_name("s3u"), 2)
    msgs = util.make_messages(500, seed=43, value_size=(1, 400))
    util.ck_produce(b.bootstrap, topic, msgs)
    util.check_roundtrip(msgs, util.consume_all(b.bootstrap, topic, 2, expect=len(msgs)))
    assert px.bad_sigs == [], px.bad_sigs[:5]
    assert px.put_payloads == {"UNSIGNED-PAYLOAD"}, px.put_payloads


@pytest.mark.parametrize("client", ["kafka-python", "kcat", "kafkajs"])
def test_other_clients(broker_factory, s3, tmp_path, client):
    """The other client libraries against an S3-backed broker (the file
    store runs the same in test_clients.py)."""
    import test_clients
    b = s3_broker(broker_factory, s3, s3.url(new_prefix("cl")))
    parts, n = 4, 5000
    topic = util.create_topic(b.bootstrap, util.topic_name("s3c"), parts)
    if client == "kafka-python":
        from kafka import KafkaProducer
        msgs = util.make_messages(n, seed=42)
        prod = KafkaProducer(bootstrap_servers=b.bootstrap, acks="all",
                             linger_ms=20)
        for m in msgs:
            prod.send(topic, value=m.value, key=m.key, headers=m.headers,
                      timestamp_ms=m.timestamp)
        prod.flush(60)
        prod.close(10)
        util.check_roundtrip(msgs, util.consume_all(b.bootstrap, topic, parts,
                                                    expect=n))
    elif client == "kcat":
        msgs = util.make_messages(n, seed=43, binary=False, headers=False)
        path = tmp_path / "in.txt"
        with open(path, "wb") as f:
            for m in msgs:
                f.write(m.key + b":" + m.value + b"\n")
        with open(path, "rb") as f:
            r = subprocess.run(["kcat", "-P", "-b", b.bootstrap, "-t", topic,
                                "-K:", "-X", "acks=all"], stdin=f,
                               capture_output=True, timeout=120)
        assert r.returncode == 0, r.stderr.decode()
        util.check_roundtrip(msgs, util.consume_all(b.bootstrap, topic, parts,
                                                    expect=n),
                             check_ts=False)
    else:
        msgs = util.make_messages(n, seed=44)
        path = tmp_path / "msgs.jsonl"
        test_clients.js_message_file(path, msgs)
        results = test_clients.run_kafkajs(b.bootstrap, topic, path)
        assert results and all(r["errorCode"] == 0 for r in results)
        util.check_roundtrip(msgs, util.consume_all(b.bootstrap, topic, parts,
                                                    expect=n))


def test_inspect_object(broker_factory, s3):
    prefix = new_prefix("insp")
    url = s3.url(prefix)
    b = s3_broker(broker_factory, s3, url)
    topic = util.create_topic(b.bootstrap, util.topic_name("s3i"), 1)
    msgs = util.make_messages(100, seed=45)
    util.ck_produce(b.bootstrap, topic, msgs)
    keys = s3.list_keys(prefix + "/objects/")
    assert keys
    key = keys[0][0][len(prefix) + 1:]
    env = dict(os.environ)
    env.update(s3.env())
    r = subprocess.run([SLUICE_BIN, "inspect", "object", "--store", url, key],
                       capture_output=True, timeout=60, env=env)
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr.decode()
    assert "SLUICEOB" in out and "SLOBEND1" in out, out
    assert "records=" in out, out
    r = subprocess.run([SLUICE_BIN, "inspect", "object", "--store", url,
                        "objects/does-not-exist.obj"],
                       capture_output=True, timeout=60, env=env)
    assert r.returncode == 1


# --------------------------------------------------------------------------
# Faults

@pytest.mark.skipif(EXTERNAL, reason="stops the S3 server: local s3rver only")
def test_server_stopped_mid_produce(broker_factory, s3):
    """Stop s3rver under a produce load: no acknowledgements while it is
    down; restart it: the load resumes; every acknowledged message is read
    exactly once."""
    b = s3_broker(broker_factory, s3, s3.url(new_prefix("stop"), extra=FAST))
    parts = 4
    topic = util.create_topic(b.bootstrap, util.topic_name("s3s"), parts)
    prod = AckingProducer(b.bootstrap, topic).start()
    try:
        time.sleep(2)
        prod.wait_acked("nothing acknowledged before the stop")
        s3.server.stop()
        t_stop = time.monotonic()
        time.sleep(6)
        t_down_end = time.monotonic()
        # In-flight uploads finished before the kill; give their commits
        # and responses a second.
        late = prod.acks_between(t_stop + 1.0, t_down_end)
        assert late == [], "%d acknowledgements while the store was down: " \
            "%r" % (len(late), late[:5])
        # The broker stays up.
        assert b.running()
        s3.server.start()
        t_up = time.monotonic()
        deadline = t_up + 60
        while not prod.acks_between(t_up, time.monotonic()):
            assert time.monotonic() < deadline, "no acks after the restart"
            time.sleep(0.2)
    finally:
        if s3.server.proc.poll() is not None:
            s3.server.start()
        prod.stop_and_flush()
    assert not prod.failed, "delivery failures: %r" % list(
        prod.failed.items())[:5]
    seen = check_exactly_once(b.bootstrap, topic, parts, prod)
    assert len(prod.acked) == prod.sent == len(seen)


def test_slowdown_every_other_request(broker_factory, s3, proxy):
    """503 SlowDown to every other request: everything still arrives once,
    and the retries show in the proxy's count."""
    px = proxy()
    px.mode = "slowdown"
    prefix = new_prefix("slow")
    b = s3_broker(broker_factory, s3, s3.url(prefix, px.endpoint))
    parts = 3
    topic = util.create_topic(b.bootstrap, util.topic_name("s3d"), parts)
    prod = AckingProducer(b.bootstrap, topic, rate_per_s=1000).start()
    time.sleep(4)
    prod.stop_and_flush()
    assert not prod.failed, list(prod.failed.items())[:5]
    assert px.slowdowns > 0
    seen = check_exactly_once(b.bootstrap, topic, parts, prod)
    assert len(seen) == prod.sent
    # Cold reads through SlowDown as well.
    b.restart()
    check_exactly_once(b.bootstrap, topic, parts, prod)
    assert px.bad_sigs == [], px.bad_sigs[:5]


def test_server_never_answers(broker_factory, s3, proxy):
    """A store that accepts requests and never answers: produces are not
    acknowledged (they fail or wait), ApiVersions and Metadata are still
    answered at once, and when the store answers again the load resumes."""
    px = proxy(verify_sigs=False)
    b = s3_broker(broker_factory, s3, s3.url(new_prefix("hang"), px.endpoint,
                                             FAST))
    parts = 2
    topic = util.create_topic(b.bootstrap, util.topic_name("s3h"), parts)
    prod = AckingProducer(b.bootstrap, topic, rate_per_s=200).start()
    try:
        time.sleep(1.5)
        prod.wait_acked("nothing acknowledged before the hang")
        px.mode = "hang"
        t_hang = time.monotonic()
        worst = 0.0
        while time.monotonic() - t_hang < 8:
            t0 = time.monotonic()
            with kproto.connect(b.bootstrap, timeout=5) as sock:
                err, apis, _ = kproto.api_versions_v0(sock)
                assert err == 0 and apis
                brokers, topics = kproto.metadata_v1(sock, [topic])
                assert topics[topic][0] == 0
            worst = max(worst, time.monotonic() - t0)
            time.sleep(0.25)
        assert worst < 1.0, "ApiVersions+Metadata took %.2f s" % worst
        assert px.hung > 0
        late = prod.acks_between(t_hang + 1.0, time.monotonic())
        assert late == [], "%d acks while the store hung" % len(late)
        px.mode = "pass"
        t_ok = time.monotonic()
        deadline = t_ok + 60
        while not prod.acks_between(t_ok, time.monotonic()):
            assert time.monotonic() < deadline, "no acks after the store came back"
            time.sleep(0.2)
    finally:
        px.mode = "pass"
        prod.stop_and_flush()
    assert not prod.failed, list(prod.failed.items())[:5]
    check_exactly_once(b.bootstrap, topic, parts, prod)


def test_slow_store_many_reads_and_uploads(broker_factory, s3, proxy):
    """A store that takes 0.2 s over every request, under many cold fetch
    reads (16 consumers, one per partition, after a restart emptied the
    cache) and uploads at once: the broker never holds more than 16
    requests at the store (the curl multi's bound) yet does overlap them,
    keeps answering ApiVersions and Metadata at once, and every message
    comes back; acknowledged produces are read exactly once."""
    px = proxy(verify_sigs=False)
    url = s3.url(new_prefix("slow"), px.endpoint)
    b = broker_factory(["--store", url, "--flush-interval-ms", "20",
                        "--cache-bytes", "1048576"], env=s3.env())
    parts, per_part = 16, 200
    topic = util.create_topic(b.bootstrap, util.topic_name("s3slow"), parts)
    p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 10})
    for i in range(per_part):
        for part in range(parts):
            p.produce(topic, value=b"%02d-%05d-" % (part, i) + b"x" * 1000,
                      partition=part)
        if i % 20 == 19:
            p.flush(30)
    assert p.flush(30) == 0
    del p
    objects = len(s3.list_keys(url.split("/", 3)[3].split("?")[0]))
    b.restart()  # a cold read cache: every fetch reads the store

    px.mode = "slow"
    px.delay_s = 0.2
    px.inflight_max = 0
    topic2 = util.create_topic(b.bootstrap, util.topic_name("s3slowp"), 4)
    prod = AckingProducer(b.bootstrap, topic2, rate_per_s=200).start()
    results, errors = {}, []

    def read(part):
        try:
            c = util.consumer(b.bootstrap)
            c.assign([util.TopicPartition(topic, part, util.OFFSET_BEGINNING)])
            got = []
            deadline = time.monotonic() + 150
            while len(got) < per_part and time.monotonic() < deadline:
                for m in c.consume(1000, 0.5):
                    if m.error():
                        raise RuntimeError(str(m.error()))
                    got.append(m.value())
            c.close()
            results[part] = got
        except Exception as e:  # reported by the main thread
            errors.append("partition %d: %r" % (part, e))

    readers = [threading.Thread(target=read, args=(q,), daemon=True)
               for q in range(parts)]
    t0 = time.monotonic()
    for t in readers:
        t.start()
    worst = 0.0
    try:
        while any(t.is_alive() for t in readers):
            assert time.monotonic() - t0 < 170, "readers did not finish"
            t1 = time.monotonic()
            with kproto.connect(b.bootstrap, timeout=5) as sock:
                err, apis, _ = kproto.api_versions_v0(sock)
                assert err == 0 and apis
                brokers, topics = kproto.metadata_v1(sock, [topic])
                assert topics[topic][0] == 0
            worst = max(worst, time.monotonic() - t1)
            time.sleep(0.25)
        took = time.monotonic() - t0
    finally:
        px.mode = "pass"
        prod.stop_and_flush()
    assert not errors, errors
    for part in range(parts):
        want = [b"%02d-%05d-" % (part, i) + b"x" * 1000
                for i in range(per_part)]
        assert results.get(part) == want, "partition %d: %d of %d" % (
            part, len(results.get(part) or []), per_part)
    assert worst < 1.0, "ApiVersions+Metadata took %.2f s" % worst
    assert 4 <= px.inflight_max <= 16, px.inflight_max
    gets = px.by_method.get("GET", 0)
    print("slow store: %d objects, %d GETs, %d PUTs through the proxy, "
          "at most %d at once; reads took %.1f s" % (
              objects, gets, px.by_method.get("PUT", 0), px.inflight_max,
              took))
    assert not prod.failed, list(prod.failed.items())[:5]
    check_exactly_once(b.bootstrap, topic2, 4, prod)


def test_stop_while_store_hangs(broker_factory, s3, proxy):
    """SIGTERM while fetch reads and uploads hang at the store and a
    producer keeps sending: the broker drains (uploads end at their
    deadline, unacknowledged; produces arriving meanwhile get
    NOT_LEADER_OR_FOLLOWER and are not written), ends the reads still in
    flight, and exits cleanly (status 0, no sanitizer report) within about
    the store's deadline. Every acknowledged message is readable exactly
    once after a restart."""
    px = proxy(verify_sigs=False)
    b = s3_broker(broker_factory, s3, s3.url(new_prefix("stop"), px.endpoint,
                                             FAST))
    topic = util.create_topic(b.bootstrap, util.topic_name("s3stop"), 4)
    p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 5})
    for i in range(2000):
        p.produce(topic, value=b"m%05d" % i, partition=i % 4)
    assert p.flush(30) == 0
    del p
    b.restart()  # cold cache: the reads below go to the store
    prod = AckingProducer(b.bootstrap, topic, rate_per_s=200,
                          **{"message.timeout.ms": 60000}).start()
    stop_ev = threading.Event()
    readers = []
    try:
        wait_until(lambda: prod.n_acked() >= 50, 20, "no acks before the hang")
        px.mode = "hang"
        t_hang = time.monotonic()

        def read():
            c = util.consumer(b.bootstrap)
            c.assign([util.TopicPartition(topic, q, util.OFFSET_BEGINNING)
                      for q in range(4)])
            while not stop_ev.is_set():
                c.consume(100, 0.2)
            c.close()

        readers = [threading.Thread(target=read, daemon=True)
                   for _ in range(3)]
        for t in readers:
            t.start()
        time.sleep(1.5)
        wait_until(lambda: px.hung > 0, 20, "no request hung at the store")
        t0 = time.monotonic()
        # Asserts status 0 and no sanitizer report.
        b.stop(timeout=60)
        took = time.monotonic() - t0
    finally:
        stop_ev.set()
        px.mode = "pass"
        prod.stop_ev.set()
        prod.t.join()
        for t in readers:
            t.join(10)
    # The uploads in flight end at the 4 s deadline (FAST); nothing new
    # is written meanwhile (it took ~23 s when every produce arriving
    # during the drain was written and waited for its own deadline).
    assert took < 4 + 5, "drain took %.1f s" % took
    late = prod.acks_between(t_hang + 1.0, time.monotonic())
    assert late == [], "%d acks while the store hung" % len(late)
    # The store works again: the producer's unacknowledged messages are
    # retried to the restarted broker; every ack is readable once.
    b.start()
    left = prod.p.flush(90)
    assert left == 0, "%d messages still undelivered" % left
    check_exactly_once(b.bootstrap, topic, 4, prod)


# --------------------------------------------------------------------------
# Bad configuration

def run_bad(tmp_path, url, env):
    port = util.free_port()
    full = dict(os.environ)
    full.update(env)
    t0 = time.monotonic()
    r = subprocess.run([SLUICE_BIN, "serve", "--listen", "127.0.0.1:%d" % port,
                        "--data", str(tmp_path / "data"), "--store", url],
                       capture_output=True, timeout=60, env=full)
    took = time.monotonic() - t0
    err = r.stderr.decode()
    errors = [l for l in err.splitlines() if " ERROR " in l]
    assert r.returncode == 1, "exit %d:\n%s" % (r.returncode, err)
    assert len(errors) == 1, "want one error line:\n%s" % err
    assert took < 20, "took %.1f s to give up" % took
    return errors[0]


def test_bad_credentials(s3, tmp_path):
    env = dict(s3.env())
    env["AWS_ACCESS_KEY_ID"] = "NOT-A-KEY-" + uuid.uuid4().hex[:6]
    env["AWS_SECRET_ACCESS_KEY"] = "wrong"
    line = run_bad(tmp_path, s3.url(new_prefix("cred")), env)
    assert "403" in line and s3.bucket in line, line


def test_missing_bucket(s3, tmp_path):
    url = s3.url(new_prefix("nob")).replace(
        "s3://%s/" % s3.bucket, "s3://sluice-missing-%s/" % uuid.uuid4().hex[:8])
    line = run_bad(tmp_path, url, s3.env())
    assert "NoSuchBucket" in line or "404" in line, line


def test_unreachable_endpoint(s3, tmp_path):
    url = s3.url(new_prefix("unr"), "http://127.0.0.1:%d" % util.free_port())
    line = run_bad(tmp_path, url, s3.env())
    assert "connect" in line.lower(), line


def test_no_credentials(s3, tmp_path):
    env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
           "HOME": str(tmp_path), "AWS_SHARED_CREDENTIALS_FILE": ""}
    line = run_bad(tmp_path, s3.url(new_prefix("nocred")), env)
    assert "credentials" in line, line


def test_credentials_file(broker_factory, s3, tmp_path):
    """A profile of the shared credentials file is enough."""
    path = tmp_path / "credentials"
    path.write_text("[default]\naws_access_key_id = nope\n"
                    "aws_secret_access_key = nope\n\n[sluice]\n"
                    "aws_access_key_id = %s\naws_secret_access_key = %s\n"
                    % (s3.creds["id"], s3.creds["secret"]) +
                    ("aws_session_token = %s\n" % s3.creds["token"]
                     if s3.creds.get("token") else ""))
    env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
           "AWS_SESSION_TOKEN": "", "AWS_SHARED_CREDENTIALS_FILE": str(path),
           "AWS_PROFILE": "sluice"}
    b = broker_factory(["--store", s3.url(new_prefix("prof"))], env=env)
    topic = util.create_topic(b.bootstrap, util.topic_name("s3p"), 1)
    msgs = util.make_messages(50, seed=46)
    util.ck_produce(b.bootstrap, topic, msgs)
    util.check_roundtrip(msgs, util.consume_all(b.bootstrap, topic, 1,
                                                expect=50))


def test_wrong_secret(s3, proxy, tmp_path):
    """A right key id with a wrong secret: the (checking) proxy answers
    SignatureDoesNotMatch as S3 would, and the broker exits 1. Also proves
    the proxy's check really checks the broker's signatures."""
    px = proxy()
    env = dict(s3.env())
    env["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
    line = run_bad(tmp_path, s3.url(new_prefix("sec"), px.endpoint), env)
    assert "SignatureDoesNotMatch" in line, line
    assert px.bad_sigs and "signature mismatch" in px.bad_sigs[0], px.bad_sigs


def test_startup_retries_5xx(broker_factory, s3, proxy, tmp_path):
    """A store that answers 500 InternalError to the first requests of a
    start (restarting behind its load balancer) does not keep the agent
    down: the bucket check is retried within total_timeout_ms, as the AWS
    SDKs retry (before, three quick attempts and exit 1). One that keeps
    answering 500 is given up on after total_timeout_ms with one error
    line and exit 1."""
    px = proxy()
    px.mode = "error"
    px.errors_left = 5
    url = s3.url(new_prefix("5xx"), px.endpoint, FAST)
    b = s3_broker(broker_factory, s3, url)
    assert px.errors == 5
    topic = util.create_topic(b.bootstrap, util.topic_name("5xx"), 1)
    msgs = util.make_messages(50, seed=5)
    util.ck_produce(b.bootstrap, topic, msgs)
    util.check_roundtrip(msgs, util.consume_all(b.bootstrap, topic, 1,
                                                expect=len(msgs)))
    px.mode = "error"
    px.errors_left = None
    t0 = time.monotonic()
    line = run_bad(tmp_path / "again", url, s3.env())
    assert "InternalError" in line and "500" in line, line
    assert time.monotonic() - t0 >= 3, "gave up before total_timeout_ms"


def test_s3_store_without_data_dir(s3, tmp_path):
    """--store s3://... in a folder without ./data: the agent creates
    ./data for its metadata store (sqlite:./data/meta.db, the default) and
    serves."""
    port = util.free_port()
    cwd = tmp_path / "empty"
    cwd.mkdir()
    env = dict(os.environ)
    env.update(s3.env())
    p = subprocess.Popen([SLUICE_BIN, "serve", "--listen", "127.0.0.1:%d" % port,
                          "--store", s3.url(new_prefix("nodata"))],
                         cwd=str(cwd), env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while True:
            assert p.poll() is None, p.stderr.read().decode()
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert (cwd / "data" / "meta.db").is_file()
        assert not (cwd / "data" / "objects").exists()
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(15)


def test_merge_paced(broker_factory, s3):
    """--maintenance-io-bytes-per-sec bounds the merge job's puts on S3 as
    on the file store: every merged object but the last is sent at the
    rate before the next starts, so a pass takes at least their bytes
    over it; produce puts are not paced (a produce during the pass is
    acknowledged at once); reads stay the same. (Before, the S3 store
    sent them at full speed.)"""
    from test_merge import PASS_RE, logged, produce_rounds, snapshot
    from test_cluster_leases import log_text
    target, rate = 16384, 8192
    url = s3.url(new_prefix("paced"))
    b = broker_factory(["--store", url, "--merge-interval-ms", "0"], env=s3.env())
    topic = util.create_topic(b.bootstrap, util.topic_name("s3-paced"), 2)
    other = util.create_topic(b.bootstrap, util.topic_name("s3-paced-produce"), 1)
    produce_rounds(b, topic, 20, 40, seed=9)
    want = snapshot(b, topic, 2)
    b.extra_args = ["--store", url, "--merge-interval-ms", "300", "--merge-min-age-ms", "0",
                    "--merge-target-bytes", str(target),
                    "--maintenance-io-bytes-per-sec", str(rate)]
    b.restart()
    # Produces while the pass writes (it takes seconds): each one is
    # acknowledged well within one merged object's paced put.
    slowest, sent = 0.0, []
    for i in range(5):
        msgs = util.make_messages(20, seed=100 + i)
        t0 = time.monotonic()
        util.ck_produce(b.bootstrap, other, msgs, **{"linger.ms": 0})
        slowest = max(slowest, time.monotonic() - t0)
        sent += msgs
        time.sleep(0.2)
    logged(b, PASS_RE.pattern, timeout=120)
    merged, nbytes, took = map(int, PASS_RE.search(log_text(b)).groups())
    # ~40 KB per partition in runs of at most 16 KiB of batches.
    assert merged >= 4 and nbytes > 3 * target, (merged, nbytes)
    assert took >= 0.95 * 1000 * (nbytes - target) / rate, (merged, nbytes, took)
    assert slowest < 0.5 * (nbytes - target) / rate, (slowest, nbytes, took)
    assert snapshot(b, topic, 2) == want
    util.check_roundtrip(sent, util.consume_all(b.bootstrap, other, 1, expect=len(sent)))
