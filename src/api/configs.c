/* configs.c — DescribeConfigs, IncrementalAlterConfigs and the legacy
 * AlterConfigs, for topics (resource type 2) and, read-only, for the
 * broker (type 4). Both alters share one check and one apply: the legacy
 * one is an incremental one of SETs that also resets every config it
 * does not name (Kafka's replace-all semantics). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/topic_config.h"
#include "api/handlers.h"
#include "base/err.h"
#include "base/limits.h"
#include "kmsg.h"
#include "proto/kerr.h"

#define RESOURCE_TOPIC 2
#define RESOURCE_BROKER 4

enum config_source {
	SOURCE_TOPIC = 1,
	SOURCE_STATIC_BROKER = 4,
	SOURCE_DEFAULT = 5,
};

static bool key_wanted(const struct kmsg_describe_configs_req_describe_configs_resource *q,
		       const char *name)
{
	if (q->configuration_keys_count < 0)
		return true;
	for (int32_t i = 0; i < q->configuration_keys_count; i++)
		if (kstr_eq(q->configuration_keys[i], name))
			return true;
	return false;
}

static void describe_topic(struct request *req, struct topic_state *t,
			   const struct kmsg_describe_configs_req_describe_configs_resource *q,
			   bool synonyms, struct kmsg_describe_configs_resp_describe_configs_result *res)
{
	if (!REQ_ARRAY(req, topic_config_def_count, res->configs))
		return;
	for (int i = 0; i < topic_config_def_count; i++) {
		const struct topic_config_def *d = &topic_config_defs[i];
		if (!key_wanted(q, d->name))
			continue;
		struct kmsg_describe_configs_resp_describe_configs_resource_result *c =
			&res->configs[res->configs_count++];
		kmsg_describe_configs_resp_describe_configs_resource_result_init(c);
		const char *set = agent_topic_config(t, d->name);
		c->name = KSTR(d->name);
		c->value = set ? api_kstr_dup(req, set) : KSTR(d->default_value);
		c->read_only = false;
		c->is_default = !set;
		c->config_source = set ? SOURCE_TOPIC : SOURCE_DEFAULT;
		c->is_sensitive = false;
		c->config_type = (int8_t)d->type;
		c->documentation = KSTR(d->doc);
		if (synonyms && REQ_ARRAY(req, 2, c->synonyms)) {
			int32_t k = 0;
			if (set) {
				kmsg_describe_configs_resp_describe_configs_synonym_init(&c->synonyms[k]);
				c->synonyms[k].name = c->name;
				c->synonyms[k].value = c->value;
				c->synonyms[k++].source = SOURCE_TOPIC;
			}
			kmsg_describe_configs_resp_describe_configs_synonym_init(&c->synonyms[k]);
			c->synonyms[k].name = c->name;
			c->synonyms[k].value = KSTR(d->default_value);
			c->synonyms[k++].source = SOURCE_DEFAULT;
			c->synonyms_count = k;
		}
	}
}

static void describe_broker(struct agent *a, struct request *req,
			    const struct kmsg_describe_configs_req_describe_configs_resource *q,
			    struct kmsg_describe_configs_resp_describe_configs_result *res)
{
	char buf[8][64];
	const char *names[8] = { "auto.create.topics.enable", "num.partitions", "message.max.bytes",
				 "log.retention.ms", "sluice.flush.interval.ms", "sluice.flush.bytes",
				 "sluice.cache.bytes", "broker.id" };
	snprintf(buf[0], sizeof buf[0], "%s", a->cfg.auto_create_topics ? "true" : "false");
	snprintf(buf[1], sizeof buf[1], "%d", a->cfg.default_partitions);
	snprintf(buf[2], sizeof buf[2], "%d", SL_MESSAGE_BYTES_DEFAULT);
	snprintf(buf[3], sizeof buf[3], "604800000");
	snprintf(buf[4], sizeof buf[4], "%lld", (long long)a->cfg.flush_interval_ms);
	snprintf(buf[5], sizeof buf[5], "%lld", (long long)a->cfg.flush_bytes);
	snprintf(buf[6], sizeof buf[6], "%lld", (long long)a->cfg.cache_bytes);
	snprintf(buf[7], sizeof buf[7], "%d", a->cfg.node_id);
	if (!REQ_ARRAY(req, 8, res->configs))
		return;
	for (int i = 0; i < 8; i++) {
		if (!key_wanted(q, names[i]))
			continue;
		struct kmsg_describe_configs_resp_describe_configs_resource_result *c =
			&res->configs[res->configs_count++];
		kmsg_describe_configs_resp_describe_configs_resource_result_init(c);
		c->name = KSTR(names[i]);
		c->value = api_kstr_dup(req, buf[i]);
		c->read_only = true;
		c->config_source = SOURCE_STATIC_BROKER;
		c->config_type = i == 0 ? TOPIC_CONFIG_BOOLEAN : TOPIC_CONFIG_LONG;
		c->documentation = KSTR_NULL;
	}
}

/* Kafka: DESCRIBE_CONFIGS or ALTER_CONFIGS on the topic, or on the
 * cluster for a broker; the resource's authorization error, or 0. */
