/* fetch.c — Fetch: decode, per-partition error codes and watermarks
 * (unknown topic or partition, offsets outside [log start, high
 * watermark]), the isolation level, the long poll, and the response.
 * The read engine — row lookups, bytes from the read cache or the
 * store, coalescing, read-ahead, the pin budget, patching, Kafka's size
 * rules — is storage/reader.c, as the write path beside produce.c is
 * storage/writer.c.
 *
 * The long poll lives here: min_bytes and max_wait_ms are the request's,
 * a waiting fetch is answered through its request, and what wakes it is
 * the agent's waiter list (fetch_wake after each commit); the reader only
 * reads what is visible now, so a wake gathers again, when the agent's
 * change journal lists one of the fetch's partitions since its last
 * gather (fetch_touched).
 *
 * The records are not copied into the response: it is encoded with one
 * gap per partition's records (kmsg_fetch_resp_encode_gaps), each then
 * split into the reader's pieces, and written as pieces; the reader's
 * hold keeps what they point into until the write is done.
 *
 * read_committed (isolation_level 1, v4+; docs/transactions.md §6): a
 * partition's batches are returned only below its last stable offset; a
 * fetch offset in (LSO, high watermark] is no error, just nothing yet
 * (out of range is judged on [log start, high watermark] at both
 * levels), and the answer lists the aborted transactions its batches
 * overlap, sorted by first offset (the reader takes them from the
 * agent's aborted index, txn/aborted_index.h, or looks them up).
 * read_uncommitted answers that list as null, as Kafka does;
 * last_stable_offset is the LSO at both levels. A long poll waits on the
 * LSO: what raises it wakes the waiters as a commit does.
 *
 * Fetch sessions (KIP-227): api/fetch_session.c keeps the agent's
 * sessions and says which partitions a fetch reads (the request's, or
 * those of its session that may answer: named, pending, or listed by the
 * agent's change journal since, which fetch_env hands it) and, at the
 * end, which of them the response carries; here each partition is
 * checked and read as before, and the response is built from that list.
 * A woken long poll of an incremental fetch first takes the partitions
 * the journal lists since (fetch_session_more), so its cost follows the
 * commits, not the session's size. */
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "api/api.h"
#include "api/fetch_session.h"
#include "api/handlers.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/log.h"
#include "kmsg.h"
#include "metrics/exposition.h"
#include "proto/kerr.h"
#include "storage/reader.h"
#include "txn/aborted_index.h"

struct part_key {
	int64_t tid;               /* -1: empty */
	int32_t partition;
};

struct fetch_wait {
	struct fetch_wait *prev, *next;
	uv_timer_t timer;
	struct agent *a;
	struct request *req;
	const struct kmsg_fetch_req *m; /* in the request arena */
	struct kmsg_fetch_resp r;
	struct fetch_session_ctx sess; /* the partitions read, in order (sess.parts) */
	struct fetch_env env;       /* what the session learns of the agent */
	size_t parts;               /* partitions read (sess.count) */
	struct reader_slot *slots;  /* per partition read, in order (room for sess.cap) */
	size_t *resp_slot;          /* per response partition: its slot */
	struct reader_fetch *rf;    /* in the request's arena */
	int64_t wait_ms;
	uint64_t gathered_seq;      /* the change journal's position at the last gather */
	struct part_key *keys;      /* the parts' (tid, partition), open addressing */
	size_t keys_cap;            /* a power of two; 0: not made */
	size_t keys_room;           /* keys' allocated entries (grown by doubling) */
	size_t keys_parts;          /* parts when made */
	bool touched;               /* fetch_touched's answer */
	bool waiting;               /* on the waiter list */
	bool looking_up;            /* its rows are being looked up (reader_lookup) */
	bool expired;               /* max_wait_ms passed during a lookup */
	int step;                   /* what fetch_run does once its rows are there */
	bool out_of_range;          /* the last gather found an offset out of range */
};

