/* test_txn_coordinator.c — the transaction coordinator's state machine
 * (txn/coordinator.c) against Kafka 3.9's rules: every state transition,
 * the error codes in Kafka's check order and their mapping by request
 * version, fencing, KIP-360 recovery, producer id rotation, timeouts,
 * id expiry, failed writes, and a coordinator rebuilt from the stored
 * records completing a commit the previous one left half done.
 *
 * The harness plays the service: it keeps a "store" of the records the
 * coordinator asked to persist, performs writes (successfully or with a
 * chosen error), records the markers it was asked to write, and checks
 * that every request is answered exactly once. On every effect of every
 * test it also checks what a store and a client could notice (check_*):
 * a stored record only moves along Kafka's transitions (epochs never go
 * down for a producer id, a Prepare* is followed by its Complete* and
 * nothing else), markers are handed out only for the Prepare* record the
 * store holds, and a successful answer only once the write it depends on
 * is durable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/limits.h"
#include "proto/kerr.h"
#include "txn/coordinator.h"

#define MAX_REQS 256
#define MAX_IDS 8
#define MAX_MARKERS 64
#define T0 1700000000000LL /* wall-clock ms */

struct stored {
	char id[64];
	bool present;
	struct txn_record r;
	struct txn_tp *tps;         /* malloc'd, freed at teardown */
	char groups[4][32];
	char *group_ptrs[4];
};

struct marker_write {
	char id[64];
	bool commit;
	int64_t producer_id;
	int16_t producer_epoch;
	int64_t txn_seq;
	int32_t partition_count;
	int32_t group_count;
};

struct h {
	struct txn_coordinator *c;
	struct txn_effects out;
	int64_t next_pid;
	bool alloc_fail;
	/* How the harness performs effects. */
	int16_t persist_error;      /* for PERSIST and DELETE */
	bool hold_markers;          /* leave markers unacknowledged */
	int16_t markers_error;
	/* Results */
	int answered[MAX_REQS];     /* times each request was answered */
	int16_t error[MAX_REQS];
	int64_t pid[MAX_REQS];
	int16_t epoch[MAX_REQS];
	int next_req;
	int persists, deletes;
	struct stored store[MAX_IDS];
	struct marker_write markers[MAX_MARKERS];
	int marker_count;
	/* Markers handed out and held: (id, txn_seq) to acknowledge later. */
	char held_id[MAX_MARKERS][64];
	int64_t held_seq[MAX_MARKERS];
	int held_count;
	int64_t now;
	/* What each request asked, for the answer checks (known: sent
	 * through init/add/add_offsets/end). */
	bool req_known[MAX_REQS];
	enum txn_req_kind req_kind[MAX_REQS];
	char req_id[MAX_REQS][64];
	int64_t req_pid[MAX_REQS];
	int16_t req_epoch[MAX_REQS];
	bool req_commit[MAX_REQS];
	struct txn_tp req_tps[MAX_REQS][3];
	int32_t req_tp_count[MAX_REQS];
	char req_group[MAX_REQS][32];
};

static struct h H;

static int alloc_pid(void *arg, int64_t *out)
{
	struct h *h = arg;
	if (h->alloc_fail)
		return SL_EBUSY;
	*out = h->next_pid++;
	return 0;
}

static struct txn_config config(void)
{
	struct txn_config cfg;
	txn_config_default(&cfg);
	cfg.alloc_producer_id = alloc_pid;
	cfg.alloc_arg = &H;
	return cfg;
}

static int setup_with(const struct txn_config *cfg)
{
	memset(&H, 0, sizeof H);
	H.next_pid = 1000;
	H.now = T0;
	txn_effects_init(&H.out);
	assert_int_equal(txn_new(cfg, &H.c), 0);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	struct txn_config cfg = config();
	return setup_with(&cfg);
}

static int teardown(void **state)
{
	(void)state;
	struct txn_effects e;
	txn_effects_init(&e);
	txn_shutdown(H.c, &e);
	txn_effects_free(&e);
	txn_free(H.c);
	txn_effects_free(&H.out);
	for (int i = 0; i < MAX_IDS; i++)
		free(H.store[i].tps);
	memset(H.store, 0, sizeof H.store);
	return 0;
}

static kstr K(const char *s)
{
	return s ? (kstr){ s, (int32_t)strlen(s) } : (kstr){ NULL, -1 };
}

static struct stored *store_find(const char *id, bool create)
{
	for (int i = 0; i < MAX_IDS; i++)
		if (H.store[i].present && strcmp(H.store[i].id, id) == 0)
			return &H.store[i];
	if (!create)
		return NULL;
	for (int i = 0; i < MAX_IDS; i++)
		if (!H.store[i].present) {
			snprintf(H.store[i].id, sizeof H.store[i].id, "%s", id);
			H.store[i].present = true;
			return &H.store[i];
		}
	fail_msg("store full");
	return NULL;
}

static void store_put(const char *id, const struct txn_record *r)
{
	struct stored *s = store_find(id, true);
	assert_true(r->group_count <= 4);
	s->r = *r;
	s->tps = realloc(s->tps, sizeof *s->tps * (size_t)(r->partition_count + 1));
	assert_non_null(s->tps);
	if (r->partition_count > 0)
		memcpy(s->tps, r->partitions, sizeof *s->tps * (size_t)r->partition_count);
	s->r.partitions = s->tps;
	for (int32_t i = 0; i < r->group_count; i++) {
		snprintf(s->groups[i], sizeof s->groups[i], "%s", r->groups[i]);
		s->group_ptrs[i] = s->groups[i];
	}
	s->r.groups = s->group_ptrs;
}

/* ---------------------------------------------------------------- invariants */

static bool record_has_tp(const struct txn_record *r, struct txn_tp tp)
{
	for (int32_t i = 0; i < r->partition_count; i++)
		if (r->partitions[i].tid == tp.tid && r->partitions[i].partition == tp.partition)
			return true;
	return false;
}

static bool is_prepare(enum txn_state s)
{
	return s == TXN_PREPARE_COMMIT || s == TXN_PREPARE_ABORT;
}

static bool is_complete(enum txn_state s)
{
	return s == TXN_COMPLETE_COMMIT || s == TXN_COMPLETE_ABORT;
}

/* A write of n over what the store holds for id (nothing: a new id, or
 * a record a test loaded straight into the coordinator). */
static void check_persist(const char *id, const struct txn_record *n)
{
	const struct stored *s = store_find(id, false);
	assert_true(n->state >= TXN_EMPTY && n->state <= TXN_COMPLETE_ABORT);
	if (is_complete(n->state) || n->state == TXN_EMPTY)
		assert_int_equal(n->partition_count, 0);
	if (!s)
		return;
	const struct txn_record *o = &s->r;
	if (n->producer_id == o->producer_id) {
		if (n->producer_epoch < o->producer_epoch)
			fail_msg("%s: epoch %d stored over %d", id, n->producer_epoch,
				 o->producer_epoch);
	} else {
		/* A new producer id: only by InitProducerId, from a
		 * finished transaction, at epoch 0. */
		assert_int_equal(n->state, TXN_EMPTY);
		assert_true(o->state == TXN_EMPTY || is_complete(o->state));
		assert_int_equal(n->producer_epoch, 0);
		assert_int_equal(n->last_producer_id, o->producer_id);
	}
	assert_true(n->txn_seq >= o->txn_seq);
	/* Never two Prepare* without a Complete*: a stored Prepare* is
	 * replaced only by its own Complete*. */
	if (is_prepare(o->state)) {
		if (n->state != o->state + 2 || n->txn_seq != o->txn_seq)
			fail_msg("%s: %s stored over %s (txn %lld)", id, txn_state_name(n->state),
				 txn_state_name(o->state), (long long)o->txn_seq);
	}
	if (is_prepare(n->state)) {
		assert_true(o->state == TXN_ONGOING || o->state == n->state);
		assert_int_equal(n->txn_seq, o->txn_seq);
	}
	if (is_complete(n->state))
		assert_int_equal(o->state, n->state - 2);
	if (n->state == TXN_ONGOING && o->state != TXN_ONGOING)
		assert_int_equal(n->txn_seq, o->txn_seq + 1);
	if (n->state == TXN_ONGOING && o->state == TXN_ONGOING) {
		assert_int_equal(n->txn_seq, o->txn_seq);
		for (int32_t i = 0; i < o->partition_count; i++)
			assert_true(record_has_tp(n, o->partitions[i]));
	}
}

