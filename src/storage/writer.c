/* writer.c — the open object, sealing, and the flush pipeline: uploads
 * (layout on the pool, then the store's gathered put) overlap; commits run one at a time
 * in seal order, each taking every object uploaded by then (group
 * commit); answers go out on the loop. With a store whose put blocks
 * (file, mem) the layout job puts the object itself, and an object with
 * nothing ahead of it is also committed by that job: one pool job per
 * object at light load instead of three (each one a pool thread and then
 * the loop woken, a wait for a CPU on a busy machine).
 *
 * When to seal: at flush_bytes, at flush_interval_ms after the open
 * object's first batch, and, with seal_when_idle, as soon as no sealed
 * object is in the pipeline (natural group commit): an append to an idle
 * writer is sealed once the loop turn that brought it is over (so the
 * partitions of one request and the requests read in the same turn share
 * the object), and what arrived while objects were being written and
 * committed is sealed the moment the last of them is answered, or,
 * when it is a stream's (idle_seal_hold_bytes or more), once its first
 * batch is idle_seal_age_us old (a steady stream, e.g. a client-bound
 * producer at 10,000 partitions, would otherwise seal an object per
 * put-and-commit time, ~1.3 ms, and pay the file store's fixed cost per
 * object 5x as often as the 5 ms interval; bench/RESULTS.md, issue
 * 17). Light load then waits for the device only; heavy load keeps the
 * pipeline busy, so the interval and the size bound set the object size
 * as before. */
#include "base/grow.h"
#include "storage/writer.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/log.h"
#include "base/sl_assert.h"
#include "base/workers.h"
#include "meta/meta.h"
#include "metrics/metrics.h"
#include "objstore/objstore.h"
#include "storage/object.h"

struct pending {
	int64_t tid;
	uint8_t topic_id[16];
	int32_t partition;
	uint32_t seq;         /* append order, to keep sorting stable */
	const uint8_t *data;  /* the appender's bytes, valid until done */
	struct kshared *frame; /* holding data, or NULL (no reference) */
	uint32_t length;
	struct batch_info info;
	/* What the batch is to the store: a plain or idempotent batch, a
	 * transactional one, or a marker (writer_txn's, the id copied). */
	enum meta_batch_kind kind;
	char *transactional_id;
	int64_t txn_seq;
	bool marker_commit;
	int32_t coordinator_epoch;
	writer_done_fn done;
	void *arg;
};

/* Each object moves forward through these, one step at a time (asserted
 * at every step), except that one failed or behind a failure skips from
 * QUEUED to UPLOADED without being written; it leaves the queue from
 * UPLOADED (failed) or COMMITTED. */
enum sealed_state {
	SEALED_OPEN,       /* taking appends (w->open) */
	SEALED_QUEUED,     /* waiting for an upload slot */
	SEALED_UPLOADING,  /* encode + put on the pool */
	SEALED_UPLOADED,   /* durable in the store; waiting for its turn */
	SEALED_COMMITTING, /* metadata transaction on the pool */
	SEALED_COMMITTED,  /* its transaction is back (err says how it went) */
};

struct sealed {
	struct sealed *next;
	struct writer *w;
	struct worker_job job;
	enum sealed_state state;
	char key[META_OBJECT_KEY_BYTES];
	struct pending *items;
	size_t count, cap;
	size_t bytes;               /* sum of batch lengths */
	/* The object as the store gets it, laid out on the pool thread:
	 * header, the batches where their requests hold them, footer. */
	uint8_t header[OBJECT_HEADER_BYTES];
	uint8_t *footer;
	struct iovec *iov;
	int iovcnt;
	uint64_t object_len;
	struct meta_commit_batch *commits; /* in object order (items sorted) */
	int64_t first_append_us;
	bool began_idle;            /* its first append found the pipeline empty */
	int64_t upload_start_us;    /* when encoding began */
	int64_t upload_us, commit_us;
	int err;                    /* set by the pool thread */
	/* A store whose put blocks (file, mem): encode_work puts the object
	 * itself (put_here) and, when pump found nothing ahead of it and no
	 * commit running, commits it too (commit_here: it is w->group's only
	 * member, w->committing set), so a lone request costs one pool job
	 * and one trip through the loop instead of three. committed_here:
	 * the put succeeded and the commit ran (its outcome in err). */
	bool put_here, commit_here, committed_here;
	int fail_err;               /* set on the loop: an earlier object failed */
};