/* What a gather is for, once it has every row it needs. */
enum fetch_step {
	STEP_FIRST,  /* the request's first gather: answer, or wait */
	STEP_WAKE,   /* a commit woke the long poll: answer if enough now */
	STEP_FINISH, /* answer (timeout, loads waited on) */
};

static bool zero_uuid(const uint8_t u[16])
{
	for (int i = 0; i < 16; i++)
		if (u[i])
			return false;
	return true;
}

static bool same_topic(const struct fetch_part *x, const struct fetch_part *y, bool ids)
{
	if (ids)
		return memcmp(x->topic_id, y->topic_id, 16) == 0;
	return x->topic.len == y->topic.len &&
	       (x->topic.ptr == y->topic.ptr || x->topic.len <= 0 ||
		memcmp(x->topic.ptr, y->topic.ptr, (size_t)x->topic.len) == 0);
}

/* Whether the fetch reads committed data only (isolation_level 1 exists
 * from v4 on; before it every fetch reads uncommitted). */
static bool read_committed(const struct fetch_wait *f)
{
	return f->req->api_version >= 4 && f->m->isolation_level == 1;
}

/* The topic a fetch names (by id from v13), NULL when none, and whether
 * the fetch may read it (READ on the topic; on the name for a name no
 * topic has; an unknown id is answered UNKNOWN_TOPIC_ID). */
static struct topic_state *fetch_topic(struct fetch_wait *f, kstr name, const uint8_t id[16],
				       bool *may)
{
	struct agent *a = f->a;
	bool ids = f->req->api_version >= 13;
	struct topic_state *t = ids ? (zero_uuid(id) ? NULL : agent_topic_by_uuid(a, id))
				    : agent_topic(a, name);
	*may = t ? api_allowed(a, f->req, ACL_RESOURCE_TOPIC, t->name, ACL_OP_READ)
		 : ids || api_allowed_topic(a, f->req, name, ACL_OP_READ);
	return t;
}

static void env_topic(void *arg, kstr name, const uint8_t id[16], int64_t *tid, bool *readable)
{
	struct topic_state *t = fetch_topic(arg, name, id, readable);
	*tid = t ? t->tid : -1;
}

/* The agent's change journal from position since (agent.h). */
static bool env_changes(void *arg, uint64_t since, void (*fn)(void *, int64_t, int32_t),
			void *fn_arg)
{
	struct agent *a = ((struct fetch_wait *)arg)->a;
	if (since > a->changes_seq || (since < a->changes_seq &&
	    (!a->changes || a->changes_seq - since > SL_PARTITION_CHANGES_MAX)))
		return false;
	for (uint64_t q = since; q < a->changes_seq; q++) {
		const struct partition_change *c = &a->changes[q % SL_PARTITION_CHANGES_MAX];
		fn(fn_arg, c->tid, c->partition);
	}
	return true;
}

/* Gather the response from the current state: errors and watermarks
 * here, the records by the reader. Returns bytes of records. */
