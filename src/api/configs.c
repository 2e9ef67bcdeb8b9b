/* configs.c — DescribeConfigs and IncrementalAlterConfigs, for topics
 * (resource type 2) and, read-only, for the broker (type 4). */
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
	snprintf(buf[2], sizeof buf[2], "1048588");
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

void handle_describe_configs(struct agent *a, struct request *req)
{
	struct kmsg_describe_configs_req m;
	kmsg_describe_configs_req_init(&m);
	if (kmsg_describe_configs_req_decode(&req->body, req->api_version, &m, &req->arena) != 0) {
		api_malformed(req, "DescribeConfigs");
		return;
	}
	struct kmsg_describe_configs_resp r;
	kmsg_describe_configs_resp_init(&r);
	r.results_count = m.resources_count > 0 ? m.resources_count : 0;
	if (!REQ_ARRAY(req, r.results_count, r.results)) {
		request_fail_close(req);
		return;
	}
	for (int32_t i = 0; i < r.results_count; i++) {
		struct kmsg_describe_configs_req_describe_configs_resource *q = &m.resources[i];
		struct kmsg_describe_configs_resp_describe_configs_result *res = &r.results[i];
		kmsg_describe_configs_resp_describe_configs_result_init(res);
		res->resource_type = q->resource_type;
		res->resource_name = q->resource_name;
		res->error_message = KSTR_NULL;
		if (q->resource_type == RESOURCE_TOPIC) {
			struct topic_state *t = agent_topic(a, q->resource_name);
			if (!t) {
				res->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
				res->error_message = KSTR("Topic does not exist");
				continue;
			}
			describe_topic(req, t, q, req->api_version >= 1 && m.include_synonyms, res);
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

/* The new value of a list config after APPEND or SUBTRACT of item. */
static void list_edit(const char *current, const char *item, bool append, char *out, size_t cap)
{
	out[0] = 0;
	char copy[META_CONFIG_VALUE_BYTES];
	snprintf(copy, sizeof copy, "%s", current ? current : "");
	bool present = false;
	char *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (strcmp(tok, item) == 0) {
			present = true;
			if (!append)
				continue;
		}
		size_t len = strlen(out);
		snprintf(out + len, cap - len, "%s%s", len ? "," : "", tok);
	}
	if (append && !present) {
		size_t len = strlen(out);
		snprintf(out + len, cap - len, "%s%s", len ? "," : "", item);
	}
}

/* Whether config k of q repeats the name of an earlier one. */
static bool config_named_before(const struct kmsg_incremental_alter_configs_req_alter_configs_resource *q,
				int32_t k)
{
	for (int32_t j = 0; j < k; j++)
		if (q->configs[j].name.len == q->configs[k].name.len &&
		    (q->configs[k].name.len <= 0 ||
		     memcmp(q->configs[j].name.ptr, q->configs[k].name.ptr, (size_t)q->configs[k].name.len) == 0))
			return true;
	return false;
}

void handle_incremental_alter_configs(struct agent *a, struct request *req)
{
	struct kmsg_incremental_alter_configs_req m;
	kmsg_incremental_alter_configs_req_init(&m);
	if (kmsg_incremental_alter_configs_req_decode(&req->body, req->api_version, &m, &req->arena) != 0) {
		api_malformed(req, "IncrementalAlterConfigs");
		return;
	}
	struct kmsg_incremental_alter_configs_resp r;
	kmsg_incremental_alter_configs_resp_init(&r);
	r.responses_count = m.resources_count > 0 ? m.resources_count : 0;
	if (!REQ_ARRAY(req, r.responses_count, r.responses)) {
		request_fail_close(req);
		return;
	}
	for (int32_t i = 0; i < r.responses_count; i++) {
		struct kmsg_incremental_alter_configs_req_alter_configs_resource *q = &m.resources[i];
		struct kmsg_incremental_alter_configs_resp_alter_configs_resource_response *res = &r.responses[i];
		kmsg_incremental_alter_configs_resp_alter_configs_resource_response_init(res);
		res->resource_type = q->resource_type;
		res->resource_name = q->resource_name;
		res->error_message = KSTR_NULL;
		char msg[600] = "";
		struct topic_state *t = NULL;
		if (q->resource_type != RESOURCE_TOPIC) {
			res->error_code = KERR_INVALID_REQUEST;
			snprintf(msg, sizeof msg, "Only topic configs can be altered; broker settings are flags of sluice serve");
		} else if (!(t = agent_topic(a, q->resource_name))) {
			res->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
			snprintf(msg, sizeof msg, "Topic does not exist");
		} else if (q->configs_count > SL_CONFIGS_MAX) {
			res->error_code = KERR_INVALID_REQUEST;
			snprintf(msg, sizeof msg, "Too many configs");
		}
		/* Check every change first: a resource is altered all or nothing,
		 * in one metadata transaction. */
		struct meta_config_change *changes = NULL;
		if (!res->error_code && q->configs_count > 0 &&
		    !REQ_ARRAY(req, q->configs_count, changes)) {
			request_fail_close(req);
			return;
		}
		for (int32_t k = 0; !res->error_code && k < q->configs_count; k++) {
			struct kmsg_incremental_alter_configs_req_alterable_config *c = &q->configs[k];
			char name[META_CONFIG_NAME_BYTES], value[META_CONFIG_VALUE_BYTES];
			const struct topic_config_def *d = NULL;
			if (config_named_before(q, k)) {
				/* Kafka: "Error due to duplicate config keys" */
				res->error_code = KERR_INVALID_REQUEST;
				snprintf(msg, sizeof msg, "Error due to duplicate config keys");
			} else if (!kstr_copy(c->name, name, sizeof name) || !(d = topic_config_find(name))) {
				res->error_code = KERR_INVALID_CONFIG;
				snprintf(msg, sizeof msg, "Unknown topic config name: %.*s",
					 c->name.len > 200 ? 200 : (c->name.len < 0 ? 0 : c->name.len), c->name.ptr);
			} else if (c->config_operation < OP_SET || c->config_operation > OP_SUBTRACT) {
				res->error_code = KERR_INVALID_REQUEST;
				snprintf(msg, sizeof msg, "Unknown operation %d", c->config_operation);
			} else if ((c->config_operation == OP_APPEND || c->config_operation == OP_SUBTRACT) &&
				   d->type != TOPIC_CONFIG_LIST) {
				res->error_code = KERR_INVALID_CONFIG;
				snprintf(msg, sizeof msg, "Config value append is not allowed for config key: %s", name);
			} else if (c->config_operation == OP_SET &&
				   (!kstr_copy(c->value, value, sizeof value) || !topic_config_value_valid(d, value))) {
				res->error_code = KERR_INVALID_CONFIG;
				snprintf(msg, sizeof msg, "Invalid value for configuration %s", name);
			}
		}
		for (int32_t k = 0; !res->error_code && k < q->configs_count; k++) {
			struct kmsg_incremental_alter_configs_req_alterable_config *c = &q->configs[k];
			struct meta_config_change *ch = &changes[k];
			ch->name = api_cstr_dup(req, c->name);
			ch->value = NULL;
			if (c->config_operation == OP_SET) {
				ch->value = api_cstr_dup(req, c->value);
			} else if (c->config_operation != OP_DELETE) {
				char item[META_CONFIG_VALUE_BYTES], *value;
				if (!kstr_copy(c->value, item, sizeof item))
					item[0] = 0;
				const char *cur = agent_topic_config(t, ch->name);
				if (!cur)
					cur = topic_config_find(ch->name)->default_value;
				if ((value = arena_alloc(&req->arena, META_CONFIG_VALUE_BYTES))) {
					list_edit(cur, item, c->config_operation == OP_APPEND,
						  value, META_CONFIG_VALUE_BYTES);
					ch->value = value;
				}
				if (!value)
					ch->name = NULL;
			}
			if (!ch->name || (c->config_operation != OP_DELETE && !ch->value)) {
				request_fail_close(req);
				return;
			}
		}
		if (!res->error_code && !m.validate_only && q->configs_count > 0) {
			int rc = agent_topic_configs_set(a, t, changes, (size_t)q->configs_count);
			if (rc) {
				res->error_code = KERR_UNKNOWN_SERVER_ERROR;
				snprintf(msg, sizeof msg, "%s", sl_strerror(rc));
			}
		}
		if (res->error_code)
			res->error_message = api_kstr_dup(req, msg);
	}
	kmsg_incremental_alter_configs_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
}
