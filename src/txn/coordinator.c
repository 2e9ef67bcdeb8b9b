/* coordinator.c — the transaction coordinator's state machine
 * (coordinator.h): Kafka 3.9's TransactionCoordinator and
 * TransactionMetadata rules, checks in Kafka's order, with effects
 * instead of log appends and marker sends. Pure logic: no I/O, no clock. */
#include "txn/coordinator.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/limits.h"
#include "base/sl_assert.h"
#include "base/strmap.h"
#include "proto/kerr.h"

struct txn_coordinator {
	struct txn_config cfg;
	struct strmap ids;          /* transactional id -> struct txn_meta */
	bool loading;
	uint64_t next_write_id;
};

static const char *const state_names[TXN_STATE_COUNT] = {
	"Empty", "Ongoing", "PrepareCommit", "PrepareAbort",
	"CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence",
};

const char *txn_state_name(enum txn_state s)
{
	return (unsigned)s < TXN_STATE_COUNT ? state_names[s] : "Unknown";
}

int txn_state_parse(kstr name)
{
	for (int i = 0; i < TXN_STATE_COUNT; i++)
		if (kstr_eq(name, state_names[i]))
			return i;
	return -1;
}

void txn_config_default(struct txn_config *c)
{
	memset(c, 0, sizeof *c);
	c->max_timeout_ms = 900000;
	c->id_expiration_ms = 7LL * 24 * 3600 * 1000;
	c->end_answer_max_ms = 5000;
	c->retry_backoff_ms = 100;
}

/* ---------------------------------------------------------------- records */

static void record_clear(struct txn_record *r)
{
	free(r->partitions);
	for (int32_t i = 0; i < r->group_count; i++)
		free(r->groups[i]);
	free(r->groups);
	r->partitions = NULL;
	r->partition_count = 0;
	r->groups = NULL;
	r->group_count = 0;
}

/* A deep copy; on SL_ENOMEM dst holds nothing. */
static int record_copy(struct txn_record *dst, const struct txn_record *src)
{
	*dst = *src;
	dst->partitions = NULL;
	dst->groups = NULL;
	dst->partition_count = 0;
	dst->group_count = 0;
	if (src->partition_count > 0) {
		dst->partitions = malloc(sizeof *dst->partitions * (size_t)src->partition_count);
		if (!dst->partitions)
			return SL_ENOMEM;
		memcpy(dst->partitions, src->partitions,
		       sizeof *dst->partitions * (size_t)src->partition_count);
		dst->partition_count = src->partition_count;
	}
	if (src->group_count > 0) {
		dst->groups = calloc((size_t)src->group_count, sizeof *dst->groups);
		if (!dst->groups)
			goto out_clear;
		for (int32_t i = 0; i < src->group_count; i++) {
			dst->groups[i] = strdup(src->groups[i]);
			if (!dst->groups[i]) {
				dst->group_count = i;
				goto out_clear;
			}
		}
		dst->group_count = src->group_count;
	}
	return 0;
out_clear:
	record_clear(dst);
	return SL_ENOMEM;
}

static int tp_cmp(const struct txn_tp *a, const struct txn_tp *b)
{
	if (a->tid != b->tid)
		return a->tid < b->tid ? -1 : 1;
	if (a->partition != b->partition)
		return a->partition < b->partition ? -1 : 1;
	return 0;
}

static int tp_qcmp(const void *a, const void *b)
{
	return tp_cmp(a, b);
}