static size_t fetch_gather(struct fetch_wait *f)
{
	struct agent *a = f->a;
	bool ids = f->req->api_version >= 13;
	bool committed = read_committed(f);
	struct topic_state *t = NULL;
	bool may = false;
	f->out_of_range = false;
	f->gathered_seq = a->changes_seq;
	for (size_t k = 0; k < f->parts; k++) {
		struct fetch_part *p = &f->sess.parts[k];
		struct reader_slot *s = &f->slots[k];
		if (k == 0 || !same_topic(&f->sess.parts[k - 1], p, ids))
			t = fetch_topic(f, p->topic, p->topic_id, &may);
		p->tid = t ? t->tid : -1;
		p->readable = may;
		s->wanted = false;
		p->high_watermark = -1;
		p->log_start_offset = -1;
		p->last_stable_offset = -1;
		if (!may) {
			p->error = KERR_TOPIC_AUTHORIZATION_FAILED;
			continue;
		}
		if (!t || p->partition < 0 || p->partition >= t->partition_count) {
			p->error = ids ? KERR_UNKNOWN_TOPIC_ID : KERR_UNKNOWN_TOPIC_OR_PARTITION;
			continue;
		}
		struct partition_state *ps = &t->parts[p->partition];
		p->high_watermark = ps->high_watermark;
		p->log_start_offset = ps->log_start_offset;
		p->last_stable_offset = ps->last_stable_offset;
		if (p->fetch_offset < ps->log_start_offset || p->fetch_offset > ps->high_watermark) {
			p->error = KERR_OFFSET_OUT_OF_RANGE;
			f->out_of_range = true;
			continue;
		}
		p->error = KERR_NONE;
		if (p->fetch_offset >= (committed ? ps->last_stable_offset : ps->high_watermark))
			continue;
		s->tid = t->tid;
		s->partition = p->partition;
		s->offset = p->fetch_offset;
		s->high_watermark = ps->high_watermark;
		s->stable_offset = committed ? ps->last_stable_offset : -1;
		s->max_bytes = p->max_bytes;
		s->wanted = true;
	}
	/* No read-ahead while draining: nothing will fetch it. */
	return reader_gather(f->rf, f->m->max_bytes > 0 ? (size_t)f->m->max_bytes : 0, !a->draining);
}

static void fetch_free(uv_handle_t *h)
{
	free(h->data);
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

/* Off the waiter list and its timer: it is being answered or read. */
static void fetch_stop_waiting(struct fetch_wait *f)
{
	fetch_unlink(f);
	uv_timer_stop(&f->timer);
}

/* The encoder left out one gap per partition with records of at least
 * READER_PIECE_BYTES_MIN (the list had room for all: it never copies
 * them), in response order: put each partition's pieces in its place, all
 * at its gap's offset. Returns 0, or SL_ENOMEM / SL_EINVAL (a mismatch). */
static int pieces_expand(struct fetch_wait *f, struct kmsg_gaps *g)
{
	size_t n = 0, j = 0, k = 0, total = 0;
	for (size_t s = 0; s < f->parts; s++)
		total += reader_piece_count(f->rf, s);
	/* At most every piece, each a gap of its own. */
	struct kmsg_gap *v = malloc((total ? total : 1) * sizeof *v);
	if (!v)
		return SL_ENOMEM;
	for (int32_t i = 0; i < f->r.responses_count; i++) {
		struct kmsg_fetch_resp_fetchable_topic_response *rt = &f->r.responses[i];
		for (int32_t p = 0; p < rt->partitions_count; p++, k++) {
			kbytes rec = rt->partitions[p].records;
			if (rec.len <= 0 || (size_t)rec.len < g->min_len)
				continue;
			if (j == g->n || g->v[j].len != (size_t)rec.len)
				goto mismatch;
			size_t slot = f->resp_slot[k];
			size_t at = g->v[j++].at, sum = 0, count = reader_piece_count(f->rf, slot);
			for (size_t q = 0; q < count; q++) {
				size_t len;
				const uint8_t *ptr = reader_piece(f->rf, slot, q, &len);
				v[n++] = (struct kmsg_gap){ at, ptr, len };
				sum += len;
			}
			if (sum != (size_t)rec.len)
				goto mismatch;
		}
	}
	if (j != g->n)
		goto mismatch;
	free(g->v);
	g->v = v;
	g->n = g->cap = n;
	return 0;
mismatch:
	free(v);
	log_error("fetch: response pieces do not match the records");
	return SL_EINVAL;
}

/* The aborted transactions a read_committed answer lists for slot k
 * (the reader's: those its records overlap, by first offset), into rp
 * from the request's arena; an empty list without any. Returns 0 or
 * SL_ENOMEM. */
static int fetch_aborted(struct fetch_wait *f, size_t k,
			 struct kmsg_fetch_resp_partition_data *rp)
{
	size_t n;
	const struct aborted_txn *v = reader_aborted(f->rf, k, &n);
	struct kmsg_fetch_resp_aborted_transaction *out;
	rp->aborted_transactions_count = 0;
	if (!n)
		return 0;
	if (!REQ_ARRAY(f->req, n, out))
		return SL_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		kmsg_fetch_resp_aborted_transaction_init(&out[i]);
		out[i].producer_id = v[i].producer_id;
		out[i].first_offset = v[i].first_offset;
	}
	rp->aborted_transactions = out;
	rp->aborted_transactions_count = (int32_t)n;
	return 0;
}