static int16_t configs_denied(struct agent *a, struct request *req, int8_t type, kstr name, int8_t op)
{
	if (type == RESOURCE_TOPIC)
		return api_allowed_topic(a, req, name, op) ? 0 : KERR_TOPIC_AUTHORIZATION_FAILED;
	return api_allowed_cluster(a, req, op) ? 0 : KERR_CLUSTER_AUTHORIZATION_FAILED;
}

void handle_describe_configs(struct agent *a, struct request *req, const struct kmsg_describe_configs_req *m)
{
	struct kmsg_describe_configs_resp r;
	kmsg_describe_configs_resp_init(&r);
	r.results_count = m->resources_count > 0 ? m->resources_count : 0;
	if (!REQ_ARRAY(req, r.results_count, r.results)) {
		request_fail_close(req);
		return;
	}
	for (int32_t i = 0; i < r.results_count; i++) {
		struct kmsg_describe_configs_req_describe_configs_resource *q = &m->resources[i];
		struct kmsg_describe_configs_resp_describe_configs_result *res = &r.results[i];
		kmsg_describe_configs_resp_describe_configs_result_init(res);
		res->resource_type = q->resource_type;
		res->resource_name = q->resource_name;
		res->error_message = KSTR_NULL;
		if ((res->error_code = configs_denied(a, req, q->resource_type, q->resource_name,
						      ACL_OP_DESCRIBE_CONFIGS)))
			continue;
		if (q->resource_type == RESOURCE_TOPIC) {
			struct topic_state *t = agent_topic(a, q->resource_name);
			if (!t) {
				res->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
				res->error_message = KSTR("Topic does not exist");
				continue;
			}
			describe_topic(req, t, q, req->api_version >= 1 && m->include_synonyms, res);
		} else if (q->resource_type == RESOURCE_BROKER) {
			char id[16];
			snprintf(id, sizeof id, "%d", a->cfg.node_id);
			if (q->resource_name.len > 0 && !kstr_eq(q->resource_name, id)) {
				res->error_code = KERR_INVALID_REQUEST;
				res->error_message = KSTR("Unexpected broker id");
				continue;
			}
			describe_broker(a, req, q, res);
		} else {
			res->error_code = KERR_INVALID_REQUEST;
			res->error_message = KSTR("Unsupported resource type");
		}
	}
	kmsg_describe_configs_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
}

enum { OP_SET = 0, OP_DELETE = 1, OP_APPEND = 2, OP_SUBTRACT = 3 };

typedef struct kmsg_incremental_alter_configs_req_alter_configs_resource iac_resource;
typedef struct kmsg_incremental_alter_configs_req_alterable_config iac_config;

/* The new value of a list config after APPEND or SUBTRACT of item.
 * False when it does not fit in cap. */
/* Whether the comma-separated list has the item. */
static bool list_has(const char *list, const char *item)
{
	size_t n = strlen(item);
	for (const char *p = list; *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == n && len > 0 && strncmp(p, item, n) == 0)
			return true;
		if (!e)
			break;
		p = e + 1;
	}
	return false;
}

/* Kafka's APPEND / SUBTRACT: items (comma-separated, as Kafka splits the
 * operation's value) are added to the current list unless present, or
 * removed from it. */
