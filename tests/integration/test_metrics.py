"""test_metrics.py — the --metrics-listen endpoint: /metrics in
Prometheus' text format (checked by promtool), counters that rise by
exactly what was produced, histograms with their buckets, error codes by
API, committed-offset lag per group and partition; a real Prometheus
(Debian's package) scraping the agent and answering a query over the
produce counter; /healthz and /readyz, 503 while a SIGTERM drain waits for
a commit; the HTTP server's answers to bad requests."""
import http.client
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.parse
import urllib.request
import json

import pytest
from confluent_kafka import TopicPartition

import kproto
from util import create_topic, free_port, topic_name, consumer, ck_produce, make_messages

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def get(port, path, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode(), dict(r.getheaders())
    finally:
        c.close()


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(port):
    """{(name, frozenset(labels.items())): value} of one /metrics."""
    status, body, headers = get(port, "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    out = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "unparsable line %r" % line
        labels = frozenset(LABEL.findall(m.group(3) or ""))
        key = (m.group(1), labels)
        assert key not in out, "duplicate series %r" % line
        out[key] = float(m.group(4))
    return out


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def series(samples, name):
    """[(labels dict, value)] of one metric name."""
    return [(dict(k[1]), v) for k, v in samples.items() if k[0] == name]


@pytest.fixture
def agent(broker_factory):
    port = free_port()
    b = broker_factory(["--metrics-listen", "127.0.0.1:%d" % port])
    b.metrics_port = port
    return b


def test_promtool_accepts_the_output(agent):
    t = create_topic(agent.bootstrap, topic_name("promtool"), partitions=2)
    ck_produce(agent.bootstrap, t, make_messages(200))
    c = consumer(agent.bootstrap, **{"group.id": "g \"quoted\"\\ \u00e9"})
    c.assign([TopicPartition(t, 0, 0), TopicPartition(t, 1, 0)])
    got = 0
    deadline = time.monotonic() + 20
    while got < 200 and time.monotonic() < deadline:
        got += len(c.consume(200, 0.5))
    c.commit(asynchronous=False)
    c.close()
    status, body, _ = get(agent.metrics_port, "/metrics")
    assert status == 200
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=body.encode(),
                       capture_output=True, timeout=30)
    assert r.returncode == 0 and not r.stdout and not r.stderr, \
        "promtool: %s %s" % (r.stdout.decode(), r.stderr.decode())
    # The families the dashboard is built on are all there.
    for name in ("sluice_requests_total", "sluice_request_duration_seconds",
                 "sluice_topic_bytes_in_total", "sluice_topic_records_in_total",
                 "sluice_topic_bytes_out_total", "sluice_topic_records_out_total",
                 "sluice_topic_produce_batches_total",
                 "sluice_object_store_requests_total",
                 "sluice_object_store_request_duration_seconds",
                 "sluice_object_store_retries_total", "sluice_object_store_errors_total",
                 "sluice_objects_sealed_total", "sluice_object_size_bytes",
                 "sluice_meta_commit_duration_seconds", "sluice_read_cache_hits_total",
                 "sluice_read_cache_misses_total", "sluice_connections",
                 "sluice_queued_request_bytes", "sluice_consumer_groups",
                 "sluice_consumer_group_lag_records", "sluice_request_errors_total",
                 "process_cpu_seconds_total"):
        assert "# TYPE %s " % name in body, name
    # The escaped group id is one series, lag 0 after consuming everything.
    lags = series(scrape(agent.metrics_port), "sluice_consumer_group_lag_records")
    mine = [(l, v) for l, v in lags if l["topic"] == t]
    assert len(mine) == 2 and all(v == 0 for _, v in mine), mine
    assert mine[0][0]["group"] == 'g \\"quoted\\"\\\\ \u00e9'


def test_counters_rise_by_what_was_produced(agent):
    t = create_topic(agent.bootstrap, topic_name("count"), partitions=3)
    before = scrape(agent.metrics_port)
    assert value(before, "sluice_topic_records_in_total", topic=t) == 0
    batches = []
    for i in range(7):
        recs = [(b"k%d" % j, os.urandom(10 + 37 * i + j), ()) for j in range(i + 1)]
        batches.append((i % 3, kproto.record_batch(recs), len(recs)))
    s = kproto.connect(agent.bootstrap)
    for p, batch, _ in batches:
        res = kproto.produce_v3(s, {t: {p: batch}})
        assert res[(t, p)][0] == 0, res
    # A partition that does not exist: an error code, counted by name.
    res = kproto.produce_v3(s, {t: {99: batches[0][1]}})
    assert res[(t, 99)][0] == 3
    s.close()
    after = scrape(agent.metrics_port)
    assert value(after, "sluice_topic_bytes_in_total", topic=t) == sum(len(b) for _, b, _ in batches)
    assert value(after, "sluice_topic_records_in_total", topic=t) == sum(n for _, _, n in batches)
    assert value(after, "sluice_topic_produce_batches_total", topic=t) == 7
    assert value(after, "sluice_requests_total", api="Produce", version="3") - \
        value(before, "sluice_requests_total", api="Produce", version="3") == 8
    err = dict(api="Produce", error="UNKNOWN_TOPIC_OR_PARTITION", code="3")
    assert value(after, "sluice_request_errors_total", **err) - \
        value(before, "sluice_request_errors_total", **err) == 1
    assert value(after, "sluice_objects_sealed_total") >= 1
    assert value(after, "sluice_object_store_requests_total", operation="put") >= \
        value(after, "sluice_objects_sealed_total")
    assert value(after, "sluice_object_store_bytes_total", operation="put") > \
        sum(len(b) for _, b, _ in batches)

    # Histograms: every bucket, ascending counts, +Inf equal to _count.
    for name, labels in (("sluice_request_duration_seconds", {"api": "Produce"}),
                         ("sluice_object_size_bytes", {}),
                         ("sluice_meta_commit_duration_seconds", {}),
                         ("sluice_object_store_request_duration_seconds",
                          {"operation": "put"})):
        buckets = sorted(((float(l["le"]), v) for l, v in series(after, name + "_bucket")
                          if {k: l[k] for k in l if k != "le"} == labels))
        assert len(buckets) >= 10 and buckets[-1][0] == float("inf"), (name, buckets)
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), (name, buckets)
        assert counts[-1] == value(after, name + "_count", **labels) > 0, name
        assert value(after, name + "_sum", **labels) > 0, name
        if name == "sluice_meta_commit_duration_seconds":
            # 2.5 ms apart around issue 12's 15 ms p99 target
            assert [0.0075, 0.01, 0.0125, 0.015, 0.0175, 0.02, 0.025] == \
                [le for le, _ in buckets if 0.005 < le <= 0.025], buckets
    assert value(after, "sluice_object_size_bytes_count") == value(after, "sluice_objects_sealed_total")

    # Fetching it all back sends at least those bytes out.
    c = consumer(agent.bootstrap)
    c.assign([TopicPartition(t, p, 0) for p in range(3)])
    got = 0
    deadline = time.monotonic() + 20
    while got < 28 and time.monotonic() < deadline:
        got += len(c.consume(100, 0.5))
    c.close()
    assert got == 28
    out = scrape(agent.metrics_port)
    assert value(out, "sluice_topic_bytes_out_total", topic=t) >= sum(len(b) for _, b, _ in batches)
    assert value(out, "sluice_topic_records_out_total", topic=t) >= 28
    assert value(out, "sluice_read_cache_hits_total") + value(out, "sluice_read_cache_misses_total") > 0


