/* admin.c — CreateTopics, DeleteTopics, CreatePartitions, DeleteRecords
 * and InitProducerId. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/maintenance.h"
#include "agent/retention.h"
#include "agent/topic_config.h"
#include "api/handlers.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/log.h"
#include "base/strmap.h"
#include "kmsg.h"
#include "proto/kerr.h"

/* Checks the configs of a CreateTopics topic; fills msg on error. */
static int16_t check_configs(struct kmsg_create_topics_req_creatable_topic *ct,
			     struct meta_config *out, char *msg, size_t cap)
{
	if (ct->configs_count > SL_CONFIGS_MAX) {
		snprintf(msg, cap, "too many configs");
		return KERR_INVALID_CONFIG;
	}
	for (int32_t i = 0; i < ct->configs_count; i++) {
		char name[META_CONFIG_NAME_BYTES], value[META_CONFIG_VALUE_BYTES];
		if (!kstr_copy(ct->configs[i].name, name, sizeof name)) {
			snprintf(msg, cap, "config name too long");
			return KERR_INVALID_CONFIG;
		}
		const struct topic_config_def *d = topic_config_find(name);
		if (!d) {
			snprintf(msg, cap, "Unknown topic config name: %s", name);
			return KERR_INVALID_CONFIG;
		}
		if (!kstr_copy(ct->configs[i].value, value, sizeof value) ||
		    !topic_config_value_valid(d, value)) {
			snprintf(msg, cap, "Invalid value for configuration %s", name);
			return KERR_INVALID_CONFIG;
		}
		strcpy(out[i].name, name);
		strcpy(out[i].value, value);
	}
	return KERR_NONE;
}

enum { DUP_NONE, DUP_FIRST, DUP_LATER };

/* A name given more than once in one CreateTopics: Kafka (KRaft's
 * ControllerApis) creates none of its entries and answers the name once,
 * with INVALID_REQUEST. Marks the first entry of such a name DUP_FIRST and
 * the others DUP_LATER. Returns 0 or SL_ENOMEM. */
static int mark_duplicate_names(const struct kmsg_create_topics_req *m, uint8_t *dup)
{
	struct strmap seen;
	strmap_init(&seen);
	int rc = 0;
	for (int32_t i = 0; i < m->topics_count && !rc; i++) {
		char name[META_TOPIC_NAME_BYTES];
		dup[i] = DUP_NONE;
		if (!kstr_copy(m->topics[i].name, name, sizeof name))
			continue; /* refused as an invalid name */
		uint8_t *first = strmap_get(&seen, name);
		if (first) {
			*first = DUP_FIRST;
			dup[i] = DUP_LATER;
		} else {
			rc = strmap_put(&seen, name, &dup[i]);
		}
	}
	strmap_free(&seen);
	return rc;
}

