/* users.c — DescribeUserScramCredentials and AlterUserScramCredentials
 * (KIP-554): the SASL/SCRAM users of the metadata store, as Kafka 3.9's
 * controller checks and answers them (ScramControlManager, ScramImage).
 *
 * The client salts the password itself (AlterUserScramCredentials
 * carries salt, iterations and SaltedPassword); StoredKey and ServerKey
 * are derived here (two HMACs and a hash: cheap enough for the loop) and
 * only they are stored. The store is read and written in an agent_job on
 * the pool (the admin connection), as topic changes are. Per user, one
 * change per request: a user named twice gets DUPLICATE_RESOURCE and
 * none of its changes apply. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "api/handlers.h"
#include "base/log.h"
#include "base/strmap.h"
#include "net/sasl.h"
#include "proto/kerr.h"

/* ---- DescribeUserScramCredentials ---- */

struct describe_job {
	struct agent_job job;
	struct request *req;
	const struct kmsg_describe_user_scram_credentials_req *m;
	struct meta_scram_credential *all; /* out: every credential, by user */
	size_t n;
	int rc;
};

static void describe_run(struct agent_job *job)
{
	struct describe_job *dj = (struct describe_job *)job;
	dj->rc = meta_scram_list(job->a->meta, &dj->all, &dj->n);
}

/* The credentials of user among the sorted list: its first index and
 * count. */
static size_t user_find(const struct describe_job *dj, const char *user, size_t *first)
{
	size_t count = 0;
	for (size_t i = 0; i < dj->n; i++) {
		if (strcmp(dj->all[i].user, user))
			continue;
		if (!count)
			*first = i;
		count++;
	}
	return count;
}

static void describe_result_fill(struct describe_job *dj,
				 struct kmsg_describe_user_scram_credentials_resp_describe_user_scram_credentials_result *r,
				 size_t first, size_t count)
{
	struct request *req = dj->req;
	if (!REQ_ARRAY(req, (int32_t)count, r->credential_infos))
		return; /* the arena is full: resp.oom closes the connection */
	r->credential_infos_count = (int32_t)count;
	for (size_t k = 0; k < count; k++) {
		struct kmsg_describe_user_scram_credentials_resp_credential_info *ci = &r->credential_infos[k];
		kmsg_describe_user_scram_credentials_resp_credential_info_init(ci);
		ci->mechanism = dj->all[first + k].mechanism;
		ci->iterations = dj->all[first + k].iterations;
	}
}

static void describe_done(struct agent_job *job)
{
	struct describe_job *dj = (struct describe_job *)job;
	struct request *req = dj->req;
	const struct kmsg_describe_user_scram_credentials_req *m = dj->m;
	struct kmsg_describe_user_scram_credentials_resp r;
	kmsg_describe_user_scram_credentials_resp_init(&r);
	/* dj lives in the request's arena: once the request ends (answered
	 * or closed) only locals may be used. */
	struct meta_scram_credential *all_creds = dj->all;
	char msg[512];
	if (dj->rc) {
		r.error_code = KERR_UNKNOWN_SERVER_ERROR;
		r.error_message = api_kstr_dup(req, sl_strerror(dj->rc));
		goto out_respond;
	}
	bool all = m->users_count <= 0; /* null or empty: every user */
	size_t cap = all ? dj->n : (size_t)m->users_count;
	if (!REQ_ARRAY(req, (int32_t)cap, r.results)) {
		request_fail_close(req);
		goto out_free;
	}
	struct strmap seen;
	strmap_init(&seen);
	for (size_t i = 0; i < cap; i++) {
		const char *name;
		if (all) {
			if (i > 0 && !strcmp(dj->all[i].user, dj->all[i - 1].user))
				continue;
			name = dj->all[i].user;
		} else {
			name = api_cstr_dup(req, m->users[i].name);
			if (!name || strlen(name) != (size_t)m->users[i].name.len)
				name = ""; /* a NUL inside: no such user */
		}
		struct kmsg_describe_user_scram_credentials_resp_describe_user_scram_credentials_result *res =
			strmap_get(&seen, name);
		if (res) {
			/* Named twice: one result, DUPLICATE_RESOURCE (Kafka). */
			snprintf(msg, sizeof msg, "Cannot describe SCRAM credentials for the same user "
				 "twice in a single request: %s", name);
			res->error_code = KERR_DUPLICATE_RESOURCE;
			res->error_message = api_kstr_dup(req, msg);
			res->credential_infos_count = 0;
			continue;
		}
		res = &r.results[r.results_count++];
		kmsg_describe_user_scram_credentials_resp_describe_user_scram_credentials_result_init(res);
		res->user = api_kstr_dup(req, name);
		if (strmap_put(&seen, name, res) != 0) {
			strmap_free(&seen);
			request_fail_close(req);
			goto out_free;
		}
		size_t first = 0, count = user_find(dj, name, &first);
		if (count) {
			describe_result_fill(dj, res, first, count);
		} else {
			snprintf(msg, sizeof msg, "Attempt to describe a user credential that does not "
				 "exist: %s", name);
			res->error_code = KERR_RESOURCE_NOT_FOUND;
			res->error_message = api_kstr_dup(req, msg);
		}
	}
	strmap_free(&seen);
out_respond:
	kmsg_describe_user_scram_credentials_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
out_free:
	free(all_creds);
}

