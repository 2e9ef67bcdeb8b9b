// delete_records.js — kafkajs admin.deleteTopicRecords for Sluice's
// integration tests.
//
// Usage: node delete_records.js BOOTSTRAP TOPIC PARTITION:OFFSET...
// Prints {"ok": true} or {"error": "<name>", "codes": [...]} on one line
// and exits 0; exits 1 when kafkajs fails otherwise.
'use strict';
const { Kafka, logLevel } = require('kafkajs');

async function main() {
	const [bootstrap, topic, ...specs] = process.argv.slice(2);
	if (!bootstrap || !topic || specs.length === 0) {
		console.error('usage: delete_records.js BOOTSTRAP TOPIC PARTITION:OFFSET...');
		process.exit(2);
	}
	const partitions = specs.map((s) => {
		const [p, o] = s.split(':');
		return { partition: parseInt(p, 10), offset: o };
	});
	const kafka = new Kafka({
		clientId: 'sluice-it-kafkajs',
		brokers: [bootstrap],
		logLevel: logLevel.NOTHING,
		retry: { retries: 0 },
	});
	const admin = kafka.admin();
	await admin.connect();
	try {
		// kafkajs wants the topic's metadata loaded first.
		await admin.fetchTopicMetadata({ topics: [topic] });
		await admin.deleteTopicRecords({ topic, partitions });
		process.stdout.write(JSON.stringify({ ok: true }) + '\n');
	} catch (err) {
		// The retrier wraps what the broker answered.
		const e = err.partitions ? err : (err.cause || err);
		const codes = (e.partitions || []).map((p) => p.error && p.error.type);
		process.stdout.write(JSON.stringify({ error: e.name, codes }) + '\n');
	} finally {
		await admin.disconnect();
	}
}

main().catch((e) => {
	console.error(e);
	process.exit(1);
});
