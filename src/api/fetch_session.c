/* fetch_session.c — the agent's incremental fetch sessions (KIP-227):
 * the bounded cache (ids, LRU, eviction) and each session's partitions,
 * what they last answered, in the order the next fetch reads them (an
 * order stamp per partition: rotating the answered ones to the end costs
 * what was answered), and which of them an incremental fetch reads.
 * Pure logic: fetch.c calls fetch_session_begin before its first gather
 * and fetch_session_end before encoding, and hands in the agent's change
 * journal (fetch_env). See fetch_session.h for the rules. */
#define _GNU_SOURCE /* qsort_r */
#include "api/fetch_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/grow.h"
#include "base/limits.h"
#include "base/strmap.h"
#include "proto/kerr.h"

/* Kafka's epochs (FetchMetadata): -1 ends a session (and asks for none),
 * 0 starts one. */
#define EPOCH_FINAL (-1)
#define EPOCH_INITIAL 0

struct fs_topic {
	char *name;                /* v < 13; owned */
	int32_t name_len;
	uint8_t id[16];            /* v >= 13 */
	/* As the last answer found it: an incremental fetch that finds it
	 * otherwise reads every partition. */
	int64_t tid;               /* -1: none such */
	bool readable;
	bool known;                /* tid and readable were set */
};

struct fs_entry {
	uint32_t topic;            /* index into the session's topics */
	int32_t partition;
	int64_t fetch_offset;
	int32_t max_bytes;
	int64_t high_watermark;    /* as last answered; -1: never, or an error */
	int64_t log_start_offset;  /* as last answered */
	int64_t last_stable_offset; /* as last answered */
	uint64_t order;            /* fetches read entries by ascending order */
	uint64_t mark;             /* == a fetch's stamp: in its parts */
	bool pending;              /* last answered with an error or records
				      left to read: read by the next fetch */
};

struct session {
	struct session *lru_prev, *lru_next; /* the cache's list, least recent first */
	int32_t id, epoch;
	bool topic_ids;
	int64_t last_used_ms;
	uint64_t generation;       /* bumped at every change of entries' order */
	struct fs_topic *topics;
	size_t topics_count, topics_cap;
	struct strmap topic_index; /* topic key -> index + 1 */
	struct fs_entry *entries;  /* in fetch order */
	size_t count, cap;
	uint32_t *index;           /* open addressing: entry index + 1, 0 empty */
	size_t index_cap;          /* a power of two, at least twice count */
	uint64_t next_order;       /* the next order stamp */
	uint64_t stamp;            /* the last fetch's mark */
	uint64_t seq;              /* the journal position the entries' answers
				      and pending cover */
	bool open;                 /* a fetch began and has not ended */
	bool scan_all;             /* the next fetch reads every entry */
	uint32_t *pending;         /* indexes of the pending entries */
	size_t pending_count, pending_cap;
};

struct fetch_sessions {
	size_t slots_max, partitions_max, partitions;
	int64_t eviction_ms;
	struct session *lru_head, *lru_tail;
	size_t count;
	struct strmap by_id;       /* decimal id -> session */
	uint64_t rng;
};

/* ---- the cache ---- */

struct fetch_sessions *fetch_sessions_new(size_t slots_max, size_t partitions_max,
					  int64_t eviction_ms)
{
	struct fetch_sessions *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->slots_max = slots_max;
	c->partitions_max = partitions_max;
	c->eviction_ms = eviction_ms;
	strmap_init(&c->by_id);
	if (getrandom(&c->rng, sizeof c->rng, 0) != sizeof c->rng)
		c->rng = (uint64_t)clock_mono_us() ^ ((uint64_t)getpid() << 32);
	c->rng |= 1;
	return c;
}

static void id_key(int32_t id, char key[16])
{
	snprintf(key, 16, "%d", (int)id);
}

static struct session *session_find(struct fetch_sessions *c, int32_t id)
{
	char key[16];
	id_key(id, key);
	return strmap_get(&c->by_id, key);
}

