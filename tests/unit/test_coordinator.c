/* test_coordinator.c — the group coordinator state machine: join/sync/
 * heartbeat sequences, MEMBER_ID_REQUIRED, the delayed initial rebalance,
 * protocol selection, session expiry, a rebalance with a slow member,
 * rebalance and sync timeouts, static member replacement, stale
 * generation commits, leave during a rebalance, limits, the stored
 * membership (store_version, encode, restore), a completed generation
 * stored before its SyncGroups are answered (PERSIST), and a static
 * member's new id stored before its JoinGroup is answered. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "group/coordinator.h"
#include "proto/kerr.h"

struct h {
	struct coordinator *c;
	struct coord_effects e;
	int64_t now;
};

static int tok[64]; /* request tokens: &tok[i] */

static struct h *h_new(int64_t delay_ms)
{
	struct h *h = calloc(1, sizeof *h);
	struct coord_config cfg;
	coord_config_default(&cfg);
	cfg.initial_rebalance_delay_ms = delay_ms;
	cfg.id_seed = 42;
	assert_int_equal(coord_new(&cfg, &h->c), 0);
	coord_effects_init(&h->e);
	h->now = 1000000;
	return h;
}

static void h_free(struct h *h)
{
	coord_effects_free(&h->e);
	coord_free(h->c);
	free(h);
}

/* The effect answering req among the current effects, or NULL. */
static struct coord_effect *eff(struct h *h, int i)
{
	for (size_t k = 0; k < h->e.n; k++)
		if (h->e.v[k].req == &tok[i])
			return &h->e.v[k];
	return NULL;
}

static void join_p(struct h *h, int req, const char *member, const char *instance,
		   int16_t version, const char *proto, const char *meta, int32_t session_ms)
{
	struct coord_join_protocol p[8];
	int n = 0;
	/* "a,b,c": protocols in preference order */
	for (const char *q = proto; n < 8;) {
		const char *comma = strchr(q, ',');
		int32_t len = comma ? (int32_t)(comma - q) : (int32_t)strlen(q);
		p[n].name = (kstr){ q, len };
		p[n++].metadata = (kbytes){ (const uint8_t *)meta, (int32_t)strlen(meta) };
		if (!comma)
			break;
		q = comma + 1;
	}
	struct coord_join_args a = {
		.group_id = KSTR("g"),
		.member_id = KSTR(member),
		.group_instance_id = instance ? KSTR(instance) : KSTR_NULL,
		.protocol_type = KSTR("consumer"),
		.client_id = KSTR("client"),
		.client_host = KSTR("/127.0.0.1"),
		.session_timeout_ms = session_ms,
		.rebalance_timeout_ms = 30000,
		.api_version = version,
		.protocol_count = n,
		.protocols = p,
	};
	assert_int_equal(coord_join(h->c, h->now, &a, &tok[req], &h->e), 0);
}

static void join(struct h *h, int req, const char *member, const char *instance, int16_t version)
{
	join_p(h, req, member, instance, version, "range", "meta", 10000);
}

/* Every PERSIST effect in the list, in order (NULL past the last). */
static struct coord_effect *persist_eff(struct h *h, int i)
{
	for (size_t k = 0; k < h->e.n; k++)
		if (h->e.v[k].kind == COORD_EFFECT_PERSIST && i-- == 0)
			return &h->e.v[k];
	return NULL;
}

/* The store's outcome for every PERSIST in the list (done again for an
 * old one changes nothing: the coordinator checks the generation, or
 * the static member's id). */
static void persist_all(struct h *h, int16_t error)
{
	for (int i = 0; persist_eff(h, i); i++) {
		struct coord_effect *f = persist_eff(h, i);
		kstr id = KSTR(f->group_id); /* effect memory: stable */
		if (f->member_id)
			coord_static_persist_done(h->c, h->now, id, KSTR(f->member_id), error, &h->e);
		else
			coord_persist_done(h->c, h->now, id, f->generation_id, error, &h->e);
	}
}

/* sync_ stores a completed generation at once unless a test says not. */
static bool auto_persist = true;

static void sync_(struct h *h, int req, const char *member, int32_t gen, int nassign,
		  const char **ids, const char **bytes)
{
	struct coord_sync_assignment as[8];
	for (int i = 0; i < nassign; i++) {
		as[i].member_id = KSTR(ids[i]);
		as[i].assignment = (kbytes){ (const uint8_t *)bytes[i], (int32_t)strlen(bytes[i]) };
	}
	struct coord_sync_args a = {
		.group_id = KSTR("g"),
		.generation_id = gen,
		.member_id = KSTR(member),
		.group_instance_id = KSTR_NULL,
		.protocol_type = KSTR_NULL,
		.protocol_name = KSTR_NULL,
		.assignment_count = nassign,
		.assignments = as,
	};
	assert_int_equal(coord_sync(h->c, h->now, &a, &tok[req], &h->e), 0);
	if (auto_persist)
		persist_all(h, KERR_NONE);
}

static int16_t hb(struct h *h, const char *member, int32_t gen)
{
	return coord_heartbeat(h->c, h->now, KSTR("g"), gen, KSTR(member), KSTR_NULL);
}

static void tick(struct h *h, int64_t ms)
{
	int64_t end = h->now + ms;
	while (h->now < end) {
		h->now += 100;
		coord_tick(h->c, h->now, &h->e);
	}
}

static const struct coord_group *grp(struct h *h)
{
	return coord_group_find(h->c, KSTR("g"));
}

/* Join a dynamic member with v4+ (MEMBER_ID_REQUIRED then the real
 * join); returns its member id (static storage, one per slot). */
static char ids[16][128];

static const char *join_new(struct h *h, int slot, int req_a, int req_b)
{
	join(h, req_a, "", NULL, 5);
	struct coord_effect *f = eff(h, req_a);
	assert_non_null(f);
	assert_int_equal(f->error, KERR_MEMBER_ID_REQUIRED);
	assert_true(strlen(f->member_id) > 7);
	assert_memory_equal(f->member_id, "client-", 7);
	strcpy(ids[slot], f->member_id);
	join(h, req_b, ids[slot], NULL, 5);
	return ids[slot];
}

static void test_single_member(void **state)
{
	struct h *h = h_new(0);
	const char *m = join_new(h, 0, 0, 1);
	struct coord_effect *f = eff(h, 1);
	assert_non_null(f); /* no delay: complete at once */
	assert_int_equal(f->error, KERR_NONE);
	assert_int_equal(f->generation_id, 1);
	assert_string_equal(f->leader_id, m);
	assert_string_equal(f->member_id, m);
	assert_string_equal(f->protocol_name, "range");
	assert_string_equal(f->protocol_type, "consumer");
	assert_int_equal(f->member_count, 1);
	assert_int_equal(f->members[0].metadata_len, 4);
	assert_memory_equal(f->members[0].metadata, "meta", 4);
	assert_int_equal(grp(h)->state, COORD_COMPLETING_REBALANCE);
	coord_effects_reset(&h->e);
	const char *mids[] = { m };
	const char *bytes[] = { "A0" };
	sync_(h, 2, m, 1, 1, mids, bytes);
	f = eff(h, 2);
	assert_non_null(f);
	assert_int_equal(f->error, KERR_NONE);
	assert_int_equal(f->assignment_len, 2);
	assert_memory_equal(f->assignment, "A0", 2);
	assert_int_equal(grp(h)->state, COORD_STABLE);
	assert_int_equal(hb(h, m, 1), KERR_NONE);
	assert_int_equal(hb(h, m, 0), KERR_ILLEGAL_GENERATION);
	assert_int_equal(hb(h, "nobody", 1), KERR_UNKNOWN_MEMBER_ID);
	assert_int_equal(coord_heartbeat(h->c, h->now, KSTR("other"), 1, KSTR(m), KSTR_NULL),
			 KERR_UNKNOWN_MEMBER_ID);
	/* a follower-less stable group: sync again returns the assignment */
	coord_effects_reset(&h->e);
	sync_(h, 3, m, 1, 0, NULL, NULL);
	assert_int_equal(eff(h, 3)->assignment_len, 2);
	h_free(h);
}

/* Another coordinator restores what this one stored (a takeover, a
 * restart): Stable at the generation, the members' heartbeats, commits
 * and syncs go on, silent members expire, a broken record is refused
 * whole. A generation's record goes out as a PERSIST effect; store_version
 * moves where Kafka writes the rest. */
