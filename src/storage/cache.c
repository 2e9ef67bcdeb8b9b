/* cache.c — LRU of whole objects by key. The newest commit's object goes
 * in at the head, so tailing consumers read from memory; catch-up reads
 * load whole objects through cache_load (one get each), and the loads in
 * flight are kept beside the LRU until their bytes arrive. */
#include "storage/cache.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/strmap.h"
#include "objstore/objstore.h"

struct cache_entry {
	struct cache_entry *prev, *next; /* LRU list, head = most recent */
	struct cache_obj *obj;
	char *key;
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
	char *key;
	uint8_t *data;
	size_t len;
	struct load_waiter *waiters, **tail;
};

struct cache {
	struct strmap by_key;
	struct strmap loading;   /* key -> cache_loading */
	struct cache_entry *head, *tail;
	size_t bytes, limit_bytes;
	size_t loading_bytes;
	uint64_t hits, misses, loads, load_bytes;
};

struct cache *cache_new(size_t limit_bytes)
{
	struct cache *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	strmap_init(&c->by_key);
	strmap_init(&c->loading);
	c->limit_bytes = limit_bytes;
	return c;
}

void cache_obj_unref(struct cache_obj *o)
{
	if (o && --o->refs == 0) {
		free(o->data);
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

static void evict(struct cache *c, struct cache_entry *e)
{
	unlink_entry(c, e);
	strmap_del(&c->by_key, e->key);
	c->bytes -= e->obj->len;
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
	free(c);
}

void cache_put(struct cache *c, const char *key, uint8_t *data, size_t len)
{
	if (len > c->limit_bytes) {
		free(data);
		return;
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
		free(e); free(o); free(k); free(data);
		return;
	}
	o->data = data;
	o->len = len;
	o->refs = 1;
	e->obj = o;
	e->key = k;
	push_head(c, e);
	c->bytes += len;
}

struct cache_obj *cache_get(struct cache *c, const char *key)
{
	struct cache_entry *e = strmap_get(&c->by_key, key);
	if (!e) {
		c->misses++;
		return NULL;
	}
	c->hits++;
	unlink_entry(c, e);
	push_head(c, e);
	e->obj->refs++;
	return e->obj;
}

bool cache_has(const struct cache *c, const char *key)
{
	return strmap_get(&c->by_key, key) || strmap_get(&c->loading, key);
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
	if (err)
		free(l->data);
	else
		cache_put(c, l->key, l->data, l->len);
	struct load_waiter *w = l->waiters;
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
	       uint64_t size, cache_load_fn done, void *arg)
{
	if (strmap_get(&c->by_key, key))
		return 1;
	struct cache_loading *l = strmap_get(&c->loading, key);
	if (l)
		return add_waiter(l, done, arg);
	if (size == 0 || size > c->limit_bytes / 4)
		return SL_EINVAL;
	if (c->loading_bytes + size > c->limit_bytes / 2)
		return SL_EBUSY;
	l = calloc(1, sizeof *l);
	if (!l)
		return SL_ENOMEM;
	l->c = c;
	l->len = (size_t)size;
	l->tail = &l->waiters;
	l->key = strdup(key);
	l->data = malloc(l->len);
	int rc = SL_ENOMEM;
	if (!l->key || !l->data || add_waiter(l, done, arg) != 0)
		goto out_free;
	if ((rc = strmap_put(&c->loading, key, l)) != 0)
		goto out_free;
	rc = objstore_get_start(s, loop, key, 0, l->len, l->data, load_done, l);
	if (rc) {
		strmap_del(&c->loading, key);
		goto out_free;
	}
	c->loading_bytes += l->len;
	c->loads++;
	c->load_bytes += l->len;
	return 0;
out_free:
	free(l->waiters);
	free(l->data);
	free(l->key);
	free(l);
	return rc;
}

size_t cache_bytes(const struct cache *c) { return c->bytes; }
uint64_t cache_loads(const struct cache *c) { return c->loads; }
uint64_t cache_load_bytes(const struct cache *c) { return c->load_bytes; }
uint64_t cache_hits(const struct cache *c) { return c->hits; }
uint64_t cache_misses(const struct cache *c) { return c->misses; }
