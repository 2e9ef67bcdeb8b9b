"""test_catchup.py — catch-up reads through the read cache's read-ahead:
after a restart (empty cache), consumers reading a backlog spread over
many objects get every message once, in order, byte for byte — with small
fetches (the budget runs out on every partition, so the read-ahead loads
ranges ahead and later fetches wait for loads in flight), with a cache so
small that most read-ahead is refused (or loaded and evicted before use)
and fetches read what they miss directly, and with no cache;
--file-page-cache-bytes decides whether the objects' pages stay in the
page cache, and the catch-up is whole either way."""
import ctypes
import os
import subprocess
import threading

import pytest

import util

PARTS = 8


def produce_backlog(bootstrap, topic, n, seed):
    msgs = util.make_messages(n, keys=4000, seed=seed, value_size=(200, 1200))
    # Small batches and the file store's 2 ms flush: many batches in many
    # objects, each object holding several partitions.
    util.ck_produce(bootstrap, topic, msgs, **{"batch.size": 16384})
    return msgs


def test_catchup_after_restart(broker_factory):
    b = broker_factory()
    topic = util.create_topic(b.bootstrap, util.topic_name("cu"), PARTS)
    msgs = produce_backlog(b.bootstrap, topic, 20000, 51)
    b.stop()
    b.start()
    small = {"max.partition.fetch.bytes": 65536, "fetch.max.bytes": 262144,
             "message.max.bytes": 262144}
    # Two consumers at once, one with small fetches: both read the same
    # ranges, loaded once and shared.
    results = {}

    def read(name, extra):
        try:
            results[name] = util.consume_all(b.bootstrap, topic, PARTS, timeout=120, **extra)
        except Exception as e:  # reported below, in the test's thread
            results[name] = e

    threads = [threading.Thread(target=read, args=("small", small)),
               threading.Thread(target=read, args=("default", {}))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name in ("small", "default"):
        assert not isinstance(results[name], Exception), (name, results[name])
        util.check_roundtrip(msgs, results[name])


def test_catchup_tiny_cache_and_no_cache(broker_factory):
    # 1 MiB of cache: ranges of at most 256 KiB, half of it in flight,
    # three quarters unread and in flight: most read-ahead is refused and
    # fetches read what they miss directly.
    for args in (["--cache-bytes", "1048576"], ["--cache-bytes", "0"]):
        b = broker_factory(args)
        topic = util.create_topic(b.bootstrap, util.topic_name("cut"), PARTS)
        msgs = produce_backlog(b.bootstrap, topic, 8000, 52)
        b.stop()
        b.start()
        got = util.consume_all(b.bootstrap, topic, PARTS, timeout=120,
                               **{"max.partition.fetch.bytes": 32768,
                                  "fetch.max.bytes": 131072,
                                  "message.max.bytes": 131072})
        util.check_roundtrip(msgs, got)
        b.stop()


def _cached_pages(path):
    """Pages of path in the page cache, by mincore of a mapping of it."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long)
    libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
    libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p)
    size = os.path.getsize(path)
    page = os.sysconf("SC_PAGE_SIZE")
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, 1, 1, fd, 0)  # PROT_READ, MAP_SHARED
        assert addr not in (None, ctypes.c_void_p(-1).value), ctypes.get_errno()
        vec = ctypes.create_string_buffer((size + page - 1) // page)
        assert libc.mincore(addr, size, vec) == 0, ctypes.get_errno()
        libc.munmap(addr, size)
    finally:
        os.close(fd)
    return sum(b & 1 for b in vec.raw)


def _drops_clean_pages(folder):
    """Whether this filesystem drops clean pages when advised (tmpfs does not)."""
    probe = os.path.join(folder, "probe")
    with open(probe, "wb") as f:
        f.write(b"x" * 65536)
        f.flush()
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    dropped = _cached_pages(probe) == 0
    os.unlink(probe)
    return dropped


def test_page_cache_window_flag(broker_factory, tmp_path):
    """--file-page-cache-bytes reaches the file store: with 0 no page of a
    produced object stays in the page cache, with the default (512 MiB) a
    small backlog's all do; a catch-up after a restart reads it whole
    either way. Out of range it is refused."""
    from conftest import SLUICE_BIN
    r = subprocess.run([SLUICE_BIN, "serve", "--file-page-cache-bytes", "-2"],
                       capture_output=True)
    assert r.returncode == 2
    assert b"bad value for --file-page-cache-bytes: -2" in r.stderr
    if not _drops_clean_pages(str(tmp_path)):
        pytest.skip("%s keeps clean pages whatever is advised" % tmp_path)
    for args, cached in (([], True), (["--file-page-cache-bytes", "0"], False)):
        b = broker_factory(args)
        topic = util.create_topic(b.bootstrap, util.topic_name("pcw"), PARTS)
        msgs = produce_backlog(b.bootstrap, topic, 4000, 53)
        # Acknowledged: every object durable, its pages dropped or kept.
        folder = os.path.join(b.data_dir, "objects")
        objs = [os.path.join(d, n) for d, _, names in os.walk(folder)
                for n in names if n.endswith(".obj")]
        assert objs
        for o in objs:
            pages = _cached_pages(o)
            assert (pages > 0) == cached, (args, o, pages)
        b.stop()
        b.start()
        util.check_roundtrip(msgs, util.consume_all(b.bootstrap, topic, PARTS, timeout=120))
        b.stop()
