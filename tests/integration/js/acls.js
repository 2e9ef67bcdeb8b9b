// acls.js — kafkajs admin createAcls, describeAcls and deleteAcls for
// Sluice's integration tests (with client_env.js's SASL and TLS).
//
// Usage: node acls.js BOOTSTRAP create|describe|delete JSON
//   create: JSON is a list of ACLs, kafkajs's shape with Kafka's codes
//   ({resourceType, resourceName, resourcePatternType, principal, host,
//   operation, permissionType}); describe: one filter; delete: a list.
// Prints what kafkajs returns as JSON on one line and exits 0, or prints
// {"error": "<name>", "type": "<kafka error>"} and exits 0 when the
// broker refused; exits 1 when kafkajs fails otherwise.
'use strict';
const { Kafka, logLevel } = require('kafkajs');
const env = require('./client_env');

async function main() {
	const [bootstrap, what, json] = process.argv.slice(2);
	if (!bootstrap || !['create', 'describe', 'delete'].includes(what) || !json) {
		console.error('usage: acls.js BOOTSTRAP create|describe|delete JSON');
		process.exit(2);
	}
	const arg = JSON.parse(json);
	const kafka = new Kafka({
		clientId: 'sluice-it-kafkajs',
		brokers: [bootstrap],
		logLevel: logLevel.NOTHING,
		retry: { retries: 0 },
		ssl: env.ssl(),
		sasl: env.sasl(),
	});
	const admin = kafka.admin();
	await admin.connect();
	try {
		let out;
		if (what === 'create')
			out = await admin.createAcls({ acl: arg });
		else if (what === 'describe')
			out = await admin.describeAcls(arg);
		else
			out = await admin.deleteAcls({ filters: arg });
		process.stdout.write(JSON.stringify(out === undefined ? { ok: true } : out) + '\n');
	} catch (err) {
		const e = err.cause || err;
		process.stdout.write(JSON.stringify({ error: e.name, type: e.type }) + '\n');
	} finally {
		await admin.disconnect();
	}
}

main().catch((e) => {
	console.error(e);
	process.exit(1);
});