void handle_describe_user_scram_credentials(struct agent *a, struct request *req,
					    const struct kmsg_describe_user_scram_credentials_req *m)
{
	if (!api_allowed_cluster(a, req, ACL_OP_DESCRIBE)) {
		struct kmsg_describe_user_scram_credentials_resp r;
		kmsg_describe_user_scram_credentials_resp_init(&r);
		r.error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
		r.error_message = KSTR("Cluster authorization failed.");
		kmsg_describe_user_scram_credentials_resp_encode(&req->resp, req->api_version, &r);
		request_respond(req);
		return;
	}
	struct describe_job *dj = arena_alloc(&req->arena, sizeof *dj);
	if (!dj) {
		request_fail_close(req);
		return;
	}
	memset(dj, 0, sizeof *dj);
	dj->req = req;
	dj->m = m;
	dj->job.run = describe_run;
	dj->job.done = describe_done;
	agent_job_submit(a, &dj->job);
}

/* ---- AlterUserScramCredentials ---- */

/* One user of the request, in the order first named. */
struct alter_user {
	const char *name;
	int16_t error;
	const char *message;
	int change;            /* its change in the job, or -1 */
};

struct alter_job {
	struct agent_job job;
	struct request *req;
	struct alter_user *users;
	size_t user_count;
	struct meta_scram_change *changes;
	size_t change_count;
	int rc;
};

static void alter_run(struct agent_job *job)
{
	struct alter_job *aj = (struct alter_job *)job;
	aj->rc = aj->change_count ? meta_scram_alter(job->a->meta, aj->changes, aj->change_count) : 0;
}

static void alter_done(struct agent_job *job)
{
	struct alter_job *aj = (struct alter_job *)job;
	struct request *req = aj->req;
	struct kmsg_alter_user_scram_credentials_resp r;
	kmsg_alter_user_scram_credentials_resp_init(&r);
	if (!REQ_ARRAY(req, (int32_t)aj->user_count, r.results)) {
		request_fail_close(req);
		return;
	}
	for (size_t i = 0; i < aj->user_count; i++) {
		struct alter_user *u = &aj->users[i];
		if (u->change >= 0 && aj->rc) {
			u->error = KERR_UNKNOWN_SERVER_ERROR;
			u->message = sl_strerror(aj->rc);
		} else if (u->change >= 0 && aj->changes[u->change].result == SL_ENOTFOUND) {
			u->error = KERR_RESOURCE_NOT_FOUND;
			u->message = "Attempt to delete a user credential that does not exist";
		}
		struct kmsg_alter_user_scram_credentials_resp_alter_user_scram_credentials_result *res =
			&r.results[r.results_count++];
		kmsg_alter_user_scram_credentials_resp_alter_user_scram_credentials_result_init(res);
		res->user = api_kstr_dup(req, u->name);
		res->error_code = u->error;
		if (u->error && u->message)
			res->error_message = api_kstr_dup(req, u->message);
	}
	/* The keys are no password, but no reason to leave them around. */
	memset(aj->changes, 0, aj->change_count * sizeof *aj->changes);
	kmsg_alter_user_scram_credentials_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
}

/* The user's entry (made on first sight), or NULL when the arena or map
 * is full. */
static struct alter_user *alter_user_of(struct request *req, struct alter_job *aj,
					struct strmap *by_name, kstr name)
{
	char *n = api_cstr_dup(req, name);
	if (!n)
		return NULL;
	struct alter_user *u = strmap_get(by_name, n);
	if (u)
		return u;
	u = &aj->users[aj->user_count++];
	*u = (struct alter_user){ .name = n, .change = -1 };
	return strmap_put(by_name, n, u) == 0 ? u : NULL;
}

/* Kafka's checks of one change's user and mechanism: 0 or the error. */
static int16_t alter_check(kstr name, int8_t mechanism, const char **msg)
{
	if (name.len <= 0) {
		*msg = "Username must not be empty";
		return KERR_UNACCEPTABLE_CREDENTIAL;
	}
	if (name.len > SL_SASL_USER_BYTES_MAX || memchr(name.ptr, 0, (size_t)name.len)) {
		*msg = "Username must be at most 255 bytes, without NUL";
		return KERR_UNACCEPTABLE_CREDENTIAL;
	}
	if (mechanism != META_SCRAM_SHA_256 && mechanism != META_SCRAM_SHA_512) {
		*msg = "Unknown SCRAM mechanism";
		return KERR_UNSUPPORTED_SASL_MECHANISM;
	}
	return KERR_NONE;
}