/* Markers are written only for the Prepare* record the store holds. */
static void check_markers(const struct txn_effect *e)
{
	const struct stored *s = store_find(e->transactional_id, false);
	if (!s)
		fail_msg("%s: markers for an id never stored", e->transactional_id);
	assert_int_equal(s->r.state, e->commit ? TXN_PREPARE_COMMIT : TXN_PREPARE_ABORT);
	assert_int_equal(s->r.txn_seq, e->record.txn_seq);
	assert_int_equal(s->r.producer_id, e->record.producer_id);
	assert_int_equal(s->r.producer_epoch, e->record.producer_epoch);
	assert_int_equal(s->r.partition_count, e->record.partition_count);
}

/* A successful answer is given only once what it reports is durable. */
static void check_answer(int r, const struct txn_effect *e)
{
	if (e->error != KERR_NONE || !H.req_known[r] || H.req_id[r][0] == 0)
		return;
	const struct stored *s = store_find(H.req_id[r], false);
	if (!s)
		fail_msg("request %d answered before %s was stored", r, H.req_id[r]);
	const struct txn_record *st = &s->r;
	switch (H.req_kind[r]) {
	case TXN_REQ_INIT_PRODUCER_ID:
		assert_int_equal(st->state, TXN_EMPTY);
		assert_int_equal(st->producer_id, e->producer_id);
		assert_int_equal(st->producer_epoch, e->producer_epoch);
		break;
	case TXN_REQ_ADD_PARTITIONS:
		assert_int_equal(st->state, TXN_ONGOING);
		assert_int_equal(st->producer_id, H.req_pid[r]);
		assert_int_equal(st->producer_epoch, H.req_epoch[r]);
		for (int32_t i = 0; i < H.req_tp_count[r]; i++)
			assert_true(record_has_tp(st, H.req_tps[r][i]));
		break;
	case TXN_REQ_ADD_OFFSETS: {
		bool found = false;
		assert_int_equal(st->state, TXN_ONGOING);
		for (int32_t i = 0; i < st->group_count; i++)
			found |= strcmp(st->groups[i], H.req_group[r]) == 0;
		assert_true(found);
		break;
	}
	case TXN_REQ_END_TXN:
		/* Decided (Prepare*) at least; the same outcome. */
		assert_int_equal(st->producer_id, H.req_pid[r]);
		if (H.req_commit[r])
			assert_true(st->state == TXN_PREPARE_COMMIT ||
				    st->state == TXN_COMPLETE_COMMIT);
		else
			assert_true(st->state == TXN_PREPARE_ABORT ||
				    st->state == TXN_COMPLETE_ABORT);
		break;
	}
}

/* Perform every effect, and those they lead to, until none is left. */
static void drain(void)
{
	while (H.out.n > 0) {
		assert_false(H.out.oom);
		size_t n = H.out.n;
		struct txn_effect *v = malloc(sizeof *v * n);
		assert_non_null(v);
		memcpy(v, H.out.v, sizeof *v * n);
		/* Take ownership of the copies: the list forgets them. */
		H.out.n = 0;
		struct txn_effects next;
		txn_effects_init(&next);
		for (size_t i = 0; i < n; i++) {
			struct txn_effect *e = &v[i];
			switch (e->kind) {
			case TXN_EFFECT_ANSWER: {
				int r = (int)(intptr_t)e->req;
				assert_true(r > 0 && r < MAX_REQS);
				check_answer(r, e);
				H.answered[r]++;
				H.error[r] = e->error;
				H.pid[r] = e->producer_id;
				H.epoch[r] = e->producer_epoch;
				break;
			}
			case TXN_EFFECT_PERSIST:
				H.persists++;
				if (H.persist_error == KERR_NONE) {
					check_persist(e->transactional_id, &e->record);
					store_put(e->transactional_id, &e->record);
				}
				txn_persisted(H.c, H.now, K(e->transactional_id), e->write_id,
					      H.persist_error, &next);
				break;
			case TXN_EFFECT_DELETE:
				H.deletes++;
				if (H.persist_error == KERR_NONE) {
					struct stored *s = store_find(e->transactional_id, false);
					if (s)
						s->present = false;
				}
				txn_persisted(H.c, H.now, K(e->transactional_id), e->write_id,
					      H.persist_error, &next);
				break;
			case TXN_EFFECT_MARKERS: {
				assert_true(H.marker_count < MAX_MARKERS);
				check_markers(e);
				struct marker_write *m = &H.markers[H.marker_count++];
				snprintf(m->id, sizeof m->id, "%s", e->transactional_id);
				m->commit = e->commit;
				m->producer_id = e->record.producer_id;
				m->producer_epoch = e->record.producer_epoch;
				m->txn_seq = e->record.txn_seq;
				m->partition_count = e->record.partition_count;
				m->group_count = e->record.group_count;
				if (H.hold_markers) {
					snprintf(H.held_id[H.held_count], 64, "%s", e->transactional_id);
					H.held_seq[H.held_count++] = e->record.txn_seq;
				} else {
					txn_markers_done(H.c, H.now, K(e->transactional_id),
							 e->record.txn_seq, H.markers_error, &next);
				}
				break;
			}
			}
		}
		/* Free the copies the effects owned. */
		struct txn_effects old = { .v = v, .n = n, .cap = n };
		txn_effects_free(&old);
		/* What they led to becomes the list. */
		txn_effects_free(&H.out);
		H.out = next;
	}
	txn_effects_reset(&H.out);
}

/* Acknowledge the markers held so far (in order). */
static void release_markers(int16_t err)
{
	int n = H.held_count;
	H.held_count = 0;
	for (int i = 0; i < n; i++)
		txn_markers_done(H.c, H.now, K(H.held_id[i]), H.held_seq[i], err, &H.out);
	drain();
}

static int new_req(void)
{
	int r = ++H.next_req;
	assert_true(r < MAX_REQS);
	return r;
}

/* A request whose successful answer check_answer verifies. */
static int known_req(enum txn_req_kind kind, const char *id, int64_t pid, int16_t epoch)
{
	int r = new_req();
	H.req_known[r] = true;
	H.req_kind[r] = kind;
	snprintf(H.req_id[r], sizeof H.req_id[r], "%s", id ? id : "");
	H.req_pid[r] = pid;
	H.req_epoch[r] = epoch;
	return r;
}

static int init(const char *id, int32_t timeout, int64_t pid, int16_t epoch, int16_t v)
{
	int r = known_req(TXN_REQ_INIT_PRODUCER_ID, id, pid, epoch);
	struct txn_init_args a = { K(id), timeout, pid, epoch, v };
	txn_init_producer_id(H.c, H.now, &a, (void *)(intptr_t)r, &H.out);
	drain();
	return r;
}

static int add(const char *id, int64_t pid, int16_t epoch, const struct txn_tp *tps, int32_t n,
	       int16_t v)
{
	int r = known_req(TXN_REQ_ADD_PARTITIONS, id, pid, epoch);
	if (n <= 3) {
		H.req_tp_count[r] = n;
		memcpy(H.req_tps[r], tps, sizeof *tps * (size_t)n);
	}
	struct txn_add_args a = { K(id), pid, epoch, tps, n, v };
	txn_add_partitions(H.c, H.now, &a, (void *)(intptr_t)r, &H.out);
	drain();
	return r;
}

static int add_offsets(const char *id, int64_t pid, int16_t epoch, const char *group, int16_t v)
{
	int r = known_req(TXN_REQ_ADD_OFFSETS, id, pid, epoch);
	snprintf(H.req_group[r], sizeof H.req_group[r], "%s", group ? group : "");
	struct txn_add_offsets_args a = { K(id), pid, epoch, K(group), v };
	txn_add_offsets(H.c, H.now, &a, (void *)(intptr_t)r, &H.out);
	drain();
	return r;
}

static int end(const char *id, int64_t pid, int16_t epoch, bool commit, int16_t v)
{
	int r = known_req(TXN_REQ_END_TXN, id, pid, epoch);
	H.req_commit[r] = commit;
	struct txn_end_args a = { K(id), pid, epoch, commit, v };
	txn_end(H.c, H.now, &a, (void *)(intptr_t)r, &H.out);
	drain();
	return r;
}

static void tick(int64_t now)
{
	H.now = now;
	txn_tick(H.c, now, &H.out);
	drain();
}

/* Request r was answered exactly once, with err. */
#define ANSWERED(r, err)                                                     \
	do {                                                                 \
		assert_int_equal(H.answered[r], 1);                         \
		assert_int_equal(H.error[r], (err));                        \
	} while (0)
#define UNANSWERED(r) assert_int_equal(H.answered[r], 0)

static enum txn_state state_of(const char *id)
{
	const struct txn_meta *t = txn_find(H.c, K(id));
	assert_non_null(t);
	return t->r.state;
}

