"""test_checker.py — the checker (checker.py) on small crafted histories:
a clean one, idempotent and transactional, reports nothing; each anomaly
kind is found in a history that has exactly that fault, and nothing else
is reported there."""
import copy
import io

import checker


def send(v, p, o, result="ok", txn=None, proc="w0", t=1.0):
    return {"op": "send", "process": proc, "value": v, "partition": p,
            "offset": o if result == "ok" else None, "result": result,
            "txn": txn, "t0": t - 0.5, "t": t, "error": None}


def poll(proc, iso, reads, t):
    return {"op": "poll", "process": proc, "iso": iso, "t": t,
            "reads": [list(r) for r in reads]}


def assign(proc, iso, t, positions):
    return {"op": "assign", "process": proc, "iso": iso, "t": t,
            "positions": positions}


def end(op, txn, result, t0, t=None, proc="t0"):
    return {"op": op, "process": proc, "txn": txn, "result": result,
            "t0": t0, "t": t if t is not None else t0 + 0.1, "error": None}


def final(iso, p, reads):
    return {"op": "final", "iso": iso, "partition": p,
            "reads": [list(r) for r in reads]}


def batch(base, records, pid=-1, epoch=-1, txnl=False, control=None):
    recs = [[base + i, v] for i, v in enumerate(records)]
    last = base + max(len(records), 1) - 1
    return {"base": base, "last": last, "pid": pid, "epoch": epoch,
            "txnl": txnl, "control": control,
            "records": [] if control else recs}


def raw(p, batches):
    return {"op": "raw", "partition": p, "batches": batches}


def idempotent_clean():
    """Two partitions, three acknowledged values, one unknown that did
    land, one unknown that did not; a read_committed and a
    read_uncommitted consumer, the final reads."""
    return [
        {"op": "meta", "seed": 1},
        send("a", 0, 0, t=1.0), send("b", 0, 1, t=1.1),
        send("c", 1, 0, t=1.2), send("d", 1, None, "info", t=1.3),
        send("e", 0, None, "info", t=1.4),
        assign("r0", "rc", 1.5, {"0": 0, "1": 0}),
        poll("r0", "rc", [(0, 0, "a"), (0, 1, "b"), (1, 0, "c")], 1.6),
        poll("r0", "rc", [(1, 1, "d")], 1.7),
        assign("r0", "rc", 1.8, {"0": 1}),
        poll("r0", "rc", [(0, 1, "b")], 1.9),
        assign("u0", "ru", 1.5, {"1": 0}),
        poll("u0", "ru", [(1, 0, "c"), (1, 1, "d")], 1.6),
        final("rc", 0, [(0, "a"), (1, "b")]),
        final("rc", 1, [(0, "c"), (1, "d")]),
        raw(0, [batch(0, ["a", "b"], pid=7, epoch=0)]),
        raw(1, [batch(0, ["c"], pid=8, epoch=0), batch(1, ["d"], 8, 0)]),
    ]


def txn_clean():
    """Transaction T1 committed over two partitions, T2 aborted, T3 with an
    unknown commit that did commit, T4 unknown that aborted; a
    read_committed consumer polling T1 after its commit was sent."""
    return [
        {"op": "begin", "process": "t0", "txn": "T1", "t": 1.0},
        send("x1", 0, 0, txn="T1", proc="t0", t=1.1),
        send("x2", 1, 0, txn="T1", proc="t0", t=1.2),
        end("commit", "T1", "ok", 1.3),
        {"op": "begin", "process": "t0", "txn": "T2", "t": 1.5},
        send("y1", 0, 2, txn="T2", proc="t0", t=1.6),
        end("abort", "T2", "ok", 1.7),
        send("z1", 1, 2, txn="T3", proc="t0", t=2.0),
        end("commit", "T3", "info", 2.1),
        send("w1", 0, 4, txn="T4", proc="t0", t=2.5),
        end("commit", "T4", "info", 2.6),
        assign("r0", "rc", 1.0, {"0": 0, "1": 0}),
        poll("r0", "rc", [(0, 0, "x1"), (1, 0, "x2")], 1.35),
        poll("r0", "rc", [(1, 2, "z1")], 2.3),
        final("rc", 0, [(0, "x1")]),
        final("rc", 1, [(0, "x2"), (2, "z1")]),
        raw(0, [batch(0, ["x1"], 5, 0, True),
                batch(1, [], 5, 0, True, "commit"),
                batch(2, ["y1"], 5, 0, True),
                batch(3, [], 5, 0, True, "abort"),
                batch(4, ["w1"], 5, 1, True),
                batch(5, [], 5, 1, True, "abort")]),
        raw(1, [batch(0, ["x2"], 5, 0, True),
                batch(1, [], 5, 0, True, "commit"),
                batch(2, ["z1"], 5, 0, True),
                batch(3, [], 5, 0, True, "commit")]),
    ]


def kinds(events):
    return {k: len(v) for k, v in checker.analyze(events).items() if v}


