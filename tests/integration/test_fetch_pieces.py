"""Fetch responses are written in pieces (encoded fields, then each
partition's records straight from the read cache's objects and the
fetch's buffer): the bytes on the wire are a whole, well-formed response;
clients that close their connection while a large response is still being
written (or before it is started, with more pipelined behind it) leave
the agent serving, with nothing freed twice or leaked (under ASan the
sanitizer report check of conftest catches that); and the cache evicting
objects that an unsent response points into changes none of its bytes;
batches that share one batch row (adjacent in one object) are still
handed out one by one: a fetch starts at the batch holding its offset and
stops at batch boundaries."""
import socket
import sqlite3
import struct
import time

import kproto
import util

PARTITIONS = 4
BATCHES = 8
RECORDS_PER_BATCH = 40
VALUE_BYTES = 3000


def fetch_v4_body(topic, offsets, max_bytes=64 * 1024 * 1024,
                  partition_max_bytes=16 * 1024 * 1024):
    parts = [kproto.i32(p) + kproto.i64(o) + kproto.i32(partition_max_bytes)
             for p, o in sorted(offsets.items())]
    t = kproto.string(topic) + kproto.array(parts)
    return (kproto.i32(-1) + kproto.i32(0) + kproto.i32(1) +
            kproto.i32(max_bytes) + kproto.i8(0) + kproto.array([t]))


def parse_fetch_v4(body):
    """{partition: (error, high watermark, records bytes or None)}."""
    pos = 0

    def take(n):
        nonlocal pos
        assert pos + n <= len(body), "truncated Fetch response"
        out = body[pos:pos + n]
        pos += n
        return out

    out = {}
    take(4)  # throttle
    (nt,) = struct.unpack(">i", take(4))
    for _ in range(nt):
        (tl,) = struct.unpack(">h", take(2))
        take(tl)
        (np,) = struct.unpack(">i", take(4))
        for _ in range(np):
            p, err, hw, _lso = struct.unpack(">ihqq", take(22))
            (na,) = struct.unpack(">i", take(4))
            for _ in range(max(na, 0)):
                take(16)
            (rl,) = struct.unpack(">i", take(4))
            out[p] = (err, hw, take(rl) if rl >= 0 else None)
    assert pos == len(body), "trailing bytes in Fetch response"
    return out


def batch_offsets(records):
    """(baseOffset, lastOffsetDelta) of each batch in records."""
    out, pos = [], 0
    while pos < len(records):
        base, length = struct.unpack(">qi", records[pos:pos + 12])
        (delta,) = struct.unpack(">i", records[pos + 23:pos + 27])
        out.append((base, delta))
        pos += 12 + length
    assert pos == len(records)
    return out


def test_fetch_pieces_whole_and_abandoned(broker_factory):
    broker = broker_factory()
    topic = util.create_topic(broker.bootstrap, util.topic_name("pieces"),
                              PARTITIONS)
    s = kproto.connect(broker.bootstrap)
    for b in range(BATCHES):
        recs = [(b"k%d" % i, bytes([b + i & 0xff]) * VALUE_BYTES, ())
                for i in range(RECORDS_PER_BATCH)]
        batch = kproto.record_batch(recs)
        res = kproto.produce_v3(s, {topic: {p: batch for p in range(PARTITIONS)}})
        assert all(res[(topic, p)][0] == 0 for p in range(PARTITIONS))
    s.close()
    end = BATCHES * RECORDS_PER_BATCH

    # Partition 0 from the start, 1 from the middle, 2 at the end (no
    # records), 3 past the end (an error, and empty records).
    offsets = {0: 0, 1: end // 2, 2: end, 3: end + 5}
    body = fetch_v4_body(topic, offsets)
    s = kproto.connect(broker.bootstrap)
    whole = parse_fetch_v4(kproto.roundtrip(s, 1, 4, body))
    s.close()
    assert whole[0][0] == 0 and whole[1][0] == 0 and whole[2][0] == 0
    assert whole[3][0] == 1  # OFFSET_OUT_OF_RANGE
    assert whole[2][2] == b"" and whole[3][2] == b""
    assert all(whole[p][1] == end for p in range(3))
    for p in (0, 1):
        got = batch_offsets(whole[p][2])
        first = offsets[p] - offsets[p] % RECORDS_PER_BATCH
        assert got == [(o, RECORDS_PER_BATCH - 1)
                       for o in range(first, end, RECORDS_PER_BATCH)]

    # Abandon large responses at every stage: not read at all, read in
    # part, with more fetches pipelined behind them.
    full = {p: 0 for p in range(PARTITIONS)}
    for i in range(30):
        c = socket.create_connection(("127.0.0.1", broker.port), 5)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        for k in range(1 + i % 3):
            c.sendall(kproto.request(1, 4, 100 + k, fetch_v4_body(topic, full)))
        if i % 2:
            try:
                c.recv(1 + i * 997)
            except OSError:
                pass
        if i % 5 == 0:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         struct.pack("ii", 1, 0))  # reset, not FIN
        c.close()

    # Still serving, the same bytes.
    s = kproto.connect(broker.bootstrap)
    again = parse_fetch_v4(kproto.roundtrip(s, 1, 4, body))
    s.close()
    assert again == whole