static const struct txn_tp P0 = { 7, 0 }, P1 = { 7, 1 }, Q0 = { 9, 0 };

/* A producer that has run InitProducerId on "t" (pid 1000, epoch 0) and
 * opened a transaction on P0 and P1. */
static void open_txn(const char *id)
{
	int r = init(id, 60000, -1, -1, 4);
	ANSWERED(r, KERR_NONE);
	struct txn_tp tps[2] = { P1, P0 };
	r = add(id, H.pid[r], H.epoch[r], tps, 2, 3);
	ANSWERED(r, KERR_NONE);
	assert_int_equal(state_of(id), TXN_ONGOING);
}

/* ---------------------------------------------------------------- InitProducerId */

static void test_init_new_id_and_bumps(void **state)
{
	(void)state;
	int r = init("t", 60000, -1, -1, 4);
	ANSWERED(r, KERR_NONE);
	assert_int_equal(H.pid[r], 1000);
	assert_int_equal(H.epoch[r], 0);
	struct stored *s = store_find("t", false);
	assert_non_null(s);
	assert_int_equal(s->r.state, TXN_EMPTY);
	assert_int_equal(s->r.producer_id, 1000);
	assert_int_equal(s->r.producer_epoch, 0);
	assert_int_equal(s->r.timeout_ms, 60000);
	assert_int_equal(s->r.start_ms, -1);
	/* A second InitProducerId (a restarted producer) bumps the epoch
	 * and keeps the producer id; the new timeout is taken. */
	r = init("t", 30000, -1, -1, 4);
	ANSWERED(r, KERR_NONE);
	assert_int_equal(H.pid[r], 1000);
	assert_int_equal(H.epoch[r], 1);
	assert_int_equal(s->r.producer_epoch, 1);
	assert_int_equal(s->r.last_producer_epoch, -1);
	assert_int_equal(s->r.timeout_ms, 30000);
	assert_int_equal(H.persists, 2);
	/* The same after a completed transaction. */
	struct txn_tp tps[1] = { P0 };
	r = add("t", 1000, 1, tps, 1, 3);
	ANSWERED(r, KERR_NONE);
	r = end("t", 1000, 1, true, 3);
	ANSWERED(r, KERR_NONE);
	assert_int_equal(state_of("t"), TXN_COMPLETE_COMMIT);
	r = init("t", 30000, -1, -1, 4);
	ANSWERED(r, KERR_NONE);
	assert_int_equal(H.epoch[r], 2);
	assert_int_equal(state_of("t"), TXN_EMPTY);
}

static void test_init_errors(void **state)
{
	(void)state;
	/* Kafka's order: half a producer id/epoch, then the id, then the
	 * timeout, then loading. */
	int r = init("t", 0, 5, -1, 4);
	ANSWERED(r, KERR_INVALID_REQUEST);
	assert_int_equal(H.pid[r], -1);
	assert_int_equal(H.epoch[r], -1);
	r = init("t", 60000, -1, 3, 4);
	ANSWERED(r, KERR_INVALID_REQUEST);
	r = init("", 0, -1, -1, 4);
	ANSWERED(r, KERR_INVALID_REQUEST);
	r = init("t", 0, -1, -1, 4);
	ANSWERED(r, KERR_INVALID_TRANSACTION_TIMEOUT);
	r = init("t", -5, -1, -1, 4);
	ANSWERED(r, KERR_INVALID_TRANSACTION_TIMEOUT);
	r = init("t", 900001, -1, -1, 4);
	ANSWERED(r, KERR_INVALID_TRANSACTION_TIMEOUT);
	assert_int_equal(H.persists, 0);
	r = init("t", 900000, -1, -1, 4); /* transaction.max.timeout.ms itself */
	ANSWERED(r, KERR_NONE);
	/* A null id is an idempotent producer: a new id, epoch 0, nothing
	 * stored, whatever the timeout. */
	r = init(NULL, 0, -1, -1, 4);
	ANSWERED(r, KERR_NONE);
	assert_int_equal(H.pid[r], 1001);
	assert_int_equal(H.epoch[r], 0);
	assert_int_equal(H.persists, 1);
	/* No producer id to hand out (a block being fetched). */
	H.alloc_fail = true;
	r = init("u", 60000, -1, -1, 4);
	ANSWERED(r, KERR_COORDINATOR_LOAD_IN_PROGRESS);
	assert_null(txn_find(H.c, K("u")));
	r = init(NULL, 60000, -1, -1, 4);
	ANSWERED(r, KERR_COORDINATOR_LOAD_IN_PROGRESS);
	H.alloc_fail = false;
	/* Loading. */
	txn_load_begin(H.c);
	r = init("t", 60000, -1, -1, 4);
	ANSWERED(r, KERR_COORDINATOR_LOAD_IN_PROGRESS);
	txn_load_done(H.c, H.now, &H.out);
	drain();
	/* A write outstanding: CONCURRENT_TRANSACTIONS. */
	int r1 = new_req();
	struct txn_init_args a = { K("t"), 60000, -1, -1, 4 };
	txn_init_producer_id(H.c, H.now, &a, (void *)(intptr_t)r1, &H.out);
	/* r1's write is in H.out, not performed yet */
	int r2 = new_req();
	txn_init_producer_id(H.c, H.now, &a, (void *)(intptr_t)r2, &H.out);
	drain();
	ANSWERED(r1, KERR_NONE);
	ANSWERED(r2, KERR_CONCURRENT_TRANSACTIONS);
	/* A failed write answers its error; the id stays as it was. */
	H.persist_error = KERR_COORDINATOR_NOT_AVAILABLE;
	r = init("t", 60000, -1, -1, 4);
	ANSWERED(r, KERR_COORDINATOR_NOT_AVAILABLE);
	assert_int_equal(txn_find(H.c, K("t"))->r.producer_epoch, 1);
	assert_false(txn_find(H.c, K("t"))->pending);
	/* A new id whose first write failed stays cached at epoch -1
	 * (Kafka), and its next InitProducerId gives epoch 0. */
	r = init("v", 60000, -1, -1, 4);
	ANSWERED(r, KERR_COORDINATOR_NOT_AVAILABLE);
	H.persist_error = KERR_NONE;
	r = init("v", 60000, -1, -1, 4);
	ANSWERED(r, KERR_NONE);
	assert_int_equal(H.epoch[r], 0);
}

static void test_init_ids_max(void **state)
{
	(void)state;
	struct txn_config cfg = config();
	teardown(NULL);
	cfg.ids_max = 2;
	setup_with(&cfg);
	ANSWERED(init("a", 60000, -1, -1, 4), KERR_NONE);
	ANSWERED(init("b", 60000, -1, -1, 4), KERR_NONE);
	ANSWERED(init("c", 60000, -1, -1, 4), KERR_COORDINATOR_NOT_AVAILABLE);
	ANSWERED(init("a", 60000, -1, -1, 4), KERR_NONE); /* known ids still served */
	assert_int_equal(txn_count(H.c), 2);
}

/* KIP-360: a producer that gives its current producer id and epoch. */
static void test_init_kip360(void **state)
{
	(void)state;
	int r = init("t", 60000, -1, -1, 4);
	int64_t pid = H.pid[r];
	/* v3+: expected = current: bump, and remember the old epoch. */
	r = init("t", 60000, pid, 0, 4);
	ANSWERED(r, KERR_NONE);
	assert_int_equal(H.epoch[r], 1);
	assert_int_equal(store_find("t", false)->r.last_producer_epoch, 0);
	/* The same request again (its answer was lost): the same epoch. */
	int persists = H.persists;
	r = init("t", 60000, pid, 0, 4);
	ANSWERED(r, KERR_NONE);
	assert_int_equal(H.pid[r], pid);
	assert_int_equal(H.epoch[r], 1);
	assert_int_equal(H.persists, persists + 1);
	/* An epoch neither current nor last: fenced (INVALID_PRODUCER_EPOCH
	 * before v4). */
	ANSWERED(init("t", 60000, pid, 7, 4), KERR_PRODUCER_FENCED);
	ANSWERED(init("t", 60000, pid, 7, 3), KERR_INVALID_PRODUCER_EPOCH);
	/* Another producer id: fenced. */
	ANSWERED(init("t", 60000, pid + 50, 1, 4), KERR_PRODUCER_FENCED);
	ANSWERED(init("t", 60000, pid + 50, 1, 3), KERR_INVALID_PRODUCER_EPOCH);
	/* An unknown id with an expected producer: the new id, epoch 0. */
	r = init("new", 60000, 555, 3, 4);
	ANSWERED(r, KERR_NONE);
	assert_int_equal(H.epoch[r], 0);
	assert_int_equal(H.pid[r], 1001);
	/* A new producer without expectations resets the last epoch, so an
	 * older producer's retry is fenced. */
	r = init("t", 60000, -1, -1, 4);
	ANSWERED(r, KERR_NONE);
	assert_int_equal(H.epoch[r], 2);
	ANSWERED(init("t", 60000, pid, 1, 4), KERR_PRODUCER_FENCED);
}

