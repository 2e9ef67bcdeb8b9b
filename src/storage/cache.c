/* cache.c — LRU of whole objects by key. The newest commit's object goes
 * in at the head, so tailing consumers read from memory; catch-up reads
 * load ranges ahead of the consumer through cache_load (one get each),
 * named "key@offset", and the loads in flight are kept beside the LRU
 * until their bytes arrive. Cached ranges are also listed per object, so
 * that a read (or a read-ahead) inside a range that starts earlier finds
 * it. */
#include "storage/cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/strmap.h"
#include "objstore/objstore.h"

struct cache_entry {
	struct cache_entry *prev, *next; /* LRU list, head = most recent */
	struct cache_obj *obj;
	char *key;
	bool unread; /* a range loaded ahead that no one has read yet */
	char *okey;  /* a range: its object's key (in c->ranges), else NULL */
	struct cache_entry *rprev, *rnext; /* the object's other ranges */
};

/* Someone waiting for a load: a fetch, or nobody (read-ahead). */
struct load_waiter {
	struct load_waiter *next;
	cache_load_fn done;
	void *arg;
};

/* A whole-object get in flight. */
struct cache_loading {
	struct cache *c;
	char *key;      /* the range's name */
	char *okey;     /* the object's key */
	uint64_t base;
	uint8_t *data;  /* a block (block_get) */
	size_t len, cap;
	struct load_waiter *waiters, **tail;
};

struct cache {
	struct strmap by_key;
	struct strmap loading;   /* key -> cache_loading */
	struct strmap ranges;    /* object key -> its cached ranges (entries) */
	struct cache_entry *head, *tail;
	size_t bytes, limit_bytes;
	size_t loading_bytes;
	size_t unread_bytes;     /* ranges loaded ahead, not read yet */
	uint64_t hits, misses, loads, load_bytes;
};

struct cache *cache_new(size_t limit_bytes)
{
	struct cache *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	strmap_init(&c->by_key);
	strmap_init(&c->loading);
	strmap_init(&c->ranges);
	c->limit_bytes = limit_bytes;
	return c;
}

/* Range buffers are reused, not freed: with the agent's mmap threshold
 * every megabyte malloc is a fresh mapping, page-faulted and zeroed
 * afresh. Blocks are powers of two from 64 KiB; a few MiB of them are
 * kept per size (loop thread only: the cache is). */
#define BLOCK_MIN_SHIFT 16
#define BLOCK_CLASSES 12 /* 64 KiB .. 128 MiB */
#define BLOCK_KEEP_BYTES ((size_t)16 << 20)
struct block { struct block *next; };
static __thread struct block *block_free[BLOCK_CLASSES];
static __thread size_t block_kept_bytes;

static int block_class(size_t cap)
{
	for (int k = 0; k < BLOCK_CLASSES; k++)
		if (((size_t)1 << (BLOCK_MIN_SHIFT + k)) == cap)
			return k;
	return -1;
}

/* A block of at least len bytes; *cap gets its size. */
static uint8_t *block_get(size_t len, size_t *cap)
{
	int k = 0;
	while (k < BLOCK_CLASSES && ((size_t)1 << (BLOCK_MIN_SHIFT + k)) < len)
		k++;
	if (k == BLOCK_CLASSES) {
		*cap = 0; /* not a block: plain malloc */
		return malloc(len);
	}
	*cap = (size_t)1 << (BLOCK_MIN_SHIFT + k);
	if (block_free[k]) {
		struct block *b = block_free[k];
		block_free[k] = b->next;
		block_kept_bytes -= *cap;
		return (uint8_t *)b;
	}
	return malloc(*cap);
}

static void block_release(uint8_t *data, size_t cap)
{
	int k = cap ? block_class(cap) : -1;
	if (data && k >= 0 && block_kept_bytes + cap <= BLOCK_KEEP_BYTES) {
		struct block *b = (struct block *)data;
		b->next = block_free[k];
		block_free[k] = b;
		block_kept_bytes += cap;
		return;
	}
	free(data);
}

void cache_obj_unref(struct cache_obj *o)
{
	if (o && --o->refs == 0) {
		block_release(o->data, o->pool_cap);
		free(o);
	}
}

static void unlink_entry(struct cache *c, struct cache_entry *e)
{
	if (e->prev) e->prev->next = e->next; else c->head = e->next;
	if (e->next) e->next->prev = e->prev; else c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void push_head(struct cache *c, struct cache_entry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head) c->head->prev = e; else c->tail = e;
	c->head = e;
}

/* List a range under its object (okey taken over). Without memory for
 * the list it is found by its exact name only. */
