/* describe_producers.c — DescribeProducers: the idempotent and
 * transactional producers with state in each asked partition, as Kafka
 * 3.9's broker answers it from its log's producer state
 * (KafkaApis.handleDescribeProducersRequest, UnifiedLog.activeProducers):
 * producer id, epoch, last sequence, last timestamp, coordinator epoch
 * and the first offset of its open transaction there.
 *
 * The state is the metadata store's (producer_state, partition_txns:
 * what every commit checks against), not this agent's cache
 * (agent/producers.h), so every agent answers alike for every partition,
 * as every replica of a Kafka partition does: NOT_LEADER_OR_FOLLOWER,
 * Kafka's answer from a broker holding no replica, never applies. The
 * reads run in one pool job on the store's read connection, never on the
 * loop.
 *
 * coordinator_epoch is the one of the last marker written for the
 * producer in the partition (-1 before one), as Kafka's
 * ProducerStateEntry keeps it: the agents epoch (0) of a single agent,
 * the transactional id's lease epoch in a cluster. Where the store knows
 * less than Kafka's log: last_timestamp is when the producer's last batch
 * or marker was committed (Kafka: that batch's max timestamp). */
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "api/handlers.h"
#include "base/limits.h"
#include "kmsg.h"
#include "meta/meta.h"
#include "proto/kerr.h"

/* One partition the pool job reads. */
struct dp_read {
	int64_t tid;
	int32_t partition;
	struct kmsg_describe_producers_resp_partition_response *rp;
	struct meta_producer_desc *rows; /* malloc'd by the job */
	size_t n;
	int rc;
};

struct dp_ctx {
	struct agent *a;
	struct request *req;
	struct kmsg_describe_producers_resp r;
	struct dp_read *reads;
	size_t read_count;
	uv_work_t work;
};

/* Kafka's messages for a topic-level refusal (ApiError(error) takes the
 * error's default message; Topic.validate's for an invalid name). */
static kstr topic_error_message(kstr name, int16_t code)
{
	switch (code) {
	case KERR_TOPIC_AUTHORIZATION_FAILED:
		return KSTR("Topic authorization failed.");
	case KERR_UNKNOWN_TOPIC_OR_PARTITION:
		return KSTR("This server does not host this topic-partition.");
	default:
		if (name.len <= 0)
			return KSTR("Topic name is illegal, it can't be empty");
		if (name.len > SL_TOPIC_NAME_MAX)
			return KSTR("Topic name is illegal, it can't be longer than 249 characters");
		if ((name.len == 1 && name.ptr[0] == '.') ||
		    (name.len == 2 && name.ptr[0] == '.' && name.ptr[1] == '.'))
			return KSTR("Topic name cannot be \".\" or \"..\"");
		return KSTR("Topic name is illegal, it contains a character other than ASCII "
			    "alphanumerics, '.', '_' and '-'");
	}
}

/* [pool: read] Each partition's producers, within the request's budget. */
static void dp_work(uv_work_t *w)
{
	struct dp_ctx *ctx = w->data;
	size_t budget = SL_DESCRIBE_PRODUCERS_MAX;
	for (size_t i = 0; i < ctx->read_count; i++) {
		struct dp_read *d = &ctx->reads[i];
		size_t max = budget < SL_DESCRIBE_PRODUCERS_PARTITION_MAX
				     ? budget : SL_DESCRIBE_PRODUCERS_PARTITION_MAX;
		if (max == 0)
			continue;
		d->rows = malloc(max * sizeof *d->rows);
		if (!d->rows) {
			d->rc = SL_ENOMEM;
			continue;
		}
		d->rc = meta_producers_describe(ctx->a->meta, d->tid, d->partition, max, d->rows, &d->n);
		budget -= d->n;
	}
}

static void dp_answer(struct dp_ctx *ctx)
{
	kmsg_describe_producers_resp_encode(&ctx->req->resp, ctx->req->api_version, &ctx->r);
	request_respond(ctx->req);
}

