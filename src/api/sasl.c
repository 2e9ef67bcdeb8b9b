/* sasl.c — SASL on the SASL_PLAINTEXT and SASL_SSL listeners: the gate
 * that serves nothing but ApiVersions, SaslHandshake and SaslAuthenticate
 * before a client has authenticated, those two handlers, and the raw
 * token frames of clients that shook hands with SaslHandshake v0
 * (KIP-152; kafka-python 2.0 does). The exchange itself is net/sasl.c's
 * pure logic; this file feeds it frames, looks users up on the pool and
 * answers.
 *
 * As Kafka 3.9: any other request before authentication closes the
 * connection without an answer; a mechanism not offered (unknown, or
 * not in --sasl-mechanisms, which also orders the list) is answered
 * UNSUPPORTED_SASL_MECHANISM and a failed authentication
 * SASL_AUTHENTICATION_FAILED with Kafka's message, each then closing
 * the connection (a raw-token client just sees it close); the session
 * lifetime is 0 (no re-authentication required). A user's credentials
 * are read from the metadata store for each authentication (on the
 * pool, with a PLAIN password's PBKDF2), so a user added or removed on
 * any agent counts for the next connection. */
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "api/handlers.h"
#include "base/log.h"
#include "net/sasl.h"
#include "proto/kerr.h"

#define SASL_HANDSHAKE_KEY KMSG_SASL_HANDSHAKE_KEY
#define SASL_AUTHENTICATE_KEY KMSG_SASL_AUTHENTICATE_KEY

/* Failed authentications are logged with the peer address, at most
 * SL_SASL_FAIL_LOGS_PER_SECOND a second; the rest are counted and the
 * count goes into the next line logged. Loop thread only. */
static uint64_t fail_log_second;
static unsigned fail_logged, fail_unlogged;

static void log_failure(struct request *req, const struct sasl_session *s, const char *what)
{
	uint64_t sec = uv_now(((struct agent *)req->ctx)->loop) / 1000;
	if (sec != fail_log_second) {
		fail_log_second = sec;
		fail_logged = 0;
	}
	if (fail_logged >= SL_SASL_FAIL_LOGS_PER_SECOND) {
		fail_unlogged++;
		return;
	}
	fail_logged++;
	char more[64] = "";
	if (fail_unlogged)
		snprintf(more, sizeof more, " (and %u more not logged)", fail_unlogged);
	fail_unlogged = 0;
	log_warn("%s: SASL %s authentication of user \"%s\" failed: %s%s", request_peer(req),
		 sasl_mech_name(s->mech), s->user, what, more);
}

/* What the client gets back from one step: a token (possibly empty), or
 * the failure; in SaslAuthenticate's shape or as a raw frame. */
static void answer(struct request *req, struct sasl_session *s, int rc, const uint8_t *token,
		   size_t len)
{
	if (rc == 0 && s->state == SASL_STATE_COMPLETE) {
		if (request_set_authenticated(req, s->user) != 0) {
			request_fail_close(req);
			return;
		}
		log_debug("%s: authenticated as User:%s", request_peer(req), request_principal(req) + 5);
		s = NULL; /* freed with the exchange */
	}
	if (rc != 0) {
		char msg[256];
		sasl_failure_message(s, msg, sizeof msg);
		if (req->api_key != SASL_AUTHENTICATE_KEY || s->raw) {
			request_fail_close(req); /* raw tokens: no way to say why */
			return;
		}
		struct kmsg_sasl_authenticate_resp r;
		kmsg_sasl_authenticate_resp_init(&r);
		r.error_code = KERR_SASL_AUTHENTICATION_FAILED;
		r.error_message = api_kstr_dup(req, msg);
		r.auth_bytes = (kbytes){ (const uint8_t *)"", 0 };
		kmsg_sasl_authenticate_resp_encode(&req->resp, req->api_version, &r);
		request_respond_close(req);
		return;
	}
	if (req->api_key != SASL_AUTHENTICATE_KEY) {
		request_begin_raw_response(req);
		kbuf_put(&req->resp, token, len);
		request_respond(req);
		return;
	}
	struct kmsg_sasl_authenticate_resp r;
	kmsg_sasl_authenticate_resp_init(&r);
	r.auth_bytes = (kbytes){ token, (int32_t)len };
	r.session_lifetime_ms = 0; /* no re-authentication (KIP-368) */
	kmsg_sasl_authenticate_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
}

