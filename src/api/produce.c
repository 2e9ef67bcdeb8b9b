/* produce.c — Produce: validate each partition's record batch, hand it to
 * the write path, and answer once every partition's batch is committed
 * (acks 1 and -1 alike: an acknowledgement always means durable in the
 * object store and committed in the metadata store). acks=0 gets no
 * response, and the connection is closed if any partition failed. One
 * bad partition does not fail the others. A transactional batch goes to
 * the write path as META_BATCH_TXN_DATA with the request's transactional
 * id: the commit judges it against that id's transaction and its verdict
 * is answered as Kafka's Produce does at the request's version. While the agent
 * drains, every partition gets NOT_LEADER_OR_FOLLOWER and nothing new is
 * written. */
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/producers.h"
#include "agent/retention.h"
#include "api/handlers.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/buf.h"
#include "base/log.h"
#include "kmsg.h"
#include "net/server.h"
#include "proto/kerr.h"
#include "storage/batch.h"
#include "storage/writer.h"

struct produce_ctx {
	struct request *req;
	struct agent *a;
	struct kmsg_produce_resp resp;
	int pending;
	bool acks0;
	bool acks_ok;        /* acks is 0, 1 or -1 */
	bool txn_refused;    /* transactional records without a transactional
				id the principal may WRITE: Kafka refuses the
				whole request */
	kstr transactional_id; /* the request's (len < 0: none) */
};

struct produce_part {
	struct produce_ctx *ctx;
	struct kmsg_produce_resp_partition_produce_response *pr;
	int64_t tid;
	int32_t partition;
	int64_t producer_id;   /* -1: not idempotent */
	int16_t producer_epoch;
	int32_t base_sequence;
};

static bool any_error(const struct kmsg_produce_resp *r)
{
	for (int32_t i = 0; i < r->responses_count; i++)
		for (int32_t k = 0; k < r->responses[i].partition_responses_count; k++)
			if (r->responses[i].partition_responses[k].error_code != KERR_NONE)
				return true;
	return false;
}

static void produce_finish(struct produce_ctx *ctx)
{
	struct request *req = ctx->req;
	if (ctx->acks0) {
		/* No answer, so an error can only be told by closing the
		 * connection (Kafka does the same): the client notices,
		 * refreshes its metadata and reconnects. */
		if (any_error(&ctx->resp)) {
			log_debug("%s: acks=0 produce failed; closing", request_peer(req));
			request_close_after(req);
		} else {
			request_no_reply(req);
		}
		return;
	}
	kmsg_produce_resp_encode(&req->resp, req->api_version, &ctx->resp);
	request_respond(req);
}

/* The commit's verdict as Kafka 3.9's Produce answers it at version v
 * (docs/transactions.md §3: what its verification and
 * ProducerAppendInfo answer the producer). */
static int16_t kerr_of_store(int err, int16_t v)
{
	switch (err) {
	case SL_ENOTFOUND: return KERR_UNKNOWN_TOPIC_OR_PARTITION;
	case SL_ESEQUENCE: return KERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
	case SL_EFENCED: return KERR_INVALID_PRODUCER_EPOCH;
	case SL_ETXNUNKNOWN: return KERR_INVALID_PRODUCER_ID_MAPPING;
	/* Kafka's verification meeting CONCURRENT_TRANSACTIONS: retriable,
	 * with no metadata refresh. */
	case SL_ETXNBUSY: return KERR_NOT_ENOUGH_REPLICAS;
	/* "Partition was not added to the transaction": v11 clients know
	 * TRANSACTION_ABORTABLE (KIP-890), older ones get INVALID_TXN_STATE. */
	case SL_ETXNNOTADDED: return v >= 11 ? KERR_TRANSACTION_ABORTABLE : KERR_INVALID_TXN_STATE;
	case SL_ETXNSTATE: return KERR_INVALID_TXN_STATE;
	case SL_ETIMEDOUT: return KERR_REQUEST_TIMED_OUT;
	default: return KERR_KAFKA_STORAGE_ERROR;
	}
}

