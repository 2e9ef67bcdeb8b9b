/* list_offsets.c — ListOffsets: earliest, latest, max timestamp, and the
 * first offset whose timestamp is at or after a given time (found in the
 * metadata store by batch max timestamp, then inside the batch by record,
 * whose bytes come from the read cache or the store's asynchronous get).
 * The metadata lookups of a request run in one pool job on the store's
 * read connection, never on the loop (a PostgreSQL round trip there would
 * stall every connection); earliest and latest come from memory.
 *
 * The isolation level (v2+) sets what is fetchable, as Kafka's
 * fetchOffsetForTimestamp does: below the high watermark for
 * READ_UNCOMMITTED, below the last stable offset for READ_COMMITTED, as
 * they are when the request comes. LATEST answers that end; a record
 * found by timestamp (or the max timestamp) at or past it is no answer
 * (-1), not an earlier record.
 */
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "api/handlers.h"
#include "base/err.h"
#include "base/log.h"
#include "kmsg.h"
#include "objstore/objstore.h"
#include "proto/kerr.h"
#include "storage/batch.h"
#include "storage/cache.h"

#define TS_LATEST (-1)
#define TS_EARLIEST (-2)
#define TS_MAX (-3)
#define TS_EARLIEST_LOCAL (-4)
#define TS_LATEST_TIERED (-5)

struct ts_search {
	int64_t target;       /* >= 0: first record with timestamp >= target */
	bool want_max;        /* else: the record with the largest timestamp */
	int32_t min_delta;    /* records before it are below the log start */
	int32_t found_delta;
	int64_t found_ts;
};

static int ts_visit(void *arg, int32_t offset_delta, int64_t timestamp)
{
	struct ts_search *s = arg;
	if (offset_delta < s->min_delta)
		return 0;
	if (s->want_max) {
		if (s->found_delta < 0 || timestamp > s->found_ts) {
			s->found_delta = offset_delta;
			s->found_ts = timestamp;
		}
		return 0;
	}
	if (timestamp >= s->target) {
		s->found_delta = offset_delta;
		s->found_ts = timestamp;
		return 1;
	}
	return 0;
}

struct lo_ctx;

/* One partition whose answer is inside a batch: the batch is found in
 * the metadata store by the request's pool job, then searched record by
 * record once its bytes are here (from the cache at once, or from the
 * store asynchronously). */
struct lo_search {
	struct lo_ctx *ctx;
	struct ts_search s;
	int64_t tid;
	int32_t partition;
	int64_t log_start;    /* the partition's when the request came */
	int64_t end;          /* fetchable below it (the isolation level's), then */
	int rc;               /* the pool job's: 0, SL_ENOTFOUND, or failed */
	struct meta_batch_row row;
	struct kmsg_list_offsets_resp_list_offsets_partition_response *rp;
	int32_t max_num_offsets;
	uint8_t *buf;
};

struct lo_ctx {
	struct agent *a;
	struct request *req;
	struct kmsg_list_offsets_resp r;
	int pending;
	struct lo_search *searches; /* room for every partition asked */
	size_t search_count;
	uv_work_t work;
};

/* Set a partition's answer in the shape of the request's version. */
static void set_answer(struct request *req,
		       struct kmsg_list_offsets_resp_list_offsets_partition_response *rp,
		       int32_t max_num_offsets, int64_t offset, int64_t ts)
{
	if (req->api_version == 0) {
		/* v0: a list of offsets (we have one segment: one). */
		if (!rp->error_code && offset >= 0 && REQ_ARRAY(req, 1, rp->old_style_offsets)) {
			rp->old_style_offsets[0] = offset;
			rp->old_style_offsets_count = max_num_offsets > 0 ? 1 : 0;
		}
	} else {
		rp->offset = offset;
		rp->timestamp = ts;
	}
}

/* Search the batch's records; on a batch we cannot read, answer with the
 * batch itself. */
static void search_bytes(struct lo_search *ls, const uint8_t *batch)
{
	ls->s.found_delta = -1;
	int rc = batch ? batch_records_each(batch, ls->row.length, ts_visit, &ls->s) : -1;
	bool whole = rc < 0 || ls->s.found_delta < 0;
	int64_t offset = ls->row.base_offset + (whole ? ls->s.min_delta : ls->s.found_delta);
	int64_t ts = whole ? ls->row.max_timestamp : ls->s.found_ts;
	if (offset >= ls->end)
		offset = ts = -1; /* not fetchable (yet): Kafka answers none */
	set_answer(ls->ctx->req, ls->rp, ls->max_num_offsets, offset, ts);
}