static void test_restore(void **state)
{
	struct h *h = h_new(0);
	const char *m = join_new(h, 0, 0, 1);
	const struct coord_group *g = grp(h);
	uint64_t v0 = g->store_version, c0 = coord_store_changes(h->c);
	const char *mids[] = { m };
	const char *bytes[] = { "A0" };
	sync_(h, 2, m, 1, 1, mids, bytes);
	/* A generation goes out as a PERSIST effect, not by store_version. */
	assert_int_equal(grp(h)->store_version, v0);
	assert_int_equal(coord_store_changes(h->c), c0);
	struct coord_effect *p = persist_eff(h, 0);
	assert_non_null(p);
	assert_null(p->req);
	assert_string_equal(p->group_id, "g");
	assert_int_equal(p->generation_id, 1);
	assert_string_equal(p->protocol_type, "consumer");
	assert_string_equal(p->protocol_name, "range");
	assert_string_equal(p->leader_id, m);
	struct kbuf b;
	kbuf_init(&b);
	coord_group_encode_members(grp(h), &b);
	assert_false(b.oom);
	assert_int_equal(p->members_record_len, b.len);
	assert_memory_equal(p->members_record, b.data, b.len);
	struct coord_group_record rec = { grp(h)->generation_id, "consumer", "range", m, b.data,
					  b.len };
	assert_int_equal(coord_group_restore(h->c, h->now, KSTR("g"), &rec), SL_EBUSY);

	struct h *n = h_new(0);
	n->now = 5000000; /* another process's clock */
	assert_int_equal(coord_group_restore(n->c, n->now, KSTR("g"), &rec), 0);
	g = grp(n);
	assert_int_equal(g->state, COORD_STABLE);
	assert_int_equal(g->generation_id, 1);
	assert_int_equal(g->store_version, 0);
	assert_string_equal(g->leader_id, m);
	assert_int_equal(g->members[0]->assignment_len, 2);
	assert_int_equal(hb(n, m, 1), KERR_NONE);
	assert_int_equal(coord_commit_check(n->c, n->now, KSTR("g"), 1, KSTR(m), KSTR_NULL, 8),
			 KERR_NONE);
	sync_(n, 3, m, 1, 0, NULL, NULL);
	assert_int_equal(eff(n, 3)->assignment_len, 2);
	assert_memory_equal(eff(n, 3)->assignment, "A0", 2);
	/* A member that stops heartbeating expires as ever. */
	tick(n, 10100);
	assert_int_equal(grp(n)->state, COORD_EMPTY);
	assert_int_equal(grp(n)->generation_id, 2);
	assert_true(grp(n)->store_version > 0);
	h_free(n);

	/* Refused whole: a cut record, a leader that is not a member, a
	 * generation below 0; nothing is left in memory. */
	n = h_new(0);
	struct coord_group_record bad = rec;
	bad.members_len = b.len - 1;
	assert_int_equal(coord_group_restore(n->c, n->now, KSTR("g"), &bad), SL_EINVAL);
	bad = rec;
	bad.leader_id = "someone-else";
	assert_int_equal(coord_group_restore(n->c, n->now, KSTR("g"), &bad), SL_EINVAL);
	bad = rec;
	bad.generation_id = -1;
	assert_int_equal(coord_group_restore(n->c, n->now, KSTR("g"), &bad), SL_EINVAL);
	assert_null(grp(n));
	assert_int_equal(coord_group_count(n->c), 0);

	/* A group of many members (written as another coordinator would). */
	struct kbuf many;
	kbuf_init(&many);
	kbuf_put_i16(&many, 3);
	kbuf_put_i32(&many, 40);
	for (int i = 0; i < 40; i++) {
		char id[16];
		snprintf(id, sizeof id, "m-%02d", i);
		kbuf_put_i16(&many, 4);
		kbuf_put(&many, id, 4);
		kbuf_put_i16(&many, -1);
		kbuf_put_i16(&many, 1);
		kbuf_put(&many, "c", 1);
		kbuf_put_i16(&many, 1);
		kbuf_put(&many, "h", 1);
		kbuf_put_i32(&many, 30000);
		kbuf_put_i32(&many, 10000);
		kbuf_put_i32(&many, 2);
		kbuf_put(&many, "sb", 2);
		kbuf_put_i32(&many, 1);
		kbuf_put(&many, "a", 1);
	}
	struct coord_group_record big = { 7, "consumer", "range", "m-39", many.data, many.len };
	assert_int_equal(coord_group_restore(n->c, n->now, KSTR("g"), &big), 0);
	assert_int_equal(grp(n)->member_count, 40);
	assert_int_equal(grp(n)->generation_id, 7);
	assert_int_equal(hb(n, "m-39", 7), KERR_NONE);
	kbuf_free(&many);
	h_free(n);
	kbuf_free(&b);
	h_free(h);
}

static void test_initial_delay_and_two_members(void **state)
{
	struct h *h = h_new(3000);
	const char *a = join_new(h, 0, 0, 1);
	assert_null(eff(h, 1)); /* waiting for the initial delay */
	tick(h, 1000);
	const char *b = join_new(h, 1, 2, 3);
	assert_null(eff(h, 3));
	tick(h, 2000);
	/* the delay was extended because a member arrived */
	assert_null(eff(h, 1));
	tick(h, 3000);
	struct coord_effect *fa = eff(h, 1), *fb = eff(h, 3);
	assert_non_null(fa);
	assert_non_null(fb);
	assert_int_equal(fa->generation_id, 1);
	assert_int_equal(fb->generation_id, 1);
	assert_string_equal(fa->leader_id, a);
	assert_string_equal(fb->leader_id, a);
	assert_int_equal(fa->member_count, 2);
	assert_int_equal(fb->member_count, 0);
	coord_effects_reset(&h->e);
	/* follower syncs first and waits for the leader */
	sync_(h, 4, b, 1, 0, NULL, NULL);
	assert_null(eff(h, 4));
	assert_int_equal(hb(h, b, 1), KERR_NONE); /* heartbeats in CompletingRebalance are fine */
	const char *mids[] = { a, b, "ghost" };
	const char *bytes[] = { "AA", "BBB", "GG" };
	sync_(h, 5, a, 1, 3, mids, bytes);
	assert_int_equal(eff(h, 4)->error, KERR_NONE);
	assert_int_equal(eff(h, 4)->assignment_len, 3);
	assert_memory_equal(eff(h, 4)->assignment, "BBB", 3);
	assert_int_equal(eff(h, 5)->assignment_len, 2);
	assert_int_equal(grp(h)->state, COORD_STABLE);
	h_free(h);
}

/* A third member joins a stable group: the others learn of it through
 * heartbeats (REBALANCE_IN_PROGRESS) and rejoin; a slow member delays the
 * rebalance until it rejoins, within the rebalance timeout. */
static void test_rebalance_with_slow_member(void **state)
{
	struct h *h = h_new(0);
	const char *a = join_new(h, 0, 0, 1);
	const char *mids1[] = { a };
	const char *b1[] = { "x" };
	sync_(h, 2, a, 1, 1, mids1, b1);
	coord_effects_reset(&h->e);
	const char *b = join_new(h, 1, 3, 4);
	assert_null(eff(h, 4));
	assert_int_equal(grp(h)->state, COORD_PREPARING_REBALANCE);
	assert_int_equal(hb(h, a, 1), KERR_REBALANCE_IN_PROGRESS);
	tick(h, 5000); /* a is slow, but still heartbeating */
	assert_int_equal(hb(h, a, 1), KERR_REBALANCE_IN_PROGRESS);
	assert_null(eff(h, 4));
	join(h, 5, a, NULL, 5);
	assert_non_null(eff(h, 4));
	assert_non_null(eff(h, 5));
	assert_int_equal(eff(h, 5)->generation_id, 2);
	assert_string_equal(eff(h, 5)->leader_id, a); /* the leader stays */
	assert_int_equal(eff(h, 5)->member_count, 2);
	(void)b;
	h_free(h);
}

/* A member that does not rejoin within the rebalance timeout is dropped. */
static void test_rebalance_timeout_drops_member(void **state)
{
	struct h *h = h_new(0);
	const char *a = join_new(h, 0, 0, 1);
	const char *mids1[] = { a };
	const char *b1[] = { "x" };
	sync_(h, 2, a, 1, 1, mids1, b1);
	coord_effects_reset(&h->e);
	const char *b = join_new(h, 1, 3, 4);
	/* a keeps heartbeating so its session lives, but never rejoins */
	for (int i = 0; i < 35; i++) {
		tick(h, 1000);
		hb(h, a, 1);
	}
	struct coord_effect *f = eff(h, 4);
	assert_non_null(f);
	assert_int_equal(f->generation_id, 2);
	assert_string_equal(f->leader_id, b);
	assert_int_equal(f->member_count, 1);
	assert_int_equal(hb(h, a, 2), KERR_UNKNOWN_MEMBER_ID);
	h_free(h);
}

