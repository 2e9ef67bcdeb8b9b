"""wire.py — a TCP proxy in front of an agent that records, for every
Fetch of the run's topic that passes through it, the offset each
partition was asked from and the first and last offsets it was answered
with: what the broker said, whatever a client library then did with it.

The agents advertise the proxies' ports (--advertise), so every client
connection, bootstrap or not, goes through one. Requests and responses
are forwarded unchanged; the proxy only reads along. Fetch v4-v11 (what
librdkafka 2.0 sends) is decoded; other versions and APIs pass through
unrecorded.
"""
import socket
import struct
import threading

import kproto
import rawlog

API_FETCH = 1


def _recv_frame(sock):
    head = kproto.recv_exact(sock, 4)
    (n,) = struct.unpack(">i", head)
    return head + kproto.recv_exact(sock, n)


def parse_fetch_request(frame):
    """(api_version, correlation id, client id, isolation level,
    [(topic, partition, fetch_offset)]) of a Fetch request frame, or None
    for anything else."""
    r = kproto.Reader(frame[4:])
    key, version, corr = r.i16(), r.i16(), r.i32()
    client = r.string()
    if key != API_FETCH or not 4 <= version <= 11:
        return None
    r.i32(), r.i32(), r.i32(), r.i32()   # replica, max wait, min, max bytes
    iso = r.i8()
    if version >= 7:
        r.i32(), r.i32()                 # session id, epoch
    asked = []

    def partition(topic):
        p = r.i32()
        if version >= 9:
            r.i32()                      # current leader epoch
        off = r.i64()
        if version >= 5:
            r.i64()                      # log start offset
        r.i32()                          # partition max bytes
        asked.append((topic, p, off))

    def topic():
        t = r.string()
        r.array(lambda: partition(t))
    r.array(topic)
    return version, corr, client, iso, asked


class Proxy:
    """Listens on a free loopback port and forwards to target; calls
    record(client, iso, partition, asked, answered_first, answered_last,
    high_watermark, error) for each partition of topic in each Fetch
    response (first/last None when no record came)."""

    def __init__(self, target_port, topic_of, record):
        self.target = ("127.0.0.1", target_port)
        self.topic_of = topic_of      # () -> the topic to record, or None
        self.record = record
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.closed = True
        self.lsock.close()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            try:
                s = socket.create_connection(self.target, 5)
                s.settimeout(None)
            except OSError:
                c.close()        # the agent is down: as if refused
                continue
            pending = {}
            lock = threading.Lock()
            threading.Thread(target=self._up, args=(c, s, pending, lock),
                             daemon=True).start()
            threading.Thread(target=self._down, args=(s, c, pending, lock),
                             daemon=True).start()

    @staticmethod
    def _close(*socks):
        for x in socks:
            try:
                x.close()
            except OSError:
                pass

    def _up(self, c, s, pending, lock):
        try:
            while True:
                frame = _recv_frame(c)
                req = parse_fetch_request(frame)
                if req is not None:
                    with lock:
                        pending[req[1]] = req
                s.sendall(frame)
        except (OSError, ConnectionError, struct.error):
            self._close(c, s)

    def _down(self, s, c, pending, lock):
        try:
            while True:
                frame = _recv_frame(s)
                (corr,) = struct.unpack(">i", frame[4:8])
                with lock:
                    req = pending.pop(corr, None)
                c.sendall(frame)
                if req is not None:
                    self._note(req, frame[8:])
        except (OSError, ConnectionError, struct.error):
            self._close(c, s)

    def _note(self, req, body):
        version, _, client, iso, asked = req
        topic = self.topic_of()
        want = {p: off for t, p, off in asked if t == topic}
        if not want:
            return
        try:
            res = kproto.parse_fetch(version, body)
        except Exception as e:   # noqa: BLE001 - say it, do not stop
            self.record(client, iso, None, None, None, None, None,
                        "unparsed response: %s" % e)
            return
        for t, p, err, hw, _ls, recs in res["parts"]:
            if t != topic or p not in want:
                continue
            first = last = None
            try:
                for b in rawlog.decode_batches(recs or b""):
                    offs = [o for o, _ in b["records"] if o >= want[p]]
                    if b["control"] and b["base"] >= want[p]:
                        offs.append(b["base"])
                    if offs:
                        first = min(offs) if first is None else first
                        last = max(offs)
            except (ValueError, struct.error, IndexError) as e:
                err = "undecoded: %s" % e
            self.record(client, iso, p, want[p], first, last, hw, err)