static void link_range(struct cache *c, struct cache_entry *e, char *okey)
{
	struct cache_entry *head = strmap_get(&c->ranges, okey);
	if (!head && strmap_put(&c->ranges, okey, e) != 0) {
		free(okey);
		return;
	}
	if (head) {
		e->rnext = head->rnext;
		e->rprev = head;
		if (head->rnext)
			head->rnext->rprev = e;
		head->rnext = e;
	}
	e->okey = okey;
}

static void unlink_range(struct cache *c, struct cache_entry *e)
{
	if (!e->okey)
		return;
	if (e->rprev) {
		e->rprev->rnext = e->rnext;
	} else if (e->rnext) {
		/* Replacing a key's value allocates nothing: cannot fail. */
		(void)strmap_put(&c->ranges, e->okey, e->rnext);
	} else {
		strmap_del(&c->ranges, e->okey);
	}
	if (e->rnext)
		e->rnext->rprev = e->rprev;
	free(e->okey);
	e->okey = NULL;
	e->rprev = e->rnext = NULL;
}

/* A cached range of object key that holds byte offset, or NULL. */
static struct cache_entry *range_holding(const struct cache *c, const char *key, uint64_t offset)
{
	for (struct cache_entry *e = strmap_get(&c->ranges, key); e; e = e->rnext)
		if (offset >= e->obj->base && offset - e->obj->base < e->obj->len)
			return e;
	return NULL;
}

static void evict(struct cache *c, struct cache_entry *e)
{
	unlink_range(c, e);
	unlink_entry(c, e);
	strmap_del(&c->by_key, e->key);
	c->bytes -= e->obj->len;
	if (e->unread)
		c->unread_bytes -= e->obj->len;
	cache_obj_unref(e->obj);
	free(e->key);
	free(e);
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	while (c->head)
		evict(c, c->head);
	strmap_free(&c->by_key);
	strmap_free(&c->loading);
	strmap_free(&c->ranges);
	for (int k = 0; k < BLOCK_CLASSES; k++)
		while (block_free[k]) {
			struct block *b = block_free[k];
			block_free[k] = b->next;
			free(b);
		}
	block_kept_bytes = 0;
	free(c);
}

/* cache_put, for blocks as well (pool_cap: the block's size; 0 for
 * malloc'd data). The new entry, or NULL. */
static struct cache_entry *put(struct cache *c, const char *key, uint8_t *data, size_t len,
			       size_t pool_cap)
{
	if (len > c->limit_bytes) {
		block_release(data, pool_cap);
		return NULL;
	}
	struct cache_entry *old = strmap_get(&c->by_key, key);
	if (old)
		evict(c, old);
	while (c->tail && c->bytes + len > c->limit_bytes)
		evict(c, c->tail);
	struct cache_entry *e = calloc(1, sizeof *e);
	struct cache_obj *o = calloc(1, sizeof *o);
	char *k = strdup(key);
	if (!e || !o || !k || strmap_put(&c->by_key, key, e) != 0) {
		free(e); free(o); free(k);
		block_release(data, pool_cap);
		return NULL;
	}
	o->data = data;
	o->len = len;
	o->refs = 1;
	o->pool_cap = pool_cap;
	e->obj = o;
	e->key = k;
	push_head(c, e);
	c->bytes += len;
	return e;
}

void cache_put(struct cache *c, const char *key, uint8_t *data, size_t len)
{
	put(c, key, data, len, 0);
}

/* A hit on e: most recent now, read, referenced. */
static struct cache_obj *take(struct cache *c, struct cache_entry *e)
{
	c->hits++;
	if (e->unread) {
		e->unread = false;
		c->unread_bytes -= e->obj->len;
	}
	unlink_entry(c, e);
	push_head(c, e);
	e->obj->refs++;
	return e->obj;
}

struct cache_obj *cache_get(struct cache *c, const char *key)
{
	struct cache_entry *e = strmap_get(&c->by_key, key);
	if (!e) {
		c->misses++;
		return NULL;
	}
	return take(c, e);
}

bool cache_contains(const struct cache *c, const char *key)
{
	return strmap_get(&c->by_key, key) != NULL;
}

/* "key@offset": a range's name in the maps. */
#define RANGE_NAME_BYTES 160
static void range_name(char out[RANGE_NAME_BYTES], const char *key, uint64_t offset)
{
	snprintf(out, RANGE_NAME_BYTES, "%s@%llu", key, (unsigned long long)offset);
}

struct cache_obj *cache_get_range(struct cache *c, const char *key, uint64_t offset)
{
	char name[RANGE_NAME_BYTES];
	range_name(name, key, offset);
	struct cache_entry *e = strmap_get(&c->by_key, name);
	if (!e)
		e = range_holding(c, key, offset);
	if (!e) {
		c->misses++;
		return NULL;
	}
	return take(c, e);
}

uint64_t cache_range_end(const struct cache *c, const char *key, uint64_t offset)
{
	const struct cache_entry *e = range_holding(c, key, offset);
	return e ? e->obj->base + e->obj->len : offset;
}

