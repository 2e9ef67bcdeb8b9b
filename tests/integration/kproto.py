"""kproto.py — a tiny hand-written Kafka wire codec for the raw-socket tests.

Owns just enough of the protocol to talk to a broker without a client
library: request header v1 framing, CRC-32C, record batch (magic 2)
building, and the few requests the tests send by hand (ApiVersions v0,
Metadata v1, Produce v3 and v8, IncrementalAlterConfigs v0, DeleteRecords v0-2,
Fetch v7-v13 at either isolation level, ListOffsets v1-v5)
with their response decoders; flexible versions (compact strings and
arrays, tagged fields, request header v2) only as far as DeleteRecords v2
needs them. Everything is big-endian as on the wire.
"""
import socket
import struct
import time

API_PRODUCE = 0
API_METADATA = 3
API_DELETE_RECORDS = 21
API_API_VERSIONS = 18
API_INCREMENTAL_ALTER_CONFIGS = 44

# --- CRC-32C (Castagnoli), table driven -------------------------------------

_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    tbl = _CRC_TABLE
    for b in data:
        crc = tbl[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283

# --- primitive encoders -----------------------------------------------------


def i8(v):
    return struct.pack(">b", v)


def i16(v):
    return struct.pack(">h", v)


def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def string(s):
    if s is None:
        return i16(-1)
    b = s.encode() if isinstance(s, str) else s
    return i16(len(b)) + b


def bytes_(b):
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def array(items, count=None):
    items = list(items)
    return i32(len(items) if count is None else count) + b"".join(items)


def uvarint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def varint(v):
    return uvarint((v << 1) ^ (v >> 63))  # zigzag


# --- record batches ---------------------------------------------------------


def record(offset_delta, ts_delta, key, value, headers=()):
    body = i8(0) + varint(ts_delta) + varint(offset_delta)
    body += varint(-1) if key is None else varint(len(key)) + key
    body += varint(-1) if value is None else varint(len(value)) + value
    body += varint(len(headers))
    for hk, hv in headers:
        hk = hk.encode()
        body += varint(len(hk)) + hk
        body += varint(-1) if hv is None else varint(len(hv)) + hv
    return varint(len(body)) + body


def record_batch(records, base_ts=None, corrupt_crc=False, ts_deltas=None,
                 producer_id=-1, producer_epoch=-1, base_sequence=-1, attributes=0):
    """records: list of (key, value, headers). Returns one magic-2 batch
    (uncompressed, base offset 0, no producer id unless given); ts_deltas
    gives each record's timestamp delta (default 0); base_ts -1 means no
    timestamps; attributes 0x10 makes it transactional."""
    if base_ts is None:
        base_ts = int(time.time() * 1000)
    deltas = ts_deltas or [0] * len(records)
    recs = b"".join(record(i, deltas[i], k, v, h) for i, (k, v, h) in
                    enumerate(records))
    max_ts = base_ts + max(deltas) if base_ts >= 0 else -1
    after_crc = (i16(attributes) + i32(len(records) - 1) + i64(base_ts) + i64(max_ts)
                 + i64(producer_id) + i16(producer_epoch) + i32(base_sequence)
                 + i32(len(records)) + recs)
    crc = crc32c(after_crc)
    if corrupt_crc:
        crc ^= 0xDEADBEEF
    # batchLength counts everything after itself.
    length = 4 + 1 + 4 + len(after_crc)
    return (i64(0) + i32(length) + i32(-1) + i8(2) + struct.pack(">I", crc)
            + after_crc)


# --- framing ----------------------------------------------------------------


def request(api_key, api_version, correlation_id, body, client_id="sluice-it"):
    """A size-prefixed request with header v1 (non-flexible versions)."""
    hdr = i16(api_key) + i16(api_version) + i32(correlation_id) + \
        string(client_id)
    payload = hdr + body
    return i32(len(payload)) + payload


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed after %d of %d bytes"
                                  % (len(buf), n))
        buf += chunk
    return bytes(buf)


def recv_response(sock):
    """Reads one size-prefixed response; returns (correlation_id, body) for a
    response header v0."""
    (size,) = struct.unpack(">i", recv_exact(sock, 4))
    assert 4 <= size < 64 * 1024 * 1024, "bad response size %d" % size
    data = recv_exact(sock, size)
    return struct.unpack(">i", data[:4])[0], data[4:]


def connect(bootstrap, timeout=10.0):
    host, port = bootstrap.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(timeout)
    return s


