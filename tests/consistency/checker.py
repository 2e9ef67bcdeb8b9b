"""checker.py — finds Kafka consistency anomalies in a recorded history.

Pure functions over a list of events (dicts, one per line of a history
file written by history.py; the schema is in README.md): no clients, no
clock, no I/O except in main(). What counts as an anomaly follows the
Jepsen analysis of Bufstream 0.1 and Kafka (KAFKA-17754), seen through
confluent-kafka plus a raw read of the log with its control batches:

  lost-write        an acknowledged non-transactional value missing from
                    the final read
  lost-committed    a value of a transaction whose commit was acknowledged
                    missing from the final read_committed read
  duplicate         one value at two positions of the final read
  moved             one value seen at different positions by different
                    observers (acknowledgement, polls, final reads)
  inconsistent-offsets  two values at one partition and offset
  aborted-read      a value of a transaction known to be aborted (or of a
                    send that definitely failed) seen by read_committed
  torn              some but not all values of one transaction in the
                    final read_committed read
  beyond-lso        a read_committed poll that returned a transaction's
                    value before that transaction's commit was even sent
  nonmonotonic      within one consumer's reads of a partition since its
                    last assignment, an offset not above the previous one
  skip              within those reads, an offset jumped over that the
                    final read (of the same isolation level) shows holds
                    a value that consumer should have returned; or (with
                    run.py --wire) a Fetch answered from above the offset
                    asked while the final raw log holds records between
  stale-marker      in the raw log, a COMMIT/ABORT marker that closes
                    values of more than one client transaction, disagrees
                    with the outcome the client was told, or is missing
                    for a committed transaction; or data of a producer
                    epoch older than one that already wrote a marker

Transaction outcomes are three-way: committed (commit acknowledged),
aborted (abort acknowledged, or the commit failed with a definite error),
unknown (a timeout or fatal error on commit or abort, or no end at all).
Unknown transactions are never counted as lost or aborted reads; they may
be torn only by being partly visible.
"""
import collections
import json
import sys

KINDS = ("lost-write", "lost-committed", "duplicate", "moved",
         "inconsistent-offsets", "aborted-read", "torn", "beyond-lso",
         "nonmonotonic", "skip", "stale-marker")


