// client_env.js — the connection settings the drivers take from the
// environment: SLUICE_JS_SSL_CA=PEM (TLS, trusting that CA) and
// SLUICE_JS_SASL=MECHANISM:USER:PASSWORD (plain, scram-sha-256,
// scram-sha-512), as kafkajs's ssl and sasl options.
'use strict';
const fs = require('fs');

function ssl() {
	const ca = process.env.SLUICE_JS_SSL_CA;
	return ca ? { ca: [fs.readFileSync(ca)] } : undefined;
}

function sasl() {
	const v = process.env.SLUICE_JS_SASL;
	if (!v)
		return undefined;
	const [mechanism, username, ...rest] = v.split(':');
	return { mechanism, username, password: rest.join(':') };
}

module.exports = { ssl, sasl };