def roundtrip(sock, api_key, api_version, body, correlation_id=7):
    sock.sendall(request(api_key, api_version, correlation_id, body))
    cid, resp = recv_response(sock)
    assert cid == correlation_id, "correlation id %d, expected %d" % (
        cid, correlation_id)
    return resp


def closed_by_peer(sock, timeout=5.0, strict=True):
    """True when the broker closes the connection (EOF or reset) within
    timeout without sending anything; raises if it sends bytes (returns
    False instead when not strict)."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(65536)
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
    if data:
        if not strict:
            return False
        raise AssertionError("expected the connection to be closed, got %d "
                             "bytes: %r" % (len(data), data[:64]))
    return True


# --- a reader for responses -------------------------------------------------


class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        assert self.pos + n <= len(self.data), "response truncated"
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def i8(self):
        return struct.unpack(">b", self.take(1))[0]

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def string(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def array(self, fn):
        n = self.i32()
        return None if n < 0 else [fn() for _ in range(n)]

    def done(self):
        return self.pos == len(self.data)

    def uv(self):
        """An unsigned varint."""
        shift = v = 0
        while True:
            b = self.take(1)[0]
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return v

    def varint(self):
        """A zigzag varint (record fields)."""
        v = self.uv()
        return (v >> 1) ^ -(v & 1)


# --- requests and responses -------------------------------------------------


def api_versions_v0(sock, version=0, correlation_id=11):
    """Sends ApiVersions (any version, empty v0 body) and decodes the answer as
    v0: (error_code, {api_key: (min, max)}, trailing_bytes)."""
    sock.sendall(request(API_API_VERSIONS, version, correlation_id, b""))
    cid, body = recv_response(sock)
    assert cid == correlation_id
    r = Reader(body)
    err = r.i16()
    apis = {}
    for key, lo, hi in r.array(lambda: (r.i16(), r.i16(), r.i16())):
        apis[key] = (lo, hi)
    return err, apis, len(body) - r.pos


def metadata_v1(sock, topics=None, topic_count=None):
    """Metadata v1; topics None = all. Returns (brokers, {topic: (err,
    [partition ids])})."""
    brokers, out = metadata_v1_leaders(sock, topics, topic_count)
    return brokers, {t: (err, sorted(leaders)) for t, (err, leaders) in out.items()}


def metadata_v1_leaders(sock, topics=None, topic_count=None):
    """metadata_v1 with each partition's leader: (brokers, {topic: (err,
    {partition id: leader id})})."""
    if topics is None and topic_count is None:
        body = i32(-1)
    else:
        body = array([string(t) for t in (topics or [])], topic_count)
    r = Reader(roundtrip(sock, API_METADATA, 1, body))
    brokers = r.array(lambda: (r.i32(), r.string(), r.i32(), r.string()))
    r.i32()  # controller id
    out = {}

    def partition():
        err, pid, leader = r.i16(), r.i32(), r.i32()
        r.array(r.i32)
        r.array(r.i32)
        return (pid, leader)

    def topic():
        err, name = r.i16(), r.string()
        r.i8()
        out[name] = (err, dict(r.array(partition)))

    r.array(topic)
    assert r.done(), "trailing bytes in Metadata v1 response"
    return brokers, out


def _produce(sock, version, topic_parts, acks, timeout_ms, part_fields,
             transactional_id=None):
    """Sends a Produce of topic_parts ({topic: {partition: records}}) at
    version (3-8, not flexible); part_fields(reader) reads what follows a
    partition's index. Returns {(topic, partition): part_fields(...)}."""
    topics = []
    for t, parts in topic_parts.items():
        topics.append(string(t) + array(
            i32(p) + bytes_(recs) for p, recs in parts.items()))
    body = string(transactional_id) + i16(acks) + i32(timeout_ms) + array(topics)
    r = Reader(roundtrip(sock, API_PRODUCE, version, body))
    out = {}

    def topic():
        t = r.string()
        r.array(lambda: out.__setitem__((t, r.i32()), part_fields(r)))

    r.array(topic)
    r.i32()  # throttle
    assert r.done(), "trailing bytes in Produce v%d response" % version
    return out


def produce_v3(sock, topic_parts, acks=-1, timeout_ms=10000, transactional_id=None, version=3):
    """topic_parts: {topic: {partition: records_bytes}}. Returns
    {(topic, partition): (error_code, base_offset)}; version 3-8."""
    def fields(r):
        err, base = r.i16(), r.i64()
        r.i64()  # log append time
        if version >= 5:
            r.i64()  # log start
        if version >= 8:
            r.array(lambda: (r.i32(), r.string()))
            r.string()
        return err, base
    return _produce(sock, version, topic_parts, acks, timeout_ms, fields, transactional_id)