_variants = {}


def big_batch(p, r):
    """10 records of 3000 bytes for partition p, one of 3 variants (the
    batch CRC is computed in Python: slow enough to reuse them)."""
    key = (p, r % 3)
    if key not in _variants:
        _variants[key] = kproto.record_batch(
            [(b"r%d-%d" % (r % 3, i), bytes([(r % 3 * 7 + i + p) & 0xff]) * 3000, ())
             for i in range(10)])
    return _variants[key]


def produce_round(bootstrap, topic, r, big_parts, small_part, produced):
    """One Produce: a batch of 30 KB to each big partition, one small
    batch (under 1 KiB) to small_part; the batches are appended to
    produced[partition]."""
    s = kproto.connect(bootstrap)
    parts = {p: big_batch(p, r) for p in big_parts}
    parts[small_part] = kproto.record_batch([(b"s", b"x%d" % r, ())])
    res = kproto.produce_v3(s, {topic: parts})
    s.close()
    assert all(err == 0 for err, _ in res.values())
    for p, b in parts.items():
        produced.setdefault(p, []).append(b)


def as_fetched(batches):
    """The bytes a fetch returns for these batches from offset 0: each
    with its base offset and leader epoch 0 patched in (outside the CRC)."""
    out, nxt = bytearray(), 0
    for b in batches:
        (delta,) = struct.unpack(">i", b[23:27])
        out += struct.pack(">q", nxt) + b[8:12] + struct.pack(">i", 0) + b[16:]
        nxt += delta + 1
    return bytes(out)


def test_fetch_pieces_cache_evicted_in_flight(broker_factory):
    """Responses whose records point into cached objects stay intact when
    the cache evicts those objects before the response is sent: a small
    cache, a reader that does not read, then commits and read-ahead loads
    that evict everything it references. Every byte is compared with what
    was produced."""
    broker = broker_factory(extra_args=("--cache-bytes", str(512 << 10)))
    topic = util.create_topic(broker.bootstrap, util.topic_name("evict"), 5)
    big, small = (0, 1, 2, 3), 4
    produced = {}
    for r in range(8):
        produce_round(broker.bootstrap, topic, r, big, small, produced)
    expect = {p: as_fetched(b) for p, b in produced.items()}

    # A slow reader: its response (about 1 MB, from cached objects, the
    # store and copies of small batches) stays mostly unsent.
    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    slow.setsockopt(socket.IPPROTO_TCP, socket.TCP_WINDOW_CLAMP, 4096)
    slow.settimeout(10)
    slow.connect(("127.0.0.1", broker.port))
    body = fetch_v4_body(topic, {p: 0 for p in range(5)})
    slow.sendall(kproto.request(1, 4, 55, body))
    first = slow.recv(100)
    assert first

    # Evict: new commits put their objects in the cache, other readers
    # load ranges ahead, and fetches patch and reference them.
    for r in range(8, 20):
        produce_round(broker.bootstrap, topic, r, big, small, produced)
        s = kproto.connect(broker.bootstrap)
        parse_fetch_v4(kproto.roundtrip(
            s, 1, 4, fetch_v4_body(topic, {p: 0 for p in range(5)},
                                   partition_max_bytes=64 * 1024)))
        s.close()

    # Read it all now, with the window open again (a 4 KiB one makes
    # loopback TCP crawl at a delayed ACK per segment).
    slow.setsockopt(socket.IPPROTO_TCP, socket.TCP_WINDOW_CLAMP, 4 << 20)
    slow.settimeout(30)
    rest = bytearray(first)
    while len(rest) < 4 or len(rest) < 4 + struct.unpack(">i", rest[:4])[0]:
        chunk = slow.recv(1 << 20)
        assert chunk, "connection closed mid-response"
        rest += chunk
    slow.close()
    (size,) = struct.unpack(">i", rest[:4])
    assert len(rest) == 4 + size
    (cid,) = struct.unpack(">i", rest[4:8])
    assert cid == 55
    got = parse_fetch_v4(bytes(rest[8:]))
    for p in range(5):
        err, hw, recs = got[p]
        assert err == 0 and hw == 8 * (10 if p in big else 1)
        assert recs == expect[p], "partition %d differs" % p

    # A fresh response (from the store and the cache now) has them all.
    s = kproto.connect(broker.bootstrap)
    now = parse_fetch_v4(kproto.roundtrip(s, 1, 4, body))
    s.close()
    for p in range(5):
        assert now[p][0] == 0 and now[p][2] == as_fetched(produced[p])