/* The response's topics and partitions: every partition read, or an
 * incremental fetch's changed ones (fetch_session_end decides), grouped
 * by consecutive topic as Kafka's FetchResponse.of does. */
static int fetch_build_response(struct fetch_wait *f)
{
	struct request *req = f->req;
	int16_t v = req->api_version;
	bool ids = v >= 13;
	for (size_t k = 0; k < f->parts; k++) {
		struct fetch_part *p = &f->sess.parts[k];
		p->records_bytes = f->slots[k].bytes;
		if (f->slots[k].err) /* a row lookup or a store read failed */
			p->error = KERR_KAFKA_STORAGE_ERROR;
	}
	f->r.session_id = fetch_session_end(f->a->fetch_sessions, (int64_t)uv_now(f->a->loop),
					    &f->sess);
	size_t topics = 0, parts = 0;
	const struct fetch_part *prev = NULL;
	for (size_t k = 0; k < f->parts; k++) {
		const struct fetch_part *p = &f->sess.parts[k];
		if (!p->respond)
			continue;
		if (!prev || !same_topic(prev, p, ids))
			topics++;
		prev = p;
		parts++;
	}
	f->r.responses_count = (int32_t)topics;
	if (!REQ_ARRAY(req, topics, f->r.responses) || !REQ_ARRAY(req, parts, f->resp_slot))
		return SL_ENOMEM;
	struct kmsg_fetch_resp_fetchable_topic_response *rt = NULL;
	size_t n = 0;
	int32_t j = 0;
	prev = NULL;
	for (size_t k = 0; k < f->parts; k++) {
		const struct fetch_part *p = &f->sess.parts[k];
		if (!p->respond)
			continue;
		if (!prev || !same_topic(prev, p, ids)) {
			rt = rt ? rt + 1 : f->r.responses;
			kmsg_fetch_resp_fetchable_topic_response_init(rt);
			rt->topic = p->topic;
			memcpy(rt->topic_id, p->topic_id, 16);
			/* The topic's partitions: the answered ones that follow. */
			int32_t count = 0;
			for (size_t q = k; q < f->parts; q++) {
				if (!f->sess.parts[q].respond)
					continue;
				if (!same_topic(p, &f->sess.parts[q], ids))
					break;
				count++;
			}
			rt->partitions_count = count;
			if (!REQ_ARRAY(req, count, rt->partitions))
				return SL_ENOMEM;
			j = 0;
		}
		prev = p;
		struct kmsg_fetch_resp_partition_data *rp = &rt->partitions[j++];
		kmsg_fetch_resp_partition_data_init(rp);
		rp->partition_index = p->partition;
		rp->error_code = p->error;
		rp->high_watermark = p->high_watermark;
		rp->last_stable_offset = p->last_stable_offset;
		rp->log_start_offset = p->log_start_offset;
		/* Null for read_uncommitted (and before v4), as Kafka answers;
		 * a list, maybe empty, for read_committed. */
		rp->aborted_transactions_count = -1;
		if (read_committed(f) && fetch_aborted(f, k, rp) != 0)
			return SL_ENOMEM;
		rp->preferred_read_replica = -1;
		/* Records under READER_PIECE_BYTES_MIN are contiguous there
		 * and copied; longer ones are written as pieces. */
		rp->records.ptr = reader_records(f->rf, k);
		rp->records.len = (int32_t)f->slots[k].bytes;
		f->resp_slot[n++] = k;
	}
	return 0;
}