def produce_v8(sock, topic_parts, acks=-1, timeout_ms=10000):
    """As produce_v3, at v8 (the first version with record errors).
    Returns {(topic, partition): (error_code, base_offset,
    log_start_offset, [(batch_index, message)], error_message)}."""
    def fields(r):
        err, base = r.i16(), r.i64()
        r.i64()  # log append time
        start = r.i64()
        errs = r.array(lambda: (r.i32(), r.string()))
        return err, base, start, errs, r.string()
    return _produce(sock, 8, topic_parts, acks, timeout_ms, fields)


OP_SET, OP_DELETE, OP_APPEND, OP_SUBTRACT = 0, 1, 2, 3
RESOURCE_TOPIC = 2


def incremental_alter_configs_v0(sock, topic, ops, validate_only=False):
    """ops: list of (name, op, value). Returns (error_code, message)."""
    cfgs = array(string(n) + i8(op) + string(v) for n, op, v in ops)
    res = i8(RESOURCE_TOPIC) + string(topic) + cfgs
    body = array([res]) + i8(1 if validate_only else 0)
    r = Reader(roundtrip(sock, API_INCREMENTAL_ALTER_CONFIGS, 0, body))
    r.i32()  # throttle
    res = r.array(lambda: (r.i16(), r.string(), r.i8(), r.string()))
    assert r.done(), "trailing bytes in IncrementalAlterConfigs v0 response"
    assert len(res) == 1 and res[0][3] == topic, res
    return res[0][0], res[0][1]


def incremental_alter_configs_many_v0(sock, resources, validate_only=False):
    """resources: list of (resource_type, name, ops), ops as above. Returns
    one (error_code, message, resource_type, name) per resource, in order."""
    def res(rtype, name, ops):
        return i8(rtype) + string(name) + array(
            string(n) + i8(op) + string(v) for n, op, v in ops)
    body = array(res(*x) for x in resources) + i8(1 if validate_only else 0)
    r = Reader(roundtrip(sock, API_INCREMENTAL_ALTER_CONFIGS, 0, body))
    r.i32()  # throttle
    out = r.array(lambda: (r.i16(), r.string(), r.i8(), r.string()))
    assert r.done(), "trailing bytes in IncrementalAlterConfigs v0 response"
    return out


# --- flexible versions (DeleteRecords v2) -----------------------------------


def compact_string(s):
    b = s.encode()
    return uvarint(len(b) + 1) + b


def compact_array(items):
    items = list(items)
    return uvarint(len(items) + 1) + b"".join(items)


NO_TAGS = b"\x00"


def request_v2(api_key, api_version, correlation_id, body, client_id="sluice-it"):
    """A size-prefixed request with header v2 (flexible versions)."""
    hdr = i16(api_key) + i16(api_version) + i32(correlation_id) + \
        string(client_id) + NO_TAGS
    payload = hdr + body
    return i32(len(payload)) + payload


class FlexReader(Reader):
    """Reader with the flexible versions' compact forms (tagged fields
    are skipped)."""

    def uvarint(self):
        return self.uv()

    def cstring(self):
        n = self.uvarint() - 1
        return None if n < 0 else self.take(n).decode()

    def carray(self, fn):
        n = self.uvarint() - 1
        return None if n < 0 else [fn() for _ in range(n)]

    def tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())


def delete_records(sock, topic_parts, version=1, timeout_ms=10000):
    """DeleteRecords v0-2; topic_parts: {topic: {partition: offset}}.
    Returns {(topic, partition): (error_code, low_watermark)}."""
    flexible = version >= 2
    arr = compact_array if flexible else array
    st = compact_string if flexible else string
    tag = NO_TAGS if flexible else b""
    body = arr(st(t) + arr(i32(p) + i64(off) + tag for p, off in parts.items()) + tag
               for t, parts in topic_parts.items()) + i32(timeout_ms) + tag
    if flexible:
        sock.sendall(request_v2(API_DELETE_RECORDS, version, 21, body))
    else:
        sock.sendall(request(API_DELETE_RECORDS, version, 21, body))
    cid, data = recv_response(sock)
    assert cid == 21
    r = FlexReader(data)
    if flexible:
        assert r.take(1) == NO_TAGS  # response header v1: tagged fields
    uv = r.uvarint

    def rstring():
        return r.take(uv() - 1).decode() if flexible else r.string()

    def rarray(fn):
        return [fn() for _ in range(uv() - 1)] if flexible else r.array(fn)

    def rtags():
        if flexible:
            assert uv() == 0

    out = {}
    r.i32()  # throttle

    def partition(name):
        p, low, err = r.i32(), r.i64(), r.i16()
        rtags()
        out[(name, p)] = (err, low)

    def topic():
        name = rstring()
        rarray(lambda: partition(name))
        rtags()

    rarray(topic)
    rtags()
    assert r.done(), "trailing bytes in DeleteRecords response"
    return out