static void lru_unlink(struct fetch_sessions *c, struct session *s)
{
	if (s->lru_prev) s->lru_prev->lru_next = s->lru_next; else c->lru_head = s->lru_next;
	if (s->lru_next) s->lru_next->lru_prev = s->lru_prev; else c->lru_tail = s->lru_prev;
	s->lru_prev = s->lru_next = NULL;
}

static void lru_append(struct fetch_sessions *c, struct session *s)
{
	s->lru_prev = c->lru_tail;
	s->lru_next = NULL;
	if (c->lru_tail) c->lru_tail->lru_next = s; else c->lru_head = s;
	c->lru_tail = s;
}

static void session_touch(struct fetch_sessions *c, struct session *s, int64_t now_ms)
{
	s->last_used_ms = now_ms;
	lru_unlink(c, s);
	lru_append(c, s);
}

static void session_destroy(struct session *s)
{
	for (size_t i = 0; i < s->topics_count; i++)
		free(s->topics[i].name);
	free(s->topics);
	strmap_free(&s->topic_index);
	free(s->entries);
	free(s->index);
	free(s->pending);
	free(s);
}

static void session_remove(struct fetch_sessions *c, struct session *s)
{
	char key[16];
	id_key(s->id, key);
	strmap_del(&c->by_id, key);
	lru_unlink(c, s);
	c->count--;
	c->partitions -= s->count;
	session_destroy(s);
}

void fetch_sessions_free(struct fetch_sessions *c)
{
	if (!c)
		return;
	while (c->lru_head)
		session_remove(c, c->lru_head);
	strmap_free(&c->by_id);
	free(c);
}

size_t fetch_sessions_count(const struct fetch_sessions *c)
{
	return c->count;
}

/* Room for a new session of `size` partitions, as Kafka's
 * FetchSessionCache.tryEvict decides (no privileged sessions here: no
 * followers fetch): a free slot; else the least recently used session if
 * idle for eviction_ms; else the smallest if the new one is larger. The
 * partition budget evicts idle sessions only. */
static bool make_room(struct fetch_sessions *c, int64_t now_ms, size_t size)
{
	if (size > c->partitions_max || size > SL_FETCH_SESSION_PARTITIONS_EACH_MAX)
		return false;
	if (c->count >= c->slots_max) {
		struct session *lru = c->lru_head, *small = NULL;
		if (!lru)
			return false;
		if (now_ms - lru->last_used_ms > c->eviction_ms) {
			session_remove(c, lru);
		} else {
			for (struct session *s = c->lru_head; s; s = s->lru_next)
				if (!small || s->count < small->count ||
				    (s->count == small->count && s->id < small->id))
					small = s;
			if (size <= small->count)
				return false;
			session_remove(c, small);
		}
	}
	while (c->partitions + size > c->partitions_max) {
		struct session *lru = c->lru_head;
		if (!lru || now_ms - lru->last_used_ms <= c->eviction_ms)
			return false;
		session_remove(c, lru);
	}
	return true;
}

static int32_t new_id(struct fetch_sessions *c)
{
	for (;;) {
		c->rng ^= c->rng << 13;
		c->rng ^= c->rng >> 7;
		c->rng ^= c->rng << 17;
		int32_t id = (int32_t)(c->rng >> 33); /* 0 .. INT32_MAX */
		if (id != 0 && !session_find(c, id))
			return id;
	}
}

/* ---- a session's topics and entries ---- */

/* The key of a topic in a session: its id (v13+) or its name, in hex (a
 * name from the wire may hold any byte, NUL too). key has room for
 * 2 * n + 1 bytes. */
static void topic_key(const uint8_t *p, size_t n, char *key)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		key[2 * i] = hex[p[i] >> 4];
		key[2 * i + 1] = hex[p[i] & 15];
	}
	key[2 * n] = 0;
}

