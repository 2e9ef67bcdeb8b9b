"""test_compaction_chunks.py — a compacted partition longer than one
cleaning chunk (issue 15): the cleaner builds its offset map over the
whole dirty part, then cleans from the log start a chunk at a time, each
chunk swapped in offset order, the checkpoint raised by the last. A
hidden knob (SLUICE_COMPACTION_PASS_BYTES for the agent,
--compaction-memory-bytes for `sluice compact`) makes a chunk 256 KiB
instead of 128 MiB, so a topic whose latest values alone are several
chunks long is written in seconds.

The partition converges to the latest value of each key with the high
watermark unchanged, read by confluent-kafka from the start; readers
polling from the start while the chunks are swapped never see a key's
latest record missing, offsets going backwards, or an error. A `sluice
compact` killed with SIGKILL between chunks loses nothing, and the next
pass finishes.
"""
import re
import subprocess
import threading
import time
import urllib.request

import kproto
import util
from conftest import SLUICE_BIN
from test_compaction import CLEAN_CONFIG, COMPACT_RE, ck_read, inspect, latest, produce, run, \
    wait_for

CHUNK = 256 * 1024
KEYS = 3000
ROUNDS = 4
VALUE = 300


def write_rounds(b, topic, rounds, pad, tail):
    """KEYS keys written once per round of rounds (values of VALUE bytes,
    padded with pad), then a tail record (value tail) past segment.ms:
    (the records, their offsets)."""
    pairs, offsets = [], []
    for r in rounds:
        batch = [(b"key-%05d" % k, (b"r%d-%05d-" % (r, k)).ljust(VALUE, pad))
                 for k in range(KEYS)]
        offsets += produce(b.bootstrap, topic, batch)
        pairs += batch
    time.sleep(0.3)
    offsets += produce(b.bootstrap, topic, [(b"tail", tail)])
    pairs.append((b"tail", tail))
    return pairs, offsets


def fill(b, name, ratio):
    """KEYS keys written ROUNDS times (values of VALUE bytes: the latest
    values alone are ~4 chunks), then a tail record past segment.ms:
    (topic, every record, the latest of each key as ck_read gives them)."""
    topic = util.topic_name(name)
    util.create_topic(b.bootstrap, topic, 1, config=dict(CLEAN_CONFIG, **{
        "min.cleanable.dirty.ratio": ratio}))
    pairs, offsets = write_rounds(b, topic, range(ROUNDS), b"x", b"t")
    assert offsets == list(range(len(pairs)))
    want = sorted((o, k, v) for k, (o, v) in latest(pairs, offsets).items())
    assert sum(len(v) for _, _, v in want) > 3 * CHUNK
    return topic, pairs, want


def check_view(got, want, everything):
    """A read from the start during or after a pass: offsets ascending,
    every key's latest record there, nothing that was never written."""
    offs = [o for o, _, _ in got]
    assert offs == sorted(set(offs)), "offsets not ascending"
    have = set(got)
    missing = [w for w in want if w not in have]
    assert not missing, ("latest records missing", missing[:3], len(missing))
    assert have <= everything


def test_partition_longer_than_a_chunk(broker_factory):
    """The agent's cleaner, chunks of 256 KiB: the partition converges,
    in several cleaned objects, while readers poll it from the start."""
    b = broker_factory(["--compaction-check-interval-ms", "300", "--flush-bytes", "65536",
                        "--merge-interval-ms", "0"],
                       env={"SLUICE_COMPACTION_PASS_BYTES": str(CHUNK)})
    topic, pairs, want = fill(b, "chunks", "0.01")
    everything = set((o, k, v) for o, (k, v) in enumerate(pairs))
    hwm = len(pairs)
    errors, reads = [], [0]
    done = threading.Event()

    def reader():
        try:
            while not done.is_set():
                check_view(ck_read(b.bootstrap, topic), want, everything)
                reads[0] += 1
                time.sleep(0.1)
        except Exception as e:  # noqa: BLE001 (reported by the test)
            errors.append(e)

    t = threading.Thread(target=reader)
    t.start()
    try:
        wait_for(lambda: ck_read(b.bootstrap, topic) == want, 180, "the chunked passes")
    finally:
        done.set()
        t.join(60)
    assert not errors, errors[0]
    assert reads[0] >= 1
    assert util.high_watermarks(b.bootstrap, topic, 1) == [hwm]
    # Several chunks: each cleaned stretch is its own object, none over
    # a chunk by more than one row.
    batches, nbytes, objects = inspect(b, topic)
    assert objects >= 4, (batches, nbytes, objects)
    assert nbytes < sum(len(k) + len(v) for k, v in pairs) / 2
    b.restart()
    assert ck_read(b.bootstrap, topic) == want


def store_get_bytes(port):
    """The broker's object store bytes read so far (its /metrics)."""
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read().decode()
    m = re.search(r'^sluice_object_store_bytes_total\{operation="get"\} (\d+)$', body, re.M)
    assert m, body[:2000]
    return int(m.group(1))


