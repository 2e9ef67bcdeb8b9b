/* fetch.c — Fetch: find the batch rows at or after each fetch offset,
 * copy their bytes from the read cache (or ranged reads of the store),
 * patch baseOffset and the leader epoch, follow Kafka's size rules, and
 * long-poll until min_bytes are there or max_wait_ms passes.
 *
 * Batches missing from the read cache are read through the store's
 * asynchronous get (adjacent ranges coalesced); the loop never blocks.
 *
 * Fetch sessions (KIP-227) are not kept: every response carries session
 * id 0, which tells clients to send full fetch requests. */
#include <stdlib.h>
#include <string.h>

#include "base/grow.h"
#include "agent/agent.h"
#include "api/api.h"
#include "api/handlers.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/log.h"
#include "kmsg.h"
#include "objstore/objstore.h"
#include "proto/kerr.h"
#include "storage/batch.h"
#include "storage/cache.h"

/* Rows read per metadata query while filling one partition. */
#define FETCH_ROWS_PER_QUERY 64
/* Largest fetch response we build, whatever max_bytes says. Clients ask
 * for up to 50 MiB; answering with less only means another fetch, while
 * buffers of that size are page-faulted afresh every time (measured:
 * catch-up reads spent a third of the agent's CPU faulting 32-64 MiB
 * response buffers). 8 MiB responses fit the loop's buffer pool. */
#define FETCH_RESPONSE_BYTES_MAX (8 * 1024 * 1024)

/* A batch that was not in the read cache: read from the store into data
 * at data_off, then patched. */
struct fetch_read {
	char key[META_OBJECT_KEY_BYTES];
	uint64_t byte_offset;
	uint32_t length;
	size_t data_off;
	int64_t base_offset;
	struct kmsg_fetch_resp_partition_data *rp;
	int err;
};

struct fetch_wait {
	struct fetch_wait *prev, *next;
	uv_timer_t timer;
	struct agent *a;
	struct request *req;
	struct kmsg_fetch_req m;
	struct kmsg_fetch_resp r;
	struct kbuf data;         /* records of every partition */
	size_t *data_off;         /* per response partition: offset into data */
	struct fetch_read *reads; /* cache misses of the last gather */
	size_t read_count, read_cap;
	size_t reads_pending;     /* ranges being read */
	bool waiting;
};

/* Fill one partition's records starting at offset: bytes from the read
 * cache are copied now, the rest become fetch_reads. budget is how many
 * bytes it may add; the first batch of the response is added even when
 * larger (first_in_response). Returns bytes added. */
static size_t read_partition(struct fetch_wait *f, struct topic_state *t, int32_t p,
			     int64_t offset, size_t budget, bool first_in_response,
			     struct kmsg_fetch_resp_partition_data *rp, int16_t *error)
{
	struct agent *a = f->a;
	struct kbuf *out = &f->data;
	struct meta_batch_row rows[FETCH_ROWS_PER_QUERY];
	size_t added = 0;
	while (added < budget || (first_in_response && added == 0)) {
		size_t n = 0;
		int rc = meta_batches_from(a->meta, t->tid, p, offset, FETCH_ROWS_PER_QUERY, rows, &n);
		if (rc) {
			*error = KERR_KAFKA_STORAGE_ERROR;
			return added;
		}
		if (n == 0)
			break;
		for (size_t i = 0; i < n; i++) {
			struct meta_batch_row *row = &rows[i];
			/* A commit the loop has not seen yet (its rows are already
			 * readable): not visible before its producer is answered. */
			if (row->base_offset >= t->parts[p].high_watermark)
				return added;
			if (added + row->length > budget && !(first_in_response && added == 0))
				return added;
			uint8_t *dst = kbuf_reserve(out, row->length);
			if (!dst)
				return added;
			struct cache_obj *o = cache_get(a->cache, row->object_key);
			if (o && row->byte_offset + row->length <= o->len) {
				memcpy(dst, o->data + row->byte_offset, row->length);
				batch_patch(dst, row->base_offset, 0);
			} else {
				if (array_grow(&f->reads, &f->read_cap, f->read_count,
					       sizeof *f->reads, 16) != 0) {
					cache_obj_unref(o);
					return added;
				}
				struct fetch_read *fr = &f->reads[f->read_count++];
				memcpy(fr->key, row->object_key, sizeof fr->key);
				fr->byte_offset = row->byte_offset;
				fr->length = row->length;
				fr->data_off = out->len;
				fr->base_offset = row->base_offset;
				fr->rp = rp;
				fr->err = 0;
			}
			cache_obj_unref(o);
			out->len += row->length;
			added += row->length;
			offset = row->last_offset + 1;
		}
		if (n < FETCH_ROWS_PER_QUERY)
			break;
	}
	return added;
}

