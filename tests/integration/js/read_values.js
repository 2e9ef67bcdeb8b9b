// read_values.js — reads one topic from the beginning with a kafkajs
// consumer and prints the values it was given, for the transaction tests.
//
// Usage: node read_values.js BOOTSTRAP TOPIC EXPECTED [committed|uncommitted]
// Consumes (read_committed unless told: kafkajs's default) until EXPECTED
// records arrived, then 2 s more (so records that should have been
// skipped, aborted or control ones, would show), and prints one JSON
// line: {"values": ["...", ...]} in arrival order. Exits 1 on error or
// if EXPECTED is not reached within 60 s.
'use strict';
const { Kafka, logLevel } = require('kafkajs');

async function main() {
	const [bootstrap, topic, expectedArg, isolation = 'committed'] = process.argv.slice(2);
	if (!bootstrap || !topic || !expectedArg) {
		console.error('usage: read_values.js BOOTSTRAP TOPIC EXPECTED [committed|uncommitted]');
		process.exit(2);
	}
	const expected = parseInt(expectedArg, 10);
	const kafka = new Kafka({ clientId: 'sluice-it-read-values', brokers: [bootstrap],
		logLevel: logLevel.WARN });
	const c = kafka.consumer({ groupId: 'read-values-' + Date.now(),
		readUncommitted: isolation === 'uncommitted', maxWaitTimeInMs: 100 });
	const values = [];
	let done;
	const reached = new Promise((resolve) => { done = resolve; });
	await c.connect();
	await c.subscribe({ topic, fromBeginning: true });
	await c.run({
		eachMessage: async ({ message }) => {
			values.push(message.value === null ? null : message.value.toString());
			if (values.length >= expected)
				done();
		},
	});
	const timer = setTimeout(() => {
		console.error('timed out with ' + JSON.stringify(values));
		process.exit(1);
	}, 60000);
	await reached;
	clearTimeout(timer);
	await new Promise((resolve) => setTimeout(resolve, 2000));
	await c.disconnect();
	console.log(JSON.stringify({ values }));
}

main().catch((e) => {
	console.error(e);
	process.exit(1);
});