static void test_session_expiry(void **state)
{
	struct h *h = h_new(0);
	const char *a = join_new(h, 0, 0, 1);
	const char *b = join_new(h, 1, 2, 3);
	/* b's join made a rebalance; a rejoins */
	join(h, 4, a, NULL, 5);
	assert_int_equal(eff(h, 3)->generation_id, 2);
	const char *mids[] = { a, b };
	const char *bytes[] = { "A", "B" };
	sync_(h, 5, a, 2, 2, mids, bytes);
	sync_(h, 6, b, 2, 0, NULL, NULL);
	assert_int_equal(grp(h)->state, COORD_STABLE);
	coord_effects_reset(&h->e);
	/* b goes silent; a heartbeats every second */
	for (int i = 0; i < 9; i++) {
		tick(h, 1000);
		assert_int_equal(hb(h, a, 2), KERR_NONE);
	}
	tick(h, 1100); /* b's 10 s session is over */
	assert_int_equal(hb(h, a, 2), KERR_REBALANCE_IN_PROGRESS);
	assert_int_equal(hb(h, b, 2), KERR_UNKNOWN_MEMBER_ID);
	join(h, 7, a, NULL, 5);
	assert_int_equal(eff(h, 7)->generation_id, 3);
	assert_int_equal(eff(h, 7)->member_count, 1);
	/* a expires too: the group is empty */
	coord_effects_reset(&h->e);
	tick(h, 60000);
	assert_int_equal(grp(h)->state, COORD_EMPTY);
	assert_int_equal(grp(h)->member_count, 0);
	h_free(h);
}

/* coord_next_deadline names the moment a member's session ends: a tick
 * one ms before it keeps the member, a tick at it removes it (Kafka
 * expires at the deadline; the service arms a timer for this time). */
static void test_next_deadline(void **state)
{
	struct h *h = h_new(0);
	assert_int_equal(coord_next_deadline(h->c), INT64_MAX);
	const char *a = join_new(h, 0, 0, 1);
	const char *mids[] = { a };
	const char *bytes[] = { "A" };
	sync_(h, 2, a, 1, 1, mids, bytes);
	assert_int_equal(grp(h)->state, COORD_STABLE);
	h->now += 1234;
	assert_int_equal(hb(h, a, 1), KERR_NONE);
	int64_t beat = h->now;
	/* the member id handed out with MEMBER_ID_REQUIRED was used: what is
	 * left is a's session */
	assert_int_equal(coord_next_deadline(h->c), beat + 10000);
	coord_effects_reset(&h->e);
	coord_tick(h->c, beat + 9999, &h->e);
	assert_int_equal(grp(h)->member_count, 1);
	coord_tick(h->c, beat + 10000, &h->e);
	assert_int_equal(grp(h)->member_count, 0);
	assert_int_equal(grp(h)->state, COORD_EMPTY);
	assert_int_equal(coord_next_deadline(h->c), INT64_MAX);
	h_free(h);
}

/* The leader never sends SyncGroup: after the rebalance timeout it is
 * removed and the waiting follower is told to rejoin. */
static void test_sync_timeout(void **state)
{
	struct h *h = h_new(0);
	const char *a = join_new(h, 0, 0, 1);
	const char *b = join_new(h, 1, 2, 3);
	join(h, 4, a, NULL, 5);
	coord_effects_reset(&h->e);
	sync_(h, 5, b, 2, 0, NULL, NULL);
	/* a heartbeats (so its session lives) but never syncs */
	for (int i = 0; i < 31; i++) {
		tick(h, 1000);
		hb(h, a, 2);
	}
	assert_non_null(eff(h, 5));
	assert_int_equal(eff(h, 5)->error, KERR_REBALANCE_IN_PROGRESS);
	assert_int_equal(hb(h, a, 2), KERR_UNKNOWN_MEMBER_ID);
	join(h, 6, b, NULL, 5);
	assert_int_equal(eff(h, 6)->generation_id, 3);
	assert_string_equal(eff(h, 6)->leader_id, b);
	h_free(h);
}

static void test_stable_pending_sync_expiry(void **state)
{
	struct h *h = h_new(0);
	const char *a = join_new(h, 0, 0, 1);
	const char *b = join_new(h, 1, 2, 3);
	join(h, 4, a, NULL, 5);
	assert_non_null(eff(h, 4));
	int32_t gen = eff(h, 4)->generation_id;
	char leader[128];
	strcpy(leader, eff(h, 4)->leader_id);
	const char *follower = strcmp(leader, a) == 0 ? b : a;
	coord_effects_reset(&h->e);
	/* The leader syncs: the group is Stable. The follower heartbeats but
	 * never syncs. */
	const char *who[2] = { a, b };
	const char *what[2] = { "x", "y" };
	sync_(h, 5, leader, gen, 2, who, what);
	assert_non_null(eff(h, 5));
	assert_int_equal(eff(h, 5)->error, 0);
	for (int i = 0; i < 31; i++) {
		tick(h, 1000);
		hb(h, leader, gen);
		hb(h, follower, gen);
	}
	/* After the rebalance timeout (30 s) the follower is gone and the
	 * leader is told to rejoin. */
	assert_int_equal(hb(h, follower, gen), KERR_UNKNOWN_MEMBER_ID);
	assert_int_equal(hb(h, leader, gen), KERR_REBALANCE_IN_PROGRESS);
	h_free(h);
}

static void test_group_metadata_budget(void **state)
{
	struct h *h = h_new(0);
	char *big = malloc(1000001);
	memset(big, 'm', 1000000);
	big[1000000] = 0;
	/* 33 members of 1,000,000 bytes fit under the 32 MiB group budget;
	 * the 34th would not: GROUP_MAX_SIZE_REACHED, the others unharmed. */
	for (int i = 0; i < 34; i++)
		join_p(h, i, "", NULL, 3, "range", big, 10000);
	for (int i = 0; i < 33; i++)
		assert_true(!eff(h, i) || eff(h, i)->error != KERR_GROUP_MAX_SIZE_REACHED);
	assert_non_null(eff(h, 33));
	assert_int_equal(eff(h, 33)->error, KERR_GROUP_MAX_SIZE_REACHED);
	free(big);
	h_free(h);
}

/* A v3 join (no MEMBER_ID_REQUIRED) to any group with metadata_len
 * bytes of metadata; returns the error answered now (-1: pending). */
static int join_g(struct h *h, int req, const char *group, const char *member, int32_t metadata_len)
{
	static uint8_t meta[64 * 1024];
	struct coord_join_protocol p = { KSTR("range"), { meta, metadata_len } };
	struct coord_join_args a = {
		.group_id = KSTR(group), .member_id = KSTR(member), .group_instance_id = KSTR_NULL,
		.protocol_type = KSTR("consumer"), .client_id = KSTR("c"), .client_host = KSTR("h"),
		.session_timeout_ms = 10000, .rebalance_timeout_ms = 10000, .api_version = 3,
		.protocol_count = 1, .protocols = &p,
	};
	assert_int_equal(coord_join(h->c, h->now, &a, &tok[req], &h->e), 0);
	struct coord_effect *f = eff(h, req);
	return f ? f->error : -1;
}

/* The coordinator-wide budget (lowered here): joins to any group beyond
 * it get GROUP_MAX_SIZE_REACHED; a member rejoining with what it already
 * holds is not refused; leaving gives the bytes back. */
static void test_coordinator_metadata_budget(void **state)
{
	struct coord_config cfg;
	coord_config_default(&cfg);
	cfg.initial_rebalance_delay_ms = 0;
	cfg.metadata_bytes_max = 10000;
	struct h *h = calloc(1, sizeof *h);
	assert_int_equal(coord_new(&cfg, &h->c), 0);
	coord_effects_init(&h->e);
	h->now = 1000000;
	assert_int_equal(join_g(h, 0, "g", "", 3000), KERR_NONE);
	char a[128];
	strcpy(a, eff(h, 0)->member_id);
	join_g(h, 1, "g2", "", 3000);
	join_g(h, 2, "g3", "", 3000);
	assert_int_equal(grp(h)->metadata_bytes, 3000);
	coord_effects_reset(&h->e);
	/* 12000 > 10000 in all */
	assert_int_equal(join_g(h, 3, "g4", "", 3000), KERR_GROUP_MAX_SIZE_REACHED);
	const struct coord_group *g4 = coord_group_find(h->c, KSTR("g4"));
	assert_true(!g4 || g4->member_count == 0);
	/* a rejoin replaces what the member holds: 9000 - 3000 + 4000 fits */
	assert_int_equal(join_g(h, 4, "g", a, 4000), KERR_NONE);
	assert_int_equal(grp(h)->metadata_bytes, 4000);
	assert_int_equal(join_g(h, 5, "g", a, 5000), KERR_GROUP_MAX_SIZE_REACHED);
	/* leaving gives the bytes back */
	bool found;
	assert_int_equal(coord_leave(h->c, h->now, KSTR("g"), KSTR(a), KSTR_NULL, &found, &h->e),
			 KERR_NONE);
	assert_int_equal(grp(h)->metadata_bytes, 0);
	coord_effects_reset(&h->e);
	assert_int_equal(join_g(h, 6, "g4", "", 3000), KERR_NONE);
	h_free(h);
}

