/* txn_admin.c — the transaction coordinator's read side (issue 14):
 * DescribeTransactions v0 and ListTransactions v0-1, what
 * kafka-transactions.sh and Admin.describeTransactions/listTransactions
 * send, answered as Kafka 3.9's KafkaApis and TransactionCoordinator do
 * from the coordinator's records in memory (txn/service.h), at once.
 *
 * Each agent answers for the ids it coordinates, as a Kafka broker
 * answers for its transaction log partitions: the admin client asks
 * FindCoordinator before DescribeTransactions and sends ListTransactions
 * to every broker. Only what the coordinator has stored is reported (a
 * transition being written shows the state before it, as Kafka's
 * txnMetadata.state does). Where no coordinator runs (a->txns NULL) both
 * answer COORDINATOR_NOT_AVAILABLE, Kafka's answer from an inactive
 * coordinator; ApiVersions does not advertise them there.
 *
 * The partitions listed are Kafka's topicPartitions in every state:
 * none in Empty and Complete*, the added ones in Ongoing, in
 * PrepareCommit/PrepareAbort those still owed a marker (all until the
 * markers are in — they commit together, as a one-broker Kafka's
 * WriteTxnMarkers answer — none while Complete* is written; after a
 * takeover the store's rows, each dropped as its marker committed).
 * Where Sluice differs: Kafka's AddOffsetsToTxn adds the group's
 * __consumer_offsets partition to the transaction, so Kafka lists it;
 * Sluice has no such topic and lists only the data partitions. */
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "api/handlers.h"
#include "base/clock.h"
#include "kmsg.h"
#include "proto/kerr.h"
#include "txn/service.h"

typedef struct kmsg_describe_transactions_resp_transaction_state dt_state;
typedef struct kmsg_describe_transactions_resp_topic_data dt_topic;

/* ---------------------------------------------------------------- DescribeTransactions */

/* The transaction's partitions by topic name (the record's are sorted
 * by topic key, then partition), keeping only topics the principal may
 * DESCRIBE (Kafka drops the others from the answer). A topic deleted
 * since has no name to report and is left out. Returns false when the
 * arena is full. */
static bool describe_topics(struct agent *a, struct request *req, const struct txn_record *r,
			    dt_state *st)
{
	int32_t topics = 0;
	for (int32_t i = 0; i < r->partition_count; i++)
		topics += i == 0 || r->partitions[i].tid != r->partitions[i - 1].tid;
	if (!REQ_ARRAY(req, topics, st->topics))
		return false;
	st->topics_count = 0;
	for (int32_t i = 0; i < r->partition_count;) {
		int32_t end = i;
		while (end < r->partition_count && r->partitions[end].tid == r->partitions[i].tid)
			end++;
		struct topic_state *t = agent_topic_by_tid(a, r->partitions[i].tid);
		if (t && api_allowed(a, req, ACL_RESOURCE_TOPIC, t->name, ACL_OP_DESCRIBE)) {
			dt_topic *d = &st->topics[st->topics_count++];
			kmsg_describe_transactions_resp_topic_data_init(d);
			d->topic = KSTR(t->name);
			d->partitions_count = end - i;
			if (!REQ_ARRAY(req, d->partitions_count, d->partitions))
				return false;
			for (int32_t k = i; k < end; k++)
				d->partitions[k - i] = r->partitions[k].partition;
		}
		i = end;
	}
	return true;
}

/* TransactionCoordinator.handleDescribeTransactions for one id, in its
 * order: an inactive coordinator, an empty id, not this agent's id (or
 * its records still loading), an unknown id. False when the arena is
 * full. */