static long topic_add(struct session *s, kstr name, const uint8_t id[16], const char *key)
{
	/* No topic has a longer name (it is answered UNKNOWN_TOPIC_OR_PARTITION);
	 * kept, such names could make the sessions' memory grow far past
	 * what the partition budget allows for. The caller treats this as
	 * running out: no session (full), or the session dropped. */
	if (!s->topic_ids && name.len > SL_TOPIC_NAME_MAX)
		return -1;
	if (array_grow(&s->topics, &s->topics_cap, s->topics_count, sizeof *s->topics, 8) != 0)
		return -1;
	struct fs_topic *t = &s->topics[s->topics_count];
	memset(t, 0, sizeof *t);
	t->tid = -1;
	if (s->topic_ids) {
		memcpy(t->id, id, 16);
	} else {
		t->name_len = name.len > 0 ? name.len : 0;
		t->name = malloc((size_t)t->name_len + 1);
		if (!t->name)
			return -1;
		if (t->name_len)
			memcpy(t->name, name.ptr, (size_t)t->name_len);
		t->name[t->name_len] = 0;
	}
	if (strmap_put(&s->topic_index, key, (void *)(uintptr_t)(s->topics_count + 1)) != 0) {
		free(t->name);
		return -1;
	}
	return (long)s->topics_count++;
}

/* Index of the topic in s; added when absent and add is set. -1 when
 * absent, on ENOMEM, or for a name longer than any topic's. */
static long topic_get(struct session *s, kstr name, const uint8_t id[16], bool add)
{
	const uint8_t *p = s->topic_ids ? id : (const uint8_t *)name.ptr;
	size_t n = s->topic_ids ? 16 : (name.len > 0 ? (size_t)name.len : 0);
	char small[2 * 256 + 1], *key = n <= 256 ? small : malloc(2 * n + 1);
	if (!key)
		return -1;
	topic_key(p, n, key);
	uintptr_t v = (uintptr_t)strmap_get(&s->topic_index, key);
	long t = v ? (long)v - 1 : add ? topic_add(s, name, id, key) : -1;
	if (key != small)
		free(key);
	return t;
}

static size_t entry_hash(uint32_t topic, int32_t partition, size_t mask)
{
	uint64_t x = ((uint64_t)topic << 32) | (uint32_t)partition;
	x *= 0x9E3779B97F4A7C15ull;
	return (size_t)(x >> 32) & mask;
}

static void index_put(struct session *s, size_t i)
{
	size_t mask = s->index_cap - 1;
	size_t h = entry_hash(s->entries[i].topic, s->entries[i].partition, mask);
	while (s->index[h])
		h = (h + 1) & mask;
	s->index[h] = (uint32_t)i + 1;
}

/* Rebuild the index after entries moved or went. */
static int session_reindex(struct session *s)
{
	size_t cap = 16;
	while (cap < 2 * s->count + 2)
		cap *= 2;
	if (cap != s->index_cap) {
		uint32_t *v = malloc(cap * sizeof *v);
		if (!v)
			return SL_ENOMEM;
		free(s->index);
		s->index = v;
		s->index_cap = cap;
	}
	memset(s->index, 0, cap * sizeof *s->index);
	for (size_t i = 0; i < s->count; i++)
		index_put(s, i);
	s->generation++;
	return 0;
}

static struct fs_entry *entry_find(struct session *s, uint32_t topic, int32_t partition)
{
	if (!s->index_cap)
		return NULL;
	size_t mask = s->index_cap - 1;
	for (size_t h = entry_hash(topic, partition, mask); s->index[h]; h = (h + 1) & mask) {
		struct fs_entry *e = &s->entries[s->index[h] - 1];
		if (e->topic == topic && e->partition == partition)
			return e;
	}
	return NULL;
}

/* Append an entry, indexed. NULL on ENOMEM. */
static struct fs_entry *entry_add(struct session *s, uint32_t topic, int32_t partition)
{
	if (array_grow(&s->entries, &s->cap, s->count, sizeof *s->entries, 64) != 0)
		return NULL;
	struct fs_entry *e = &s->entries[s->count++];
	*e = (struct fs_entry){ .topic = topic, .partition = partition,
				.high_watermark = -1, .log_start_offset = -1,
				.last_stable_offset = -1, .order = s->next_order++,
				.pending = true };
	if (2 * s->count + 2 > s->index_cap) {
		if (session_reindex(s) != 0) {
			s->count--;
			return NULL;
		}
	} else {
		index_put(s, s->count - 1);
	}
	return e;
}

/* ---- one fetch ---- */