static void test_member_id_required_and_old_versions(void **state)
{
	struct h *h = h_new(0);
	/* v3: no MEMBER_ID_REQUIRED round trip */
	join(h, 0, "", NULL, 3);
	struct coord_effect *f = eff(h, 0);
	assert_non_null(f);
	assert_int_equal(f->error, KERR_NONE);
	assert_int_equal(f->generation_id, 1);
	/* unknown member id to a known group */
	join(h, 1, "client-bogus", NULL, 5);
	assert_int_equal(eff(h, 1)->error, KERR_UNKNOWN_MEMBER_ID);
	/* unknown member id to an unknown group */
	struct coord_join_protocol p = { KSTR("range"), { (const uint8_t *)"m", 1 } };
	struct coord_join_args a = {
		.group_id = KSTR("nope"), .member_id = KSTR("x"), .group_instance_id = KSTR_NULL,
		.protocol_type = KSTR("consumer"), .client_id = KSTR("c"), .client_host = KSTR("h"),
		.session_timeout_ms = 10000, .rebalance_timeout_ms = 10000, .api_version = 5,
		.protocol_count = 1, .protocols = &p,
	};
	coord_join(h->c, h->now, &a, &tok[2], &h->e);
	assert_int_equal(eff(h, 2)->error, KERR_UNKNOWN_MEMBER_ID);
	/* bad session timeout, empty group id, no protocols */
	a.member_id = KSTR("");
	a.session_timeout_ms = 10;
	coord_join(h->c, h->now, &a, &tok[3], &h->e);
	assert_int_equal(eff(h, 3)->error, KERR_INVALID_SESSION_TIMEOUT);
	a.session_timeout_ms = 10000;
	a.group_id = KSTR("");
	coord_join(h->c, h->now, &a, &tok[4], &h->e);
	assert_int_equal(eff(h, 4)->error, KERR_INVALID_GROUP_ID);
	a.group_id = KSTR("nope");
	a.protocol_count = 0;
	coord_join(h->c, h->now, &a, &tok[5], &h->e);
	assert_int_equal(eff(h, 5)->error, KERR_INCONSISTENT_GROUP_PROTOCOL);
	/* a pending member id that is never used expires */
	join(h, 6, "", NULL, 5);
	assert_int_equal(eff(h, 6)->error, KERR_MEMBER_ID_REQUIRED);
	assert_int_equal(grp(h)->pending_count, 1);
	tick(h, 11000);
	assert_int_equal(grp(h)->pending_count, 0);
	h_free(h);
}

static void test_protocol_selection(void **state)
{
	struct h *h = h_new(100);
	join_p(h, 0, "", NULL, 3, "roundrobin,range", "m", 10000);
	join_p(h, 1, "", NULL, 3, "range,roundrobin", "m", 10000);
	join_p(h, 2, "", NULL, 3, "range", "m", 10000);
	/* no common protocol */
	join_p(h, 3, "", NULL, 3, "sticky", "m", 10000);
	assert_int_equal(eff(h, 3)->error, KERR_INCONSISTENT_GROUP_PROTOCOL);
	tick(h, 200);
	assert_int_equal(eff(h, 0)->error, KERR_NONE);
	assert_string_equal(eff(h, 0)->protocol_name, "range");
	assert_string_equal(grp(h)->protocol_name, "range");
	h_free(h);

	h = h_new(100);
	join_p(h, 0, "", NULL, 3, "cooperative-sticky,range", "m", 10000);
	join_p(h, 1, "", NULL, 3, "cooperative-sticky,range", "m", 10000);
	join_p(h, 2, "", NULL, 3, "range,cooperative-sticky", "m", 10000);
	tick(h, 200);
	assert_string_equal(eff(h, 2)->protocol_name, "cooperative-sticky");
	h_free(h);

	/* Real voting among three protocols every member supports: the first
	 * member prefers roundrobin, but two of three vote range. */
	h = h_new(100);
	join_p(h, 0, "", NULL, 3, "roundrobin,range,sticky", "m", 10000);
	join_p(h, 1, "", NULL, 3, "range,roundrobin,sticky", "m", 10000);
	join_p(h, 2, "", NULL, 3, "range,sticky,roundrobin", "m", 10000);
	tick(h, 200);
	assert_string_equal(eff(h, 0)->protocol_name, "range");
	h_free(h);

	/* A member's vote goes to its first choice that all support: d's
	 * "only-d" is not common, so d votes sticky, which then beats
	 * range 2 to 1. */
	h = h_new(100);
	join_p(h, 0, "", NULL, 3, "range,sticky", "m", 10000);
	join_p(h, 1, "", NULL, 3, "sticky,range", "m", 10000);
	join_p(h, 2, "", NULL, 3, "only-d,sticky,range", "m", 10000);
	tick(h, 200);
	assert_string_equal(eff(h, 0)->protocol_name, "sticky");
	assert_string_equal(grp(h)->protocol_name, "sticky");
	h_free(h);
}

/* SyncGroup v5+ names the protocol: a mismatch with the group's is
 * INCONSISTENT_GROUP_PROTOCOL; null (older versions) is not checked. */
static void test_sync_protocol_check(void **state)
{
	struct h *h = h_new(0);
	join(h, 0, "", NULL, 3);
	char m[128];
	strcpy(m, eff(h, 0)->member_id);
	struct coord_sync_args a = {
		.group_id = KSTR("g"), .generation_id = 1, .member_id = KSTR(m),
		.group_instance_id = KSTR_NULL, .protocol_type = KSTR("consumer"),
		.protocol_name = KSTR("roundrobin"),
	};
	coord_sync(h->c, h->now, &a, &tok[1], &h->e);
	assert_int_equal(eff(h, 1)->error, KERR_INCONSISTENT_GROUP_PROTOCOL);
	a.protocol_type = KSTR("connect");
	a.protocol_name = KSTR("range");
	coord_sync(h->c, h->now, &a, &tok[2], &h->e);
	assert_int_equal(eff(h, 2)->error, KERR_INCONSISTENT_GROUP_PROTOCOL);
	a.protocol_type = KSTR("consumer");
	coord_sync(h->c, h->now, &a, &tok[3], &h->e);
	persist_all(h, KERR_NONE);
	assert_int_equal(eff(h, 3)->error, KERR_NONE);
	a.protocol_type = KSTR_NULL;
	a.protocol_name = KSTR_NULL;
	coord_sync(h->c, h->now, &a, &tok[4], &h->e);
	assert_int_equal(eff(h, 4)->error, KERR_NONE);
	h_free(h);
}

static void test_static_member_replacement(void **state)
{
	struct h *h = h_new(0);
	join(h, 0, "", "inst-1", 5); /* static: no MEMBER_ID_REQUIRED */
	struct coord_effect *f = eff(h, 0);
	assert_int_equal(f->error, KERR_NONE);
	char old[128];
	strcpy(old, f->member_id);
	/* Kafka's static member ids start with the group.instance.id */
	assert_memory_equal(old, "inst-1-", 7);
	const char *mids[] = { old };
	const char *bytes[] = { "P0" };
	sync_(h, 1, old, 1, 1, mids, bytes);
	assert_int_equal(grp(h)->state, COORD_STABLE);
	coord_effects_reset(&h->e);
	/* the same instance restarts: new member id, no rebalance; the id
	 * is stored before the JoinGroup hears it, the old one fenced
	 * meanwhile */
	join(h, 2, "", "inst-1", 5);
	assert_null(eff(h, 2));
	f = persist_eff(h, 0);
	assert_non_null(f);
	assert_int_equal(f->generation_id, 1);
	assert_memory_equal(f->member_id, "inst-1-", 7);
	assert_string_not_equal(f->member_id, old);
	assert_string_equal(f->leader_id, f->member_id); /* it led */
	assert_int_equal(coord_heartbeat(h->c, h->now, KSTR("g"), 1, KSTR(old), KSTR("inst-1")),
			 KERR_FENCED_INSTANCE_ID);
	persist_all(h, KERR_NONE);
	f = eff(h, 2);
	assert_non_null(f);
	assert_string_equal(f->member_id, persist_eff(h, 0)->member_id);
	/* v5: the old leader id, so it does not assign in a stable group */
	assert_string_equal(f->leader_id, old);
	assert_int_equal(f->error, KERR_NONE);
	assert_string_not_equal(f->member_id, old);
	assert_int_equal(f->generation_id, 1);
	char new_id[128];
	strcpy(new_id, f->member_id);
	assert_int_equal(grp(h)->state, COORD_STABLE);
	/* the old member is fenced */
	assert_int_equal(coord_heartbeat(h->c, h->now, KSTR("g"), 1, KSTR(old), KSTR("inst-1")),
			 KERR_FENCED_INSTANCE_ID);
	assert_int_equal(coord_commit_check(h->c, h->now, KSTR("g"), 1, KSTR(old), KSTR("inst-1"), 8),
			 KERR_FENCED_INSTANCE_ID);
	join(h, 3, old, "inst-1", 5);
	assert_int_equal(eff(h, 3)->error, KERR_FENCED_INSTANCE_ID);
	/* the new one syncs and keeps the assignment */
	sync_(h, 4, new_id, 1, 0, NULL, NULL);
	assert_int_equal(eff(h, 4)->error, KERR_NONE);
	assert_int_equal(eff(h, 4)->assignment_len, 2);
	assert_int_equal(coord_heartbeat(h->c, h->now, KSTR("g"), 1, KSTR(new_id), KSTR("inst-1")),
			 KERR_NONE);
	coord_effects_reset(&h->e);
	/* A static member is not removed for missing a rebalance: a dynamic
	 * member joins, the static one only heartbeats (its session lives)
	 * and never rejoins. At the rebalance timeout the new generation
	 * still lists it; the newcomer leads, since the old leader did not
	 * rejoin. */
	const char *d = join_new(h, 5, 5, 6);
	assert_int_equal(grp(h)->state, COORD_PREPARING_REBALANCE);
	for (int i = 0; i < 31 && !eff(h, 6); i++) {
		tick(h, 1000);
		coord_heartbeat(h->c, h->now, KSTR("g"), 1, KSTR(new_id), KSTR("inst-1"));
	}
	f = eff(h, 6);
	assert_non_null(f);
	assert_int_equal(f->error, KERR_NONE);
	assert_int_equal(f->generation_id, 2);
	assert_string_equal(f->leader_id, d);
	assert_int_equal(f->member_count, 2);
	assert_int_equal(grp(h)->member_count, 2);
	/* still a member, one generation behind */
	assert_int_equal(coord_heartbeat(h->c, h->now, KSTR("g"), 1, KSTR(new_id), KSTR("inst-1")),
			 KERR_ILLEGAL_GENERATION);
	h_free(h);
}

