"""test_ports.py — ports.py, where every server the tests start gets its
port: processes running at once never get the same port, the ports stay
out of the kernel's ephemeral range (where outgoing connections take
theirs), a port handed out is not handed out again while its server runs,
and a process's block is free again once it is gone, even after kill -9.
"""
import fcntl
import os
import signal
import socket
import subprocess
import sys

import ports

HERE = os.path.dirname(os.path.abspath(__file__))

# A child that takes ports, prints them and its block's first port, then
# holds its block until its stdin closes.
CHILD = r"""
import sys
sys.path.insert(0, %r)
import ports
got = [ports.free_port() for _ in range(5)]
print(" ".join(map(str, [ports._claim[2]] + got)), flush=True)
sys.stdin.read()
""" % HERE


def ephemeral_range():
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        return tuple(int(x) for x in f.read().split())


def start_child():
    p = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    first, *got = (int(x) for x in p.stdout.readline().split())
    return p, first, got


def test_processes_at_once_get_disjoint_blocks():
    children = [start_child() for _ in range(3)]
    try:
        firsts = [first for _, first, _ in children]
        assert len(set(firsts)) == 3, firsts
        lo, hi = ephemeral_range()
        for _, first, got in children:
            assert len(set(got)) == 5, got
            for port in got:
                assert first <= port < first + ports.BLOCK
                assert not lo <= port <= hi, (port, lo, hi)
        mine = [ports.free_port() for _ in range(5)]
        assert ports._claim[2] not in firsts
        assert not set(mine) & {p for _, _, got in children for p in got}
    finally:
        for p, _, _ in children:
            p.stdin.close()
            p.wait(10)


def test_a_listening_port_is_not_handed_out_again():
    """Not even once the block has gone round (more picks than it has
    ports): a broker stopped for a restart keeps its port only as long as
    nothing else binds it, so nothing else may be given it while it runs."""
    held = []
    try:
        for _ in range(10):
            s = socket.socket()
            s.bind(("127.0.0.1", ports.free_port()))  # raises if handed out twice
            s.listen()
            held.append(s)
        busy = {s.getsockname()[1] for s in held}
        later = [ports.free_port() for _ in range(ports.BLOCK + 5)]
        assert not busy & set(later)
        base = ports.free_ports(3)
        assert not busy & {base, base + 1, base + 2}
        for port in range(base, base + 3):
            with socket.socket() as s:
                s.bind(("127.0.0.1", port))
    finally:
        for s in held:
            s.close()


def test_block_free_again_after_kill9():
    p, first, _ = start_child()
    fd = os.open(os.path.join(ports.LOCK_DIR, "block-%d" % first), os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            raise AssertionError("block %d not held by its process" % first)
        except BlockingIOError:
            pass
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
        p.stdin.close()
