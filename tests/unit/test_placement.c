/* test_placement.c — cluster placement (cluster/placement.c): SipHash's
 * reference vectors and pinned key hashes (the same answer on every
 * architecture), rendezvous stability when an agent leaves or joins,
 * an even spread, zone candidates and their fallback, coordinators and
 * NOT_COORDINATOR decisions, client.id zone parsing, and the epoch rules
 * of the view. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "cluster/placement.h"

/* Computed once by this implementation (whose SipHash matches the
 * reference vectors); see hashes_are_pinned. */
#define PIN_PARTITION 0x48ae2bb51a1adfdbULL
#define PIN_GROUP 0xefe225f6df9193fdULL
#define PIN_TRANSACTION 0x20235fbde78e40cfULL
#define PIN_WEIGHT 0xfe79779d47dea91fULL

static struct placement_agent agent(int32_t id, const char *zone)
{
	struct placement_agent a;
	memset(&a, 0, sizeof a);
	a.node_id = id;
	a.endpoint_count = 1;
	snprintf(a.endpoints[0].listener, sizeof a.endpoints[0].listener, "PLAINTEXT");
	a.endpoints[0].port = 9000 + id;
	snprintf(a.endpoints[0].host, sizeof a.endpoints[0].host, "10.0.0.%d", id);
	snprintf(a.zone, sizeof a.zone, "%s", zone ? zone : "");
	a.start_ms = 1000 * id;
	return a;
}

/* A view of agents with ids 1..n, no zones. */
static void view_of(struct placement *p, int n, int32_t epoch)
{
	struct placement_agent as[64];
	for (int i = 0; i < n; i++)
		as[i] = agent(i + 1, NULL);
	placement_init(p);
	assert_int_equal(placement_set(p, as, (size_t)n, epoch), 0);
}

static void topic_id(uint8_t id[16], int t)
{
	for (int i = 0; i < 16; i++)
		id[i] = (uint8_t)(t * 31 + i * 7 + 1);
}

static int32_t leader(const struct placement *p, kstr zone, const uint8_t tid[16], int32_t part)
{
	uint32_t cand[SL_CLUSTER_AGENTS_MAX];
	size_t n = placement_zone_candidates(p, zone, cand);
	const struct placement_agent *a = placement_partition_leader(p, cand, n, tid, part);
	return a ? a->node_id : -1;
}

/* ---- the hash ---- */

static void siphash_reference_vectors(void **state)
{
	(void)state;
	/* The reference implementation's key 00..0f and messages 00..(n-1). */
	uint8_t key[16], msg[64];
	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	assert_true(placement_siphash24(key, msg, 0) == 0x726fdb47dd0e0e31ULL);
	assert_true(placement_siphash24(key, msg, 8) == 0x93f5f5799a932462ULL);
	assert_true(placement_siphash24(key, msg, 15) == 0xa129ca6149be45e5ULL);
}

/* Pinned so that a change of the hash, the key encoding or the weight
 * (which would move every partition and group of a running cluster, or
 * make agents of two builds disagree) fails here. */
static void hashes_are_pinned(void **state)
{
	(void)state;
	uint8_t tid[16];
	topic_id(tid, 1);
	uint64_t ph = placement_partition_hash(tid, 7);
	uint64_t gh = placement_key_hash(PLACEMENT_KEY_GROUP, "my-group", 8);
	uint64_t th = placement_key_hash(PLACEMENT_KEY_TRANSACTION, "my-group", 8);
	uint64_t w = placement_weight(gh, 3);
	assert_true(ph == PIN_PARTITION);
	assert_true(gh == PIN_GROUP);
	assert_true(th == PIN_TRANSACTION);
	assert_true(w == PIN_WEIGHT);
	/* The type byte separates key spaces. */
	assert_true(gh != th);
	/* Long keys (group ids up to SL_GROUP_ID_BYTES_MAX) hash too. */
	char big[1024];
	memset(big, 'g', sizeof big);
	assert_true(placement_key_hash(PLACEMENT_KEY_GROUP, big, sizeof big) !=
		    placement_key_hash(PLACEMENT_KEY_GROUP, big, sizeof big - 1));
}

