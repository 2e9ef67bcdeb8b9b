"""test_postgres.py — one agent on a real PostgreSQL metadata store.

A throwaway server (tools/pg-test.sh: initdb into a temp dir as the
postgres user, pg_ctl on a free loopback port, password authentication)
serves the module; each test gets a database of its own. An agent with
--meta postgresql://... produces and consumes byte for byte, keeps
everything across a restart (the rows are in PostgreSQL, not in a file
of its data dir), creates and deletes topics and keeps committed group
offsets; a wrong password, a missing database or a port nothing listens on
stop `sluice serve` with status 1 and one error line that never shows the
password.
"""
import os
import subprocess
import time
import urllib.parse
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition

import kproto
import util
from conftest import SLUICE_BIN

SOURCE_DIR = os.environ.get("SLUICE_SOURCE_DIR",
                            os.path.join(os.path.dirname(__file__), "..", ".."))
PG_TEST = os.path.join(SOURCE_DIR, "tools", "pg-test.sh")


class Server:
    def __init__(self, state):
        self.state = str(state)
        self.url = subprocess.run([PG_TEST, "start", self.state], check=True,
                                  capture_output=True, text=True,
                                  timeout=120).stdout.strip()
        u = urllib.parse.urlsplit(self.url)
        self.user, self.password = u.username, u.password
        self.host, self.port = u.hostname, u.port

    def db_url(self, db, password=None):
        return "postgresql://%s:%s@%s:%d/%s" % (
            self.user, password or self.password, self.host, self.port, db)

    def psql(self, sql, db="postgres"):
        r = subprocess.run(["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-c", sql, self.db_url(db)], check=True,
                           capture_output=True, text=True, timeout=60)
        return r.stdout.strip()

    def new_db(self):
        name = "sluice_it_" + uuid.uuid4().hex[:8]
        self.psql("CREATE DATABASE %s" % name)
        return name

    def stop(self):
        subprocess.run([PG_TEST, "stop", self.state], timeout=120)


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("pg"))
    yield s
    s.stop()


def pg_broker(broker_factory, pg, db):
    return broker_factory(["--meta", pg.db_url(db)])


def test_produce_consume_restart(broker_factory, pg):
    db = pg.new_db()
    b = pg_broker(broker_factory, pg, db)
    topic = util.create_topic(b.bootstrap, util.topic_name("pg"), 3)
    msgs = util.make_messages(3000)
    util.ck_produce(b.bootstrap, topic, msgs)
    util.check_roundtrip(msgs, util.consume_all(b.bootstrap, topic, 3))
    # The catalog is PostgreSQL's: the topic, its partitions' high
    # watermarks and the batch rows are there.
    assert pg.psql("SELECT partition_count FROM topics WHERE name = '%s'"
                   % topic, db) == "3"
    assert int(pg.psql("SELECT sum(high_watermark) FROM partitions", db)) \
        == len(msgs)
    assert int(pg.psql("SELECT count(*) FROM batches", db)) > 0
    assert not os.path.exists(os.path.join(b.data_dir, "meta.db"))

    b.stop()
    b.start()
    util.check_roundtrip(msgs, util.consume_all(b.bootstrap, topic, 3))
    more = util.make_messages(500, seed=2)
    util.ck_produce(b.bootstrap, topic, more)
    got = util.consume_all(b.bootstrap, topic, 3)
    assert sum(len(v) for v in got.values()) == len(msgs) + len(more)
    for p, v in got.items():
        assert [g.offset for g in v] == list(range(len(v))), p
    # The URL carries the password; what the agent logged never does.
    assert pg.password
    for log in b.logs:
        with open(log, errors="replace") as f:
            text = f.read()
        assert pg.password not in text, "the password is in %s" % log
        assert ":***@" in text or "postgresql://" not in text


