/* acls.c — CreateAcls, DescribeAcls and DeleteAcls 0-3, answered as Kafka
 * 3.9's AclApis does: SECURITY_DISABLED for every item when the broker
 * has no authorizer, CLUSTER_AUTHORIZATION_FAILED without DESCRIBE
 * (describe) or ALTER (create, delete) on the cluster, INVALID_REQUEST
 * for a binding or filter Kafka refuses. The store is read and written
 * in an agent_job (meta_acl_read, meta_acl_alter); this agent then polls
 * at once, the others within SL_ACL_POLL_INTERVAL_MS.
 *
 * Also api_allowed, the one line every handler's check is, and
 * api_authorized_operations. */
#include <stdlib.h>
#include <string.h>

#include "agent/acls.h"
#include "agent/agent.h"
#include "api/handlers.h"
#include "base/limits.h"
#include "base/log.h"
#include "proto/kerr.h"

/* Kafka 3.9's AclApis words: Create and DeleteAcls' SecurityDisabledException,
 * DescribeAcls' own message. */
#define NO_AUTHORIZER "No Authorizer is configured."
#define NO_AUTHORIZER_DESCRIBE "No Authorizer is configured on the broker"

bool api_allowed(struct agent *a, struct request *req, int8_t type, const char *name, int8_t op)
{
	return authz_allowed(agent_authorizer(a), request_principal(req), request_host(req), type,
			     name, op);
}

bool api_allowed_kstr(struct agent *a, struct request *req, int8_t type, kstr name, int8_t op)
{
	const struct authorizer *z = agent_authorizer(a);
	if (!z->enabled)
		return true;
	const char *s = api_cstr_dup(req, name);
	return s && strlen(s) == (size_t)name.len && api_allowed(a, req, type, s, op);
}

bool api_allowed_cluster(struct agent *a, struct request *req, int8_t op)
{
	return api_allowed(a, req, ACL_RESOURCE_CLUSTER, ACL_CLUSTER_NAME, op);
}

int32_t api_authorized_operations(struct agent *a, struct request *req, int8_t type, kstr name)
{
	const char *s = api_cstr_dup(req, name);
	if (!s || strlen(s) != (size_t)name.len)
		return 0;
	return authz_operations(agent_authorizer(a), request_principal(req), request_host(req), type,
				s);
}

/* A wire string as a C string in the arena: NULL for null, "" (refused
 * later) when it holds a NUL or the arena is full. */
static const char *cstr_or_empty(struct request *req, kstr s, bool *bad)
{
	if (s.len < 0)
		return NULL;
	const char *c = api_cstr_dup(req, s);
	if (!c || strlen(c) != (size_t)s.len) {
		*bad = true;
		return "";
	}
	return c;
}

/* ---- CreateAcls ---- */

struct create_job {
	struct agent_job job;
	struct request *req;
	struct acl_binding *add;      /* the valid ones, in the arena */
	size_t add_count;
	int16_t *errors;              /* per creation */
	const char **messages;
	int32_t count;
	int rc;
};

static void create_run(struct agent_job *job)
{
	struct create_job *cj = (struct create_job *)job;
	cj->rc = cj->add_count ? meta_acl_alter(job->a->meta, cj->add, cj->add_count, NULL, 0) : 0;
}

static void create_done(struct agent_job *job)
{
	struct create_job *cj = (struct create_job *)job;
	struct request *req = cj->req;
	struct kmsg_create_acls_resp r;
	kmsg_create_acls_resp_init(&r);
	if (cj->add_count && !cj->rc)
		acls_poll_now(job->a);
	if (!REQ_ARRAY(req, cj->count, r.results)) {
		request_fail_close(req);
		return;
	}
	r.results_count = cj->count;
	for (int32_t i = 0; i < cj->count; i++) {
		kmsg_create_acls_resp_acl_creation_result_init(&r.results[i]);
		int16_t err = cj->errors[i];
		const char *msg = cj->messages[i];
		if (!err && cj->rc) {
			err = cj->rc == SL_ELIMIT ? KERR_INVALID_REQUEST : KERR_UNKNOWN_SERVER_ERROR;
			msg = cj->rc == SL_ELIMIT ? "Too many ACLs" : sl_strerror(cj->rc);
		}
		r.results[i].error_code = err;
		if (msg)
			r.results[i].error_message = api_kstr_dup(req, msg);
	}
	kmsg_create_acls_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
}