/* ---- rendezvous ---- */

#define KEYS 20000

static void leaving_agent_moves_only_its_keys(void **state)
{
	(void)state;
	struct placement p;
	view_of(&p, 5, 1);
	static int32_t before[KEYS];
	uint8_t tid[16];
	topic_id(tid, 2);
	for (int k = 0; k < KEYS; k++)
		before[k] = leader(&p, KSTR_NULL, tid, k);
	/* Agent 3 leaves. */
	struct placement_agent as[4] = { agent(1, NULL), agent(2, NULL), agent(4, NULL),
					 agent(5, NULL) };
	assert_int_equal(placement_set(&p, as, 4, 2), 0);
	int moved = 0;
	for (int k = 0; k < KEYS; k++) {
		int32_t now = leader(&p, KSTR_NULL, tid, k);
		if (before[k] == 3) {
			assert_int_not_equal(now, 3);
			moved++;
		} else {
			assert_int_equal(now, before[k]);
		}
	}
	assert_true(moved > KEYS / 5 - KEYS / 20 && moved < KEYS / 5 + KEYS / 20);
	/* Agent 6 joins: keys move only to it. */
	struct placement_agent as2[5] = { agent(1, NULL), agent(2, NULL), agent(4, NULL),
					  agent(5, NULL), agent(6, NULL) };
	for (int k = 0; k < KEYS; k++)
		before[k] = leader(&p, KSTR_NULL, tid, k);
	assert_int_equal(placement_set(&p, as2, 5, 3), 0);
	for (int k = 0; k < KEYS; k++) {
		int32_t now = leader(&p, KSTR_NULL, tid, k);
		assert_true(now == before[k] || now == 6);
	}
	/* Groups too. */
	char id[32];
	int32_t g_before[1000];
	for (int g = 0; g < 1000; g++) {
		snprintf(id, sizeof id, "group-%d", g);
		g_before[g] = placement_coordinator(&p, PLACEMENT_KEY_GROUP, KSTR(id))->node_id;
	}
	assert_int_equal(placement_set(&p, as2, 4, 4), 0); /* 6 leaves again */
	for (int g = 0; g < 1000; g++) {
		snprintf(id, sizeof id, "group-%d", g);
		int32_t now = placement_coordinator(&p, PLACEMENT_KEY_GROUP, KSTR(id))->node_id;
		if (g_before[g] != 6)
			assert_int_equal(now, g_before[g]);
		else
			assert_int_not_equal(now, 6);
	}
	placement_free(&p);
}

/* Many keys over N agents: each within 5% of its share (the standard
 * deviation is under 1%). */
static void keys_spread_evenly(void **state)
{
	(void)state;
	for (int n = 2; n <= 16; n *= 2) {
		struct placement p;
		view_of(&p, n, 1);
		int count[17] = { 0 }, gcount[17] = { 0 };
		int per = 10000;
		for (int t = 0; t < n * per / 100; t++) {
			uint8_t tid[16];
			topic_id(tid, t + 100);
			for (int k = 0; k < 100; k++)
				count[leader(&p, KSTR_NULL, tid, k)]++;
		}
		char id[32];
		for (int g = 0; g < n * per; g++) {
			snprintf(id, sizeof id, "consumer-group-%d", g);
			gcount[placement_coordinator(&p, PLACEMENT_KEY_GROUP, KSTR(id))->node_id]++;
		}
		for (int i = 1; i <= n; i++) {
			assert_in_range(count[i], per - per / 20, per + per / 20);
			assert_in_range(gcount[i], per - per / 20, per + per / 20);
		}
		placement_free(&p);
	}
}

/* Every agent computes the same answer, whatever order the registry
 * listed the agents in. */
