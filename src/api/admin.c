/* admin.c — CreateTopics, DeleteTopics, CreatePartitions, DeleteRecords
 * and InitProducerId. Their metadata writes run off the loop (agent_job,
 * or the maintenance queue for DeleteRecords); each answer goes out when
 * the store is done. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/acls.h"
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

struct given_configs {
	const struct meta_config *configs;
	int32_t n;
};

/* A CreateTopics topic's value of a config (the last given wins), or NULL
 * for the default. */
static const char *given_config(void *arg, const char *name)
{
	const struct given_configs *g = arg;
	const char *v = NULL;
	for (int32_t i = 0; i < g->n; i++)
		if (strcmp(g->configs[i].name, name) == 0)
			v = g->configs[i].value;
	return v;
}

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
		if (!kstr_copy(ct->configs[i].value, value, sizeof value)) {
			snprintf(msg, cap, "Invalid value for configuration %s", name);
			return KERR_INVALID_CONFIG;
		}
		if (!topic_config_value_check(d, value, msg, cap))
			return KERR_INVALID_CONFIG;
		strcpy(out[i].name, name);
		strcpy(out[i].value, value);
	}
	struct given_configs g = { out, ct->configs_count };
	if (!topic_config_conflicts_check(given_config, &g, msg, cap))
		return KERR_INVALID_CONFIG;
	return KERR_NONE;
}

static int cmp_i32(const void *x, const void *y)
{
	int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
	return (a > b) - (a < b);
}

/* One partition's manual replica list, checked as Kafka's controller
 * (validateManualPartitionAssignment): non-empty, live brokers only (an
 * agent's placement view lists the live ones), each once, and as long as
 * the other partitions' (want, -1: the first list sets it). Returns
 * KERR_NONE or INVALID_REPLICA_ASSIGNMENT with msg filled. */
static int16_t check_replica_list(struct agent *a, const int32_t *list, int32_t r, int32_t want,
				  char *msg, size_t cap)
{
	if (r <= 0) {
		snprintf(msg, cap, "The manual partition assignment includes an empty replica list.");
		return KERR_INVALID_REPLICA_ASSIGNMENT;
	}
	/* A broker named twice is refused, so a list is at most as long as
	 * the cluster. */
	int32_t ids[SL_CLUSTER_AGENTS_MAX];
	if (r > SL_CLUSTER_AGENTS_MAX) {
		snprintf(msg, cap, "The manual partition assignment names %d replicas; the "
			 "cluster has at most %d brokers.", r, SL_CLUSTER_AGENTS_MAX);
		return KERR_INVALID_REPLICA_ASSIGNMENT;
	}
	memcpy(ids, list, sizeof *ids * (size_t)r);
	qsort(ids, (size_t)r, sizeof *ids, cmp_i32);
	for (int32_t k = 0; k < r; k++) {
		if (!placement_find(&a->placement, ids[k])) {
			snprintf(msg, cap, "The manual partition assignment includes broker %d, "
				 "but no such broker is registered.", ids[k]);
			return KERR_INVALID_REPLICA_ASSIGNMENT;
		}
		if (k > 0 && ids[k] == ids[k - 1]) {
			snprintf(msg, cap, "The manual partition assignment includes the broker "
				 "%d more than once.", ids[k]);
			return KERR_INVALID_REPLICA_ASSIGNMENT;
		}
	}
	if (want >= 0 && r != want) {
		snprintf(msg, cap, "The manual partition assignment includes a partition with "
			 "%d replica(s), but this is not consistent with previous partitions, "
			 "which have %d replica(s).", r, want);
		return KERR_INVALID_REPLICA_ASSIGNMENT;
	}
	return KERR_NONE;
}