void handle_create_topics(struct agent *a, struct request *req, const struct kmsg_create_topics_req *m)
{
	struct kmsg_create_topics_resp r;
	kmsg_create_topics_resp_init(&r);
	int32_t n = m->topics_count > 0 ? m->topics_count : 0;
	uint8_t *dup = NULL;
	if (!REQ_ARRAY(req, n, r.topics) || !REQ_ARRAY(req, n, dup) ||
	    mark_duplicate_names(m, dup) != 0) {
		request_fail_close(req);
		return;
	}
	r.topics_count = 0;
	for (int32_t i = 0; i < n; i++) {
		if (dup[i] == DUP_LATER)
			continue;
		struct kmsg_create_topics_req_creatable_topic *ct = &m->topics[i];
		struct kmsg_create_topics_resp_creatable_topic_result *rt = &r.topics[r.topics_count++];
		kmsg_create_topics_resp_creatable_topic_result_init(rt);
		rt->name = ct->name;
		char msg[600] = "";
		char name[META_TOPIC_NAME_BYTES];
		int32_t partitions = ct->num_partitions == -1 ? a->cfg.default_partitions : ct->num_partitions;
		struct meta_config *configs = NULL;
		if (dup[i] == DUP_FIRST) {
			rt->error_code = KERR_INVALID_REQUEST;
			snprintf(msg, sizeof msg, "Duplicate topic name.");
		} else if (!topic_name_valid(ct->name) || !kstr_copy(ct->name, name, sizeof name)) {
			rt->error_code = KERR_INVALID_TOPIC_EXCEPTION;
			snprintf(msg, sizeof msg, "Topic name is invalid");
		} else if (agent_topic(a, ct->name)) {
			rt->error_code = KERR_TOPIC_ALREADY_EXISTS;
			snprintf(msg, sizeof msg, "Topic '%s' already exists.", name);
		} else if (ct->assignments_count > 0) {
			rt->error_code = KERR_INVALID_REPLICA_ASSIGNMENT;
			snprintf(msg, sizeof msg, "Sluice places no replicas: every agent serves every "
				 "partition; omit the replica assignment");
		} else if (partitions <= 0 || partitions > SL_PARTITIONS_PER_TOPIC_MAX) {
			rt->error_code = KERR_INVALID_PARTITIONS;
			snprintf(msg, sizeof msg, "Number of partitions must be between 1 and %d.",
				 SL_PARTITIONS_PER_TOPIC_MAX);
		} else if (ct->replication_factor == 0 || ct->replication_factor < -1) {
			rt->error_code = KERR_INVALID_REPLICATION_FACTOR;
			snprintf(msg, sizeof msg, "Replication factor must be larger than 0, or -1 to use the default value.");
		} else if (!REQ_ARRAY(req, ct->configs_count, configs)) {
			request_fail_close(req);
			return;
		} else if ((rt->error_code = check_configs(ct, configs, msg, sizeof msg)) == KERR_NONE &&
			   !(req->api_version >= 1 && m->validate_only)) {
			struct topic_state *t = NULL;
			int rc = agent_topic_create(a, name, partitions, configs, ct->configs_count, &t);
			if (rc == SL_EEXIST) {
				rt->error_code = KERR_TOPIC_ALREADY_EXISTS;
			} else if (rc) {
				rt->error_code = KERR_UNKNOWN_SERVER_ERROR;
				snprintf(msg, sizeof msg, "%s", sl_strerror(rc));
			} else {
				memcpy(rt->topic_id, t->uuid, 16);
			}
		}
		if (rt->error_code == KERR_NONE) {
			rt->num_partitions = partitions;
			rt->replication_factor = 1;
			rt->configs_count = 0; /* v5+: only non-default configs would be listed */
		} else {
			rt->error_message = api_kstr_dup(req, msg);
			rt->configs_count = -1;
		}
	}
	kmsg_create_topics_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
}

void handle_delete_topics(struct agent *a, struct request *req, const struct kmsg_delete_topics_req *m)
{
	struct kmsg_delete_topics_resp r;
	kmsg_delete_topics_resp_init(&r);
	/* v0-5 name topics in topic_names; v6+ in topics (by name or id). */
	bool by_state = req->api_version >= 6;
	int32_t n = by_state ? m->topics_count : m->topic_names_count;
	r.responses_count = n > 0 ? n : 0;
	if (!REQ_ARRAY(req, r.responses_count, r.responses)) {
		request_fail_close(req);
		return;
	}
	for (int32_t i = 0; i < r.responses_count; i++) {
		struct kmsg_delete_topics_resp_deletable_topic_result *rt = &r.responses[i];
		kmsg_delete_topics_resp_deletable_topic_result_init(rt);
		struct topic_state *t;
		if (by_state && m->topics[i].name.len < 0) {
			memcpy(rt->topic_id, m->topics[i].topic_id, 16);
			t = agent_topic_by_uuid(a, m->topics[i].topic_id);
			if (!t) {
				rt->error_code = KERR_UNKNOWN_TOPIC_ID;
				continue;
			}
		} else {
			kstr name = by_state ? m->topics[i].name : m->topic_names[i];
			rt->name = name;
			t = agent_topic(a, name);
			if (!t) {
				rt->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
				continue;
			}
		}
		rt->name = api_kstr_dup(req, t->name);
		memcpy(rt->topic_id, t->uuid, 16);
		if (agent_topic_delete(a, t) != 0)
			rt->error_code = KERR_UNKNOWN_SERVER_ERROR;
	}
	kmsg_delete_topics_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
}

struct delrec_job {
	struct maint_job tj;
	struct request *req;
	struct kmsg_delete_records_resp r;
	/* tj.items[i]'s answer */
	struct kmsg_delete_records_resp_delete_records_partition_result **rps;
};

