"""test_merge.py — merging small objects (issue 15) with `sluice compact`
while the broker serves.

A topic's partitions are produced to in many small rounds, each round its
own ingest objects shared by both partitions. `sluice inspect partition`
shows every partition's rows spread over one object per round; after
`sluice compact` each partition's rows sit in one merged object (the
object count cut by the round count), the row count and bytes unchanged,
and confluent-kafka reads back exactly what it read before, offsets,
keys, values, headers and timestamps, also while the pass runs. The
emptied objects are dead once the collector's grace has passed since the
merge: `sluice gc` with the default grace keeps them, with grace 0 it
deletes them, and the data still reads the same after a restart (the
agent's in-memory index then starts from the store's rows). A second pass
finds nothing to merge. A pass killed with SIGKILL half-way loses nothing
and the next pass finishes it. --merge-swap-rows cuts a merged object's
metadata swap into transactions of that many rows, not the object; a pass
killed between two of them (SLUICE_MERGE_SWAP_PAUSE_MS holds it there)
leaves a consistent store, its object partly live, and the next pass
swaps the rows left into that object without writing one (SQLite and
PostgreSQL), only those whose bytes it holds unchanged, also when that
pass has a minimum age they do not have, and when they span several of
the pass's row pages (the object counted once). A run goes on
across the pass's pages of rows: a partition of 24,000 small batches
merges into one object.

The agent's own merge job (--merge-interval-ms) does the same while
consumers read, and its merged partitions read the same; under
--maintenance-io-bytes-per-sec its passes take at least their bytes over
the rate, and a drain is not held to it. A complete merged object
followed by an old row it could not take is read (its trailer) by the
job's first pass only, not by every pass, and so is a partly live
object whose copy of the next row differs (read up to the difference),
also with more such partitions than the memo's first table has slots.
In a cluster
(three agents on PostgreSQL, the fixtures of cluster.py) only the
holder of the job/merge lease merges, and every agent serves the merged
partitions unchanged.
"""
import os
import re
import sqlite3
import subprocess
import threading
import time
import urllib.request

from confluent_kafka import Producer

import kproto
import util
from conftest import SLUICE_BIN
from cluster import pg, start_agents, three_agents  # noqa: F401 (pg: fixture)
from test_cluster_leases import holders, log_text

ROUNDS = 30
PER_ROUND = 40
INSPECT_RE = re.compile(r"^(\d+) batches, (\d+) bytes in (\d+) objects$", re.M)
# A stored row holds a partition's adjacent batches of one object: a round
# may make one or several (librdkafka sends a partition's records in one
# batch or more), so the pass's rows and inspect's batches differ.
COMPACT_RE = re.compile(r"compact: (\S+)-(\d+): (\d+) rows \((\d+) batches\) from (\d+) "
                        r"objects into (\d+) merged objects \((\d+) bytes, (\d+) reads\), "
                        r"(\d+) refused; (\d+) swap transactions")


def run(*args, check=True):
    r = subprocess.run([SLUICE_BIN] + list(args), capture_output=True, text=True,
                       timeout=120)
    if check:
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


def inspect(b, topic, p, meta=None):
    where = ["--meta", meta] if meta else ["--data", b.data_dir]
    out = run("inspect", "partition", *where, topic, str(p)).stdout
    m = INSPECT_RE.search(out)
    assert m, out
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def stored_rows(b, topic, p):
    """The partition's batch rows as the metadata store holds them (a row
    holds a run of adjacent batches of one object)."""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(b.data_dir, "meta.db"), uri=True)
    try:
        return db.execute("SELECT count(*) FROM batches AS b JOIN topics AS t ON t.tid = b.tid"
                          " WHERE t.name = ? AND b.partition = ?", (topic, p)).fetchone()[0]
    finally:
        db.close()


def store_keys(b):
    root = os.path.join(b.data_dir, "objects")
    return {os.path.relpath(os.path.join(d, f), root)
            for d, _, files in os.walk(root) for f in files
            if not f.startswith(".tmp.")}


def produce_rounds(b, topic, rounds, per_round, seed):
    msgs = util.make_messages(rounds * per_round, keys=50, seed=seed)
    for r in range(rounds):
        util.ck_produce(b.bootstrap, topic, msgs[r * per_round:(r + 1) * per_round],
                        **{"linger.ms": 0})
    return msgs