static bool describe_one(struct agent *a, struct request *req, kstr id, dt_state *st)
{
	int16_t status = a->txns ? txn_svc_read_status(a->txns, id) : KERR_COORDINATOR_NOT_AVAILABLE;
	if (status == KERR_COORDINATOR_NOT_AVAILABLE) {
		st->error_code = status;
		return true;
	}
	if (id.len <= 0) {
		st->error_code = KERR_INVALID_REQUEST;
		return true;
	}
	/* On a shared store an id is another agent's unless placement puts
	 * it here (what FindCoordinator answers), and read only once its
	 * lease is held (agent_txn_acquire takes it: LOAD_IN_PROGRESS until
	 * then, as Kafka answers while it loads the id's partition); alone,
	 * every id is ours. */
	if (meta_shared(a->meta)) {
		int16_t err = agent_txn_acquire(a, id);
		if (err) {
			st->error_code = err;
			return true;
		}
		status = txn_svc_read_status(a->txns, id);
	}
	if (status != KERR_NONE) {
		st->error_code = status;
		return true;
	}
	const struct txn_meta *t = txn_find(txn_svc_coordinator(a->txns), id);
	if (!t) {
		st->error_code = KERR_TRANSACTIONAL_ID_NOT_FOUND;
		return true;
	}
	const struct txn_record *r = &t->r;
	st->error_code = KERR_NONE;
	st->transaction_state = KSTR(txn_state_name(r->state));
	st->transaction_timeout_ms = r->timeout_ms;
	st->transaction_start_time_ms = r->start_ms;
	st->producer_id = r->producer_id;
	st->producer_epoch = r->producer_epoch;
	return describe_topics(a, req, r, st);
}

void handle_describe_transactions(struct agent *a, struct request *req,
				  const struct kmsg_describe_transactions_req *m)
{
	struct kmsg_describe_transactions_resp r;
	kmsg_describe_transactions_resp_init(&r);
	r.transaction_states_count = m->transactional_ids_count > 0 ? m->transactional_ids_count : 0;
	if (!REQ_ARRAY(req, r.transaction_states_count, r.transaction_states)) {
		request_fail_close(req);
		return;
	}
	for (int32_t i = 0; i < r.transaction_states_count; i++) {
		dt_state *st = &r.transaction_states[i];
		kstr id = m->transactional_ids[i];
		kmsg_describe_transactions_resp_transaction_state_init(st);
		st->transactional_id = id;
		/* KafkaApis: DESCRIBE on the id first, per id. */
		if (!api_allowed_kstr(a, req, ACL_RESOURCE_TRANSACTIONAL_ID, id, ACL_OP_DESCRIBE)) {
			st->error_code = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
			continue;
		}
		if (!describe_one(a, req, id, st)) {
			request_fail_close(req);
			return;
		}
	}
	/* Encoded now: the states and names point into the coordinator's
	 * records and the catalog. */
	kmsg_describe_transactions_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
}

/* ---------------------------------------------------------------- ListTransactions */

struct list_ctx {
	struct agent *a;
	struct request *req;
	struct kmsg_list_transactions_resp *r;
	int32_t cap;
	bool states_filtered;       /* any state filter, known or not */
	bool state_wanted[TXN_STATE_COUNT];
	const int64_t *pids;        /* sorted */
	int32_t pid_count;
	int64_t duration_ms;        /* < 0: no filter */
	int64_t now_ms;
};

static int cmp_i64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
	return (a > b) - (a < b);
}

/* TransactionStateManager.listTransactionStates' shouldInclude, then
 * KafkaApis' DESCRIBE on the id. */
static void list_each(void *arg, const struct txn_meta *t)
{
	struct list_ctx *x = arg;
	const struct txn_record *r = &t->r;
	if (r->state == TXN_DEAD || x->r->transaction_states_count >= x->cap)
		return;
	if (x->pid_count > 0 &&
	    !bsearch(&r->producer_id, x->pids, (size_t)x->pid_count, sizeof *x->pids, cmp_i64))
		return;
	if (x->states_filtered && !x->state_wanted[r->state])
		return;
	/* Kafka compares with the start even when there is none (-1):
	 * such an id passes any duration filter. */
	if (x->duration_ms >= 0 && x->now_ms - r->start_ms <= x->duration_ms)
		return;
	if (!api_allowed(x->a, x->req, ACL_RESOURCE_TRANSACTIONAL_ID, t->transactional_id,
			 ACL_OP_DESCRIBE))
		return;
	struct kmsg_list_transactions_resp_transaction_state *s =
		&x->r->transaction_states[x->r->transaction_states_count++];
	kmsg_list_transactions_resp_transaction_state_init(s);
	s->transactional_id = KSTR(t->transactional_id);
	s->producer_id = r->producer_id;
	s->transaction_state = KSTR(txn_state_name(r->state));
}

