"""The transaction coordinator's admin side (issue 14): DescribeTransactions
v0 and ListTransactions v0-1 as Kafka 3.9 answers them
(KafkaApis.handleDescribeTransactionsRequest / handleListTransactionsRequest,
TransactionCoordinator.handleDescribeTransactions,
TransactionStateManager.listTransactionStates), `sluice transactions
list | describe | describe-producers` (kafka-transactions.sh's columns) and
--transaction-max-timeout-ms (transaction.max.timeout.ms). Transactions
are made by librdkafka's transactional producer; the admin requests are
sent raw (kproto): neither Debian's confluent-kafka 1.7, kafka-python nor
kafkajs 2.2 has these calls."""
import os
import subprocess
import time

from confluent_kafka import KafkaException, Producer
from kafka.admin import ACLOperation, ResourceType

import kproto
import util
from conftest import SLUICE_BIN
from test_acls import PASSWORD, acl, acl_broker, add_acls

API_DESCRIBE_TRANSACTIONS, API_LIST_TRANSACTIONS, API_INIT_PRODUCER_ID = 65, 66, 22
COORDINATOR_LOAD_IN_PROGRESS, INVALID_REQUEST, INVALID_TRANSACTION_TIMEOUT = 14, 42, 50
TRANSACTIONAL_ID_AUTHORIZATION_FAILED, TRANSACTIONAL_ID_NOT_FOUND = 53, 105
MAX_TIMEOUT_MS = 120000


def _flex_call(sock, key, version, body, cid):
    sock.sendall(kproto.request_v2(key, version, cid, body + kproto.NO_TAGS))
    got, data = kproto.recv_response(sock)
    assert got == cid
    r = kproto.FlexReader(data)
    r.tags()  # response header v1
    assert r.i32() == 0  # throttle
    return r


def describe_transactions(sock, ids, cid=65):
    """{id: (error, state, timeout, start, producer id, epoch,
    {topic: [partitions]})} of DescribeTransactions v0."""
    r = _flex_call(sock, API_DESCRIBE_TRANSACTIONS, 0,
                   kproto.compact_array(kproto.compact_string(i) for i in ids), cid)
    out = {}

    def topic():
        t = (r.cstring(), r.carray(r.i32))
        r.tags()
        return t

    def state():
        err, tid, st = r.i16(), r.cstring(), r.cstring()
        rest = (r.i32(), r.i64(), r.i64(), r.i16(), dict(r.carray(topic)))
        r.tags()
        out[tid] = (err, st) + rest

    r.carray(state)
    r.tags()
    assert r.done(), "trailing bytes in DescribeTransactions response"
    return out


def list_transactions(sock, states=(), pids=(), duration=None, cid=66):
    """(error, [unknown state filters], {id: (producer id, state)}) of
    ListTransactions v0, or v1 with a duration filter."""
    body = (kproto.compact_array(kproto.compact_string(s) for s in states) +
            kproto.compact_array(kproto.i64(p) for p in pids))
    if duration is not None:
        body += kproto.i64(duration)
    r = _flex_call(sock, API_LIST_TRANSACTIONS, 0 if duration is None else 1, body, cid)
    err = r.i16()
    unknown = r.carray(r.cstring)
    txns = {}

    def state():
        tid, pid, st = r.cstring(), r.i64(), r.cstring()
        r.tags()
        txns[tid] = (pid, st)

    r.carray(state)
    r.tags()
    assert r.done(), "trailing bytes in ListTransactions response"
    return err, unknown, txns


def init_producer_id_v1(sock, txn_id, timeout_ms):
    """(error, producer id, epoch), asked again while the coordinator
    loads or takes a producer id block (COORDINATOR_LOAD_IN_PROGRESS)."""
    deadline = time.monotonic() + 10
    while True:
        r = kproto.Reader(kproto.roundtrip(sock, API_INIT_PRODUCER_ID, 1,
                                           kproto.string(txn_id) + kproto.i32(timeout_ms)))
        r.i32()  # throttle
        got = r.i16(), r.i64(), r.i16()
        if got[0] != COORDINATOR_LOAD_IN_PROGRESS or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def txn_tool(bootstrap, *args, env=None):
    """(exit status, rows as lists of cells, stderr) of `sluice
    transactions`: kafka-transactions.sh's table, cells padded and
    tab-separated, the header row first."""
    r = subprocess.run([SLUICE_BIN, "transactions", "--bootstrap", bootstrap] + list(args),
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, **(env or {})))
    rows = [[c.strip() for c in line.split("\t")[:-1]] for line in r.stdout.splitlines()]
    return r.returncode, rows, r.stderr