def test_fetch_pieces_pinned_memory_bounded(broker_factory):
    """A client that stops reading cannot make unsent responses hold
    cached objects without bound: each small response (one 2 KiB batch)
    would otherwise keep its whole ~1 MB object alive after the cache
    evicted it. 300 such responses queue behind a large unread one; the
    agent's RSS must not grow by the 300 MB they would pin."""
    broker = broker_factory()
    topic = util.create_topic(broker.bootstrap, util.topic_name("pins"), 2)
    big = kproto.record_batch([(b"b%d" % i, bytes([i]) * 100000, ()) for i in range(10)])
    small = kproto.record_batch([(b"s", b"y" * 2000, ())])
    prod = kproto.connect(broker.bootstrap)

    def produce_round():
        # One object of ~1 MB: a small batch of partition 0 in it.
        res = kproto.produce_v3(prod, {topic: {0: small, 1: big}})
        assert all(err == 0 for err, _ in res.values())

    for _ in range(80):  # cache (64 MiB) and buffer pool full: the baseline
        produce_round()
    time.sleep(0.5)
    before = broker.rss_kb()

    # A reader with a small receive window that asks for 8 MiB of
    # partition 1 and never reads: everything after it stays queued.
    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    slow.connect(("127.0.0.1", broker.port))
    slow.sendall(kproto.request(1, 4, 1, fetch_v4_body(
        topic, {1: 0}, max_bytes=8 << 20, partition_max_bytes=8 << 20)))
    for r in range(80, 380):
        produce_round()
        # Partition 0's batch of round r sits in the object just cached.
        slow.sendall(kproto.request(1, 4, 2 + r, fetch_v4_body(
            topic, {0: r}, max_bytes=4096, partition_max_bytes=4096)))
    time.sleep(1.0)
    grown_mib = (broker.rss_kb() - before) / 1024
    assert broker.running()
    slow.close()
    prod.close()
    # The responses may keep up to 64 MiB of evicted objects (plus the
    # large response's own); 300 pinned objects would be ~300 MB.
    assert grown_mib < 160, "RSS grew by %.0f MiB" % grown_mib

    # Still serving, with the right bytes.
    s = kproto.connect(broker.bootstrap)
    got = parse_fetch_v4(kproto.roundtrip(s, 1, 4, fetch_v4_body(topic, {0: 379}, 4096, 4096)))
    s.close()
    assert got[0][0] == 0 and got[0][2][12 + 4 + 1:] == small[12 + 4 + 1:]


def test_batches_sharing_a_row(broker_factory):
    """Batches of one partition that land in one object share one batch
    row in the metadata store (issue 12): a fetch still starts at the
    batch that holds its offset and stops at batch boundaries, and a
    consumer reads every record once, in order."""
    broker = broker_factory(["--flush-interval-ms", "300"])
    topic = util.create_topic(broker.bootstrap, util.topic_name("rows"), 1)
    n, per = 10, 3
    s = kproto.connect(broker.bootstrap)
    # Pipelined in one write, so they are read in one turn and go into
    # one open object.
    frames = b""
    for b in range(n):
        batch = kproto.record_batch([(None, b"v%d-%d" % (b, i), ()) for i in range(per)])
        body = (kproto.string(None) + kproto.i16(-1) + kproto.i32(10000) +
                kproto.array([kproto.string(topic) + kproto.array(
                    [kproto.i32(0) + kproto.bytes_(batch)])]))
        frames += kproto.request(0, 3, 1000 + b, body)
    s.sendall(frames)
    for b in range(n):
        kproto.recv_response(s)
    s.close()
    db = sqlite3.connect("file:%s/meta.db?mode=ro" % broker.data_dir, uri=True)
    rows, objects = db.execute("SELECT count(*), count(DISTINCT oid) FROM batches").fetchone()
    db.close()
    # One row per object however many of the batches it holds (a row
    # per batch before).
    assert rows == objects and objects < n, (rows, objects)

    s = kproto.connect(broker.bootstrap)
    # From inside the 5th batch (offsets 12-14), one batch at most.
    got = parse_fetch_v4(kproto.roundtrip(s, 1, 4, fetch_v4_body(
        topic, {0: 14}, max_bytes=1, partition_max_bytes=1)))
    assert got[0][0] == 0 and got[0][1] == n * per
    assert batch_offsets(got[0][2]) == [(12, per - 1)]
    # From the start with room for two and a half batches: two.
    one = len(got[0][2])
    got = parse_fetch_v4(kproto.roundtrip(s, 1, 4, fetch_v4_body(
        topic, {0: 0}, partition_max_bytes=one * 5 // 2)))
    assert batch_offsets(got[0][2]) == [(0, per - 1), (3, per - 1)]
    s.close()
    msgs = util.consume_all(broker.bootstrap, topic, 1, n * per)[0]
    assert [m.value for m in msgs] == [b"v%d-%d" % (b, i) for b in range(n) for i in range(per)]
    assert [m.offset for m in msgs] == list(range(n * per))