def load(path):
    """The events of a history file (JSON lines), in file order."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _anomaly(kind, **detail):
    detail["kind"] = kind
    return detail


# --------------------------------------------------------------------------
# Views over the history

def txn_outcomes(events):
    """{txn: "committed" | "aborted" | "unknown"} for every transaction
    that began or sent a value."""
    out = {}
    for e in events:
        op = e["op"]
        if op in ("begin", "send") and e.get("txn"):
            out.setdefault(e["txn"], "unknown")
        elif op in ("commit", "abort"):
            txn = e["txn"]
            out.setdefault(txn, "unknown")
            r = e["result"]
            if op == "commit" and r == "ok":
                out[txn] = "committed"
            elif op == "abort" and r == "ok" and out[txn] != "committed":
                out[txn] = "aborted"
            elif op == "commit" and r == "fail" and out[txn] == "unknown":
                # A definite refusal: nothing of it may ever be visible.
                out[txn] = "aborted"
    return out


def sends(events):
    """{value: send event} (the one with a completion)."""
    return {e["value"]: e for e in events if e["op"] == "send"}


def txn_values(events):
    """{txn: [values sent in it]}."""
    out = collections.defaultdict(list)
    for e in events:
        if e["op"] == "send" and e.get("txn"):
            out[e["txn"]].append(e["value"])
    return out


def commit_invoked(events):
    """{txn: time the first commit of it was invoked}."""
    out = {}
    for e in events:
        if e["op"] == "commit":
            out.setdefault(e["txn"], e["t0"])
    return out


def final_reads(events, iso):
    """{partition: [(offset, value)]} of the final read at this isolation
    level ("rc" from the client, "raw" for the raw log's data records),
    or None when the history has no such read."""
    out = None
    for e in events:
        if e["op"] == "final" and e["iso"] == iso:
            out = out if out is not None else {}
            out[e["partition"]] = [tuple(r) for r in e["reads"]]
        elif e["op"] == "raw" and iso == "raw":
            out = out if out is not None else {}
            out[e["partition"]] = [
                (o, v) for b in e["batches"] if not b.get("control")
                for o, v in b["records"]]
    return out


def _observations(events):
    """Every (source, partition, offset, value) any observer reported."""
    for e in events:
        op = e["op"]
        off = e.get("offset")
        if op == "send" and e["result"] == "ok" and off is not None \
                and off >= 0:
            yield ("ack %s" % e["process"], e["partition"], e["offset"],
                   e["value"])
        elif op == "poll":
            for p, o, v in e["reads"]:
                yield ("poll %s" % e["process"], p, o, v)
    for iso in ("rc", "raw"):
        for p, reads in (final_reads(events, iso) or {}).items():
            for o, v in reads:
                yield ("final %s" % iso, p, o, v)


# --------------------------------------------------------------------------
# The checks, one function per family

def check_lost(events):
    out = []
    raw = final_reads(events, "raw")
    rc = final_reads(events, "rc")
    final = rc if rc is not None else raw
    if final is None:
        return out
    seen = {v for reads in final.values() for _, v in reads}
    seen_raw = {v for reads in (raw or {}).values() for _, v in reads}
    outcomes = txn_outcomes(events)
    for e in events:
        if e["op"] != "send":
            continue
        if e.get("txn"):
            if outcomes.get(e["txn"]) == "committed" and rc is not None \
                    and e["value"] not in seen:
                out.append(_anomaly("lost-committed", value=e["value"],
                                    txn=e["txn"], partition=e["partition"],
                                    offset=e.get("offset")))
        elif e["result"] == "ok" and e["value"] not in seen and \
                e["value"] not in seen_raw:
            out.append(_anomaly("lost-write", value=e["value"],
                                partition=e["partition"],
                                offset=e.get("offset"),
                                process=e["process"], t=e["t"]))
    return out


def check_positions(events):
    """duplicate, moved and inconsistent-offsets."""
    out = []
    for iso in ("rc", "raw"):
        final = final_reads(events, iso)
        if final is None:
            continue
        where = collections.defaultdict(list)
        for p, reads in final.items():
            for o, v in reads:
                where[v].append((p, o))
        for v, at in sorted(where.items()):
            if len(at) > 1:
                out.append(_anomaly("duplicate", value=v, read=iso,
                                    positions=sorted(at)))
    at_offset = collections.defaultdict(dict)   # (p, o) -> {value: source}
    positions = collections.defaultdict(dict)   # value -> {(p, o): source}
    for src, p, o, v in _observations(events):
        at_offset[(p, o)].setdefault(v, src)
        positions[v].setdefault((p, o), src)
    for (p, o), vals in sorted(at_offset.items()):
        if len(vals) > 1:
            out.append(_anomaly("inconsistent-offsets", partition=p, offset=o,
                                values=sorted(vals.items())))
    dup_values = {a["value"] for a in out if a["kind"] == "duplicate"}
    for v, at in sorted(positions.items()):
        if len(at) > 1 and v not in dup_values:
            out.append(_anomaly("moved", value=v, positions=sorted(
                [list(k), s] for k, s in at.items())))
    return out


def check_aborted_reads(events):
    out = []
    outcomes = txn_outcomes(events)
    s = sends(events)

    def aborted(v):
        e = s.get(v)
        if e is None:
            return False
        if e.get("txn"):
            return outcomes.get(e["txn"]) == "aborted"
        return e["result"] == "fail"
    for e in events:
        if e["op"] == "poll" and e["iso"] == "rc":
            for p, o, v in e["reads"]:
                if aborted(v):
                    out.append(_anomaly("aborted-read", value=v, partition=p,
                                        offset=o, process=e["process"],
                                        t=e["t"], txn=s[v].get("txn")))
    for p, reads in (final_reads(events, "rc") or {}).items():
        for o, v in reads:
            if aborted(v):
                out.append(_anomaly("aborted-read", value=v, partition=p,
                                    offset=o, process="final",
                                    txn=s[v].get("txn")))
    return out


def check_torn(events):
    rc = final_reads(events, "rc")
    if rc is None:
        return []
    seen = {v for reads in rc.values() for _, v in reads}
    outcomes = txn_outcomes(events)
    out = []
    for txn, vals in sorted(txn_values(events).items()):
        vis = [v for v in vals if v in seen]
        if vis and len(vis) < len(vals):
            out.append(_anomaly("torn", txn=txn, outcome=outcomes.get(txn),
                                visible=vis,
                                missing=[v for v in vals if v not in seen]))
    return out


def check_beyond_lso(events):
    """A read_committed poll completed at t returned a value of a
    transaction whose commit had not been invoked by t (or never was, and
    the transaction did not end as aborted: aborted reads are their own
    kind). Only the poll's completion time and the commit's invocation
    time are compared, both taken by this process's clock, so a poll that
    raced with the commit request is never counted."""
    out = []
    s = sends(events)
    outcomes = txn_outcomes(events)
    invoked = commit_invoked(events)
    for e in events:
        if e["op"] != "poll" or e["iso"] != "rc":
            continue
        for p, o, v in e["reads"]:
            se = s.get(v)
            if se is None or not se.get("txn"):
                continue
            txn = se["txn"]
            if outcomes.get(txn) == "aborted":
                continue
            t_commit = invoked.get(txn)
            if t_commit is None or e["t"] < t_commit:
                out.append(_anomaly("beyond-lso", value=v, txn=txn,
                                    partition=p, offset=o,
                                    process=e["process"], poll_t=e["t"],
                                    commit_invoked_t=t_commit))
    return out


def _visible_at(events, iso):
    """{(p, o): value} a consumer at this isolation level must return
    when reading across that offset, from the final read."""
    if iso == "rc":
        final = final_reads(events, "rc")
    else:
        final = final_reads(events, "raw")
    if final is None:
        return None
    return {(p, o): v for p, reads in final.items() for o, v in reads}


def check_monotonic(events):
    out = []
    last = {}   # (process, partition) -> offset of the previous read
    visible = {iso: _visible_at(events, iso) for iso in ("rc", "ru")}
    for e in events:
        if e["op"] == "assign":
            for k in [k for k in last if k[0] == e["process"]]:
                del last[k]
        elif e["op"] == "poll":
            vis = visible.get(e["iso"])
            for p, o, v in e["reads"]:
                k = (e["process"], p)
                prev = last.get(k)
                if prev is not None and o <= prev:
                    out.append(_anomaly("nonmonotonic", process=e["process"],
                                        partition=p, offset=o, previous=prev,
                                        value=v, t=e["t"]))
                elif prev is not None and vis is not None and o > prev + 1:
                    missed = [(x, vis[(p, x)]) for x in range(prev + 1, o)
                              if (p, x) in vis]
                    if missed:
                        out.append(_anomaly("skip", process=e["process"],
                                            partition=p, previous=prev,
                                            offset=o, missed=missed[:5],
                                            t=e["t"]))
                last[k] = o
    return out


def check_markers(events):
    """The raw log's markers against the client's transactions."""
    raws = [e for e in events if e["op"] == "raw"]
    if not raws:
        return []
    s = sends(events)
    outcomes = txn_outcomes(events)
    out = []
    closed = collections.defaultdict(set)   # txn -> partitions with a marker
    for e in raws:
        p = e["partition"]
        open_vals = collections.defaultdict(list)   # pid -> values
        marker_epoch = {}                           # pid -> newest epoch
        for b in e["batches"]:
            pid, epoch = b.get("pid", -1), b.get("epoch", -1)
            if not b.get("txnl"):
                continue
            if pid in marker_epoch and epoch < marker_epoch[pid]:
                out.append(_anomaly("stale-marker", partition=p, pid=pid,
                                    why="data or marker of epoch %d after a "
                                    "marker of epoch %d" % (
                                        epoch, marker_epoch[pid]),
                                    offset=b["base"]))
            if not b.get("control"):
                open_vals[pid].extend(v for _, v in b["records"])
                continue
            marker_epoch[pid] = max(epoch, marker_epoch.get(pid, epoch))
            vals = open_vals.pop(pid, [])
            txns = sorted({s[v]["txn"] for v in vals
                           if v in s and s[v].get("txn")})
            for txn in txns:
                closed[txn].add(p)
            if len(txns) > 1:
                out.append(_anomaly("stale-marker", partition=p, pid=pid,
                                    offset=b["base"], marker=b["control"],
                                    why="one marker closes %d client "
                                    "transactions" % len(txns), txns=txns))
            for txn in txns:
                told = outcomes.get(txn)
                if (b["control"] == "commit" and told == "aborted") or \
                        (b["control"] == "abort" and told == "committed"):
                    out.append(_anomaly("stale-marker", partition=p, pid=pid,
                                        offset=b["base"], marker=b["control"],
                                        txn=txn, told=told,
                                        why="marker disagrees with the "
                                        "client's outcome"))
        for pid, vals in open_vals.items():
            txns = sorted({s[v]["txn"] for v in vals
                           if v in s and s[v].get("txn")})
            for txn in txns:
                if outcomes.get(txn) == "committed":
                    out.append(_anomaly("stale-marker", partition=p, pid=pid,
                                        txn=txn, why="committed transaction "
                                        "with no marker in this partition"))
    return out


def check_wire(events):
    """Fetch responses seen by the recording proxies (run.py --wire):
    answered from an offset above the one asked while the final raw log
    holds records in between. The broker's skip, whatever the client
    did next."""
    raws = [e for e in events if e["op"] == "raw"]
    held = {(e["partition"], o) for e in raws for b in e["batches"]
            for o in ([b["base"]] if b.get("control") else
                      [x for x, _ in b["records"]])}
    out = []
    for e in events:
        if e["op"] != "wire-fetch" or e.get("first") is None or e.get("error"):
            continue
        p, asked, first = e["partition"], e["asked"], e["first"]
        missed = [o for o in range(asked, first) if (p, o) in held]
        if missed:
            out.append(_anomaly("skip", process="wire %s" % e["process"],
                                partition=p, asked=asked, first=first,
                                missed=missed[:5], t=e["t"]))
    return out


CHECKS = (check_lost, check_positions, check_aborted_reads, check_torn,
          check_beyond_lso, check_monotonic, check_markers, check_wire)


def analyze(events):
    """{kind: [anomaly]} for every kind in KINDS (empty lists included)."""
    found = {k: [] for k in KINDS}
    for check in CHECKS:
        for a in check(events):
            found[a["kind"]].append(a)
    return found


def summary(events):
    """Counts describing the history (not anomalies)."""
    c = collections.Counter()
    outcomes = txn_outcomes(events)
    polled = set()
    for e in events:
        op = e["op"]
        if op == "send":
            kind = "txn " if e.get("txn") else ""
            c["sends %s%s" % (kind, e["result"])] += 1
        elif op == "poll":
            c["polls %s" % e["iso"]] += 1
            c["values read %s" % e["iso"]] += len(e["reads"])
            polled.update(v for _, _, v in e["reads"])
        elif op == "nemesis":
            c["nemesis %s" % e["what"]] += 1
        elif op == "consumer-error":
            c["consumer errors"] += 1
    for o in outcomes.values():
        c["txns %s" % o] += 1
    for iso in ("rc", "raw"):
        f = final_reads(events, iso)
        if f is not None:
            c["final %s values" % iso] = sum(len(r) for r in f.values())
    ok = [e["value"] for e in events if e["op"] == "send"
          and e["result"] == "ok" and not e.get("txn")]
    c["acked values never polled (not an anomaly)"] = sum(
        1 for v in ok if v not in polled)
    return dict(sorted(c.items()))


# Kinds whose first example is printed with its context (context()).
CONTEXT_KINDS = ("aborted-read", "beyond-lso", "skip", "nonmonotonic",
                 "lost-committed", "torn")


def report(events, out=sys.stdout, show=5):
    """Prints the summary and the anomaly counts (with up to show
    examples of each kind); returns the total number of anomalies."""
    found = analyze(events)
    print("history: %d events" % len(events), file=out)
    for k, v in summary(events).items():
        print("  %-44s %d" % (k, v), file=out)
    print("anomalies:", file=out)
    total = 0
    for k in KINDS:
        n = len(found[k])
        total += n
        print("  %-22s %d" % (k, n), file=out)
        for i, a in enumerate(found[k][:show]):
            print("      %s" % json.dumps(a, sort_keys=True)[:400], file=out)
            if i == 0 and k in CONTEXT_KINDS:
                context(events, a, out)
    print("total anomalies: %d" % total, file=out)
    return total


def _raw_batch_text(b):
    what = b.get("control") or ",".join(v for _, v in b.get("records", []))
    return "%d..%d pid %d/%d%s %s" % (
        b["base"], b.get("last", b["base"]), b.get("pid", -1),
        b.get("epoch", -1), " txnl" if b.get("txnl") else "", what)


def context(events, a, out=sys.stdout, span=8):
    """What a partition anomaly needs to be explained from a CI log
    alone: the raw log around its offset (every batch with its producer,
    epoch and marker), the events of the value's transaction, and the
    anomalous poll's reads of that partition."""
    p, off = a.get("partition"), a.get("offset")
    if p is None or off is None:
        return
    s = sends(events)
    txn = a.get("txn") or (s.get(a.get("value")) or {}).get("txn")
    print("    context of %s at partition %d offset %d:" % (a["kind"], p, off),
          file=out)
    for e in events:
        if e["op"] == "raw" and e["partition"] == p:
            near = [b for b in e["batches"]
                    if b.get("last", b["base"]) >= off - span
                    and b["base"] <= off + 4 * span]
            print("      raw log (end %d):" % e["end"], file=out)
            for b in near[:40]:
                print("        " + _raw_batch_text(b)[:160], file=out)
    if txn:
        print("      events of %s:" % txn, file=out)
        for e in events:
            if e.get("txn") == txn:
                print("        " + json.dumps(e, sort_keys=True)[:240], file=out)
    for e in events:
        if e["op"] == "poll" and e.get("process") == a.get("process") and \
                abs(e["t"] - a.get("t", e["t"])) < 1e-9:
            reads = [o for q, o, _ in e["reads"] if q == p]
            print("      the poll's reads of partition %d: %s" % (
                p, reads[:20]), file=out)


def main(argv):
    if len(argv) != 2:
        print("usage: checker.py HISTORY.jsonl", file=sys.stderr)
        return 2
    return 1 if report(load(argv[1])) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
