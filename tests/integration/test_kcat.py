"""test_kcat.py — kcat (librdkafka's CLI) lists the broker and topics with
`-L` and round-trips lines with `-P` / `-C -e`."""
import re
import socket
import subprocess

import pytest

import util
from conftest import Broker


def kcat(*args, stdin=None, timeout=60):
    r = subprocess.run(["kcat"] + list(args), input=stdin,
                       capture_output=True, timeout=timeout)
    assert r.returncode == 0, "kcat %s failed (%d): %s" % (
        " ".join(args), r.returncode, r.stderr.decode())
    return r.stdout.decode()


def check_listing(out, host_port, topic, parts):
    brokers = re.findall(r"broker (-?\d+) at (\S+)", out)
    assert brokers, "no broker in kcat -L output:\n" + out
    assert [hp for _, hp in brokers] == [host_port], \
        "kcat -L brokers %r, expected one at %s" % (brokers, host_port)
    bid = brokers[0][0]
    assert 'topic "%s" with %d partitions:' % (topic, parts) in out, out
    for p in range(parts):
        assert re.search(r"partition %d, leader %s," % (p, bid), out), \
            "partition %d with leader %s missing:\n%s" % (p, bid, out)


def test_kcat_list(broker):
    topic = util.create_topic(broker.bootstrap, util.topic_name("kl"), 3)
    out = kcat("-L", "-b", broker.bootstrap, "-t", topic)
    check_listing(out, broker.bootstrap, topic, 3)
    # Without -t every topic is listed, ours included.
    out = kcat("-L", "-b", broker.bootstrap)
    assert 'topic "%s" with 3 partitions:' % topic in out, out


def test_kcat_advertised_address(broker_factory):
    port = util.free_port()
    b = broker_factory(["--advertise", "localhost:%d" % port], port=port)
    topic = util.create_topic(b.bootstrap, util.topic_name("ka"), 2)
    out = kcat("-L", "-b", b.bootstrap, "-t", topic)
    check_listing(out, "localhost:%d" % port, topic, 2)


def test_kcat_produce_consume_lines(broker):
    topic = util.create_topic(broker.bootstrap, util.topic_name("kpc"), 3)
    lines = ["line %d with some text \u00e9" % i for i in range(2000)]
    kcat("-P", "-b", broker.bootstrap, "-t", topic, "-X", "linger.ms=5",
         stdin=("\n".join(lines) + "\n").encode())
    out = kcat("-C", "-b", broker.bootstrap, "-t", topic, "-o", "beginning",
               "-e", "-q", "-f", "%p\t%o\t%s\n")
    rows = [l.split("\t", 2) for l in out.splitlines()]
    assert sorted(r[2] for r in rows) == sorted(lines)
    per = {}
    for p, o, v in rows:
        per.setdefault(int(p), []).append((int(o), v))
    for p, items in per.items():
        assert [o for o, _ in items] == list(range(len(items))), \
            "partition %d offsets %r" % (p, [o for o, _ in items][:10])
        # kcat's producer keeps file order within a partition.
        order = [v for _, v in items]
        mine = set(order)
        assert order == [l for l in lines if l in mine], \
            "partition %d does not keep the produce order" % p


def test_kcat_ipv6_listener(tmp_path):
    """--listen [::1]:PORT (brackets, as IPv6 addresses are written with a
    port) listens on the IPv6 loopback and advertises ::1."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    b = Broker(tmp_path / "data")
    b.host = "::1"
    b.bootstrap = "[::1]:%d" % b.port
    b.start()
    try:
        topic = util.create_topic(b.bootstrap, util.topic_name("k6"), 2)
        out = kcat("-L", "-b", b.bootstrap, "-t", topic)
        check_listing(out, "::1:%d" % b.port, topic, 2)
    finally:
        b.teardown()
