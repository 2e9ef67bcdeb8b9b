/* strmap.c — FNV-1a hashed chains, doubling when the load passes 1. */
#include "base/strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

struct strmap_node {
	struct strmap_node *next;
	uint64_t hash;
	void *value;
	char key[];
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ull;
	}
	return h;
}

void strmap_init(struct strmap *m)
{
	m->buckets = NULL;
	m->bucket_count = 0;
	m->count = 0;
}

void strmap_free(struct strmap *m)
{
	for (size_t i = 0; i < m->bucket_count; i++) {
		struct strmap_node *n = m->buckets[i];
		while (n) {
			struct strmap_node *next = n->next;
			free(n);
			n = next;
		}
	}
	free(m->buckets);
	strmap_init(m);
}

static struct strmap_node **find(const struct strmap *m, const char *key, uint64_t h)
{
	if (!m->bucket_count)
		return NULL;
	struct strmap_node **p = &m->buckets[h & (m->bucket_count - 1)];
	while (*p && ((*p)->hash != h || strcmp((*p)->key, key) != 0))
		p = &(*p)->next;
	return p;
}

void *strmap_get(const struct strmap *m, const char *key)
{
	struct strmap_node **p = find(m, key, hash_str(key));
	return p && *p ? (*p)->value : NULL;
}

static int grow(struct strmap *m)
{
	size_t n = m->bucket_count ? m->bucket_count * 2 : 16;
	struct strmap_node **b = calloc(n, sizeof *b);
	if (!b)
		return SL_ENOMEM;
	for (size_t i = 0; i < m->bucket_count; i++) {
		struct strmap_node *node = m->buckets[i];
		while (node) {
			struct strmap_node *next = node->next;
			size_t k = node->hash & (n - 1);
			node->next = b[k];
			b[k] = node;
			node = next;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->bucket_count = n;
	return 0;
}

int strmap_put(struct strmap *m, const char *key, void *value)
{
	uint64_t h = hash_str(key);
	struct strmap_node **p = find(m, key, h);
	if (p && *p) {
		(*p)->value = value;
		return 0;
	}
	if (m->count >= m->bucket_count && grow(m) != 0)
		return SL_ENOMEM;
	size_t len = strlen(key);
	struct strmap_node *n = malloc(sizeof *n + len + 1);
	if (!n)
		return SL_ENOMEM;
	memcpy(n->key, key, len + 1);
	n->hash = h;
	n->value = value;
	size_t k = h & (m->bucket_count - 1);
	n->next = m->buckets[k];
	m->buckets[k] = n;
	m->count++;
	return 0;
}

void *strmap_del(struct strmap *m, const char *key)
{
	struct strmap_node **p = find(m, key, hash_str(key));
	if (!p || !*p)
		return NULL;
	struct strmap_node *n = *p;
	void *v = n->value;
	*p = n->next;
	free(n);
	m->count--;
	return v;
}

void strmap_each(const struct strmap *m, void (*fn)(void *, const char *, void *), void *arg)
{
	for (size_t i = 0; i < m->bucket_count; i++)
		for (struct strmap_node *n = m->buckets[i]; n; n = n->next)
			fn(arg, n->key, n->value);
}