def test_topics_and_group_offsets(broker_factory, pg):
    db = pg.new_db()
    b = pg_broker(broker_factory, pg, db)
    keep = util.create_topic(b.bootstrap, util.topic_name("keep"), 2)
    gone = util.create_topic(b.bootstrap, util.topic_name("gone"), 1)
    util.ck_produce(b.bootstrap, keep, util.make_messages(200))
    util.ck_produce(b.bootstrap, gone, util.make_messages(50, seed=3))
    fs = util.admin(b.bootstrap).delete_topics([gone], operation_timeout=15)
    fs[gone].result(15)
    assert pg.psql("SELECT count(*) FROM topics WHERE name = '%s'" % gone,
                   db) == "0"
    assert pg.psql("SELECT count(*) FROM batches b JOIN topics t"
                   " ON t.tid = b.tid WHERE t.name = '%s'" % gone, db) == "0"

    group = "pg-group-" + uuid.uuid4().hex[:6]
    conf = {"bootstrap.servers": b.bootstrap, "group.id": group,
            "enable.auto.commit": False}
    c = Consumer(conf)
    try:
        c.commit(offsets=[TopicPartition(keep, 0, 17),
                          TopicPartition(keep, 1, 42)], asynchronous=False)
    finally:
        c.close()
    assert pg.psql("SELECT count(*) FROM group_offsets WHERE group_id = '%s'"
                   % group, db) == "2"

    b.stop()
    util.forget_admin(b.bootstrap)
    b.start()
    md = util.admin(b.bootstrap).list_topics(timeout=10)
    assert keep in md.topics and gone not in md.topics
    c = Consumer(conf)
    try:
        got = c.committed([TopicPartition(keep, 0), TopicPartition(keep, 1)],
                          timeout=15)
    finally:
        c.close()
    assert [(tp.partition, tp.offset) for tp in got] == [(0, 17), (1, 42)]


def run_bad(tmp_path, url):
    port = util.free_port()
    t0 = time.monotonic()
    r = subprocess.run([SLUICE_BIN, "serve", "--listen", "127.0.0.1:%d" % port,
                        "--data", str(tmp_path / "data"), "--meta", url],
                       capture_output=True, timeout=60)
    took = time.monotonic() - t0
    err = r.stderr.decode()
    errors = [l for l in err.splitlines() if " ERROR " in l]
    assert r.returncode == 1, "exit %d:\n%s" % (r.returncode, err)
    assert len(errors) == 1, "want one error line:\n%s" % err
    assert took < 20, "took %.1f s to give up" % took
    return err, errors[0]


def test_wrong_password(pg, tmp_path):
    db = pg.new_db()
    secret = "not-the-password-" + uuid.uuid4().hex[:6]
    err, line = run_bad(tmp_path, pg.db_url(db, password=secret))
    assert "password authentication failed" in line, line
    assert secret not in err and pg.password not in err


def test_missing_database(pg, tmp_path):
    err, line = run_bad(tmp_path, pg.db_url("sluice_missing_db"))
    assert 'database "sluice_missing_db" does not exist' in line, line
    assert pg.password not in err


def test_unreachable_port(pg, tmp_path):
    url = "postgresql://%s:%s@127.0.0.1:%d/x" % (pg.user, pg.password,
                                                   util.free_port())
    err, line = run_bad(tmp_path, url)
    assert "refused" in line.lower(), line
    assert pg.password not in err