# --- Fetch v7-v13 with sessions (KIP-227), Metadata v10 for topic ids -------

API_FETCH = 1


def fetch_body(version, session_id, epoch, topics, forgotten=(), max_wait_ms=0,
               min_bytes=0, max_bytes=64 * 1024 * 1024, isolation=0):
    """A Fetch v7-v13 body. topics: [(topic, [(partition, fetch_offset,
    partition_max_bytes)])], the topic a name (v < 13) or a 16-byte id;
    forgotten: [(topic, [partitions])]; isolation 1 is read_committed."""
    assert 7 <= version <= 13
    flex = version >= 12
    arr = compact_array if flex else array
    tag = NO_TAGS if flex else b""

    def topic_field(t):
        if version >= 13:
            assert isinstance(t, bytes) and len(t) == 16
            return t
        return compact_string(t) if flex else string(t)

    def part(p, off, pmax):
        out = i32(p)
        if version >= 9:
            out += i32(-1)  # current leader epoch
        out += i64(off)
        if version >= 12:
            out += i32(-1)  # last fetched epoch
        return out + i64(-1) + i32(pmax) + tag

    body = (i32(-1) + i32(max_wait_ms) + i32(min_bytes) + i32(max_bytes) + i8(isolation) +
            i32(session_id) + i32(epoch))
    body += arr(topic_field(t) + arr(part(*p) for p in parts) + tag for t, parts in topics)
    body += arr(topic_field(t) + arr(i32(p) for p in parts) + tag for t, parts in forgotten)
    if version >= 11:
        body += compact_string("") if flex else string("")
    return body + tag


def parse_fetch(version, data):
    """{"error", "session_id", "parts": [(topic, partition, error, high
    watermark, log start, records)], "stable": [(last stable offset,
    aborted transactions: [(producer id, first offset)] or None)]} in
    response order ("stable" beside "parts"); topic is the name or (v13+)
    the id."""
    flex = version >= 12
    r = FlexReader(data)
    if flex:
        r.tags()  # response header v1
    out = {"throttle": r.i32(), "error": r.i16(), "session_id": r.i32(), "parts": [],
           "stable": []}
    arr = r.carray if flex else r.array

    def partition(t):
        p, err, hw, lso, ls = r.i32(), r.i16(), r.i64(), r.i64(), r.i64()
        aborted = arr(lambda: (r.i64(), r.i64(), r.tags() if flex else None)[:2])
        if version >= 11:
            r.i32()  # preferred read replica
        n = r.uvarint() - 1 if flex else r.i32()
        rec = None if n < 0 else r.take(n)
        if flex:
            r.tags()
        out["parts"].append((t, p, err, hw, ls, rec))
        out["stable"].append((lso, aborted))

    def topic():
        t = r.take(16) if version >= 13 else (r.cstring() if flex else r.string())
        arr(lambda: partition(t))
        if flex:
            r.tags()

    arr(topic)
    if flex:
        r.tags()
    assert r.done(), "trailing bytes in Fetch v%d response" % version
    return out


def fetch(sock, version, session_id, epoch, topics, forgotten=(), correlation_id=9, **kw):
    """One Fetch round trip; returns (parse_fetch result, request bytes,
    response bytes) — the sizes on the wire, frames included."""
    body = fetch_body(version, session_id, epoch, topics, forgotten, **kw)
    frame = (request_v2 if version >= 12 else request)(API_FETCH, version, correlation_id, body)
    sock.sendall(frame)
    cid, data = recv_response(sock)
    assert cid == correlation_id
    return parse_fetch(version, data), len(frame), len(data) + 4


