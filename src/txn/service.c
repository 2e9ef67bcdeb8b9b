/* service.c — the transaction service (service.h): the coordinator's
 * effects performed on the loop and the store's pool, its records
 * loaded at start, its timers. */
#include "txn/service.h"

#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/log.h"
#include "base/strmap.h"
#include "base/workq.h"
#include "proto/kerr.h"

/* Versions live in the map as pointer-sized integers. */
_Static_assert(sizeof(intptr_t) >= sizeof(int64_t), "versions fit a pointer");

#define LOAD_RETRY_MS 1000

struct txn_svc {
	uv_loop_t *loop;
	struct meta *meta;
	struct txn_svc_config cfg;
	struct txn_coordinator *c;
	/* A coordinator rebuilt after out-of-memory gets a new generation;
	 * store jobs of an older one only update versions. */
	uint64_t generation;
	/* Stored version of each id this service read or wrote (absent: 0,
	 * no row). One write per id is outstanding at a time (the
	 * coordinator's pending transition), so the version read at submit
	 * is the stored one. */
	struct strmap versions;
	/* Ids being read again from the store (after another writer's
	 * version refused ours): their requests get
	 * COORDINATOR_LOAD_IN_PROGRESS until the record is back. */
	struct strmap reloading;
	/* Fenced mode (cluster): the ids adopted, each with the epoch of
	 * its lease, which fences its writes. */
	struct strmap epochs;
	struct workq q;
	uv_timer_t tick;
	uv_timer_t load_retry;
	bool loaded;
	bool stopping;
};

enum store_kind { STORE_PERSIST, STORE_DELETE, STORE_SETTLE, STORE_LOAD, STORE_RELOAD };

struct store_job {
	struct workq_job job;
	struct txn_svc *s;
	uint64_t generation;
	enum store_kind kind;
	char *id;
	struct txn_record record;   /* PERSIST: owned, taken from the effect */
	uint64_t write_id;
	int64_t epoch;              /* PERSIST, DELETE: the fence (0: none) */
	int64_t version;            /* PERSIST: in and out; DELETE: in */
	int64_t txn_seq;            /* SETTLE */
	bool commit;
	struct meta_txn_row *rows;  /* LOAD */
	size_t row_count;
	int rc;
};

static int64_t now_ms(const struct txn_svc *s)
{
	return s->cfg.now_ms ? s->cfg.now_ms(s->cfg.arg) : clock_wall_ms();
}

static int64_t version_of(const struct txn_svc *s, const char *id)
{
	return (int64_t)(intptr_t)strmap_get(&s->versions, id);
}

static void version_set(struct txn_svc *s, const char *id, int64_t v)
{
	if (v <= 0) {
		strmap_del(&s->versions, id);
		return;
	}
	/* Without the entry the next write names version 0 and is refused
	 * (SL_EBUSY → NOT_COORDINATOR): the id is dropped and reloaded,
	 * nothing is lost. */
	if (strmap_put(&s->versions, id, (void *)(intptr_t)v) != 0)
		log_error("txn: out of memory keeping the version of %s", id);
}

static void record_free(struct txn_record *r)
{
	free(r->partitions);
	for (int32_t i = 0; i < r->group_count; i++)
		free(r->groups[i]);
	free(r->groups);
	memset(r, 0, sizeof *r);
}

static void job_free(struct store_job *j)
{
	record_free(&j->record);
	meta_txn_rows_free(j->rows, j->row_count);
	free(j->id);
	free(j);
}

/* ---------------------------------------------------------------- effects */

static void perform(struct txn_svc *s, struct txn_effects *out);
static void load_retry_cb(uv_timer_t *t);

/* Fenced mode: is id adopted, at which lease epoch? */
static bool adopted(const struct txn_svc *s, const char *id, int64_t *epoch)
{
	void *v = strmap_get(&s->epochs, id);
	if (epoch)
		*epoch = (int64_t)(intptr_t)v;
	return v != NULL;
}

static void start_reload(struct txn_svc *s, const char *id);