/* A static member's new id that the store could not take: as Kafka's
 * updateStaticMemberAndRebalance, the old id comes back (with its
 * protocols and leadership), the new one is unknown, and the JoinGroup
 * hears the store's error with no member id. */
static void test_static_persist_failed(void **state)
{
	struct h *h = h_new(0);
	const char *a = join_new(h, 0, 0, 1);
	join(h, 2, "", "inst-1", 5);
	char old[128];
	/* a second member: the group rebalances to generation 2 */
	join(h, 0, a, NULL, 5);
	strcpy(old, eff(h, 2)->member_id);
	const char *mids[] = { a, old };
	const char *bytes[] = { "PA", "P1" };
	sync_(h, 3, a, 2, 2, mids, bytes);
	sync_(h, 4, old, 2, 0, NULL, NULL);
	assert_int_equal(eff(h, 4)->assignment_len, 2);
	assert_int_equal(grp(h)->state, COORD_STABLE);
	size_t bytes0 = grp(h)->metadata_bytes;
	coord_effects_reset(&h->e);

	const int16_t errs[] = { KERR_NOT_COORDINATOR, KERR_COORDINATOR_NOT_AVAILABLE };
	for (int i = 0; i < 2; i++) {
		join_p(h, 5, "", "inst-1", 5, "range", "other-metadata", 10000);
		assert_null(eff(h, 5));
		char new_id[128];
		strcpy(new_id, persist_eff(h, 0)->member_id);
		persist_all(h, errs[i]);
		struct coord_effect *f = eff(h, 5);
		assert_non_null(f);
		assert_int_equal(f->error, errs[i]);
		assert_string_equal(f->member_id, "");
		assert_int_equal(f->generation_id, 2);
		assert_string_equal(f->leader_id, a);
		/* nothing changed: the old id works, the new one is unknown */
		assert_int_equal(grp(h)->state, COORD_STABLE);
		assert_int_equal(grp(h)->member_count, 2);
		assert_int_equal(grp(h)->metadata_bytes, bytes0);
		assert_memory_equal(grp(h)->members[1]->protocols[0].metadata, "meta", 4);
		assert_int_equal(coord_heartbeat(h->c, h->now, KSTR("g"), 2, KSTR(old),
						 KSTR("inst-1")),
				 KERR_NONE);
		assert_int_equal(coord_heartbeat(h->c, h->now, KSTR("g"), 2, KSTR(new_id),
						 KSTR("inst-1")),
				 KERR_FENCED_INSTANCE_ID);
		coord_effects_reset(&h->e);
	}
	/* the old id still syncs with its assignment */
	sync_(h, 6, old, 2, 0, NULL, NULL);
	assert_int_equal(eff(h, 6)->error, KERR_NONE);
	assert_memory_equal(eff(h, 6)->assignment, "P1", 2);
	coord_effects_reset(&h->e);

	/* A follower's v9 rejoin, stored: the leader's id, no members, no
	 * skipping (only a leader skips assigning). */
	join(h, 7, "", "inst-1", 9);
	assert_null(eff(h, 7));
	persist_all(h, KERR_NONE);
	assert_int_equal(eff(h, 7)->error, KERR_NONE);
	assert_string_equal(eff(h, 7)->leader_id, a);
	assert_int_equal(eff(h, 7)->member_count, 0);
	assert_false(eff(h, 7)->skip_assignment);
	assert_int_equal(coord_heartbeat(h->c, h->now, KSTR("g"), 2, KSTR(old), KSTR("inst-1")),
			 KERR_FENCED_INSTANCE_ID);
	h_free(h);
}

/* A static member's new id whose write's outcome never comes (its
 * PERSIST dropped from a list that ran out of memory in a later effect,
 * or a write stuck in the store): its JoinGroup does not wait forever,
 * as SyncGroups do not, but until its rebalance timeout (a deadline the
 * caller's timer sees), then hears REBALANCE_IN_PROGRESS with no member
 * id (Kafka's mapping of a timed-out write) and the old id is back; a
 * late outcome changes nothing. */
static void test_static_persist_deadline(void **state)
{
	struct h *h = h_new(0);
	join(h, 0, "", "inst-1", 5);
	char old[128];
	strcpy(old, eff(h, 0)->member_id);
	const char *mids[] = { old };
	const char *bytes[] = { "P0" };
	sync_(h, 1, old, 1, 1, mids, bytes);
	assert_int_equal(grp(h)->state, COORD_STABLE);
	coord_effects_reset(&h->e);

	int64_t start = h->now;
	join(h, 2, "", "inst-1", 5); /* rebalance timeout 30 s */
	assert_null(eff(h, 2));
	char new_id[128];
	strcpy(new_id, persist_eff(h, 0)->member_id);
	coord_effects_reset(&h->e); /* the PERSIST is never performed */
	assert_int_equal(coord_next_deadline(h->c), start + 30000);
	h->now = start + 29999;
	coord_tick(h->c, h->now, &h->e);
	assert_null(eff(h, 2));
	h->now = start + 30000;
	coord_tick(h->c, h->now, &h->e);
	struct coord_effect *f = eff(h, 2);
	assert_non_null(f);
	assert_int_equal(f->error, KERR_REBALANCE_IN_PROGRESS);
	assert_string_equal(f->member_id, "");
	assert_int_equal(f->generation_id, 1);
	assert_int_equal(grp(h)->state, COORD_STABLE);
	assert_int_equal(coord_heartbeat(h->c, h->now, KSTR("g"), 1, KSTR(old), KSTR("inst-1")),
			 KERR_NONE);
	assert_int_equal(coord_heartbeat(h->c, h->now, KSTR("g"), 1, KSTR(new_id),
					 KSTR("inst-1")),
			 KERR_FENCED_INSTANCE_ID);
	coord_effects_reset(&h->e);
	/* the outcome arrives after all: nothing changes */
	coord_static_persist_done(h->c, h->now, KSTR("g"), KSTR(new_id), KERR_NONE, &h->e);
	assert_int_equal(h->e.n, 0);
	assert_int_equal(coord_heartbeat(h->c, h->now, KSTR("g"), 1, KSTR(old), KSTR("inst-1")),
			 KERR_NONE);
	assert_true(coord_next_deadline(h->c) > h->now + 1000); /* its session only */
	h_free(h);
}

/* Outcomes that no longer apply change nothing: a replacement overtaken
 * by another rejoin of the same instance, a group that left Stable while
 * the write was out (its rebalance answers the JoinGroup). */