def test_store_lock_does_not_stall_the_loop(broker_factory, pg):
    """ListOffsets by time and OffsetFetch read PostgreSQL in pool jobs:
    while another session holds the tables they read locked, their
    answers wait, but the agent keeps answering Metadata and ApiVersions
    on other connections at once; the waiting answers come right after."""
    db = pg.new_db()
    b = pg_broker(broker_factory, pg, db)
    topic = util.create_topic(b.bootstrap, util.topic_name("lock"), 1)
    util.ck_produce(b.bootstrap, topic, util.make_messages(100))
    group = "pg-lock-" + uuid.uuid4().hex[:6]
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(topic, 0, 33)], asynchronous=False)
    finally:
        c.close()

    hold_s = 4.0
    locker = subprocess.Popen(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
         "BEGIN; LOCK TABLE batches, group_offsets IN ACCESS EXCLUSIVE MODE;"
         " SELECT pg_sleep(%s); COMMIT;" % hold_s, pg.db_url(db)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while pg.psql("SELECT count(*) FROM pg_locks l JOIN pg_class c"
                      " ON c.oid = l.relation WHERE c.relname IN"
                      " ('batches', 'group_offsets') AND l.granted"
                      " AND l.mode = 'AccessExclusiveLock'", db) != "2":
            assert time.monotonic() < deadline, "the lock was never taken"
            time.sleep(0.05)
        locked_at = time.monotonic()
        # ListOffsets v1 by timestamp 0 (the first record), OffsetFetch v1.
        lo = kproto.connect(b.bootstrap, timeout=30)
        lo.sendall(kproto.request(2, 1, 21, kproto.i32(-1) + kproto.array(
            [kproto.string(topic) + kproto.array([kproto.i32(0) +
                                                  kproto.i64(0)])])))
        of = kproto.connect(b.bootstrap, timeout=30)
        of.sendall(kproto.request(9, 1, 22, kproto.string(group) +
                                  kproto.array([kproto.string(topic) +
                                                kproto.array([kproto.i32(0)])])))
        time.sleep(0.2)
        other = kproto.connect(b.bootstrap)
        for _ in range(5):
            t0 = time.monotonic()
            err, _, _ = kproto.api_versions_v0(other)
            assert err == 0
            kproto.metadata_v1(other, [topic])
            took = time.monotonic() - t0
            assert took < 0.5, "Metadata waited %.2f s behind a store read" % took
        assert time.monotonic() - locked_at < hold_s - 0.5, \
            "the checks ran past the lock: nothing was tested"

        cid, body = kproto.recv_response(lo)
        waited = time.monotonic() - locked_at
        assert cid == 21
        r = kproto.Reader(body)
        parts = r.array(lambda: (r.string(), r.array(
            lambda: (r.i32(), r.i16(), r.i64(), r.i64()))))
        assert parts[0][0] == topic
        (p, err, ts, off), = parts[0][1]
        assert (p, err, off) == (0, 0, 0), parts
        assert ts > 0
        assert waited > hold_s - 1.5, "ListOffsets was answered under the lock"

        cid, body = kproto.recv_response(of)
        assert cid == 22
        r = kproto.Reader(body)
        topics = r.array(lambda: (r.string(), r.array(
            lambda: (r.i32(), r.i64(), r.string(), r.i16()))))
        assert topics == [(topic, [(0, 33, "", 0)])], topics
    finally:
        locker.wait(timeout=60)
    assert locker.returncode == 0, locker.stderr.read()


def test_transactions_served_on_a_shared_store(broker_factory, pg):
    """An agent on PostgreSQL coordinates the transactional ids placed on
    it under their leases (test_cluster_txn.py has three agents): the
    transaction APIs are advertised, and InitProducerId with a
    transactional id answers a producer id once the id's lease is taken
    (COORDINATOR_LOAD_IN_PROGRESS until then, which clients retry)."""
    b = pg_broker(broker_factory, pg, pg.new_db())
    s = kproto.connect(b.bootstrap)
    _, apis, _ = kproto.api_versions_v0(s)
    assert {22, 24, 25, 26, 28, 65, 66} <= set(apis)
    body = kproto.string("tid") + kproto.i32(60000)
    deadline = time.monotonic() + 10
    while True:
        r = kproto.Reader(kproto.roundtrip(s, 22, 0, body))
        r.i32()  # throttle
        err, pid, epoch = r.i16(), r.i64(), r.i16()
        if err != 14 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert err == 0 and pid >= 0 and epoch == 0, (err, pid, epoch)
    s.close()
