"""test_compaction.py — the cleaner of compacted topics (issue 15) as
consumers see it.

200 keys x 100 updates, then tombstones for some keys, on a topic with
cleanup.policy=compact: after the agent's pass (--compaction-check-
interval-ms) confluent-kafka and kafka-python, reading from the start,
see only the latest value of each live key and the tombstones, at their
original offsets, with the high watermark unchanged (kafkajs reads them
to the end as well); once
delete.retention.ms has passed since that first cleaning, the next pass
(new dirty data makes it due, as in Kafka) drops the tombstones.
Consumers starting at random offsets while the cleaner runs under a
concurrent producer never see offsets go backwards nor a key's latest
record go missing. A `sluice compact` killed with SIGKILL loses nothing
and the next pass finishes; a forced pass cleans whatever the dirty
ratio, and a running agent on SQLite reads what it cleaned at its next
check. In a cluster only the holder of the job/compact lease cleans, and
when it is killed another agent takes the lease and cleans on. An
aborted transactional write goes and never takes the key's committed
value with it; confluent-kafka's transactional producer's committed
records are cleaned by key, a marker (COMMIT or ABORT) of a transaction
with nothing left goes after delete.retention.ms, an aborted transaction
with nothing left leaves the aborted index (the store's rows and the
agent's memory: Fetch's aborted list), and read_committed and
read_uncommitted consumers read the same latest values, read_committed
never an aborted one, also while the passes run.
"""
import json
import os
import random
import re
import subprocess
import threading
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

import kproto
import util
from cluster import pg, start_agents, three_agents  # noqa: F401 (pg: fixture)
from conftest import SLUICE_BIN
from test_cluster_leases import holders, log_text
from test_compacted import set_policy

JS_DIR = os.path.join(os.path.dirname(__file__), "js")