static void fetch_respond(struct fetch_wait *f)
{
	struct request *req = f->req;
	struct reader_hold *h = NULL;
	struct kmsg_gaps gaps = { .min_len = READER_PIECE_BYTES_MIN };
	if (reader_status(f->rf) != 0 || fetch_build_response(f) != 0)
		goto out_fail;
	metrics_fetch_out(f->a, req->api_version, &f->r, f->rf, f->resp_slot);
	/* Room for a gap per partition: the encoder never falls back to
	 * copying records (it cannot: they are not contiguous). */
	gaps.cap = f->parts ? f->parts : 1;
	gaps.v = malloc(gaps.cap * sizeof *gaps.v);
	if (!gaps.v)
		goto out_fail;
	kmsg_fetch_resp_encode_gaps(&req->resp, req->api_version, &f->r, &gaps);
	if (req->resp.oom || pieces_expand(f, &gaps) != 0)
		goto out_fail;
	/* What the pieces point into moves to the hold, released by the
	 * server once the response is written or dropped; the fetch (in the
	 * request's arena) ends before the request can be freed. */
	h = reader_hold_take(f->rf);
	if (!h)
		goto out_fail;
	fetch_stop_waiting(f);
	reader_fetch_end(f->rf);
	request_respond_pieces(req, &gaps, reader_hold_release, h);
	uv_close((uv_handle_t *)&f->timer, fetch_free);
	return;
out_fail:
	free(gaps.v);
	fetch_stop_waiting(f);
	reader_fetch_end(f->rf);
	request_fail_close(req);
	uv_close((uv_handle_t *)&f->timer, fetch_free);
}

static void fetch_read_done(void *arg)
{
	fetch_respond(arg);
}

static void fetch_finish(struct fetch_wait *f);
static void fetch_run(struct fetch_wait *f, enum fetch_step step);

/* The read-ahead loads this fetch waited on are done (or failed): build
 * it again from the cache; what is still missing is read by ranges. */
static void fetch_loaded(void *arg)
{
	fetch_run(arg, STEP_FINISH);
}

/* Respond now; or once the read-ahead loads already in flight for what
 * it misses have arrived (rather than reading the same bytes twice); or
 * after reading the batches the cache did not have by ranges. */
static void fetch_finish(struct fetch_wait *f)
{
	if (reader_wait_loads(f->rf, fetch_loaded, f)) {
		fetch_stop_waiting(f);
		return;
	}
	if (!reader_missing(f->rf)) {
		fetch_respond(f);
		return;
	}
	fetch_stop_waiting(f);
	reader_read_missing(f->rf, fetch_read_done, f);
}

static void fetch_timeout(uv_timer_t *t)
{
	struct fetch_wait *f = t->data;
	if (f->looking_up) {
		f->expired = true; /* answered when the rows are back */
		return;
	}
	fetch_run(f, STEP_FINISH);
}

static void fetch_rows_back(void *arg)
{
	struct fetch_wait *f = arg;
	f->looking_up = false;
	fetch_run(f, f->expired ? STEP_FINISH : (enum fetch_step)f->step);
}

static void fetch_wait_start(struct fetch_wait *f)
{
	if (f->waiting)
		return;
	f->waiting = true;
	f->prev = NULL;
	f->next = f->a->waiters;
	if (f->a->waiters)
		f->a->waiters->prev = f;
	f->a->waiters = f;
}

/* Slots for every partition the fetch reads (room for sess.cap) and a
 * reader fetch over them; one made before is ended (nothing of it may be
 * in flight). 0 or SL_ENOMEM. */
static int fetch_slots(struct fetch_wait *f)
{
	if (f->rf)
		reader_fetch_end(f->rf);
	f->rf = NULL;
	f->parts = f->sess.count;
	if (!REQ_ARRAY(f->req, f->sess.cap > f->parts ? f->sess.cap : f->parts, f->slots))
		return SL_ENOMEM;
	return reader_fetch_new(f->a->reader, &f->req->arena, f->slots, f->parts, &f->rf);
}