static void order_of_the_feed_does_not_matter(void **state)
{
	(void)state;
	struct placement_agent fwd[4] = { agent(1, "a"), agent(2, "a"), agent(3, "b"),
					  agent(4, "b") };
	struct placement_agent rev[4] = { fwd[3], fwd[2], fwd[1], fwd[0] };
	struct placement p, q;
	placement_init(&p);
	placement_init(&q);
	assert_int_equal(placement_set(&p, fwd, 4, 1), 0);
	assert_int_equal(placement_set(&q, rev, 4, 1), 0);
	uint8_t tid[16];
	topic_id(tid, 3);
	for (int k = 0; k < 1000; k++) {
		assert_int_equal(leader(&p, KSTR("a"), tid, k), leader(&q, KSTR("a"), tid, k));
		assert_int_equal(leader(&p, KSTR_NULL, tid, k), leader(&q, KSTR_NULL, tid, k));
	}
	placement_free(&p);
	placement_free(&q);
}

/* ---- zones ---- */

static void zone_candidates_and_fallback(void **state)
{
	(void)state;
	struct placement_agent as[4] = { agent(1, "a"), agent(2, "a"), agent(3, "b"),
					 agent(4, NULL) };
	struct placement p;
	placement_init(&p);
	assert_int_equal(placement_set(&p, as, 4, 1), 0);
	uint32_t cand[SL_CLUSTER_AGENTS_MAX];
	assert_int_equal(placement_zone_candidates(&p, KSTR("a"), cand), 2);
	assert_int_equal(placement_zone_candidates(&p, KSTR("b"), cand), 1);
	assert_int_equal(p.agents[cand[0]].node_id, 3);
	/* Unknown zone, no zone, an empty one: every agent. */
	assert_int_equal(placement_zone_candidates(&p, KSTR("c"), cand), 4);
	assert_int_equal(placement_zone_candidates(&p, KSTR_NULL, cand), 4);
	assert_int_equal(placement_zone_candidates(&p, KSTR(""), cand), 4);
	/* Zone names match exactly (case too, as Kafka's racks). */
	assert_int_equal(placement_zone_candidates(&p, KSTR("A"), cand), 4);
	assert_int_equal(placement_zone_candidates(&p, KSTR("aa"), cand), 4);

	uint8_t tid[16];
	int seen[5] = { 0 };
	for (int t = 0; t < 50; t++) {
		topic_id(tid, t);
		for (int k = 0; k < 20; k++) {
			assert_int_equal(leader(&p, KSTR("b"), tid, k), 3);
			int32_t l = leader(&p, KSTR("a"), tid, k);
			assert_true(l == 1 || l == 2);
			seen[l]++;
			seen[leader(&p, KSTR_NULL, tid, k)]++;
		}
	}
	assert_true(seen[1] > 0 && seen[2] > 0 && seen[3] > 0 && seen[4] > 0);

	/* Zone b's only agent dies: its clients are led by every agent. */
	struct placement_agent left[3] = { as[0], as[1], as[3] };
	assert_int_equal(placement_set(&p, left, 3, 2), 0);
	assert_int_equal(placement_zone_candidates(&p, KSTR("b"), cand), 3);
	topic_id(tid, 0);
	for (int k = 0; k < 100; k++)
		assert_int_equal(leader(&p, KSTR("b"), tid, k), leader(&p, KSTR_NULL, tid, k));

	/* An empty view has no leader and no coordinator. */
	placement_free(&p);
	assert_int_equal(placement_zone_candidates(&p, KSTR("a"), cand), 0);
	assert_null(placement_partition_leader(&p, cand, 0, tid, 0));
	assert_null(placement_coordinator(&p, PLACEMENT_KEY_GROUP, KSTR("g")));
	assert_false(placement_is_coordinator(&p, PLACEMENT_KEY_GROUP, KSTR("g"), 1));
}

static void expect_zone(const char *client_id, const char *zone)
{
	kstr z = placement_client_zone(client_id ? KSTR(client_id) : KSTR_NULL);
	if (!zone) {
		if (z.len >= 0)
			fail_msg("%s: expected no zone, got %.*s", client_id ? client_id : "(null)",
				 z.len, z.ptr);
		return;
	}
	if (z.len != (int32_t)strlen(zone) || memcmp(z.ptr, zone, (size_t)z.len) != 0)
		fail_msg("%s: expected %s, got %.*s", client_id ? client_id : "(null)", zone, z.len < 0 ? 4 : z.len,
			 z.len < 0 ? "null" : z.ptr);
}