static void lo_finish(struct lo_ctx *ctx)
{
	if (--ctx->pending > 0)
		return;
	kmsg_list_offsets_resp_encode(&ctx->req->resp, ctx->req->api_version, &ctx->r);
	request_respond(ctx->req);
}

static void search_read_done(void *arg, int err)
{
	struct lo_search *ls = arg;
	if (err)
		ls->rp->error_code = KERR_KAFKA_STORAGE_ERROR;
	else
		search_bytes(ls, ls->buf);
	free(ls->buf);
	lo_finish(ls->ctx);
}

/* [pool: read] Each search's batch: the one holding the largest
 * timestamp, or the first whose max timestamp reaches the target. */
static void lookups_work(uv_work_t *w)
{
	struct lo_ctx *ctx = w->data;
	struct meta *m = ctx->a->meta;
	for (size_t i = 0; i < ctx->search_count; i++) {
		struct lo_search *ls = &ctx->searches[i];
		int64_t base, ts;
		ls->rc = ls->s.want_max ? meta_max_timestamp(m, ls->tid, ls->partition, &base, &ts)
					: meta_offset_for_timestamp(m, ls->tid, ls->partition,
								    ls->s.target, &base, &ts);
		size_t n = 0;
		if (!ls->rc && (meta_batches_from(m, ls->tid, ls->partition, base, 1, &ls->row, &n) != 0 ||
				n != 1))
			ls->rc = SL_EMETA;
	}
}

/* Find the exact record in the batch the pool job found. */
static int16_t search_batch(struct agent *a, struct lo_search *ls)
{
	struct lo_ctx *ctx = ls->ctx;
	if (ls->rc == SL_ENOTFOUND) {
		set_answer(ctx->req, ls->rp, ls->max_num_offsets, -1, -1);
		return KERR_NONE;
	}
	if (ls->rc)
		return KERR_KAFKA_STORAGE_ERROR;
	/* The batch may straddle the log start (DeleteRecords inside it):
	 * Kafka searches only records at or after it. */
	int64_t below = ls->log_start - ls->row.base_offset;
	ls->s.min_delta = below > 0 ? (int32_t)(below < INT32_MAX ? below : INT32_MAX) : 0;
	struct cache_obj *o = cache_get(a->cache, ls->row.object_key);
	const uint8_t *cached = o ? cache_obj_bytes(o, ls->row.byte_offset, ls->row.length) : NULL;
	if (cached) {
		search_bytes(ls, cached);
		cache_obj_unref(o);
		return KERR_NONE;
	}
	cache_obj_unref(o);
	ls->buf = malloc(ls->row.length);
	if (!ls->buf)
		return KERR_UNKNOWN_SERVER_ERROR;
	ctx->pending++;
	if (objstore_get_start(a->store, a->loop, ls->row.object_key, ls->row.byte_offset,
			       ls->row.length, ls->buf, search_read_done, ls) != 0) {
		ctx->pending--;
		free(ls->buf);
		ls->buf = NULL;
		return KERR_KAFKA_STORAGE_ERROR;
	}
	return KERR_NONE;
}

static void lookups_done(uv_work_t *w, int status)
{
	struct lo_ctx *ctx = w->data;
	for (size_t i = 0; i < ctx->search_count; i++) {
		struct lo_search *ls = &ctx->searches[i];
		if (status)
			ls->rc = SL_EIO;
		ls->rp->error_code = search_batch(ctx->a, ls);
	}
	lo_finish(ctx);
}

/* A search for the pool job; its answer is set when the job is done. */
static int16_t search_later(struct lo_ctx *ctx, struct topic_state *t, int32_t p,
			    struct ts_search s, int32_t max_num_offsets, int64_t end,
			    struct kmsg_list_offsets_resp_list_offsets_partition_response *rp)
{
	struct lo_search *ls = &ctx->searches[ctx->search_count++];
	ls->ctx = ctx;
	ls->s = s;
	ls->tid = t->tid;
	ls->partition = p;
	ls->log_start = t->parts[p].log_start_offset;
	ls->end = end;
	ls->rp = rp;
	ls->max_num_offsets = max_num_offsets;
	return KERR_NONE;
}