static void produce_done(void *arg, int err, int64_t base_offset)
{
	struct produce_part *pp = arg;
	struct produce_ctx *ctx = pp->ctx;
	if (pp->producer_id >= 0) {
		if (err == SL_ESEQUENCE || err == SL_EFENCED)
			/* The store's state is not what this agent's said. */
			producers_forget(&ctx->a->producers, pp->tid, pp->partition, pp->producer_id);
		else if (err)
			producers_failed(&ctx->a->producers, pp->tid, pp->partition, pp->producer_id,
					 pp->producer_epoch, pp->base_sequence);
		else
			producers_committed(&ctx->a->producers, pp->tid, pp->partition, pp->producer_id,
					    pp->producer_epoch, pp->base_sequence, base_offset);
	}
	if (err) {
		pp->pr->error_code = kerr_of_store(err, ctx->req->api_version);
		pp->pr->base_offset = -1;
	} else {
		pp->pr->base_offset = base_offset;
		struct topic_state *t = agent_topic_by_tid(ctx->a, pp->tid);
		if (t && pp->partition < t->partition_count)
			pp->pr->log_start_offset = t->parts[pp->partition].log_start_offset;
	}
	if (--ctx->pending == 0)
		produce_finish(ctx);
}

struct one_batch {
	const uint8_t *batch;
	struct batch_info info;
	int count;
};

static int visit_batch(void *arg, const uint8_t *batch, const struct batch_info *info)
{
	struct one_batch *ob = arg;
	if (ob->count++ == 0) {
		ob->batch = batch;
		ob->info = *info;
	}
	return 0;
}

static int16_t kerr_of_batch(int rc)
{
	switch (rc) {
	case SL_ECORRUPT: return KERR_CORRUPT_MESSAGE;
	case SL_ELIMIT: return KERR_MESSAGE_TOO_LARGE;
	case SL_EUNSUPPORTED: return KERR_UNSUPPORTED_COMPRESSION_TYPE;
	default: return KERR_CORRUPT_MESSAGE;
	}
}

struct keyless {
	struct request *req;
	struct kmsg_produce_resp_partition_produce_response *pr;
	kstr message;
};

static int keyless_visit(void *arg, const struct batch_record *rec)
{
	struct keyless *k = arg;
	struct kmsg_produce_resp_partition_produce_response *pr = k->pr;
	if (rec->key_len >= 0 || pr->record_errors_count >= SL_RECORD_ERRORS_MAX)
		return 0;
	struct kmsg_produce_resp_batch_index_and_error_message *e =
		&pr->record_errors[pr->record_errors_count++];
	kmsg_produce_resp_batch_index_and_error_message_init(e);
	e->batch_index = rec->index;
	e->batch_index_error_message = k->message;
	return 0;
}

/* A compacted topic refuses a batch holding records without a key, whole
 * (Kafka 3.9's LogValidator.validateKey): INVALID_RECORD with one record
 * error per keyless record (Produce v8+ carries them) and the message
 * Kafka's RecordValidationException gives. The second walk of the records
 * happens only for such refused batches. */
static int16_t refuse_keyless(struct request *req, struct topic_state *t, int32_t partition,
			      const struct one_batch *ob,
			      struct kmsg_produce_resp_partition_produce_response *pr)
{
	char message[SL_TOPIC_NAME_MAX + 96];
	snprintf(message, sizeof message,
		 "Compacted topic cannot accept message without key in topic partition %s-%d",
		 t->name, partition);
	struct keyless k = { req, pr, api_kstr_dup(req, message) };
	int32_t n = ob->info.keyless_records;
	int32_t listed = n < SL_RECORD_ERRORS_MAX ? n : SL_RECORD_ERRORS_MAX;
	pr->record_errors_count = 0;
	if (REQ_ARRAY(req, listed, pr->record_errors)) {
		struct kbuf plain;
		kbuf_init(&plain);
		(void)batch_records_view(ob->batch, batch_total_bytes(&ob->info), &plain,
					 keyless_visit, &k);
		kbuf_free(&plain);
	}
	/* "[RecordError(batchIndex=0, message='...'), ...]": Java's
	 * List.toString of the first three. */
	struct kbuf text;
	kbuf_init(&text);
	char head[128];
	snprintf(head, sizeof head,
		 "One or more records have been rejected due to %d record errors in total, "
		 "and only showing the first three errors at most: [", n);
	kbuf_put(&text, head, strlen(head));
	for (int32_t i = 0; i < pr->record_errors_count && i < 3; i++) {
		char one[sizeof message + 64];
		snprintf(one, sizeof one, "%sRecordError(batchIndex=%d, message='%s')",
			 i ? ", " : "", pr->record_errors[i].batch_index, message);
		kbuf_put(&text, one, strlen(one));
	}
	kbuf_put(&text, "]", 2); /* with the NUL */
	pr->error_message = api_kstr_dup(req, text.oom ? "" : (const char *)text.data);
	kbuf_free(&text);
	pr->log_start_offset = t->parts[partition].log_start_offset;
	log_debug("%s: refusing %d keyless records for compacted %s-%d", request_peer(req), n,
		  t->name, partition);
	return KERR_INVALID_RECORD;
}

