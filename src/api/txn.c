/* txn.c — the transaction coordinator's APIs (issue 14): InitProducerId
 * with a transactional id, AddPartitionsToTxn (v0-3 client form, v4+
 * batched and verify-only form), AddOffsetsToTxn and EndTxn, answered
 * by the transaction service (txn/service.h) once what they report is
 * stored. Kafka 3.9's KafkaApis checks come first (ACLs on the
 * transactional id, topics and group; partitions that do not exist), the
 * coordinator's in txn/coordinator.c. In a cluster each id has one
 * coordinator (agent_txn_acquire, agent/txn_coord.c): a request for an
 * id placed on another agent answers NOT_COORDINATOR, one whose lease
 * is being taken COORDINATOR_LOAD_IN_PROGRESS (both retriable). */
#include <string.h>

#include "agent/agent.h"
#include "api/handlers.h"
#include "base/limits.h"
#include "proto/kerr.h"
#include "txn/service.h"

/* ---------------------------------------------------------------- InitProducerId */

struct init_call {
	struct agent_txn_req base;  /* first */
	struct request *req;
};

static void init_answered(struct agent_txn_req *r, const struct txn_effect *e)
{
	struct init_call *c = (struct init_call *)r;
	struct kmsg_init_producer_id_resp resp;
	kmsg_init_producer_id_resp_init(&resp);
	resp.error_code = e->error;
	resp.producer_id = e->error == KERR_NONE ? e->producer_id : -1;
	resp.producer_epoch = e->error == KERR_NONE ? e->producer_epoch : -1;
	kmsg_init_producer_id_resp_encode(&c->req->resp, c->req->api_version, &resp);
	request_respond(c->req);
}

bool api_txn_init_producer_id(struct agent *a, struct request *req,
			      const struct kmsg_init_producer_id_req *m)
{
	if (!a->txns)
		return false;
	struct init_call *c = arena_alloc(&req->arena, sizeof *c);
	if (!c) {
		request_fail_close(req);
		return true;
	}
	c->base.answered = init_answered;
	c->req = req;
	int16_t err = agent_txn_acquire(a, m->transactional_id);
	if (err) {
		struct txn_effect e = { .kind = TXN_EFFECT_ANSWER, .error = err };
		init_answered(&c->base, &e);
		return true;
	}
	/* v0-2 carry no producer id and epoch (the codec leaves -1). */
	struct txn_init_args args = { m->transactional_id, m->transaction_timeout_ms,
				      m->producer_id, m->producer_epoch, req->api_version };
	txn_svc_init_producer_id(a->txns, &args, &c->base);
	return true;
}

/* ---------------------------------------------------------------- AddOffsetsToTxn, EndTxn */

/* A request whose answer is one error code. */
struct error_call {
	struct agent_txn_req base;  /* first */
	struct request *req;
	void (*respond)(struct request *req, int16_t error);
};

static void error_answered(struct agent_txn_req *r, const struct txn_effect *e)
{
	struct error_call *c = (struct error_call *)r;
	c->respond(c->req, e->error);
}

static struct error_call *error_call_new(struct request *req,
					 void (*respond)(struct request *, int16_t))
{
	struct error_call *c = arena_alloc(&req->arena, sizeof *c);
	if (!c)
		return NULL;
	c->base.answered = error_answered;
	c->req = req;
	c->respond = respond;
	return c;
}

static void add_offsets_respond(struct request *req, int16_t error)
{
	struct kmsg_add_offsets_to_txn_resp resp;
	kmsg_add_offsets_to_txn_resp_init(&resp);
	resp.error_code = error;
	kmsg_add_offsets_to_txn_resp_encode(&req->resp, req->api_version, &resp);
	request_respond(req);
}