def store_gets(metrics_port):
    """The broker's object store reads so far (its /metrics)."""
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics_port,
                                  timeout=10).read().decode()
    m = re.search(r'^sluice_object_store_requests_total\{operation="get"\} (\d+)$', body, re.M)
    assert m, body[:2000]
    return int(m.group(1))


def snapshot(b, topic, partitions):
    got = util.consume_all(b.bootstrap, topic, partitions)
    return {p: [(g.offset, g.key, g.value, g.headers, g.timestamp) for g in v]
            for p, v in got.items()}


def test_compact_merges_and_reads_the_same(broker_factory):
    mport = util.free_port()
    b = broker_factory(["--metrics-listen", "127.0.0.1:%d" % mport])
    topic = util.topic_name("merge")
    util.create_topic(b.bootstrap, topic, partitions=2)
    produce_rounds(b, topic, ROUNDS, PER_ROUND, seed=7)
    before = {p: inspect(b, topic, p) for p in range(2)}
    rows_before = {p: stored_rows(b, topic, p) for p in range(2)}
    for p in range(2):
        batches, _, objects = before[p]
        assert objects >= ROUNDS, before
        assert batches >= rows_before[p] >= objects
    keys_before = store_keys(b)
    # A catch-up from a cold broker (empty read cache and batch index).
    b.restart()
    g0 = store_gets(mport)
    want = snapshot(b, topic, 2)
    unmerged_gets = store_gets(mport) - g0
    assert sum(len(v) for v in want.values()) == ROUNDS * PER_ROUND
    assert unmerged_gets >= ROUNDS

    # Consumers read from the start over and over while the pass runs.
    stop = threading.Event()
    seen, errors = [], []

    def reader():
        while not stop.is_set():
            try:
                seen.append(snapshot(b, topic, 2))
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(e)
                return

    t = threading.Thread(target=reader)
    t.start()
    try:
        out = run("compact", "--data", b.data_dir, topic).stdout
    finally:
        stop.set()
        t.join(120)
    assert not errors, errors
    assert seen and all(s == want for s in seen)
    stats = {int(m.group(2)): m for m in COMPACT_RE.finditer(out)}
    assert set(stats) == {0, 1}, out
    for p in range(2):
        batches, nbytes, objects = inspect(b, topic, p)
        assert objects == 1, (p, batches, objects)
        assert (batches, nbytes) == before[p][:2]
        m = stats[p]
        # Every row moved; in the merged object its adjacent batches are
        # one row, as a commit stores them (fewer than 256 here).
        assert int(m.group(4)) == batches and int(m.group(6)) == 1, m.group(0)
        assert int(m.group(3)) == rows_before[p], m.group(0)
        assert stored_rows(b, topic, p) == 1
        assert int(m.group(9)) == 0
        # One read per source object: each holds one stretch of the partition.
        assert int(m.group(8)) == before[p][2]
    assert snapshot(b, topic, 2) == want
    # The same catch-up from merged data: the same records, a fraction of
    # the store reads (one object per partition instead of one per round).
    b.restart()
    g0 = store_gets(mport)
    assert snapshot(b, topic, 2) == want
    merged_gets = store_gets(mport) - g0
    print("catch-up store reads: %d unmerged, %d merged" % (unmerged_gets, merged_gets))
    assert merged_gets * 5 <= unmerged_gets, (merged_gets, unmerged_gets)
    # Two merged objects more; the old ones are still there (grace).
    assert len(store_keys(b) - keys_before) == 2
    assert keys_before <= store_keys(b)
    out = run("compact", "--data", b.data_dir, topic).stdout
    assert all(int(m.group(6)) == 0 for m in COMPACT_RE.finditer(out)), out

    run("gc", "--data", b.data_dir)
    assert keys_before <= store_keys(b)
    run("gc", "--data", b.data_dir, "--grace-minutes", "0", "--force")
    left = store_keys(b)
    assert len(left) == 2 and not (left & keys_before), left
    b.restart()
    assert snapshot(b, topic, 2) == want


def one_partition(b, name, rounds, per_round, seed):
    """A topic of one partition produced to in rounds: (topic, what it
    reads, inspect's batches, bytes and objects)."""
    topic = util.topic_name(name)
    util.create_topic(b.bootstrap, topic, partitions=1)
    produce_rounds(b, topic, rounds, per_round, seed=seed)
    return (topic, snapshot(b, topic, 1)) + inspect(b, topic, 0)