static bool tp_contains(const struct txn_tp *v, int32_t n, struct txn_tp tp)
{
	int32_t lo = 0, hi = n;
	while (lo < hi) {
		int32_t mid = lo + (hi - lo) / 2;
		int c = tp_cmp(&v[mid], &tp);
		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static bool group_contains(const struct txn_record *r, kstr g)
{
	for (int32_t i = 0; i < r->group_count; i++)
		if (kstr_eq(g, r->groups[i]))
			return true;
	return false;
}

static void offsets_clear(struct txn_meta *t)
{
	for (int32_t i = 0; i < t->offset_count; i++)
		free(t->offset_groups[i]);
	t->offset_count = 0;
}

static bool offset_known(const struct txn_meta *t, kstr group, struct txn_tp tp)
{
	for (int32_t i = 0; i < t->offset_count; i++)
		if (tp_cmp(&t->offset_tps[i], &tp) == 0 && kstr_eq(group, t->offset_groups[i]))
			return true;
	return false;
}

/* ---------------------------------------------------------------- effects */

void txn_effects_init(struct txn_effects *e)
{
	memset(e, 0, sizeof *e);
}

void txn_effects_reset(struct txn_effects *e)
{
	for (size_t i = 0; i < e->n; i++) {
		free(e->v[i].transactional_id);
		record_clear(&e->v[i].record);
	}
	e->n = 0;
	e->oom = false;
}

void txn_effects_free(struct txn_effects *e)
{
	txn_effects_reset(e);
	free(e->v);
	memset(e, 0, sizeof *e);
}

/* A new effect for id t, or NULL (out->oom set). */
static struct txn_effect *effect_add(struct txn_effects *out, enum txn_effect_kind kind,
				     const char *id)
{
	if (out->fail_after > 0 && --out->fail_after == 0)
		out->fail_after = -1;
	if (out->fail_after < 0) {
		out->oom = true;
		return NULL;
	}
	if (out->n == out->cap) {
		size_t cap = out->cap ? out->cap * 2 : 16;
		struct txn_effect *v = realloc(out->v, cap * sizeof *v);
		if (!v) {
			out->oom = true;
			return NULL;
		}
		out->v = v;
		out->cap = cap;
	}
	struct txn_effect *e = &out->v[out->n];
	memset(e, 0, sizeof *e);
	e->kind = kind;
	e->producer_id = -1;
	e->producer_epoch = -1;
	if (id) {
		e->transactional_id = strdup(id);
		if (!e->transactional_id) {
			out->oom = true;
			return NULL;
		}
	}
	out->n++;
	return e;
}

/* Kafka's version rules: PRODUCER_FENCED (90) is newer than the request
 * versions below which clients get INVALID_PRODUCER_EPOCH instead. */
static int16_t map_error(enum txn_req_kind kind, int16_t version, int16_t err)
{
	if (err != KERR_PRODUCER_FENCED)
		return err;
	int16_t first = kind == TXN_REQ_INIT_PRODUCER_ID ? 4 : 2;
	return version < first ? KERR_INVALID_PRODUCER_EPOCH : err;
}

static void answer(struct txn_effects *out, void *req, enum txn_req_kind kind, int16_t version,
		   int16_t err, int64_t pid, int16_t epoch)
{
	struct txn_effect *e = effect_add(out, TXN_EFFECT_ANSWER, NULL);
	if (!e)
		return;
	e->req = req;
	e->req_kind = kind;
	e->error = map_error(kind, version, err);
	if (kind == TXN_REQ_INIT_PRODUCER_ID && err == KERR_NONE) {
		e->producer_id = pid;
		e->producer_epoch = epoch;
	}
}

static void answer_error(struct txn_effects *out, void *req, enum txn_req_kind kind,
			 int16_t version, int16_t err)
{
	answer(out, req, kind, version, err, -1, -1);
}

/* ---------------------------------------------------------------- ids */

int txn_new(const struct txn_config *cfg, struct txn_coordinator **out)
{
	struct txn_coordinator *c = calloc(1, sizeof *c);
	if (!c)
		return SL_ENOMEM;
	c->cfg = *cfg;
	if (c->cfg.ids_max <= 0 || c->cfg.ids_max > SL_TXN_IDS_MAX)
		c->cfg.ids_max = SL_TXN_IDS_MAX;
	strmap_init(&c->ids);
	c->next_write_id = 1;
	*out = c;
	return 0;
}

static void meta_free(struct txn_meta *t)
{
	record_clear(&t->r);
	record_clear(&t->transit);
	offsets_clear(t);
	free(t->offset_groups);
	free(t->offset_tps);
	free(t->transactional_id);
	free(t);
}

static void free_each(void *arg, const char *key, void *value)
{
	(void)arg;
	(void)key;
	meta_free(value);
}

void txn_free(struct txn_coordinator *c)
{
	if (!c)
		return;
	strmap_each(&c->ids, free_each, NULL);
	strmap_free(&c->ids);
	free(c);
}

/* The id as a C string in buf, or false when it cannot be one (too long,
 * or an embedded NUL). */
static bool id_cstr(kstr id, char *buf)
{
	if (id.len < 0 || id.len > SL_TXN_ID_BYTES_MAX)
		return false;
	if (id.len > 0) {
		if (memchr(id.ptr, 0, (size_t)id.len))
			return false;
		memcpy(buf, id.ptr, (size_t)id.len);
	}
	buf[id.len] = 0;
	return true;
}

static struct txn_meta *meta_get(const struct txn_coordinator *c, kstr id)
{
	char buf[SL_TXN_ID_BYTES_MAX + 1];
	if (!id_cstr(id, buf))
		return NULL;
	return strmap_get(&c->ids, buf);
}

static struct txn_meta *meta_create(struct txn_coordinator *c, const char *id)
{
	struct txn_meta *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->transactional_id = strdup(id);
	if (!t->transactional_id || strmap_put(&c->ids, id, t) != 0) {
		free(t->transactional_id);
		free(t);
		return NULL;
	}
	t->markers_retry_at_ms = -1;
	t->complete_retry_at_ms = -1;
	return t;
}

static void meta_drop(struct txn_coordinator *c, struct txn_meta *t)
{
	strmap_del(&c->ids, t->transactional_id);
	meta_free(t);
}

/* ---------------------------------------------------------------- transitions */

/* Kafka's prepareTransitionTo: the transit record starts as a copy of
 * the current one (only InitProducerId changes the previous producer
 * id, as Kafka's completeTransitionTo applies it only to Empty). On
 * SL_ENOMEM nothing changed. */
static int transit_begin(struct txn_meta *t, enum txn_state pending_state, int64_t now_ms)
{
	record_clear(&t->transit);
	if (record_copy(&t->transit, &t->r) != 0)
		return SL_ENOMEM;
	t->transit.update_ms = now_ms;
	t->pending_state = pending_state;
	return 0;
}

static bool legal_previous(enum txn_state to, enum txn_state from)
{
	switch (to) {
	case TXN_EMPTY:
		return from == TXN_EMPTY || from == TXN_COMPLETE_COMMIT || from == TXN_COMPLETE_ABORT;
	case TXN_ONGOING:
		return from == TXN_ONGOING || from == TXN_EMPTY || from == TXN_COMPLETE_COMMIT ||
		       from == TXN_COMPLETE_ABORT;
	case TXN_PREPARE_COMMIT:
		return from == TXN_ONGOING;
	case TXN_PREPARE_ABORT:
		return from == TXN_ONGOING || from == TXN_PREPARE_EPOCH_FENCE;
	case TXN_COMPLETE_COMMIT:
		return from == TXN_PREPARE_COMMIT;
	case TXN_COMPLETE_ABORT:
		return from == TXN_PREPARE_ABORT;
	case TXN_DEAD:
		return from == TXN_EMPTY || from == TXN_COMPLETE_COMMIT ||
		       from == TXN_COMPLETE_ABORT;
	case TXN_PREPARE_EPOCH_FENCE:
		return from == TXN_ONGOING;
	}
	return false;
}

/* Hand the transit record out to be stored; the request (if any) waits
 * for txn_persisted. */
static void persist(struct txn_coordinator *c, struct txn_meta *t, struct txn_effects *out)
{
	SL_ASSERT(legal_previous(t->transit.state, t->r.state), "%s: %s -> %s",
		  t->transactional_id, txn_state_name(t->r.state), txn_state_name(t->transit.state));
	t->pending = true;
	t->write_id = c->next_write_id++;
	struct txn_effect *e = effect_add(out, TXN_EFFECT_PERSIST, t->transactional_id);
	if (!e)
		return;
	e->write_id = t->write_id;
	if (record_copy(&e->record, &t->transit) != 0)
		out->oom = true;
}

static void hold(struct txn_meta *t, void *req, enum txn_req_kind kind, int16_t version)
{
	t->req = req;
	t->req_kind = kind;
	t->req_version = version;
	t->req_fence = false;
}

/* Kafka's completeTransitionTo checks, then the transit becomes the
 * record. A breach means the state machine above is wrong: storing on
 * would persist a transaction Kafka's rules never allow. */
static void transit_complete(struct txn_meta *t)
{
	const struct txn_record *n = &t->transit, *o = &t->r;

	switch (n->state) {
	case TXN_EMPTY:
		SL_ASSERT(n->partition_count == 0 &&
			  ((n->producer_id == o->producer_id &&
			    (n->producer_epoch == o->producer_epoch + 1 ||
			     n->producer_epoch == o->producer_epoch)) ||
			   (n->producer_id != o->producer_id && n->producer_epoch == 0)),
			  "%s: bad Empty transition", t->transactional_id);
		break;
	case TXN_ONGOING:
		SL_ASSERT(n->producer_id == o->producer_id &&
			  n->producer_epoch == o->producer_epoch &&
			  n->partition_count >= o->partition_count,
			  "%s: bad Ongoing transition", t->transactional_id);
		break;
	case TXN_PREPARE_COMMIT:
	case TXN_PREPARE_ABORT:
		SL_ASSERT(n->producer_id == o->producer_id &&
			  n->partition_count == o->partition_count,
			  "%s: bad Prepare transition", t->transactional_id);
		break;
	case TXN_COMPLETE_COMMIT:
	case TXN_COMPLETE_ABORT:
		SL_ASSERT(n->producer_id == o->producer_id && n->producer_epoch == o->producer_epoch &&
			  n->partition_count == 0 && n->group_count == 0,
			  "%s: bad Complete transition", t->transactional_id);
		break;
	default:
		SL_ASSERT(false, "%s: transition to %s", t->transactional_id,
			  txn_state_name(n->state));
	}
	record_clear(&t->r);
	t->r = t->transit;
	memset(&t->transit, 0, sizeof t->transit);
	t->pending = false;
}

/* Emit the markers of a Prepare* transaction. */
static void send_markers(struct txn_meta *t, struct txn_effects *out)
{
	struct txn_effect *e = effect_add(out, TXN_EFFECT_MARKERS, t->transactional_id);
	t->markers_out = true;
	t->markers_retry_at_ms = -1;
	if (!e)
		return;
	e->commit = t->r.state == TXN_PREPARE_COMMIT;
	if (record_copy(&e->record, &t->r) != 0)
		out->oom = true;
}

/* Prepare* is durable: markers next (Kafka: prepareComplete is the
 * pending transition while they are sent). */
static void begin_markers(struct txn_meta *t, struct txn_effects *out)
{
	t->has_failed_epoch_fence = false;
	t->pending = true;
	t->pending_state = t->r.state == TXN_PREPARE_COMMIT ? TXN_COMPLETE_COMMIT
							    : TXN_COMPLETE_ABORT;
	send_markers(t, out);
}

/* Markers written: store Complete*. */
static void persist_complete(struct txn_coordinator *c, struct txn_meta *t, int64_t now_ms,
			     struct txn_effects *out)
{
	if (transit_begin(t, t->pending_state, now_ms) != 0) {
		out->oom = true;
		return;
	}
	t->transit.state = t->pending_state;
	record_clear(&t->transit);
	t->complete_retry_at_ms = -1;
	persist(c, t, out);
}

/* ---------------------------------------------------------------- load */

void txn_load_begin(struct txn_coordinator *c)
{
	c->loading = true;
}

int txn_load(struct txn_coordinator *c, kstr transactional_id, const struct txn_record *r)
{
	char buf[SL_TXN_ID_BYTES_MAX + 1];

	if (!id_cstr(transactional_id, buf) || transactional_id.len == 0 ||
	    r->state < TXN_EMPTY || r->state > TXN_COMPLETE_ABORT ||
	    r->partition_count < 0 || r->partition_count > SL_TXN_PARTITIONS_MAX ||
	    r->group_count < 0 || r->group_count > SL_TXN_GROUPS_MAX)
		return SL_EINVAL;
	struct txn_meta *t = strmap_get(&c->ids, buf);
	if (!t) {
		if (c->ids.count >= (size_t)c->cfg.ids_max)
			return SL_ELIMIT;
		t = meta_create(c, buf);
		if (!t)
			return SL_ENOMEM;
	}
	struct txn_record copy;
	if (record_copy(&copy, r) != 0)
		return SL_ENOMEM;
	if (copy.partition_count > 1)
		qsort(copy.partitions, (size_t)copy.partition_count, sizeof *copy.partitions, tp_qcmp);
	record_clear(&t->r);
	t->r = copy;
	return 0;
}

static void resume_each(void *arg, const char *key, void *value)
{
	struct txn_meta *t = value;
	struct txn_effects *out = arg;
	(void)key;
	if (!t->pending && (t->r.state == TXN_PREPARE_COMMIT || t->r.state == TXN_PREPARE_ABORT))
		begin_markers(t, out);
}

void txn_load_done(struct txn_coordinator *c, int64_t now_ms, struct txn_effects *out)
{
	(void)now_ms;
	c->loading = false;
	strmap_each(&c->ids, resume_each, out);
}

/* ---------------------------------------------------------------- InitProducerId */

/* Kafka's isValidProducerId (KIP-360): may a producer that says it had
 * (pid, epoch) get this id's next epoch? */
static bool valid_expected(const struct txn_meta *t, int64_t pid, int16_t epoch)
{
	return t->r.producer_epoch == -1 || pid == t->r.producer_id ||
	       (pid == t->r.last_producer_id && epoch >= TXN_EPOCH_EXHAUSTED);
}

/* Kafka's endTransaction: the checks and the Prepare* write, for a
 * client's EndTxn and for the coordinator's own aborts (fence, timeout:
 * from_client false, epoch the bumped one). Returns the error to answer
 * at once, or -2 when the write was handed out (answer later). */
#define END_WRITING (-2)
static int16_t end_transaction(struct txn_coordinator *c, struct txn_meta *t, int64_t now_ms,
			       int64_t pid, int16_t epoch, bool commit, bool from_client,
			       struct txn_effects *out)
{
	if (!t || t->r.producer_id != pid)
		return KERR_INVALID_PRODUCER_ID_MAPPING;
	if ((from_client && epoch != t->r.producer_epoch) || epoch < t->r.producer_epoch)
		return KERR_PRODUCER_FENCED;
	if (t->pending && t->pending_state != TXN_PREPARE_EPOCH_FENCE)
		return KERR_CONCURRENT_TRANSACTIONS;
	switch (t->r.state) {
	case TXN_ONGOING:
		break;
	case TXN_COMPLETE_COMMIT:
		return commit ? KERR_NONE : KERR_INVALID_TXN_STATE;
	case TXN_COMPLETE_ABORT:
		return commit ? KERR_INVALID_TXN_STATE : KERR_NONE;
	case TXN_PREPARE_COMMIT:
		return commit ? KERR_CONCURRENT_TRANSACTIONS : KERR_INVALID_TXN_STATE;
	case TXN_PREPARE_ABORT:
		return commit ? KERR_INVALID_TXN_STATE : KERR_CONCURRENT_TRANSACTIONS;
	case TXN_EMPTY:
		return KERR_INVALID_TXN_STATE;
	default:
		SL_ASSERT(false, "%s: stored state %s", t->transactional_id,
			  txn_state_name(t->r.state));
		return KERR_UNKNOWN_SERVER_ERROR;
	}
	if (!commit && t->pending && t->pending_state == TXN_PREPARE_EPOCH_FENCE) {
		/* The fence's epoch becomes the transaction's: its markers
		 * carry it, so the old producer's later writes are refused. */
		t->fencing = true;
		t->pending = false;
		t->r.producer_epoch = epoch;
		t->r.last_producer_epoch = -1;
	}
	enum txn_state next = commit ? TXN_PREPARE_COMMIT : TXN_PREPARE_ABORT;
	if (transit_begin(t, next, now_ms) != 0) {
		out->oom = true;
		return KERR_UNKNOWN_SERVER_ERROR;
	}
	t->transit.state = next;
	persist(c, t, out);
	return END_WRITING;
}

/* Kafka's prepareFenceProducerEpoch then endTransaction(abort). */
static int16_t fence_and_abort(struct txn_coordinator *c, struct txn_meta *t, int64_t now_ms,
			       struct txn_effects *out)
{
	int16_t epoch = t->r.producer_epoch;
	/* A fence whose write failed already bumped the epoch in memory; the
	 * top epoch cannot be bumped (never reached: InitProducerId rotates
	 * the producer id from TXN_EPOCH_EXHAUSTED on). */
	if (!t->has_failed_epoch_fence && epoch < INT16_MAX)
		epoch++;
	t->pending = true;
	t->pending_state = TXN_PREPARE_EPOCH_FENCE;
	int16_t err = end_transaction(c, t, now_ms, t->r.producer_id, epoch, false, false, out);
	if (err != END_WRITING && t->pending_state == TXN_PREPARE_EPOCH_FENCE)
		t->pending = false;
	return err;
}

static int alloc_pid(struct txn_coordinator *c, int64_t *pid)
{
	if (!c->cfg.alloc_producer_id)
		return SL_EINVAL;
	return c->cfg.alloc_producer_id(c->cfg.alloc_arg, pid);
}

void txn_init_producer_id(struct txn_coordinator *c, int64_t now_ms,
			  const struct txn_init_args *a, void *req, struct txn_effects *out)
{
	const enum txn_req_kind K = TXN_REQ_INIT_PRODUCER_ID;
	const int16_t v = a->api_version;
	bool expected = a->producer_id != -1 || a->producer_epoch != -1;
	char buf[SL_TXN_ID_BYTES_MAX + 1];
	int64_t pid;

	/* KafkaApis: exactly one of the two given is a malformed request. */
	if ((a->producer_id == -1) != (a->producer_epoch == -1)) {
		answer_error(out, req, K, v, KERR_INVALID_REQUEST);
		return;
	}
	if (a->transactional_id.len < 0) {
		if (alloc_pid(c, &pid) != 0)
			answer_error(out, req, K, v, KERR_COORDINATOR_LOAD_IN_PROGRESS);
		else
			answer(out, req, K, v, KERR_NONE, pid, 0);
		return;
	}
	if (a->transactional_id.len == 0 || !id_cstr(a->transactional_id, buf)) {
		answer_error(out, req, K, v, KERR_INVALID_REQUEST);
		return;
	}
	if (a->timeout_ms <= 0 || a->timeout_ms > c->cfg.max_timeout_ms) {
		answer_error(out, req, K, v, KERR_INVALID_TRANSACTION_TIMEOUT);
		return;
	}
	if (c->loading) {
		answer_error(out, req, K, v, KERR_COORDINATOR_LOAD_IN_PROGRESS);
		return;
	}
	struct txn_meta *t = strmap_get(&c->ids, buf);
	if (!t) {
		if (c->ids.count >= (size_t)c->cfg.ids_max) {
			answer_error(out, req, K, v, KERR_COORDINATOR_NOT_AVAILABLE);
			return;
		}
		if (alloc_pid(c, &pid) != 0) {
			answer_error(out, req, K, v, KERR_COORDINATOR_LOAD_IN_PROGRESS);
			return;
		}
		t = meta_create(c, buf);
		if (!t) {
			out->oom = true;
			answer_error(out, req, K, v, KERR_UNKNOWN_SERVER_ERROR);
			return;
		}
		/* Kafka caches the new id at once, epoch -1, before its
		 * first write; a failed write leaves it so. */
		t->r.producer_id = pid;
		t->r.last_producer_id = -1;
		t->r.producer_epoch = -1;
		t->r.last_producer_epoch = -1;
		t->r.timeout_ms = a->timeout_ms;
		t->r.state = TXN_EMPTY;
		t->r.start_ms = -1;
		t->r.update_ms = now_ms;
	}
	if (t->pending) {
		answer_error(out, req, K, v, KERR_CONCURRENT_TRANSACTIONS);
		return;
	}
	if (expected && !valid_expected(t, a->producer_id, a->producer_epoch)) {
		answer_error(out, req, K, v, KERR_PRODUCER_FENCED);
		return;
	}
	switch (t->r.state) {
	case TXN_PREPARE_COMMIT:
	case TXN_PREPARE_ABORT:
		answer_error(out, req, K, v, KERR_CONCURRENT_TRANSACTIONS);
		return;
	case TXN_ONGOING: {
		/* Abort the open transaction with a bumped epoch and have the
		 * client retry (its retry bumps again, past the fence). */
		int16_t err = fence_and_abort(c, t, now_ms, out);
		if (err == END_WRITING) {
			hold(t, req, K, v);
			t->req_fence = true;
		} else {
			answer_error(out, req, K, v, err);
		}
		return;
	}
	case TXN_EMPTY:
	case TXN_COMPLETE_COMMIT:
	case TXN_COMPLETE_ABORT:
		break;
	default:
		SL_ASSERT(false, "%s: stored state %s", t->transactional_id,
			  txn_state_name(t->r.state));
		return;
	}
	int64_t new_pid = t->r.producer_id;
	int16_t new_epoch, last_epoch;
	if (t->r.producer_epoch >= TXN_EPOCH_EXHAUSTED &&
	    (!expected || a->producer_epoch == t->r.producer_epoch)) {
		/* Rotation: a new producer id at epoch 0. */
		if (alloc_pid(c, &new_pid) != 0) {
			answer_error(out, req, K, v, KERR_COORDINATOR_LOAD_IN_PROGRESS);
			return;
		}
		new_epoch = 0;
		last_epoch = expected ? t->r.producer_epoch : -1;
	} else if (t->r.producer_epoch >= TXN_EPOCH_EXHAUSTED) {
		/* Kafka throws here (an exhausted epoch that the producer
		 * does not claim): that producer is not the current one. */
		answer_error(out, req, K, v, KERR_PRODUCER_FENCED);
		return;
	} else if (!expected) {
		new_epoch = (int16_t)(t->r.producer_epoch + 1);
		last_epoch = -1;
	} else if (t->r.producer_epoch == -1 || a->producer_epoch == t->r.producer_epoch) {
		new_epoch = (int16_t)(t->r.producer_epoch + 1);
		last_epoch = t->r.producer_epoch;
	} else if (a->producer_epoch == t->r.last_producer_epoch) {
		/* A retry of a bump whose answer was lost: the same epoch. */
		new_epoch = t->r.producer_epoch;
		last_epoch = t->r.last_producer_epoch;
	} else {
		answer_error(out, req, K, v, KERR_PRODUCER_FENCED);
		return;
	}
	if (transit_begin(t, TXN_EMPTY, now_ms) != 0) {
		out->oom = true;
		answer_error(out, req, K, v, KERR_UNKNOWN_SERVER_ERROR);
		return;
	}
	record_clear(&t->transit);
	t->transit.state = TXN_EMPTY;
	t->transit.last_producer_id = t->r.producer_id;
	t->transit.producer_id = new_pid;
	t->transit.producer_epoch = new_epoch;
	t->transit.last_producer_epoch = last_epoch;
	t->transit.timeout_ms = a->timeout_ms;
	t->transit.start_ms = -1;
	hold(t, req, K, v);
	persist(c, t, out);
}

/* ---------------------------------------------------------------- AddPartitions, AddOffsets */

/* The checks AddPartitionsToTxn and AddOffsetsToTxn share, in Kafka's
 * order. Returns KERR_NONE when the transaction may take new members. */
static int16_t add_check(const struct txn_coordinator *c, const struct txn_meta *t, kstr id,
			 int64_t pid, int16_t epoch)
{
	if (id.len <= 0)
		return KERR_INVALID_REQUEST;
	if (c->loading)
		return KERR_COORDINATOR_LOAD_IN_PROGRESS;
	if (!t || t->r.producer_id != pid)
		return KERR_INVALID_PRODUCER_ID_MAPPING;
	if (t->r.producer_epoch != epoch)
		return KERR_PRODUCER_FENCED;
	if (t->pending)
		return KERR_CONCURRENT_TRANSACTIONS;
	if (t->r.state == TXN_PREPARE_COMMIT || t->r.state == TXN_PREPARE_ABORT)
		return KERR_CONCURRENT_TRANSACTIONS;
	return KERR_NONE;
}

/* Kafka's prepareAddPartitions: Ongoing, started now unless it was. */
static int begin_ongoing(struct txn_meta *t, int64_t now_ms)
{
	if (transit_begin(t, TXN_ONGOING, now_ms) != 0)
		return SL_ENOMEM;
	if (t->r.state != TXN_ONGOING) {
		t->transit.start_ms = now_ms;
		t->transit.txn_seq = t->r.txn_seq + 1;
		record_clear(&t->transit); /* Complete* left none; be sure */
	}
	t->transit.state = TXN_ONGOING;
	return 0;
}

void txn_add_partitions(struct txn_coordinator *c, int64_t now_ms,
			const struct txn_add_args *a, void *req, struct txn_effects *out)
{
	const enum txn_req_kind K = TXN_REQ_ADD_PARTITIONS;
	const int16_t v = a->api_version;
	struct txn_meta *t = meta_get(c, a->transactional_id);
	int16_t err = add_check(c, t, a->transactional_id, a->producer_id, a->producer_epoch);

	if (err != KERR_NONE) {
		answer_error(out, req, K, v, err);
		return;
	}
	bool all_in = t->r.state == TXN_ONGOING;
	for (int32_t i = 0; all_in && i < a->partition_count; i++)
		all_in = tp_contains(t->r.partitions, t->r.partition_count, a->partitions[i]);
	if (all_in) {
		answer_error(out, req, K, v, KERR_NONE);
		return;
	}
	if (begin_ongoing(t, now_ms) != 0)
		goto out_oom;
	int64_t room = (int64_t)t->transit.partition_count + a->partition_count;
	if (room > SL_TXN_PARTITIONS_MAX) {
		record_clear(&t->transit);
		answer_error(out, req, K, v, KERR_INVALID_REQUEST);
		return;
	}
	struct txn_tp *v2 = realloc(t->transit.partitions, sizeof *v2 * (size_t)(room ? room : 1));
	if (!v2)
		goto out_oom;
	t->transit.partitions = v2;
	int32_t n = t->transit.partition_count;
	for (int32_t i = 0; i < a->partition_count; i++)
		if (!tp_contains(t->r.partitions, t->r.partition_count, a->partitions[i]) ||
		    t->r.state != TXN_ONGOING)
			v2[n++] = a->partitions[i];
	qsort(v2, (size_t)n, sizeof *v2, tp_qcmp);
	int32_t w = 0;
	for (int32_t i = 0; i < n; i++)
		if (w == 0 || tp_cmp(&v2[w - 1], &v2[i]) != 0)
			v2[w++] = v2[i];
	t->transit.partition_count = w;
	hold(t, req, K, v);
	persist(c, t, out);
	return;
out_oom:
	out->oom = true;
	answer_error(out, req, K, v, KERR_UNKNOWN_SERVER_ERROR);
}

void txn_verify_partitions(const struct txn_coordinator *c, const struct txn_add_args *a,
			   int16_t *errors)
{
	const struct txn_meta *t = meta_get(c, a->transactional_id);
	int16_t err = KERR_NONE;

	if (a->transactional_id.len <= 0)
		err = KERR_INVALID_REQUEST;
	else if (c->loading)
		err = KERR_COORDINATOR_LOAD_IN_PROGRESS;
	else if (!t || t->r.producer_id != a->producer_id)
		err = KERR_INVALID_PRODUCER_ID_MAPPING;
	else if (t->r.producer_epoch != a->producer_epoch)
		err = KERR_PRODUCER_FENCED;
	/* Kafka does not look at the pending write here: the append
	 * checks again. */
	else if (t->r.state == TXN_PREPARE_COMMIT || t->r.state == TXN_PREPARE_ABORT)
		err = KERR_CONCURRENT_TRANSACTIONS;
	for (int32_t i = 0; i < a->partition_count; i++) {
		if (err != KERR_NONE)
			errors[i] = err;
		else
			errors[i] = tp_contains(t->r.partitions, t->r.partition_count, a->partitions[i])
					    ? KERR_NONE
					    : KERR_TRANSACTION_ABORTABLE;
	}
}

void txn_add_offsets(struct txn_coordinator *c, int64_t now_ms,
		     const struct txn_add_offsets_args *a, void *req, struct txn_effects *out)
{
	const enum txn_req_kind K = TXN_REQ_ADD_OFFSETS;
	const int16_t v = a->api_version;
	struct txn_meta *t = meta_get(c, a->transactional_id);
	int16_t err = add_check(c, t, a->transactional_id, a->producer_id, a->producer_epoch);

	/* Kafka takes any group id here (it only hashes it); Sluice keeps
	 * it as a C string of bounded length. */
	if (err == KERR_NONE && (a->group_id.len < 0 || a->group_id.len > SL_GROUP_ID_BYTES_MAX ||
				 (a->group_id.len > 0 &&
				  memchr(a->group_id.ptr, 0, (size_t)a->group_id.len))))
		err = KERR_INVALID_GROUP_ID;
	if (err != KERR_NONE) {
		answer_error(out, req, K, v, err);
		return;
	}
	if (t->r.state == TXN_ONGOING && group_contains(&t->r, a->group_id)) {
		answer_error(out, req, K, v, KERR_NONE);
		return;
	}
	if (begin_ongoing(t, now_ms) != 0)
		goto out_oom;
	if (t->transit.group_count >= SL_TXN_GROUPS_MAX) {
		record_clear(&t->transit);
		answer_error(out, req, K, v, KERR_INVALID_REQUEST);
		return;
	}
	char **g = realloc(t->transit.groups, sizeof *g * (size_t)(t->transit.group_count + 1));
	if (!g)
		goto out_oom;
	t->transit.groups = g;
	char *s = malloc((size_t)a->group_id.len + 1);
	if (!s)
		goto out_oom;
	if (a->group_id.len > 0)
		memcpy(s, a->group_id.ptr, (size_t)a->group_id.len);
	s[a->group_id.len] = 0;
	/* Sorted by bytes, so equal sets are stored alike. */
	int32_t at = t->transit.group_count;
	while (at > 0 && strcmp(g[at - 1], s) > 0) {
		g[at] = g[at - 1];
		at--;
	}
	g[at] = s;
	t->transit.group_count++;
	hold(t, req, K, v);
	persist(c, t, out);
	return;
out_oom:
	out->oom = true;
	answer_error(out, req, K, v, KERR_UNKNOWN_SERVER_ERROR);
}

/* ---------------------------------------------------------------- EndTxn */

void txn_end(struct txn_coordinator *c, int64_t now_ms, const struct txn_end_args *a, void *req,
	     struct txn_effects *out)
{
	const enum txn_req_kind K = TXN_REQ_END_TXN;
	const int16_t v = a->api_version;
	int16_t err;

	if (a->transactional_id.len <= 0)
		err = KERR_INVALID_REQUEST;
	else if (c->loading)
		err = KERR_COORDINATOR_LOAD_IN_PROGRESS;
	else
		err = end_transaction(c, meta_get(c, a->transactional_id), now_ms, a->producer_id,
				      a->producer_epoch, a->commit, true, out);
	if (err == END_WRITING)
		hold(meta_get(c, a->transactional_id), req, K, v);
	else
		answer_error(out, req, K, v, err);
}

/* ---------------------------------------------------------------- TxnOffsetCommit */

int16_t txn_offset_commit(struct txn_coordinator *c, const struct txn_offset_commit_args *a)
{
	struct txn_meta *t = meta_get(c, a->transactional_id);

	if (a->transactional_id.len <= 0)
		return KERR_INVALID_REQUEST;
	if (c->loading)
		return a->api_version < 2 ? KERR_COORDINATOR_NOT_AVAILABLE
					  : KERR_COORDINATOR_LOAD_IN_PROGRESS;
	if (!t || t->r.producer_id != a->producer_id)
		return KERR_INVALID_PRODUCER_ID_MAPPING;
	if (t->r.producer_epoch != a->producer_epoch)
		return KERR_INVALID_PRODUCER_EPOCH;
	/* Verification's CONCURRENT_TRANSACTIONS reaches the group
	 * coordinator as NOT_ENOUGH_REPLICAS, which it answers as this. */
	if (t->r.state == TXN_PREPARE_COMMIT || t->r.state == TXN_PREPARE_ABORT)
		return KERR_COORDINATOR_NOT_AVAILABLE;
	if (t->r.state != TXN_ONGOING || !group_contains(&t->r, a->group_id))
		return a->api_version >= 4 ? KERR_TRANSACTION_ABORTABLE : KERR_INVALID_TXN_STATE;
	int32_t add = 0;
	for (int32_t i = 0; i < a->partition_count; i++)
		add += !offset_known(t, a->group_id, a->partitions[i]);
	if ((int64_t)t->offset_count + add > SL_TXN_OFFSETS_MAX)
		return KERR_INVALID_REQUEST;
	if ((size_t)(t->offset_count + add) > t->offset_cap) {
		size_t cap = (size_t)(t->offset_count + add) * 2;
		char **g = realloc(t->offset_groups, cap * sizeof *g);
		if (g)
			t->offset_groups = g;
		struct txn_tp *tp = realloc(t->offset_tps, cap * sizeof *tp);
		if (tp)
			t->offset_tps = tp;
		if (!g || !tp)
			return KERR_UNKNOWN_SERVER_ERROR;
		t->offset_cap = cap;
	}
	for (int32_t i = 0; i < a->partition_count; i++) {
		if (offset_known(t, a->group_id, a->partitions[i]))
			continue;
		char *g = malloc((size_t)a->group_id.len + 1);
		if (!g)
			return KERR_UNKNOWN_SERVER_ERROR;
		if (a->group_id.len > 0)
			memcpy(g, a->group_id.ptr, (size_t)a->group_id.len);
		g[a->group_id.len] = 0;
		t->offset_groups[t->offset_count] = g;
		t->offset_tps[t->offset_count++] = a->partitions[i];
	}
	return KERR_NONE;
}

struct pending_query {
	kstr group;
	struct txn_tp tp;
	bool found;
};

static void pending_each(void *arg, const char *key, void *value)
{
	struct pending_query *q = arg;
	(void)key;
	if (!q->found)
		q->found = offset_known(value, q->group, q->tp);
}

bool txn_offset_pending(const struct txn_coordinator *c, kstr group_id, struct txn_tp tp)
{
	struct pending_query q = { group_id, tp, false };
	/* A walk over every id: OffsetFetch with require_stable is rare
	 * (a consumer's start), and ids are bounded (SL_TXN_IDS_MAX). */
	strmap_each(&c->ids, pending_each, &q);
	return q.found;
}

/* ---------------------------------------------------------------- completions */

static void answer_held(struct txn_meta *t, int16_t err, struct txn_effects *out)
{
	if (!t->req)
		return;
	if (t->req_kind == TXN_REQ_INIT_PRODUCER_ID && !t->req_fence && err == KERR_NONE)
		answer(out, t->req, t->req_kind, t->req_version, KERR_NONE, t->r.producer_id,
		       t->r.producer_epoch);
	else
		answer_error(out, t->req, t->req_kind, t->req_version, err);
	t->req = NULL;
}

static void answer_end(struct txn_meta *t, int16_t err, struct txn_effects *out)
{
	if (!t->end_req)
		return;
	answer_error(out, t->end_req, TXN_REQ_END_TXN, t->end_req_version, err);
	t->end_req = NULL;
}

/* This agent lost the id: forget it, answering what waits. */
static void abandon(struct txn_coordinator *c, struct txn_meta *t, struct txn_effects *out)
{
	answer_held(t, KERR_NOT_COORDINATOR, out);
	answer_end(t, KERR_NOT_COORDINATOR, out);
	meta_drop(c, t);
}

void txn_persisted(struct txn_coordinator *c, int64_t now_ms, kstr transactional_id,
		   uint64_t write_id, int16_t error, struct txn_effects *out)
{
	struct txn_meta *t = meta_get(c, transactional_id);

	if (!t || !t->pending || t->write_id != write_id)
		return;
	if (error == KERR_NOT_COORDINATOR) {
		abandon(c, t, out);
		return;
	}
	enum txn_state to = t->transit.state;
	if (t->pending_state == TXN_DEAD) {
		if (error == KERR_NONE)
			meta_drop(c, t);
		else
			t->pending = false;
		return;
	}
	if (error != KERR_NONE) {
		if (to == TXN_COMPLETE_COMMIT || to == TXN_COMPLETE_ABORT) {
			/* The markers are written; only the record is owed. */
			record_clear(&t->transit);
			t->complete_retry_at_ms = now_ms + c->cfg.retry_backoff_ms;
			return;
		}
		t->pending = false;
		if (t->fencing)
			t->has_failed_epoch_fence = true;
		t->fencing = false;
		record_clear(&t->transit);
		answer_held(t, error, out);
		return;
	}
	transit_complete(t);
	t->fencing = false;
	switch (to) {
	case TXN_EMPTY:
	case TXN_ONGOING:
		answer_held(t, KERR_NONE, out);
		break;
	case TXN_PREPARE_COMMIT:
	case TXN_PREPARE_ABORT:
		begin_markers(t, out);
		if (t->req && t->req_kind == TXN_REQ_END_TXN && c->cfg.end_answer_max_ms > 0) {
			t->end_req = t->req;
			t->end_req_version = t->req_version;
			t->end_answer_at_ms = now_ms + c->cfg.end_answer_max_ms;
			t->req = NULL;
		} else {
			/* A fencing InitProducerId: CONCURRENT_TRANSACTIONS. */
			answer_held(t, t->req_fence ? KERR_CONCURRENT_TRANSACTIONS : KERR_NONE, out);
		}
		break;
	case TXN_COMPLETE_COMMIT:
	case TXN_COMPLETE_ABORT:
		offsets_clear(t);
		answer_end(t, KERR_NONE, out);
		break;
	default:
		SL_ASSERT(false, "%s: persisted %s", t->transactional_id, txn_state_name(to));
	}
}

void txn_markers_done(struct txn_coordinator *c, int64_t now_ms, kstr transactional_id,
		      int64_t txn_seq, int16_t error, struct txn_effects *out)
{
	struct txn_meta *t = meta_get(c, transactional_id);

	if (!t || !t->markers_out || t->r.txn_seq != txn_seq)
		return;
	if (error == KERR_NOT_COORDINATOR) {
		abandon(c, t, out);
		return;
	}
	t->markers_out = false;
	if (error != KERR_NONE) {
		t->markers_retry_at_ms = now_ms + c->cfg.retry_backoff_ms;
		return;
	}
	/* Every marker is in and the store holds no partition of the
	 * transaction any more: the record says so too, as Kafka's
	 * removePartition empties topicPartitions while Prepare* stays
	 * until Complete* is written (DescribeTransactions shows it). */
	free(t->r.partitions);
	t->r.partitions = NULL;
	t->r.partition_count = 0;
	persist_complete(c, t, now_ms, out);
}

/* ---------------------------------------------------------------- timers */

struct tick_ctx {
	struct txn_coordinator *c;
	int64_t now_ms;
	struct txn_effects *out;
};

static void tick_each(void *arg, const char *key, void *value)
{
	struct tick_ctx *x = arg;
	struct txn_meta *t = value;
	(void)key;

	if (t->end_req && x->now_ms >= t->end_answer_at_ms)
		answer_end(t, KERR_NONE, x->out); /* decided and durable */
	if (t->markers_retry_at_ms >= 0 && x->now_ms >= t->markers_retry_at_ms)
		send_markers(t, x->out);
	if (t->complete_retry_at_ms >= 0 && x->now_ms >= t->complete_retry_at_ms)
		persist_complete(x->c, t, x->now_ms, x->out);
	if (t->pending)
		return;
	if (t->r.state == TXN_ONGOING && t->r.start_ms + t->r.timeout_ms < x->now_ms) {
		/* Timed out: abort with a bumped epoch; the producer's next
		 * request finds itself fenced. */
		(void)fence_and_abort(x->c, t, x->now_ms, x->out);
		return;
	}
	if ((t->r.state == TXN_EMPTY || t->r.state == TXN_COMPLETE_COMMIT ||
	     t->r.state == TXN_COMPLETE_ABORT) &&
	    t->r.update_ms <= x->now_ms - x->c->cfg.id_expiration_ms) {
		t->pending = true;
		t->pending_state = TXN_DEAD;
		t->write_id = x->c->next_write_id++;
		struct txn_effect *e = effect_add(x->out, TXN_EFFECT_DELETE, t->transactional_id);
		if (e)
			e->write_id = t->write_id;
	}
}

void txn_tick(struct txn_coordinator *c, int64_t now_ms, struct txn_effects *out)
{
	struct tick_ctx x = { c, now_ms, out };
	if (c->loading)
		return;
	strmap_each(&c->ids, tick_each, &x);
}

static void shutdown_each(void *arg, const char *key, void *value)
{
	struct txn_meta *t = value;
	(void)key;
	answer_held(t, KERR_NOT_COORDINATOR, arg);
	answer_end(t, KERR_NOT_COORDINATOR, arg);
}

void txn_shutdown(struct txn_coordinator *c, struct txn_effects *out)
{
	strmap_each(&c->ids, shutdown_each, out);
}

void txn_unload(struct txn_coordinator *c, kstr transactional_id, struct txn_effects *out)
{
	struct txn_meta *t = meta_get(c, transactional_id);
	if (t)
		abandon(c, t, out);
}

/* ---------------------------------------------------------------- views */

const struct txn_meta *txn_find(const struct txn_coordinator *c, kstr transactional_id)
{
	return meta_get(c, transactional_id);
}

struct each_ctx {
	void (*fn)(void *arg, const struct txn_meta *t);
	void *arg;
};

static void each_fn(void *arg, const char *key, void *value)
{
	struct each_ctx *x = arg;
	(void)key;
	x->fn(x->arg, value);
}

void txn_each(const struct txn_coordinator *c, void (*fn)(void *arg, const struct txn_meta *t),
	      void *arg)
{
	struct each_ctx x = { fn, arg };
	strmap_each(&c->ids, each_fn, &x);
}

size_t txn_count(const struct txn_coordinator *c)
{
	return c->ids.count;
}