static void load_record(const char *id, int64_t pid, int16_t epoch, enum txn_state st)
{
	struct txn_record rec = { .producer_id = pid, .last_producer_id = pid,
				  .producer_epoch = epoch, .last_producer_epoch = -1,
				  .timeout_ms = 60000, .state = st, .txn_seq = 4,
				  .start_ms = -1, .update_ms = H.now };
	assert_int_equal(txn_load(H.c, K(id), &rec), 0);
}

static void test_init_epoch_exhausted(void **state)
{
	(void)state;
	load_record("t", 77, 32765, TXN_COMPLETE_COMMIT);
	/* 32765 -> 32766 is an ordinary bump... */
	int r = init("t", 60000, -1, -1, 4);
	ANSWERED(r, KERR_NONE);
	assert_int_equal(H.pid[r], 77);
	assert_int_equal(H.epoch[r], 32766);
	/* ...and 32766 is exhausted: a new producer id at epoch 0. */
	r = init("t", 60000, 77, 32766, 4);
	ANSWERED(r, KERR_NONE);
	assert_int_equal(H.pid[r], 1000);
	assert_int_equal(H.epoch[r], 0);
	struct stored *s = store_find("t", false);
	assert_int_equal(s->r.producer_id, 1000);
	assert_int_equal(s->r.last_producer_id, 77);
	assert_int_equal(s->r.last_producer_epoch, 32766);
	/* The rotation's answer was lost: the retry names the old id and
	 * its exhausted epoch, and gets the new id at epoch 0 again. */
	r = init("t", 60000, 77, 32766, 4);
	ANSWERED(r, KERR_NONE);
	assert_int_equal(H.pid[r], 1000);
	assert_int_equal(H.epoch[r], 0);
	/* Without expectations an exhausted epoch rotates too; the last
	 * epoch is not recorded. */
	load_record("u", 88, 32766, TXN_EMPTY);
	r = init("u", 60000, -1, -1, 4);
	ANSWERED(r, KERR_NONE);
	assert_int_equal(H.pid[r], 1001);
	assert_int_equal(H.epoch[r], 0);
	assert_int_equal(store_find("u", false)->r.last_producer_epoch, -1);
	/* An exhausted epoch the producer does not claim: fenced. */
	load_record("w", 99, 32766, TXN_EMPTY);
	ANSWERED(init("w", 60000, 99, 5, 4), KERR_PRODUCER_FENCED);
}

/* ---------------------------------------------------------------- a transaction */

static void test_commit_flow(void **state)
{
	(void)state;
	H.hold_markers = true;
	H.now = T0 + 10;
	open_txn("t");
	const struct txn_meta *t = txn_find(H.c, K("t"));
	assert_int_equal(t->r.start_ms, T0 + 10);
	assert_int_equal(t->r.txn_seq, 1);
	assert_int_equal(t->r.partition_count, 2);
	assert_int_equal(t->r.partitions[0].partition, 0); /* sorted */
	/* Partitions already in: NONE at once, nothing written. */
	int persists = H.persists;
	struct txn_tp tps[1] = { P0 };
	ANSWERED(add("t", 1000, 0, tps, 1, 3), KERR_NONE);
	assert_int_equal(H.persists, persists);
	/* One more partition: written, the start time kept. */
	H.now = T0 + 20;
	struct txn_tp more[2] = { Q0, P0 };
	ANSWERED(add("t", 1000, 0, more, 2, 3), KERR_NONE);
	assert_int_equal(H.persists, persists + 1);
	t = txn_find(H.c, K("t"));
	assert_int_equal(t->r.partition_count, 3);
	assert_int_equal(t->r.start_ms, T0 + 10);
	assert_int_equal(t->r.txn_seq, 1);
	/* Offsets of group g join the transaction. */
	ANSWERED(add_offsets("t", 1000, 0, "g", 1), KERR_NONE);
	ANSWERED(add_offsets("t", 1000, 0, "g", 1), KERR_NONE);
	assert_int_equal(H.persists, persists + 2);
	struct txn_offset_commit_args oc = { K("t"), 1000, 0, K("g"), tps, 1, 3 };
	assert_int_equal(txn_offset_commit(H.c, &oc), KERR_NONE);
	assert_true(txn_offset_pending(H.c, K("g"), P0));
	assert_false(txn_offset_pending(H.c, K("g"), P1));
	assert_false(txn_offset_pending(H.c, K("h"), P0));
	/* EndTxn: PrepareCommit stored, markers handed out, no answer. */
	int e = end("t", 1000, 0, true, 3);
	UNANSWERED(e);
	assert_int_equal(store_find("t", false)->r.state, TXN_PREPARE_COMMIT);
	assert_int_equal(H.marker_count, 1);
	assert_true(H.markers[0].commit);
	assert_int_equal(H.markers[0].producer_epoch, 0);
	assert_int_equal(H.markers[0].txn_seq, 1);
	assert_int_equal(H.markers[0].partition_count, 3);
	assert_int_equal(H.markers[0].group_count, 1);
	/* While markers are written: everything waits. */
	ANSWERED(end("t", 1000, 0, true, 3), KERR_CONCURRENT_TRANSACTIONS);
	ANSWERED(end("t", 1000, 0, false, 3), KERR_CONCURRENT_TRANSACTIONS);
	ANSWERED(add("t", 1000, 0, tps, 1, 3), KERR_CONCURRENT_TRANSACTIONS);
	ANSWERED(add_offsets("t", 1000, 0, "g", 3), KERR_CONCURRENT_TRANSACTIONS);
	ANSWERED(init("t", 60000, -1, -1, 4), KERR_CONCURRENT_TRANSACTIONS);
	assert_int_equal(txn_offset_commit(H.c, &oc), KERR_COORDINATOR_NOT_AVAILABLE);
	/* Markers written: CompleteCommit stored, then EndTxn answered. */
	release_markers(KERR_NONE);
	ANSWERED(e, KERR_NONE);
	struct stored *s = store_find("t", false);
	assert_int_equal(s->r.state, TXN_COMPLETE_COMMIT);
	assert_int_equal(s->r.partition_count, 0);
	assert_int_equal(s->r.group_count, 0);
	assert_int_equal(s->r.start_ms, T0 + 10);
	assert_false(txn_offset_pending(H.c, K("g"), P0));
	/* Retries of the same EndTxn succeed; the other outcome does not. */
	ANSWERED(end("t", 1000, 0, true, 3), KERR_NONE);
	ANSWERED(end("t", 1000, 0, false, 3), KERR_INVALID_TXN_STATE);
	/* The next transaction gets the next number and a new start. */
	H.now = T0 + 100;
	ANSWERED(add("t", 1000, 0, tps, 1, 0), KERR_NONE);
	t = txn_find(H.c, K("t"));
	assert_int_equal(t->r.txn_seq, 2);
	assert_int_equal(t->r.start_ms, T0 + 100);
	assert_int_equal(t->r.partition_count, 1);
}

static void test_abort_flow_and_end_states(void **state)
{
	(void)state;
	int r = init("t", 60000, -1, -1, 4);
	/* Empty: nothing to end. */
	ANSWERED(end("t", 1000, 0, true, 3), KERR_INVALID_TXN_STATE);
	ANSWERED(end("t", 1000, 0, false, 3), KERR_INVALID_TXN_STATE);
	struct txn_tp tps[1] = { P0 };
	ANSWERED(add("t", H.pid[r], 0, tps, 1, 3), KERR_NONE);
	H.hold_markers = true;
	int e = end("t", 1000, 0, false, 3);
	UNANSWERED(e);
	assert_int_equal(state_of("t"), TXN_PREPARE_ABORT);
	assert_false(H.markers[0].commit);
	ANSWERED(end("t", 1000, 0, true, 3), KERR_CONCURRENT_TRANSACTIONS); /* pending first */
	release_markers(KERR_NONE);
	ANSWERED(e, KERR_NONE);
	assert_int_equal(state_of("t"), TXN_COMPLETE_ABORT);
	ANSWERED(end("t", 1000, 0, false, 3), KERR_NONE);
	ANSWERED(end("t", 1000, 0, true, 3), KERR_INVALID_TXN_STATE);
	/* EndTxn's own checks, in Kafka's order. */
	ANSWERED(end("", 1000, 0, true, 3), KERR_INVALID_REQUEST);
	ANSWERED(end("nope", 1000, 0, true, 3), KERR_INVALID_PRODUCER_ID_MAPPING);
	ANSWERED(end("t", 1001, 0, true, 3), KERR_INVALID_PRODUCER_ID_MAPPING);
	ANSWERED(end("t", 1000, 1, true, 3), KERR_PRODUCER_FENCED);
	ANSWERED(end("t", 1000, 1, true, 2), KERR_PRODUCER_FENCED);
	ANSWERED(end("t", 1000, 1, true, 1), KERR_INVALID_PRODUCER_EPOCH);
	txn_load_begin(H.c);
	ANSWERED(end("t", 1000, 0, true, 3), KERR_COORDINATOR_LOAD_IN_PROGRESS);
	txn_load_done(H.c, H.now, &H.out);
	drain();
}