def test_kill9_during_compact(broker_factory):
    b = broker_factory()
    topic, want, batches0, bytes0, objects0 = one_partition(b, "merge-kill", 60, 20, 11)
    # Small merged objects: many runs, so the kill lands between or
    # inside them.
    args = [SLUICE_BIN, "compact", "--data", b.data_dir, "--merge-target-bytes",
            str(max(1024, bytes0 // 20)), topic]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        p.wait(0.05)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    assert inspect(b, topic, 0)[:2] == (batches0, bytes0)
    assert snapshot(b, topic, 1) == want
    run("compact", "--data", b.data_dir, "--merge-target-bytes",
        str(max(1024, bytes0 // 20)), topic)
    batches, nbytes, objects = inspect(b, topic, 0)
    assert (batches, nbytes) == (batches0, bytes0)
    assert objects <= objects0 // 2, (objects, objects0)
    assert snapshot(b, topic, 1) == want
    b.restart()
    assert snapshot(b, topic, 1) == want


def test_compact_swap_rows(broker_factory):
    """--merge-swap-rows bounds the stored rows each metadata transaction
    of a swap moves (each holds the write lock produce commits wait for),
    not the merged object: a partition of 30 small objects still merges
    into one object, in transactions of at most 8 rows, and reads the
    same."""
    b = broker_factory()
    topic, want, batches0, bytes0, objects0 = one_partition(b, "merge-rows", 30, 5, 13)
    rows0 = stored_rows(b, topic, 0)
    assert objects0 >= 30 and rows0 >= objects0, (objects0, rows0)
    out = run("compact", "--data", b.data_dir, "--merge-swap-rows", "8", topic).stdout
    m = COMPACT_RE.search(out)
    assert m, out
    rows, merged, refused, swaps = (int(m.group(3)), int(m.group(6)), int(m.group(9)),
                                    int(m.group(10)))
    assert (rows, merged, refused) == (rows0, 1, 0), out
    assert swaps == (rows + 7) // 8, (rows, swaps, out)
    assert inspect(b, topic, 0) == (batches0, bytes0, 1)
    assert snapshot(b, topic, 1) == want
    for bad in ("0", "100001", "x"):
        r = run("compact", "--data", b.data_dir, "--merge-swap-rows", bad, topic, check=False)
        assert r.returncode == 2 and "--merge-swap-rows" in r.stderr, (bad, r.stderr)


def test_merged_object_spans_row_pages(broker_factory):
    """A pass reads a partition's rows a page of 20,000 batches at a time;
    a run still growing at a page's end goes on in the next, so a merged
    object reaches --merge-target-bytes whatever the batches' size: 24,000
    one-record batches per partition (under 2 MB) in small objects merge
    into one object per partition, not one per page.
    SLUICE_MERGE_PAGE_ROWS (hidden) shrinks the page to 50 batches for
    partition 1, fewer than a stored row holds (256), and it still ends
    in one object."""
    b = broker_factory()
    topic = util.topic_name("merge-pages")
    util.create_topic(b.bootstrap, topic, partitions=2)
    # 1,000 Produce requests pipelined on a connection, a batch for each
    # partition in each: the writer puts those it has at once into an
    # object, a row per partition of up to 256 batches.
    with kproto.connect(b.bootstrap) as s:
        for r in range(24):
            for i in range(1000):
                body = (kproto.string(None) + kproto.i16(-1) + kproto.i32(10000) + kproto.array(
                    [kproto.string(topic) + kproto.array(
                        kproto.i32(p) + kproto.bytes_(kproto.record_batch(
                            [(b"k%d" % i, b"v%d-%d-%d" % (p, r, i), ())])) for p in range(2))]))
                s.sendall(kproto.request(kproto.API_PRODUCE, 3, i, body))
            for i in range(1000):
                cid, resp = kproto.recv_response(s)
                assert cid == i, (cid, i)
    want = snapshot(b, topic, 2)
    before = {p: inspect(b, topic, p) for p in range(2)}
    assert all(v[0] == 24000 and v[2] >= 24 for v in before.values()), before
    rows = {p: stored_rows(b, topic, p) for p in range(2)}
    for p, env in ((0, {}), (1, {"SLUICE_MERGE_PAGE_ROWS": "50"})):
        r = subprocess.run([SLUICE_BIN, "compact", "--data", b.data_dir, topic, str(p)],
                           capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, **env))
        assert r.returncode == 0, r
        m = COMPACT_RE.search(r.stdout)
        assert m and (int(m.group(3)), int(m.group(6))) == (rows[p], 1), r.stdout
        assert inspect(b, topic, p) == before[p][:2] + (1,)
    assert snapshot(b, topic, 2) == want


def meta_query(b, sql, *args):
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(b.data_dir, "meta.db"), uri=True)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


# Merged objects' keys end in a counter starting ffffffff (storage/merge.c).
MERGED_ROWS = ("SELECT count(*) FROM batches AS b JOIN objects AS o ON o.oid = b.oid"
               " WHERE o.key LIKE '%-ffffffff%'")
# Objects whose live bytes are not the bytes of the rows naming them.
LIVE_OFF = ("SELECT * FROM (SELECT o.key, o.live_bytes, (SELECT coalesce(sum(b.length), 0)"
            " FROM batches AS b WHERE b.oid = o.oid) AS named FROM objects AS o) AS x"
            " WHERE live_bytes > 0 AND live_bytes <> named")


RESUMED_RE = re.compile(r"; (\d+) of the rows into (\d+) partly merged objects")


def kill_between_chunks(b, query, where, meta=None):
    """A topic of one partition, merged by a pass killed with SIGKILL
    after the first transaction (4 rows) of its object's swap: checks the
    store is consistent (every row names bytes that exist, every object's
    live bytes are its rows') and every offset reads the same. Returns
    (topic, what it reads, inspect's batches and bytes, the stored rows,
    the partly live object's (key, live bytes))."""
    topic = util.topic_name("merge-chunks")
    util.create_topic(b.bootstrap, topic, partitions=1)
    produce_rounds(b, topic, 30, 5, seed=17)
    want = snapshot(b, topic, 1)
    batches0, bytes0, objects0 = inspect(b, topic, 0, meta)
    rows0 = int(query("SELECT count(*) FROM batches AS b JOIN topics AS t ON t.tid = b.tid"
                      " WHERE t.name = '%s'" % topic)[0][0])
    assert objects0 >= 30 and rows0 >= objects0, (objects0, rows0)
    env = dict(os.environ, SLUICE_MERGE_SWAP_PAUSE_MS="600000")
    p = subprocess.Popen([SLUICE_BIN, "compact"] + where + ["--merge-swap-rows", "4", topic],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 60
        # The first transaction done: its rows name the merged object.
        while int(query(MERGED_ROWS)[0][0]) == 0:
            assert p.poll() is None, "the pass ended without pausing"
            assert time.monotonic() < deadline, "no swap transaction within 60 s"
            time.sleep(0.05)
    finally:
        p.kill()
        p.wait()
    assert query(LIVE_OFF) == []
    partial = query("SELECT DISTINCT o.key, o.live_bytes FROM batches AS b JOIN objects"
                    " AS o ON o.oid = b.oid WHERE o.key LIKE '%-ffffffff%'")
    assert len(partial) == 1, partial
    assert int(partial[0][1]) < bytes0, (partial, bytes0)
    assert inspect(b, topic, 0, meta)[:2] == (batches0, bytes0)
    assert snapshot(b, topic, 1) == want
    return topic, want, batches0, bytes0, rows0, partial[0]


def kill9_between_swap_chunks(b, query, meta=None):
    """kill -9 between two transactions of one merged object's swap
    (kill_between_chunks), then the next pass swaps the rows left into
    that same object, which holds their bytes already: no object is
    written, the partition ends in the one object. query(sql) runs sql
    on b's metadata store (meta: its URL, or None for the data dir's
    SQLite)."""
    where = ["--data", b.data_dir] + (["--meta", meta] if meta else [])
    topic, want, batches0, bytes0, rows0, partial = kill_between_chunks(b, query, where, meta)
    keys = store_keys(b)
    # The next pass: the rows left (all but the first transaction's 4)
    # go into the partly live object, in transactions of 4 as before.
    out = run("compact", *where, "--merge-swap-rows", "4", topic).stdout
    m, r = COMPACT_RE.search(out), RESUMED_RE.search(out)
    assert m and r, out
    assert int(m.group(3)) == rows0 - 4 and int(m.group(6)) == 0, out
    assert (int(r.group(1)), int(r.group(2))) == (rows0 - 4, 1), out
    assert int(m.group(9)) == 0 and int(m.group(10)) == (rows0 - 4 + 3) // 4, out
    assert store_keys(b) == keys
    assert inspect(b, topic, 0, meta) == (batches0, bytes0, 1)
    assert query(LIVE_OFF) == []
    assert query("SELECT live_bytes FROM objects WHERE key = '%s'" % partial[0]) == [
        (str(bytes0) if meta else bytes0,)]
    assert snapshot(b, topic, 1) == want
    # Nothing left for a third pass.
    out = run("compact", *where, topic).stdout
    m, r = COMPACT_RE.search(out), RESUMED_RE.search(out)
    assert (int(m.group(3)), int(r.group(1))) == (0, 0), out
    b.restart()
    assert snapshot(b, topic, 1) == want


def test_kill9_between_swap_chunks(broker_factory):
    b = broker_factory()
    kill9_between_swap_chunks(b, lambda sql: meta_query(b, sql))


def killed_partial(b, query, where):
    """kill_between_chunks on the file store, and where the partly live
    object's live rows end in it."""
    got = kill_between_chunks(b, query, where)
    (end,), = query("SELECT max(b.byte_offset + b.length) FROM batches AS b JOIN objects AS o"
                    " ON o.oid = b.oid WHERE o.key = '%s'" % got[-1][0])
    return got + (int(end),)


def test_resume_checks_bytes(broker_factory):
    """A resume swaps a row into the partly live object only when the
    object's bytes for it are the row's: with a byte of the second row
    left changed in the object (as a bad disk would), the first row left
    is swapped into it, the rest merged into a new object, and every
    offset still reads the same."""
    b = broker_factory()
    where = ["--data", b.data_dir]
    query = lambda sql: meta_query(b, sql)  # noqa: E731
    topic, want, batches0, bytes0, rows0, partial, end = killed_partial(b, query, where)
    (first_len,), = query("SELECT b.length FROM batches AS b JOIN objects AS o ON o.oid = b.oid"
                          " WHERE o.key NOT LIKE '%%-ffffffff%%' ORDER BY b.base_offset LIMIT 1")
    path = os.path.join(b.data_dir, "objects", partial[0])
    with open(path, "r+b") as f:
        f.seek(end + first_len + 30)
        c = f.read(1)
        f.seek(end + first_len + 30)
        f.write(bytes([c[0] ^ 0xff]))
    out = run("compact", *where, "--merge-swap-rows", "4", topic).stdout
    m, r = COMPACT_RE.search(out), RESUMED_RE.search(out)
    assert m and r, out
    assert (int(r.group(1)), int(r.group(2))) == (1, 1), out
    assert int(m.group(3)) == rows0 - 4 and int(m.group(6)) == 1, out
    assert inspect(b, topic, 0) == (batches0, bytes0, 2)
    assert query(LIVE_OFF) == []
    assert snapshot(b, topic, 1) == want


def test_resume_damaged_tail(broker_factory):
    """A partly live object damaged past its live rows (cut back to them,
    as a bad disk or a half-restored backup would leave it) is not
    resumed and does not fail the pass: the rows left are merged into a
    new object, and every offset still reads the same."""
    b = broker_factory()
    where = ["--data", b.data_dir]
    query = lambda sql: meta_query(b, sql)  # noqa: E731
    topic, want, batches0, bytes0, rows0, partial, end = killed_partial(b, query, where)
    os.truncate(os.path.join(b.data_dir, "objects", partial[0]), int(end))
    r = run("compact", *where, "--merge-swap-rows", "4", topic)
    m, resumed = COMPACT_RE.search(r.stdout), RESUMED_RE.search(r.stdout)
    assert m and resumed and resumed.group(1) == "0", r.stdout
    assert int(m.group(3)) == rows0 - 4 and int(m.group(6)) == 1, r.stdout
    assert "to resume it" in r.stderr, r.stderr
    assert inspect(b, topic, 0) == (batches0, bytes0, 2)
    assert query(LIVE_OFF) == []
    assert snapshot(b, topic, 1) == want


def test_resume_whatever_min_age(broker_factory):
    """The rows a partly live object holds were sealed before it was
    made, whatever minimum age the pass that made it had: left by an
    interrupted `sluice compact` (minimum age 0), they are swapped into it
    by a pass whose minimum age they do not have yet (the agent's 10
    minutes), not left unmerged or merged into another object."""
    b = broker_factory()
    where = ["--data", b.data_dir]
    query = lambda sql: meta_query(b, sql)  # noqa: E731
    topic, want, batches0, bytes0, rows0, partial = kill_between_chunks(b, query, where)
    out = run("compact", *where, "--merge-swap-rows", "4", "--merge-min-age-ms", "600000",
              topic).stdout
    m, r = COMPACT_RE.search(out), RESUMED_RE.search(out)
    assert m and r, out
    assert (int(r.group(1)), int(r.group(2))) == (rows0 - 4, 1), out
    assert int(m.group(6)) == 0, out
    assert inspect(b, topic, 0) == (batches0, bytes0, 1)
    assert query(LIVE_OFF) == []
    assert snapshot(b, topic, 1) == want


def test_resume_across_pages(broker_factory):
    """A partly live object's rows left span several of the pass's row
    pages (SLUICE_MERGE_PAGE_ROWS, hidden, makes a page 3 batches): each
    page goes on where the last left the object, which counts once, and
    the partition ends in that one object."""
    b = broker_factory()
    where = ["--data", b.data_dir]
    query = lambda sql: meta_query(b, sql)  # noqa: E731
    topic, want, batches0, bytes0, rows0, partial = kill_between_chunks(b, query, where)
    r = subprocess.run([SLUICE_BIN, "compact"] + where + ["--merge-swap-rows", "4", topic],
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, SLUICE_MERGE_PAGE_ROWS="3"))
    assert r.returncode == 0, r
    m, resumed = COMPACT_RE.search(r.stdout), RESUMED_RE.search(r.stdout)
    assert m and resumed, r.stdout
    assert (int(resumed.group(1)), int(resumed.group(2))) == (rows0 - 4, 1), r.stdout
    assert int(m.group(6)) == 0, r.stdout
    assert inspect(b, topic, 0) == (batches0, bytes0, 1)
    assert query(LIVE_OFF) == []
    assert snapshot(b, topic, 1) == want


def test_kill9_between_swap_chunks_postgres(broker_factory, pg):  # noqa: F811
    url = pg.db_url(pg.new_db())
    b = broker_factory(["--meta", url])
    db = url.rsplit("/", 1)[1]
    kill9_between_swap_chunks(
        b, lambda sql: [tuple(line.split("|")) for line in pg.psql(sql, db).splitlines()],
        url)


def logged(agent, pattern, timeout=10):
    """Waits for the agent to log pattern: a pass logs once it has ended,
    which can be after its swaps already show in the store."""
    deadline = time.monotonic() + timeout
    while not re.search(pattern, log_text(agent)):
        assert time.monotonic() < deadline, "%s did not log %r within %d s" % (
            agent, pattern, timeout)
        time.sleep(0.1)


def test_agent_merge_job(broker_factory):
    b = broker_factory(["--merge-interval-ms", "300", "--merge-min-age-ms", "20000"])
    topic = util.topic_name("merge-job")
    util.create_topic(b.bootstrap, topic, partitions=2)
    produce_rounds(b, topic, 20, 40, seed=5)
    want = snapshot(b, topic, 2)
    before = {p: inspect(b, topic, p) for p in range(2)}
    assert all(v[2] >= 2 for v in before.values()), before
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        # Reads go on while the job merges: never an error, never a change.
        assert snapshot(b, topic, 2) == want
        now = {p: inspect(b, topic, p) for p in range(2)}
        # Passes merge what has aged since the last; merged objects are
        # not merged again, so a partition ends in a few.
        if all(now[p][2] < before[p][2] for p in range(2)):
            break
        time.sleep(0.3)
    assert all(now[p][2] < before[p][2] for p in range(2)), (before, now)
    assert all(now[p][:2] == before[p][:2] for p in range(2))
    assert snapshot(b, topic, 2) == want
    # The pass logs once it has ended, after its swaps are already seen.
    logged(b, r"merge: \d+ rows from \d+ objects into \d+ merged objects")


PASS_RE = re.compile(r"merge: \d+ rows from \d+ objects into (\d+) merged objects \((\d+) bytes\)"
                     r", 0 refused; \d+ swap transactions, the longest [\d.]+ ms;"
                     r" the pass took (\d+) ms")


def test_agent_merge_paced(broker_factory):
    """--maintenance-io-bytes-per-sec bounds the merge job's writes: every
    merged object but the last is written out at the rate before the next
    starts, so a pass takes at least their bytes over it; reads stay the
    same. A drain does not wait for the bound: the put under way ends at
    full speed."""
    target, rate = 16384, 16384
    b = broker_factory(["--merge-interval-ms", "0"])
    topic = util.topic_name("merge-paced")
    util.create_topic(b.bootstrap, topic, partitions=2)
    produce_rounds(b, topic, 20, 40, seed=9)
    want = snapshot(b, topic, 2)
    b.extra_args = ["--merge-interval-ms", "300", "--merge-min-age-ms", "0",
                    "--merge-target-bytes", str(target),
                    "--maintenance-io-bytes-per-sec", str(rate)]
    b.restart()
    logged(b, PASS_RE.pattern, timeout=120)
    merged, nbytes, took = map(int, PASS_RE.search(log_text(b)).groups())
    # ~40 KB per partition in runs of at most 16 KiB of batches.
    assert merged >= 4 and nbytes > 3 * target, (merged, nbytes)
    assert took >= 0.95 * 1000 * (nbytes - target) / rate, (merged, nbytes, took)
    assert snapshot(b, topic, 2) == want

    # More small objects, then a pass at 1 KiB/s (its first object is
    # written at once, the next one would wait ~16 s): SIGTERM ends it
    # in time, and nothing is lost.
    b.extra_args = ["--merge-interval-ms", "0"]
    b.restart()
    produce_rounds(b, topic, 20, 40, seed=10)
    want = snapshot(b, topic, 2)
    before = sum(inspect(b, topic, p)[2] for p in range(2))
    b.extra_args = ["--merge-interval-ms", "300", "--merge-min-age-ms", "0",
                    "--merge-target-bytes", str(target),
                    "--maintenance-io-bytes-per-sec", "1024"]
    b.restart()
    deadline = time.monotonic() + 60
    while sum(inspect(b, topic, p)[2] for p in range(2)) >= before:
        assert time.monotonic() < deadline, "no merged object within 60 s"
        time.sleep(0.1)
    t0 = time.monotonic()
    b.stop()
    assert time.monotonic() - t0 < 10
    b.start()
    assert snapshot(b, topic, 2) == want


def test_cluster_one_agent_merges(pg, tmp_path):  # noqa: F811
    gen = start_agents(pg, tmp_path, ["--merge-interval-ms", "300",
                                      "--merge-min-age-ms", "8000"])
    agents = next(gen)
    try:
        three_agents(agents)
        a = agents[0]
        meta = a.extra_args[a.extra_args.index("--meta") + 1]
        topic = util.topic_name("merge-cluster")
        util.create_topic(a.bootstrap, topic, partitions=2)
        produce_rounds(a, topic, 15, 40, seed=3)
        want = snapshot(a, topic, 2)
        before = {p: inspect(a, topic, p, meta) for p in range(2)}
        assert all(v[2] >= 2 for v in before.values()), before
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = {p: inspect(a, topic, p, meta) for p in range(2)}
            if all(now[p][2] < before[p][2] for p in range(2)):
                break
            time.sleep(0.5)
        assert all(now[p][2] < before[p][2] for p in range(2)), (before, now)
        assert all(now[p][:2] == before[p][:2] for p in range(2))
        holder = holders(agents, "job/merge")
        assert len(holder) == 1
        logged(holder[0], r"merge: \d+ rows from")
        merged = [x for x in agents if re.search(r"merge: \d+ rows from", log_text(x))]
        assert merged == holder, "only the holder merges: %s" % merged
        for x in agents:
            assert snapshot(x, topic, 2) == want
    finally:
        gen.close()


AGENT_PASS_RE = re.compile(r"merge: \d+ rows from \d+ objects into (\d+) merged objects .*"
                           r" partly merged objects; (\d+) store reads")


def agent_passes(b, count=4):
    """(merged objects, store reads) of the agent's first count merge
    passes (it logs each at debug level)."""
    deadline = time.monotonic() + 60
    while len(AGENT_PASS_RE.findall(log_text(b))) < count:
        assert time.monotonic() < deadline, "%d merge passes did not log within 60 s" % count
        time.sleep(0.1)
    return [(int(merged), int(reads)) for merged, reads in AGENT_PASS_RE.findall(log_text(b))]


def test_agent_whole_object_read_once(broker_factory):
    """A complete merged object followed by an old row the merge left
    (it did not fit the target: one row is no run) is read once to find
    it whole (its trailer), not on every pass of the agent's merge job:
    the job remembers it, so the passes after make no store read."""
    b = broker_factory(["--merge-interval-ms", "0"])
    topic = util.topic_name("merge-once")
    util.create_topic(b.bootstrap, topic, partitions=1)
    # 60 small rows, then a bigger one: enough footer entries in the
    # merged object that the row after it could fit there by size.
    produce_rounds(b, topic, 60, 1, seed=21)
    big = util.make_messages(1, value_size=(600, 600), seed=22)
    util.ck_produce(b.bootstrap, topic, big, **{"linger.ms": 0})
    want = snapshot(b, topic, 1)
    batches0, bytes0, objects0 = inspect(b, topic, 0)
    target = bytes0 - 1
    out = run("compact", "--data", b.data_dir, "--merge-target-bytes", str(target), topic).stdout
    m = COMPACT_RE.search(out)
    assert m and int(m.group(6)) == 1, out
    assert inspect(b, topic, 0) == (batches0, bytes0, 2)
    b.extra_args = ["--merge-interval-ms", "200", "--merge-min-age-ms", "0",
                    "--merge-target-bytes", str(target), "--log-level", "debug"]
    b.restart()
    passes = agent_passes(b)
    assert passes[0] == (0, 1), passes
    assert all(p == (0, 0) for p in passes[1:]), passes
    assert inspect(b, topic, 0) == (batches0, bytes0, 2)
    assert snapshot(b, topic, 1) == want


def test_agent_unresumable_read_once(broker_factory):
    """A partly live object whose copy of the next row differs from the
    row's bytes (as a bad disk would leave it) holds nothing for that
    row: the agent's merge job reads its trailer, footer and the bytes up
    to the difference once, and the passes after (the rows too young to
    merge anew) make no store read."""
    b = broker_factory(["--merge-interval-ms", "0"])
    where = ["--data", b.data_dir]
    query = lambda sql: meta_query(b, sql)  # noqa: E731
    topic, want, batches0, bytes0, rows0, partial, end = killed_partial(b, query, where)
    objects0 = inspect(b, topic, 0)[2]
    with open(os.path.join(b.data_dir, "objects", partial[0]), "r+b") as f:
        f.seek(end + 30)
        c = f.read(1)
        f.seek(end + 30)
        f.write(bytes([c[0] ^ 0xff]))
    b.extra_args = ["--merge-interval-ms", "200", "--merge-min-age-ms", "600000",
                    "--log-level", "debug"]
    b.restart()
    passes = agent_passes(b)
    # The trailer, the footer, the object's copy and the row's own bytes.
    assert passes[0] == (0, 4), passes
    assert all(p == (0, 0) for p in passes[1:]), passes
    assert inspect(b, topic, 0) == (batches0, bytes0, objects0)
    assert snapshot(b, topic, 1) == want


def test_agent_many_partitions_read_once(broker_factory):
    """Each partition keeps its own memo: with more partitions holding a
    complete merged object followed by an old row it could not take than
    the memo's first table has slots (SLUICE_MERGE_MEMO_ENTRIES shrinks
    it), every one is read once (its trailer) by the job's first pass,
    and the passes after make no store read."""
    parts = 6
    b = broker_factory(["--merge-interval-ms", "0"])
    topic = util.topic_name("merge-many")
    util.create_topic(b.bootstrap, topic, partitions=parts)
    # Per partition as in test_agent_whole_object_read_once: 40 small
    # rows (a round each), then a bigger one, the same sizes in every
    # partition.
    msgs = (util.make_messages(40, keys=10, value_size=(32, 32), seed=23)
            + util.make_messages(1, keys=10, value_size=(600, 600), seed=24))
    producer = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 0, "acks": "all"})
    for m in msgs:
        for p in range(parts):
            producer.produce(topic, m.value, m.key, partition=p, timestamp=m.timestamp,
                             headers=m.headers)
        assert producer.flush(30) == 0
    want = snapshot(b, topic, parts)
    before = [inspect(b, topic, p) for p in range(parts)]
    target = min(v[1] for v in before) - 1
    out = run("compact", "--data", b.data_dir, "--merge-target-bytes", str(target), topic).stdout
    merged = COMPACT_RE.findall(out)
    assert len(merged) == parts and all(int(m[5]) == 1 for m in merged), out
    after = [inspect(b, topic, p) for p in range(parts)]
    assert after == [v[:2] + (2,) for v in before], (before, after)
    b.extra_args = ["--merge-interval-ms", "200", "--merge-min-age-ms", "0",
                    "--merge-target-bytes", str(target), "--log-level", "debug"]
    b.env = {"SLUICE_MERGE_MEMO_ENTRIES": "4"}
    b.restart()
    passes = agent_passes(b)
    assert passes[0] == (0, parts), passes
    assert all(p == (0, 0) for p in passes[1:]), passes
    assert [inspect(b, topic, p) for p in range(parts)] == after
    assert snapshot(b, topic, parts) == want
