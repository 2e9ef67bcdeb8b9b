// transactions.js — kafkajs transactional producer for Sluice's
// integration tests (issue 14).
//
// Usage: node transactions.js BOOTSTRAP TOPIC TRANSACTIONAL_ID
// Runs three transactions on partition 0 and 1 of TOPIC: "c0".."c3"
// committed, "a0".."a3" aborted, "d0".."d1" committed, then a second
// producer with the same transactional id, after which the first one's
// next transaction must be refused (fenced). Prints one JSON line
// {"fenced": true|false, "error": "..."} and exits 0 when every step
// went as Kafka's protocol says, 1 otherwise.
'use strict';
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const { Kafka, logLevel } = require('kafkajs');

async function txn(producer, topic, values, commit) {
	const t = await producer.transaction();
	await t.send({
		topic,
		messages: values.map((v, i) => ({ value: v, partition: i % 2 })),
	});
	if (commit)
		await t.commit();
	else
		await t.abort();
}

async function main() {
	const [bootstrap, topic, txnId] = process.argv.slice(2);
	if (!bootstrap || !topic || !txnId) {
		console.error('usage: transactions.js BOOTSTRAP TOPIC TRANSACTIONAL_ID');
		process.exit(2);
	}
	const kafka = new Kafka({
		clientId: 'sluice-it-kafkajs-txn',
		brokers: [bootstrap],
		logLevel: logLevel.NOTHING,
		retry: { retries: 5 },
	});
	const opts = { transactionalId: txnId, idempotent: true, maxInFlightRequests: 1 };
	const first = kafka.producer(opts);
	await first.connect();
	await txn(first, topic, ['c0', 'c1', 'c2', 'c3'], true);
	await txn(first, topic, ['a0', 'a1', 'a2', 'a3'], false);
	await txn(first, topic, ['d0', 'd1'], true);
	// A second instance bumps the epoch: the first is a zombie.
	const second = kafka.producer(opts);
	await second.connect();
	await txn(second, topic, ['e0'], true);
	let fenced = false, error = '';
	try {
		await txn(first, topic, ['z0'], true);
	} catch (e) {
		fenced = true;
		error = e.type || e.name || String(e);
	}
	process.stdout.write(JSON.stringify({ fenced, error }) + '\n');
	await first.disconnect().catch(() => {});
	await second.disconnect();
	process.exit(fenced ? 0 : 1);
}

main().catch((e) => {
	console.error(e && e.stack ? e.stack : e);
	process.exit(1);
});