static void test_static_persist_overtaken(void **state)
{
	struct h *h = h_new(0);
	join(h, 0, "", "inst-1", 9);
	char old[128];
	strcpy(old, eff(h, 0)->member_id);
	const char *mids[] = { old };
	const char *bytes[] = { "P0" };
	sync_(h, 1, old, 1, 1, mids, bytes);
	coord_effects_reset(&h->e);

	join(h, 2, "", "inst-1", 9);
	join(h, 3, "", "inst-1", 9);
	assert_int_equal(eff(h, 2)->error, KERR_FENCED_INSTANCE_ID);
	assert_null(eff(h, 3));
	char first[128], second[128];
	strcpy(first, persist_eff(h, 0)->member_id);
	strcpy(second, persist_eff(h, 1)->member_id);
	coord_static_persist_done(h->c, h->now, KSTR("g"), KSTR(first), KERR_NOT_COORDINATOR, &h->e);
	assert_null(eff(h, 3));
	assert_string_equal(grp(h)->leader_id, second);
	coord_static_persist_done(h->c, h->now, KSTR("g"), KSTR(second), KERR_NONE, &h->e);
	struct coord_effect *f = eff(h, 3);
	assert_non_null(f);
	assert_int_equal(f->error, KERR_NONE);
	assert_string_equal(f->member_id, second);
	/* v9 leader: told it leads, skips assigning */
	assert_string_equal(f->leader_id, second);
	assert_true(f->skip_assignment);
	assert_int_equal(f->member_count, 1);
	/* a second outcome for it changes nothing */
	size_t n = h->e.n;
	coord_static_persist_done(h->c, h->now, KSTR("g"), KSTR(second), KERR_NOT_COORDINATOR, &h->e);
	assert_int_equal(h->e.n, n);
	assert_string_equal(grp(h)->leader_id, second);
	coord_effects_reset(&h->e);

	/* the write out, a dynamic member joins: a rebalance */
	join(h, 4, "", "inst-1", 9);
	char third[128];
	strcpy(third, persist_eff(h, 0)->member_id);
	join(h, 5, "", NULL, 3);
	assert_int_equal(grp(h)->state, COORD_COMPLETING_REBALANCE);
	coord_static_persist_done(h->c, h->now, KSTR("g"), KSTR(third), KERR_NOT_COORDINATOR, &h->e);
	/* the rebalance answered it, under its new id, which stays */
	assert_int_equal(eff(h, 4)->error, KERR_NONE);
	assert_int_equal(eff(h, 4)->generation_id, 2);
	assert_string_equal(eff(h, 4)->member_id, third);
	assert_int_equal(grp(h)->member_count, 2);
	assert_string_equal(grp(h)->members[0]->member_id, third);
	h_free(h);
}

/* A lone member is not held for a second delay: only arrivals during
 * the delay extend it. */
static void test_initial_delay_single(void **state)
{
	struct h *h = h_new(3000);
	join(h, 0, "", NULL, 3);
	tick(h, 2900);
	assert_null(eff(h, 0));
	tick(h, 200);
	assert_non_null(eff(h, 0));
	assert_int_equal(eff(h, 0)->generation_id, 1);
	h_free(h);
}

/* A static member replaced while its JoinGroup is pending: the pending
 * request gets FENCED_INSTANCE_ID. */
static void test_static_fenced_pending_join(void **state)
{
	struct h *h = h_new(3000);
	join(h, 0, "", "inst-1", 5);
	assert_null(eff(h, 0));
	join(h, 1, "", "inst-1", 5);
	assert_non_null(eff(h, 0));
	assert_int_equal(eff(h, 0)->error, KERR_FENCED_INSTANCE_ID);
	assert_null(eff(h, 1));
	tick(h, 3100); /* a replacement is no new member: no extension */
	assert_int_equal(eff(h, 1)->error, KERR_NONE);
	assert_int_equal(grp(h)->member_count, 1);
	h_free(h);
}

static void test_stale_generation_commit(void **state)
{
	struct h *h = h_new(0);
	const char *a = join_new(h, 0, 0, 1);
	const char *mids1[] = { a };
	const char *b1[] = { "x" };
	sync_(h, 2, a, 1, 1, mids1, b1);
	assert_int_equal(coord_commit_check(h->c, h->now, KSTR("g"), 1, KSTR(a), KSTR_NULL, 8), KERR_NONE);
	const char *b = join_new(h, 1, 3, 4);
	/* PreparingRebalance: the current generation may still commit */
	assert_int_equal(coord_commit_check(h->c, h->now, KSTR("g"), 1, KSTR(a), KSTR_NULL, 8), KERR_NONE);
	join(h, 5, a, NULL, 5);
	/* CompletingRebalance: REBALANCE_IN_PROGRESS; the old generation is stale */
	assert_int_equal(coord_commit_check(h->c, h->now, KSTR("g"), 2, KSTR(a), KSTR_NULL, 8),
			 KERR_REBALANCE_IN_PROGRESS);
	assert_int_equal(coord_commit_check(h->c, h->now, KSTR("g"), 1, KSTR(a), KSTR_NULL, 8),
			 KERR_ILLEGAL_GENERATION);
	assert_int_equal(coord_commit_check(h->c, h->now, KSTR("g"), 2, KSTR("zz"), KSTR_NULL, 8),
			 KERR_UNKNOWN_MEMBER_ID);
	/* a simple (generation -1) commit to a group with members */
	assert_int_equal(coord_commit_check(h->c, h->now, KSTR("g"), -1, KSTR(""), KSTR_NULL, 8),
			 KERR_UNKNOWN_MEMBER_ID);
	/* unknown group: simple commit creates it; a generation is illegal */
	assert_int_equal(coord_commit_check(h->c, h->now, KSTR("simple"), -1, KSTR(""), KSTR_NULL, 8),
			 KERR_NONE);
	assert_non_null(coord_group_find(h->c, KSTR("simple")));
	assert_int_equal(coord_commit_check(h->c, h->now, KSTR("gone"), 3, KSTR("m"), KSTR_NULL, 8),
			 KERR_ILLEGAL_GENERATION);
	/* v9+: GROUP_ID_NOT_FOUND for an unknown group (Kafka's
	 * OffsetMetadataManager.validateOffsetCommit) */
	assert_int_equal(coord_commit_check(h->c, h->now, KSTR("gone"), 3, KSTR("m"), KSTR_NULL, 9),
			 KERR_GROUP_ID_NOT_FOUND);
	/* generation -1 on an Empty group is accepted whatever the member id
	 * or instance id says (admin clients; ClassicGroup.validateOffsetCommit) */
	assert_int_equal(coord_commit_check(h->c, h->now, KSTR("simple"), -1, KSTR("stale"), KSTR_NULL, 8),
			 KERR_NONE);
	assert_int_equal(coord_commit_check(h->c, h->now, KSTR("simple"), -1, KSTR(""), KSTR("inst"), 8),
			 KERR_NONE);
	/* sync with the stale generation */
	sync_(h, 6, b, 1, 0, NULL, NULL);
	assert_int_equal(eff(h, 6)->error, KERR_ILLEGAL_GENERATION);
	h_free(h);
}

/* TxnOffsetCommit's checks (GroupCoordinator.handleTxnCommitOffsets):
 * where they part from a plain commit's. */
static void test_txn_commit_check(void **state)
{
	struct h *h = h_new(0);
	const char *a = join_new(h, 0, 0, 1);
	const char *mids1[] = { a };
	const char *b1[] = { "x" };
	sync_(h, 2, a, 1, 1, mids1, b1);
	assert_int_equal(coord_txn_commit_check(h->c, h->now, KSTR("g"), 1, KSTR(a), KSTR_NULL),
			 KERR_NONE);
	assert_int_equal(coord_txn_commit_check(h->c, h->now, KSTR("g"), 0, KSTR(a), KSTR_NULL),
			 KERR_ILLEGAL_GENERATION);
	assert_int_equal(coord_txn_commit_check(h->c, h->now, KSTR("g"), 1, KSTR("zz"), KSTR_NULL),
			 KERR_UNKNOWN_MEMBER_ID);
	assert_int_equal(coord_txn_commit_check(h->c, h->now, KSTR("g"), -1, KSTR("zz"), KSTR_NULL),
			 KERR_UNKNOWN_MEMBER_ID);
	/* no member information: let into a group with members (a plain
	 * commit is UNKNOWN_MEMBER_ID) */
	assert_int_equal(coord_txn_commit_check(h->c, h->now, KSTR("g"), -1, KSTR(""), KSTR_NULL),
			 KERR_NONE);
	/* CompletingRebalance: the member of the new generation is let in */
	const char *b = join_new(h, 1, 3, 4);
	join(h, 5, a, NULL, 5);
	assert_int_equal(grp(h)->state, COORD_COMPLETING_REBALANCE);
	assert_int_equal(coord_txn_commit_check(h->c, h->now, KSTR("g"), 2, KSTR(b), KSTR_NULL),
			 KERR_NONE);
	assert_int_equal(coord_commit_check(h->c, h->now, KSTR("g"), 2, KSTR(b), KSTR_NULL, 8),
			 KERR_REBALANCE_IN_PROGRESS);
	/* an unknown group is created Empty: a generation names no member
	 * there (a plain commit: ILLEGAL_GENERATION) */
	assert_int_equal(coord_txn_commit_check(h->c, h->now, KSTR("new"), 3, KSTR("m"), KSTR_NULL),
			 KERR_UNKNOWN_MEMBER_ID);
	assert_non_null(coord_group_find(h->c, KSTR("new")));
	assert_int_equal(coord_txn_commit_check(h->c, h->now, KSTR("new"), -1, KSTR("m"),
						KSTR("inst")),
			 KERR_NONE);
	assert_int_equal(coord_txn_commit_check(h->c, h->now, KSTR(""), -1, KSTR(""), KSTR_NULL),
			 KERR_INVALID_GROUP_ID);
	h_free(h);
}