/* Whether any partition's first batch header says transactional (as
 * Kafka's ProduceRequest.hasTransactionalRecords looks, before anything
 * else is checked). */
static bool has_transactional_records(const struct kmsg_produce_req *m)
{
	for (int32_t i = 0; i < m->topic_data_count; i++)
		for (int32_t k = 0; k < m->topic_data[i].partition_data_count; k++) {
			kbytes rec = m->topic_data[i].partition_data[k].records;
			struct batch_info info;
			if (rec.len > 0 && batch_parse_header(rec.ptr, (size_t)rec.len, &info) == 0 &&
			    (info.attributes & BATCH_ATTR_TRANSACTIONAL))
				return true;
		}
	return false;
}

/* A partition's answer before anything is known: no offsets. */
static void partition_response_init(struct kmsg_produce_resp_partition_produce_response *pr,
				    int32_t index)
{
	kmsg_produce_resp_partition_produce_response_init(pr);
	pr->index = index;
	pr->base_offset = -1;
	pr->log_append_time_ms = -1;
	pr->log_start_offset = -1;
}

/* Answer every partition of the request with one error (Kafka's
 * ProduceRequest.getErrorResponse); the arrays are made already. */
static void refuse_all(struct produce_ctx *ctx, const struct kmsg_produce_req *m, int16_t error,
		       const char *message)
{
	struct kmsg_produce_resp *r = &ctx->resp;
	kstr text = api_kstr_dup(ctx->req, message);
	for (int32_t i = 0; i < r->responses_count; i++) {
		struct kmsg_produce_resp_topic_produce_response *rt = &r->responses[i];
		for (int32_t k = 0; k < rt->partition_responses_count; k++) {
			struct kmsg_produce_resp_partition_produce_response *pr =
				&rt->partition_responses[k];
			partition_response_init(pr, m->topic_data[i].partition_data[k].index);
			pr->error_code = error;
			pr->error_message = text;
		}
	}
}

/* Whether the transactional batches of the partitions the request may
 * write, and that exist, carry more than one producer (id and epoch):
 * Kafka's handleProduceAppend then refuses the whole request with
 * INVALID_PRODUCER_ID_MAPPING before anything is appended or acks is
 * looked at. Only a partition's first batch is looked at (a request of
 * version 3 or later with more is refused per partition anyway). */
static bool several_transactional_producers(struct agent *a, struct request *req,
					    const struct kmsg_produce_req *m)
{
	bool seen = false;
	int64_t id = -1;
	int16_t epoch = -1;
	for (int32_t i = 0; i < m->topic_data_count; i++) {
		const struct kmsg_produce_req_topic_produce_data *td = &m->topic_data[i];
		struct topic_state *t = agent_topic(a, td->name);
		if (!t || !api_allowed_topic(a, req, td->name, ACL_OP_WRITE))
			continue;
		for (int32_t k = 0; k < td->partition_data_count; k++) {
			const struct kmsg_produce_req_partition_produce_data *pd = &td->partition_data[k];
			struct batch_info info;
			if (pd->index < 0 || pd->index >= t->partition_count || pd->records.len <= 0 ||
			    batch_parse_header(pd->records.ptr, (size_t)pd->records.len, &info) != 0 ||
			    !(info.attributes & BATCH_ATTR_TRANSACTIONAL) || info.producer_id < 0)
				continue;
			if (seen && (info.producer_id != id || info.producer_epoch != epoch))
				return true;
			seen = true;
			id = info.producer_id;
			epoch = info.producer_epoch;
		}
	}
	return false;
}

/* Validate one partition's records and append them. Returns the Kafka
 * error for the partition, or KERR_NONE when the append is pending. */