static size_t request_partitions(const struct kmsg_fetch_req *m)
{
	size_t n = 0;
	for (int32_t i = 0; i < m->topics_count; i++)
		n += m->topics[i].partitions_count > 0 ? (size_t)m->topics[i].partitions_count : 0;
	return n;
}

/* The request's partitions, in its order (a full or sessionless fetch). */
static int parts_from_request(struct arena *arena, const struct kmsg_fetch_req *m,
			      struct fetch_session_ctx *ctx)
{
	size_t n = request_partitions(m), k = 0;
	ctx->parts = arena_alloc(arena, (n ? n : 1) * sizeof *ctx->parts);
	if (!ctx->parts)
		return SL_ENOMEM;
	for (int32_t i = 0; i < m->topics_count; i++) {
		const struct kmsg_fetch_req_fetch_topic *qt = &m->topics[i];
		for (int32_t j = 0; j < qt->partitions_count; j++, k++) {
			struct fetch_part *p = &ctx->parts[k];
			memset(p, 0, sizeof *p);
			p->topic = qt->topic;
			memcpy(p->topic_id, qt->topic_id, 16);
			p->partition = qt->partitions[j].partition;
			p->fetch_offset = qt->partitions[j].fetch_offset;
			p->max_bytes = qt->partitions[j].partition_max_bytes;
		}
	}
	ctx->count = ctx->cap = n;
	return 0;
}

/* Candidates of one fetch: entry indexes of a session, each once (the
 * entry's mark), into a growable array. */
struct cands {
	struct session *s;
	uint64_t stamp;
	uint32_t *v;
	size_t n, cap;
	int rc;                    /* sticky: SL_ENOMEM */
	/* the session's topics by tid (for the journal), sorted */
	struct tid_topic { int64_t tid; uint32_t topic; } *by_tid;
	size_t by_tid_count;
};

static void cands_add(struct cands *k, uint32_t i)
{
	struct fs_entry *e = &k->s->entries[i];
	if (e->mark == k->stamp || k->rc)
		return;
	if (array_grow(&k->v, &k->cap, k->n, sizeof *k->v, 16) != 0) {
		k->rc = SL_ENOMEM;
		return;
	}
	e->mark = k->stamp;
	k->v[k->n++] = i;
}

static void cands_all(struct cands *k)
{
	for (size_t i = 0; i < k->s->count; i++)
		cands_add(k, (uint32_t)i);
}

static int tid_cmp(const void *x, const void *y)
{
	const struct tid_topic *a = x, *b = y;
	return a->tid < b->tid ? -1 : a->tid > b->tid;
}

/* The session's topics by the tid they last had. */
static int cands_by_tid(struct cands *k)
{
	struct session *s = k->s;
	k->by_tid = malloc((s->topics_count ? s->topics_count : 1) * sizeof *k->by_tid);
	if (!k->by_tid)
		return SL_ENOMEM;
	for (size_t t = 0; t < s->topics_count; t++)
		if (s->topics[t].tid >= 0)
			k->by_tid[k->by_tid_count++] = (struct tid_topic){ s->topics[t].tid, (uint32_t)t };
	qsort(k->by_tid, k->by_tid_count, sizeof *k->by_tid, tid_cmp);
	return 0;
}

/* A journal entry: the session's partition of it, if any, is read. */
static void cands_changed(void *arg, int64_t tid, int32_t partition)
{
	struct cands *k = arg;
	struct tid_topic key = { tid, 0 };
	struct tid_topic *t = bsearch(&key, k->by_tid, k->by_tid_count, sizeof key, tid_cmp);
	struct fs_entry *e = t ? entry_find(k->s, t->topic, partition) : NULL;
	if (e)
		cands_add(k, (uint32_t)(e - k->s->entries));
}

/* The journal's entries since `since` into k; all entries when it no
 * longer reaches back. */
static int cands_journal(struct cands *k, const struct fetch_env *env, uint64_t since)
{
	if (!env || !env->changes) {
		cands_all(k);
		return k->rc;
	}
	int rc = cands_by_tid(k);
	if (rc == 0 && !env->changes(env->arg, since, cands_changed, k))
		cands_all(k);
	free(k->by_tid);
	k->by_tid = NULL;
	k->by_tid_count = 0;
	return rc ? rc : k->rc;
}