static void store_run(struct workq_job *wj)
{
	struct store_job *j = (struct store_job *)wj;
	struct meta *m = j->s->meta;
	switch (j->kind) {
	case STORE_PERSIST:
		j->rc = meta_txn_persist(m, j->id, &j->record, j->epoch, &j->version);
		break;
	case STORE_DELETE:
		j->rc = meta_txn_delete(m, j->id, j->epoch, j->version);
		break;
	case STORE_SETTLE:
		j->rc = meta_txn_settle(m, j->id, j->txn_seq, j->commit);
		break;
	case STORE_LOAD:
		j->rc = meta_txn_load(m, j->s->cfg.want, j->s->cfg.want_arg, &j->rows, &j->row_count);
		break;
	case STORE_RELOAD:
		/* The one id, if placement still wants it. */
		j->rc = meta_txn_load_one(m, j->id, j->s->cfg.want, j->s->cfg.want_arg, &j->rows,
					  &j->row_count);
		break;
	}
}

/* The store's outcome as the coordinator takes it: SL_EBUSY means
 * another agent wrote the id (or the lease moved). */
static int16_t write_error(const struct store_job *j)
{
	if (j->rc == 0)
		return KERR_NONE;
	if (j->rc == SL_EBUSY)
		return KERR_NOT_COORDINATOR;
	log_warn("txn: storing %s: %s", j->id, sl_strerror(j->rc));
	return KERR_COORDINATOR_NOT_AVAILABLE;
}

static void load_done(struct txn_svc *s, struct store_job *j)
{
	if (j->kind == STORE_RELOAD) {
		/* Released (and maybe adopted again) meanwhile: what it read
		 * may predate the current lease; a later job reads again. */
		if (strmap_get(&s->reloading, j->id) != j)
			return;
		strmap_del(&s->reloading, j->id);
	}
	if (j->rc != 0 && j->kind == STORE_RELOAD) {
		/* Its next write is refused again and retries the reload. */
		log_warn("txn: reading %s again: %s", j->id, sl_strerror(j->rc));
		return;
	}
	if (j->rc != 0) {
		log_error("txn: loading transactional ids: %s (retrying)", sl_strerror(j->rc));
		if (!s->stopping)
			uv_timer_start(&s->load_retry, load_retry_cb, LOAD_RETRY_MS, 0);
		return;
	}
	for (size_t i = 0; i < j->row_count; i++) {
		const struct meta_txn_row *row = &j->rows[i];
		kstr id = { row->transactional_id, (int32_t)strlen(row->transactional_id) };
		/* A reload finds the id re-created meanwhile: the store's
		 * version will refuse that one's write and reload it again. */
		if (j->kind == STORE_RELOAD && txn_find(s->c, id))
			continue;
		int rc = txn_load(s->c, id, &row->r);
		if (rc != 0) {
			log_error("txn: not loading %s: %s", row->transactional_id, sl_strerror(rc));
			continue;
		}
		version_set(s, row->transactional_id, row->version);
	}
	if (j->kind == STORE_LOAD)
		s->loaded = true;
	struct txn_effects out;
	txn_effects_init(&out);
	txn_load_done(s->c, now_ms(s), &out);
	perform(s, &out);
	txn_effects_free(&out);
}

static void store_done(struct workq_job *wj)
{
	struct store_job *j = (struct store_job *)wj;
	struct txn_svc *s = j->s;
	bool current = j->generation == s->generation;
	struct txn_effects out;
	txn_effects_init(&out);
	int16_t err = j->kind == STORE_LOAD ? KERR_NONE : write_error(j);

	switch (j->kind) {
	case STORE_PERSIST:
	case STORE_DELETE:
		/* A deleted id, or one another writer holds, has no version
		 * of ours. */
		if (j->rc == 0 || j->rc == SL_EBUSY)
			version_set(s, j->id,
				    j->rc == 0 && j->kind == STORE_PERSIST ? j->version : 0);
		if (current)
			txn_persisted(s->c, now_ms(s), (kstr){ j->id, (int32_t)strlen(j->id) },
				      j->write_id, err, &out);
		/* The coordinator dropped the id: read what the store holds
		 * (another agent's write, or ours whose outcome was lost). */
		if (current && j->rc == SL_EBUSY && !s->stopping &&
		    (!s->cfg.fenced || adopted(s, j->id, NULL)))
			start_reload(s, j->id);
		break;
	case STORE_SETTLE:
		if (current)
			txn_markers_done(s->c, now_ms(s), (kstr){ j->id, (int32_t)strlen(j->id) },
					 j->txn_seq,
					 j->rc == 0 ? KERR_NONE : KERR_KAFKA_STORAGE_ERROR, &out);
		break;
	case STORE_LOAD:
	case STORE_RELOAD:
		if (current)
			load_done(s, j);
		else if (j->kind == STORE_RELOAD && strmap_get(&s->reloading, j->id) == j)
			strmap_del(&s->reloading, j->id);
		break;
	}
	perform(s, &out);
	txn_effects_free(&out);
	job_free(j);
}