static bool list_edit(const char *current, const char *items, bool append, char *out, size_t cap)
{
	out[0] = 0;
	char copy[META_CONFIG_VALUE_BYTES];
	size_t len = 0;
	char *save = NULL;
	snprintf(copy, sizeof copy, "%s", current ? current : "");
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!append && list_has(items, tok))
			continue;
		int n = snprintf(out + len, cap - len, "%s%s", len ? "," : "", tok);
		if (n < 0 || (size_t)n >= cap - len)
			return false;
		len += (size_t)n;
	}
	if (!append)
		return true;
	snprintf(copy, sizeof copy, "%s", items);
	save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (list_has(out, tok))
			continue;
		int n = snprintf(out + len, cap - len, "%s%s", len ? "," : "", tok);
		if (n < 0 || (size_t)n >= cap - len)
			return false;
		len += (size_t)n;
	}
	return true;
}

/* Whether config k of q repeats the name of an earlier one. */
static bool config_named_before(const iac_resource *q, int32_t k)
{
	for (int32_t j = 0; j < k; j++)
		if (q->configs[j].name.len == q->configs[k].name.len &&
		    (q->configs[k].name.len <= 0 ||
		     memcmp(q->configs[j].name.ptr, q->configs[k].name.ptr, (size_t)q->configs[k].name.len) == 0))
			return true;
	return false;
}

/* Resources ordered by (type, name), to find the ones named twice. */
struct resource_ref {
	const iac_resource *q;
	int32_t i;
};

static int resource_ref_cmp(const void *x, const void *y)
{
	const iac_resource *a = ((const struct resource_ref *)x)->q;
	const iac_resource *b = ((const struct resource_ref *)y)->q;
	if (a->resource_type != b->resource_type)
		return a->resource_type < b->resource_type ? -1 : 1;
	if (a->resource_name.len != b->resource_name.len)
		return a->resource_name.len < b->resource_name.len ? -1 : 1;
	if (a->resource_name.len <= 0)
		return 0;
	return memcmp(a->resource_name.ptr, b->resource_name.ptr, (size_t)a->resource_name.len);
}

/* "Null value not supported for : a, b" (Kafka's words) when a config
 * other than a DELETE has no value. */
static bool null_values(const iac_resource *q, char *msg, size_t cap)
{
	bool any = false;
	size_t len = 0;
	for (int32_t k = 0; k < q->configs_count; k++) {
		const iac_config *c = &q->configs[k];
		if (c->config_operation == OP_DELETE || c->value.len >= 0)
			continue;
		int n = len + 1 < cap ? snprintf(msg + len, cap - len, "%s%.*s",
						 any ? ", " : "Null value not supported for : ",
						 c->name.len > 200 ? 200 : (c->name.len < 0 ? 0 : c->name.len),
						 c->name.ptr ? c->name.ptr : "")
				      : 0;
		any = true;
		if (n > 0)
			len = (size_t)n < cap - len ? len + (size_t)n : cap - 1; /* truncated */
	}
	return any;
}

/* Whether q names config name. */
static bool config_named(const iac_resource *q, const char *name)
{
	for (int32_t k = 0; k < q->configs_count; k++)
		if (kstr_eq(q->configs[k].name, name))
			return true;
	return false;
}

struct planned_configs {
	struct topic_state *t;
	const struct meta_config_change *changes;
	size_t n;
};

/* A config's value once the planned changes apply (the last change of
 * it wins; a deleted one is the default, NULL). */
static const char *planned_config(void *arg, const char *name)
{
	const struct planned_configs *pc = arg;
	for (size_t i = pc->n; i-- > 0;)
		if (strcmp(pc->changes[i].name, name) == 0)
			return pc->changes[i].value;
	return agent_topic_config(pc->t, name);
}

/* Check resource q and compute its changes (*changes, *change_count, in
 * the arena) without applying anything, in Kafka's order: duplicate keys,
 * null values, resource type, the topic, then each config. replace_all
 * (legacy AlterConfigs) also deletes every config of the topic q does not
 * name. A refusal sets *error and msg. Returns SL_ENOMEM when the arena
 * is full, else 0. */