static int order_cmp(const void *x, const void *y, void *arg)
{
	const struct session *s = arg;
	uint64_t a = s->entries[((const struct fetch_part *)x)->entry].order;
	uint64_t b = s->entries[((const struct fetch_part *)y)->entry].order;
	return a < b ? -1 : a > b;
}

/* Topic names of s copied into the arena (the session may be gone
 * before the answer), once per fetch. */
static kstr *arena_names(struct arena *arena, struct session *s)
{
	kstr *names = arena_alloc(arena, (s->topics_count ? s->topics_count : 1) * sizeof *names);
	if (!names)
		return NULL;
	for (size_t i = 0; i < s->topics_count; i++) {
		names[i] = KSTR_NULL;
		if (!s->topics[i].name)
			continue;
		char *copy = arena_alloc(arena, (size_t)s->topics[i].name_len + 1);
		if (!copy)
			return NULL;
		memcpy(copy, s->topics[i].name, (size_t)s->topics[i].name_len + 1);
		names[i] = (kstr){ copy, s->topics[i].name_len };
	}
	return names;
}

/* ctx->parts from ctx->parts[0, keep) and the candidates, all in the
 * session's order (the arena grows parts by doubling). */
static int parts_from_cands(struct arena *arena, struct session *s, struct cands *k,
			    size_t keep, struct fetch_session_ctx *ctx)
{
	kstr *names = arena_names(arena, s);
	size_t n = keep + k->n;
	if (!names)
		return SL_ENOMEM;
	if (n > ctx->cap || !ctx->parts) {
		size_t cap = ctx->cap * 2 > n ? ctx->cap * 2 : n;
		struct fetch_part *v = arena_alloc(arena, (cap ? cap : 1) * sizeof *v);
		if (!v)
			return SL_ENOMEM;
		if (keep)
			memcpy(v, ctx->parts, keep * sizeof *v);
		ctx->parts = v;
		ctx->cap = cap;
	}
	for (size_t j = 0; j < k->n; j++) {
		const struct fs_entry *e = &s->entries[k->v[j]];
		struct fetch_part *p = &ctx->parts[keep + j];
		memset(p, 0, sizeof *p);
		p->topic = names[e->topic];
		memcpy(p->topic_id, s->topics[e->topic].id, 16);
		p->partition = e->partition;
		p->fetch_offset = e->fetch_offset;
		p->max_bytes = e->max_bytes;
		p->entry = k->v[j];
	}
	ctx->count = n;
	/* The session's order: the entries' order stamps. */
	qsort_r(ctx->parts, n, sizeof *ctx->parts, order_cmp, s);
	return 0;
}

/* s->pending from the entries' flags (after entries moved). */
static int pending_rebuild(struct session *s)
{
	s->pending_count = 0;
	for (size_t i = 0; i < s->count; i++) {
		if (!s->entries[i].pending)
			continue;
		if (array_grow(&s->pending, &s->pending_cap, s->pending_count, sizeof *s->pending,
			       16) != 0)
			return SL_ENOMEM;
		s->pending[s->pending_count++] = (uint32_t)i;
	}
	return 0;
}

/* Whether each topic of s is as its last answer found it (the same
 * topic, as readable): else a partition may answer otherwise without a
 * journal entry (its topic deleted or recreated, a permission taken
 * away), and the fetch reads them all. */
static bool topics_unchanged(struct session *s, const struct fetch_env *env)
{
	if (!env || !env->topic)
		return false;
	for (size_t t = 0; t < s->topics_count; t++) {
		struct fs_topic *ft = &s->topics[t];
		int64_t tid = -1;
		bool readable = false;
		env->topic(env->arg, (kstr){ ft->name, ft->name ? ft->name_len : -1 }, ft->id, &tid,
			   &readable);
		if (!ft->known || tid != ft->tid || readable != ft->readable)
			return false;
	}
	return true;
}

/* An incremental fetch's partitions: those the request names, the
 * pending ones and those the journal lists since the session's last
 * fetch; all when fetch_session.h says so. */