/* One user lookup on the pool: the credentials, and for PLAIN whether
 * the password matched one (PBKDF2, milliseconds: not on the loop). */
struct lookup {
	uv_work_t work;
	struct request *req;
	struct meta *meta;
	struct sasl_session *s;      /* the connection's: lives while req does */
	struct meta_scram_credential creds[META_SCRAM_MECHANISMS];
	size_t n;
	bool matched;
	int rc;
};

static void lookup_run(uv_work_t *w)
{
	struct lookup *l = w->data;
	l->rc = meta_scram_get(l->meta, l->s->user, l->creds, &l->n);
	if (l->rc == 0 && l->s->mech == SASL_MECH_PLAIN)
		for (size_t i = 0; i < l->n && !l->matched; i++)
			l->matched = scram_password_matches(&l->creds[i], l->s->password,
							    l->s->password_len);
}

static void lookup_done(uv_work_t *w, int status)
{
	struct lookup *l = w->data;
	struct request *req = l->req;
	struct sasl_session *s = l->s;
	if (!request_conn_open(req)) {
		request_no_reply(req);
		return;
	}
	if (status == 0 && l->rc != 0)
		log_error("%s: looking up SASL user \"%s\": %s", request_peer(req), s->user,
			  sl_strerror(l->rc));
	/* A store that failed counts as no credentials: the client is
	 * refused (Kafka: "Credentials could not be obtained"). */
	size_t n = status == 0 && l->rc == 0 ? l->n : 0;
	uint8_t nonce_bytes[24];
	char nonce[33] = "";
	if (s->mech != SASL_MECH_PLAIN) {
		if (RAND_bytes(nonce_bytes, sizeof nonce_bytes) != 1) {
			request_fail_close(req);
			return;
		}
		sasl_base64_encode(nonce_bytes, sizeof nonce_bytes, nonce);
	}
	uint8_t out[1024];
	size_t len;
	int rc = sasl_lookup_done(s, l->creds, n, l->matched, nonce, out, sizeof out, &len);
	if (rc)
		log_failure(req, s, n ? "wrong credentials" : "unknown user");
	answer(req, s, rc, out, len);
}

/* A token of the exchange (SaslAuthenticate's, or a raw frame). */
static void sasl_step(struct agent *a, struct request *req, struct sasl_session *s,
		      const uint8_t *token, size_t len)
{
	if (s->state == SASL_STATE_SCRAM_FINAL) {
		uint8_t out[256];
		size_t n;
		int rc = sasl_final_token(s, token, len, out, sizeof out, &n);
		if (rc)
			log_failure(req, s, "wrong credentials");
		answer(req, s, rc, out, n);
		return;
	}
	int rc = sasl_first_token(s, token, len);
	if (rc) {
		log_failure(req, s, "malformed token");
		answer(req, s, rc, NULL, 0);
		return;
	}
	struct lookup *l = arena_alloc(&req->arena, sizeof *l);
	if (!l) {
		request_fail_close(req);
		return;
	}
	memset(l, 0, sizeof *l);
	l->req = req;
	l->meta = a->meta;
	l->s = s;
	l->work.data = l;
	if (uv_queue_work(a->loop, &l->work, lookup_run, lookup_done) != 0)
		request_fail_close(req);
}