static int plan_resource(struct agent *a, struct request *req, const iac_resource *q,
			 bool replace_all, struct topic_state **tp,
			 struct meta_config_change **changes, size_t *change_count,
			 int16_t *error, char *msg, size_t cap)
{
	struct topic_state *t = NULL;
	/* Our bound first: the duplicate scan below is quadratic. */
	if (q->configs_count > SL_CONFIGS_MAX) {
		*error = KERR_INVALID_REQUEST;
		snprintf(msg, cap, "Too many configs");
		return 0;
	}
	for (int32_t k = 1; k < q->configs_count; k++) {
		if (config_named_before(q, k)) {
			*error = KERR_INVALID_REQUEST;
			snprintf(msg, cap, "Error due to duplicate config keys");
			return 0;
		}
	}
	if (null_values(q, msg, cap)) {
		*error = KERR_INVALID_REQUEST;
		return 0;
	}
	if (q->resource_type != RESOURCE_TOPIC) {
		*error = KERR_INVALID_REQUEST;
		snprintf(msg, cap, "Only topic configs can be altered; broker settings are flags of sluice serve");
		return 0;
	}
	if (!(t = agent_topic(a, q->resource_name))) {
		*error = KERR_UNKNOWN_TOPIC_OR_PARTITION;
		snprintf(msg, cap, "Topic does not exist");
		return 0;
	}
	*tp = t;
	int32_t given = q->configs_count > 0 ? q->configs_count : 0;
	struct meta_config_change *ch;
	if (!REQ_ARRAY(req, given + (replace_all ? topic_config_def_count : 0), ch))
		return SL_ENOMEM;
	*changes = ch;
	for (int32_t k = 0; k < q->configs_count; k++) {
		const iac_config *c = &q->configs[k];
		char name[META_CONFIG_NAME_BYTES], value[META_CONFIG_VALUE_BYTES];
		const struct topic_config_def *d = NULL;
		bool list_op = c->config_operation == OP_APPEND || c->config_operation == OP_SUBTRACT;
		if (!kstr_copy(c->name, name, sizeof name) || !(d = topic_config_find(name))) {
			*error = KERR_INVALID_CONFIG;
			snprintf(msg, cap, "Unknown topic config name: %.*s",
				 c->name.len > 200 ? 200 : (c->name.len < 0 ? 0 : c->name.len), c->name.ptr);
			return 0;
		}
		if (c->config_operation < OP_SET || c->config_operation > OP_SUBTRACT) {
			*error = KERR_INVALID_REQUEST;
			snprintf(msg, cap, "Unknown operation %d", c->config_operation);
			return 0;
		}
		if (list_op && d->type != TOPIC_CONFIG_LIST) {
			*error = KERR_INVALID_CONFIG;
			snprintf(msg, cap, "Can't %s to key %s because its type is not LIST.",
				 c->config_operation == OP_APPEND ? "APPEND" : "SUBTRACT", name);
			return 0;
		}
		ch[k].name = NULL;
		ch[k].value = NULL;
		if (c->config_operation == OP_SET) {
			if (!kstr_copy(c->value, value, sizeof value))
				d = NULL; /* too long */
		} else if (list_op) {
			/* The edited list is checked as a SET of it would be. */
			char item[META_CONFIG_VALUE_BYTES];
			const char *cur = agent_topic_config(t, name);
			if (!kstr_copy(c->value, item, sizeof item) ||
			    !list_edit(cur ? cur : d->default_value, item,
				       c->config_operation == OP_APPEND, value, sizeof value))
				d = NULL;
		}
		if (c->config_operation != OP_DELETE) {
			if (!d) {
				*error = KERR_INVALID_CONFIG;
				snprintf(msg, cap, "Invalid value for configuration %s", name);
				return 0;
			}
			if (!topic_config_value_check(d, value, msg, cap)) {
				*error = KERR_INVALID_CONFIG;
				return 0;
			}
			if (!(ch[k].value = api_cstr_dup(req, KSTR(value))))
				return SL_ENOMEM;
		}
		if (!(ch[k].name = api_cstr_dup(req, KSTR(name))))
			return SL_ENOMEM;
	}
	size_t n = (size_t)given;
	for (int i = 0; replace_all && i < topic_config_def_count; i++) {
		const char *name = topic_config_defs[i].name;
		if (agent_topic_config(t, name) && !config_named(q, name))
			ch[n++] = (struct meta_config_change){ name, NULL };
	}
	*change_count = n;
	struct planned_configs pc = { t, ch, n };
	if (!topic_config_conflicts_check(planned_config, &pc, msg, cap))
		*error = KERR_INVALID_CONFIG;
	return 0;
}