struct writer {
	uv_loop_t *loop;
	struct objstore *store;
	struct meta *meta;
	struct writer_config cfg;
	writer_commit_hook hook;
	void *hook_arg;
	void (*drain_fn)(void *);
	void *drain_arg;

	/* Commits failed in a row (the commit job's own: one at a time):
	 * only the first of a run is logged (a metadata store outage fails
	 * every commit until it ends). */
	uint64_t commit_failures;

	struct sealed *open;
	struct sealed *queue_head, *queue_tail; /* sealed, in seal order */
	int uploads_in_flight;
	bool committing;
	/* The objects of the commit in flight (loop writes them before
	 * queueing it; the pool thread reads them). */
	struct sealed *group[META_COMMIT_OBJECTS_MAX];
	struct meta_commit_obj group_objs[META_COMMIT_OBJECTS_MAX];
	size_t group_n;
	bool seal_due;              /* the flush interval passed while uploads were full */
	bool seal_soon;             /* writer_seal_soon: seal after this loop turn */
	uv_timer_t timer;
	uv_idle_t idle_seal;        /* seals an idle writer's appends after the turn */
	size_t buffered;
	uint32_t seq;
	uint64_t agent_nonce;
	uint64_t object_counter;
	struct writer_stats stats;
	/* Runs the uploads and commits: uploads_max + 1 threads (workers.h:
	 * why not libuv's pool). */
	struct workers *workers;
};

static struct sealed *sealed_new(struct writer *w)
{
	struct sealed *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->w = w;
	return s;
}

static void sealed_free(struct sealed *s)
{
	free(s->footer);
	free(s->iov);
	for (size_t i = 0; i < s->count; i++)
		free(s->items[i].transactional_id);
	free(s->items);
	free(s->commits);
	free(s);
}

int writer_new(uv_loop_t *loop, struct objstore *store, struct meta *meta,
	       const struct writer_config *cfg, writer_commit_hook hook,
	       void *hook_arg, struct writer **out)
{
	struct writer *w = calloc(1, sizeof *w);
	if (!w)
		return SL_ENOMEM;
	w->loop = loop;
	w->store = store;
	w->meta = meta;
	w->cfg = *cfg;
	if (w->cfg.uploads_max < 1)
		w->cfg.uploads_max = 1;
	/* The interval stays the upper bound on waiting. */
	if (w->cfg.idle_seal_age_us > w->cfg.flush_interval_ms * 1000)
		w->cfg.idle_seal_age_us = w->cfg.flush_interval_ms * 1000;
	w->hook = hook;
	w->hook_arg = hook_arg;
	int rc = workers_new(loop, w->cfg.uploads_max + 1, &w->workers);
	if (rc) {
		free(w);
		return rc;
	}
	if (getrandom(&w->agent_nonce, sizeof w->agent_nonce, 0) != sizeof w->agent_nonce)
		w->agent_nonce = (uint64_t)clock_mono_us() ^ ((uint64_t)getpid() << 32);
	uv_timer_init(loop, &w->timer);
	w->timer.data = w;
	uv_idle_init(loop, &w->idle_seal);
	w->idle_seal.data = w;
	*out = w;
	return 0;
}

void writer_set_drain_hook(struct writer *w, void (*fn)(void *), void *arg)
{
	w->drain_fn = fn;
	w->drain_arg = arg;
}

size_t writer_buffered_bytes(const struct writer *w)
{
	return w->buffered;
}

int writer_idle(const struct writer *w)
{
	return !w->open && !w->queue_head;
}

