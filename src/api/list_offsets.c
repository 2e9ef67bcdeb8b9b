/* list_offsets.c — ListOffsets: earliest, latest, max timestamp, and the
 * first offset whose timestamp is at or after a given time (found in the
 * metadata store by batch max timestamp, then inside the batch by record).
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

/* Read one batch row's bytes (cache first). Caller frees. */
static uint8_t *read_batch(struct agent *a, const struct meta_batch_row *row)
{
	uint8_t *buf = malloc(row->length);
	if (!buf)
		return NULL;
	struct cache_obj *o = cache_get(a->cache, row->object_key);
	if (o && row->byte_offset + row->length <= o->len) {
		memcpy(buf, o->data + row->byte_offset, row->length);
	} else if (objstore_get(a->store, row->object_key, row->byte_offset, row->length, buf) != 0) {
		free(buf);
		buf = NULL;
	}
	cache_obj_unref(o);
	return buf;
}

struct ts_search {
	int64_t target;       /* >= 0: first record with timestamp >= target */
	bool want_max;        /* else: the record with the largest timestamp */
	int32_t found_delta;
	int64_t found_ts;
};

static int ts_visit(void *arg, int32_t offset_delta, int64_t timestamp)
{
	struct ts_search *s = arg;
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

/* Find the exact record in the batch at base_offset. */
static int16_t search_batch(struct agent *a, struct topic_state *t, int32_t p, int64_t base_offset,
			    struct ts_search *s, int64_t *offset, int64_t *timestamp)
{
	struct meta_batch_row row;
	size_t n = 0;
	if (meta_batches_from(a->meta, t->tid, p, base_offset, 1, &row, &n) != 0 || n != 1)
		return KERR_KAFKA_STORAGE_ERROR;
	uint8_t *batch = read_batch(a, &row);
	if (!batch)
		return KERR_KAFKA_STORAGE_ERROR;
	s->found_delta = -1;
	int rc = batch_records_each(batch, row.length, ts_visit, s);
	free(batch);
	if (rc < 0 || s->found_delta < 0) {
		/* Fall back to the batch itself. */
		*offset = row.base_offset;
		*timestamp = row.max_timestamp;
		return KERR_NONE;
	}
	*offset = row.base_offset + s->found_delta;
	*timestamp = s->found_ts;
	return KERR_NONE;
}

static int16_t lookup(struct agent *a, struct topic_state *t, int32_t p, int64_t ts,
		      int64_t *offset, int64_t *timestamp)
{
	struct partition_state *ps = &t->parts[p];
	*timestamp = -1;
	switch (ts) {
	case TS_LATEST:
		*offset = ps->high_watermark;
		return KERR_NONE;
	case TS_EARLIEST:
	case TS_EARLIEST_LOCAL:
		*offset = ps->log_start_offset;
		return KERR_NONE;
	case TS_LATEST_TIERED:
		/* Nothing is tiered: Kafka answers -1 then. */
		*offset = -1;
		return KERR_NONE;
	case TS_MAX: {
		int64_t base, max_ts;
		int rc = meta_max_timestamp(a->meta, t->tid, p, &base, &max_ts);
		if (rc == SL_ENOTFOUND) {
			*offset = -1;
			return KERR_NONE;
		}
		if (rc)
			return KERR_KAFKA_STORAGE_ERROR;
		struct ts_search s = { .want_max = true };
		return search_batch(a, t, p, base, &s, offset, timestamp);
	}
	default:
		if (ts < 0)
			return KERR_INVALID_REQUEST;
		int64_t base, batch_ts;
		int rc = meta_offset_for_timestamp(a->meta, t->tid, p, ts, &base, &batch_ts);
		if (rc == SL_ENOTFOUND) {
			*offset = -1;
			return KERR_NONE;
		}
		if (rc)
			return KERR_KAFKA_STORAGE_ERROR;
		struct ts_search s = { .target = ts };
		return search_batch(a, t, p, base, &s, offset, timestamp);
	}
}

void handle_list_offsets(struct agent *a, struct request *req)
{
	struct kmsg_list_offsets_req m;
	kmsg_list_offsets_req_init(&m);
	if (kmsg_list_offsets_req_decode(&req->body, req->api_version, &m, &req->arena) != 0) {
		api_malformed(req, "ListOffsets");
		return;
	}
	int16_t v = req->api_version;
	struct kmsg_list_offsets_resp r;
	kmsg_list_offsets_resp_init(&r);
	r.topics_count = m.topics_count > 0 ? m.topics_count : 0;
	if (!REQ_ARRAY(req, r.topics_count, r.topics)) {
		request_fail_close(req);
		return;
	}
	for (int32_t i = 0; i < r.topics_count; i++) {
		struct kmsg_list_offsets_req_list_offsets_topic *qt = &m.topics[i];
		struct kmsg_list_offsets_resp_list_offsets_topic_response *rt = &r.topics[i];
		kmsg_list_offsets_resp_list_offsets_topic_response_init(rt);
		rt->name = qt->name;
		rt->partitions_count = qt->partitions_count > 0 ? qt->partitions_count : 0;
		if (!REQ_ARRAY(req, rt->partitions_count, rt->partitions)) {
			request_fail_close(req);
			return;
		}
		struct topic_state *t = agent_topic(a, qt->name);
		for (int32_t k = 0; k < rt->partitions_count; k++) {
			struct kmsg_list_offsets_req_list_offsets_partition *qp = &qt->partitions[k];
			struct kmsg_list_offsets_resp_list_offsets_partition_response *rp = &rt->partitions[k];
			kmsg_list_offsets_resp_list_offsets_partition_response_init(rp);
			rp->partition_index = qp->partition_index;
			rp->leader_epoch = 0;
			if (!t || qp->partition_index < 0 || qp->partition_index >= t->partition_count) {
				rp->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
				rp->leader_epoch = -1;
				continue;
			}
			int64_t offset = -1, ts = -1;
			rp->error_code = lookup(a, t, qp->partition_index, qp->timestamp, &offset, &ts);
			if (v == 0) {
				/* v0: a list of offsets (we have one segment: one). */
				if (!rp->error_code && offset >= 0 && REQ_ARRAY(req, 1, rp->old_style_offsets)) {
					rp->old_style_offsets[0] = offset;
					rp->old_style_offsets_count = qp->max_num_offsets > 0 ? 1 : 0;
				}
			} else {
				rp->offset = offset;
				rp->timestamp = ts;
			}
		}
	}
	kmsg_list_offsets_resp_encode(&req->resp, v, &r);
	request_respond(req);
}