static struct store_job *job_new(struct txn_svc *s, enum store_kind kind, const char *id)
{
	struct store_job *j = calloc(1, sizeof *j);
	if (!j)
		return NULL;
	j->s = s;
	j->generation = s->generation;
	j->kind = kind;
	j->job.run = store_run;
	j->job.done = store_done;
	if (id && !(j->id = strdup(id))) {
		free(j);
		return NULL;
	}
	return j;
}

static void start_load(struct txn_svc *s)
{
	struct store_job *j = job_new(s, STORE_LOAD, NULL);
	if (!j) {
		log_error("txn: out of memory starting the load (retrying)");
		uv_timer_start(&s->load_retry, load_retry_cb, LOAD_RETRY_MS, 0);
		return;
	}
	workq_submit(&s->q, &j->job);
}

static void start_reload(struct txn_svc *s, const char *id)
{
	if (strmap_get(&s->reloading, id))
		return;
	struct store_job *j = job_new(s, STORE_RELOAD, id);
	if (!j || strmap_put(&s->reloading, id, j) != 0) {
		log_error("txn: out of memory reading %s again", id);
		if (j)
			job_free(j);
		return;
	}
	workq_submit(&s->q, &j->job);
}

static void load_retry_cb(uv_timer_t *t)
{
	struct txn_svc *s = t->data;
	if (!s->stopping)
		start_load(s);
}

/* One effect; what it leads to at once goes to more. */
static void perform_one(struct txn_svc *s, struct txn_effect *e, struct txn_effects *more)
{
	kstr id = { e->transactional_id, e->transactional_id ? (int32_t)strlen(e->transactional_id) : -1 };

	switch (e->kind) {
	case TXN_EFFECT_ANSWER:
		s->cfg.answer(s->cfg.arg, e);
		return;
	case TXN_EFFECT_PERSIST:
	case TXN_EFFECT_DELETE: {
		if (s->stopping)
			return;
		int64_t epoch = s->cfg.coord_epoch;
		if (s->cfg.fenced && !adopted(s, e->transactional_id, &epoch)) {
			/* Released since: not ours to write. */
			txn_persisted(s->c, now_ms(s), id, e->write_id, KERR_NOT_COORDINATOR, more);
			return;
		}
		struct store_job *j = job_new(s, e->kind == TXN_EFFECT_PERSIST ? STORE_PERSIST
									: STORE_DELETE,
					      e->transactional_id);
		if (!j) {
			txn_persisted(s->c, now_ms(s), id, e->write_id,
				      KERR_COORDINATOR_NOT_AVAILABLE, more);
			return;
		}
		j->write_id = e->write_id;
		j->epoch = epoch;
		j->version = version_of(s, e->transactional_id);
		/* Take the record: the effect's copy is freed with the list. */
		j->record = e->record;
		memset(&e->record, 0, sizeof e->record);
		workq_submit(&s->q, &j->job);
		return;
	}
	case TXN_EFFECT_MARKERS: {
		if (s->stopping)
			return;
		if (e->record.partition_count == 0) {
			/* No marker to write: the groups' offsets are settled
			 * by the store directly (also what a crash left owed). */
			struct store_job *j = job_new(s, STORE_SETTLE, e->transactional_id);
			if (!j) {
				txn_markers_done(s->c, now_ms(s), id, e->record.txn_seq,
						 KERR_KAFKA_STORAGE_ERROR, more);
				return;
			}
			j->txn_seq = e->record.txn_seq;
			j->commit = e->commit;
			workq_submit(&s->q, &j->job);
			return;
		}
		int rc = s->cfg.write_markers ? s->cfg.write_markers(s->cfg.arg, e) : SL_EUNSUPPORTED;
		if (rc != 0)
			txn_markers_done(s->c, now_ms(s), id, e->record.txn_seq,
					 KERR_KAFKA_STORAGE_ERROR, more);
		return;
	}
	}
}