static bool zero_uuid(const uint8_t u[16])
{
	for (int i = 0; i < 16; i++)
		if (u[i])
			return false;
	return true;
}

/* Build the response from the current state. Returns bytes of records. */
static size_t fetch_gather(struct fetch_wait *f)
{
	struct agent *a = f->a;
	struct request *req = f->req;
	int16_t v = req->api_version;
	struct kmsg_fetch_req *m = &f->m;
	f->data.len = 0;
	f->read_count = 0;
	size_t total = 0, k = 0;
	size_t max_bytes = m->max_bytes > 0 ? (size_t)m->max_bytes : 0;
	if (max_bytes > FETCH_RESPONSE_BYTES_MAX)
		max_bytes = FETCH_RESPONSE_BYTES_MAX;
	for (int32_t i = 0; i < m->topics_count; i++) {
		struct kmsg_fetch_req_fetch_topic *qt = &m->topics[i];
		struct kmsg_fetch_resp_fetchable_topic_response *rt = &f->r.responses[i];
		struct topic_state *t = v >= 13 ? (zero_uuid(qt->topic_id) ? NULL : agent_topic_by_uuid(a, qt->topic_id))
						: agent_topic(a, qt->topic);
		for (int32_t j = 0; j < qt->partitions_count; j++, k++) {
			struct kmsg_fetch_req_fetch_partition *qp = &qt->partitions[j];
			struct kmsg_fetch_resp_partition_data *rp = &rt->partitions[j];
			f->data_off[k] = f->data.len;
			rp->records = KBYTES_NULL;
			rp->records.len = 0;
			if (!t || qp->partition < 0 || qp->partition >= t->partition_count) {
				rp->error_code = v >= 13 ? KERR_UNKNOWN_TOPIC_ID
							 : KERR_UNKNOWN_TOPIC_OR_PARTITION;
				continue;
			}
			struct partition_state *ps = &t->parts[qp->partition];
			rp->high_watermark = ps->high_watermark;
			rp->last_stable_offset = ps->high_watermark;
			rp->log_start_offset = ps->log_start_offset;
			if (qp->fetch_offset < ps->log_start_offset || qp->fetch_offset > ps->high_watermark) {
				rp->error_code = KERR_OFFSET_OUT_OF_RANGE;
				continue;
			}
			rp->error_code = KERR_NONE;
			if (qp->fetch_offset == ps->high_watermark)
				continue;
			size_t budget = qp->partition_max_bytes > 0 ? (size_t)qp->partition_max_bytes : 0;
			if (total >= max_bytes)
				budget = 0;
			else if (budget > max_bytes - total)
				budget = max_bytes - total;
			int16_t err = KERR_NONE;
			size_t n = read_partition(f, t, qp->partition, qp->fetch_offset, budget,
						  total == 0, rp, &err);
			rp->error_code = n ? KERR_NONE : err;
			rp->records.len = (int32_t)n;
			total += n;
		}
	}
	return total;
}

static void fetch_free(uv_handle_t *h)
{
	struct fetch_wait *f = h->data;
	kbuf_free(&f->data);
	free(f->reads);
	free(f);
}

static void fetch_unlink(struct fetch_wait *f)
{
	if (!f->waiting)
		return;
	f->waiting = false;
	if (f->prev) f->prev->next = f->next; else f->a->waiters = f->next;
	if (f->next) f->next->prev = f->prev;
	f->prev = f->next = NULL;
}