/* A woken long poll of an incremental fetch: the session's partitions
 * the change journal lists since its last look join the fetch. How many
 * did, or SL_ENOMEM (the fetch cannot go on). */
static int fetch_more(struct fetch_wait *f)
{
	if (f->sess.kind != FETCH_SESSION_INCREMENTAL)
		return 0;
	f->env.seq = f->a->changes_seq;
	size_t cap = f->sess.cap;
	int added = fetch_session_more(f->a->fetch_sessions, &f->req->arena, &f->env, &f->sess);
	if (added < 0)
		return added;
	if (added == 0)
		return 0;
	int rc;
	if (f->sess.cap == cap && f->sess.count <= cap) {
		/* Room in the slots: the reader fetch starts over on them
		 * (its per-slot state follows the parts' new order). */
		memset(f->slots, 0, f->sess.count * sizeof *f->slots);
		reader_fetch_end(f->rf);
		f->parts = f->sess.count;
		rc = reader_fetch_new(f->a->reader, &f->req->arena, f->slots, f->parts, &f->rf);
	} else {
		rc = fetch_slots(f);
	}
	return rc ? rc : added;
}

static size_t key_hash(int64_t tid, int32_t partition, size_t mask)
{
	uint64_t x = ((uint64_t)tid * 0x9E3779B97F4A7C15ull) ^ (uint32_t)partition;
	x *= 0xC2B2AE3D27D4EB4Full;
	return (size_t)(x >> 32) & mask;
}

static void key_touched(void *arg, int64_t tid, int32_t partition)
{
	struct fetch_wait *f = arg;
	size_t mask = f->keys_cap - 1;
	for (size_t h = key_hash(tid, partition, mask); f->keys[h].tid >= 0; h = (h + 1) & mask)
		if (f->keys[h].tid == tid && f->keys[h].partition == partition) {
			f->touched = true;
			return;
		}
}

/* Whether what moved since the fetch's last gather (the change journal)
 * includes one of its partitions; true when it cannot tell (the journal
 * no longer reaches back, a topic unknown at the gather, no memory). A
 * woken long poll gathers again only then: every commit wakes every
 * waiting fetch, and a gather costs the fetch's partitions. */
static bool fetch_touched(struct fetch_wait *f)
{
	if (f->keys_parts != f->parts || !f->keys_cap) {
		size_t cap = 16;
		while (cap < 2 * f->parts + 2)
			cap *= 2;
		/* The arena keeps what it gave: a new table only when the
		 * parts doubled, so a long poll that keeps taking partitions
		 * uses twice its last table at most. */
		if (cap > f->keys_room) {
			if (!REQ_ARRAY(f->req, cap, f->keys))
				return true;
			f->keys_room = cap;
		}
		for (size_t h = 0; h < cap; h++)
			f->keys[h].tid = -1;
		f->keys_cap = cap;
		f->keys_parts = f->parts;
		for (size_t k = 0; k < f->parts; k++) {
			const struct fetch_part *p = &f->sess.parts[k];
			if (p->tid < 0) {
				f->keys_cap = 0; /* made again, and asked every time */
				return true;
			}
			size_t h = key_hash(p->tid, p->partition, cap - 1);
			while (f->keys[h].tid >= 0)
				h = (h + 1) & (cap - 1);
			f->keys[h] = (struct part_key){ p->tid, p->partition };
		}
	}
	f->touched = false;
	if (!env_changes(f, f->gathered_seq, key_touched, f))
		return true;
	return f->touched;
}

/* Gather; when the index and earlier lookups lack rows, look them up on
 * the pool first (off the waiter list meanwhile, its timer running) and
 * gather again when they are back; then do step. A tailing consumer's
 * rows are in the batch index: no lookup at all. */
