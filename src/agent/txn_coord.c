/* txn_coord.c — the transaction coordinator in the agent (issue 14):
 * starts the transaction service (txn/service.h) with the agent's
 * producer id block, its marker write path (agent_txn_write_markers) and
 * the handlers' answers (struct agent_txn_req). Served on a store this
 * agent claims (SQLite); on a shared store the coordinator of an id
 * needs a lease per id (not built), so none runs there and InitProducerId
 * with a transactional id keeps answering COORDINATOR_NOT_AVAILABLE. */
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "base/err.h"
#include "base/log.h"
#include "proto/kerr.h"
#include "txn/service.h"

/* As the idempotent producers' block (api/admin.c): ids only need to be
 * unique, a block is taken from the store when this one runs out. */
#define TXN_PRODUCER_ID_BLOCK 1000

struct pid_refill {
	struct agent_job job;
	int64_t first;
	int rc;
};

static void refill_run(struct agent_job *job)
{
	struct pid_refill *r = (struct pid_refill *)job;
	r->rc = meta_producer_ids_alloc(job->a->meta, TXN_PRODUCER_ID_BLOCK, &r->first);
}

static void refill_done(struct agent_job *job)
{
	struct pid_refill *r = (struct pid_refill *)job;
	struct agent *a = job->a;
	a->txn_pid_refilling = false;
	if (r->rc)
		log_error("txn: allocating producer ids: %s", sl_strerror(r->rc));
	else if (a->producer_id_next >= a->producer_id_end) {
		a->producer_id_next = r->first;
		a->producer_id_end = r->first + TXN_PRODUCER_ID_BLOCK;
	}
	free(r);
}

/* Take a block from the store unless one is being taken. */
static void refill(struct agent *a)
{
	if (a->txn_pid_refilling)
		return;
	struct pid_refill *r = calloc(1, sizeof *r);
	if (!r)
		return;
	r->job.run = refill_run;
	r->job.done = refill_done;
	a->txn_pid_refilling = true;
	agent_job_submit(a, &r->job);
}

/* The coordinator's allocator: from the agent's block; when it is empty
 * the request answers COORDINATOR_LOAD_IN_PROGRESS (Kafka's answer while
 * its id manager fetches a block) and the client's retry finds the new
 * block. */
static int alloc_pid(void *arg, int64_t *out)
{
	struct agent *a = arg;
	if (a->producer_id_next < a->producer_id_end) {
		*out = a->producer_id_next++;
		return 0;
	}
	refill(a);
	return SL_EBUSY;
}

static void answer(void *arg, const struct txn_effect *e)
{
	struct agent_txn_req *r = e->req;
	(void)arg;
	r->answered(r, e);
}

struct markers_call {
	struct agent *a;
	int64_t txn_seq;
	char id[];
};

static void markers_done(void *arg, int err)
{
	struct markers_call *m = arg;
	if (err)
		log_warn("txn: markers of %s: %s (writing them again)", m->id, sl_strerror(err));
	if (m->a->txns)
		txn_svc_markers_done(m->a->txns, m->id, m->txn_seq,
				     err ? KERR_KAFKA_STORAGE_ERROR : KERR_NONE);
	free(m);
}

static int write_markers(void *arg, const struct txn_effect *e)
{
	struct agent *a = arg;
	size_t len = strlen(e->transactional_id);
	struct markers_call *m = malloc(sizeof *m + len + 1);
	if (!m)
		return SL_ENOMEM;
	m->a = a;
	m->txn_seq = e->record.txn_seq;
	memcpy(m->id, e->transactional_id, len + 1);
	/* Alone, the coordinator epoch is the agents epoch (0), as the
	 * leader epoch is. */
	int rc = agent_txn_write_markers(a, e->transactional_id, e->record.producer_id,
					 e->record.producer_epoch, 0, e->record.txn_seq, e->commit,
					 e->record.partitions, (size_t)e->record.partition_count,
					 markers_done, m);
	if (rc)
		free(m);
	return rc;
}

int agent_txn_start(struct agent *a)
{
	if (meta_shared(a->meta))
		return 0;
	struct txn_svc_config cfg = { 0 };
	txn_config_default(&cfg.coord);
	cfg.coord.max_timeout_ms = a->cfg.transaction_max_timeout_ms;
	cfg.coord.alloc_producer_id = alloc_pid;
	cfg.coord.alloc_arg = a;
	cfg.answer = answer;
	cfg.write_markers = write_markers;
	cfg.arg = a;
	/* A block ready before the first producer asks (librdkafka logs
	 * the retriable refusal as a warning). */
	if (a->producer_id_next >= a->producer_id_end)
		refill(a);
	return txn_svc_start(a->loop, a->meta, &cfg, &a->txns);
}

void agent_txn_stop(struct agent *a)
{
	txn_svc_shutdown(a->txns);
}

void agent_txn_free(struct agent *a)
{
	txn_svc_free(a->txns);
	a->txns = NULL;
}