/* One partition's checks, as Kafka's leader makes them; on error the low
 * watermark is -1. Returns KERR_NONE when the trim may go ahead (with the
 * offset -1, "the high watermark", resolved). */
static int16_t delete_records_check(struct topic_state *t, int32_t partition, int64_t *offset)
{
	if (!t || partition < 0 || partition >= t->partition_count)
		return KERR_UNKNOWN_TOPIC_OR_PARTITION;
	if (!retention_policy_deletes(t))
		return KERR_POLICY_VIOLATION;
	const struct partition_state *ps = &t->parts[partition];
	if (*offset == -1) /* DeleteRecordsRequest.HIGH_WATERMARK */
		*offset = ps->high_watermark;
	if (*offset < 0 || *offset > ps->high_watermark)
		return KERR_OFFSET_OUT_OF_RANGE;
	return KERR_NONE;
}

static void delete_records_respond(struct delrec_job *job)
{
	kmsg_delete_records_resp_encode(&job->req->resp, job->req->api_version, &job->r);
	request_respond(job->req);
}

/* The trims are back (the agent's log starts already raised; a topic
 * deleted meanwhile keeps the answer its trim got). */
static void delete_records_done(struct maint_job *tj, void *arg)
{
	struct delrec_job *job = arg;
	for (size_t i = 0; i < tj->n; i++) {
		const struct maint_trim *it = &tj->items[i];
		if (!it->err) {
			job->rps[i]->low_watermark = it->log_start;
			continue;
		}
		if (it->err != SL_ENOTFOUND)
			log_error("DeleteRecords: trimming partition %d of topic %" PRId64 ": %s",
				  it->partition, it->tid, sl_strerror(it->err));
		job->rps[i]->error_code = it->err == SL_ENOTFOUND ? KERR_UNKNOWN_TOPIC_OR_PARTITION
								  : KERR_UNKNOWN_SERVER_ERROR;
	}
	delete_records_respond(job);
}

/* The partitions that pass the checks are trimmed through the agent's
 * maintenance queue (a trim may delete many rows and waits on the store's
 * fsync), then the answer goes out from the loop. The job lives in the
 * request's arena, which outlives it even if the client goes. */
void handle_delete_records(struct agent *a, struct request *req, const struct kmsg_delete_records_req *m)
{
	struct delrec_job *job = arena_alloc(&req->arena, sizeof *job);
	size_t total = 0;
	for (int32_t i = 0; i < m->topics_count; i++)
		total += m->topics[i].partitions_count > 0 ? (size_t)m->topics[i].partitions_count : 0;
	struct maint_trim *items;
	struct kmsg_delete_records_resp_delete_records_partition_result **rps;
	if (!job || !REQ_ARRAY(req, total, items) || !REQ_ARRAY(req, total, rps)) {
		request_fail_close(req);
		return;
	}
	*job = (struct delrec_job){ .tj = { .items = items, .done = delete_records_done, .arg = job },
				    .req = req, .rps = rps };
	kmsg_delete_records_resp_init(&job->r);
	struct kmsg_delete_records_resp *r = &job->r;
	r->topics_count = m->topics_count > 0 ? m->topics_count : 0;
	if (!REQ_ARRAY(req, r->topics_count, r->topics)) {
		request_fail_close(req);
		return;
	}
	for (int32_t i = 0; i < r->topics_count; i++) {
		struct kmsg_delete_records_req_delete_records_topic *qt = &m->topics[i];
		struct kmsg_delete_records_resp_delete_records_topic_result *rt = &r->topics[i];
		kmsg_delete_records_resp_delete_records_topic_result_init(rt);
		rt->name = qt->name;
		rt->partitions_count = qt->partitions_count > 0 ? qt->partitions_count : 0;
		if (!REQ_ARRAY(req, rt->partitions_count, rt->partitions)) {
			request_fail_close(req);
			return;
		}
		struct topic_state *t = agent_topic(a, qt->name);
		for (int32_t j = 0; j < rt->partitions_count; j++) {
			struct kmsg_delete_records_resp_delete_records_partition_result *rp =
				&rt->partitions[j];
			kmsg_delete_records_resp_delete_records_partition_result_init(rp);
			rp->partition_index = qt->partitions[j].partition_index;
			rp->low_watermark = -1;
			int64_t offset = qt->partitions[j].offset;
			rp->error_code = delete_records_check(t, rp->partition_index, &offset);
			if (rp->error_code != KERR_NONE)
				continue;
			job->rps[job->tj.n] = rp;
			job->tj.items[job->tj.n++] = (struct maint_trim){
				.tid = t->tid, .partition = rp->partition_index,
				.trim = { offset, -1, -1, t->parts[rp->partition_index].high_watermark } };
		}
	}
	if (job->tj.n == 0)
		delete_records_respond(job);
	else
		maint_submit(a, &job->tj);
}

