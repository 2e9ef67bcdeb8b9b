"""test_gc.py — `sluice gc`, the one-shot garbage collector, on the file
store and on the S3 store (s3rver, or the endpoint of
SLUICE_TEST_S3_ENDPOINT: see test_s3.py).

Two topics are produced to, partly through the same objects; one is
deleted and an orphan (bytes no metadata names) is put in the store. With
the default grace (60 minutes) gc deletes nothing; with --grace-minutes 0
it deletes the objects only the deleted topic used and the orphan, keeps
the shared objects (they still have live bytes) and the other topic's,
which stays fully readable; a second run deletes nothing. The broker
serves throughout (nothing is produced while gc runs with grace 0, which
needs --force).

The error paths: a dead object whose store delete fails keeps its row
'deleting', gc exits 1, and the next run finishes it; gc refuses a
metadata store that does not exist (and creates none), and refuses to
delete orphans that are too many of the keys (a wrong --meta) without
--force.
"""
import os
import re
import shutil
import sqlite3
import subprocess
import time

import pytest
from confluent_kafka import Producer

import util
from conftest import SLUICE_BIN
from test_s3 import new_prefix, s3, s3_broker  # noqa: F401 (s3: fixture)

ORPHAN_KEY = "objects/orphan-left-by-a-crash.obj"
SUMMARY_RE = re.compile(r"gc: (deleted|would delete) (\d+) dead objects \((\d+) "
                        r"bytes\) and (\d+) orphans \((\d+) bytes\)")


class FileStore:
    def __init__(self, broker_factory, tmp_path):
        self.b = broker_factory()
        self.root = os.path.join(self.b.data_dir, "objects")
        self.gc_args = ["--data", self.b.data_dir]
        self.env = dict(os.environ)

    def keys(self):
        out = set()
        for d, _, files in os.walk(self.root):
            for f in files:
                if not f.startswith(".tmp."):
                    out.add(os.path.relpath(os.path.join(d, f), self.root))
        return out

    def put(self, key, data):
        path = os.path.join(self.root, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)


class S3Store:
    def __init__(self, broker_factory, ep):
        self.ep = ep
        self.prefix = new_prefix("gc")
        url = ep.url(self.prefix)
        self.b = s3_broker(broker_factory, ep, url)
        self.gc_args = ["--data", self.b.data_dir, "--store", url]
        self.env = dict(os.environ)
        self.env.update(ep.env())

    def keys(self):
        n = len(self.prefix) + 1
        return {k[n:] for k, _ in self.ep.list_keys(self.prefix + "/objects/")}

    def put(self, key, data):
        status, body = self.ep._request(
            "PUT", "/%s/%s/%s" % (self.ep.bucket, self.prefix, key), body=data)
        assert status == 200, body


@pytest.fixture(params=["file", "s3"])
def store(request, broker_factory, tmp_path):
    if request.param == "file":
        return FileStore(broker_factory, tmp_path)
    return S3Store(broker_factory, request.getfixturevalue("s3"))


def run_gc_rc(store, *extra, args=None):
    r = subprocess.run([SLUICE_BIN, "gc"] + (store.gc_args if args is None
                                             else args) + list(extra),
                       capture_output=True, timeout=120, env=store.env)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def run_gc(store, *extra):
    rc, out, err = run_gc_rc(store, *extra)
    assert rc == 0, "gc exited %d\nstdout:\n%s\nstderr:\n%s" % (rc, out, err)
    m = SUMMARY_RE.search(out)
    assert m, out
    return (int(m.group(2)), int(m.group(3)), int(m.group(4)),
            int(m.group(5)), out)