void handle_add_offsets_to_txn(struct agent *a, struct request *req,
			       const struct kmsg_add_offsets_to_txn_req *m)
{
	/* Kafka 3.9: WRITE on the transactional id, then READ on the group. */
	if (!api_allowed_kstr(a, req, ACL_RESOURCE_TRANSACTIONAL_ID, m->transactional_id,
			      ACL_OP_WRITE)) {
		add_offsets_respond(req, KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
		return;
	}
	if (!api_allowed_group(a, req, m->group_id, ACL_OP_READ)) {
		add_offsets_respond(req, KERR_GROUP_AUTHORIZATION_FAILED);
		return;
	}
	int16_t err = agent_txn_acquire(a, m->transactional_id);
	if (err) {
		add_offsets_respond(req, err);
		return;
	}
	struct error_call *c = error_call_new(req, add_offsets_respond);
	if (!c) {
		request_fail_close(req);
		return;
	}
	struct txn_add_offsets_args args = { m->transactional_id, m->producer_id, m->producer_epoch,
					     m->group_id, req->api_version };
	txn_svc_add_offsets(a->txns, &args, &c->base);
}

static void end_txn_respond(struct request *req, int16_t error)
{
	struct kmsg_end_txn_resp resp;
	kmsg_end_txn_resp_init(&resp);
	resp.error_code = error;
	kmsg_end_txn_resp_encode(&req->resp, req->api_version, &resp);
	request_respond(req);
}

void handle_end_txn(struct agent *a, struct request *req, const struct kmsg_end_txn_req *m)
{
	if (!api_allowed_kstr(a, req, ACL_RESOURCE_TRANSACTIONAL_ID, m->transactional_id,
			      ACL_OP_WRITE)) {
		end_txn_respond(req, KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
		return;
	}
	int16_t err = agent_txn_acquire(a, m->transactional_id);
	if (err) {
		end_txn_respond(req, err);
		return;
	}
	struct error_call *c = error_call_new(req, end_txn_respond);
	if (!c) {
		request_fail_close(req);
		return;
	}
	struct txn_end_args args = { m->transactional_id, m->producer_id, m->producer_epoch,
				     m->committed, req->api_version };
	txn_svc_end(a->txns, &args, &c->base);
}

/* ---------------------------------------------------------------- AddPartitionsToTxn */

typedef struct kmsg_add_partitions_to_txn_add_partitions_to_txn_topic apt_topic;
typedef struct kmsg_add_partitions_to_txn_add_partitions_to_txn_topic_result apt_topic_result;
typedef struct kmsg_add_partitions_to_txn_add_partitions_to_txn_partition_result apt_part_result;

struct apt_state;

/* One transaction of the request (v0-3: the only one). */
struct apt_txn {
	struct agent_txn_req base;  /* first */
	struct apt_state *st;
	const apt_topic *topics;
	int32_t topic_count;
	int16_t *errors;            /* per partition, the topics' order */
	int32_t error_count;
	struct txn_add_args args;   /* partitions: in the request's arena */
	bool verify_only;
};

struct apt_state {
	struct request *req;
	const struct kmsg_add_partitions_to_txn_req *m;
	struct apt_txn *txns;
	int32_t txn_count;
	int32_t pending;            /* transactions the service has not answered */
};

static int32_t apt_partition_count(const apt_topic *topics, int32_t n)
{
	int64_t count = 0;
	for (int32_t i = 0; i < n; i++)
		count += topics[i].partitions_count;
	return count > INT32_MAX ? INT32_MAX : (int32_t)count;
}

/* Each partition's result, in the request's topic order. */
static apt_topic_result *apt_results(struct request *req, const struct apt_txn *t)
{
	apt_topic_result *out;
	if (!REQ_ARRAY(req, t->topic_count, out))
		return NULL;
	int32_t k = 0;
	for (int32_t i = 0; i < t->topic_count; i++) {
		kmsg_add_partitions_to_txn_add_partitions_to_txn_topic_result_init(&out[i]);
		out[i].name = t->topics[i].name;
		out[i].results_by_partition_count = t->topics[i].partitions_count;
		if (!REQ_ARRAY(req, t->topics[i].partitions_count, out[i].results_by_partition))
			return NULL;
		for (int32_t j = 0; j < t->topics[i].partitions_count; j++) {
			apt_part_result *p = &out[i].results_by_partition[j];
			p->partition_index = t->topics[i].partitions[j];
			p->partition_error_code = t->errors[k++];
		}
	}
	return out;
}

static void apt_respond(struct apt_state *st)
{
	struct request *req = st->req;
	struct kmsg_add_partitions_to_txn_resp resp;
	kmsg_add_partitions_to_txn_resp_init(&resp);
	if (req->api_version <= 3) {
		resp.results_by_topic_v3_and_below = apt_results(req, &st->txns[0]);
		resp.results_by_topic_v3_and_below_count = st->txns[0].topic_count;
		if (!resp.results_by_topic_v3_and_below && st->txns[0].topic_count > 0)
			goto out_fail;
	} else {
		resp.results_by_transaction_count = st->txn_count;
		if (!REQ_ARRAY(req, st->txn_count, resp.results_by_transaction))
			goto out_fail;
		for (int32_t i = 0; i < st->txn_count; i++) {
			struct kmsg_add_partitions_to_txn_resp_add_partitions_to_txn_result *r =
				&resp.results_by_transaction[i];
			kmsg_add_partitions_to_txn_resp_add_partitions_to_txn_result_init(r);
			r->transactional_id = st->m->transactions[i].transactional_id;
			r->topic_results_count = st->txns[i].topic_count;
			r->topic_results = apt_results(req, &st->txns[i]);
			if (!r->topic_results && st->txns[i].topic_count > 0)
				goto out_fail;
		}
	}
	kmsg_add_partitions_to_txn_resp_encode(&req->resp, req->api_version, &resp);
	request_respond(req);
	return;
out_fail:
	request_fail_close(req);
}

static void apt_answered(struct agent_txn_req *r, const struct txn_effect *e)
{
	struct apt_txn *t = (struct apt_txn *)r;
	for (int32_t i = 0; i < t->error_count; i++)
		t->errors[i] = e->error;
	if (--t->st->pending == 0)
		apt_respond(t->st);
}

/* Kafka's checks before the coordinator: every partition must exist
 * (and, from clients, its topic be writable); if one fails, it gets its
 * error and the others OPERATION_NOT_ATTEMPTED, nothing is added. The
 * partitions as the coordinator takes them go to tps. Returns whether
 * all passed. */
static bool apt_check(struct agent *a, struct request *req, struct apt_txn *t,
		      struct txn_tp *tps)
{
	bool ok = true;
	int32_t k = 0;
	for (int32_t i = 0; i < t->topic_count; i++) {
		const apt_topic *topic = &t->topics[i];
		bool allowed = req->api_version >= 4 ||
			       api_allowed_topic(a, req, topic->name, ACL_OP_WRITE);
		struct topic_state *ts = allowed ? agent_topic(a, topic->name) : NULL;
		for (int32_t j = 0; j < topic->partitions_count; j++, k++) {
			int32_t p = topic->partitions[j];
			if (!allowed)
				t->errors[k] = KERR_TOPIC_AUTHORIZATION_FAILED;
			else if (!ts || ts->deleting || p < 0 || p >= ts->partition_count)
				t->errors[k] = KERR_UNKNOWN_TOPIC_OR_PARTITION;
			else {
				t->errors[k] = KERR_NONE;
				tps[k] = (struct txn_tp){ ts->tid, p };
				continue;
			}
			ok = false;
		}
	}
	if (!ok)
		for (int32_t i = 0; i < t->error_count; i++)
			if (t->errors[i] == KERR_NONE)
				t->errors[i] = KERR_OPERATION_NOT_ATTEMPTED;
	return ok;
}

static void apt_fill(struct apt_txn *t, int16_t err)
{
	for (int32_t i = 0; i < t->error_count; i++)
		t->errors[i] = err;
}

void handle_add_partitions_to_txn(struct agent *a, struct request *req,
				  const struct kmsg_add_partitions_to_txn_req *m)
{
	struct apt_state *st = arena_alloc(&req->arena, sizeof *st);
	if (!st)
		goto out_fail;
	st->req = req;
	st->m = m;
	st->txn_count = req->api_version <= 3 ? 1 : m->transactions_count;
	if (st->txn_count > 0 && !REQ_ARRAY(req, st->txn_count, st->txns))
		goto out_fail;
	/* v4+ is what brokers send each other: Kafka requires CLUSTER_ACTION
	 * and answers its absence at the top. */
	if (req->api_version >= 4 && !api_allowed_cluster(a, req, ACL_OP_CLUSTER_ACTION)) {
		struct kmsg_add_partitions_to_txn_resp resp;
		kmsg_add_partitions_to_txn_resp_init(&resp);
		resp.error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
		kmsg_add_partitions_to_txn_resp_encode(&req->resp, req->api_version, &resp);
		request_respond(req);
		return;
	}
	/* Everything allocated first, so that nothing fails once a
	 * transaction is handed to the service. */
	for (int32_t i = 0; i < st->txn_count; i++) {
		struct apt_txn *t = &st->txns[i];
		t->base.answered = apt_answered;
		t->st = st;
		if (req->api_version <= 3) {
			t->topics = m->v3_and_below_topics;
			t->topic_count = m->v3_and_below_topics_count;
			t->args.transactional_id = m->v3_and_below_transactional_id;
			t->args.producer_id = m->v3_and_below_producer_id;
			t->args.producer_epoch = m->v3_and_below_producer_epoch;
		} else {
			const struct kmsg_add_partitions_to_txn_req_add_partitions_to_txn_transaction *x =
				&m->transactions[i];
			t->topics = x->topics;
			t->topic_count = x->topics_count;
			t->args.transactional_id = x->transactional_id;
			t->args.producer_id = x->producer_id;
			t->args.producer_epoch = x->producer_epoch;
			t->verify_only = x->verify_only;
		}
		t->args.api_version = req->api_version;
		t->error_count = apt_partition_count(t->topics, t->topic_count);
		if (t->error_count > SL_TXN_PARTITIONS_MAX)
			goto out_fail; /* more than a transaction may hold */
		struct txn_tp *tps;
		if (!REQ_ARRAY(req, t->error_count, t->errors) ||
		    !REQ_ARRAY(req, t->error_count, tps))
			goto out_fail;
		t->args.partitions = tps;
		t->args.partition_count = t->error_count;
	}
	/* Each transaction is checked and started; pending counts down to
	 * the response (the extra one is this loop's). */
	st->pending = st->txn_count + 1;
	for (int32_t i = 0; i < st->txn_count; i++) {
		struct apt_txn *t = &st->txns[i];
		int16_t err;
		if (req->api_version <= 3 &&
		    !api_allowed_kstr(a, req, ACL_RESOURCE_TRANSACTIONAL_ID,
				      t->args.transactional_id, ACL_OP_WRITE))
			apt_fill(t, KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
		else if (!apt_check(a, req, t, (struct txn_tp *)t->args.partitions))
			;
		else if ((err = agent_txn_acquire(a, t->args.transactional_id)))
			apt_fill(t, err);
		else if (t->verify_only)
			txn_svc_verify_partitions(a->txns, &t->args, t->errors);
		else {
			txn_svc_add_partitions(a->txns, &t->args, &t->base);
			continue;
		}
		st->pending--;
	}
	if (--st->pending == 0)
		apt_respond(st);
	return;
out_fail:
	request_fail_close(req);
}