/* Prepare* with the outcome of the other kind while it is not pending
 * (a coordinator loaded in Prepare*, its markers not yet handed out). */
static void test_end_in_prepare_states(void **state)
{
	(void)state;
	struct txn_tp tps[1] = { P0 };
	struct txn_record rec = { .producer_id = 5, .last_producer_id = 5, .producer_epoch = 2,
				  .last_producer_epoch = -1, .timeout_ms = 60000,
				  .state = TXN_PREPARE_COMMIT, .txn_seq = 3, .start_ms = T0,
				  .update_ms = T0, .partitions = tps, .partition_count = 1 };
	rec.state = TXN_PREPARE_COMMIT;
	assert_int_equal(txn_load(H.c, K("pc"), &rec), 0);
	rec.state = TXN_PREPARE_ABORT;
	assert_int_equal(txn_load(H.c, K("pa"), &rec), 0);
	/* No txn_load_done: the records sit in Prepare* without a pending
	 * write, as between Kafka's Prepare write and prepareComplete. */
	ANSWERED(end("pc", 5, 2, true, 3), KERR_CONCURRENT_TRANSACTIONS);
	ANSWERED(end("pc", 5, 2, false, 3), KERR_INVALID_TXN_STATE);
	ANSWERED(end("pa", 5, 2, false, 3), KERR_CONCURRENT_TRANSACTIONS);
	ANSWERED(end("pa", 5, 2, true, 3), KERR_INVALID_TXN_STATE);
	ANSWERED(init("pc", 60000, -1, -1, 4), KERR_CONCURRENT_TRANSACTIONS);
	ANSWERED(add("pa", 5, 2, tps, 1, 3), KERR_CONCURRENT_TRANSACTIONS);
}

/* end_answer_max_ms: Kafka's answer at Prepare (0), and the bound. */
static void test_end_answer_timing(void **state)
{
	(void)state;
	struct txn_config cfg = config();
	teardown(NULL);
	cfg.end_answer_max_ms = 0;
	setup_with(&cfg);
	H.hold_markers = true;
	open_txn("t");
	int e = end("t", 1000, 0, true, 3);
	ANSWERED(e, KERR_NONE); /* at PrepareCommit, as Kafka */
	assert_int_equal(state_of("t"), TXN_PREPARE_COMMIT);
	/* The next transaction meets the markers still being written. */
	struct txn_tp tps[1] = { P0 };
	ANSWERED(add("t", 1000, 0, tps, 1, 3), KERR_CONCURRENT_TRANSACTIONS);
	release_markers(KERR_NONE);
	assert_int_equal(state_of("t"), TXN_COMPLETE_COMMIT);

	cfg.end_answer_max_ms = 5000;
	teardown(NULL);
	setup_with(&cfg);
	H.hold_markers = true;
	open_txn("t");
	e = end("t", 1000, 0, true, 3);
	UNANSWERED(e);
	tick(T0 + 4999);
	UNANSWERED(e);
	tick(T0 + 5000);
	ANSWERED(e, KERR_NONE); /* decided and durable */
	release_markers(KERR_NONE);
	assert_int_equal(H.answered[e], 1); /* not twice */
	assert_int_equal(state_of("t"), TXN_COMPLETE_COMMIT);
}

/* ---------------------------------------------------------------- AddPartitions, verify, AddOffsets */

static void test_add_partitions_errors(void **state)
{
	(void)state;
	struct txn_tp tps[1] = { P0 };
	ANSWERED(add("", 1, 0, tps, 1, 3), KERR_INVALID_REQUEST);
	ANSWERED(add("t", 1, 0, tps, 1, 3), KERR_INVALID_PRODUCER_ID_MAPPING);
	int r = init("t", 60000, -1, -1, 4);
	ANSWERED(add("t", H.pid[r] + 1, 0, tps, 1, 3), KERR_INVALID_PRODUCER_ID_MAPPING);
	ANSWERED(add("t", H.pid[r], 1, tps, 1, 3), KERR_PRODUCER_FENCED);
	ANSWERED(add("t", H.pid[r], 1, tps, 1, 2), KERR_PRODUCER_FENCED);
	ANSWERED(add("t", H.pid[r], 1, tps, 1, 1), KERR_INVALID_PRODUCER_EPOCH);
	ANSWERED(add("t", H.pid[r], 1, tps, 1, 0), KERR_INVALID_PRODUCER_EPOCH);
	txn_load_begin(H.c);
	ANSWERED(add("t", H.pid[r], 0, tps, 1, 3), KERR_COORDINATOR_LOAD_IN_PROGRESS);
	txn_load_done(H.c, H.now, &H.out);
	drain();
	/* A failed write: its error, and the transaction did not start. */
	H.persist_error = KERR_COORDINATOR_NOT_AVAILABLE;
	ANSWERED(add("t", H.pid[r], 0, tps, 1, 3), KERR_COORDINATOR_NOT_AVAILABLE);
	assert_int_equal(state_of("t"), TXN_EMPTY);
	assert_int_equal(txn_find(H.c, K("t"))->r.txn_seq, 0);
	H.persist_error = KERR_NONE;
	/* Duplicates in a request are stored once. */
	struct txn_tp dup[3] = { Q0, P0, Q0 };
	ANSWERED(add("t", H.pid[r], 0, dup, 3, 3), KERR_NONE);
	assert_int_equal(txn_find(H.c, K("t"))->r.partition_count, 2);
	/* Too many partitions in one transaction. */
	r = init("m", 60000, -1, -1, 4);
	struct txn_tp *many = calloc(SL_TXN_PARTITIONS_MAX + 1, sizeof *many);
	assert_non_null(many);
	for (int i = 0; i <= SL_TXN_PARTITIONS_MAX; i++)
		many[i] = (struct txn_tp){ 1, i };
	ANSWERED(add("m", H.pid[r], 0, many, SL_TXN_PARTITIONS_MAX + 1, 3), KERR_INVALID_REQUEST);
	assert_int_equal(state_of("m"), TXN_EMPTY);
	ANSWERED(add("m", H.pid[r], 0, many, SL_TXN_PARTITIONS_MAX, 3), KERR_NONE);
	assert_int_equal(txn_find(H.c, K("m"))->r.partition_count, SL_TXN_PARTITIONS_MAX);
	free(many);
}

static void test_verify_partitions(void **state)
{
	(void)state;
	struct txn_tp tps[3] = { P0, P1, Q0 };
	int16_t errs[3];
	struct txn_add_args a = { K("t"), 1000, 0, tps, 3, 4 };

	txn_verify_partitions(H.c, &a, errs);
	assert_int_equal(errs[0], KERR_INVALID_PRODUCER_ID_MAPPING);
	assert_int_equal(errs[2], KERR_INVALID_PRODUCER_ID_MAPPING);
	a.transactional_id = K("");
	txn_verify_partitions(H.c, &a, errs);
	assert_int_equal(errs[1], KERR_INVALID_REQUEST);
	a.transactional_id = K("t");
	open_txn("t"); /* P0, P1 */
	txn_verify_partitions(H.c, &a, errs);
	assert_int_equal(errs[0], KERR_NONE);
	assert_int_equal(errs[1], KERR_NONE);
	assert_int_equal(errs[2], KERR_TRANSACTION_ABORTABLE);
	a.producer_epoch = 1;
	txn_verify_partitions(H.c, &a, errs);
	assert_int_equal(errs[0], KERR_PRODUCER_FENCED);
	a.producer_epoch = 0;
	a.producer_id = 1;
	txn_verify_partitions(H.c, &a, errs);
	assert_int_equal(errs[0], KERR_INVALID_PRODUCER_ID_MAPPING);
	a.producer_id = 1000;
	H.hold_markers = true;
	end("t", 1000, 0, true, 3);
	txn_verify_partitions(H.c, &a, errs);
	assert_int_equal(errs[0], KERR_CONCURRENT_TRANSACTIONS);
	assert_int_equal(errs[2], KERR_CONCURRENT_TRANSACTIONS);
	release_markers(KERR_NONE);
	/* Completed: the partitions left the transaction. */
	txn_verify_partitions(H.c, &a, errs);
	assert_int_equal(errs[0], KERR_TRANSACTION_ABORTABLE);
	txn_load_begin(H.c);
	txn_verify_partitions(H.c, &a, errs);
	assert_int_equal(errs[0], KERR_COORDINATOR_LOAD_IN_PROGRESS);
	txn_load_done(H.c, H.now, &H.out);
	drain();
}