static void reload_adopted(void *arg, const char *id, void *value)
{
	(void)value;
	start_reload(arg, id);
}

/* Out of memory inside the coordinator: it may have lost an effect, so
 * it is rebuilt from the store. Held requests are answered
 * NOT_COORDINATOR (the client asks again); an answer that was lost
 * leaves its request to the client's timeout. */
static void rebuild(struct txn_svc *s, struct txn_effects *more)
{
	log_error("txn: out of memory in the coordinator: reloading it from the store");
	txn_shutdown(s->c, more);
	struct txn_coordinator *c;
	if (txn_new(&s->cfg.coord, &c) != 0) {
		log_error("txn: out of memory rebuilding the coordinator; keeping the old one");
		return;
	}
	txn_free(s->c);
	s->c = c;
	s->generation++;
	txn_load_begin(s->c);
	if (s->cfg.fenced) {
		/* Only the adopted ids, each read again; the old generation's
		 * reads are dropped with their entries. */
		strmap_free(&s->reloading);
		strmap_init(&s->reloading);
		strmap_each(&s->epochs, reload_adopted, s);
		return;
	}
	s->loaded = false;
	start_load(s); /* after the jobs queued by the old one */
}

static void perform(struct txn_svc *s, struct txn_effects *out)
{
	struct txn_effects more;
	txn_effects_init(&more);
	while (out->n > 0 || out->oom) {
		bool oom = out->oom;
		for (size_t i = 0; i < out->n; i++)
			perform_one(s, &out->v[i], &more);
		txn_effects_reset(out);
		if (oom && !s->stopping)
			rebuild(s, &more);
		struct txn_effects t = *out;
		*out = more;
		more = t;
	}
	txn_effects_free(&more);
}

/* ---------------------------------------------------------------- lifetime */

static void tick_cb(uv_timer_t *t)
{
	struct txn_svc *s = t->data;
	struct txn_effects out;
	txn_effects_init(&out);
	txn_tick(s->c, now_ms(s), &out);
	perform(s, &out);
	txn_effects_free(&out);
}

int txn_svc_start(uv_loop_t *loop, struct meta *meta, const struct txn_svc_config *cfg,
		  struct txn_svc **out)
{
	if (!cfg->answer || !cfg->coord.alloc_producer_id)
		return SL_EINVAL;
	struct txn_svc *s = calloc(1, sizeof *s);
	if (!s)
		return SL_ENOMEM;
	s->loop = loop;
	s->meta = meta;
	s->cfg = *cfg;
	if (s->cfg.tick_ms <= 0)
		s->cfg.tick_ms = 100;
	int rc = txn_new(&s->cfg.coord, &s->c);
	if (rc != 0) {
		free(s);
		return rc;
	}
	strmap_init(&s->versions);
	strmap_init(&s->reloading);
	strmap_init(&s->epochs);
	workq_init(&s->q, loop);
	uv_timer_init(loop, &s->tick);
	uv_timer_init(loop, &s->load_retry);
	s->tick.data = s;
	s->load_retry.data = s;
	uv_timer_start(&s->tick, tick_cb, (uint64_t)s->cfg.tick_ms, (uint64_t)s->cfg.tick_ms);
	if (s->cfg.fenced) {
		s->loaded = true; /* ids come one by one, txn_svc_adopt */
	} else {
		txn_load_begin(s->c);
		start_load(s);
	}
	*out = s;
	return 0;
}