static int16_t produce_partition(struct produce_ctx *ctx, struct topic_state *t,
				 struct kmsg_produce_req_partition_produce_data *pd,
				 struct kmsg_produce_resp_partition_produce_response *pr)
{
	struct request *req = ctx->req;
	if (!t || pd->index < 0 || pd->index >= t->partition_count)
		return KERR_UNKNOWN_TOPIC_OR_PARTITION;
	/* Kafka checks acks in the append: after both authorizations and
	 * the partition's existence, before the records' contents. */
	if (!ctx->acks_ok)
		return KERR_INVALID_REQUIRED_ACKS;
	/* Shutting down: take no new writes (they could only end at the
	 * store's deadline and hold up the exit). Kafka answers a broker's
	 * shutdown this way, so clients refresh metadata and retry. */
	if (ctx->a->draining)
		return KERR_NOT_LEADER_OR_FOLLOWER;
	if (pd->records.len <= 0)
		return KERR_CORRUPT_MESSAGE;
	int64_t max_bytes = agent_topic_config_i64(t, "max.message.bytes",
						   SL_MESSAGE_BYTES_DEFAULT);
	if (pd->records.len > max_bytes + BATCH_LOG_OVERHEAD)
		return KERR_MESSAGE_TOO_LARGE;
	struct one_batch ob = { 0 };
	int rc = records_validate(pd->records.ptr, (size_t)pd->records.len, visit_batch, &ob);
	if (rc) {
		log_debug("%s: rejecting batch for %s-%d: %s", request_peer(req), t->name,
			  pd->index, sl_strerror(rc));
		return kerr_of_batch(rc);
	}
	/* Kafka accepts exactly one batch per partition in a v2 produce. */
	if (ob.count != 1)
		return KERR_INVALID_RECORD;
	/* Control records are the broker's own (transaction markers); clients
	 * may not write them. */
	if (ob.info.attributes & BATCH_ATTR_CONTROL)
		return KERR_INVALID_RECORD;
	if (ob.info.keyless_records > 0 && retention_policy_compacts(t))
		return refuse_keyless(req, t, pd->index, &ob, pr);
	/* A transactional batch (the request has a transactional id, or
	 * txn_refused stopped it) is an idempotent producer's: the commit
	 * judges it against the id's transaction (meta_batch_kind TXN_DATA:
	 * the producer id and epoch, Ongoing, the partition added), so one
	 * the coordinator never let in gets no offset. */
	bool transactional = (ob.info.attributes & BATCH_ATTR_TRANSACTIONAL) != 0;
	if (transactional && (ob.info.producer_id < 0 || ob.info.base_sequence < 0))
		return KERR_INVALID_RECORD; /* Kafka: a transactional batch without a producer */
	if (transactional && ctx->transactional_id.len > SL_TXN_ID_BYTES_MAX)
		return KERR_INVALID_PRODUCER_ID_MAPPING; /* no such id can exist */
	struct produce_part *pp;
	if (!REQ_ARRAY(req, 1, pp))
		return KERR_UNKNOWN_SERVER_ERROR;
	pp->ctx = ctx;
	pp->pr = pr;
	pp->tid = t->tid;
	pp->partition = pd->index;
	pp->producer_id = -1;
	if (ob.info.producer_id >= 0 && ob.info.base_sequence >= 0) {
		/* Idempotent producer: a retry of a batch already written gets
		 * its original offset; a gap in the sequence is refused. This
		 * agent's state is a first filter; the commit checks again
		 * against the store's (meta_commit_objects). */
		struct producers *ps = &ctx->a->producers;
		int32_t last_seq = (int32_t)(((int64_t)ob.info.base_sequence +
					      ob.info.last_offset_delta) % ((int64_t)INT32_MAX + 1));
		int64_t offset = -1;
		enum producer_verdict v = producers_check(ps, t->tid, pd->index, ob.info.producer_id,
							  ob.info.producer_epoch, ob.info.base_sequence,
							  last_seq, &offset);
		if ((v == PRODUCER_OUT_OF_ORDER || v == PRODUCER_FENCED) && meta_shared(ctx->a->meta)) {
			/* Other agents append this producer's batches too, so
			 * this agent's state may be behind the store's: only
			 * the commit can tell a gap from batches it did not
			 * see. */
			producers_forget(ps, t->tid, pd->index, ob.info.producer_id);
			v = producers_check(ps, t->tid, pd->index, ob.info.producer_id,
					    ob.info.producer_epoch, ob.info.base_sequence, last_seq,
					    &offset);
		}
		switch (v) {
		case PRODUCER_APPEND:
			break;
		case PRODUCER_DUPLICATE:
			pr->base_offset = offset;
			pr->log_start_offset = t->parts[pd->index].log_start_offset;
			return KERR_NONE;
		case PRODUCER_DUPLICATE_PENDING:
			/* The original is still being committed: a retriable
			 * error makes the client retry, and that retry is then
			 * answered from the committed original. */
			return KERR_REQUEST_TIMED_OUT;
		case PRODUCER_OUT_OF_ORDER:
			return KERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
		case PRODUCER_FENCED:
			return KERR_INVALID_PRODUCER_EPOCH;
		}
		pp->producer_id = ob.info.producer_id;
		pp->producer_epoch = ob.info.producer_epoch;
		pp->base_sequence = ob.info.base_sequence;
	}
	/* The frame, shared: the read cache keeps the batch where it is. */
	struct writer_txn txn = { .kind = META_BATCH_TXN_DATA,
				  .transactional_id = ctx->transactional_id.ptr,
				  .transactional_id_len = (size_t)ctx->transactional_id.len };
	rc = writer_append_txn(ctx->a->writer, t->tid, t->uuid, pd->index, ob.batch,
			       request_frame_share(ctx->req), &ob.info, transactional ? &txn : NULL,
			       produce_done, pp);
	if (rc) {
		if (pp->producer_id >= 0)
			producers_failed(&ctx->a->producers, t->tid, pd->index, pp->producer_id,
					 pp->producer_epoch, pp->base_sequence);
		return rc == SL_EBUSY ? KERR_REQUEST_TIMED_OUT : KERR_UNKNOWN_SERVER_ERROR;
	}
	ctx->pending++;
	metrics_topic_in(&t->metrics, pd->records.len, ob.info.record_count);
	return KERR_NONE;
}