def test_group_lag_and_states(agent):
    t = create_topic(agent.bootstrap, topic_name("lag"), partitions=2)
    ck_produce(agent.bootstrap, t, make_messages(10), partition=0)
    ck_produce(agent.bootstrap, t, make_messages(4), partition=1)
    group = topic_name("grp")
    c = consumer(agent.bootstrap, **{"group.id": group})
    c.commit(offsets=[TopicPartition(t, 0, 3), TopicPartition(t, 1, 4)], asynchronous=False)
    c.close()
    m = scrape(agent.metrics_port)
    assert value(m, "sluice_consumer_group_lag_records", group=group, topic=t, partition="0") == 7
    assert value(m, "sluice_consumer_group_lag_records", group=group, topic=t, partition="1") == 0
    states = {l["state"]: v for l, v in series(m, "sluice_consumer_groups")}
    assert set(states) == {"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}
    assert states["Empty"] >= 1
    ck_produce(agent.bootstrap, t, make_messages(5), partition=1)
    m = scrape(agent.metrics_port)
    assert value(m, "sluice_consumer_group_lag_records", group=group, topic=t, partition="1") == 5
    # With groups, a scrape's answer waits for their offsets (a pool job):
    # two pipelined on one keep-alive connection both come, in order.
    answer = raw_http(agent.metrics_port,
                      b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n"
                      b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert answer.count(b"HTTP/1.1 200 OK") == 2
    assert answer.count(b'sluice_consumer_group_lag_records{group="%s"' % group.encode()) == 4


def raw_http(port, data, timeout=5):
    """Sends data, returns everything read until the server closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout)
    s.sendall(data)
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    return out


def test_health_and_bad_requests(agent):
    port = agent.metrics_port
    assert get(port, "/healthz")[:2] == (200, "ok\n")
    assert get(port, "/readyz")[:2] == (200, "ready\n")
    assert get(port, "/nothing")[0] == 404
    assert get(port, "/metrics?x=1")[0] == 200
    for req, status in ((b"POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 405),
                        (b"GET /metrics HTTP/1.1\r\n\r\n", 400),
                        (b"GET /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody", 400),
                        (b"GET /metrics HTTP/3.0\r\nHost: a\r\n\r\n", 505),
                        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 500, 400),
                        (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 9000, 431),
                        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414)):
        answer = raw_http(port, req)
        assert answer.startswith(b"HTTP/1.1 %d " % status), (req[:30], answer[:80])
        assert b"Connection: close" in answer
    # Keep-alive: two requests on one connection, pipelined.
    answer = raw_http(port, b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
                            b"GET /readyz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert answer.count(b"HTTP/1.1 200 OK") == 2 and answer.endswith(b"ready\n")
    # The Kafka listener is unaffected.
    create_topic(agent.bootstrap, topic_name("after"))


def test_unsupported_version_and_busy_port(agent, tmp_path):
    # An API version the table does not have is answered with the error
    # code alone, and counted under its API.
    s = kproto.connect(agent.bootstrap)
    s.sendall(kproto.request(kproto.API_PRODUCE, 99, 3, b""))
    cid, body = kproto.recv_response(s)
    assert cid == 3 and body == kproto.i16(35)
    s.close()
    m = scrape(agent.metrics_port)
    assert value(m, "sluice_request_errors_total", api="Produce",
                 error="UNSUPPORTED_VERSION", code="35") == 1
    # A metrics port that is taken stops the agent with one line. (A
    # start that fails leaves its handles to the exit, as every startup
    # failure does: no leak check for this one under ASan.)
    env = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0")
    r = subprocess.run([agent.args()[0], "serve", "--listen", "127.0.0.1:%d" % free_port(),
                        "--data", str(tmp_path / "other"),
                        "--metrics-listen", "127.0.0.1:%d" % agent.metrics_port],
                       capture_output=True, timeout=30, env=env)
    assert r.returncode == 1
    assert b"cannot listen for metrics on 127.0.0.1:%d" % agent.metrics_port in r.stderr


def test_readyz_503_while_draining(agent):
    """SIGTERM while a produce waits for its commit (the metadata store's
    write lock is held by another connection): /readyz answers 503 and
    /healthz 200 until the drain is done; the produce is then answered."""
    port = agent.metrics_port
    t = create_topic(agent.bootstrap, topic_name("drain"))
    db = sqlite3.connect(os.path.join(agent.data_dir, "meta.db"), timeout=10,
                         isolation_level=None)
    s = kproto.connect(agent.bootstrap, timeout=30)
    try:
        db.execute("BEGIN IMMEDIATE")
        batch = kproto.record_batch([(b"k", b"v", ())])
        body = (kproto.string(None) + kproto.i16(-1) + kproto.i32(20000) +
                kproto.array([kproto.string(t) + kproto.array([kproto.i32(0) + kproto.bytes_(batch)])]))
        s.sendall(kproto.request(kproto.API_PRODUCE, 3, 5, body))
        # The produce is read (and then waits for its commit) before the
        # SIGTERM: a fixed pause was a guess on a loaded machine.
        deadline = time.monotonic() + 10
        while value(scrape(port), "sluice_queued_request_bytes") == 0:
            assert time.monotonic() < deadline, "the produce was not read"
            time.sleep(0.02)
        time.sleep(0.3)  # its object sealed, the commit waiting
        agent.proc.send_signal(signal.SIGTERM)
        # (The drain lasts while the test holds the lock: a generous wait
        # for the signal to be handled lets nothing else pass.)
        deadline = time.monotonic() + 10
        status = None
        while time.monotonic() < deadline:
            status = get(port, "/readyz")[0]
            if status == 503:
                break
            time.sleep(0.02)
        assert status == 503
        assert get(port, "/healthz")[:2] == (200, "ok\n")
        assert agent.running(), "the drain ended while the commit was blocked"
        m = scrape(port)
        assert value(m, "sluice_ready") == 0
    finally:
        db.execute("ROLLBACK")
        db.close()
    cid, resp = kproto.recv_response(s)
    assert cid == 5
    s.close()
    assert agent.proc.wait(15) == 0


def prometheus_query(port, q):
    url = "http://127.0.0.1:%d/api/v1/query?%s" % (port, urllib.parse.urlencode({"query": q}))
    with urllib.request.urlopen(url, timeout=10) as r:
        doc = json.load(r)
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def wait_query(port, q, want, timeout=30):
    """Polls until the query's single value is want; returns the last result."""
    deadline = time.monotonic() + timeout
    res = None
    while time.monotonic() < deadline:
        try:
            res = prometheus_query(port, q)
        except OSError:
            res = None
        if res and len(res) == 1 and float(res[0]["value"][1]) == want:
            return res
        time.sleep(0.3)
    pytest.fail("query %s: want %s, last %r" % (q, want, res))


def check_dashboard(prom_port, metrics_port):
    """Every query of docs/grafana-dashboard.json is valid PromQL that
    Prometheus evaluates, and names only metrics the agent exposes."""
    path = os.path.join(os.environ.get("SLUICE_SOURCE_DIR") or
                        os.path.join(os.path.dirname(__file__), "..", ".."),
                        "docs", "grafana-dashboard.json")
    with open(path) as f:
        dash = json.load(f)
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 20
    body = get(metrics_port, "/metrics")[1]
    exposed = set(re.findall(r"^# TYPE (\S+) ", body, re.M))
    for e in exprs:
        for name in re.findall(r"\b((?:sluice|process)_[a-z_]+)", e):
            assert re.sub(r"_bucket$", "", name) in exposed, "dashboard names %s, not exposed (%s)" % (name, e)
        prometheus_query(prom_port, e.replace("$__rate_interval", "1m")
                         .replace("$instance", ".*"))


def test_prometheus_scrapes_the_agent(agent, tmp_path):
    t = create_topic(agent.bootstrap, topic_name("prom"))
    prom_port = free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                   "scrape_configs:\n  - job_name: sluice\n    static_configs:\n"
                   "      - targets: ['127.0.0.1:%d']\n" % agent.metrics_port)
    log = open(tmp_path / "prometheus.log", "wb")
    prom = subprocess.Popen([PROMETHEUS, "--config.file=%s" % cfg,
                             "--storage.tsdb.path=%s" % (tmp_path / "tsdb"),
                             "--web.listen-address=127.0.0.1:%d" % prom_port],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        wait_query(prom_port, 'up{job="sluice"}', 1)
        # A sample of the topic's counter at 0 before producing.
        wait_query(prom_port, 'sluice_topic_records_in_total{topic="%s"}' % t, 0)
        msgs = make_messages(321)
        ck_produce(agent.bootstrap, t, msgs)
        wait_query(prom_port, 'sluice_topic_records_in_total{topic="%s"}' % t, 321)
        # The increase over the window, from Prometheus' own samples.
        q = ('max_over_time(sluice_topic_records_in_total{topic="%s"}[5m]) - '
             'min_over_time(sluice_topic_records_in_total{topic="%s"}[5m])' % (t, t))
        wait_query(prom_port, q, 321)
        res = prometheus_query(prom_port, 'sluice_requests_total{api="Produce"}')
        assert res and sum(float(r["value"][1]) for r in res) >= 1
        check_dashboard(prom_port, agent.metrics_port)
    finally:
        prom.terminate()
        try:
            prom.wait(15)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()
        log.close()