def object_keys(store, topic, partitions):
    """The object keys the partitions' batch rows name (sluice inspect)."""
    keys = set()
    for p in range(partitions):
        r = subprocess.run([SLUICE_BIN, "inspect", "partition", "--data",
                            store.b.data_dir, topic, str(p)],
                           capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr.decode()
        for line in r.stdout.decode().splitlines():
            f = line.split()
            if f and f[-1].startswith("objects/"):
                keys.add(f[-1])
    return keys


def produce_mixed(bootstrap, keep, drop, n):
    """n messages to each topic through one producer, interleaved, so
    that objects hold batches of both; returns keep's messages."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5,
                  "acks": "all"})
    sent = []
    for i in range(n):
        v = b"keep-%d" % i
        p.produce(keep, v, b"k%d" % (i % 7))
        sent.append(v)
        p.produce(drop, b"drop-%d" % i, b"k%d" % (i % 7))
        if i % 100 == 99:
            p.flush(30)
    assert p.flush(60) == 0
    return sent


def test_gc(store):
    bs = store.b.bootstrap
    keep = util.create_topic(bs, util.topic_name("gck"), 2)
    drop = util.create_topic(bs, util.topic_name("gcd"), 2)
    sent = produce_mixed(bs, keep, drop, 500)
    # Objects of the dropped topic alone, then of the kept topic alone.
    util.ck_produce(bs, drop, util.make_messages(300, seed=3))
    only_keep = util.make_messages(300, seed=4)
    util.ck_produce(bs, keep, only_keep)
    sent += [m.value for m in only_keep]

    keep_keys = object_keys(store, keep, 2)
    drop_keys = object_keys(store, drop, 2)
    shared = keep_keys & drop_keys
    only_drop = drop_keys - keep_keys
    assert only_drop, "no object holds the dropped topic alone"
    assert keep_keys <= store.keys()

    fs = util.admin(bs).delete_topics([drop], operation_timeout=15)
    fs[drop].result(15)
    store.put(ORPHAN_KEY, b"not an object: uploaded, never committed")
    before = store.keys()
    assert ORPHAN_KEY in before and only_drop <= before
    time.sleep(1.1)  # S3 LastModified has one-second precision

    # The default grace (an hour) protects everything young.
    dead, _, orphans, _, out = run_gc(store)
    assert (dead, orphans) == (0, 0), out
    dead, _, orphans, _, out = run_gc(store, "--grace-minutes", "0", "--force",
                                      "--dry-run")
    assert (dead, orphans) == (len(only_drop), 1), out
    assert store.keys() == before

    dead, dead_bytes, orphans, orphan_bytes, out = run_gc(
        store, "--grace-minutes", "0", "--force")
    assert dead == len(only_drop), out
    assert dead_bytes > 0
    assert orphans == 1 and orphan_bytes == len(
        b"not an object: uploaded, never committed"), out
    after = store.keys()
    assert not (only_drop & after), only_drop & after
    assert ORPHAN_KEY not in after
    assert keep_keys <= after, "an object still in use was deleted"
    assert shared <= after
    assert after == before - only_drop - {ORPHAN_KEY}

    # The kept topic is whole.
    got = util.consume_all(bs, keep, 2, expect=len(sent))
    values = sorted(m.value for p in got.values() for m in p)
    assert values == sorted(sent)

    # Nothing left to do.
    dead, _, orphans, _, out = run_gc(store, "--grace-minutes", "0", "--force")
    assert (dead, orphans) == (0, 0), out
    assert store.keys() == after


def object_states(store):
    """key -> state of every objects row (read-only, beside the agent)."""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(store.b.data_dir,
                                                         "meta.db"),
                         uri=True, timeout=10)
    try:
        return dict(db.execute("SELECT key, state FROM objects"))
    finally:
        db.close()


def drop_topic(store, n=200, seed=11):
    """A topic produced to, then deleted: its object keys."""
    bs = store.b.bootstrap
    drop = util.create_topic(bs, util.topic_name("gcx"), 1)
    util.ck_produce(bs, drop, util.make_messages(n, seed=seed))
    keys = object_keys(store, drop, 1)
    assert keys
    fs = util.admin(bs).delete_topics([drop], operation_timeout=15)
    fs[drop].result(15)
    return keys


def test_gc_failed_delete_finished_by_next_run(broker_factory, tmp_path):
    """A dead object the store cannot delete (its file replaced by a
    non-empty directory: root ignores chmod) keeps its row 'deleting'
    and gc exits 1; once the obstacle is gone the next run deletes it
    and forgets the row."""
    store = FileStore(broker_factory, tmp_path)
    dead = sorted(drop_topic(store))
    victim = dead[0]
    path = os.path.join(store.root, victim)
    os.unlink(path)
    os.makedirs(path)
    with open(os.path.join(path, "in-the-way"), "wb") as f:
        f.write(b"x")
    rc, out, err = run_gc_rc(store, "--grace-minutes", "0", "--force")
    assert rc == 1, (rc, out, err)
    assert "could not be deleted" in err, err
    states = object_states(store)
    assert states.get(victim) == "deleting", states.get(victim)
    for k in dead[1:]:
        assert k not in states, k
        assert k not in store.keys(), k
    # Still in the way: still failing, still remembered.
    rc, out, err = run_gc_rc(store, "--grace-minutes", "0", "--force")
    assert rc == 1, (rc, out, err)
    assert object_states(store).get(victim) == "deleting"
    shutil.rmtree(path)
    dead_n, _, _, _, out = run_gc(store, "--grace-minutes", "0", "--force")
    assert dead_n == 1, out
    assert victim not in object_states(store)
    dead_n, _, orphans, _, out = run_gc(store, "--grace-minutes", "0",
                                        "--force")
    assert (dead_n, orphans) == (0, 0), out


def test_gc_refuses_missing_metadata(broker_factory, tmp_path):
    """--store at a populated store with a metadata path that does not
    exist: exit 1 with one line, nothing deleted, no database created."""
    store = FileStore(broker_factory, tmp_path)
    topic = util.create_topic(store.b.bootstrap, util.topic_name("gcm"), 1)
    util.ck_produce(store.b.bootstrap, topic, util.make_messages(100, seed=6))
    before = store.keys()
    assert before
    empty = tmp_path / "empty"
    empty.mkdir()
    args = ["--data", str(empty), "--store", "file:" + store.root]
    rc, out, err = run_gc_rc(store, "--grace-minutes", "0", "--force",
                             args=args)
    assert rc == 1, (rc, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "meta.db" in lines[0], lines
    assert store.keys() == before
    assert os.listdir(empty) == []
    # An empty file is not a metadata store either, and stays empty.
    (empty / "meta.db").write_bytes(b"")
    rc, out, err = run_gc_rc(store, "--force", args=args)
    assert rc == 1, (rc, out, err)
    assert "no schema" in err, err
    assert (empty / "meta.db").stat().st_size == 0
    assert store.keys() == before


def test_gc_orphan_brake(broker_factory, tmp_path):
    """Orphans more than a fifth of the keys (and more than 10): gc
    deletes nothing and exits 1 unless --force. The orphans here carry
    seal times of 1970 in the writer's key format, so the default grace
    does not protect them (their age comes from the key, not mtime)."""
    store = FileStore(broker_factory, tmp_path)
    bs = store.b.bootstrap
    topic = util.create_topic(bs, util.topic_name("gcb"), 1)
    msgs = util.make_messages(100, seed=7)
    util.ck_produce(bs, topic, msgs)
    real = store.keys()
    orphans = {"objects/%013d-00000000deadbeef-%08x.obj" % (1000 + i, i)
               for i in range(max(11, len(real)))}
    for k in orphans:
        store.put(k, b"never committed")
    before = store.keys()
    rc, out, err = run_gc_rc(store)
    assert rc == 1, (rc, out, err)
    assert "refusing" in err and "--force" in err, err
    assert store.keys() == before
    dead_n, _, orphans_n, orphan_bytes, out = run_gc(store, "--force")
    assert (dead_n, orphans_n) == (0, len(orphans)), out
    assert orphan_bytes == len(orphans) * len(b"never committed")
    assert store.keys() == real
    got = util.consume_all(bs, topic, 1, expect=len(msgs))
    assert len(got[0]) == len(msgs)


def test_gc_bad_config(tmp_path):
    if not os.path.exists(SLUICE_BIN):
        pytest.skip("no sluice binary")
    r = subprocess.run([SLUICE_BIN, "gc", "--store", "bogus:x", "--data",
                        str(tmp_path)], capture_output=True, timeout=60)
    assert r.returncode == 1
    err = r.stderr.decode().strip().splitlines()
    assert len(err) == 1 and "bogus:x" in err[0], err
    r = subprocess.run([SLUICE_BIN, "gc", "--grace-minutes", "-1"],
                       capture_output=True, timeout=60)
    assert r.returncode == 2
    # Grace 0 only with --force (an agent's uncommitted uploads would be
    # fenced out); an over-long value is refused, not truncated.
    r = subprocess.run([SLUICE_BIN, "gc", "--data", str(tmp_path),
                        "--grace-minutes", "0"], capture_output=True, timeout=60)
    assert r.returncode == 2 and b"--force" in r.stderr, r.stderr
    r = subprocess.run([SLUICE_BIN, "gc", "--data", "/tmp/" + "x" * 2000],
                       capture_output=True, timeout=60)
    assert r.returncode == 2, r.stderr


def test_gc_removes_stale_temp_files(broker_factory, tmp_path):
    """A put that died mid-write leaves a temp file beside the final name;
    a listing (gc) removes it once it is an hour old, never a young one
    (a put that may still be running)."""
    store = FileStore(broker_factory, tmp_path)
    topic = util.create_topic(store.b.bootstrap, util.topic_name("gct"), 1)
    util.ck_produce(store.b.bootstrap, topic, util.make_messages(50, seed=5))
    obj_dir = os.path.dirname(os.path.join(store.root, sorted(store.keys())[0]))
    stale = os.path.join(obj_dir, ".tmp.crashed.obj.1.1")
    young = os.path.join(obj_dir, ".tmp.writing.obj.1.2")
    for path in (stale, young):
        with open(path, "wb") as f:
            f.write(b"half an object")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    run_gc(store)
    assert not os.path.exists(stale), "stale temp file kept"
    assert os.path.exists(young), "a young temp file was removed"
    got = util.consume_all(store.b.bootstrap, topic, 1, expect=50)
    assert len(got[0]) == 50