static void client_id_zone_parsing(void **state)
{
	(void)state;
	expect_zone("sluice_az=us-east-1a", "us-east-1a");
	expect_zone("myapp,sluice_az=b", "b");
	expect_zone("sluice_az=a,myapp", "a");
	expect_zone("myapp sluice_az=eu_west.4-b;x", "eu_west.4-b");
	expect_zone("app|sluice_az=a|other", "a");
	expect_zone("app_sluice_az=a", "a");         /* '_' is a delimiter */
	expect_zone("rdkafka-sluice_az=a", "a");
	expect_zone("app/sluice_az=a/1", "a");
	expect_zone("mysluice_az=a", NULL);          /* part of a longer word */
	expect_zone("x1sluice_az=a", NULL);
	expect_zone("sluice_az=", NULL);             /* empty */
	expect_zone("sluice_az=,sluice_az=b", "b");  /* the first valid one */
	expect_zone("sluice_az=a,sluice_az=b", "a");
	expect_zone("sluice_az= a", NULL);
	expect_zone("sluice_az", NULL);
	expect_zone("sluice_az:a", NULL);
	expect_zone("SLUICE_AZ=a", NULL);            /* the key is case-sensitive */
	expect_zone("warpstream_az=a", NULL);
	expect_zone("", NULL);
	expect_zone(NULL, NULL);
	expect_zone("rdkafka", NULL);
	expect_zone("sluice_az=a=b", "a");
	/* Bounded: a name of SL_ZONE_BYTES_MAX bytes is taken, one byte more
	 * is no name (never truncated), and a later valid one still counts. */
	char buf[4096];
	char name[SL_ZONE_BYTES_MAX + 2];
	memset(name, 'z', SL_ZONE_BYTES_MAX);
	name[SL_ZONE_BYTES_MAX] = 0;
	snprintf(buf, sizeof buf, "app,sluice_az=%s,x", name);
	expect_zone(buf, name);
	name[SL_ZONE_BYTES_MAX] = 'z';
	name[SL_ZONE_BYTES_MAX + 1] = 0;
	snprintf(buf, sizeof buf, "app,sluice_az=%s", name);
	expect_zone(buf, NULL);
	snprintf(buf, sizeof buf, "sluice_az=%s,sluice_az=c", name);
	expect_zone(buf, "c");
	/* A long client.id with the zone at its end; a view, not a copy. */
	memset(buf, 'x', sizeof buf);
	memcpy(buf + sizeof buf - 12, ",sluice_az=q", 12);
	kstr z = placement_client_zone((kstr){ buf, (int32_t)sizeof buf });
	assert_int_equal(z.len, 1);
	assert_ptr_equal(z.ptr, buf + sizeof buf - 1);
	/* Bytes are bytes: NULs and high bytes are delimiters. */
	const char nul[] = "a\0sluice_az=n\0";
	z = placement_client_zone((kstr){ nul, (int32_t)sizeof nul - 1 });
	assert_int_equal(z.len, 1);
	assert_int_equal(z.ptr[0], 'n');
	expect_zone("\xc3\xa9sluice_az=u\xc3\xa9", "u");
}

static void zone_names(void **state)
{
	(void)state;
	assert_true(placement_zone_valid("us-east-1a", 10));
	assert_true(placement_zone_valid("a", 1));
	assert_false(placement_zone_valid("", 0));
	assert_false(placement_zone_valid("a b", 3));
	assert_false(placement_zone_valid("a,b", 3));
	assert_false(placement_zone_valid("a=b", 3));
	char name[SL_ZONE_BYTES_MAX + 1];
	memset(name, 'z', sizeof name);
	assert_true(placement_zone_valid(name, SL_ZONE_BYTES_MAX));
	assert_false(placement_zone_valid(name, SL_ZONE_BYTES_MAX + 1));
}