KEYS = 200
UPDATES = 100
DEAD = 20  # keys given a tombstone at the end
CLEAN_CONFIG = {"cleanup.policy": "compact", "segment.ms": "100",
                "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "3000"}
COMPACT_RE = re.compile(r"compact: (\S+)-(\d+): cleaned (\d+) rows \((\d+) records, (\d+) bytes\) "
                        r"into (\d+) records \((\d+) bytes\)")


def run(*args, check=True):
    r = subprocess.run([SLUICE_BIN] + list(args), capture_output=True, text=True, timeout=120)
    if check:
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


def produce(bootstrap, topic, pairs, partition=0, **conf):
    """pairs: [(key, value or None)] -> their offsets, in order."""
    c = {"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all",
         "batch.num.messages": 500}
    c.update(conf)
    p = Producer(c)
    offsets = [None] * len(pairs)
    errors = []

    def cb_for(i):
        def cb(err, m):
            if err is not None:
                errors.append(err)
            else:
                offsets[i] = m.offset()
        return cb

    for i, (k, v) in enumerate(pairs):
        while True:
            try:
                p.produce(topic, v, k, partition=partition, on_delivery=cb_for(i))
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    assert p.flush(30) == 0
    assert not errors, errors[:3]
    return offsets


def ck_read(bootstrap, topic, start=OFFSET_BEGINNING, partition=0, timeout=30,
            isolation="read_committed"):
    """Every record from start to the high watermark (the LSO for
    read_committed), with confluent-kafka: [(offset, key, value)]."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "g-" + util.topic_name("c"),
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "fetch.wait.max.ms": 50, "isolation.level": isolation})
    out = []
    try:
        c.assign([TopicPartition(topic, partition, start)])
        deadline = time.monotonic() + timeout
        while True:
            assert time.monotonic() < deadline, "no end of partition within %d s" % timeout
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == -191:  # _PARTITION_EOF
                    return out
                raise KafkaException(m.error())
            out.append((m.offset(), m.key(), m.value()))
    finally:
        c.close()


def kp_read(bootstrap, topic, partition=0, timeout=30):
    """The same with kafka-python, from the start to the high watermark."""
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KpTopicPartition
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                      api_version=(2, 0, 0), fetch_max_wait_ms=50)
    tp = KpTopicPartition(topic, partition)
    out = []
    try:
        c.assign([tp])
        c.seek_to_beginning(tp)
        end = c.end_offsets([tp])[tp]
        deadline = time.monotonic() + timeout
        while c.position(tp) < end:
            assert time.monotonic() < deadline, (c.position(tp), end)
            for recs in c.poll(timeout_ms=500).values():
                out.extend((r.offset, r.key, r.value) for r in recs)
    finally:
        c.close()
    return out


INSPECT_RE = re.compile(r"^(\d+) batches, (\d+) bytes in (\d+) objects$", re.M)


def inspect(b, topic):
    """`sluice inspect partition`'s counts of partition 0: (batches, bytes,
    objects)."""
    out = run("inspect", "partition", "--data", b.data_dir, topic, "0").stdout
    m = INSPECT_RE.search(out)
    assert m, out
    return tuple(int(x) for x in m.groups())


def latest(pairs, offsets):
    """key -> (offset, value) of its last write."""
    last = {}
    for (k, v), o in zip(pairs, offsets):
        last[k] = (o, v)
    return last


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.3)
    raise AssertionError("not within %d s: %s" % (timeout, what))


def updates(seed):
    rnd = random.Random(seed)
    pairs = []
    for u in range(UPDATES):
        keys = list(range(KEYS))
        rnd.shuffle(keys)
        pairs += [(b"key-%03d" % k, b"v%03d-%03d" % (k, u)) for k in keys]
    return pairs


def test_latest_per_key_then_tombstones_go(broker_factory):
    b = broker_factory(["--compaction-check-interval-ms", "300"])
    topic = util.topic_name("clean")
    util.create_topic(b.bootstrap, topic, 1, config=CLEAN_CONFIG)
    pairs = updates(1)
    # Idempotent: each producer's last batch stays, as an empty header
    # when it loses every record.
    offsets = produce(b.bootstrap, topic, pairs, **{"enable.idempotence": True})
    dead = [(b"key-%03d" % k, None) for k in range(0, KEYS, KEYS // DEAD)]
    offsets += produce(b.bootstrap, topic, dead, **{"enable.idempotence": True})
    pairs += dead
    # The active head: the last row and records of the last segment.ms
    # are never cleaned; one more record later ends the head.
    time.sleep(0.3)
    tail = [(b"tail", b"t0")]
    offsets += produce(b.bootstrap, topic, tail)
    pairs += tail
    hwm = len(pairs)
    assert offsets == list(range(hwm))
    last = latest(pairs, offsets)
    want = sorted((o, k, v) for k, (o, v) in last.items())
    assert len(want) == KEYS + 1
    # (The cleaner runs while this is produced: count the bytes produced.)
    produced = sum(len(k) + len(v or b"") for k, v in pairs)

    got = wait_for(lambda: (lambda r: r if len(r) == len(want) else None)(
        ck_read(b.bootstrap, topic)), 40, "a cleaning pass")
    # Only the latest value of each key, tombstones included (within
    # delete.retention.ms), at their offsets: offsets ascend with gaps.
    assert got == want
    assert util.high_watermarks(b.bootstrap, topic, 1) == [hwm]
    # Emptied batches are dropped into headers of no records: the
    # partition holds a fraction of its bytes.
    batches, bytes_after, objects = inspect(b, topic)
    assert bytes_after * 10 < produced, (bytes_after, produced)
    assert objects <= 3, objects
    assert kp_read(b.bootstrap, topic) == want
    # kafkajs reads past the emptied batches to the end too.
    r = subprocess.run(["node", os.path.join(JS_DIR, "group_consume.js"), b.bootstrap, topic,
                        "g-" + topic, str(len(want)), "1"],
                       capture_output=True, timeout=120, cwd=JS_DIR)
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    assert json.loads(r.stdout.decode().splitlines()[-1])["unique"] == len(want)
    # The pass logs once it has ended, after its swap is already read.
    wait_for(lambda: re.search(r"compaction: 1 partition\(s\) cleaned", log_text(b)), 10,
             "the pass's log line")

    # Past the tombstones' horizon, new dirty data makes the next pass due:
    # it drops them.
    time.sleep(3.2)
    more = [(b"key-%03d" % k, b"late-%03d" % k) for k in range(1, 11)]
    offsets2 = produce(b.bootstrap, topic, more)
    time.sleep(0.3)
    offsets2 += produce(b.bootstrap, topic, [(b"tail", b"t1")])
    pairs2 = pairs + more + [(b"tail", b"t1")]
    last = latest(pairs2, offsets + offsets2)
    want2 = sorted((o, k, v) for k, (o, v) in last.items() if v is not None)
    got = wait_for(lambda: (lambda r: r if len(r) == len(want2) + 1 else None)(
        ck_read(b.bootstrap, topic)), 40, "the tombstones' removal")
    # The previous tail record stays until it leaves the tail.
    assert [r for r in got if r[1] != b"tail"] == [r for r in want2 if r[1] != b"tail"]
    assert all(r[2] is not None for r in got)
    assert util.high_watermarks(b.bootstrap, topic, 1) == [len(pairs2)]
    assert kp_read(b.bootstrap, topic) == got
    # A restart reads the same (the batch index starts from the store).
    b.restart()
    assert ck_read(b.bootstrap, topic) == got


def test_policy_change_counts_next_pass(broker_factory):
    """A topic made compacted at runtime (IncrementalAlterConfigs) is
    cleaned by the next pass; made delete again, it is left alone."""
    b = broker_factory(["--compaction-check-interval-ms", "200"])
    topic = util.topic_name("clean-policy")
    config = dict(CLEAN_CONFIG)
    del config["cleanup.policy"]
    util.create_topic(b.bootstrap, topic, 1, config=config)
    pairs = updates(4)[:2000]
    offsets = produce(b.bootstrap, topic, pairs)
    time.sleep(0.3)
    offsets += produce(b.bootstrap, topic, [(b"tail", b"t")])
    pairs.append((b"tail", b"t"))
    time.sleep(1.0)  # passes run, none touches a delete topic
    assert len(ck_read(b.bootstrap, topic)) == len(pairs)

    set_policy(b.bootstrap, topic, "compact,delete")
    want = sorted((o, k, v) for k, (o, v) in latest(pairs, offsets).items())
    wait_for(lambda: ck_read(b.bootstrap, topic) == want, 30, "a pass after the change")
    set_policy(b.bootstrap, topic, "delete")
    more = [(b"key-%03d" % k, b"x") for k in range(50)]
    produce(b.bootstrap, topic, more)
    time.sleep(0.3)
    produce(b.bootstrap, topic, [(b"tail", b"t2")])
    time.sleep(1.0)
    assert len(ck_read(b.bootstrap, topic)) == len(want) + len(more) + 1


def test_random_offsets_under_produce(broker_factory):
    """Consumers start at random offsets while the cleaner runs and a
    producer writes: offsets only go up, and each key's latest record as of
    when a read started is still read (at or after its offset)."""
    b = broker_factory(["--compaction-check-interval-ms", "200"])
    topic = util.topic_name("clean-live")
    util.create_topic(b.bootstrap, topic, 1, config=CLEAN_CONFIG)
    stop = threading.Event()
    written = []  # (offset, key, value) acknowledged, in offset order
    lock = threading.Lock()
    errors = []

    def producer():
        rnd = random.Random(5)
        n = 0
        try:
            while not stop.is_set():
                pairs = [(b"key-%03d" % rnd.randrange(KEYS), b"w%06d" % (n + i))
                         for i in range(300)]
                n += len(pairs)
                offs = produce(b.bootstrap, topic, pairs, **{"linger.ms": 2})
                with lock:
                    written.extend((o, k, v) for (k, v), o in zip(pairs, offs))
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    t = threading.Thread(target=producer)
    t.start()
    rnd = random.Random(9)
    reads = 0
    try:
        time.sleep(0.5)
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            with lock:
                snap = sorted(written)
            if not snap:
                continue
            start = rnd.randrange(len(snap))
            got = ck_read(b.bootstrap, topic, start=start)
            reads += 1
            offs = [o for o, _, _ in got]
            assert offs == sorted(set(offs)), "offsets went backwards or repeated"
            assert not got or got[0][0] >= start
            # Every key's last write at or after start (as of the snapshot)
            # is read, or a later write of that key is.
            read_last = {}
            for o, k, v in got:
                read_last[k] = (o, v)
            snap_last = {}
            for o, k, v in snap:
                if o >= start:
                    snap_last[k] = (o, v)
            for k, (o, v) in snap_last.items():
                assert k in read_last and read_last[k][0] >= o, (k, o, read_last.get(k))
                if read_last[k][0] == o:
                    assert read_last[k][1] == v
    finally:
        stop.set()
        t.join(60)
    assert not errors, errors
    assert reads >= 3
    wait_for(lambda: re.search(r"compaction: \d+ partition\(s\) cleaned", log_text(b)), 10,
             "a pass's log line")


def updated_topic(b, name, ratio, seed, n):
    """A compacted topic of min.cleanable.dirty.ratio ratio holding the
    first n of updates(seed), then a tail record past segment.ms: (topic,
    pairs, the latest record of each key as ck_read gives them)."""
    topic = util.topic_name(name)
    util.create_topic(b.bootstrap, topic, 1, config=dict(CLEAN_CONFIG, **{
        "min.cleanable.dirty.ratio": ratio}))
    pairs = updates(seed)[:n]
    offsets = produce(b.bootstrap, topic, pairs)
    time.sleep(0.3)
    offsets += produce(b.bootstrap, topic, [(b"tail", b"t")])
    pairs.append((b"tail", b"t"))
    return topic, pairs, sorted((o, k, v) for k, (o, v) in latest(pairs, offsets).items())


def test_kill9_during_forced_pass(broker_factory):
    """`sluice compact` on a compacted topic forces a pass (the agent's
    cleaner idle: a day between checks); killed with SIGKILL it loses nothing, and the next pass
    cleans."""
    b = broker_factory(["--compaction-check-interval-ms", "86400000"])
    topic, pairs, want = updated_topic(b, "clean-kill", "0.99", 2, 8000)
    everything = ck_read(b.bootstrap, topic)
    assert len(everything) == len(pairs)
    for delay in (0.02, 0.1):
        p = subprocess.Popen([SLUICE_BIN, "compact", "--data", b.data_dir, topic],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            p.wait(delay)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        got = ck_read(b.bootstrap, topic)
        # Before the swap everything, after it the cleaned view: nothing
        # else, and never a key's latest record missing.
        assert got in (everything, want), len(got)
    out = run("compact", "--data", b.data_dir, topic).stdout
    m = COMPACT_RE.search(out)
    assert m, out
    b.restart()  # its batch index forgets the uncleaned rows
    assert ck_read(b.bootstrap, topic) == want
    assert kp_read(b.bootstrap, topic) == want
    assert util.high_watermarks(b.bootstrap, topic, 1) == [len(pairs)]
    # A second forced pass finds nothing dirty.
    out = run("compact", "--data", b.data_dir, topic).stdout
    m = COMPACT_RE.search(out)
    assert m and int(m.group(3)) == 0, out


def test_forced_pass_reaches_running_agent(broker_factory):
    """On SQLite (no change notices) a running agent learns of a `sluice
    compact` pass at its cleaner's next check, which sees the checkpoint
    move: its fetches then read the cleaned rows, without a restart. (Its
    own cleaner never cleans here: a dirty ratio above 1 never is.)"""
    b = broker_factory(["--compaction-check-interval-ms", "300"])
    topic, pairs, want = updated_topic(b, "clean-told", "1", 3, 2000)
    assert len(ck_read(b.bootstrap, topic)) == len(pairs)  # the batch index holds the rows
    time.sleep(0.7)  # the cleaner's checks see the partition uncleaned
    assert len(ck_read(b.bootstrap, topic)) == len(pairs)
    out = run("compact", "--data", b.data_dir, topic).stdout
    assert COMPACT_RE.search(out), out
    wait_for(lambda: ck_read(b.bootstrap, topic) == want, 10, "the agent to read the cleaned rows")
    assert util.high_watermarks(b.bootstrap, topic, 1) == [len(pairs)]


def test_cluster_one_agent_cleans(pg, tmp_path):  # noqa: F811
    gen = start_agents(pg, tmp_path, ["--compaction-check-interval-ms", "300"])
    agents = next(gen)
    try:
        three_agents(agents)
        a = agents[0]
        topic = util.topic_name("clean-cluster")
        util.create_topic(a.bootstrap, topic, 1, config=CLEAN_CONFIG)
        pairs = updates(3)[:6000]
        offsets = produce(a.bootstrap, topic, pairs)
        time.sleep(0.3)
        offsets += produce(a.bootstrap, topic, [(b"tail", b"t")])
        pairs.append((b"tail", b"t"))
        want = sorted((o, k, v) for k, (o, v) in latest(pairs, offsets).items())
        # (The partition's leader, which serves the reads, may be another
        # agent: its batch index drops the rows at the swap's notice.)
        holder = holders(agents, "job/compact")
        assert len(holder) == 1
        h = holder[0]
        wait_for(lambda: ck_read(h.bootstrap, topic) == want, 40, "a cleaning pass")
        # The pass logs once it has ended, after its swap is already read.
        passed = r"compaction: \d+ partition"
        wait_for(lambda: re.search(passed, log_text(h)), 10, "the holder's pass log line")
        cleaned = [x for x in agents if re.search(passed, log_text(x))]
        assert cleaned == holder, "only the holder cleans: %s" % cleaned
        # The holder killed: another takes the lease and cleans new data.
        h.kill9()
        rest = [x for x in agents if x is not h]
        more = [(b"key-%03d" % k, b"after-%03d" % k) for k in range(KEYS)]
        offs = produce(rest[0].bootstrap, topic, more)
        time.sleep(0.3)
        offs += produce(rest[0].bootstrap, topic, [(b"tail", b"t2")])
        pairs2 = pairs + more + [(b"tail", b"t2")]
        want2 = sorted((o, k, v) for k, (o, v) in latest(pairs2, offsets + offs).items())
        new = wait_for(lambda: holders(rest, "job/compact"), 20, "a new job/compact holder")
        assert len(new) == 1
        # The previous tail record stays until it leaves the tail.
        wait_for(lambda: [r for r in ck_read(new[0].bootstrap, topic) if r[1] != b"tail"]
                 == [r for r in want2 if r[1] != b"tail"], 40, "a pass on the new holder")
        wait_for(lambda: re.search(passed, log_text(new[0])), 10, "the new holder's pass log line")
        assert util.high_watermarks(new[0].bootstrap, topic, 1) == [len(pairs2)]
    finally:
        gen.close()


def test_aborted_transaction_never_removes_committed(tmp_path):
    """An aborted transactional write of a key goes with the cleaning and
    never makes the key's committed value before it go (Kafka leaves
    aborted records out of the offset map); plain updates are cleaned as
    usual. The transaction is driven through the coordinator's test double
    (test_txn_wire's sluice-txn-driver)."""
    import pytest
    from test_txn_wire import DRIVER_BIN, ONGOING, PID, PREPARE_ABORT, DriverBroker
    from test_txn_wire import fetch as txn_fetch
    from test_txn_wire import txn_batch, values
    if not os.access(DRIVER_BIN, os.X_OK):
        pytest.skip("%s not built" % DRIVER_BIN)
    d = DriverBroker(tmp_path / "data", ["--flush-interval-ms", "50",
                                         "--compaction-check-interval-ms", "200"])
    d.start()
    try:
        topic = util.create_topic(d.bootstrap, util.topic_name("clean-txn"), 1,
                                  config=CLEAN_CONFIG)
        part = ["%s:0" % topic]
        s = kproto.connect(d.bootstrap)
        kproto.produce_v3(s, {topic: {0: kproto.record_batch([(b"k", b"c1", [])])}})
        d.persist("tx", PID, 0, ONGOING, 1, part)
        res = kproto.produce_v3(s, {topic: {0: txn_batch(PID, 0, 0, [b"aborted"])}},
                                transactional_id="tx")
        assert res[(topic, 0)] == (0, 1), res
        d.persist("tx", PID, 0, PREPARE_ABORT, 1, part)
        assert d.markers("tx", PID, 0, 1, False, part) == "done 0"
        for v in (b"j1", b"j2"):
            kproto.produce_v3(s, {topic: {0: kproto.record_batch([(b"j", v, [])])}})
        time.sleep(0.3)
        kproto.produce_v3(s, {topic: {0: kproto.record_batch([(b"tail", b"t", [])])}})
        hwm = txn_fetch(s, topic, [(0, 0)], 0)[0][1]
        assert hwm == 6
        want = [b"c1", b"j2", b"t"]
        wait_for(lambda: values(txn_fetch(s, topic, [(0, 0)], 0)[0][4]) == want, 30,
                 "a pass")
        rc = txn_fetch(s, topic, [(0, 0)], 1)
        assert values(rc[0][4]) == want and rc[0][1] == hwm, rc
        s.close()
    finally:
        d.teardown()


def test_committed_transactions_and_markers(broker_factory):
    """Transactions written by confluent-kafka's transactional producer are
    cleaned as Kafka's LogCleaner cleans them: a committed transaction's
    superseded records go like any others, its COMMIT marker stays while a
    batch of the transaction is stored, then gets a delete horizon and
    goes after delete.retention.ms; an aborted transaction's records go,
    then its ABORT marker as a COMMIT marker does.
    read_committed and read_uncommitted consumers read the latest value of
    each key, never the aborted one, also the producer's transactions
    after the aborted one."""
    from test_transactions import txn_producer
    from test_txn_wire import fetch as txn_fetch
    b = broker_factory(["--compaction-check-interval-ms", "200"])
    topic = util.create_topic(b.bootstrap, util.topic_name("clean-txc"), 1,
                              config=dict(CLEAN_CONFIG, **{"delete.retention.ms": "1000"}))
    p = txn_producer(b.bootstrap, util.topic_name("tid"))

    def txn(pairs, commit=True):
        p.begin_transaction()
        for k, v in pairs:
            p.produce(topic, v, k, partition=0)
        p.flush(10)
        (p.commit_transaction if commit else p.abort_transaction)(30)

    def tail(v):
        time.sleep(0.3)  # past segment.ms: what came before leaves the head
        produce(b.bootstrap, topic, [(b"tail", v)])

    s = kproto.connect(b.bootstrap)

    def markers():
        """{base offset: attributes} of the control batches stored."""
        bs = txn_fetch(s, topic, [(0, 0)], 0)[0][4]
        return {base: attrs for base, attrs, _, _ in bs if attrs & 0x20}

    def records(isolation):
        return [(k, v) for _, k, v in ck_read(b.bootstrap, topic, isolation=isolation)]

    txn([(b"a", b"a1"), (b"b", b"b1")])  # 0-1, COMMIT at 2
    txn([(b"a", b"a2")])                  # 3, COMMIT at 4
    txn([(b"c", b"c1")], commit=False)   # 5, ABORT at 6
    txn([(b"b", b"b2")])                  # 7, COMMIT at 8
    tail(b"t0")
    assert sorted(markers()) == [2, 4, 6, 8]
    want = [(b"a", b"a2"), (b"b", b"b2"), (b"tail", b"t0")]
    # The first passes: a1 and b1 go with their batch, c1 with its
    # transaction. The markers of the other transactions stay; the first
    # and the aborted one's transactions have nothing left: their markers
    # get a delete horizon (attribute bit 6) from the pass that finds them
    # so, as a tombstone.
    wait_for(lambda: records("read_uncommitted") == want, 30, "the first pass")
    assert records("read_committed") == want
    wait_for(lambda: markers().get(2, 0x40) & 0x40, 30, "the lone marker's horizon")
    m = markers()
    assert all(m[o] & 0x40 == 0 for o in (4, 8)), m
    assert m[6] & 0x40, m

    # The same producer commits again after its aborted transaction
    # (read_committed must not take d1 as aborted).
    txn([(b"d", b"d1")])
    tail(b"t1")
    time.sleep(1.1)  # delete.retention.ms
    produce(b.bootstrap, topic, [(b"e", b"e1")])
    tail(b"t2")
    # A pass past the horizon drops those markers; the others stay.
    wait_for(lambda: 2 not in markers(), 30, "the lone marker's removal")
    m = markers()
    assert 4 in m and 8 in m and len(m) == 3, m  # and d1's COMMIT
    want = [(b"a", b"a2"), (b"b", b"b2"), (b"d", b"d1"), (b"e", b"e1"), (b"tail", b"t2")]
    for isolation in ("read_committed", "read_uncommitted"):
        got = [r for r in records(isolation) if r[0] != b"tail" or r[1] == b"t2"]
        assert got == want, (isolation, got)
    assert not any(v == b"c1" for _, v in records("read_uncommitted"))
    s.close()
    p.flush(5)


MARKERS_RE = re.compile(r"^(\d+) transaction markers, (\d+) aborted transactions$", re.M)


def test_aborted_transactions_leave_index_and_markers(broker_factory):
    """Aborted and committed transactions of two confluent-kafka
    transactional producers on a compacted topic: the pass that drops an
    aborted transaction's records keeps its ABORT marker and its aborted
    index row; the next finds nothing of the transaction left: the marker
    gets a first delete horizon, the row stays; the first pass past it
    deletes the row (`sluice inspect partition`, and the Fetch's aborted
    list, which the agent answers from memory) and gives the marker its
    second horizon; delete.retention.ms later a pass drops it.
    read_committed and
    read_uncommitted consumers from the start then read exactly the latest
    committed value of each key at its original offset, with the high
    watermark unchanged; a read_committed consumer reading over and over
    while the passes run never sees an aborted record."""
    from test_transactions import txn_producer
    from test_txn_wire import fetch as txn_fetch
    b = broker_factory(["--compaction-check-interval-ms", "200"])
    # Made compacted once everything is written (the passes would clean
    # between the transactions).
    config = dict(CLEAN_CONFIG, **{"delete.retention.ms": "1500"})
    del config["cleanup.policy"]
    topic = util.create_topic(b.bootstrap, util.topic_name("clean-abort"), 1, config=config)
    p1 = txn_producer(b.bootstrap, util.topic_name("tid1"))
    p2 = txn_producer(b.bootstrap, util.topic_name("tid2"))
    offsets = {}  # (key, value) -> offset

    def txn(p, pairs, commit=True):
        def cb(err, m):
            assert err is None, err
            offsets[(m.key(), m.value())] = m.offset()
        p.begin_transaction()
        for k, v in pairs:
            p.produce(topic, v, k, partition=0, on_delivery=cb)
        p.flush(10)
        (p.commit_transaction if commit else p.abort_transaction)(30)

    keys = [b"k%d" % i for i in range(10)]
    txn(p1, [(k, b"c1-" + k) for k in keys])
    txn(p1, [(k, b"ab1-" + k) for k in keys], commit=False)
    txn(p2, [(k, b"ab3-" + k) for k in keys], commit=False)
    txn(p1, [(k, b"c2-" + k) for k in keys[5:]])
    txn(p1, [(k, b"ab2-" + k) for k in keys[:5]], commit=False)
    txn(p2, [(keys[0], b"c3-k0")])
    # Each producer ends with a committed transaction: an aborted batch
    # that is its producer's last stays as an empty header (Kafka keeps
    # it for the producer's state), and so would its transaction.
    txn(p1, [(keys[9], b"c4-k9")])
    want = {k: b"c1-" + k for k in keys[1:5]}
    want.update({k: b"c2-" + k for k in keys[5:9]})
    want[keys[0]] = b"c3-k0"
    want[keys[9]] = b"c4-k9"
    s = kproto.connect(b.bootstrap)

    def markers():
        bs = txn_fetch(s, topic, [(0, 0)], 0)[0][4]
        return {base: attrs for base, attrs, _, _ in bs if attrs & 0x20}

    def aborted_listed():
        """The aborted list of a read_committed Fetch from 0."""
        return txn_fetch(s, topic, [(0, 0)], 1)[0][3] or []

    def inspect_txns():
        out = run("inspect", "partition", "--data", b.data_dir, topic, "0").stdout
        m = MARKERS_RE.search(out)
        assert m, out
        return int(m.group(1)), int(m.group(2)), out

    def tail(v):
        time.sleep(0.3)  # past segment.ms: what came before leaves the head
        produce(b.bootstrap, topic, [(b"tail", v)])

    tail(b"t0")
    assert len(markers()) == 7
    assert len(aborted_listed()) == 3  # and the agent's aborted index holds them
    assert inspect_txns()[:2] == (7, 3)

    seen_aborted = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            for _, k, v in ck_read(b.bootstrap, topic, isolation="read_committed"):
                if v.startswith(b"ab"):
                    seen_aborted.append((k, v))

    th = threading.Thread(target=reader)
    th.start()
    try:
        # The first pass drops the aborted records; the next (new dirty
        # data) finds their transactions empty: first horizons set, rows
        # kept; past them, the next deletes the rows (second horizons).
        set_policy(b.bootstrap, topic, "compact")
        wait_for(lambda: not any(v.startswith(b"ab") for _, _, v in
                                 ck_read(b.bootstrap, topic, isolation="read_uncommitted")),
                 30, "the aborted records' removal")
        assert inspect_txns()[:2] == (7, 3)  # each transaction's marker saw a batch
        tail(b"t1")
        wait_for(lambda: len([a for a in markers().values() if a & 0x40]) == 3, 30,
                 "the first horizons")
        assert inspect_txns()[:2] == (7, 3)
        assert len(aborted_listed()) == 3
        time.sleep(1.6)  # delete.retention.ms
        tail(b"t1b")
        wait_for(lambda: inspect_txns()[1] == 0, 30, "the aborted rows' removal")
        assert aborted_listed() == []
        m = markers()
        assert len(m) == 7, m  # the markers stay until their horizon
        horizons = [o for o, a in m.items() if a & 0x40]
        assert len(horizons) == 3, m
        time.sleep(1.6)  # delete.retention.ms
        tail(b"t2")
        wait_for(lambda: len(markers()) == 4, 30, "the ABORT markers' removal")
        assert not set(horizons) & set(markers())
    finally:
        stop.set()
        th.join(60)
    assert not seen_aborted, seen_aborted[:5]
    assert inspect_txns()[:2] == (4, 0)
    assert aborted_listed() == []
    hwm = util.high_watermarks(b.bootstrap, topic, 1)[0]
    for isolation in ("read_committed", "read_uncommitted"):
        got = [(o, k, v) for o, k, v in ck_read(b.bootstrap, topic, isolation=isolation)
               if k != b"tail"]
        assert got == sorted((offsets[(k, v)], k, v) for k, v in want.items()), (isolation, got)
    tails = [r for r in ck_read(b.bootstrap, topic) if r[1] == b"tail"]
    assert tails[-1][2] == b"t2" and tails[-1][0] == hwm - 1, (tails, hwm)
    s.close()
    p1.flush(5)
    p2.flush(5)


def test_stale_rows_still_list_aborted(broker_factory):
    """A read_committed fetch that serves bytes from before the pass that
    dropped an aborted transaction's records still lists the transaction,
    however soon the next pass comes. Here: two `sluice compact` passes in
    a row on SQLite, whose running agent learns of them only at its
    cleaner's next check (a day away), so its batch index still names the
    uncleaned objects, while its aborted index, empty after a restart,
    looks the aborted transactions up in the store. The second pass gives
    the ABORT marker its first horizon and keeps the transaction's row
    (it used to delete it: the agent then served the aborted records with
    no aborted transaction listed, and read_committed consumers read
    them)."""
    from test_transactions import txn_producer
    b = broker_factory(["--compaction-check-interval-ms", "86400000"])
    config = dict(CLEAN_CONFIG, **{"delete.retention.ms": "600000"})
    topic = util.create_topic(b.bootstrap, util.topic_name("clean-stale"), 1, config=config)
    p = txn_producer(b.bootstrap, util.topic_name("tid"))
    for v, commit in ((b"c1", True), (b"ab", False), (b"c2", True)):
        p.begin_transaction()
        for k in (b"k", b"j"):
            p.produce(topic, v + b"-" + k, k, partition=0)
        p.flush(10)
        (p.commit_transaction if commit else p.abort_transaction)(30)
    time.sleep(0.3)
    produce(b.bootstrap, topic, [(b"tail", b"t0")])
    p.flush(5)
    b.restart()  # the aborted index forgets what this agent's commits told it
    everything = ck_read(b.bootstrap, topic, isolation="read_uncommitted")  # the batch index
    assert [v for _, _, v in everything if v.startswith(b"ab")] == [b"ab-k", b"ab-j"]
    for i in range(2):
        if i:  # a pass needs dirty data
            produce(b.bootstrap, topic, [(b"k", b"c3-k")])
            time.sleep(0.3)
            produce(b.bootstrap, topic, [(b"tail", b"t1")])
        out = run("compact", "--data", b.data_dir, topic).stdout
        m = COMPACT_RE.search(out)
        assert m and int(m.group(3)) > 0, out
    got = ck_read(b.bootstrap, topic)
    assert not [v for _, _, v in got if v.startswith(b"ab")], got
    assert [v for _, _, v in got][-2:] == [b"c3-k", b"t1"], got
    m = MARKERS_RE.search(run("inspect", "partition", "--data", b.data_dir, topic, "0").stdout)
    assert m and int(m.group(2)) == 1, m  # the aborted transaction still listed


def test_cluster_aborted_index_told(pg, tmp_path):  # noqa: F811
    """In a cluster every agent serving read_committed fetches stops
    listing an aborted transaction the holder's pass emptied: the swap's
    notice drops the partition from their aborted indexes too (each was
    warmed by a read_committed fetch before)."""
    from test_transactions import txn_producer
    from test_txn_wire import fetch as txn_fetch
    gen = start_agents(pg, tmp_path, ["--compaction-check-interval-ms", "300"])
    agents = next(gen)
    try:
        three_agents(agents)
        a = agents[0]
        topic = util.topic_name("clean-abort-cluster")
        config = dict(CLEAN_CONFIG)
        del config["cleanup.policy"]
        util.create_topic(a.bootstrap, topic, 1, config=config)
        p = txn_producer(a.bootstrap, util.topic_name("tid"))
        for v, commit in ((b"c1", True), (b"ab", False), (b"c2", True)):
            p.begin_transaction()
            p.produce(topic, v, b"k", partition=0)
            p.flush(10)
            (p.commit_transaction if commit else p.abort_transaction)(30)
        time.sleep(0.3)
        produce(a.bootstrap, topic, [(b"tail", b"t0")])

        def listed():
            """{agent index: the aborted list of its read_committed Fetch
            from 0} of the agents that serve the partition."""
            out = {}
            for i, x in enumerate(agents):
                s = kproto.connect(x.bootstrap)
                try:
                    err, _, _, aborted, _ = txn_fetch(s, topic, [(0, 0)], 1)[0]
                finally:
                    s.close()
                if err == 0:
                    out[i] = aborted or []
            return out

        before = listed()
        assert len(before) > 1 and all(len(v) == 1 for v in before.values()), before
        set_policy(a.bootstrap, topic, "compact")
        # The first pass drops the aborted record, the next (new dirty
        # data) gives its marker a first horizon, the first one past it
        # (delete.retention.ms) deletes its transaction's row.
        wait_for(lambda: [v for _, _, v in ck_read(a.bootstrap, topic,
                                                   isolation="read_uncommitted")
                          if v != b"t0"] == [b"c2"], 40, "the first pass")
        time.sleep(0.3)
        produce(a.bootstrap, topic, [(b"tail", b"t1")])
        time.sleep(3.2)  # delete.retention.ms
        # The pass that deletes the transaction's row must start past the
        # horizon the earlier one gave its marker; on a loaded machine
        # that pass can run late, so its horizon too: new dirty data keeps
        # passes coming until the store has no row of it.
        meta_url = a.extra_args[a.extra_args.index("--meta") + 1]
        tails = [2]

        def row_deleted():
            out = run("inspect", "partition", "--meta", meta_url, topic, "0").stdout
            m = MARKERS_RE.search(out)
            assert m, out
            if int(m.group(2)) == 0:
                return True
            produce(a.bootstrap, topic, [(b"tail", b"t%d" % tails[0])])
            tails[0] += 1
            time.sleep(1)
            return False
        wait_for(row_deleted, 60, "the aborted transaction's row deleted from the store")
        # No pass after it: each agent empties its list by the swap's notice.
        last = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            last = listed()
            if all(v == [] for v in last.values()):
                break
            time.sleep(0.3)
        assert all(v == [] for v in last.values()), \
            ("every serving agent's aborted list emptied", last,
             [[ln for ln in log_text(x).splitlines() if "compact" in ln][-20:] for x in agents])
        assert set(listed()) == set(before)
        last_tail = b"t%d" % (tails[0] - 1)
        for isolation in ("read_committed", "read_uncommitted"):
            got = [(k, v) for _, k, v in ck_read(a.bootstrap, topic, isolation=isolation)]
            assert got[0] == (b"k", b"c2") and got[-1] == (b"tail", last_tail), (isolation, got)
            assert all(k == b"tail" for k, _ in got[1:]), (isolation, got)
        p.flush(5)
    finally:
        gen.close()


def test_idle_partition_not_planned(broker_factory):
    """A partition cleaned up to its tail row is left out of the planning
    (its rows not read each check) until its high watermark moves; then
    it is planned and cleaned again."""
    b = broker_factory(["--compaction-check-interval-ms", "200", "--log-level", "debug"])
    topic = util.create_topic(b.bootstrap, util.topic_name("clean-idle"), 1,
                              config=CLEAN_CONFIG)
    pairs = [(b"k%d" % (i % 10), b"v%d" % i) for i in range(100)]
    offsets = produce(b.bootstrap, topic, pairs)
    time.sleep(0.3)
    offsets += produce(b.bootstrap, topic, [(b"tail", b"t0")])
    pairs.append((b"tail", b"t0"))
    want = sorted((o, k, v) for k, (o, v) in latest(pairs, offsets).items())
    wait_for(lambda: ck_read(b.bootstrap, topic) == want, 30, "a pass")
    wait_for(lambda: "planning 0 partition(s), 1 idle left out" in log_text(b), 30,
             "the idle partition left out")
    more = [(b"k1", b"new")]
    offs = produce(b.bootstrap, topic, more)
    time.sleep(0.3)
    offs += produce(b.bootstrap, topic, [(b"tail", b"t1")])
    pairs2 = pairs + more + [(b"tail", b"t1")]
    want2 = sorted((o, k, v) for k, (o, v) in latest(pairs2, offsets + offs).items())
    # (t0 stays until the next pass: the tail row is never cleaned.)
    wait_for(lambda: [r for r in ck_read(b.bootstrap, topic) if r[1] != b"tail"]
             == [r for r in want2 if r[1] != b"tail"], 30, "a pass after the growth")