def txn_producer(bootstrap, txn_id, **extra):
    conf = {"bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 5}
    conf.update(extra)
    p = Producer(conf)
    p.init_transactions(30)
    return p


def test_describe_list_and_tool(broker_factory):
    """An open transaction over two partitions, a committed one, an
    aborted one and an id only initialised, as Kafka's coordinator reports
    them, by raw requests and by `sluice transactions`; the store's
    records answer the same after a restart."""
    b = broker_factory(["--transaction-max-timeout-ms", str(MAX_TIMEOUT_MS)])
    topic = util.create_topic(b.bootstrap, util.topic_name("txa"), 2)
    ids = {k: util.topic_name("tx-" + k) for k in ("open", "done", "aborted", "fresh")}
    t0 = int(time.time() * 1000)
    producers = {}
    for k in ("done", "aborted", "open"):
        p = producers[k] = txn_producer(b.bootstrap, ids[k], **{"transaction.timeout.ms": 90000})
        p.begin_transaction()
        p.produce(topic, b"v-" + k.encode(), partition=0)
        if k == "open":
            p.produce(topic, b"v2", partition=1)
            assert p.flush(15) == 0
        elif k == "done":
            p.commit_transaction(30)
        else:
            p.flush(15)
            p.abort_transaction(30)
    producers["fresh"] = txn_producer(b.bootstrap, ids["fresh"])
    t1 = int(time.time() * 1000)

    s = kproto.connect(b.bootstrap)
    err, apis, _ = kproto.api_versions_v0(s)
    assert err == 0 and apis[API_DESCRIBE_TRANSACTIONS] == (0, 0)
    assert apis[API_LIST_TRANSACTIONS] == (0, 1)

    got = describe_transactions(s, list(ids.values()) + ["no-such-id", ""])
    assert got["no-such-id"] == (TRANSACTIONAL_ID_NOT_FOUND, "", 0, 0, 0, 0, {})
    assert got[""] == (INVALID_REQUEST, "", 0, 0, 0, 0, {})
    err, state, timeout, start, pid, epoch, topics = got[ids["open"]]
    assert (err, state, timeout, epoch, topics) == (0, "Ongoing", 90000, 0,
                                                    {topic: [0, 1]}), got
    assert t0 - 1000 <= start <= t1 + 1000 and pid >= 0
    for k, st in (("done", "CompleteCommit"), ("aborted", "CompleteAbort")):
        err, state, timeout, start, _, epoch, topics = got[ids[k]]
        # Kafka keeps the last transaction's start time after it ends.
        assert (err, state, timeout, epoch, topics) == (0, st, 90000, 0, {}), got
        assert t0 - 1000 <= start <= t1 + 1000
    assert got[ids["fresh"]][:4] == (0, "Empty", 60000, -1)
    pids = {tid: got[tid][4] for tid in ids.values()}
    assert len(set(pids.values())) == 4

    err, unknown, txns = list_transactions(s)
    assert (err, unknown) == (0, [])
    assert txns == {ids["open"]: (pids[ids["open"]], "Ongoing"),
                    ids["done"]: (pids[ids["done"]], "CompleteCommit"),
                    ids["aborted"]: (pids[ids["aborted"]], "CompleteAbort"),
                    ids["fresh"]: (pids[ids["fresh"]], "Empty")}
    # Unknown state names are reported once each; known ones filter.
    assert list_transactions(s, states=["Ongoing", "Bogus", "Bogus", "ongoing"]) == (
        0, ["Bogus", "ongoing"], {ids["open"]: (pids[ids["open"]], "Ongoing")})
    assert list_transactions(s, states=["Bogus"]) == (0, ["Bogus"], {})
    assert list_transactions(s, states=["Bogus2", "Bogus", "Bogus2", "Bogus"])[:2] == (
        0, ["Bogus2", "Bogus"])
    assert list_transactions(s, states=["CompleteAbort", "Empty"])[2] == {
        ids["aborted"]: (pids[ids["aborted"]], "CompleteAbort"),
        ids["fresh"]: (pids[ids["fresh"]], "Empty")}
    assert list_transactions(s, pids=[pids[ids["done"]], 10 ** 12])[2] == {
        ids["done"]: (pids[ids["done"]], "CompleteCommit")}
    assert list_transactions(s, states=["Ongoing"], pids=[pids[ids["done"]]])[2] == {}
    # v1's duration filter: running longer than the filter; an id with no
    # transaction (start -1) passes any, as in Kafka.
    assert list_transactions(s, duration=0)[2] == txns
    assert list_transactions(s, duration=-1)[2] == txns
    assert list_transactions(s, duration=3600 * 1000)[2] == {
        ids["fresh"]: (pids[ids["fresh"]], "Empty")}

    # the tool, kafka-transactions.sh's columns
    rc, rows, _ = txn_tool(b.bootstrap, "list")
    assert rc == 0 and rows[0] == ["TransactionalId", "Coordinator", "ProducerId",
                                   "TransactionState"], rows
    assert sorted(rows[1:]) == sorted([tid, "1", str(pid), st] for tid, (pid, st) in
                                      txns.items())
    rc, rows, _ = txn_tool(b.bootstrap, "list", "--duration-filter", "3600000")
    assert rc == 0 and rows[1:] == [[ids["fresh"], "1", str(pids[ids["fresh"]]), "Empty"]]
    rc, rows, _ = txn_tool(b.bootstrap, "describe", ids["open"])
    assert rc == 0 and rows[0] == [
        "CoordinatorId", "TransactionalId", "ProducerId", "ProducerEpoch", "TransactionState",
        "TransactionTimeoutMs", "CurrentTransactionStartTimeMs", "TransactionDurationMs",
        "TopicPartitions"], rows
    start = got[ids["open"]][3]
    row = rows[1]
    assert row[:7] == ["1", ids["open"], str(pids[ids["open"]]), "0", "Ongoing", "90000",
                       str(start)], rows
    assert 0 <= int(row[7]) <= int(time.time() * 1000) - start + 1000
    assert row[8] == "%s-0,%s-1" % (topic, topic)
    rc, rows, _ = txn_tool(b.bootstrap, "describe", "--transactional-id", ids["fresh"])
    assert rc == 0 and rows[1][4:] == ["Empty", "60000", "None", "None", ""], rows
    rc, rows, err = txn_tool(b.bootstrap, "describe", "no-such-id")
    assert rc == 1 and rows == [] and "TRANSACTIONAL_ID_NOT_FOUND (105)" in err, err
    rc, rows, _ = txn_tool(b.bootstrap, "describe-producers", "--topic", topic,
                           "--partition", "1")
    assert rc == 0 and rows[0] == ["ProducerId", "ProducerEpoch", "LatestCoordinatorEpoch",
                                   "LastSequence", "LastTimestamp",
                                   "CurrentTransactionStartOffset"], rows
    assert [r[:4] + r[5:] for r in rows[1:]] == [[str(pids[ids["open"]]), "0", "-1", "0", "0"]]
    rc, _, err = txn_tool(b.bootstrap, "describe-producers", "--topic", topic,
                          "--partition", "7")
    assert rc == 1 and "UNKNOWN_TOPIC_OR_PARTITION" in err, err

    # the open transaction commits; the store's records after a restart
    producers["open"].commit_transaction(30)
    for p in producers.values():
        p.flush(1)
    before = describe_transactions(s, list(ids.values()))
    assert before[ids["open"]][1] == "CompleteCommit"
    assert before[ids["open"]][6] == {}
    # Its COMMIT marker's coordinator epoch (a lone agent's: 0), no open
    # transaction.
    rc, rows, _ = txn_tool(b.bootstrap, "describe-producers", "--topic", topic,
                           "--partition", "1")
    assert rc == 0 and [r[:4] + r[5:] for r in rows[1:]] == [
        [str(pids[ids["open"]]), "0", "0", "0", "None"]], rows
    s.close()
    del producers
    b.stop()
    b.start()
    s = kproto.connect(b.bootstrap)
    deadline = time.monotonic() + 10
    while True:  # COORDINATOR_LOAD_IN_PROGRESS while the records load
        after = describe_transactions(s, list(ids.values()))
        if all(v[0] != COORDINATOR_LOAD_IN_PROGRESS for v in after.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert after == before
    s.close()


def test_transaction_max_timeout(broker_factory):
    """transaction.max.timeout.ms bounds InitProducerId's timeout (1 to
    the maximum, INVALID_TRANSACTION_TIMEOUT outside), which librdkafka
    reports as a fatal error; the default is Kafka's 900000."""
    b = broker_factory(["--transaction-max-timeout-ms", str(MAX_TIMEOUT_MS)])
    s = kproto.connect(b.bootstrap)
    assert init_producer_id_v1(s, "tmo-a", MAX_TIMEOUT_MS)[0] == 0
    assert init_producer_id_v1(s, "tmo-b", MAX_TIMEOUT_MS + 1) == (
        INVALID_TRANSACTION_TIMEOUT, -1, -1)
    assert init_producer_id_v1(s, "tmo-c", 0)[0] == INVALID_TRANSACTION_TIMEOUT
    # A refused id is not created.
    assert describe_transactions(s, ["tmo-b"])["tmo-b"][0] == TRANSACTIONAL_ID_NOT_FOUND
    s.close()
    p = Producer({"bootstrap.servers": b.bootstrap, "transactional.id": "tmo-ck",
                  "transaction.timeout.ms": MAX_TIMEOUT_MS + 1000})
    try:
        p.init_transactions(20)
        raise AssertionError("init_transactions succeeded")
    except KafkaException as e:
        assert e.args[0].code() == INVALID_TRANSACTION_TIMEOUT and e.args[0].fatal(), e
    b.stop()
    b.extra_args = [a for a in b.extra_args if a not in ("--transaction-max-timeout-ms",
                                                         str(MAX_TIMEOUT_MS))]
    b.start()
    s = kproto.connect(b.bootstrap)
    assert init_producer_id_v1(s, "tmo-d", 900000)[0] == 0
    assert init_producer_id_v1(s, "tmo-e", 900001)[0] == INVALID_TRANSACTION_TIMEOUT
    s.close()


def test_describe_access(tmp_path_factory):
    """Kafka's checks with a real principal: DescribeTransactions answers
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED for an id alice may not
    DESCRIBE (WRITE implies it) and leaves out the topics she may not
    DESCRIBE; ListTransactions lists only the ids she may DESCRIBE; the
    tool over SASL shows the same."""
    b = acl_broker(tmp_path_factory, "txadm", ("alice",))
    try:
        seen, hidden = (util.create_topic(b.bootstrap, util.topic_name(n), 1)
                        for n in ("txs", "txh"))
        mine, theirs = util.topic_name("tx-mine"), util.topic_name("tx-theirs")
        producers = []
        for tid in (mine, theirs):
            p = txn_producer(b.bootstrap, tid)
            p.begin_transaction()
            p.produce(seen, b"a")
            p.produce(hidden, b"b")
            assert p.flush(15) == 0
            producers.append(p)
        add_acls(b, acl("User:alice", ACLOperation.WRITE, ResourceType.TRANSACTIONAL_ID, mine),
                 acl("User:alice", ACLOperation.DESCRIBE, ResourceType.TOPIC, seen))
        time.sleep(0.6)  # past the agent's ACL poll
        from test_acls_matrix import login
        with login(b, "alice") as s:
            got = describe_transactions(s, [mine, theirs])
            err, unknown, txns = list_transactions(s)
        assert got[theirs] == (TRANSACTIONAL_ID_AUTHORIZATION_FAILED, "", 0, 0, 0, 0, {})
        assert got[mine][:2] == (0, "Ongoing") and got[mine][6] == {seen: [0]}, got
        assert (err, unknown, list(txns)) == (0, [], [mine]), txns
        with kproto.connect(b.bootstrap) as s:  # the super user sees both
            assert describe_transactions(s, [mine])[mine][6] == {seen: [0], hidden: [0]}
            assert sorted(list_transactions(s)[2]) == sorted([mine, theirs])

        sasl = ["--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanism", "PLAIN",
                "--sasl-username", "alice"]
        env = {"SLUICE_SASL_PASSWORD": PASSWORD}
        rc, rows, _ = txn_tool(b.sasl_bootstrap, *sasl, "list", env=env)
        assert rc == 0 and [r[0] for r in rows[1:]] == [mine], rows
        rc, rows, _ = txn_tool(b.sasl_bootstrap, *sasl, "describe", mine, env=env)
        assert rc == 0 and rows[1][4] == "Ongoing" and rows[1][8] == seen + "-0", rows
        rc, _, err = txn_tool(b.sasl_bootstrap, *sasl, "describe", theirs, env=env)
        assert rc == 1 and "TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53)" in err, err
        for p in producers:
            p.abort_transaction(30)
    finally:
        b.teardown()
