// produce.js — kafkajs producer driver for Sluice's integration tests.
//
// Usage: node produce.js BOOTSTRAP TOPIC MESSAGES.jsonl [gzip|none] [CHUNK]
// Each input line is {"k": "key", "v": "<hex value>", "h": [["name",
// "<hex>"], ...], "ts": <ms>, "p": <partition, optional>}. Messages are sent
// in order, CHUNK (default 5000) per send() call, each call awaited, so the
// per-partition order is the file order. Prints one JSON line per send()
// result record ({"topicName","partition","baseOffset",...}) to stdout and
// exits 0 on success, 1 on any error. With SLUICE_JS_SSL_CA=PEM it connects
// over TLS, trusting that CA; with SLUICE_JS_SASL=MECHANISM:USER:PASSWORD
// it authenticates with SASL (plain, scram-sha-256, scram-sha-512).
'use strict';
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const fs = require('fs');
const readline = require('readline');
const clientEnv = require('./client_env');
const { Kafka, CompressionTypes, logLevel } = require('kafkajs');

async function main() {
	const [bootstrap, topic, file, codec = 'none', chunkArg = '5000'] =
		process.argv.slice(2);
	if (!bootstrap || !topic || !file) {
		console.error('usage: produce.js BOOTSTRAP TOPIC FILE [gzip|none] [CHUNK]');
		process.exit(2);
	}
	const chunk = parseInt(chunkArg, 10);
	const compression = codec === 'gzip' ? CompressionTypes.GZIP :
		CompressionTypes.None;
	const kafka = new Kafka({
		clientId: 'sluice-it-kafkajs',
		brokers: [bootstrap],
		logLevel: logLevel.WARN,
		retry: { retries: 3 },
		ssl: clientEnv.ssl(),
		sasl: clientEnv.sasl(),
	});
	const producer = kafka.producer({ allowAutoTopicCreation: false });
	await producer.connect();
	const rl = readline.createInterface({ input: fs.createReadStream(file) });
	let batch = [];
	const flush = async () => {
		if (batch.length === 0)
			return;
		const res = await producer.send({
			topic, acks: -1, timeout: 30000, compression, messages: batch,
		});
		for (const r of res)
			process.stdout.write(JSON.stringify(r) + '\n');
		batch = [];
	};
	for await (const line of rl) {
		if (!line)
			continue;
		const m = JSON.parse(line);
		const headers = {};
		for (const [name, hex] of m.h || [])
			headers[name] = Buffer.from(hex, 'hex');
		const msg = {
			key: m.k === null ? null : Buffer.from(m.k, 'utf8'),
			value: Buffer.from(m.v, 'hex'),
			headers,
			timestamp: String(m.ts),
		};
		if (m.p !== undefined)
			msg.partition = m.p;
		batch.push(msg);
		if (batch.length >= chunk)
			await flush();
	}
	await flush();
	await producer.disconnect();
}

main().catch((e) => {
	console.error('kafkajs produce failed:', e && e.stack ? e.stack : e);
	process.exit(1);
});