/* The answer for one partition: set now, or by a batch search later. */
static int16_t lookup(struct lo_ctx *ctx, struct topic_state *t, int32_t p,
		      int64_t ts, int32_t max_num_offsets, bool committed,
		      struct kmsg_list_offsets_resp_list_offsets_partition_response *rp)
{
	struct request *req = ctx->req;
	struct partition_state *ps = &t->parts[p];
	int64_t end = committed ? ps->last_stable_offset : ps->high_watermark;
	switch (ts) {
	case TS_LATEST:
		set_answer(req, rp, max_num_offsets, end, -1);
		return KERR_NONE;
	case TS_EARLIEST:
	case TS_EARLIEST_LOCAL:
		set_answer(req, rp, max_num_offsets, ps->log_start_offset, -1);
		return KERR_NONE;
	case TS_LATEST_TIERED:
		/* Nothing is tiered: Kafka answers -1 then. */
		set_answer(req, rp, max_num_offsets, -1, -1);
		return KERR_NONE;
	case TS_MAX: {
		struct ts_search s = { .want_max = true };
		return search_later(ctx, t, p, s, max_num_offsets, end, rp);
	}
	default:
		if (ts < 0)
			return KERR_INVALID_REQUEST;
		struct ts_search s = { .target = ts };
		return search_later(ctx, t, p, s, max_num_offsets, end, rp);
	}
}

/* An isolation level other than 0 or 1 (v2+): Kafka's IsolationLevel.forId
 * throws once the request has a topic it may describe, and every
 * partition asked is answered UNKNOWN_SERVER_ERROR (getErrorResponse).
 * Whether that is so. */
static bool bad_isolation(struct agent *a, struct request *req,
			  const struct kmsg_list_offsets_req *m)
{
	if (req->api_version < 2 || m->isolation_level == 0 || m->isolation_level == 1)
		return false;
	for (int32_t i = 0; i < m->topics_count; i++)
		if (api_allowed_topic(a, req, m->topics[i].name, ACL_OP_DESCRIBE))
			return true;
	return false;
}

void handle_list_offsets(struct agent *a, struct request *req, const struct kmsg_list_offsets_req *m)
{
	struct lo_ctx *ctx;
	if (!REQ_ARRAY(req, 1, ctx)) {
		request_fail_close(req);
		return;
	}
	ctx->a = a;
	ctx->req = req;
	ctx->pending = 1; /* held while the partitions are started */
	int64_t asked = 0;
	for (int32_t i = 0; i < m->topics_count; i++)
		asked += m->topics[i].partitions_count > 0 ? m->topics[i].partitions_count : 0;
	if (!REQ_ARRAY(req, asked, ctx->searches)) {
		request_fail_close(req);
		return;
	}
	struct kmsg_list_offsets_resp *r = &ctx->r;
	kmsg_list_offsets_resp_init(r);
	r->topics_count = m->topics_count > 0 ? m->topics_count : 0;
	if (!REQ_ARRAY(req, r->topics_count, r->topics)) {
		request_fail_close(req);
		return;
	}
	bool bad = bad_isolation(a, req, m);
	for (int32_t i = 0; i < r->topics_count; i++) {
		struct kmsg_list_offsets_req_list_offsets_topic *qt = &m->topics[i];
		struct kmsg_list_offsets_resp_list_offsets_topic_response *rt = &r->topics[i];
		kmsg_list_offsets_resp_list_offsets_topic_response_init(rt);
		rt->name = qt->name;
		rt->partitions_count = qt->partitions_count > 0 ? qt->partitions_count : 0;
		if (!REQ_ARRAY(req, rt->partitions_count, rt->partitions)) {
			/* Searches already started finish into this request. */
			r->topics_count = i;
			break;
		}
		struct topic_state *t = agent_topic(a, qt->name);
		bool may = api_allowed_topic(a, req, qt->name, ACL_OP_DESCRIBE);
		for (int32_t k = 0; k < rt->partitions_count; k++) {
			struct kmsg_list_offsets_req_list_offsets_partition *qp = &qt->partitions[k];
			struct kmsg_list_offsets_resp_list_offsets_partition_response *rp = &rt->partitions[k];
			kmsg_list_offsets_resp_list_offsets_partition_response_init(rp);
			rp->partition_index = qp->partition_index;
			rp->leader_epoch = placement_leader_epoch(&a->placement);
			if (bad) {
				rp->error_code = KERR_UNKNOWN_SERVER_ERROR;
				rp->leader_epoch = -1;
				rp->offset = rp->timestamp = -1;
				continue;
			}
			if (!may) {
				rp->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
				rp->leader_epoch = -1;
				continue;
			}
			if (!t || qp->partition_index < 0 || qp->partition_index >= t->partition_count) {
				rp->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
				rp->leader_epoch = -1;
				continue;
			}
			/* isolation_level exists from v2 on: 0 before it. */
			rp->error_code = lookup(ctx, t, qp->partition_index, qp->timestamp,
						qp->max_num_offsets, m->isolation_level == 1, rp);
		}
	}
	if (ctx->search_count > 0) {
		ctx->work.data = ctx;
		if (uv_queue_work(a->loop, &ctx->work, lookups_work, lookups_done) != 0)
			lookups_done(&ctx->work, UV_EINVAL);
		return;
	}
	lo_finish(ctx);
}