void txn_svc_shutdown(struct txn_svc *s)
{
	if (!s || s->stopping)
		return;
	s->stopping = true;
	uv_timer_stop(&s->tick);
	uv_timer_stop(&s->load_retry);
	uv_close((uv_handle_t *)&s->tick, NULL);
	uv_close((uv_handle_t *)&s->load_retry, NULL);
	struct txn_effects out;
	txn_effects_init(&out);
	txn_shutdown(s->c, &out);
	perform(s, &out);
	txn_effects_free(&out);
}

bool txn_svc_idle(const struct txn_svc *s)
{
	return !s || workq_idle(&s->q);
}

void txn_svc_free(struct txn_svc *s)
{
	if (!s)
		return;
	txn_free(s->c);
	strmap_free(&s->versions);
	strmap_free(&s->reloading);
	strmap_free(&s->epochs);
	free(s);
}

bool txn_svc_loaded(const struct txn_svc *s)
{
	return s && s->loaded;
}

/* ---------------------------------------------------------------- requests */

/* id's value in map (ids as NUL-terminated keys), or NULL. */
static void *id_get(const struct strmap *map, kstr id)
{
	char buf[SL_TXN_ID_BYTES_MAX + 1];
	if (map->count == 0 || id.len <= 0 || id.len > SL_TXN_ID_BYTES_MAX)
		return NULL;
	memcpy(buf, id.ptr, (size_t)id.len);
	buf[id.len] = 0;
	return strmap_get(map, buf);
}

static bool id_in(const struct strmap *map, kstr id)
{
	return id_get(map, id) != NULL;
}

/* Is id being read again from the store? */
static bool reloading(const struct txn_svc *s, kstr id)
{
	return id_in(&s->reloading, id);
}

/* Not this service's to serve: after shutdown, or in fenced mode an id
 * not adopted (another agent's, or its lease not taken yet). */
static bool not_here(const struct txn_svc *s, kstr id)
{
	/* An id the coordinator refuses (empty, too long) gets its answer. */
	bool valid = id.len > 0 && id.len <= SL_TXN_ID_BYTES_MAX;
	return s->stopping || (s->cfg.fenced && valid && !id_in(&s->epochs, id));
}

/* Answered here, not by the coordinator: NOT_COORDINATOR after
 * shutdown (it holds nothing new) or for an id not adopted,
 * COORDINATOR_LOAD_IN_PROGRESS while the id is read again. */
static bool answer_here(struct txn_svc *s, kstr id, void *req, enum txn_req_kind kind)
{
	int16_t err;
	if (not_here(s, id))
		err = KERR_NOT_COORDINATOR;
	else if (reloading(s, id))
		err = KERR_COORDINATOR_LOAD_IN_PROGRESS;
	else
		return false;
	struct txn_effect e = { .kind = TXN_EFFECT_ANSWER, .req = req, .req_kind = kind,
				.error = err, .producer_id = -1, .producer_epoch = -1 };
	s->cfg.answer(s->cfg.arg, &e);
	return true;
}

#define SVC_CALL(s, id, req, kind, call)                \
	do {                                            \
		if (answer_here(s, id, req, kind))      \
			return;                         \
		struct txn_effects out_;                \
		txn_effects_init(&out_);                \
		call;                                   \
		perform(s, &out_);                      \
		txn_effects_free(&out_);                \
	} while (0)

void txn_svc_init_producer_id(struct txn_svc *s, const struct txn_init_args *a, void *req)
{
	SVC_CALL(s, a->transactional_id, req, TXN_REQ_INIT_PRODUCER_ID,
		 txn_init_producer_id(s->c, now_ms(s), a, req, &out_));
}

void txn_svc_add_partitions(struct txn_svc *s, const struct txn_add_args *a, void *req)
{
	SVC_CALL(s, a->transactional_id, req, TXN_REQ_ADD_PARTITIONS, txn_add_partitions(s->c, now_ms(s), a, req, &out_));
}

void txn_svc_add_offsets(struct txn_svc *s, const struct txn_add_offsets_args *a, void *req)
{
	SVC_CALL(s, a->transactional_id, req, TXN_REQ_ADD_OFFSETS, txn_add_offsets(s->c, now_ms(s), a, req, &out_));
}