static int parts_incremental(struct arena *arena, struct session *s, const struct kmsg_fetch_req *m,
			     const struct fetch_env *env, struct fetch_session_ctx *ctx)
{
	struct cands k = { .s = s, .stamp = ++s->stamp };
	bool all = s->open || s->scan_all || !topics_unchanged(s, env);
	s->open = true;
	s->scan_all = false;
	ctx->stamp = k.stamp;
	ctx->seq = env ? env->seq : 0;
	int rc = 0;
	if (all) {
		cands_all(&k);
	} else {
		for (int32_t i = 0; i < m->topics_count; i++) {
			const struct kmsg_fetch_req_fetch_topic *qt = &m->topics[i];
			long t = qt->partitions_count > 0 ? topic_get(s, qt->topic, qt->topic_id, false) : -1;
			for (int32_t j = 0; t >= 0 && j < qt->partitions_count; j++) {
				struct fs_entry *e = entry_find(s, (uint32_t)t, qt->partitions[j].partition);
				if (e)
					cands_add(&k, (uint32_t)(e - s->entries));
			}
		}
		for (size_t i = 0; i < s->pending_count; i++)
			cands_add(&k, s->pending[i]);
		rc = cands_journal(&k, env, s->seq);
	}
	if (rc == 0)
		rc = k.rc;
	if (rc == 0)
		rc = parts_from_cands(arena, s, &k, 0, ctx);
	free(k.v);
	return rc;
}

int fetch_session_more(struct fetch_sessions *c, struct arena *arena,
		       const struct fetch_env *env, struct fetch_session_ctx *ctx)
{
	if (ctx->kind != FETCH_SESSION_INCREMENTAL || ctx->error || !c)
		return 0;
	struct session *s = session_find(c, ctx->session_id);
	/* Another fetch of the session began (or it went): its entries are
	 * not what parts point to any more; this one answers with what it
	 * has, and fetch_session_end makes the next read every entry. */
	if (!s || s->generation != ctx->generation)
		return 0;
	struct cands k = { .s = s, .stamp = ctx->stamp };
	int rc = cands_journal(&k, env, ctx->seq);
	ctx->seq = env ? env->seq : ctx->seq;
	if (rc == 0 && k.n)
		rc = parts_from_cands(arena, s, &k, ctx->count, ctx);
	size_t added = k.n;
	free(k.v);
	return rc ? rc : (int)added;
}

/* Apply an incremental request to s: its partitions are added or take
 * the request's position and limit, then forgotten ones go (Kafka's
 * order). Returns 0, SL_ELIMIT (the cache's partition budget) or
 * SL_ENOMEM; s is then left as consistent as before but maybe partly
 * updated (the caller drops it). */
static int session_update(struct fetch_sessions *c, struct session *s,
			  const struct kmsg_fetch_req *m)
{
	size_t added = 0;
	int rc = 0;
	for (int32_t i = 0; i < m->topics_count && !rc; i++) {
		const struct kmsg_fetch_req_fetch_topic *qt = &m->topics[i];
		if (qt->partitions_count <= 0)
			continue;
		long t = topic_get(s, qt->topic, qt->topic_id, true);
		if (t < 0) {
			rc = SL_ENOMEM;
			break;
		}
		for (int32_t j = 0; j < qt->partitions_count; j++) {
			const struct kmsg_fetch_req_fetch_partition *qp = &qt->partitions[j];
			struct fs_entry *e = entry_find(s, (uint32_t)t, qp->partition);
			if (!e) {
				if (c->partitions + added + 1 > c->partitions_max ||
				    s->count + 1 > SL_FETCH_SESSION_PARTITIONS_EACH_MAX) {
					rc = SL_ELIMIT;
					break;
				}
				e = entry_add(s, (uint32_t)t, qp->partition);
				if (!e) {
					rc = SL_ENOMEM;
					break;
				}
				added++;
			}
			e->fetch_offset = qp->fetch_offset;
			e->max_bytes = qp->partition_max_bytes;
		}
	}
	c->partitions += added;
	if (rc)
		return rc;
	bool removed = false;
	for (int32_t i = 0; i < m->forgotten_topics_data_count; i++) {
		const struct kmsg_fetch_req_forgotten_topic *ft = &m->forgotten_topics_data[i];
		long t = topic_get(s, ft->topic, ft->topic_id, false);
		if (t < 0)
			continue;
		for (int32_t j = 0; j < ft->partitions_count; j++) {
			struct fs_entry *e = entry_find(s, (uint32_t)t, ft->partitions[j]);
			if (e && e->topic != UINT32_MAX) {
				e->topic = UINT32_MAX; /* dropped below */
				removed = true;
			}
		}
	}
	if (removed) {
		size_t k = 0;
		for (size_t i = 0; i < s->count; i++)
			if (s->entries[i].topic != UINT32_MAX)
				s->entries[k++] = s->entries[i];
		c->partitions -= s->count - k;
		s->count = k;
		if (session_reindex(s) != 0 || pending_rebuild(s) != 0)
			return SL_ENOMEM;
	}
	return 0;
}

