/* cache.c — LRU of whole objects by key. The newest commit's object goes
 * in at the head, so tailing consumers read from memory. */
#include "storage/cache.h"

#include <stdlib.h>
#include <string.h>

#include "base/strmap.h"

struct cache_entry {
	struct cache_entry *prev, *next; /* LRU list, head = most recent */
	struct cache_obj *obj;
	char *key;
};

struct cache {
	struct strmap by_key;
	struct cache_entry *head, *tail;
	size_t bytes, limit_bytes;
	uint64_t hits, misses;
};

struct cache *cache_new(size_t limit_bytes)
{
	struct cache *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	strmap_init(&c->by_key);
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

size_t cache_bytes(const struct cache *c) { return c->bytes; }
uint64_t cache_hits(const struct cache *c) { return c->hits; }
uint64_t cache_misses(const struct cache *c) { return c->misses; }