/* ---- coordinators ---- */

static void coordinators(void **state)
{
	(void)state;
	struct placement p;
	/* One agent coordinates everything. */
	view_of(&p, 1, 0);
	assert_true(placement_is_coordinator(&p, PLACEMENT_KEY_GROUP, KSTR("g"), 1));
	assert_true(placement_is_coordinator(&p, PLACEMENT_KEY_TRANSACTION, KSTR("t"), 1));
	assert_true(placement_is_coordinator(&p, PLACEMENT_KEY_GROUP, KSTR(""), 1));
	assert_false(placement_is_coordinator(&p, PLACEMENT_KEY_GROUP, KSTR("g"), 2));
	placement_free(&p);

	/* Three agents: each group has exactly one coordinator, the others
	 * say NOT_COORDINATOR; zones play no part. */
	struct placement_agent as[3] = { agent(1, "a"), agent(2, "b"), agent(3, "b") };
	placement_init(&p);
	assert_int_equal(placement_set(&p, as, 3, 1), 0);
	int per_agent[4] = { 0 };
	char id[32];
	for (int g = 0; g < 300; g++) {
		snprintf(id, sizeof id, "g%d", g);
		int yes = 0;
		for (int32_t n = 1; n <= 3; n++)
			if (placement_is_coordinator(&p, PLACEMENT_KEY_GROUP, KSTR(id), n)) {
				yes++;
				per_agent[n]++;
				assert_int_equal(placement_coordinator(&p, PLACEMENT_KEY_GROUP,
								       KSTR(id))->node_id, n);
			}
		assert_int_equal(yes, 1);
	}
	assert_true(per_agent[1] > 50 && per_agent[2] > 50 && per_agent[3] > 50);
	/* A group and a transactional id of the same name are placed
	 * independently: over many names some land apart. */
	int apart = 0;
	for (int g = 0; g < 300; g++) {
		snprintf(id, sizeof id, "g%d", g);
		apart += placement_coordinator(&p, PLACEMENT_KEY_GROUP, KSTR(id)) !=
			 placement_coordinator(&p, PLACEMENT_KEY_TRANSACTION, KSTR(id));
	}
	assert_true(apart > 100);
	placement_free(&p);
}

/* ---- the view and its epoch ---- */

static void epochs(void **state)
{
	(void)state;
	struct placement p;
	placement_init(&p);
	/* Nothing named yet: unknown, and any first epoch is taken. */
	assert_int_equal(placement_leader_epoch(&p), -1);
	struct placement_agent as[3] = { agent(1, "a"), agent(2, "a"), agent(3, "b") };
	assert_int_equal(placement_set(&p, as, 1, -1), SL_EINVAL);
	assert_int_equal(placement_set(&p, as, 1, 0), 0);
	assert_int_equal(placement_leader_epoch(&p), 0);
	placement_free(&p);

	placement_init(&p);
	assert_int_equal(placement_set(&p, as, 2, 5), 0);
	assert_int_equal(placement_leader_epoch(&p), 5);
	/* The same set again under the same epoch: a repeated feed, fine. */
	struct placement_agent again[2] = { as[1], as[0] };
	assert_int_equal(placement_set(&p, again, 2, 5), 0);
	/* A different set under the same epoch, or any older epoch: refused,
	 * the view unchanged. */
	assert_int_equal(placement_set(&p, as, 3, 5), SL_EINVAL);
	assert_int_equal(placement_set(&p, as, 3, 4), SL_EINVAL);
	assert_int_equal(placement_set(&p, as, 2, 4), SL_EINVAL);
	assert_int_equal(p.count, 2);
	assert_int_equal(placement_leader_epoch(&p), 5);
	/* A moved agent (same id, new address or zone) is a change too. */
	struct placement_agent moved[2] = { as[0], as[1] };
	moved[1].endpoints[0].port++;
	assert_int_equal(placement_set(&p, moved, 2, 5), SL_EINVAL);
	assert_int_equal(placement_set(&p, moved, 2, 6), 0);
	assert_int_equal(placement_find(&p, 2)->endpoints[0].port, as[1].endpoints[0].port + 1);
	/* So is a listener added. */
	moved[1].endpoint_count = 2;
	moved[1].endpoints[1] = moved[1].endpoints[0];
	snprintf(moved[1].endpoints[1].listener, sizeof moved[1].endpoints[1].listener, "SSL");
	assert_int_equal(placement_set(&p, moved, 2, 6), SL_EINVAL);
	assert_int_equal(placement_set(&p, moved, 2, 7), 0);
	/* Newer epochs always win, even for a smaller set. */
	assert_int_equal(placement_set(&p, as, 1, 9), 0);
	assert_int_equal(placement_leader_epoch(&p), 9);
	assert_null(placement_find(&p, 2));
	assert_non_null(placement_find(&p, 1));
	placement_free(&p);
}

