/* coordinator.c — the classic group protocol state machine (coordinator.h).
 *
 * Follows Apache Kafka's GroupCoordinator (the classic protocol) closely,
 * down to the error codes, with this simplification: there are no
 * transactional offsets. Membership is stored where Kafka stores its
 * GroupMetadata record (a completed generation and a static member's
 * new id through a PERSIST effect whose outcome answers the SyncGroups or
 * the JoinGroup, the rest when store_version moves; coord_group_encode_members and coord_group_restore are the
 * record), so a new coordinator keeps the generation and its members. Pure logic:
 * the caller passes the monotonic time and performs the effects. */
#include "group/coordinator.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/grow.h"
#include "base/sl_assert.h"
#include "base/strmap.h"
#include "proto/kerr.h"

struct coordinator {
	struct coord_config cfg;
	struct strmap groups; /* group id -> struct coord_group */
	uint64_t id_counter;
	/* Protocol metadata bytes all members of all groups hold
	 * (SL_GROUPS_METADATA_BYTES_MAX). */
	size_t metadata_bytes;
	uint64_t store_changes; /* coord_store_changes */
};

/* What a store keeps of g changed (coord_group.store_version). */
static void store_changed(struct coordinator *c, struct coord_group *g)
{
	g->store_version++;
	c->store_changes++;
}

/* ---- effects ---- */

struct coord_effect_chunk {
	struct coord_effect_chunk *next;
	size_t used, cap;
	_Alignas(16) uint8_t data[];
};

void coord_effects_init(struct coord_effects *e)
{
	memset(e, 0, sizeof *e);
}

void coord_effects_reset(struct coord_effects *e)
{
	struct coord_effect_chunk *ch = e->chunks;
	while (ch) {
		struct coord_effect_chunk *next = ch->next;
		free(ch);
		ch = next;
	}
	e->chunks = NULL;
	e->n = 0;
	e->oom = false;
}

void coord_effects_free(struct coord_effects *e)
{
	coord_effects_reset(e);
	free(e->v);
	e->v = NULL;
	e->cap = 0;
}

/* Tests' fault injection (coord_effects.fail_after). */
static bool eff_fault(struct coord_effects *e)
{
	if (e->fail_after <= 0)
		return false;
	if (e->fail_after == 1) {
		e->oom = true;
		return true;
	}
	e->fail_after--;
	return false;
}

static void *eff_alloc(struct coord_effects *e, size_t n)
{
	if (eff_fault(e))
		return NULL;
	n = (n + 15) & ~(size_t)15;
	struct coord_effect_chunk *ch = e->chunks;
	if (!ch || ch->cap - ch->used < n) {
		size_t cap = n > 65536 ? n : 65536;
		ch = malloc(sizeof *ch + cap);
		if (!ch) {
			e->oom = true;
			return NULL;
		}
		ch->next = e->chunks;
		ch->used = 0;
		ch->cap = cap;
		e->chunks = ch;
	}
	void *p = ch->data + ch->used;
	ch->used += n;
	return p;
}

static char *eff_str(struct coord_effects *e, const char *s)
{
	if (!s)
		return NULL;
	size_t n = strlen(s);
	char *p = eff_alloc(e, n + 1);
	if (p)
		memcpy(p, s, n + 1);
	return p;
}

static uint8_t *eff_mem(struct coord_effects *e, const uint8_t *p, int32_t n)
{
	if (n <= 0)
		return eff_alloc(e, 1);
	uint8_t *q = eff_alloc(e, (size_t)n);
	if (q)
		memcpy(q, p, (size_t)n);
	return q;
}

/* A new zeroed effect for req, or NULL (oom flagged). */
static struct coord_effect *eff_push(struct coord_effects *e, void *req,
				     enum coord_effect_kind kind, int16_t error)
{
	if (eff_fault(e) || array_grow(&e->v, &e->cap, e->n, sizeof *e->v, 16) != 0) {
		e->oom = true;
		return NULL;
	}
	struct coord_effect *f = &e->v[e->n++];
	memset(f, 0, sizeof *f);
	f->req = req;
	f->kind = kind;
	f->error = error;
	f->generation_id = -1;
	return f;
}

static void eff_join_error(struct coord_effects *e, void *req, int16_t error,
			   const char *member_id)
{
	struct coord_effect *f = eff_push(e, req, COORD_EFFECT_JOIN, error);
	if (f)
		f->member_id = eff_str(e, member_id ? member_id : "");
}

static void eff_sync_error(struct coord_effects *e, void *req, int16_t error)
{
	eff_push(e, req, COORD_EFFECT_SYNC, error);
}

/* ---- small helpers ---- */

const char *coord_state_name(enum coord_state s)
{
	switch (s) {
	case COORD_EMPTY: return "Empty";
	case COORD_PREPARING_REBALANCE: return "PreparingRebalance";
	case COORD_COMPLETING_REBALANCE: return "CompletingRebalance";
	case COORD_STABLE: return "Stable";
	case COORD_DEAD: return "Dead";
	}
	return "Unknown";
}

int coord_state_parse(kstr name)
{
	for (int s = COORD_EMPTY; s <= COORD_DEAD; s++) {
		const char *n = coord_state_name((enum coord_state)s);
		if (name.len == (int32_t)strlen(n) && strncasecmp(name.ptr, n, (size_t)name.len) == 0)
			return s;
	}
	return -1;
}

void coord_config_default(struct coord_config *c)
{
	memset(c, 0, sizeof *c);
	c->initial_rebalance_delay_ms = 3000;
	c->group_max_size = COORD_GROUP_MEMBERS_MAX;
	c->session_timeout_min_ms = 6000;
	c->session_timeout_max_ms = 1800000;
	c->metadata_bytes_max = SL_GROUPS_METADATA_BYTES_MAX;
}

static bool kstr_is_null(kstr s)
{
	return s.len < 0;
}

/* A malloc'd NUL-terminated copy (NULL for a null kstr or on oom). */
static char *kstr_dup(kstr s)
{
	if (s.len < 0)
		return NULL;
	char *p = malloc((size_t)s.len + 1);
	if (!p)
		return NULL;
	if (s.len)
		memcpy(p, s.ptr, (size_t)s.len);
	p[s.len] = 0;
	return p;
}

/* An empty group.instance.id is treated as none (dynamic membership). */
static kstr instance_norm(kstr s)
{
	return s.len <= 0 ? KSTR_NULL : s;
}