void handle_create_partitions(struct agent *a, struct request *req, const struct kmsg_create_partitions_req *m)
{
	struct kmsg_create_partitions_resp r;
	kmsg_create_partitions_resp_init(&r);
	r.results_count = m->topics_count > 0 ? m->topics_count : 0;
	if (!REQ_ARRAY(req, r.results_count, r.results)) {
		request_fail_close(req);
		return;
	}
	for (int32_t i = 0; i < r.results_count; i++) {
		struct kmsg_create_partitions_req_create_partitions_topic *qt = &m->topics[i];
		struct kmsg_create_partitions_resp_create_partitions_topic_result *rt = &r.results[i];
		kmsg_create_partitions_resp_create_partitions_topic_result_init(rt);
		rt->name = qt->name;
		struct topic_state *t = agent_topic(a, qt->name);
		char msg[200] = "";
		if (!t) {
			rt->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
			snprintf(msg, sizeof msg, "The topic does not exist.");
		} else if (qt->assignments_count > 0) {
			rt->error_code = KERR_INVALID_REPLICA_ASSIGNMENT;
			snprintf(msg, sizeof msg, "Sluice places no replicas; omit the assignment.");
		} else if (qt->count <= t->partition_count) {
			rt->error_code = KERR_INVALID_PARTITIONS;
			snprintf(msg, sizeof msg, "Topic currently has %d partitions, which is higher than or equal to the requested %d.",
				 t->partition_count, qt->count);
		} else if (qt->count > SL_PARTITIONS_PER_TOPIC_MAX) {
			rt->error_code = KERR_INVALID_PARTITIONS;
			snprintf(msg, sizeof msg, "At most %d partitions per topic.", SL_PARTITIONS_PER_TOPIC_MAX);
		} else if (!m->validate_only && agent_topic_add_partitions(a, t, qt->count) != 0) {
			rt->error_code = KERR_UNKNOWN_SERVER_ERROR;
		}
		if (rt->error_code != KERR_NONE)
			rt->error_message = api_kstr_dup(req, msg);
	}
	kmsg_create_partitions_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
}

/* Producer ids come in blocks from the metadata store, as Kafka's
 * controller hands out blocks of 1,000: unique across agents and
 * restarts, one store write per block. */
#define PRODUCER_ID_BLOCK 1000

static int next_producer_id(struct agent *a, int64_t *id)
{
	if (a->producer_id_next >= a->producer_id_end) {
		int64_t first;
		int rc = meta_producer_ids_alloc(a->meta, PRODUCER_ID_BLOCK, &first);
		if (rc) {
			log_error("allocating producer ids: %s", sl_strerror(rc));
			return rc;
		}
		a->producer_id_next = first;
		a->producer_id_end = first + PRODUCER_ID_BLOCK;
	}
	*id = a->producer_id_next++;
	return 0;
}

void handle_init_producer_id(struct agent *a, struct request *req, const struct kmsg_init_producer_id_req *m)
{
	struct kmsg_init_producer_id_resp r;
	kmsg_init_producer_id_resp_init(&r);
	if (m->transactional_id.len >= 0) {
		/* Transactions are not implemented: say so with the code Kafka
		 * uses when a transactional id cannot be served. */
		r.error_code = KERR_COORDINATOR_NOT_AVAILABLE;
		r.producer_id = -1;
		r.producer_epoch = -1;
	} else if (next_producer_id(a, &r.producer_id) != 0) {
		/* Kafka's answer while its id manager has no block (retriable). */
		r.error_code = KERR_COORDINATOR_LOAD_IN_PROGRESS;
		r.producer_id = -1;
		r.producer_epoch = -1;
	} else {
		r.producer_epoch = 0;
	}
	kmsg_init_producer_id_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
}