def test_clean_histories_report_nothing():
    assert kinds(idempotent_clean()) == {}
    assert kinds(txn_clean()) == {}
    out = io.StringIO()
    assert checker.report(idempotent_clean() + [], out) == 0
    assert "total anomalies: 0" in out.getvalue()


def test_report_prints_summary_and_counts():
    h = idempotent_clean()
    h[-2] = raw(0, [batch(0, ["a"], 7, 0)])
    h[-4] = final("rc", 0, [(0, "a")])
    out = io.StringIO()
    assert checker.report(h, out) == 1
    text = out.getvalue()
    assert "sends ok" in text and "lost-write             1" in text
    assert "total anomalies: 1" in text


def test_lost_acknowledged_write():
    h = idempotent_clean()
    h[-4] = final("rc", 0, [(0, "a")])
    h[-2] = raw(0, [batch(0, ["a"], 7, 0)])
    found = checker.analyze(h)
    assert kinds(h) == {"lost-write": 1}
    assert found["lost-write"][0]["value"] == "b"


def test_unknown_send_missing_is_not_lost():
    h = [e for e in idempotent_clean() if not (e["op"] == "poll" and
                                                e["process"] == "r0")]
    h = [e for e in h if e["op"] != "poll"]
    h[-3] = final("rc", 1, [(0, "c")])
    h[-1] = raw(1, [batch(0, ["c"], 8, 0)])
    assert kinds(h) == {}


def test_lost_committed_transactional_write():
    h = txn_clean()
    # x2 of the committed T1 is missing from the final read (and so T1 is
    # torn as well: both are reported).
    h[-3] = final("rc", 1, [(2, "z1")])
    k = kinds(h)
    assert k.pop("lost-committed") == 1 and k.pop("torn") == 1
    assert k.pop("stale-marker", 0) == 0
    assert k == {}


def test_duplicate():
    h = idempotent_clean()
    h[-4] = final("rc", 0, [(0, "a"), (1, "b"), (2, "a")])
    found = checker.analyze(h)
    assert len(found["duplicate"]) == 1
    assert found["duplicate"][0]["positions"] == [(0, 0), (0, 2)]
    assert not found["moved"]


def test_moved_and_inconsistent_offsets():
    h = idempotent_clean()
    # The acknowledgement of b said offset 1; a consumer then read c there.
    h.insert(-4, poll("u0", "ru", [(0, 1, "c")], 1.65))
    h.insert(-4, assign("u0", "ru", 1.66, {}))
    k = kinds(h)
    assert k == {"inconsistent-offsets": 1, "moved": 1}, k
    a = checker.analyze(h)["inconsistent-offsets"][0]
    assert (a["partition"], a["offset"]) == (0, 1)
    assert [v for v, _ in a["values"]] == ["b", "c"]


def test_acknowledged_offset_disagrees_with_the_log():
    # a was acknowledged at 0/0 but the log holds b there and a at 0/1:
    # moved, and two values at 0/0 and at 0/1.
    h = idempotent_clean()
    h = [e for e in h if e["op"] != "poll"]
    h[-4] = final("rc", 0, [(0, "b"), (1, "a")])
    h[-2] = raw(0, [batch(0, ["b", "a"], 7, 0)])
    k = kinds(h)
    assert k == {"moved": 2, "inconsistent-offsets": 2}, k


def test_aborted_read():
    h = txn_clean()
    h.insert(-4, poll("r1", "rc", [(0, 2, "y1")], 1.8))
    found = checker.analyze(h)
    assert kinds(h) == {"aborted-read": 1}
    assert found["aborted-read"][0]["txn"] == "T2"
    # In the final read as well (and then the raw markers disagree).
    h = txn_clean()
    h[-4] = final("rc", 0, [(0, "x1"), (2, "y1")])
    assert kinds(h) == {"aborted-read": 1}


def test_aborted_read_of_a_definitely_failed_commit():
    h = txn_clean()
    h[h.index(end("abort", "T2", "ok", 1.7))] = end("commit", "T2", "fail",
                                                    1.7)
    h.insert(-4, poll("r1", "rc", [(0, 2, "y1")], 1.8))
    assert kinds(h) == {"aborted-read": 1}


def test_read_uncommitted_sees_aborted_values():
    h = txn_clean()
    h.insert(-4, poll("u1", "ru", [(0, 2, "y1")], 1.8))
    assert kinds(h) == {}


def test_torn_transaction():
    h = txn_clean()
    # T3 (unknown outcome) with a second value in partition 0 that is not
    # visible while its first is.
    h.insert(8, send("z2", 0, 6, txn="T3", proc="t0", t=2.05))
    assert kinds(h) == {"torn": 1}
    a = checker.analyze(h)["torn"][0]
    assert a["txn"] == "T3" and a["missing"] == ["z2"]


