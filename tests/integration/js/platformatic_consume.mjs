// platformatic_consume.mjs — a consumer of @platformatic/kafka (a client
// that uses incremental fetch sessions, KIP-227) for Sluice's integration
// tests.
//
// Usage: node platformatic_consume.mjs BOOTSTRAP TOPIC EXPECTED
// Consumes TOPIC from the beginning in a group of its own until EXPECTED
// distinct (partition, offset) pairs were seen, then prints one JSON line
// {"unique": n, "values": {"partition:offset": value}} and exits 0; exits 1
// if EXPECTED is not reached within 60 s.

// The client asks for Node.js 22; on 20 it needs only this.
if (!Promise.withResolvers) {
	Promise.withResolvers = function () {
		let resolve, reject;
		const promise = new Promise((a, b) => { resolve = a; reject = b; });
		return { promise, resolve, reject };
	};
}
const { Consumer } = await import('@platformatic/kafka');

const [bootstrap, topic, expectedArg] = process.argv.slice(2);
if (!bootstrap || !topic || !expectedArg) {
	console.error('usage: platformatic_consume.mjs BOOTSTRAP TOPIC EXPECTED');
	process.exit(2);
}
const expected = parseInt(expectedArg, 10);
const consumer = new Consumer({
	groupId: 'sluice-it-' + process.pid, clientId: 'sluice-it-platformatic',
	bootstrapBrokers: [bootstrap], maxWaitTime: 200, autocommit: false,
});
const timer = setTimeout(() => {
	console.error('timed out with ' + seen.size + ' of ' + expected);
	process.exit(1);
}, 60000);
const seen = new Map();
const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
for await (const m of stream) {
	seen.set(m.partition + ':' + m.offset, m.value.toString());
	if (seen.size >= expected)
		break;
}
clearTimeout(timer);
await stream.close();
await consumer.close();
console.log(JSON.stringify({ unique: seen.size, values: Object.fromEntries(seen) }));
