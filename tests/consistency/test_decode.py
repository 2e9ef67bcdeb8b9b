"""test_decode.py — what the run reads off the wire: rawlog.py's batch
decoding (data and control batches, producer id and epoch, partial
batches, compression refused) and wire.py's Fetch request parsing."""
import os
import struct
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))
import kproto  # noqa: E402
import rawlog  # noqa: E402
import wire  # noqa: E402


def batch(base, values, pid=-1, epoch=-1, attrs=0, key=None):
    """A magic-2 batch at base (kproto.record_batch with its base offset,
    attributes, producer id and epoch patched in)."""
    b = bytearray(kproto.record_batch([(key, v, ()) for v in values]))
    b[0:8] = struct.pack(">q", base)
    b[21:23] = struct.pack(">h", attrs)
    b[43:53] = struct.pack(">qh", pid, epoch)
    return bytes(b)


def test_decode_data_and_control_batches():
    commit_key = struct.pack(">hh", 0, 1)
    abort_key = struct.pack(">hh", 0, 0)
    recs = (batch(10, [b"a", b"b"], pid=7, epoch=3, attrs=0x10) +
            batch(12, [b"\0\0\0\0\0\0"], pid=7, epoch=3, attrs=0x30,
                  key=commit_key) +
            batch(13, [b""], pid=8, epoch=0, attrs=0x30, key=abort_key) +
            batch(14, [b"c"]))
    got = rawlog.decode_batches(recs)
    assert [(b["base"], b["last"], b["pid"], b["epoch"], b["txnl"],
             b["control"], b["records"]) for b in got] == [
        (10, 11, 7, 3, True, None, [[10, "a"], [11, "b"]]),
        (12, 12, 7, 3, True, "commit", []),
        (13, 13, 8, 0, True, "abort", []),
        (14, 14, -1, -1, False, None, [[14, "c"]]),
    ]
    # A batch cut by the response's size limit is left out.
    assert len(rawlog.decode_batches(recs[:-5])) == 3
    with pytest.raises(ValueError):
        rawlog.decode_batches(batch(0, [b"x"], attrs=0x01))


@pytest.mark.parametrize("version", [7, 9, 11])
def test_parse_fetch_request(version):
    body = kproto.fetch_body(version, 0, -1, [("t1", [(0, 42, 1 << 20),
                                                      (3, 7, 1 << 20)]),
                                              ("t2", [(1, 5, 100)])])
    frame = kproto.request(kproto.API_FETCH, version, 99, body,
                           client_id="cc-rc0")
    assert wire.parse_fetch_request(frame) == (
        version, 99, "cc-rc0", 0, [("t1", 0, 42), ("t1", 3, 7), ("t2", 1, 5)])
    other = kproto.request(kproto.API_METADATA, 1, 5, b"\0\0\0\0")
    assert wire.parse_fetch_request(other) is None