static void test_leave_during_rebalance(void **state)
{
	struct h *h = h_new(0);
	const char *a = join_new(h, 0, 0, 1);
	const char *mids1[] = { a };
	const char *b1[] = { "x" };
	sync_(h, 2, a, 1, 1, mids1, b1);
	const char *b = join_new(h, 1, 3, 4);
	const char *c = join_new(h, 2, 5, 6);
	assert_int_equal(grp(h)->state, COORD_PREPARING_REBALANCE);
	coord_effects_reset(&h->e);
	/* a (who has not rejoined) leaves: the rebalance completes without it */
	bool found;
	assert_int_equal(coord_leave(h->c, h->now, KSTR("g"), KSTR(a), KSTR_NULL, &found, &h->e),
			 KERR_NONE);
	assert_true(found);
	assert_non_null(eff(h, 4));
	assert_non_null(eff(h, 6));
	assert_int_equal(eff(h, 4)->generation_id, 2);
	assert_string_equal(eff(h, 4)->leader_id, b);
	assert_int_equal(eff(h, 4)->member_count, 2);
	/* the leader b leaves during CompletingRebalance while c waits in
	 * SyncGroup */
	coord_effects_reset(&h->e);
	sync_(h, 7, c, 2, 0, NULL, NULL);
	assert_null(eff(h, 7));
	coord_leave(h->c, h->now, KSTR("g"), KSTR(b), KSTR_NULL, &found, &h->e);
	assert_int_equal(eff(h, 7)->error, KERR_REBALANCE_IN_PROGRESS);
	/* unknown member, unknown group */
	assert_int_equal(coord_leave(h->c, h->now, KSTR("g"), KSTR("zz"), KSTR_NULL, &found, &h->e),
			 KERR_UNKNOWN_MEMBER_ID);
	coord_leave(h->c, h->now, KSTR("nope"), KSTR("zz"), KSTR_NULL, &found, &h->e);
	assert_false(found);
	/* a leaving member with a pending join gets UNKNOWN_MEMBER_ID */
	coord_effects_reset(&h->e);
	join(h, 8, c, NULL, 5);
	assert_non_null(eff(h, 8)); /* alone: completes at once */
	assert_string_equal(eff(h, 8)->leader_id, c);
	coord_effects_reset(&h->e);
	coord_leave(h->c, h->now, KSTR("g"), KSTR(c), KSTR_NULL, &found, &h->e);
	assert_int_equal(grp(h)->state, COORD_EMPTY);
	assert_int_equal(coord_group_delete(h->c, KSTR("g")), KERR_NONE);
	assert_null(grp(h));
	h_free(h);
}

static void *pending[64];
static int pending_n;

static void collect_pending(void *arg, void *req)
{
	if (pending_n < 64)
		pending[pending_n++] = req;
}

static void test_limits(void **state)
{
	struct h *h = h_new(0);
	static uint8_t big[COORD_MEMBER_METADATA_BYTES_MAX + 1];
	struct coord_join_protocol p = { KSTR("range"), { big, sizeof big } };
	struct coord_join_args a = {
		.group_id = KSTR("g"), .member_id = KSTR(""), .group_instance_id = KSTR_NULL,
		.protocol_type = KSTR("consumer"), .client_id = KSTR("c"), .client_host = KSTR("h"),
		.session_timeout_ms = 10000, .rebalance_timeout_ms = 10000, .api_version = 3,
		.protocol_count = 1, .protocols = &p,
	};
	coord_join(h->c, h->now, &a, &tok[0], &h->e);
	assert_int_equal(eff(h, 0)->error, KERR_INVALID_REQUEST);
	assert_null(grp(h));
	h_free(h);

	/* group.max.size */
	struct coord_config cfg;
	coord_config_default(&cfg);
	cfg.initial_rebalance_delay_ms = 0;
	cfg.group_max_size = 2;
	h = calloc(1, sizeof *h);
	coord_new(&cfg, &h->c);
	coord_effects_init(&h->e);
	join(h, 0, "", NULL, 3);
	join(h, 1, "", NULL, 3);
	join(h, 2, "", NULL, 3);
	assert_int_equal(eff(h, 2)->error, KERR_GROUP_MAX_SIZE_REACHED);
	assert_int_equal(grp(h)->member_count, 2);
	/* the second join made a rebalance the first member has not rejoined:
	 * tok[1] waits, and is all that waits */
	assert_null(eff(h, 1));
	pending_n = 0;
	coord_requests_each(h->c, collect_pending, NULL);
	assert_int_equal(pending_n, 1);
	assert_ptr_equal(pending[0], &tok[1]);
	/* shutdown answers what is pending, and only that */
	coord_effects_reset(&h->e);
	coord_shutdown(h->c, &h->e);
	assert_int_equal(h->e.n, 1);
	assert_non_null(eff(h, 1));
	assert_int_equal(eff(h, 1)->kind, COORD_EFFECT_JOIN);
	assert_int_equal(eff(h, 1)->error, KERR_NOT_COORDINATOR);
	pending_n = 0;
	coord_requests_each(h->c, collect_pending, NULL);
	assert_int_equal(pending_n, 0);
	h_free(h);
}

/* Out of memory while answering: the effects say so (oom), and a request
 * whose answer was lost is no longer waiting inside the coordinator, so
 * the caller can tell it from the ones still pending and fail it. */
static void test_oom_answers_detectable(void **state)
{
	struct h *h = h_new(0);
	const char *a = join_new(h, 0, 0, 1);
	const char *mids[] = { a };
	const char *bytes[] = { "x" };
	sync_(h, 2, a, 1, 1, mids, bytes);
	join_new(h, 1, 3, 4); /* b waits for a to rejoin */
	pending_n = 0;
	coord_requests_each(h->c, collect_pending, NULL);
	assert_int_equal(pending_n, 1);
	assert_ptr_equal(pending[0], &tok[4]);
	coord_effects_reset(&h->e);
	/* a's rejoin completes the join: both answers fail to be recorded */
	h->e.fail_after = 1;
	join(h, 5, a, NULL, 5);
	assert_true(h->e.oom);
	assert_null(eff(h, 4));
	assert_null(eff(h, 5));
	pending_n = 0;
	coord_requests_each(h->c, collect_pending, NULL);
	assert_int_equal(pending_n, 0); /* tok[4], tok[5]: lost, to be failed */
	/* the group itself moved on consistently */
	assert_int_equal(grp(h)->state, COORD_COMPLETING_REBALANCE);
	assert_int_equal(grp(h)->generation_id, 2);
	h->e.fail_after = 0;
	coord_effects_reset(&h->e);
	/* the clients rejoin after their connections closed */
	join(h, 6, a, NULL, 5);
	assert_non_null(eff(h, 6));
	assert_int_equal(eff(h, 6)->error, KERR_NONE);
	h_free(h);
}

/* Two members in generation 1, both syncs sent, the leader's assignments
 * out for storing: returns the leader's id (the follower's in *follower). */
static const char *persist_setup(struct h *h, const char **follower)
{
	const char *a = join_new(h, 0, 0, 1);
	const char *b = join_new(h, 1, 2, 3);
	join(h, 4, a, NULL, 5); /* generation 2: a leads, b follows */
	assert_int_equal(eff(h, 4)->generation_id, 2);
	coord_effects_reset(&h->e);
	auto_persist = false;
	sync_(h, 5, b, 2, 0, NULL, NULL);
	const char *mids[] = { a, b };
	const char *bytes[] = { "AA", "BBB" };
	sync_(h, 6, a, 2, 2, mids, bytes);
	*follower = b;
	return a;
}

/* Kafka's doSyncGroup answers from storeGroup's callback: no SyncGroup of
 * a generation is answered before its record is durable, and the record
 * the effect carries is the one a new coordinator restores. */
