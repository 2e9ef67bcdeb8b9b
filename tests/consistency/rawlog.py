"""rawlog.py — reads a partition's whole log with Fetch at
read_uncommitted over a plain socket (tests/integration/kproto.py) and
decodes its record batches, control batches included: what confluent-kafka
hides (producer id and epoch, the transactional flag, COMMIT/ABORT
markers) and what the stale-marker check needs.

Only uncompressed batches are decoded (the workload's producers send
none); a compressed one is an error, not a silent gap.
"""
import struct

import kproto

FETCH_VERSION = 11
ATTR_COMPRESSION = 0x07
ATTR_TRANSACTIONAL = 0x10
ATTR_CONTROL = 0x20
CONTROL_TYPES = {0: "abort", 1: "commit"}


def _varint(data, pos):
    shift = v = 0
    while True:
        b = data[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return (v >> 1) ^ -(v & 1), pos


def _bytes(data, pos):
    n, pos = _varint(data, pos)
    if n < 0:
        return None, pos
    return data[pos:pos + n], pos + n


def decode_batches(records):
    """[{"base", "last", "pid", "epoch", "txnl", "control", "records":
    [[offset, value]]}] of a Fetch response's records; control is None,
    "commit" or "abort" (and records then empty). A partial batch at the
    end (cut by the size limit) is left out."""
    out, pos = [], 0
    while pos + 12 <= len(records):
        base, length = struct.unpack(">qi", records[pos:pos + 12])
        end = pos + 12 + length
        if end > len(records):
            break
        (attrs,) = struct.unpack(">h", records[pos + 21:pos + 23])
        (delta,) = struct.unpack(">i", records[pos + 23:pos + 27])
        pid, epoch, _seq, count = struct.unpack(">qhii",
                                                records[pos + 43:pos + 61])
        if attrs & ATTR_COMPRESSION:
            raise ValueError("compressed batch at offset %d: not decoded"
                             % base)
        b = {"base": base, "last": base + delta, "pid": pid, "epoch": epoch,
             "txnl": bool(attrs & ATTR_TRANSACTIONAL), "control": None,
             "records": []}
        rp = pos + 61
        for _ in range(count):
            rlen, rp = _varint(records, rp)
            rend = rp + rlen
            q = rp + 1                       # attributes
            _tsd, q = _varint(records, q)
            od, q = _varint(records, q)
            key, q = _bytes(records, q)
            value, q = _bytes(records, q)
            if attrs & ATTR_CONTROL:
                (_ver, ctype) = struct.unpack(">hh", key[:4])
                b["control"] = CONTROL_TYPES.get(ctype, "type-%d" % ctype)
            else:
                b["records"].append(
                    [base + od, None if value is None
                     else value.decode("utf-8", "replace")])
            rp = rend
        out.append(b)
        pos = end
    return out


def read_partition(bootstrap, topic, partition, timeout=10.0):
    """(high watermark, batches) of one partition from offset 0 to its
    high watermark."""
    batches = []
    offset = 0
    with kproto.connect(bootstrap, timeout) as s:
        hw = None
        while True:
            res, _, _ = kproto.fetch(s, FETCH_VERSION, 0, -1,
                                     [(topic, [(partition, offset,
                                                8 * 1024 * 1024)])])
            (_, _, err, part_hw, _ls, recs) = res["parts"][0]
            if err:
                raise RuntimeError("fetch %s/%d at %d: error %d" % (
                    topic, partition, offset, err))
            hw = part_hw if hw is None else hw
            got = decode_batches(recs or b"")
            if not got:
                if offset >= hw:
                    return hw, batches
                raise RuntimeError("fetch %s/%d at %d: nothing below the "
                                   "high watermark %d" % (topic, partition,
                                                          offset, hw))
            batches.extend(b for b in got if b["last"] >= offset)
            offset = got[-1]["last"] + 1
            if offset >= hw:
                return hw, batches