/* Past SL_REPLICA_ASSIGNMENT_IDS_MAX broker ids in all (Sluice's bound). */
static int16_t check_assignment_size(int64_t ids, char *msg, size_t cap)
{
	if (ids <= SL_REPLICA_ASSIGNMENT_IDS_MAX)
		return KERR_NONE;
	snprintf(msg, cap, "The manual partition assignment names %" PRId64 " replicas in all; "
		 "at most %d are kept.", ids, SL_REPLICA_ASSIGNMENT_IDS_MAX);
	return KERR_INVALID_REPLICA_ASSIGNMENT;
}

/* A CreateTopics manual replica assignment, checked as Kafka's controller
 * checks it (ReplicationControlManager): it excludes num_partitions and
 * replication_factor (INVALID_REQUEST), names partitions 0..n-1 once each,
 * and every replica list passes check_replica_list. The store replicates,
 * so an accepted assignment is recorded and reported (Metadata's
 * replicas), no data is copied. Returns KERR_NONE with *partitions and
 * out set (ids in the request's arena, in partition order, each list as
 * given: its first is the preferred leader), or the error with msg
 * filled. */
static int16_t check_assignments(struct agent *a, struct request *req,
				 const struct kmsg_create_topics_req_creatable_topic *ct,
				 int32_t *partitions, struct meta_replicas *out, char *msg, size_t cap)
{
	if (ct->replication_factor != -1) {
		snprintf(msg, cap, "A manual partition assignment was specified, but replication "
			 "factor was not set to -1.");
		return KERR_INVALID_REQUEST;
	}
	if (ct->num_partitions != -1) {
		snprintf(msg, cap, "A manual partition assignment was specified, but numPartitions "
			 "was not set to -1.");
		return KERR_INVALID_REQUEST;
	}
	int32_t n = ct->assignments_count;
	if (n > SL_PARTITIONS_PER_TOPIC_MAX) {
		snprintf(msg, cap, "Number of partitions must be between 1 and %d.",
			 SL_PARTITIONS_PER_TOPIC_MAX);
		return KERR_INVALID_PARTITIONS;
	}
	/* Which indexes are named: one bit each, 0..n-1 only. */
	uint8_t seen[(SL_PARTITIONS_PER_TOPIC_MAX + 7) / 8];
	memset(seen, 0, ((size_t)n + 7) / 8);
	int32_t replication = -1;
	for (int32_t i = 0; i < n; i++) {
		const struct kmsg_create_topics_req_creatable_replica_assignment *as = &ct->assignments[i];
		int32_t p = as->partition_index;
		if (p >= 0 && p < n && (seen[p / 8] & (1u << (p % 8)))) {
			snprintf(msg, cap, "Found multiple manual partition assignments for partition %d", p);
			return KERR_INVALID_REPLICA_ASSIGNMENT;
		}
		if (p >= 0 && p < n)
			seen[p / 8] |= (uint8_t)(1u << (p % 8));
		int16_t err = check_replica_list(a, as->broker_ids, as->broker_ids_count, replication,
						 msg, cap);
		if (err != KERR_NONE)
			return err;
		replication = as->broker_ids_count;
	}
	for (int32_t p = 0; p < n; p++)
		if (!(seen[p / 8] & (1u << (p % 8)))) {
			snprintf(msg, cap, "partitions should be a consecutive 0-based integer sequence");
			return KERR_INVALID_REPLICA_ASSIGNMENT;
		}
	int16_t err = check_assignment_size((int64_t)n * replication, msg, cap);
	if (err != KERR_NONE)
		return err;
	int32_t *ids;
	if (!REQ_ARRAY(req, (size_t)n * (size_t)replication, ids))
		return -1; /* out of memory: the caller closes */
	for (int32_t i = 0; i < n; i++) {
		const struct kmsg_create_topics_req_creatable_replica_assignment *as = &ct->assignments[i];
		memcpy(&ids[(size_t)as->partition_index * (size_t)replication], as->broker_ids,
		       (size_t)replication * sizeof *ids);
	}
	*partitions = n;
	*out = (struct meta_replicas){ .first = 0, .replication = (int16_t)replication, .ids = ids };
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

/* One topic of a CreateTopics that passed the checks: created in the
 * store on the pool, then added to the catalog on the loop. */
struct create_item {
	struct kmsg_create_topics_resp_creatable_topic_result *rt;
	char name[META_TOPIC_NAME_BYTES];
	int32_t partitions;
	int16_t replicas; /* the assignment's replication factor, else 1 */
	struct meta_replicas assignment; /* replication 0: none */
	const struct meta_config *configs;
	int32_t config_count;
	struct meta_topic mt; /* out */
	int rc;               /* out */
};

struct create_job {
	struct agent_job job;
	struct request *req;
	struct kmsg_create_topics_resp r;
	struct create_item *items;
	size_t n;
};

/* The topic's answer, once its error code (and message) are known. */
static void create_result_finish(struct request *req,
				 struct kmsg_create_topics_resp_creatable_topic_result *rt,
				 int32_t partitions, int16_t replicas, const char *msg)
{
	if (rt->error_code == KERR_NONE) {
		rt->num_partitions = partitions;
		rt->replication_factor = replicas;
		rt->error_message = KSTR_NULL; /* Kafka's answer on success */
		rt->configs_count = 0; /* v5+: only non-default configs would be listed */
	} else {
		rt->error_message = api_kstr_dup(req, msg);
		rt->configs_count = -1;
	}
}

static void create_topics_respond(struct create_job *cj)
{
	kmsg_create_topics_resp_encode(&cj->req->resp, cj->req->api_version, &cj->r);
	request_respond(cj->req);
}

/* Pool thread: the store's transactions (each an fsync). Two requests
 * for one name both passed the catalog check; the store's unique name
 * makes the second SL_EEXIST. */
static void create_topics_run(struct agent_job *job)
{
	struct create_job *cj = (struct create_job *)job;
	for (size_t i = 0; i < cj->n; i++) {
		struct create_item *it = &cj->items[i];
		it->rc = meta_topic_create(job->a->meta, it->name, it->partitions, it->configs,
					   it->config_count,
					   it->assignment.replication ? &it->assignment : NULL, &it->mt);
	}
}

static void create_topics_done(struct agent_job *job)
{
	struct create_job *cj = (struct create_job *)job;
	for (size_t i = 0; i < cj->n; i++) {
		struct create_item *it = &cj->items[i];
		struct topic_state *t = NULL;
		char msg[600] = "";
		int rc = it->rc ? it->rc : agent_topic_created(job->a, &it->mt, &t);
		meta_topic_free(&it->mt);
		if (rc == SL_EEXIST) {
			it->rt->error_code = KERR_TOPIC_ALREADY_EXISTS;
		} else if (rc) {
			it->rt->error_code = KERR_UNKNOWN_SERVER_ERROR;
			snprintf(msg, sizeof msg, "%s", sl_strerror(rc));
		} else {
			memcpy(it->rt->topic_id, t->uuid, 16);
		}
		create_result_finish(cj->req, it->rt, it->partitions, it->replicas, msg);
	}
	create_topics_respond(cj);
}

/* Each topic is checked on the loop; those to create go to the store in
 * one agent_job (off the loop: each creation waits for an fsync), and
 * the answer goes out when it is back. */
void handle_create_topics(struct agent *a, struct request *req, const struct kmsg_create_topics_req *m)
{
	struct create_job *cj = arena_alloc(&req->arena, sizeof *cj);
	int32_t n = m->topics_count > 0 ? m->topics_count : 0;
	uint8_t *dup = NULL;
	if (!cj) {
		request_fail_close(req);
		return;
	}
	*cj = (struct create_job){ .req = req };
	struct kmsg_create_topics_resp *r = &cj->r;
	kmsg_create_topics_resp_init(r);
	if (!REQ_ARRAY(req, n, r->topics) || !REQ_ARRAY(req, n, dup) ||
	    !REQ_ARRAY(req, n, cj->items) || mark_duplicate_names(m, dup) != 0) {
		request_fail_close(req);
		return;
	}
	r->topics_count = 0;
	/* Kafka: CREATE on the cluster, else on each topic. */
	bool may_all = api_allowed_cluster(a, req, ACL_OP_CREATE);
	for (int32_t i = 0; i < n; i++) {
		if (dup[i] == DUP_LATER)
			continue;
		struct kmsg_create_topics_req_creatable_topic *ct = &m->topics[i];
		struct kmsg_create_topics_resp_creatable_topic_result *rt = &r->topics[r->topics_count++];
		kmsg_create_topics_resp_creatable_topic_result_init(rt);
		rt->name = ct->name;
		char msg[600] = "";
		char name[META_TOPIC_NAME_BYTES];
		int32_t partitions = ct->num_partitions == -1 ? a->cfg.default_partitions : ct->num_partitions;
		/* The replication factor answered: the assignment's, else 1. */
		struct meta_replicas assignment = { .replication = 0 };
		struct meta_config *configs = NULL;
		if (dup[i] == DUP_FIRST) {
			rt->error_code = KERR_INVALID_REQUEST;
			snprintf(msg, sizeof msg, "Duplicate topic name.");
		} else if (!may_all && !api_allowed_topic(a, req, ct->name, ACL_OP_CREATE)) {
			rt->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
			snprintf(msg, sizeof msg, "Authorization failed.");
		} else if (!topic_name_valid(ct->name) || !kstr_copy(ct->name, name, sizeof name)) {
			rt->error_code = KERR_INVALID_TOPIC_EXCEPTION;
			snprintf(msg, sizeof msg, "Topic name is invalid");
		} else if (agent_topic(a, ct->name)) {
			rt->error_code = KERR_TOPIC_ALREADY_EXISTS;
			snprintf(msg, sizeof msg, "Topic '%s' already exists.", name);
		} else if (ct->assignments_count > 0 &&
			   (rt->error_code = check_assignments(a, req, ct, &partitions, &assignment,
							       msg, sizeof msg)) != KERR_NONE) {
			/* refused as Kafka's controller refuses it */
			if (rt->error_code < 0) {
				request_fail_close(req);
				return;
			}
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
			struct create_item *it = &cj->items[cj->n++];
			*it = (struct create_item){ .rt = rt, .partitions = partitions,
						    .replicas = assignment.replication ? assignment.replication : 1,
						    .assignment = assignment,
						    .configs = configs,
						    .config_count = ct->configs_count };
			memcpy(it->name, name, sizeof name);
			continue; /* answered when the store is done */
		}
		create_result_finish(req, rt, partitions,
				     assignment.replication ? assignment.replication : 1, msg);
	}
	if (cj->n == 0) {
		create_topics_respond(cj);
		return;
	}
	cj->job.run = create_topics_run;
	cj->job.done = create_topics_done;
	agent_job_submit(a, &cj->job);
}

/* One topic of a DeleteTopics: deleted from the store on the pool (its
 * batch rows may be millions), then from the catalog on the loop. */
struct delete_item {
	struct kmsg_delete_topics_resp_deletable_topic_result *rt;
	int64_t tid;
	char name[META_TOPIC_NAME_BYTES];
	int rc; /* out */
};

struct delete_job {
	struct agent_job job;
	struct request *req;
	struct kmsg_delete_topics_resp r;
	struct delete_item *items;
	size_t n;
};

static void delete_topics_respond(struct delete_job *dj)
{
	kmsg_delete_topics_resp_encode(&dj->req->resp, dj->req->api_version, &dj->r);
	request_respond(dj->req);
}

static void delete_topics_run(struct agent_job *job)
{
	struct delete_job *dj = (struct delete_job *)job;
	for (size_t i = 0; i < dj->n; i++)
		dj->items[i].rc = meta_topic_delete(job->a->meta, dj->items[i].name);
}

/* The topics marked deleting are still in the catalog (only a delete
 * removes one, and a second one finds it marked). */
static void delete_topics_done(struct agent_job *job)
{
	struct delete_job *dj = (struct delete_job *)job;
	for (size_t i = 0; i < dj->n; i++) {
		struct delete_item *it = &dj->items[i];
		struct topic_state *t = agent_topic_by_tid(job->a, it->tid);
		if (it->rc && it->rc != SL_ENOTFOUND) {
			it->rt->error_code = KERR_UNKNOWN_SERVER_ERROR;
			if (t)
				t->deleting = false;
		} else if (t) {
			agent_topic_deleted(job->a, t);
		}
	}
	delete_topics_respond(dj);
}

/* Topics are looked up and marked on the loop; the store deletes them in
 * one agent_job; the catalog forgets them and the answer goes out when it
 * is back. Until then the topic is still served (a produce to it gets no
 * offsets if its commit comes after the delete's). */
void handle_delete_topics(struct agent *a, struct request *req, const struct kmsg_delete_topics_req *m)
{
	struct delete_job *dj = arena_alloc(&req->arena, sizeof *dj);
	if (!dj) {
		request_fail_close(req);
		return;
	}
	*dj = (struct delete_job){ .req = req };
	struct kmsg_delete_topics_resp *r = &dj->r;
	kmsg_delete_topics_resp_init(r);
	/* v0-5 name topics in topic_names; v6+ in topics (by name or id). */
	bool by_state = req->api_version >= 6;
	int32_t n = by_state ? m->topics_count : m->topic_names_count;
	r->responses_count = n > 0 ? n : 0;
	if (!REQ_ARRAY(req, r->responses_count, r->responses) ||
	    !REQ_ARRAY(req, r->responses_count, dj->items)) {
		request_fail_close(req);
		return;
	}
	for (int32_t i = 0; i < r->responses_count; i++) {
		struct kmsg_delete_topics_resp_deletable_topic_result *rt = &r->responses[i];
		kmsg_delete_topics_resp_deletable_topic_result_init(rt);
		struct topic_state *t;
		if (by_state && m->topics[i].name.len < 0) {
			memcpy(rt->topic_id, m->topics[i].topic_id, 16);
			t = agent_topic_by_uuid(a, m->topics[i].topic_id);
			if (!t || t->deleting) {
				rt->error_code = KERR_UNKNOWN_TOPIC_ID;
				continue;
			}
			if (!api_allowed(a, req, ACL_RESOURCE_TOPIC, t->name, ACL_OP_DELETE)) {
				rt->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
				continue;
			}
		} else {
			kstr name = by_state ? m->topics[i].name : m->topic_names[i];
			rt->name = name;
			if (!api_allowed_topic(a, req, name, ACL_OP_DELETE)) {
				rt->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
				continue;
			}
			t = agent_topic(a, name);
			if (!t || t->deleting) {
				rt->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
				continue;
			}
		}
		rt->name = api_kstr_dup(req, t->name);
		memcpy(rt->topic_id, t->uuid, 16);
		t->deleting = true;
		struct delete_item *it = &dj->items[dj->n++];
		*it = (struct delete_item){ .rt = rt, .tid = t->tid };
		memcpy(it->name, t->name, sizeof it->name);
	}
	if (dj->n == 0) {
		delete_topics_respond(dj);
		return;
	}
	dj->job.run = delete_topics_run;
	dj->job.done = delete_topics_done;
	agent_job_submit(a, &dj->job);
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
		bool may = api_allowed_topic(a, req, qt->name, ACL_OP_DELETE);
		for (int32_t j = 0; j < rt->partitions_count; j++) {
			struct kmsg_delete_records_resp_delete_records_partition_result *rp =
				&rt->partitions[j];
			kmsg_delete_records_resp_delete_records_partition_result_init(rp);
			rp->partition_index = qt->partitions[j].partition_index;
			rp->low_watermark = -1;
			int64_t offset = qt->partitions[j].offset;
			rp->error_code = may ? delete_records_check(t, rp->partition_index, &offset)
					     : KERR_TOPIC_AUTHORIZATION_FAILED;
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

/* One topic of a CreatePartitions that passed the checks. */
struct grow_item {
	struct kmsg_create_partitions_resp_create_partitions_topic_result *rt;
	int64_t tid;
	int32_t count;
	struct meta_replicas assignment; /* replication 0: none */
	int rc; /* out */
};

struct grow_job {
	struct agent_job job;
	struct request *req;
	struct kmsg_create_partitions_resp r;
	struct grow_item *items;
	size_t n;
};

static void create_partitions_respond(struct grow_job *gj)
{
	kmsg_create_partitions_resp_encode(&gj->req->resp, gj->req->api_version, &gj->r);
	request_respond(gj->req);
}

static void create_partitions_run(struct agent_job *job)
{
	struct grow_job *gj = (struct grow_job *)job;
	for (size_t i = 0; i < gj->n; i++)
		gj->items[i].rc = meta_topic_set_partitions(
			job->a->meta, gj->items[i].tid, gj->items[i].count,
			gj->items[i].assignment.replication ? &gj->items[i].assignment : NULL);
}

/* Another CreatePartitions may have grown the topic meanwhile (the store
 * then refuses a count not above its own), or a DeleteTopics removed it. */
static void create_partitions_done(struct agent_job *job)
{
	struct grow_job *gj = (struct grow_job *)job;
	for (size_t i = 0; i < gj->n; i++) {
		struct grow_item *it = &gj->items[i];
		struct topic_state *t = agent_topic_by_tid(job->a, it->tid);
		int rc = it->rc;
		if (!rc && t)
			rc = agent_topic_grown(t, it->count,
					       it->assignment.replication ? &it->assignment : NULL);
		if (rc == SL_ENOTFOUND) {
			it->rt->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
			it->rt->error_message = KSTR("The topic does not exist.");
		} else if (rc == SL_EINVAL) {
			it->rt->error_code = KERR_INVALID_PARTITIONS;
			it->rt->error_message = KSTR("The topic has as many partitions already.");
		} else if (rc) {
			it->rt->error_code = KERR_UNKNOWN_SERVER_ERROR;
			it->rt->error_message = KSTR("");
		}
	}
	create_partitions_respond(gj);
}

/* A CreatePartitions assignment (not null), as Kafka's controller
 * checks it (createPartitions): one list per added partition, each
 * passing check_replica_list against the topic's replication factor
 * (partition 0's replicas as Metadata reports them: its assignment's,
 * else 1, the leader alone). Returns KERR_NONE with out set (ids in the
 * request's arena), the error with msg filled, or -1 out of memory. */
static int16_t check_grow_assignments(struct agent *a, struct request *req,
				      const struct topic_state *t,
				      const struct kmsg_create_partitions_req_create_partitions_topic *qt,
				      struct meta_replicas *out, char *msg, size_t cap)
{
	int32_t added = qt->count - t->partition_count;
	if (qt->assignments_count != added) {
		snprintf(msg, cap, "Attempted to add %d additional partition(s), but only %d "
			 "assignment(s) were specified.", added, qt->assignments_count);
		return KERR_INVALID_REPLICA_ASSIGNMENT;
	}
	int32_t rf = t->replicas && t->replicas[0] >= 0 ? t->replication : 1;
	for (int32_t i = 0; i < added; i++) {
		const struct kmsg_create_partitions_req_create_partitions_assignment *as =
			&qt->assignments[i];
		int16_t err = check_replica_list(a, as->broker_ids, as->broker_ids_count, rf, msg, cap);
		if (err != KERR_NONE)
			return err;
	}
	int16_t err = check_assignment_size((int64_t)qt->count * rf, msg, cap);
	if (err != KERR_NONE)
		return err;
	int32_t *ids;
	if (!REQ_ARRAY(req, (size_t)added * (size_t)rf, ids))
		return -1;
	for (int32_t i = 0; i < added; i++)
		memcpy(&ids[(size_t)i * (size_t)rf], qt->assignments[i].broker_ids,
		       (size_t)rf * sizeof *ids);
	*out = (struct meta_replicas){ .first = t->partition_count, .replication = (int16_t)rf,
				       .ids = ids };
	return KERR_NONE;
}

void handle_create_partitions(struct agent *a, struct request *req, const struct kmsg_create_partitions_req *m)
{
	struct grow_job *gj = arena_alloc(&req->arena, sizeof *gj);
	if (!gj) {
		request_fail_close(req);
		return;
	}
	*gj = (struct grow_job){ .req = req };
	struct kmsg_create_partitions_resp *r = &gj->r;
	kmsg_create_partitions_resp_init(r);
	r->results_count = m->topics_count > 0 ? m->topics_count : 0;
	if (!REQ_ARRAY(req, r->results_count, r->results) ||
	    !REQ_ARRAY(req, r->results_count, gj->items)) {
		request_fail_close(req);
		return;
	}
	for (int32_t i = 0; i < r->results_count; i++) {
		struct kmsg_create_partitions_req_create_partitions_topic *qt = &m->topics[i];
		struct kmsg_create_partitions_resp_create_partitions_topic_result *rt = &r->results[i];
		kmsg_create_partitions_resp_create_partitions_topic_result_init(rt);
		rt->name = qt->name;
		struct topic_state *t = agent_topic(a, qt->name);
		struct meta_replicas assignment = { .replication = 0 };
		char msg[400] = "";
		/* A topic being deleted is gone, as in KRaft (where a delete is
		 * immediate): growing it would answer success for nothing. */
		if (!api_allowed_topic(a, req, qt->name, ACL_OP_ALTER)) {
			rt->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
			snprintf(msg, sizeof msg, "Authorization failed.");
		} else if (!t || t->deleting) {
			rt->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
			snprintf(msg, sizeof msg, "The topic does not exist.");
		} else if (qt->count == t->partition_count) {
			/* Kafka 3.9's controller's two messages (createPartitions) */
			rt->error_code = KERR_INVALID_PARTITIONS;
			snprintf(msg, sizeof msg, "Topic already has %d partition(s).",
				 t->partition_count);
		} else if (qt->count < t->partition_count) {
			rt->error_code = KERR_INVALID_PARTITIONS;
			snprintf(msg, sizeof msg, "The topic %s currently has %d partition(s); %d would not be an increase.",
				 t->name, t->partition_count, qt->count);
		} else if (qt->count > SL_PARTITIONS_PER_TOPIC_MAX) {
			rt->error_code = KERR_INVALID_PARTITIONS;
			snprintf(msg, sizeof msg, "At most %d partitions per topic.", SL_PARTITIONS_PER_TOPIC_MAX);
		} else if (qt->assignments_count >= 0 &&
			   (rt->error_code = check_grow_assignments(a, req, t, qt, &assignment, msg,
								    sizeof msg)) != KERR_NONE) {
			/* refused as Kafka's controller refuses it */
			if (rt->error_code < 0) {
				request_fail_close(req);
				return;
			}
		} else if (!m->validate_only) {
			gj->items[gj->n++] = (struct grow_item){ rt, t->tid, qt->count, assignment, 0 };
		}
		if (rt->error_code != KERR_NONE)
			rt->error_message = api_kstr_dup(req, msg);
	}
	if (gj->n == 0) {
		create_partitions_respond(gj);
		return;
	}
	gj->job.run = create_partitions_run;
	gj->job.done = create_partitions_done;
	agent_job_submit(a, &gj->job);
}

/* Producer ids come in blocks from the metadata store, as Kafka's
 * controller hands out blocks of 1,000: unique across agents and
 * restarts, one store write per block. The write (an fsync) runs off the
 * loop: a request that finds the block used up takes a new one in an
 * agent_job. Requests that do so at the same time each take one; the
 * first back becomes the agent's block and the others take their id from
 * it (their own blocks are left unused: ids only need to be unique). */
#define PRODUCER_ID_BLOCK 1000

struct pid_job {
	struct agent_job job;
	struct request *req;
	int64_t first; /* out */
	int rc;        /* out */
};

static void init_producer_id_respond(struct agent *a, struct request *req, bool block_failed)
{
	struct kmsg_init_producer_id_resp r;
	kmsg_init_producer_id_resp_init(&r);
	if (block_failed || a->producer_id_next >= a->producer_id_end) {
		/* Kafka's answer while its id manager has no block (retriable). */
		r.error_code = KERR_COORDINATOR_LOAD_IN_PROGRESS;
		r.producer_id = -1;
		r.producer_epoch = -1;
	} else {
		r.producer_id = a->producer_id_next++;
		r.producer_epoch = 0;
	}
	kmsg_init_producer_id_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
}

static void pid_block_run(struct agent_job *job)
{
	struct pid_job *pj = (struct pid_job *)job;
	pj->rc = meta_producer_ids_alloc(job->a->meta, PRODUCER_ID_BLOCK, &pj->first);
}

static void pid_block_done(struct agent_job *job)
{
	struct pid_job *pj = (struct pid_job *)job;
	struct agent *a = job->a;
	if (pj->rc)
		log_error("allocating producer ids: %s", sl_strerror(pj->rc));
	else if (a->producer_id_next >= a->producer_id_end) {
		a->producer_id_next = pj->first;
		a->producer_id_end = pj->first + PRODUCER_ID_BLOCK;
	}
	init_producer_id_respond(a, pj->req, pj->rc != 0);
}

static void init_producer_id_error(struct request *req, int16_t error)
{
	struct kmsg_init_producer_id_resp r;
	kmsg_init_producer_id_resp_init(&r);
	r.error_code = error;
	r.producer_id = -1;
	r.producer_epoch = -1;
	kmsg_init_producer_id_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
}

void handle_init_producer_id(struct agent *a, struct request *req, const struct kmsg_init_producer_id_req *m)
{
	/* Kafka 3.9: WRITE on the transactional id; without one (KIP-679)
	 * IDEMPOTENT_WRITE on the cluster or WRITE on some topic. */
	if (m->transactional_id.len >= 0 &&
	    !api_allowed_kstr(a, req, ACL_RESOURCE_TRANSACTIONAL_ID, m->transactional_id, ACL_OP_WRITE)) {
		init_producer_id_error(req, KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
		return;
	}
	if (m->transactional_id.len < 0 && !api_allowed_cluster(a, req, ACL_OP_IDEMPOTENT_WRITE) &&
	    !authz_allowed_any(agent_authorizer(a), request_principal(req), request_host(req),
			       ACL_RESOURCE_TOPIC, ACL_OP_WRITE)) {
		init_producer_id_error(req, KERR_CLUSTER_AUTHORIZATION_FAILED);
		return;
	}
	if (m->transactional_id.len >= 0) {
		/* No coordinator here (a shared store): the code Kafka uses
		 * when a transactional id cannot be served. */
		if (!api_txn_init_producer_id(a, req, m))
			init_producer_id_error(req, KERR_COORDINATOR_NOT_AVAILABLE);
		return;
	}
	if (a->producer_id_next < a->producer_id_end) {
		init_producer_id_respond(a, req, false);
		return;
	}
	struct pid_job *pj = arena_alloc(&req->arena, sizeof *pj);
	if (!pj) {
		request_fail_close(req);
		return;
	}
	*pj = (struct pid_job){ .req = req, .job = { .run = pid_block_run, .done = pid_block_done } };
	agent_job_submit(a, &pj->job);
}