/* An unknown state filter and where the request had it. */
struct unknown_filter {
	kstr name;
	int32_t at;
};

static int cmp_name(kstr a, kstr b)
{
	if (a.len != b.len)
		return (a.len > b.len) - (a.len < b.len);
	return a.len > 0 ? memcmp(a.ptr, b.ptr, (size_t)a.len) : 0;
}

static int cmp_unknown(const void *x, const void *y)
{
	const struct unknown_filter *a = x, *b = y;
	int c = cmp_name(a->name, b->name);
	return c ? c : (a->at > b->at) - (a->at < b->at);
}

static int cmp_at(const void *x, const void *y)
{
	const struct unknown_filter *a = x, *b = y;
	return (a->at > b->at) - (a->at < b->at);
}

/* The state filters: known ones into x, unknown ones (each once, in the
 * request's order, as Kafka's set of them) into the answer — by
 * sorting, so a request of many distinct names costs n log n, not n².
 * False when the arena is full. */
static bool list_states(struct request *req, const struct kmsg_list_transactions_req *m,
			struct list_ctx *x)
{
	struct kmsg_list_transactions_resp *r = x->r;
	int32_t n = m->state_filters_count > 0 ? m->state_filters_count : 0;
	struct unknown_filter *u;
	x->states_filtered = n > 0;
	if (!REQ_ARRAY(req, n, r->unknown_state_filters) || !REQ_ARRAY(req, n, u))
		return false;
	int32_t nu = 0;
	for (int32_t i = 0; i < n; i++) {
		kstr f = m->state_filters[i];
		int s = txn_state_parse(f);
		if (s >= 0)
			x->state_wanted[s] = true;
		else
			u[nu++] = (struct unknown_filter){ f, i };
	}
	/* The first of each run of equal names, back in the request's order. */
	qsort(u, (size_t)nu, sizeof *u, cmp_unknown);
	int32_t keep = 0;
	for (int32_t k = 0; k < nu; k++)
		if (k == 0 || cmp_name(u[k - 1].name, u[k].name) != 0)
			u[keep++] = u[k];
	qsort(u, (size_t)keep, sizeof *u, cmp_at);
	for (int32_t k = 0; k < keep; k++)
		r->unknown_state_filters[k] = u[k].name;
	r->unknown_state_filters_count = keep;
	return true;
}

static void list_respond(struct request *req, struct kmsg_list_transactions_resp *r)
{
	kmsg_list_transactions_resp_encode(&req->resp, req->api_version, r);
	request_respond(req);
}

void handle_list_transactions(struct agent *a, struct request *req,
			      const struct kmsg_list_transactions_req *m)
{
	struct kmsg_list_transactions_resp r;
	kmsg_list_transactions_resp_init(&r);
	/* An inactive coordinator, then one loading: the error alone. */
	r.error_code = a->txns ? txn_svc_read_status(a->txns, KSTR_NULL)
			       : KERR_COORDINATOR_NOT_AVAILABLE;
	if (r.error_code != KERR_NONE) {
		list_respond(req, &r);
		return;
	}
	struct list_ctx x = { .a = a, .req = req, .r = &r, .now_ms = clock_wall_ms(),
			      .duration_ms = req->api_version >= 1 ? m->duration_filter : -1 };
	if (!list_states(req, m, &x))
		goto out_fail;
	int32_t npid = m->producer_id_filters_count > 0 ? m->producer_id_filters_count : 0;
	int64_t *pids;
	if (!REQ_ARRAY(req, npid, pids))
		goto out_fail;
	if (npid > 0)
		memcpy(pids, m->producer_id_filters, sizeof *pids * (size_t)npid);
	qsort(pids, (size_t)npid, sizeof *pids, cmp_i64);
	x.pids = pids;
	x.pid_count = npid;
	const struct txn_coordinator *c = txn_svc_coordinator(a->txns);
	size_t count = txn_count(c);
	x.cap = count > INT32_MAX ? INT32_MAX : (int32_t)count;
	if (!REQ_ARRAY(req, x.cap, r.transaction_states))
		goto out_fail;
	txn_each(c, list_each, &x);
	/* Encoded now: the ids point into the coordinator's records. */
	list_respond(req, &r);
	return;
out_fail:
	request_fail_close(req);
}