bool api_sasl_gate(struct agent *a, struct request *req)
{
	if (request_authenticated(req))
		return false;
	struct sasl_session *s = request_sasl(req);
	if (!s) {
		request_fail_close(req); /* out of memory */
		return true;
	}
	if (s->raw && (s->state == SASL_STATE_AUTHENTICATE || s->state == SASL_STATE_SCRAM_FINAL)) {
		/* After SaslHandshake v0 the frame is the token itself. */
		req->api_key = -1;
		sasl_step(a, req, s, req->frame, req->frame_len);
		return true;
	}
	int16_t key = req->frame_len >= 2 ? (int16_t)be16_load(req->frame) : -1;
	bool allowed;
	switch (s->state) {
	case SASL_STATE_INITIAL:
		allowed = key == KMSG_API_VERSIONS_KEY || key == SASL_HANDSHAKE_KEY;
		break;
	case SASL_STATE_HANDSHAKE:
		allowed = key == SASL_HANDSHAKE_KEY;
		break;
	case SASL_STATE_AUTHENTICATE:
	case SASL_STATE_SCRAM_FINAL:
		allowed = key == SASL_AUTHENTICATE_KEY;
		break;
	default:
		allowed = false; /* a lookup is running, or it failed */
	}
	if (!allowed) {
		log_warn("%s: request of api key %d before SASL authentication; closing",
			 request_peer(req), key);
		request_fail_close(req);
		return true;
	}
	return false;
}

/* An unauthenticated client's ApiVersions counts once, as Kafka: the
 * next request must be the handshake. */
bool api_sasl_api_versions(struct request *req)
{
	struct sasl_session *s = request_sasl(req);
	return !s || sasl_api_versions(s);
}

void handle_sasl_handshake(struct agent *a, struct request *req,
			   const struct kmsg_sasl_handshake_req *m)
{
	struct kmsg_sasl_handshake_resp r;
	kmsg_sasl_handshake_resp_init(&r);
	kstr names[SASL_MECH_COUNT];
	struct sasl_session *s = request_sasl(req);
	if (!s) {
		/* A listener without SASL, or a client already authenticated:
		 * Kafka answers ILLEGAL_SASL_STATE and offers nothing. */
		r.error_code = KERR_ILLEGAL_SASL_STATE;
		kmsg_sasl_handshake_resp_encode(&req->resp, req->api_version, &r);
		request_respond(req);
		return;
	}
	/* --sasl-mechanisms: what is offered, and listed, in its order */
	s->offered = 0;
	for (int i = 0; i < a->cfg.sasl_mechanism_count; i++) {
		names[i] = KSTR(sasl_mech_name((enum sasl_mech)a->cfg.sasl_mechanisms[i]));
		s->offered |= SASL_MECH_BIT(a->cfg.sasl_mechanisms[i]);
	}
	r.mechanisms = names;
	r.mechanisms_count = a->cfg.sasl_mechanism_count;
	int rc = sasl_handshake(s, m->mechanism.ptr ? m->mechanism.ptr : "",
				m->mechanism.len > 0 ? (size_t)m->mechanism.len : 0, req->api_version);
	if (rc == SL_EPROTO) {
		request_fail_close(req);
		return;
	}
	if (rc == SL_EUNSUPPORTED) {
		log_warn("%s: SASL mechanism \"%.*s\" is not offered; closing", request_peer(req),
			 m->mechanism.len > 0 ? (int)m->mechanism.len : 0,
			 m->mechanism.len > 0 ? m->mechanism.ptr : "");
		r.error_code = KERR_UNSUPPORTED_SASL_MECHANISM;
		kmsg_sasl_handshake_resp_encode(&req->resp, req->api_version, &r);
		request_respond_close(req);
		return;
	}
	kmsg_sasl_handshake_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
}

void handle_sasl_authenticate(struct agent *a, struct request *req,
			      const struct kmsg_sasl_authenticate_req *m)
{
	struct sasl_session *s = request_sasl(req);
	if (!s) {
		struct kmsg_sasl_authenticate_resp r;
		kmsg_sasl_authenticate_resp_init(&r);
		r.error_code = KERR_ILLEGAL_SASL_STATE;
		r.error_message = KSTR("SaslAuthenticate request received after successful "
				       "authentication");
		r.auth_bytes = (kbytes){ (const uint8_t *)"", 0 };
		kmsg_sasl_authenticate_resp_encode(&req->resp, req->api_version, &r);
		request_respond(req);
		return;
	}
	if (s->raw) {
		/* Raw tokens were announced (handshake v0): a Kafka header
		 * here is not a token. */
		request_fail_close(req);
		return;
	}
	sasl_step(a, req, s, m->auth_bytes.ptr ? m->auth_bytes.ptr : (const uint8_t *)"",
		  m->auth_bytes.len > 0 ? (size_t)m->auth_bytes.len : 0);
}