def test_paused_pass_resumes(broker_factory):
    """A pass paused between chunks (SLUICE_COMPACTION_PAUSE_CHUNKS: after
    every chunk, as produce backpressure that never eases would) resumes
    at the next check where it stopped, offset map kept: it finishes, and
    reads the partition about twice (the scan, then the cleaning), not
    once more per pause. (Before, each check started the pass over: it
    never finished.)"""
    b = broker_factory(["--compaction-check-interval-ms", "86400000", "--flush-bytes", "65536",
                        "--merge-interval-ms", "0"])
    topic, pairs, want = fill(b, "chunks-paused", "0.01")
    stored = inspect(b, topic)[1]
    mport = util.free_port()
    b.extra_args = ["--compaction-check-interval-ms", "200", "--flush-bytes", "65536",
                    "--merge-interval-ms", "0", "--log-level", "debug",
                    "--metrics-listen", "127.0.0.1:%d" % mport]
    b.env = {"SLUICE_COMPACTION_PASS_BYTES": str(CHUNK), "SLUICE_COMPACTION_PAUSE_CHUNKS": "1"}
    b.restart()

    def finished():
        with open(b.stderr, "rb") as f:
            return re.search(rb"compaction: 1 partition\(s\) cleaned .*, 0 refused; the pass took",
                             f.read())
    wait_for(finished, 180, "the paused pass to finish")
    read = store_get_bytes(mport)
    with open(b.stderr, "rb") as f:
        pauses = f.read().count(b"the pass pauses (paused: SLUICE_COMPACTION_PAUSE_CHUNKS)")
    # Several chunks, each its own check.
    assert pauses >= 6, pauses
    assert read <= 2.1 * stored, (read, stored, pauses)
    assert ck_read(b.bootstrap, topic) == want
    assert util.high_watermarks(b.bootstrap, topic, 1) == [len(pairs)]

    # A topic config changed while a pass is paused: the pass starts over
    # (it cleaned with the old ones), and still converges. The new rounds
    # are written while segment.ms keeps them the active head, so the
    # pass that pauses is one that starts after they are all there.
    def log():
        with open(b.stderr, "rb") as f:
            return f.read()

    def alter(name, value):
        s = kproto.connect(b.bootstrap)
        try:
            err, msg = kproto.incremental_alter_configs_v0(s, topic, [(name, kproto.OP_SET, value)])
        finally:
            s.close()
        assert err == 0, msg
    alter("segment.ms", "3600000")
    more, offsets = write_rounds(b, topic, range(ROUNDS, ROUNDS + 2), b"y", b"t2")
    assert offsets == list(range(len(pairs), len(pairs) + len(more)))
    # The new tail is the active head (never cleaned, nor in the map):
    # the old one stays too.
    pairs += more
    offsets = list(range(len(pairs)))
    want = sorted((o, k, v) for k, (o, v) in latest(pairs[:-1], offsets).items())
    want.append((offsets[-1], b"tail", b"t2"))
    passes = len(re.findall(rb"0 refused; the pass took", log()))
    before = log().count(b"the pass pauses")
    alter("segment.ms", "100")
    wait_for(lambda: log().count(b"the pass pauses") > before, 60, "a pause of the next pass")
    alter("delete.retention.ms", "4000")
    wait_for(lambda: len(re.findall(rb"0 refused; the pass took", log())) > passes, 180,
             "the pass after the config change to finish")
    assert b"the paused pass starts over: the topic's configs changed" in log()
    assert ck_read(b.bootstrap, topic) == want
    assert util.high_watermarks(b.bootstrap, topic, 1) == [len(pairs)]


def test_kill9_between_chunks(broker_factory):
    """`sluice compact` in chunks of 256 KiB, killed with SIGKILL at
    several points of its pass: every read in between has each key's
    latest record, the next pass finishes, and a pass after it finds
    nothing dirty."""
    b = broker_factory(["--compaction-check-interval-ms", "86400000", "--flush-bytes", "65536",
                        "--merge-interval-ms", "0"])
    topic, pairs, want = fill(b, "chunks-kill", "0.99")
    everything = set((o, k, v) for o, (k, v) in enumerate(pairs))
    assert len(ck_read(b.bootstrap, topic)) == len(pairs)
    args = [SLUICE_BIN, "compact", "--data", b.data_dir, "--compaction-memory-bytes", str(CHUNK),
            topic]
    killed = 0
    for delay in (0.05, 0.15, 0.3, 0.5):
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            p.wait(delay)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            killed += 1
        b.restart()  # its batch index forgets the rows the pass replaced
        check_view(ck_read(b.bootstrap, topic), want, everything)
    assert killed >= 1
    out = run("compact", "--data", b.data_dir, "--compaction-memory-bytes", str(CHUNK),
              topic).stdout
    assert COMPACT_RE.search(out), out
    b.restart()
    assert ck_read(b.bootstrap, topic) == want
    assert util.high_watermarks(b.bootstrap, topic, 1) == [len(pairs)]
    assert inspect(b, topic)[2] >= 4
    out = run("compact", "--data", b.data_dir, "--compaction-memory-bytes", str(CHUNK),
              topic).stdout
    m = COMPACT_RE.search(out)
    assert m and int(m.group(3)) == 0, out