static int32_t next_epoch(int32_t epoch)
{
	if (epoch < 0)
		return EPOCH_FINAL;
	return epoch == INT32_MAX ? 1 : epoch + 1;
}

int fetch_session_begin(struct fetch_sessions *c, struct arena *arena, int64_t now_ms,
			int16_t version, const struct kmsg_fetch_req *m,
			const struct fetch_env *env, struct fetch_session_ctx *ctx)
{
	memset(ctx, 0, sizeof *ctx);
	ctx->topic_ids = version >= 13;
	ctx->seq = env ? env->seq : 0;
	if (version < 7)
		return parts_from_request(arena, m, ctx);
	if (m->session_epoch == EPOCH_FINAL || m->session_epoch == EPOCH_INITIAL) {
		/* Full: a session it names is closed either way. */
		struct session *old = c && m->session_id ? session_find(c, m->session_id) : NULL;
		if (old)
			session_remove(c, old);
		ctx->kind = m->session_epoch == EPOCH_INITIAL ? FETCH_SESSION_FULL : FETCH_SESSIONLESS;
		return parts_from_request(arena, m, ctx);
	}
	struct session *s = c ? session_find(c, m->session_id) : NULL;
	if (!s) {
		ctx->error = KERR_FETCH_SESSION_ID_NOT_FOUND;
		return 0;
	}
	if (s->epoch != m->session_epoch) {
		ctx->error = KERR_INVALID_FETCH_SESSION_EPOCH;
		return 0;
	}
	if (s->topic_ids != ctx->topic_ids) {
		ctx->error = KERR_FETCH_SESSION_TOPIC_ID_ERROR;
		return 0;
	}
	int rc = session_update(c, s, m);
	if (rc == 0 && s->count == 0) {
		/* Nothing left: Kafka closes it and answers sessionless. */
		session_remove(c, s);
		ctx->kind = FETCH_SESSIONLESS;
		return parts_from_request(arena, m, ctx);
	}
	if (rc) {
		/* Over the budget (or out of memory): the session goes; this
		 * request is answered sessionless, so the client starts over. */
		session_remove(c, s);
		ctx->kind = FETCH_SESSIONLESS;
		return parts_from_request(arena, m, ctx);
	}
	session_touch(c, s, now_ms);
	s->epoch = next_epoch(s->epoch);
	ctx->kind = FETCH_SESSION_INCREMENTAL;
	ctx->session_id = s->id;
	/* What the parts' positions are, for fetch_session_end. */
	s->generation++;
	ctx->generation = s->generation;
	return parts_incremental(arena, s, m, env, ctx);
}

/* Kafka's CachedPartition.maybeUpdateResponseData: answered when it has
 * records, an error, or a high watermark or log start that moved since
 * the last answer (and here a last stable offset: fetch_session.h); an
 * error makes the next answer send it again. The entry stays pending
 * (read by every fetch) while it has an error or records left, and its
 * topic is noted as the fetch found it. */
