/* arena.c — chunked bump allocation with a byte limit. */
#include "base/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct arena_chunk {
	struct arena_chunk *next;
	size_t size;
	size_t used;
	_Alignas(16) unsigned char data[];
};

void arena_init(struct arena *a, size_t limit_bytes)
{
	a->head = NULL;
	a->used_bytes = 0;
	a->limit_bytes = limit_bytes;
}

void *arena_alloc(struct arena *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (n > a->limit_bytes || a->used_bytes > a->limit_bytes - n)
		return NULL;
	struct arena_chunk *c = a->head;
	if (!c || c->size - c->used < n) {
		size_t size = n > 4096 ? n : 4096;
		if (c && c->size * 2 > size && c->size < (1u << 20))
			size = c->size * 2;
		c = malloc(sizeof(*c) + size);
		if (!c)
			return NULL;
		c->next = a->head;
		c->size = size;
		c->used = 0;
		a->head = c;
	}
	void *p = c->data + c->used;
	c->used += n;
	a->used_bytes += n;
	memset(p, 0, n);
	return p;
}

void arena_free(struct arena *a)
{
	struct arena_chunk *c = a->head;
	while (c) {
		struct arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	a->head = NULL;
	a->used_bytes = 0;
}
