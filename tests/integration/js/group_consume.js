// group_consume.js — kafkajs consumer-group driver for Sluice's integration
// tests.
//
// Usage: node group_consume.js BOOTSTRAP TOPIC GROUP EXPECTED [MEMBERS]
// Starts MEMBERS (default 2) kafkajs consumers in one group on TOPIC (from
// the beginning), consumes until EXPECTED distinct (partition, offset)
// pairs were seen, commits, disconnects, and prints one JSON line:
// {"unique": n, "per_member": [...], "partitions": [[...], ...]}.
// Exits 1 on error or if EXPECTED is not reached within 60 s. With
// SLUICE_JS_SSL_CA=PEM it connects over TLS, trusting that CA; with
// SLUICE_JS_SASL=MECHANISM:USER:PASSWORD it authenticates with SASL.
'use strict';
const clientEnv = require('./client_env');
const { Kafka, logLevel } = require('kafkajs');

async function main() {
	const [bootstrap, topic, group, expectedArg, membersArg = '2'] =
		process.argv.slice(2);
	if (!bootstrap || !topic || !group || !expectedArg) {
		console.error('usage: group_consume.js BOOTSTRAP TOPIC GROUP EXPECTED [MEMBERS]');
		process.exit(2);
	}
	const expected = parseInt(expectedArg, 10);
	const members = parseInt(membersArg, 10);
	const kafka = new Kafka({
		clientId: 'sluice-it-kafkajs-group',
		brokers: [bootstrap],
		logLevel: logLevel.WARN,
		ssl: clientEnv.ssl(),
		sasl: clientEnv.sasl(),
	});
	const seen = new Set();
	const perMember = new Array(members).fill(0);
	const parts = [];
	const consumers = [];
	let done;
	const finished = new Promise((resolve) => { done = resolve; });
	for (let i = 0; i < members; i++) {
		const c = kafka.consumer({ groupId: group, sessionTimeout: 10000,
			heartbeatInterval: 500, rebalanceTimeout: 10000 });
		parts.push(new Set());
		await c.connect();
		await c.subscribe({ topic, fromBeginning: true });
		await c.run({
			eachMessage: async ({ partition, message }) => {
				perMember[i]++;
				parts[i].add(partition);
				seen.add(partition + ':' + message.offset);
				if (seen.size >= expected)
					done();
			},
		});
		consumers.push(c);
	}
	const timer = setTimeout(() => {
		console.error('timed out with ' + seen.size + ' of ' + expected);
		process.exit(1);
	}, 60000);
	await finished;
	clearTimeout(timer);
	for (const c of consumers)
		await c.disconnect();
	console.log(JSON.stringify({ unique: seen.size, per_member: perMember,
		partitions: parts.map((s) => [...s].sort((a, b) => a - b)) }));
}

main().catch((e) => {
	console.error(e);
	process.exit(1);
});