void handle_create_acls(struct agent *a, struct request *req, const struct kmsg_create_acls_req *m)
{
	struct create_job *cj = arena_alloc(&req->arena, sizeof *cj);
	int32_t n = m->creations_count > 0 ? m->creations_count : 0;
	if (!cj || n > SL_ACL_REQUEST_ITEMS_MAX) {
		request_fail_close(req);
		return;
	}
	memset(cj, 0, sizeof *cj);
	cj->req = req;
	cj->count = n;
	if (!REQ_ARRAY(req, n, cj->add) || !REQ_ARRAY(req, n, cj->errors) ||
	    !REQ_ARRAY(req, n, cj->messages)) {
		request_fail_close(req);
		return;
	}
	bool enabled = agent_authorizer(a)->enabled;
	bool may = api_allowed_cluster(a, req, ACL_OP_ALTER);
	for (int32_t i = 0; i < n; i++) {
		const struct kmsg_create_acls_req_acl_creation *c = &m->creations[i];
		if (!enabled) {
			cj->errors[i] = KERR_SECURITY_DISABLED;
			cj->messages[i] = NO_AUTHORIZER;
			continue;
		}
		if (!may) {
			cj->errors[i] = KERR_CLUSTER_AUTHORIZATION_FAILED;
			continue;
		}
		bool bad = false;
		struct acl_binding b = {
			.resource_type = c->resource_type,
			.pattern_type = c->resource_pattern_type,
			.operation = c->operation,
			.permission = c->permission_type,
			.resource_name = (char *)cstr_or_empty(req, c->resource_name, &bad),
			.principal = (char *)cstr_or_empty(req, c->principal, &bad),
			.host = (char *)cstr_or_empty(req, c->host, &bad),
		};
		const char *why = bad ? "Invalid string in the ACL binding" : acl_binding_invalid(&b);
		if (why) {
			cj->errors[i] = KERR_INVALID_REQUEST;
			cj->messages[i] = why;
			continue;
		}
		cj->add[cj->add_count++] = b;
	}
	cj->job.run = create_run;
	cj->job.done = create_done;
	agent_job_submit(a, &cj->job);
}

/* ---- DescribeAcls and DeleteAcls: filters ---- */

/* A filter of the wire, checked: NULL, or why it is refused. */
static const char *filter_from(struct request *req, struct acl_filter *f, int8_t type, kstr name,
			       int8_t pattern, kstr principal, kstr host, int8_t op, int8_t perm)
{
	bool bad = false;
	*f = (struct acl_filter){
		.resource_type = type,
		.pattern_type = pattern,
		.operation = op,
		.permission = perm,
		.resource_name = cstr_or_empty(req, name, &bad),
		.principal = cstr_or_empty(req, principal, &bad),
		.host = cstr_or_empty(req, host, &bad),
	};
	return bad ? "Invalid string in the ACL filter" : acl_filter_invalid(f);
}

/* ---- DescribeAcls ---- */

struct describe_job {
	struct agent_job job;
	struct request *req;
	struct acl_filter f;
	struct acl_binding *all;
	size_t n;
	int rc;
};

static void describe_run(struct agent_job *job)
{
	struct describe_job *dj = (struct describe_job *)job;
	int64_t version;
	dj->rc = meta_acl_read(job->a->meta, -1, &version, &dj->all, &dj->n);
}

static int binding_order(const void *x, const void *y)
{
	const struct acl_binding *a = x, *b = y;
	if (a->resource_type != b->resource_type)
		return a->resource_type - b->resource_type;
	if (a->pattern_type != b->pattern_type)
		return a->pattern_type - b->pattern_type;
	int c = strcmp(a->resource_name, b->resource_name);
	if (c)
		return c;
	if ((c = strcmp(a->principal, b->principal)))
		return c;
	if ((c = strcmp(a->host, b->host)))
		return c;
	if (a->operation != b->operation)
		return a->operation - b->operation;
	return a->permission - b->permission;
}

static bool same_pattern(const struct acl_binding *a, const struct acl_binding *b)
{
	return a->resource_type == b->resource_type && a->pattern_type == b->pattern_type &&
	       !strcmp(a->resource_name, b->resource_name);
}