static void test_add_offsets_and_txn_offset_commit(void **state)
{
	(void)state;
	struct txn_tp tps[2] = { P0, Q0 };
	struct txn_offset_commit_args oc = { K("t"), 1000, 0, K("g"), tps, 2, 3 };

	ANSWERED(add_offsets("", 1000, 0, "g", 3), KERR_INVALID_REQUEST);
	ANSWERED(add_offsets("t", 1000, 0, "g", 3), KERR_INVALID_PRODUCER_ID_MAPPING);
	assert_int_equal(txn_offset_commit(H.c, &oc), KERR_INVALID_PRODUCER_ID_MAPPING);
	init("t", 60000, -1, -1, 4);
	ANSWERED(add_offsets("t", 1000, 1, "g", 2), KERR_PRODUCER_FENCED);
	ANSWERED(add_offsets("t", 1000, 1, "g", 1), KERR_INVALID_PRODUCER_EPOCH);
	/* The group was not added: v4 TRANSACTION_ABORTABLE, before that
	 * INVALID_TXN_STATE. */
	assert_int_equal(txn_offset_commit(H.c, &oc), KERR_INVALID_TXN_STATE);
	oc.api_version = 4;
	assert_int_equal(txn_offset_commit(H.c, &oc), KERR_TRANSACTION_ABORTABLE);
	oc.producer_epoch = 3;
	assert_int_equal(txn_offset_commit(H.c, &oc), KERR_INVALID_PRODUCER_EPOCH);
	oc.producer_epoch = 0;
	oc.transactional_id = K("");
	assert_int_equal(txn_offset_commit(H.c, &oc), KERR_INVALID_REQUEST);
	oc.transactional_id = K("t");
	/* AddOffsetsToTxn alone starts the transaction. */
	ANSWERED(add_offsets("t", 1000, 0, "g", 0), KERR_NONE);
	assert_int_equal(state_of("t"), TXN_ONGOING);
	ANSWERED(add_offsets("t", 1000, 0, "b", 0), KERR_NONE);
	const struct txn_meta *t = txn_find(H.c, K("t"));
	assert_int_equal(t->r.group_count, 2);
	assert_string_equal(t->r.groups[0], "b"); /* sorted */
	assert_int_equal(txn_offset_commit(H.c, &oc), KERR_NONE);
	assert_true(txn_offset_pending(H.c, K("g"), Q0));
	assert_false(txn_offset_pending(H.c, K("b"), Q0));
	/* Loading: v2+ COORDINATOR_LOAD_IN_PROGRESS, v0-1 not available. */
	txn_load_begin(H.c);
	assert_int_equal(txn_offset_commit(H.c, &oc), KERR_COORDINATOR_LOAD_IN_PROGRESS);
	oc.api_version = 1;
	assert_int_equal(txn_offset_commit(H.c, &oc), KERR_COORDINATOR_NOT_AVAILABLE);
	txn_load_done(H.c, H.now, &H.out);
	drain();
	/* Abort: the pending offsets go with it. */
	ANSWERED(end("t", 1000, 0, false, 1), KERR_NONE);
	assert_false(txn_offset_pending(H.c, K("g"), Q0));
	assert_false(txn_offset_pending(H.c, K("g"), P0));
	/* Bad group ids Sluice cannot keep. */
	char big[SL_GROUP_ID_BYTES_MAX + 2];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = 0;
	ANSWERED(add_offsets("t", 1000, 0, big, 3), KERR_INVALID_GROUP_ID);
}

/* ---------------------------------------------------------------- fencing, timeouts */

static void test_fence_ongoing(void **state)
{
	(void)state;
	H.hold_markers = true;
	open_txn("t"); /* pid 1000, epoch 0 */
	/* A new producer with the same transactional id: the open
	 * transaction is aborted at epoch 1 and the caller told to retry. */
	int r = init("t", 60000, -1, -1, 4);
	assert_int_equal(store_find("t", false)->r.state, TXN_PREPARE_ABORT);
	assert_int_equal(store_find("t", false)->r.producer_epoch, 1);
	assert_int_equal(store_find("t", false)->r.partition_count, 2);
	/* Answered once PrepareAbort is durable. */
	ANSWERED(r, KERR_CONCURRENT_TRANSACTIONS);
	assert_int_equal(H.marker_count, 1);
	assert_false(H.markers[0].commit);
	assert_int_equal(H.markers[0].producer_epoch, 1); /* the bumped epoch */
	/* The zombie is fenced everywhere. */
	struct txn_tp tps[1] = { Q0 };
	ANSWERED(add("t", 1000, 0, tps, 1, 2), KERR_PRODUCER_FENCED);
	ANSWERED(add("t", 1000, 0, tps, 1, 0), KERR_INVALID_PRODUCER_EPOCH);
	ANSWERED(end("t", 1000, 0, true, 1), KERR_INVALID_PRODUCER_EPOCH);
	ANSWERED(end("t", 1000, 0, true, 2), KERR_PRODUCER_FENCED);
	/* The new producer's retry waits for the markers, then bumps
	 * again: epoch 2. */
	ANSWERED(init("t", 60000, -1, -1, 4), KERR_CONCURRENT_TRANSACTIONS);
	release_markers(KERR_NONE);
	assert_int_equal(state_of("t"), TXN_COMPLETE_ABORT);
	r = init("t", 60000, -1, -1, 4);
	ANSWERED(r, KERR_NONE);
	assert_int_equal(H.pid[r], 1000);
	assert_int_equal(H.epoch[r], 2);
}

static void test_fence_write_fails(void **state)
{
	(void)state;
	H.hold_markers = true;
	open_txn("t");
	H.persist_error = KERR_COORDINATOR_NOT_AVAILABLE;
	int r = init("t", 60000, -1, -1, 4);
	ANSWERED(r, KERR_COORDINATOR_NOT_AVAILABLE);
	const struct txn_meta *t = txn_find(H.c, K("t"));
	assert_int_equal(t->r.state, TXN_ONGOING);
	assert_int_equal(t->r.producer_epoch, 1); /* bumped in memory, as Kafka */
	assert_true(t->has_failed_epoch_fence);
	/* The old producer is fenced already (its epoch is stale). */
	ANSWERED(end("t", 1000, 0, true, 3), KERR_PRODUCER_FENCED);
	/* The retry fences with the same epoch, not one more. */
	H.persist_error = KERR_NONE;
	r = init("t", 60000, -1, -1, 4);
	ANSWERED(r, KERR_CONCURRENT_TRANSACTIONS);
	assert_int_equal(store_find("t", false)->r.producer_epoch, 1);
	assert_int_equal(H.markers[H.marker_count - 1].producer_epoch, 1);
	assert_false(txn_find(H.c, K("t"))->has_failed_epoch_fence);
	release_markers(KERR_NONE);
	r = init("t", 60000, -1, -1, 4);
	ANSWERED(r, KERR_NONE);
	assert_int_equal(H.epoch[r], 2);
}

static void test_timeout_abort(void **state)
{
	(void)state;
	int r = init("t", 1000, -1, -1, 4);
	struct txn_tp tps[1] = { P0 };
	H.now = T0 + 5;
	ANSWERED(add("t", H.pid[r], 0, tps, 1, 3), KERR_NONE);
	/* start + timeout < now, strictly (Kafka). */
	tick(T0 + 5 + 1000);
	assert_int_equal(state_of("t"), TXN_ONGOING);
	assert_int_equal(H.marker_count, 0);
	tick(T0 + 5 + 1001);
	assert_int_equal(state_of("t"), TXN_COMPLETE_ABORT);
	assert_int_equal(H.marker_count, 1);
	assert_false(H.markers[0].commit);
	assert_int_equal(H.markers[0].producer_epoch, 1);
	assert_int_equal(store_find("t", false)->r.producer_epoch, 1);
	/* The producer finds itself fenced: its commit, its next
	 * transaction, and its KIP-360 recovery. */
	ANSWERED(end("t", 1000, 0, true, 3), KERR_PRODUCER_FENCED);
	ANSWERED(end("t", 1000, 0, true, 0), KERR_INVALID_PRODUCER_EPOCH);
	ANSWERED(add("t", 1000, 0, tps, 1, 0), KERR_INVALID_PRODUCER_EPOCH);
	ANSWERED(init("t", 1000, 1000, 0, 4), KERR_PRODUCER_FENCED);
	ANSWERED(init("t", 1000, 1000, 0, 3), KERR_INVALID_PRODUCER_EPOCH);
	/* A new producer starts over. */
	r = init("t", 1000, -1, -1, 4);
	ANSWERED(r, KERR_NONE);
	assert_int_equal(H.epoch[r], 2);
	/* Empty and completed transactions do not time out. */
	tick(T0 + 1000000);
	assert_int_equal(state_of("t"), TXN_EMPTY);
	assert_int_equal(H.marker_count, 1);
}