static void fetch_run(struct fetch_wait *f, enum fetch_step step)
{
	struct agent *a = f->a;
	int added = step == STEP_WAKE ? fetch_more(f) : 0;
	if (added < 0) {
		fetch_stop_waiting(f);
		if (f->rf)
			reader_fetch_end(f->rf);
		request_fail_close(f->req);
		uv_close((uv_handle_t *)&f->timer, fetch_free);
		return;
	}
	/* Woken by a commit of other partitions: nothing to gather (new
	 * parts were never gathered: always). */
	if (step == STEP_WAKE && !added && f->waiting && request_conn_open(f->req) &&
	    !a->draining && !fetch_touched(f))
		return;
	size_t n = fetch_gather(f);
	if (reader_rows_needed(f->rf) && !a->draining) {
		f->step = step;
		fetch_unlink(f);
		if (reader_lookup(f->rf, fetch_rows_back, f)) {
			f->looking_up = true;
			return;
		}
		n = fetch_gather(f); /* out of memory: those slots fail */
	}
	size_t min_bytes = (size_t)(f->m->min_bytes > 0 ? f->m->min_bytes : 0);
	switch (step) {
	/* An offset out of range is answered at once, also when a raised log
	 * start (DeleteRecords, retention) put a waiting fetch's offset below
	 * it: Kafka's fetch answers a read error without waiting, and its
	 * delayed fetch completes when the log moved past it. */
	case STEP_FIRST:
		if (n >= min_bytes || f->out_of_range || f->wait_ms <= 0 || a->draining) {
			fetch_finish(f);
			return;
		}
		fetch_wait_start(f);
		uv_timer_start(&f->timer, fetch_timeout, (uint64_t)f->wait_ms, 0);
		return;
	case STEP_WAKE:
		if (n >= min_bytes || f->out_of_range || !request_conn_open(f->req) || a->draining) {
			fetch_finish(f);
			return;
		}
		fetch_wait_start(f); /* back on the list after a lookup */
		return;
	case STEP_FINISH:
		fetch_finish(f);
		return;
	}
}

void fetch_wake(struct agent *a)
{
	struct fetch_wait *f = a->waiters;
	while (f) {
		struct fetch_wait *next = f->next;
		fetch_run(f, STEP_WAKE);
		f = next;
	}
}

void fetch_shutdown(struct agent *a)
{
	while (a->waiters) {
		struct fetch_wait *f = a->waiters;
		fetch_gather(f);
		/* Shutting down: no store reads; what the cache had goes out. */
		reader_drop_missing(f->rf);
		fetch_respond(f);
	}
}

void fetch_sessions_drop(struct agent *a)
{
	fetch_sessions_free(a->fetch_sessions);
	a->fetch_sessions = NULL;
}

/* An isolation level other than 0 or 1 (v4+): Kafka's IsolationLevel.forId
 * throws once the fetch has a partition it may read that exists, and the
 * request is answered by FetchRequest.getErrorResponse. Whether that is
 * so. */
static bool fetch_bad_isolation(struct fetch_wait *f)
{
	int8_t level = f->m->isolation_level;
	if (f->req->api_version < 4 || level == 0 || level == 1)
		return false;
	for (size_t k = 0; k < f->parts; k++) {
		const struct fetch_part *p = &f->sess.parts[k];
		bool may;
		struct topic_state *t = fetch_topic(f, p->topic, p->topic_id, &may);
		if (may && t && p->partition >= 0 && p->partition < t->partition_count)
			return true;
	}
	return false;
}

/* getErrorResponse's shape: the top-level error and the request's session
 * id; below v13 also every partition the request names, with the error
 * and no offsets (no session is made or answered). */
