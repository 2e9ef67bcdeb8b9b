#!/usr/bin/python3
"""groups.py — the consumer group benchmark (issue 3), with confluent-kafka.

Against a running broker:
  1. 8 consumers (threads) subscribe to a 64-partition topic that a
     background producer keeps feeding; measures from the last subscribe()
     to every member having received a message of its assignment ("all
     consuming"), and reports that minus the broker's configured
     group.initial.rebalance.delay.ms;
  2. one member leaves (close()); measures until the other 7 cover all 64
     partitions and each has received a message since its new assignment;
  3. the 8 members commit their positions asynchronously (at most 32
     requests in flight each) for a few seconds: OffsetCommit requests/s
     and partition offsets/s that the broker made durable.
Prints one JSON object.
"""
import argparse
import json
import threading
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


class Member:
    def __init__(self, args, group, topic, idx):
        self.idx = idx
        self.args = args
        self.topic = topic
        self.assigned_at = None
        self.first_msg_after_assign = None
        self.assignment = set()
        self.stop = threading.Event()
        self.commit_mode = threading.Event()
        self.commits_ok = 0
        self.offsets_ok = 0
        self.commit_errors = 0
        self.inflight = 0
        self.lock = threading.Lock()
        self.c = Consumer({
            "bootstrap.servers": args.bootstrap, "group.id": group,
            "client.id": "bench-%d" % idx,
            "auto.offset.reset": "latest", "enable.auto.commit": False,
            "session.timeout.ms": 10000, "heartbeat.interval.ms": 1000,
            "fetch.wait.max.ms": 50, "on_commit": self.on_commit,
        })
        self.thread = threading.Thread(target=self.run, daemon=True)

    def on_assign(self, c, parts):
        self.assignment = set(p.partition for p in parts)
        self.assigned_at = time.monotonic()
        self.first_msg_after_assign = None

    def on_revoke(self, c, parts):
        self.assignment = set()

    def on_commit(self, err, parts):
        with self.lock:
            self.inflight -= 1
            if err is None:
                self.commits_ok += 1
                self.offsets_ok += len(parts)
            else:
                self.commit_errors += 1

    def start(self):
        self.c.subscribe([self.topic], on_assign=self.on_assign,
                         on_revoke=self.on_revoke)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            m = self.c.poll(0.001 if self.commit_mode.is_set() else 0.02)
            if m is not None and not m.error():
                if self.first_msg_after_assign is None and self.assigned_at:
                    self.first_msg_after_assign = time.monotonic()
            while self.commit_mode.is_set() and self.assignment:
                with self.lock:
                    room = self.inflight < 32
                    if room:
                        self.inflight += 1
                if not room:
                    break
                if room:
                    offs = [TopicPartition(self.topic, p, 1 + int(time.time() * 1000) % 1000000)
                            for p in self.assignment]
                    try:
                        self.c.commit(offsets=offs, asynchronous=True)
                    except Exception:
                        with self.lock:
                            self.inflight -= 1
                            self.commit_errors += 1
        self.c.close()


def feeder(args, topic, stop):
    p = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 5})
    i = 0
    while not stop.is_set():
        for part in range(args.partitions):
            p.produce(topic, value=b"x" * 100, partition=part)
        i += 1
        p.poll(0)
        time.sleep(0.02)
    p.flush(10)


def wait(cond, timeout):
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            return False
        time.sleep(0.005)
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--consumers", type=int, default=8)
    ap.add_argument("--partitions", type=int, default=64)
    ap.add_argument("--delay-ms", type=int, default=3000,
                    help="the broker's --group-initial-rebalance-delay-ms")
    ap.add_argument("--commit-seconds", type=float, default=5)
    args = ap.parse_args()
    topic = "bench-groups-" + uuid.uuid4().hex[:6]
    group = "bench-group-" + uuid.uuid4().hex[:6]
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    admin.create_topics([NewTopic(topic, args.partitions, 1)])[topic].result(15)
    time.sleep(0.5)
    stop_feed = threading.Event()
    ft = threading.Thread(target=feeder, args=(args, topic, stop_feed), daemon=True)
    ft.start()
    time.sleep(0.5)
    out = {"consumers": args.consumers, "partitions": args.partitions,
           "initial_delay_ms": args.delay_ms}

    members = [Member(args, group, topic, i) for i in range(args.consumers)]
    for m in members:
        m.start()
    last_join = time.monotonic()

    def all_consuming(ms):
        union = set()
        for m in ms:
            if not m.assignment or m.first_msg_after_assign is None:
                return False
            union |= m.assignment
        return len(union) == args.partitions
    ok = wait(lambda: all_consuming(members), 60)
    done = max(m.first_msg_after_assign for m in members) if ok else None
    out["stable_ms_after_last_join"] = round((done - last_join) * 1000) if ok else None
    assigned = max(m.assigned_at for m in members) if ok else None
    out["assigned_ms_after_last_join"] = round((assigned - last_join) * 1000) if ok else None
    if ok:
        # Kafka's InitialDelayedJoin: members that arrive during the delay
        # extend it once more (they all do here), so the join phase waits
        # two delays before the rebalance proper starts.
        waited = 2 * args.delay_ms if args.delay_ms > 0 and args.consumers > 1 else args.delay_ms
        out["stable_ms_beyond_initial_delay"] = out["stable_ms_after_last_join"] - waited

    # one member leaves
    time.sleep(1)
    leaving = members.pop()
    t0 = time.monotonic()
    leaving.stop.set()
    leaving.thread.join()

    def reassigned():
        union = set()
        for m in members:
            if not m.assigned_at or m.assigned_at < t0 or m.first_msg_after_assign is None:
                return False
            union |= m.assignment
        return len(union) == args.partitions
    ok = wait(reassigned, 60)
    out["leave_rebalance_ms"] = round((max(m.first_msg_after_assign for m in members) - t0) * 1000) if ok else None

    # commits from the remaining members plus a rejoined eighth
    extra = Member(args, group, topic, args.consumers)
    extra.start()
    members.append(extra)
    wait(lambda: all_consuming(members) and all(m.assigned_at > extra.assigned_at - 5 for m in members), 60)
    time.sleep(0.5)
    base = [(m.commits_ok, m.offsets_ok) for m in members]
    for m in members:
        m.commit_mode.set()
    t0 = time.monotonic()
    time.sleep(args.commit_seconds)
    secs = time.monotonic() - t0
    reqs = sum(m.commits_ok - b[0] for m, b in zip(members, base))
    offs = sum(m.offsets_ok - b[1] for m, b in zip(members, base))
    for m in members:
        m.commit_mode.clear()
    out["commit_requests_per_s"] = round(reqs / secs)
    out["committed_offsets_per_s"] = round(offs / secs)
    out["commit_errors"] = sum(m.commit_errors for m in members)
    for m in members:
        m.stop.set()
    for m in members:
        m.thread.join(20)
    stop_feed.set()
    ft.join(20)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