static void test_timeout_with_pending_write(void **state)
{
	(void)state;
	int r = init("t", 1000, -1, -1, 4);
	struct txn_tp tps[1] = { P0 };
	ANSWERED(add("t", H.pid[r], 0, tps, 1, 3), KERR_NONE);
	/* The client's commit is being written when the timer fires:
	 * the commit wins, nothing is fenced. */
	H.hold_markers = true;
	int e = new_req();
	struct txn_end_args a = { K("t"), 1000, 0, true, 3 };
	txn_end(H.c, H.now, &a, (void *)(intptr_t)e, &H.out);
	txn_tick(H.c, T0 + 5000, &H.out); /* write still outstanding */
	H.now = T0 + 5000;
	drain();
	assert_int_equal(store_find("t", false)->r.state, TXN_PREPARE_COMMIT);
	assert_int_equal(store_find("t", false)->r.producer_epoch, 0);
	tick(T0 + 6000); /* Prepare*: not Ongoing, no timeout */
	assert_int_equal(H.marker_count, 1);
	release_markers(KERR_NONE);
	ANSWERED(e, KERR_NONE);
	assert_int_equal(state_of("t"), TXN_COMPLETE_COMMIT);
}

/* ---------------------------------------------------------------- failures, takeover */

static void test_marker_and_complete_retries(void **state)
{
	(void)state;
	open_txn("t");
	H.hold_markers = true;
	int e = end("t", 1000, 0, true, 3);
	/* Markers owed: the partition is listed (DescribeTransactions). */
	assert_int_equal(state_of("t"), TXN_PREPARE_COMMIT);
	assert_int_equal(txn_find(H.c, K("t"))->r.partition_count, 2);
	/* Markers failed: written again after the backoff, not before. */
	release_markers(KERR_KAFKA_STORAGE_ERROR);
	assert_int_equal(txn_find(H.c, K("t"))->r.partition_count, 2);
	assert_int_equal(H.marker_count, 1);
	tick(T0 + 99);
	assert_int_equal(H.marker_count, 1);
	tick(T0 + 100);
	assert_int_equal(H.marker_count, 2);
	assert_int_equal(H.markers[1].txn_seq, H.markers[0].txn_seq);
	/* A late answer for another transaction number is ignored. */
	txn_markers_done(H.c, H.now, K("t"), 99, KERR_NONE, &H.out);
	drain();
	assert_int_equal(state_of("t"), TXN_PREPARE_COMMIT);
	/* Markers written, but storing CompleteCommit fails: retried. */
	H.persist_error = KERR_COORDINATOR_NOT_AVAILABLE;
	release_markers(KERR_NONE);
	assert_int_equal(state_of("t"), TXN_PREPARE_COMMIT);
	assert_true(txn_find(H.c, K("t"))->pending);
	/* Kafka's removePartition: none owed, none listed, still Prepare*. */
	assert_int_equal(txn_find(H.c, K("t"))->r.partition_count, 0);
	UNANSWERED(e);
	H.persist_error = KERR_NONE;
	tick(T0 + 150);
	assert_int_equal(state_of("t"), TXN_PREPARE_COMMIT);
	tick(T0 + 200);
	assert_int_equal(state_of("t"), TXN_COMPLETE_COMMIT);
	ANSWERED(e, KERR_NONE);
	assert_int_equal(H.marker_count, 2); /* no more markers */
}

static void test_not_coordinator(void **state)
{
	(void)state;
	open_txn("t");
	H.persist_error = KERR_NOT_COORDINATOR;
	int e = end("t", 1000, 0, true, 3);
	ANSWERED(e, KERR_NOT_COORDINATOR);
	assert_null(txn_find(H.c, K("t")));
	/* Losing the id while markers are written. */
	H.persist_error = KERR_NONE;
	open_txn("u");
	H.hold_markers = true;
	e = end("u", 1001, 0, true, 3);
	UNANSWERED(e);
	release_markers(KERR_NOT_COORDINATOR);
	ANSWERED(e, KERR_NOT_COORDINATOR);
	assert_null(txn_find(H.c, K("u")));
	/* A stale write completion for a dropped id is ignored. */
	txn_persisted(H.c, H.now, K("u"), 12345, KERR_NONE, &H.out);
	assert_int_equal(H.out.n, 0);
}

/* Rebuild the coordinator from the harness's store, as an agent that
 * restarts or takes the ids over does. */
static void reload(void)
{
	struct txn_effects e;
	txn_effects_init(&e);
	txn_free(H.c); /* the old agent died: its held requests are gone */
	struct txn_config cfg = config();
	assert_int_equal(txn_new(&cfg, &H.c), 0);
	txn_load_begin(H.c);
	for (int i = 0; i < MAX_IDS; i++)
		if (H.store[i].present)
			assert_int_equal(txn_load(H.c, K(H.store[i].id), &H.store[i].r), 0);
	txn_effects_free(&e);
	txn_load_done(H.c, H.now, &H.out);
	drain();
}

static void test_takeover_mid_commit(void **state)
{
	(void)state;
	open_txn("t");
	ANSWERED(add_offsets("t", 1000, 0, "g", 3), KERR_NONE);
	open_txn("u"); /* pid 1001 */
	H.hold_markers = true;
	int e = end("t", 1000, 0, true, 3);
	UNANSWERED(e);
	/* "u" stays Ongoing; "t" is PrepareCommit in the store, markers
	 * handed out but never acknowledged: the agent dies. */
	H.held_count = 0;
	assert_int_equal(store_find("t", false)->r.state, TXN_PREPARE_COMMIT);
	H.hold_markers = false;
	int before = H.marker_count;
	reload();
	/* The new coordinator writes the same markers again and completes. */
	assert_int_equal(H.marker_count, before + 1);
	struct marker_write *m = &H.markers[H.marker_count - 1];
	assert_string_equal(m->id, "t");
	assert_true(m->commit);
	assert_int_equal(m->producer_id, 1000);
	assert_int_equal(m->producer_epoch, 0);
	assert_int_equal(m->txn_seq, 1);
	assert_int_equal(m->partition_count, 2);
	assert_int_equal(m->group_count, 1);
	assert_int_equal(store_find("t", false)->r.state, TXN_COMPLETE_COMMIT);
	/* The client, reconnected, retries its EndTxn: done. */
	ANSWERED(end("t", 1000, 0, true, 3), KERR_NONE);
	/* "u" is still open and times out from its stored start. */
	assert_int_equal(state_of("u"), TXN_ONGOING);
	tick(T0 + 60000);
	assert_int_equal(state_of("u"), TXN_ONGOING);
	tick(T0 + 60001);
	assert_int_equal(state_of("u"), TXN_COMPLETE_ABORT);
	/* Its producer can carry on with a new transaction after a
	 * KIP-360 style re-init; the old one is fenced. */
	ANSWERED(end("u", 1001, 0, true, 3), KERR_PRODUCER_FENCED);
}

static void test_takeover_prepare_abort(void **state)
{
	(void)state;
	open_txn("t");
	H.hold_markers = true;
	int r = init("t", 60000, -1, -1, 4); /* fence: PrepareAbort at epoch 1 */
	ANSWERED(r, KERR_CONCURRENT_TRANSACTIONS);
	H.held_count = 0;
	H.hold_markers = false;
	reload();
	assert_false(H.markers[H.marker_count - 1].commit);
	assert_int_equal(H.markers[H.marker_count - 1].producer_epoch, 1);
	assert_int_equal(state_of("t"), TXN_COMPLETE_ABORT);
	r = init("t", 60000, -1, -1, 4);
	ANSWERED(r, KERR_NONE);
	assert_int_equal(H.epoch[r], 2);
	/* Requests while loading. */
	txn_load_begin(H.c);
	ANSWERED(init("t", 60000, -1, -1, 4), KERR_COORDINATOR_LOAD_IN_PROGRESS);
	tick(T0 + 100000000); /* no timers while loading */
	txn_load_done(H.c, H.now, &H.out);
	drain();
}