static int16_t upsert_check(const struct kmsg_alter_user_scram_credentials_req_scram_credential_upsertion *u,
			    const char **msg)
{
	int16_t err = alter_check(u->name, u->mechanism, msg);
	if (err)
		return err;
	if (u->iterations < SL_SCRAM_ITERATIONS_MIN) {
		*msg = "Too few iterations";
		return KERR_UNACCEPTABLE_CREDENTIAL;
	}
	if (u->iterations > SL_SCRAM_ITERATIONS_MAX) {
		*msg = "Too many iterations";
		return KERR_UNACCEPTABLE_CREDENTIAL;
	}
	if (u->salt.len <= 0 || u->salt.len > SL_SCRAM_SALT_BYTES_MAX) {
		*msg = "Salt must be 1 to 128 bytes";
		return KERR_UNACCEPTABLE_CREDENTIAL;
	}
	if (u->salted_password.len <= 0 || u->salted_password.len > 1024) {
		*msg = "Salted password must be 1 to 1024 bytes";
		return KERR_UNACCEPTABLE_CREDENTIAL;
	}
	return KERR_NONE;
}

void handle_alter_user_scram_credentials(struct agent *a, struct request *req,
					 const struct kmsg_alter_user_scram_credentials_req *m)
{
	struct alter_job *aj = arena_alloc(&req->arena, sizeof *aj);
	int32_t nd = m->deletions_count > 0 ? m->deletions_count : 0;
	int32_t nu = m->upsertions_count > 0 ? m->upsertions_count : 0;
	if (aj)
		memset(aj, 0, sizeof *aj);
	if (!aj || !REQ_ARRAY(req, nd + nu, aj->users) || !REQ_ARRAY(req, nd + nu, aj->changes)) {
		request_fail_close(req);
		return;
	}
	aj->req = req;
	bool may = api_allowed_cluster(a, req, ACL_OP_ALTER);
	struct strmap by_name;
	strmap_init(&by_name);
	for (int32_t i = 0; i < nd + nu; i++) {
		bool del = i < nd;
		const struct kmsg_alter_user_scram_credentials_req_scram_credential_deletion *d =
			del ? &m->deletions[i] : NULL;
		const struct kmsg_alter_user_scram_credentials_req_scram_credential_upsertion *up =
			del ? NULL : &m->upsertions[i - nd];
		kstr name = del ? d->name : up->name;
		struct alter_user *u = alter_user_of(req, aj, &by_name, name);
		if (!u) {
			strmap_free(&by_name);
			request_fail_close(req);
			return;
		}
		if (!may) {
			/* Kafka's getErrorResponse: the error's default message */
			u->error = KERR_CLUSTER_AUTHORIZATION_FAILED;
			u->message = "Cluster authorization failed.";
		}
		if (u->error)
			continue; /* refused already: later changes are not looked at */
		if (u->change >= 0) {
			u->error = KERR_DUPLICATE_RESOURCE;
			u->message = "A user credential cannot be altered twice in the same request";
			u->change = -1;
			continue;
		}
		const char *msg = NULL;
		u->error = del ? alter_check(d->name, d->mechanism, &msg) : upsert_check(up, &msg);
		u->message = msg;
		if (u->error)
			continue;
		struct meta_scram_change *ch = &aj->changes[aj->change_count];
		memset(ch, 0, sizeof *ch);
		ch->remove = del;
		memcpy(ch->cred.user, name.ptr, (size_t)name.len);
		ch->cred.mechanism = del ? d->mechanism : up->mechanism;
		if (!del) {
			ch->cred.iterations = up->iterations;
			ch->cred.salt_len = (uint32_t)up->salt.len;
			memcpy(ch->cred.salt, up->salt.ptr, (size_t)up->salt.len);
			if (scram_credential_from_salted(up->mechanism, up->salted_password.ptr,
							 (size_t)up->salted_password.len, &ch->cred) != 0) {
				u->error = KERR_UNACCEPTABLE_CREDENTIAL;
				u->message = "Salted password must be 1 to 1024 bytes";
				continue;
			}
		}
		u->change = (int)aj->change_count++;
	}
	strmap_free(&by_name);
	/* Changes of users refused later (a duplicate) are left out. */
	size_t kept = 0;
	for (size_t i = 0; i < aj->user_count; i++) {
		struct alter_user *u = &aj->users[i];
		if (u->change < 0)
			continue;
		if ((size_t)u->change != kept)
			aj->changes[kept] = aj->changes[u->change];
		u->change = (int)kept++;
	}
	aj->change_count = kept;
	aj->job.run = alter_run;
	aj->job.done = alter_done;
	agent_job_submit(a, &aj->job);
}
