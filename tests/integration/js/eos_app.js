// eos_app.js — eos_app.py's consume-transform-produce application with
// kafkajs, for test_eos_pipeline.py (same arguments, same progress lines):
//
//   node eos_app.js BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID BATCH STALL_FILE
//
// A consumer of GROUP (read_committed, no auto commit) and a transactional
// producer: per transaction at most BATCH records of one input partition go
// to the same partition of OUTPUT with b"out:" before the value, the next
// offset goes with transaction.sendOffsets (TxnOffsetCommit v0: kafkajs
// sends no member information), then commit. While STALL_FILE exists, a
// transaction with its records acknowledged and its offsets sent waits
// before committing, after printing {"stalled": true}. A failed
// transaction is aborted and the batch thrown back to kafkajs, which
// fetches again from the group's offsets. Exits 0 once the committed
// positions reach INPUT's end offsets (read at start).
'use strict';
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const fs = require('fs');
const { Kafka, logLevel } = require('kafkajs');

const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
	const [bootstrap, src, dst, group, txnId, batchArg, stall] = process.argv.slice(2);
	const batchMax = Number(batchArg);
	const kafka = new Kafka({
		clientId: 'sluice-it-kafkajs-eos',
		brokers: [bootstrap],
		logLevel: logLevel.NOTHING,
		retry: { retries: 20, initialRetryTime: 100, maxRetryTime: 1000 },
	});
	const admin = kafka.admin();
	await admin.connect();
	const ends = {};
	for (const p of await admin.fetchTopicOffsets(src))
		ends[p.partition] = Number(p.high);
	// Before the offsets are read: fences a previous instance and aborts
	// its open transaction (InitProducerId is retried until it is).
	const producer = kafka.producer({ transactionalId: txnId, idempotent: true,
		maxInFlightRequests: 1, transactionTimeout: 30000 });
	await producer.connect();
	// Where the previous instances got to: a partition they finished gets
	// no batch here.
	const committed = {};
	for (const t of await admin.fetchOffsets({ groupId: group, topics: [src] }))
		for (const p of t.partitions)
			committed[p.partition] = Math.max(Number(p.offset), 0);
	await admin.disconnect();
	const consumer = kafka.consumer({ groupId: group, readUncommitted: false,
		sessionTimeout: 6000, heartbeatInterval: 500, maxWaitTimeInMs: 100 });
	await consumer.connect();
	await consumer.subscribe({ topic: src, fromBeginning: true });
	let total = 0;
	let finish;
	const finished = new Promise((r) => { finish = r; });
	const done = () => Object.keys(ends).every((p) => (committed[p] || 0) >= ends[p]);
	if (done())
		finish();
	await consumer.run({
		autoCommit: false,
		eachBatchAutoResolve: false,
		eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
			const msgs = batch.messages;
			for (let i = 0; i < msgs.length; i += batchMax) {
				const chunk = msgs.slice(i, i + batchMax);
				const next = Number(chunk[chunk.length - 1].offset) + 1;
				const t = await producer.transaction();
				try {
					await t.send({ topic: dst, messages: chunk.map((m) => ({
						key: m.key, partition: batch.partition,
						value: Buffer.concat([Buffer.from('out:'), m.value]) })) });
					await t.sendOffsets({ consumerGroupId: group, topics: [{ topic: src,
						partitions: [{ partition: batch.partition, offset: String(next) }] }] });
					if (fs.existsSync(stall)) {
						say({ stalled: true });
						while (fs.existsSync(stall))
							await sleep(50);
					}
					await t.commit();
				} catch (e) {
					say({ aborting: String(e && e.type || e) });
					await t.abort().catch(() => {});
					throw e;
				}
				resolveOffset(chunk[chunk.length - 1].offset);
				committed[batch.partition] = next;
				total += chunk.length;
				say({ committed: total, pos: committed });
				await heartbeat();
			}
			if (done())
				finish();
		},
	});
	await finished;
	say({ done: true });
	await consumer.disconnect();
	await producer.disconnect();
	process.exit(0);
}

main().catch((e) => {
	say({ fatal: String(e && e.stack ? e.stack : e) });
	process.exit(3);
});