/* One topic's changes, applied in the store on the pool (a transaction:
 * an fsync), then to the catalog on the loop. */
struct alter_item {
	struct kmsg_incremental_alter_configs_resp_alter_configs_resource_response *res;
	int64_t tid;
	const struct meta_config_change *changes;
	size_t n;
	int rc; /* out */
};

struct alter_job {
	struct agent_job job;
	struct request *req;
	struct kmsg_incremental_alter_configs_resp r;
	struct alter_item *items;
	size_t n;
};

/* Both APIs' answers have the same fields: the legacy one is copied from
 * the incremental one the handling filled. */
static void alter_configs_respond(struct alter_job *aj)
{
	struct request *req = aj->req;
	if (req->api_key == KMSG_INCREMENTAL_ALTER_CONFIGS_KEY) {
		kmsg_incremental_alter_configs_resp_encode(&req->resp, req->api_version, &aj->r);
		request_respond(req);
		return;
	}
	struct kmsg_alter_configs_resp r;
	kmsg_alter_configs_resp_init(&r);
	r.responses_count = aj->r.responses_count;
	if (!REQ_ARRAY(req, r.responses_count, r.responses)) {
		request_fail_close(req);
		return;
	}
	for (int32_t i = 0; i < r.responses_count; i++) {
		const struct kmsg_incremental_alter_configs_resp_alter_configs_resource_response *x =
			&aj->r.responses[i];
		struct kmsg_alter_configs_resp_alter_configs_resource_response *y = &r.responses[i];
		kmsg_alter_configs_resp_alter_configs_resource_response_init(y);
		y->error_code = x->error_code;
		y->error_message = x->error_message;
		y->resource_type = x->resource_type;
		y->resource_name = x->resource_name;
	}
	kmsg_alter_configs_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
}

static void alter_configs_run(struct agent_job *job)
{
	struct alter_job *aj = (struct alter_job *)job;
	for (size_t i = 0; i < aj->n; i++) {
		struct alter_item *it = &aj->items[i];
		it->rc = meta_topic_configs_set(job->a->meta, it->tid, it->changes, it->n);
	}
}

/* A topic deleted meanwhile has no configs to change in memory. */
static void alter_configs_done(struct agent_job *job)
{
	struct alter_job *aj = (struct alter_job *)job;
	for (size_t i = 0; i < aj->n; i++) {
		struct alter_item *it = &aj->items[i];
		struct topic_state *t = agent_topic_by_tid(job->a, it->tid);
		int rc = it->rc;
		if (!rc && t)
			rc = agent_topic_configs_changed(t, it->changes, it->n);
		if (rc) {
			it->res->error_code = KERR_UNKNOWN_SERVER_ERROR;
			it->res->error_message = KSTR(sl_strerror(rc));
		}
	}
	alter_configs_respond(aj);
}

/* IncrementalAlterConfigs (and the legacy AlterConfigs, replace_all), as
 * Kafka's ConfigAdminManager.preprocess and its controller check them: a
 * resource named twice refuses both entries; then each resource is
 * checked and its changes computed; only when all are (nothing left that
 * can fail for want of memory) are they applied, each resource all or
 * nothing in one metadata transaction, off the loop (an agent_job); the
 * answer goes out when they are done. */