static bool has_nul(kstr s)
{
	return s.len > 0 && memchr(s.ptr, 0, (size_t)s.len) != NULL;
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Kafka's form: groupInstanceId-UUID for a static member, clientId-UUID
 * otherwise (the prefix cut to a bound). */
static char *new_member_id(struct coordinator *c, kstr client_id, kstr instance)
{
	uint64_t x = c->cfg.id_seed ^ (++c->id_counter * 0x2545f4914f6cdd1dULL);
	uint64_t hi = splitmix64(&x), lo = splitmix64(&x);
	if (!kstr_is_null(instance))
		client_id = instance;
	int32_t n = client_id.len > 0 ? client_id.len : 0;
	if (n > COORD_CLIENT_ID_BYTES_MAX)
		n = COORD_CLIENT_ID_BYTES_MAX;
	char *p = malloc((size_t)n + 48);
	if (!p)
		return NULL;
	int k = 0;
	for (int32_t i = 0; i < n; i++)
		p[k++] = client_id.ptr[i] ? client_id.ptr[i] : '_';
	snprintf(p + k, 48, "-%08x-%04x-%04x-%04x-%012llx", (unsigned)(hi >> 32),
		 (unsigned)(hi >> 16) & 0xffff, (unsigned)hi & 0xffff,
		 (unsigned)(lo >> 48), (unsigned long long)(lo & 0xffffffffffffULL));
	return p;
}

/* ---- groups and members ---- */

/* Bytes of protocol metadata one member holds, all protocols together. */
static size_t member_metadata_bytes(const struct coord_member *m)
{
	size_t n = 0;
	for (int32_t k = 0; k < m->protocol_count; k++)
		n += (size_t)m->protocols[k].metadata_len;
	return n;
}

/* Metadata held changes by delta bytes in g: keeps the group's and the
 * coordinator's totals (the budgets coord_join checks). */
static void account(struct coordinator *c, struct coord_group *g, int64_t delta)
{
	/* A total going below zero means a member's bytes were counted off
	 * twice: the budgets coord_join checks would stop holding. */
	SL_ASSERT(delta >= 0 || ((uint64_t)-delta <= g->metadata_bytes &&
				 (uint64_t)-delta <= c->metadata_bytes),
		  "group %s: %" PRId64 " bytes off %zu (all groups: %zu)", g->group_id, delta,
		  g->metadata_bytes, c->metadata_bytes);
	g->metadata_bytes = (size_t)((int64_t)g->metadata_bytes + delta);
	c->metadata_bytes = (size_t)((int64_t)c->metadata_bytes + delta);
}

/* What a static member replaced in a Stable group had before, kept
 * while its new id is being stored (coord_member.replaced): Kafka's
 * updateStaticMemberAndRebalance puts it back if that write fails. */
struct coord_replaced {
	char *member_id;            /* the old id */
	char *leader_id;            /* the leader before (Kafka's currentLeader), NULL: none */
	bool skip_assignment;       /* the JoinGroup is v9+ (supportSkippingAssignment) */
	/* When the JoinGroup stops waiting for the write's outcome (its
	 * rebalance timeout, as a SyncGroup waits for its generation's at
	 * most until the sync deadline): an outcome that never comes (a
	 * PERSIST lost with an effects list out of memory, a write stuck in
	 * the store) reverts it as a timed-out write would. */
	int64_t deadline_ms;
	/* Off the metadata budgets while kept here. */
	struct coord_protocol *protocols;
	int32_t protocol_count;
	int32_t session_timeout_ms;
	int32_t rebalance_timeout_ms;
};

static void protocols_free(struct coord_protocol *p, int32_t n)
{
	for (int32_t i = 0; i < n; i++) {
		free(p[i].name);
		free(p[i].metadata);
	}
	free(p);
}

static void replaced_free(struct coord_replaced *r)
{
	if (!r)
		return;
	free(r->member_id);
	free(r->leader_id);
	protocols_free(r->protocols, r->protocol_count);
	free(r);
}

static void member_free(struct coord_member *m)
{
	if (!m)
		return;
	replaced_free(m->replaced);
	protocols_free(m->protocols, m->protocol_count);
	free(m->assignment);
	free(m->member_id);
	free(m->group_instance_id);
	free(m->client_id);
	free(m->client_host);
	free(m);
}

/* Free a member that is (or was being) part of g, with its metadata
 * taken off the budgets. */
static void member_drop(struct coordinator *c, struct coord_group *g, struct coord_member *m)
{
	if (!m)
		return;
	/* A request still waiting here would never be answered. */
	SL_ASSERT(!m->join_req && !m->sync_req, "group %s member %s dropped with a request waiting",
		  g->group_id, m->member_id);
	account(c, g, -(int64_t)member_metadata_bytes(m));
	member_free(m);
}

static void group_free(struct coordinator *c, struct coord_group *g)
{
	if (!g)
		return;
	if (c)
		account(c, g, -(int64_t)g->metadata_bytes);
	for (int32_t i = 0; i < g->member_count; i++)
		member_free(g->members[i]);
	for (int32_t i = 0; i < g->pending_count; i++)
		free(g->pending[i].member_id);
	free(g->members);
	free(g->pending);
	free(g->group_id);
	free(g->protocol_type);
	free(g->protocol_name);
	free(g->leader_id);
	free(g);
}

/* Group ids become map keys: no NUL inside, bounded. */
static bool group_id_ok(kstr id)
{
	return id.len >= 0 && id.len <= COORD_GROUP_ID_BYTES_MAX && !has_nul(id);
}

static struct coord_group *group_get(const struct coordinator *c, kstr id)
{
	char key[COORD_GROUP_ID_BYTES_MAX + 1];
	if (!group_id_ok(id) || !kstr_copy(id, key, sizeof key))
		return NULL;
	return strmap_get(&c->groups, key);
}

/* Returns NULL on oom or when the group limit is reached. */
static struct coord_group *group_create(struct coordinator *c, kstr id, int64_t now_ms)
{
	if (c->groups.count >= COORD_GROUPS_MAX || !group_id_ok(id))
		return NULL;
	struct coord_group *g = calloc(1, sizeof *g);
	if (!g)
		return NULL;
	g->group_id = kstr_dup(id);
	g->state = COORD_EMPTY;
	g->state_since_ms = now_ms;
	if (!g->group_id || strmap_put(&c->groups, g->group_id, g) != 0) {
		group_free(c, g);
		return NULL;
	}
	return g;
}

/* Kafka's ClassicGroupState.validPreviousStates: whether a group in
 * state from may move to state to. Dead is never entered here (a group
 * is deleted instead). */
static bool transition_legal(enum coord_state from, enum coord_state to)
{
	switch (to) {
	case COORD_PREPARING_REBALANCE:
		return from == COORD_STABLE || from == COORD_COMPLETING_REBALANCE ||
		       from == COORD_EMPTY;
	case COORD_COMPLETING_REBALANCE:
	case COORD_EMPTY:
		return from == COORD_PREPARING_REBALANCE;
	case COORD_STABLE:
		return from == COORD_COMPLETING_REBALANCE;
	case COORD_DEAD:
		return true;
	}
	return false;
}

static void set_state(struct coord_group *g, enum coord_state s, int64_t now_ms)
{
	SL_ASSERT(transition_legal(g->state, s), "group %s: %s -> %s", g->group_id,
		  coord_state_name(g->state), coord_state_name(s));
	g->state_since_ms = now_ms;
	g->state = s;
	/* A write still out belongs to the state left (coord_persist_done
	 * and coord_static_persist_done then do nothing). */
	g->persist_pending = false;
	for (int32_t i = 0; i < g->member_count; i++) {
		replaced_free(g->members[i]->replaced);
		g->members[i]->replaced = NULL;
	}
}

static int32_t member_index(const struct coord_group *g, kstr id)
{
	for (int32_t i = 0; i < g->member_count; i++)
		if (kstr_eq(id, g->members[i]->member_id))
			return i;
	return -1;
}

static struct coord_member *member_get(const struct coord_group *g, kstr id)
{
	int32_t i = member_index(g, id);
	return i < 0 ? NULL : g->members[i];
}

static struct coord_member *member_by_instance(const struct coord_group *g, kstr instance)
{
	if (kstr_is_null(instance))
		return NULL;
	for (int32_t i = 0; i < g->member_count; i++)
		if (g->members[i]->group_instance_id && kstr_eq(instance, g->members[i]->group_instance_id))
			return g->members[i];
	return NULL;
}

static int32_t pending_index(const struct coord_group *g, kstr id)
{
	for (int32_t i = 0; i < g->pending_count; i++)
		if (kstr_eq(id, g->pending[i].member_id))
			return i;
	return -1;
}

static void pending_remove(struct coord_group *g, int32_t i)
{
	free(g->pending[i].member_id);
	g->pending[i] = g->pending[--g->pending_count];
}

/* Kafka's isStaticMemberFenced: the instance id is known under another
 * member id. */
static bool instance_fenced(const struct coord_group *g, kstr instance, kstr member_id)
{
	struct coord_member *m = member_by_instance(g, instance);
	return m && !kstr_eq(member_id, m->member_id);
}

/* Kafka's validateCurrentMember. */
static int16_t validate_member(const struct coord_group *g, kstr member_id, kstr instance)
{
	if (instance_fenced(g, instance, member_id))
		return KERR_FENCED_INSTANCE_ID;
	if (!member_get(g, member_id))
		return KERR_UNKNOWN_MEMBER_ID;
	return KERR_NONE;
}

static int32_t group_max_size(const struct coordinator *c)
{
	int32_t n = c->cfg.group_max_size;
	return n > 0 && n < COORD_GROUP_MEMBERS_MAX ? n : COORD_GROUP_MEMBERS_MAX;
}

static size_t metadata_bytes_max(const struct coordinator *c)
{
	size_t n = c->cfg.metadata_bytes_max;
	return n > 0 && n < SL_GROUPS_METADATA_BYTES_MAX ? n : SL_GROUPS_METADATA_BYTES_MAX;
}

static int32_t max_rebalance_timeout(const struct coord_group *g)
{
	int32_t t = 0;
	for (int32_t i = 0; i < g->member_count; i++)
		if (g->members[i]->rebalance_timeout_ms > t)
			t = g->members[i]->rebalance_timeout_ms;
	return t;
}

static bool member_supports(const struct coord_member *m, const char *name)
{
	for (int32_t i = 0; i < m->protocol_count; i++)
		if (strcmp(m->protocols[i].name, name) == 0)
			return true;
	return false;
}

/* Kafka's supportsProtocols: an empty group takes any non-empty offer;
 * otherwise the type must match and one offered protocol must be
 * supported by every other member. */
static bool supports_protocols(const struct coord_group *g, const struct coord_join_args *a,
			       const struct coord_member *self)
{
	if (a->protocol_type.len <= 0 || a->protocol_count <= 0)
		return false;
	int32_t others = 0;
	for (int32_t i = 0; i < g->member_count; i++)
		if (g->members[i] != self)
			others++;
	if (others == 0)
		return true;
	if (!g->protocol_type || !kstr_eq(a->protocol_type, g->protocol_type))
		return false;
	for (int32_t p = 0; p < a->protocol_count; p++) {
		bool all = true;
		for (int32_t i = 0; i < g->member_count && all; i++) {
			const struct coord_member *m = g->members[i];
			if (m == self)
				continue;
			bool found = false;
			for (int32_t k = 0; k < m->protocol_count && !found; k++)
				found = kstr_eq(a->protocols[p].name, m->protocols[k].name);
			all = found;
		}
		if (all)
			return true;
	}
	return false;
}

/* Same protocols, same order, same metadata (Kafka's member.matches). */
static bool member_matches(const struct coord_member *m, const struct coord_join_args *a)
{
	if (m->protocol_count != a->protocol_count)
		return false;
	for (int32_t i = 0; i < m->protocol_count; i++) {
		const struct coord_join_protocol *p = &a->protocols[i];
		int32_t len = p->metadata.len > 0 ? p->metadata.len : 0;
		if (!kstr_eq(p->name, m->protocols[i].name) || len != m->protocols[i].metadata_len ||
		    (len && memcmp(p->metadata.ptr, m->protocols[i].metadata, (size_t)len) != 0))
			return false;
	}
	return true;
}

/* Replace the member's protocols and timeouts from the join request. */
static int member_set_protocols(struct coordinator *c, struct coord_group *g,
				struct coord_member *m, const struct coord_join_args *a)
{
	struct coord_protocol *p = calloc((size_t)a->protocol_count, sizeof *p);
	if (!p)
		return SL_ENOMEM;
	for (int32_t i = 0; i < a->protocol_count; i++) {
		const struct coord_join_protocol *q = &a->protocols[i];
		int32_t len = q->metadata.len > 0 ? q->metadata.len : 0;
		p[i].name = kstr_dup(q->name);
		p[i].metadata = malloc(len ? (size_t)len : 1);
		p[i].metadata_len = len;
		if (!p[i].name || !p[i].metadata) {
			for (int32_t k = 0; k <= i; k++) {
				free(p[k].name);
				free(p[k].metadata);
			}
			free(p);
			return SL_ENOMEM;
		}
		if (len)
			memcpy(p[i].metadata, q->metadata.ptr, (size_t)len);
	}
	int64_t old_bytes = (int64_t)member_metadata_bytes(m);
	protocols_free(m->protocols, m->protocol_count);
	m->protocols = p;
	m->protocol_count = a->protocol_count;
	account(c, g, (int64_t)member_metadata_bytes(m) - old_bytes);
	m->session_timeout_ms = a->session_timeout_ms;
	m->rebalance_timeout_ms = a->rebalance_timeout_ms > 0 ? a->rebalance_timeout_ms
							      : a->session_timeout_ms;
	return 0;
}

const struct coord_protocol *coord_member_protocol(const struct coord_group *g,
						   const struct coord_member *m)
{
	if (!g->protocol_name)
		return NULL;
	for (int32_t i = 0; i < m->protocol_count; i++)
		if (strcmp(m->protocols[i].name, g->protocol_name) == 0)
			return &m->protocols[i];
	return NULL;
}

/* Kafka's selectProtocol: among the protocols every member supports,
 * each member votes for its most preferred; most votes wins (ties go to
 * the first member's preference order). NULL if there is none. */
static const char *select_protocol(const struct coord_group *g)
{
	if (g->member_count == 0)
		return NULL;
	const struct coord_member *first = g->members[0];
	const char *best = NULL;
	int32_t best_votes = -1;
	for (int32_t p = 0; p < first->protocol_count; p++) {
		const char *name = first->protocols[p].name;
		bool all = true;
		for (int32_t i = 1; i < g->member_count && all; i++)
			all = member_supports(g->members[i], name);
		if (!all)
			continue;
		int32_t votes = 0;
		for (int32_t i = 0; i < g->member_count; i++) {
			const struct coord_member *m = g->members[i];
			for (int32_t k = 0; k < m->protocol_count; k++) {
				const char *cand = m->protocols[k].name;
				/* the member's first protocol that all support */
				bool cand_all = true;
				for (int32_t j = 0; j < g->member_count && cand_all; j++)
					cand_all = member_supports(g->members[j], cand);
				if (!cand_all)
					continue;
				if (strcmp(cand, name) == 0)
					votes++;
				break;
			}
		}
		if (votes > best_votes) {
			best = name;
			best_votes = votes;
		}
	}
	return best;
}

static int set_str(char **dst, const char *s)
{
	char *p = NULL;
	if (s) {
		p = strdup(s);
		if (!p)
			return SL_ENOMEM;
	}
	free(*dst);
	*dst = p;
	return 0;
}

/* ---- effects for join answers ---- */

/* A successful JoinGroup answer for m in the current generation. */
static void eff_join_ok(struct coord_effects *e, void *req, const struct coord_group *g,
			const struct coord_member *m, const char *leader_id, bool with_members,
			bool skip_assignment)
{
	struct coord_effect *f = eff_push(e, req, COORD_EFFECT_JOIN, KERR_NONE);
	if (!f)
		return;
	f->generation_id = g->generation_id;
	f->protocol_type = eff_str(e, g->protocol_type);
	f->protocol_name = eff_str(e, g->protocol_name);
	f->leader_id = eff_str(e, leader_id ? leader_id : "");
	f->member_id = eff_str(e, m->member_id);
	f->skip_assignment = skip_assignment;
	if (!with_members)
		return;
	/* The budgets in coord_join keep this far below the bound; check it
	 * anyway before copying everything (a leader that gets the error
	 * rejoins, or is removed at the sync deadline). */
	size_t bytes = 0;
	for (int32_t i = 0; i < g->member_count; i++) {
		const struct coord_member *x = g->members[i];
		const struct coord_protocol *p = coord_member_protocol(g, x);
		bytes += strlen(x->member_id) + 16 + (p ? (size_t)p->metadata_len : 0) +
			 (x->group_instance_id ? strlen(x->group_instance_id) : 0);
	}
	if (bytes > SL_GROUP_JOIN_RESPONSE_BYTES_MAX) {
		f->error = KERR_GROUP_MAX_SIZE_REACHED;
		f->generation_id = -1;
		f->protocol_type = f->protocol_name = NULL;
		f->leader_id = eff_str(e, "");
		return;
	}
	f->members = eff_alloc(e, sizeof *f->members * (size_t)(g->member_count ? g->member_count : 1));
	if (!f->members)
		return;
	for (int32_t i = 0; i < g->member_count; i++) {
		const struct coord_member *x = g->members[i];
		const struct coord_protocol *p = coord_member_protocol(g, x);
		struct coord_member_view *v = &f->members[f->member_count++];
		v->member_id = eff_str(e, x->member_id);
		v->group_instance_id = eff_str(e, x->group_instance_id);
		v->metadata = eff_mem(e, p ? p->metadata : NULL, p ? p->metadata_len : 0);
		v->metadata_len = p ? p->metadata_len : 0;
	}
}

static void eff_sync_ok(struct coord_effects *e, void *req, const struct coord_group *g,
			const struct coord_member *m)
{
	struct coord_effect *f = eff_push(e, req, COORD_EFFECT_SYNC, KERR_NONE);
	if (!f)
		return;
	f->protocol_type = eff_str(e, g->protocol_type);
	f->protocol_name = eff_str(e, g->protocol_name);
	f->assignment = eff_mem(e, m->assignment, m->assignment_len);
	f->assignment_len = m->assignment ? m->assignment_len : 0;
}

/* ---- the state machine ---- */

static void try_complete_join(struct coordinator *c, struct coord_group *g, int64_t now_ms,
			      struct coord_effects *out);

/* Kafka's resetAndPropagateAssignmentError: leaving CompletingRebalance,
 * every pending SyncGroup gets the error and assignments are dropped. */
static void reset_assignments(struct coord_group *g, int16_t error, int64_t now_ms,
			      struct coord_effects *out)
{
	for (int32_t i = 0; i < g->member_count; i++) {
		struct coord_member *m = g->members[i];
		free(m->assignment);
		m->assignment = NULL;
		m->assignment_len = 0;
		m->pending_sync = false;
		if (m->sync_req) {
			/* Its session restarts now that it has an answer. */
			eff_sync_error(out, m->sync_req, error);
			m->sync_req = NULL;
			m->last_heartbeat_ms = now_ms;
		}
	}
}

static void prepare_rebalance(struct coordinator *c, struct coord_group *g, int64_t now_ms,
			      struct coord_effects *out)
{
	if (g->state == COORD_COMPLETING_REBALANCE)
		reset_assignments(g, KERR_REBALANCE_IN_PROGRESS, now_ms, out);
	int32_t rebalance_ms = max_rebalance_timeout(g);
	if (g->state == COORD_EMPTY && c->cfg.initial_rebalance_delay_ms > 0) {
		/* Kafka's InitialDelayedJoin: wait for more members to arrive,
		 * extended while they keep arriving, up to the rebalance timeout. */
		int64_t delay = c->cfg.initial_rebalance_delay_ms;
		g->initial_delay = true;
		/* Only members that arrive during the delay extend it. */
		g->new_member_added = false;
		g->join_deadline_ms = now_ms + delay;
		g->initial_delay_remaining_ms = rebalance_ms > delay ? rebalance_ms - delay : 0;
	} else {
		g->initial_delay = false;
		g->join_deadline_ms = now_ms + rebalance_ms;
	}
	set_state(g, COORD_PREPARING_REBALANCE, now_ms);
	try_complete_join(c, g, now_ms, out);
}

static void maybe_prepare_rebalance(struct coordinator *c, struct coord_group *g, int64_t now_ms,
				    struct coord_effects *out)
{
	if (g->state == COORD_STABLE || g->state == COORD_COMPLETING_REBALANCE ||
	    g->state == COORD_EMPTY)
		prepare_rebalance(c, g, now_ms, out);
}

/* Remove a member (leave, session expiry, sync expiry): its pending
 * requests get UNKNOWN_MEMBER_ID; the group rebalances. */
static void remove_member(struct coordinator *c, struct coord_group *g, int32_t idx,
			  int64_t now_ms, struct coord_effects *out)
{
	struct coord_member *m = g->members[idx];
	if (m->join_req)
		eff_join_error(out, m->join_req, KERR_UNKNOWN_MEMBER_ID, "");
	if (m->sync_req)
		eff_sync_error(out, m->sync_req, KERR_UNKNOWN_MEMBER_ID);
	m->join_req = m->sync_req = NULL;
	bool was_leader = g->leader_id && strcmp(g->leader_id, m->member_id) == 0;
	memmove(&g->members[idx], &g->members[idx + 1],
		sizeof *g->members * (size_t)(g->member_count - idx - 1));
	g->member_count--;
	member_drop(c, g, m);
	if (was_leader)
		set_str(&g->leader_id, g->member_count ? g->members[0]->member_id : NULL);
	switch (g->state) {
	case COORD_STABLE:
	case COORD_COMPLETING_REBALANCE:
		maybe_prepare_rebalance(c, g, now_ms, out);
		break;
	case COORD_PREPARING_REBALANCE:
		try_complete_join(c, g, now_ms, out);
		break;
	default:
		break;
	}
}

/* Kafka's onCompleteJoin. */
static void complete_join(struct coordinator *c, struct coord_group *g, int64_t now_ms,
			  struct coord_effects *out)
{
	/* Dynamic members that did not rejoin are gone; static ones stay
	 * until their session expires. */
	for (int32_t i = g->member_count - 1; i >= 0; i--) {
		struct coord_member *m = g->members[i];
		if (!m->join_req && !m->group_instance_id) {
			memmove(&g->members[i], &g->members[i + 1],
				sizeof *g->members * (size_t)(g->member_count - i - 1));
			g->member_count--;
			member_drop(c, g, m);
		}
	}
	if (g->member_count > 0) {
		/* Kafka's maybeElectNewJoinedLeader: the leader must be a member
		 * that rejoined; if none did, wait another rebalance timeout for
		 * sessions to remove the silent ones. */
		struct coord_member *leader = g->leader_id ? member_get(g, KSTR(g->leader_id)) : NULL;
		if (!leader || !leader->join_req) {
			leader = NULL;
			for (int32_t i = 0; i < g->member_count && !leader; i++)
				if (g->members[i]->join_req)
					leader = g->members[i];
			if (!leader) {
				g->initial_delay = false;
				g->join_deadline_ms = now_ms + max_rebalance_timeout(g);
				return;
			}
			set_str(&g->leader_id, leader->member_id);
		}
	} else {
		set_str(&g->leader_id, NULL);
	}
	/* Generations only grow: members fence stale requests by them. */
	SL_ASSERT(g->generation_id >= 0 && g->generation_id < INT32_MAX, "group %s: generation %" PRId32,
		  g->group_id, g->generation_id);
	g->generation_id++;
	g->new_member_added = false;
	g->initial_delay = false;
	if (g->member_count == 0) {
		set_str(&g->protocol_name, NULL);
		set_state(g, COORD_EMPTY, now_ms);
		store_changed(c, g);
		return;
	}
	if (set_str(&g->protocol_name, select_protocol(g)) != 0)
		out->oom = true;
	set_state(g, COORD_COMPLETING_REBALANCE, now_ms);
	g->sync_deadline_ms = now_ms + max_rebalance_timeout(g);
	for (int32_t i = 0; i < g->member_count; i++) {
		struct coord_member *m = g->members[i];
		m->is_new = false;
		m->pending_sync = true;
		m->last_heartbeat_ms = now_ms;
		if (!m->join_req)
			continue;
		bool leader = strcmp(m->member_id, g->leader_id) == 0;
		eff_join_ok(out, m->join_req, g, m, g->leader_id, leader, false);
		m->join_req = NULL;
	}
}

static bool all_joined(const struct coord_group *g)
{
	if (g->pending_count > 0)
		return false;
	for (int32_t i = 0; i < g->member_count; i++)
		if (!g->members[i]->join_req)
			return false;
	return true;
}

/* Kafka's DelayedJoin.tryComplete: done when every known member has
 * rejoined. The delayed initial join completes only on its timer. */
static void try_complete_join(struct coordinator *c, struct coord_group *g, int64_t now_ms,
			      struct coord_effects *out)
{
	if (g->state != COORD_PREPARING_REBALANCE || g->initial_delay)
		return;
	if (all_joined(g))
		complete_join(c, g, now_ms, out);
}

static void join_deadline_passed(struct coordinator *c, struct coord_group *g, int64_t now_ms,
				 struct coord_effects *out)
{
	if (g->initial_delay && g->new_member_added && g->initial_delay_remaining_ms > 0) {
		int64_t d = c->cfg.initial_rebalance_delay_ms;
		if (d > g->initial_delay_remaining_ms)
			d = g->initial_delay_remaining_ms;
		g->initial_delay_remaining_ms -= d;
		g->new_member_added = false;
		g->join_deadline_ms = now_ms + d;
		return;
	}
	complete_join(c, g, now_ms, out);
}

static int16_t persist_push(struct coord_group *g, const char *member_id,
			    struct coord_effects *out);

/* Kafka's addMemberAndRebalance. Takes ownership of member_id. */
static int add_member(struct coordinator *c, struct coord_group *g, char *member_id,
		      const struct coord_join_args *a, void *req, int64_t now_ms,
		      struct coord_effects *out)
{
	struct coord_member *m = calloc(1, sizeof *m);
	if (!m) {
		free(member_id);
		return SL_ENOMEM;
	}
	m->member_id = member_id;
	if (array_grow(&g->members, &g->member_cap, (size_t)g->member_count,
		       sizeof *g->members, 8) != 0)
		goto out_free_member;
	int32_t cid = a->client_id.len > COORD_CLIENT_ID_BYTES_MAX ? COORD_CLIENT_ID_BYTES_MAX
								   : a->client_id.len;
	int32_t chost = a->client_host.len > COORD_NAME_BYTES_MAX ? COORD_NAME_BYTES_MAX
								  : a->client_host.len;
	m->client_id = kstr_dup((kstr){ a->client_id.ptr, cid >= 0 ? cid : 0 });
	m->client_host = kstr_dup((kstr){ a->client_host.ptr, chost >= 0 ? chost : 0 });
	if (!kstr_is_null(a->group_instance_id)) {
		m->group_instance_id = kstr_dup(a->group_instance_id);
		if (!m->group_instance_id)
			goto out_free_member;
	}
	if (!m->client_id || !m->client_host || member_set_protocols(c, g, m, a) != 0)
		goto out_free_member;
	if (g->member_count == 0 && set_str(&g->protocol_type, NULL) == 0) {
		g->protocol_type = kstr_dup(a->protocol_type);
		if (!g->protocol_type)
			goto out_free_member;
	}
	m->join_req = req;
	m->is_new = true;
	m->last_heartbeat_ms = now_ms;
	g->members[g->member_count++] = m;
	if (!g->leader_id && set_str(&g->leader_id, m->member_id) != 0) {
		g->members[--g->member_count] = NULL;
		m->join_req = NULL; /* coord_join answers it (SL_ENOMEM) */
		goto out_free_member;
	}
	g->new_member_added = true;
	if (g->state == COORD_PREPARING_REBALANCE)
		try_complete_join(c, g, now_ms, out);
	else
		maybe_prepare_rebalance(c, g, now_ms, out);
	return 0;
out_free_member:
	member_drop(c, g, m);
	return SL_ENOMEM;
}

/* Kafka's updateMemberAndRebalance. */
static int update_member(struct coordinator *c, struct coord_group *g, struct coord_member *m,
			 const struct coord_join_args *a, void *req, int64_t now_ms,
			 struct coord_effects *out)
{
	if (member_set_protocols(c, g, m, a) != 0)
		return SL_ENOMEM;
	if (m->join_req && m->join_req != req)
		eff_join_error(out, m->join_req, KERR_REBALANCE_IN_PROGRESS, m->member_id);
	m->join_req = req;
	if (g->state == COORD_PREPARING_REBALANCE)
		try_complete_join(c, g, now_ms, out);
	else
		maybe_prepare_rebalance(c, g, now_ms, out);
	return 0;
}

/* m's protocols and timeouts go back to those r kept (r's are moved). */
static void protocols_restore(struct coordinator *c, struct coord_group *g, struct coord_member *m,
			      struct coord_replaced *r)
{
	account(c, g, -(int64_t)member_metadata_bytes(m));
	protocols_free(m->protocols, m->protocol_count);
	m->protocols = r->protocols;
	m->protocol_count = r->protocol_count;
	m->session_timeout_ms = r->session_timeout_ms;
	m->rebalance_timeout_ms = r->rebalance_timeout_ms;
	r->protocols = NULL;
	r->protocol_count = 0;
	account(c, g, (int64_t)member_metadata_bytes(m));
}

/* The write of m's new id failed (or could not be made): as Kafka's
 * storeGroup callback, the old id comes back with its protocols and the
 * JoinGroup hears the error, with no member id and the leader it had. */
static void static_revert(struct coordinator *c, struct coord_group *g, struct coord_member *m,
			  int16_t error, int64_t now_ms, struct coord_effects *out)
{
	struct coord_replaced *r = m->replaced;
	m->replaced = NULL;
	if (m->join_req) {
		struct coord_effect *f = eff_push(out, m->join_req, COORD_EFFECT_JOIN, error);
		if (f) {
			f->member_id = eff_str(out, "");
			f->generation_id = g->generation_id;
			f->protocol_type = eff_str(out, g->protocol_type);
			f->protocol_name = eff_str(out, g->protocol_name);
			f->leader_id = eff_str(out, r->leader_id ? r->leader_id : "");
		}
		m->join_req = NULL;
	}
	protocols_restore(c, g, m, r);
	if (g->leader_id && strcmp(g->leader_id, m->member_id) == 0) {
		/* It led: the old leader id is its old id. */
		free(g->leader_id);
		g->leader_id = r->leader_id;
		r->leader_id = NULL;
	}
	free(m->member_id);
	m->member_id = r->member_id;
	r->member_id = NULL;
	m->last_heartbeat_ms = now_ms;
	replaced_free(r);
}

/* Kafka's updateStaticMemberAndRebalance: a known group.instance.id joins
 * with no member id. The old member id is fenced. In a Stable group whose
 * protocol stays, the new id is stored before the JoinGroup is answered
 * (a COORD_EFFECT_PERSIST naming it; coord_static_persist_done). Takes
 * new_id. */
static int replace_static_member(struct coordinator *c, struct coord_group *g,
				 struct coord_member *m, char *new_id,
				 const struct coord_join_args *a, void *req, int64_t now_ms,
				 struct coord_effects *out)
{
	struct coord_replaced *r = calloc(1, sizeof *r);
	if (!r || (g->leader_id && !(r->leader_id = strdup(g->leader_id)))) {
		free(r);
		free(new_id);
		return SL_ENOMEM;
	}
	if (m->join_req)
		eff_join_error(out, m->join_req, KERR_FENCED_INSTANCE_ID, m->member_id);
	if (m->sync_req)
		eff_sync_error(out, m->sync_req, KERR_FENCED_INSTANCE_ID);
	m->join_req = m->sync_req = NULL;
	/* A replacement still being stored is overtaken by this one (its
	 * outcome then finds no member by its id). */
	replaced_free(m->replaced);
	m->replaced = NULL;
	bool was_leader = r->leader_id && strcmp(r->leader_id, m->member_id) == 0;
	r->member_id = m->member_id;
	m->member_id = new_id;
	if (was_leader)
		set_str(&g->leader_id, new_id);
	m->last_heartbeat_ms = now_ms;
	/* The old protocols are kept for a revert, off the budgets. */
	r->protocols = m->protocols;
	r->protocol_count = m->protocol_count;
	r->session_timeout_ms = m->session_timeout_ms;
	r->rebalance_timeout_ms = m->rebalance_timeout_ms;
	account(c, g, -(int64_t)member_metadata_bytes(m));
	m->protocols = NULL;
	m->protocol_count = 0;
	int rc = member_set_protocols(c, g, m, a);
	if (rc) {
		protocols_restore(c, g, m, r);
		replaced_free(r);
		return rc;
	}
	m->join_req = req;
	switch (g->state) {
	case COORD_STABLE: {
		const char *sel = select_protocol(g);
		if (sel && g->protocol_name && strcmp(sel, g->protocol_name) == 0) {
			/* Same protocol: no rebalance; stored, then answered. */
			r->skip_assignment = a->api_version >= 9;
			r->deadline_ms = now_ms + m->rebalance_timeout_ms;
			m->replaced = r;
			int16_t err = persist_push(g, m->member_id, out);
			if (err)
				static_revert(c, g, m, err, now_ms, out);
			return 0;
		}
		prepare_rebalance(c, g, now_ms, out);
		break;
	}
	case COORD_COMPLETING_REBALANCE:
		/* The leader may be assigning to the old member id: rebalance. */
		prepare_rebalance(c, g, now_ms, out);
		break;
	case COORD_PREPARING_REBALANCE:
		try_complete_join(c, g, now_ms, out);
		break;
	default:
		maybe_prepare_rebalance(c, g, now_ms, out);
		break;
	}
	replaced_free(r);
	return 0;
}

static bool can_accept_new_member(const struct coordinator *c, const struct coord_group *g)
{
	return g->member_count + g->pending_count < group_max_size(c);
}

/* Kafka's doUnknownJoinGroup (no member id). */
static int join_unknown(struct coordinator *c, struct coord_group *g,
			const struct coord_join_args *a, void *req, int64_t now_ms,
			struct coord_effects *out)
{
	if (!supports_protocols(g, a, NULL)) {
		eff_join_error(out, req, KERR_INCONSISTENT_GROUP_PROTOCOL, "");
		return 0;
	}
	struct coord_member *stat = member_by_instance(g, a->group_instance_id);
	if (!stat && !can_accept_new_member(c, g)) {
		eff_join_error(out, req, KERR_GROUP_MAX_SIZE_REACHED, "");
		return 0;
	}
	char *id = new_member_id(c, a->client_id, a->group_instance_id);
	if (!id)
		return SL_ENOMEM;
	if (stat)
		return replace_static_member(c, g, stat, id, a, req, now_ms, out);
	if (kstr_is_null(a->group_instance_id) && a->api_version >= 4) {
		/* KIP-394: hand out the id and let the client join with it, so
		 * a client that never sees this answer leaves no member. */
		if (array_grow(&g->pending, &g->pending_cap, (size_t)g->pending_count,
			       sizeof *g->pending, 8) != 0) {
			free(id);
			return SL_ENOMEM;
		}
		g->pending[g->pending_count].member_id = id;
		g->pending[g->pending_count].deadline_ms = now_ms + a->session_timeout_ms;
		g->pending_count++;
		eff_join_error(out, req, KERR_MEMBER_ID_REQUIRED, id);
		return 0;
	}
	return add_member(c, g, id, a, req, now_ms, out);
}

/* Kafka's doCurrentMemberJoinGroup (a member id given). */
static int join_known(struct coordinator *c, struct coord_group *g,
		      const struct coord_join_args *a, void *req, int64_t now_ms,
		      struct coord_effects *out)
{
	char *mid = NULL;
	struct coord_member *m = member_get(g, a->member_id);
	if (!supports_protocols(g, a, m)) {
		mid = kstr_dup(a->member_id);
		eff_join_error(out, req, KERR_INCONSISTENT_GROUP_PROTOCOL, mid);
		free(mid);
		return 0;
	}
	int32_t p = pending_index(g, a->member_id);
	if (p >= 0) {
		char *id = g->pending[p].member_id;
		g->pending[p].member_id = NULL;
		pending_remove(g, p);
		return add_member(c, g, id, a, req, now_ms, out);
	}
	bool instance_unknown = !kstr_is_null(a->group_instance_id) &&
				!member_by_instance(g, a->group_instance_id);
	int16_t err = KERR_NONE;
	if (instance_fenced(g, a->group_instance_id, a->member_id))
		err = KERR_FENCED_INSTANCE_ID;
	else if (!m || instance_unknown)
		err = KERR_UNKNOWN_MEMBER_ID;
	if (err) {
		mid = kstr_dup(a->member_id);
		eff_join_error(out, req, err, mid);
		free(mid);
		return 0;
	}
	switch (g->state) {
	case COORD_PREPARING_REBALANCE:
		return update_member(c, g, m, a, req, now_ms, out);
	case COORD_COMPLETING_REBALANCE:
		if (member_matches(m, a)) {
			/* It probably lost the answer: send it again. */
			bool leader = g->leader_id && strcmp(g->leader_id, m->member_id) == 0;
			eff_join_ok(out, req, g, m, g->leader_id, leader, false);
			return 0;
		}
		return update_member(c, g, m, a, req, now_ms, out);
	case COORD_STABLE: {
		bool leader = g->leader_id && strcmp(g->leader_id, m->member_id) == 0;
		/* A rejoining leader forces a rebalance (topic metadata may
		 * have changed); a follower with unchanged metadata just gets
		 * the current generation. */
		if (leader || !member_matches(m, a))
			return update_member(c, g, m, a, req, now_ms, out);
		eff_join_ok(out, req, g, m, g->leader_id, false, false);
		return 0;
	}
	default:
		eff_join_error(out, req, KERR_UNKNOWN_MEMBER_ID, m->member_id);
		return 0;
	}
}

int coord_join(struct coordinator *c, int64_t now_ms, const struct coord_join_args *args,
	       void *req, struct coord_effects *out)
{
	struct coord_join_args norm = *args;
	norm.group_instance_id = instance_norm(norm.group_instance_id);
	const struct coord_join_args *a = &norm;
	char *mid = NULL;
	size_t join_bytes = 0;
	int16_t err = KERR_NONE;
	if (a->group_id.len <= 0 || !group_id_ok(a->group_id))
		err = KERR_INVALID_GROUP_ID;
	else if (a->session_timeout_ms < c->cfg.session_timeout_min_ms ||
		 a->session_timeout_ms > c->cfg.session_timeout_max_ms)
		err = KERR_INVALID_SESSION_TIMEOUT;
	else if (a->protocol_type.len <= 0 || a->protocol_count <= 0)
		err = KERR_INCONSISTENT_GROUP_PROTOCOL;
	else if (a->protocol_count > COORD_PROTOCOLS_MAX ||
		 a->protocol_type.len > COORD_NAME_BYTES_MAX ||
		 a->member_id.len > COORD_CLIENT_ID_BYTES_MAX + 64 ||
		 a->group_instance_id.len > COORD_NAME_BYTES_MAX ||
		 has_nul(a->protocol_type) || has_nul(a->group_instance_id))
		err = KERR_INVALID_REQUEST;
	if (!err) {
		int64_t bytes = 0;
		for (int32_t i = 0; i < a->protocol_count; i++) {
			const struct coord_join_protocol *p = &a->protocols[i];
			if (p->name.len < 0 || p->name.len > COORD_NAME_BYTES_MAX || has_nul(p->name))
				err = KERR_INVALID_REQUEST;
			bytes += p->metadata.len > 0 ? p->metadata.len : 0;
		}
		if (bytes > COORD_MEMBER_METADATA_BYTES_MAX)
			err = KERR_INVALID_REQUEST;
		join_bytes = (size_t)bytes;
	}
	if (err) {
		if (err != KERR_INVALID_GROUP_ID && a->member_id.len <= COORD_CLIENT_ID_BYTES_MAX + 64)
			mid = kstr_dup(a->member_id);
		eff_join_error(out, req, err, mid);
		free(mid);
		return 0;
	}
	struct coord_group *g = group_get(c, a->group_id);
	if (!g) {
		if (a->member_id.len > 0) {
			mid = kstr_dup(a->member_id);
			eff_join_error(out, req, KERR_UNKNOWN_MEMBER_ID, mid);
			free(mid);
			return 0;
		}
		g = group_create(c, a->group_id, now_ms);
		if (!g) {
			eff_join_error(out, req, KERR_COORDINATOR_NOT_AVAILABLE, "");
			return 0;
		}
	}
	if (g->state == COORD_DEAD) {
		eff_join_error(out, req, KERR_COORDINATOR_NOT_AVAILABLE, "");
		return 0;
	}
	/* The group's members' metadata together, the new member's included
	 * (a known member's, or a static member's, replaces what it held):
	 * it is what the leader's JoinGroup response carries. And all groups'
	 * together, so many groups cannot add up to what one may not hold. */
	struct coord_member *known = a->member_id.len > 0 ? member_get(g, a->member_id)
							 : member_by_instance(g, a->group_instance_id);
	size_t held = known ? member_metadata_bytes(known) : 0;
	if (g->metadata_bytes - held + join_bytes > SL_GROUP_METADATA_BYTES_MAX ||
	    c->metadata_bytes - held + join_bytes > metadata_bytes_max(c)) {
		mid = a->member_id.len > 0 && a->member_id.len <= COORD_CLIENT_ID_BYTES_MAX + 64
			? kstr_dup(a->member_id) : NULL;
		eff_join_error(out, req, KERR_GROUP_MAX_SIZE_REACHED, mid ? mid : "");
		free(mid);
		return 0;
	}
	size_t before = out->n;
	int rc = a->member_id.len > 0 ? join_known(c, g, a, req, now_ms, out)
				      : join_unknown(c, g, a, req, now_ms, out);
	if (rc) {
		/* Nothing was registered for req: answer it here. */
		bool answered = false;
		for (size_t i = before; i < out->n; i++)
			answered |= out->v[i].req == req;
		if (!answered)
			eff_join_error(out, req, KERR_UNKNOWN_SERVER_ERROR, "");
	}
	return rc;
}

/* Kafka's isProtocolTypeConsistent / name check: a mismatch only when
 * both the request and the group name one. */
static bool protocol_consistent(kstr req, const char *group)
{
	return kstr_is_null(req) || !group || kstr_eq(req, group);
}

/* The group's record as it is now, out as a COORD_EFFECT_PERSIST
 * (member_id: a static member's new id, NULL for a generation). A
 * record that cannot be made or recorded fails as a write would: the
 * error is returned (the caller skips a PERSIST in a list marked oom). */
static int16_t persist_push(struct coord_group *g, const char *member_id,
			    struct coord_effects *out)
{
	struct kbuf b;
	kbuf_init(&b);
	coord_group_encode_members(g, &b);
	/* Bounded far below by the request and metadata limits. */
	int16_t err = b.oom ? KERR_COORDINATOR_NOT_AVAILABLE
		      : b.len > INT32_MAX ? KERR_UNKNOWN_SERVER_ERROR : KERR_NONE;
	struct coord_effect *f = err ? NULL : eff_push(out, NULL, COORD_EFFECT_PERSIST, KERR_NONE);
	if (f) {
		f->group_id = eff_str(out, g->group_id);
		f->generation_id = g->generation_id;
		f->protocol_type = eff_str(out, g->protocol_type);
		f->protocol_name = eff_str(out, g->protocol_name);
		f->leader_id = eff_str(out, g->leader_id);
		f->member_id = eff_str(out, member_id);
		f->members_record = eff_mem(out, b.data, (int32_t)b.len);
		f->members_record_len = b.len;
	}
	kbuf_free(&b);
	if (f && !out->oom)
		return KERR_NONE;
	if (!err) {
		out->oom = true;
		err = KERR_COORDINATOR_NOT_AVAILABLE;
	}
	return err;
}

/* Kafka's storeGroup in doSyncGroup: the group's record with the
 * leader's assignments goes out as a PERSIST effect, and the group stays
 * CompletingRebalance, its SyncGroups waiting, until coord_persist_done. */
static void persist_generation(struct coordinator *c, struct coord_group *g, int64_t now_ms,
			       struct coord_effects *out)
{
	int16_t err = persist_push(g, NULL, out);
	if (!err) {
		g->persist_pending = true;
		return;
	}
	reset_assignments(g, err, now_ms, out);
	prepare_rebalance(c, g, now_ms, out);
}

int coord_sync(struct coordinator *c, int64_t now_ms, const struct coord_sync_args *a,
	       void *req, struct coord_effects *out)
{
	struct coord_group *g = group_get(c, a->group_id);
	int16_t err = KERR_NONE;
	struct coord_member *m = NULL;
	kstr instance = instance_norm(a->group_instance_id);
	if (!g)
		err = KERR_UNKNOWN_MEMBER_ID;
	else if (g->state == COORD_DEAD)
		err = KERR_COORDINATOR_NOT_AVAILABLE;
	else if ((err = validate_member(g, a->member_id, instance)) != KERR_NONE)
		;
	else if (a->generation_id != g->generation_id)
		err = KERR_ILLEGAL_GENERATION;
	else if (!protocol_consistent(a->protocol_type, g->protocol_type) ||
		 !protocol_consistent(a->protocol_name, g->protocol_name))
		err = KERR_INCONSISTENT_GROUP_PROTOCOL;
	else if (g->state == COORD_EMPTY)
		err = KERR_UNKNOWN_MEMBER_ID;
	else if (g->state == COORD_PREPARING_REBALANCE)
		err = KERR_REBALANCE_IN_PROGRESS;
	if (!err) {
		for (int32_t i = 0; i < a->assignment_count; i++)
			if (a->assignments[i].assignment.len > COORD_ASSIGNMENT_BYTES_MAX)
				err = KERR_INVALID_REQUEST;
	}
	if (err) {
		eff_sync_error(out, req, err);
		return 0;
	}
	m = member_get(g, a->member_id);
	m->last_heartbeat_ms = now_ms;
	m->pending_sync = false;
	if (g->state == COORD_STABLE) {
		eff_sync_ok(out, req, g, m);
		return 0;
	}
	/* CompletingRebalance: wait for the leader's assignments. */
	if (m->sync_req && m->sync_req != req)
		eff_sync_error(out, m->sync_req, KERR_REBALANCE_IN_PROGRESS);
	m->sync_req = req;
	/* A leader that sends again while its assignments are being stored
	 * waits for that write (its first assignment stands). */
	if (!g->leader_id || strcmp(m->member_id, g->leader_id) != 0 || g->persist_pending)
		return 0;
	/* The leader: assignments for unknown members are ignored (as in
	 * Kafka), members it left out get an empty assignment. */
	for (int32_t i = 0; i < g->member_count; i++) {
		struct coord_member *x = g->members[i];
		free(x->assignment);
		x->assignment = NULL;
		x->assignment_len = 0;
		for (int32_t k = a->assignment_count - 1; k >= 0; k--) {
			const struct coord_sync_assignment *as = &a->assignments[k];
			if (!kstr_eq(as->member_id, x->member_id))
				continue;
			int32_t len = as->assignment.len > 0 ? as->assignment.len : 0;
			x->assignment = malloc(len ? (size_t)len : 1);
			if (!x->assignment) {
				out->oom = true;
				break;
			}
			if (len)
				memcpy(x->assignment, as->assignment.ptr, (size_t)len);
			x->assignment_len = len;
			break;
		}
	}
	persist_generation(c, g, now_ms, out);
	return 0;
}

void coord_persist_done(struct coordinator *c, int64_t now_ms, kstr group_id,
			int32_t generation_id, int16_t error, struct coord_effects *out)
{
	struct coord_group *g = group_get(c, group_id);
	if (!g || !g->persist_pending || g->state != COORD_COMPLETING_REBALANCE ||
	    g->generation_id != generation_id)
		return;
	g->persist_pending = false;
	if (error != KERR_NONE) {
		/* Kafka's resetAndPropagateAssignmentError, then
		 * maybePrepareRebalance: every waiting member hears the
		 * error, nobody keeps an assignment nobody stored. */
		reset_assignments(g, error, now_ms, out);
		prepare_rebalance(c, g, now_ms, out);
		return;
	}
	set_state(g, COORD_STABLE, now_ms);
	for (int32_t i = 0; i < g->member_count; i++) {
		struct coord_member *x = g->members[i];
		if (!x->sync_req)
			continue;
		eff_sync_ok(out, x->sync_req, g, x);
		x->sync_req = NULL;
		x->last_heartbeat_ms = now_ms;
	}
}

void coord_static_persist_done(struct coordinator *c, int64_t now_ms, kstr group_id,
			       kstr member_id, int16_t error, struct coord_effects *out)
{
	struct coord_group *g = group_get(c, group_id);
	struct coord_member *m = g ? member_get(g, member_id) : NULL;
	if (!m || !m->replaced || g->state != COORD_STABLE)
		return;
	if (error != KERR_NONE) {
		static_revert(c, g, m, error, now_ms, out);
		return;
	}
	struct coord_replaced *r = m->replaced;
	m->replaced = NULL;
	if (m->join_req) {
		/* A v9+ leader learns the members but skips assigning; the
		 * others (and an older leader) get the old leader id, so no
		 * one assigns in a stable group. */
		bool leader = g->leader_id && strcmp(g->leader_id, m->member_id) == 0;
		if (r->skip_assignment)
			eff_join_ok(out, m->join_req, g, m, g->leader_id, leader, leader);
		else
			eff_join_ok(out, m->join_req, g, m, r->leader_id, false, false);
		m->join_req = NULL;
		m->last_heartbeat_ms = now_ms;
	}
	replaced_free(r);
}

int16_t coord_heartbeat(struct coordinator *c, int64_t now_ms, kstr group_id,
			int32_t generation_id, kstr member_id, kstr group_instance_id)
{
	struct coord_group *g = group_get(c, group_id);
	group_instance_id = instance_norm(group_instance_id);
	if (!g)
		return KERR_UNKNOWN_MEMBER_ID;
	if (g->state == COORD_DEAD)
		return KERR_COORDINATOR_NOT_AVAILABLE;
	if (g->state == COORD_EMPTY)
		return KERR_UNKNOWN_MEMBER_ID;
	int16_t err = validate_member(g, member_id, group_instance_id);
	if (err)
		return err;
	if (generation_id != g->generation_id)
		return KERR_ILLEGAL_GENERATION;
	struct coord_member *m = member_get(g, member_id);
	m->last_heartbeat_ms = now_ms;
	return g->state == COORD_PREPARING_REBALANCE ? KERR_REBALANCE_IN_PROGRESS : KERR_NONE;
}

int16_t coord_leave(struct coordinator *c, int64_t now_ms, kstr group_id, kstr member_id,
		    kstr group_instance_id, bool *group_found, struct coord_effects *out)
{
	struct coord_group *g = group_get(c, group_id);
	group_instance_id = instance_norm(group_instance_id);
	*group_found = g != NULL;
	if (!g)
		return KERR_UNKNOWN_MEMBER_ID;
	if (g->state == COORD_DEAD)
		return KERR_COORDINATOR_NOT_AVAILABLE;
	int32_t idx;
	if (member_id.len <= 0) {
		/* Administrative removal by group.instance.id. */
		struct coord_member *m = member_by_instance(g, group_instance_id);
		if (!m)
			return KERR_UNKNOWN_MEMBER_ID;
		idx = member_index(g, KSTR(m->member_id));
	} else {
		int32_t p = pending_index(g, member_id);
		if (p >= 0) {
			pending_remove(g, p);
			try_complete_join(c, g, now_ms, out);
			return KERR_NONE;
		}
		int16_t err = validate_member(g, member_id, group_instance_id);
		if (err)
			return err;
		idx = member_index(g, member_id);
	}
	remove_member(c, g, idx, now_ms, out);
	return KERR_NONE;
}

/* When m's session ends: Kafka's shouldKeepAlive, members waiting in a
 * join or sync are alive (a new member's join only for
 * SL_GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS); INT64_MAX while it waits. */
static int64_t member_deadline(const struct coord_member *m)
{
	if (m->join_req)
		return m->is_new ? m->last_heartbeat_ms + SL_GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS
				 : INT64_MAX;
	if (m->sync_req)
		return INT64_MAX;
	return m->last_heartbeat_ms + m->session_timeout_ms;
}

static bool keep_alive(const struct coord_member *m, int64_t now_ms)
{
	return now_ms < member_deadline(m);
}

struct tick_arg {
	struct coordinator *c;
	int64_t now_ms;
	struct coord_effects *out;
};

static void tick_group(void *arg, const char *key, void *value)
{
	struct tick_arg *t = arg;
	struct coordinator *c = t->c;
	struct coord_group *g = value;
	int64_t now = t->now_ms;
	bool removed_pending = false;
	for (int32_t i = g->pending_count - 1; i >= 0; i--) {
		if (now >= g->pending[i].deadline_ms) {
			pending_remove(g, i);
			removed_pending = true;
		}
	}
	if (removed_pending)
		try_complete_join(c, g, now, t->out);
	for (int32_t i = g->member_count - 1; i >= 0; i--) {
		if (i < g->member_count && !keep_alive(g->members[i], now))
			remove_member(c, g, i, now, t->out);
	}
	/* A static member's new id whose write has not answered in time:
	 * Kafka maps a timed-out append to REBALANCE_IN_PROGRESS (storeGroup),
	 * and its callback puts the old id back. */
	for (int32_t i = 0; g->state == COORD_STABLE && i < g->member_count; i++) {
		struct coord_member *m = g->members[i];
		if (m->replaced && now >= m->replaced->deadline_ms)
			static_revert(c, g, m, KERR_REBALANCE_IN_PROGRESS, now, t->out);
	}
	if (g->state == COORD_PREPARING_REBALANCE && now >= g->join_deadline_ms)
		join_deadline_passed(c, g, now, t->out);
	if ((g->state == COORD_COMPLETING_REBALANCE || g->state == COORD_STABLE) &&
	    now >= g->sync_deadline_ms) {
		/* Members that never sent SyncGroup (the leader among them)
		 * are removed; the rest rebalance. As Kafka's expirePendingSync,
		 * this holds in Stable too: the leader's sync made the group
		 * Stable, but a follower that never syncs would otherwise keep
		 * its assigned partitions unconsumed forever. */
		bool removed = false;
		for (int32_t i = g->member_count - 1; i >= 0; i--) {
			if (i >= g->member_count || !g->members[i]->pending_sync)
				continue;
			struct coord_member *m = g->members[i];
			if (m->join_req)
				eff_join_error(t->out, m->join_req, KERR_UNKNOWN_MEMBER_ID, "");
			if (m->sync_req)
				eff_sync_error(t->out, m->sync_req, KERR_UNKNOWN_MEMBER_ID);
			m->join_req = m->sync_req = NULL;
			bool was_leader = g->leader_id && strcmp(g->leader_id, m->member_id) == 0;
			memmove(&g->members[i], &g->members[i + 1],
				sizeof *g->members * (size_t)(g->member_count - i - 1));
			g->member_count--;
			member_drop(c, g, m);
			if (was_leader)
				set_str(&g->leader_id, g->member_count ? g->members[0]->member_id : NULL);
			removed = true;
		}
		if (removed || g->state == COORD_COMPLETING_REBALANCE)
			prepare_rebalance(c, g, now, t->out);
		else
			g->sync_deadline_ms = INT64_MAX; /* everyone synced */
	}
}

void coord_tick(struct coordinator *c, int64_t now_ms, struct coord_effects *out)
{
	struct tick_arg t = { c, now_ms, out };
	strmap_each(&c->groups, tick_group, &t);
}

static void next_deadline_group(void *arg, const char *key, void *value)
{
	int64_t *next = arg;
	const struct coord_group *g = value;
	int64_t d = INT64_MAX;
	for (int32_t i = 0; i < g->pending_count; i++)
		if (g->pending[i].deadline_ms < d)
			d = g->pending[i].deadline_ms;
	for (int32_t i = 0; i < g->member_count; i++) {
		int64_t m = member_deadline(g->members[i]);
		if (m < d)
			d = m;
		if (g->state == COORD_STABLE && g->members[i]->replaced &&
		    g->members[i]->replaced->deadline_ms < d)
			d = g->members[i]->replaced->deadline_ms;
	}
	if (g->state == COORD_PREPARING_REBALANCE && g->join_deadline_ms < d)
		d = g->join_deadline_ms;
	if ((g->state == COORD_COMPLETING_REBALANCE || g->state == COORD_STABLE) &&
	    g->sync_deadline_ms < d)
		d = g->sync_deadline_ms;
	if (d < *next)
		*next = d;
}

int64_t coord_next_deadline(const struct coordinator *c)
{
	int64_t next = INT64_MAX;
	strmap_each(&c->groups, next_deadline_group, &next);
	return next;
}

static void shutdown_group(void *arg, const char *key, void *value)
{
	struct coord_effects *out = arg;
	struct coord_group *g = value;
	for (int32_t i = 0; i < g->member_count; i++) {
		struct coord_member *m = g->members[i];
		if (m->join_req)
			eff_join_error(out, m->join_req, KERR_NOT_COORDINATOR, m->member_id);
		if (m->sync_req)
			eff_sync_error(out, m->sync_req, KERR_NOT_COORDINATOR);
		m->join_req = m->sync_req = NULL;
	}
}

void coord_shutdown(struct coordinator *c, struct coord_effects *out)
{
	strmap_each(&c->groups, shutdown_group, out);
}

int16_t coord_commit_check(struct coordinator *c, int64_t now_ms, kstr group_id,
			   int32_t generation_id, kstr member_id, kstr group_instance_id,
			   int16_t api_version)
{
	group_instance_id = instance_norm(group_instance_id);
	if (!group_id_ok(group_id))
		return KERR_INVALID_GROUP_ID;
	struct coord_group *g = group_get(c, group_id);
	if (!g) {
		/* A client managing its own partitions: the group is created,
		 * Empty. A member of a generation this agent does not know
		 * (e.g. after a restart) must rejoin. */
		if (generation_id >= 0)
			return api_version >= 9 ? KERR_GROUP_ID_NOT_FOUND : KERR_ILLEGAL_GENERATION;
		g = group_create(c, group_id, now_ms);
		if (!g)
			return KERR_COORDINATOR_NOT_AVAILABLE;
	}
	if (g->state == COORD_DEAD)
		return KERR_COORDINATOR_NOT_AVAILABLE;
	if (generation_id < 0 && g->state == COORD_EMPTY)
		return KERR_NONE;
	if (generation_id >= 0 || member_id.len > 0 || !kstr_is_null(group_instance_id)) {
		int16_t err = validate_member(g, member_id, group_instance_id);
		if (err)
			return err;
		if (generation_id != g->generation_id)
			return KERR_ILLEGAL_GENERATION;
	} else if (g->state != COORD_EMPTY) {
		/* Only members may commit to a group with members. */
		return KERR_UNKNOWN_MEMBER_ID;
	}
	if (g->state == COORD_COMPLETING_REBALANCE)
		return KERR_REBALANCE_IN_PROGRESS;
	struct coord_member *m = member_get(g, member_id);
	if (m)
		m->last_heartbeat_ms = now_ms;
	return KERR_NONE;
}

int16_t coord_txn_commit_check(struct coordinator *c, int64_t now_ms, kstr group_id,
			       int32_t generation_id, kstr member_id, kstr group_instance_id)
{
	group_instance_id = instance_norm(group_instance_id);
	/* Kafka's isValidGroupId: only the plain offset APIs take "". */
	if (group_id.len == 0 || !group_id_ok(group_id))
		return KERR_INVALID_GROUP_ID;
	struct coord_group *g = group_get(c, group_id);
	if (!g && !(g = group_create(c, group_id, now_ms)))
		return KERR_COORDINATOR_NOT_AVAILABLE;
	if (g->state == COORD_DEAD)
		return KERR_COORDINATOR_NOT_AVAILABLE;
	/* No generation: an Empty group takes it whatever the member says
	 * (as a plain commit); a group with members only without member
	 * information (transactional commits before v3 carry none). */
	if (generation_id < 0 && (g->state == COORD_EMPTY ||
				  (member_id.len == 0 && kstr_is_null(group_instance_id))))
		return KERR_NONE;
	int16_t err = validate_member(g, member_id, group_instance_id);
	if (err)
		return err;
	return generation_id != g->generation_id ? KERR_ILLEGAL_GENERATION : KERR_NONE;
}

struct requests_arg {
	void (*fn)(void *arg, void *req);
	void *arg;
};

static void requests_group(void *arg, const char *key, void *value)
{
	struct requests_arg *r = arg;
	const struct coord_group *g = value;
	for (int32_t i = 0; i < g->member_count; i++) {
		if (g->members[i]->join_req)
			r->fn(r->arg, g->members[i]->join_req);
		if (g->members[i]->sync_req)
			r->fn(r->arg, g->members[i]->sync_req);
	}
}

void coord_requests_each(const struct coordinator *c, void (*fn)(void *arg, void *req), void *arg)
{
	struct requests_arg r = { fn, arg };
	strmap_each(&c->groups, requests_group, &r);
}

const struct coord_group *coord_group_find(const struct coordinator *c, kstr group_id)
{
	return group_get(c, group_id);
}

struct each_arg {
	void (*fn)(void *arg, const struct coord_group *g);
	void *arg;
};

static void each_group(void *arg, const char *key, void *value)
{
	struct each_arg *e = arg;
	e->fn(e->arg, value);
}

void coord_groups_each(const struct coordinator *c,
		       void (*fn)(void *arg, const struct coord_group *g), void *arg)
{
	struct each_arg e = { fn, arg };
	strmap_each(&c->groups, each_group, &e);
}

size_t coord_group_count(const struct coordinator *c)
{
	return c->groups.count;
}

int16_t coord_group_delete(struct coordinator *c, kstr group_id)
{
	struct coord_group *g = group_get(c, group_id);
	if (!g)
		return KERR_NONE;
	if (g->member_count > 0 || g->state != COORD_EMPTY)
		return KERR_NON_EMPTY_GROUP;
	strmap_del(&c->groups, g->group_id);
	group_free(c, g);
	return KERR_NONE;
}

void coord_group_unload(struct coordinator *c, kstr group_id, struct coord_effects *out)
{
	struct coord_group *g = group_get(c, group_id);
	if (!g)
		return;
	shutdown_group(out, g->group_id, g);
	strmap_del(&c->groups, g->group_id);
	group_free(c, g);
}

int coord_new(const struct coord_config *cfg, struct coordinator **out)
{
	struct coordinator *c = calloc(1, sizeof *c);
	if (!c)
		return SL_ENOMEM;
	c->cfg = *cfg;
	strmap_init(&c->groups);
	*out = c;
	return 0;
}

static void free_group_each(void *arg, const char *key, void *value)
{
	group_free(NULL, value);
}

void coord_free(struct coordinator *c)
{
	if (!c)
		return;
	strmap_each(&c->groups, free_group_each, NULL);
	strmap_free(&c->groups);
	free(c);
}

/* ---- what a store keeps of a group ---- */

uint64_t coord_store_changes(const struct coordinator *c)
{
	return c->store_changes;
}

/* The record's format version (Kafka's GroupMetadataValue's). */
#define COORD_RECORD_VERSION 3

static void put_str(struct kbuf *b, const char *s)
{
	if (!s) {
		kbuf_put_i16(b, -1);
		return;
	}
	size_t n = strlen(s);
	if (n > INT16_MAX) { /* ids are bounded far below on the way in */
		b->oom = true;
		return;
	}
	kbuf_put_i16(b, (int16_t)n);
	kbuf_put(b, s, n);
}

static void put_bytes(struct kbuf *b, const uint8_t *p, int32_t n)
{
	kbuf_put_i32(b, n > 0 ? n : 0);
	if (n > 0)
		kbuf_put(b, p, (size_t)n);
}

void coord_group_encode_members(const struct coord_group *g, struct kbuf *out)
{
	kbuf_put_i16(out, COORD_RECORD_VERSION);
	kbuf_put_i32(out, g->member_count);
	for (int32_t i = 0; i < g->member_count; i++) {
		const struct coord_member *m = g->members[i];
		const struct coord_protocol *p = coord_member_protocol(g, m);
		put_str(out, m->member_id);
		put_str(out, m->group_instance_id);
		put_str(out, m->client_id);
		put_str(out, m->client_host);
		kbuf_put_i32(out, m->rebalance_timeout_ms);
		kbuf_put_i32(out, m->session_timeout_ms);
		put_bytes(out, p ? p->metadata : NULL, p ? p->metadata_len : 0);
		put_bytes(out, m->assignment, m->assignment_len);
	}
}

/* A string of at most max bytes without NUL (NULL and *null for a null
 * one when nullable); NULL with r->err set otherwise. */
static char *read_str(struct kreader *r, size_t max, bool nullable, bool *null)
{
	int16_t n = kreader_i16(r);
	*null = n == -1 && nullable;
	if (*null || r->err)
		return NULL;
	const uint8_t *p = n >= 0 && (size_t)n <= max ? kreader_take(r, (size_t)n) : NULL;
	char *s = p ? kstr_dup((kstr){ (const char *)p, n }) : NULL;
	if (!s || memchr(p, 0, (size_t)n)) {
		free(s);
		r->err = true;
		return NULL;
	}
	return s;
}

/* Bytes of at most max (copied; an empty one is a 1-byte allocation). */
static uint8_t *read_bytes(struct kreader *r, size_t max, int32_t *len)
{
	int32_t n = kreader_i32(r);
	const uint8_t *p = n >= 0 && (size_t)n <= max ? kreader_take(r, (size_t)n) : NULL;
	uint8_t *v = p ? malloc(n ? (size_t)n : 1) : NULL;
	if (!v) {
		r->err = true;
		return NULL;
	}
	memcpy(v, p, (size_t)n);
	*len = n;
	return v;
}

static struct coord_member *read_member(struct kreader *r, const char *protocol)
{
	struct coord_member *m = calloc(1, sizeof *m);
	struct coord_protocol *p = calloc(1, sizeof *p);
	bool null;
	if (!m || !p) {
		free(p);
		free(m);
		r->err = true;
		return NULL;
	}
	m->protocols = p;
	m->member_id = read_str(r, INT16_MAX, false, &null);
	m->group_instance_id = read_str(r, INT16_MAX, true, &null);
	m->client_id = read_str(r, COORD_CLIENT_ID_BYTES_MAX, false, &null);
	m->client_host = read_str(r, COORD_NAME_BYTES_MAX, false, &null);
	m->rebalance_timeout_ms = kreader_i32(r);
	m->session_timeout_ms = kreader_i32(r);
	p->metadata = read_bytes(r, COORD_MEMBER_METADATA_BYTES_MAX, &p->metadata_len);
	m->protocol_count = 1;
	p->name = protocol ? strdup(protocol) : NULL;
	m->assignment = read_bytes(r, COORD_ASSIGNMENT_BYTES_MAX, &m->assignment_len);
	if (!r->err && (!p->name || m->session_timeout_ms <= 0 || m->rebalance_timeout_ms <= 0))
		r->err = true;
	if (r->err) {
		member_free(m);
		return NULL;
	}
	return m;
}

int coord_group_restore(struct coordinator *c, int64_t now_ms, kstr group_id,
			const struct coord_group_record *rec)
{
	if (group_get(c, group_id))
		return SL_EBUSY;
	struct kreader r;
	kreader_init(&r, rec->members, rec->members_len);
	int16_t version = kreader_i16(&r);
	int32_t n = kreader_i32(&r);
	if (r.err || version != COORD_RECORD_VERSION || n < 0 || n > group_max_size(c) ||
	    rec->generation_id < 0 || (n > 0 && (!rec->protocol_name || !rec->leader_id)))
		return SL_EINVAL;
	struct coord_group *g = group_create(c, group_id, now_ms);
	if (!g)
		return SL_ENOMEM;
	int rc = 0;
	g->generation_id = rec->generation_id;
	if (set_str(&g->protocol_type, rec->protocol_type) || set_str(&g->protocol_name, rec->protocol_name) ||
	    set_str(&g->leader_id, n > 0 ? rec->leader_id : NULL) ||
	    array_grow(&g->members, &g->member_cap, 0, sizeof *g->members,
		       (size_t)n + 8) != 0)
		rc = SL_ENOMEM;
	for (int32_t i = 0; !rc && i < n; i++) {
		struct coord_member *m = read_member(&r, rec->protocol_name);
		if (!m) {
			rc = SL_EINVAL;
			break;
		}
		m->last_heartbeat_ms = now_ms;
		g->members[g->member_count++] = m;
		account(c, g, (int64_t)member_metadata_bytes(m));
		if (member_index(g, KSTR(m->member_id)) != g->member_count - 1 ||
		    g->metadata_bytes > COORD_GROUP_METADATA_BYTES_MAX ||
		    c->metadata_bytes > metadata_bytes_max(c))
			rc = SL_EINVAL;
	}
	if (!rc && (kreader_left(&r) || (n > 0 && !member_get(g, KSTR(rec->leader_id)))))
		rc = SL_EINVAL;
	if (rc) {
		strmap_del(&c->groups, g->group_id);
		group_free(c, g);
		return rc;
	}
	g->state = n > 0 ? COORD_STABLE : COORD_EMPTY;
	return 0;
}