def test_read_beyond_lso():
    h = txn_clean()
    # T1's value returned to read_committed at 1.25, before its commit
    # was sent at 1.3.
    h.insert(-4, poll("r1", "rc", [(0, 0, "x1")], 1.25))
    found = checker.analyze(h)
    assert kinds(h) == {"beyond-lso": 1}
    assert found["beyond-lso"][0]["commit_invoked_t"] == 1.3
    # A poll that completed after the commit was sent (racing with it) is
    # allowed, and so is read_uncommitted.
    h = txn_clean()
    h.insert(-4, poll("r1", "rc", [(0, 0, "x1")], 1.31))
    h.insert(-4, poll("u1", "ru", [(0, 0, "x1")], 1.0))
    assert kinds(h) == {}


def test_nonmonotonic_offsets_without_a_seek():
    h = idempotent_clean()
    i = h.index(assign("r0", "rc", 1.8, {"0": 1}))
    del h[i]
    found = checker.analyze(h)
    assert kinds(h) == {"nonmonotonic": 1}
    a = found["nonmonotonic"][0]
    assert (a["process"], a["partition"], a["offset"], a["previous"]) == \
        ("r0", 0, 1, 1)


def test_skip():
    h = idempotent_clean()
    i = h.index(poll("r0", "rc", [(0, 0, "a"), (0, 1, "b"), (1, 0, "c")],
                     1.6))
    h[i] = poll("r0", "rc", [(1, 0, "c")], 1.6)
    h.insert(i + 1, poll("r0", "rc", [(1, 2, "x")], 1.65))
    # r0 read 1/0, then 1/2 (a value the final read does not hold):
    # it jumped over d at 1/1, which it then reads after 1/2.
    k = kinds(h)
    assert k.pop("skip") == 1 and k.pop("nonmonotonic") == 1, k
    assert k == {}


def wire_fetch(asked, first, p=0, err=None):
    return {"op": "wire-fetch", "process": "cc-r0", "iso": 0, "partition": p,
            "asked": asked, "first": first, "last": first, "hw": 9,
            "error": err, "t": 1.0}


def test_skip_on_the_wire():
    # Asked from 0, answered from 1 while the log holds a at 0: the
    # broker skipped it. Answered from where asked, or with nothing, or
    # with an error: fine.
    h = idempotent_clean() + [wire_fetch(0, 0), wire_fetch(1, None),
                              wire_fetch(0, 1, err=1), wire_fetch(2, 3)]
    assert kinds(h) == {}
    h.append(wire_fetch(0, 1))
    assert kinds(h) == {"skip": 1}
    a = checker.analyze(h)["skip"][0]
    assert a["process"] == "wire cc-r0" and a["missed"] == [0]


def test_stale_marker_closes_two_transactions():
    h = txn_clean()
    # Partition 0: T1's commit marker missing, so T2's abort marker closes
    # x1 and y1 together (the later abort applied to the earlier txn).
    h[-2] = raw(0, [batch(0, ["x1"], 5, 0, True),
                    batch(2, ["y1"], 5, 0, True),
                    batch(3, [], 5, 0, True, "abort"),
                    batch(4, ["w1"], 5, 1, True),
                    batch(5, [], 5, 1, True, "abort")])
    found = checker.analyze(h)["stale-marker"]
    whys = sorted(a["why"] for a in found)
    assert whys == ["marker disagrees with the client's outcome",
                    "one marker closes 2 client transactions"], whys
    assert kinds(h) == {"stale-marker": 2}


def test_stale_marker_disagrees_with_client():
    h = txn_clean()
    # T2 was aborted for the client, the log committed it (and the final
    # read_committed read then holds y1: an aborted read too).
    h[-2]["batches"][3] = batch(3, [], 5, 0, True, "commit")
    k = kinds(h)
    assert k == {"stale-marker": 1}, k


def test_stale_marker_missing_for_a_committed_txn():
    h = txn_clean()
    del h[-1]["batches"][1]   # partition 1's commit marker of T1
    # Now x2 and z1 are closed by one marker.
    whys = sorted(a["why"] for a in checker.analyze(h)["stale-marker"])
    assert whys == ["one marker closes 2 client transactions"], whys
    h = txn_clean()
    del h[-1]["batches"][3]   # T3's commit marker on partition 1
    h[h.index(end("commit", "T3", "info", 2.1))] = end("commit", "T3", "ok",
                                                       2.1)
    whys = sorted(a["why"] for a in checker.analyze(h)["stale-marker"])
    assert whys == ["committed transaction with no marker in this "
                    "partition"], whys


def test_stale_marker_older_epoch_after_newer():
    h = txn_clean()
    h[-2]["batches"].append(batch(6, ["y9"], 5, 0, True))
    whys = [a["why"] for a in checker.analyze(h)["stale-marker"]]
    assert whys == ["data or marker of epoch 0 after a marker of epoch 1"]


def test_analyze_does_not_change_the_history():
    h = txn_clean()
    before = copy.deepcopy(h)
    checker.analyze(h)
    assert h == before