static void describe_done(struct agent_job *job)
{
	struct describe_job *dj = (struct describe_job *)job;
	struct request *req = dj->req;
	struct acl_binding *all = dj->all;
	size_t n = dj->n;
	struct kmsg_describe_acls_resp r;
	kmsg_describe_acls_resp_init(&r);
	if (dj->rc) {
		r.error_code = KERR_UNKNOWN_SERVER_ERROR;
		r.error_message = api_kstr_dup(req, sl_strerror(dj->rc));
		goto out_respond;
	}
	/* Matching bindings first, sorted, so each pattern's are adjacent. */
	size_t kept = 0;
	for (size_t i = 0; i < n; i++)
		if (acl_filter_matches(&dj->f, &all[i])) {
			struct acl_binding t = all[kept];
			all[kept++] = all[i];
			all[i] = t;
		}
	if (kept)
		qsort(all, kept, sizeof *all, binding_order);
	size_t groups = 0;
	for (size_t i = 0; i < kept; i++)
		groups += i == 0 || !same_pattern(&all[i], &all[i - 1]);
	if (!REQ_ARRAY(req, (int32_t)groups, r.resources)) {
		request_fail_close(req);
		goto out_free;
	}
	for (size_t i = 0; i < kept;) {
		size_t j = i;
		while (j < kept && same_pattern(&all[j], &all[i]))
			j++;
		struct kmsg_describe_acls_resp_describe_acls_resource *res = &r.resources[r.resources_count++];
		kmsg_describe_acls_resp_describe_acls_resource_init(res);
		res->resource_type = all[i].resource_type;
		res->resource_name = api_kstr_dup(req, all[i].resource_name);
		res->pattern_type = all[i].pattern_type;
		if (!REQ_ARRAY(req, (int32_t)(j - i), res->acls)) {
			request_fail_close(req);
			goto out_free;
		}
		for (size_t k = i; k < j; k++) {
			struct kmsg_describe_acls_resp_acl_description *d = &res->acls[res->acls_count++];
			kmsg_describe_acls_resp_acl_description_init(d);
			d->principal = api_kstr_dup(req, all[k].principal);
			d->host = api_kstr_dup(req, all[k].host);
			d->operation = all[k].operation;
			d->permission_type = all[k].permission;
		}
		i = j;
	}
out_respond:
	kmsg_describe_acls_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
out_free:
	acl_bindings_free(all, n);
}

static void describe_error(struct request *req, int16_t err, const char *msg)
{
	struct kmsg_describe_acls_resp r;
	kmsg_describe_acls_resp_init(&r);
	r.error_code = err;
	if (msg)
		r.error_message = api_kstr_dup(req, msg);
	kmsg_describe_acls_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
}

void handle_describe_acls(struct agent *a, struct request *req, const struct kmsg_describe_acls_req *m)
{
	if (!agent_authorizer(a)->enabled) {
		describe_error(req, KERR_SECURITY_DISABLED, NO_AUTHORIZER_DESCRIBE);
		return;
	}
	if (!api_allowed_cluster(a, req, ACL_OP_DESCRIBE)) {
		describe_error(req, KERR_CLUSTER_AUTHORIZATION_FAILED, NULL);
		return;
	}
	struct describe_job *dj = arena_alloc(&req->arena, sizeof *dj);
	if (!dj) {
		request_fail_close(req);
		return;
	}
	memset(dj, 0, sizeof *dj);
	const char *why = filter_from(req, &dj->f, m->resource_type_filter, m->resource_name_filter,
				      m->pattern_type_filter, m->principal_filter, m->host_filter,
				      m->operation, m->permission_type);
	if (why) {
		describe_error(req, KERR_INVALID_REQUEST, why);
		return;
	}
	dj->req = req;
	dj->job.run = describe_run;
	dj->job.done = describe_done;
	agent_job_submit(a, &dj->job);
}

/* ---- DeleteAcls ---- */

struct delete_job {
	struct agent_job job;
	struct request *req;
	struct acl_filter *filters;
	int16_t *errors;              /* per filter: refused before the job */
	const char **messages;
	int32_t count;
	struct acl_binding *all;      /* out: every ACL */
	size_t n;
	int32_t *matched_by;          /* per ACL: its filter, or -1 */
	int rc;
};

static void delete_run(struct agent_job *job)
{
	struct delete_job *xj = (struct delete_job *)job;
	int64_t version;
	xj->rc = meta_acl_read(job->a->meta, -1, &version, &xj->all, &xj->n);
	if (xj->rc)
		return;
	xj->matched_by = malloc((xj->n ? xj->n : 1) * sizeof *xj->matched_by);
	struct acl_binding *gone = malloc((xj->n ? xj->n : 1) * sizeof *gone);
	if (!xj->matched_by || !gone) {
		free(gone);
		xj->rc = SL_ENOMEM;
		return;
	}
	/* A binding several filters match is deleted, and reported, once:
	 * under the first. */
	size_t gone_count = 0;
	for (size_t i = 0; i < xj->n; i++) {
		xj->matched_by[i] = -1;
		for (int32_t k = 0; k < xj->count; k++)
			if (!xj->errors[k] && acl_filter_matches(&xj->filters[k], &xj->all[i])) {
				xj->matched_by[i] = k;
				gone[gone_count++] = xj->all[i];
				break;
			}
	}
	xj->rc = gone_count ? meta_acl_alter(job->a->meta, NULL, 0, gone, gone_count) : 0;
	free(gone);
}