static void alter_configs(struct agent *a, struct request *req,
			  const struct kmsg_incremental_alter_configs_req *m, bool replace_all)
{
	struct alter_job *aj = arena_alloc(&req->arena, sizeof *aj);
	if (!aj) {
		request_fail_close(req);
		return;
	}
	*aj = (struct alter_job){ .req = req };
	struct kmsg_incremental_alter_configs_resp *rp = &aj->r;
	kmsg_incremental_alter_configs_resp_init(rp);
	int32_t n = m->resources_count > 0 ? m->resources_count : 0;
	rp->responses_count = n;
	struct resource_ref *refs = NULL;
	struct topic_state **topics = NULL;
	struct meta_config_change **changes = NULL;
	size_t *change_counts = NULL;
	if (n > 0 && (!REQ_ARRAY(req, n, rp->responses) || !REQ_ARRAY(req, n, refs) ||
		      !REQ_ARRAY(req, n, topics) || !REQ_ARRAY(req, n, changes) ||
		      !REQ_ARRAY(req, n, change_counts) || !REQ_ARRAY(req, n, aj->items))) {
		request_fail_close(req);
		return;
	}
	for (int32_t i = 0; i < n; i++) {
		struct kmsg_incremental_alter_configs_resp_alter_configs_resource_response *res = &rp->responses[i];
		kmsg_incremental_alter_configs_resp_alter_configs_resource_response_init(res);
		res->resource_type = m->resources[i].resource_type;
		res->resource_name = m->resources[i].resource_name;
		res->error_message = KSTR_NULL;
		refs[i] = (struct resource_ref){ &m->resources[i], i };
		topics[i] = NULL;
		changes[i] = NULL;
	}
	if (n > 1)
		qsort(refs, (size_t)n, sizeof *refs, resource_ref_cmp);
	for (int32_t i = 0; i + 1 < n; i++) {
		if (resource_ref_cmp(&refs[i], &refs[i + 1]) != 0)
			continue;
		for (int32_t k = i; k <= i + 1; k++) {
			rp->responses[refs[k].i].error_code = KERR_INVALID_REQUEST;
			rp->responses[refs[k].i].error_message = KSTR("Each resource must appear at most once.");
		}
	}
	/* Check and compute everything before changing anything. */
	for (int32_t i = 0; i < n; i++) {
		struct kmsg_incremental_alter_configs_resp_alter_configs_resource_response *res = &rp->responses[i];
		if (res->error_code)
			continue;
		if ((res->error_code = configs_denied(a, req, m->resources[i].resource_type,
						      m->resources[i].resource_name, ACL_OP_ALTER_CONFIGS)))
			continue;
		char msg[600] = "";
		if (plan_resource(a, req, &m->resources[i], replace_all, &topics[i], &changes[i],
				  &change_counts[i], &res->error_code, msg, sizeof msg) != 0) {
			request_fail_close(req);
			return;
		}
		if (res->error_code)
			res->error_message = api_kstr_dup(req, msg);
	}
	for (int32_t i = 0; i < n && !m->validate_only; i++) {
		struct kmsg_incremental_alter_configs_resp_alter_configs_resource_response *res = &rp->responses[i];
		if (res->error_code || change_counts[i] == 0)
			continue;
		aj->items[aj->n++] = (struct alter_item){ res, topics[i]->tid, changes[i],
							  change_counts[i], 0 };
	}
	if (aj->n == 0) {
		alter_configs_respond(aj);
		return;
	}
	aj->job.run = alter_configs_run;
	aj->job.done = alter_configs_done;
	agent_job_submit(a, &aj->job);
}

void handle_incremental_alter_configs(struct agent *a, struct request *req, const struct kmsg_incremental_alter_configs_req *m)
{
	alter_configs(a, req, m, false);
}

/* The legacy AlterConfigs, as the incremental one with every config a
 * SET (a null value is refused by the same check) and replace_all. */
void handle_alter_configs(struct agent *a, struct request *req, const struct kmsg_alter_configs_req *m)
{
	struct kmsg_incremental_alter_configs_req q;
	kmsg_incremental_alter_configs_req_init(&q);
	q.validate_only = m->validate_only;
	q.resources_count = m->resources_count > 0 ? m->resources_count : 0;
	if (!REQ_ARRAY(req, q.resources_count, q.resources)) {
		request_fail_close(req);
		return;
	}
	for (int32_t i = 0; i < q.resources_count; i++) {
		const struct kmsg_alter_configs_req_alter_configs_resource *x = &m->resources[i];
		iac_resource *y = &q.resources[i];
		kmsg_incremental_alter_configs_req_alter_configs_resource_init(y);
		y->resource_type = x->resource_type;
		y->resource_name = x->resource_name;
		y->configs_count = x->configs_count > 0 ? x->configs_count : 0;
		if (!REQ_ARRAY(req, y->configs_count, y->configs)) {
			request_fail_close(req);
			return;
		}
		for (int32_t k = 0; k < y->configs_count; k++) {
			kmsg_incremental_alter_configs_req_alterable_config_init(&y->configs[k]);
			y->configs[k].name = x->configs[k].name;
			y->configs[k].config_operation = OP_SET;
			y->configs[k].value = x->configs[k].value;
		}
	}
	alter_configs(a, req, &q, true);
}
