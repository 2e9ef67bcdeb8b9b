"""test_cluster_script.py — tools/cluster.sh, what `make cluster` runs.

The script runs in a fresh folder under /tmp (the postgres user must reach
it; pytest's own folders are root's alone), on free ports: initdb, the
database, three agents. Checked: it says it is running, each agent lists
the three brokers (ids 1-3, zones a, a, b), and SIGTERM to the script stops the agents and
PostgreSQL and ends the script with status 0.
"""
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

import kproto
from ports import free_ports
from conftest import SLUICE_BIN, _require_binary
from test_postgres import SOURCE_DIR

SCRIPT = os.path.join(SOURCE_DIR, "tools", "cluster.sh")


def agent_logs(d):
    """The agents' logs' last lines, for a failure's message."""
    text = []
    for n in (1, 2, 3):
        try:
            with open(os.path.join(d, "agent-%d.log" % n)) as f:
                text.append("agent-%d.log:\n%s" % (n, "".join(f.readlines()[-15:])))
        except OSError as e:
            text.append("agent-%d.log: %s" % (n, e))
    return "\n".join(text)


def test_cluster_script():
    _require_binary()
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        pytest.skip("no PostgreSQL server installed")
    d = tempfile.mkdtemp(prefix="sluice-cluster-")
    os.chmod(d, 0o755)
    base, pg_port = free_ports(3), free_ports(1)
    env = dict(os.environ, SLUICE_BIN=SLUICE_BIN, SLUICE_CLUSTER_DIR=d,
               SLUICE_CLUSTER_PORT=str(base),
               SLUICE_CLUSTER_PG_PORT=str(pg_port))
    p = subprocess.Popen([SCRIPT], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    out = []
    try:
        # initdb, PostgreSQL and three agents: seconds on a loaded machine.
        deadline = time.monotonic() + 60
        for line in p.stdout:
            out.append(line)
            if line.startswith("cluster: running"):
                break
            assert time.monotonic() < deadline, "".join(out)
        else:
            pytest.fail("script ended:\n" + "".join(out))
        # Each agent registers before it listens, but learns of the
        # agents started after it by notification or its next registry
        # poll: an agent listening need not list the others yet.
        want = [(1, base, "a"), (2, base + 1, "a"), (3, base + 2, "b")]
        for port in range(base, base + 3):
            try:
                s = kproto.connect("127.0.0.1:%d" % port)
            except OSError as e:
                pytest.fail("agent on %d: %s\n%s\n%s" % (port, e, "".join(out),
                                                         agent_logs(d)))
            with s:
                listed = time.monotonic() + 10
                while True:
                    brokers, _ = kproto.metadata_v1(s)
                    got = sorted((b[0], b[2], b[3]) for b in brokers)
                    if got == want or time.monotonic() > listed:
                        break
                    time.sleep(0.1)
            assert got == want, "agent on %d lists %s\n%s" % (port, got, agent_logs(d))
        pids = [int(open(os.path.join(d, "agent-%d.pid" % n)).read())
                for n in (1, 2, 3)]
        p.send_signal(signal.SIGTERM)
        rest, _ = p.communicate(timeout=20)
        out.append(rest)
        assert p.returncode == 0, "".join(out)
        assert "cluster: stopped" in rest
        for pid in pids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
        assert not os.path.exists(os.path.join(d, "pg", "data",
                                               "postmaster.pid"))
        for n in (1, 2, 3):
            log = open(os.path.join(d, "agent-%d.log" % n)).read()
            assert "registry: node %d deregistered" % n in log
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(d, ignore_errors=True)