void writer_get_stats(const struct writer *w, struct writer_stats *out)
{
	*out = w->stats;
}

static void pump(struct writer *w);
static void timer_fired(uv_timer_t *t);
static void commit_group(struct writer *w, const struct sealed *s);

/* Move the open object to the end of the queue. */
static void seal(struct writer *w)
{
	struct sealed *s = w->open;
	w->seal_due = false;
	w->seal_soon = false;
	if (!s)
		return;
	SL_ASSERT(s->state == SEALED_OPEN, "state %d", s->state);
	w->open = NULL;
	uv_timer_stop(&w->timer);
	/* Unique and never reused: wall time, a random per-process nonce and a
	 * counter (invariant 3). */
	snprintf(s->key, sizeof s->key, "objects/%013" PRId64 "-%016" PRIx64 "-%08" PRIx64 ".obj",
		 clock_wall_ms(), w->agent_nonce, ++w->object_counter);
	s->state = SEALED_QUEUED;
	if (w->queue_tail)
		w->queue_tail->next = s;
	else
		w->queue_head = s;
	w->queue_tail = s;
}

static int cmp_pending(const void *a, const void *b)
{
	const struct pending *x = a, *y = b;
	if (x->tid != y->tid)
		return x->tid < y->tid ? -1 : 1;
	if (x->partition != y->partition)
		return x->partition < y->partition ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Pool thread: group by partition and lay the object out: its header and
 * footer in buffers of their own, its batches left where they are, all
 * as pieces for the store's gathered put (started from the loop). */
static void encode_work(struct worker_job *job)
{
	struct sealed *s = job->data;
	size_t n = s->count;
	struct object_entry *entries = calloc(n ? n : 1, sizeof *entries);
	s->commits = calloc(n ? n : 1, sizeof *s->commits);
	s->iov = calloc(n + 2, sizeof *s->iov);
	s->footer = malloc(object_footer_bytes(n));
	if (!entries || !s->commits || !s->iov || !s->footer) {
		s->err = SL_ENOMEM;
		goto out_free;
	}
	qsort(s->items, n, sizeof *s->items, cmp_pending);
	for (size_t i = 0; i < n; i++) {
		const struct pending *p = &s->items[i];
		memcpy(entries[i].topic_id, p->topic_id, 16);
		entries[i].partition = p->partition;
		entries[i].length = p->length;
		entries[i].record_count = p->info.record_count;
		s->iov[i + 1] = (struct iovec){ (void *)p->data, p->length };
	}
	object_encode_header(s->header);
	uint64_t footer_offset = object_layout(entries, n);
	s->err = object_encode_footer(s->footer, entries, n, footer_offset);
	if (s->err)
		goto out_free;
	s->iov[0] = (struct iovec){ s->header, OBJECT_HEADER_BYTES };
	s->iov[n + 1] = (struct iovec){ s->footer, object_footer_bytes(n) };
	s->iovcnt = (int)n + 2;
	s->object_len = footer_offset + object_footer_bytes(n);
	for (size_t i = 0; i < n; i++) {
		const struct pending *p = &s->items[i];
		struct meta_commit_batch *c = &s->commits[i];
		c->tid = p->tid;
		c->partition = p->partition;
		c->byte_offset = entries[i].byte_offset;
		c->length = p->length;
		c->record_count = p->info.record_count;
		c->last_offset_delta = p->info.last_offset_delta;
		c->max_timestamp = p->info.max_timestamp;
		c->producer_id = p->info.producer_id;
		c->producer_epoch = p->info.producer_epoch;
		c->base_sequence = p->info.base_sequence;
		c->last_sequence = p->info.base_sequence < 0 ? -1
			: (int32_t)((p->info.base_sequence + (int64_t)p->info.last_offset_delta) & INT32_MAX);
		c->attributes = p->info.attributes;
		c->kind = p->kind;
		c->transactional_id = p->transactional_id;
		c->txn_seq = p->txn_seq;
		c->marker_commit = p->marker_commit;
		c->coordinator_epoch = p->coordinator_epoch;
	}
out_free:
	free(entries);
	if (s->err || !s->put_here)
		return;
	struct writer *w = s->w;
	int rc = objstore_putv(w->store, s->key, s->iov, s->iovcnt, OBJSTORE_PUT_DEFER_SYNC);
	if (rc) {
		log_error("writing object %s failed: %s", s->key, sl_strerror(rc));
		s->err = SL_ESTORE;
		return;
	}
	s->upload_us = clock_mono_us() - s->upload_start_us;
	if (!s->commit_here)
		return;
	/* Durable in the store: commit it now (pump reserved the commit). */
	w->group_objs[0] = (struct meta_commit_obj){ s->key, s->object_len, s->commits, s->count };
	s->committed_here = true;
	commit_group(w, s);
}

/* Pool thread: one metadata transaction for the objects of the commit
 * group (w->group, in seal order, starting at the queue head s). */
static void commit_group(struct writer *w, const struct sealed *s)
{
	int64_t t0 = clock_mono_us();
	/* The group's objects were written with their durability partly
	 * deferred: one sync makes them all durable before the commit names
	 * them (invariant 1; the file store: one directory fsync). */
	int sync_err = objstore_sync(w->store);
	int err = sync_err ? sync_err : meta_commit_objects(w->meta, w->group_objs, w->group_n);
	int64_t us = clock_mono_us() - t0;
	if (err && w->commit_failures++ == 0)
		log_error("committing %zu object(s) from %s failed: %s (further failures are "
			  "logged when commits succeed again)", w->group_n, s->key, sl_strerror(err));
	if (!err && w->commit_failures > 0) {
		log_info("commits succeed again after %" PRIu64 " failed", w->commit_failures);
		w->commit_failures = 0;
	}
	for (size_t i = 0; i < w->group_n; i++) {
		w->group[i]->commit_us = us;
		w->group[i]->err = sync_err ? SL_ESTORE : err ? SL_EMETA : 0;
	}
}

static void commit_work(struct worker_job *job)
{
	struct sealed *s = job->data;
	commit_group(s->w, s);
}

/* s failed (upload or commit): every object sealed after it fails too,
 * and so does the one open then, so no batch commits after an earlier batch of
 * its producer failed (a retry would otherwise land behind it: invariant
 * 6; and an idempotent client that sees a later batch acknowledged takes
 * the failed one as written — librdkafka acknowledges it implicitly —
 * so it would be lost). */
static void fail_successors(struct sealed *s)
{
	if (!s->err)
		return;
	for (struct sealed *t = s->next; t; t = t->next)
		if (!t->fail_err)
			t->fail_err = s->err;
	/* Not for an object that only inherited a failure: the open object
	 * was doomed by the one that failed, and failing every later one
	 * would never end. */
	if (!s->fail_err && s->w->open && !s->w->open->fail_err)
		s->w->open->fail_err = s->err;
}

/* Dense offsets: the appended batches of one partition in an object
 * (sorted by partition, then append order) got consecutive offsets from
 * the commit, each starting where the one appended before ended (prev:
 * that one, or NULL), or none at all (partition deleted meanwhile). The
 * agent checks each object against the high watermark it served before. */
static void check_dense(const char *key, const struct meta_commit_batch *prev,
			const struct meta_commit_batch *c)
{
	if (c->result != META_BATCH_APPENDED)
		return;
	SL_ASSERT(c->base_offset >= 0, "object %s: base offset %" PRId64, key, c->base_offset);
	if (!prev || prev->tid != c->tid || prev->partition != c->partition)
		return;
	int64_t want = prev->base_offset + prev->last_offset_delta + 1;
	SL_ASSERT(c->base_offset == want, "object %s, topic %" PRId64 " partition %" PRId32
		  ": base offset %" PRId64 " after a batch ending at %" PRId64, key, c->tid,
		  c->partition, c->base_offset, want - 1);
}

/* What an appender hears of its batch's commit: 0 and the offset (a
 * duplicate's is its original's), or why it got none. */
static int batch_err(const struct meta_commit_batch *c)
{
	switch (c->result) {
	case META_BATCH_APPENDED:
	case META_BATCH_DUPLICATE: return 0;
	case META_BATCH_OUT_OF_ORDER: return SL_ESEQUENCE;
	case META_BATCH_FENCED: return SL_EFENCED;
	case META_BATCH_TXN_UNKNOWN: return SL_ETXNUNKNOWN;
	case META_BATCH_TXN_COMPLETING: return SL_ETXNBUSY;
	case META_BATCH_TXN_NOT_ADDED: return SL_ETXNNOTADDED;
	case META_BATCH_TXN_OPEN: return SL_ETXNSTATE;
	case META_BATCH_MARKER_REFUSED: return SL_ETXNSTALE;
	case META_BATCH_NO_PARTITION: break;
	}
	return SL_ENOTFOUND;
}

/* Answer every appender of s and free it; s must be the queue head. */
static void complete_head(struct writer *w)
{
	struct sealed *s = w->queue_head;
	/* Answered with offsets only once committed (invariant 1). */
	SL_ASSERT(s->state == SEALED_COMMITTED || (s->err && s->state == SEALED_UPLOADED),
		  "object %s: state %d, err %d", s->key, s->state, s->err);
	w->queue_head = s->next;
	if (!w->queue_head)
		w->queue_tail = NULL;
	if (!s->err) {
		w->stats.objects_written++;
		w->stats.bytes_written += s->object_len;
		w->stats.batches_committed += s->count;
		w->stats.upload_us_total += (uint64_t)s->upload_us;
		w->stats.commit_us_total += (uint64_t)s->commit_us;
		metrics_object_committed(s->object_len, s->upload_us, s->commit_us);
		struct writer_committed *cb = calloc(s->count ? s->count : 1, sizeof *cb);
		size_t k = 0;
		const struct meta_commit_batch *prev = NULL;
		for (size_t i = 0; cb && i < s->count; i++) {
			const struct meta_commit_batch *c = &s->commits[i];
			check_dense(s->key, prev, c);
			if (c->result != META_BATCH_APPENDED)
				continue;
			prev = c;
			cb[k].tid = c->tid;
			cb[k].partition = c->partition;
			cb[k].row = (struct batch_index_row){
				.base_offset = c->base_offset,
				.last_offset = c->base_offset + c->last_offset_delta,
				.byte_offset = c->byte_offset,
				.length = c->length,
				.record_count = c->record_count,
				.max_timestamp = c->max_timestamp,
			};
			cb[k].last_stable_offset = c->last_stable_offset;
			memcpy(cb[k].aborted, c->aborted, sizeof cb[k].aborted);
			cb[k].n_aborted = c->n_aborted;
			k++;
		}
		struct kpiece *pieces = calloc(s->count ? s->count : 1, sizeof *pieces);
		for (size_t i = 0; pieces && i < s->count; i++)
			pieces[i] = (struct kpiece){ s->commits[i].byte_offset, s->items[i].data,
						     s->items[i].length, s->items[i].frame };
		if (w->hook && cb && pieces)
			w->hook(w->hook_arg, s->key, s->object_len, pieces, s->count, cb, k);
		free(pieces);
		free(cb);
	} else {
		w->stats.flush_errors++;
	}
	w->buffered -= s->bytes;
	for (size_t i = 0; i < s->count; i++) {
		const struct pending *p = &s->items[i];
		int err = s->err ? s->err : batch_err(&s->commits[i]);
		p->done(p->arg, err, err ? -1 : s->commits[i].base_offset);
	}
	sealed_free(s);
}

static void commit_done(struct worker_job *job)
{
	struct sealed *s = job->data;
	struct writer *w = s->w;
	size_t n = w->group_n;
	SL_ASSERT(w->committing && n > 0 && w->group[0] == s);
	w->group_n = 0;
	w->committing = false;
	w->stats.commits++;
	/* The group is the head of the queue, in order: commits go strictly
	 * in seal order (invariant 6), each object once. */
	for (size_t i = 0; i < n; i++) {
		struct sealed *head = w->queue_head;
		SL_ASSERT(head == w->group[i] && head->state == SEALED_COMMITTING,
			  "commit group member %zu of %zu is not the queue head", i, n);
		head->state = SEALED_COMMITTED;
		fail_successors(head);
		complete_head(w);
	}
	pump(w);
	if (w->drain_fn)
		w->drain_fn(w->drain_arg);
}

/* s's upload slot is free again (the loop). */
static void upload_slot_freed(struct sealed *s)
{
	struct writer *w = s->w;
	SL_ASSERT(s->state == SEALED_UPLOADING && w->uploads_in_flight > 0,
		  "object %s: state %d, %d uploads", s->key, s->state, w->uploads_in_flight);
	if (!s->put_here)
		s->upload_us = clock_mono_us() - s->upload_start_us;
	w->uploads_in_flight--;
	s->state = SEALED_UPLOADED;
	/* The open object waited for an upload slot: seal it now if its time
	 * has come (group commit). */
	if (w->open && (w->seal_due || w->open->bytes >= w->cfg.flush_bytes))
		seal(w);
}

static void upload_finished(struct sealed *s)
{
	struct writer *w = s->w;
	upload_slot_freed(s);
	/* A failed upload fails every later object (see fail_successors):
	 * mark them now, so the queued ones are not written in vain. */
	fail_successors(s);
	pump(w);
	if (w->drain_fn)
		w->drain_fn(w->drain_arg);
}

/* Loop: the store answered the put. */
static void put_done(void *arg, int err)
{
	struct sealed *s = arg;
	if (err) {
		log_error("writing object %s failed: %s", s->key, sl_strerror(err));
		s->err = SL_ESTORE;
	}
	upload_finished(s);
}

/* Loop: the object is laid out; write it durably, gathered from its
 * pieces (the appenders' bytes stay valid until they are answered, after
 * the put and the commit: a store that retries sends them again). */
static void encode_done(struct worker_job *job)
{
	struct sealed *s = job->data;
	struct writer *w = s->w;
	if (s->commit_here) {
		SL_ASSERT(w->committing && w->group_n == 1 && w->group[0] == s);
		if (s->committed_here) {
			/* Uploaded and committed in the one job: the commit's
			 * own completion answers it. */
			upload_slot_freed(s);
			s->state = SEALED_COMMITTING;
			commit_done(job);
			return;
		}
		/* Not written: no commit ran; pump fails it as the head. */
		w->group_n = 0;
		w->committing = false;
	}
	if (!s->err && !s->put_here) {
		int rc = objstore_putv_start(w->store, w->loop, s->key, s->iov, s->iovcnt,
					     OBJSTORE_PUT_DEFER_SYNC, put_done, s);
		if (rc == 0)
			return;
		log_error("cannot start writing object %s: %s", s->key, sl_strerror(rc));
		s->err = SL_ESTORE;
	}
	upload_finished(s);
}

static void queue_work(struct writer *w, struct sealed *s, void (*run)(struct worker_job *),
		       void (*done)(struct worker_job *))
{
	s->job = (struct worker_job){ .run = run, .done = done, .data = s };
	workers_submit(w->workers, &s->job);
}

/* Start what can start: uploads up to the limit (they may overlap), then
 * the commit of the oldest object, which alone may commit (seal order). */
static void pump(struct writer *w)
{
	for (struct sealed *s = w->queue_head; s && w->uploads_in_flight < w->cfg.uploads_max; s = s->next) {
		if (s->state != SEALED_QUEUED)
			continue;
		if (s->fail_err) {
			/* An earlier object failed, so this one fails when it
			 * reaches the head: writing it would only cost a PUT (or
			 * a wait for the store's deadline) and leave an orphan. */
			s->state = SEALED_UPLOADED;
			continue;
		}
		s->state = SEALED_UPLOADING;
		w->uploads_in_flight++;
		s->upload_start_us = clock_mono_us();
		s->put_here = objstore_put_blocks(w->store);
		if (s->put_here && !w->committing && s == w->queue_head) {
			/* Nothing ahead of it: the same job commits it. */
			s->commit_here = true;
			w->committing = true;
			w->group[0] = s;
			w->group_n = 1;
		}
		queue_work(w, s, encode_work, encode_done);
	}
	while (!w->committing && w->queue_head && w->queue_head->state == SEALED_UPLOADED) {
		struct sealed *head = w->queue_head;
		if (head->err || head->fail_err) {
			/* Not durable, or behind one that was not: fail its
			 * appenders; nothing was committed. Objects sealed after
			 * it fail too, so no batch commits after an earlier batch
			 * of its producer failed (a retry would otherwise land
			 * behind it: invariant 6). */
			if (!head->err)
				head->err = head->fail_err;
			fail_successors(head);
			complete_head(w);
			continue;
		}
		/* Group commit: every uploaded object at the head of the queue
		 * goes into one transaction (fewer fsyncs when uploads finish
		 * faster than commits). */
		w->group_n = 0;
		for (struct sealed *t = head; t && w->group_n < META_COMMIT_OBJECTS_MAX &&
		     t->state == SEALED_UPLOADED && !t->err && !t->fail_err; t = t->next) {
			t->state = SEALED_COMMITTING;
			w->group[w->group_n] = t;
			w->group_objs[w->group_n] = (struct meta_commit_obj){
				t->key, t->object_len, t->commits, t->count };
			w->group_n++;
		}
		w->committing = true;
		queue_work(w, head, commit_work, commit_done);
	}
	/* The pipeline just emptied (the last object answered): what
	 * arrived meanwhile goes now, as one object, unless it is a stream's
	 * (idle_seal_hold_bytes) and younger than idle_seal_age_us; then the
	 * timer is brought forward to that age (the loop's millisecond clock
	 * may fire it up to ~1 ms early). An object already doomed by an
	 * earlier failure goes at once, so no more appends join it. */
	if (w->cfg.seal_when_idle && !w->queue_head && w->open) {
		int64_t wait_us = w->open->first_append_us + w->cfg.idle_seal_age_us - clock_mono_us();
		if (w->open->began_idle || w->open->bytes < w->cfg.idle_seal_hold_bytes ||
		    w->open->fail_err || wait_us <= 0) {
			seal(w);
			pump(w);
		} else {
			uv_update_time(w->loop);
			uv_timer_start(&w->timer, timer_fired, (uint64_t)(wait_us + 999) / 1000, 0);
		}
	}
}

/* Loop, idle phase of the turn after the appends (an idle handle, not a
 * check one: it also keeps that turn's poll from blocking when the
 * appends came from outside the poll phase): seal what was appended if
 * the pipeline is still empty and the object began idle; otherwise pump
 * seals it when the pipeline empties, or the timer does (a stream's
 * object waits: pump set the timer). */
static void idle_seal_fired(uv_idle_t *c)
{
	struct writer *w = c->data;
	uv_idle_stop(c);
	if (!w->open)
		return;
	if ((!w->queue_head && w->open->began_idle) ||
	    (w->seal_soon && w->uploads_in_flight < w->cfg.uploads_max)) {
		seal(w);
		pump(w);
	} else if (w->seal_soon) {
		w->seal_due = true; /* upload_finished seals it */
	}
}

static void timer_fired(uv_timer_t *t)
{
	struct writer *w = t->data;
	if (w->uploads_in_flight < w->cfg.uploads_max) {
		seal(w);
		pump(w);
	} else {
		w->seal_due = true; /* upload_finished seals it */
	}
}

int writer_append(struct writer *w, int64_t tid, const uint8_t topic_id[16],
		  int32_t partition, const uint8_t *batch, struct kshared *frame,
		  const struct batch_info *info, writer_done_fn done, void *arg)
{
	return writer_append_txn(w, tid, topic_id, partition, batch, frame, info, NULL, done, arg);
}

int writer_append_txn(struct writer *w, int64_t tid, const uint8_t topic_id[16],
		      int32_t partition, const uint8_t *batch, struct kshared *frame,
		      const struct batch_info *info, const struct writer_txn *txn,
		      writer_done_fn done, void *arg)
{
	size_t len = batch_total_bytes(info);
	if (w->buffered + len > w->cfg.buffered_bytes_max)
		return SL_EBUSY;
	char *id = NULL;
	if (txn && txn->kind != META_BATCH_DATA) {
		if (txn->transactional_id_len > SL_TXN_ID_BYTES_MAX)
			return SL_ELIMIT;
		id = malloc(txn->transactional_id_len + 1);
		if (!id)
			return SL_ENOMEM;
		memcpy(id, txn->transactional_id, txn->transactional_id_len);
		id[txn->transactional_id_len] = 0;
	}
	if (!w->open) {
		w->open = sealed_new(w);
		if (!w->open) {
			free(id);
			return SL_ENOMEM;
		}
		w->open->first_append_us = clock_mono_us();
		w->open->began_idle = !w->queue_head;
		/* The loop's clock was read when this loop turn began; a turn
		 * that handled many requests (many partitions) would otherwise
		 * start the flush interval in the past and seal early, so the
		 * object rate would grow with the partition count. */
		uv_update_time(w->loop);
		uv_timer_start(&w->timer, timer_fired, (uint64_t)w->cfg.flush_interval_ms, 0);
	}
	struct sealed *s = w->open;
	if (array_grow(&s->items, &s->cap, s->count, sizeof *s->items, 64) != 0) {
		free(id);
		return SL_ENOMEM;
	}
	struct pending *p = &s->items[s->count++];
	p->tid = tid;
	memcpy(p->topic_id, topic_id, 16);
	p->partition = partition;
	p->seq = w->seq++;
	p->data = batch;
	p->frame = frame;
	p->length = (uint32_t)len;
	p->info = *info;
	p->kind = txn ? txn->kind : META_BATCH_DATA;
	p->transactional_id = id;
	p->txn_seq = txn ? txn->txn_seq : 0;
	p->marker_commit = txn && txn->marker_commit;
	p->coordinator_epoch = txn ? txn->coordinator_epoch : -1;
	p->done = done;
	p->arg = arg;
	s->bytes += len;
	w->buffered += len;
	if (s->bytes >= w->cfg.flush_bytes || s->count >= SL_OBJECT_BATCHES_MAX) {
		seal(w);
		pump(w);
	} else if (w->cfg.seal_when_idle && !w->queue_head && s->began_idle) {
		uv_idle_start(&w->idle_seal, idle_seal_fired); /* no-op when started */
	}
	return 0;
}

void writer_flush_now(struct writer *w)
{
	seal(w);
	pump(w);
}

void writer_seal_soon(struct writer *w)
{
	if (!w->open)
		return;
	w->seal_soon = true;
	uv_idle_start(&w->idle_seal, idle_seal_fired); /* no-op when started */
}

static void timer_closed(uv_handle_t *h)
{
	free(h->data);
}

/* The idle handle closes first; the timer's close frees the writer. */
static void idle_seal_closed(uv_handle_t *h)
{
	struct writer *w = h->data;
	uv_close((uv_handle_t *)&w->timer, timer_closed);
}

void writer_free(struct writer *w)
{
	if (!w)
		return;
	/* Anything still open or queued would call back into freed memory,
	 * and its appenders would never be answered. */
	SL_ASSERT(writer_idle(w) && w->uploads_in_flight == 0 && !w->committing);
	workers_free(w->workers);
	uv_timer_stop(&w->timer);
	uv_close((uv_handle_t *)&w->idle_seal, idle_seal_closed);
}