static void fetch_respond(struct fetch_wait *f)
{
	struct request *req = f->req;
	size_t k = 0;
	if (f->data.oom) {
		fetch_unlink(f);
		request_fail_close(req);
		uv_close((uv_handle_t *)&f->timer, fetch_free);
		return;
	}
	for (int32_t i = 0; i < f->r.responses_count; i++) {
		struct kmsg_fetch_resp_fetchable_topic_response *rt = &f->r.responses[i];
		for (int32_t j = 0; j < rt->partitions_count; j++, k++) {
			struct kmsg_fetch_resp_partition_data *rp = &rt->partitions[j];
			rp->records.ptr = f->data.data ? f->data.data + f->data_off[k] : NULL;
		}
	}
	kmsg_fetch_resp_encode(&req->resp, req->api_version, &f->r);
	fetch_unlink(f);
	uv_timer_stop(&f->timer);
	request_respond(req);
	uv_close((uv_handle_t *)&f->timer, fetch_free);
}

static int cmp_read(const void *x, const void *y)
{
	const struct fetch_read *a = x, *b = y;
	int c = strcmp(a->key, b->key);
	if (c)
		return c;
	return a->byte_offset < b->byte_offset ? -1 : a->byte_offset > b->byte_offset;
}

static void reads_done(struct fetch_wait *f)
{
	for (size_t i = 0; i < f->read_count; i++) {
		struct fetch_read *fr = &f->reads[i];
		if (fr->err) {
			/* The partition's data is incomplete: send none of it. */
			fr->rp->error_code = KERR_KAFKA_STORAGE_ERROR;
			fr->rp->records.len = 0;
		} else {
			batch_patch(f->data.data + fr->data_off, fr->base_offset, 0);
		}
	}
	fetch_respond(f);
}

/* One coalesced range came back: mark its reads. */
struct range_read {
	struct fetch_wait *f;
	size_t first, end; /* f->reads[first, end) */
};

static void range_done(void *arg, int err)
{
	struct range_read *rr = arg;
	struct fetch_wait *f = rr->f;
	if (err)
		log_error("reading %s@%llu: %s", f->reads[rr->first].key,
			  (unsigned long long)f->reads[rr->first].byte_offset, sl_strerror(err));
	for (size_t k = rr->first; k < rr->end; k++)
		f->reads[k].err = err;
	free(rr);
	if (--f->reads_pending == 0)
		reads_done(f);
}

/* Read what the cache lacked through the store's asynchronous get, the
 * adjacent ranges of one object (consecutive batches of a partition)
 * coalesced into one ranged read. */
static void reads_start(struct fetch_wait *f)
{
	qsort(f->reads, f->read_count, sizeof *f->reads, cmp_read);
	f->reads_pending = 1; /* held while starting */
	for (size_t i = 0; i < f->read_count;) {
		struct fetch_read *first = &f->reads[i];
		size_t j = i + 1;
		uint64_t len = first->length;
		while (j < f->read_count && !strcmp(f->reads[j].key, first->key) &&
		       f->reads[j].byte_offset == first->byte_offset + len &&
		       f->reads[j].data_off == first->data_off + len) {
			len += f->reads[j].length;
			j++;
		}
		struct range_read *rr = malloc(sizeof *rr);
		int rc = SL_ENOMEM;
		if (rr) {
			*rr = (struct range_read){ f, i, j };
			f->reads_pending++;
			rc = objstore_get_start(f->a->store, f->a->loop, first->key, first->byte_offset,
						(size_t)len, f->data.data + first->data_off, range_done, rr);
			if (rc) {
				f->reads_pending--;
				free(rr);
			}
		}
		if (rc)
			for (size_t k = i; k < j; k++)
				f->reads[k].err = rc;
		i = j;
	}
	if (--f->reads_pending == 0)
		reads_done(f);
}

/* Respond now, or after reading the batches the cache did not have. */
static void fetch_finish(struct fetch_wait *f)
{
	if (f->read_count == 0 || f->data.oom) {
		fetch_respond(f);
		return;
	}
	fetch_unlink(f);
	uv_timer_stop(&f->timer);
	reads_start(f);
}

static void fetch_timeout(uv_timer_t *t)
{
	struct fetch_wait *f = t->data;
	fetch_gather(f);
	fetch_finish(f);
}