static void bad_feeds_are_refused(void **state)
{
	(void)state;
	struct placement p;
	placement_init(&p);
	struct placement_agent ok = agent(1, "a");
	assert_int_equal(placement_set(&p, &ok, 1, 1), 0);
	struct placement_agent dup[2] = { agent(2, NULL), agent(2, "b") };
	assert_int_equal(placement_set(&p, dup, 2, 2), SL_EINVAL);
	struct placement_agent bad = agent(3, NULL);
	bad.node_id = -1;
	assert_int_equal(placement_set(&p, &bad, 1, 2), SL_EINVAL);
	bad = agent(3, "has space");
	assert_int_equal(placement_set(&p, &bad, 1, 2), SL_EINVAL);
	bad = agent(3, NULL);
	bad.endpoints[0].host[0] = 0;
	assert_int_equal(placement_set(&p, &bad, 1, 2), SL_EINVAL);
	bad = agent(3, NULL);
	bad.endpoints[0].port = 70000;
	assert_int_equal(placement_set(&p, &bad, 1, 2), SL_EINVAL);
	/* No endpoint, too many, an invalid or unterminated listener name,
	 * one name twice. */
	bad = agent(3, NULL);
	bad.endpoint_count = 0;
	assert_int_equal(placement_set(&p, &bad, 1, 2), SL_EINVAL);
	bad = agent(3, NULL);
	bad.endpoint_count = SL_LISTENERS_MAX + 1;
	assert_int_equal(placement_set(&p, &bad, 1, 2), SL_EINVAL);
	bad = agent(3, NULL);
	snprintf(bad.endpoints[0].listener, sizeof bad.endpoints[0].listener, "PLAIN TEXT");
	assert_int_equal(placement_set(&p, &bad, 1, 2), SL_EINVAL);
	bad = agent(3, NULL);
	bad.endpoints[0].listener[0] = 0;
	assert_int_equal(placement_set(&p, &bad, 1, 2), SL_EINVAL);
	bad = agent(3, NULL);
	memset(bad.endpoints[0].listener, 'L', sizeof bad.endpoints[0].listener);
	assert_int_equal(placement_set(&p, &bad, 1, 2), SL_EINVAL);
	bad = agent(3, NULL);
	bad.endpoint_count = 2;
	bad.endpoints[1] = bad.endpoints[0];
	bad.endpoints[1].port++;
	assert_int_equal(placement_set(&p, &bad, 1, 2), SL_EINVAL);
	bad = agent(3, NULL);
	memset(bad.zone, 'z', sizeof bad.zone); /* not terminated */
	assert_int_equal(placement_set(&p, &bad, 1, 2), SL_EINVAL);
	static struct placement_agent many[SL_CLUSTER_AGENTS_MAX + 1];
	for (int i = 0; i <= SL_CLUSTER_AGENTS_MAX; i++)
		many[i] = agent(i, NULL);
	assert_int_equal(placement_set(&p, many, SL_CLUSTER_AGENTS_MAX + 1, 2), SL_EINVAL);
	/* Still the first view. */
	assert_int_equal(p.count, 1);
	assert_int_equal(p.agents[0].node_id, 1);
	assert_int_equal(placement_set(&p, many, SL_CLUSTER_AGENTS_MAX, 2), 0);
	assert_int_equal(p.count, SL_CLUSTER_AGENTS_MAX);
	/* Sorted by node id, found by it. */
	for (int i = 0; i < SL_CLUSTER_AGENTS_MAX; i += 97)
		assert_int_equal(placement_find(&p, i)->node_id, i);
	assert_null(placement_find(&p, SL_CLUSTER_AGENTS_MAX));
	placement_free(&p);
}