static void fetch_answer_error(struct fetch_wait *f, int16_t error)
{
	struct request *req = f->req;
	const struct kmsg_fetch_req *m = f->m;
	struct kmsg_fetch_resp *r = &f->r;
	r->error_code = error;
	r->session_id = m->session_id;
	r->responses_count = 0;
	int32_t topics = req->api_version < 13 && m->topics_count > 0 ? m->topics_count : 0;
	if (!REQ_ARRAY(req, topics, r->responses))
		goto out_fail;
	for (int32_t i = 0; i < topics; i++) {
		const struct kmsg_fetch_req_fetch_topic *qt = &m->topics[i];
		struct kmsg_fetch_resp_fetchable_topic_response *rt = &r->responses[i];
		kmsg_fetch_resp_fetchable_topic_response_init(rt);
		rt->topic = qt->topic;
		memcpy(rt->topic_id, qt->topic_id, 16);
		rt->partitions_count = qt->partitions_count > 0 ? qt->partitions_count : 0;
		if (!REQ_ARRAY(req, rt->partitions_count, rt->partitions))
			goto out_fail;
		for (int32_t k = 0; k < rt->partitions_count; k++) {
			struct kmsg_fetch_resp_partition_data *rp = &rt->partitions[k];
			kmsg_fetch_resp_partition_data_init(rp);
			rp->partition_index = qt->partitions[k].partition;
			rp->error_code = error;
			rp->high_watermark = rp->last_stable_offset = rp->log_start_offset = -1;
			rp->aborted_transactions_count = -1;
			rp->preferred_read_replica = -1;
			rp->records = (kbytes){ NULL, 0 };
		}
		r->responses_count = i + 1;
	}
	kmsg_fetch_resp_encode(&req->resp, req->api_version, r);
	if (req->resp.oom)
		goto out_fail;
	reader_fetch_end(f->rf);
	request_respond(req);
	uv_close((uv_handle_t *)&f->timer, fetch_free);
	return;
out_fail:
	reader_fetch_end(f->rf);
	request_fail_close(req);
	uv_close((uv_handle_t *)&f->timer, fetch_free);
}

void handle_fetch(struct agent *a, struct request *req, const struct kmsg_fetch_req *m)
{
	struct fetch_wait *f = calloc(1, sizeof *f);
	if (!f) {
		request_fail_close(req);
		return;
	}
	f->a = a;
	f->req = req;
	uv_timer_init(a->loop, &f->timer);
	f->timer.data = f;
	f->m = m;
	struct kmsg_fetch_resp *r = &f->r;
	kmsg_fetch_resp_init(r);
	r->error_code = KERR_NONE;
	r->session_id = 0;
	/* Made at the first fetch that may use it; without memory for it,
	 * fetches are sessionless (incremental ones are refused). */
	if (!a->fetch_sessions && req->api_version >= 7)
		a->fetch_sessions = fetch_sessions_new(SL_FETCH_SESSIONS_MAX,
						       SL_FETCH_SESSION_PARTITIONS_MAX,
						       SL_FETCH_SESSION_EVICTION_MS);
	f->env = (struct fetch_env){ .arg = f, .topic = env_topic, .changes = env_changes,
				     .seq = a->changes_seq };
	if (fetch_session_begin(a->fetch_sessions, &req->arena, (int64_t)uv_now(a->loop),
				req->api_version, m, &f->env, &f->sess) != 0)
		goto out_fail;
	if (fetch_slots(f) != 0)
		goto out_fail;
	if (f->sess.error) {
		/* No such session, or not this epoch: answered at once, with
		 * no partitions and session id 0 (Kafka's SessionErrorContext);
		 * the client starts over with a full fetch. */
		r->error_code = f->sess.error;
		f->parts = 0;
		fetch_respond(f);
		return;
	}
	if (fetch_bad_isolation(f)) {
		fetch_answer_error(f, KERR_UNKNOWN_SERVER_ERROR);
		return;
	}
	f->wait_ms = m->max_wait_ms;
	if (f->wait_ms > SL_FETCH_WAIT_MS_MAX)
		f->wait_ms = SL_FETCH_WAIT_MS_MAX;
	fetch_run(f, STEP_FIRST);
	return;
out_fail:
	uv_close((uv_handle_t *)&f->timer, fetch_free);
	request_fail_close(req);
}