def topic_ids(sock, topics):
    """{name: 16-byte topic id} from Metadata v10."""
    body = compact_array(b"\x00" * 16 + compact_string(t) + NO_TAGS for t in topics)
    # no auto-creation, no cluster or topic authorized operations
    body += b"\x00" + b"\x00" + b"\x00" + NO_TAGS
    sock.sendall(request_v2(API_METADATA, 10, 31, body))
    cid, data = recv_response(sock)
    assert cid == 31
    r = FlexReader(data)
    r.tags()
    r.i32()  # throttle
    r.carray(lambda: (r.i32(), r.cstring(), r.i32(), r.cstring(), r.tags()))
    r.cstring()  # cluster id
    r.i32()  # controller
    out = {}

    def partition():
        r.i16(), r.i32(), r.i32(), r.i32()
        r.carray(r.i32), r.carray(r.i32), r.carray(r.i32)
        r.tags()

    def topic():
        r.i16()
        name = r.cstring()
        tid = r.take(16)
        r.i8()
        r.carray(partition)
        r.i32()
        r.tags()
        out[name] = tid

    r.carray(topic)
    r.i32()
    r.tags()
    return out


def find_coordinator_v1(sock, key, key_type):
    """FindCoordinator v1 (key type 0 group, 1 transaction): (error, node
    id, host, port)."""
    r = Reader(roundtrip(sock, 10, 1, string(key) + i8(key_type)))
    r.i32()  # throttle
    err = r.i16()
    r.string()  # error message
    return err, r.i32(), r.string(), r.i32()


def init_producer_id_v1(sock, txn_id):
    """InitProducerId v1 for a transactional id: (error, producer id,
    epoch)."""
    r = Reader(roundtrip(sock, 22, 1, string(txn_id) + i32(60000)))
    r.i32()  # throttle
    return r.i16(), r.i64(), r.i16()


def add_partitions_to_txn_v1(sock, txn_id, pid, epoch, topic_parts):
    """{(topic, partition): error} of AddPartitionsToTxn v1 (a client's)."""
    body = (string(txn_id) + i64(pid) + i16(epoch) + array(
        string(t) + array(i32(p) for p in parts)
        for t, parts in topic_parts.items()))
    r = Reader(roundtrip(sock, 24, 1, body))
    r.i32()  # throttle
    out = {}

    def topic():
        t = r.string()
        r.array(lambda: out.__setitem__((t, r.i32()), r.i16()))
    r.array(topic)
    assert r.done(), "trailing bytes"
    return out


API_LIST_OFFSETS = 2


def list_offsets(sock, version, topic_parts, isolation=0, correlation_id=13):
    """ListOffsets v1-v5 (not flexible): topic_parts {topic: [(partition,
    timestamp)]}; isolation 1 is READ_COMMITTED (v2+). Returns {(topic,
    partition): (error, timestamp, offset)}."""
    assert 1 <= version <= 5
    body = i32(-1)
    if version >= 2:
        body += i8(isolation)

    def part(p, ts):
        return i32(p) + (i32(-1) if version >= 4 else b"") + i64(ts)

    body += array(string(t) + array(part(p, ts) for p, ts in parts)
                  for t, parts in topic_parts.items())
    sock.sendall(request(API_LIST_OFFSETS, version, correlation_id, body))
    cid, data = recv_response(sock)
    assert cid == correlation_id
    r = Reader(data)
    if version >= 2:
        r.i32()  # throttle
    out = {}

    def partition(t):
        p, err, ts, off = r.i32(), r.i16(), r.i64(), r.i64()
        if version >= 4:
            r.i32()  # leader epoch
        out[(t, p)] = (err, ts, off)

    def topic():
        t = r.string()
        r.array(lambda: partition(t))

    r.array(topic)
    assert r.done(), "trailing bytes in ListOffsets v%d response" % version
    return out


API_DESCRIBE_CLUSTER = 60


def describe_cluster(sock, version=1, endpoint_type=1, include_ops=False, correlation_id=61):
    """DescribeCluster v0-1 (KIP-919's endpoint_type from v1). Returns a
    dict: error_code, error_message, endpoint_type (None at v0),
    cluster_id, controller_id, brokers [(id, host, port, rack)],
    cluster_operations."""
    body = i8(1 if include_ops else 0)
    if version >= 1:
        body += i8(endpoint_type)
    sock.sendall(request_v2(API_DESCRIBE_CLUSTER, version, correlation_id, body + NO_TAGS))
    cid, data = recv_response(sock)
    assert cid == correlation_id
    r = FlexReader(data)
    r.tags()
    r.i32()  # throttle
    out = {"error_code": r.i16(), "error_message": r.cstring(), "endpoint_type": None}
    if version >= 1:
        out["endpoint_type"] = r.i8()
    out["cluster_id"] = r.cstring()
    out["controller_id"] = r.i32()

    def broker():
        b = (r.i32(), r.cstring(), r.i32(), r.cstring())
        r.tags()
        return b
    out["brokers"] = r.carray(broker)
    out["cluster_operations"] = r.i32()
    r.tags()
    assert r.done()
    return out
