"""eos_app.py — a consume-transform-produce application in transactions
(confluent-kafka), run as its own process by test_eos_pipeline.py so the
test can kill -9 it.

    eos_app.py BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID BATCH STALL_FILE

It reads INPUT with a read_committed consumer of GROUP (subscribe, static
membership, no auto commit) and, per transaction of at most BATCH records,
produces each record to the same partition of OUTPUT with its value
prefixed by b"out:", sends the consumed offsets to the transaction
(send_offsets_to_transaction with the consumer's group metadata) and
commits. An abortable error aborts the transaction and rewinds the
consumer to the group's committed offsets; a fatal one (fenced) exits 3.

Each committed transaction prints a JSON line {"committed": n, "pos":
{partition: next offset}}. While STALL_FILE exists, a transaction whose
records are produced and acknowledged and its offsets sent waits before
committing, after printing {"stalled": true}: the test kills things then, with a
transaction certainly open. The app exits 0 once the committed positions
reach INPUT's end offsets (read at start)."""
import json
import os
import sys
import time

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaException,
                             Producer, TopicPartition)


def say(**kw):
    print(json.dumps(kw), flush=True)


def main():
    bootstrap, src, dst, group, txn_id, batch, stall = sys.argv[1:8]
    batch = int(batch)
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id,
                  "linger.ms": 5, "transaction.timeout.ms": 30000})
    # Before the consumer reads its offsets: fences a previous instance and
    # aborts its open transaction, whose pending offsets would otherwise
    # keep a read_committed OffsetFetch waiting (UNSTABLE_OFFSET_COMMIT).
    p.init_transactions(60)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "group.instance.id": "eos-app",
                  "isolation.level": "read_committed",
                  "enable.auto.commit": False,
                  "auto.offset.reset": "earliest",
                  "session.timeout.ms": 10000,
                  "enable.partition.eof": False,
                  "fetch.wait.max.ms": 100})
    md = c.list_topics(src, timeout=30).topics[src]
    ends = {}
    for part in md.partitions:
        ends[part] = c.get_watermark_offsets(TopicPartition(src, part),
                                             timeout=30)[1]
    # The next offset to process per partition as of the last commit (or
    # as read from the group): where an abort rewinds to.
    committed = {}

    def on_assign(consumer, tps):
        for tp in consumer.committed(tps, timeout=60):
            committed[tp.partition] = max(tp.offset, 0)
        consumer.assign([TopicPartition(src, tp.partition,
                                        committed[tp.partition] or OFFSET_BEGINNING)
                         for tp in tps])

    c.subscribe([src], on_assign=on_assign)
    committed_total = 0

    def rewind():
        for tp in c.assignment():
            c.seek(TopicPartition(src, tp.partition,
                                  committed[tp.partition] or OFFSET_BEGINNING))

    def done():
        return all(committed.get(part, -1) >= end for part, end in ends.items())

    def retrying(fn):
        while True:
            try:
                return fn()
            except KafkaException as e:
                if not e.args[0].retriable():
                    raise
                time.sleep(0.1)

    while not (len(committed) == len(ends) and done()):
        msgs = [m for m in c.consume(batch, 0.5) if m.error() is None]
        if not msgs:
            continue
        next_pos = {}
        for m in msgs:
            next_pos[m.partition()] = m.offset() + 1
        try:
            p.begin_transaction()
            for m in msgs:
                p.produce(dst, key=m.key(), value=b"out:" + m.value(),
                          partition=m.partition())
            p.flush(60)
            offsets = [TopicPartition(src, part, off)
                       for part, off in sorted(next_pos.items())]
            retrying(lambda: p.send_offsets_to_transaction(
                offsets, c.consumer_group_metadata(), 60))
            if os.path.exists(stall):
                say(stalled=True)
                while os.path.exists(stall):
                    time.sleep(0.05)
            retrying(lambda: p.commit_transaction(60))
        except KafkaException as e:
            err = e.args[0]
            if err.fatal() or not err.txn_requires_abort():
                say(fatal=str(err))
                sys.exit(3)
            say(aborting=str(err))
            retrying(lambda: p.abort_transaction(60))
            rewind()
            continue
        committed.update(next_pos)
        committed_total += len(msgs)
        say(committed=committed_total, pos=committed)
    say(done=True)
    c.close()


if __name__ == "__main__":
    main()