static void dp_done(uv_work_t *w, int status)
{
	struct dp_ctx *ctx = w->data;
	for (size_t i = 0; i < ctx->read_count; i++) {
		struct dp_read *d = &ctx->reads[i];
		struct kmsg_describe_producers_resp_partition_response *rp = d->rp;
		if (status || d->rc) {
			rp->error_code = d->rc == SL_ENOMEM ? KERR_UNKNOWN_SERVER_ERROR
							    : KERR_KAFKA_STORAGE_ERROR;
		} else if (d->n > 0 && REQ_ARRAY(ctx->req, d->n, rp->active_producers)) {
			rp->active_producers_count = (int32_t)d->n;
			for (size_t k = 0; k < d->n; k++) {
				const struct meta_producer_desc *s = &d->rows[k];
				rp->active_producers[k] = (struct kmsg_describe_producers_resp_producer_state){
					.producer_id = s->producer_id,
					.producer_epoch = s->producer_epoch,
					.last_sequence = s->last_sequence,
					.last_timestamp = s->last_ms,
					.coordinator_epoch = s->coordinator_epoch,
					.current_txn_start_offset = s->txn_start_offset,
				};
			}
		} else if (d->n > 0) {
			rp->error_code = KERR_UNKNOWN_SERVER_ERROR;
		}
		free(d->rows);
	}
	dp_answer(ctx);
}

void handle_describe_producers(struct agent *a, struct request *req,
			       const struct kmsg_describe_producers_req *m)
{
	struct dp_ctx *ctx;
	int64_t asked = 0;
	for (int32_t i = 0; i < m->topics_count; i++)
		asked += m->topics[i].partition_indexes_count > 0 ? m->topics[i].partition_indexes_count : 0;
	if (!REQ_ARRAY(req, 1, ctx) || !REQ_ARRAY(req, asked, ctx->reads)) {
		request_fail_close(req);
		return;
	}
	ctx->a = a;
	ctx->req = req;
	struct kmsg_describe_producers_resp *r = &ctx->r;
	kmsg_describe_producers_resp_init(r);
	r->topics_count = m->topics_count > 0 ? m->topics_count : 0;
	if (!REQ_ARRAY(req, r->topics_count, r->topics)) {
		request_fail_close(req);
		return;
	}
	for (int32_t i = 0; i < r->topics_count; i++) {
		const struct kmsg_describe_producers_req_topic_request *qt = &m->topics[i];
		struct kmsg_describe_producers_resp_topic_response *rt = &r->topics[i];
		kmsg_describe_producers_resp_topic_response_init(rt);
		rt->name = qt->name;
		rt->partitions_count = qt->partition_indexes_count > 0 ? qt->partition_indexes_count : 0;
		if (!REQ_ARRAY(req, rt->partitions_count, rt->partitions)) {
			request_fail_close(req);
			return;
		}
		/* Kafka's order: the name, READ on the topic, then whether it exists. */
		struct topic_state *t = NULL;
		int16_t topic_error = KERR_NONE;
		if (!topic_name_valid(qt->name))
			topic_error = KERR_INVALID_TOPIC_EXCEPTION;
		else if (!api_allowed_topic(a, req, qt->name, ACL_OP_READ))
			topic_error = KERR_TOPIC_AUTHORIZATION_FAILED;
		else if (!(t = agent_topic(a, qt->name)))
			topic_error = KERR_UNKNOWN_TOPIC_OR_PARTITION;
		for (int32_t k = 0; k < rt->partitions_count; k++) {
			struct kmsg_describe_producers_resp_partition_response *rp = &rt->partitions[k];
			kmsg_describe_producers_resp_partition_response_init(rp);
			rp->partition_index = qt->partition_indexes[k];
			if (topic_error) {
				rp->error_code = topic_error;
				rp->error_message = topic_error_message(qt->name, topic_error);
			} else if (rp->partition_index < 0 || rp->partition_index >= t->partition_count) {
				/* ReplicaManager.getPartitionOrError: no message. */
				rp->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
			} else {
				ctx->reads[ctx->read_count++] = (struct dp_read){
					.tid = t->tid, .partition = rp->partition_index, .rp = rp,
				};
			}
		}
	}
	if (ctx->read_count == 0) {
		dp_answer(ctx);
		return;
	}
	ctx->work.data = ctx;
	if (uv_queue_work(a->loop, &ctx->work, dp_work, dp_done) != 0)
		dp_done(&ctx->work, UV_EINVAL);
}
