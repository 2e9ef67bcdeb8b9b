"""ports.py — loopback ports for the servers the tests start (agents,
PostgreSQL, s3rver, Prometheus), picked so that nothing else takes them
between the pick and the server's bind.

Binding port 0 and closing the socket gives a port of the kernel's
ephemeral range that is free only at that instant: a test running beside
(ctest -j 2, other checkouts' tests on the same machine) can pick it too,
and every outgoing connection on the machine (clients, agents talking to
PostgreSQL, s3rver and each other) takes its local port from that same
range. A port in that range can also answer a connect with nothing
listening (TCP connects a socket to itself when the kernel happens to
give it that port as its local port), which a readiness poll takes for
the server.

So ports come from below the ephemeral range
(/proc/sys/net/ipv4/ip_local_port_range), cut into blocks of BLOCK
ports; each process takes a block of its own with flock(2) on a file in
LOCK_DIR, held until it exits (the kernel drops the lock even after kill
-9) and hands out the block's ports in turn, each checked to bind. The
file keeps the block's next port, so the next process to take the block
goes on where the last one stopped: a port one process printed and
exited (tools/pg-test.sh) is not handed out again until the block has
gone round. A server restarted on its port (a broker, PostgreSQL in
test_cluster_outage) gets it back, since nothing but the tests'
own servers binds there.

Also a command for shell scripts: `python3 ports.py [N]` prints the
first of N consecutive ports (1 by default).
"""
import fcntl
import os
import socket
import sys
import tempfile
import threading

# The lowest port handed out: above the registered ports that a developer
# machine may be running (5432, 8080, 9092, ...) but well below the
# kernel's default ephemeral range (32768-60999).
BASE = 10000
BLOCK = 256
LOCK_DIR = os.path.join(tempfile.gettempdir(), "sluice-ports")

_lock = threading.Lock()
_claim = None      # (pid, fd, first port of the block)


def _range():
    """[start, end) of the ports outside the ephemeral range to cut into
    blocks: below it, or above it when that is larger."""
    lo, hi = 32768, 60999
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        pass
    below, above = (BASE, lo), (hi + 1, 65536)
    return max(below, above, key=lambda r: r[1] - r[0])


def _take_block():
    start, end = _range()
    n = (end - start) // BLOCK
    if n < 1:
        return None
    os.makedirs(LOCK_DIR, exist_ok=True)
    try:
        os.chmod(LOCK_DIR, 0o1777)     # shared by every user's tests
    except OSError:
        pass
    first = os.getpid() % n
    for i in range(n):
        port = start + (first + i) % n * BLOCK
        path = os.path.join(LOCK_DIR, "block-%d" % port)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        try:
            os.fchmod(fd, 0o666)
        except OSError:
            pass
        return fd, port
    return None


def _binds(port):
    """Whether 127.0.0.1:port binds now (without SO_REUSEADDR, so a port
    with a connection in TIME_WAIT counts as taken too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _kernel_pick():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n=1):
    """The first of n consecutive loopback ports that bind now and that no
    other process hands out."""
    global _claim
    with _lock:
        # A forked child shares the parent's lock: it takes a block of its own.
        if _claim is None or _claim[0] != os.getpid():
            got = _take_block()
            _claim = got and (os.getpid(),) + got
        if _claim is None:
            if n == 1:
                sys.stderr.write("ports.py: no block of test ports free in "
                                 "%s; using a port the kernel picks\n" % LOCK_DIR)
                return _kernel_pick()
            raise RuntimeError("ports.py: no block of test ports free in %s"
                               % LOCK_DIR)
        _, fd, first = _claim
        try:
            at = int(os.pread(fd, 16, 0) or b"0") % BLOCK
        except ValueError:
            at = 0
        for _ in range(BLOCK):
            if at + n > BLOCK:
                at = 0
            if all(_binds(first + at + i) for i in range(n)):
                os.pwrite(fd, b"%-15d\n" % ((at + n) % BLOCK), 0)
                return first + at
            at += 1
        raise RuntimeError("ports.py: no %d consecutive free ports in %d-%d"
                           % (n, first, first + BLOCK - 1))


def free_port():
    """A loopback port that binds now and that no other process hands out."""
    return free_ports(1)


if __name__ == "__main__":
    print(free_ports(int(sys.argv[1]) if len(sys.argv) > 1 else 1))