/* Each agent carries an endpoint per listener, found by name; which
 * agent leads or coordinates depends on node ids only, never on them. */
static void endpoints_per_listener(void **state)
{
	(void)state;
	struct placement_agent as[3] = { agent(1, NULL), agent(2, NULL), agent(3, NULL) };
	as[0].endpoint_count = 2;
	struct placement_endpoint *ssl = &as[0].endpoints[1];
	snprintf(ssl->listener, sizeof ssl->listener, "SSL");
	snprintf(ssl->host, sizeof ssl->host, "broker1.example");
	ssl->port = 9093;
	struct placement p, q;
	placement_init(&p);
	placement_init(&q);
	assert_int_equal(placement_set(&p, as, 3, 1), 0);
	const struct placement_agent *one = placement_find(&p, 1);
	assert_int_equal(placement_endpoint(one, "PLAINTEXT")->port, 9001);
	assert_string_equal(placement_endpoint(one, "SSL")->host, "broker1.example");
	assert_int_equal(placement_endpoint(one, "SSL")->port, 9093);
	assert_null(placement_endpoint(one, "ssl")); /* names compare exactly */
	assert_null(placement_endpoint(placement_find(&p, 2), "SSL"));
	assert_null(placement_endpoint(one, "INTERNAL"));
	/* The same ids with other endpoints: the same answers. */
	struct placement_agent bs[3] = { agent(1, NULL), agent(2, NULL), agent(3, NULL) };
	for (int i = 0; i < 3; i++) {
		snprintf(bs[i].endpoints[0].listener, sizeof bs[i].endpoints[0].listener, "INTERNAL");
		bs[i].endpoints[0].port = 19000 + i;
	}
	assert_int_equal(placement_set(&q, bs, 3, 1), 0);
	uint32_t cp[3], cq[3];
	assert_int_equal(placement_zone_candidates(&p, KSTR_NULL, cp), 3);
	assert_int_equal(placement_zone_candidates(&q, KSTR_NULL, cq), 3);
	for (int k = 0; k < 200; k++) {
		uint8_t id[16];
		topic_id(id, k);
		assert_int_equal(placement_partition_leader(&p, cp, 3, id, k % 7)->node_id,
				 placement_partition_leader(&q, cq, 3, id, k % 7)->node_id);
		char g[32];
		snprintf(g, sizeof g, "group-%d", k);
		assert_int_equal(placement_coordinator(&p, PLACEMENT_KEY_GROUP, KSTR(g))->node_id,
				 placement_coordinator(&q, PLACEMENT_KEY_GROUP, KSTR(g))->node_id);
	}
	assert_true(placement_listener_valid("SASL_PLAINTEXT", 14));
	assert_true(placement_listener_valid("internal-1", 10));
	assert_false(placement_listener_valid("", 0));
	assert_false(placement_listener_valid("A:B", 3));
	placement_free(&p);
	placement_free(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(siphash_reference_vectors),
		cmocka_unit_test(hashes_are_pinned),
		cmocka_unit_test(leaving_agent_moves_only_its_keys),
		cmocka_unit_test(keys_spread_evenly),
		cmocka_unit_test(order_of_the_feed_does_not_matter),
		cmocka_unit_test(zone_candidates_and_fallback),
		cmocka_unit_test(client_id_zone_parsing),
		cmocka_unit_test(zone_names),
		cmocka_unit_test(coordinators),
		cmocka_unit_test(epochs),
		cmocka_unit_test(bad_feeds_are_refused),
		cmocka_unit_test(endpoints_per_listener),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
