/* cache.c — LRU of whole objects by key. The newest commit's object goes
 * in at the head, so tailing consumers read from memory; catch-up reads
 * load ranges ahead of the consumer through cache_load (one get each),
 * named "key@offset", and the loads in flight are kept beside the LRU
 * until their bytes arrive. Cached ranges and loads in flight are also
 * listed per object, so that a read (or a read-ahead) inside a range that
 * starts earlier finds it, or waits for it (ranges may overlap: the one
 * reaching furthest is taken). */
#include "storage/cache.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/sl_assert.h"
#include "base/strmap.h"
#include "objstore/objstore.h"

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

/* A range of an object, cached or being loaded, in its object's list. */
struct range_link {
	struct range_link *prev, *next; /* the object's other ranges */
	char *okey;    /* its object's key (in c->ranges); NULL: not listed */
	uint64_t base; /* the object's bytes [base, base + len) */
	size_t len;
	bool loading;  /* in a cache_loading, else in a cache_entry */
};

struct cache_entry {
	struct cache_entry *prev, *next; /* LRU list, head = most recent */
	struct cache_obj *obj;
	char *key;
	bool unread; /* a range loaded ahead that no one has read yet */
	uint64_t loaded_ms; /* unread: when its load ended (the loop's clock) */
	struct range_link r; /* a range (r.okey set), else a whole object */
};

/* Someone waiting for a load: a fetch, or nobody (read-ahead). */
struct load_waiter {
	struct load_waiter *next;
	cache_load_fn done;
	void *arg;
};

/* A range's get in flight. */
struct cache_loading {
	struct cache *c;
	uv_loop_t *loop;
	char *key;      /* the range's name */
	struct range_link r;
	uint8_t *data;  /* kbuf_alloc'd, cap bytes */
	size_t cap;
	struct load_waiter *waiters, **tail;
};

struct cache {
	struct strmap by_key;
	struct strmap loading;   /* key -> cache_loading */
	struct strmap ranges;    /* object key -> its ranges (range_link list) */
	struct cache_entry *head, *tail;
	size_t bytes, limit_bytes;
	size_t loading_bytes;
	size_t unread_bytes;     /* ranges loaded ahead, not read yet */
	uint64_t unread_stale_ms; /* an unread range this old may go for a new load */
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
	c->unread_stale_ms = CACHE_UNREAD_STALE_MS;
	return c;
}

void cache_set_unread_stale_ms(struct cache *c, uint64_t ms)
{
	c->unread_stale_ms = ms;
}

/* Range buffers come from the loop's buffer pool (kbuf_alloc, exact
 * power-of-two classes): with the agent's mmap threshold every megabyte
 * malloc would be a fresh mapping, page-faulted and zeroed afresh. The
 * cache is used from the loop thread only, as the pool requires. */

static void obj_free(struct cache_obj *o)
{
	kbuf_release(o->data, o->pool_cap);
	for (size_t i = 0; i < o->piece_count; i++)
		kshared_unref(o->pieces[i].owner);
	free(o->pieces);
	free(o);
}

void cache_obj_unref(struct cache_obj *o)
{
	if (!o)
		return;
	SL_ASSERT(o->refs > 0, "refs %d", o->refs);
	if (--o->refs == 0) {
		/* Each pin holds a reference: a pinned object's bytes are
		 * still in an unsent response. */
		SL_ASSERT(o->pins == 0, "freeing an object with %d pins", o->pins);
		obj_free(o);
	}
}

