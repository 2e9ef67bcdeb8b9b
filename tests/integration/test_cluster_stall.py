"""test_cluster_stall.py — a PostgreSQL that stops answering.

SIGSTOP keeps a connection open while nothing answers on it, as a
half-open connection or a hung server does: the kernel still
acknowledges what is sent and answers keepalives, and a stopped backend
runs no statement_timeout. Only the agent's own deadline on each round
trip (limits.h, SL_META_PG_*_TIMEOUT_MS) gets it out.

- The backends serving one agent stopped: that agent closes the stuck
  connections, reconnects and serves (produces acknowledged, listed in
  Metadata) before they resume; nothing acknowledged is lost.
- The postmaster and every backend stopped under an idempotent acks=all
  load over three agents: nothing is acknowledged while it is stopped
  (the commits in flight fail, retriable, and may land once it resumes:
  the idempotent retries are deduplicated), the load resumes after,
  every acknowledged record is present exactly once.
- One group's offsets write stuck on its rows: another group's
  OffsetCommit on the same agent (another offsets lane) is answered at
  once.
"""
import os
import signal
import subprocess
import threading
import time
import uuid

import pytest

from cluster import metadata, wait_for, wait_topic_on
from conftest import Broker, _require_binary
from test_cluster_outage import PARTITIONS, Load, Pg, check_exactly_once
from test_groups import commit_v6
import kproto
import util

# Past the data connections' deadline (10 s), so a commit sent to a
# stopped backend is given up while the stall lasts, with room for a
# loaded machine.
STALL_S = 20
APP = "sluice-stalled"


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    s = Pg(tmp_path_factory.mktemp("pg"))
    yield s
    s.stop()


@pytest.fixture
def stopped(pg):
    """Pids this test stopped: continued whatever happens."""
    pids = []
    yield pids
    for pid in reversed(pids):
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


@pytest.fixture
def three(pg, tmp_path):
    """Agents in zones a, b, c on a fresh database; a's connections carry
    application_name APP, given in its URL (which wins over the agent's
    own default, as any setting of the URL)."""
    _require_binary()
    url = pg.db_url(pg.new_db())
    store = "file:%s" % (tmp_path / "objects")
    agents = []
    try:
        for n, z in enumerate("abc"):
            u = url + ("?application_name=" + APP if z == "a" else "")
            b = Broker(tmp_path / ("agent-" + z),
                       ["--meta", u, "--store", store, "--zone", z])
            agents.append(b)
            b.start()
        for agent in agents:
            wait_for("three agents", lambda: metadata(agent)[0] == [1, 2, 3],
                     10)
        yield agents
    finally:
        for b in agents:
            b.teardown()


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = open("/proc/%s/stat" % d).read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d))
    return out


def log_of(agent):
    return open(agent.stderr, errors="replace").read()


def stop_idle_backends(pg, stopped):
    """SIGSTOP every backend of APP while none is inside a transaction
    (a stopped backend holding row locks would stall every agent's
    commits to those rows, whatever the agent does: nothing but the
    backend itself can release them). Returns their pids."""
    for _ in range(50):
        rows = pg.psql("SELECT pid FROM pg_stat_activity WHERE "
                       "application_name = '%s'" % APP).split()
        pids = [int(p) for p in rows]
        assert len(pids) >= 7, pids  # every connection but maybe listen
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
        # A stopped backend's state stays as it was when it stopped.
        busy = pg.psql("SELECT count(*) FROM pg_stat_activity WHERE "
                       "application_name = '%s' AND state <> 'idle'" % APP)
        if busy == "0":
            return pids
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
        del stopped[:]
        time.sleep(0.2)
    raise AssertionError("the agent's backends never all idle at once")


def test_stopped_backends_of_one_agent(pg, three, stopped):
    a, b, c = three
    topic = util.create_topic(b.bootstrap, util.topic_name("stall"),
                              PARTITIONS)
    wait_topic_on(three, topic)
    pids = stop_idle_backends(pg, stopped)
    t_stop = time.monotonic()
    # A produce via a goes to a's commit connection, whose backend does
    # not answer: a gives it up, reconnects, and the retry commits.
    load = Load([a], ["a"], topic)
    try:
        served = wait_for("a produce via a acknowledged during the stall",
                          lambda: load.acks_between(t_stop, time.monotonic()),
                          STALL_S - 2)
        print("first acknowledgement via the stalled agent %.1f s into the "
              "stall" % served)
        # a's heartbeats went on over fresh connections: listed by b.
        wait_for("a listed by b", lambda: metadata(b)[0] == [1, 2, 3], 5)
        for line in ("(cluster): no answer within",
                     "(commit): no answer within 10000 ms"):
            wait_for(line, lambda: line in log_of(a), 5)
        time.sleep(max(0, STALL_S - (time.monotonic() - t_stop)))
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
        del stopped[:]
        t_cont = time.monotonic()
        # The backends of the connections a gave up find them closed
        # when they resume, and end: a holds no more than before.
        wait_for("the given-up backends gone", lambda: int(pg.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE "
            "application_name = '%s'" % APP)) <= len(pids), 10)
        wait_for("acknowledged after the stall",
                 lambda: load.acks_between(t_cont, time.monotonic()), 10)
    finally:
        load.finish()
    assert not load.errors, load.errors[:5]
    for agent in three:
        wait_for("three agents after the stall",
                 lambda: metadata(agent)[0] == [1, 2, 3], 10)
    check_exactly_once(c, topic, load.acked, "c")