static void delete_done(struct agent_job *job)
{
	struct delete_job *xj = (struct delete_job *)job;
	struct request *req = xj->req;
	struct acl_binding *all = xj->all;
	size_t n = xj->n;
	int32_t *matched_by = xj->matched_by;
	struct kmsg_delete_acls_resp r;
	kmsg_delete_acls_resp_init(&r);
	if (!xj->rc)
		acls_poll_now(job->a);
	if (!REQ_ARRAY(req, xj->count, r.filter_results)) {
		request_fail_close(req);
		goto out_free;
	}
	r.filter_results_count = xj->count;
	for (int32_t k = 0; k < xj->count; k++) {
		struct kmsg_delete_acls_resp_delete_acls_filter_result *fr = &r.filter_results[k];
		kmsg_delete_acls_resp_delete_acls_filter_result_init(fr);
		fr->error_code = xj->errors[k];
		if (xj->messages[k])
			fr->error_message = api_kstr_dup(req, xj->messages[k]);
		if (fr->error_code)
			continue;
		if (xj->rc) {
			fr->error_code = KERR_UNKNOWN_SERVER_ERROR;
			fr->error_message = api_kstr_dup(req, sl_strerror(xj->rc));
			continue;
		}
		int32_t count = 0;
		for (size_t i = 0; i < n; i++)
			count += matched_by[i] == k;
		if (!REQ_ARRAY(req, count, fr->matching_acls)) {
			request_fail_close(req);
			goto out_free;
		}
		for (size_t i = 0; i < n; i++) {
			if (matched_by[i] != k)
				continue;
			struct kmsg_delete_acls_resp_delete_acls_matching_acl *ma =
				&fr->matching_acls[fr->matching_acls_count++];
			kmsg_delete_acls_resp_delete_acls_matching_acl_init(ma);
			ma->resource_type = all[i].resource_type;
			ma->resource_name = api_kstr_dup(req, all[i].resource_name);
			ma->pattern_type = all[i].pattern_type;
			ma->principal = api_kstr_dup(req, all[i].principal);
			ma->host = api_kstr_dup(req, all[i].host);
			ma->operation = all[i].operation;
			ma->permission_type = all[i].permission;
		}
	}
	kmsg_delete_acls_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
out_free:
	acl_bindings_free(all, n);
	free(matched_by);
}

void handle_delete_acls(struct agent *a, struct request *req, const struct kmsg_delete_acls_req *m)
{
	struct delete_job *xj = arena_alloc(&req->arena, sizeof *xj);
	int32_t n = m->filters_count > 0 ? m->filters_count : 0;
	if (!xj || n > SL_ACL_REQUEST_ITEMS_MAX) {
		request_fail_close(req);
		return;
	}
	memset(xj, 0, sizeof *xj);
	xj->req = req;
	xj->count = n;
	if (!REQ_ARRAY(req, n, xj->filters) || !REQ_ARRAY(req, n, xj->errors) ||
	    !REQ_ARRAY(req, n, xj->messages)) {
		request_fail_close(req);
		return;
	}
	bool enabled = agent_authorizer(a)->enabled;
	bool may = api_allowed_cluster(a, req, ACL_OP_ALTER);
	for (int32_t k = 0; k < n; k++) {
		const struct kmsg_delete_acls_req_delete_acls_filter *f = &m->filters[k];
		if (!enabled) {
			xj->errors[k] = KERR_SECURITY_DISABLED;
			xj->messages[k] = NO_AUTHORIZER;
			continue;
		}
		if (!may) {
			xj->errors[k] = KERR_CLUSTER_AUTHORIZATION_FAILED;
			continue;
		}
		const char *why = filter_from(req, &xj->filters[k], f->resource_type_filter,
					      f->resource_name_filter, f->pattern_type_filter,
					      f->principal_filter, f->host_filter, f->operation,
					      f->permission_type);
		if (why) {
			xj->errors[k] = KERR_INVALID_REQUEST;
			xj->messages[k] = why;
		}
	}
	xj->job.run = delete_run;
	xj->job.done = delete_done;
	agent_job_submit(a, &xj->job);
}