static void test_persist_before_answer(void **state)
{
	struct h *h = h_new(0);
	const char *b;
	const char *a = persist_setup(h, &b);
	assert_null(eff(h, 5));
	assert_null(eff(h, 6));
	struct coord_effect *p = persist_eff(h, 0);
	assert_non_null(p);
	assert_null(persist_eff(h, 1)); /* one write per generation */
	assert_int_equal(p->generation_id, 2);
	assert_string_equal(p->leader_id, a);
	assert_true(grp(h)->persist_pending);
	assert_int_equal(grp(h)->state, COORD_COMPLETING_REBALANCE);
	/* Meanwhile: heartbeats fine, commits wait for the generation, both
	 * syncs still waiting (failable by the caller after oom). */
	assert_int_equal(hb(h, a, 2), KERR_NONE);
	assert_int_equal(coord_commit_check(h->c, h->now, KSTR("g"), 2, KSTR(b), KSTR_NULL, 8),
			 KERR_REBALANCE_IN_PROGRESS);
	pending_n = 0;
	coord_requests_each(h->c, collect_pending, NULL);
	assert_int_equal(pending_n, 2);
	/* The record restores the generation with both assignments. */
	struct h *n = h_new(0);
	struct coord_group_record rec = { p->generation_id, p->protocol_type, p->protocol_name,
					  p->leader_id, p->members_record, p->members_record_len };
	assert_int_equal(coord_group_restore(n->c, n->now, KSTR("g"), &rec), 0);
	assert_int_equal(grp(n)->generation_id, 2);
	assert_int_equal(grp(n)->member_count, 2);
	assert_int_equal(hb(n, b, 2), KERR_NONE);
	h_free(n);
	/* An outcome for another generation or group changes nothing. */
	coord_persist_done(h->c, h->now, KSTR("g"), 1, KERR_NONE, &h->e);
	coord_persist_done(h->c, h->now, KSTR("other"), 2, KERR_NONE, &h->e);
	assert_null(eff(h, 5));
	assert_true(grp(h)->persist_pending);
	/* Durable: Stable, both answered with their assignments. */
	coord_persist_done(h->c, h->now, KSTR("g"), 2, KERR_NONE, &h->e);
	assert_int_equal(grp(h)->state, COORD_STABLE);
	assert_false(grp(h)->persist_pending);
	assert_int_equal(eff(h, 5)->error, KERR_NONE);
	assert_int_equal(eff(h, 5)->assignment_len, 3);
	assert_memory_equal(eff(h, 5)->assignment, "BBB", 3);
	assert_int_equal(eff(h, 6)->error, KERR_NONE);
	assert_memory_equal(eff(h, 6)->assignment, "AA", 2);
	/* Told twice: nothing more. */
	size_t n_eff = h->e.n;
	coord_persist_done(h->c, h->now, KSTR("g"), 2, KERR_NONE, &h->e);
	assert_int_equal(h->e.n, n_eff);
	assert_int_equal(grp(h)->store_version, 0);
	auto_persist = true;
	h_free(h);
}

/* A failed write answers every waiting SyncGroup with the mapped error,
 * keeps no assignment and rebalances (Kafka's
 * resetAndPropagateAssignmentError then maybePrepareRebalance). */
static void test_persist_failed(void **state)
{
	struct h *h = h_new(0);
	const char *b;
	const char *a = persist_setup(h, &b);
	persist_all(h, KERR_NOT_COORDINATOR);
	assert_int_equal(eff(h, 5)->error, KERR_NOT_COORDINATOR);
	assert_int_equal(eff(h, 5)->assignment_len, 0);
	assert_int_equal(eff(h, 6)->error, KERR_NOT_COORDINATOR);
	assert_int_equal(grp(h)->state, COORD_PREPARING_REBALANCE);
	for (int32_t i = 0; i < grp(h)->member_count; i++)
		assert_null(grp(h)->members[i]->assignment);
	assert_int_equal(hb(h, a, 2), KERR_REBALANCE_IN_PROGRESS);
	/* The members rejoin into the next generation and store it. */
	coord_effects_reset(&h->e);
	join(h, 7, a, NULL, 5);
	join(h, 8, b, NULL, 5);
	assert_int_equal(eff(h, 8)->generation_id, 3);
	coord_effects_reset(&h->e);
	const char *mids[] = { a, b };
	const char *bytes[] = { "A", "B" };
	sync_(h, 9, a, 3, 2, mids, bytes);
	assert_null(eff(h, 9));
	assert_int_equal(persist_eff(h, 0)->generation_id, 3);
	persist_all(h, KERR_NONE);
	assert_int_equal(eff(h, 9)->error, KERR_NONE);
	assert_int_equal(grp(h)->state, COORD_STABLE);
	auto_persist = true;
	h_free(h);
}

/* The group moves on while its record is being written (a member
 * rejoins with new metadata, the sync deadline passes): the waiting
 * syncs hear REBALANCE_IN_PROGRESS, and the late outcome changes
 * nothing. A leader sending again waits for the same write. */
static void test_persist_overtaken(void **state)
{
	struct h *h = h_new(0);
	const char *b;
	const char *a = persist_setup(h, &b);
	/* the leader again: the first request is answered, the second waits */
	sync_(h, 7, a, 2, 0, NULL, NULL);
	assert_int_equal(eff(h, 6)->error, KERR_REBALANCE_IN_PROGRESS);
	assert_null(eff(h, 7));
	assert_null(persist_eff(h, 1));
	/* b rejoins with other metadata: a rebalance */
	join_p(h, 8, b, NULL, 5, "range", "other", 10000);
	assert_int_equal(eff(h, 5)->error, KERR_REBALANCE_IN_PROGRESS);
	assert_int_equal(eff(h, 7)->error, KERR_REBALANCE_IN_PROGRESS);
	assert_int_equal(grp(h)->state, COORD_PREPARING_REBALANCE);
	persist_all(h, KERR_NONE);
	assert_int_equal(grp(h)->state, COORD_PREPARING_REBALANCE);
	h_free(h);

	/* The write outlasts the rebalance timeout (30 s). */
	h = h_new(0);
	a = persist_setup(h, &b);
	for (int i = 0; i < 31; i++) {
		tick(h, 1000);
		hb(h, a, 2);
	}
	assert_int_equal(eff(h, 5)->error, KERR_REBALANCE_IN_PROGRESS);
	assert_int_equal(eff(h, 6)->error, KERR_REBALANCE_IN_PROGRESS);
	assert_int_equal(grp(h)->state, COORD_PREPARING_REBALANCE);
	size_t n_eff = h->e.n;
	persist_all(h, KERR_NONE);
	assert_int_equal(h->e.n, n_eff);
	assert_int_equal(grp(h)->state, COORD_PREPARING_REBALANCE);
	auto_persist = true;
	h_free(h);
}

/* A PERSIST that cannot be recorded fails as a write would: nothing is
 * left waiting for an outcome that will never come. */
static void test_persist_oom(void **state)
{
	struct h *h = h_new(0);
	const char *a = join_new(h, 0, 0, 1);
	coord_effects_reset(&h->e);
	auto_persist = false;
	h->e.fail_after = 1;
	const char *mids[] = { a };
	const char *bytes[] = { "x" };
	sync_(h, 2, a, 1, 1, mids, bytes);
	assert_true(h->e.oom);
	assert_false(grp(h)->persist_pending);
	assert_int_equal(grp(h)->state, COORD_PREPARING_REBALANCE);
	pending_n = 0;
	coord_requests_each(h->c, collect_pending, NULL);
	assert_int_equal(pending_n, 0); /* tok[2] lost: the caller fails it */
	auto_persist = true;
	h_free(h);
}

/* Effects own their strings: removing members later does not touch them. */
static void test_effects_survive(void **state)
{
	struct h *h = h_new(0);
	const char *a = join_new(h, 0, 0, 1);
	bool found;
	coord_leave(h->c, h->now, KSTR("g"), KSTR(a), KSTR_NULL, &found, &h->e);
	assert_string_equal(eff(h, 1)->member_id, a);
	assert_string_equal(eff(h, 1)->members[0].member_id, a);
	assert_int_equal(coord_state_parse(KSTR("stable")), COORD_STABLE);
	assert_int_equal(coord_state_parse(KSTR("bogus")), -1);
	h_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_member),
		cmocka_unit_test(test_restore),
		cmocka_unit_test(test_initial_delay_and_two_members),
		cmocka_unit_test(test_rebalance_with_slow_member),
		cmocka_unit_test(test_rebalance_timeout_drops_member),
		cmocka_unit_test(test_session_expiry),
		cmocka_unit_test(test_next_deadline),
		cmocka_unit_test(test_sync_timeout),
		cmocka_unit_test(test_stable_pending_sync_expiry),
		cmocka_unit_test(test_group_metadata_budget),
		cmocka_unit_test(test_coordinator_metadata_budget),
		cmocka_unit_test(test_member_id_required_and_old_versions),
		cmocka_unit_test(test_protocol_selection),
		cmocka_unit_test(test_sync_protocol_check),
		cmocka_unit_test(test_static_member_replacement),
		cmocka_unit_test(test_initial_delay_single),
		cmocka_unit_test(test_static_fenced_pending_join),
		cmocka_unit_test(test_stale_generation_commit),
		cmocka_unit_test(test_txn_commit_check),
		cmocka_unit_test(test_leave_during_rebalance),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_effects_survive),
		cmocka_unit_test(test_oom_answers_detectable),
		cmocka_unit_test(test_persist_before_answer),
		cmocka_unit_test(test_persist_failed),
		cmocka_unit_test(test_persist_overtaken),
		cmocka_unit_test(test_persist_oom),
		cmocka_unit_test(test_static_persist_failed),
		cmocka_unit_test(test_static_persist_overtaken),
		cmocka_unit_test(test_static_persist_deadline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