void handle_produce(struct agent *a, struct request *req, const struct kmsg_produce_req *m)
{
	struct produce_ctx *ctx;
	if (!REQ_ARRAY(req, 1, ctx)) {
		request_fail_close(req);
		return;
	}
	ctx->req = req;
	ctx->a = a;
	ctx->acks0 = m->acks == 0;
	kmsg_produce_resp_init(&ctx->resp);
	struct kmsg_produce_resp *r = &ctx->resp;
	ctx->acks_ok = m->acks == 0 || m->acks == 1 || m->acks == -1;
	r->responses_count = m->topic_data_count > 0 ? m->topic_data_count : 0;
	if (!REQ_ARRAY(req, r->responses_count, r->responses)) {
		request_fail_close(req);
		return;
	}
	/* Every response array first: once a batch is handed to the writer
	 * the request (its frame holds the batch bytes) must live until the
	 * commit answers, so nothing after that may fail the request. */
	for (int32_t i = 0; i < r->responses_count; i++) {
		struct kmsg_produce_req_topic_produce_data *td = &m->topic_data[i];
		struct kmsg_produce_resp_topic_produce_response *rt = &r->responses[i];
		kmsg_produce_resp_topic_produce_response_init(rt);
		rt->name = td->name;
		rt->partition_responses_count = td->partition_data_count > 0 ? td->partition_data_count : 0;
		if (!REQ_ARRAY(req, rt->partition_responses_count, rt->partition_responses)) {
			request_fail_close(req);
			return;
		}
	}
	/* Kafka 3.9's order: transactional records need WRITE on their
	 * transactional id (else the whole request is refused), then each
	 * topic WRITE. */
	ctx->txn_refused = has_transactional_records(m) &&
			   (m->transactional_id.len < 0 ||
			    !api_allowed_kstr(a, req, ACL_RESOURCE_TRANSACTIONAL_ID, m->transactional_id,
					      ACL_OP_WRITE));
	ctx->transactional_id = m->transactional_id;
	if (!ctx->txn_refused && m->transactional_id.len >= 0 &&
	    several_transactional_producers(a, req, m)) {
		refuse_all(ctx, m, KERR_INVALID_PRODUCER_ID_MAPPING,
			   "Transactional records contained more than one producer ID");
		produce_finish(ctx);
		return;
	}
	ctx->pending = 1; /* held until every partition is started */
	for (int32_t i = 0; i < r->responses_count; i++) {
		struct kmsg_produce_req_topic_produce_data *td = &m->topic_data[i];
		struct kmsg_produce_resp_topic_produce_response *rt = &r->responses[i];
		struct topic_state *t = agent_topic(a, td->name);
		bool may = api_allowed_topic(a, req, td->name, ACL_OP_WRITE);
		for (int32_t k = 0; k < rt->partition_responses_count; k++) {
			struct kmsg_produce_req_partition_produce_data *pd = &td->partition_data[k];
			struct kmsg_produce_resp_partition_produce_response *pr = &rt->partition_responses[k];
			partition_response_init(pr, pd->index);
			pr->error_code = ctx->txn_refused ? KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED
				       : !may ? KERR_TOPIC_AUTHORIZATION_FAILED
				       : produce_partition(ctx, t, pd, pr);
		}
	}
	if (writer_buffered_bytes(a->writer) > (size_t)a->cfg.write_buffer_bytes / 2)
		server_pause_reads(a->server);
	if (--ctx->pending == 0)
		produce_finish(ctx);
}