bool cache_has_range(const struct cache *c, const char *key, uint64_t offset)
{
	char name[RANGE_NAME_BYTES];
	range_name(name, key, offset);
	return strmap_get(&c->by_key, name) || strmap_get(&c->loading, name);
}

static int add_waiter(struct cache_loading *l, cache_load_fn done, void *arg)
{
	if (!done)
		return 0;
	struct load_waiter *w = malloc(sizeof *w);
	if (!w)
		return SL_ENOMEM;
	*w = (struct load_waiter){ NULL, done, arg };
	*l->tail = w;
	l->tail = &w->next;
	return 0;
}

static void load_done(void *arg, int err)
{
	struct cache_loading *l = arg;
	struct cache *c = l->c;
	/* Out of the loading map before anyone is told, so a waiter that
	 * asks again sees the cached object (or may start a new load). */
	strmap_del(&c->loading, l->key);
	c->loading_bytes -= l->len;
	if (err) {
		block_release(l->data, l->cap);
	} else {
		struct cache_entry *e = put(c, l->key, l->data, l->len, l->cap);
		if (e) {
			e->obj->base = l->base;
			e->unread = true;
			c->unread_bytes += l->len;
			link_range(c, e, l->okey);
			l->okey = NULL;
		}
	}
	struct load_waiter *w = l->waiters;
	free(l->okey);
	free(l->key);
	free(l);
	while (w) {
		struct load_waiter *next = w->next;
		w->done(w->arg, err);
		free(w);
		w = next;
	}
}

int cache_load(struct cache *c, struct objstore *s, uv_loop_t *loop, const char *key,
	       uint64_t offset, size_t len, cache_load_fn done, void *arg)
{
	char name[RANGE_NAME_BYTES];
	range_name(name, key, offset);
	/* In memory already: the range, the whole object (the write path
	 * puts every object it commits in), or a range that holds it all. */
	if (strmap_get(&c->by_key, name) || strmap_get(&c->by_key, key) ||
	    (len && cache_range_end(c, key, offset) >= offset + len))
		return 1;
	struct cache_loading *l = strmap_get(&c->loading, name);
	if (l)
		return add_waiter(l, done, arg);
	if (len == 0 || len > c->limit_bytes / 4)
		return SL_EINVAL;
	if (c->loading_bytes + len > c->limit_bytes / 2)
		return SL_EBUSY;
	/* Ranges loaded ahead and never read were a wrong guess: past three
	 * quarters of the cache the oldest of them go first, before the
	 * LRU's general eviction can touch ranges that are about to be read. */
	for (struct cache_entry *e = c->tail, *prev; e &&
	     c->loading_bytes + c->unread_bytes + len > c->limit_bytes / 4 * 3; e = prev) {
		prev = e->prev;
		if (e->unread)
			evict(c, e);
	}
	l = calloc(1, sizeof *l);
	if (!l)
		return SL_ENOMEM;
	l->c = c;
	l->base = offset;
	l->len = len;
	l->tail = &l->waiters;
	l->key = strdup(name);
	l->okey = strdup(key);
	l->data = block_get(len, &l->cap);
	int rc = SL_ENOMEM;
	if (!l->key || !l->okey || !l->data || add_waiter(l, done, arg) != 0)
		goto out_free;
	if ((rc = strmap_put(&c->loading, name, l)) != 0)
		goto out_free;
	rc = objstore_get_start(s, loop, key, offset, len, l->data, load_done, l);
	if (rc) {
		strmap_del(&c->loading, name);
		goto out_free;
	}
	c->loading_bytes += len;
	c->loads++;
	c->load_bytes += len;
	return 0;
out_free:
	free(l->waiters);
	block_release(l->data, l->cap);
	free(l->okey);
	free(l->key);
	free(l);
	return rc;
}

void cache_drop_range(struct cache *c, const char *key, uint64_t offset)
{
	char name[RANGE_NAME_BYTES];
	range_name(name, key, offset);
	struct cache_entry *e = strmap_get(&c->by_key, name);
	if (e)
		evict(c, e);
}

int cache_wait(struct cache *c, const char *key, uint64_t offset, cache_load_fn done, void *arg)
{
	char name[RANGE_NAME_BYTES];
	range_name(name, key, offset);
	struct cache_loading *l = strmap_get(&c->loading, name);
	return l ? add_waiter(l, done, arg) : SL_ENOTFOUND;
}

size_t cache_bytes(const struct cache *c) { return c->bytes; }
uint64_t cache_loads(const struct cache *c) { return c->loads; }
uint64_t cache_load_bytes(const struct cache *c) { return c->load_bytes; }
uint64_t cache_hits(const struct cache *c) { return c->hits; }
uint64_t cache_misses(const struct cache *c) { return c->misses; }