static void test_load_rejects_bad_records(void **state)
{
	(void)state;
	struct txn_record rec = { .producer_id = 1, .producer_epoch = 0, .state = TXN_DEAD,
				  .timeout_ms = 1000, .start_ms = -1 };
	assert_int_equal(txn_load(H.c, K("x"), &rec), SL_EINVAL);
	rec.state = TXN_PREPARE_EPOCH_FENCE;
	assert_int_equal(txn_load(H.c, K("x"), &rec), SL_EINVAL);
	rec.state = TXN_EMPTY;
	assert_int_equal(txn_load(H.c, K(""), &rec), SL_EINVAL);
	rec.partition_count = -1;
	assert_int_equal(txn_load(H.c, K("x"), &rec), SL_EINVAL);
	rec.partition_count = 0;
	assert_int_equal(txn_load(H.c, K("x"), &rec), 0);
	assert_int_equal(txn_load(H.c, K("x"), &rec), 0); /* replaces */
	assert_int_equal(txn_count(H.c), 1);
}

/* ---------------------------------------------------------------- expiry, shutdown, names, oom */

static void test_id_expiry(void **state)
{
	(void)state;
	init("t", 60000, -1, -1, 4);
	open_txn("u"); /* times out at the first tick below, then stays */
	int64_t week = 7LL * 24 * 3600 * 1000;
	tick(T0 + week - 1);
	assert_non_null(txn_find(H.c, K("t")));
	/* A failed delete keeps the id; the next sweep tries again. */
	H.persist_error = KERR_COORDINATOR_NOT_AVAILABLE;
	tick(T0 + week);
	assert_int_equal(H.deletes, 1);
	assert_non_null(txn_find(H.c, K("t")));
	H.persist_error = KERR_NONE;
	int64_t now = T0 + week + 1;
	H.now = now;
	txn_tick(H.c, now, &H.out);
	drain();
	assert_null(txn_find(H.c, K("t")));
	assert_null(store_find("t", false));
	assert_non_null(txn_find(H.c, K("u")));
	assert_int_equal(state_of("u"), TXN_COMPLETE_ABORT);
	/* An expired id is unknown: a new producer id. */
	int r = init("t", 60000, -1, -1, 4);
	ANSWERED(r, KERR_NONE);
	assert_int_equal(H.pid[r], 1002);
	assert_int_equal(H.epoch[r], 0);
}

static void test_shutdown_answers_held(void **state)
{
	(void)state;
	open_txn("t");
	H.hold_markers = true;
	int e = end("t", 1000, 0, true, 3);
	int r = new_req();
	struct txn_init_args a = { K("u"), 60000, -1, -1, 4 };
	txn_init_producer_id(H.c, H.now, &a, (void *)(intptr_t)r, &H.out);
	/* r's write not performed */
	struct txn_effects keep = H.out;
	txn_effects_init(&H.out);
	txn_shutdown(H.c, &H.out);
	drain();
	ANSWERED(e, KERR_NOT_COORDINATOR);
	ANSWERED(r, KERR_NOT_COORDINATOR);
	txn_effects_free(&keep);
}

static void test_state_names(void **state)
{
	(void)state;
	static const char *names[] = { "Empty", "Ongoing", "PrepareCommit", "PrepareAbort",
				       "CompleteCommit", "CompleteAbort", "Dead",
				       "PrepareEpochFence" };
	for (int i = 0; i < TXN_STATE_COUNT; i++) {
		assert_string_equal(txn_state_name((enum txn_state)i), names[i]);
		assert_int_equal(txn_state_parse(K(names[i])), i);
	}
	assert_int_equal(txn_state_parse(K("ongoing")), -1);
	assert_int_equal(txn_state_parse(K("")), -1);
	assert_string_equal(txn_state_name((enum txn_state)42), "Unknown");
}

static void test_oom_is_reported(void **state)
{
	(void)state;
	for (int32_t k = 1; k <= 2; k++) {
		struct txn_effects e;
		txn_effects_init(&e);
		e.fail_after = k;
		int r = new_req();
		struct txn_init_args a = { K("t"), 60000, -1, -1, 4 };
		txn_init_producer_id(H.c, H.now, &a, (void *)(intptr_t)r, &e);
		struct txn_init_args n = { K(NULL), 0, -1, -1, 4 };
		txn_init_producer_id(H.c, H.now, &n, (void *)(intptr_t)r, &e);
		assert_true(e.oom);
		txn_effects_free(&e);
		/* The coordinator is dropped by its caller after an oom. */
		teardown(NULL);
		setup(NULL);
	}
}

/* ---------------------------------------------------------------- random sequences */

static uint32_t rnd_state;

static uint32_t rnd(uint32_t n)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return (rnd_state >> 8) % n;
}

/* Random interleavings of three producers on two ids, with failed and
 * delayed writes and markers, timeouts and reloads: no transition
 * assertion fires, every request is answered exactly once (by shutdown
 * at the latest), and the stored record is always one the coordinator
 * may load again. */
static void test_random_sequences(void **state)
{
	static const char *ids[2] = { "a", "b" };
	struct txn_tp tps[3] = { P0, P1, Q0 };

	(void)state;
	for (uint32_t seed = 1; seed <= 200; seed++) {
		teardown(NULL);
		struct txn_config cfg = config();
		cfg.end_answer_max_ms = seed % 2 ? 5000 : 0;
		setup_with(&cfg);
		rnd_state = seed;
		int64_t pid[3] = { -1, -1, -1 };
		int16_t epoch[3] = { -1, -1, -1 };
		for (int step = 0; step < 150 && H.next_req < MAX_REQS - 4; step++) {
			int p = (int)rnd(3);
			const char *id = ids[p % 2];
			H.persist_error = rnd(8) == 0 ? KERR_COORDINATOR_NOT_AVAILABLE : KERR_NONE;
			H.hold_markers = rnd(3) == 0;
			int r = 0;
			switch (rnd(8)) {
			case 0:
			case 1:
				r = rnd(2) ? init(id, 1000, -1, -1, (int16_t)rnd(6))
					   : init(id, 1000, pid[p], epoch[p], (int16_t)rnd(6));
				if (H.answered[r] && H.error[r] == KERR_NONE) {
					pid[p] = H.pid[r];
					epoch[p] = H.epoch[r];
				}
				break;
			case 2:
			case 3:
				r = add(id, pid[p], epoch[p], &tps[rnd(2)], 1 + (int32_t)rnd(2),
					(int16_t)rnd(6));
				break;
			case 4:
				r = add_offsets(id, pid[p], epoch[p], rnd(2) ? "g" : "h",
						(int16_t)rnd(5));
				break;
			case 5:
				r = end(id, pid[p], epoch[p], rnd(2), (int16_t)rnd(5));
				break;
			case 6:
				/* Time passes, with markers acknowledged or
				 * still out. */
				H.persist_error = KERR_NONE;
				if (rnd(3))
					release_markers(rnd(4) ? KERR_NONE : KERR_KAFKA_STORAGE_ERROR);
				tick(H.now + (int64_t)rnd(700));
				break;
			case 7:
				if (rnd(4) == 0) {
					/* The agent dies: its connections close
					 * (here: answered NOT_COORDINATOR). */
					H.held_count = 0;
					txn_shutdown(H.c, &H.out);
					drain();
					reload();
				}
				break;
			}
			if (r)
				assert_true(H.answered[r] <= 1);
		}
		H.persist_error = KERR_NONE;
		H.hold_markers = false;
		release_markers(KERR_NONE);
		tick(H.now + 10000);
		txn_shutdown(H.c, &H.out);
		drain();
		for (int r = 1; r <= H.next_req; r++)
			if (H.answered[r] != 1)
				fail_msg("seed %u: request %d answered %d times", seed, r,
					 H.answered[r]);
		/* Whatever is stored loads again. */
		reload();
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_init_new_id_and_bumps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_ids_max, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_kip360, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_epoch_exhausted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_flow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_flow_and_end_states, setup, teardown),
		cmocka_unit_test_setup_teardown(test_end_in_prepare_states, setup, teardown),
		cmocka_unit_test_setup_teardown(test_end_answer_timing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_partitions_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_partitions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_offsets_and_txn_offset_commit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fence_ongoing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fence_write_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_abort, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_with_pending_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_marker_and_complete_retries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_coordinator, setup, teardown),
		cmocka_unit_test_setup_teardown(test_takeover_mid_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_takeover_prepare_abort, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_rejects_bad_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_id_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_answers_held, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oom_is_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_sequences, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