static bool entry_answer(struct session *s, struct fs_entry *e, const struct fetch_part *p)
{
	bool respond = p->records_bytes > 0 || p->error != 0 ||
		       e->high_watermark != p->high_watermark ||
		       e->log_start_offset != p->log_start_offset ||
		       e->last_stable_offset != p->last_stable_offset;
	e->high_watermark = p->error ? -1 : p->high_watermark;
	e->log_start_offset = p->log_start_offset;
	e->last_stable_offset = p->last_stable_offset;
	e->pending = p->error != 0 || p->fetch_offset < p->high_watermark;
	struct fs_topic *t = &s->topics[e->topic];
	t->tid = p->tid;
	t->readable = p->readable;
	t->known = true;
	return respond;
}

static int32_t session_create(struct fetch_sessions *c, int64_t now_ms, struct fetch_session_ctx *ctx)
{
	if (!make_room(c, now_ms, ctx->count))
		return 0;
	struct session *s = calloc(1, sizeof *s);
	if (!s)
		return 0;
	strmap_init(&s->topic_index);
	s->topic_ids = ctx->topic_ids;
	s->epoch = next_epoch(EPOCH_INITIAL);
	for (size_t i = 0; i < ctx->count; i++) {
		const struct fetch_part *p = &ctx->parts[i];
		long t = topic_get(s, p->topic, p->topic_id, true);
		struct fs_entry *e = t < 0 ? NULL : entry_add(s, (uint32_t)t, p->partition);
		if (!e)
			goto out_fail;
		e->fetch_offset = p->fetch_offset;
		e->max_bytes = p->max_bytes;
		entry_answer(s, e, p);
	}
	if (session_reindex(s) != 0 || pending_rebuild(s) != 0)
		goto out_fail;
	s->seq = ctx->seq;
	s->id = new_id(c);
	char idk[16];
	id_key(s->id, idk);
	if (strmap_put(&c->by_id, idk, s) != 0)
		goto out_fail;
	s->last_used_ms = now_ms;
	lru_append(c, s);
	c->count++;
	c->partitions += s->count;
	return s->id;
out_fail:
	session_destroy(s);
	return 0;
}

int32_t fetch_session_end(struct fetch_sessions *c, int64_t now_ms, struct fetch_session_ctx *ctx)
{
	for (size_t i = 0; i < ctx->count; i++)
		ctx->parts[i].respond = true;
	if (ctx->error || !c)
		return 0;
	if (ctx->kind == FETCH_SESSION_FULL)
		return session_create(c, now_ms, ctx);
	if (ctx->kind != FETCH_SESSION_INCREMENTAL)
		return 0;
	struct session *s = session_find(c, ctx->session_id);
	if (!s)
		return ctx->session_id; /* evicted meanwhile: all answered, the next is refused */
	/* No other fetch of the session began since this one: its parts
	 * point at their entries, and what it read is, with the pending
	 * entries it read too, every entry that may answer. */
	bool same = s->generation == ctx->generation;
	for (size_t i = 0; i < ctx->count; i++) {
		struct fetch_part *p = &ctx->parts[i];
		struct fs_entry *e = NULL;
		if (same) {
			e = &s->entries[p->entry];
		} else {
			long t = topic_get(s, p->topic, p->topic_id, false);
			if (t >= 0)
				e = entry_find(s, (uint32_t)t, p->partition);
		}
		if (!e)
			continue; /* forgotten by a later request: answered anyway */
		p->respond = entry_answer(s, e, p);
		/* Answered entries move to the end, in order (Kafka's rotation). */
		if (p->respond)
			e->order = s->next_order++;
	}
	if (!same) {
		/* Another fetch began meanwhile: the one after reads all. */
		s->scan_all = true;
		return ctx->session_id;
	}
	s->open = false;
	s->seq = ctx->seq;
	s->pending_count = 0;
	for (size_t i = 0; i < ctx->count; i++) {
		uint32_t k = ctx->parts[i].entry;
		if (!s->entries[k].pending)
			continue;
		if (array_grow(&s->pending, &s->pending_cap, s->pending_count, sizeof *s->pending,
			       16) != 0) {
			s->scan_all = true; /* the list is short of some: read all next */
			break;
		}
		s->pending[s->pending_count++] = k;
	}
	return ctx->session_id;
}