void txn_svc_end(struct txn_svc *s, const struct txn_end_args *a, void *req)
{
	SVC_CALL(s, a->transactional_id, req, TXN_REQ_END_TXN, txn_end(s->c, now_ms(s), a, req, &out_));
}

void txn_svc_verify_partitions(const struct txn_svc *s, const struct txn_add_args *a,
			       int16_t *errors)
{
	int16_t err = not_here(s, a->transactional_id) ? KERR_NOT_COORDINATOR
			: reloading(s, a->transactional_id) ? KERR_COORDINATOR_LOAD_IN_PROGRESS
							    : KERR_NONE;
	if (err) {
		for (int32_t i = 0; i < a->partition_count; i++)
			errors[i] = err;
		return;
	}
	txn_verify_partitions(s->c, a, errors);
}

int16_t txn_svc_offset_commit(struct txn_svc *s, const struct txn_offset_commit_args *a)
{
	if (not_here(s, a->transactional_id))
		return KERR_NOT_COORDINATOR;
	/* The coordinator's mapping of loading (v0-1 had no such code). */
	if (reloading(s, a->transactional_id))
		return a->api_version < 2 ? KERR_COORDINATOR_NOT_AVAILABLE
					  : KERR_COORDINATOR_LOAD_IN_PROGRESS;
	return txn_offset_commit(s->c, a);
}

bool txn_svc_offset_pending(const struct txn_svc *s, kstr group_id, struct txn_tp tp)
{
	return txn_offset_pending(s->c, group_id, tp);
}

void txn_svc_markers_done(struct txn_svc *s, const char *transactional_id, int64_t txn_seq,
			  int16_t err)
{
	if (s->stopping)
		return;
	struct txn_effects out;
	txn_effects_init(&out);
	txn_markers_done(s->c, now_ms(s), (kstr){ transactional_id, (int32_t)strlen(transactional_id) },
			 txn_seq, err, &out);
	perform(s, &out);
	txn_effects_free(&out);
}

/* ---------------------------------------------------------------- fenced mode */

int txn_svc_adopt(struct txn_svc *s, const char *transactional_id, int64_t epoch)
{
	size_t len = strlen(transactional_id);
	if (!s->cfg.fenced || epoch <= 0 || len == 0 || len > SL_TXN_ID_BYTES_MAX)
		return SL_EINVAL;
	if (s->stopping)
		return SL_EBUSY;
	int64_t was;
	if (adopted(s, transactional_id, &was)) {
		if (was == epoch)
			return 0;
		txn_svc_release(s, transactional_id); /* lost and taken again */
	}
	if (strmap_put(&s->epochs, transactional_id, (void *)(intptr_t)epoch) != 0)
		return SL_ENOMEM;
	start_reload(s, transactional_id);
	if (!strmap_get(&s->reloading, transactional_id)) {
		strmap_del(&s->epochs, transactional_id);
		return SL_ENOMEM;
	}
	return 0;
}

void txn_svc_release(struct txn_svc *s, const char *transactional_id)
{
	if (!adopted(s, transactional_id, NULL))
		return;
	strmap_del(&s->epochs, transactional_id);
	strmap_del(&s->reloading, transactional_id); /* its job's result is dropped */
	version_set(s, transactional_id, 0);
	struct txn_effects out;
	txn_effects_init(&out);
	txn_unload(s->c, (kstr){ transactional_id, (int32_t)strlen(transactional_id) }, &out);
	perform(s, &out);
	txn_effects_free(&out);
}

bool txn_svc_adopted(const struct txn_svc *s, kstr transactional_id, int64_t *epoch)
{
	void *v = id_get(&s->epochs, transactional_id);
	if (epoch)
		*epoch = (int64_t)(intptr_t)v;
	return v != NULL;
}

const struct txn_coordinator *txn_svc_coordinator(const struct txn_svc *s)
{
	return s->c;
}

int16_t txn_svc_read_status(const struct txn_svc *s, kstr transactional_id)
{
	if (s->stopping)
		return KERR_COORDINATOR_NOT_AVAILABLE;
	if (!s->loaded || (transactional_id.len >= 0 && reloading(s, transactional_id)))
		return KERR_COORDINATOR_LOAD_IN_PROGRESS;
	return KERR_NONE;
}