def test_stopped_postmaster_and_backends(pg, three, stopped):
    a, b, c = three
    zones = ("a", "b", "c")
    topic = util.create_topic(a.bootstrap, util.topic_name("stall-all"),
                              PARTITIONS)
    wait_topic_on(three, topic)
    d = open(os.path.join(pg.state, "dir")).read().strip()
    postmaster = int(open(os.path.join(d, "data", "postmaster.pid"))
                     .readline())
    load = Load(three, zones, topic)
    try:
        time.sleep(3)
        wait_for("acknowledgements before the stall", lambda: load.acked, 20)
        os.kill(postmaster, signal.SIGSTOP)
        stopped.append(postmaster)
        for pid in children(postmaster):
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
        t_stop = time.monotonic()
        time.sleep(STALL_S)
        for pid in reversed(stopped):
            os.kill(pid, signal.SIGCONT)
        del stopped[:]
        t_cont = time.monotonic()
        # Acknowledgements of commits that completed before the stop may
        # still be on their way for a moment.
        during = load.acks_between(t_stop + 0.2, t_cont)
        assert not during, "%d records acknowledged while PostgreSQL was " \
            "stopped (first %.2f s into it)" % (len(during),
                                                during[0] - t_stop)
        resumed = wait_for("produces acknowledged again",
                           lambda: load.acks_between(t_cont,
                                                     time.monotonic()), 20)
        print("acknowledged again %.2f s after PostgreSQL resumed" % resumed)
        time.sleep(2)
    finally:
        load.finish()
    assert not load.errors, load.errors[:5]
    # The commits in flight were given up while it was stopped.
    assert any("(commit): no answer within" in log_of(x) for x in three)
    for agent in three:
        wait_for("three agents after the stall",
                 lambda: metadata(agent)[0] == [1, 2, 3], 10)
    check_exactly_once(c, topic, load.acked, "c")
    # Every agent serves fresh produces again.
    for agent, z in zip(three, zones):
        util.ck_produce(agent.bootstrap, topic, util.make_messages(10),
                        **{"client.id": "it,sluice_az=" + z})


def offsets_lane(group, lanes=4):
    """meta_offsets_lane: FNV-1a of the id, modulo the store's lanes."""
    h = 2166136261
    for ch in group.encode():
        h = ((h ^ ch) * 16777619) & 0xffffffff
    return h % lanes


def commit_until_served(bootstrap, group, topic, offset):
    """OffsetCommit v6 (generation -1) until the coordinator has the
    group's lease: (error code, seconds the answered request took)."""
    deadline = time.monotonic() + 30
    while True:
        with kproto.connect(bootstrap, timeout=40) as s:
            t0 = time.monotonic()
            err = commit_v6(s, group, topic, 0, offset, -1, "")
            took = time.monotonic() - t0
        if err != 14 or time.monotonic() > deadline:  # LOAD_IN_PROGRESS
            return err, took
        time.sleep(0.1)


def test_stuck_offsets_write_holds_up_only_its_lane(pg, tmp_path):
    """An offsets write stuck on one group's rows (here a session that
    holds them locked, as another agent's stopped backend would) holds
    up only the groups of its offsets lane: another group's OffsetCommit
    on the same agent is answered at once, not after the stuck one."""
    _require_binary()
    db = pg.new_db()
    b = Broker(tmp_path / "agent", ["--meta", pg.db_url(db), "--store",
                                    "file:%s" % (tmp_path / "objects")])
    b.start()
    holder = None
    try:
        topic = util.create_topic(b.bootstrap, util.topic_name("lanes"), 1)
        stuck = "stuck-%s" % uuid.uuid4().hex[:8]
        other = next(g for g in ("free-%d" % i for i in range(100))
                     if offsets_lane(g) != offsets_lane(stuck))
        for g in (stuck, other):
            assert commit_until_served(b.bootstrap, g, topic, 1)[0] == 0
        holder = subprocess.Popen(
            ["psql", "-X", "-A", "-t", "-q", pg.db_url(db)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        holder.stdin.write("BEGIN;\nSELECT 'locked' FROM group_offsets WHERE "
                           "group_id = '%s' FOR UPDATE;\n" % stuck)
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "locked"
        hold_s = 6
        got = {}
        t = threading.Thread(target=lambda: got.update(
            stuck=commit_until_served(b.bootstrap, stuck, topic, 2)))
        t.start()
        time.sleep(0.5)  # the stuck group's write is in the store now
        err, took = commit_until_served(b.bootstrap, other, topic, 2)
        print("the other lane's commit took %.3f s" % took)
        assert err == 0 and took < hold_s / 2, (err, took)
        time.sleep(max(0, hold_s - 0.5 - took))
        holder.stdin.write("COMMIT;\n")
        holder.stdin.close()
        holder.wait(30)
        holder = None
        t.join(30)
        err, took = got["stuck"]
        print("the stuck group's commit took %.3f s" % took)
        # It was held up (the lock is real) and then stored.
        assert err == 0 and took >= hold_s - 1, (err, took)
        assert pg.psql("SELECT committed_offset FROM group_offsets WHERE "
                       "group_id = '%s'" % stuck, db) == "2"
    finally:
        if holder:
            holder.kill()
        b.teardown()