void fetch_wake(struct agent *a)
{
	struct fetch_wait *f = a->waiters;
	while (f) {
		struct fetch_wait *next = f->next;
		size_t n = fetch_gather(f);
		if (n >= (size_t)(f->m.min_bytes > 0 ? f->m.min_bytes : 0) || !request_conn_open(f->req))
			fetch_finish(f);
		f = next;
	}
}

void fetch_shutdown(struct agent *a)
{
	while (a->waiters) {
		struct fetch_wait *f = a->waiters;
		fetch_gather(f);
		/* Shutting down: no store reads; what the cache had goes out. */
		for (size_t i = 0; i < f->read_count; i++)
			f->reads[i].rp->records.len = 0;
		f->read_count = 0;
		fetch_respond(f);
	}
}

void handle_fetch(struct agent *a, struct request *req)
{
	struct fetch_wait *f = calloc(1, sizeof *f);
	if (!f) {
		request_fail_close(req);
		return;
	}
	f->a = a;
	f->req = req;
	kbuf_init(&f->data);
	uv_timer_init(a->loop, &f->timer);
	f->timer.data = f;
	struct kmsg_fetch_req *m = &f->m;
	kmsg_fetch_req_init(m);
	if (kmsg_fetch_req_decode(&req->body, req->api_version, m, &req->arena) != 0) {
		uv_close((uv_handle_t *)&f->timer, fetch_free);
		api_malformed(req, "Fetch");
		return;
	}
	struct kmsg_fetch_resp *r = &f->r;
	kmsg_fetch_resp_init(r);
	r->error_code = KERR_NONE;
	r->session_id = 0;
	int32_t topics = m->topics_count > 0 ? m->topics_count : 0;
	size_t parts = 0;
	r->responses_count = topics;
	if (!REQ_ARRAY(req, topics, r->responses))
		goto out_fail;
	for (int32_t i = 0; i < topics; i++) {
		struct kmsg_fetch_req_fetch_topic *qt = &m->topics[i];
		struct kmsg_fetch_resp_fetchable_topic_response *rt = &r->responses[i];
		kmsg_fetch_resp_fetchable_topic_response_init(rt);
		rt->topic = qt->topic;
		memcpy(rt->topic_id, qt->topic_id, 16);
		rt->partitions_count = qt->partitions_count > 0 ? qt->partitions_count : 0;
		if (!REQ_ARRAY(req, rt->partitions_count, rt->partitions))
			goto out_fail;
		for (int32_t j = 0; j < rt->partitions_count; j++) {
			kmsg_fetch_resp_partition_data_init(&rt->partitions[j]);
			rt->partitions[j].partition_index = qt->partitions[j].partition;
			rt->partitions[j].aborted_transactions_count = req->api_version >= 4 ? 0 : -1;
			rt->partitions[j].preferred_read_replica = -1;
		}
		parts += (size_t)rt->partitions_count;
	}
	if (!REQ_ARRAY(req, parts + 1, f->data_off))
		goto out_fail;
	/* Sessions are not kept: a fetch in an unknown session is refused so
	 * the client starts over with a full fetch. */
	if (req->api_version >= 7 && m->session_id != 0) {
		r->error_code = KERR_FETCH_SESSION_ID_NOT_FOUND;
		fetch_respond(f);
		return;
	}
	size_t n = fetch_gather(f);
	int64_t wait_ms = m->max_wait_ms;
	if (wait_ms > SL_FETCH_WAIT_MS_MAX)
		wait_ms = SL_FETCH_WAIT_MS_MAX;
	if (n >= (size_t)(m->min_bytes > 0 ? m->min_bytes : 0) || wait_ms <= 0 || a->draining) {
		fetch_finish(f);
		return;
	}
	f->waiting = true;
	f->next = a->waiters;
	if (a->waiters)
		a->waiters->prev = f;
	a->waiters = f;
	uv_timer_start(&f->timer, fetch_timeout, (uint64_t)wait_ms, 0);
	return;
out_fail:
	uv_close((uv_handle_t *)&f->timer, fetch_free);
	request_fail_close(req);
}