uint8_t *cache_obj_bytes(const struct cache_obj *o, uint64_t offset, size_t len)
{
	if (o->data)
		return offset >= o->base && len <= o->len && offset - o->base <= o->len - len
		       ? o->data + (offset - o->base) : NULL;
	/* The last piece starting at or before offset. */
	size_t lo = 0, hi = o->piece_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (o->pieces[mid].offset <= offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	const struct kpiece *p = &o->pieces[lo - 1];
	if (len > p->len || offset - p->offset > p->len - len)
		return NULL;
	/* The frames are the agent's own buffers: readers patch them. */
	return (uint8_t *)p->data + (offset - p->offset);
}

void cache_obj_ref(struct cache_obj *o)
{
	SL_ASSERT(o->refs > 0, "refs %d", o->refs);
	o->refs++;
}

/* Bytes of evicted objects still pinned (every cache of the process). */
static size_t evicted_pinned_bytes;

bool cache_obj_pin(struct cache_obj *o, size_t max_evicted)
{
	/* The caller holds a reference for this pin and each earlier one. */
	SL_ASSERT(o->pins >= 0 && o->refs > o->pins, "pins %d, refs %d", o->pins, o->refs);
	if (o->pins == 0) {
		if (!o->evicted && evicted_pinned_bytes > max_evicted)
			return false;
		/* Already evicted (a range dropped once read to its end): it
		 * counts from now. */
		if (o->evicted) {
			if (evicted_pinned_bytes + o->len > max_evicted)
				return false;
			evicted_pinned_bytes += o->len;
		}
	}
	o->pins++;
	return true;
}

void cache_obj_unpin(struct cache_obj *o)
{
	SL_ASSERT(o->pins > 0, "pins %d", o->pins);
	if (--o->pins == 0 && o->evicted) {
		SL_ASSERT(evicted_pinned_bytes >= o->len, "%zu pinned evicted bytes, unpinning %zu",
			  evicted_pinned_bytes, o->len);
		evicted_pinned_bytes -= o->len;
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
static void link_range(struct cache *c, struct range_link *r, char *okey)
{
	struct range_link *head = strmap_get(&c->ranges, okey);
	if (!head && strmap_put(&c->ranges, okey, r) != 0) {
		free(okey);
		return;
	}
	if (head) {
		r->next = head->next;
		r->prev = head;
		if (head->next)
			head->next->prev = r;
		head->next = r;
	}
	r->okey = okey;
}

/* Take a range off its object's list; its object key is handed back
 * (NULL when it was not listed). */
static char *unlink_range(struct cache *c, struct range_link *r)
{
	char *okey = r->okey;
	if (!okey)
		return NULL;
	if (r->prev) {
		r->prev->next = r->next;
	} else if (r->next) {
		/* Replacing a key's value allocates nothing: cannot fail. */
		(void)strmap_put(&c->ranges, okey, r->next);
	} else {
		strmap_del(&c->ranges, okey);
	}
	if (r->next)
		r->next->prev = r->prev;
	r->okey = NULL;
	r->prev = r->next = NULL;
	return okey;
}

/* The range of object key holding byte offset that reaches furthest,
 * among cached ranges, or loads in flight (loading), or NULL. */
static struct range_link *range_reaching(const struct cache *c, const char *key, uint64_t offset,
					 bool loading)
{
	struct range_link *best = NULL;
	for (struct range_link *r = strmap_get(&c->ranges, key); r; r = r->next)
		if (r->loading == loading && offset >= r->base && offset - r->base < r->len &&
		    (!best || r->base + r->len > best->base + best->len))
			best = r;
	return best;
}

/* A cached range of object key that holds byte offset, or NULL. */
static struct cache_entry *range_holding(const struct cache *c, const char *key, uint64_t offset)
{
	struct range_link *r = range_reaching(c, key, offset, false);
	return r ? container_of(r, struct cache_entry, r) : NULL;
}

static void evict(struct cache *c, struct cache_entry *e)
{
	free(unlink_range(c, &e->r));
	unlink_entry(c, e);
	strmap_del(&c->by_key, e->key);
	SL_ASSERT(c->bytes >= e->obj->len && (!e->unread || c->unread_bytes >= e->obj->len));
	c->bytes -= e->obj->len;
	if (e->unread)
		c->unread_bytes -= e->obj->len;
	if (e->obj->pins > 0 && !e->obj->evicted)
		evicted_pinned_bytes += e->obj->len;
	e->obj->evicted = true;
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
	free(c);
}

/* The bytes of every entry, counted again (for SL_ASSERT_DEBUG: a walk
 * of the whole LRU). */
static size_t lru_bytes(const struct cache *c)
{
	size_t n = 0;
	for (const struct cache_entry *e = c->head; e; e = e->next)
		n += e->obj->len;
	return n;
}

/* Put o in under key (its bytes counted as o->len), evicting others to
 * fit; o is freed when it cannot go in. The new entry, or NULL. */
static struct cache_entry *insert(struct cache *c, const char *key, struct cache_obj *o)
{
	if (o->len > c->limit_bytes) {
		obj_free(o);
		return NULL;
	}
	struct cache_entry *old = strmap_get(&c->by_key, key);
	if (old)
		evict(c, old);
	while (c->tail && c->bytes + o->len > c->limit_bytes)
		evict(c, c->tail);
	struct cache_entry *e = calloc(1, sizeof *e);
	char *k = strdup(key);
	if (!e || !k || strmap_put(&c->by_key, key, e) != 0) {
		free(e); free(k);
		obj_free(o);
		return NULL;
	}
	o->refs = 1;
	e->obj = o;
	e->key = k;
	push_head(c, e);
	c->bytes += o->len;
	SL_ASSERT(c->bytes <= c->limit_bytes, "%zu cached bytes, limit %zu", c->bytes, c->limit_bytes);
	SL_ASSERT_DEBUG(lru_bytes(c) == c->bytes);
	return e;
}

/* cache_put, for pooled buffers as well (pool_cap: the buffer's size for
 * kbuf_release; 0 for malloc'd data). The new entry, or NULL. */
static struct cache_entry *put(struct cache *c, const char *key, uint8_t *data, size_t len,
			       size_t pool_cap)
{
	struct cache_obj *o = calloc(1, sizeof *o);
	if (!o) {
		kbuf_release(data, pool_cap);
		return NULL;
	}
	o->data = data;
	o->len = len;
	o->pool_cap = pool_cap;
	return insert(c, key, o);
}

void cache_put(struct cache *c, const char *key, uint8_t *data, size_t len, size_t pool_cap)
{
	put(c, key, data, len, pool_cap);
}

void cache_put_pieces(struct cache *c, const char *key, uint64_t len,
		      const struct kpiece *pieces, size_t n)
{
	if (len > c->limit_bytes)
		return;
	struct cache_obj *o = calloc(1, sizeof *o);
	struct kpiece *v = malloc((n ? n : 1) * sizeof *v);
	size_t loose = 0; /* bytes of pieces without an owner */
	for (size_t i = 0; i < n; i++)
		if (!pieces[i].owner)
			loose += pieces[i].len;
	size_t cap = loose;
	uint8_t *copy = loose ? kbuf_alloc(&cap) : NULL;
	struct kshared *own = copy ? kshared_new(copy, cap) : NULL;
	if (!o || !v || (loose && !own)) {
		if (own)
			kshared_unref(own);
		else if (copy)
			kbuf_release(copy, cap);
		free(v);
		free(o);
		return;
	}
	size_t at = 0;
	for (size_t i = 0; i < n; i++) {
		v[i] = pieces[i];
		if (!v[i].owner) {
			memcpy(copy + at, v[i].data, v[i].len);
			v[i].data = copy + at;
			v[i].owner = own;
			at += v[i].len;
		}
		kshared_ref(v[i].owner);
		SL_ASSERT(i == 0 || v[i].offset >= v[i - 1].offset + v[i - 1].len,
			  "object %s: piece %zu at %" PRIu64 " overlaps the one before", key, i,
			  v[i].offset);
	}
	kshared_unref(own); /* the pieces hold it now */
	o->len = len;
	o->pieces = v;
	o->piece_count = n;
	insert(c, key, o);
}

/* A hit on e: most recent now, read, referenced. */
static struct cache_obj *take(struct cache *c, struct cache_entry *e)
{
	c->hits++;
	if (e->unread) {
		SL_ASSERT(c->unread_bytes >= e->obj->len);
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

/* "key@offset": a range's name in the maps. Format: room for a key of
 * META_OBJECT_KEY_BYTES, '@' and 20 digits. */
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
	const struct range_link *r = range_reaching(c, key, offset, false);
	return r ? r->base + r->len : offset;
}

uint64_t cache_ahead_end(const struct cache *c, const char *key, uint64_t offset)
{
	/* Each step moves the end on: at most one step per range. */
	for (;;) {
		const struct range_link *r = range_reaching(c, key, offset, false);
		const struct range_link *l = range_reaching(c, key, offset, true);
		if (l && (!r || l->base + l->len > r->base + r->len))
			r = l;
		if (!r)
			return offset;
		offset = r->base + r->len;
	}
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
	char *okey = unlink_range(c, &l->r);
	SL_ASSERT(c->loading_bytes >= l->r.len);
	c->loading_bytes -= l->r.len;
	if (err) {
		kbuf_release(l->data, l->cap);
	} else {
		struct cache_entry *e = put(c, l->key, l->data, l->r.len, l->cap);
		if (e) {
			e->obj->base = l->r.base;
			e->r.base = l->r.base;
			e->r.len = l->r.len;
			e->unread = true;
			e->loaded_ms = uv_now(l->loop);
			c->unread_bytes += l->r.len;
			if (okey)
				link_range(c, &e->r, okey);
			okey = NULL;
		}
	}
	struct load_waiter *w = l->waiters;
	free(okey);
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
	/* A load in flight that holds all of it (one that started earlier
	 * in the object): wait for that one rather than reading it twice. */
	struct range_link *r = len ? range_reaching(c, key, offset, true) : NULL;
	if (r && r->base + r->len >= offset + len)
		return add_waiter(container_of(r, struct cache_loading, r), done, arg);
	if (len == 0 || len > c->limit_bytes / 4)
		return SL_EINVAL;
	if (c->loading_bytes + len > c->limit_bytes / 2)
		return SL_EBUSY;
	/* Ranges loaded ahead and not read yet stay under three quarters of
	 * the cache. Past it a new load waits (SL_EBUSY) rather than pushing
	 * out the oldest of them, which a consumer reading in order takes
	 * next: evicting those, a catch-up of 16 partitions of merged
	 * objects read 1.4 GiB from the store for 1 GiB served. Only one
	 * unread for unread_stale_ms was a wrong guess (a consumer that went
	 * away or moved) and makes room. */
	size_t unread_max = c->limit_bytes / 4 * 3;
	for (struct cache_entry *e = c->tail, *prev; e &&
	     c->loading_bytes + c->unread_bytes + len > unread_max; e = prev) {
		prev = e->prev;
		if (!e->unread)
			continue;
		/* Unread entries are never moved (a read clears the mark), so
		 * from the tail they come oldest first: a young one ends it. */
		if (uv_now(loop) - e->loaded_ms < c->unread_stale_ms)
			break;
		evict(c, e);
	}
	if (c->loading_bytes + c->unread_bytes + len > unread_max)
		return SL_EBUSY;
	l = calloc(1, sizeof *l);
	if (!l)
		return SL_ENOMEM;
	l->c = c;
	l->loop = loop;
	l->r.base = offset;
	l->r.len = len;
	l->r.loading = true;
	l->tail = &l->waiters;
	l->key = strdup(name);
	char *okey = strdup(key);
	l->cap = len;
	l->data = kbuf_alloc(&l->cap);
	int rc = SL_ENOMEM;
	if (!l->key || !okey || !l->data || add_waiter(l, done, arg) != 0)
		goto out_free;
	if ((rc = strmap_put(&c->loading, name, l)) != 0)
		goto out_free;
	link_range(c, &l->r, okey);
	okey = NULL;
	rc = objstore_get_start(s, loop, key, offset, len, l->data, load_done, l);
	if (rc) {
		strmap_del(&c->loading, name);
		free(unlink_range(c, &l->r));
		goto out_free;
	}
	c->loading_bytes += len;
	c->loads++;
	c->load_bytes += len;
	return 0;
out_free:
	free(l->waiters);
	kbuf_release(l->data, l->cap);
	free(okey);
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
	if (!l) {
		struct range_link *r = range_reaching(c, key, offset, true);
		l = r ? container_of(r, struct cache_loading, r) : NULL;
	}
	return l ? add_waiter(l, done, arg) : SL_ENOTFOUND;
}

size_t cache_bytes(const struct cache *c) { return c->bytes; }
uint64_t cache_loads(const struct cache *c) { return c->loads; }
uint64_t cache_load_bytes(const struct cache *c) { return c->load_bytes; }
uint64_t cache_hits(const struct cache *c) { return c->hits; }
uint64_t cache_misses(const struct cache *c) { return c->misses; }
